// A fake NativeSpawn for pure tests of what sits on top of spawning (unit state machines, the
// child-exit Observable). Children never run: the test ends them with `fake.exit(pid, ...)` or
// reports orphans with `fake.orphanExit(...)`. It keeps the real addon's observable rules
// (checked by the contract suite in test/integration/spawn.test.ts): TypeErrors for malformed
// plans, 0/1/2 must be mapped, one watcher per process (ERR_WATCHER_ACTIVE), exits delivered
// in batches of at most 1024 on a later turn of the event loop (never inside spawn()), pidfds
// closed once their exit is delivered, ESRCH for kill() of a reaped process, EBADF for closed fds.
import { EXEC_STEPS, type ExecPlan, type ExecStep } from '../../src/exec/exec-plan';
import type {
  ChildExit,
  ChildExitCode,
  ChildWatcher,
  CloneMethod,
  NativeSpawn,
  PreparedLaunch,
  SpawnError,
  SpawnedChild,
} from '../../src/native/spawn-addon';

export const FAKE_MAX_EXITS_PER_BATCH = 1024;

const ERRNO: Record<string, number> = { ENOENT: 2, ESRCH: 3, EBADF: 9, EACCES: 13, EPERM: 1, EINVAL: 22 };

export interface FakeChild {
  pid: number;
  pidfd: number;
  plan: ExecPlan;
  /** Signals sent to it, in order. */
  signals: number[];
  /** Set once the test ended it (a zombie until the watcher delivers it). */
  exited: boolean;
}

function argumentError(message: string, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  const error = new TypeError(message);
  Object.assign(error, { code });
  return error;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw argumentError(`The "${name}" argument must be an integer in ${min}..${max}`);
  }
  return value;
}

export function fakeSystemError(code: string, syscall: string, message?: string): SpawnError {
  const error = new Error(message ?? `${code}: fake error, ${syscall}`) as SpawnError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  return error;
}

/** The error a failed pre-exec step gives, as the addon makes it. */
export function fakeSpawnError(
  step: ExecStep,
  code: string,
  description: string,
  syscall: string,
): SpawnError {
  const error = fakeSystemError(code, syscall, `failed at step ${step}: ${description}`);
  error.step = step;
  return error;
}

/** The checks the addon makes before it clones (a representative subset: shape, not every range). */
function checkPlan(plan: unknown): ExecPlan {
  if (typeof plan !== 'object' || plan === null || Array.isArray(plan)) {
    throw argumentError('The "plan" argument must be an object');
  }
  const p = plan as Partial<Record<keyof ExecPlan, unknown>>;
  if (typeof p.path !== 'string' || !p.path.startsWith('/')) {
    throw argumentError('The "plan.path" property must be a string');
  }
  if (!Array.isArray(p.argv) || p.argv.length === 0 || !p.argv.every((a) => typeof a === 'string')) {
    throw argumentError('The "plan.argv" property must be an array');
  }
  if (!Array.isArray(p.env) || !p.env.every((e) => typeof e === 'string' && e.indexOf('=') > 0)) {
    throw argumentError('The "plan.env" property must be an array');
  }
  if (!Array.isArray(p.rlimits) || !Array.isArray(p.mounts)) {
    throw argumentError('The "plan.rlimits" property must be an array');
  }
  if (!Array.isArray(p.fds)) throw argumentError('The "plan.fds" property must be an array');
  const seen = new Set<number>();
  for (const fd of p.fds as unknown[]) {
    if (typeof fd !== 'object' || fd === null)
      throw argumentError('The "plan.fds[]" property must be an object');
    const mapping = fd as { childFd?: unknown; parentFd?: unknown; nonBlocking?: unknown };
    const childFd = checkInteger(mapping.childFd, 'plan.fds[].childFd', 0, 65535);
    checkInteger(mapping.parentFd, 'plan.fds[].parentFd', -1, 2147483647);
    if (mapping.nonBlocking !== undefined && typeof mapping.nonBlocking !== 'boolean')
      throw argumentError('The "plan.fds[].nonBlocking" property must be a boolean');
    if (seen.has(childFd)) throw argumentError(`repeats child fd ${childFd}`, 'ERR_INVALID_ARG_VALUE');
    seen.add(childFd);
  }
  if (![0, 1, 2].every((fd) => seen.has(fd))) {
    throw argumentError('The "plan.fds" property must map child fds 0, 1 and 2', 'ERR_INVALID_ARG_VALUE');
  }
  return plan as ExecPlan;
}

