// The real notify socket: one contract suite run against the fake and the real addon; then the
// real clients (Debian's systemd-notify, python3-systemd) through notifyEvents + NotifyRouter,
// including the default BARRIER wait of systemd-notify; then abuse through the real socket while
// a fake "service" keeps getting its messages: empty datagrams, 64 KiB datagrams, binary junk,
// a stranger's credentials, MAINPID= from an untrusted sender and fd floods, with the receiving
// process's /proc/self/fd counted before and after. Every loop is bounded; every child is
// killed by pid and every socket closed when its test ends.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { NotifyRouter, type NotifyEvent, type NotifyUnit } from '../../src/core/notify-router';
import { notifyEvents, type NotifySourceItem } from '../../src/events/notify-events';
import {
  loadNotifyNative,
  type NativeNotify,
  type NativeSystemError,
  type NotifyDatagram,
  type NotifyItem,
  type NotifySocket,
} from '../../src/native/notify-addon';
import type { NotifyAccess } from '../../src/units/notify-message';
import { FakeNativeNotify } from '../helpers/fake-notify';
import { recordingLogger } from '../helpers/logger';
import { Prng } from '../helpers/prng';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;
const SYSTEMD_NOTIFY = '/usr/bin/systemd-notify';
const noSystemdNotify = existsSync(SYSTEMD_NOTIFY)
  ? false
  : 'systemd-notify not installed (package systemd; .ci/run installs it)';
/** Debian's interpreter: python3-systemd is a Debian package, a pyenv python on PATH lacks it. */
const PYTHON = '/usr/bin/python3';
const noPythonSystemd =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import systemd.daemon'], { stdio: 'ignore' }).status === 0
    ? false
    : 'python3-systemd not installed (.ci/run installs it)';
