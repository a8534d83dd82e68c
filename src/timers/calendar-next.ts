// When does a calendar event elapse next? Two modes:
//
// - strictSystemd: systemd's algorithm (calendar_spec_next_usec, v252) step by step, on the glibc
//   mktime model, so results agree with systemd including its DST behaviour: a time in a skipped
//   hour does not elapse that day; a repeated hour elapses once, at the first pass that glibc's
//   mktime settles on. Bounded as systemd bounds it: years past 2199 never elapse, and more than
//   1000 steps end with EDEADLK.
// - the triggerd default: the same search on wall-clock time, then each matching wall-clock time
//   becomes one instant. A wall-clock time the clocks skip elapses once, at the moment the clocks
//   jump (every skipped time coalesces into that one run); a repeated wall-clock time elapses once,
//   at its first pass. Outside DST transitions the two modes agree.
//
// Expressions naming the local zone's abbreviation ("12:00 CEST") are computed the strict way in
// both modes: the abbreviation pins the offset, so there is no wall-clock reading to improve on.
import { gmtime, localtime, mktime, timegm, Tm, type MktimeState } from './broken-down-time';
import { MAX_YEAR, USEC_PER_SEC, type CalendarChain, type CalendarSpec } from './calendar-spec';
import { loadTimeZone, localTimeZone, type TimeZone } from './time-zone';

/** systemd's USEC_TIMESTAMP_FORMATTABLE_MAX (64-bit time_t): the last instant of year 9999, roughly. */
export const USEC_TIMESTAMP_FORMATTABLE_MAX = 253402214399 * 1e6 + 999999;
/** systemd's MAX_CALENDAR_ITERATIONS. */
export const MAX_CALENDAR_ITERATIONS = 1000;

export interface NextElapseOptions {
  /** systemd's results, DST quirks included ([X-Triggerd] StrictSystemdCalendar=yes). */
  strictSystemd?: boolean;
  /** The zone for expressions without one; default: the process's local zone. */
  localZone?: TimeZone;
  /** glibc's per-process mktime guess for the local zone (strict mode). systemd computes an
   * expression with its own zone in a forked child of a UTC process, so those start from 0. */
  mktimeState?: MktimeState;
  /** When given, counts the search steps taken (tests check the bound). */
  stats?: { iterations: number };
}

export type NextElapseResult =
  { usec: number; error?: undefined } | { usec?: undefined; error: 'ENOENT' | 'EDEADLK' | 'EINVAL' };

/** How systemd's code sees time: gmtime/timegm for UTC, localtime/mktime in a zone. */
interface Clock {
  mktime(tm: Tm): number | undefined;
  breakDown(t: number): Tm;
}

const UTC_CLOCK: Clock = {
  mktime: timegm,
  breakDown: gmtime,
};

class ZoneClock implements Clock {
  constructor(
    private readonly zone: TimeZone,
    private readonly state: MktimeState,
  ) {}
  mktime(tm: Tm): number | undefined {
    return mktime(tm, this.zone, this.state);
  }
  breakDown(t: number): Tm {
    return localtime(t, this.zone);
  }
}

/** Scratch copies for the checks that normalize a copy of the candidate (never nested). */
const scratch = new Tm();

/** mktime_or_timegm() < 0 */
function failed(t: number | undefined): boolean {
  return t === undefined || t < 0;
}

function findEndOfMonth(tm: Tm, clock: Clock, day: number): number {
  const t = scratch.copyFrom(tm);
  t.mon++;
  t.mday = 1 - day;
  if (failed(clock.mktime(t)) || t.mon !== tm.mon) return -1;
  return t.mday;
}

/** The value findMatching settled on (a module variable: the search allocates nothing per step). */
let matched = 0;

/** find_matching_component: the earliest value >= val in the chain, left in `matched`. Returns -1
 * (none), 0 (val matches) or 1 (moved forward). */
