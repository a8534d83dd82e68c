// ProcessAdoption: how an adopted process's exit status is found when it is not our child any
// more (reparented to init while the daemon was down): the exit status the kernel keeps for the
// pidfd (PIDFD_INFO_EXIT), else the zombie's /proc entry, else unknown. Fakes for the addon and
// the fd watch; the adopted process is this test process itself (a real pid and start time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { ProcessAdoption, type AdoptedExit } from '../../src/core/process-adoption';
import type { NativeReexec, PidfdExit } from '../../src/native/reexec-addon';
import { processStartTime } from '../../src/core/daemon-state';
import { UNKNOWN_EXIT_STATUS } from '../../src/units/service';
import { silentLogger } from '../helpers/logger';

const ECHILD = os.constants.errno.ECHILD;

interface Rig {
  adoption: ProcessAdoption;
  exits: AdoptedExit[];
  warnings: string[];
  /** Info lines (an adopted process's end says where its status came from). */
  infos: string[];
  /** The pidfd turns readable. */
  readable(): void;
  infoCalls: () => number;
  closed: number[];
}

function rig(answers: { wait: () => PidfdExit | null; info: (() => Omit<PidfdExit, 'pid'> | null)[] }): Rig {
  let onReadable: (() => void) | undefined;
  let infoCalls = 0;
  const closed: number[] = [];
  const native = {
    pidfdOpen: () => 42,
    waitPidfd: () => answers.wait(),
    pidfdExitInfo: (fd: number) => {
      // As the kernel does: a closed pidfd has nothing to tell.
      if (closed.includes(fd))
        throw Object.assign(new Error('EBADF: bad file descriptor, ioctl'), { code: 'EBADF' });
      const next = answers.info[Math.min(infoCalls, answers.info.length - 1)];
      infoCalls++;
      return next();
    },
    closeFd: (fd: number) => void closed.push(fd),
  } as unknown as NativeReexec;
  const exits: AdoptedExit[] = [];
  const warnings: string[] = [];
  const logger = silentLogger();
  logger.warn = ((_o: unknown, msg: string) => void warnings.push(msg)) as typeof logger.warn;
  const infos: string[] = [];
  logger.info = ((_o: unknown, msg: string) => void infos.push(msg)) as typeof logger.info;
  const adoption = new ProcessAdoption({
    native,
    watch: (_fd, cb) => {
      onReadable = cb;
      return { close: () => undefined };
    },
    exited: (e) => void exits.push(e),
    logger,
  });
  return {
    adoption,
    exits,
    warnings,
    infos,
    readable: () => onReadable?.(),
    infoCalls: () => infoCalls,
    closed,
  };
}

const notOurChild = (): PidfdExit | null => {
  throw Object.assign(new Error('ECHILD: waitid'), { errno: -ECHILD, code: 'ECHILD' });
};
const pid = process.pid;
const start = processStartTime(pid);

test('not our child, reaped by init: the status the kernel kept for the pidfd', () => {
  const r = rig({ wait: notOurChild, info: [() => ({ code: 'exited', status: 3 })] });
  assert.equal(r.adoption.adopt('a.service', pid, start, false), true);
  r.readable();
  assert.deepEqual(r.exits, [{ pid, code: 'exited', status: 3, ownChild: false }]);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.closed, [42], 'the pidfd is closed once the exit is known');
  assert.match(
    r.infos.at(-1) ?? '',
    /ended \(reaped by another process\); its status from the kernel \(PIDFD_INFO_EXIT\)/,
  );
  assert.equal(r.adoption.size, 0);
});

test('a signal the kernel kept is a signal', () => {
  const r = rig({ wait: notOurChild, info: [() => ({ code: 'killed', status: 9 })] });
  r.adoption.adopt('a.service', pid, start, false);
  r.readable();
  assert.deepEqual(r.exits, [{ pid, code: 'killed', status: 9, ownChild: false }]);
});

test('not reaped yet at the first look, reaped by the second (after the zombie check): the kept status', () => {
  // The adopted "process" is this live test process, so the zombie check finds nothing.
  const r = rig({ wait: notOurChild, info: [() => null, () => ({ code: 'exited', status: 0 })] });
  r.adoption.adopt('a.service', pid, start, false);
  r.readable();
  assert.equal(r.infoCalls(), 2);
  assert.deepEqual(r.exits, [{ pid, code: 'exited', status: 0, ownChild: false }]);
  assert.deepEqual(r.warnings, []);
  assert.match(r.infos.at(-1) ?? '', /PIDFD_INFO_EXIT/);
});

test('no kept status (an older kernel) and no zombie: unknown, with a warning that says why', () => {
  const r = rig({ wait: notOurChild, info: [() => null] });
  r.adoption.adopt('a.service', pid, start, false);
  r.readable();
  assert.deepEqual(r.exits, [
    { pid, code: 'exited', status: UNKNOWN_EXIT_STATUS, ownChild: false, statusUnknown: true },
  ]);
  assert.equal(r.warnings.length, 1);
  assert.ok(!r.infos.some((m) => / ended \(/.test(m)), 'no source is claimed');
  assert.match(r.warnings[0], /exit status unknown/);
  assert.match(r.warnings[0], /6\.15/);
});

test('a failing ioctl counts as no kept status, never as an error', () => {
  const r = rig({
    wait: notOurChild,
    info: [
      () => {
        throw Object.assign(new Error('EIO: ioctl'), { code: 'EIO' });
      },
    ],
  });
  r.adoption.adopt('a.service', pid, start, false);
  r.readable();
  assert.equal(r.exits[0].statusUnknown, true);
});

test('our child (after a re-exec): waitid reaps it and the kept status is not asked for', () => {
  const r = rig({
    wait: () => ({ pid, code: 'exited', status: 5 }),
    info: [() => ({ code: 'exited', status: 99 })],
  });
  r.adoption.adopt('a.service', pid, start, true);
  r.readable();
  assert.deepEqual(r.exits, [{ pid, code: 'exited', status: 5, ownChild: true }]);
  assert.equal(r.infoCalls(), 0);
});
