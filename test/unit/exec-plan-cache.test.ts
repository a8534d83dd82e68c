// ExecPlanCache: a plan completed from a prepared half is exactly buildExecPlan's, run after run;
// whatever the prepared half depends on (the exec context, the base environment, the user
// database, PassEnvironment= values, ...) prepares it again; what is read per start
// (EnvironmentFile=, a sandbox's mount steps, a bare name on the PATH) is never taken from it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ExecCommand, ExecContext } from '../../src/units/config-types';
import {
  buildExecPlan,
  ExecPlanError,
  type ExecEnvironmentInput,
  type ExecPlanOptions,
} from '../../src/exec/exec-context-plan';
import { ExecPlanCache } from '../../src/exec/exec-plan-cache';
import { readUserDatabase, type UserDatabase } from '../../src/exec/user-database';
import { command, inheritingContext as context } from '../helpers/unit-fixtures';

const MOUNTINFO = `21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
22 21 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 21 0:5 / /dev rw shared:6 - devtmpfs udev rw
28 21 0:25 / /proc rw shared:8 - proc proc rw
29 21 0:26 / /run rw,nosuid shared:9 - tmpfs tmpfs rw
`;

const fixture = mkdtempSync(path.join(tmpdir(), 'triggerd-plan-cache-'));
const etcRoot = path.join(fixture, 'root');
const runtimeDir = path.join(fixture, 'run');
const bin = path.join(fixture, 'bin');
let db: UserDatabase;

function writeEtc(aliceUid: number): void {
  writeFileSync(
    path.join(etcRoot, 'etc', 'passwd'),
    `root:x:0:0:root:/root:/bin/bash\nalice:x:${aliceUid}:1001:Alice:/home/alice:/bin/zsh\n`,
  );
  writeFileSync(path.join(etcRoot, 'etc', 'group'), 'root:x:0:\nalice:x:1001:\ndevs:x:2000:alice\n');
}

before(() => {
  mkdirSync(path.join(etcRoot, 'etc'), { recursive: true });
  writeEtc(1001);
  db = readUserDatabase(etcRoot);
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(fixture, 'app.env'), 'FROM_FILE=one\n');
});

after(() => rmSync(fixture, { recursive: true, force: true }));

const BASE = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };

function options(overrides: Partial<ExecPlanOptions> = {}): ExecPlanOptions {
  return {
    unitName: 'test.service',
    runtimeDir,
    stdio: { stdin: -1, stdout: 1, stderr: 2 },
    userDatabase: db,
    mountInfo: '',
    ...overrides,
  };
}

/** buildExecPlan's answer, or the error it throws as [code, message]. */
function outcome(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ExecPlanError) return ['throws', err.code, err.message, err.step];
    throw err;
  }
}

interface Case {
  description: string;
  ctx?: Partial<ExecContext>;
  argv?: string[];
  cmd?: Partial<ExecCommand>;
  pass?: Record<string, string>;
  opts?: Partial<ExecPlanOptions>;
  /** Per run: the invocation's variables. */
  extras?: Record<string, string>[];
  /** Completed from a prepared half (else built whole each time). */
  prepared: boolean;
}

const RUNS: Record<string, string>[] = [
  { TRIGGER_UNIT: 'a.path', TRIGGER_PATH: '/srv/in/1' },
  { TRIGGER_UNIT: 'a.path', TRIGGER_PATH: '/srv/in/two words' },
  {},
  { NOTIFY_SOCKET: '/run/n', LANG: 'de_DE.UTF-8' },
];

