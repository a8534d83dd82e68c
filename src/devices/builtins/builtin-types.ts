// The one shape every udev builtin has (see registry.ts): a function from the builtin's argv and
// a device to the properties it imports, reading the world only through a `BuiltinHost`, so each
// builtin is tested with a fixture sysfs tree and fakes instead of the real machine.
import type { BlkidProbeOptions, BlkidRawProbe } from '../../native/blkid-addon';

/** A device as a builtin sees it (sd_device's view: udev builtins take nothing else). */
export interface BuiltinDevice {
  /** Absolute path in sysfs, symlinks resolved ('/sys/devices/...'). */
  syspath: string;
  /** `syspath` below the sysfs root ('/devices/...'). */
  devpath: string;
  /** Basename of the `subsystem` link; '' for devices without one (e.g. '/devices/pci0000:00'). */
  subsystem: string;
  devtype?: string;
  /** Absolute device node ('/dev/vda'), when the device has one. */
  devname?: string;
  /** Basename of `syspath` with '!' turned into '/', as sd_device reports it. */
  sysname: string;
  /** The device's properties: its uevent variables plus what rules have imported so far. */
  properties: ReadonlyMap<string, string>;
}

/** What `runProgram` reports: the exit code, or the signal that ended the program. */
export interface ProgramExit {
  exitCode: number | null;
  signal: string | null;
}

export interface BuiltinHost {
  /**
   * A sysfs attribute of the device at `syspath`, as sd_device_get_sysattr_value returns it:
   * trailing newlines dropped, symlinks ('driver', 'subsystem', 'module', ...) as the basename
   * of their target; undefined when missing or unreadable. `name` may contain '/'
   * ('capabilities/ev', 'id/vendor').
   */
  readAttr(syspath: string, name: string): string | undefined;
  /** The same attribute as raw bytes (binary attributes: USB `descriptors`, PCI `config`). */
  readAttrBytes(syspath: string, name: string): Buffer | undefined;
  /** The nearest ancestor directory of `syspath` that is a device (has a `uevent` file). */
  parent(syspath: string): BuiltinDevice | undefined;
  /** sd_device_new_from_subsystem_sysname: /sys/bus/S/devices/N, /sys/class/S/N, ... */
  deviceBySubsystemSysname(subsystem: string, sysname: string): BuiltinDevice | undefined;
  /** Names of the subdirectories and symlinks in a sysfs directory; undefined if unreadable. */
  childNames(syspath: string): string[] | undefined;
  /** blkid: the libblkid prober (src/native/blkid-addon); absent where the addon is not loaded. */
  probeBlkid?(devnode: string, options: BlkidProbeOptions): Promise<BlkidRawProbe>;
  /** kmod: runs a program (argv[0] looked up in PATH) and waits for it; absent: no kmod. */
  runProgram?(argv: readonly string[]): Promise<ProgramExit>;
  /**
   * input_id: EVIOCGABS(axis) on an evdev node, the raw `struct input_absinfo` bytes
   * (src/native/devnode-addon); throws when the node cannot be opened or asked. Absent: no sizes.
   */
  readAbsInfo?(devnode: string, axis: number): Buffer;
}

/**
 * The properties a builtin imports, or why it failed. A failure makes `IMPORT{builtin}` false,
 * as in udev. `code` is the errno name udev's builtin fails with ('ENOENT', 'EPERM', ...) or one
 * of the ERR_* codes in ./builtin-errors.
 */
export type BuiltinResult =
  { ok: true; properties: Map<string, string> } | { ok: false; code: string; message: string };

/**
 * A builtin. `argv` is the builtin's command line split into words with argv[0] the builtin's
 * name, exactly as udev hands it to its builtins (`IMPORT{builtin}="blkid --noraid"` gives
 * ['blkid', '--noraid']).
 */
export type Builtin = (
  argv: readonly string[],
  device: BuiltinDevice,
  host: BuiltinHost,
) => BuiltinResult | Promise<BuiltinResult>;
