// buildExecPlan as tables of cases: user and group lookup against a fixture /etc, the
// environment (files, order, unset), `$VAR` expansion, the PATH search, the working directory,
// limits, prefixes and the sandbox's mount steps against a fixture mountinfo. Pure: temp dirs only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Diagnostic, ExecCommand, ExecContext } from '../../src/units/config-types';
import type { ExecPlan, MountStep } from '../../src/exec/exec-plan';
import {
  buildExecPlan,
  ExecPlanError,
  type ExecEnvironmentInput,
  type ExecPlanOptions,
} from '../../src/exec/exec-context-plan';
import { expandArgv, parseEnvironmentFile, splitUnquote } from '../../src/exec/exec-environment';
import { parseMountInfo, topMountsBelow } from '../../src/exec/mount-info';
import { defaultNofileSoft, parseOpenFilesLimit } from '../../src/exec/nofile-limit';
import { command, inheritingContext as context } from '../helpers/unit-fixtures';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1001:1001:Alice:/home/alice:/bin/zsh
bob:x:1002:1002::/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
audio:x:29:alice
alice:x:1001:
bob:x:1002:
devs:x:2000:alice,bob
ops:x:2001:bob
nogroup:x:65534:
`;
const MOUNTINFO = `21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
22 21 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
23 22 0:21 / /sys/fs/cgroup rw shared:3 - tmpfs tmpfs rw
24 23 0:22 / /sys/fs/cgroup/unified rw shared:4 - cgroup2 cgroup2 rw
25 22 0:23 / /sys/kernel/debug rw shared:5 - debugfs debugfs rw
26 21 0:5 / /dev rw shared:6 - devtmpfs udev rw
27 26 0:24 / /dev/pts rw shared:7 - devpts devpts rw
28 21 0:25 / /proc rw shared:8 - proc proc rw
29 21 0:26 / /run rw,nosuid shared:9 - tmpfs tmpfs rw
30 29 0:27 / /run/user/1000 rw shared:10 - tmpfs tmpfs rw
31 21 8:2 / /boot rw shared:11 - ext4 /dev/sda2 rw
32 21 8:3 / /srv/with\\040space rw shared:12 - ext4 /dev/sda3 rw
`;

let fixture: string;
let etcRoot: string;
let runtimeDir: string;
let binA: string;
let binB: string;

before(() => {
  fixture = mkdtempSync(path.join(tmpdir(), 'triggerd-plan-'));
  etcRoot = path.join(fixture, 'root');
  mkdirSync(path.join(etcRoot, 'etc'), { recursive: true });
  writeFileSync(path.join(etcRoot, 'etc', 'passwd'), PASSWD);
  writeFileSync(path.join(etcRoot, 'etc', 'group'), GROUP);
  runtimeDir = path.join(fixture, 'run');
  binA = path.join(fixture, 'bin-a');
  binB = path.join(fixture, 'bin-b');
  mkdirSync(binA);
  mkdirSync(binB);
  writeFileSync(path.join(binA, 'tool'), 'not executable\n', { mode: 0o644 });
  writeFileSync(path.join(binB, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(binB, 'other'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(fixture, 'app.env'), '# comment\nFROM_FILE=one\nSHARED=file\n');
  writeFileSync(path.join(fixture, 'b.env'), 'B=1\n');
  writeFileSync(path.join(fixture, 'c.env'), 'C=2\n');
});

after(() => {
  // Mode-000 nodes made by the sandbox: give them back a mode rm can traverse.
  try {
    chmodSync(path.join(runtimeDir, 'inaccessible', 'dir'), 0o755);
  } catch {
    // not made by every run
  }
  rmSync(fixture, { recursive: true, force: true });
});

const ENV: ExecEnvironmentInput = { base: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' }, pass: {} };

function options(overrides: Partial<ExecPlanOptions> = {}): ExecPlanOptions {
  return {
    unitName: 'test.service',
    runtimeDir,
    stdio: { stdin: -1, stdout: 1, stderr: 2 },
    userDatabaseRoot: etcRoot,
    mountInfo: MOUNTINFO,
    ...overrides,
  };
}

function build(
  ctx: Partial<ExecContext>,
  argv: string[] = ['/bin/true'],
  cmd: Partial<ExecCommand> = {},
  env: ExecEnvironmentInput = ENV,
  opts: Partial<ExecPlanOptions> = {},
): { plan: ExecPlan; diagnostics: Diagnostic[] } {
  return buildExecPlan(context(ctx), command(argv, cmd), env, options(opts));
}

function envOf(plan: ExecPlan): Record<string, string> {
  return Object.fromEntries(plan.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

function throwsPlanError(fn: () => unknown, code: string, subject?: string, step?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ExecPlanError, `an ExecPlanError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (subject !== undefined) assert.equal(err.subject, subject);
    if (step !== undefined) assert.equal(err.step, step);
    return true;
  });
}

