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

/**
 * What a unit writes into the daemon's state file (src/core/daemon-state.ts): plain JSON, read
 * back by the same type's deserialize(). Unknown or malformed fields are the reader's problem:
 * it skips them with a warning.
 */
export type SerializedUnit = Record<string, unknown>;

/** Why the state is written: before a planned re-exec (fds survive), or as a crash checkpoint. */
export interface SerializeContext {
  readonly kind: 'reexec' | 'checkpoint';
  /**
   * An fd the unit wants back after the exec: listed in the state and kept open across execve
   * (FD_CLOEXEC cleared at the exec). Returns the number to store; -1 for a checkpoint (the
   * fds of a crashed process are gone with it).
   */
  carryFd(fd: number): number;
  /** Start time (field 22 of /proc/PID/stat) of a process the unit runs, to tell it from a reused pid. */
  startTimeOf(pid: number): string | undefined;
}

/** What a unit gets back, once its file is loaded in the new process. */
export interface DeserializeContext {
  /** 'reexec': same process image replaced, fds and children kept; 'crash': a new process after a kill. */
  readonly kind: 'reexec' | 'crash';
  /** An fd listed in the state and still open in this process; undefined otherwise. Owned by the caller after. */
  takeFd(fd: number): number | undefined;
  /**
   * Adopt a process of this unit: alive and the same process (pid + start time) → watched (its
   * exit comes back through onExit as for a spawned one) and true; false when it is gone.
   */
  adoptProcess(pid: number, startTime: string | undefined): boolean;
  warn(message: string): void;
}

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
  /**
   * Re-exec and crash recovery, as a pair: what to write, and how to take it back (false: the
   * entry was stale or malformed and nothing was restored). Types without them are started
   * again if they were active (timers, paths and automounts re-arm that way).
   */
  serialize?(ctx: SerializeContext): SerializedUnit | undefined;
  deserialize?(data: SerializedUnit, ctx: DeserializeContext): boolean;
  /** After every unit is restored: reconcile with what the system really is now (catch up). */
  catchup?(): void;
  /**
   * A job of this type was running when the earlier image wrote the state: true when the unit is
   * still in that job's step, and will report its end (JobHost.jobFinished) as if it had run it.
   */
  resumeJob?(type: 'start' | 'stop' | 'reload'): boolean;
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
