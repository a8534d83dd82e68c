// Calendar expressions (OnCalendar=, src/timers/calendar-spec.ts) and the TZif files their zones
// come from (src/timers/time-zone.ts). Contract: parseCalendarSpec never throws; an error is
// EINVAL/ERANGE/ENOBUFS with a position inside the text; a parsed spec prints to a normalized
// form that parses back to itself; computeNextElapse stays within systemd's 1000 steps in both
// modes and finds a time after its base. parseTzif/parsePosixTz never throw, and a zone they
// accept answers intervalAt with an interval that holds the instant.
import * as fc from 'fast-check';
import {
  formatCalendarSpec,
  parseCalendarSpec,
  type CalendarParseOptions,
} from '../../src/timers/calendar-spec';
import { computeNextElapse, MAX_CALENDAR_ITERATIONS } from '../../src/timers/calendar-next';
import { loadTimeZone, parsePosixTz, parseTzif, UTC_ZONE, type TimeZone } from '../../src/timers/time-zone';
import { defineTarget, violation, type Tally } from '../target';
import {
  mutantArbitrary,
  PROTO_NAMES,
  randomBytesArbitrary,
  randomTextArbitrary,
  showBytes,
  showText,
  utf8Text,
} from '../mutate';
import { linesOf, nonEmpty, readFile, readFiles, repo, type CorpusOptions } from '../corpus';

const CODES = new Set(['EINVAL', 'ERANGE', 'ENOBUFS']);
const NEXT_ERRORS = new Set(['ENOENT', 'EDEADLK', 'EINVAL']);
const PARSE_OPTIONS: CalendarParseOptions = {
  localAbbreviations: ['CET', 'CEST'],
  zoneExists: (name) => loadTimeZone(name) !== undefined,
};
const BASES = ['2024-03-30T23:30:00Z', '2024-10-27T00:30:00Z', '2199-12-31T00:00:00Z'].map(
  (iso) => Date.parse(iso) * 1000,
);

const num = (lo: number, hi: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 20, arbitrary: fc.integer({ min: lo, max: hi }).map(String) },
    { weight: 1, arbitrary: fc.constantFrom(String(hi + 1), '0' + lo, '99999999999', '-1', '') },
  );
const component = (lo: number, hi: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: num(lo, hi) },
    { weight: 1, arbitrary: fc.tuple(num(lo, hi), num(lo, hi)).map(([a, b]) => `${a}..${b}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi }))
        .map(([a, b]) => `${Math.min(a, b)}..${Math.max(a, b)}`),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(num(lo, hi), fc.integer({ min: 1, max: 30 })).map(([a, b]) => `${a}/${b}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(num(lo, hi), num(lo, hi), fc.integer({ min: 1, max: 7 }))
        .map(([a, b, c]) => `${a}..${b}/${c}`),
    },
  );
const chain = (lo: number, hi: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant('*') },
    {
      weight: 3,
      arbitrary: fc.array(component(lo, hi), { minLength: 1, maxLength: 4 }).map((c) => c.join(',')),
    },
  );
const seconds = fc.oneof(
  chain(0, 59),
  fc.tuple(num(0, 59), fc.stringMatching(/^[0-9]{1,8}$/)).map(([a, b]) => `${a}.${b}`),
);
const days = fc
  .array(
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun', 'monday', 'SUNDAY'),
      },
      { weight: 3, arbitrary: fc.constantFrom('Mon..Fri', 'Sat-Sun', 'Mon..Mon', 'Tue..Sun') },
      { weight: 1, arbitrary: fc.constantFrom('Frid', 'Fri..Mon', 'Mon..', '') },
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((d) => d.join(',') + ' ');
const expression: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'minutely',
      'hourly',
      'daily',
      'weekly',
      'monthly',
      'yearly',
      'quarterly',
      'semiannually',
      'Daily',
      'now',
      'today',
      '@0',
      '@4000000000',
      '@-1',
    ),
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        weekdays: fc.option(days, { nil: '' }),
        date: fc.option(
          fc
            .tuple(chain(1970, 2199), chain(1, 12), fc.constantFrom('-', '~'), chain(1, 31))
            .map(([y, m, s, d]) => `${y}-${m}${s}${d} `),
          { nil: '' },
        ),
        time: fc.option(
          fc
            .tuple(chain(0, 23), chain(0, 59), fc.option(seconds, { nil: undefined }))
            .map(([h, m, s]) => (s === undefined ? `${h}:${m}` : `${h}:${m}:${s}`)),
          { nil: '' },
        ),
        zone: fc.constantFrom(
          '',
          '',
          '',
          ' UTC',
          ' utc',
          ' Europe/Berlin',
          ' America/New_York',
          ' Australia/Lord_Howe',
          ' Nope/Zone',
          ' CET',
          ' CEST',
          ' ../etc',
        ),
      })
      .map((r) => (`${r.weekdays}${r.date}${r.time}`.trimEnd() || '*-*-*') + r.zone),
  },
  { weight: 1, arbitrary: randomTextArbitrary(40) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...PROTO_NAMES), fc.constantFrom('', ' UTC', ' 12:00'))
      .map(([a, b]) => a + b),
  },
);

const PROTO_WORDS = new Set(PROTO_NAMES.map((n) => n.toLowerCase()));

