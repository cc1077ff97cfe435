/**
 * Finding PyTorch for the benchmarks that run it as a peer (`deno task bench:compare`,
 * `bench/train/train_bench.ts`): the first python3 that imports torch. PyTorch is never a
 * dependency of bnlab; on Debian 12, `apt-get install python3-torch` gives 1.13 (CPU).
 *
 * @module
 */

/**
 * The first of `$BNLAB_PYTHON`, `/usr/bin/python3` and `python3` that imports torch, or why
 * there is none (each candidate and what went wrong, then the fix).
 */
export async function findTorch(): Promise<{ python: string } | { absent: string }> {
  const tried: string[] = [];
  const candidates = [Deno.env.get("BNLAB_PYTHON"), "/usr/bin/python3", "python3"];
  for (const python of candidates.filter((c): c is string => !!c)) {
    try {
      const r = await new Deno.Command(python, { args: ["-c", "import torch"], stderr: "null" })
        .output();
      if (r.success) return { python };
      tried.push(`${python}: no torch`);
    } catch {
      tried.push(`${python}: not found`);
    }
  }
  return { absent: `no python3 with torch (${tried.join("; ")}); apt-get install python3-torch` };
}
