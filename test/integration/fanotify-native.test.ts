// The fanotify addon: one contract suite run against the fake and the real addon (a directory
// entry event with a resolvable directory handle, a permission event that holds an opener until
// it is answered, ESTALE for a deleted directory's handle, argument TypeErrors, a closed handle),
// then what only the kernel does: a filesystem mark on tmpfs and on a loop-mounted ext4,
// FAN_Q_OVERFLOW with a lowered fs.fanotify.max_queued_events (restored at once), the kernel
// allowing held openers when the group closes, pre-content events (FAN_PRE_ACCESS with a range)
// where the file system has them, abuse, and a worker that ends with a group open.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  FAN,
  FAN_INIT,
  FAN_MARK,
  FAN_RESPONSE,
  O_LARGEFILE,
  loadFanotifyNative,
  type FanotifyHandle,
  type NativeFanotify,
} from '../../src/native/fanotify-addon';
import { parseFanotifyRecords, type FanotifyRecord } from '../../src/events/fanotify-events';
import { FakeNativeFanotify, type FakeFanotifyHandle } from '../helpers/fake-fanotify';
import { loopExt4Unavailable, mountLoopExt4 } from '../helpers/loop-ext4';

const ROOT = process.getuid?.() === 0 ? undefined : `needs root (running as uid ${process.getuid?.()})`;
const work = fs.mkdtempSync('/dev/shm/triggerd-fanotify-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) c.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});
const MAX_QUEUED = '/proc/sys/fs/fanotify/max_queued_events';
const MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'fanotify-addon.js');

interface Opened {
  handle: FanotifyHandle;
  records: FanotifyRecord[];
  batches: number;
}

function open(native: NativeFanotify, flags: number): Opened {
  const o = { records: [] as FanotifyRecord[], batches: 0 } as Opened;
  o.handle = native.openFanotify(
    flags,
    O_LARGEFILE,
    (bytes) => {
      o.batches++;
      o.records.push(...parseFanotifyRecords(bytes).records);
    },
    (error) => {
      throw error;
    },
  );
  return o;
}

async function until(what: string, probe: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `cat file` as a child: resolves with its exit code and output. */
function cat(file: string): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const child = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out });
    }),
  );
  return { child, done };
}

