// Transactions: what one request (start/stop/... of a unit, with a job mode) means for every unit,
// as a map unit → job, checked for conflicts and ordering cycles before anything is installed.
// Follows systemd's transaction logic: pull in dependencies per edge kind, work out which jobs
// the anchor really needs ("matters"), drop what is redundant or harmful, merge per unit, break
// ordering cycles by dropping jobs the anchor can do without, refuse what cannot be fixed.
import type { JobModeSetting } from '../units/config-types';
import type { ActiveState, LoadState } from '../units/unit-type';
import type { DependencyGraph, EdgeKind } from './dependency-graph';
import {
  collapseJobType,
  compareJobOrder,
  isConflicting,
  isRedundant,
  mergeAndCollapse,
  type CollapsedJobType,
  type JobResult,
  type JobState,
  type JobType,
} from './job-types';

/** What the job engine needs to know about a unit. Optional fields default as systemd's do. */
export interface UnitView {
  active: ActiveState;
  loadState: LoadState;
  /** The type can start it (devices cannot; a start job then waits for it to appear). Default true. */
  canStart?: boolean;
  /** Default true. */
  canStop?: boolean;
  /** Default false. */
  canReload?: boolean;
  /** Can never be stopped, not even by external events. Default false. */
  perpetual?: boolean;
  refuseManualStart?: boolean;
  refuseManualStop?: boolean;
  allowIsolate?: boolean;
  ignoreOnIsolate?: boolean;
  stopWhenUnneeded?: boolean;
  /** Default 'replace'. */
  onFailureJobMode?: JobModeSetting;
  /** Default 'fail', as systemd's OnSuccessJobMode=. */
  onSuccessJobMode?: JobModeSetting;
  /** JobTimeoutSec= in ms; Infinity or 0 for none. */
  jobTimeoutMs?: number;
  /** JobRunningTimeoutSec= in ms; Infinity or 0 for none. */
  jobRunningTimeoutMs?: number;
}

/** The unit's view, or undefined for a unit the manager does not know (treated as not-found, inactive). */
export type UnitViewFn = (unit: string) => UnitView | undefined;

/** An already installed job, as the transaction needs to see it. */
export interface InstalledJobView {
  type: CollapsedJobType;
  state: JobState;
  irreversible: boolean;
  ignoreOrder: boolean;
}

export interface JobRequest {
  unit: string;
  type: JobType;
  mode: JobModeSetting;
  /** Asked for by a user (triggerctl), so RefuseManualStart=/RefuseManualStop= apply. */
  manual?: boolean;
}

export interface TransactionContext {
  /** The installed job of a unit, if any. */
  installed?: (unit: string) => InstalledJobView | undefined;
  /** Units that isolate considers stopping; defaults to every unit in the graph. */
  units?: Iterable<string>;
}

export type LinkKind = EdgeKind | 'isolate';

export interface JobPlan {
  unit: string;
  type: CollapsedJobType;
  /** The job the request asked for. */
  anchor: boolean;
  /** Reached from the anchor through requirement edges only: if it fails, the anchor fails. */
  matters: boolean;
  ignoreOrder: boolean;
  irreversible: boolean;
  /** The job that pulled this one in, and along which edge; undefined for the anchor. */
  pulledBy?: { unit: string; kind: LinkKind };
}

export type TransactionErrorCode =
  | 'ERR_JOB_CYCLE'
  | 'ERR_JOB_CONFLICT'
  | 'ERR_JOB_DEPENDENCY'
  | 'ERR_JOB_NOT_LOADED'
  | 'ERR_JOB_NOT_APPLICABLE'
  | 'ERR_JOB_REFUSED'
  | 'ERR_JOB_INVALID_REQUEST';

export interface TransactionError {
  code: TransactionErrorCode;
  message: string;
  /** The unit at fault: the missing requirement, the unit with conflicting jobs, ... */
  unit: string;
  /** The result the anchor job gets. */
  result: JobResult;
  /** For ERR_JOB_CYCLE: the cycle, each unit waiting for the next, first unit repeated at the end. */
  cycle?: string[];
}

export type DiagnosticCode =
  TransactionErrorCode | 'WARN_JOB_CYCLE' | 'WARN_JOB_DEPENDENCY' | 'INFO_JOB_DROPPED';

export interface TransactionDiagnostic {
  severity: 'error' | 'warning' | 'info';
  code: DiagnosticCode;
  message: string;
  unit?: string;
  cycle?: string[];
}

export interface Transaction {
  ok: true;
  request: JobRequest;
  anchor: string;
  /** Jobs in the order their units were first pulled in; the anchor's unit comes first. */
  jobs: Map<string, JobPlan>;
  diagnostics: TransactionDiagnostic[];
}

export interface FailedTransaction {
  ok: false;
  request: JobRequest;
  error: TransactionError;
  jobs: Map<string, JobPlan>;
  diagnostics: TransactionDiagnostic[];
}

export type TransactionResult = Transaction | FailedTransaction;

