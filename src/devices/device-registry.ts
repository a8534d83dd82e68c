// The device registry: what the daemon knows about every device, keyed by devpath, with indexes
// by device node and symlink so a unit name or a `why` question finds its device in O(1).
import type { DeviceRecord, Uevent } from './types';

export type DeviceChangeKind = 'added' | 'changed' | 'removed';

export interface DeviceChange {
  kind: DeviceChangeKind;
  /** The record after the change (for 'removed': the record as it was). */
  record: DeviceRecord;
  /** The record before the change, when there was one. */
  previous?: DeviceRecord;
  event: Uevent;
}

/** What the rules layer decided for an event (until rules exist: the default tags). */
export interface DeviceDecision {
  tags: ReadonlySet<string>;
  devlinks: readonly string[];
}

export class DeviceRegistry {
  private readonly byDevpath = new Map<string, DeviceRecord>();
  /** /dev node or symlink → devpath. */
  private readonly byNode = new Map<string, string>();
  /** Highest kernel seqnum applied. */
  lastSeqnum = 0;

  get size(): number {
    return this.byDevpath.size;
  }

  get(devpath: string): DeviceRecord | undefined {
    return this.byDevpath.get(devpath);
  }

  /** The device whose node or symlink is `node` ('/dev/loop0', '/dev/disk/by-uuid/…'). */
  findByNode(node: string): DeviceRecord | undefined {
    const devpath = this.byNode.get(node);
    return devpath === undefined ? undefined : this.byDevpath.get(devpath);
  }

  all(): IterableIterator<DeviceRecord> {
    return this.byDevpath.values();
  }

  devpaths(): IterableIterator<string> {
    return this.byDevpath.keys();
  }

  /** Apply one event; returns what changed (undefined when a remove names an unknown device). */
  apply(event: Uevent, decision: DeviceDecision): DeviceChange | undefined {
    if (event.seqnum > this.lastSeqnum) this.lastSeqnum = event.seqnum;
    if (event.action === 'remove') return this.remove(event.devpath, event);
    let previous: DeviceRecord | undefined;
    if (event.action === 'move') {
      const oldPath = event.properties.get('DEVPATH_OLD');
      if (oldPath !== undefined) {
        previous = this.byDevpath.get(oldPath);
        if (previous !== undefined) this.unindex(previous);
        this.byDevpath.delete(oldPath);
      }
    }
    const existing = this.byDevpath.get(event.devpath);
    if (existing !== undefined) {
      previous = existing;
      this.unindex(existing);
    }
    const record = recordFromEvent(event, decision, existing);
    this.byDevpath.set(record.devpath, record);
    this.index(record);
    return previous === undefined
      ? { kind: 'added', record, event }
      : { kind: 'changed', record, previous, event };
  }

  private remove(devpath: string, event: Uevent): DeviceChange | undefined {
    const previous = this.byDevpath.get(devpath);
    if (previous === undefined) return undefined;
    this.unindex(previous);
    this.byDevpath.delete(devpath);
    return { kind: 'removed', record: previous, previous, event };
  }

  private index(record: DeviceRecord): void {
    if (record.devname !== undefined) this.byNode.set(record.devname, record.devpath);
    for (const link of record.devlinks) this.byNode.set(link, record.devpath);
  }

  private unindex(record: DeviceRecord): void {
    if (record.devname !== undefined && this.byNode.get(record.devname) === record.devpath) {
      this.byNode.delete(record.devname);
    }
    for (const link of record.devlinks) {
      if (this.byNode.get(link) === record.devpath) this.byNode.delete(link);
    }
  }
}

function recordFromEvent(
  event: Uevent,
  decision: DeviceDecision,
  existing: DeviceRecord | undefined,
): DeviceRecord {
  const record: DeviceRecord = {
    devpath: event.devpath,
    subsystem: event.subsystem,
    properties: event.properties,
    tags: decision.tags,
    devlinks: decision.devlinks,
    seqnum: event.seqnum,
    action: event.action,
  };
  if (event.devtype !== undefined) record.devtype = event.devtype;
  if (event.devname !== undefined) record.devname = event.devname;
  if (event.major !== undefined) record.major = event.major;
  if (event.minor !== undefined) record.minor = event.minor;
  // The kernel names the driver only on add/bind; keep what we knew until an unbind says otherwise.
  const driver = event.properties.get('DRIVER') ?? (event.action === 'unbind' ? undefined : existing?.driver);
  if (driver !== undefined) record.driver = driver;
  return record;
}

/** The tags a device gets until the rules engine decides them: systemd's defaults for block, net, tty. */
export function defaultDecision(event: Uevent): DeviceDecision {
  return DEFAULT_TAGGED_SUBSYSTEMS.has(event.subsystem) ? TAGGED_SYSTEMD : UNTAGGED;
}

const DEFAULT_TAGGED_SUBSYSTEMS = new Set(['block', 'net', 'tty']);
const TAGGED_SYSTEMD: DeviceDecision = Object.freeze({ tags: new Set(['systemd']), devlinks: [] });
const UNTAGGED: DeviceDecision = Object.freeze({ tags: new Set<string>(), devlinks: [] });
