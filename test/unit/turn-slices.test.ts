// TurnSlices and the sources that use it (ueventEvents, notifyEvents with maxPerTurn): a big native
// batch is handed on a slice per turn of the event loop, in order, with the socket paused until the
// last slice is out; the consumer's own pause holds across it; teardown drops (uevents) or closes
// (notify fds) what was not handed on; without maxPerTurn nothing changes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TurnSlices, type Pausable } from '../../src/events/turn-slices';
import { ueventEvents, type UeventSourceItem } from '../../src/events/uevent-events';
import { notifyEvents, type NotifySourceItem } from '../../src/events/notify-events';
import { FakeNativeNetlink, fakeKernelMessage } from '../helpers/fake-native';
import { FakeNativeNotify } from '../helpers/fake-notify';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function pausable(): Pausable & { log: string[] } {
  const log: string[] = [];
  return { log, pause: () => log.push('pause'), resume: () => log.push('resume') };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

describe('TurnSlices', () => {
  test('a batch within the limit is handed on at once, the socket untouched', () => {
    const seen: number[][] = [];
    const socket = pausable();
    const slices = new TurnSlices<number>(4, (s) => seen.push(s));
    slices.attach(socket);
    slices.push([1, 2, 3, 4]);
    assert.deepEqual(seen, [[1, 2, 3, 4]]);
    assert.deepEqual(socket.log, []);
  });

  test('a bigger batch: one slice now, one per turn, in order; paused until the last', async () => {
    const seen: number[][] = [];
    const socket = pausable();
    const slices = new TurnSlices<number>(4, (s) => seen.push(s));
    slices.attach(socket);
    slices.push(range(10));
    assert.deepEqual(seen, [[0, 1, 2, 3]]);
    assert.deepEqual(socket.log, ['pause']);
    assert.equal(slices.waiting, 6);
    await turn();
    assert.deepEqual(seen.at(-1), [4, 5, 6, 7]);
    assert.deepEqual(socket.log, ['pause']);
    await turn();
    assert.deepEqual(seen, [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    assert.deepEqual(socket.log, ['pause', 'resume']);
    assert.equal(slices.waiting, 0);
  });

  test("the consumer's pause holds past the end of a batch; its resume waits for the last slice", async () => {
    const seen: number[] = [];
    const socket = pausable();
    const slices = new TurnSlices<number>(2, (s) => seen.push(...s));
    slices.attach(socket);
    slices.push(range(5));
    slices.pause();
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(seen, range(5));
    assert.deepEqual(socket.log, ['pause'], 'still paused: the consumer asked');
    slices.resume();
    assert.deepEqual(socket.log, ['pause', 'resume']);
    slices.push(range(5));
    slices.resume(); // the consumer resumes while slices wait: the socket stays paused
    assert.deepEqual(socket.log, ['pause', 'resume', 'pause']);
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(socket.log, ['pause', 'resume', 'pause', 'resume']);
  });

  test('a batch pushed while slices wait (a source that ignores pause) follows them in order', async () => {
    const seen: number[] = [];
    const slices = new TurnSlices<number>(3, (s) => seen.push(...s));
    slices.push(range(5));
    slices.push([100, 101]);
    for (let i = 0; i < 4; i++) await turn();
    assert.deepEqual(seen, [...range(5), 100, 101]);
  });

  test('cancel returns what was not handed on, and nothing more arrives', async () => {
    const seen: number[] = [];
    const slices = new TurnSlices<number>(3, (s) => seen.push(...s));
    slices.push(range(8));
    assert.deepEqual(slices.cancel(), [3, 4, 5, 6, 7]);
    await turn();
    assert.deepEqual(seen, [0, 1, 2]);
  });

  test('a handler that throws does not strand the rest', async () => {
    const seen: number[][] = [];
    const slices = new TurnSlices<number>(2, (s) => {
      seen.push(s);
      if (s[0] === 0) throw new Error('consumer bug');
    });
    assert.throws(() => slices.push(range(6)), /consumer bug/);
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(seen, [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
  });

  test('maxPerTurn must be a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      assert.throws(() => new TurnSlices(bad, () => undefined), TypeError);
  });
});

describe('ueventEvents with maxPerTurn', () => {
  const messages = (n: number) =>
    range(n).map((i) =>
      fakeKernelMessage('change', `/devices/virtual/misc/m${i}`, {
        SEQNUM: String(i + 1),
        SUBSYSTEM: 'misc',
      }),
    );

  test('1,000 messages in slices of 100, in order, the socket paused until the last', async () => {
    const native = new FakeNativeNetlink();
    const items: UeventSourceItem[] = [];
    const sub = ueventEvents(native, {
      expect: 'kernel',
      receiveBufferBytes: 1 << 20,
      maxPerTurn: 100,
    }).subscribe((i) => items.push(i));
    try {
      native.deliver(messages(1000));
      const counts = (): number[] => items.flatMap((i) => (i.kind === 'events' ? [i.events.length] : []));
      assert.deepEqual(counts(), [100]);
      assert.equal(native.sockets[0]?.paused, true);
      for (let i = 0; i < 12; i++) await turn();
      assert.deepEqual(counts(), Array(10).fill(100));
      const seqnums = items.flatMap((i) => (i.kind === 'events' ? i.events.map((e) => e.seqnum) : []));
      assert.deepEqual(
        seqnums,
        range(1000).map((i) => i + 1),
      );
      assert.equal(native.sockets[0]?.paused, false);
    } finally {
      sub.unsubscribe();
    }
  });

  test("the 'open' socket's pause is the consumer's: it holds after a sliced batch", async () => {
    const native = new FakeNativeNetlink();
    const items: UeventSourceItem[] = [];
    const sub = ueventEvents(native, {
      expect: 'kernel',
      receiveBufferBytes: 1 << 20,
      maxPerTurn: 10,
    }).subscribe((i) => items.push(i));
    try {
      const open = items.find((i) => i.kind === 'open');
      assert.ok(open?.kind === 'open');
      native.deliver(messages(25));
      open.socket.pause();
      for (let i = 0; i < 4; i++) await turn();
      assert.equal(native.sockets[0]?.paused, true);
      open.socket.resume();
      assert.equal(native.sockets[0]?.paused, false);
      assert.equal(open.socket.portId, native.sockets[0]?.portId);
    } finally {
      sub.unsubscribe();
    }
  });

  test('unsubscribing mid-batch stops the rest', async () => {
    const native = new FakeNativeNetlink();
    let events = 0;
    const sub = ueventEvents(native, {
      expect: 'kernel',
      receiveBufferBytes: 1 << 20,
      maxPerTurn: 10,
    }).subscribe((i) => {
      if (i.kind === 'events') events += i.events.length;
    });
    native.deliver(messages(50));
    sub.unsubscribe();
    for (let i = 0; i < 6; i++) await turn();
    assert.equal(events, 10);
  });
});

describe('notifyEvents with maxPerTurn', () => {
  test('a whole native batch in slices of 50; unsubscribing mid-batch closes the fds not handed on', async () => {
    const native = new FakeNativeNotify();
    const received: number[] = [];
    const owned: number[] = [];
    const sub = notifyEvents(native, '@turn-slices-test', { maxPerTurn: 50 }).subscribe(
      (i: NotifySourceItem) => {
        if (i.kind !== 'datagrams') return;
        received.push(i.datagrams.length);
        for (const d of i.datagrams) owned.push(...d.fds, d.sender.pidfd);
      },
    );
    const socket = native.socketAt('@turn-slices-test');
    assert.ok(socket !== undefined);
    socket.deliver(range(1000).map((i) => native.datagram({ payload: `STATUS=${i}`, fds: 1 })));
    await turn(); // the fake wakes up on a later tick, with one batch of FAKE_NOTIFY_MAX_BATCH (128)
    assert.deepEqual(received, [50]);
    assert.equal(socket.paused, true);
    await turn();
    assert.deepEqual(received, [50, 50]);
    sub.unsubscribe();
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(received, [50, 50]);
    // What the subscriber got is its own to close; everything else is closed by the source.
    for (const fd of owned) native.closeFd(fd);
    assert.deepEqual(native.openFds(), []);
    assert.deepEqual(native.badCloses, []);
  });
});
