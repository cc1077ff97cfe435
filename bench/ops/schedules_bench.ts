/**
 * Each op's schedules side by side on this adapter: the plain schedule (the default where
 * nobody has measured) against every tuned one, forward + backward at LeNet's shapes
 * (batch 256), in interleaved rounds so that a drift of the machine's speed hits both. Each
 * case is checked against the plain schedule's result before it is timed (the float64
 * references are the tests' business; here the two schedules must agree). Prints, per op
 * and shape, the median ms per call of each schedule and its ratio to plain: the figures a
 * tuned schedule's `measured` field cites. Run:
 * `ROUNDS=7 deno run -A bench/ops/schedules_bench.ts` (ROUNDS defaults to 5).
 *
 * @module
 */
import { adapterProfile, getDevice } from "../../src/gpu/device.ts";
import type { Schedule } from "../../src/gpu/profile.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import { BATCH_NORM_SCHEDULES, batchNorm } from "../../src/ops/batch_norm/batch_norm.ts";
import { BLOCK_NORM_SCHEDULES, groupNorm } from "../../src/ops/block_norm/block_norm.ts";
import { linear, LINEAR_SCHEDULES } from "../../src/ops/linear/linear.ts";
import { maxPool2d, POOL_SCHEDULES } from "../../src/ops/pool/pool.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 5);

/** One op at one shape: a forward + backward under schedule `s`, returning the output. */
interface Case {
  op: string;
  shape: string;
  schedules: readonly Schedule[];
  run: (s: Schedule) => Tensor;
  /** Gradients the step leaves, cleared after each call. */
  params: Tensor[];
}

const randn = (shape: number[], seed: number, requiresGrad = true) =>
  Tensor.randn(shape, { seed, requiresGrad });

function bnCase(shape: number[]): Case {
  const c = shape[1];
  const x = randn(shape, 1), w = randn([c], 2), b = randn([c], 3), dy = randn(shape, 4, false);
  const rm = Tensor.zeros([c]), rv = Tensor.ones([c]);
  return {
    op: "batchNorm+sigmoid",
    shape: JSON.stringify(shape),
    schedules: BATCH_NORM_SCHEDULES,
    params: [x, w, b],
    run: (s) => {
      const y = batchNorm(x, rm, rv, w, b, {
        training: true,
        activation: "sigmoid",
        schedule: s as (typeof BATCH_NORM_SCHEDULES)[number],
      });
      y.backward(dy);
      return y;
    },
  };
}

function groupNormCase(shape: number[], groups: number): Case {
  const c = shape[1];
  const x = randn(shape, 1), w = randn([c], 2), b = randn([c], 3), dy = randn(shape, 4, false);
  return {
    op: `groupNorm G=${groups}`,
    shape: JSON.stringify(shape),
    schedules: BLOCK_NORM_SCHEDULES,
    params: [x, w, b],
    run: (s) => {
      const schedule = s as (typeof BLOCK_NORM_SCHEDULES)[number];
      const y = groupNorm(x, groups, w, b, { schedule });
      y.backward(dy);
      return y;
    },
  };
}

function linearCase(n: number, i: number, o: number): Case {
  const x = randn([n, i], 1), w = randn([o, i], 2), b = randn([o], 3), dy = randn([n, o], 4, false);
  return {
    op: "linear",
    shape: `[${n},${i}]x[${o},${i}]^T`,
    schedules: LINEAR_SCHEDULES,
    params: [x, w, b],
    run: (s) => {
      const y = linear(x, w, b, { schedule: s as (typeof LINEAR_SCHEDULES)[number] });
      y.backward(dy);
      return y;
    },
  };
}

function poolCase(shape: number[]): Case {
  const x = randn(shape, 1);
  const out = [shape[0], shape[1], shape[2] / 2, shape[3] / 2];
  const dy = randn(out, 4, false);
  return {
    op: "sigmoid+maxPool2d",
    shape: JSON.stringify(shape),
    schedules: POOL_SCHEDULES,
    params: [x],
    run: (s) => {
      const schedule = s as (typeof POOL_SCHEDULES)[number];
      const y = maxPool2d(x, 2, { activation: "sigmoid", schedule });
      y.backward(dy);
      return y;
    },
  };
}

const CASES: Case[] = [
  bnCase([256, 6, 24, 24]),
  bnCase([256, 16, 8, 8]),
  bnCase([256, 120]),
  bnCase([256, 84]),
  groupNormCase([256, 6, 24, 24], 3),
  groupNormCase([256, 120], 8),
  linearCase(256, 256, 120),
  linearCase(256, 400, 120),
  linearCase(256, 120, 84),
  linearCase(256, 84, 10),
  poolCase([256, 6, 24, 24]),
  poolCase([256, 16, 10, 10]),
];

function clear(c: Case): void {
  for (const t of c.params) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/** The output and the first parameter's gradient of one step under `s`. */
async function result(c: Case, s: Schedule): Promise<Float32Array[]> {
  const y = c.run(s);
  const got = [await y.toArray(), await c.params[0].grad!.toArray()];
  y.dispose();
  clear(c);
  return got;
}

const profile = adapterProfile();
const cpu = Deno.build.os === "linux"
  ? (Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "")
  : "";
console.log(
  `Schedules on ${profile.description} (${profile.kind}, measured family: ${
    profile.measured ?? "none"
  })${cpu ? `, CPU ${cpu}` : ""}; forward + backward, median ms of ${ROUNDS} interleaved rounds`,
);
for (const c of CASES) {
  const [plain, ...tuned] = c.schedules;
  const want = await result(c, plain);
  for (const s of tuned) {
    const got = await result(c, s);
    assertClose(got[0], want[0], { atol: 1e-4, rtol: 1e-4 }, `${c.op} ${c.shape} ${s.name} out`);
    assertClose(got[1], want[1], { atol: 1e-3, rtol: 1e-3 }, `${c.op} ${c.shape} ${s.name} grad`);
  }
  const ms = new Map<Schedule, number[]>(c.schedules.map((s) => [s, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // alternate the order, so that neither always runs first in a round
    const order = r % 2 ? [...c.schedules].reverse() : c.schedules;
    for (const s of order) {
      ms.get(s)!.push(
        await msPerCall(() =>
          tidy(() => {
            c.run(s);
            clear(c);
          }), { reps: 5, trials: 1 }),
      );
    }
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const base = median(ms.get(plain)!);
  const cells = c.schedules.map((s) => {
    const m = median(ms.get(s)!);
    return `${s.name} ${m.toFixed(2)} ms${s === plain ? "" : ` (${(m / base).toFixed(2)}x)`}`;
  });
  console.log(`${c.op.padEnd(20)} ${c.shape.padEnd(20)} ${cells.join(" | ")}`);
}
