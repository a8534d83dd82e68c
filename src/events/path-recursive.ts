// [X-Triggerd] PathChangedRecursive=DIR: a change anywhere under DIR (an entry created, deleted,
// moved, written and closed, or its attributes changed, at any depth, in directories created after
// the watch started too) triggers. One fanotify group for every such spec, one FILESYSTEM mark per
// file system (FAN_REPORT_DFID_NAME: each event names its directory by file handle and the entry
// by name); each event's directory handle is resolved to a path (open_by_handle_at + readlink,
// cached by handle) and filtered to each spec's subtree here, in TypeScript.
//
// Fallback, per spec, when fanotify is not permitted (EPERM: no CAP_SYS_ADMIN for a filesystem
// mark) or the file system cannot report file handles (EOPNOTSUPP, ENODEV, EXDEV, EINVAL): an
// inotify tree walk (one watch per directory, new directories walked as they appear).
//
// It has the shape of the path unit's watch source (src/events/path-watches.ts PathWatchSource:
// watch(spec, listener) → { state, rewalk, close }), declared structurally here.
//
// Bound and overflow policy: events are handled per native batch and coalesced per spec (at most
// one listener call per spec per batch). The resolved-path cache holds at most `cacheLimit`
// directories and is emptied whole when it is full or a directory is moved (its cached
// descendants would be stale). FAN_Q_OVERFLOW / IN_Q_OVERFLOW: every spec hears one event marked
// `overflow` (a recursive watch cannot tell what was lost, so that is a trigger), and inotify
// trees are walked again.
import fs = require('node:fs');
import nodePath = require('node:path');
import type { Subscription } from 'rxjs';
import {
  FAN,
  FAN_INIT,
  FAN_MARK,
  O_LARGEFILE,
  type FanotifyHandle,
  type NativeFanotify,
} from '../native/fanotify-addon';
import { IN, type InotifyHandle, type NativeInotify } from '../native/inotify-addon';
import { fanotifyEvents, type FanotifyRecord } from './fanotify-events';
import { inotifyEvents, type InotifyRecord } from './inotify-events';

/** The spec kind this source serves. */
export const PATH_CHANGED_RECURSIVE = 'PathChangedRecursive';

/** The subset of the path unit's WatchSpec this source reads. */
export interface RecursiveWatchSpec {
  kind: string;
  /** Absolute, normalized. */
  path: string;
}

/** The path unit's PathWatchEvent. */
export interface RecursiveWatchEvent {
  changed: boolean;
  rewalked: boolean;
  overflow: boolean;
  /** Where it happened (the first changed path of the batch), for TRIGGER_PATH and `status`. */
  where?: string;
}

export interface RecursiveWatchState {
  watching: string;
  waitingFor?: string;
  problem?: string;
  /** fanotify: 1 (the filesystem mark, shared); inotify: one per directory. */
  watches: number;
  /** 'fanotify' or 'inotify' (and why). */
  mechanism: string;
}

export interface RecursiveSpecWatch {
  state(): RecursiveWatchState;
  rewalk(): void;
  close(): void;
}

