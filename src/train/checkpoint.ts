/**
 * Checkpoints in the safetensors format, readable by PyTorch's `safetensors.torch.load_file`.
 *
 * Layout: an 8-byte little-endian header length `n`, then `n` bytes of JSON (padded with
 * spaces to a multiple of 8), then the raw little-endian tensor bytes. The header maps
 * each name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the
 * start of the data), plus an optional `"__metadata__"` object of string values.
 * Parameters and buffers are written as `F32`; integer buffers (`num_batches_tracked`)
 * as `I64`, as PyTorch stores them.
 *
 * @module
 */
import type { HostTensor, Module } from "../nn/module.ts";
import { allocBuffer, releaseBuffer } from "../gpu/buffer_pool.ts";
import { copyBuffer, readBuffer } from "../gpu/queue.ts";
import { fmt } from "../tensor/shape.ts";
import { removeStaleTempFiles, writeFileAtomic } from "./atomic_write.ts";
import { type Architecture, architectureDiff, architectureOf } from "../models/architecture.ts";
import { lenet, type LeNetOptions } from "../models/lenet.ts";
import type { Sequential } from "../nn/sequential.ts";

/** The element types bnlab reads and writes. */
export type SafetensorsDtype = "F32" | "I64";

/** One tensor of a safetensors file, on the host. */
export interface SafetensorsEntry {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Sizes of each dimension (`[]` for a scalar). */
  shape: number[];
  /** Values; `I64` entries hold integers exactly representable as numbers. */
  data: Float32Array | BigInt64Array;
}

/** A decoded safetensors file. */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Record<string, SafetensorsEntry>;
  /** The header's `__metadata__` (string values); empty if absent. */
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, I64: 8 };

/** The largest header accepted, in bytes: the safetensors format's own limit (100 MB). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** Options of {@link decodeSafetensors}. */
export interface DecodeOptions {
  /** What the bytes are (a path), named in every error. Default `"safetensors data"`. */
  name?: string;
  /** Accept NaN and infinite `F32` values (a diverged model saved on purpose). Default false. */
  allowNonFinite?: boolean;
}

