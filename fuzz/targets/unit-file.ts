// Unit files: bytes through parseUnitSyntax (systemd.syntax(7)) and parseUnitText (the whole
// loader: key tables, drop-ins, specifiers, per-type sections). Contract (src/units/): never
// throws; every problem is a Diagnostic with an ERR_* code, a severity and a message, and where it
// names a place, that place is a file of this unit and a line inside it; syntax entries remember
// lines inside the file; a fatal syntax error is an error diagnostic.
import * as fc from 'fast-check';
import { parseUnitSyntax, MAX_LINE_BYTES } from '../../src/units/unit-syntax';
import { parseUnitText } from '../../src/units/unit-loader';
import { describeKeyTable } from '../../src/units/unit-keys';
import { UNIT_SUFFIXES, type SpecifierHost } from '../../src/units/specifiers';
import type { Diagnostic } from '../../src/units/config-types';
import { defineTarget, violation, type Tally } from '../target';
import {
  mutantArbitrary,
  PROTO_NAMES,
  randomBytesArbitrary,
  randomTextArbitrary,
  showBytes,
} from '../mutate';
import { nonEmpty, readFiles, repo, type CorpusOptions } from '../corpus';

/** Fixed host facts: the loader reads nothing of the machine while fuzzing. */
const HOST: SpecifierHost = {
  architecture: () => 'x86-64',
  bootId: () => '0123456789abcdef0123456789abcdef',
  hostname: () => 'host',
  prettyHostname: () => 'Host',
  machineId: () => 'fedcba9876543210fedcba9876543210',
  kernelRelease: () => '6.1.0',
  osRelease: (f) => (f === 'ID' ? 'debian' : ''),
  userName: () => 'root',
  uid: () => '0',
  groupName: () => 'root',
  gid: () => '0',
  home: () => '/root',
  shell: () => '/bin/sh',
  runtimeDir: () => '/run',
  stateDir: () => '/var/lib',
  cacheDir: () => '/var/cache',
  logsDir: () => '/var/log',
  configDir: () => '/etc',
  tmpDir: () => '/tmp',
  varTmpDir: () => '/var/tmp',
};

