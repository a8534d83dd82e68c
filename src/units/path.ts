// .path units: systemd's path state machine (dead → waiting → running → waiting ..., failed),
// watching through a PathWatchSource (src/events/path-watches.ts: one inotify instance for every
// path unit) and starting its unit (Unit=, or foo.service) through the job engine. Everything
// it needs from the world comes through an injected PathHost, so the machine runs on a fake
// source and virtual time in tests. Every transition goes through setState().
//
// systemd's semantics: PathExists=, PathExistsGlob= and DirectoryNotEmpty= are level conditions,
// checked when the unit starts, on every event, and again when the triggered unit goes inactive
// (a condition that still holds triggers again); PathChanged= and PathModified= are edges: an
// event on the path itself, or its existence flipping. Where triggerd does better (semantics.md
// §2.5, §3):
// - it keeps watching while the triggered unit runs and latches ONE pending trigger, started when
//   the run ends ([X-Triggerd] LatchWhileRunning=, default yes; no drops those events as systemd);
// - IN_Q_OVERFLOW re-checks every spec: level conditions as always, and PathChanged/PathModified
//   compare a stat snapshot, so the trigger is coalesced, never lost;
// - a hit trigger limit defers (keeps watching, `status` says "deferred until T", doubling back-off
//   up to a minute) instead of failing the unit for good;
// - a daemon-reload re-arms only the specs that changed (the file setter below).
//
// [X-Triggerd] PathChangedRecursive= and PathAccessed= are edges served by the fanotify sources
// (PathHost.sourceFor). A PathAccessed= source with HoldAccess=yes keeps the openers waiting until
// this unit calls release() on its watch: when the start job of the run it triggered completes
// (success when the job is 'done', failure otherwise; for Type=oneshot that is the moment its
// ExecStart= has exited, for Type=notify READY=1), and in any case when the triggered unit leaves
// the running states (failure when it failed). So HoldAccess= works best with a Type=oneshot job;
// with Type=simple the job completes at fork, before the file is produced. An opener that arrives
// while another spec's run is going on triggers the next run (latched) and waits for that one.
import type { Logger } from '../util/logger';
import type { ConditionSpec, LoadedUnitFile, PathSection, PathSpecEntry } from './config-types';
import type { PathWatchEvent, PathWatchSource, SpecWatch, SpecWatchState } from '../events/path-watches';
import type { PathCheck } from './path-checks';
import { directoryToMake, pathTriggerName } from './path-config';
import type { ActiveState, JobOutcome, LoadState, UnitInstance } from './unit-type';

export type PathState = 'dead' | 'waiting' | 'running' | 'failed';

/** systemd's PathResult, as Result= shows it. */
export type PathResult = 'success' | 'resources' | 'start-limit-hit' | 'unit-start-limit-hit';

const ACTIVE: Record<PathState, ActiveState> = {
  dead: 'inactive',
  waiting: 'active',
  running: 'active',
  failed: 'failed',
};

/** The triggered unit as the path unit sees it through the host. */
export interface TriggeredUnitView {
  active: ActiveState;
  load: LoadState;
  /** A start or restart job is on its way for it. */
  hasJob: boolean;
  result?: string;
}

/** Everything a path unit needs from the world. */
export interface PathHost {
  /** The watch source for a spec: inotify for systemd's kinds, fanotify for [X-Triggerd]'s. */
  sourceFor(spec: PathSpecEntry): PathWatchSource;
  check(spec: PathSpecEntry): PathCheck;
  /** Condition*=/Assert*= of [Unit], evaluated at start as for every unit type. */
  conditionHolds(condition: ConditionSpec): boolean;
  /** MakeDirectory=: throws a system error when it cannot. */
  makeDirectory(path: string, mode: number): void;
  unitStatus(name: string): TriggeredUnitView | undefined;
  /** Enqueue a start job; `done` resolves with the job's result. */
  startUnit(
    name: string,
    env: Record<string, string>,
  ): { ok: true; done: Promise<string> } | { ok: false; reason: string };
  setTimer(ms: number, fn: () => void): () => void;
  /** Monotonic ms. */
  now(): number;
  stateChanged(from: PathState, to: PathState, result: PathResult): void;
  /** What armableSpec() answers may have changed (an armed start looks again). */
  armableChanged?(): void;
  /** Whether the next trigger starts the job from the inotify wake-up, else why not (status). */
  armedState?():
    { armed: true; parkedPid: number; notParked?: string } | { armed: false; why: string } | undefined;
  /** Records a fired armed start whose bookkeeping waits, now (PathArmedStarts.flush). */
  settleArmed?(): void;
  log: Logger;
}

