/**
 * Optimizers.
 *
 * @module
 */
export { SGD, type SGDOptions } from "./sgd.ts";
