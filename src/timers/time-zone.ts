// Time zones read from the system's TZif files (/usr/share/zoneinfo), the files glibc reads for
// systemd. Why not Node's Intl: Intl carries ICU's own copy of the tz database (its version need not
// match the system's), gives no "CET"/"CEST" abbreviations in most locales, and costs about a
// microsecond per formatToParts call; reading the same files as glibc gives the same offsets as
// systemd by construction, including the POSIX TZ footer rule used past the last transition.
// A zone answers one question fast: which offset interval contains instant t (seconds)?
import fs = require('node:fs');
import path = require('node:path');

export const ZONEINFO_DIR = '/usr/share/zoneinfo';

/** One stretch of time with a single UTC offset: [start, end) in seconds since the epoch. */
export interface ZoneInterval {
  start: number;
  end: number;
  /** Seconds east of UTC (tm_gmtoff). */
  offset: number;
  isdst: boolean;
  abbr: string;
}

interface LocalTimeType {
  offset: number;
  isdst: boolean;
  abbr: string;
}

/** A POSIX TZ date rule: Jn (julian, no Feb 29), n (zero-based day of year), or Mm.w.d. */
type DateRule =
  | { kind: 'J'; day: number; secs: number }
  | { kind: 'N'; day: number; secs: number }
  | { kind: 'M'; month: number; week: number; weekday: number; secs: number };

/** A POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3`. */
export interface PosixTz {
  std: LocalTimeType;
  dst?: LocalTimeType;
  start?: DateRule;
  end?: DateRule;
}

const DAY = 86400;

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1..12; day may be out of range). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The UTC calendar year of an instant (seconds). */
function utcYear(t: number): number {
  const days = Math.floor(t / DAY);
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const m = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (m <= 2 ? 1 : 0);
}

/** When a POSIX rule's change happens in `year`, as seconds since the epoch (glibc's compute_change). */
function ruleChange(rule: DateRule, year: number, offset: number): number {
  let day: number;
  if (rule.kind === 'J') {
    day = daysFromCivil(year, 1, 1) + rule.day - 1 + (isLeapYear(year) && rule.day >= 60 ? 1 : 0);
  } else if (rule.kind === 'N') {
    day = daysFromCivil(year, 1, 1) + rule.day;
  } else {
    const first = daysFromCivil(year, rule.month, 1);
    const wdayFirst = (((first + 4) % 7) + 7) % 7;
    let d = ((rule.weekday - wdayFirst + 7) % 7) + (rule.week - 1) * 7;
    const dim = daysFromCivil(year, rule.month + 1, 1) - first;
    while (d >= dim) d -= 7;
    day = first + d;
  }
  return day * DAY + rule.secs - offset;
}

