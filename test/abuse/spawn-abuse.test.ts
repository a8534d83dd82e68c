// Abuse of triggerd_spawn.node: spawn and spawnAsync (every field of the exec plan), setSubreaper,
// isSubreaper, watchChildren (and its handle), pidfdSendSignal, kill, closeFd, pipe, forgetCgroup
// and setCloneMethodForTesting, through the harness in test/helpers/abuse.ts. The valid plan runs
// /bin/true with /dev/null as stdio; a child watcher reaps everything this process spawns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import {
  abuseCall,
  type Arg,
  arrayArg,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  enumArg,
  expectAccepted,
  expectRefused,
  expectSettled,
  exported,
  fdArg,
  Findings,
  functionArg,
  intArg,
  INT32_MAX,
  loadRaw,
  objectArg,
  openFds,
  stringArg,
  unopenedFds,
  type RawExports,
} from '../helpers/abuse';
import { commandFieldArgs, fdsArg, ID_MAX, validPlan } from '../helpers/plan-args';

const { exports: raw, skip } = loadRaw('triggerd_spawn.node');

interface Watcher {
  close(): void;
  ref(): void;
  unref(): void;
}

const RLIMIT_NOFILE = 7;
const RLIM_NLIMITS = 16;

function bigintArg(name: string): Arg {
  return {
    name,
    valid: () => (1n << 64n) - 1n,
    optional: true,
    bad: () => [null, 1, '1', true, {}, -1n, 1n << 64n, Symbol('b')],
  };
}

function planArg(): Arg {
  return objectArg('plan', validPlan, [
    ...commandFieldArgs(),
    boolArg('cwdOptional', () => false, true),
    arrayArg(
      'groups',
      () => [0],
      intArg('groups[]', 0, ID_MAX, () => 0),
      true,
    ),
    intArg('nice', -20, 19, () => 0, true),
    intArg('oomScoreAdjust', -1000, 1000, () => 0, true),
    arrayArg(
      'rlimits',
      () => [],
      objectArg('rlimits[]', () => ({ resource: RLIMIT_NOFILE, soft: 1024, hard: 1024 }), [
        intArg('resource', 0, RLIM_NLIMITS - 1, () => RLIMIT_NOFILE),
        intArg('soft', -1, 2 ** 53 - 1, () => 1024),
        intArg('hard', -1, 2 ** 53 - 1, () => 1024),
      ]),
    ),
    fdsArg([boolArg('nonBlocking', () => false, true)]),
    boolArg('newSession', () => false, true),
    boolArg('noNewPrivileges', () => false, true),
    bigintArg('capabilityBoundingSet'),
    bigintArg('ambientCapabilities'),
    boolArg('privateNetwork', () => false, true),
    arrayArg(
      'mounts',
      () => [],
      objectArg('mounts[]', () => ({ kind: 'tmpfs', target: '/tmp', mode: 0o755 }), [
        enumArg('kind', ['bind', 'tmpfs', 'remount-read-only', 'inaccessible'], () => 'tmpfs'),
        stringArg('target', () => '/tmp', { absolute: true }),
        intArg('mode', 0, 0o7777, () => 0o755),
      ]),
    ),
    stringArg('cgroup', () => '/sys/fs/cgroup', { absolute: true, optional: true }),
    boolArg('setListenPid', () => false, true),
  ]);
}

