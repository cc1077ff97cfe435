/**
 * Every op's schedules, by the prefix of its launch labels: the plain one first, then the
 * tuned ones. An op with a single schedule (elementwise, reduce, layer norm, ...) is not
 * listed. The tests run each schedule against the float64 references, and the browser suite
 * requires each to have run in Chromium (a launch labelled `op.entry@schedule`).
 *
 * @module
 */
import type { Schedule } from "../gpu/profile.ts";
import { BATCH_NORM_SCHEDULES } from "./batch_norm/batch_norm.ts";
import { BLOCK_NORM_SCHEDULES } from "./block_norm/block_norm.ts";
import { CONV2D_SCHEDULES } from "./conv2d/conv2d.ts";
import { LINEAR_SCHEDULES } from "./linear/linear.ts";
import { POOL_SCHEDULES } from "./pool/pool.ts";

/**
 * The schedules of each op with more than one, keyed by its label prefix.
 */
export const SCHEDULES: Readonly<Record<string, readonly Schedule[]>> = {
  batch_norm: BATCH_NORM_SCHEDULES,
  block_norm: BLOCK_NORM_SCHEDULES,
  conv2d: CONV2D_SCHEDULES,
  linear: LINEAR_SCHEDULES,
  pool: POOL_SCHEDULES,
};
