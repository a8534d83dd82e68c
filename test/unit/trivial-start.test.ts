// The trivial start (a start whose dependencies are satisfied already, installed without building
// a transaction) against the full transaction: wherever it applies it must give exactly what
// buildTransaction gives, and a queue with it must behave as a queue without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DependencyGraph } from '../../src/core/dependency-graph';
import {
  JobQueue,
  type JobEvent,
  type RunOutcome,
  type Scheduler,
  type UnitRunner,
} from '../../src/core/job-queue';
import type { CollapsedJobType, JobType } from '../../src/core/job-types';
import {
  buildTransaction,
  trivialStartTransaction,
  type InstalledJobView,
  type JobRequest,
  type UnitView,
} from '../../src/core/transaction';
import type { DependencyKind } from '../../src/units/config-types';
import type { ActiveState, LoadState } from '../../src/units/unit-type';
import { Prng } from '../helpers/prng';

type Deps = Partial<Record<DependencyKind, string[]>>;

const ACTIVE_STATES: ActiveState[] = [
  'active',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'reloading',
];
const EDGE_KINDS: DependencyKind[] = [
  'Requires',
  'Wants',
  'BindsTo',
  'Requisite',
  'Conflicts',
  'Upholds',
  'PartOf',
  'After',
  'Before',
];
const JOB_TYPES: CollapsedJobType[] = ['start', 'stop', 'reload', 'restart', 'verify-active'];

interface World {
  graph: DependencyGraph;
  views: Map<string, UnitView>;
  installed: Map<string, InstalledJobView>;
}

/** A random small world, biased towards what a trivial start needs (active deps, few jobs). */
function randomWorld(rng: Prng): World {
  const n = 2 + rng.int(5);
  const names = Array.from({ length: n }, (_, i) => `u${i}.service`);
  const records = names.map((name) => {
    const dependencies: Deps = {};
    const edges = rng.int(4);
    for (let e = 0; e < edges; e++) {
      const kind = rng.pick(EDGE_KINDS);
      const to = rng.int(8) === 0 ? 'missing.service' : rng.pick(names);
      if (to === name) continue;
      (dependencies[kind] ??= []).push(to);
    }
    return { name, dependencies };
  });
  const views = new Map<string, UnitView>();
  for (const name of names) {
    const loadState: LoadState =
      rng.int(10) === 0 ? rng.pick(['masked', 'error', 'bad-setting'] as const) : 'loaded';
    views.set(name, {
      active: rng.int(2) === 0 ? 'active' : rng.pick(ACTIVE_STATES),
      loadState,
      perpetual: rng.int(12) === 0,
      refuseManualStart: rng.int(12) === 0,
    });
  }
  const installed = new Map<string, InstalledJobView>();
  for (const name of names) {
    if (rng.int(6) !== 0) continue;
    installed.set(name, {
      type: rng.pick(JOB_TYPES),
      state: rng.int(2) === 0 ? 'waiting' : 'running',
      irreversible: rng.int(5) === 0,
      ignoreOrder: false,
    });
  }
  return { graph: DependencyGraph.build(records), views, installed };
}

test('trivial start: wherever it applies, buildTransaction gives the same jobs and no diagnostics', () => {
  let applied = 0;
  let cases = 0;
  for (let seed = 1; seed <= 20_000; seed++) {
    const rng = new Prng(seed);
    const w = randomWorld(rng);
    const units = w.graph.units().filter((u) => w.views.has(u));
    const request: JobRequest = {
      unit: rng.pick(units),
      type: rng.pick(['start', 'start', 'reload-or-start', 'restart'] as JobType[]),
      mode: rng.pick(['replace', 'fail', 'replace-irreversibly', 'isolate', 'ignore-dependencies'] as const),
      manual: rng.int(2) === 0,
    };
    const state = (u: string): UnitView | undefined => w.views.get(u);
    const installed = (u: string): InstalledJobView | undefined => w.installed.get(u);
    const trivial = trivialStartTransaction(w.graph, request, state, installed);
    cases++;
    if (trivial === undefined) continue;
    applied++;
    const full = buildTransaction(w.graph, request, state, { installed });
    const where = `seed ${seed}: ${request.type} ${request.unit} (${request.mode})`;
    assert.ok(full.ok, `${where}: the full transaction fails: ${full.ok ? '' : full.error.message}`);
    assert.deepEqual(full.diagnostics, [], `${where}: the full transaction has diagnostics`);
    assert.deepEqual([...trivial.jobs], [...full.jobs], where);
    assert.equal(trivial.anchor, full.anchor, where);
  }
  // The generator must exercise both outcomes.
  assert.ok(applied > cases / 20, `applied in ${applied} of ${cases} cases`);
  assert.ok(applied < cases / 2, `applied in ${applied} of ${cases} cases`);
});

