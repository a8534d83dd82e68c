// NotifyRouter with fakes: the drop rules, BARRIER, NotifyAccess= refusals and their rate limit,
// MAINPID= trust, fd ownership (every fd closed exactly once unless a unit takes it), and the
// notifyEvents() Observable in front of it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom, take, toArray } from 'rxjs';
import { NotifyRouter, type NotifyEvent, type NotifyUnit } from '../../src/core/notify-router';
import { notifyEvents, type NotifySourceItem, type ReceivedNotify } from '../../src/events/notify-events';
import type { NativeNotify, NotifyItem } from '../../src/native/notify-addon';
import type { NotifyAccess } from '../../src/units/notify-message';
import { parseNotifyMessage } from '../../src/units/notify-message';
import { FakeNativeNotify, type FakeDatagramOptions } from '../helpers/fake-notify';
import { recordingLogger } from '../helpers/logger';

const ROOT = 0;
const USER = 1000;
const MAIN = 4200;
const CONTROL = 4300;
const CHILD = 4242;
const STRANGER = 9999;
const SELF = 777;

interface Harness {
  fake: FakeNativeNotify;
  router: NotifyRouter;
  events: NotifyEvent[];
  lines: Record<string, unknown>[];
  clock: { now: number };
  lookups: number[];
  /** Makes a datagram (fresh fake fds) and routes it. */
  send(options: FakeDatagramOptions): ReceivedNotify;
}

function unitOf(
  name: string,
  access: NotifyAccess,
  pids: { main?: number; control?: number; cgroup?: number[] } = {},
): NotifyUnit {
  const cgroup = pids.cgroup === undefined ? undefined : new Set(pids.cgroup);
  return {
    name,
    notifyAccess: () => access,
    mainPid: pids.main,
    controlPid: pids.control,
    cgroupPids: () => cgroup,
  };
}

const SERVICE = unitOf('web.service', 'main', {
  main: MAIN,
  control: CONTROL,
  cgroup: [MAIN, CONTROL, CHILD],
});

function received(fake: FakeNativeNotify, options: FakeDatagramOptions): ReceivedNotify {
  const item = fake.datagram(options);
  return {
    sender: { pid: item.pid, uid: item.uid, gid: item.gid, pidfd: item.pidfd },
    fds: item.fds,
    truncated: item.truncated,
    length: item.length,
    message: parseNotifyMessage(item.buffer),
  };
}

function harness(
  unitsForPid: (pid: number) => readonly NotifyUnit[] = (pid) => (pid === STRANGER ? [] : [SERVICE]),
  deliver?: (event: NotifyEvent) => void,
): Harness {
  const fake = new FakeNativeNotify();
  const { logger, lines } = recordingLogger();
  const events: NotifyEvent[] = [];
  const clock = { now: 1_000_000 };
  const lookups: number[] = [];
  const router = new NotifyRouter({
    unitsForPid: (pid) => {
      lookups.push(pid);
      return unitsForPid(pid);
    },
    deliver: (event) => {
      events.push(event);
      deliver?.(event);
    },
    closeFd: (fd) => fake.closeFd(fd),
    pidfdGetPid: (fd) => fake.pidfdGetPid(fd),
    readParent: (pid) =>
      pid === CHILD ? { ppid: MAIN, comm: 'sh' } : pid === MAIN ? { ppid: 1, comm: 'daemon' } : undefined,
    logger,
    selfPid: SELF,
    now: () => clock.now,
  });
  const send = (options: FakeDatagramOptions): ReceivedNotify => {
    const datagram = received(fake, { uid: ROOT, gid: ROOT, pid: MAIN, ...options });
    router.route(datagram);
    return datagram;
  };
  return { fake, router, events, lines, clock, lookups, send };
}

function warnings(lines: Record<string, unknown>[], code?: string): Record<string, unknown>[] {
  return lines.filter((l) => l.level === 40 && (code === undefined || l.code === code));
}

