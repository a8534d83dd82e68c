// Path units in the daemon: the shared watch sources, each opened on first use (one inotify
// instance for systemd's kinds; one fanotify group for [X-Triggerd] PathChangedRecursive=, with
// its inotify tree-walk fallback; one fanotify permission group for PathAccessed=), a PathHost per
// unit, and routing of the triggered units' transitions back to the path units that started them.
// UnitSystem owns one of these.
//
// fanotify needs root (CAP_SYS_ADMIN): as an ordinary user, or when the addon does not load,
// PathChangedRecursive= falls back to inotify and PathAccessed= fails the unit's start with EPERM
// and the reason (status shows it).
import fs = require('node:fs');
import type { Logger } from '../util/logger';
import type { NativeInotify } from '../native/inotify-addon';
import { loadInotifyNative } from '../native/inotify-addon';
import { loadFanotifyNative, type NativeFanotify } from '../native/fanotify-addon';
import { InotifyPathWatches, type PathWatchSource } from '../events/path-watches';
import { PATH_CHANGED_RECURSIVE, RecursivePathWatches } from '../events/path-recursive';
import { HeldAccessWatches, PATH_ACCESSED, descendsFrom } from '../events/path-held-access';
import { checkPathSpec, makeWatchedDirectory } from '../units/path-checks';
import { conditionHolds } from '../units/conditions';
import type { PathHost, PathUnit, TriggeredUnitView } from '../units/path';
import type { UnitEngine } from './unit-engine';
import type { Manager } from './manager';
import type { PathArmedStarts } from './path-armed-start';

export interface PathUnitsOptions {
  logger: Logger;
  manager: Manager;
  engine: () => UnitEngine;
  /** The inotify layer (default: the triggerd_inotify addon, loaded when a path unit starts). */
  inotify?: NativeInotify;
  /**
   * The fanotify layer (default: the triggerd_fanotify addon when running as root); null: none
   * (PathChangedRecursive= uses inotify, PathAccessed= cannot start).
   */
  fanotify?: NativeFanotify | null;
  /** The unit a process belongs to (the process supervisor's answer: spawned pids, cgroups). */
  unitOfPid?: (pid: number) => string | undefined;
  /** Every transition goes to the engine through the unit system. */
  stateChanged(unit: PathUnit, from: string, to: string): void;
  /** Jobs started from the inotify wake-up itself (src/core/path-armed-start.ts); none without. */
  armedStarts?: PathArmedStarts;
}

export class PathUnits {
  private readonly units = new Map<string, PathUnit>();
  private registry: InotifyPathWatches | undefined;
  private recursiveSource: RecursivePathWatches | undefined;
  private heldSource: HeldAccessWatches | undefined;
  private fanotifyNative: NativeFanotify | null | undefined;
  private fanotifyWhy = '';

  constructor(private readonly options: PathUnitsOptions) {}

  /** The fanotify addon, or null (with the reason in fanotifyWhy) when it cannot be used. */
  private fanotify(): NativeFanotify | null {
    if (this.fanotifyNative !== undefined) return this.fanotifyNative;
    if (this.options.fanotify !== undefined) {
      this.fanotifyNative = this.options.fanotify;
      this.fanotifyWhy = 'fanotify disabled';
    } else if (process.getuid?.() !== 0) {
      this.fanotifyNative = null;
      this.fanotifyWhy = `fanotify needs root (running as uid ${process.getuid?.()})`;
    } else {
      try {
        this.fanotifyNative = loadFanotifyNative();
      } catch (err) {
        this.fanotifyNative = null;
        this.fanotifyWhy = `the fanotify addon did not load: ${(err as Error).message}`;
        this.options.logger.warn({ component: 'path-watches' }, this.fanotifyWhy);
      }
    }
    return this.fanotifyNative;
  }

  /** PathChangedRecursive=: one fanotify filesystem mark per file system, or inotify tree walks. */
  recursiveWatches(): RecursivePathWatches {
    if (this.recursiveSource === undefined) {
      const log = this.options.logger.child({ component: 'path-recursive' });
      this.recursiveSource = new RecursivePathWatches({
        fanotify: this.fanotify() ?? undefined,
        inotify: this.options.inotify ?? loadInotifyNative(),
        warn: (message, fields) => log.warn(fields, message),
      });
    }
    return this.recursiveSource;
  }

