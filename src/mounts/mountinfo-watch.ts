// Following /proc/self/mountinfo: the native POLLPRI watch (native/mounts) as a cold Observable
// of wake-ups, and MountInfoMonitor, which turns wake-ups into coalesced reads and diffs.
//
// Coalescing (semantics.md §3, systemd#8703/#31137): a wake-up only marks the table dirty. The
// read runs on the threadpool (the kernel holds the namespace lock while it writes the text, so a
// read during a storm can take hundreds of ms), and parse + diff run on the loop at most once per
// interval, the larger of `minIntervalMs` and four times what the last parse + diff cost, so
// following a storm takes at most about a fifth of the loop, and notify datagrams and child exits
// are served in between. Unchanged lines keep their parsed entries from the last read.
// Bound: one table (the kernel's) in memory, plus the previous one for the diff. Nothing queues:
// any number of wake-ups between two reads is one read. Without the addon the monitor polls the
// table on a timer (`fallbackPollMs`) and says so.
import fs = require('node:fs');
import { Observable } from '../util/rx';
import type { MountInfoWatch, NativeMounts, NativeSystemError } from '../native/mounts-addon';
import {
  diffMountTables,
  isEmptyDiff,
  mountTable,
  parseMountInfo,
  type MountEntry,
  type MountInfoProblem,
  type MountTableDiff,
} from './mountinfo';

export type MountInfoSignal = { kind: 'changed' } | { kind: 'error'; error: NativeSystemError };

