/** Runs `deno task train`'s script in a process of its own, for the CLI's tests. */

/** The trainer's entry point. */
export const TRAIN_SCRIPT = new URL("../../src/cli/train.ts", import.meta.url).pathname;

/** Runs the trainer with `args`; its exit code and output, colourless. */
export async function runCli(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN_SCRIPT, ...args],
    env: { XDG_RUNTIME_DIR: "/tmp/xdg", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
