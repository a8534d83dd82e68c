// struct tm and the C library calls systemd's calendar code makes on it: localtime_r/gmtime_r and
// mktime/timegm. mktime is modelled on glibc's __mktime_internal (probing from the offset of the
// previous call, its rule for spring-forward gaps and its search when tm_isdst is set), because
// systemd's results around DST transitions are whatever glibc's mktime makes of a nonexistent or
// repeated local time. The model keeps glibc's per-process "previous offset" in an explicit
// MktimeState so callers decide whose process they are imitating.
import { daysFromCivil, type TimeZone } from './time-zone';

/** A broken-down time; `year` is the full year (glibc's tm_year + 1900), `mon` is 0..11.
 * A class with one shape, filled in place, because the search makes several per step. */
export class Tm {
  year = 1970;
  mon = 0;
  mday = 1;
  hour = 0;
  min = 0;
  sec = 0;
  /** -1 unknown, 0 standard, 1 daylight saving time. */
  isdst = -1;
  wday = 4;
  yday = 0;
  gmtoff = 0;
  zone = '';

  copyFrom(o: Tm): this {
    this.year = o.year;
    this.mon = o.mon;
    this.mday = o.mday;
    this.hour = o.hour;
    this.min = o.min;
    this.sec = o.sec;
    this.isdst = o.isdst;
    this.wday = o.wday;
    this.yday = o.yday;
    this.gmtoff = o.gmtoff;
    this.zone = o.zone;
    return this;
  }

  clone(): Tm {
    return new Tm().copyFrom(this);
  }
}

/** glibc's static localtime_offset: the UTC offset mktime found last time, its first guess. */
export interface MktimeState {
  offset: number;
}

export function copyTm(t: Tm): Tm {
  return t.clone();
}

