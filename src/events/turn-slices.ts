// A native source hands over everything one wake-up read: up to 4096 uevents or 1024 notify
// datagrams. Handled in one go, such a batch holds the event loop for tens of milliseconds, and a
// control request waits behind it (bench/load: a 100,000-uevent storm alone made `status` take
// 166 ms at the median, 722 ms at p99). TurnSlices hands a batch on in slices of at most
// `maxPerTurn` items, one slice per turn of the event loop (setImmediate), with the source's
// socket paused until the last slice is out: the bound stays what the native layer read, arrival
// order is kept, and whatever else is ready (a control request, a child's exit) runs in between.
//
// The consumer's own backpressure goes through `pause`/`resume` here rather than to the socket,
// so the end of a sliced batch never resumes a socket the consumer paused, and a consumer's
// resume never lets the socket read while a batch is still being handed over.

/** The socket side: stop and restart reading. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export class TurnSlices<T> {
  private socket: Pausable | undefined;
  private socketPaused = false;
  private consumerPaused = false;
  /** Batches (or what is left of them) not handed over yet, oldest first. */
  private readonly queue: { items: T[]; at: number }[] = [];
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly maxPerTurn: number,
    private readonly handle: (slice: T[]) => void,
  ) {
    if (!Number.isInteger(maxPerTurn) || maxPerTurn < 1)
      throw new TypeError(`maxPerTurn must be an integer ≥ 1, got ${maxPerTurn}`);
  }

  /** The socket to pause while slices wait (set once it exists: it is made with the callback). */
  attach(socket: Pausable): void {
    this.socket = socket;
    this.apply();
  }

  /** Items still waiting to be handed over. */
  get waiting(): number {
    return this.queue.reduce((n, b) => n + b.items.length - b.at, 0);
  }

  /** One batch from the socket: at most `maxPerTurn` items handed over now, the rest on later turns. */
  push(items: T[]): void {
    if (items.length === 0) return;
    if (this.queue.length === 0 && items.length <= this.maxPerTurn) {
      this.handle(items);
      return;
    }
    this.queue.push({ items, at: 0 });
    if (this.queue.length > 1) return; // a slice is already scheduled; this one follows it
    this.apply();
    this.step();
  }

  /** The consumer's backpressure (what it would call on the socket). */
  pause(): void {
    this.consumerPaused = true;
    this.apply();
  }

  resume(): void {
    this.consumerPaused = false;
    this.apply();
  }

  /** Stop handing over (teardown); returns the items that were not handed over, in order. */
  cancel(): T[] {
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    const rest = this.queue.flatMap((b) => b.items.slice(b.at));
    this.queue.length = 0;
    return rest;
  }

  private readonly step = (): void => {
    this.immediate = undefined;
    const head = this.queue[0];
    if (head === undefined) return;
    const slice = head.items.slice(head.at, head.at + this.maxPerTurn);
    head.at += slice.length;
    if (head.at >= head.items.length) this.queue.shift();
    // Scheduled before the handler runs: a handler that throws does not strand the rest.
    if (this.queue.length > 0) this.immediate = setImmediate(this.step);
    else this.apply();
    this.handle(slice);
  };

  private apply(): void {
    if (this.socket === undefined) return;
    const pause = this.consumerPaused || this.queue.length > 0;
    if (pause === this.socketPaused) return;
    this.socketPaused = pause;
    if (pause) this.socket.pause();
    else this.socket.resume();
  }
}
