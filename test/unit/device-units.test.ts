import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRegistry, defaultDecision } from '../../src/devices/device-registry';
import { udevEventDecision } from '../../src/devices/udev-db';
import { Manager, type UnitStateChange } from '../../src/core/manager';
import type { Uevent } from '../../src/devices/types';
import { uevent, LOOP0 } from '../helpers/events';
import { silentLogger } from '../helpers/logger';

function rig(now = () => 0): {
  reg: DeviceRegistry;
  manager: Manager;
  apply: (e: Uevent) => void;
  changes: UnitStateChange[];
} {
  const reg = new DeviceRegistry();
  const manager = new Manager({ logger: silentLogger(), deadDeviceGcMs: 1000, now });
  const changes: UnitStateChange[] = [];
  manager.unitChanges$.subscribe((c) => changes.push(c));
  const apply = (e: Uevent): void => {
    const change = reg.apply(e, defaultDecision(e));
    if (change) manager.applyDeviceChange(change);
  };
  return { reg, manager, apply, changes };
}

test('a block device becomes plugged units under its sysfs path and /dev node', () => {
  const { manager, apply } = rig();
  apply(uevent('add', ...LOOP0));
  const names = manager.listUnits().map((u) => `${u.name} ${u.active} ${u.sub}`);
  assert.deepEqual(names, [
    'dev-loop0.device active plugged',
    'sys-devices-virtual-block-loop0.device active plugged',
  ]);
});

test('a veth pair appears plugged and goes dead on remove', () => {
  const { manager, apply, changes } = rig();
  apply(uevent('add', '/devices/virtual/net/veth0', 'net', { INTERFACE: 'veth0', IFINDEX: '7' }));
  assert.equal(manager.getUnit('sys-devices-virtual-net-veth0.device')?.subState(), 'plugged');
  apply(uevent('remove', '/devices/virtual/net/veth0', 'net', { INTERFACE: 'veth0', IFINDEX: '7' }));
  assert.equal(manager.getUnit('sys-devices-virtual-net-veth0.device')?.subState(), 'dead');
  assert.deepEqual(
    changes.map((c) => `${c.unit}:${c.from}->${c.to}`),
    [
      'sys-devices-virtual-net-veth0.device:dead->plugged',
      'sys-devices-virtual-net-veth0.device:plugged->dead',
    ],
  );
});

test('untagged devices get no unit', () => {
  const { manager, apply } = rig();
  apply(uevent('add', '/devices/virtual/mem/null', 'mem', { DEVNAME: 'null', MAJOR: '1', MINOR: '3' }));
  assert.equal(manager.unitCount(), 0);
});

test('SYSTEMD_READY=0 keeps the unit dead; SYSTEMD_WANTS is recorded', () => {
  const { manager, apply } = rig();
  apply(uevent('add', ...LOOP0));
  apply(uevent('change', LOOP0[0], LOOP0[1], { ...LOOP0[2], SYSTEMD_READY: '0' }));
  assert.equal(manager.getUnit('dev-loop0.device')?.subState(), 'dead');
  apply(uevent('change', LOOP0[0], LOOP0[1], { ...LOOP0[2], SYSTEMD_WANTS: 'a.service b.service' }));
  const shown = manager.describeUnit('dev-loop0.device');
  assert.equal(shown?.sub, 'plugged');
  assert.deepEqual(shown?.properties.Wants, ['a.service', 'b.service']);
});

test('dead device units are collected after the grace period, live ones never', () => {
  let t = 0;
  const { manager, apply } = rig(() => t);
  apply(uevent('add', '/devices/virtual/net/v1', 'net'));
  apply(uevent('add', '/devices/virtual/net/v2', 'net'));
  apply(uevent('remove', '/devices/virtual/net/v1', 'net'));
  t = 500;
  assert.equal(manager.collectGarbage(), 0);
  t = 1500;
  assert.equal(manager.collectGarbage(), 1);
  assert.deepEqual(
    manager.listUnits().map((u) => u.name),
    ['sys-devices-virtual-net-v2.device'],
  );
});

