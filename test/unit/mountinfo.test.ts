// The mountinfo parser and differ: golden lines (octal escapes, optional fields, fuse subtypes,
// a missing super-options field), garbled lines reported with their line number and skipped,
// diffs by mount id, and a fuzz run of 10,000+ generated and mutated lines that never throws.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  diffMountTables,
  escapeMountField,
  mountTable,
  parseMountInfo,
  unescapeMountField,
  type MountEntry,
} from '../../src/mounts/mountinfo';
import { MountInfoMonitor } from '../../src/mounts/mountinfo-watch';
import { Prng } from '../helpers/prng';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/mounts');

function line(e: MountEntry): string {
  return [
    e.id,
    e.parentId,
    `${e.major}:${e.minor}`,
    escapeMountField(e.root),
    escapeMountField(e.mountPoint),
    e.options,
    ...e.optionalFields,
    '-',
    escapeMountField(e.fsType),
    escapeMountField(e.source),
    e.superOptions,
  ].join(' ');
}

describe('parseMountInfo: golden lines', () => {
  const text = fs.readFileSync(path.join(FIXTURES, 'mountinfo-golden.txt'), 'utf8');
  const { entries, problems } = parseMountInfo(text);

  test('every line parses', () => {
    assert.deepEqual(problems, []);
    assert.equal(entries.length, 9);
  });

  test('the proc(5) example line', () => {
    assert.deepEqual(entries[2], {
      id: 36,
      parentId: 35,
      major: 98,
      minor: 0,
      root: '/mnt1',
      mountPoint: '/mnt2',
      options: 'rw,noatime',
      optionalFields: ['master:1'],
      fsType: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    });
  });

  test('octal escapes in the mount point, source and root', () => {
    assert.equal(entries[3]?.mountPoint, '/mnt/with space');
    assert.equal(entries[3]?.source, 'my tmpfs');
    assert.deepEqual(entries[3]?.optionalFields, ['shared:7', 'master:3', 'propagate_from:2', 'unbindable']);
    assert.equal(entries[4]?.root, '/sub\\dir');
    assert.equal(entries[4]?.mountPoint, '/mnt/back\\slash');
    assert.equal(entries[6]?.mountPoint, '/mnt/tab\tand\nnewline');
    assert.equal(entries[8]?.mountPoint, '/mnt/utfä');
  });

  test('fuse subtypes and a missing super options field', () => {
    assert.equal(entries[5]?.fsType, 'fuse.gvfsd-fuse');
    assert.equal(entries[7]?.superOptions, '');
    assert.equal(entries[7]?.fsType, 'overlay');
  });

  test('escape and unescape are inverse', () => {
    for (const s of ['/a b', 'x\\y', 'tab\there', 'nl\nx', '/plain', ''])
      assert.equal(unescapeMountField(escapeMountField(s)), s);
    assert.equal(unescapeMountField('\\999'), '\\999');
    assert.equal(unescapeMountField('trailing\\04'), 'trailing\\04');
  });

  test('round trip through the writer', () => {
    const again = parseMountInfo(entries.map(line).join('\n') + '\n');
    assert.deepEqual(again.entries, entries);
  });
});

describe('parseMountInfo: garbage', () => {
  const cases: [string, RegExp][] = [
    ['', /./],
    ['36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw', /separator/],
    ['x 35 98:0 /a /b rw - ext4 /dev/x rw', /mount id/],
    ['36 y 98:0 /a /b rw - ext4 /dev/x rw', /parent id/],
    ['36 35 98 /a /b rw - ext4 /dev/x rw', /major:minor/],
    ['36 35 98:0 /a relative rw - ext4 /dev/x rw', /not absolute/],
    ['36 35 98:0 /a /b rw -', /fields/],
    ['36 35 98:0 /a /b rw - ext4 /dev/x rw extra', /at most 3/],
    ['36 35', /fields/],
  ];
  for (const [text, reason] of cases.slice(1)) {
    test(JSON.stringify(text), () => {
      const r = parseMountInfo(`27 1 254:0 / / rw - ext4 /dev/vda rw\n${text}\n`);
      assert.equal(r.entries.length, 1);
      assert.equal(r.problems.length, 1);
      assert.equal(r.problems[0]?.line, 2);
      assert.match(r.problems[0]?.reason ?? '', reason);
    });
  }

  test('a duplicate mount id is reported, the first kept', () => {
    const r = parseMountInfo('27 1 254:0 / / rw - ext4 /dev/vda rw\n27 1 254:0 / /x rw - ext4 /dev/vda rw\n');
    assert.equal(r.entries.length, 1);
    assert.equal(r.entries[0]?.mountPoint, '/');
    assert.match(r.problems[0]?.reason ?? '', /twice/);
  });
});

