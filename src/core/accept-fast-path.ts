// The Accept=yes fast path: for a simple inetd-style template (one ExecStart=, the connection as
// stdio, no sandbox, no per-run steps), the socket addon's accept thread accepts and starts the
// instances itself (acceptSpawn) from a plan built here once per listening socket, and this module
// keeps one lightweight record per connection — a FastInstance, a real unit in the manager
// (status, list-units, stop, re-exec serialization) without a ServiceUnit, a job, an output pipe
// or a cgroup made by JavaScript. Configurations that do not qualify (fastPathEligibility) keep
// the ServiceUnit path in unit-system.startConnection.
//
// What qualifies, and why each rule is there (anything else would behave differently here):
//   - the socket: one ListenStream=/ListenSequentialPacket= entry (MaxConnections= is counted per
//     accept thread), MaxConnectionsPerSource=0 (not counted by the thread);
//   - the template: no specifiers in it (one plan serves every instance), Type=simple, exec or
//     oneshot with exactly one ExecStart= and none of ExecCondition=/ExecStartPre=/ExecStartPost=/
//     ExecReload=/ExecStop=/ExecStopPost= (no per-run control steps), Restart=no, no
//     RuntimeMaxSec=/WatchdogSec=/PIDFile=/Sockets=/FileDescriptorStoreMax=, no NotifyAccess=
//     (nobody to route notify messages to), no Condition*/Assert* and no OnFailure=/OnSuccess=
//     (they are evaluated per run), no EnvironmentFile= (read per run), no sandboxing or
//     RootDirectory= and no RuntimeDirectory=/StateDirectory=/... (per-run staging), stdin the
//     connection and stdout/stderr the connection or /dev/null (no per-instance log pipes), no
//     '+'/'!' prefixes, and no $VARIABLES on the command line (REMOTE_ADDR differs per connection).
// Differences that remain: TriggerLimit= and PollLimit= are checked as the batches arrive, so
// the connections of the batch that hit a limit are served (the next ones wait in the backlog).
// Instances restored after a re-exec (ServiceUnits then) lower the thread's MaxConnections=
// until they end.
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import type {
  AcceptRecord,
  AcceptSpawnOptions,
  AcceptSpawner,
  NativeSocket,
  SocketAddress,
} from '../native/socket-addon';
import type { ExecPlan } from '../exec/exec-plan';
import { buildExecPlan, ExecPlanError, type BuiltExecPlan } from '../exec/exec-context-plan';
import type { LoadedUnitFile, SocketSection } from '../units/config-types';
import { connectionInstance, formatSocketAddress } from '../units/socket-address';
import type {
  ActiveState,
  JobEnd,
  JobOutcome,
  SerializeContext,
  SerializedUnit,
  UnitInstance,
} from '../units/unit-type';

/** Whether a socket and its template can take the fast path, and if not, every reason why. */
export type FastPathEligibility = { ok: true; connectionFds: number[] } | { ok: false; reasons: string[] };

