import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DependencyGraph, type DependencyEdge } from '../../src/core/dependency-graph';
import type { CollapsedJobType } from '../../src/core/job-types';
import {
  buildTransaction,
  type DiagnosticCode,
  type InstalledJobView,
  type JobRequest,
  type TransactionErrorCode,
  type UnitView,
} from '../../src/core/transaction';
import type { DependencyKind } from '../../src/units/config-types';
import type { JobResult } from '../../src/core/job-types';

interface Scenario {
  description: string;
  /** Loaded units and their [Unit] dependencies. Units named only as targets are not-found. */
  units: Record<string, Partial<Record<DependencyKind, string[]>>>;
  extra?: DependencyEdge[];
  aliases?: Record<string, string[]>;
  /** Overrides of the default view (loaded, inactive). */
  states?: Record<string, Partial<UnitView>>;
  installed?: Record<string, CollapsedJobType | InstalledJobView>;
  request: JobRequest;
  /** unit → job type, in transaction order (anchor first). */
  jobs?: Record<string, CollapsedJobType>;
  error?: { code: TransactionErrorCode; result?: JobResult; says?: RegExp; cycle?: string[] };
  diagnostics?: { code: DiagnosticCode; says?: RegExp; cycle?: string[] }[];
  check?: (jobs: Map<string, { ignoreOrder: boolean; matters: boolean; irreversible: boolean }>) => void;
}

const start = (unit: string, mode: JobRequest['mode'] = 'replace'): JobRequest => ({
  unit,
  type: 'start',
  mode,
});
const stop = (unit: string, mode: JobRequest['mode'] = 'replace'): JobRequest => ({
  unit,
  type: 'stop',
  mode,
});