/** Every fd of the datagram was closed exactly once, by the router. */
function assertAllClosed(fake: FakeNativeNotify, datagram: ReceivedNotify): void {
  const all = datagram.sender.pidfd >= 0 ? [...datagram.fds, datagram.sender.pidfd] : datagram.fds;
  for (const fd of all) {
    assert.equal(fake.isOpen(fd), false, `fd ${fd} still open`);
    assert.equal(fake.closeCounts.get(fd), 1, `fd ${fd} closed ${fake.closeCounts.get(fd) ?? 0} times`);
  }
  assert.deepEqual(fake.badCloses, []);
}

describe('drops', () => {
  test('BARRIER=1 with one fd: the fd is closed at once, nothing else happens', () => {
    const h = harness();
    const d = h.send({ payload: 'BARRIER=1', fds: 1 });
    assertAllClosed(h.fake, d);
    assert.deepEqual(h.events, []);
    assert.deepEqual(h.lookups, [], 'a barrier needs no unit');
    assert.equal(h.router.counters.barriers, 1);
    assert.deepEqual(warnings(h.lines), []);
  });

  test('a malformed barrier is dropped whole, its fds closed, with a warning (as systemd)', () => {
    for (const [payload, fds] of [
      ['BARRIER=1\nREADY=1', 1],
      ['BARRIER=1', 0],
      ['BARRIER=1', 3],
    ] as const) {
      const h = harness();
      const d = h.send({ payload, fds });
      assertAllClosed(h.fake, d);
      assert.deepEqual(h.events, [], payload);
      assert.equal(warnings(h.lines, 'ERR_NOTIFY_BAD_BARRIER').length, 1);
    }
  });

  test('without valid credentials: dropped, fds closed, no lookup', () => {
    for (const creds of [{ pid: -1, pidfd: false }, { pid: 0, pidfd: false }, { uid: -1 }]) {
      const h = harness();
      const d = h.send({ payload: 'READY=1', fds: 2, ...creds });
      assertAllClosed(h.fake, d);
      assert.deepEqual(h.events, []);
      assert.deepEqual(h.lookups, []);
      assert.equal(h.router.counters.dropped.ERR_NOTIFY_NO_CREDENTIALS, 1);
    }
  });

  test('truncated (MSG_TRUNC / MSG_CTRUNC): dropped, fds closed', () => {
    const h = harness();
    const big = h.send({ payload: Buffer.alloc(65536, 0x41) });
    const cut = h.send({ payload: 'READY=1', fds: 5, truncated: true });
    assertAllClosed(h.fake, big);
    assertAllClosed(h.fake, cut);
    assert.deepEqual(h.events, []);
    assert.equal(h.router.counters.dropped.ERR_NOTIFY_TRUNCATED, 2);
    assert.match(String(warnings(h.lines, 'ERR_NOTIFY_TRUNCATED')[0]?.msg), /65536 bytes/);
  });

  test('malformed messages: dropped with their code', () => {
    const h = harness();
    h.send({ payload: Buffer.from('READY=1\0X') });
    h.send({ payload: 'READY=1\\' });
    assert.equal(h.router.counters.dropped.ERR_NOTIFY_EMBEDDED_NUL, 1);
    assert.equal(h.router.counters.dropped.ERR_NOTIFY_BAD_ESCAPE, 1);
    assert.deepEqual(h.events, []);
  });

  test('an empty message is accepted and ignored: no event, no log line', () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) h.send({ payload: '' });
    assert.equal(h.router.counters.empty, 1000);
    assert.deepEqual(h.events, []);
    assert.deepEqual(h.lines, []);
    assert.deepEqual(h.fake.openFds(), []);
  });

  test('no unit for the sender: "cannot find unit", naming the process, fds closed', () => {
    const h = harness();
    const d = h.send({ payload: 'READY=1', pid: STRANGER, fds: 1 });
    assertAllClosed(h.fake, d);
    const [line] = warnings(h.lines, 'ERR_NOTIFY_NO_UNIT');
    assert.match(String(line?.msg), /cannot find unit for notify message of PID 9999/);
  });

  test('a failing lookup drops the datagram, not the router', () => {
    const h = harness(() => {
      throw new Error('cgroup read failed');
    });
    const d = h.send({ payload: 'READY=1', fds: 1 });
    assertAllClosed(h.fake, d);
    assert.equal(h.router.counters.dropped.ERR_NOTIFY_LOOKUP_FAILED, 1);
    h.send({ payload: 'READY=1' });
    assert.equal(h.router.counters.dropped.ERR_NOTIFY_LOOKUP_FAILED, 2);
  });

  test('drop warnings are rate-limited per code (5 per 10 s), then say how many were suppressed', () => {
    const h = harness();
    for (let i = 0; i < 100; i++) h.send({ payload: 'READY=1', pid: STRANGER });
    assert.equal(warnings(h.lines, 'ERR_NOTIFY_NO_UNIT').length, 5);
    h.clock.now += 10_000;
    h.send({ payload: 'READY=1', pid: STRANGER });
    const last = warnings(h.lines, 'ERR_NOTIFY_NO_UNIT').at(-1);
    assert.equal(last?.suppressed, 95);
  });
});

