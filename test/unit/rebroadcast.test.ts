// Rebroadcast: the libudev datagram triggerd sends for a processed event must be the one udevd
// sent for the same decision, byte for byte (recorded: raw-attach/msg02-udev.bin from msg00).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseKernelUevent, parseLibudevMessage } from '../../src/devices/uevent-parse';
import type { Uevent } from '../../src/devices/types';
import { encodeProcessedEvent, Rebroadcaster, udevEventProperties } from '../../src/devices/rebroadcast';
import { loop0Result } from '../helpers/loop0-result';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'uevents', 'raw-attach');

function kernelEvent(file: string): Uevent {
  const parsed = parseKernelUevent(fs.readFileSync(path.join(FIXTURES, file)));
  assert.ok(parsed.ok, 'fixture parses');
  return parsed.event;
}

test('msg02-udev.bin is rebuilt byte for byte from kernel msg00 and the rules decision', () => {
  const expected = fs.readFileSync(path.join(FIXTURES, 'msg02-udev.bin'));
  const built = encodeProcessedEvent({
    event: kernelEvent('msg00-kernel.bin'),
    result: loop0Result(),
    usecInitialized: 11761242860n,
  });
  assert.equal(built.length, expected.length);
  assert.deepEqual(built, expected);
});

test('a result holding the whole property set (kernel keys included) gives the same bytes', () => {
  const event = kernelEvent('msg00-kernel.bin');
  const result = loop0Result();
  result.properties = new Map([...event.properties, ...result.properties]);
  const built = encodeProcessedEvent({ event, result, usecInitialized: 11761242860n });
  assert.deepEqual(built, fs.readFileSync(path.join(FIXTURES, 'msg02-udev.bin')));
});

test('hidden properties are not sent; rule-changed kernel values keep their place', () => {
  const event = kernelEvent('msg00-kernel.bin');
  const result = loop0Result();
  result.properties.set('.HIDDEN', 'x');
  result.properties.set('SEQNUM', '1'); // read-only: the kernel's value stays
  const props = udevEventProperties({ event, result, usecInitialized: 5n });
  const keys = props.map(([k]) => k);
  assert.ok(!keys.includes('.HIDDEN'));
  assert.equal(new Map(props).get('SEQNUM'), '15611');
  assert.deepEqual(keys.slice(0, 4), ['UDEV_DATABASE_VERSION', 'ACTION', 'DEVPATH', 'SUBSYSTEM']);
});

test('what we send parses back as a libudev message with our decision', () => {
  const buf = encodeProcessedEvent({
    event: kernelEvent('msg00-kernel.bin'),
    result: loop0Result(),
    usecInitialized: 7n,
  });
  const parsed = parseLibudevMessage(buf);
  assert.ok(parsed.ok);
  assert.equal(parsed.event.properties.get('CURRENT_TAGS'), ':systemd:');
  assert.equal(parsed.event.properties.get('DEVNAME'), '/dev/loop0');
});

test('Rebroadcaster sends through the injected send and counts failures without throwing', () => {
  const sent: Buffer[] = [];
  const ok = new Rebroadcaster((b) => sent.push(b));
  assert.equal(
    ok.rebroadcast({ event: kernelEvent('msg00-kernel.bin'), result: loop0Result(), usecInitialized: 1n }),
    true,
  );
  assert.equal(sent.length, 1);
  const errors: string[] = [];
  const failing = new Rebroadcaster(
    () => {
      throw Object.assign(new Error('ENOBUFS'), { code: 'ENOBUFS' });
    },
    (code) => errors.push(code),
  );
  assert.equal(
    failing.rebroadcast({
      event: kernelEvent('msg00-kernel.bin'),
      result: loop0Result(),
      usecInitialized: 1n,
    }),
    false,
  );
  assert.deepEqual(errors, ['ERR_REBROADCAST_SEND']);
  assert.deepEqual(failing.stats, { sent: 0, failed: 1, skipped: 0 });
});

test("synthetic events (the coldplug at start, seqnum 0) are not rebroadcast: udevd sends only the kernel's", () => {
  const sent: Buffer[] = [];
  const r = new Rebroadcaster((b) => sent.push(b));
  const synthetic = { ...kernelEvent('msg00-kernel.bin'), seqnum: 0 };
  assert.equal(r.rebroadcast({ event: synthetic, result: loop0Result(), usecInitialized: 1n }), false);
  assert.equal(sent.length, 0);
  assert.deepEqual(r.stats, { sent: 0, failed: 0, skipped: 1 });
});