function findMatching(chain: CalendarChain, endOfMonth: boolean, tm: Tm, val: number, clock: Clock): number {
  matched = val;
  if (chain === null) return 0;
  let d = -1;
  let dSet = false;
  for (const c of chain) {
    let start = c.start;
    let stop = c.stop;
    if (endOfMonth) {
      start = findEndOfMonth(tm, clock, c.start);
      stop = findEndOfMonth(tm, clock, c.stop);
      if (stop > 0) [start, stop] = [stop, start];
    }
    if (start >= val) {
      if (!dSet || start < d) {
        d = start;
        dSet = true;
      }
    } else if (c.repeat > 0) {
      const k = start + c.repeat * Math.ceil((val - start) / c.repeat);
      if ((!dSet || k < d) && (stop < 0 || k <= stop)) {
        d = k;
        dSet = true;
      }
    }
  }
  if (!dSet) return -1;
  matched = d;
  return val !== d ? 1 : 0;
}

const ERANGE = -34;
const EDEADLK = -35;
const EOVERFLOW = -75;

/** tm_within_bounds: 1 in bounds; 0 normalized forward (*tm updated); < 0 out of range/backwards. */
function withinBounds(tm: Tm, clock: Clock): number {
  if (tm.year > MAX_YEAR) return ERANGE;
  const t = scratch.copyFrom(tm);
  if (failed(clock.mktime(t))) return EOVERFLOW;
  let cmp: number;
  if ((cmp = Math.sign(t.year - tm.year)) !== 0) t.mon = 0;
  else if ((cmp = Math.sign(t.mon - tm.mon)) !== 0) t.mday = 1;
  else if ((cmp = Math.sign(t.mday - tm.mday)) !== 0) t.hour = 0;
  else if ((cmp = Math.sign(t.hour - tm.hour)) !== 0) t.min = 0;
  else if ((cmp = Math.sign(t.min - tm.min)) !== 0) t.sec = 0;
  else cmp = Math.sign(t.sec - tm.sec);
  if (cmp < 0) return EDEADLK;
  if (cmp > 0) tm.copyFrom(t);
  return cmp === 0 ? 1 : 0;
}

function matchesWeekday(bits: number, tm: Tm, clock: Clock): boolean {
  if (bits < 0 || bits >= 127) return true;
  const t = scratch.copyFrom(tm);
  if (failed(clock.mktime(t))) return false;
  const k = t.wday === 0 ? 6 : t.wday - 1;
  return (bits & (1 << k)) !== 0;
}

/** Resets the fields below `level` (1 month, 2 day, 3 hour, 4 minute, 5 second); returns the
 * microseconds, which every reset clears. */
function resetFrom(c: Tm, level: number): number {
  if (level <= 1) c.mon = 0;
  if (level <= 2) c.mday = 1;
  if (level <= 3) c.hour = 0;
  if (level <= 4) c.min = 0;
  c.sec = 0;
  return 0;
}

