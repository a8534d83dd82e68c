// .service units: systemd's service state machine. Processes are started and signalled through
// an injected ServiceHost (the native spawn layer in the daemon, a fake on virtual time in
// tests); process exits, sd_notify messages and timer expiries come in as method calls. Every
// transition goes through setState(), the one place that has side effects on the outside world
// (timers, job completion, notifying the manager).
import { readFileSync } from 'node:fs';
import type { Logger } from '../util/logger';
import type {
  ActiveState,
  DeserializeContext,
  JobEnd,
  JobOutcome,
  LoadState,
  SerializeContext,
  SerializedUnit,
  UnitInstance,
} from './unit-type';
import { isRecord, numberField, oneOf, pidField, stringField } from '../core/daemon-state';
import type {
  ConditionSpec,
  ExecCommand,
  LoadedUnitFile,
  NotifyAccess,
  ServiceSection,
} from './config-types';

export type ServiceState =
  | 'dead'
  | 'condition'
  | 'start-pre'
  | 'start'
  | 'start-post'
  | 'running'
  | 'exited'
  | 'reload'
  | 'reload-signal'
  | 'reload-notify'
  | 'stop'
  | 'stop-watchdog'
  | 'stop-sigterm'
  | 'stop-sigkill'
  | 'stop-post'
  | 'final-sigterm'
  | 'final-sigkill'
  | 'failed'
  | 'auto-restart';

/** Why a service ended up where it is (systemd's Result=). */
export type ServiceResult =
  | 'success'
  | 'protocol'
  | 'timeout'
  | 'exit-code'
  | 'signal'
  | 'core-dump'
  | 'watchdog'
  | 'start-limit-hit'
  | 'resources';

export type { JobEnd, JobOutcome };

export interface ProcessExit {
  pid: number;
  code: 'exited' | 'killed' | 'dumped';
  /** Exit status, or the signal number for killed/dumped. */
  status: number;
  /**
   * An adopted process (after a crash of the daemon) that ended and was reaped by its new parent:
   * `status` is UNKNOWN_EXIT_STATUS, not what it said.
   */
  statusUnknown?: boolean;
}

export interface SpawnFailure {
  /** Step of the exec plan that failed ('CHDIR', 'EXEC', 'USER', ...), or 'PLAN' when it could not be built. */
  step: string;
  code: string;
  message: string;
}

export type SpawnResult = { ok: true; pid: number } | { ok: false; failure: SpawnFailure };

/** The typed notify fields the service acts on (parsed and authorized before they get here). */
export interface ServiceNotify {
  senderPid: number;
  ready?: boolean;
  reloading?: boolean;
  stopping?: boolean;
  status?: string;
  errno?: number;
  mainPid?: number;
  watchdog?: 'ping' | 'trigger';
  watchdogUsec?: number;
  extendTimeoutUsec?: number;
  monotonicUsec?: number;
  /** FDSTORE=1: the fds sent along, already taken from the datagram (this unit owns them now). */
  storeFds?: number[];
  /** FDSTOREREMOVE=1 */
  fdStoreRemove?: boolean;
  fdName?: string;
}

/** One fd kept for the service across restarts (sd_notify FDSTORE=1), or a socket fd it gets. */
export interface StoredFd {
  fd: number;
  name: string;
  /**
   * A socket-activation fd: the service's NonBlocking= sets or clears O_NONBLOCK on it, as
   * systemd does (the fd store's fds keep their flags).
   */
  socket?: boolean;
}

/** Everything a service needs from the world. */
export interface ServiceHost {
  /** `passFds` become fds 3, 4, ... of the child with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID. */
  spawn(
    command: ExecCommand,
    role: 'main' | 'control',
    extraEnv: Record<string, string>,
    passFds?: readonly StoredFd[],
  ): SpawnResult;
  /**
   * spawn() without waiting on the daemon's thread for the child to reach exec: `done` gets what
   * spawn() would have returned, on a later turn (never inside this call), and no exit of the
   * process is reported before it. Returns undefined then; or the result itself, without calling
   * `done`, when the process was there already (an armed path start's, path-armed-start.ts).
   * Optional; used for main processes nothing needs the pid of before it is known (see
   * ServiceUnit.spawnsLater).
   */
  spawnLater?(
    command: ExecCommand,
    role: 'main' | 'control',
    extraEnv: Record<string, string>,
    passFds: readonly StoredFd[],
    done: (result: SpawnResult) => void,
  ): SpawnResult | undefined;
  closeFd(fd: number): void;
  /**
   * The socket fds the main process gets before the fd store (LISTEN_FDS): the listening fds of
   * the socket units that trigger this service and of its Sockets=, or an Accept=yes instance's
   * connection (named "connection").
   */
  socketFds?(): StoredFd[];
  /** Send a signal to one process (by pidfd where the host has one). */
  signal(pid: number, signal: number): void;
  /** Signal every process of the unit except `except`; returns how many were signalled. */
  signalGroup(signal: number, except: ReadonlySet<number>): number;
  /** Pids still in the unit's cgroup (or process group). */
  groupPids(): number[];
  /** Whether `pid` is the unit's next job, parked by an armed path start (status names it so). */
  isParked?(pid: number): boolean;
  /** The unit's cgroup directory, for `status`; undefined when processes are tracked by session. */
  controlGroup(): string | undefined;
  readPidFile(path: string): number | undefined;
  conditionHolds(condition: ConditionSpec): boolean;
  setTimer(ms: number, fn: () => void): () => void;
  /** Monotonic ms. */
  now(): number;
  /** The pending job on this unit is over. */
  jobFinished(end: JobEnd): void;
  /** The unit changed state (the manager logs, triggers OnFailure/OnSuccess, serializes). */
  stateChanged(from: ServiceState, to: ServiceState, result: ServiceResult): void;
  /** Restart= decided to start again: the manager enqueues a restart job. */
  requestRestart(): void;
  log: Logger;
}

const SIGKILL = 9;
const SIGABRT = 6;
const SIGHUP = 1;
const SIGCONT = 18;

/** The states in which a job step of each type is still going on (resumeJob after a re-exec). */
const RESUMABLE: Record<'start' | 'stop' | 'reload', readonly ServiceState[]> = {
  start: ['condition', 'start-pre', 'start', 'start-post'],
  stop: [
    'stop',
    'stop-watchdog',
    'stop-sigterm',
    'stop-sigkill',
    'stop-post',
    'final-sigterm',
    'final-sigkill',
  ],
  reload: ['reload', 'reload-signal', 'reload-notify'],
};

/** Types whose start is over once the main process has exec'd (with a vfork-style spawn, at once). */
function startsAtExec(type: ServiceSection['type']): boolean {
  return type === 'simple' || type === 'exec' || type === 'idle' || type === 'dbus';
}

