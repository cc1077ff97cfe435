/**
 * What the page's bundle gets for the Deno-only modules that library files import at load
 * (mapped in by web/import_map.json): `node:zlib` and `node:crypto` (src/data/, for files
 * on disk and downloads; the page gunzips with `DecompressionStream`) and `@napi-rs/canvas`
 * (src/plot/, for PNG; the page shows the SVG). Any use throws, naming the module.
 *
 * @module
 */

function unavailable(module: string): never {
  throw new Error(`${module} is not available in the page (it is for Deno only)`);
}

/** `node:zlib`'s default export: every property throws. */
export default new Proxy({}, { get: () => unavailable("node:zlib") });

/** `node:crypto`'s `createHash`. */
export function createHash(): never {
  return unavailable("node:crypto");
}

/** `@napi-rs/canvas`'s `createCanvas`. */
export function createCanvas(): never {
  return unavailable("@napi-rs/canvas");
}

/** `@napi-rs/canvas`'s `Image`. */
export class Image {
  /** Throws. */
  constructor() {
    unavailable("@napi-rs/canvas");
  }
}