const cases: Case[] = [
  { description: 'a plain command', prepared: true },
  {
    description: 'User=, Group=, SupplementaryGroups= from the database, WorkingDirectory=~',
    ctx: { user: 'alice', supplementaryGroups: ['devs'], workingDirectory: '~' },
    prepared: true,
  },
  {
    description: 'Environment= overriding the base, PassEnvironment=, both forms of UnsetEnvironment=',
    ctx: {
      environment: [
        ['LANG', 'C'],
        ['A', '1'],
        ['B', 'x'],
        ['bad-name', 'v'],
      ],
      passEnvironment: ['FROM_DAEMON', 'ABSENT'],
      unsetEnvironment: ['A', 'B=y', 'PATH=/usr/bin:/bin'],
    },
    pass: { FROM_DAEMON: 'here' },
    prepared: true,
  },
  {
    description: 'an invocation variable the unit sets itself: built whole for that run, the unit wins',
    ctx: { environment: [['TRIGGER_PATH', 'mine']] },
    prepared: true,
  },
  {
    description: 'an invocation variable the unit unsets: built whole for that run',
    ctx: { unsetEnvironment: ['NOTIFY_SOCKET'] },
    prepared: true,
  },
  {
    description: '${VAR} and $VAR from the invocation, an unset one, $$',
    argv: ['/bin/echo', '${TRIGGER_PATH}', '$TRIGGER_PATH', 'x${NOPE}y', '$$HOME'],
    prepared: true,
  },
  {
    description: 'noEnvExpand (":")',
    argv: ['/bin/echo', '${TRIGGER_PATH}'],
    cmd: { noEnvExpand: true },
    prepared: true,
  },
  {
    description: 'a bare name on the search path',
    argv: ['tool', 'arg'],
    opts: { searchPath: [bin] },
    prepared: true,
  },
  {
    description: 'a bare name that is nowhere',
    argv: ['nothere'],
    opts: { searchPath: [bin] },
    prepared: true,
  },
  {
    description: 'limits (one invalid), Nice=, OOMScoreAdjust=, UMask=',
    ctx: {
      limits: [
        { resource: 'nofile', soft: 1024, hard: 4096 },
        { resource: 'bogus', soft: 1, hard: 1 },
      ],
      nice: 5,
      oomScoreAdjust: 100,
      umask: 0o077,
    },
    prepared: true,
  },
  {
    description: "'+' and '!' prefixes with User=",
    ctx: {
      user: 'alice',
      noNewPrivileges: true,
      capabilityBoundingSet: 1n << 10n,
      ambientCapabilities: 1n << 12n,
    },
    cmd: { fullPrivileges: true },
    prepared: true,
  },
  { description: "'!' with User=", ctx: { user: 'alice' }, cmd: { noSetuidDrop: true }, prepared: true },
  {
    description: 'NoNewPrivileges=, CapabilityBoundingSet=',
    ctx: { noNewPrivileges: true, capabilityBoundingSet: (1n << 10n) | (1n << 21n) },
    prepared: true,
  },
  {
    description: 'extra fds with O_NONBLOCK, a cgroup, LISTEN_PID',
    opts: {
      extraFds: [7, 8],
      nonBlocking: new Map([[7, true]]),
      cgroup: '/sys/fs/cgroup/x',
      setListenPid: true,
    },
    prepared: true,
  },
  {
    description: 'User= not in the database (a number): its warning every run',
    ctx: { user: '4242' },
    prepared: true,
  },
  {
    description: 'User= that does not exist: the error every run',
    ctx: { user: 'nobody-here' },
    prepared: false,
  },
  {
    description: 'EnvironmentFile=: read at every start',
    ctx: { environmentFiles: [{ path: 'FIXTURE/app.env', optional: false }] },
    prepared: false,
  },
  {
    description: 'a sandbox with mount steps (ProtectSystem=strict): built at every start',
    ctx: { protectSystem: 'strict' },
    opts: { mountInfo: MOUNTINFO },
    prepared: false,
  },
  {
    description: "a sandbox setting without mount steps: its warning after the command line's",
    ctx: { readWritePaths: ['relative/path'] },
    argv: ['/bin/echo', '${NOPE}'],
    prepared: true,
  },
  {
    description: 'TimerSlackNSec= (a warning), RootDirectory=/',
    ctx: { timerSlackNsec: 50, rootDirectory: '/' },
    prepared: true,
  },
];