function contract(name: string, make: () => NativeFanotify, skip?: string): void {
  describe(`fanotify contract: ${name}`, { skip }, () => {
    test('a directory entry event names the directory by handle (resolvable) and the entry by name', async () => {
      const native = make();
      const dir = fs.mkdtempSync(path.join(work, `${name}-entry-`));
      const o = open(native, FAN_INIT.REPORT_DFID_NAME);
      try {
        o.handle.mark(FAN_MARK.ADD, FAN.CREATE | FAN.ONDIR, dir);
        const mount = o.handle.openMount(dir);
        fs.writeFileSync(path.join(dir, 'new'), '');
        if (native instanceof FakeNativeFanotify)
          (o.handle as FakeFanotifyHandle).entry(FAN.CREATE, dir, 'new');
        await until('FAN_CREATE', () => o.records.length > 0);
        const r = o.records[0];
        assert.equal(r.mask & FAN.CREATE, FAN.CREATE);
        assert.equal(r.fd, -1);
        assert.equal(r.fids[0].name, 'new');
        assert.equal(o.handle.resolveFileHandle(mount, r.fids[0].handle), dir);
        o.handle.closeMount(mount);
        assert.throws(() => o.handle.closeMount(mount), { code: 'EBADF' });
      } finally {
        o.handle.close();
      }
    });

    test("a deleted directory's handle is ESTALE", async () => {
      const native = make();
      const dir = fs.mkdtempSync(path.join(work, `${name}-stale-`));
      const sub = path.join(dir, 'sub');
      fs.mkdirSync(sub);
      const o = open(native, FAN_INIT.REPORT_DFID_NAME);
      try {
        o.handle.mark(FAN_MARK.ADD, FAN.CREATE, sub);
        const mount = o.handle.openMount(dir);
        fs.writeFileSync(path.join(sub, 'f'), '');
        if (native instanceof FakeNativeFanotify)
          (o.handle as FakeFanotifyHandle).entry(FAN.CREATE, sub, 'f');
        await until('FAN_CREATE', () => o.records.length > 0);
        const handle = o.records[0].fids[0].handle;
        fs.rmSync(sub, { recursive: true });
        if (native instanceof FakeNativeFanotify) native.pathById.delete(native.idOf(sub));
        assert.throws(() => o.handle.resolveFileHandle(mount, handle), {
          code: 'ESTALE',
          syscall: 'open_by_handle_at',
        });
      } finally {
        o.handle.close();
      }
    });

    test('a permission event holds the opener until it is answered; answering twice is ENOENT, a closed fd EBADF', async () => {
      const native = make();
      const dir = fs.mkdtempSync(path.join(work, `${name}-perm-`));
      const file = path.join(dir, 'held');
      fs.writeFileSync(file, 'content\n');
      const o = open(native, FAN_INIT.CLASS_CONTENT);
      try {
        o.handle.mark(FAN_MARK.ADD, FAN.OPEN_PERM | FAN.EVENT_ON_CHILD, dir);
        let finished = false;
        const opener =
          native instanceof FakeNativeFanotify
            ? (o.handle as FakeFanotifyHandle)
                .access(file)
                .then((v) => ({ code: v === 'allow' ? 0 : 1, out: '' }))
            : cat(file).done;
        void opener.then(() => (finished = true));
        await until('FAN_OPEN_PERM', () => o.records.some((r) => r.permission));
        const r = o.records.find((x) => x.permission) as FanotifyRecord;
        assert.equal(r.mask & FAN.OPEN_PERM, FAN.OPEN_PERM);
        assert.ok(r.fd >= 0 && r.pid > 0);
        assert.equal(o.handle.ownedEventFds, 1);
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(finished, false, 'the opener waits');
        o.handle.respond(r.fd, FAN_RESPONSE.ALLOW);
        const result = await opener;
        assert.equal(result.code, 0);
        assert.throws(() => o.handle.respond(r.fd, FAN_RESPONSE.ALLOW), { code: 'ENOENT' });
        o.handle.closeEventFd(r.fd);
        assert.equal(o.handle.ownedEventFds, 0);
        assert.throws(() => o.handle.respond(r.fd, FAN_RESPONSE.ALLOW), { code: 'EBADF' });
        assert.throws(() => o.handle.closeEventFd(r.fd), { code: 'EBADF' });
      } finally {
        o.handle.close();
      }
    });

    test('fds the handle did not read are refused; bad arguments are TypeErrors', () => {
      const native = make();
      const o = open(native, FAN_INIT.REPORT_DFID_NAME);
      try {
        assert.throws(() => o.handle.respond(0, FAN_RESPONSE.ALLOW), { code: 'EBADF' });
        assert.throws(() => o.handle.closeEventFd(1), { code: 'EBADF' });
        assert.throws(() => o.handle.closeMount(2), { code: 'EBADF' });
        assert.throws(
          () => o.handle.resolveFileHandle(2, Buffer.alloc(16, 1)),
          (e: Error) => e instanceof TypeError || (e as NodeJS.ErrnoException).code === 'EBADF',
        );
        if (native instanceof FakeNativeFanotify) native.missing.add(path.join(work, 'nope'));
        assert.throws(() => o.handle.openMount(path.join(work, 'nope')), {
          code: 'ENOENT',
          path: path.join(work, 'nope'),
        });
        assert.throws(() => o.handle.mark(FAN_MARK.ADD, FAN.CREATE, path.join(work, 'nope')), {
          code: 'ENOENT',
          syscall: 'fanotify_mark',
        });
        const mark = o.handle.mark.bind(o.handle) as (...a: unknown[]) => void;
        for (const args of [
          [],
          [1, 1],
          ['1', 1, work],
          [1, -1, work],
          [1, 1.5, work],
          [2 ** 32, 1, work],
          [1, 1, ''],
          [1, 1, 'a\0b'],
          [1, 1, 7],
        ])
          assert.throws(() => mark(...args), TypeError, JSON.stringify(args));
        const respond = o.handle.respond.bind(o.handle) as (...a: unknown[]) => void;
        for (const args of [[], ['1', 1], [-1, 1], [1, 0], [1, 'x'], [NaN, 1]])
          assert.throws(() => respond(...args), TypeError, String(args));
        const resolve = o.handle.resolveFileHandle.bind(o.handle) as (...a: unknown[]) => string;
        const mount = o.handle.openMount(work);
        for (const args of [
          [mount],
          [mount, 'x'],
          [mount, Buffer.alloc(4)],
          [mount, Buffer.alloc(8)],
          [mount, Buffer.from([200, 0, 0, 0, 1, 0, 0, 0])],
          [mount, new Uint16Array(8)],
          ['x', Buffer.alloc(16)],
        ])
          assert.throws(() => resolve(...args), TypeError, String(args));
        const openFanotify = native.openFanotify.bind(native) as (...a: unknown[]) => FanotifyHandle;
        assert.throws(() => openFanotify(), TypeError);
        assert.throws(() => openFanotify(0, 0, () => {}), TypeError);
        assert.throws(() => openFanotify(0, 0, 'x', () => {}), TypeError);
        assert.throws(
          () =>
            openFanotify(
              -1,
              0,
              () => {},
              () => {},
            ),
          TypeError,
        );
        assert.throws(
          () =>
            openFanotify(
              0,
              'x',
              () => {},
              () => {},
            ),
          TypeError,
        );
      } finally {
        o.handle.close();
      }
    });

    test('a closed handle: close is idempotent, everything else is EBADF', () => {
      const native = make();
      const o = open(native, FAN_INIT.REPORT_DFID_NAME);
      o.handle.close();
      o.handle.close();
      assert.equal(o.handle.closed, true);
      assert.throws(() => o.handle.mark(FAN_MARK.ADD, FAN.CREATE, work), { code: 'EBADF' });
      assert.throws(() => o.handle.openMount(work), { code: 'EBADF' });
      assert.throws(() => o.handle.respond(3, 1), { code: 'EBADF' });
      o.handle.pause();
      o.handle.resume();
      o.handle.ref();
      o.handle.unref();
    });
  });
}

