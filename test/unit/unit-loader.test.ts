// The loader and the key tables: golden tables of unit texts (defaults, bad values, bad settings,
// repeated keys, resets, legacy placement, specifiers), then the fixture tree under
// test/fixtures/units/tree for what needs files (search-path precedence, drop-in order and
// masking, aliases, masking, templates, .wants/ links), then a timing run on 1,000 generated units.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoadedUnitFile } from '../../src/units/config-types';
import type { SpecifierHost } from '../../src/units/specifiers';
import { expandSpecifiers, parseUnitName, SUPPORTED_SPECIFIERS } from '../../src/units/specifiers';
import { KEY_TABLE, UNSUPPORTED_SERVICE_KEYS, UNSUPPORTED_UNIT_KEYS } from '../../src/units/unit-keys';
import { parseUnitText, UnitLoader } from '../../src/units/unit-loader';
import { verifyFailed, verifyUnitFiles } from '../../src/units/verify';
import { Prng } from '../helpers/prng';

const ROOT = path.resolve(__dirname, '../../..');
const TREE = path.join(ROOT, 'test/fixtures/units/tree');
const TREE_PATHS = ['etc', 'run', 'lib'].map((d) => path.join(TREE, d));

const HOST: SpecifierHost = {
  architecture: () => 'x86-64',
  bootId: () => 'b007b007b007b007b007b007b007b007',
  hostname: () => 'box.example.org',
  prettyHostname: () => 'Box',
  machineId: () => 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
  kernelRelease: () => '6.1.0-test',
  osRelease: (f) => ({ ID: 'debian', VERSION_ID: '12' })[f] ?? '',
  userName: () => 'root',
  uid: () => '0',
  groupName: () => 'root',
  gid: () => '0',
  home: () => '/root',
  shell: () => '/bin/bash',
  runtimeDir: () => '/run',
  stateDir: () => '/var/lib',
  cacheDir: () => '/var/cache',
  logsDir: () => '/var/log',
  configDir: () => '/etc',
  tmpDir: () => '/tmp',
  varTmpDir: () => '/var/tmp',
};

const FILE = '/units/test.service';

function load(text: string, name = 'test.service'): LoadedUnitFile {
  return parseUnitText(name, text, FILE.replace('test.service', name), { host: HOST });
}

/** Diagnostics as [severity, code, line]. */
function diags(u: LoadedUnitFile): [string, string, number | undefined][] {
  return u.diagnostics.map((d) => [d.severity, d.code, d.source?.line]);
}

function svc(u: LoadedUnitFile): NonNullable<LoadedUnitFile['service']> {
  assert.ok(u.service, 'expected a [Service] section');
  return u.service;
}

describe("defaults are systemd's", () => {
  const u = load('[Service]\nExecStart=/bin/true\n');
  test('loads cleanly', () => {
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(u.diagnostics, []);
  });
  test('[Unit]', () => {
    assert.equal(u.unit.defaultDependencies, true);
    assert.equal(u.unit.startLimitIntervalMs, 10_000);
    assert.equal(u.unit.startLimitBurst, 5);
    assert.equal(u.unit.startLimitAction, 'none');
    assert.equal(u.unit.jobTimeoutMs, Infinity);
    assert.equal(u.unit.onFailureJobMode, 'replace');
    assert.equal(u.unit.collectMode, 'inactive');
    assert.equal(u.unit.ignoreOnIsolate, false);
    assert.equal(load('[Unit]\n', 'x.mount').unit.ignoreOnIsolate, true);
  });
  test('[Service]', () => {
    const s = svc(u);
    assert.equal(s.type, 'simple');
    assert.equal(s.timeoutStartMs, 90_000);
    assert.equal(s.timeoutStopMs, 90_000);
    assert.equal(s.timeoutAbortMs, undefined);
    assert.equal(s.restartSecMs, 100);
    assert.equal(s.restart, 'no');
    assert.equal(s.runtimeMaxMs, Infinity);
    assert.equal(s.watchdogMs, 0);
    assert.equal(s.notifyAccess, undefined);
    assert.equal(s.guessMainPID, true);
    assert.equal(s.remainAfterExit, false);
    assert.equal(s.reloadSignal, 1);
  });
  test('exec and kill', () => {
    const s = svc(u);
    assert.equal(s.exec.umask, 0o022);
    assert.deepEqual(s.exec.standardInput, { kind: 'null' });
    assert.deepEqual(s.exec.standardOutput, { kind: 'journal' });
    assert.deepEqual(s.exec.standardError, { kind: 'inherit-output' });
    assert.equal(s.exec.capabilityBoundingSet, undefined);
    assert.equal(s.exec.ambientCapabilities, 0n);
    assert.equal(s.exec.runtimeDirectoryMode, 0o755);
    assert.deepEqual(s.kill, {
      killMode: 'control-group',
      killSignal: 15,
      finalKillSignal: 9,
      watchdogSignal: 6,
      sendSIGKILL: true,
      sendSIGHUP: false,
    });
  });
});

describe('Type= and the type-dependent defaults', () => {
  const table: [string, string, string, number][] = [
    ['ExecStart, no Type', '[Service]\nExecStart=/bin/true\n', 'simple', 90_000],
    ['no ExecStart, no Type', '[Service]\nRemainAfterExit=yes\nExecStop=/bin/true\n', 'oneshot', Infinity],
    ['BusName= without Type', '[Service]\nBusName=org.example.X\nExecStart=/bin/true\n', 'dbus', 90_000],
    [
      'oneshot without TimeoutStartSec: no timeout',
      '[Service]\nType=oneshot\nExecStart=/bin/true\n',
      'oneshot',
      Infinity,
    ],
    [
      'oneshot with TimeoutStartSec',
      '[Service]\nType=oneshot\nTimeoutStartSec=5\nExecStart=/bin/true\n',
      'oneshot',
      5000,
    ],
    [
      'oneshot with TimeoutSec',
      '[Service]\nType=oneshot\nTimeoutSec=7\nExecStart=/bin/true\n',
      'oneshot',
      7000,
    ],
    ['a bad Type= keeps the default', '[Service]\nType=bogus\nExecStart=/bin/true\n', 'simple', 90_000],
    ['notify', '[Service]\nType=notify\nExecStart=/bin/true\n', 'notify', 90_000],
  ];
  for (const [name, text, type, timeout] of table) {
    test(name, () => {
      const u = load(text);
      assert.equal(u.loadState, 'loaded');
      assert.equal(svc(u).type, type);
      assert.equal(svc(u).timeoutStartMs, timeout);
    });
  }
});

