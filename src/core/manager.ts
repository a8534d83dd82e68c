// The manager: owns the unit table and routes events to units. Device changes arrive from the
// device pipeline; each unit type's own module decides what its state becomes.
import { Subject } from 'rxjs';
import type { Logger } from '../util/logger';
import type { DeviceChange } from '../devices/device-registry';
import type { ActiveState, LoadState, UnitSummary, UnitType } from '../units/unit-type';
import {
  deriveDeviceState,
  deviceUnitNames,
  deviceUnitType,
  findingFor,
  isDeviceUnitCandidate,
  newDeviceUnitData,
  type DeviceUnitData,
  type DeviceUnitState,
} from '../units/device';

export interface Unit<State extends string = string, Data = unknown> {
  readonly name: string;
  readonly type: UnitType<State, Data>;
  state: State;
  data: Data;
  load: LoadState;
  /** Wall-clock ms of the last state change. */
  since: number;
}

export interface UnitStateChange {
  unit: string;
  from: string;
  to: string;
  active: ActiveState;
}

export interface ManagerOptions {
  logger: Logger;
  /** Dead device units nothing refers to are forgotten after this long (ms). */
  deadDeviceGcMs?: number;
  now?: () => number;
}

type DeviceUnit = Unit<DeviceUnitState, DeviceUnitData>;

export class Manager {
  private readonly units = new Map<string, Unit>();
  private readonly deviceUnits = new Map<string, DeviceUnit>();
  readonly unitChanges$ = new Subject<UnitStateChange>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly deadDeviceGcMs: number;

  constructor(options: ManagerOptions) {
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.deadDeviceGcMs = options.deadDeviceGcMs ?? 60_000;
  }

  getUnit(name: string): Unit | undefined {
    return this.units.get(name);
  }

  unitCount(): number {
    return this.units.size;
  }

  listUnits(): UnitSummary[] {
    const rows: UnitSummary[] = [];
    for (const unit of this.units.values()) rows.push(summarize(unit));
    rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return rows;
  }

  describeUnit(name: string): (UnitSummary & { since: number; data: unknown }) | undefined {
    const unit = this.units.get(name);
    if (unit === undefined) return undefined;
    return { ...summarize(unit), since: unit.since, data: unit.type.serialize(unit.data) };
  }

  /** Route one device change to the device units whose names it carries or carried. */
  applyDeviceChange(change: DeviceChange): void {
    const before =
      change.previous !== undefined && isDeviceUnitCandidate(change.previous)
        ? deviceUnitNames(change.previous)
        : [];
    const after =
      change.kind !== 'removed' && isDeviceUnitCandidate(change.record) ? deviceUnitNames(change.record) : [];
    const devpathBefore = change.previous?.devpath;
    for (const name of before) {
      if (after.includes(name) && devpathBefore === change.record.devpath) continue;
      const unit = this.deviceUnits.get(name);
      if (unit === undefined || devpathBefore === undefined) continue;
      unit.data.udev.delete(devpathBefore);
      this.setDeviceState(unit, deriveDeviceState(unit.data));
    }
    if (after.length === 0) return;
    const finding = findingFor(change.record);
    for (const name of after) {
      const unit = this.deviceUnits.get(name) ?? this.addDeviceUnit(name);
      unit.data.udev.set(change.record.devpath, finding);
      this.setDeviceState(unit, deriveDeviceState(unit.data));
    }
  }

  /** Forget dead device units that have been dead long enough; returns how many went. */
  collectGarbage(): number {
    const cutoff = this.now() - this.deadDeviceGcMs;
    let n = 0;
    for (const [name, unit] of this.deviceUnits) {
      if (unit.state === 'dead' && unit.data.udev.size === 0 && unit.since <= cutoff) {
        this.deviceUnits.delete(name);
        this.units.delete(name);
        n++;
      }
    }
    return n;
  }

  private addDeviceUnit(name: string): DeviceUnit {
    const unit: DeviceUnit = {
      name,
      type: deviceUnitType,
      state: deviceUnitType.initialState,
      data: newDeviceUnitData(),
      load: 'loaded',
      since: this.now(),
    };
    this.deviceUnits.set(name, unit);
    this.units.set(name, unit as unknown as Unit);
    return unit;
  }

  /** The one place a device unit's state changes; logs and notifies. */
  private setDeviceState(unit: DeviceUnit, next: DeviceUnitState): void {
    const from = unit.state;
    if (from === next) return;
    unit.state = next;
    unit.since = this.now();
    this.logger.debug({ unit: unit.name, from, to: next }, 'device unit state');
    this.unitChanges$.next({ unit: unit.name, from, to: next, active: unit.type.activeState(next) });
  }
}

function summarize(unit: Unit): UnitSummary {
  return {
    name: unit.name,
    load: unit.load,
    active: unit.type.activeState(unit.state),
    sub: unit.state,
    description: unit.type.describe(unit.name, unit.data),
  };
}
