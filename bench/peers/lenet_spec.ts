/**
 * The two LeNets of the comparison as plain data, so that every peer builds the same
 * network as bnlab's `lenet()` (src/models/lenet.ts): the layer list, with each layer at
 * its index in the `Sequential`, which is also its prefix in the state dict ("0.weight",
 * "1.running_mean", ...). The PyTorch peer receives this list as JSON.
 *
 * {@link checkSpec} compares a spec with bnlab's own model (names and shapes of its state
 * dict), so a change to `lenet()` stops the comparison instead of comparing different nets.
 *
 * @module
 */

/** One layer of a LeNet spec. */
export type LayerSpec =
  | { kind: "conv"; inChannels: number; outChannels: number; kernel: number; padding: number }
  | { kind: "batchnorm"; features: number }
  | { kind: "sigmoid" }
  | { kind: "maxpool"; kernel: number }
  | { kind: "flatten" }
  | { kind: "linear"; inFeatures: number; outFeatures: number };

const conv = (inChannels: number, outChannels: number, padding = 0): LayerSpec => ({
  kind: "conv",
  inChannels,
  outChannels,
  kernel: 5,
  padding,
});
const bn = (features: number): LayerSpec => ({ kind: "batchnorm", features });
const sigmoid: LayerSpec = { kind: "sigmoid" };
const pool: LayerSpec = { kind: "maxpool", kernel: 2 };
const flatten: LayerSpec = { kind: "flatten" };
const linear = (inFeatures: number, outFeatures: number): LayerSpec => ({
  kind: "linear",
  inFeatures,
  outFeatures,
});

/** `lenet({ norm: "batch" })`: the lecture's LeNet with BatchNorm2d/1d, max pool, sigmoid. */
export const LENET_BN: readonly LayerSpec[] = [
  conv(1, 6),
  bn(6),
  sigmoid,
  pool,
  conv(6, 16),
  bn(16),
  sigmoid,
  pool,
  flatten,
  linear(256, 120),
  bn(120),
  sigmoid,
  linear(120, 84),
  bn(84),
  sigmoid,
  linear(84, 10),
];

/** `lenet({ norm: "none" })`: the book's plain LeNet (first convolution padded by 2). */
export const LENET_PLAIN: readonly LayerSpec[] = [
  conv(1, 6, 2),
  sigmoid,
  pool,
  conv(6, 16),
  sigmoid,
  pool,
  flatten,
  linear(400, 120),
  sigmoid,
  linear(120, 84),
  sigmoid,
  linear(84, 10),
];

/** State-dict entries (name and PyTorch-layout shape) that a spec's layers own. */
export function specState(spec: readonly LayerSpec[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  spec.forEach((l, i) => {
    if (l.kind === "conv") {
      out.set(`${i}.weight`, [l.outChannels, l.inChannels, l.kernel, l.kernel]);
      out.set(`${i}.bias`, [l.outChannels]);
    } else if (l.kind === "linear") {
      out.set(`${i}.weight`, [l.outFeatures, l.inFeatures]);
      out.set(`${i}.bias`, [l.outFeatures]);
    } else if (l.kind === "batchnorm") {
      for (const k of ["weight", "bias", "running_mean", "running_var"]) {
        out.set(`${i}.${k}`, [l.features]);
      }
    }
  });
  return out;
}

/**
 * Throws unless `state` (bnlab's state dict: name -> shape) holds exactly the spec's
 * entries, besides BatchNorm's `num_batches_tracked` counters.
 */
export function checkSpec(
  name: string,
  spec: readonly LayerSpec[],
  state: Record<string, { shape: readonly number[] }>,
): void {
  const want = specState(spec);
  const got = Object.entries(state).filter(([k]) => !k.endsWith("num_batches_tracked"));
  const problems: string[] = [];
  for (const [k, t] of got) {
    const w = want.get(k);
    if (!w) problems.push(`unexpected ${k}`);
    else if (w.join() !== t.shape.join()) problems.push(`${k}: spec [${w}], lenet() [${t.shape}]`);
  }
  for (const k of want.keys()) if (!(k in state)) problems.push(`missing ${k}`);
  if (problems.length) {
    throw new Error(
      `The ${name} spec in bench/peers/lenet_spec.ts no longer matches lenet(): ${
        problems.join("; ")
      }. Update the spec so the peers build the same network.`,
    );
  }
}
