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

/**
 * Encodes tensors and string metadata as safetensors bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "./checkpoint.ts";
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
 * Decodes safetensors bytes, checking the header against the data. Only `F32` and `I64`
 * tensors are accepted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "./checkpoint.ts";
 * const n = { dtype: "I64" as const, shape: [], data: BigInt64Array.of(7n) };
 * assert.equal(decodeSafetensors(encodeSafetensors({ n })).tensors.n.data[0], 7n);
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): Safetensors {
  const bad = (why: string) => new Error(`Not a valid safetensors file: ${why}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
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
        `Tensor "${name}" has dtype ${dtype}; bnlab reads F32 and I64: convert it to float32 ` +
          `before saving (tensor.float())`,
      );
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = off as [number, number];
    if (end - begin !== numel * BYTES[dtype] || begin < 0 || end > data.length) {
      throw bad(`tensor "${name}" ${dtype} ${fmt(shape)} has data_offsets [${begin}, ${end}]`);
    }
    const raw = data.slice(begin, end); // a copy: aligned for the typed array
    tensors[name] = {
      dtype,
      shape: shape as number[],
      data: dtype === "F32" ? new Float32Array(raw.buffer) : new BigInt64Array(raw.buffer),
    };
  }
  return { tensors, metadata };
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
  /** String metadata stored in the header's `__metadata__` (with `format: "pt"`). */
  metadata?: Record<string, string>;
  /**
   * Save even if a parameter or buffer holds NaN or an infinity (a diverged model).
   * Default false: such a model is refused with an error naming the tensors.
   */
  allowNonFinite?: boolean;
}

/**
 * Saves a module's parameters and buffers to `path` as safetensors, atomically: the bytes
 * go to a temporary file beside it (`.<name>.tmp`, the same name each time, so a save
 * killed midway leaves at most that one file, replaced by the next save), which is then
 * renamed over `path`. A model holding NaN or an infinity is refused unless
 * `allowNonFinite`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * import { nn, Tensor } from "../../mod.ts";
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
  const bytes = encodeSafetensors(entries, { format: "pt", ...metadata });
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) || "/" : ".";
  const tmp = `${dir}/.${path.slice(slash + 1)}.tmp`;
  try {
    await Deno.writeFile(tmp, bytes, { mode: 0o644 });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Loads a safetensors checkpoint into `net` (names and shapes must match exactly; tensors
 * must be `F32`, integer counters `I64` or `F32`). All or nothing: a checkpoint that does
 * not fit leaves the model unchanged. Returns the file's metadata.
 */
export async function loadCheckpoint(net: Module, path: string): Promise<Record<string, string>> {
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path));
  const integers = net.integerBuffers();
  const state: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (!integers.has(k) && t.dtype !== "F32") {
      throw new Error(
        `Checkpoint ${path}: "${k}" is ${t.dtype}, expected F32: save parameters and ` +
          `running statistics as float32`,
      );
    }
    state[k] = {
      shape: t.shape,
      data: t.data instanceof BigInt64Array ? Array.from(t.data, Number) : t.data,
    };
  }
  try {
    net.loadStateDict(state);
  } catch (e) {
    throw new Error(`Checkpoint ${path} does not fit this model: ${(e as Error).message}`);
  }
  return metadata;
}