describe('delivery and NotifyAccess=', () => {
  test('an authorized message becomes one event with typed fields and the sender', () => {
    const h = harness();
    h.send({ payload: 'READY=1\nSTATUS=up', uid: USER });
    assert.equal(h.events.length, 1);
    const [event] = h.events;
    assert.equal(event?.unit.name, 'web.service');
    assert.equal(event?.fields.ready, true);
    assert.equal(event?.fields.status, 'up');
    assert.equal(event?.sender.pid, MAIN);
    assert.equal(event?.sender.uid, USER);
    assert.equal(event?.sender.exited, false);
    assert.equal(h.router.counters.delivered, 1);
  });

  test('each unit gets a message once; several units each get it', () => {
    const other = unitOf('other.service', 'all');
    const h = harness(() => [SERVICE, SERVICE, other, SERVICE]);
    h.send({ payload: 'WATCHDOG=1' });
    assert.deepEqual(
      h.events.map((e) => e.unit.name),
      ['web.service', 'other.service'],
    );
  });

  test('refused: one warning per unit and reason per minute, with pid, parent chain and what would accept it', () => {
    const h = harness();
    for (let i = 0; i < 50; i++) h.send({ payload: 'READY=1', pid: CHILD });
    assert.deepEqual(h.events, []);
    assert.equal(h.router.counters.refused, 50);
    const refusals = warnings(h.lines, 'ERR_NOTIFY_ACCESS_NOT_MAIN_PID');
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]?.unit, 'web.service');
    assert.equal(refusals[0]?.wouldAccept, 'all');
    assert.equal(
      refusals[0]?.msg,
      'Got notification message from PID 4242 (sh) ← 4200 (daemon) ← 1, but reception is only permitted ' +
        'for the main PID 4200 (NotifyAccess=main); NotifyAccess=all would accept it',
    );
    // Another sender with the same reason is the same line's business; a minute later the next
    // line says how many were suppressed.
    h.send({ payload: 'READY=1', pid: STRANGER + 1 });
    h.clock.now += 60_000;
    h.send({ payload: 'READY=1', pid: CHILD });
    const again = warnings(h.lines, 'ERR_NOTIFY_ACCESS_NOT_MAIN_PID');
    assert.equal(again.length, 2);
    assert.equal(again.at(-1)?.suppressed, 50);
  });

  test('a different reason, or another unit, is its own line', () => {
    const strict = unitOf('strict.service', 'none', { main: MAIN });
    const h = harness(() => [SERVICE, strict]);
    h.send({ payload: 'READY=1', pid: CHILD });
    h.send({ payload: 'READY=1', pid: CHILD });
    const lines = warnings(h.lines).map((l) => [l.unit, l.code, l.wouldAccept]);
    assert.deepEqual(lines, [
      ['web.service', 'ERR_NOTIFY_ACCESS_NOT_MAIN_PID', 'all'],
      ['strict.service', 'ERR_NOTIFY_ACCESS_NONE', 'all'],
    ]);
  });

  test('NotifyAccess is read at routing time (NOTIFYACCESS= can change it)', () => {
    let access: NotifyAccess = 'none';
    const unit: NotifyUnit = { ...SERVICE, name: 'dyn.service', notifyAccess: () => access };
    const h = harness(() => [unit]);
    h.send({ payload: 'READY=1' });
    assert.equal(h.events.length, 0);
    access = 'main';
    h.send({ payload: 'READY=1' });
    assert.equal(h.events.length, 1);
  });

  test('field problems are warned per unit and key, the rest is delivered', () => {
    const h = harness();
    h.send({ payload: 'READY=1\nERRNO=banana' });
    h.send({ payload: 'ERRNO=banana' });
    assert.equal(h.events.length, 2);
    assert.equal(h.events[0]?.fields.ready, true);
    assert.equal(warnings(h.lines, 'ERR_NOTIFY_FIELD_VALUE').length, 1);
  });

  test('RELOADING=1 without MONOTONIC_USEC=: delivered, one warning per unit naming the field', () => {
    const other = unitOf('other.service', 'all');
    const h = harness(() => [SERVICE, other]);
    h.send({ payload: 'RELOADING=1' });
    h.clock.now += 3_600_000;
    h.send({ payload: 'RELOADING=1' });
    h.send({ payload: 'RELOADING=1\nMONOTONIC_USEC=5' });
    assert.equal(h.events.length, 6);
    assert.ok(h.events.every((e) => e.fields.reloading));
    const lines = warnings(h.lines, 'ERR_NOTIFY_RELOADING_NO_MONOTONIC');
    assert.deepEqual(
      lines.map((l) => l.unit),
      ['web.service', 'other.service'],
    );
    assert.match(String(lines[0]?.msg), /MONOTONIC_USEC=/);
  });

  test('an exception in deliver is logged; other units still get the message, fds still closed', () => {
    const other = unitOf('other.service', 'all');
    const h = harness(
      () => [SERVICE, other],
      (event) => {
        if (event.unit.name === 'web.service') throw new Error('state machine bug');
      },
    );
    const d = h.send({ payload: 'READY=1', fds: 2 });
    assert.equal(h.events.length, 2);
    assertAllClosed(h.fake, d);
    assert.equal(h.lines.filter((l) => l.level === 50).length, 1);
  });

  test('a sender whose pidfd says it exited is marked so (asked during delivery, while the pidfd is open)', () => {
    const seen: boolean[] = [];
    const h = harness(undefined, (event) => seen.push(event.sender.exited));
    h.send({ payload: 'READY=1', exited: true });
    h.send({ payload: 'READY=1' });
    assert.deepEqual(seen, [true, false]);
  });
});

