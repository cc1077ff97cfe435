// The package is publishable to JSR as it is (no slow types: `deno publish --dry-run` without
// --allow-slow-types passes) and packs only the library: the entry points, src/, the README
// and the licence (deno.json's "publish" field), every file of src/ among them (the .wgsl
// kernels are read at run time).
import { deepEqual, equal, ok } from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** Every file under `dir` (relative to the repository root). */
function filesUnder(dir: string): string[] {
  return [...Deno.readDirSync(new URL(dir, root))].flatMap((e) =>
    e.isDirectory ? filesUnder(`${dir}${e.name}/`) : e.isFile ? [`${dir}${e.name}`] : []
  );
}

Deno.test("deno publish --dry-run passes without --allow-slow-types and packs only the library", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check=remote"],
    cwd: root.pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  equal(out.code, 0, text);
  ok(text.includes("Success Dry run complete"), text);
  const packed = [...text.matchAll(/file:\/\/\S*?\/((?:[^/\s]+\/)*[^/\s]+) \(/g)]
    .map((m) => new URL(m[0].slice(0, -2)).pathname.slice(root.pathname.length)).sort();
  const library = [
    "LICENSE",
    "README.md",
    "deno.json",
    "mod.ts",
    "plot.ts",
    "train.ts",
    ...filesUnder("src/").filter((f) => !f.endsWith("_test.ts")),
  ].sort();
  deepEqual(packed, library);
});
