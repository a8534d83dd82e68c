// The accept thread's cgroup pool slots (the socket addon's acceptSpawn with cgroupPool) on the
// real kernel: signalGroup reaches the slot group of a live instance, and never a later
// instance's once the slot went back to the pool at the first one's exit (the thread lends a
// slot found empty to the next connection at once, maybe before JavaScript read the exit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNativeSocket, type AcceptRecord } from '../../src/native/socket-addon';
import { findCgroupHierarchy } from '../../src/exec/cgroups';
import { addonCandidates } from '../../src/native/addon';
import { skipUnlessRoot, waitFor } from '../helpers/daemon';

const hierarchy = findCgroupHierarchy();
const skip =
  skipUnlessRoot() ??
  (addonCandidates('triggerd_socket.node').some((f) => fs.existsSync(f))
    ? undefined
    : 'needs the triggerd_socket addon (npm install builds it)') ??
  (hierarchy.ok ? undefined : 'needs a cgroup2 hierarchy');

const SIGKILL = 9;
const SIGTERM = 15;

/** One connection: sends `line`, resolves with what came back once the instance closed it. */
function exchange(sockPath: string, line: string): { done: Promise<string>; socket: net.Socket } {
  const socket = net.connect(sockPath);
  const done = new Promise<string>((resolve, reject) => {
    let text = '';
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (b) => (text += b.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  return { done, socket };
}

/** An accept thread on a fresh unix socket with a slot pool under a test group of its own. */
function startSpawner() {
  if (!hierarchy.ok) throw new Error('no cgroup2 hierarchy');
  const n = loadNativeSocket();
  const acceptSpawn = n.acceptSpawn;
  if (acceptSpawn === undefined) throw new Error('this build has no acceptSpawn');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-slots-'));
  const base = path.join(hierarchy.root, `triggerd-slots-test-${process.pid}`);
  fs.mkdirSync(base);
  const sockPath = path.join(dir, 's.sock');
  const listening = n.listen('stream', { family: 'unix', path: sockPath }, {});
  const records: AcceptRecord[] = [];
  const pids: number[] = [];
  const spawner = acceptSpawn(
    listening,
    {
      path: '/bin/sh',
      // "wait": stays (in its slot) until signaled; anything else: over at once.
      argv: ['sh', '-c', 'read line; [ "$line" = wait ] && exec sleep 30; echo over'],
      env: ['PATH=/usr/bin:/bin'],
      rlimits: [],
      fds: [0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 })),
      newSession: true,
      noNewPrivileges: false,
      privateNetwork: false,
      mounts: [],
    },
    { maxConnections: 4, connectionFds: [0, 1], cgroupPool: path.join(base, 'pool') },
    (batch) => records.push(...batch),
  );
  const started = (i: number) => records.filter((r) => r.kind === 'started')[i];
  const exitOf = (pid: number) => records.find((r) => r.kind === 'exited' && r.pid === pid);
  /** The i-th instance, once started, and its pid noted for the cleanup. */
  const instance = async (i: number) => {
    const r = await waitFor(`instance ${i}`, () => started(i));
    assert.ok(r.kind === 'started');
    pids.push(r.pid);
    return r;
  };
  const cleanup = async () => {
    for (const pid of pids) spawner.signal(pid, SIGKILL);
    spawner.close();
    n.close(listening);
    fs.rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 50));
    // Slots the spawner left (it removes the free ones at close), then the test's group.
    for (const e of fs.readdirSync(base, { withFileTypes: true }))
      if (e.isDirectory()) fs.rmdirSync(path.join(base, e.name));
    fs.rmdirSync(base);
  };
  return { spawner, sockPath, records, exitOf, instance, cleanup };
}

/** Resolves once the group has a process in it. */
function populated(cgroup: string | undefined): Promise<true> {
  assert.ok(cgroup !== undefined);
  return waitFor('a process in the slot', () =>
    fs.readFileSync(path.join(cgroup, 'cgroup.procs'), 'latin1').trim() !== '' ? true : undefined,
  );
}

test(
  "signalGroup: a live instance's slot group; not the slot once a later instance took it",
  { skip },
  async () => {
    const { spawner, sockPath, exitOf, instance, cleanup } = startSpawner();
    try {
      // The first instance ends at once: its slot is found empty and goes back to the pool.
      assert.equal(await exchange(sockPath, 'go').done, 'over\n');
      const first = await instance(0);
      await waitFor('its exit', () => exitOf(first.pid));
      // The second one stays, in the same slot (the pool lends the last one freed first).
      const second = exchange(sockPath, 'wait');
      const next = await instance(1);
      assert.ok(first.cgroup !== undefined);
      assert.equal(next.cgroup, first.cgroup, 'the slot was reused');
      await populated(next.cgroup);

      // The first instance's group is not its own any more: nothing is signaled.
      assert.equal(spawner.signalGroup(first.pid, SIGKILL), false);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(exitOf(next.pid), undefined, 'the later instance lives');
      assert.equal(spawner.signal(next.pid, 0), true);

      // The second one's group is: SIGTERM to every process in it.
      assert.equal(spawner.signalGroup(next.pid, SIGTERM), true);
      const ended = await waitFor('the second instance ended', () => exitOf(next.pid));
      assert.deepEqual(ended.kind === 'exited' && [ended.code, ended.status], ['killed', SIGTERM]);
      second.socket.destroy();
      assert.equal(spawner.signalGroup(process.pid, 0), false, 'not an instance of this spawner');
    } finally {
      await cleanup();
    }
    // Once the spawner is gone nothing of it is lent again: null, the caller signals by path.
    assert.equal(spawner.signalGroup(1, 0), null);
  },
);

test(
  'signalGroup SIGKILL: the slot group cgroup.kill was written to is removed at the exit, never lent again',
  { skip },
  async () => {
    // Linux 6.18 kills at birth every child later cloned into such a group; a reused slot would
    // make each later instance pay a second clone (or die, without spawn_child's KilledAtBirth).
    const { spawner, sockPath, exitOf, instance, cleanup } = startSpawner();
    try {
      const first = exchange(sockPath, 'wait');
      const killed = await instance(0);
      await populated(killed.cgroup);
      assert.equal(spawner.signalGroup(killed.pid, SIGKILL), true);
      const ended = await waitFor('the killed instance ended', () => exitOf(killed.pid));
      assert.deepEqual(ended.kind === 'exited' && [ended.code, ended.status], ['killed', SIGKILL]);
      first.socket.destroy();
      assert.equal(fs.existsSync(killed.cgroup as string), false, 'the killed slot group is removed');

      // The next connection gets a new slot and is served.
      assert.equal(await exchange(sockPath, 'go').done, 'over\n');
      const next = await instance(1);
      assert.ok(next.cgroup !== undefined);
      assert.notEqual(next.cgroup, killed.cgroup);
      const over = await waitFor('the next instance ended', () => exitOf(next.pid));
      assert.deepEqual(over.kind === 'exited' && [over.code, over.status], ['exited', 0]);
      // Its slot was not killed: the one after reuses it.
      assert.equal(await exchange(sockPath, 'go').done, 'over\n');
      assert.equal((await instance(2)).cgroup, next.cgroup, 'an unkilled slot is reused');
    } finally {
      await cleanup();
    }
  },
);
