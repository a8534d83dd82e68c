// The service state machine on virtual time with a fake host: which processes it starts, what
// it signals, when jobs finish, and where it ends up, for each Type= and Restart= policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ServiceUnit,
  type JobEnd,
  type ServiceHost,
  type ServiceState,
  type SpawnResult,
} from '../../src/units/service';
import type { ConditionSpec, ExecCommand, ServiceSection, UnitSection } from '../../src/units/config-types';
import { command, serviceFile } from '../helpers/unit-fixtures';
import { VirtualClock } from '../helpers/virtual-clock';
import { silentLogger } from '../helpers/logger';

interface Rig {
  unit: ServiceUnit;
  clock: VirtualClock;
  spawned: { pid: number; path: string; role: string }[];
  signals: string[];
  jobs: JobEnd[];
  states: string[];
  restarts: number;
  group: Set<number>;
  closed: number[];
  passed: number[][];
  /** spawnLater calls not answered yet (options.later); deliver() answers the oldest. */
  later: (() => void)[];
  /** The most recently spawned pid exits. */
  exit(status?: number, pid?: number): void;
  kill(signal: number, pid?: number): void;
}

function rig(
  service: Partial<ServiceSection> = {},
  unitOver: Partial<UnitSection> = {},
  options: {
    failSpawn?: string;
    pidFile?: number;
    conditions?: (c: ConditionSpec) => boolean;
    /** Offer spawnLater (as the daemon does). */
    later?: boolean;
    /** spawnLater answers at once (the armed path start's child). */
    laterAtOnce?: boolean;
  } = {},
): Rig {
  const clock = new VirtualClock();
  let nextPid = 100;
  const r: Omit<Rig, 'unit'> & { unit?: ServiceUnit } = {
    clock,
    spawned: [],
    signals: [],
    jobs: [],
    states: [],
    restarts: 0,
    group: new Set<number>(),
    closed: [],
    passed: [],
    later: [],
    exit: (status = 0, pid) => {
      const p = pid ?? (r.spawned.at(-1)?.pid as number);
      r.group.delete(p);
      r.unit?.onExit({ pid: p, code: 'exited', status });
    },
    kill: (signal, pid) => {
      const p = pid ?? (r.spawned.at(-1)?.pid as number);
      r.group.delete(p);
      r.unit?.onExit({ pid: p, code: 'killed', status: signal });
    },
  };
  const host: ServiceHost = {
    spawn(cmd: ExecCommand, role, _env, passFds): SpawnResult {
      r.passed.push((passFds ?? []).map((f) => f.fd));
      if (options.failSpawn !== undefined && cmd.path === options.failSpawn) {
        return { ok: false, failure: { step: 'EXEC', code: 'ENOENT', message: 'No such file or directory' } };
      }
      const pid = nextPid++;
      r.spawned.push({ pid, path: cmd.path, role });
      r.group.add(pid);
      return { ok: true, pid };
    },
    ...(options.later === true
      ? {
          spawnLater(cmd, role, env, passFds, done): SpawnResult | undefined {
            if (options.laterAtOnce === true) return host.spawn(cmd, role, env, passFds);
            r.later.push(() => done(host.spawn(cmd, role, env, passFds)));
            return undefined;
          },
        }
      : {}),
    signal(pid, signal) {
      r.signals.push(`${pid}:${signal}`);
    },
    signalGroup(signal, except) {
      let n = 0;
      for (const p of r.group)
        if (!except.has(p)) {
          r.signals.push(`${p}:${signal}`);
          n++;
        }
      return n;
    },
    groupPids: () => [...r.group],
    controlGroup: () => undefined,
    closeFd: (fd) => r.closed.push(fd),
    readPidFile: () => options.pidFile,
    conditionHolds: (c) => options.conditions?.(c) ?? true,
    setTimer: clock.setTimer,
    now: clock.now,
    jobFinished: (end) => r.jobs.push(end),
    stateChanged: (_from, to: ServiceState) => r.states.push(to),
    requestRestart: () => {
      r.restarts++;
    },
    log: silentLogger(),
  };
  const unit = new ServiceUnit('t.service', serviceFile('t.service', service, unitOver), host);
  r.unit = unit;
  return r as Rig;
}

