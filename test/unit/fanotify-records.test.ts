// parseFanotifyRecords: metadata with and without info records (FID, DFID_NAME, old/new names,
// PIDFD, ERROR, RANGE, unknown types), overflow, permission flags, and garbage (short or
// overlong lengths, wrong versions, info records running past the event, a handle longer than
// MAX_HANDLE_SZ, names without NUL, random bytes and mutations) that must never throw.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FAN_INFO,
  FAN_NOFD,
  FANOTIFY_METADATA_BYTES,
  parseFanotifyRecords,
} from '../../src/events/fanotify-events';
import { FAN } from '../../src/native/fanotify-addon';
import { encodeFanotifyRecords, fakeFileHandle } from '../helpers/fake-fanotify';
import { Prng } from '../helpers/prng';

describe('parseFanotifyRecords', () => {
  test('a bare event: mask, fd, pid, permission flag', () => {
    const buf = encodeFanotifyRecords([
      { mask: FAN.OPEN_PERM, fd: 17, pid: 1234 },
      { mask: FAN.CLOSE_WRITE, fd: 18, pid: 99 },
    ]);
    assert.equal(buf.length, 2 * FANOTIFY_METADATA_BYTES);
    const parsed = parseFanotifyRecords(buf);
    assert.equal(parsed.garbledBytes, 0);
    assert.equal(parsed.overflow, false);
    assert.deepEqual(
      parsed.records.map((r) => [r.mask, r.fd, r.pid, r.permission, r.garbled]),
      [
        [FAN.OPEN_PERM, 17, 1234, true, false],
        [FAN.CLOSE_WRITE, 18, 99, false, false],
      ],
    );
  });

  test('pre-content events are permission events', () => {
    const parsed = parseFanotifyRecords(
      encodeFanotifyRecords([
        { mask: FAN.PRE_ACCESS, fd: 5, pid: 1, info: [{ type: 'range', offset: 4096n, count: 8192n }] },
      ]),
    );
    const r = parsed.records[0];
    assert.equal(r.permission, true);
    assert.deepEqual(r.range, { offset: 4096n, count: 8192n });
  });

  test('DFID_NAME and FID records: fsid, handle, name, cache key', () => {
    const fsid = Buffer.from('0102030405060708', 'hex');
    const buf = encodeFanotifyRecords([
      {
        mask: FAN.CREATE | FAN.ONDIR,
        pid: 7,
        info: [
          { type: 'dfid_name', fsid, handle: fakeFileHandle(42), name: 'subdir' },
          { type: 'fid', fsid, handle: fakeFileHandle(43) },
        ],
      },
    ]);
    const [r] = parseFanotifyRecords(buf).records;
    assert.equal(r.fd, FAN_NOFD);
    assert.equal(r.garbled, false);
    assert.equal(r.fids.length, 2);
    assert.equal(r.fids[0].infoType, FAN_INFO.DFID_NAME);
    assert.equal(r.fids[0].fsid, '0102030405060708');
    assert.equal(r.fids[0].name, 'subdir');
    assert.deepEqual(r.fids[0].handle, fakeFileHandle(42));
    assert.equal(r.fids[0].key, '0102030405060708' + fakeFileHandle(42).toString('hex'));
    assert.equal(r.fids[1].infoType, FAN_INFO.FID);
    assert.equal(r.fids[1].name, undefined);
  });

  test('rename: old and new directory names; pidfd, error and unknown info types', () => {
    const [r] = parseFanotifyRecords(
      encodeFanotifyRecords([
        {
          mask: FAN.RENAME,
          pid: 1,
          info: [
            { type: 'old_dfid_name', handle: fakeFileHandle(1), name: 'a' },
            { type: 'new_dfid_name', handle: fakeFileHandle(2), name: 'b' },
            { type: 'pidfd', pidfd: 33 },
            { type: 'error', error: -5, count: 2 },
            { type: 'raw', infoType: 200, body: Buffer.alloc(4) },
          ],
        },
      ]),
    ).records;
    assert.deepEqual(
      r.fids.map((f) => [f.infoType, f.name]),
      [
        [FAN_INFO.OLD_DFID_NAME, 'a'],
        [FAN_INFO.NEW_DFID_NAME, 'b'],
      ],
    );
    assert.equal(r.pidfd, 33);
    assert.deepEqual(r.error, { error: -5, count: 2 });
    assert.deepEqual(r.unknownInfo, [200]);
    assert.equal(r.garbled, false);
  });

  test('FAN_Q_OVERFLOW is reported and flagged', () => {
    const parsed = parseFanotifyRecords(
      encodeFanotifyRecords([{ mask: FAN.CREATE, pid: 1 }, { mask: FAN.Q_OVERFLOW }]),
    );
    assert.equal(parsed.overflow, true);
    assert.equal(parsed.records[1].overflow, true);
    assert.equal(parsed.records[1].fd, FAN_NOFD);
  });

  test('a 64-bit mask keeps its high half', () => {
    const buf = encodeFanotifyRecords([{ mask: FAN.CREATE }]);
    buf.writeUInt32LE(1, 12);
    assert.equal(parseFanotifyRecords(buf).records[0].mask, 2 ** 32 + FAN.CREATE);
  });

  describe('garbage', () => {
    test('short buffers and event_len below 24 or past the end stop the parse', () => {
      assert.deepEqual(parseFanotifyRecords(Buffer.alloc(0)), {
        records: [],
        overflow: false,
        garbledBytes: 0,
      });
      assert.equal(parseFanotifyRecords(Buffer.alloc(23)).garbledBytes, 23);
      const good = encodeFanotifyRecords([{ mask: FAN.OPEN, fd: 3, pid: 1 }]);
      const tooShort = Buffer.from(good);
      tooShort.writeUInt32LE(8, 0);
      assert.deepEqual(parseFanotifyRecords(Buffer.concat([good, tooShort])).records.length, 1);
      const tooLong = Buffer.from(good);
      tooLong.writeUInt32LE(1000, 0);
      const parsed = parseFanotifyRecords(Buffer.concat([good, tooLong]));
      assert.equal(parsed.records.length, 1);
      assert.equal(parsed.garbledBytes, 24);
    });

    test('a wrong version or metadata_len marks the record garbled but keeps its fd', () => {
      const buf = encodeFanotifyRecords([
        { mask: FAN.OPEN_PERM, fd: 9, pid: 1 },
        { mask: FAN.OPEN, fd: 10, pid: 2 },
      ]);
      buf.writeUInt8(2, 4);
      buf.writeUInt16LE(200, 24 + 6);
      const parsed = parseFanotifyRecords(buf);
      assert.deepEqual(
        parsed.records.map((r) => [r.fd, r.garbled, r.permission]),
        [
          [9, true, true],
          [10, true, false],
        ],
      );
    });

    test('info records that run past the event, oversize handles and unterminated names', () => {
      const make = (): Buffer =>
        encodeFanotifyRecords([
          { mask: FAN.CREATE, pid: 1, info: [{ type: 'dfid_name', handle: fakeFileHandle(1), name: 'x' }] },
        ]);
      const overrun = make();
      overrun.writeUInt16LE(400, 24 + 2);
      assert.equal(parseFanotifyRecords(overrun).records[0].garbled, true);
      const zeroLen = make();
      zeroLen.writeUInt16LE(0, 24 + 2);
      assert.equal(parseFanotifyRecords(zeroLen).records[0].garbled, true);
      const bigHandle = make();
      bigHandle.writeUInt32LE(129, 24 + 12);
      const r = parseFanotifyRecords(bigHandle).records[0];
      assert.equal(r.garbled, true);
      assert.equal(r.fids.length, 0);
      const noNul = make();
      // The name 'x\0' padded to 4: overwrite the NUL and the padding.
      noNul.fill(0x41, noNul.length - 3);
      assert.equal(parseFanotifyRecords(noNul).records[0].garbled, true);
      const shortPidfd = encodeFanotifyRecords([
        { mask: FAN.OPEN, info: [{ type: 'raw', infoType: FAN_INFO.PIDFD, body: Buffer.alloc(0) }] },
      ]);
      assert.equal(parseFanotifyRecords(shortPidfd).records[0].garbled, true);
      const shortRange = encodeFanotifyRecords([
        { mask: FAN.PRE_ACCESS, info: [{ type: 'raw', infoType: FAN_INFO.RANGE, body: Buffer.alloc(8) }] },
      ]);
      assert.equal(parseFanotifyRecords(shortRange).records[0].garbled, true);
    });

    test('random bytes and mutations of real records never throw (seeded)', () => {
      const rng = new Prng(0xfa70);
      const base = encodeFanotifyRecords([
        {
          mask: FAN.CREATE | FAN.ONDIR,
          pid: 5,
          info: [{ type: 'dfid_name', handle: fakeFileHandle(7), name: 'dir' }],
        },
        { mask: FAN.OPEN_PERM, fd: 12, pid: 6 },
        { mask: FAN.PRE_ACCESS, fd: 13, pid: 6, info: [{ type: 'range', offset: 0n, count: 1n }] },
        { mask: FAN.Q_OVERFLOW },
      ]);
      for (let i = 0; i < 20_000; i++) {
        let buf: Buffer;
        if (i % 2 === 0) buf = rng.bytes(rng.int(300));
        else {
          buf = Buffer.from(base.subarray(0, rng.int(base.length + 1)));
          for (let k = rng.int(6); k > 0; k--) if (buf.length > 0) buf[rng.int(buf.length)] = rng.int(256);
        }
        const parsed = parseFanotifyRecords(buf);
        for (const r of parsed.records) assert.ok(Number.isInteger(r.fd) && Number.isFinite(r.mask));
        const consumed = buf.length - parsed.garbledBytes;
        assert.ok(consumed >= 0 && consumed <= buf.length, `seed 0xfa70 iteration ${i}`);
      }
    });
  });
});
