/**
 * The normalization layers refuse, when constructed, an `eps` that is not > 0 and a
 * `momentum` outside [0, 1] (issue 25, point 8): either gives NaN outputs or running
 * statistics that drift off, silently, at the first step.
 */
import { match, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { nn } from "../../mod.ts";

const layers: [string, (o: { eps?: number; momentum?: number | null }) => unknown, boolean][] = [
  ["BatchNorm1d", (o) => new nn.BatchNorm1d(3, o), true],
  ["BatchNorm2d", (o) => new nn.BatchNorm2d(3, o), true],
  ["GhostBatchNorm", (o) => new nn.GhostBatchNorm(3, o), true],
  ["LayerNorm(4)", (o) => new nn.LayerNorm(4, o), false],
  ["GroupNorm", (o) => new nn.GroupNorm(1, 3, o), false],
];

gpuTest("normalization layers refuse eps <= 0 or NaN, naming the layer and the value", () => {
  for (const [name, make] of layers) {
    for (const eps of [0, -1e-5, NaN, Infinity]) {
      throws(() => make({ eps }), (e: Error) => {
        match(
          e.message,
          new RegExp(`^${name.replace(/[()]/g, "\\$&")}: eps must be .* got ${eps}`),
        );
        return true;
      }, `${name} eps ${eps}`);
    }
    make({ eps: 1e-3 }); // a valid one still passes
  }
});

gpuTest("batch norm layers refuse momentum outside [0, 1] or NaN; 0, 1 and null pass", () => {
  for (const [name, make, hasMomentum] of layers) {
    if (!hasMomentum) continue;
    for (const momentum of [-0.1, 1.5, 2, NaN]) {
      throws(() => make({ momentum }), (e: Error) => {
        match(
          e.message,
          new RegExp(`^${name}: momentum must be a number in \\[0, 1\\].* got ${momentum}`),
        );
        return true;
      }, `${name} momentum ${momentum}`);
    }
    for (const momentum of [0, 1, null, 0.1]) make({ momentum });
  }
});
