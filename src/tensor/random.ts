/**
 * Seeded random numbers on the host, so that the same seed gives the same numbers on
 * every adapter: parameter initialisation (generated once, uploaded once), the seeds of
 * the GPU's counter-based generators (`Tensor.rand`/`randn`, dropout), and shuffles.
 *
 * @module
 */

/** A deterministic generator (SplitMix32 state, Box-Muller normals). */
export class Rng {
  #s: number;
  #spare: number | undefined;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform integer in [0, 2^32). */
  nextU32(): number {
    let z = (this.#s = (this.#s + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** A uniform float in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }
  /** A standard normal sample. */
  normal(): number {
    if (this.#spare !== undefined) {
      const s = this.#spare;
      this.#spare = undefined;
      return s;
    }
    const u = 1 - this.uniform(); // (0, 1]
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

let global = new Rng(0);

/**
 * Where a layer that draws random numbers while training (`Dropout`, `ChannelNoise`) stands:
 * its seed, and how many draws it has made (its `forward` calls in training). Saved and
 * restored to resume a run exactly (`saveTrainingState`).
 */
export interface RandomState {
  /** The layer's seed. */
  seed: number;
  /** Draws made so far: the next one is draw `calls` of `seed`. */
  calls: number;
}

/** Throws unless `s` is a {@link RandomState}: a 32-bit seed and a whole number of calls. */
export function checkRandomState(who: string, s: RandomState): void {
  const u32 = Number.isInteger(s?.seed) && s.seed >= 0 && s.seed < 2 ** 32;
  if (!u32 || !(Number.isSafeInteger(s.calls) && s.calls >= 0)) {
    throw new Error(
      `${who}.loadRandomState needs { seed: 0 to 2^32 - 1, calls: a whole number >= 0 }, got ` +
        JSON.stringify(s),
    );
  }
}

/** Reseeds the global generator used when no `seed` option is given (like `torch.manual_seed`). */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

/** The generator for a given seed, or the global one. */
export function rngFor(seed?: number): Rng {
  return seed === undefined ? global : new Rng(seed);
}
