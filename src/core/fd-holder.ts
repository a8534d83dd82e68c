// The fd holder: a process that keeps a copy of the daemon's event sockets (the sd_notify socket,
// the uevent socket) open, so that what is sent while no daemon runs (after a crash, until the
// next start) waits in their queues. Without it a service's sd_notify(READY=1) in that window is
// refused (ECONNREFUSED: nobody holds the socket its path names) and lost, and the service never
// becomes active; uevents of that window are lost too.
//
// It is `sleep infinity` (argv[0] "triggerd: fd holder"), started with those sockets as its fds
// 3, 4, ... and nothing else. The state file names it by pid and start time; the next daemon
// takes the sockets back with pidfd_getfd(2), reads on from them as after a re-exec, and kills
// it (a new daemon starts a holder of its own). A re-exec keeps it: the sockets are the same.
// A clean stop kills it. Without a `sleep` program there is no holder (a warning says so).
import fs = require('node:fs');
import type { NativeSpawn } from '../native/spawn-addon';
import type { NativeReexec } from '../native/reexec-addon';
import type { ExecPlan } from '../exec/exec-plan';
import { processStartTime } from './daemon-state';

/** What the state file keeps of a holder: the fd each socket has in it. */
export interface FdHolderRecord {
  pid: number;
  startTime: string;
  fds: { notify?: number; uevent?: number };
  /** The daemon's --mode: which uevent group the socket is in (a restart may ask another). */
  mode?: string;
}

const SLEEP = ['/bin/sleep', '/usr/bin/sleep'];

/** Starts a holder of `sockets` (this process's fds); throws what spawn() throws. */
export function startFdHolder(
  spawn: Pick<NativeSpawn, 'spawn' | 'closeFd'>,
  sockets: { notify?: number; uevent?: number },
): FdHolderRecord | { error: string } {
  const program = SLEEP.find((p) => fs.existsSync(p));
  if (program === undefined) return { error: `no sleep program (${SLEEP.join(', ')})` };
  const fds: FdHolderRecord['fds'] = {};
  const mapping: ExecPlan['fds'] = [
    { childFd: 0, parentFd: -1 },
    { childFd: 1, parentFd: -1 },
    { childFd: 2, parentFd: -1 },
  ];
  let next = 3;
  for (const name of ['notify', 'uevent'] as const) {
    const fd = sockets[name];
    if (fd === undefined) continue;
    fds[name] = next;
    mapping.push({ childFd: next++, parentFd: fd });
  }
  if (next === 3) return { error: 'no socket to hold' };
  const plan: ExecPlan = {
    path: program,
    argv: ['triggerd: fd holder', 'infinity'],
    env: [],
    cwd: '/',
    rlimits: [],
    fds: mapping,
    // Its own session: a signal to the daemon's process group does not reach it.
    newSession: true,
    noNewPrivileges: true,
    privateNetwork: false,
    mounts: [],
  };
  const child = spawn.spawn(plan);
  // Its exit (a kill) comes to the reaper like every child's; the pidfd is not needed.
  spawn.closeFd(child.pidfd);
  const startTime = processStartTime(child.pid);
  if (startTime === undefined) return { error: `the holder (pid ${child.pid}) ended at once` };
  return { pid: child.pid, startTime, fds };
}

/**
 * The sockets a holder of an earlier daemon keeps, as fds of this process (pidfd_getfd), or
 * undefined when it is gone (or its pid names another process now). The holder is killed after.
 */
export function takeBackFromHolder(
  reexec: Pick<NativeReexec, 'pidfdOpen' | 'pidfdGetfd' | 'closeFd'>,
  held: FdHolderRecord,
  killPidfd: (pidfd: number) => void,
): { notify?: number; uevent?: number } | undefined {
  if (processStartTime(held.pid) !== held.startTime) return undefined;
  let pidfd: number;
  try {
    pidfd = reexec.pidfdOpen(held.pid);
  } catch {
    return undefined;
  }
  const got: { notify?: number; uevent?: number } = {};
  try {
    // The start time again, now that the pidfd pins the process: not a reused pid.
    if (processStartTime(held.pid) !== held.startTime) return undefined;
    for (const name of ['notify', 'uevent'] as const) {
      const fd = held.fds[name];
      if (fd === undefined) continue;
      try {
        got[name] = reexec.pidfdGetfd(pidfd, fd);
      } catch {
        // that one is gone; the other may not be
      }
    }
    try {
      killPidfd(pidfd);
    } catch {
      // it ended meanwhile
    }
  } finally {
    reexec.closeFd(pidfd);
  }
  return got;
}

/** Whether the holder a state file names still runs (a re-exec keeps it). */
export function holderRuns(held: FdHolderRecord): boolean {
  return processStartTime(held.pid) === held.startTime;
}
