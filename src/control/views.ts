// The JSON shapes the control socket sends: plain objects, stable key order, no Maps or Sets.
import type { DeviceRecord, Uevent } from '../devices/types';

export interface DeviceJson {
  devpath: string;
  subsystem: string;
  devtype: string | null;
  devname: string | null;
  major: number | null;
  minor: number | null;
  driver: string | null;
  tags: string[];
  devlinks: string[];
  seqnum: number;
  action: string;
  properties: Record<string, string>;
}

export interface UeventJson {
  source: string;
  action: string;
  devpath: string;
  subsystem: string;
  seqnum: number;
  /** CLOCK_MONOTONIC seconds when the daemon processed it (what udevadm monitor prints). */
  monotonic: number;
  properties: Record<string, string>;
}

function toObject(map: ReadonlyMap<string, string>): Record<string, string> {
  const o: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of map) o[k] = v;
  return o;
}

export function deviceJson(r: DeviceRecord): DeviceJson {
  return {
    devpath: r.devpath,
    subsystem: r.subsystem,
    devtype: r.devtype ?? null,
    devname: r.devname ?? null,
    major: r.major ?? null,
    minor: r.minor ?? null,
    driver: r.driver ?? null,
    tags: [...r.tags].sort(),
    devlinks: [...r.devlinks],
    seqnum: r.seqnum,
    action: r.action,
    properties: toObject(r.properties),
  };
}

export function ueventJson(e: Uevent, monotonicNs: bigint): UeventJson {
  const properties = toObject(e.properties);
  // The kernel sends DEVNAME relative; show it as udevadm does, absolute.
  if (e.devname !== undefined && properties.DEVNAME !== undefined) properties.DEVNAME = e.devname;
  return {
    source: e.source,
    action: e.action,
    devpath: e.devpath,
    subsystem: e.subsystem,
    seqnum: e.seqnum,
    monotonic: Number(monotonicNs / 1000n) / 1e6,
    properties,
  };
}
