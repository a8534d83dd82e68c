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

test(
  "signalGroup: a live instance's slot group; not the slot once a later instance took it",
  { skip },
  async () => {
    if (!hierarchy.ok) return;
    const n = loadNativeSocket();
    const acceptSpawn = n.acceptSpawn;
    if (acceptSpawn === undefined) return assert.fail('this build has no acceptSpawn');
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
    try {
      // The first instance ends at once: its slot is found empty and goes back to the pool.
      assert.equal(await exchange(sockPath, 'go').done, 'over\n');
      const first = await waitFor('the first instance', () => started(0));
      assert.ok(first.kind === 'started');
      pids.push(first.pid);
      await waitFor('its exit', () => exitOf(first.pid));
      // The second one stays, in the same slot (the pool lends the last one freed first).
      const second = exchange(sockPath, 'wait');
      const next = await waitFor('the second instance', () => started(1));
      assert.ok(next.kind === 'started');
      pids.push(next.pid);
      assert.ok(first.cgroup !== undefined);
      assert.equal(next.cgroup, first.cgroup, 'the slot was reused');
      await waitFor('the second instance in its slot', () =>
        fs.readFileSync(path.join(next.cgroup as string, 'cgroup.procs'), 'latin1').trim() !== ''
          ? true
          : undefined,
      );

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
      for (const pid of pids) spawner.signal(pid, SIGKILL);
      spawner.close();
      n.close(listening);
      fs.rmSync(dir, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 50));
      // Slots the spawner left (it removes the free ones at close), then the test's group.
      for (const e of fs.readdirSync(base, { withFileTypes: true }))
        if (e.isDirectory()) fs.rmdirSync(path.join(base, e.name));
      fs.rmdirSync(base);
    }
    // Once the spawner is gone nothing of it is lent again: null, the caller signals by path.
    assert.equal(spawner.signalGroup(1, 0), null);
  },
);
