/** Helpers of the training tests: a tiny labelled dataset, and a model's weights read back. */
import type { Dataset } from "../../src/data/loader.ts";
import type { Module } from "../../src/nn/module.ts";

/** `n` 28x28 images whose pixels follow their label (i * 7 mod 10), so that a net can learn. */
export function data(n: number): Dataset {
  const labels = new Uint8Array(n).map((_, i) => (i * 7) % 10);
  const images = new Uint8Array(n * 784).map((_, i) =>
    (labels[Math.floor(i / 784)] * 25 + i) & 0xff
  );
  return { images, labels, n, rows: 28, cols: 28 };
}

/** Every value of `net`'s state dict, in order. */
export async function weights(net: Module): Promise<number[]> {
  using sd = net.stateDict();
  const out: number[] = [];
  for (const t of Object.values(sd)) out.push(...await t.toArray());
  return out;
}