describe('bad settings: systemd refuses these units (loadState bad-setting, error with file:line)', () => {
  const table: [string, string][] = [
    ['no ExecStart=, no ExecStop=', '[Service]\nType=oneshot\n'],
    ['a .service without [Service]', '[Unit]\nDescription=x\n'],
    ['Type=simple without ExecStart=', '[Service]\nType=simple\nRemainAfterExit=yes\nExecStop=/bin/true\n'],
    ['oneshot, no ExecStart= and no RemainAfterExit=yes', '[Service]\nType=oneshot\nExecStop=/bin/true\n'],
    ['ExecStart= reset to nothing', '[Service]\nExecStart=/bin/true\nExecStart=\n'],
    ['two ExecStart= for Type=simple', '[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n'],
    ['two commands in one ExecStart= for Type=simple', '[Service]\nExecStart=/bin/echo a ; /bin/echo b\n'],
    ['Restart=always with Type=oneshot', '[Service]\nType=oneshot\nRestart=always\nExecStart=/bin/true\n'],
    [
      'Restart=on-success with Type=oneshot',
      '[Service]\nType=oneshot\nRestart=on-success\nExecStart=/bin/true\n',
    ],
    ['Type=dbus without BusName=', '[Service]\nType=dbus\nExecStart=/bin/true\n'],
    ['an executable that is neither absolute nor bare', '[Service]\nExecStart=foo/bar\n'],
    ['"@" without argv[0]', '[Service]\nExecStart=@/bin/true\n'],
    ['"+" and "!" together', '[Service]\nExecStart=+!/bin/true\n'],
    ['unbalanced quoting in ExecStart=', '[Service]\nExecStart=/bin/echo "abc\n'],
    ['an unknown specifier in ExecStart=', '[Service]\nExecStart=/bin/echo %Z\n'],
    ['a relative WorkingDirectory=', '[Service]\nExecStart=/bin/true\nWorkingDirectory=relative\n'],
  ];
  for (const [name, text] of table) {
    test(name, () => {
      const u = load(text);
      assert.equal(u.loadState, 'bad-setting');
      const errors = u.diagnostics.filter((d) => d.severity === 'error');
      assert.ok(errors.length > 0);
      for (const e of errors) {
        assert.equal(e.code, 'ERR_UNIT_BAD_SETTING');
        assert.ok(
          e.source !== undefined && e.message.startsWith(`${e.source.file}:${e.source.line}: `),
          e.message,
        );
      }
    });
  }

  test('what systemd accepts', () => {
    for (const text of [
      '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStop=/bin/true\n',
      '[Service]\nType=oneshot\nExecStart=/bin/echo a ; /bin/echo b\nExecStart=/bin/true\n',
      '[Unit]\nSuccessAction=exit\n',
      '[Service]\nExecStart=-\nExecStart=/bin/true\n',
    ]) {
      assert.equal(load(text).loadState, 'loaded', text);
    }
  });
});

describe('bad values: a diagnostic with file:line, the key keeps its value, the unit loads', () => {
  // [line, expected field value after the bad line]
  const table: [string, (u: LoadedUnitFile) => unknown, unknown][] = [
    ['TimeoutStartSec=bogus', (u) => svc(u).timeoutStartMs, 90_000],
    ['TimeoutStartSec=5\nTimeoutStartSec=bogus', (u) => svc(u).timeoutStartMs, 5000],
    ['RestartSec=-1', (u) => svc(u).restartSecMs, 100],
    ['Restart=sometimes', (u) => svc(u).restart, 'no'],
    ['KillSignal=SIGFOO', (u) => svc(u).kill.killSignal, 15],
    ['KillSignal=0', (u) => svc(u).kill.killSignal, 15],
    ['KillMode=bogus', (u) => svc(u).kill.killMode, 'control-group'],
    ['SendSIGKILL=maybe', (u) => svc(u).kill.sendSIGKILL, true],
    ['UMask=999', (u) => svc(u).exec.umask, 0o022],
    ['Nice=50', (u) => svc(u).exec.nice, undefined],
    ['OOMScoreAdjust=-2000', (u) => svc(u).exec.oomScoreAdjust, undefined],
    ['LimitNOFILE=abc', (u) => svc(u).exec.limits, []],
    ['NotifyAccess=some', (u) => svc(u).notifyAccess, undefined],
    ['ProtectSystem=very', (u) => svc(u).exec.protectSystem, 'no'],
    ['StandardOutput=fd:foo', (u) => svc(u).exec.standardOutput, { kind: 'journal' }],
    ['StandardOutput=file:relative', (u) => svc(u).exec.standardOutput, { kind: 'journal' }],
    ['EnvironmentFile=relative', (u) => svc(u).exec.environmentFiles, []],
    ['Environment="A=\\q"', (u) => svc(u).exec.environment, []],
    ['User=a:b', (u) => svc(u).exec.user, undefined],
    ['PIDFile=%Z', (u) => svc(u).pidFile, undefined],
  ];
  for (const [line, get, expected] of table) {
    test(line.split('\n').pop() ?? line, () => {
      const u = load(`[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n${line}\n`);
      assert.equal(u.loadState, 'loaded');
      assert.deepEqual(get(u), expected);
      const lastLine = 4 + line.split('\n').length;
      const d = u.diagnostics.find((x) => x.source?.line === lastLine);
      assert.ok(d, `a diagnostic for line ${lastLine}: ${JSON.stringify(u.diagnostics)}`);
      assert.equal(d.severity, 'warning');
      assert.match(d.code, /^ERR_UNIT_(BAD_VALUE|SPECIFIER)$/);
      assert.ok(d.message.startsWith(`${FILE}:${lastLine}: `), d.message);
    });
  }

  test('bad items in a list are dropped, the good ones kept', () => {
    const u = load(
      '[Service]\nExecStart=/bin/true\nEnvironment=A=1 1B=2 C=3\nSuccessExitStatus=300 5 SIGFOO\nReadOnlyPaths=/a rel -/b\n',
    );
    assert.deepEqual(svc(u).exec.environment, [
      ['A', '1'],
      ['C', '3'],
    ]);
    assert.deepEqual(svc(u).successExitStatus, { codes: [5], signals: [] });
    assert.deepEqual(svc(u).exec.readOnlyPaths, ['/a', '-/b']);
    assert.deepEqual(
      diags(u).map((d) => d[2]),
      [3, 4, 4, 5],
    );
  });
});