/**
 * Encodes tensors and string metadata as safetensors bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "../../train.ts";
 * const bytes = encodeSafetensors({
 *   w: { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) },
 * }, { note: "demo" });
 * const back = decodeSafetensors(bytes);
 * assert.deepEqual(back.tensors.w.data, Float32Array.of(1, 2));
 * assert.equal(back.metadata.note, "demo");
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsEntry>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    if (t.data.byteLength !== bytes) {
      throw new Error(
        `Tensor "${name}" has ${t.data.byteLength} bytes, shape ${fmt(t.shape)} ${t.dtype} ` +
          `needs ${bytes}: pass data matching the shape`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // the Rust writer aligns the data to 8
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Decodes safetensors bytes, checking the header against the data as the format's reader
 * does: a header of at most {@link SAFETENSORS_MAX_HEADER} bytes, tensors whose
 * `data_offsets` tile the data exactly (in any order in the header, but no overlap, gap
 * or trailing byte), and, unless `allowNonFinite`, no NaN or infinite `F32` value. Only
 * `F32` and `I64` tensors are accepted. Every error names `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "../../train.ts";
 * const n = { dtype: "I64" as const, shape: [], data: BigInt64Array.of(7n) };
 * assert.equal(decodeSafetensors(encodeSafetensors({ n })).tensors.n.data[0], 7n);
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  { name: file = "safetensors data", allowNonFinite = false }: DecodeOptions = {},
): Safetensors {
  const bad = (why: string) => new Error(`${file} is not a valid safetensors file: ${why}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > SAFETENSORS_MAX_HEADER) throw bad(headerTooLong(n));
  if (8 + n > bytes.length) throw bad(`header length ${n} exceeds the file (${bytes.length} B)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(header)) throw bad(`the header is ${JSON.stringify(header)}, not a JSON object`);
  const data = bytes.subarray(8 + n);
  const tensors: Record<string, SafetensorsEntry> = {};
  const meta = header.__metadata__ ?? {};
  if (!isObject(meta) || Object.values(meta).some((v) => typeof v !== "string")) {
    throw bad("__metadata__ must be an object of strings");
  }
  const metadata = meta as Record<string, string>;
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (!isObject(v)) throw bad(`entry "${name}" is ${JSON.stringify(v)}, not an object`);
    const { dtype, shape, data_offsets: off } = v;
    const isCount = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw bad(`tensor "${name}" has shape ${JSON.stringify(shape)}, not a list of sizes`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) {
      throw bad(`tensor "${name}" has data_offsets ${JSON.stringify(off)}, not [begin, end]`);
    }
    if (typeof dtype !== "string") throw bad(`tensor "${name}" has no dtype`);
    if (dtype !== "F32" && dtype !== "I64") {
      throw new Error(
        `${file}: tensor "${name}" has dtype ${dtype}; bnlab reads F32 and I64: convert it ` +
          `to float32 before saving (tensor.float())`,
      );
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = off as [number, number];
    if (end < begin) {
      throw bad(`tensor "${name}" has data_offsets [${begin}, ${end}], out of order`);
    }
    if (end - begin !== numel * BYTES[dtype] || end > data.length) {
      throw bad(
        `tensor "${name}" ${dtype} ${fmt(shape)} (${numel * BYTES[dtype]} B) has data_offsets ` +
          `[${begin}, ${end}] in ${data.length} B of data`,
      );
    }
    spans.push({ name, begin, end });
    const raw = data.slice(begin, end); // a copy: aligned for the typed array
    const values = dtype === "F32" ? new Float32Array(raw.buffer) : new BigInt64Array(raw.buffer);
    if (!allowNonFinite && values instanceof Float32Array) {
      const i = values.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) {
        throw new Error(
          `${file}: tensor "${name}" holds ${values[i]} at index ${i}; a checkpoint's values ` +
            "must be finite (pass allowNonFinite: true to read a diverged model on purpose)",
        );
      }
    }
    tensors[name] = { dtype, shape: shape as number[], data: values };
  }
  // The tensors must tile the data: sorted by offset, each begins where the last ended.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0, last = "the start of the data";
  for (const s of spans) {
    if (s.begin < at) {
      throw bad(`tensor "${s.name}" [${s.begin}, ${s.end}] overlaps ${last} (ending at ${at})`);
    }
    if (s.begin > at) throw bad(`${s.begin - at} B between ${last} and tensor "${s.name}"`);
    [at, last] = [s.end, `tensor "${s.name}"`];
  }
  if (at !== data.length) {
    throw bad(`${data.length - at} trailing bytes after the last tensor's data (ending at ${at})`);
  }
  return { tensors, metadata };
}

function headerTooLong(n: number): string {
  return `the header is declared as ${n} B, more than the format's limit of ` +
    `${SAFETENSORS_MAX_HEADER} B (a corrupt or foreign file)`;
}

/**
 * Reads a module's state dict back from the GPU (one host wait) as safetensors entries:
 * parameters and buffers as `F32`, integer buffers (`num_batches_tracked`) as `I64`.
 */
export async function stateDictEntries(net: Module): Promise<Record<string, SafetensorsEntry>> {
  using sd = net.stateDict();
  const integers = net.integerBuffers();
  const names = Object.keys(sd);
  // Gather every tensor into one buffer so the whole state costs a single readback.
  const offsets: number[] = [];
  let bytes = 0;
  for (const k of names) {
    offsets.push(bytes);
    bytes += sd[k].numel * 4;
  }
  const staging = allocBuffer(Math.max(bytes, 4), "checkpoint staging");
  names.forEach((k, i) => {
    if (sd[k].numel) copyBuffer(sd[k].buffer, staging, sd[k].numel * 4, 0, offsets[i]);
  });
  let all: Float32Array;
  try {
    all = new Float32Array(await readBuffer(staging, Math.max(bytes, 4)));
  } finally {
    releaseBuffer(staging);
  }
  const out: Record<string, SafetensorsEntry> = {};
  names.forEach((k, i) => {
    const t = sd[k];
    const values = all.slice(offsets[i] / 4, offsets[i] / 4 + t.numel);
    out[k] = integers.has(k)
      ? { dtype: "I64", shape: [...t.shape], data: BigInt64Array.from(values, (v) => BigInt(v)) }
      : { dtype: "F32", shape: [...t.shape], data: values };
  });
  return out;
}

