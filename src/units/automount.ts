// .automount units: systemd's automount state machine on the kernel's autofs v5 protocol. While
// the unit is active an autofs mount sits at Where=; the first process that touches it sleeps in
// the kernel, the kernel sends a `missing` packet, the unit starts the .mount unit of the same
// path (through a MountStarter) and answers READY when it is mounted, or FAIL when it is not, so
// the waiter goes on into the mounted file system or gets an error, never a hang. Idle mounts
// are expired through the autofs expire ioctl (TimeoutIdleSec=; 0 never arms a timer). Every
// transition goes through setState(), the one place that notifies the manager. Everything from
// the outside world comes through an injected AutomountHost, so the machine runs on the fake
// autofs layer and virtual time in tests.
//
// Where triggerd does better than systemd (semantics.md §3):
// - after a failed mount, accesses during a back-off window ([X-Triggerd] FailBackoffSec=, 5 s,
//   doubling per failure in a row) fail at once with EHOSTDOWN instead of trying again and
//   blocking every `ls` for the mount's whole timeout; the log names who triggered each mount;
// - the autofs mount is made with `strictexpire`, so stat-like accesses do not keep it alive;
// - an expire is refused (FAIL -EBUSY) while a running unit declared RequiresMountsFor= at or
//   below Where=: another mount namespace's use is invisible to the kernel's idle check;
// - the autofs mount, its pipe, the waiting tokens and the expire timer live in this object, which
//   a daemon-reload keeps (an active unit is never rebuilt); on daemon exit the mount is made
//   catatonic and lazily unmounted, so no accessor is left waiting for a daemon that is gone.
import fs = require('node:fs');
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import type { AutofsMount, NativeAutofs, NativeSystemError } from '../native/autofs-addon';
import { AUTOFS_EXPIRE } from '../native/autofs-addon';
import { parseAutofsPacket, type AutofsPacketItem, type AutofsV5Packet } from '../mounts/autofs-packets';
import type { LoadedUnitFile } from './config-types';
import { automountMountName, type AutomountSection } from './automount-config';
import type {
  ActiveState,
  DeserializeContext,
  JobEnd,
  JobOutcome,
  LoadState,
  SerializedUnit,
  UnitInstance,
} from './unit-type';
import { parseMountInfo } from '../mounts/mountinfo';

export type AutomountState = 'dead' | 'waiting' | 'running' | 'failed';

/** Why the automount is where it is (systemd's Result=). */
export type AutomountResult = 'success' | 'resources' | 'unmounted' | 'mount-start-limit-hit';

const ACTIVE: Record<AutomountState, ActiveState> = {
  dead: 'inactive',
  waiting: 'active',
  running: 'active',
  failed: 'failed',
};

/** What starting or stopping the mount gave. */
export type MountOutcome = { ok: true } | { ok: false; reason: string };

/**
 * The .mount side, as an automount needs it: start the mount unit for Where= and resolve when it
 * is mounted (or with the reason it is not); stop it. Backed by the job engine once .mount units
 * exist, by a direct mount(8) run of the unit file until then (see automount-starter.ts).
 */
export interface MountStarter {
  start(mountUnit: string, where: string): Promise<MountOutcome>;
  stop(mountUnit: string, where: string): Promise<MountOutcome>;
}

/** Everything an automount unit needs from the world. */
export interface AutomountHost {
  /** The autofs layer (loaded on first use). */
  readonly native: NativeAutofs;
  mounts: MountStarter;
  /** `mkdir -p` with `mode` for the directories it creates. */
  makeDirectory(path: string, mode: number): void;
  /** lstat(): the device id and whether it is a symlink; undefined when it does not exist. */
  lstat(path: string): { dev: number; symlink: boolean; directory: boolean } | undefined;
  /** /proc/<pid>/comm, for the log; undefined when the process is gone. */
  processName(pid: number): string | undefined;
  /** Running units that declared RequiresMountsFor= at or below `path`. */
  unitsRequiringMount(path: string): string[];
  setTimer(ms: number, fn: () => void): () => void;
  /** Monotonic ms. */
  now(): number;
  /** The pending job on this unit is over. */
  jobFinished(end: JobEnd): void;
  stateChanged(from: AutomountState, to: AutomountState, result: AutomountResult): void;
  log: Logger;
}

