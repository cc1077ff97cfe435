/**
 * A text entry (a PNG `tEXt` chunk: keyword, a zero byte, Latin-1 text) added to a PNG
 * file, so that a chart carries the id of the run that drew it.
 *
 * @module
 */

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO 3309, as PNG uses) of `bytes`. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Returns `png` with a `tEXt` chunk `keyword` = `text` inserted after its header chunk
 * (`IHDR`). Both must be printable ASCII, the keyword 1 to 79 characters.
 */
export function withPngText(png: Uint8Array, keyword: string, text: string): Uint8Array {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 33 || sig.some((b, i) => png[i] !== b)) {
    throw new Error(`withPngText: not a PNG file (${png.length} bytes, no PNG signature)`);
  }
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword) || !/^[\x20-\x7e]*$/.test(text)) {
    throw new Error(`withPngText: keyword and text must be printable ASCII, got ${keyword}`);
  }
  const body = new TextEncoder().encode(`tEXt${keyword}\0${text}`);
  const chunk = new Uint8Array(4 + body.length + 4);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length - 4);
  chunk.set(body, 4);
  view.setUint32(4 + body.length, crc32(body));
  const ihdrEnd = 8 + 4 + 4 + 13 + 4; // signature, then IHDR: length, type, 13 bytes, CRC
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd));
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return out;
}

/**
 * The `tEXt` entries of a PNG file by keyword (chunks whose CRC does not match are left out).
 */
export function pngTexts(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at + 12 <= png.length;) {
    const n = view.getUint32(at);
    const body = png.subarray(at + 4, at + 8 + n);
    if (at + 12 + n > png.length) break;
    const type = new TextDecoder().decode(body.subarray(0, 4));
    if (type === "tEXt" && view.getUint32(at + 8 + n) === crc32(body)) {
      const [k, v] = new TextDecoder("latin1").decode(body.subarray(4)).split("\0");
      out[k] = v ?? "";
    }
    at += 12 + n;
  }
  return out;
}
