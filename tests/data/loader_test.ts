import assert from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { DataLoader, type Dataset, DeviceDataset, epochOrder } from "../../src/data/loader.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { FASHION_MNIST_SYSTEM_DIR, loadFashionMnist } from "../../src/data/fashion_mnist.ts";
import { memoryStats } from "../../src/gpu/buffer_pool.ts";
import { queueStats } from "../../src/gpu/queue.ts";

/** A dataset of n images of rows x cols with arbitrary bytes (all 256 values occur). */
function dataset(n: number, rows: number, cols: number): Dataset {
  const images = new Uint8Array(n * rows * cols).map((_, i) => (i * 97 + 13) & 0xff);
  const labels = new Uint8Array(n).map((_, i) => (i * 3 + 1) % 10);
  return { images, labels, n, rows, cols };
}

/**
 * Reference batches, float64, naive loops: batch b holds examples order[b * B ...], pixel
 * k of example e is images[e * P + k] / 255, its label labels[e].
 */
function referenceBatches(ds: Dataset, order: Uint32Array, batchSize: number, dropLast: boolean) {
  const P = ds.rows * ds.cols;
  const out: { x: number[]; y: number[]; shape: number[] }[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const B = Math.min(batchSize, order.length - start);
    if (dropLast && B < batchSize) break;
    const x: number[] = [], y: number[] = [];
    for (let b = 0; b < B; b++) {
      const e = order[start + b];
      for (let k = 0; k < P; k++) x.push(ds.images[e * P + k] / 255);
      y.push(ds.labels[e]);
    }
    out.push({ x, y, shape: [B, 1, ds.rows, ds.cols] });
  }
  return out;
}

async function check(loader: DataLoader, ds: Dataset, epoch: number, what: string): Promise<void> {
  const want = referenceBatches(ds, loader.order(epoch), loader.batchSize, loader.dropLast);
  assert.equal(loader.length, want.length, `${what}: length`);
  let i = 0;
  for (const { x, y } of loader.batches(epoch)) {
    assert.deepEqual(x.shape, want[i].shape, `${what}: batch ${i} x shape`);
    assert.deepEqual(y.shape, [want[i].shape[0]], `${what}: batch ${i} y shape`);
    // unpack4x8unorm may differ from a correctly rounded v / 255 by an ulp.
    assertClose(await x.toArray(), want[i].x, { atol: 0, rtol: 1.2e-7 }, `${what}: batch ${i} x`);
    assertClose(await y.toArray(), want[i].y, { atol: 0, rtol: 0 }, `${what}: batch ${i} y`);
    i++;
  }
  assert.equal(i, want.length, `${what}: batches yielded`);
}

Deno.test("epochOrder is a deterministic permutation per (seed, epoch), the identity without shuffle", () => {
  for (const n of [1, 2, 13, 307]) {
    const a = epochOrder(n, { seed: 5, epoch: 2 });
    assert.deepEqual(a, epochOrder(n, { seed: 5, epoch: 2 }));
    assert.deepEqual([...a].sort((p, q) => p - q), [...Array(n).keys()], `n=${n} is a permutation`);
    assert.deepEqual([...epochOrder(n, { shuffle: false })], [...Array(n).keys()]);
  }
  const orders = [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]].map(([seed, epoch]) =>
    epochOrder(307, { seed, epoch }).join()
  );
  assert.equal(new Set(orders).size, orders.length, "every (seed, epoch) has its own order");
  // Neighbouring epochs are not shifted copies of one random stream.
  const e0 = epochOrder(307, { seed: 0, epoch: 0 }), e1 = epochOrder(307, { seed: 0, epoch: 1 });
  const same = e0.filter((v, i) => v === e1[i]).length;
  assert.ok(same < 10, `${same} of 307 positions agree between epochs 0 and 1`);
});

gpuTest("DataLoader batches match a float64 reference on odd shapes", async () => {
  const cases: [number, number, number, number, boolean, boolean][] = [
    // n, rows, cols, batchSize, shuffle, dropLast
    [1, 28, 28, 4, true, false],
    [13, 28, 28, 4, true, false],
    [13, 28, 28, 4, true, true],
    [13, 7, 7, 5, false, false], // 49 pixels: images not word-aligned
    [307, 3, 5, 64, true, false], // 15 pixels; a last batch of 51
    [11, 1, 1, 3, true, false], // one pixel, fewer pixels per image than labels per batch
    [5, 2, 3, 8, true, false], // one batch larger than the dataset
  ];
  for (const [n, rows, cols, batchSize, shuffle, dropLast] of cases) {
    const ds = dataset(n, rows, cols);
    using loader = new DataLoader(ds, { batchSize, shuffle, dropLast, seed: 3 });
    for (const epoch of [0, 1]) {
      await check(
        loader,
        ds,
        epoch,
        `n=${n} ${rows}x${cols} B=${batchSize} shuffle=${shuffle} epoch=${epoch}`,
      );
    }
  }
});

gpuTest("DataLoader limit takes the first N examples; dropLast can leave no batch", async () => {
  const ds = dataset(50, 4, 4);
  using loader = new DataLoader(ds, { batchSize: 8, limit: 19, seed: 1 });
  assert.equal(loader.n, 19);
  assert.equal(loader.length, 3);
  await check(loader, { ...ds, n: 19 }, 0, "limit 19");
  assert.ok([...loader.order(0)].every((e) => e < 19));
  using big = new DataLoader(ds, { batchSize: 64, dropLast: true });
  assert.equal(big.length, 0);
  assert.equal([...big.batches(0)].length, 0);
  using all = new DataLoader(ds, { batchSize: 64, limit: 1000 });
  assert.equal(all.n, 50);
});

