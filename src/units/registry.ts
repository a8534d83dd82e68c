// The unit type registry: which class stands behind a unit name, decided by its suffix. The only
// place that knows the list of unit types; everything else goes through UnitInstance.
import type { LoadedUnitFile } from './config-types';
import type { UnitInstance } from './unit-type';
import type { ServiceHost } from './service';
import { ServiceUnit } from './service';
import { TargetUnit } from './target';
import { SocketUnit, type SocketHost } from './socket';
import { AutomountUnit, type AutomountHost } from './automount';
import { PathUnit, type PathHost } from './path';
import { TimerUnit, type TimerHost } from './timer';
import { MountUnit, type MountHost } from './mount';

/** What the types need from the daemon to build an instance. */
export interface UnitTypeDeps {
  /** A ServiceHost for the named service (process side, job callbacks). */
  serviceHost(name: string): ServiceHost;
  /** Called after a service is built (the supervisor routes its exits and notify messages). */
  serviceCreated(unit: ServiceUnit): void;
  /** A SocketHost for the named socket unit (native sockets, control processes, jobs). */
  socketHost(name: string, unit: () => SocketUnit | undefined): SocketHost;
  /** Called after a socket unit is built (its control processes' exits are routed to it). */
  socketCreated(unit: SocketUnit): void;
  /** A PathHost for the named path unit (the shared watch registry, jobs, timers). */
  pathHost(name: string, unit: () => PathUnit | undefined): PathHost;
  /** Called after a path unit is built (it hears its triggered unit's transitions). */
  pathCreated(unit: PathUnit): void;
  /** An AutomountHost for the named automount unit (autofs, the mount starter, timers). */
  automountHost(name: string, unit: () => AutomountUnit | undefined): AutomountHost;
  /** Called after an automount unit is built (it hears its mount unit's transitions). */
  automountCreated(unit: AutomountUnit): void;
  /** A TimerHost for the named timer unit (clocks, one wake-up, jobs, stamp files). */
  timerHost(name: string, unit: () => TimerUnit | undefined): TimerHost;
  /** Called after a timer unit is built (it hears its triggered unit's transitions). */
  timerCreated(unit: TimerUnit): void;
  /** A MountHost for the named mount unit (mount(8)/umount(8), mountinfo, jobs). */
  mountHost(name: string, unit: () => MountUnit | undefined): MountHost;
  /** Called after a mount unit is built (it gets the kernel's view of its Where=). */
  mountCreated(unit: MountUnit): void;
  /** Every non-service type reports transitions here. */
  stateChanged(unit: UnitInstance, from: string, to: string): void;
}

type Factory = (file: LoadedUnitFile, deps: UnitTypeDeps) => UnitInstance;

const TYPES: Readonly<Record<string, Factory>> = {
  '.service': (file, deps) => {
    const unit = new ServiceUnit(file.name, file, deps.serviceHost(file.name));
    deps.serviceCreated(unit);
    return unit;
  },
  '.socket': (file, deps) => {
    // The host reaches back to its unit (its exec context, its transitions) once it exists.
    const ref: { unit?: SocketUnit } = {};
    const unit = new SocketUnit(
      file.name,
      file,
      deps.socketHost(file.name, () => ref.unit),
    );
    ref.unit = unit;
    deps.socketCreated(unit);
    return unit;
  },
  '.path': (file, deps) => {
    const ref: { unit?: PathUnit } = {};
    const unit = new PathUnit(
      file.name,
      file,
      deps.pathHost(file.name, () => ref.unit),
    );
    ref.unit = unit;
    deps.pathCreated(unit);
    return unit;
  },
  '.automount': (file, deps) => {
    const ref: { unit?: AutomountUnit } = {};
    const unit = new AutomountUnit(
      file.name,
      file,
      deps.automountHost(file.name, () => ref.unit),
    );
    ref.unit = unit;
    deps.automountCreated(unit);
    return unit;
  },
  '.mount': (file, deps) => {
    const ref: { unit?: MountUnit } = {};
    const unit = new MountUnit(
      file.name,
      file,
      file.mount?.where ?? '',
      deps.mountHost(file.name, () => ref.unit),
    );
    ref.unit = unit;
    deps.mountCreated(unit);
    return unit;
  },
  '.timer': (file, deps) => {
    const ref: { unit?: TimerUnit } = {};
    const unit = new TimerUnit(
      file.name,
      file,
      deps.timerHost(file.name, () => ref.unit),
    );
    ref.unit = unit;
    deps.timerCreated(unit);
    return unit;
  },
  '.target': (file, deps) => {
    const unit: TargetUnit = new TargetUnit(file.name, file, (from, to) => deps.stateChanged(unit, from, to));
    return unit;
  },
};

/** Suffixes whose units this daemon runs (others are loaded and listed by later issues' types). */
export const SUPPORTED_SUFFIXES = Object.keys(TYPES);

export function suffixOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot);
}

/** A unit instance for a loaded file, or undefined when its type is not implemented yet. */
export function createUnit(file: LoadedUnitFile, deps: UnitTypeDeps): UnitInstance | undefined {
  const factory = TYPES[suffixOf(file.name)];
  return factory === undefined ? undefined : factory(file, deps);
}
