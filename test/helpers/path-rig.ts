// A PathUnit on a fake host, shared by the unit tests of path units and of armed starts so both
// drive the unit through the same host: watch events delivered by hand, checks answered from a
// table the test edits, a triggered unit whose state the test moves, and virtual time.
import assert from 'node:assert/strict';
import type { PathSpecEntry } from '../../src/units/config-types';
import type { PathCheck } from '../../src/units/path-checks';
import { parseUnitText } from '../../src/units/unit-loader';
import { PathUnit, type PathHost, type PathState, type TriggeredUnitView } from '../../src/units/path';
import type {
  PathWatchEvent,
  PathWatchSource,
  SpecWatch,
  SpecWatchState,
  WatchSpec,
} from '../../src/events/path-watches';
import { silentLogger } from './logger';
import { VirtualClock } from './virtual-clock';

/** A fake watch per spec; armOnChange keeps the one armed call per path for the test to fire. */
export class FakeWatchSource implements PathWatchSource {
  readonly name = 'fake';
  readonly live = new Map<string, { listener: (e: PathWatchEvent) => void; closed: boolean }[]>();
  readonly armed = new Map<string, () => void>();
  opened = 0;
  closed = 0;
  disarms = 0;
  failWith: Error | undefined;
  /** armOnChange answers undefined (no watch of its own). */
  noArm = false;

  watch(spec: WatchSpec, listener: (e: PathWatchEvent) => void): SpecWatch {
    if (this.failWith !== undefined) throw this.failWith;
    this.opened++;
    const rec = { listener, closed: false };
    const list = this.live.get(spec.path) ?? [];
    list.push(rec);
    this.live.set(spec.path, list);
    return {
      state: (): SpecWatchState => ({ watching: spec.path, watches: 1 }),
      rewalk: () => undefined,
      close: () => {
        if (rec.closed) return;
        rec.closed = true;
        this.closed++;
      },
      armOnChange: (fn, _dropped, prepare) => {
        if (this.noArm) return undefined;
        // As the source does: the caller's prepare last, and no arm when it declines.
        if (prepare !== undefined && prepare() === undefined) return undefined;
        this.armed.set(spec.path, fn);
        return () => {
          if (this.armed.get(spec.path) !== fn) return;
          this.armed.delete(spec.path);
          this.disarms++;
        };
      },
    };
  }

  emit(path: string, e: Partial<PathWatchEvent> = {}): void {
    for (const r of this.live.get(path) ?? [])
      if (!r.closed) r.listener({ changed: false, rewalked: false, overflow: false, ...e });
  }

  /** The wake-up: the armed call first (one-shot), as the addon does. */
  fire(path: string): void {
    const fn = this.armed.get(path);
    assert.ok(fn !== undefined, `nothing armed on ${path}`);
    this.armed.delete(path);
    fn();
  }
}

export interface PathRig {
  unit: PathUnit;
  source: FakeWatchSource;
  clock: VirtualClock;
  states: PathState[];
  starts: { name: string; env: Record<string, string> }[];
  /** What check() answers per path. */
  fs: Map<string, PathCheck>;
  target: TriggeredUnitView | undefined;
  startAnswer: { ok: true } | { ok: false; reason: string };
  made: string[];
  /** The unit's state at each armableChanged call. */
  armable: string[];
  /** Where armableChanged/armedState go besides the spy (an armed-start orchestrator). */
  onArmable?: () => void;
  armedState?: () => { armed: true; parkedPid: number; notParked?: string } | { armed: false; why: string };
  /** Where settleArmed goes (PathArmedStarts.flush). */
  settleArmed?: () => void;
  /** The triggered unit runs (after a start) and then ends. */
  run(): void;
  end(): void;
}

/** Conditions hold unless their value is `nobody-here`, so a test can write one that does not. */
export function pathRig(text: string, name = 'foo.path'): PathRig {
  const file = parseUnitText(name, text, `/etc/triggerd/${name}`);
  assert.equal(file.loadState, 'loaded', JSON.stringify(file.diagnostics));
  const clock = new VirtualClock();
  const source = new FakeWatchSource();
  const r: PathRig = {
    unit: undefined as unknown as PathUnit,
    source,
    clock,
    states: [],
    starts: [],
    fs: new Map(),
    target: { active: 'inactive', load: 'loaded', hasJob: false },
    startAnswer: { ok: true },
    made: [],
    armable: [],
    run() {
      r.target = { active: 'activating', load: 'loaded', hasJob: false };
      r.unit.onUnitChanged(r.unit.triggerName());
    },
    end() {
      r.target = { active: 'inactive', load: 'loaded', hasJob: false };
      r.unit.onUnitChanged(r.unit.triggerName());
    },
  };
  const host: PathHost = {
    sourceFor: () => source,
    check: (spec: PathSpecEntry) => r.fs.get(spec.path) ?? { exists: false, holds: false, snapshot: '' },
    makeDirectory: (p) => r.made.push(p),
    conditionHolds: (c) => c.value !== 'nobody-here',
    unitStatus: () => r.target,
    startUnit: (n, env) => {
      if (!r.startAnswer.ok) return r.startAnswer;
      r.starts.push({ name: n, env });
      r.target = { active: 'inactive', load: 'loaded', hasJob: true };
      return { ok: true, done: Promise.resolve('done') };
    },
    setTimer: clock.setTimer,
    now: clock.now,
    stateChanged: (_from, to) => r.states.push(to),
    armableChanged: () => {
      r.armable.push(`${r.unit.state}${r.unit.deferral !== undefined ? ' deferred' : ''}`);
      r.onArmable?.();
    },
    armedState: () => r.armedState?.(),
    settleArmed: () => r.settleArmed?.(),
    log: silentLogger(),
  };
  r.unit = new PathUnit(name, file, host);
  return r;
}
