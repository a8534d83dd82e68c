// DST transitions: triggerd's default (a skipped wall-clock time elapses once, at the jump; a
// repeated one once, at its first pass) next to systemd's behaviour (strictSystemd), on
// Europe/Berlin and America/New_York. Values worked out by hand from the zones' rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeNextElapse, nextElapse } from '../../src/timers/calendar-next';
import { parseCalendarSpec, type CalendarSpec } from '../../src/timers/calendar-spec';
import { loadTimeZone, UTC_ZONE } from '../../src/timers/time-zone';

function spec(expr: string): CalendarSpec {
  const r = parseCalendarSpec(expr, { localAbbreviations: ['UTC', 'UTC'] });
  assert.ok(r.ok, expr);
  return r.spec;
}

const usec = (iso: string): number => Date.parse(iso) * 1000;
const iso = (u: number | undefined): string | undefined =>
  u === undefined ? undefined : new Date(u / 1000).toISOString();

function series(expr: string, base: string, n: number, strictSystemd: boolean): (string | undefined)[] {
  const s = spec(expr);
  const out: (string | undefined)[] = [];
  let t = usec(base);
  for (let i = 0; i < n; i++) {
    const next = nextElapse(s, t, { strictSystemd, localZone: UTC_ZONE });
    out.push(iso(next));
    if (next === undefined) break;
    t = next;
  }
  return out;
}

const cases: { name: string; expr: string; base: string; triggerd: string[]; systemd: string[] }[] = [
  {
    name: 'Berlin spring forward: 02:30 does not exist on 2024-03-31',
    expr: '*-*-* 02:30 Europe/Berlin',
    base: '2024-03-30T12:00:00Z',
    triggerd: ['2024-03-31T01:00:00.000Z', '2024-04-01T00:30:00.000Z'],
    systemd: ['2024-04-01T00:30:00.000Z', '2024-04-02T00:30:00.000Z'],
  },
  {
    name: 'Berlin spring forward: half-hourly, the skipped 02:00 and 02:30 coalesce with 03:00',
    expr: '*-*-* *:00,30 Europe/Berlin',
    base: '2024-03-30T23:45:00Z',
    triggerd: [
      '2024-03-31T00:00:00.000Z',
      '2024-03-31T00:30:00.000Z',
      '2024-03-31T01:00:00.000Z',
      '2024-03-31T01:30:00.000Z',
    ],
    systemd: [
      '2024-03-31T00:00:00.000Z',
      '2024-03-31T00:30:00.000Z',
      '2024-03-31T01:00:00.000Z',
      '2024-03-31T01:30:00.000Z',
    ],
  },
  {
    name: 'Berlin spring forward: every 30 s, the whole skipped hour is one run at the jump',
    expr: '*:*:0/30 Europe/Berlin',
    base: '2024-03-31T00:59:00Z',
    triggerd: ['2024-03-31T00:59:30.000Z', '2024-03-31T01:00:00.000Z', '2024-03-31T01:00:30.000Z'],
    systemd: ['2024-03-31T00:59:30.000Z', '2024-03-31T01:00:00.000Z', '2024-03-31T01:00:30.000Z'],
  },
  {
    name: 'Berlin fall back: 02:30 happens twice on 2024-10-27, runs once (first pass, CEST)',
    expr: '*-*-* 02:30 Europe/Berlin',
    base: '2024-10-26T22:00:00Z',
    triggerd: ['2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z'],
    systemd: ['2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z'],
  },
  {
    name: 'Berlin fall back: every 20 min skips the second pass',
    expr: '*:0/20 Europe/Berlin',
    base: '2024-10-27T00:30:00Z',
    triggerd: ['2024-10-27T00:40:00.000Z', '2024-10-27T02:00:00.000Z', '2024-10-27T02:20:00.000Z'],
    systemd: ['2024-10-27T00:40:00.000Z', '2024-10-27T02:00:00.000Z', '2024-10-27T02:20:00.000Z'],
  },
  {
    name: 'Berlin fall back: counting from inside the second pass, systemd runs those times again',
    expr: '*:0/20 Europe/Berlin',
    base: '2024-10-27T01:10:00Z',
    triggerd: ['2024-10-27T02:00:00.000Z', '2024-10-27T02:20:00.000Z'],
    systemd: ['2024-10-27T01:20:00.000Z', '2024-10-27T01:40:00.000Z'],
  },
  {
    name: 'New York spring forward: 02:30 does not exist on 2024-03-10',
    expr: '*-*-* 02:30 America/New_York',
    base: '2024-03-10T05:00:00Z',
    triggerd: ['2024-03-10T07:00:00.000Z', '2024-03-11T06:30:00.000Z'],
    systemd: ['2024-03-11T06:30:00.000Z', '2024-03-12T06:30:00.000Z'],
  },
  {
    name: 'New York fall back: 01:30 happens twice on 2024-11-03, runs once (EDT)',
    expr: '*-*-* 01:30 America/New_York',
    base: '2024-11-03T04:00:00Z',
    triggerd: ['2024-11-03T05:30:00.000Z', '2024-11-04T06:30:00.000Z'],
    systemd: ['2024-11-03T05:30:00.000Z', '2024-11-04T06:30:00.000Z'],
  },
  {
    name: 'New York: a one-off in the skipped hour still runs (at 03:00 EDT); systemd never runs it',
    expr: '2024-03-10 02:00 America/New_York',
    base: '2024-03-10T05:00:00Z',
    triggerd: ['2024-03-10T07:00:00.000Z', undefined as unknown as string],
    systemd: [undefined as unknown as string],
  },
];

