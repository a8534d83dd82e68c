// The one module that loads triggerd_timerfd.node (native/timerfd/) and declares its interface.
// Everything else takes a `NativeTimerfd`, so pure tests can pass test/helpers/fake-timerfd.
import { requireCheckedAddon } from './checked-addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_timerfd.node';

/** The three clocks read together, in µs. */
export interface ClockReading {
  /** CLOCK_REALTIME: the wall clock. */
  realtime: number;
  /** CLOCK_MONOTONIC: since boot, without the time spent suspended (what systemd's timers use). */
  monotonic: number;
  /** CLOCK_BOOTTIME: since boot, suspend included; its lead over monotonic grows at each resume. */
  boottime: number;
}

export interface ClockWatch {
  /** Stop watching and close the timerfd. Idempotent. */
  close(): void;
  /** Let the process exit even while watching (uv_unref). */
  unref(): void;
  ref(): void;
  readonly closed: boolean;
  /** timerfd_gettime(): seconds until the armed expiry (centuries while watching). EBADF once closed. */
  readonly armedSeconds: number;
  /** How many changes were reported so far. */
  readonly changes: number;
}

export interface NativeTimerfd {
  /**
   * A CLOCK_REALTIME timerfd armed at the end of time with TFD_TIMER_ABSTIME |
   * TFD_TIMER_CANCEL_ON_SET, watched on the calling environment's loop. The kernel cancels it
   * when the wall clock is set (settimeofday, clock_settime, a leap of adjtimex) and at resume
   * from suspend: then `onChange` is called once per wake-up and the timerfd is armed again.
   * `onError` gets read/re-arm failures; the watch stays open.
   */
  watchClockChanges(onChange: () => void, onError: (error: NativeSystemError) => void): ClockWatch;
  /** clock_gettime of CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME, in µs. */
  clockNow(): ClockReading;
}

let cached: NativeTimerfd | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadTimerfdNative(): NativeTimerfd {
  if (cached !== undefined) return cached;
  cached = requireCheckedAddon<NativeTimerfd>(ADDON_FILE, 'timerfd', ['watchClockChanges', 'clockNow']);
  return cached;
}
