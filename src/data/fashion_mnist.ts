/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 grayscale 28x28 images of clothing in
 * 10 classes, 60,000 for training and 10,000 for testing, the dataset of d2l's LeNet and
 * batch normalization chapters.
 *
 * {@link loadFashionMnist} finds the four IDX files (gzipped or not) on disk, or downloads
 * them from Zalando's address with MD5 verification, and returns one split as bytes.
 *
 * @module
 */
import { ProgressBar } from "../progress/progress.ts";
import { downloadFile } from "./download.ts";
import { readIdxFile } from "./idx.ts";

/** Where Zalando's README points for the files (`<url><file>.gz`). */
export const FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/** MD5 checksums of the gzipped files, as published in Zalando's fashion-mnist README. */
export const FASHION_MNIST_MD5: Readonly<Record<string, string>> = Object.freeze({
  "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
  "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
  "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
  "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
});

/** Class names by label, as in d2l's `get_fashion_mnist_labels`. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "t-shirt",
  "trouser",
  "pullover",
  "dress",
  "coat",
  "sandal",
  "shirt",
  "sneaker",
  "bag",
  "ankle boot",
]);

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";

/** The local directory that downloads go to when no `dir` is given. */
export const FASHION_MNIST_DEFAULT_DIR = "./data/fashion-mnist";

/** Examples in each split of the published dataset. */
export const FASHION_MNIST_SIZES: Readonly<Record<"train" | "test", number>> = Object.freeze({
  train: 60000,
  test: 10000,
});

/** One split of Fashion-MNIST, as bytes. */
export interface FashionMnist {
  /** Which split. */
  split: "train" | "test";
  /** Pixels, `n * rows * cols` bytes (0 = background, 255 = ink), image after image. */
  images: Uint8Array;
  /** Class of each image, 0..9 (see {@link FASHION_MNIST_CLASSES}). */
  labels: Uint8Array;
  /** Number of examples: 60,000 (train) or 10,000 (test). */
  n: number;
  /** Image height, 28. */
  rows: number;
  /** Image width, 28. */
  cols: number;
  /** The files the split was read from. */
  files: { images: string; labels: string };
}

