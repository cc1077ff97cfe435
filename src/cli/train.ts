/**
 * `deno task train`: trains the lecture's LeNet on Fashion-MNIST and writes the run to a
 * folder: `metrics.jsonl`, `curves.svg`, `curves.png` and `model.safetensors`.
 *
 * The defaults reproduce the lecture: LeNet with batch normalization, sigmoid, max
 * pooling, SGD with lr 1.0, 10 epochs, batch 256, seed 0. Usage errors exit with code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { adapterInfo, getDevice } from "../gpu/device.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { DataLoader } from "../data/loader.ts";
import { lenet } from "../models/lenet.ts";
import { type EpochEvent, fit, type UpdateEvent } from "../train/fit.ts";
import { saveCheckpoint } from "../train/checkpoint.ts";
import { curvesPng, curvesSvg } from "../plot/curves.ts";

/** The usage text printed by `--help` and after a usage error. */
export const USAGE = `Usage: deno task train [options]

Trains LeNet on Fashion-MNIST with SGD and cross-entropy (d2l's train_ch6).

Options:
  --norm batch|layer|none   normalization layers (default batch: the lecture's LeNet + BN)
  --pool max|avg            pooling (default max, as in the lecture; the book uses avg)
  --activation sigmoid|relu activation (default sigmoid)
  --lr X                    learning rate (default 1.0)
  --epochs N                passes over the training set (default 10)
  --batch-size N            examples per step (default 256)
  --seed N                  seed of the initialisation and the shuffle (default 0)
  --data DIR                where the Fashion-MNIST files are (default: search the usual places)
  --out DIR                 where to write the run (default runs/<timestamp>/)
  --limit N                 use only the first N training and N test examples
  --help                    show this help
`;

/** A parsed command line. */
export interface TrainConfig {
  norm: "batch" | "layer" | "none";
  pool: "max" | "avg";
  activation: "sigmoid" | "relu";
  lr: number;
  epochs: number;
  batchSize: number;
  seed: number;
  data?: string;
  out: string;
  limit?: number;
}

/** A command-line mistake: the message names the flag; the CLI exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

function choice<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) {
    throw new UsageError(
      `--${flag} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`,
    );
  }
  return v as T;
}

function number(flag: string, v: string, { integer = false, min = -Infinity } = {}): number {
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < min) {
    const what = integer ? `a whole number >= ${min}` : `a number > 0`;
    throw new UsageError(`--${flag} must be ${what}, got ${JSON.stringify(v)}`);
  }
  return x;
}

function timestamp(d = new Date()): string {
  return d.toISOString().slice(0, 19).replace(/:/g, "-");
}

/**
 * Parses the command line into a {@link TrainConfig}; throws {@link UsageError} naming the
 * bad flag. Returns `"help"` for `--help`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainArgs } from "./train.ts";
 * const c = parseTrainArgs(["--norm", "none", "--lr", "0.9", "--out", "runs/plain"]);
 * assert.ok(c !== "help");
 * assert.deepEqual([c.norm, c.lr, c.epochs, c.batchSize], ["none", 0.9, 10, 256]);
 * ```
 */
export function parseTrainArgs(args: string[]): TrainConfig | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        norm: { type: "string", default: "batch" },
        pool: { type: "string", default: "max" },
        activation: { type: "string", default: "sigmoid" },
        lr: { type: "string", default: "1.0" },
        epochs: { type: "string", default: "10" },
        "batch-size": { type: "string", default: "256" },
        seed: { type: "string", default: "0" },
        data: { type: "string" },
        out: { type: "string" },
        limit: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return "help";
  const s = (k: string) => values[k] as string;
  const lr = number("lr", s("lr"));
  if (!(lr > 0)) throw new UsageError(`--lr must be a number > 0, got ${JSON.stringify(s("lr"))}`);
  return {
    norm: choice("norm", s("norm"), ["batch", "layer", "none"] as const),
    pool: choice("pool", s("pool"), ["max", "avg"] as const),
    activation: choice("activation", s("activation"), ["sigmoid", "relu"] as const),
    lr,
    epochs: number("epochs", s("epochs"), { integer: true, min: 1 }),
    batchSize: number("batch-size", s("batch-size"), { integer: true, min: 1 }),
    seed: number("seed", s("seed"), { integer: true, min: 0 }),
    data: values.data as string | undefined,
    out: (values.out as string | undefined) ?? `runs/${timestamp()}`,
    limit: values.limit === undefined ? undefined : number("limit", s("limit"), {
      integer: true,
      min: 1,
    }),
  };
}

