// Job types, job results and the frozen merge table: the algebra the transaction builder and the
// job queue share. Pure data and pure functions, no knowledge of unit types.
import type { ActiveState } from '../units/unit-type';

/** Every job type a request may name. The "-or-"/"try-" types are collapsed before a job exists. */
export const JOB_TYPES = [
  'start',
  'verify-active',
  'stop',
  'reload',
  'restart',
  'try-restart',
  'reload-or-start',
  'try-reload',
  'nop',
] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** What a job in a transaction or in the queue can be, once collapsed against the unit's state. */
export const COLLAPSED_JOB_TYPES = ['start', 'verify-active', 'stop', 'reload', 'restart', 'nop'] as const;
export type CollapsedJobType = (typeof COLLAPSED_JOB_TYPES)[number];

/**
 * The merge table's domain: the collapsed types plus 'reload-or-start', which merging a reload
 * with a start produces and which is collapsed again right away (`mergeAndCollapse`).
 */
export type MergeableJobType = CollapsedJobType | 'reload-or-start';

export const MERGEABLE_JOB_TYPES: readonly MergeableJobType[] = Object.freeze([
  'start',
  'verify-active',
  'stop',
  'reload',
  'restart',
  'reload-or-start',
  'nop',
] as const);

export const JOB_RESULTS = [
  'done',
  'canceled',
  'timeout',
  'failed',
  'dependency',
  'skipped',
  'invalid',
  'assert',
  'unsupported',
  'collected',
  'once',
] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

export const JOB_STATES = ['waiting', 'running'] as const;
export type JobState = (typeof JOB_STATES)[number];

type MergeRow = Readonly<Record<MergeableJobType, MergeableJobType | null>>;

// null = the two conflict. The table is a join: verify-active < start < reload-or-start < restart,
// verify-active < reload < reload-or-start, nop below everything, stop alone. That shape is what
// makes merging commutative, associative and idempotent (test/unit/job-types.test.ts checks it).
// The entries among start/verify-active/stop/reload/restart are systemd's.
const row = (r: Record<MergeableJobType, MergeableJobType | null>): MergeRow => Object.freeze(r);
export const MERGE_TABLE: Readonly<Record<MergeableJobType, MergeRow>> = Object.freeze({
  start: row({
    start: 'start',
    'verify-active': 'start',
    stop: null,
    reload: 'reload-or-start',
    restart: 'restart',
    'reload-or-start': 'reload-or-start',
    nop: 'start',
  }),
  'verify-active': row({
    start: 'start',
    'verify-active': 'verify-active',
    stop: null,
    reload: 'reload',
    restart: 'restart',
    'reload-or-start': 'reload-or-start',
    nop: 'verify-active',
  }),
  stop: row({
    start: null,
    'verify-active': null,
    stop: 'stop',
    reload: null,
    restart: null,
    'reload-or-start': null,
    nop: 'stop',
  }),
  reload: row({
    start: 'reload-or-start',
    'verify-active': 'reload',
    stop: null,
    reload: 'reload',
    restart: 'restart',
    'reload-or-start': 'reload-or-start',
    nop: 'reload',
  }),
  restart: row({
    start: 'restart',
    'verify-active': 'restart',
    stop: null,
    reload: 'restart',
    restart: 'restart',
    'reload-or-start': 'restart',
    nop: 'restart',
  }),
  'reload-or-start': row({
    start: 'reload-or-start',
    'verify-active': 'reload-or-start',
    stop: null,
    reload: 'reload-or-start',
    restart: 'restart',
    'reload-or-start': 'reload-or-start',
    nop: 'reload-or-start',
  }),
  nop: row({
    start: 'start',
    'verify-active': 'verify-active',
    stop: 'stop',
    reload: 'reload',
    restart: 'restart',
    'reload-or-start': 'reload-or-start',
    nop: 'nop',
  }),
});

