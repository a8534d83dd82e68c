// The job queue: at most one installed job per unit, a run queue drained on its own tick, and the
// bookkeeping that follows a job's end (failing the jobs that needed it, OnFailure=, waking the
// jobs ordered after it). Event handlers (complete, unitChanged, timers, cancel) only record and
// enqueue; units are started and stopped from the tick, through the injected UnitRunner.
import type { JobModeSetting } from '../units/config-types';
import type { ActiveState } from '../units/unit-type';
import type { DependencyGraph, EdgeKind } from './dependency-graph';
import {
  allowsLateMerge,
  compareJobOrder,
  isConflicting,
  isSuperset,
  mergeAndCollapse,
  type CollapsedJobType,
  type JobResult,
  type JobState,
} from './job-types';
import {
  buildTransaction,
  trivialStartTransaction,
  type InstalledJobView,
  type JobRequest,
  type Transaction,
  type TransactionDiagnostic,
  type TransactionError,
  type UnitView,
  type UnitViewFn,
} from './transaction';

/** What running a job step did: finished now, finishes later (the unit calls `complete`), or failed now. */
export type RunOutcome = 'done' | 'pending' | { failed: JobResult };

/** The job a runner call belongs to; pass `id` back to `complete` to rule out stale completions. */
export interface RunningJob {
  id: number;
  unit: string;
  type: CollapsedJobType;
}

/** Starts, stops and reloads units: the manager's side, through each unit type's module. */
export interface UnitRunner {
  start(unit: string, job: RunningJob): RunOutcome;
  stop(unit: string, job: RunningJob): RunOutcome;
  reload(unit: string, job: RunningJob): RunOutcome;
  /** Optional: by default the queue answers from the unit's active state (active: done, activating: wait, else skipped). */
  verifyActive?(unit: string, job: RunningJob): RunOutcome;
}

/** Runs the queue's tick later (never synchronously inside `schedule`): MicrotaskScheduler by default. */
export interface Scheduler {
  schedule(fn: () => void): void;
}

/** Time source and timers, injected so tests run on virtual time. */
export interface JobClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A row of `triggerctl list-jobs`. */
export interface JobInfo {
  id: number;
  unit: string;
  type: CollapsedJobType;
  state: JobState;
}

/** Why the queue enqueued a job by itself. */
export type AutoReason =
  | 'OnFailure'
  | 'OnSuccess'
  | 'Requires'
  | 'BindsTo'
  | 'Wants'
  | 'Conflicts'
  | 'BoundBy'
  | 'StopWhenUnneeded'
  | 'Upholds';

export type JobEvent =
  | { kind: 'installed'; job: JobInfo }
  | { kind: 'merged'; job: JobInfo; with: CollapsedJobType; rerun: boolean }
  | { kind: 'running'; job: JobInfo }
  | { kind: 'finished'; job: JobInfo; result: JobResult; reason?: string }
  | { kind: 'runner-error'; job: JobInfo; error: unknown }
  | { kind: 'auto'; reason: AutoReason; by: string; request: JobRequest; result: EnqueueResult };

/** An installed job as the state file keeps it across a re-exec or a crash (JobQueue.serialize). */
export interface SerializedJob {
  id: number;
  unit: string;
  type: CollapsedJobType;
  state: JobState;
  /** The type the running step was started as (a restart runs its stop step first). */
  runType: CollapsedJobType;
  ignoreOrder?: boolean;
  irreversible?: boolean;
  rerun?: boolean;
}

export type EnqueueResult =
  | { ok: true; jobId: number; jobs: JobInfo[]; diagnostics: TransactionDiagnostic[] }
  | { ok: false; error: TransactionError; diagnostics: TransactionDiagnostic[] };

export interface JobQueueOptions {
  graph: DependencyGraph;
  units: UnitViewFn;
  runner: UnitRunner;
  scheduler?: Scheduler;
  clock?: JobClock;
  onEvent?: (event: JobEvent) => void;
  /** Automatic stop/start actions (StopWhenUnneeded=, BindsTo=, Upholds=) per unit and window. */
  autoRateLimit?: { intervalMs: number; burst: number };
  /**
   * Install a start whose dependencies are all satisfied already without building the full
   * transaction (trivialStartTransaction); default true. Tests turn it off to compare.
   */
  trivialStarts?: boolean;
}

