// .mount units: systemd's mount state machine (systemd.mount(5), src/core/mount.c). A mount unit
// mounts and unmounts through mount(8)/umount(8) as its control processes, and follows what the
// kernel says in /proc/self/mountinfo. The two sources of truth stay separate fields, as in
// systemd: `file` (what the unit file asks for) and `kernel` (the mount the kernel reports at
// Where=, top of the stack); the state is derived from both in setState(), the one place with
// side effects on the outside. A mount made by hand shows up as a unit with no file (the kernel
// is its only source), active while it is mounted.
//
// Where triggerd differs: a failed mount whose helper left something mounted is unmounted again
// (nothing half-mounted); the helpers' output goes to the unit's log and the last failure, with
// mount's own message, stays in `status` until the next success. Where libmount can do the same
// inside the daemon (src/mounts/in-process-mount.ts), the host does the mount or umount there
// instead of running mount(8)/umount(8): no control process, the same exit status and words.
import type { Logger } from '../util/logger';
import type { MountEntry } from '../mounts/mountinfo';
import { isBindMount, mountHelperOptions, type MountSection } from '../mounts/mount-config';
import type { MountCall, MountCallResult } from '../mounts/in-process-mount';
import type { LoadedUnitFile } from './config-types';
import type { ProcessExit } from './service';
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
import { isRecord, oneOf, pidField, stringField } from '../core/daemon-state';

export type MountState =
  | 'dead'
  | 'mounting'
  | 'mounting-done'
  | 'mounted'
  | 'remounting'
  | 'unmounting'
  | 'remounting-sigterm'
  | 'remounting-sigkill'
  | 'unmounting-sigterm'
  | 'unmounting-sigkill'
  | 'failed';

/** Why the mount is where it is (systemd's Result=). */
export type MountResult =
  'success' | 'resources' | 'timeout' | 'exit-code' | 'signal' | 'core-dump' | 'protocol';

const ACTIVE: Record<MountState, ActiveState> = {
  dead: 'inactive',
  mounting: 'activating',
  'mounting-done': 'activating',
  mounted: 'active',
  remounting: 'reloading',
  'remounting-sigterm': 'reloading',
  'remounting-sigkill': 'reloading',
  unmounting: 'deactivating',
  'unmounting-sigterm': 'deactivating',
  'unmounting-sigkill': 'deactivating',
  failed: 'failed',
};

/** What a mount or umount helper left behind, for `status` and for whoever waits on the unit. */
export interface MountFailure {
  /** Wall-clock ms. */
  at: number;
  command: 'mount' | 'umount' | 'remount';
  result: MountResult;
  /** Exit status or signal number. */
  status?: number;
  /** The helper's own words (its stderr), or what went wrong before it could run. */
  message: string;
}

/** The parameters a mount is made with: from the unit file, else from what the kernel showed. */
export interface MountParameters {
  what: string;
  type: string;
  options: string;
}

/** A helper the host runs: the executable and argv; its output is captured for the unit. */
export type HelperStart = { ok: true; pid: number } | { ok: false; message: string };

/** Everything a mount unit needs from the world. */
export interface MountHost {
  /** Run /bin/mount or /bin/umount as this unit's control process; output is kept per pid. */
  runHelper(argv: readonly string[]): HelperStart;
  /**
   * Do `call` inside the daemon instead (libmount on the threadpool); `done` runs later with the
   * exit status and words mount(8) would have given. False: it cannot, run the helper.
   */
  runInProcess?(call: MountCall, done: (r: MountCallResult) => void): boolean;
  /** Whether runInProcess would take `call`. */
  runsInProcess?(call: MountCall): boolean;
  /** The helper's output lines (logged by the host), once it has exited. */
  takeOutput(pid: number): string[];
  signal(pid: number, signal: number): void;
  /** mkdir -p Where= with the mode; the error message, or undefined. */
  prepareMountPoint(where: string, mode: number): string | undefined;
  /** Re-read mountinfo now: a helper just exited, and the unit must see the kernel's answer. */
  refreshMounts(): void;
  setTimer(ms: number, fn: () => void): () => void;
  jobFinished(end: JobEnd): void;
  stateChanged(from: MountState, to: MountState, result: MountResult): void;
  log: Logger;
}

