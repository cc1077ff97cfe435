import assert from "node:assert/strict";
import {
  FASHION_MNIST_MD5,
  FASHION_MNIST_SYSTEM_DIR,
  fashionMnistFiles,
  loadFashionMnist,
} from "../../src/data/fashion_mnist.ts";
import { md5Hex } from "../../src/data/download.ts";
import { encodeIdx, gzip } from "../../src/data/idx.ts";

const quiet = () => {};

/** A small synthetic split: n images of 28x28 and n labels, as gzipped IDX files by name. */
async function synthetic(split: "train" | "test", n: number) {
  const images = new Uint8Array(n * 784).map((_, i) => (i * 13 + n) & 0xff);
  const labels = new Uint8Array(n).map((_, i) => (i * 7) % 10);
  const f = fashionMnistFiles(split);
  const gz: Record<string, Uint8Array> = {
    [`${f.images}.gz`]: await gzip(encodeIdx(images, [n, 28, 28])),
    [`${f.labels}.gz`]: await gzip(encodeIdx(labels, [n])),
  };
  const md5 = Object.fromEntries(Object.entries(gz).map(([k, v]) => [k, md5Hex(v)]));
  return { images, labels, gz, md5, files: f };
}

async function writeAll(dir: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, data] of Object.entries(files)) await Deno.writeFile(`${dir}/${name}`, data);
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch { /* missing: empty */ }
  return names.sort();
}

/** A loopback server serving `files` by name; counts requests. */
function serve(files: Record<string, Uint8Array>) {
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const name = new URL(req.url).pathname.slice(1);
    hits.push(name);
    return name in files
      ? new Response(files[name].slice())
      : new Response("missing", { status: 404 });
  });
  return { server, hits, url: `http://127.0.0.1:${server.addr.port}/` };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fashionMnistFiles names the files of each split and rejects others", () => {
  assert.deepEqual(fashionMnistFiles("train"), {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
  });
  assert.deepEqual(fashionMnistFiles("test"), {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
  });
  assert.throws(
    () => fashionMnistFiles("val" as "train"),
    /split must be "train" or "test", got "val"/,
  );
  // The published checksums cover exactly the four gzipped files.
  assert.deepEqual(Object.keys(FASHION_MNIST_MD5).sort(), [
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
  ]);
});

Deno.test("loadFashionMnist reads gzipped and plain files from dir", async () => {
  await withTempDir(async (dir) => {
    const s = await synthetic("train", 7);
    await writeAll(dir, s.gz);
    const opts = { dir, download: false, checkSize: false };
    const ds = await loadFashionMnist({ split: "train", ...opts });
    assert.deepEqual(ds, {
      split: "train",
      images: s.images,
      labels: s.labels,
      n: 7,
      rows: 28,
      cols: 28,
      files: { images: `${dir}/${s.files.images}.gz`, labels: `${dir}/${s.files.labels}.gz` },
    });
    const t = await synthetic("test", 1);
    await Deno.writeFile(`${dir}/${t.files.images}`, encodeIdx(t.images, [1, 28, 28]));
    await Deno.writeFile(`${dir}/${t.files.labels}`, encodeIdx(t.labels, [1]));
    const ts = await loadFashionMnist({ split: "test", ...opts });
    assert.equal(ts.n, 1);
    assert.deepEqual(ts.images, t.images);
  });
});

Deno.test("loadFashionMnist without dir searches searchPaths in order, $FASHION_MNIST_DIR by default", async () => {
  await withTempDir(async (dir) => {
    const s = await synthetic("test", 3);
    await Deno.mkdir(`${dir}/b`);
    await writeAll(`${dir}/b`, s.gz);
    const ds = await loadFashionMnist({
      split: "test",
      searchPaths: [`${dir}/nothing`, `${dir}/b`],
      download: false,
      checkSize: false,
    });
    assert.deepEqual(ds.labels, s.labels);
    assert.equal(ds.files.labels, `${dir}/b/${s.files.labels}.gz`, "the files it was read from");
    const old = Deno.env.get("FASHION_MNIST_DIR");
    Deno.env.set("FASHION_MNIST_DIR", `${dir}/b`);
    try {
      const viaEnv = await loadFashionMnist({ split: "test", download: false, checkSize: false });
      assert.deepEqual(viaEnv.images, s.images);
    } finally {
      if (old === undefined) Deno.env.delete("FASHION_MNIST_DIR");
      else Deno.env.set("FASHION_MNIST_DIR", old);
    }
  });
});

