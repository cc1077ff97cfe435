/**
 * The rows of the comparison: each operation or training step, its inputs, how much work it
 * is (bytes moved or FLOP), and how bnlab, its float64 reference and TensorFlow.js do it.
 * The PyTorch peer (bench/peers/torch_peer.py) implements the same rows by `kind`.
 *
 * Inputs are seeded host arrays in PyTorch's layouts; each library gets its own copy before
 * anything is timed. bnlab is called only through `mod.ts`.
 *
 * @module
 */
import { F, gpu, lenet, nn, noGrad, optim, Tensor, tidy } from "../../mod.ts";
import { initXavier } from "../../train.ts";
import { refArray } from "../../src/ops/elementwise/reference.ts";
import { refBatchNormBackward, refBatchNormForward } from "../../src/ops/batch_norm/reference.ts";
import { refLayerNormBackward, refLayerNormForward } from "../../src/ops/layer_norm/reference.ts";
import {
  type ConvDims,
  refConv2dBackward,
  refConv2dForward,
} from "../../src/ops/conv2d/reference.ts";
import {
  batchNormTrain,
  conv2d as tfConv2d,
  filterFromTf,
  filterToTf,
  layerNorm as tfLayerNorm,
  nhwcShape,
  tf,
  tfKernels,
  tfWait,
  toNchw,
  toNhwc,
} from "../peers/tfjs.ts";
import { tfLeNet } from "../peers/tfjs_lenet.ts";
import { checkSpec, type LayerSpec, LENET_BN, LENET_PLAIN } from "../peers/lenet_spec.ts";
import type { Contender, Outputs } from "./contender.ts";

/** A host array with its shape (PyTorch layout). */
export interface HostArray {
  data: Float32Array;
  shape: number[];
}

/** A row's inputs by name. */
export type Inputs = Record<string, HostArray>;

/** One row of the comparison. */
export interface Row {
  /** Name in results/latest.json, e.g. `bn_train_fwd_bwd_256x6x24x24`. */
  name: string;
  /** Human title, also the `Deno.bench` group. */
  title: string;
  /** Operations per host wait for the GPU contenders (the same for bnlab and tfjs webgpu). */
  reps: number;
  /** Bytes an op must move at least, for GB/s; or its FLOP, for GFLOP/s. */
  work: { bytes: number } | { flop: number };
  /** Time to spend on each contender's timed samples, ms (at least one sample is taken). */
  budgetMs: number;
  /** A peer's largest error against bnlab, relative to each output's scale; default 1e-3. */
  peerTolerance?: number;
  /** How the PyTorch peer runs this row: its `kind` and arguments. */
  torch: { kind: string; args: Record<string, unknown> };
  /** Seeded inputs. */
  inputs(): Promise<Inputs>;
  /** bnlab's float64 reference (the `Deno.bench` baseline), where one exists. */
  reference?: (i: Inputs) => Contender;
  /** bnlab. */
  bnlab(i: Inputs): Contender;
  /** TensorFlow.js on whichever backend is active. */
  tfjs(i: Inputs): Contender;
}

const EPS = 1e-5;

/** Seeded standard normal samples (mulberry32 and Box-Muller): the same on every run. */
export function randn(n: number, seed: number): Float32Array {
  const u = rand(n + (n % 2), seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u[i])), t = 2 * Math.PI * u[i + 1];
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** Seeded uniform samples in [0, 1). */
export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const host = (shape: number[], seed: number): HostArray => ({
  data: randn(numel(shape), seed),
  shape,
});
const dev = (a: HostArray, requiresGrad = false) =>
  Tensor.from(a.data, { shape: a.shape, requiresGrad });
const tfT = (a: HostArray) => tf.tensor(toNhwc(a.data, a.shape), nhwcShape(a.shape));
const bnlabWait = () => gpu.sync();
const noWait = () => Promise.resolve();

/** Reads `t.grad` and frees it, so the next backward starts from no gradient. */
async function takeGrad(t: Tensor): Promise<Float32Array> {
  const g = await t.grad!.toArray();
  clearGrads([t]);
  return g;
}