describe('diffMountTables', () => {
  const a = parseMountInfo(
    '27 1 254:0 / / rw - ext4 /dev/vda rw\n40 27 0:38 / /mnt/a rw - tmpfs tmpfs rw\n41 27 0:39 / /mnt/b rw - tmpfs tmpfs rw\n',
  ).entries;
  const b = parseMountInfo(
    '27 1 254:0 / / rw - ext4 /dev/vda rw\n41 27 0:39 / /mnt/b ro - tmpfs tmpfs ro\n42 27 0:40 / /mnt/c rw - tmpfs tmpfs rw\n',
  ).entries;

  test('added, removed and changed by mount id', () => {
    const d = diffMountTables(mountTable(a), mountTable(b));
    assert.deepEqual(
      d.added.map((e) => e.mountPoint),
      ['/mnt/c'],
    );
    assert.deepEqual(
      d.removed.map((e) => e.mountPoint),
      ['/mnt/a'],
    );
    assert.deepEqual(
      d.changed.map((c) => [c.before.options, c.after.options]),
      [['rw', 'ro']],
    );
  });

  test('a table against itself is empty; against nothing is all added', () => {
    const d = diffMountTables(mountTable(a), mountTable(a));
    assert.equal(d.added.length + d.removed.length + d.changed.length, 0);
    assert.equal(diffMountTables(new Map(), mountTable(a)).added.length, 3);
  });

  test('a move keeps the id and changes the mount point', () => {
    const moved = parseMountInfo('40 27 0:38 / /mnt/z rw - tmpfs tmpfs rw\n').entries;
    const d = diffMountTables(mountTable([a[1] as MountEntry]), mountTable(moved));
    assert.equal(d.changed[0]?.after.mountPoint, '/mnt/z');
  });
});

describe('parseMountInfo: fuzz', () => {
  test('10,000 generated lines and 10,000 mutations never throw; valid lines round-trip', () => {
    const rnd = new Prng(0x6d6e74);
    const alphabet = ['a', 'b', ' ', '\t', '\n', '\\', '/', 'ä', '-', ':', ',', '0', '7', '\u0000', '€'];
    const word = (n: number): string => Array.from({ length: rnd.int(n) }, () => rnd.pick(alphabet)).join('');
    const generated: MountEntry[] = [];
    for (let i = 0; i < 10_000; i++) {
      const opt = ['shared:1', 'master:2', 'propagate_from:3', 'unbindable'].filter(() => rnd.int(3) === 0);
      generated.push({
        id: i + 1,
        parentId: rnd.int(1000),
        major: rnd.int(300),
        minor: rnd.int(300),
        root: `/${word(8)}`,
        mountPoint: `/${word(12)}`,
        options: rnd.pick(['rw', 'ro,nosuid', 'rw,relatime']),
        optionalFields: opt,
        fsType: rnd.pick(['ext4', 'tmpfs', 'fuse.sshfs', 'overlay']),
        source: word(10) || 'none',
        superOptions: rnd.pick(['rw', '', 'rw,size=1k']),
      });
    }
    const text = generated.map(line).join('\n');
    const parsed = parseMountInfo(text);
    assert.equal(parsed.problems.length, 0);
    assert.deepEqual(parsed.entries, generated);

    const lines = text.split('\n');
    let problems = 0;
    for (let i = 0; i < 10_000; i++) {
      let l = rnd.pick(lines);
      const cuts = 1 + rnd.int(4);
      for (let c = 0; c < cuts; c++) {
        const at = rnd.int(l.length + 1);
        const op = rnd.int(4);
        if (op === 0) l = l.slice(0, at);
        else if (op === 1)
          l = l.slice(0, at) + rnd.pick([' ', '-', '\\', '\\0', 'x', ':', '\uffff']) + l.slice(at);
        else if (op === 2) l = l.slice(0, at) + l.slice(at + 1 + rnd.int(8));
        else l = rnd.bytes(rnd.int(60)).toString('latin1');
      }
      const r = parseMountInfo(l);
      problems += r.problems.length;
      for (const p of r.problems) assert.ok(p.line >= 1 && p.reason.length > 0);
    }
    assert.ok(problems > 1000, `most mutations are garbage (${problems})`);
  });
});

describe('MountInfoMonitor (virtual time, no addon)', () => {
  test('wake-ups in between reads cost one read; refresh() reads now', () => {
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    let table = '27 1 254:0 / / rw - ext4 /dev/vda rw\n';
    const updates: number[] = [];
    const m = new MountInfoMonitor({
      native: undefined,
      fallbackPollMs: 100,
      minIntervalMs: 10,
      read: () => table,
      now: () => now,
      setTimer: (ms, fn) => {
        const t = { at: now + ms, fn };
        timers.push(t);
        return () => {
          const i = timers.indexOf(t);
          if (i >= 0) timers.splice(i, 1);
        };
      },
      onUpdate: (u) => updates.push(u.diff.added.length - u.diff.removed.length),
    });
    const advance = (ms: number): void => {
      const end = now + ms;
      for (;;) {
        timers.sort((x, y) => x.at - y.at);
        const t = timers[0];
        if (t === undefined || t.at > end) break;
        timers.shift();
        now = t.at;
        t.fn();
      }
      now = end;
    };
    m.start();
    assert.deepEqual(updates, [1]);
    table += '40 27 0:38 / /mnt/a rw - tmpfs tmpfs rw\n';
    advance(250);
    assert.deepEqual(updates, [1, 1]);
    assert.ok(m.stats.reads >= 3);
    table = '27 1 254:0 / / rw - ext4 /dev/vda rw\n';
    m.refresh();
    assert.deepEqual(updates, [1, 1, -1]);
    m.close();
    advance(1000);
    assert.equal(timers.length, 0);
  });
});
