/**
 * Neural-network modules, PyTorch-shaped: `Module` and the layers, with PyTorch's names,
 * defaults and state-dict keys; `functional` holds their stateless forms (also exported
 * as `F`), `init` the parameter initialisers.
 *
 * Every file here is re-exported whole (`export *`), so that `deno doc` lists the namespace's
 * members: what a file exports is public; helpers that are not live in `fusion.ts`.
 *
 * @module
 */
export * from "./module.ts";
export * from "./batch_norm.ts";
export * from "./layer_norm.ts";
export * from "./group_norm.ts";
export * from "./ghost_batch_norm.ts";
export * from "./conv.ts";
export * from "./pooling.ts";
export * from "./linear.ts";
export * from "./activation.ts";
export * from "./flatten.ts";
export * from "./channel_noise.ts";
export * from "./dropout.ts";
export * from "./sequential.ts";
export * from "./loss.ts";
export * as functional from "./functional.ts";
export * as init from "./init.ts";
