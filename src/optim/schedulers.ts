/**
 * Learning-rate schedulers, as `torch.optim.lr_scheduler`: `StepLR` and
 * `CosineAnnealingLR`, with PyTorch's recursions (each epoch's rate from the previous
 * one's), so a rate changed by hand between epochs carries on as it does in PyTorch. Call
 * `step()` once per epoch, after the epoch's optimizer steps.
 *
 * @module
 */

/** What a scheduler drives: anything with a learning rate (every optimizer here). */
export interface HasLearningRate {
  /** The learning rate the next step uses. */
  lr: number;
}

/** A scheduler's state (PyTorch's names): the epoch count and the initial rate. */
export interface SchedulerStateDict {
  /** Epochs stepped so far. */
  last_epoch: number;
  /** The optimizer's learning rate when the scheduler was made. */
  base_lr: number;
}

/** The shared body of the schedulers: the epoch count and `step()`. */
export abstract class LRScheduler {
  /** Epochs stepped so far (0 after construction, as PyTorch's `last_epoch`). */
  lastEpoch = 0;
  /** The optimizer's learning rate when this scheduler was made. */
  readonly baseLr: number;

  /** A scheduler of `optimizer`'s learning rate, which is epoch 0's. */
  constructor(readonly optimizer: HasLearningRate) {
    if (!(optimizer.lr >= 0)) {
      throw new Error(
        `${new.target.name} needs an optimizer with a learning rate >= 0, got ${optimizer.lr}`,
      );
    }
    this.baseLr = optimizer.lr;
  }

  /** The rate of epoch `lastEpoch`, from the current one (PyTorch's `get_lr`). */
  protected abstract nextLr(): number;

  /** Ends an epoch: sets the optimizer's learning rate to the next epoch's. */
  step(): void {
    this.lastEpoch++;
    this.optimizer.lr = this.nextLr();
  }

  /** The learning rate set by the last `step()` (or the initial one), PyTorch's `get_last_lr()[0]`. */
  getLastLr(): number {
    return this.optimizer.lr;
  }

  /** The epoch count and initial rate, to resume with {@link LRScheduler.loadStateDict}. */
  stateDict(): SchedulerStateDict {
    return { last_epoch: this.lastEpoch, base_lr: this.baseLr };
  }

  /**
   * Resumes at a saved epoch. The optimizer's rate is its own state (restored by its
   * `loadStateDict`); the initial rate must be the saved one.
   */
  loadStateDict(sd: SchedulerStateDict): void {
    if (!Number.isInteger(sd.last_epoch) || sd.last_epoch < 0) {
      throw new Error(
        `${this.constructor.name}: last_epoch must be an integer >= 0, got ${sd.last_epoch}`,
      );
    }
    if (sd.base_lr !== this.baseLr) {
      throw new Error(
        `${this.constructor.name}: saved with an initial learning rate of ${sd.base_lr}, this ` +
          `scheduler starts from ${this.baseLr}: make the optimizer with lr ${sd.base_lr}`,
      );
    }
    this.lastEpoch = sd.last_epoch;
  }
}

/**
 * Multiplies the learning rate by `gamma` every `stepSize` epochs (PyTorch's `StepLR`):
 * lr(e) = lr(e - 1) * gamma when e is a multiple of stepSize, else lr(e - 1); from a
 * constant start, baseLr * gamma^floor(e / stepSize). Default gamma 0.1.
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const opt = new optim.SGD([Tensor.zeros([1], { requiresGrad: true })], { lr: 1 });
 * const sched = new optim.StepLR(opt, 2, { gamma: 0.5 });
 * const lrs = [opt.lr];
 * for (let epoch = 0; epoch < 4; epoch++) {
 *   sched.step();
 *   lrs.push(opt.lr);
 * }
 * assert.deepEqual(lrs, [1, 1, 0.5, 0.5, 0.25]);
 * ```
 */
export class StepLR extends LRScheduler {
  /** The decay factor. */
  readonly gamma: number;

  /** Decays `optimizer`'s rate by `gamma` every `stepSize` epochs. */
  constructor(optimizer: HasLearningRate, readonly stepSize: number, { gamma = 0.1 } = {}) {
    super(optimizer);
    if (!Number.isInteger(stepSize) || stepSize < 1) {
      throw new Error(`StepLR needs a positive integer stepSize, got ${stepSize}`);
    }
    if (!(gamma >= 0)) throw new Error(`StepLR needs gamma >= 0, got ${gamma}`);
    this.gamma = gamma;
  }

  /** The rate for the next epoch, PyTorch's recursive form. */
  protected nextLr(): number {
    const lr = this.optimizer.lr;
    return this.lastEpoch % this.stepSize === 0 ? lr * this.gamma : lr;
  }
}

/**
 * Cosine annealing from the initial rate down to `etaMin` over `tMax` epochs (PyTorch's
 * `CosineAnnealingLR`, without restarts: past tMax the rate climbs back, a cosine of
 * period 2 tMax). From a constant start, lr(e) = etaMin + (baseLr - etaMin)
 * (1 + cos(pi e / tMax)) / 2; computed as PyTorch does, by its recursion
 * lr(e) = etaMin + (lr(e - 1) - etaMin) (1 + cos(pi e / tMax)) / (1 + cos(pi (e - 1) / tMax)),
 * with its special case where the denominator would be 0. Default etaMin 0.
 *
 * @example
 * ```ts
 * import { optim, Tensor } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const opt = new optim.Adam([Tensor.zeros([1], { requiresGrad: true })], { lr: 0.1 });
 * const sched = new optim.CosineAnnealingLR(opt, 4);
 * const lrs = [opt.lr];
 * for (let epoch = 0; epoch < 4; epoch++) {
 *   sched.step();
 *   lrs.push(opt.lr);
 * }
 * assert.deepEqual(lrs.map((v) => v.toFixed(4)), ["0.1000", "0.0854", "0.0500", "0.0146", "0.0000"]);
 * ```
 */
export class CosineAnnealingLR extends LRScheduler {
  /** The lowest rate, reached at epoch tMax. */
  readonly etaMin: number;

  /** Anneals `optimizer`'s rate to `etaMin` over `tMax` epochs. */
  constructor(optimizer: HasLearningRate, readonly tMax: number, { etaMin = 0 } = {}) {
    super(optimizer);
    if (!Number.isInteger(tMax) || tMax < 1) {
      throw new Error(`CosineAnnealingLR needs a positive integer tMax, got ${tMax}`);
    }
    if (!Number.isFinite(etaMin)) {
      throw new Error(`CosineAnnealingLR needs a finite etaMin, got ${etaMin}`);
    }
    this.etaMin = etaMin;
  }

  /** The rate for the next epoch, PyTorch's recursive form. */
  protected nextLr(): number {
    const { lastEpoch: e, tMax: T, etaMin, baseLr } = this;
    const lr = this.optimizer.lr;
    const period = 2 * T;
    if ((((e - 1 - T) % period) + period) % period === 0) {
      // just past the minimum, where the recursion would divide by 1 + cos(pi) = 0
      return lr + (baseLr - etaMin) * (1 - Math.cos(Math.PI / T)) / 2;
    }
    return (1 + Math.cos(Math.PI * e / T)) / (1 + Math.cos(Math.PI * (e - 1) / T)) *
        (lr - etaMin) + etaMin;
  }
}
