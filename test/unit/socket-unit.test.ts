// The .socket state machine on fakes: FakeNativeSocket for the kernel side, a host that records
// service starts and instances, virtual time for the limits. Readiness wake-ups come on a later
// tick (as from the real addon), so the tests await `ticks()` after a client connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AcceptedConnection, SocketAddress } from '../../src/native/socket-addon';
import type { ExecCommand } from '../../src/units/config-types';
import type { SpawnResult } from '../../src/units/service';
import { parseUnitText } from '../../src/units/unit-loader';
import { SocketUnit, type SocketHost, type SocketState, type UnitStatusView } from '../../src/units/socket';
import { FakeNativeSocket } from '../helpers/fake-socket';
import { silentLogger } from '../helpers/logger';
import { VirtualClock } from '../helpers/virtual-clock';

const ticks = async (n = 4): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

interface Instance {
  name: string;
  conn: AcceptedConnection;
  ended: () => void;
}

interface Rig {
  unit: SocketUnit;
  native: FakeNativeSocket;
  clock: VirtualClock;
  states: SocketState[];
  jobs: string[];
  spawned: { pid: number; path: string }[];
  starts: string[];
  instances: Instance[];
  /** The service as the socket sees it; tests change it and call unit.onUnitChanged. */
  service: UnitStatusView;
  /** What the next startService() answers. */
  startAnswer: { ok: true; result: string } | { ok: false; reason: string };
  /** Instances fail to start with this reason (the unit could not be loaded). */
  instanceFailure?: string;
  exitControl(status?: number): void;
  fd(i?: number): number;
}

function rig(text: string, name = 'web.socket'): Rig {
  const clock = new VirtualClock();
  const native = new FakeNativeSocket();
  let nextPid = 500;
  const r: Omit<Rig, 'unit'> & { unit?: SocketUnit } = {
    native,
    clock,
    states: [],
    jobs: [],
    spawned: [],
    starts: [],
    instances: [],
    service: { active: 'inactive', load: 'loaded', sub: 'dead', hasJob: false },
    startAnswer: { ok: true, result: 'done' },
    exitControl: (status = 0) => {
      const pid = r.spawned.at(-1)?.pid as number;
      r.unit?.onExit({ pid, code: 'exited', status });
    },
    fd: (i = 0) => native.openListeners()[i]?.fd as number,
  };
  const host: SocketHost = {
    native,
    userId: (n) => (n === 'nobody' ? 65534 : undefined),
    groupId: (n) => (n === 'nogroup' ? 65534 : undefined),
    spawn(cmd: ExecCommand): SpawnResult {
      const pid = nextPid++;
      r.spawned.push({ pid, path: cmd.argv.join(' ') });
      return { ok: true, pid };
    },
    signal: () => undefined,
    signalGroup: () => 0,
    unitStatus: () => r.service,
    startService(n) {
      r.starts.push(n);
      const a = r.startAnswer;
      if (!a.ok) return a;
      r.service = { ...r.service, hasJob: true };
      return { ok: true, done: Promise.resolve(a.result) };
    },
    startConnection(n, conn, ended) {
      if (r.instanceFailure !== undefined) return { ok: false, reason: r.instanceFailure };
      r.instances.push({ name: n, conn, ended });
      return { ok: true };
    },
    symlink: () => undefined,
    unlink: () => undefined,
    setTimer: clock.setTimer,
    now: clock.now,
    jobFinished: (end) => r.jobs.push(end),
    stateChanged: (_from, to) => r.states.push(to),
    log: silentLogger(),
  };
  const file = parseUnitText(name, text, `/units/${name}`);
  assert.equal(file.loadState, 'loaded', JSON.stringify(file.diagnostics));
  r.unit = new SocketUnit(name, file, host);
  return r as Rig;
}

/** The service took the sockets and runs; then it exits. */
function serviceRuns(r: Rig): void {
  r.service = { active: 'active', load: 'loaded', sub: 'running', hasJob: false };
  r.unit.onUnitChanged('web.service');
}

