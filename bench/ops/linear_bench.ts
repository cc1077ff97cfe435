/**
 * The LeNet linear layers at batch 256 (`linear`: forward, and forward + backward), against
 * the float64 reference as baseline. Each GPU case is validated against the reference before
 * it is timed, and the GFLOP/s of every case are printed first (2 N in out FLOP forward,
 * 3x that with the backward), under each schedule (the plain one and the tuned ones), so
 * that the adapter's own choice can be read against the others. Run:
 * `deno bench -A bench/ops/linear_bench.ts`.
 *
 * A GPU iteration encodes REPS launches and waits once: a host wait costs ~11 ms on
 * llvmpipe, which would otherwise swamp a kernel of 1-3 ms.
 *
 * @module
 */
import { getDevice } from "../../src/gpu/device.ts";
import { sync } from "../../src/gpu/queue.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tidy } from "../../src/tensor/tidy.ts";
import {
  linear,
  LINEAR_SCHEDULES,
  type LinearSchedule,
  linearSchedule,
} from "../../src/ops/linear/linear.ts";
import { refLinearBackward, refLinearForward } from "../../src/ops/linear/reference.ts";
import { assertClose } from "../../tests/assert_close.ts";
import { msPerCall } from "../timing.ts";

await getDevice();

const REPS = 10;
const SHAPES: [number, number, number][] = [[256, 256, 120], [256, 120, 84], [256, 84, 10]];

function setup(N: number, I: number, O: number, schedule = linearSchedule()) {
  const x = Tensor.randn([N, I], { seed: 1, requiresGrad: true });
  const w = Tensor.randn([O, I], { seed: 2, requiresGrad: true });
  const b = Tensor.randn([O], { seed: 3, requiresGrad: true });
  const dy = Tensor.randn([N, O], { seed: 4 });
  const forward = () => tidy(() => void linear(x, w, b, { schedule }));
  const step = () =>
    tidy(() => {
      linear(x, w, b, { schedule }).backward(dy);
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  return { x, w, b, dy, forward, step };
}

const rows: string[] = [];
for (const [N, I, O] of SHAPES) {
  for (const schedule of LINEAR_SCHEDULES) rows.push(await measure(N, I, O, schedule));
}

async function measure(N: number, I: number, O: number, schedule: LinearSchedule) {
  const s = setup(N, I, O, schedule);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  // validate before timing
  const y = linear(s.x, s.w, s.b, { schedule });
  y.backward(s.dy);
  assertClose(await y.toArray(), refLinearForward(x, w, b, N, I, O), { atol: 1e-3 }, "out");
  const g = refLinearBackward(x, w, dy, N, I, O);
  assertClose(await s.w.grad!.toArray(), g.dweight, { atol: 1e-3 }, "dweight");
  assertClose(await s.x.grad!.toArray(), g.dinp, { atol: 1e-3 }, "dinp");
  const flop = 2 * N * I * O;
  const f = await msPerCall(s.forward, { reps: REPS });
  const fb = await msPerCall(s.step, { reps: REPS });
  const t0 = performance.now();
  refLinearBackward(x, w, dy, N, I, O);
  refLinearForward(x, w, b, N, I, O);
  const ref = performance.now() - t0;
  return (
    `[${N},${I}]x[${O},${I}]^T ${schedule.name.padEnd(8)} forward ${f.toFixed(2)} ms ${
      (flop / f / 1e6).toFixed(2)
    } GFLOP/s` +
    ` | fwd+bwd ${fb.toFixed(2)} ms ${(3 * flop / fb / 1e6).toFixed(2)} GFLOP/s` +
    ` | float64 JS reference fwd+bwd ${ref.toFixed(1)} ms ${
      (3 * flop / ref / 1e6).toFixed(2)
    } GFLOP/s`
  );
}
console.log(rows.join("\n"));

for (const [N, I, O] of SHAPES) {
  const group = `linear [${N},${I}]x[${O},${I}]^T`;
  const s = setup(N, I, O);
  const [x, w, b, dy] = await Promise.all([s.x, s.w, s.b, s.dy].map((t) => t.toArray()));
  Deno.bench({
    name: "float64 reference, forward + backward",
    group,
    baseline: true,
    n: 5,
    warmup: 1,
    fn: () => {
      refLinearForward(x, w, b, N, I, O);
      refLinearBackward(x, w, dy, N, I, O);
    },
  });
  Deno.bench({
    name: `GPU forward x${REPS}, one wait`,
    group,
    n: 10,
    warmup: 2,
    fn: async () => {
      for (let i = 0; i < REPS; i++) s.forward();
      await sync();
    },
  });
  Deno.bench({
    name: `GPU forward + backward x${REPS}, one wait`,
    group,
    n: 10,
    warmup: 2,
    fn: async () => {
      for (let i = 0; i < REPS; i++) s.step();
      await sync();
    },
  });
}
