import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Module } from "../../src/nn/module.ts";
import { copyInto, Tensor } from "../../src/tensor/tensor.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  saveCheckpoint,
} from "../../src/train/checkpoint.ts";
import fixture from "../fixtures/lenet.json" with { type: "json" };

// Stand-ins with PyTorch's names: checkpoints only see names, shapes and values.
class Lin extends Module {
  constructor(inF: number, outF: number, seed: number) {
    super();
    this.registerParameter("weight", Tensor.randn([outF, inF], { seed }));
    this.registerParameter("bias", Tensor.randn([outF], { seed: seed + 1 }));
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}
class Bn extends Module {
  tracked: Tensor;
  constructor(n: number, seed: number) {
    super();
    this.registerParameter("weight", Tensor.randn([n], { seed }));
    this.registerParameter("bias", Tensor.randn([n], { seed: seed + 1 }));
    this.registerBuffer("running_mean", Tensor.randn([n], { seed: seed + 2 }));
    this.registerBuffer("running_var", Tensor.rand([n], { seed: seed + 3 }));
    this.tracked = this.registerBuffer("num_batches_tracked", Tensor.zeros([]), { integer: true });
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}
class Tiny extends Module {
  constructor(seed: number) {
    super();
    this.registerModule("0", new Lin(3, 2, seed));
    this.registerModule("1", new Bn(2, seed + 10));
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

async function values(m: Module): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of m.namedParameters()) out[k] = [...await t.toArray()];
  for (const [k, t] of m.namedBuffers()) out[k] = [...await t.toArray()];
  return out;
}

function header(bytes: Uint8Array): Record<string, { dtype: string; data_offsets: number[] }> {
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}

Deno.test("safetensors encode/decode round trip keeps dtypes, shapes, values, metadata", () => {
  const tensors = {
    a: { dtype: "F32" as const, shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-8, 7) },
    n: { dtype: "I64" as const, shape: [], data: BigInt64Array.of(123456789n) },
    e: { dtype: "F32" as const, shape: [0], data: new Float32Array(0) },
  };
  const bytes = encodeSafetensors(tensors, { k: "v" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  deepEqual(n % 8, 0, "header padded to 8 bytes");
  const back = decodeSafetensors(bytes);
  deepEqual(back.metadata, { k: "v" });
  deepEqual(back.tensors, tensors);
});

Deno.test("decodeSafetensors rejects truncated files and unsupported dtypes", () => {
  const good = encodeSafetensors({ a: { dtype: "F32", shape: [4], data: new Float32Array(4) } });
  throws(() => decodeSafetensors(good.subarray(0, 5)), /shorter than the 8-byte/);
  throws(() => decodeSafetensors(good.subarray(0, good.length - 4)), /data_offsets/);
  const json = new TextEncoder().encode(
    JSON.stringify({ a: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }),
  );
  const f64 = new Uint8Array(8 + json.length + 8);
  new DataView(f64.buffer).setBigUint64(0, BigInt(json.length), true);
  f64.set(json, 8);
  throws(() => decodeSafetensors(f64), /dtype F64; bnlab reads F32 and I64/);
});

gpuTest("saveCheckpoint/loadCheckpoint round trip, atomic, I64 counter", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = new Tiny(1);
    copyInto((a.namedChildren()[1][1] as Bn).tracked, Tensor.from(42));
    const path = `${dir}/model.safetensors`;
    await saveCheckpoint(a, path, { metadata: { epoch: "3" } });
    deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
    const h = header(await Deno.readFile(path));
    deepEqual(h["1.num_batches_tracked"].dtype, "I64");
    deepEqual(h["0.weight"].dtype, "F32");
    deepEqual((h.__metadata__ as unknown as Record<string, string>).format, "pt");

    const b = new Tiny(100);
    const meta = await loadCheckpoint(b, path);
    deepEqual(meta.epoch, "3");
    deepEqual(await values(b), await values(a));
    deepEqual(await (b.namedChildren()[1][1] as Bn).tracked.item(), 42);
    // Overwriting goes through a rename too: the old file is replaced whole.
    await saveCheckpoint(b, path);
    deepEqual([...Deno.readDirSync(dir)].length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loadCheckpoint reads a file in PyTorch's safetensors layout", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/torch.safetensors`;
    const bin = Uint8Array.from(atob(fixture.tiny.safetensors_b64), (c) => c.charCodeAt(0));
    await Deno.writeFile(path, bin);
    const net = new Tiny(5);
    const meta = await loadCheckpoint(net, path);
    deepEqual(meta.source, "lenet.py");
    const got = await values(net);
    const state = fixture.tiny.state as Record<string, { shape: number[]; values: number[] }>;
    for (const [k, v] of Object.entries(got)) {
      assertClose(v, state[k].values, { atol: 0, rtol: 0 }, k);
    }
    deepEqual(
      await (net.namedChildren()[1][1] as Bn).tracked.item(),
      state["1.num_batches_tracked"].values[0],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loadCheckpoint names missing keys, wrong shapes and wrong dtypes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bad.safetensors`;
    const f32 = (shape: number[]) => ({
      dtype: "F32" as const,
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    const full = {
      "0.weight": f32([2, 3]),
      "0.bias": f32([2]),
      "1.weight": f32([2]),
      "1.bias": f32([2]),
      "1.running_mean": f32([2]),
      "1.running_var": f32([2]),
      "1.num_batches_tracked": { dtype: "I64" as const, shape: [], data: BigInt64Array.of(1n) },
    };
    await Deno.writeFile(path, encodeSafetensors({ ...full, "0.weight": f32([3, 2]) }));
    await rejects(
      () => loadCheckpoint(new Tiny(0), path),
      /0\.weight: expected \[2, 3\], got \[3, 2\]/,
    );
    const { "1.bias": _, ...missing } = full;
    await Deno.writeFile(path, encodeSafetensors(missing));
    await rejects(() => loadCheckpoint(new Tiny(0), path), /missing keys: 1\.bias/);
    await Deno.writeFile(
      path,
      encodeSafetensors({
        ...full,
        "1.running_var": { dtype: "I64", shape: [2], data: new BigInt64Array(2) },
      }),
    );
    await rejects(
      () => loadCheckpoint(new Tiny(0), path),
      /"1\.running_var" is I64, expected F32/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** `text` as a regular expression that matches it literally. */
function escape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

/** Safetensors bytes with `json` as the header and `data` after it. */
function withHeader(json: string, data = new Uint8Array(0)): Uint8Array {
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

Deno.test("decodeSafetensors names what is wrong in a malformed header, never a TypeError (#6.11)", () => {
  const cases: [string, RegExp][] = [
    ["null", /the header is null, not a JSON object/],
    ["[1, 2]", /the header is \[1,2\], not a JSON object/],
    ['{"w": null}', /entry "w" is null, not an object/],
    [
      '{"w": {"dtype": "F32", "shape": [1]}}',
      /tensor "w" has data_offsets undefined, not \[begin, end\]/,
    ],
    [
      '{"w": {"dtype": "F32", "data_offsets": [0, 4]}}',
      /tensor "w" has shape undefined, not a list of sizes/,
    ],
    ['{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', /has shape \[-1\]/],
    ['{"w": {"shape": [1], "data_offsets": [0, 4]}}', /tensor "w" has no dtype/],
    ['{"__metadata__": 3}', /__metadata__ must be an object of strings/],
  ];
  for (const [json, msg] of cases) {
    throws(
      () => decodeSafetensors(withHeader(json, new Uint8Array(4))),
      (e: Error) =>
        e.name === "Error" && /^safetensors data is not a valid safetensors file/.test(e.message) &&
        msg.test(e.message),
      json,
    );
  }
});

gpuTest(
  "saveCheckpoint refuses a model with NaN or infinite values unless asked (#6.3)",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const net = new Tiny(1);
      copyInto((net.namedChildren()[1][1] as Bn).stateDict()["running_var"], Tensor.from([NaN, 1]));
      const path = `${dir}/model.safetensors`;
      await rejects(
        () => saveCheckpoint(net, path),
        { message: new RegExp(escape(`not saving ${path}: 1.running_var hold NaN or infinite`)) },
      );
      deepEqual([...Deno.readDirSync(dir)], [], "nothing written, not even a temporary file");
      await saveCheckpoint(net, `${dir}/diverged.safetensors`, { allowNonFinite: true });
      ok(
        isNaN(
          decodeSafetensors(await Deno.readFile(`${dir}/diverged.safetensors`), {
            allowNonFinite: true,
          })
            .tensors["1.running_var"].data[0] as number,
        ),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "what a save killed midway leaves is removed by the next save (#6.11, #25.1)",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      // What a SIGKILL during the write leaves: a partial `.model.safetensors.<hex>.tmp`.
      await Deno.writeFile(`${dir}/.model.safetensors.00ff00ff00ff00ff.tmp`, new Uint8Array(10));
      await saveCheckpoint(new Tiny(2), `${dir}/model.safetensors`);
      deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
      equal((await Deno.stat(`${dir}/model.safetensors`)).mode! & 0o777, 0o644);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
