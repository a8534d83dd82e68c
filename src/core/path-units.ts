// Path units in the daemon: the one shared watch registry (one inotify instance for every path
// unit, opened on first use), a PathHost per unit, and routing of the triggered units'
// transitions back to the path units that started them. UnitSystem owns one of these.
import type { Logger } from '../util/logger';
import type { NativeInotify } from '../native/inotify-addon';
import { loadInotifyNative } from '../native/inotify-addon';
import { InotifyPathWatches, type PathWatchSource } from '../events/path-watches';
import { checkPathSpec, makeWatchedDirectory } from '../units/path-checks';
import { conditionHolds } from '../units/conditions';
import type { PathHost, PathUnit, TriggeredUnitView } from '../units/path';
import type { UnitEngine } from './unit-engine';
import type { Manager } from './manager';

export interface PathUnitsOptions {
  logger: Logger;
  manager: Manager;
  engine: () => UnitEngine;
  /** The inotify layer (default: the triggerd_inotify addon, loaded when a path unit starts). */
  inotify?: NativeInotify;
  /** Every transition goes to the engine through the unit system. */
  stateChanged(unit: PathUnit, from: string, to: string): void;
}

export class PathUnits {
  private readonly units = new Map<string, PathUnit>();
  private registry: InotifyPathWatches | undefined;

  constructor(private readonly options: PathUnitsOptions) {}

  /** The shared inotify watch registry (created on first use). */
  watches(): InotifyPathWatches {
    if (this.registry === undefined) {
      this.registry = new InotifyPathWatches({
        native: this.options.inotify ?? loadInotifyNative(),
        logger: this.options.logger.child({ component: 'path-watches' }),
      });
    }
    return this.registry;
  }

  host(name: string, unit: () => PathUnit | undefined): PathHost {
    const log = this.options.logger.child({ unit: name });
    const { manager } = this.options;
    const engine = this.options.engine;
    const source = (): PathWatchSource => this.watches();
    return {
      // Every kind systemd has goes to inotify; fanotify's [X-Triggerd] kinds plug in here.
      sourceFor: () => source(),
      check: (spec) => checkPathSpec(spec),
      conditionHolds: (c) => conditionHolds(c, { warn: (m) => log.warn(m) }),
      makeDirectory: (p, mode) => makeWatchedDirectory(p, mode),
      unitStatus: (n): TriggeredUnitView | undefined => {
        const e = engine();
        const resolved = e.resolve(n);
        const u = manager.getUnit(resolved);
        if (u === undefined) {
          const f = e.file(resolved);
          if (f === undefined) return undefined;
          return { active: 'inactive', load: f.loadState, hasJob: false };
        }
        const job = e.queue.jobFor(u.name);
        return {
          active: u.activeState(),
          load: u.load,
          // A start or restart on its way; a stop job means the unit is going away.
          hasJob: job !== undefined && job.type !== 'stop',
          result: (u as { result?: unknown }).result as string | undefined,
        };
      },
      startUnit: (n, env) => {
        const e = engine();
        const r = e.enqueue(n, 'start', 'replace', false);
        if (!r.ok) return { ok: false, reason: r.error.message };
        // TRIGGER_UNIT=/TRIGGER_PATH= for the processes this start runs (systemd.exec(5)).
        const target = manager.getUnit(e.resolve(n)) as
          { activationEnv?: Record<string, string> } | undefined;
        if (target !== undefined && 'activationEnv' in target) target.activationEnv = env;
        const done = e.queue.whenFinished(r.jobId) ?? Promise.resolve('done');
        void done.then(
          () => {
            if (target !== undefined && target.activationEnv === env) target.activationEnv = undefined;
          },
          () => undefined,
        );
        return { ok: true, done };
      },
      setTimer: (ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      now: () => performance.now(),
      stateChanged: (from, to) => {
        const u = unit();
        if (u !== undefined) this.options.stateChanged(u, from, to);
      },
      log,
    };
  }

  /** A path unit was built (at load or reload): keep the status of the one it replaces. */
  created(unit: PathUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) unit.carryOver(previous);
    this.units.set(unit.name, unit);
  }

  /** A unit changed state: the path units that trigger it look again. */
  unitChanged(name: string): void {
    for (const p of this.units.values()) if (p.triggerName() === name) p.onUnitChanged(name);
  }

  close(): void {
    this.registry?.close();
    this.registry = undefined;
  }
}
