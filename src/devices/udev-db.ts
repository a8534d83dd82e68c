// Reading udevd's database (/run/udev/data/<id>) for companion mode: where udevd already runs,
// its records hold the tags, symlinks and properties its rules gave each device, and coldplug
// takes them from there instead of running rules of our own.
import fs = require('node:fs');
import path = require('node:path');
import type { DeviceDecision } from './device-registry';
import type { DeviceRecord, Uevent } from './types';

export const DEFAULT_UDEV_DB_DIR = '/run/udev/data';

export interface UdevDbRecord {
  /** Absolute /dev paths from `S:` lines. */
  devlinks: string[];
  /** `E:` lines. */
  properties: Map<string, string>;
  /** `G:` lines (all tags ever set). */
  tags: Set<string>;
  /** `Q:` lines (tags set by the last event). */
  currentTags: Set<string>;
  /** `I:` usec initialized. */
  usecInitialized?: string;
}

/** The database key of a device, as libudev forms it. */
export function udevDeviceId(
  event: Pick<Uevent, 'subsystem' | 'devpath' | 'major' | 'minor' | 'properties'>,
): string {
  if (event.major !== undefined && event.minor !== undefined && (event.major !== 0 || event.minor !== 0)) {
    return `${event.subsystem === 'block' ? 'b' : 'c'}${event.major}:${event.minor}`;
  }
  const ifindex = event.properties.get('IFINDEX');
  if (event.subsystem === 'net' && ifindex !== undefined) return `n${ifindex}`;
  return `+${event.subsystem}:${path.basename(event.devpath)}`;
}

export function parseUdevDbRecord(text: string): UdevDbRecord {
  const record: UdevDbRecord = {
    devlinks: [],
    properties: new Map(),
    tags: new Set(),
    currentTags: new Set(),
  };
  for (const line of text.split('\n')) {
    if (line.length < 3 || line[1] !== ':') continue;
    const value = line.slice(2);
    switch (line[0]) {
      case 'S':
        record.devlinks.push(`/dev/${value}`);
        break;
      case 'E': {
        const eq = value.indexOf('=');
        if (eq > 0) record.properties.set(value.slice(0, eq), value.slice(eq + 1));
        break;
      }
      case 'G':
        record.tags.add(value);
        break;
      case 'Q':
        record.currentTags.add(value);
        break;
      case 'I':
        record.usecInitialized = value;
        break;
    }
  }
  return record;
}

export function readUdevDbRecord(id: string, dir = DEFAULT_UDEV_DB_DIR): UdevDbRecord | undefined {
  try {
    return parseUdevDbRecord(fs.readFileSync(path.join(dir, id), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Fold a database record into a synthetic event, the way udevd's own event would carry it. */
export function withUdevDb(event: Uevent, record: UdevDbRecord): Uevent {
  const properties = new Map(event.properties);
  for (const [k, v] of record.properties) properties.set(k, v);
  if (record.usecInitialized !== undefined) properties.set('USEC_INITIALIZED', record.usecInitialized);
  if (record.devlinks.length > 0) properties.set('DEVLINKS', record.devlinks.join(' '));
  if (record.tags.size > 0) properties.set('TAGS', `:${[...record.tags].join(':')}:`);
  if (record.currentTags.size > 0) properties.set('CURRENT_TAGS', `:${[...record.currentTags].join(':')}:`);
  return { ...event, properties };
}

/** Tags and symlinks as udevd decided them, read from its event's TAGS and DEVLINKS. */
export function udevEventDecision(event: Uevent, previous?: DeviceRecord): DeviceDecision {
  const tagList = event.properties.get('CURRENT_TAGS') ?? event.properties.get('TAGS') ?? '';
  const linkList = event.properties.get('DEVLINKS') ?? '';
  // A device's change events mostly repeat its tags and links: the record before has them
  // already (records are never changed in place, so sharing is safe).
  const before = previous?.properties;
  const tags =
    previous !== undefined && (before?.get('CURRENT_TAGS') ?? before?.get('TAGS') ?? '') === tagList
      ? previous.tags
      : new Set(tagList.split(':').filter(Boolean));
  const devlinks =
    previous !== undefined && (before?.get('DEVLINKS') ?? '') === linkList
      ? previous.devlinks
      : linkList.split(' ').filter((l) => l.startsWith('/dev/'));
  return { tags, devlinks };
}
