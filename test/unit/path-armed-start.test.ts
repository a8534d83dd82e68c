// Armed path starts (src/core/path-armed-start.ts) on fakes: the inotify registry's one-shot arm
// (fake addon and a fake lstat), the path unit's side (armableSpec/firedArmed on the fake host of
// test/helpers/path-rig.ts), the orchestrator on a fake host, and the supervisor handing the armed
// child to the service's own spawn (fake native spawn). Nothing here needs root or a kernel.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IN } from '../../src/native/inotify-addon';
import type { SpawnedChild } from '../../src/native/spawn-addon';
import type { ExecPlan } from '../../src/exec/exec-plan';
import type { ExecCommand } from '../../src/units/config-types';
import type { PathCheck } from '../../src/units/path-checks';
import type { PathHost } from '../../src/units/path';
import { ServiceUnit } from '../../src/units/service';
import {
  InotifyPathWatches,
  type PathProbe,
  type PathWatchEvent,
  type PathWatchSource,
} from '../../src/events/path-watches';
import {
  bookkeepingDelayMs,
  PathArmedStarts,
  type PathArmedStartHost,
} from '../../src/core/path-armed-start';
import { ProcessSupervisor } from '../../src/core/process-supervisor';
import type { Logger } from '../../src/util/logger';
import { FakeNativeInotify } from '../helpers/fake-inotify';
import { FakeNativeSpawn } from '../helpers/fake-spawn';
import { command, execContext, serviceFile } from '../helpers/unit-fixtures';
import { silentLogger } from '../helpers/logger';
import { pathRig, type PathRig } from '../helpers/path-rig';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

// ---- 1. the registry's arm ----------------------------------------------------------------------

/** lstat answered from a table; everything else is ENOENT. */
function fakeProbe(kinds: Record<string, string>): PathProbe {
  return {
    lstat: (p) => kinds[p] ?? 'ENOENT',
    readlink: () => {
      throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    },
  };
}

function watchRig(kinds: Record<string, string> = { '/etc': 'dir', '/etc/conf': 'file' }) {
  const native = new FakeNativeInotify();
  const watches = new InotifyPathWatches({ native, logger: silentLogger(), probe: fakeProbe(kinds) });
  const order: string[] = [];
  const events: PathWatchEvent[] = [];
  const watch = watches.watch({ kind: 'PathChanged', path: '/etc/conf' }, (e) => {
    order.push('event');
    events.push(e);
  });
  const handle = native.handle;
  const wd = (p: string): number => {
    const d = handle.wdByPath.get(p);
    assert.ok(d !== undefined, `no watch on ${p}`);
    return d;
  };
  let calls = 0;
  const fn = (): void => {
    calls++;
    order.push('armed');
  };
  return { watches, watch, handle, wd, order, events, fn, calls: () => calls };
}

