// The one module that loads triggerd_mounts.node (native/mounts/) and declares its interface.
// Everything else takes a `NativeMounts`, so pure tests can pass test/helpers/fake-mounts.
// The table itself is read and parsed in TypeScript (src/mounts/mountinfo.ts).
import { requireCheckedAddon } from './checked-addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_mounts.node';

export interface MountInfoWatch {
  /** Stop watching and close the fd. Idempotent. */
  close(): void;
  /** Let the process exit even while this watch is armed (uv_unref). */
  unref(): void;
  ref(): void;
  readonly closed: boolean;
  /** Wake-ups so far. */
  readonly wakeups: number;
}

export interface NativeMounts {
  /**
   * Open `path` (default /proc/self/mountinfo) and watch it for POLLPRI/POLLERR, the kernel's
   * "the mount table changed", on the calling environment's loop, from now until close(). Each
   * wake-up calls `onChange` once. The fd is registered with the loop on its next turn, and the
   * kernel's signal is consumed by the first poll that sees it: read the table once after that
   * turn (setImmediate), or a change made before it may go unreported. `onError` gets EBADF
   * when the fd is unusable. Throws a system error with `path` when the file cannot be opened,
   * TypeError for bad arguments.
   */
  watchMountInfo(
    onChange: () => void,
    onError: (error: NativeSystemError) => void,
    path?: string,
  ): MountInfoWatch;
}

let cached: NativeMounts | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeMounts(): NativeMounts {
  if (cached !== undefined) return cached;
  cached = requireCheckedAddon<NativeMounts>(ADDON_FILE, 'mounts', ['watchMountInfo']);
  return cached;
}
