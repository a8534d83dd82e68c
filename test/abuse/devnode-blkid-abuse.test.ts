// Abuse of triggerd_devnode.node (setXattr, getXattr, readAbsInfo) and triggerd_blkid.node
// (probe, libraryInfo), the two addons of one-shot calls on paths, through the harness in
// test/helpers/abuse.ts. Only files the test makes and /dev/null, /dev/zero are touched: an
// ioctl or a probe on a real device is not a test's business.
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abuseCall,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  bufferArg,
  expectRefused,
  expectSettled,
  exported,
  Findings,
  HUGE_STRING,
  intArg,
  loadRaw,
  objectArg,
  openFds,
  scratchDir,
  stringArg,
  type RawExports,
} from '../helpers/abuse';

const devnode = loadRaw('triggerd_devnode.node');
const blkid = loadRaw('triggerd_blkid.node');

/** ABS_MAX of <linux/input-event-codes.h>. */
const ABS_MAX = 0x3f;

test('devnode: setXattr, getXattr and readAbsInfo refuse abuse', { skip: devnode.skip }, async () => {
  const n = devnode.exports as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('devnode');
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'x');
  let xattrs = true;
  try {
    n.setXattr(file, 'user.triggerd', Buffer.from('v'));
  } catch {
    xattrs = false; // a file system without user xattrs: the valid calls would be refused
  }
  try {
    await abuseCall(findings, {
      label: 'setXattr',
      call: exported(n, 'setXattr'),
      args: [
        stringArg('path', () => file),
        stringArg('name', () => 'user.triggerd'),
        bufferArg('value', () => Buffer.from('value')),
        boolArg('noFollow', () => false, true),
      ],
      noValidCall: !xattrs,
    });
    await abuseCall(findings, {
      label: 'getXattr',
      call: exported(n, 'getXattr'),
      args: [
        stringArg('path', () => file),
        stringArg('name', () => 'user.triggerd'),
        boolArg('noFollow', () => false, true),
      ],
      noValidCall: !xattrs,
    });
    await abuseCall(findings, {
      label: 'readAbsInfo',
      call: exported(n, 'readAbsInfo'),
      args: [stringArg('devnode', () => '/dev/null'), intArg('axis', 0, ABS_MAX, () => 0)],
      noValidCall: true,
    });
    const refused: [string, () => unknown][] = [
      ['setXattr(1 MiB value)', () => n.setXattr(file, 'user.big', Buffer.alloc(1 << 20))],
      ['setXattr(300-byte name)', () => n.setXattr(file, 'user.' + 'n'.repeat(300), Buffer.from('v'))],
      ['setXattr(no namespace)', () => n.setXattr(file, 'plain', Buffer.from('v'))],
      ['setXattr(a missing file)', () => n.setXattr(path.join(dir, 'missing'), 'user.x', Buffer.from('v'))],
      ['setXattr(1 MiB path)', () => n.setXattr(HUGE_STRING, 'user.x', Buffer.from('v'))],
      ['getXattr(an attribute not set)', () => n.getXattr(file, 'user.unset')],
      ['getXattr(1 MiB name)', () => n.getXattr(file, 'user.' + 'n'.repeat(1 << 20))],
      ['getXattr(a missing file)', () => n.getXattr(path.join(dir, 'missing'), 'user.x', true)],
    ];
    for (const devicePath of ['/dev/null', '/dev/zero', dir, file, path.join(dir, 'missing'), HUGE_STRING]) {
      for (const axis of [0, ABS_MAX]) {
        refused.push([
          `readAbsInfo(${devicePath.slice(0, 40)}, ${axis})`,
          () => n.readAbsInfo(devicePath, axis),
        ]);
      }
    }
    for (const [what, call] of refused) await expectRefused(findings, what, { call }, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'devnode');
  await assertProcessUsable();
});

test(
  'blkid: probe and libraryInfo refuse abuse; odd files probe to an answer or an error',
  { skip: blkid.skip },
  async () => {
    const n = blkid.exports as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('blkid');
    const image = path.join(dir, 'image');
    fs.writeFileSync(image, Buffer.alloc(256 * 1024));
    try {
      await abuseCall(findings, {
        label: 'probe',
        call: exported(n, 'probe'),
        args: [
          stringArg('devnode', () => image),
          objectArg('options', () => ({ offset: 0, noraid: false }), [
            intArg('offset', 0, 2 ** 53 - 1, () => 0),
            boolArg('noraid', () => false),
            // libblkid takes any hint text (one it does not know is ignored): no size limit here.
            stringArg('hint', () => 'session_offset=0', { optional: true, huge: false }),
          ]),
        ],
      });
      await abuseCall(findings, { label: 'libraryInfo', call: exported(n, 'libraryInfo'), args: [] });
      // Whatever these are, the probe settles: a result, or a rejection with a code.
      const odd: [string, string, Record<string, unknown>][] = [
        ['a directory', dir, { offset: 0, noraid: false }],
        ['/dev/null', '/dev/null', { offset: 0, noraid: true }],
        ['/dev/zero', '/dev/zero', { offset: 0, noraid: false }],
        ['an empty file', path.join(dir, 'empty'), { offset: 0, noraid: false }],
        ['past the end', image, { offset: 2 ** 53 - 1, noraid: false }],
        ['at the end', image, { offset: 256 * 1024, noraid: false }],
        ['a hint without =', image, { offset: 0, noraid: false, hint: 'nonsense' }],
        ['a hint with =', image, { offset: 0, noraid: false, hint: '=' }],
        [
          'a hint with a huge number',
          image,
          { offset: 0, noraid: false, hint: 'session_offset=99999999999999999999999' },
        ],
        ['a 64 KiB hint', image, { offset: 0, noraid: false, hint: 'h'.repeat(65536) + '=1' }],
        ['a missing file', path.join(dir, 'missing'), { offset: 0, noraid: false }],
        ['a 1 MiB path', HUGE_STRING, { offset: 0, noraid: false }],
      ];
      fs.writeFileSync(path.join(dir, 'empty'), '');
      for (const [what, devicePath, options] of odd) {
        await expectSettled(findings, `probe(${what})`, { call: () => n.probe(devicePath, options) }, []);
      }
      // Many at once: the threadpool runs them side by side.
      await Promise.allSettled(
        Array.from({ length: 32 }, () => n.probe(image, { offset: 0, noraid: false })),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'blkid');
    await assertProcessUsable();
  },
);
