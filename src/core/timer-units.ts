// Timer units in the daemon: a TimerHost per unit (both clocks, the job engine, stamp files under
// the state directory, systemd's randomness and coalescing), the one wall-clock change watch
// (timerfd with TFD_TIMER_CANCEL_ON_SET, shared by every timer) and the /etc/localtime watch, and
// routing of the triggered units' transitions back to their timers. UnitSystem owns one of these.
//
// A clock change and a resume look the same to the timerfd; they are told apart by CLOCK_BOOTTIME's
// lead over CLOCK_MONOTONIC, which grows by the time spent suspended.
import crypto = require('node:crypto');
import fs = require('node:fs');
import path = require('node:path');
import type { Logger } from '../util/logger';
import { isRoot } from '../util/paths';
import type { ClockReading, ClockWatch, NativeTimerfd } from '../native/timerfd-addon';
import { loadTimerfdNative } from '../native/timerfd-addon';
import { IN, type InotifyHandle, type NativeInotify } from '../native/inotify-addon';
import { loadInotifyNative } from '../native/inotify-addon';
import { parseInotifyRecords } from '../events/inotify-events';
import { localTimeZone, type TimeZone } from '../timers/time-zone';
import { fixedDelayHash, perturbFromBootId, readBootId, readMachineId } from '../timers/timer-random';
import type { TimerHost, TimerTargetView, TimerUnit } from '../units/timer';
import type { UnitEngine } from './unit-engine';
import type { Manager } from './manager';

export interface TimerUnitsOptions {
  logger: Logger;
  manager: Manager;
  engine: () => UnitEngine;
  /** Persistent=yes stamps go to <stateDir>/timers/stamp-NAME.timer (systemd: /var/lib/systemd/timers). */
  stateDir?: string;
  /** The timerfd layer (default: the triggerd_timerfd addon, loaded with the first timer). */
  timerfd?: NativeTimerfd;
  /** inotify for OnTimezoneChange= (default: the triggerd_inotify addon). */
  inotify?: NativeInotify;
  /** The directory holding `localtime` (default /etc). */
  localtimeDir?: string;
  stateChanged(unit: TimerUnit, from: string, to: string): void;
}

/** One row of `list-timers`. */
export interface TimerListEntry {
  unit: string;
  activates: string;
  active: string;
  sub: string;
  /** Wall-clock µs of the next elapse (0: none). */
  next: number;
  /** Wall-clock µs of the last trigger (0: never). */
  last: number;
  why: string;
}

/** A boottime lead that grew by more than this since the last look means the system slept. */
const RESUME_THRESHOLD_USEC = 500_000;

/** systemd's detect_container(), roughly: in a container, OnBootSec= counts from our own start. */
function inContainer(): boolean {
  if (fs.existsSync('/.dockerenv') || fs.existsSync('/run/.containerenv')) return true;
  try {
    if (fs.readFileSync('/run/systemd/container', 'utf8').trim() !== '') return true;
  } catch {
    // not there
  }
  try {
    return fs
      .readFileSync('/proc/1/environ', 'latin1')
      .split('\0')
      .some((e) => e.startsWith('container='));
  } catch {
    return false;
  }
}

/** /var/lib/triggerd for root; $XDG_STATE_HOME/triggerd (~/.local/state/triggerd) for others. */
export function defaultStateDir(): string {
  if (isRoot()) return '/var/lib/triggerd';
  const xdg = process.env.XDG_STATE_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return path.join(xdg, 'triggerd');
  const home = process.env.HOME;
  return home !== undefined && home !== ''
    ? path.join(home, '.local/state/triggerd')
    : `/tmp/triggerd-state-${process.getuid?.() ?? 'user'}`;
}

export function defaultStampDir(stateDir: string): string {
  return path.join(stateDir, 'timers');
}

export class TimerUnits {
  private readonly units = new Map<string, TimerUnit>();
  private native: NativeTimerfd | undefined;
  private nativeTried = false;
  private clockWatch: ClockWatch | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private tzHandle: InotifyHandle | undefined;
  private tzTried = false;
  private zone: TimeZone | undefined;
  private readonly mktimeState = { offset: 0 };
  private readonly startup: number;
  private readonly boot: number;
  private perturb: number | undefined;
  private machineId: Buffer | undefined | null = null;
  /** boottime − monotonic at the last look (grows at each resume). */
  private sleepLead: number;
  /** realtime − monotonic at the last look (the fallback detector compares it). */
  private wallOffset: number;
  private readonly stampDir: string;
  private stampWarned = false;