describe('fds', () => {
  test('FDSTORE=1: the first unit that takes the fds owns them; nobody else gets them', () => {
    const taken: number[][] = [];
    const other = unitOf('other.service', 'all');
    const h = harness(
      () => [SERVICE, other],
      (event) => {
        if (event.fields.fdStore) taken.push(event.fds.take());
      },
    );
    const d = h.send({ payload: 'FDSTORE=1\nFDNAME=db', fds: 3 });
    assert.deepEqual(taken, [d.fds, []]);
    for (const fd of d.fds) assert.equal(h.fake.isOpen(fd), true, 'owned by the unit now');
    assert.equal(h.fake.isOpen(d.sender.pidfd), false, "the pidfd is always the router's to close");
    assert.deepEqual(warnings(h.lines), []);
  });

  test('fds nobody takes are closed, with a warning', () => {
    const h = harness();
    const d = h.send({ payload: 'READY=1', fds: 4 });
    assertAllClosed(h.fake, d);
    assert.equal(h.router.counters.fdsUnused, 4);
    assert.match(String(warnings(h.lines)[0]?.msg), /extra auxiliary fds/);
  });

  test('a refused message does not hand out its fds', () => {
    const h = harness();
    const d = h.send({ payload: 'FDSTORE=1', pid: CHILD, fds: 2 });
    assertAllClosed(h.fake, d);
  });
});

