// The .socket state machine with an accept thread (SocketHost.startFastAccept, the Accept=yes
// fast path), on fakes and virtual time: the thread replaces the readiness watch, its records
// drive the counters, MaxConnections= refusals are counted and logged, TriggerLimit=/PollLimit=
// and accept failures pause it and resume it, and a stop, a re-exec hold and a host without a
// fast path do what they do with a watch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUnitText } from '../../src/units/unit-loader';
import { SocketUnit, type SocketHost } from '../../src/units/socket';
import type { FastAccept, FastAcceptEvents } from '../../src/core/accept-fast-path';
import { FakeNativeSocket } from '../helpers/fake-socket';
import { recordingLogger } from '../helpers/logger';
import { VirtualClock } from '../helpers/virtual-clock';

interface Rig {
  unit: SocketUnit;
  native: FakeNativeSocket;
  clock: VirtualClock;
  calls: string[];
  events: () => FastAcceptEvents;
  logs: () => string[];
  /** The MaxConnections= the thread got at start and every change since. */
  limits: number[];
}

function rig(socket: string, fast = true): Rig {
  const clock = new VirtualClock();
  const native = new FakeNativeSocket();
  const calls: string[] = [];
  const limits: number[] = [];
  const logger = recordingLogger();
  let events: FastAcceptEvents | undefined;
  const host: SocketHost = {
    native,
    userId: () => undefined,
    groupId: () => undefined,
    spawn: () => ({ ok: true, pid: 1 }),
    signal: () => undefined,
    signalGroup: () => 0,
    unitStatus: () => undefined,
    startService: () => ({ ok: false, reason: 'not here' }),
    startConnection: () => {
      calls.push('startConnection');
      return { ok: true };
    },
    symlink: () => undefined,
    unlink: () => undefined,
    setTimer: clock.setTimer,
    now: clock.now,
    jobFinished: () => undefined,
    stateChanged: () => undefined,
    ...(fast
      ? {
          startFastAccept: (fd: number, e: FastAcceptEvents, max: number): FastAccept => {
            calls.push(`start ${fd}`);
            limits.push(max);
            events = e;
            return {
              pause: () => void calls.push('pause'),
              resume: () => void calls.push('resume'),
              close: () => void calls.push('close'),
              setMaxConnections: (m) => void limits.push(m),
            };
          },
        }
      : {}),
    log: logger.logger,
  };
  const file = parseUnitText('echo.socket', socket, '/units/echo.socket');
  assert.equal(file.loadState, 'loaded', JSON.stringify(file.diagnostics));
  const unit = new SocketUnit('echo.socket', file, host);
  return {
    unit,
    native,
    clock,
    calls,
    events: () => {
      assert.ok(events, 'the accept thread was started');
      return events;
    },
    logs: () => logger.lines.map((r) => String(r.msg)),
    limits,
  };
}

const SOCKET = '[Socket]\nListenStream=127.0.0.1:7000\nAccept=yes\n';

test('the accept thread takes the place of the watch; its records drive the counters', () => {
  const r = rig(`${SOCKET}MaxConnections=2\n`);
  assert.equal(r.unit.start(), 'done');
  assert.equal(r.unit.state, 'listening');
  const fd = r.native.openListeners()[0]?.fd;
  assert.equal(r.calls[0], `start ${fd}`);
  assert.ok(!r.calls.includes('startConnection'));
  const e = r.events();
  assert.equal(e.woken(), true);
  assert.equal(e.nextInstance(), 0);
  assert.equal(e.nextInstance(), 1);
  e.connection(true);
  e.connection(true);
  e.refused({ family: 'inet', host: '127.0.0.1', port: 40000 }, 2);
  assert.equal(r.unit.nConnections, 2);
  assert.equal(r.unit.nRefused, 1);
  assert.ok(
    r
      .logs()
      .some((m) =>
        /refusing connection from 127\.0\.0\.1:40000: too many connections \(2, MaxConnections=2\)/.test(m),
      ),
  );
  e.connection(false);
  assert.ok(
    r.unit.statusLines().some((l) => /Accepted: 2; Connected: 1 \(MaxConnections=2\); Refused: 1/.test(l)),
    r.unit.statusLines().join('\n'),
  );
});

test('TriggerLimit=: the thread pauses, and resumes when the window is over', () => {
  const r = rig(`${SOCKET}TriggerLimitIntervalSec=2s\nTriggerLimitBurst=3\nPollLimitIntervalSec=0\n`);
  r.unit.start();
  const e = r.events();
  for (let i = 0; i < 3; i++) e.connection(true);
  assert.ok(!r.calls.includes('pause'));
  e.connection(true);
  assert.ok(r.calls.includes('pause'));
  assert.equal(r.unit.pause?.kind, 'trigger-limit');
  r.calls.length = 0;
  r.clock.advance(2500);
  assert.deepEqual(r.calls, ['resume']);
  assert.equal(r.unit.pause, undefined);
});

test('PollLimit=: too many wake-ups pause it until the window ends', () => {
  const r = rig(`${SOCKET}PollLimitIntervalSec=1s\nPollLimitBurst=2\nTriggerLimitIntervalSec=0\n`);
  r.unit.start();
  const e = r.events();
  assert.equal(e.woken(), true);
  assert.equal(e.woken(), true);
  assert.equal(e.woken(), false);
  assert.equal(r.unit.pause?.kind, 'poll-limit');
  assert.ok(r.calls.includes('pause'));
  r.clock.advance(1000);
  assert.equal(r.calls.at(-1), 'resume');
});

test('an accept failure (EMFILE) pauses for a second, logged', () => {
  const r = rig(SOCKET);
  r.unit.start();
  r.events().acceptFailed({ code: 'EMFILE', message: 'EMFILE: too many open files, accept4' });
  assert.equal(r.unit.pause?.kind, 'accept-failed');
  assert.ok(r.logs().some((m) => /accept failed: EMFILE/.test(m)));
  // At least a second, and the back-off of the trigger window (2 s by default).
  r.clock.advance(2000);
  assert.equal(r.calls.at(-1), 'resume');
});

test('stop closes the thread before the fd; a re-exec hold pauses and a release resumes it', () => {
  const r = rig(SOCKET);
  r.unit.start();
  r.calls.length = 0;
  r.unit.holdTraffic();
  r.unit.releaseTraffic();
  assert.deepEqual(r.calls, ['pause', 'resume']);
  r.calls.length = 0;
  assert.equal(r.unit.stop(), 'done');
  assert.equal(r.calls[0], 'pause');
  assert.ok(r.calls.includes('close'));
  assert.equal(r.native.openListeners().length, 0);
});

test("instances adopted after a re-exec lower the thread's MaxConnections= until they end", () => {
  const r = rig(`${SOCKET}MaxConnections=10\n`);
  const releases = [r.unit.adoptConnection(), r.unit.adoptConnection()];
  r.unit.start();
  assert.deepEqual(r.limits, [8]);
  releases[0]?.();
  releases[0]?.();
  releases[1]?.();
  assert.deepEqual(r.limits, [8, 9, 10]);
  assert.equal(r.unit.nConnections, 0);
});

test('a host without a fast path (or one that declines) watches the fd as before', () => {
  const r = rig(SOCKET, false);
  r.unit.start();
  assert.equal(r.unit.state, 'listening');
  assert.deepEqual(r.calls, []);
});