test('Type=simple: running at once; SIGTERM on stop; dead when the main process goes', () => {
  const r = rig();
  assert.equal(r.unit.start(), 'done');
  assert.equal(r.unit.state, 'running');
  assert.equal(r.unit.mainPid, 100);
  assert.equal(r.unit.stop(), 'pending');
  assert.equal(r.unit.state, 'stop-sigterm');
  assert.ok(r.signals.includes('100:15'));
  r.kill(15);
  assert.equal(r.unit.state, 'dead');
  assert.deepEqual(r.jobs, ['done']);
  assert.equal(r.unit.result, 'success');
});

test('an Accept=yes instance spawns its main process later: start until the pid is known, then running', () => {
  const r = rig({}, {}, { later: true });
  r.unit.connection = { fd: 42, env: {} };
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.unit.state, 'start');
  assert.equal(r.unit.mainPid, undefined);
  assert.deepEqual(r.closed, [], 'the connection stays open until the child has it');
  r.later.shift()?.();
  assert.equal(r.unit.state, 'running');
  assert.equal(r.unit.mainPid, 100);
  assert.deepEqual(r.closed, [42]);
  assert.deepEqual(r.jobs, ['done']);
  r.exit(0);
  assert.equal(r.unit.state, 'dead');
});

test('spawnLater: a stop while the pid is unknown waits for it, then stops the process', () => {
  const r = rig({}, {}, { later: true });
  r.unit.connection = { fd: 42, env: {} };
  r.unit.start();
  assert.equal(r.unit.stop(), 'pending');
  assert.equal(r.unit.state, 'start');
  r.later.shift()?.();
  assert.equal(r.unit.state, 'stop-sigterm');
  assert.ok(r.signals.includes('100:15'));
  r.kill(15);
  assert.equal(r.unit.state, 'dead');
  // Only the stop's own end: the start's job was replaced by the queue, not reported from here.
  assert.deepEqual(r.jobs, ['done']);
});

test('spawnLater: a failed spawn fails the start like a failed spawn() (an Accept=yes instance, a oneshot)', () => {
  for (const type of ['simple', 'oneshot'] as const) {
    const r = rig(
      { type, execStart: [command('/bin/missing')] },
      {},
      { later: true, failSpawn: '/bin/missing' },
    );
    if (type === 'simple') r.unit.connection = { fd: 42, env: {} };
    assert.equal(r.unit.start(), 'pending');
    r.later.shift()?.();
    assert.equal(r.unit.state, 'failed', type);
    assert.equal(r.unit.result, 'exit-code', type);
    assert.deepEqual(r.jobs, ['failed'], type);
  }
});

test('Type=oneshot spawns later: start until the pid is known, done when it exits', () => {
  const r = rig({ type: 'oneshot', execStart: [command('/bin/a'), command('/bin/b')] }, {}, { later: true });
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.unit.state, 'start');
  assert.equal(r.unit.mainPid, undefined);
  assert.equal(r.unit.spawnPending, true, 'a re-exec waits for the pid');
  r.later.shift()?.();
  assert.equal(r.unit.mainPid, 100);
  assert.equal(r.unit.spawnPending, false);
  r.exit(0);
  assert.equal(r.unit.mainPid, undefined, 'the second command is on its way');
  r.later.shift()?.();
  assert.equal(r.unit.mainPid, 101);
  r.exit(0);
  assert.equal(r.unit.state, 'dead');
  assert.deepEqual(r.jobs, ['done']);
  assert.deepEqual(
    r.spawned.map((s) => s.path),
    ['/bin/a', '/bin/b'],
  );
});