/** errno values the kernel's waiters get. */
const ERRNO = { ENOENT: 2, EIO: 5, EBUSY: 16, ENODEV: 19, EHOSTDOWN: 112 } as const;

/** The back-off after failures in a row doubles at most this often. */
const MAX_BACKOFF_DOUBLINGS = 5;

/** Autofs mounts of this process still in place: made catatonic and unmounted on exit. */
const liveMounts = new Set<AutofsMount>();
let exitHookInstalled = false;

/**
 * Synchronous last-moment teardown (process 'exit'): every autofs mount this process still holds
 * becomes catatonic (waiters get ENOENT, later accesses do not wait) and is lazily unmounted.
 */
export function tearDownAutofsMounts(): number {
  let n = 0;
  for (const m of [...liveMounts]) {
    liveMounts.delete(m);
    try {
      m.catatonic();
    } catch {
      // already gone
    }
    try {
      m.unmount();
      n++;
    } catch {
      // already gone
    }
    m.close();
  }
  return n;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => tearDownAutofsMounts());
}

export interface TriggerRecord {
  /** Wall-clock ms. */
  at: number;
  pid: number;
  comm: string | undefined;
}

export class AutomountUnit implements UnitInstance {
  readonly suffix = '.automount';
  state: AutomountState = 'dead';
  result: AutomountResult = 'success';
  since = Date.now();
  readonly load: LoadState;
  /** Mounts started by an access, accesses answered, refused during a back-off. */
  nTriggers = 0;
  nRefused = 0;
  nExpired = 0;
  lastTrigger: TriggerRecord | undefined;
  lastFailure: { at: number; reason: string } | undefined;
  /** Monotonic ms until which accesses fail at once; failures in a row. */
  backoffUntil = 0;
  consecutiveFailures = 0;
  /** The configuration of the running instance (a reload's new file applies from the next start). */
  private active: AutomountSection | undefined;
  private autofs: AutofsMount | undefined;
  /** Tokens of `missing` packets waiting for the mount, and of `expire` packets waiting for the unmount. */
  private readonly tokens = new Set<number>();
  private readonly expireTokens = new Set<number>();
  private mounting = false;
  private unmounting = false;
  private expireRunning = false;
  private cancelExpireTimer: (() => void) | undefined;
  private readonly badPacketLog = new RateLimitedLog(10_000, 5);
  private readonly refusedLog = new RateLimitedLog(10_000, 5);

  constructor(
    readonly name: string,
    public file: LoadedUnitFile,
    private readonly host: AutomountHost,
  ) {
    this.load = file.loadState;
  }

  get config(): AutomountSection {
    const c = this.active ?? this.file.automount;
    if (c === undefined) throw new Error(`${this.name}: no [Automount] configuration`);
    return c;
  }

  /** The .mount unit this automount starts. */
  mountName(): string | undefined {
    const c = this.active ?? this.file.automount;
    return c === undefined || c.where === '' ? undefined : automountMountName(c);
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
    return { failed: 'failed', reason: `${this.name}: automount units cannot be reloaded` };
  }

  /** Waiters the kernel holds for this unit right now. */
  waiting(): number {
    return this.tokens.size;
  }

  /** Whether the expire timer is armed (TimeoutIdleSec= > 0 while mounted). */
  expireTimerArmed(): boolean {
    return this.cancelExpireTimer !== undefined;
  }

