// [X-Triggerd] PathAccessed=PATTERN with HoldAccess=yes, HoldTimeoutSec=, HoldOnTimeout=: a process
// that opens a file matching PATTERN triggers the unit and, with HoldAccess=yes, stays blocked in
// open(2) (a fanotify FAN_OPEN_PERM event) until the triggered job has completed, so a file can be
// produced, decrypted or fetched on first access and the reader sees the result, not a race.
//
// - One fanotify group (FAN_CLASS_CONTENT) for every such spec; one inode mark per directory with
//   FAN_OPEN_PERM | FAN_EVENT_ON_CHILD. PATTERN's directory part must be literal (a glob there
//   would need a filesystem-wide permission mark, which would make every open on the file system
//   wait for this daemon); its last component may be a glob (*, ?, [...]).
// - Never held: the daemon's own opens (pid == process.pid), the job's own (the host's
//   `isJobProcess(pid)`: the job's cgroup or process tree; the pid is in the event), opens of
//   entries that do not match. Those are allowed at once.
// - Released by: release(outcome) when the triggered job completes (allow; on failure as
//   HoldOnTimeout says), the per-opener HoldTimeoutSec timer (as HoldOnTimeout says), close(), and
//   the daemon's death: the kernel allows every pending permission event when the group's fd
//   closes, including when the process is killed (see test/integration/path-held-access.test.ts).
//
// Bound: a held opener costs one event fd; the addon stops reading at 8192 open event fds and the
// kernel's queue holds the rest (permission events are never dropped: an opener simply waits).
// Overflow: FAN_Q_OVERFLOW concerns notification events only; a permission group never loses one.
import fs = require('node:fs');
import nodePath = require('node:path');
import type { Subscription } from 'rxjs';
import {
  FAN,
  FAN_INIT,
  FAN_MARK,
  FAN_RESPONSE,
  O_LARGEFILE,
  type FanotifyHandle,
  type NativeFanotify,
} from '../native/fanotify-addon';
import { fanotifyEvents, releaseRecord, type FanotifyRecord } from './fanotify-events';

export const PATH_ACCESSED = 'PathAccessed';

export type HoldVerdict = 'allow' | 'deny';

/** A PathAccessed= spec with its [X-Triggerd] hold settings. */
export interface HeldAccessSpec {
  kind: string;
  /** Absolute; the last component may be a glob. */
  path: string;
  /** HoldAccess= (default no: the opener is only reported, never held). */
  hold?: boolean;
  /** HoldTimeoutSec= in ms; 0 holds until the job completes (default 90 s). */
  holdTimeoutMs?: number;
  /** HoldOnTimeout= (default allow): the answer on timeout, and when the job failed. */
  holdOnTimeout?: HoldVerdict;
}

/** What the path unit hears (the shape of its PathWatchEvent, plus who and what). */
export interface HeldAccessEvent {
  changed: boolean;
  rewalked: boolean;
  overflow: boolean;
  /** The file that was opened. */
  where?: string;
  /** The opener. */
  pid?: number;
  /** Openers held now for this spec (this one included). */
  held?: number;
}

export interface HeldAccessState {
  watching: string;
  problem?: string;
  watches: number;
  mechanism: string;
  /** Openers waiting now. */
  held: number;
  /** Since the spec was watched. */
  accesses: number;
  allowedOnTimeout: number;
  deniedOnTimeout: number;
}

export interface HeldSpecWatch {
  state(): HeldAccessState;
  rewalk(): void;
  close(): void;
  /**
   * The triggered job completed: every held opener is answered (success: allow; failure: as
   * HoldOnTimeout says) and the next matching open triggers again.
   */
  release(outcome: 'success' | 'failure'): void;
}

export interface HeldAccessWatchesOptions {
  fanotify: NativeFanotify;
  /**
   * Whether `pid` belongs to a triggered job (its cgroup or process tree): its opens are never
   * held. See inCgroup() and descendsFrom() below. Default: no process is.
   */
  isJobProcess?: (pid: number) => boolean;
  /** Timers (virtual time in tests). */
  setTimer?: (ms: number, fn: () => void) => () => void;
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

interface Waiter {
  fd: number;
  pid: number;
  path: string;
  cancelTimer: () => void;
}

const PERM_MASK = FAN.OPEN_PERM | FAN.EVENT_ON_CHILD;
const DEFAULT_TIMEOUT_MS = 90_000;

/** A glob for one path component (fnmatch without FNM_PERIOD's exceptions): *, ?, [...], [!...]. */
export function componentMatcher(glob: string): (name: string) => boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  const rx = new RegExp(`^${re}$`);
  // glob(3): a leading dot is matched only by a leading dot.
  return (name) => (name.startsWith('.') && !glob.startsWith('.') ? false : rx.test(name));
}