function serviceExits(r: Rig, failed = false): void {
  r.service = {
    active: failed ? 'failed' : 'inactive',
    load: 'loaded',
    sub: failed ? 'failed' : 'dead',
    hasJob: false,
    result: failed ? 'exit-code' : 'success',
  };
  r.unit.onUnitChanged('web.service');
}

test('start opens every Listen*= in order with the options, then listens; stop closes them', () => {
  const r = rig(
    '[Socket]\nListenStream=127.0.0.1:8080\nListenDatagram=/run/web.dgram\nListenFIFO=/run/web.fifo\nNoDelay=yes\nSocketUser=nobody\nBacklog=7\n',
  );
  assert.equal(r.unit.start(), 'done');
  assert.equal(r.unit.state, 'listening');
  assert.deepEqual(r.states, ['start-chown', 'listening']);
  const files = r.native.openListeners();
  assert.deepEqual(
    files.map((f) => [f.type, f.kind ?? '', f.path ?? '']),
    [
      ['socket', 'stream', ''],
      ['socket', 'dgram', ''],
      ['fifo', '', '/run/web.fifo'],
    ],
  );
  assert.equal(files[0]?.options.noDelay, true);
  assert.equal(files[0]?.options.backlog, 7);
  assert.equal(files[0]?.options.uid, 65534);
  assert.deepEqual(
    r.unit.listenFds().map((f) => f.name),
    ['web.socket', 'web.socket', 'web.socket'],
  );
  assert.equal(r.unit.stop(), 'done');
  assert.equal(r.unit.state, 'dead');
  assert.equal(r.native.openListeners().length, 0);
});

test('ExecStartPre/Post and ExecStopPre/Post run as control processes in their states', () => {
  const r = rig(
    '[Socket]\nListenStream=80\nExecStartPre=/bin/pre\nExecStartPost=/bin/post\nExecStopPre=/bin/stoppre\nExecStopPost=/bin/stoppost\n',
  );
  assert.equal(r.unit.start(), 'pending');
  assert.equal(r.unit.state, 'start-pre');
  assert.equal(r.native.openListeners().length, 0, 'fds are opened after ExecStartPre=');
  r.exitControl();
  assert.equal(r.unit.state, 'start-post');
  assert.equal(r.native.openListeners().length, 1);
  r.exitControl();
  assert.equal(r.unit.state, 'listening');
  assert.deepEqual(r.jobs, ['done']);
  assert.equal(r.unit.stop(), 'pending');
  assert.equal(r.unit.state, 'stop-pre');
  r.exitControl();
  assert.equal(r.unit.state, 'stop-post');
  assert.equal(r.native.openListeners().length, 0, 'fds are closed before ExecStopPost=');
  r.exitControl();
  assert.equal(r.unit.state, 'dead');
  assert.deepEqual(
    r.spawned.map((s) => s.path),
    ['/bin/pre', '/bin/post', '/bin/stoppre', '/bin/stoppost'],
  );
  assert.deepEqual(r.jobs, ['done', 'done']);
});

test('a failing ExecStartPre= fails the start; the fds are never opened', () => {
  const r = rig('[Socket]\nListenStream=80\nExecStartPre=/bin/false\n');
  assert.equal(r.unit.start(), 'pending');
  r.exitControl(1);
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'exit-code');
  assert.deepEqual(r.jobs, ['failed']);
  assert.equal(r.native.calls.filter((c) => c[0] === 'listen').length, 0);
});