  start(): JobOutcome {
    if (this.load !== 'loaded' || this.file.automount === undefined) {
      return { failed: 'failed', reason: `${this.name} is ${this.load}` };
    }
    if (this.state === 'waiting' || this.state === 'running') return 'done';
    const c = this.file.automount;
    const log = this.host.log;
    const st = this.host.lstat(c.where);
    if (st?.symlink === true) {
      return this.failStart(`Where=${c.where} is a symbolic link, refusing (systemd refuses too)`);
    }
    if (st !== undefined && !st.directory) {
      return this.failStart(`Where=${c.where} exists and is not a directory`);
    }
    try {
      if (st === undefined) this.host.makeDirectory(c.where, c.directoryMode);
      const strict = true;
      this.autofs = this.host.native.mountAutofs(
        {
          where: c.where,
          source: `triggerd-${process.pid}`,
          kind: 'direct',
          strictExpire: strict || c.extraOptions.includes('strictexpire'),
          timeoutSec: Math.ceil(c.timeoutIdleMs / 1000),
        },
        (packets) => this.onPackets(packets),
        (err) => this.onPipeError(err),
      );
    } catch (err) {
      const e = err as NativeSystemError;
      return this.failStart(`cannot mount autofs at ${c.where}: ${e.message}`);
    }
    this.active = c;
    liveMounts.add(this.autofs);
    installExitHook();
    this.result = 'success';
    this.consecutiveFailures = 0;
    this.backoffUntil = 0;
    log.info(
      { where: c.where, strictexpire: this.autofs.strictExpire },
      `autofs mounted at ${c.where}; ${automountMountName(c)} starts on first access` +
        (c.timeoutIdleMs > 0 ? `, expires after ${c.timeoutIdleMs / 1000} s idle` : ''),
    );
    this.setState('waiting');
    return 'done';
  }

  stop(): JobOutcome {
    if (this.state === 'dead' || this.state === 'failed') {
      if (this.state === 'failed') this.setState('dead');
      return 'done';
    }
    this.tearDown('stopping');
    this.setState('dead');
    return 'done';
  }

  private failStart(reason: string): JobOutcome {
    this.host.log.error({ code: 'ERR_AUTOMOUNT_START' }, reason);
    this.lastFailure = { at: Date.now(), reason };
    this.result = 'resources';
    this.setState('failed');
    return { failed: 'failed', reason };
  }

  /**
   * systemd's unmount_autofs: answer every waiter, then catatonic (nothing can wait on the mount
   * any more, even if an unmount below fails) and a lazy unmount of the whole stack at Where=.
   */
  private tearDown(why: string): void {
    this.disarmExpireTimer();
    const m = this.autofs;
    this.autofs = undefined;
    if (m === undefined) return;
    for (const t of [...this.tokens, ...this.expireTokens]) this.answer(m, t, ERRNO.EHOSTDOWN);
    this.tokens.clear();
    this.expireTokens.clear();
    liveMounts.delete(m);
    try {
      m.catatonic();
    } catch (err) {
      this.host.log.debug({ err }, `catatonic: ${(err as Error).message}`);
    }
    try {
      const n = m.unmount();
      this.host.log.info({ where: m.where, mounts: n }, `${why}: autofs at ${m.where} unmounted (lazily)`);
    } catch (err) {
      this.host.log.warn(
        { code: (err as NativeSystemError).code },
        `umount ${m.where}: ${(err as Error).message}`,
      );
    }
    m.close();
    this.mounting = false;
    this.unmounting = false;
  }

  private onPipeError(err: NativeSystemError): void {
    if (this.autofs === undefined) return;
    // EPIPE: the kernel closed its end: someone unmounted the autofs mount under us.
    this.host.log.error(
      { code: err.code },
      `autofs pipe of ${this.config.where}: ${err.message}; the automount point is gone`,
    );
    this.lastFailure = { at: Date.now(), reason: `autofs pipe: ${err.code}` };
    this.tearDown('pipe closed');
    this.result = err.code === 'EPIPE' ? 'unmounted' : 'resources';
    this.setState('failed');
  }

  /** One wake-up's packets, as read off the pipe. */
  onPackets(packets: readonly Buffer[]): void {
    for (const bytes of packets) this.onPacket(parseAutofsPacket(bytes));
  }

  private onPacket(item: AutofsPacketItem): void {
    const m = this.autofs;
    if (m === undefined) return;
    if (item.kind === 'invalid') {
      const s = this.badPacketLog.admit();
      if (s >= 0)
        this.host.log.warn(
          { code: 'ERR_AUTOFS_PACKET', suppressed: s },
          `autofs packet dropped: ${item.reason}`,
        );
      // Never leave a waiter behind: a token we can read gets an error.
      if (item.token !== undefined) this.answer(m, item.token, ERRNO.EIO);
      return;
    }
    if (item.request === 'missing') this.onMissing(m, item);
    else this.onExpire(m, item);
  }