// --- edge kinds per effect (systemd's dependency atoms, as far as the job engine uses them) ---

/** Start/restart of the unit pulls in start of these; their failure fails the job. */
const PULL_IN_START: readonly EdgeKind[] = ['Requires', 'BindsTo'];
/** ... start of these, failure ignored. */
const PULL_IN_START_IGNORED: readonly EdgeKind[] = ['Wants', 'Upholds'];
/** ... verify-active of these. */
const PULL_IN_VERIFY: readonly EdgeKind[] = ['Requisite'];
/** ... stop of these; failure fails the job. */
const PULL_IN_STOP: readonly EdgeKind[] = ['Conflicts'];
/** ... stop of these, failure ignored. */
const PULL_IN_STOP_IGNORED: readonly EdgeKind[] = ['ConflictedBy'];
/** Stop or restart of the unit propagates as stop / try-restart to these. */
export const PROPAGATE_STOP: readonly EdgeKind[] = ['RequiredBy', 'RequisiteOf', 'BoundBy', 'ConsistsOf'];
export const PROPAGATE_RESTART: readonly EdgeKind[] = PROPAGATE_STOP;

interface TxLink {
  subject: TxJob;
  object: TxJob;
  kind: LinkKind;
  matters: boolean;
  /** Pulled in by Conflicts=: when a start and this stop clash, the start goes. */
  conflicts: boolean;
}

interface TxJob {
  unit: string;
  type: CollapsedJobType;
  ignoreOrder: boolean;
  anchor: boolean;
  matters: boolean;
  deleted: boolean;
  /** Links from the jobs that pulled this one in. */
  incoming: TxLink[];
  /** Links to the jobs this one pulled in. */
  outgoing: TxLink[];
}

interface PullEdge {
  job: TxJob;
  kind: LinkKind;
  matters: boolean;
  conflicts: boolean;
}

/** One dependency a job follows: the job to add for `unit`, along `kind`. */
interface PullItem {
  type: CollapsedJobType;
  unit: string;
  kind: LinkKind;
  matters: boolean;
  conflicts: boolean;
  /** required: its failure fails the job that pulls it in; optional: noted and ignored. */
  policy: 'required' | 'optional';
}

/** A job whose dependencies are being followed, and how far. */
interface PullFrame {
  job: TxJob;
  items: PullItem[];
  next: number;
}

/** Why a job could not be added: the unit at the root of it, and the edges that led there. */
interface AddFailure {
  failure: 'not-loaded' | 'not-applicable';
  unit: string;
  type: CollapsedJobType;
  loadState: LoadState;
  path: { from: string; kind: LinkKind; to: string }[];
}

type ResolvedView = Required<Omit<UnitView, 'onFailureJobMode' | 'onSuccessJobMode'>>;

function resolveView(v: UnitView | undefined): ResolvedView {
  return {
    active: v?.active ?? 'inactive',
    loadState: v?.loadState ?? 'not-found',
    canStart: v?.canStart ?? true,
    canStop: v?.canStop ?? true,
    canReload: v?.canReload ?? false,
    perpetual: v?.perpetual ?? false,
    refuseManualStart: v?.refuseManualStart ?? false,
    refuseManualStop: v?.refuseManualStop ?? false,
    allowIsolate: v?.allowIsolate ?? false,
    ignoreOnIsolate: v?.ignoreOnIsolate ?? false,
    stopWhenUnneeded: v?.stopWhenUnneeded ?? false,
    jobTimeoutMs: v?.jobTimeoutMs ?? Infinity,
    jobRunningTimeoutMs: v?.jobRunningTimeoutMs ?? Infinity,
  };
}

const isActiveOrActivating = (s: ActiveState): boolean =>
  s === 'active' || s === 'reloading' || s === 'activating';
const isInactiveOrFailed = (s: ActiveState): boolean => s === 'inactive' || s === 'failed';

function isApplicable(type: CollapsedJobType, v: ResolvedView): boolean {
  switch (type) {
    case 'start':
    case 'verify-active':
    case 'nop':
      // Not canStart: a device cannot be started by us but a start job may wait for it.
      return true;
    case 'stop':
      return !v.perpetual;
    case 'restart':
      return v.canStop && v.canStart;
    case 'reload':
      return v.canReload;
  }
}

const LOAD_PHRASE: Record<LoadState, string> = {
  loaded: 'is loaded',
  'not-found': 'is not found',
  'bad-setting': 'has a bad unit file setting',
  error: 'failed to load',
  masked: 'is masked',
};

const EDGE_VERB: Partial<Record<LinkKind, string>> = {
  Requires: 'requires',
  BindsTo: 'is bound to',
  Requisite: 'needs (Requisite=)',
  Conflicts: 'conflicts with',
  RequiredBy: 'is required by',
  RequisiteOf: 'is a requisite of',
  BoundBy: 'is bound by',
  ConsistsOf: 'has as part',
  isolate: 'isolates away',
};

