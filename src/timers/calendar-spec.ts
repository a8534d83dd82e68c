// Calendar events as systemd.time(7) defines them ("OnCalendar="): parsing into a typed
// CalendarSpec and printing the normalized form exactly as `systemd-analyze calendar` does.
// The grammar and its corner cases follow systemd's own parser (v252): what it accepts, what it
// refuses and with which errno, so that a unit file means the same to both. Unlike systemd, every
// error carries the character position where the expression stops making sense.
import { loadTimeZone, localTimeZone } from './time-zone';

export const MIN_YEAR = 1970;
export const MAX_YEAR = 2199;
export const USEC_PER_SEC = 1_000_000;
const INT_MAX = 2147483647;
/** systemd's CALENDARSPEC_COMPONENTS_MAX: the longest list one field may have. */
const COMPONENTS_MAX = 240;
const ALL_WEEKDAYS = 127;

/** One element of a field's list: `start`, `start..stop`, `start/repeat`, `start..stop/repeat`.
 * Seconds are held in microseconds. `stop` is -1 when there is none, `repeat` 0. */
export interface CalendarComponent {
  start: number;
  stop: number;
  repeat: number;
}

/** A field's list; null means `*`. */
export type CalendarChain = readonly CalendarComponent[] | null;

export interface CalendarSpec {
  /** Bit 0 = Monday ... bit 6 = Sunday; -1 = any day. */
  weekdays: number;
  year: CalendarChain;
  month: CalendarChain;
  /** With `endOfMonth`, days count back from the month's last day (`~`). */
  day: CalendarChain;
  endOfMonth: boolean;
  hour: CalendarChain;
  minute: CalendarChain;
  /** Seconds, in microseconds. */
  second: CalendarChain;
  utc: boolean;
  /** An IANA zone name the expression ended with, or undefined (local time). */
  timezone: string | undefined;
  /** The local zone's abbreviation the expression ended with: 0 standard, 1 DST, -1 none. */
  dst: -1 | 0 | 1;
  /** That abbreviation as the local zone spells it (printed in the normalized form). */
  dstName: string | undefined;
}

export type CalendarErrno = 'EINVAL' | 'ERANGE' | 'ENOBUFS';

export interface CalendarParseError {
  code: CalendarErrno;
  /** Zero-based character offset into the expression. */
  position: number;
  message: string;
}

export type CalendarParseResult = { ok: true; spec: CalendarSpec } | { ok: false; error: CalendarParseError };

export interface CalendarParseOptions {
  /** The local zone's tzname[0] and tzname[1] ("CET", "CEST"); default: from the local zone. */
  localAbbreviations?: readonly [string, string];
  /** Whether a trailing word names a time zone; default: a TZif file under /usr/share/zoneinfo. */
  zoneExists?: (name: string) => boolean;
}

/** strerror() of the errno, as systemd-analyze prints it. */
export const ERRNO_TEXT: Record<CalendarErrno | 'EDEADLK', string> = {
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOBUFS: 'No buffer space available',
  EDEADLK: 'Resource deadlock avoided',
};

class ParseFailure {
  constructor(
    readonly code: CalendarErrno,
    readonly position: number,
    readonly message: string,
  ) {}
}

interface Component extends CalendarComponent {
  pos: number;
}

type Chain = Component[] | null;

function fail(code: CalendarErrno, position: number, message: string): never {
  throw new ParseFailure(code, position, message);
}

const WEEKDAY_NAMES: [string, number][] = [
  ['monday', 0],
  ['mon', 0],
  ['tuesday', 1],
  ['tue', 1],
  ['wednesday', 2],
  ['wed', 2],
  ['thursday', 3],
  ['thu', 3],
  ['friday', 4],
  ['fri', 4],
  ['saturday', 5],
  ['sat', 5],
  ['sunday', 6],
  ['sun', 6],
];

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** The parser's state: the text (suffixes stripped) and a cursor. */
class Cursor {
  constructor(
    readonly s: string,
    public i = 0,
  ) {}
  at(k = 0): string | undefined {
    return this.s[this.i + k];
  }
  end(): boolean {
    return this.i >= this.s.length;
  }
  skipSpaces(): void {
    while (this.s[this.i] === ' ') this.i++;
  }
}

