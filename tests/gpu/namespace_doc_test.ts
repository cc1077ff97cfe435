// deno doc shows the gpu namespace whole (issue 24, point 1): each of its public functions,
// classes and types, declared in files that src/gpu/mod.ts re-exports with export * (deno
// doc lists no member of a namespace re-exported by name), and each with its documentation.
import { deepEqual, equal } from "node:assert/strict";

Deno.test("deno doc mod.ts lists every member of gpu, documented", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", "mod.ts"],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // deno doc --json (Deno 2.9): nodes by file, each with symbols, each with declarations.
  interface Symbol {
    name: string;
    declarations: { kind: string; jsDoc?: { doc?: string }; def?: { elements?: Symbol[] } }[];
  }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: Symbol[] }>;
  };
  const symbols = Object.values(doc.nodes).flatMap((n) => n.symbols);
  const gpu = symbols.find((s) => s.name === "gpu")?.declarations[0];
  equal(gpu?.kind, "namespace", "mod.ts's gpu is a namespace");
  const members = gpu?.def?.elements ?? [];
  const names = members.map((m) => m.name).sort();
  const api = await import("../../src/gpu/mod.ts");
  const values = Object.keys(api).sort();
  deepEqual(values.filter((v) => !names.includes(v)), [], "values of gpu that deno doc lacks");
  for (const t of ["AdapterInfo", "AdapterProfile", "MemoryStats", "KernelTime", "Schedule"]) {
    equal(names.includes(t), true, `gpu.${t} listed`);
  }
  const undocumented = members.filter((m) => !m.declarations[0]?.jsDoc?.doc).map((m) => m.name);
  deepEqual(undocumented, [], "members without documentation");
});
