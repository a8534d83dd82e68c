// The watches of every path unit, on ONE inotify instance shared by all of them (systemd opens one
// per PathSpec, so root's 128 max_user_instances cap its path units; semantics.md §4). A spec is
// a path and what to wait for; the registry walks it the way systemd's path_spec_watch() does:
// every existing component is watched for being moved or deleted, the deepest existing directory
// for the next component to appear, and once the path exists, the path itself with the mask of its
// kind plus its entry in the parent directory (so a replacement by rename, a deletion or a
// chmod is seen even where the path cannot be watched itself). Symbolic links are watched as
// links (IN_DONT_FOLLOW) and their targets are walked as paths of their own, so a dangling link
// whose target appears later is seen too. Any change in the chain re-walks the spec.
//
// Many specs may need the same inode (1,000 path units on one directory): the kernel gives one wd
// per inode and instance, so a wd here has a list of subscribers and the union of their masks
// (IN_MASK_ADD); the wd is removed when its last subscriber leaves.
//
// Bound and overflow policy: records are handled per native batch (≤ 1 MiB) and coalesced per spec
// within it: a spec hears at most one event per batch, however many records concerned it. On
// IN_Q_OVERFLOW every spec is re-walked and hears one event marked `overflow`: the unit must
// re-check (and compare snapshots), so a trigger may be coalesced but is never lost.
//
// This module is the inotify implementation of PathWatchSource, the hook through which a path
// unit watches. The fanotify source ([X-Triggerd] PathChangedRecursive=, PathAccessed=) plugs in
// behind the same interface.
import fs = require('node:fs');
import nodePath = require('node:path');
import type { Subscription } from 'rxjs';
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import { IN, type InotifyHandle, type NativeInotify } from '../native/inotify-addon';
import type { PreparedLaunch } from '../native/spawn-addon';
import { inotifyEvents, type InotifyRecord, type InotifySourceItem } from './inotify-events';

/** What a path unit watches: systemd.path(5)'s kinds; other sources may accept more. */
/** Items held back at most (holdEvents); past it they are routed at once (a hold is a few ms). */
const MAX_HELD_ITEMS = 256;

export interface WatchSpec {
  kind: string;
  /** Absolute and normalized; for PathExistsGlob the pattern. */
  path: string;
}

/** One coalesced notification for one spec. */
export interface PathWatchEvent {
  /** Something happened to the path itself (written, created, deleted, moved, attributes). */
  changed: boolean;
  /** The watches were re-established (a component appeared, went away or was renamed). */
  rewalked: boolean;
  /** The kernel's queue overflowed: events were lost; re-check everything. */
  overflow: boolean;
  /** Where it happened, when the source knows better than the spec's path (TRIGGER_PATH). */
  where?: string;
  /** Who did it, when the source knows (PathAccessed=: the opener). */
  pid?: number;
  /** Among what this event sums up is the record an armed call (SpecWatch.armOnChange) fired for. */
  armed?: boolean;
}

/** What a spec's watch looks like now, for `status`. */
export interface SpecWatchState {
  /** The deepest path that is watched (the path itself once it exists). */
  watching: string;
  /** The next component that does not exist yet (undefined once the path exists). */
  waitingFor?: string;
  /** Why a component could not be watched (EACCES, ENOTDIR, ELOOP, ENOSPC, ...). */
  problem?: string;
  /** inotify watch descriptors (or marks) in use for this spec. */
  watches: number;
  /** Sources other than plain inotify say which mechanism serves the spec ('fanotify', ...). */
  mechanism?: string;
  /** Held-access sources: openers waiting now for the run to complete. */
  held?: number;
}

export interface SpecWatch {
  state(): SpecWatchState;
  /** Re-walk now (after MakeDirectory=, or when the unit knows something changed). */
  rewalk(): void;
  close(): void;
  /**
   * The run this spec triggered is over (held-access sources answer their waiting openers here).
   * Plain inotify watches have nothing to release.
   */
  release?(outcome: 'success' | 'failure'): void;
  /**
   * Arms `fn` to be called from the source's wake-up itself, before any event of that wake-up is
   * delivered, on the first change of the path itself that would make this watch's event
   * `changed` (src/core/path-armed-start.ts starts a job from there). One-shot; dropped by any
   * re-walk and by close(), which then call `dropped`. Returns the disarm function, or undefined
   * when the path is not a file with a watch of its own now. The event that carries that record
   * says `armed`.
   *
   * `prepare`, called once the watch can be armed (so a directory costs no more than its lstat):
   * the launch to clone from the wake-up before `fn` (inotify's armCall), or undefined to not arm.
   */
  armOnChange?(
    fn: () => void,
    dropped?: () => void,
    prepare?: () => PreparedLaunch | undefined,
  ): (() => void) | undefined;
  /**
   * Holds back the source's events (every spec's, in order) until the returned release is called:
   * an armed start's job has the CPU before the daemon routes the change that started it.
   */
  holdEvents?(): () => void;
}

