// Abuse of triggerd_native.node (netlink): openUeventSocket, peerCredentials, releaseMemory and
// the UeventSocket they return, through the harness in test/helpers/abuse.ts; then the receive
// path with datagrams of the sizes that matter (empty, at and around the 16 KiB bound, huge) and
// sockets dropped without close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNative } from '../../src/native/addon';
import { loadNativeSocket } from '../../src/native/socket-addon';
import type { NativeNetlink, NetlinkItem, UeventSocket } from '../../src/native/types';
import {
  abuseCall,
  abuseHandle,
  assertNoFdLeak,
  assertProcessUsable,
  bufferArg,
  closedFd,
  collectGarbage,
  expectRefused,
  Findings,
  functionArg,
  intArg,
  fdArg,
  INT32_MAX,
  isRoot,
  objectArg,
  openFds,
  rootSkip,
  scratchDir,
  UINT32_MAX,
  unopenedFds,
} from '../helpers/abuse';

let native: NativeNetlink | undefined;
let loadError: string | undefined;
try {
  native = loadNative();
} catch (error) {
  loadError = `the triggerd_native addon is not built (${(error as Error).message})`;
}

const noop = (): void => undefined;

function open(n: NativeNetlink, onBatch: (batch: NetlinkItem[]) => void = noop): UeventSocket {
  return n.openUeventSocket({ groups: 0, receiveBufferBytes: 256 * 1024 }, onBatch, noop);
}

test('netlink: every export refuses wrong arguments', { skip: loadError }, async () => {
  const n = native as NativeNetlink;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('netlink');
  const socketAddon = loadNativeSocket();
  const listening = socketAddon.listen('stream', { family: 'unix', path: path.join(dir, 's') }, {});
  try {
    await abuseCall(findings, {
      label: 'openUeventSocket',
      call: (...args) => Reflect.apply(n.openUeventSocket, n, args),
      args: [
        objectArg('options', () => ({ groups: 0, receiveBufferBytes: 65536 }), [
          intArg('groups', 0, UINT32_MAX, () => 0),
          intArg('receiveBufferBytes', 1, INT32_MAX, () => 65536),
        ]),
        functionArg('onBatch'),
        functionArg('onError'),
      ],
      cleanup: (socket) => (socket as UeventSocket).close(),
    });
    await abuseCall(findings, {
      label: 'peerCredentials',
      call: (...args) => Reflect.apply(n.peerCredentials, n, args),
      args: [fdArg('fd', () => listening)],
    });
    // Fds that are not open, and fds that are not sockets.
    const nullFd = fs.openSync('/dev/null', 'r');
    try {
      for (const fd of [...unopenedFds(), nullFd]) {
        await expectRefused(findings, `peerCredentials(${fd})`, { call: () => n.peerCredentials(fd) }, []);
      }
    } finally {
      fs.closeSync(nullFd);
    }
    await abuseCall(findings, {
      label: 'releaseMemory',
      call: (...args) => Reflect.apply(n.releaseMemory, n, args),
      args: [],
    });
  } finally {
    socketAddon.close(listening);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'netlink exports');
  await assertProcessUsable();
});

test(
  'netlink: UeventSocket methods, closed, on foreign receivers, constructed by hand',
  { skip: loadError },
  async () => {
    const n = native as NativeNetlink;
    const before = openFds();
    const findings = new Findings();
    const peer = open(n);
    let current: UeventSocket | undefined;
    try {
      await abuseHandle(
        findings,
        {
          label: 'UeventSocket',
          open: () => {
            current = open(n);
            return current;
          },
          methods: {
            pause: { args: [], afterClose: 'quiet' },
            resume: { args: [], afterClose: 'quiet' },
            ref: { args: [], afterClose: 'quiet' },
            unref: { args: [], afterClose: 'quiet' },
            send: {
              args: [
                bufferArg('buffer'),
                intArg('destPort', 0, UINT32_MAX, () => peer.portId),
                intArg('destGroups', 0, UINT32_MAX, () => 0),
              ],
              afterClose: 'throws',
              // Sending to a userspace port of NETLINK_KOBJECT_UEVENT needs root (EPERM otherwise).
              noValidCall: !isRoot,
            },
          },
          getters: { portId: 'value', receiveBufferBytes: 'value' },
        },
        [{ portId: 1 }, Buffer.alloc(8)],
      );
      // Sends the kernel refuses: far too big for the send buffer, and to a port nobody has.
      const sender = open(n);
      try {
        await expectRefused(
          findings,
          'send(8 MiB)',
          { call: () => sender.send(Buffer.alloc(8 << 20), peer.portId, 0) },
          [],
        );
        await expectRefused(
          findings,
          'send(to no port)',
          { call: () => sender.send(Buffer.from('x'), 0x7ffffffe, 0) },
          [],
        );
      } finally {
        sender.close();
      }
    } finally {
      peer.close();
      current?.close();
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'UeventSocket');
    await assertProcessUsable();
  },
);

test(
  'netlink: datagrams of every awkward size are delivered or reported, never misread',
  { skip: loadError ?? rootSkip },
  async () => {
    const n = native as NativeNetlink;
    const before = openFds();
    const items: NetlinkItem[] = [];
    const receiver = open(n, (batch) => items.push(...batch));
    const sender = open(n);
    const sizes = [1, 4095, 4096, 16383, 16384, 16385, 65536, 200 * 1024];
    try {
      // An empty datagram never leaves: netlink says ENODATA.
      assert.throws(() => sender.send(Buffer.alloc(0), receiver.portId, 0), { code: 'ENODATA' });
      for (const size of sizes) sender.send(Buffer.alloc(size, 0x5a), receiver.portId, 0);
      const deadline = Date.now() + 5000;
      while (items.length < sizes.length && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(items.length, sizes.length, 'one item per datagram');
      items.forEach((item, i) => {
        if (sizes[i] <= 16384) {
          assert.equal(item.kind, 'message', `datagram ${i} (${sizes[i]} bytes)`);
          if (item.kind === 'message') {
            assert.equal(item.buffer.length, sizes[i]);
            assert.ok(item.buffer.every((b) => b === 0x5a));
          }
        } else {
          assert.deepEqual(
            item,
            { kind: 'overflow', reason: 'MSG_TRUNC' },
            `datagram ${i} (${sizes[i]} bytes)`,
          );
        }
      });
    } finally {
      receiver.close();
      sender.close();
    }
    await assertNoFdLeak(before, 'datagram sizes');
  },
);

test(
  'netlink: sockets dropped without close() are closed by the garbage collector',
  { skip: loadError },
  async () => {
    const n = native as NativeNetlink;
    const before = openFds();
    for (let i = 0; i < 50; i++) {
      // Paused: nothing holds it any more, so it can be collected (a watched socket never is).
      open(n).pause();
    }
    await collectGarbage();
    await assertNoFdLeak(before, 'dropped sockets');
    assert.ok(closedFd() >= 0);
    await assertProcessUsable();
  },
);
