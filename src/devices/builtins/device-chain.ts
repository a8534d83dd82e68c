// sd_device helpers the builtins share: ancestors by subsystem/devtype, and the sysnum.
import type { BuiltinDevice, BuiltinHost } from './builtin-types';

/**
 * sd_device_get_parent_with_subsystem_devtype: the nearest ancestor (never the device itself)
 * with that subsystem and, when given, that devtype.
 */
export function ancestorWith(
  host: BuiltinHost,
  device: BuiltinDevice,
  subsystem: string,
  devtype?: string,
): BuiltinDevice | undefined {
  for (let parent = host.parent(device.syspath); parent !== undefined; parent = host.parent(parent.syspath)) {
    if (parent.subsystem === subsystem && (devtype === undefined || parent.devtype === devtype))
      return parent;
  }
  return undefined;
}

/**
 * sd_device's sysnum: the trailing digits of the sysname, except that the first character is
 * never part of it ('0:0:0:3' -> '3', 'host12' -> '12', '123' -> '23', 'sda' -> undefined).
 */
export function sysnum(sysname: string): string | undefined {
  let len = sysname.length;
  while (len > 0 && /\d/.test(sysname[--len]!));
  len++;
  return len < sysname.length ? sysname.slice(len) : undefined;
}