describe('MAINPID= trust', () => {
  // [description, sender uid, sender pid, new main pid, unit, honoured]
  const cgroupKnown = SERVICE;
  const cgroupUnknown = unitOf('nocg.service', 'all', { main: MAIN, control: CONTROL });
  const rows: [string, number, number, number, NotifyUnit, boolean][] = [
    [
      'root, in the cgroup',
      ROOT,
      CHILD,
      CHILD,
      unitOf('a.service', 'all', { main: MAIN, cgroup: [MAIN, CHILD] }),
      true,
    ],
    ['the main pid itself (not root)', USER, MAIN, CHILD, cgroupKnown, true],
    [
      'not root, not the main pid',
      USER,
      CHILD,
      CHILD,
      unitOf('b.service', 'all', { main: MAIN, cgroup: [MAIN, CHILD] }),
      false,
    ],
    ['triggerd itself', ROOT, MAIN, SELF, cgroupUnknown, false],
    ['pid 1', ROOT, MAIN, 1, cgroupUnknown, false],
    ['the control pid', ROOT, MAIN, CONTROL, cgroupKnown, false],
    ['outside the known cgroup, even from root', ROOT, MAIN, STRANGER, cgroupKnown, false],
    ['cgroup unknown, from root', ROOT, MAIN, STRANGER, cgroupUnknown, true],
  ];
  for (const [description, uid, pid, newMain, unit, honoured] of rows) {
    test(`${description}: ${honoured ? 'honoured' : 'ignored'}`, () => {
      const h = harness(() => [unit]);
      h.send({ payload: `READY=1\nMAINPID=${newMain}`, uid, pid });
      assert.equal(h.events.length, 1, 'the rest of the message is delivered either way');
      assert.equal(h.events[0]?.fields.ready, true);
      assert.equal(h.events[0]?.fields.mainPid, honoured ? newMain : undefined);
      assert.equal(h.router.counters.mainPidIgnored, honoured ? 0 : 1);
      if (!honoured) assert.equal(warnings(h.lines, 'ERR_NOTIFY_MAINPID_REFUSED').length, 1);
    });
  }

  test('MAINPIDFD=1: the pid comes from the pidfd, which the router closes (never offered to FDSTORE)', () => {
    const h = harness(
      () => [cgroupUnknown],
      (event) => assert.deepEqual(event.fds.take(), []),
    );
    const pidfd = h.fake.allocate({ kind: 'pidfd', pid: 5555 });
    const item = h.fake.datagram({
      payload: 'MAINPIDFD=1\nMAINPID=6666',
      pid: MAIN,
      uid: ROOT,
      fds: [pidfd],
    });
    // The datagram's fd is a fresh "received" fd: make it a pidfd of 5555 as the kernel would pass it.
    const passed = item.fds[0] as number;
    Object.assign(h.fake.fds.get(passed) ?? {}, { kind: 'pidfd', pid: 5555 });
    h.router.route({
      sender: { pid: item.pid, uid: item.uid, gid: item.gid, pidfd: item.pidfd },
      fds: item.fds,
      truncated: false,
      length: item.length,
      message: parseNotifyMessage(item.buffer),
    });
    assert.equal(h.events[0]?.fields.mainPid, 5555, 'MAINPIDFD=1 takes precedence over MAINPID=');
    assert.equal(h.fake.isOpen(passed), false);
    h.fake.closeFd(pidfd);
  });

  test('MAINPIDFD=1 without exactly one fd changes nothing', () => {
    const h = harness(() => [cgroupUnknown]);
    h.send({ payload: 'MAINPIDFD=1\nMAINPID=6666', fds: 2 });
    assert.equal(h.events[0]?.fields.mainPid, undefined);
    assert.match(String(warnings(h.lines, 'ERR_NOTIFY_MAINPIDFD')[0]?.msg), /more than one fd/);
  });
});