function parseWeekdays(c: Cursor, spec: { weekdays: number }): void {
  let l = -1;
  let first = true;
  for (;;) {
    const rest = c.s.slice(c.i, c.i + 9).toLowerCase();
    const hit = WEEKDAY_NAMES.find(([name]) => rest.startsWith(name));
    if (hit === undefined) {
      if (first) return;
      fail('EINVAL', c.i, 'expected a weekday');
    }
    const [name, nr] = hit;
    const next = c.s[c.i + name.length];
    if (next !== undefined && !'-.,  '.includes(next))
      fail('EINVAL', c.i + name.length, 'unexpected character after the weekday');
    spec.weekdays |= 1 << nr;
    if (l >= 0) {
      if (l > nr) fail('EINVAL', c.i, 'weekday range runs backwards');
      for (let j = l + 1; j < nr; j++) spec.weekdays |= 1 << j;
    }
    c.i += name.length;
    if (c.end()) return;
    if (c.at() === ' ') {
      c.skipSpaces();
      return;
    }
    if (c.at() === '.') {
      if (l >= 0) fail('EINVAL', c.i, 'a weekday range cannot continue');
      if (c.at(1) !== '.') fail('EINVAL', c.i + 1, "expected '..'");
      l = nr;
      c.i += 2;
    } else if (c.at() === '-') {
      if (l >= 0) fail('EINVAL', c.i, 'a weekday range cannot continue');
      l = nr;
      c.i += 1;
    } else if (c.at() === ',') {
      l = -1;
      c.i += 1;
    }
    if (c.end() || c.at() === ' ') {
      if (l >= 0) fail('EINVAL', c.i, 'weekday range without an end');
      c.skipSpaces();
      return;
    }
    first = false;
  }
}

/** strtoul() on decimal digits: the value, or ERANGE past 2^64-1. */
function readDigits(c: Cursor): bigint | number {
  const start = c.i;
  while (isDigit(c.at())) c.i++;
  const text = c.s.slice(start, c.i);
  if (text.length <= 15) return Number(text);
  const v = BigInt(text);
  if (v > 0xffffffffffffffffn) fail('ERANGE', start, 'number out of range');
  return v;
}

function parseDecimal(c: Cursor, usec: boolean): number {
  const pos = c.i;
  if (!isDigit(c.at())) fail('EINVAL', c.i, 'expected a number');
  let value = BigInt(readDigits(c));
  if (usec) {
    if (value * 1000000n > 0xffffffffffffffffn) fail('ERANGE', pos, 'number out of range');
    value *= 1000000n;
    if (c.at() === '.' && c.at(1) !== '.') {
      c.i++;
      if (!isDigit(c.at())) fail('EINVAL', c.i, 'expected digits after the decimal point');
      let frac = 0;
      let k = 0;
      for (; k < 6 && isDigit(c.at()); k++, c.i++) frac = frac * 10 + Number(c.at());
      for (; k < 6; k++) frac *= 10;
      const next = c.at();
      if (next !== undefined && next >= '5' && next <= '9') frac++;
      while (isDigit(c.at())) c.i++;
      value += BigInt(frac);
    }
  }
  if (value > BigInt(INT_MAX)) fail('ERANGE', pos, 'number out of range');
  return Number(value);
}

