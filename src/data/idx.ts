/**
 * The IDX file format of MNIST and Fashion-MNIST, read and written, plain or gzipped.
 *
 * An IDX file is a 4-byte magic number `00 00 TT D` (TT the element type, 0x08 for
 * unsigned bytes; D the number of dimensions), then D big-endian u32 sizes, then the
 * elements in row-major order. Fashion-MNIST's images are `[n, 28, 28]` (magic 0x803)
 * and its labels `[n]` (magic 0x801). Only unsigned-byte files are read: that is all the
 * datasets use.
 *
 * @module
 */
import zlib from "node:zlib";

/** A decoded IDX array of unsigned bytes. */
export interface IdxArray {
  /** Sizes of each dimension, e.g. `[60000, 28, 28]`. */
  dims: number[];
  /** Elements in row-major order (a view into the file's bytes). */
  data: Uint8Array;
}

const TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** The two kinds of IDX file of MNIST and Fashion-MNIST, by their magic numbers. */
export type IdxKind = "images" | "labels";

const KINDS: Record<IdxKind, { magic: number; shape: string }> = {
  images: { magic: 0x00000803, shape: "[n, rows, cols]" },
  labels: { magic: 0x00000801, shape: "[n]" },
};

const hex = (magic: number) => `0x${magic.toString(16).padStart(8, "0")}`;

/** What a magic number says a file is, in words: "an images file (magic 0x00000803, ...)". */
function kindOf(magic: number): string {
  for (const [kind, k] of Object.entries(KINDS)) {
    if (k.magic === magic) return `an IDX ${kind} file (magic ${hex(magic)}, ${k.shape})`;
  }
  const type = TYPES[(magic >> 8) & 0xff], rank = magic & 0xff;
  if (magic >>> 16 === 0 && type && rank) {
    return `an IDX array of ${rank} dimension${rank === 1 ? "" : "s"} of ${type} (magic ${
      hex(magic)
    })`;
  }
  return `not an IDX file (magic ${hex(magic)})`;
}

/** Options of {@link parseIdx} and {@link readIdxFile}. */
export interface ParseIdxOptions {
  /**
   * The kind of file expected: `"images"` (magic 0x00000803) or `"labels"` (0x00000801).
   * Another magic number is refused, naming both kinds, before the sizes are read.
   */
  expect?: IdxKind;
}

/**
 * Decodes IDX bytes; `name` (the file) is named in every error.
 *
 * Errors on a wrong magic number, an element type other than unsigned byte, a file of
 * another kind than `expect` (saying which kind the magic number makes it), and a length
 * that does not match the header (a truncated file, or trailing bytes).
 */
export function parseIdx(
  bytes: Uint8Array,
  name = "IDX data",
  { expect }: ParseIdxOptions = {},
): IdxArray {
  if (bytes.length < 4) {
    throw new Error(
      `${name} is truncated: ${bytes.length} bytes, shorter than the 4-byte IDX magic number`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const type = bytes[2], rank = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(type in TYPES) || rank === 0) {
    const seen = magic >>> 16 === 0x1f8b ? " (gzip data: readIdxFile gunzips it)" : "";
    throw new Error(
      `${name} is not an IDX file: magic number ${hex(magic)}${seen} ` +
        `(expected ${
          expect ? `${hex(KINDS[expect].magic)} for ${expect}` : "0x0000TTDD, e.g. " +
            "0x00000803 for images, 0x00000801 for labels"
        }). Is this the right file?`,
    );
  }
  if (expect && magic !== KINDS[expect].magic) {
    throw new Error(
      `${name} should be an IDX ${expect} file (magic ${hex(KINDS[expect].magic)}, ` +
        `${KINDS[expect].shape}) but its magic number makes it ${kindOf(magic)}. ` +
        "Are the files swapped or renamed?",
    );
  }
  if (type !== 0x08) {
    throw new Error(
      `${name} holds IDX elements of type ${TYPES[type]} (0x${type.toString(16)}); ` +
        `only unsigned-byte (0x08) files are supported`,
    );
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) {
    throw new Error(
      `${name} is truncated: ${bytes.length} bytes, shorter than its ${header}-byte header`,
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d));
  const n = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - header;
  if (have < n) {
    throw new Error(
      `${name} is truncated: the header says [${dims.join(", ")}] (${n} bytes of data) but only ` +
        `${have} follow. Delete the file and download it again`,
    );
  }
  if (have > n) {
    throw new Error(
      `${name} has ${have - n} bytes after the [${dims.join(", ")}] array its header describes`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/**
 * Encodes unsigned bytes as an IDX file of shape `dims` (for tests and examples).
 */
export function encodeIdx(data: Uint8Array, dims: readonly number[]): Uint8Array<ArrayBuffer> {
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== data.length) {
    throw new Error(`encodeIdx: ${data.length} bytes do not fill dims [${dims.join(", ")}] (${n})`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + n);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/**
 * Decompresses gzip bytes, including files of several concatenated gzip members (as
 * `cat a.gz b.gz` or some archivers write), with `node:zlib`.
 */
export async function gunzip(
  bytes: Uint8Array,
  name = "gzip data",
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const out = await new Promise<Uint8Array>((resolve, reject) =>
      zlib.gunzip(bytes, (e, r) => e ? reject(e) : resolve(r))
    );
    return new Uint8Array(out); // a copy with its own ArrayBuffer
  } catch (e) {
    throw new Error(
      `${name} is not valid gzip (truncated or corrupt: ${(e as Error).message}). ` +
        `Delete the file and download it again`,
    );
  }
}

/**
 * Compresses bytes with gzip (for tests and examples).
 */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const out = await new Promise<Uint8Array>((resolve, reject) =>
    zlib.gzip(bytes, (e, r) => e ? reject(e) : resolve(r))
  );
  return new Uint8Array(out);
}

/**
 * Reads an IDX file, gunzipping it first if it is gzip (detected by its `1f 8b` magic).
 * With `expect`, a file of the other kind is refused (see {@link parseIdx}); a directory
 * or anything else that is not a regular file is refused, called what it is.
 */
export async function readIdxFile(path: string, opts: ParseIdxOptions = {}): Promise<IdxArray> {
  const info = await Deno.stat(path);
  if (!info.isFile) {
    const what = info.isDirectory ? "a directory" : "not a regular file (a device, FIFO or socket)";
    throw new Error(
      `${path} is ${what}, not an IDX ${opts.expect ?? "data"} file: put the file itself there`,
    );
  }
  let bytes: Uint8Array = await Deno.readFile(path);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes, path);
  return parseIdx(bytes, path, opts);
}
