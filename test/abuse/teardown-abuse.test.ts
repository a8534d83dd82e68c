// Environments ending with everything open: a worker opens one of every handle the addons make
// (and starts asynchronous work: a spawnAsync, blkid probes, a burst of inotify records and
// notify datagrams), then ends by itself or is terminated in the middle of it. The main thread
// must see no crash, every fd the worker opened closed, and the process-wide child watcher free
// again. This is where cleanup hooks and finalizers meet, so it runs under the sanitizers too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assertNoFdLeak, assertProcessUsable, isRoot, loadRaw, openFds, scratchDir } from '../helpers/abuse';

const ADDON_MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'addon.js');
const skip = loadRaw('triggerd_native.node').skip;

/** The worker's script: opens everything under `dir`, then says 'open' and keeps busy. */
function workerSource(dir: string, root: boolean): string {
  return `
const fs = require('node:fs');
const path = require('node:path');
const { parentPort } = require('node:worker_threads');
const { requireAddon } = require(${JSON.stringify(ADDON_MODULE)});
const load = (file) => { try { return requireAddon(file).loaded; } catch { return undefined; } };
const noop = () => {};
const dir = ${JSON.stringify(dir)};
const opened = [];
const netlink = load('triggerd_native.node');
if (netlink) opened.push(netlink.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, noop, noop));
const notify = load('triggerd_notify.node');
let notifyPath;
if (notify) {
  notifyPath = path.join(dir, 'notify');
  opened.push(notify.openNotifySocket(notifyPath, (batch) => {
    for (const item of batch) { for (const fd of item.fds) notify.closeFd(fd); if (item.pidfd >= 0) notify.closeFd(item.pidfd); }
  }, noop));
}
const socket = load('triggerd_socket.node');
// Plain fds (the caller's, like fs.openSync's): the main thread closes them after the worker.
const plainFds = [];
if (socket) {
  const fd = socket.listen('stream', { family: 'unix', path: path.join(dir, 'listen') }, {});
  opened.push(socket.watch(fd, noop));
  plainFds.push(fd, socket.openFifo(path.join(dir, 'fifo'), {}));
}
const inotify = load('triggerd_inotify.node');
if (inotify) {
  const h = inotify.openInotify(noop, noop);
  h.addWatch(dir, 0x4 | 0x100 | 0x200);
  opened.push(h);
}
const mounts = load('triggerd_mounts.node');
if (mounts) opened.push(mounts.watchMountInfo(noop, noop));
const timerfd = load('triggerd_timerfd.node');
if (timerfd) opened.push(timerfd.watchClockChanges(noop, noop));
const fanotify = ${root} ? load('triggerd_fanotify.node') : undefined;
if (fanotify) {
  const h = fanotify.openFanotify(0, 0, noop, noop);
  h.mark(1, 0x8 | 0x8000000, dir);
  h.openMount(dir);
  opened.push(h);
}
const autofs = ${root} && fs.existsSync('/dev/autofs') ? load('triggerd_autofs.node') : undefined;
if (autofs) {
  const where = path.join(dir, 'automount');
  fs.mkdirSync(where);
  const m = autofs.mountAutofs({ where, source: 'triggerd-abuse', kind: 'direct', strictExpire: false, timeoutSec: 0 }, noop, noop);
  m.expire(0, noop);
  opened.push(m);
}
const spawn = load('triggerd_spawn.node');
if (spawn) {
  opened.push(spawn.watchChildren(noop));
  const plan = { path: '/bin/sleep', argv: ['sleep', '0.2'], env: [], rlimits: [], mounts: [],
    fds: [0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 })) };
  spawn.spawn(plan);
  spawn.spawnAsync(plan, noop);
}
const blkid = load('triggerd_blkid.node');
if (blkid) {
  const image = path.join(dir, 'image');
  fs.writeFileSync(image, Buffer.alloc(128 * 1024));
  for (let i = 0; i < 8; i++) blkid.probe(image, { offset: 0, noraid: false }).catch(noop);
}
// Keep the watched objects busy while the main thread decides how this worker ends.
let n = 0;
const busy = setInterval(() => {
  for (let i = 0; i < 20; i++) {
    const file = path.join(dir, 'f' + (n++ % 50));
    fs.writeFileSync(file, 'x');
    if (notify) { try { notify.sendDatagram(notifyPath, Buffer.from('STATUS=busy'), [0]); } catch {} }
  }
}, 1);
parentPort.on('message', (how) => {
  if (how === 'unref') { clearInterval(busy); for (const h of opened) h.unref(); parentPort.unref(); }
});
parentPort.postMessage(plainFds);
`;
}

