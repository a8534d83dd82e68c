// Golden tests: `triggerctl calendar`'s output against `systemd-analyze calendar --iterations=5
// --base-time=BASE` (systemd 252, Debian 12) for every case in test/fixtures/calendar/cases.txt.
// The committed expected.json lets the pure tests run anywhere; where systemd-analyze is installed
// the same cases are run through it again, "From now" lines included. Strict mode must agree on
// every case; triggerd's default may differ only on the DST cases listed in DEFAULT_MODE_DIFFERS.
// Regenerate the fixture: CALENDAR_GOLDEN_WRITE=1 node --test dist/test/unit/calendar-golden.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeCalendar, parseTimestamp } from '../../src/timers/calendar-analyze';
import { loadTimeZone, UTC_ZONE, type TimeZone } from '../../src/timers/time-zone';

const DIR = path.resolve(__dirname, '../../../test/fixtures/calendar');
const ITERATIONS = 5;

interface Case {
  zone: string;
  base: string;
  expr: string;
}

interface Expected extends Case {
  stdout: string;
  stderr: string;
  exitCode: number;
}

function loadCases(): Case[] {
  return fs
    .readFileSync(path.join(DIR, 'cases.txt'), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [zone, base, ...rest] = l.split(' | ');
      return { zone, base, expr: rest.join(' | ') };
    });
}

const withoutFromNow = (s: string): string =>
  s
    .split('\n')
    .filter((l) => !l.startsWith('       From now:'))
    .join('\n');

const firstLine = (s: string): string => s.split('\n')[0];

function zoneOf(name: string): TimeZone {
  const z = loadTimeZone(name);
  assert.ok(z, `time zone ${name}`);
  return z;
}

/** triggerctl calendar's output for expressions run in one process with TZ=zone. */
function ours(zone: string, base: string, exprs: string[], strictSystemd: boolean, nowUsec: number) {
  const localZone = zoneOf(zone);
  const mktimeState = { offset: 0 };
  const baseUsec = parseTimestamp(base, nowUsec, localZone, mktimeState);
  assert.ok(baseUsec !== undefined, `base time ${base}`);
  return analyzeCalendar(exprs, {
    iterations: ITERATIONS,
    baseUsec,
    nowUsec,
    localZone,
    utcZone: UTC_ZONE,
    strictSystemd,
    mktimeState,
  });
}

function systemdAnalyze(zone: string, base: string, exprs: string[]) {
  const r = spawnSync(
    'systemd-analyze',
    ['calendar', `--iterations=${ITERATIONS}`, `--base-time=${base}`, '--', ...exprs],
    { encoding: 'utf8', env: { ...process.env, TZ: zone, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } },
  );
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.status ?? -1 };
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
const cases = loadCases();
const expectedFile = path.join(DIR, 'expected.json');

if (process.env.CALENDAR_GOLDEN_WRITE === '1' && hasSystemdAnalyze) {
  const expected: Expected[] = cases.map((c) => {
    const r = systemdAnalyze(c.zone, c.base, [c.expr]);
    return { ...c, stdout: withoutFromNow(r.stdout), stderr: firstLine(r.stderr), exitCode: r.exitCode };
  });
  fs.writeFileSync(expectedFile, JSON.stringify(expected, null, 1) + '\n');
}

const expected: Expected[] = JSON.parse(fs.readFileSync(expectedFile, 'utf8')) as Expected[];

/** Cases where triggerd's default intentionally differs from systemd (calendar-dst.test.ts checks
 * the values): a wall-clock time the clocks skip elapses once, at the jump, instead of not at all;
 * counting from inside the second pass through a repeated hour, systemd elapses those wall-clock
 * times again, triggerd does not (they elapsed on the first pass). */