test('a port in use fails this unit with the errno in status; what was opened is closed again', () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:81\nListenStream=127.0.0.1:80\n');
  r.native.listen('stream', { family: 'inet', host: '127.0.0.1', port: 80 }, {});
  const outcome = r.unit.start();
  assert.equal(typeof outcome, 'object');
  assert.match((outcome as { reason: string }).reason, /ListenStream=127\.0\.0\.1:80: .*EADDRINUSE/);
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'resources');
  assert.equal(r.unit.lastError?.code, 'EADDRINUSE');
  assert.equal(r.unit.lastError?.syscall, 'bind');
  assert.equal(r.native.openListeners().length, 1, 'only the other program’s socket is left');
  assert.ok(
    r.unit.statusLines().some((l) => /Error: ListenStream=127\.0\.0\.1:80: bind: .*\(EADDRINUSE\)/.test(l)),
  );
});

test('Accept=no: traffic starts the service once, the watch pauses, and the socket listens again when it exits', async () => {
  const r = rig('[Socket]\nListenStream=80\n');
  r.unit.start();
  const fd = r.fd();
  r.native.connect(fd);
  await ticks();
  assert.deepEqual(r.starts, ['web.service']);
  assert.equal(r.unit.state, 'running');
  const watch = r.native.files.get(fd)?.watch;
  assert.equal(watch?.paused, true, 'the service owns the socket now');
  serviceRuns(r);
  await ticks();
  assert.deepEqual(r.starts, ['web.service'], 'one start, however long the connection waits');
  // The service accepts what was queued, then exits.
  r.native.accept(fd);
  serviceExits(r);
  assert.equal(r.unit.state, 'listening');
  assert.equal(watch?.paused, false);
  r.native.connect(fd);
  await ticks();
  assert.deepEqual(r.starts, ['web.service', 'web.service']);
  assert.equal(r.unit.nTriggers, 2);
});

test('Accept=no: a start already on its way (a restart) is not started again, and the sockets stay with it', async () => {
  const r = rig('[Socket]\nListenStream=80\n');
  r.unit.start();
  serviceRuns(r);
  assert.equal(r.unit.state, 'running');
  // Restart: the service goes down while its restart job is still installed.
  r.service = { active: 'inactive', load: 'loaded', sub: 'dead', hasJob: true };
  r.unit.onUnitChanged('web.service');
  assert.equal(r.unit.state, 'running', 'the socket stays with the service during its restart');
  r.native.connect(r.fd());
  await ticks();
  assert.deepEqual(r.starts, []);
  serviceRuns(r);
  assert.equal(r.unit.state, 'running');
});

test('Accept=no: repeated failures hit the trigger limit: polling pauses and retries, the socket is not failed', async () => {
  const r = rig('[Socket]\nListenStream=80\nTriggerLimitIntervalSec=2s\nTriggerLimitBurst=3\n');
  r.unit.start();
  const fd = r.fd();
  r.native.connect(fd); // never accepted: the service keeps failing
  for (let i = 0; i < 3; i++) {
    await ticks();
    serviceExits(r, true);
  }
  await ticks();
  assert.equal(r.starts.length, 3);
  assert.equal(r.unit.state, 'listening');
  assert.equal(r.unit.activeState(), 'active');
  assert.equal(r.unit.pause?.kind, 'trigger-limit');
  assert.match(r.unit.pause?.reason ?? '', /trigger limit hit: more than 3 activations in 2000 ms/);
  assert.ok(r.unit.statusLines().some((l) => /Paused: trigger limit hit/.test(l)));
  assert.equal(r.native.files.get(fd)?.watch?.paused, true);
  await ticks();
  assert.equal(r.starts.length, 3, 'nothing is started while paused');
  r.clock.advance(r.unit.pause ? r.unit.pause.until - r.clock.now() : 0);
  assert.equal(r.unit.pause, undefined, 'the retry timer resumed polling');
  await ticks();
  assert.equal(r.starts.length, 4, 'and the next connection starts the service again');
});

