// The unit engine: loaded unit files become unit instances (through the registry), their
// dependencies a graph, and start/stop/reload requests jobs in the queue. Unit types report
// their transitions here; the engine forwards them to the job queue (which decides what else
// must happen) and to the manager (which logs and lists).
import type { Logger } from '../util/logger';
import type { LoadedUnitFile } from '../units/config-types';
import type { ActiveState, JobEnd, UnitInstance } from '../units/unit-type';
import { DependencyGraph, type DependencyEdge, type UnitDependencyRecord } from './dependency-graph';
import { JobQueue, type EnqueueResult, type JobClock, type RunOutcome, type Scheduler } from './job-queue';
import type { JobRequest, UnitView } from './transaction';
import type { JobResult, JobType } from './job-types';
import type { Manager } from './manager';
import { deviceWants, type DeviceUnit } from '../units/device';
import { parseUnitName } from '../units/specifiers';
import { conditionHolds } from '../units/conditions';
import type { ConditionSpec } from '../units/config-types';

/**
 * Unit types whose start does not test Condition*=/Assert*= itself (services and paths do):
 * systemd tests them for every unit before its type's start, so the engine does it for these.
 */
const CONDITIONS_CHECKED_HERE = ['.socket', '.timer', '.mount', '.automount'];

/** Instances of templates loaded because something asked for them, at most (a runaway guard). */
const MAX_ON_DEMAND_INSTANCES = 10_000;

/** Where unit files come from (the loader), seen from the engine. */
export interface UnitSource {
  /** Every unit name the unit path defines (files and aliases), for loading at start and reload. */
  unitNames(): string[];
  load(name: string): LoadedUnitFile;
  /** Edges from .wants/.requires/.upholds directories (what `enable` made). */
  installEdges(): DependencyEdge[];
}

/** Builds a unit instance for a loaded file; undefined for types this daemon does not run yet. */
export type UnitFactory = (file: LoadedUnitFile, engine: UnitEngine) => UnitInstance | undefined;

export interface UnitEngineOptions {
  manager: Manager;
  source: UnitSource;
  create: UnitFactory;
  logger: Logger;
  scheduler?: Scheduler;
  clock?: JobClock;
  /**
   * A unit changed state, or a job of it was installed, merged, run or finished; undefined: the
   * unit files were (re)loaded, anything may have changed. (Armed path starts listen.)
   */
  onChange?: (unit: string | undefined) => void;
}

const JOB_END_RESULT: Record<JobEnd, JobResult> = {
  done: 'done',
  failed: 'failed',
  timeout: 'timeout',
  canceled: 'canceled',
  skipped: 'skipped',
  assert: 'assert',
};

export class UnitEngine {
  readonly queue: JobQueue;
  private graph: DependencyGraph = DependencyGraph.empty();
  private readonly files = new Map<string, LoadedUnitFile>();
  /** Last active state reported per unit, so the queue hears from→to. */
  private readonly lastActive = new Map<string, ActiveState>();
  /** The job a unit's pending step belongs to. */
  private readonly runningJob = new Map<string, number>();
  /** Template instances (foo@x.service) loaded on demand: by a job or a dependency, as systemd does. */
  private readonly onDemand = new Set<string>();
  private readonly logger: Logger;

  constructor(private readonly options: UnitEngineOptions) {
    this.logger = options.logger;
    this.queue = new JobQueue({
      graph: this.graph,
      units: (name) => this.view(name),
      runner: {
        start: (unit, job) => this.run(unit, job.id, START_STEP),
        stop: (unit, job) => this.run(unit, job.id, (u) => u.stop({ restart: job.type === 'restart' })),
        reload: (unit, job) => this.run(unit, job.id, (u) => u.reload()),
      },
      scheduler: options.scheduler,
      clock: options.clock,
      onEvent: (e) => {
        if (e.kind !== 'auto' && e.kind !== 'runner-error') this.options.onChange?.(e.job.unit);
        if (e.kind === 'finished' && e.result !== 'done') {
          // A job replaced by another (a stop replacing a start) is routine, not a warning.
          this.logger[e.result === 'canceled' ? 'info' : 'warn'](
            { unit: e.job.unit, job: e.job.id, result: e.result },
            `job ${e.job.type} ${e.job.unit} finished: ${e.result}${e.reason ? ` (${e.reason})` : ''}`,
          );
        } else if (e.kind === 'runner-error') {
          this.logger.error(
            { unit: e.job.unit, job: e.job.id, err: e.error },
            'unit failed to run a job step',
          );
        } else if (e.kind === 'auto' && !e.result.ok) {
          this.logger.warn({ unit: e.request.unit, by: e.by, reason: e.reason }, e.result.error.message);
        }
      },
    });
  }

