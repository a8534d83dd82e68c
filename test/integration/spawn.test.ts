// The spawn addon against the real kernel: exits and signals, pre-exec failures with their step,
// credentials, the fd map, the environment, a subreaper catching a double-forking daemon's
// orphan, cgroups (CLONE_INTO_CGROUP, cgroup.kill), the sandbox (ProtectSystem=strict,
// PrivateTmp=, PrivateNetwork=, NoNewPrivileges=, capabilities), abuse and fd leaks. Plus one
// contract suite run against both the fake (test/helpers/fake-spawn) and the real addon.
//
// This file never uses node:child_process while a watcher runs (the watcher reaps every child of
// the process). Every test kills what it started by pid and removes what it made, pass or fail.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { firstValueFrom, toArray } from 'rxjs';
import type { ExecCommand, ExecContext } from '../../src/units/config-types';
import type { ExecPlan } from '../../src/exec/exec-plan';
import { buildExecPlan, type ExecPlanOptions } from '../../src/exec/exec-context-plan';
import { openCgroupTree, type CgroupTree } from '../../src/exec/cgroups';
import { childExitEvents } from '../../src/exec/child-exit-events';
import { outputLines } from '../../src/exec/output-lines';
import { removeUnitRuntime } from '../../src/exec/sandbox-mounts';
import {
  loadNativeSpawn,
  type ChildExit,
  type ChildWatcher,
  type NativeSpawn,
  type SpawnError,
  type SpawnedChild,
} from '../../src/native/spawn-addon';
import { FakeNativeSpawn, fakeSpawnError } from '../helpers/fake-spawn';
import { execContext } from '../helpers/unit-fixtures';
import { basicPlan, cgroupHierarchy, needsCgroup, needsRoot, PATH_ENV } from '../helpers/spawn-plan';

const SIGKILL = 9;
const SIGTERM = 15;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What an fd of ours is open on (/proc/self/fd), or undefined when it is not open. */
function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function isSpawnError(step: string, code: string, message?: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Error, 'an Error');
    const e = err as SpawnError;
    assert.equal(e.step, step);
    assert.equal(e.code, code);
    assert.ok(typeof e.errno === 'number' && e.errno < 0, `errno ${String(e.errno)}`);
    assert.equal(typeof e.syscall, 'string');
    if (message !== undefined) assert.equal(e.message, message);
    return true;
  };
}

function isInvalidState(err: unknown): boolean {
  assert.ok(err instanceof TypeError, `a TypeError: ${String(err)}`);
  assert.equal((err as { code?: unknown }).code, 'ERR_INVALID_STATE');
  return true;
}

function isSystemError(code: string, syscall: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Error);
    const e = err as SpawnError;
    assert.equal(e.code, code);
    assert.equal(e.syscall, syscall);
    assert.ok(e.errno < 0);
    return true;
  };
}