function parseComponents(c: Cursor, usec: boolean): Component[] {
  const out: Component[] = [];
  for (let nesting = 0; ; nesting++) {
    if (nesting > COMPONENTS_MAX) fail('ENOBUFS', c.i, `more than ${COMPONENTS_MAX + 1} values in one field`);
    const pos = c.i;
    const start = parseDecimal(c, usec);
    let stop = -1;
    let repeat = 0;
    if (c.at() === '.' && c.at(1) === '.') {
      c.i += 2;
      stop = parseDecimal(c, usec);
      repeat = usec ? USEC_PER_SEC : 1;
    }
    if (c.at() === '/') {
      c.i++;
      const rpos = c.i;
      repeat = parseDecimal(c, usec);
      if (repeat === 0) fail('ERANGE', rpos, 'repetition of zero');
    } else {
      if (start > INT_MAX - repeat) fail('ERANGE', pos, 'number out of range');
      if (usec && stop >= 0 && start + repeat > stop)
        fail('EINVAL', pos, 'range of seconds shorter than one second');
    }
    const next = c.at();
    if (next !== undefined && !' ,-~:'.includes(next)) fail('EINVAL', c.i, `unexpected '${next}'`);
    out.push({ start, stop, repeat, pos });
    if (next !== ',') return out;
    c.i++;
  }
}

function parseChain(c: Cursor, usec: boolean): Chain {
  if (c.at() === '*') {
    const pos = c.i;
    c.i++;
    return usec ? [{ start: 0, stop: -1, repeat: USEC_PER_SEC, pos }] : null;
  }
  return parseComponents(c, usec);
}

const constChain = (...values: number[]): Component[] =>
  values.map((v) => ({ start: v, stop: -1, repeat: 0, pos: 0 }));

interface Draft {
  weekdays: number;
  year: Chain;
  month: Chain;
  day: Chain;
  endOfMonth: boolean;
  hour: Chain;
  minute: Chain;
  second: Chain;
  utc: boolean;
}

/** `@SECONDS`: strtoul's view of the number (leading spaces, a sign), then a UTC date and time. */
function parseEpoch(c: Cursor, d: Draft): void {
  const pos = c.i;
  c.i++;
  let j = c.i;
  while (j < c.s.length && ' \t\n\v\f\r'.includes(c.s[j])) j++;
  let negative = false;
  if (c.s[j] === '+' || c.s[j] === '-') {
    negative = c.s[j] === '-';
    j++;
  }
  if (!isDigit(c.s[j])) fail('EINVAL', c.i, 'expected seconds since the epoch');
  c.i = j;
  let v = BigInt(readDigits(c));
  if (negative) v = (0x10000000000000000n - v) & 0xffffffffffffffffn;
  // time_t is signed 64-bit: reinterpret.
  const t = v >= 0x8000000000000000n ? v - 0x10000000000000000n : v;
  const year1970 = t / 31556952n + 1970n;
  if (year1970 > 2147483647n || year1970 < -2147483648n + 1900n)
    fail('ERANGE', pos, 'timestamp out of range');
  const date = new Date(Number(t) * 1000);
  const year = Number.isNaN(date.getTime()) ? Number(year1970) : date.getUTCFullYear();
  d.utc = true;
  d.year = constChain(year);
  d.month = constChain(date.getUTCMonth() + 1);
  d.day = constChain(date.getUTCDate());
  d.hour = constChain(date.getUTCHours());
  d.minute = constChain(date.getUTCMinutes());
  d.second = constChain(date.getUTCSeconds() * USEC_PER_SEC);
  for (const chain of [d.year, d.month, d.day, d.hour, d.minute, d.second])
    for (const k of chain) k.pos = pos;
}

