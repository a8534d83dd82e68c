// The one module that loads triggerd_spawn.node and declares its interface. Everything else takes
// a `NativeSpawn`, so pure tests can pass test/helpers/fake-spawn instead.
import { EXEC_STEPS, type ExecPlan, type ExecStep } from '../exec/exec-plan';
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export interface SpawnedChild {
  pid: number;
  /**
   * Owned by the addon: valid until the exit batch that reports this pid has been delivered
   * (the watcher closes it once its onExits call has returned, so while that call handles
   * earlier exits of the batch it still names the reaped process: ESRCH, never another's fd).
   * Do not use it after that; `closeFd` it to give it up earlier (the exit is still reported,
   * through SIGCHLD).
   */
  pidfd: number;
}

/** `CLD_EXITED` / `CLD_KILLED` / `CLD_DUMPED` of waitid(2). */
export type ChildExitCode = 'exited' | 'killed' | 'dumped';

export interface ChildExit {
  pid: number;
  code: ChildExitCode;
  /** The exit status for 'exited', the signal number for 'killed' and 'dumped'. */
  status: number;
  /** Spawned by this environment's spawn(); false for orphans reparented to us (subreaper). */
  ownChild: boolean;
}

/** The handle watchChildren() returns; `this` inside onExits. */
export interface ChildWatcher {
  /** Stop watching (idempotent); zombies stay until the next watcher reaps them. */
  close(): void;
  /** Let the process exit while watching (uv_unref), like `server.unref()`. */
  unref(): void;
  ref(): void;
}

/** A pre-exec failure: "failed at step CHDIR: No such file or directory". */
export interface SpawnError extends NativeSystemError {
  /** Absent when the clone itself failed (EAGAIN, ENOMEM). */
  step?: ExecStep;
}

/** 'clone3-no-rejoin' (tests): a child killed at its birth in its cgroup is not cloned again. */
export type CloneMethod = 'auto' | 'clone3' | 'clone' | 'clone3-no-rejoin';

/**
 * prepare()'s result: a plan read and checked, cloned later. The inotify addon's armCall can make
 * the clone from its wake-up (native code, no JavaScript between the read and the clone);
 * launch() hands the child over, cloning first if nothing did yet.
 */
export interface PreparedLaunch {
  /** Whether the clone was made (by the inotify addon, or by launch()); parked: the go byte written. */
  readonly launched: boolean;
  /** The child cloned already and parked (prepare()'s `park`), or 0. */
  readonly parkedPid: number;
  /**
   * The child, as spawn() returns it, or spawn()'s SpawnError; the fds (/dev/null, the cgroup)
   * are bound at the clone. Once only: ERR_INVALID_STATE after it or after release().
   * `yieldAfter` as for spawn(), when the clone is made here (a native launch always yields).
   */
  launch(options?: { yieldAfter?: boolean }): SpawnedChild;
  /** Frees the plan unused (idempotent). A child cloned but never taken by launch() is killed. */
  release(): void;
}