/** Pure: decides from the parsed files alone. */
export function fastPathEligibility(
  socket: SocketSection,
  template: LoadedUnitFile,
  mentionsSpecifiers: boolean,
): FastPathEligibility {
  const reasons: string[] = [];
  const no = (why: string): void => {
    reasons.push(why);
  };
  if (!socket.accept) no('Accept=no');
  if (socket.listen.length !== 1)
    no(`${socket.listen.length} Listen*= entries (one accept thread counts MaxConnections=)`);
  else if (socket.listen[0]?.kind !== 'stream' && socket.listen[0]?.kind !== 'seqpacket')
    no(`a ${socket.listen[0]?.kind} socket`);
  if (socket.maxConnectionsPerSource > 0) no('MaxConnectionsPerSource=');
  const svc = template.service;
  if (template.loadState !== 'loaded' || svc === undefined) {
    no(`the template is ${template.loadState}`);
    return { ok: false, reasons };
  }
  if (mentionsSpecifiers) no('specifiers in the template');
  if (svc.type !== 'simple' && svc.type !== 'exec' && svc.type !== 'oneshot') no(`Type=${svc.type}`);
  if (svc.execStart.length !== 1) no(`${svc.execStart.length} ExecStart= commands`);
  const steps: [string, unknown[]][] = [
    ['ExecCondition=', svc.execCondition],
    ['ExecStartPre=', svc.execStartPre],
    ['ExecStartPost=', svc.execStartPost],
    ['ExecReload=', svc.execReload],
    ['ExecStop=', svc.execStop],
    ['ExecStopPost=', svc.execStopPost],
  ];
  for (const [key, list] of steps) if (list.length > 0) no(key);
  const cmd = svc.execStart[0];
  if (cmd !== undefined && (cmd.fullPrivileges || cmd.noSetuidDrop || cmd.ambientFallback))
    no('an ExecStart= prefix (+, ! or !!)');
  if (cmd !== undefined && !cmd.noEnvExpand && cmd.argv.some((a) => a.includes('$')))
    no('$VARIABLES in ExecStart= (REMOTE_ADDR and friends differ per connection)');
  if (svc.restart !== 'no') no(`Restart=${svc.restart}`);
  if (Number.isFinite(svc.runtimeMaxMs) && svc.runtimeMaxMs > 0) no('RuntimeMaxSec=');
  if (svc.watchdogMs > 0) no('WatchdogSec=');
  if (svc.pidFile !== undefined) no('PIDFile=');
  if (svc.sockets.length > 0) no('Sockets=');
  if (svc.fileDescriptorStoreMax > 0) no('FileDescriptorStoreMax=');
  if (svc.notifyAccess !== undefined && svc.notifyAccess !== 'none') no(`NotifyAccess=${svc.notifyAccess}`);
  const u = template.unit;
  if (u.conditions.length > 0) no('Condition*=/Assert*=');
  if (u.dependencies.OnFailure.length > 0) no('OnFailure=');
  if (u.dependencies.OnSuccess.length > 0) no('OnSuccess=');
  const x = svc.exec;
  if (x.environmentFiles.length > 0) no('EnvironmentFile=');
  if (x.rootDirectory !== undefined) no('RootDirectory=');
  if (x.privateTmp) no('PrivateTmp=');
  if (x.privateNetwork) no('PrivateNetwork=');
  if (x.privateDevices) no('PrivateDevices=');
  if (x.protectSystem !== 'no') no(`ProtectSystem=${x.protectSystem}`);
  if (x.protectHome !== 'no') no(`ProtectHome=${x.protectHome}`);
  if (x.readOnlyPaths.length + x.readWritePaths.length + x.inaccessiblePaths.length > 0)
    no('ReadOnlyPaths=/ReadWritePaths=/InaccessiblePaths=');
  const dirs =
    x.runtimeDirectory.length +
    x.stateDirectory.length +
    x.cacheDirectory.length +
    x.logsDirectory.length +
    x.configurationDirectory.length;
  if (dirs > 0)
    no('RuntimeDirectory=/StateDirectory=/CacheDirectory=/LogsDirectory=/ConfigurationDirectory=');
  // stdio: which child fds are the connection (the rest must be /dev/null).
  const connectionFds: number[] = [];
  const socketIn = x.standardInput.kind === 'socket';
  if (!socketIn) no(`StandardInput=${x.standardInput.kind}`);
  else connectionFds.push(0);
  const out = x.standardOutput.kind;
  const stdoutIsConnection = out === 'socket' || (socketIn && out === 'inherit');
  if (stdoutIsConnection) connectionFds.push(1);
  else if (out !== 'null') no(`StandardOutput=${out}`);
  const err = x.standardError.kind;
  if (err === 'inherit' || err === 'inherit-output') {
    if (stdoutIsConnection) connectionFds.push(2);
  } else if (err === 'socket') connectionFds.push(2);
  else if (err !== 'null') no(`StandardError=${err}`);
  return reasons.length === 0 ? { ok: true, connectionFds } : { ok: false, reasons };
}

/**
 * The template's main process with /dev/null as stdio (the accept thread puts the connection on
 * `connectionFds`), built once per listening socket. Throws ExecPlanError as buildExecPlan does.
 */
