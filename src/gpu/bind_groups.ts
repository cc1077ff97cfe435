/**
 * Bind groups cached by pipeline and bound ranges, so that a launch that binds what an
 * earlier one bound reuses its bind group: a training step binds the same pool buffers at
 * the same uniform-arena offsets most of the time, and creating a bind group took ~40 us of
 * the JS thread per launch on llvmpipe (where that thread shares the cores with the
 * previous submission's work). The least recently used entry goes past
 * {@link BIND_GROUP_CACHE}'s limit. A destroyed buffer's entries are never hit again: its
 * object can only come back in a launch that is an error anyway.
 *
 * @module
 */
import { deviceSync } from "./device.ts";

/**
 * Most bind groups kept (tests lower it). `fit` on the lecture's LeNet+BN over the full
 * data (235 steps and 40 evaluation batches an epoch) met 1,526 distinct ones in its first
 * epoch, then 1,029 and 607 new ones (the pool hands buffers back in a varying order: 3-5%
 * of launches). On 6,000 examples, 1024 kept oldest-out-first re-created 665 in the third
 * epoch, where 4096 kept least-recently-used created 209.
 */
export const BIND_GROUP_CACHE = { limit: 4096 };

const groups = new Map<string, GPUBindGroup>(); // least recently used first
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
const ids = new WeakMap<object, number>();
let nextId = 0;
let created = 0;

function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, id = nextId++);
  return id;
}

/**
 * The bind group of `pipe`'s group 0 with binding i = `bound[i]` (none where it is null): the
 * cached one for the same pipeline and ranges, or a new one.
 */
export function bindGroup(
  label: string,
  pipe: GPUComputePipeline,
  bound: (GPUBufferBinding | null)[],
): GPUBindGroup {
  let key = `${idOf(pipe)}`;
  for (const b of bound) {
    key += b ? ` ${idOf(b.buffer)}@${b.offset ?? 0}+${b.size ?? "all"}` : " -";
  }
  let group = groups.get(key);
  if (group) {
    groups.delete(key); // re-inserted last: the most recently used
  } else {
    let layout = layouts.get(pipe);
    if (!layout) layouts.set(pipe, layout = pipe.getBindGroupLayout(0));
    group = deviceSync().createBindGroup({
      label,
      layout,
      entries: bound.flatMap((resource, binding) => resource ? [{ binding, resource }] : []),
    });
    created++;
    while (groups.size >= BIND_GROUP_CACHE.limit) groups.delete(groups.keys().next().value!);
  }
  groups.set(key, group);
  return group;
}

/** Bind groups created so far (a reused one is not counted again). */
export function bindGroupsCreated(): number {
  return created;
}
