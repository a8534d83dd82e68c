// Failure results shared by the builtins, with the stable codes they carry.
import type { BuiltinResult } from './builtin-types';

/** A bad builtin command line (udev: EINVAL from getopt or a value parser). */
export const ERR_BUILTIN_ARGS = 'ERR_BUILTIN_ARGS';
/** The builtin needs something this host does not have (libblkid, a program runner, hwdb.bin). */
export const ERR_BUILTIN_UNAVAILABLE = 'ERR_BUILTIN_UNAVAILABLE';
/** blkid found more than one superblock on the device (blkid_do_safeprobe returned -2). */
export const ERR_BLKID_AMBIVALENT = 'ERR_BLKID_AMBIVALENT';

export function fail(code: string, message: string): BuiltinResult {
  return { ok: false, code, message };
}

export function succeed(properties: Map<string, string>): BuiltinResult {
  return { ok: true, properties };
}
