// Taking over an open uevent or notify socket (what the daemon's new image does after a re-exec,
// issue 9): openUeventSocket's options.fd and openNotifySocket's fd argument, on the real kernel.
// What was queued on the socket while nobody watched it arrives once it is taken over; the
// wrong kind of fd, a socket bound elsewhere, a closed fd and a bad number are refused, and a
// refused fd stays open (it is still the caller's).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadNative } from '../../src/native/addon';
import { loadNotifyNative, type NotifyItem } from '../../src/native/notify-addon';
import { loadNativeReexec } from '../../src/native/reexec-addon';
import type { NativeSystemError } from '../../src/native/types';
import { ueventSocketFd, unixSocketFd } from '../../src/core/daemon-state';
import { recordBatches } from '../helpers/fake-native';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;
const NULL_UEVENT = '/sys/devices/virtual/mem/null/uevent';

/** Our own copy of one of our fds (pidfd_getfd on ourselves): it outlives the original. */
function duplicate(fd: number): number {
  const reexec = loadNativeReexec();
  const pidfd = reexec.pidfdOpen(process.pid);
  try {
    return reexec.pidfdGetfd(pidfd, fd);
  } finally {
    reexec.closeFd(pidfd);
  }
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(fd: number): void {
  try {
    loadNativeReexec().closeFd(fd);
  } catch {
    // closed already
  }
}

function errorCode(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.equal((err as NativeSystemError).code, code, String(err));
    return true;
  };
}

async function until<T>(what: string, check: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('taking over a uevent socket', { skip: needsRoot }, () => {
  /** A kernel-group uevent socket as a bare fd, its netlink port, and nobody watching it. */
  function bareUeventSocket(t: TestContext): { fd: number; port: number } {
    const first = loadNative().openUeventSocket(
      { groups: 1, receiveBufferBytes: 1 << 20 },
      () => undefined,
      () => undefined,
    );
    const own = ueventSocketFd(first.portId);
    assert.ok(own !== undefined, 'found in /proc/net/netlink');
    const fd = duplicate(own);
    first.close();
    t.after(() => closeQuietly(fd));
    return { fd, port: first.portId };
  }

  it('receives what was queued before it was taken over, with the same port', async (t) => {
    const { fd, port } = bareUeventSocket(t);
    writeFileSync(NULL_UEVENT, 'change');
    const rec = recordBatches();
    const socket = loadNative().openUeventSocket(
      { groups: 1, receiveBufferBytes: 1 << 20, fd },
      rec.onBatch,
      rec.onError,
    );
    t.after(() => socket.close());
    assert.equal(socket.portId, port);
    assert.ok(socket.receiveBufferBytes > 0);
    await until('the queued uevent', () =>
      rec
        .items()
        .find(
          (i) =>
            i.kind === 'message' &&
            i.buffer.toString('latin1').startsWith('change@/devices/virtual/mem/null'),
        ),
    );
    assert.deepEqual(rec.errors, []);
  });

  it('refuses a pipe, a socket bound to other groups, a closed fd and a bad number; the fd stays open', (t) => {
    const native = loadNative();
    const [readEnd, writeEnd] = loadNotifyNative().pipe();
    // The write end is closed below on purpose; closed again here only if the test failed first
    // (a second close would take whatever fd had the number by then).
    let writeOpen = true;
    t.after(() => {
      closeQuietly(readEnd);
      if (writeOpen) closeQuietly(writeEnd);
    });
    const open = (fd: number, groups = 1) =>
      native.openUeventSocket(
        { groups, receiveBufferBytes: 1 << 20, fd },
        () => undefined,
        () => undefined,
      );
    assert.throws(() => open(readEnd), errorCode('ENOTSOCK'));
    assert.ok(isOpen(readEnd));
    const { fd } = bareUeventSocket(t);
    assert.throws(() => open(fd, 2), errorCode('EINVAL'));
    assert.ok(isOpen(fd));
    closeQuietly(writeEnd);
    writeOpen = false;
    assert.throws(() => open(writeEnd), errorCode('EBADF'));
    assert.throws(() => open(-1), TypeError);
  });
});

describe('taking over a notify socket', { skip: needsRoot }, () => {
  function tempSocketPath(t: TestContext): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-adopt-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    return path.join(dir, 'notify.sock');
  }

  /** A bound notify socket as a bare fd (the path stays bound to it), nobody watching it. */
  function bareNotifySocket(t: TestContext, at: string): number {
    const native = loadNotifyNative();
    const first = native.openNotifySocket(
      at,
      () => undefined,
      () => undefined,
    );
    const own = unixSocketFd(at);
    assert.ok(own !== undefined, 'found in /proc/net/unix');
    const fd = duplicate(own);
    first.close();
    t.after(() => closeQuietly(fd));
    return fd;
  }

  it('receives the datagrams sent before it was taken over', async (t) => {
    const native = loadNotifyNative();
    const at = tempSocketPath(t);
    const fd = bareNotifySocket(t, at);
    assert.equal(native.sendDatagram(at, Buffer.from('STATUS=while nobody read')), 24);
    const got: NotifyItem[] = [];
    const socket = native.openNotifySocket(
      at,
      (b) => got.push(...b),
      () => undefined,
      fd,
    );
    t.after(() => socket.close());
    const item = await until('the queued datagram', () => got[0]);
    assert.equal(item.buffer.toString(), 'STATUS=while nobody read');
    assert.equal(item.pid, process.pid);
    for (const i of got) if (i.pidfd >= 0) native.closeFd(i.pidfd);
  });

  it('refuses a socket bound to another path and a uevent socket; the fd stays open', (t) => {
    const native = loadNotifyNative();
    const at = tempSocketPath(t);
    const fd = bareNotifySocket(t, at);
    assert.throws(
      () =>
        native.openNotifySocket(
          `${at}.other`,
          () => undefined,
          () => undefined,
          fd,
        ),
      errorCode('EADDRNOTAVAIL'),
    );
    assert.ok(isOpen(fd));
    const uevent = loadNative().openUeventSocket(
      { groups: 0, receiveBufferBytes: 4096 },
      () => undefined,
      () => undefined,
    );
    t.after(() => uevent.close());
    const ueventFd = ueventSocketFd(uevent.portId);
    assert.ok(ueventFd !== undefined);
    assert.throws(
      () =>
        native.openNotifySocket(
          at,
          () => undefined,
          () => undefined,
          ueventFd,
        ),
      errorCode('EAFNOSUPPORT'),
    );
    assert.throws(
      () =>
        native.openNotifySocket(
          at,
          () => undefined,
          () => undefined,
          -1,
        ),
      TypeError,
    );
  });
});
