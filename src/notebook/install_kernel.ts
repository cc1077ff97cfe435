/**
 * Installs Deno's Jupyter kernel spec with `"interrupt_mode": "message"`, so that Kernel >
 * Interrupt stops the running cell and keeps the kernel (and every variable). Without it,
 * Jupyter interrupts by sending SIGINT, which ends Deno's kernel. `deno jupyter --install`
 * writes no `interrupt_mode`; this runs it, then adds the key to the kernel.json it wrote.
 *
 *     deno task jupyter:install            # the kernel spec "deno"
 *     deno task jupyter:install --name X   # another name
 *
 * @module
 */

/**
 * Runs `deno jupyter --install --force` (with `--name name`) and sets
 * `"interrupt_mode": "message"` in the kernel.json it wrote; returns that file's path.
 */
export async function installKernel(name = "deno"): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["jupyter", "--install", "--force", "--name", name],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const dir = out.match(/installed successfully at (.+?)\.?\s*$/m)?.[1];
  if (!r.success || !dir) {
    throw new Error(`\`deno jupyter --install\` failed (exit ${r.code}):\n${out.trim()}`);
  }
  const file = `${dir}/kernel.json`;
  const spec = JSON.parse(await Deno.readTextFile(file));
  spec.interrupt_mode = "message";
  await Deno.writeTextFile(file, JSON.stringify(spec, null, 2) + "\n");
  return file;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--name");
  const file = await installKernel(i >= 0 ? Deno.args[i + 1] : undefined);
  console.log(`installed the Jupyter kernel spec ${file} (interrupt_mode "message")`);
}