const SIGTERM = 15;
const SIGKILL = 9;
/** systemd retries umount this often when one succeeds but another mount is stacked below. */
const RETRY_UMOUNT_MAX = 32;
const MOUNT_PATH = '/bin/mount';
const UMOUNT_PATH = '/bin/umount';
const KILL_TIMEOUT_MS = 10_000;

/** States in which a mount(8)/umount(8) helper runs (serialized and adopted across a re-exec). */
const CONTROL_STATES: readonly MountState[] = [
  'mounting',
  'mounting-done',
  'remounting',
  'unmounting',
  'remounting-sigterm',
  'remounting-sigkill',
  'unmounting-sigterm',
  'unmounting-sigkill',
];
const MOUNT_RESULTS: readonly MountResult[] = [
  'success',
  'resources',
  'timeout',
  'exit-code',
  'signal',
  'core-dump',
  'protocol',
];

export class MountUnit implements UnitInstance {
  readonly suffix = '.mount';
  state: MountState = 'dead';
  result: MountResult = 'success';
  since = Date.now();
  load: LoadState;
  /** The unit file's view (undefined for a mount known only from the kernel). */
  file: LoadedUnitFile | undefined;
  /** The kernel's view: the top mount at Where=, or undefined when nothing is mounted there. */
  kernel: MountEntry | undefined;
  /** The kernel entry last seen (parameters for a mount known only from the kernel). */
  lastKernel: MountEntry | undefined;
  readonly where: string;
  controlPid: number | undefined;
  /** The in-process mount or umount running for this unit (its sequence number), instead of a pid. */
  controlInProcess: number | undefined;
  controlCommand: 'mount' | 'umount' | 'remount' | undefined;
  lastFailure: MountFailure | undefined;
  /** Mounts survive the daemon: shutting triggerd down does not unmount them. */
  readonly keepOnShutdown = true;

  /** Mounts nobody configured come and go in storms (bind mounts of containers): debug only. */
  get logQuietly(): boolean {
    return this.file === undefined;
  }
  private pending: 'start' | 'stop' | 'reload' | undefined;
  private cancelTimer: (() => void) | undefined;
  private retryUmount = 0;
  private inProcessSeq = 0;
  /** After a killed helper: whether a stop is what we are doing (then unmount what is left). */
  private unmountAfterKill = false;
  private readonly listeners = new Set<(unit: MountUnit, from: MountState, to: MountState) => void>();

  constructor(
    readonly name: string,
    file: LoadedUnitFile | undefined,
    where: string,
    private readonly host: MountHost,
  ) {
    this.file = file;
    this.load = file?.loadState ?? 'loaded';
    this.where = file?.mount?.where ?? where;
  }

  get config(): MountSection | undefined {
    return this.file?.mount;
  }

  activeState(): ActiveState {
    return ACTIVE[this.state];
  }

  subState(): string {
    return this.state;
  }

  description(): string {
    return this.file?.unit.description ?? this.where;
  }

  canReload(): boolean {
    return true;
  }