/** Parses a POSIX TZ string; undefined when it is not one this module understands. */
export function parsePosixTz(s: string): PosixTz | undefined {
  let i = 0;
  const name = (): string | undefined => {
    if (s[i] === '<') {
      const close = s.indexOf('>', i);
      if (close < 0) return undefined;
      const n = s.slice(i + 1, close);
      i = close + 1;
      return n;
    }
    const m = /^[A-Za-z]{3,}/.exec(s.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const hms = (): number | undefined => {
    const m = /^([+-]?)(\d{1,3})(?::(\d{1,2}))?(?::(\d{1,2}))?/.exec(s.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    const v = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
    return m[1] === '-' ? -v : v;
  };
  const rule = (): DateRule | undefined => {
    let r: DateRule;
    let m: RegExpExecArray | null;
    const rest = s.slice(i);
    if ((m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(rest))) {
      r = { kind: 'M', month: Number(m[1]), week: Number(m[2]), weekday: Number(m[3]), secs: 7200 };
    } else if ((m = /^J(\d{1,3})/.exec(rest))) {
      r = { kind: 'J', day: Number(m[1]), secs: 7200 };
    } else if ((m = /^(\d{1,3})/.exec(rest))) {
      r = { kind: 'N', day: Number(m[1]), secs: 7200 };
    } else return undefined;
    i += m[0].length;
    if (s[i] === '/') {
      i++;
      const t = hms();
      if (t === undefined) return undefined;
      r.secs = t;
    }
    return r;
  };
  const stdName = name();
  if (stdName === undefined) return undefined;
  const stdOff = hms();
  if (stdOff === undefined) return undefined;
  const result: PosixTz = { std: { offset: -stdOff, isdst: false, abbr: stdName } };
  if (i >= s.length) return result;
  const dstName = name();
  if (dstName === undefined) return undefined;
  let dstOffset = -stdOff + 3600;
  if (i < s.length && s[i] !== ',') {
    const o = hms();
    if (o === undefined) return undefined;
    dstOffset = -o;
  }
  result.dst = { offset: dstOffset, isdst: true, abbr: dstName };
  if (s[i] !== ',') {
    // No rule given: POSIX leaves it to the implementation; glibc uses the US rules.
    result.start = { kind: 'M', month: 3, week: 2, weekday: 0, secs: 7200 };
    result.end = { kind: 'M', month: 11, week: 1, weekday: 0, secs: 7200 };
    return i >= s.length ? result : undefined;
  }
  i++;
  const start = rule();
  if (start === undefined || s[i] !== ',') return undefined;
  i++;
  const end = rule();
  if (end === undefined || i !== s.length) return undefined;
  result.start = start;
  result.end = end;
  return result;
}

export class TimeZone {
  /** Transition instants (seconds) and the type in effect from each one on. */
  private readonly times: Float64Array;
  private readonly typeOf: LocalTimeType[];
  /** The type before the first transition (glibc: the first non-DST type). */
  private readonly initial: LocalTimeType;
  private readonly rule: PosixTz | undefined;
  private cache: ZoneInterval;
  private readonly ruleYears = new Map<number, [number, number]>();

  constructor(
    readonly name: string,
    times: number[],
    types: LocalTimeType[],
    initial: LocalTimeType,
    rule: PosixTz | undefined,
  ) {
    this.times = Float64Array.from(times);
    this.typeOf = types;
    this.initial = initial;
    this.rule = rule;
    this.cache = this.compute(0);
  }

  /** The interval holding instant t (seconds since the epoch). */
  intervalAt(t: number): ZoneInterval {
    const c = this.cache;
    if (t >= c.start && t < c.end) return c;
    const iv = this.compute(t);
    this.cache = iv;
    return iv;
  }

  /** glibc's tzname[0] and tzname[1] for this zone as the local zone (what the parser compares to). */
  abbreviations(): [string, string] {
    if (this.rule !== undefined) return [this.rule.std.abbr, (this.rule.dst ?? this.rule.std).abbr];
    let std: string | undefined;
    let dst: string | undefined;
    for (let i = this.typeOf.length - 1; i >= 0 && (std === undefined || dst === undefined); i--) {
      const ty = this.typeOf[i];
      if (ty.isdst) dst ??= ty.abbr;
      else std ??= ty.abbr;
    }
    std ??= this.initial.abbr;
    return [std, dst ?? std];
  }

  /** glibc's in_utc_timezone(): standard offset 0 and no daylight saving time. */
  isUtc(): boolean {
    if (this.rule !== undefined) return this.rule.std.offset === 0 && this.rule.dst === undefined;
    return this.typeOf.every((t) => t.offset === 0 && !t.isdst) && this.initial.offset === 0;
  }

  private compute(t: number): ZoneInterval {
    const n = this.times.length;
    if (n === 0 || t < this.times[0]) {
      if (n === 0 && this.rule !== undefined) return this.ruleInterval(t, -Infinity);
      return { start: -Infinity, end: n === 0 ? Infinity : this.times[0], ...this.initial };
    }
    if (t >= this.times[n - 1] && this.rule !== undefined) return this.ruleInterval(t, this.times[n - 1]);
    let lo = 0;
    let hi = n;
    // The last transition <= t.
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid] <= t) lo = mid;
      else hi = mid;
    }
    return { start: this.times[lo], end: lo + 1 < n ? this.times[lo + 1] : Infinity, ...this.typeOf[lo] };
  }

  private changes(year: number): [number, number] {
    let c = this.ruleYears.get(year);
    if (c === undefined) {
      const r = this.rule as PosixTz;
      const dst = r.dst as LocalTimeType;
      c = [
        ruleChange(r.start as DateRule, year, r.std.offset),
        ruleChange(r.end as DateRule, year, dst.offset),
      ];
      if (this.ruleYears.size > 512) this.ruleYears.clear();
      this.ruleYears.set(year, c);
    }
    return c;
  }

  /** glibc's __tz_compute: DST by the rule's changes in t's UTC year; the interval is cut at the
   * neighbouring changes (and never reaches back before `floor`, the last TZif transition). */
  private ruleInterval(t: number, floor: number): ZoneInterval {
    const r = this.rule as PosixTz;
    if (r.dst === undefined) return { start: floor, end: Infinity, ...r.std };
    const y = utcYear(t);
    const [s, e] = this.changes(y);
    const isdst = s > e ? t < e || t >= s : t >= s && t < e;
    const bounds = [
      ...this.changes(y - 1),
      s,
      e,
      ...this.changes(y + 1),
      Date.UTC(y, 0, 1) / 1000,
      Date.UTC(y + 1, 0, 1) / 1000,
    ].sort((a, b) => a - b);
    let start = floor;
    let end = Infinity;
    for (const b of bounds) {
      if (b <= t && b > start) start = b;
      if (b > t && b < end) end = b;
    }
    return { start, end, ...(isdst ? r.dst : r.std) };
  }
}

