/**
 * `deno task train`: trains the lecture's LeNet on Fashion-MNIST and writes the run to a
 * folder: `metrics.jsonl`, `curves.svg`, `curves.png` and `model.safetensors`.
 *
 * The defaults reproduce the lecture: LeNet with batch normalization, sigmoid, max
 * pooling, SGD with lr 1.0, 10 epochs, batch 256, seed 0. `--optimizer`, `--momentum`,
 * `--weight-decay` and `--schedule` choose PyTorch's SGD, Adam or AdamW and a per-epoch
 * learning-rate schedule. After every epoch the run's whole training state goes to
 * `resume.safetensors` (see `training_state.ts`), and `--resume DIR` continues the run in
 * DIR, in its folder and under its id, as if it had never stopped. Usage errors exit with code 2,
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
import {
  loadTrainingState,
  readTrainingStateMetadata,
  saveTrainingState,
} from "../train/training_state.ts";
import type { History } from "../train/fit.ts";
import type { Module } from "../nn/module.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { SGD } from "../optim/sgd.ts";
import { Adam, AdamW } from "../optim/adam.ts";
import { CosineAnnealingLR, type LRScheduler, StepLR } from "../optim/schedulers.ts";
import { EXIT_INTERRUPTED, stopOnCtrlC } from "./interrupt.ts";
import { curvesPng, curvesSvg } from "../plot/curves.ts";
import {
  checkFlagImplications,
  checkOptimizerFlags,
  lastBatchNote,
  parseSchedule,
} from "./flag_checks.ts";
import { RunFolder, RunFolderError } from "./run_folder.ts";
import { withPngText } from "./png_text.ts";

/** The usage text printed by `--help` and after a usage error. */
export const USAGE = `Usage: deno task train [options]

Trains LeNet on Fashion-MNIST with SGD (or Adam, AdamW) and cross-entropy (d2l's train_ch6).

Options:
  --norm batch|layer|group|ghost|none
                            normalization layers (default batch: the lecture's LeNet + BN;
                            group: GroupNorm with 2 groups; ghost: ghost batches of 32)
  --pool max|avg            pooling (default max, as in the lecture; the book uses avg)
  --activation sigmoid|relu activation (default sigmoid)
  --optimizer sgd|adam|adamw
                            optimizer, as PyTorch's (default sgd)
  --lr X                    learning rate (default 1.0 with sgd, 0.001 with adam and adamw,
                            PyTorch's default)
  --momentum X              SGD momentum, from 0 to below 1 (default 0); sgd only
  --weight-decay X          weight decay: L2 penalty for sgd and adam, decoupled for adamw
                            (default 0; 0.01 with adamw, as PyTorch)
  --schedule none|step:STEP_SIZE[:GAMMA]|cosine[:T_MAX]
                            learning rate per epoch (default none): step multiplies it by
                            GAMMA (default 0.1) every STEP_SIZE epochs (StepLR); cosine
                            anneals it to 0 over T_MAX epochs (default --epochs;
                            CosineAnnealingLR)
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
  --resume DIR              continue the run in DIR (its folder and id) up to --epochs in
                            all (default: the epochs it was started with), with its saved
                            weights, optimizer, schedule, shuffle order and metrics, as if it
                            had never stopped; other flags, if given, must match the run's
  --help                    show this help
`;

/** A parsed command line. */
export interface TrainConfig {
  norm: "batch" | "layer" | "group" | "ghost" | "none";
  pool: "max" | "avg";
  activation: "sigmoid" | "relu";
  optimizer: "sgd" | "adam" | "adamw";
  lr: number;
  momentum: number;
  weightDecay: number;
  /** The learning-rate schedule, every default written out: `none`, `step:3:0.1`, `cosine:10`. */
  schedule: string;
  epochs: number;
  batchSize: number;
  seed: number;
  data?: string;
  out: string;
  overwrite: boolean;
  limit?: number;
  /** The run folder to continue (`--resume`); the other fields then come from its saved run. */
  resume?: string;
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
    const what = integer
      ? `a whole number >= ${min}`
      : min === 0
      ? "a number >= 0"
      : `a number > 0`;
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
  const parsed = parseFlags(args);
  return parsed === "help" ? parsed : parsed.config;
}

