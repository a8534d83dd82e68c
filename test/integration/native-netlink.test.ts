// The real addon against the real kernel: uevents, overflow, batch bounds, peer credentials,
// abuse (bad arguments, closed handles, wrong fds), and lifetime (workers, GC, event-loop refs).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadNative } from '../../src/native/addon';
import type { NativeSystemError, NetlinkItem, NetlinkOverflow, UeventSocket } from '../../src/native/types';
import { messageStartingWith, recordBatches, type BatchRecorder } from '../helpers/fake-native';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;

const NULL_UEVENT = '/sys/devices/virtual/mem/null/uevent';
const NULL_DEVPATH = '/devices/virtual/mem/null';
const KERNEL_GROUP = 1;
/** The compiled addon loader, for child processes and workers (this file runs from dist/test/...). */
const ADDON_MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'addon.js');

function openSocket(
  t: TestContext,
  groups: number,
  receiveBufferBytes = 1024 * 1024,
): { socket: UeventSocket; recorder: BatchRecorder } {
  const recorder = recordBatches();
  const socket = loadNative().openUeventSocket(
    { groups, receiveBufferBytes },
    recorder.onBatch,
    recorder.onError,
  );
  t.after(() => socket.close());
  return { socket, recorder };
}

/** Makes the kernel emit `change@/devices/virtual/mem/null` `count` times (harmless: no driver acts on it). */
function triggerNullChange(count = 1): void {
  for (let i = 0; i < count; i++) writeFileSync(NULL_UEVENT, 'change');
}

function isOverflow(reason: NetlinkOverflow['reason']): (item: NetlinkItem) => item is NetlinkOverflow {
  return (item): item is NetlinkOverflow => item.kind === 'overflow' && item.reason === reason;
}

function systemErrorMatcher(code: string, syscall: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof Error, 'an Error');
    const system = error as Partial<NativeSystemError>;
    assert.equal(system.code, code);
    assert.equal(system.syscall, syscall);
    assert.ok(typeof system.errno === 'number' && system.errno < 0, `errno ${String(system.errno)}`);
    assert.match(error.message, new RegExp(`^${code}: `));
    return true;
  };
}

/** The fd under a net.Socket (Node keeps it on the internal handle). */
function fdOf(socket: net.Socket): number {
  const handle: unknown = Reflect.get(socket, '_handle');
  const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
  assert.ok(typeof fd === 'number' && fd >= 0, 'net.Socket has an fd');
  return fd;
}

