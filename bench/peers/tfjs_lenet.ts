/**
 * A LeNet training step in TensorFlow.js, built from a {@link LayerSpec} list and bnlab's
 * initial state dict, so that it starts from the very same weights: forward in training
 * mode (batch statistics, running statistics updated), mean softmax cross-entropy, backward
 * and a plain SGD update, all inside one `optimizer.minimize` as tfjs users write it.
 *
 * Layouts are tfjs's own (NHWC activations, [KH, KW, C, O] filters, [in, out] dense
 * kernels). The first dense layer after the flatten gets its kernel rows permuted: NCHW
 * flattens as (c, h, w) and NHWC as (h, w, c), so the same weights see the same inputs.
 * {@link TfLeNet.state} converts everything back to PyTorch's layout for validation.
 *
 * Create it with the tfjs backend it should run on already active.
 *
 * @module
 */
import { batchNormTrain, conv2d, filterFromTf, filterToTf, tf, toNhwc } from "./tfjs.ts";
import type { LayerSpec } from "./lenet_spec.ts";

/** A tfjs LeNet bound to one fixed batch. */
export interface TfLeNet {
  /** One SGD step on the batch; returns the loss (a scalar tensor the caller disposes). */
  step(): tf.Scalar;
  /** Parameters and running statistics in PyTorch's names and layouts. */
  state(): Promise<Record<string, Float32Array>>;
  /** Frees the variables and the batch. */
  dispose(): void;
}

/** Converts one state entry between PyTorch's layout and tfjs's, in either direction. */
interface Entry {
  name: string;
  variable: tf.Variable;
  back: (v: Float32Array) => Float32Array;
}

/**
 * Builds the network of `spec` with the values of `state` (PyTorch names and layouts) and
 * binds it to the batch `x` ([N, 1, 28, 28], NCHW) and `labels` (class indices).
 */
export function tfLeNet(
  spec: readonly LayerSpec[],
  state: Record<string, Float32Array>,
  x: Float32Array,
  labels: ArrayLike<number>,
  lr: number,
): TfLeNet {
  const n = labels.length;
  const entries: Entry[] = [];
  const variable = (
    name: string,
    values: Float32Array,
    shape: number[],
    back: (v: Float32Array) => Float32Array = (v) => v,
    trainable = true,
  ): tf.Variable => {
    if (!state[name]) throw new Error(`tfLeNet: the state dict has no ${name}`);
    const v = tf.variable(tf.tensor(values, shape), trainable);
    entries.push({ name, variable: v, back });
    return v;
  };

  // Per-example activation shape as we go: [H, W, C] (channels-last) or [F].
  let shape = [28, 28, 1];
  let flattenedFrom: number[] | null = null; // [H, W, C] just before the flatten
  const layers: ((t: tf.Tensor) => tf.Tensor)[] = spec.map((l, i) => {
    const p = `${i}.`;
    switch (l.kind) {
      case "conv": {
        const dims = [l.outChannels, l.inChannels, l.kernel, l.kernel];
        const filter = variable(
          `${p}weight`,
          filterToTf(state[`${p}weight`], dims),
          [l.kernel, l.kernel, l.inChannels, l.outChannels],
          (v) => filterFromTf(v, dims),
        );
        const bias = variable(`${p}bias`, state[`${p}bias`], [l.outChannels]);
        const side = shape[0] + 2 * l.padding - l.kernel + 1;
        shape = [side, side, l.outChannels];
        return (t) => conv2d(t as tf.Tensor4D, filter as tf.Tensor4D, bias, l.padding);
      }
      case "batchnorm": {
        const c = l.features;
        const gamma = variable(`${p}weight`, state[`${p}weight`], [c]);
        const beta = variable(`${p}bias`, state[`${p}bias`], [c]);
        const rm = variable(`${p}running_mean`, state[`${p}running_mean`], [c], undefined, false);
        const rv = variable(`${p}running_var`, state[`${p}running_var`], [c], undefined, false);
        return (t) => batchNormTrain(t, gamma, beta, rm, rv);
      }
      case "sigmoid":
        return (t) => tf.sigmoid(t);
      case "maxpool": {
        const k = l.kernel;
        shape = [Math.floor(shape[0] / k), Math.floor(shape[1] / k), shape[2]];
        return (t) => tf.maxPool(t as tf.Tensor4D, k, k, "valid");
      }
      case "flatten":
        flattenedFrom = shape;
        shape = [shape.reduce((a, b) => a * b, 1)];
        return (t) => t.reshape([t.shape[0], -1]);
      case "linear": {
        const [inF, outF] = [l.inFeatures, l.outFeatures];
        const perm = flattenedFrom ? flattenPermutation(flattenedFrom) : null;
        flattenedFrom = null;
        const kernel = variable(
          `${p}weight`,
          denseToTf(state[`${p}weight`], outF, inF, perm),
          [inF, outF],
          (v) => denseFromTf(v, outF, inF, perm),
        );
        const bias = variable(`${p}bias`, state[`${p}bias`], [outF]);
        shape = [outF];
        return (t) => tf.fused.matMul({ a: t as tf.Tensor2D, b: kernel as tf.Tensor2D, bias });
      }
    }
  });

  const input = tf.tensor(toNhwc(x, [n, 1, 28, 28]), [n, 28, 28, 1]);
  const oneHot = tf.oneHot(tf.tensor1d(Array.from(labels), "int32"), 10);
  const optimizer = tf.train.sgd(lr);
  const trainable = entries.map((e) => e.variable).filter((v) => v.trainable);
  const loss = () =>
    tf.losses.softmaxCrossEntropy(oneHot, layers.reduce((t, f) => f(t), input)) as tf.Scalar;

  return {
    step: () => optimizer.minimize(loss, true, trainable)!,
    state: async () => {
      const out: Record<string, Float32Array> = {};
      for (const e of entries) out[e.name] = e.back(await e.variable.data() as Float32Array);
      return out;
    },
    dispose: () => {
      tf.dispose([input, oneHot, ...entries.map((e) => e.variable)]);
      optimizer.dispose();
    },
  };
}

/** perm[j] = the (c, h, w)-order feature that sits at (h, w, c)-order position j. */
function flattenPermutation([h, w, c]: number[]): Int32Array {
  const perm = new Int32Array(h * w * c);
  for (let k = 0; k < c; k++) {
    for (let s = 0; s < h * w; s++) perm[s * c + k] = k * h * w + s;
  }
  return perm;
}

/** PyTorch's weight [out, in] as tfjs's kernel [in, out], rows permuted if `perm` is given. */
function denseToTf(w: Float32Array, outF: number, inF: number, perm: Int32Array | null) {
  const k = new Float32Array(inF * outF);
  for (let j = 0; j < inF; j++) {
    const src = perm ? perm[j] : j;
    for (let o = 0; o < outF; o++) k[j * outF + o] = w[o * inF + src];
  }
  return k;
}

/** The inverse of {@link denseToTf}. */
function denseFromTf(k: Float32Array, outF: number, inF: number, perm: Int32Array | null) {
  const w = new Float32Array(inF * outF);
  for (let j = 0; j < inF; j++) {
    const dst = perm ? perm[j] : j;
    for (let o = 0; o < outF; o++) w[o * inF + dst] = k[j * outF + o];
  }
  return w;
}
