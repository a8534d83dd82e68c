// The Accept=yes fast path's pure parts: which socket + template pairs qualify (a table of cases,
// each with the reason it names), the lightweight FastInstance (states, stop, status, the
// serialized form a re-exec restores from), and AcceptFastPath's handling of the accept thread's
// records on a fake addon (instance names, counters, exits whose status another reaper took).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadedUnitFile, SocketSection } from '../../src/units/config-types';
import { parseUnitText } from '../../src/units/unit-loader';
import {
  AcceptFastPath,
  fastPathEligibility,
  FastInstance,
  type FastAcceptEvents,
  type FastInstanceHost,
} from '../../src/core/accept-fast-path';
import type { AcceptRecord, NativeSocket } from '../../src/native/socket-addon';
import type { ExecPlan } from '../../src/exec/exec-plan';
import { silentLogger } from '../helpers/logger';

function socket(extra = ''): SocketSection {
  const f = parseUnitText(
    'echo.socket',
    `[Socket]\nListenStream=127.0.0.1:7000\nAccept=yes\n${extra}`,
    '/u/echo.socket',
  );
  assert.ok(f.socket);
  return f.socket;
}

/** The template as unit-system.instanceFile() hands it over: stdin the connection by default. */
function template(service: string, unit = ''): LoadedUnitFile {
  const f = parseUnitText('echo@.service', `[Unit]\n${unit}\n[Service]\n${service}\n`, '/u/echo@.service');
  const svc = f.service;
  assert.ok(svc);
  if (svc.stdioDefaulted?.input !== false) svc.exec.standardInput = { kind: 'socket' };
  if (svc.stdioDefaulted?.output !== false && svc.exec.standardInput.kind === 'socket')
    svc.exec.standardOutput = { kind: 'inherit' };
  return f;
}

describe('fastPathEligibility', () => {
  const cases: {
    what: string;
    socket?: string;
    service: string;
    unit?: string;
    specifiers?: boolean;
    reason?: RegExp;
    fds?: number[];
  }[] = [
    {
      what: 'plain cat: stdin, stdout and stderr are the connection',
      service: 'ExecStart=/bin/cat',
      fds: [0, 1, 2],
    },
    {
      what: 'Type=exec and oneshot qualify too',
      service: 'Type=oneshot\nExecStart=/bin/cat',
      fds: [0, 1, 2],
    },
    {
      what: 'stdout and stderr to /dev/null',
      service: 'ExecStart=/bin/cat\nStandardOutput=null\nStandardError=null',
      fds: [0],
    },
    {
      what: 'stderr to the journal needs a pipe',
      service: 'ExecStart=/bin/cat\nStandardError=journal',
      reason: /StandardError=journal/,
    },
    {
      what: 'stdin not the connection',
      service: 'ExecStart=/bin/cat\nStandardInput=null',
      reason: /StandardInput=null/,
    },
    { what: 'ExecStartPre=', service: 'ExecStartPre=/bin/true\nExecStart=/bin/cat', reason: /ExecStartPre=/ },
    { what: 'ExecStopPost=', service: 'ExecStart=/bin/cat\nExecStopPost=/bin/true', reason: /ExecStopPost=/ },
    { what: 'a sandbox', service: 'ExecStart=/bin/cat\nPrivateTmp=yes', reason: /PrivateTmp=/ },
    {
      what: 'ProtectSystem=',
      service: 'ExecStart=/bin/cat\nProtectSystem=strict',
      reason: /ProtectSystem=strict/,
    },
    {
      what: 'RuntimeDirectory=',
      service: 'ExecStart=/bin/cat\nRuntimeDirectory=echo',
      reason: /RuntimeDirectory=/,
    },
    {
      what: 'EnvironmentFile=',
      service: 'ExecStart=/bin/cat\nEnvironmentFile=-/etc/default/echo',
      reason: /EnvironmentFile=/,
    },
    {
      what: '$REMOTE_ADDR on the command line',
      service: 'ExecStart=/bin/echo $REMOTE_ADDR',
      reason: /\$VARIABLES/,
    },
    { what: "':' keeps $ as it is", service: 'ExecStart=:/bin/echo $REMOTE_ADDR', fds: [0, 1, 2] },
    { what: '+ prefix', service: 'ExecStart=+/bin/cat', reason: /prefix/ },
    { what: 'Type=notify', service: 'Type=notify\nExecStart=/bin/cat', reason: /Type=notify/ },
    { what: 'Restart=', service: 'ExecStart=/bin/cat\nRestart=on-failure', reason: /Restart=on-failure/ },
    { what: 'RuntimeMaxSec=', service: 'ExecStart=/bin/cat\nRuntimeMaxSec=5', reason: /RuntimeMaxSec=/ },
    {
      what: 'conditions',
      service: 'ExecStart=/bin/cat',
      unit: 'ConditionPathExists=/etc',
      reason: /Condition/,
    },
    {
      what: 'OnFailure=',
      service: 'ExecStart=/bin/cat',
      unit: 'OnFailure=alert.service',
      reason: /OnFailure=/,
    },
    { what: 'specifiers', service: 'ExecStart=/bin/echo %i', specifiers: true, reason: /specifiers/ },
    {
      what: 'two listening sockets',
      socket: 'ListenStream=127.0.0.1:7001',
      service: 'ExecStart=/bin/cat',
      reason: /2 Listen/,
    },
    {
      what: 'MaxConnectionsPerSource=',
      socket: 'MaxConnectionsPerSource=2',
      service: 'ExecStart=/bin/cat',
      reason: /MaxConnectionsPerSource=/,
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const v = fastPathEligibility(socket(c.socket), template(c.service, c.unit), c.specifiers ?? false);
      if (c.reason === undefined) {
        assert.deepEqual(v, { ok: true, connectionFds: c.fds });
      } else {
        assert.equal(v.ok, false);
        if (!v.ok)
          assert.ok(
            v.reasons.some((r) => c.reason?.test(r)),
            v.reasons.join('; '),
          );
      }
    });
  }

  test('every reason is named, not just the first', () => {
    const v = fastPathEligibility(
      socket(),
      template('ExecStartPre=/bin/true\nExecStart=/bin/cat\nPrivateTmp=yes'),
      true,
    );
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.reasons.length, 3, v.reasons.join('; '));
  });

  test('Accept=no does not qualify', () => {
    const f = parseUnitText('web.socket', '[Socket]\nListenStream=80\n', '/u/web.socket');
    assert.ok(f.socket);
    const v = fastPathEligibility(f.socket, template('ExecStart=/bin/cat'), false);
    assert.equal(v.ok, false);
  });
});