/** Runs a CommonJS snippet in a child node with `native` bound to loadNative(). */
function runChild(
  source: string,
  nodeArgs: string[] = [],
): { status: number | null; stdout: string; stderr: string } {
  const prelude = `const native = require(${JSON.stringify(ADDON_MODULE)}).loadNative();\n`;
  const result = spawnSync(process.execPath, [...nodeArgs, '-e', prelude + source], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('native netlink: kernel uevents', { skip: needsRoot }, () => {
  it('receives a kernel uevent from port 0 on group 1', async (t) => {
    const { recorder } = openSocket(t, KERNEL_GROUP);
    triggerNullChange();
    const message = await recorder.waitFor(messageStartingWith(`change@${NULL_DEVPATH}\0`));
    assert.equal(message.senderPort, 0);
    assert.equal(message.senderGroups, KERNEL_GROUP);
    assert.equal(message.uid, 0);
    assert.equal(message.pid, 0);
    assert.equal(message.buffer.at(-1), 0, 'ends with NUL');
    assert.ok(message.buffer.includes(`DEVPATH=${NULL_DEVPATH}\0`));
    assert.deepEqual(recorder.errors, []);
  });

  it('reports ENOBUFS after the kernel dropped events, then keeps receiving', async (t) => {
    // 4096 is doubled by the kernel (and raised to its minimum): a few uevents fill it.
    const { socket, recorder } = openSocket(t, KERNEL_GROUP, 4096);
    assert.ok(socket.receiveBufferBytes < 64 * 1024, `granted ${socket.receiveBufferBytes}`);
    socket.pause();
    triggerNullChange(2000);
    socket.resume();
    await recorder.waitFor(isOverflow('ENOBUFS'));

    // The error state (POLLERR) must not leave the socket deaf: a new event still arrives.
    const before = recorder.items().length;
    triggerNullChange();
    const deadline = Date.now() + 3000;
    while (
      !recorder
        .items()
        .slice(before)
        .some(messageStartingWith(`change@${NULL_DEVPATH}\0`))
    ) {
      assert.ok(Date.now() < deadline, 'an event after the overflow');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(recorder.errors, []);
  });

  it('bounds one wake-up to 4096 items and delivers the rest on the next', async (t) => {
    const count = 4500;
    const { socket, recorder } = openSocket(t, KERNEL_GROUP, 64 * 1024 * 1024);
    socket.pause();
    triggerNullChange(count);
    socket.resume();
    const isNull = messageStartingWith(`change@${NULL_DEVPATH}\0`);
    const deadline = Date.now() + 10_000;
    while (recorder.items().filter(isNull).length < count) {
      assert.ok(Date.now() < deadline, `got ${recorder.items().filter(isNull).length} of ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(recorder.batches.length >= 2, `${recorder.batches.length} batches`);
    for (const batch of recorder.batches) assert.ok(batch.length <= 4096, `batch of ${batch.length}`);
    assert.equal(recorder.items().filter(isOverflow('ENOBUFS')).length, 0);
  });
});

describe('native netlink: datagrams and abuse', { skip: needsRoot }, () => {
  it('reports a datagram larger than 16 KiB as MSG_TRUNC and delivers the next one', async (t) => {
    const receiver = openSocket(t, 0);
    const sender = openSocket(t, 0).socket;
    sender.send(Buffer.alloc(20 * 1024, 0x41), receiver.socket.portId, 0);
    const fits = Buffer.alloc(16 * 1024, 0x42);
    sender.send(fits, receiver.socket.portId, 0);
    const message = await receiver.recorder.waitFor(messageStartingWith('BBBB'));
    assert.equal(message.buffer.length, fits.length);
    const kinds = receiver.recorder
      .items()
      .map((item) => (item.kind === 'overflow' ? item.reason : 'message'));
    assert.deepEqual(kinds, ['MSG_TRUNC', 'message']);
  });

  it('sends a Uint8Array; the kernel refuses an empty datagram with ENODATA', async (t) => {
    const receiver = openSocket(t, 0);
    const sender = openSocket(t, 0).socket;
    assert.throws(
      () => sender.send(Buffer.alloc(0), receiver.socket.portId, 0),
      systemErrorMatcher('ENODATA', 'sendto'),
    );
    assert.equal(sender.send(new Uint8Array([1, 2, 3]) as Buffer, receiver.socket.portId, 0), 3);
    const message = await receiver.recorder.waitFor(messageStartingWith(Buffer.from([1, 2, 3])));
    assert.equal(message.buffer.length, 3);
    assert.equal(receiver.recorder.items().length, 1);
  });

  it('throws TypeError for bad arguments and passes through a throwing getter', () => {
    const native = loadNative();
    const call = (name: string, ...args: unknown[]): unknown =>
      Reflect.apply(Reflect.get(native, name), native, args);
    assert.throws(() => call('openUeventSocket'), TypeError);
    assert.throws(
      () =>
        call(
          'openUeventSocket',
          {},
          () => undefined,
          () => undefined,
        ),
      TypeError,
    );
    assert.throws(
      () => call('openUeventSocket', { groups: 1, receiveBufferBytes: 4096 }, () => undefined),
      (error: unknown) => error instanceof TypeError && Reflect.get(error, 'code') === 'ERR_INVALID_ARG_TYPE',
    );
    const throwing = {
      get groups(): number {
        throw new Error('getter says no');
      },
      receiveBufferBytes: 4096,
    };
    assert.throws(
      () =>
        call(
          'openUeventSocket',
          throwing,
          () => undefined,
          () => undefined,
        ),
      /getter says no/,
    );
    assert.throws(() => call('peerCredentials'), TypeError);
    assert.throws(() => call('peerCredentials', 2 ** 31), TypeError);
  });

  it('cannot be constructed from JavaScript', (t) => {
    const { socket } = openSocket(t, 0);
    const SocketClass: unknown = Reflect.get(socket, 'constructor');
    assert.equal(typeof SocketClass, 'function');
    if (typeof SocketClass !== 'function') return;
    assert.throws(() => Reflect.construct(SocketClass, [{}, () => undefined, () => undefined]), TypeError);
    assert.throws(() => Reflect.construct(SocketClass, []), TypeError);
    assert.throws(() => Reflect.construct(SocketClass, [() => undefined, () => undefined]), TypeError);
  });

  it('throws EBADF for send on a closed socket', (t) => {
    const { socket } = openSocket(t, 0);
    socket.close();
    assert.throws(() => socket.send(Buffer.from('x'), 0, 0), systemErrorMatcher('EBADF', 'sendto'));
  });

  it('throws ECONNREFUSED for unicast to a port nobody holds', (t) => {
    const { socket } = openSocket(t, 0);
    const gone = openSocket(t, 0).socket;
    const port = gone.portId;
    gone.close();
    assert.throws(() => socket.send(Buffer.from('x'), port, 0), systemErrorMatcher('ECONNREFUSED', 'sendto'));
  });

  it('peerCredentials: ENOTSOCK on a file, EBADF on a closed fd', (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-native-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const fd = openSync(path.join(dir, 'plain-file'), 'w');
    t.after(() => closeSync(fd));
    const native = loadNative();
    assert.throws(() => native.peerCredentials(fd), systemErrorMatcher('ENOTSOCK', 'getsockopt'));
    assert.throws(() => native.peerCredentials(2 ** 30), systemErrorMatcher('EBADF', 'getsockopt'));
  });

  it('peerCredentials of a connected unix socket are this process', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-native-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'control.sock');
    const server = net.createServer();
    t.after(() => server.close());
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
    const client = net.connect(socketPath);
    t.after(() => client.destroy());
    const serverSide = await accepted;
    t.after(() => serverSide.destroy());

    const credentials = loadNative().peerCredentials(fdOf(serverSide));
    assert.deepEqual(credentials, { pid: process.pid, uid, gid: process.getgid?.() ?? -1 });
  });
});

describe('native netlink: lifetime', { skip: needsRoot }, () => {
  it('routes an exception from onBatch to uncaughtException and keeps the socket working', () => {
    const result = runChild(`
      const seen = [];
      process.on('uncaughtException', (error) => seen.push(error.message));
      let batches = 0;
      let ticked = false;
      const receiver = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, (batch) => {
        batches += 1;
        if (batches === 1) throw new Error('boom from onBatch');
        process.nextTick(() => { ticked = true; });
        setImmediate(() => {
          console.log(JSON.stringify({ seen, batches, ticked }));
          receiver.close();
          sender.close();
        });
      }, () => undefined);
      const sender = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
      sender.send(Buffer.from('first'), receiver.portId, 0);
      setTimeout(() => sender.send(Buffer.from('second'), receiver.portId, 0), 50);
    `);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { seen: ['boom from onBatch'], batches: 2, ticked: true });
  });

  it('an exception from onBatch without a handler ends the process like any uncaught one', () => {
    const result = runChild(`
      const receiver = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => {
        throw new Error('unhandled boom');
      }, () => undefined);
      const sender = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
      sender.send(Buffer.from('x'), receiver.portId, 0);
    `);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /unhandled boom/);
  });

  it('lets the process exit when closed, paused or unref()ed, and not before', () => {
    const exits = runChild(`
      const open = () => native.openUeventSocket({ groups: 1, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
      open().close();
      open().pause();
      open().unref();
    `);
    assert.equal(exits.status, 0, exits.stderr);

    const stays = runChild(`
      const socket = native.openUeventSocket({ groups: 1, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
      socket.unref();
      socket.ref();
      // An unref()ed timer: only the socket can keep the process alive until it fires.
      setTimeout(() => { console.log('still alive'); socket.close(); }, 300).unref();
      socket.unref();
      socket.ref();
    `);
    assert.equal(stays.status, 0, stays.stderr);
    assert.equal(stays.stdout.trim(), 'still alive');
  });

  it('closes a paused socket that was garbage collected', () => {
    const result = runChild(
      `
      const sender = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
      let port;
      (() => {
        const dropped = native.openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => undefined, () => undefined);
        port = dropped.portId;
        dropped.pause();
      })();
      sender.send(Buffer.from('before'), port, 0);
      (async () => {
        for (let i = 0; i < 20; i++) {
          global.gc();
          await new Promise((resolve) => setImmediate(resolve));
          try { sender.send(Buffer.from('after'), port, 0); } catch (error) { console.log(error.code); break; }
        }
        sender.close();
      })();
    `,
      ['--expose-gc'],
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'ECONNREFUSED');
  });

  it('works in a worker thread, on the worker loop, and is cleaned up when the worker ends', async (t) => {
    const { socket: sender } = openSocket(t, 0);
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const native = require(workerData.addon).loadNative();
      // Left open on purpose: the worker's teardown must close it.
      const socket = native.openUeventSocket({ groups: 1, receiveBufferBytes: 65536 }, (batch) => {
        // Kernel events (port 0) keep it busy; only the test's unicast datagram is reported.
        for (const item of batch) {
          if (item.kind === 'message' && item.senderPort !== 0) parentPort.postMessage(item.buffer.toString());
        }
      }, () => undefined);
      parentPort.postMessage(socket.portId);
      `,
      { eval: true, workerData: { addon: ADDON_MODULE } },
    );
    t.after(() => worker.terminate());
    const messages: unknown[] = [];
    let notify: (() => void) | undefined;
    worker.on('message', (message: unknown) => {
      messages.push(message);
      notify?.();
    });
    const next = async (): Promise<unknown> => {
      while (messages.length === 0) await new Promise<void>((resolve) => (notify = resolve));
      return messages.shift();
    };
    const port = await next();
    assert.ok(typeof port === 'number' && port > 0);
    sender.send(Buffer.from('to the worker'), port, 0);
    assert.equal(await next(), 'to the worker');

    // The worker's socket is on group 1 too; terminating mid-stream must not crash this process.
    triggerNullChange(50);
    const exitCode = await worker.terminate();
    assert.equal(exitCode, 1);
    assert.throws(
      () => sender.send(Buffer.from('gone'), port, 0),
      systemErrorMatcher('ECONNREFUSED', 'sendto'),
    );
  });
});
