// What `triggerctl calendar` prints: the layout of `systemd-analyze calendar` (v252) line for line,
// so the two can be diffed. Pure: the current time, the local zone and the output are parameters.
import { localtime, mktime, Tm, type MktimeState } from './broken-down-time';
import { computeNextElapse } from './calendar-next';
import { ERRNO_TEXT, formatCalendarSpec, parseCalendarSpec, USEC_PER_SEC } from './calendar-spec';
import { daysFromCivil, loadTimeZone, type TimeZone } from './time-zone';

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const USEC_PER_MINUTE = 60 * USEC_PER_SEC;
const USEC_PER_HOUR = 60 * USEC_PER_MINUTE;
const USEC_PER_DAY = 24 * USEC_PER_HOUR;
const USEC_PER_WEEK = 7 * USEC_PER_DAY;
const USEC_PER_MONTH = 2629800 * USEC_PER_SEC;
const USEC_PER_YEAR = 31557600 * USEC_PER_SEC;

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function formatTm(tm: Tm): string {
  return `${WEEKDAYS[tm.wday]} ${String(tm.year).padStart(4, '0')}-${two(tm.mon + 1)}-${two(tm.mday)} ${two(tm.hour)}:${two(tm.min)}:${two(tm.sec)}`;
}

/** format_timestamp(): "Mon 2024-04-01 02:30:00 CEST" in the given zone. */
export function formatTimestamp(usec: number, zone: TimeZone): string {
  const tm = localtime(Math.floor(usec / USEC_PER_SEC), zone);
  return tm.zone === '' ? formatTm(tm) : `${formatTm(tm)} ${tm.zone}`;
}

/** format_timestamp_style(TIMESTAMP_UTC). */
export function formatTimestampUtc(usec: number, utcZone: TimeZone): string {
  return `${formatTm(localtime(Math.floor(usec / USEC_PER_SEC), utcZone))} UTC`;
}

/** format_timestamp_relative(): "2 years 7 months ago", "4h 16min left", "now". */
export function formatRelative(usec: number, nowUsec: number): string {
  let d: number;
  let s: string;
  if (nowUsec > usec) {
    d = nowUsec - usec;
    s = ' ago';
  } else {
    d = usec - nowUsec;
    s = ' left';
  }
  const q = (a: number, b: number): number => Math.floor(a / b);
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  if (d >= USEC_PER_YEAR)
    return `${plural(q(d, USEC_PER_YEAR), 'year', 'years')} ${plural(q(d % USEC_PER_YEAR, USEC_PER_MONTH), 'month', 'months')}${s}`;
  if (d >= USEC_PER_MONTH)
    return `${plural(q(d, USEC_PER_MONTH), 'month', 'months')} ${plural(q(d % USEC_PER_MONTH, USEC_PER_DAY), 'day', 'days')}${s}`;
  if (d >= USEC_PER_WEEK)
    return `${plural(q(d, USEC_PER_WEEK), 'week', 'weeks')} ${plural(q(d % USEC_PER_WEEK, USEC_PER_DAY), 'day', 'days')}${s}`;
  if (d >= 2 * USEC_PER_DAY) return `${q(d, USEC_PER_DAY)} days${s}`;
  if (d >= 25 * USEC_PER_HOUR) return `1 day ${q(d - USEC_PER_DAY, USEC_PER_HOUR)}h${s}`;
  if (d >= 6 * USEC_PER_HOUR) return `${q(d, USEC_PER_HOUR)}h${s}`;
  if (d >= USEC_PER_HOUR) return `${q(d, USEC_PER_HOUR)}h ${q(d % USEC_PER_HOUR, USEC_PER_MINUTE)}min${s}`;
  if (d >= 5 * USEC_PER_MINUTE) return `${q(d, USEC_PER_MINUTE)}min${s}`;
  if (d >= USEC_PER_MINUTE) return `${q(d, USEC_PER_MINUTE)}min ${q(d % USEC_PER_MINUTE, USEC_PER_SEC)}s${s}`;
  if (d >= USEC_PER_SEC) return `${q(d, USEC_PER_SEC)}s${s}`;
  if (d >= 1000) return `${q(d, 1000)}ms${s}`;
  if (d > 0) return `${d}us${s}`;
  return 'now';
}

