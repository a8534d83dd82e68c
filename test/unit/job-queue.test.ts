import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DependencyGraph, type DependencyEdge } from '../../src/core/dependency-graph';
import {
  JobQueue,
  type JobClock,
  type JobEvent,
  type RunOutcome,
  type Scheduler,
  type UnitRunner,
} from '../../src/core/job-queue';
import type { JobResult } from '../../src/core/job-types';
import type { JobRequest, UnitView } from '../../src/core/transaction';
import type { DependencyKind } from '../../src/units/config-types';
import type { ActiveState } from '../../src/units/unit-type';

/** Timers on virtual time: nothing fires until `advance`. */
class VirtualClock implements JobClock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers)
        if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/** A tick runs only when the test says so. */
class ManualScheduler implements Scheduler {
  private queue: (() => void)[] = [];
  schedule(fn: () => void): void {
    this.queue.push(fn);
  }
  get pending(): number {
    return this.queue.length;
  }
  settle(): void {
    for (let i = 0; this.queue.length > 0; i++) {
      assert.ok(i < 1000, 'scheduler does not settle');
      (this.queue.shift() as () => void)();
    }
  }
}

type Deps = Partial<Record<DependencyKind, string[]>>;

/** A manager stand-in: unit states, a runner that records calls and moves states, the queue. */
class Harness {
  readonly clock = new VirtualClock();
  readonly scheduler = new ManualScheduler();
  readonly states = new Map<string, UnitView>();
  readonly calls: string[] = [];
  readonly events: JobEvent[] = [];
  /** 'verb unit' → what the runner answers; default 'done'. */
  readonly behaviour = new Map<string, RunOutcome>();
  /** 'verb unit' for which the runner throws. */
  readonly throws = new Set<string>();
  readonly queue: JobQueue;

  constructor(
    units: Record<string, Deps>,
    opts: { extra?: DependencyEdge[]; states?: Record<string, Partial<UnitView>> } = {},
  ) {
    for (const name of Object.keys(units)) {
      this.states.set(name, {
        active: 'inactive',
        loadState: 'loaded',
        canReload: true,
        ...opts.states?.[name],
      });
    }
    const graph = DependencyGraph.build(
      Object.entries(units).map(([name, dependencies]) => ({ name, dependencies })),
      opts.extra ?? [],
    );
    const step = (verb: string, unit: string, done: ActiveState, busy: ActiveState): RunOutcome => {
      this.calls.push(`${verb} ${unit}`);
      if (this.throws.has(`${verb} ${unit}`)) throw new Error('boom');
      const outcome = this.behaviour.get(`${verb} ${unit}`) ?? 'done';
      if (outcome === 'done') this.setActive(unit, done);
      else if (outcome === 'pending') this.setActive(unit, busy);
      else if (verb === 'start') this.setActive(unit, 'failed');
      return outcome;
    };
    const runner: UnitRunner = {
      start: (u) => step('start', u, 'active', 'activating'),
      stop: (u) => step('stop', u, 'inactive', 'deactivating'),
      reload: (u) => step('reload', u, 'active', 'reloading'),
    };
    this.queue = new JobQueue({
      graph,
      units: (u) => this.states.get(u),
      runner,
      scheduler: this.scheduler,
      clock: this.clock,
      onEvent: (e) => this.events.push(e),
    });
  }

  /** Change a unit's state without telling the queue (what a runner does inside a step). */
  setActive(unit: string, active: ActiveState): void {
    const v = this.states.get(unit);
    if (v !== undefined) v.active = active;
  }

  /** A unit changes state on its own or finishes a pending step: tell the queue, as the manager would. */
  change(unit: string, to: ActiveState, complete?: JobResult): void {
    const from = this.states.get(unit)?.active ?? 'inactive';
    this.setActive(unit, to);
    if (complete !== undefined) assert.ok(this.queue.complete(unit, complete), `a running job for ${unit}`);
    this.queue.unitChanged(unit, from, to);
  }

  enqueue(unit: string, type: JobRequest['type'] = 'start', mode: JobRequest['mode'] = 'replace') {
    const r = this.queue.enqueue({ unit, type, mode });
    assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
    return r;
  }

  settle(): void {
    this.scheduler.settle();
  }

  results(): string[] {
    return this.events.flatMap((e) =>
      e.kind === 'finished' ? [`${e.job.unit}/${e.job.type}=${e.result}`] : [],
    );
  }