test('Type=oneshot spawned later: a stop while the pid is unknown waits for it, then stops it', () => {
  const r = rig({ type: 'oneshot' }, {}, { later: true });
  r.unit.start();
  assert.equal(r.unit.stop(), 'pending');
  r.later.shift()?.();
  assert.equal(r.unit.state, 'stop-sigterm');
  assert.ok(r.signals.includes('100:15'));
  r.kill(15);
  assert.equal(r.unit.state, 'dead');
});

test('spawnLater answering at once (an armed start): the pid is taken in the same call', () => {
  const oneshot = rig({ type: 'oneshot' }, {}, { later: true, laterAtOnce: true });
  assert.equal(oneshot.unit.start(), 'pending');
  assert.equal(oneshot.unit.mainPid, 100);
  assert.equal(oneshot.unit.spawnPending, false);
  oneshot.exit(0);
  assert.equal(oneshot.unit.state, 'dead');
  const simple = rig({}, {}, { later: true, laterAtOnce: true });
  assert.equal(simple.unit.start(), 'done');
  assert.equal(simple.unit.state, 'running');
});

test('Type=simple spawns later, but not with fds to pass or notify access', () => {
  const plain = rig({}, {}, { later: true });
  assert.equal(plain.unit.start(), 'pending');
  plain.later.shift()?.();
  assert.equal(plain.unit.state, 'running');
  assert.deepEqual(plain.jobs, ['done']);
  // NotifyAccess=: a message right after the exec could come before the pid.
  const notify = rig({ notifyAccess: 'all' }, {}, { later: true });
  assert.equal(notify.unit.start(), 'done');
  assert.equal(notify.unit.mainPid, 100);
  assert.equal(notify.later.length, 0);
  const oneshot = rig({ type: 'oneshot', notifyAccess: 'main' }, {}, { later: true });
  assert.equal(oneshot.unit.start(), 'pending');
  assert.equal(oneshot.unit.mainPid, 100, 'spawned at once');
  assert.equal(oneshot.later.length, 0);
});

test('stop escalates to SIGKILL after TimeoutStopSec, on virtual time', () => {
  const r = rig({ timeoutStopMs: 5000 });
  r.unit.start();
  r.unit.stop();
  r.clock.advance(4999);
  assert.equal(r.unit.state, 'stop-sigterm');
  r.clock.advance(1);
  assert.equal(r.unit.state, 'stop-sigkill');
  assert.ok(r.signals.includes('100:9'));
  r.kill(9);
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'timeout');
});

test('Type=oneshot runs each ExecStart in turn; RemainAfterExit keeps it exited', () => {
  const r = rig({
    type: 'oneshot',
    remainAfterExit: true,
    execStart: [command('/bin/a'), command('/bin/b')],
  });
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.spawned.length, 1);
  r.exit(0);
  assert.equal(r.spawned.at(-1)?.path, '/bin/b');
  r.exit(0);
  assert.equal(r.unit.state, 'exited');
  assert.deepEqual(r.jobs, ['done']);
  assert.equal(r.unit.activeState(), 'active');
});

test("a stop during a oneshot's start reports nothing for the start: the queue replaced its job", () => {
  const r = rig({ type: 'oneshot' });
  assert.equal(r.unit.start(), 'pending');
  // The queue's stop job replaced the start job and runs the stop step: the only report the
  // service makes from here on is the stop's own (its 'canceled' for the start went to the stop).
  const stopped = r.unit.stop();
  assert.deepEqual(r.jobs, [], 'no canceled report from inside stop()');
  assert.equal(stopped, 'pending');
  r.exit(0, undefined);
  assert.equal(r.unit.state, 'dead');
  assert.deepEqual(r.jobs, ['done'], 'the stop job is done');
});

