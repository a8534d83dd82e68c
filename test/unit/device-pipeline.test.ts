// The uevent path on a fake native layer and a fake /sys: what is accepted, what is dropped and
// counted, and how an overflow resyncs the registry without losing a device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ueventEvents } from '../../src/events/uevent-events';
import { DevicePipeline } from '../../src/devices/device-pipeline';
import { Manager } from '../../src/core/manager';
import { FakeNativeNetlink, fakeKernelMessage, fakeMessage } from '../helpers/fake-native';
import { FakeSysfs } from '../helpers/fake-sysfs';
import { recordingLogger, silentLogger } from '../helpers/logger';
import type { Logger } from '../../src/util/logger';

function rig(
  sys: FakeSysfs,
  logger: Logger = silentLogger(),
): { native: FakeNativeNetlink; pipeline: DevicePipeline; manager: Manager; stop: () => void } {
  const native = new FakeNativeNetlink();
  const pipeline = new DevicePipeline({ logger, sysRoot: sys.root });
  const manager = new Manager({ logger });
  pipeline.changes$.subscribe((c) => manager.applyDeviceChange(c));
  const sub = ueventEvents(native, { expect: 'kernel', receiveBufferBytes: 1 << 20 }).subscribe((i) =>
    pipeline.handle(i),
  );
  pipeline.coldplug();
  return { native, pipeline, manager, stop: () => sub.unsubscribe() };
}

const LOOP = {
  devpath: '/devices/virtual/block/loop0',
  subsystem: 'block',
  uevent: { MAJOR: '7', MINOR: '0', DEVNAME: 'loop0', DEVTYPE: 'disk' },
};

test('coldplug fills the registry and units before any event', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  sys.add(LOOP);
  sys.add({
    devpath: '/devices/virtual/mem/null',
    subsystem: 'mem',
    uevent: { MAJOR: '1', MINOR: '3', DEVNAME: 'null' },
  });
  sys.setSeqnum(41);
  const { pipeline, manager, stop } = rig(sys);
  t.after(stop);
  assert.equal(pipeline.registry.size, 2);
  assert.equal(pipeline.registry.lastSeqnum, 41);
  assert.equal(manager.getUnit('dev-loop0.device')?.subState(), 'plugged');
  assert.equal(manager.getUnit('dev-null.device'), undefined);
});

test('kernel events update the registry; forged and malformed messages are counted and change nothing', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  const { logger, lines } = recordingLogger();
  const { native, pipeline, manager, stop } = rig(sys, logger);
  t.after(stop);
  const veth = (action: string, seq: number, fields: Partial<Parameters<typeof fakeMessage>[1]> = {}) => {
    const m = fakeKernelMessage(action, '/devices/virtual/net/veth0', {
      SUBSYSTEM: 'net',
      INTERFACE: 'veth0',
      SEQNUM: String(seq),
    });
    return { ...m, ...fields };
  };
  native.deliver([
    veth('add', 50, { senderPort: 4242 }), // forged: not the kernel's port
    veth('add', 51, { uid: 1000 }), // forged: not root
    fakeMessage(Buffer.alloc(0), { senderPort: 0, uid: 0 }), // zero length
    { ...fakeMessage(Buffer.from('add@/devices/x\0ACTION=add')), senderPort: 0, uid: 0 }, // not NUL-terminated
    { ...fakeMessage(Buffer.from([0xff, 0, 1, 2, 0])), senderPort: 0, uid: 0 }, // binary junk
  ]);
  assert.equal(pipeline.registry.size, 0);
  assert.equal(manager.unitCount(), 0);
  assert.deepEqual(pipeline.stats.rejected, {
    ERR_UEVENT_UNTRUSTED_SENDER: 2,
    ERR_UEVENT_EMPTY: 1,
    ERR_UEVENT_NOT_TERMINATED: 1,
    ERR_UEVENT_NO_HEADER: 1,
  });
  // Rate-limited: five warnings at most in a burst, each naming the sender.
  const warnings = lines.filter((l) => l.level === 40);
  assert.ok(warnings.length <= 5 && warnings.length >= 1);
  assert.ok(warnings.every((w) => typeof w.senderPort === 'number' && typeof w.code === 'string'));

  native.deliver([veth('add', 52)]);
  assert.equal(manager.getUnit('sys-devices-virtual-net-veth0.device')?.subState(), 'plugged');
  native.deliver([veth('remove', 53)]);
  assert.equal(manager.getUnit('sys-devices-virtual-net-veth0.device')?.subState(), 'dead');
  assert.equal(pipeline.stats.received, 2);
  assert.equal(pipeline.registry.lastSeqnum, 53);
});

test('a flood of forged messages costs a few log lines, not one per message', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  const { logger, lines } = recordingLogger();
  const { native, pipeline, stop } = rig(sys, logger);
  t.after(stop);
  const forged = {
    ...fakeKernelMessage('add', '/devices/virtual/net/evil', { SUBSYSTEM: 'net', SEQNUM: '1' }),
    senderPort: 99,
  };
  for (let i = 0; i < 10; i++) native.deliver(Array.from({ length: 1000 }, () => forged));
  assert.equal(pipeline.stats.rejected.ERR_UEVENT_UNTRUSTED_SENDER, 10_000);
  assert.ok(lines.filter((l) => l.level === 40).length <= 5);
});

test('overflow: a rescan emits synthetic add/remove/change for what was missed', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  const gone = { devpath: '/devices/virtual/net/gone', subsystem: 'net', uevent: { INTERFACE: 'gone' } };
  sys.add(LOOP);
  sys.add(gone);
  const { native, pipeline, manager, stop } = rig(sys);
  t.after(stop);
  const seen: string[] = [];
  pipeline.events$.subscribe((e) => seen.push(`${e.source} ${e.action} ${e.devpath}`));
  // While events were being lost: one device went, one came, one changed.
  sys.remove(gone);
  sys.add({ devpath: '/devices/virtual/net/new', subsystem: 'net', uevent: { INTERFACE: 'new' } });
  sys.add({ ...LOOP, uevent: { ...LOOP.uevent, DISKSEQ: '9' } });
  sys.setSeqnum(500);
  native.deliver([{ kind: 'overflow', reason: 'ENOBUFS' }]);
  assert.deepEqual(seen.sort(), [
    'synthetic add /devices/virtual/net/new',
    'synthetic change /devices/virtual/block/loop0',
    'synthetic remove /devices/virtual/net/gone',
  ]);
  assert.equal(pipeline.stats.overflows, 1);
  assert.equal(pipeline.stats.resyncs, 1);
  assert.equal(pipeline.registry.lastSeqnum, 500);
  assert.equal(manager.getUnit('sys-devices-virtual-net-gone.device')?.subState(), 'dead');
  assert.equal(manager.getUnit('sys-devices-virtual-net-new.device')?.subState(), 'plugged');
  assert.equal(pipeline.registry.get('/devices/virtual/block/loop0')?.properties.get('DISKSEQ'), '9');
});

test('MSG_TRUNC is an overflow too: resync, never silence', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  const { native, pipeline, stop } = rig(sys);
  t.after(stop);
  native.deliver([{ kind: 'overflow', reason: 'MSG_TRUNC' }]);
  assert.equal(pipeline.stats.resyncs, 1);
});