/** A chain as text: "a.service → b.service → c.service"; long ones keep both ends. */
export function formatChain(units: readonly string[], max = 12): string {
  if (units.length <= max) return units.join(' → ');
  const keep = Math.floor(max / 2);
  const hidden = units.length - 2 * keep;
  return [...units.slice(0, keep), `… (${hidden} more)`, ...units.slice(-keep)].join(' → ');
}

/** Build the transaction for one request. Pure: reads the graph, the unit views and installed jobs. */
export function buildTransaction(
  graph: DependencyGraph,
  request: JobRequest,
  state: UnitViewFn,
  context: TransactionContext = {},
): TransactionResult {
  const unit = graph.resolve(request.unit);
  const view = (u: string): ResolvedView => resolveView(state(u));
  const refuse = (
    code: TransactionErrorCode,
    message: string,
    result: JobResult = 'invalid',
  ): FailedTransaction => ({
    ok: false,
    request,
    error: { code, message, unit, result },
    jobs: new Map(),
    diagnostics: [{ severity: 'error', code, message, unit }],
  });

  const v = view(unit);
  const { mode } = request;
  if (mode === 'isolate' && request.type !== 'start') {
    return refuse(
      'ERR_JOB_INVALID_REQUEST',
      `isolate is only valid for start, not ${request.type} of ${unit}`,
    );
  }
  if (mode === 'isolate' && !v.allowIsolate) {
    return refuse('ERR_JOB_REFUSED', `${unit} may not be isolated (AllowIsolate=no)`);
  }
  const type = collapseJobType(request.type, v.active);
  if (request.manual === true) {
    const starts = type === 'start' || request.type === 'restart' || request.type === 'try-restart';
    const stops = type === 'stop' || request.type === 'restart' || request.type === 'try-restart';
    if ((starts && v.refuseManualStart) || (stops && v.refuseManualStop)) {
      return refuse(
        'ERR_JOB_REFUSED',
        `${request.type} of ${unit} refused: it may be requested by dependency only (RefuseManual${starts && v.refuseManualStart ? 'Start' : 'Stop'}=yes)`,
      );
    }
  }

  const b = new TransactionBuilder(graph, view, context.installed ?? (() => undefined), mode);
  const ignoreRequirements = mode === 'ignore-dependencies' || mode === 'ignore-requirements';
  const ignoreOrder = mode === 'ignore-dependencies';
  const anchor = b.add(type, unit, null, ignoreOrder, ignoreRequirements);
  if (!isJob(anchor)) {
    const err = describeFailure(request, unit, type, anchor);
    return {
      ok: false,
      request,
      error: err,
      jobs: new Map(),
      diagnostics: [
        ...b.diagnostics,
        { severity: 'error', code: err.code, message: err.message, unit: err.unit },
      ],
    };
  }
  anchor.anchor = true;
  if (mode === 'isolate') b.addIsolateJobs(anchor, context.units ?? graph.units());
  const error = b.activate(anchor);
  if (error !== undefined) {
    return {
      ok: false,
      request,
      error,
      jobs: new Map(),
      diagnostics: [
        ...b.diagnostics,
        { severity: 'error', code: error.code, message: error.message, unit: error.unit, cycle: error.cycle },
      ],
    };
  }
  return {
    ok: true,
    request,
    anchor: unit,
    jobs: b.plans(mode === 'replace-irreversibly'),
    diagnostics: b.diagnostics,
  };
}

/** Units a trivial start may look at before it gives up and leaves it to buildTransaction. */
const TRIVIAL_CLOSURE_LIMIT = 64;

/**
 * The transaction of a start request whose outcome is known without building one: buildTransaction
 * would end with the anchor's start job alone and no diagnostics. That is the case when every job
 * the start would pull in (following the same edges, as deep as buildTransaction does) changes
 * nothing and is dropped as redundant: starts and verify-actives of loaded units that are active,
 * stops of units that are inactive; no unit in it, and no unit the anchor is ordered against, has
 * an installed job (so nothing merges, conflicts or can close an ordering cycle); and the request
 * is not refused. Undefined whenever anything is less than trivially satisfied: the caller then
 * builds the full transaction. Pure, like buildTransaction, and returns what it would.
 */
