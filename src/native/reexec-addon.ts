// The one module that loads triggerd_reexec.node and declares its interface: execve(2) of the
// daemon itself, FD_CLOEXEC on the fds carried across it, and the pidfd calls that adopt
// processes after a re-exec or a crash. Everything else takes a `NativeReexec`.
import { requireAddon } from './addon';

/** What waitid(P_PIDFD) reaped. */
export interface PidfdExit {
  pid: number;
  code: 'exited' | 'killed' | 'dumped';
  /** The exit status for 'exited', the signal number otherwise. */
  status: number;
}

export interface NativeReexec {
  /**
   * execve(2): replaces the process image (same pid: children stay children; fds without
   * FD_CLOEXEC stay open). Returns only by throwing the system error (ENOENT, E2BIG, ...).
   */
  execve(file: string, argv: readonly string[], env: readonly string[]): never;
  /** Set or clear FD_CLOEXEC (EBADF for an fd that is not open). */
  setCloseOnExec(fd: number, on: boolean): void;
  closeOnExec(fd: number): boolean;
  /** pidfd_open(2), close-on-exec; ESRCH when the process is gone (a zombie still has one). */
  pidfdOpen(pid: number): number;
  /** pidfd_getfd(2): our own copy of the process's fd `targetFd` (EPERM without ptrace access). */
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /**
   * waitid(P_PIDFD, WEXITED|WNOHANG|__WALL): the exit, reaped, of a child of ours; null while it
   * runs; ECHILD when it is not our child (then only the pidfd turning readable says it ended).
   */
  waitPidfd(pidfd: number): PidfdExit | null;
  /**
   * The exit status the kernel keeps for `pidfd` once its process was reaped, by whoever reaped
   * it (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15): how an adopted process that init reaped
   * ended. null before it is reaped, and on older kernels.
   */
  pidfdExitInfo(pidfd: number): Omit<PidfdExit, 'pid'> | null;
  closeFd(fd: number): void;
}

const ADDON_FILE = 'triggerd_reexec.node';
const METHODS = [
  'execve',
  'setCloseOnExec',
  'closeOnExec',
  'pidfdOpen',
  'pidfdGetfd',
  'waitPidfd',
  'pidfdExitInfo',
  'closeFd',
] as const;

let cached: NativeReexec | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeReexec(): NativeReexec {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  if (typeof loaded !== 'object' || loaded === null) {
    throw new Error(`${file} is not triggerd's reexec addon; rebuild it`);
  }
  const missing = METHODS.filter((name) => typeof Reflect.get(loaded, name) !== 'function');
  if (missing.length > 0) {
    throw new Error(`${file} is not triggerd's reexec addon (${missing.join(', ')} missing); rebuild it`);
  }
  // The shape is checked above; the signatures are the C++ side's contract with this interface.
  cached = loaded as NativeReexec;
  return cached;
}
