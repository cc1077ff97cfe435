/**
 * Downloads a file safely: streamed to `name.<hex>.part`, checked (length and MD5), then
 * renamed.
 *
 * A file that exists under its final name is therefore always complete and verified; an
 * interrupted or corrupt download leaves nothing behind (the `.part` file is removed). The
 * `.part` file is created exclusively under an unpredictable name, so a symlink planted
 * beside `name` is never written through.
 * MD5 comes from `node:crypto` (WebCrypto has no MD5); it is only used to match the
 * checksums a dataset publishes, not for security.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Called as bytes arrive: `total` is the Content-Length, or 0 if the server sent none. */
export type DownloadProgress = (received: number, total: number) => void;

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected MD5 of the file, as 32 hex digits; checked before the file is kept. */
  md5?: string;
  /** Progress callback. */
  onProgress?: DownloadProgress;
  /** Aborts the download. */
  signal?: AbortSignal;
}

/**
 * The MD5 digest of `bytes` as 32 lowercase hex digits.
 */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/**
 * Downloads `url` to the file `dest`, via an exclusively created `dest.<hex>.part`,
 * verifying length and MD5.
 *
 * Errors name the URL and the file: an HTTP error, a connection that breaks off, a body
 * shorter or longer than its Content-Length, or an MD5 mismatch. On any error the
 * `.part` file is removed and `dest` is left untouched.
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<void> {
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const part = `${dest}.${hex}.part`;
  const fail = async (why: string): Promise<never> => {
    await Deno.remove(part).catch(() => {});
    throw new Error(`Download of ${url} to ${dest} failed: ${why}`);
  };
  let res: Response;
  try {
    res = await fetch(url, { signal: opts.signal });
  } catch (e) {
    return fail((e as Error).message);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return fail(`HTTP ${res.status} ${res.statusText}`);
  }
  // With a Content-Encoding, fetch decodes the body and Content-Length no longer applies.
  const total = res.headers.has("content-encoding")
    ? 0
    : Number(res.headers.get("content-length") ?? 0) || 0;
  const hash = createHash("md5");
  let received = 0;
  const file = await Deno.open(part, { write: true, createNew: true, mode: 0o644 });
  try {
    for await (const chunk of res.body) {
      hash.update(chunk);
      received += chunk.length;
      for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
      opts.onProgress?.(received, total);
    }
  } catch (e) {
    file.close();
    return fail(`the connection broke off after ${received} bytes (${(e as Error).message})`);
  }
  file.close();
  if (total && received !== total) {
    return fail(`received ${received} bytes but the server announced ${total} (truncated)`);
  }
  const md5 = hash.digest("hex");
  if (opts.md5 && md5 !== opts.md5.toLowerCase()) {
    return fail(
      `MD5 checksum mismatch: got ${md5}, expected ${opts.md5} (corrupt or changed file; ` +
        `try again, or check the URL)`,
    );
  }
  await Deno.rename(part, dest);
}
