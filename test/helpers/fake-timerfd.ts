// A NativeTimerfd for pure tests: clocks the test sets, and clock changes the test fires
// (`setClock`, `suspend`), delivered on a later tick like the real addon's wake-ups.
import type {
  ClockReading,
  ClockWatch,
  NativeTimerfd,
  NativeSystemError,
} from '../../src/native/timerfd-addon';

interface FakeWatch extends ClockWatch {
  fire(): void;
}

export class FakeTimerfd implements NativeTimerfd {
  clock: ClockReading = {
    realtime: 1_700_000_000_000_000,
    monotonic: 1_000_000_000,
    boottime: 1_000_000_000,
  };
  readonly watches: FakeWatch[] = [];

  clockNow(): ClockReading {
    return { ...this.clock };
  }

  watchClockChanges(onChange: () => void, onError: (error: NativeSystemError) => void): ClockWatch {
    if (typeof onChange !== 'function' || typeof onError !== 'function') {
      throw Object.assign(new TypeError('The "onChange" argument must be a function'), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    let closed = false;
    let changes = 0;
    const watch: FakeWatch = {
      close: () => {
        closed = true;
      },
      ref: () => undefined,
      unref: () => undefined,
      get closed() {
        return closed;
      },
      get armedSeconds() {
        if (closed)
          throw Object.assign(new Error('EBADF: bad file descriptor, timerfd_gettime'), {
            code: 'EBADF',
            errno: -9,
            syscall: 'timerfd_gettime',
          });
        return 9.2e18 - this.nowSeconds;
      },
      get changes() {
        return changes;
      },
      fire: () => {
        setImmediate(() => {
          if (closed) return;
          changes++;
          onChange();
        });
      },
    } as FakeWatch & { nowSeconds: number };
    Object.defineProperty(watch, 'nowSeconds', { get: () => this.clock.realtime / 1e6 });
    this.watches.push(watch);
    return watch;
  }

  /** Move the wall clock by `deltaUsec` (a clock set): every open watch reports it. */
  setClock(deltaUsec: number): void {
    this.clock.realtime += deltaUsec;
    for (const w of this.watches) w.fire();
  }

  /** A suspend of `usec`: realtime and boottime move on, monotonic does not; watches report it. */
  suspend(usec: number): void {
    this.clock.realtime += usec;
    this.clock.boottime += usec;
    for (const w of this.watches) w.fire();
  }

  /** Time passing normally. */
  advance(usec: number): void {
    this.clock.realtime += usec;
    this.clock.monotonic += usec;
    this.clock.boottime += usec;
  }
}
