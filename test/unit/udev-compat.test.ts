// Companion-mode pieces checked against what Debian's systemd-udevd 252 really wrote and sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeLibudevMessage, murmurHash2, tagBloom64 } from '../../src/devices/libudev-encode';
import { parseKernelUevent, parseLibudevMessage } from '../../src/devices/uevent-parse';
import { parseUdevDbRecord, udevDeviceId, udevEventDecision, withUdevDb } from '../../src/devices/udev-db';
import { uevent, LOOP0 } from '../helpers/events';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/uevents');

test('hashes match the recorded libudev header (murmur2 of block/disk, bloom of systemd)', () => {
  assert.equal(murmurHash2('block'), 0xf0031db7);
  assert.equal(murmurHash2('disk'), 0x7bcbc5ee);
  assert.equal(tagBloom64(['systemd']), 0x0200040010800000n);
});

test('encodeLibudevMessage reproduces the recorded udevd message byte for byte', () => {
  const recorded = fs.readFileSync(path.join(FIXTURES, 'raw-attach/msg02-udev.bin'));
  const parsed = parseLibudevMessage(recorded);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  const e = parsed.event;
  // The parser makes DEVNAME absolute; udevd sends it absolute too, so properties round-trip.
  const again = encodeLibudevMessage({
    subsystem: e.subsystem,
    devtype: e.devtype,
    tags: ['systemd'],
    properties: e.properties,
  });
  assert.deepEqual(again, recorded);
});

test('udev database record: links, properties, tags; and the decision from an event', () => {
  const text = fs.readFileSync(path.resolve(__dirname, '../../../test/fixtures/udev/db-b7:0'), 'utf8');
  const rec = parseUdevDbRecord(text);
  assert.deepEqual(rec.devlinks, [
    '/dev/disk/by-diskseq/3167',
    '/dev/disk/by-uuid/0a0b0c0d-1111-4222-8333-444455556666',
    '/dev/disk/by-label/anchorfmt',
  ]);
  assert.equal(rec.properties.get('ID_FS_TYPE'), 'ext4');
  assert.deepEqual([...rec.tags], ['systemd']);
  const e = withUdevDb(uevent('add', ...LOOP0, 'synthetic'), rec);
  const d = udevEventDecision(e);
  assert.ok(d.tags.has('systemd'));
  assert.deepEqual(d.devlinks, rec.devlinks);
});

test('udevDeviceId forms libudev database keys', () => {
  assert.equal(udevDeviceId(uevent('add', ...LOOP0)), 'b7:0');
  assert.equal(
    udevDeviceId(uevent('add', '/devices/virtual/mem/null', 'mem', { MAJOR: '1', MINOR: '3' })),
    'c1:3',
  );
  assert.equal(udevDeviceId(uevent('add', '/devices/virtual/net/lo', 'net', { IFINDEX: '1' })), 'n1');
  assert.equal(
    udevDeviceId(uevent('add', '/devices/platform/serial8250', 'platform')),
    '+platform:serial8250',
  );
});

test('libudev messages may carry property names udev rules allow (a dot), the kernel format may not', () => {
  const props: [string, string][] = [
    ['ACTION', 'change'],
    ['DEVPATH', '/devices/virtual/net/lo'],
    ['SUBSYSTEM', 'net'],
    ['SEQNUM', '7'],
    ['net.ifnames', '0'],
  ];
  const udev = parseLibudevMessage(encodeLibudevMessage({ subsystem: 'net', tags: [], properties: props }));
  assert.ok(udev.ok);
  if (udev.ok) assert.equal(udev.event.properties.get('net.ifnames'), '0');
  const kernel = Buffer.from(
    `change@/devices/virtual/net/lo\0${props.map(([k, v]) => `${k}=${v}\0`).join('')}`,
    'latin1',
  );
  const k = parseKernelUevent(kernel);
  assert.equal(k.ok, false);
  if (!k.ok) assert.equal(k.error.code, 'ERR_UEVENT_BAD_PROPERTY');
});
