/**
 * Printing that survives a notebook: Deno's Jupyter kernel forwards `console.log` output
 * asynchronously, and a line written at the end of a cell can arrive after the cell is
 * done, in the next cell's output or nowhere. {@link print} sends the text as a display
 * message instead, in order with the cell's charts; outside Jupyter it is `console.log`.
 *
 * @module
 */

/** The symbol Deno's kernel looks for on a value that knows how to display itself. */
const DISPLAY = Symbol.for("Jupyter.display");

/** A Jupyter MIME bundle: MIME type to content. */
export type MimeBundle = Record<string, string>;

/**
 * Display metadata per MIME type, as Jupyter's `display_data` messages carry it: for an
 * image, `{ width, height }` in CSS pixels, the size it is shown at (a PNG drawn at twice its
 * size for sharp lines would otherwise show twice as large).
 */
export type MimeMetadata = Record<string, Record<string, unknown>>;

/** What bnlab uses of Deno's Jupyter API. */
export interface JupyterApi {
  /** Shows a MIME bundle; with `display_id` and `update`, replaces an earlier one. */
  display(
    bundle: MimeBundle,
    opts: { raw: boolean; display_id?: string; update?: boolean },
  ): unknown;
  /** Sends a message on the kernel's IOPub channel (how display metadata gets through). */
  broadcast?(msgType: string, content: Record<string, unknown>): unknown;
}

/** What bnlab uses of the `Deno` global, which a page does not have. */
const deno = (globalThis as { Deno?: { jupyter?: JupyterApi; inspect?(v: unknown): string } })
  .Deno;

/** Deno's Jupyter API, or undefined outside a Jupyter kernel (and in a browser). */
export function jupyter(): JupyterApi | undefined {
  try {
    return deno?.jupyter; // throws in Deno outside Jupyter
  } catch {
    return undefined;
  }
}

/** Displays not yet taken by the kernel (see {@link flushOutput}). */
const inFlight = new Set<Promise<unknown>>();
/** The first display the kernel refused since the last {@link flushOutput}. */
let refused: unknown;
/** The last display sent: the next one goes after it. */
let last: Promise<unknown> = Promise.resolve();
/** When each recent display was sent (performance.now()) and its size in bytes. */
let recent: { at: number; bytes: number }[] = [];

/**
 * Sends a MIME bundle to the notebook (nothing outside Jupyter) and tracks it until the
 * kernel has taken it, so that {@link flushOutput} can wait for it. With `metadata`, the
 * message carries it (Deno's `display` sends none): a `display_data` or, with `update`, an
 * `update_display_data` message sent as `display` would send it, plus the metadata.
 */
export function sendDisplay(
  bundle: MimeBundle | Promise<MimeBundle>,
  opts: { display_id?: string; update?: boolean; metadata?: MimeMetadata } = {},
): void {
  const j = jupyter();
  if (!j) return;
  const now = performance.now();
  recent = recent.filter((r) => r.at > now - 1000);
  const { metadata, ...display } = opts;
  const send = (data: MimeBundle) => {
    recent.push({ at: now, bytes: Object.values(data).reduce((n, v) => n + v.length, 0) });
    return metadata && j.broadcast
      ? j.broadcast(display.update ? "update_display_data" : "display_data", {
        data,
        metadata,
        transient: display.display_id ? { display_id: display.display_id } : {},
      })
      : j.display(data, { raw: true, ...display });
  };
  // In the order sent, also when a bundle is still being made (a chart's PNG).
  const sent: Promise<unknown> = last
    .then(() => bundle)
    .then(send)
    .catch((e) => refused ??= e) // reported by the next flushOutput, never lost
    .finally(() => inFlight.delete(sent));
  inFlight.add(sent);
  last = sent;
}

/**
 * Waits until the kernel has sent every output displayed so far. Deno's kernel (2.x) can
 * report a cell finished (its `idle` status) while outputs displayed before the end are
 * still queued in its socket, which it writes while the cell's event loop runs; a live front
 * end shows them anyway, but `jupyter nbconvert --execute` (which saves the notebooks'
 * outputs) drops what arrives after `idle`. Measured here: after a cell with a live chart, a
 * 450 KB chart and the line printed after it both arrived after `idle` when the cell ended at
 * once, and before it when the cell waited 50 ms. So this waits for the kernel to take each
 * output, then 50 ms plus 1 ms per 2 KB displayed in the last second, with the event loop
 * running. `LiveChart.finish()`, `LiveCurves.finish()` and `show()` end with this, so a
 * cell whose last line awaits one of them keeps all its outputs; a cell that ends with
 * `print` after asynchronous work can end with `await flushOutput()`. Throws if the kernel
 * refused one of those outputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flushOutput, print } from "../../mod.ts";
 * print("done");
 * await assert.doesNotReject(flushOutput()); // outside Jupyter: nothing to wait for
 * ```
 */
export async function flushOutput(): Promise<void> {
  if (!jupyter()) return; // console.log is synchronous: nothing to wait for
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  const now = performance.now();
  const bytes = recent.filter((r) => r.at > now - 1000).reduce((n, r) => n + r.bytes, 0);
  recent = [];
  await new Promise((resolve) => setTimeout(resolve, 50 + bytes / 2000));
  if (refused !== undefined) {
    const e = refused;
    refused = undefined;
    throw new Error(`the Jupyter kernel refused an output: ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  }
}

/**
 * Prints `values` (joined by spaces, like `console.log`) as one line of the notebook's
 * output, in order with charts and tables; `console.log` outside Jupyter. A single value
 * that displays itself (a `table()` or a `Chart` from plot.ts) is shown in its rich form, anywhere in a cell.
 * The text is sent asynchronously: a cell whose last output is a `print` should end with
 * `await flushOutput()`, or `jupyter nbconvert --execute` may drop the last lines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { print } from "../../mod.ts";
 * const lines: string[] = [], log = console.log;
 * console.log = (line: string) => lines.push(line); // outside Jupyter, print is console.log
 * print("test accuracy", 0.861);
 * console.log = log;
 * assert.deepEqual(lines, ["test accuracy 0.861"]);
 * ```
 */
export function print(...values: unknown[]): void {
  const j = jupyter();
  const [only] = values;
  if (values.length === 1 && typeof only === "object" && only !== null && DISPLAY in only) {
    // A displayable (a table, a chart): its rich form in a notebook, text outside.
    const bundle = (only as { [DISPLAY](): MimeBundle | Promise<MimeBundle> })[DISPLAY]();
    if (j) sendDisplay(bundle);
    else {console.log(
        bundle instanceof Promise ? String(only) : bundle["text/plain"] ?? String(only),
      );}
    return;
  }
  const inspect = deno?.inspect ?? String; // String in a browser
  const text = values.map((v) => (typeof v === "string" ? v : inspect(v))).join(" ");
  if (j) sendDisplay({ "text/plain": text });
  else console.log(text);
}
