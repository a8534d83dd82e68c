// encodeKernelUevent writes the kernel wire format exactly and round-trips with the parser.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeKernelUevent } from '../../src/devices/uevent-encode';
import {
  parseKernelUevent,
  parseLibudevMessage,
  type UeventParseResult,
} from '../../src/devices/uevent-parse';
import type { Uevent } from '../../src/devices/types';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/uevents');
const KERNEL_FILES = [
  'raw-attach/msg00-kernel.bin',
  'raw-attach/msg01-kernel.bin',
  'raw-detach/msg00-kernel.bin',
  'raw-detach/msg01-kernel.bin',
  ...fs.readdirSync(path.join(FIXTURES, 'handmade')).map((f) => `handmade/${f}`),
];
const UDEV_FILES = ['raw-attach/msg02-udev.bin', 'raw-attach/msg03-udev.bin', 'raw-detach/msg02-udev.bin'];

function ok(result: UeventParseResult): Uevent {
  if (!result.ok) assert.fail(`${result.error.code}: ${result.error.message}`);
  return result.event;
}

function fields(e: Uevent): unknown[] {
  return [
    e.action,
    e.devpath,
    e.subsystem,
    e.devtype,
    e.devname,
    e.major,
    e.minor,
    e.seqnum,
    [...e.properties],
  ];
}

describe('encodeKernelUevent', () => {
  for (const file of KERNEL_FILES) {
    test(`re-encoding the parsed ${file} gives the recorded bytes`, () => {
      const recorded = fs.readFileSync(path.join(FIXTURES, file));
      assert.deepEqual(encodeKernelUevent(ok(parseKernelUevent(recorded))), recorded);
    });
  }

  for (const file of UDEV_FILES) {
    test(`a libudev event (${file}) survives kernel encoding`, () => {
      const event = ok(parseLibudevMessage(fs.readFileSync(path.join(FIXTURES, file))));
      const again = ok(parseKernelUevent(encodeKernelUevent(event)));
      assert.deepEqual(fields(again), fields(event));
      assert.equal(again.source, 'kernel');
    });
  }

  test('typed fields alone give the kernel order, DEVNAME relative, SEQNUM last', () => {
    const buf = encodeKernelUevent({
      action: 'add',
      devpath: '/devices/virtual/block/sda',
      subsystem: 'block',
      devname: '/dev/sda',
      devtype: 'disk',
      major: 8,
      minor: 0,
      seqnum: 5,
    });
    assert.equal(
      buf.toString('latin1'),
      'add@/devices/virtual/block/sda\0ACTION=add\0DEVPATH=/devices/virtual/block/sda\0SUBSYSTEM=block\0' +
        'MAJOR=8\0MINOR=0\0DEVNAME=sda\0DEVTYPE=disk\0SEQNUM=5\0',
    );
  });

  test('properties keep their order; missing typed fields are filled in around them', () => {
    const buf = encodeKernelUevent({
      action: 'change',
      devpath: '/devices/x',
      subsystem: 'net',
      seqnum: 9,
      properties: { INTERFACE: 'eth0', IFINDEX: '2' },
    });
    assert.equal(
      buf.toString('latin1'),
      'change@/devices/x\0ACTION=change\0DEVPATH=/devices/x\0SUBSYSTEM=net\0INTERFACE=eth0\0IFINDEX=2\0SEQNUM=9\0',
    );
  });

  test('properties given as entries, including ACTION, are not repeated', () => {
    const buf = encodeKernelUevent({
      action: 'add',
      devpath: '/module/loop',
      properties: [
        ['ACTION', 'add'],
        ['DEVPATH', '/module/loop'],
        ['SUBSYSTEM', 'module'],
        ['SEQNUM', '1'],
      ],
    });
    assert.equal(
      buf.toString('latin1'),
      'add@/module/loop\0ACTION=add\0DEVPATH=/module/loop\0SUBSYSTEM=module\0SEQNUM=1\0',
    );
  });

  test('a typed field that contradicts a property is a TypeError', () => {
    assert.throws(
      () => encodeKernelUevent({ action: 'add', devpath: '/x', seqnum: 2, properties: { SEQNUM: '1' } }),
      TypeError,
    );
    assert.throws(
      () => encodeKernelUevent({ action: 'add', devpath: '/x', properties: { ACTION: 'remove' } }),
      TypeError,
    );
  });

  test('it does not validate: bad input is written as given, for negative tests', () => {
    const buf = encodeKernelUevent({ action: 'explode', devpath: 'rel', properties: { 'BAD-KEY': 'a\nb' } });
    assert.equal(buf.toString('latin1'), 'explode@rel\0ACTION=explode\0DEVPATH=rel\0BAD-KEY=a\nb\0');
    assert.equal(parseKernelUevent(buf).ok, false);
  });
});