/** Returns true when the date part was `@SECONDS` (no time follows). */
function parseDate(c: Cursor, d: Draft): boolean {
  if (c.end()) return false;
  if (c.at() === '@') {
    parseEpoch(c, d);
    return true;
  }
  const begin = c.i;
  const first = parseChain(c, false);
  if (c.end() || c.at() === ':') {
    // That was an hour, not a date: the time parser reads it again.
    c.i = begin;
    return false;
  }
  if (c.at() === '~') d.endOfMonth = true;
  else if (c.at() !== '-') fail('EINVAL', c.i, "expected '-' or '~' in the date");
  c.i++;
  const second = parseChain(c, false);
  if (c.end() || c.at() === ' ') {
    c.skipSpaces();
    d.month = first;
    d.day = second;
    return false;
  }
  if (d.endOfMonth) fail('EINVAL', c.i, "'~' must come before the day");
  if (c.at() === '~') d.endOfMonth = true;
  else if (c.at() !== '-') fail('EINVAL', c.i, "expected '-' or '~' in the date");
  c.i++;
  const third = parseChain(c, false);
  if (!c.end() && c.at() !== ' ') fail('EINVAL', c.i, 'unexpected character after the date');
  c.skipSpaces();
  d.year = first;
  d.month = second;
  d.day = third;
  return false;
}

function parseTime(c: Cursor, d: Draft): void {
  if (c.end()) {
    d.hour = constChain(0);
    d.minute = constChain(0);
    d.second = constChain(0);
    return;
  }
  const hour = parseChain(c, false);
  if (c.at() !== ':') fail('EINVAL', c.i, "expected ':' after the hour");
  c.i++;
  const minute = parseChain(c, false);
  let second: Chain = constChain(0);
  if (!c.end()) {
    if (c.at() !== ':') fail('EINVAL', c.i, "expected ':' after the minute");
    c.i++;
    second = parseChain(c, true);
    if (!c.end()) fail('EINVAL', c.i, 'unexpected text after the time');
  }
  d.hour = hour;
  d.minute = minute;
  d.second = second;
}

const SHORTHANDS: Record<string, Partial<Draft>> = {
  minutely: { second: constChain(0) },
  hourly: { minute: constChain(0), second: constChain(0) },
  daily: { hour: constChain(0), minute: constChain(0), second: constChain(0) },
  monthly: { day: constChain(1), hour: constChain(0), minute: constChain(0), second: constChain(0) },
  weekly: { weekdays: 1, hour: constChain(0), minute: constChain(0), second: constChain(0) },
  yearly: {
    month: constChain(1),
    day: constChain(1),
    hour: constChain(0),
    minute: constChain(0),
    second: constChain(0),
  },
  quarterly: {
    month: constChain(1, 4, 7, 10),
    day: constChain(1),
    hour: constChain(0),
    minute: constChain(0),
    second: constChain(0),
  },
  semiannually: {
    month: constChain(1, 7),
    day: constChain(1),
    hour: constChain(0),
    minute: constChain(0),
    second: constChain(0),
  },
};
SHORTHANDS.annually = SHORTHANDS.anually = SHORTHANDS.yearly;
SHORTHANDS.biannually = SHORTHANDS['bi-annually'] = SHORTHANDS['semi-annually'] = SHORTHANDS.semiannually;

function normalizeChain(chain: Chain): Chain {
  if (chain === null) return null;
  const items = chain.map((k) => {
    const n = { ...k };
    if (n.stop > n.start && n.repeat > 0) n.stop -= (n.stop - n.start) % n.repeat;
    if ((n.stop > n.start && n.repeat > 0 && n.start + n.repeat > n.stop) || n.start === n.stop) {
      n.repeat = 0;
      n.stop = -1;
    }
    return n;
  });
  items.sort((a, b) => a.start - b.start || a.stop - b.stop || a.repeat - b.repeat);
  return items.filter(
    (k, i) =>
      i === 0 ||
      k.start !== items[i - 1].start ||
      k.stop !== items[i - 1].stop ||
      k.repeat !== items[i - 1].repeat,
  );
}

function fixYear(chain: Chain): void {
  for (const k of chain ?? []) {
    if (k.start >= 0 && k.start < 70) k.start += 2000;
    if (k.stop >= 0 && k.stop < 70) k.stop += 2000;
    if (k.start >= 70 && k.start < 100) k.start += 1900;
    if (k.stop >= 70 && k.stop < 100) k.stop += 1900;
  }
}