interface FakeWatcher {
  onExits: (this: ChildWatcher, exits: ChildExit[]) => void;
  handle: ChildWatcher;
  closed: boolean;
  referenced: boolean;
}

export class FakeNativeSpawn implements NativeSpawn {
  readonly execSteps: readonly string[] = EXEC_STEPS;
  readonly children: FakeChild[] = [];
  /** Set to make the next spawn() fail at a step. */
  failNext: SpawnError | undefined;
  subreaper = false;
  cloneMethod: CloneMethod = 'auto';
  /** When true (the default), SIGKILL/SIGTERM/SIGINT/SIGHUP end a child as 'killed'. */
  signalsKill = true;
  readonly openFds = new Set<number>();

  private nextPid = 4000;
  private nextFd = 100;
  private readonly live = new Map<number, FakeChild>();
  private readonly zombies: ChildExit[] = [];
  /** The cgroups spawn() has held open, as the addon does (forgetCgroup). */
  readonly heldCgroups = new Set<string>();
  private watcher: FakeWatcher | undefined;
  private deliveryScheduled = false;

  /** The current watcher, for assertions (undefined when none). */
  get watching(): { closed: boolean; referenced: boolean } | undefined {
    return this.watcher;
  }

  spawn(plan: ExecPlan): SpawnedChild {
    const checked = checkPlan(plan);
    if (this.failNext !== undefined) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    const child: FakeChild = {
      pid: this.nextPid++,
      pidfd: this.allocateFd(),
      plan: checked,
      signals: [],
      exited: false,
    };
    this.children.push(child);
    this.live.set(child.pid, child);
    if (plan.cgroup !== undefined) this.heldCgroups.add(plan.cgroup);
    return { pid: child.pid, pidfd: child.pidfd };
  }

  /**
   * Like the addon: the plan is checked now, cloned by launch() (a fake watch never clones it).
   * `park`: the child is spawned now (its plan as given) and launch() hands it over; a release
   * kills it (SIGKILL recorded).
   */
  prepare(plan: ExecPlan, options?: { park?: boolean }): PreparedLaunch {
    checkPlan(plan);
    const park: unknown = options?.park;
    if (park !== undefined && typeof park !== 'boolean')
      throw argumentError('The "options.park" property must be a boolean');
    let state: 'ready' | 'launched' | 'released' = 'ready';
    const parked = park === true ? this.spawn(plan) : undefined;
    return {
      get launched(): boolean {
        return state === 'launched';
      },
      parkedPid: parked?.pid ?? 0,
      launch: (): SpawnedChild => {
        if (state !== 'ready')
          throw argumentError('The prepared launch was released or already launched', 'ERR_INVALID_STATE');
        state = 'launched';
        return parked ?? this.spawn(plan);
      },
      release: (): void => {
        if (state === 'ready') {
          state = 'released';
          if (parked !== undefined) this.pidfdSendSignal(parked.pidfd, 9);
        }
      },
    };
  }

  /** Like the addon: the plan is checked now, the child (or failNext) delivered on a later turn. */
  spawnAsync(
    plan: ExecPlan,
    done: (err: SpawnError | null, child?: SpawnedChild) => void,
    handOver: readonly number[] = [],
  ): void {
    checkPlan(plan);
    if (typeof done !== 'function') throw argumentError('The "done" argument must be a function');
    for (const fd of handOver) checkInteger(fd, 'handOver[]', 0, 2147483647);
    setImmediate(() => {
      for (const fd of handOver) this.openFds.delete(fd);
      let child: SpawnedChild;
      try {
        child = this.spawn(plan);
      } catch (err) {
        done(err as SpawnError);
        return;
      }
      done(null, child);
    });
  }

  /** Ends an own child (it becomes a zombie until the watcher delivers it). */
  exit(pid: number, code: ChildExitCode = 'exited', status = 0): void {
    const child = this.live.get(pid);
    if (child === undefined || child.exited) throw new Error(`fake: no running child ${pid}`);
    child.exited = true;
    this.zombies.push({ pid, code, status, ownChild: true });
    this.scheduleDelivery();
  }

