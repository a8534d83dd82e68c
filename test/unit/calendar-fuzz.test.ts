// Fuzz: 10,000 expressions from a grammar of calendar events (valid and broken, with mutations)
// must never throw, must normalize to a fixed point, and must find their next elapse in a bounded
// number of steps (systemd's 1000) in both modes, always after the base time. Where
// systemd-analyze is installed, a sample also goes through it and must agree (strict mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { analyzeCalendar, parseTimestamp } from '../../src/timers/calendar-analyze';
import { computeNextElapse, MAX_CALENDAR_ITERATIONS } from '../../src/timers/calendar-next';
import { formatCalendarSpec, parseCalendarSpec } from '../../src/timers/calendar-spec';
import { UTC_ZONE } from '../../src/timers/time-zone';

/** A small linear congruential generator: the same expressions on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const ZONES = [
  '',
  '',
  '',
  ' UTC',
  ' utc',
  ' Europe/Berlin',
  ' America/New_York',
  ' Australia/Lord_Howe',
  ' Asia/Kolkata',
  ' Nope/Zone',
  ' Etc/UTC',
];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun', 'monday', 'Friday', 'SUN', 'Wednesday'];
const SHORT = [
  'minutely',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'yearly',
  'annually',
  'quarterly',
  'semiannually',
  'semi-annually',
  'bi-annually',
  'Daily',
  'anually',
];

function generateExpression(r: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const num = (lo: number, hi: number, usec: boolean): string => {
    let s = String(int(lo, hi + (r() < 0.05 ? 5 : 0)));
    if (usec && r() < 0.3) s += '.' + String(int(0, 999999)).slice(0, int(1, 7));
    return r() < 0.1 ? s.padStart(2, '0') : s;
  };
  const component = (lo: number, hi: number, usec: boolean): string => {
    const k = r();
    if (k < 0.5) return num(lo, hi, usec);
    if (k < 0.7) return `${num(lo, hi, usec)}..${num(lo, hi, usec)}`;
    if (k < 0.85)
      return `${num(lo, hi, usec)}/${usec && r() < 0.3 ? `0.${int(1, 9)}` : int(1, Math.max(1, Math.floor((hi - lo) / 2)))}`;
    return `${num(lo, hi, usec)}..${num(lo, hi, usec)}/${int(1, 5)}`;
  };
  const chain = (lo: number, hi: number, usec = false): string =>
    r() < 0.3
      ? '*'
      : Array.from({ length: r() < 0.7 ? 1 : int(2, 4) }, () => component(lo, hi, usec)).join(',');
  if (r() < 0.08) return pick(SHORT) + pick(['', '', ' UTC', ' Europe/Berlin', ' America/New_York']);
  if (r() < 0.04) return `@${int(0, 4000000000)}${pick(['', ' UTC', ' Europe/Berlin'])}`;
  let s = '';
  if (r() < 0.35) {
    const items: string[] = [];
    for (let i = int(1, 3); i > 0; i--)
      items.push(r() < 0.6 ? pick(DAYS) : pick(DAYS) + pick(['..', '-']) + pick(DAYS));
    s += items.join(',') + ' ';
  }
  const dk = r();
  const sep = (): string => (r() < 0.15 ? '~' : '-');
  if (dk < 0.45)
    s += `${chain(1970, 2199).replace(/\b(\d{4})\b/g, (m) => (r() < 0.1 ? m.slice(2) : m))}-${chain(1, 12)}${sep()}${chain(1, 31)} `;
  else if (dk < 0.7) s += `${chain(1, 12)}${sep()}${chain(1, 31)} `;
  const tk = r();
  if (tk < 0.5) s += `${chain(0, 23)}:${chain(0, 59)}:${chain(0, 59, true)}`;
  else if (tk < 0.85) s += `${chain(0, 23)}:${chain(0, 59)}`;
  s = s.trimEnd() || '*-*-*';
  s += pick(ZONES);
  if (r() < 0.08) {
    const i = int(0, s.length);
    s =
      r() < 0.5
        ? s.slice(0, i) + pick([' ', ':', '-', '.', ',', '~', '*', '/', 'x', '0', '@']) + s.slice(i)
        : s.slice(0, i) + s.slice(i + 1);
  }
  return s;
}

const BASES = [
  '2024-03-30T23:30:00Z',
  '2024-10-27T00:30:00Z',
  '2024-02-28T23:59:59Z',
  '2025-12-31T23:59:59Z',
  '2199-12-31T00:00:00Z',
].map((iso) => Date.parse(iso) * 1000);

test('10,000 random expressions: no throw, normalized form is a fixed point, bounded search in both modes', () => {
  const r = random(8);
  let valid = 0;
  let maxIterations = 0;
  let slowest = 0;
  for (let i = 0; i < 10_000; i++) {
    const expr = generateExpression(r);
    const parsed = parseCalendarSpec(expr, { localAbbreviations: ['UTC', 'UTC'] });
    if (!parsed.ok) {
      assert.ok(parsed.error.position >= 0 && parsed.error.position <= expr.length, expr);
      continue;
    }
    valid++;
    const normalized = formatCalendarSpec(parsed.spec);
    const again = parseCalendarSpec(normalized, { localAbbreviations: ['UTC', 'UTC'] });
    assert.ok(again.ok, `${expr} → ${normalized} does not parse`);
    assert.equal(formatCalendarSpec(again.spec), normalized, expr);
    const base = BASES[i % BASES.length];
    for (const strictSystemd of [true, false]) {
      const stats = { iterations: 0 };
      const t0 = performance.now();
      const next = computeNextElapse(parsed.spec, base, { strictSystemd, localZone: UTC_ZONE, stats });
      slowest = Math.max(slowest, performance.now() - t0);
      maxIterations = Math.max(maxIterations, stats.iterations);
      assert.ok(stats.iterations <= MAX_CALENDAR_ITERATIONS, `${expr}: ${stats.iterations} steps`);
      if (next.usec !== undefined) assert.ok(next.usec > base, `${expr}: ${next.usec} <= ${base}`);
    }
  }
  process.stdout.write(
    `# fuzz: ${valid} valid of 10000, at most ${maxIterations} steps, slowest ${slowest.toFixed(2)} ms\n`,
  );
  assert.ok(valid > 2000, `${valid} valid expressions`);
});

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;

test(
  '600 random expressions agree with systemd-analyze (strict mode)',
  { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed (Debian: apt-get install systemd)' },
  () => {
    const r = random(2024);
    const base = '2024-03-30 23:30:00 UTC';
    const failures: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const exprs = Array.from({ length: 100 }, () => generateExpression(r));
      const now = Date.now() * 1000;
      const sd = spawnSync(
        'systemd-analyze',
        ['calendar', '--iterations=3', `--base-time=${base}`, '--', ...exprs],
        {
          encoding: 'utf8',
          env: { ...process.env, TZ: 'UTC', SYSTEMD_COLORS: '0' },
        },
      );
      const state = { offset: 0 };
      const ours = analyzeCalendar(exprs, {
        iterations: 3,
        baseUsec: parseTimestamp(base, now, UTC_ZONE, state) as number,
        nowUsec: now,
        localZone: UTC_ZONE,
        utcZone: UTC_ZONE,
        strictSystemd: true,
        mktimeState: state,
      });
      const strip = (s: string): string => s.replace(/^ {7}From now: .*\n/gm, '');
      const errors = (s: string): string[] => s.split('\n').filter((l) => l.startsWith('Failed'));
      if (strip(sd.stdout) !== strip(ours.stdout) || sd.status !== ours.exitCode)
        failures.push(exprs.join('\n'));
      assert.deepEqual(errors(ours.stderr), errors(sd.stderr));
    }
    assert.deepEqual(failures, []);
  },
);
