/**
 * Printing that survives a notebook: Deno's Jupyter kernel forwards `console.log` output
 * asynchronously, and a line written at the end of a cell can arrive after the cell is
 * done, in the next cell's output or nowhere. {@link print} sends the text as a display
 * message instead, in order with the cell's charts; outside Jupyter it is `console.log`.
 *
 * @module
 */

/** A Jupyter MIME bundle: MIME type to content. */
export type MimeBundle = Record<string, string>;

/** What bnlab uses of Deno's Jupyter API. */
export interface JupyterApi {
  /** Shows a MIME bundle; with `display_id` and `update`, replaces an earlier one. */
  display(
    bundle: MimeBundle,
    opts: { raw: boolean; display_id?: string; update?: boolean },
  ): unknown;
}

/** Deno's Jupyter API, or undefined outside a Jupyter kernel. */
export function jupyter(): JupyterApi | undefined {
  try {
    return (Deno as unknown as { jupyter?: JupyterApi }).jupyter; // throws outside Jupyter
  } catch {
    return undefined;
  }
}

/**
 * Prints `values` (joined by spaces, like `console.log`) as one line of the notebook's
 * output, in order with charts and tables; `console.log` outside Jupyter.
 *
 * @example
 * ```ts
 * import { print } from "./print.ts";
 * print("test accuracy", 0.861); // test accuracy 0.861
 * ```
 */
export function print(...values: unknown[]): void {
  const text = values.map((v) => (typeof v === "string" ? v : Deno.inspect(v))).join(" ");
  const j = jupyter();
  if (j) j.display({ "text/plain": text }, { raw: true });
  else console.log(text);
}
