// .device units: one per device tagged "systemd", named after its sysfs path, its /dev node and
// each /dev symlink (systemd's naming). A unit's state is derived from the devices that currently
// carry its name, never stored separately, so it follows the hardware.
import type { DeviceRecord } from '../devices/types';
import type { ActiveState, JobOutcome, UnitInstance } from './unit-type';
import { deviceUnitName } from './unit-name';

export type DeviceUnitState = 'dead' | 'tentative' | 'plugged';

/** Why one device contributes to a unit. */
export interface DeviceFinding {
  devpath: string;
  /** False when udev said SYSTEMD_READY=0: the device exists but is not usable yet. */
  ready: boolean;
  /** Units the device asks to start (SYSTEMD_WANTS), for the unit engine. */
  wants: readonly string[];
  /** Units a per-user manager would start (SYSTEMD_USER_WANTS); recorded, not acted on. */
  userWants: readonly string[];
  /** The sysfs path of the device, for the description and `Following`. */
  sysfsPath: string;
  model?: string;
}

export interface DeviceUnitData {
  /** Devices (by devpath) that currently carry this unit's name, as udev reports them. */
  udev: Map<string, DeviceFinding>;
  /** Set when the unit's device is known from elsewhere (a mount or swap in use): 'tentative'. */
  foundElsewhere: boolean;
}

const ACTIVE: Record<DeviceUnitState, ActiveState> = {
  dead: 'inactive',
  tentative: 'activating',
  plugged: 'active',
};

/**
 * One device unit name. Its state is derived from `data` in setState() only; starting it waits
 * for the device (the job engine's timeout applies), stopping it does nothing, as in systemd.
 */
export class DeviceUnit implements UnitInstance {
  readonly suffix = '.device';
  readonly load = 'loaded' as const;
  readonly file = undefined;
  state: DeviceUnitState = 'dead';
  since: number;
  readonly data: DeviceUnitData = { udev: new Map(), foundElsewhere: false };
  private waiting = false;

  constructor(
    readonly name: string,
    private readonly now: () => number,
    private readonly onStateChange: (unit: DeviceUnit, from: DeviceUnitState, to: DeviceUnitState) => void,
    private readonly onPluggedWhileWaiting: (unit: DeviceUnit) => void = () => undefined,
  ) {
    this.since = now();
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    for (const finding of this.data.udev.values()) return finding.model ?? finding.sysfsPath;
    return this.name;
  }

  start(): JobOutcome {
    if (this.state === 'plugged') return 'done';
    this.waiting = true;
    return 'pending';
  }

  resumeJob(type: 'start' | 'stop' | 'reload'): boolean {
    if (type !== 'start' || this.state === 'plugged') return false;
    this.waiting = true;
    return true;
  }

  stop(): JobOutcome {
    this.waiting = false;
    return 'done';
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name}: devices cannot be reloaded` };
  }

  canReload(): boolean {
    return false;
  }

  /** Units the plugged devices ask for (SYSTEMD_WANTS). */
  wants(): string[] {
    const out = new Set<string>();
    for (const f of this.data.udev.values()) for (const w of f.wants) out.add(w);
    return [...out];
  }

  properties(): Record<string, unknown> {
    const first = this.data.udev.values().next();
    return {
      SysFSPath: first.done ? '' : first.value.sysfsPath,
      Devices: [...this.data.udev.keys()],
      Wants: this.wants(),
      FoundElsewhere: this.data.foundElsewhere,
    };
  }

  /** Re-derive the state from what udev and others report; the one place it changes. */
  setState(): void {
    const next = deriveDeviceState(this.data);
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = this.now();
    this.onStateChange(this, from, next);
    if (next === 'plugged' && this.waiting) {
      this.waiting = false;
      this.onPluggedWhileWaiting(this);
    }
  }
}

/** The state the data implies: plugged when a ready device carries the name. */
export function deriveDeviceState(data: DeviceUnitData): DeviceUnitState {
  for (const f of data.udev.values()) if (f.ready) return 'plugged';
  return data.foundElsewhere ? 'tentative' : 'dead';
}

/** Whether a device becomes units at all: udev's "systemd" tag. */
export function isDeviceUnitCandidate(record: DeviceRecord): boolean {
  return record.tags.has('systemd');
}

/** Every unit name a device carries: its sysfs path first, then its node, then its symlinks. */
export function deviceUnitNames(record: DeviceRecord): string[] {
  const names: string[] = [];
  const add = (path: string): void => {
    try {
      names.push(deviceUnitName(path));
    } catch {
      // A path systemd cannot name (a '..' part, too long) gets no unit, as in systemd.
    }
  };
  add('/sys' + record.devpath);
  if (record.devname !== undefined) add(record.devname);
  for (const link of record.devlinks) add(link);
  return names;
}

function splitList(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(/\s+/).filter((s) => s.length > 0);
}

/** The properties findingFor() reads (besides the devpath). */
export const FINDING_KEYS = [
  'SYSTEMD_READY',
  'SYSTEMD_WANTS',
  'SYSTEMD_USER_WANTS',
  'ID_MODEL_FROM_DATABASE',
  'ID_MODEL',
] as const;

export function findingFor(record: DeviceRecord): DeviceFinding {
  const p = record.properties;
  const finding: DeviceFinding = {
    devpath: record.devpath,
    ready: p.get('SYSTEMD_READY') !== '0',
    wants: splitList(p.get('SYSTEMD_WANTS')),
    userWants: splitList(p.get('SYSTEMD_USER_WANTS')),
    sysfsPath: '/sys' + record.devpath,
  };
  const model = p.get('ID_MODEL_FROM_DATABASE') ?? p.get('ID_MODEL');
  if (model !== undefined) finding.model = model;
  return finding;
}

/** SYSTEMD_WANTS of a device unit; [] for any other unit. */
export function deviceWants(unit: UnitInstance): string[] {
  return unit instanceof DeviceUnit ? unit.wants() : [];
}