test('Accept=no: a start the job engine refuses pauses with the reason, then retries', async () => {
  const r = rig('[Socket]\nListenStream=80\n');
  r.unit.start();
  r.startAnswer = { ok: false, reason: 'Unit web.service is masked.' };
  r.native.connect(r.fd());
  await ticks();
  assert.equal(r.unit.pause?.kind, 'activation-failed');
  assert.match(r.unit.pause?.reason ?? '', /masked/);
  r.startAnswer = { ok: true, result: 'done' };
  r.clock.advance(60_000);
  await ticks();
  assert.equal(r.starts.length, 2);
  assert.equal(r.unit.state, 'running');
});

test('the poll limit pauses wake-ups until its window ends', async () => {
  const r = rig(
    '[Socket]\nListenStream=80\nAccept=yes\nPollLimitIntervalSec=1s\nPollLimitBurst=2\nTriggerLimitIntervalSec=0\n',
  );
  r.unit.start();
  const fd = r.fd();
  for (let i = 0; i < 3; i++) {
    r.native.connect(fd);
    await ticks();
  }
  assert.equal(r.instances.length, 2);
  assert.equal(r.unit.pause?.kind, 'poll-limit');
  r.clock.advance(1000);
  await ticks();
  assert.equal(r.instances.length, 3);
});

test('Accept=yes: one instance per connection, named as systemd names it', async () => {
  const r = rig('[Socket]\nListenStream=[::]:2222\nAccept=yes\n', 'sshd.socket');
  r.unit.start();
  const fd = r.fd();
  const from = (host: string, port: number): SocketAddress => ({ family: 'inet6', host, port });
  r.native.connect(fd, { remote: from('::ffff:10.0.0.7', 40001) });
  r.native.connect(fd, { remote: from('2001:db8::5', 40002) });
  await ticks();
  // The fake reports the bound address as the local end: [::]:2222.
  assert.deepEqual(
    r.instances.map((i) => i.name),
    ['sshd@0-:::2222-::ffff:10.0.0.7:40001.service', 'sshd@1-:::2222-2001:db8::5:40002.service'],
  );
  assert.equal(r.unit.nAccepted, 2);
  assert.equal(r.unit.nConnections, 2);
  assert.equal(r.unit.state, 'listening', 'Accept=yes keeps listening');
  r.instances[0]?.ended();
  r.instances[0]?.ended(); // twice is harmless
  assert.equal(r.unit.nConnections, 1);
});

test('Accept=yes on a unix socket: instances named by the peer pid and uid', async () => {
  const r = rig('[Socket]\nListenStream=/run/echo.sock\nAccept=yes\n', 'echo.socket');
  r.unit.start();
  r.native.connect(r.fd(), { peerPid: 4242, peerUid: 1000 });
  await ticks();
  assert.deepEqual(
    r.instances.map((i) => i.name),
    ['echo@0-4242-1000.service'],
  );
});

test('MaxConnections: an exit processed while it looks again takes the connection instead of a refusal', async () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\nMaxConnections=2\n');
  r.unit.start();
  const fd = r.fd();
  for (let i = 0; i < 3; i++) r.native.connect(fd);
  await ticks();
  assert.equal(r.instances.length, 2);
  r.clock.advance(5);
  await ticks();
  r.instances[0]?.ended();
  r.clock.advance(5);
  await ticks();
  assert.equal(r.instances.length, 3);
  assert.equal(r.unit.nRefused, 0);
});

test('MaxConnections: the excess is accepted and closed (refused), counted, and the socket keeps going', async () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\nMaxConnections=2\n');
  r.unit.start();
  const fd = r.fd();
  for (let i = 0; i < 5; i++) r.native.connect(fd);
  await ticks();
  assert.equal(r.instances.length, 2);
  assert.equal(r.unit.nRefused, 0, 'at the limit it looks again a moment later before refusing');
  for (let i = 0; i < 12; i++) {
    r.clock.advance(5);
    await ticks();
  }
  assert.equal(r.unit.nRefused, 3);
  assert.equal(r.native.files.get(fd)?.pending.length, 0, 'nothing left waiting in the backlog');
  const open = [...r.native.files.values()].filter((f) => f.type === 'connection').map((f) => f.fd);
  assert.deepEqual(
    open,
    r.instances.map((i) => i.conn.fd),
    'refused connections are closed, accepted ones are the instances’',
  );
  r.instances[0]?.ended();
  r.native.connect(fd);
  await ticks();
  assert.equal(r.instances.length, 3, 'a freed slot is used again');
  assert.ok(
    r.unit.statusLines().some((l) => /Accepted: 3; Connected: 2 \(MaxConnections=2\); Refused: 3/.test(l)),
  );
});