function checkExpression(expr: string, tally: Tally): void {
  const parsed = parseCalendarSpec(expr, PARSE_OPTIONS);
  if (parsed.ok && PROTO_WORDS.has(expr.split(' ')[0]?.toLowerCase() ?? ''))
    violation(
      `${JSON.stringify(expr)} parsed as ${formatCalendarSpec(parsed.spec)}: a table lookup found Object.prototype`,
    );
  if (!parsed.ok) {
    tally.add(parsed.error.code);
    if (!CODES.has(parsed.error.code)) violation(`error code ${parsed.error.code}`);
    const p = parsed.error.position;
    if (!Number.isInteger(p) || p < 0 || p > expr.length)
      violation(`error position ${p} in ${expr.length} characters`);
    if (parsed.error.message === '') violation('empty message');
    return;
  }
  tally.add('ok');
  const normalized = formatCalendarSpec(parsed.spec);
  const again = parseCalendarSpec(normalized, PARSE_OPTIONS);
  if (!again.ok)
    violation(`normalized form ${JSON.stringify(normalized)} does not parse: ${again.error.message}`);
  if (formatCalendarSpec(again.spec) !== normalized)
    violation(`${JSON.stringify(normalized)} is not a fixed point`);
  const zones: TimeZone[] = [UTC_ZONE, loadTimeZone('Europe/Berlin') ?? UTC_ZONE];
  for (const base of BASES) {
    for (const strictSystemd of [true, false]) {
      const stats = { iterations: 0 };
      const next = computeNextElapse(parsed.spec, base, {
        strictSystemd,
        localZone: zones[base % 2] ?? UTC_ZONE,
        stats,
      });
      if (stats.iterations > MAX_CALENDAR_ITERATIONS) violation(`${stats.iterations} search steps`);
      if (next.usec !== undefined) {
        if (!Number.isSafeInteger(next.usec) || next.usec <= base)
          violation(`next elapse ${next.usec} not after ${base}`);
      } else if (!NEXT_ERRORS.has(next.error)) violation(`next elapse error ${String(next.error)}`);
    }
  }
}

export const calendarTarget = (options: CorpusOptions) =>
  defineTarget<string>({
    name: 'calendar',
    about: 'parseCalendarSpec, the normalized form as a fixed point, computeNextElapse bounded in both modes',
    arbitrary: () => {
      const cases = linesOf(
        readFile(repo('test/fixtures/calendar/cases.txt')),
        (l) => !l.startsWith('#') && l.includes('|'),
      ).map((l) => l.split('|').slice(2).join('|').trim());
      const fromUnits = linesOf(
        [
          ...readFiles(repo('examples')),
          ...(options.system ? readFiles('/lib/systemd/system', (f) => f.endsWith('.timer')) : []),
        ],
        (l) => l.startsWith('OnCalendar='),
      ).map((l) => l.slice('OnCalendar='.length));
      const corpus = nonEmpty(
        [...cases, ...fromUnits].map((c) => Buffer.from(c)),
        'daily',
      );
      return fc.oneof(
        { weight: 5, arbitrary: expression },
        { weight: 4, arbitrary: mutantArbitrary(corpus, { hugeSizes: [4097, 16385] }).map(utf8Text) },
      );
    },
    check: checkExpression,
    size: (expr) => expr.length,
    show: (expr) => showText(expr),
  });

export const tzifTarget = (options: CorpusOptions) =>
  defineTarget<{ bytes: Buffer; rule: string; instants: number[] }>({
    name: 'tzif',
    about: 'parseTzif on mutated zoneinfo files and parsePosixTz on TZ strings; intervalAt holds its instant',
    arbitrary: () => {
      const zones = [
        'UTC',
        'Europe/Berlin',
        'America/New_York',
        'Australia/Lord_Howe',
        'Asia/Kolkata',
        'America/Santiago',
      ];
      const files = nonEmpty(
        zones
          .flatMap((z) => readFile(`/usr/share/zoneinfo/${z}`))
          .concat(options.system ? readFile('/etc/localtime') : []),
        'TZif',
      );
      const rule = fc.oneof(
        fc.constantFrom(
          'CET-1CEST,M3.5.0,M10.5.0/3',
          'EST5EDT,M3.2.0,M11.1.0',
          '<+0530>-5:30',
          'UTC0',
          'XXX3YYY,J60/25,0/-1',
          '<-03>3<-02>,M3.5.0/-2,M10.5.0/-1',
        ),
        randomTextArbitrary(40),
      );
      return fc.record({
        bytes: fc.oneof(
          { weight: 2, arbitrary: fc.constantFrom(...files) },
          { weight: 4, arbitrary: mutantArbitrary(files, { hugeSizes: [8193, 65537] }) },
          { weight: 1, arbitrary: randomBytesArbitrary([8193]) },
        ),
        rule: fc.oneof(
          rule,
          mutantArbitrary([Buffer.from('CET-1CEST,M3.5.0,M10.5.0/3')]).map((b) => b.toString('latin1')),
        ),
        instants: fc.array(
          fc.oneof(
            fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
            fc.constantFrom(0, -1, 2 ** 31, 7258118400),
          ),
          { minLength: 1, maxLength: 4 },
        ),
      });
    },
    check: (input, tally) => {
      const rule = parsePosixTz(input.rule);
      tally.add(rule === undefined ? 'rule:undefined' : 'rule:ok');
      const zone = parseTzif('Fuzz/Zone', input.bytes);
      tally.add(zone === undefined ? 'tzif:undefined' : 'tzif:ok');
      if (zone === undefined) return;
      for (const t of input.instants) {
        const iv = zone.intervalAt(t);
        if (!(iv.start <= t && t < iv.end)) violation(`intervalAt(${t}) gave [${iv.start}, ${iv.end})`);
        if (!Number.isFinite(iv.offset)) violation(`offset ${iv.offset}`);
      }
      zone.abbreviations();
    },
    size: (input) => input.bytes.length + input.rule.length,
    show: (input) =>
      `rule ${showText(input.rule)}\ninstants ${input.instants.join(' ')}\ntzif ${showBytes(input.bytes)}`,
  });