/** Reads a pipe's read end to EOF through Node (net.Socket takes the fd and closes it). */
function readAll(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

/** Plans every implementation refuses with a TypeError before it clones. */
function malformedPlans(): unknown[] {
  return [
    null,
    'plan',
    { ...basicPlan(['/bin/true']), path: 42 },
    { ...basicPlan(['/bin/true']), argv: [] },
    { ...basicPlan(['/bin/true']), env: ['NOEQUALS'] },
    { ...basicPlan(['/bin/true']), fds: [{ childFd: 0, parentFd: -1 }] },
    {
      ...basicPlan(['/bin/true']),
      fds: [
        { childFd: 0, parentFd: -1 },
        { childFd: 1, parentFd: -1 },
        { childFd: 2, parentFd: -1 },
        { childFd: 1, parentFd: 2 },
      ],
    },
  ];
}

// --- one contract, two implementations -------------------------------------------------------

const implementations: { name: string; make: () => NativeSpawn }[] = [
  { name: 'fake', make: () => new FakeNativeSpawn() },
  { name: 'real addon', make: loadNativeSpawn },
];

for (const implementation of implementations) {
  describe(`spawn contract: ${implementation.name}`, () => {
    /** Spawns, watches and ends one child the way each implementation can (the fake is told to). */
    async function runToExit(
      native: NativeSpawn,
      t: TestContext,
      argv: string[],
      end: (child: SpawnedChild) => void,
    ): Promise<{ pid: number; batches: ChildExit[][]; sync: boolean }> {
      const batches: ChildExit[][] = [];
      let inSpawn = true;
      let sync = false;
      let resolveExit: () => void = () => undefined;
      const exited = new Promise<void>((resolve) => (resolveExit = resolve));
      const watcher = native.watchChildren((batch) => {
        if (inSpawn) sync = true;
        batches.push(batch);
        resolveExit();
      });
      t.after(() => watcher.close());
      const child = native.spawn(basicPlan(argv));
      inSpawn = false;
      t.after(() => {
        try {
          native.kill(child.pid, SIGKILL);
        } catch {
          // already reaped
        }
      });
      end(child);
      await exited;
      return { pid: child.pid, batches, sync };
    }

    it('exposes the exec steps in EXEC_STEPS order', () => {
      const native = implementation.make();
      assert.equal(native.execSteps[0], 'CGROUP');
      assert.equal(native.execSteps.at(-1), 'EXEC');
      assert.equal(native.execSteps.length, 18);
    });

    it('reports an own child exit in a later batch, with its pidfd closed afterwards', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      let pidfd = -1;
      const { pid, batches, sync } = await runToExit(native, t, ['/bin/sh', '-c', 'exit 3'], (child) => {
        pidfd = child.pidfd;
        fake?.exit(child.pid, 'exited', 3);
      });
      assert.equal(sync, false, 'never inside spawn()');
      const exit = batches.flat().find((e) => e.pid === pid);
      assert.deepEqual(exit, { pid, code: 'exited', status: 3, ownChild: true });
      assert.throws(() => native.kill(pid, 0), isSystemError('ESRCH', 'kill'));
      // The pidfd went with the exit (the real one may already be reused, so only the fake can tell).
      if (fake !== undefined) assert.equal(fake.openFds.has(pidfd), false);
      else assert.ok(pidfd >= 0);
    });

    it('a signal through the pidfd kills the child', async (t) => {
      const native = implementation.make();
      const { pid, batches } = await runToExit(native, t, ['/bin/sleep', '30'], (child) =>
        native.pidfdSendSignal(child.pidfd, SIGTERM),
      );
      assert.deepEqual(
        batches.flat().find((e) => e.pid === pid),
        { pid, code: 'killed', status: SIGTERM, ownChild: true },
      );
    });

    it('allows one watcher per process', (t) => {
      const native = implementation.make();
      const first = native.watchChildren(() => undefined);
      t.after(() => first.close());
      assert.throws(() => native.watchChildren(() => undefined), { code: 'ERR_WATCHER_ACTIVE' });
      first.close();
      const second = native.watchChildren(() => undefined);
      second.close();
    });

    it('rejects malformed plans and arguments with TypeErrors', () => {
      const native = implementation.make();
      const bad = malformedPlans();
      for (const plan of bad)
        assert.throws(() => native.spawn(plan as ExecPlan), TypeError, JSON.stringify(plan));
      assert.throws(() => native.kill(1.5, 0), TypeError);
      assert.throws(() => native.kill(0, 0), TypeError);
      assert.throws(() => native.kill(-1, 9), TypeError);
      assert.throws(() => native.pidfdSendSignal(3, 65), TypeError);
      assert.throws(() => native.closeFd(-1), TypeError);
      assert.throws(() => native.setSubreaper('yes' as unknown as boolean), TypeError);
      assert.throws(() => native.watchChildren('x' as unknown as () => void), TypeError);
    });

    it('spawnAsync: TypeErrors at once; the child or the error on a later turn, its exit after that', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      assert.throws(() => native.spawnAsync(null as unknown as ExecPlan, () => undefined), TypeError);
      assert.throws(
        () => native.spawnAsync(basicPlan(['/bin/true']), 'done' as unknown as () => void),
        TypeError,
      );
      const { exits, exited } = watchExits(native, t);
      let inCall = true;
      const child = await new Promise<SpawnedChild>((resolve, reject) => {
        native.spawnAsync(basicPlan(['/bin/sh', '-c', 'exit 4']), (err, c) => {
          if (inCall) reject(new Error('done called inside spawnAsync()'));
          else if (err !== null || c === undefined) reject(err ?? new Error('no child'));
          else {
            assert.equal(exits.length, 0, 'no exit before done');
            resolve(c);
          }
        });
        inCall = false;
      });
      fake?.exit(child.pid, 'exited', 4);
      await exited;
      assert.deepEqual(
        exits.find((e) => e.pid === child.pid),
        { pid: child.pid, code: 'exited', status: 4, ownChild: true },
      );
      if (fake !== undefined)
        fake.failNext = Object.assign(new Error('failed at step EXEC: x'), {
          step: 'EXEC' as const,
          code: 'ENOENT',
          errno: -2,
          syscall: 'execve',
        });
      const err = await new Promise<SpawnError | null>((resolve) =>
        native.spawnAsync(basicPlan(['/nonexistent/x']), (e) => resolve(e)),
      );
      assert.equal(err?.step, 'EXEC');
      assert.equal(err?.code, 'ENOENT');
    });

    it('closeFd: EBADF for an fd that is not open', () => {
      const native = implementation.make();
      const [r, w] = native.pipe();
      native.closeFd(r);
      native.closeFd(w);
      assert.throws(() => native.closeFd(r), isSystemError('EBADF', 'close'));
    });

    /** The watcher of a prepare() test: every exit, and a promise for the first one. */
    function watchExits(native: NativeSpawn, t: TestContext): { exits: ChildExit[]; exited: Promise<void> } {
      const exits: ChildExit[] = [];
      let resolveExit: () => void = () => undefined;
      const exited = new Promise<void>((resolve) => (resolveExit = resolve));
      const watcher = native.watchChildren((batch) => {
        exits.push(...batch);
        resolveExit();
      });
      t.after(() => watcher.close());
      return { exits, exited };
    }

    /** Kill `pid` when the test ends (an exit reported already makes this a no-op). */
    function killAfter(native: NativeSpawn, t: TestContext, pid: number): void {
      t.after(() => {
        try {
          native.kill(pid, SIGKILL);
        } catch {
          // already reaped
        }
      });
    }

    it('prepare: TypeErrors for the plans spawn refuses, at once', () => {
      const native = implementation.make();
      for (const plan of malformedPlans())
        assert.throws(() => native.prepare(plan as ExecPlan), TypeError, JSON.stringify(plan));
    });

    it('prepare: launch() runs the child once, and its exit is reported as an own child', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits, exited } = watchExits(native, t);
      const prepared = native.prepare(basicPlan(['/bin/sh', '-c', 'exit 3']));
      t.after(() => prepared.release());
      assert.equal(prepared.launched, false);
      assert.equal(fake?.children.length ?? 0, 0, 'prepare() clones nothing');
      const child = prepared.launch({ yieldAfter: true });
      killAfter(native, t, child.pid);
      assert.equal(prepared.launched, true);
      assert.ok(child.pid > 0 && child.pidfd >= 0, JSON.stringify(child));
      assert.throws(() => prepared.launch(), isInvalidState);
      fake?.exit(child.pid, 'exited', 3);
      await exited;
      assert.deepEqual(exits, [{ pid: child.pid, code: 'exited', status: 3, ownChild: true }]);
      // Taken: release() has nothing left to free, and it is still once only.
      prepared.release();
      prepared.release();
      assert.equal(prepared.launched, true);
      assert.throws(() => prepared.launch(), isInvalidState);
    });

    it('prepare: release() after launch() leaves the child alone', async (t) => {
      const native = implementation.make();
      const { exits, exited } = watchExits(native, t);
      const prepared = native.prepare(basicPlan(['/bin/sleep', '30']));
      const child = prepared.launch();
      killAfter(native, t, child.pid);
      prepared.release();
      await delay(20);
      native.kill(child.pid, 0);
      assert.deepEqual(exits, [], 'still running');
      native.pidfdSendSignal(child.pidfd, SIGTERM);
      await exited;
      assert.deepEqual(exits, [{ pid: child.pid, code: 'killed', status: SIGTERM, ownChild: true }]);
    });

    it('prepare: release() before launch() clones nothing; launch() after it is ERR_INVALID_STATE', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits } = watchExits(native, t);
      const prepared = native.prepare(basicPlan(['/bin/true']));
      prepared.release();
      assert.equal(prepared.launched, false);
      assert.throws(() => prepared.launch(), isInvalidState);
      assert.throws(() => prepared.launch({ yieldAfter: true }), isInvalidState);
      prepared.release();
      assert.equal(prepared.launched, false);
      if (fake !== undefined) assert.equal(fake.children.length, 0);
      // A /bin/true cloned would have exited and been reported by now.
      await delay(50);
      assert.deepEqual(exits, []);
    });

    it('prepare with park: the child is cloned at once and parked; launch() lets it exec the plan (same pid)', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits, exited } = watchExits(native, t);
      const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-park-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const out = path.join(dir, 'out');
      const prepared = native.prepare(
        basicPlan(['/bin/sh', '-c', `echo "$0 $1 $$" > ${out}; exit 3`, 'zero', 'one']),
        { park: true },
      );
      t.after(() => prepared.release());
      const pid = prepared.parkedPid;
      assert.ok(pid > 0, `parked pid ${pid}`);
      killAfter(native, t, pid);
      assert.equal(prepared.launched, false);
      if (fake === undefined) {
        // Parked: alive, set up (its own session), and nothing of the plan's program ran yet.
        await delay(50);
        assert.equal(readFileSync(`/proc/${pid}/comm`, 'latin1'), 'triggerd-park\n');
        assert.equal(path.basename(readlinkSync(`/proc/${pid}/exe`)), path.basename(process.execPath));
        assert.equal(
          readFileSync(`/proc/${pid}/stat`, 'latin1').split(' ')[5],
          String(pid),
          'its own session',
        );
        assert.equal(existsSync(out), false);
        assert.deepEqual(exits, []);
      }
      const child = prepared.launch({ yieldAfter: true });
      assert.equal(child.pid, pid, 'the parked child is the one launched');
      assert.equal(prepared.launched, true);
      assert.throws(() => prepared.launch(), isInvalidState);
      fake?.exit(child.pid, 'exited', 3);
      await exited;
      assert.deepEqual(exits, [{ pid, code: 'exited', status: 3, ownChild: true }]);
      if (fake === undefined)
        assert.equal(readFileSync(out, 'latin1'), `zero one ${pid}\n`, 'argv0, args, pid');
    });

    it('prepare with park: release() before launch() kills the parked child', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits, exited } = watchExits(native, t);
      const prepared = native.prepare(basicPlan(['/bin/true']), { park: true });
      const pid = prepared.parkedPid;
      killAfter(native, t, pid);
      prepared.release();
      prepared.release();
      assert.throws(() => prepared.launch(), isInvalidState);
      if (fake !== undefined) assert.deepEqual(fake.children.at(-1)?.signals, [SIGKILL]);
      await exited;
      assert.deepEqual(exits, [{ pid, code: 'killed', status: SIGKILL, ownChild: true }]);
    });

    it('prepare with park: a pre-exec failure is thrown by prepare(), with nothing left running', async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits } = watchExits(native, t);
      if (fake !== undefined)
        fake.failNext = fakeSpawnError('CHDIR', 'ENOENT', 'No such file or directory', 'chdir');
      assert.throws(
        () => native.prepare(basicPlan(['/bin/true'], { cwd: '/nonexistent/dir' }), { park: true }),
        isSpawnError('CHDIR', 'ENOENT', 'failed at step CHDIR: No such file or directory'),
      );
      assert.throws(
        () => native.prepare(basicPlan(['/bin/true']), { park: 'yes' } as unknown as { park: boolean }),
        TypeError,
      );
      await delay(50);
      assert.deepEqual(exits, []);
    });

    if (implementation.name === 'real addon') {
      it('prepare with park: an exec that fails after the go byte is exit status 203, as under systemd', async (t) => {
        const native = implementation.make();
        const { exits, exited } = watchExits(native, t);
        const prepared = native.prepare(basicPlan(['/nonexistent/binary']), { park: true });
        killAfter(native, t, prepared.parkedPid);
        const child = prepared.launch();
        await exited;
        assert.deepEqual(exits, [{ pid: child.pid, code: 'exited', status: 203, ownChild: true }]);
      });

      it('prepare with park: a parked child killed before its go byte fails launch() (ESRCH: its state word says it is gone, no byte is written)', async (t) => {
        const native = implementation.make();
        const { exits, exited } = watchExits(native, t);
        const prepared = native.prepare(basicPlan(['/bin/true']), { park: true });
        t.after(() => prepared.release());
        const pid = prepared.parkedPid;
        killAfter(native, t, pid);
        native.kill(pid, SIGKILL);
        await exited;
        assert.deepEqual(exits, [{ pid, code: 'killed', status: SIGKILL, ownChild: true }]);
        assert.throws(
          () => prepared.launch(),
          (err: NodeJS.ErrnoException) => err.code === 'ESRCH',
        );
      });
    }

    it("prepare: a failing exec is launch()'s SpawnError (step EXEC), and no exit is reported for it", async (t) => {
      const native = implementation.make();
      const fake = native instanceof FakeNativeSpawn ? native : undefined;
      const { exits } = watchExits(native, t);
      const prepared = native.prepare(basicPlan(['/nonexistent/binary']));
      t.after(() => prepared.release());
      if (fake !== undefined)
        fake.failNext = fakeSpawnError('EXEC', 'ENOENT', 'No such file or directory', 'execve');
      assert.throws(
        () => prepared.launch(),
        isSpawnError('EXEC', 'ENOENT', 'failed at step EXEC: No such file or directory'),
      );
      // Once only, even when it failed.
      assert.throws(() => prepared.launch(), isInvalidState);
      prepared.release();
      await delay(50);
      assert.deepEqual(exits, []);
    });
  });
}

