// The one module that loads triggerd_autofs.node (native/autofs/) and declares its interface.
// Everything else takes a `NativeAutofs`, so pure tests can pass test/helpers/fake-autofs. The
// packets are parsed in TypeScript (src/mounts/autofs-packets.ts: parseAutofsPacket).
import { requireCheckedAddon } from './checked-addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_autofs.node';

/** AUTOFS_EXP_* of <linux/auto_fs.h>: how an expire run picks what to expire. */
export const AUTOFS_EXPIRE = {
  /** Only what has been idle for the mount's timeout. */
  NORMAL: 0,
  /** Whatever is not busy, idle or not (used on stop). */
  IMMEDIATE: 1,
  LEAVES: 2,
  FORCED: 4,
} as const;

export interface AutofsMountOptions {
  /** Absolute path of an existing directory (the caller makes it, with DirectoryMode=). */
  where: string;
  /** The mount's source as /proc/self/mountinfo shows it ("triggerd-<pid>"); no commas. */
  source: string;
  /** systemd's automounts are direct mounts: one trap at `where` itself. */
  kind: 'direct' | 'indirect';
  /** Ask for `strictexpire` (stat-like accesses do not reset the idle clock); kernels before 5.3 mount without it. */
  strictExpire: boolean;
  /** The idle timeout the kernel's expire check uses, in whole seconds (0: never idle). */
  timeoutSec: number;
}

export interface AutofsProtocol {
  version: number;
  subVersion: number;
}

export interface AutofsMount {
  readonly where: string;
  /** st_dev of the autofs mount (what OPENMOUNT and the packets' `dev` name). */
  readonly devId: number;
  /** The read end of the packet pipe (-1 once closed). */
  readonly pipeFd: number;
  /** Whether the kernel accepted `strictexpire`. */
  readonly strictExpire: boolean;
  readonly protocol: AutofsProtocol;
  readonly closed: boolean;
  /** AUTOFS_DEV_IOCTL_READY: the waiters of `token` go on (into the mounted file system). */
  ready(token: number): void;
  /** AUTOFS_DEV_IOCTL_FAIL with -errno: the waiters of `token` get that error. `errno` > 0. */
  fail(token: number, errno: number): void;
  /** AUTOFS_DEV_IOCTL_TIMEOUT, whole seconds (0: never idle). */
  setTimeout(seconds: number): void;
  /**
   * AUTOFS_DEV_IOCTL_EXPIRE until nothing is left to expire, on a thread of its own: each call
   * blocks until this loop answers the expire packet it causes. `done(null, n)` with how many
   * expired; an error other than EAGAIN ends the run early.
   */
  expire(how: number, done: (error: NativeSystemError | null, expired: number) => void): void;
  /** AUTOFS_DEV_IOCTL_CATATONIC: every waiter gets ENOENT now, later accesses do not wait. */
  catatonic(): void;
  /** AUTOFS_DEV_IOCTL_ASKUMOUNT: true when nothing below the mount is busy. */
  askUmount(): boolean;
  /** Lazily unmount what is stacked at `where`, down to and including this autofs mount; returns how many. */
  unmount(): number;
  /** Stop watching and close the pipe and control fds (the mount stays). Idempotent. */
  close(): void;
  unref(): void;
  ref(): void;
}

export interface NativeAutofs {
  /**
   * systemd's automount_enter_waiting: open /dev/autofs (version check), pipe2, mount autofs at
   * `where` with `fd=W,pgrp=<our pgrp>,minproto=5,maxproto=5,<kind>[,strictexpire]`, stat for the
   * device id, OPENMOUNT, PROTOVER/PROTOSUBVER, TIMEOUT, CLOSEMOUNT, then watch the pipe. Each
   * wake-up reads up to 256 packets and calls `onBatch` once with the raw bytes (one Buffer per
   * packet). `onError` gets read errors and EPIPE once the kernel closed its end (unmounted),
   * after which the pipe is no longer watched. Throws a system error with `path`; on failure
   * nothing is left mounted.
   */
  mountAutofs(
    options: AutofsMountOptions,
    onBatch: (packets: Buffer[]) => void,
    onError: (error: NativeSystemError) => void,
  ): AutofsMount;
  /** umount2(MNT_DETACH | UMOUNT_NOFOLLOW); false when nothing is mounted there. */
  unmountLazy(path: string): boolean;
  /** getpgrp(): processes of this group are "the daemon" to the kernel and never wait on a trap. */
  processGroup(): number;
}

let cached: NativeAutofs | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadAutofsNative(): NativeAutofs {
  if (cached !== undefined) return cached;
  cached = requireCheckedAddon<NativeAutofs>(ADDON_FILE, 'autofs', [
    'mountAutofs',
    'unmountLazy',
    'processGroup',
  ]);
  return cached;
}
