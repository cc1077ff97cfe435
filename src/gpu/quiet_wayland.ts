/**
 * On Linux, Mesa's Vulkan drivers probe Wayland when WebGPU starts, and the Wayland client
 * library prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` (twice)
 * when that variable is unset, as it is for root, in containers, CI and `ssh` sessions
 * without a login manager. The lines are harmless (there is no display to connect to) but
 * read as errors in every GPU process's output. The library checks only that the value is an
 * absolute path, so {@link quietWayland} sets one that names no socket for the adapter's
 * creation and takes it away again: nothing is created, and the process's environment is as
 * it was afterwards. Elsewhere (another system, a browser, no `--allow-env`, the variable
 * set) it only runs `acquire`.
 *
 * @module
 */

/** What this uses of the `Deno` global, which a page does not have. */
interface DenoEnv {
  build: { os: string };
  env: {
    get(k: string): string | undefined;
    set(k: string, v: string): void;
    delete(k: string): void;
  };
}

/** The path set for the adapter's creation: absolute, and no Wayland socket is there. */
export const NO_DISPLAY_DIR = "/nonexistent/bnlab-no-wayland";

/**
 * Runs `acquire` (the adapter's and device's creation) with XDG_RUNTIME_DIR set to
 * {@link NO_DISPLAY_DIR} when it is unset on Linux; then unsets it again.
 */
export async function quietWayland<T>(acquire: () => Promise<T>): Promise<T> {
  const deno = (globalThis as { Deno?: DenoEnv }).Deno;
  let set = false;
  try {
    if (deno?.build.os === "linux" && deno.env.get("XDG_RUNTIME_DIR") === undefined) {
      deno.env.set("XDG_RUNTIME_DIR", NO_DISPLAY_DIR);
      set = true;
    }
  } catch { /* no --allow-env: the lines may show, nothing else changes */ }
  try {
    return await acquire();
  } finally {
    if (set) deno!.env.delete("XDG_RUNTIME_DIR");
  }
}