export interface NativeSpawn {
  /** The step names in the native order; the loader checks them against EXEC_STEPS. */
  readonly execSteps: readonly string[];
  /**
   * vfork-style clone (clone3 with CLONE_VM|CLONE_VFORK|CLONE_PIDFD, CLONE_INTO_CGROUP when
   * `plan.cgroup` is set) and exec of the plan. Returns once the child has exec'd. Throws a
   * TypeError for a malformed plan and a SpawnError for a failure before exec (the failed child is
   * reaped before it throws, so no exit is reported for it).
   *
   * `yieldAfter`: sched_yield(2) before returning. The exec wakes the caller, which preempts the
   * child on this CPU; a caller with much to do before it waits again (an armed path start's
   * bookkeeping) lets the child run first.
   */
  spawn(plan: ExecPlan, options?: { yieldAfter?: boolean }): SpawnedChild;
  /**
   * The plan read and checked now (TypeError as spawn()), for one clone later (PreparedLaunch).
   * The plan's own fds must stay open until it is launched or released.
   *
   * `park`: the child is cloned now instead, makes the plan's whole set-up (session, group, fds,
   * limits) and waits; the launch is one write, after which it execs the plan's program (an exec
   * failure is then its exit status 203, as under systemd). It shares the daemon's memory until
   * that exec (so its exec tears down no address space of its own), and is shown as
   * `triggerd-park`. Throws spawn()'s SpawnError when it fails before it is parked, and EPERM for
   * a plan that changes user or groups. Its exit before the launch is reported like any child's.
   */
  prepare(plan: ExecPlan, options?: { park?: boolean }): PreparedLaunch;
  /**
   * spawn() with the clone on a thread of libuv's pool: only that thread waits for the child's
   * exec, the event loop goes on. `done` is called on a later turn (never inside this call) with
   * the child or the SpawnError; the fds in the plan must stay open until then. The child is
   * cloned without an exit signal, so its exit is reported (through its pidfd, which the addon
   * keeps until then even after closeFd) only after `done` has delivered its pid. Throws a
   * TypeError for a malformed plan, and a system error when /dev/null or the cgroup cannot be opened.
   * `handOver`: fds of the caller's that the addon closes (on the pool thread) as soon as the
   * child has its copies, or the spawn failed; the caller must not use or close them after this
   * call returned (unless it threw).
   */
  spawnAsync(
    plan: ExecPlan,
    done: (err: SpawnError | null, child?: SpawnedChild) => void,
    handOver?: readonly number[],
  ): void;
  /** PR_SET_CHILD_SUBREAPER: orphans of our descendants are reparented to us. */
  setSubreaper(on: boolean): void;
  isSubreaper(): boolean;
  /**
   * Reaps every child of the process (own children via their pidfds, orphans via SIGCHLD) and
   * calls `onExits` once per wake-up with at most 1024 exits. One watcher per process (throws
   * ERR_WATCHER_ACTIVE otherwise); do not use node:child_process while it runs, its children
   * would be reaped here.
   */
  watchChildren(onExits: (this: ChildWatcher, exits: ChildExit[]) => void): ChildWatcher;
  /** pidfd_send_signal(2); ESRCH once the process has exited. */
  pidfdSendSignal(pidfd: number, signal: number): void;
  /** kill(2): a pid, or a process group as -pgid (0 and -1 are refused); ESRCH as a system error. */
  kill(pid: number, signal: number): void;
  closeFd(fd: number): void;
  /**
   * pipe2(O_CLOEXEC): [readFd, writeFd]. The read end is O_NONBLOCK (hand it to
   * `new net.Socket({ fd })`); the write end stays blocking, as a service expects its stdout.
   */
  pipe(): [number, number];
  /**
   * spawn() keeps the cgroup directories it starts children in open (O_PATH, close-on-exec, at
   * most 128, the least recently used closed first); this closes the one held for `path`. Call it
   * when removing the cgroup: a held fd keeps the removed group around as a dying cgroup. A
   * group removed and made again at the same path still works without it (spawn() retries once
   * with the path opened afresh when the held fd fails). Returns whether one was held.
   * spawn() keeps one /dev/null fd open the same way; spawnAsync() opens both per call.
   */
  forgetCgroup(path: string): boolean;
  /** Tests only: force the glibc clone() fallback (no CLONE_INTO_CGROUP) or clone3. */
  setCloneMethodForTesting(method: CloneMethod): void;
}

const ADDON_FILE = 'triggerd_spawn.node';
const METHODS = [
  'spawn',
  'prepare',
  'spawnAsync',
  'setSubreaper',
  'isSubreaper',
  'watchChildren',
  'pidfdSendSignal',
  'kill',
  'closeFd',
  'pipe',
  'forgetCgroup',
  'setCloneMethodForTesting',
] as const;

let cached: NativeSpawn | undefined;

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNativeSpawn(): NativeSpawn {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  cached = checkShape(loaded, file);
  return cached;
}

function checkShape(loaded: unknown, file: string): NativeSpawn {
  if (typeof loaded !== 'object' || loaded === null) {
    throw new Error(`${file} is not triggerd's spawn addon; rebuild it`);
  }
  const missing = METHODS.filter((name) => typeof Reflect.get(loaded, name) !== 'function');
  if (missing.length > 0) {
    throw new Error(`${file} is not triggerd's spawn addon (${missing.join(', ')} missing); rebuild it`);
  }
  const steps: unknown = Reflect.get(loaded, 'execSteps');
  if (!Array.isArray(steps) || steps.join(',') !== EXEC_STEPS.join(',')) {
    throw new Error(
      `${file} reports exec steps ${JSON.stringify(steps)}, expected ${JSON.stringify(EXEC_STEPS)}; rebuild it`,
    );
  }
  // The shape is checked above; the signatures are the C++ side's contract with this interface.
  return loaded as NativeSpawn;
}