describe('repeated keys: lists append, scalars override, "" resets', () => {
  test('scalars: the last assignment wins', () => {
    const u = load(
      '[Unit]\nDescription=a\nDescription=b\n[Service]\nExecStart=/bin/true\nTimeoutStopSec=1\nTimeoutStopSec=2\n',
    );
    assert.equal(u.unit.description, 'b');
    assert.equal(svc(u).timeoutStopMs, 2000);
  });
  test('"" resets a scalar to its default', () => {
    const u = load(
      '[Service]\nExecStart=/bin/true\nTimeoutStartSec=5\nTimeoutStartSec=\nUser=nobody\nUser=\n',
    );
    assert.equal(svc(u).timeoutStartMs, 90_000);
    assert.equal(svc(u).exec.user, undefined);
  });
  test('lists append in order and "" resets them', () => {
    const u = load(
      [
        '[Unit]',
        'Documentation=man:a(1)',
        'Documentation=',
        'Documentation=man:b(1) https://example.org',
        'After=a.service',
        'After=b.service c.service',
        '[Service]',
        'ExecStart=/bin/true',
        'ExecStartPre=/bin/pre1',
        'ExecStartPre=',
        'ExecStartPre=/bin/pre2',
        'ExecStartPre=-/bin/pre3',
        'Environment=A=1',
        'Environment=B=2',
        'Environment=',
        'Environment=C=3 D=4',
        'ReadWritePaths=/a',
        'ReadWritePaths=',
        'ReadWritePaths=/b',
        'SuccessExitStatus=1',
        'SuccessExitStatus=2 SIGHUP',
        '',
      ].join('\n'),
    );
    assert.deepEqual(u.unit.documentation, ['man:b(1)', 'https://example.org']);
    assert.deepEqual(u.unit.dependencies.After, ['a.service', 'b.service', 'c.service']);
    assert.deepEqual(
      svc(u).execStartPre.map((c) => [c.path, c.ignoreFailure, c.source.line]),
      [
        ['/bin/pre2', false, 11],
        ['/bin/pre3', true, 12],
      ],
    );
    assert.deepEqual(svc(u).exec.environment, [
      ['C', '3'],
      ['D', '4'],
    ]);
    assert.deepEqual(svc(u).exec.readWritePaths, ['/b']);
    assert.deepEqual(svc(u).successExitStatus, { codes: [1, 2], signals: [1] });
  });
  test('dependencies cannot be reset (as in systemd): "" does nothing', () => {
    const u = load('[Unit]\nWants=a.service\nWants=\nWants=b.service\n[Service]\nExecStart=/bin/true\n');
    assert.deepEqual(u.unit.dependencies.Wants, ['a.service', 'b.service']);
  });
  test('conditions: "|" and "!" prefixes, and "" drops the earlier ones', () => {
    const u = load(
      '[Unit]\nConditionPathExists=/a\nConditionPathExists=\nConditionPathExists=|!/b\nAssertPathExists=/c\nConditionVirtualization=!container\n[Service]\nExecStart=/bin/true\n',
    );
    assert.deepEqual(
      u.unit.conditions.map((c) => [c.kind, c.name, c.trigger, c.negate, c.value, c.source.line]),
      [
        ['condition', 'PathExists', true, true, '/b', 4],
        ['assert', 'PathExists', false, false, '/c', 5],
        ['condition', 'Virtualization', false, true, 'container', 6],
      ],
    );
  });
  test('capabilities and limits fold over repeated lines', () => {
    const u = load(
      '[Service]\nExecStart=/bin/true\nCapabilityBoundingSet=CAP_CHOWN CAP_KILL\nCapabilityBoundingSet=~CAP_KILL\nAmbientCapabilities=CAP_NET_ADMIN\nLimitNOFILE=10\nLimitNOFILE=20:30\nLimitCORE=infinity\n',
    );
    assert.equal(svc(u).exec.capabilityBoundingSet, 1n);
    assert.equal(svc(u).exec.ambientCapabilities, 1n << 12n);
    assert.deepEqual(svc(u).exec.limits, [
      { resource: 'nofile', soft: 20, hard: 30 },
      { resource: 'core', soft: Infinity, hard: Infinity },
    ]);
  });
});