/** systemd's find_next(): moves c (and the microseconds) to the next matching time. */
function findNext(
  spec: CalendarSpec,
  c: Tm,
  usecIn: number,
  clock: Clock,
  stats: { iterations: number } | undefined,
): NextElapseResult {
  let us = usecIn;
  let r: number;
  for (let iteration = 0; iteration < MAX_CALENDAR_ITERATIONS; iteration++) {
    if (stats !== undefined) stats.iterations++;
    clock.mktime(c);
    c.isdst = spec.dst;

    r = findMatching(spec.year, false, c, c.year, clock);
    c.year = matched;
    if (r > 0) us = resetFrom(c, 1);
    if (r < 0) return { error: 'ENOENT' };
    if (withinBounds(c, clock) <= 0) return { error: 'ENOENT' };

    r = findMatching(spec.month, false, c, c.mon + 1, clock);
    c.mon = matched - 1;
    if (r > 0) us = resetFrom(c, 2);
    if (r < 0 || (r = withinBounds(c, clock)) < 0) {
      c.year++;
      us = resetFrom(c, 1);
      continue;
    }
    if (r === 0) continue;

    r = findMatching(spec.day, spec.endOfMonth, c, c.mday, clock);
    c.mday = matched;
    if (r > 0) us = resetFrom(c, 3);
    if (r < 0 || (r = withinBounds(c, clock)) < 0) {
      c.mon++;
      us = resetFrom(c, 2);
      continue;
    }
    if (r === 0) continue;

    if (!matchesWeekday(spec.weekdays, c, clock)) {
      c.mday++;
      us = resetFrom(c, 3);
      continue;
    }

    r = findMatching(spec.hour, false, c, c.hour, clock);
    c.hour = matched;
    if (r > 0) us = resetFrom(c, 4);
    if (r < 0 || (r = withinBounds(c, clock)) < 0) {
      c.mday++;
      us = resetFrom(c, 3);
      continue;
    }
    if (r === 0) continue;

    r = findMatching(spec.minute, false, c, c.min, clock);
    c.min = matched;
    if (r > 0) us = resetFrom(c, 5);
    if (r < 0 || (r = withinBounds(c, clock)) < 0) {
      c.hour++;
      us = resetFrom(c, 4);
      continue;
    }
    if (r === 0) continue;

    r = findMatching(spec.second, false, c, c.sec * USEC_PER_SEC + us, clock);
    us = matched % USEC_PER_SEC;
    c.sec = Math.floor(matched / USEC_PER_SEC);
    if (r < 0 || (r = withinBounds(c, clock)) < 0) {
      c.min++;
      us = resetFrom(c, 5);
      continue;
    }
    if (r === 0) continue;

    return { usec: us };
  }
  return { error: 'EDEADLK' };
}

/** calendar_spec_next_usec_impl on a given clock. */
function nextOnClock(
  spec: CalendarSpec,
  after: number,
  clock: Clock,
  stats?: { iterations: number },
): NextElapseResult {
  if (after > USEC_TIMESTAMP_FORMATTABLE_MAX) return { error: 'EINVAL' };
  const usec = after + 1;
  const t = Math.floor(usec / USEC_PER_SEC);
  const tm = clock.breakDown(t);
  const found = findNext(spec, tm, usec - t * USEC_PER_SEC, clock, stats);
  if (found.error !== undefined) return found;
  const instant = clock.mktime(tm);
  if (failed(instant)) return { error: 'EINVAL' };
  return { usec: (instant as number) * USEC_PER_SEC + found.usec };
}

function specZone(spec: CalendarSpec, options: NextElapseOptions): TimeZone | undefined {
  if (spec.timezone !== undefined) return loadTimeZone(spec.timezone);
  return options.localZone ?? localTimeZone();
}

/** The instant a wall-clock time (usec, read as if UTC) stands for: its first pass when the clocks
 * show it twice, the moment of the jump when they skip it. */
export function wallToInstant(wall: number, zone: TimeZone): number {
  const wsec = Math.floor(wall / USEC_PER_SEC);
  const frac = wall - wsec * USEC_PER_SEC;
  let iv = zone.intervalAt(wsec - 26 * 3600);
  for (let k = 0; k < 64; k++) {
    const t = wsec - iv.offset;
    if (t < iv.start) return iv.start * USEC_PER_SEC;
    if (t < iv.end) return t * USEC_PER_SEC + frac;
    iv = zone.intervalAt(iv.end);
  }
  return (wsec - iv.offset) * USEC_PER_SEC + frac;
}