describe('InotifyPathWatches: armOnChange', () => {
  test('fires once, inside the wake-up and before the event, which says armed', async () => {
    const r = watchRig();
    const disarm = r.watch.armOnChange?.(r.fn);
    assert.equal(typeof disarm, 'function');
    assert.equal(r.handle.arms.length, 1);
    assert.equal(r.handle.arms[0]?.wd, r.wd('/etc/conf'), 'armed on the path itself, not its parent');
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 1);
    assert.deepEqual(r.order, ['armed', 'event']);
    assert.equal(r.events[0]?.changed, true);
    assert.equal(r.events[0]?.armed, true);
    // One-shot: the next write is an ordinary change.
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 1);
    assert.equal(r.events.length, 2);
    assert.equal(r.events[1]?.changed, true);
    assert.equal(r.events[1]?.armed, undefined);
    r.watches.close();
  });

  test('a directory or a symbolic link is not armed: its changes come as named records', () => {
    for (const kind of ['dir', 'link']) {
      const r = watchRig({ '/etc': 'dir', '/etc/conf': kind });
      assert.equal(r.watch.armOnChange?.(r.fn), undefined, kind);
      assert.equal(r.handle.arms.length, 0, kind);
      r.watches.close();
    }
  });

  test('disarmed before the change: never called, the event is not armed', async () => {
    const r = watchRig();
    const disarm = r.watch.armOnChange?.(r.fn);
    disarm?.();
    disarm?.(); // a second call is harmless
    assert.equal(r.handle.arms.length, 0);
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 0);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]?.armed, undefined);
    r.watches.close();
  });

  test("the parent's record naming the file is a change, but not the arm's", async () => {
    const r = watchRig();
    r.watch.armOnChange?.(r.fn);
    r.handle.push([{ wd: r.wd('/etc'), mask: IN.CLOSE_WRITE, name: 'conf' }]);
    await flush();
    assert.equal(r.calls(), 0);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]?.changed, true);
    assert.equal(r.events[0]?.armed, undefined);
    assert.equal(r.handle.arms.length, 1, 'still armed for the path itself');
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 1);
    assert.equal(r.events[1]?.armed, true);
    r.watches.close();
  });

  test('a re-walk drops the arm: by rewalk(), and by an event that re-walks (overflow)', async () => {
    const r = watchRig();
    r.watch.armOnChange?.(r.fn);
    r.watch.rewalk();
    assert.equal(r.handle.arms.length, 0);
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 0);
    assert.equal(r.events.at(-1)?.armed, undefined);
    // The wd of the path is the same after the walk; the arm is gone all the same.
    r.watch.armOnChange?.(r.fn);
    assert.equal(r.handle.arms.length, 1);
    r.handle.overflow();
    await flush();
    assert.equal(r.events.at(-1)?.overflow, true);
    assert.equal(r.handle.arms.length, 0);
    r.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(r.calls(), 0);
    r.watches.close();
  });

  test('close() of the registry, and of the spec, drop the arm', () => {
    const r = watchRig();
    const disarmed: unknown[] = [];
    const disarmCall = r.handle.disarmCall.bind(r.handle);
    r.handle.disarmCall = (id: unknown): boolean => {
      disarmed.push(id);
      return disarmCall(id);
    };
    const disarm = r.watch.armOnChange?.(r.fn);
    const id = r.handle.arms[0]?.id;
    r.watches.close();
    assert.deepEqual(disarmed, [id]);
    assert.doesNotThrow(() => disarm?.());
    assert.equal(r.watch.armOnChange?.(r.fn), undefined, 'nothing to arm on once closed');

    const s = watchRig();
    s.watch.armOnChange?.(s.fn);
    s.watch.close();
    assert.equal(s.handle.arms.length, 0);
    s.watches.close();
  });

  test('undefined when the path does not exist (no watch of its own)', () => {
    const r = watchRig({ '/etc': 'dir' });
    assert.equal(r.watch.state().waitingFor, 'conf');
    assert.equal(r.watch.armOnChange?.(r.fn), undefined);
    assert.equal(r.handle.arms.length, 0);
    r.watches.close();
  });
});

// ---- 2. the path unit's side --------------------------------------------------------------------

const file = (snapshot: string): PathCheck => ({ exists: snapshot !== '', holds: false, snapshot });

/** A waiting PathChanged= unit on an existing file. */
function waitingRig(extra = ''): PathRig {
  const r = pathRig(`[Path]\nPathChanged=/etc/conf\n${extra}`);
  r.fs.set('/etc/conf', file('a'));
  assert.equal(r.unit.start(), 'done');
  assert.equal(r.unit.state, 'waiting');
  return r;
}