/** Values by the key table's type column: typical, edge and wrong ones. */
const VALUES_BY_TYPE: Record<string, readonly string[]> = {
  boolean: ['yes', 'no', 'true', '0', '1', 'on', 'maybe', ''],
  'boolean-or': ['yes', 'no', 'ro', 'strict', 'full', 'x'],
  timespan: [
    '5',
    '5s',
    '1min 30s',
    'infinity',
    '0',
    '100ms',
    '1y',
    '-1',
    '5 parsecs',
    '18446744073709551615us',
    '2.5h',
  ],
  'timespan-ns': ['1ns', '5us', 'x'],
  unsigned: ['0', '1', '4294967296', '-1', '0x10', 'infinity'],
  integer: ['-1', '0', '19', '-20', '9999999999999999999'],
  path: ['/usr/bin/true', '/run/x', 'relative', '/a/../b', '', '/%i/%n', '/\u00e9'],
  'path-list': ['/a /b', '-/c', '/x\\ y', ''],
  'relative-path-list': ['a b', '/abs', '../up', 'x:y'],
  exec: [
    '/bin/true',
    '-/bin/false',
    '@/bin/sh sh -c "exit 0"',
    '+!!/usr/bin/env X=%i',
    '/bin/echo "unterminated',
    ':/bin/x ;',
    "/bin/sh -c 'echo $$MAINPID'",
    'relative',
    '',
  ],
  'unit-list': ['a.service b.target', 'foo@%i.service', 'bad name', '-.mount', '', 'x.service.d'],
  unit: ['a.service', 'x', 'foo@.service'],
  condition: ['/etc', '!/nope', '|/x', '|!', 'yes', 'x86-64', 'container', '!', ''],
  signal: ['SIGTERM', 'KILL', '9', '0', 'SIGNOPE', '65'],
  user: ['root', '0', 'nobody', '4294967295', 'bad user', '-x'],
  group: ['root', 'disk', '0', 'x:y'],
  'group-list': ['disk video', ''],
  mode: ['0644', '755', '8', '01777', '0o7', ''],
  environment: ['A=1 "B=2 3"', 'BAD', 'A=%i', '"unterminated'],
  'word-list': ['a b c', '"q w"', ''],
  enum: ['simple', 'notify', 'forking', 'oneshot', 'idle', 'exec', 'dbus', 'main', 'all', 'none', 'x'],
  'job-mode': ['replace', 'fail', 'isolate', 'bogus'],
  'emergency-action': ['none', 'reboot', 'poweroff-force', 'x'],
  'exit-status-list': ['0 1 SIGTERM', '256', 'x'],
  'standard-input': ['null', 'tty', 'socket', 'file:/x', 'fd:name'],
  'standard-output': ['journal', 'inherit', 'append:/x', 'truncate:', 'fd:'],
  rlimit: ['infinity', '1024', '1024:2048', '2048:1024', 'x', '4K'],
  size: ['1K', '1M', '1G', '100', '-1', '1Z'],
  'socket-address': [
    '127.0.0.1:7777',
    '[::1]:80',
    '/run/x.sock',
    '@abstract',
    '80',
    'vsock:1:2',
    '999999',
    '',
  ],
  'capability-list': ['CAP_NET_ADMIN', '~CAP_SYS_ADMIN', 'cap_x'],
  calendar: ['daily', 'Mon..Fri 9:00', '*-*-* 00:00:00 UTC', 'x', '2024-02-30'],
  glob: ['*.conf', '[a-', ''],
  fdname: ['stored', 'a:b', ''],
  string: ['x', '', '%i', '%%', '%Z', 'é'],
  base64: ['aGVsbG8=', '!!'],
  'uri-list': ['man:x(1) https://x', 'bad'],
  'mqueue-name': ['/q', 'q'],
  interface: ['lo', 'eth0', ''],
  iptos: ['low-delay', '16', 'x'],
};

/** Sections the key table does not cover, with their keys. */
const EXTRA_KEYS: Record<string, readonly string[]> = {
  Mount: [
    'What',
    'Where',
    'Type',
    'Options',
    'SloppyOptions',
    'LazyUnmount',
    'ForceUnmount',
    'DirectoryMode',
    'TimeoutSec',
  ],
  Automount: ['Where', 'ExtraOptions', 'DirectoryMode', 'TimeoutIdleSec'],
  'X-Triggerd': [
    'StrictSystemdCalendar',
    'FailBackoffSec',
    'LatchWhileRunning',
    'PathChangedRecursive',
    'PathAccessed',
    'HoldAccess',
    'HoldTimeoutSec',
    'HoldOnTimeout',
  ],
};
const EXTRA_VALUES = [
  '/mnt/x',
  'tmpfs',
  'rw,nosuid',
  'yes',
  '0755',
  '5s',
  '/dev/disk/by-label/x',
  '/run/lazy/*',
  'allow',
];

interface Row {
  section: string;
  key: string;
  values: readonly string[];
}

function keyRows(): Row[] {
  const rows: Row[] = describeKeyTable().map((r) => ({
    section: r.section,
    key: r.key,
    values: VALUES_BY_TYPE[r.type] ?? ['x'],
  }));
  for (const [section, keys] of Object.entries(EXTRA_KEYS))
    for (const key of keys) rows.push({ section, key, values: EXTRA_VALUES });
  return rows;
}

const HEADERS_WRONG = [
  '[Unit',
  '[]',
  '[Unit] x',
  '[Un]it]',
  '[X-Triggerd]',
  '[Service\u0001]',
  '[Install]x',
  '[ Unit ]',
  '[__proto__]',
  '[constructor]',
];

