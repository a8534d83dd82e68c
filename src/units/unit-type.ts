// The one shape every unit is seen through. The manager, the job engine and the control layer
// talk to units only through UnitInstance; which class stands behind a name is decided once, by
// the registry in ./registry.ts, from the name's suffix. Nothing outside switches on a unit's kind.
import type { LoadedUnitFile } from './config-types';

/** systemd's generic active state, derived from each type's own sub-state. */
export type ActiveState = 'inactive' | 'activating' | 'active' | 'deactivating' | 'reloading' | 'failed';

/** Whether a unit's configuration was found and read. Device units synthesised from udev are 'loaded'. */
export type LoadState = 'loaded' | 'not-found' | 'bad-setting' | 'error' | 'masked';

/** How a job on a unit ended, as the job engine understands it. */
export type JobEnd = 'done' | 'failed' | 'timeout' | 'canceled' | 'skipped' | 'assert';

/** What start/stop/reload answer right away: finished, finishing later (the unit calls back), or refused. */
export type JobOutcome = 'done' | 'pending' | { failed: JobEnd; reason: string };

export interface UnitInstance {
  readonly name: string;
  /** File suffix including the dot: '.service'. */
  readonly suffix: string;
  readonly load: LoadState;
  /** Wall-clock ms of the last state change. */
  readonly since: number;
  /** The parsed unit file, when there is one (device units from udev have none). */
  readonly file: LoadedUnitFile | undefined;
  activeState(): ActiveState;
  /** The type's own state: 'running', 'plugged', 'exited', ... */
  subState(): string;
  description(): string;
  start(): JobOutcome;
  /** `restart`: this stop is the first half of a restart (state meant to survive it is kept). */
  stop(options?: { restart?: boolean }): JobOutcome;
  reload(): JobOutcome;
  canReload(): boolean;
  /** Type-specific properties for `show`. */
  properties(): Record<string, unknown>;
  /** Type-specific lines for `status` ("Listen: ...", "Accepted: ..."), already formatted. */
  statusLines?(): string[];
  /** Routine transitions are logged at debug, not info (Accept=yes instances: one per connection). */
  readonly logQuietly?: boolean;
  /** Left as it is when the daemon shuts down (mounts outlive the supervisor, as in the kernel). */
  readonly keepOnShutdown?: boolean;
}

/** The row `list-units` prints for one unit. */
export interface UnitSummary {
  name: string;
  load: LoadState;
  active: ActiveState;
  sub: string;
  description: string;
}

export function summarizeUnit(unit: UnitInstance): UnitSummary {
  return {
    name: unit.name,
    load: unit.load,
    active: unit.activeState(),
    sub: unit.subState(),
    description: unit.description(),
  };
}
