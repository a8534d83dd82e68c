// Abuse of triggerd_socket.node's acceptSpawn (the Accept=yes fast path) and its handle, through
// the harness in test/helpers/abuse.ts: every argument and field refused when wrong, fds that
// are not listening sockets (a file, a datagram socket, a closed or never-opened fd, one a
// ReadinessWatch holds), the handle's methods with wrong arguments and after close, the
// listening fd closed behind the thread's back, and no fd left open afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  abuseCall,
  type Arg,
  arrayArg,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  exported,
  fdArg,
  Findings,
  functionArg,
  INT32_MAX,
  intArg,
  isContractError,
  loadRaw,
  objectArg,
  openFds,
  scratchDir,
  stringArg,
  unopenedFds,
  type RawExports,
} from '../helpers/abuse';
import { commandFieldArgs, fdsArg, validPlan } from '../helpers/plan-args';

const { exports: raw, skip: noAddon } = loadRaw('triggerd_socket.node');
const skip =
  noAddon ??
  (raw !== undefined && typeof raw.acceptSpawn !== 'function' ? 'this build has no acceptSpawn' : undefined);

interface Spawner {
  pause(): void;
  resume(): void;
  close(): void;
  signal(pid: unknown, signal: unknown): boolean;
  signalGroup(pid: unknown, signal: unknown): boolean | null;
  live(): number;
  flush(): void;
  setMaxConnections(max: unknown): void;
}

function planArg(): Arg {
  return objectArg('plan', validPlan, [
    ...commandFieldArgs(),
    fdsArg(),
    boolArg('newSession', () => false, true),
    // Not on the fast path: a namespace, a cgroup of the plan's own, LISTEN_PID.
    {
      name: 'privateNetwork',
      valid: () => false,
      optional: true,
      bad: () => [true, null, 1, 'yes'],
    },
    {
      name: 'mounts',
      valid: () => [],
      bad: () => [[{ kind: 'tmpfs', target: '/tmp', mode: 0o755 }], null, 1, 'mounts', {}],
    },
    { name: 'cgroup', valid: () => '/sys/fs/cgroup', optional: true, bad: () => ['/sys/fs/cgroup', 1, null] },
    { name: 'setListenPid', valid: () => false, optional: true, bad: () => [true, 1, null] },
  ]);
}

function optionsArg(): Arg {
  return objectArg('options', () => ({ maxConnections: 4, connectionFds: [0, 1] }), [
    intArg('maxConnections', 1, INT32_MAX, () => 4),
    arrayArg(
      'connectionFds',
      () => [0, 1],
      intArg('connectionFds[]', 0, 2, () => 0),
    ),
    boolArg('remoteEnvironment', () => true, true),
    stringArg('cgroupPool', () => '/sys/fs/cgroup/triggerd-abuse', { absolute: true, optional: true }),
  ]);
}

test('acceptSpawn refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('accept-spawn');
  const listening = n.listen('stream', { family: 'unix', path: path.join(dir, 'l.sock') }, {}) as number;
  try {
    await abuseCall(findings, {
      label: 'acceptSpawn',
      call: exported(n, 'acceptSpawn'),
      args: [fdArg('fd', () => listening), planArg(), optionsArg(), functionArg('onRecords')],
      cleanup: (handle) => (handle as Spawner).close(),
    });
  } finally {
    n.close(listening);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'acceptSpawn');
  await assertProcessUsable();
});