/**
 * Everything a path unit needs from a watch mechanism: the hook for inotify (this file), fanotify
 * ([X-Triggerd] PathChangedRecursive= and PathAccessed=, src/events/path-recursive.ts and
 * path-held-access.ts) and fakes. The unit picks one per spec through PathHost.sourceFor().
 */
export interface PathWatchSource {
  readonly name: string;
  /** Starts watching; `listener` is called later, never from inside watch(). Throws on EMFILE. */
  watch(spec: WatchSpec, listener: (event: PathWatchEvent) => void): SpecWatch;
}

export interface PathWatchStats {
  /** Live specs and distinct wds. */
  specs: number;
  wds: number;
  records: number;
  batches: number;
  overflows: number;
  rewalks: number;
  /** Specs told about a batch (after coalescing). */
  deliveries: number;
  instancesOpened: number;
}

/** What the walk needs from the file system (a fake in tests). */
export interface PathProbe {
  /** lstat: the kind of node, or the errno code. */
  lstat(path: string): 'dir' | 'file' | 'link' | string;
  readlink(path: string): string;
}

export const realProbe: PathProbe = {
  lstat(p) {
    try {
      const st = fs.lstatSync(p);
      return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'EIO';
    }
  },
  readlink: (p) => fs.readlinkSync(p),
};

/** How a spec uses one wd. */
type Role =
  /** An existing directory on the way to `name`: moved, deleted, or `name`'s mode changed → re-walk. */
  | { kind: 'chain'; name: string }
  /** A directory entry `name` in the watched directory; `primary`: it is the spec's own path. */
  | { kind: 'entry'; name: string; primary: boolean }
  /** The spec's own path. */
  | { kind: 'final' }
  /** A symbolic link on the way, watched itself (IN_DONT_FOLLOW). */
  | { kind: 'link' };

const SELF = IN.MOVE_SELF | IN.DELETE_SELF;
const ENTRY = IN.CREATE | IN.MOVED_TO | IN.DELETE | IN.MOVED_FROM | IN.ATTRIB;
const MAX_LINK_DEPTH = 40;
const MAX_WALK_ROUNDS = 8;

/** The mask of the path itself, per kind (systemd's path.c, plus IN_DELETE for DirectoryNotEmpty). */
export function finalMask(kind: string): number {
  const base = IN.DELETE_SELF | IN.MOVE_SELF | IN.ATTRIB;
  switch (kind) {
    case 'PathChanged':
      return base | IN.CLOSE_WRITE | IN.CREATE | IN.DELETE | IN.MOVED_FROM | IN.MOVED_TO;
    case 'PathModified':
      return base | IN.CLOSE_WRITE | IN.CREATE | IN.DELETE | IN.MOVED_FROM | IN.MOVED_TO | IN.MODIFY;
    case 'DirectoryNotEmpty':
    case 'PathExistsGlob':
      return base | IN.CREATE | IN.MOVED_TO;
    default:
      return base;
  }
}

/**
 * `fileWatched`: the spec's path itself has a watch, so its entry in the parent need not ask for
 * IN_CLOSE_WRITE (which the kernel reports for every child of the directory: a busy directory
 * would wake the daemon on each close of any of its files).
 */
function roleMask(role: Role, kind: string, fileWatched = false): number {
  switch (role.kind) {
    case 'chain':
      return SELF | IN.ATTRIB;
    case 'entry':
      // A directory reports its entries' close-after-write too: the path's writes are seen even
      // where the path itself cannot be watched (EACCES on the file).
      return SELF | ENTRY | (role.primary && !fileWatched ? finalMask(kind) & IN.CLOSE_WRITE : 0);
    case 'final':
      return finalMask(kind);
    case 'link':
      return SELF | IN.ATTRIB;
  }
}

