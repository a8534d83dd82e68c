// .socket units: systemd's socket state machine. The unit owns its listening sockets (FIFOs,
// special files, message queues) from start to stop, watches them while nobody else serves them,
// and on traffic either starts its service with the fds (Accept=no, LISTEN_FDS) or accepts each
// connection and starts one instance of foo@.service per connection (Accept=yes). Everything it
// needs from the world comes through an injected SocketHost (the native socket layer, spawning,
// the job engine, timers), so the machine runs on fakes and virtual time in tests. Every
// transition goes through setState(), the one place with side effects on the outside.
//
// Where triggerd differs from systemd (semantics.md §3): a hit trigger or poll limit pauses
// polling and retries later (with the reason in `status`) instead of failing the socket for good;
// MaxConnectionsPerSource= counts live instances only (released when the instance ends); a client
// that went away before its instance started is a normal end.
import type { Logger } from '../util/logger';
import type {
  AcceptedConnection,
  NativeSocket,
  ReadinessWatch,
  SocketOptionError,
  SocketOptions,
} from '../native/socket-addon';
import type { ExecCommand, ListenEntry, LoadedUnitFile, SocketSection } from './config-types';
import { connectionInstance, formatSocketAddress, sourceKey } from './socket-address';
import { socketServiceName, socketTemplateName } from './unit-keys';
import type { ProcessExit, SpawnResult, StoredFd } from './service';
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
import type { FastAccept, FastAcceptEvents } from '../core/accept-fast-path';
import type { SocketAddress } from '../native/socket-addon';
import { RateLimitedLog } from '../util/logger';

export type SocketState =
  | 'dead'
  | 'start-pre'
  | 'start-chown'
  | 'start-post'
  | 'listening'
  | 'running'
  | 'stop-pre'
  | 'stop-pre-sigterm'
  | 'stop-pre-sigkill'
  | 'stop-post'
  | 'final-sigterm'
  | 'final-sigkill'
  | 'failed';

/** Why the socket is where it is (systemd's Result=). */
export type SocketResult =
  | 'success'
  | 'resources'
  | 'timeout'
  | 'exit-code'
  | 'signal'
  | 'core-dump'
  | 'start-limit-hit'
  | 'service-start-limit-hit';

const SOCKET_RESULTS: readonly SocketResult[] = [
  'success',
  'resources',
  'timeout',
  'exit-code',
  'signal',
  'core-dump',
  'start-limit-hit',
  'service-start-limit-hit',
];

const ACTIVE: Record<SocketState, ActiveState> = {
  dead: 'inactive',
  'start-pre': 'activating',
  'start-chown': 'activating',
  'start-post': 'activating',
  listening: 'active',
  running: 'active',
  'stop-pre': 'deactivating',
  'stop-pre-sigterm': 'deactivating',
  'stop-pre-sigkill': 'deactivating',
  'stop-post': 'deactivating',
  'final-sigterm': 'deactivating',
  'final-sigkill': 'deactivating',
  failed: 'failed',
};

/** States in which a control process runs (serialized with its step, adopted after a re-exec). */
type ControlState = 'start-pre' | 'start-post' | 'stop-pre' | 'stop-post';
const CONTROL_STATES: readonly ControlState[] = ['start-pre', 'start-post', 'stop-pre', 'stop-post'];

/** States in which the fds are open (systemd closes them on entering any other). */
const FDS_OPEN = new Set<SocketState>([
  'start-chown',
  'start-post',
  'listening',
  'running',
  'stop-pre',
  'stop-pre-sigterm',
  'stop-pre-sigkill',
]);

/** A unit as the socket sees it through the host. */
export interface UnitStatusView {
  active: ActiveState;
  load: LoadState;
  sub: string;
  /** A start (or restart) job is installed for the unit: it is about to take the sockets. */
  hasJob: boolean;
  /** ServiceUnit.result, when the unit is a service. */
  result?: string;
}

/** What starting an Accept=yes instance gave. */
export type ConnectionStart = { ok: true } | { ok: false; reason: string };

/** Everything a socket unit needs from the world. */
export interface SocketHost {
  native: NativeSocket;
  /** SocketUser=/SocketGroup= → ids; undefined when there is no such account. */
  userId(name: string): number | undefined;
  groupId(name: string): number | undefined;
  /** ExecStartPre= & co., run with the socket's exec context as its control process. */
  spawn(command: ExecCommand): SpawnResult;
  signal(pid: number, signal: number): void;
  /** Signal every process of the unit except `except`; how many were signalled. */
  signalGroup(signal: number, except: ReadonlySet<number>): number;
  unitStatus(name: string): UnitStatusView | undefined;
  /**
   * Accept=no: enqueue a start job for the service (through the job engine); `done` resolves with
   * the job's result. Refused when the transaction cannot be built.
   */
  startService(name: string): { ok: true; done: Promise<string> } | { ok: false; reason: string };
  /**
   * Accept=yes: create `name` (an instance of `template`) for one connection, hand it the
   * connection (it closes the fd once the process has it) and start it, outside the job engine.
   * `ended` is called once, when the instance is over (dead or failed) and forgotten.
   */
  startConnection(name: string, connection: AcceptedConnection, ended: () => void): ConnectionStart;
  /** Symlinks= and RemoveOnStop=: file-system side effects, errors logged by the caller. */
  symlink(target: string, link: string): void;
  unlink(path: string): void;
  setTimer(ms: number, fn: () => void): () => void;
  /** Monotonic ms. */
  now(): number;
  /** The pending job on this unit is over. */
  jobFinished(end: JobEnd): void;
  stateChanged(from: SocketState, to: SocketState, result: SocketResult): void;
  /**
   * After a crash of the daemon: our own copy of the listening socket for `entry` that the
   * running service `service` still holds (pidfd_getfd), so connections the kernel queued on it
   * are not lost; undefined when there is none to take.
   */
  reclaimListening?(service: string, entry: ListenEntry): number | undefined;
  /**
   * Accept=yes: an accept thread that starts the instances itself (src/core/accept-fast-path.ts)
   * for the listening `fd`, when the socket and its template qualify; undefined: accept here.
   */
  startFastAccept?(fd: number, events: FastAcceptEvents, maxConnections: number): FastAccept | undefined;
  log: Logger;
}

/** One open Listen*= entry. */
interface Port {
  entry: ListenEntry;
  fd: number;
  watch?: ReadinessWatch;
  /** Accept=yes on the fast path: the accept thread instead of the watch. */
  fast?: FastAccept;
}

/** An accept thread's instances as its records told them: live ones count until they end. */
interface AcceptThreadCount {
  live: number;
  /** Replaced at a daemon-reload: its live instances still count against MaxConnections=. */
  retired: boolean;
}

/** A counter over a fixed window, systemd's RateLimit: `burst` events per `intervalMs`. */
class RateWindow {
  private begin = -Infinity;
  private count = 0;

  constructor(
    readonly intervalMs: number,
    readonly burst: number,
  ) {}

  get enabled(): boolean {
    return this.intervalMs > 0 && this.burst > 0;
  }

