// The one module that loads triggerd_devnode.node (native/devnode/) and declares its interface:
// extended attributes on device nodes (SECLABEL) and the evdev EVIOCGABS ioctl (input_id).
// Everything else takes a `NativeDevnode`, so pure tests can pass a fake. The addon only moves
// bytes: attribute values and the raw `struct input_absinfo` are decoded in TypeScript.
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

/** Size of `struct input_absinfo` (six __s32: value, minimum, maximum, fuzz, flat, resolution). */
export const INPUT_ABSINFO_BYTES = 24;

export interface NativeDevnode {
  /**
   * setxattr(2) (lsetxattr with `noFollow`), flags 0: create or replace. Throws a TypeError for
   * bad arguments and a NativeSystemError (`syscall`, `path`) when the kernel refuses.
   */
  setXattr(path: string, name: string, value: Buffer, noFollow?: boolean): void;
  /** getxattr(2) (lgetxattr with `noFollow`): the value's bytes; ENODATA when it is not set. */
  getXattr(path: string, name: string, noFollow?: boolean): Buffer;
  /**
   * Opens `devnode` read-only and non-blocking and runs EVIOCGABS(axis), 0 <= axis <= ABS_MAX:
   * the raw `struct input_absinfo` (INPUT_ABSINFO_BYTES, host byte order). Errors: `syscall`
   * 'open' or 'ioctl' (EINVAL for a device without absolute axes, ENOTTY for a non-evdev node).
   */
  readAbsInfo(devnode: string, axis: number): Buffer;
}

const ADDON_FILE = 'triggerd_devnode.node';
const METHODS = ['setXattr', 'getXattr', 'readAbsInfo'] as const;

let cached: NativeDevnode | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeDevnode(): NativeDevnode {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  cached = checkShape(loaded, file);
  return cached;
}

function checkShape(loaded: unknown, file: string): NativeDevnode {
  if (typeof loaded !== 'object' || loaded === null) {
    throw new Error(`${file} is not triggerd's devnode addon; rebuild it`);
  }
  const missing = METHODS.filter((name) => typeof Reflect.get(loaded, name) !== 'function');
  if (missing.length > 0) {
    throw new Error(`${file} is not triggerd's devnode addon (${missing.join(', ')} missing); rebuild it`);
  }
  // The shape is checked above; the signatures are the C++ side's contract with this interface.
  return loaded as NativeDevnode;
}