const SPAN_UNITS: [string, number][] = [
  ['seconds', USEC_PER_SEC],
  ['second', USEC_PER_SEC],
  ['sec', USEC_PER_SEC],
  ['s', USEC_PER_SEC],
  ['minutes', USEC_PER_MINUTE],
  ['minute', USEC_PER_MINUTE],
  ['min', USEC_PER_MINUTE],
  ['months', USEC_PER_MONTH],
  ['month', USEC_PER_MONTH],
  ['M', USEC_PER_MONTH],
  ['msec', 1000],
  ['ms', 1000],
  ['m', USEC_PER_MINUTE],
  ['hours', USEC_PER_HOUR],
  ['hour', USEC_PER_HOUR],
  ['hr', USEC_PER_HOUR],
  ['h', USEC_PER_HOUR],
  ['days', USEC_PER_DAY],
  ['day', USEC_PER_DAY],
  ['d', USEC_PER_DAY],
  ['weeks', USEC_PER_WEEK],
  ['week', USEC_PER_WEEK],
  ['w', USEC_PER_WEEK],
  ['years', USEC_PER_YEAR],
  ['year', USEC_PER_YEAR],
  ['y', USEC_PER_YEAR],
  ['usec', 1],
  ['us', 1],
];

/** parse_sec(): "5min", "2h 30min", "1.5s"; a bare number is seconds. */
export function parseTimespan(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  let total = 0;
  const re = /\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)/y;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return undefined;
    const unit = m[2] === '' ? USEC_PER_SEC : SPAN_UNITS.find(([u]) => u === m[2])?.[1];
    if (unit === undefined) return undefined;
    total += Math.round(Number(m[1]) * unit);
    i = re.lastIndex;
  }
  return total;
}

/** parse_timestamp() for the forms people give --base-time: "now", "today", "@SECONDS",
 * "+5min", "2h ago", "[Mon ]2024-03-31[ |T]02:30[:00[.5]][ UTC|ZONE]", "02:30" (today). */
export function parseTimestamp(
  text: string,
  nowUsec: number,
  localZone: TimeZone,
  state: MktimeState = { offset: 0 },
): number | undefined {
  const t = text.trim();
  if (t === 'now') return nowUsec;
  if (t.startsWith('@')) {
    const v = parseTimespan(t.slice(1));
    return v;
  }
  if (t.startsWith('+')) {
    const v = parseTimespan(t.slice(1));
    return v === undefined ? undefined : nowUsec + v;
  }
  if (t.startsWith('-')) {
    const v = parseTimespan(t.slice(1));
    return v === undefined ? undefined : nowUsec - v;
  }
  if (t.endsWith(' ago')) {
    const v = parseTimespan(t.slice(0, -4));
    return v === undefined ? undefined : nowUsec - v;
  }
  if (t.endsWith(' left')) {
    const v = parseTimespan(t.slice(0, -5));
    return v === undefined ? undefined : nowUsec + v;
  }
  let rest = t;
  let zone = localZone;
  let utc = false;
  const space = rest.lastIndexOf(' ');
  const last = space >= 0 ? rest.slice(space + 1) : '';
  if (last === 'UTC' || last === 'Z') {
    utc = true;
    rest = rest.slice(0, space);
  } else if (rest.endsWith('Z') && /\dZ$/.test(rest)) {
    utc = true;
    rest = rest.slice(0, -1);
  } else if (space >= 0 && loadTimeZone(last) !== undefined && !/^\d/.test(last)) {
    zone = loadTimeZone(last) as TimeZone;
    rest = rest.slice(0, space);
  }
  const today = localtime(Math.floor(nowUsec / USEC_PER_SEC), zone);
  let y = today.year;
  let mo = today.mon + 1;
  let d = today.mday;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let frac = 0;
  const rel: Record<string, number> = { today: 0, yesterday: -1, tomorrow: 1 };
  if (Object.hasOwn(rel, rest)) {
    d += rel[rest] as number;
  } else {
    const m =
      /^(?:[A-Za-z]+ )?(?:(\d{4})-(\d{1,2})-(\d{1,2}))?(?:(?:^|[ T])(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(
        rest,
      );
    if (!m || (m[1] === undefined && m[4] === undefined)) return undefined;
    if (m[1] !== undefined) {
      y = Number(m[1]);
      mo = Number(m[2]);
      d = Number(m[3]);
    }
    if (m[4] !== undefined) {
      h = Number(m[4]);
      mi = Number(m[5]);
      sec = Number(m[6] ?? 0);
      frac = Number((m[7] ?? '').padEnd(6, '0'));
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return undefined;
  }
  let seconds: number;
  if (utc) {
    seconds = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  } else {
    const tm = new Tm();
    tm.year = y;
    tm.mon = mo - 1;
    tm.mday = d;
    tm.hour = h;
    tm.min = mi;
    tm.sec = sec;
    const r = mktime(tm, zone, zone === localZone ? state : { offset: 0 });
    if (r === undefined) return undefined;
    seconds = r;
  }
  return seconds * USEC_PER_SEC + frac;
}

export interface AnalyzeCalendarOptions {
  iterations: number;
  /** The base time, µs since the epoch. */
  baseUsec: number;
  /** "From now" is measured from this (systemd: the real clock, even with --base-time). */
  nowUsec: number;
  localZone: TimeZone;
  utcZone: TimeZone;
  strictSystemd: boolean;
  /** glibc's per-process mktime state, shared across expressions like systemd-analyze's process. */
  mktimeState?: MktimeState;
}

export interface AnalyzeCalendarOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([f]) => f.length + 1));
  return rows.map(([f, v]) => `${(f + ':').padStart(width)} ${v}\n`).join('');
}

