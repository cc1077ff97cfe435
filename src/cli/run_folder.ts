/**
 * The folder a training run writes to, held by that run alone for its whole life.
 *
 * - **One run per folder.** The run holds an exclusive lock on `<folder>/.lock` (Deno's
 *   `FsFile.tryLock(true)`: `flock(LOCK_EX | LOCK_NB)` on Linux and macOS, `LockFileEx` on
 *   Windows), which the system releases when the process ends, however it ends. A second
 *   run into the folder is refused at once, naming the first one's PID (read from the lock
 *   file; Windows' locks are mandatory, so there the PID may be unreadable and is said to
 *   be). `flock` locks are advisory and, on some network file systems (old NFS), local to
 *   one machine.
 * - **Fresh folders are created exclusively.** An absent folder is made with one `mkdir`
 *   that fails if it exists; a default folder (`runs/<timestamp>`) that exists already,
 *   even one made by a run started in the same second, gives way to `<timestamp>-2`, ...
 * - **A run is replaced whole.** With `overwrite`, a folder holding a run (and nothing
 *   else) is moved aside in one rename, a new folder is made in its place, and the old one
 *   is then deleted: stopped at any moment, the folder holds the old run, nothing, or the
 *   new run, never parts of both.
 * - **Files created, never reused.** {@link RunFolder.create} makes a file exclusively (it
 *   fails rather than follow a planted symlink), {@link RunFolder.write} replaces one
 *   atomically; a run's file that is a symlink is refused when the folder is opened.
 *
 * Every run gets an id ({@link RunFolder.id}) that each of its files carries.
 *
 * @module
 */
import { isTempFileOf, writeFileAtomic } from "../train/atomic_write.ts";

/** A folder that cannot take the run (in use, holding a run, unwritable...): exit code 2. */
export class RunFolderError extends Error {
  override name = "RunFolderError";
}

/** Options of {@link RunFolder.open}. */
export interface OpenRunOptions {
  /** The files a run writes; any of them present (as a regular file) means a run is there. */
  files: readonly string[];
  /** Replace a run found in the folder (moved aside in one rename, then deleted). */
  overwrite?: boolean;
  /** The path is a default name: if it exists, use `<path>-2`, `<path>-3`, ... instead. */
  unique?: boolean;
}

/** The name of the lock file inside a run folder. */
export const LOCK_FILE = ".lock";

const isNotFound = (e: unknown) => e instanceof Deno.errors.NotFound;

async function lstat(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** A new run id: the start time and 8 random hex digits, e.g. `20261207T014122-3f9a0c1e`. */
function newRunId(): string {
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `${new Date().toISOString().slice(0, 19).replace(/[-:]/g, "")}-${hex}`;
}

/**
 * Makes `path` if absent (exclusively); returns the folder to use: `path`, or with
 * `unique` the first of `path-2`, `path-3`, ... that this call created.
 */
async function ensureFolder(path: string, unique: boolean): Promise<string> {
  for (let i = 1; i <= 1000; i++) {
    const dir = i === 1 ? path : `${path}-${i}`;
    const info = await lstat(dir).catch((e) => {
      throw new RunFolderError(
        `--out ${dir} cannot be created (${(e as Error).message}): choose another --out`,
      );
    });
    if (info?.isSymlink) {
      const target = await Deno.readLink(dir).catch(() => "?");
      const real = await Deno.stat(dir).catch(() => undefined);
      if (!real) {
        throw new RunFolderError(
          `--out ${dir} is a symbolic link to ${target}, which does not exist (a dangling ` +
            "symlink): remove it, create its target, or choose another --out",
        );
      }
      if (!real.isDirectory) {
        throw new RunFolderError(
          `--out ${dir} is a symbolic link to ${target}, which is not a directory: choose ` +
            "another --out",
        );
      }
      if (unique) continue;
      return dir;
    }
    if (info && !info.isDirectory) {
      throw new RunFolderError(
        `--out ${dir} is a file, not a directory: choose another --out (a folder, ` +
          "created if absent)",
      );
    }
    if (info) {
      if (unique) continue;
      return dir;
    }
    const slash = dir.lastIndexOf("/");
    try {
      if (slash > 0) await Deno.mkdir(dir.slice(0, slash), { recursive: true });
      await Deno.mkdir(dir); // exclusive: fails if another process made it first
      return dir;
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        if (unique) continue;
        return ensureFolder(dir, false); // made by another run: the lock decides
      }
      throw new RunFolderError(
        `--out ${dir} cannot be created (${(e as Error).message}): choose another --out`,
      );
    }
  }
  throw new RunFolderError(`--out ${path}: ${path}-2 to ${path}-1000 all exist: pass --out`);
}

