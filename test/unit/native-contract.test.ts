// One contract, two implementations: what the pipeline may rely on from NativeNetlink holds for
// the fake (test/helpers/fake-native) exactly as for the real addon.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../../src/native/addon';
import type { NativeNetlink, NetlinkItem, NetlinkMessage, UeventSocket } from '../../src/native/types';
import {
  FakeNativeNetlink,
  messageStartingWith,
  recordBatches,
  type BatchRecorder,
} from '../helpers/fake-native';

const uid = process.getuid?.() ?? -1;

const implementations: { name: string; make: () => NativeNetlink; skip: string | false }[] = [
  { name: 'fake', make: () => new FakeNativeNetlink(), skip: false },
  {
    name: 'real addon',
    make: loadNative,
    skip: uid === 0 ? false : `needs root (running as uid ${uid})`,
  },
];

/** Opens a socket that is closed when the test ends, pass or fail. */
function openSocket(
  t: TestContext,
  native: NativeNetlink,
  groups = 0,
): { socket: UeventSocket; recorder: BatchRecorder } {
  const recorder = recordBatches();
  const socket = native.openUeventSocket(
    { groups, receiveBufferBytes: 256 * 1024 },
    recorder.onBatch,
    recorder.onError,
  );
  t.after(() => socket.close());
  return { socket, recorder };
}