  jobs(): string[] {
    return this.queue.list().map((j) => `${j.unit}/${j.type}:${j.state}`);
  }
}

test('job queue: starts follow After=; a job waits while the job it is ordered after runs', () => {
  const h = new Harness({
    'a.service': { Requires: ['b.service'], After: ['b.service'] },
    'b.service': { Requires: ['c.service'], After: ['c.service'] },
    'c.service': {},
  });
  h.behaviour.set('start c.service', 'pending');
  h.enqueue('a.service');
  assert.deepEqual(h.calls, [], 'nothing runs inside enqueue');
  h.settle();
  assert.deepEqual(h.calls, ['start c.service']);
  assert.deepEqual(h.jobs(), [
    'a.service/start:waiting',
    'b.service/start:waiting',
    'c.service/start:running',
  ]);
  h.change('c.service', 'active', 'done');
  assert.deepEqual(h.calls, ['start c.service'], 'complete() only enqueues');
  h.settle();
  assert.deepEqual(h.calls, ['start c.service', 'start b.service', 'start a.service']);
  assert.deepEqual(h.jobs(), []);
  assert.deepEqual(h.results(), ['c.service/start=done', 'b.service/start=done', 'a.service/start=done']);
});

test('job queue: stops run in the reverse order', () => {
  const units = {
    'a.service': { BindsTo: ['b.service'], After: ['b.service'] },
    'b.service': { BindsTo: ['c.service'], After: ['c.service'] },
    'c.service': {},
  };
  const active = { active: 'active' as const };
  const h = new Harness(units, { states: { 'a.service': active, 'b.service': active, 'c.service': active } });
  h.behaviour.set('stop a.service', 'pending');
  h.enqueue('c.service', 'stop');
  h.settle();
  assert.deepEqual(h.calls, ['stop a.service']);
  h.change('a.service', 'inactive', 'done');
  h.settle();
  assert.deepEqual(h.calls, ['stop a.service', 'stop b.service', 'stop c.service']);
});

test('job queue: a stop runs before a start ordered after it', () => {
  // b Conflicts a, b After a: a must be stopped before b starts.
  const h = new Harness(
    { 'a.service': {}, 'b.service': { Conflicts: ['a.service'], After: ['a.service'] } },
    { states: { 'a.service': { active: 'active' } } },
  );
  h.behaviour.set('stop a.service', 'pending');
  h.enqueue('b.service');
  h.settle();
  assert.deepEqual(h.calls, ['stop a.service']);
  h.change('a.service', 'inactive', 'done');
  h.settle();
  assert.deepEqual(h.calls, ['stop a.service', 'start b.service']);
});

test('job queue: a failed requirement fails the jobs that need it with dependency; a wanted one does not', () => {
  const h = new Harness({
    'a.service': { Requires: ['b.service'], Wants: ['w.service'], After: ['b.service', 'w.service'] },
    'b.service': {},
    'w.service': {},
    'c.service': { BindsTo: ['b.service'], After: ['b.service'] },
  });
  h.behaviour.set('start w.service', { failed: 'failed' });
  h.enqueue('a.service');
  h.enqueue('c.service');
  h.behaviour.set('start b.service', 'pending');
  h.settle();
  assert.deepEqual(h.calls.sort(), ['start b.service', 'start w.service']);
  h.change('b.service', 'failed', 'failed');
  h.settle();
  assert.deepEqual(h.results().sort(), [
    'a.service/start=dependency',
    'b.service/start=failed',
    'c.service/start=dependency',
    'w.service/start=failed',
  ]);
  assert.ok(!h.calls.includes('start a.service'));

  // Wants= alone: the failure does not reach the anchor.
  const h2 = new Harness({ 'a.service': { Wants: ['w.service'], After: ['w.service'] }, 'w.service': {} });
  h2.behaviour.set('start w.service', { failed: 'failed' });
  h2.enqueue('a.service');
  h2.settle();
  assert.deepEqual(h2.results(), ['w.service/start=failed', 'a.service/start=done']);
});

test('job queue: Requisite= on an inactive unit fails the start with dependency', () => {
  const h = new Harness({ 'a.service': { Requisite: ['b.service'], After: ['b.service'] }, 'b.service': {} });
  h.enqueue('a.service');
  h.settle();
  assert.deepEqual(h.results(), ['b.service/verify-active=skipped', 'a.service/start=dependency']);
  assert.deepEqual(h.calls, [], 'b is not started, a never runs');
});