export function trivialStartTransaction(
  graph: DependencyGraph,
  request: JobRequest,
  state: UnitViewFn,
  installed: (unit: string) => InstalledJobView | undefined,
  /** Gets every unit whose state or job the answer depended on. */
  visited?: Set<string>,
): Transaction | undefined {
  const { mode } = request;
  if (mode !== 'replace' && mode !== 'fail' && mode !== 'replace-irreversibly') return undefined;
  const unit = graph.resolve(request.unit);
  visited?.add(unit);
  const anchorView = state(unit);
  if (anchorView === undefined || anchorView.loadState !== 'loaded') return undefined;
  if (collapseJobType(request.type, anchorView.active) !== 'start') return undefined;
  if (request.manual === true && anchorView.refuseManualStart === true) return undefined;
  if (installed(unit) !== undefined) return undefined;
  for (const kind of ['After', 'Before'] as const) {
    for (const u of graph.targets(unit, kind)) {
      visited?.add(u);
      if (installed(u) !== undefined) return undefined;
    }
  }
  // The jobs buildTransaction would add, as unit → type; each is followed once, as there.
  const seen = new Map<string, CollapsedJobType>([[unit, 'start']]);
  const work: { unit: string; type: CollapsedJobType }[] = [{ unit, type: 'start' }];
  const reach = (kinds: readonly EdgeKind[], from: string, type: CollapsedJobType): boolean => {
    for (const kind of kinds) {
      for (const u of graph.targets(from, kind)) {
        visited?.add(u);
        const had = seen.get(u);
        if (had !== undefined) {
          if (had !== type) return false;
          continue;
        }
        if (
          seen.size >= TRIVIAL_CLOSURE_LIMIT ||
          !changesNothing(type, state(u)) ||
          installed(u) !== undefined
        )
          return false;
        seen.set(u, type);
        work.push({ unit: u, type });
      }
    }
    return true;
  };
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    const ok =
      item.type === 'start'
        ? reach(PULL_IN_START, item.unit, 'start') &&
          reach(PULL_IN_VERIFY, item.unit, 'verify-active') &&
          reach(PULL_IN_STOP, item.unit, 'stop') &&
          reach(PULL_IN_START_IGNORED, item.unit, 'start') &&
          reach(PULL_IN_STOP_IGNORED, item.unit, 'stop')
        : item.type === 'stop'
          ? reach(PROPAGATE_STOP, item.unit, 'stop')
          : true;
    if (!ok) return undefined;
  }
  const plan: JobPlan = {
    unit,
    type: 'start',
    anchor: true,
    matters: true,
    ignoreOrder: false,
    irreversible: mode === 'replace-irreversibly',
  };
  return { ok: true, request, anchor: unit, jobs: new Map([[unit, plan]]), diagnostics: [] };
}

/**
 * A job pulled in along the way that buildTransaction adds without a word and then drops as
 * redundant: a start or verify-active of a loaded, active unit; a stop of an inactive one that
 * can be stopped.
 */
function changesNothing(type: CollapsedJobType, view: UnitView | undefined): boolean {
  const v = resolveView(view);
  if (type === 'stop') return !v.perpetual && isRedundant('stop', v.active);
  return v.loadState === 'loaded' && isRedundant(type, v.active);
}

function isJob(x: TxJob | AddFailure): x is TxJob {
  return !('failure' in x);
}

function describeFailure(
  request: JobRequest,
  anchor: string,
  type: CollapsedJobType,
  f: AddFailure,
): TransactionError {
  if (f.path.length === 0) {
    if (f.failure === 'not-loaded') {
      return {
        code: 'ERR_JOB_NOT_LOADED',
        message: `cannot ${request.type} ${anchor}: unit ${anchor} ${LOAD_PHRASE[f.loadState]}`,
        unit: anchor,
        result: 'invalid',
      };
    }
    return {
      code: 'ERR_JOB_NOT_APPLICABLE',
      message: `job type ${type} is not applicable to unit ${anchor}`,
      unit: anchor,
      result: 'invalid',
    };
  }
  return {
    code: 'ERR_JOB_DEPENDENCY',
    message: `cannot ${request.type} ${anchor}: ${failureReason(f, 'it')}`,
    unit: f.unit,
    result: 'dependency',
  };
}

/** "b.service requires missing.service, which is not found (a.service → b.service → missing.service)". */
function failureReason(f: AddFailure, first?: string): string {
  if (f.path.length === 0) {
    return f.failure === 'not-loaded'
      ? `${f.unit} ${LOAD_PHRASE[f.loadState]}`
      : `${f.type} is not applicable to ${f.unit}`;
  }
  const last = f.path[f.path.length - 1];
  const who = f.path.length === 1 && first !== undefined ? first : last.from;
  const what =
    f.failure === 'not-loaded'
      ? `which ${LOAD_PHRASE[f.loadState]}`
      : `for which ${f.type} is not applicable`;
  const chain = f.path.length > 1 ? ` (${formatChain([f.path[0].from, ...f.path.map((p) => p.to)])})` : '';
  return `${who} ${EDGE_VERB[last.kind] ?? last.kind} ${f.unit}, ${what}${chain}`;
}

/** " (pulled in by x.service/stop via RequiredBy)" for messages about dropped jobs. */
function origin(j: TxJob): string {
  const by = j.incoming[0];
  return by === undefined ? '' : ` (pulled in by ${by.subject.unit}/${by.subject.type} via ${by.kind})`;
}

class TransactionBuilder {
  /** unit → candidate jobs; more than one only until merging. */
  private readonly jobs = new Map<string, TxJob[]>();
  readonly diagnostics: TransactionDiagnostic[] = [];

