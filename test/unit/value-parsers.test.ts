// The small value parsers as golden tables. Time spans are also compared with the real
// `systemd-analyze timespan` when it is installed.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  ALL_CAPABILITIES,
  applyCapabilityAssignment,
  parseBoolean,
  parseCapabilityList,
  parseEnvironmentLine,
  parseExecLine,
  parseExitStatusSet,
  parseMode,
  parsePathList,
  parseResourceLimit,
  parseSignal,
  parseSize,
  parseTimeSpan,
  parseTimeSpanUsec,
  splitWords,
  unescapeC,
  type ParseResult,
  type SplitOptions,
} from '../../src/units/value-parsers';

function value<T>(r: ParseResult<T>): T {
  if (!r.ok) assert.fail(`expected success, got: ${r.message}`);
  return r.value;
}

function refused<T>(r: ParseResult<T>): void {
  assert.equal(
    r.ok,
    false,
    `expected failure, got ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`,
  );
}

describe('booleans', () => {
  const table: [string, boolean | undefined][] = [
    ['1', true],
    ['yes', true],
    ['true', true],
    ['on', true],
    ['YES', true],
    ['y', true],
    ['0', false],
    ['no', false],
    ['false', false],
    ['off', false],
    ['Off', false],
    ['', undefined],
    ['2', undefined],
    ['yess', undefined],
  ];
  for (const [input, expected] of table) {
    test(`${JSON.stringify(input)} → ${String(expected)}`, () => {
      const r = parseBoolean(input);
      if (expected === undefined) refused(r);
      else assert.equal(value(r), expected);
    });
  }
});

// Expected microseconds, from systemd 252's `systemd-analyze timespan`; undefined = refused.
const TIME_SPANS: [string, number | undefined][] = [
  ['5', 5_000_000],
  ['1min 30s', 90_000_000],
  ['1min30', 90_000_000],
  ['100ms', 100_000],
  ['2h', 7_200_000_000],
  ['2 h', 7_200_000_000],
  ['2hours', 7_200_000_000],
  ['48hr', 172_800_000_000],
  ['1.5s', 1_500_000],
  ['1.5', 1_500_000],
  ['.5s', 500_000],
  ['1 .5s', 1_500_000],
  ['1s 0.5', 1_500_000],
  ['1.123456789s', 1_123_456],
  ['1 2', 3_000_000],
  ['1s1', 2_000_000],
  ['300ms20s 5day', 432_020_300_000],
  ['55s500ms', 55_500_000],
  ['1y 12month', 31_557_600_000_000 + 12 * 2_629_800_000_000],
  ['1M', 2_629_800_000_000],
  ['1m', 60_000_000],
  ['1w', 604_800_000_000],
  ['1 weeks', 604_800_000_000],
  ['1d2h', 93_600_000_000],
  ['1usec', 1],
  ['1µs', 1],
  ['1μs', 1],
  ['1msec', 1_000],
  ['1sec', 1_000_000],
  ['0', 0],
  ['01', 1_000_000],
  ['+1', 1_000_000],
  [' 2h ', 7_200_000_000],
  ['infinity', Infinity],
  [' infinity ', Infinity],
  ['', undefined],
  ['s', undefined],
  ['5.', undefined],
  ['1.s', undefined],
  ['1.5.5s', undefined],
  ['-1', undefined],
  ['1e3', undefined],
  ['1S', undefined],
  ['1mo', undefined],
  ['1ns', undefined],
  ['0x10', undefined],
  ['1_0s', undefined],
  ['infinity 5', undefined],
];

describe('time spans (systemd.time(7))', () => {
  for (const [input, expected] of TIME_SPANS) {
    test(`${JSON.stringify(input)} → ${String(expected)} µs`, () => {
      const r = parseTimeSpanUsec(input);
      if (expected === undefined) refused(r);
      else assert.equal(value(r), expected);
    });
  }

  test('in milliseconds, with infinity and sub-millisecond values', () => {
    assert.equal(value(parseTimeSpan('1min 30s')), 90_000);
    assert.equal(value(parseTimeSpan('100ms')), 100);
    assert.equal(value(parseTimeSpan('500us')), 0.5);
    assert.equal(value(parseTimeSpan('infinity')), Infinity);
  });

  test('other default units and nanoseconds where allowed', () => {
    assert.equal(value(parseTimeSpanUsec('100', { defaultUnit: 'us' })), 100);
    assert.equal(value(parseTimeSpanUsec('50', { defaultUnit: 'ns', allowNs: true })), 0.05);
    assert.equal(value(parseTimeSpanUsec('1ns', { allowNs: true })), 0.001);
  });

  const analyze = '/usr/bin/systemd-analyze';
  test(
    'agrees with systemd-analyze timespan',
    { skip: fs.existsSync(analyze) ? false : `${analyze} is not installed` },
    () => {
      for (const [input] of TIME_SPANS) {
        if (input === '') continue;
        const out = spawnSync(analyze, ['timespan', '--', input], { encoding: 'utf8' });
        const m = /μs: ([0-9]+)/.exec(out.stdout);
        const ours = parseTimeSpanUsec(input);
        if (m === null) {
          assert.equal(ours.ok, false, `systemd refuses ${JSON.stringify(input)}, we accept it`);
        } else {
          const theirs = m[1] === '18446744073709551615' ? Infinity : Number(m[1]);
          assert.equal(value(ours), theirs, `value of ${JSON.stringify(input)}`);
        }
      }
    },
  );
});