const ACTIVE: Record<ServiceState, ActiveState> = {
  dead: 'inactive',
  condition: 'activating',
  'start-pre': 'activating',
  start: 'activating',
  'start-post': 'activating',
  running: 'active',
  exited: 'active',
  reload: 'reloading',
  'reload-signal': 'reloading',
  'reload-notify': 'reloading',
  stop: 'deactivating',
  'stop-watchdog': 'deactivating',
  'stop-sigterm': 'deactivating',
  'stop-sigkill': 'deactivating',
  'stop-post': 'deactivating',
  'final-sigterm': 'deactivating',
  'final-sigkill': 'deactivating',
  failed: 'failed',
  'auto-restart': 'activating',
};

const SERVICE_STATES = Object.keys(ACTIVE) as ServiceState[];
/** Phases whose control process is serialized and adopted (src/core/daemon-state.ts). */
const CONTROL_PHASES: readonly Phase[] = [
  'condition',
  'start-pre',
  'start',
  'start-post',
  'reload',
  'stop',
  'stop-post',
];
/** States in which a control process of one of those phases runs (each such state is named after its phase). */
const CONTROL_STATES: readonly ServiceState[] = CONTROL_PHASES;
const SERVICE_RESULTS: readonly ServiceResult[] = [
  'success',
  'protocol',
  'timeout',
  'exit-code',
  'signal',
  'core-dump',
  'watchdog',
  'start-limit-hit',
  'resources',
];

/**
 * The exit of a main process that ended while no daemon watched it and that nobody can report
 * any more (reaped by its new parent after a crash of ours): counted as a failure.
 */
export const UNKNOWN_EXIT_STATUS = 255;

/** The phase whose commands run as control (or, for oneshot ExecStart, main) processes. */
type Phase = 'condition' | 'start-pre' | 'start' | 'start-post' | 'reload' | 'stop' | 'stop-post';

export class ServiceUnit implements UnitInstance {
  readonly suffix = '.service';
  state: ServiceState = 'dead';
  result: ServiceResult = 'success';
  reloadResult: ServiceResult = 'success';
  mainPid: number | undefined;
  controlPid: number | undefined;
  statusText: string | undefined;
  /** Exit of the main process, kept for `status` and Restart= decisions. */
  mainExit: ProcessExit | undefined;
  /** Wall-clock of the last state change. */
  since: number;
  nRestarts = 0;
  readonly load: LoadState;
  private pendingJob: 'start' | 'stop' | 'reload' | undefined;
  private queue: ExecCommand[] = [];
  private currentCommand: ExecCommand | undefined;
  private phase: Phase | undefined;
  private cancelTimer: (() => void) | undefined;
  private cancelWatchdog: (() => void) | undefined;
  private watchdogMs: number;
  private startTimes: number[] = [];
  /** Stop was asked for (job or STOPPING=1 + exit): no auto-restart. */
  private stopRequested = false;
  private ready = false;
  private reloadStartedUsec = 0;
  /** The fd store (FileDescriptorStoreMax=): kept across restarts, flushed on a real stop. */
  readonly fdStore: StoredFd[] = [];
  /** The current stop is half of a restart (job or Restart=): keep the fd store. */
  private restarting = false;
  /**
   * Accept=yes: the connection this instance serves (systemd's socket_fd), and REMOTE_ADDR/
   * REMOTE_PORT. The main process gets it; the daemon's copy is closed right after that spawn
   * (by the spawn layer itself with spawnLater, which sets `fd` to -1 when it takes it).
   */
  connection: { fd: number; env: Record<string, string> } | undefined;
  /** TRIGGER_UNIT=, TRIGGER_PATH= & co. of the unit that triggered this start (until its job is done). */
  activationEnv: Record<string, string> | undefined = undefined;
  /** A per-connection instance: routine transitions log at debug, not info. */
  logQuietly = false;
  /** The main process is being spawned off the event loop (spawnLater): its pid is not known yet. */
  private mainSpawnPending = false;

  constructor(
    readonly name: string,
    readonly file: LoadedUnitFile,
    private readonly host: ServiceHost,
  ) {
    this.load = file.loadState;
    this.since = Date.now();
    this.watchdogMs = this.config.watchdogMs;
  }

  get config(): ServiceSection {
    if (this.file.service === undefined) throw new Error(`${this.name}: no [Service] configuration`);
    return this.file.service;
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.file.unit.description ?? this.name;
  }

  /** NotifyAccess: explicit, or raised to 'main' by Type=notify/notify-reload, WatchdogSec=, an fd store. */
  notifyAccess(): NotifyAccess {
    const c = this.config;
    if (c.notifyAccess !== undefined) return c.notifyAccess;
    if (
      c.type === 'notify' ||
      c.type === 'notify-reload' ||
      c.watchdogMs > 0 ||
      c.fileDescriptorStoreMax > 0
    ) {
      return 'main';
    }
    return 'none';
  }

  canReload(): boolean {
    return this.config.execReload.length > 0 || this.config.type === 'notify-reload';
  }

  /** The processes that count as this unit's, for NotifyAccess=all and MAINPID= checks. */
  cgroupPids(): ReadonlySet<number> {
    return new Set(this.host.groupPids());
  }

  // ---- jobs -----------------------------------------------------------------------------------

  start(): JobOutcome {
    switch (this.state) {
      case 'running':
      case 'exited':
        return 'done';
      case 'condition':
      case 'start-pre':
      case 'start':
      case 'start-post':
      case 'auto-restart':
        if (this.state === 'auto-restart') break;
        this.pendingJob = 'start';
        return 'pending';
      case 'stop':
      case 'stop-watchdog':
      case 'stop-sigterm':
      case 'stop-sigkill':
      case 'stop-post':
      case 'final-sigterm':
      case 'final-sigkill':
        // systemd waits for the stop to finish; the job engine retries after the stop job.
        return { failed: 'failed', reason: `${this.name} is stopping` };
      default:
        break;
    }
    if (this.load !== 'loaded') return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    if (!this.checkStartLimit()) {
      this.result = 'start-limit-hit';
      this.setState('failed');
      return {
        failed: 'failed',
        reason: `${this.name}: start request repeated too quickly (start-limit-hit)`,
      };
    }
    const assertFailed = this.failedCondition('assert');
    if (assertFailed !== undefined) return { failed: 'assert', reason: `assertion failed: ${assertFailed}` };
    const conditionFailed = this.failedCondition('condition');
    if (conditionFailed !== undefined) {
      this.host.log.info(`condition not met, skipping start: ${conditionFailed}`);
      return 'done';
    }
    this.pendingJob = 'start';
    this.result = 'success';
    this.reloadResult = 'success';
    this.mainExit = undefined;
    this.stopRequested = false;
    this.ready = false;
    this.statusText = undefined;
    return this.synchronously(() => this.runPhase('condition', this.config.execCondition));
  }