test('job queue: OnFailure= and OnSuccess= units are started with the job mode', () => {
  const h = new Harness(
    {
      'a.service': { OnFailure: ['alert.service'], OnSuccess: ['next.service'] },
      'alert.service': {},
      'next.service': {},
    },
    { states: { 'a.service': { onFailureJobMode: 'replace-irreversibly' } } },
  );
  h.change('a.service', 'activating');
  h.change('a.service', 'failed');
  h.settle();
  const auto = h.events.filter((e) => e.kind === 'auto');
  assert.deepEqual(
    auto.map((e) => e.kind === 'auto' && [e.reason, e.by, e.request.unit, e.request.mode]),
    [['OnFailure', 'a.service', 'alert.service', 'replace-irreversibly']],
  );
  assert.ok(h.calls.includes('start alert.service'));

  h.change('a.service', 'activating');
  h.change('a.service', 'inactive');
  h.settle();
  assert.ok(h.calls.includes('start next.service'));
});

test('job queue: a job that fails with dependency triggers OnFailure= itself', () => {
  const h = new Harness({
    'a.service': { Requires: ['b.service'], After: ['b.service'], OnFailure: ['alert.service'] },
    'b.service': {},
    'alert.service': {},
  });
  h.behaviour.set('start b.service', { failed: 'failed' });
  h.enqueue('a.service');
  h.settle();
  assert.deepEqual(h.calls, ['start b.service', 'start alert.service']);
});

test('job queue: JobTimeoutSec= on virtual time; the unit is left alone, dependents fail', () => {
  const h = new Harness(
    {
      'a.service': { Requires: ['dev-sdb.device'], After: ['dev-sdb.device'], OnFailure: ['alert.service'] },
      'dev-sdb.device': {},
      'alert.service': {},
    },
    { states: { 'dev-sdb.device': { canStart: false, jobTimeoutMs: 90_000 } } },
  );
  h.behaviour.set('start dev-sdb.device', 'pending');
  h.enqueue('a.service');
  h.settle();
  h.clock.advance(89_999);
  assert.deepEqual(h.results(), []);
  h.clock.advance(1);
  assert.deepEqual(h.results(), ['dev-sdb.device/start=timeout', 'a.service/start=dependency']);
  assert.ok(!h.calls.includes('stop dev-sdb.device'), 'the unit is not stopped');
  h.settle();
  assert.ok(h.calls.includes('start alert.service'), 'OnFailure= of a (dependency)');
  assert.equal(h.queue.complete('dev-sdb.device', 'done'), false, 'a late completion is ignored');
});

test('job queue: JobRunningTimeoutSec= counts from when the job runs', () => {
  const h = new Harness(
    { 'a.service': { After: ['b.service'], Wants: ['b.service'] }, 'b.service': {} },
    { states: { 'a.service': { jobRunningTimeoutMs: 1000 } } },
  );
  h.behaviour.set('start b.service', 'pending');
  h.behaviour.set('start a.service', 'pending');
  h.enqueue('a.service');
  h.settle();
  h.clock.advance(5000);
  assert.deepEqual(h.results(), [], 'a waited 5 s without running: no timeout');
  h.change('b.service', 'active', 'done');
  h.settle();
  h.clock.advance(999);
  assert.deepEqual(h.results(), ['b.service/start=done']);
  h.clock.advance(1);
  assert.deepEqual(h.results(), ['b.service/start=done', 'a.service/start=timeout']);
});