describe('buildExecPlan: User=, Group=, SupplementaryGroups=', () => {
  const cases: {
    name: string;
    ctx: Partial<ExecContext>;
    cmd?: Partial<ExecCommand>;
    uid?: number;
    gid?: number;
    groups?: number[];
    env?: Record<string, string | undefined>;
  }[] = [
    {
      name: 'by name: ids, initgroups-style groups, HOME/USER/LOGNAME/SHELL',
      ctx: { user: 'alice' },
      uid: 1001,
      gid: 1001,
      groups: [1001, 29, 2000],
      env: { HOME: '/home/alice', USER: 'alice', LOGNAME: 'alice', SHELL: '/bin/zsh' },
    },
    {
      name: 'numeric uid in the database takes the database name',
      ctx: { user: '1002' },
      uid: 1002,
      gid: 1002,
      groups: [1002, 2000, 2001],
      env: { USER: 'bob', HOME: '/home/bob' },
    },
    {
      name: 'numeric uid not in the database: accepted, group = uid, no HOME',
      ctx: { user: '4242' },
      uid: 4242,
      gid: 4242,
      groups: [4242],
      env: { USER: '4242', HOME: undefined, SHELL: undefined },
    },
    {
      name: 'Group= by name overrides the primary group',
      ctx: { user: 'alice', group: 'devs' },
      uid: 1001,
      gid: 2000,
      groups: [2000, 29, 2000].filter((g, i, a) => a.indexOf(g) === i),
    },
    { name: 'numeric Group= not in the database', ctx: { group: '777' }, gid: 777, groups: [] },
    {
      name: 'SupplementaryGroups= by name and number, appended',
      ctx: { user: 'bob', supplementaryGroups: ['audio', '3000'] },
      uid: 1002,
      gid: 1002,
      groups: [1002, 2000, 2001, 29, 3000],
    },
    {
      name: 'User=root: primary group 0 adds no memberships (the daemon groups are dropped)',
      ctx: { user: 'root' },
      uid: 0,
      gid: 0,
      groups: [],
    },
    {
      name: 'no user or group: credentials unchanged',
      ctx: {},
      uid: undefined,
      gid: undefined,
      groups: undefined,
      env: { USER: undefined, HOME: undefined },
    },
    {
      name: "'+': no user change, but the variables name the user",
      ctx: { user: 'alice' },
      cmd: { fullPrivileges: true },
      uid: undefined,
      gid: undefined,
      groups: undefined,
      env: { USER: 'alice' },
    },
    {
      name: "'!': no user change",
      ctx: { user: 'alice' },
      cmd: { noSetuidDrop: true },
      uid: undefined,
      gid: undefined,
    },
    {
      name: "'!!': ambient capabilities exist here, so the user changes",
      ctx: { user: 'alice' },
      cmd: { ambientFallback: true },
      uid: 1001,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { plan } = build(c.ctx, ['/bin/true'], c.cmd);
      assert.equal(plan.uid, c.uid);
      if ('gid' in c) assert.equal(plan.gid, c.gid);
      if ('groups' in c) assert.deepEqual(plan.groups, c.groups);
      const env = envOf(plan);
      for (const [k, v] of Object.entries(c.env ?? {})) assert.equal(env[k], v, k);
    });
  }

  it('unknown user name: ERR_EXEC_USER naming the user, at step USER', () => {
    throwsPlanError(() => build({ user: 'mallory' }), 'ERR_EXEC_USER', 'mallory', 'USER');
  });
  it('unknown group name: ERR_EXEC_GROUP', () => {
    throwsPlanError(() => build({ group: 'wheel' }), 'ERR_EXEC_GROUP', 'wheel', 'GROUP');
    throwsPlanError(() => build({ supplementaryGroups: ['nope'] }), 'ERR_EXEC_GROUP', 'nope', 'GROUP');
  });
  it('a numeric user outside the database is reported as a warning', () => {
    const { diagnostics } = build({ user: '4242' });
    assert.ok(diagnostics.some((d) => d.code === 'EXEC_USER_NOT_IN_DATABASE' && d.source?.line === 1));
  });
});