export interface RecursivePathWatchesOptions {
  /** undefined: fanotify is not tried (inotify only). */
  fanotify?: NativeFanotify;
  inotify: NativeInotify;
  /** Resolved directory paths kept (default 65,536). */
  cacheLimit?: number;
  /** Inotify watches one spec may add before it stops walking (default 500,000; ENOSPC stops earlier). */
  maxInotifyWatches?: number;
  /** Told when a spec falls back to inotify, and about problems (rate limiting is the caller's). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

export interface RecursiveStats {
  fanotifyRecords: number;
  inotifyRecords: number;
  batches: number;
  overflows: number;
  resolves: number;
  cacheHits: number;
  staleHandles: number;
  deliveries: number;
}

/** Events that make a PathChangedRecursive spec fire (systemd's PathChanged set, at any depth). */
const FAN_MASK =
  FAN.CREATE |
  FAN.DELETE |
  FAN.MOVED_FROM |
  FAN.MOVED_TO |
  FAN.CLOSE_WRITE |
  FAN.ATTRIB |
  FAN.DELETE_SELF |
  FAN.MOVE_SELF |
  FAN.ONDIR;
const IN_DIR_MASK =
  IN.CREATE |
  IN.DELETE |
  IN.MOVED_FROM |
  IN.MOVED_TO |
  IN.CLOSE_WRITE |
  IN.ATTRIB |
  IN.DELETE_SELF |
  IN.MOVE_SELF |
  IN.ONLYDIR |
  IN.DONT_FOLLOW;
/** Errors after which a spec uses inotify instead. */
const FALLBACK_CODES = new Set([
  'EPERM',
  'EACCES',
  'EOPNOTSUPP',
  'ENOTSUP',
  'ENODEV',
  'EXDEV',
  'EINVAL',
  'ENOSYS',
]);

function within(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The deepest existing directory at or above `p`. */
function existingAncestor(p: string): string {
  let cur = p;
  for (let i = 0; i < 4096; i++) {
    try {
      if (fs.statSync(cur).isDirectory()) return cur;
    } catch {
      // missing or not reachable: go up
    }
    const up = nodePath.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
  return '/';
}

abstract class SpecBase implements RecursiveSpecWatch {
  closed = false;
  /** Coalesced for the current batch. */
  pending: RecursiveWatchEvent | undefined;

  constructor(
    readonly owner: RecursivePathWatches,
    readonly spec: RecursiveWatchSpec,
    readonly listener: (event: RecursiveWatchEvent) => void,
  ) {}

  abstract state(): RecursiveWatchState;
  abstract rewalk(): void;
  abstract close(): void;

  note(event: Partial<RecursiveWatchEvent>): void {
    const p = this.pending ?? { changed: false, rewalked: false, overflow: false };
    p.changed ||= event.changed === true;
    p.rewalked ||= event.rewalked === true;
    p.overflow ||= event.overflow === true;
    if (p.where === undefined && event.where !== undefined) p.where = event.where;
    this.pending = p;
  }
}

/** A spec served by the shared fanotify group. */
class FanotifySpec extends SpecBase {
  constructor(
    owner: RecursivePathWatches,
    spec: RecursiveWatchSpec,
    listener: (event: RecursiveWatchEvent) => void,
    readonly fs: FsMark,
  ) {
    super(owner, spec, listener);
  }

  state(): RecursiveWatchState {
    return {
      watching: this.spec.path,
      watches: 1,
      mechanism: `fanotify filesystem mark on ${this.fs.markedAt}`,
    };
  }

  rewalk(): void {
    // Nothing to walk: the mark covers the whole file system.
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.releaseFanotify(this);
  }
}

interface FsMark {
  /** st_dev of the file system (a key; fsids come with each event). */
  dev: number;
  markedAt: string;
  mount: number;
  specs: Set<FanotifySpec>;
}

/** A spec served by its own inotify tree walk. */
class InotifyTreeSpec extends SpecBase {
  readonly byWd = new Map<number, string>();
  readonly byPath = new Map<string, number>();
  /** The spec's directory does not exist: `byWd` holds its deepest existing ancestor only. */
  waitingFor: string | undefined;
  problem: string | undefined;

  constructor(
    owner: RecursivePathWatches,
    spec: RecursiveWatchSpec,
    listener: (event: RecursiveWatchEvent) => void,
    readonly why: string,
  ) {
    super(owner, spec, listener);
  }

  state(): RecursiveWatchState {
    return {
      watching: this.waitingFor === undefined ? this.spec.path : (this.byWd.values().next().value ?? '/'),
      ...(this.waitingFor !== undefined ? { waitingFor: this.waitingFor } : {}),
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
      watches: this.byWd.size,
      mechanism: `inotify tree walk (${this.why})`,
    };
  }

  rewalk(): void {
    if (!this.closed) this.owner.walkTree(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.releaseInotify(this);
  }
}

export class RecursivePathWatches {
  readonly name = 'fanotify-recursive';
  readonly stats: RecursiveStats = {
    fanotifyRecords: 0,
    inotifyRecords: 0,
    batches: 0,
    overflows: 0,
    resolves: 0,
    cacheHits: 0,
    staleHandles: 0,
    deliveries: 0,
  };
  private fanHandle: FanotifyHandle | undefined;
  private fanSubscription: Subscription | undefined;
  /** Why fanotify is not used at all (set once it failed for a reason that holds for every spec). */
  private fanotifyRefused: string | undefined;
  private readonly marks = new Map<number, FsMark>();
  private readonly cache = new Map<string, string>();
  private readonly fsidMarks = new Map<string, FsMark>();
  private readonly cacheLimit: number;
  private inHandle: InotifyHandle | undefined;
  private inSubscription: Subscription | undefined;
  /** wd → the inotify specs using it (a wd is per inode and instance). */
  private readonly inByWd = new Map<number, Set<InotifyTreeSpec>>();
  private readonly inSpecs = new Set<InotifyTreeSpec>();

  constructor(private readonly options: RecursivePathWatchesOptions) {
    this.cacheLimit = options.cacheLimit ?? 65_536;
    if (options.fanotify === undefined) this.fanotifyRefused = 'no fanotify layer';
  }

  watch(spec: RecursiveWatchSpec, listener: (event: RecursiveWatchEvent) => void): RecursiveSpecWatch {
    const dir = nodePath.resolve(spec.path);
    const normalized = { kind: spec.kind, path: dir };
    if (this.fanotifyRefused === undefined) {
      try {
        return this.watchFanotify(normalized, listener);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === undefined || !FALLBACK_CODES.has(e.code)) throw err;
        const why = `fanotify ${e.syscall ?? ''}: ${e.code}`.replace(' :', ':');
        // A refused group or filesystem mark (EPERM) holds for every spec; a file system that
        // cannot report handles only for specs on it.
        if (e.code === 'EPERM' || e.syscall === 'fanotify_init') this.fanotifyRefused = why;
        this.options.warn?.('fanotify not usable for a recursive watch; walking the tree with inotify', {
          path: dir,
          code: e.code,
        });
        return this.watchInotify(normalized, listener, why);
      }
    }
    return this.watchInotify(normalized, listener, this.fanotifyRefused);
  }

  /** Everything open is closed; specs hear nothing more. */
  close(): void {
    this.fanSubscription?.unsubscribe();
    this.fanSubscription = undefined;
    this.fanHandle = undefined;
    this.marks.clear();
    this.fsidMarks.clear();
    this.cache.clear();
    this.inSubscription?.unsubscribe();
    this.inSubscription = undefined;
    this.inHandle = undefined;
    this.inByWd.clear();
    this.inSpecs.clear();
  }

  // ---- fanotify ----

  private openFanotify(): FanotifyHandle {
    if (this.fanHandle !== undefined && !this.fanHandle.closed) return this.fanHandle;
    const native = this.options.fanotify;
    if (native === undefined) throw new Error('no fanotify layer');
    let opened: FanotifyHandle | undefined;
    let failure: unknown;
    const subscription = fanotifyEvents(native, {
      flags: FAN_INIT.CLASS_NOTIF | FAN_INIT.REPORT_DFID_NAME,
      eventFlags: O_LARGEFILE,
    }).subscribe({
      next: (item) => {
        switch (item.kind) {
          case 'open':
            opened = item.handle;
            break;
          case 'records':
            this.onFanotifyRecords(item.records);
            break;
          case 'overflow':
            this.stats.overflows++;
            this.cache.clear();
            for (const m of this.marks.values())
              for (const s of m.specs) s.note({ changed: true, overflow: true });
            this.flush([...this.marks.values()].flatMap((m) => [...m.specs]));
            break;
          case 'error':
            this.options.warn?.('fanotify read failed', { code: item.error.code });
            break;
        }
      },
      error: (err: unknown) => {
        failure = err;
      },
    });
    if (opened === undefined) {
      subscription.unsubscribe();
      throw failure instanceof Error ? failure : new Error(String(failure));
    }
    this.fanHandle = opened;
    this.fanSubscription = subscription;
    return opened;
  }

  private watchFanotify(
    spec: RecursiveWatchSpec,
    listener: (event: RecursiveWatchEvent) => void,
  ): RecursiveSpecWatch {
    // The spec's directory may not exist yet: its file system is that of the deepest existing
    // ancestor (a directory mounted there later is another file system: rewalk() re-marks).
    const at = existingAncestor(spec.path);
    const dev = fs.statSync(at).dev;
    const handle = this.openFanotify();
    let mark = this.marks.get(dev);
    if (mark === undefined) {
      handle.mark(FAN_MARK.ADD | FAN_MARK.FILESYSTEM, FAN_MASK, at);
      let mount: number;
      try {
        mount = handle.openMount(at);
      } catch (err) {
        handle.mark(FAN_MARK.REMOVE | FAN_MARK.FILESYSTEM, FAN_MASK, at);
        throw err;
      }
      mark = { dev, markedAt: at, mount, specs: new Set() };
      this.marks.set(dev, mark);
    }
    const watch = new FanotifySpec(this, spec, listener, mark);
    mark.specs.add(watch);
    return watch;
  }

  releaseFanotify(spec: FanotifySpec): void {
    const mark = spec.fs;
    mark.specs.delete(spec);
    if (mark.specs.size > 0) return;
    this.marks.delete(mark.dev);
    for (const [fsid, m] of [...this.fsidMarks]) if (m === mark) this.fsidMarks.delete(fsid);
    const handle = this.fanHandle;
    if (handle !== undefined && !handle.closed) {
      try {
        handle.mark(FAN_MARK.REMOVE | FAN_MARK.FILESYSTEM, FAN_MASK, mark.markedAt);
      } catch {
        // ENOENT: unmounted meanwhile; the mark went with it.
      }
      try {
        handle.closeMount(mark.mount);
      } catch {
        // closed with the handle
      }
    }
    if (this.marks.size === 0) {
      this.fanSubscription?.unsubscribe();
      this.fanSubscription = undefined;
      this.fanHandle = undefined;
      this.cache.clear();
    }
  }

  /** The directory of a DFID_NAME handle, from the cache or resolved now; null when it is gone. */
  private resolveDir(fsid: string, key: string, handleBytes: Buffer): string | null {
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.stats.cacheHits++;
      return cached;
    }
    const handle = this.fanHandle;
    if (handle === undefined) return null;
    // A handle only means something on its own file system: the fsid picks the mount fd once it
    // has been learnt (a handle resolved on a mark whose st_dev the result matches).
    const known = this.fsidMarks.get(fsid);
    const candidates = known !== undefined ? [known] : [...this.marks.values()];
    let resolved: string | null = null;
    for (const mark of candidates) {
      this.stats.resolves++;
      let found: string;
      try {
        found = handle.resolveFileHandle(mark.mount, handleBytes);
      } catch (err) {
        // ESTALE: deleted. Anything else (another file system's handle): try the next mark.
        if ((err as NodeJS.ErrnoException).code === 'ESTALE' && known !== undefined) {
          this.stats.staleHandles++;
          break;
        }
        continue;
      }
      if (found.endsWith(' (deleted)')) found = found.slice(0, -' (deleted)'.length);
      if (known === undefined) {
        let dev: number | undefined;
        try {
          dev = fs.statSync(found).dev;
        } catch {
          dev = undefined;
        }
        if (dev !== mark.dev) continue;
        this.fsidMarks.set(fsid, mark);
      }
      resolved = found;
      break;
    }
    if (this.cache.size >= this.cacheLimit) this.cache.clear();
    // A deleted directory stays unresolvable; misses are not cached.
    if (resolved !== null) this.cache.set(key, resolved);
    return resolved;
  }

  private onFanotifyRecords(records: FanotifyRecord[]): void {
    this.stats.batches++;
    const touched = new Set<SpecBase>();
    for (const r of records) {
      this.stats.fanotifyRecords++;
      const fid = r.fids[0];
      if (fid === undefined) continue;
      const dir = this.resolveDir(fid.fsid, fid.key, fid.handle);
      // A moved directory: every cached path below it is stale (and so is its own entry).
      if (
        (r.mask & FAN.ONDIR) !== 0 &&
        (r.mask & (FAN.MOVED_FROM | FAN.MOVED_TO | FAN.MOVE_SELF | FAN.RENAME)) !== 0
      )
        this.cache.clear();
      if (dir === null) continue;
      const name = fid.name;
      const where = name === undefined || name === '.' ? dir : dir === '/' ? `/${name}` : `${dir}/${name}`;
      for (const mark of this.marks.values()) {
        for (const spec of mark.specs) {
          // The directory itself: only its own entry's events (created, deleted, moved, chmod).
          if (within(spec.spec.path, where) || (name === '.' && within(spec.spec.path, dir))) {
            spec.note({ changed: true, where });
            touched.add(spec);
          }
        }
      }
    }
    this.flush([...touched]);
  }

  /** Hands every spec its coalesced event, one call per spec. */
  private flush(specs: SpecBase[]): void {
    for (const spec of specs) {
      const event = spec.pending;
      spec.pending = undefined;
      if (event === undefined || spec.closed) continue;
      this.stats.deliveries++;
      spec.listener(event);
    }
  }

  // ---- inotify fallback ----

  private openInotify(): InotifyHandle {
    if (this.inHandle !== undefined && !this.inHandle.closed) return this.inHandle;
    let opened: InotifyHandle | undefined;
    let failure: unknown;
    const subscription = inotifyEvents(this.options.inotify).subscribe({
      next: (item) => {
        switch (item.kind) {
          case 'open':
            opened = item.handle;
            break;
          case 'records':
            this.onInotifyRecords(item.records);
            break;
          case 'overflow':
            this.stats.overflows++;
            for (const s of this.inSpecs) {
              s.note({ changed: true, overflow: true, rewalked: true });
              this.walkTree(s);
            }
            this.flush([...this.inSpecs]);
            break;
          case 'error':
            this.options.warn?.('inotify read failed', { code: item.error.code });
            break;
        }
      },
      error: (err: unknown) => {
        failure = err;
      },
    });
    if (opened === undefined) {
      subscription.unsubscribe();
      throw failure instanceof Error ? failure : new Error(String(failure));
    }
    this.inHandle = opened;
    this.inSubscription = subscription;
    return opened;
  }

  private watchInotify(
    spec: RecursiveWatchSpec,
    listener: (event: RecursiveWatchEvent) => void,
    why: string,
  ): RecursiveSpecWatch {
    this.openInotify();
    const watch = new InotifyTreeSpec(this, spec, listener, why);
    this.inSpecs.add(watch);
    this.walkTree(watch);
    return watch;
  }

  private addWd(spec: InotifyTreeSpec, dir: string, mask: number): boolean {
    const handle = this.inHandle;
    if (handle === undefined) return false;
    if (spec.byPath.has(dir)) return true;
    let wd: number;
    try {
      wd = handle.addWatch(dir, mask);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      // ENOENT/ENOTDIR: gone or replaced meanwhile (its parent's event walks again).
      if (code !== 'ENOENT' && code !== 'ENOTDIR') spec.problem = `${dir}: ${code}`;
      return false;
    }
    const old = spec.byWd.get(wd);
    if (old !== undefined) spec.byPath.delete(old); // the same inode under a new name
    spec.byWd.set(wd, dir);
    spec.byPath.set(dir, wd);
    let subs = this.inByWd.get(wd);
    if (subs === undefined) {
      subs = new Set();
      this.inByWd.set(wd, subs);
    }
    subs.add(spec);
    return true;
  }

  /** Adds watches to `root` and every directory below it (iteratively, bounded). */
  private walkFrom(spec: InotifyTreeSpec, root: string): void {
    const limit = this.options.maxInotifyWatches ?? 500_000;
    const stack = [root];
    while (stack.length > 0) {
      if (spec.byWd.size >= limit) {
        spec.problem = `stopped at ${limit} watches`;
        return;
      }
      const dir = stack.pop() as string;
      if (!this.addWd(spec, dir, IN_DIR_MASK)) continue;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue; // removed meanwhile, or not readable
      }
      for (const e of entries)
        if (e.isDirectory()) stack.push(dir === '/' ? `/${e.name}` : `${dir}/${e.name}`);
    }
  }

  /** (Re)walks a spec: its whole tree, or the deepest existing ancestor while it is missing. */
  walkTree(spec: InotifyTreeSpec): void {
    const root = spec.spec.path;
    let isDir: boolean;
    try {
      isDir = fs.statSync(root).isDirectory();
    } catch {
      isDir = false;
    }
    spec.problem = undefined;
    if (!isDir) {
      this.dropWds(spec);
      const at = existingAncestor(root);
      spec.waitingFor = root;
      this.addWd(spec, at, IN.CREATE | IN.MOVED_TO | IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR);
      return;
    }
    if (spec.waitingFor !== undefined) {
      this.dropWds(spec);
      spec.waitingFor = undefined;
    }
    this.walkFrom(spec, root);
  }

  private dropWds(spec: InotifyTreeSpec): void {
    for (const wd of spec.byWd.keys()) this.unsubscribeWd(spec, wd);
    spec.byWd.clear();
    spec.byPath.clear();
  }

  private unsubscribeWd(spec: InotifyTreeSpec, wd: number): void {
    const subs = this.inByWd.get(wd);
    if (subs === undefined) return;
    subs.delete(spec);
    if (subs.size > 0) return;
    this.inByWd.delete(wd);
    try {
      this.inHandle?.removeWatch(wd);
    } catch {
      // EINVAL: the kernel dropped it already (IN_IGNORED on its way).
    }
  }

  releaseInotify(spec: InotifyTreeSpec): void {
    this.dropWds(spec);
    this.inSpecs.delete(spec);
    if (this.inSpecs.size === 0) {
      this.inSubscription?.unsubscribe();
      this.inSubscription = undefined;
      this.inHandle = undefined;
      this.inByWd.clear();
    }
  }

  private onInotifyRecords(records: InotifyRecord[]): void {
    this.stats.batches++;
    const touched = new Set<InotifyTreeSpec>();
    const rewalk = new Set<InotifyTreeSpec>();
    for (const r of records) {
      this.stats.inotifyRecords++;
      const subs = this.inByWd.get(r.wd);
      if (subs === undefined) continue;
      for (const spec of [...subs]) {
        const dir = spec.byWd.get(r.wd);
        if (dir === undefined) continue;
        if ((r.mask & IN.IGNORED) !== 0) {
          spec.byWd.delete(r.wd);
          if (spec.byPath.get(dir) === r.wd) spec.byPath.delete(dir);
          subs.delete(spec);
          if (subs.size === 0) this.inByWd.delete(r.wd);
          continue;
        }
        const where = r.name === '' ? dir : dir === '/' ? `/${r.name}` : `${dir}/${r.name}`;
        if (spec.waitingFor !== undefined) {
          // Waiting for the directory to appear: anything on the way walks again.
          rewalk.add(spec);
          continue;
        }
        if (!within(spec.spec.path, where)) continue;
        spec.note({ changed: true, where });
        touched.add(spec);
        const isDir = (r.mask & IN.ISDIR) !== 0;
        if (isDir && (r.mask & (IN.CREATE | IN.MOVED_TO)) !== 0) {
          // A new directory (possibly with a tree inside, moved in or made before our watch).
          this.walkFrom(spec, where);
        } else if (isDir && (r.mask & IN.MOVED_FROM) !== 0) {
          this.forgetBelow(spec, where);
        } else if (
          r.name === '' &&
          (r.mask & (IN.DELETE_SELF | IN.MOVE_SELF)) !== 0 &&
          dir === spec.spec.path
        ) {
          rewalk.add(spec);
        }
      }
    }
    for (const spec of rewalk) {
      if (spec.closed) continue;
      const before = spec.waitingFor;
      this.walkTree(spec);
      if (before !== undefined && spec.waitingFor === undefined) {
        spec.note({ changed: true, rewalked: true, where: spec.spec.path });
        touched.add(spec);
      }
    }
    this.flush([...touched]);
  }

  /** A directory moved out of the way: its watches (and its subtree's) now name wrong paths. */
  private forgetBelow(spec: InotifyTreeSpec, dir: string): void {
    for (const [wd, p] of [...spec.byWd]) {
      if (within(dir, p)) {
        spec.byWd.delete(wd);
        spec.byPath.delete(p);
        this.unsubscribeWd(spec, wd);
      }
    }
  }
}
