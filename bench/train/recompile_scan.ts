/**
 * Finds kernels that lavapipe recompiles at every dispatch. Mesa 22.3's lavapipe (Debian 12)
 * replaces a uniform that bounds a loop, or alone decides an `if`, by its value at a
 * pipeline's first dispatch; when that shrinks the shader by half it keeps doing so, and
 * compiles the kernel again at every later dispatch (no cache of the variants): milliseconds
 * each, on the device's clock, whatever the work. Which kernels it hits depends on the sizes
 * of their first dispatch, so on the first batch size a process trains at (batch 2, 3 and 5
 * hit linear's `weight_grad`; batch 16 block_norm's `reduce_grads`, until their loop bounds
 * went through `min(nwg.z, 1)`, a 1 no compiler can know).
 *
 * Run: `deno run -A bench/train/recompile_scan.ts [--norms batch,none,group,layer,ghost]
 * [--batch 2,3,4,5,8,16,32]`: each (normalization, batch) in a process of its own, five
 * warm-up steps of LeNet, then six profiled steps (`gpu.profileLaunches`, a pass per
 * launch); prints every kernel whose least time per launch over the six stays above 1.5 ms
 * at a batch of at most 32 (where no kernel of LeNet's has that much work: 0.05-1 ms), and
 * exits 1 if there is one.
 *
 * @module
 */
const CHILD = "--child";

/** The value after `--name`, refused when missing. */
function option(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Deno.args[i + 1];
  if (v === undefined || v.startsWith("--")) {
    throw new Error(`recompile_scan: --${name} needs a value, e.g. --${name} 2,8`);
  }
  return v;
}

if (Deno.args[0] === CHILD) {
  await child(Deno.args[1] as Norm, Number(Deno.args[2]));
} else {
  const norms = (option("norms") ?? "batch,none,group,layer,ghost").split(",") as Norm[];
  const batches = (option("batch") ?? "2,3,4,5,8,16,32").split(",").map(Number);
  for (const b of batches) {
    if (!Number.isInteger(b) || b < 2) {
      throw new Error(`recompile_scan: --batch takes whole numbers from 2, got ${b}`);
    }
  }
  let found = 0;
  for (const norm of norms) {
    for (const batch of batches) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(import.meta.url).pathname, CHILD, norm, String(batch)],
        stderr: "inherit",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      if (!out.success) throw new Error(`${norm} at batch ${batch} failed:\n${text}`);
      const hits = JSON.parse(text) as { kernel: string; us: number }[];
      found += hits.length;
      const list = hits.map((h) => `${h.kernel} ${Math.round(h.us)} us`).join(", ");
      console.log(`${norm.padEnd(5)} batch ${String(batch).padStart(3)}: ${list || "none"}`);
    }
  }
  console.log(found ? `${found} kernel(s) recompiled at every dispatch` : "no recompiles found");
  Deno.exit(found ? 1 : 0);
}

type Norm = "batch" | "none" | "group" | "layer" | "ghost";

/** Trains LeNet (`norm`) at `batch` and prints the slow kernels as JSON. */
async function child(norm: Norm, batch: number): Promise<void> {
  const { gpu, lenet, nn, optim, Tensor, tidy } = await import("../../mod.ts");
  const { initXavier } = await import("../../train.ts");
  const net = lenet(norm === "ghost" ? { norm, virtualBatchSize: batch % 2 ? 3 : 2 } : { norm });
  initXavier(net, 0);
  const sgd = new optim.SGD(net.parameters(), { lr: 0.1 });
  const loss = new nn.CrossEntropyLoss();
  const x = Tensor.rand([batch, 1, 28, 28], { seed: 1 });
  const y = Tensor.from(new Float32Array(batch).map((_, i) => (i * 7) % 10));
  const step = () =>
    tidy(() => {
      sgd.zeroGrad();
      loss.forward(net.forward(x), y).backward();
      sgd.step();
    });
  for (let i = 0; i < 5; i++) step();
  await gpu.sync();
  const least = new Map<string, number>();
  for (let r = 0; r < 6; r++) {
    for (const k of await gpu.profileLaunches(step)) {
      const key = `${k.label}`;
      least.set(key, Math.min(least.get(key) ?? Infinity, k.us / k.launches));
    }
  }
  const hits = [...least].filter(([, us]) => batch <= 32 && us > 1500);
  console.log(JSON.stringify(hits.map(([kernel, us]) => ({ kernel, us }))));
}
