/**
 * Neural-network modules, PyTorch-shaped.
 *
 * @module
 */
export { type HostTensor, Module, type StateDict } from "./module.ts";