test('job queue: merging with installed jobs', () => {
  const h = new Harness({ 'a.service': {}, 'b.service': { After: ['c.service'] }, 'c.service': {} });
  h.behaviour.set('start a.service', 'pending');
  const first = h.enqueue('a.service');
  h.settle();
  // Same request again while running: the running job covers it.
  const again = h.enqueue('a.service');
  assert.equal(again.ok && again.jobId, first.ok && first.jobId);
  // A reload asked for while the start runs: merged, run after the start.
  h.enqueue('a.service', 'reload');
  h.settle();
  assert.deepEqual(h.calls, ['start a.service']);
  h.change('a.service', 'active', 'done');
  h.settle();
  assert.deepEqual(h.calls, ['start a.service', 'reload a.service']);
  assert.deepEqual(h.results(), ['a.service/reload=done']);

  // A waiting start and a reload merge to reload-or-start, collapsed to start (b is inactive).
  h.behaviour.set('start c.service', 'pending');
  h.enqueue('c.service');
  const b1 = h.enqueue('b.service');
  h.settle();
  const b2 = h.enqueue('b.service', 'reload');
  assert.equal(b2.ok && b2.jobId, b1.ok && b1.jobId);
  assert.deepEqual(h.jobs(), ['c.service/start:running', 'b.service/start:waiting']);
  assert.ok(h.events.some((e) => e.kind === 'merged' && e.job.unit === 'b.service' && e.with === 'reload'));

  // A stop for c while its start runs: fail refuses, replace cancels the start.
  const s = h.queue.enqueue({ unit: 'c.service', type: 'stop', mode: 'fail' });
  assert.equal(!s.ok && s.error.code, 'ERR_JOB_CONFLICT');
  h.enqueue('c.service', 'stop', 'replace');
  assert.ok(h.results().includes('c.service/start=canceled'));
  assert.deepEqual(h.jobs(), ['b.service/start:waiting', 'c.service/stop:waiting']);
  h.behaviour.set('stop c.service', 'done');
  h.settle();
  assert.deepEqual(
    h.calls.slice(-2),
    ['stop c.service', 'start b.service'],
    'stop before the start ordered after it',
  );
});

test('job queue: restart runs stop, then start', () => {
  const h = new Harness({ 'a.service': {} }, { states: { 'a.service': { active: 'active' } } });
  h.enqueue('a.service', 'restart');
  h.settle();
  assert.deepEqual(h.calls, ['stop a.service', 'start a.service']);
  assert.deepEqual(h.results(), ['a.service/start=done']);
});

test('job queue: cancel fails the jobs that need the canceled one', () => {
  const h = new Harness({ 'a.service': { Requires: ['b.service'], After: ['b.service'] }, 'b.service': {} });
  h.behaviour.set('start b.service', 'pending');
  h.enqueue('a.service');
  h.settle();
  const b = h.queue.jobFor('b.service');
  assert.ok(b !== undefined);
  assert.equal(h.queue.cancel(b.id), true);
  assert.deepEqual(h.results(), ['b.service/start=canceled', 'a.service/start=dependency']);
  assert.equal(h.queue.cancel(b.id), false);
  assert.equal(h.queue.cancel(999), false);
});

test('job queue: list-jobs rows and whenFinished', async () => {
  const h = new Harness({ 'a.service': { Wants: ['b.service'], After: ['b.service'] }, 'b.service': {} });
  h.behaviour.set('start b.service', 'pending');
  const r = h.enqueue('a.service');
  h.settle();
  assert.deepEqual(
    h.queue.list().map(({ unit, type, state }) => ({ unit, type, state })),
    [
      { unit: 'a.service', type: 'start', state: 'waiting' },
      { unit: 'b.service', type: 'start', state: 'running' },
    ],
  );
  assert.ok(r.ok);
  const done = h.queue.whenFinished(r.jobId);
  h.change('b.service', 'active', 'done');
  h.settle();
  assert.equal(await done, 'done');
});

test('job queue: a unit bound to a device that goes away is stopped', () => {
  const h = new Harness(
    { 'backup.service': { BindsTo: ['dev-sdb.device'], After: ['dev-sdb.device'] }, 'dev-sdb.device': {} },
    { states: { 'backup.service': { active: 'active' }, 'dev-sdb.device': { active: 'active' } } },
  );
  h.change('dev-sdb.device', 'inactive');
  h.settle();
  assert.deepEqual(h.calls, ['stop backup.service']);
});

test('job queue: a device that appears starts what it wants (SYSTEMD_WANTS)', () => {
  const h = new Harness(
    { 'dev-sdb.device': {}, 'backup.service': { After: ['dev-sdb.device'] } },
    { extra: [{ from: 'dev-sdb.device', kind: 'Wants', to: 'backup.service' }] },
  );
  h.change('dev-sdb.device', 'active');
  h.settle();
  assert.deepEqual(h.calls, ['start backup.service']);
});

test('job queue: StopWhenUnneeded= unit stops once nothing that pulled it in is up', () => {
  const h = new Harness(
    { 'a.service': { Requires: ['helper.service'] }, 'helper.service': {} },
    {
      states: {
        'a.service': { active: 'active' },
        'helper.service': { active: 'active', stopWhenUnneeded: true },
      },
    },
  );
  h.change('a.service', 'inactive');
  h.settle();
  assert.deepEqual(h.calls, ['stop helper.service']);
});