describe('modes, sizes, signals, exit statuses', () => {
  const modes: [string, number | undefined][] = [
    ['0022', 0o022],
    ['022', 0o022],
    ['22', 0o022],
    ['0755', 0o755],
    ['7777', 0o7777],
    ['999', undefined],
    ['17777', undefined],
    ['', undefined],
    ['0x12', undefined],
  ];
  for (const [input, expected] of modes) {
    test(`mode ${JSON.stringify(input)}`, () =>
      expected === undefined ? refused(parseMode(input)) : assert.equal(value(parseMode(input)), expected));
  }

  const sizes: [string, number | undefined][] = [
    ['100', 100],
    ['1K', 1024],
    ['4G', 4 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['10B', 10],
    ['1k', undefined],
    ['1X', undefined],
    ['-1', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of sizes) {
    test(`size ${JSON.stringify(input)}`, () =>
      expected === undefined ? refused(parseSize(input)) : assert.equal(value(parseSize(input)), expected));
  }

  const signals: [string, number | undefined][] = [
    ['SIGTERM', 15],
    ['TERM', 15],
    ['15', 15],
    ['SIGKILL', 9],
    ['HUP', 1],
    ['SIGABRT', 6],
    ['SIGRTMIN', 34],
    ['RTMIN+3', 37],
    ['SIGRTMAX-1', 63],
    ['64', 64],
    ['0', undefined],
    ['65', undefined],
    ['SIGFOO', undefined],
    ['RTMIN-1', undefined],
    ['sigterm', undefined],
  ];
  for (const [input, expected] of signals) {
    test(`signal ${JSON.stringify(input)}`, () =>
      expected === undefined
        ? refused(parseSignal(input))
        : assert.equal(value(parseSignal(input)), expected));
  }

  test('exit status lists: numbers, names, signals; bad items dropped with a warning', () => {
    assert.deepEqual(value(parseExitStatusSet('TEMPFAIL 250 SIGKILL')), { codes: [75, 250], signals: [9] });
    assert.deepEqual(value(parseExitStatusSet('KILL CHDIR 0 255')), { codes: [200, 0, 255], signals: [9] });
    const r = parseExitStatusSet('300 SIGFOO 5 5');
    assert.deepEqual(value(r), { codes: [5], signals: [] });
    assert.equal(r.ok && r.warnings?.length, 2);
  });
});

describe('word splitting, quoting and C escapes (systemd.syntax(7))', () => {
  const c: SplitOptions = { unquote: true, escapes: 'c-strict' };
  const relax: SplitOptions = { unquote: true, escapes: 'c-relax' };
  const keep: SplitOptions = { unquote: false, escapes: 'retain' };
  const table: [string, SplitOptions, string[] | undefined][] = [
    ['a b\t c', c, ['a', 'b', 'c']],
    ['  ', c, []],
    ['"a b" c', c, ['a b', 'c']],
    ["'a b'", c, ['a b']],
    ['a"b c"d', c, ['ab cd']],
    [`"it's"`, c, ["it's"]],
    [`'say "hi"'`, c, ['say "hi"']],
    ["don't", c, undefined],
    ['"abc"def"', c, undefined],
    ['"unterminated', c, undefined],
    ['\\n\\t\\\\\\"\\\'\\s', c, ['\n\t\\"\' ']],
    ['\\x41\\101\\u00e9\\U0001F600', c, ['AAé😀']],
    ["'\\x41'", c, ['A']],
    ['a\\sb', c, ['a b']],
    ['\\q', c, undefined],
    ['\\x4', c, undefined],
    ['\\x00', c, undefined],
    ['\\q', relax, ['\\q']],
    ['a\\ b', relax, ['a\\ b']],
    ['dev-disk-by\\x2dlabel-x.device "q"', keep, ['dev-disk-by\\x2dlabel-x.device', '"q"']],
  ];
  for (const [input, options, expected] of table) {
    test(`${JSON.stringify(input)} (${options.escapes}${options.unquote ? ', unquote' : ''})`, () => {
      const r = splitWords(input, options);
      if (expected === undefined) refused(r);
      else
        assert.deepEqual(
          value(r).map((w) => w.value),
          expected,
        );
    });
  }

  test('unescapeC', () => {
    assert.equal(value(unescapeC('a\\tb\\n')), 'a\tb\n');
    refused(unescapeC('\\z'));
  });
});

describe('Exec lines (systemd.service(5) "COMMAND LINES")', () => {
  const base = {
    ignoreFailure: false,
    noEnvExpand: false,
    fullPrivileges: false,
    noSetuidDrop: false,
    ambientFallback: false,
  };
  const table: [string, object[] | undefined][] = [
    ['/bin/echo a "b c"', [{ ...base, path: '/bin/echo', argv: ['/bin/echo', 'a', 'b c'] }]],
    ['echo hi', [{ ...base, path: 'echo', argv: ['echo', 'hi'] }]],
    ['-/bin/false', [{ ...base, path: '/bin/false', argv: ['/bin/false'], ignoreFailure: true }]],
    ['@/bin/sh mysh -c x', [{ ...base, path: '/bin/sh', argv: ['mysh', '-c', 'x'] }]],
    [
      '-@:+/bin/x y z',
      [
        {
          ...base,
          path: '/bin/x',
          argv: ['y', 'z'],
          ignoreFailure: true,
          noEnvExpand: true,
          fullPrivileges: true,
        },
      ],
    ],
    ['+-@/bin/x y', [{ ...base, path: '/bin/x', argv: ['y'], ignoreFailure: true, fullPrivileges: true }]],
    ['!/bin/x', [{ ...base, path: '/bin/x', argv: ['/bin/x'], noSetuidDrop: true }]],
    ['!!/bin/x', [{ ...base, path: '/bin/x', argv: ['/bin/x'], ambientFallback: true }]],
    [
      ':-!!/bin/x',
      [
        {
          ...base,
          path: '/bin/x',
          argv: ['/bin/x'],
          ambientFallback: true,
          ignoreFailure: true,
          noEnvExpand: true,
        },
      ],
    ],
    ['/bin/echo $FOO ${BAR}', [{ ...base, path: '/bin/echo', argv: ['/bin/echo', '$FOO', '${BAR}'] }]],
    [
      '/bin/echo a ; /bin/echo "b b"',
      [
        { ...base, path: '/bin/echo', argv: ['/bin/echo', 'a'] },
        { ...base, path: '/bin/echo', argv: ['/bin/echo', 'b b'] },
      ],
    ],
    ['/bin/echo a \\; b', [{ ...base, path: '/bin/echo', argv: ['/bin/echo', 'a', ';', 'b'] }]],
    ['/bin/echo ";" a;', [{ ...base, path: '/bin/echo', argv: ['/bin/echo', ';', 'a;'] }]],
    // The man page's example, after the continuation has been joined.
    [
      'echo / >/dev/null & \\;  ls',
      [{ ...base, path: 'echo', argv: ['echo', '/', '>/dev/null', '&', ';', 'ls'] }],
    ],
    [
      "/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM",
      [
        {
          ...base,
          path: '/sbin/agetty',
          argv: ['/sbin/agetty', '-o', '-p -- \\u', '--noclear', '-', '$TERM'],
        },
      ],
    ],
    ['/bin/echo \\q', [{ ...base, path: '/bin/echo', argv: ['/bin/echo', '\\q'] }]],
    ['-', []],
    ['+!/bin/true', undefined],
    ['--/bin/true', undefined],
    ['foo/bar', undefined],
    ['@/bin/true', undefined],
    ['/bin/echo "abc', undefined],
    ["/bin/echo dont't", undefined],
  ];
  for (const [input, expected] of table) {
    test(JSON.stringify(input), () => {
      const r = parseExecLine(input);
      if (expected === undefined) refused(r);
      else assert.deepEqual(value(r), expected);
    });
  }

  test('unknown escapes and empty commands warn', () => {
    const r = parseExecLine('/bin/echo \\q');
    assert.equal(r.ok && r.warnings?.length, 1);
    const e = parseExecLine('-');
    assert.equal(e.ok && e.warnings?.length, 1);
  });

  test('specifiers are expanded per word after unquoting (an instance with spaces stays one argument)', () => {
    const expand = (w: string): ParseResult<string> => ({ ok: true, value: w.replace('%i', 'a b') });
    assert.deepEqual(value(parseExecLine('/bin/echo %i "x %i"', expand))[0].argv, [
      '/bin/echo',
      'a b',
      'x a b',
    ]);
    const failing = (w: string): ParseResult<string> =>
      w.includes('%Z') ? { ok: false, message: 'unknown specifier %Z' } : { ok: true, value: w };
    refused(parseExecLine('/bin/echo %Z', failing));
  });
});

describe('Environment= and path lists', () => {
  test('the man page examples', () => {
    assert.deepEqual(value(parseEnvironmentLine('"VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"')), [
      ['VAR1', 'word1 word2'],
      ['VAR2', 'word3'],
      ['VAR3', '$word 5 6'],
    ]);
    assert.deepEqual(value(parseEnvironmentLine(`ONE='one' "TWO='two two' too" THREE=`)), [
      ['ONE', 'one'],
      ['TWO', "'two two' too"],
      ['THREE', ''],
    ]);
  });

  test('bad words are dropped with a warning; a bad escape drops the line', () => {
    const r = parseEnvironmentLine('1A=x A-B=y _ok=1 NOEQ');
    assert.deepEqual(value(r), [['_ok', '1']]);
    assert.equal(r.ok && r.warnings?.length, 3);
    refused(parseEnvironmentLine('"A=\\q"'));
    refused(parseEnvironmentLine('A=\\x00'));
    refused(parseEnvironmentLine('"A=1'));
  });

  test('path lists keep "-" and "+" prefixes and drop relative paths', () => {
    const r = parsePathList('relative -/abs +/r -+/both +-/x "/a b"', { prefixes: '-+' });
    assert.deepEqual(value(r), ['-/abs', '+/r', '-+/both', '/a b']);
    assert.equal(r.ok && r.warnings?.length, 2);
    assert.deepEqual(value(parsePathList('foo bar/baz /abs ../up', { relative: 'require' })), [
      'foo',
      'bar/baz',
    ]);
  });
});

describe('capabilities', () => {
  const bit = (n: number): bigint => 1n << BigInt(n);
  const CHOWN = bit(0);
  const KILL = bit(5);
  const NET_ADMIN = bit(12);
  const fold = (...lines: string[]): bigint | undefined =>
    lines.reduce<bigint | undefined>(
      (cur, l) => applyCapabilityAssignment(cur, value(parseCapabilityList(l))),
      undefined,
    );

  test('names (any case) and numbers → bits', () => {
    assert.equal(fold('CAP_CHOWN cap_kill 12'), CHOWN | KILL | NET_ADMIN);
  });
  test('lines merge by OR', () =>
    assert.equal(fold('CAP_CHOWN CAP_KILL', 'CAP_KILL CAP_NET_ADMIN'), CHOWN | KILL | NET_ADMIN));
  test('a "~" line merges by AND with its complement', () =>
    assert.equal(fold('CAP_CHOWN CAP_KILL', '~CAP_KILL CAP_NET_ADMIN'), CHOWN));
  test('a first "~" line is everything but the listed ones', () =>
    assert.equal(fold('~CAP_KILL'), ALL_CAPABILITIES & ~KILL));
  test('"" resets to the empty set, "~" to the full set', () => {
    assert.equal(fold('CAP_KILL', ''), 0n);
    assert.equal(fold('CAP_KILL', '', '~'), ALL_CAPABILITIES);
  });
  test('unknown names are dropped with a warning', () => {
    const r = parseCapabilityList('CAP_BOGUS CAP_KILL');
    assert.equal(value(r).mask, KILL);
    assert.equal(r.ok && r.warnings?.length, 1);
  });
});

describe('resource limits', () => {
  const table: [string, string, [number, number] | undefined][] = [
    ['nofile', '1024', [1024, 1024]],
    ['nofile', '1024:4096', [1024, 4096]],
    ['nofile', 'infinity', [Infinity, Infinity]],
    ['nofile', '1024:infinity', [1024, Infinity]],
    ['as', '4G:16G', [4 * 1024 ** 3, 16 * 1024 ** 3]],
    ['core', '0', [0, 0]],
    ['cpu', '1min', [60, 60]],
    ['cpu', '1500ms', [2, 2]],
    ['cpu', '30', [30, 30]],
    ['rttime', '100', [100, 100]],
    ['rttime', '1s', [1_000_000, 1_000_000]],
    ['nice', '+5', [15, 15]],
    ['nice', '-20', [40, 40]],
    ['nice', '10', [10, 10]],
    ['nice', '41', undefined],
    ['nofile', '4096:1024', undefined],
    ['nofile', 'abc', undefined],
    ['nofile', '1:2:3', undefined],
    ['as', '1Q', undefined],
  ];
  for (const [resource, input, expected] of table) {
    test(`Limit${resource.toUpperCase()}=${input}`, () => {
      const r = parseResourceLimit(resource, input);
      if (expected === undefined) refused(r);
      else assert.deepEqual(value(r), { resource, soft: expected[0], hard: expected[1] });
    });
  }
});
