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
// The rest of the start (state, job, log, TRIGGER_* in status) is the ordinary one. It waits
// 2 ms (TRIGGERD_ARMED_BOOKKEEPING_DELAY_MS), and the source's events with it, so that the job's
// first steps have the CPU to themselves: where the daemon and the job share one, that
// bookkeeping held the job's first command back by ~0.5 ms. Whatever would see the units before
// then records the start first (flush(): a job request, a control request, an exit or notify
// message, another path event, a reload, a state file), so the wait is never visible.
import type { Logger } from '../util/logger';
import type { NativeSpawn, PreparedLaunch, SpawnedChild } from '../native/spawn-addon';
import type { JobQueue } from './job-queue';
import type { ProcessSupervisor } from './process-supervisor';
import type { ExecCommand } from '../units/config-types';
import type { ExecPlan } from '../exec/exec-plan';
import type { PathUnit } from '../units/path';
import type { ServiceUnit } from '../units/service';
import type { SpecWatch } from '../events/path-watches';

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
  /** Arms park their job (prepare()'s `park`); false or absent: they clone at the change. */
  park?: boolean;
  /** A child parked for an arm (its exit before a start takes it concerns no unit). */
  holdParkedChild?: ProcessSupervisor['holdParkedChild'];
  /** Overrides TRIGGERD_ARMED_BOOKKEEPING_DELAY_MS (tests). */
  bookkeepingDelayMs?: number;
}

/**
 * At most this many jobs are parked at once (each a process of its own, with a 128 KB stack
 * mapped in the daemon, of which it touches a few pages); further arms clone at the change.
 */
export const MAX_PARKED_JOBS = 32;

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
  /** Arms whose job was parked (spawned ahead, waiting in triggerd_park). */
  parked: number;
}

/** A fired start whose bookkeeping waits (PathArmedStarts.fire). */
interface PendingStart {
  unit: PathUnit;
  target: string;
  child: SpawnedChild;
  timer: NodeJS.Timeout;
  /** Lets the held-back events go (SpecWatch.holdEvents). */
  release: (() => void) | undefined;
}

/**
 * How long a fired start's bookkeeping waits, in ms (TRIGGERD_ARMED_BOOKKEEPING_DELAY_MS; 0: none).
 * The job's first steps (its shell's exec, fork and exec of its first command: ~1.5 ms of CPU
 * for `sh -c 'date ...'`) then have the CPU to themselves.
 */
export function bookkeepingDelayMs(env: string | undefined): number {
  const n = Number(env);
  return env !== undefined && env !== '' && Number.isFinite(n) && n >= 0 ? Math.min(n, 60_000) : 2;
}

export class PathArmedStarts {
  private readonly units = new Map<string, PathUnit>();
  private readonly arms = new Map<string, Arm>();
  /** Why a tracked path unit has no arm, as of the last attempt (status). */
  private readonly whyNot = new Map<string, string>();
  /** Fired starts whose bookkeeping waits for the job to have the CPU first (by path unit). */
  private readonly pending = new Map<string, PendingStart>();
  private scheduled = false;
  private closed = false;
  readonly stats: ArmedStartStats = { armed: 0, fired: 0, spawnFailed: 0, notTaken: 0, parked: 0 };
  /** Path units whose jobs are no longer parked, and why (a parked job ended before its change). */
  private readonly noPark = new Map<string, string>();

  private readonly delayMs: number;

  constructor(private readonly host: PathArmedStartHost) {
    this.delayMs =
      host.bookkeepingDelayMs ?? bookkeepingDelayMs(process.env.TRIGGERD_ARMED_BOOKKEEPING_DELAY_MS);
  }

  /**
   * Records every fired start whose bookkeeping still waits, now. Called before anything that
   * would see or change those units (a job request, a control request, an exit, a notify message,
   * another change of the path, a reload, a state file): the wait is invisible to all of them.
   */
  flush(): void {
    if (this.pending.size === 0) return;
    for (const name of [...this.pending.keys()]) this.complete(name);
  }

  /** Whether a fired start's bookkeeping still waits (tests, status). */
  get waiting(): number {
    return this.pending.size;
  }