contract('fake', () => new FakeNativeFanotify());
contract('real', loadFanotifyNative, ROOT);

describe('fanotify on the real kernel', { skip: ROOT }, () => {
  const native = (): NativeFanotify => loadFanotifyNative();

  async function deepTreeOnFilesystemMark(base: string): Promise<void> {
    const o = open(native(), FAN_INIT.REPORT_DFID_NAME);
    try {
      o.handle.mark(FAN_MARK.ADD | FAN_MARK.FILESYSTEM, FAN.CREATE | FAN.CLOSE_WRITE | FAN.ONDIR, base);
      const mount = o.handle.openMount(base);
      const deep = path.join(base, 'a', 'b', 'c', 'd', 'e');
      fs.mkdirSync(deep, { recursive: true });
      fs.writeFileSync(path.join(deep, 'leaf'), 'x');
      await until('the leaf', () =>
        o.records.some((r) => r.fids[0]?.name === 'leaf' && (r.mask & FAN.CLOSE_WRITE) !== 0),
      );
      const leaf = o.records.find((r) => r.fids[0]?.name === 'leaf') as FanotifyRecord;
      assert.equal(o.handle.resolveFileHandle(mount, leaf.fids[0].handle), deep);
      // Directories made after the mark: each creation was seen, with its parent.
      for (const name of ['a', 'b', 'c', 'd', 'e'])
        assert.ok(
          o.records.some((r) => r.fids[0]?.name === name && (r.mask & FAN.ONDIR) !== 0),
          name,
        );
    } finally {
      o.handle.close();
    }
  }

  test('a filesystem mark on tmpfs sees a tree made after it, with resolvable handles', async () => {
    await deepTreeOnFilesystemMark(fs.mkdtempSync(path.join(work, 'fsmark-')));
  });

  test('a filesystem mark on a loop-mounted ext4', { skip: loopExt4Unavailable() }, async () => {
    const ext4 = mountLoopExt4('fanotify-native');
    try {
      await deepTreeOnFilesystemMark(ext4.dir);
    } finally {
      ext4.unmount();
    }
  });

  test('FAN_Q_OVERFLOW when the queue (max_queued_events, lowered for this group) fills', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'overflow-'));
    const saved = fs.readFileSync(MAX_QUEUED, 'utf8');
    let o: Opened;
    // The limit is taken when the group is made: lower it, open, and restore at once.
    fs.writeFileSync(MAX_QUEUED, '16');
    try {
      o = open(native(), FAN_INIT.REPORT_DFID_NAME);
    } finally {
      fs.writeFileSync(MAX_QUEUED, saved);
    }
    try {
      o.handle.mark(FAN_MARK.ADD, FAN.CREATE, dir);
      o.handle.pause();
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
      o.handle.resume();
      await until('FAN_Q_OVERFLOW', () => o.records.some((r) => r.overflow));
      const overflow = o.records.find((r) => r.overflow) as FanotifyRecord;
      assert.equal(overflow.fd, -1);
      assert.ok(o.records.length <= 17, `at most the queue plus the overflow record (${o.records.length})`);
    } finally {
      o.handle.close();
    }
  });

  test('one batch per wake-up: 300 events read to EAGAIN come in few callbacks', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'batch-'));
    const o = open(native(), FAN_INIT.REPORT_DFID_NAME);
    try {
      o.handle.mark(FAN_MARK.ADD, FAN.CREATE, dir);
      o.handle.pause();
      for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
      o.handle.resume();
      await until('300 records', () => o.records.length >= 300);
      assert.ok(o.batches <= 2, `${o.batches} batches`);
    } finally {
      o.handle.close();
    }
  });

  test('closing the group allows every opener still waiting', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'close-'));
    const file = path.join(dir, 'held');
    fs.writeFileSync(file, 'released\n');
    const o = open(native(), FAN_INIT.CLASS_CONTENT);
    o.handle.mark(FAN_MARK.ADD, FAN.OPEN_PERM | FAN.EVENT_ON_CHILD, dir);
    const readers = [cat(file), cat(file)];
    await until('two held openers', () => o.records.filter((r) => r.permission).length >= 2);
    o.handle.close();
    for (const r of readers) assert.deepEqual(await r.done, { code: 0, out: 'released\n' });
  });

  test(
    'pre-content: FAN_PRE_ACCESS holds a read on ext4 and carries the range (refused on tmpfs)',
    { skip: loopExt4Unavailable() },
    async () => {
      let o: Opened;
      try {
        o = open(native(), FAN_INIT.CLASS_PRE_CONTENT);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EINVAL');
        return; // a kernel without pre-content groups
      }
      const tmpfsFile = path.join(work, 'pre-tmpfs');
      fs.writeFileSync(tmpfsFile, '');
      const ext4 = mountLoopExt4('fanotify-pre');
      try {
        try {
          o.handle.mark(FAN_MARK.ADD, FAN.PRE_ACCESS, tmpfsFile);
          assert.fail('tmpfs accepted a pre-content mark');
        } catch (err) {
          // EOPNOTSUPP: tmpfs does not opt in (FS_ALLOW_HSM); EINVAL: a kernel without the bit.
          assert.ok(['ENOTSUP', 'EINVAL'].includes((err as NodeJS.ErrnoException).code ?? ''), String(err));
        }
        const file = path.join(ext4.dir, 'lazy');
        fs.writeFileSync(file, 'x'.repeat(10000));
        try {
          o.handle.mark(FAN_MARK.ADD, FAN.PRE_ACCESS, file);
        } catch (err) {
          // Before 6.14 the bit is unknown: EINVAL. Nothing more to check.
          assert.equal((err as NodeJS.ErrnoException).code, 'EINVAL');
          return;
        }
        const reader = cat(file);
        await until('FAN_PRE_ACCESS', () => o.records.some((r) => (r.mask & FAN.PRE_ACCESS) !== 0));
        const r = o.records.find((x) => (x.mask & FAN.PRE_ACCESS) !== 0) as FanotifyRecord;
        assert.equal(r.permission, true);
        assert.ok(r.range !== undefined && r.range.count > 0n, 'a range info record');
        o.handle.respond(r.fd, FAN_RESPONSE.ALLOW);
        o.handle.closeEventFd(r.fd);
        // Later reads of the same file may raise more events: allow whatever comes.
        const drain = setInterval(() => {
          for (const x of o.records.splice(0)) {
            if (x.fd < 0) continue;
            try {
              o.handle.respond(x.fd, FAN_RESPONSE.ALLOW);
            } catch {
              // answered
            }
            try {
              o.handle.closeEventFd(x.fd);
            } catch {
              // closed
            }
          }
        }, 5);
        try {
          const done = await reader.done;
          assert.equal(done.code, 0);
          assert.equal(done.out.length, 10000);
        } finally {
          clearInterval(drain);
        }
      } finally {
        try {
          o.handle.close();
        } finally {
          ext4.unmount();
        }
      }
    },
  );

  test('a worker that ends with a group open and a held opener: no crash, the opener is released', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'worker-'));
    const file = path.join(dir, 'held');
    fs.writeFileSync(file, 'w\n');
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { loadFanotifyNative } = require(workerData.module);
      const h = loadFanotifyNative().openFanotify(4, 0, () => parentPort.postMessage('event'), () => {});
      h.mark(1, 0x10000 | 0x8000000, workerData.dir);
      parentPort.postMessage('ready');
    `;
    const worker = new Worker(source, { eval: true, workerData: { module: MODULE, dir } });
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    const reader = cat(file);
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    await worker.terminate();
    assert.deepEqual(await reader.done, { code: 0, out: 'w\n' });
  });
});
