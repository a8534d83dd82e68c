// The manager: owns the unit table and routes events to units. Device changes arrive from the
// device pipeline; loaded unit files become units through the registry; the job engine drives
// start/stop through the UnitInstance interface.
import { Subject } from '../util/rx';
import type { Logger } from '../util/logger';
import type { DeviceChange } from '../devices/device-registry';
import { summarizeUnit, type ActiveState, type UnitInstance, type UnitSummary } from '../units/unit-type';
import type { DeviceRecord } from '../devices/types';
import {
  DeviceUnit,
  deviceUnitNames,
  FINDING_KEYS,
  findingFor,
  isDeviceUnitCandidate,
  type DeviceFinding,
  type DeviceUnitState,
} from '../units/device';

export interface UnitStateChange {
  unit: string;
  from: string;
  to: string;
  active: ActiveState;
  /** The unit logs its routine transitions at debug (per-connection instances). */
  quiet?: boolean;
}

export interface ManagerOptions {
  logger: Logger;
  /** Dead device units nothing refers to are forgotten after this long (ms). */
  deadDeviceGcMs?: number;
  now?: () => number;
  /** A device unit a job waits for got plugged. */
  onDevicePlugged?: (unit: DeviceUnit) => void;
  /** Every device unit transition (the unit engine hears them as it hears every other unit's). */
  onDeviceStateChange?: (unit: DeviceUnit, from: DeviceUnitState, to: DeviceUnitState) => void;
}

/** What applyDeviceChange made of one device record, reused while the next ones keep it. */
interface DeviceNaming {
  record: DeviceRecord;
  names: readonly string[];
  finding: DeviceFinding;
}

/** The same unit names: the same device path, node and links (deviceUnitNames' inputs). */
function sameNaming(a: DeviceRecord, b: DeviceRecord): boolean {
  return a.devpath === b.devpath && a.devname === b.devname && sameList(a.devlinks, b.devlinks);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The same finding: findingFor's inputs are equal. */
function sameFindingInputs(a: DeviceRecord, b: DeviceRecord): boolean {
  if (a.devpath !== b.devpath) return false;
  for (const key of FINDING_KEYS) if (a.properties.get(key) !== b.properties.get(key)) return false;
  return true;
}

export class Manager {
  private readonly units = new Map<string, UnitInstance>();
  private readonly deviceUnits = new Map<string, DeviceUnit>();
  /** By devpath: the unit names and finding of each device's record that has units. */
  private readonly naming = new Map<string, DeviceNaming>();
  readonly unitChanges$ = new Subject<UnitStateChange>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly deadDeviceGcMs: number;

  constructor(private readonly options: ManagerOptions) {
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.deadDeviceGcMs = options.deadDeviceGcMs ?? 60_000;
  }

  getUnit(name: string): UnitInstance | undefined {
    return this.units.get(name);
  }

  allUnits(): IterableIterator<UnitInstance> {
    return this.units.values();
  }

  unitCount(): number {
    return this.units.size;
  }

  /** Add or replace a unit (a reload swaps in freshly built units). */
  addUnit(unit: UnitInstance): void {
    this.units.set(unit.name, unit);
  }

  removeUnit(name: string): void {
    this.units.delete(name);
  }

  /** Every unit type reports its transitions here. */
  reportStateChange(unit: UnitInstance, from: string, to: string): void {
    this.unitChanges$.next({
      unit: unit.name,
      from,
      to,
      active: unit.activeState(),
      quiet: unit.logQuietly === true && to !== 'failed',
    });
  }

  listUnits(): UnitSummary[] {
    const rows: UnitSummary[] = [];
    for (const unit of this.units.values()) rows.push(summarizeUnit(unit));
    rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return rows;
  }

  describeUnit(
    name: string,
  ): (UnitSummary & { since: number; properties: Record<string, unknown> }) | undefined {
    const unit = this.units.get(name);
    if (unit === undefined) return undefined;
    return { ...summarizeUnit(unit), since: unit.since, properties: unit.properties() };
  }

  /** The device unit behind a name (for SYSTEMD_WANTS and `why`). */
  deviceUnit(name: string): DeviceUnit | undefined {
    return this.deviceUnits.get(name);
  }

  /** Route one device change to the device units whose names it carries or carried. */
  applyDeviceChange(change: DeviceChange): void {
    const { record, previous } = change;
    const known = previous === undefined ? undefined : this.naming.get(previous.devpath);
    // What the record before was given, unless the registry and this table disagree.
    const last = known !== undefined && known.record === previous ? known : undefined;
    if (previous !== undefined) this.naming.delete(previous.devpath);
    const before =
      previous !== undefined && isDeviceUnitCandidate(previous)
        ? (last?.names ?? deviceUnitNames(previous))
        : [];
    const after =
      change.kind === 'removed' || !isDeviceUnitCandidate(record)
        ? []
        : last !== undefined && sameNaming(last.record, record)
          ? last.names
          : deviceUnitNames(record);
    const devpathBefore = previous?.devpath;
    // Most change events keep the names (the same array then): nothing to take away.
    if (before !== after || devpathBefore !== record.devpath) {
      for (const name of before) {
        if (after.includes(name) && devpathBefore === record.devpath) continue;
        const unit = this.deviceUnits.get(name);
        if (unit === undefined || devpathBefore === undefined) continue;
        unit.data.udev.delete(devpathBefore);
        unit.setState();
      }
    }
    if (after.length === 0) return;
    const finding =
      last !== undefined && sameFindingInputs(last.record, record) ? last.finding : findingFor(record);
    this.naming.set(record.devpath, { record, names: after, finding });
    for (const name of after) {
      const unit = this.deviceUnits.get(name) ?? this.addDeviceUnit(name);
      unit.data.udev.set(record.devpath, finding);
      unit.setState();
    }
  }

  /** A device unit a job waits for even though no device carries its name yet. */
  ensureDeviceUnit(name: string): DeviceUnit {
    return this.deviceUnits.get(name) ?? this.addDeviceUnit(name);
  }

  /** Forget dead device units that have been dead long enough; returns how many went. */
  collectGarbage(keep: (name: string) => boolean = () => false): number {
    const cutoff = this.now() - this.deadDeviceGcMs;
    let n = 0;
    for (const [name, unit] of this.deviceUnits) {
      if (unit.state === 'dead' && unit.data.udev.size === 0 && unit.since <= cutoff && !keep(name)) {
        this.deviceUnits.delete(name);
        if (this.units.get(name) === unit) this.units.delete(name);
        n++;
      }
    }
    return n;
  }

  private addDeviceUnit(name: string): DeviceUnit {
    const unit = new DeviceUnit(
      name,
      this.now,
      (u: DeviceUnit, from: DeviceUnitState, to: DeviceUnitState) => {
        this.logger.debug({ unit: u.name, from, to }, 'device unit state');
        if (this.options.onDeviceStateChange !== undefined) this.options.onDeviceStateChange(u, from, to);
        else this.reportStateChange(u, from, to);
      },
      (u) => this.options.onDevicePlugged?.(u),
    );
    this.deviceUnits.set(name, unit);
    // A unit file of the same name (a .device file with dependencies) does not hide the device.
    if (!this.units.has(name)) this.units.set(name, unit);
    return unit;
  }
}