function structuredArbitrary(rows: readonly Row[]): fc.Arbitrary<Buffer> {
  const sections = [...new Set(rows.map((r) => r.section))];
  const entry = (section: string): fc.Arbitrary<string> => {
    const mine = rows.filter((r) => r.section === section);
    const known = fc
      .constantFrom(...(mine.length > 0 ? mine : rows))
      .chain((r) =>
        fc.tuple(
          fc.constant(r.key),
          fc.oneof(
            { weight: 10, arbitrary: fc.constantFrom(...r.values) },
            { weight: 2, arbitrary: randomTextArbitrary(24) },
            { weight: 1, arbitrary: fc.constantFrom(...PROTO_NAMES, 'constructor 0', '__proto__ 1') },
          ),
        ),
      );
    const other = fc.tuple(
      fc.oneof(
        fc.constantFrom(...rows.map((r) => r.key)),
        fc.stringMatching(/^[A-Za-z-]{0,10}$/),
        fc.constantFrom(...PROTO_NAMES),
      ),
      randomTextArbitrary(16),
    );
    return fc
      .tuple(
        fc.oneof({ weight: 6, arbitrary: known }, other),
        fc.constantFrom('=', ' = ', '=  ', ' =', ''),
        fc.constantFrom('', '', '', ' \\\n  more', '\\\n# comment inside\n  tail', ' \\', '\\\n\n'),
      )
      .map(([[k, v], eq, tail]) => `${k}${eq}${v}${tail}`);
  };
  const section = fc
    .oneof({ weight: 8, arbitrary: fc.constantFrom(...sections) }, fc.constantFrom(...HEADERS_WRONG))
    .chain((name) =>
      fc.tuple(
        fc.constant(name.startsWith('[') ? name : `[${name}]`),
        fc.array(
          fc.oneof(
            { weight: 8, arbitrary: entry(name.replace(/^\[|\].*$/g, '')) },
            { weight: 1, arbitrary: fc.constantFrom('# comment', '; comment', '', '  ', 'no equals sign') },
          ),
          { maxLength: 8 },
        ),
      ),
    )
    .map(([header, lines]) => [header, ...lines].join('\n'));
  return fc
    .record({
      bom: fc.boolean(),
      before: fc.constantFrom('', '', 'Orphan=1\n', '# header comment\n'),
      sections: fc.array(section, { minLength: 1, maxLength: 4 }),
      eol: fc.constantFrom('\n', '\n', '\r\n'),
    })
    .map(({ bom, before, sections: s, eol }) =>
      Buffer.from(((bom ? '\ufeff' : '') + before + s.join('\n\n') + '\n').replace(/\n/g, eol)),
    );
}

