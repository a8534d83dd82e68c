// parseInotifyRecords: whole records with and without names, NUL padding, overflow, and garbage
// (short headers, names longer than the buffer, random bytes) that must never throw.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInotifyRecords, INOTIFY_HEADER_BYTES } from '../../src/events/inotify-events';
import { IN } from '../../src/native/inotify-addon';
import { encodeInotifyRecords } from '../helpers/fake-inotify';
import { mulberry32 } from '../helpers/prng';

describe('parseInotifyRecords', () => {
  test('records without names (a watched device node)', () => {
    const buf = encodeInotifyRecords([
      { wd: 3, mask: IN.CLOSE_WRITE },
      { wd: 3, mask: IN.IGNORED },
    ]);
    assert.equal(buf.length, 2 * INOTIFY_HEADER_BYTES);
    assert.deepEqual(parseInotifyRecords(buf), {
      records: [
        { wd: 3, mask: IN.CLOSE_WRITE, cookie: 0, name: '' },
        { wd: 3, mask: IN.IGNORED, cookie: 0, name: '' },
      ],
      overflow: false,
      garbledBytes: 0,
    });
  });

  test('names inside a watched directory lose their NUL padding; cookies pair moves', () => {
    const buf = encodeInotifyRecords([
      { wd: 1, mask: IN.CREATE, name: 'a' },
      { wd: 1, mask: IN.MOVED_FROM, cookie: 77, name: 'abc' },
      { wd: 1, mask: IN.MOVED_TO, cookie: 77, name: 'abcd' },
      { wd: 1, mask: IN.CREATE | IN.ISDIR, name: 'dir-ü' },
    ]);
    // 'a' → 4 bytes of name, 'abc' → 4, 'abcd' → 8 (room for the NUL), 'dir-ü' (6 bytes) → 8.
    assert.equal(buf.length, 4 * 16 + 4 + 4 + 8 + 8);
    const parsed = parseInotifyRecords(buf);
    assert.deepEqual(
      parsed.records.map((r) => [r.mask, r.cookie, r.name]),
      [
        [IN.CREATE, 0, 'a'],
        [IN.MOVED_FROM, 77, 'abc'],
        [IN.MOVED_TO, 77, 'abcd'],
        [IN.CREATE | IN.ISDIR, 0, 'dir-ü'],
      ],
    );
    assert.equal(parsed.garbledBytes, 0);
  });

  test('IN_Q_OVERFLOW (wd -1) is reported and kept among the records', () => {
    const buf = encodeInotifyRecords([
      { wd: 2, mask: IN.CLOSE_WRITE },
      { wd: -1, mask: IN.Q_OVERFLOW },
    ]);
    const parsed = parseInotifyRecords(buf);
    assert.equal(parsed.overflow, true);
    assert.deepEqual(parsed.records[1], { wd: -1, mask: IN.Q_OVERFLOW, cookie: 0, name: '' });
  });

  test('an empty buffer is no records', () => {
    assert.deepEqual(parseInotifyRecords(Buffer.alloc(0)), { records: [], overflow: false, garbledBytes: 0 });
  });

  test('a short header ends the parse and is counted', () => {
    const whole = encodeInotifyRecords([{ wd: 1, mask: IN.CLOSE_WRITE }]);
    const buf = Buffer.concat([whole, whole.subarray(0, 10)]);
    const parsed = parseInotifyRecords(buf);
    assert.equal(parsed.records.length, 1);
    assert.equal(parsed.garbledBytes, 10);
  });

  test('a name length past the end of the buffer ends the parse', () => {
    const buf = encodeInotifyRecords([{ wd: 1, mask: IN.CREATE, name: 'file' }]);
    buf.writeUInt32LE(0xffffffff, 12);
    const parsed = parseInotifyRecords(buf);
    assert.deepEqual(parsed.records, []);
    assert.equal(parsed.garbledBytes, buf.length);
  });

  test('a name without any NUL takes the whole name field', () => {
    const buf = Buffer.alloc(16 + 4);
    buf.writeInt32LE(5, 0);
    buf.writeUInt32LE(IN.CREATE, 4);
    buf.writeUInt32LE(4, 12);
    buf.write('wxyz', 16);
    assert.equal(parseInotifyRecords(buf).records[0]?.name, 'wxyz');
  });

  test('a view into a larger buffer (non-zero byteOffset) parses only its own bytes', () => {
    const inner = encodeInotifyRecords([{ wd: 9, mask: IN.MODIFY, name: 'x' }]);
    const outer = Buffer.concat([Buffer.alloc(3, 0xff), inner, Buffer.alloc(5, 0xff)]);
    const parsed = parseInotifyRecords(outer.subarray(3, 3 + inner.length));
    assert.deepEqual(parsed.records, [{ wd: 9, mask: IN.MODIFY, cookie: 0, name: 'x' }]);
  });

  test('random bytes never throw, and what is not parsed is counted', () => {
    const random = mulberry32(0x1b0715);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(random() * 200);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(random() * 256);
      // Small name lengths now and then, so some records parse.
      if (len >= 16 && random() < 0.5) buf.writeUInt32LE(Math.floor(random() * 40), 12);
      const parsed = parseInotifyRecords(buf);
      assert.ok(parsed.garbledBytes >= 0 && parsed.garbledBytes <= len);
      assert.ok(parsed.records.length * INOTIFY_HEADER_BYTES + parsed.garbledBytes <= len);
      assert.equal(parsed.records.length === 0, parsed.garbledBytes === len);
    }
  });
});
