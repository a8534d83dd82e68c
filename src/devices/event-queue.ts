// The device event queue: events run through the (asynchronous) rules in kernel order per device
// family, unrelated devices concurrently, as udevd does. An event waits while an earlier event is
// queued or running for the same devpath, a parent or a child of it (one devpath a prefix of the
// other), or its DEVPATH_OLD. Bound: `highWater` queued events, then `onPressure(true)` asks the
// source to stop reading (the kernel's socket buffer queues meanwhile; ENOBUFS there means a
// resync), and `onPressure(false)` once below `lowWater`.

export interface QueuedEvent {
  devpath: string;
  seqnum: number;
  /** DEVPATH_OLD of a move event. */
  devpathOld?: string;
}

export interface EventQueueOptions<E extends QueuedEvent> {
  process: (event: E) => Promise<void>;
  /** Events running at once (they wait on programs and builtins, not on the CPU). */
  maxRunning?: number;
  highWater?: number;
  lowWater?: number;
  onPressure?: (paused: boolean) => void;
  /** An exception from `process` (the event is then done): logged by the caller, never thrown. */
  onError?: (event: E, error: unknown) => void;
}

/** The devpaths an event occupies: its own and, for a move, the old one. */
function pathsOf(e: QueuedEvent): string[] {
  return e.devpathOld === undefined ? [e.devpath] : [e.devpath, e.devpathOld];
}

/** '/a/b/c' → ['/a', '/a/b'] */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}

/**
 * A set of occupied devpaths that answers "is this path, an ancestor or a descendant occupied?"
 * in O(depth): `exact` holds the paths, `under` every ancestor of every path.
 */
class PathSet {
  private readonly exact = new Map<string, number>();
  private readonly under = new Map<string, number>();

  add(e: QueuedEvent, delta = 1): void {
    for (const p of pathsOf(e)) {
      bump(this.exact, p, delta);
      for (const a of ancestors(p)) bump(this.under, a, delta);
    }
  }

  conflicts(e: QueuedEvent): boolean {
    for (const p of pathsOf(e)) {
      if (this.exact.has(p) || this.under.has(p)) return true; // same, or a child is busy
      for (const a of ancestors(p)) if (this.exact.has(a)) return true; // a parent is busy
    }
    return false;
  }
}

function bump(map: Map<string, number>, key: string, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

export class DeviceEventQueue<E extends QueuedEvent> {
  private readonly waiting: E[] = [];
  private readonly running = new Set<E>();
  private readonly busy = new PathSet();
  private paused = false;
  private idleWaiters: (() => void)[] = [];
  /** Highest seqnum fully processed (for settle). */
  lastDoneSeqnum = 0;
  private readonly maxRunning: number;
  private readonly highWater: number;
  private readonly lowWater: number;

  constructor(private readonly options: EventQueueOptions<E>) {
    this.maxRunning = options.maxRunning ?? 64;
    this.highWater = options.highWater ?? 10_000;
    this.lowWater = options.lowWater ?? Math.floor(this.highWater / 2);
  }

  get queued(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running.size;
  }

  /** The oldest seqnum not processed yet, if any (for `why`). */
  oldestPending(): number | undefined {
    let min: number | undefined;
    for (const e of [...this.running, ...this.waiting])
      if (min === undefined || e.seqnum < min) min = e.seqnum;
    return min;
  }

  push(event: E): void {
    this.waiting.push(event);
    if (!this.paused && this.waiting.length >= this.highWater) {
      this.paused = true;
      this.options.onPressure?.(true);
    }
    this.dispatch();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.waiting.length === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private dispatch(): void {
    // Earlier waiting events block later related ones too, so order holds per device family.
    const ahead = new PathSet();
    for (let i = 0; i < this.waiting.length && this.running.size < this.maxRunning;) {
      const event = this.waiting[i] as E;
      if (this.busy.conflicts(event) || ahead.conflicts(event)) {
        ahead.add(event);
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.start(event);
    }
    if (this.paused && this.waiting.length <= this.lowWater) {
      this.paused = false;
      this.options.onPressure?.(false);
    }
    if (this.waiting.length === 0 && this.running.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private start(event: E): void {
    this.running.add(event);
    this.busy.add(event);
    let finished: Promise<void>;
    try {
      finished = this.options.process(event);
    } catch (err) {
      finished = Promise.reject(err);
    }
    finished
      .catch((err: unknown) => this.options.onError?.(event, err))
      .finally(() => {
        this.running.delete(event);
        this.busy.add(event, -1);
        if (event.seqnum > this.lastDoneSeqnum) this.lastDoneSeqnum = event.seqnum;
        this.dispatch();
      });
  }
}
