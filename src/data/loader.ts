/**
 * Minibatches of an image dataset kept on the GPU.
 *
 * The images and labels are uploaded once, as bytes (a quarter of their float size: 47 MB
 * for Fashion-MNIST's training split), into a {@link DeviceDataset} that several loaders
 * (say, one per batch size in a sweep) can share. Each epoch the host shuffles the
 * indices and uploads that order once; each batch is then one `gather.wgsl` launch that
 * picks its examples by the order and scales the pixels to [0, 1]. Nothing is uploaded
 * per batch.
 *
 * Ownership: a loader owns the batches it yields. A batch is valid until the next one is
 * requested (or the loop ends); `clone()` a tensor to keep it longer.
 *
 * @module
 */
import { releaseBuffer, uploadBuffer } from "../gpu/buffer_pool.ts";
import { deviceSync } from "../gpu/device.ts";
import { grid, launch, uniforms } from "../gpu/queue.ts";
import { Rng } from "../tensor/random.ts";
import { Tensor } from "../tensor/tensor.ts";
import gatherSrc from "./gather.wgsl" with { type: "text" };

const WG = 64;

/** Images and labels as bytes, e.g. a split from `loadFashionMnist`. */
export interface Dataset {
  /** Pixels, `n * channels * rows * cols` bytes, image after image (channel-major). */
  images: Uint8Array;
  /** Class of each example, `n` bytes. */
  labels: Uint8Array;
  /** Number of examples. */
  n: number;
  /** Channels per image. Default 1 (grey). */
  channels?: number;
  /** Image height. */
  rows: number;
  /** Image width. */
  cols: number;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Visit the examples in a new random order each epoch. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle; with the epoch number it fixes the order. Default 0. */
  seed?: number;
  /** Leave out the last batch when it is smaller than `batchSize`. Default false. */
  dropLast?: boolean;
  /** Use only the first `limit` examples (a subset for quick runs). Default all. */
  limit?: number;
}

/** One minibatch: images `x` [B, C, rows, cols] in [0, 1] and class indices `y` [B] as floats. */
export interface Batch {
  /** Images, shape [B, C, rows, cols], pixel / 255. */
  x: Tensor;
  /** Labels as f32 class indices, shape [B]. */
  y: Tensor;
}

/** MurmurHash3's 32-bit finalizer: a bijection that scrambles every bit. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The order in which an epoch visits examples 0..n-1: the identity, or a Fisher-Yates
 * shuffle driven by `new Rng(fmix32(fmix32(seed) + epoch))`, so every (seed, epoch) has its
 * own order and the same pair always gives the same one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { epochOrder } from "../../train.ts";
 * const a = epochOrder(10, { seed: 1, epoch: 0 });
 * const b = epochOrder(10, { seed: 1, epoch: 0 });
 * assert.deepEqual(a, b); // the same pair (seed, epoch), the same order
 * assert.deepEqual([...a].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // a permutation
 * assert.notDeepEqual(epochOrder(10, { seed: 1, epoch: 1 }), a); // each epoch its own
 * ```
 */
export function epochOrder(
  n: number,
  { seed = 0, epoch = 0, shuffle = true }: { seed?: number; epoch?: number; shuffle?: boolean } =
    {},
): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new Rng(fmix32((fmix32(seed >>> 0) + (epoch >>> 0)) >>> 0));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

function positiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new Error(`DataLoader ${what} must be a positive integer, got ${v}`);
  }
}

/**
 * An image dataset uploaded once to the GPU as bytes, to be shared by several
 * {@link DataLoader}s (for instance one per batch size). Free it with `dispose()` (or
 * `using`) once no loader needs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import "../../mod.ts"; // acquires the GPU device (train.ts builds on it)
 * import { DataLoader, DeviceDataset } from "../../train.ts";
 * const labels = Uint8Array.of(0, 1, 2, 3, 4, 5);
 * using data = new DeviceDataset({ images: new Uint8Array(6 * 4), labels, n: 6, rows: 2, cols: 2 });
 * const small = new DataLoader(data, { batchSize: 2 });
 * const large = new DataLoader(data, { batchSize: 4 });
 * assert.deepEqual([small.length, large.length], [3, 2]); // the two loaders share one upload
 * ```
 */
