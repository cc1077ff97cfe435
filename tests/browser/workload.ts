/**
 * One seeded workload that tests/browser/run.ts runs in Deno (wgpu, naga, lavapipe) and in
 * Chromium (Dawn, Tint, SwiftShader), then compares array by array with
 * {@link compareWorkloads}: BatchNorm2d, GroupNorm and LayerNorm forward and backward, and
 * ten SGD steps of LeNet with BN (lr 1, the lecture's) and of the plain LeNet (lr 0.9, the
 * book's) with `nn.CrossEntropyLoss`. Everything random comes from fixed seeds, so both sides
 * start from the same numbers; what may differ is how each implementation rounds, and
 * measured, only `exp` does (see {@link CompareOptions.floor}).
 *
 * @module
 */
import { lenet, manualSeed, nn, optim, Tensor, tidy } from "../../mod.ts";

/** Named results, each a flat array of numbers. */
export type WorkloadResult = Record<string, ArrayLike<number>>;

/** A norm layer's forward and backward on [8, 6, 7, 7], against a seeded upstream gradient. */
async function normPass(
  name: string,
  layer: { forward(x: Tensor): Tensor; weight: Tensor | null; bias: Tensor | null },
  out: Record<string, ArrayLike<number>>,
): Promise<void> {
  const inp = Tensor.randn([8, 6, 7, 7], { seed: 11, requiresGrad: true });
  const dout = Tensor.randn([8, 6, 7, 7], { seed: 12 });
  const y = tidy(() => layer.forward(inp.mul(2).add(0.5))); // mean 0.5, std 2: the mean matters
  tidy(() => y.mul(dout).sum().backward());
  out[`${name}.out`] = await y.toArray();
  out[`${name}.dinp`] = await inp.grad!.toArray();
  out[`${name}.dweight`] = await layer.weight!.grad!.toArray();
  out[`${name}.dbias`] = await layer.bias!.grad!.toArray();
  for (const t of [inp, dout, y]) t.dispose();
}

/**
 * Ten SGD steps of `net` on one seeded batch of 32 images: the first step's output of each
 * pass and gradient of each parameter (so that a difference is seen where it starts), the
 * losses, and the final weights and running statistics.
 */
async function sgdSteps(
  name: string,
  net: nn.Sequential,
  lr: number,
  out: Record<string, ArrayLike<number>>,
): Promise<void> {
  const x = Tensor.randn([32, 1, 28, 28], { seed: 21 });
  const y = Tensor.from(Array.from({ length: 32 }, (_, i) => (i * 7 + 3) % 10));
  const lossFn = new nn.CrossEntropyLoss();
  const opt = new optim.SGD(net.parameters(), { lr });
  const passes = net.passes();
  // The gradient of a bias followed by BatchNorm (in training mode) is zero but for rounding
  // (BN subtracts the batch mean): two runs agree on it to ~1e-8, not relatively.
  const layers = [...net];
  const zeroGrad = new Set(
    layers.flatMap((_, i) =>
      layers[i + 1] instanceof nn.BatchNorm2d || layers[i + 1] instanceof nn.BatchNorm1d
        ? [`${i}.bias`]
        : []
    ),
  );
  const losses: Tensor[] = [];
  for (let step = 0; step < 10; step++) {
    const [loss, ...acts] = tidy(() => {
      opt.zeroGrad();
      const acts: Tensor[] = [];
      let h = x;
      for (const p of passes) acts.push(h = p.forward(h)); // net.forward(x), pass by pass
      const loss = lossFn.forward(h, y);
      loss.backward();
      opt.step();
      return [loss.detach(), ...(step === 0 ? acts.map((a) => a.detach()) : [])];
    });
    for (const [i, a] of acts.entries()) {
      out[`${name}.step0.${passes[i].first}.${passes[i].name}`] = await a.toArray();
      a.dispose();
    }
    if (step === 0) {
      for (const [k, p] of net.namedParameters()) {
        if (!zeroGrad.has(k)) out[`${name}.step0.${k}.grad`] = await p.grad!.toArray();
      }
    }
    losses.push(loss);
  }
  out[`${name}.loss`] = await Promise.all(losses.map((l) => l.item()));
  for (const [k, p] of net.namedParameters()) out[`${name}.${k}`] = await p.toArray();
  for (const [k, b] of Object.entries(net.stateDict())) {
    if (k.endsWith("running_mean") || k.endsWith("running_var")) {
      out[`${name}.${k}`] = await b.toArray();
    }
    b.dispose();
  }
  for (const t of [x, y, ...losses]) t.dispose();
}

