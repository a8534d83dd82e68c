// Virtual time for state-machine tests: timers fire only when the test advances the clock.
export class VirtualClock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now = (): number => this.t;

  setTimer = (ms: number, fn: () => void): (() => void) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return () => this.timers.delete(id);
  };

  /** Move time forward, firing due timers in order (timers they set fire too if due). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers)
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}