/** The literal directory a glob pattern starts in: '/a/b/*.txt' → '/a/b'. */
export function globBase(pattern: string): string {
  const parts = pattern.split('/').filter((p) => p !== '');
  const i = parts.findIndex((p) => /[*?[]/.test(p));
  return `/${(i < 0 ? parts : parts.slice(0, i)).join('/')}`;
}

interface WdEntry {
  wd: number;
  path: string;
  subs: Map<SpecWatchImpl, Role[]>;
}

interface Want {
  path: string;
  role: Role;
  dontFollow: boolean;
}

class SpecWatchImpl implements SpecWatch {
  /** wd → roles, for the watches this spec holds now. */
  held = new Map<number, Role[]>();
  watching = '/';
  waitingFor: string | undefined;
  problem: string | undefined;
  closed = false;
  pending: PathWatchEvent | undefined;
  /** The call armed on the path's own wd (armOnChange), until it fires or is dropped. */
  arm: { id: number; wd: number; mask: number; dropped: (() => void) | undefined } | undefined;
  /** It fired: the first record of its kind on that wd is the one, and its event says `armed`. */
  armFired: { wd: number; mask: number } | undefined;

  constructor(
    private readonly owner: InotifyPathWatches,
    readonly spec: WatchSpec,
    readonly listener: (event: PathWatchEvent) => void,
  ) {}

  state(): SpecWatchState {
    return {
      watching: this.watching,
      ...(this.waitingFor !== undefined ? { waitingFor: this.waitingFor } : {}),
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
      watches: this.held.size,
    };
  }

  rewalk(): void {
    if (!this.closed) this.owner.walk(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.release(this);
  }

  armOnChange(
    fn: () => void,
    dropped?: () => void,
    prepare?: () => PreparedLaunch | undefined,
  ): (() => void) | undefined {
    return this.owner.armCall(this, fn, dropped, prepare);
  }

  holdEvents(): () => void {
    return this.owner.holdEvents();
  }

  /** What one record on one of this spec's wds means for it. */
  classify(roles: readonly Role[], r: InotifyRecord): { changed: boolean; rewalk: boolean } {
    let changed = false;
    let rewalk = false;
    const self = r.name === '';
    for (const role of roles) {
      switch (role.kind) {
        case 'chain':
          if (self ? (r.mask & (SELF | IN.ATTRIB | IN.UNMOUNT)) !== 0 : r.name === role.name) rewalk = true;
          break;
        case 'link':
          if (self && (r.mask & (SELF | IN.ATTRIB | IN.UNMOUNT)) !== 0) rewalk = true;
          break;
        case 'entry':
          if (self) {
            if ((r.mask & (SELF | IN.ATTRIB | IN.UNMOUNT)) !== 0) rewalk = true;
          } else if (r.name === role.name) {
            // A chmod of the entry may make it watchable; anything else changes what is there.
            if ((r.mask & ENTRY) !== 0) {
              rewalk = true;
              if (role.primary) changed = true;
            } else if (role.primary && (r.mask & IN.CLOSE_WRITE & finalMask(this.spec.kind)) !== 0) {
              changed = true;
            }
          }
          break;
        case 'final': {
          const mask = finalMask(this.spec.kind);
          if ((r.mask & mask) === 0 && (r.mask & IN.UNMOUNT) === 0) break;
          changed = true;
          if (self && (r.mask & (SELF | IN.UNMOUNT)) !== 0) rewalk = true;
          break;
        }
      }
    }
    return { changed, rewalk };
  }
}

export interface InotifyPathWatchesOptions {
  native: NativeInotify;
  logger: Logger;
  probe?: PathProbe;
}

export class InotifyPathWatches implements PathWatchSource {
  readonly name = 'inotify';
  private handle: InotifyHandle | undefined;
  private subscription: Subscription | undefined;
  private readonly byWd = new Map<number, WdEntry>();
  private readonly specs = new Set<SpecWatchImpl>();
  private readonly probe: PathProbe;
  private readonly logger: Logger;
  private readonly problemLog = new RateLimitedLog(10_000, 10);
  private readonly dirty = new Set<SpecWatchImpl>();
  readonly stats: PathWatchStats = {
    specs: 0,
    wds: 0,
    records: 0,
    batches: 0,
    overflows: 0,
    rewalks: 0,
    deliveries: 0,
    instancesOpened: 0,
  };

  constructor(private readonly options: InotifyPathWatchesOptions) {
    this.probe = options.probe ?? realProbe;
    this.logger = options.logger;
  }

  watch(spec: WatchSpec, listener: (event: PathWatchEvent) => void): SpecWatch {
    this.open();
    const w = new SpecWatchImpl(this, spec, listener);
    this.specs.add(w);
    this.stats.specs = this.specs.size;
    this.walk(w);
    return w;
  }

  /** The wds in use now (tests, status of the daemon). */
  wdCount(): number {
    return this.byWd.size;
  }

  /** Closes the instance (every watch goes with it); specs still open stop hearing anything. */
  close(): void {
    for (const w of this.specs) this.disarm(w);
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.handle = undefined;
    this.byWd.clear();
    for (const s of this.specs) s.held.clear();
    this.specs.clear();
    this.stats.specs = 0;
    this.stats.wds = 0;
  }

  private open(): void {
    if (this.handle !== undefined) return;
    let failed: unknown;
    let opened: InotifyHandle | undefined;
    const sub = inotifyEvents(this.options.native).subscribe({
      next: (item) => {
        if (item.kind === 'open') opened = item.handle;
        // Held (holdEvents), or others held before it still to go: in order, later.
        else if ((this.holds > 0 || this.heldItems.length > 0) && this.heldItems.length < MAX_HELD_ITEMS)
          this.heldItems.push(item);
        else this.onItem(item);
      },
      error: (err: unknown) => (failed = err),
    });
    if (failed !== undefined || opened === undefined) {
      sub.unsubscribe();
      throw failed ?? new Error('inotify did not open');
    }
    this.subscription = sub;
    this.handle = opened;
    this.stats.instancesOpened++;
  }

  /** SpecWatch.holdEvents: items wait in `heldItems` while any hold is on. */
  private holds = 0;
  private readonly heldItems: Exclude<InotifySourceItem, { kind: 'open' }>[] = [];

  holdEvents(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      // On a turn of its own: a release comes from inside a flush (a job request, a control
      // request), where routing changes into path units must not run.
      if (this.holds === 0 && this.heldItems.length > 0) setImmediate(() => this.drainHeld());
    };
  }

  /** One held item per turn, as the source hands them over (its slices are ~1-2 ms each). */
  private drainHeld(): void {
    if (this.holds > 0) return;
    const item = this.heldItems.shift();
    if (item !== undefined) this.onItem(item);
    if (this.holds === 0 && this.heldItems.length > 0) setImmediate(() => this.drainHeld());
  }

  /** SpecWatch.armOnChange: one call armed on the spec's own wd, with the mask of its kind. */
  armCall(
    w: SpecWatchImpl,
    fn: () => void,
    dropped?: () => void,
    prepare?: () => PreparedLaunch | undefined,
  ): (() => void) | undefined {
    const handle = this.handle;
    if (handle === undefined || w.closed) return undefined;
    this.disarm(w, false);
    // A directory's changes come as records naming its entries; the arm fires on the path's own.
    if (this.probe.lstat(w.spec.path) !== 'file') return undefined;
    let wd: number | undefined;
    for (const [d, roles] of w.held) if (roles.some((r) => r.kind === 'final')) wd = d;
    if (wd === undefined) return undefined;
    const mask = finalMask(w.spec.kind);
    const at = wd;
    const prepared = prepare?.();
    if (prepare !== undefined && prepared === undefined) return undefined;
    const id = handle.armCall(
      wd,
      mask,
      () => {
        w.arm = undefined;
        w.armFired = { wd: at, mask };
        fn();
      },
      prepared,
    );
    w.arm = { id, wd, mask, dropped };
    return () => {
      if (w.arm?.id === id) this.disarm(w, false);
    };
  }

  /** `tell`: the source drops it (re-walk, close), and its owner hears of it. */
  private disarm(w: SpecWatchImpl, tell = true): void {
    const arm = w.arm;
    if (arm === undefined) return;
    try {
      this.handle?.disarmCall(arm.id);
    } catch {
      // the handle is closed: its arms went with it
    }
    w.arm = undefined;
    if (tell) arm.dropped?.();
  }

  // ---- walking ---------------------------------------------------------------------------------

  /** Re-establish a spec's watches from what is on disk now; subscribers of dropped wds leave. */
  walk(w: SpecWatchImpl): void {
    const handle = this.handle;
    if (handle === undefined || w.closed) return;
    this.stats.rewalks++;
    // The arm's wd may not be the path's own any more; the armer arms again if it still wants to.
    this.disarm(w);
    w.armFired = undefined;
    for (let round = 0; round < MAX_WALK_ROUNDS; round++) {
      const plan = this.plan(w.spec);
      const next = new Map<number, Role[]>();
      let raced = false;
      let fileWatched = false;
      w.problem = plan.problem;
      // The path itself first: once it has a watch, its parent is asked for less.
      const wants = [...plan.wants].sort(
        (a, b) => Number(b.role.kind === 'final') - Number(a.role.kind === 'final'),
      );
      for (const want of wants) {
        let wd: number;
        try {
          wd = handle.addWatch(
            want.path,
            roleMask(want.role, w.spec.kind, fileWatched) |
              IN.MASK_ADD |
              (want.dontFollow ? IN.DONT_FOLLOW : 0),
          );
          if (want.role.kind === 'final') fileWatched = true;
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          // The node went away between lstat and inotify_add_watch: walk again.
          if (e.code === 'ENOENT' || e.code === 'ENOTDIR') raced = true;
          else {
            w.problem = `${want.path}: ${e.code ?? 'error'}`;
            if (e.code === 'ENOSPC')
              this.report(
                `inotify watch limit reached (fs.inotify.max_user_watches) at ${want.path}`,
                e.code,
              );
          }
          continue;
        }
        const roles = next.get(wd) ?? [];
        roles.push(want.role);
        next.set(wd, roles);
      }
      this.swap(w, next);
      w.watching = plan.watching;
      w.waitingFor = plan.waitingFor;
      if (raced) continue;
      // Close the race between lstat and the watch: did the next component appear meanwhile?
      if (plan.waitingFor !== undefined) {
        const probe = this.probe.lstat(nodePath.join(plan.watching, plan.waitingFor));
        if (probe === 'dir' || probe === 'file' || probe === 'link') continue;
      }
      return;
    }
  }

  /** What to watch for a spec, from lstat of each component (following links as paths of their own). */
  private plan(spec: WatchSpec): {
    wants: Want[];
    watching: string;
    waitingFor?: string;
    problem?: string;
  } {
    const wants: Want[] = [];
    const target = spec.kind === 'PathExistsGlob' ? globBase(spec.path) : spec.path;
    let parts = target.split('/').filter((p) => p !== '');
    let dir = '/';
    let depth = 0;
    let i = 0;
    let problem: string | undefined;
    for (;;) {
      if (i >= parts.length) {
        // The path exists: the path itself, and its entry in the parent.
        wants.push({ path: dir, role: { kind: 'final' }, dontFollow: false });
        return { wants, watching: dir, problem };
      }
      const name = parts[i];
      const child = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const last = i === parts.length - 1;
      const kind = this.probe.lstat(child);
      if (kind === 'link') {
        wants.push({ path: dir, role: { kind: 'entry', name, primary: last }, dontFollow: false });
        wants.push({ path: child, role: { kind: 'link' }, dontFollow: true });
        if (++depth > MAX_LINK_DEPTH) return { wants, watching: dir, waitingFor: name, problem: 'ELOOP' };
        let to: string;
        try {
          to = this.probe.readlink(child);
        } catch (err) {
          return { wants, watching: dir, waitingFor: name, problem: (err as NodeJS.ErrnoException).code };
        }
        const resolved = nodePath.resolve(dir, to);
        parts = [...resolved.split('/').filter((p) => p !== ''), ...parts.slice(i + 1)];
        dir = '/';
        i = 0;
        continue;
      }
      if (kind === 'dir' || (kind === 'file' && last)) {
        wants.push({
          path: dir,
          role: last ? { kind: 'entry', name, primary: true } : { kind: 'chain', name },
          dontFollow: false,
        });
        dir = child;
        i++;
        continue;
      }
      // Missing (or a file where a directory should be, or not searchable): wait in `dir`.
      if (kind !== 'ENOENT') problem = `${child}: ${kind === 'file' ? 'ENOTDIR' : kind}`;
      wants.push({ path: dir, role: { kind: 'entry', name, primary: last }, dontFollow: false });
      return { wants, watching: dir, waitingFor: name, problem };
    }
  }

  /** Move a spec from its old wds to `next`; wds nobody needs any more are removed. */
  private swap(w: SpecWatchImpl, next: Map<number, Role[]>): void {
    for (const [wd] of w.held) if (!next.has(wd)) this.unsubscribe(w, wd);
    for (const [wd, roles] of next) {
      let entry = this.byWd.get(wd);
      if (entry === undefined) {
        entry = { wd, path: '', subs: new Map() };
        this.byWd.set(wd, entry);
      }
      entry.subs.set(w, roles);
    }
    w.held = next;
    this.stats.wds = this.byWd.size;
  }

  private unsubscribe(w: SpecWatchImpl, wd: number): void {
    const entry = this.byWd.get(wd);
    if (entry === undefined) return;
    entry.subs.delete(w);
    if (entry.subs.size > 0) return;
    this.byWd.delete(wd);
    try {
      this.handle?.removeWatch(wd);
    } catch {
      // EINVAL: the kernel dropped it already (IN_IGNORED on its way)
    }
  }

  release(w: SpecWatchImpl): void {
    this.disarm(w);
    w.armFired = undefined;
    for (const [wd] of w.held) this.unsubscribe(w, wd);
    w.held.clear();
    this.specs.delete(w);
    this.dirty.delete(w);
    this.stats.specs = this.specs.size;
    this.stats.wds = this.byWd.size;
  }

  // ---- events ----------------------------------------------------------------------------------

  private onItem(item: Exclude<InotifySourceItem, { kind: 'open' }>): void {
    switch (item.kind) {
      case 'records':
        this.stats.batches++;
        this.onRecords(item.records);
        if (item.garbledBytes > 0)
          this.report(`inotify: ${item.garbledBytes} bytes that are not a whole record`);
        return;
      case 'overflow':
        this.onOverflow();
        return;
      case 'error':
        this.report(`inotify read: ${item.error.message}`, item.error.code);
        return;
    }
  }

  private mark(w: SpecWatchImpl, changed: boolean, rewalk: boolean, overflow = false, armed = false): void {
    const p = w.pending ?? { changed: false, rewalked: false, overflow: false };
    p.changed ||= changed;
    p.rewalked ||= rewalk;
    p.overflow ||= overflow;
    if (armed) p.armed = true;
    w.pending = p;
    this.dirty.add(w);
  }

  private onRecords(records: readonly InotifyRecord[]): void {
    this.stats.records += records.length;
    for (const r of records) {
      const entry = this.byWd.get(r.wd);
      if (entry === undefined) continue;
      if ((r.mask & IN.IGNORED) !== 0) {
        // The kernel dropped the watch (its inode is gone, or its file system unmounted).
        this.byWd.delete(r.wd);
        for (const [w] of entry.subs) {
          w.held.delete(r.wd);
          this.mark(w, false, true);
        }
        continue;
      }
      for (const [w, roles] of entry.subs) {
        const c = w.classify(roles, r);
        const fired = w.armFired;
        const armed =
          fired !== undefined && fired.wd === r.wd && r.name === '' && (r.mask & fired.mask) !== 0;
        if (armed) w.armFired = undefined;
        if (c.changed || c.rewalk) this.mark(w, c.changed, c.rewalk, false, armed);
      }
    }
    this.stats.wds = this.byWd.size;
    this.deliver();
  }

  private onOverflow(): void {
    this.stats.overflows++;
    this.logger.warn(
      { specs: this.specs.size },
      'inotify queue overflowed (fs.inotify.max_queued_events): re-walking and re-checking every watched path',
    );
    for (const w of this.specs) this.mark(w, false, true, true);
    this.deliver();
  }

  /** One event per dirty spec; re-walks first, so the unit checks against fresh watches. */
  private deliver(): void {
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty];
    this.dirty.clear();
    for (const w of batch) {
      const event = w.pending;
      w.pending = undefined;
      if (event === undefined || w.closed) continue;
      if (event.rewalked) this.walk(w);
      this.stats.deliveries++;
      try {
        w.listener(event);
      } catch (err) {
        // One unit's bug must not stop the others from hearing the batch.
        this.report(`path unit listener threw: ${(err as Error).message}`);
      }
    }
  }

  private report(message: string, code?: string): void {
    const suppressed = this.problemLog.admit();
    if (suppressed >= 0)
      this.logger.warn(
        { ...(code !== undefined ? { code } : {}), ...(suppressed > 0 ? { suppressed } : {}) },
        message,
      );
  }
}
