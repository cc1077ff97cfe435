// A process that uses the GPU prints no `error:` lines about XDG_RUNTIME_DIR when the
// variable is unset (as for root and in CI), and its environment stays as it was.
import { equal } from "node:assert/strict";

Deno.test("WebGPU starts without XDG_RUNTIME_DIR noise, and the environment is left as it was", async () => {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const env = { ...Deno.env.toObject() };
  delete env.XDG_RUNTIME_DIR;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { Tensor } from "${mod}";\n` +
      `console.log(JSON.stringify([...await Tensor.from([1, 2]).add(1).toArray()]), ` +
      `Deno.env.get("XDG_RUNTIME_DIR") ?? "unset");`,
    ],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 0, stderr);
  equal(new TextDecoder().decode(out.stdout).trim(), "[2,3] unset");
  equal(stderr.match(/.*XDG_RUNTIME_DIR.*/g), null, stderr);
});