  /** PathAccessed=: one fanotify permission group (or a source that explains why there is none). */
  heldAccessWatches(): PathWatchSource {
    if (this.heldSource !== undefined) return this.heldSource;
    const fanotify = this.fanotify();
    if (fanotify === null) {
      const why = this.fanotifyWhy;
      return {
        name: 'fanotify-held-access',
        watch: (spec) => {
          throw Object.assign(new Error(`${spec.kind}= needs fanotify permission events: ${why}`), {
            code: 'EPERM',
          });
        },
      };
    }
    const log = this.options.logger.child({ component: 'path-held-access' });
    this.heldSource = new HeldAccessWatches({
      fanotify,
      isJobProcess: (pid) => this.isJobProcess(pid),
      warn: (message, fields) => log.warn(fields, message),
    });
    return this.heldSource;
  }

  /**
   * Whether `pid` belongs to a unit that a PathAccessed= unit triggers: its opens are never held
   * (the job must be able to write the file its trigger waits for). The supervisor's answer
   * (spawned pids, the unit's cgroup), else the unit's cgroup from /proc/PID/cgroup, else
   * descent from the unit's known main and control processes.
   */
  private isJobProcess(pid: number): boolean {
    const names = new Set<string>();
    const e = this.options.engine();
    for (const p of this.units.values()) {
      if (p.file.path?.specs.some((s) => s.kind === PATH_ACCESSED) === true)
        names.add(e.resolve(p.triggerName()));
    }
    if (names.size === 0) return false;
    const owner = this.options.unitOfPid?.(pid) ?? unitOfCgroup(pid);
    if (owner !== undefined) return names.has(owner);
    const known = new Set<number>();
    for (const n of names) {
      const u = this.options.manager.getUnit(n) as { mainPid?: number; controlPid?: number } | undefined;
      if (u?.mainPid !== undefined) known.add(u.mainPid);
      if (u?.controlPid !== undefined) known.add(u.controlPid);
    }
    return known.size > 0 && descendsFrom(pid, known);
  }

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
    return {
      // Every kind systemd has goes to inotify; [X-Triggerd]'s to their fanotify sources.
      sourceFor: (spec) =>
        spec.kind === PATH_CHANGED_RECURSIVE
          ? this.recursiveWatches()
          : spec.kind === PATH_ACCESSED
            ? this.heldAccessWatches()
            : this.watches(),
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
        // The job runs now, its environment set: the trigger's latency is the point of the unit.
        e.queue.runPromptly();
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
      armableChanged: () => this.options.armedStarts?.unitArmableChanged(name),
      armedState: () => this.options.armedStarts?.state(name),
      settleArmed: () => this.options.armedStarts?.flush(),
      log,
    };
  }

  /** A path unit was built (at load or reload): keep the status of the one it replaces. */
  created(unit: PathUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) unit.carryOver(previous);
    this.units.set(unit.name, unit);
    this.options.armedStarts?.track(unit);
  }

  /** A unit changed state: the path units that trigger it look again. */
  unitChanged(name: string): void {
    for (const p of this.units.values()) if (p.triggerName() === name) p.onUnitChanged(name);
  }

  close(): void {
    this.options.armedStarts?.close();
    this.registry?.close();
    this.registry = undefined;
    this.recursiveSource?.close();
    this.recursiveSource = undefined;
    // Closing the permission group allows every opener still waiting.
    this.heldSource?.close();
    this.heldSource = undefined;
  }
}

/** The triggerd unit whose cgroup holds `pid` (`…/triggerd.slice/NAME`), from /proc/PID/cgroup. */
function unitOfCgroup(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'latin1');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return undefined;
  const parts = line.slice(3).split('/');
  const i = parts.indexOf('triggerd.slice');
  return i >= 0 && i + 1 < parts.length ? parts[i + 1] : undefined;
}