  stop(options: { restart?: boolean } = {}): JobOutcome {
    this.stopRequested = true;
    this.restarting = options.restart === true;
    switch (this.state) {
      case 'dead':
      case 'failed':
        return 'done';
      case 'auto-restart':
        this.setState('dead');
        return 'done';
      case 'stop':
      case 'stop-watchdog':
      case 'stop-sigterm':
      case 'stop-sigkill':
      case 'stop-post':
      case 'final-sigterm':
      case 'final-sigkill':
        this.pendingJob = 'stop';
        return 'pending';
      default:
        break;
    }
    // A start in progress is superseded by the stop. Its job is over already: the queue replaced
    // it with this stop, so nothing is reported for it (reported, the 'canceled' went to the job
    // running now, this stop, wherever the engine no longer knew the start's job id).
    if (this.pendingJob === 'start' || this.pendingJob === 'reload') {
      this.lastOutcome = { failed: 'canceled', reason: `${this.name}: ${this.result}` };
      this.pendingJob = undefined;
    }
    this.pendingJob = 'stop';
    // The main process is on its way: stop it once its pid is known (mainSpawned).
    if (this.mainSpawnPending) return 'pending';
    return this.synchronously(() => this.enterStop());
  }

  reload(): JobOutcome {
    if (this.state !== 'running' && this.state !== 'exited') {
      return { failed: 'failed', reason: `${this.name} is not active, cannot reload` };
    }
    if (!this.canReload()) return { failed: 'failed', reason: `${this.name} has no ExecReload=` };
    this.pendingJob = 'reload';
    this.reloadResult = 'success';
    if (this.config.type === 'notify-reload' && this.config.execReload.length === 0) {
      if (this.mainPid === undefined) return { failed: 'failed', reason: 'no main process to signal' };
      this.reloadStartedUsec = this.host.now() * 1000;
      this.host.signal(this.mainPid, this.config.reloadSignal);
      this.setState('reload-signal');
      return 'pending';
    }
    return this.synchronously(() => this.runPhase('reload', this.config.execReload));
  }

  // ---- events from the outside -------------------------------------------------------------------

  /** A process of this unit exited (main, control, or another one in its group). */
  onExit(exit: ProcessExit): void {
    if (exit.pid === this.controlPid) {
      this.controlPid = undefined;
      this.onControlExit(exit);
    } else if (exit.pid === this.mainPid) {
      this.mainPid = undefined;
      this.mainExit = exit;
      this.onMainExit(exit);
    } else if (this.isStopping() && this.host.groupPids().length === 0) {
      this.onGroupEmpty();
    }
  }

  onNotify(n: ServiceNotify): void {
    if (n.storeFds !== undefined && n.storeFds.length > 0) this.storeFds(n.storeFds, n.fdName ?? 'stored');
    if (n.fdStoreRemove === true && n.fdName !== undefined) this.removeStoredFds(n.fdName);
    if (n.status !== undefined) this.statusText = n.status;
    if (n.mainPid !== undefined && n.mainPid > 0 && n.mainPid !== this.mainPid) {
      this.host.log.info({ pid: n.mainPid }, 'main pid changed by MAINPID=');
      this.mainPid = n.mainPid;
    }
    if (n.extendTimeoutUsec !== undefined && this.cancelTimer !== undefined) {
      this.armTimer(Math.ceil(n.extendTimeoutUsec / 1000), () => this.onTimeout());
    }
    if (n.watchdogUsec !== undefined) {
      this.watchdogMs = Math.ceil(n.watchdogUsec / 1000);
      this.armWatchdog();
    }
    if (n.watchdog === 'ping') this.armWatchdog();
    if (n.watchdog === 'trigger') this.onWatchdogTimeout();
    // systemd's priority when several come together: STOPPING > READY > RELOADING.
    if (n.stopping === true) {
      this.stopRequested = true;
      if (this.state === 'running' || this.state === 'reload-notify' || this.state === 'reload-signal') {
        this.host.log.info('service announced STOPPING=1');
      }
      return;
    }
    if (n.ready === true) {
      this.ready = true;
      if (this.state === 'start' && (this.config.type === 'notify' || this.config.type === 'notify-reload')) {
        this.runPhase('start-post', this.config.execStartPost);
      } else if (this.state === 'reload-notify' || this.state === 'reload-signal') {
        this.setState('running');
        this.finishJob('done');
      }
      return;
    }
    if (n.reloading === true) {
      // RELOADING=1 without MONOTONIC_USEC= is accepted; the notify router warns once per unit.
      if (this.state === 'reload-signal') {
        if (n.monotonicUsec === undefined || n.monotonicUsec >= this.reloadStartedUsec)
          this.setState('reload-notify');
      } else if (this.state === 'running') {
        // A reload the service started on its own: wait for its READY=1.
        this.setState('reload-notify');
      }
    }
  }

  // ---- the machine ------------------------------------------------------------------------------

  private lastOutcome: JobOutcome = 'done';
  /** Inside start/stop/reload: a job that ends right away is answered by the return value, not jobFinished. */
  private inSyncCall = false;

  private synchronously(fn: () => void): JobOutcome {
    this.inSyncCall = true;
    try {
      fn();
    } finally {
      this.inSyncCall = false;
    }
    return this.pendingJob === undefined ? this.lastOutcome : 'pending';
  }

  private runPhase(phase: Phase, commands: readonly ExecCommand[]): void {
    this.phase = phase;
    this.queue = [...commands];
    const state: ServiceState =
      phase === 'stop-post' ? 'stop-post' : phase === 'reload' ? 'reload' : phase === 'stop' ? 'stop' : phase;
    if (phase === 'start') return this.enterStart();
    if (this.queue.length === 0) return this.phaseDone(phase);
    this.setState(state);
    this.runNextControl();
  }

  private runNextControl(): void {
    const cmd = this.queue.shift();
    if (cmd === undefined) return this.phaseDone(this.phase ?? 'start');
    this.currentCommand = cmd;
    const spawned = this.host.spawn(cmd, 'control', this.execEnv());
    if (!spawned.ok) {
      this.logSpawnFailure(cmd, spawned.failure);
      return this.onControlExit({ pid: -1, code: 'exited', status: 203 });
    }
    this.controlPid = spawned.pid;
  }

  private enterStart(): void {
    const c = this.config;
    if (c.execStart.length === 0) {
      // Type=oneshot with RemainAfterExit and no ExecStart is a valid "state-only" unit.
      this.setState('start');
      return this.phaseDone('start');
    }
    if (c.type === 'oneshot') {
      this.queue = [...c.execStart];
      this.setState('start');
      this.armTimer(c.timeoutStartMs, () => this.onTimeout());
      return this.runNextOneshot();
    }
    const cmd = c.execStart[0] as ExecCommand;
    this.currentCommand = cmd;
    const socketFds = this.host.socketFds?.() ?? [];
    const passFds = socketFds.length > 0 ? [...socketFds, ...this.fdStore] : this.fdStore;
    if (startsAtExec(c.type) && this.spawnsLater(passFds)) {
      this.setState('start');
      return this.spawnMainLater(cmd, passFds);
    }
    const spawned = this.host.spawn(cmd, c.type === 'forking' ? 'control' : 'main', this.execEnv(), passFds);
    this.releaseConnection();
    if (!spawned.ok) {
      this.logSpawnFailure(cmd, spawned.failure);
      this.result = 'exit-code';
      this.mainExit = { pid: -1, code: 'exited', status: 203 };
      return this.enterStopSigterm();
    }
    if (c.type === 'forking') this.controlPid = spawned.pid;
    else this.mainPid = spawned.pid;
    this.setState('start');
    if (c.type === 'simple' || c.type === 'exec' || c.type === 'idle' || c.type === 'dbus') {
      // With a vfork-style spawn, exec has succeeded when spawn returns: simple and exec agree.
      return this.runPhase('start-post', c.execStartPost);
    }
    this.armTimer(c.timeoutStartMs, () => this.onTimeout());
  }

