/**
 * A terminal progress bar for downloads and training epochs.
 *
 * On a TTY the bar redraws in place (`\r`, then clear to end of line) at most ~10 times a
 * second; when stderr is not a TTY (CI logs, pipes) it prints a plain line every few
 * seconds instead, so logs stay readable. `done()` always prints the final line.
 *
 * @module
 */

/** Where a {@link ProgressBar} writes: `Deno.stderr` or a fake writer in tests. */
export interface ProgressWriter {
  /** Writes bytes synchronously, like `Deno.stderr.writeSync`. */
  writeSync(p: Uint8Array): number;
}

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Text before the bar, e.g. `"epoch 3"`. Default none. */
  label?: string;
  /** Unit of the count: `"B"` formats bytes (KiB, MiB); anything else is a plain count. Default `"it"`. */
  unit?: string;
  /** Bar width in characters. Default 24. */
  width?: number;
  /** Output. Default `Deno.stderr`. */
  writer?: ProgressWriter;
  /** Redraw in place (TTY) or print plain lines. Default: whether `writer` is a terminal. */
  tty?: boolean;
  /** Clock in milliseconds, for tests. Default `performance.now`. */
  now?: () => number;
  /** Minimum time between TTY redraws, ms. Default 100. */
  redrawMs?: number;
  /** Minimum time between plain (non-TTY) lines, ms. Default 5000. */
  lineMs?: number;
}

const encoder = new TextEncoder();

/** `12,345` (en-US grouping, so output does not depend on the locale). */
function count(v: number): string {
  return Math.round(v).toLocaleString("en-US");
}

/** `1.5 KiB`, `26.4 MiB`: binary prefixes, three significant digits. */
function bytes(v: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0
    ? `${Math.round(v)} B`
    : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** `0:07`, `12:05`, `1:02:03`. */
function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/**
 * A progress bar with percentage, rate, ETA and a free-text suffix (e.g. the running loss).
 *
 * Line layout: `label [########--------]  45% 27,000/60,000 ex 4,512 ex/s ETA 0:07 loss 0.51`.
 * With an unknown total (`total` 0) the bar, percentage and ETA are left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressBar } from "../../train.ts";
 * const lines: string[] = [];
 * const writer = { writeSync: (p: Uint8Array) => (lines.push(new TextDecoder().decode(p)), p.length) };
 * let t = 0;
 * const bar = new ProgressBar(200, { label: "epoch 1", unit: "ex", writer, tty: false, now: () => t });
 * t = 2000;
 * bar.update(100, "loss 0.693");
 * assert.equal(bar.format(), "epoch 1 [############------------]  50% 100/200 ex 50 ex/s ETA 0:02 loss 0.693");
 * t = 4000;
 * bar.update(200);
 * bar.done("loss 0.412");
 * assert.ok(lines.at(-1)!.includes("100% 200/200 ex"), lines.at(-1));
 * ```
 */
export class ProgressBar {
  /** Total count (0 if unknown). */
  readonly total: number;
  /** Count done so far. */
  current = 0;
  /** Free text after the numbers. */
  suffix = "";
  #label: string;
  #unit: string;
  #width: number;
  #writer: ProgressWriter;
  #tty: boolean;
  #now: () => number;
  #redrawMs: number;
  #lineMs: number;
  #start: number;
  #lastDraw = -Infinity;
  #finished = false;

  /** A bar for `total` units (0 if unknown); the clock starts now. */
  constructor(total: number, opts: ProgressOptions = {}) {
    if (!(total >= 0) || !Number.isFinite(total)) {
      throw new Error(
        `ProgressBar total must be a finite number >= 0 (0 if unknown), got ${total}`,
      );
    }
    this.total = total;
    this.#label = opts.label ?? "";
    this.#unit = opts.unit ?? "it";
    this.#width = opts.width ?? 24;
    this.#writer = opts.writer ?? Deno.stderr;
    this.#tty = opts.tty ?? (this.#writer === Deno.stderr && Deno.stderr.isTerminal());
    this.#now = opts.now ?? (() => performance.now());
    this.#redrawMs = opts.redrawMs ?? 100;
    this.#lineMs = opts.lineMs ?? 5000;
    this.#start = this.#now();
    // A plain log's first line comes after lineMs; a TTY shows the empty bar at once.
    if (!this.#tty) this.#lastDraw = this.#start;
  }

  /** Sets the count done (and optionally the suffix), redrawing if it is time to. */
  update(current: number, suffix?: string): void {
    this.current = current;
    if (suffix !== undefined) this.suffix = suffix;
    const t = this.#now();
    if (t - this.#lastDraw >= (this.#tty ? this.#redrawMs : this.#lineMs)) {
      this.#lastDraw = t;
      this.#write(this.#tty ? `\r${this.format()}\x1b[K` : `${this.format()}\n`);
    }
  }

  /** Adds `n` to the count done. */
  tick(n = 1, suffix?: string): void {
    this.update(this.current + n, suffix);
  }

  /** The current line, without control characters. */
  format(): string {
    const elapsed = (this.#now() - this.#start) / 1000;
    const rate = elapsed > 0 ? this.current / elapsed : 0;
    const isBytes = this.#unit === "B";
    const num = isBytes ? bytes : count;
    const parts: string[] = [];
    if (this.#label) parts.push(this.#label);
    if (this.total > 0) {
      const frac = Math.min(1, this.current / this.total);
      const filled = Math.floor(frac * this.#width);
      parts.push(`[${"#".repeat(filled)}${"-".repeat(this.#width - filled)}]`);
      parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`);
      parts.push(
        isBytes
          ? `${bytes(this.current)}/${bytes(this.total)}`
          : `${count(this.current)}/${count(this.total)} ${this.#unit}`,
      );
    } else parts.push(isBytes ? bytes(this.current) : `${count(this.current)} ${this.#unit}`);
    if (elapsed > 0) parts.push(`${num(rate)}${isBytes ? "" : ` ${this.#unit}`}/s`);
    if (this.#finished) parts.push(`in ${duration(elapsed)}`);
    else if (this.total > 0 && rate > 0) {
      parts.push(`ETA ${duration((this.total - this.current) / rate)}`);
    }
    if (this.suffix) parts.push(this.suffix);
    return parts.join(" ");
  }

  /** Prints the final line (elapsed time instead of ETA) and ends it with a newline. */
  done(suffix?: string): void {
    if (this.#finished) return;
    if (suffix !== undefined) this.suffix = suffix;
    this.#finished = true;
    this.#write(this.#tty ? `\r${this.format()}\x1b[K\n` : `${this.format()}\n`);
  }

  /**
   * Ends the bar without a final line (after an error, say), so that what is printed next
   * starts on a line of its own. Idempotent; `done()` after it does nothing.
   */
  stop(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#tty && this.#lastDraw > -Infinity) this.#write("\n");
  }

  #write(s: string): void {
    const b = encoder.encode(s);
    let off = 0;
    while (off < b.length) off += this.#writer.writeSync(b.subarray(off));
  }
}
