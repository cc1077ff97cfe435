// train.ts acquires the WebGPU device when imported, as mod.ts does: a program that imports only
// train.ts can make a DataLoader (it failed with "The GPU device is not initialised yet").
import { equal } from "node:assert/strict";

Deno.test("a program importing only train.ts makes a DataLoader and reads a batch", async () => {
  const train = new URL("../../train.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { DataLoader } from "${train}";\n` +
      `const n = 4, images = new Uint8Array(n * 784).fill(255), labels = Uint8Array.of(0, 1, 2, 3);\n` +
      `using loader = new DataLoader({ images, labels, n, rows: 28, cols: 28 }, { batchSize: 2, shuffle: false });\n` +
      `for await (const { x, y } of loader.batches(0)) {\n` +
      `  console.log(x.shape.join("x"), (await x.toArray())[0], [...await y.toArray()].join());\n` +
      `  break;\n` +
      `}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 0, stderr);
  equal(new TextDecoder().decode(out.stdout).trim(), "2x1x28x28 1 0,1");
});
