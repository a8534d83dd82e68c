// bench/calendar: next-elapse computations per second over a mix of OnCalendar= expressions
// (shorthands, weekday ranges, repetitions, `~`, fractions, UTC and zoned ones across DST), in
// triggerd's default mode and in strictSystemd mode. Target: >= 100,000 computations/s.
// The peer figure is agreement: the same expressions through `systemd-analyze calendar
// --iterations=20` against ours in strict mode (how many expressions give identical output).
import { spawnSync } from 'node:child_process';
import { hostInfo, runBenchmark } from './lib/report';
import { analyzeCalendar } from '../src/timers/calendar-analyze';
import { nextElapse } from '../src/timers/calendar-next';
import { parseCalendarSpec, type CalendarSpec } from '../src/timers/calendar-spec';
import { UTC_ZONE } from '../src/timers/time-zone';

const TARGET_PER_SEC = 100_000;
const RUN_MS = 1500;
const PEER_ITERATIONS = 20;

const EXPRESSIONS = [
  'minutely',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'quarterly',
  'semiannually',
  'yearly',
  'Mon..Fri *-*-* 09:00',
  'Sat,Sun 10:30',
  '*:0/15',
  '*-*-* 8..18/2:00',
  '*-*~01 23:00',
  'Sun *-*~07/1 02:00',
  'Fri *-*-13 13:13',
  '*-02-29 12:00',
  '*:*:0/0.5',
  '2024..2030-01..12/3-01 06:00',
  '*-*-* 02:30 Europe/Berlin',
  '*:0/20 America/New_York',
  'Mon..Fri 09:00 America/New_York',
  'daily Europe/Berlin',
  '*-*-* 01:30 America/New_York',
  '12:00 Asia/Kolkata',
  '*-*-* 06:00 UTC',
  '*-02-30',
];

const BASE_USEC = Date.parse('2024-01-01T00:00:00Z') * 1000;

function parseAll(): CalendarSpec[] {
  return EXPRESSIONS.map((e) => {
    const r = parseCalendarSpec(e, { localAbbreviations: ['UTC', 'UTC'] });
    if (!r.ok) throw new Error(`bench expression does not parse: ${e}`);
    return r.spec;
  });
}

/** Chains next elapses from the base (each result is the next call's base) for RUN_MS. */
function measure(specs: CalendarSpec[], strictSystemd: boolean): { perSec: number; computations: number } {
  const bases = specs.map(() => BASE_USEC);
  const options = { strictSystemd, localZone: UTC_ZONE };
  // Warm-up, then the timed run.
  for (let round = 0; round < 2; round++) {
    let computations = 0;
    const t0 = performance.now();
    const until = t0 + (round === 0 ? 300 : RUN_MS);
    let now = t0;
    while (now < until) {
      for (let i = 0; i < specs.length; i++) {
        const next = nextElapse(specs[i], bases[i], options);
        // Restart a series that ended (or wandered off past a few years) at the base.
        bases[i] = next === undefined || next > BASE_USEC + 5 * 365 * 86400e6 ? BASE_USEC : next;
        computations++;
      }
      now = performance.now();
    }
    if (round === 1) return { perSec: Math.round((computations / (now - t0)) * 1000), computations };
  }
  throw new Error('unreachable');
}

function peer(): object {
  const version = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (version.status !== 0)
    return { name: 'systemd-analyze calendar', skipped: 'systemd-analyze is not installed' };
  const base = '2024-01-01 00:00:00 UTC';
  let agree = 0;
  const disagree: string[] = [];
  const t0 = performance.now();
  for (const expr of EXPRESSIONS) {
    const sd = spawnSync(
      'systemd-analyze',
      ['calendar', `--iterations=${PEER_ITERATIONS}`, `--base-time=${base}`, expr],
      {
        encoding: 'utf8',
        env: { ...process.env, TZ: 'UTC', SYSTEMD_COLORS: '0' },
      },
    );
    const ours = analyzeCalendar([expr], {
      iterations: PEER_ITERATIONS,
      baseUsec: BASE_USEC,
      nowUsec: Date.now() * 1000,
      localZone: UTC_ZONE,
      utcZone: UTC_ZONE,
      strictSystemd: true,
    });
    const strip = (s: string): string => s.replace(/^ {7}From now: .*\n/gm, '');
    if (strip(sd.stdout) === strip(ours.stdout) && sd.status === ours.exitCode) agree++;
    else disagree.push(expr);
  }
  const ms = performance.now() - t0;
  return {
    name: `systemd-analyze calendar (${version.stdout.split('\n')[0]})`,
    command: `systemd-analyze calendar --iterations=${PEER_ITERATIONS} --base-time='${base}' EXPR (TZ=UTC)`,
    expressions: EXPRESSIONS.length,
    agreeing: agree,
    disagreeing: disagree,
    note: 'agreement of the whole output (normalized form and every iteration) with triggerd in strictSystemd mode; a process per expression, so no rate is compared',
    processMsPerExpression: Math.round((ms / EXPRESSIONS.length) * 10) / 10,
  };
}

async function main(): Promise<object> {
  const specs = parseAll();
  const triggerd = measure(specs, false);
  const strict = measure(specs, true);
  const utcOnly = measure(
    specs.filter((s) => s.timezone === undefined),
    false,
  );
  const zoned = measure(
    specs.filter((s) => s.timezone !== undefined),
    true,
  );
  const perSec = Math.min(triggerd.perSec, strict.perSec);
  return {
    benchmark: 'calendar',
    what: 'nextElapse() per second, chained (each result is the next base), over a mix of expressions',
    expressions: EXPRESSIONS.length,
    perSec,
    target: `>= ${TARGET_PER_SEC} next-elapse computations/s (both modes)`,
    targetMet: perSec >= TARGET_PER_SEC,
    modes: {
      triggerdDefault: triggerd,
      strictSystemd: strict,
      localExpressionsDefault: utcOnly,
      zonedExpressionsStrict: zoned,
    },
    peer: peer(),
    host: hostInfo(),
  };
}

runBenchmark(main);