/** Opens and locks `<dir>/.lock`, writing this process's PID and `id` into it. */
async function acquireLock(dir: string, id: string): Promise<Deno.FsFile> {
  const path = `${dir}/${LOCK_FILE}`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o644 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new RunFolderError(
        `--out ${dir} is not writable (${(e as Error).message}): fix its permissions or ` +
          "choose another --out",
      );
    }
    // Left by an earlier run: reuse it, unless it is not the plain file it should be.
    const before = await Deno.lstat(path);
    if (!before.isFile) {
      throw new RunFolderError(
        `${path} is ${before.isSymlink ? "a symbolic link" : "not a regular file"}; a run's ` +
          "lock file must be a regular file: remove it",
      );
    }
    file = await Deno.open(path, { read: true, write: true });
    const after = await file.stat();
    if (after.ino !== before.ino || after.dev !== before.dev) {
      file.close();
      throw new RunFolderError(`${path} was replaced while it was opened: try again`);
    }
  }
  if (!(await file.tryLock(true))) {
    let who = "PID unknown: the lock file cannot be read on this system";
    // A run that has just taken the lock may not have written its PID yet: wait for it a little.
    for (let tries = 0; tries < 20; tries++) {
      try {
        const held = JSON.parse(new TextDecoder().decode(await Deno.readFile(path)));
        who = `PID ${held.pid}, run ${held.runId}, started ${held.started}`;
        break;
      } catch (e) {
        if (!(e instanceof SyntaxError)) break; // Windows: a locked file cannot be read
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    file.close();
    throw new RunFolderError(
      `--out ${dir} is in use by another run (${who}); wait for it to end, or choose ` +
        "another --out",
    );
  }
  await writeLockInfo(file, id);
  return file;
}

/** Writes this process's PID and the run's `id` into the held lock file. */
async function writeLockInfo(file: Deno.FsFile, id: string): Promise<void> {
  const text = JSON.stringify({ pid: Deno.pid, runId: id, started: new Date().toISOString() });
  const bytes = new TextEncoder().encode(text + "\n");
  // Written over the old text, then cut to length: a reader never finds it empty.
  await file.seek(0, Deno.SeekMode.Start);
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  await file.truncate(bytes.length);
}

/**
 * A run's folder, locked by this process until disposed. Open one with
 * {@link RunFolder.open}.
 */
export class RunFolder implements Disposable {
  /** The folder (the given path, or a unique variant of a default one). */
  readonly path: string;
  /** This run's id, which every file of the run carries. */
  readonly id: string;
  /** Where the run that was replaced had been moved aside (and deleted), if one was. */
  readonly replaced?: string;
  #lock: Deno.FsFile;

  private constructor(path: string, id: string, lock: Deno.FsFile, replaced?: string) {
    this.path = path;
    this.id = id;
    this.#lock = lock;
    this.replaced = replaced;
  }

  /**
   * Opens `path` for a new run: makes it if absent, locks it (refusing a folder another run
   * holds, naming its PID), and refuses a folder that holds a run unless `overwrite`, in
   * which case the old run is moved aside in one rename and deleted. A run's file there
   * that is a symlink, an `out` that is a file or a dangling symlink, and an unwritable
   * folder are refused. Every refusal is a {@link RunFolderError} that says what to do.
   */
  static async open(path: string, opts: OpenRunOptions): Promise<RunFolder> {
    const { files, overwrite = false, unique = false } = opts;
    const id = newRunId();
    const dir = await ensureFolder(path.replace(/(.)\/+$/, "$1"), unique);
    const lock = await acquireLock(dir, id);
    try {
      const held: string[] = [];
      for (const f of files) {
        const info = await lstat(`${dir}/${f}`);
        if (info?.isSymlink) {
          const target = await Deno.readLink(`${dir}/${f}`).catch(() => "?");
          throw new RunFolderError(
            `${dir}/${f} is a symbolic link (to ${target}); a run's files are never symlinks ` +
              "and a run will not write through one: remove it, or choose another --out",
          );
        }
        if (info?.isFile) held.push(f);
      }
      if (!held.length) return new RunFolder(dir, id, lock);
      if (!overwrite) {
        throw new RunFolderError(
          `--out ${dir} already holds a run (${held.join(", ")}); choose another --out, or ` +
            "pass --overwrite to replace it",
        );
      }
      return await RunFolder.#replace(dir, id, lock, files);
    } catch (e) {
      lock.close();
      throw e;
    }
  }

  /**
   * Opens the existing run folder `path` to resume its run: locks it (refusing a folder
   * another run holds, naming its PID), then calls `identify` under the lock, which reads
   * the run's saved state and returns its id; the resumed run keeps the folder and that id.
   * A `path` that is absent or not a directory is a {@link RunFolderError}.
   */
  static async resume(
    path: string,
    identify: (dir: string) => Promise<string>,
  ): Promise<RunFolder> {
    const dir = path.replace(/(.)\/+$/, "$1");
    const info = await Deno.stat(dir).catch(() => undefined);
    if (!info?.isDirectory) {
      throw new RunFolderError(
        `--resume ${dir} is ${info ? "not a directory" : "absent"}: pass the folder of a run ` +
          "of deno task train (its --out)",
      );
    }
    const lock = await acquireLock(dir, "(resuming)");
    try {
      const id = await identify(dir);
      await writeLockInfo(lock, id);
      return new RunFolder(dir, id, lock);
    } catch (e) {
      lock.close();
      throw e;
    }
  }

  /** Moves the run in `dir` aside in one rename, makes `dir` anew and locks it. */
  static async #replace(
    dir: string,
    id: string,
    oldLock: Deno.FsFile,
    files: readonly string[],
  ): Promise<RunFolder> {
    const others: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      const ours = e.name === LOCK_FILE || files.includes(e.name) ||
        files.some((f) => isTempFileOf(e.name, f));
      if (!ours) others.push(e.name);
    }
    if (others.length) {
      throw new RunFolderError(
        `--overwrite replaces a folder that holds a run alone, and ${dir} also holds ` +
          `${others.sort().join(", ")}: move those, or choose another --out`,
      );
    }
    if ((await Deno.lstat(dir)).isSymlink) {
      throw new RunFolderError(
        `--out ${dir} is a symbolic link: --overwrite replaces the folder itself; pass ` +
          `--out ${await Deno.realPath(dir)}`,
      );
    }
    const aside = `${dir}.replaced-${id}`;
    try {
      await Deno.rename(dir, aside);
    } catch (e) {
      throw new RunFolderError(
        `--overwrite could not move the run in ${dir} aside (${(e as Error).message}): ` +
          "remove it yourself, or choose another --out",
      );
    }
    try {
      await Deno.mkdir(dir);
    } catch (e) {
      throw new RunFolderError(
        `${dir} could not be made anew (${(e as Error).message}); the replaced run is in ` +
          `${aside}`,
      );
    }
    const lock = await acquireLock(dir, id);
    oldLock.close(); // closing releases its lock
    await Deno.remove(aside, { recursive: true });
    return new RunFolder(dir, id, lock, aside);
  }

  /** The path of `name` in the folder. */
  file(name: string): string {
    return `${this.path}/${name}`;
  }

  /** Creates `name` exclusively (refusing anything already there, symlinks included). */
  create(name: string): Promise<Deno.FsFile> {
    return Deno.open(this.file(name), { write: true, createNew: true, mode: 0o644 });
  }

  /**
   * Opens the run's existing file `name` to append to it, cut back first to its first
   * `keep` bytes (what a resumed run's saved state accounts for); refuses a file that is
   * not a regular file or is shorter than `keep`. Returns the file and the number of lines
   * cut.
   */
  async append(name: string, keep: number): Promise<{ file: Deno.FsFile; cut: number }> {
    const info = await lstat(this.file(name));
    if (!info?.isFile) {
      throw new RunFolderError(
        `${this.file(name)} is ${info ? "not a regular file" : "absent"}: the run cannot be ` +
          "resumed; start a new run",
      );
    }
    if (info.size < keep) {
      throw new RunFolderError(
        `${this.file(name)} holds ${info.size} bytes, fewer than the ${keep} the run's saved ` +
          "state accounts for (it was cut or edited): the run cannot be resumed; start a new run",
      );
    }
    const file = await Deno.open(this.file(name), { read: true, write: true });
    const tail = new Uint8Array(info.size - keep);
    await file.seek(keep, Deno.SeekMode.Start);
    for (let at = 0; at < tail.length;) {
      const n = await file.read(tail.subarray(at));
      if (n === null) break;
      at += n;
    }
    await file.truncate(keep);
    await file.seek(0, Deno.SeekMode.End);
    return { file, cut: tail.filter((b) => b === 10).length };
  }

  /** Writes `name` atomically (see {@link writeFileAtomic}). */
  write(name: string, data: Uint8Array): Promise<void> {
    return writeFileAtomic(this.file(name), data, { what: "a run's file" });
  }

  /** Releases the folder's lock (the file stays; the next run reuses it). */
  [Symbol.dispose](): void {
    try {
      this.#lock.close();
    } catch { /* already closed */ }
  }
}