describe('keys and sections triggerd does not handle', () => {
  test('unknown key → warning ERR_UNIT_UNKNOWN_KEY with file:line', () => {
    const u = load('[Service]\nExecStart=/bin/true\nFrobnicate=yes\n');
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(diags(u), [['warning', 'ERR_UNIT_UNKNOWN_KEY', 3]]);
    assert.match(u.diagnostics[0].message, /^\/units\/test\.service:3: unknown key Frobnicate/);
  });
  test('known-but-unsupported key → "key X is not supported by triggerd, ignored"', () => {
    const u = load(
      '[Unit]\nJoinsNamespaceOf=x.service\n[Service]\nExecStart=/bin/true\nSystemCallFilter=@system-service\nMemoryMax=1G\n',
    );
    assert.deepEqual(diags(u), [
      ['warning', 'ERR_UNIT_UNSUPPORTED_KEY', 2],
      ['warning', 'ERR_UNIT_UNSUPPORTED_KEY', 5],
      ['warning', 'ERR_UNIT_UNSUPPORTED_KEY', 6],
    ]);
    assert.equal(
      u.diagnostics[1].message,
      `${FILE}:5: key SystemCallFilter is not supported by triggerd, ignored`,
    );
  });
  test('"X-" keys and sections are ignored silently; [X-Triggerd] is kept as a map', () => {
    const u = load(
      '[Unit]\nX-Note=1\n[Service]\nExecStart=/bin/true\n[X-Vendor]\nA=1\n[X-Triggerd]\nWatch=/dev/sda\nWatch=/dev/sdb\nOther=\n',
    );
    assert.deepEqual(u.diagnostics, []);
    assert.deepEqual(u.triggerd, { Watch: '/dev/sdb', Other: '' });
    assert.deepEqual(
      u.raw.get('X-Vendor')?.map((e) => [e.key, e.value]),
      [['A', '1']],
    );
  });
  test('[Socket] is parsed for .socket units; sections of other types are kept raw; in the wrong unit they warn', () => {
    const sock = load(
      '[Unit]\nDescription=s\n[Socket]\nListenStream=80\nListenStream=81\n[Install]\nWantedBy=sockets.target\n',
      'web.socket',
    );
    assert.equal(sock.loadState, 'loaded');
    assert.equal(sock.service, undefined);
    assert.deepEqual(sock.diagnostics, []);
    assert.equal(sock.raw.has('Socket'), false);
    assert.deepEqual(
      sock.socket?.listen.map((l) => [l.kind, l.text, l.source.line]),
      [
        ['stream', '80', 4],
        ['stream', '81', 5],
      ],
    );
    const swap = load('[Swap]\nWhat=/dev/x\n', 'dev-x.swap');
    assert.deepEqual(
      swap.raw.get('Swap')?.map((e) => [e.key, e.value, e.source.line]),
      [['What', '/dev/x', 2]],
    );
    assert.deepEqual(sock.install.wantedBy, ['sockets.target']);
    const wrong = load('[Service]\nExecStart=/bin/true\n[Socket]\nListenStream=80\n[Bogus]\nA=1\n');
    assert.deepEqual(diags(wrong), [
      ['warning', 'ERR_UNIT_UNKNOWN_SECTION', 3],
      ['warning', 'ERR_UNIT_UNKNOWN_SECTION', 5],
    ]);
    assert.ok(wrong.raw.has('Socket') && wrong.raw.has('Bogus'));
    const target = load('[Unit]\nDescription=t\n[Service]\nExecStart=/bin/true\n', 'x.target');
    assert.deepEqual(diags(target), [['warning', 'ERR_UNIT_UNKNOWN_SECTION', 3]]);
  });
});

describe('legacy StartLimit*= in [Service]', () => {
  test('applied to [Unit] as systemd does, with ERR_UNIT_LEGACY_SECTION naming file:line', () => {
    const u = load(
      '[Service]\nExecStart=/bin/true\nStartLimitInterval=20s\nStartLimitBurst=3\nStartLimitAction=reboot\n',
    );
    assert.equal(u.loadState, 'loaded');
    assert.equal(u.unit.startLimitIntervalMs, 20_000);
    assert.equal(u.unit.startLimitBurst, 3);
    assert.equal(u.unit.startLimitAction, 'reboot');
    assert.deepEqual(diags(u), [
      ['warning', 'ERR_UNIT_LEGACY_SECTION', 3],
      ['warning', 'ERR_UNIT_LEGACY_SECTION', 4],
      ['warning', 'ERR_UNIT_LEGACY_SECTION', 5],
    ]);
    for (const d of u.diagnostics) {
      assert.match(d.message, /^\/units\/test\.service:\d+: .*belongs in \[Unit\]/);
    }
  });
  test('StartLimitIntervalSec= in [Service] works too, and the message says systemd ignores that spelling', () => {
    const u = load('[Service]\nExecStart=/bin/true\nStartLimitIntervalSec=0\n');
    assert.equal(u.unit.startLimitIntervalMs, 0);
    assert.match(u.diagnostics[0].message, /belongs in \[Unit\].*StartLimitInterval=/);
  });
  test('a bad legacy value keeps the default', () => {
    const u = load('[Service]\nExecStart=/bin/true\nStartLimitBurst=many\n');
    assert.equal(u.unit.startLimitBurst, 5);
    assert.deepEqual(
      diags(u).map((d) => d[1]),
      ['ERR_UNIT_LEGACY_SECTION', 'ERR_UNIT_BAD_VALUE'],
    );
  });
  test('in [Unit] the same keys are silent, StartLimitInterval= included', () => {
    const u = load(
      '[Unit]\nStartLimitIntervalSec=1min\nStartLimitInterval=30s\nStartLimitBurst=2\n[Service]\nExecStart=/bin/true\n',
    );
    assert.deepEqual(u.diagnostics, []);
    assert.equal(u.unit.startLimitIntervalMs, 30_000);
  });
});