// ---- FastInstance ------------------------------------------------------------------------------

interface FakeHost extends FastInstanceHost {
  signals: [number, number][];
  groupSignals: [string, number][];
  changes: [string, string][];
  jobs: [string, string][];
  timers: (() => void)[];
  forgotten: string[];
}

function fakeHost(): FakeHost {
  const h: FakeHost = {
    signals: [],
    groupSignals: [],
    changes: [],
    jobs: [],
    timers: [],
    forgotten: [],
    forget: (u) => void h.forgotten.push(u.name),
    signal: (pid, sig) => {
      h.signals.push([pid, sig]);
      return true;
    },
    signalGroup: (dir, sig) => void h.groupSignals.push([dir, sig]),
    setTimer: (_ms, fn) => {
      h.timers.push(fn);
      return () => {
        h.timers = h.timers.filter((t) => t !== fn);
      };
    },
    stateChanged: (_u, from, to) => void h.changes.push([from, to]),
    jobFinished: (unit, end) => void h.jobs.push([unit, end]),
  };
  return h;
}

const NAME = 'echo@3-127.0.0.1:7000-127.0.0.1:40000.service';
const REMOTE = { family: 'inet' as const, host: '127.0.0.1', port: 40000 };

describe('FastInstance', () => {
  test('a live instance: active/running, its pid, its connection, its group', () => {
    const h = fakeHost();
    const u = new FastInstance(
      NAME,
      template('ExecStart=/bin/cat'),
      h,
      4242,
      '/cg/echo@.service.slot-f1',
      REMOTE,
      1000,
    );
    assert.equal(u.activeState(), 'active');
    assert.equal(u.subState(), 'running');
    assert.equal(u.properties().MainPID, 4242);
    assert.equal(u.properties().ControlGroup, '/cg/echo@.service.slot-f1');
    const lines = u.statusLines().join('\n');
    assert.match(lines, /Main PID: 4242 \(\/bin\/cat\)/);
    assert.match(lines, /from 127\.0\.0\.1:40000/);
    assert.equal(u.file.name, NAME);
    assert.equal(u.file.instance, '3-127.0.0.1:7000-127.0.0.1:40000');
    assert.equal(u.start(), 'done');
  });

  test('a clean exit ends it quietly; a failing one is failed and told', () => {
    const h = fakeHost();
    const ok = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 1, undefined, REMOTE, 0);
    ok.exited('exited', 0);
    assert.equal(ok.activeState(), 'inactive');
    assert.deepEqual(h.changes, []);
    const bad = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 2, undefined, REMOTE, 0);
    bad.exited('exited', 3);
    assert.equal(bad.activeState(), 'failed');
    assert.equal(bad.result, 'exit-code');
    assert.deepEqual(h.changes, [['running', 'failed']]);
    const pipe = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 3, undefined, REMOTE, 0);
    pipe.exited('killed', 13);
    assert.equal(pipe.activeState(), 'inactive', 'SIGPIPE is a clean end, as in systemd');
    const listed = new FastInstance(
      NAME,
      template('ExecStart=/bin/cat\nSuccessExitStatus=3'),
      h,
      4,
      undefined,
      REMOTE,
      0,
    );
    listed.exited('exited', 3);
    assert.equal(listed.activeState(), 'inactive');
  });

  test('stop: SIGTERM and SIGCONT to the main process and the group, the job ends with the exit', () => {
    const h = fakeHost();
    const u = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 77, '/cg/slot', REMOTE, 0);
    assert.equal(u.stop(), 'pending');
    assert.equal(u.activeState(), 'deactivating');
    assert.deepEqual(h.signals, [
      [77, 15],
      [77, 18],
    ]);
    assert.deepEqual(h.groupSignals, [['/cg/slot', 15]]);
    u.exited('killed', 15);
    assert.equal(u.activeState(), 'inactive');
    assert.deepEqual(h.jobs, [[NAME, 'done']]);
    assert.deepEqual(h.changes, [
      ['running', 'stop-sigterm'],
      ['stop-sigterm', 'dead'],
    ]);
    assert.equal(h.timers.length, 0, 'the stop timeout is cancelled');
  });

  test('stop: after TimeoutStopSec= SIGKILL, and the result says timeout', () => {
    const h = fakeHost();
    const u = new FastInstance(
      NAME,
      template('ExecStart=/bin/cat\nTimeoutStopSec=1'),
      h,
      77,
      undefined,
      REMOTE,
      0,
    );
    u.stop();
    assert.equal(h.timers.length, 1);
    h.timers[0]?.();
    assert.equal(u.subState(), 'stop-sigkill');
    assert.deepEqual(h.signals.at(-1), [77, 9]);
    u.exited('killed', 9);
    assert.equal(u.activeState(), 'failed');
    assert.equal(u.result, 'timeout');
  });

  test('serialized as ServiceUnit writes a running instance (a re-exec adopts it as one)', () => {
    const h = fakeHost();
    const u = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 4242, undefined, REMOTE, 123);
    const data = u.serialize({ kind: 'reexec', carryFd: () => -1, startTimeOf: (pid) => `start-of-${pid}` });
    assert.deepEqual(data, {
      state: 'running',
      result: 'success',
      nRestarts: 0,
      since: 123,
      mainPid: 4242,
      mainStart: 'start-of-4242',
      ready: true,
      fdStore: [],
    });
    u.exited('exited', 0);
    assert.equal(
      u.serialize({ kind: 'checkpoint', carryFd: () => -1, startTimeOf: () => undefined }),
      undefined,
    );
  });

  test('reset-failed: a failed instance goes; a live one stays', () => {
    const h = fakeHost();
    const bad = new FastInstance(NAME, template('ExecStart=/bin/cat'), h, 5, undefined, REMOTE, 0);
    bad.resetFailed();
    assert.deepEqual(h.forgotten, []);
    bad.exited('exited', 1);
    bad.resetFailed();
    assert.equal(bad.activeState(), 'inactive');
    assert.deepEqual(h.forgotten, [NAME]);
  });

  test('an instance whose program never ran is failed with the reason', () => {
    const u = new FastInstance(
      NAME,
      template('ExecStart=/nope'),
      fakeHost(),
      undefined,
      undefined,
      REMOTE,
      0,
    );
    u.failure = 'failed at step EXEC: No such file or directory (ENOENT) /nope';
    assert.equal(u.activeState(), 'failed');
    assert.match(u.statusLines().join('\n'), /Error: failed at step EXEC/);
    assert.equal(u.stop(), 'done');
  });
});