/** Options of {@link loadFashionMnist}. */
export interface LoadFashionMnistOptions {
  /** `"train"` (60,000 examples) or `"test"` (10,000). */
  split: "train" | "test";
  /**
   * The directory holding the files (or receiving the download): the only place looked
   * in; missing files there are an error, never replaced by files found elsewhere.
   * Default: search `searchPaths`.
   */
  dir?: string;
  /**
   * Directories searched, in order, when no `dir` is given; the first holding both files
   * of the split wins. Default: `$FASHION_MNIST_DIR`, `./data/fashion-mnist`,
   * `/usr/share/datasets/fashion-mnist`.
   */
  searchPaths?: string[];
  /**
   * Require the published number of examples (60,000 train, 10,000 test), which catches
   * one split's files given as the other's. Turn off for subsets and synthetic data.
   * Default true.
   */
  checkSize?: boolean;
  /** Download the files when they are found nowhere. Default true. */
  download?: boolean;
  /** Base URL of the files. Default `$FASHION_MNIST_URL`, else {@link FASHION_MNIST_URL}. */
  url?: string;
  /** Expected MD5 of each downloaded `.gz` file by name. Default {@link FASHION_MNIST_MD5}. */
  md5?: Readonly<Record<string, string>>;
  /** Download progress per file. Default: a progress bar on stderr. */
  onProgress?: (file: string, received: number, total: number) => void;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

function join(dir: string, file: string): string {
  return dir.endsWith("/") ? dir + file : `${dir}/${file}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** `dir/base` if present, else `dir/base.gz`, else undefined. */
async function findFile(dir: string, base: string): Promise<string | undefined> {
  for (const p of [join(dir, base), join(dir, `${base}.gz`)]) if (await isFile(p)) return p;
  return undefined;
}

/**
 * Why `dir` did not provide `missing` (file names without `.gz`): no such directory, a
 * file where the directory should be, or per file "missing" or "a directory".
 */
async function whyNot(dir: string, missing: string[]): Promise<string> {
  if (!(await isDir(dir))) {
    return (await exists(dir)) ? "not a directory (a file is there)" : "no such directory";
  }
  const dirs: string[] = [], absent: string[] = [];
  for (const f of missing) {
    const d = [join(dir, f), join(dir, `${f}.gz`)];
    const found = (await isDir(d[0])) ? d[0] : (await isDir(d[1])) ? d[1] : undefined;
    if (found) dirs.push(`${found.slice(found.lastIndexOf("/") + 1)} is a directory, not a file`);
    else absent.push(`${f}[.gz]`);
  }
  return [...(absent.length ? [`missing ${absent.join(", ")}`] : []), ...dirs].join("; ");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** File names (without `.gz`) of a split. */
export function fashionMnistFiles(split: "train" | "test"): { images: string; labels: string } {
  if (split !== "train" && split !== "test") {
    throw new Error(`Fashion-MNIST split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  const prefix = split === "train" ? "train" : "t10k";
  return { images: `${prefix}-images-idx3-ubyte`, labels: `${prefix}-labels-idx1-ubyte` };
}

/**
 * Loads one split of Fashion-MNIST as bytes, finding or downloading the IDX files.
 *
 * With `dir`, looks only there; otherwise searches `$FASHION_MNIST_DIR`,
 * `./data/fashion-mnist` and `/usr/share/datasets/fashion-mnist` (Debian's
 * `dataset-fashion-mnist`), in that order, for `<prefix>-images-idx3-ubyte` and
 * `<prefix>-labels-idx1-ubyte`, each plain or `.gz` (prefix `train` or `t10k`). Found
 * nowhere, it downloads the `.gz` files from `url` into `dir` (default
 * `./data/fashion-mnist`), verifying their MD5 checksums. A wrong magic number, a
 * truncated file, a label out of range, mismatched image/label counts or (with
 * `checkSize`) a split of the wrong size throw an error naming the file. The result's
 * `files` say where the split was read from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFashionMnist } from "../../train.ts";
 * // An IDX file of bytes: magic 0x0800 + rank, the dimensions as big-endian uint32, the data.
 * function idx(data: Uint8Array, dims: number[]): Uint8Array {
 *   const head = new DataView(new ArrayBuffer(4 + 4 * dims.length));
 *   head.setUint32(0, 0x0800 + dims.length);
 *   dims.forEach((d, i) => head.setUint32(4 + 4 * i, d));
 *   return new Uint8Array([...new Uint8Array(head.buffer), ...data]);
 * }
 * // Three tiny synthetic examples (not the real files).
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, idx(new Uint8Array(3 * 784), [3, 28, 28]));
 * await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, idx(Uint8Array.of(9, 0, 2), [3]));
 * const ds = await loadFashionMnist({ split: "test", dir, download: false, checkSize: false });
 * await Deno.remove(dir, { recursive: true });
 * assert.deepEqual([ds.n, ds.rows, ds.cols, ds.images.length], [3, 28, 28, 3 * 784]);
 * assert.deepEqual(Array.from(ds.labels), [9, 0, 2]);
 * ```
 */
export async function loadFashionMnist(opts: LoadFashionMnistOptions): Promise<FashionMnist> {
  const { split, download = true, checkSize = true } = opts;
  const files = fashionMnistFiles(split);
  const envDir = env("FASHION_MNIST_DIR");
  const places: { dir: string; why: string }[] = [];
  if (opts.dir !== undefined) {
    if (opts.dir.trim() === "") {
      throw new Error("Fashion-MNIST: `dir` is an empty string; pass a directory path");
    }
    places.push({ dir: opts.dir, why: "the `dir` option" });
  } else if (opts.searchPaths) {
    places.push(...opts.searchPaths.map((dir) => ({ dir, why: "searchPaths" })));
  } else {
    if (envDir) places.push({ dir: envDir, why: "$FASHION_MNIST_DIR" });
    places.push({ dir: FASHION_MNIST_DEFAULT_DIR, why: "default download directory" });
    places.push({ dir: FASHION_MNIST_SYSTEM_DIR, why: "Debian's dataset-fashion-mnist" });
  }
  const read = (images: string, labels: string) =>
    readSplit(split, images, labels, checkSize ? FASHION_MNIST_SIZES[split] : undefined);

  const report: string[] = [];
  for (const { dir, why } of places) {
    const images = await findFile(dir, files.images);
    const labels = await findFile(dir, files.labels);
    if (images && labels) return await read(images, labels);
    const missing = [images ? "" : files.images, labels ? "" : files.labels].filter(Boolean);
    report.push(`  - ${dir} (${why}): ` + await whyNot(dir, missing));
  }
  if (opts.dir === undefined && opts.searchPaths === undefined && !envDir) {
    report.push("  - $FASHION_MNIST_DIR: not set");
  }

  const url = opts.url ?? env("FASHION_MNIST_URL") ?? FASHION_MNIST_URL;
  let failure = "Downloading is off (download: false).";
  if (download) {
    const target = opts.dir ?? FASHION_MNIST_DEFAULT_DIR;
    try {
      // One after the other: one progress bar at a time, and no download left running on error.
      const images = await fetchFile(url, target, files.images, opts);
      const labels = await fetchFile(url, target, files.labels, opts);
      return await read(images, labels);
    } catch (e) {
      failure = `Downloading from ${url} into ${target} failed: ${(e as Error).message}`;
    }
  }
  const where = opts.dir !== undefined
    ? `The directory given (${opts.dir}) is used alone, never replaced by another place`
    : "Looked in";
  throw new Error(
    `Fashion-MNIST (${split} split) was not found. ${where}:\n${report.join("\n")}\n` +
      `${failure}\nTo get the data: \`sudo apt-get install dataset-fashion-mnist\` (Debian, ` +
      `Ubuntu), or put ${files.images}.gz and ${files.labels}.gz (from ${FASHION_MNIST_URL}) ` +
      "in a directory and pass `--data DIR` or set FASHION_MNIST_DIR=DIR.",
  );
}

/** Downloads `<url><base>.gz` into `dir` unless it is already there; returns its path. */
async function fetchFile(
  url: string,
  dir: string,
  base: string,
  opts: LoadFashionMnistOptions,
): Promise<string> {
  const have = await findFile(dir, base);
  if (have) return have;
  await Deno.mkdir(dir, { recursive: true });
  const name = `${base}.gz`;
  const dest = join(dir, name);
  let bar: ProgressBar | undefined;
  const onProgress = opts.onProgress
    ? (r: number, t: number) => opts.onProgress!(name, r, t)
    : (r: number, t: number) => (bar ??= new ProgressBar(t, { label: name, unit: "B" })).update(r);
  try {
    await downloadFile(join(url, name), dest, {
      md5: (opts.md5 ?? FASHION_MNIST_MD5)[name],
      onProgress,
    });
  } finally {
    bar?.done();
  }
  return dest;
}

async function readSplit(
  split: "train" | "test",
  imagesPath: string,
  labelsPath: string,
  expected: number | undefined,
): Promise<FashionMnist> {
  const [images, labels] = await Promise.all([
    readIdxFile(imagesPath, { expect: "images" }),
    readIdxFile(labelsPath, { expect: "labels" }),
  ]);
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new Error(
      `${imagesPath} holds an array of shape [${images.dims.join(", ")}]; Fashion-MNIST images ` +
        "are [n, 28, 28] (IDX magic 0x00000803). Is this the right file?",
    );
  }
  if (labels.dims.length !== 1) {
    throw new Error(
      `${labelsPath} holds an array of shape [${labels.dims.join(", ")}]; Fashion-MNIST labels ` +
        "are [n] (IDX magic 0x00000801). Is this the right file?",
    );
  }
  const n = images.dims[0];
  if (labels.dims[0] !== n) {
    throw new Error(
      `${imagesPath} has ${n} images but ${labelsPath} has ${labels.dims[0]} labels; ` +
        "the files must come from the same split and release",
    );
  }
  if (expected !== undefined && n !== expected) {
    const other = split === "train" ? "test (t10k)" : "train";
    throw new Error(
      `${imagesPath} holds ${n} images; Fashion-MNIST's ${split} split has ${expected}` +
        (n === FASHION_MNIST_SIZES[split === "train" ? "test" : "train"]
          ? ` (${n} is the ${other} split's size: are the files swapped or renamed?)`
          : "") +
        ". Pass checkSize: false to load a subset or synthetic data",
    );
  }
  const bad = labels.data.findIndex((v) => v > 9);
  if (bad >= 0) {
    throw new Error(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a class 0..9`);
  }
  return {
    split,
    images: images.data,
    labels: labels.data,
    n,
    rows: 28,
    cols: 28,
    files: { images: imagesPath, labels: labelsPath },
  };
}