// --- lifetime: a worker's environment going away ----------------------------------------------

describe('spawn: worker lifetime', () => {
  it('a terminated worker closes its watcher; its child is left to the process', async (t) => {
    const addonModule = path.resolve(__dirname, '..', '..', 'src', 'native', 'spawn-addon.js');
    const source = `
      const { parentPort } = require('node:worker_threads');
      const native = require(${JSON.stringify(addonModule)}).loadNativeSpawn();
      native.watchChildren(() => {});
      const fds = [0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 }));
      const child = native.spawn({ path: '/bin/sleep', argv: ['sleep', '30'], env: [], rlimits: [], fds,
        newSession: true, noNewPrivileges: false, privateNetwork: false, mounts: [] });
      parentPort.postMessage(child.pid);
      setInterval(() => {}, 1000);
    `;
    const worker = new Worker(source, { eval: true });
    const pid = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: number) => resolve(m));
      worker.once('error', reject);
    });
    const native = loadNativeSpawn();
    t.after(() => {
      try {
        native.kill(pid, SIGKILL);
      } catch {
        // reaped below
      }
    });
    assert.equal(await worker.terminate(), 1);
    // The worker's watcher is gone (the process-wide slot is free again) and its thread's child
    // now belongs to another thread of the process: this environment reaps it, not as its own.
    const exits: ChildExit[] = [];
    let resolveExit: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (resolveExit = resolve));
    const watcher = native.watchChildren((batch) => {
      exits.push(...batch);
      if (batch.some((e) => e.pid === pid)) resolveExit();
    });
    t.after(() => watcher.close());
    native.kill(pid, SIGKILL);
    await exited;
    assert.deepEqual(
      exits.find((e) => e.pid === pid),
      { pid, code: 'killed', status: SIGKILL, ownChild: false },
    );
  });
});

// --- the real kernel -------------------------------------------------------------------------