describe('specifiers', () => {
  const instance = parseUnitName('getty-x@tty\\x2d1.service');
  assert.ok(instance);
  const ctx = { unit: instance, fragmentPath: '/lib/units/getty-x@.service', host: HOST };
  const table: [string, string][] = [
    ['%n', 'getty-x@tty\\x2d1.service'],
    ['%N', 'getty-x@tty\\x2d1'],
    ['%p', 'getty-x'],
    ['%P', 'getty-x'],
    ['%i', 'tty\\x2d1'],
    ['%I', 'tty-1'],
    ['%j', 'x'],
    ['%J', 'x'],
    ['%f', '/tty-1'],
    ['%y', '/lib/units/getty-x@.service'],
    ['%Y', '/lib/units'],
    ['%u %U %g %G %h %s', 'root 0 root 0 /root /bin/bash'],
    ['%t %S %C %L %E %T %V', '/run /var/lib /var/cache /var/log /etc /tmp /var/tmp'],
    ['%H %l %q', 'box.example.org box Box'],
    ['%m %b', 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1 b007b007b007b007b007b007b007b007'],
    ['%v %a %o %w %W', '6.1.0-test x86-64 debian 12 '],
    ['%d', '/run/credentials/getty-x@tty\\x2d1.service'],
    ['100%% %i', '100% tty\\x2d1'],
    ['no specifiers', 'no specifiers'],
  ];
  for (const [input, expected] of table) {
    test(`${input} → ${expected}`, () => {
      const r = expandSpecifiers(input, ctx);
      assert.ok(r.ok, r.ok ? '' : r.message);
      assert.equal(r.value, expected);
    });
  }
  test('unknown specifiers and a lone "%" fail', () => {
    assert.equal(expandSpecifiers('%Z', ctx).ok, false);
    assert.equal(expandSpecifiers('50%', ctx).ok, false);
  });
  test('[Install] accepts only its subset', () => {
    assert.equal(expandSpecifiers('%t', ctx, new Set(['i'])).ok, false);
  });
  test('plain units: %i is empty, %p is the name, %f unescapes the prefix as a path', () => {
    const plain = parseUnitName('dev-disk-by\\x2dlabel-x.device');
    assert.ok(plain);
    const r = expandSpecifiers('[%i] %p %f %j', { unit: plain, host: HOST });
    assert.ok(r.ok);
    assert.equal(r.value, '[] dev-disk-by\\x2dlabel-x /dev/disk/by-label/x x');
  });
  test('the supported list is what the module documents', () => {
    assert.deepEqual(SUPPORTED_SPECIFIERS, [...'%aAbBCdEfgGhHiIjJlLmMnNopPqsStTuUvVwWyY'].sort());
  });
  test('in unit files: per word after unquoting, failures per key', () => {
    const u = parseUnitText(
      'web@a\\x20b.service',
      '[Unit]\nDescription=Web %I\nRequires=%p-db@%i.service\nAfter=%Z.service b.service\n[Service]\nExecStart=/bin/echo %I "%i"\nEnvironment="NAME=%I" HOST=%l\n[Install]\nWantedBy=multi-user.target %p.target\nAlias=%t.service\n',
      '/units/web@.service',
      { host: HOST },
    );
    assert.equal(u.loadState, 'loaded');
    assert.equal(u.unit.description, 'Web a b');
    assert.deepEqual(u.unit.dependencies.Requires, ['web-db@a\\x20b.service']);
    assert.deepEqual(u.unit.dependencies.After, ['b.service']);
    assert.deepEqual(svc(u).execStart[0].argv, ['/bin/echo', 'a b', 'a\\x20b']);
    assert.deepEqual(svc(u).exec.environment, [
      ['NAME', 'a b'],
      ['HOST', 'box'],
    ]);
    assert.deepEqual(u.install.wantedBy, ['multi-user.target', 'web.target']);
    assert.deepEqual(u.install.alias, []);
    assert.deepEqual(
      diags(u).map((d) => [d[1], d[2]]),
      [
        ['ERR_UNIT_BAD_VALUE', 4],
        ['ERR_UNIT_BAD_VALUE', 10],
      ],
    );
  });
});

describe('other values end to end', () => {
  test('standard input text/data, TTYPath and the stdout default that follows a tty', () => {
    const u = load(
      '[Service]\nExecStart=/bin/cat\nStandardInputText=hello\\tworld\nStandardInputData=AAE=\n',
    );
    assert.deepEqual(svc(u).exec.standardInput, {
      kind: 'data',
      data: Buffer.from('hello\tworld\n\x00\x01', 'latin1'),
    });
    const t = load('[Service]\nExecStart=/bin/sh\nStandardInput=tty\nTTYPath=/dev/tty9\n');
    assert.deepEqual(svc(t).exec.standardInput, { kind: 'tty', path: '/dev/tty9' });
    assert.deepEqual(svc(t).exec.standardOutput, { kind: 'inherit' });
    const o = load(
      '[Service]\nExecStart=/bin/sh\nStandardOutput=append:/var/log/x.log\nStandardError=inherit\n',
    );
    assert.deepEqual(svc(o).exec.standardOutput, { kind: 'append', path: '/var/log/x.log' });
    assert.deepEqual(svc(o).exec.standardError, { kind: 'inherit-output' });
  });
  test('timeouts: 0 and infinity disable, TimeoutSec sets both', () => {
    const u = load(
      '[Service]\nExecStart=/bin/true\nTimeoutSec=30\nTimeoutStopSec=0\nRuntimeMaxSec=1h\nWatchdogSec=500ms\n',
    );
    assert.equal(svc(u).timeoutStartMs, 30_000);
    assert.equal(svc(u).timeoutStopMs, Infinity);
    assert.equal(svc(u).runtimeMaxMs, 3_600_000);
    assert.equal(svc(u).watchdogMs, 500);
  });
  test('WorkingDirectory "-" and "~", PIDFile relative to /run, escaped device names kept', () => {
    const u = load(
      '[Unit]\nBindsTo=dev-disk-by\\x2dlabel-backup.device\nAfter=foo\n[Service]\nExecStart=/bin/true\nWorkingDirectory=-~\nPIDFile=foo.pid\n',
    );
    assert.deepEqual(u.unit.dependencies.BindsTo, ['dev-disk-by\\x2dlabel-backup.device']);
    assert.deepEqual(u.unit.dependencies.After, []);
    assert.equal(svc(u).exec.workingDirectory, '~');
    assert.equal(svc(u).exec.workingDirectoryOptional, true);
    assert.equal(svc(u).pidFile, '/run/foo.pid');
    assert.deepEqual(diags(u), [['warning', 'ERR_UNIT_BAD_VALUE', 3]]);
  });
  test('dependency aliases of systemd (BindTo=, PropagateReloadTo=) and obsolete ones warn', () => {
    const u = load(
      '[Unit]\nBindTo=a.service\nPropagateReloadTo=b.service\nRequiresOverridable=c.service\n[Service]\nExecStart=/bin/true\n',
    );
    assert.deepEqual(u.unit.dependencies.BindsTo, ['a.service']);
    assert.deepEqual(u.unit.dependencies.PropagatesReloadTo, ['b.service']);
    assert.deepEqual(u.unit.dependencies.Requires, ['c.service']);
    assert.deepEqual(diags(u), [['warning', 'ERR_UNIT_DEPRECATED_KEY', 4]]);
  });
  test('every table row has a unique (section, key), and no row is also listed as unsupported', () => {
    const seen = new Set<string>();
    for (const r of KEY_TABLE) {
      const id = `${r.section}.${r.key}`;
      assert.ok(!seen.has(id), id);
      seen.add(id);
      if (r.unsupported !== true) {
        assert.ok(!(r.section === 'Unit' && UNSUPPORTED_UNIT_KEYS.has(r.key)), id);
        assert.ok(!(r.section === 'Service' && UNSUPPORTED_SERVICE_KEYS.has(r.key)), id);
      }
    }
  });
});

describe('broken input never throws', () => {
  test('random and mutated unit texts', () => {
    const seed = 0x6c6f6164;
    const prng = new Prng(seed);
    const base = fs.readFileSync(path.join(TREE, 'etc/simple.service'));
    for (let i = 0; i < 2000; i++) {
      const input = Buffer.from(base);
      for (let k = 0; k < 1 + prng.int(8); k++)
        input[prng.int(input.length)] = prng.pick([...Buffer.from('[]=\\\n"\'%;@-+!:~ \0\xff')]);
      try {
        const u = parseUnitText(
          prng.pick(['x.service', 'x@i.service', 'x.socket', 'x.target']),
          input,
          '/f',
          { host: HOST },
        );
        assert.ok(['loaded', 'bad-setting', 'error'].includes(u.loadState));
      } catch (e) {
        assert.fail(`seed ${seed} iteration ${i} threw on ${input.toString('hex')}: ${String(e)}`);
      }
    }
  });
  test('a broken section header makes the load state "error"', () => {
    assert.equal(load('[Service\nExecStart=/bin/true\n').loadState, 'error');
  });
  test('an empty file is masked; an invalid name is an error', () => {
    assert.equal(load('').loadState, 'masked');
    assert.equal(parseUnitText('no-suffix', '[Unit]\n', '/f').loadState, 'error');
  });
});

describe('the unit search path (fixture tree)', () => {
  const loader = new UnitLoader(TREE_PATHS, { host: HOST });
  const rel = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : path.relative(TREE, p);

  test('earlier directories win; drop-ins are sorted by name, the earlier or more specific one of a name wins', () => {
    const u = loader.load('simple.service');
    assert.equal(u.loadState, 'loaded');
    assert.equal(rel(u.fragmentPath), 'etc/simple.service');
    assert.equal(u.unit.description, 'Simple simple.service');
    assert.deepEqual(u.dropInPaths.map(rel), [
      'lib/service.d/05-type.conf',
      'run/simple.service.d/10-lib.conf',
      'etc/simple.service.d/20-etc.conf',
    ]);
    assert.deepEqual(svc(u).exec.environment, [
      ['FROM', 'fragment'],
      ['TYPE', '1'],
      ['RUN10', '1'],
    ]);
    // 20-etc.conf reset ExecStartPre= and set its own; its line numbers point into the drop-in.
    assert.deepEqual(
      svc(u).execStartPre.map((c) => [c.argv, rel(c.source.file), c.source.line]),
      [[['/bin/true', 'pre2'], 'etc/simple.service.d/20-etc.conf', 4]],
    );
    assert.equal(svc(u).timeoutStartMs, 5000);
  });

  test('a symlink to another unit name in the path is an alias', () => {
    const a = loader.load('simple-alias.service');
    assert.equal(a.name, 'simple.service');
    assert.ok(a.aliases.includes('simple-alias.service'));
    assert.equal(rel(a.fragmentPath), 'etc/simple.service');
    assert.deepEqual(loader.load('simple.service').aliases, ['simple-alias.service']);
  });

  test('a symlink to /dev/null and an empty file mask, whatever lower directories have', () => {
    assert.equal(loader.load('masked.service').loadState, 'masked');
    assert.equal(loader.load('empty.service').loadState, 'masked');
  });

  test('a symlink out of the path is a linked unit file', () => {
    const u = loader.load('linked.service');
    assert.equal(u.loadState, 'loaded');
    assert.equal(u.name, 'linked.service');
    assert.equal(u.unit.description, 'Linked from outside the unit path');
  });

  test('not found, alias loops and broken files', () => {
    assert.equal(loader.load('nope.service').loadState, 'not-found');
    assert.equal(loader.load('nope.service').diagnostics[0].code, 'ERR_UNIT_NOT_FOUND');
    assert.equal(loader.load('cycle-a.service').loadState, 'error');
    assert.equal(loader.load('broken.service').loadState, 'error');
    assert.equal(loader.load('not a unit').loadState, 'error');
  });

  test('templates: an instance loads the template file with its instance, drop-ins of both', () => {
    const u = loader.load('tmpl@foo.service');
    assert.equal(u.loadState, 'loaded');
    assert.equal(u.name, 'tmpl@foo.service');
    assert.equal(u.instance, 'foo');
    assert.equal(rel(u.fragmentPath), 'lib/tmpl@.service');
    assert.equal(u.unit.description, 'Template foo (foo) prefix tmpl name tmpl@foo.service stem tmpl@foo');
    assert.deepEqual(u.unit.dependencies.Requires, ['tmpl-helper@foo.service']);
    assert.deepEqual(u.dropInPaths.map(rel), [
      'lib/service.d/05-type.conf',
      'lib/service.d/10-lib.conf',
      'lib/tmpl@foo.service.d/10-tmpl.conf',
      'lib/tmpl@foo.service.d/20-inst.conf',
    ]);
    assert.deepEqual(
      svc(u).exec.environment.map(([k]) => k),
      ['INST', 'TYPE', 'TYPE10', 'INSTANCE_10', 'INSTANCE_20'],
    );
    assert.equal(u.install.defaultInstance, 'default');
    assert.deepEqual(u.aliases, ['tmplalias@foo.service']);
  });

  test('another instance gets the template drop-in; escaped instances unescape in %I and %f', () => {
    const u = loader.load('tmpl@a\\x2db.service');
    assert.deepEqual(svc(u).execStart[0].argv, ['/bin/echo', 'a\\x2db', 'a-b', 'tmpl', 'tmpl', '/a-b']);
    assert.equal(svc(u).exec.workingDirectory, '/srv/a-b');
    assert.deepEqual(u.dropInPaths.map(rel), [
      'lib/service.d/05-type.conf',
      'lib/service.d/10-lib.conf',
      'lib/tmpl@.service.d/10-tmpl.conf',
    ]);
  });

  test('a template alias aliases every instance; an instance linked to its template is just that instance', () => {
    const a = loader.load('tmplalias@x.service');
    assert.equal(a.name, 'tmpl@x.service');
    assert.deepEqual(a.aliases, ['tmplalias@x.service']);
    const p = loader.load('tmpl@pinned.service');
    assert.equal(p.loadState, 'loaded');
    assert.equal(p.name, 'tmpl@pinned.service');
    assert.equal(p.instance, 'pinned');
  });

  test('dash-prefix drop-ins: a-b-c.service reads a-b-.service.d and a-.service.d, the deeper one wins', () => {
    const u = loader.load('a-b-c.service');
    assert.equal(u.unit.description, 'from a-b-');
    assert.deepEqual(u.dropInPaths.map(rel), [
      'lib/service.d/05-type.conf',
      'lib/service.d/10-lib.conf',
      'lib/a-b-.service.d/10-prefix.conf',
      'etc/a-.service.d/20-prefix.conf',
    ]);
  });

  test('.wants/ directories add Wants=; Accept=yes without a template service is refused at load', () => {
    const t = loader.load('multi-user.target');
    assert.deepEqual(t.unit.dependencies.Wants, ['simple.service', 'a-b-c.service']);
    assert.equal(t.unit.allowIsolate, true);
    const s = loader.load('foo.socket');
    assert.equal(s.loadState, 'bad-setting');
    assert.deepEqual(diags(s), [['error', 'ERR_UNIT_BAD_SETTING', 6]]);
    assert.match(
      s.diagnostics[0]?.message ?? '',
      /foo\.socket:6: Accept=yes starts one instance of the template foo@\.service per connection, but there is no foo@\.service/,
    );
  });

  test('legacy StartLimit*= in [Service] from a file', () => {
    const u = loader.load('legacy.service');
    assert.equal(u.unit.startLimitBurst, 3);
    assert.deepEqual(
      diags(u).map((d) => [d[1], d[2]]),
      [
        ['ERR_UNIT_LEGACY_SECTION', 5],
        ['ERR_UNIT_LEGACY_SECTION', 6],
        ['ERR_UNIT_LEGACY_SECTION', 7],
      ],
    );
  });

  test('listUnitFiles: enablement state per file, first directory wins', () => {
    const states = Object.fromEntries(loader.listUnitFiles().map((f) => [f.name, [f.state, rel(f.path)]]));
    assert.deepEqual(states['simple.service'], ['enabled', 'etc/simple.service']);
    assert.deepEqual(states['simple-alias.service'], ['alias', 'etc/simple-alias.service']);
    assert.deepEqual(states['masked.service'], ['masked', 'etc/masked.service']);
    assert.deepEqual(states['empty.service'], ['masked', 'etc/empty.service']);
    assert.deepEqual(states['linked.service'], ['linked', 'etc/linked.service']);
    assert.deepEqual(states['static.service'], ['static', 'lib/static.service']);
    assert.deepEqual(states['tmpl@.service'], ['disabled', 'lib/tmpl@.service']);
    assert.deepEqual(states['foo.socket'], ['disabled', 'lib/foo.socket']);
    assert.deepEqual(states['broken.service'], ['bad', 'lib/broken.service']);
  });

  test('loadAll loads every unit file that is not a template or an alias name', () => {
    const names = loader.loadAll().map((u) => u.name);
    assert.ok(
      names.includes('simple.service') &&
        names.includes('foo.socket') &&
        names.includes('tmpl@pinned.service'),
    );
    assert.ok(!names.includes('tmpl@.service') && !names.includes('simple-alias.service'));
  });

  test("unitNames and installEdges (the engine's UnitSource)", () => {
    const names = loader.unitNames();
    assert.ok(names.includes('simple-alias.service') && names.includes('tmpl@pinned.service'));
    assert.ok(!names.includes('tmpl@.service'));
    assert.deepEqual(loader.installEdges(), [
      { from: 'multi-user.target', kind: 'Wants', to: 'simple.service' },
      { from: 'multi-user.target', kind: 'Wants', to: 'a-b-c.service' },
    ]);
  });

  test('refresh() sees new files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-units-'));
    try {
      const l = new UnitLoader([dir], { host: HOST });
      assert.equal(l.load('late.service').loadState, 'not-found');
      fs.writeFileSync(path.join(dir, 'late.service'), '[Service]\nExecStart=/bin/true\n');
      assert.equal(l.load('late.service').loadState, 'not-found');
      l.refresh();
      assert.equal(l.load('late.service').loadState, 'loaded');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('verify', () => {
  test('warnings pass, errors fail, missing executables and users are warnings', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-verify-'));
    try {
      const write = (n: string, t: string): string => {
        fs.writeFileSync(path.join(dir, n), t);
        return path.join(dir, n);
      };
      const good = write('good.service', '[Service]\nExecStart=/bin/true\nFoo=1\n');
      const missing = write(
        'missing.service',
        '[Service]\nExecStart=/nonexistent/bin/x\nUser=no-such-user-here\n',
      );
      const bad = write('bad.service', '[Service]\nType=oneshot\n');
      const tmpl = write('t@.service', '[Service]\nExecStart=/bin/echo %i\n[Install]\nDefaultInstance=one\n');
      const results = verifyUnitFiles([good, missing, bad, tmpl], { unitPaths: [] });
      assert.equal(verifyFailed(results.slice(0, 2)), false);
      assert.equal(verifyFailed(results), true);
      assert.deepEqual(
        results[1].diagnostics.map((d) => [d.code, d.source?.line]),
        [
          ['ERR_UNIT_EXEC_MISSING', 2],
          ['ERR_UNIT_USER_MISSING', 3],
        ],
      );
      assert.equal(results[3].unit, 't@one.service');
      assert.equal(verifyFailed(verifyUnitFiles([missing], { unitPaths: [], strict: true })), true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the examples/ units verify without errors', () => {
    const dir = path.join(ROOT, 'examples');
    const files = fs
      .readdirSync(dir)
      .filter((f) => parseUnitName(f) !== undefined)
      .map((f) => path.join(dir, f));
    const results = verifyUnitFiles(files, { unitPaths: [] });
    assert.equal(verifyFailed(results), false, JSON.stringify(results));
  });
});

describe('speed', () => {
  test('1,000 generated unit files (with drop-ins and aliases) load in well under a second', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-speed-'));
    try {
      for (let i = 0; i < 1000; i++) {
        const name = `gen-${Math.floor(i / 100)}-unit${i}.service`;
        fs.writeFileSync(
          path.join(dir, name),
          `[Unit]\nDescription=Generated %n\nAfter=network.target gen-${i + 1}.service\nWants=other.service\n\n` +
            `[Service]\nType=simple\nExecStart=/usr/bin/sleep ${i}\nEnvironment="A=1 2" B=%i\nRestart=on-failure\nRestartSec=1s\n` +
            `TimeoutStopSec=10s\nUser=nobody\nLimitNOFILE=1024:4096\nProtectSystem=strict\nReadWritePaths=-/var/lib/gen\n\n` +
            `[Install]\nWantedBy=multi-user.target\n`,
        );
        if (i % 10 === 0) {
          fs.mkdirSync(path.join(dir, `${name}.d`));
          fs.writeFileSync(
            path.join(dir, `${name}.d`, 'override.conf'),
            '[Service]\nEnvironment=OVERRIDE=1\n',
          );
        }
      }
      for (let i = 0; i < 1000; i += 20) {
        fs.symlinkSync(`gen-${Math.floor(i / 100)}-unit${i}.service`, path.join(dir, `alias${i}.service`));
      }
      fs.mkdirSync(path.join(dir, 'gen-.service.d'));
      fs.writeFileSync(path.join(dir, 'gen-.service.d', '10-all.conf'), '[Unit]\nDocumentation=man:gen(8)\n');
      const units = new UnitLoader([dir], { host: HOST }).loadAll();
      assert.equal(units.length, 1000);
      assert.ok(units.every((u) => u.loadState === 'loaded' && u.diagnostics.length === 0));
      assert.equal(units[0].unit.documentation[0], 'man:gen(8)');
      assert.deepEqual(units[0].aliases, ['alias0.service']);
      // How fast this is lives in bench/load-units, not in a test.
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('large files (found by the fuzz harness)', () => {
  test('a file with 300,000 diagnostics, entries or list items loads instead of overflowing the stack', () => {
    // push(...list) with this many arguments threw RangeError: Maximum call stack size exceeded.
    const warned = load('[Unit]\n' + 'no equals sign\n'.repeat(300_000));
    assert.equal(warned.diagnostics.filter((d) => d.code === 'ERR_UNIT_SYNTAX').length, 300_000);
    const raw = load('[Service]\nExecStart=/bin/true\n[X-Fuzz]\n' + 'A=1\n'.repeat(300_000));
    assert.equal(raw.raw.get('X-Fuzz')?.length, 300_000);
    const env = load('[Service]\nExecStart=/bin/true\nEnvironment=' + 'A=1 '.repeat(250_000) + '\n');
    assert.equal(svc(env).exec.environment.length, 250_000);
    const paths = load('[Service]\nExecStart=/bin/true\nReadWritePaths=' + '/ '.repeat(300_000) + '\n');
    assert.equal(svc(paths).exec.readWritePaths.length, 300_000);
  });

  test('60,000 Wants= lines load in linear time, duplicates still dropped', () => {
    // appendUnique's list.includes made this quadratic: 83 s.
    const names = Array.from({ length: 60_000 }, (_, i) => `u${i}.service`);
    const t0 = performance.now();
    const u = load(
      `[Unit]\n${names.map((n) => `Wants=${n}\n`).join('')}Wants=u0.service u1.service\nWants=${names.join(' ').slice(0, 500_000)}\n` +
        '[Service]\nExecStart=/bin/true\n',
    );
    assert.ok(performance.now() - t0 < 5000, `took ${performance.now() - t0} ms`);
    assert.deepEqual(u.unit.dependencies.Wants, names);
  });
});