const pct = (v: number) => v.toFixed(3);

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  let config: TrainConfig | "help";
  try {
    config = parseTrainArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  const c = config;
  await getDevice();
  const info = await adapterInfo();
  console.log(
    `adapter: ${info.description}${info.isFallbackAdapter ? " (software fallback)" : ""}`,
  );

  const [train, test] = await Promise.all(
    (["train", "test"] as const).map((split) => loadFashionMnist({ split, dir: c.data })),
  );
  using trainLoader = new DataLoader(train, {
    batchSize: c.batchSize,
    shuffle: true,
    seed: c.seed,
    limit: c.limit,
  });
  using testLoader = new DataLoader(test, { batchSize: c.batchSize, limit: c.limit });
  const net = lenet({ norm: c.norm, pool: c.pool, activation: c.activation });
  console.log(
    `LeNet norm=${c.norm} pool=${c.pool} activation=${c.activation}, lr ${c.lr}, ` +
      `${c.epochs} epochs, batch ${c.batchSize}, seed ${c.seed}, ` +
      `${Math.min(train.n, c.limit ?? Infinity)} train / ${
        Math.min(test.n, c.limit ?? Infinity)
      } test examples`,
  );

  await Deno.mkdir(c.out, { recursive: true });
  const metrics = await Deno.open(`${c.out}/metrics.jsonl`, {
    write: true,
    create: true,
    truncate: true,
  });
  const enc = new TextEncoder();
  const log = (o: Record<string, unknown>) =>
    metrics.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  log({ type: "config", ...c, adapter: info.description });
  try {
    const history = await fit(net, trainLoader, testLoader, {
      epochs: c.epochs,
      lr: c.lr,
      seed: c.seed,
      progress: true,
      onUpdate: (u: UpdateEvent) => log({ type: "update", ...u }),
      onEpoch: (e: EpochEvent) => {
        log({ type: "epoch", ...e });
        console.log(
          `epoch ${e.epoch}: loss ${pct(e.loss)}, train acc ${pct(e.trainAcc)}, ` +
            `test acc ${pct(e.testAcc)}, ${e.seconds.toFixed(1)} s ` +
            `(${Math.round(e.examplesPerSec)} examples/sec)`,
        );
      },
    });
    const title = `LeNet${c.norm === "batch" ? " + BN" : c.norm === "layer" ? " + LN" : ""}, ` +
      `lr ${c.lr}`;
    await Deno.writeTextFile(`${c.out}/curves.svg`, curvesSvg(history, { title }));
    await Deno.writeFile(`${c.out}/curves.png`, await curvesPng(history, { title }));
    await saveCheckpoint(net, `${c.out}/model.safetensors`, {
      metadata: { config: JSON.stringify(c), epochs: String(history.epochs.length) },
    });
    const last = history.epochs.at(-1)!;
    const total = history.epochs.reduce((a, e) => a + e.seconds, 0);
    const examples = history.epochs.reduce((a, e) => a + e.examplesPerSec * e.seconds, 0);
    console.log(
      `loss ${pct(last.loss)}, train acc ${pct(last.trainAcc)}, test acc ${pct(last.testAcc)}`,
    );
    console.log(`${Math.round(examples / total)} examples/sec on ${info.description}`);
    console.log(`wrote ${c.out}/{metrics.jsonl,curves.svg,curves.png,model.safetensors}`);
  } finally {
    metrics.close();
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