/** A queue over fixed units whose runner records calls and moves states, as in job-queue.test.ts. */
class Harness {
  readonly states = new Map<string, UnitView>();
  readonly calls: string[] = [];
  readonly events: string[] = [];
  readonly behaviour = new Map<string, RunOutcome>();
  readonly queue: JobQueue;
  readonly graph: DependencyGraph;
  private ticks: (() => void)[] = [];

  constructor(
    units: Record<string, Deps>,
    states: Record<string, Partial<UnitView>>,
    trivialStarts: boolean,
  ) {
    for (const name of Object.keys(units))
      this.states.set(name, { active: 'inactive', loadState: 'loaded', ...states[name] });
    this.graph = DependencyGraph.build(
      Object.entries(units).map(([name, dependencies]) => ({ name, dependencies })),
    );
    const step = (verb: string, unit: string, done: ActiveState, busy: ActiveState): RunOutcome => {
      this.calls.push(`${verb} ${unit}`);
      const outcome = this.behaviour.get(`${verb} ${unit}`) ?? 'done';
      const v = this.states.get(unit);
      if (v !== undefined) v.active = outcome === 'done' ? done : outcome === 'pending' ? busy : 'failed';
      return outcome;
    };
    const runner: UnitRunner = {
      start: (u) => step('start', u, 'active', 'activating'),
      stop: (u) => step('stop', u, 'inactive', 'deactivating'),
      reload: (u) => step('reload', u, 'active', 'reloading'),
    };
    const scheduler: Scheduler = { schedule: (fn) => void this.ticks.push(fn) };
    this.queue = new JobQueue({
      graph: this.graph,
      units: (u) => this.states.get(u),
      runner,
      scheduler,
      trivialStarts,
      onEvent: (e: JobEvent) => {
        if (e.kind === 'finished') this.events.push(`finished ${e.job.unit}/${e.job.type}=${e.result}`);
        else if (e.kind === 'merged') this.events.push(`merged ${e.job.unit}/${e.job.type} with ${e.with}`);
        else if (e.kind === 'auto') this.events.push(`auto ${e.reason} ${e.request.type} ${e.request.unit}`);
        else if (e.kind !== 'runner-error')
          this.events.push(`${e.kind} ${e.job.unit}/${e.job.type}#${e.job.id}`);
      },
    });
  }

  /** Would the queue take the trivial path for this request now? */
  isTrivial(request: JobRequest): boolean {
    const installed = (u: string): InstalledJobView | undefined => {
      const j = this.queue.jobFor(u);
      return j === undefined
        ? undefined
        : { type: j.type, state: j.state, irreversible: false, ignoreOrder: false };
    };
    return trivialStartTransaction(this.graph, request, (u) => this.states.get(u), installed) !== undefined;
  }

  enqueue(unit: string, type: JobType = 'start', mode: JobRequest['mode'] = 'replace'): string {
    const r = this.queue.enqueue({ unit, type, mode });
    return r.ok ? `ok #${r.jobId} ${r.jobs.map((j) => `${j.unit}/${j.type}`).join(',')}` : `${r.error.code}`;
  }

  change(unit: string, to: ActiveState, complete?: 'done' | 'failed'): void {
    const v = this.states.get(unit) as UnitView;
    const from = v.active;
    v.active = to;
    if (complete !== undefined) this.queue.complete(unit, complete);
    this.queue.unitChanged(unit, from, to);
  }

  settle(): void {
    for (let i = 0; this.ticks.length > 0; i++) {
      assert.ok(i < 1000, 'does not settle');
      (this.ticks.shift() as () => void)();
    }
  }

  snapshot(): { calls: string[]; events: string[]; states: string[]; jobs: string[] } {
    return {
      calls: [...this.calls],
      events: [...this.events],
      states: [...this.states].map(([u, v]) => `${u}=${v.active}`),
      jobs: this.queue.list().map((j) => `${j.unit}/${j.type}:${j.state}`),
    };
  }
}

interface Case {
  description: string;
  units: Record<string, Deps>;
  states?: Record<string, Partial<UnitView>>;
  /** Runs before the request (other jobs, state changes); returns what it saw. */
  setup?: (h: Harness) => string[];
  request: JobRequest;
  /** Whether the request takes the trivial path, in the world `setup` left. */
  trivial: boolean;
  /** Runs after the request; returns what it saw. */
  after?: (h: Harness) => string[];
}

const startOf = (unit: string, mode: JobRequest['mode'] = 'replace'): JobRequest => ({
  unit,
  type: 'start',
  mode,
});
const settled = (h: Harness): string[] => {
  h.settle();
  return [];
};
/** setup: the unit's start step answers 'pending' (it completes when `finishes` says). */
const startStaysPending =
  (unit: string) =>
  (h: Harness): string[] => {
    h.behaviour.set(`start ${unit}`, 'pending');
    return [];
  };
/** after: the queue runs, then the unit's pending step ends in `to` with `result`. */
const finishes =
  (unit: string, to: 'active' | 'failed' = 'active', result: 'done' | 'failed' = 'done') =>
  (h: Harness): string[] => {
    h.settle();
    h.change(unit, to, result);
    h.settle();
    return [];
  };

