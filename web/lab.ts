/**
 * The lab's model side: two LeNets (one normalized, one plain) trained side by side on the
 * same batches, step by step, with a reading after every step (loss, accuracy, the
 * percentiles of one layer's pre-activations); test accuracy with batch or running
 * statistics; a batch-norm layer's running statistics beside the population's. Plain
 * library calls (`mod.ts`, the data loader and `evaluateAccuracy`), no DOM.
 *
 * Between steps it awaits the readback and a macrotask, so the page stays responsive, and
 * {@link Lab.stop} takes effect before the next step.
 *
 * @module
 */
import {
  lenet,
  manualSeed,
  nn,
  noGrad,
  optim,
  type Sequential,
  type Tensor,
  tidy,
} from "../mod.ts";
import { DataLoader, type Dataset, DeviceDataset } from "../src/data/loader.ts";
import { evaluateAccuracy } from "../src/train/evaluate.ts";
import { initXavier } from "../src/train/fit.ts";
import { countCorrect } from "../src/ops/cross_entropy/cross_entropy.ts";
import type { BandPoint } from "../src/plot/charts.ts";

/** What the student sets. */
export interface LabSettings {
  /** Normalization of the first network (the second is always the plain LeNet). */
  norm: "batch" | "layer" | "group" | "none";
  /** SGD learning rate of both networks. */
  lr: number;
  /** Examples per step. */
  batchSize: number;
  /** Batch norm's running-statistics momentum. */
  momentum: number;
  /** Steps to train (the lab stops after them). */
  steps: number;
  /** Seed of the weights and the shuffle. */
  seed: number;
}

/** One step's reading of one network. */
export interface Reading {
  /** Step, from 1. */
  step: number;
  /** The batch's mean loss. */
  loss: number;
  /** The batch's accuracy (training mode). */
  acc: number;
}

/** One network under training. */
export interface Run {
  /** "BN", "LayerNorm", "GroupNorm" or "no norm" (the first), "plain" (the second). */
  label: string;
  /** The LeNet. */
  net: Sequential;
  /** Its readings, one per step. */
  readings: Reading[];
  /** 15th, 50th, 85th percentiles of the watched pre-activation, one per step. */
  bands: BandPoint[];
  /** The module whose output is watched: the input of the last hidden sigmoid. */
  watched: string;
}

/** Test accuracy with batch statistics (training mode) and with running statistics (eval). */
export interface Accuracies {
  /** Training mode: each test batch normalized with its own statistics. */
  batch: number;
  /** Eval mode: the running statistics. */
  running: number;
}

/** A batch-norm layer's running statistics beside the training set's, per channel. */
export interface StatsRow {
  /** Channel. */
  channel: number;
  /** running_mean. */
  runningMean: number;
  /** The channel's mean over the training images used. */
  mean: number;
  /** running_var. */
  runningVar: number;
  /** The channel's (unbiased) variance over them. */
  var: number;
}

declare global {
  /** The page's state, for tests/web/run.ts (set by web/app.ts). */
  var bnlabLab: {
    /** The lab, once the data is loaded. */
    lab(): Lab | undefined;
    /** Test accuracies of each network, as evaluated so far. */
    accuracies: Partial<Accuracies>[];
    /** The population statistics table, once evaluated. */
    stats(): StatsRow[] | null;
    /** Where the data was loaded from: the folder's URL, or the files picked. */
    source(): string;
  };
}

const LABELS = { batch: "BN", layer: "LayerNorm", group: "GroupNorm", none: "no norm" };