describe('PathUnit: armableSpec and firedArmed', () => {
  test('armable: one existing PathChanged=/PathModified= path, while waiting', () => {
    const r = waitingRig();
    const spec = r.unit.armableSpec();
    assert.ok(spec !== undefined);
    assert.deepEqual(spec.cause, { kind: 'PathChanged', path: '/etc/conf', why: 'changed' });
    const m = pathRig('[Path]\nPathModified=/var/log/x\n');
    m.fs.set('/var/log/x', file('1'));
    m.unit.start();
    assert.equal(m.unit.armableSpec()?.cause.kind, 'PathModified');
  });

  const notArmable: [string, string, Record<string, PathCheck>][] = [
    ['PathExists=', '[Path]\nPathExists=/run/flag\n', {}],
    ['DirectoryNotEmpty=', '[Path]\nDirectoryNotEmpty=/spool\n', {}],
    ['two specs', '[Path]\nPathChanged=/etc/conf\nPathChanged=/etc/other\n', { '/etc/other': file('b') }],
    ['a path that does not exist', '[Path]\nPathChanged=/etc/missing\n', {}],
  ];
  for (const [what, text, more] of notArmable) {
    test(`not armable: ${what}`, () => {
      const r = pathRig(text);
      r.fs.set('/etc/conf', file('a'));
      for (const [p, c] of Object.entries(more)) r.fs.set(p, c);
      r.unit.start();
      assert.equal(r.unit.state, 'waiting');
      assert.equal(r.unit.armableSpec(), undefined);
    });
  }

  test('not armable while running, nor while deferred with a trigger pending', () => {
    const r = waitingRig();
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.unit.state, 'running');
    assert.equal(r.unit.armableSpec(), undefined);
    r.run();
    r.end();
    assert.notEqual(r.unit.armableSpec(), undefined, 'armable again once the run is over');
    r.startAnswer = { ok: false, reason: 'transaction is destructive' };
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.unit.state, 'waiting');
    assert.notEqual(r.unit.deferral, undefined);
    assert.notEqual(r.unit.pending, undefined);
    assert.equal(r.unit.armableSpec(), undefined);
  });

  test('not armable when one more trigger would hit the trigger limit', () => {
    const r = waitingRig('TriggerLimitIntervalSec=10s\nTriggerLimitBurst=1\n');
    r.source.emit('/etc/conf', { changed: true });
    r.run();
    r.end();
    assert.equal(r.unit.state, 'waiting');
    assert.equal(r.unit.deferral, undefined);
    assert.equal(r.unit.armableSpec(), undefined);
    r.clock.advance(10_000);
    assert.notEqual(r.unit.armableSpec(), undefined, 'a new window allows one more');
  });

  test('firedArmed starts once; its own armed event is not a second trigger', () => {
    const r = waitingRig();
    assert.equal(r.unit.firedArmed(), true);
    assert.deepEqual(r.starts, [
      { name: 'foo.service', env: { TRIGGER_UNIT: 'foo.path', TRIGGER_PATH: '/etc/conf' } },
    ]);
    assert.equal(r.unit.state, 'running');
    assert.equal(r.unit.nArmedStarts, 1);
    assert.equal(r.unit.nTriggers, 1);
    assert.match(r.unit.lastTrigger?.why ?? '', /inotify wake-up/);
    // The change the arm fired for arrives as its event right after, in the same wake-up.
    r.fs.set('/etc/conf', file('b'));
    r.source.emit('/etc/conf', { changed: true, armed: true });
    assert.equal(r.unit.nLatched, 0);
    r.run();
    r.end();
    assert.equal(r.starts.length, 1, 'no second run for the same change');
    assert.equal(r.unit.state, 'waiting');
    assert.equal(r.unit.properties().NArmedStarts, 1);
  });

  test('after the armed event, a change without `armed` during the run is latched', () => {
    const r = waitingRig();
    r.unit.firedArmed();
    r.source.emit('/etc/conf', { changed: true, armed: true });
    r.fs.set('/etc/conf', file('c'));
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.unit.nLatched, 1);
    r.run();
    r.end();
    assert.equal(r.starts.length, 2, 'one more run for the later change');
    assert.equal(r.unit.nArmedStarts, 1);
  });

  test('firedArmed while deferred: false, no start; the change waits with the deferral', () => {
    const r = waitingRig();
    r.startAnswer = { ok: false, reason: 'refused' };
    r.source.emit('/etc/conf', { changed: true });
    assert.notEqual(r.unit.deferral, undefined);
    r.startAnswer = { ok: true };
    assert.equal(r.unit.firedArmed(), false);
    assert.equal(r.starts.length, 0);
    assert.equal(r.unit.nArmedStarts, 0);
    // Its event is then an ordinary one: coalesced into the pending trigger, not lost.
    r.source.emit('/etc/conf', { changed: true, armed: true });
    assert.equal(r.starts.length, 0);
    r.clock.advance(60_000);
    assert.equal(r.starts.length, 1);
  });

  test('armableChanged on every state change and on a deferral and its end', () => {
    const r = waitingRig();
    assert.ok(r.armable.includes('waiting'));
    r.source.emit('/etc/conf', { changed: true });
    assert.ok(r.armable.includes('running'));
    r.run();
    r.end();
    r.startAnswer = { ok: false, reason: 'refused' };
    r.armable.length = 0;
    r.source.emit('/etc/conf', { changed: true });
    assert.ok(r.armable.includes('waiting deferred'), JSON.stringify(r.armable));
    r.armable.length = 0;
    r.clock.advance(60_000);
    assert.ok(r.armable.length > 0, 'the end of the deferral is news too');
    r.armable.length = 0;
    r.unit.stop();
    assert.ok(r.armable.includes('dead'));
  });
});

// ---- 3. the orchestrator ------------------------------------------------------------------------

const CMD: ExecCommand = command('/usr/bin/job');
const PLAN = { path: '/usr/bin/job', argv: ['/usr/bin/job'] } as unknown as ExecPlan;