/** systemd's chain_valid: the first component out of bounds, or undefined. */
function invalidComponent(
  chain: Chain,
  from: number,
  to: number,
  endOfMonth: boolean,
): Component | undefined {
  for (const k of chain ?? []) {
    // systemd recurses down the list with the already-lowered bound, so with `~` each further
    // element must lie another 3 days short of the month's end ("*~5,25" is valid, "*~5,27" not).
    if (endOfMonth) to -= 3;
    if (k.start < from || k.start > to || k.repeat > to - from) return k;
    if (k.stop >= 0) {
      if (k.stop < from || k.stop > to || k.start + k.repeat > k.stop) return k;
    } else if (endOfMonth ? k.start - k.repeat < from : k.start + k.repeat > to) return k;
  }
  return undefined;
}

function defaultZoneExists(name: string): boolean {
  return loadTimeZone(name) !== undefined;
}

let localAbbrCache: readonly [string, string] | undefined;

function defaultLocalAbbreviations(): readonly [string, string] {
  localAbbrCache ??= localTimeZone().abbreviations();
  return localAbbrCache;
}

/** Parses an OnCalendar= expression. Never throws: bad input gives an error with its position. */
export function parseCalendarSpec(input: string, options: CalendarParseOptions = {}): CalendarParseResult {
  try {
    return { ok: true, spec: parseOrThrow(input, options) };
  } catch (e) {
    if (e instanceof ParseFailure)
      return { ok: false, error: { code: e.code, position: e.position, message: e.message } };
    throw e;
  }
}

function parseOrThrow(input: string, options: CalendarParseOptions): CalendarSpec {
  let p = input;
  let utc = false;
  let timezone: string | undefined;
  let dst: -1 | 0 | 1 = -1;
  let dstName: string | undefined;
  if (p.length >= 4 && p.slice(-4).toUpperCase() === ' UTC') {
    utc = true;
    p = p.slice(0, -4);
  } else {
    const abbrs = options.localAbbreviations ?? defaultLocalAbbreviations();
    let found = -1;
    let cut = 0;
    for (let j = 0; j <= 1; j++) {
      const a = abbrs[j];
      if (a === '' || a.length > p.length) continue;
      if (p.slice(p.length - a.length).toLowerCase() !== a.toLowerCase()) continue;
      const e = p.length - a.length;
      if (e === 0 || p[e - 1] !== ' ') continue;
      found = j;
      cut = e - 1;
      break;
    }
    if (found >= 0) {
      dst = found as 0 | 1;
      dstName = abbrs[found];
      p = p.slice(0, cut);
    } else {
      const space = p.lastIndexOf(' ');
      const zoneExists = options.zoneExists ?? defaultZoneExists;
      if (space >= 0 && zoneExists(p.slice(space + 1))) {
        timezone = p.slice(space + 1);
        p = p.slice(0, space);
      }
    }
  }
  if (p === '') fail('EINVAL', 0, 'empty expression');
  const d: Draft = {
    weekdays: 0,
    year: null,
    month: null,
    day: null,
    endOfMonth: false,
    hour: null,
    minute: null,
    second: null,
    utc,
  };
  // Own keys only: 'constructor' or '__proto__' found Object's members and parsed as '*-*-* *:*:*'.
  const word = p.toLowerCase();
  const shorthand = Object.hasOwn(SHORTHANDS, word) ? SHORTHANDS[word] : undefined;
  if (shorthand !== undefined) {
    Object.assign(d, shorthand);
  } else {
    const c = new Cursor(p);
    parseWeekdays(c, d);
    if (!parseDate(c, d)) parseTime(c, d);
    if (!c.end()) fail('EINVAL', c.i, 'unexpected text after the expression');
  }
  // calendar_spec_normalize
  if (timezone === 'UTC') {
    d.utc = true;
    timezone = undefined;
  }
  if (d.weekdays <= 0 || d.weekdays >= ALL_WEEKDAYS) d.weekdays = -1;
  if (d.endOfMonth && d.day === null) d.endOfMonth = false;
  if (d.year !== null) d.year = d.year.map((k) => ({ ...k }));
  fixYear(d.year);
  const year = normalizeChain(d.year);
  const month = normalizeChain(d.month);
  const day = normalizeChain(d.day);
  const hour = normalizeChain(d.hour);
  const minute = normalizeChain(d.minute);
  const second = normalizeChain(d.second);
  // calendar_spec_valid
  const checks: [Chain, number, number, boolean, string][] = [
    [year, MIN_YEAR, MAX_YEAR, false, 'year'],
    [month, 1, 12, false, 'month'],
    [day, 1, 31, d.endOfMonth, 'day'],
    [hour, 0, 23, false, 'hour'],
    [minute, 0, 59, false, 'minute'],
    [second, 0, 60 * USEC_PER_SEC - 1, false, 'second'],
  ];
  for (const [chain, from, to, eom, what] of checks) {
    const bad = invalidComponent(chain, from, to, eom);
    if (bad !== undefined) fail('EINVAL', bad.pos, `${what} out of range`);
  }
  const strip = (chain: Chain): CalendarChain =>
    chain === null ? null : chain.map(({ start, stop, repeat }) => ({ start, stop, repeat }));
  return {
    weekdays: d.weekdays,
    year: strip(year),
    month: strip(month),
    day: strip(day),
    endOfMonth: d.endOfMonth,
    hour: strip(hour),
    minute: strip(minute),
    second: strip(second),
    utc: d.utc,
    timezone,
    dst,
    dstName,
  };
}

