// Abuse of triggerd_libmount.node: mount, umount and libraryInfo, through the harness in
// test/helpers/abuse.ts; then requests libmount has to make sense of (odd sources, option strings
// and file system types), each settling as an outcome or a coded rejection. Everything mounts
// under a temp dir, and whatever got mounted there is unmounted at the end.
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abuseCall,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  expectSettled,
  exported,
  Findings,
  loadRaw,
  objectArg,
  openFds,
  scratchDir,
  stringArg,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_libmount.node');

interface Outcome {
  exitCode: number;
}

/** Unmounts everything mounted at or below `dir`, deepest first. */
function unmountAllUnder(n: RawExports, dir: string): Promise<unknown> {
  const points = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  return points.reduce<Promise<unknown>>(
    (done, target) => done.then(() => n.umount({ target, lazy: true, force: false })),
    Promise.resolve(),
  );
}

test('libmount: mount, umount and libraryInfo refuse abuse; odd requests settle', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('libmount');
  let count = 0;
  const fresh = (): string => {
    const target = path.join(dir, `t${count++}`);
    fs.mkdirSync(target);
    return target;
  };
  const tmpfs = (): Record<string, unknown> => ({
    source: 'triggerd-abuse',
    target: fresh(),
    fstype: 'tmpfs',
    options: 'size=64k',
    sloppy: false,
    readWriteOnly: false,
  });
  try {
    await abuseCall(findings, {
      label: 'mount',
      call: exported(n, 'mount'),
      args: [
        objectArg('request', tmpfs, [
          stringArg('source', () => 'triggerd-abuse', { huge: false }),
          stringArg('target', fresh, { absolute: true, huge: false }),
          stringArg('fstype', () => 'tmpfs', { nonEmpty: false, huge: false }),
          stringArg('options', () => '', { nonEmpty: false, huge: false }),
          boolArg('sloppy', () => false),
          boolArg('readWriteOnly', () => false),
        ]),
      ],
      cleanup: () => undefined,
    });
    await abuseCall(findings, {
      label: 'umount',
      call: exported(n, 'umount'),
      // Nothing is mounted there: the call resolves with mount(8)'s failure code, it does not throw.
      args: [
        objectArg('request', () => ({ target: fresh(), lazy: false, force: false }), [
          stringArg('target', fresh, { absolute: true, huge: false }),
          boolArg('lazy', () => false),
          boolArg('force', () => false),
        ]),
      ],
    });
    await abuseCall(findings, { label: 'libraryInfo', call: exported(n, 'libraryInfo'), args: [] });
    const odd: [string, Record<string, unknown>][] = [
      ['a 1 MiB option string', { options: 'o'.repeat(1 << 20) }],
      ['commas only', { options: ',,,,' }],
      ['a bare =', { options: '=' }],
      ['contradicting flags', { options: 'ro,rw,ro,rw,remount' }],
      ['an unknown type', { fstype: 'nonexistentfs' }],
      ['a type list', { fstype: 'nonexistentfs,tmpfs' }],
      ['no type at all', { fstype: '', source: path.join(dir, 'missing') }],
      ['a LABEL= nobody has', { fstype: '', source: 'LABEL=triggerd-abuse-none' }],
      ['a bind of a missing source', { fstype: '', source: '/nonexistent', options: 'bind' }],
      ['a loop of /dev/null', { fstype: 'ext4', source: '/dev/null', options: 'loop,ro' }],
      ['a 1 MiB source', { source: 's'.repeat(1 << 20) }],
      ['a 1 MiB target', { target: '/' + 't'.repeat(1 << 20) }],
      ['a missing target', { target: path.join(dir, 'missing', 'deeper') }],
      ['a file as target', { target: '/dev/null' }],
      ['sloppy and rw-only', { sloppy: true, readWriteOnly: true, options: 'nonsense-option' }],
    ];
    for (const [what, change] of odd) {
      await expectSettled(
        findings,
        `mount(${what})`,
        { call: () => n.mount({ ...tmpfs(), ...change }) as Promise<Outcome> },
        [],
      );
    }
    for (const target of [dir, '/' + 'u'.repeat(1 << 20), '/nonexistent/triggerd']) {
      for (const flags of [
        { lazy: false, force: false },
        { lazy: true, force: true },
      ]) {
        await expectSettled(
          findings,
          `umount(${target.slice(0, 40)}, ${JSON.stringify(flags)})`,
          { call: () => n.umount({ target, ...flags }) },
          [],
        );
      }
    }
    // Many at once on the threadpool.
    await Promise.allSettled(Array.from({ length: 16 }, () => n.mount(tmpfs())));
  } finally {
    await unmountAllUnder(n, dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'libmount');
  await assertProcessUsable();
});
