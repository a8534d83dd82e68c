// What a device event and a device are, independent of where they came from.

export const UEVENT_ACTIONS = [
  'add',
  'remove',
  'change',
  'move',
  'online',
  'offline',
  'bind',
  'unbind',
] as const;
export type UeventAction = (typeof UEVENT_ACTIONS)[number];

/** Where an event came from: the kernel (group 1), udevd (group 2), or a rescan of /sys. */
export type UeventSource = 'kernel' | 'udev' | 'synthetic';

/** One parsed uevent. `properties` holds every KEY=VALUE the message carried, in order. */
export interface Uevent {
  source: UeventSource;
  action: UeventAction;
  /** Path below /sys, starting with '/': '/devices/virtual/block/loop0'. */
  devpath: string;
  subsystem: string;
  devtype?: string;
  /** Device node as an absolute path ('/dev/loop0'); the kernel sends it relative, we normalise. */
  devname?: string;
  major?: number;
  minor?: number;
  /** Kernel sequence number; 0 for synthetic events. */
  seqnum: number;
  properties: ReadonlyMap<string, string>;
}

/** What the daemon knows about one device now. */
export interface DeviceRecord {
  devpath: string;
  subsystem: string;
  devtype?: string;
  devname?: string;
  major?: number;
  minor?: number;
  driver?: string;
  /** The properties from the last event (or from the uevent file at coldplug). */
  properties: ReadonlyMap<string, string>;
  /** udev tags ('systemd', ...). */
  tags: ReadonlySet<string>;
  /** /dev symlinks, absolute paths. */
  devlinks: readonly string[];
  /** Seqnum of the last event applied (0 when known only from coldplug). */
  seqnum: number;
  /** Last action applied ('add' for coldplugged devices). */
  action: UeventAction;
}
