// Reading devices out of sysfs: the coldplug enumeration (what `udevadm trigger` finds) and the
// snapshot of one device from its `uevent` file. Synchronous on purpose: it runs at start-up and
// on resync, where finishing fast matters more than yielding (~400 devices here take a few ms).
import fs = require('node:fs');
import path = require('node:path');
import type { Uevent, UeventAction } from './types';

export const DEFAULT_SYS_ROOT = '/sys';

/** A device as sysfs shows it now. */
export interface SysfsDevice {
  devpath: string;
  subsystem: string;
  driver?: string;
  /** The `uevent` file's KEY=VALUE lines, with DEVNAME made absolute. */
  properties: Map<string, string>;
}

/** Per-device read failures during a scan: reported, never fatal to the scan. */
export interface SysfsScanError {
  devpath: string;
  code: string;
  message: string;
}

export interface SysfsScan {
  devices: Map<string, SysfsDevice>;
  errors: SysfsScanError[];
}

function readLinkBase(p: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(p));
  } catch {
    return undefined;
  }
}

/** Parse a sysfs `uevent` file body (KEY=VALUE per line). */
export function parseUeventFile(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    let value = line.slice(eq + 1);
    if (key === 'DEVNAME' && !value.startsWith('/')) value = `/dev/${value}`;
    props.set(key, value);
  }
  return props;
}

/** Read one device; `devpath` is the path below the sysfs root ('/devices/...'). */
export function readSysfsDevice(
  devpath: string,
  sysRoot = DEFAULT_SYS_ROOT,
  subsystemHint?: string,
): SysfsDevice {
  const dir = sysRoot + devpath;
  const text = fs.readFileSync(path.join(dir, 'uevent'), 'latin1');
  const subsystem = subsystemHint ?? readLinkBase(path.join(dir, 'subsystem')) ?? '';
  const driver = readLinkBase(path.join(dir, 'driver'));
  const device: SysfsDevice = { devpath, subsystem, properties: parseUeventFile(text) };
  if (driver !== undefined) device.driver = driver;
  return device;
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Every device path as udev's enumerator finds it: the entries of /sys/bus/X/devices and
 * /sys/class/X, each a symlink into /sys/devices, with its subsystem.
 */
export function listSysfsDevicePaths(sysRoot = DEFAULT_SYS_ROOT): Map<string, string> {
  const found = new Map<string, string>();
  const add = (linkDir: string, name: string, subsystem: string): void => {
    const link = path.join(linkDir, name);
    let target: string;
    try {
      target = path.resolve(linkDir, fs.readlinkSync(link));
    } catch {
      return; // not a symlink (or vanished): not a device entry
    }
    if (!target.startsWith(sysRoot + '/')) return;
    found.set(target.slice(sysRoot.length), subsystem);
  };
  for (const bus of listDir(path.join(sysRoot, 'bus'))) {
    const dir = path.join(sysRoot, 'bus', bus, 'devices');
    for (const name of listDir(dir)) add(dir, name, bus);
  }
  for (const cls of listDir(path.join(sysRoot, 'class'))) {
    const dir = path.join(sysRoot, 'class', cls);
    for (const name of listDir(dir)) add(dir, name, cls);
  }
  return found;
}

/** Enumerate and read every device. A device that vanishes or cannot be read is an error entry. */
export function scanSysfs(sysRoot = DEFAULT_SYS_ROOT): SysfsScan {
  const devices = new Map<string, SysfsDevice>();
  const errors: SysfsScanError[] = [];
  for (const [devpath, subsystem] of listSysfsDevicePaths(sysRoot)) {
    try {
      devices.set(devpath, readSysfsDevice(devpath, sysRoot, subsystem));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // ENOENT: removed between listing and reading; its remove event is on its way.
      if (e.code !== 'ENOENT') errors.push({ devpath, code: e.code ?? 'EIO', message: e.message });
    }
  }
  return { devices, errors };
}

/** Turn a sysfs snapshot into an event, as if the kernel had just announced it. */
export function syntheticUevent(device: SysfsDevice, action: UeventAction): Uevent {
  const properties = new Map<string, string>([
    ['ACTION', action],
    ['DEVPATH', device.devpath],
    ['SUBSYSTEM', device.subsystem],
  ]);
  for (const [k, v] of device.properties) properties.set(k, v);
  const event: Uevent = {
    source: 'synthetic',
    action,
    devpath: device.devpath,
    subsystem: device.subsystem,
    seqnum: 0,
    properties,
  };
  const devtype = device.properties.get('DEVTYPE');
  if (devtype !== undefined) event.devtype = devtype;
  const devname = device.properties.get('DEVNAME');
  if (devname !== undefined) event.devname = devname;
  const major = device.properties.get('MAJOR');
  const minor = device.properties.get('MINOR');
  if (major !== undefined && minor !== undefined) {
    event.major = Number(major);
    event.minor = Number(minor);
  }
  if (device.driver !== undefined) properties.set('DRIVER', device.driver);
  return event;
}

/** The kernel's last emitted uevent sequence number. */
export function readKernelSeqnum(sysRoot = DEFAULT_SYS_ROOT): number {
  try {
    return Number(fs.readFileSync(path.join(sysRoot, 'kernel', 'uevent_seqnum'), 'latin1').trim()) || 0;
  } catch {
    return 0;
  }
}
