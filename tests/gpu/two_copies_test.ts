/**
 * A second copy of bnlab in one process (the tree imported from another URL) is refused
 * at import, naming both URLs (issue 25, point 10), instead of acquiring a second device
 * whose tensors break the first copy's.
 */
import { match, rejects } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { Tensor } from "../../mod.ts";
import { assertClose } from "../assert_close.ts";

const root = new URL("../../", import.meta.url);

gpuTest("a second copy of the library, from another URL, is refused at import", async () => {
  const x = Tensor.from([1, 2, 3, 4]);
  // The tree's src/ and entry points copied to a temporary folder: another URL.
  const dir = await Deno.makeTempDir({ prefix: "bnlab-copy-" });
  try {
    const r = await new Deno.Command("cp", {
      args: ["-r", `${root.pathname}src`, `${root.pathname}mod.ts`, dir],
    }).output();
    if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
    const copy = new URL(`file://${dir}/mod.ts`).href;
    await rejects(import(copy), (e: Error) => {
      match(e.message, /bnlab was imported a second time in this process/);
      match(
        e.message,
        new RegExp(`from file://${dir}/, while the copy from ${root.href} is loaded`),
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // The first copy is unharmed: a tensor made before still reads back.
  assertClose(await x.toArray(), [1, 2, 3, 4], { atol: 0, rtol: 0 });
  assertClose(await Tensor.from([5]).add(x).toArray(), [6, 7, 8, 9], { atol: 0, rtol: 0 });
});