for (const c of cases) {
  test(`triggerd default — ${c.name}`, () => {
    assert.deepEqual(
      series(c.expr, c.base, c.triggerd.length, false).slice(0, c.triggerd.length),
      c.triggerd,
    );
  });
  test(`strictSystemd — ${c.name}`, () => {
    assert.deepEqual(series(c.expr, c.base, c.systemd.length, true).slice(0, c.systemd.length), c.systemd);
  });
}

test('both modes: a year of hourly elapses in Berlin and New York only ever move forward; default runs every wall-clock hour once', () => {
  for (const zone of ['Europe/Berlin', 'America/New_York']) {
    for (const strictSystemd of [false, true]) {
      const s = spec(`hourly ${zone}`);
      let t = usec('2024-01-01T00:00:00Z');
      const end = usec('2025-01-01T00:00:00Z');
      let count = 0;
      while (t < end) {
        const next = nextElapse(s, t, { strictSystemd });
        assert.ok(next !== undefined && next > t);
        t = next;
        count++;
      }
      // 8784 wall-clock hours in 2024, less the one the clocks skip (its run is the 03:00 one);
      // the repeated hour runs once.
      assert.equal(count, 8784 - 1, `${zone} strict=${strictSystemd}`);
    }
  }
});

test('the zone data agrees with Intl (ICU) on the 2024 transitions', () => {
  for (const [zone, instants] of [
    [
      'Europe/Berlin',
      ['2024-03-31T00:59:59Z', '2024-03-31T01:00:00Z', '2024-10-27T00:59:59Z', '2024-10-27T01:00:00Z'],
    ],
    [
      'America/New_York',
      ['2024-03-10T06:59:59Z', '2024-03-10T07:00:00Z', '2024-11-03T05:59:59Z', '2024-11-03T06:00:00Z'],
    ],
  ] as const) {
    const z = loadTimeZone(zone);
    assert.ok(z);
    for (const at of instants) {
      const t = Date.parse(at) / 1000;
      const parts = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        timeZoneName: 'longOffset',
      }).formatToParts(t * 1000);
      const m = /GMT([+-])(\d\d):(\d\d)/.exec(parts.find((p) => p.type === 'timeZoneName')?.value ?? '');
      assert.ok(m);
      const intlOffset = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60);
      assert.equal(z.intervalAt(t).offset, intlOffset, `${zone} at ${at}`);
    }
  }
});

test('impossible dates never elapse, at once; a month list that does have the day still elapses', () => {
  const base = usec('2024-01-01T00:00:00Z');
  for (const expr of ['*-02-30', '*-02-30 Europe/Berlin', 'Mon *-02-31 12:00']) {
    for (const strictSystemd of [false, true]) {
      const stats = { iterations: 0 };
      assert.equal(
        nextElapse(spec(expr), base, { strictSystemd, localZone: UTC_ZONE, stats }),
        undefined,
        expr,
      );
      assert.equal(stats.iterations, 0, expr);
    }
  }
  // Four months without a 31st: systemd's search settles it in under 1000 steps, so does ours.
  assert.equal(
    nextElapse(spec('*-04,06,09,11-31'), base, { strictSystemd: true, localZone: UTC_ZONE }),
    undefined,
  );
  assert.equal(iso(nextElapse(spec('*-02/2-31 UTC'), base)), '2024-08-31T00:00:00.000Z');
  assert.equal(iso(nextElapse(spec('*-02..12/2-31 UTC'), base)), '2024-08-31T00:00:00.000Z');
  assert.equal(iso(nextElapse(spec('*-02,12-31 UTC'), base)), '2024-12-31T00:00:00.000Z');
  // From 1970 the search would take systemd more than its 1000 steps for six months: it reports
  // EDEADLK, and so do we (no shortcut there).
  const far = usec('1970-01-02T00:00:00Z');
  const r = computeNextElapse(spec('*-02,04,06,09,11-31 UTC'), far, { strictSystemd: true });
  assert.equal(r.error, 'EDEADLK');
});