function isMessage(item: NetlinkItem): item is NetlinkMessage {
  return item.kind === 'message';
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

for (const implementation of implementations) {
  describe(`native contract: ${implementation.name}`, { skip: implementation.skip }, () => {
    it('opens a bound socket with a port id and the granted buffer size', (t) => {
      const native = implementation.make();
      const { socket } = openSocket(t, native);
      assert.ok(Number.isInteger(socket.portId) && socket.portId > 0, `portId ${socket.portId}`);
      assert.ok(socket.portId <= 0xffffffff);
      assert.ok(socket.receiveBufferBytes >= 256 * 1024, `granted ${socket.receiveBufferBytes}`);
      const other = openSocket(t, native).socket;
      assert.notEqual(other.portId, socket.portId);
    });

    it('delivers a unicast datagram with the sender port and credentials', async (t) => {
      const native = implementation.make();
      const receiver = openSocket(t, native);
      const sender = openSocket(t, native).socket;
      const payload = Buffer.from('hello\0from\0a test\0', 'latin1');
      assert.equal(sender.send(payload, receiver.socket.portId, 0), payload.length);

      const message = await receiver.recorder.waitFor(messageStartingWith('hello'));
      assert.deepEqual(message.buffer, payload);
      assert.equal(message.senderPort, sender.portId);
      assert.equal(message.senderGroups, 0);
      assert.equal(message.uid, uid);
      assert.equal(message.gid, process.getgid?.() ?? -1);
      assert.equal(message.pid, process.pid);
      assert.deepEqual(receiver.recorder.errors, []);
    });

    it('hands over what arrived together as one batch', async (t) => {
      const native = implementation.make();
      const receiver = openSocket(t, native);
      const sender = openSocket(t, native).socket;
      for (let i = 0; i < 3; i++) sender.send(Buffer.from(`burst ${i}`), receiver.socket.portId, 0);

      await receiver.recorder.waitFor(messageStartingWith('burst 2'));
      assert.equal(receiver.recorder.batches.length, 1);
      const texts = receiver.recorder
        .items()
        .filter(isMessage)
        .map((item) => item.buffer.toString());
      assert.deepEqual(texts, ['burst 0', 'burst 1', 'burst 2']);
    });

    it('holds datagrams while paused and delivers them after resume', async (t) => {
      const native = implementation.make();
      const receiver = openSocket(t, native);
      const sender = openSocket(t, native).socket;
      receiver.socket.pause();
      receiver.socket.pause(); // twice is harmless
      sender.send(Buffer.from('while paused'), receiver.socket.portId, 0);
      await delay(50);
      assert.equal(receiver.recorder.items().length, 0);

      receiver.socket.resume();
      receiver.socket.resume();
      const message = await receiver.recorder.waitFor(messageStartingWith('while paused'));
      assert.equal(message.senderPort, sender.portId);
    });

    it('can be closed from inside onBatch', async (t) => {
      const native = implementation.make();
      const closing: { socket?: UeventSocket } = {};
      let calls = 0;
      const socket = native.openUeventSocket(
        { groups: 0, receiveBufferBytes: 65536 },
        () => {
          calls += 1;
          closing.socket?.close();
          closing.socket?.close();
        },
        () => undefined,
      );
      t.after(() => socket.close());
      closing.socket = socket;
      const sender = openSocket(t, native).socket;
      sender.send(Buffer.from('one'), socket.portId, 0);
      while (calls === 0) await delay(5);
      // Closed: its port is gone, and no further batch arrives.
      assert.throws(() => sender.send(Buffer.from('two'), socket.portId, 0), { code: 'ECONNREFUSED' });
      await delay(30);
      assert.equal(calls, 1);
    });

    it('closes idempotently; a closed socket refuses to send with EBADF', (t) => {
      const native = implementation.make();
      const { socket } = openSocket(t, native);
      socket.close();
      socket.close();
      socket.pause();
      socket.resume();
      socket.unref();
      socket.ref();
      assert.throws(
        () => socket.send(Buffer.from('x'), 0, 0),
        (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.equal(Reflect.get(error, 'code'), 'EBADF');
          assert.equal(Reflect.get(error, 'errno'), -9);
          assert.equal(Reflect.get(error, 'syscall'), 'sendto');
          return true;
        },
      );
    });

    it('rejects bad arguments with TypeError', (t) => {
      const native = implementation.make();
      const noop = (): void => undefined;
      // Untyped callers (JavaScript, or data from outside) must not reach a syscall.
      const open = (options: unknown, onBatch: unknown = noop, onError: unknown = noop): void => {
        const call = Reflect.get(native, 'openUeventSocket');
        assert.equal(typeof call, 'function');
        const socket: unknown = Reflect.apply(call, native, [options, onBatch, onError]);
        if (typeof socket === 'object' && socket !== null)
          Reflect.apply(Reflect.get(socket, 'close'), socket, []);
      };
      const bad: [unknown, unknown?, unknown?][] = [
        [null],
        ['groups=1'],
        [{ groups: -1, receiveBufferBytes: 4096 }],
        [{ groups: 1.5, receiveBufferBytes: 4096 }],
        [{ groups: 2 ** 32, receiveBufferBytes: 4096 }],
        [{ groups: '1', receiveBufferBytes: 4096 }],
        [{ groups: 1, receiveBufferBytes: -4096 }],
        [{ groups: 1, receiveBufferBytes: 0 }],
        [{ groups: 1, receiveBufferBytes: Number.NaN }],
        [{ groups: 1 }],
        [{ groups: 1, receiveBufferBytes: 4096 }, 'not a function'],
        [{ groups: 1, receiveBufferBytes: 4096 }, noop, null],
      ];
      for (const args of bad) assert.throws(() => open(...args), TypeError, JSON.stringify(args));

      const { socket } = openSocket(t, native);
      const send = (...args: unknown[]): unknown => Reflect.apply(socket.send, socket, args);
      assert.throws(() => send('text', 0, 0), TypeError);
      assert.throws(() => send(Buffer.from('x'), -1, 0), TypeError);
      assert.throws(() => send(Buffer.from('x'), 0, 2 ** 32), TypeError);
      assert.throws(() => send(Buffer.from('x'), 0), TypeError);
      const peer = (fd: unknown): unknown => Reflect.apply(native.peerCredentials, native, [fd]);
      assert.throws(() => peer(-1), TypeError);
      assert.throws(() => peer('3'), TypeError);
      assert.throws(() => peer(1.5), TypeError);
    });
  });
}