const MON_YDAY = [
  [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
  [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

/** Fills `out` with the broken-down time of instant t (seconds) at a fixed offset. */
export function breakDownInto(out: Tm, t: number, offset: number, isdst: number, zone: string): Tm {
  const local = t + offset;
  const days = Math.floor(local / 86400);
  const rem = local - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const mday = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const mon = mp < 10 ? mp + 2 : mp - 10;
  const year = yoe + era * 400 + (mon <= 1 ? 1 : 0);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 1 : 0;
  const hour = Math.floor(rem / 3600);
  const min = Math.floor((rem - hour * 3600) / 60);
  out.year = year;
  out.mon = mon;
  out.mday = mday;
  out.hour = hour;
  out.min = min;
  out.sec = rem - hour * 3600 - min * 60;
  out.isdst = isdst;
  out.wday = (((days + 4) % 7) + 7) % 7;
  out.yday = MON_YDAY[leap][mon] + mday - 1;
  out.gmtoff = offset;
  out.zone = zone;
  return out;
}

export function breakDown(t: number, offset: number, isdst: number, zone: string): Tm {
  return breakDownInto(new Tm(), t, offset, isdst, zone);
}

export function gmtime(t: number): Tm {
  return breakDownInto(new Tm(), t, 0, 0, 'GMT');
}

export function localtimeInto(out: Tm, t: number, zone: TimeZone): Tm {
  const iv = zone.intervalAt(t);
  return breakDownInto(out, t, iv.offset, iv.isdst ? 1 : 0, iv.abbr);
}

export function localtime(t: number, zone: TimeZone): Tm {
  return localtimeInto(new Tm(), t, zone);
}

/** timegm(): normalizes *tm in place and returns the instant. */
export function timegm(tm: Tm): number {
  const mon = tm.mon;
  const y = tm.year + Math.floor(mon / 12);
  const m = mon - Math.floor(mon / 12) * 12;
  const days = daysFromCivil(y, m + 1, 1) + tm.mday - 1;
  const t = days * 86400 + tm.hour * 3600 + tm.min * 60 + tm.sec;
  breakDownInto(tm, t, 0, 0, 'GMT');
  return t;
}

/** glibc's ydhms_diff: (year1-yday1 h1:m1:s1) - (year0-yday0 h0:m0:s0) in seconds, years as tm_year. */
function ydhmsDiff(
  year1: number,
  yday1: number,
  hour1: number,
  min1: number,
  sec1: number,
  year0: number,
  yday0: number,
  hour0: number,
  min0: number,
  sec0: number,
): number {
  const a4 = (year1 >> 2) + (1900 >> 2) - ((year1 & 3) === 0 ? 1 : 0);
  const b4 = (year0 >> 2) + (1900 >> 2) - ((year0 & 3) === 0 ? 1 : 0);
  const a100 = Math.floor(a4 / 25);
  const b100 = Math.floor(b4 / 25);
  const a400 = a100 >> 2;
  const b400 = b100 >> 2;
  const leaps = a4 - b4 - (a100 - b100) + (a400 - b400);
  const days = 365 * (year1 - year0) + yday1 - yday0 + leaps;
  return 60 * (60 * (24 * days + hour1 - hour0) + min1 - min0) + sec1 - sec0;
}

function isdstDiffer(a: number, b: number): boolean {
  return !a !== !b && a >= 0 && b >= 0;
}

function leapTmYear(year: number): boolean {
  return (year & 3) === 0 && (year % 100 !== 0 || ((year / 100) & 3) === (-(1900 / 100) & 3));
}

/** mktime() in `zone`, modelled on glibc. Normalizes *tm in place; returns the instant, or
 * undefined where glibc returns -1 (EOVERFLOW). */
const probe = new Tm();

export function mktime(tm: Tm, zone: TimeZone, state: MktimeState): number | undefined {
  const convert = (t: number): Tm => localtimeInto(probe, t, zone);
  let sec = tm.sec;
  const { min, hour, mday, mon, isdst } = tm;
  const yearRequested = tm.year - 1900;
  let dst2 = 0;
  const monRemainder = mon % 12;
  const negative = monRemainder < 0 ? 1 : 0;
  const monYears = Math.trunc(mon / 12) - negative;
  const year = yearRequested + monYears;
  const yday = MON_YDAY[leapTmYear(year) ? 1 : 0][monRemainder + 12 * negative] - 1 + mday;
  const off = state.offset;
  const secRequested = sec;
  if (sec < 0) sec = 0;
  if (sec > 59) sec = 59;
  const negativeOffsetGuess = -off;
  const t0 = ydhmsDiff(year, yday, hour, min, sec, 70, 0, 0, 0, negativeOffsetGuess);
  let t = t0;
  let t1 = t0;
  let t2 = t0;
  let probes = 6;
  let r: Tm;
  let found = false;
  for (;;) {
    r = convert(t);
    const dt = ydhmsDiff(year, yday, hour, min, sec, r.year - 1900, r.yday, r.hour, r.min, r.sec);
    if (dt === 0) break;
    if (
      t === t1 &&
      t !== t2 &&
      (isdst < 0 ? dst2 <= (r.isdst !== 0 ? 1 : 0) : (isdst !== 0) !== (r.isdst !== 0))
    ) {
      // Oscillating around a spring-forward gap: glibc returns this probe.
      found = true;
      break;
    }
    if (--probes === 0) return undefined;
    t1 = t2;
    t2 = t;
    t += dt;
    dst2 = r.isdst !== 0 ? 1 : 0;
  }
  if (!found && isdstDiffer(isdst, r.isdst)) {
    // tm_isdst asked for the other kind of time: borrow the offset of a neighbouring time that has it.
    const stride = 601200;
    const bound = Math.floor(536454000 / 2) + stride;
    let done = false;
    for (let delta = stride; delta < bound && !done; delta += stride) {
      for (let direction = -1; direction <= 1 && !done; direction += 2) {
        const ot = t + delta * direction;
        const otm = convert(ot);
        if (!isdstDiffer(isdst, otm.isdst)) {
          const gt =
            ot + ydhmsDiff(year, yday, hour, min, sec, otm.year - 1900, otm.yday, otm.hour, otm.min, otm.sec);
          r = convert(gt);
          t = gt;
          done = true;
        }
      }
    }
    if (!done) return undefined;
  }
  state.offset = t - t0 + off;
  if (secRequested !== r.sec) {
    const adjust = (sec === 0 && r.sec === 60 ? 1 : 0) - sec + secRequested;
    t += adjust;
    r = convert(t);
  }
  tm.copyFrom(r);
  return t;
}