const scenarios: Scenario[] = [
  {
    description: 'start pulls in Requires= and Wants=',
    units: {
      'a.service': { Requires: ['b.service'], Wants: ['c.service'] },
      'b.service': {},
      'c.service': {},
    },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'b.service': 'start', 'c.service': 'start' },
    check: (jobs) => {
      assert.equal(jobs.get('b.service')?.matters, true);
      assert.equal(jobs.get('c.service')?.matters, false);
    },
  },
  {
    description: 'Wants= on a unit that is not found: ignored, anchor goes ahead',
    units: { 'a.service': { Wants: ['missing.service'] } },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
    diagnostics: [{ code: 'WARN_JOB_DEPENDENCY', says: /missing\.service is not found/ }],
  },
  {
    description: 'Requires= on a unit that is not found: refused with result dependency, naming it',
    units: { 'a.service': { Requires: ['missing.service'] } },
    request: start('a.service'),
    error: {
      code: 'ERR_JOB_DEPENDENCY',
      result: 'dependency',
      says: /cannot start a\.service: it requires missing\.service, which is not found/,
    },
  },
  {
    description: 'Requires= on a masked unit',
    units: { 'a.service': { Requires: ['m.service'] }, 'm.service': {} },
    states: { 'm.service': { loadState: 'masked' } },
    request: start('a.service'),
    error: { code: 'ERR_JOB_DEPENDENCY', result: 'dependency', says: /m\.service, which is masked/ },
  },
  {
    description: 'Requires= chain ending in a bad-setting unit names the chain',
    units: {
      'a.service': { Requires: ['b.service'] },
      'b.service': { BindsTo: ['c.service'] },
      'c.service': {},
    },
    states: { 'c.service': { loadState: 'bad-setting' } },
    request: start('a.service'),
    error: {
      code: 'ERR_JOB_DEPENDENCY',
      says: /b\.service is bound to c\.service, which has a bad unit file setting \(a\.service → b\.service → c\.service\)/,
    },
  },
  {
    description:
      'Wants= a unit whose own requirement is missing: that unit is dropped, with its pulled-in jobs',
    units: {
      'a.service': { Wants: ['b.service'] },
      'b.service': { Requires: ['c.service', 'missing.service'] },
      'c.service': {},
    },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
    diagnostics: [{ code: 'WARN_JOB_DEPENDENCY', says: /b\.service/ }],
  },
  {
    description: 'the anchor unit itself not found',
    units: {},
    request: start('nope.service'),
    error: { code: 'ERR_JOB_NOT_LOADED', says: /nope\.service is not found/ },
  },
  {
    description: 'stop of a unit that is not found is fine (it may still run)',
    units: {},
    states: { 'gone.service': { loadState: 'not-found', active: 'active' } },
    request: stop('gone.service'),
    jobs: { 'gone.service': 'stop' },
  },
  {
    description: 'Requisite= on an inactive unit: verify-active job (fails the anchor when it runs)',
    units: { 'a.service': { Requisite: ['b.service'] }, 'b.service': {} },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'b.service': 'verify-active' },
  },
  {
    description: 'Requisite= on an active unit: nothing to verify',
    units: { 'a.service': { Requisite: ['b.service'] }, 'b.service': {} },
    states: { 'b.service': { active: 'active' } },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
  },
  {
    description: 'an active requirement needs no job; the anchor is kept even when active',
    units: { 'a.service': { Requires: ['b.service'] }, 'b.service': {} },
    states: { 'a.service': { active: 'active' }, 'b.service': { active: 'active' } },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
  },
  {
    description: 'stop propagates to RequiredBy= and BoundBy= (BindsTo=) units',
    units: {
      'b.service': {},
      'a.service': { Requires: ['b.service'] },
      'c.service': { BindsTo: ['b.service'] },
      'd.service': { BindsTo: ['c.service'] },
    },
    states: {
      'a.service': { active: 'active' },
      'b.service': { active: 'active' },
      'c.service': { active: 'active' },
      'd.service': { active: 'active' },
    },
    request: stop('b.service'),
    jobs: { 'b.service': 'stop', 'a.service': 'stop', 'c.service': 'stop', 'd.service': 'stop' },
  },
  {
    description: 'BindsTo= stop propagation from a device; Wants= does not propagate stop',
    units: {
      'dev-sdb.device': {},
      'backup.service': { BindsTo: ['dev-sdb.device'] },
      'other.service': { Wants: ['dev-sdb.device'] },
    },
    states: {
      'dev-sdb.device': { active: 'active' },
      'backup.service': { active: 'active' },
      'other.service': { active: 'active' },
    },
    request: stop('dev-sdb.device'),
    jobs: { 'dev-sdb.device': 'stop', 'backup.service': 'stop' },
  },
  {
    description: 'PartOf= restart propagation: active parts restart, inactive parts are left alone',
    units: {
      'group.target': {},
      'a.service': { PartOf: ['group.target'] },
      'b.service': { PartOf: ['group.target'] },
    },
    states: { 'group.target': { active: 'active' }, 'a.service': { active: 'active' } },
    request: { unit: 'group.target', type: 'restart', mode: 'replace' },
    jobs: { 'group.target': 'restart', 'a.service': 'restart' },
  },
  {
    description: 'PartOf= stop propagation',
    units: { 'group.target': {}, 'a.service': { PartOf: ['group.target'] } },
    states: { 'group.target': { active: 'active' }, 'a.service': { active: 'active' } },
    request: stop('group.target'),
    jobs: { 'group.target': 'stop', 'a.service': 'stop' },
  },
  {
    description: 'Conflicts=: starting a stops the unit it conflicts with',
    units: { 'a.service': { Conflicts: ['b.service'] }, 'b.service': {} },
    states: { 'b.service': { active: 'active' } },
    request: start('a.service', 'fail'),
    jobs: { 'a.service': 'start', 'b.service': 'stop' },
  },
  {
    description: 'Conflicts= the other way round (ConflictedBy): starting b stops a',
    units: { 'a.service': { Conflicts: ['b.service'] }, 'b.service': {} },
    states: { 'a.service': { active: 'active' } },
    request: start('b.service'),
    jobs: { 'b.service': 'start', 'a.service': 'stop' },
  },
  {
    description:
      'ConflictedBy in mode fail: the stop is not needed by the anchor and would stop a running unit',
    units: { 'a.service': { Conflicts: ['b.service'] }, 'b.service': {} },
    states: { 'a.service': { active: 'active' } },
    request: start('b.service', 'fail'),
    jobs: { 'b.service': 'start' },
    diagnostics: [{ code: 'INFO_JOB_DROPPED', says: /a\.service\/stop/ }],
  },
  {
    description: 'a unit that both Requires= and Conflicts= another: unmergeable, refused',
    units: { 'a.service': { Requires: ['b.service'], Conflicts: ['b.service'] }, 'b.service': {} },
    request: start('a.service'),
    error: { code: 'ERR_JOB_CONFLICT', says: /conflicting jobs start and stop for (a|b)\.service/ },
  },
  {
    description: 'a wanted unit conflicting with a required one: the wanted side gives way',
    units: {
      'a.service': { Requires: ['b.service'], Wants: ['c.service'] },
      'b.service': {},
      'c.service': { Conflicts: ['b.service'] },
    },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'b.service': 'start' },
  },
  {
    description: 'ordering cycle through a Wants= job: broken by dropping it, cycle named',
    units: {
      'a.service': { Wants: ['b.service'], After: ['b.service'] },
      'b.service': { After: ['a.service'] },
    },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
    diagnostics: [
      {
        code: 'WARN_JOB_CYCLE',
        says: /a\.service → b\.service → a\.service: dropped job b\.service\/start/,
        cycle: ['a.service', 'b.service', 'a.service'],
      },
    ],
  },
  {
    description: 'three-unit ordering cycle: only the wanted unit is dropped',
    units: {
      'a.service': { Requires: ['b.service'], After: ['b.service'] },
      'b.service': { Wants: ['c.service'], After: ['c.service'] },
      'c.service': { After: ['a.service'] },
    },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'b.service': 'start' },
    diagnostics: [{ code: 'WARN_JOB_CYCLE', cycle: ['a.service', 'b.service', 'c.service', 'a.service'] }],
  },
  {
    description: 'ordering cycle of Requires= jobs only: refused, cycle named',
    units: {
      'a.service': { Requires: ['b.service'], After: ['b.service'] },
      'b.service': { After: ['a.service'] },
    },
    request: start('a.service'),
    error: {
      code: 'ERR_JOB_CYCLE',
      says: /a\.service → b\.service → a\.service/,
      cycle: ['a.service', 'b.service', 'a.service'],
    },
  },
  {
    description: 'a cycle through an installed job counts too',
    units: {
      'a.service': { Wants: ['b.service'], After: ['b.service'] },
      'b.service': { After: ['c.service'] },
      'c.service': { After: ['a.service'] },
    },
    installed: { 'c.service': 'start' },
    request: start('a.service'),
    jobs: { 'a.service': 'start' },
    diagnostics: [{ code: 'WARN_JOB_CYCLE', cycle: ['a.service', 'b.service', 'c.service', 'a.service'] }],
  },
  {
    description: 'stop and start ordered against each other are not a cycle',
    units: {
      'a.service': { Conflicts: ['b.service'], After: ['b.service'] },
      'b.service': { After: ['a.service'] },
    },
    states: { 'b.service': { active: 'active' } },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'b.service': 'stop' },
  },
  {
    description: 'isolate: start the target and what it pulls in, stop the rest except IgnoreOnIsolate=',
    units: {
      'rescue.target': { Wants: ['x.service'] },
      'x.service': {},
      'y.service': {},
      'z.service': {},
      'w.service': {},
      'y.socket': {},
    },
    extra: [{ from: 'y.socket', kind: 'Triggers', to: 'y.service' }],
    states: {
      'rescue.target': { allowIsolate: true },
      'y.service': { active: 'active' },
      'y.socket': { active: 'active' },
      'z.service': { active: 'active', ignoreOnIsolate: true },
    },
    request: start('rescue.target', 'isolate'),
    jobs: { 'rescue.target': 'start', 'x.service': 'start', 'y.service': 'stop', 'y.socket': 'stop' },
  },
  {
    description: 'isolate keeps a service whose triggering socket stays',
    units: { 'sock.target': { Wants: ['y.socket'] }, 'y.socket': {}, 'y.service': {} },
    extra: [{ from: 'y.socket', kind: 'Triggers', to: 'y.service' }],
    states: {
      'sock.target': { allowIsolate: true },
      'y.socket': { active: 'active' },
      'y.service': { active: 'active' },
    },
    request: start('sock.target', 'isolate'),
    jobs: { 'sock.target': 'start' },
  },
  {
    description: 'isolate refused without AllowIsolate=',
    units: { 'multi-user.target': {} },
    request: start('multi-user.target', 'isolate'),
    error: { code: 'ERR_JOB_REFUSED', says: /may not be isolated/ },
  },
  {
    description: 'isolate only with start',
    units: { 'multi-user.target': {} },
    states: { 'multi-user.target': { allowIsolate: true } },
    request: stop('multi-user.target', 'isolate'),
    error: { code: 'ERR_JOB_INVALID_REQUEST' },
  },
  {
    description: 'mode fail: refused when it would replace a queued conflicting job',
    units: { 'a.service': { Requires: ['b.service'] }, 'b.service': {} },
    installed: { 'b.service': 'stop' },
    request: start('a.service', 'fail'),
    error: { code: 'ERR_JOB_CONFLICT', says: /b\.service has a stop job queued, but start is included/ },
  },
  {
    description: 'mode replace: the same transaction replaces the queued job',
    units: { 'a.service': { Requires: ['b.service'] }, 'b.service': {} },
    installed: { 'b.service': 'stop' },
    request: start('a.service', 'replace'),
    jobs: { 'a.service': 'start', 'b.service': 'start' },
  },
  {
    description: 'mode fail: a wanted job that would undo a queued job is dropped instead',
    units: { 'a.service': { Wants: ['b.service'] }, 'b.service': {} },
    installed: { 'b.service': 'stop' },
    request: start('a.service', 'fail'),
    jobs: { 'a.service': 'start' },
  },
  {
    description: 'an irreversible queued job cannot be replaced even in mode replace',
    units: { 'a.service': {} },
    installed: { 'a.service': { type: 'stop', state: 'waiting', irreversible: true, ignoreOrder: false } },
    request: start('a.service', 'replace'),
    error: { code: 'ERR_JOB_CONFLICT', says: /irreversible/ },
  },
  {
    description: 'replace-irreversibly marks the jobs irreversible',
    units: { 'a.service': { Requires: ['b.service'] }, 'b.service': {} },
    request: start('a.service', 'replace-irreversibly'),
    jobs: { 'a.service': 'start', 'b.service': 'start' },
    check: (jobs) => assert.ok([...jobs.values()].every((j) => j.irreversible)),
  },
  {
    description: 'ignore-dependencies: no requirements, no ordering',
    units: {
      'a.service': { Requires: ['b.service'], Conflicts: ['c.service'] },
      'b.service': {},
      'c.service': {},
    },
    states: { 'c.service': { active: 'active' } },
    request: start('a.service', 'ignore-dependencies'),
    jobs: { 'a.service': 'start' },
    check: (jobs) => assert.equal(jobs.get('a.service')?.ignoreOrder, true),
  },
  {
    description: 'ignore-requirements: no requirements, ordering kept',
    units: { 'a.service': { Requires: ['b.service'] }, 'b.service': {} },
    request: start('a.service', 'ignore-requirements'),
    jobs: { 'a.service': 'start' },
    check: (jobs) => assert.equal(jobs.get('a.service')?.ignoreOrder, false),
  },
  {
    description: 'try-restart of an inactive unit collapses to nop',
    units: { 'a.service': {} },
    request: { unit: 'a.service', type: 'try-restart', mode: 'replace' },
    jobs: { 'a.service': 'nop' },
  },
  {
    description: 'reload-or-start collapses to reload when active, and propagates PropagatesReloadTo=',
    units: {
      'a.service': { PropagatesReloadTo: ['b.service', 'c.service'] },
      'b.service': {},
      'c.service': {},
    },
    states: {
      'a.service': { active: 'active', canReload: true },
      'b.service': { active: 'active', canReload: true },
      'c.service': { canReload: true },
    },
    request: { unit: 'a.service', type: 'reload-or-start', mode: 'replace' },
    jobs: { 'a.service': 'reload', 'b.service': 'reload' },
  },
  {
    description: 'reload of a unit that cannot reload is not applicable',
    units: { 'a.service': {} },
    states: { 'a.service': { active: 'active' } },
    request: { unit: 'a.service', type: 'reload', mode: 'replace' },
    error: { code: 'ERR_JOB_NOT_APPLICABLE' },
  },
  {
    description: 'RefuseManualStart= refuses a manual start but not one by dependency',
    units: { 'a.service': {} },
    states: { 'a.service': { refuseManualStart: true } },
    request: { unit: 'a.service', type: 'start', mode: 'replace', manual: true },
    error: { code: 'ERR_JOB_REFUSED', says: /RefuseManualStart/ },
  },
  {
    description: 'dependencies through an alias land on the unit',
    units: { 'a.service': { Requires: ['alias.service'] }, 'real.service': {} },
    aliases: { 'real.service': ['alias.service'] },
    request: start('a.service'),
    jobs: { 'a.service': 'start', 'real.service': 'start' },
  },
  {
    description: '[Install] WantedBy= given as an extra edge pulls the unit in',
    units: { 'multi-user.target': {}, 'web.service': {} },
    extra: [{ from: 'web.service', kind: 'WantedBy', to: 'multi-user.target' }],
    request: start('multi-user.target'),
    jobs: { 'multi-user.target': 'start', 'web.service': 'start' },
  },
  {
    description: 'restart pulls in requirements and restarts RequiredBy= dependents',
    units: {
      'a.service': { Requires: ['b.service'] },
      'b.service': { Requires: ['c.service'] },
      'c.service': {},
    },
    states: {
      'a.service': { active: 'active' },
      'b.service': { active: 'active' },
    },
    request: { unit: 'b.service', type: 'restart', mode: 'replace' },
    jobs: { 'b.service': 'restart', 'c.service': 'start', 'a.service': 'restart' },
  },
];