export function connectionPlanTemplate(
  template: LoadedUnitFile,
  baseEnv: Readonly<Record<string, string>>,
  runtimeDir: string,
): BuiltExecPlan {
  const svc = template.service;
  const cmd = svc?.execStart[0];
  if (svc === undefined || cmd === undefined)
    throw new ExecPlanError('ERR_EXEC_INVALID', `${template.name} has no ExecStart=`, template.name);
  return buildExecPlan(
    svc.exec,
    cmd,
    { base: baseEnv },
    { unitName: template.name, runtimeDir, stdio: { stdin: -1, stdout: -1, stderr: -1 }, mountInfo: '' },
  );
}

// ---- the lightweight instance ------------------------------------------------------------------

export type FastInstanceState = 'running' | 'stop-sigterm' | 'stop-sigkill' | 'dead' | 'failed';
export type FastInstanceResult = 'success' | 'exit-code' | 'signal' | 'core-dump' | 'resources' | 'timeout';

const ACTIVE: Record<FastInstanceState, ActiveState> = {
  running: 'active',
  'stop-sigterm': 'deactivating',
  'stop-sigkill': 'deactivating',
  dead: 'inactive',
  failed: 'failed',
};

/** What a FastInstance needs from the world. */
export interface FastInstanceHost {
  /** Signal the main process (through the accept thread's pidfd); false once it was reaped. */
  signal(pid: number, signal: number): boolean;
  /**
   * Signal every process in the instance's cgroup (KillMode=control-group/mixed). `pid`: the
   * instance's main process, by which the accept thread knows whether the group is still its own.
   */
  signalGroup(cgroup: string, signal: number, pid: number | undefined): void;
  setTimer(ms: number, fn: () => void): () => void;
  /** A transition someone may be waiting for (a job, `status`): tell the engine. */
  stateChanged(unit: FastInstance, from: FastInstanceState, to: FastInstanceState): void;
  jobFinished(unit: string, end: JobEnd): void;
  /** It is over and nobody needs to see it any more (reset-failed): out of the manager. */
  forget(unit: FastInstance): void;
}

/** One connection's instance, started by the accept thread. */
export class FastInstance implements UnitInstance {
  readonly suffix = '.service';
  readonly load = 'loaded' as const;
  readonly logQuietly = true;
  state: FastInstanceState;
  result: FastInstanceResult = 'success';
  since: number;
  /** Set once a job or a caller acted on it: its transitions then go to the engine. */
  watched = false;
  exit: { code: 'exited' | 'killed' | 'dumped'; status: number } | undefined;
  /** Why it failed before its program ran (the clone or exec step). */
  failure: string | undefined;
  private pendingStop = false;
  private cancelTimer: (() => void) | undefined;

  constructor(
    readonly name: string,
    private readonly template: LoadedUnitFile,
    private readonly host: FastInstanceHost,
    readonly pid: number | undefined,
    readonly cgroup: string | undefined,
    readonly remote: SocketAddress | undefined,
    acceptedAt: number,
  ) {
    this.state = pid !== undefined ? 'running' : 'failed';
    this.since = acceptedAt;
  }

  /** The instance's file: the template's, named for this instance (made when asked for). */
  get file(): LoadedUnitFile {
    const at = this.name.indexOf('@');
    return { ...this.template, name: this.name, instance: this.name.slice(at + 1, -'.service'.length) };
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.template.unit.description ?? this.name;
  }

  start(): JobOutcome {
    if (this.state === 'running') return 'done';
    return { failed: 'failed', reason: `${this.name} served one connection; it cannot be started again` };
  }

  stop(): JobOutcome {
    this.watched = true;
    if (this.state === 'dead' || this.state === 'failed') return 'done';
    this.pendingStop = true;
    if (this.state === 'running') this.kill('stop-sigterm');
    return 'pending';
  }

  reload(): JobOutcome {
    return { failed: 'failed', reason: `${this.name} cannot be reloaded` };
  }

