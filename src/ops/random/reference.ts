/**
 * The counter-based generator of `random.wgsl` in float64 on the host, naive loops: the
 * same 32-bit hash (exact, so the uniforms must match bit for bit), and Box-Muller in
 * float64 (the GPU's normals differ by its ln/cos/sin/sqrt precision).
 *
 * @module
 */

const STREAM = 0x9e3779b9;

/** PCG's output permutation on 32 bits, as in the WGSL. */
export function refPcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The 24-bit uniform of element i in [0, 1), exactly as the GPU computes it. */
function unit(key: number, i: number): number {
  return (refPcg((key + i) >>> 0) >>> 8) / 16777216;
}

/**
 * `n` uniform samples in [low, high) from `seed`.
 */
export function refUniform(n: number, seed: number, low = 0, high = 1): Float64Array {
  const key = refPcg((refPcg(seed >>> 0) ^ STREAM) >>> 0);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * unit(key, i);
  return out;
}

/**
 * `n` standard normal samples from `seed` (Box-Muller on pairs, as the GPU).
 */
export function refNormal(n: number, seed: number): Float64Array {
  const key = refPcg((refPcg(seed >>> 0) ^ STREAM) >>> 0);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - unit(key, i)));
    const a = 2 * Math.PI * unit(key, i + 1);
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}
