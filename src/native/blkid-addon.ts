// The one module that loads triggerd_blkid.node (native/blkid/) and declares its interface.
// Everything else takes a `NativeBlkid`, so pure tests can pass a fake that replays recorded
// probes. The addon only moves bytes: it returns libblkid's raw (name, value) pairs; the mapping
// to udev properties lives in src/devices/builtins/blkid.ts.
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

export interface BlkidProbeOptions {
  /** Byte offset of the probed area inside the device (udev's `--offset`). */
  offset: number;
  /** Do not report RAID member superblocks (udev's `--noraid`). */
  noraid: boolean;
  /** libblkid probing hint "name=value" (udev's `--hint`); needs libblkid >= 2.37. */
  hint?: string;
}

/** One value as libblkid reported it: `value` includes the trailing NUL of string values. */
export interface BlkidRawValue {
  name: string;
  value: Buffer;
}

/**
 * 'found': something was identified (`values` says what); 'nothing': no superblock or partition
 * table; 'ambivalent': more than one superblock matched (blkid_do_safeprobe returned -2).
 */
export type BlkidProbeStatus = 'found' | 'nothing' | 'ambivalent';

export interface BlkidRawProbe {
  status: BlkidProbeStatus;
  values: BlkidRawValue[];
}

export interface BlkidLibraryInfo {
  available: boolean;
  /** libblkid's version string, e.g. "2.38.1". */
  version?: string;
  /** Whether blkid_probe_set_hint exists (libblkid >= 2.37). */
  hint?: boolean;
  /** dlopen/dlsym's error text when not available. */
  error?: string;
}

export interface NativeBlkid {
  /**
   * Opens `devnode` read-only and probes it with libblkid on a libuv threadpool thread, the way
   * udev's blkid builtin does. Throws a TypeError for bad arguments; rejects with a
   * NativeSystemError (`syscall` 'open', `path`) when the node cannot be opened, with one whose
   * `syscall` names the libblkid call that failed otherwise, and with code
   * ERR_BLKID_UNAVAILABLE when libblkid.so.1 cannot be loaded.
   */
  probe(devnode: string, options: BlkidProbeOptions): Promise<BlkidRawProbe>;
  /** Loads libblkid.so.1 if not done yet and says whether that worked. */
  libraryInfo(): BlkidLibraryInfo;
}

const ADDON_FILE = 'triggerd_blkid.node';
const METHODS = ['probe', 'libraryInfo'] as const;

let cached: NativeBlkid | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeBlkid(): NativeBlkid {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  cached = checkShape(loaded, file);
  return cached;
}

function checkShape(loaded: unknown, file: string): NativeBlkid {
  if (typeof loaded !== 'object' || loaded === null) {
    throw new Error(`${file} is not triggerd's blkid addon; rebuild it`);
  }
  const missing = METHODS.filter((name) => typeof Reflect.get(loaded, name) !== 'function');
  if (missing.length > 0) {
    throw new Error(`${file} is not triggerd's blkid addon (${missing.join(', ')} missing); rebuild it`);
  }
  // The shape is checked above; the signatures are the C++ side's contract with this interface.
  return loaded as NativeBlkid;
}