/** The defaults of the flags that have one (`--lr` and `--weight-decay` by optimizer). */
const DEFAULTS: Record<string, string> = {
  norm: "batch",
  pool: "max",
  activation: "sigmoid",
  optimizer: "sgd",
  momentum: "0",
  schedule: "none",
  epochs: "10",
  "batch-size": "256",
  seed: "0",
};

/** {@link parseTrainArgs}, and the flags that the command line gave (by option name). */
function parseFlags(args: string[]): { config: TrainConfig; given: Set<string> } | "help" {
  let values: Record<string, string | boolean | undefined>;
  const str = { type: "string" } as const;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        norm: str,
        pool: str,
        activation: str,
        optimizer: str,
        lr: str,
        momentum: str,
        "weight-decay": str,
        schedule: str,
        epochs: str,
        "batch-size": str,
        seed: str,
        data: str,
        out: str,
        overwrite: { type: "boolean" },
        limit: str,
        resume: str,
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return "help";
  const given = new Set(Object.keys(values).filter((k) => values[k] !== undefined));
  const optimizer = choice(
    "optimizer",
    (values.optimizer as string) ?? "sgd",
    [
      "sgd",
      "adam",
      "adamw",
    ] as const,
  );
  const s = (k: string) =>
    (values[k] as string | undefined) ??
      DEFAULTS[k] ??
      {
        lr: optimizer === "sgd" ? "1.0" : "0.001",
        "weight-decay": optimizer === "adamw" ? "0.01" : "0",
      }[
        k
      ]!;
  const lr = number("lr", s("lr"));
  if (!(lr > 0)) throw new UsageError(`--lr must be a number > 0, got ${JSON.stringify(s("lr"))}`);
  const epochs = number("epochs", s("epochs"), { integer: true, min: 1 });
  const config: TrainConfig = {
    norm: choice("norm", s("norm"), ["batch", "layer", "group", "ghost", "none"] as const),
    pool: choice("pool", s("pool"), ["max", "avg"] as const),
    activation: choice("activation", s("activation"), ["sigmoid", "relu"] as const),
    optimizer,
    lr,
    momentum: number("momentum", s("momentum"), { min: 0 }),
    weightDecay: number("weight-decay", s("weight-decay"), { min: 0 }),
    schedule: parseSchedule(s("schedule"), epochs, (m) => new UsageError(m)).text,
    epochs,
    batchSize: number("batch-size", s("batch-size"), { integer: true, min: 1 }),
    seed: number("seed", s("seed"), { integer: true, min: 0 }),
    data: path("data", values.data as string | undefined),
    out: path("out", values.out as string | undefined) ?? `runs/${timestamp()}`,
    overwrite: (values.overwrite as boolean | undefined) ?? false,
    limit: values.limit === undefined ? undefined : number("limit", s("limit"), {
      integer: true,
      min: 1,
    }),
    resume: path("resume", values.resume as string | undefined),
  };
  if (config.resume === undefined) {
    checkFlagImplications(config, (m) => new UsageError(m));
    checkOptimizerFlags(config, given, (m) => new UsageError(m));
  }
  return { config, given };
}

/** The config fields that a flag sets, by flag (the ones a resumed run takes from its run). */
const FIELD_OF: Record<string, keyof TrainConfig> = {
  norm: "norm",
  pool: "pool",
  activation: "activation",
  optimizer: "optimizer",
  lr: "lr",
  momentum: "momentum",
  "weight-decay": "weightDecay",
  schedule: "schedule",
  "batch-size": "batchSize",
  seed: "seed",
  limit: "limit",
  out: "out",
};

/** What a run's folder holds about it, read under its lock before anything is loaded. */
interface SavedRun {
  config: TrainConfig;
  runId: string;
  /** Epochs done. */
  epochs: number;
  /** Bytes of metrics.jsonl that the saved state accounts for. */
  metricsBytes: number;
}

/** The file in a run folder that holds the run's whole training state. */
const STATE_FILE = "resume.safetensors";