  /**
   * Whether the main process is spawned off the event loop (the host's spawnLater), so that the
   * daemon's thread does not wait for each child's exec (under load, the wait for a new session's
   * child to get a CPU: 4 ms median, up to 40 ms, in bench/load). Only where nothing can need the
   * pid before it is known: an Accept=yes instance, or a process with no fds passed on (whose
   * numbers could be closed and reused before the clone) and no notify access (a message sent
   * right after the exec could come before the pid). Type=notify/forking/oneshot's start waits
   * for the process anyway; for simple and exec the start completes with the answer, as systemd's
   * does once it has forked.
   */
  private spawnsLater(passFds: readonly StoredFd[]): boolean {
    if (this.host.spawnLater === undefined) return false;
    if (this.connection !== undefined) return true;
    return passFds.length === 0 && this.notifyAccess() === 'none';
  }

  /** The main process through spawnLater; mainSpawned() gets the answer, now or on a later turn. */
  private spawnMainLater(cmd: ExecCommand, passFds: readonly StoredFd[]): void {
    this.mainSpawnPending = true;
    const now = this.host.spawnLater?.(cmd, 'main', this.execEnv(), passFds, (r) => this.mainSpawned(cmd, r));
    if (now !== undefined) this.mainSpawned(cmd, now);
  }

  /** spawnLater's answer for the main process (state 'start' meanwhile). */
  private mainSpawned(cmd: ExecCommand, spawned: SpawnResult): void {
    this.mainSpawnPending = false;
    this.releaseConnection();
    const oneshot = this.config.type === 'oneshot';
    if (!spawned.ok) {
      this.logSpawnFailure(cmd, spawned.failure);
      if (oneshot && this.pendingJob !== 'stop')
        return this.onMainExit({ pid: -1, code: 'exited', status: 203 });
      this.result = 'exit-code';
      this.mainExit = { pid: -1, code: 'exited', status: 203 };
      return this.enterStopSigterm();
    }
    this.mainPid = spawned.pid;
    // A stop that came while the pid was unknown (stop() answered 'pending').
    if (this.pendingJob === 'stop') return this.enterStop();
    if (!oneshot) this.runPhase('start-post', this.config.execStartPost);
  }

  private runNextOneshot(): void {
    const cmd = this.queue.shift();
    if (cmd === undefined) return this.phaseDone('start');
    this.currentCommand = cmd;
    if (this.spawnsLater([])) return this.spawnMainLater(cmd, []);
    const spawned = this.host.spawn(cmd, 'main', this.execEnv());
    if (!spawned.ok) {
      this.logSpawnFailure(cmd, spawned.failure);
      return this.onMainExit({ pid: -1, code: 'exited', status: 203 });
    }
    this.mainPid = spawned.pid;
  }

  private phaseDone(phase: Phase): void {
    this.currentCommand = undefined;
    switch (phase) {
      case 'condition':
        return this.runPhase('start-pre', this.config.execStartPre);
      case 'start-pre':
        return this.runPhase('start', this.config.execStart);
      case 'start':
        if (this.config.type === 'oneshot') {
          this.clearTimer();
          if (this.config.execStartPost.length > 0)
            return this.runPhase('start-post', this.config.execStartPost);
          return this.enterRunningOrExited();
        }
        return this.runPhase('start-post', this.config.execStartPost);
      case 'start-post':
        return this.enterRunningOrExited();
      case 'reload':
        this.setState(
          this.mainPid !== undefined || this.config.remainAfterExit ? this.runningState() : 'running',
        );
        return this.finishJob(this.reloadResult === 'success' ? 'done' : 'failed');
      case 'stop':
        return this.enterStopSigterm();
      case 'stop-post':
        return this.enterFinalSigterm();
    }
  }

  private runningState(): ServiceState {
    return this.mainPid !== undefined ? 'running' : 'exited';
  }

  private enterRunningOrExited(): void {
    this.clearTimer();
    const c = this.config;
    if (this.mainPid !== undefined) {
      this.setState('running');
      this.armWatchdog();
      return this.finishJob('done');
    }
    if (c.remainAfterExit) {
      this.setState('exited');
      return this.finishJob('done');
    }
    if (c.type === 'oneshot' || this.mainExit !== undefined) {
      // Done and gone (oneshot without RemainAfterExit, or a main process that already exited).
      this.finishJob('done');
      return this.enterStop();
    }
    this.setState('running');
    this.finishJob('done');
  }

  private onControlExit(exit: ProcessExit): void {
    const cmd = this.currentCommand;
    // An adopted control process whose status nobody can tell any more: the unit goes on as if
    // it succeeded (failing a start that probably worked is the worse guess), with a warning.
    if (exit.statusUnknown === true)
      this.host.log.warn(
        { pid: exit.pid, role: 'control' },
        `control process ${exit.pid}${cmd ? ` (${cmd.path})` : ''} ended while no daemon watched it; ` +
          'its exit status is unknown: taken as success',
      );
    const ok = this.exitIsSuccess(exit) || cmd?.ignoreFailure === true || exit.statusUnknown === true;
    if (!ok) this.logExit(cmd, exit, 'control');
    switch (this.state) {
      case 'condition':
        if (exit.code === 'exited' && exit.status >= 1 && exit.status <= 254) {
          this.host.log.info('ExecCondition= exited non-zero: skipping start');
          this.setState('dead');
          return this.finishJob('skipped');
        }
        if (!ok) return this.failAndStop(exit);
        return this.runNextControl();
      case 'start-pre':
      case 'start-post':
        if (!ok) return this.failAndStop(exit);
        return this.runNextControl();
      case 'start':
        // Type=forking: the parent exited; the daemon is its child.
        if (!ok) return this.failAndStop(exit);
        return this.forkingParentExited();
      case 'reload':
        if (!ok) this.reloadResult = resultOf(exit);
        if (!ok) return this.phaseDone('reload');
        return this.runNextControl();
      case 'stop':
        return this.runNextControl();
      case 'stop-sigterm':
      case 'stop-sigkill':
        if (this.mainPid === undefined && this.host.groupPids().length === 0) return this.enterStopPost();
        return;
      case 'stop-post':
        return this.runNextControl();
      case 'final-sigterm':
      case 'final-sigkill':
        if (this.host.groupPids().length === 0) return this.enterDeadOrFailed();
        return;
      default:
        return;
    }
  }

  private forkingParentExited(): void {
    const c = this.config;
    let pid: number | undefined;
    if (c.pidFile !== undefined) pid = this.host.readPidFile(c.pidFile);
    if (pid === undefined && c.guessMainPID) {
      const left = this.host.groupPids();
      if (left.length === 1) pid = left[0];
    }
    if (pid === undefined && c.pidFile !== undefined) {
      this.host.log.error(`PID file ${c.pidFile} not readable after start`);
      this.result = 'protocol';
      return this.enterStopSigterm();
    }
    this.mainPid = pid;
    if (pid === undefined) this.host.log.warn('could not determine the main pid; tracking the group');
    this.runPhase('start-post', c.execStartPost);
  }