for (const s of scenarios) {
  test(`transaction: ${s.description}`, () => {
    const records = Object.entries(s.units).map(([name, dependencies]) => ({
      name,
      dependencies,
      aliases: s.aliases?.[name] ?? [],
    }));
    const graph = DependencyGraph.build(records, s.extra ?? []);
    const view = (u: string): UnitView | undefined => {
      const override = s.states?.[u];
      if (!(u in s.units) && override === undefined) return undefined;
      return { active: 'inactive', loadState: 'loaded', ...override };
    };
    const installed = (u: string): InstalledJobView | undefined => {
      const job = s.installed?.[u];
      if (job === undefined || typeof job !== 'string') return job;
      return { type: job, state: 'waiting', irreversible: false, ignoreOrder: false };
    };
    const tx = buildTransaction(graph, s.request, view, { installed });
    if (s.error !== undefined) {
      assert.equal(tx.ok, false, `expected ${s.error.code}, got jobs ${JSON.stringify([...tx.jobs.keys()])}`);
      if (tx.ok) return;
      assert.equal(tx.error.code, s.error.code, tx.error.message);
      if (s.error.result !== undefined) assert.equal(tx.error.result, s.error.result);
      if (s.error.says !== undefined) assert.match(tx.error.message, s.error.says);
      if (s.error.cycle !== undefined) assert.deepEqual(tx.error.cycle, s.error.cycle);
      assert.ok(tx.diagnostics.some((d) => d.severity === 'error' && d.code === s.error?.code));
    } else {
      assert.equal(tx.ok, true, tx.ok ? '' : `${tx.error.code}: ${tx.error.message}`);
      if (!tx.ok) return;
      const got = Object.fromEntries([...tx.jobs].map(([u, j]) => [u, j.type]));
      assert.deepEqual(got, s.jobs);
      assert.deepEqual(Object.keys(got), Object.keys(s.jobs ?? {}), 'transaction order');
      assert.equal(tx.jobs.get(tx.anchor)?.anchor, true);
      s.check?.(tx.jobs);
    }
    for (const want of s.diagnostics ?? []) {
      const found = tx.diagnostics.find(
        (d) =>
          d.code === want.code &&
          (want.says === undefined || want.says.test(d.message)) &&
          (want.cycle === undefined || JSON.stringify(d.cycle) === JSON.stringify(want.cycle)),
      );
      assert.ok(
        found,
        `diagnostic ${want.code} ${want.says ?? ''} ${want.cycle ?? ''} in ${JSON.stringify(tx.diagnostics)}`,
      );
    }
  });
}