/** Reads the saved state of the run in `dir`, refusing a folder that holds no run to resume. */
async function readSavedRun(dir: string): Promise<SavedRun> {
  const has = async (f: string) => (await Deno.lstat(`${dir}/${f}`).catch(() => null)) !== null;
  if (!(await has(STATE_FILE))) {
    throw new RunFolderError(
      (await has("metrics.jsonl"))
        ? `--resume ${dir} holds a run without ${STATE_FILE} (it stopped before its first ` +
          "epoch ended, or was made by a version of bnlab that did not save it): it cannot be " +
          "resumed; start a new run"
        : `--resume ${dir} is not the folder of a run of deno task train (no ${STATE_FILE}, ` +
          "no metrics.jsonl): pass the --out of a run",
    );
  }
  let meta: Record<string, string>;
  try {
    meta = await readTrainingStateMetadata(`${dir}/${STATE_FILE}`);
  } catch (e) {
    throw new RunFolderError(`--resume ${dir}: ${(e as Error).message}`);
  }
  return {
    config: JSON.parse(meta.config),
    runId: meta.run_id,
    epochs: Number(meta.epochs),
    metricsBytes: Number(meta.metrics_bytes),
  };
}

/**
 * The config of a resumed run: the saved run's, with `--epochs` (epochs in all; default the
 * saved run's) and `--data`. Any other flag given must agree with the saved run; a run that
 * has its epochs already is refused.
 */
function resumedConfig(saved: SavedRun, asked: TrainConfig, given: Set<string>): TrainConfig {
  const dir = asked.resume!;
  if (given.has("overwrite")) {
    throw new UsageError(
      `--overwrite contradicts --resume ${dir}: a resumed run goes on in its folder; leave ` +
        "--overwrite out",
    );
  }
  for (const flag of given) {
    const k = FIELD_OF[flag];
    if (!k) continue;
    const [theirs, ours] = [saved.config[k], asked[k]];
    if (k === "out" ? ours !== dir && ours !== saved.config.out : theirs !== ours) {
      throw new UsageError(
        `--${flag} ${ours} contradicts the run in ${dir}, which was started with --${flag} ` +
          `${theirs ?? "(not given)"}: leave --${flag} out (a resumed run keeps its settings), ` +
          "or start a new run with --out",
      );
    }
  }
  const epochs = given.has("epochs") ? asked.epochs : saved.config.epochs;
  if (epochs <= saved.epochs) {
    throw new UsageError(
      `the run in ${dir} has ${saved.epochs} epochs already, and --epochs ${epochs} asks for ` +
        `${epochs} in all: pass --epochs ${saved.epochs + 1} or more to train it further`,
    );
  }
  return {
    ...saved.config,
    epochs,
    data: given.has("data") ? asked.data : saved.config.data,
    out: dir,
    overwrite: false,
    resume: undefined,
  };
}

/** The optimizer and scheduler that `c` names, of `net`'s parameters. */
function makeOptimizer(
  c: TrainConfig,
  net: Module,
): { optimizer: Optimizer; scheduler?: LRScheduler } {
  const params = net.parameters();
  const optimizer = c.optimizer === "sgd"
    ? new SGD(params, { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay })
    : new (c.optimizer === "adam" ? Adam : AdamW)(params, { lr: c.lr, weightDecay: c.weightDecay });
  const { schedule } = parseSchedule(c.schedule, c.epochs, (m) => new Error(m));
  const scheduler = schedule.kind === "step"
    ? new StepLR(optimizer, schedule.stepSize, { gamma: schedule.gamma })
    : schedule.kind === "cosine"
    ? new CosineAnnealingLR(optimizer, schedule.tMax)
    : undefined;
  return { optimizer, scheduler };
}

const pct = (v: number) => v.toFixed(3);

/** The files a run writes into `--out`. */
const RUN_FILES = ["metrics.jsonl", "model.safetensors", STATE_FILE, "curves.svg", "curves.png"];