interface Job {
  readonly id: number;
  readonly unit: string;
  type: CollapsedJobType;
  state: JobState;
  ignoreOrder: boolean;
  irreversible: boolean;
  /** Merged into while running with something the running step does not cover: run again after. */
  rerun: boolean;
  /** The type the current run step was started as. */
  runType: CollapsedJobType;
  /** Counts run steps, so that a late answer from an earlier step is not taken for the current one. */
  runs: number;
  timer?: TimerRef;
  runTimer?: TimerRef;
  waiters: ((result: JobResult) => void)[];
}

interface TimerRef {
  handle: unknown;
}

/** Node's timers overflow beyond 2^31-1 ms; longer timeouts are re-armed in steps. */
const MAX_TIMER_MS = 2_147_483_647;

const START_FAILURE_TO: readonly EdgeKind[] = ['RequiredBy', 'RequisiteOf', 'BoundBy'];
const STOP_FAILURE_TO: readonly EdgeKind[] = ['ConflictedBy'];
/** Units a unit pulls in: when it goes away they may have become unneeded. */
const PULLS: readonly EdgeKind[] = ['Requires', 'Requisite', 'Wants', 'BindsTo', 'Upholds'];
/** Units whose being up (or having a job) keeps a StopWhenUnneeded= unit running. */
const PINS: readonly EdgeKind[] = ['RequiredBy', 'RequisiteOf', 'WantedBy', 'BoundBy', 'UpheldBy'];

const isInactiveOrFailed = (s: ActiveState): boolean => s === 'inactive' || s === 'failed';
const isInactiveOrDeactivating = (s: ActiveState): boolean => isInactiveOrFailed(s) || s === 'deactivating';
const isActiveOrReloading = (s: ActiveState): boolean => s === 'active' || s === 'reloading';
const isUp = (s: ActiveState): boolean => isActiveOrReloading(s) || s === 'activating';

/** Ticks run as microtasks in a row at most this often before one waits for the loop's next turn. */
const MAX_CHAINED_TICKS = 8;

/**
 * The daemon's scheduler: the tick is a microtask, so it runs as soon as the event handler that
 * asked for it has returned (handlers still only record and enqueue; a native batch is handed
 * over whole first), not after the rest of the loop's poll phase and setImmediate's round trip
 * (20-30 µs of every path-triggered start). Ticks that keep asking for the next one without the
 * loop turning in between go through setImmediate after a few, so jobs can never starve I/O.
 */
export class MicrotaskScheduler implements Scheduler {
  private chained = 0;
  private resetArmed = false;

  schedule(fn: () => void): void {
    if (this.chained >= MAX_CHAINED_TICKS) {
      setImmediate(fn);
      return;
    }
    this.chained++;
    queueMicrotask(() => {
      // Armed after the tick, off the path of the job it runs: the loop's next turn ends the chain.
      try {
        fn();
      } finally {
        this.armReset();
      }
    });
  }

  private armReset(): void {
    if (this.resetArmed) return;
    this.resetArmed = true;
    setImmediate(() => {
      this.resetArmed = false;
      this.chained = 0;
    });
  }
}

export const defaultScheduler: Scheduler = new MicrotaskScheduler();

