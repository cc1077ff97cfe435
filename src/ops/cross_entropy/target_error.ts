/**
 * The error of a cross-entropy target that is not a class index, in a file of its own so that
 * `F` (src/nn/functional.ts) can re-export it whole.
 *
 * @module
 */

/**
 * A target of `crossEntropy` that is not a class index: PyTorch's "Target 10 is out of
 * bounds", with the row. Thrown when the loss is read back (`item()`, `toArray()`), which
 * reads the forward kernel's finding in the same host wait; the loss itself is NaN.
 */
export class TargetError extends RangeError {
  /** The first row whose target is invalid. */
  readonly index: number;
  /** Its target. */
  readonly target: number;
  /** The number of classes (the logits' columns). */
  readonly classes: number;
  /** The row, its target, the number of classes and the ignored index in the message. */
  constructor(index: number, target: number, classes: number, ignoreIndex = -100) {
    super(
      `crossEntropy: target[${index}] = ${target} is not a class index: targets must be ` +
        `integers in [0, ${classes}) (one per row of the logits, which have ${classes} ` +
        `classes), or the ignoreIndex ${ignoreIndex}; check the labels, or the number of ` +
        "classes of the model's last layer",
    );
    this.name = "TargetError";
    this.index = index;
    this.target = target;
    this.classes = classes;
  }
}
