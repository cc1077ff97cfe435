/**
 * Central differences, the tests' independent reference for gradients.
 *
 * @module
 */

/**
 * The gradient of `loss` with respect to each element of `x` by central differences,
 * `(loss(x + h e_i) - loss(x - h e_i)) / 2h`, in float64. `x` is perturbed in place, one
 * element at a time, and restored; `loss` reads it.
 */
export function centralDiff(x: Float64Array, loss: () => number, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + h;
    const lp = loss();
    x[i] = v - h;
    const lm = loss();
    x[i] = v;
    grad[i] = (lp - lm) / (2 * h);
  }
  return grad;
}