interface Orchestrated {
  r: PathRig;
  armed: PathArmedStarts;
  /** What the host saw, in order. */
  calls: string[];
  warns: string[];
  planArgs: { unit: string; cmd: ExecCommand; env: Record<string, string> }[];
  held: { unit: string; cmd: ExecCommand; env: Record<string, string>; child: SpawnedChild }[];
  /** Each release() of a prepared launch: whether it had been launched. */
  released: boolean[];
  /** What the fakes answer; tests change them. */
  answers: {
    service: boolean;
    next: ReturnType<ServiceUnit['nextStartProcess']>;
    closure: Set<string> | undefined;
    plan: ReturnType<PathArmedStartHost['armedPlan']>;
    settle: boolean;
    spawnThrows: boolean;
    /** prepare() with parkWith throws this (the parked spawn failed). */
    parkThrows: Error | undefined;
  };
  /** Each prepare()'s park. */
  parkWiths: boolean[];
  /** Each holdParkedChild() pid. */
  parkedHeld: number[];
}

/** `source`: the watch source of the path unit (default: the rig's fake). */
/** `delayMs`: the bookkeeping's wait after the clone (0: at once, as most tests here want). */
/** `park`: the host parks armed jobs (pid 7000 + n). */
function orchestrated(
  text = '[Path]\nPathChanged=/etc/conf\n',
  source?: PathWatchSource,
  delayMs = 0,
  park = false,
): Orchestrated {
  const r = pathRig(text);
  if (source !== undefined) (r.unit as unknown as { host: PathHost }).host.sourceFor = () => source;
  r.fs.set('/etc/conf', file('a'));
  const calls: string[] = [];
  const warns: string[] = [];
  const released: boolean[] = [];
  const o: Omit<Orchestrated, 'armed'> = {
    r,
    calls,
    warns,
    released,
    planArgs: [],
    held: [],
    answers: {
      service: true,
      next: { ok: true, cmd: CMD, env: {} },
      closure: new Set(['foo.service', 'basic.target']),
      plan: { ok: true, plan: PLAN, cgroup: undefined },
      settle: true,
      spawnThrows: false,
      parkThrows: undefined,
    },
    parkWiths: [],
    parkedHeld: [],
  };
  const service = {
    config: { type: 'oneshot' },
    nextStartProcess: (activation: Record<string, string>) => {
      const a = o.answers.next;
      return a.ok ? { ...a, env: { ...activation, SERVICE_RESULT: 'success' } } : a;
    },
  } as unknown as ServiceUnit;
  const logger = silentLogger();
  logger.warn = ((_obj: unknown, msg: string) => void warns.push(msg)) as unknown as Logger['warn'];
  const host: PathArmedStartHost = {
    logger,
    spawn: {
      prepare: (plan, options) => {
        assert.equal(plan, PLAN, 'the plan built when arming');
        o.parkWiths.push(options?.park === true);
        if (options?.park === true && o.answers.parkThrows !== undefined) throw o.answers.parkThrows;
        const parkedPid = options?.park === true ? 7000 + o.parkWiths.length : 0;
        let launched = false;
        return {
          get launched() {
            return launched;
          },
          parkedPid,
          launch: () => {
            calls.push('spawn');
            launched = true;
            if (o.answers.spawnThrows) throw Object.assign(new Error('EAGAIN: clone'), { code: 'EAGAIN' });
            return { pid: parkedPid > 0 ? parkedPid : 4242, pidfd: 17 };
          },
          release: () => void released.push(launched),
        };
      },
    },
    resolve: (n) => n,
    service: (n) => (o.answers.service && n === 'foo.service' ? service : undefined),
    trivialStartClosure: () => (o.answers.closure === undefined ? undefined : new Set(o.answers.closure)),
    armedPlan: (unit, cmd, env) => {
      o.planArgs.push({ unit, cmd, env });
      return o.answers.plan;
    },
    holdArmedChild: (unit, cmd, env, child) => {
      calls.push('hold');
      o.held.push({ unit, cmd, env, child });
    },
    settleArmedChild: () => {
      calls.push('settle');
      return o.answers.settle;
    },
    bookkeepingDelayMs: delayMs,
    park,
    holdParkedChild: (pid) => void o.parkedHeld.push(pid),
  };
  const armed = new PathArmedStarts(host);
  r.settleArmed = () => armed.flush();
  r.onArmable = () => armed.unitArmableChanged(r.unit.name);
  r.armedState = () => armed.state(r.unit.name);
  const firedArmed = r.unit.firedArmed.bind(r.unit);
  r.unit.firedArmed = () => {
    calls.push('firedArmed');
    return firedArmed();
  };
  const startUnit = (r.unit as unknown as { host: PathHost }).host.startUnit;
  (r.unit as unknown as { host: PathHost }).host.startUnit = (n, env) => {
    calls.push('startUnit');
    return startUnit(n, env);
  };
  assert.equal(r.unit.start(), 'done');
  armed.track(r.unit);
  return { ...o, armed };
}

