/**
 * The GPU runtime's errors, public as `gpu.GPUValidationError` and `gpu.GPUAllocationError`.
 *
 * @module
 */

/** A WebGPU validation or out-of-memory error turned into an exception. */
export class GPUValidationError extends Error {
  /** The errors WebGPU reported, one per line of the message. */
  constructor(messages: string[]) {
    super(`WebGPU reported ${messages.length} error(s):\n- ${messages.join("\n- ")}`);
    this.name = "GPUValidationError";
  }
}

/**
 * A request for more GPU memory in one buffer than the device allows, refused where it
 * happens (WebGPU would otherwise report it at some later, unrelated read).
 */
export class GPUAllocationError extends Error {
  /** Bytes asked for. */
  readonly bytes: number;
  /** The device's limit for one buffer bound to a kernel. */
  readonly limit: number;
  /** `bytes` and `limit` in the message, with what to do. */
  constructor(bytes: number, limit: number, what: string) {
    super(
      `Cannot allocate ${what} of ${formatBytes(bytes)}: this device's largest buffer a kernel ` +
        `can bind is ${formatBytes(limit)} (maxStorageBufferBindingSize). Use smaller tensors ` +
        "(a smaller batch, or split the work)",
    );
    this.name = "GPUAllocationError";
    this.bytes = bytes;
    this.limit = limit;
  }
}

function formatBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${i ? b.toFixed(1) : b} ${units[i]}`;
}
