// .timer units: systemd's timer state machine (timer.c, v252). A timer waits for the earliest of
// its OnCalendar= and monotonic (OnActiveSec=, OnBootSec=, OnStartupSec=, OnUnitActiveSec=,
// OnUnitInactiveSec=) elapses, moved by RandomizedDelaySec= and coalesced by AccuracySec= the way
// sd-event does it, then starts its unit through the job engine and waits for it to finish before
// computing the next elapse. Everything it needs from the world (both clocks, one wake-up, the job
// engine, the stamp files of Persistent=yes, randomness) comes through an injected TimerHost, so
// the machine runs on virtual time in tests. Every transition goes through setState(), the one
// place with side effects on the outside.
//
// States, as systemd names them: dead (stopped), waiting (armed), running (the unit was started
// and has not finished), elapsed (nothing left to wait for; with RemainAfterElapse=yes, or when
// OnUnit*Sec= may re-arm it), failed.
//
// Where triggerd differs from systemd (semantics.md §3):
// - A catch-up (an elapse computed in the past: Persistent=yes after downtime, or any calendar
//   elapse a resume or a clock jump went past) is rebased to the moment of the catch-up and then
//   spread by RandomizedDelaySec=, instead of every such timer firing at once; `status` and
//   `list-timers` show the computed time and why.
// - OnCalendar= times in a skipped DST hour elapse once, repeated hours once (the calendar core's
//   default); [X-Triggerd] StrictSystemdCalendar=yes gives systemd's results.
import type { Logger } from '../util/logger';
import type { LoadedUnitFile, TimerBase, TimerSection } from './config-types';
import type { ActiveState, JobOutcome, LoadState, UnitInstance } from './unit-type';
import type { MktimeState } from '../timers/broken-down-time';
import type { TimeZone } from '../timers/time-zone';
import { computeNextElapse } from '../timers/calendar-next';
import { formatCalendarSpec } from '../timers/calendar-spec';
import { formatRelative, formatTimestamp } from '../timers/calendar-analyze';
import { sleepBetween } from '../timers/timer-random';
import { timerTriggerName } from '../timers/timer-config';

export type TimerState = 'dead' | 'waiting' | 'running' | 'elapsed' | 'failed';

/** Why the timer is where it is (systemd's Result=). */
export type TimerResult = 'success' | 'resources' | 'start-limit-hit';

const ACTIVE: Record<TimerState, ActiveState> = {
  dead: 'inactive',
  waiting: 'active',
  running: 'active',
  elapsed: 'active',
  failed: 'failed',
};

/** Both clocks at one moment, in µs: CLOCK_REALTIME and CLOCK_MONOTONIC. */
export interface DualTimestamp {
  realtime: number;
  monotonic: number;
}

/** What caused a recomputation that found elapses in the past. */
export type CatchUpCause = 'downtime' | 'clock-change' | 'resume';

/** A unit as the timer sees it through the host. */
export interface TimerTargetView {
  active: ActiveState;
  load: LoadState;
}

/** Everything a timer unit needs from the world. */
export interface TimerHost {
  /** Both clocks now. */
  now(): DualTimestamp;
  /** CLOCK_MONOTONIC when the daemon started: OnStartupSec='s base, and the floor of catch-ups. */
  startupMonotonic(): number;
  /** OnBootSec='s base: 0 (CLOCK_MONOTONIC counts from boot); in a container, the daemon's start. */
  bootMonotonic(): number;
  /** Call `fn` after `ms` (monotonic); returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
  /** The local zone for expressions without one (re-read after a time zone change). */
  localZone(): TimeZone;
  /** glibc's per-process mktime guess (StrictSystemdCalendar=yes). */
  mktimeState: MktimeState;
  unitStatus(name: string): TimerTargetView | undefined;
  /** Enqueue a start job for the unit; `done` resolves with the job's result. */
  startUnit(name: string): { ok: true; done: Promise<string> } | { ok: false; reason: string };
  /** Persistent=yes: the stamp file's mtime (µs), undefined when there is none. */
  readStamp(timer: string): number | undefined;
  /** Create the stamp file and set its mtime (undefined: now). Errors are the host's to log. */
  touchStamp(timer: string, realtime: number | undefined): void;
  /** A uniformly random 64-bit value (RandomizedDelaySec= without FixedRandomDelay=). */
  randomU64(): bigint;
  /** systemd's fixed-delay hash for the timer on this machine (FixedRandomDelay=yes). */
  fixedDelayHash(timer: string): bigint;
  /** sd-event's per-boot perturbation, µs into the minute (AccuracySec= coalescing). */
  perturbUsec(): number;
  stateChanged(from: TimerState, to: TimerState, result: TimerResult): void;
  log: Logger;
}