export class DeviceDataset {
  /** Number of examples (after `limit`). */
  readonly n: number;
  /** Channels per image. */
  readonly channels: number;
  /** Image height. */
  readonly rows: number;
  /** Image width. */
  readonly cols: number;
  #images: GPUBuffer | undefined;
  #labels: GPUBuffer | undefined;

  /** Uploads the first `limit` (default all) examples of `dataset`, as bytes. */
  constructor(dataset: Dataset, { limit }: { limit?: number } = {}) {
    if (limit !== undefined) positiveInt(limit, "limit");
    const { rows, cols, channels = 1 } = dataset;
    positiveInt(rows, "dataset rows");
    positiveInt(cols, "dataset cols");
    positiveInt(channels, "dataset channels");
    const n = Math.min(dataset.n, limit ?? dataset.n);
    positiveInt(n, "dataset size n");
    const pixels = channels * rows * cols;
    if (dataset.images.length < n * pixels || dataset.labels.length < n) {
      throw new Error(
        `DataLoader dataset holds ${dataset.images.length} image bytes and ` +
          `${dataset.labels.length} labels, too few for n = ${n} images of ` +
          `${channels}x${rows}x${cols}`,
      );
    }
    const max = deviceSync().limits.maxStorageBufferBindingSize;
    if (n * pixels > max) {
      throw new Error(
        `DataLoader dataset of ${n * pixels} bytes exceeds this device's storage binding ` +
          `limit of ${max} bytes; pass a smaller limit`,
      );
    }
    this.n = n;
    this.channels = channels;
    this.rows = rows;
    this.cols = cols;
    this.#images = uploadBuffer(dataset.images.subarray(0, n * pixels), "dataset images");
    this.#labels = uploadBuffer(dataset.labels.subarray(0, n), "dataset labels");
  }