Deno.test("loadFashionMnist uses an explicit dir or refuses it, never replacing it (#6.2)", async () => {
  await withTempDir(async (dir) => {
    const s = await synthetic("test", 3);
    await Deno.mkdir(`${dir}/good`);
    await writeAll(`${dir}/good`, s.gz);
    await Deno.mkdir(`${dir}/partial`);
    await Deno.writeFile(`${dir}/partial/${s.files.images}.gz`, s.gz[`${s.files.images}.gz`]);
    const env = Deno.env.get("FASHION_MNIST_DIR");
    Deno.env.set("FASHION_MNIST_DIR", `${dir}/good`); // a fallback that must not be taken
    try {
      for (const [given, why] of [["missing", "no such directory"], ["partial", "missing"]]) {
        const err = await loadFashionMnist({
          split: "test",
          dir: `${dir}/${given}`,
          download: false,
          checkSize: false,
        }).catch((e) => e as Error);
        assert.ok(err instanceof Error, `dir ${given} was replaced by another place`);
        assert.ok(
          err.message.includes(`${dir}/${given} (the \`dir\` option): ${why}`),
          err.message,
        );
        assert.ok(err.message.includes("is used alone, never replaced"), err.message);
        assert.ok(!err.message.includes(`${dir}/good`), err.message);
      }
      await assert.rejects(
        () => loadFashionMnist({ split: "test", dir: " ", download: false }),
        /`dir` is an empty string/,
      );
    } finally {
      if (env === undefined) Deno.env.delete("FASHION_MNIST_DIR");
      else Deno.env.set("FASHION_MNIST_DIR", env);
    }
  });
});

Deno.test("loadFashionMnist refuses a split of the wrong size, e.g. the test files as train (#6.2)", async () => {
  await withTempDir(async (dir) => {
    const t = await synthetic("test", 10000);
    const f = await synthetic("train", 1); // names of the train files
    // The test split's files, renamed as the training split's.
    await Deno.writeFile(`${dir}/${f.files.images}.gz`, t.gz[`${t.files.images}.gz`]);
    await Deno.writeFile(`${dir}/${f.files.labels}.gz`, t.gz[`${t.files.labels}.gz`]);
    await assert.rejects(
      () => loadFashionMnist({ split: "train", dir, download: false }),
      /holds 10000 images; Fashion-MNIST's train split has 60000 \(10000 is the test \(t10k\) split's size/,
    );
    const ok = await loadFashionMnist({ split: "train", dir, download: false, checkSize: false });
    assert.equal(ok.n, 10000);
  });
});