// ---- AcceptFastPath on a fake addon ---------------------------------------------------------------

interface FakeAddon {
  native: NativeSocket;
  deliver: (r: AcceptRecord[]) => void;
  calls: string[];
  /** What the spawner's signalGroup answers (null: the spawner is gone). */
  groupAnswer: boolean | null;
}

function fakeAddon(): FakeAddon {
  let onRecords: ((r: AcceptRecord[]) => void) | undefined;
  const calls: string[] = [];
  const fail = (): never => {
    throw new Error('not in this fake');
  };
  const native: NativeSocket = {
    listen: fail,
    openFifo: fail,
    openSpecial: fail,
    openMessageQueue: fail,
    accept: fail,
    localAddress: fail,
    watch: fail,
    close: fail,
    acceptSpawn: (_fd, _plan, _options, cb) => {
      onRecords = cb;
      return {
        pause: () => void calls.push('pause'),
        resume: () => void calls.push('resume'),
        close: () => void calls.push('close'),
        signal: (pid: number, sig: number) => {
          calls.push(`signal ${pid} ${sig}`);
          return true;
        },
        signalGroup: (pid: number, sig: number) => {
          calls.push(`group ${pid} ${sig}`);
          return addon.groupAnswer;
        },
        live: () => 0,
        setMaxConnections: (max: number) => void calls.push(`max ${max}`),
        flush: () => undefined,
      };
    },
  };
  const addon: FakeAddon = { native, deliver: (r) => onRecords?.(r), calls, groupAnswer: true };
  return addon;
}