test('job queue: Upholds= restarts the upheld unit when it goes down', () => {
  const h = new Harness(
    { 'a.service': { Upholds: ['u.service'] }, 'u.service': {} },
    { states: { 'a.service': { active: 'active' }, 'u.service': { active: 'active' } } },
  );
  h.change('u.service', 'failed');
  h.settle();
  assert.deepEqual(h.calls, ['start u.service']);
});

test('job queue: isolate cancels queued jobs outside the transaction', () => {
  const h = new Harness(
    { 'rescue.target': {}, 'x.service': {} },
    { states: { 'rescue.target': { allowIsolate: true } } },
  );
  h.behaviour.set('start x.service', 'pending');
  h.enqueue('x.service');
  h.settle();
  h.enqueue('rescue.target', 'start', 'isolate');
  // x is activating with a job: the job is canceled and a stop replaces it.
  assert.ok(h.results().includes('x.service/start=canceled'));
  assert.deepEqual(h.jobs(), ['rescue.target/start:waiting', 'x.service/stop:waiting']);
});

test('job queue: a runner that throws fails the job, the queue keeps going', () => {
  const h = new Harness({ 'a.service': {}, 'b.service': {} });
  h.throws.add('start a.service');
  h.enqueue('a.service');
  h.enqueue('b.service');
  h.settle();
  assert.deepEqual(h.results().sort(), ['a.service/start=failed', 'b.service/start=done']);
  assert.ok(h.events.some((e) => e.kind === 'runner-error'));
});

test('job queue: a state change a job asked for is not followed retroactively, whatever the call order', () => {
  const h = new Harness({ 'a.service': { Wants: ['w.service'] }, 'w.service': {} });
  h.behaviour.set('start a.service', 'pending');
  h.behaviour.set('start w.service', { failed: 'failed' });
  h.enqueue('a.service');
  h.settle();
  // Straight from inactive to active (as a device does), complete() first, then unitChanged():
  // a's start job is gone but it asked for this change, so w is not started again.
  h.setActive('a.service', 'inactive');
  h.change('a.service', 'active', 'done');
  h.settle();
  assert.deepEqual(h.calls, ['start a.service', 'start w.service']);
  assert.ok(!h.events.some((e) => e.kind === 'auto'));
});

test('job queue: a requirement chain thousands deep fails down the chain without overflowing', () => {
  const n = 5000;
  const units: Record<string, Deps> = {};
  for (let i = 0; i < n; i++) {
    units[`u${i}.service`] =
      i + 1 < n ? { Requires: [`u${i + 1}.service`], After: [`u${i + 1}.service`] } : {};
  }
  const h = new Harness(units);
  h.behaviour.set(`start u${n - 1}.service`, { failed: 'failed' });
  h.enqueue('u0.service');
  h.settle();
  const results = h.results();
  assert.equal(results.length, n);
  assert.equal(results.filter((r) => r.endsWith('=dependency')).length, n - 1);
  assert.deepEqual(h.calls, [`start u${n - 1}.service`]);
});

test('job queue: runPromptly runs the scheduled tick at once; the scheduled one then does nothing', () => {
  const h = new Harness({ a: {} });
  h.enqueue('a');
  assert.deepEqual(h.calls, [], 'enqueue alone runs nothing');
  h.queue.runPromptly();
  assert.deepEqual(h.calls, ['start a'], 'the start ran inside runPromptly');
  assert.deepEqual(h.results(), ['a/start=done']);
  h.settle(); // the tick that was scheduled before
  assert.deepEqual(h.calls, ['start a'], 'no second run');
  // Nothing scheduled: nothing to do.
  h.queue.runPromptly();
  assert.deepEqual(h.calls, ['start a']);
});

