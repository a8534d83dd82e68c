// inotifyEvents hands a big batch on in pieces of at most maxPerTurn records, one per turn, with
// the handle paused meanwhile; splitInotifyRecords cuts on record boundaries using headers only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  inotifyEvents,
  parseInotifyRecords,
  splitInotifyRecords,
  type InotifyRecord,
  type InotifySourceItem,
} from '../../src/events/inotify-events';
import { IN } from '../../src/native/inotify-addon';
import { encodeInotifyRecords, FakeNativeInotify, type FakeRecord } from '../helpers/fake-inotify';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function records(n: number): FakeRecord[] {
  return Array.from({ length: n }, (_, i) => ({ wd: 1, mask: IN.CREATE, name: `f${i}${'x'.repeat(i % 7)}` }));
}

describe('splitInotifyRecords', () => {
  test('pieces of at most N whole records, in order, covering every byte', () => {
    const buf = encodeInotifyRecords(records(10));
    const pieces = splitInotifyRecords(buf, 4);
    assert.deepEqual(
      pieces.map((p) => parseInotifyRecords(p).records.length),
      [4, 4, 2],
    );
    assert.equal(
      pieces.reduce((n, p) => n + p.byteLength, 0),
      buf.byteLength,
    );
    const names = pieces.flatMap((p) => parseInotifyRecords(p).records.map((r) => r.name));
    assert.deepEqual(
      names,
      records(10).map((r) => r.name),
    );
  });

  test('an exact multiple leaves no empty piece; a small batch is one piece', () => {
    assert.equal(splitInotifyRecords(encodeInotifyRecords(records(8)), 4).length, 2);
    assert.equal(splitInotifyRecords(encodeInotifyRecords(records(3)), 4).length, 1);
    assert.equal(splitInotifyRecords(Buffer.alloc(0), 4).length, 1);
  });

  test('trailing garbage stays at the end of the last piece, where the parse counts it', () => {
    const buf = Buffer.concat([encodeInotifyRecords(records(5)), Buffer.from([1, 2, 3])]);
    const pieces = splitInotifyRecords(buf, 2);
    assert.equal(pieces.length, 3);
    const last = parseInotifyRecords(pieces[2]);
    assert.equal(last.records.length, 1);
    assert.equal(last.garbledBytes, 3);
    // A header whose name runs past the end: no record, all of it garbled.
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(1000, 12);
    assert.deepEqual(
      splitInotifyRecords(bad, 2).map((p) => p.byteLength),
      [16],
    );
  });
});

describe('inotifyEvents in pieces', () => {
  test('a batch larger than maxPerTurn: one piece per turn, handle paused until the last', async () => {
    const native = new FakeNativeInotify();
    const items: InotifySourceItem[] = [];
    const sub = inotifyEvents(native, { maxPerTurn: 3 }).subscribe((item) => items.push(item));
    try {
      const fake = native.handle;
      fake.push(records(8));
      fake.overflow();
      await turn(); // the fake's wake-up: first piece at once
      const got = (): InotifyRecord[][] => items.flatMap((i) => (i.kind === 'records' ? [i.records] : []));
      assert.equal(got().length, 1);
      assert.equal(fake.paused, true, 'paused while pieces wait');
      await turn();
      await turn();
      assert.deepEqual(
        got().map((r) => r.length),
        [3, 3, 2],
      );
      assert.deepEqual(
        got()
          .flat()
          .map((r) => r.name),
        records(8).map((r) => r.name),
      );
      // The overflow record came last in the batch: its item follows the last records.
      assert.equal(items[items.length - 1].kind, 'overflow');
      assert.equal(fake.paused, false, 'resumed after the last piece');
    } finally {
      sub.unsubscribe();
    }
  });

  test("the consumer's pause holds across the end of a sliced batch", async () => {
    const native = new FakeNativeInotify();
    const items: InotifySourceItem[] = [];
    const sub = inotifyEvents(native, { maxPerTurn: 2 }).subscribe((item) => items.push(item));
    try {
      const open = items[0];
      assert.equal(open.kind, 'open');
      native.handle.push(records(5));
      await turn();
      if (open.kind === 'open') open.handle.pause();
      await turn();
      await turn();
      assert.equal(native.handle.paused, true);
      if (open.kind === 'open') open.handle.resume();
      assert.equal(native.handle.paused, false);
    } finally {
      sub.unsubscribe();
    }
  });

  test('unsubscribing between pieces emits nothing more and closes the handle', async () => {
    const native = new FakeNativeInotify();
    const items: InotifySourceItem[] = [];
    const sub = inotifyEvents(native, { maxPerTurn: 2 }).subscribe((item) => items.push(item));
    native.handle.push(records(6));
    await turn();
    const before = items.length;
    sub.unsubscribe();
    await turn();
    await turn();
    assert.equal(items.length, before);
    assert.equal(native.handle.closed, true);
  });
});
