// The one module that loads triggerd_inotify.node (native/inotify/) and declares its interface.
// Everything else takes a `NativeInotify`, so pure tests can pass test/helpers/fake-inotify.
// The records are parsed in TypeScript (src/events/inotify-events.ts: parseInotifyRecords).
import { requireCheckedAddon } from './checked-addon';
import { FSNOTIFY_EVENTS } from './fsnotify-bits';
import type { PreparedLaunch } from './spawn-addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_inotify.node';

/** inotify(7) mask bits, from <sys/inotify.h>. */
export const IN = {
  ...FSNOTIFY_EVENTS,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  MASK_CREATE: 0x10000000,
  MASK_ADD: 0x20000000,
  ISDIR: 0x40000000,
  ONESHOT: 0x80000000,
} as const;

export interface InotifyHandle {
  /**
   * inotify_add_watch(2): returns the watch descriptor. Watching an inode that is already watched
   * returns the same wd (the mask is replaced unless IN_MASK_ADD). Throws a system error with
   * `path` (ENOENT, EACCES, ENOSPC for max_user_watches, EBADF once closed).
   */
  addWatch(path: string, mask: number): number;
  /** inotify_rm_watch(2); the kernel then queues IN_IGNORED for it. EINVAL for an unknown wd. */
  removeWatch(wd: number): void;
  /**
   * One-shot: `fn()` is called inside the wake-up whose records first hold one on `wd` about the
   * watched inode itself (no name) with a bit of `mask`, before onBatch gets that batch; what it
   * throws is raised as uncaught. Returns the arm's id. EBADF once closed.
   * With `prepared` (spawn's prepare()), its clone is made in native code just before `fn` is
   * called; `fn` takes the child with `prepared.launch()`. The arm keeps it alive, not released.
   */
  armCall(wd: number, mask: number, fn: () => void, prepared?: PreparedLaunch): number;
  /** Drops an arm that has not fired; false when it had (or never existed). */
  disarmCall(id: number): boolean;
  /** Stop reading (records wait in the kernel's queue; beyond its bound, IN_Q_OVERFLOW). */
  pause(): void;
  resume(): void;
  /** Stop watching and close the fd (the kernel drops every watch). Idempotent. */
  close(): void;
  /** Let the process exit even while this handle is watched (uv_unref). */
  unref(): void;
  ref(): void;
  readonly closed: boolean;
}

export interface NativeInotify {
  /**
   * inotify_init1(IN_NONBLOCK | IN_CLOEXEC), watched with uv_poll on the calling environment's
   * loop. Each wake-up reads to EAGAIN (at most 1 MiB) and calls `onBatch` once with the raw
   * records, concatenated (whole records only; IN_Q_OVERFLOW is one of them, wd -1).
   * `onError` gets read errors other than EAGAIN/EINTR; the handle stays open.
   */
  openInotify(onBatch: (bytes: Buffer) => void, onError: (error: NativeSystemError) => void): InotifyHandle;
  /**
   * udevd's re-read of a whole disk's partition table: open O_RDONLY|O_NONBLOCK, flock
   * LOCK_EX|LOCK_NB (EWOULDBLOCK while someone holds the disk), ioctl BLKRRPART (EBUSY while a
   * partition is in use, EINVAL where the driver has no partitions, e.g. loop without partscan).
   */
  rereadPartitionTable(devnode: string): void;
}

let cached: NativeInotify | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadInotifyNative(): NativeInotify {
  if (cached !== undefined) return cached;
  cached = requireCheckedAddon<NativeInotify>(ADDON_FILE, 'inotify', ['openInotify', 'rereadPartitionTable']);
  return cached;
}