test('transaction: jobs say why they are there', () => {
  const graph = DependencyGraph.build([
    { name: 'a.service', dependencies: { Requires: ['b.service'] } },
    { name: 'b.service', dependencies: {} },
  ]);
  const tx = buildTransaction(graph, start('a.service'), () => ({ active: 'inactive', loadState: 'loaded' }));
  assert.ok(tx.ok);
  if (!tx.ok) return;
  assert.deepEqual(tx.jobs.get('b.service')?.pulledBy, { unit: 'a.service', kind: 'Requires' });
  assert.equal(tx.jobs.get('a.service')?.pulledBy, undefined);
});

test('dependency graph: both directions, self edges dropped, rebuilt from scratch', () => {
  const g = DependencyGraph.build(
    [
      { name: 'a.service', dependencies: { Wants: ['b.service', 'a.service'], After: ['b.service'] } },
      { name: 'b.service', dependencies: { PropagatesReloadTo: ['c.service'] } },
    ],
    [{ from: 'dev-sda.device', kind: 'Wants', to: 'c.service' }],
  );
  assert.ok(g.hasEdge('b.service', 'WantedBy', 'a.service'));
  assert.ok(g.hasEdge('b.service', 'Before', 'a.service'));
  assert.ok(g.hasEdge('c.service', 'ReloadPropagatedFrom', 'b.service'));
  assert.ok(g.hasEdge('c.service', 'WantedBy', 'dev-sda.device'));
  assert.ok(!g.hasEdge('a.service', 'Wants', 'a.service'));
  assert.equal(g.diagnostics[0]?.code, 'WARN_DEP_SELF');
  const g2 = DependencyGraph.build([{ name: 'a.service', dependencies: {} }]);
  assert.ok(!g2.hasEdge('a.service', 'Wants', 'b.service'));
  assert.ok(g.hasEdge('a.service', 'Wants', 'b.service'), 'the old graph is untouched');
});

