/**
 * Builds the lab's static site: `deno run -A web/build.ts [OUT]` (default `web/dist/`)
 * writes `index.html`, `style.css` and `app.js` (web/app.ts and the library, bundled for the
 * browser). Any static host can serve the folder; the data comes from `data/` beside it, the
 * page's `?data=` URL, or files the user picks (README, "In the browser").
 *
 * @module
 */

const web = new URL(".", import.meta.url).pathname;

/** Bundles the app into `out` (created if missing) and copies the page beside it. */
export async function buildLab(out = `${web}dist`): Promise<string> {
  await Deno.mkdir(out, { recursive: true });
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--keep-names", // the page names layers by constructor.name, which esbuild renames
      `--import-map=${web}import_map.json`,
      `--output=${out}/app.js`,
      `${web}app.ts`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`deno bundle web/app.ts failed (exit ${r.code})`);
  for (const f of ["index.html", "style.css"]) await Deno.copyFile(web + f, `${out}/${f}`);
  return out;
}

if (import.meta.main) {
  const out = await buildLab(Deno.args[0]);
  console.log(`built ${out}: serve it with any static server (data/ beside it, or ?data=URL)`);
}
