// The README's command that serves the notebooks, run as written (on a free loopback port,
// with a token of our own): it must serve a notebook from notebooks/ and offer the Deno
// kernel. Needs Debian's Jupyter (jupyter-notebook) and the Deno kernel spec, as
// tests/notebooks.sh does.
import { equal, ok } from "node:assert/strict";

const root = new URL("../../", import.meta.url);

/** The command in the README's fenced block that starts with `jupyter notebook`. */
async function readmeCommand(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const line = readme.split("\n").find((l) => l.startsWith("jupyter notebook "));
  ok(line, "README.md gives no line starting with `jupyter notebook ` to serve the notebooks");
  return line.split(/\s+/).filter(Boolean);
}

/** A port nobody listens on now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

Deno.test("the README's jupyter command serves the notebooks and offers the Deno kernel", async () => {
  const [, ...args] = await readmeCommand(); // "jupyter" is Debian's /usr/bin/jupyter
  const port = freePort();
  const token = crypto.randomUUID().replaceAll("-", "");
  // The README binds the server to this machine only; its --port, if any, is replaced and the
  // token is ours.
  ok(
    args.join(" ").match(/--ip[= ]127\.0\.0\.1\b/),
    `the README's command does not bind the server to 127.0.0.1: ${args.join(" ")}`,
  );
  const withoutPort = args.filter((a, i) => !a.startsWith("--port") && args[i - 1] !== "--port");
  const child = new Deno.Command("/usr/bin/jupyter", {
    args: [
      ...withoutPort,
      `--port=${port}`,
      `--NotebookApp.token=${token}`,
      "--NotebookApp.open_browser=False",
      "--NotebookApp.port_retries=0",
      ...(Deno.uid() === 0 ? ["--allow-root"] : []), // CI runs as root; Jupyter refuses root without it
    ],
    cwd: root,
    stdout: "null",
    stderr: "piped",
    env: { PYDEVD_DISABLE_FILE_VALIDATION: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  const api = (path: string) =>
    fetch(`http://127.0.0.1:${port}${path}${path.includes("?") ? "&" : "?"}token=${token}`);
  try {
    let specs: { kernelspecs: Record<string, { spec: { display_name: string } }> } | undefined;
    for (let i = 0; i < 150 && !specs && !exited; i++) { // up to 30 s for the server to start
      try {
        const r = await api("/api/kernelspecs");
        if (r.ok) specs = await r.json();
        else await r.body?.cancel();
      } catch {
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    if (exited) throw new Error(`the notebook server exited:\n${await stderr}`);
    ok(specs, "the notebook server did not answer on its port within 30 s");
    ok("deno" in specs.kernelspecs, `no Deno kernel offered: ${Object.keys(specs.kernelspecs)}`);
    equal(specs.kernelspecs.deno.spec.display_name, "Deno");

    const nb = await api("/api/contents/00_quickstart.ipynb");
    equal(nb.status, 200);
    const body = await nb.json();
    equal(body.type, "notebook");
    equal(body.content.metadata.kernelspec.name, "deno");
    ok(body.content.cells.length > 5);

    const page = await api("/notebooks/00_quickstart.ipynb");
    equal(page.status, 200);
    ok((await page.text()).includes("<html"), "the notebook page is not HTML");
  } finally {
    if (!exited) child.kill("SIGTERM");
    await child.status;
    const log = await stderr;
    if (!log.includes("Serving notebooks from")) console.error(log);
  }
});