  /** Load every unit file; on reload, existing units keep their runtime state and take the new file. */
  loadAll(): { loaded: number; errors: number } {
    const { manager, source } = this.options;
    const seen = new Set<string>();
    let errors = 0;
    const names = [...source.unitNames(), ...this.onDemand];
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      if (seen.has(name)) continue;
      const file = source.load(name);
      if (file.name !== name) continue; // an alias: its target is loaded under its own name
      if (this.onDemand.has(name) && file.loadState === 'not-found') {
        this.onDemand.delete(name); // its template is gone
        continue;
      }
      seen.add(name);
      errors += this.install(file);
      // Instances the loaded units name (Wants=foo@x.service, ...) are loaded with them.
      for (const dep of this.instancesNamedBy(file)) names.push(dep);
    }
    for (const name of [...this.files.keys()]) {
      if (!seen.has(name)) {
        this.files.delete(name);
        const u = manager.getUnit(name);
        if (u !== undefined && u.file !== undefined && isReplaceable(u)) manager.removeUnit(name);
      }
    }
    this.rebuildGraph();
    this.options.onChange?.(undefined);
    return { loaded: seen.size, errors };
  }

  /** Logs a loaded file's problems and (re)places its unit; returns its error count. */
  private install(file: LoadedUnitFile): number {
    const { manager } = this.options;
    const name = file.name;
    let errors = 0;
    for (const d of file.diagnostics) {
      const where = d.source ? `${d.source.file}:${d.source.line}: ` : '';
      this.logger[d.severity === 'error' ? 'error' : 'warn'](
        { unit: name, code: d.code },
        `${where}${d.message}`,
      );
      if (d.severity === 'error') errors++;
    }
    this.files.set(name, file);
    const existing = manager.getUnit(name);
    if (existing !== undefined && existing.file !== undefined && isReplaceable(existing)) {
      manager.removeUnit(name);
    } else if (existing !== undefined && existing.file !== undefined) {
      // Running: keep the instance; the new file applies from its next start.
      (existing as { file: LoadedUnitFile }).file = file;
      return errors;
    }
    const unit = this.options.create(file, this);
    if (unit !== undefined) manager.addUnit(unit);
    return errors;
  }

  /** The template instances a file's dependencies name that are not loaded yet. */
  private instancesNamedBy(file: LoadedUnitFile): string[] {
    const out: string[] = [];
    for (const list of Object.values(file.unit.dependencies)) {
      for (const dep of list) {
        if (this.files.has(dep) || this.onDemand.has(dep)) continue;
        if (parseUnitName(dep)?.kind !== 'instance' || this.onDemand.size >= MAX_ON_DEMAND_INSTANCES)
          continue;
        this.onDemand.add(dep);
        out.push(dep);
      }
    }
    return out;
  }

  /**
   * A template instance nobody has named yet (`triggerctl start foo@x.service`, a timer's Unit=):
   * loaded now from its template, with the instances it names in turn. False when there is no
   * such template.
   */
  private loadOnDemand(name: string): boolean {
    if (this.files.has(name) || this.options.manager.getUnit(name) !== undefined) return true;
    if (parseUnitName(name)?.kind !== 'instance' || this.onDemand.size >= MAX_ON_DEMAND_INSTANCES)
      return false;
    const file = this.options.source.load(name);
    if (file.loadState === 'not-found' || file.name !== name) return false;
    this.onDemand.add(name);
    const pending = [file];
    for (let f = pending.pop(); f !== undefined; f = pending.pop()) {
      this.install(f);
      for (const dep of this.instancesNamedBy(f)) {
        const next = this.options.source.load(dep);
        if (next.loadState === 'not-found' || next.name !== dep) this.onDemand.delete(dep);
        else pending.push(next);
      }
    }
    this.rebuildGraph();
    return true;
  }

  rebuildGraph(deviceWants: DependencyEdge[] = this.deviceEdges()): void {
    const records: UnitDependencyRecord[] = [];
    for (const file of this.files.values()) {
      records.push({ name: file.name, aliases: file.aliases, dependencies: file.unit.dependencies });
    }
    this.graph = DependencyGraph.build(records, [...this.options.source.installEdges(), ...deviceWants]);
    for (const d of this.graph.diagnostics) this.logger.warn({ unit: d.unit, code: d.code }, d.message);
    this.queue.setGraph(this.graph);
  }

  file(name: string): LoadedUnitFile | undefined {
    return this.files.get(this.graph.resolve(name) ?? name);
  }

  resolve(name: string): string {
    return this.graph.resolve(name) ?? name;
  }

  enqueue(unit: string, type: JobType, mode: JobRequest['mode'] = 'replace', manual = true): EnqueueResult {
    const name = this.resolve(unit);
    this.loadOnDemand(name);
    return this.queue.enqueue({ unit: name, type, mode, manual });
  }

  /** Every unit type calls this from its setState(). */
  unitStateChanged(unit: UnitInstance, from: string, to: string): void {
    const prev = this.lastActive.get(unit.name) ?? 'inactive';
    const now = unit.activeState();
    this.lastActive.set(unit.name, now);
    // A device that shows up asking for units (SYSTEMD_WANTS): its edges must be in the graph
    // before the queue reacts to it becoming active.
    if (now === 'active' && prev !== 'active' && deviceWants(unit).length > 0) this.rebuildGraph();
    this.options.manager.reportStateChange(unit, from, to);
    if (prev !== now && !this.restoring) this.queue.unitChanged(unit.name, prev, now);
    this.options.onChange?.(unit.name);
  }

  /**
   * While units take back their state after a re-exec or a crash: their transitions are recorded
   * but are not news to the job queue (no retroactive Wants=, no OnFailure=, no StopWhenUnneeded=).
   */
  restoring = false;

  /**
   * A job that was running when the earlier image wrote its state: its unit takes the step back
   * (UnitInstance.resumeJob) and reports its end to this job (a device not plugged yet: when it
   * is).
   */
  resumeJob(name: string, type: 'start' | 'stop' | 'reload', jobId: number): boolean {
    const unit = this.options.manager.getUnit(name) ?? this.deviceFor(name);
    if (unit?.resumeJob?.(type) !== true) return false;
    this.runningJob.set(name, jobId);
    return true;
  }

  /** A unit that is gone for good (a collected Accept=yes instance): drop what is kept per name. */
  forgetUnit(name: string): void {
    this.lastActive.delete(name);
    this.runningJob.delete(name);
  }

  /** A unit's pending job step is over. */
  jobFinished(unit: string, end: JobEnd): void {
    const id = this.runningJob.get(unit);
    this.runningJob.delete(unit);
    this.queue.complete(unit, JOB_END_RESULT[end], id);
  }

  /** A device unit a start job waited for got plugged. */
  devicePlugged(unit: DeviceUnit): void {
    this.jobFinished(unit.name, 'done');
  }

  private unmetCondition(unit: UnitInstance): { kind: 'condition' | 'assert'; text: string } | undefined {
    if (!CONDITIONS_CHECKED_HERE.some((suffix) => unit.name.endsWith(suffix))) return undefined;
    if (unit.activeState() !== 'inactive' && unit.activeState() !== 'failed') return undefined;
    return firstUnmet(unit);
  }

  private deviceEdges(): DependencyEdge[] {
    const edges: DependencyEdge[] = [];
    for (const u of this.options.manager.allUnits()) {
      for (const w of deviceWants(u)) edges.push({ from: u.name, kind: 'Wants', to: w });
    }
    return edges;
  }

  private run(
    name: string,
    jobId: number,
    step: (u: UnitInstance) => ReturnType<UnitInstance['start']>,
  ): RunOutcome {
    const unit = this.options.manager.getUnit(name) ?? this.deviceFor(name);
    if (unit === undefined) return { failed: 'failed' };
    const unmet = step === START_STEP ? this.unmetCondition(unit) : undefined;
    if (unmet !== undefined) {
      if (unmet.kind === 'assert') {
        this.logger.warn({ unit: name, job: jobId }, `assertion failed: ${unmet.text}`);
        return { failed: 'assert' };
      }
      // As in systemd: the job is done, the unit stays as it was.
      this.logger.info({ unit: name, job: jobId }, `condition not met, not starting: ${unmet.text}`);
      return 'done';
    }
    this.runningJob.set(name, jobId);
    const outcome = step(unit);
    if (outcome === 'pending') return 'pending';
    this.runningJob.delete(name);
    if (outcome === 'done') return 'done';
    this.logger.warn({ unit: name, job: jobId }, outcome.reason);
    return { failed: JOB_END_RESULT[outcome.failed] };
  }

  /** A start job on a device nobody has plugged yet waits for it (systemd's device job). */
  private deviceFor(name: string): UnitInstance | undefined {
    return name.endsWith('.device') ? this.options.manager.ensureDeviceUnit(name) : undefined;
  }

  private view(name: string): UnitView | undefined {
    const unit = this.options.manager.getUnit(name);
    const file = this.files.get(name);
    if (unit === undefined) {
      if (name.endsWith('.device')) return { active: 'inactive', loadState: 'loaded', canStart: true };
      if (file === undefined) return undefined;
      return { active: 'inactive', loadState: file.loadState };
    }
    const u = file?.unit;
    return {
      active: unit.activeState(),
      loadState: unit.load,
      canReload: unit.canReload(),
      refuseManualStart: u?.refuseManualStart,
      refuseManualStop: u?.refuseManualStop,
      allowIsolate: u?.allowIsolate,
      ignoreOnIsolate: u?.ignoreOnIsolate,
      stopWhenUnneeded: u?.stopWhenUnneeded,
      onFailureJobMode: u?.onFailureJobMode,
      jobTimeoutMs: u?.jobTimeoutMs,
      jobRunningTimeoutMs: u?.jobRunningTimeoutMs,
    };
  }
}