const DEFAULT_MODE_DIFFERS = new Set([
  'UTC | 2024-03-30 12:00:00 UTC | *-*-* 02:30 Europe/Berlin',
  'UTC | 2024-03-30 22:00:00 UTC | *-*-* 02:00 Europe/Berlin',
  'UTC | 2024-03-30 22:00:00 UTC | Sun *-*-* 02:15 Europe/Berlin',
  'UTC | 2024-03-30 22:00:00 UTC | *-*~1 02:30 Europe/Berlin',
  'UTC | 2024-03-30 22:00:00 UTC | 2024-03-31 02:30 Europe/Berlin',
  'UTC | 2024-03-30 22:00:00 UTC | *-*-* 02:59:59 Europe/Berlin',
  'UTC | 2024-03-10 05:00:00 UTC | *-*-* 02:30 America/New_York',
  'UTC | 2024-03-10 05:00:00 UTC | 2024-03-10 02:00 America/New_York',
  'UTC | 2024-03-10 05:00:00 UTC | Sun *-*-* 02:00..02:59 America/New_York',
  'UTC | 2025-03-09 06:00:00 UTC | *-*-* 02:00 America/New_York',
  'UTC | 2024-10-27 01:10:00 UTC | *:0/20 Europe/Berlin',
  'UTC | 2024-11-03 06:10:00 UTC | *:0/15 America/New_York',
  'Europe/Berlin | 2024-03-30 22:00:00 UTC | *-*-* 02:30',
  'America/New_York | 2024-03-09 22:00:00 UTC | *-*-* 02:30',
]);

const key = (c: Case): string => `${c.zone} | ${c.base} | ${c.expr}`;

test('the fixture covers every case, and at least 150 expressions', () => {
  assert.deepEqual(
    expected.map(key),
    cases.map(key),
    'expected.json is stale: regenerate it with CALENDAR_GOLDEN_WRITE=1',
  );
  assert.ok(cases.length >= 150, `${cases.length} cases`);
});

test('strict mode agrees with systemd-analyze on every golden case (committed fixture)', () => {
  const now = Date.now() * 1000;
  const failures: string[] = [];
  for (const e of expected) {
    const r = ours(e.zone, e.base, [e.expr], true, now);
    const same =
      withoutFromNow(r.stdout) === e.stdout && firstLine(r.stderr) === e.stderr && r.exitCode === e.exitCode;
    if (!same)
      failures.push(`${key(e)}\n--- systemd\n${e.stdout}${e.stderr}\n--- ours\n${r.stdout}${r.stderr}`);
  }
  process.stdout.write(
    `# strict mode: ${expected.length - failures.length}/${expected.length} agree with systemd\n`,
  );
  assert.deepEqual(failures, []);
});

test('triggerd default mode agrees with systemd except on the skipped-hour DST cases', () => {
  const now = Date.now() * 1000;
  const differing: string[] = [];
  for (const e of expected) {
    const r = ours(e.zone, e.base, [e.expr], false, now);
    const same =
      withoutFromNow(r.stdout) === e.stdout && firstLine(r.stderr) === e.stderr && r.exitCode === e.exitCode;
    if (!same) differing.push(key(e));
  }
  process.stdout.write(
    `# default mode: ${expected.length - differing.length}/${expected.length} agree with systemd, ${differing.length} differ by design\n`,
  );
  assert.deepEqual(differing.sort(), [...DEFAULT_MODE_DIFFERS].sort());
});

test(
  'strict mode agrees with systemd-analyze run now, "From now" included',
  { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed (Debian: apt-get install systemd)' },
  () => {
    // One systemd-analyze process per (zone, base) group, as a user would run it: glibc's mktime
    // state then carries from one expression to the next, and ours must carry it the same way.
    const groups = new Map<string, Case[]>();
    for (const c of cases) {
      const k = `${c.zone}\n${c.base}`;
      groups.set(k, [...(groups.get(k) ?? []), c]);
    }
    let agreed = 0;
    for (const group of groups.values()) {
      const { zone, base } = group[0];
      const exprs = group.map((c) => c.expr);
      const before = Date.now() * 1000;
      const sd = systemdAnalyze(zone, base, exprs);
      const after = Date.now() * 1000;
      // "From now" reads the real clock: accept ours at either end of the systemd-analyze run.
      const candidates = [before, after].map((now) => ours(zone, base, exprs, true, now));
      const match = candidates.find((r) => r.stdout === sd.stdout && r.exitCode === sd.exitCode);
      assert.ok(
        match,
        `TZ=${zone} --base-time='${base}':\n--- systemd\n${sd.stdout}\n--- ours\n${candidates[0].stdout}`,
      );
      const sdErrors = sd.stderr.split('\n').filter((l) => l.startsWith('Failed'));
      const ourErrors = match.stderr.split('\n').filter((l) => l.startsWith('Failed'));
      assert.deepEqual(ourErrors, sdErrors);
      agreed += exprs.length;
    }
    process.stdout.write(`# live systemd-analyze: ${agreed}/${cases.length} agree (strict mode)\n`);
  },
);
