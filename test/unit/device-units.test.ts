import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRegistry, defaultDecision } from '../../src/devices/device-registry';
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
