// Small builders for Uevents in tests.
import type { Uevent, UeventAction } from '../../src/devices/types';

let seq = 1000;

export function uevent(
  action: UeventAction,
  devpath: string,
  subsystem: string,
  extra: Record<string, string> = {},
  source: Uevent['source'] = 'kernel',
): Uevent {
  const seqnum = ++seq;
  const properties = new Map<string, string>([
    ['ACTION', action],
    ['DEVPATH', devpath],
    ['SUBSYSTEM', subsystem],
    ...Object.entries(extra),
    ['SEQNUM', String(seqnum)],
  ]);
  const e: Uevent = { source, action, devpath, subsystem, seqnum, properties };
  if (extra.DEVNAME !== undefined)
    e.devname = extra.DEVNAME.startsWith('/') ? extra.DEVNAME : `/dev/${extra.DEVNAME}`;
  if (extra.DEVTYPE !== undefined) e.devtype = extra.DEVTYPE;
  if (extra.MAJOR !== undefined) e.major = Number(extra.MAJOR);
  if (extra.MINOR !== undefined) e.minor = Number(extra.MINOR);
  return e;
}

export const LOOP0 = [
  '/devices/virtual/block/loop0',
  'block',
  { DEVNAME: 'loop0', DEVTYPE: 'disk', MAJOR: '7', MINOR: '0' },
] as const;
