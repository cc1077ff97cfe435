// StepLR and CosineAnnealingLR against PyTorch's learning rates (tests/fixtures/optim.py),
// and against their closed forms from a constant start.
import { equal, throws } from "node:assert/strict";
import { assertClose } from "../assert_close.ts";
import { CosineAnnealingLR, StepLR } from "../../src/optim/schedulers.ts";
import fx from "../fixtures/optim.json" with { type: "json" };

for (const c of fx.schedulers) {
  Deno.test(`${c.name}(${JSON.stringify(c.options)}) gives PyTorch's rates over 12 epochs (fixture)`, () => {
    const opt = { lr: c.lr };
    const o = c.options as Partial<Record<string, number>>;
    const sched = c.name === "StepLR"
      ? new StepLR(opt, o.step_size!, { gamma: o.gamma })
      : new CosineAnnealingLR(opt, o.T_max!, { etaMin: o.eta_min });
    const lrs = [opt.lr];
    for (let e = 0; e < 12; e++) {
      sched.step();
      lrs.push(sched.getLastLr());
    }
    assertClose(lrs, c.lrs, { atol: 1e-15, rtol: 1e-12 }, "learning rates");
    // the closed forms, which PyTorch's recursions follow from a constant start
    const closed = lrs.map((_, e) =>
      c.name === "StepLR"
        ? c.lr * (o.gamma ?? 0.1) ** Math.floor(e / o.step_size!)
        : (o.eta_min ?? 0) + (c.lr - (o.eta_min ?? 0)) * (1 + Math.cos(Math.PI * e / o.T_max!)) / 2
    );
    assertClose(lrs, closed, { atol: 1e-15, rtol: 1e-12 }, "closed form");
  });
}

Deno.test("a scheduler resumes from its state dict where it stood", () => {
  const a = { lr: 0.1 }, b = { lr: 0.1 };
  const sa = new CosineAnnealingLR(a, 5);
  for (let e = 0; e < 3; e++) sa.step();
  const sb = new CosineAnnealingLR(b, 5);
  b.lr = a.lr; // the optimizer's own state
  sb.loadStateDict(sa.stateDict());
  for (let e = 0; e < 4; e++) {
    sa.step();
    sb.step();
    equal(b.lr, a.lr);
  }
  throws(
    () => new StepLR({ lr: 0.5 }, 2).loadStateDict({ last_epoch: 3, base_lr: 0.1 }),
    /saved with an initial learning rate of 0.1/,
  );
  throws(() => new StepLR({ lr: 0.5 }, 0), /StepLR needs a positive integer stepSize, got 0/);
});