Deno.test("loadFashionMnist not found offline lists every place and how to get the data", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/half`);
    const s = await synthetic("train", 2);
    await Deno.writeFile(`${dir}/half/${s.files.images}.gz`, s.gz[`${s.files.images}.gz`]);
    const err = await loadFashionMnist({
      split: "train",
      searchPaths: [`${dir}/none`, `${dir}/half`],
      download: false,
    }).catch((e) => e as Error);
    assert.ok(err instanceof Error);
    const m = err.message;
    assert.match(m, /Fashion-MNIST \(train split\) was not found\. Looked in:/);
    assert.ok(m.includes(`${dir}/none (searchPaths): no such directory`), m);
    assert.ok(m.includes(`${dir}/half (searchPaths): missing train-labels-idx1-ubyte[.gz]`), m);
    assert.ok(m.includes("Downloading is off (download: false)."), m);
    for (
      const hint of ["apt-get install dataset-fashion-mnist", "--data DIR", "FASHION_MNIST_DIR"]
    ) {
      assert.ok(m.includes(hint), `error lacks "${hint}": ${m}`);
    }
  });
});

Deno.test("loadFashionMnist names the file on a wrong magic, a count mismatch or a bad label", async () => {
  await withTempDir(async (dir) => {
    const s = await synthetic("test", 5);
    const opts = { split: "test" as const, dir, download: false, checkSize: false };
    // Images and labels swapped: a labels file (magic 0x801) where images belong.
    await Deno.writeFile(`${dir}/${s.files.images}`, encodeIdx(s.labels, [5]));
    await Deno.writeFile(`${dir}/${s.files.labels}`, encodeIdx(s.labels, [5]));
    await assert.rejects(
      () => loadFashionMnist(opts),
      new RegExp(`${dir}/${s.files.images} should be an IDX images file .* an IDX labels file`),
    );
    // Images of another size than 28x28.
    await Deno.writeFile(`${dir}/${s.files.images}`, encodeIdx(new Uint8Array(500), [5, 10, 10]));
    await assert.rejects(
      () => loadFashionMnist(opts),
      new RegExp(
        `${dir}/${s.files.images} holds an array of shape \\[5, 10, 10\\]; Fashion-MNIST images are \\[n, 28, 28\\]`,
      ),
    );
    await Deno.writeFile(`${dir}/${s.files.images}`, encodeIdx(s.images, [5, 28, 28]));
    await Deno.writeFile(`${dir}/${s.files.labels}`, encodeIdx(s.labels.subarray(0, 4), [4]));
    await assert.rejects(
      () => loadFashionMnist(opts),
      new RegExp(`has 5 images but ${dir}/${s.files.labels} has 4 labels`),
    );
    await Deno.writeFile(`${dir}/${s.files.labels}`, encodeIdx(Uint8Array.of(1, 2, 10, 3, 4), [5]));
    await assert.rejects(() => loadFashionMnist(opts), /label 10 at index 2 is not a class 0\.\.9/);
    await Deno.writeFile(
      `${dir}/${s.files.labels}`,
      Uint8Array.of(0x12, 0x34, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5),
    );
    await assert.rejects(
      () => loadFashionMnist(opts),
      new RegExp(`${dir}/${s.files.labels} is not an IDX file`),
    );
  });
});

Deno.test("loadFashionMnist downloads from a loopback server, verifies MD5, then reuses the files", async () => {
  const s = await synthetic("train", 11);
  const { server, hits, url } = serve(s.gz);
  try {
    await withTempDir(async (dir) => {
      const progress: string[] = [];
      const opts = {
        split: "train" as const,
        dir,
        checkSize: false,
        url,
        md5: s.md5,
        onProgress: (f: string, r: number, t: number) => progress.push(`${f} ${r}/${t}`),
      };
      const ds = await loadFashionMnist(opts);
      assert.deepEqual(ds.images, s.images);
      assert.deepEqual(ds.labels, s.labels);
      assert.deepEqual(hits.sort(), Object.keys(s.gz).sort());
      assert.deepEqual(await listDir(dir), Object.keys(s.gz).sort());
      for (const [name, data] of Object.entries(s.gz)) {
        assert.ok(progress.includes(`${name} ${data.length}/${data.length}`), progress.join("; "));
      }
      await loadFashionMnist(opts);
      assert.equal(hits.length, 2, "the second load must not download again");
    });
    // The base URL may come from $FASHION_MNIST_URL, and may lack its trailing slash.
    await withTempDir(async (dir) => {
      Deno.env.set("FASHION_MNIST_URL", url.slice(0, -1));
      try {
        const ds = await loadFashionMnist({
          split: "train",
          dir,
          checkSize: false,
          md5: s.md5,
          onProgress: quiet,
        });
        assert.equal(ds.n, 11);
      } finally {
        Deno.env.delete("FASHION_MNIST_URL");
      }
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("loadFashionMnist rejects a download with a wrong checksum and keeps nothing of it", async () => {
  const s = await synthetic("test", 4);
  const { server, url } = serve(s.gz);
  try {
    await withTempDir(async (dir) => {
      const md5 = { ...s.md5, [`${s.files.labels}.gz`]: "0".repeat(32) };
      const err = await loadFashionMnist({
        split: "test",
        dir,
        checkSize: false,
        url,
        md5,
        onProgress: quiet,
      })
        .catch((e) => e as Error);
      assert.ok(err instanceof Error);
      assert.match(err.message, /Fashion-MNIST \(test split\) was not found/);
      assert.ok(
        err.message.includes(`${dir}/${s.files.labels}.gz failed: MD5 checksum mismatch`),
        err.message,
      );
      assert.ok(err.message.includes("apt-get install dataset-fashion-mnist"));
      // The verified images file may stay; the labels file, in any form, must not.
      assert.deepEqual(await listDir(dir), [`${s.files.images}.gz`]);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("loadFashionMnist rejects a truncated download and keeps nothing of it", async () => {
  const s = await synthetic("test", 4);
  const name = `${s.files.images}.gz`;
  // The server sends the first half of the images file with a matching Content-Length.
  const { server, url } = serve({
    ...s.gz,
    [name]: s.gz[name].subarray(0, s.gz[name].length >> 1),
  });
  try {
    await withTempDir(async (dir) => {
      for (const md5 of [s.md5, {}]) {
        // With checksums the MD5 catches it; without, gunzip does: both name the file.
        const err = await loadFashionMnist({
          split: "test",
          dir,
          checkSize: false,
          url,
          md5,
          onProgress: quiet,
        })
          .catch((e) => e as Error);
        assert.ok(err instanceof Error);
        assert.ok(err.message.includes(`${dir}/${name}`), err.message);
        assert.match(err.message, /MD5 checksum mismatch|is not valid gzip/);
        if (Object.keys(md5).length) assert.deepEqual(await listDir(dir), []);
        else await Deno.remove(`${dir}/${name}`); // no checksum to catch it: the parser does
      }
    });
  } finally {
    await server.shutdown();
  }
});

const system = await Deno.stat(`${FASHION_MNIST_SYSTEM_DIR}/train-images-idx3-ubyte.gz`).then(
  () => true,
  () => false,
);
if (!system) {
  console.warn(
    `Skipping the real Fashion-MNIST test: ${FASHION_MNIST_SYSTEM_DIR} is absent ` +
      "(apt-get install dataset-fashion-mnist).",
  );
}

Deno.test({
  name: "loadFashionMnist loads the real files: 60,000 + 10,000 images of 28x28, balanced classes",
  ignore: !system,
  fn: async () => {
    for (const [split, n] of [["train", 60000], ["test", 10000]] as const) {
      const ds = await loadFashionMnist({
        split,
        searchPaths: [FASHION_MNIST_SYSTEM_DIR],
        download: false,
      });
      assert.equal(ds.n, n);
      assert.equal(ds.images.length, n * 28 * 28);
      assert.equal(ds.labels.length, n);
      const counts = new Array(10).fill(0);
      for (const l of ds.labels) counts[l]++;
      assert.deepEqual(counts, new Array(10).fill(n / 10), `${split} class counts`);
      let max = 0;
      for (const v of ds.images) max = Math.max(max, v);
      assert.equal(max, 255);
    }
  },
});