async function runWorker(dir: string, end: 'terminate' | 'unref'): Promise<number | undefined> {
  const worker = new Worker(workerSource(dir, isRoot), { eval: true });
  const plainFds = await new Promise<number[]>((resolve, reject) => {
    worker.once('message', (fds: number[]) => resolve(fds));
    worker.once('error', reject);
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (end === 'terminate') return await worker.terminate();
    worker.postMessage('unref');
    return await new Promise((resolve, reject) => {
      worker.once('exit', resolve);
      worker.once('error', reject);
    });
  } finally {
    for (const fd of plainFds) fs.closeSync(fd);
  }
}

function unmountLeftovers(dir: string): void {
  const autofs = loadRaw('triggerd_autofs.node').exports;
  const where = path.join(dir, 'automount');
  if (autofs !== undefined && fs.existsSync(where)) {
    while (autofs.unmountLazy(where) === true) {
      // stacked mounts, if any
    }
  }
}

for (const end of ['terminate', 'unref'] as const) {
  test(
    `teardown: a worker with every handle open ends by ${end === 'terminate' ? 'terminate()' : 'itself'}`,
    { skip },
    async () => {
      const before = openFds();
      for (let round = 0; round < 3; round++) {
        const dir = scratchDir(`teardown-${end}`);
        try {
          await runWorker(dir, end);
        } finally {
          unmountLeftovers(dir);
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
      // Children the worker spawned exit on their own; the pool threads finish their work.
      await new Promise((resolve) => setTimeout(resolve, 400));
      await assertNoFdLeak(before, `workers ended by ${end}`);
      const spawn = loadRaw('triggerd_spawn.node').exports;
      if (spawn !== undefined) {
        const watcher = spawn.watchChildren(() => undefined) as { close(): void };
        watcher.close();
      }
      assert.ok(fs.existsSync('/proc/self/status'));
      await assertProcessUsable();
    },
  );
}

// A worker terminated while its onBatch runs: the batch's fds it had not closed yet are closed by
// the notify socket (JavaScript can no longer run there), the ones it closed are not closed twice.
test(
  'teardown: a worker terminated in the middle of a notify batch leaks none of its fds',
  { skip },
  async () => {
    const notify = loadRaw('triggerd_notify.node').exports;
    if (notify === undefined) return;
    const dir = scratchDir('teardown-notify-batch');
    const socketPath = path.join(dir, 'notify');
    const source = `
const { parentPort } = require('node:worker_threads');
const { requireAddon } = require(${JSON.stringify(ADDON_MODULE)});
const notify = requireAddon('triggerd_notify.node').loaded;
let first = true;
notify.openNotifySocket(${JSON.stringify(socketPath)}, (batch) => {
  if (!first) return;
  first = false;
  // Close the first datagram's fds, then never return: the rest are still the batch's.
  const item = batch[0];
  for (const fd of item.fds) notify.closeFd(fd);
  if (item.pidfd >= 0) notify.closeFd(item.pidfd);
  parentPort.postMessage({ inCallback: batch.length });
  for (;;) {}
}, () => {});
parentPort.postMessage('open');
`;
    const before = openFds();
    const worker = new Worker(source, { eval: true });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      const send = notify.sendDatagram as (p: string, b: Uint8Array, fds?: number[]) => number;
      const held = fs.openSync('/dev/null', 'r');
      // Sent before the worker's next wake-up, so one batch holds them all.
      for (let i = 0; i < 8; i++) send(socketPath, Buffer.from('STATUS=x'), [held]);
      fs.closeSync(held);
      const inCallback = await new Promise<{ inCallback: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.ok(inCallback.inCallback >= 2, `one batch of several datagrams (${inCallback.inCallback})`);
      await worker.terminate();
    } finally {
      await worker.terminate();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assertNoFdLeak(before, 'a worker terminated inside onBatch');
  },
);
