/**
 * Fashion-MNIST in the page: the four IDX `.gz` files fetched from a URL (beside the page by
 * default) or read from files the user picks, gunzipped by the browser's own
 * `DecompressionStream("gzip")` and parsed by the library's IDX reader (`src/data/idx.ts`,
 * the one the CLI uses). Progress is reported in compressed bytes, as they arrive.
 *
 * @module
 */
import { parseIdx } from "../src/data/idx.ts";
import type { Dataset } from "../src/data/loader.ts";

/** The files of each split, as Zalando publishes them (and Debian installs them). */
export const FILES = {
  train: { images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz" },
  test: { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" },
} as const;

/** Called as bytes arrive: the file, bytes so far, and its size when known. */
export type OnProgress = (file: string, loaded: number, total: number | undefined) => void;

/** Where the files come from: a folder URL (ending in `/`), or files the user picked. */
export type DataSource = { url: string } | { files: readonly File[] };

/** Counts the bytes of `body` into `onProgress`, then gunzips them if they start `1f 8b`. */
async function decode(
  body: ReadableStream<Uint8Array>,
  name: string,
  total: number | undefined,
  onProgress: OnProgress,
): Promise<Uint8Array> {
  let loaded = 0;
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        onProgress(name, loaded += chunk.length, total);
        out.enqueue(chunk);
      },
    }),
  );
  const raw = new Uint8Array(await new Response(counted).arrayBuffer());
  if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw; // already unpacked
  try {
    const unpacked = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(unpacked).arrayBuffer());
  } catch (e) {
    throw new Error(`${name} is not valid gzip (${(e as Error).message}): fetch it again`);
  }
}

/** One IDX file's bytes from `source`. */
async function readFile(source: DataSource, file: string, onProgress: OnProgress) {
  if ("url" in source) {
    const url = new URL(file, new URL(source.url, location.href)).href;
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(`could not fetch ${url} (${(e as Error).message}): ${HINT}`);
    }
    if (!res.ok || !res.body) throw new Error(`${url} answered HTTP ${res.status}: ${HINT}`);
    const total = Number(res.headers.get("content-length")) || undefined;
    return parseIdx(await decode(res.body, file, total, onProgress), url);
  }
  const picked = source.files.find((f) => f.name === file || `${f.name}.gz` === file);
  if (!picked) {
    throw new Error(
      `${file} is not among the files picked (${source.files.map((f) => f.name).join(", ")}): ` +
        `pick all four Fashion-MNIST files (${Object.values(FILES).flatMap(Object.values)})`,
    );
  }
  return parseIdx(await decode(picked.stream(), file, picked.size, onProgress), picked.name);
}

const HINT = "serve the page with `deno task web`, set the data URL to a folder holding the " +
  "four Fashion-MNIST .gz files, or pick the files from your disk";

/**
 * Loads one split (images and labels) from `source`, checking that the two files agree.
 */
export async function loadSplit(
  source: DataSource,
  split: "train" | "test",
  onProgress: OnProgress = () => {},
): Promise<Dataset> {
  const [images, labels] = await Promise.all([
    readFile(source, FILES[split].images, onProgress),
    readFile(source, FILES[split].labels, onProgress),
  ]);
  const [n, rows, cols] = images.dims;
  if (images.dims.length !== 3 || labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new Error(
      `Fashion-MNIST ${split}: images [${images.dims}] and labels [${labels.dims}] do not ` +
        `match (expected [n, 28, 28] and [n])`,
    );
  }
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new Error(`Fashion-MNIST ${split}: label ${labels.data[bad]} at ${bad}`);
  return { images: images.data, labels: labels.data, n, rows, cols };
}