  /** Counts one event; false when it is over the limit. */
  below(now: number): boolean {
    if (!this.enabled) return true;
    if (now - this.begin >= this.intervalMs) {
      this.begin = now;
      this.count = 0;
    }
    this.count++;
    return this.count <= this.burst;
  }

  /** When the current window ends (monotonic ms). */
  windowEnd(): number {
    return this.begin + this.intervalMs;
  }
}

/** Polling is paused: why, until when, and how often in a row (the back-off). */
export interface PauseInfo {
  kind: 'trigger-limit' | 'poll-limit' | 'activation-failed' | 'accept-failed';
  reason: string;
  /** Monotonic ms when polling resumes. */
  until: number;
  /** Wall-clock ms of the same moment, for `status`. */
  untilWall: number;
  consecutive: number;
}

const MAX_BACKOFF_MS = 60_000;
/** At MaxConnections=, the limit is looked at this many times, this far apart, before refusing. */
const LOOKS_BEFORE_REFUSING = 3;
const LOOK_AGAIN_MS = 5;
/** Connections accepted per wake-up (systemd takes one). */
const ACCEPT_PER_WAKEUP = 2;
const SIGKILL = 9;
const SIGCONT = 18;

export class SocketUnit implements UnitInstance {
  readonly suffix = '.socket';
  state: SocketState = 'dead';
  result: SocketResult = 'success';
  since = Date.now();
  readonly load: LoadState;
  controlPid: number | undefined;
  /** Accept=yes: connections accepted so far (the N of instance names), refused, live. */
  nAccepted = 0;
  nRefused = 0;
  nConnections = 0;
  /** Accept=no: how often the service was started by traffic. */
  nTriggers = 0;
  /** The last failure to open a Listen*= entry, for `status` (with its errno). */
  lastError: { listen: string; code: string; syscall: string; message: string } | undefined;
  /** The last activation and what became of it (Accept=no). */
  lastActivation: { at: number; result: string } | undefined;
  pause: PauseInfo | undefined;
  private ports: Port[] = [];
  private pendingJob: 'start' | 'stop' | undefined;
  private lastOutcome: JobOutcome = 'done';
  private inSyncCall = false;
  private queue: ExecCommand[] = [];
  private currentCommand: ExecCommand | undefined;
  private cancelTimer: (() => void) | undefined;
  private cancelResume: (() => void) | undefined;
  private trigger: RateWindow;
  private poll: RateWindow;
  private startTimes: number[] = [];
  /** Live instances per source (MaxConnectionsPerSource=), released when the instance ends. */
  private readonly perSource = new Map<string, number>();
  private readonly refusedLog = new RateLimitedLog(10_000, 5);
  private readonly acceptErrorLog = new RateLimitedLog(10_000, 5);
  private hits = 0;

  constructor(
    readonly name: string,
    public file: LoadedUnitFile,
    private readonly host: SocketHost,
  ) {
    this.load = file.loadState;
    this.trigger = this.triggerWindow();
    this.poll = this.pollWindow();
  }

  get config(): SocketSection {
    if (this.file.socket === undefined) throw new Error(`${this.name}: no [Socket] configuration`);
    return this.file.socket;
  }

