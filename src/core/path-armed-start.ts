// Armed path starts: the job of a waiting PathChanged=/PathModified= unit is cloned from the
// inotify wake-up itself, before any JavaScript handles the change (issue 6: change-to-job-start
// latency no worse than inotifywait's). The plan is prepared when arming (spawn's prepare()), and
// the inotify addon makes the clone in native code right after its read, before it calls into
// JavaScript at all: read to clone ~115 µs, as long as inotifywait's read to its shell's fork,
// instead of ~40 cold functions (parsing, the watch registry, the path unit, the job queue, the
// service) that took 450-550 µs, or a JavaScript call and a plan read that took ~220 µs.
//
// It is only done where the outcome is known in advance, and it is the same outcome: an arm is a
// plan built by the process supervisor exactly as the start's spawn would build it, for a path
// unit whose trigger would start its service right away (PathUnit.armableSpec), a service whose
// start would spawn that process first with that environment (ServiceUnit.nextStartProcess), and
// a start whose transaction would be its own job alone (JobQueue.trivialStartClosure). The arm is
// dropped, synchronously, the moment anything of that may change: a change of state or job of a
// unit the answer looked at, a reload, the path unit's deferral, a re-walk of its watch, its log
// pipes or group going away. When it fires, the path unit triggers as the change would have made it,
// and the service's spawn takes the child already running instead of cloning (the supervisor
// compares command and environment). Should the start still go another way, the child nobody
// took is killed and the warning says so; that is a bug to report, never the expected path.
//
// The rest of the start (state, job, log, TRIGGER_* in status) is the ordinary one, run right
// after the clone, inside the same wake-up.
import type { Logger } from '../util/logger';
import type { NativeSpawn, PreparedLaunch, SpawnedChild } from '../native/spawn-addon';
import type { JobQueue } from './job-queue';
import type { ProcessSupervisor } from './process-supervisor';
import type { ExecCommand } from '../units/config-types';
import type { PathUnit } from '../units/path';
import type { ServiceUnit } from '../units/service';

/** What the armed starts need from the rest of the daemon. */
export interface PathArmedStartHost {
  logger: Logger;
  spawn: Pick<NativeSpawn, 'prepare'>;
  /** The resolved name of a unit (aliases). */
  resolve(name: string): string;
  /** The service of that name, when it is one. */
  service(name: string): ServiceUnit | undefined;
  trivialStartClosure: JobQueue['trivialStartClosure'];
  armedPlan: ProcessSupervisor['armedPlan'];
  holdArmedChild: ProcessSupervisor['holdArmedChild'];
  settleArmedChild: ProcessSupervisor['settleArmedChild'];
}

interface Arm {
  /** Identifies this arm to its own call. */
  token: object;
  target: string;
  /** Every unit whose change may change the answer (the path unit and the service among them). */
  closure: Set<string>;
  disarm: () => void;
  /** The clone, made by the inotify addon from its wake-up (or by fire, from a fake watch). */
  prepared: PreparedLaunch;
}

export interface ArmedStartStats {
  armed: number;
  fired: number;
  /** Fired, but the clone failed: the ordinary start ran instead. */
  spawnFailed: number;
  /** Fired, and the start did not take the child (killed). Always 0 unless there is a bug. */
  notTaken: number;
}

export class PathArmedStarts {
  private readonly units = new Map<string, PathUnit>();
  private readonly arms = new Map<string, Arm>();
  /** Why a tracked path unit has no arm, as of the last attempt (status). */
  private readonly whyNot = new Map<string, string>();
  private scheduled = false;
  private closed = false;
  readonly stats: ArmedStartStats = { armed: 0, fired: 0, spawnFailed: 0, notTaken: 0 };

  constructor(private readonly host: PathArmedStartHost) {}

