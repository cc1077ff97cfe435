/**
 * `deno task train`: trains the lecture's LeNet on Fashion-MNIST and writes the run to a
 * folder: `metrics.jsonl`, `curves.svg`, `curves.png` and `model.safetensors`.
 *
 * The defaults reproduce the lecture: LeNet with batch normalization, sigmoid, max
 * pooling, SGD with lr 1.0, 10 epochs, batch 256, seed 0. Usage errors exit with code 2,
 * other failures (missing data, a diverging run) with code 1 and one line saying why.
 * The checkpoint is written after every epoch (atomically, and only while the weights
 * are finite), so a run that fails late keeps its last good model. The run holds its
 * folder alone (`run_folder.ts`: a lock, files created exclusively, `--overwrite` replacing
 * a run whole), and every file it writes carries its id (`runId`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { adapterInfo, getDevice } from "../gpu/device.ts";
import { GPUAllocationError } from "../gpu/buffer_pool.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { DataLoader } from "../data/loader.ts";
import { lenet } from "../models/lenet.ts";
import { DivergenceError, type EpochEvent, fit, type UpdateEvent } from "../train/fit.ts";
import { saveCheckpoint } from "../train/checkpoint.ts";
import { EXIT_INTERRUPTED, stopOnCtrlC } from "./interrupt.ts";
import { curvesPng, curvesSvg } from "../plot/curves.ts";
import { checkFlagImplications, lastBatchNote } from "./flag_checks.ts";
import { RunFolder, RunFolderError } from "./run_folder.ts";
import { withPngText } from "./png_text.ts";

/** The usage text printed by `--help` and after a usage error. */
export const USAGE = `Usage: deno task train [options]

Trains LeNet on Fashion-MNIST with SGD and cross-entropy (d2l's train_ch6).

Options:
  --norm batch|layer|group|ghost|none
                            normalization layers (default batch: the lecture's LeNet + BN;
                            group: GroupNorm with 2 groups; ghost: ghost batches of 32)
  --pool max|avg            pooling (default max, as in the lecture; the book uses avg)
  --activation sigmoid|relu activation (default sigmoid)
  --lr X                    learning rate (default 1.0)
  --epochs N                passes over the training set (default 10)
  --batch-size N            examples per step (default 256)
  --seed N                  seed of the initialisation and the shuffle, 0 to 4294967295
                            (default 0)
  --data DIR                the directory holding the Fashion-MNIST files (default: search
                            $FASHION_MNIST_DIR, ./data/fashion-mnist, /usr/share/datasets)
  --out DIR                 where to write the run (default runs/<timestamp>/, made anew);
                            one run at a time: a folder in use by a run is refused
  --overwrite               allow --out to be a directory that already holds a run (and
                            nothing else): the old run is moved aside whole, then deleted
  --limit N                 use only the first N training and N test examples
  --help                    show this help
`;

/** A parsed command line. */
export interface TrainConfig {
  norm: "batch" | "layer" | "group" | "ghost" | "none";
  pool: "max" | "avg";
  activation: "sigmoid" | "relu";
  lr: number;
  epochs: number;
  batchSize: number;
  seed: number;
  data?: string;
  out: string;
  overwrite: boolean;
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

/** Plain decimal notation only: no hex, binary, octal, Infinity or empty strings. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function number(flag: string, v: string, { integer = false, min = -Infinity } = {}): number {
  const x = Number(v);
  if (
    !DECIMAL.test(v.trim()) || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < min
  ) {
    const what = integer ? `a whole number >= ${min}` : `a number > 0`;
    throw new UsageError(`--${flag} must be ${what} in decimal notation, got ${JSON.stringify(v)}`);
  }
  return x;
}

function path(flag: string, v: string | undefined): string | undefined {
  if (v !== undefined && v.trim() === "") {
    throw new UsageError(`--${flag} must be a directory path, got an empty string`);
  }
  return v;
}

function timestamp(d = new Date()): string {
  return d.toISOString().slice(0, 19).replace(/:/g, "-");
}

/**
 * Parses the command line into a {@link TrainConfig}; throws {@link UsageError} naming the
 * bad flag. Returns `"help"` for `--help`.
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
        overwrite: { type: "boolean", default: false },
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
  const config: TrainConfig = {
    norm: choice("norm", s("norm"), ["batch", "layer", "group", "ghost", "none"] as const),
    pool: choice("pool", s("pool"), ["max", "avg"] as const),
    activation: choice("activation", s("activation"), ["sigmoid", "relu"] as const),
    lr,
    epochs: number("epochs", s("epochs"), { integer: true, min: 1 }),
    batchSize: number("batch-size", s("batch-size"), { integer: true, min: 1 }),
    seed: number("seed", s("seed"), { integer: true, min: 0 }),
    data: path("data", values.data as string | undefined),
    out: path("out", values.out as string | undefined) ?? `runs/${timestamp()}`,
    overwrite: values.overwrite as boolean,
    limit: values.limit === undefined ? undefined : number("limit", s("limit"), {
      integer: true,
      min: 1,
    }),
  };
  checkFlagImplications(config, (m) => new UsageError(m));
  return config;
}

const pct = (v: number) => v.toFixed(3);

/** The files a run writes into `--out`. */
const RUN_FILES = ["metrics.jsonl", "model.safetensors", "curves.svg", "curves.png"];

/** Opens the run's folder (see run_folder.ts); a default `--out` is made unique. */
function openRunFolder(c: TrainConfig, args: string[]): Promise<RunFolder> {
  const unique = !args.some((a) => a === "--out" || a.startsWith("--out="));
  return RunFolder.open(c.out, { files: RUN_FILES, overwrite: c.overwrite, unique });
}

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
  let run: RunFolder;
  try {
    run = await openRunFolder(config, args);
  } catch (e) {
    if (!(e instanceof RunFolderError)) throw e;
    console.error(`error: ${e.message}`);
    return 2;
  }
  using _run = run;
  const c = { ...config, out: run.path };
  if (run.replaced) console.log(`note: the run that was in ${c.out} was replaced`);
  await getDevice();
  const info = await adapterInfo();
  console.log(
    `adapter: ${info.description}${info.isFallbackAdapter ? " (software fallback)" : ""}`,
  );

