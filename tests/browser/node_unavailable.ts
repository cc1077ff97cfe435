/**
 * `node:zlib` and `node:crypto` in the page (mapped in by tests/browser/import_map.json):
 * src/data/ imports them at load, for gzip and checksums of downloaded files, which no
 * browser test uses. Any use throws, naming the module.
 *
 * @module
 */

function unavailable(module: string): never {
  throw new Error(`${module} is not available in the browser test suite`);
}

/** `node:zlib`'s default export: every property throws. */
export default new Proxy({}, { get: () => unavailable("node:zlib") });

/** `node:crypto`'s `createHash`. */
export function createHash(): never {
  return unavailable("node:crypto");
}
