/**
 * The little of `Deno` that the test files touch, for running them in a page: `Deno.test`
 * (both forms the tests use) records each test with the file that registered it, and
 * `Deno.stat` refuses, as a file system that does not exist would. Everything else is
 * absent, so a test that reaches for it fails loudly instead of passing in silence.
 *
 * @module
 */

/** A test registered in the page. */
export interface BrowserTest {
  name: string;
  /** The test file that registered it, relative to the repository root. */
  file: string;
  fn: () => void | Promise<void>;
  /** `ignore: true` in its registration: Deno skips it too. */
  ignore: boolean;
}

/** The tests registered so far, in registration order. */
export const registered: BrowserTest[] = [];
let currentFile = "(no file)";

/** Names the test file whose registrations follow (tests/browser/suite.ts calls it per import). */
export function setFile(file: string): void {
  currentFile = file;
}

interface TestDefinition {
  name: string;
  fn: () => void | Promise<void>;
  ignore?: boolean;
}

function test(
  a: string | TestDefinition,
  b?: () => void | Promise<void>,
): void {
  const def: TestDefinition = typeof a === "string" ? { name: a, fn: b! } : a;
  if (typeof def.name !== "string" || typeof def.fn !== "function") {
    throw new Error(
      `${currentFile}: the browser's Deno.test takes (name, fn) or { name, fn, ... }`,
    );
  }
  if (registered.some((t) => t.name === def.name)) {
    throw new Error(`${currentFile}: a test named "${def.name}" is already registered`);
  }
  registered.push({ name: def.name, file: currentFile, fn: def.fn, ignore: def.ignore ?? false });
}

function stat(path: string | URL): Promise<never> {
  return Promise.reject(new Error(`no file system in the browser: ${path}`));
}

/** Installs the shim as `globalThis.Deno` (in a page, where there is none). */
export function installDenoShim(): void {
  if ("Deno" in globalThis) throw new Error("installDenoShim: Deno is already defined");
  Object.defineProperty(globalThis, "Deno", { value: { test, stat }, configurable: true });
}
