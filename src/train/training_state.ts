/**
 * A training run's whole state in one safetensors file, to resume it exactly: the model's
 * parameters and buffers (`model.<name>`), the optimizer's state tensors
 * (`optimizer.<index>.<name>`: momentum buffers, Adam's moments), and in the metadata the
 * optimizer's step counts and hyperparameters, the scheduler's state, where each layer
 * that draws random numbers (`Dropout`, `ChannelNoise`) stands, and the history of
 * readings so far (whose last epoch is where training resumes). One file, written
 * atomically (`writeFileAtomic`): a run stopped at any moment leaves the state after some
 * whole epoch, never the weights of one epoch with the optimizer of another.
 *
 * Nothing else is needed for `fit` to go on bit for bit as the uninterrupted run would:
 * the loader's order of epoch `e` depends only on its seed and `e`, and the layers that draw
 * random numbers draw from their own seed and count of draws, which are saved.
 *
 * @module
 */
import type { Module } from "../nn/module.ts";
import type { HostTensor } from "../nn/module.ts";
import type { Optimizer, OptimizerStateDict, ParamState } from "../optim/optimizer.ts";
import type { LRScheduler } from "../optim/schedulers.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { writeFileAtomic } from "./atomic_write.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadEntries,
  readCheckpointFile,
  type SafetensorsEntry,
  stateDictEntries,
} from "./checkpoint.ts";
import { architectureOf } from "../models/architecture.ts";
import { readAll } from "./diagnose.ts";
import type { History } from "./fit.ts";
import type { RandomState } from "../tensor/random.ts";

/** A layer that draws random numbers while training, with its {@link RandomState}. */
interface Random {
  randomState(): RandomState;
  loadRandomState(s: RandomState): void;
}

/** `net`'s layers that draw random numbers, by module name. */
function randomLayers(net: Module): [string, Random][] {
  return net.namedModules().filter(([, m]) =>
    typeof (m as unknown as Partial<Random>).randomState === "function"
  ) as unknown as [string, Random][];
}

/** The value of the `format` metadata key that marks a training-state file. */
export const TRAINING_STATE_FORMAT = "bnlab-training-state";

/** What a training state holds, for {@link saveTrainingState} and {@link loadTrainingState}. */
export interface TrainingState {
  /** The model. */
  net: Module;
  /** Its optimizer. */
  optimizer: Optimizer;
  /** The optimizer's learning-rate scheduler, if the run has one. */
  scheduler?: LRScheduler;
}

/**
 * Saves `net`, `optimizer`, `scheduler` and `history` (its updates and epochs; not
 * `stopped`) to `path` in one atomic write, with `metadata` beside. Refuses a model or
 * optimizer state holding NaN or an infinity (a diverged run is not worth resuming).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenet, optim, Tensor } from "../../mod.ts";
 * import { loadTrainingState, saveTrainingState } from "../../train.ts";
 * const net = lenet({ norm: "none" });
 * const optimizer = new optim.Adam(net.parameters(), { lr: 0.01 });
 * net.forward(Tensor.rand([2, 1, 28, 28], { seed: 1 })).sum().backward();
 * optimizer.step();
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * const history = { updates: [], epochs: [] };
 * await saveTrainingState(path, { net, optimizer }, history, { note: "demo" });
 * const again = lenet({ norm: "none" });
 * const opt2 = new optim.Adam(again.parameters(), { lr: 0.01 });
 * const back = await loadTrainingState(path, { net: again, optimizer: opt2 });
 * assert.equal(back.metadata.note, "demo");
 * using sd = opt2.stateDict();
 * assert.equal(sd.state[0].step, 1); // Adam goes on at its second step
 * await Deno.remove(path);
 * ```
 */
export async function saveTrainingState(
  path: string,
  { net, optimizer, scheduler }: TrainingState,
  history: History,
  metadata: Record<string, string> = {},
): Promise<void> {
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [k, e] of Object.entries(await stateDictEntries(net))) entries[`model.${k}`] = e;
  using sd = optimizer.stateDict();
  const named: [string, Tensor][] = [];
  const steps: Record<number, number> = {};
  for (const [i, s] of Object.entries(sd.state)) {
    steps[Number(i)] = s.step;
    for (const [name, t] of Object.entries(s)) {
      if (name !== "step") named.push([`optimizer.${i}.${name}`, t as Tensor]);
    }
  }
  const values = await readAll(named.map(([, t]) => t));
  named.forEach(([k, t], j) => {
    entries[k] = { dtype: "F32", shape: [...t.shape], data: values[j] };
  });
  const bad = Object.entries(entries).filter(([, e]) =>
    e.data instanceof Float32Array && e.data.some((v) => !Number.isFinite(v))
  ).map(([k]) => k);
  if (bad.length) {
    throw new Error(
      `saveTrainingState: not saving ${path}: ${bad.join(", ")} hold NaN or infinite values ` +
        "(the training diverged)",
    );
  }
  const arch = architectureOf(net);
  const bytes = encodeSafetensors(entries, {
    ...metadata,
    format: TRAINING_STATE_FORMAT,
    ...(arch ? { architecture: JSON.stringify(arch) } : {}),
    optimizer: JSON.stringify({ name: optimizer.name, param_groups: sd.param_groups, steps }),
    ...(scheduler
      ? {
        scheduler: JSON.stringify({ name: scheduler.constructor.name, ...scheduler.stateDict() }),
      }
      : {}),
    random: JSON.stringify(
      Object.fromEntries(randomLayers(net).map(([k, m]) => [k, m.randomState()])),
    ),
    history: JSON.stringify({ updates: history.updates, epochs: history.epochs }),
  });
  await writeFileAtomic(path, bytes, { what: "a training state" });
}