/** A unit with nothing running can be rebuilt from its new file on reload. */
const START_STEP = (u: UnitInstance): ReturnType<UnitInstance['start']> => u.start();

/** The first Condition*=/Assert*= of `unit` that fails (triggering ones: when none holds). */
function firstUnmet(unit: UnitInstance): { kind: 'condition' | 'assert'; text: string } | undefined {
  const all = unit.file?.unit.conditions ?? [];
  const describe = (c: ConditionSpec): string =>
    `${c.kind === 'assert' ? 'Assert' : 'Condition'}${c.name}=${c.trigger ? '|' : ''}${c.negate ? '!' : ''}${c.value}` +
    ` (${c.source.file}:${c.source.line})`;
  for (const kind of ['assert', 'condition'] as const) {
    const mine = all.filter((c) => c.kind === kind);
    for (const c of mine)
      if (!c.trigger && conditionHolds(c) === c.negate) return { kind, text: describe(c) };
    const triggers = mine.filter((c) => c.trigger);
    if (triggers.length > 0 && !triggers.some((c) => conditionHolds(c) !== c.negate))
      return { kind, text: `none of ${triggers.map(describe).join(', ')}` };
  }
  return undefined;
}

function isReplaceable(unit: UnitInstance): boolean {
  const a = unit.activeState();
  return a === 'inactive' || a === 'failed';
}