test('transaction: deep chains and long cycles do not overflow the stack; messages stay short', () => {
  const n = 5000;
  const chain = Array.from({ length: n }, (_, i) => ({
    name: `u${i}.service`,
    dependencies: { Requires: [`u${i + 1}.service`], After: [`u${i + 1}.service`] },
  }));
  const loaded = (u: string): UnitView | undefined =>
    u === `u${n}.service` ? undefined : { active: 'inactive', loadState: 'loaded' };
  const tx = buildTransaction(DependencyGraph.build(chain), start('u0.service'), loaded);
  assert.equal(!tx.ok && tx.error.code, 'ERR_JOB_DEPENDENCY');
  assert.ok(!tx.ok && tx.error.message.length < 400, 'chain elided in the message');
  assert.equal(!tx.ok && tx.error.unit, `u${n}.service`);

  const ring = Array.from({ length: n }, (_, i) => ({
    name: `c${i}.service`,
    dependencies: { Requires: [`c${(i + 1) % n}.service`], After: [`c${(i + 1) % n}.service`] },
  }));
  const tx2 = buildTransaction(DependencyGraph.build(ring), start('c0.service'), () => ({
    active: 'inactive',
    loadState: 'loaded',
  }));
  assert.equal(!tx2.ok && tx2.error.code, 'ERR_JOB_CYCLE');
  assert.equal(!tx2.ok && tx2.error.cycle?.length, n + 1);
});
