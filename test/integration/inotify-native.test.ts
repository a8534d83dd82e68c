// The inotify addon on the real kernel: one contract suite run against the fake and the real
// addon (watch a temp file: close-write, IN_IGNORED after removeWatch, errors), then what only
// the kernel does (records for create/close-write/delete in a directory, IN_Q_OVERFLOW with a
// lowered fs.inotify.max_queued_events, restored afterwards), abuse (wrong argument types, a
// closed handle, a throwing callback), and a worker that ends with a handle open. Last, armCall
// with a prepared launch of the spawn addon: the clone made inside the wake-up, before fn.
import { describe, test, after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  IN,
  loadInotifyNative,
  type InotifyHandle,
  type NativeInotify,
} from '../../src/native/inotify-addon';
import { parseInotifyRecords, type InotifyRecord } from '../../src/events/inotify-events';
import {
  loadNativeSpawn,
  type ChildExit,
  type ChildWatcher,
  type PreparedLaunch,
  type SpawnedChild,
} from '../../src/native/spawn-addon';
import { FakeNativeInotify } from '../helpers/fake-inotify';
import { basicPlan, PATH_ENV } from '../helpers/spawn-plan';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-inotify-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const MAX_QUEUED = '/proc/sys/fs/inotify/max_queued_events';
const INOTIFY_MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'inotify-addon.js');

/** A handle whose batches are parsed and collected. */
function open(native: NativeInotify): { handle: InotifyHandle; records: InotifyRecord[]; batches: Buffer[] } {
  const records: InotifyRecord[] = [];
  const batches: Buffer[] = [];
  const handle = native.openInotify(
    (bytes) => {
      batches.push(bytes);
      records.push(...parseInotifyRecords(bytes).records);
    },
    (error) => {
      throw error;
    },
  );
  return { handle, records, batches };
}