function fastPath(native: NativeSocket) {
  const units = new Map<string, FastInstance>();
  const timers: (() => void)[] = [];
  /** Groups signaled by path (the daemon's cgroup tree). */
  const byPath: [string, number][] = [];
  const path = new AcceptFastPath({
    native: () => native,
    addUnit: (u) => void units.set(u.name, u),
    removeUnit: (u) => void units.delete(u.name),
    instanceHost: {
      signalGroup: (dir, sig) => void byPath.push([dir, sig]),
      setTimer: (_ms, fn) => {
        timers.push(fn);
        return () => undefined;
      },
      stateChanged: () => undefined,
      jobFinished: () => undefined,
    },
    logger: silentLogger(),
  });
  return { path, units, timers, byPath };
}

function events(): FastAcceptEvents & { n: number; live: number; refusedCount: number } {
  const e = {
    n: 0,
    live: 0,
    refusedCount: 0,
    woken: () => true,
    nextInstance: () => e.n++,
    connection: (up: boolean) => void (e.live += up ? 1 : -1),
    refused: () => void e.refusedCount++,
    acceptFailed: () => undefined,
  };
  return e;
}

const PLAN: ExecPlan = {
  path: '/bin/cat',
  argv: ['cat'],
  env: [],
  rlimits: [],
  fds: [],
  newSession: true,
  noNewPrivileges: false,
  privateNetwork: false,
  mounts: [],
};
const LOCAL = { family: 'inet' as const, host: '127.0.0.1', port: 7000 };
const started = (seq: number, pid: number, cgroup?: string): AcceptRecord => ({
  kind: 'started',
  seq,
  at: Date.now() - 10,
  pid,
  local: LOCAL,
  remote: { ...REMOTE, port: 40000 + seq },
  peerPid: -1,
  peerUid: -1,
  ...(cgroup !== undefined ? { cgroup } : {}),
});

