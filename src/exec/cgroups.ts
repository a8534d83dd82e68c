// cgroup v2 bookkeeping for units: one group per unit under `<base>/triggerd.slice/`, where
// `base` is a directory of the writable cgroup2 hierarchy the daemon owns (default
// `<root>/triggerd`). On a system without a writable cgroup2 hierarchy (v1 only, read-only, no
// delegation) openCgroupTree says why, and the caller falls back to process-group tracking.
import {
  accessSync,
  closeSync,
  existsSync,
  constants,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import path = require('node:path');
import { parseMountInfo, readMountInfo } from './mount-info';

/** statfs f_type of cgroup2 (linux/magic.h). */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

const SIGKILL = 9;
/** Rounds of "list, signal" when signalling pid by pid: new forks can appear while we do it. */
const MAX_SIGNAL_ROUNDS = 16;

export type CgroupLayout = 'unified' | 'hybrid' | 'other';

export type CgroupHierarchy =
  { ok: true; root: string; layout: CgroupLayout } | { ok: false; reason: string };

function isCgroup2(dir: string): boolean {
  try {
    return statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The cgroup2 hierarchy: /sys/fs/cgroup when it is cgroup2 (unified), else /sys/fs/cgroup/unified
 * (systemd's hybrid layout), else any cgroup2 mount in /proc/self/mountinfo.
 */
export function findCgroupHierarchy(mountInfo?: string): CgroupHierarchy {
  if (isCgroup2('/sys/fs/cgroup')) return { ok: true, root: '/sys/fs/cgroup', layout: 'unified' };
  if (isCgroup2('/sys/fs/cgroup/unified'))
    return { ok: true, root: '/sys/fs/cgroup/unified', layout: 'hybrid' };
  let text = mountInfo;
  if (text === undefined) {
    try {
      text = readMountInfo();
    } catch {
      text = '';
    }
  }
  const mount = parseMountInfo(text).find((m) => m.fsType === 'cgroup2' && m.root === '/');
  if (mount !== undefined) return { ok: true, root: mount.mountPoint, layout: 'other' };
  return { ok: false, reason: 'no cgroup2 file system is mounted (cgroup v1 only)' };
}

export interface CgroupTreeOptions {
  /** The cgroup2 mount; default: findCgroupHierarchy(). */
  root?: string;
  /** The directory the daemon owns; default `<root>/triggerd`. */
  base?: string;
  /** Default 'triggerd.slice'. */
  slice?: string;
}

export type CgroupSetup = { ok: true; tree: CgroupTree } | { ok: false; reason: string };

/** Finds the hierarchy and creates `<base>/<slice>`; says why when that is not possible. */
export function openCgroupTree(opts: CgroupTreeOptions = {}): CgroupSetup {
  let root = opts.root;
  if (root === undefined) {
    const found = findCgroupHierarchy();
    if (!found.ok) return found;
    root = found.root;
  } else if (!isCgroup2(root)) {
    return { ok: false, reason: `${root} is not a cgroup2 file system` };
  }
  const base = opts.base ?? path.join(root, 'triggerd');
  if (!isPathBelow(base, root) && base !== root) {
    return { ok: false, reason: `${base} is not inside the cgroup2 hierarchy at ${root}` };
  }
  const slice = path.join(base, opts.slice ?? 'triggerd.slice');
  try {
    mkdirSync(slice, { recursive: true });
    accessSync(path.join(slice, 'cgroup.procs'), constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return {
      ok: false,
      reason: `cannot create or write ${slice} (${code}): the cgroup2 hierarchy is not writable here`,
    };
  }
  return { ok: true, tree: new CgroupTree(root, base, slice) };
}

function isPathBelow(p: string, parent: string): boolean {
  return p.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

/** One buffer for the small control files (cgroup.events, a short cgroup.procs). */
const scratch = Buffer.allocUnsafe(16 * 1024);

function readIfExists(file: string): string | undefined {
  try {
    // Open, one read, close: readFileSync's fstat and growing buffers cost more than the read
    // for these few bytes, and this runs at every Accept=yes instance's stop.
    const fd = openSync(file, 'r');
    try {
      const n = readSync(fd, scratch, 0, scratch.length, null);
      if (n < scratch.length) return scratch.toString('utf8', 0, n);
    } finally {
      closeSync(fd);
    }
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV') return undefined;
    throw err;
  }
}

function childGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join(dir, d.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface KillResult {
  /** 'cgroup.kill' (SIGKILL to the whole subtree by the kernel) or 'signal' (pid by pid). */
  method: 'cgroup.kill' | 'signal';
  /** Pids signalled one by one (0 with cgroup.kill). */
  signalled: number;
}

export class CgroupTree {
  constructor(
    /** The cgroup2 mount point. */
    readonly root: string,
    /** The directory the daemon owns. */
    readonly base: string,
    /** Where unit groups go: `<base>/triggerd.slice`. */
    readonly slice: string,
  ) {}

  /**
   * Told of every group remove() took away: the spawn addon keeps an fd of the groups it spawns
   * into, and a removed group lingers (dying) in the kernel until that fd is closed.
   */
  onRemoved: ((dir: string) => void) | undefined;

  /** The group of a unit. Unit names cannot contain '/'; cgroup's own file names are refused too. */
  pathOf(unitName: string): string {
    if (
      unitName === '' ||
      unitName === '.' ||
      unitName === '..' ||
      unitName.includes('/') ||
      unitName.includes('\n') ||
      unitName.startsWith('cgroup.')
    ) {
      throw new Error(`"${unitName}" cannot name a cgroup`);
    }
    return path.join(this.slice, unitName);
  }

  /** Spare empty groups of each pool (takeSlot/returnSlot). */
  private readonly spares = new Map<string, string[]>();
  private slots = 0;

  /**
   * An empty group for one short-lived unit of `pool` (an Accept=yes socket's instances): a spare
   * one when there is, else a new `<slice>/<pool>.slot-<n>`. mkdir and rmdir of a cgroup cost
   * more than the fork and exec of a small inetd program, so groups are reused (cgroup2 cannot
   * rename them). `pool` must be a valid group name (a template unit name).
   */
  takeSlot(pool: string): string {
    const spare = this.spares.get(pool)?.pop();
    if (spare !== undefined) return spare;
    // A new name, never an existing group: one left by an earlier daemon (a re-exec or a crash)
    // may still hold a running instance.
    for (;;) {
      const dir = this.pathOf(`${pool}.slot-${++this.slots}`);
      try {
        mkdirSync(dir);
        return dir;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Gives back a slot found empty; beyond `keep` spares per pool it is removed. */
  returnSlot(pool: string, dir: string, keep = 64): void {
    const list = this.spares.get(pool) ?? [];
    if (list.length < keep) {
      list.push(dir);
      this.spares.set(pool, list);
      return;
    }
    this.remove(dir);
  }

  /** The spare groups of every pool (for the state file: a new daemon image removes them). */
  spareSlots(): string[] {
    return [...this.spares.values()].flat();
  }

  /** Removes the spare groups of every pool (at exit); a busy one is left. */
  dropSpares(): void {
    for (const list of this.spares.values()) for (const dir of list.splice(0)) this.remove(dir);
  }

  /**
   * The unit's group for this daemon's first spawn of it: one found there already and empty (an
   * earlier daemon's) is made anew, since Linux 6.18 kills at birth every child cloned into a
   * group cgroup.kill was ever written to, and each spawn into it then takes a second clone
   * (spawn_child.cc's KilledAtBirth). A busy one is kept.
   */
  createFresh(unitName: string): string {
    const dir = this.pathOf(unitName);
    if (existsSync(dir) && this.isEmpty(dir)) this.remove(dir);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Creates the unit's group (fine when it exists) and returns its path. */
  create(unitName: string): string {
    const dir = this.pathOf(unitName);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Pids in the group (cgroup.procs) and, with `recursive`, in the groups below it. */
  listPids(dir: string, recursive = true): number[] {
    const pids: number[] = [];
    const text = readIfExists(path.join(dir, 'cgroup.procs'));
    if (text !== undefined) {
      for (const line of text.split('\n')) if (line !== '') pids.push(Number(line));
    }
    if (recursive) for (const child of childGroups(dir)) pids.push(...this.listPids(child, true));
    return pids;
  }

  /** cgroup.events says `populated 0` (no process in the group or below). A missing group is empty. */
  isEmpty(dir: string): boolean {
    const events = readIfExists(path.join(dir, 'cgroup.events'));
    if (events === undefined) return this.listPids(dir).length === 0;
    return /^populated 0$/m.test(events);
  }

  /**
   * Sends `signal` to every process in the group and below. SIGKILL goes through cgroup.kill
   * (Linux 5.14+) when it exists: the kernel kills the subtree, forks included. Other signals
   * (and SIGKILL on older kernels) go pid by pid, repeated while new pids show up.
   */
  kill(
    dir: string,
    signal: number,
    signalPid: (pid: number, signal: number) => void = defaultSignal,
  ): KillResult {
    if (signal === SIGKILL) {
      try {
        writeFileSync(path.join(dir, 'cgroup.kill'), '1');
        return { method: 'cgroup.kill', signalled: 0 };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const done = new Set<number>();
    for (let round = 0; round < MAX_SIGNAL_ROUNDS; round++) {
      const fresh = this.listPids(dir).filter((pid) => !done.has(pid));
      if (fresh.length === 0) break;
      for (const pid of fresh) {
        done.add(pid);
        try {
          signalPid(pid, signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
    return { method: 'signal', signalled: done.size };
  }

  /**
   * Removes the group and the groups below it (deepest first). Returns false when a group still
   * has processes (EBUSY): call again once isEmpty() says so. A missing group counts as removed.
   */
  remove(dir: string): boolean {
    if (dir !== this.base && !isPathBelow(dir, this.base))
      throw new Error(`${dir} is not ${this.base} or below it`);
    for (const child of childGroups(dir)) if (!this.remove(child)) return false;
    try {
      rmdirSync(dir);
      this.onRemoved?.(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.onRemoved?.(dir);
        return true;
      }
      if (code === 'EBUSY') return false;
      throw err;
    }
  }

  /** The cgroup2 directory a process is in (from /proc/<pid>/cgroup), or undefined when gone. */
  cgroupOfPid(pid: number): string | undefined {
    const text = readIfExists(`/proc/${pid}/cgroup`);
    const line = text?.split('\n').find((l) => l.startsWith('0::'));
    return line === undefined ? undefined : path.join(this.root, line.slice(3));
  }
}

function defaultSignal(pid: number, signal: number): void {
  process.kill(pid, signal);
}