  /** The GPU buffers (images, labels); throws once disposed. */
  get buffers(): [GPUBuffer, GPUBuffer] {
    if (!this.#images || !this.#labels) {
      throw new Error(
        "The dataset's GPU copy was disposed (by DataLoader.dispose or DeviceDataset.dispose); " +
          "create a new loader",
      );
    }
    return [this.#images, this.#labels];
  }

  /** Frees the GPU copy of the dataset. Idempotent. */
  dispose(): void {
    for (const b of [this.#images, this.#labels]) if (b) releaseBuffer(b);
    this.#images = this.#labels = undefined;
  }

  /** Same as {@link DeviceDataset.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Minibatches of an image dataset held on the GPU as bytes, shuffled per epoch.
 *
 * `batches(epoch)` yields `{ x: [B, C, rows, cols], y: [B] }`. The loader owns each batch:
 * it is freed when the next one is requested or the loop ends (`clone()` to keep one).
 * The order of epoch `e` depends only on `(seed, e)` (see {@link epochOrder}). `length` is
 * the number of batches per epoch. Given host data, the loader uploads it and owns the
 * upload; given a {@link DeviceDataset}, it shares it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import "../../mod.ts"; // acquires the GPU device (train.ts builds on it)
 * import { DataLoader } from "../../train.ts";
 * // Five 2x2 "images" with pixel value 51 * label, labels 0..4.
 * const labels = Uint8Array.of(0, 1, 2, 3, 4);
 * const images = new Uint8Array(20).map((_, i) => 51 * labels[i >> 2]);
 * using loader = new DataLoader({ images, labels, n: 5, rows: 2, cols: 2 }, { batchSize: 2 });
 * assert.equal(loader.length, 3); // batches: 2 + 2 + 1
 * for (const { x, y } of loader.batches(0)) {
 *   const [xs, ys] = [await x.toArray(), await y.toArray()];
 *   // every pixel of image b is label / 5
 *   assert.ok(xs.every((v, i) => Math.abs(v - ys[i >> 2] / 5) < 1e-6));
 * }
 * ```
 */
export class DataLoader {
  /** Examples per epoch (after `limit`). */
  readonly n: number;
  /** Examples per batch. */
  readonly batchSize: number;
  /** Whether each epoch has its own random order. */
  readonly shuffle: boolean;
  /** Seed of the shuffle. */
  readonly seed: number;
  /** Whether a last, smaller batch is left out. */
  readonly dropLast: boolean;
  /** Channels per image. */
  readonly channels: number;
  /** Image height. */
  readonly rows: number;
  /** Image width. */
  readonly cols: number;
  #data: DeviceDataset;
  #ownsData: boolean;
  #identity: GPUBuffer | undefined;

  /** A loader over `dataset` (host data is uploaded; a DeviceDataset is shared). */
  constructor(dataset: Dataset | DeviceDataset, opts: DataLoaderOptions) {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, limit } = opts;
    positiveInt(batchSize, "batchSize");
    if (limit !== undefined) positiveInt(limit, "limit");
    this.#ownsData = !(dataset instanceof DeviceDataset);
    this.#data = dataset instanceof DeviceDataset ? dataset : new DeviceDataset(dataset, { limit });
    this.n = Math.min(this.#data.n, limit ?? this.#data.n);
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.channels = this.#data.channels;
    this.rows = this.#data.rows;
    this.cols = this.#data.cols;
  }

  /** Number of batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** The order of examples in `epoch` (the permutation the GPU gathers with). */
  order(epoch = 0): Uint32Array {
    return epochOrder(this.n, { seed: this.seed, epoch, shuffle: this.shuffle });
  }

  /**
   * Yields the batches of `epoch`. The epoch's order is uploaded once, on the first batch;
   * each batch is one gather launch. Each batch is freed when the next is requested.
   */
  *batches(epoch = 0): Generator<Batch, void, undefined> {
    const [images, labels] = this.#data.buffers;
    let order: GPUBuffer;
    if (this.shuffle) order = uploadBuffer(this.order(epoch), `epoch ${epoch} order`);
    else order = this.#identity ??= uploadBuffer(this.order(), "identity order");
    const pixels = this.channels * this.rows * this.cols;
    const freed = "the DataLoader when the next batch was requested";
    let current: Batch | undefined;
    try {
      for (let b = 0; b < this.length; b++) {
        current?.x.dispose(freed);
        current?.y.dispose(freed);
        const start = b * this.batchSize;
        const batch = Math.min(this.batchSize, this.n - start);
        const quads = Math.ceil((batch * pixels) / 4);
        const x = Tensor.empty([batch, this.channels, this.rows, this.cols]);
        const y = Tensor.empty([batch]);
        launch({
          label: "gather",
          code: gatherSrc,
          overrides: { WG },
          bindings: [
            uniforms({ batch, pixels, start, quads }),
            images,
            labels,
            order,
            x.buffer,
            y.buffer,
          ],
          workgroups: grid(Math.ceil(Math.max(quads, batch) / WG)),
        });
        current = { x, y };
        yield current;
      }
    } finally {
      current?.x.dispose(freed);
      current?.y.dispose(freed);
      // Safe without waiting: the pool hands the buffer out again only to later commands.
      if (this.shuffle) releaseBuffer(order);
    }
  }

  /** Frees the loader's buffers, and the dataset's upload if the loader made it. */
  dispose(): void {
    if (this.#identity) releaseBuffer(this.#identity);
    this.#identity = undefined;
    if (this.#ownsData) this.#data.dispose();
  }

  /** Same as {@link DataLoader.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