/**
 * Reads only the metadata of a training state saved by {@link saveTrainingState} (to check
 * a resume before building anything); throws, naming `path`, for any other file.
 */
export async function readTrainingStateMetadata(path: string): Promise<Record<string, string>> {
  const { metadata } = decodeSafetensors(await readCheckpointFile(path), { name: path });
  if (metadata.format !== TRAINING_STATE_FORMAT) {
    throw new Error(
      `${path} is not a training state (its format is ${
        JSON.stringify(metadata.format ?? null)
      }, not "${TRAINING_STATE_FORMAT}"): pass a file written by saveTrainingState`,
    );
  }
  return metadata;
}

/**
 * Loads a training state saved by {@link saveTrainingState} into `net`, `optimizer` and
 * `scheduler`, made as the saved ones were (same architecture, optimizer class and
 * hyperparameters, scheduler class and initial rate: each difference is refused, named).
 * Returns the history to pass to `fit` as `history` (training goes on at the epoch after its
 * last) and the metadata. On a refusal, discard the three: the model may already be loaded.
 */
export async function loadTrainingState(
  path: string,
  { net, optimizer, scheduler }: TrainingState,
): Promise<{ history: History; metadata: Record<string, string> }> {
  const { tensors, metadata } = decodeSafetensors(await readCheckpointFile(path), { name: path });
  if (metadata.format !== TRAINING_STATE_FORMAT) await readTrainingStateMetadata(path); // throws
  const saved = JSON.parse(metadata.optimizer) as {
    name: string;
    param_groups: OptimizerStateDict["param_groups"];
    steps: Record<string, number>;
  };
  if (saved.name !== optimizer.name) {
    throw new Error(
      `Training state ${path} was saved with the optimizer ${saved.name}, this one is ` +
        `${optimizer.name}: make a ${saved.name}`,
    );
  }
  const sched = metadata.scheduler ? JSON.parse(metadata.scheduler) : undefined;
  const ours = scheduler?.constructor.name;
  if (sched?.name !== ours) {
    throw new Error(
      `Training state ${path} was saved with ${
        sched ? `the scheduler ${sched.name}` : "no scheduler"
      }, this run has ${ours ? `the scheduler ${ours}` : "none"}: make it as the saved run was`,
    );
  }
  const model: Record<string, SafetensorsEntry> = {};
  const state: Record<number, ParamState> = {};
  for (const [k, step] of Object.entries(saved.steps)) state[Number(k)] = { step };
  for (const [k, e] of Object.entries(tensors)) {
    if (k.startsWith("model.")) model[k.slice(6)] = e;
    else if (k.startsWith("optimizer.")) {
      const [, i, name] = k.split(".");
      (state[Number(i)] ??= { step: 0 })[name] = { shape: e.shape, data: e.data } as HostTensor;
    } else {
      throw new Error(
        `Training state ${path} holds "${k}", which is neither model. nor optimizer.`,
      );
    }
  }
  const random = JSON.parse(metadata.random ?? "{}") as Record<string, RandomState>;
  const layers = randomLayers(net);
  const [savedLayers, ourLayers] = [Object.keys(random), layers.map(([k]) => k)];
  if (savedLayers.join() !== ourLayers.join()) {
    throw new Error(
      `Training state ${path} holds the random state of the layers [${savedLayers.join(", ")}], ` +
        `this model draws random numbers in [${ourLayers.join(", ")}]: build the saved model`,
    );
  }
  loadEntries(net, model, metadata, path);
  for (const [k, m] of layers) m.loadRandomState(random[k]);
  try {
    optimizer.loadStateDict({ state, param_groups: saved.param_groups });
    if (scheduler) scheduler.loadStateDict(sched);
  } catch (e) {
    throw new Error(`Training state ${path}: ${(e as Error).message}`);
  }
  const history = JSON.parse(metadata.history) as History;
  return { history, metadata };
}
