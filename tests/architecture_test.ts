// The shape of the library: entry points that import from anywhere, a core that loads
// no npm package, no import cycle in src/, and nothing below the CLI importing it.
import { deepEqual, equal, ok } from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

/** Every .ts file under `dir`, relative to the repository root. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(root + dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** The relative `.ts` modules a file imports or re-exports (type-only imports included). */
function localImports(file: string): string[] {
  const text = Deno.readTextFileSync(root + file).replace(/\/\*[\s\S]*?\*\//g, ""); // no JSDoc examples
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)].map((m) =>
    m[1]
  );
  const dir = file.slice(0, file.lastIndexOf("/"));
  return specs.filter((s) => s.startsWith(".") && s.endsWith(".ts")).map((s) =>
    new URL(s, `file:///${dir}/`).pathname.slice(1)
  );
}

Deno.test("src/ has no import cycle, type-only imports included (#7)", () => {
  const files = tsFiles("src");
  const graph = new Map(files.map((f) => [f, localImports(f)]));
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      cycles.push([...path.slice(path.indexOf(f)), f].join(" -> "));
      return;
    }
    state.set(f, "open");
    for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
    state.set(f, "done");
  };
  for (const f of files) visit(f, []);
  deepEqual(cycles, []);
  ok(
    graph.get("src/tensor/tensor.ts")!.includes("src/ops/elementwise/elementwise.ts"),
    "the check sees imports",
  );
});

Deno.test("nothing in src/ below cli/ imports from cli/ (#7)", () => {
  const offenders = tsFiles("src").filter((f) => !f.startsWith("src/cli/")).filter((f) =>
    localImports(f).some((g) => g.startsWith("src/cli/"))
  );
  deepEqual(offenders, []);
});

async function deno(
  args: string[],
  cwd: string,
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test({
  name: "each entry point imports by path from an empty directory with plain deno run (#7)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const readme = Deno.readTextFileSync(root + "README.md");
      const example =
        readme.match(/```ts\n(import \{ nn, Tensor \} from "\.\/mod\.ts";[\s\S]*?)```/)![1];
      const script = example.replace(`"./mod.ts"`, JSON.stringify(root + "mod.ts")) +
        `import { fit, DataLoader } from ${JSON.stringify(root + "train.ts")};\n` +
        `import { plotSvg, Plot } from ${JSON.stringify(root + "plot.ts")};\n` +
        `console.log(typeof fit, typeof DataLoader, plotSvg({ marks: [Plot.lineY([1, 2])] }).slice(0, 4));\n`;
      await Deno.writeTextFile(`${dir}/user.ts`, script);
      const r = await deno(["run", "-A", "user.ts"], dir);
      equal(r.code, 0, r.err);
      ok(r.out.includes("function function <svg"), r.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the core's module graph holds no npm package; plotting's does (#7)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // The modules of an entry's graph (deno info's npmPackages lists the whole lockfile).
    const npm = async (entry: string) => {
      const r = await deno(["info", "--json", root + entry], root);
      equal(r.code, 0, r.err);
      const info = JSON.parse(r.out) as { modules: { specifier: string }[] };
      ok(info.modules.length > 3, `${entry}: a graph was read`);
      return info.modules.map((m) => m.specifier).filter((s) => s.startsWith("npm:"));
    };
    deepEqual(await npm("mod.ts"), [], "mod.ts loads no npm package");
    deepEqual(await npm("train.ts"), [], "train.ts loads no npm package");
    const plot = (await npm("plot.ts")).join(" ");
    ok(plot.includes("@observablehq/plot") && plot.includes("@napi-rs/canvas"), plot);
  },
});

Deno.test("every op's list of schedules is in src/ops/schedules.ts, and no adapter test elsewhere", () => {
  const lists = tsFiles("src/ops").flatMap((f) =>
    [...Deno.readTextFileSync(root + f).matchAll(/^export const ([A-Z0-9_]+_SCHEDULES)\b/gm)].map(
      (m) => m[1],
    )
  );
  ok(lists.length >= 4, `found ${lists}`);
  const table = Deno.readTextFileSync(root + "src/ops/schedules.ts");
  deepEqual(lists.filter((l) => !new RegExp(`:\\s*${l}\\b`).test(table)), []);
  // Per-adapter choices go through the profile (src/gpu/profile.ts), nowhere else.
  const branches = tsFiles("src").filter((f) => !f.startsWith("src/gpu/")).filter((f) =>
    /adapterInfo\.isFallbackAdapter|\.measured\s*===/.test(
      Deno.readTextFileSync(root + f).replace(/\/\*[\s\S]*?\*\//g, ""), // not in JSDoc examples
    )
  );
  deepEqual(branches, []);
});