describe('PathArmedStarts', () => {
  test('refresh() arms a waiting unit with the plan of its service', () => {
    const o = orchestrated();
    assert.deepEqual(o.armed.state('foo.path'), { armed: false, why: 'not looked at yet' });
    o.armed.refresh();
    assert.deepEqual(o.armed.state('foo.path'), {
      armed: true,
      parkedPid: 0,
      notParked: 'parking is off (TRIGGERD_ARMED_PARK=0)',
    });
    assert.equal(o.armed.stats.armed, 1);
    assert.ok(o.r.source.armed.has('/etc/conf'));
    assert.deepEqual(o.planArgs, [
      {
        unit: 'foo.service',
        cmd: CMD,
        env: { TRIGGER_UNIT: 'foo.path', TRIGGER_PATH: '/etc/conf', SERVICE_RESULT: 'success' },
      },
    ]);
    assert.match(o.r.unit.statusLines().join('\n'), /Armed: yes: the next change starts the job/);
    o.armed.close();
  });

  test('parking: the job is parked when arming, and the change launches that same process', () => {
    const o = orchestrated(undefined, undefined, 0, true);
    o.armed.refresh();
    assert.deepEqual(o.parkWiths, [true]);
    assert.deepEqual(o.parkedHeld, [7001], 'the supervisor knows the parked pid');
    assert.deepEqual(o.armed.state('foo.path'), { armed: true, parkedPid: 7001 });
    assert.equal(o.armed.stats.parked, 1);
    assert.match(
      o.r.unit.statusLines().join('\n'),
      /Armed: yes: the next change starts the job, parked as pid 7001/,
    );
    o.r.source.fire('/etc/conf');
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    assert.equal(o.held[0]?.child.pid, 7001);
    o.armed.close();
  });

  test('a parked job that exits before its change: the arm is dropped, and that unit clones at the change from then on', () => {
    const o = orchestrated(undefined, undefined, 0, true);
    o.armed.refresh();
    o.armed.parkedChildExited(999); // not an arm's
    assert.deepEqual(o.released, []);
    o.armed.parkedChildExited(7001);
    assert.deepEqual(o.released, [false], 'dropped unlaunched');
    assert.match(o.warns.join('\n'), /parked job \(pid 7001\) ended before the change/);
    o.armed.refresh();
    assert.deepEqual(o.parkWiths, [true, false], 'armed again, not parked');
    const state = o.armed.state('foo.path');
    assert.ok(state.armed && /ended before the change/.test(state.notParked ?? ''), JSON.stringify(state));
    assert.match(o.r.unit.statusLines().join('\n'), /cloned then: its parked job \(pid 7001\) ended/);
    o.armed.close();
  });

  test('a job that cannot be spawned ahead is armed unparked (the change reports its failure the ordinary way)', () => {
    const o = orchestrated(undefined, undefined, 0, true);
    o.answers.parkThrows = Object.assign(new Error('failed at step CHDIR: No such file or directory'), {
      code: 'ENOENT',
    });
    o.armed.refresh();
    assert.deepEqual(o.parkWiths, [true, false]);
    assert.deepEqual(o.parkedHeld, []);
    const state = o.armed.state('foo.path');
    assert.ok(state.armed && state.parkedPid === 0, JSON.stringify(state));
    assert.match(state.armed ? (state.notParked ?? '') : '', /could not be parked \(failed at step CHDIR/);
    o.armed.close();
  });

  test('Type=exec jobs are not parked (their start ends at their own exec)', () => {
    const o = orchestrated(undefined, undefined, 0, true);
    (o.armed as unknown as { host: PathArmedStartHost }).host.service = () =>
      ({
        config: { type: 'exec' },
        nextStartProcess: () => ({ ok: true, cmd: CMD, env: {} }),
      }) as unknown as ServiceUnit;
    o.armed.refresh();
    assert.deepEqual(o.parkWiths, [false]);
    o.armed.close();
  });

  const whyNot: [string, (o: Orchestrated) => void, RegExp][] = [
    [
      'the service cannot say its first process',
      (o) => (o.answers.next = { ok: false, why: 'ExecStartPre= run first' }),
      /^foo\.service: ExecStartPre= run first$/,
    ],
    ['no such service', (o) => (o.answers.service = false), /foo\.service is not a loaded service/],
    [
      'the start needs more than its own job',
      (o) => (o.answers.closure = undefined),
      /needs more than its own job/,
    ],
    [
      'no plan',
      (o) => (o.answers.plan = { ok: false, why: 'a sandbox staged per run' }),
      /^foo\.service: a sandbox staged per run$/,
    ],
    [
      'not a file with a watch of its own',
      (o) => (o.r.source.noArm = true),
      /not a file with a watch of its own/,
    ],
  ];
  for (const [what, set, why] of whyNot) {
    test(`not armed, and status says why: ${what}`, () => {
      const o = orchestrated();
      set(o);
      o.armed.refresh();
      const s = o.armed.state('foo.path');
      assert.equal(s.armed, false);
      assert.match(s.armed ? '' : s.why, why);
      assert.equal(o.armed.stats.armed, 0);
      assert.match(o.r.unit.statusLines().join('\n'), /Armed: no \(/);
      o.armed.close();
    });
  }

  test('not armed: a unit that is not armable (PathExists=)', () => {
    const o = orchestrated('[Path]\nPathExists=/run/missing\n');
    o.armed.refresh();
    const s = o.armed.state('foo.path');
    assert.match(s.armed ? '' : s.why, /not waiting on a single PathChanged=\/PathModified= path/);
    o.armed.close();
  });

  test('changed(): a unit the answer looked at drops the arm at once; another does not', () => {
    const o = orchestrated();
    o.armed.refresh();
    o.armed.changed('other.service');
    assert.equal(o.armed.state('foo.path').armed, true);
    assert.equal(o.r.source.disarms, 0);
    o.armed.changed('basic.target');
    assert.equal(o.armed.state('foo.path').armed, false, 'dropped synchronously, not on the next turn');
    assert.equal(o.r.source.disarms, 1);
    // The path unit and the service are in the closure even when the queue did not list them.
    for (const unit of ['foo.path', 'foo.service']) {
      o.armed.refresh();
      o.armed.changed(unit);
      assert.equal(o.armed.state('foo.path').armed, false, unit);
    }
    o.armed.refresh();
    o.armed.changed(undefined);
    assert.equal(o.armed.state('foo.path').armed, false, 'a reload drops everything');
    assert.equal(o.r.source.disarms, 4);
    o.armed.close();
  });

  test('planGone(service) drops the arms that start it, and only those', () => {
    const o = orchestrated();
    o.armed.refresh();
    o.armed.planGone('other.service');
    assert.equal(o.armed.state('foo.path').armed, true);
    o.armed.planGone('foo.service');
    assert.equal(o.armed.state('foo.path').armed, false);
    assert.equal(o.r.source.disarms, 1);
    o.armed.close();
  });

  test("the unit's own trigger (an ordinary change) drops the arm", () => {
    const o = orchestrated();
    o.armed.refresh();
    o.r.source.emit('/etc/conf', { changed: true });
    assert.equal(o.r.unit.state, 'running');
    assert.equal(o.armed.state('foo.path').armed, false);
    assert.equal(o.r.source.disarms, 1);
    o.armed.close();
  });

  test('the bookkeeping waits (the job first on the CPU): clone and hold now, the trigger at the timer', async () => {
    const o = orchestrated(undefined, undefined, 30);
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    assert.deepEqual(o.calls, ['spawn', 'hold'], 'nothing of the start is recorded yet');
    assert.equal(o.armed.waiting, 1);
    assert.equal(o.r.unit.state, 'waiting');
    assert.equal(o.armed.state('foo.path').armed, false);
    // The change's own event comes first: it only refreshes the path's state.
    o.r.source.emit('/etc/conf', { changed: true, armed: true });
    assert.deepEqual(o.calls, ['spawn', 'hold'], 'its event does not record the start');
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    assert.equal(o.armed.waiting, 0);
    assert.equal(o.r.unit.nTriggers, 1);
    assert.equal(o.r.unit.nArmedStarts, 1);
    o.r.run();
    o.r.end();
    assert.equal(o.r.starts.length, 1, 'one start for the change');
    assert.equal(o.r.unit.nLatched, 0, 'its event latched nothing');
    o.armed.close();
  });

  test('its event after the recording (a later slice) carries no second trigger either', async () => {
    const o = orchestrated(undefined, undefined, 5);
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    o.r.source.emit('/etc/conf', { changed: true, armed: true });
    o.r.run();
    o.r.end();
    assert.equal(o.r.starts.length, 1);
    assert.equal(o.r.unit.nLatched, 0);
    o.armed.close();
  });

  test('another change while the bookkeeping waits records the start first, then is latched', () => {
    const o = orchestrated(undefined, undefined, 10_000);
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    o.r.source.emit('/etc/conf', { changed: true, armed: true });
    o.r.fs.set('/etc/conf', file('c'));
    o.r.source.emit('/etc/conf', { changed: true });
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle'], 'recorded at once');
    assert.equal(o.armed.waiting, 0, 'and its timer is gone');
    assert.equal(o.r.unit.nLatched, 1, 'the later change waits for the run to end');
    o.r.run();
    o.r.end();
    assert.equal(o.r.starts.length, 2);
    o.armed.close();
  });

  test('flush() records every waiting start now; a unit is not armed again while its start waits', async () => {
    const o = orchestrated(undefined, undefined, 10_000);
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    o.armed.refresh();
    assert.deepEqual(o.armed.state('foo.path'), {
      armed: false,
      why: 'its last armed start is still being recorded',
    });
    o.armed.flush();
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    o.armed.flush();
    assert.equal(o.calls.length, 5, 'once');
    o.armed.close();
  });

  test('close() records a waiting start before it drops the arms', () => {
    const o = orchestrated(undefined, undefined, 10_000);
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    o.armed.close();
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    assert.equal(o.armed.waiting, 0);
  });

  test('bookkeepingDelayMs: the variable, bounded; 2 ms by default', () => {
    assert.equal(bookkeepingDelayMs(undefined), 2);
    assert.equal(bookkeepingDelayMs(''), 2);
    assert.equal(bookkeepingDelayMs('0'), 0);
    assert.equal(bookkeepingDelayMs('5'), 5);
    assert.equal(bookkeepingDelayMs('1e9'), 60_000);
    assert.equal(bookkeepingDelayMs('-1'), 2);
    assert.equal(bookkeepingDelayMs('soon'), 2);
  });

  test('firing: clone, hold the child, trigger, settle, in that order', async () => {
    const o = orchestrated();
    o.armed.refresh();
    o.r.source.fire('/etc/conf');
    assert.deepEqual(o.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    assert.deepEqual(o.held[0]?.child, { pid: 4242, pidfd: 17 });
    assert.equal(o.held[0]?.cmd, CMD);
    assert.deepEqual(o.held[0]?.env, o.planArgs[0]?.env, 'held with the env the plan was built from');
    assert.deepEqual(o.armed.stats, { armed: 1, fired: 1, spawnFailed: 0, notTaken: 0, parked: 0 });
    assert.equal(o.armed.state('foo.path').armed, false);
    assert.equal(o.r.unit.nArmedStarts, 1);
    assert.deepEqual(o.warns, []);
    // The change's own event: no second start.
    o.r.source.emit('/etc/conf', { changed: true, armed: true });
    o.r.run();
    o.r.end();
    assert.equal(o.r.starts.length, 1);
    // Waiting again: armed again once the turn settles.
    await flush();
    assert.equal(o.armed.state('foo.path').armed, true);
    assert.equal(o.armed.stats.armed, 2);
    o.armed.close();
  });

  test('the start did not take the child: counted and warned about', () => {
    const o = orchestrated();
    o.armed.refresh();
    o.answers.settle = false;
    o.r.source.fire('/etc/conf');
    assert.equal(o.armed.stats.notTaken, 1);
    assert.equal(o.warns.length, 1);
    assert.match(o.warns[0] ?? '', /did not take the process cloned for it; killed pid 4242/);
    o.armed.close();
  });

  test('the clone failed: nothing held, no trigger from the arm; the event starts it the ordinary way', () => {
    const o = orchestrated();
    o.armed.refresh();
    o.answers.spawnThrows = true;
    o.r.source.fire('/etc/conf');
    assert.deepEqual(o.calls, ['spawn']);
    assert.deepEqual(o.armed.stats, { armed: 1, fired: 1, spawnFailed: 1, notTaken: 0, parked: 0 });
    assert.equal(o.r.unit.nArmedStarts, 0);
    assert.equal(o.r.starts.length, 0);
    o.r.source.emit('/etc/conf', { changed: true, armed: true });
    assert.equal(o.r.starts.length, 1);
    assert.equal(o.r.unit.lastTrigger?.why, 'changed');
    o.armed.close();
  });
});

// ---- 1 + 3: the registry under the orchestrator ---------------------------------------------------

describe('PathArmedStarts over InotifyPathWatches', () => {
  /** A real path unit on the real registry (fake addon, fake lstat), armed by the orchestrator. */
  function stacked() {
    const native = new FakeNativeInotify();
    const watches = new InotifyPathWatches({
      native,
      logger: silentLogger(),
      probe: fakeProbe({ '/etc': 'dir', '/etc/conf': 'file' }),
    });
    const o = orchestrated(undefined, watches);
    return { ...o, watches, handle: native.handle };
  }

  test('a write fires the clone from the wake-up, and the unit starts once', async () => {
    const s = stacked();
    s.armed.refresh();
    assert.equal(s.handle.arms.length, 1);
    s.handle.closeWrite('/etc/conf');
    await flush();
    assert.deepEqual(s.calls, ['spawn', 'hold', 'firedArmed', 'startUnit', 'settle']);
    assert.equal(s.r.starts.length, 1);
    assert.equal(s.r.unit.nArmedStarts, 1);
    s.r.run();
    s.r.end();
    assert.equal(s.r.starts.length, 1, 'the armed event was not latched');
    s.armed.close();
    s.watches.close();
  });

  test('a re-walk that changes nothing (an overflow re-check) leaves the unit armed', async () => {
    const s = stacked();
    s.armed.refresh();
    assert.equal(s.handle.arms.length, 1);
    s.handle.overflow();
    await flush();
    assert.equal(s.r.unit.state, 'waiting');
    // Whatever status says, an arm must exist in the addon for the next change.
    assert.equal(s.armed.state('foo.path').armed, s.handle.arms.length === 1);
    s.handle.closeWrite('/etc/conf');
    await flush();
    assert.equal(s.r.unit.nArmedStarts, 1, 'the next change starts from the wake-up');
    s.armed.close();
    s.watches.close();
  });
});

// ---- 4. the supervisor hands the armed child to the service's spawn -----------------------------

describe('ProcessSupervisor: holdArmedChild / settleArmedChild', () => {
  const activation = { TRIGGER_UNIT: 'foo.path', TRIGGER_PATH: '/etc/conf' };

  function supervised() {
    const native = new FakeNativeSpawn();
    const sup = new ProcessSupervisor({
      native,
      logger: silentLogger(),
      runtimeDir: '/run/triggerd-test',
      cgroups: undefined,
      baseEnv: { PATH: '/usr/bin:/bin' },
    });
    // Output to /dev/null: the log pipes would need real fds behind the fake ones.
    const f = serviceFile('foo.service', {
      type: 'simple',
      execStart: [command('/usr/bin/job')],
      exec: execContext({ standardOutput: { kind: 'null' }, standardError: { kind: 'null' } }),
    });
    const callbacks = {
      jobFinished: () => undefined,
      stateChanged: () => undefined,
      requestRestart: () => undefined,
    };
    const service = new ServiceUnit('foo.service', f, sup.hostFor('foo.service', callbacks));
    sup.register(service);
    const next = service.nextStartProcess(activation);
    assert.ok(next.ok, JSON.stringify(next));
    const built = sup.armedPlan('foo.service', next.cmd, next.env);
    assert.ok(built.ok, JSON.stringify(built));
    const child = native.spawn(built.plan);
    return { native, sup, service, cmd: next.cmd, env: next.env, child };
  }

  test('the main spawn of the same command with the same environment takes the child', () => {
    const s = supervised();
    // What PathArmedStarts holds: nextStartProcess's command and environment.
    s.sup.holdArmedChild('foo.service', s.cmd, { ...s.env }, s.child, undefined);
    s.service.activationEnv = { ...activation };
    assert.equal(s.service.start(), 'done');
    assert.equal(s.native.children.length, 1, 'no second clone');
    assert.equal(s.service.mainPid, s.child.pid);
    assert.equal(s.sup.settleArmedChild('foo.service'), true);
    assert.deepEqual(s.native.children[0]?.signals, []);
    assert.equal(s.sup.unitOfPid(s.child.pid), 'foo.service');
  });

  test('another environment: not taken; settle kills it by pidfd and says false', async () => {
    const s = supervised();
    s.sup.holdArmedChild('foo.service', s.cmd, s.env, s.child, undefined);
    s.service.activationEnv = { ...activation, TRIGGER_PATH: '/etc/other' };
    s.service.start();
    // Not taken, so cloned as any start is: off the event loop, answered on a later turn.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(s.native.children.length, 2, 'the start cloned its own');
    assert.equal(s.service.mainPid, s.native.children[1]?.pid);
    assert.equal(s.sup.settleArmedChild('foo.service'), false);
    assert.deepEqual(s.native.children[0]?.signals, [9]);
    assert.deepEqual(s.native.children[1]?.signals, []);
  });

  test('an equal command that is not the same object: not taken', async () => {
    const s = supervised();
    s.sup.holdArmedChild('foo.service', { ...s.cmd }, s.env, s.child, undefined);
    s.service.activationEnv = { ...activation };
    s.service.start();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(s.native.children.length, 2);
    assert.equal(s.sup.settleArmedChild('foo.service'), false);
    assert.deepEqual(s.native.children[0]?.signals, [9]);
  });

  test('settle without a held child: true, nothing signalled', () => {
    const s = supervised();
    assert.equal(s.sup.settleArmedChild('foo.service'), true);
    assert.deepEqual(s.native.children[0]?.signals, []);
  });
});