  /** `triggerctl reset-failed`: a failed instance goes, as a collected one does. */
  resetFailed(): void {
    if (this.state !== 'failed') return;
    this.result = 'success';
    this.watched = true;
    this.setState('dead');
    this.host.forget(this);
  }

  canReload(): boolean {
    return false;
  }

  /** The main process is gone (the accept thread reaped it). */
  exited(code: 'exited' | 'killed' | 'dumped', status: number): void {
    this.exit = { code, status };
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const svc = this.template.service;
    const stopping = this.state === 'stop-sigterm' || this.state === 'stop-sigkill';
    let ok: boolean;
    if (code === 'exited') ok = status === 0 || (svc?.successExitStatus.codes.includes(status) ?? false);
    else
      ok =
        (stopping && status === svc?.kill.killSignal) ||
        (svc?.successExitStatus.signals.includes(status) ?? false) ||
        [1, 2, 13, 15].includes(status);
    if (!ok && this.result === 'success')
      this.result = code === 'exited' ? 'exit-code' : code === 'dumped' ? 'core-dump' : 'signal';
    this.setState(this.result === 'success' ? 'dead' : 'failed');
  }

  /** At the daemon's shutdown: SIGKILL to what is left of it. */
  forceKill(): void {
    if (this.state === 'dead' || this.state === 'failed') return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.pid !== undefined) this.host.signal(this.pid, 9);
    if (this.cgroup !== undefined) this.host.signalGroup(this.cgroup, 9, this.pid);
  }

  private kill(state: 'stop-sigterm' | 'stop-sigkill'): void {
    const k = this.template.service?.kill;
    const sigkill = state === 'stop-sigkill';
    const signal = sigkill ? (k?.finalKillSignal ?? 9) : (k?.killSignal ?? 15);
    this.setState(state);
    if (this.pid !== undefined && k?.killMode !== 'none') this.host.signal(this.pid, signal);
    if (this.pid !== undefined && !sigkill) this.host.signal(this.pid, 18);
    if (
      this.cgroup !== undefined &&
      (k?.killMode === 'control-group' || (k?.killMode === 'mixed' && sigkill))
    )
      this.host.signalGroup(this.cgroup, signal, this.pid);
    const timeout = this.template.service?.timeoutStopMs ?? 90_000;
    if (!sigkill && (k?.sendSIGKILL ?? true) && Number.isFinite(timeout) && timeout > 0) {
      this.cancelTimer = this.host.setTimer(timeout, () => {
        this.cancelTimer = undefined;
        if (this.state === 'stop-sigterm') {
          if (this.result === 'success') this.result = 'timeout';
          this.kill('stop-sigkill');
        }
      });
    }
  }

  private setState(next: FastInstanceState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (this.watched || next === 'failed') this.host.stateChanged(this, from, next);
    if (this.pendingStop && (next === 'dead' || next === 'failed')) {
      this.pendingStop = false;
      this.host.jobFinished(this.name, 'done');
    }
  }

  properties(): Record<string, unknown> {
    return {
      Type: this.template.service?.type ?? 'simple',
      Result: this.result,
      MainPID: this.state === 'running' || this.state.startsWith('stop') ? (this.pid ?? 0) : 0,
      ExecMainPID: this.pid ?? 0,
      ExecMainCode: this.exit?.code ?? null,
      ExecMainStatus: this.exit?.status ?? null,
      ControlGroup: this.cgroup ?? null,
      RemoteAddress: this.remote === undefined ? null : formatSocketAddress(this.remote),
      StartedBy: 'accept thread (fast path)',
      Failure: this.failure ?? null,
    };
  }

  statusLines(): string[] {
    const label = (l: string): string => `${l.padStart(11)}: `;
    const lines: string[] = [];
    const cmd = this.template.service?.execStart[0];
    if (this.pid !== undefined) {
      const how =
        this.exit === undefined
          ? ''
          : this.exit.code === 'exited'
            ? ` (code=exited, status=${this.exit.status})`
            : ` (code=${this.exit.code}, signal=${this.exit.status})`;
      lines.push(
        `${label('Main PID')}${this.pid}${cmd !== undefined ? ` (${cmd.argv[0] ?? cmd.path})` : ''}${how}`,
      );
    }
    if (this.remote !== undefined)
      lines.push(`${label('Connection')}from ${formatSocketAddress(this.remote) || 'a local peer'}`);
    if (this.failure !== undefined) lines.push(`${label('Error')}${this.failure}`);
    if (this.cgroup !== undefined) lines.push(`${label('CGroup')}${this.cgroup}`);
    lines.push(`${label('Started by')}the socket's accept thread (Accept=yes fast path)`);
    return lines;
  }

  /**
   * The same shape ServiceUnit.serialize writes for a running instance, so a re-exec (or a crash
   * recovery) rebuilds it as an ordinary adopted instance (unit-system restoreInstance).
   */
  serialize(ctx: SerializeContext): SerializedUnit | undefined {
    if (this.state === 'dead') return undefined;
    const up = this.state !== 'failed' && this.pid !== undefined;
    return {
      state: up ? 'running' : 'failed',
      result: this.result === 'core-dump' ? 'core-dump' : this.result,
      nRestarts: 0,
      since: this.since,
      ...(up && this.pid !== undefined ? { mainPid: this.pid, mainStart: ctx.startTimeOf(this.pid) } : {}),
      ...(this.exit !== undefined && this.pid !== undefined
        ? { mainExit: { pid: this.pid, ...this.exit } }
        : {}),
      ready: up,
      fdStore: [],
    };
  }
}