gpuTest(
  "DataLoader uploads one order per epoch, nothing per batch, and submits nothing",
  () => {
    const ds = dataset(1000, 28, 28);
    using loader = new DataLoader(ds, { batchSize: 16 }); // 63 batches
    const epoch = () => {
      for (const _ of loader.batches(0)) { /* the loader frees each batch */ }
    };
    epoch(); // warm the pool with the batch tensors' buffers
    const before = memoryStats(), submits = queueStats().submits;
    epoch();
    const after = memoryStats();
    assert.equal(queueStats().submits, submits, "an epoch without reads submits nothing");
    assert.equal(after.buffers - before.buffers, 1, "exactly one new buffer (the order) per epoch");
    assert.equal(after.liveBytes, before.liveBytes, "live memory is unchanged after an epoch");
    // Stopping an epoch early gives the order back too.
    for (const _ of loader.batches(1)) break;
    assert.equal(memoryStats().liveBytes, before.liveBytes);
  },
);

gpuTest("DataLoader rejects bad options and use after dispose", () => {
  const ds = dataset(10, 2, 2);
  assert.throws(
    () => new DataLoader(ds, { batchSize: 0 }),
    /DataLoader batchSize must be a positive integer, got 0/,
  );
  assert.throws(() => new DataLoader(ds, { batchSize: 2.5 }), /got 2\.5/);
  assert.throws(
    () => new DataLoader(ds, { batchSize: 2, limit: -1 }),
    /DataLoader limit must be a positive integer, got -1/,
  );
  assert.throws(
    () => new DataLoader({ ...ds, n: 11 }, { batchSize: 2 }),
    /DataLoader dataset holds 40 image bytes and 10 labels, too few for n = 11 images of 1x2x2/,
  );
  const loader = new DataLoader(ds, { batchSize: 4 });
  loader.dispose();
  assert.throws(() => loader.batches(0).next(), /GPU copy was disposed .* create a new loader/);
});

gpuTest("DataLoader owns its batches: each is freed when the next is requested (#7)", async () => {
  using loader = new DataLoader(dataset(10, 2, 2), { batchSize: 4, shuffle: false });
  const seen: Tensor[] = [];
  for (const { x } of loader.batches(0)) {
    assert.ok(!x.disposed, "a batch is valid while it is the current one");
    seen.push(x);
  }
  assert.ok(seen.every((x) => x.disposed), "every batch is freed by the end of the loop");
  assert.throws(
    () => seen[0].buffer,
    /freed: it was disposed by the DataLoader when the next batch was requested\. clone\(\) a batch/,
  );
  // A clone is the caller's.
  let kept: Tensor | undefined;
  for (const { x } of loader.batches(0)) kept ??= x.clone();
  const ds = dataset(10, 2, 2);
  const want = Array.from(ds.images.subarray(0, 16), (v) => Math.fround(v / 255));
  assertClose(await kept!.toArray(), want, { atol: 0, rtol: 1e-7 }, "the clone of batch 0");
  kept!.dispose();
});

gpuTest("DataLoaders of several batch sizes share one DeviceDataset upload (#8)", async () => {
  const before = memoryStats();
  using data = new DeviceDataset(dataset(12, 2, 2));
  const small = new DataLoader(data, { batchSize: 2, shuffle: false });
  const large = new DataLoader(data, { batchSize: 5, shuffle: false });
  assert.deepEqual([small.length, large.length], [6, 3]);
  const firsts: number[][] = [];
  for (const l of [small, large]) {
    for (const { y } of l.batches(0)) {
      firsts.push(Array.from(await y.toArray()));
      break;
    }
  }
  const labels = Array.from(dataset(12, 2, 2).labels);
  assert.deepEqual(firsts, [labels.slice(0, 2), labels.slice(0, 5)]);
  small.dispose(); // does not free the shared data
  let batches = 0;
  for (const _ of large.batches(0)) batches++;
  assert.equal(batches, 3, "the other loader still works");
  data.dispose();
  assert.throws(() => large.batches(0).next(), /GPU copy was disposed/);
  large.dispose();
  assert.equal(memoryStats().liveBytes, before.liveBytes, "nothing left live");
});

const system = await Deno.stat(`${FASHION_MNIST_SYSTEM_DIR}/t10k-images-idx3-ubyte.gz`).then(
  () => true,
  () => false,
);

gpuTest(
  system
    ? "DataLoader on the real Fashion-MNIST test split matches the reference for two batches"
    : "DataLoader on the real Fashion-MNIST test split (skipped: apt-get install dataset-fashion-mnist)",
  async () => {
    if (!system) return console.warn(`Skipped: ${FASHION_MNIST_SYSTEM_DIR} is absent.`);
    const ds = await loadFashionMnist({
      split: "test",
      searchPaths: [FASHION_MNIST_SYSTEM_DIR],
      download: false,
    });
    using loader = new DataLoader(ds, { batchSize: 256, seed: 42 });
    assert.equal(loader.length, 40); // 39 x 256 + 16
    const want = referenceBatches(ds, loader.order(3), 256, false);
    let i = 0;
    for (const { x, y } of loader.batches(3)) {
      assertClose(await x.toArray(), want[i].x, { atol: 0, rtol: 1.2e-7 }, `batch ${i} x`);
      assertClose(await y.toArray(), want[i].y, { atol: 0, rtol: 0 }, `batch ${i} y`);
      if (++i === 2) break;
    }
  },
);