test('Type=oneshot without RemainAfterExit ends dead; a failing command fails the job', () => {
  const ok = rig({ type: 'oneshot' });
  ok.unit.start();
  ok.exit(0);
  assert.equal(ok.unit.state, 'dead');
  assert.deepEqual(ok.jobs, ['done']);
  const bad = rig({ type: 'oneshot' });
  bad.unit.start();
  bad.exit(3);
  assert.equal(bad.unit.state, 'failed');
  assert.equal(bad.unit.result, 'exit-code');
  assert.deepEqual(bad.jobs, ['failed']);
});

test("ExecStartPre with '-' may fail; without it the start fails", () => {
  const r = rig({ execStartPre: [command('/bin/pre1', { ignoreFailure: true }), command('/bin/pre2')] });
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.unit.state, 'start-pre');
  r.exit(1); // '-': ignored
  assert.equal(r.spawned.at(-1)?.path, '/bin/pre2');
  r.exit(2);
  assert.equal(r.unit.state, 'failed');
  assert.deepEqual(r.jobs, ['failed']);
});

test('Type=notify: activating until READY=1, then running; exit before READY is a protocol failure', () => {
  const r = rig({ type: 'notify' });
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.unit.state, 'start');
  assert.equal(r.unit.notifyAccess(), 'main');
  r.unit.onNotify({ senderPid: 100, status: 'warming up' });
  assert.equal(r.unit.state, 'start');
  r.unit.onNotify({ senderPid: 100, ready: true, status: 'ready' });
  assert.equal(r.unit.state, 'running');
  assert.equal(r.unit.statusText, 'ready');
  assert.deepEqual(r.jobs, ['done']);

  const early = rig({ type: 'notify' });
  early.unit.start();
  early.exit(0);
  assert.equal(early.unit.state, 'failed');
  assert.equal(early.unit.result, 'protocol');
});

test('Type=notify start times out after TimeoutStartSec', () => {
  const r = rig({ type: 'notify', timeoutStartMs: 3000 });
  r.unit.start();
  r.clock.advance(3000);
  assert.deepEqual(r.jobs, ['timeout']);
  assert.equal(r.unit.state, 'stop-sigterm');
  r.kill(15);
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'timeout');
});

test('EXTEND_TIMEOUT_USEC moves the start deadline', () => {
  const r = rig({ type: 'notify', timeoutStartMs: 1000 });
  r.unit.start();
  r.clock.advance(900);
  r.unit.onNotify({ senderPid: 100, extendTimeoutUsec: 5_000_000 });
  r.clock.advance(4000);
  assert.equal(r.unit.state, 'start');
  r.clock.advance(1001);
  assert.deepEqual(r.jobs, ['timeout']);
});

test('Type=forking: main pid from PIDFile after the parent exits', () => {
  const r = rig({ type: 'forking', pidFile: '/run/d.pid' }, {}, { pidFile: 4242 });
  assert.equal(r.unit.start(), 'pending');
  r.group.add(4242);
  r.exit(0);
  assert.equal(r.unit.state, 'running');
  assert.equal(r.unit.mainPid, 4242);
  r.unit.stop();
  assert.ok(r.signals.includes('4242:15'));
});

test('Type=forking without PIDFile guesses the only process left', () => {
  const r = rig({ type: 'forking' });
  r.unit.start();
  r.group.add(777);
  r.exit(0);
  assert.equal(r.unit.mainPid, 777);
  assert.equal(r.unit.state, 'running');
});

test('Restart=on-failure restarts after RestartSec, not after a clean exit', () => {
  const r = rig({ restart: 'on-failure', restartSecMs: 2000 });
  r.unit.start();
  r.exit(1);
  assert.equal(r.unit.state, 'auto-restart');
  r.clock.advance(1999);
  assert.equal(r.restarts, 0);
  r.clock.advance(1);
  assert.equal(r.restarts, 1);
  assert.equal(r.unit.nRestarts, 1);

  const clean = rig({ restart: 'on-failure' });
  clean.unit.start();
  clean.exit(0);
  assert.equal(clean.unit.state, 'dead');
  clean.clock.advance(10_000);
  assert.equal(clean.restarts, 0);
});