const nameArbitrary: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.constantFrom('fuzz', 'a-b-c', 'foo@', 'foo@bar', 'foo@a\\x2db', 'dev-loop0', 'run-x', '-'),
        fc.constantFrom(...UNIT_SUFFIXES),
      )
      .map(([n, s]) => `${n}.${s}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'x', '.service', 'a b.service', 'x.nope', 'a@b@c.service', '@.service'),
  },
);

interface UnitInput {
  name: string;
  fragment: Buffer;
  dropIns: Buffer[];
}

/** Lines a file has, as the syntax parser numbers them (a trailing newline ends the last one). */
function lineCount(b: Buffer): number {
  let n = 1;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}

function checkDiagnostics(
  diagnostics: readonly Diagnostic[],
  files: Map<string, number>,
  tally: Tally,
): void {
  for (const d of diagnostics) {
    tally.add(d.code);
    if (!/^ERR_[A-Z0-9_]+$/.test(d.code)) violation(`diagnostic code ${JSON.stringify(d.code)}`);
    if (d.severity !== 'error' && d.severity !== 'warning') violation(`severity ${String(d.severity)}`);
    if (typeof d.message !== 'string' || d.message === '') violation(`${d.code}: empty message`);
    if (d.source !== undefined) {
      const lines = files.get(d.source.file);
      if (lines === undefined) violation(`${d.code} names ${d.source.file}, not a file of this unit`);
      if (!Number.isInteger(d.source.line) || d.source.line < 1 || d.source.line > lines)
        violation(`${d.code} at line ${d.source.line} of a ${lines}-line file: ${d.message}`);
    }
  }
}

const FRAGMENT = '/fuzz/units/fragment';

export const unitFileTarget = (options: CorpusOptions) =>
  defineTarget<UnitInput>({
    name: 'unit-file',
    about:
      'parseUnitSyntax + parseUnitText (key tables, drop-ins, specifiers) on generated and mutated unit files',
    arbitrary: () => {
      const corpus = nonEmpty(
        [
          ...readFiles(repo('examples'), (f) => !f.endsWith('.py')),
          ...readFiles(repo('test/fixtures/units')),
          ...(options.system
            ? readFiles('/lib/systemd/system', (f) =>
                /\.(service|socket|timer|path|mount|target|automount)$/.test(f),
              )
            : []),
        ],
        '[Unit]\nDescription=x\n',
      );
      // Files around systemd's 1 MiB line limit: rare (1 in 1000), as each costs up to a second.
      const big = fc
        .tuple(
          fc.constantFrom(
            'Description=',
            'Description=\\\n',
            'no equals\n',
            ']\n',
            'A=1\n',
            'Wants=a.service\n',
          ),
          fc.constantFrom(MAX_LINE_BYTES - 8, MAX_LINE_BYTES + 1),
        )
        .map(([piece, size]) =>
          Buffer.concat([Buffer.from('[Unit]\n'), Buffer.alloc(size, piece), Buffer.from('\n')]),
        );
      const file = fc.oneof(
        { weight: 5, arbitrary: structuredArbitrary(keyRows()) },
        { weight: 4, arbitrary: mutantArbitrary(corpus) },
        { weight: 1, arbitrary: randomBytesArbitrary() },
      );
      return fc.record({
        name: nameArbitrary,
        fragment: fc.oneof({ weight: 999, arbitrary: file }, { weight: 1, arbitrary: big }),
        dropIns: fc.array(file, { maxLength: 2 }),
      });
    },
    check: (input, tally) => {
      const syntax = parseUnitSyntax(input.fragment, FRAGMENT);
      const lines = lineCount(input.fragment);
      const files = new Map([[FRAGMENT, lines]]);
      checkDiagnostics(syntax.diagnostics, files, tally);
      if (syntax.fatal && !syntax.diagnostics.some((d) => d.severity === 'error'))
        violation('fatal without an error diagnostic');
      for (const s of syntax.sections) {
        if (s.source.line < 1 || s.source.line > lines)
          violation(`section [${s.name}] at line ${s.source.line}`);
        for (const e of s.entries) {
          if (e.source.line < s.source.line || e.source.line > lines)
            violation(`entry ${e.key} at line ${e.source.line}, its section at ${s.source.line}`);
          // systemd trims blanks, tabs, CR and LF only (JS trim() would take U+FEFF and others too).
          if (e.key === '' || /^[ \t\r\n]|[ \t\r\n]$/.test(e.key))
            violation(`entry key ${JSON.stringify(e.key)}`);
        }
      }
      const dropIns = input.dropIns.map((text, i) => ({
        path: `/fuzz/units/${input.name}.d/${i}.conf`,
        text,
      }));
      for (const d of dropIns) files.set(d.path, lineCount(d.text));
      const loaded = parseUnitText(input.name, input.fragment, FRAGMENT, { dropIns, host: HOST });
      if (!['loaded', 'not-found', 'bad-setting', 'error', 'masked'].includes(loaded.loadState))
        violation(`loadState ${loaded.loadState}`);
      tally.add(`load:${loaded.loadState}`);
      if (loaded.name !== input.name) violation(`name ${loaded.name}`);
      checkDiagnostics(loaded.diagnostics, files, tally);
    },
    size: (input) => input.fragment.length + input.dropIns.reduce((n, d) => n + d.length, 0),
    show: (input) =>
      [
        `name ${JSON.stringify(input.name)}`,
        `fragment ${showBytes(input.fragment)}`,
        ...input.dropIns.map((d, i) => `drop-in ${i} ${showBytes(d)}`),
      ].join('\n'),
  });
