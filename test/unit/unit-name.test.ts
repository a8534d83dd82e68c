// systemd unit-name escaping: fixed vectors, then a few hundred generated paths compared with the
// real systemd-escape binary.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { deviceUnitName, escapePath, unescapePath, UnitNameError } from '../../src/units/unit-name';
import { mulberry32 } from '../helpers/prng';

const SYSTEMD_ESCAPE = '/usr/bin/systemd-escape';
const skipNoBinary = fs.existsSync(SYSTEMD_ESCAPE) ? false : `${SYSTEMD_ESCAPE} is not installed`;

describe('fixed vectors', () => {
  const escapes: [string, string][] = [
    ['/dev/loop0', 'dev-loop0'],
    ['/sys/devices/virtual/net/veth0', 'sys-devices-virtual-net-veth0'],
    ['/dev/disk/by-uuid/0a0b-1', 'dev-disk-by\\x2duuid-0a0b\\x2d1'],
    ['/', '-'],
    ['', '-'],
    ['///', '-'],
    ['/.', '-'],
    ['//a//b/', 'a-b'],
    ['/a/./b/.', 'a-b'],
    ['/.dotdir/.x', '\\x2edotdir-.x'],
    ['/a b/ü/€', 'a\\x20b-\\xc3\\xbc-\\xe2\\x82\\xac'],
    ['/a\\b', 'a\\x5cb'],
    ['/-x-/', '\\x2dx\\x2d'],
    ['/a:b_c.d', 'a:b_c.d'],
    ['/a\tb', 'a\\x09b'],
    ['/😀', '\\xf0\\x9f\\x98\\x80'],
    ['relative/path', 'relative-path'],
    ['./.x', '\\x2ex'],
  ];
  for (const [input, expected] of escapes) {
    test(`escapePath(${JSON.stringify(input)}) = ${expected}`, () =>
      assert.equal(escapePath(input), expected));
  }

  const refused = [
    '/a/../b',
    '/..',
    '..',
    '.',
    './',
    `/${'c'.repeat(256)}`,
    `/${'ü'.repeat(128)}`,
    '/a\0b',
    longPath(4096),
  ];
  for (const input of refused) {
    test(`escapePath refuses ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
      assert.throws(
        () => escapePath(input),
        (e: unknown) => e instanceof UnitNameError && e.code === 'ERR_UNIT_NAME_INVALID_PATH',
      );
    });
  }
  test('a component of exactly 255 bytes and a path of 4095 bytes are fine', () => {
    escapePath(`/${'c'.repeat(255)}`);
    escapePath(longPath(4095));
  });

  test('deviceUnitName', () => {
    assert.equal(deviceUnitName('/dev/loop0'), 'dev-loop0.device');
    assert.equal(deviceUnitName('/sys/devices/virtual/net/veth0'), 'sys-devices-virtual-net-veth0.device');
    assert.equal(deviceUnitName('/dev/disk/by-uuid/0a0b-1'), 'dev-disk-by\\x2duuid-0a0b\\x2d1.device');
    // Hashed like systemd 252 (checked with `systemd-escape --mangle`).
    assert.equal(deviceUnitName(`/dev/${'a'.repeat(250)}`), `dev-${'a'.repeat(227)}_ecae3dbba6ed522f.device`);
    const longest = deviceUnitName(`/dev/${'a'.repeat(244)}`);
    assert.equal(longest, `dev-${'a'.repeat(244)}.device`);
    assert.equal(longest.length, 255);
  });

  const unescapes: [string, string][] = [
    ['-', '/'],
    ['dev-loop0', '/dev/loop0'],
    ['dev-disk-by\\x2duuid-0a0b\\x2d1', '/dev/disk/by-uuid/0a0b-1'],
    ['a\\x2fb', '/a/b'],
    ['A\\x41', '/AA'],
    ['a\\x4A', '/aJ'],
    ['a\\x20b-\\xc3\\xbc', '/a b/ü'],
    ['\\x2edotdir', '/.dotdir'],
  ];
  for (const [input, expected] of unescapes) {
    test(`unescapePath(${JSON.stringify(input)}) = ${JSON.stringify(expected)}`, () => {
      assert.equal(unescapePath(input), expected);
    });
  }
  for (const input of [
    '',
    '\\x2e',
    'a\\X41',
    'a\\x4G',
    'a\\x4',
    'a\\',
    'a--b',
    '-a',
    'a-',
    'a\\yb',
    'a-.-b',
    'a-..-b',
    'a\\x00b',
    '\\xff',
  ]) {
    test(`unescapePath refuses ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => unescapePath(input),
        (e: unknown) => e instanceof UnitNameError && e.code === 'ERR_UNIT_NAME_INVALID_ESCAPE',
      );
    });
  }
});

/** '/bbbb/bbbb/…' of exactly n bytes. */
function longPath(n: number): string {
  let s = '';
  while (s.length < n) s += '/' + 'b'.repeat(100);
  s = s.slice(0, n);
  return s.endsWith('/') ? s.slice(0, -1) + 'x' : s;
}

