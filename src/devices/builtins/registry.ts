// Builtin name (as written in IMPORT{builtin}="name ...") -> implementation. The rules engine
// looks builtins up here and nowhere else; adding a builtin means adding a module and a row.
import { blkid } from './blkid';
import type { Builtin } from './builtin-types';
import { hwdb } from './hwdb';
import { inputId } from './input-id';
import { kmod } from './kmod';
import { netId } from './net-id';
import { pathId } from './path-id';
import { usbId } from './usb-id';

export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ['blkid', blkid],
  ['hwdb', hwdb],
  ['input_id', inputId],
  ['kmod', kmod],
  ['net_id', netId],
  ['path_id', pathId],
  ['usb_id', usbId],
]);

export function isKnownBuiltin(name: string): boolean {
  return BUILTINS.has(name);
}

export function getBuiltin(name: string): Builtin | undefined {
  return BUILTINS.get(name);
}
