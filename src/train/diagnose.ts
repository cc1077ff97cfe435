/**
 * Why a training loss stopped being finite, told apart after the fact, in a few host reads
 * that happen only then: an invalid label (crossEntropy's own check, kept per step), a
 * non-finite loss from the first step while the weights were finite (the data holds NaN,
 * infinities, or values whose square overflows float32), or a run that diverged (the
 * weights grew until they overflowed: the learning rate), naming the first layer, in module
 * order, whose weights or statistics are no longer finite.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { copyBuffer, readBuffer } from "../gpu/queue.ts";

/** Reads the tensors back in one host wait, in order. */
export async function readAll(ts: readonly Tensor[]): Promise<Float32Array[]> {
  const total = ts.reduce((n, t) => n + t.numel, 0);
  if (total === 0) return ts.map(() => new Float32Array(0));
  const staging = allocBuffer(4 * total, "diagnosis readback");
  try {
    let off = 0;
    for (const t of ts) {
      if (t.numel) copyBuffer(t.buffer, staging, 4 * t.numel, 0, 4 * off);
      off += t.numel;
    }
    const all = new Float32Array(await readBuffer(staging, 4 * total));
    off = 0;
    return ts.map((t) => all.slice(off, off += t.numel));
  } finally {
    releaseBuffer(staging);
  }
}

/**
 * The first layer of `net` (in module order) holding a value that is not finite in a
 * parameter or a floating-point buffer, as `"3 (BatchNorm2d), its running_var"`; null if
 * every value is finite. One host wait.
 */
export async function firstNonFiniteLayer(net: Module): Promise<string | null> {
  const order = new Map(net.namedModules().map(([name], i) => [name, i]));
  const ints = net.integerBuffers();
  const named = [...net.namedParameters(), ...net.namedBuffers().filter(([n]) => !ints.has(n))];
  const layerOf = (name: string) => name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "";
  named.sort(([a], [b]) => (order.get(layerOf(a)) ?? 0) - (order.get(layerOf(b)) ?? 0));
  const values = await readAll(named.map(([, t]) => t));
  const i = values.findIndex((v) => v.some((x) => !Number.isFinite(x)));
  if (i < 0) return null;
  const [name] = named[i];
  const layer = layerOf(name);
  const m = net.namedModules().find(([n]) => n === layer)?.[1] ?? net;
  return `${layer || "the model"} (${m.constructor.name}), its ${
    name.slice(layer ? layer.length + 1 : 0)
  }`;
}