test('acceptSpawn: fds that are not a listening socket of its own are refused', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const dir = scratchDir('accept-spawn-fds');
  const file = fs.openSync(path.join(dir, 'f'), 'w');
  const dgram = n.listen('dgram', { family: 'unix', path: path.join(dir, 'd.sock') }, {}) as number;
  const watched = n.listen('stream', { family: 'unix', path: path.join(dir, 'w.sock') }, {}) as number;
  const watch = n.watch(watched, () => undefined) as { close(): void };
  const spawn = (fd: number): unknown =>
    n.acceptSpawn(fd, validPlan(), { maxConnections: 1, connectionFds: [0] }, () => undefined);
  const refusal = (fd: number): { code?: string; syscall?: string } => {
    try {
      (spawn(fd) as Spawner).close();
    } catch (err) {
      assert.ok(isContractError(err), String(err));
      return err as { code?: string; syscall?: string };
    }
    assert.fail(`fd ${fd} was accepted`);
  };
  try {
    assert.equal(refusal(file).code, 'ENOTSOCK');
    assert.equal(refusal(dgram).code, 'EINVAL', 'a datagram socket does not listen');
    assert.equal(refusal(watched).code, 'EEXIST', 'a ReadinessWatch holds it');
    for (const fd of unopenedFds()) assert.equal(refusal(fd).code, 'EBADF');
    // connectionFds naming an fd the plan does not map.
    const other = n.listen('stream', { family: 'unix', path: path.join(dir, 'o.sock') }, {}) as number;
    try {
      const plan = { ...validPlan(), fds: [0, 1, 2, 3].map((childFd) => ({ childFd, parentFd: -1 })) };
      assert.throws(
        () =>
          n.acceptSpawn(
            other,
            { ...plan, fds: plan.fds.filter((f) => f.childFd !== 2) },
            { maxConnections: 1, connectionFds: [2] },
            () => undefined,
          ),
        (err: unknown) => err instanceof TypeError,
      );
    } finally {
      n.close(other);
    }
  } finally {
    watch.close();
    n.close(watched);
    n.close(dgram);
    fs.closeSync(file);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await assertNoFdLeak(before, 'acceptSpawn on wrong fds');
});

test(
  'acceptSpawn handle: wrong arguments, after close, the fd closed behind its back',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const dir = scratchDir('accept-spawn-handle');
    const sockPath = path.join(dir, 'h.sock');
    const listening = n.listen('stream', { family: 'unix', path: sockPath }, {}) as number;
    const records: { kind: string }[] = [];
    const spawner = n.acceptSpawn(
      listening,
      { ...validPlan(), path: '/bin/cat', argv: ['cat'] },
      { maxConnections: 2, connectionFds: [0, 1] },
      (batch: unknown) => records.push(...(batch as { kind: string }[])),
    ) as Spawner;
    try {
      assert.equal(spawner.signal(process.pid, 0), false, 'not a child of this spawner');
      for (const method of ['signal', 'signalGroup'] as const) {
        for (const bad of [undefined, null, 'x', -1, 0, 1.5, 2 ** 31, {}]) {
          assert.throws(
            () => spawner[method](bad, 15),
            (e: unknown) => e instanceof TypeError,
            `${method}(${String(bad)})`,
          );
        }
        for (const bad of [undefined, null, 'x', -1, 65, 1.5]) {
          assert.throws(
            () => spawner[method](1, bad),
            (e: unknown) => e instanceof TypeError,
            `${method}(1, ${String(bad)})`,
          );
        }
      }
      assert.equal(spawner.signalGroup(process.pid, 0), false, 'not an instance of this spawner');
      for (const bad of [undefined, null, 'x', -1, 1.5, 2 ** 31, {}]) {
        assert.throws(
          () => spawner.setMaxConnections(bad),
          (e: unknown) => e instanceof TypeError,
          `setMaxConnections(${String(bad)})`,
        );
      }
      spawner.setMaxConnections(0);
      spawner.setMaxConnections(2);
      assert.equal(spawner.live(), 0);
      spawner.pause();
      spawner.pause();
      spawner.resume();
      spawner.resume();
      // One connection served for real, then the listening fd goes away behind the thread's back.
      const answer = await new Promise<string>((resolve, reject) => {
        const c = net.connect(sockPath);
        let text = '';
        c.on('connect', () => c.end('ping'));
        c.on('data', (b) => (text += b.toString()));
        c.on('close', () => resolve(text));
        c.on('error', reject);
      });
      assert.equal(answer, 'ping');
      await new Promise((r) => setTimeout(r, 50));
      spawner.flush();
      assert.deepEqual(
        records.map((r) => r.kind),
        ['started', 'exited'],
      );
      n.close(listening);
      await new Promise((r) => setTimeout(r, 20));
      spawner.resume();
      spawner.pause();
    } finally {
      spawner.close();
    }
    // After close: quiet, and nothing is left of it.
    spawner.close();
    spawner.pause();
    spawner.resume();
    spawner.flush();
    assert.equal(spawner.signal(1, 0), false);
    assert.ok([false, null].includes(spawner.signalGroup(1, 0)), 'nothing of it is signaled');
    assert.equal(spawner.live(), 0);
    spawner.setMaxConnections(5);
    fs.rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 50));
    await assertNoFdLeak(before, 'acceptSpawn handle');
    await assertProcessUsable();
  },
);