describe('exec plan cache', () => {
  for (const c of cases) {
    it(`gives buildExecPlan's plan: ${c.description}`, () => {
      const ctx = context(
        c.ctx?.environmentFiles !== undefined
          ? {
              ...c.ctx,
              environmentFiles: c.ctx.environmentFiles.map((f) => ({
                ...f,
                path: f.path.replace('FIXTURE', fixture),
              })),
            }
          : c.ctx,
      );
      const cmd = command(c.argv ?? ['/bin/true'], c.cmd);
      const cache = new ExecPlanCache();
      const base = { ...BASE };
      const pass = c.pass ?? {};
      let completed = 0;
      for (const extra of c.extras ?? RUNS) {
        const env: ExecEnvironmentInput = { base, extra, pass };
        const opts = options(c.opts);
        const want = outcome(() => buildExecPlan(ctx, cmd, env, opts));
        const got = outcome(() => cache.build(ctx, cmd, env, opts));
        assert.deepEqual(got, want, JSON.stringify(extra));
        if (!Array.isArray(want)) completed++;
      }
      if (c.prepared) {
        assert.equal(cache.stats.prepared, 1, 'prepared once');
        // Runs that failed (a bare name nowhere) count as neither.
        assert.ok(
          cache.stats.hits >= Math.min(2, completed),
          `completed from it (${JSON.stringify(cache.stats)})`,
        );
      } else {
        assert.equal(cache.stats.prepared, 0, 'never prepared');
        assert.equal(cache.stats.hits, 0);
      }
    });
  }

  it('a daemon-reload (a new exec context object) prepares again', () => {
    const cache = new ExecPlanCache();
    const cmd = command(['/bin/true']);
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass: {} };
    const first = cache.build(context({ environment: [['MODE', 'old']] }), cmd, env, options());
    const second = cache.build(context({ environment: [['MODE', 'new']] }), cmd, env, options());
    assert.ok(first.plan.env.includes('MODE=old'));
    assert.ok(second.plan.env.includes('MODE=new'));
    assert.equal(cache.stats.prepared, 2);
  });

  it('a changed user database (a new object from the supervisor) prepares again', () => {
    const cache = new ExecPlanCache();
    const ctx = context({ user: 'alice' });
    const cmd = command(['/bin/true']);
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass: {} };
    assert.equal(cache.build(ctx, cmd, env, options()).plan.uid, 1001);
    writeEtc(1500);
    const changed = readUserDatabase(etcRoot);
    try {
      assert.equal(cache.build(ctx, cmd, env, options({ userDatabase: changed })).plan.uid, 1500);
      assert.equal(cache.stats.prepared, 2);
    } finally {
      writeEtc(1001);
    }
  });

  it('a PassEnvironment= value that changed, a new base environment, another runtime directory', () => {
    const cache = new ExecPlanCache();
    const ctx = context({ passEnvironment: ['FROM_DAEMON'] });
    const cmd = command(['/bin/true']);
    const pass: Record<string, string> = { FROM_DAEMON: 'one' };
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass };
    assert.ok(cache.build(ctx, cmd, env, options()).plan.env.includes('FROM_DAEMON=one'));
    pass.FROM_DAEMON = 'two';
    assert.ok(cache.build(ctx, cmd, env, options()).plan.env.includes('FROM_DAEMON=two'));
    const base2 = { ...BASE, LANG: 'C' };
    assert.ok(cache.build(ctx, cmd, { ...env, base: base2 }, options()).plan.env.includes('LANG=C'));
    cache.build(ctx, cmd, { ...env, base: base2 }, options({ runtimeDir: path.join(fixture, 'run2') }));
    assert.equal(cache.stats.prepared, 4);
    cache.build(ctx, cmd, { ...env, base: base2 }, options({ runtimeDir: path.join(fixture, 'run2') }));
    assert.equal(cache.stats.prepared, 4, 'nothing changed: no new preparation');
  });

  it('EnvironmentFile= is read at every start', () => {
    const file = path.join(fixture, 'changing.env');
    writeFileSync(file, 'V=1\n');
    const cache = new ExecPlanCache();
    const ctx = context({ environmentFiles: [{ path: file, optional: false }] });
    const cmd = command(['/bin/true']);
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass: {} };
    assert.ok(cache.build(ctx, cmd, env, options()).plan.env.includes('V=1'));
    writeFileSync(file, 'V=2\n');
    assert.ok(cache.build(ctx, cmd, env, options()).plan.env.includes('V=2'));
  });

  it('a bare name is searched at every start (a program installed later is found)', () => {
    const cache = new ExecPlanCache();
    const ctx = context();
    const cmd = command(['later-tool']);
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass: {} };
    assert.deepEqual(
      outcome(() => cache.build(ctx, cmd, env, options({ searchPath: [bin] })))?.toString(),
      ['throws', 'ERR_EXEC_NOT_FOUND', `later-tool: not found in ${bin}`, 'EXEC'].toString(),
    );
    writeFileSync(path.join(bin, 'later-tool'), '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(
      cache.build(ctx, cmd, env, options({ searchPath: [bin] })).plan.path,
      path.join(bin, 'later-tool'),
    );
  });

  it('plans handed out do not share mutable parts', () => {
    const cache = new ExecPlanCache();
    const ctx = context({ limits: [{ resource: 'nofile', soft: 1, hard: 2 }], user: 'alice' });
    const cmd = command(['/bin/true', 'x']);
    const env: ExecEnvironmentInput = { base: BASE, extra: {}, pass: {} };
    const a = cache.build(ctx, cmd, env, options()).plan;
    a.argv.push('y');
    a.env.push('Z=1');
    a.rlimits[0].soft = 99;
    a.groups?.push(7);
    const b = cache.build(ctx, cmd, env, options()).plan;
    assert.deepEqual(b, buildExecPlan(ctx, cmd, env, options()).plan);
  });
});