export function isJobType(value: string): value is JobType {
  return (JOB_TYPES as readonly string[]).includes(value);
}

export function isJobResult(value: string): value is JobResult {
  return (JOB_RESULTS as readonly string[]).includes(value);
}

/** The raw table lookup: what `a` and `b` merge into, or null when they conflict. */
export function mergeJobTypes(a: MergeableJobType, b: MergeableJobType): MergeableJobType | null {
  return MERGE_TABLE[a][b];
}

export function isConflicting(a: MergeableJobType, b: MergeableJobType): boolean {
  return mergeJobTypes(a, b) === null;
}

/** `a` already does everything `b` would. */
export function isSuperset(a: MergeableJobType, b: MergeableJobType): boolean {
  return mergeJobTypes(a, b) === a;
}

const isInactiveOrFailed = (s: ActiveState): boolean => s === 'inactive' || s === 'failed';
const isInactiveOrDeactivating = (s: ActiveState): boolean => isInactiveOrFailed(s) || s === 'deactivating';

/** Turn a requested type into one a job can hold, given the unit's current state (as systemd does). */
export function collapseJobType(type: JobType | MergeableJobType, active: ActiveState): CollapsedJobType {
  switch (type) {
    case 'try-restart':
      // Kept while activating or deactivating: the unit ends up started again either way.
      return isInactiveOrFailed(active) ? 'nop' : 'restart';
    case 'try-reload':
      return isInactiveOrDeactivating(active) ? 'nop' : 'reload';
    case 'reload-or-start':
      return isInactiveOrDeactivating(active) ? 'start' : 'reload';
    default:
      return type;
  }
}

/** Merge two collapsed job types for a unit in state `active`; null when they conflict. */
export function mergeAndCollapse(
  a: CollapsedJobType,
  b: CollapsedJobType,
  active: ActiveState,
): CollapsedJobType | null {
  const merged = mergeJobTypes(a, b);
  return merged === null ? null : collapseJobType(merged, active);
}

/** A job of this type would change nothing for a unit in state `active`. */
export function isRedundant(type: CollapsedJobType, active: ActiveState): boolean {
  switch (type) {
    case 'start':
    case 'verify-active':
      return active === 'active' || active === 'reloading';
    case 'stop':
      return isInactiveOrFailed(active);
    case 'reload':
      return active === 'reloading';
    case 'restart':
      return false;
    case 'nop':
      return true;
  }
}

/**
 * May a job of this type be merged into an already running job that is a superset of it? Not a
 * reload: the running reload may have read its configuration before the change that asked for
 * the second one.
 */
export function allowsLateMerge(type: CollapsedJobType): boolean {
  return type !== 'reload';
}

/** Stops go first; a restart is a stop until its stop half is done. */
const isStopLike = (t: CollapsedJobType): boolean => t === 'stop' || t === 'restart';

export interface OrderedJob {
  type: CollapsedJobType;
  ignoreOrder: boolean;
}

/**
 * Order two jobs whose units are ordered: `relation` says how a's unit relates to b's
 * ('before': a's unit has Before=b's unit; 'after': After=). Returns -1 when a runs first,
 * 1 when b runs first, 0 when they are not ordered. Start-like jobs follow the unit order;
 * a stop or restart on either side reverses it for that side, so stops run before starts and
 * stops run in the reverse of the start order.
 */
export function compareJobOrder(a: OrderedJob, b: OrderedJob, relation: 'before' | 'after'): -1 | 0 | 1 {
  if (a.type === 'nop' || b.type === 'nop') return 0;
  if (a.ignoreOrder || b.ignoreOrder) return 0;
  if (relation === 'after') return negate(compareJobOrder(b, a, 'before'));
  // a's unit is Before b's unit.
  return isStopLike(b.type) ? 1 : -1;
}

function negate(x: -1 | 0 | 1): -1 | 0 | 1 {
  return x === 0 ? 0 : x === 1 ? -1 : 1;
}