describe('spawn: real kernel', () => {
  const native = loadNativeSpawn();
  /** Exits by pid, including those nobody waited for yet. */
  const exits = new Map<number, ChildExit>();
  const waiters = new Map<number, (exit: ChildExit) => void>();
  let watcher: ChildWatcher;
  let runtimeRoot: string;
  /** Called with each batch before it is routed (a test's look inside onExits). */
  let onBatch: ((batch: ChildExit[]) => void) | undefined;

  before(() => {
    watcher = native.watchChildren((batch) => {
      onBatch?.(batch);
      for (const exit of batch) {
        exits.set(exit.pid, exit);
        waiters.get(exit.pid)?.(exit);
        waiters.delete(exit.pid);
      }
    });
    // Sandboxed runs need their runtime dir outside /tmp (PrivateTmp= covers /tmp).
    const base = needsRoot === false && existsSync('/run') ? '/run' : tmpdir();
    runtimeRoot = mkdtempSync(path.join(base, 'triggerd-spawn-test-'));
  });

  after(() => {
    watcher.close();
    rmSync(runtimeRoot, { recursive: true, force: true });
  });

  function waitExit(pid: number, timeoutMs = 10_000): Promise<ChildExit> {
    const known = exits.get(pid);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`pid ${pid} did not exit in ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.set(pid, (exit) => {
        clearTimeout(timer);
        resolve(exit);
      });
    });
  }

  /** Kill `pid` when the test ends unless it has been reaped. */
  function killLater(t: TestContext, pid: number): void {
    t.after(() => {
      if (exits.has(pid)) return;
      try {
        native.kill(pid, SIGKILL);
      } catch {
        // gone
      }
    });
  }

  interface Run {
    pid: number;
    exit: Promise<ChildExit>;
    stdout: Promise<string>;
  }

  /** Spawns with stdout (and stderr, unless `stderr` says otherwise) into a pipe read in TS. */
  function run(t: TestContext, plan: ExecPlan, stderr: 'pipe' | 'null' = 'pipe'): Run {
    const [readFd, writeFd] = native.pipe();
    const fds = [
      { childFd: 0, parentFd: -1 },
      { childFd: 1, parentFd: writeFd },
      { childFd: 2, parentFd: stderr === 'pipe' ? writeFd : -1 },
      ...plan.fds.filter((f) => f.childFd > 2),
    ];
    let pid: number;
    try {
      pid = native.spawn({ ...plan, fds }).pid;
    } finally {
      native.closeFd(writeFd);
    }
    killLater(t, pid);
    const stdout = readAll(readFd);
    return { pid, exit: waitExit(pid), stdout };
  }

  /** systemd's defaults (the loader's), with output inherited so a test sees it. */
  function context(overrides: Partial<ExecContext> = {}): ExecContext {
    return execContext({
      standardOutput: { kind: 'inherit' },
      standardError: { kind: 'inherit' },
      ...overrides,
    });
  }

  /** A plan from unit-file settings, as the unit engine will build it; its private dirs go with the test. */
  function planFor(
    t: TestContext,
    ctx: Partial<ExecContext>,
    argv: string[],
    unitName: string,
    opts: Partial<ExecPlanOptions> = {},
  ): ExecPlan {
    const cmd: ExecCommand = {
      path: argv[0],
      argv,
      ignoreFailure: false,
      noEnvExpand: false,
      fullPrivileges: false,
      noSetuidDrop: false,
      ambientFallback: false,
      source: { file: unitName, line: 1 },
    };
    t.after(() => removeUnitRuntime(runtimeRoot, unitName));
    return buildExecPlan(
      context(ctx),
      cmd,
      { base: { PATH: PATH_ENV.slice(5) }, pass: {} },
      {
        unitName,
        runtimeDir: runtimeRoot,
        stdio: { stdin: -1, stdout: -1, stderr: -1 },
        ...opts,
      },
    ).plan;
  }

  describe('exits and signals', () => {
    it('/bin/true exits 0', async (t) => {
      const { pid, exit } = run(t, basicPlan(['/bin/true']));
      assert.deepEqual(await exit, { pid, code: 'exited', status: 0, ownChild: true });
    });

    it('reports exit codes', async (t) => {
      for (const code of [1, 7, 255]) {
        const { exit } = run(t, basicPlan(['/bin/sh', '-c', `exit ${code}`]));
        assert.equal((await exit).status, code);
      }
    });

    it('reports death by signal: its own, kill(), pidfdSendSignal()', async (t) => {
      const self = run(t, basicPlan(['/bin/sh', '-c', 'kill -TERM $$']));
      assert.deepEqual(await self.exit, { pid: self.pid, code: 'killed', status: SIGTERM, ownChild: true });

      const killed = run(t, basicPlan(['/bin/sleep', '30']));
      native.kill(killed.pid, SIGKILL);
      assert.equal((await killed.exit).code, 'killed');
      assert.equal((await killed.exit).status, SIGKILL);

      const plan = basicPlan(['/bin/sleep', '30']);
      const child = native.spawn(plan);
      killLater(t, child.pid);
      native.pidfdSendSignal(child.pidfd, SIGTERM);
      assert.deepEqual(await waitExit(child.pid), {
        pid: child.pid,
        code: 'killed',
        status: SIGTERM,
        ownChild: true,
      });
      // Reaped and reported: the pid is gone.
      assert.throws(() => native.kill(child.pid, 0), isSystemError('ESRCH', 'kill'));
    });

    it("keeps a batch's pidfds open until onExits returns: a spawn inside it never gets their numbers", async (t) => {
      // Two children that exit while the event loop is busy, so that one wake-up reaps both, and
      // a spawn while that batch is handled: had the reaped children's pidfds been closed before
      // onExits, the new child would get one of their numbers (the lowest free fd), and a signal
      // meant for the second exit (not handled yet) would reach it.
      const a = native.spawn(basicPlan(['/bin/true']));
      const b = native.spawn(basicPlan(['/bin/true']));
      killLater(t, a.pid);
      killLater(t, b.pid);
      let seen: { spawned: SpawnedChild; signalB: unknown } | undefined;
      onBatch = (batch) => {
        if (seen !== undefined || !batch.some((e) => e.pid === a.pid) || !batch.some((e) => e.pid === b.pid))
          return;
        const spawned = native.spawn(basicPlan(['/bin/sleep', '30']));
        killLater(t, spawned.pid);
        let signalB: unknown;
        try {
          native.pidfdSendSignal(b.pidfd, 0);
        } catch (err) {
          signalB = err;
        }
        seen = { spawned, signalB };
      };
      t.after(() => (onBatch = undefined));
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // Busy: both exit before the watcher's next wake-up.
      }
      await Promise.all([waitExit(a.pid), waitExit(b.pid)]);
      assert.ok(seen !== undefined, 'both exits came in one batch');
      assert.notEqual(seen.spawned.pidfd, a.pidfd);
      assert.notEqual(seen.spawned.pidfd, b.pidfd);
      assert.ok(
        isSystemError('ESRCH', 'pidfd_send_signal')(seen.signalB),
        'the reaped process, not another fd',
      );
      native.pidfdSendSignal(seen.spawned.pidfd, SIGKILL);
      assert.equal((await waitExit(seen.spawned.pid)).status, SIGKILL);
    });

    it("closeFd of a batch child's pidfd inside onExits closes it once: a new fd under that number survives", async (t) => {
      const a = native.spawn(basicPlan(['/bin/true']));
      const b = native.spawn(basicPlan(['/bin/true']));
      killLater(t, a.pid);
      killLater(t, b.pid);
      const opened: number[] = [];
      t.after(() => opened.forEach((fd) => closeSync(fd)));
      let reused: number | undefined;
      let afterBatch: string | undefined;
      onBatch = (batch) => {
        if (
          reused !== undefined ||
          !batch.some((e) => e.pid === a.pid) ||
          !batch.some((e) => e.pid === b.pid)
        )
          return;
        native.closeFd(a.pidfd); // given back early: the watcher must not close the number again
        // Open files until one gets the number just given back (the lowest free fd, or close).
        for (let i = 0; i < 64 && reused === undefined; i++) {
          const fd = openSync('/dev/null', 'r');
          opened.push(fd);
          if (fd === a.pidfd) reused = fd;
        }
        const fd = reused;
        // Right after onExits has returned: is that number still our /dev/null?
        if (fd !== undefined) setImmediate(() => (afterBatch = fdTarget(fd)));
      };
      t.after(() => (onBatch = undefined));
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // Busy: both exit before the watcher's next wake-up.
      }
      await Promise.all([waitExit(a.pid), waitExit(b.pid)]);
      await delay(20);
      assert.ok(reused !== undefined, "both exits came in one batch, and a file got the first one's number");
      assert.equal(afterBatch, '/dev/null', 'not closed a second time after onExits');
    });

    it('reports a core dump as dumped', async (t) => {
      const { exit } = run(
        t,
        basicPlan(['/bin/sh', '-c', 'ulimit -c unlimited 2>/dev/null; kill -QUIT $$'], {
          cwd: runtimeRoot,
          rlimits: [{ resource: 4, soft: -1, hard: -1 }],
        }),
      );
      const e = await exit;
      assert.equal(e.status, 3);
      // Whether a core is written depends on core_pattern; the kernel says 'dumped' only if it was.
      assert.ok(e.code === 'dumped' || e.code === 'killed', e.code);
    });
  });

  describe('pre-exec failures', () => {
    it('a missing WorkingDirectory fails at step CHDIR, and no exit is reported for it', async () => {
      const before = new Set(exits.keys());
      assert.throws(
        () => native.spawn(basicPlan(['/bin/true'], { cwd: '/nonexistent/dir' })),
        (err: unknown) => {
          isSpawnError('CHDIR', 'ENOENT', 'failed at step CHDIR: No such file or directory')(err);
          const e = err as SpawnError;
          assert.equal(e.errno, -2);
          assert.equal(e.syscall, 'chdir');
          assert.equal(e.path, '/nonexistent/dir');
          return true;
        },
      );
      await delay(50);
      assert.deepEqual(
        [...exits.keys()].filter((p) => !before.has(p)),
        [],
      );
    });

    it('an optional WorkingDirectory that is missing starts in /', async (t) => {
      const { stdout, exit } = run(
        t,
        basicPlan(['/bin/pwd'], { cwd: '/nonexistent/dir', cwdOptional: true }),
      );
      assert.equal(await stdout, '/\n');
      assert.equal((await exit).status, 0);
    });

    it('a missing binary fails at step EXEC with ENOENT, a file that is not executable with EACCES', () => {
      assert.throws(
        () => native.spawn(basicPlan(['/nonexistent/binary'])),
        isSpawnError('EXEC', 'ENOENT', 'failed at step EXEC: No such file or directory'),
      );
      const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-noexec-'));
      try {
        writeFileSync(path.join(dir, 'data'), 'not a program\n', { mode: 0o644 });
        assert.throws(
          () => native.spawn(basicPlan([path.join(dir, 'data')])),
          isSpawnError('EXEC', 'EACCES'),
        );
        // Executable but no known format: ENOEXEC, which libuv has no name for.
        writeFileSync(path.join(dir, 'garbage'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0]), {
          mode: 0o755,
        });
        assert.throws(
          () => native.spawn(basicPlan([path.join(dir, 'garbage')])),
          isSpawnError('EXEC', 'ENOEXEC'),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a closed parent fd fails at the step of its child fd', () => {
      const plan = basicPlan(['/bin/true']);
      const bad = (childFd: number) => ({
        ...plan,
        fds: plan.fds.map((f) => (f.childFd === childFd ? { childFd, parentFd: 987_654 } : f)),
      });
      assert.throws(() => native.spawn(bad(0)), isSpawnError('STDIN', 'EBADF'));
      assert.throws(() => native.spawn(bad(1)), isSpawnError('STDOUT', 'EBADF'));
      assert.throws(() => native.spawn(bad(2)), isSpawnError('STDERR', 'EBADF'));
      assert.throws(
        () => native.spawn({ ...plan, fds: [...plan.fds, { childFd: 7, parentFd: 987_654 }] }),
        isSpawnError('FDS', 'EBADF'),
      );
    });

    it('a bad limit fails at LIMITS', () => {
      assert.throws(
        () => native.spawn(basicPlan(['/bin/true'], { rlimits: [{ resource: 7, soft: 10, hard: 5 }] })),
        isSpawnError('LIMITS', 'EINVAL', 'failed at step LIMITS: Invalid argument'),
      );
    });
  });

  describe('credentials, fds, environment', () => {
    it('runs as nobody, without the daemon groups', { skip: needsRoot }, async (t) => {
      const { stdout, exit } = run(
        t,
        basicPlan(['/bin/sh', '-c', 'id -u; id -g; id -G'], { uid: 65534, gid: 65534, groups: [] }),
      );
      assert.equal(await stdout, '65534\n65534\n65534\n');
      assert.equal((await exit).status, 0);
    });

    it('maps fds: stdout and fd 5 to pipes read in TS; nothing else stays open', async (t) => {
      const [readFive, writeFive] = native.pipe();
      // Closed below once spawned; only if the test failed before that (a second close would
      // take whatever fd had the number by then).
      let writeOpen = true;
      t.after(() => {
        if (writeOpen) native.closeFd(writeFive);
      });
      const plan = basicPlan(
        ['/bin/sh', '-c', 'echo to-five >&5; echo fds: $(ls /proc/$$/fd | sort -n | tr "\\n" " ")'],
        {
          fds: [{ childFd: 5, parentFd: writeFive }],
        },
      );
      const { stdout, exit } = run(t, plan);
      native.closeFd(writeFive);
      writeOpen = false;
      assert.equal(await readAll(readFive), 'to-five\n');
      // The shell's own fds: 0-2 and 5 from the map, plus whatever the $(...) pipe took (3 or 4).
      const listed = (await stdout)
        .trim()
        .replace(/^fds: /, '')
        .split(' ')
        .map(Number);
      assert.deepEqual(
        listed.filter((fd) => fd !== 3 && fd !== 4 && fd !== 10),
        [0, 1, 2, 5],
        `open fds in the child: ${listed.join(' ')}`,
      );
      assert.equal((await exit).status, 0);
    });

    it('swaps fds without clobbering (child 1 <- parent fd A, child 2 <- parent fd B)', async (t) => {
      const [readA, writeA] = native.pipe();
      const [readB, writeB] = native.pipe();
      const child = native.spawn(
        basicPlan(['/bin/sh', '-c', 'echo out; echo err >&2'], {
          fds: [
            { childFd: 0, parentFd: -1 },
            { childFd: 2, parentFd: writeA },
            { childFd: 1, parentFd: writeB },
          ],
        }),
      );
      native.closeFd(writeA);
      native.closeFd(writeB);
      killLater(t, child.pid);
      assert.equal(await readAll(readA), 'err\n');
      assert.equal(await readAll(readB), 'out\n');
      await waitExit(child.pid);
    });

    it('passes the environment exactly', async (t) => {
      const env = ['A=1', 'B=two words', 'EMPTY=', 'UNICODE=grüße'];
      const { stdout } = run(t, basicPlan(['/usr/bin/env'], { env }));
      assert.equal(await stdout, env.join('\n') + '\n');
    });

    it('sets LISTEN_PID to the child pid', async (t) => {
      const { pid, stdout } = run(
        t,
        basicPlan(['/bin/sh', '-c', 'echo $LISTEN_PID $$'], {
          env: ['LISTEN_PID=1', PATH_ENV],
          setListenPid: true,
        }),
      );
      assert.equal(await stdout, `${pid} ${pid}\n`);
    });

    it('applies umask, nice, oom_score_adj, rlimits and a new session', async (t) => {
      const script =
        'umask; cut -d" " -f19 /proc/self/stat; cat /proc/self/oom_score_adj; ulimit -n; ' +
        'ps -o sid= -p $$ | tr -d " "';
      const { pid, stdout } = run(
        t,
        basicPlan(['/bin/sh', '-c', script], {
          umask: 0o027,
          nice: 7,
          oomScoreAdjust: 300,
          rlimits: [{ resource: 7, soft: 123, hard: 456 }],
        }),
      );
      const [umask, nice, oom, nofile, sid] = (await stdout).trim().split('\n');
      assert.equal(umask, '0027');
      assert.equal(nice, '7');
      assert.equal(oom, '300');
      assert.equal(nofile, '123');
      assert.equal(sid, String(pid));
    });

    it('turns output into lines (outputLines)', async (t) => {
      const [readFd, writeFd] = native.pipe();
      const child = native.spawn(
        basicPlan(['/bin/sh', '-c', 'printf "one\\ntwo\\n"; printf "%0100d\\n" 0; printf tail'], {
          fds: [
            { childFd: 0, parentFd: -1 },
            { childFd: 1, parentFd: writeFd },
            { childFd: 2, parentFd: -1 },
          ],
        }),
      );
      native.closeFd(writeFd);
      killLater(t, child.pid);
      const lines = await firstValueFrom(outputLines(readFd, { maxLineBytes: 64 }).pipe(toArray()));
      assert.deepEqual(lines, [
        { text: 'one', truncated: false },
        { text: 'two', truncated: false },
        { text: '0'.repeat(64), truncated: true },
        { text: '0'.repeat(36), truncated: false },
        { text: 'tail', truncated: true },
      ]);
      await waitExit(child.pid);
    });
  });

  describe('subreaper', () => {
    it("catches a double-forking daemon's grandchild as an orphan exit", { skip: needsRoot }, async (t) => {
      native.setSubreaper(true);
      t.after(() => native.setSubreaper(false));
      assert.equal(native.isSubreaper(), true);
      const { pid, stdout, exit } = run(
        t,
        basicPlan(['/bin/sh', '-c', '(sleep 30 </dev/null >/dev/null 2>&1 & echo $!) ; exit 0']),
      );
      const orphan = Number((await stdout).trim());
      assert.ok(orphan > 0);
      killLater(t, orphan);
      assert.deepEqual(await exit, { pid, code: 'exited', status: 0, ownChild: true });
      const stat = readFileSync(`/proc/${orphan}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      assert.equal(ppid, process.pid, 'reparented to us');
      native.kill(orphan, SIGKILL);
      assert.deepEqual(await waitExit(orphan), {
        pid: orphan,
        code: 'killed',
        status: SIGKILL,
        ownChild: false,
      });
    });
  });

  describe('cgroups', () => {
    let tree: CgroupTree;
    let testBase: string;

    before(() => {
      if (needsCgroup !== false || !cgroupHierarchy.ok) return;
      testBase = path.join(cgroupHierarchy.root, `triggerd-test-${process.pid}`);
      const setup = openCgroupTree({ base: testBase });
      assert.ok(setup.ok, setup.ok ? '' : setup.reason);
      tree = setup.tree;
    });

    after(() => {
      if (tree === undefined) return;
      // Whatever a failed test left: kill it, then remove the groups deepest first.
      for (const pid of tree.listPids(testBase)) {
        try {
          native.kill(pid, SIGKILL);
        } catch {
          // gone
        }
      }
      for (let i = 0; i < 50 && !tree.isEmpty(testBase); i++)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      tree.remove(testBase);
    });

    it(
      'starts a service in its own cgroup, lists all its processes and kills them with cgroup.kill',
      { skip: needsCgroup },
      async (t) => {
        const dir = tree.create('spawn-test.service');
        const { pid, stdout, exit } = run(
          t,
          basicPlan(
            [
              '/bin/sh',
              '-c',
              'sleep 30 </dev/null >/dev/null 2>&1 & sleep 30 </dev/null >/dev/null 2>&1 & echo ready; exec >/dev/null 2>&1; wait',
            ],
            { cgroup: dir },
          ),
        );
        assert.equal(await stdout, 'ready\n');
        assert.equal(tree.cgroupOfPid(pid), dir, 'placed by CLONE_INTO_CGROUP before exec');
        const pids = tree.listPids(dir);
        assert.equal(pids.length, 3, `pids ${pids.join(' ')}`);
        assert.ok(pids.includes(pid));
        for (const p of pids) killLater(t, p);
        assert.equal(tree.isEmpty(dir), false);
        assert.deepEqual(tree.kill(dir, SIGKILL), { method: 'cgroup.kill', signalled: 0 });
        assert.deepEqual(await exit, { pid, code: 'killed', status: SIGKILL, ownChild: true });
        for (let i = 0; i < 100 && !tree.isEmpty(dir); i++) await delay(10);
        assert.equal(tree.isEmpty(dir), true);
        assert.equal(tree.remove(dir), true);
      },
    );

    it(
      'a group cgroup.kill was written to still takes new children: spawned, launched and parked',
      { skip: needsCgroup },
      async (t) => {
        // Linux 6.18 SIGKILLs a CLONE_INTO_CGROUP child at its birth in such a group (a unit's
        // group is kept between runs): the child must come back joining through cgroup.procs.
        const dir = tree.create('spawn-killed.service');
        t.after(() => tree.remove(dir));
        const sleeper = run(
          t,
          basicPlan(['/bin/sh', '-c', 'echo ready; exec sleep 30 >/dev/null 2>&1'], { cgroup: dir }),
        );
        assert.equal(await sleeper.stdout, 'ready\n');
        assert.deepEqual(tree.kill(dir, SIGKILL), { method: 'cgroup.kill', signalled: 0 });
        assert.equal((await sleeper.exit).status, SIGKILL);
        const where = `0::${dir.slice(tree.root.length)}\n`;
        const spawned = run(t, basicPlan(['/bin/sh', '-c', 'grep ^0:: /proc/self/cgroup'], { cgroup: dir }));
        assert.equal(await spawned.stdout, where);
        assert.deepEqual(await spawned.exit, { pid: spawned.pid, code: 'exited', status: 0, ownChild: true });
        const scratch = mkdtempSync(path.join(tmpdir(), 'triggerd-killed-group-'));
        t.after(() => rmSync(scratch, { recursive: true, force: true }));
        for (const park of [false, true]) {
          const out = path.join(scratch, `out-${park}`);
          const prepared = native.prepare(
            basicPlan(['/bin/sh', '-c', `grep ^0:: /proc/self/cgroup > ${out}`], { cgroup: dir }),
            { park },
          );
          t.after(() => prepared.release());
          const child = prepared.launch();
          killLater(t, child.pid);
          assert.deepEqual(
            await waitExit(child.pid),
            { pid: child.pid, code: 'exited', status: 0, ownChild: true },
            `park: ${park}`,
          );
          assert.equal(readFileSync(out, 'latin1'), where, `park: ${park}`);
        }
      },
    );

    it(
      'a child of spawnAsync() that dies before its exec fails the spawn, not a start waiting for an exit nobody reports',
      { skip: needsCgroup },
      async (t) => {
        // Killed at its birth (a group cgroup.kill was written to, with the second clone off):
        // a quiet child that never exec'd is invisible to the watcher's waitid(P_ALL).
        const dir = tree.create('spawn-unborn.service');
        t.after(() => tree.remove(dir));
        writeFileSync(path.join(dir, 'cgroup.kill'), '1');
        native.setCloneMethodForTesting('clone3-no-rejoin');
        t.after(() => native.setCloneMethodForTesting('auto'));
        const outcome = await new Promise<{ err: SpawnError | null; child?: SpawnedChild }>((resolve) =>
          native.spawnAsync(basicPlan(['/bin/true'], { cgroup: dir }), (err, child) =>
            resolve({ err, child }),
          ),
        );
        if (outcome.child !== undefined) killLater(t, outcome.child.pid);
        assert.equal(outcome.child, undefined, 'no child handed out');
        assert.equal(outcome.err?.code, 'EINTR', String(outcome.err));
        native.setCloneMethodForTesting('auto');
        // And with the second clone: it runs.
        const ran = await new Promise<{ err: SpawnError | null; child?: SpawnedChild }>((resolve) =>
          native.spawnAsync(basicPlan(['/bin/true'], { cgroup: dir }), (err, child) =>
            resolve({ err, child }),
          ),
        );
        assert.equal(ran.err, null);
        assert.ok(ran.child !== undefined);
        killLater(t, ran.child.pid);
        assert.deepEqual(await waitExit(ran.child.pid), {
          pid: ran.child.pid,
          code: 'exited',
          status: 0,
          ownChild: true,
        });
      },
    );

    it(
      'createFresh: a group left there empty is made anew, a busy one is kept',
      { skip: needsCgroup },
      async (t) => {
        const dir = tree.create('spawn-fresh.service');
        t.after(() => tree.remove(dir));
        const before = statSync(dir).ino;
        assert.equal(tree.createFresh('spawn-fresh.service'), dir);
        assert.notEqual(statSync(dir).ino, before, 'a new group (a fresh history: no cgroup.kill)');
        const sleeper = run(
          t,
          basicPlan(['/bin/sh', '-c', 'echo ready; exec sleep 30 >/dev/null 2>&1'], { cgroup: dir }),
        );
        assert.equal(await sleeper.stdout, 'ready\n');
        const busy = statSync(dir).ino;
        assert.equal(tree.createFresh('spawn-fresh.service'), dir);
        assert.equal(statSync(dir).ino, busy, 'kept while a process is in it');
        native.kill(sleeper.pid, SIGKILL);
        await sleeper.exit;
      },
    );

    it('signals pid by pid for other signals', { skip: needsCgroup }, async (t) => {
      const dir = tree.create('spawn-term.service');
      t.after(() => tree.remove(dir));
      const { pid, stdout, exit } = run(
        t,
        basicPlan(['/bin/sh', '-c', 'echo ready; exec sleep 30 >/dev/null 2>&1'], { cgroup: dir }),
      );
      assert.equal(await stdout, 'ready\n');
      const sent: [number, number][] = [];
      const result = tree.kill(dir, SIGTERM, (p, s) => {
        sent.push([p, s]);
        native.kill(p, s);
      });
      assert.deepEqual(result, { method: 'signal', signalled: 1 });
      assert.deepEqual(sent, [[pid, SIGTERM]]);
      assert.equal((await exit).status, SIGTERM);
    });

    it(
      'joins the cgroup through cgroup.procs with the clone() fallback',
      { skip: needsCgroup },
      async (t) => {
        const dir = tree.create('spawn-fallback.service');
        t.after(() => tree.remove(dir));
        native.setCloneMethodForTesting('clone');
        t.after(() => native.setCloneMethodForTesting('auto'));
        const { pid, stdout, exit } = run(
          t,
          basicPlan(['/bin/sh', '-c', 'cat /proc/self/cgroup | grep ^0::'], { cgroup: dir }),
        );
        assert.equal(
          path.join(cgroupHierarchy.ok ? cgroupHierarchy.root : '', (await stdout).trim().slice(3)),
          dir,
        );
        assert.equal((await exit).status, 0);
        assert.ok(pid > 0);
      },
    );

    it(
      'reuses empty slot groups of a pool and removes spares beyond the limit',
      { skip: needsCgroup },
      async (t) => {
        const first = tree.takeSlot('slot-test@.service');
        const second = tree.takeSlot('slot-test@.service');
        t.after(() => {
          tree.remove(first);
          tree.remove(second);
        });
        assert.notEqual(first, second);
        assert.match(path.basename(first), /^slot-test@\.service\.slot-\d+$/);
        const { pid, exit } = run(t, basicPlan(['/bin/true'], { cgroup: first }));
        assert.equal((await exit).pid, pid);
        for (let i = 0; i < 100 && !tree.isEmpty(first); i++) await delay(10);
        tree.returnSlot('slot-test@.service', first);
        assert.equal(tree.takeSlot('slot-test@.service'), first, 'the spare comes back');
        // With no room for spares, a returned slot is removed.
        tree.returnSlot('slot-test@.service', second, 0);
        assert.equal(existsSync(second), false);
        tree.returnSlot('slot-test@.service', first);
        tree.dropSpares();
        assert.equal(existsSync(first), false);
      },
    );

    it(
      'a new slot never takes an existing group (one an earlier daemon left, maybe busy)',
      { skip: needsCgroup },
      (t) => {
        // A second tree on the same base, as after a re-exec: its slot counter starts again.
        const again = openCgroupTree({ base: testBase });
        assert.ok(again.ok);
        const left = path.join(tree.slice, 'slot-reuse@.service.slot-1');
        mkdirSync(left, { recursive: true });
        const got = again.tree.takeSlot('slot-reuse@.service');
        t.after(() => {
          tree.remove(got);
          tree.remove(left);
        });
        assert.notEqual(got, left);
        assert.match(path.basename(got), /^slot-reuse@\.service\.slot-\d+$/);
      },
    );

    it('a missing cgroup fails at step CGROUP', { skip: needsCgroup }, () => {
      assert.throws(
        () => native.spawn(basicPlan(['/bin/true'], { cgroup: path.join(testBase, 'no-such-group') })),
        (err: unknown) => {
          isSpawnError('CGROUP', 'ENOENT')(err);
          assert.equal((err as SpawnError).path, path.join(testBase, 'no-such-group'));
          return true;
        },
      );
    });

    it(
      'prepare() binds the cgroup at launch: a group made after it, and one removed and made again in between',
      { skip: needsCgroup },
      async (t) => {
        const dir = tree.pathOf('spawn-prepared.service');
        const pids: number[] = [];
        t.after(async () => {
          for (const pid of pids) {
            try {
              native.kill(pid, SIGKILL);
            } catch {
              // reaped
            }
          }
          for (let i = 0; i < 100 && !tree.isEmpty(dir); i++) await delay(10);
          tree.remove(dir);
          native.forgetCgroup(dir);
        });
        /** Launches `prepared`, checks the child is in the group at `dir` now, and ends it. */
        const launchInto = async (prepared: ReturnType<NativeSpawn['prepare']>): Promise<void> => {
          const { pid } = prepared.launch();
          pids.push(pid);
          killLater(t, pid);
          assert.equal(tree.cgroupOfPid(pid), dir);
          assert.deepEqual(tree.listPids(dir), [pid], 'in the group that is at the path now');
          native.kill(pid, SIGKILL);
          assert.equal((await waitExit(pid)).status, SIGKILL);
          for (let i = 0; i < 100 && !tree.isEmpty(dir); i++) await delay(10);
          assert.equal(tree.isEmpty(dir), true);
        };
        const plan = basicPlan(['/bin/sleep', '30'], { cgroup: dir });

        // The group does not exist when the plan is prepared.
        assert.equal(existsSync(dir), false);
        const first = native.prepare(plan);
        t.after(() => first.release());
        tree.create('spawn-prepared.service');
        await launchInto(first);

        // The addon keeps the group it spawned into open; prepared now, and the group replaced.
        const second = native.prepare(plan);
        t.after(() => second.release());
        assert.equal(tree.remove(dir), true);
        tree.create('spawn-prepared.service');
        await launchInto(second);

        // Removed and not made again: launch() is the CGROUP failure spawn() gives.
        const third = native.prepare(plan);
        t.after(() => third.release());
        assert.equal(tree.remove(dir), true);
        assert.throws(() => third.launch(), isSpawnError('CGROUP', 'ENOENT'));
      },
    );
  });

  describe('sandbox', () => {
    it(
      'ProtectSystem=strict + ReadWritePaths=: /etc and /usr are read-only, the allowed dir is not',
      { skip: needsRoot },
      async (t) => {
        const allowed = mkdtempSync(path.join(tmpdir(), 'triggerd-rw-'));
        const probes = ['/etc/triggerd-strict-probe', '/usr/triggerd-strict-probe'];
        t.after(() => {
          rmSync(allowed, { recursive: true, force: true });
          for (const p of probes) rmSync(p, { force: true });
        });
        const script =
          'touch /etc/triggerd-strict-probe 2>/dev/null && echo etc-writable; ' +
          'touch /usr/triggerd-strict-probe 2>/dev/null && echo usr-writable; ' +
          'touch /var/triggerd-strict-probe 2>/dev/null && echo var-writable; ' +
          'touch "$DIR/ok" && echo dir-ok; touch /dev/null && echo dev-ok';
        const plan = planFor(
          t,
          { protectSystem: 'strict', readWritePaths: [allowed], environment: [['DIR', allowed]] },
          ['/bin/sh', '-c', script],
          'strict.service',
        );
        const { stdout, exit } = run(t, plan, 'null');
        assert.equal(await stdout, 'dir-ok\ndev-ok\n');
        assert.equal((await exit).status, 0);
        assert.ok(existsSync(path.join(allowed, 'ok')));
        // The daemon's own view is untouched.
        writeFileSync('/etc/triggerd-strict-probe', 'x');
        rmSync('/etc/triggerd-strict-probe');
      },
    );

    it(
      'PrivateTmp=: /tmp is private and writable, the host /tmp untouched',
      { skip: needsRoot },
      async (t) => {
        const hostFile = path.join('/tmp', `triggerd-host-${process.pid}`);
        writeFileSync(hostFile, 'host');
        t.after(() => rmSync(hostFile, { force: true }));
        const inside = `triggerd-inside-${process.pid}`;
        t.after(() => rmSync(path.join('/tmp', inside), { force: true }));
        const plan = planFor(
          t,
          { privateTmp: true },
          ['/bin/sh', '-c', `ls -A /tmp; echo x > /tmp/${inside} && echo written; stat -c %a /tmp`],
          'private-tmp.service',
        );
        const { stdout } = run(t, plan);
        assert.equal(await stdout, 'written\n1777\n');
        assert.equal(existsSync(path.join('/tmp', inside)), false);
        assert.ok(existsSync(path.join(runtimeRoot, 'private-tmp', 'private-tmp.service', 'tmp', inside)));
      },
    );

    it(
      'PrivateNetwork=: only lo, up, in /sys/class/net; /sys/fs/cgroup still there',
      { skip: needsRoot },
      async (t) => {
        const plan = planFor(
          t,
          { privateNetwork: true },
          [
            '/bin/sh',
            '-c',
            'ls /sys/class/net; cat /sys/class/net/lo/flags; ls /sys/fs/cgroup | head -1; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "',
          ],
          'private-net.service',
        );
        const { stdout, exit } = run(t, plan);
        const [listing, flags, cgroupEntry, procNet] = (await stdout).trim().split('\n');
        assert.equal(listing, 'lo');
        assert.equal(Number(flags) & 1, 1, `IFF_UP in ${flags}`);
        assert.ok(cgroupEntry !== undefined && cgroupEntry.length > 0, 'submounts carried over');
        assert.equal(procNet, 'lo');
        assert.equal((await exit).status, 0);
      },
    );

    it('InaccessiblePaths= and PrivateDevices=', { skip: needsRoot }, async (t) => {
      const secret = mkdtempSync(path.join(runtimeRoot, 'secret-'));
      writeFileSync(path.join(secret, 'key'), 'k');
      const secretFile = path.join(runtimeRoot, 'secret-file');
      writeFileSync(secretFile, 'data');
      const plan = planFor(
        t,
        { inaccessiblePaths: [secret, secretFile, '-/nonexistent/path'], privateDevices: true },
        [
          '/bin/sh',
          '-c',
          `ls -A ${secret}; stat -c %a ${secret}; wc -c < ${secretFile}; ls /dev | tr "\\n" " "; echo; echo hi > /dev/null && echo null-ok; touch /dev/new 2>/dev/null || echo dev-ro`,
        ],
        'inaccessible.service',
      );
      const { stdout, exit } = run(t, plan, 'null');
      const [mode, size, devices, nullOk, devRo] = (await stdout).trim().split('\n');
      assert.equal(mode, '0');
      assert.equal(size, '0');
      assert.deepEqual(devices.trim().split(' ').sort(), [
        'fd',
        'full',
        'null',
        'ptmx',
        'pts',
        'random',
        'shm',
        'stderr',
        'stdin',
        'stdout',
        'tty',
        'urandom',
        'zero',
      ]);
      assert.equal(nullOk, 'null-ok');
      assert.equal(devRo, 'dev-ro');
      assert.equal((await exit).status, 0);
      assert.equal(readFileSync(path.join(secret, 'key'), 'utf8'), 'k', 'host copy untouched');
    });

    it('NoNewPrivileges= shows in /proc/self/status', async (t) => {
      const { stdout } = run(
        t,
        basicPlan(['/bin/grep', '^NoNewPrivs:', '/proc/self/status'], { noNewPrivileges: true }),
      );
      assert.equal(await stdout, 'NoNewPrivs:\t1\n');
    });

    it('CapabilityBoundingSet= shows as CapBnd', { skip: needsRoot }, async (t) => {
      const { stdout } = run(
        t,
        basicPlan(['/bin/grep', '^Cap\\(Bnd\\|Eff\\):', '/proc/self/status'], {
          capabilityBoundingSet: 1n << 10n,
        }),
      );
      assert.equal(await stdout, 'CapEff:\t0000000000000400\nCapBnd:\t0000000000000400\n');
    });

    it('AmbientCapabilities= survive the change to nobody', { skip: needsRoot }, async (t) => {
      const { stdout } = run(
        t,
        basicPlan(['/bin/grep', '^Cap\\(Eff\\|Amb\\):', '/proc/self/status'], {
          uid: 65534,
          gid: 65534,
          groups: [],
          ambientCapabilities: 1n << 10n,
        }),
      );
      assert.equal(await stdout, 'CapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n');
    });
  });

  describe('abuse and leaks', () => {
    it('bad fds are system errors', () => {
      assert.throws(() => native.closeFd(987_654), isSystemError('EBADF', 'close'));
      assert.throws(() => native.pidfdSendSignal(987_654, 0), isSystemError('EBADF', 'pidfd_send_signal'));
      const [r, w] = native.pipe();
      try {
        // A pipe is not a pidfd.
        assert.throws(() => native.pidfdSendSignal(r, 0), isSystemError('EBADF', 'pidfd_send_signal'));
      } finally {
        native.closeFd(r);
        native.closeFd(w);
      }
      assert.throws(() => native.kill(2_000_000_000, 0), isSystemError('ESRCH', 'kill'));
    });

    it('spawns 1,000 short-lived children (16 in flight, some failing) without leaking an fd', async (t) => {
      // Earlier tests' sockets close on later turns of the loop: let them settle first.
      await delay(100);
      const baseline = openFdCount();
      const total = 1000;
      let started = 0;
      let failed = 0;
      const inFlight = new Set<Promise<ChildExit>>();
      while (started < total) {
        while (inFlight.size < 16 && started < total) {
          started++;
          if (started % 50 === 0) {
            assert.throws(() => native.spawn(basicPlan(['/nonexistent/x'])), isSpawnError('EXEC', 'ENOENT'));
            failed++;
            continue;
          }
          const { pid } = native.spawn(basicPlan(['/bin/true']));
          killLater(t, pid);
          const done = waitExit(pid).then((e) => {
            inFlight.delete(done);
            return e;
          });
          inFlight.add(done);
        }
        // Every exit may have come in one batch just before the last, failing, spawn: racing an
        // empty set would wait forever.
        if (inFlight.size === 0) continue;
        const exit = await Promise.race(inFlight);
        assert.equal(exit.status, 0);
      }
      await Promise.all(inFlight);
      assert.equal(failed, 20);
      await delay(20);
      assert.equal(openFdCount(), baseline, 'fds before and after');
    });

    it('spawnAsync: 300 children (16 in flight, some failing), every exit after its pid, no fd leaked', async (t) => {
      await delay(100);
      const baseline = openFdCount();
      const delivered = new Set<number>();
      const early: number[] = [];
      // pids are reused (pid_max may be 32768): an exit recorded before this test is not early.
      const stale = new Map(exits);
      let failed = 0;
      const one = (i: number): Promise<void> =>
        new Promise((resolve, reject) => {
          const plan = basicPlan(i % 20 === 0 ? ['/nonexistent/x'] : ['/bin/true']);
          native.spawnAsync(plan, (err, child) => {
            if (err !== null || child === undefined) {
              if (err?.step === 'EXEC' && err.code === 'ENOENT') {
                failed++;
                resolve();
              } else reject(err ?? new Error('no child'));
              return;
            }
            killLater(t, child.pid);
            const known = exits.get(child.pid);
            if (known !== undefined && (known === stale.get(child.pid) || delivered.has(child.pid)))
              exits.delete(child.pid); // an earlier process's
            else if (known !== undefined) early.push(child.pid);
            delivered.add(child.pid);
            waitExit(child.pid).then((e) => {
              assert.deepEqual(e, { pid: child.pid, code: 'exited', status: 0, ownChild: true });
              resolve();
            }, reject);
          });
        });
      let next = 0;
      const lanes = Array.from({ length: 16 }, async () => {
        while (next < 300) await one(next++);
      });
      await Promise.all(lanes);
      assert.deepEqual(early, [], 'exits reported before their spawn was');
      assert.equal(failed, 15);
      assert.ok(delivered.size > 0);
      await delay(50);
      assert.equal(openFdCount(), baseline, 'fds before and after');
    });

    it('nonBlocking sets or clears O_NONBLOCK on the shared file description (spawn and spawnAsync)', async (t) => {
      const flagsOf = (fd: number): number =>
        parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? 'x', 8);
      const O_NONBLOCK = 0o4000;
      const [r, w] = native.pipe();
      t.after(() => {
        native.closeFd(r);
        native.closeFd(w);
      });
      assert.equal(flagsOf(r) & O_NONBLOCK, O_NONBLOCK, 'the read end starts non-blocking');
      const plan = (nonBlocking: boolean): ExecPlan =>
        basicPlan(['/bin/true'], {
          fds: [...basicPlan(['/bin/true']).fds, { childFd: 3, parentFd: r, nonBlocking }],
        });
      const first = native.spawn(plan(false));
      killLater(t, first.pid);
      assert.equal(flagsOf(r) & O_NONBLOCK, 0, 'cleared by the child');
      await waitExit(first.pid);
      const second = await new Promise<SpawnedChild>((resolve, reject) =>
        native.spawnAsync(plan(true), (err, c) => (c !== undefined ? resolve(c) : reject(err))),
      );
      killLater(t, second.pid);
      assert.equal(flagsOf(r) & O_NONBLOCK, O_NONBLOCK, 'set again by the next one');
      await waitExit(second.pid);
      assert.throws(
        () =>
          native.spawn({
            ...plan(true),
            fds: [
              ...basicPlan(['/bin/true']).fds,
              { childFd: 3, parentFd: r, nonBlocking: 'yes' as unknown as boolean },
            ],
          }),
        TypeError,
      );
    });

    it('childExitEvents: a cold Observable over the one watcher', async (t) => {
      // The file-wide watcher is running, so a second one is refused: the Observable errors.
      const error = await firstValueFrom(childExitEvents(native)).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.equal((error as { code?: string }).code, 'ERR_WATCHER_ACTIVE');
      // With the fake: batches in, teardown closes the watcher.
      const fake = new FakeNativeSpawn();
      const seen: ChildExit[][] = [];
      const subscription = childExitEvents(fake).subscribe((batch) => seen.push(batch));
      t.after(() => subscription.unsubscribe());
      const { pid } = fake.spawn(basicPlan(['/bin/true']));
      fake.exit(pid, 'exited', 0);
      fake.orphanExit(77, 'killed', 9);
      await delay(5);
      assert.deepEqual(seen, [
        [
          { pid, code: 'exited', status: 0, ownChild: true },
          { pid: 77, code: 'killed', status: 9, ownChild: false },
        ],
      ]);
      subscription.unsubscribe();
      assert.equal(fake.watching?.closed, true);
    });
  });
});