  const [train, test] = await Promise.all(
    (["train", "test"] as const).map((split) => loadFashionMnist({ split, dir: c.data })),
  );
  const nTrain = Math.min(train.n, c.limit ?? Infinity);
  const nTest = Math.min(test.n, c.limit ?? Infinity);
  // A last batch (or ghost batch) of one example cannot be batch-normalized: leave it out.
  const lastNote = lastBatchNote(nTrain, c.batchSize, c.norm);
  const dropLast = lastNote !== undefined;
  using trainLoader = new DataLoader(train, {
    batchSize: c.batchSize,
    shuffle: true,
    seed: c.seed,
    limit: c.limit,
    dropLast,
  });
  using testLoader = new DataLoader(test, { batchSize: c.batchSize, limit: c.limit });
  const net = lenet({ norm: c.norm, pool: c.pool, activation: c.activation });
  console.log(
    `LeNet norm=${c.norm} pool=${c.pool} activation=${c.activation}, lr ${c.lr}, ` +
      `${c.epochs} epochs, batch ${c.batchSize}, seed ${c.seed}, ` +
      `${nTrain} train / ${nTest} test examples`,
  );
  console.log(`data: ${train.files.images} and ${test.files.images} (with their labels)`);
  if (lastNote) console.log(`note: ${lastNote}`);

  const metrics = await run.create("metrics.jsonl");
  const enc = new TextEncoder();
  const log = (o: Record<string, unknown>): void => {
    metrics.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  };
  const checkpoint = `${c.out}/model.safetensors`;
  let saved = 0; // epochs in the checkpoint on disk
  log({
    type: "config",
    runId: run.id,
    ...c,
    adapter: info.description,
    trainFiles: train.files,
    testFiles: test.files,
  });
  using ctrlC = stopOnCtrlC();
  try {
    const history = await fit(net, trainLoader, testLoader, {
      signal: ctrlC.signal,
      epochs: c.epochs,
      lr: c.lr,
      init: "xavier",
      seed: c.seed,
      progress: true,
      onUpdate: (u: UpdateEvent) => log({ type: "update", ...u }),
      onEpoch: async (e: EpochEvent) => {
        log({ type: "epoch", ...e });
        console.log(
          `epoch ${e.epoch}: loss ${pct(e.loss)}, train acc ${pct(e.trainAcc)}, ` +
            `test acc ${pct(e.testAcc)}, ${e.seconds.toFixed(1)} s ` +
            `(${Math.round(e.examplesPerSec)} examples/sec)`,
        );
        // The model first, every epoch: nothing trained is lost if a later step fails.
        await saveCheckpoint(net, checkpoint, {
          metadata: { config: JSON.stringify(c), epochs: String(e.epoch), run_id: run.id },
        });
        saved = e.epoch;
      },
    });
    if (history.stopped) {
      log({ type: "interrupted", ...history.stopped });
      console.error(
        `stopped in epoch ${history.stopped.epoch}: ${keptCheckpoint(checkpoint, saved)}`,
      );
      return EXIT_INTERRUPTED;
    }
    const last = history.epochs.at(-1)!;
    const total = history.epochs.reduce((a, e) => a + e.seconds, 0);
    const examples = history.epochs.reduce((a, e) => a + e.examplesPerSec * e.seconds, 0);
    console.log(
      `loss ${pct(last.loss)}, train acc ${pct(last.trainAcc)}, test acc ${pct(last.testAcc)}`,
    );
    console.log(`${Math.round(examples / total)} examples/sec on ${info.description}`);
    const title = `LeNet${
      { batch: " + BN", layer: " + LN", group: " + GN", ghost: " + ghost BN", none: "" }[c.norm]
    }, lr ${c.lr}`;
    const written = ["metrics.jsonl", "model.safetensors"];
    try {
      // Each chart carries the run's id: an XML comment in the SVG, a tEXt entry in the PNG.
      const svg = curvesSvg(history, { title }).replace(">", `><!-- bnlab run ${run.id} -->`);
      await run.write("curves.svg", new TextEncoder().encode(svg));
      const png = await curvesPng(history, { title });
      await run.write("curves.png", withPngText(png, "bnlab-run", run.id));
      written.push("curves.svg", "curves.png");
    } catch (e) {
      console.error(`warning: the charts could not be drawn (${(e as Error).message})`);
    }
    console.log(`wrote ${c.out}/{${written.join(",")}}`);
  } catch (e) {
    const kept = keptCheckpoint(checkpoint, saved);
    if (e instanceof DivergenceError) {
      log({ type: "diverged", epoch: e.epoch, step: e.step, loss: String(e.loss) });
      console.error(`error: ${e.message}; ${kept}`);
      return 1;
    }
    if (e instanceof GPUAllocationError) {
      console.error(`error: ${e.message}; lower --batch-size (now ${c.batchSize}); ${kept}`);
      return 1;
    }
    throw new Error(`${(e as Error).message}; ${kept}`);
  } finally {
    metrics.close();
  }
  return 0;
}

/** What is on disk after a run stopped early. */
function keptCheckpoint(checkpoint: string, saved: number): string {
  return saved ? `${checkpoint} holds the model after epoch ${saved}` : "no checkpoint was written";
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
