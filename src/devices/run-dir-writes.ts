// Write-behind for the udev run dir (/run/udev). Creating an inode there costs up to ~0.7 ms when
// /run is not a tmpfs; done synchronously, 50 hotplugged disks (~15 creations each) queue up on the
// main thread. Here each write runs on the libuv threadpool (on a tmpfs, where a write costs less
// than the round trip, at once on the main thread), ordered only where it must be:
// - writes to one path run in the order they were queued (a promise chain per path);
// - a directory is removed only when nothing is in flight in it, and entries queued after the
//   removal wait for it (then create the directory again), so a claim never lands in a directory
//   being removed. Entries of one directory otherwise run side by side.
import fs = require('node:fs');
import path = require('node:path');

const fsp = fs.promises;

/** The fs calls the run-dir writes make (fs.promises by default; tests inject slow or failing ones). */
export interface RunDirFs {
  /** mkdir -p, mode 0755. */
  mkdir(dir: string): Promise<void>;
  /** Creates `file` (must not exist) holding `data`, with exactly `mode` (the umask must not narrow it). */
  createFile(file: string, data: string, mode: number): Promise<void>;
  symlink(target: string, file: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  rmdir(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
}

export const nodeRunDirFs: RunDirFs = {
  async mkdir(dir) {
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  },
  async createFile(file, data, mode) {
    const handle = await fsp.open(file, 'wx', mode);
    try {
      if (data !== '') await handle.writeFile(data);
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
  },
  symlink: (target, file) => fsp.symlink(target, file),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.unlink(file),
  rmdir: (dir) => fsp.rmdir(dir),
  readdir: (dir) => fsp.readdir(dir),
};

/** The same calls made synchronously: for a run dir on a tmpfs, where they take microseconds. */
export const syncRunDirFs: RunDirFs = {
  mkdir: async (dir) => void fs.mkdirSync(dir, { recursive: true, mode: 0o755 }),
  async createFile(file, data, mode) {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
    try {
      if (data !== '') fs.writeSync(fd, data);
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
  },
  symlink: async (target, file) => fs.symlinkSync(target, file),
  rename: async (from, to) => fs.renameSync(from, to),
  unlink: async (file) => fs.unlinkSync(file),
  rmdir: async (dir) => fs.rmdirSync(dir),
  readdir: async (dir) => fs.readdirSync(dir),
};

const MEMORY_FS_MAGIC: ReadonlySet<number> = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** Whether `statfs` says memory-backed (tmpfs, ramfs): pure, for the choice below. */
export function isMemoryFs(fsType: number): boolean {
  return MEMORY_FS_MAGIC.has(fsType);
}

/** The fs layer for a run dir at `root` (or, before it exists, its nearest existing parent). */
export function runDirFsFor(root: string): RunDirFs {
  for (let dir = path.resolve(root); ; dir = path.dirname(dir)) {
    try {
      return isMemoryFs(fs.statfsSync(dir).type) ? syncRunDirFs : nodeRunDirFs;
    } catch {
      if (dir === path.dirname(dir)) return nodeRunDirFs;
    }
  }
}

/** What must be done before a new write may start (a pure function of what is in flight). */
export function writePrerequisites(
  kind: 'entry' | 'dir',
  pathTail: Promise<void> | undefined,
  dirEntries: ReadonlySet<Promise<void>>,
  dirRemoval: Promise<void> | undefined,
): Promise<void>[] {
  const wait: Promise<void>[] = [];
  if (dirRemoval !== undefined) wait.push(dirRemoval);
  if (kind === 'entry') {
    if (pathTail !== undefined) wait.push(pathTail);
  } else {
    wait.push(...dirEntries);
  }
  return wait;
}

interface DirState {
  /** Entry writes in flight (settled-safe tails). */
  entries: Set<Promise<void>>;
  /** The last directory-level write (removal) queued, until it settles. */
  removal: Promise<void> | undefined;
}

/** Orders run-dir writes; each `op` is an async function doing its fs calls. */
export class RunDirWrites {
  private readonly paths = new Map<string, Promise<void>>();
  private readonly dirs = new Map<string, DirState>();
  private readonly all = new Set<Promise<void>>();

  /** Runs `op` on `file` (an entry of `dir`) after earlier writes to `file` and any queued removal of `dir`. */
  entry(dir: string, file: string, op: () => Promise<void>): Promise<void> {
    const state = this.dirState(dir);
    const wait = writePrerequisites('entry', this.paths.get(file), state.entries, state.removal);
    const done = runAfter(wait, op);
    const tail = settled(done);
    this.paths.set(file, tail);
    state.entries.add(tail);
    this.track(tail, () => {
      if (this.paths.get(file) === tail) this.paths.delete(file);
      state.entries.delete(tail);
      this.dropIfIdle(dir, state);
    });
    return done;
  }

  /** Runs `op` on `dir` itself (its removal) once nothing is in flight in it; later entries wait for it. */
  dir(dir: string, op: () => Promise<void>): Promise<void> {
    const state = this.dirState(dir);
    const wait = writePrerequisites('dir', undefined, state.entries, state.removal);
    const done = runAfter(wait, op);
    const tail = settled(done);
    state.removal = tail;
    this.track(tail, () => {
      if (state.removal === tail) state.removal = undefined;
      this.dropIfIdle(dir, state);
    });
    return done;
  }

  /** Writes queued and not settled yet. */
  get pending(): number {
    return this.all.size;
  }

  /** Settles when every write queued so far has (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.all.size > 0) await Promise.all(this.all);
  }

  private dirState(dir: string): DirState {
    let state = this.dirs.get(dir);
    if (state === undefined) {
      state = { entries: new Set(), removal: undefined };
      this.dirs.set(dir, state);
    }
    return state;
  }

  private dropIfIdle(dir: string, state: DirState): void {
    if (state.entries.size === 0 && state.removal === undefined && this.dirs.get(dir) === state)
      this.dirs.delete(dir);
  }

  private track(tail: Promise<void>, cleanup: () => void): void {
    this.all.add(tail);
    void tail.then(() => {
      this.all.delete(tail);
      cleanup();
    });
  }
}

async function runAfter(wait: readonly Promise<void>[], op: () => Promise<void>): Promise<void> {
  if (wait.length === 1) await wait[0];
  else if (wait.length > 1) await Promise.all(wait);
  await op();
}

/** The same settlement without the error: chains and `idle` must not reject (the caller gets it). */
function settled(p: Promise<void>): Promise<void> {
  return p.then(
    () => undefined,
    () => undefined,
  );
}
