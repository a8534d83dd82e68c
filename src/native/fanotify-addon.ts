// The one module that loads triggerd_fanotify.node (native/fanotify/) and declares its interface.
// Everything else takes a `NativeFanotify`, so pure tests can pass test/helpers/fake-fanotify.
// The records are parsed in TypeScript (src/events/fanotify-events.ts: parseFanotifyRecords).
import { requireCheckedAddon } from './checked-addon';
import { FSNOTIFY_EVENTS } from './fsnotify-bits';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_fanotify.node';

/** fanotify(7) event mask bits, from <linux/fanotify.h> (pre-content from Linux 6.14). */
export const FAN = {
  ...FSNOTIFY_EVENTS,
  OPEN_EXEC: 0x1000,
  Q_OVERFLOW: 0x4000,
  FS_ERROR: 0x8000,
  OPEN_PERM: 0x10000,
  ACCESS_PERM: 0x20000,
  OPEN_EXEC_PERM: 0x40000,
  /** The final uAPI value (early patch versions used 0x80000). Needs FAN_CLASS_PRE_CONTENT. */
  PRE_ACCESS: 0x100000,
  EVENT_ON_CHILD: 0x8000000,
  RENAME: 0x10000000,
  ONDIR: 0x40000000,
} as const;

/** Every permission event bit: these wait for respond(). */
export const FAN_PERMISSION_EVENTS = FAN.OPEN_PERM | FAN.ACCESS_PERM | FAN.OPEN_EXEC_PERM | FAN.PRE_ACCESS;

/** fanotify_init(2) flags (FAN_CLOEXEC and FAN_NONBLOCK are always added by the addon). */
export const FAN_INIT = {
  CLASS_NOTIF: 0x0,
  CLASS_CONTENT: 0x4,
  CLASS_PRE_CONTENT: 0x8,
  UNLIMITED_QUEUE: 0x10,
  UNLIMITED_MARKS: 0x20,
  ENABLE_AUDIT: 0x40,
  REPORT_PIDFD: 0x80,
  REPORT_TID: 0x100,
  REPORT_FID: 0x200,
  REPORT_DIR_FID: 0x400,
  REPORT_NAME: 0x800,
  REPORT_TARGET_FID: 0x1000,
  REPORT_DFID_NAME: 0x400 | 0x800,
} as const;

/** fanotify_mark(2) flags. */
export const FAN_MARK = {
  ADD: 0x1,
  REMOVE: 0x2,
  DONT_FOLLOW: 0x4,
  ONLYDIR: 0x8,
  IGNORED_MASK: 0x20,
  IGNORED_SURV_MODIFY: 0x40,
  FLUSH: 0x80,
  EVICTABLE: 0x200,
  IGNORE: 0x400,
  INODE: 0x0,
  MOUNT: 0x10,
  FILESYSTEM: 0x100,
} as const;

/** Answers to a permission event. */
export const FAN_RESPONSE = {
  ALLOW: 0x1,
  DENY: 0x2,
  AUDIT: 0x10,
} as const;

/**
 * FAN_DENY with a custom errno (Linux 6.13+, FAN_CLASS_PRE_CONTENT groups only, and only for
 * EPERM, EIO, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT).
 */
export function fanDenyErrno(errno: number): number {
  return (FAN_RESPONSE.DENY | ((errno & 0xff) << 24)) >>> 0;
}

/** fanotify_init's event_f_flags: how event fds are opened (O_CLOEXEC is always added). */
export const O_RDONLY = 0;
export const O_LARGEFILE = 0x8000;

export interface FanotifyHandle {
  /**
   * fanotify_mark(2) with dirfd AT_FDCWD: `flags` from FAN_MARK (ADD/REMOVE/FLUSH plus INODE,
   * MOUNT or FILESYSTEM), `mask` from FAN. Throws a system error with `path` (ENOENT, EINVAL for a
   * mask the group or the file system cannot have, EPERM for mount/filesystem marks without
   * CAP_SYS_ADMIN, EXDEV, ENOSPC for max_user_marks, EBADF once closed).
   */
  mark(flags: number, mask: number, path: string): void;
  /**
   * Answers a permission event: writes struct fanotify_response {fd, response}. `fd` must be an
   * event fd this handle read and has not closed (EBADF otherwise); ENOENT when that event does
   * not wait for an answer (answered already, or a notification). Does not close the fd.
   */
  respond(fd: number, response: number): void;
  /** Closes an event fd this handle read (EBADF for any other fd). */
  closeEventFd(fd: number): void;
  /**
   * Opens `path` (a directory, O_RDONLY)|O_DIRECTORY for resolveFileHandle and returns its key (the fd,
   * owned by the handle and closed with it).
   */
  openMount(path: string): number;
  closeMount(mount: number): void;
  /**
   * The path of a struct file_handle (the bytes after the fsid in an FID/DFID info record:
   * handle_bytes u32, handle_type s32, f_handle): open_by_handle_at(mount, handle, O_PATH) and
   * readlink of /proc/self/fd. ESTALE when the object is gone; a path ending in " (deleted)"
   * when it is unlinked but still referenced. Needs CAP_DAC_READ_SEARCH (EPERM otherwise).
   */
  resolveFileHandle(mount: number, handle: Uint8Array): string;
  /** Stop reading (events wait in the kernel's queue; beyond its bound, FAN_Q_OVERFLOW). */
  pause(): void;
  resume(): void;
  /**
   * Stop watching and close the group fd, then every event and mount fd this handle still
   * holds. The kernel allows every permission event still waiting when the group closes
   * (also when the process dies). Idempotent.
   */
  close(): void;
  /** Let the process exit even while this handle is watched (uv_unref). */
  unref(): void;
  ref(): void;
  readonly closed: boolean;
  /** Event fds read and not yet closed. */
  readonly ownedEventFds: number;
  /** Reading stopped because ownedEventFds reached the addon's bound (8192); resumes at half. */
  readonly throttled: boolean;
}

export interface NativeFanotify {
  /**
   * fanotify_init(flags | FAN_CLOEXEC | FAN_NONBLOCK, eventFlags | O_CLOEXEC), watched with uv_poll
   * on the calling environment's loop. Each wake-up reads to EAGAIN (at most 1 MiB) and calls
   * `onBatch` once with the raw events, concatenated (whole events only; FAN_Q_OVERFLOW is one of
   * them). `onError` gets read errors other than EAGAIN/EINTR (EMFILE when an event fd could not
   * be made; the kernel denies a permission event it could not deliver); the handle stays open.
   * Throws EPERM for permission classes or REPORT flags the caller may not use, EINVAL for flags
   * this kernel does not know, EMFILE for max_user_groups.
   */
  openFanotify(
    flags: number,
    eventFlags: number,
    onBatch: (bytes: Buffer) => void,
    onError: (error: NativeSystemError) => void,
  ): FanotifyHandle;
}

let cached: NativeFanotify | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadFanotifyNative(): NativeFanotify {
  if (cached !== undefined) return cached;
  cached = requireCheckedAddon<NativeFanotify>(ADDON_FILE, 'fanotify', ['openFanotify']);
  return cached;
}