async function until(what: string, probe: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Writes and closes `file` the way a real writer would; the fake is told explicitly. */
function writeAndClose(native: NativeInotify, handle: InotifyHandle, file: string): void {
  fs.writeFileSync(file, 'x');
  if (native instanceof FakeNativeInotify)
    (handle as ReturnType<FakeNativeInotify['openInotify']>).closeWrite(file);
}

function contract(name: string, make: () => NativeInotify): void {
  describe(`inotify contract: ${name}`, () => {
    test('armCall: once, inside the wake-up before its batch, for its wd and mask; disarmCall', async () => {
      const native = make();
      const file = path.join(work, `${name}-armed`);
      fs.writeFileSync(file, '');
      const order: string[] = [];
      const handle = native.openInotify(
        () => order.push('batch'),
        (error) => {
          throw error;
        },
      );
      try {
        const wd = handle.addWatch(file, IN.CLOSE_WRITE);
        const id = handle.armCall(wd, IN.CLOSE_WRITE, () => order.push('armed'));
        const otherMask = handle.armCall(wd, IN.DELETE_SELF, () => order.push('wrong mask'));
        writeAndClose(native, handle, file);
        await until('the batch', () => order.includes('batch'));
        assert.deepEqual(order, ['armed', 'batch']);
        assert.equal(handle.disarmCall(id), false, 'it fired: one-shot');
        writeAndClose(native, handle, file);
        await until('the second batch', () => order.length === 3);
        assert.deepEqual(order, ['armed', 'batch', 'batch']);
        assert.equal(handle.disarmCall(otherMask), true);
        assert.equal(handle.disarmCall(otherMask), false);
      } finally {
        handle.close();
      }
    });

    test('a watched file reports IN_CLOSE_WRITE to the same wd, in one batch per wake-up', async () => {
      const native = make();
      const file = path.join(work, `${name}-cw`);
      fs.writeFileSync(file, '');
      const { handle, records } = open(native);
      try {
        const wd = handle.addWatch(file, IN.CLOSE_WRITE);
        assert.ok(Number.isInteger(wd) && wd >= 1);
        assert.equal(handle.addWatch(file, IN.CLOSE_WRITE), wd, 'same inode, same wd');
        writeAndClose(native, handle, file);
        await until('close-write', () => records.length > 0);
        assert.deepEqual(records[0], { wd, mask: IN.CLOSE_WRITE, cookie: 0, name: '' });
      } finally {
        handle.close();
      }
    });

    test('removeWatch queues IN_IGNORED; removing it again is EINVAL', async () => {
      const native = make();
      const file = path.join(work, `${name}-rm`);
      fs.writeFileSync(file, '');
      const { handle, records } = open(native);
      try {
        const wd = handle.addWatch(file, IN.CLOSE_WRITE);
        handle.removeWatch(wd);
        await until('IN_IGNORED', () => records.some((r) => r.wd === wd && (r.mask & IN.IGNORED) !== 0));
        assert.throws(() => handle.removeWatch(wd), { code: 'EINVAL', syscall: 'inotify_rm_watch' });
      } finally {
        handle.close();
      }
    });

    test('a missing path is ENOENT with the path; bad arguments are TypeErrors', () => {
      const native = make();
      if (native instanceof FakeNativeInotify) native.missing.add(path.join(work, 'nope'));
      const { handle } = open(native);
      try {
        assert.throws(() => handle.addWatch(path.join(work, 'nope'), IN.CLOSE_WRITE), {
          code: 'ENOENT',
          syscall: 'inotify_add_watch',
          path: path.join(work, 'nope'),
        });
        const bad: unknown[][] = [
          [],
          [42, IN.CLOSE_WRITE],
          [work],
          [work, 'x'],
          [work, -1],
          [work, 2 ** 32],
          [work, 1.5],
          ['', 1],
          ['a\0b', 1],
        ];
        for (const args of bad) {
          const addWatch = handle.addWatch as (...a: unknown[]) => number;
          assert.throws(() => addWatch.apply(handle, args), TypeError, JSON.stringify(args));
        }
        const removeWatch = handle.removeWatch as (...a: unknown[]) => void;
        for (const args of [[], ['1'], [-1], [NaN], [2 ** 31]])
          assert.throws(() => removeWatch.apply(handle, args), TypeError, String(args));
        const openInotify = native.openInotify.bind(native) as (...a: unknown[]) => InotifyHandle;
        assert.throws(() => openInotify(), TypeError);
        assert.throws(() => openInotify(() => {}), TypeError);
        assert.throws(() => openInotify(() => {}, 'x'), TypeError);
        const reread = native.rereadPartitionTable.bind(native) as (...a: unknown[]) => void;
        assert.throws(() => reread(), TypeError);
        assert.throws(() => reread(7), TypeError);
      } finally {
        handle.close();
      }
    });

    test('a closed handle: close is idempotent, watches fail with EBADF', () => {
      const native = make();
      const { handle } = open(native);
      handle.close();
      handle.close();
      assert.equal(handle.closed, true);
      assert.throws(() => handle.addWatch(work, IN.CREATE), { code: 'EBADF' });
      assert.throws(() => handle.removeWatch(1), { code: 'EBADF' });
      handle.pause();
      handle.resume();
      handle.ref();
      handle.unref();
    });
  });
}

contract('fake', () => new FakeNativeInotify());
contract('real', loadInotifyNative);

describe('inotify on the real kernel', () => {
  const native = loadInotifyNative();

  test('a directory: create, close-write, delete, with names', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'dir-'));
    const { handle, records } = open(native);
    try {
      const wd = handle.addWatch(dir, IN.CREATE | IN.CLOSE_WRITE | IN.DELETE | IN.DELETE_SELF);
      fs.writeFileSync(path.join(dir, 'a-longer-name.txt'), 'x');
      fs.unlinkSync(path.join(dir, 'a-longer-name.txt'));
      fs.rmdirSync(dir);
      await until('IN_IGNORED', () => records.some((r) => (r.mask & IN.IGNORED) !== 0));
      assert.deepEqual(
        records.map((r) => [r.wd, r.mask, r.name]),
        [
          [wd, IN.CREATE, 'a-longer-name.txt'],
          [wd, IN.CLOSE_WRITE, 'a-longer-name.txt'],
          [wd, IN.DELETE, 'a-longer-name.txt'],
          [wd, IN.DELETE_SELF, ''],
          [wd, IN.IGNORED, ''],
        ],
      );
    } finally {
      handle.close();
    }
  });

  test('armCall does not fire for a record that names an entry of a watched directory', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'armed-dir-'));
    const { handle, records } = open(native);
    let fired = 0;
    try {
      const wd = handle.addWatch(dir, IN.CREATE | IN.CLOSE_WRITE);
      const id = handle.armCall(wd, IN.CREATE | IN.CLOSE_WRITE, () => fired++);
      fs.writeFileSync(path.join(dir, 'entry'), 'x');
      await until('the records', () => records.length >= 2);
      assert.equal(fired, 0);
      assert.equal(handle.disarmCall(id), true, 'still armed');
    } finally {
      handle.close();
    }
  });

  test('paused, records wait in the kernel; resumed, they arrive in one batch', async () => {
    const file = path.join(work, 'paused');
    fs.writeFileSync(file, '');
    const { handle, records, batches } = open(native);
    try {
      handle.addWatch(file, IN.CLOSE_WRITE | IN.OPEN);
      handle.pause();
      for (let i = 0; i < 5; i++) fs.writeFileSync(file, String(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(records.length, 0);
      handle.resume();
      await until('records', () => records.length >= 10);
      assert.equal(batches.length, 1);
    } finally {
      handle.close();
    }
  });

  const canLower = (() => {
    try {
      fs.accessSync(MAX_QUEUED, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  test(
    'IN_Q_OVERFLOW when the queue is full (max_queued_events lowered, then restored)',
    { skip: canLower ? false : `cannot write ${MAX_QUEUED} (needs root in the initial user namespace)` },
    async () => {
      const saved = fs.readFileSync(MAX_QUEUED, 'utf8').trim();
      let handle: InotifyHandle | undefined;
      const records: InotifyRecord[] = [];
      let overflow = false;
      try {
        // The limit is taken when an instance is created.
        fs.writeFileSync(MAX_QUEUED, '8');
        handle = native.openInotify(
          (bytes) => {
            const parsed = parseInotifyRecords(bytes);
            records.push(...parsed.records);
            overflow ||= parsed.overflow;
          },
          (error) => {
            throw error;
          },
        );
      } finally {
        fs.writeFileSync(MAX_QUEUED, saved);
      }
      try {
        const dir = fs.mkdtempSync(path.join(work, 'flood-'));
        handle.addWatch(dir, IN.CREATE);
        for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
        await until('overflow', () => overflow);
        const last = records[records.length - 1];
        assert.deepEqual(last, { wd: -1, mask: IN.Q_OVERFLOW, cookie: 0, name: '' });
        assert.equal(records.filter((r) => r.mask === IN.CREATE).length, 8);
        assert.equal(fs.readFileSync(MAX_QUEUED, 'utf8').trim(), saved);
      } finally {
        handle.close();
      }
    },
  );

  test('a throwing onBatch becomes an uncaught exception and the handle keeps working', async () => {
    const file = path.join(work, 'throwing');
    fs.writeFileSync(file, '');
    let calls = 0;
    const uncaught: unknown[] = [];
    const listener = (err: unknown): void => {
      uncaught.push(err);
    };
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', listener);
    const handle = native.openInotify(
      () => {
        calls++;
        throw new Error('boom');
      },
      () => {},
    );
    try {
      handle.addWatch(file, IN.CLOSE_WRITE);
      fs.writeFileSync(file, '1');
      await until('first batch', () => calls === 1);
      fs.writeFileSync(file, '2');
      await until('second batch', () => calls === 2);
      assert.equal(uncaught.length, 2);
    } finally {
      handle.close();
      process.removeListener('uncaughtException', listener);
      for (const l of saved) process.on('uncaughtException', l);
    }
  });

  test('close() inside onBatch is safe', async () => {
    const file = path.join(work, 'close-inside');
    fs.writeFileSync(file, '');
    let calls = 0;
    const handle: InotifyHandle = native.openInotify(
      () => {
        calls++;
        handle.close();
      },
      () => {},
    );
    handle.addWatch(file, IN.CLOSE_WRITE);
    fs.writeFileSync(file, '1');
    await until('batch', () => calls === 1);
    fs.writeFileSync(file, '2');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(calls, 1);
    assert.equal(handle.closed, true);
  });

  test('the constructor cannot be called from JavaScript', () => {
    const { handle } = open(native);
    try {
      const ctor = handle.constructor as new (...a: unknown[]) => unknown;
      assert.throws(
        () =>
          new ctor(
            () => {},
            () => {},
          ),
        { code: 'ERR_ILLEGAL_CONSTRUCTOR' },
      );
    } finally {
      handle.close();
    }
  });

  test('rereadPartitionTable on something that is not a block device fails with a system error', () => {
    const file = path.join(work, 'not-a-disk');
    fs.writeFileSync(file, '');
    assert.throws(
      () => native.rereadPartitionTable(file),
      (err: NodeJS.ErrnoException) => {
        return typeof err.code === 'string' && err.syscall === 'ioctl' && err.path === file;
      },
    );
    assert.throws(() => native.rereadPartitionTable(path.join(work, 'missing')), {
      code: 'ENOENT',
      syscall: 'open',
    });
  });

  test('a worker that ends with a watched handle open exits cleanly', async () => {
    const code = `
      const { loadInotifyNative, IN } = require(${JSON.stringify(INOTIFY_MODULE)});
      const h = loadInotifyNative().openInotify(() => {}, () => {});
      h.addWatch(${JSON.stringify(work)}, IN.CREATE);
      require('node:worker_threads').parentPort.postMessage('ready');
    `;
    const worker = new Worker(code, { eval: true });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    // The open handle keeps the worker alive; terminate must close it and not crash.
    const exitCode = await worker.terminate();
    assert.equal(exitCode, 1);
  });
});

describe('armCall with a prepared launch (the spawn addon)', () => {
  const inotify = loadInotifyNative();
  const spawn = loadNativeSpawn();
  const SIGKILL = 9;
  /** Every exit the spawn addon reported, by pid (its watcher reaps every child of the process). */
  const exits = new Map<number, ChildExit>();
  let watcher: ChildWatcher | undefined;
  let dir: string;

  before(() => {
    watcher = spawn.watchChildren((batch) => {
      for (const exit of batch) exits.set(exit.pid, exit);
    });
    dir = fs.mkdtempSync(path.join(work, 'prepared-'));
  });

  after(() => {
    watcher?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function exitOf(pid: number): Promise<ChildExit> {
    await until(`the exit of pid ${pid}`, () => exits.has(pid));
    return exits.get(pid) as ChildExit;
  }

  /** Kill `pid` when the test ends, unless its exit was reported. */
  function killLater(t: TestContext, pid: number): void {
    t.after(() => {
      if (exits.has(pid)) return;
      try {
        spawn.kill(pid, SIGKILL);
      } catch {
        // gone
      }
    });
  }

  /** A file under a close-write watch; the handle closed when the test ends. */
  function watched(
    t: TestContext,
    name: string,
  ): { file: string; handle: InotifyHandle; wd: number; batches: () => number } {
    const file = path.join(dir, name);
    fs.writeFileSync(file, '');
    let batches = 0;
    const handle = inotify.openInotify(
      () => batches++,
      (error) => {
        throw error;
      },
    );
    t.after(() => handle.close());
    const wd = handle.addWatch(file, IN.CLOSE_WRITE);
    return { file, handle, wd, batches: () => batches };
  }

  /** A prepared launch of `argv`, released when the test ends. */
  function prepared(t: TestContext, argv: string[], env: string[] = []): PreparedLaunch {
    const launch = spawn.prepare(basicPlan(argv, { env: [PATH_ENV, ...env] }));
    t.after(() => launch.release());
    return launch;
  }

  /** The pid a child wrote to `file` (`echo $$ > file`), once it is all there. */
  function writtenPid(file: string): number | undefined {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return /^\d+\n$/.test(text) ? Number(text) : undefined;
  }

  test('the child is cloned before fn runs, and fn takes it with launch()', async (t) => {
    const { file, handle, wd } = watched(t, 'fire');
    const out = path.join(dir, 'fire.out');
    const launch = prepared(t, ['/bin/sh', '-c', 'echo $$ > "$OUT"'], [`OUT=${out}`]);
    let inFn: { launched: boolean; child?: SpawnedChild; error?: unknown } | undefined;
    const id = handle.armCall(
      wd,
      IN.CLOSE_WRITE,
      () => {
        inFn = { launched: launch.launched };
        try {
          inFn.child = launch.launch();
          killLater(t, inFn.child.pid);
        } catch (error) {
          inFn.error = error;
        }
      },
      launch,
    );
    assert.equal(launch.launched, false, 'armed, not cloned yet');
    fs.writeFileSync(file, 'x');
    await until('the armed call', () => inFn !== undefined);
    assert.equal(inFn?.error, undefined);
    assert.equal(inFn?.launched, true, 'cloned before fn was called');
    const child = inFn?.child as SpawnedChild;
    assert.ok(child.pid > 0 && child.pidfd >= 0, JSON.stringify(child));
    assert.deepEqual(await exitOf(child.pid), { pid: child.pid, code: 'exited', status: 0, ownChild: true });
    assert.equal(writtenPid(out), child.pid, 'the child ran');
    assert.equal(handle.disarmCall(id), false, 'it fired');
    assert.throws(() => launch.launch(), { name: 'TypeError', code: 'ERR_INVALID_STATE' });
  });

  test('a disarmed arm never launches its prepared', async (t) => {
    const { file, handle, wd, batches } = watched(t, 'disarmed');
    const launch = prepared(t, ['/bin/true']);
    const known = exits.size;
    let fired = 0;
    const id = handle.armCall(wd, IN.CLOSE_WRITE, () => fired++, launch);
    assert.equal(handle.disarmCall(id), true);
    fs.writeFileSync(file, 'x');
    await until('the batch', () => batches() > 0);
    assert.equal(fired, 0);
    assert.equal(launch.launched, false);
    // The caller's to release; a /bin/true cloned would have been reported by now.
    launch.release();
    assert.equal(launch.launched, false);
    assert.throws(() => launch.launch(), { code: 'ERR_INVALID_STATE' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(exits.size, known, 'nothing exited');
  });

  test('a child cloned for an arm and released without launch() is killed with SIGKILL', async (t) => {
    const { file, handle, wd } = watched(t, 'untaken');
    const out = path.join(dir, 'untaken.out');
    const launch = prepared(t, ['/bin/sh', '-c', 'echo $$ > "$OUT"; exec sleep 30'], [`OUT=${out}`]);
    let launchedInFn: boolean | undefined;
    handle.armCall(wd, IN.CLOSE_WRITE, () => (launchedInFn = launch.launched), launch);
    fs.writeFileSync(file, 'x');
    await until('the armed call', () => launchedInFn !== undefined);
    assert.equal(launchedInFn, true);
    await until('the child to write its pid', () => writtenPid(out) !== undefined);
    const pid = writtenPid(out) as number;
    killLater(t, pid);
    assert.equal(exits.has(pid), false, 'it runs until released');
    launch.release();
    assert.deepEqual(await exitOf(pid), { pid, code: 'killed', status: SIGKILL, ownChild: true });
    launch.release();
    assert.throws(() => launch.launch(), { code: 'ERR_INVALID_STATE' });
  });

  test('a prepared released before its arm fires: fn is called, nothing is cloned', async (t) => {
    const { file, handle, wd } = watched(t, 'released-first');
    const launch = prepared(t, ['/bin/true']);
    const known = exits.size;
    let launchedInFn: boolean | undefined;
    handle.armCall(wd, IN.CLOSE_WRITE, () => (launchedInFn = launch.launched), launch);
    launch.release();
    fs.writeFileSync(file, 'x');
    await until('the armed call', () => launchedInFn !== undefined);
    assert.equal(launchedInFn, false);
    assert.throws(() => launch.launch(), { code: 'ERR_INVALID_STATE' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(exits.size, known, 'nothing exited');
  });

  test('a PreparedLaunch made by hand is taken by armCall and clones nothing', async (t) => {
    const { file, handle, wd } = watched(t, 'by-hand');
    const model = prepared(t, ['/bin/true']);
    const Ctor = model.constructor as new () => PreparedLaunch;
    const empty = new Ctor();
    let launchedInFn: boolean | undefined;
    handle.armCall(wd, IN.CLOSE_WRITE, () => (launchedInFn = empty.launched), empty);
    fs.writeFileSync(file, 'x');
    await until('the armed call', () => launchedInFn !== undefined);
    assert.equal(launchedInFn, false);
    assert.throws(() => empty.launch(), { code: 'ERR_INVALID_STATE' });
    empty.release();
    assert.equal(model.launched, false);
  });

  test("release() after the untaken child's exit was reported signals no other process", async (t) => {
    // The untaken child's pidfd belongs to the addon, which closes it when it reports the exit;
    // a later release() must not signal whatever has that fd number by then.
    const isPidfd = (fd: string): boolean => {
      try {
        return /pidfd/.test(fs.readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false;
      }
    };
    const pidfds = (): number[] => fs.readdirSync('/proc/self/fd').filter(isPidfd).map(Number);
    const { file, handle, wd } = watched(t, 'stale');
    const launch = prepared(t, ['/bin/true']);
    const known = new Set(exits.keys());
    const pidfdsBefore = pidfds();
    let untakenPidfds: number[] | undefined;
    handle.armCall(
      wd,
      IN.CLOSE_WRITE,
      () => (untakenPidfds = pidfds().filter((fd) => !pidfdsBefore.includes(fd))),
      launch,
    );
    fs.writeFileSync(file, 'x');
    await until('the armed call', () => untakenPidfds !== undefined);
    assert.equal(untakenPidfds?.length, 1, 'the clone made one pidfd');
    await until('the untaken child to exit', () => [...exits.keys()].some((pid) => !known.has(pid)));
    // Another child; its pidfd takes the lowest free number, the one closed with that exit.
    const other = spawn.spawn(basicPlan(['/bin/sleep', '30']));
    killLater(t, other.pid);
    assert.equal(other.pidfd, untakenPidfds?.[0], 'precondition: the fd number was reused');
    launch.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(exits.get(other.pid), undefined, 'the other child was not signalled');
    spawn.kill(other.pid, SIGKILL);
    await exitOf(other.pid);
  });
});
