/**
 * Writing a file whole or not at all, and never through a planted symlink.
 *
 * The bytes go to a temporary file beside the target, created exclusively (`O_CREAT |
 * O_EXCL`, Deno's `createNew`: it fails rather than follow a symlink or reuse a file
 * that is already there) under an unpredictable name (`.<name>.<16 hex digits>.tmp`), then
 * renamed over the target in one step. A target that is a symlink, a directory or
 * anything but a regular file is refused: a rename would replace a symlink, not write
 * through it, but a run's file that is a symlink is never what its owner meant.
 *
 * @module
 */

/** The temporary files {@link writeFileAtomic} makes beside `name`: `.<name>.<hex>.tmp`. */
export function isTempFileOf(entry: string, name: string): boolean {
  return entry.startsWith(`.${name}.`) && /^[0-9a-f]{16}\.tmp$/.test(entry.slice(name.length + 2));
}

function split(path: string): { dir: string; name: string } {
  const slash = path.lastIndexOf("/");
  return { dir: slash >= 0 ? path.slice(0, slash) || "/" : ".", name: path.slice(slash + 1) };
}

/**
 * Throws unless `path` is absent or a regular file (not a symlink, directory, FIFO...),
 * naming what it is; `what` says whose file it is in the message.
 */
export async function refuseSpecialFile(path: string, what = "the file"): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (info.isFile) return;
  const kind = info.isSymlink
    ? `a symbolic link (to ${await Deno.readLink(path).catch(() => "?")})`
    : info.isDirectory
    ? "a directory"
    : "not a regular file (a FIFO, socket or device)";
  throw new Error(
    `${path} is ${kind}; ${what} must be a regular file or absent: remove it, or write elsewhere`,
  );
}

/**
 * Writes `data` to `path` atomically: into an exclusively created temporary file of an
 * unpredictable name beside it, then renamed over `path`. A `path` that is a symlink or
 * not a regular file is refused (see {@link refuseSpecialFile}); on failure the temporary
 * file is removed. Mode `0o644` unless given.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  { mode = 0o644, what = "the file" }: { mode?: number; what?: string } = {},
): Promise<void> {
  await refuseSpecialFile(path, what);
  const { dir, name } = split(path);
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  const tmp = `${dir}/.${name}.${hex}.tmp`;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    try {
      let at = 0;
      while (at < data.length) at += await file.write(data.subarray(at));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Removes the temporary files that earlier {@link writeFileAtomic} calls for `path` left
 * behind when killed midway (`.<name>.<hex>.tmp`, regular files or symlinks, never
 * followed); returns how many. Call it only where no other writer of `path` runs.
 */
export async function removeStaleTempFiles(path: string): Promise<number> {
  const { dir, name } = split(path);
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if ((e.isFile || e.isSymlink) && isTempFileOf(e.name, name)) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
      n++;
    }
  }
  return n;
}
