// Processes found again after a re-exec or a crash of the daemon: a pidfd per process
// (pidfd_open), watched for readability on the main loop, and their exits routed through the
// process supervisor as if we had spawned them.
//
// After a re-exec they are still our children (execve keeps the pid): the exit is reaped with
// waitid(P_PIDFD, __WALL), status included (the spawn addon's SIGCHLD reaper may get there first;
// then the supervisor has routed it already). After a crash they were reparented to another
// reaper (our parent's subreaper or init): waitid says ECHILD. The status is then what the kernel
// keeps for the pidfd once the reaper reaped it (PIDFD_INFO_EXIT, Linux 6.15), or, while the
// process is a zombie nobody reaped yet, field 52 of /proc/PID/stat; on an older kernel whose
// init was quicker than us it is unknown (UNKNOWN_EXIT_STATUS, counted as a failure).
import os = require('node:os');
import type { Logger } from '../util/logger';
import type { NativeReexec, PidfdExit } from '../native/reexec-addon';
import type { ChildExit } from '../native/spawn-addon';
import { sameProcess, zombieExitCode } from './daemon-state';
import { UNKNOWN_EXIT_STATUS } from '../units/service';

/** A readability watch (the socket addon's ReadinessWatch fits). */
export interface FdWatch {
  close(): void;
}

export interface ProcessAdoptionOptions {
  native: NativeReexec;
  watch(fd: number, onReadable: () => void): FdWatch;
  /**
   * Routes the exit (ProcessSupervisor.onExits: a pid it did not spawn goes to every unit, and the
   * one whose main or control pid it is takes it; signals go by kill(2) for such pids).
   */
  exited(exit: AdoptedExit): void;
  logger: Logger;
}

/** An adopted process's exit; `statusUnknown` when it was reaped by someone else (see above). */
export type AdoptedExit = ChildExit & { statusUnknown?: boolean };

const ECHILD = os.constants.errno.ECHILD;

export class ProcessAdoption {
  private readonly watched = new Map<
    number,
    { pidfd: number; watch: FdWatch; unit: string; ourChild: boolean }
  >();

  constructor(private readonly options: ProcessAdoptionOptions) {}

  /** How many adopted processes are still watched. */
  get size(): number {
    return this.watched.size;
  }

  /**
   * Adopt `pid` for `unit` if it is the process that had `startTime` (a zombie counts: its exit
   * is then reported at once). False when it is gone or the pid belongs to someone else now.
   * `ourChild`: after a re-exec (a child reaped by the SIGCHLD reaper first was routed by it).
   */
  adopt(unit: string, pid: number, startTime: string | undefined, ourChild: boolean): boolean {
    if (this.watched.has(pid)) return true;
    if (!sameProcess(pid, startTime)) return false;
    const { native } = this.options;
    let pidfd: number;
    try {
      pidfd = native.pidfdOpen(pid);
    } catch {
      return false;
    }
    // Checked again with the pidfd open: the pid cannot be reused from here on.
    if (!sameProcess(pid, startTime)) {
      native.closeFd(pidfd);
      return false;
    }
    let watch: FdWatch;
    try {
      watch = this.options.watch(pidfd, () => this.onReadable(pid));
    } catch (err) {
      native.closeFd(pidfd);
      this.options.logger.warn({ unit, pid, err }, 'cannot watch an adopted process');
      return false;
    }
    this.watched.set(pid, { pidfd, watch, unit, ourChild });
    this.options.logger.info({ unit, pid }, `adopted process ${pid}`);
    return true;
  }

  private onReadable(pid: number): void {
    const w = this.watched.get(pid);
    if (w === undefined) return;
    let exit: PidfdExit | null = null;
    let reaped = true;
    try {
      exit = this.options.native.waitPidfd(w.pidfd);
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      if (errno !== -ECHILD && errno !== ECHILD) {
        this.options.logger.warn({ unit: w.unit, pid, err }, 'waitid on an adopted process failed');
      }
      reaped = false;
    }
    // Readable but not reaped: a child of ours that has not exited (cannot happen for a pidfd
    // that polls readable, but waitid is the judge).
    if (reaped && exit === null) return;
    // Our child, but not ours to reap: the SIGCHLD reaper got it first and routed it.
    if (!reaped && w.ourChild) {
      this.release(pid);
      return;
    }
    // The status someone else reaped is read through the pidfd: closed only after (even on a throw).
    let statusUnknown = false;
    try {
      if (exit === null) {
        const found = this.statusOfReaped(w.unit, pid, w.pidfd);
        exit = found !== undefined ? { pid, ...found } : { pid, code: 'exited', status: UNKNOWN_EXIT_STATUS };
        statusUnknown = found === undefined;
      }
    } finally {
      this.release(pid);
    }
    this.options.exited({
      pid,
      code: exit.code,
      status: exit.status,
      ownChild: reaped,
      ...(statusUnknown ? { statusUnknown } : {}),
    });
  }

  /**
   * Not ours to reap: what the kernel kept for the pidfd if its reaper was quick, else the
   * zombie's /proc entry, else the pidfd again (it may have been reaped in between); undefined
   * when none has it (an older kernel), with a warning.
   */
  private statusOfReaped(unit: string, pid: number, pidfd: number): Omit<PidfdExit, 'pid'> | undefined {
    const keptFirst = this.exitInfo(pidfd);
    const fromZombie = keptFirst === undefined ? zombieExitCode(pid) : undefined;
    const found = keptFirst ?? fromZombie ?? this.exitInfo(pidfd);
    if (found !== undefined)
      this.options.logger.info(
        { unit, pid, code: found.code, status: found.status },
        `adopted process ${pid} ended (reaped by another process); its status from ` +
          (fromZombie !== undefined ? 'its zombie /proc entry' : 'the kernel (PIDFD_INFO_EXIT)'),
      );
    else
      this.options.logger.warn(
        { unit, pid },
        `adopted process ${pid} ended; not our child (reparented while the daemon was down) and already reaped, ` +
          `and this kernel keeps no exit status for a pidfd (Linux 6.15): exit status unknown, taken as ${UNKNOWN_EXIT_STATUS}`,
      );
    return found;
  }

  /** PIDFD_INFO_EXIT; undefined when the kernel has none (yet). */
  private exitInfo(pidfd: number): Omit<PidfdExit, 'pid'> | undefined {
    try {
      return this.options.native.pidfdExitInfo(pidfd) ?? undefined;
    } catch (err) {
      // Older kernels answer null, not an error: this is unexpected (and hid a closed pidfd once).
      this.options.logger.warn(
        { pidfd, err },
        'cannot read the exit status the kernel kept for an adopted process',
      );
      return undefined;
    }
  }

  private release(pid: number): void {
    const w = this.watched.get(pid);
    if (w === undefined) return;
    this.watched.delete(pid);
    try {
      w.watch.close();
    } catch {
      // closed already
    }
    try {
      this.options.native.closeFd(w.pidfd);
    } catch {
      // closed already
    }
  }

  close(): void {
    for (const pid of [...this.watched.keys()]) this.release(pid);
  }
}
