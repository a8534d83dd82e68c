// Parsing and normalization of calendar events: a table of expressions, their normalized form as
// systemd-analyze prints it, and invalid ones with the errno and position of the error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatCalendarSpec,
  parseCalendarSpec,
  type CalendarParseOptions,
} from '../../src/timers/calendar-spec';

const opts: CalendarParseOptions = {
  localAbbreviations: ['CET', 'CEST'],
  zoneExists: (n) => ['Europe/Berlin', 'America/New_York'].includes(n),
};

const normalized: [string, string][] = [
  ['minutely', '*-*-* *:*:00'],
  ['hourly', '*-*-* *:00:00'],
  ['daily', '*-*-* 00:00:00'],
  ['weekly', 'Mon *-*-* 00:00:00'],
  ['monthly', '*-*-01 00:00:00'],
  ['yearly', '*-01-01 00:00:00'],
  ['quarterly', '*-01,04,07,10-01 00:00:00'],
  ['semiannually', '*-01,07-01 00:00:00'],
  ['Mon..Fri *-*-* 10:00', 'Mon..Fri *-*-* 10:00:00'],
  ['Sat,Sun', 'Sat,Sun *-*-* 00:00:00'],
  ['Mon,Tue,Wed,Fri', 'Mon..Wed,Fri *-*-* 00:00:00'],
  ['Mon-Sun 1:2', '*-*-* 01:02:00'],
  ['*:0/15', '*-*-* *:00/15:00'],
  ['2024-01..12/2-01', '2024-01..11/2-01 00:00:00'],
  ['*:*:0/0.5', '*-*-* *:*:00/0.500000'],
  ['10:00:30.25', '*-*-* 10:00:30.250000'],
  ['10:00:30.0000005', '*-*-* 10:00:30.000001'],
  ['*-*~03', '*-*~03 00:00:00'],
  ['*-*~1..7', '*-*~01..07 00:00:00'],
  ['24-12-25', '2024-12-25 00:00:00'],
  ['99-12-25', '1999-12-25 00:00:00'],
  ['18,6,12,0,6:00', '*-*-* 00,06,12,18:00:00'],
  ['5..5:00', '*-*-* 05:00:00'],
  ['@0', '1970-01-01 00:00:00 UTC'],
  ['12:00 utc', '*-*-* 12:00:00 UTC'],
  ['12:00 Europe/Berlin', '*-*-* 12:00:00 Europe/Berlin'],
  ['12:00 cest', '*-*-* 12:00:00 CEST'],
  ['daily America/New_York', '*-*-* 00:00:00 America/New_York'],
];

for (const [expr, form] of normalized) {
  test(`normalizes ${JSON.stringify(expr)}`, () => {
    const r = parseCalendarSpec(expr, opts);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(formatCalendarSpec(r.spec), form);
  });
}

const LONG_LIST = Array.from({ length: 242 }, (_, i) => i % 24).join(',') + ':00';

const invalid: [string, string, number][] = [
  ['', 'EINVAL', 0],
  ['foo', 'EINVAL', 0],
  ['25:00', 'EINVAL', 0],
  ['12:60', 'EINVAL', 3],
  ['*-13-01', 'EINVAL', 2],
  ['*-*~29', 'EINVAL', 4],
  ['*-*~5,27', 'EINVAL', 6],
  ['Monx 10:00', 'EINVAL', 3],
  ['Sat..Mon', 'EINVAL', 5],
  ['Mon.. 10:00', 'EINVAL', 5],
  ['12', 'EINVAL', 2],
  ['12:00:00:00', 'EINVAL', 8],
  ['2024-01-01x', 'EINVAL', 10],
  ['*:0/0', 'ERANGE', 4],
  ['*:*:2148', 'ERANGE', 4],
  ['2147483648:00', 'ERANGE', 0],
  ['*:*:1.5..2', 'EINVAL', 4],
  ['Nope/Zone 12:00', 'EINVAL', 0],
  ['12:00 Nope/Zone', 'EINVAL', 5],
  ['2200-01-01', 'EINVAL', 0],
  ['@-1', 'EINVAL', 0],
  // The 242nd value of a list: systemd stops at CALENDARSPEC_COMPONENTS_MAX.
  [LONG_LIST, 'ENOBUFS', LONG_LIST.split(',').slice(0, 241).join(',').length + 1],
];

for (const [expr, code, position] of invalid) {
  test(`refuses ${JSON.stringify(expr.length > 40 ? expr.slice(0, 40) + '…' : expr)} (${code} at ${position})`, () => {
    const r = parseCalendarSpec(expr, opts);
    assert.ok(!r.ok, 'parsed');
    assert.equal(r.error.code, code);
    assert.equal(r.error.position, position, r.error.message);
  });
}

test('241 values in one field are allowed (systemd: CALENDARSPEC_COMPONENTS_MAX + 1)', () => {
  const r = parseCalendarSpec(Array.from({ length: 241 }, (_, i) => i % 24).join(',') + ':00', opts);
  assert.ok(r.ok);
});

test("names of Object.prototype's members are not shorthands (found by the fuzz harness)", () => {
  // SHORTHANDS['constructor'] found Object: OnCalendar=constructor parsed as '*-*-* *:*:*'.
  for (const expr of ['constructor', '__proto__', 'valueOf', 'toString', 'hasOwnProperty', 'Constructor']) {
    const r = parseCalendarSpec(expr, opts);
    assert.ok(
      !r.ok && r.error.code === 'EINVAL',
      `${expr}: ${r.ok ? formatCalendarSpec(r.spec) : r.error.code}`,
    );
  }
  assert.ok(parseCalendarSpec('Daily', opts).ok);
});
