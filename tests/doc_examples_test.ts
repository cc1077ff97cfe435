/**
 * The documentation examples are what a user copies: every JSDoc `@example` of the entry points
 * (`mod.ts`, `train.ts`, `plot.ts`) and of `src/**` must import only the entry points (by the
 * relative path from its file to the repository root, as a program imports them by URL) or
 * `node:`/`npm:` modules, and must assert what it shows (`assert...` or `throw`), since
 * `console.log(x) // true` passes whatever is printed. And `deno doc mod.ts` must list every class
 * and function of `nn`, `optim` and `F` in those namespaces. (`deno test --doc` runs the
 * examples themselves.)
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const ENTRY_POINTS = ["mod.ts", "train.ts", "plot.ts"];

/** One fenced code block under an `@example` tag: its file and the line of its opening fence. */
interface Example {
  file: string;
  line: number;
  code: string;
}

/** Every `.ts` file under `dir` (a path relative to the root), sorted. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(new URL(dir, root))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/**
 * The code blocks of every `@example` in a file's JSDoc comments: from the tag to the next tag
 * or the comment's end, each ``` fence with its body (the leading ` * ` removed).
 */
export function examplesOf(file: string, text: string): Example[] {
  const lines = text.split("\n");
  const out: Example[] = [];
  let inDoc = false, inExample = false, fence: number | undefined, body: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (!inDoc) {
      if (/^\s*\/\*\*/.test(raw) && !/\*\/\s*$/.test(raw)) inDoc = true;
      inExample = false;
      continue;
    }
    const end = /\*\/\s*$/.test(raw);
    const line = raw.replace(/\*\/\s*$/, "").replace(/^\s*\* ?/, "");
    if (fence === undefined) {
      if (/^@\w+/.test(line)) inExample = line.startsWith("@example");
      else if (inExample && /^```/.test(line)) {
        fence = i + 1;
        body = [];
      }
    } else if (/^```\s*$/.test(line)) {
      out.push({ file, line: fence, code: body.join("\n") });
      fence = undefined;
    } else body.push(line);
    if (end) {
      inDoc = false;
      fence = undefined;
    }
  }
  return out;
}

/** What is wrong with one example, or nothing: imports other than the entry points, no assert. */
export function problemsOf(ex: Example): string[] {
  const problems: string[] = [];
  const dir = ex.file.split("/").slice(0, -1);
  const toRoot = dir.length === 0 ? "./" : "../".repeat(dir.length);
  const allowed = new Set(ENTRY_POINTS.map((e) => toRoot + e));
  const specifiers = [
    ...ex.code.matchAll(/\bfrom\s*["']([^"']+)["']/g),
    ...ex.code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']/g),
    ...ex.code.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
  ].map((m) => m[1]);
  for (const s of specifiers) {
    if (s.startsWith("node:") || s.startsWith("npm:") || allowed.has(s)) continue;
    problems.push(`imports "${s}", not an entry point (${[...allowed].join(", ")})`);
  }
  if (!/\bassert(\.\w+)?\s*\(|\bthrow\b/.test(ex.code)) {
    problems.push("asserts nothing (no assert, no throw)");
  }
  return problems;
}

/** `file:line: problem` for every example under the given files. */
function report(files: string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    const text = Deno.readTextFileSync(new URL(file, root));
    for (const ex of examplesOf(file, text)) {
      for (const p of problemsOf(ex)) out.push(`${ex.file}:${ex.line}: ${p}`);
    }
  }
  return out;
}

const library = [...ENTRY_POINTS, ...tsFiles("src")];

Deno.test("the checker sees a bad import and a missing assertion, and passes a good example", () => {
  const text = [
    "/**",
    " * Adds.",
    " * @example",
    " * ```ts",
    ' * import { SGD } from "./sgd.ts";',
    " * console.log(1 + 1); // 2",
    " * ```",
    " */",
    "/**",
    " * @example Named",
    " * ```ts",
    ' * import assert from "node:assert/strict";',
    ' * import { Tensor } from "../../mod.ts";',
    " * assert.equal(Tensor.from([1]).size, 1);",
    " * ```",
    " */",
  ].join("\n");
  const exs = examplesOf("src/optim/x.ts", text);
  assert.deepEqual(exs.map((e) => e.line), [4, 11]);
  assert.deepEqual(problemsOf(exs[0]), [
    'imports "./sgd.ts", not an entry point (../../mod.ts, ../../train.ts, ../../plot.ts)',
    "asserts nothing (no assert, no throw)",
  ]);
  assert.deepEqual(problemsOf(exs[1]), []);
  assert.deepEqual(problemsOf({ file: "mod.ts", line: 1, code: 'import "./mod.ts"; throw 1' }), []);
  const unused = { file: "mod.ts", line: 1, code: 'import assert from "node:assert/strict";' };
  assert.deepEqual(problemsOf(unused), ["asserts nothing (no assert, no throw)"]);
});

Deno.test("every doc example outside src/gpu imports only the entry points and asserts", () => {
  const files = library.filter((f) => !f.startsWith("src/gpu/"));
  const n = files.reduce(
    (s, f) => s + examplesOf(f, Deno.readTextFileSync(new URL(f, root))).length,
    0,
  );
  assert.ok(n > 90, `found only ${n} examples: is the parser broken?`);
  const problems = report(files);
  assert.deepEqual(problems, [], `${problems.length} problems:\n${problems.join("\n")}`);
});

Deno.test("every doc example in src/gpu imports only the entry points and asserts", () => {
  const problems = report(library.filter((f) => f.startsWith("src/gpu/")));
  assert.deepEqual(problems, [], `${problems.length} problems:\n${problems.join("\n")}`);
});

/** The `deno doc --json` nodes of a module's exported symbols. */
// deno-lint-ignore no-explicit-any
type DocSymbol = { name: string; declarations: { kind: string; def?: any }[] };

async function docSymbols(file: string): Promise<DocSymbol[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", file],
    cwd: root,
  }).output();
  const td = new TextDecoder();
  assert.equal(code, 0, `deno doc --json ${file} failed: ${td.decode(stderr)}`);
  const json = JSON.parse(td.decode(stdout));
  return Object.values(json.nodes as Record<string, { symbols: DocSymbol[] }>)[0].symbols;
}

for (
  const [ns, file] of [["nn", "src/nn/mod.ts"], ["optim", "src/optim/mod.ts"], [
    "F",
    "src/nn/functional.ts",
  ]]
) {
  Deno.test(`deno doc mod.ts lists every class and function of ${file} in ${ns}`, async () => {
    const want = (await docSymbols(file))
      .filter((s) => s.declarations.some((d) => d.kind === "class" || d.kind === "function"))
      .map((s) => s.name).sort();
    assert.ok(want.length > 3, `${file}: only ${want.length} classes and functions`);
    const node = (await docSymbols("mod.ts")).find((s) => s.name === ns);
    assert.ok(node, `mod.ts exports no ${ns}`);
    const elements: DocSymbol[] = node.declarations[0].def?.elements ?? [];
    const listed = new Set(elements.map((e) => e.name));
    const missing = want.filter((n) => !listed.has(n));
    assert.deepEqual(missing, [], `deno doc mod.ts: ${ns} lacks ${missing.join(", ")}`);
  });
}
