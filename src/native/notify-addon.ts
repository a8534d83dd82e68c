// The one module that loads triggerd_notify.node (native/notify/) and declares its interface.
// Everything else takes a `NativeNotify`, so pure tests can pass test/helpers/fake-notify instead.
import { readFileSync } from 'node:fs';
import { requireCheckedAddon } from './checked-addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_notify.node';

/**
 * One datagram as the kernel delivered it to the notify socket. Nothing is parsed: `buffer` holds
 * the payload bytes (at most 4097: one more than systemd's NOTIFY_BUFFER_MAX, so an oversized
 * datagram is visible as such even when cut). The fds in `fds` and `pidfd` are open in this
 * process from the moment the batch is handed over: the receiver owns them and must close each
 * exactly once (NativeNotify.closeFd), whatever it does with the datagram.
 */
export interface NotifyDatagram {
  kind: 'datagram';
  buffer: Buffer;
  /** The datagram's size as sent (may exceed buffer.length when truncated). */
  length: number;
  /** SCM_CREDENTIALS (the socket has SO_PASSCRED, so the kernel always attaches them); -1 if absent. */
  pid: number;
  uid: number;
  gid: number;
  /** SCM_PIDFD of the credited process (SO_PASSPIDFD, Linux 6.5+), -1 when none. Close-on-exec. */
  pidfd: number;
  /** SCM_RIGHTS, in order. Close-on-exec (MSG_CMSG_CLOEXEC). */
  fds: number[];
  /** MSG_TRUNC (payload longer than the buffer) or MSG_CTRUNC (fds or credentials cut off). */
  truncated: boolean;
}

/** What one wake-up delivers; only datagrams for now (a unix datagram socket has no overflow). */
export type NotifyItem = NotifyDatagram;

export interface NotifySocket {
  /** The receive buffer the kernel granted (getsockopt SO_RCVBUF, i.e. doubled by the kernel). */
  readonly receiveBufferBytes: number;
  /** Whether SO_PASSPIDFD is on, i.e. datagrams come with the sender's pidfd. */
  readonly passPidfd: boolean;
  /** Stop watching the fd (backpressure: datagrams wait in the kernel, senders block or see EAGAIN). */
  pause(): void;
  resume(): void;
  /** Stop watching and close the fd. Idempotent. Unlinks nothing: the path is the caller's. */
  close(): void;
  /** Let the process exit even while this socket is watched (uv_unref), like `server.unref()`. */
  unref(): void;
  /** Undo `unref()`: an open, unpaused socket keeps the process alive (the default). */
  ref(): void;
}

export interface NativeNotify {
  /**
   * Binds an AF_UNIX SOCK_DGRAM socket (non-blocking, close-on-exec) to `path`, an absolute path
   * (left with mode 0666, so services of any user can send) or `@name` (abstract namespace), with
   * SO_PASSCRED, SO_PASSPIDFD where the kernel has it, and an 8 MiB receive buffer
   * (SO_RCVBUFFORCE, else as much as rmem_max allows). Watched with uv_poll on the calling
   * environment's loop: each wake-up reads to EAGAIN and calls `onBatch` once, with at most 128
   * datagrams and (about) 1024 passed fds; the rest stays queued in the kernel for the next one.
   * `onError` gets receive errors other than EAGAIN/EINTR; the socket stays open.
   * Throws a TypeError for bad arguments, a system error (code, errno, syscall, path) otherwise.
   * With `fd`: takes over that open socket instead (carried across a re-exec, with the datagrams
   * queued on it), which must be an AF_UNIX datagram socket bound to `path` (EADDRNOTAVAIL
   * otherwise); on failure it stays open and the caller's.
   */
  openNotifySocket(
    path: string,
    onBatch: (batch: NotifyItem[]) => void,
    onError: (error: NativeSystemError) => void,
    fd?: number,
  ): NotifySocket;
  /** close(2). Throws EBADF for an fd that is not open, so a double close shows up. */
  closeFd(fd: number): void;
  /**
   * The pid a pidfd refers to, from /proc/self/fdinfo (its `Pid:` line): -1 when the process has
   * exited, 0 when it is not visible in this pid namespace. Throws when `pidfd` is not a pidfd.
   */
  pidfdGetPid(pidfd: number): number;
  /**
   * A client for tests: sends one datagram from a fresh socket to `path`, passing `fds` with
   * SCM_RIGHTS. Non-blocking: a full receive queue throws EAGAIN (retry on a later tick).
   */
  sendDatagram(path: string, buffer: Uint8Array, fds?: readonly number[]): number;
  /** pipe2(O_CLOEXEC) → [read end, write end], for BARRIER tests. */
  pipe(): [number, number];
}

/** The functions the .node file itself exports (pidfdGetPid is done here, in TypeScript). */
type NativeNotifyExports = Omit<NativeNotify, 'pidfdGetPid'>;

let cached: NativeNotify | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNotifyNative(): NativeNotify {
  if (cached !== undefined) return cached;
  const exports = requireCheckedAddon<NativeNotifyExports>(ADDON_FILE, 'notify', [
    'openNotifySocket',
    'closeFd',
    'sendDatagram',
    'pipe',
  ]);
  cached = {
    openNotifySocket: (path, onBatch, onError, fd) =>
      fd === undefined
        ? exports.openNotifySocket(path, onBatch, onError)
        : exports.openNotifySocket(path, onBatch, onError, fd),
    closeFd: (fd) => exports.closeFd(fd),
    pidfdGetPid,
    sendDatagram: (path, buffer, fds) => exports.sendDatagram(path, buffer, fds),
    pipe: () => exports.pipe(),
  };
  return cached;
}

/**
 * Reads `Pid:` from /proc/self/fdinfo/<pidfd>. Parsing stays in TypeScript (the house rule); the
 * kernel writes -1 there once the process has exited (and been reaped).
 */
export function pidfdGetPid(pidfd: number): number {
  if (!Number.isInteger(pidfd) || pidfd < 0 || pidfd > 0x7fffffff) {
    const error = new TypeError(
      `The "pidfd" argument must be an integer in 0..2147483647, got ${String(pidfd)}`,
    );
    Object.assign(error, { code: 'ERR_INVALID_ARG_VALUE' });
    throw error;
  }
  const info = readFileSync(`/proc/self/fdinfo/${pidfd}`, 'latin1');
  return parsePidfdInfo(info, pidfd);
}

/** The `Pid:` line of a pidfd's fdinfo; throws ENOTPIDFD-like error when there is none. */
export function parsePidfdInfo(info: string, pidfd = -1): number {
  const match = /^Pid:\s*(-?\d+)\s*$/m.exec(info);
  if (match === null) {
    const error = new Error(`EBADF: fd ${pidfd} is not a pidfd (no Pid: in its fdinfo)`) as NativeSystemError;
    error.code = 'EBADF';
    error.errno = -9;
    error.syscall = 'pidfdGetPid';
    throw error;
  }
  return Number(match[1]);
}
