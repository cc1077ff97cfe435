/**
 * LeNet-5 as the lecture and the book build it, with batch normalization, layer
 * normalization or none, max or average pooling, sigmoid or ReLU.
 *
 * @module
 */
import { Conv2d } from "../nn/conv.ts";
import { AvgPool2d, MaxPool2d } from "../nn/pooling.ts";
import { BatchNorm1d, BatchNorm2d } from "../nn/batch_norm.ts";
import { LayerNorm } from "../nn/layer_norm.ts";
import { GroupNorm } from "../nn/group_norm.ts";
import { GhostBatchNorm } from "../nn/ghost_batch_norm.ts";
import { Linear } from "../nn/linear.ts";
import { ReLU, Sigmoid } from "../nn/activation.ts";
import { Flatten } from "../nn/flatten.ts";
import { Sequential } from "../nn/sequential.ts";
import { Module } from "../nn/module.ts";
import { Dropout } from "../nn/dropout.ts";
import { recordArchitecture } from "./architecture.ts";

/**
 * Makes the normalization layer for `channels` features of an input of `rank` 4 (after a
 * convolution, [N, C, H, W]) or 2 (after a linear layer, [N, C]): how `lenet` takes a
 * normalization of your own, such as the lecture's from-scratch `BatchNorm`.
 */
export type NormFactory = (channels: number, rank: 2 | 4) => Module;

/** Options of {@link lenet}. */
export interface LeNetOptions {
  /**
   * `"batch"` (default): the lecture's LeNet with BatchNorm2d/1d after each convolution
   * and hidden linear layer; `"layer"`: LayerNorm in the same places; `"group"`:
   * GroupNorm (`groups`); `"ghost"`: GhostBatchNorm (`virtualBatchSize`); a
   * {@link NormFactory}: your layer in the same places; `"none"`: the book's plain LeNet
   * (first convolution padded by 2, so the first Linear has 400 inputs).
   */
  norm?: "batch" | "layer" | "group" | "ghost" | "none" | NormFactory;
  /** Groups of GroupNorm with `norm: "group"` (dividing 6, 16, 120 and 84). Default 2. */
  groups?: number;
  /** Examples per ghost batch with `norm: "ghost"` (GhostBatchNorm). Default 32. */
  virtualBatchSize?: number;
  /**
   * Dropout probability after the activation of each hidden linear layer (as d2l places
   * it in its MLPs). Default 0: no Dropout layers (the state dict is the lecture's).
   */
  dropout?: number;
  /** `"max"` (default, the lecture's code) or `"avg"` (the book's LeNet): 2x2, stride 2. */
  pool?: "max" | "avg";
  /** `"sigmoid"` (default, as in the lecture) or `"relu"`. */
  activation?: "sigmoid" | "relu";
}

/**
 * LeNet for 28x28 grey images and 10 classes, as a {@link Sequential} whose state-dict
 * names follow PyTorch's numbering (`"1.weight"`, `"1.running_mean"`, ...).
 *
 * With `norm: "batch"` (the lecture):
 * `Conv2d(1,6,5) BN2d(6) act pool Conv2d(6,16,5) BN2d(16) act pool Flatten
 * Linear(256,120) BN1d(120) act Linear(120,84) BN1d(84) act Linear(84,10)`.
 * `norm: "layer"` puts `LayerNorm([6,24,24])`, `LayerNorm([16,8,8])`, `LayerNorm(120)`,
 * `LayerNorm(84)` in the BN places. `norm: "none"`:
 * `Conv2d(1,6,5,{padding:2}) act pool Conv2d(6,16,5) act pool Flatten Linear(400,120) act
 * Linear(120,84) act Linear(84,10)`.
 *
 * Shape: input `[N, 1, 28, 28]`, output `[N, 10]` (logits).
 *
 * The options are recorded as the model's architecture (`architectureOf(net)`, except with
 * a norm factory): checkpoints carry them, and a checkpoint of another architecture is
 * refused on load.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet, Tensor } from "../../mod.ts";
 * const net = lenet({ norm: "batch" });
 * const y = net.forward(Tensor.randn([2, 1, 28, 28], { seed: 0 }));
 * assert.deepEqual(y.shape, [2, 10]);
 * assert.deepEqual(Object.keys(net.stateDict()).slice(0, 3), ["0.weight", "0.bias", "1.weight"]);
 * ```
 */