const cases: Case[] = [
  {
    description: 'every requirement and wanted unit active: the start alone, same ordering and results',
    units: {
      'job.service': { Requires: ['a.service'], Wants: ['b.service'], After: ['a.service', 'b.service'] },
      'a.service': { Wants: ['c.service'] },
      'b.service': {},
      'c.service': {},
      'other.service': { Conflicts: ['job.service'] },
    },
    states: {
      'a.service': { active: 'active' },
      'b.service': { active: 'active' },
      'c.service': { active: 'active' },
    },
    request: startOf('job.service'),
    trivial: true,
    after: settled,
  },
  {
    description: 'no dependencies at all (a path-triggered oneshot), a step that completes later',
    units: { 'job.service': {}, 'job.path': { Before: ['job.service'] } },
    states: { 'job.path': { active: 'active' } },
    setup: startStaysPending('job.service'),
    request: startOf('job.service'),
    trivial: true,
    after: finishes('job.service'),
  },
  {
    description: 'mode fail and replace-irreversibly',
    units: { 'job.service': { Wants: ['a.service'] }, 'a.service': {} },
    states: { 'a.service': { active: 'active' } },
    request: startOf('job.service', 'replace-irreversibly'),
    trivial: true,
    after: (h) => {
      const out = [h.enqueue('job.service', 'stop')];
      h.settle();
      out.push(h.enqueue('job.service', 'start', 'fail'));
      h.settle();
      return out;
    },
  },
  {
    description: 'a requirement is inactive: falls back, the requirement starts first',
    units: { 'job.service': { Requires: ['a.service'], After: ['a.service'] }, 'a.service': {} },
    setup: startStaysPending('a.service'),
    request: startOf('job.service'),
    trivial: false,
    after: finishes('a.service'),
  },
  {
    description: 'a requirement of an active requirement is not loaded: falls back, the start fails',
    units: { 'job.service': { Requires: ['a.service'] }, 'a.service': { Requires: ['gone.service'] } },
    states: { 'a.service': { active: 'active' } },
    request: startOf('job.service'),
    trivial: false,
    after: settled,
  },
  {
    description: 'a conflicting job is installed (a stop of the unit): falls back, replaced as before',
    units: { 'job.service': {}, 'b.service': { After: ['job.service'] } },
    setup: (h) => {
      h.change('job.service', 'active');
      h.behaviour.set('stop job.service', 'pending');
      const out = [h.enqueue('job.service', 'stop')];
      h.settle();
      return out;
    },
    request: startOf('job.service'),
    trivial: false,
    after: (h) => {
      const out = [h.enqueue('job.service', 'start', 'fail')];
      h.change('job.service', 'inactive', 'done');
      h.settle();
      return out;
    },
  },
  {
    description: 'a job is already queued for the unit: merged as before',
    units: { 'job.service': { After: ['a.service'] }, 'a.service': {} },
    setup: (h) => {
      h.behaviour.set('start a.service', 'pending');
      const out = [h.enqueue('a.service'), h.enqueue('job.service', 'verify-active')];
      h.settle();
      return out;
    },
    request: startOf('job.service'),
    trivial: false,
    after: (h) => {
      h.change('a.service', 'active', 'done');
      h.settle();
      return [];
    },
  },
  {
    description: 'a job runs on a unit the start is ordered after: falls back, the start waits for it',
    units: { 'job.service': { After: ['a.service'] }, 'a.service': {} },
    setup: (h) => {
      h.behaviour.set('start a.service', 'pending');
      const out = [h.enqueue('a.service')];
      h.settle();
      return out;
    },
    request: startOf('job.service'),
    trivial: false,
    after: finishes('a.service'),
  },
  {
    description: 'the start fails: the job result and OnFailure= as before',
    units: { 'job.service': { OnFailure: ['alert.service'] }, 'alert.service': {} },
    setup: startStaysPending('job.service'),
    request: startOf('job.service'),
    trivial: true,
    after: finishes('job.service', 'failed', 'failed'),
  },
];

for (const c of cases) {
  test(`trivial start against the full transaction: ${c.description}`, () => {
    const run = (h: Harness, check: boolean): string[] => {
      const out = c.setup?.(h) ?? [];
      if (check)
        assert.equal(h.isTrivial(c.request), c.trivial, c.trivial ? 'takes the trivial path' : 'falls back');
      const r = h.queue.enqueue(c.request);
      out.push(r.ok ? `ok #${r.jobId} ${r.jobs.map((j) => `${j.unit}/${j.type}`).join(',')}` : r.error.code);
      if (r.ok) out.push(...r.diagnostics.map((d) => d.code));
      out.push(...(c.after?.(h) ?? []));
      return out;
    };
    const fast = new Harness(c.units, c.states ?? {}, true);
    const full = new Harness(c.units, c.states ?? {}, false);
    assert.deepEqual(run(fast, true), run(full, false), 'enqueue answers');
    assert.deepEqual(fast.snapshot(), full.snapshot());
  });
}