// ---- generated paths against the real binary ---------------------------------------------------

const prng = mulberry32;
const random = prng(0x5d_e5ca_9e);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)];

const PIECES = [
  'a',
  'Z',
  '0',
  '9',
  '-',
  '--',
  '.',
  '..',
  '...',
  '_',
  ':',
  ' ',
  '\\',
  '\\x2d',
  'ü',
  '€',
  '😀',
  'ß',
  '漢',
  '\t',
  '\n',
  '@',
  '%',
  '+',
  '~',
  '"',
  "'",
  '*',
  '?',
  '[',
  ']',
  '$',
  '#',
  '\x7f',
  '\x01',
  '=',
  ',',
  'dev',
  'sys',
];

function component(): string {
  let s = '';
  for (let n = 1 + int(6); n > 0; n--) s += pick(PIECES);
  return s === '..' ? '...' : s;
}

/** Absolute or relative paths with repeated slashes, '.' parts and trailing slashes; never '..'. */
function generatedPath(): string {
  const r = random();
  let s = r < 0.85 ? '/' : r < 0.95 ? '' : './';
  for (let n = int(6); n > 0; n--) s += component() + pick(['/', '/', '/', '//', '/./', '///']);
  s += random() < 0.7 ? component() : '';
  return s;
}

function runEscape(args: string[]): string[] {
  // Results are space-separated: escaped names never contain a space.
  const out = execFileSync(SYSTEMD_ESCAPE, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.replace(/\n$/, '').split(' ');
}

describe('against systemd-escape', { skip: skipNoBinary }, () => {
  const paths = [...new Set(Array.from({ length: 400 }, generatedPath))].filter((p) => {
    // Relative paths made only of '.' parts are refused; they are covered in the fixed vectors.
    return p.startsWith('/') || p.split('/').some((part) => part !== '' && part !== '.');
  });

  test(`escapePath matches systemd-escape --path for ${paths.length} generated paths`, () => {
    const expected = runEscape(['--path', '--', ...paths]);
    assert.equal(expected.length, paths.length);
    for (let i = 0; i < paths.length; i++) {
      assert.equal(escapePath(paths[i]), expected[i], `path ${JSON.stringify(paths[i])}`);
    }
  });

  test('deviceUnitName matches systemd-escape --mangle for /dev and /sys paths, long ones hashed', () => {
    const devices: string[] = [];
    for (let i = 0; i < 150; i++) {
      let p = pick(['/dev/', '/sys/devices/', '/dev//disk/by-label/']) + component();
      // Push some past 255 bytes so systemd's hashing of long names is compared too.
      if (i % 3 === 0) p += '/' + 'x'.repeat(200 + int(56));
      devices.push(p);
    }
    const expected = runEscape(['--mangle', '--', ...devices]);
    assert.equal(expected.length, devices.length);
    let hashed = 0;
    for (let i = 0; i < devices.length; i++) {
      const name = deviceUnitName(devices[i]);
      assert.equal(name, expected[i], `path ${JSON.stringify(devices[i])}`);
      if (/_[0-9a-f]{16}\.device$/.test(name)) hashed++;
    }
    assert.ok(hashed > 5, `only ${hashed} hashed names compared`);
  });

  test('unescapePath inverts escapePath and matches systemd-escape --unescape --path', () => {
    const absolute = paths.filter((p) => p.startsWith('/'));
    for (const [i, p] of absolute.entries()) {
      const parts = p.split('/').filter((part) => part !== '' && part !== '.');
      const simplified = '/' + parts.join('/');
      const name = escapePath(p);
      assert.equal(unescapePath(name), simplified, `name ${name}`);
      if (i % 8 === 0) {
        // One process per name: unescaped paths may contain spaces and newlines.
        const out = execFileSync(SYSTEMD_ESCAPE, ['--unescape', '--path', '--', name], {
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        assert.equal(out.toString('utf8').replace(/\n$/, ''), simplified);
      }
    }
  });

  test('paths systemd-escape refuses are refused', () => {
    const bad = [
      '/a/../b',
      '/..',
      '.',
      './/.',
      `/${'c'.repeat(256)}`,
      `/${'ü'.repeat(128)}`,
      longPath(4096),
      `/x/${component()}/../y`,
    ];
    for (const p of bad) {
      const result = spawnSync(SYSTEMD_ESCAPE, ['--path', '--', p], { stdio: 'ignore' });
      assert.notEqual(result.status, 0, `systemd-escape accepted ${JSON.stringify(p)}`);
      assert.throws(() => escapePath(p), UnitNameError, JSON.stringify(p));
    }
    for (const name of ['a--b', '-a', 'a\\yb', '\\x2e', 'a-..-b']) {
      const result = spawnSync(SYSTEMD_ESCAPE, ['--unescape', '--path', '--', name], { stdio: 'ignore' });
      assert.notEqual(result.status, 0, `systemd-escape accepted ${name}`);
      assert.throws(() => unescapePath(name), UnitNameError, name);
    }
  });
});