test('MaxConnectionsPerSource counts live instances and releases a source when its instance ends (failed too)', async () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\nMaxConnectionsPerSource=1\n');
  r.unit.start();
  const fd = r.fd();
  const a: SocketAddress = { family: 'inet', host: '10.0.0.1', port: 1 };
  const b: SocketAddress = { family: 'inet', host: '10.0.0.2', port: 1 };
  r.native.connect(fd, { remote: a });
  r.native.connect(fd, { remote: { ...a, port: 2 } });
  r.native.connect(fd, { remote: b });
  await ticks();
  assert.deepEqual(
    r.instances.map((i) => i.conn.remote),
    [a, b],
  );
  assert.equal(r.unit.nRefused, 1);
  // The instance of 10.0.0.1 ends (whether it succeeded or failed, the host calls ended()).
  r.instances[0]?.ended();
  r.native.connect(fd, { remote: { ...a, port: 3 } });
  await ticks();
  assert.equal(r.instances.length, 3, 'the source is free again');
});

test('Accept=yes: a client that went away before accept is a normal end, not a failure', async () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\n');
  r.unit.start();
  const fd = r.fd();
  r.native.connect(fd);
  r.native.failNext('accept', 'ECONNABORTED', 'accept4');
  r.native.connect(fd);
  await ticks();
  assert.equal(r.unit.state, 'listening');
  assert.equal(r.unit.result, 'success');
  assert.equal(r.unit.pause, undefined);
  assert.equal(r.instances.length, 2, 'the failed accept is skipped, what is pending is served');
});

test('Accept=yes: an instance that cannot be started pauses polling with the reason instead of failing the socket', async () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\n');
  r.unit.start();
  r.instanceFailure = 'web@0-....service cannot be loaded: not-found';
  r.native.connect(r.fd());
  await ticks();
  assert.equal(r.unit.state, 'listening');
  assert.equal(r.unit.nConnections, 0);
  assert.equal(r.unit.pause?.kind, 'activation-failed');
});

test('Accept=yes: the trigger limit refuses and pauses, then resumes', async () => {
  const r = rig(
    '[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\nTriggerLimitIntervalSec=1s\nTriggerLimitBurst=2\nPollLimitIntervalSec=0\n',
  );
  r.unit.start();
  const fd = r.fd();
  for (let i = 0; i < 4; i++) r.native.connect(fd);
  await ticks();
  assert.equal(r.instances.length, 2);
  assert.equal(r.unit.nRefused, 1);
  assert.equal(r.unit.pause?.kind, 'trigger-limit');
  assert.equal(r.native.files.get(fd)?.pending.length, 1, 'the rest waits in the backlog while paused');
  r.clock.advance(60_000);
  await ticks();
  assert.equal(r.instances.length, 3);
});

test('properties for show', () => {
  const r = rig('[Socket]\nListenStream=127.0.0.1:80\nAccept=yes\n');
  r.unit.start();
  const p = r.unit.properties();
  assert.deepEqual(p.Listen, [{ type: 'ListenStream', address: '127.0.0.1:80' }]);
  assert.equal(p.NAccepted, 0);
  assert.equal(p.TriggerLimitBurst, 200);
  assert.equal(p.PollLimitBurst, 150);
  assert.deepEqual(p.Triggers, ['web@.service']);
});