test('spawn: every export refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  // spawn() keeps one /dev/null open from its first call on (and the cgroups it used, which
  // forgetCgroup closes below): that one is not a leak.
  await new Promise<void>((resolve) => {
    const warmUp = n.watchChildren(() => {
      warmUp.close();
      resolve();
    }) as Watcher;
    n.spawn(validPlan());
  });
  const before = openFds();
  const findings = new Findings();
  const exits: unknown[] = [];
  const watcher = n.watchChildren((batch: unknown) => exits.push(...(batch as unknown[]))) as Watcher;
  let spawned = 0;
  const own = fs.openSync('/dev/null', 'r');
  const handedOver: number[] = [];
  const handOver = (fd: number): number => {
    handedOver.push(fd);
    return fd;
  };
  try {
    await abuseCall(findings, {
      label: 'spawn',
      call: exported(n, 'spawn'),
      args: [
        planArg(),
        {
          name: 'options',
          valid: () => ({ yieldAfter: true }),
          optional: true,
          bad: () => [null, 1, 'yield', true, 1n, Symbol('o'), { yieldAfter: 1 }, { yieldAfter: 'yes' }],
        },
      ],
      cleanup: () => {
        spawned++;
      },
    });
    await abuseCall(findings, {
      label: 'spawnAsync',
      call: exported(n, 'spawnAsync'),
      args: [
        planArg(),
        functionArg('done', () => (error: unknown) => {
          if (error === null) spawned++;
        }),
        // The refused calls leave their handOver fds open (only a call that returned gives them up).
        arrayArg(
          'handOver',
          () => [],
          fdArg('handOver[]', () => handOver(fs.openSync('/dev/null', 'r'))),
          true,
        ),
      ],
    });
    // Plans the child cannot carry out: each is a SpawnError with its step, never a crash.
    const failing: [string, Record<string, unknown>][] = [
      ['a missing executable', { path: '/nonexistent/true' }],
      ['a directory as executable', { path: '/' }],
      ['a missing cwd', { cwd: '/nonexistent' }],
      [
        'parent fd INT32_MAX',
        { fds: [0, 1, 2].map((childFd) => ({ childFd, parentFd: childFd === 2 ? INT32_MAX : -1 })) },
      ],
      [
        'child fd 65535',
        {
          fds: [...[0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 })), { childFd: 65535, parentFd: -1 }],
        },
      ],
      ['soft limit above hard', { rlimits: [{ resource: RLIMIT_NOFILE, soft: 10, hard: 5 }] }],
      ['a 1 MiB argument', { argv: ['true', 'a'.repeat(1 << 20)] }],
      ['a missing cgroup', { cgroup: '/nonexistent/cgroup' }],
      ['ambient capabilities never permitted', { ambientCapabilities: 1n << 62n }],
      [
        'a bind mount of a missing source',
        { mounts: [{ kind: 'bind', source: '/nonexistent', target: '/tmp' }] },
      ],
    ];
    for (const [what, change] of failing) {
      await expectRefused(
        findings,
        `spawn(${what})`,
        { call: () => n.spawn({ ...validPlan(), ...change }), cleanup: () => void spawned++ },
        [],
      );
    }
    // Odd but possible: a result or a SpawnError.
    const odd: [string, Record<string, unknown>][] = [
      ['RLIMIT_NOFILE 0', { rlimits: [{ resource: RLIMIT_NOFILE, soft: 0, hard: 0 }] }],
      ['100,000 environment entries', { env: Array.from({ length: 100000 }, (_, i) => `V${i}=x`) }],
      ['65,536 groups', { groups: new Array<number>(65536).fill(0) }],
      ['every capability dropped', { capabilityBoundingSet: 0n }],
      ['LISTEN_PID set', { setListenPid: true, env: ['LISTEN_PID=1', 'LISTEN_FDS=0'] }],
    ];
    for (const [what, change] of odd) {
      await expectSettled(
        findings,
        `spawn(${what})`,
        { call: () => n.spawn({ ...validPlan(), ...change }), cleanup: () => void spawned++ },
        [],
      );
    }
    await abuseCall(findings, {
      label: 'setSubreaper',
      call: exported(n, 'setSubreaper'),
      args: [boolArg('on', () => n.isSubreaper() as boolean)],
    });
    await abuseCall(findings, { label: 'isSubreaper', call: exported(n, 'isSubreaper'), args: [] });
    await abuseCall(findings, {
      label: 'kill',
      call: exported(n, 'kill'),
      args: [intArg('pid', -INT32_MAX, INT32_MAX, () => process.pid), intArg('signal', 0, 64, () => 0)],
    });
    for (const pid of [0, -1])
      await expectRefused(findings, `kill(${pid}, 0)`, { call: () => n.kill(pid, 0) }, []);
    await expectRefused(findings, 'kill(no such pid)', { call: () => n.kill(INT32_MAX, 0) }, []);
    await expectRefused(findings, 'kill(no such group)', { call: () => n.kill(-INT32_MAX, 0) }, []);
    await abuseCall(findings, {
      label: 'pidfdSendSignal',
      call: exported(n, 'pidfdSendSignal'),
      args: [fdArg('pidfd', () => own), intArg('signal', 0, 64, () => 0)],
      // `own` is /dev/null, not a pidfd: even the well-formed call is EBADF.
      noValidCall: true,
    });
    for (const fd of [...unopenedFds(), own]) {
      await expectRefused(
        findings,
        `pidfdSendSignal(${fd}, 0)`,
        { call: () => n.pidfdSendSignal(fd, 0) },
        [],
      );
    }
    await abuseCall(findings, {
      label: 'closeFd',
      call: exported(n, 'closeFd'),
      args: [fdArg('fd', () => fs.openSync('/dev/null', 'r'))],
    });
    for (const fd of unopenedFds())
      await expectRefused(findings, `closeFd(${fd})`, { call: () => n.closeFd(fd) }, []);
    await abuseCall(findings, {
      label: 'pipe',
      call: exported(n, 'pipe'),
      args: [],
      cleanup: (ends) => (ends as number[]).forEach((fd) => fs.closeSync(fd)),
    });
    await abuseCall(findings, {
      label: 'forgetCgroup',
      call: exported(n, 'forgetCgroup'),
      args: [stringArg('path', () => '/sys/fs/cgroup/no-such-group', { absolute: true })],
    });
    await abuseCall(findings, {
      label: 'setCloneMethodForTesting',
      call: exported(n, 'setCloneMethodForTesting'),
      args: [enumArg('method', ['auto', 'clone3', 'clone'], () => 'auto')],
    });
    // The watcher: one per process; its handle's methods are idempotent.
    await abuseCall(findings, {
      label: 'watchChildren (a second one)',
      call: exported(n, 'watchChildren'),
      args: [functionArg('onExits')],
      noValidCall: true,
    });
    await expectRefused(
      findings,
      'watchChildren while one watches',
      { call: () => n.watchChildren(() => undefined) },
      [],
      (error) => (error as { code?: unknown }).code === 'ERR_WATCHER_ACTIVE',
    );
    // Let the children exit and be reaped before the watcher goes.
    const deadline = Date.now() + 10000;
    while (exits.length < spawned && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(exits.length, spawned, 'every child spawned is reaped');
  } finally {
    watcher.close();
    fs.closeSync(own);
    for (const fd of handedOver) fs.closeSync(fd);
  }
  for (const name of ['close', 'ref', 'unref'] as const) {
    await expectAccepted(findings, `watcher.${name}() after close`, { call: () => watcher[name]() }, []);
  }
  const again = n.watchChildren(() => undefined) as Watcher;
  again.close();
  n.forgetCgroup('/sys/fs/cgroup'); // the plan's valid cgroup
  findings.assertNone();
  await assertNoFdLeak(before, 'spawn');
  await assertProcessUsable();
});

test(
  'spawn: a parent fd that is not open is EBADF, whatever number it has',
  {
    skip,
    // Was silently another file (an earlier scratch copy took the number); PlaceFds now checks
    // every source with F_GETFD before the first copy.
  },
  async () => {
    const n = raw as RawExports;
    const watcher = n.watchChildren(() => undefined) as Watcher;
    try {
      for (let i = 0; i < 3; i++) {
        // Two numbers freed: new fds of the spawn (its /dev/null on a first call, the clone's
        // pidfd) take them, so the number may be free again, or another file, in the child.
        const a = fs.openSync('/dev/null', 'r');
        const b = fs.openSync('/dev/null', 'r');
        fs.closeSync(b);
        fs.closeSync(a);
        const fds = [0, 1, 2].map((childFd) => ({ childFd, parentFd: childFd === 1 ? b : -1 }));
        assert.throws(
          () => n.spawn({ ...validPlan(), fds }),
          { code: 'EBADF', step: 'STDOUT' },
          `parentFd ${b}`,
        );
      }
    } finally {
      watcher.close();
    }
  },
);
