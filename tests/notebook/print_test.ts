import assert from "node:assert/strict";
import { print } from "../../src/notebook/print.ts";
import { table } from "../../src/plot/display.ts";

/** Runs `f` with console.log captured; returns the lines it wrote. */
function captured(f: () => void): string[] {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...v: unknown[]) => void lines.push(v.map(String).join(" "));
  try {
    f();
  } finally {
    console.log = log;
  }
  return lines;
}

Deno.test("print outside Jupyter: values joined by spaces, non-strings inspected", () => {
  assert.deepEqual(captured(() => print("accuracy", 0.861, [1, 2])), ["accuracy 0.861 [ 1, 2 ]"]);
});

Deno.test("print of a table outside Jupyter writes the table's text, not the object", () => {
  const t = table([{ run: "BN", acc: 0.86123 }, { run: "plain", acc: 0.8 }]);
  const lines = captured(() => print(t));
  assert.equal(lines.length, 1);
  assert.equal(lines[0], t.toString());
  assert.match(lines[0], /run\s+acc\nBN\s+0\.861\nplain\s+0\.800/);
});

Deno.test("table rounds a tiny negative to 0.000, not -0.000", () => {
  const t = table([{ v: -1e-7 }, { v: -0.0004 }, { v: -0.0006 }]);
  assert.deepEqual(t.toString().split("\n").slice(1), ["0.000", "0.000", "-0.001"]);
});