describe('buildExecPlan: environment', () => {
  it('merges base < extra < user < PassEnvironment < Environment= < EnvironmentFile=', () => {
    const { plan } = build(
      {
        user: 'alice',
        passEnvironment: ['FROM_DAEMON', 'NOT_SET'],
        environment: [
          ['SHARED', 'environment'],
          ['HOME', '/override'],
          ['LANG', 'de_DE.UTF-8'],
        ],
        environmentFiles: [{ path: path.join(fixture, 'app.env'), optional: false }],
      },
      ['/bin/true'],
      {},
      {
        base: { PATH: '/x', LANG: 'C', SHARED: 'base' },
        extra: { MAINPID: '42', SHARED: 'extra' },
        pass: { FROM_DAEMON: 'yes' },
      },
    );
    const env = envOf(plan);
    assert.deepEqual(env, {
      PATH: '/x',
      MAINPID: '42',
      LOGNAME: 'alice',
      USER: 'alice',
      SHELL: '/bin/zsh',
      FROM_DAEMON: 'yes',
      HOME: '/override',
      LANG: 'de_DE.UTF-8',
      FROM_FILE: 'one',
      SHARED: 'file',
    });
    assert.equal(plan.env.length, Object.keys(env).length, 'no duplicates');
  });

  it("adds systemd's default PATH when the base has none", () => {
    const { plan } = build({}, ['/bin/true'], {}, { base: {} });
    assert.equal(envOf(plan).PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('UnsetEnvironment= removes by name, or only the exact assignment', () => {
    const { plan } = build({
      environment: [
        ['A', '1'],
        ['B', '2'],
        ['C', '3'],
      ],
      unsetEnvironment: ['A', 'B=2', 'C=not-3', 'LANG'],
    });
    const env = envOf(plan);
    assert.equal(env.A, undefined);
    assert.equal(env.B, undefined);
    assert.equal(env.C, '3');
    assert.equal(env.LANG, undefined);
  });

  it("EnvironmentFile=: a missing '-' file is fine, a missing required one is ERR_EXEC_ENVIRONMENT_FILE", () => {
    const missing = path.join(fixture, 'missing.env');
    const { plan } = build({ environmentFiles: [{ path: missing, optional: true }] });
    assert.equal(envOf(plan).PATH, '/usr/bin:/bin');
    throwsPlanError(
      () => build({ environmentFiles: [{ path: missing, optional: false }] }),
      'ERR_EXEC_ENVIRONMENT_FILE',
      missing,
    );
    throwsPlanError(
      () => build({ environmentFiles: [{ path: 'relative.env', optional: true }] }),
      'ERR_EXEC_ENVIRONMENT_FILE',
    );
  });

  it('EnvironmentFile= with a wildcard reads the matches in order', () => {
    const { plan } = build({ environmentFiles: [{ path: path.join(fixture, '[bc].env'), optional: false }] });
    const env = envOf(plan);
    assert.equal(env.B, '1');
    assert.equal(env.C, '2');
    const none = path.join(fixture, '*.nothing');
    throwsPlanError(
      () => build({ environmentFiles: [{ path: none, optional: false }] }),
      'ERR_EXEC_ENVIRONMENT_FILE',
    );
    assert.doesNotThrow(() => build({ environmentFiles: [{ path: none, optional: true }] }));
  });
});

describe('parseEnvironmentFile (systemd env-file.c)', () => {
  const cases: { name: string; text: string; expect: [string, string][]; invalid?: string[] }[] = [
    {
      name: 'plain, comments, blank lines',
      text: '# c\n; c\n\nA=1\n  B = two  \n',
      expect: [
        ['A', '1'],
        ['B', 'two'],
      ],
    },
    { name: 'interior whitespace kept, trailing trimmed', text: 'A=a b  c   \n', expect: [['A', 'a b  c']] },
    { name: 'single quotes verbatim', text: "A='x \\n $y'\n", expect: [['A', 'x \\n $y']] },
    {
      name: 'double quotes with escapes',
      text: 'A="a \\"q\\" \\$v \\\\ \\n"\n',
      expect: [['A', 'a "q" $v \\ \\n']],
    },
    {
      name: 'quotes spanning lines',
      text: "A='one\ntwo'\nB=3\n",
      expect: [
        ['A', 'one\ntwo'],
        ['B', '3'],
      ],
    },
    { name: 'backslash-newline continues', text: 'A=one \\\ntwo\n', expect: [['A', 'one two']] },
    {
      name: 'backslash escapes a character',
      text: 'A=\\#not-comment\\ x\n',
      expect: [['A', '#not-comment x']],
    },
    { name: 'quotes after text are kept', text: 'A=it\'s "ok"\n', expect: [['A', 'it\'s "ok"']] },
    {
      name: 'empty value and no final newline',
      text: 'A=\nB=last',
      expect: [
        ['A', ''],
        ['B', 'last'],
      ],
    },
    {
      name: 'later assignment wins (in order)',
      text: 'A=1\nA=2\n',
      expect: [
        ['A', '1'],
        ['A', '2'],
      ],
    },
    { name: 'lines without = are ignored', text: 'JUSTAWORD\nA=1\n', expect: [['A', '1']] },
    {
      name: 'invalid names are reported, not used',
      text: '1X=no\nA-B=no\nOK=yes\n',
      expect: [['OK', 'yes']],
      invalid: ['1X', 'A-B'],
    },
    {
      name: 'CRLF line ends',
      text: 'A=1\r\nB=2\r\n',
      expect: [
        ['A', '1'],
        ['B', '2'],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseEnvironmentFile(c.text);
      assert.deepEqual(
        parsed.assignments.map((a) => [a.key, a.value]),
        c.expect,
      );
      assert.deepEqual(
        parsed.invalid.map((i) => i.key),
        c.invalid ?? [],
      );
    });
  }
});

describe('$VAR expansion in command lines', () => {
  const env = new Map([
    ['WORDS', 'a b  \'c d\' "e f"'],
    ['ONE', 'x  y'],
    ['EMPTY', ''],
  ]);
  const cases: { name: string; argv: string[]; expect: string[]; unset?: string[] }[] = [
    {
      name: '$VAR alone splits at whitespace, honouring quotes',
      argv: ['/bin/echo', '$WORDS'],
      expect: ['/bin/echo', 'a', 'b', 'c d', 'e f'],
    },
    { name: '${VAR} never splits', argv: ['/bin/echo', '${ONE}'], expect: ['/bin/echo', 'x  y'] },
    {
      name: '${VAR} inside a word',
      argv: ['/bin/echo', '--opt=${ONE}!'],
      expect: ['/bin/echo', '--opt=x  y!'],
    },
    {
      name: '$VAR inside a word is left alone',
      argv: ['/bin/echo', 'a$ONE'],
      expect: ['/bin/echo', 'a$ONE'],
    },
    { name: '$$ is a literal $', argv: ['/bin/echo', '$$ONE', 'x$$y'], expect: ['/bin/echo', '$ONE', 'x$y'] },
    {
      name: 'unset $VAR gives no word, ${VAR} an empty one',
      argv: ['/bin/echo', '$NOPE', '${NOPE2}'],
      expect: ['/bin/echo', ''],
      unset: ['NOPE', 'NOPE2'],
    },
    { name: 'empty $VAR gives no word', argv: ['/bin/echo', '$EMPTY'], expect: ['/bin/echo'] },
    {
      name: '${VAR:-default} is not command-line syntax',
      argv: ['/bin/echo', '${ONE:-d}'],
      expect: ['/bin/echo', '${ONE:-d}'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = expandArgv(c.argv, env);
      assert.deepEqual(result.argv, c.expect);
      assert.deepEqual(result.unset, c.unset ?? []);
    });
  }

  it('splitUnquote: backslashes and unclosed quotes', () => {
    assert.deepEqual(splitUnquote('a\\ b "c'), ['a b', 'c']);
    assert.deepEqual(splitUnquote('  '), []);
    assert.deepEqual(splitUnquote("''"), ['']);
  });

  it("buildExecPlan expands with the final environment, but not with ':'", () => {
    const ctx = { environment: [['ARGS', '-a -b'] as [string, string]] };
    assert.deepEqual(build(ctx, ['/bin/echo', '$ARGS', '${ARGS}']).plan.argv, [
      '/bin/echo',
      '-a',
      '-b',
      '-a -b',
    ]);
    assert.deepEqual(build(ctx, ['/bin/echo', '$ARGS'], { noEnvExpand: true }).plan.argv, [
      '/bin/echo',
      '$ARGS',
    ]);
    const { diagnostics } = build({}, ['/bin/echo', '${MISSING}']);
    assert.ok(diagnostics.some((d) => d.code === 'EXEC_UNSET_VARIABLE' && d.message.includes('MISSING')));
  });
});

describe('buildExecPlan: executable, working directory, limits, fds', () => {
  it('searches a bare name in the search path, skipping files that are not executable', () => {
    const { plan } = build({}, ['tool', '--x'], {}, ENV, { searchPath: [binA, binB] });
    assert.equal(plan.path, path.join(binB, 'tool'));
    assert.deepEqual(plan.argv, ['tool', '--x']);
  });
  it("searches systemd's default PATH by default", () => {
    assert.equal(build({}, ['sh']).plan.path.endsWith('/sh'), true);
  });
  it('a name not found is ERR_EXEC_NOT_FOUND at step EXEC; a relative path is invalid', () => {
    throwsPlanError(
      () => build({}, ['no-such-tool'], {}, ENV, { searchPath: [binA, binB] }),
      'ERR_EXEC_NOT_FOUND',
      'no-such-tool',
      'EXEC',
    );
    throwsPlanError(() => build({}, ['bin/tool']), 'ERR_EXEC_INVALID');
  });
  it('an absolute path is taken as is (execve reports a missing one)', () => {
    assert.equal(build({}, ['/no/such/binary']).plan.path, '/no/such/binary');
  });

  const dirCases: { name: string; ctx: Partial<ExecContext>; cwd: string; optional?: boolean }[] = [
    { name: 'default /', ctx: {}, cwd: '/' },
    { name: '~ is the user home', ctx: { user: 'alice', workingDirectory: '~' }, cwd: '/home/alice' },
    { name: "~ without User= is root's home", ctx: { workingDirectory: '~' }, cwd: '/root' },
    {
      name: "leading '-' makes it optional",
      ctx: { workingDirectory: '-/srv/gone' },
      cwd: '/srv/gone',
      optional: true,
    },
    {
      name: 'the loader flag makes it optional',
      ctx: { workingDirectory: '/srv/x', workingDirectoryOptional: true },
      cwd: '/srv/x',
      optional: true,
    },
  ];
  for (const c of dirCases) {
    it(`WorkingDirectory: ${c.name}`, () => {
      const { plan } = build(c.ctx);
      assert.equal(plan.cwd, c.cwd);
      assert.equal(plan.cwdOptional, c.optional);
    });
  }
  it('WorkingDirectory=~ for a user without a home entry, or a relative one, is an error at CHDIR', () => {
    throwsPlanError(
      () => build({ user: '4242', workingDirectory: '~' }),
      'ERR_EXEC_WORKING_DIRECTORY',
      '~',
      'CHDIR',
    );
    throwsPlanError(() => build({ workingDirectory: 'srv' }), 'ERR_EXEC_WORKING_DIRECTORY');
  });

  it('Limit*= become RLIMIT numbers, infinity -1; unknown ones warn', () => {
    const { plan, diagnostics } = build({
      limits: [
        { resource: 'nofile', soft: 1024, hard: 4096 },
        { resource: 'core', soft: Infinity, hard: Infinity },
        { resource: 'bogus', soft: 1, hard: 1 },
      ],
      umask: 0o077,
      nice: 5,
      oomScoreAdjust: -100,
    });
    assert.deepEqual(plan.rlimits, [
      { resource: 7, soft: 1024, hard: 4096 },
      { resource: 4, soft: -1, hard: -1 },
    ]);
    assert.deepEqual(
      build({ limits: [{ resource: 'core', soft: 0, hard: 0 }] }, ['/bin/true'], {}, ENV, {
        nofileHardLimit: 4096,
      }).plan.rlimits,
      [
        { resource: 7, soft: 1024, hard: 4096 },
        { resource: 4, soft: 0, hard: 0 },
      ],
      'the default comes first, then the limits of the unit',
    );
    assert.ok(diagnostics.some((d) => d.code === 'EXEC_LIMIT_INVALID'));
    assert.equal(plan.umask, 0o077);
    assert.equal(plan.nice, 5);
    assert.equal(plan.oomScoreAdjust, -100);
  });

  it("without LimitNOFILE=: systemd's soft 1024 under the daemon's hard limit; with it, the unit's alone", () => {
    const nofile = (ctx: Partial<ExecContext>, hard: number | undefined) =>
      build(
        ctx,
        ['/bin/true'],
        {},
        ENV,
        hard === undefined ? {} : { nofileHardLimit: hard },
      ).plan.rlimits.filter((l) => l.resource === 7);
    assert.deepEqual(nofile({}, 1048576), [{ resource: 7, soft: 1024, hard: 1048576 }]);
    assert.deepEqual(nofile({}, 512), [{ resource: 7, soft: 512, hard: 512 }], 'never above the hard limit');
    assert.deepEqual(nofile({}, -1), [{ resource: 7, soft: 1024, hard: -1 }]);
    assert.deepEqual(nofile({ limits: [{ resource: 'NOFILE', soft: 4096, hard: 8192 }] }, 1048576), [
      { resource: 7, soft: 4096, hard: 8192 },
    ]);
    // Not given: this process's own hard limit, from /proc/self/limits.
    const own = parseOpenFilesLimit(readFileSync('/proc/self/limits', 'latin1'));
    assert.ok(own !== undefined);
    assert.deepEqual(nofile({}, undefined), [
      { resource: 7, soft: defaultNofileSoft(own.hard), hard: own.hard },
    ]);
  });

  it('nonBlocking: O_NONBLOCK set or cleared for the mappings of those parent fds only', () => {
    const { plan } = build({}, ['/bin/true'], {}, ENV, {
      stdio: { stdin: 9, stdout: 9, stderr: -1 },
      extraFds: [9, 20, 21],
      nonBlocking: new Map([
        [9, false],
        [20, true],
      ]),
    });
    assert.deepEqual(plan.fds, [
      { childFd: 0, parentFd: 9, nonBlocking: false },
      { childFd: 1, parentFd: 9, nonBlocking: false },
      { childFd: 2, parentFd: -1 },
      { childFd: 3, parentFd: 9, nonBlocking: false },
      { childFd: 4, parentFd: 20, nonBlocking: true },
      { childFd: 5, parentFd: 21 },
    ]);
  });

  it('maps stdio and extra fds to 0, 1, 2, 3, ...; options pass through', () => {
    const { plan } = build({}, ['/bin/true'], {}, ENV, {
      stdio: { stdin: -1, stdout: 7, stderr: 8 },
      extraFds: [20, 21],
      cgroup: '/sys/fs/cgroup/x',
      setListenPid: true,
      newSession: false,
    });
    assert.deepEqual(plan.fds, [
      { childFd: 0, parentFd: -1 },
      { childFd: 1, parentFd: 7 },
      { childFd: 2, parentFd: 8 },
      { childFd: 3, parentFd: 20 },
      { childFd: 4, parentFd: 21 },
    ]);
    assert.equal(plan.cgroup, '/sys/fs/cgroup/x');
    assert.equal(plan.setListenPid, true);
    assert.equal(plan.newSession, false);
    assert.equal(build({}).plan.newSession, true);
  });

  it('RootDirectory= is refused rather than ignored', () => {
    throwsPlanError(() => build({ rootDirectory: '/srv/chroot' }), 'ERR_EXEC_UNSUPPORTED');
  });
});

describe('mountinfo', () => {
  it('parses escapes and finds the top mounts below a path', () => {
    const entries = parseMountInfo(MOUNTINFO);
    assert.equal(entries.length, 12);
    assert.ok(entries.some((e) => e.mountPoint === '/srv/with space' && e.fsType === 'ext4'));
    assert.deepEqual(topMountsBelow(entries, '/sys'), ['/sys/fs/cgroup', '/sys/kernel/debug']);
  });
});

describe('buildExecPlan: sandbox mount steps', () => {
  const remount = (target: string, recursive: boolean, optional = true): MountStep => ({
    kind: 'remount-read-only',
    target,
    recursive,
    optional,
  });

  it('nothing configured: no mount namespace', () => {
    const { plan } = build({});
    assert.deepEqual(plan.mounts, []);
    assert.equal(plan.privateNetwork, false);
    assert.equal(plan.capabilityBoundingSet, undefined);
  });

  it('ProtectSystem=yes: /usr, /boot, /efi read-only, recursively', () => {
    assert.deepEqual(build({ protectSystem: 'yes' }).plan.mounts, [
      remount('/boot', true),
      remount('/efi', true),
      remount('/usr', true, false),
    ]);
  });

  it('ProtectSystem=full adds /etc', () => {
    assert.deepEqual(
      build({ protectSystem: 'full' }).plan.mounts.map((m) => m.target),
      ['/boot', '/efi', '/etc', '/usr'],
    );
  });

  it('ProtectSystem=strict + ReadWritePaths=: / alone, each other mount, API file systems and the writable path left out', () => {
    const { plan } = build({ protectSystem: 'strict', readWritePaths: ['/var/lib/app', '-/srv/gone'] });
    assert.deepEqual(plan.mounts, [
      {
        kind: 'bind',
        source: '/var/lib/app',
        target: '/var/lib/app',
        readOnly: false,
        recursive: true,
        optional: false,
      },
      {
        kind: 'bind',
        source: '/srv/gone',
        target: '/srv/gone',
        readOnly: false,
        recursive: true,
        optional: true,
      },
      remount('/', false, false),
      remount('/boot', true),
      remount('/run', true),
      remount('/srv/with space', true),
    ]);
  });

  it('ProtectSystem=strict + PrivateTmp: the private /tmp stays writable', () => {
    const { plan } = build({ protectSystem: 'strict', privateTmp: true });
    const tmp = path.join(runtimeDir, 'private-tmp', 'test.service');
    assert.deepEqual(plan.mounts, [
      {
        kind: 'bind',
        source: path.join(tmp, 'tmp'),
        target: '/tmp',
        readOnly: false,
        recursive: false,
        optional: false,
      },
      {
        kind: 'bind',
        source: path.join(tmp, 'var-tmp'),
        target: '/var/tmp',
        readOnly: false,
        recursive: false,
        optional: true,
      },
      remount('/', false, false),
      remount('/boot', true),
      remount('/run', true),
      remount('/srv/with space', true),
    ]);
    assert.equal(statSync(path.join(tmp, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(path.join(tmp, 'var-tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(tmp).mode & 0o7777, 0o700);
  });

  it('ProtectHome=yes and InaccessiblePaths=: inaccessible steps with mode-000 sources', () => {
    const { plan } = build({ protectHome: 'yes', inaccessiblePaths: ['/srv/secret', '-/opt/maybe'] });
    assert.deepEqual(plan.mounts, [
      { kind: 'inaccessible', target: '/srv/secret', optional: false },
      { kind: 'inaccessible', target: '/opt/maybe', optional: true },
      { kind: 'inaccessible', target: '/home', optional: true },
      { kind: 'inaccessible', target: '/root', optional: true },
      { kind: 'inaccessible', target: '/run/user', optional: true },
    ]);
    const sources = plan.inaccessibleSources;
    assert.ok(sources !== undefined);
    assert.equal(statSync(sources.directory).mode & 0o7777, 0);
    assert.equal(statSync(sources.file).mode & 0o7777, 0);
    assert.ok(statSync(sources.directory).isDirectory());
    assert.ok(statSync(sources.file).isFile());
  });

  it('ProtectHome=read-only and tmpfs', () => {
    assert.deepEqual(build({ protectHome: 'read-only' }).plan.mounts, [
      remount('/home', true),
      remount('/root', true),
      remount('/run/user', true),
    ]);
    assert.deepEqual(build({ protectHome: 'tmpfs' }).plan.mounts, [
      { kind: 'tmpfs', target: '/home', mode: 0o755, optional: true },
      { kind: 'tmpfs', target: '/root', mode: 0o755, optional: true },
      { kind: 'tmpfs', target: '/run/user', mode: 0o755, optional: true },
      remount('/home', true),
      remount('/root', true),
      remount('/run/user', true),
    ]);
  });

  it('ReadOnlyPaths= with a writable path inside it, and prefixes', () => {
    const { plan, diagnostics } = build({
      readOnlyPaths: ['-/srv/data/', '+/etc', 'relative'],
      readWritePaths: ['/srv/data/cache'],
    });
    assert.deepEqual(plan.mounts, [
      {
        kind: 'bind',
        source: '/srv/data/cache',
        target: '/srv/data/cache',
        readOnly: false,
        recursive: true,
        optional: false,
      },
      remount('/etc', true, false),
      remount('/srv/data', false, true),
    ]);
    assert.ok(diagnostics.some((d) => d.code === 'EXEC_PATH_NOT_ABSOLUTE' && d.message.includes('relative')));
  });

  it('PrivateDevices=: a stage of bound device nodes over /dev, top read-only, MKNOD and SYS_RAWIO dropped', () => {
    const { plan } = build({ privateDevices: true, capabilityBoundingSet: (1n << 27n) | (1n << 10n) });
    const stage = path.join(runtimeDir, 'private-dev', 'test.service');
    const binds = plan.mounts.filter((m) => m.kind === 'bind' && m.target.startsWith(stage));
    assert.deepEqual(
      binds.map((m) => (m.kind === 'bind' ? m.source : '')),
      [
        '/dev/null',
        '/dev/zero',
        '/dev/full',
        '/dev/random',
        '/dev/urandom',
        '/dev/tty',
        '/dev/pts',
        '/dev/shm',
      ],
    );
    assert.deepEqual(plan.mounts.slice(-2), [
      { kind: 'bind', source: stage, target: '/dev', readOnly: false, recursive: true, optional: false },
      remount('/dev', false, false),
    ]);
    assert.ok(statSync(path.join(stage, 'null')).isFile());
    assert.equal(plan.capabilityBoundingSet, 1n << 10n);
  });

  it('PrivateNetwork=: a private sysfs carrying the top mounts below /sys', () => {
    const { plan } = build({ privateNetwork: true });
    assert.equal(plan.privateNetwork, true);
    assert.deepEqual(plan.privateSysfs, { submounts: ['/sys/fs/cgroup', '/sys/kernel/debug'] });
  });

  it('NoNewPrivileges=, CapabilityBoundingSet=, AmbientCapabilities=', () => {
    const { plan } = build({
      noNewPrivileges: true,
      capabilityBoundingSet: 1n << 10n,
      ambientCapabilities: 1n << 10n,
    });
    assert.equal(plan.noNewPrivileges, true);
    assert.equal(plan.capabilityBoundingSet, 1n << 10n);
    assert.equal(plan.ambientCapabilities, 1n << 10n);
  });

  it("'+' skips the whole sandbox; '!' keeps it", () => {
    const ctx: Partial<ExecContext> = {
      user: 'alice',
      protectSystem: 'strict',
      privateNetwork: true,
      noNewPrivileges: true,
      capabilityBoundingSet: 0n,
      ambientCapabilities: 1n,
    };
    const full = build(ctx, ['/bin/true'], { fullPrivileges: true }).plan;
    assert.deepEqual(full.mounts, []);
    assert.equal(full.privateNetwork, false);
    assert.equal(full.noNewPrivileges, false);
    assert.equal(full.capabilityBoundingSet, undefined);
    assert.equal(full.ambientCapabilities, undefined);
    assert.equal(full.uid, undefined);
    const bang = build(ctx, ['/bin/true'], { noSetuidDrop: true }).plan;
    assert.ok(bang.mounts.length > 0);
    assert.equal(bang.privateNetwork, true);
    assert.equal(bang.noNewPrivileges, true);
    assert.equal(bang.capabilityBoundingSet, 0n);
    assert.equal(bang.uid, undefined);
  });

  it('refuses a unit name that is not a single path component', () => {
    throwsPlanError(() => build({}, ['/bin/true'], {}, ENV, { unitName: '../x' }), 'ERR_EXEC_INVALID');
  });
});

describe('parseOpenFilesLimit', () => {
  const LIMITS = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max cpu time              unlimited            unlimited            seconds   ',
    'Max open files            1024                 1048576              files     ',
    '',
  ].join('\n');
  it('reads the Max open files line; unlimited is -1; anything else is undefined', () => {
    assert.deepEqual(parseOpenFilesLimit(LIMITS), { soft: 1024, hard: 1048576 });
    assert.deepEqual(parseOpenFilesLimit('Max open files  unlimited  unlimited  files\n'), {
      soft: -1,
      hard: -1,
    });
    assert.equal(parseOpenFilesLimit('Max cpu time  unlimited  unlimited  seconds\n'), undefined);
    assert.equal(parseOpenFilesLimit('Max open files  many  1024  files\n'), undefined);
    assert.equal(parseOpenFilesLimit(''), undefined);
  });
});