  private onMainExit(exit: ProcessExit): void {
    const c = this.config;
    const ok = this.exitIsSuccess(exit) || this.currentCommand?.ignoreFailure === true;
    if (c.type === 'oneshot' && this.state === 'start') {
      if (!ok) {
        this.logExit(this.currentCommand, exit, 'main');
        return this.failAndStop(exit);
      }
      return this.runNextOneshot();
    }
    if (!ok) {
      this.logExit(this.currentCommand, exit, 'main');
      if (this.result === 'success') this.result = resultOf(exit);
    } else {
      this.host.log[this.logQuietly ? 'debug' : 'info'](
        { pid: exit.pid },
        'main process exited successfully',
      );
    }
    switch (this.state) {
      case 'start':
        // notify: exited before READY=1.
        if (ok && (c.type === 'notify' || c.type === 'notify-reload')) {
          this.result = 'protocol';
          this.host.log.error('main process exited before sending READY=1');
        }
        return this.enterStopSigterm();
      case 'start-post':
      case 'reload':
        // Let the control process finish; the unit ends up exited or stops afterwards.
        return;
      case 'running':
      case 'reload-signal':
      case 'reload-notify':
        if (ok && c.remainAfterExit) {
          this.setState('exited');
          return;
        }
        return this.enterStop();
      case 'stop':
        return;
      case 'stop-sigterm':
      case 'stop-sigkill':
      case 'stop-watchdog':
        if (this.controlPid === undefined) return this.enterStopPost();
        return;
      default:
        return;
    }
  }

  private failAndStop(exit: ProcessExit): void {
    if (this.result === 'success') this.result = resultOf(exit);
    this.enterStopSigterm();
  }

  /** Run ExecStop= (only while the main process runs, as systemd), then signal what is left. */
  private enterStop(): void {
    this.clearWatchdog();
    const c = this.config;
    if (this.mainPid !== undefined && c.execStop.length > 0) {
      this.armTimer(c.timeoutStopMs, () => this.onTimeout());
      return this.runPhase('stop', c.execStop);
    }
    if (
      c.execStop.length > 0 &&
      (this.state === 'exited' || (this.state === 'running' && c.remainAfterExit))
    ) {
      this.armTimer(c.timeoutStopMs, () => this.onTimeout());
      return this.runPhase('stop', c.execStop);
    }
    this.enterStopSigterm();
  }

  private enterStopSigterm(): void {
    this.clearWatchdog();
    const k = this.config.kill;
    if (k.killMode === 'none') return this.enterStopPost();
    const signalled = this.killProcesses(k.killSignal, k.killMode !== 'control-group');
    if (signalled === 0) return this.enterStopPost();
    this.setState('stop-sigterm');
    this.armTimer(this.config.timeoutStopMs, () => this.onTimeout());
  }

  private enterStopSigkill(): void {
    const signalled = this.killProcesses(this.config.kill.finalKillSignal, false);
    if (signalled === 0) return this.enterStopPost();
    this.setState('stop-sigkill');
    // The kernel delivers SIGKILL; if something still lingers, give up waiting after a while.
    this.armTimer(this.config.timeoutStopMs, () => this.enterStopPost());
  }

  private enterStopPost(): void {
    this.clearTimer();
    this.mainPid = undefined;
    const c = this.config;
    if (c.execStopPost.length > 0) {
      this.armTimer(c.timeoutStopMs, () => this.onTimeout());
      return this.runPhase('stop-post', c.execStopPost);
    }
    this.enterFinalSigterm();
  }

  private enterFinalSigterm(): void {
    const k = this.config.kill;
    if (k.killMode === 'control-group' || k.killMode === 'mixed') {
      const n = this.host.signalGroup(k.killSignal, new Set());
      if (n > 0) {
        this.setState('final-sigterm');
        this.armTimer(this.config.timeoutStopMs, () => {
          if (k.sendSIGKILL && this.host.signalGroup(SIGKILL, new Set()) > 0) {
            this.setState('final-sigkill');
            this.armTimer(this.config.timeoutStopMs, () => this.enterDeadOrFailed());
          } else this.enterDeadOrFailed();
        });
        return;
      }
    }
    this.enterDeadOrFailed();
  }

  private onGroupEmpty(): void {
    switch (this.state) {
      case 'stop-sigterm':
      case 'stop-sigkill':
        if (this.mainPid === undefined && this.controlPid === undefined) this.enterStopPost();
        return;
      case 'final-sigterm':
      case 'final-sigkill':
        if (this.controlPid === undefined) this.enterDeadOrFailed();
        return;
      default:
        return;
    }
  }

  private enterDeadOrFailed(): void {
    this.clearTimer();
    this.clearWatchdog();
    this.releaseConnection();
    this.controlPid = undefined;
    this.mainPid = undefined;
    const failed = this.result !== 'success';
    const restart = !this.stopRequested && this.shouldRestart();
    if (restart) {
      this.setState('auto-restart');
      this.finishJob(failed ? 'failed' : 'done');
      this.armTimer(this.config.restartSecMs, () => {
        this.nRestarts++;
        this.host.log.info({ restarts: this.nRestarts }, 'scheduled restart');
        this.setState(failed ? 'failed' : 'dead');
        this.host.requestRestart();
      });
      return;
    }
    const keep = this.restarting || this.config.fileDescriptorStorePreserve === 'yes';
    this.restarting = false;
    if (!keep) this.flushFdStore();
    this.setState(failed ? 'failed' : 'dead');
    if (this.pendingJob === 'start') this.finishJob(failed ? 'failed' : 'done');
    else this.finishJob('done');
  }

  private shouldRestart(): boolean {
    const c = this.config;
    const exit = this.mainExit;
    if (
      exit !== undefined &&
      exit.code === 'exited' &&
      c.restartPreventExitStatus.codes.includes(exit.status)
    )
      return false;
    if (
      exit !== undefined &&
      exit.code !== 'exited' &&
      c.restartPreventExitStatus.signals.includes(exit.status)
    )
      return false;
    if (exit !== undefined && exit.code === 'exited' && c.restartForceExitStatus.codes.includes(exit.status))
      return true;
    const r = this.result;
    const clean = r === 'success';
    const uncleanSignal = r === 'signal' || r === 'core-dump';
    switch (c.restart) {
      case 'no':
        return false;
      case 'always':
        return r !== 'start-limit-hit';
      case 'on-success':
        return clean;
      case 'on-failure':
        return !clean && r !== 'start-limit-hit';
      case 'on-abnormal':
        return uncleanSignal || r === 'timeout' || r === 'watchdog';
      case 'on-watchdog':
        return r === 'watchdog';
      case 'on-abort':
        return r === 'core-dump' || (exit !== undefined && exit.code === 'killed' && exit.status === SIGABRT);
    }
  }