  private onMissing(m: AutofsMount, p: AutofsV5Packet): void {
    const c = this.config;
    const comm = this.host.processName(p.pid);
    this.lastTrigger = { at: Date.now(), pid: p.pid, comm };
    const who = `pid ${p.pid}${comm !== undefined ? ` (${comm})` : ''}`;
    if (this.host.now() < this.backoffUntil) {
      this.nRefused++;
      const s = this.refusedLog.admit();
      if (s >= 0) {
        const left = Math.ceil((this.backoffUntil - this.host.now()) / 1000);
        this.host.log.warn(
          { pid: p.pid, comm, suppressed: s },
          `access to ${c.where} by ${who} refused (EHOSTDOWN): the last mount failed (${this.lastFailure?.reason ?? '?'}); next try in ${left} s`,
        );
      }
      this.answer(m, p.token, ERRNO.EHOSTDOWN);
      return;
    }
    const st = this.host.lstat(c.where);
    if (st !== undefined && st.dev !== m.devId && !this.unmounting) {
      // Something is mounted on top already (by hand, or a mount that raced us): let them in.
      this.host.log.info({ pid: p.pid, comm }, `${c.where} is mounted already; releasing ${who}`);
      this.answer(m, p.token, 0);
      return;
    }
    this.tokens.add(p.token);
    if (this.mounting) return;
    this.mounting = true;
    this.nTriggers++;
    const mount = automountMountName(c);
    this.host.log.info({ pid: p.pid, comm }, `${who} accessed ${c.where}: starting ${mount}`);
    this.setState('running');
    void this.host.mounts.start(mount, c.where).then(
      (outcome) => this.onMountStarted(m, outcome),
      (err: Error) => this.onMountStarted(m, { ok: false, reason: err.message }),
    );
  }

  private onMountStarted(m: AutofsMount, outcome: MountOutcome): void {
    if (m !== this.autofs) return; // stopped meanwhile: the tokens were answered then
    this.mounting = false;
    const c = this.config;
    const tokens = [...this.tokens];
    this.tokens.clear();
    if (outcome.ok) {
      this.consecutiveFailures = 0;
      this.backoffUntil = 0;
      for (const t of tokens) this.answer(m, t, 0);
      this.host.log.info(
        { waiters: tokens.length },
        `${c.where} mounted; released ${tokens.length} waiter(s)`,
      );
      this.armExpireTimer();
      this.setState('running');
      return;
    }
    this.consecutiveFailures++;
    this.lastFailure = { at: Date.now(), reason: outcome.reason };
    const backoff = c.failBackoffMs * 2 ** Math.min(this.consecutiveFailures - 1, MAX_BACKOFF_DOUBLINGS);
    this.backoffUntil = backoff > 0 ? this.host.now() + backoff : 0;
    for (const t of tokens) this.answer(m, t, ERRNO.ENODEV);
    this.host.log.error(
      { code: 'ERR_AUTOMOUNT_MOUNT', waiters: tokens.length },
      `mounting ${c.where} failed: ${outcome.reason}; ${tokens.length} waiter(s) get ENODEV` +
        (backoff > 0 ? `, accesses fail at once for ${backoff / 1000} s` : ''),
    );
    this.setState('waiting');
  }

  private onExpire(m: AutofsMount, p: AutofsV5Packet): void {
    const c = this.config;
    const holders = this.host.unitsRequiringMount(c.where);
    if (holders.length > 0) {
      this.host.log.info(
        { units: holders },
        `expire of ${c.where} refused: ${holders.join(', ')} declared RequiresMountsFor= on it and run`,
      );
      this.answer(m, p.token, ERRNO.EBUSY);
      return;
    }
    const st = this.host.lstat(c.where);
    if (st === undefined || st.dev === m.devId) {
      // Nothing mounted on top: nothing to do.
      this.answer(m, p.token, 0);
      return;
    }
    this.expireTokens.add(p.token);
    if (this.unmounting) return;
    this.unmounting = true;
    const mount = automountMountName(c);
    this.host.log.info(`${c.where} idle for ${c.timeoutIdleMs / 1000} s: stopping ${mount}`);
    void this.host.mounts.stop(mount, c.where).then(
      (outcome) => this.onMountStopped(m, outcome),
      (err: Error) => this.onMountStopped(m, { ok: false, reason: err.message }),
    );
  }

