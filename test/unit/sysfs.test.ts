import { test } from 'node:test';
import * as fs from 'node:fs';
import assert from 'node:assert/strict';
import { parseUeventFile, scanSysfs, syntheticUevent } from '../../src/devices/sysfs';
import { FakeSysfs } from '../helpers/fake-sysfs';

test('parseUeventFile reads KEY=VALUE lines and makes DEVNAME absolute', () => {
  const p = parseUeventFile('MAJOR=7\nMINOR=0\nDEVNAME=loop0\nDEVTYPE=disk\nDISKSEQ=9\n\njunk\n');
  assert.deepEqual(
    [...p],
    [
      ['MAJOR', '7'],
      ['MINOR', '0'],
      ['DEVNAME', '/dev/loop0'],
      ['DEVTYPE', 'disk'],
      ['DISKSEQ', '9'],
    ],
  );
});

test('scanSysfs follows bus and class links, reads subsystem and driver', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  sys.add({
    devpath: '/devices/virtual/block/loop0',
    subsystem: 'block',
    uevent: { MAJOR: '7', MINOR: '0', DEVNAME: 'loop0', DEVTYPE: 'disk' },
  });
  sys.add({
    devpath: '/devices/pci0000:00/0000:00:01.0',
    subsystem: 'pci',
    kind: 'bus',
    driver: 'virtio-pci',
    uevent: { PCI_ID: '1AF4:1000' },
  });
  sys.add({
    devpath: '/devices/virtual/net/lo',
    subsystem: 'net',
    uevent: { INTERFACE: 'lo', IFINDEX: '1' },
  });
  const scan = scanSysfs(sys.root);
  assert.deepEqual([...scan.devices.keys()].sort(), [
    '/devices/pci0000:00/0000:00:01.0',
    '/devices/virtual/block/loop0',
    '/devices/virtual/net/lo',
  ]);
  const pci = scan.devices.get('/devices/pci0000:00/0000:00:01.0');
  assert.equal(pci?.subsystem, 'pci');
  assert.equal(pci?.driver, 'virtio-pci');
  const e = syntheticUevent(scan.devices.get('/devices/virtual/block/loop0')!, 'add');
  assert.equal(e.source, 'synthetic');
  assert.equal(e.devname, '/dev/loop0');
  assert.equal(e.major, 7);
  assert.equal(e.properties.get('SUBSYSTEM'), 'block');
});

test('scanSysfs ignores dangling links and entries that are not symlinks', (t) => {
  const sys = new FakeSysfs();
  t.after(() => sys.cleanup());
  sys.add({ devpath: '/devices/virtual/net/a', subsystem: 'net', uevent: { INTERFACE: 'a' } });
  // A device that vanished between listing and reading: its link dangles.
  sys.add({ devpath: '/devices/virtual/net/b', subsystem: 'net', uevent: { INTERFACE: 'b' } });
  fs.rmSync(sys.root + '/devices/virtual/net/b', { recursive: true });
  fs.writeFileSync(sys.root + '/class/net/not-a-link', '');
  const scan = scanSysfs(sys.root);
  assert.deepEqual([...scan.devices.keys()], ['/devices/virtual/net/a']);
  assert.deepEqual(scan.errors, []);
});