/** A fired spec: which, and why (for TRIGGER_PATH and `status`). */
export interface TriggerCause {
  kind: PathSpecEntry['kind'];
  path: string;
  why: string;
}

/** The trigger limit is hit: triggers wait until `until` (monotonic) and then the last cause fires. */
export interface Deferral {
  reason: string;
  until: number;
  untilWall: number;
  consecutive: number;
}

interface SpecRuntime {
  entry: PathSpecEntry;
  watch?: SpecWatch;
  exists: boolean;
  snapshot?: string;
  problem?: string;
  /** Events delivered for it since the unit started (after coalescing). */
  events: number;
  /**
   * It fired while another run was going on: its held openers (PathAccessed=) wait for the
   * latched run, so the end of the current one does not release them.
   */
  waitsForNextRun?: boolean;
}

/** systemd's RateLimit: `burst` triggers per `intervalMs` window. */
class RateWindow {
  private begin = -Infinity;
  private count = 0;

  constructor(
    readonly intervalMs: number,
    readonly burst: number,
  ) {}

  get enabled(): boolean {
    return this.intervalMs > 0 && this.burst > 0;
  }

  /** Whether below(now) would say yes, without counting. */
  allows(now: number): boolean {
    return !this.enabled || now - this.begin >= this.intervalMs || this.count < this.burst;
  }

  below(now: number): boolean {
    if (!this.enabled) return true;
    if (now - this.begin >= this.intervalMs) {
      this.begin = now;
      this.count = 0;
    }
    this.count++;
    return this.count <= this.burst;
  }

  windowEnd(): number {
    return this.begin + this.intervalMs;
  }
}

const MAX_BACKOFF_MS = 60_000;
/** Level conditions; every other kind (PathChanged=, PathModified=, the fanotify kinds) is an edge. */
const LEVEL = new Set(['PathExists', 'PathExistsGlob', 'DirectoryNotEmpty']);
const isEdge = (kind: string): boolean => !LEVEL.has(kind);

function specKey(s: PathSpecEntry): string {
  return `${s.kind}\0${s.path}\0${s.hold ?? ''}\0${s.holdTimeoutMs ?? ''}\0${s.holdOnTimeout ?? ''}`;
}

export class PathUnit implements UnitInstance {
  readonly suffix = '.path';
  state: PathState = 'dead';
  result: PathResult = 'success';
  since = Date.now();
  readonly load: LoadState;
  /** Triggers started (each is one start job). */
  nTriggers = 0;
  /** Events that arrived while the unit ran and were latched into the one pending trigger. */
  nLatched = 0;
  /** Overflow re-checks this unit went through. */
  nOverflows = 0;
  /** Triggers whose job was cloned from the inotify wake-up (armed starts). */
  nArmedStarts = 0;
  lastTrigger: (TriggerCause & { at: number; result: string }) | undefined;
  /** The one trigger waiting for the run (or a deferral) to end. */
  pending: TriggerCause | undefined;
  deferral: Deferral | undefined;
  lastError: string | undefined;
  private specs: SpecRuntime[] = [];
  private limit: RateWindow;
  private hits = 0;
  private lastDeferralEnd = -Infinity;
  private cancelDeferral: (() => void) | undefined;
  private startTimes: number[] = [];
  private fileValue: LoadedUnitFile;
  /** Unit= (or foo.service), worked out once per file: every unit's transition asks for it. */
  private triggerNameValue: string;
  /** firedArmed() made the trigger of the change whose event (marked `armed`) is on its way. */
  private armedTriggered = false;
  /** An armed start fired and its firedArmed() is still to come (armedFiredLater). */
  private armedPending = false;
  /** ...and its change's event came meanwhile (only the path's state was taken from it). */
  private armedEventSeen = false;

  constructor(
    readonly name: string,
    file: LoadedUnitFile,
    private readonly host: PathHost,
  ) {
    this.fileValue = file;
    this.triggerNameValue = pathTriggerName(name, file.path ?? {});
    this.load = file.loadState;
    this.limit = this.limitWindow();
  }

  get file(): LoadedUnitFile {
    return this.fileValue;
  }