/** Names of the entries holding a NaN or an infinity, for the refusal to save them. */
function nonFinite(entries: Record<string, SafetensorsEntry>): string[] {
  return Object.entries(entries)
    .filter(([, e]) => e.data instanceof Float32Array && e.data.some((v) => !Number.isFinite(v)))
    .map(([k]) => k);
}

/** Options for {@link saveCheckpoint}. */
export interface SaveOptions {
  /**
   * String metadata stored in the header's `__metadata__` (with `format: "pt"`, and the
   * model's `architecture` as JSON when its builder recorded one: see `architectureOf`).
   */
  metadata?: Record<string, string>;
  /**
   * Save even if a parameter or buffer holds NaN or an infinity (a diverged model).
   * Default false: such a model is refused with an error naming the tensors.
   */
  allowNonFinite?: boolean;
}

/**
 * Saves a module's parameters and buffers to `path` as safetensors, atomically: the bytes
 * go to a temporary file beside it, created exclusively under an unpredictable name
 * (`.<name>.<hex>.tmp`; never through a symlink), which is then renamed over `path`; a
 * successful save removes what saves killed midway left. A `path` that is a symlink or
 * not a regular file is refused, and so is a model holding NaN or an infinity unless
 * `allowNonFinite`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, Tensor } from "../../mod.ts";
 * import { loadCheckpoint, saveCheckpoint } from "../../train.ts";
 * class Scale extends nn.Module {
 *   weight: Tensor;
 *   constructor(w: number[]) {
 *     super();
 *     this.weight = this.registerParameter("weight", Tensor.from(w));
 *   }
 *   forward(x: Tensor) {
 *     return x.mul(this.weight);
 *   }
 * }
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveCheckpoint(new Scale([1, 2, 3]), path, { metadata: { epochs: "10" } });
 * const net = new Scale([0, 0, 0]);
 * const meta = await loadCheckpoint(net, path);
 * assert.deepEqual(await net.weight.toArray(), Float32Array.of(1, 2, 3));
 * assert.equal(meta.epochs, "10");
 * await Deno.remove(path);
 * ```
 */
export async function saveCheckpoint(
  net: Module,
  path: string,
  { metadata = {}, allowNonFinite = false }: SaveOptions = {},
): Promise<void> {
  const entries = await stateDictEntries(net);
  const bad = allowNonFinite ? [] : nonFinite(entries);
  if (bad.length) {
    throw new Error(
      `saveCheckpoint: not saving ${path}: ${bad.join(", ")} hold NaN or infinite values ` +
        "(the training diverged). Pass allowNonFinite: true to save it anyway, under another name",
    );
  }
  const arch = architectureOf(net);
  const bytes = encodeSafetensors(entries, {
    format: "pt",
    ...(arch ? { architecture: JSON.stringify(arch) } : {}),
    ...metadata,
  });
  await writeFileAtomic(path, bytes, { what: "a checkpoint" });
  await removeStaleTempFiles(path); // what saves killed midway left
}

/** Options of {@link loadCheckpoint}. */
export interface LoadOptions {
  /** Accept NaN and infinite values (a model saved with `allowNonFinite`). Default false. */
  allowNonFinite?: boolean;
}

/**
 * Reads a checkpoint file: a regular file only (a FIFO or device would block or never
 * end), and its header length checked against {@link SAFETENSORS_MAX_HEADER} before the
 * rest is read.
 */