/** `pid` is in cgroup v2 `cgroup` (as /proc/PID/cgroup names it, e.g. '/triggerd/foo.service'). */
export function inCgroup(pid: number, cgroup: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'latin1');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('0::')) continue;
    const p = line.slice(3);
    return p === cgroup || p.startsWith(`${cgroup}/`);
  }
  return false;
}

/** `pid` is one of `roots` or descends from one (parent chain in /proc, at most 128 steps). */
export function descendsFrom(pid: number, roots: ReadonlySet<number>): boolean {
  let cur = pid;
  for (let i = 0; i < 128 && cur > 1; i++) {
    if (roots.has(cur)) return true;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${cur}/stat`, 'latin1');
    } catch {
      return false;
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses; the last ')' ends it.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cur = Number(rest[1]);
    if (!Number.isInteger(cur)) return false;
  }
  return false;
}

class HeldSpec implements HeldSpecWatch {
  closed = false;
  running = false;
  readonly waiters: Waiter[] = [];
  readonly dir: string;
  readonly matches: (name: string) => boolean;
  readonly hold: boolean;
  readonly timeoutMs: number;
  readonly onTimeout: HoldVerdict;
  accesses = 0;
  allowedOnTimeout = 0;
  deniedOnTimeout = 0;
  problem: string | undefined;

  constructor(
    private readonly owner: HeldAccessWatches,
    readonly spec: HeldAccessSpec,
    readonly listener: (event: HeldAccessEvent) => void,
  ) {
    const p = nodePath.resolve(spec.path);
    this.dir = nodePath.dirname(p);
    this.matches = componentMatcher(nodePath.basename(p));
    this.hold = spec.hold === true;
    this.timeoutMs = spec.holdTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.onTimeout = spec.holdOnTimeout ?? 'allow';
  }

  state(): HeldAccessState {
    return {
      watching: this.dir,
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
      watches: 1,
      mechanism: `fanotify FAN_OPEN_PERM on ${this.dir}${this.hold ? ', held' : ''}`,
      held: this.waiters.length,
      accesses: this.accesses,
      allowedOnTimeout: this.allowedOnTimeout,
      deniedOnTimeout: this.deniedOnTimeout,
    };
  }

  rewalk(): void {
    // An inode mark follows the directory; a replaced directory needs a new mark.
    if (!this.closed) this.owner.remark(this);
  }

  release(outcome: 'success' | 'failure'): void {
    this.running = false;
    const verdict: HoldVerdict = outcome === 'success' ? 'allow' : this.onTimeout;
    for (const w of this.waiters.splice(0)) this.owner.answer(w, verdict);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) this.owner.answer(w, 'allow');
    this.owner.releaseSpec(this);
  }

  timedOut(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    if (this.onTimeout === 'allow') this.allowedOnTimeout++;
    else this.deniedOnTimeout++;
    this.owner.answer(w, this.onTimeout);
  }
}

export class HeldAccessWatches {
  readonly name = 'fanotify-held-access';
  readonly stats = { events: 0, allowedAtOnce: 0, held: 0, ownAccesses: 0, jobAccesses: 0, answerErrors: 0 };
  private handle: FanotifyHandle | undefined;
  private subscription: Subscription | undefined;
  private readonly specs = new Set<HeldSpec>();
  /** Marked directory → specs using it. */
  private readonly dirs = new Map<string, Set<HeldSpec>>();
  private readonly setTimer: (ms: number, fn: () => void) => () => void;

  constructor(private readonly options: HeldAccessWatchesOptions) {
    this.setTimer =
      options.setTimer ??
      ((ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      });
  }

  /** Throws EPERM (no CAP_SYS_ADMIN: permission events are root's), ENOENT for a missing directory. */
  watch(spec: HeldAccessSpec, listener: (event: HeldAccessEvent) => void): HeldSpecWatch {
    const watch = new HeldSpec(this, spec, listener);
    if (/[*?[]/.test(watch.dir)) {
      throw Object.assign(new Error(`PathAccessed=${spec.path}: only the last component may be a glob`), {
        code: 'ERR_PATH_ACCESSED_GLOB',
      });
    }
    const handle = this.open();
    let users = this.dirs.get(watch.dir);
    if (users === undefined) {
      try {
        handle.mark(FAN_MARK.ADD | FAN_MARK.ONLYDIR, PERM_MASK, watch.dir);
      } catch (err) {
        if (this.specs.size === 0) this.shut();
        throw err;
      }
      users = new Set();
      this.dirs.set(watch.dir, users);
    }
    users.add(watch);
    this.specs.add(watch);
    return watch;
  }

  close(): void {
    for (const s of [...this.specs]) s.close();
    this.shut();
  }

  private open(): FanotifyHandle {
    if (this.handle !== undefined && !this.handle.closed) return this.handle;
    let opened: FanotifyHandle | undefined;
    let failure: unknown;
    const subscription = fanotifyEvents(this.options.fanotify, {
      flags: FAN_INIT.CLASS_CONTENT,
      eventFlags: O_LARGEFILE,
    }).subscribe({
      next: (item) => {
        if (item.kind === 'open') opened = item.handle;
        else if (item.kind === 'records') this.onRecords(item.records);
        else if (item.kind === 'error')
          this.options.warn?.('fanotify read failed', { code: item.error.code });
      },
      error: (err: unknown) => {
        failure = err;
      },
    });
    if (opened === undefined) {
      subscription.unsubscribe();
      throw failure instanceof Error ? failure : new Error(String(failure));
    }
    this.handle = opened;
    this.subscription = subscription;
    return opened;
  }

  private shut(): void {
    // Closing the group allows whatever still waits (the kernel does it).
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.handle = undefined;
    this.dirs.clear();
  }

  releaseSpec(spec: HeldSpec): void {
    this.specs.delete(spec);
    const users = this.dirs.get(spec.dir);
    if (users !== undefined) {
      users.delete(spec);
      if (users.size === 0) {
        this.dirs.delete(spec.dir);
        try {
          this.handle?.mark(FAN_MARK.REMOVE | FAN_MARK.ONLYDIR, PERM_MASK, spec.dir);
        } catch {
          // ENOENT: the directory (and its mark) went away.
        }
      }
    }
    if (this.specs.size === 0) this.shut();
  }

  remark(spec: HeldSpec): void {
    const handle = this.handle;
    if (handle === undefined) return;
    try {
      handle.mark(FAN_MARK.ADD | FAN_MARK.ONLYDIR, PERM_MASK, spec.dir);
      spec.problem = undefined;
    } catch (err) {
      spec.problem = `${spec.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
  }

  answer(w: Waiter, verdict: HoldVerdict): void {
    w.cancelTimer();
    const handle = this.handle;
    if (handle === undefined || handle.closed) return; // the kernel allowed it when the group closed
    try {
      handle.respond(w.fd, verdict === 'allow' ? FAN_RESPONSE.ALLOW : FAN_RESPONSE.DENY);
    } catch {
      this.stats.answerErrors++;
    }
    try {
      handle.closeEventFd(w.fd);
    } catch {
      // closed already
    }
  }

  private onRecords(records: FanotifyRecord[]): void {
    const handle = this.handle;
    if (handle === undefined) return;
    const notify = new Map<HeldSpec, HeldAccessEvent>();
    for (const r of records) {
      this.stats.events++;
      if (!r.permission || r.fd < 0) continue; // notifications' fds are closed by the source
      const verdict = this.decide(r, notify);
      if (verdict !== undefined) {
        this.stats.allowedAtOnce++;
        releaseRecord(handle, r, FAN_RESPONSE.ALLOW);
      }
    }
    for (const [spec, event] of notify) if (!spec.closed) spec.listener(event);
  }

  /** Holds the record (undefined) or says to allow it now. */
  private decide(r: FanotifyRecord, notify: Map<HeldSpec, HeldAccessEvent>): 'allow' | undefined {
    if (r.pid === process.pid) {
      this.stats.ownAccesses++;
      return 'allow';
    }
    let path: string;
    try {
      path = fs.readlinkSync(`/proc/self/fd/${r.fd}`);
    } catch {
      return 'allow';
    }
    if (path.endsWith(' (deleted)')) path = path.slice(0, -' (deleted)'.length);
    const dir = nodePath.dirname(path);
    const name = nodePath.basename(path);
    const users = this.dirs.get(dir);
    if (users === undefined) return 'allow';
    const matching = [...users].filter((s) => !s.closed && s.matches(name));
    if (matching.length === 0) return 'allow';
    if (this.options.isJobProcess?.(r.pid) === true) {
      this.stats.jobAccesses++;
      return 'allow';
    }
    let holder: HeldSpec | undefined;
    for (const spec of matching) {
      spec.accesses++;
      if (holder === undefined && spec.hold) holder = spec;
    }
    if (holder !== undefined) {
      const spec = holder;
      const w: Waiter = { fd: r.fd, pid: r.pid, path, cancelTimer: () => undefined };
      if (spec.timeoutMs > 0) w.cancelTimer = this.setTimer(spec.timeoutMs, () => spec.timedOut(w));
      spec.waiters.push(w);
      this.stats.held++;
    }
    for (const spec of matching) {
      // A spec whose job is already running holds the opener and is not triggered again.
      if (spec.hold && spec.running) continue;
      if (spec.hold) spec.running = true;
      const prev = notify.get(spec);
      if (prev === undefined)
        notify.set(spec, {
          changed: true,
          rewalked: false,
          overflow: false,
          where: path,
          pid: r.pid,
          held: spec.waiters.length,
        });
      else prev.held = spec.waiters.length;
    }
    return holder === undefined ? 'allow' : undefined;
  }
}
