// The /run/udev writer: the record must be byte for byte what udevd 252 wrote for loop0
// (test/fixtures/udev/db-b7:0), plus the tag index, claim directories and atomic replacement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseKernelUevent } from '../../src/devices/uevent-parse';
import { udevDeviceId, parseUdevDbRecord } from '../../src/devices/udev-db';
import {
  escapeLinkName,
  formatUdevDbRecord,
  siphash24,
  udevDbEntryFor,
  UdevDbWriter,
} from '../../src/devices/udev-db-writer';
import { loop0Result } from '../helpers/loop0-result';

const ROOT = path.join(__dirname, '..', '..', '..');
const RECORD = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'udev', 'db-b7:0'), 'utf8');

function loop0Event() {
  const parsed = parseKernelUevent(
    fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'uevents', 'raw-attach', 'msg00-kernel.bin')),
  );
  assert.ok(parsed.ok);
  return parsed.event;
}

function tempRoot(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-udevdb-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("the record of loop0 is byte for byte udevd's (358 bytes)", () => {
  const event = loop0Event();
  // Kernel keys and hidden keys in the result must not become E: lines.
  const result = loop0Result();
  result.properties = new Map([...event.properties, ...result.properties, ['.HIDDEN', '1']]);
  const entry = udevDbEntryFor(event, result, { id: udevDeviceId(event), usecInitialized: 11761242860n });
  assert.equal(entry.id, 'b7:0');
  const text = formatUdevDbRecord(entry);
  assert.equal(text, RECORD);
  assert.equal(Buffer.byteLength(text), 358);
});

test('L: for a non-zero priority, W: only when a watch handle is given, S: only with a devnum', () => {
  const base = {
    id: 'b7:1',
    hasDevnum: true,
    hasIfindex: false,
    devlinks: ['disk/by-x/y'],
    linkPriority: -100,
    usecInitialized: 5n,
    properties: [['A', '1']] as const,
    tags: ['t'],
    currentTags: [],
  };
  assert.equal(formatUdevDbRecord(base), 'S:disk/by-x/y\nL:-100\nI:5\nE:A=1\nG:t\nV:1\n');
  assert.equal(
    formatUdevDbRecord({ ...base, watchHandle: 7 }),
    'S:disk/by-x/y\nL:-100\nW:7\nI:5\nE:A=1\nG:t\nV:1\n',
  );
  assert.equal(formatUdevDbRecord({ ...base, hasDevnum: false }), 'I:5\nE:A=1\nG:t\nV:1\n');
  assert.equal(formatUdevDbRecord({ ...base, devlinks: [], linkPriority: 0, properties: [], tags: [] }), '');
});

test('writeDevice: mode 0644 record, tag files, stale tags removed, previous USEC_INITIALIZED kept', async (t) => {
  const root = tempRoot(t);
  const writer = new UdevDbWriter({ root });
  const event = loop0Event();
  const result = loop0Result();
  result.tags.add('seat');
  const old = process.umask(0o077);
  try {
    assert.deepEqual(
      await writer.writeDevice(udevDbEntryFor(event, result, { id: 'b7:0', usecInitialized: 42n })),
      [],
    );
  } finally {
    process.umask(old);
  }
  const st = fs.statSync(path.join(root, 'data', 'b7:0'));
  assert.equal(st.mode & 0o7777, 0o644);
  assert.equal(fs.statSync(path.join(root, 'tags', 'seat', 'b7:0')).mode & 0o777, 0o444);
  assert.equal(fs.statSync(path.join(root, 'tags', 'systemd', 'b7:0')).size, 0);
  // Next event: 'seat' no longer current, but G: keeps every tag ever set (TAGS), as udevd does.
  const previous = writer.readRecord('b7:0');
  assert.equal(previous?.usecInitialized, '42');
  const next = udevDbEntryFor(event, loop0Result(), { id: 'b7:0', previous });
  assert.equal(next.usecInitialized, 42n);
  assert.deepEqual([...next.tags], ['systemd', 'seat']);
  assert.deepEqual([...next.currentTags], ['systemd']);
  assert.deepEqual(await writer.writeDevice({ ...next, tags: ['systemd'] }), []);
  assert.equal(
    fs.existsSync(path.join(root, 'tags', 'seat')),
    false,
    'stale tag file and its empty dir removed',
  );
  assert.ok(fs.existsSync(path.join(root, 'tags', 'systemd', 'b7:0')));
  // No temp files left behind.
  assert.deepEqual(fs.readdirSync(path.join(root, 'data')), ['b7:0']);
});

test('writeDevice replaces atomically: a reader never sees a partial record', async (t) => {
  const root = tempRoot(t);
  const writer = new UdevDbWriter({ root });
  const event = loop0Event();
  await writer.writeDevice(udevDbEntryFor(event, loop0Result(), { id: 'b7:0', usecInitialized: 1n }));
  const inode = fs.statSync(path.join(root, 'data', 'b7:0')).ino;
  await writer.writeDevice(udevDbEntryFor(event, loop0Result(), { id: 'b7:0', usecInitialized: 2n }));
  // rename() over the old file: a new inode, so an open reader keeps the whole old text.
  assert.notEqual(fs.statSync(path.join(root, 'data', 'b7:0')).ino, inode);
  assert.equal(
    parseUdevDbRecord(fs.readFileSync(path.join(root, 'data', 'b7:0'), 'utf8')).usecInitialized,
    '2',
  );
});

test('db_persist gives mode 01644', async (t) => {
  const root = tempRoot(t);
  const result = loop0Result();
  result.options.add('db_persist');
  await new UdevDbWriter({ root }).writeDevice(
    udevDbEntryFor(loop0Event(), result, { id: 'b7:0', usecInitialized: 1n }),
  );
  assert.equal(fs.statSync(path.join(root, 'data', 'b7:0')).mode & 0o7777, 0o1644);
});

test('removeDeviceDb removes the record and every tag file', async (t) => {
  const root = tempRoot(t);
  const writer = new UdevDbWriter({ root });
  await writer.writeDevice(udevDbEntryFor(loop0Event(), loop0Result(), { id: 'b7:0', usecInitialized: 1n }));
  assert.deepEqual(await writer.removeDeviceDb('b7:0'), []);
  assert.equal(fs.existsSync(path.join(root, 'data', 'b7:0')), false);
  assert.equal(fs.existsSync(path.join(root, 'tags', 'systemd')), false);
  assert.deepEqual(await writer.removeDeviceDb('b7:0'), []); // idempotent
  assert.throws(() => writer.removeDeviceDb('../x'), { code: 'ERR_UDEV_DB_BAD_ID' });
});

test('link claims: escaped directory name, "<prio>:<devnode>" symlink as in links-loop0.txt', async (t) => {
  const root = tempRoot(t);
  const writer = new UdevDbWriter({ root });
  assert.equal(escapeLinkName('disk/by-label/anchorfmt'), 'disk\\x2fby-label\\x2fanchorfmt');
  assert.equal(escapeLinkName('a\\b'), 'a\\x5cb');
  await writer.writeLinkClaim('disk/by-label/anchorfmt', { id: 'b7:0', priority: 0, devnode: '/dev/loop0' });
  const dir = path.join(root, 'links', 'disk\\x2fby-label\\x2fanchorfmt');
  assert.equal(fs.readlinkSync(path.join(dir, 'b7:0')), '0:/dev/loop0');
  fs.writeFileSync(path.join(dir, '.lock'), ''); // udevd 252's lock file is ignored
  await writer.writeLinkClaim('/dev/disk/by-label/anchorfmt', {
    id: 'b7:1',
    priority: -5,
    devnode: '/dev/loop1',
  });
  assert.deepEqual(writer.readLinkClaims('disk/by-label/anchorfmt'), [
    { id: 'b7:0', priority: 0, devnode: '/dev/loop0' },
    { id: 'b7:1', priority: -5, devnode: '/dev/loop1' },
  ]);
  await writer.removeLinkClaim('disk/by-label/anchorfmt', 'b7:0');
  await writer.removeLinkClaim('disk/by-label/anchorfmt', 'b7:1');
  assert.equal(fs.existsSync(dir), false, 'an unclaimed directory goes');
  assert.throws(() => writer.writeLinkClaim('../etc/x', { id: 'b7:0', priority: 0, devnode: '/dev/loop0' }), {
    code: 'ERR_UDEV_DB_BAD_LINK',
  });
});

test('siphash24 matches the reference vector; over-long link names end in a hash and fit NAME_MAX', () => {
  // SipHash-2-4 paper, key 00..0f, message 00..0e: a129ca6149be45e5
  const key = Buffer.from([...Array(16).keys()]);
  const msg = Buffer.from([...Array(15).keys()]);
  assert.equal(siphash24(msg, key), 0xa129ca6149be45e5n);
  const long = escapeLinkName('x'.repeat(300));
  assert.equal(long.length, 255);
  assert.equal(long.slice(0, 244), 'x'.repeat(244));
  assert.match(long.slice(244), /^[A-Za-z0-9_-]{11}$/);
});