export async function readCheckpointFile(path: string): Promise<Uint8Array> {
  const info = await Deno.stat(path).catch((e) => {
    throw new Error(`Cannot read checkpoint ${path}: ${(e as Error).message}`);
  });
  if (!info.isFile) {
    const kind = info.isDirectory ? "a directory" : "not a regular file (a FIFO, socket or device)";
    throw new Error(`Checkpoint ${path} is ${kind}: pass the path of a .safetensors file`);
  }
  using file = await Deno.open(path);
  const size = (await file.stat()).size;
  const bytes = new Uint8Array(size);
  const fill = async (from: number, to: number) => {
    for (let at = from; at < to;) {
      const n = await file.read(bytes.subarray(at, to));
      if (n === null) throw new Error(`Checkpoint ${path} shrank while it was read`);
      at += n;
    }
  };
  await fill(0, Math.min(8, size));
  if (size >= 8) {
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    if (n > SAFETENSORS_MAX_HEADER) {
      throw new Error(`${path} is not a valid safetensors file: ${headerTooLong(n)}`);
    }
    await fill(8, size);
  }
  return bytes;
}

/**
 * The architecture a checkpoint's metadata records: its `architecture`, or for runs of
 * `deno task train` saved before that key, the LeNet its `config` describes.
 */
export function checkpointArchitecture(
  metadata: Record<string, string>,
): Architecture | undefined {
  try {
    if (metadata.architecture) return JSON.parse(metadata.architecture) as Architecture;
    if (metadata.config) {
      const c = JSON.parse(metadata.config) as Record<string, unknown>;
      if (typeof c.norm === "string" && typeof c.pool === "string") {
        return {
          model: "lenet",
          norm: c.norm,
          pool: c.pool,
          activation: String(c.activation ?? "sigmoid"),
          dropout: 0,
          ...(c.norm === "group" ? { groups: 2 } : {}),
          ...(c.norm === "ghost" ? { virtualBatchSize: 32 } : {}),
        };
      }
    }
  } catch { /* not JSON: no architecture */ }
  return undefined;
}

/** Missing and unexpected names, and shapes that differ, between `tensors` and `net`. */
function fitProblems(net: Module, tensors: Record<string, SafetensorsEntry>): string[] {
  const own = new Map([...net.namedParameters(), ...net.namedBuffers()]);
  const integers = net.integerBuffers();
  const missing = [...own.keys()].filter((k) => !(k in tensors));
  const unexpected = Object.keys(tensors).filter((k) => !own.has(k));
  const shapes = [...own].filter(([k, t]) => {
    const got = tensors[k]?.shape;
    if (!got) return false;
    const n = got.reduce((a, b) => a * b, 1);
    const same = got.length === t.rank && got.every((d, i) => d === t.shape[i]);
    return !same && !(integers.has(k) && t.numel === 1 && n === 1);
  }).map(([k, t]) => `${k}: expected ${fmt(t.shape)}, got ${fmt(tensors[k].shape)}`);
  return [
    ...(missing.length ? [`missing keys: ${missing.join(", ")}`] : []),
    ...(unexpected.length ? [`unexpected keys: ${unexpected.join(", ")}`] : []),
    ...(shapes.length ? [`shapes differ (the model's, the file's): ${shapes.join("; ")}`] : []),
  ];
}

/**
 * Loads a safetensors checkpoint into `net`. It must be of the same architecture when both
 * record one (see `architectureOf`; the message gives both), have the same names and shapes
 * (checked first, then the types), and hold `F32` tensors (integer counters `I64` or `F32`).
 * All or nothing: a checkpoint that does not fit leaves the model unchanged. Besides what
 * {@link decodeSafetensors} refuses, a negative `running_var` and a `num_batches_tracked`
 * that is not a whole number >= 0 are refused; every error names `path`. Returns the file's
 * metadata. {@link loadLeNetCheckpoint} builds the model a checkpoint describes.
 */