  /** daemon-reload hands a running unit its new file: re-arm only the specs that changed. */
  set file(next: LoadedUnitFile) {
    const before = this.fileValue;
    this.fileValue = next;
    this.triggerNameValue = pathTriggerName(this.name, next.path ?? {});
    if (this.state !== 'waiting' && this.state !== 'running') return;
    if (next.path === undefined || next.loadState !== 'loaded') return;
    const old = new Map(this.specs.map((s) => [specKey(s.entry), s]));
    const kept: SpecRuntime[] = [];
    let added = 0;
    for (const entry of next.path.specs) {
      const key = specKey(entry);
      const same = old.get(key);
      if (same !== undefined) {
        old.delete(key);
        same.entry = entry;
        kept.push(same);
        continue;
      }
      const rt: SpecRuntime = { entry, exists: false, events: 0 };
      this.arm(rt);
      kept.push(rt);
      added++;
    }
    for (const gone of old.values()) gone.watch?.close();
    this.specs = kept;
    const p = before.path;
    if (
      p?.triggerLimitIntervalMs !== next.path.triggerLimitIntervalMs ||
      p?.triggerLimitBurst !== next.path.triggerLimitBurst
    )
      this.limit = this.limitWindow();
    this.host.log.info(
      { kept: kept.length - added, added, removed: old.size },
      'daemon-reload: path watches kept where unchanged',
    );
    if (this.state === 'waiting' && added > 0) this.checkLevels('reload');
  }

  get config(): PathSection {
    if (this.fileValue.path === undefined) throw new Error(`${this.name}: no [Path] configuration`);
    return this.fileValue.path;
  }

  /** The unit this one starts. */
  triggerName(): string {
    return this.triggerNameValue;
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.fileValue.unit.description ?? this.name;
  }