/** Cold: each subscription opens its own watch; unsubscribing closes it. Open errors end the stream. */
export function mountInfoEvents(native: NativeMounts, path?: string): Observable<MountInfoSignal> {
  return new Observable<MountInfoSignal>((subscriber) => {
    let watch: MountInfoWatch;
    try {
      watch = native.watchMountInfo(
        () => subscriber.next({ kind: 'changed' }),
        (error) => subscriber.next({ kind: 'error', error }),
        path,
      );
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    return () => watch.close();
  });
}

export interface MountTableUpdate {
  table: ReadonlyMap<number, MountEntry>;
  diff: MountTableDiff;
  /** Lines that could not be read this time (reported, skipped). */
  problems: MountInfoProblem[];
  /** The first read after start. */
  initial: boolean;
}

export interface MountInfoMonitorOptions {
  /** undefined: no addon; poll every `fallbackPollMs`. */
  native: NativeMounts | undefined;
  onUpdate(update: MountTableUpdate): void;
  onError?(error: Error): void;
  /** The table's text, for the first read and refresh() (default: read /proc/self/mountinfo, or `path`). */
  read?: () => string;
  /** The same, off the loop, for reads after wake-ups (default: fs.promises.readFile; with only `read` given, `read`). */
  readAsync?: () => Promise<string>;
  path?: string;
  /** Shortest time between two reads (default 10 ms). */
  minIntervalMs?: number;
  fallbackPollMs?: number;
  /** Monotonic ms (tests pass a virtual clock). */
  now?: () => number;
  setTimer?: (ms: number, fn: () => void) => () => void;
}

export interface MountInfoStats {
  wakeups: number;
  reads: number;
  /** Reads that found the table unchanged. */
  emptyReads: number;
  /** On the loop: parse + diff of the last read, the worst, and in all. */
  lastReadMs: number;
  maxReadMs: number;
  totalReadMs: number;
  /** Waiting for the kernel's text (off the loop for reads after wake-ups). */
  totalWaitMs: number;
  mounts: number;
  problems: number;
}

const DEFAULT_MIN_INTERVAL_MS = 10;
const COST_FACTOR = 4;

export class MountInfoMonitor {
  private table: Map<number, MountEntry> = new Map();
  /** The last read's lines → entries, reused for lines that did not change. */
  private lines: Map<string, MountEntry> | undefined;
  private inFlight = false;
  private dirty = false;
  private readSeq = 0;
  private appliedSeq = 0;
  private cancelTimer: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastReadAt = -Infinity;
  private started = false;
  private closed = false;
  readonly stats: MountInfoStats = {
    wakeups: 0,
    reads: 0,
    emptyReads: 0,
    lastReadMs: 0,
    maxReadMs: 0,
    totalReadMs: 0,
    totalWaitMs: 0,
    mounts: 0,
    problems: 0,
  };
  private readonly now: () => number;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;
  private readonly read: () => string;

  constructor(private readonly options: MountInfoMonitorOptions) {
    this.now = options.now ?? (() => performance.now());
    this.setTimer =
      options.setTimer ??
      ((ms, fn) => {
        if (ms <= 0) {
          const i = setImmediate(fn);
          return () => clearImmediate(i);
        }
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      });
    const file = options.path ?? '/proc/self/mountinfo';
    this.read = options.read ?? (() => fs.readFileSync(file, 'utf8'));
  }

  /** The kernel's table as last read. */
  current(): ReadonlyMap<number, MountEntry> {
    return this.table;
  }

  /** Whether the native watch is used (false: timer polling). */
  get watching(): boolean {
    return this.unsubscribe !== undefined && this.options.native !== undefined;
  }

  /** Open the watch and read the table; read again on the next loop turn (after the fd is registered). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const { native } = this.options;
    if (native !== undefined) {
      try {
        const sub = mountInfoEvents(native, this.options.path).subscribe({
          next: (s) => {
            if (s.kind === 'changed') {
              this.stats.wakeups++;
              this.schedule();
            } else this.options.onError?.(s.error);
          },
          error: (err: Error) => this.options.onError?.(err),
        });
        this.unsubscribe = () => sub.unsubscribe();
      } catch (err) {
        this.options.onError?.(err as Error);
      }
    }
    if (this.unsubscribe === undefined) this.pollOnTimer();
    // Now, for whoever needs the table at once; and again after the loop has registered the
    // watch (a change in between may have been consumed by the registration's poll).
    this.readNow(true);
    this.cancelTimer = this.setTimer(0, () => this.readNow(false));
  }

  /**
   * Read now (a mount or umount process just exited: its unit must see the kernel's answer
   * before it decides). Cancels a scheduled read; returns the diff.
   */
  refresh(): MountTableDiff {
    return this.readNow(false);
  }

  close(): void {
    this.closed = true;
    this.stopPolling?.();
    this.stopPolling = undefined;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private stopPolling: (() => void) | undefined;

  private pollOnTimer(): void {
    const ms = this.options.fallbackPollMs ?? 1000;
    const tick = (): void => {
      if (this.closed) return;
      this.schedule();
      this.stopPolling = this.setTimer(ms, tick);
    };
    this.stopPolling = this.setTimer(ms, tick);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.inFlight) {
      // A read is on its way; one more follows it.
      this.dirty = true;
      return;
    }
    if (this.cancelTimer !== undefined) return;
    const interval = Math.max(
      this.options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS,
      COST_FACTOR * this.stats.lastReadMs,
    );
    const wait = Math.max(0, this.lastReadAt + interval - this.now());
    this.cancelTimer = this.setTimer(wait, () => this.readInBackground());
  }

  /**
   * The kernel generates mountinfo under the namespace lock, which a mount storm holds often: a
   * read of thousands of lines can take hundreds of ms then. Scheduled reads therefore run on
   * the threadpool, and only parse + diff + apply run on the loop.
   */
  private readInBackground(): void {
    this.cancelTimer = undefined;
    if (this.closed) return;
    if (this.options.readAsync === undefined && this.options.read !== undefined) {
      this.readNow(false);
      return;
    }
    const seq = ++this.readSeq;
    this.inFlight = true;
    const t0 = this.now();
    const file = this.options.path ?? '/proc/self/mountinfo';
    const read = this.options.readAsync ?? (() => fs.promises.readFile(file, 'utf8'));
    read().then(
      (text) => {
        this.inFlight = false;
        this.stats.totalWaitMs += this.now() - t0;
        // A synchronous refresh() since then has a newer table: this one is stale.
        if (seq > this.appliedSeq && !this.closed) this.apply(text, false, seq);
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      },
      (err: unknown) => {
        this.inFlight = false;
        this.options.onError?.(err as Error);
      },
    );
  }

  private readNow(initial: boolean): MountTableDiff {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const empty: MountTableDiff = { added: [], removed: [], changed: [] };
    if (this.closed) return empty;
    let text: string;
    const t0 = this.now();
    try {
      text = this.read();
    } catch (err) {
      this.options.onError?.(err as Error);
      return empty;
    }
    this.stats.totalWaitMs += this.now() - t0;
    return this.apply(text, initial, ++this.readSeq);
  }

  private apply(text: string, initial: boolean, seq: number): MountTableDiff {
    this.appliedSeq = seq;
    const t0 = this.now();
    const parsed = parseMountInfo(text, this.lines);
    this.lines = parsed.byLine;
    const next = mountTable(parsed.entries);
    const diff = diffMountTables(this.table, next);
    this.table = next;
    const ms = this.now() - t0;
    this.lastReadAt = this.now();
    const s = this.stats;
    s.reads++;
    s.lastReadMs = ms;
    s.totalReadMs += ms;
    s.maxReadMs = Math.max(s.maxReadMs, ms);
    s.mounts = next.size;
    s.problems += parsed.problems.length;
    if (isEmptyDiff(diff) && !initial && parsed.problems.length === 0) {
      s.emptyReads++;
      return diff;
    }
    this.options.onUpdate({ table: next, diff, problems: parsed.problems, initial });
    return diff;
  }
}