  /** An orphan reparented to us (subreaper) exits. */
  orphanExit(pid: number, code: ChildExitCode = 'exited', status = 0): void {
    this.zombies.push({ pid, code, status, ownChild: false });
    this.scheduleDelivery();
  }

  setSubreaper(on: boolean): void {
    if (typeof on !== 'boolean') throw argumentError('The "on" argument must be a boolean');
    this.subreaper = on;
  }

  isSubreaper(): boolean {
    return this.subreaper;
  }

  watchChildren(onExits: (this: ChildWatcher, exits: ChildExit[]) => void): ChildWatcher {
    if (typeof onExits !== 'function') throw argumentError('The "onExits" argument must be a function');
    if (this.watcher !== undefined && !this.watcher.closed) {
      const error = new Error('this process already watches its children');
      Object.assign(error, { code: 'ERR_WATCHER_ACTIVE' });
      throw error;
    }
    const watcher: FakeWatcher = {
      onExits,
      closed: false,
      referenced: true,
      handle: {
        close: () => {
          watcher.closed = true;
        },
        ref: () => {
          watcher.referenced = true;
        },
        unref: () => {
          watcher.referenced = false;
        },
      },
    };
    this.watcher = watcher;
    this.scheduleDelivery();
    return watcher.handle;
  }

  pidfdSendSignal(pidfd: number, signal: number): void {
    checkInteger(pidfd, 'pidfd', 0, 2147483647);
    checkInteger(signal, 'signal', 0, 64);
    if (!this.openFds.has(pidfd)) throw fakeSystemError('EBADF', 'pidfd_send_signal');
    const child = [...this.live.values()].find((c) => c.pidfd === pidfd);
    if (child === undefined) throw fakeSystemError('EBADF', 'pidfd_send_signal');
    this.deliverSignal(child, signal, 'pidfd_send_signal');
  }

  kill(pid: number, signal: number): void {
    checkInteger(pid, 'pid', -2147483647, 2147483647);
    if (pid === 0 || pid === -1)
      throw argumentError('The "pid" argument must not be 0 or -1', 'ERR_INVALID_ARG_VALUE');
    checkInteger(signal, 'signal', 0, 64);
    const child = this.live.get(pid);
    if (child === undefined) throw fakeSystemError('ESRCH', 'kill');
    this.deliverSignal(child, signal, 'kill');
  }

  closeFd(fd: number): void {
    checkInteger(fd, 'fd', 0, 2147483647);
    if (!this.openFds.delete(fd)) throw fakeSystemError('EBADF', 'close');
  }

  pipe(): [number, number] {
    return [this.allocateFd(), this.allocateFd()];
  }

  forgetCgroup(path: string): boolean {
    if (typeof path !== 'string') throw argumentError('The "path" argument must be a string');
    return this.heldCgroups.delete(path);
  }

  setCloneMethodForTesting(method: CloneMethod): void {
    if (method !== 'auto' && method !== 'clone3' && method !== 'clone') {
      throw argumentError(`The "method" argument must be 'auto', 'clone3' or 'clone'`);
    }
    this.cloneMethod = method;
  }

  private deliverSignal(child: FakeChild, signal: number, _syscall: string): void {
    // A zombie (exited, not yet reaped) takes signals without effect, as in the kernel; once
    // reaped it is gone from `live` and the callers above report ESRCH / EBADF.
    if (child.exited) return;
    child.signals.push(signal);
    if (this.signalsKill && [1, 2, 9, 15].includes(signal)) this.exit(child.pid, 'killed', signal);
  }

  private allocateFd(): number {
    const fd = this.nextFd++;
    this.openFds.add(fd);
    return fd;
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    setImmediate(() => {
      this.deliveryScheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    const watcher = this.watcher;
    if (watcher === undefined || watcher.closed || this.zombies.length === 0) return;
    const batch = this.zombies.splice(0, FAKE_MAX_EXITS_PER_BATCH);
    for (const exit of batch) {
      const child = this.live.get(exit.pid);
      if (child !== undefined) {
        this.live.delete(exit.pid);
        this.openFds.delete(child.pidfd);
      }
    }
    if (this.zombies.length > 0) this.scheduleDelivery();
    watcher.onExits.call(watcher.handle, batch);
  }
}
