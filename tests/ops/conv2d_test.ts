import { deepEqual, equal, ok } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { assertClose } from "../assert_close.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { memoryStats, sizeClass } from "../../src/gpu/buffer_pool.ts";
import {
  conv2d,
  CONV2D_SCHEDULES,
  CONV_LLVMPIPE,
  CONV_PLAIN,
  type ConvSchedule,
  convSchedule,
} from "../../src/ops/conv2d/conv2d.ts";
import {
  columnPlan,
  CONV_TILES,
  type ConvWindow,
  launchTiledForward,
  launchTiledInputGrad,
  launchTiledWeightGrad,
  paddingQuads,
} from "../../src/ops/conv2d/tiled.ts";
import { slidingWindow } from "../../src/ops/window.ts";
import { adapterProfile } from "../../src/gpu/device.ts";
import {
  type ConvDims,
  refConv2dBackward,
  refConv2dForward,
  refConvOutSize,
} from "../../src/ops/conv2d/reference.ts";
import { Rng } from "../../src/tensor/random.ts";
import { centralDiff } from "../central_diff.ts";
import fx from "../fixtures/conv_pool.json" with { type: "json" };

function randArray(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function dims(
  [n, c, h, w]: number[],
  [o, kh, kw]: number[],
  [sh, sw]: number[] = [1, 1],
  [ph, pw]: number[] = [0, 0],
): ConvDims {
  return { n, c, h, w, o, kh, kw, sh, sw, ph, pw };
}

Deno.test("conv2d's tiled forward skips the window vec4s that hold only padding in every block", () => {
  // LeNet+BN's conv2 dinp as a forward: dout rows of 8 padded by 4 on each side (values 4 ..
  // 11 of 16), one block of 12 pixels: its window's vec4s 0 (values 0 .. 3), 3 (12 .. 15) and
  // 4 (16 .. 19, which no tap reads at KW = 5)
  const d: ConvWindow = {
    n: 2,
    c: 16,
    h: 8,
    w: 8,
    o: 6,
    kh: 5,
    kw: 5,
    sh: 1,
    sw: 1,
    ph: 4,
    pw: 4,
    oh: 12,
    ow: 12,
  };
  const rows = { buffer: null as unknown as GPUBuffer, wp: 16, at: 4 };
  const tile = { channels: 8, pixels: 12 } as const;
  equal(paddingQuads(d, rows, { tile, x0: 0, blocks: 1, kxLo: 0, kxHi: 5 }), 0b11001);
  // two blocks of 4 from pixel 0: block 1's vec4 0 (values 4 .. 7) is real, vec4 3 of block
  // 0 (12 .. 15) is padding but block 1's (16 .. 19) is too
  const four = { channels: 8, pixels: 4 } as const;
  equal(paddingQuads(d, rows, { tile: four, x0: 0, blocks: 2, kxLo: 0, kxHi: 5 }), 0b11000);
  // without padding, the vec4s past the row's 8 values (read only for pixels past OW); with a
  // stride, none
  equal(
    paddingQuads({ ...d, pw: 0 }, { ...rows, at: 0, wp: 8 }, {
      tile,
      x0: 0,
      blocks: 1,
      kxLo: 0,
      kxHi: 5,
    }),
    0b11100,
  );
  equal(
    paddingQuads({ ...d, sh: 2, sw: 2 }, rows, { tile, x0: 0, blocks: 1, kxLo: 0, kxHi: 5 }),
    0,
  );
});

Deno.test("conv2d reference backward matches central differences", () => {
  for (
    const d of [
      dims([2, 3, 5, 6], [4, 3, 2]),
      dims([1, 2, 7, 7], [3, 3, 3], [2, 2], [1, 1]),
      dims([2, 1, 5, 4], [2, 2, 3], [1, 2], [2, 0]),
    ]
  ) {
    const [OH, OW] = refConvOutSize(d);
    const rng = new Rng(d.h * 10 + d.w);
    const inp = Float64Array.from(randArray(d.n * d.c * d.h * d.w, rng));
    const weight = Float64Array.from(randArray(d.o * d.c * d.kh * d.kw, rng));
    const bias = Float64Array.from(randArray(d.o, rng));
    const dout = Float64Array.from(randArray(d.n * d.o * OH * OW, rng));
    // L = sum(out * dout), so dL/dx is the backward's gradient.
    const loss = () =>
      refConv2dForward(inp, weight, bias, d).reduce((s, v, i) => s + v * dout[i], 0);
    const g = refConv2dBackward(inp, weight, dout, d);
    const h = 1e-6;
    for (
      const [x, dx, what] of [[inp, g.dinp, "dinp"], [weight, g.dweight, "dweight"], [
        bias,
        g.dbias,
        "dbias",
      ]] as const
    ) {
      const num = centralDiff(x, loss, h);
      assertClose(dx, num, { atol: 1e-7, rtol: 1e-7 }, `${what}, central differences`);
    }
  }
});

/** The fused activations conv2d takes, as float64 functions of the biased sum, and their slopes. */
const ACTIVATIONS = {
  relu: { f: (v: number) => Math.max(v, 0), slope: (v: number) => (v > 0 ? 1 : 0) },
  sigmoid: {
    f: (v: number) => 1 / (1 + Math.exp(-v)),
    slope: (v: number) => Math.exp(-v) / (1 + Math.exp(-v)) ** 2,
  },
};

/**
 * conv2d on `schedule` through autograd (forward, then backward from a seeded dout) against
 * the float64 reference: out, dinp, dweight and dbias.
 */
async function checkConv(
  schedule: ConvSchedule,
  [inShape, wShape, stride = [1, 1], padding = [0, 0]]: ConvCase,
  withBias: boolean,
  activation?: keyof typeof ACTIVATIONS,
): Promise<void> {
  const d = dims(inShape, wShape, stride, padding);
  const [OH, OW] = refConvOutSize(d);
  const rng = new Rng(d.n * 7 + d.c * 11 + d.h * 13 + d.o * 17 + d.kh);
  const x = randArray(d.n * d.c * d.h * d.w, rng);
  const w = randArray(d.o * d.c * d.kh * d.kw, rng);
  const b = randArray(d.o, rng);
  const dy = randArray(d.n * d.o * OH * OW, rng);
  const inp = Tensor.from(x, { shape: inShape, requiresGrad: true });
  const weight = Tensor.from(w, { shape: [d.o, d.c, d.kh, d.kw], requiresGrad: true });
  const bias = withBias ? Tensor.from(b, { shape: [d.o], requiresGrad: true }) : null;
  const out = conv2d(inp, weight, bias, {
    stride: stride as [number, number],
    padding: padding as [number, number],
    activation,
    schedule,
  });
  ok(out.shape.join() === [d.n, d.o, OH, OW].join(), `output shape ${out.shape}`);
  out.backward(Tensor.from(dy, out.shape));
  // the activation's output, and dout through it, from the float64 biased sums
  const pre = refConv2dForward(x, w, withBias ? b : null, d);
  const act = activation ? ACTIVATIONS[activation] : null;
  const want = act ? pre.map(act.f) : pre;
  const dpre = act ? pre.map((v, i) => dy[i] * act.slope(v)) : Float64Array.from(dy);
  // float32 sums of K products of unit normals: error ~ sqrt(K) * eps * |terms|
  const tol = (k: number) => ({ atol: 1e-6 * Math.sqrt(k) * 8, rtol: 1e-5 });
  assertClose(await out.toArray(), want, tol(d.c * d.kh * d.kw), "out");
  const g = refConv2dBackward(x, w, dpre, d);
  assertClose(await inp.grad!.toArray(), g.dinp, tol(d.o * d.kh * d.kw), "dinp");
  assertClose(await weight.grad!.toArray(), g.dweight, tol(d.n * OH * OW), "dweight");
  if (bias) assertClose(await bias.grad!.toArray(), g.dbias, tol(d.n * OH * OW), "dbias");
}

/** [N, C, H, W], [O, KH, KW], stride, padding. */
type ConvCase = [number[], number[], number[]?, number[]?];

const caseName = (s: ConvSchedule, [inShape, [o, kh, kw], stride, padding]: ConvCase) =>
  `conv2d@${s.name} vs float64 reference: inp [${inShape}] weight [${[o, inShape[1], kh, kw]}]` +
  ` stride ${stride ?? [1, 1]} padding ${padding ?? [0, 0]}`;

// Batch 1, 2 and 3, one channel, primes, kernels 1/3/5, 7x7 inputs, stride 2, padding 1,
// widths that are and are not multiples of 4 (the vec4 paths), the two LeNet convolutions
// (and the book's padded first one and its second), on every schedule.
const CASES: ConvCase[] = [
  [[1, 1, 1, 1], [1, 1, 1]],
  [[1, 1, 7, 7], [1, 3, 3]],
  [[3, 1, 7, 7], [5, 3, 3], [2, 2], [1, 1]],
  [[3, 3, 7, 7], [7, 5, 5], [1, 1], [2, 2]],
  [[1, 5, 9, 11], [3, 1, 1]],
  [[3, 2, 8, 8], [5, 3, 3], [1, 1], [1, 1]],
  [[2, 3, 12, 12], [13, 5, 5]],
  [[2, 7, 8, 16], [6, 3, 5], [1, 1], [4, 4]],
  [[1, 2, 13, 10], [3, 3, 2], [2, 3], [1, 0]],
  [[3, 3, 7, 7], [2, 7, 7], [1, 1], [3, 3]],
  [[2, 1, 5, 5], [2, 3, 3], [1, 1], [4, 4]],
  // padding wider than the kernel: whole pixel blocks read only padding (no tap of theirs runs)
  [[1, 2, 2, 2], [1, 3, 3], [1, 1], [5, 5]],
  [[256, 1, 28, 28], [6, 5, 5]],
  [[256, 6, 12, 12], [16, 5, 5]],
  [[8, 1, 28, 28], [6, 5, 5], [1, 1], [2, 2]],
  // output rows that are not whole vec4s but planes that are (OW 10 and 7, OH * OW % 4 == 0):
  // the plain LeNet's conv2 and an odd width
  [[3, 2, 14, 14], [5, 5, 5]],
  [[1, 2, 6, 9], [3, 3, 3]],
];

// LeNet's convolutions at batch 1, 2 and 3 (issue 26: the small batches have their own
// lanes and launches): conv1 without padding (LeNet+BN) and with 2 (plain LeNet), conv2 on
// 12 x 12 and 14 x 14 maps.
const LENET_SMALL: ConvCase[] = [1, 2, 3].flatMap((n): ConvCase[] => [
  [[n, 1, 28, 28], [6, 5, 5]],
  [[n, 1, 28, 28], [6, 5, 5], [1, 1], [2, 2]],
  [[n, 6, 12, 12], [16, 5, 5]],
  [[n, 6, 14, 14], [16, 5, 5]],
]);

for (const schedule of CONV2D_SCHEDULES) {
  for (const c of LENET_SMALL) {
    gpuTest(
      `${caseName(schedule, c)} +bias (LeNet, small batch)`,
      () => checkConv(schedule, c, true),
    );
  }
  for (const c of CASES) {
    for (const withBias of [true, false]) {
      gpuTest(
        `${caseName(schedule, c)}${withBias ? " +bias" : ""}`,
        () => checkConv(schedule, c, withBias),
      );
    }
  }
}

// The fused activations: applied to the biased sum once it is whole (after the last slice
// of a split sum, below), their gradient taken from the saved output. Padded, strided and
// odd shapes, LeNet's conv2.
const ACTIVATION_CASES: ConvCase[] = [
  [[2, 3, 7, 7], [5, 3, 3], [1, 1], [1, 1]],
  [[3, 2, 9, 8], [4, 3, 3], [2, 2], [1, 0]],
  [[4, 6, 12, 12], [16, 5, 5]],
];

for (const schedule of CONV2D_SCHEDULES) {
  for (const c of ACTIVATION_CASES) {
    for (const activation of ["relu", "sigmoid"] as const) {
      gpuTest(
        `${caseName(schedule, c)} +bias, ${activation} fused`,
        () => checkConv(schedule, c, true, activation),
      );
    }
  }
}

// Sums longer than llvmpipe's loops run (65535 iterations, then a silent end): C*KH*KW terms
// per output (forward), O*KH*KW per input (dinp), N*OH*OW per weight (dweight; also LeNet's
// conv1 above, 147456). The plain schedule cuts each into slices of at most MAX_LOOP
// iterations, one dispatch each, which must add up; the tiled one splits its own way. ReLU,
// not sigmoid: a sum of 65700 unit-normal products saturates a sigmoid, which would hide a
// dropped slice.
const LONG_SUMS: ConvCase[] = [
  [[1, 7300, 3, 3], [2, 3, 3], [1, 1], [1, 1]], // forward: 65700 terms
  [[1, 2, 3, 3], [7300, 3, 3], [1, 1], [1, 1]], // dinp: 65700 terms
  [[64, 2, 40, 40], [3, 4, 4], [1, 1], [0, 0]], // dweight: 87616 terms
  [[80, 1, 70, 70], [2, 3, 3], [2, 2], [1, 1]], // dweight, strided: 98000 terms
];

for (const schedule of CONV2D_SCHEDULES) {
  for (const c of LONG_SUMS) {
    gpuTest(
      `${caseName(schedule, c)} +bias, relu fused: sums past 65535 terms`,
      () => checkConv(schedule, c, true, "relu"),
    );
  }
}

/** A kernel case: input shape, [O, KH, KW], stride, padding. */
type KernelCase = [number[], number[], number[], number[]];

/** A case's window, float64-reference dims and seeded inputs (x, weight, bias, dout). */
function kernelCase([inShape, [o, kh, kw], stride, padding]: KernelCase, seed: number) {
  const win = slidingWindow(
    "test",
    inShape,
    [kh, kw],
    stride as [number, number],
    padding as [number, number],
  );
  const d = { ...win, o };
  const ref = dims(inShape, [o, kh, kw], stride, padding);
  const rng = new Rng(seed);
  const x = randArray(d.n * d.c * d.h * d.w, rng);
  const w = randArray(o * d.c * kh * kw, rng);
  const b = randArray(o, rng);
  const dy = randArray(d.n * o * d.oh * d.ow, rng);
  return { d, ref, x, w, b, dy };
}

// The llvmpipe schedule's own machinery, on whatever adapter runs the tests.
//
// Every register tile of the tiled forward kernel (which also computes dinp at unit
// stride), not only the one the cost model picks per shape: channel counts that are one
// block with absent channels (TAIL), several blocks with a partial last one, rows that are
// not whole tiles, padding wider than a tile, and a stride (the gathered path; its dinp is
// the plain kernel's). Each against the float64 reference.
const TILE_CASES: KernelCase[] = [
  [[2, 3, 9, 13], [5, 3, 3], [1, 1], [1, 1]],
  [[2, 2, 7, 11], [13, 5, 5], [1, 1], [2, 2]],
  [[3, 1, 10, 10], [6, 5, 5], [1, 1], [0, 0]],
  [[2, 6, 14, 14], [16, 5, 5], [1, 1], [0, 0]],
  [[2, 7, 6, 21], [2, 3, 7], [1, 1], [1, 6]],
  [[2, 2, 9, 9], [6, 3, 3], [2, 1], [1, 2]],
  [[2, 3, 8, 26], [10, 3, 3], [1, 1], [1, 1]],
  [[2, 4, 12, 12], [9, 3, 3], [1, 1], [1, 1]],
];

for (const tileCase of TILE_CASES) {
  const [inShape, [o, kh, kw], stride, padding] = tileCase;
  gpuTest(
    `conv2d@llvmpipe tiles ${
      CONV_TILES.map((t) => `${t.channels}x${t.pixels}`)
    } vs float64 reference: inp [${inShape}] weight [${[
      o,
      inShape[1],
      kh,
      kw,
    ]}] stride ${stride} padding ${padding}`,
    async () => {
      const { d, ref, x, w, b, dy } = kernelCase(tileCase, o * 31 + kw);
      const [inp, weight, bias] = [
        Tensor.from(x, inShape),
        Tensor.from(w, [o, d.c, kh, kw]),
        Tensor.from(b, [o]),
      ];
      const dout = Tensor.from(dy, [d.n, o, d.oh, d.ow]);
      const want = refConv2dForward(x, w, b, ref);
      const wantDinp = refConv2dBackward(x, w, dy, ref).dinp;
      const tol = (k: number) => ({ atol: 1e-6 * Math.sqrt(k) * 8, rtol: 1e-5 });
      for (const tile of CONV_TILES) {
        const what = `tile ${tile.channels} x ${tile.pixels}`;
        const out = Tensor.empty([d.n, o, d.oh, d.ow]);
        launchTiledForward(CONV_LLVMPIPE, d, inp.buffer, weight.buffer, bias.buffer, out.buffer, {
          tile,
        });
        assertClose(await out.toArray(), want, tol(d.c * kh * kw), `${what}: out`);
        if (d.sh !== 1 || d.sw !== 1) continue;
        const dinp = Tensor.empty(inShape);
        launchTiledInputGrad(CONV_LLVMPIPE, d, dout.buffer, weight.buffer, dinp.buffer, { tile });
        assertClose(await dinp.toArray(), wantDinp, tol(o * kh * kw), `${what}: dinp`);
      }
    },
  );
}

// The forward's column plans (how the runs of pixel blocks cover an output row): for every
// case above and LeNet's passes, with the default and with each forced tile. Each run's
// skipped taps must read only padding for every pixel it stores (skipping a real one would
// drop a term), the runs must tile the row from pixel 0 without gaps or overlaps, and a
// plan's tiles share a channel count (one packed weight). That default plans mix tiles is
// what the float64 checks above exercise for [8,1,28,28] padded by 2 and [3,2,14,14]'s dinp.
gpuTest("conv2d@llvmpipe column plans cover each row once and skip only padding taps", () => {
  const lenet: KernelCase[] = [
    [[256, 1, 28, 28], [6, 5, 5], [1, 1], [0, 0]],
    [[256, 6, 12, 12], [16, 5, 5], [1, 1], [0, 0]],
    [[256, 16, 8, 8], [6, 5, 5], [1, 1], [4, 4]], // conv2's dinp as a correlation
    [[256, 1, 28, 28], [6, 5, 5], [1, 1], [2, 2]],
    [[256, 6, 14, 14], [16, 5, 5], [1, 1], [0, 0]],
    [[256, 16, 10, 10], [6, 5, 5], [1, 1], [4, 4]], // plain conv2's dinp
  ];
  let mixed = 0;
  for (const kc of [...TILE_CASES, ...lenet]) {
    const { d } = kernelCase(kc, 1);
    for (const tile of [undefined, ...CONV_TILES]) {
      const runs = columnPlan(CONV_LLVMPIPE, d, tile);
      const what = `[${kc[0]}] o ${d.o} pad ${d.pw} (${
        tile ? `${tile.channels}x${tile.pixels}` : "default"
      })`;
      let x = 0;
      for (const run of runs) {
        ok(run.x0 === x, `${what}: a run starts at ${run.x0}, expected ${x}`);
        ok(run.tile.channels === runs[0].tile.channels, `${what}: channel counts differ`);
        if (tile) ok(run.tile === tile, `${what}: a run of another tile`);
        for (let b = 0; b < run.blocks; b++, x += run.tile.pixels) {
          for (let px = x; px < Math.min(x + run.tile.pixels, d.ow); px++) {
            for (let kx = 0; kx < d.kw; kx++) {
              const read = px * d.sw - d.pw + kx; // input column of pixel px at tap kx
              const real = read >= 0 && read < d.w;
              const kept = kx >= run.kxLo && kx < run.kxHi;
              ok(kept || !real, `${what}: pixel ${px} skips tap ${kx}, which reads column ${read}`);
            }
          }
        }
      }
      ok(x >= d.ow && x - runs.at(-1)!.tile.pixels < d.ow, `${what}: runs end at ${x}, OW ${d.ow}`);
      if (!tile && new Set(runs.map((r) => r.tile)).size > 1) mixed++;
    }
  }
  ok(mixed > 0, "no default plan mixes tiles: the cost model no longer chooses by block");
});

// The tiled weight gradient's tiles of 4 and of 8 output channels (OQ 1 and 2): channels that fill a tile, that leave the last one partial (5, 13), one
// input channel (sets along the kernel rows), a stride (4 channels only: 8 are refused),
// against the float64 reference.
const WEIGHT_CASES: KernelCase[] = [
  [[3, 2, 9, 11], [5, 5, 5], [1, 1], [0, 0]],
  [[2, 4, 7, 7], [13, 3, 3], [1, 1], [1, 1]],
  [[3, 1, 12, 12], [6, 5, 5], [1, 1], [2, 2]],
  [[2, 6, 10, 10], [16, 5, 5], [1, 1], [0, 0]],
  [[2, 3, 9, 9], [9, 3, 3], [2, 1], [1, 1]],
];

for (const weightCase of WEIGHT_CASES) {
  const [inShape, [o, kh, kw], stride, padding] = weightCase;
  gpuTest(
    `conv2d@llvmpipe dweight, tiles of 4 and 8 channels vs float64 reference: inp [${inShape}] ` +
      `weight [${[o, inShape[1], kh, kw]}] stride ${stride} padding ${padding}`,
    async () => {
      const { d, ref, x, w, dy } = kernelCase(weightCase, o * 17 + kh);
      const want = refConv2dBackward(x, w, dy, ref);
      const inp = Tensor.from(x, inShape);
      const dout = Tensor.from(dy, [d.n, o, d.oh, d.ow]);
      const tol = { atol: 1e-6 * Math.sqrt(d.n * d.oh * d.ow) * 8, rtol: 1e-5 };
      const unit = stride[0] === 1 && stride[1] === 1;
      for (const quads of unit ? [1, 2] as const : [1] as const) {
        const dweight = Tensor.empty([o, d.c, kh, kw]);
        const dbias = Tensor.empty([o]);
        launchTiledWeightGrad(
          CONV_LLVMPIPE,
          d,
          inp.buffer,
          dout.buffer,
          dweight.buffer,
          dbias.buffer,
          { quads },
        );
        assertClose(await dweight.toArray(), want.dweight, tol, `${quads} quads: dweight`);
        assertClose(await dbias.toArray(), want.dbias, tol, `${quads} quads: dbias`);
      }
    },
  );
}

// conv2d on the llvmpipe schedule keeps the input's padded rows (W = 14: rows of 16) from the
// forward for the weight gradient: held by the graph, freed once backward has run through it
// or the graph is dropped (with or without a tidy() scope), and nothing held when no graph is
// recorded. The plain schedule pads nothing and keeps nothing.
gpuTest("conv2d@llvmpipe frees the padded input rows it keeps for the weight gradient", () => {
  const conv = (
    x: Tensor,
    w: Tensor,
    b: Tensor | null = null,
    schedule: ConvSchedule = CONV_LLVMPIPE,
  ) => conv2d(x, w, b, { schedule });
  const x = Tensor.rand([2, 3, 14, 14], { seed: 5 });
  const w = Tensor.rand([4, 3, 5, 5], { seed: 6, requiresGrad: true });
  const outBytes = sizeClass(4 * 2 * 4 * 10 * 10);
  const rowBytes = sizeClass(4 * 2 * 3 * 14 * 16);
  const dropGrad = () => {
    w.grad?.dispose();
    w.grad = null;
  };
  tidy(() => conv(x, w).sum().backward()); // warm-up: kernels' permanent helpers
  dropGrad();
  const start = memoryStats().liveBytes;
  tidy(() => {
    conv(x, w);
    const held = memoryStats().liveBytes - start;
    ok(held === outBytes + rowBytes, `graph recorded: ${held} bytes live, expected out + rows`);
  });
  ok(memoryStats().liveBytes === start, "dropped graph: its padded rows were not freed");
  // the same without a tidy() scope to dispose them: freeing the output releases its node
  conv(x, w).dispose();
  ok(memoryStats().liveBytes === start, "output disposed: its graph's padded rows leaked");
  tidy(() => conv(x, w).sum().backward());
  const grad = sizeClass(4 * 4 * 3 * 5 * 5);
  ok(memoryStats().liveBytes === start + grad, "after backward: more than w.grad stays live");
  dropGrad();
  noGrad(() => {
    const y = conv(x, w);
    const held = memoryStats().liveBytes - start;
    ok(held === outBytes, `no grad: ${held} bytes live, expected only the output's`);
    y.dispose();
  });
  // a bias that needs a gradient runs the weight gradient too (dbias is its by-product):
  // the rows are kept for it as well, and freed with the graph
  const w0 = w.detach();
  const b = Tensor.rand([4], { seed: 7, requiresGrad: true });
  tidy(() => conv(x, w0, b).sum().backward()); // warm-up: the kernels with a bias
  b.grad?.dispose();
  b.grad = null;
  const before = memoryStats().liveBytes;
  tidy(() => {
    conv(x, w0, b);
    const held = memoryStats().liveBytes - before;
    ok(held === outBytes + rowBytes, `bias only: ${held} bytes live, expected out + rows`);
  });
  ok(memoryStats().liveBytes === before, "bias only: the padded rows were not freed");
  tidy(() => conv(x, w, null, CONV_PLAIN).sum().backward()); // warm-up: the plain kernels
  dropGrad();
  tidy(() => {
    conv(x, w, null, CONV_PLAIN);
    const held = memoryStats().liveBytes - before;
    ok(held === outBytes, `plain: ${held} bytes live, expected only the output's`);
  });
});

gpuTest("conv2d errors name the bad shape and the fix", () => {
  const w = Tensor.zeros([6, 1, 5, 5]);
  const plain = { schedule: CONV_PLAIN };
  const cases: [() => unknown, string][] = [
    [() => conv2d(Tensor.zeros([256, 3, 28, 28]), w), "got [256, 3, 28, 28]"],
    [() => conv2d(Tensor.zeros([256, 784]), w), "expects input [N, 1, H, W]"],
    [() => conv2d(Tensor.zeros([1, 1, 4, 4]), w), "kernel 5x5 is larger than the padded input 4x4"],
    [() => conv2d(Tensor.zeros([1, 1, 8, 8]), Tensor.zeros([6, 25])), "4-D weight"],
    [() => conv2d(Tensor.zeros([1, 1, 8, 8]), w, Tensor.zeros([5])), "bias [6]"],
    [() => conv2d(Tensor.zeros([1, 1, 8, 8]), w, null, { stride: 0 }), "stride must be"],
    [() => conv2d(Tensor.zeros([1, 1, 8, 8]), w, null, { padding: -1 }), "padding must be"],
    [() => {
      const x = Tensor.zeros([1, 1, 8, 8]);
      const d = { ...slidingWindow("test", x.shape, [5, 5], [2, 1], [0, 0]), o: 6 };
      const dy = Tensor.zeros([1, 6, d.oh, d.ow]);
      launchTiledWeightGrad(CONV_LLVMPIPE, d, x.buffer, dy.buffer, w.buffer, null, { quads: 2 });
    }, "tiles of 8 channels (quads 2) need unit stride, got [2, 1]"],
    [() => {
      const x = Tensor.zeros([1, 1, 8, 8]);
      const d = { ...slidingWindow("test", x.shape, [5, 5], [1, 1], [0, 0]), o: 6 };
      const out = Tensor.empty([1, 6, 4, 4]);
      const tile = { channels: 4, pixels: 12 } as const;
      launchTiledForward(CONV_LLVMPIPE, d, x.buffer, w.buffer, null, out.buffer, { tile });
    }, "no 4 x 12 tile (channels x pixels); the kernel has 4 x 8, 8 x 4, 8 x 8, 8 x 12"],
    [() => {
      const x = Tensor.zeros([1, 1, 8, 8]);
      const d = { ...slidingWindow("test", x.shape, [5, 5], [2, 2], [0, 0]), o: 6 };
      const dy = Tensor.zeros([1, 6, d.oh, d.ow]);
      launchTiledInputGrad(CONV_LLVMPIPE, d, dy.buffer, w.buffer, x.buffer);
    }, "the tiled input gradient needs unit stride, got [2, 2]"],
    // a kernel of more taps than a plain thread loops over (MAX_LOOP 16384): refused, not
    // cut short in silence
    [
      () => conv2d(Tensor.zeros([1, 1, 129, 129]), Tensor.zeros([1, 1, 129, 129]), null, plain),
      "a 129x129 kernel has 16641 taps, more than the plain schedule's threads loop over",
    ],
  ];
  for (const [fn, want] of cases) {
    let msg = "";
    try {
      fn();
    } catch (e) {
      msg = (e as Error).message;
    }
    ok(msg.includes(want), `expected an error containing "${want}", got "${msg}"`);
  }
});

for (const schedule of CONV2D_SCHEDULES) {
  gpuTest(`conv2d@${schedule.name} matches PyTorch: forward and gradients (fixture)`, async () => {
    for (const f of fx.conv) {
      const what = `conv2d [${f.x_shape}] * [${f.w_shape}] stride ${f.stride} padding ${f.padding}`;
      const x = Tensor.from(f.x, { shape: f.x_shape, requiresGrad: true });
      const w = Tensor.from(f.w, { shape: f.w_shape, requiresGrad: true });
      const b = Tensor.from(f.b, { shape: [f.w_shape[0]], requiresGrad: true });
      const y = conv2d(x, w, b, { // a JSON import types pairs as number[]
        stride: f.stride as [number, number],
        padding: f.padding as [number, number],
        schedule,
      });
      ok(y.shape.join() === f.y_shape.join(), `${what}: shape ${y.shape}`);
      y.backward(Tensor.from(f.dy, f.y_shape));
      const tol = { atol: 1e-5, rtol: 1e-5 };
      assertClose(await y.toArray(), f.y, tol, `${what}: y`);
      assertClose(await x.grad!.toArray(), f.dx, tol, `${what}: dx`);
      assertClose(await w.grad!.toArray(), f.dw, tol, `${what}: dw`);
      assertClose(await b.grad!.toArray(), f.db, tol, `${what}: db`);
    }
  });
}

/**
 * The labels of the pipelines `fn` launches, without their constants ("conv2d.forward@plain"):
 * every launch sets its pipeline on the compute pass, so a spy on setPipeline sees them all,
 * cached or not.
 */
function launchLabels(fn: () => void): string[] {
  const proto = GPUComputePassEncoder.prototype;
  const setPipeline = proto.setPipeline;
  const labels: string[] = [];
  proto.setPipeline = function (this: GPUComputePassEncoder, p: GPUComputePipeline) {
    labels.push(p.label.replace(/: .*$/, "")); // "conv2d.forward@plain: forward(WG=64)"
    return setPipeline.call(this, p);
  };
  try {
    fn();
  } finally {
    proto.setPipeline = setPipeline;
  }
  return labels;
}

/** The distinct conv2d launches of a forward and backward of [2,3,9,9] * [4,3,3,3] + bias. */
function convLaunches(opts: { stride?: number; schedule?: ConvSchedule }): string[] {
  const x = Tensor.randn([2, 3, 9, 9], { seed: 1, requiresGrad: true });
  const w = Tensor.randn([4, 3, 3, 3], { seed: 2, requiresGrad: true });
  const b = Tensor.randn([4], { seed: 3, requiresGrad: true });
  const labels = launchLabels(() =>
    tidy(() => conv2d(x, w, b, { padding: 1, ...opts }).sum().backward())
  );
  for (const t of [x, w, b]) t.grad?.dispose();
  return [...new Set(labels.filter((l) => l.startsWith("conv2d.")))].sort();
}

gpuTest(
  "conv2d's default schedule is convSchedule(adapterProfile()), plain where unmeasured",
  () => {
    const profile = adapterProfile();
    equal(convSchedule({ ...profile, measured: null }), CONV_PLAIN);
    equal(convSchedule({ ...profile, measured: "llvmpipe" }), CONV_LLVMPIPE);
    const chosen = convSchedule(profile);
    if (profile.measured === "llvmpipe") equal(chosen, CONV_LLVMPIPE);
    const launched = convLaunches({});
    ok(launched.length > 0, "no conv2d launch seen");
    deepEqual(launched, convLaunches({ schedule: chosen }), `default on ${profile.description}`);
  },
);

gpuTest("every conv2d launch is labelled conv2d.<entry>@<schedule>", () => {
  const plain = [
    "conv2d.backward_inp@plain",
    "conv2d.backward_weight@plain",
    "conv2d.forward@plain",
  ];
  deepEqual(convLaunches({ schedule: CONV_PLAIN }), plain);
  deepEqual(convLaunches({ schedule: CONV_PLAIN, stride: 2 }), plain);
  // W = 9: rows padded value by value, for the input and for dout (dinp's correlation)
  const tiled = ["forward", "pack_weight", "pack_weight_flipped", "pad_rows_scalar"]
    .concat(["backward_weight", "reduce_weight"]).map((e) => `conv2d.${e}@llvmpipe`).sort();
  deepEqual(convLaunches({ schedule: CONV_LLVMPIPE }), tiled);
  // with a stride the input gradient is the plain kernel's, and labelled so
  deepEqual(
    convLaunches({ schedule: CONV_LLVMPIPE, stride: 2 }),
    [
      "conv2d.backward_inp@plain",
      ...["backward_weight", "forward", "pack_weight", "pad_rows_scalar", "reduce_weight"]
        .map((e) => `conv2d.${e}@llvmpipe`),
    ],
  );
});