  constructor(private readonly options: TimerUnitsOptions) {
    this.stampDir = defaultStampDir(options.stateDir ?? defaultStateDir());
    const c = this.clocks();
    this.startup = c.monotonic;
    this.boot = inContainer() ? c.monotonic : 0;
    this.sleepLead = c.boottime - c.monotonic;
    this.wallOffset = c.realtime - c.monotonic;
  }

  private timerfd(): NativeTimerfd | undefined {
    if (this.native !== undefined || this.nativeTried) return this.native;
    this.nativeTried = true;
    try {
      this.native = this.options.timerfd ?? loadTimerfdNative();
    } catch (err) {
      this.options.logger.warn(
        { err },
        'the timerfd addon is unavailable: wall-clock changes and resumes are detected by polling every 10 s',
      );
    }
    return this.native;
  }

  private clocks(): ClockReading {
    const n = this.timerfd();
    if (n !== undefined) return n.clockNow();
    const monotonic = Number(process.hrtime.bigint() / 1000n);
    return { realtime: Date.now() * 1000, monotonic, boottime: monotonic };
  }

  private localZone(): TimeZone {
    this.zone ??= localTimeZone();
    return this.zone;
  }

  private stampPath(timer: string): string {
    return path.join(this.stampDir, `stamp-${timer}`);
  }