describe('notifyEvents (with the fake addon)', () => {
  test('cold: each subscription opens its own socket; items carry parsed datagrams; teardown closes', async () => {
    const fake = new FakeNativeNotify();
    const source$ = notifyEvents(fake, '@triggerd-test-notify');
    assert.equal(fake.sockets.length, 0, 'nothing happens before subscribing');
    const items: NotifySourceItem[] = [];
    const subscription = source$.subscribe((item) => items.push(item));
    assert.equal(items[0]?.kind, 'open');
    fake.sendDatagram('@triggerd-test-notify', Buffer.from('READY=1'));
    fake.sendDatagram('@triggerd-test-notify', Buffer.from('STATUS=x'));
    await new Promise((resolve) => setImmediate(resolve));
    const batch = items[1];
    assert.equal(batch?.kind, 'datagrams');
    if (batch?.kind !== 'datagrams') return;
    assert.equal(batch.datagrams.length, 2, 'one item per wake-up');
    const first = batch.datagrams[0];
    assert.ok(first?.message.ok && first.message.fields.ready);
    assert.equal(first?.sender.pid, process.pid);
    for (const d of batch.datagrams) fake.closeFd(d.sender.pidfd);
    subscription.unsubscribe();
    assert.equal(fake.sockets[0]?.closed, true);
  });

  test('a batch handed over after unsubscribing has its fds closed', () => {
    const fake = new FakeNativeNotify();
    // Keep hold of onBatch, as a batch already in flight inside the addon would.
    let late: ((batch: NotifyItem[]) => void) | undefined;
    const native: NativeNotify = {
      openNotifySocket: (path, onBatch, onError) => {
        late = onBatch;
        return fake.openNotifySocket(path, onBatch, onError);
      },
      closeFd: (fd) => fake.closeFd(fd),
      pidfdGetPid: (fd) => fake.pidfdGetPid(fd),
      sendDatagram: (path, buffer, fds) => fake.sendDatagram(path, buffer, fds),
      pipe: () => fake.pipe(),
    };
    const items: NotifySourceItem[] = [];
    notifyEvents(native, '@triggerd-test-late')
      .subscribe((item) => items.push(item))
      .unsubscribe();
    assert.ok(late !== undefined);
    late([fake.datagram({ payload: 'FDSTORE=1', fds: 3 }), fake.datagram({ payload: 'READY=1' })]);
    assert.deepEqual(fake.openFds(), []);
    assert.deepEqual(fake.badCloses, []);
    assert.deepEqual(
      items.map((i) => i.kind),
      ['open'],
    );
  });

  test('errors from the socket become error items; a failed open errors the stream', async () => {
    const fake = new FakeNativeNotify();
    const items: NotifySourceItem[] = [];
    const subscription = notifyEvents(fake, '@triggerd-test-err').subscribe((item) => items.push(item));
    fake.socketAt('@triggerd-test-err')?.fail();
    assert.equal(items[1]?.kind, 'error');
    subscription.unsubscribe();

    fake.nextOpenError = Object.assign(new Error('EACCES'), { code: 'EACCES', errno: -13, syscall: 'bind' });
    await assert.rejects(firstValueFrom(notifyEvents(fake, '@x').pipe(take(1), toArray())), /EACCES/);
  });
});