  /** A path unit was built (at load or reload). */
  track(unit: PathUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) {
      this.drop(unit.name);
      // A reloaded unit may park again.
      this.noPark.delete(unit.name);
    }
    this.units.set(unit.name, unit);
    this.whyNot.delete(unit.name);
    this.schedule();
  }

  /** Whether a path unit has an armed start now (and its parked job's pid, or why none), else why not (status). */
  state(
    name: string,
  ): { armed: true; parkedPid: number; notParked?: string } | { armed: false; why: string } {
    const arm = this.arms.get(name);
    if (arm !== undefined) {
      const parkedPid = arm.prepared.parkedPid;
      return parkedPid > 0
        ? { armed: true, parkedPid }
        : { armed: true, parkedPid, notParked: this.whyNotParked(name) };
    }
    return { armed: false, why: this.whyNot.get(name) ?? 'not looked at yet' };
  }

  private whyNotParked(name: string): string {
    if (this.host.park !== true) return 'parking is off (TRIGGERD_ARMED_PARK=0)';
    return this.noPark.get(name) ?? `${MAX_PARKED_JOBS} jobs are parked already`;
  }

  /**
   * A parked job's process exited before its change came (killed by someone, say): its arm is
   * dropped, and that path unit's arms clone at the change from now on, so a job that cannot stay
   * parked is never spawned again and again.
   */
  parkedChildExited(pid: number): void {
    for (const [name, arm] of this.arms) {
      if (arm.prepared.parkedPid !== pid || arm.prepared.launched) continue;
      const why = `its parked job (pid ${pid}) ended before the change`;
      this.noPark.set(name, why);
      this.host.logger.warn(
        { unit: name, pid },
        `armed start: ${why}; it is cloned at the change from now on`,
      );
      this.drop(name);
      this.schedule();
      return;
    }
  }

  /** Whether `unit`'s next job is parked (else it is cloned at the change). */
  private parks(unit: string, service: ServiceUnit): boolean {
    if (this.host.park !== true || this.noPark.has(unit)) return false;
    // Type=exec's start is over once its program was exec'd: that exec must be the start's own.
    if (service.config.type === 'exec') return false;
    let parked = 0;
    for (const arm of this.arms.values()) if (arm.prepared.parkedPid > 0) parked++;
    return parked < MAX_PARKED_JOBS;
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
    this.flush();
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
    // Until a fired start is recorded, what an arm would look at is not what it will be.
    if (this.pending.has(unit.name)) return no('its last armed start is still being recorded');
    if (this.pending.size > 0) return no('another armed start is still being recorded');
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
        armed = {
          prepared: this.prepareLaunch(unit.name, service, built.plan),
          cgroup: built.cgroup,
          closure,
        };
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
        this.fire(unit, target, armed.prepared, cmd, env, armed.cgroup, spec.watch);
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

  /**
   * The arm's launch: its job parked now (cloned with the whole plan applied, waiting for the
   * change's one write to exec) where it can be, else a plan cloned at the change. A job that
   * cannot be parked (a missing WorkingDirectory=, say) is cloned at the change, where the
   * ordinary start reports its failure as it always does.
   */
  private prepareLaunch(unit: string, service: ServiceUnit, plan: ExecPlan): PreparedLaunch {
    if (this.parks(unit, service)) {
      try {
        const t0 = performance.now();
        const prepared = this.host.spawn.prepare(plan, { park: true });
        this.host.holdParkedChild?.(prepared.parkedPid);
        this.stats.parked++;
        const ms = performance.now() - t0;
        // The event loop waits while the child sets itself up (as for any clone of ours).
        const log =
          ms > 50
            ? this.host.logger.warn.bind(this.host.logger)
            : this.host.logger.debug.bind(this.host.logger);
        log({ unit, pid: prepared.parkedPid, ms: Math.round(ms * 10) / 10 }, 'armed start: job parked');
        return prepared;
      } catch (err) {
        if (err instanceof TypeError) throw err;
        this.noPark.set(unit, `its job could not be parked (${(err as Error).message})`);
      }
    }
    return this.host.spawn.prepare(plan);
  }

  /** Inside the inotify wake-up: clone first, then the ordinary trigger, which takes the child. */
  private fire(
    unit: PathUnit,
    target: string,
    prepared: PreparedLaunch,
    cmd: ExecCommand,
    env: Record<string, string>,
    cgroup: string | undefined,
    watch: SpecWatch,
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
      this.host.logger.info(
        { unit: unit.name, err },
        'armed start: the launch failed; starting the ordinary way',
      );
      this.schedule();
      return;
    }
    this.host.holdArmedChild(target, cmd, env, child, cgroup);
    if (this.delayMs > 0) {
      // What recording the start would change drops the arms that looked at it, now: another
      // path unit's arm on the same file for the same service must not fire in this wake-up.
      for (const [name, arm] of this.arms)
        if (arm.closure.has(target) || arm.closure.has(unit.name)) this.drop(name);
      // The job goes first: on a CPU it shares with the daemon, the bookkeeping below held its
      // first command back by ~0.5 ms (bench/path-latency's perf trace: the shell's fork to its
      // child's exec took 650 µs, against 110 µs under inotifywait). Anything that would see the
      // units before the timer records it now (flush()).
      unit.armedFiredLater();
      // Its change (and whatever else came) is routed after the record, not in this wake-up.
      const release = watch.holdEvents?.();
      const timer = setTimeout(() => this.complete(unit.name), this.delayMs);
      this.pending.set(unit.name, { unit, target, child, timer, release });
      return;
    }
    this.record(unit, target, child);
  }

  private complete(name: string): void {
    const p = this.pending.get(name);
    if (p === undefined) return;
    this.pending.delete(name);
    clearTimeout(p.timer);
    try {
      this.record(p.unit, p.target, p.child);
    } finally {
      p.release?.();
    }
  }

  /** The ordinary trigger and start, which take the child; a child they do not take is killed. */
  private record(unit: PathUnit, target: string, child: SpawnedChild): void {
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