  host(name: string, unit: () => TimerUnit | undefined): TimerHost {
    const log = this.options.logger.child({ unit: name });
    const { manager } = this.options;
    const engine = this.options.engine;
    return {
      now: () => {
        const c = this.clocks();
        return { realtime: c.realtime, monotonic: c.monotonic };
      },
      startupMonotonic: () => this.startup,
      bootMonotonic: () => this.boot,
      setTimer: (ms, fn) => {
        // Longer than setTimeout can wait: the timer wakes early, finds nothing due and re-arms.
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      localZone: () => this.localZone(),
      mktimeState: this.mktimeState,
      unitStatus: (n): TimerTargetView | undefined => {
        const e = engine();
        const resolved = e.resolve(n);
        const u = manager.getUnit(resolved);
        if (u !== undefined) return { active: u.activeState(), load: u.load };
        const f = e.file(resolved);
        return f === undefined ? undefined : { active: 'inactive', load: f.loadState };
      },
      startUnit: (n) => {
        const e = engine();
        const r = e.enqueue(n, 'start', 'replace', false);
        if (!r.ok) return { ok: false, reason: r.error.message };
        return { ok: true, done: e.queue.whenFinished(r.jobId) ?? Promise.resolve('done') };
      },
      readStamp: (timer) => {
        try {
          return Number(fs.statSync(this.stampPath(timer), { bigint: true }).mtimeNs / 1000n);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
      },
      touchStamp: (timer, realtime) => {
        try {
          fs.mkdirSync(this.stampDir, { recursive: true });
          const p = this.stampPath(timer);
          fs.closeSync(fs.openSync(p, 'a', 0o644));
          const t = realtime === undefined ? new Date() : realtime / 1e6;
          fs.utimesSync(p, t, t);
        } catch (err) {
          if (!this.stampWarned) {
            this.stampWarned = true;
            this.options.logger.warn(
              { err },
              `Persistent=yes stamps cannot be written under ${this.stampDir} (set --state-dir): ` +
                'persistent timers will not catch up after downtime',
            );
          }
          throw err;
        }
      },
      randomU64: () => crypto.randomBytes(8).readBigUInt64LE(0),
      fixedDelayHash: (timer) => {
        if (this.machineId === null) this.machineId = readMachineId();
        return fixedDelayHash(this.machineId, isRoot(), process.getuid?.() ?? 0, timer);
      },
      perturbUsec: () => (this.perturb ??= perturbFromBootId(readBootId())),
      stateChanged: (from, to) => {
        const u = unit();
        if (u !== undefined) this.options.stateChanged(u, from, to);
      },
      log,
    };
  }

  /** A timer unit was built (at load or reload): keep what status shows of the one it replaces. */
  created(unit: TimerUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) unit.carryOver(previous);
    this.units.set(unit.name, unit);
    this.watchClock();
    if (unit.file.timer?.onTimezoneChange === true || unit.file.timer?.calendar.length) this.watchTimezone();
  }

  /** Routes a unit's transition to the timers that trigger it. */
  unitChanged(name: string): void {
    for (const t of this.units.values()) if (t.triggerName() === name) t.onUnitChanged(name);
  }

  /** Every timer as `list-timers` shows it. */
  list(): TimerListEntry[] {
    const out: TimerListEntry[] = [];
    for (const t of this.units.values()) {
      out.push({
        unit: t.name,
        activates: t.triggerName() ?? '',
        active: t.activeState(),
        sub: t.subState(),
        next: t.nextElapseRealtime() ?? 0,
        last: t.lastTrigger.realtime,
        why: t.explainNext() ?? '',
      });
    }
    return out;
  }

  private watchClock(): void {
    if (this.clockWatch !== undefined || this.driftTimer !== undefined) return;
    const native = this.timerfd();
    if (native !== undefined) {
      try {
        this.clockWatch = native.watchClockChanges(
          () => this.clockChanged(),
          (err) => this.options.logger.warn({ code: err.code }, `wall-clock watch: ${err.message}`),
        );
        return;
      } catch (err) {
        this.options.logger.warn({ err }, 'cannot watch for wall-clock changes; polling every 10 s instead');
      }
    }
    // Without the timerfd: the wall clock's offset from the monotonic one should not move.
    this.driftTimer = setInterval(() => {
      const c = this.clocks();
      if (Math.abs(c.realtime - c.monotonic - this.wallOffset) > 1_000_000) this.clockChanged();
    }, 10_000);
    this.driftTimer.unref();
  }

  /** The wall clock was set, or the system resumed: every waiting timer recomputes. */
  clockChanged(): void {
    const c = this.clocks();
    const lead = c.boottime - c.monotonic;
    const cause = lead - this.sleepLead > RESUME_THRESHOLD_USEC ? 'resume' : 'clock-change';
    this.options.logger.info(
      { cause, slept: cause === 'resume' ? Math.round((lead - this.sleepLead) / 1000) : undefined },
      cause === 'resume'
        ? 'resumed from suspend: recomputing timers'
        : 'wall clock changed: recomputing timers',
    );
    this.sleepLead = lead;
    this.wallOffset = c.realtime - c.monotonic;
    for (const t of this.units.values()) t.onClockChanged(cause);
  }

  private watchTimezone(): void {
    if (this.tzTried) return;
    this.tzTried = true;
    const dir = this.options.localtimeDir ?? '/etc';
    try {
      const native = this.options.inotify ?? loadInotifyNative();
      this.tzHandle = native.openInotify(
        (bytes) => {
          const { records, overflow } = parseInotifyRecords(bytes);
          if (overflow || records.some((r) => r.name === 'localtime')) this.timezoneChanged();
        },
        (err) => this.options.logger.warn({ code: err.code }, `time zone watch: ${err.message}`),
      );
      this.tzHandle.addWatch(
        dir,
        IN.CREATE | IN.MOVED_TO | IN.CLOSE_WRITE | IN.DELETE | IN.ATTRIB | IN.ONLYDIR,
      );
    } catch (err) {
      this.options.logger.warn(
        { err },
        `cannot watch ${dir}/localtime: time zone changes are not noticed (OnTimezoneChange= will not fire)`,
      );
      this.tzHandle?.close();
      this.tzHandle = undefined;
    }
  }

  /** /etc/localtime changed: re-read the zone, then every waiting timer recomputes. */
  timezoneChanged(): void {
    const before = this.zone?.name;
    this.zone = localTimeZone();
    this.options.logger.info({ from: before, to: this.zone.name }, 'time zone changed: recomputing timers');
    for (const t of this.units.values()) t.onTimezoneChanged();
  }

  close(): void {
    this.clockWatch?.close();
    this.clockWatch = undefined;
    if (this.driftTimer !== undefined) clearInterval(this.driftTimer);
    this.driftTimer = undefined;
    this.tzHandle?.close();
    this.tzHandle = undefined;
  }
}
