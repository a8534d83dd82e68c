import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRegistry, defaultDecision } from '../../src/devices/device-registry';
import { uevent, LOOP0 } from '../helpers/events';

test('add, change and remove keep the registry and its node index in step', () => {
  const reg = new DeviceRegistry();
  const add = uevent('add', ...LOOP0);
  const c1 = reg.apply(add, defaultDecision(add));
  assert.equal(c1?.kind, 'added');
  assert.equal(reg.size, 1);
  assert.equal(reg.findByNode('/dev/loop0')?.devpath, '/devices/virtual/block/loop0');
  assert.ok(reg.get('/devices/virtual/block/loop0')?.tags.has('systemd'));

  const change = uevent('change', ...LOOP0);
  const c2 = reg.apply(change, defaultDecision(change));
  assert.equal(c2?.kind, 'changed');
  assert.equal(c2?.previous?.seqnum, add.seqnum);
  assert.equal(reg.lastSeqnum, change.seqnum);

  const remove = uevent('remove', ...LOOP0);
  const c3 = reg.apply(remove, defaultDecision(remove));
  assert.equal(c3?.kind, 'removed');
  assert.equal(reg.size, 0);
  assert.equal(reg.findByNode('/dev/loop0'), undefined);
});

test('a remove for an unknown device changes nothing', () => {
  const reg = new DeviceRegistry();
  const e = uevent('remove', '/devices/virtual/net/nope', 'net');
  assert.equal(reg.apply(e, defaultDecision(e)), undefined);
  assert.equal(reg.size, 0);
});

test('move re-keys the device from DEVPATH_OLD', () => {
  const reg = new DeviceRegistry();
  const add = uevent('add', '/devices/virtual/net/a', 'net', { INTERFACE: 'a' });
  reg.apply(add, defaultDecision(add));
  const move = uevent('move', '/devices/virtual/net/b', 'net', {
    INTERFACE: 'b',
    DEVPATH_OLD: '/devices/virtual/net/a',
  });
  const c = reg.apply(move, defaultDecision(move));
  assert.equal(c?.kind, 'changed');
  assert.equal(c?.previous?.devpath, '/devices/virtual/net/a');
  assert.equal(reg.get('/devices/virtual/net/a'), undefined);
  assert.equal(reg.get('/devices/virtual/net/b')?.properties.get('INTERFACE'), 'b');
});

test('driver is kept across change events and cleared by unbind', () => {
  const reg = new DeviceRegistry();
  const bind = uevent('bind', '/devices/pci0000:00/0000:00:01.0', 'pci', { DRIVER: 'virtio-pci' });
  reg.apply(bind, defaultDecision(bind));
  const change = uevent('change', '/devices/pci0000:00/0000:00:01.0', 'pci');
  reg.apply(change, defaultDecision(change));
  assert.equal(reg.get('/devices/pci0000:00/0000:00:01.0')?.driver, 'virtio-pci');
  const unbind = uevent('unbind', '/devices/pci0000:00/0000:00:01.0', 'pci');
  reg.apply(unbind, defaultDecision(unbind));
  assert.equal(reg.get('/devices/pci0000:00/0000:00:01.0')?.driver, undefined);
});

test('default tags: block, net and tty get "systemd", others none', () => {
  for (const [subsystem, tagged] of [
    ['block', true],
    ['net', true],
    ['tty', true],
    ['mem', false],
    ['pci', false],
  ] as const) {
    const e = uevent('add', `/devices/x/${subsystem}`, subsystem);
    assert.equal(defaultDecision(e).tags.has('systemd'), tagged, subsystem);
  }
});