test('Restart= policies: a table of exits', () => {
  const cases: {
    restart: ServiceSection['restart'];
    exit: ['exited' | 'killed', number];
    restarts: boolean;
  }[] = [
    { restart: 'no', exit: ['exited', 1], restarts: false },
    { restart: 'always', exit: ['exited', 0], restarts: true },
    { restart: 'always', exit: ['killed', 9], restarts: true },
    { restart: 'on-success', exit: ['exited', 0], restarts: true },
    { restart: 'on-success', exit: ['exited', 1], restarts: false },
    { restart: 'on-failure', exit: ['killed', 9], restarts: true },
    { restart: 'on-abnormal', exit: ['exited', 1], restarts: false },
    { restart: 'on-abnormal', exit: ['killed', 9], restarts: true },
    { restart: 'on-abort', exit: ['killed', 6], restarts: true },
    { restart: 'on-abort', exit: ['killed', 9], restarts: false },
    { restart: 'on-watchdog', exit: ['killed', 9], restarts: false },
  ];
  for (const c of cases) {
    const r = rig({ restart: c.restart });
    r.unit.start();
    if (c.exit[0] === 'exited') r.exit(c.exit[1]);
    else r.kill(c.exit[1]);
    r.clock.advance(1000);
    assert.equal(r.restarts > 0, c.restarts, `${c.restart} ${c.exit.join(' ')}`);
  }
});

test('RestartPreventExitStatus and SuccessExitStatus', () => {
  const prevent = rig({ restart: 'always', restartPreventExitStatus: { codes: [42], signals: [] } });
  prevent.unit.start();
  prevent.exit(42);
  prevent.clock.advance(1000);
  assert.equal(prevent.restarts, 0);
  const success = rig({ restart: 'on-failure', successExitStatus: { codes: [7], signals: [] } });
  success.unit.start();
  success.exit(7);
  assert.equal(success.unit.state, 'dead');
  assert.equal(success.unit.result, 'success');
});

test('a stop job suppresses Restart=always', () => {
  const r = rig({ restart: 'always' });
  r.unit.start();
  r.unit.stop();
  r.kill(15);
  r.clock.advance(1000);
  assert.equal(r.restarts, 0);
  assert.equal(r.unit.state, 'dead');
});

test('start limit: the sixth start within 10 s is refused with start-limit-hit', () => {
  const r = rig({ type: 'oneshot' });
  for (let i = 0; i < 5; i++) {
    r.unit.start();
    r.exit(0);
  }
  const sixth = r.unit.start();
  assert.deepEqual(sixth, {
    failed: 'failed',
    reason: 't.service: start request repeated too quickly (start-limit-hit)',
  });
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'start-limit-hit');
  r.clock.advance(10_000);
  r.unit.resetFailed();
  assert.equal(r.unit.start(), 'pending');
});

test('ExecStop runs while the main process lives, then SIGTERM to the rest, then ExecStopPost', () => {
  const r = rig({ execStop: [command('/bin/stop')], execStopPost: [command('/bin/post')] });
  r.unit.start();
  r.unit.stop();
  assert.equal(r.unit.state, 'stop');
  assert.equal(r.spawned.at(-1)?.path, '/bin/stop');
  r.exit(0); // ExecStop done
  assert.equal(r.unit.state, 'stop-sigterm');
  r.kill(15, 100); // main goes
  assert.equal(r.unit.state, 'stop-post');
  assert.equal(r.spawned.at(-1)?.path, '/bin/post');
  r.exit(0);
  assert.equal(r.unit.state, 'dead');
});