  /** A path unit was built (at load or reload). */
  track(unit: PathUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) this.drop(unit.name);
    this.units.set(unit.name, unit);
    this.whyNot.delete(unit.name);
    this.schedule();
  }

  /** Whether a path unit has an armed start now, else why not (status). */
  state(name: string): { armed: true } | { armed: false; why: string } {
    if (this.arms.has(name)) return { armed: true };
    return { armed: false, why: this.whyNot.get(name) ?? 'not looked at yet' };
  }

  /**
   * A unit changed state or job; undefined: everything may have (a reload). Arms that looked at
   * it are dropped now (a wake-up later in this same poll phase must not fire them).
   */
  changed(unit: string | undefined): void {
    if (this.units.size === 0) return;
    for (const [name, arm] of this.arms) if (unit === undefined || arm.closure.has(unit)) this.drop(name);
    this.schedule();
  }

  /** A path unit's own armability may have changed (its state, deferral, watch). */
  unitArmableChanged(name: string): void {
    if (this.arms.has(name) && this.units.get(name)?.armableSpec() === undefined) this.drop(name);
    this.schedule();
  }

  /** What an armed plan of `service` refers to (its log pipes, its group) is going away. */
  planGone(service: string): void {
    for (const [name, arm] of this.arms) if (arm.target === service) this.drop(name);
  }

  close(): void {
    this.closed = true;
    for (const name of [...this.arms.keys()]) this.drop(name);
    this.units.clear();
  }

  private drop(name: string): void {
    const arm = this.arms.get(name);
    if (arm === undefined) return;
    this.arms.delete(name);
    arm.disarm();
    arm.prepared.release();
  }

  /** Arming waits for the turn to settle (the change that dropped an arm is usually a run's end). */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.closed) this.refresh();
    });
  }

  /** Arm every path unit that can be; drop arms that no longer hold. */
  refresh(): void {
    for (const [name, unit] of this.units) {
      if (this.arms.has(name)) {
        if (unit.armableSpec() === undefined) this.drop(name);
        continue;
      }
      this.tryArm(unit);
    }
  }

  private tryArm(unit: PathUnit): void {
    const no = (why: string): void => void this.whyNot.set(unit.name, why);
    const spec = unit.armableSpec();
    if (spec === undefined)
      return no('the unit is not waiting on a single PathChanged=/PathModified= path that exists');
    const target = this.host.resolve(unit.triggerName());
    const service = this.host.service(target);
    if (service === undefined) return no(`${target} is not a loaded service`);
    // host.startUnit's TRIGGER_* (PathHost.startUnit in path-units.ts).
    const next = service.nextStartProcess({ TRIGGER_UNIT: unit.name, TRIGGER_PATH: spec.cause.path });
    if (!next.ok) return no(`${target}: ${next.why}`);
    // The watch first (a directory is refused at once), then what costs more: this runs again
    // after every change while the unit waits.
    const token = {};
    let armed: { prepared: PreparedLaunch; cgroup: string | undefined; closure: Set<string> } | undefined;
    let refused: string | undefined;
    const { cmd, env } = next;
    const prepare = (): PreparedLaunch | undefined => {
      const closure = this.host.trivialStartClosure(target);
      if (closure === undefined) {
        refused = `starting ${target} needs more than its own job now`;
        return undefined;
      }
      const built = this.host.armedPlan(target, cmd, env);
      if (!built.ok) {
        refused = `${target}: ${built.why}`;
        return undefined;
      }
      try {
        armed = { prepared: this.host.spawn.prepare(built.plan), cgroup: built.cgroup, closure };
      } catch (err) {
        refused = `${target}: the plan was refused (${(err as Error).message})`;
        return undefined;
      }
      return armed.prepared;
    };
    const disarm = spec.watch.armOnChange?.(
      () => {
        const arm = this.arms.get(unit.name);
        // Only while this arm is still the unit's (a drop disarms in the addon too, so this is a
        // safety net: a child cloned for a dropped arm is killed by release()).
        if (arm?.token !== token || armed === undefined) {
          armed?.prepared.release();
          return;
        }
        this.fire(unit, target, armed.prepared, cmd, env, armed.cgroup);
      },
      // A re-walk or a close dropped it: forget it, and arm again when the turn settles.
      () => {
        const arm = this.arms.get(unit.name);
        if (arm !== undefined && arm.disarm === disarm) {
          this.arms.delete(unit.name);
          arm.prepared.release();
        }
        this.schedule();
      },
      prepare,
    );
    if (disarm === undefined || armed === undefined) {
      armed?.prepared.release();
      return no(refused ?? 'the path is not a file with a watch of its own');
    }
    const closure = armed.closure;
    closure.add(unit.name);
    closure.add(target);
    this.whyNot.delete(unit.name);
    this.arms.set(unit.name, { target, closure, disarm, token, prepared: armed.prepared });
    this.stats.armed++;
  }

  /** Inside the inotify wake-up: clone first, then the ordinary trigger, which takes the child. */
  private fire(
    unit: PathUnit,
    target: string,
    prepared: PreparedLaunch,
    cmd: ExecCommand,
    env: Record<string, string>,
    cgroup: string | undefined,
  ): void {
    this.arms.delete(unit.name);
    this.stats.fired++;
    let child: SpawnedChild;
    try {
      // Cloned by the inotify addon already (from a fake watch: here, now). The bookkeeping below
      // (the ordinary trigger and start, ~0.3-0.5 ms) waits for the job.
      child = prepared.launch({ yieldAfter: true });
    } catch (err) {
      // The ordinary start, from the change's event, clones again and reports what fails.
      this.stats.spawnFailed++;
      this.host.logger.debug(
        { unit: unit.name, err },
        'armed start: clone failed; starting the ordinary way',
      );
      this.schedule();
      return;
    }
    this.host.holdArmedChild(target, cmd, env, child, cgroup);
    try {
      unit.firedArmed();
    } finally {
      if (!this.host.settleArmedChild(target)) {
        this.stats.notTaken++;
        this.host.logger.warn(
          { unit: unit.name, pid: child.pid },
          `armed start of ${target}: the start did not take the process cloned for it; killed pid ${child.pid}`,
        );
      }
      this.schedule();
    }
  }
}