  private onTimeout(): void {
    this.cancelTimer = undefined;
    const k = this.config.kill;
    switch (this.state) {
      case 'start':
      case 'start-pre':
      case 'start-post':
      case 'condition':
        this.host.log.error(`start operation timed out (${this.state}); terminating`);
        this.result = 'timeout';
        this.finishJob('timeout');
        return this.enterStopSigterm();
      case 'reload':
      case 'reload-signal':
      case 'reload-notify':
        this.host.log.error('reload timed out');
        this.reloadResult = 'timeout';
        this.setState(this.runningState());
        return this.finishJob('timeout');
      case 'stop':
        this.host.log.error('ExecStop= timed out; terminating');
        this.result = this.result === 'success' ? 'timeout' : this.result;
        return this.enterStopSigterm();
      case 'stop-sigterm':
      case 'stop-watchdog':
        this.host.log.warn('state stop-sigterm timed out; killing');
        if (this.result === 'success') this.result = 'timeout';
        return k.sendSIGKILL ? this.enterStopSigkill() : this.enterStopPost();
      case 'stop-post':
        this.host.log.error('ExecStopPost= timed out');
        if (this.result === 'success') this.result = 'timeout';
        return this.enterFinalSigterm();
      default:
        return;
    }
  }

  private onWatchdogTimeout(): void {
    this.host.log.error({ watchdogMs: this.watchdogMs }, 'watchdog timeout; terminating');
    this.result = 'watchdog';
    if (this.mainPid !== undefined)
      this.host.signal(this.mainPid, this.config.kill.watchdogSignal || SIGABRT);
    this.setState('stop-watchdog');
    this.armTimer(this.config.timeoutStopMs, () => this.onTimeout());
  }

  private killProcesses(signal: number, mainOnly: boolean): number {
    let n = 0;
    const except = new Set<number>();
    if (this.mainPid !== undefined) {
      this.host.signal(this.mainPid, signal);
      if (this.config.kill.sendSIGHUP) this.host.signal(this.mainPid, SIGHUP);
      this.host.signal(this.mainPid, SIGCONT);
      except.add(this.mainPid);
      n++;
    }
    if (this.controlPid !== undefined) {
      this.host.signal(this.controlPid, signal);
      except.add(this.controlPid);
      n++;
    }
    if (!mainOnly) n += this.host.signalGroup(signal, except);
    return n;
  }

  private exitIsSuccess(exit: ProcessExit): boolean {
    const s = this.config.successExitStatus;
    if (exit.code === 'exited') return exit.status === 0 || s.codes.includes(exit.status);
    // SIGTERM and friends on stop count as clean, as in systemd.
    if (this.isStopping() && exit.status === this.config.kill.killSignal) return true;
    return s.signals.includes(exit.status) || ([1, 2, 13, 15] as number[]).includes(exit.status);
  }

  private isStopping(): boolean {
    return ACTIVE[this.state] === 'deactivating';
  }

  /** The first Condition (or Assert) that fails, described; '|' ones need only one to hold. */
  private failedCondition(kind: 'condition' | 'assert'): string | undefined {
    const all = this.file.unit.conditions.filter((c) => c.kind === kind);
    for (const c of all) {
      if (!c.trigger && this.host.conditionHolds(c) === c.negate) return describeCondition(c);
    }
    const triggers = all.filter((c) => c.trigger);
    if (triggers.length > 0 && !triggers.some((c) => this.host.conditionHolds(c) !== c.negate)) {
      return `none of ${triggers.map(describeCondition).join(', ')}`;
    }
    return undefined;
  }

  resumeJob(type: 'start' | 'stop' | 'reload'): boolean {
    if (this.pendingJob !== undefined) return this.pendingJob === type;
    if (!RESUMABLE[type].includes(this.state)) return false;
    this.pendingJob = type;
    return true;
  }

  /**
   * The first process the next start would spawn, with its environment, when nothing before it
   * can go another way: no condition, no ExecCondition=/ExecStartPre=, no fds to pass, the start
   * limit not reached. An armed path start (src/core/path-armed-start.ts) clones it ahead of the
   * start, which then takes it (the spawn layer compares command and environment). Otherwise why not.
   */
  nextStartProcess(
    activationEnv: Record<string, string>,
  ): { ok: true; cmd: ExecCommand; env: Record<string, string> } | { ok: false; why: string } {
    const c = this.config;
    if (this.state !== 'dead' && this.state !== 'failed') return { ok: false, why: `it is ${this.state}` };
    if (this.load !== 'loaded') return { ok: false, why: `it is ${this.load}` };
    if (this.pendingJob !== undefined || this.mainPid !== undefined)
      return { ok: false, why: 'a job step is on' };
    if (c.type !== 'simple' && c.type !== 'exec' && c.type !== 'oneshot')
      return { ok: false, why: `Type=${c.type}` };
    const cmd = c.execStart[0];
    if (cmd === undefined) return { ok: false, why: 'no ExecStart=' };
    if (c.execCondition.length > 0 || c.execStartPre.length > 0)
      return { ok: false, why: 'ExecCondition=/ExecStartPre= run first' };
    if (this.file.unit.conditions.length > 0)
      return { ok: false, why: 'Condition*=/Assert*= are checked per start' };
    if (
      this.connection !== undefined ||
      this.fdStore.length > 0 ||
      (this.host.socketFds?.() ?? []).length > 0
    )
      return { ok: false, why: 'it is passed fds' };
    const interval = this.file.unit.startLimitIntervalMs ?? 10_000;
    const burst = this.file.unit.startLimitBurst ?? 5;
    if (interval > 0 && burst > 0) {
      const now = this.host.now();
      if (this.startTimes.filter((t) => now - t < interval).length >= burst)
        return { ok: false, why: 'its start limit is reached' };
    }
    // execEnv() as start() leaves it: result reset, no exit, no main pid yet.
    const env: Record<string, string> = { ...activationEnv };
    if (this.watchdogMs > 0 && Number.isFinite(this.watchdogMs))
      env.WATCHDOG_USEC = String(this.watchdogMs * 1000);
    env.SERVICE_RESULT = 'success';
    return { ok: true, cmd, env };
  }

  private checkStartLimit(): boolean {
    const interval = this.file.unit.startLimitIntervalMs ?? 10_000;
    const burst = this.file.unit.startLimitBurst ?? 5;
    if (interval <= 0 || burst <= 0) return true;
    const now = this.host.now();
    this.startTimes = this.startTimes.filter((t) => now - t < interval);
    if (this.startTimes.length >= burst) return false;
    this.startTimes.push(now);
    return true;
  }

  private storeFds(fds: number[], name: string): void {
    const max = this.config.fileDescriptorStoreMax;
    for (const fd of fds) {
      if (this.fdStore.length >= max) {
        this.host.log.warn(
          { fd, max },
          `fd store full (FileDescriptorStoreMax=${max}); closing fd named ${name}`,
        );
        this.host.closeFd(fd);
        continue;
      }
      this.fdStore.push({ fd, name });
    }
  }

