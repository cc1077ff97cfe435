// `deno task` lists every task with what it does (issue 24, point 3): each task in deno.json
// has a description, and the README's quick start names only tasks that exist.
import { deepEqual, ok } from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("every deno task has a description, and the README names only tasks that exist", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
    tasks: Record<string, string | { command: string; description?: string }>;
  };
  const bare = Object.entries(config.tasks)
    .filter(([, t]) => typeof t === "string" || !t.description?.trim())
    .map(([name]) => name);
  deepEqual(bare, [], "tasks without a description");
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const named = [...readme.matchAll(/deno task ([a-z](?:[a-z:-]*[a-z])?)/g)].map((m) => m[1]);
  ok(named.length > 0, "the README names no task");
  deepEqual(
    [...new Set(named.filter((n) => !(n in config.tasks)))],
    [],
    "unknown tasks in the README",
  );
});