  private onMountStopped(m: AutofsMount, outcome: MountOutcome): void {
    if (m !== this.autofs) return;
    this.unmounting = false;
    const tokens = [...this.expireTokens];
    this.expireTokens.clear();
    if (outcome.ok) {
      this.nExpired++;
      for (const t of tokens) this.answer(m, t, 0);
      this.disarmExpireTimer();
      this.setState('waiting');
      return;
    }
    // Still mounted: the kernel keeps it; the next round tries again. The helper's words go to the log.
    this.host.log.warn(
      { code: 'ERR_AUTOMOUNT_EXPIRE' },
      `expiring ${this.config.where} failed: ${outcome.reason}`,
    );
    for (const t of tokens) this.answer(m, t, ERRNO.EBUSY);
  }

  /** The mount unit changed state by itself (unmounted by hand, or mounted by a start job). */
  onMountChanged(mounted: boolean): void {
    if (this.autofs === undefined) return;
    // A mount unit may count the autofs mount itself as mounted: believe only a file system on top.
    const st = this.host.lstat(this.config.where);
    if (mounted && (st === undefined || st.dev === this.autofs.devId)) return;
    if (mounted && this.state === 'waiting' && !this.mounting) {
      this.armExpireTimer();
      this.setState('running');
    } else if (!mounted && this.state === 'running' && !this.mounting) {
      this.disarmExpireTimer();
      this.setState('waiting');
    }
  }

  private answer(m: AutofsMount, token: number, errno: number): void {
    try {
      if (errno === 0) m.ready(token);
      else m.fail(token, errno);
    } catch (err) {
      // ENXIO: the waiter is gone (killed); anything else is worth a line.
      const e = err as NativeSystemError;
      if (e.code !== 'ENXIO') this.host.log.warn({ code: e.code }, `answering token ${token}: ${e.message}`);
    }
  }

  /** systemd's period: a third of the idle timeout, at least 1 s; never with a timeout of 0. */
  private armExpireTimer(): void {
    const c = this.config;
    if (c.timeoutIdleMs <= 0 || this.cancelExpireTimer !== undefined) return;
    const period = Math.max(c.timeoutIdleMs / 3, 1000);
    const tick = (): void => {
      this.cancelExpireTimer = this.host.setTimer(period, tick);
      this.runExpire();
    };
    this.cancelExpireTimer = this.host.setTimer(period, tick);
  }

  private disarmExpireTimer(): void {
    this.cancelExpireTimer?.();
    this.cancelExpireTimer = undefined;
  }

  private runExpire(): void {
    const m = this.autofs;
    if (m === undefined || this.expireRunning || this.unmounting) return;
    const holders = this.host.unitsRequiringMount(this.config.where);
    if (holders.length > 0) return; // refused anyway; do not even ask the kernel
    this.expireRunning = true;
    m.expire(AUTOFS_EXPIRE.NORMAL, (err) => {
      this.expireRunning = false;
      if (err !== null && err.code !== 'EBUSY' && this.autofs === m) {
        this.host.log.debug({ code: err.code }, `expire run: ${err.message}`);
      }
    });
  }

  /** Carry counters and the last failure over from the instance a reload replaces. */
  carryOver(previous: AutomountUnit): void {
    this.nTriggers = previous.nTriggers;
    this.nRefused = previous.nRefused;
    this.nExpired = previous.nExpired;
    this.lastTrigger = previous.lastTrigger;
    this.lastFailure = previous.lastFailure;
    if (previous.state === 'failed') {
      this.state = 'failed';
      this.result = previous.result;
      this.since = previous.since;
    }
  }

  // ---- re-exec and crash recovery --------------------------------------------------------------

  /** The autofs mount's source as mountinfo shows it, so the next daemon can find what it left. */
  serialize(): SerializedUnit {
    return {
      state: this.state,
      ...(this.autofs !== undefined ? { where: this.config.where, source: `triggerd-${process.pid}` } : {}),
    };
  }