/** p-th percentile (0..100) of sorted values, by linear interpolation. */
function percentile(sorted: Float32Array, p: number): number {
  const i = (p / 100) * (sorted.length - 1), lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

/** The index of the module before the last activation (its output is the pre-activation). */
function preActivation(net: Sequential): number {
  const mods = [...net];
  for (let i = mods.length - 1; i > 0; i--) {
    if (mods[i] instanceof nn.Sigmoid || mods[i] instanceof nn.ReLU) return i - 1;
  }
  throw new Error("lab: the network has no activation to watch");
}

/** Makes a LeNet as the lecture does: Xavier weights from `seed`, BN momentum as set. */
export function makeNet(norm: LabSettings["norm"], seed: number, momentum: number): Sequential {
  manualSeed(seed);
  const net = lenet({ norm });
  initXavier(net, seed);
  for (const m of net.modules()) {
    if (m instanceof nn.BatchNorm1d || m instanceof nn.BatchNorm2d) m.momentum = momentum;
  }
  return net;
}

/** The two networks, the data on the GPU, and the loop. */
export class Lab {
  /** The settings of the current (or last) run. */
  settings: LabSettings;
  /** The normalized network, then the plain one. */
  runs: Run[] = [];
  /** "idle", "training", "stopped" (by Stop) or "done" (after `steps`). */
  state: "idle" | "training" | "stopped" | "done" = "idle";
  /** Training examples per second over the run so far (both networks together). */
  examplesPerSec = 0;
  #train: DeviceDataset;
  #test: DeviceDataset;
  #stop = false;
  #stopAt = 0;
  /** Milliseconds from the last {@link stop} to the end of the step in flight (the loop's exit). */
  stopMs = NaN;

  /** A lab over `train` and `test` (uploaded once, shared by every run). */
  constructor(train: Dataset, test: Dataset, settings: LabSettings) {
    this.#train = new DeviceDataset(train);
    this.#test = new DeviceDataset(test);
    this.settings = settings;
  }

  /** Examples in the training and test sets on the GPU. */
  get sizes(): { train: number; test: number } {
    return { train: this.#train.n, test: this.#test.n };
  }

  /**
   * Trains both networks from fresh weights for `settings.steps` steps (or until
   * {@link stop}), calling `onStep` after each step's readings. Resolves when it stops.
   */
  async train(settings: LabSettings, onStep: () => void = () => {}): Promise<void> {
    if (this.state === "training") throw new Error("lab: already training; Stop first");
    for (const r of this.runs) r.net.dispose();
    const { norm, lr, batchSize, momentum, steps, seed } = this.settings = settings;
    this.runs = [
      { net: makeNet(norm, seed, momentum), label: LABELS[norm] },
      { net: makeNet("none", seed, momentum), label: "plain" },
    ].map(({ net, label }) => ({
      label,
      net,
      readings: [],
      bands: [],
      watched: `${preActivation(net)}: ${[...net][preActivation(net)].constructor.name}`,
    }));
    const lossFn = new nn.CrossEntropyLoss();
    const opts = this.runs.map((r) => new optim.SGD(r.net.parameters(), { lr }));
    const loader = new DataLoader(this.#train, { batchSize, seed, dropLast: true });
    if (loader.length === 0) {
      throw new Error(`lab: batch size ${batchSize} is larger than the ${this.#train.n} images`);
    }
    this.state = "training";
    this.#stop = false;
    let step = 0, seconds = 0;
    try {
      for (let epoch = 0; step < steps && !this.#stop; epoch++) {
        for (const { x, y } of loader.batches(epoch)) {
          const t0 = performance.now();
          step++;
          for (const [i, run] of this.runs.entries()) {
            await this.#step(run, opts[i], lossFn, x, y, step);
            if (this.#stop) break;
          }
          seconds += (performance.now() - t0) / 1000;
          this.examplesPerSec = (2 * step * batchSize) / seconds;
          onStep();
          // A macrotask between steps: input events and painting get their turn.
          await new Promise((r) => setTimeout(r, 0));
          if (step >= steps || this.#stop) break;
        }
      }
    } finally {
      loader.dispose();
      this.state = this.#stop ? "stopped" : "done";
      if (this.#stop) this.stopMs = performance.now() - this.#stopAt;
    }
  }

  /** One SGD step of `run`, then its readings (one host wait). */
  async #step(
    run: Run,
    opt: optim.SGD,
    lossFn: nn.CrossEntropyLoss,
    x: Tensor,
    y: Tensor,
    step: number,
  ) {
    const mod = [...run.net][preActivation(run.net)];
    let pre: Tensor | undefined;
    const hook = mod.registerForwardHook((_m, _in, out) => void (pre = out));
    const [loss, correct, act] = tidy(() => {
      opt.zeroGrad();
      const logits = run.net.forward(x);
      const loss = lossFn.forward(logits, y);
      loss.backward();
      opt.step();
      return [loss.detach(), noGrad(() => countCorrect(logits.detach(), y)), pre!.detach()];
    });
    hook.remove();
    try {
      const [l, c, a] = await Promise.all([loss.item(), correct.item(), act.toArray()]);
      run.readings.push({ step, loss: l, acc: c / x.shape[0] });
      const sorted = Float32Array.from(a).sort();
      run.bands.push({
        series: run.label,
        x: step,
        lo: percentile(sorted, 15),
        mid: percentile(sorted, 50),
        hi: percentile(sorted, 85),
      });
    } finally {
      for (const t of [loss, correct, act]) t.dispose();
    }
  }

  /** Stops training before the next step; resolves at once. */
  stop(): void {
    if (this.state === "training" && !this.#stop) this.#stopAt = performance.now();
    this.#stop = true;
  }

  /**
   * Test accuracy of network `i` with each test batch's own statistics (`"batch"`: training
   * mode, running statistics left as they are) or with the running statistics (eval mode).
   */
  async accuracy(i: number, mode: "batch" | "running", batchSize = 256): Promise<number> {
    using loader = new DataLoader(this.#test, { batchSize, shuffle: false });
    return await evaluateAccuracy(this.runs[i].net, loader, {
      mode: mode === "batch" ? "train" : "eval",
    });
  }

  /**
   * The first batch-norm layer of the normalized network: its running mean and variance
   * beside each channel's mean and variance over the first `limit` training images (the
   * layer's input, in eval mode), or null if that network has no batch norm.
   */
  async populationStats(limit = 4096, batchSize = 256): Promise<StatsRow[] | null> {
    const net = this.runs[0]?.net;
    const mods = net ? [...net] : [];
    const k = mods.findIndex((m) => m instanceof nn.BatchNorm2d);
    if (k < 0) return null;
    const bn = mods[k] as nn.BatchNorm2d;
    const c = bn.numFeatures;
    // Per channel, sums of x and x^2 over [N, H, W] of each batch, pooled in float64.
    const s1 = new Float64Array(c), s2 = new Float64Array(c);
    let count = 0;
    using loader = new DataLoader(this.#train, { batchSize, shuffle: false, limit });
    for (const { x } of loader.batches(0)) {
      let w = 0; // values per channel in this batch: N * H * W
      const [m1, m2] = tidy(() =>
        noGrad(() => {
          let h = x;
          for (const m of mods.slice(0, k)) h = m.forward(h); // the layer's input
          w = h.shape[0] * h.shape[2] * h.shape[3];
          return [h.mean([0, 2, 3]), h.square().mean([0, 2, 3])];
        })
      );
      const [a, b] = await Promise.all([m1.toArray(), m2.toArray()]);
      m1.dispose(), m2.dispose();
      for (let j = 0; j < c; j++) s1[j] += a[j] * w, s2[j] += b[j] * w;
      count += w;
    }
    const rm = await bn.runningMean!.toArray(), rv = await bn.runningVar!.toArray();
    return Array.from({ length: c }, (_, j) => {
      const mean = s1[j] / count;
      return {
        channel: j,
        runningMean: rm[j],
        mean,
        runningVar: rv[j],
        var: (s2[j] / count - mean * mean) * count / (count - 1),
      };
    });
  }

  /** Frees the networks and the data's GPU copies (stop training first). */
  dispose(): void {
    for (const r of this.runs) r.net.dispose();
    this.runs = [];
    this.#train.dispose();
    this.#test.dispose();
  }

  /** Network `i`'s parameters and buffers as plain arrays (for the tests and a download). */
  async stateArrays(i: number): Promise<Record<string, number[]>> {
    const out: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(this.runs[i].net.stateDict())) {
      out[k] = Array.from(await t.toArray());
      t.dispose();
    }
    return out;
  }
}