  /** Hear every transition of this unit (the automount releases its waiters from here). */
  onTransition(fn: (unit: MountUnit, from: MountState, to: MountState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** What a mount would be made with now. */
  parameters(): MountParameters | undefined {
    const c = this.config;
    if (c !== undefined && c.what !== '') return { what: c.what, type: c.type, options: c.options };
    const k = this.kernel ?? this.lastKernel;
    if (k === undefined) return undefined;
    return { what: k.source, type: k.fsType, options: k.options };
  }

  start(): JobOutcome {
    if (this.load !== 'loaded') return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    switch (this.state) {
      case 'mounted':
        return 'done';
      case 'mounting':
      case 'mounting-done':
        this.pending = 'start';
        return 'pending';
      case 'unmounting':
      case 'unmounting-sigterm':
      case 'unmounting-sigkill':
      case 'remounting':
      case 'remounting-sigterm':
      case 'remounting-sigkill':
        return { failed: 'failed', reason: `${this.name} is ${this.state}; try again when it is done` };
      default:
        break;
    }
    if (this.kernel !== undefined) {
      this.setState('mounted', 'success');
      return 'done';
    }
    const p = this.parameters();
    if (p === undefined)
      return {
        failed: 'failed',
        reason: `${this.name} has no unit file and nothing is mounted at ${this.where}`,
      };
    this.result = 'success';
    this.retryUmount = 0;
    const c = this.config;
    const directoryMode = c?.directoryMode ?? 0o755;
    const problem = this.host.prepareMountPoint(this.where, directoryMode);
    if (problem !== undefined) {
      this.host.log.warn(`cannot create mount point ${this.where}: ${problem}`);
    }
    const argv = [MOUNT_PATH, p.what, this.where];
    if (c?.sloppyOptions === true) argv.push('-s');
    if (c?.readWriteOnly === true) argv.push('-w');
    if (p.type !== '') argv.push('-t', p.type);
    const opts = mountHelperOptions(p.options);
    if (opts !== '') argv.push('-o', opts);
    if (!this.runControl('mount', argv, this.mountCall(p)))
      return { failed: 'failed', reason: this.lastFailure?.message ?? 'mount failed' };
    this.pending = 'start';
    this.setState('mounting', 'success');
    return 'pending';
  }

  resumeJob(type: 'start' | 'stop' | 'reload'): boolean {
    if (this.pending !== undefined) return this.pending === type;
    const going =
      type === 'start'
        ? this.state === 'mounting' || this.state === 'mounting-done'
        : type === 'stop'
          ? this.state === 'unmounting' ||
            this.state === 'unmounting-sigterm' ||
            this.state === 'unmounting-sigkill'
          : this.state === 'remounting' ||
            this.state === 'remounting-sigterm' ||
            this.state === 'remounting-sigkill';
    if (going) this.pending = type;
    return going;
  }

  stop(): JobOutcome {
    switch (this.state) {
      case 'dead':
      case 'failed':
        return 'done';
      case 'unmounting':
      case 'unmounting-sigterm':
      case 'unmounting-sigkill':
        this.pending = 'stop';
        return 'pending';
      case 'mounting':
      case 'mounting-done':
      case 'remounting':
      case 'remounting-sigterm':
      case 'remounting-sigkill':
        // A start in progress is over (the job engine has replaced its job): kill the helper,
        // then unmount whatever it left.
        this.pending = 'stop';
        this.unmountAfterKill = true;
        this.enterSignal('unmounting-sigterm', 'success');
        return 'pending';
      case 'mounted':
        break;
    }
    this.pending = 'stop';
    this.retryUmount = 0;
    // Each stop judges itself (systemd keeps an earlier busy umount's result and ends 'failed'
    // after a later umount that works); the earlier failure stays in lastFailure for status.
    this.result = 'success';
    if (!this.enterUnmounting()) {
      this.pending = undefined;
      return { failed: 'failed', reason: this.lastFailure?.message ?? 'umount failed' };
    }
    return 'pending';
  }

  reload(): JobOutcome {
    if (this.state !== 'mounted') return { failed: 'failed', reason: `${this.name} is not mounted` };
    const p = this.parameters();
    if (p === undefined) return 'done';
    const opts = mountHelperOptions(p.options);
    const argv = [MOUNT_PATH, p.what, this.where, '-o', opts === '' ? 'remount' : `remount,${opts}`];
    if (p.type !== '') argv.push('-t', p.type);
    if (!this.runControl('remount', argv))
      return { failed: 'failed', reason: this.lastFailure?.message ?? 'remount failed' };
    this.pending = 'reload';
    this.setState('remounting', 'success');
    return 'pending';
  }

  /** The kernel's view of Where= changed (the mount tracker calls this after each read). */
  setKernel(entry: MountEntry | undefined): void {
    const had = this.kernel !== undefined;
    this.kernel = entry;
    if (entry !== undefined) this.lastKernel = entry;
    const has = entry !== undefined;
    if (had === has) return;
    if (has) {
      switch (this.state) {
        case 'dead':
        case 'failed':
          // Mounted by someone else (by hand, another manager): we follow the kernel.
          this.setState('mounted', 'success');
          break;
        case 'mounting':
          this.setState('mounting-done', this.result);
          break;
        default:
          break;
      }
    } else {
      switch (this.state) {
        case 'mounted':
          // Unmounted by hand: the unit is down.
          this.setState('dead', 'success');
          break;
        case 'mounting-done':
          // fuse.sshfs adds and removes the entry during its mount (systemd#17617).
          this.setState('mounting', this.result);
          break;
        default:
          break;
      }
    }
  }

  /** A control process exited. */
  onExit(exit: ProcessExit): void {
    if (exit.pid !== this.controlPid) return;
    this.controlPid = undefined;
    const lines = this.host.takeOutput(exit.pid);
    if (exit.statusUnknown === true) return this.unknownControlExit(exit.pid);
    const f: MountResult =
      exit.code === 'exited'
        ? exit.status === 0
          ? 'success'
          : 'exit-code'
        : exit.code === 'dumped'
          ? 'core-dump'
          : 'signal';
    const how =
      exit.code === 'exited' ? `exited with status ${exit.status}` : `killed by signal ${exit.status}`;
    this.controlDone(f, exit.status, lines, how);
  }

  // ---- re-exec and crash recovery --------------------------------------------------------------
  // Without a helper running, a mount has nothing to serialize: mountinfo says what it is. With
  // one (mount(8)/umount(8)), the helper is adopted and its exit decides as if we had run it.

  /** A helper's exit that happened while no daemon watched (status unknown), for catchup(). */
  private lostControlExit: number | undefined;

  serialize(ctx: SerializeContext): SerializedUnit | undefined {
    const pid = this.controlPid;
    if (pid === undefined || this.controlCommand === undefined) return undefined;
    return {
      state: this.state,
      result: this.result,
      unmountAfterKill: this.unmountAfterKill,
      control: { pid, start: ctx.startTimeOf(pid), command: this.controlCommand },
    };
  }

  deserialize(data: SerializedUnit, ctx: DeserializeContext): boolean {
    const state = oneOf(data.state, CONTROL_STATES);
    const control = data.control;
    if (state === undefined || !isRecord(control)) return false;
    const pid = pidField(control, 'pid');
    const command = oneOf(control.command, ['mount', 'umount', 'remount'] as const);
    if (pid === undefined || command === undefined) {
      ctx.warn('a malformed mount helper entry; not restored');
      return false;
    }
    this.result = oneOf(data.result, MOUNT_RESULTS) ?? 'success';
    this.unmountAfterKill = data.unmountAfterKill === true;
    this.controlPid = pid;
    this.controlCommand = command;
    if (!ctx.adoptProcess(pid, stringField(control, 'start'))) this.lostControlExit = pid;
    // Whether the mount has shown up yet is the kernel's to say now.
    const next =
      state === 'mounting' || state === 'mounting-done'
        ? this.kernel !== undefined
          ? 'mounting-done'
          : 'mounting'
        : state;
    this.setState(next, this.result);
    this.armTimer(
      next.endsWith('-sigterm') || next.endsWith('-sigkill')
        ? KILL_TIMEOUT_MS
        : (this.config?.timeoutMs ?? 90_000),
    );
    return true;
  }

  catchup(): void {
    const lost = this.lostControlExit;
    this.lostControlExit = undefined;
    if (lost !== undefined && this.controlPid === lost)
      this.onExit({ pid: lost, code: 'exited', status: 255, statusUnknown: true });
  }

  /** An adopted helper ended unseen: whether it worked is what the mount table shows now. */
  private unknownControlExit(pid: number): void {
    this.host.refreshMounts();
    const command = this.controlCommand ?? 'mount';
    const worked = command === 'umount' ? this.kernel === undefined : this.kernel !== undefined;
    this.host.log.warn(
      { pid },
      `${command} helper ${pid} ended while no daemon watched it; its exit status is unknown: ` +
        `${worked ? 'taken as success' : 'taken as failed'} (the mount table says so)`,
    );
    this.controlDone(worked ? 'success' : 'exit-code', worked ? 0 : 255, [], 'ended unseen');
  }

  /** The in-process mount or umount `seq` is over (one the unit stopped waiting for is ignored). */
  private onInProcessDone(seq: number, r: MountCallResult): void {
    if (seq !== this.controlInProcess) return;
    this.controlInProcess = undefined;
    for (const l of r.lines) this.host.log.info({ stream: 'stderr' }, l);
    this.controlDone(
      r.status === 0 ? 'success' : 'exit-code',
      r.status,
      r.lines,
      `failed with status ${r.status}`,
    );
  }

  /** The control process exited or the in-process call returned: record it, then decide. */
  private controlDone(f: MountResult, status: number, lines: readonly string[], how: string): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const command = this.controlCommand ?? 'mount';
    this.controlCommand = undefined;
    if (f !== 'success' && !(this.state.endsWith('-sigterm') || this.state.endsWith('-sigkill'))) {
      const message = lines.filter((l) => l.trim() !== '').join('\n') || `${command} ${how}`;
      this.lastFailure = { at: Date.now(), command, result: f, status, message };
    }
    if (this.result === 'success' && f !== 'success') this.result = f;
    this.afterControl(f, command);
  }

  /** The control process is gone (or there was none): decide from the kernel's answer. */
  private afterControl(f: MountResult, command: 'mount' | 'umount' | 'remount'): void {
    // A mount that worked and that mountinfo has shown already needs no synchronous re-read
    // (a later unmount arrives through the watch anyway); anything else asks the kernel now.
    if (!(f === 'success' && this.state === 'mounting-done')) this.host.refreshMounts();
    switch (this.state) {
      case 'mounting':
      case 'mounting-done':
        if (this.kernel !== undefined && f === 'success') {
          this.lastFailure = undefined;
          this.enterMounted('success');
        } else if (this.kernel !== undefined) {
          // The helper failed but left a mount behind: take it away again.
          this.host.log.warn(`${command} failed but ${this.where} is mounted; unmounting it again`);
          this.unmountAfterKill = true;
          this.pendingFailure();
          this.retryUmount = 0;
          if (!this.enterUnmounting()) this.enterDead(this.result);
        } else if (f === 'success') {
          this.lastFailure = {
            at: Date.now(),
            command,
            result: 'protocol',
            message: `${command} exited successfully but nothing is mounted at ${this.where}`,
          };
          this.enterDead('protocol');
        } else {
          this.enterDead(f);
        }
        break;
      case 'remounting':
      case 'remounting-sigterm':
      case 'remounting-sigkill':
        if (f === 'success') this.lastFailure = undefined;
        this.enterMounted(f);
        break;
      case 'unmounting':
        if (this.kernel === undefined) {
          if (f === 'success' && !this.unmountAfterKill) this.lastFailure = undefined;
          this.enterDead(this.unmountAfterKill ? this.result : f);
        } else if (f === 'success' && this.retryUmount < RETRY_UMOUNT_MAX) {
          // Another mount was stacked at Where=: unmount that one too.
          this.retryUmount++;
          if (!this.enterUnmounting()) this.enterMounted(this.result);
        } else if (this.unmountAfterKill) {
          this.enterDead(this.result);
        } else {
          // Busy (or refused): still mounted, and the stop job fails with umount's words.
          this.enterMounted(f);
        }
        break;
      case 'unmounting-sigterm':
      case 'unmounting-sigkill':
        if (this.kernel !== undefined && this.unmountAfterKill) {
          this.retryUmount = 0;
          if (!this.enterUnmounting()) this.enterDead(this.result);
        } else if (this.kernel !== undefined) {
          this.enterMounted(this.result);
        } else {
          this.enterDead(this.result);
        }
        break;
      default:
        break;
    }
  }

  properties(): Record<string, unknown> {
    const p = this.parameters();
    const c = this.config;
    return {
      Where: this.where,
      What: p?.what ?? '',
      Type: p?.type ?? '',
      Options: this.kernel?.options ?? p?.options ?? '',
      SloppyOptions: c?.sloppyOptions ?? false,
      LazyUnmount: c?.lazyUnmount ?? false,
      ForceUnmount: c?.forceUnmount ?? false,
      ReadWriteOnly: c?.readWriteOnly ?? false,
      DirectoryMode: (c?.directoryMode ?? 0o755).toString(8).padStart(4, '0'),
      TimeoutUSec: c === undefined || c.timeoutMs === Infinity ? 'infinity' : c.timeoutMs * 1000,
      Result: this.result,
      ControlPID: this.controlPid ?? 0,
      MountId: this.kernel?.id ?? 0,
      FromKernel: this.kernel !== undefined,
      FromFile: this.file !== undefined && this.file.fragmentPath !== undefined,
      LastError: this.lastFailure?.message ?? '',
    };
  }

  statusLines(): string[] {
    const p = this.parameters();
    const lines = [`      Where: ${this.where}`];
    if (p !== undefined) {
      lines.push(`       What: ${p.what}`);
      if (p.type !== '') lines.push(`       Type: ${p.type}`);
    }
    const k = this.kernel;
    if (k !== undefined) {
      lines.push(`    Options: ${k.options}${k.superOptions !== '' ? ` (${k.superOptions})` : ''}`);
      lines.push(`     Kernel: mounted (mount id ${k.id}, ${k.fsType} from ${k.source})`);
    } else {
      if (p !== undefined && p.options !== '') lines.push(`    Options: ${p.options}`);
      lines.push('     Kernel: not mounted');
    }
    if (this.controlPid !== undefined)
      lines.push(`    Control: ${this.controlPid} (${this.controlCommand ?? 'mount'})`);
    else if (this.controlInProcess !== undefined)
      lines.push(`    Control: in process (${this.controlCommand ?? 'mount'}, libmount)`);
    const f = this.lastFailure;
    if (f !== undefined) {
      const [first, ...rest] = f.message.split('\n');
      lines.push(
        `      Error: ${f.command} ${f.result}${f.status !== undefined ? ` (status ${f.status})` : ''} at ${new Date(f.at).toISOString()}: ${first ?? ''}`,
      );
      for (const l of rest) lines.push(`             ${l.trim()}`);
    }
    return lines;
  }

  // --- transitions ---

  private runControl(command: 'mount' | 'umount' | 'remount', argv: string[], call?: MountCall): boolean {
    if (call !== undefined && this.host.runInProcess !== undefined) {
      const seq = ++this.inProcessSeq;
      if (this.host.runInProcess(call, (r) => this.onInProcessDone(seq, r))) {
        this.controlInProcess = seq;
        this.controlCommand = command;
        this.host.log.info(`libmount in the daemon: ${command} ${argv.slice(1).join(' ')}`);
        this.armTimer(this.config?.timeoutMs ?? 90_000);
        return true;
      }
    }
    const r = this.host.runHelper(argv);
    if (!r.ok) {
      this.lastFailure = { at: Date.now(), command, result: 'resources', message: r.message };
      this.result = 'resources';
      this.enterDead('resources');
      return false;
    }
    this.controlPid = r.pid;
    this.controlCommand = command;
    this.host.log.info({ pid: r.pid }, argv.join(' '));
    const ms = this.config?.timeoutMs ?? 90_000;
    this.armTimer(ms);
    return true;
  }

  private armTimer(ms: number): void {
    this.cancelTimer?.();
    this.cancelTimer = Number.isFinite(ms) ? this.host.setTimer(ms, () => this.onTimeout()) : undefined;
  }

  private onTimeout(): void {
    this.cancelTimer = undefined;
    switch (this.state) {
      case 'mounting':
      case 'mounting-done':
        this.host.log.warn(`mounting ${this.where} timed out; terminating mount`);
        this.lastFailure = {
          at: Date.now(),
          command: 'mount',
          result: 'timeout',
          message: `mount timed out`,
        };
        this.unmountAfterKill = true;
        this.pendingFailure();
        this.enterSignal('unmounting-sigterm', 'timeout');
        break;
      case 'remounting':
        this.lastFailure = {
          at: Date.now(),
          command: 'remount',
          result: 'timeout',
          message: 'remount timed out',
        };
        this.enterSignal('remounting-sigterm', 'timeout');
        break;
      case 'unmounting':
        this.host.log.warn(`unmounting ${this.where} timed out; terminating umount`);
        this.lastFailure = {
          at: Date.now(),
          command: 'umount',
          result: 'timeout',
          message: 'umount timed out',
        };
        this.enterSignal('unmounting-sigterm', 'timeout');
        break;
      case 'unmounting-sigterm':
        this.enterSignal('unmounting-sigkill', this.result);
        break;
      case 'remounting-sigterm':
        this.enterSignal('remounting-sigkill', this.result);
        break;
      default:
        // SIGKILL did not end it: stop waiting for it.
        if (this.controlPid !== undefined)
          this.onExit({ pid: this.controlPid, code: 'killed', status: SIGKILL });
        else if (this.controlInProcess !== undefined) {
          // A call on the threadpool cannot be interrupted: stop waiting; if it mounts later, the
          // unit follows the kernel as for a mount made by hand.
          this.host.log.warn(
            `the in-process ${this.controlCommand ?? 'mount'} of ${this.where} is still running; no longer waiting for it`,
          );
          this.controlInProcess = undefined;
          this.controlDone('signal', SIGKILL, [], 'did not return');
        }
        break;
    }
  }

  private enterSignal(state: MountState, f: MountResult): void {
    if (this.result === 'success') this.result = f;
    if (this.controlPid === undefined && this.controlInProcess === undefined) {
      this.setState(state, this.result);
      this.afterControl('success', 'umount');
      return;
    }
    // An in-process call cannot be signalled: it is waited for like a signalled helper.
    if (this.controlPid !== undefined)
      this.host.signal(this.controlPid, state.endsWith('sigkill') ? SIGKILL : SIGTERM);
    this.setState(state, this.result);
    this.armTimer(KILL_TIMEOUT_MS);
  }

  private enterUnmounting(): boolean {
    const c = this.config;
    // -c: do not canonicalize (Where= is already what the kernel shows).
    const argv = [UMOUNT_PATH, this.where, '-c'];
    if (c?.lazyUnmount === true) argv.push('-l');
    if (c?.forceUnmount === true) argv.push('-f');
    const result = this.result;
    if (!this.runControl('umount', argv, this.umountCall())) return false;
    this.setState('unmounting', result);
    return true;
  }

  private mountCall(p: MountParameters): MountCall {
    const c = this.config;
    return {
      command: 'mount',
      what: p.what,
      where: this.where,
      type: p.type,
      options: mountHelperOptions(p.options),
      sloppy: c?.sloppyOptions === true,
      readWriteOnly: c?.readWriteOnly === true,
    };
  }

  /**
   * Whether this unit mounts inside the daemon (libmount) rather than with a mount(8) process. An
   * automount needs to know: mount(8) runs in a session of its own, and its first look at Where=
   * would fire the automount's own trap and wait for itself.
   */
  mountsInProcess(): boolean {
    const p = this.parameters();
    return p !== undefined && this.host.runsInProcess?.(this.mountCall(p)) === true;
  }

  private umountCall(): MountCall {
    const c = this.config;
    return {
      command: 'umount',
      where: this.where,
      type: this.kernel?.fsType ?? '',
      lazy: c?.lazyUnmount === true,
      force: c?.forceUnmount === true,
    };
  }

  /**
   * Whether this unit unmounts inside the daemon (libmount) rather than with an umount(8)
   * process: only then may an automount's expire wait for its stop job (umount(8) runs in a
   * session of its own, and the kernel holds it at the mount point until the expire is answered).
   */
  unmountsInProcess(): boolean {
    return this.host.runsInProcess?.(this.umountCall()) === true;
  }

  private enterMounted(f: MountResult): void {
    this.unmountAfterKill = false;
    if (this.result === 'success') this.result = f;
    this.setState('mounted', this.result);
    if (this.pending === 'start') this.finishPending('done');
    else if (this.pending !== undefined)
      this.finishPending(f === 'success' ? 'done' : f === 'timeout' ? 'timeout' : 'failed');
  }

  private enterDead(f: MountResult): void {
    this.unmountAfterKill = false;
    if (this.result === 'success') this.result = f;
    const failed = this.result !== 'success';
    this.setState(failed ? 'failed' : 'dead', this.result);
    if (this.pending === 'stop') this.finishPending('done');
    else if (this.pending !== undefined)
      this.finishPending(failed ? (this.result === 'timeout' ? 'timeout' : 'failed') : 'done');
  }

  /** The start job fails now (its mount will be undone); the rest is cleanup. */
  private pendingFailure(): void {
    if (this.pending === 'start') this.finishPending(this.result === 'timeout' ? 'timeout' : 'failed');
  }

  private finishPending(end: JobEnd): void {
    if (this.pending === undefined) return;
    this.pending = undefined;
    this.host.jobFinished(end);
  }

  /** The one place the state changes and the outside hears of it. */
  private setState(next: MountState, result: MountResult): void {
    this.result = result;
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (next === 'mounted' || next === 'dead' || next === 'failed') this.retryUmount = 0;
    this.host.stateChanged(from, next, result);
    for (const fn of this.listeners) {
      try {
        fn(this, from, next);
      } catch (err) {
        this.host.log.error({ err }, 'mount transition listener failed');
      }
    }
  }

  /** Whether the What= of a unit file is a block device (for tests and status). */
  isDeviceBacked(): boolean {
    const c = this.config;
    return c !== undefined && c.what.startsWith('/dev/') && !isBindMount(c);
  }
}
