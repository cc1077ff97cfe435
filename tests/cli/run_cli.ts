/** Runs `deno task train`'s script in a process of its own, for the CLI's tests. */
import { ok } from "node:assert/strict";
import { parseTrainArgs, UsageError } from "../../src/cli/train.ts";

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

/** A trainer running in the background: its process, its stderr, and its stdout as it comes. */
export interface RunningCli {
  child: Deno.ChildProcess;
  /** All of stderr, once the process has closed it. */
  stderr: Promise<string>;
  /** Reads stdout until it holds `text` (or ends); returns all of stdout read so far. */
  readUntil(text: string): Promise<string>;
  /** Reads stdout to its end; returns all of it. */
  readAll(): Promise<string>;
}

/** Starts the trainer with `args`, its output piped, colourless. */
export function startCli(args: string[]): RunningCli {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN_SCRIPT, ...args],
    env: { XDG_RUNTIME_DIR: "/tmp/xdg", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const readUntil = async (text: string | null) => {
    while (text === null || !stdout.includes(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    return stdout;
  };
  return {
    child,
    stderr: new Response(child.stderr).text(),
    readUntil,
    readAll: () => readUntil(null),
  };
}

/** Asserts that each of `cases`' arguments is refused by parseTrainArgs with a message matching. */
export function expectUsageErrors(cases: [string[], RegExp][]): void {
  for (const [args, msg] of cases) {
    try {
      parseTrainArgs(args);
    } catch (e) {
      ok(e instanceof UsageError, `${args}: ${e}`);
      ok(msg.test((e as Error).message), `${args}: ${(e as Error).message}`);
      continue;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  }
}