describe('AcceptFastPath', () => {
  test("a stop signals the instance's group through the accept thread, by path only once it is gone", () => {
    for (const [answer, expectByPath] of [
      [true, []],
      // The slot went back to the pool at the exit and holds a later instance: not signaled.
      [false, []],
      [null, [['/cg/slot-f1', 15]]],
    ] as const) {
      const a = fakeAddon();
      a.groupAnswer = answer;
      const { path, units, byPath } = fastPath(a.native);
      path.start(
        'echo.socket',
        5,
        template('ExecStart=/bin/cat'),
        PLAN,
        { maxConnections: 64, connectionFds: [0, 1] },
        events(),
      );
      a.deliver([started(1, 100, '/cg/slot-f1')]);
      const [unit] = units.values();
      unit.stop();
      assert.ok(
        a.calls.includes('group 100 15'),
        `asked the thread (${String(answer)}): ${a.calls.join(', ')}`,
      );
      assert.deepEqual(byPath, expectByPath, `answer ${String(answer)}`);
    }
  });

  test('records become instances named as systemd names them, and go once over', () => {
    const a = fakeAddon();
    const { path, units } = fastPath(a.native);
    const ev = events();
    const handle = path.start(
      'echo.socket',
      5,
      template('ExecStart=/bin/cat'),
      PLAN,
      { maxConnections: 64, connectionFds: [0, 1] },
      ev,
    );
    assert.ok(handle);
    a.deliver([started(1, 100), started(2, 101)]);
    assert.deepEqual(
      [...units.keys()],
      ['echo@0-127.0.0.1:7000-127.0.0.1:40001.service', 'echo@1-127.0.0.1:7000-127.0.0.1:40002.service'],
    );
    assert.equal(ev.live, 2);
    a.deliver([
      { kind: 'exited', pid: 100, code: 'exited', status: 0 },
      { kind: 'refused', seq: 3, at: 0, peerPid: -1, peerUid: -1, live: 1 },
    ]);
    assert.deepEqual([...units.keys()], ['echo@1-127.0.0.1:7000-127.0.0.1:40002.service']);
    assert.equal(ev.live, 1);
    assert.equal(ev.refusedCount, 1);
    handle.pause();
    handle.close();
    assert.deepEqual(a.calls, ['pause', 'close']);
  });

  test('a failed spawn is a failed instance with the reason', () => {
    const a = fakeAddon();
    const { path, units } = fastPath(a.native);
    path.start(
      'echo.socket',
      5,
      template('ExecStart=/nope'),
      PLAN,
      { maxConnections: 64, connectionFds: [0] },
      events(),
    );
    a.deliver([
      {
        kind: 'failed',
        seq: 1,
        at: 0,
        local: LOCAL,
        remote: REMOTE,
        peerPid: -1,
        peerUid: -1,
        error: Object.assign(new Error('failed at step EXEC: No such file or directory'), {
          code: 'ENOENT',
          errno: -2,
          syscall: 'execve',
          step: 'EXEC',
          path: '/nope',
        }),
      },
    ]);
    const u = [...units.values()][0];
    assert.ok(u);
    assert.equal(u.activeState(), 'failed');
    assert.equal(u.failure, 'failed at step EXEC: No such file or directory (ENOENT) /nope');
  });

  test('an exit another reaper took: its status comes through claimExit, before or after', () => {
    const a = fakeAddon();
    const { path, units, timers } = fastPath(a.native);
    const ev = events();
    path.start(
      'echo.socket',
      5,
      template('ExecStart=/bin/cat'),
      PLAN,
      { maxConnections: 64, connectionFds: [0] },
      ev,
    );
    // After: the thread says "gone, status unknown", then the spawn addon's reaper reports it.
    a.deliver([started(1, 200)]);
    const err = Object.assign(new Error('ECHILD'), { code: 'ECHILD', errno: -10, syscall: 'waitid' });
    a.deliver([{ kind: 'exited', pid: 200, code: 'killed', status: 0, error: err }]);
    assert.equal(units.size, 1, 'waits for the status');
    assert.equal(path.claimExit({ pid: 200, code: 'exited', status: 4 }), true);
    assert.equal([...units.values()][0]?.result, 'exit-code');
    // Before: the reaper's report arrives first (even before the record that started it).
    assert.equal(path.claimExit({ pid: 201, code: 'exited', status: 0 }), false);
    a.deliver([started(2, 201), { kind: 'exited', pid: 201, code: 'killed', status: 0, error: err }]);
    assert.ok(
      ![...units.keys()].some((n) => n.includes(':40002')),
      'ended cleanly with the remembered status',
    );
    // A status the reaper reports while the thread's record is still on its way: the instance
    // ends with the record (its slot group is free by then), with that status.
    a.deliver([started(3, 202)]);
    assert.equal(path.claimExit({ pid: 202, code: 'killed', status: 9 }), true);
    assert.ok(
      [...units.keys()].some((n) => n.includes(':40003')),
      'still there until the record',
    );
    a.deliver([{ kind: 'exited', pid: 202, code: 'killed', status: 0, error: err }]);
    assert.equal([...units.values()].find((u) => u.name.includes(':40003'))?.result, 'signal');
    // The late fallback of the first one changes nothing any more.
    for (const t of timers) t();
    assert.equal(ev.live, 0);
  });

  test('at shutdown, what is still running gets SIGKILL', () => {
    const a = fakeAddon();
    const { path } = fastPath(a.native);
    path.start(
      'echo.socket',
      5,
      template('ExecStart=/bin/cat'),
      PLAN,
      { maxConnections: 64, connectionFds: [0] },
      events(),
    );
    a.deliver([started(1, 300), started(2, 301), { kind: 'exited', pid: 300, code: 'exited', status: 0 }]);
    path.killRemaining();
    assert.deepEqual(a.calls, ['signal 301 9']);
  });

  test('no fast path in the addon: undefined, the caller accepts in JavaScript', () => {
    const a = fakeAddon();
    delete a.native.acceptSpawn;
    const { path } = fastPath(a.native);
    assert.equal(
      path.start(
        'echo.socket',
        5,
        template('ExecStart=/bin/cat'),
        PLAN,
        { maxConnections: 64, connectionFds: [0] },
        events(),
      ),
      undefined,
    );
  });
});