/** One On*= line and what it computed last. */
interface TimerValue {
  kind: 'calendar' | TimerBase;
  /** "OnCalendar=daily", "OnBootSec=30s": for status. */
  text: string;
  index: number;
  disabled: boolean;
  /** The last computed elapse in its own clock (µs), undefined when it never elapses. */
  next: number | undefined;
}

/** How the armed elapse of one clock came about, for `status` and `list-timers`. */
export interface ElapsePlan {
  clock: 'realtime' | 'monotonic';
  /** The value that gave the earliest elapse. */
  by: string;
  /** The computed elapse, before the random delay (µs, in `clock`). */
  computed: number;
  randomDelay: number;
  /** computed + randomDelay: the elapse (systemd's NextElapseUSec*). */
  next: number;
  /** When the wake-up actually comes, AccuracySec= coalescing included. */
  wake: number;
  /** Set when the elapse was missed and rebased. */
  catchUp?: { missed: number; cause: CatchUpCause };
}

const USEC_PER_SEC = 1_000_000;

/** systemd's format_timespan(): "7min 31s 483ms", rounded to `accuracy` µs (default 1 ms). */
export function formatSpan(usec: number, accuracy = 1000): string {
  if (usec === 0) return '0';
  const parts: string[] = [];
  let rest = usec >= accuracy ? Math.round(usec / accuracy) * accuracy : Math.round(usec);
  const units: [number, string][] = [
    [86_400 * USEC_PER_SEC, 'd'],
    [3_600 * USEC_PER_SEC, 'h'],
    [60 * USEC_PER_SEC, 'min'],
    [USEC_PER_SEC, 's'],
    [1000, 'ms'],
    [1, 'us'],
  ];
  for (const [n, u] of units) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)}${u}`);
      rest %= n;
    }
  }
  return parts.join(' ');
}

export class TimerUnit implements UnitInstance {
  readonly suffix = '.timer';
  state: TimerState = 'dead';
  result: TimerResult = 'success';
  since = Date.now();
  readonly load: LoadState;
  /** When the timer last started its unit (zeros: never, in this activation or from a stamp). */
  lastTrigger: DualTimestamp = { realtime: 0, monotonic: 0 };
  /** When the timer last left dead/failed (systemd's inactive_exit_timestamp). */
  private activeSince: DualTimestamp = { realtime: 0, monotonic: 0 };
  /** The triggered unit's transitions as this timer saw them (monotonic µs; 0 = not seen). */
  private unitInactiveExit = 0;
  private unitInactiveEnter = 0;
  private unitActive: ActiveState | undefined;
  private values: TimerValue[] = [];
  /** The armed elapses (after the random delay), per clock. */
  realtimePlan: ElapsePlan | undefined;
  monotonicPlan: ElapsePlan | undefined;
  /** Why the last start failed, for `status`. */
  problem: string | undefined;
  /** How often the timer started its unit since the daemon started. */
  nTriggers = 0;
  private cancelWake: (() => void) | undefined;
  /** The cause to record when the next recomputation finds missed calendar elapses. */
  private pendingCause: CatchUpCause | undefined;

  constructor(
    readonly name: string,
    public file: LoadedUnitFile,
    private readonly host: TimerHost,
  ) {
    this.load = file.loadState;
    this.values = this.buildValues();
  }

  get config(): TimerSection {
    if (this.file.timer === undefined) throw new Error(`${this.name}: no [Timer] configuration`);
    return this.file.timer;
  }

  /** The unit this timer starts. */
  triggerName(): string | undefined {
    return this.file.timer === undefined ? undefined : timerTriggerName(this.name, this.file.timer);
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.file.unit.description ?? this.name;
  }

  canReload(): boolean {
    return false;
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name}: timer units cannot be reloaded` };
  }

  private buildValues(): TimerValue[] {
    const t = this.file.timer;
    if (t === undefined) return [];
    const out: TimerValue[] = [];
    t.calendar.forEach((c, index) =>
      out.push({ kind: 'calendar', text: `OnCalendar=${c.text}`, index, disabled: false, next: undefined }),
    );
    t.monotonic.forEach((m, index) =>
      out.push({
        kind: m.base,
        text: `${m.base}=${formatSpan(m.usec)}`,
        index,
        disabled: false,
        next: undefined,
      }),
    );
    return out;
  }

  // ---- jobs -----------------------------------------------------------------------------------

  start(): JobOutcome {
    if (this.state === 'waiting' || this.state === 'running' || this.state === 'elapsed') return 'done';
    if (this.load !== 'loaded' || this.file.timer === undefined)
      return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    const target = this.triggerName() as string;
    const s = this.host.unitStatus(target);
    if (s === undefined || s.load !== 'loaded') {
      this.problem =
        `the unit to trigger, ${target}, is ${s?.load ?? 'not-found'}` +
        (this.config.unit === undefined ? ' (create it, or name another with Unit=)' : '');
      this.result = 'resources';
      this.setState('failed');
      return { failed: 'failed', reason: `${this.name}: refusing to start: ${this.problem}` };
    }
    this.problem = undefined;
    this.lastTrigger = { realtime: 0, monotonic: 0 };
    this.values = this.buildValues();
    this.unitActive = s.active;
    const now = this.host.now();
    if (this.config.persistent) this.loadStamp(now);
    this.result = 'success';
    this.activeSince = now;
    this.pendingCause = 'downtime';
    this.enterWaiting(false);
    return 'done';
  }

  stop(): JobOutcome {
    this.enterDead('success');
    return 'done';
  }

  /** Forget a failure (`triggerctl reset-failed`). */
  resetFailed(): void {
    if (this.state === 'failed') {
      this.result = 'success';
      this.problem = undefined;
      this.setState('dead');
    }
  }

  /** daemon-reload rebuilds an inactive unit from its new file: keep what `status` shows. */
  carryOver(previous: TimerUnit): void {
    if (this.state !== 'dead' || (previous.state !== 'dead' && previous.state !== 'failed')) return;
    this.state = previous.state;
    this.since = previous.since;
    this.result = previous.result;
    this.problem = previous.problem;
    this.lastTrigger = previous.lastTrigger;
    this.nTriggers = previous.nTriggers;
  }

  private loadStamp(now: DualTimestamp): void {
    let stamp: number | undefined;
    try {
      stamp = this.host.readStamp(this.name);
    } catch (err) {
      this.host.log.warn({ err }, `cannot read the Persistent=yes stamp: ${(err as Error).message}`);
      return;
    }
    if (stamp === undefined) {
      // Never ran: create the stamp so that the next start knows since when it has been waiting.
      this.touchStamp(undefined);
      return;
    }
    // A stamp in the future means the clock was set back: ignore it, as systemd does.
    if (stamp < now.realtime) this.lastTrigger = { realtime: stamp, monotonic: 0 };
    else
      this.host.log.warn(
        `not using the Persistent=yes stamp from ${new Date(stamp / 1000).toISOString()}: it is in the future`,
      );
  }

  private touchStamp(realtime: number | undefined): void {
    try {
      this.host.touchStamp(this.name, realtime);
    } catch (err) {
      this.host.log.warn(
        { err },
        `cannot write the Persistent=yes stamp (catch-up after downtime will not work): ${(err as Error).message}`,
      );
    }
  }

  // ---- events from the outside -------------------------------------------------------------------

  /** The wall clock was set or the system resumed (timerfd TFD_TIMER_CANCEL_ON_SET said so). */
  onClockChanged(cause: 'clock-change' | 'resume' = 'clock-change'): void {
    if (this.state !== 'waiting') return;
    const now = this.host.now();
    // A trigger in the future: the clock went back. Rewind, so the future elapses happen again.
    if (this.lastTrigger.realtime > now.realtime) this.lastTrigger.realtime = now.realtime;
    if (this.config.onClockChange) {
      this.host.log.info('time change, triggering activation');
      this.enterRunning();
    } else {
      this.host.log.debug('time change, recalculating next elapse');
      this.pendingCause = cause;
      this.enterWaiting(true);
    }
  }

  /** /etc/localtime changed. */
  onTimezoneChanged(): void {
    if (this.state !== 'waiting') return;
    if (this.config.onTimezoneChange) {
      this.host.log.info('time zone change, triggering activation');
      this.enterRunning();
    } else {
      this.host.log.debug('time zone change, recalculating next elapse');
      this.enterWaiting(false);
    }
  }

  /** A unit changed state; the timer cares about the one it triggers. */
  onUnitChanged(name: string): void {
    if (name !== this.triggerName()) return;
    const s = this.host.unitStatus(name);
    if (s === undefined) return;
    const inactive = (a: ActiveState | undefined): boolean =>
      a === undefined || a === 'inactive' || a === 'failed';
    const now = this.host.now();
    if (inactive(this.unitActive) && !inactive(s.active)) this.unitInactiveExit = now.monotonic;
    if (!inactive(this.unitActive) && inactive(s.active)) this.unitInactiveEnter = now.monotonic;
    this.unitActive = s.active;
    if (this.load !== 'loaded') return;
    // Re-enable every value that depends on the unit's state.
    for (const v of this.values)
      if (v.kind === 'OnUnitActiveSec' || v.kind === 'OnUnitInactiveSec') v.disabled = false;
    switch (this.state) {
      case 'waiting':
      case 'elapsed':
        this.enterWaiting(false);
        break;
      case 'running':
        if (inactive(s.active)) this.enterWaiting(false);
        break;
      default:
        break;
    }
  }

  // ---- the machine ----------------------------------------------------------------------------

  /** systemd's timer_enter_waiting(): compute every value's next elapse, arm the earliest. */
  private enterWaiting(timeChange: boolean): void {
    const c = this.config;
    const ts = this.host.now();
    const cause = this.pendingCause;
    this.pendingCause = undefined;
    const isActive = ACTIVE[this.state] === 'active';
    let rt: { by: string; computed: number; catchUp?: ElapsePlan['catchUp'] } | undefined;
    let mono: { by: string; computed: number } | undefined;
    let leaveAround = false;
    // Where a missed calendar elapse goes: the daemon's start (systemd's rebase, at boot), or the
    // moment of the clock change or resume that made it missed.
    const startupRealtime = ts.realtime - (ts.monotonic - this.host.startupMonotonic());
    const floor = cause === 'clock-change' || cause === 'resume' ? ts.realtime : startupRealtime;
    for (const v of this.values) {
      if (v.disabled) continue;
      if (v.kind === 'calendar') {
        const entry = c.calendar[v.index];
        if (entry === undefined) continue;
        const base =
          this.lastTrigger.realtime > 0
            ? this.lastTrigger.realtime
            : isActive
              ? this.activeSince.realtime
              : ts.realtime;
        const r = computeNextElapse(entry.spec, base, {
          strictSystemd: c.strictSystemdCalendar,
          localZone: this.host.localZone(),
          mktimeState: this.host.mktimeState,
        });
        if (r.error !== undefined) {
          v.next = undefined;
          continue;
        }
        let next = r.usec;
        let catchUp: ElapsePlan['catchUp'];
        if (next < floor) {
          catchUp = { missed: next, cause: cause ?? 'downtime' };
          next = floor;
        } else if (next < ts.realtime && cause !== undefined) {
          catchUp = { missed: next, cause };
        }
        v.next = next;
        if (rt === undefined || next < rt.computed) rt = { by: v.text, computed: next, catchUp };
      } else {
        let base: number;
        switch (v.kind) {
          case 'OnActiveSec':
            base = isActive ? this.activeSince.monotonic : ts.monotonic;
            break;
          case 'OnBootSec':
            base = this.host.bootMonotonic();
            break;
          case 'OnStartupSec':
            base = this.host.startupMonotonic();
            break;
          case 'OnUnitActiveSec':
            leaveAround = true;
            base = Math.max(this.unitInactiveExit, this.lastTrigger.monotonic);
            break;
          case 'OnUnitInactiveSec':
            leaveAround = true;
            base = Math.max(this.unitInactiveEnter, this.lastTrigger.monotonic);
            break;
        }
        if ((v.kind === 'OnUnitActiveSec' || v.kind === 'OnUnitInactiveSec') && base <= 0) {
          v.next = undefined;
          continue;
        }
        const entry = c.monotonic[v.index];
        if (entry === undefined) continue;
        const next = base + entry.usec;
        v.next = next;
        const triggered = this.lastTrigger.realtime > 0 || this.lastTrigger.monotonic > 0;
        if (
          triggered &&
          !timeChange &&
          // systemd compares with '<'; '<=' also retires it when no time passed since (virtual time).
          next <= ts.monotonic &&
          (v.kind === 'OnActiveSec' || v.kind === 'OnBootSec' || v.kind === 'OnStartupSec')
        ) {
          // A one-time trigger that has had its turn.
          v.disabled = true;
          v.next = undefined;
          continue;
        }
        if (mono === undefined || next < mono.computed) mono = { by: v.text, computed: next };
      }
    }
    this.cancel();
    this.realtimePlan = undefined;
    this.monotonicPlan = undefined;
    if (mono === undefined && rt === undefined && !c.onTimezoneChange && !c.onClockChange) {
      this.enterElapsed(leaveAround);
      return;
    }
    if (mono !== undefined) this.monotonicPlan = this.plan('monotonic', mono.by, mono.computed);
    if (rt !== undefined) {
      this.realtimePlan = this.plan('realtime', rt.by, rt.computed);
      if (rt.catchUp !== undefined) this.realtimePlan.catchUp = rt.catchUp;
    }
    if (this.state !== 'waiting') this.setState('waiting');
    this.arm();
  }

  /** systemd's add_random() and sd-event's accuracy window for one clock. */
  private plan(clock: ElapsePlan['clock'], by: string, computed: number): ElapsePlan {
    const c = this.config;
    let randomDelay = 0;
    if (c.randomizedDelayUsec > 0) {
      const r = c.fixedRandomDelay ? this.host.fixedDelayHash(this.name) : this.host.randomU64();
      randomDelay = Number(r % BigInt(Math.floor(c.randomizedDelayUsec)));
    }
    const next = computed + randomDelay;
    const wake = sleepBetween(next, next + c.accuracyUsec, this.host.perturbUsec());
    return { clock, by, computed, randomDelay, next, wake };
  }

  /** One host timer for the nearer of the two wake-ups; re-checked against the clocks when it fires. */
  private arm(): void {
    this.cancel();
    const ts = this.host.now();
    let delay = Infinity;
    if (this.monotonicPlan !== undefined) delay = Math.min(delay, this.monotonicPlan.wake - ts.monotonic);
    if (this.realtimePlan !== undefined) delay = Math.min(delay, this.realtimePlan.wake - ts.realtime);
    if (!Number.isFinite(delay)) return;
    const ms = Math.max(0, Math.ceil(delay / 1000));
    this.cancelWake = this.host.setTimer(ms, () => {
      this.cancelWake = undefined;
      this.onWake();
    });
  }

  private onWake(): void {
    if (this.state !== 'waiting') return;
    const ts = this.host.now();
    const due =
      (this.monotonicPlan !== undefined && ts.monotonic >= this.monotonicPlan.wake) ||
      (this.realtimePlan !== undefined && ts.realtime >= this.realtimePlan.wake);
    if (!due) {
      // The host's timer ran early (millisecond rounding) or the wall clock moved: wait the rest.
      this.arm();
      return;
    }
    this.host.log.debug('timer elapsed');
    this.enterRunning();
  }

  /** systemd's timer_enter_running(): start the unit through the job engine. */
  private enterRunning(): void {
    this.cancel();
    const target = this.triggerName() as string;
    const s = this.host.unitStatus(target);
    if (s === undefined || s.load !== 'loaded') {
      this.problem = `the unit to trigger, ${target}, vanished (${s?.load ?? 'not-found'})`;
      this.host.log.warn(this.problem);
      this.enterDead('resources');
      return;
    }
    const r = this.host.startUnit(target);
    if (!r.ok) {
      this.problem = `failed to queue a start job for ${target}: ${r.reason}`;
      this.host.log.warn(this.problem);
      this.enterDead('resources');
      return;
    }
    this.lastTrigger = this.host.now();
    this.nTriggers++;
    if (this.config.persistent) this.touchStamp(this.lastTrigger.realtime);
    this.setState('running');
    const trigger = this.lastTrigger;
    r.done.then(
      (result) => this.startJobDone(trigger, result),
      () => this.startJobDone(trigger, 'failed'),
    );
  }

  /**
   * A start job that ended without the unit changing state (its condition failed, a dependency
   * failed, it was canceled) would leave the timer 'running' for ever: wait for the next elapse.
   */
  private startJobDone(trigger: DualTimestamp, result: string): void {
    if (this.state !== 'running' || this.lastTrigger !== trigger || result === 'done') return;
    const s = this.host.unitStatus(this.triggerName() as string);
    if (s !== undefined && s.active !== 'inactive' && s.active !== 'failed') return;
    this.host.log.debug(`start job ended: ${result}; waiting for the next elapse`);
    this.enterWaiting(false);
  }

  private enterElapsed(leaveAround: boolean): void {
    if (this.config.remainAfterElapse || leaveAround) this.setState('elapsed');
    else this.enterDead('success');
  }

  private enterDead(result: TimerResult): void {
    if (this.result === 'success') this.result = result;
    this.setState(this.result !== 'success' ? 'failed' : 'dead');
  }

  private cancel(): void {
    this.cancelWake?.();
    this.cancelWake = undefined;
  }

  private setState(next: TimerState): void {
    const from = this.state;
    if (next !== 'waiting') {
      this.cancel();
      if (next !== 'running') {
        this.realtimePlan = undefined;
        this.monotonicPlan = undefined;
      }
    }
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    this.host.stateChanged(from, next, this.result);
  }

  // ---- what `status`, `show` and `list-timers` see ---------------------------------------------

  /** The next elapse as a wall-clock time (a monotonic one converted at `now`), or undefined. */
  nextElapseRealtime(now: DualTimestamp = this.host.now()): number | undefined {
    let best: number | undefined;
    if (this.realtimePlan !== undefined) best = this.realtimePlan.next;
    if (this.monotonicPlan !== undefined) {
      const m = now.realtime + (this.monotonicPlan.next - now.monotonic);
      if (best === undefined || m < best) best = m;
    }
    return best;
  }

  /** The plan that comes first (for "why"). */
  private earliestPlan(now: DualTimestamp): ElapsePlan | undefined {
    const r = this.realtimePlan;
    const m = this.monotonicPlan;
    if (r === undefined) return m;
    if (m === undefined) return r;
    return now.realtime + (m.next - now.monotonic) < r.next ? m : r;
  }

  /** One line saying why the next elapse is when it is. */
  explainNext(now: DualTimestamp = this.host.now()): string | undefined {
    const p = this.earliestPlan(now);
    if (p === undefined) return undefined;
    const c = this.config;
    const parts: string[] = [p.by];
    if (p.catchUp !== undefined) {
      const when = formatTimestamp(p.catchUp.missed, this.host.localZone());
      const cause =
        p.catchUp.cause === 'downtime'
          ? c.persistent
            ? 'missed while triggerd was not running (Persistent=yes)'
            : 'missed before triggerd started'
          : p.catchUp.cause === 'resume'
            ? 'missed during suspend'
            : 'skipped by a clock change';
      parts.push(`catch-up of ${when}, ${cause}`);
    }
    if (c.randomizedDelayUsec > 0)
      parts.push(
        `+${formatSpan(p.randomDelay)} of RandomizedDelaySec=${formatSpan(c.randomizedDelayUsec)}${c.fixedRandomDelay ? ' (fixed)' : ''}`,
      );
    if (p.wake > p.next)
      parts.push(`+${formatSpan(p.wake - p.next)} coalesced by AccuracySec=${formatSpan(c.accuracyUsec)}`);
    return parts.join('; ');
  }

  statusLines(): string[] {
    const c = this.file.timer;
    if (c === undefined) return [];
    const label = (l: string): string => `${l.padStart(11)}: `;
    const now = this.host.now();
    const lines: string[] = [];
    const next = this.nextElapseRealtime(now);
    lines.push(
      `${label('Trigger')}${next === undefined ? 'n/a' : `${formatTimestamp(next, this.host.localZone())}; ${formatRelative(next, now.realtime)}`}`,
    );
    const why = this.explainNext(now);
    if (why !== undefined) lines.push(`${label('Why')}${why}`);
    lines.push(`${label('Triggers')}${this.triggerName() ?? ''}`);
    const values = this.values.map((v) => {
      if (v.kind === 'calendar') {
        const e = c.calendar[v.index];
        return e === undefined ? v.text : `OnCalendar=${formatCalendarSpec(e.spec)}`;
      }
      return v.disabled ? `${v.text} (done)` : v.text;
    });
    if (c.onClockChange) values.push('OnClockChange=yes');
    if (c.onTimezoneChange) values.push('OnTimezoneChange=yes');
    lines.push(`${label('Timers')}${values.join(', ')}`);
    if (this.lastTrigger.realtime > 0)
      lines.push(
        `${label('Last')}${formatTimestamp(this.lastTrigger.realtime, this.host.localZone())}; ${formatRelative(this.lastTrigger.realtime, now.realtime)}` +
          (this.nTriggers > 0 ? ` (${this.nTriggers} times since triggerd started)` : ' (from the stamp)'),
      );
    if (this.problem !== undefined) lines.push(`${label('Problem')}${this.problem}`);
    return lines;
  }

  properties(): Record<string, unknown> {
    const c = this.file.timer;
    const now = this.host.now();
    return {
      Result: this.result,
      Unit: this.triggerName() ?? '',
      NextElapseUSecRealtime: this.realtimePlan?.next ?? 0,
      NextElapseUSecMonotonic: this.monotonicPlan?.next ?? 0,
      /** The next elapse on the wall clock, whichever clock it is armed on (list-timers' NEXT). */
      NextElapseUSec: this.nextElapseRealtime(now) ?? 0,
      NextElapseWhy: this.explainNext(now) ?? '',
      LastTriggerUSec: this.lastTrigger.realtime,
      LastTriggerUSecMonotonic: this.lastTrigger.monotonic,
      NTriggers: this.nTriggers,
      TimersCalendar: (c?.calendar ?? []).map((e, i) => ({
        spec: formatCalendarSpec(e.spec),
        next: this.values.find((v) => v.kind === 'calendar' && v.index === i)?.next ?? 0,
      })),
      TimersMonotonic: (c?.monotonic ?? []).map((e, i) => ({
        base: e.base,
        usec: e.usec,
        next: this.values.find((v) => v.kind === e.base && v.index === i)?.next ?? 0,
      })),
      AccuracyUSec: c?.accuracyUsec ?? 0,
      RandomizedDelayUSec: c?.randomizedDelayUsec ?? 0,
      FixedRandomDelay: c?.fixedRandomDelay ?? false,
      Persistent: c?.persistent ?? false,
      WakeSystem: c?.wakeSystem ?? false,
      RemainAfterElapse: c?.remainAfterElapse ?? true,
      OnClockChange: c?.onClockChange ?? false,
      OnTimezoneChange: c?.onTimezoneChange ?? false,
      StrictSystemdCalendar: c?.strictSystemdCalendar ?? false,
      Problem: this.problem ?? null,
    };
  }
}
