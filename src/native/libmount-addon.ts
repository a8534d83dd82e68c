// The one module that loads triggerd_libmount.node (native/libmount/) and declares its interface.
// Everything else takes a `NativeLibmount`, so pure tests can pass a fake. The addon runs
// util-linux's libmount (mnt_context_mount / mnt_context_umount, what mount(8) and umount(8) run
// inside their processes) on a libuv threadpool thread, with mount.<type> helpers disabled, and
// hands back mount(8)'s exit code and libmount's own message; when to use it instead of running
// mount(8), and how the message reads, is decided in src/mounts/in-process-mount.ts.
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

export interface LibmountMountRequest {
  /** What= (a device, an image file with `loop`, a directory for `bind`, a pseudo source). */
  source: string;
  /** Where=, absolute. */
  target: string;
  /** Type=; '' lets libmount probe the source. */
  fstype: string;
  /** Options= as mount(8) takes after -o; '' for none. */
  options: string;
  /** mount -s */
  sloppy: boolean;
  /** mount -w: never fall back to read-only. */
  readWriteOnly: boolean;
}

export interface LibmountUmountRequest {
  /** The mount point (never canonicalized: umount -c). */
  target: string;
  /** umount -l */
  lazy: boolean;
  /** umount -f */
  force: boolean;
}

/** How one libmount call ended. */
export interface LibmountOutcome {
  /** mnt_context_mount/umount's return value (0 success; > 0 the failed syscall's errno; < 0 a libmount error). */
  rc: number;
  /** mount(8)'s exit status for it (mnt_context_get_excode): 0, 32 (failure), 2 (system error), ... */
  exitCode: number;
  /** The text mount(8) prints after "mount: <target>: " ('' when there is nothing to say). */
  message: string;
  /** Whether mount(2)/umount(2) ran, and its errno (0 when it succeeded or did not run). */
  syscallCalled: boolean;
  syscallErrno: number;
}

export interface LibmountLibraryInfo {
  available: boolean;
  /** libmount's version string, e.g. "2.38.1". */
  version?: string;
  /** dlopen/dlsym's error text when not available. */
  error?: string;
}

export interface NativeLibmount {
  /**
   * Mounts on a threadpool thread. Throws a TypeError for bad arguments; rejects with a
   * NativeSystemError only when no libmount context could be set up (ENOMEM), and with code
   * ERR_LIBMOUNT_UNAVAILABLE when libmount.so.1 cannot be loaded (it is loaded on the threadpool
   * if load() has not done it); a mount that fails resolves with a non-zero exitCode and
   * libmount's message.
   */
  mount(request: LibmountMountRequest): Promise<LibmountOutcome>;
  /** Unmounts on a threadpool thread; errors as for mount(). */
  umount(request: LibmountUmountRequest): Promise<LibmountOutcome>;
  /**
   * Loads libmount.so.1 on a threadpool thread (dlopen of libmount and what it links takes
   * milliseconds, tens of them on a busy machine) and says whether that worked.
   */
  load(): Promise<LibmountLibraryInfo>;
  /** The same, synchronously: loads the library on this thread if load() has not. */
  libraryInfo(): LibmountLibraryInfo;
}

const ADDON_FILE = 'triggerd_libmount.node';
const METHODS = ['mount', 'umount', 'load', 'libraryInfo'] as const;

let cached: NativeLibmount | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeLibmount(): NativeLibmount {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  cached = checkShape(loaded, file);
  return cached;
}

function checkShape(loaded: unknown, file: string): NativeLibmount {
  if (typeof loaded !== 'object' || loaded === null) {
    throw new Error(`${file} is not triggerd's libmount addon; rebuild it`);
  }
  const missing = METHODS.filter((name) => typeof Reflect.get(loaded, name) !== 'function');
  if (missing.length > 0) {
    throw new Error(`${file} is not triggerd's libmount addon (${missing.join(', ')} missing); rebuild it`);
  }
  // The shape is checked above; the signatures are the C++ side's contract with this interface.
  return loaded as NativeLibmount;
}
