// Abuse of triggerd_reexec.node: execve (only calls that cannot succeed: a successful one would
// replace this test process), setCloseOnExec, closeOnExec, pidfdOpen, pidfdGetfd, waitPidfd, pidfdExitInfo and
// closeFd, through the harness in test/helpers/abuse.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import {
  abuseCall,
  arrayArg,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  expectRefused,
  exported,
  fdArg,
  Findings,
  intArg,
  INT32_MAX,
  loadRaw,
  openFds,
  scratchDir,
  stringArg,
  unopenedFds,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_reexec.node');

test('reexec: every export refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('reexec');
  const own = fs.openSync('/dev/null', 'r');
  const pidfd = n.pidfdOpen(process.pid) as number;
  const closeFd = (fd: unknown): void => fs.closeSync(fd as number);
  try {
    // Every execve here fails before the process image is touched.
    await abuseCall(findings, {
      label: 'execve',
      call: exported(n, 'execve'),
      args: [
        stringArg('file', () => '/nonexistent/triggerd'),
        arrayArg(
          'argv',
          () => ['triggerd'],
          stringArg('argv[]', () => 'x', { nonEmpty: false, huge: false }),
        ),
        arrayArg(
          'env',
          () => [],
          stringArg('env[]', () => 'A=1', { nonEmpty: false, huge: false }),
        ),
      ],
      noValidCall: true,
    });
    const refused: [string, () => unknown][] = [
      ['execve(a missing file)', () => n.execve('/nonexistent/triggerd', ['x'], [])],
      ['execve(a directory)', () => n.execve(dir, ['x'], [])],
      ['execve(a file that is not executable)', () => n.execve('/dev/null', ['x'], [])],
      ['execve(an empty argv)', () => n.execve('/bin/true', [], [])],
      // One argument past MAX_ARG_STRLEN (32 pages): the kernel refuses it (E2BIG).
      ['execve(a 1 MiB argument)', () => n.execve('/bin/true', ['true', 'a'.repeat(1 << 20)], [])],
      ['execve(a sparse argv)', () => n.execve('/bin/true', new Array<string>(3), [])],
    ];
    for (const [what, call] of refused) await expectRefused(findings, what, { call }, []);
    // The signal mask execve clears for the new image is back after a failed one.
    assert.ok(process.listenerCount('SIGINT') >= 0);

    await abuseCall(findings, {
      label: 'setCloseOnExec',
      call: exported(n, 'setCloseOnExec'),
      args: [fdArg('fd', () => own), boolArg('on', () => true)],
    });
    await abuseCall(findings, {
      label: 'closeOnExec',
      call: exported(n, 'closeOnExec'),
      args: [fdArg('fd', () => own)],
    });
    await abuseCall(findings, {
      label: 'pidfdOpen',
      call: exported(n, 'pidfdOpen'),
      args: [intArg('pid', 1, INT32_MAX, () => process.pid)],
      cleanup: closeFd,
    });
    await abuseCall(findings, {
      label: 'pidfdGetfd',
      call: exported(n, 'pidfdGetfd'),
      args: [fdArg('pidfd', () => pidfd), fdArg('targetFd', () => own)],
      cleanup: closeFd,
    });
    // Our own pidfd is not our child's: ECHILD, so no valid call here.
    await abuseCall(findings, {
      label: 'waitPidfd',
      call: exported(n, 'waitPidfd'),
      args: [fdArg('pidfd', () => pidfd)],
      noValidCall: true,
    });
    // Our own pidfd: running, so nothing kept (null).
    await abuseCall(findings, {
      label: 'pidfdExitInfo',
      call: exported(n, 'pidfdExitInfo'),
      args: [fdArg('pidfd', () => pidfd)],
    });
    await abuseCall(findings, {
      label: 'closeFd',
      call: exported(n, 'closeFd'),
      args: [fdArg('fd', () => fs.openSync('/dev/null', 'r'))],
    });
    for (const fd of unopenedFds()) {
      refused.length = 0;
      refused.push(
        [`setCloseOnExec(${fd})`, () => n.setCloseOnExec(fd, true)],
        [`closeOnExec(${fd})`, () => n.closeOnExec(fd)],
        [`pidfdGetfd(${fd}, own)`, () => n.pidfdGetfd(fd, own)],
        [`pidfdGetfd(pidfd, ${fd})`, () => n.pidfdGetfd(pidfd, fd)],
        [`waitPidfd(${fd})`, () => n.waitPidfd(fd)],
        [`pidfdExitInfo(${fd})`, () => n.pidfdExitInfo(fd)],
        [`closeFd(${fd})`, () => n.closeFd(fd)],
      );
      for (const [what, call] of refused) await expectRefused(findings, what, { call }, []);
    }
    for (const [what, call] of [
      ['pidfdOpen(no such pid)', () => n.pidfdOpen(INT32_MAX)],
      ['pidfdGetfd(not a pidfd)', () => n.pidfdGetfd(own, own)],
      ['waitPidfd(not a pidfd)', () => n.waitPidfd(own)],
      ['waitPidfd(our own pidfd)', () => n.waitPidfd(pidfd)],
    ] as const) {
      await expectRefused(findings, what, { call }, []);
    }
  } finally {
    fs.closeSync(own);
    fs.closeSync(pidfd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'reexec');
  await assertProcessUsable();
});