/** Runs the workload on the current device; the same numbers in and, up to rounding, out. */
export async function workload(): Promise<WorkloadResult> {
  const out: Record<string, ArrayLike<number>> = {};
  using bn2d = new nn.BatchNorm2d(6);
  await normPass("batch_norm", bn2d, out);
  out["batch_norm.running_mean"] = await bn2d.runningMean!.toArray();
  out["batch_norm.running_var"] = await bn2d.runningVar!.toArray();
  using gn = new nn.GroupNorm(3, 6);
  await normPass("group_norm", gn, out);
  using ln = new nn.LayerNorm([6, 7, 7]);
  await normPass("layer_norm", ln, out);
  manualSeed(1);
  using bn = lenet();
  await sgdSteps("lenet_bn", bn, 1.0, out);
  manualSeed(2);
  using plain = lenet({ norm: "none" });
  await sgdSteps("lenet", plain, 0.9, out);
  return out;
}

/** One entry's difference between two runs of the workload. */
export interface Difference {
  /** The array's name. */
  name: string;
  /** The entry's index in it. */
  index: number;
  /** The entry in the first run. */
  a: number;
  /** The entry in the second run. */
  b: number;
  /** |a - b| / max(|a|, |b|, floor * the array's largest magnitude). */
  rel: number;
}

/** Options of {@link compareWorkloads}. */
export interface CompareOptions {
  /** Largest relative difference allowed. Default 1e-4. */
  rtol?: number;
  /**
   * The smallest denominator, as a fraction of the array's largest magnitude. Default 1: each
   * array is compared normwise, max |a_i - b_i| <= rtol * max |a_i|.
   *
   * Why not a floor near 0 (measured on lavapipe and SwiftShader, Intel Xeon, 2 cores): the
   * two implementations round `exp` differently in the last place, and nothing else does
   * (with ReLU for sigmoid, LeNet+BN's whole forward pass is bit for bit the same in both,
   * and the first difference is cross-entropy's gradient; BN, GroupNorm and LayerNorm forward
   * and backward are bit for bit the same). Through ten SGD steps at lr 1 and BN, those
   * differences spread into every weight as an absolute error of up to 6e-6 of the array's
   * largest value, so an entry far below its array's scale (a weight that SGD moved through
   * zero; a convolution's bias before BN, whose gradient is zero but for rounding) differs by
   * more than 1e-4 of itself: the worst was 9.5e-4 with a floor of 1e-3, 1.8e-4 with 1e-2.
   */
  floor?: number;
}

/**
 * Compares two runs of the workload array by array, in the first run's order (so the first
 * error names where a difference starts): each array present in both with the same length,
 * each entry within `rtol` of the larger of the two magnitudes, or of `floor` times the
 * array's largest if that is larger. Returns the errors (none when they agree), the worst
 * entry and the number of values compared.
 */
export function compareWorkloads(
  a: WorkloadResult,
  b: WorkloadResult,
  { rtol = 1e-4, floor = 1 }: CompareOptions = {},
): { errors: string[]; worst?: Difference; values: number } {
  const errors: string[] = [];
  let worst: Difference | undefined;
  let values = 0;
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[name], y = b[name];
    if (!x || !y) {
      errors.push(`${name}: only in ${x ? "the first" : "the second"} run`);
      continue;
    }
    if (x.length !== y.length) {
      errors.push(`${name}: ${x.length} values against ${y.length}`);
      continue;
    }
    let scale = 0;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]), Math.abs(y[i]));
    let bad = 0;
    let arrayWorst: Difference | undefined;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      const rel = d === 0 ? 0 : d / Math.max(Math.abs(x[i]), Math.abs(y[i]), floor * scale);
      const r = Number.isNaN(rel) ? Infinity : rel;
      if (!(r <= rtol)) bad++;
      if (!arrayWorst || r > arrayWorst.rel) {
        arrayWorst = { name, index: i, a: x[i], b: y[i], rel: r };
      }
    }
    values += x.length;
    if (bad) {
      const w = arrayWorst!;
      errors.push(
        `${name}: ${bad} of ${x.length} values differ by more than ${rtol} relative; worst ` +
          `[${w.index}] ${w.a} against ${w.b} (${w.rel.toExponential(2)})`,
      );
    }
    if (arrayWorst && (!worst || arrayWorst.rel > worst.rel)) worst = arrayWorst;
  }
  return { errors, worst, values };
}