  private removeStoredFds(name: string): void {
    for (let i = this.fdStore.length - 1; i >= 0; i--) {
      const entry = this.fdStore[i] as StoredFd;
      if (entry.name !== name) continue;
      this.host.closeFd(entry.fd);
      this.fdStore.splice(i, 1);
    }
  }

  /** Close every stored fd (the service stopped for real, FileDescriptorStorePreserve=no). */
  flushFdStore(): void {
    for (const entry of this.fdStore.splice(0)) this.host.closeFd(entry.fd);
  }

  /** The daemon's copy of an Accept=yes connection: the process has its own once spawned. */
  private releaseConnection(): void {
    const conn = this.connection;
    if (conn === undefined || conn.fd < 0) return;
    this.host.closeFd(conn.fd);
    conn.fd = -1;
  }

  /** Forget start-limit history (`triggerctl reset-failed`). */
  resetFailed(): void {
    this.startTimes = [];
    if (this.state === 'failed') {
      this.result = 'success';
      this.setState('dead');
    }
  }

  private execEnv(): Record<string, string> {
    const env: Record<string, string> = { ...this.activationEnv };
    if (this.mainPid !== undefined) env.MAINPID = String(this.mainPid);
    if (this.watchdogMs > 0 && Number.isFinite(this.watchdogMs))
      env.WATCHDOG_USEC = String(this.watchdogMs * 1000);
    env.SERVICE_RESULT = this.result;
    if (this.mainExit !== undefined) {
      env.EXIT_CODE = this.mainExit.code;
      env.EXIT_STATUS = String(this.mainExit.status);
    }
    return env;
  }