// ---- the per-socket accept thread and its records ------------------------------------------------

/** What a socket unit hears from its accept thread (src/units/socket.ts implements it). */
export interface FastAcceptEvents {
  /** One wake-up's batch arrived; false: PollLimit= was hit (the socket paused). */
  woken(): boolean;
  /** The N of the next instance name (systemd's n_accepted), counted. */
  nextInstance(): number;
  /** An instance is live now (true) or over (false): Connected:, TriggerLimit=. */
  connection(live: boolean): void;
  refused(remote: SocketAddress | undefined, live: number): void;
  acceptFailed(error: { code?: string; message: string }): void;
}

/** The socket unit's handle on its accept thread. */
export interface FastAccept {
  pause(): void;
  resume(): void;
  close(): void;
  /** The live count at which the thread refuses (MaxConnections= less adopted instances). */
  setMaxConnections(max: number): void;
}

export interface AcceptFastPathDeps {
  native: () => NativeSocket;
  addUnit(unit: FastInstance): void;
  removeUnit(unit: FastInstance): void;
  /** Everything but `signal` (through the instance's accept thread) and `forget` (removeUnit). */
  instanceHost: Omit<FastInstanceHost, 'signal' | 'forget'>;
  logger: Logger;
}

/** Failed instances kept for `status` per socket (the oldest goes first); dead ones go at once. */
const KEEP_FAILED = 64;

/** Exits of pids nobody owned, kept a while: one may be a live instance's (see claimExit). */
const KEEP_ORPHAN_EXITS = 4096;
/** How long an instance whose exit status was taken by another reaper waits for it. */
const STATUS_WAIT_MS = 2000;

type ExitCode = 'exited' | 'killed' | 'dumped';

/** Starts accept threads and keeps their instances' records. */
export class AcceptFastPath {
  private readonly failed: FastInstance[] = [];
  /** Live instances of every accept thread, by pid: what to do when each is over. */
  private readonly live = new Map<number, (code: ExitCode, status: number) => void>();
  private readonly liveUnits = new Map<number, FastInstance>();
  /** Statuses the spawn addon's reaper reported for live instances, until the thread's record. */
  private readonly claimed = new Map<number, { code: ExitCode; status: number }>();
  /** Live instances whose record came without a status: waiting for claimExit. */
  private readonly awaitingStatus = new Set<number>();
  private readonly orphanExits = new Map<number, { code: ExitCode; status: number; at: number }>();