/** Parses TZif bytes (versions 1-4; the 64-bit block and footer when present). */
export function parseTzif(name: string, buf: Buffer): TimeZone | undefined {
  if (buf.length < 44 || buf.toString('latin1', 0, 4) !== 'TZif') return undefined;
  const version = buf[4];
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((k) => buf.readUInt32BE(at + 20 + 4 * k));
  let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0);
  let at = 44;
  let timeSize = 4;
  if (version >= 0x32) {
    at += timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    if (buf.length < at + 44 || buf.toString('latin1', at, at + 4) !== 'TZif') return undefined;
    [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(at);
    at += 44;
    timeSize = 8;
  }
  const need = timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leap * (timeSize + 4) + isstd + isut;
  if (typecnt === 0 || buf.length < at + need) return undefined;
  const times: number[] = [];
  for (let k = 0; k < timecnt; k++) {
    times.push(timeSize === 8 ? Number(buf.readBigInt64BE(at + 8 * k)) : buf.readInt32BE(at + 4 * k));
  }
  at += timecnt * timeSize;
  const idx = [...buf.subarray(at, at + timecnt)];
  at += timecnt;
  const typesAt = at;
  at += typecnt * 6;
  const chars = buf.toString('latin1', at, at + charcnt);
  at += charcnt + leap * (timeSize + 4) + isstd + isut;
  const types: LocalTimeType[] = [];
  for (let k = 0; k < typecnt; k++) {
    const o = typesAt + 6 * k;
    const ai = buf[o + 5];
    const end = chars.indexOf('\0', ai);
    types.push({
      offset: buf.readInt32BE(o),
      isdst: buf[o + 4] !== 0,
      abbr: chars.slice(ai, end < 0 ? undefined : end),
    });
  }
  if (idx.some((k) => k >= typecnt)) return undefined;
  let rule: PosixTz | undefined;
  if (timeSize === 8 && buf[at] === 0x0a) {
    const nl = buf.indexOf(0x0a, at + 1);
    if (nl > at + 1) rule = parsePosixTz(buf.toString('latin1', at + 1, nl));
  }
  const initial = types.find((t) => !t.isdst) ?? types[0];
  return new TimeZone(
    name,
    times,
    idx.map((k) => types[k]),
    initial,
    rule,
  );
}

/** systemd's verify_timezone() on the name (the file check is separate). */
export function isTimeZoneNameSyntax(name: string): boolean {
  if (name === '' || name[0] === '/' || name.length >= 4096) return false;
  let slash = false;
  for (const ch of name) {
    if (!/[0-9A-Za-z\-_+/]/.test(ch)) return false;
    if (ch === '/') {
      if (slash) return false;
      slash = true;
    } else slash = false;
  }
  return !slash;
}

const zoneCache = new Map<string, TimeZone | null>();

/** The zone named `name` from /usr/share/zoneinfo, or undefined (not valid, missing, not TZif). */
export function loadTimeZone(name: string, dir = ZONEINFO_DIR): TimeZone | undefined {
  const key = `${dir}\0${name}`;
  const hit = zoneCache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  let zone: TimeZone | undefined;
  if (isTimeZoneNameSyntax(name)) {
    try {
      const file = path.join(dir, name);
      if (fs.statSync(file).isFile()) zone = parseTzif(name, fs.readFileSync(file));
    } catch {
      zone = undefined;
    }
  }
  if (zone === undefined && name === 'UTC') zone = UTC_ZONE;
  zoneCache.set(key, zone ?? null);
  return zone;
}

export const UTC_ZONE = new TimeZone('UTC', [], [], { offset: 0, isdst: false, abbr: 'UTC' }, undefined);

/** The process's local zone as glibc would pick it: $TZ (a name, ":name", a path, or a POSIX
 * string), else /etc/localtime, else UTC. */
export function localTimeZone(env: NodeJS.ProcessEnv = process.env): TimeZone {
  const tz = env.TZ;
  if (tz === undefined) {
    try {
      let name = 'localtime';
      try {
        const target = fs.readlinkSync('/etc/localtime');
        const m = /zoneinfo\/(.+)$/.exec(target);
        if (m) name = m[1];
      } catch {
        // not a symbolic link: the name stays "localtime"
      }
      return parseTzif(name, fs.readFileSync('/etc/localtime')) ?? UTC_ZONE;
    } catch {
      return UTC_ZONE;
    }
  }
  const spec = tz.startsWith(':') ? tz.slice(1) : tz;
  if (spec === '') return UTC_ZONE;
  if (spec.startsWith('/')) {
    try {
      return parseTzif(spec, fs.readFileSync(spec)) ?? UTC_ZONE;
    } catch {
      return UTC_ZONE;
    }
  }
  const named = loadTimeZone(spec);
  if (named !== undefined) return named;
  const posix = parsePosixTz(spec);
  if (posix !== undefined) return new TimeZone(spec, [], [], posix.std, posix);
  return UTC_ZONE;
}
