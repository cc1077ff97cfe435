/**
 * Fixed buffers kept per device and made on first use: `deviceBuffers(label, size, usage)`
 * gives a function whose `i`-th call result is the same buffer for as long as the device
 * lives (the placeholders of unused bindings, the uniform scratch buffers).
 *
 * @module
 */
import { deviceSync } from "./device.ts";

/** `(i) => the i-th buffer` of `size` bytes and `usage`, labelled `${label} ${i}`. */
export function deviceBuffers(
  label: string,
  size: number,
  usage: GPUBufferUsageFlags,
): (i: number) => GPUBuffer {
  const made = new WeakMap<GPUDevice, GPUBuffer[]>();
  return (i) => {
    const device = deviceSync();
    let list = made.get(device);
    if (!list) made.set(device, list = []);
    while (list.length <= i) {
      list.push(device.createBuffer({ label: `${label} ${list.length}`, size, usage }));
    }
    return list[i];
  };
}
