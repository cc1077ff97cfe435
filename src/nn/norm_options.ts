/**
 * The checks that every normalization layer makes of its `eps` and `momentum` when it is
 * constructed. `eps <= 0` (or NaN) divides by sqrt(0) or sqrt of a negative variance: every
 * output NaN. `momentum` outside [0, 1] makes the running statistics extrapolate instead of
 * average (`running = (1 - m) running + m batch` with m = 2 flips the sign of the old
 * estimate each step): they drift off or overflow, and eval mode is silently wrong.
 *
 * @module
 */

/**
 * Throws unless `eps` is a finite number > 0 and `momentum` (when given; null means the
 * cumulative average) is a number in [0, 1]; the message names the layer and the value.
 */
export function checkNormOptions(layer: string, eps: number, momentum?: number | null): void {
  if (!(typeof eps === "number" && eps > 0 && Number.isFinite(eps))) {
    throw new RangeError(
      `${layer}: eps must be a finite number > 0 (it keeps sqrt(var + eps) away from 0), ` +
        `got ${eps}; the usual value is 1e-5`,
    );
  }
  if (momentum === undefined || momentum === null) return;
  if (!(typeof momentum === "number" && momentum >= 0 && momentum <= 1)) {
    throw new RangeError(
      `${layer}: momentum must be a number in [0, 1] (the weight of each batch in the ` +
        `running statistics), or null for the cumulative average; got ${momentum}. ` +
        "The usual value is 0.1 (PyTorch's convention: Keras' 0.9 is 1 - momentum here)",
    );
  }
}
