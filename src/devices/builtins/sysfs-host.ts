// The real BuiltinHost: sd_device's view of sysfs, read synchronously (builtins run one device
// at a time on small attribute files). It works on any sysfs root, so the unit tests point it at
// fixture trees written into a temporary directory.
import fs = require('node:fs');
import path = require('node:path');
import { parseUeventFile } from '../sysfs';
import type { BuiltinDevice, BuiltinHost, ProgramExit } from './builtin-types';

export interface SysfsHostOptions {
  /** Where sysfs is mounted; '/sys' by default. */
  sysRoot?: string;
  probeBlkid?: BuiltinHost['probeBlkid'];
  readAbsInfo?: BuiltinHost['readAbsInfo'];
  runProgram?: (argv: readonly string[]) => Promise<ProgramExit>;
}

/** Sysfs attribute files are small; this bounds a read of a broken or special one. */
const MAX_ATTR_BYTES = 64 * 1024 + 18;

/**
 * One scratch buffer for every read: reads are synchronous, and a fresh 64 KiB buffer per
 * attribute made a trigger storm mostly garbage.
 */
let scratch: Buffer | undefined;

function readBoundedInto<T>(file: string, decode: (bytes: Buffer) => T): T | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    scratch ??= Buffer.allocUnsafeSlow(MAX_ATTR_BYTES);
    const buffer = scratch;
    let total = 0;
    while (total < buffer.length) {
      const n = fs.readSync(fd, buffer, total, buffer.length - total, null);
      if (n === 0) break;
      total += n;
    }
    return decode(buffer.subarray(0, total));
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function readBounded(file: string): Buffer | undefined {
  return readBoundedInto(file, (bytes) => Buffer.from(bytes));
}

function readBoundedText(file: string): string | undefined {
  return readBoundedInto(file, (bytes) => bytes.toString('utf8'));
}

/** lstat, undefined when missing; ENOENT answers without a thrown error (the common case). */
function lstatQuiet(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined; // ENOTDIR, EACCES, ...
  }
}

/** Reads the device at `syspath` (symlinks resolved by the caller); undefined if it is none. */
export function readBuiltinDevice(syspath: string, sysRoot = '/sys'): BuiltinDevice | undefined {
  // Most ancestors are plain directories: a missing file must not cost a thrown error.
  const ueventFile = syspath + '/uevent';
  if (lstatQuiet(ueventFile) === undefined) return undefined;
  const uevent = readBoundedText(ueventFile);
  if (uevent === undefined) return undefined;
  const properties = parseUeventFile(uevent);
  let subsystem = '';
  const subsystemLink = syspath + '/subsystem';
  if (lstatQuiet(subsystemLink)?.isSymbolicLink() === true) {
    try {
      subsystem = path.basename(fs.readlinkSync(subsystemLink));
    } catch {
      // gone meanwhile
    }
  }
  // Devices like /sys/devices/pci0000:00 have no subsystem; sd_device reports none.
  const device: BuiltinDevice = {
    syspath,
    devpath: syspath.startsWith(sysRoot) ? syspath.slice(sysRoot.length) : syspath,
    subsystem,
    sysname: path.basename(syspath).replace(/!/g, '/'),
    properties,
  };
  const devtype = properties.get('DEVTYPE');
  if (devtype !== undefined) device.devtype = devtype;
  const devname = properties.get('DEVNAME');
  if (devname !== undefined) device.devname = devname;
  return device;
}

/** A BuiltinHost over the sysfs tree at `sysRoot`. */
export function createSysfsHost(options: SysfsHostOptions = {}): BuiltinHost {
  const sysRoot = path.resolve(options.sysRoot ?? '/sys');
  const host: BuiltinHost = {
    readAttr(syspath, name) {
      const file = path.join(syspath, name);
      const st = lstatQuiet(file);
      if (st === undefined) return undefined;
      if (st.isSymbolicLink()) {
        try {
          return path.basename(fs.readlinkSync(file));
        } catch {
          return undefined;
        }
      }
      const text = readBoundedText(file);
      if (text === undefined) return undefined;
      return text.replace(/[\n\r]+$/, '');
    },
    readAttrBytes(syspath, name) {
      return readBounded(path.join(syspath, name));
    },
    parent(syspath) {
      for (let dir = path.dirname(syspath); dir.length > sysRoot.length; dir = path.dirname(dir)) {
        // Like sd_device: the first ancestor that is a device, below /sys/devices and friends.
        if (dir === path.join(sysRoot, 'devices')) return undefined;
        const device = readBuiltinDevice(dir, sysRoot);
        if (device !== undefined) return device;
      }
      return undefined;
    },
    deviceBySubsystemSysname(subsystem, sysname) {
      const name = sysname.replace(/\//g, '!');
      const candidates = [
        path.join(sysRoot, 'bus', subsystem, 'devices', name),
        path.join(sysRoot, 'class', subsystem, name),
        path.join(sysRoot, 'firmware', subsystem, name),
      ];
      for (const candidate of candidates) {
        let real: string;
        try {
          real = fs.realpathSync(candidate);
        } catch {
          continue;
        }
        const device = readBuiltinDevice(real, sysRoot);
        if (device !== undefined) return device;
      }
      return undefined;
    },
    childNames(syspath) {
      try {
        return fs
          .readdirSync(syspath, { withFileTypes: true })
          .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
          .map((entry) => entry.name);
      } catch {
        return undefined;
      }
    },
  };
  if (options.probeBlkid !== undefined) host.probeBlkid = options.probeBlkid;
  if (options.readAbsInfo !== undefined) host.readAbsInfo = options.readAbsInfo;
  if (options.runProgram !== undefined) host.runProgram = options.runProgram;
  return host;
}

/** The device a /sys/class/... or /sys/block/... path names, with symlinks resolved. */
export function builtinDeviceAt(syspathOrLink: string, sysRoot = '/sys'): BuiltinDevice | undefined {
  let real: string;
  try {
    real = fs.realpathSync(syspathOrLink);
  } catch {
    return undefined;
  }
  return readBuiltinDevice(real, path.resolve(sysRoot));
}
