// `triggerctl calendar [--iterations=N] [--base-time=TIME] [--strict-systemd] EXPR…`: computed
// locally, no daemon. Without --strict-systemd it shows what triggerd's timers will do (its DST
// default); with it, what systemd does, byte for byte the output of `systemd-analyze calendar`.
import { analyzeCalendar, parseTimestamp, type AnalyzeCalendarOutput } from './calendar-analyze';
import { computeNextElapse } from './calendar-next';
import { formatCalendarSpec, parseCalendarSpec } from './calendar-spec';
import { localTimeZone, UTC_ZONE } from './time-zone';

export interface CalendarCommandOptions {
  iterations?: string;
  baseTime?: string;
  strictSystemd: boolean;
  json: boolean;
  /** For tests: the current time in µs (default: the real clock). */
  nowUsec?: number;
}

export function calendarCommand(exprs: readonly string[], o: CalendarCommandOptions): AnalyzeCalendarOutput {
  let iterations = 1;
  if (o.iterations !== undefined) {
    if (!/^\d+$/.test(o.iterations) || Number(o.iterations) > 0xffffffff) {
      return { stdout: '', stderr: `Failed to parse iterations: ${o.iterations}\n`, exitCode: 1 };
    }
    iterations = Number(o.iterations);
  }
  const nowUsec = o.nowUsec ?? Date.now() * 1000;
  const localZone = localTimeZone();
  // One process's worth of glibc mktime state, shared by the base time and every expression.
  const mktimeState = { offset: 0 };
  let baseUsec = nowUsec;
  if (o.baseTime !== undefined) {
    const parsed = parseTimestamp(o.baseTime, nowUsec, localZone, mktimeState);
    if (parsed === undefined) {
      return { stdout: '', stderr: `Failed to parse --base-time= parameter: ${o.baseTime}\n`, exitCode: 1 };
    }
    baseUsec = parsed;
  }
  if (o.json) {
    let exitCode = 0;
    const items = exprs.map((expression) => {
      const parsed = parseCalendarSpec(expression, { localAbbreviations: localZone.abbreviations() });
      if (!parsed.ok) {
        exitCode = 1;
        return { expression, error: parsed.error };
      }
      const next: number[] = [];
      let n = baseUsec;
      for (let i = 0; i < iterations; i++) {
        const r = computeNextElapse(parsed.spec, n, {
          strictSystemd: o.strictSystemd,
          localZone,
          mktimeState,
        });
        if (r.error !== undefined) break;
        next.push(r.usec);
        n = r.usec;
      }
      return { expression, normalized: formatCalendarSpec(parsed.spec), next };
    });
    return { stdout: JSON.stringify(items, null, 2) + '\n', stderr: '', exitCode };
  }
  return analyzeCalendar(exprs, {
    iterations,
    baseUsec,
    nowUsec,
    localZone,
    utcZone: UTC_ZONE,
    strictSystemd: o.strictSystemd,
    mktimeState,
  });
}