/** The first wall-clock time whose instant (per wallToInstant) is at or after instant `a`. */
function firstWallAtOrAfter(a: number, zone: TimeZone): number {
  const asec = Math.floor(a / USEC_PER_SEC);
  const iv = zone.intervalAt(asec);
  const wall = a + iv.offset * USEC_PER_SEC;
  if (iv.start === -Infinity) return wall;
  const prev = zone.intervalAt(iv.start - 1);
  if (prev.offset > iv.offset && a < (iv.start + prev.offset - iv.offset) * USEC_PER_SEC) {
    // The second pass through a repeated hour: those wall-clock times already elapsed at the first.
    return (iv.start + prev.offset) * USEC_PER_SEC;
  }
  if (prev.offset < iv.offset && a === iv.start * USEC_PER_SEC) {
    // The moment of a jump forward: the skipped wall-clock times elapse now.
    return (iv.start + prev.offset) * USEC_PER_SEC;
  }
  return wall;
}

const impossibleDates = new WeakMap<CalendarSpec, number>();

/** For an expression whose month and day never meet (`*-02-30`, `*-04,06-31`): how many search
 * steps one year costs at most; 0 when some month has one of its days. */
function impossibleDateCost(spec: CalendarSpec): number {
  let cost = impossibleDates.get(spec);
  if (cost !== undefined) return cost;
  cost = 0;
  if (spec.day !== null && !spec.endOfMonth) {
    let firstDay = 32;
    for (const c of spec.day) firstDay = Math.min(firstDay, c.start);
    const months: number[] = [];
    if (spec.month === null) for (let m = 1; m <= 12; m++) months.push(m);
    else
      for (const c of spec.month) {
        const last = c.stop >= 0 ? c.stop : c.repeat > 0 ? 12 : c.start;
        for (let m = c.start; m <= last && m <= 12; m += c.repeat > 0 ? c.repeat : 13) months.push(m);
      }
    const longest = Math.max(...months.map((m) => (m === 2 ? 29 : [4, 6, 9, 11].includes(m) ? 30 : 31)));
    if (firstDay > longest) cost = 2 * months.length + 2;
  }
  impossibleDates.set(spec, cost);
  return cost;
}

/** The next elapse after `afterUsec` (µs since the epoch, exclusive), or an errno-like reason. */
export function computeNextElapse(
  spec: CalendarSpec,
  afterUsec: number,
  options: NextElapseOptions = {},
): NextElapseResult {
  // A date that exists in no year: systemd searches year after year until 2199 and says "never";
  // say it at once where that search would end the same way (within its 1000 steps).
  const perYear = impossibleDateCost(spec);
  if (perYear > 0 && afterUsec <= USEC_TIMESTAMP_FORMATTABLE_MAX) {
    const year = new Date(Math.min(afterUsec / 1000, 8.64e15)).getUTCFullYear();
    if ((MAX_YEAR - year + 3) * perYear < MAX_CALENDAR_ITERATIONS) return { error: 'ENOENT' };
  }
  if (spec.utc) return nextOnClock(spec, afterUsec, UTC_CLOCK, options.stats);
  const zone = specZone(spec, options);
  if (zone === undefined) return { error: 'EINVAL' };
  if (options.strictSystemd || spec.dst >= 0) {
    const state = spec.timezone !== undefined ? { offset: 0 } : (options.mktimeState ?? { offset: 0 });
    return nextOnClock(spec, afterUsec, new ZoneClock(zone, state), options.stats);
  }
  if (afterUsec > USEC_TIMESTAMP_FORMATTABLE_MAX) return { error: 'EINVAL' };
  const wall = nextOnClock(spec, firstWallAtOrAfter(afterUsec + 1, zone) - 1, UTC_CLOCK, options.stats);
  if (wall.error !== undefined) return wall;
  return { usec: wallToInstant(wall.usec, zone) };
}

/** The next elapse after `afterUsec`, or undefined when the expression never elapses again. */
export function nextElapse(
  spec: CalendarSpec,
  afterUsec: number,
  options: NextElapseOptions = {},
): number | undefined {
  return computeNextElapse(spec, afterUsec, options).usec;
}