  private armTimer(ms: number, fn: () => void): void {
    this.clearTimer();
    if (!Number.isFinite(ms) || ms <= 0) return;
    this.cancelTimer = this.host.setTimer(ms, () => {
      this.cancelTimer = undefined;
      fn();
    });
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private armWatchdog(): void {
    this.clearWatchdog();
    if (this.watchdogMs <= 0 || !Number.isFinite(this.watchdogMs)) return;
    if (this.state !== 'running' && this.state !== 'start' && this.state !== 'start-post') return;
    this.cancelWatchdog = this.host.setTimer(this.watchdogMs, () => {
      this.cancelWatchdog = undefined;
      this.onWatchdogTimeout();
    });
  }

  private clearWatchdog(): void {
    this.cancelWatchdog?.();
    this.cancelWatchdog = undefined;
  }

  private finishJob(end: JobEnd): void {
    const job = this.pendingJob;
    this.lastOutcome =
      end === 'done' || end === 'skipped' ? 'done' : { failed: end, reason: `${this.name}: ${this.result}` };
    if (job === undefined) return;
    this.pendingJob = undefined;
    if (!this.inSyncCall) this.host.jobFinished(end);
  }

  private logSpawnFailure(cmd: ExecCommand, f: SpawnFailure): void {
    this.host.log.error(
      {
        step: f.step,
        code: f.code,
        command: cmd.path,
        source: `${cmd.source.file}:${cmd.source.line}`,
      },
      `failed to run ${cmd.path}: failed at step ${f.step}: ${f.message}`,
    );
  }

  private logExit(cmd: ExecCommand | undefined, exit: ProcessExit, role: 'main' | 'control'): void {
    const how =
      exit.code === 'exited'
        ? `exited with status ${exit.status}`
        : `killed by signal ${exit.status}${exit.code === 'dumped' ? ' (core dumped)' : ''}`;
    this.host.log.warn(
      { pid: exit.pid, role, code: exit.code, status: exit.status },
      `${role} process ${how}${cmd ? ` (${cmd.path})` : ''}`,
    );
  }

  /** The one place the state changes. */
  private setState(next: ServiceState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (
      ACTIVE[next] !== 'activating' &&
      ACTIVE[next] !== 'reloading' &&
      next !== 'running' &&
      next !== 'exited' &&
      ACTIVE[next] !== 'deactivating'
    ) {
      this.clearTimer();
    }
    this.host.stateChanged(from, next, this.result);
  }

  // ---- re-exec and crash recovery --------------------------------------------------------------

  /** The main process is being spawned off the event loop: a re-exec waits for its pid first. */
  get spawnPending(): boolean {
    return this.mainSpawnPending;
  }

  /** A main process that ended while no daemon watched it, delivered by catchup(). */
  private lostMainExit: ProcessExit | undefined;
  /** The same for a control process (its step's exit, status unknown). */
  private lostControlExit: ProcessExit | undefined;

  /** The commands of the phase a control process runs in. */
  private phaseCommands(phase: Phase): readonly ExecCommand[] {
    const c = this.config;
    switch (phase) {
      case 'condition':
        return c.execCondition;
      case 'start-pre':
        return c.execStartPre;
      case 'start':
        return c.execStart;
      case 'start-post':
        return c.execStartPost;
      case 'reload':
        return c.execReload;
      case 'stop':
        return c.execStop;
      case 'stop-post':
        return c.execStopPost;
    }
  }

  /** The running control process, its phase and which of the phase's commands it is. */
  private serializeControl(ctx: SerializeContext): SerializedUnit | undefined {
    const pid = this.controlPid;
    const phase = this.phase;
    if (pid === undefined || phase === undefined) return undefined;
    const commands = this.phaseCommands(phase);
    // Type=forking's ExecStart= parent runs as the control process of 'start'.
    const index = phase === 'start' ? 0 : commands.length - this.queue.length - 1;
    if (index < 0 || commands[index] !== this.currentCommand) return undefined;
    return { pid, start: ctx.startTimeOf(pid), phase, index, command: this.currentCommand?.path };
  }

  /**
   * A control process from the state file: adopted (or its exit, status unknown, kept for
   * catchup()), with the rest of its phase queued after it, so that its exit continues the
   * machine at the next step. False when the entry does not fit the unit file as loaded now.
   */
  private deserializeControl(data: unknown, state: ServiceState, ctx: DeserializeContext): boolean {
    if (!isRecord(data)) return false;
    const pid = pidField(data, 'pid');
    const phase = oneOf(data.phase, CONTROL_PHASES);
    const index = numberField(data, 'index');
    if (pid === undefined || phase === undefined || index === undefined) return false;
    const commands = this.phaseCommands(phase);
    const cmd = commands[index];
    if (!Number.isInteger(index) || cmd === undefined || cmd.path !== stringField(data, 'command')) {
      ctx.warn(`control process ${pid} ran ${phase} command ${index}, which the unit file no longer has`);
      return false;
    }
    this.phase = phase;
    this.currentCommand = cmd;
    this.queue = phase === 'start' ? [] : commands.slice(index + 1);
    this.controlPid = pid;
    if (!ctx.adoptProcess(pid, stringField(data, 'start')))
      this.lostControlExit = { pid, code: 'exited', status: UNKNOWN_EXIT_STATUS, statusUnknown: true };
    this.setState(state);
    const c = this.config;
    if (state === 'start') this.armTimer(c.timeoutStartMs, () => this.onTimeout());
    if (state === 'stop' || state === 'stop-post') this.armTimer(c.timeoutStopMs, () => this.onTimeout());
    return true;
  }

  serialize(ctx: SerializeContext): SerializedUnit {
    const control = this.serializeControl(ctx);
    const fdStore =
      ctx.kind === 'reexec' ? this.fdStore.map((e) => ({ fd: ctx.carryFd(e.fd), name: e.name })) : [];
    return {
      state: this.state,
      result: this.result,
      nRestarts: this.nRestarts,
      since: this.since,
      ...(this.statusText !== undefined ? { statusText: this.statusText } : {}),
      ...(this.mainPid !== undefined
        ? { mainPid: this.mainPid, mainStart: ctx.startTimeOf(this.mainPid) }
        : {}),
      ...(this.mainExit !== undefined ? { mainExit: { ...this.mainExit } } : {}),
      ...(control !== undefined ? { control } : {}),
      ready: this.ready,
      fdStore,
    };
  }

  /**
   * Takes back what serialize() wrote. A unit that was up keeps its state when its main process
   * is still there (adopted: same pid and start time); one whose main process ended meanwhile
   * (a crash of ours) sees that exit in catchup(), with the status read from the zombie if it
   * could be, else UNKNOWN_EXIT_STATUS. A job that was running is lost: a unit caught in
   * start/stop/reload is taken as running if its main process is there, as gone if not.
   */
  deserialize(data: SerializedUnit, ctx: DeserializeContext): boolean {
    const state = oneOf(data.state, SERVICE_STATES);
    if (state === undefined) {
      ctx.warn(`unknown service state ${JSON.stringify(data.state)}; not restored`);
      return false;
    }
    this.result = oneOf(data.result, SERVICE_RESULTS) ?? 'success';
    this.nRestarts = numberField(data, 'nRestarts') ?? 0;
    this.statusText = stringField(data, 'statusText');
    const exit = data.mainExit;
    if (isRecord(exit) && pidField(exit, 'pid') !== undefined) {
      const code = oneOf(exit.code, ['exited', 'killed', 'dumped'] as const);
      const status = numberField(exit, 'status');
      if (code !== undefined && status !== undefined)
        this.mainExit = { pid: pidField(exit, 'pid') as number, code, status };
    }
    if (Array.isArray(data.fdStore)) {
      for (const e of data.fdStore) {
        if (!isRecord(e) || typeof e.fd !== 'number' || typeof e.name !== 'string') continue;
        const fd = ctx.takeFd(e.fd);
        if (fd !== undefined) this.fdStore.push({ fd, name: e.name });
      }
    }
    const since = numberField(data, 'since');
    const up = ACTIVE[state] !== 'inactive' && ACTIVE[state] !== 'failed' && state !== 'auto-restart';
    if (!up) {
      if (state === 'failed') this.setState('failed');
      if (state === 'auto-restart') {
        // The restart delay was running: restart now.
        this.setState(this.result === 'success' ? 'dead' : 'failed');
        this.host.requestRestart();
      }
      if (since !== undefined) this.since = since;
      return true;
    }
    const mainPid = pidField(data, 'mainPid');
    // A control process was running (ExecStartPre=, ExecReload=, ExecStop=, ...): adopted, and
    // its exit goes on from that step. The main process, when there is one, is adopted with it.
    if (data.control !== undefined && CONTROL_STATES.includes(state)) {
      if (mainPid !== undefined) {
        this.mainPid = mainPid;
        this.ready = data.ready === true;
        if (!ctx.adoptProcess(mainPid, stringField(data, 'mainStart'))) {
          ctx.warn(`main process ${mainPid} ended while no daemon watched it; its exit status is unknown`);
          this.lostMainExit = {
            pid: mainPid,
            code: 'exited',
            status: UNKNOWN_EXIT_STATUS,
            statusUnknown: true,
          };
        }
      }
      if (this.deserializeControl(data.control, state, ctx)) {
        if (since !== undefined) this.since = since;
        return true;
      }
    }
    if (state !== 'running' && state !== 'exited')
      ctx.warn(`was ${state} when the daemon went away; that job is lost`);
    if (mainPid !== undefined) {
      this.mainPid = mainPid;
      this.ready = data.ready === true;
      if (!ctx.adoptProcess(mainPid, stringField(data, 'mainStart'))) {
        ctx.warn(`main process ${mainPid} ended while no daemon watched it; its exit status is unknown`);
        this.lostMainExit = { pid: mainPid, code: 'exited', status: UNKNOWN_EXIT_STATUS };
      }
      this.setState('running');
      this.armWatchdog();
    } else if (state === 'exited' || (state === 'running' && this.host.groupPids().length > 0)) {
      this.setState(state);
    } else if (state === 'running') {
      // A service running without a known main pid (forking without PIDFile=) whose group is empty.
      this.setState('running');
      this.lostMainExit = { pid: 0, code: 'exited', status: UNKNOWN_EXIT_STATUS };
    } else {
      return true;
    }
    if (since !== undefined) this.since = since;
    return true;
  }

  /** After the restore: an exit that happened while no daemon watched is acted on now (Restart=). */
  catchup(): void {
    const lostControl = this.lostControlExit;
    this.lostControlExit = undefined;
    if (lostControl !== undefined && this.controlPid === lostControl.pid) this.onExit(lostControl);
    const lost = this.lostMainExit;
    this.lostMainExit = undefined;
    if (lost === undefined) return;
    if (lost.pid === 0) {
      this.mainExit = lost;
      if (this.result === 'success') this.result = 'exit-code';
      return this.enterStop();
    }
    if (this.mainPid === lost.pid) this.onExit(lost);
  }

  /** What `show` prints. */
  properties(): Record<string, unknown> {
    return {
      Type: this.config.type,
      Restart: this.config.restart,
      Result: this.result,
      ReloadResult: this.reloadResult,
      MainPID: this.mainPid ?? 0,
      ControlPID: this.controlPid ?? 0,
      StatusText: this.statusText ?? '',
      NRestarts: this.nRestarts,
      NotifyAccess: this.notifyAccess(),
      ExecMainStatus: this.mainExit?.status ?? 0,
      ExecMainCode: this.mainExit?.code ?? '',
      FileDescriptorStore: this.fdStore.map((e) => e.name),
      ControlGroup: this.host.controlGroup() ?? '',
      Processes: this.host.groupPids().map((pid) => ({
        pid,
        // Its command line is still the daemon's (it shares the daemon's memory until its exec).
        cmd: this.host.isParked?.(pid) === true ? PARKED_JOB : commandLineOf(pid),
      })),
      Ready: this.ready,
    };
  }
}

/** How status shows a parked job (src/core/path-armed-start.ts). */
const PARKED_JOB = 'triggerd-park (the next job, parked by an armed path start until its change)';

function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

function resultOf(exit: ProcessExit): ServiceResult {
  return exit.code === 'exited' ? 'exit-code' : exit.code === 'dumped' ? 'core-dump' : 'signal';
}

function describeCondition(c: ConditionSpec): string {
  return `${c.kind === 'assert' ? 'Assert' : 'Condition'}${c.name}=${c.trigger ? '|' : ''}${c.negate ? '!' : ''}${c.value} (${c.source.file}:${c.source.line})`;
}