  constructor(
    private readonly graph: DependencyGraph,
    private readonly view: (u: string) => ResolvedView,
    private readonly installed: (u: string) => InstalledJobView | undefined,
    private readonly mode: JobModeSetting,
  ) {}

  /**
   * Add a job and, when it is new, the jobs its dependencies call for, depth first. Uses an
   * explicit stack: a long Requires= chain in unit files must not overflow the call stack.
   */
  add(
    type: CollapsedJobType,
    unit: string,
    by: PullEdge | null,
    ignoreOrder: boolean,
    ignoreRequirements: boolean,
  ): TxJob | AddFailure {
    const first = this.addOne(type, unit, by, ignoreOrder);
    if (!isJob(first.result) || !first.isNew || ignoreRequirements || type === 'nop') return first.result;
    const stack: PullFrame[] = [{ job: first.result, items: this.pullItems(first.result), next: 0 }];
    // Set when a frame's job could not get a required dependency: the frame's parent handles it.
    let failure: AddFailure | undefined;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1];
      if (failure !== undefined) {
        const f = failure;
        failure = undefined;
        if (this.pullFailed(frame.job, frame.items[frame.next - 1], f)) failure = this.dropFrame(stack, f);
        continue;
      }
      if (frame.next >= frame.items.length) {
        stack.pop();
        continue;
      }
      const item = frame.items[frame.next++];
      const edge = { job: frame.job, kind: item.kind, matters: item.matters, conflicts: item.conflicts };
      const r = this.addOne(item.type, item.unit, edge, ignoreOrder);
      if (!isJob(r.result)) {
        if (this.pullFailed(frame.job, item, r.result)) failure = this.dropFrame(stack, r.result);
        continue;
      }
      // Dependencies are followed once per job, which also ends the walk around dependency loops.
      if (r.isNew && r.result.type !== 'nop') {
        stack.push({ job: r.result, items: this.pullItems(r.result), next: 0 });
      }
    }
    return failure ?? first.result;
  }

  /** Add one job (or find the same one), linked from `by`; no dependencies followed. */
  private addOne(
    type: CollapsedJobType,
    unit: string,
    by: PullEdge | null,
    ignoreOrder: boolean,
  ): { result: TxJob | AddFailure; isNew: boolean } {
    const v = this.view(unit);
    // Stopping needs no unit file: a unit whose file went away may still be running.
    if (type !== 'stop' && v.loadState !== 'loaded') {
      return {
        result: { failure: 'not-loaded', unit, type, loadState: v.loadState, path: [] },
        isNew: false,
      };
    }
    if (!isApplicable(type, v)) {
      return {
        result: { failure: 'not-applicable', unit, type, loadState: v.loadState, path: [] },
        isNew: false,
      };
    }
    let list = this.jobs.get(unit);
    if (list === undefined) {
      list = [];
      this.jobs.set(unit, list);
    }
    let job = list.find((j) => j.type === type);
    const isNew = job === undefined;
    if (job === undefined) {
      job = {
        unit,
        type,
        ignoreOrder,
        anchor: false,
        matters: false,
        deleted: false,
        incoming: [],
        outgoing: [],
      };
      list.push(job);
    }
    job.ignoreOrder ||= ignoreOrder;
    if (by !== null) {
      const link: TxLink = {
        subject: by.job,
        object: job,
        kind: by.kind,
        matters: by.matters,
        conflicts: by.conflicts,
      };
      by.job.outgoing.push(link);
      job.incoming.push(link);
    }
    return { result: job, isNew };
  }

  /** The frame's job cannot happen: remove it (what it pulled in is collected later) and pop it. */
  private dropFrame(stack: PullFrame[], failure: AddFailure): AddFailure {
    const frame = stack.pop() as PullFrame;
    this.deleteJob(frame.job, false);
    return failure;
  }

  /** A dependency could not be added. Returns true when that fails the job that pulled it in. */
  private pullFailed(job: TxJob, item: PullItem, f: AddFailure): boolean {
    const { unit } = job;
    if (item.policy === 'required') {
      // A job type the unit does not support is skipped, not fatal (as systemd's -EBADR).
      if (f.failure !== 'not-applicable') {
        f.path.unshift({ from: unit, kind: item.kind, to: item.unit });
        return true;
      }
      this.note(
        'info',
        'INFO_JOB_DROPPED',
        `${unit} ${item.kind} ${item.unit}: ${item.type} is not applicable to it; skipped`,
        item.unit,
      );
      return false;
    }
    // A wanted unit that is simply absent is normal (systemd logs it at debug level); one that
    // exists but cannot start is worth a warning.
    const bad = f.path.length > 0 || f.loadState === 'bad-setting' || f.loadState === 'error';
    this.note(
      bad ? 'warning' : 'info',
      'WARN_JOB_DEPENDENCY',
      `${unit} ${item.kind} ${item.unit}: cannot add ${item.type} job (${failureReason(f)}); ignoring`,
      item.unit,
    );
    return false;
  }

  /** The dependencies a new job follows, in systemd's order. */
  private pullItems(job: TxJob): PullItem[] {
    const { unit, type } = job;
    const items: PullItem[] = [];
    const pull = (
      kinds: readonly EdgeKind[],
      t: CollapsedJobType,
      policy: PullItem['policy'],
      conflicts = false,
    ): void => {
      for (const kind of kinds) {
        for (const dep of this.graph.targets(unit, kind)) {
          items.push({ type: t, unit: dep, kind, matters: policy === 'required', conflicts, policy });
        }
      }
    };
    if (type === 'start' || type === 'restart') {
      pull(PULL_IN_START, 'start', 'required');
      pull(PULL_IN_VERIFY, 'verify-active', 'required');
      pull(PULL_IN_STOP, 'stop', 'required', true);
      pull(PULL_IN_START_IGNORED, 'start', 'optional');
      pull(PULL_IN_STOP_IGNORED, 'stop', 'optional');
    }
    if (type === 'stop' || type === 'restart') {
      // A restart propagates as try-restart, so units that are not running are not started.
      const restarted = new Set<string>();
      if (type === 'restart') {
        for (const kind of PROPAGATE_RESTART) {
          for (const dep of this.graph.targets(unit, kind)) {
            restarted.add(dep);
            const t = collapseJobType('try-restart', this.view(dep).active);
            if (t !== 'nop')
              items.push({ type: t, unit: dep, kind, matters: true, conflicts: false, policy: 'required' });
          }
        }
      }
      for (const kind of PROPAGATE_STOP) {
        for (const dep of this.graph.targets(unit, kind)) {
          if (restarted.has(dep)) continue;
          items.push({ type: 'stop', unit: dep, kind, matters: true, conflicts: false, policy: 'required' });
        }
      }
    }
    if (type === 'reload') {
      for (const dep of this.graph.targets(unit, 'PropagatesReloadTo')) {
        const t = collapseJobType('try-reload', this.view(dep).active);
        if (t === 'nop') continue;
        items.push({
          type: t,
          unit: dep,
          kind: 'PropagatesReloadTo',
          matters: false,
          conflicts: false,
          policy: 'optional',
        });
      }
    }
    return items;
  }

  /** isolate: stop every unit that is running (or has a job) and is not part of the transaction. */
  addIsolateJobs(anchor: TxJob, units: Iterable<string>): void {
    const keep = (u: string): boolean => this.hasJob(u) || this.view(u).ignoreOnIsolate;
    for (const u of units) {
      if (keep(u)) continue;
      if (isInactiveOrFailed(this.view(u).active) && this.installed(u) === undefined) continue;
      // A socket or path unit whose service stays keeps running too (and vice versa via Triggers).
      if ([...this.graph.targets(u, 'TriggeredBy')].some(keep)) continue;
      const r = this.add(
        'stop',
        u,
        { job: anchor, kind: 'isolate', matters: true, conflicts: false },
        false,
        false,
      );
      if (!isJob(r))
        this.note('warning', 'INFO_JOB_DROPPED', `cannot add isolate stop job for ${u}; ignoring`, u);
    }
  }

  /** Turn the collected jobs into a consistent transaction, or say why that is impossible. */
  activate(anchor: TxJob): TransactionError | undefined {
    this.markMatters(anchor);
    if (this.mode === 'fail') this.minimizeImpact();
    this.dropRedundant();
    this.collectGarbage();
    const conflict = this.mergeJobs();
    if (conflict !== undefined) return conflict;
    for (;;) {
      const cycle = this.findCycle(anchor);
      if (cycle === undefined) break;
      const shown = showCycle(cycle.map((j) => j.unit));
      const victim = waitsForOrder(cycle).find((j) => this.isTxJob(j) && !j.matters);
      if (victim === undefined) {
        return {
          code: 'ERR_JOB_CYCLE',
          message: `ordering cycle ${formatChain(shown)}: every job in it is required, cannot break it`,
          unit: cycle[0].unit,
          result: 'invalid',
          cycle: shown,
        };
      }
      this.note(
        'warning',
        'WARN_JOB_CYCLE',
        `ordering cycle ${formatChain(shown)}: dropped job ${victim.unit}/${victim.type} to break it`,
        victim.unit,
        shown,
      );
      for (const j of [...(this.jobs.get(victim.unit) ?? [])]) this.deleteJob(j, true);
      this.collectGarbage();
    }
    this.dropRedundant();
    return this.checkDestructive();
  }

  plans(irreversible: boolean): Map<string, JobPlan> {
    const out = new Map<string, JobPlan>();
    for (const [unit, list] of this.jobs) {
      const j = list[0];
      if (j === undefined) continue;
      const by = j.anchor ? undefined : j.incoming[0];
      out.set(unit, {
        unit,
        type: j.type,
        anchor: j.anchor,
        matters: j.matters,
        ignoreOrder: j.ignoreOrder,
        irreversible,
        ...(by !== undefined ? { pulledBy: { unit: by.subject.unit, kind: by.kind } } : {}),
      });
    }
    return out;
  }

  private hasJob(unit: string): boolean {
    return (this.jobs.get(unit)?.length ?? 0) > 0;
  }

  private isTxJob(j: TxJob): boolean {
    return !j.deleted && this.jobs.get(j.unit)?.includes(j) === true;
  }

  private all(): TxJob[] {
    return [...this.jobs.values()].flat();
  }

  private note(
    severity: TransactionDiagnostic['severity'],
    code: DiagnosticCode,
    message: string,
    unit?: string,
    cycle?: string[],
  ): void {
    this.diagnostics.push({
      severity,
      code,
      message,
      ...(unit !== undefined ? { unit } : {}),
      ...(cycle ? { cycle } : {}),
    });
  }

  private markMatters(anchor: TxJob): void {
    const stack = [anchor];
    anchor.matters = true;
    while (stack.length > 0) {
      const j = stack.pop() as TxJob;
      for (const l of j.outgoing) {
        if (!l.matters || l.object.matters) continue;
        l.object.matters = true;
        stack.push(l.object);
      }
    }
  }

  /** Remove a job. With `cascade`, also the jobs that required it: they cannot happen without it. */
  private deleteJob(first: TxJob, cascade: boolean): void {
    const work = [first];
    for (let job = work.pop(); job !== undefined; job = work.pop()) {
      if (job.deleted) continue;
      job.deleted = true;
      const list = this.jobs.get(job.unit);
      if (list !== undefined) {
        const i = list.indexOf(job);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.jobs.delete(job.unit);
      }
      for (const l of job.outgoing) remove(l.object.incoming, l);
      job.outgoing = [];
      const incoming = job.incoming;
      job.incoming = [];
      for (const l of incoming) {
        remove(l.subject.outgoing, l);
        if (cascade && l.matters) work.push(l.subject);
      }
    }
  }

  /** Mode fail: drop jobs the anchor does not need that would stop running units or undo queued jobs. */
  private minimizeImpact(): void {
    for (const j of this.all()) {
      if (j.deleted || j.matters) continue;
      const stopsRunning = j.type === 'stop' && isActiveOrActivating(this.view(j.unit).active);
      const inst = this.installed(j.unit);
      const changesQueued = inst !== undefined && isConflicting(j.type, inst.type);
      if (!stopsRunning && !changesQueued) continue;
      this.note(
        'info',
        'INFO_JOB_DROPPED',
        `dropped ${j.unit}/${j.type}${origin(j)}: not needed by the request and it would ${stopsRunning ? 'stop a running unit' : `undo the queued ${inst?.type} job`}`,
        j.unit,
      );
      this.deleteJob(j, true);
    }
  }

  /** Drop the jobs of units where every job would change nothing (never the anchor's). */
  private dropRedundant(): void {
    for (const [unit, list] of [...this.jobs]) {
      const active = this.view(unit).active;
      const inst = this.installed(unit);
      const keep = list.some(
        (j) =>
          j.anchor ||
          !isRedundant(j.type, active) ||
          (inst !== undefined && isConflicting(j.type, inst.type)),
      );
      if (!keep) for (const j of [...list]) this.deleteJob(j, false);
    }
  }

  /** Drop jobs nothing pulls in any more. isolate keeps everything: its stop jobs are the point. */
  private collectGarbage(): void {
    if (this.mode === 'isolate') return;
    for (let again = true; again;) {
      again = false;
      for (const j of this.all()) {
        if (j.deleted || j.anchor || j.incoming.length > 0) continue;
        this.deleteJob(j, true);
        again = true;
      }
    }
  }

  /** Merge the jobs of each unit into one; resolve clashes by dropping the job that matters less. */
  private mergeJobs(): TransactionError | undefined {
    for (let again = true; again;) {
      again = false;
      for (const [unit, list] of this.jobs) {
        const pair = findConflict(list);
        if (pair === undefined) continue;
        const [a, b] = pair;
        let drop: TxJob;
        if (!a.matters && !b.matters) {
          // Rather drop a stop than a start, unless the stop comes from Conflicts=.
          if (a.type === 'stop') drop = conflictedBy(a) ? b : a;
          else if (b.type === 'stop') drop = conflictedBy(b) ? a : b;
          else drop = a;
        } else if (!a.matters) drop = a;
        else if (!b.matters) drop = b;
        else {
          return {
            code: 'ERR_JOB_CONFLICT',
            message: `transaction contains conflicting jobs ${a.type} and ${b.type} for ${unit}; probably contradicting requirement dependencies`,
            unit,
            result: 'invalid',
          };
        }
        const kept = drop === a ? b : a;
        this.note(
          'info',
          'INFO_JOB_DROPPED',
          `dropped ${unit}/${drop.type}${origin(drop)}: it conflicts with ${unit}/${kept.type}${origin(kept)}`,
          unit,
        );
        this.deleteJob(drop, true);
        this.collectGarbage();
        again = true;
        break;
      }
    }
    for (const [unit, list] of this.jobs) {
      if (list.length < 2) continue;
      const active = this.view(unit).active;
      const [first, ...rest] = list;
      for (const k of rest) {
        first.type = mergeAndCollapse(first.type, k.type, active) as CollapsedJobType;
        first.anchor ||= k.anchor;
        first.matters ||= k.matters;
        first.ignoreOrder ||= k.ignoreOrder;
        for (const l of k.incoming) {
          l.object = first;
          first.incoming.push(l);
        }
        for (const l of k.outgoing) {
          l.subject = first;
          first.outgoing.push(l);
        }
        k.incoming = [];
        k.outgoing = [];
        k.deleted = true;
      }
      list.length = 1;
    }
    return undefined;
  }

  /**
   * Find an ordering cycle among the transaction's jobs and the installed jobs they are ordered
   * against. Returns the jobs in execution order (each must run before the next, the last before
   * the first), or undefined.
   */
  private findCycle(anchor: TxJob): TxJob[] | undefined {
    const nodeFor = new Map<string, TxJob>();
    const nodeOf = (unit: string): TxJob | undefined => {
      const tx = this.jobs.get(unit)?.[0];
      if (tx !== undefined) return tx;
      const cached = nodeFor.get(unit);
      if (cached !== undefined) return cached;
      const inst = this.installed(unit);
      if (inst === undefined) return undefined;
      // Installed jobs take part in the ordering; a stand-in node carries their type.
      const stand: TxJob = {
        unit,
        type: inst.type,
        ignoreOrder: inst.ignoreOrder,
        anchor: false,
        matters: true,
        deleted: false,
        incoming: [],
        outgoing: [],
      };
      nodeFor.set(unit, stand);
      return stand;
    };
    // Jobs that must run after j.
    const successors = (j: TxJob): TxJob[] => {
      const out: TxJob[] = [];
      for (const [kind, rel] of [
        ['Before', 'before'],
        ['After', 'after'],
      ] as const) {
        for (const u of this.graph.targets(j.unit, kind)) {
          const o = nodeOf(u);
          if (o !== undefined && compareJobOrder(j, o, rel) < 0) out.push(o);
        }
      }
      return out;
    };
    // Depth-first with an explicit stack; `path` is the current chain, grey nodes are on it.
    const color = new Map<TxJob, 'grey' | 'black'>();
    for (const root of [anchor, ...this.all()]) {
      if (root.deleted || color.has(root)) continue;
      const path: TxJob[] = [root];
      const stack = [{ job: root, next: successors(root), i: 0 }];
      color.set(root, 'grey');
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (top.i >= top.next.length) {
          stack.pop();
          path.pop();
          color.set(top.job, 'black');
          continue;
        }
        const o = top.next[top.i++];
        const c = color.get(o);
        if (c === 'grey') return path.slice(path.indexOf(o));
        if (c === undefined) {
          color.set(o, 'grey');
          path.push(o);
          stack.push({ job: o, next: successors(o), i: 0 });
        }
      }
    }
    return undefined;
  }

  /** Mode fail (or an irreversible installed job): refuse to replace a conflicting installed job. */
  private checkDestructive(): TransactionError | undefined {
    for (const [unit, list] of this.jobs) {
      const j = list[0];
      const inst = this.installed(unit);
      if (j === undefined || inst === undefined) continue;
      if ((this.mode === 'fail' || inst.irreversible) && isConflicting(inst.type, j.type)) {
        return {
          code: 'ERR_JOB_CONFLICT',
          message: `transaction for ${unit}/${j.type} is destructive: ${unit} has a ${inst.type} job queued${inst.irreversible ? ' (irreversible)' : ''}, but ${j.type} is included in the transaction`,
          unit,
          result: 'invalid',
        };
      }
    }
    return undefined;
  }
}

function remove<T>(arr: T[], x: T): void {
  const i = arr.indexOf(x);
  if (i >= 0) arr.splice(i, 1);
}

function conflictedBy(j: TxJob): boolean {
  return j.incoming.some((l) => l.conflicts);
}

function findConflict(list: TxJob[]): [TxJob, TxJob] | undefined {
  for (let i = 0; i < list.length; i++) {
    for (let k = i + 1; k < list.length; k++) {
      if (isConflicting(list[i].type, list[k].type)) return [list[i], list[k]];
    }
  }
  return undefined;
}

/** Execution-order cycle [p0 … pk] → the same jobs with each waiting for the next: [p0, pk, …, p1]. */
function waitsForOrder<T>(cycle: T[]): T[] {
  return [cycle[0], ...cycle.slice(1).reverse()];
}

/** The cycle as shown to people: each unit waits for the next; the first is repeated at the end. */
function showCycle(units: string[]): string[] {
  const order = waitsForOrder(units);
  return [...order, order[0]];
}
