// Abuse of triggerd_mounts.node (watchMountInfo, MountInfoWatch) and triggerd_timerfd.node
// (watchClockChanges, clockNow, ClockWatch): the two small watch addons, through the harness in
// test/helpers/abuse.ts.
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abuseCall,
  abuseHandle,
  assertNoFdLeak,
  assertProcessUsable,
  expectRefused,
  exported,
  Findings,
  functionArg,
  HUGE_STRING,
  loadRaw,
  openFds,
  scratchDir,
  stringArg,
  type RawExports,
} from '../helpers/abuse';

const mounts = loadRaw('triggerd_mounts.node');
const timerfd = loadRaw('triggerd_timerfd.node');

interface Watch {
  close(): void;
}

const noop = (): void => undefined;

test('mounts: watchMountInfo and MountInfoWatch refuse abuse', { skip: mounts.skip }, async () => {
  const n = mounts.exports as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('mounts');
  fs.writeFileSync(path.join(dir, 'regular'), 'x');
  try {
    await abuseCall(findings, {
      label: 'watchMountInfo',
      call: exported(n, 'watchMountInfo'),
      args: [
        functionArg('onChange'),
        functionArg('onError'),
        stringArg('path', () => '/proc/self/mountinfo', { optional: true }),
      ],
      cleanup: (watch) => (watch as Watch).close(),
    });
    // A missing file, a file epoll refuses (regular), a directory, a 1 MiB path.
    for (const where of [path.join(dir, 'missing'), path.join(dir, 'regular'), dir, HUGE_STRING]) {
      await expectRefused(
        findings,
        `watchMountInfo(${where.slice(0, 40)})`,
        { call: () => n.watchMountInfo(noop, noop, where), cleanup: (w) => (w as Watch).close() },
        [],
      );
    }
    await abuseHandle(
      findings,
      {
        label: 'MountInfoWatch',
        open: () => n.watchMountInfo(noop, noop) as object,
        methods: { ref: { args: [], afterClose: 'quiet' }, unref: { args: [], afterClose: 'quiet' } },
        getters: { closed: 'value', wakeups: 'value' },
      },
      [Buffer.alloc(4)],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'mounts');
  await assertProcessUsable();
});

test('timerfd: watchClockChanges, clockNow and ClockWatch refuse abuse', { skip: timerfd.skip }, async () => {
  const n = timerfd.exports as RawExports;
  const before = openFds();
  const findings = new Findings();
  await abuseCall(findings, {
    label: 'watchClockChanges',
    call: exported(n, 'watchClockChanges'),
    args: [functionArg('onChange'), functionArg('onError')],
    cleanup: (watch) => (watch as Watch).close(),
  });
  await abuseCall(findings, { label: 'clockNow', call: exported(n, 'clockNow'), args: [] });
  await abuseHandle(
    findings,
    {
      label: 'ClockWatch',
      open: () => n.watchClockChanges(noop, noop) as object,
      methods: { ref: { args: [], afterClose: 'quiet' }, unref: { args: [], afterClose: 'quiet' } },
      getters: { closed: 'value', armedSeconds: 'throws', changes: 'value' },
    },
    [Buffer.alloc(4)],
  );
  findings.assertNone();
  await assertNoFdLeak(before, 'timerfd');
  await assertProcessUsable();
});