function clearGrads(ts: Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/** Kernels that `fn` encodes (it must not flush). */
function countLaunches(fn: () => void): number {
  gpu.flush();
  fn();
  return gpu.queueStats().pendingLaunches;
}

/** Runs `fn` on the tfjs backend's tensors inside a tidy, keeping nothing. */
const tfRun = (fn: () => unknown) => () => tf.tidy(() => void fn());

/**
 * bnlab's side of a layer row (a normalization or a convolution): `op` maps `x` with weight
 * `w` and bias `b`. A forward row returns the output and what `forwardExtras` reads after it
 * (BatchNorm's running statistics); a backward row returns the output and the three gradients
 * for `dout`.
 */
function bnlabLayer(
  op: () => Tensor,
  [x, w, b]: [Tensor, Tensor, Tensor],
  dout: Tensor,
  backward: boolean,
  forwardExtras: () => Promise<Outputs> = () => Promise.resolve({}),
): Contender {
  return {
    validate: async (): Promise<Outputs> => {
      if (!backward) {
        const y = noGrad(op);
        const out = await y.toArray();
        y.dispose();
        return { out, ...(await forwardExtras()) };
      }
      const y = op();
      y.backward(dout);
      const out = await y.toArray();
      y.dispose();
      return {
        out,
        dinp: await takeGrad(x),
        dweight: await takeGrad(w),
        dbias: await takeGrad(b),
      };
    },
    run: backward
      ? () => {
        tidy(() => op().backward(dout));
        clearGrads([x, w, b]);
      }
      : () => noGrad(() => op().dispose()),
    wait: bnlabWait,
    launches() {
      return countLaunches(this.run);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Batch norm, training mode: batch statistics, running statistics updated (momentum 0.1).

function batchNormRows(shape: number[]): Row[] {
  const c = shape[1];
  const n = numel(shape);
  const key = shape.join("x");
  const inputs = () =>
    Promise.resolve({
      x: host(shape, 1),
      dout: host(shape, 2),
      weight: host([c], 3),
      bias: host([c], 4),
    });
  const running = () => ({ mean: new Float64Array(c), var: new Float64Array(c).fill(1) });
  const base = { budgetMs: 3000, inputs, reps: 10 };
  const rows: Row[] = [];
  for (const backward of [false, true]) {
    rows.push({
      ...base,
      name: `bn_train_${backward ? "fwd_bwd" : "fwd"}_${key}`,
      title: `BatchNorm train ${backward ? "fwd+bwd" : "fwd"} [${shape.join(", ")}]`,
      // forward: x read twice (statistics, normalize), out written; backward adds x and dout
      // read for the two sums, then x and dout read and dinp written (as bench/ops)
      work: { bytes: (backward ? 32 : 12) * n },
      torch: { kind: "batchnorm", args: { backward } },
      reference: (i) => {
        const x = refArray(i.x.data, shape), dout = refArray(i.dout.data, shape);
        const fwd = () => refBatchNormForward(x, i.weight.data, i.bias.data, EPS);
        const bwd = () => refBatchNormBackward(dout, x, i.weight.data, EPS);
        return {
          validate: () => {
            const out: Outputs = { out: f32(fwd().out.data) };
            if (backward) {
              const g = bwd();
              Object.assign(out, {
                dinp: f32(g.dinp.data),
                dweight: f32(g.dweight),
                dbias: f32(g.dbias),
              });
            } else {
              // PyTorch's running update: unbiased variance, momentum 0.1, from (0, 1)
              const m = n / c, r = running();
              const { mean, rstd } = fwd();
              out.running_mean = f32(r.mean.map((v, k) => 0.9 * v + 0.1 * mean[k]));
              out.running_var = f32(
                r.var.map((v, k) => 0.9 * v + 0.1 * (1 / rstd[k] ** 2 - EPS) * m / (m - 1)),
              );
            }
            return Promise.resolve(out);
          },
          run: () => {
            fwd();
            if (backward) bwd();
          },
          wait: noWait,
        };
      },
      bnlab: (i) => {
        const x = dev(i.x, backward), dout = dev(i.dout);
        const w = dev(i.weight, backward), b = dev(i.bias, backward);
        const rm = Tensor.zeros([c]), rv = Tensor.ones([c]);
        const op = () => F.batchNorm(x, rm, rv, w, b, { training: true });
        return bnlabLayer(op, [x, w, b], dout, backward, async () => ({
          running_mean: await rm.toArray(),
          running_var: await rv.toArray(),
        }));
      },
      tfjs: (i) => {
        const x = tfT(i.x), dout = tfT(i.dout);
        const gamma = tf.tensor(i.weight.data), beta = tf.tensor(i.bias.data);
        const rm = tf.variable(tf.zeros([c]), false), rv = tf.variable(tf.ones([c]), false);
        const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTrain(x, g, b, rm, rv);
        const fb = tf.valueAndGrads(f);
        const back = (t: tf.Tensor) => t.data().then((d) => toNchw(d as Float32Array, shape));
        return {
          validate: async (): Promise<Outputs> => {
            if (!backward) {
              const y = f(x, gamma, beta);
              const out = { out: await back(y) };
              y.dispose();
              return {
                ...out,
                running_mean: await rm.data() as Float32Array,
                running_var: await rv.data() as Float32Array,
              };
            }
            const { value, grads } = fb([x, gamma, beta], dout);
            const out = {
              out: await back(value),
              dinp: await back(grads[0]),
              dweight: await grads[1].data() as Float32Array,
              dbias: await grads[2].data() as Float32Array,
            };
            tf.dispose([value, ...grads]);
            return out;
          },
          run: backward ? tfRun(() => fb([x, gamma, beta], dout)) : tfRun(() => f(x, gamma, beta)),
          wait: tfWait,
          launches() {
            return tfKernels(this.run);
          },
        };
      },
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Layer norm over every dimension after the batch (LeNet's LayerNorm([C, H, W]) places).

function layerNormRows(shape: number[]): Row[] {
  const norm = shape.slice(1);
  const n = numel(shape), D = numel(norm), M = n / D;
  const key = shape.join("x");
  const inputs = () =>
    Promise.resolve({
      x: host(shape, 1),
      dout: host(shape, 2),
      weight: host(norm, 3),
      bias: host(norm, 4),
    });
  // tfjs holds the per-example parameters channels-last too: [C, H, W] -> [H, W, C]
  const perExample = [1, ...norm];
  const tfParam = (a: HostArray) =>
    tf.tensor(toNhwc(a.data, perExample), nhwcShape(perExample).slice(1));
  const rows: Row[] = [];
  for (const backward of [false, true]) {
    rows.push({
      name: `layernorm_${backward ? "fwd_bwd" : "fwd"}_${key}`,
      title: `LayerNorm ${backward ? "fwd+bwd" : "fwd"} [${shape.join(", ")}]`,
      reps: 10,
      budgetMs: 3000,
      // forward reads inp and writes out; backward adds inp and dout read, dinp written
      work: { bytes: (backward ? 20 : 8) * n },
      torch: { kind: "layernorm", args: { backward } },
      inputs,
      reference: (i) => {
        const fwd = () => refLayerNormForward(i.x.data, i.weight.data, i.bias.data, M, D, EPS);
        return {
          validate: () => {
            const r = fwd();
            const out: Outputs = { out: f32(r.out) };
            if (backward) {
              const g = refLayerNormBackward(
                i.dout.data,
                i.x.data,
                r.mean,
                r.rstd,
                i.weight.data,
                M,
                D,
              );
              Object.assign(out, {
                dinp: f32(g.dinp),
                dweight: f32(g.dweight),
                dbias: f32(g.dbias),
              });
            }
            return Promise.resolve(out);
          },
          run: () => {
            const r = fwd();
            if (backward) {
              refLayerNormBackward(i.dout.data, i.x.data, r.mean, r.rstd, i.weight.data, M, D);
            }
          },
          wait: noWait,
        };
      },
      bnlab: (i) => {
        const x = dev(i.x, backward), dout = dev(i.dout);
        const w = dev(i.weight, backward), b = dev(i.bias, backward);
        const op = () => F.layerNorm(x, norm, w, b, { eps: EPS });
        return bnlabLayer(op, [x, w, b], dout, backward);
      },
      tfjs: (i) => {
        const x = tfT(i.x), dout = tfT(i.dout);
        const gamma = tfParam(i.weight), beta = tfParam(i.bias);
        const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tfLayerNorm(x, g, b, EPS);
        const fb = tf.valueAndGrads(f);
        const back = (t: tf.Tensor) => t.data().then((d) => toNchw(d as Float32Array, shape));
        const backParam = (t: tf.Tensor) =>
          t.data().then((d) => toNchw(d as Float32Array, perExample));
        return {
          validate: async (): Promise<Outputs> => {
            if (!backward) {
              const y = f(x, gamma, beta);
              const out = await back(y);
              y.dispose();
              return { out };
            }
            const { value, grads } = fb([x, gamma, beta], dout);
            const out = {
              out: await back(value),
              dinp: await back(grads[0]),
              dweight: await backParam(grads[1]),
              dbias: await backParam(grads[2]),
            };
            tf.dispose([value, ...grads]);
            return out;
          },
          run: backward ? tfRun(() => fb([x, gamma, beta], dout)) : tfRun(() => f(x, gamma, beta)),
          wait: tfWait,
          launches() {
            return tfKernels(this.run);
          },
        };
      },
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Conv2d forward + backward (dinp, dweight, dbias), stride 1, no padding.

function convRow(label: string, d: ConvDims): Row {
  const oh = d.h - d.kh + 1, ow = d.w - d.kw + 1;
  const xShape = [d.n, d.c, d.h, d.w], wShape = [d.o, d.c, d.kh, d.kw];
  const yShape = [d.n, d.o, oh, ow];
  const flop = 2 * d.n * d.o * oh * ow * d.c * d.kh * d.kw;
  return {
    name: `${label}_fwd_bwd_${xShape.join("x")}`,
    title: `${label} Conv2d(${d.c},${d.o},${d.kh}) fwd+bwd [${xShape.join(", ")}]`,
    reps: 5,
    budgetMs: 4000,
    work: { flop: 3 * flop }, // forward, dinp and dweight: one product each
    torch: { kind: "conv2d", args: {} },
    inputs: () =>
      Promise.resolve({
        x: host(xShape, 1),
        weight: host(wShape, 2),
        bias: host([d.o], 3),
        dout: host(yShape, 4),
      }),
    reference: (i) => {
      const all = () => {
        const out = refConv2dForward(i.x.data, i.weight.data, i.bias.data, d);
        return { out, ...refConv2dBackward(i.x.data, i.weight.data, i.dout.data, d) };
      };
      return {
        validate: () => {
          const r = all();
          return Promise.resolve({
            out: f32(r.out),
            dinp: f32(r.dinp),
            dweight: f32(r.dweight),
            dbias: f32(r.dbias),
          });
        },
        run: () => void all(),
        wait: noWait,
      };
    },
    bnlab: (i) => {
      const x = dev(i.x, true), w = dev(i.weight, true), b = dev(i.bias, true);
      const dout = dev(i.dout);
      return bnlabLayer(() => F.conv2d(x, w, b), [x, w, b], dout, true);
    },
    tfjs: (i) => {
      const x = tfT(i.x) as tf.Tensor4D, dout = tfT(i.dout) as tf.Tensor4D;
      const filter = tf.tensor(filterToTf(i.weight.data, wShape), [d.kh, d.kw, d.c, d.o]);
      const bias = tf.tensor(i.bias.data);
      const fb = tf.valueAndGrads((x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
        tfConv2d(x as tf.Tensor4D, f as tf.Tensor4D, b)
      );
      return {
        validate: async (): Promise<Outputs> => {
          const { value, grads } = fb([x, filter, bias], dout);
          const out = {
            out: toNchw(await value.data() as Float32Array, yShape),
            dinp: toNchw(await grads[0].data() as Float32Array, xShape),
            dweight: filterFromTf(await grads[1].data() as Float32Array, wShape),
            dbias: await grads[2].data() as Float32Array,
          };
          tf.dispose([value, ...grads]);
          return out;
        },
        run: tfRun(() => fb([x, filter, bias], dout)),
        wait: tfWait,
        launches() {
          return tfKernels(this.run);
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------
// One LeNet training step: zero grads, forward (training mode), mean cross-entropy,
// backward, SGD (no momentum). Validated on the loss and on the update of every parameter
// and running statistic after one step from the same initial state.

const BATCH = 256;

/**
 * Steps per host wait for the GPU contenders at `batch`: 4 at batch 256 (a step of ~50 ms
 * carries ~3 ms of the ~11 ms wait); at the small batches, where a step takes a few ms, as
 * many as bench/train/steps.ts's loop times per read (200, 50 from batch 32 on), less where
 * tfjs's steps would make one block too long: 50 at batch 2 and 8, 20 at batch 32.
 */
function lenetReps(batch: number): number {
  return batch >= 256 ? 4 : batch >= 32 ? 20 : 50;
}

/** FLOP of a LeNet step in its convolutions and linear layers (forward, dinp, dweight). */
function lenetFlop(spec: readonly LayerSpec[], batch: number): number {
  let side = 28, total = 0, first = true;
  for (const l of spec) {
    let fwd = 0;
    if (l.kind === "conv") {
      side = side + 2 * l.padding - l.kernel + 1;
      fwd = 2 * batch * l.outChannels * side * side * l.inChannels * l.kernel ** 2;
    } else if (l.kind === "maxpool") side = Math.floor(side / l.kernel);
    else if (l.kind === "linear") fwd = 2 * batch * l.inFeatures * l.outFeatures;
    if (!fwd) continue;
    total += (first ? 2 : 3) * fwd; // the first layer needs no dinp (images need no gradient)
    first = false;
  }
  return total;
}

function lenetRow(norm: "batch" | "none", batch = BATCH): Row {
  const spec = norm === "batch" ? LENET_BN : LENET_PLAIN;
  const lr = norm === "batch" ? 1.0 : 0.9; // the lecture's learning rates
  const stateKeys = (state: Record<string, unknown>) =>
    Object.keys(state).filter((k) => !k.endsWith("num_batches_tracked"));
  // The bias of a layer that a BatchNorm follows gets no gradient in exact arithmetic (the
  // normalization subtracts the batch mean), so its update is rounding noise, scaled by the
  // batch's 1/std: at batch 2 (two values per channel) PyTorch's reached 2.5e-4 where bnlab's
  // was 0, 1.3e-2 of the row's scale floor, and tfjs's 0 where bnlab's was 3.9e-5. Those
  // updates are left out of the comparison; the others, and the loss, are compared.
  const noise = new Set(
    spec.flatMap((_, i) => spec[i + 1]?.kind === "batchnorm" ? [`${i}.bias`] : []),
  );
  /** Loss and each entry's change, from the state before and after one step. */
  const updates = (loss: Float32Array, before: Inputs, after: Outputs): Outputs => {
    const out: Outputs = { loss };
    for (const [k, v] of Object.entries(after)) {
      if (noise.has(k)) continue;
      out[`update ${k}`] = v.map((a, j) => a - before[`state ${k}`].data[j]);
    }
    return out;
  };
  return {
    name: `${norm === "batch" ? "lenet_bn_step" : "lenet_step"}_b${batch}`,
    title: `${norm === "batch" ? "LeNet+BN" : "plain LeNet"} train step, batch ${batch}`,
    reps: lenetReps(batch),
    budgetMs: 8000,
    // With two examples, BatchNorm's 1/std amplifies float32 rounding: against PyTorch in
    // float64, bnlab's step at batch 2 is off by 2.2e-4 of an output's scale and PyTorch's in
    // float32 by 1.2e-3 (9.9e-4 from bnlab's); from batch 8 on, the peers agree to 2e-5.
    peerTolerance: batch <= 2 ? 3e-3 : undefined,
    work: { flop: lenetFlop(spec, batch) },
    torch: { kind: "lenet_step", args: { spec, lr } },
    inputs: async () => {
      // bnlab's initial state (Xavier-uniform weights, zero biases, BN defaults), then a
      // batch of uniform "images" and labels, as bench/train/train_bench.ts
      const net = lenet({ norm });
      initXavier(net, 0);
      const state = net.stateDict();
      checkSpec(norm === "batch" ? "LENET_BN" : "LENET_PLAIN", spec, state);
      const i: Inputs = {
        x: { data: rand(batch * 28 * 28, 1), shape: [batch, 1, 28, 28] },
        labels: { data: new Float32Array(batch).map((_, k) => (k * 7) % 10), shape: [batch] },
      };
      for (const k of stateKeys(state)) {
        i[`state ${k}`] = { data: await state[k].toArray(), shape: [...state[k].shape] };
      }
      return i;
    },
    bnlab: (i) => {
      const net = lenet({ norm });
      const entries = net.stateDict();
      const keys = stateKeys(entries);
      const sgd = new optim.SGD(net.parameters(), { lr });
      const lossFn = new nn.CrossEntropyLoss();
      const x = dev(i.x), y = dev(i.labels);
      // the same initial state as the peers (num_batches_tracked keeps its 0)
      const initial = Object.fromEntries(keys.map((k) => [k, dev(i[`state ${k}`])]));
      net.loadStateDict({ ...entries, ...initial }); // synchronous: ordered before every step
      const step = () =>
        tidy(() => {
          sgd.zeroGrad();
          const loss = lossFn.forward(net.forward(x), y);
          loss.backward();
          sgd.step();
          return loss;
        });
      return {
        validate: async (): Promise<Outputs> => {
          const loss = step();
          const now = net.stateDict(); // the live tensors after the step
          const after: Outputs = {};
          for (const k of keys) after[k] = await now[k].toArray();
          const out = updates(await loss.toArray(), i, after);
          loss.dispose();
          return out;
        },
        run: () => {
          step().dispose();
          gpu.flush(); // as fit does: submit each step's work as it is encoded
        },
        wait: bnlabWait,
        launches: () => countLaunches(() => step().dispose()),
      };
    },
    tfjs: (i) => {
      const state: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(i)) {
        if (k.startsWith("state ")) state[k.slice(6)] = v.data;
      }
      const net = tfLeNet(spec, state, i.x.data, i.labels.data, lr);
      return {
        validate: async (): Promise<Outputs> => {
          const loss = net.step();
          const out = updates(await loss.data() as Float32Array, i, await net.state());
          loss.dispose();
          return out;
        },
        run: () => net.step().dispose(),
        wait: tfWait,
        launches() {
          return tfKernels(this.run);
        },
      };
    },
  };
}

/** All rows, in the order they run and are reported. */
export function allRows(): Row[] {
  const d = { n: BATCH, sh: 1, sw: 1, ph: 0, pw: 0, kh: 5, kw: 5 };
  return [
    ...[[256, 6, 24, 24], [256, 16, 8, 8], [256, 120]].flatMap(batchNormRows),
    ...[[256, 6, 24, 24], [256, 16, 8, 8], [256, 120]].flatMap(layerNormRows),
    convRow("conv1", { ...d, c: 1, h: 28, w: 28, o: 6 }),
    convRow("conv2", { ...d, c: 6, h: 12, w: 12, o: 16 }),
    ...[2, 8, 32, 256].map((batch) => lenetRow("batch", batch)),
    lenetRow("none"),
  ];
}
