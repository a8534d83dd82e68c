import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceEventQueue, type QueuedEvent } from '../../src/devices/event-queue';

/** A process function whose events finish only when the test says so. */
function controlled(): {
  started: string[];
  finish: (devpath: string) => Promise<void>;
  process: (e: QueuedEvent) => Promise<void>;
} {
  const pending = new Map<string, () => void>();
  const started: string[] = [];
  return {
    started,
    process: (e) =>
      new Promise<void>((resolve) => {
        started.push(`${e.seqnum}:${e.devpath}`);
        pending.set(e.devpath + '#' + e.seqnum, resolve);
      }),
    finish: async (key) => {
      for (const [k, resolve] of pending) {
        if (k.startsWith(key + '#')) {
          pending.delete(k);
          resolve();
          break;
        }
      }
      await new Promise((r) => setImmediate(r));
    },
  };
}

test('same device and parent/child events run in kernel order; unrelated ones concurrently', async () => {
  const c = controlled();
  const q = new DeviceEventQueue({ process: c.process });
  q.push({ seqnum: 1, devpath: '/devices/pci/usb1' });
  q.push({ seqnum: 2, devpath: '/devices/pci/usb1/1-1' }); // child: waits for its parent
  q.push({ seqnum: 3, devpath: '/devices/virtual/block/loop0' }); // unrelated: runs now
  q.push({ seqnum: 4, devpath: '/devices/virtual/block/loop0' }); // same device: waits
  assert.deepEqual(c.started, ['1:/devices/pci/usb1', '3:/devices/virtual/block/loop0']);
  await c.finish('/devices/virtual/block/loop0');
  assert.deepEqual(c.started.slice(2), ['4:/devices/virtual/block/loop0']);
  await c.finish('/devices/pci/usb1');
  assert.deepEqual(c.started.slice(3), ['2:/devices/pci/usb1/1-1']);
  await c.finish('/devices/virtual/block/loop0');
  await c.finish('/devices/pci/usb1/1-1');
  await q.idle();
  assert.equal(q.lastDoneSeqnum, 4);
});

test('a move waits for events on its old path', async () => {
  const c = controlled();
  const q = new DeviceEventQueue({ process: c.process });
  q.push({ seqnum: 1, devpath: '/devices/virtual/net/a' });
  q.push({ seqnum: 2, devpath: '/devices/virtual/net/b', devpathOld: '/devices/virtual/net/a' });
  assert.equal(c.started.length, 1);
  await c.finish('/devices/virtual/net/a');
  assert.deepEqual(c.started, ['1:/devices/virtual/net/a', '2:/devices/virtual/net/b']);
});

test('backpressure: pause above highWater, resume at lowWater; an exception ends only its event', async () => {
  const pressure: boolean[] = [];
  const errors: number[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const q = new DeviceEventQueue<QueuedEvent>({
    process: async (e) => {
      await gate;
      if (e.seqnum === 3) throw new Error('boom');
    },
    maxRunning: 2,
    highWater: 4,
    lowWater: 1,
    onPressure: (p) => pressure.push(p),
    onError: (e) => errors.push(e.seqnum),
  });
  for (let i = 1; i <= 8; i++) q.push({ seqnum: i, devpath: `/devices/d${i}` });
  assert.deepEqual(pressure, [true]);
  release();
  await q.idle();
  assert.deepEqual(pressure, [true, false]);
  assert.deepEqual(errors, [3]);
  assert.equal(q.lastDoneSeqnum, 8);
});