  /** The service Accept=no starts (undefined for Accept=yes). */
  serviceName(): string | undefined {
    if (this.file.socket === undefined || this.config.accept) return undefined;
    return socketServiceName(this.name, this.config);
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

  canReload(): boolean {
    return false;
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name}: socket units cannot be reloaded` };
  }

  /** The listening fds for a service's LISTEN_FDS, in Listen*= order, named as systemd names them. */
  listenFds(): StoredFd[] {
    if (!FDS_OPEN.has(this.state)) return [];
    const name = this.config.fileDescriptorName ?? this.name;
    // NonBlocking= applies to these; not to an Accept=yes listening socket (a service may only
    // get one through Sockets=), which the daemon itself accepts on and must keep non-blocking.
    const socket = !this.config.accept;
    return this.ports.map((p) => ({ fd: p.fd, name, socket }));
  }

  // ---- jobs -----------------------------------------------------------------------------------

  start(): JobOutcome {
    switch (this.state) {
      case 'listening':
      case 'running':
        return 'done';
      case 'start-pre':
      case 'start-chown':
      case 'start-post':
        this.pendingJob = 'start';
        return 'pending';
      case 'dead':
      case 'failed':
        break;
      default:
        return { failed: 'failed', reason: `${this.name} is stopping` };
    }
    if (this.load !== 'loaded' || this.file.socket === undefined)
      return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    const service = this.serviceName();
    if (service !== undefined) {
      const s = this.host.unitStatus(service);
      if (s === undefined || s.load !== 'loaded') {
        return {
          failed: 'failed',
          reason: `${this.name}: its service ${service} is ${s?.load ?? 'not loaded'}, refusing to listen`,
        };
      }
    }
    if (!this.checkStartLimit()) {
      this.result = 'start-limit-hit';
      this.setState('failed');
      return {
        failed: 'failed',
        reason: `${this.name}: start request repeated too quickly (start-limit-hit)`,
      };
    }
    this.result = 'success';
    this.lastError = undefined;
    this.clearPause();
    this.trigger = this.triggerWindow();
    this.poll = this.pollWindow();
    this.hits = 0;
    this.pendingJob = 'start';
    return this.synchronously(() => this.runPhase('start-pre', this.config.execStartPre));
  }

  resumeJob(type: 'start' | 'stop' | 'reload'): boolean {
    if (type === 'reload') return false;
    if (this.pendingJob !== undefined) return this.pendingJob === type;
    const going =
      type === 'start'
        ? ['start-pre', 'start-chown', 'start-post'].includes(this.state)
        : [
            'stop-pre',
            'stop-pre-sigterm',
            'stop-pre-sigkill',
            'stop-post',
            'final-sigterm',
            'final-sigkill',
          ].includes(this.state);
    if (going) this.pendingJob = type;
    return going;
  }

  stop(): JobOutcome {
    switch (this.state) {
      case 'dead':
      case 'failed':
        return 'done';
      case 'stop-pre':
      case 'stop-pre-sigterm':
      case 'stop-pre-sigkill':
      case 'stop-post':
      case 'final-sigterm':
      case 'final-sigkill':
        this.pendingJob = 'stop';
        return 'pending';
      case 'start-pre':
      case 'start-chown':
      case 'start-post':
        if (this.pendingJob === 'start') this.finishJob('canceled');
        this.pendingJob = 'stop';
        return this.synchronously(() => this.enterSignal('stop-pre-sigterm'));
      default:
        break;
    }
    this.pendingJob = 'stop';
    return this.synchronously(() => this.runPhase('stop-pre', this.config.execStopPre));
  }

  /**
   * daemon-reload rebuilds an inactive unit from its new file: keep what `status` shows of the
   * old one (a failure and its errno, the counters). Nothing is open in dead/failed, so nothing
   * else needs to move over.
   */
  carryOver(previous: SocketUnit): void {
    if (this.state !== 'dead' || (previous.state !== 'dead' && previous.state !== 'failed')) return;
    this.state = previous.state;
    this.since = previous.since;
    this.result = previous.result;
    this.lastError = previous.lastError;
    this.lastActivation = previous.lastActivation;
    this.nAccepted = previous.nAccepted;
    this.nRefused = previous.nRefused;
    this.nTriggers = previous.nTriggers;
    this.startTimes = previous.startTimes;
  }

  /** Forget start-limit history (`triggerctl reset-failed`). */
  resetFailed(): void {
    this.startTimes = [];
    if (this.state === 'failed') {
      this.result = 'success';
      this.setState('dead');
    }
  }

  // ---- events from the outside -------------------------------------------------------------------

  /** A process of this unit exited. */
  onExit(exit: ProcessExit): void {
    if (exit.pid !== this.controlPid) {
      if ((this.state === 'final-sigterm' || this.state === 'final-sigkill') && this.controlPid === undefined)
        this.enterDead();
      return;
    }
    this.controlPid = undefined;
    const cmd = this.currentCommand;
    // An adopted control process reaped by someone else while no daemon ran: taken as success.
    if (exit.statusUnknown === true)
      this.host.log.warn(
        { pid: exit.pid },
        `control process ${exit.pid} ended while no daemon watched it; its exit status is unknown: taken as success`,
      );
    const ok =
      (exit.code === 'exited' && exit.status === 0) ||
      cmd?.ignoreFailure === true ||
      exit.statusUnknown === true;
    if (!ok) {
      const how =
        exit.code === 'exited' ? `exited with status ${exit.status}` : `killed by signal ${exit.status}`;
      this.host.log.warn(
        { pid: exit.pid, code: exit.code, status: exit.status },
        `control process ${how}${cmd !== undefined ? ` (${cmd.path})` : ''}`,
      );
      if (this.result === 'success')
        this.result = exit.code === 'exited' ? 'exit-code' : exit.code === 'dumped' ? 'core-dump' : 'signal';
    }
    switch (this.state) {
      case 'start-pre':
        return ok ? this.runNextControl() : this.enterSignal('final-sigterm');
      case 'start-post':
        return ok ? this.runNextControl() : this.enterStopPre();
      case 'stop-pre':
        return this.runNextControl();
      case 'stop-pre-sigterm':
      case 'stop-pre-sigkill':
        return this.enterStopPost();
      case 'stop-post':
        return this.runNextControl();
      case 'final-sigterm':
      case 'final-sigkill':
        return this.enterDead();
      default:
        return;
    }
  }

  /**
   * A unit changed state; the socket cares about its Accept=no service: when the service is gone
   * (and no job is on its way), the socket listens again; when it runs, the socket is 'running'.
   */
  onUnitChanged(name: string): void {
    if (name !== this.serviceName()) return;
    if (this.state !== 'listening' && this.state !== 'running') return;
    const s = this.host.unitStatus(name);
    if (s === undefined) return;
    if (s.active === 'active' || s.active === 'reloading' || s.active === 'activating') {
      if (this.state === 'listening') this.setState('running');
      return;
    }
    if (s.hasJob && s.active !== 'failed') return;
    if (s.active === 'inactive' || s.active === 'failed' || s.active === 'deactivating') {
      if (s.active === 'deactivating') return;
      if (s.result === 'start-limit-hit') {
        this.pausePolling(
          'activation-failed',
          `${name} hit its start limit (start-limit-hit); retrying`,
          this.serviceStartLimitMs(),
        );
      }
      this.setState('listening');
    }
  }

  // ---- the machine ------------------------------------------------------------------------------

  private synchronously(fn: () => void): JobOutcome {
    this.inSyncCall = true;
    try {
      fn();
    } finally {
      this.inSyncCall = false;
    }
    return this.pendingJob === undefined ? this.lastOutcome : 'pending';
  }

  private runPhase(
    state: 'start-pre' | 'start-post' | 'stop-pre' | 'stop-post',
    commands: ExecCommand[],
  ): void {
    this.queue = [...commands];
    if (this.queue.length === 0) return this.phaseDone(state);
    this.setState(state);
    this.runNextControl();
  }

  private runNextControl(): void {
    const cmd = this.queue.shift();
    if (cmd === undefined) {
      this.currentCommand = undefined;
      return this.phaseDone(this.state as 'start-pre' | 'start-post' | 'stop-pre' | 'stop-post');
    }
    this.currentCommand = cmd;
    this.armTimer(this.config.timeoutMs, () => this.onTimeout());
    const spawned = this.host.spawn(cmd);
    if (!spawned.ok) {
      this.host.log.error(
        { step: spawned.failure.step, code: spawned.failure.code, command: cmd.path },
        `failed to run ${cmd.path}: failed at step ${spawned.failure.step}: ${spawned.failure.message}`,
      );
      if (this.result === 'success') this.result = 'resources';
      this.onFailedSpawn();
      return;
    }
    this.controlPid = spawned.pid;
  }

  private onFailedSpawn(): void {
    switch (this.state) {
      case 'start-pre':
        return this.enterSignal('final-sigterm');
      case 'start-post':
        return this.enterStopPre();
      case 'stop-pre':
        return this.enterSignal('stop-pre-sigterm');
      case 'stop-post':
        return this.enterSignal('final-sigterm');
      default:
        return this.enterDead();
    }
  }

  private phaseDone(state: 'start-pre' | 'start-post' | 'stop-pre' | 'stop-post'): void {
    switch (state) {
      case 'start-pre':
        return this.enterOpen();
      case 'start-post':
        return this.enterListening();
      case 'stop-pre':
        return this.enterSignal('stop-pre-sigterm');
      case 'stop-post':
        return this.enterSignal('final-sigterm');
    }
  }

  /** Open every Listen*= entry (systemd's start-chown step: owners are set as the fds are made). */
  private enterOpen(): void {
    this.clearTimer();
    const opened = this.openPorts();
    if (!opened) {
      if (this.result === 'success') this.result = 'resources';
      return this.enterStopPre();
    }
    this.makeSymlinks();
    this.setState('start-chown');
    this.runPhase('start-post', this.config.execStartPost);
  }

  private openPorts(entries: readonly ListenEntry[] = this.config.listen): boolean {
    const c = this.config;
    const { native } = this.host;
    const options: SocketOptions = {
      backlog: c.backlog,
      bindIPv6Only: c.bindIPv6Only,
      bindToDevice: c.bindToDevice,
      freeBind: c.freeBind || undefined,
      transparent: c.transparent || undefined,
      reusePort: c.reusePort || undefined,
      broadcast: c.broadcast || undefined,
      keepAlive: c.keepAlive || undefined,
      keepAliveTimeSec: c.keepAliveTimeSec,
      keepAliveIntervalSec: c.keepAliveIntervalSec,
      keepAliveProbes: c.keepAliveProbes,
      noDelay: c.noDelay || undefined,
      deferAcceptSec: c.deferAcceptSec,
      priority: c.priority,
      receiveBuffer: c.receiveBuffer,
      sendBuffer: c.sendBuffer,
      ipTos: c.ipTos,
      ipTtl: c.ipTtl,
      mark: c.mark,
      passCredentials: c.passCredentials || undefined,
      passSecurity: c.passSecurity || undefined,
      socketMode: c.socketMode,
      directoryMode: c.directoryMode,
    };
    for (const k of Object.keys(options) as (keyof SocketOptions)[])
      if (options[k] === undefined) delete options[k];
    if (c.socketUser !== undefined) {
      const uid = this.host.userId(c.socketUser);
      if (uid === undefined)
        return this.openFailed(undefined, 'ENOENT', 'getpwnam', `no such user ${c.socketUser}`);
      options.uid = uid;
    }
    if (c.socketGroup !== undefined) {
      const gid = this.host.groupId(c.socketGroup);
      if (gid === undefined)
        return this.openFailed(undefined, 'ENOENT', 'getgrnam', `no such group ${c.socketGroup}`);
      options.gid = gid;
    }
    for (const entry of entries) {
      try {
        let fd: number;
        if ('path' in entry) {
          if (entry.kind === 'fifo') fd = native.openFifo(entry.path, options);
          else if (entry.kind === 'special') fd = native.openSpecial(entry.path);
          else
            fd = native.openMessageQueue(
              entry.path,
              c.socketMode,
              c.messageQueueMaxMessages,
              c.messageQueueMessageSize,
            );
        } else {
          const warnings: SocketOptionError[] = [];
          fd = native.listen(
            entry.kind === 'netlink' ? 'dgram' : entry.kind,
            entry.address,
            options,
            warnings,
          );
          for (const w of warnings) {
            this.host.log.warn(
              { code: w.code, option: w.option },
              `${entry.text}: cannot set ${w.option}: ${w.message} (ignored, as systemd does)`,
            );
          }
        }
        this.ports.push({ entry, fd });
      } catch (err) {
        const e = err as { code?: string; syscall?: string; message?: string };
        return this.openFailed(entry, e.code ?? 'EIO', e.syscall ?? 'socket', e.message ?? String(err));
      }
    }
    return true;
  }

  private openFailed(entry: ListenEntry | undefined, code: string, syscall: string, message: string): false {
    const listen = entry === undefined ? '' : `${keyOf(entry)}=${entry.text}`;
    this.lastError = { listen, code, syscall, message };
    this.host.log.error(
      {
        code,
        syscall,
        ...(entry !== undefined ? { source: `${entry.source.file}:${entry.source.line}` } : {}),
      },
      `failed to listen${listen !== '' ? ` on ${listen}` : ''}: ${message}`,
    );
    this.closePorts();
    return false;
  }

  private makeSymlinks(): void {
    const c = this.config;
    if (c.symlinks.length === 0) return;
    const target = c.listen
      .map((l) => ('path' in l ? (l.kind === 'fifo' ? l.path : undefined) : pathOf(l)))
      .find((p) => p !== undefined);
    if (target === undefined) return;
    for (const link of c.symlinks) {
      try {
        this.host.symlink(target, link);
      } catch (err) {
        this.host.log.warn({ err }, `cannot create symlink ${link} → ${target}`);
      }
    }
  }

  private enterListening(): void {
    this.clearTimer();
    for (const p of this.ports) {
      if (p.fast !== undefined) continue;
      if (p.watch !== undefined && !(p.watch.closed ?? false)) continue;
      if (this.startFast(p)) continue;
      try {
        p.watch = this.host.native.watch(p.fd, () => this.onReadable(p));
      } catch (err) {
        const e = err as { code?: string; message?: string };
        this.host.log.error({ code: e.code }, `cannot watch ${p.entry.text}: ${e.message ?? String(err)}`);
        if (this.result === 'success') this.result = 'resources';
        return this.enterStopPre();
      }
    }
    this.setState('listening');
    this.finishJob('done');
    if (this.pause !== undefined) this.pauseWatches();
  }

  private enterStopPre(): void {
    this.runPhase('stop-pre', this.config.execStopPre);
  }

  private enterStopPost(): void {
    this.runPhase('stop-post', this.config.execStopPost);
  }

  /** Kill what is left of the control process (and with control-group, the rest of the group). */
  private enterSignal(
    state: 'stop-pre-sigterm' | 'stop-pre-sigkill' | 'final-sigterm' | 'final-sigkill',
  ): void {
    const k = this.config.kill;
    const sigkill = state === 'stop-pre-sigkill' || state === 'final-sigkill';
    let n = 0;
    if (k.killMode !== 'none' && !(sigkill && !k.sendSIGKILL)) {
      const signal = sigkill ? k.finalKillSignal || SIGKILL : k.killSignal;
      const except = new Set<number>();
      if (this.controlPid !== undefined) {
        this.host.signal(this.controlPid, signal);
        if (!sigkill) this.host.signal(this.controlPid, SIGCONT);
        except.add(this.controlPid);
        n++;
      }
      if (k.killMode === 'control-group' || (k.killMode === 'mixed' && sigkill))
        n += this.host.signalGroup(signal, except);
    }
    if (n > 0) {
      this.setState(state);
      this.armTimer(this.config.timeoutMs, () => this.onTimeout());
      return;
    }
    switch (state) {
      case 'stop-pre-sigterm':
        return this.enterSignal('stop-pre-sigkill');
      case 'stop-pre-sigkill':
        return this.enterStopPost();
      case 'final-sigterm':
        return this.enterSignal('final-sigkill');
      case 'final-sigkill':
        return this.enterDead();
    }
  }

  private enterDead(): void {
    this.clearTimer();
    this.controlPid = undefined;
    this.clearPause();
    const failed = this.result !== 'success';
    this.setState(failed ? 'failed' : 'dead');
    if (this.pendingJob === 'start') this.finishJob('failed');
    else this.finishJob('done');
  }

  private onTimeout(): void {
    this.host.log.error(`${this.state} timed out (TimeoutSec=)`);
    if (this.result === 'success') this.result = 'timeout';
    switch (this.state) {
      case 'start-pre':
        return this.enterSignal('final-sigterm');
      case 'start-post':
      case 'stop-pre':
        return this.enterSignal('stop-pre-sigterm');
      case 'stop-pre-sigterm':
        return this.enterSignal('stop-pre-sigkill');
      case 'stop-pre-sigkill':
      case 'stop-post':
        return this.enterSignal('final-sigterm');
      case 'final-sigterm':
        return this.enterSignal('final-sigkill');
      default:
        return this.enterDead();
    }
  }

  // ---- traffic ----------------------------------------------------------------------------------

  private onReadable(port: Port): void {
    if (this.state !== 'listening') {
      port.watch?.pause();
      return;
    }
    const now = this.host.now();
    if (!this.poll.below(now)) {
      this.pausePolling(
        'poll-limit',
        `woken up more than ${this.poll.burst} times in ${this.poll.intervalMs} ms (PollLimitBurst=, PollLimitIntervalSec=)`,
        Math.max(1, this.poll.windowEnd() - now),
      );
      return;
    }
    if (this.config.accept) this.acceptConnections(port);
    else this.activateService();
  }

  /** Accept=no: hand the sockets to the service. */
  private activateService(): void {
    const service = this.serviceName() as string;
    const now = this.host.now();
    const s = this.host.unitStatus(service);
    // A start (or restart) already on its way: the service will take the sockets.
    if (
      s !== undefined &&
      (s.hasJob || s.active === 'active' || s.active === 'activating' || s.active === 'reloading')
    ) {
      this.pauseWatches();
      this.setState('running');
      return;
    }
    if (!this.trigger.below(now)) return this.triggerLimitHit(now);
    this.pauseWatches();
    const r = this.host.startService(service);
    if (!r.ok) {
      this.host.log.error({ service }, `cannot start ${service}: ${r.reason}`);
      this.lastActivation = { at: Date.now(), result: `refused: ${r.reason}` };
      this.pausePolling(
        'activation-failed',
        `starting ${service} was refused: ${r.reason}`,
        this.backoffMs(),
      );
      return;
    }
    this.nTriggers++;
    const activation = { at: Date.now(), result: 'queued' };
    this.lastActivation = activation;
    this.setState('running');
    r.done.then(
      (result) => {
        activation.result = result;
        if (result !== 'done')
          this.host.log.warn({ service, result }, `start of ${service} triggered by traffic: ${result}`);
        // The service may be gone by now without a state change reaching us (a skipped start).
        this.onUnitChanged(service);
      },
      () => undefined,
    );
  }

  /**
   * Accept=yes: take a few connections off the backlog per wake-up (the watch is level-triggered,
   * so the rest wake it again). Few, so that the exits of the instances that ended meanwhile are
   * handled in between: a long accept loop would count them as live and refuse for nothing.
   */
  private acceptConnections(port: Port): void {
    const c = this.config;
    const { native } = this.host;
    for (let i = 0; i < ACCEPT_PER_WAKEUP && this.state === 'listening'; i++) {
      if (this.nConnections < c.maxConnections) this.looksAtLimit = 0;
      else if (this.looksAtLimit < LOOKS_BEFORE_REFUSING) return this.lookAgainAtLimit(port);
      let conn: AcceptedConnection | undefined;
      try {
        conn = native.accept(port.fd);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        // A client that gave up between SYN and accept: a normal end, not a failure.
        if (e.code === 'ECONNABORTED' || e.code === 'EPROTO' || e.code === 'EINTR') continue;
        const suppressed = this.acceptErrorLog.admit();
        if (suppressed >= 0)
          this.host.log.error(
            { code: e.code, suppressed },
            `accept on ${port.entry.text} failed: ${e.message ?? String(err)}`,
          );
        // EMFILE/ENFILE/ENOBUFS: stop polling for a moment instead of spinning on a full backlog.
        this.pausePolling('accept-failed', `accept failed: ${e.code ?? 'error'}`, 1000);
        return;
      }
      if (conn === undefined) return;
      const now = this.host.now();
      if (this.nConnections >= c.maxConnections) {
        this.looksAtLimit = 0;
        this.refuse(conn, `too many connections (${this.nConnections}, MaxConnections=${c.maxConnections})`);
        continue;
      }
      const source = c.maxConnectionsPerSource > 0 ? sourceKey(conn.remote, conn.peerUid) : undefined;
      if (source !== undefined && (this.perSource.get(source) ?? 0) >= c.maxConnectionsPerSource) {
        this.refuse(
          conn,
          `too many connections from ${source} (${this.perSource.get(source) ?? 0}, MaxConnectionsPerSource=${c.maxConnectionsPerSource})`,
        );
        continue;
      }
      if (!this.trigger.below(now)) {
        this.refuse(conn, 'trigger limit hit');
        return this.triggerLimitHit(now);
      }
      this.startInstance(conn, source);
    }
  }

  /** How often the limit was found holding since it was reached (refused at LOOKS_BEFORE_REFUSING). */
  private looksAtLimit = 0;
  private cancelLookAgain: (() => void) | undefined;

  /**
   * At MaxConnections=: instances that exited but whose exits are not processed yet (they come
   * in a later poll phase of the loop, later still on a loaded machine) still count. Leave the
   * connections in the backlog and look again a few times, LOOK_AGAIN_MS apart; only a limit
   * that still holds then refuses (at concurrency 64 with MaxConnections=64, about half were
   * refused for nothing).
   */
  private lookAgainAtLimit(port: Port): void {
    port.watch?.pause();
    if (this.cancelLookAgain !== undefined) return;
    this.cancelLookAgain = this.host.setTimer(LOOK_AGAIN_MS, () => {
      this.cancelLookAgain = undefined;
      this.looksAtLimit++;
      if (this.state === 'listening' && this.pause === undefined) port.watch?.resume();
    });
  }

  private startInstance(conn: AcceptedConnection, source: string | undefined): void {
    const template = socketTemplateName(this.name);
    const instance = connectionInstance(this.nAccepted, conn.local, conn.remote, {
      pid: conn.peerPid,
      uid: conn.peerUid,
    });
    const name = `${template.slice(0, -'@.service'.length)}@${instance}.service`;
    this.nAccepted++;
    let ended = false;
    this.nConnections++;
    if (source !== undefined) this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    const release = (): void => {
      if (ended) return;
      ended = true;
      this.nConnections--;
      if (source !== undefined) {
        const n = (this.perSource.get(source) ?? 1) - 1;
        if (n <= 0) this.perSource.delete(source);
        else this.perSource.set(source, n);
      }
    };
    const r = this.host.startConnection(name, conn, release);
    if (!r.ok) {
      release();
      this.host.log.error({ instance: name }, `cannot start ${name}: ${r.reason}`);
      this.pausePolling('activation-failed', `starting ${name} failed: ${r.reason}`, this.backoffMs());
    }
  }

  /** Accept=yes: the port's accept thread, when the host has one for it. */
  private startFast(p: Port): boolean {
    if (this.file.socket?.accept !== true || this.host.startFastAccept === undefined) return false;
    if (p.entry.kind !== 'stream' && p.entry.kind !== 'seqpacket') return false;
    const count: AcceptThreadCount = { live: 0, retired: false };
    p.fast = this.host.startFastAccept(p.fd, this.fastEvents(count), this.fastLimit());
    if (p.fast !== undefined) this.threadCounts.set(p.fast, count);
    return p.fast !== undefined;
  }

  /** Per accept thread, its live instances; a retired thread's are dropped when they reach 0. */
  private readonly threadCounts = new Map<FastAccept, AcceptThreadCount>();

  /**
   * daemon-reload: an accept thread clones from a plan made from the template as it was when the
   * thread started, and systemd starts every instance from the template as it is now. So each
   * thread lets go of its fd (its live instances go on, and still end through it) and a new one
   * starts from the reloaded template, or the fd is watched here if the template no longer
   * qualifies. The old thread's live instances count against MaxConnections= until they end.
   */
  templateReloaded(): void {
    for (const p of this.ports) {
      const old = p.fast;
      if (old === undefined) continue;
      this.retire(old);
      p.fast = undefined;
      if (!this.startFast(p)) {
        try {
          p.watch = this.host.native.watch(p.fd, () => this.onReadable(p));
        } catch (err) {
          this.host.log.error(`cannot watch ${p.entry.text}: ${(err as Error).message}`);
        }
      }
    }
    if (this.pause !== undefined) this.pauseWatches();
  }

  /** No more connections through `thread`; its live instances still count until they end. */
  private retire(thread: FastAccept): void {
    thread.close();
    const count = this.threadCounts.get(thread);
    if (count === undefined) return;
    count.retired = true;
    if (count.live <= 0) this.threadCounts.delete(thread);
  }

  /** Live instances of accept threads replaced at a daemon-reload or closed with the socket. */
  private retiredLive(): number {
    let n = 0;
    for (const c of this.threadCounts.values()) if (c.retired) n += c.live;
    return n;
  }

  /** Instances restored after a re-exec or a crash and still live (the thread does not see them). */
  private adoptedLive = 0;

  /** What the accept thread refuses at: MaxConnections= less the adopted instances. */
  private fastLimit(): number {
    return Math.max(0, (this.file.socket?.maxConnections ?? 64) - this.adoptedLive - this.retiredLive());
  }

  /** What the accept thread's records do to this unit: the counters, the limits, the logs. */
  private fastEvents(count: AcceptThreadCount): FastAcceptEvents {
    return {
      woken: () => {
        const now = this.host.now();
        if (this.poll.below(now)) return true;
        if (this.pause === undefined)
          this.pausePolling(
            'poll-limit',
            `woken up more than ${this.poll.burst} times in ${this.poll.intervalMs} ms (PollLimitBurst=, PollLimitIntervalSec=)`,
            Math.max(1, this.poll.windowEnd() - now),
          );
        return false;
      },
      nextInstance: () => this.nAccepted++,
      connection: (live) => {
        if (!live) {
          this.nConnections--;
          count.live--;
          if (count.retired) {
            if (count.live <= 0)
              for (const [t, c] of this.threadCounts) if (c === count) this.threadCounts.delete(t);
            this.updateFastLimit();
          }
          return;
        }
        this.nConnections++;
        count.live++;
        if (count.retired) this.updateFastLimit();
        const now = this.host.now();
        if (!this.trigger.below(now) && this.pause === undefined) this.triggerLimitHit(now);
      },
      refused: (remote, live) => {
        const max = this.config.maxConnections;
        this.countRefused(remote, `too many connections (${live}, MaxConnections=${max})`);
      },
      acceptFailed: (e) => {
        const suppressed = this.acceptErrorLog.admit();
        if (suppressed >= 0) this.host.log.error({ code: e.code, suppressed }, `accept failed: ${e.message}`);
        this.pausePolling('accept-failed', `accept failed: ${e.code ?? 'error'}`, 1000);
      },
    };
  }

  private refuse(conn: AcceptedConnection, why: string): void {
    try {
      this.host.native.close(conn.fd);
    } catch {
      // already gone
    }
    this.countRefused(conn.remote, why);
  }

  /** A refused connection (closed already): counted, and logged at a limited rate. */
  private countRefused(remote: SocketAddress | undefined, why: string): void {
    this.nRefused++;
    const suppressed = this.refusedLog.admit();
    if (suppressed >= 0) {
      this.host.log.warn(
        { refused: this.nRefused, ...(suppressed > 0 ? { suppressed } : {}) },
        `refusing connection from ${(remote !== undefined ? formatSocketAddress(remote) : '') || 'a local peer'}: ${why}`,
      );
    }
  }

  private triggerLimitHit(now: number): void {
    this.pausePolling(
      'trigger-limit',
      `trigger limit hit: more than ${this.trigger.burst} activations in ${this.trigger.intervalMs} ms ` +
        `(TriggerLimitBurst=, TriggerLimitIntervalSec=)`,
      Math.max(this.trigger.windowEnd() - now, this.backoffMs()),
    );
  }

  /** Consecutive pauses double the wait, up to a minute; a quiet window starts over. */
  private backoffMs(): number {
    const base = this.trigger.enabled ? this.trigger.intervalMs : 2000;
    return Math.min(base * 2 ** Math.max(0, this.hits - 1), MAX_BACKOFF_MS);
  }

  private pausePolling(kind: PauseInfo['kind'], reason: string, ms: number): void {
    const now = this.host.now();
    const consecutive = this.pause !== undefined || now - this.lastResume < 2 * ms ? this.hits + 1 : 1;
    this.hits = consecutive;
    const wait = kind === 'poll-limit' ? ms : Math.max(ms, this.backoffMs());
    this.pauseWatches();
    this.cancelResume?.();
    const until = now + wait;
    this.pause = { kind, reason, until, untilWall: Date.now() + wait, consecutive };
    this.host.log.warn(
      { kind, retryInMs: Math.round(wait) },
      `${reason}; polling paused, retrying in ${formatMs(wait)}`,
    );
    this.cancelResume = this.host.setTimer(wait, () => {
      this.cancelResume = undefined;
      this.resumePolling();
    });
  }

  private lastResume = -Infinity;

  private resumePolling(): void {
    if (this.pause === undefined) return;
    this.host.log.info({ kind: this.pause.kind }, 'resuming polling');
    this.pause = undefined;
    this.lastResume = this.host.now();
    if (this.state === 'listening') this.resumeWatches();
  }

  private clearPause(): void {
    this.cancelResume?.();
    this.cancelResume = undefined;
    this.pause = undefined;
  }

  private pauseWatches(): void {
    for (const p of this.ports) {
      p.watch?.pause();
      p.fast?.pause();
    }
  }

  private resumeWatches(): void {
    if (this.pause !== undefined) return;
    for (const p of this.ports) {
      if (p.fast !== undefined) {
        p.fast.resume();
        continue;
      }
      if (p.watch !== undefined) {
        p.watch.resume();
        continue;
      }
      // A port taken back after a re-exec or a crash while its service ran: watched from now on.
      if (this.startFast(p)) continue;
      try {
        p.watch = this.host.native.watch(p.fd, () => this.onReadable(p));
      } catch (err) {
        this.host.log.error(`cannot watch ${p.entry.text}: ${(err as Error).message}`);
      }
    }
  }

  private closePorts(): void {
    for (const p of this.ports.splice(0)) {
      try {
        // The accept thread lets go of the fd first (its live instances go on).
        if (p.fast !== undefined) this.retire(p.fast);
        p.watch?.close();
        this.host.native.close(p.fd);
      } catch {
        // already closed
      }
      if (this.file.socket?.removeOnStop === true) this.removeNode(p.entry);
    }
    if (this.file.socket?.removeOnStop === true) {
      for (const link of this.config.symlinks) this.tryUnlink(link);
    }
  }

  private removeNode(entry: ListenEntry): void {
    if ('path' in entry) {
      if (entry.kind === 'fifo') this.tryUnlink(entry.path);
      else if (entry.kind === 'mqueue') {
        try {
          this.host.native.unlinkMessageQueue?.(entry.path);
        } catch {
          // gone already
        }
      }
      return;
    }
    const p = pathOf(entry);
    if (p !== undefined) this.tryUnlink(p);
  }

  private tryUnlink(path: string): void {
    try {
      this.host.unlink(path);
    } catch {
      // not there
    }
  }

  private triggerWindow(): RateWindow {
    const c = this.file.socket;
    const accept = c?.accept === true;
    return new RateWindow(c?.triggerLimitIntervalMs ?? 2000, c?.triggerLimitBurst ?? (accept ? 200 : 20));
  }

  private pollWindow(): RateWindow {
    const c = this.file.socket;
    const accept = c?.accept === true;
    return new RateWindow(c?.pollLimitIntervalMs ?? 2000, c?.pollLimitBurst ?? (accept ? 150 : 15));
  }

  private serviceStartLimitMs(): number {
    return Math.max(this.backoffMs(), 1000);
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

  private finishJob(end: JobEnd): void {
    const job = this.pendingJob;
    this.lastOutcome =
      end === 'done' || end === 'skipped'
        ? 'done'
        : { failed: end, reason: `${this.name}: ${this.describeFailure()}` };
    if (job === undefined) return;
    this.pendingJob = undefined;
    if (!this.inSyncCall) this.host.jobFinished(end);
  }

  private describeFailure(): string {
    if (this.lastError !== undefined)
      return `${this.lastError.listen}: ${this.lastError.message} (${this.lastError.code})`;
    return this.result;
  }

  /** The one place the state changes. */
  private setState(next: SocketState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (ACTIVE[next] !== 'activating' && ACTIVE[next] !== 'deactivating') this.clearTimer();
    if (next === 'listening') this.resumeWatches();
    else this.pauseWatches();
    if (!FDS_OPEN.has(next)) this.closePorts();
    if (next === 'dead' || next === 'failed') this.clearPause();
    this.host.stateChanged(from, next, this.result);
  }

  // ---- re-exec and crash recovery --------------------------------------------------------------

  /** The commands run in a control state. */
  private controlCommands(state: ControlState): readonly ExecCommand[] {
    const c = this.config;
    return state === 'start-pre'
      ? c.execStartPre
      : state === 'start-post'
        ? c.execStartPost
        : state === 'stop-pre'
          ? c.execStopPre
          : c.execStopPost;
  }

  /** The running control process and which command of its state it is. */
  private serializeControl(ctx: SerializeContext): SerializedUnit | undefined {
    const state = oneOf(this.state, CONTROL_STATES);
    const pid = this.controlPid;
    if (state === undefined || pid === undefined || this.currentCommand === undefined) return undefined;
    const commands = this.controlCommands(state);
    const index = commands.length - this.queue.length - 1;
    if (commands[index] !== this.currentCommand) return undefined;
    return { pid, start: ctx.startTimeOf(pid), index, command: this.currentCommand.path };
  }

  /** A control process's exit that happened while no daemon watched (status unknown), for catchup(). */
  private lostControlExit: ProcessExit | undefined;

  /**
   * A socket caught in ExecStartPre=/StartPost=/StopPre=/StopPost=: its control process adopted
   * (or its exit kept for catchup()), the rest of that state's commands queued after it, and the
   * fds of a state that has them back (carried, or opened again after a crash). False when the
   * entry does not fit the unit file now (then it is started afresh, as before).
   */
  private resumeControl(
    data: unknown,
    state: ControlState,
    saved: Map<string, number>,
    ctx: DeserializeContext,
  ): boolean {
    if (!isRecord(data) || this.file.socket === undefined) return false;
    const pid = pidField(data, 'pid');
    const index = numberField(data, 'index');
    if (pid === undefined || index === undefined) return false;
    const commands = this.controlCommands(state);
    const cmd = commands[index];
    if (cmd === undefined || cmd.path !== stringField(data, 'command')) {
      ctx.warn(`control process ${pid} ran ${state} command ${index}, which the unit file no longer has`);
      return false;
    }
    if (FDS_OPEN.has(state)) {
      const missing: ListenEntry[] = [];
      for (const entry of this.config.listen) {
        const fd = saved.get(entry.text);
        saved.delete(entry.text);
        if (fd === undefined) missing.push(entry);
        else this.ports.push({ entry, fd });
      }
      if (missing.length > 0 && !this.openPorts(missing)) {
        this.closePorts();
        return false;
      }
      const order = this.config.listen;
      this.ports.sort((a, b) => order.indexOf(a.entry) - order.indexOf(b.entry));
    }
    this.queue = commands.slice(index + 1);
    this.currentCommand = cmd;
    this.controlPid = pid;
    if (!ctx.adoptProcess(pid, stringField(data, 'start')))
      this.lostControlExit = { pid, code: 'exited', status: 255, statusUnknown: true };
    this.setState(state);
    this.armTimer(this.config.timeoutMs, () => this.onTimeout());
    return true;
  }

  /** After the restore: a control process that ended unseen continues the machine now. */
  catchup(): void {
    const lost = this.lostControlExit;
    this.lostControlExit = undefined;
    if (lost !== undefined && this.controlPid === lost.pid) this.onExit(lost);
  }

  serialize(ctx: SerializeContext): SerializedUnit {
    const control = this.serializeControl(ctx);
    return {
      ...(control !== undefined ? { control } : {}),
      state: this.state,
      result: this.result,
      since: this.since,
      nAccepted: this.nAccepted,
      nRefused: this.nRefused,
      nTriggers: this.nTriggers,
      ports: this.ports.map((p) => ({
        listen: p.entry.text,
        fd: ctx.kind === 'reexec' ? ctx.carryFd(p.fd) : -1,
      })),
    };
  }

  /**
   * Listening again without a gap: after a re-exec the very fds (the kernel kept queueing
   * connections on them); after a crash those the running Accept=no service still holds, taken
   * back (host.reclaimListening), and fresh ones for the rest. Restored after the services, so
   * the state (listening or running) follows the service's. A socket that was starting or
   * stopping is started afresh.
   */
  deserialize(data: SerializedUnit, ctx: DeserializeContext): boolean {
    const state = oneOf(data.state, Object.keys(ACTIVE) as SocketState[]);
    if (state === undefined) {
      ctx.warn(`unknown socket state ${JSON.stringify(data.state)}; not restored`);
      return false;
    }
    this.nAccepted = numberField(data, 'nAccepted') ?? this.nAccepted;
    this.nRefused = numberField(data, 'nRefused') ?? this.nRefused;
    this.nTriggers = numberField(data, 'nTriggers') ?? this.nTriggers;
    const saved = new Map<string, number>();
    if (Array.isArray(data.ports)) {
      for (const p of data.ports) {
        if (!isRecord(p) || typeof p.listen !== 'string' || typeof p.fd !== 'number') continue;
        const fd = p.fd >= 0 ? ctx.takeFd(p.fd) : undefined;
        if (fd !== undefined) saved.set(p.listen, fd);
      }
    }
    const closeSaved = (): void => {
      for (const fd of saved.values()) this.closeQuietly(fd);
      saved.clear();
    };
    if (state === 'failed') {
      closeSaved();
      this.result = oneOf(data.result, SOCKET_RESULTS) ?? 'resources';
      this.setState('failed');
      return true;
    }
    const controlState = oneOf(state, CONTROL_STATES);
    if (controlState !== undefined && data.control !== undefined) {
      this.result = oneOf(data.result, SOCKET_RESULTS) ?? 'success';
      const resumed = this.resumeControl(data.control, controlState, saved, ctx);
      closeSaved();
      if (resumed) return true;
    }
    if (state !== 'listening' && state !== 'running') {
      closeSaved();
      // Caught half-way: the caller starts it again if it was active or activating.
      return false;
    }
    if (this.file.socket === undefined) {
      closeSaved();
      return false;
    }
    const service = this.serviceName();
    const serviceUp = (): boolean => {
      if (service === undefined) return false;
      const a = this.host.unitStatus(service)?.active;
      return a === 'active' || a === 'activating' || a === 'reloading';
    };
    const missing: ListenEntry[] = [];
    for (const entry of this.config.listen) {
      let fd = saved.get(entry.text);
      saved.delete(entry.text);
      if (fd === undefined && ctx.kind === 'crash' && service !== undefined && serviceUp())
        fd = this.host.reclaimListening?.(service, entry);
      if (fd === undefined) missing.push(entry);
      else this.ports.push({ entry, fd });
    }
    closeSaved();
    if (missing.length > 0) {
      if (ctx.kind === 'reexec')
        ctx.warn(`${missing.length} listening fd(s) did not come back; opening them again`);
      if (!this.openPorts(missing)) {
        if (this.result === 'success') this.result = 'resources';
        this.closePorts();
        this.setState('failed');
        return true;
      }
      this.makeSymlinks();
      // LISTEN_FDS follows Listen*= order.
      const order = this.config.listen;
      this.ports.sort((a, b) => order.indexOf(a.entry) - order.indexOf(b.entry));
    }
    this.result = 'success';
    // Watched only once listening (resumeWatches): uv_poll_init makes the fd non-blocking, and
    // while the service runs it shares the file description with it (NonBlocking=no: blocking).
    this.setState(serviceUp() ? 'running' : 'listening');
    const since = numberField(data, 'since');
    if (since !== undefined) this.since = since;
    return true;
  }

  /**
   * Accept=yes: a live instance restored after a re-exec or a crash counts as a connection again
   * (MaxConnections=); returns its release, called once when the instance is over.
   */
  adoptConnection(): () => void {
    this.nConnections++;
    this.adoptedLive++;
    this.updateFastLimit();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.nConnections--;
      this.adoptedLive--;
      this.updateFastLimit();
    };
  }

  private updateFastLimit(): void {
    for (const p of this.ports) p.fast?.setMaxConnections(this.fastLimit());
  }

  /** Before a re-exec: stop taking traffic (the kernel queues it on the fds, which survive). */
  holdTraffic(): void {
    this.pauseWatches();
  }

  /** The re-exec did not happen: take traffic again. */
  releaseTraffic(): void {
    if (this.state === 'listening') this.resumeWatches();
  }

  private closeQuietly(fd: number): void {
    try {
      this.host.native.close(fd);
    } catch {
      // already closed
    }
  }

  /** `status` lines in systemd's layout, plus what triggerd adds (pause reason, last error). */
  statusLines(): string[] {
    const c = this.file.socket;
    if (c === undefined) return [];
    const label = (l: string): string => `${l.padStart(11)}: `;
    const lines: string[] = [];
    c.listen.forEach((l, i) => {
      const kind = keyOf(l).slice('Listen'.length);
      lines.push(`${i === 0 ? label('Listen') : ' '.repeat(13)}${describeEntry(l)} (${kind})`);
    });
    const triggers = c.accept
      ? `${socketTemplateName(this.name)} (one instance per connection)`
      : this.serviceName();
    lines.push(`${label('Triggers')}${triggers ?? ''}`);
    if (c.accept) {
      lines.push(
        `${label('Accepted')}${this.nAccepted}; Connected: ${this.nConnections} (MaxConnections=${c.maxConnections}` +
          `${c.maxConnectionsPerSource > 0 ? `, per source ${c.maxConnectionsPerSource}` : ''}); Refused: ${this.nRefused}`,
      );
    } else if (this.lastActivation !== undefined) {
      lines.push(
        `${label('Activated')}${this.nTriggers} times; last ${new Date(this.lastActivation.at).toISOString()}: ${this.lastActivation.result}`,
      );
    }
    lines.push(
      `${label('Limits')}trigger ${this.trigger.enabled ? `${this.trigger.burst}/${formatMs(this.trigger.intervalMs)}` : 'off'}, ` +
        `poll ${this.poll.enabled ? `${this.poll.burst}/${formatMs(this.poll.intervalMs)}` : 'off'}`,
    );
    if (this.pause !== undefined) {
      const left = Math.max(0, this.pause.until - this.host.now());
      lines.push(
        `${label('Paused')}${this.pause.reason}; polling resumes at ${new Date(this.pause.untilWall).toISOString()} (in ${formatMs(left)})`,
      );
    }
    if (this.lastError !== undefined) {
      const e = this.lastError;
      lines.push(
        `${label('Error')}${e.listen !== '' ? `${e.listen}: ` : ''}${e.syscall}: ${e.message} (${e.code})`,
      );
    }
    return lines;
  }

  /** What `show` and `status` print. */
  properties(): Record<string, unknown> {
    const c = this.file.socket;
    const now = this.host.now();
    return {
      Result: this.result,
      Accept: c?.accept ?? false,
      Listen: (c?.listen ?? []).map((l) => ({ type: keyOf(l), address: describeEntry(l) })),
      Triggers: c === undefined ? [] : c.accept ? [socketTemplateName(this.name)] : [this.serviceName()],
      NAccepted: this.nAccepted,
      NConnections: this.nConnections,
      NRefused: this.nRefused,
      NTriggers: this.nTriggers,
      MaxConnections: c?.maxConnections ?? 64,
      MaxConnectionsPerSource: c?.maxConnectionsPerSource ?? 0,
      TriggerLimitIntervalUSec: this.trigger.intervalMs * 1000,
      TriggerLimitBurst: this.trigger.burst,
      PollLimitIntervalUSec: this.poll.intervalMs * 1000,
      PollLimitBurst: this.poll.burst,
      FileDescriptorName: c?.fileDescriptorName ?? this.name,
      ControlPID: this.controlPid ?? 0,
      Paused:
        this.pause === undefined
          ? null
          : {
              kind: this.pause.kind,
              reason: this.pause.reason,
              retryAt: new Date(this.pause.untilWall).toISOString(),
              retryInMs: Math.max(0, Math.round(this.pause.until - now)),
              consecutive: this.pause.consecutive,
            },
      LastError: this.lastError ?? null,
      LastActivation:
        this.lastActivation === undefined
          ? null
          : { at: new Date(this.lastActivation.at).toISOString(), result: this.lastActivation.result },
    };
  }
}

function keyOf(l: ListenEntry): string {
  switch (l.kind) {
    case 'stream':
      return 'ListenStream';
    case 'dgram':
      return 'ListenDatagram';
    case 'seqpacket':
      return 'ListenSequentialPacket';
    case 'netlink':
      return 'ListenNetlink';
    case 'fifo':
      return 'ListenFIFO';
    case 'special':
      return 'ListenSpecial';
    case 'mqueue':
      return 'ListenMessageQueue';
  }
}

function describeEntry(l: ListenEntry): string {
  return 'path' in l ? l.path : formatSocketAddress(l.address);
}

function pathOf(l: ListenEntry): string | undefined {
  if ('path' in l) return undefined;
  return l.address.family === 'unix' && l.address.path.startsWith('/') ? l.address.path : undefined;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}