export function lenet(opts: LeNetOptions = {}): Sequential {
  const net = build(opts);
  const { norm = "batch", pool = "max", activation = "sigmoid", dropout = 0 } = opts;
  if (typeof norm === "function") return net; // a factory of one's own: not rebuildable
  const { groups = 2, virtualBatchSize = 32 } = opts;
  return recordArchitecture(net, {
    model: "lenet",
    norm,
    pool,
    activation,
    dropout,
    ...(norm === "group" ? { groups } : {}),
    ...(norm === "ghost" ? { virtualBatchSize } : {}),
  });
}

function build(opts: LeNetOptions): Sequential {
  const { norm = "batch", pool = "max", activation = "sigmoid", dropout = 0 } = opts;
  const { groups = 2, virtualBatchSize = 32 } = opts;
  if (typeof norm !== "function" && !["batch", "layer", "group", "ghost", "none"].includes(norm)) {
    throw new Error(
      `lenet: norm must be "batch", "layer", "group", "ghost", "none" or a function ` +
        `(channels, rank) => Module, got ${JSON.stringify(norm)}`,
    );
  }
  if (norm === "group" && [6, 16, 120, 84].some((c) => c % groups !== 0)) {
    throw new Error(
      `lenet: groups must divide the channels 6, 16, 120 and 84 (1, 2), got ${groups}`,
    );
  }
  if (!(dropout >= 0 && dropout < 1)) {
    throw new Error(`lenet: dropout must be a probability in [0, 1), got ${dropout}`);
  }
  if (!["max", "avg"].includes(pool)) {
    throw new Error(`lenet: pool must be "max" or "avg", got ${JSON.stringify(pool)}`);
  }
  if (!["sigmoid", "relu"].includes(activation)) {
    throw new Error(
      `lenet: activation must be "sigmoid" or "relu", got ${JSON.stringify(activation)}`,
    );
  }
  const act = (): Module => (activation === "sigmoid" ? new Sigmoid() : new ReLU());
  // A hidden linear layer's activation, then dropout if asked.
  const hidden = (): Module[] => (dropout > 0 ? [act(), new Dropout(dropout)] : [act()]);
  const pooling =
    (): Module => (pool === "max"
      ? new MaxPool2d(2, { stride: 2 })
      : new AvgPool2d(2, { stride: 2 }));
  if (norm === "none") {
    return new Sequential(
      new Conv2d(1, 6, 5, { padding: 2 }),
      act(),
      pooling(),
      new Conv2d(6, 16, 5),
      act(),
      pooling(),
      new Flatten(),
      new Linear(400, 120),
      ...hidden(),
      new Linear(120, 84),
      ...hidden(),
      new Linear(84, 10),
    );
  }
  // Feature maps: 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, so 16*4*4 = 256 features.
  const make = (c: number, rank: 2 | 4, hw: number): Module => {
    if (typeof norm === "function") {
      const m = norm(c, rank);
      if (!(m instanceof Module)) {
        throw new Error(`lenet: the norm factory must return a Module, got ${String(m)}`);
      }
      return m;
    }
    if (norm === "batch") return rank === 4 ? new BatchNorm2d(c) : new BatchNorm1d(c);
    if (norm === "group") return new GroupNorm(groups, c);
    if (norm === "ghost") return new GhostBatchNorm(c, { virtualBatchSize });
    return new LayerNorm(rank === 4 ? [c, hw, hw] : c);
  };
  const norm2d = (c: number, hw: number) => make(c, 4, hw);
  const norm1d = (n: number) => make(n, 2, 1);
  return new Sequential(
    new Conv2d(1, 6, 5),
    norm2d(6, 24),
    act(),
    pooling(),
    new Conv2d(6, 16, 5),
    norm2d(16, 8),
    act(),
    pooling(),
    new Flatten(),
    new Linear(256, 120),
    norm1d(120),
    ...hidden(),
    new Linear(120, 84),
    norm1d(84),
    ...hidden(),
    new Linear(84, 10),
  );
}