  /**
   * An exit the spawn addon's reaper got (its waitid(P_ALL) can take an instance's exit before
   * the accept thread's waitid on the pidfd; the thread then reports it without a status).
   * True when it was a live instance's; other pids are remembered for a while, since the record
   * that starts the instance may still be on its way.
   */
  claimExit(exit: { pid: number; code: ExitCode; status: number }): boolean {
    const finish = this.live.get(exit.pid);
    if (finish !== undefined) {
      // The instance ends with the thread's record (its slot group is free by then); the
      // status is kept for it, or completes a record that came without one.
      if (this.awaitingStatus.delete(exit.pid)) finish(exit.code, exit.status);
      else this.claimed.set(exit.pid, { code: exit.code, status: exit.status });
      return true;
    }
    this.orphanExits.delete(exit.pid);
    this.orphanExits.set(exit.pid, { code: exit.code, status: exit.status, at: Date.now() });
    if (this.orphanExits.size > KEEP_ORPHAN_EXITS) {
      const oldest = this.orphanExits.keys().next();
      if (oldest.done !== true) this.orphanExits.delete(oldest.value);
    }
    return false;
  }

  constructor(private readonly deps: AcceptFastPathDeps) {}

  /**
   * Starts the accept thread on `fd` for `socket`'s template `template` (eligible, see above):
   * `plan` is the template's main process with /dev/null as stdio. Undefined when the addon
   * has no fast path or refused (the caller watches the fd the ordinary way then).
   */
  start(
    socketName: string,
    fd: number,
    template: LoadedUnitFile,
    plan: ExecPlan,
    options: AcceptSpawnOptions,
    events: FastAcceptEvents,
  ): FastAccept | undefined {
    const native = this.deps.native();
    if (native.acceptSpawn === undefined) return undefined;
    const log = this.deps.logger.child({ unit: socketName });
    const prefix = template.name.slice(0, -'@.service'.length);
    const failLog = new RateLimitedLog(10_000, 5);
    const startTimes = new Map<number, number>();
    const startedAt = (pid: number): number => startTimes.get(pid) ?? 0;
    // Signals go through the thread's pidfds; the thread exists once acceptSpawn returned.
    const thread: { spawner?: AcceptSpawner } = {};
    const host: FastInstanceHost = {
      ...this.deps.instanceHost,
      signal: (pid, signal) => thread.spawner?.signal(pid, signal) ?? false,
      // The slot's group through the thread, which lends it to the next instance once found
      // empty (maybe before this instance's exit record is read): by path only once it is gone.
      signalGroup: (cgroup, signal, pid) => {
        const answer = pid !== undefined ? thread.spawner?.signalGroup(pid, signal) : undefined;
        if (answer === undefined || answer === null) this.deps.instanceHost.signalGroup(cgroup, signal, pid);
      },
      forget: (unit) => {
        const at = this.failed.indexOf(unit);
        if (at >= 0) this.failed.splice(at, 1);
        this.deps.removeUnit(unit);
      },
    };
    const onRecords = (records: AcceptRecord[]): void => {
      // Over PollLimit= the socket pauses the thread; this batch is served all the same.
      events.woken();
      for (const r of records) {
        switch (r.kind) {
          case 'started': {
            const name = this.instanceName(prefix, events.nextInstance(), r);
            const unit = new FastInstance(name, template, host, r.pid, r.cgroup, r.remote, r.at);
            const pid = r.pid;
            startTimes.set(pid, r.at);
            const finish = (code: ExitCode, status: number): void => {
              // Once, and only for this instance (the pid may be another's by now).
              if (this.live.get(pid) !== finish) return;
              this.live.delete(pid);
              this.liveUnits.delete(pid);
              this.claimed.delete(pid);
              this.awaitingStatus.delete(pid);
              startTimes.delete(pid);
              events.connection(false);
              unit.exited(code, status);
              if (unit.state === 'failed') {
                const suppressed = failLog.admit();
                if (suppressed >= 0)
                  log.warn(
                    { instance: unit.name, code, status, ...(suppressed > 0 ? { suppressed } : {}) },
                    `${unit.name}: main process ${code === 'exited' ? `exited with status ${status}` : `killed by signal ${status}`}`,
                  );
                this.keepFailed(unit);
              } else this.deps.removeUnit(unit);
            };
            this.live.set(pid, finish);
            this.liveUnits.set(pid, unit);
            this.deps.addUnit(unit);
            events.connection(true);
            break;
          }
          case 'exited': {
            const finish = this.live.get(r.pid);
            if (r.cgroupBusy === true)
              log.warn(
                { pid: r.pid, cgroup: r.cgroup },
                `${r.cgroup} still has processes after the instance ended; not reused`,
              );
            if (finish === undefined) break;
            const claimed = this.claimed.get(r.pid);
            if (r.error === undefined) {
              finish(r.code, r.status);
              break;
            }
            // Another reaper took the status: it came, or comes, through claimExit.
            if (claimed !== undefined) {
              finish(claimed.code, claimed.status);
              break;
            }
            const known = this.orphanExits.get(r.pid);
            if (known !== undefined && known.at >= startedAt(r.pid)) {
              this.orphanExits.delete(r.pid);
              finish(known.code, known.status);
              break;
            }
            this.awaitingStatus.add(r.pid);
            this.deps.instanceHost.setTimer(STATUS_WAIT_MS, () => {
              // Nobody reported it: the status is lost; an end like any other.
              if (this.live.get(r.pid) === finish) this.awaitingStatus.delete(r.pid);
              finish('exited', 0);
            });
            break;
          }
          case 'failed': {
            const name = this.instanceName(prefix, events.nextInstance(), r);
            const unit = new FastInstance(name, template, host, undefined, undefined, r.remote, r.at);
            unit.result = 'resources';
            const step =
              r.error.step !== undefined
                ? `failed at step ${r.error.step}`
                : `${r.error.syscall ?? 'clone'} failed`;
            unit.failure = `${step}: ${r.error.message.replace(/^failed at step [A-Z_]+: /, '')} (${r.error.code ?? 'EIO'})${r.error.path !== undefined ? ` ${r.error.path}` : ''}`;
            this.deps.addUnit(unit);
            log.error(
              { instance: name, code: r.error.code, step: r.error.step },
              `cannot start ${name}: ${unit.failure}`,
            );
            this.deps.instanceHost.stateChanged(unit, 'running', 'failed');
            this.keepFailed(unit);
            break;
          }
          case 'refused':
            events.refused(r.remote, r.live);
            break;
          case 'accept-error':
            events.acceptFailed({ code: r.error.code, message: r.error.message });
            break;
        }
      }
    };
    let started: AcceptSpawner;
    try {
      started = native.acceptSpawn(fd, plan, options, onRecords);
    } catch (err) {
      log.warn(
        { err },
        `accept fast path not available (${(err as Error).message}); accepting in JavaScript`,
      );
      return undefined;
    }
    thread.spawner = started;
    log.debug({ fd }, 'accepting on the fast path');
    return {
      pause: () => started.pause(),
      resume: () => started.resume(),
      close: () => started.close(),
      setMaxConnections: (max) => started.setMaxConnections(max),
    };
  }

  /** At the daemon's shutdown, after the stop jobs had their time: SIGKILL to every live instance. */
  killRemaining(): void {
    for (const unit of this.liveUnits.values()) {
      this.deps.logger.warn({ unit: unit.name, pid: unit.pid }, 'still running at shutdown; killing');
      unit.forceKill();
    }
  }

  private instanceName(
    prefix: string,
    n: number,
    r: { local?: SocketAddress; remote?: SocketAddress; peerPid: number; peerUid: number },
  ): string {
    const unknown: SocketAddress = { family: 'unix', path: '' };
    const instance = connectionInstance(n, r.local ?? unknown, r.remote ?? unknown, {
      pid: r.peerPid,
      uid: r.peerUid,
    });
    return `${prefix}@${instance}.service`;
  }

  private keepFailed(unit: FastInstance): void {
    this.failed.push(unit);
    while (this.failed.length > KEEP_FAILED) {
      const old = this.failed.shift() as FastInstance;
      if (old.state === 'failed') this.deps.removeUnit(old);
    }
  }
}
