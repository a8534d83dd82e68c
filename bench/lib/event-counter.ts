// Counts the events of one workload as they come out of a listener, and lets the benchmark wait
// for the n-th one without polling (a poll interval would be added to every measured round).
import { readKernelSeqnum } from '../../src/devices/sysfs';
import type { Uevent } from '../../src/devices/types';

export class WorkloadCounter {
  /** Events of the workload seen since `mark()`. */
  counted = 0;
  /** Events outside the workload (other devices, other engineers' tests) since `mark()`. */
  other = 0;
  /** performance.now() of the last counted event. */
  lastAt = 0;
  private minSeqnum = 0;
  private waiter: { n: number; resolve: (reached: boolean) => void } | undefined;

  constructor(private readonly devpaths: ReadonlySet<string>) {}

  /** Start a workload: only events the kernel emits from now on count. */
  mark(): void {
    this.minSeqnum = readKernelSeqnum();
    this.counted = 0;
    this.other = 0;
    this.lastAt = 0;
  }

  /**
   * Kernel uevents emitted since `mark()` that are not this workload's: other activity on the
   * machine (other tests), which a peer that handles every event also pays for. Includes events of
   * other network namespaces, which share the seqnum counter but never reach this namespace.
   */
  foreignKernelEvents(): number {
    return Math.max(0, readKernelSeqnum() - this.minSeqnum - this.counted);
  }

  observe(event: Uevent): void {
    if (event.action === 'change' && event.seqnum > this.minSeqnum && this.devpaths.has(event.devpath)) {
      this.counted++;
      this.lastAt = performance.now();
      if (this.waiter !== undefined && this.counted >= this.waiter.n) {
        const { resolve } = this.waiter;
        this.waiter = undefined;
        resolve(true);
      }
    } else {
      this.other++;
    }
  }

  /**
   * Resolves true once `n` events were counted, false when nothing new arrived for `quietMs`
   * (events were lost) or `capMs` passed.
   */
  waitFor(n: number, quietMs: number, capMs: number): Promise<boolean> {
    if (this.counted >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t0 = performance.now();
      let seen = this.counted;
      let lastProgress = t0;
      const timer = setInterval(() => {
        const now = performance.now();
        if (this.counted !== seen) {
          seen = this.counted;
          lastProgress = now;
        }
        if (now - lastProgress >= quietMs || now - t0 >= capMs) finish(false);
      }, 50);
      const finish = (reached: boolean): void => {
        clearInterval(timer);
        this.waiter = undefined;
        resolve(reached);
      };
      this.waiter = { n, resolve: finish };
    });
  }
}