/** One expression's block, or its error. */
function analyzeOne(expr: string, o: AnalyzeCalendarOptions): { out: string; err: string; ok: boolean } {
  const parsed = parseCalendarSpec(expr, { localAbbreviations: o.localZone.abbreviations() });
  if (!parsed.ok) {
    const e = parsed.error;
    const err =
      `Failed to parse calendar specification '${expr}': ${ERRNO_TEXT[e.code]}\n` +
      `  ${expr}\n  ${' '.repeat(e.position)}^ ${e.message} (position ${e.position})\n`;
    return { out: '', err, ok: false };
  }
  const spec = parsed.spec;
  const normalized = formatCalendarSpec(spec);
  const rows: [string, string][] = [];
  if (normalized !== expr) rows.push(['Original form', expr]);
  rows.push(['Normalized form', normalized]);
  const showUtc = !o.localZone.isUtc();
  let n = o.baseUsec;
  for (let i = 0; i < o.iterations; i++) {
    const next = computeNextElapse(spec, n, {
      strictSystemd: o.strictSystemd,
      localZone: o.localZone,
      mktimeState: o.mktimeState,
    });
    if (next.error === 'ENOENT') {
      if (i === 0) rows.push(['Next elapse', 'never']);
      break;
    }
    if (next.error !== undefined) {
      const text = next.error === 'EDEADLK' ? ERRNO_TEXT.EDEADLK : ERRNO_TEXT.EINVAL;
      return { out: '', err: `Failed to determine next elapse for '${expr}': ${text}\n`, ok: false };
    }
    rows.push([i === 0 ? 'Next elapse' : `Iter. #${i + 1}`, formatTimestamp(next.usec, o.localZone)]);
    if (showUtc) rows.push(['(in UTC)', formatTimestampUtc(next.usec, o.utcZone)]);
    rows.push(['From now', formatRelative(next.usec, o.nowUsec)]);
    n = next.usec;
  }
  return { out: table(rows), err: '', ok: true };
}

/** `systemd-analyze calendar` for each expression; exit code 1 when any failed. */
export function analyzeCalendar(exprs: readonly string[], o: AnalyzeCalendarOptions): AnalyzeCalendarOutput {
  let stdout = '';
  let stderr = '';
  let exitCode = 0;
  exprs.forEach((expr, k) => {
    const r = analyzeOne(expr, o);
    stdout += r.out;
    stderr += r.err;
    if (!r.ok) exitCode = 1;
    if (k + 1 < exprs.length) stdout += '\n';
  });
  return { stdout, stderr, exitCode };
}