const DAY_ABBR = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function formatWeekdays(bits: number): string {
  let out = '';
  let l = -1;
  let x = 0;
  const closeRun = (): void => {
    if (x > l + 1) out += (x > l + 2 ? '..' : ',') + DAY_ABBR[x - 1];
  };
  for (; x < 7; x++) {
    if (bits & (1 << x)) {
      if (l < 0) {
        if (out !== '') out += ',';
        out += DAY_ABBR[x];
        l = x;
      }
    } else if (l >= 0) {
      closeRun();
      l = -1;
    }
  }
  if (l >= 0) closeRun();
  return out;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function formatChain(chain: CalendarChain, width: number, usec: boolean): string {
  if (chain === null) return '*';
  const d = usec ? USEC_PER_SEC : 1;
  if (usec && chain.some((k) => k.start === 0 && k.stop < 0 && k.repeat === USEC_PER_SEC)) return '*';
  const frac = (v: number): string => (v % d > 0 ? '.' + pad(v % d, 6) : '');
  return chain
    .map((k) => {
      let s = pad(Math.trunc(k.start / d), width) + frac(k.start);
      if (k.stop > 0) s += '..' + pad(Math.trunc(k.stop / d), width);
      if (k.stop > 0) s += frac(k.stop);
      if (k.repeat > 0 && !(k.stop > 0 && k.repeat === d)) s += '/' + String(Math.trunc(k.repeat / d));
      s += frac(k.repeat);
      return s;
    })
    .join(',');
}

/** The normalized form, as `systemd-analyze calendar` prints it ("Normalized form:"). */
export function formatCalendarSpec(spec: CalendarSpec): string {
  let s = '';
  if (spec.weekdays > 0 && spec.weekdays <= ALL_WEEKDAYS) s += formatWeekdays(spec.weekdays) + ' ';
  s += formatChain(spec.year, 4, false) + '-';
  s += formatChain(spec.month, 2, false) + (spec.endOfMonth ? '~' : '-');
  s += formatChain(spec.day, 2, false) + ' ';
  s += formatChain(spec.hour, 2, false) + ':';
  s += formatChain(spec.minute, 2, false) + ':';
  s += formatChain(spec.second, 2, true);
  if (spec.utc) s += ' UTC';
  else if (spec.timezone !== undefined) s += ' ' + spec.timezone;
  else if (spec.dst >= 0 && spec.dstName) s += ' ' + spec.dstName;
  return s;
}