  canReload(): boolean {
    return false;
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name}: path units cannot be reloaded` };
  }

  // ---- jobs -----------------------------------------------------------------------------------

  start(): JobOutcome {
    if (this.state === 'waiting' || this.state === 'running') return 'done';
    if (this.load !== 'loaded' || this.fileValue.path === undefined)
      return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    const target = this.triggerName();
    const t = this.host.unitStatus(target);
    if (t === undefined || t.load !== 'loaded') {
      return {
        failed: 'failed',
        reason: `${this.name}: refusing to start, the unit to trigger ${target} is ${t?.load ?? 'not-found'}`,
      };
    }
    if (!this.checkStartLimit()) {
      this.result = 'start-limit-hit';
      this.setState('failed');
      return {
        failed: 'failed',
        reason: `${this.name}: start request repeated too quickly (start-limit-hit)`,
      };
    }
    const assertFailed = this.failedCondition('assert');
    if (assertFailed !== undefined) return { failed: 'assert', reason: `assertion failed: ${assertFailed}` };
    const conditionFailed = this.failedCondition('condition');
    if (conditionFailed !== undefined) {
      this.host.log.info(`condition not met, not watching anything: ${conditionFailed}`);
      this.lastError = `not started: condition not met: ${conditionFailed}`;
      return 'done';
    }
    this.result = 'success';
    this.lastError = undefined;
    this.pending = undefined;
    this.clearDeferral();
    this.hits = 0;
    this.limit = this.limitWindow();
    const c = this.config;
    if (c.makeDirectory) {
      for (const s of c.specs) {
        const dir = directoryToMake(s);
        if (dir === undefined) continue;
        try {
          this.host.makeDirectory(dir, c.directoryMode);
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          this.host.log.warn({ code: e.code }, `MakeDirectory=: cannot create ${dir}: ${e.message}`);
        }
      }
    }
    this.specs = c.specs.map((entry) => ({ entry, exists: false, events: 0 }));
    try {
      for (const s of this.specs) this.arm(s);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.lastError = `cannot watch: ${e.message}${e.code !== undefined ? ` (${e.code})` : ''}`;
      this.host.log.error({ code: e.code }, this.lastError);
      this.unwatch();
      this.result = 'resources';
      this.setState('failed');
      return { failed: 'failed', reason: `${this.name}: ${this.lastError}` };
    }
    this.setState('waiting');
    // The triggered unit may run already (started by hand): then this one is 'running'.
    const now = this.host.unitStatus(target);
    if (now !== undefined && isBusy(now)) this.setState('running');
    else this.checkLevels('initial check');
    return 'done';
  }

  stop(): JobOutcome {
    if (this.state === 'dead' || this.state === 'failed') return 'done';
    this.unwatch();
    this.pending = undefined;
    this.clearDeferral();
    this.setState('dead');
    return 'done';
  }

  /** daemon-reload rebuilt an inactive unit: keep what `status` shows of the old one. */
  carryOver(previous: PathUnit): void {
    if (this.state !== 'dead' || (previous.state !== 'dead' && previous.state !== 'failed')) return;
    this.state = previous.state;
    this.since = previous.since;
    this.result = previous.result;
    this.lastTrigger = previous.lastTrigger;
    this.lastError = previous.lastError;
    this.nTriggers = previous.nTriggers;
    this.nLatched = previous.nLatched;
    this.nOverflows = previous.nOverflows;
    this.nArmedStarts = previous.nArmedStarts;
    this.startTimes = previous.startTimes;
  }

  resetFailed(): void {
    this.startTimes = [];
    if (this.state === 'failed') {
      this.result = 'success';
      this.setState('dead');
    }
  }

  // ---- events ---------------------------------------------------------------------------------

  /** A unit changed state; only the triggered one matters. */
  onUnitChanged(name: string): void {
    if (name !== this.triggerName()) return;
    if (this.state !== 'waiting' && this.state !== 'running') return;
    const s = this.host.unitStatus(name);
    if (s === undefined) return;
    if (isBusy(s)) {
      if (this.state === 'waiting') this.setState('running');
      return;
    }
    if (this.state !== 'running') return;
    this.releaseHeld(s.active === 'failed' ? 'failure' : 'success');
    this.setState('waiting');
    this.afterRun();
  }

  // ---- armed starts (src/core/path-armed-start.ts) ---------------------------------------------

  /**
   * What an armed start may fire for: the one spec of this unit, a PathChanged=/PathModified= path
   * that exists and has a watch of its own, while the unit waits with nothing pending or deferred
   * and its trigger limit allows one more trigger. Undefined otherwise.
   */
  armableSpec(): { watch: SpecWatch; cause: TriggerCause } | undefined {
    if (this.state !== 'waiting' || this.deferral !== undefined || this.pending !== undefined)
      return undefined;
    const rt = this.specs.length === 1 ? this.specs[0] : undefined;
    if (rt === undefined || (rt.entry.kind !== 'PathChanged' && rt.entry.kind !== 'PathModified'))
      return undefined;
    const watch = rt.watch;
    if (!rt.exists || watch?.armOnChange === undefined || watch.release !== undefined) return undefined;
    if (!this.limit.allows(this.host.now())) return undefined;
    return { watch, cause: { kind: rt.entry.kind, path: rt.entry.path, why: 'changed' } };
  }

  /**
   * The armed start fired: its process runs already, and this is the trigger the change would
   * have made when its event came. False when the unit would not trigger now (the armed process
   * is then not taken, and killed).
   */
  firedArmed(): boolean {
    const eventSeen = this.armedPending && this.armedEventSeen;
    this.armedPending = false;
    this.armedEventSeen = false;
    this.armedTriggered = false;
    const armed = this.armableSpec();
    if (armed === undefined) return false;
    const before = this.nTriggers;
    this.trigger({ ...armed.cause, why: 'changed (started from the inotify wake-up)' });
    const triggered = this.nTriggers > before;
    // Its event still to come carries no trigger of its own.
    this.armedTriggered = triggered && !eventSeen;
    if (triggered) this.nArmedStarts++;
    return triggered;
  }

  /**
   * The armed start fired, and its firedArmed() comes later (the job first on the CPU): the
   * change's event, if it comes before, only refreshes the path's state; any other event asks
   * for that firedArmed() first (host.settleArmed).
   */
  armedFiredLater(): void {
    this.armedPending = true;
    this.armedEventSeen = false;
  }

  private onWatchEvent(rt: SpecRuntime, ev: PathWatchEvent): void {
    // Any event but an armed start's own: a start whose bookkeeping waits (this unit's, or a
    // sibling's on the same file) is recorded before this one is judged.
    if (ev.armed !== true || ev.overflow || !this.armedPending) this.host.settleArmed?.();
    try {
      this.onWatchEventNow(rt, ev);
    } finally {
      this.host.armableChanged?.();
    }
  }

  private onWatchEventNow(rt: SpecRuntime, ev: PathWatchEvent): void {
    if (this.state !== 'waiting' && this.state !== 'running') return;
    rt.events++;
    if (ev.overflow) this.nOverflows++;
    if (ev.armed === true && (this.armedPending || this.armedTriggered) && !ev.overflow) {
      // The armed start's trigger is firedArmed()'s (made already, or still to come when its
      // bookkeeping waits): only the path's state is news.
      if (this.armedPending) this.armedEventSeen = true;
      else this.armedTriggered = false;
      const c = this.host.check(rt.entry);
      rt.problem = c.problem;
      rt.exists = c.exists;
      rt.snapshot = c.snapshot;
      return;
    }
    if (
      this.state === 'waiting' &&
      ev.changed &&
      ev.pid === undefined &&
      rt.exists &&
      isEdge(rt.entry.kind)
    ) {
      // A write to a path that existed fires whatever a stat would say: the stat that keeps the
      // existence and snapshot current comes after the trigger, off the path of the job's start.
      this.trigger({ kind: rt.entry.kind, path: ev.where ?? rt.entry.path, why: 'changed' });
      const after = this.host.check(rt.entry);
      rt.problem = after.problem;
      rt.exists = after.exists;
      rt.snapshot = after.snapshot;
      return;
    }
    const c = this.host.check(rt.entry);
    rt.problem = c.problem;
    const edge = isEdge(rt.entry.kind);
    // LatchWhileRunning=no: as systemd, which does not watch during a run (the existence check
    // after the run compares with what was there before it).
    if (edge && this.state === 'running' && !this.config.latchWhileRunning) return;
    let fire: string | undefined;
    if (edge) {
      const flipped = c.exists !== rt.exists;
      const differs = c.snapshot !== rt.snapshot;
      if (ev.changed && ev.pid !== undefined) fire = `opened by pid ${ev.pid}`;
      else if (flipped) fire = c.exists ? 'created' : 'removed';
      else if (ev.changed) fire = 'changed';
      else if (ev.overflow && differs) fire = 'changed (found by the re-check after an inotify overflow)';
      rt.exists = c.exists;
      rt.snapshot = c.snapshot;
    } else {
      rt.exists = c.exists;
      if (c.holds)
        fire = ev.overflow ? 'condition holds (re-check after an inotify overflow)' : 'condition holds';
    }
    if (fire === undefined) return;
    const cause: TriggerCause = {
      kind: rt.entry.kind,
      path: ev.where ?? c.match ?? rt.entry.path,
      why: fire,
    };
    if (this.state === 'running') {
      // Level conditions are re-checked when the run ends anyway; only edges need the latch.
      if (!edge || !this.config.latchWhileRunning) return;
      this.nLatched++;
      // A held-access source reports an opener during a run only when that run is not its own.
      if (rt.watch?.release !== undefined) rt.waitsForNextRun = true;
      if (this.pending === undefined)
        this.host.log.debug({ path: cause.path }, `${cause.kind} fired during the run: latched`);
      this.pending = cause;
      return;
    }
    this.trigger(cause);
  }

  // ---- the machine ----------------------------------------------------------------------------

  private arm(rt: SpecRuntime): void {
    const c = this.host.check(rt.entry);
    rt.exists = c.exists;
    rt.snapshot = c.snapshot;
    rt.problem = c.problem;
    rt.watch = this.host.sourceFor(rt.entry).watch(rt.entry, (ev) => this.onWatchEvent(rt, ev));
    // Close the race between the first check and the watch: what changed meanwhile counts.
    const again = this.host.check(rt.entry);
    if (isEdge(rt.entry.kind) && (again.exists !== c.exists || again.snapshot !== c.snapshot)) {
      rt.exists = again.exists;
      rt.snapshot = again.snapshot;
    }
  }

  /** Answer the openers held for the run that is ending (not those waiting for the next one). */
  private releaseHeld(outcome: 'success' | 'failure'): void {
    for (const rt of this.specs) {
      if (rt.waitsForNextRun === true) continue;
      rt.watch?.release?.(outcome);
    }
  }

  private unwatch(): void {
    for (const s of this.specs) {
      s.watch?.close();
      s.watch = undefined;
    }
  }

  /** After a run: the latched trigger, else systemd's existence check, else the level conditions. */
  private afterRun(): void {
    for (const rt of this.specs) rt.waitsForNextRun = undefined;
    if (this.pending !== undefined) {
      const p = this.pending;
      this.pending = undefined;
      if (this.deferral === undefined) this.trigger({ ...p, why: `${p.why}, latched while the unit ran` });
      else this.pending = p;
      return;
    }
    if (!this.config.latchWhileRunning) {
      // systemd re-watches and fires if the path's existence flipped meanwhile.
      for (const rt of this.specs) {
        if (!isEdge(rt.entry.kind)) continue;
        const c = this.host.check(rt.entry);
        const flipped = c.exists !== rt.exists;
        rt.exists = c.exists;
        rt.snapshot = c.snapshot;
        if (flipped)
          return this.trigger({
            kind: rt.entry.kind,
            path: rt.entry.path,
            why: c.exists ? 'created' : 'removed',
          });
      }
    } else {
      for (const rt of this.specs) {
        if (!isEdge(rt.entry.kind)) continue;
        const c = this.host.check(rt.entry);
        rt.exists = c.exists;
        rt.snapshot = c.snapshot;
      }
    }
    this.checkLevels('condition still holds after the run');
  }

  /** Fire the first level condition that holds. */
  private checkLevels(why: string): void {
    if (this.state !== 'waiting') return;
    for (const rt of this.specs) {
      if (isEdge(rt.entry.kind)) continue;
      const c = this.host.check(rt.entry);
      rt.exists = c.exists;
      rt.problem = c.problem;
      if (c.holds) return this.trigger({ kind: rt.entry.kind, path: c.match ?? rt.entry.path, why });
    }
  }

  private trigger(cause: TriggerCause): void {
    if (this.state !== 'waiting') return;
    if (this.deferral !== undefined) {
      this.pending = cause;
      return;
    }
    const now = this.host.now();
    if (!this.limit.below(now)) {
      this.pending = cause;
      return this.defer(
        `trigger limit hit: more than ${this.limit.burst} triggers in ${formatMs(this.limit.intervalMs)} ` +
          `(TriggerLimitBurst=, TriggerLimitIntervalSec=)`,
        Math.max(this.limit.windowEnd() - now, this.backoffMs()),
      );
    }
    const target = this.triggerName();
    const t = this.host.unitStatus(target);
    if (t === undefined || t.load !== 'loaded') {
      this.pending = cause;
      return this.defer(`the unit to trigger ${target} is ${t?.load ?? 'not-found'}`, this.backoffMs());
    }
    const r = this.host.startUnit(target, { TRIGGER_UNIT: this.name, TRIGGER_PATH: cause.path });
    if (!r.ok) {
      this.host.log.error({ unit: target }, `cannot start ${target}: ${r.reason}`);
      this.pending = cause;
      return this.defer(`starting ${target} was refused: ${r.reason}`, this.backoffMs());
    }
    this.nTriggers++;
    const record = { ...cause, at: Date.now(), result: 'queued' };
    this.lastTrigger = record;
    this.host.log.info(
      { path: cause.path, kind: cause.kind },
      `triggering ${target}: ${cause.kind}=${cause.path} ${cause.why}`,
    );
    this.setState('running');
    r.done.then(
      (result) => {
        record.result = result;
        // The job is complete (a oneshot has run): held openers of this run may go on.
        if (this.state === 'running') this.releaseHeld(result === 'done' ? 'success' : 'failure');
        if (result !== 'done' && result !== 'skipped')
          this.host.log.warn({ unit: target, result }, `start of ${target}: ${result}`);
        // The unit refused to start because of its own start limit: the trigger is not lost, it
        // waits (systemd fails the path unit with unit-start-limit-hit here).
        if (result !== 'done' && this.host.unitStatus(target)?.result === 'start-limit-hit') {
          record.result = `${result} (start-limit-hit; retried after a back-off)`;
          this.pending ??= cause;
          if (this.state === 'running') this.setState('waiting');
          if (this.deferral === undefined && this.state === 'waiting')
            this.defer(`${target} hit its start limit (StartLimitBurst=)`, Math.max(this.backoffMs(), 1000));
          return;
        }
        // A skipped start (a failed condition) changes no state: look again.
        this.onUnitChanged(target);
      },
      () => undefined,
    );
  }

  /** Keep watching; fire what is pending (or what holds) when the wait is over. */
  private defer(reason: string, ms: number): void {
    const now = this.host.now();
    this.hits = this.deferral !== undefined || now - this.lastDeferralEnd < 2 * ms ? this.hits + 1 : 1;
    const wait = Math.max(1, ms);
    this.cancelDeferral?.();
    this.deferral = { reason, until: now + wait, untilWall: Date.now() + wait, consecutive: this.hits };
    this.host.log.warn({ retryInMs: Math.round(wait) }, `${reason}; trigger deferred for ${formatMs(wait)}`);
    this.cancelDeferral = this.host.setTimer(wait, () => {
      this.cancelDeferral = undefined;
      this.deferral = undefined;
      this.lastDeferralEnd = this.host.now();
      if (this.state !== 'waiting') return;
      const p = this.pending;
      this.pending = undefined;
      if (p !== undefined) this.trigger({ ...p, why: `${p.why}, deferred` });
      else this.checkLevels('condition holds after the deferral');
      this.host.armableChanged?.();
    });
    this.host.armableChanged?.();
  }

  private clearDeferral(): void {
    this.cancelDeferral?.();
    this.cancelDeferral = undefined;
    this.deferral = undefined;
  }

  private backoffMs(): number {
    const base = this.limit.enabled ? this.limit.intervalMs : 2000;
    return Math.min(base * 2 ** Math.max(0, this.hits), MAX_BACKOFF_MS);
  }

  private limitWindow(): RateWindow {
    const p = this.fileValue.path;
    return new RateWindow(p?.triggerLimitIntervalMs ?? 2000, p?.triggerLimitBurst ?? 200);
  }

  /** The first Condition (or Assert) that fails, described; '|' ones need only one to hold. */
  private failedCondition(kind: 'condition' | 'assert'): string | undefined {
    const all = this.fileValue.unit.conditions.filter((c) => c.kind === kind);
    const describe = (c: ConditionSpec): string =>
      `${c.kind === 'assert' ? 'Assert' : 'Condition'}${c.name}=${c.trigger ? '|' : ''}${c.negate ? '!' : ''}${c.value} (${c.source.file}:${c.source.line})`;
    for (const c of all) if (!c.trigger && this.host.conditionHolds(c) === c.negate) return describe(c);
    const triggers = all.filter((c) => c.trigger);
    if (triggers.length > 0 && !triggers.some((c) => this.host.conditionHolds(c) !== c.negate))
      return `none of ${triggers.map(describe).join(', ')}`;
    return undefined;
  }

  private checkStartLimit(): boolean {
    const interval = this.fileValue.unit.startLimitIntervalMs ?? 10_000;
    const burst = this.fileValue.unit.startLimitBurst ?? 5;
    if (interval <= 0 || burst <= 0) return true;
    const now = this.host.now();
    this.startTimes = this.startTimes.filter((t) => now - t < interval);
    if (this.startTimes.length >= burst) return false;
    this.startTimes.push(now);
    return true;
  }

  /** The one place the state changes. */
  private setState(next: PathState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (next === 'dead' || next === 'failed') {
      this.armedTriggered = false;
      this.armedPending = false;
      this.armedEventSeen = false;
    }
    this.host.stateChanged(from, next, this.result);
    this.host.armableChanged?.();
  }

  // ---- status ---------------------------------------------------------------------------------

  /** Each spec and its watch, for `status` and `show`. */
  watches(): {
    kind: string;
    path: string;
    state?: SpecWatchState;
    exists: boolean;
    events: number;
    problem?: string;
    hold?: { timeoutMs: number; onTimeout: 'allow' | 'deny' };
  }[] {
    const list =
      this.specs.length > 0
        ? this.specs
        : (this.fileValue.path?.specs ?? []).map(
            (entry) => ({ entry, exists: false, events: 0 }) as SpecRuntime,
          );
    return list.map((s) => ({
      kind: s.entry.kind,
      path: s.entry.path,
      ...(s.watch !== undefined ? { state: s.watch.state() } : {}),
      exists: s.exists,
      events: s.events,
      ...(s.problem !== undefined ? { problem: s.problem } : {}),
      ...(s.entry.hold === true
        ? { hold: { timeoutMs: s.entry.holdTimeoutMs ?? 0, onTimeout: s.entry.holdOnTimeout ?? 'allow' } }
        : {}),
    }));
  }

  statusLines(): string[] {
    if (this.fileValue.path === undefined) return [];
    const label = (l: string): string => `${l.padStart(11)}: `;
    const lines: string[] = [];
    this.watches().forEach((w, i) => {
      let how = WAITS_FOR[w.kind] ?? w.kind;
      if (w.hold !== undefined)
        how +=
          ', holds the opener until the job completes' +
          (w.hold.timeoutMs > 0 ? ` or ${formatMs(w.hold.timeoutMs)} pass (then ${w.hold.onTimeout})` : '');
      if (w.state !== undefined) {
        const st = w.state;
        how +=
          st.waitingFor !== undefined
            ? `; missing: watching ${st.watching} for ${st.waitingFor}`
            : `; watching ${st.watching}`;
        if (st.mechanism !== undefined) how += ` by ${st.mechanism}`;
        if (st.held !== undefined && (st.held > 0 || this.state === 'running'))
          how += `; ${st.held} opener${st.held === 1 ? '' : 's'} held`;
        if (st.problem !== undefined) how += `; cannot watch ${st.problem}`;
      }
      if (w.problem !== undefined) how += `; cannot check ${w.problem}`;
      lines.push(`${i === 0 ? label('Watches') : ' '.repeat(13)}${w.kind}=${w.path} (${how})`);
    });
    const c = this.config;
    lines.push(
      `${label('Triggers')}${this.triggerName()}${c.latchWhileRunning ? '' : ' (LatchWhileRunning=no: changes during a run are dropped, as in systemd)'}`,
    );
    if (this.lastTrigger !== undefined) {
      const t = this.lastTrigger;
      lines.push(
        `${label('Last')}${new Date(t.at).toISOString()}: ${t.kind}=${t.path} ${t.why} → ${t.result} (${this.nTriggers} triggers)`,
      );
    }
    if (this.pending !== undefined) {
      const p = this.pending;
      lines.push(
        `${label('Latched')}${p.kind}=${p.path} ${p.why}: starts ${this.triggerName()} ${this.deferral !== undefined ? 'when the deferral ends' : 'again when the run ends'}` +
          (this.nLatched > 1 ? ` (${this.nLatched} events coalesced so far)` : ''),
      );
    }
    if (this.deferral !== undefined) {
      const left = Math.max(0, this.deferral.until - this.host.now());
      lines.push(
        `${label('Deferred')}until ${new Date(this.deferral.untilWall).toISOString()} (in ${formatMs(left)}): ${this.deferral.reason}`,
      );
    }
    const armed = this.host.armedState?.();
    if (armed !== undefined && (this.state === 'waiting' || this.state === 'running')) {
      const how = armed.armed
        ? armed.parkedPid > 0
          ? `yes: the next change starts the job, parked as pid ${armed.parkedPid}, from the inotify wake-up`
          : `yes: the next change starts the job from the inotify wake-up (cloned then: ${armed.notParked ?? 'not parked'})`
        : this.state === 'running'
          ? 'not while the triggered unit runs'
          : `no (${armed.why})`;
      const so =
        this.nArmedStarts > 0 ? `; ${this.nArmedStarts} of ${this.nTriggers} triggers started so` : '';
      lines.push(`${label('Armed')}${how}${so}`);
    }
    const limit = this.limit.enabled ? `${this.limit.burst}/${formatMs(this.limit.intervalMs)}` : 'off';
    lines.push(
      `${label('Limits')}trigger ${limit}${this.nOverflows > 0 ? `; overflow re-checks: ${this.nOverflows}` : ''}`,
    );
    if (this.lastError !== undefined) lines.push(`${label('Error')}${this.lastError}`);
    return lines;
  }

  properties(): Record<string, unknown> {
    const c = this.fileValue.path;
    const now = this.host.now();
    return {
      Result: this.result,
      Unit: this.triggerName(),
      Paths: this.watches(),
      MakeDirectory: c?.makeDirectory ?? false,
      DirectoryMode: `0${(c?.directoryMode ?? 0o755).toString(8)}`,
      TriggerLimitIntervalUSec: this.limit.intervalMs * 1000,
      TriggerLimitBurst: this.limit.burst,
      NArmedStarts: this.nArmedStarts,
      LatchWhileRunning: c?.latchWhileRunning ?? true,
      NTriggers: this.nTriggers,
      NLatched: this.nLatched,
      NOverflows: this.nOverflows,
      LastTrigger:
        this.lastTrigger === undefined
          ? null
          : { ...this.lastTrigger, at: new Date(this.lastTrigger.at).toISOString() },
      Pending: this.pending ?? null,
      Deferred:
        this.deferral === undefined
          ? null
          : {
              reason: this.deferral.reason,
              until: new Date(this.deferral.untilWall).toISOString(),
              inMs: Math.max(0, Math.round(this.deferral.until - now)),
              consecutive: this.deferral.consecutive,
            },
      LastError: this.lastError ?? null,
    };
  }
}

const WAITS_FOR: Record<string, string> = {
  PathExists: 'waits for it to exist',
  PathExistsGlob: 'waits for a match',
  PathChanged: 'waits for a close after writing, creation, deletion or rename',
  PathModified: 'waits for any write',
  DirectoryNotEmpty: 'waits for an entry',
  PathChangedRecursive: 'waits for a change anywhere below',
  PathAccessed: 'waits for an open',
};

function isBusy(s: TriggeredUnitView): boolean {
  return (
    s.active === 'active' ||
    s.active === 'activating' ||
    s.active === 'reloading' ||
    s.active === 'deactivating' ||
    (s.hasJob && s.active !== 'failed')
  );
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}
