import assert from "node:assert/strict";
import { type Output, outputsProblem } from "./outputs.ts";

const first = {
  output_type: "display_data",
  data: {
    "text/plain":
      "mode: quick · adapter: llvmpipe · CPU: x · bnlab 1a2b3c4 · 2026-12-07 02:00 UTC · Deno 2.9.6",
  },
};
const chart = {
  output_type: "display_data",
  data: { "image/svg+xml": "<svg/>", "text/plain": "chart" },
};
const code = (...outputs: Output[]) => ({ cell_type: "code", outputs });

Deno.test("an executed notebook with its mode first and a chart passes", () => {
  assert.equal(
    outputsProblem({ cells: [code(first), { cell_type: "markdown" }, code(chart)] }),
    undefined,
  );
  const png = { output_type: "display_data", data: { "image/png": "iVBOR" } };
  assert.equal(outputsProblem({ cells: [code(first, png)] }), undefined);
});

Deno.test("a notebook that shows no chart fails", () => {
  const text = { output_type: "stream", text: ["loss 0.3\n"] };
  assert.match(outputsProblem({ cells: [code(first), code(text)] })!, /no chart/);
});

Deno.test("an error output fails, naming the error", () => {
  const error = { output_type: "error", ename: "TypeError", evalue: "x is undefined" };
  assert.match(
    outputsProblem({ cells: [code(first, chart), code(error)] })!,
    /TypeError: x is undefined/,
  );
});

Deno.test("a first output without the mode, adapter, commit, date and Deno version fails", () => {
  const other = { output_type: "stream", text: "hello" };
  assert.match(outputsProblem({ cells: [code(other, chart)] })!, /mode, adapter, .*hello/);
  // the line of the kernels before provenance: no commit, date or Deno version
  const old = {
    output_type: "display_data",
    data: { "text/plain": "mode: quick · adapter: a · CPU: x" },
  };
  assert.match(outputsProblem({ cells: [code(old, chart)] })!, /commit, date and Deno version/);
  const dirty = {
    ...first,
    data: { "text/plain": first.data["text/plain"].replace("1a2b3c4", "1a2b3c4+") },
  };
  assert.equal(outputsProblem({ cells: [code(dirty, chart)] }), undefined);
  assert.match(outputsProblem({ cells: [code(), { cell_type: "code" }] })!, /no chart/);
});

Deno.test("a cell that prints or shows but has no output fails, naming the cell", () => {
  const src = (source: string, ...outputs: Output[]) => ({ cell_type: "code", source, outputs });
  const ok = { cells: [code(first, chart), src("// print( in a comment only\nconst x = 1;")] };
  assert.equal(outputsProblem(ok), undefined);
  const helper = src("async function train() {\n  print(`loss`);\n}");
  assert.equal(outputsProblem({ cells: [code(first, chart), helper] }), undefined);
  for (const call of ["print(`loss`);", "await show(lineChart([]));", "await live.finish();"]) {
    assert.match(
      outputsProblem({ cells: [code(first, chart), src(`{\n  ${call}\n}`)] })!,
      /code cell 2 \("\{"\) displays something but has no output/,
    );
  }
});

Deno.test("the committed notebooks carry the outputs of a full run, none lost", async () => {
  const dir = new URL("../../notebooks/", import.meta.url);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".ipynb"))
    .sort();
  assert.ok(names.length >= 6, `expected the six notebooks, found ${names.join(", ")}`);
  for (const name of names) {
    const nb = JSON.parse(await Deno.readTextFile(new URL(name, dir)));
    const problem = outputsProblem(nb);
    assert.equal(problem, undefined, `${name}: ${problem}`);
    const firstText = [
      nb.cells.find((c: { cell_type: string }) => c.cell_type === "code").outputs[0]
        .data["text/plain"],
    ]
      .flat().join("");
    assert.match(
      firstText,
      /^mode: full/,
      `${name} was committed from a quick run: ${firstText.slice(0, 60)}`,
    );
  }
});