  /**
   * The autofs mount of the previous image (its pipe closed at the exec or died in the crash:
   * the kernel made it catatonic at its first packet, so nobody waits on it) is cleaned up: what
   * is stacked at Where= down to and including it is lazily unmounted. Returns false: the unit
   * is not restored but started again (a fresh autofs mount) when it was active.
   */
  deserialize(data: SerializedUnit, ctx: DeserializeContext): boolean {
    const where = typeof data.where === 'string' ? data.where : undefined;
    const source = typeof data.source === 'string' ? data.source : undefined;
    if (where === undefined || source === undefined || where !== this.file.automount?.where) return false;
    let text: string;
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return false;
    }
    const stack = parseMountInfo(text).entries.filter((e) => e.mountPoint === where);
    const stale = stack.map((e) => e.fsType === 'autofs' && e.source === source).lastIndexOf(true);
    if (stale < 0) return false;
    let n = 0;
    for (let i = stale; i < stack.length; i++) {
      try {
        if (this.host.native.unmountLazy(where)) n++;
      } catch (err) {
        ctx.warn(`cannot unmount the stale autofs mount at ${where}: ${(err as Error).message}`);
        break;
      }
    }
    ctx.warn(`the previous daemon's autofs mount at ${where} (and ${n - 1} mount(s) on it) lazily unmounted`);
    return false;
  }

  properties(): Record<string, unknown> {
    const c = this.active ?? this.file.automount;
    return {
      Where: c?.where,
      ExtraOptions: c?.extraOptions.join(','),
      DirectoryMode: c !== undefined ? `0${c.directoryMode.toString(8)}` : undefined,
      TimeoutIdleUSec: c !== undefined ? c.timeoutIdleMs * 1000 : undefined,
      Result: this.result,
      Unit: this.mountName(),
      StrictExpire: this.autofs?.strictExpire,
      Triggers: this.nTriggers,
      Refused: this.nRefused,
      Expired: this.nExpired,
      Waiting: this.tokens.size,
    };
  }

  statusLines(): string[] {
    const c = this.active ?? this.file.automount;
    if (c === undefined) return [];
    const lines = [
      `Where: ${c.where}`,
      `Triggers: ${this.mountName() ?? '-'}`,
      `Idle timeout: ${c.timeoutIdleMs > 0 ? `${c.timeoutIdleMs / 1000} s` : 'none'}` +
        (this.autofs !== undefined
          ? `; strictexpire ${this.autofs.strictExpire ? 'on' : 'not supported by the kernel'}`
          : ''),
      `Mounts: ${this.nTriggers} triggered, ${this.nExpired} expired, ${this.nRefused} accesses refused during back-off` +
        (this.tokens.size > 0 ? `, ${this.tokens.size} waiting now` : ''),
    ];
    if (this.lastTrigger !== undefined) {
      const t = this.lastTrigger;
      lines.push(
        `Last trigger: pid ${t.pid}${t.comm !== undefined ? ` (${t.comm})` : ''} at ${new Date(t.at).toISOString()}`,
      );
    }
    if (this.lastFailure !== undefined) {
      lines.push(
        `Last failure: ${this.lastFailure.reason} at ${new Date(this.lastFailure.at).toISOString()}`,
      );
    }
    if (this.backoffUntil > this.host.now()) {
      const left = Math.ceil((this.backoffUntil - this.host.now()) / 1000);
      lines.push(
        `Back-off: accesses fail with EHOSTDOWN for ${left} s more (failure ${this.consecutiveFailures} in a row)`,
      );
    }
    return lines;
  }

  private setState(next: AutomountState): void {
    const from = this.state;
    if (from === next) return;
    this.state = next;
    this.since = Date.now();
    if (next === 'dead' || next === 'failed') this.active = undefined;
    this.host.stateChanged(from, next, this.result);
  }
}

/** The host's lstat(), from node:fs. */
export function lstatMountPoint(
  path: string,
): { dev: number; symlink: boolean; directory: boolean } | undefined {
  try {
    const st = fs.lstatSync(path);
    return { dev: st.dev, symlink: st.isSymbolicLink(), directory: st.isDirectory() };
  } catch {
    return undefined;
  }
}