export const systemClock: JobClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class JobQueue {
  private graph: DependencyGraph;
  private readonly units: UnitViewFn;
  private readonly runner: UnitRunner;
  private readonly scheduler: Scheduler;
  private readonly clock: JobClock;
  private readonly onEvent: (event: JobEvent) => void;
  private readonly rateLimit: { intervalMs: number; burst: number };
  private readonly trivialStarts: boolean;

  private readonly installed = new Map<string, Job>();
  private readonly byId = new Map<number, Job>();
  private nextId = 1;
  private readonly runQueue = new Set<Job>();
  private tickScheduled = false;
  private ticking = false;

  // Recorded by event handlers, acted on in the tick.
  private triggers: { unit: string; kind: 'OnFailure' | 'OnSuccess' }[] = [];
  private retroactive: { unit: string; direction: 'start' | 'stop' }[] = [];
  private readonly checkUnneeded = new Set<string>();
  private readonly checkBoundTo = new Set<string>();
  private readonly checkUpheld = new Set<string>();
  private readonly autoActions = new Map<string, { since: number; count: number }>();
  /** Jobs finished since the last tick, so unitChanged sees them whether it comes before or after complete. */
  private readonly recentlyFinished = new Map<string, CollapsedJobType>();

  constructor(options: JobQueueOptions) {
    this.graph = options.graph;
    this.units = options.units;
    this.runner = options.runner;
    this.scheduler = options.scheduler ?? defaultScheduler;
    this.clock = options.clock ?? systemClock;
    this.onEvent = options.onEvent ?? (() => undefined);
    this.rateLimit = options.autoRateLimit ?? { intervalMs: 10_000, burst: 16 };
    this.trivialStarts = options.trivialStarts ?? true;
  }

  /** Swap in a graph rebuilt after a reload. Installed jobs stay; ordering follows the new graph. */
  setGraph(graph: DependencyGraph): void {
    this.graph = graph;
    for (const job of this.installed.values()) if (job.state === 'waiting') this.runQueue.add(job);
    this.scheduleTick();
  }

  /**
   * The units a non-manual start of `unit` would look at, when that start is trivial now (its
   * transaction would be its own job alone, see trivialStartTransaction); undefined otherwise.
   * A change of state or job of any of them may change the answer.
   */
  trivialStartClosure(unit: string): Set<string> | undefined {
    const visited = new Set<string>();
    const tx = trivialStartTransaction(
      this.graph,
      { unit, type: 'start', mode: 'replace', manual: false },
      this.units,
      (u) => this.installed.get(u),
      visited,
    );
    return tx === undefined ? undefined : visited;
  }

  /**
   * Called before every request is looked at: an armed path start whose bookkeeping waits is
   * recorded first (PathArmedStarts.flush), so no request meets its units half-started.
   */
  beforeEnqueue: (() => void) | undefined;

  /** Build the transaction for a request and install it. */
  enqueue(request: JobRequest): EnqueueResult {
    this.beforeEnqueue?.();
    // A path- or timer-triggered start of a unit whose dependencies are up: the same outcome
    // without building (and checking) a transaction over the graph.
    const trivial = this.trivialStarts
      ? trivialStartTransaction(this.graph, request, this.units, (u) => this.installed.get(u))
      : undefined;
    if (trivial !== undefined) return { ...this.install(trivial), diagnostics: trivial.diagnostics };
    const tx = buildTransaction(this.graph, request, this.units, {
      installed: (u) => this.installedView(u),
      // Only isolate looks at every unit; units with jobs count even when the graph lacks them.
      ...(request.mode === 'isolate'
        ? { units: [...this.graph.units(), ...[...this.installed.keys()].filter((u) => !this.graph.has(u))] }
        : {}),
    });
    if (!tx.ok) return { ok: false, error: tx.error, diagnostics: tx.diagnostics };
    return { ...this.install(tx), diagnostics: tx.diagnostics };
  }

  /**
   * Install a transaction built against the current queue (install right after building it):
   * merge with installed jobs per the merge table, cancel the ones it replaces.
   */
  install(tx: Transaction): { ok: true; jobId: number; jobs: JobInfo[] } {
    const mode = tx.request.mode;
    if (mode === 'isolate' || mode === 'flush') {
      for (const job of [...this.installed.values()]) {
        if (tx.jobs.has(job.unit) || this.view(job.unit)?.ignoreOnIsolate === true) continue;
        this.finish(job, 'canceled', false, `canceled by ${mode} of ${tx.anchor}`);
      }
    }
    const touched: Job[] = [];
    for (const plan of tx.jobs.values()) {
      let job = this.installed.get(plan.unit);
      if (job !== undefined && isConflicting(job.type, plan.type)) {
        this.finish(job, 'canceled', false, `replaced by ${plan.type} (${mode} of ${tx.anchor})`);
        job = undefined;
      }
      if (job === undefined) {
        job = this.createJob(plan.unit, plan.type, plan.ignoreOrder, plan.irreversible);
        this.onEvent({ kind: 'installed', job: info(job) });
      } else {
        this.mergeInto(job, plan.type, plan.ignoreOrder, plan.irreversible);
      }
      this.wake(job);
      touched.push(job);
    }
    this.scheduleTick();
    const anchor = this.installed.get(tx.anchor) as Job;
    return { ok: true, jobId: anchor.id, jobs: touched.map(info) };
  }

  /**
   * A unit reports the end of the step its runner answered 'pending' to. Returns false when no
   * running job matches (it finished, timed out or was canceled meanwhile).
   */
  complete(unit: string, result: JobResult, jobId?: number): boolean {
    const job = this.installed.get(this.graph.resolve(unit));
    if (job === undefined || job.state !== 'running' || (jobId !== undefined && job.id !== jobId))
      return false;
    this.stepDone(job, result);
    this.scheduleTick();
    return true;
  }

  /** Cancel a job (`triggerctl cancel`): the jobs that needed it fail with 'dependency'. */
  cancel(jobId: number): boolean {
    const job = this.byId.get(jobId);
    if (job === undefined) return false;
    this.finish(job, 'canceled', true, 'canceled');
    this.scheduleTick();
    return true;
  }

  /**
   * A unit's active state changed. Records what follows from it (OnFailure=/OnSuccess=, stopping
   * what is bound to a unit that went away, starting what a unit that came up by itself wants,
   * StopWhenUnneeded=, Upholds=); the tick acts on it.
   */
  unitChanged(unitName: string, from: ActiveState, to: ActiveState): void {
    const unit = this.graph.resolve(unitName);
    const job = this.installed.get(unit);
    if (job?.state === 'waiting') this.runQueue.add(job);
    const type = job?.type ?? this.recentlyFinished.get(unit);
    const expected =
      type !== undefined &&
      ((isUp(to) && ['start', 'verify-active', 'reload', 'restart'].includes(type)) ||
        (isInactiveOrDeactivating(to) && (type === 'stop' || type === 'restart')));
    if (!expected) {
      if (isInactiveOrFailed(from) && isUp(to)) this.retroactive.push({ unit, direction: 'start' });
      else if (isUp(from) && isInactiveOrDeactivating(to)) this.retroactive.push({ unit, direction: 'stop' });
    }
    if (to === 'failed' && from !== 'failed') this.triggers.push({ unit, kind: 'OnFailure' });
    if (to === 'inactive' && !isInactiveOrFailed(from)) this.triggers.push({ unit, kind: 'OnSuccess' });
    if (isInactiveOrFailed(to)) {
      for (const kind of PULLS) for (const u of this.graph.targets(unit, kind)) this.checkUnneeded.add(u);
      for (const u of this.graph.targets(unit, 'BoundBy')) this.checkBoundTo.add(u);
      this.checkUpheld.add(unit);
    }
    if (isUp(to)) {
      this.checkUnneeded.add(unit);
      this.checkBoundTo.add(unit);
      for (const u of this.graph.targets(unit, 'Upholds')) this.checkUpheld.add(u);
    }
    this.scheduleTick();
  }

  /** Installed jobs, oldest first. */
  list(): JobInfo[] {
    return [...this.installed.values()].sort((a, b) => a.id - b.id).map(info);
  }

  get(jobId: number): JobInfo | undefined {
    const job = this.byId.get(jobId);
    return job === undefined ? undefined : info(job);
  }

  jobFor(unit: string): JobInfo | undefined {
    const job = this.installed.get(this.graph.resolve(unit));
    return job === undefined ? undefined : info(job);
  }

  /** Resolves with the job's result when it finishes; undefined for an unknown id. */
  whenFinished(jobId: number): Promise<JobResult> | undefined {
    const job = this.byId.get(jobId);
    if (job === undefined) return undefined;
    return new Promise((resolve) => job.waiters.push(resolve));
  }

  get size(): number {
    return this.installed.size;
  }

  // --- across a re-exec or a crash ---

  /** The installed jobs, oldest first, as restore() takes them back in the next image. */
  serialize(): SerializedJob[] {
    return [...this.installed.values()]
      .sort((a, b) => a.id - b.id)
      .map((j) => ({
        id: j.id,
        unit: j.unit,
        type: j.type,
        state: j.state,
        runType: j.runType,
        ...(j.ignoreOrder ? { ignoreOrder: true } : {}),
        ...(j.irreversible ? { irreversible: true } : {}),
        ...(j.rerun ? { rerun: true } : {}),
      }));
  }

  /**
   * Jobs the earlier image had installed (into an empty queue, right after the units took back
   * their state). A waiting job waits again. A running one stays running when its unit is still
   * in that step (`resume`: the unit then reports the step's end as if it had run it); otherwise
   * its step ended while no daemon watched, and it ends now: done when the unit is where the job
   * wanted it, failed when not. Waiters and the transaction's anchors are not kept. Returns the
   * jobs taken back and those ended at once.
   */
  restore(
    jobs: readonly SerializedJob[],
    resume: (unit: string, type: 'start' | 'stop' | 'reload', jobId: number) => boolean,
  ): { restored: number; ended: number } {
    const counts = { restored: 0, ended: 0 };
    for (const j of jobs) {
      const unit = this.graph.resolve(j.unit);
      if (this.installed.has(unit) || this.byId.has(j.id)) continue;
      if (j.id >= this.nextId) this.nextId = j.id + 1;
      const job = this.createJob(unit, j.type, j.ignoreOrder === true, j.irreversible === true, j.id);
      job.rerun = j.rerun === true;
      counts.restored++;
      if (j.state === 'waiting') {
        this.wake(job);
        continue;
      }
      job.state = 'running';
      job.runType = j.runType;
      job.runs = 1;
      const step =
        j.runType === 'restart'
          ? 'stop'
          : j.runType === 'verify-active' || j.runType === 'nop'
            ? undefined
            : j.runType;
      if (step !== undefined && resume(unit, step, job.id)) {
        job.runTimer = this.arm(this.view(unit)?.jobRunningTimeoutMs, () =>
          this.timedOut(job, 'JobRunningTimeoutSec='),
        );
        continue;
      }
      const active = this.active(unit);
      const reached =
        step === 'stop'
          ? isInactiveOrFailed(active)
          : step === undefined || step === 'reload' || isUp(active);
      counts.ended++;
      this.stepDone(job, reached ? 'done' : 'failed');
    }
    this.scheduleTick();
    return counts;
  }

  // --- installing ---

  private view(unit: string): UnitView | undefined {
    return this.units(unit);
  }

  private active(unit: string): ActiveState {
    return this.view(unit)?.active ?? 'inactive';
  }

  private installedView(unit: string): InstalledJobView | undefined {
    const job = this.installed.get(unit);
    if (job === undefined) return undefined;
    return { type: job.type, state: job.state, irreversible: job.irreversible, ignoreOrder: job.ignoreOrder };
  }

  private createJob(
    unit: string,
    type: CollapsedJobType,
    ignoreOrder: boolean,
    irreversible: boolean,
    id = this.nextId++,
  ): Job {
    const job: Job = {
      id,
      unit,
      type,
      state: 'waiting',
      ignoreOrder,
      irreversible,
      rerun: false,
      runType: type,
      runs: 0,
      waiters: [],
    };
    this.installed.set(unit, job);
    this.byId.set(job.id, job);
    job.timer = this.arm(this.view(unit)?.jobTimeoutMs, () => this.timedOut(job, 'JobTimeoutSec='));
    return job;
  }

  private mergeInto(job: Job, type: CollapsedJobType, ignoreOrder: boolean, irreversible: boolean): void {
    const merged = mergeAndCollapse(job.type, type, this.active(job.unit)) as CollapsedJobType;
    let rerun = false;
    if (job.state === 'waiting') {
      job.type = merged;
    } else if (!(allowsLateMerge(type) && isSuperset(job.type, type))) {
      // The running step does not cover the new request: let it finish, then run the merged job.
      job.type = merged;
      job.rerun = rerun = true;
    }
    job.ignoreOrder ||= ignoreOrder;
    job.irreversible ||= irreversible;
    this.onEvent({ kind: 'merged', job: info(job), with: type, rerun });
  }

  // --- the tick ---

  private scheduleTick(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    // runPromptly() may have run this tick already.
    this.scheduler.schedule(() => {
      if (this.tickScheduled) this.tick();
    });
  }

  /**
   * Runs the scheduled tick now rather than when the event handler that asked for it returns:
   * for a start whose latency is the point (a path unit's trigger), so its process is spawned
   * before the caller's own bookkeeping and the rest of the handler's batch. Nothing happens
   * inside a tick (a job's run may trigger a path unit) or when no tick is scheduled.
   */
  runPromptly(): void {
    if (!this.tickScheduled || this.ticking) return;
    this.tick();
  }

  private tick(): void {
    this.tickScheduled = false;
    this.ticking = true;
    try {
      this.recentlyFinished.clear();
      this.dispatchTriggers();
      this.dispatchRetroactive();
      this.dispatchChecks();
      while (this.runQueue.size > 0) {
        const job = this.runQueue.values().next().value as Job;
        this.runQueue.delete(job);
        if (this.installed.get(job.unit) !== job || job.state !== 'waiting') continue;
        // A blocked job is woken again when the job blocking it finishes or changes.
        if (this.isRunnable(job)) this.run(job);
      }
    } finally {
      this.ticking = false;
    }
  }

  /** Runnable when no job it must wait for (per After=/Before= and the job types) is installed. */
  private isRunnable(job: Job): boolean {
    if (job.ignoreOrder || job.type === 'nop') return true;
    for (const [kind, rel] of [
      ['Before', 'before'],
      ['After', 'after'],
    ] as const) {
      for (const u of this.graph.targets(job.unit, kind)) {
        const other = this.installed.get(u);
        if (other !== undefined && compareJobOrder(job, other, rel) > 0) return false;
      }
    }
    return true;
  }

  private run(job: Job): void {
    job.state = 'running';
    job.runType = job.type;
    const step = ++job.runs;
    if (job.runTimer === undefined) {
      job.runTimer = this.arm(this.view(job.unit)?.jobRunningTimeoutMs, () =>
        this.timedOut(job, 'JobRunningTimeoutSec='),
      );
    }
    this.onEvent({ kind: 'running', job: info(job) });
    const ref: RunningJob = { id: job.id, unit: job.unit, type: job.type };
    const active = this.active(job.unit);
    let outcome: RunOutcome | 'wait';
    try {
      outcome = this.runStep(job, ref, active);
    } catch (error) {
      this.onEvent({ kind: 'runner-error', job: info(job), error });
      outcome = { failed: 'failed' };
    }
    // The runner may have completed the job itself (or something canceled it) before returning.
    if (this.installed.get(job.unit) !== job || job.runs !== step || job.state !== 'running') return;
    if (outcome === 'pending') return;
    if (outcome === 'wait') {
      // Not possible in this state yet; unitChanged wakes the job.
      job.state = 'waiting';
      return;
    }
    this.stepDone(job, outcome === 'done' ? 'done' : outcome.failed);
  }

  private runStep(job: Job, ref: RunningJob, active: ActiveState): RunOutcome | 'wait' {
    switch (job.type) {
      case 'nop':
        return 'done';
      case 'start':
        return isActiveOrReloading(active) ? 'done' : this.runner.start(job.unit, ref);
      case 'stop':
      case 'restart':
        // A restart runs as a stop first; stepDone turns it into a start.
        return isInactiveOrFailed(active) ? 'done' : this.runner.stop(job.unit, ref);
      case 'reload':
        if (isInactiveOrDeactivating(active)) return { failed: 'invalid' };
        if (active !== 'active') return 'wait';
        return this.runner.reload(job.unit, ref);
      case 'verify-active':
        if (this.runner.verifyActive !== undefined) return this.runner.verifyActive(job.unit, ref);
        if (isActiveOrReloading(active)) return 'done';
        return active === 'activating' ? 'wait' : { failed: 'skipped' };
    }
  }

  /** The current run step ended with `result`. */
  private stepDone(job: Job, result: JobResult): void {
    if (job.runTimer !== undefined) this.disarm(job.runTimer);
    job.runTimer = undefined;
    if (result === 'done' && (job.rerun || (job.runType === 'restart' && job.type === 'restart'))) {
      if (!job.rerun) job.type = 'start';
      job.rerun = false;
      job.state = 'waiting';
      this.wake(job);
      this.scheduleTick();
      return;
    }
    this.finish(job, result, true);
  }

  private timedOut(job: Job, setting: string): void {
    if (this.installed.get(job.unit) !== job) return;
    // As systemd: the job goes, the unit is left as it is.
    this.finish(job, 'timeout', true, `${setting} expired`);
    this.scheduleTick();
  }

  /**
   * A job ends. `recursive`: a failure fails the jobs that need this one with 'dependency', and
   * so on down the chain (systemd's job_fail_dependencies); a worklist, not recursion, so long
   * chains cannot overflow the stack.
   */
  private finish(first: Job, firstResult: JobResult, recursive: boolean, firstReason?: string): void {
    const work: { job: Job; result: JobResult; reason?: string }[] = [
      { job: first, result: firstResult, ...(firstReason !== undefined ? { reason: firstReason } : {}) },
    ];
    for (let item = work.shift(); item !== undefined; item = work.shift()) {
      const { job, result, reason } = item;
      if (this.installed.get(job.unit) !== job) continue;
      this.installed.delete(job.unit);
      this.recentlyFinished.set(job.unit, job.type);
      this.byId.delete(job.id);
      this.runQueue.delete(job);
      if (job.timer !== undefined) this.disarm(job.timer);
      if (job.runTimer !== undefined) this.disarm(job.runTimer);
      this.onEvent({ kind: 'finished', job: info(job), result, ...(reason !== undefined ? { reason } : {}) });
      for (const resolve of job.waiters) resolve(result);
      job.waiters = [];

      if (result !== 'done' && (recursive || job !== first)) {
        const kinds =
          job.type === 'start' || job.type === 'verify-active'
            ? START_FAILURE_TO
            : job.type === 'stop'
              ? STOP_FAILURE_TO
              : [];
        for (const kind of kinds) {
          for (const u of this.graph.targets(job.unit, kind)) {
            const other = this.installed.get(u);
            if (other === undefined || (other.type !== 'start' && other.type !== 'verify-active')) continue;
            work.push({
              job: other,
              result: 'dependency',
              reason: `${job.unit} ${job.type} ended with ${result}`,
            });
          }
        }
      }
      // A job failing this way may leave the unit as it was, so OnFailure= cannot wait for a state change.
      if (result === 'timeout' || result === 'dependency')
        this.triggers.push({ unit: job.unit, kind: 'OnFailure' });
      this.wakeNeighbours(job.unit);
      for (const kind of PULLS) for (const u of this.graph.targets(job.unit, kind)) this.checkUnneeded.add(u);
      this.checkUnneeded.add(job.unit);
    }
    this.scheduleTick();
  }

  private wake(job: Job): void {
    this.runQueue.add(job);
    this.wakeNeighbours(job.unit);
  }

  private wakeNeighbours(unit: string): void {
    for (const kind of ['After', 'Before'] as const) {
      for (const u of this.graph.targets(unit, kind)) {
        const other = this.installed.get(u);
        if (other?.state === 'waiting') this.runQueue.add(other);
      }
    }
  }

  // --- automatic jobs ---

  private auto(reason: AutoReason, by: string, request: JobRequest): void {
    const result = this.enqueue(request);
    this.onEvent({ kind: 'auto', reason, by, request, result });
  }

  private dispatchTriggers(): void {
    const triggers = this.triggers;
    this.triggers = [];
    for (const { unit, kind } of triggers) {
      const v = this.view(unit);
      const mode: JobModeSetting =
        kind === 'OnFailure' ? (v?.onFailureJobMode ?? 'replace') : (v?.onSuccessJobMode ?? 'fail');
      for (const target of this.graph.targets(unit, kind))
        this.auto(kind, unit, { unit: target, type: 'start', mode });
    }
  }

  /** A unit came up or went away without a job asking for it: follow its dependencies. */
  private dispatchRetroactive(): void {
    const list = this.retroactive;
    this.retroactive = [];
    for (const { unit, direction } of list) {
      if (direction === 'start') {
        for (const [kind, mode] of [
          ['Requires', 'replace'],
          ['BindsTo', 'replace'],
          ['Wants', 'fail'],
        ] as const) {
          for (const u of this.graph.targets(unit, kind)) {
            // Not for units it is ordered after: they should have been up before it.
            if (isUp(this.active(u)) || this.graph.hasEdge(unit, 'After', u)) continue;
            this.auto(kind, unit, { unit: u, type: 'start', mode });
          }
        }
        for (const kind of ['Conflicts', 'ConflictedBy'] as const) {
          for (const u of this.graph.targets(unit, kind)) {
            if (isInactiveOrDeactivating(this.active(u))) continue;
            this.auto('Conflicts', unit, { unit: u, type: 'stop', mode: 'replace' });
          }
        }
      } else {
        for (const u of this.graph.targets(unit, 'BoundBy')) {
          if (isInactiveOrDeactivating(this.active(u))) continue;
          this.auto('BoundBy', unit, { unit: u, type: 'stop', mode: 'replace' });
        }
      }
    }
  }

  private dispatchChecks(): void {
    const unneeded = [...this.checkUnneeded];
    this.checkUnneeded.clear();
    for (const u of unneeded) {
      if (this.isUnneeded(u) && this.allowAuto(u))
        this.auto('StopWhenUnneeded', u, { unit: u, type: 'stop', mode: 'fail' });
    }
    const bound = [...this.checkBoundTo];
    this.checkBoundTo.clear();
    for (const u of bound) {
      const gone = this.boundToInactive(u);
      if (gone !== undefined && this.allowAuto(u))
        this.auto('BindsTo', gone, { unit: u, type: 'stop', mode: 'fail' });
    }
    const upheld = [...this.checkUpheld];
    this.checkUpheld.clear();
    for (const u of upheld) {
      const by = this.upheldBy(u);
      if (by !== undefined && this.allowAuto(u))
        this.auto('Upholds', by, { unit: u, type: 'start', mode: 'fail' });
    }
  }

  private isUnneeded(unit: string): boolean {
    const v = this.view(unit);
    if (v?.stopWhenUnneeded !== true || v.active !== 'active' || this.installed.has(unit)) return false;
    for (const kind of PINS) {
      for (const u of this.graph.targets(unit, kind)) {
        if (this.installed.has(u) || !isInactiveOrFailed(this.active(u))) return false;
      }
    }
    return true;
  }

  /** The unit is up, has no job, and a unit it BindsTo= is down with no job: returns that unit. */
  private boundToInactive(unit: string): string | undefined {
    if (!isActiveOrReloading(this.active(unit)) || this.installed.has(unit)) return undefined;
    for (const u of this.graph.targets(unit, 'BindsTo')) {
      if (!this.installed.has(u) && isInactiveOrFailed(this.active(u))) return u;
    }
    return undefined;
  }

  /** The unit is down, has no job, and a unit that Upholds= it is up: returns that unit. */
  private upheldBy(unit: string): string | undefined {
    if (!isInactiveOrFailed(this.active(unit)) || this.installed.has(unit)) return undefined;
    for (const u of this.graph.targets(unit, 'UpheldBy')) if (isUp(this.active(u))) return u;
    return undefined;
  }

  /** Rate limit for automatic actions on a unit, so a unit that keeps failing cannot loop forever. */
  private allowAuto(unit: string): boolean {
    const now = this.clock.now();
    const entry = this.autoActions.get(unit);
    if (entry === undefined || now - entry.since >= this.rateLimit.intervalMs) {
      this.autoActions.set(unit, { since: now, count: 1 });
      return true;
    }
    entry.count++;
    return entry.count <= this.rateLimit.burst;
  }

  // --- timers ---

  private arm(ms: number | undefined, fn: () => void): TimerRef | undefined {
    if (ms === undefined || !(ms > 0) || !Number.isFinite(ms)) return undefined;
    const ref: TimerRef = { handle: undefined };
    const deadline = this.clock.now() + ms;
    const step = (): void => {
      const left = deadline - this.clock.now();
      if (left > 0) ref.handle = this.clock.setTimeout(step, Math.min(left, MAX_TIMER_MS));
      else fn();
    };
    ref.handle = this.clock.setTimeout(step, Math.min(ms, MAX_TIMER_MS));
    return ref;
  }

  private disarm(ref: TimerRef): void {
    this.clock.clearTimeout(ref.handle);
  }
}

function info(job: Job): JobInfo {
  return { id: job.id, unit: job.unit, type: job.type, state: job.state };
}