test('ExecReload and notify-reload', () => {
  const r = rig({ execReload: [command('/bin/reload')] });
  r.unit.start();
  assert.equal(r.unit.reload(), 'pending');
  assert.equal(r.unit.state, 'reload');
  r.exit(0);
  assert.equal(r.unit.state, 'running');
  assert.deepEqual(r.jobs, ['done']);

  const n = rig({ type: 'notify-reload' });
  n.unit.start();
  n.unit.onNotify({ senderPid: 100, ready: true });
  assert.equal(n.unit.reload(), 'pending');
  assert.ok(n.signals.includes('100:1'));
  n.unit.onNotify({ senderPid: 100, reloading: true }); // no MONOTONIC_USEC: accepted with a warning
  assert.equal(n.unit.state, 'reload-notify');
  n.unit.onNotify({ senderPid: 100, ready: true });
  assert.equal(n.unit.state, 'running');
});

test('watchdog: no WATCHDOG=1 within WatchdogSec kills with SIGABRT and fails with watchdog', () => {
  const r = rig({ type: 'notify', watchdogMs: 1000, restart: 'on-watchdog' });
  r.unit.start();
  r.unit.onNotify({ senderPid: 100, ready: true });
  r.clock.advance(900);
  r.unit.onNotify({ senderPid: 100, watchdog: 'ping' });
  r.clock.advance(900);
  assert.equal(r.unit.state, 'running');
  r.clock.advance(100);
  assert.equal(r.unit.state, 'stop-watchdog');
  assert.ok(r.signals.includes('100:6'));
  r.kill(6);
  assert.equal(r.unit.result, 'watchdog');
  r.clock.advance(200);
  assert.equal(r.restarts, 1);
});

test('a spawn failure fails the start and names the step', () => {
  const r = rig({ execStart: [command('/nonexistent')] }, {}, { failSpawn: '/nonexistent' });
  const outcome = r.unit.start();
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'exit-code');
  assert.ok(outcome === 'done' || typeof outcome === 'object');
});

test('conditions skip the start; asserts fail it', () => {
  const cond: ConditionSpec = {
    kind: 'condition',
    name: 'PathExists',
    negate: false,
    trigger: false,
    value: '/nope',
    source: { file: 't', line: 3 },
  };
  const skipped = rig({}, { conditions: [cond] }, { conditions: () => false });
  assert.equal(skipped.unit.start(), 'done');
  assert.equal(skipped.unit.state, 'dead');
  assert.equal(skipped.spawned.length, 0);
  const asserted = rig({}, { conditions: [{ ...cond, kind: 'assert' }] }, { conditions: () => false });
  const out = asserted.unit.start();
  assert.equal(typeof out === 'object' && out.failed, 'assert');
  const negated = rig({}, { conditions: [{ ...cond, negate: true }] }, { conditions: () => false });
  assert.equal(negated.unit.start(), 'done');
  assert.equal(negated.unit.state, 'running');
});

test('ExecCondition exit 1..254 skips the start cleanly', () => {
  const r = rig({ execCondition: [command('/bin/check')] });
  assert.equal(r.unit.start(), 'pending');
  r.exit(1);
  assert.equal(r.unit.state, 'dead');
  assert.deepEqual(r.jobs, ['skipped']);
});

test('fd store: kept across a restart and handed back, flushed on a real stop, bounded by FileDescriptorStoreMax', () => {
  const r = rig({ type: 'notify', fileDescriptorStoreMax: 2 });
  r.unit.start();
  r.unit.onNotify({ senderPid: 100, ready: true, storeFds: [40, 41, 42], fdName: 'state' });
  assert.deepEqual(r.closed, [42], 'the third fd is over the limit');
  r.unit.stop({ restart: true });
  r.kill(15);
  r.unit.start();
  assert.deepEqual(r.passed.at(-1), [40, 41]);
  r.unit.onNotify({ senderPid: 101, ready: true, fdStoreRemove: true, fdName: 'state' });
  assert.deepEqual(r.closed, [42, 41, 40]);
  r.unit.onNotify({ senderPid: 101, storeFds: [50], fdName: 'x' });
  r.unit.stop();
  r.kill(15);
  assert.deepEqual(r.closed, [42, 41, 40, 50]);
  assert.equal(r.unit.fdStore.length, 0);
});
