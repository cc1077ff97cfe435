import assert from "node:assert/strict";
import { ProgressBar, type ProgressOptions } from "../../src/progress/progress.ts";

/** A bar writing into `out` with a clock the test moves by hand. */
function fake(total: number, opts: ProgressOptions = {}) {
  const out: string[] = [];
  const clock = { t: 0 };
  const dec = new TextDecoder();
  const writer = { writeSync: (p: Uint8Array) => (out.push(dec.decode(p)), p.length) };
  const bar = new ProgressBar(total, { writer, now: () => clock.t, ...opts });
  return { bar, out, clock };
}

Deno.test("ProgressBar formats bar, percentage, count, rate, ETA and suffix", () => {
  const { bar, clock } = fake(60000, { label: "epoch 1", unit: "ex", tty: true, width: 10 });
  clock.t = 10_000;
  bar.update(45120, "loss 0.512");
  // 45,120 examples in 10 s: 4,512 ex/s; 14,880 left: 3.3 s.
  assert.equal(
    bar.format(),
    "epoch 1 [#######---]  75% 45,120/60,000 ex 4,512 ex/s ETA 0:03 loss 0.512",
  );
});

Deno.test("ProgressBar formats bytes with binary prefixes and long ETAs as h:mm:ss", () => {
  const { bar, clock } = fake(26421880, { label: "train-images", unit: "B", tty: true, width: 4 });
  clock.t = 1000;
  bar.update(3 * 1024);
  // 3 KiB/s; 26,418,808 bytes left: 8,599.9 s = 2:23:20.
  assert.equal(bar.format(), "train-images [----]   0% 3.00 KiB/25.2 MiB 3.00 KiB/s ETA 2:23:20");
});

Deno.test("ProgressBar with an unknown total shows count and rate only", () => {
  const { bar, clock } = fake(0, { unit: "B", tty: true });
  clock.t = 2000;
  bar.update(1536);
  assert.equal(bar.format(), "1.50 KiB 768 B/s");
});

Deno.test("ProgressBar on a TTY redraws in place at most every 100 ms and ends the line", () => {
  const { bar, out, clock } = fake(100, { unit: "ex", tty: true, width: 4 });
  bar.update(1); // t = 0: first draw
  clock.t = 50;
  bar.update(2); // too soon
  clock.t = 100;
  bar.update(50);
  assert.equal(out.length, 2);
  for (const s of out) assert.ok(s.startsWith("\r") && s.endsWith("\x1b[K"), JSON.stringify(s));
  assert.match(out[1], / 50% 50\/100 ex /);
  clock.t = 200;
  bar.update(100);
  bar.done("loss 0.3");
  assert.equal(out.length, 4);
  assert.equal(out[3], "\r[####] 100% 100/100 ex 500 ex/s in 0:00 loss 0.3\x1b[K\n");
  bar.done(); // a second done prints nothing
  assert.equal(out.length, 4);
});

Deno.test("ProgressBar off a TTY prints plain periodic lines", () => {
  const { bar, out, clock } = fake(1000, { label: "epoch 2", unit: "ex", tty: false, width: 4 });
  for (let i = 1; i <= 1000; i++) {
    clock.t = i * 12; // 12 s in all: one line after 5 s, one after 10 s
    bar.tick(1, `loss ${(1 / i).toFixed(3)}`);
  }
  bar.done();
  assert.equal(out.length, 3);
  for (const s of out) {
    assert.ok(!s.includes("\r") && !s.includes("\x1b"), JSON.stringify(s));
    assert.ok(s.endsWith("\n") && s.indexOf("\n") === s.length - 1);
  }
  assert.equal(out[0], "epoch 2 [#---]  41% 417/1,000 ex 83 ex/s ETA 0:07 loss 0.002\n");
  assert.equal(out[2], "epoch 2 [####] 100% 1,000/1,000 ex 83 ex/s in 0:12 loss 0.001\n");
});

Deno.test("ProgressBar rejects a negative or non-finite total", () => {
  assert.throws(() => new ProgressBar(-1), /total must be a finite number >= 0.*got -1/);
  assert.throws(() => new ProgressBar(NaN), /got NaN/);
});