/** Opens the run's folder (see run_folder.ts); a default `--out` is made unique. */
function openRunFolder(c: TrainConfig, args: string[]): Promise<RunFolder> {
  const unique = !args.some((a) => a === "--out" || a.startsWith("--out="));
  return RunFolder.open(c.out, { files: RUN_FILES, overwrite: c.overwrite, unique });
}

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === "help") {
    console.log(USAGE);
    return 0;
  }
  let config = parsed.config;
  let saved: SavedRun | undefined;
  let run: RunFolder;
  try {
    if (config.resume === undefined) run = await openRunFolder(config, args);
    else {
      // Under the run's lock: the saved state cannot change while it is read and resumed.
      run = await RunFolder.resume(config.resume, async (dir) => {
        saved = await readSavedRun(dir);
        config = resumedConfig(saved, { ...config, resume: dir }, parsed.given);
        checkFlagImplications(config, (m) => new UsageError(m));
        return saved.runId;
      });
    }
  } catch (e) {
    if (!(e instanceof RunFolderError || e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}`);
    return 2;
  }
  using _run = run;
  const c = { ...config, out: run.path };
  if (run.replaced) console.log(`note: the run that was in ${c.out} was replaced`);
  if (saved) {
    console.log(`resuming run ${run.id} in ${c.out} after epoch ${saved.epochs}, to ${c.epochs}`);
  }
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
  const { optimizer, scheduler } = makeOptimizer(c, net);
  using _optimizer = optimizer;
  const state = `${c.out}/${STATE_FILE}`;
  let history: History | undefined;
  if (saved) ({ history } = await loadTrainingState(state, { net, optimizer, scheduler }));
  console.log(
    `LeNet norm=${c.norm} pool=${c.pool} activation=${c.activation}, ${c.optimizer} lr ` +
      `${c.lr}${c.optimizer === "sgd" ? ` momentum ${c.momentum}` : ""} weight decay ` +
      `${c.weightDecay}, schedule ${c.schedule}, ` +
      `${c.epochs} epochs, batch ${c.batchSize}, seed ${c.seed}, ` +
      `${nTrain} train / ${nTest} test examples`,
  );
  console.log(`data: ${train.files.images} and ${test.files.images} (with their labels)`);
  if (lastNote) console.log(`note: ${lastNote}`);

  // A resumed run cuts its metrics back to what its saved state accounts for (the lines of
  // an epoch that did not end are dropped) and goes on from there.
  let metrics: Deno.FsFile;
  if (saved) {
    const { file, cut } = await run.append("metrics.jsonl", saved.metricsBytes);
    metrics = file;
    if (cut) {
      console.log(
        `note: ${cut} line${cut > 1 ? "s" : ""} of metrics.jsonl after epoch ${saved.epochs} ` +
          "(of an epoch that did not end) dropped: that epoch is trained again",
      );
    }
  } else metrics = await run.create("metrics.jsonl");
  let metricsBytes = saved?.metricsBytes ?? 0;
  const enc = new TextEncoder();
  const log = (o: Record<string, unknown>): void => {
    const line = enc.encode(JSON.stringify(o) + "\n");
    for (let at = 0; at < line.length;) at += metrics.writeSync(line.subarray(at));
    metricsBytes += line.length;
  };
  const checkpoint = `${c.out}/model.safetensors`;
  let savedEpochs = saved?.epochs ?? 0; // epochs in the checkpoint on disk
  const { resume: _, ...recorded } = c;
  if (saved) {
    log({
      type: "resumed",
      runId: run.id,
      fromEpoch: saved.epochs,
      epochs: c.epochs,
      adapter: info.description,
    });
  } else {
    log({
      type: "config",
      runId: run.id,
      ...recorded,
      adapter: info.description,
      trainFiles: train.files,
      testFiles: test.files,
    });
  }
  using ctrlC = stopOnCtrlC();
  try {
    const fitHistory: History = history ?? { updates: [], epochs: [] };
    history = await fit(net, trainLoader, testLoader, {
      signal: ctrlC.signal,
      epochs: c.epochs - savedEpochs,
      optimizer,
      scheduler,
      history: fitHistory,
      init: saved ? "none" : "xavier",
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
        // The model first, every epoch: nothing trained is lost if a later step fails. Then
        // the whole training state, in one atomic write, for --resume.
        const metadata = {
          config: JSON.stringify(recorded),
          epochs: String(e.epoch),
          run_id: run.id,
        };
        await saveCheckpoint(net, checkpoint, { metadata });
        await saveTrainingState(state, { net, optimizer, scheduler }, fitHistory, {
          ...metadata,
          metrics_bytes: String(metricsBytes),
        });
        savedEpochs = e.epoch;
      },
    });
    if (history.stopped) {
      log({ type: "interrupted", ...history.stopped });
      console.error(
        `stopped in epoch ${history.stopped.epoch}: ${keptCheckpoint(checkpoint, savedEpochs)}` +
          (savedEpochs ? `; continue with: deno task train --resume ${c.out}` : ""),
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
    const written = ["metrics.jsonl", "model.safetensors", STATE_FILE];
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
    const kept = keptCheckpoint(checkpoint, savedEpochs);
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