test('a unit name shared by two devices stays plugged until both are gone', () => {
  const { manager, apply } = rig();
  // Two devices claiming the same node (a rename in flight): the unit follows either.
  apply(uevent('add', '/devices/a/block/x', 'block', { DEVNAME: 'x' }));
  apply(uevent('add', '/devices/b/block/x', 'block', { DEVNAME: 'x' }));
  apply(uevent('remove', '/devices/a/block/x', 'block', { DEVNAME: 'x' }));
  assert.equal(manager.getUnit('dev-x.device')?.subState(), 'plugged');
  apply(uevent('remove', '/devices/b/block/x', 'block', { DEVNAME: 'x' }));
  assert.equal(manager.getUnit('dev-x.device')?.subState(), 'dead');
});

// Companion mode: udevd's tags and links, as the daemon decides them (udevEventDecision gets the
// record before, and the manager reuses names and findings while a change keeps them).
function companionRig(): ReturnType<typeof rig> & { reg: DeviceRegistry } {
  const r = rig();
  r.apply = (e: Uevent): void => {
    const change = r.reg.apply(e, udevEventDecision(e, r.reg.get(e.devpath)));
    if (change) r.manager.applyDeviceChange(change);
  };
  return r;
}

const DISK = '/devices/virtual/block/loop7';
const tagged = (extra: Record<string, string>): Record<string, string> => ({
  DEVNAME: '/dev/loop7',
  MAJOR: '7',
  MINOR: '7',
  TAGS: ':systemd:',
  CURRENT_TAGS: ':systemd:',
  ...extra,
});
const unitsOf = (manager: Manager): string[] =>
  manager
    .listUnits()
    .filter((u) => u.active === 'active')
    .map((u) => u.name);

test('companion mode: links that change move the units; unchanged ones keep them and their state', () => {
  const { manager, apply, reg } = companionRig();
  apply(uevent('add', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/a' })));
  assert.deepEqual(unitsOf(manager), [
    'dev-disk-by\\x2dlabel-a.device',
    'dev-loop7.device',
    'sys-devices-virtual-block-loop7.device',
  ]);
  const first = reg.get(DISK);
  apply(uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/a' })));
  assert.equal(reg.get(DISK)?.devlinks, first?.devlinks, 'the same links: the list is shared');
  assert.equal(reg.get(DISK)?.tags, first?.tags);
  apply(uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b' })));
  assert.deepEqual(unitsOf(manager), [
    'dev-disk-by\\x2dlabel-b.device',
    'dev-loop7.device',
    'sys-devices-virtual-block-loop7.device',
  ]);
  assert.equal(manager.getUnit('dev-disk-by\\x2dlabel-a.device')?.subState(), 'dead');
  // SYSTEMD_READY=0 with the same links: the finding is made again, the units go dead.
  apply(uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b', SYSTEMD_READY: '0' })));
  assert.deepEqual(unitsOf(manager), []);
  apply(
    uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b', SYSTEMD_WANTS: 'x.service' })),
  );
  assert.deepEqual(manager.describeUnit('dev-loop7.device')?.properties.Wants, ['x.service']);
  // Untagged: no units; tagged again: all back.
  apply(
    uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b', TAGS: '', CURRENT_TAGS: '' })),
  );
  assert.deepEqual(unitsOf(manager), []);
  apply(uevent('change', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b' })));
  assert.equal(unitsOf(manager).length, 3);
  apply(uevent('remove', DISK, 'block', tagged({ DEVLINKS: '/dev/disk/by-label/b' })));
  assert.deepEqual(unitsOf(manager), []);
});

test('companion mode: a move takes the units to the new path', () => {
  const { manager, apply } = companionRig();
  apply(uevent('add', DISK, 'block', tagged({})));
  apply(uevent('move', '/devices/virtual/block/loop8', 'block', tagged({ DEVPATH_OLD: DISK })));
  assert.deepEqual(unitsOf(manager), ['dev-loop7.device', 'sys-devices-virtual-block-loop8.device']);
  assert.equal(manager.getUnit('sys-devices-virtual-block-loop7.device')?.subState(), 'dead');
});