export async function loadCheckpoint(
  net: Module,
  path: string,
  { allowNonFinite = false }: LoadOptions = {},
): Promise<Record<string, string>> {
  const { tensors, metadata } = decodeSafetensors(await readCheckpointFile(path), {
    name: path,
    allowNonFinite,
  });
  loadEntries(net, tensors, metadata, path);
  return metadata;
}

/**
 * Loads decoded checkpoint `tensors` into `net` with {@link loadCheckpoint}'s checks
 * (architecture, names and shapes, types, counts and variances), naming `path` in every
 * error. All or nothing. For readers of files that hold a model among other things.
 */
export function loadEntries(
  net: Module,
  tensors: Record<string, SafetensorsEntry>,
  metadata: Record<string, string>,
  path: string,
): void {
  const theirs = checkpointArchitecture(metadata), ours = architectureOf(net);
  if (theirs && ours && architectureDiff(theirs, ours)) {
    throw new Error(
      `Checkpoint ${path} is of another model: it was saved from ${JSON.stringify(theirs)}, ` +
        `this model is ${JSON.stringify(ours)} (${architectureDiff(theirs, ours)}). Build the ` +
        "model it describes, or load it with loadLeNetCheckpoint(path)",
    );
  }
  const misfit = fitProblems(net, tensors);
  if (misfit.length) {
    throw new Error(`Checkpoint ${path} does not fit this model: ${misfit.join("; ")}`);
  }
  const integers = net.integerBuffers();
  const state: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (!integers.has(k) && t.dtype !== "F32") {
      throw new Error(
        `Checkpoint ${path}: "${k}" is ${t.dtype}, expected F32: save parameters and ` +
          `running statistics as float32`,
      );
    }
    const data = t.data instanceof BigInt64Array ? Array.from(t.data, Number) : t.data;
    const i = integers.has(k)
      ? data.findIndex((v) => !Number.isSafeInteger(v) || v < 0)
      : /(^|\.)running_var$/.test(k)
      ? data.findIndex((v) => v < 0)
      : -1;
    if (i >= 0) {
      const what = integers.has(k) ? "a count, a whole number >= 0" : "a variance, >= 0";
      throw new Error(
        `Checkpoint ${path}: "${k}" holds ${t.data[i]} at index ${i}, which is not ${what}; ` +
          "the file is corrupt or was not written from such a model",
      );
    }
    state[k] = { shape: t.shape, data };
  }
  try {
    net.loadStateDict(state);
  } catch (e) {
    throw new Error(`Checkpoint ${path} does not fit this model: ${(e as Error).message}`);
  }
}

/**
 * Builds the LeNet a checkpoint describes (its recorded architecture, or the `config` of a
 * `deno task train` run) and loads the checkpoint into it: one call, and the model is the
 * one that was saved. Throws, naming `path`, when the file records no LeNet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet } from "../../mod.ts";
 * import { loadLeNetCheckpoint, saveCheckpoint } from "../../train.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveCheckpoint(lenet({ norm: "none", pool: "avg" }), path);
 * const { net, metadata } = await loadLeNetCheckpoint(path);
 * assert.equal(net.parameters().length, 10);
 * assert.equal(JSON.parse(metadata.architecture).pool, "avg");
 * await Deno.remove(path);
 * ```
 */
export async function loadLeNetCheckpoint(
  path: string,
  opts: LoadOptions = {},
): Promise<{ net: Sequential; metadata: Record<string, string> }> {
  const { metadata } = decodeSafetensors(await readCheckpointFile(path), {
    name: path,
    allowNonFinite: true, // the values are checked by loadCheckpoint below
  });
  const arch = checkpointArchitecture(metadata);
  if (arch?.model !== "lenet") {
    throw new Error(
      `Checkpoint ${path} records no LeNet architecture (metadata keys: ${
        Object.keys(metadata).join(", ") || "none"
      }): build the model yourself and use loadCheckpoint(net, path)`,
    );
  }
  const { model: _, ...options } = arch;
  const net = lenet(options as LeNetOptions);
  try {
    await loadCheckpoint(net, path, opts);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return { net, metadata };
}