const NOTIFY_ADDON_MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'notify-addon.js');

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let abstractCounter = 0;
function abstractName(): string {
  return `@triggerd-test-${process.pid}-${abstractCounter++}`;
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Sends with the non-blocking test client, yielding to the loop while the queue is full. */
async function sendRetrying(
  native: NativeNotify,
  to: string,
  payload: Uint8Array,
  fds?: readonly number[],
): Promise<void> {
  for (let attempt = 0; attempt < 20_000; attempt++) {
    try {
      native.sendDatagram(to, payload, fds);
      return;
    } catch (err) {
      if ((err as NativeSystemError).code !== 'EAGAIN') throw err;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  throw new Error(`the receiver never drained ${to}`);
}

interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Starts a child (its pid known at once) whose end is awaited with a bound; killed by pid if the test ends first. */
function start(
  t: TestContext,
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 10_000,
): { pid: number; exited: Promise<Exited> } {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...sanitizerEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => killChild(child));
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exited>((resolve, reject) => {
    const timer = setTimeout(() => {
      killChild(child);
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // 'exit' can come before the pipes are drained; 'close' is the end of both.
      child.on('close', () => resolve({ code, signal, stdout, stderr, ms }));
    });
  });
  return { pid: child.pid ?? -1, exited };
}

/** Keeps a sanitizer run (LD_PRELOAD=libasan, see binding.gyp) working in child processes. */
function sanitizerEnv(): Record<string, string> {
  const keep: Record<string, string> = {};
  for (const name of ['LD_PRELOAD', 'ASAN_OPTIONS']) {
    const value = process.env[name];
    if (value !== undefined) keep[name] = value;
  }
  return keep;
}

function run(t: TestContext, command: string, args: string[], env: Record<string, string>): Promise<Exited> {
  return start(t, command, args, env).exited;
}

function killChild(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function unitOf(
  name: string,
  access: NotifyAccess,
  pids: { main?: () => number | undefined; cgroup?: () => ReadonlySet<number> | undefined } = {},
): NotifyUnit {
  return {
    name,
    notifyAccess: () => access,
    get mainPid() {
      return pids.main?.();
    },
    controlPid: undefined,
    cgroupPids: () => pids.cgroup?.(),
  };
}

interface Receiver {
  native: NativeNotify;
  router: NotifyRouter;
  events: NotifyEvent[];
  lines: Record<string, unknown>[];
  errors: NativeSystemError[];
  socket: NotifySocket;
  /** Fds units took (FDSTORE=1); the test closes them. */
  kept: number[];
}

/** notifyEvents + NotifyRouter on the real addon, torn down when the test ends. */
function startReceiver(
  t: TestContext,
  socketPath: string,
  unitsForPid: (pid: number) => readonly NotifyUnit[],
  options: { keepFdStore?: boolean } = {},
): Receiver {
  const native = loadNotifyNative();
  const { logger, lines } = recordingLogger();
  const events: NotifyEvent[] = [];
  const errors: NativeSystemError[] = [];
  const kept: number[] = [];
  const router = new NotifyRouter({
    unitsForPid,
    deliver: (event) => {
      events.push(event);
      if (options.keepFdStore === true && event.fields.fdStore) kept.push(...event.fds.take());
    },
    closeFd: (fd) => native.closeFd(fd),
    pidfdGetPid: (fd) => native.pidfdGetPid(fd),
    logger,
  });
  let socket: NotifySocket | undefined;
  const subscription = notifyEvents(native, socketPath).subscribe({
    next: (item: NotifySourceItem) => {
      if (item.kind === 'open') socket = item.socket;
      else if (item.kind === 'datagrams') router.routeBatch(item.datagrams);
      else errors.push(item.error);
    },
    error: (err: unknown) => assert.fail(`notify source failed: ${String(err)}`),
  });
  t.after(() => {
    subscription.unsubscribe();
    for (const fd of kept.splice(0)) native.closeFd(fd);
  });
  assert.ok(socket !== undefined);
  return { native, router, events, lines, errors, socket, kept };
}

// ---- the contract, fake and real -----------------------------------------------------------------

const implementations: { name: string; make: () => NativeNotify; skip: string | false }[] = [
  { name: 'fake', make: () => new FakeNativeNotify(), skip: false },
  { name: 'real addon', make: loadNotifyNative, skip: false },
];

interface Recorder {
  batches: NotifyItem[][];
  errors: NativeSystemError[];
  onBatch: (batch: NotifyItem[]) => void;
  onError: (error: NativeSystemError) => void;
  items(): NotifyDatagram[];
}

function recorder(): Recorder {
  const batches: NotifyItem[][] = [];
  const errors: NativeSystemError[] = [];
  return {
    batches,
    errors,
    onBatch: (batch) => batches.push(batch),
    onError: (error) => errors.push(error),
    items: () => batches.flat(),
  };
}

/** Closes every fd a batch handed over (the receiver owns them). */
function release(native: NativeNotify, items: NotifyDatagram[]): void {
  for (const item of items) {
    for (const fd of item.fds) native.closeFd(fd);
    if (item.pidfd >= 0) native.closeFd(item.pidfd);
  }
}

for (const implementation of implementations) {
  describe(`NativeNotify contract: ${implementation.name}`, { skip: implementation.skip }, () => {
    const address = (t: TestContext, kind: 'path' | 'abstract'): string =>
      kind === 'abstract' ? abstractName() : path.join(tempDir(t), 'notify.sock');

    for (const kind of ['path', 'abstract'] as const) {
      test(`a datagram to a ${kind} socket arrives with this process's credentials and a pidfd`, async (t) => {
        const native = implementation.make();
        const to = address(t, kind);
        const rec = recorder();
        const socket = native.openNotifySocket(to, rec.onBatch, rec.onError);
        t.after(() => socket.close());
        assert.ok(socket.receiveBufferBytes > 0);
        assert.equal(native.sendDatagram(to, Buffer.from('READY=1')), 7);
        const [item] = await waitFor('the datagram', () =>
          rec.items().length > 0 ? rec.items() : undefined,
        );
        assert.ok(item !== undefined);
        assert.equal(item.kind, 'datagram');
        assert.equal(item.buffer.toString(), 'READY=1');
        assert.equal(item.length, 7);
        assert.equal(item.pid, process.pid);
        assert.equal(item.uid, process.getuid?.());
        assert.equal(item.gid, process.getgid?.());
        assert.deepEqual(item.fds, []);
        assert.equal(item.truncated, false);
        if (socket.passPidfd) {
          assert.ok(item.pidfd >= 0);
          assert.equal(native.pidfdGetPid(item.pidfd), process.pid);
        }
        release(native, rec.items());
        assert.deepEqual(rec.errors, []);
      });
    }

    test('a path socket is writable by every user; a second socket on it is EADDRINUSE', (t) => {
      const native = implementation.make();
      const to = address(t, implementation.name === 'fake' ? 'abstract' : 'path');
      const socket = native.openNotifySocket(
        to,
        () => undefined,
        () => undefined,
      );
      t.after(() => socket.close());
      if (!to.startsWith('@')) assert.equal(statSync(to).mode & 0o777, 0o666);
      assert.throws(
        () =>
          native.openNotifySocket(
            to,
            () => undefined,
            () => undefined,
          ),
        (err: NativeSystemError) => err.code === 'EADDRINUSE' && err.syscall === 'bind' && err.path === to,
      );
    });

    test('passed fds arrive as new fds; the receiver closes them', async (t) => {
      const native = implementation.make();
      const to = address(t, 'abstract');
      const rec = recorder();
      const socket = native.openNotifySocket(to, rec.onBatch, rec.onError);
      t.after(() => socket.close());
      const [readEnd, writeEnd] = native.pipe();
      native.sendDatagram(to, Buffer.from('FDSTORE=1\nFDNAME=pipe'), [readEnd, writeEnd]);
      const [item] = await waitFor('the datagram', () => (rec.items().length > 0 ? rec.items() : undefined));
      assert.equal(item?.fds.length, 2);
      for (const fd of item?.fds ?? []) assert.ok(fd !== readEnd && fd !== writeEnd);
      release(native, rec.items());
      native.closeFd(readEnd);
      native.closeFd(writeEnd);
      assert.throws(
        () => native.closeFd(readEnd),
        (err: NativeSystemError) => err.code === 'EBADF' && err.errno === -9,
      );
    });

    test('what arrived together is one batch; oversized datagrams are marked truncated', async (t) => {
      const native = implementation.make();
      const to = address(t, 'abstract');
      const rec = recorder();
      const socket = native.openNotifySocket(to, rec.onBatch, rec.onError);
      t.after(() => socket.close());
      native.sendDatagram(to, Buffer.alloc(0));
      native.sendDatagram(to, Buffer.alloc(4096, 0x61));
      native.sendDatagram(to, Buffer.alloc(4097, 0x62));
      native.sendDatagram(to, Buffer.alloc(65536, 0x63));
      const items = await waitFor('four datagrams', () =>
        rec.items().length === 4 ? rec.items() : undefined,
      );
      assert.equal(rec.batches.length, 1);
      assert.deepEqual(
        items.map((i) => [i.buffer.length, i.length, i.truncated]),
        [
          [0, 0, false],
          [4096, 4096, false],
          [4097, 4097, false],
          [4097, 65536, true],
        ],
      );
      release(native, items);
    });

    test('paused, datagrams wait; resumed, they arrive; close from inside onBatch stops delivery', async (t) => {
      const native = implementation.make();
      const to = address(t, 'abstract');
      const rec = recorder();
      let closeInside = false;
      const socket: NotifySocket = native.openNotifySocket(
        to,
        (batch) => {
          rec.onBatch(batch);
          if (closeInside) {
            socket.close();
            socket.close();
          }
        },
        rec.onError,
      );
      t.after(() => socket.close());
      socket.pause();
      socket.pause();
      native.sendDatagram(to, Buffer.from('one'));
      await delay(30);
      assert.equal(rec.items().length, 0);
      closeInside = true;
      socket.resume();
      socket.resume();
      await waitFor('the held datagram', () => rec.items().length === 1);
      assert.throws(
        () => native.sendDatagram(to, Buffer.from('two')),
        (err: NativeSystemError) => err.code === 'ECONNREFUSED',
      );
      await delay(20);
      assert.equal(rec.batches.length, 1);
      release(native, rec.items());
      socket.unref();
      socket.ref();
    });

    test('bad arguments are TypeErrors; nothing reaches a syscall', (t) => {
      const native = implementation.make();
      const call = (name: keyof NativeNotify, ...args: unknown[]): unknown =>
        Reflect.apply(native[name], native, args);
      const noop = (): void => undefined;
      const badOpens: unknown[][] = [
        [undefined, noop, noop],
        [42, noop, noop],
        ['relative/path', noop, noop],
        ['', noop, noop],
        ['@', noop, noop],
        ['/tmp/with\0nul', noop, noop],
        ['@ok', 'not a function', noop],
        ['@ok', noop, null],
      ];
      for (const args of badOpens)
        assert.throws(() => call('openNotifySocket', ...args), TypeError, JSON.stringify(args));
      assert.throws(
        () => call('openNotifySocket', `/${'x'.repeat(200)}`, noop, noop),
        (err: NativeSystemError) => err.code === 'ENAMETOOLONG',
      );
      for (const fd of [-1, 1.5, '3', Number.NaN, 2 ** 31])
        assert.throws(() => call('closeFd', fd), TypeError);
      assert.throws(() => call('sendDatagram', '@x', 'text'), TypeError);
      assert.throws(() => call('sendDatagram', '@x', Buffer.from('x'), 'fds'), TypeError);
      assert.throws(() => call('sendDatagram', '@x', Buffer.from('x'), [-1]), TypeError);
      assert.throws(() => call('pidfdGetPid', -1), TypeError);
      assert.throws(
        () => native.sendDatagram(abstractName(), Buffer.from('x')),
        (err: NativeSystemError) => err.code === 'ECONNREFUSED',
      );
      const [r, w] = native.pipe();
      assert.throws(
        () => native.pidfdGetPid(r),
        (err: NativeSystemError) => err.code === 'EBADF',
      );
      native.closeFd(r);
      native.closeFd(w);
      t.diagnostic('every entry point refused bad input without side effects');
    });
  });
}

// ---- the real addon only ---------------------------------------------------------------------------

describe('real addon: lifetime and limits', () => {
  test('a batch is bounded (≤ 128 datagrams); the rest comes on the next wake-up', async (t) => {
    const native = loadNotifyNative();
    const to = abstractName();
    const rec = recorder();
    const socket = native.openNotifySocket(to, rec.onBatch, rec.onError);
    t.after(() => socket.close());
    socket.pause();
    let queued = 0;
    // Fill the kernel queue while paused (bounded by net.unix.max_dgram_qlen and the send buffer).
    for (; queued < 5000; queued++) {
      try {
        native.sendDatagram(to, Buffer.alloc(0));
      } catch (err) {
        assert.equal((err as NativeSystemError).code, 'EAGAIN');
        break;
      }
    }
    assert.ok(queued > 0);
    socket.resume();
    await waitFor(`${queued} datagrams`, () => rec.items().length === queued);
    assert.ok(rec.batches.every((b) => b.length <= 128));
    if (queued > 128) assert.ok(rec.batches.length > 1, 'more than one wake-up');
    release(native, rec.items());
  });

  test('a socket left open in a terminated worker is closed by its teardown', async (t) => {
    const to = abstractName();
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const native = require(workerData.addon).loadNotifyNative();
      native.openNotifySocket(workerData.to, (batch) => {
        for (const item of batch) {
          for (const fd of item.fds) native.closeFd(fd);
          if (item.pidfd >= 0) native.closeFd(item.pidfd);
          parentPort.postMessage(item.buffer.toString());
        }
      }, () => undefined);
      parentPort.postMessage('open');
      `,
      { eval: true, workerData: { addon: NOTIFY_ADDON_MODULE, to } },
    );
    t.after(() => worker.terminate());
    const messages: unknown[] = [];
    worker.on('message', (message: unknown) => messages.push(message));
    await waitFor('the worker to open its socket', () => messages.includes('open'));
    const native = loadNotifyNative();
    native.sendDatagram(to, Buffer.from('hello worker'));
    await waitFor('the worker to receive', () => messages.includes('hello worker'));
    await worker.terminate();
    // Its socket is gone with it: the address is free again.
    await waitFor('the address to be released', () => {
      try {
        native.sendDatagram(to, Buffer.from('x'));
        return false;
      } catch (err) {
        return (err as NativeSystemError).code === 'ECONNREFUSED';
      }
    });
  });

  test('notifyEvents: replaces a stale socket, never touches a non-socket, unlinks only its own inode', async (t) => {
    const native = loadNotifyNative();
    const dir = tempDir(t);
    const to = path.join(dir, 'notify.sock');
    // A stale socket from an earlier run (/run survives restarts here): replaced.
    native
      .openNotifySocket(
        to,
        () => undefined,
        () => undefined,
      )
      .close();
    assert.ok(statSync(to).isSocket());
    const first = notifyEvents(native, to).subscribe();
    assert.ok(statSync(to).isSocket());
    first.unsubscribe();
    assert.equal(existsSync(to), false, 'teardown unlinks the path it bound');

    // Someone else's socket took the path meanwhile: teardown leaves it alone.
    const second = notifyEvents(native, to).subscribe();
    rmSync(to);
    const other = native.openNotifySocket(
      to,
      () => undefined,
      () => undefined,
    );
    t.after(() => other.close());
    second.unsubscribe();
    assert.ok(existsSync(to));
    other.close();
    rmSync(to);

    // Not a socket: left as it is, and the stream fails with EADDRINUSE.
    closeSync(openSync(to, 'w'));
    const failure = await new Promise<unknown>((resolve) =>
      notifyEvents(native, to).subscribe({ error: resolve }),
    );
    assert.equal((failure as NativeSystemError).code, 'EADDRINUSE');
    assert.ok(statSync(to).isFile());
  });

  test('unref() lets the process exit while the socket is open', (t) => {
    const dir = tempDir(t);
    const result = spawnSync(
      process.execPath,
      [
        '-e',
        `const native = require(${JSON.stringify(NOTIFY_ADDON_MODULE)}).loadNotifyNative();
         native.openNotifySocket(${JSON.stringify(path.join(dir, 's'))}, () => {}, () => {}).unref();`,
      ],
      { timeout: 10_000 },
    );
    assert.equal(result.status, 0, result.stderr?.toString());
  });

  test('the pidfd of a sender that has exited reports -1', async (t) => {
    const native = loadNotifyNative();
    const to = abstractName();
    const rec = recorder();
    const socket = native.openNotifySocket(to, rec.onBatch, rec.onError);
    t.after(() => socket.close());
    socket.pause();
    const exited = await run(
      t,
      process.execPath,
      [
        '-e',
        `require(${JSON.stringify(NOTIFY_ADDON_MODULE)}).loadNotifyNative().sendDatagram(${JSON.stringify(to)}, Buffer.from('READY=1'))`,
      ],
      {},
    );
    assert.equal(exited.code, 0, exited.stderr);
    socket.resume();
    const [item] = await waitFor('the datagram', () => (rec.items().length > 0 ? rec.items() : undefined));
    assert.ok(item !== undefined && item.pid > 0);
    if (socket.passPidfd) {
      assert.ok(item.pidfd >= 0, 'a pidfd even for a sender that is gone (Linux 6.16+)');
      assert.equal(native.pidfdGetPid(item.pidfd), -1);
    }
    release(native, rec.items());
  });
});

// ---- real clients ------------------------------------------------------------------------------

describe('real clients: Debian systemd-notify', { skip: needsRoot || noSystemdNotify }, () => {
  test('--ready from a shell: READY=1 for the shell, and the BARRIER fd is closed at once (< 1 s, exit 0)', async (t) => {
    const to = path.join(tempDir(t), 'notify.sock');
    let shellPid = -1;
    const unit = unitOf('app.service', 'main', { main: () => shellPid });
    // The shell is the main process; its systemd-notify sends READY=1 in the shell's name and
    // BARRIER=1 in its own, which belongs to no unit (barriers need none).
    const receiver = startReceiver(t, to, (pid) => (pid === shellPid ? [unit] : []));
    const fdsBefore = openFdCount();
    // The pid is known before any datagram can be routed (that happens on a later loop turn).
    const shell = start(t, '/bin/sh', ['-c', `${SYSTEMD_NOTIFY} --ready; echo rc=$?`], { NOTIFY_SOCKET: to });
    shellPid = shell.pid;
    const exited = await shell.exited;
    assert.equal(exited.code, 0, exited.stderr);
    assert.equal(exited.stdout.trim(), 'rc=0', `systemd-notify failed: ${exited.stderr}`);
    // Exit 0 is the barrier check: systemd-notify exits 1 (after 5 s) when its BARRIER fd stays open.
    t.diagnostic(`systemd-notify --ready: ${exited.ms.toFixed(1)} ms including the shell`);
    const ready = receiver.events.find((e) => e.fields.ready);
    assert.ok(ready !== undefined, 'READY=1 was delivered');
    assert.equal(ready.unit.name, 'app.service');
    assert.equal(ready.sender.pid, shellPid, 'systemd-notify sends on behalf of its parent');
    assert.equal(receiver.router.counters.barriers, 1);
    await waitFor('fds back to where they were', () => openFdCount() <= fdsBefore);
  });

  test('--status, --pid=N (a root sender may name another main pid), WATCHDOG=1, combined fields', async (t) => {
    const to = path.join(tempDir(t), 'notify.sock');
    const sleeper = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    t.after(() => killChild(sleeper));
    const sleeperPid = sleeper.pid as number;
    const unit = unitOf('app.service', 'all');
    const receiver = startReceiver(t, to, () => [unit]);
    const env = { NOTIFY_SOCKET: to };
    for (const args of [
      ['--status=Serving 3 clients'],
      [`--pid=${sleeperPid}`],
      ['WATCHDOG=1'],
      ['--ready', '--status=all good', 'EXTEND_TIMEOUT_USEC=5000000'],
    ]) {
      const exited = await run(t, SYSTEMD_NOTIFY, args, env);
      assert.equal(exited.code, 0, `${args.join(' ')}: ${exited.stderr}`);
    }
    const fields = receiver.events.map((e) => e.fields);
    assert.ok(fields.some((f) => f.status === 'Serving 3 clients'));
    const mainPid = receiver.events.find((e) => e.fields.mainPid !== undefined);
    assert.equal(mainPid?.fields.mainPid, sleeperPid);
    assert.equal(mainPid?.sender.pid, sleeperPid, '--pid=N also puts N in the credentials');
    assert.equal(mainPid?.sender.uid, 0);
    assert.ok(fields.some((f) => f.watchdog === 'ping'));
    assert.ok(fields.some((f) => f.ready && f.status === 'all good' && f.extendTimeoutUsec === 5_000_000));
    assert.equal(receiver.router.counters.barriers, 4);
  });

  test('an abstract NOTIFY_SOCKET (@name) works the same', async (t) => {
    const to = abstractName();
    const unit = unitOf('app.service', 'all');
    const receiver = startReceiver(t, to, () => [unit]);
    const exited = await run(t, SYSTEMD_NOTIFY, ['--ready'], { NOTIFY_SOCKET: to });
    assert.equal(exited.code, 0, exited.stderr);
    await waitFor('READY=1', () => receiver.events.some((e) => e.fields.ready));
  });
});

describe('real clients: python3-systemd', { skip: needsRoot || noPythonSystemd }, () => {
  test('daemon.notify(READY=1), a multi-line message, and FDSTORE=1 with two pipe fds', async (t) => {
    const to = path.join(tempDir(t), 'notify.sock');
    const unit = unitOf('py.service', 'all');
    const receiver = startReceiver(t, to, () => [unit], { keepFdStore: true });
    const env = { NOTIFY_SOCKET: to };
    const scripts = [
      "from systemd import daemon; print(daemon.notify('READY=1'))",
      "from systemd import daemon; print(daemon.notify('READY=1\\nSTATUS=up\\nX_PHASE=warm'))",
      "import os; from systemd import daemon; r,w=os.pipe(); print(daemon.notify('FDSTORE=1\\nFDNAME=mypipe', fds=[r, w]))",
    ];
    for (const script of scripts) {
      const exited = await run(t, PYTHON, ['-c', script], env);
      assert.equal(exited.stdout.trim(), 'True', exited.stderr);
    }
    await waitFor('three messages', () => receiver.events.length === 3);
    const [ready, multi, store] = receiver.events;
    assert.equal(ready?.fields.ready, true);
    assert.equal(multi?.fields.status, 'up');
    assert.equal(multi?.fields.other.get('X_PHASE'), 'warm');
    assert.equal(store?.fields.fdStore, true);
    assert.equal(store?.fields.fdName, 'mypipe');
    assert.equal(receiver.kept.length, 2, 'the unit took both fds');
    assert.equal(receiver.router.counters.fdsUnused, 0);
  });
});

describe('BARRIER with the addon as client', () => {
  test("the receiver closes the barrier fd: the sender's read end sees EOF at once", async (t) => {
    const to = abstractName();
    const unit = unitOf('app.service', 'all');
    const receiver = startReceiver(t, to, () => [unit]);
    const native = receiver.native;
    const [readEnd, writeEnd] = native.pipe();
    const started = Date.now();
    native.sendDatagram(to, Buffer.from('BARRIER=1'), [writeEnd]);
    native.closeFd(writeEnd);
    const reader = new net.Socket({ fd: readEnd, readable: true, writable: false });
    t.after(() => reader.destroy());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no EOF within 2 s: the barrier fd was kept')), 2000);
      reader.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
      reader.resume();
    });
    assert.ok(Date.now() - started < 1000);
    assert.equal(receiver.router.counters.barriers, 1);
    assert.deepEqual(receiver.events, []);
  });
});

// ---- abuse --------------------------------------------------------------------------------------

describe(
  'abuse through the real socket while a service keeps receiving',
  { skip: needsRoot || noSystemdNotify },
  () => {
    test('empty and 64 KiB datagrams, junk, strangers, untrusted MAINPID=, fd floods: all fds closed, socket answers', async (t) => {
      const dir = tempDir(t);
      chmodSync(dir, 0o755); // nobody must reach the socket for the stranger's part
      const to = path.join(dir, 'notify.sock');

      // The "service": a shell that runs systemd-notify for every line it reads, so its messages
      // carry the shell's pid (systemd-notify sends on behalf of its parent).
      const service = spawn(
        '/bin/sh',
        ['-c', `while read line; do ${SYSTEMD_NOTIFY} --no-block "STATUS=$line"; done`],
        {
          env: { PATH: '/usr/bin:/bin', NOTIFY_SOCKET: to },
          stdio: ['pipe', 'ignore', 'inherit'],
        },
      );
      t.after(() => killChild(service));
      const servicePid = service.pid as number;
      const svc = unitOf('svc.service', 'main', { main: () => servicePid });
      const open = unitOf('open.service', 'all');
      const receiver = startReceiver(t, to, () => [svc, open]);
      const native = receiver.native;
      let round = 0;
      const serviceAnswers = async (): Promise<void> => {
        const text = `alive-${round++}`;
        service.stdin?.write(`${text}\n`);
        await waitFor(`the service's ${text}`, () =>
          receiver.events.some((e) => e.unit.name === 'svc.service' && e.fields.status === text),
        );
      };
      await serviceAnswers();
      const fdsBaseline = openFdCount();
      const prng = new Prng(0x0b_a5_e0);

      // 1. A stranger (nobody) says READY=1: svc refuses (NotifyAccess=main) and says who would
      //    accept it; the open unit takes it. (First, so the one refusal line per minute is its.)
      const stranger = await run(
        t,
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', SYSTEMD_NOTIFY, '--no-block', 'READY=1'],
        { NOTIFY_SOCKET: to },
      );
      assert.equal(stranger.code, 0, stranger.stderr);
      const fromStranger = await waitFor("the stranger's READY=1", () =>
        receiver.events.find((e) => e.sender.uid === 65534 && e.fields.ready),
      );
      assert.equal(fromStranger.unit.name, 'open.service');
      assert.ok(!receiver.events.some((e) => e.unit.name === 'svc.service' && e.fields.ready));
      const refusal = receiver.lines.find(
        (l) => l.code === 'ERR_NOTIFY_ACCESS_NOT_MAIN_PID' && l.unit === 'svc.service',
      );
      assert.ok(refusal !== undefined, 'the refusal is logged');
      assert.equal(refusal.wouldAccept, 'all');
      assert.match(
        String(refusal.msg),
        new RegExp(`PID ${fromStranger.sender.pid} \\(systemd-notify\\) ← ${process.pid}`),
      );
      assert.match(String(refusal.msg), new RegExp(`only permitted for the main PID ${servicePid}`));

      // 2. MAINPID= from an untrusted sender (uid 65534, not the main pid): the field is removed.
      const untrusted = await run(
        t,
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          SYSTEMD_NOTIFY,
          '--no-block',
          `MAINPID=${servicePid}`,
          'STATUS=hijack',
        ],
        { NOTIFY_SOCKET: to },
      );
      assert.equal(untrusted.code, 0, untrusted.stderr);
      const hijack = await waitFor('the untrusted MAINPID=', () =>
        receiver.events.find((e) => e.fields.status === 'hijack'),
      );
      assert.equal(hijack.fields.mainPid, undefined);
      assert.ok(receiver.lines.some((l) => l.code === 'ERR_NOTIFY_MAINPID_REFUSED'));
      await serviceAnswers();

      // 3. Zero-length datagrams in a bounded loop (the 2016 crash).
      for (let i = 0; i < 20_000; i++) await sendRetrying(native, to, Buffer.alloc(0));
      await waitFor('the empty datagrams', () => receiver.router.counters.empty >= 20_000, 20_000);
      await serviceAnswers();

      // 4. 64 KiB datagrams: truncated, dropped.
      for (let i = 0; i < 50; i++) await sendRetrying(native, to, prng.bytes(65536));
      await waitFor('the big datagrams', () => receiver.router.counters.dropped.ERR_NOTIFY_TRUNCATED >= 50);
      await serviceAnswers();

      // 5. Binary junk of every size up to the limit.
      for (let i = 0; i < 3000; i++) await sendRetrying(native, to, prng.bytes(prng.int(4097)));
      await waitFor('the junk', () => receiver.router.counters.datagrams >= 20_000 + 50 + 3000 + 2);
      await serviceAnswers();

      // 6. Fd floods: 200 datagrams × 100 fds (SCM_RIGHTS), nobody takes them.
      const sources = Array.from({ length: 100 }, () => openSync('/dev/null', 'r'));
      const before = receiver.router.counters.fdsUnused;
      for (let i = 0; i < 200; i++) await sendRetrying(native, to, Buffer.from(`X_FLOOD=${i}`), sources);
      for (const fd of sources) closeSync(fd);
      await waitFor('the fd flood', () => receiver.router.counters.fdsUnused - before >= 200 * 100, 20_000);
      // Over the limit of one sendmsg (SCM_MAX_FD = 253): the kernel refuses, nothing arrives.
      const many = Array.from({ length: 254 }, () => openSync('/dev/null', 'r'));
      assert.throws(
        () => native.sendDatagram(to, Buffer.from('X=1'), many),
        (err: NativeSystemError) => err.code === 'EINVAL',
      );
      for (const fd of many) closeSync(fd);
      await serviceAnswers();

      // Nothing leaked: the receiving process has the fds it had before the abuse.
      await waitFor(
        `fds back to ${fdsBaseline} (now ${openFdCount()})`,
        () => openFdCount() <= fdsBaseline,
        5000,
      );
      assert.deepEqual(receiver.errors, []);
      assert.ok(receiver.socket.receiveBufferBytes > 0);
      const c = receiver.router.counters;
      t.diagnostic(
        `datagrams ${c.datagrams}, empty ${c.empty}, truncated ${c.dropped.ERR_NOTIFY_TRUNCATED}, ` +
          `refused ${c.refused}, mainPidIgnored ${c.mainPidIgnored}, fds closed ${c.fdsClosed}, unused ${c.fdsUnused}`,
      );
    });
  },
);