test('job queue: runPromptly inside a tick leaves the new job to that tick (no re-entry)', () => {
  const h = new Harness({ a: {}, b: {} });
  // Starting a enqueues b and asks for it promptly, as a job's run can trigger a path unit.
  const order: string[] = [];
  h.behaviour.set('start a', 'done');
  const queue = h.queue;
  const enqueueB = (): void => {
    order.push('a runs');
    const r = queue.enqueue({ unit: 'b', type: 'start', mode: 'replace' });
    assert.ok(r.ok);
    queue.runPromptly();
    order.push('runPromptly returned');
  };
  (queue as unknown as { runner: UnitRunner }).runner = {
    start: (u) => {
      if (u === 'a') enqueueB();
      else order.push(`${u} runs`);
      h.setActive(u, 'active');
      return 'done';
    },
    stop: () => 'done',
    reload: () => 'done',
  };
  h.enqueue('a');
  h.settle();
  assert.deepEqual(order, ['a runs', 'runPromptly returned', 'b runs'], 'b ran in the same tick, after a');
  assert.deepEqual(h.results().sort(), ['a/start=done', 'b/start=done']);
});

// ---- across a re-exec: serialize() in the old image, restore() into the new one's empty queue --

/** A second queue over the same units, as the next image builds it. */
function nextImage(h: Harness, units: Record<string, Deps>): Harness {
  const n = new Harness(units);
  for (const [name, view] of h.states) n.states.set(name, { ...view });
  return n;
}

test('job queue restore: the running start and the job waiting for it go on; ids are kept', () => {
  const units = { 'a.service': { Requires: ['b.service'], After: ['b.service'] }, 'b.service': {} };
  const h = new Harness(units);
  h.behaviour.set('start b.service', 'pending');
  const { jobId } = h.enqueue('a.service') as { jobId: number };
  h.settle();
  const saved = h.queue.serialize();
  assert.deepEqual(
    saved.map((j) => `${j.unit}/${j.type}:${j.state}`),
    ['a.service/start:waiting', 'b.service/start:running'],
  );
  const n = nextImage(h, units);
  const resumed: string[] = [];
  const r = n.queue.restore(saved, (unit, type) => {
    resumed.push(`${type} ${unit}`);
    return true;
  });
  assert.deepEqual(r, { restored: 2, ended: 0 });
  assert.deepEqual(resumed, ['start b.service']);
  n.settle();
  assert.deepEqual(n.calls, [], 'the running step is not run again; a waits');
  assert.deepEqual(n.jobs(), ['a.service/start:waiting', 'b.service/start:running']);
  assert.equal(n.queue.get(jobId)?.unit, 'a.service');
  n.change('b.service', 'active', 'done');
  n.settle();
  assert.deepEqual(n.calls, ['start a.service']);
  assert.deepEqual(n.results(), ['b.service/start=done', 'a.service/start=done']);
  // New jobs get ids after the restored ones.
  const again = n.enqueue('b.service', 'stop') as { jobId: number };
  assert.ok(again.jobId > jobId);
});

test('job queue restore: a step that ended while no daemon ran ends its job now, by the unit state', () => {
  const units = { 'a.service': {}, 'b.service': {}, 'c.service': {} };
  const h = new Harness(units);
  for (const u of ['a.service', 'b.service']) h.behaviour.set(`start ${u}`, 'pending');
  h.setActive('c.service', 'active');
  h.behaviour.set('stop c.service', 'pending');
  h.enqueue('a.service');
  h.enqueue('b.service');
  h.enqueue('c.service', 'stop');
  h.settle();
  const saved = h.queue.serialize();
  const n = nextImage(h, units);
  n.setActive('a.service', 'active'); // came up meanwhile
  n.setActive('b.service', 'failed'); // failed meanwhile
  n.setActive('c.service', 'inactive'); // stopped meanwhile
  const r = n.queue.restore(saved, () => false);
  assert.deepEqual(r, { restored: 3, ended: 3 });
  n.settle();
  assert.deepEqual(n.results().sort(), [
    'a.service/start=done',
    'b.service/start=failed',
    'c.service/stop=done',
  ]);
  assert.deepEqual(n.jobs(), []);
});

test('job queue restore: a restart caught in its stop step starts the unit once the stop is over', () => {
  const units = { 'a.service': {} };
  const h = new Harness(units, { states: { 'a.service': { active: 'active' } } });
  h.behaviour.set('stop a.service', 'pending');
  h.enqueue('a.service', 'restart');
  h.settle();
  const saved = h.queue.serialize();
  assert.equal(saved[0]?.runType, 'restart');
  const n = nextImage(h, units);
  n.queue.restore(saved, (_unit, type) => type === 'stop');
  n.change('a.service', 'inactive', 'done');
  n.settle();
  assert.deepEqual(n.calls, ['start a.service']);
  // After its stop step a restart goes on as a start, re-exec or not.
  assert.deepEqual(n.results(), ['a.service/start=done']);
});
