// Mount units in the daemon: the mountinfo monitor, the kernel's table applied to mount units
// (creating units for mounts nobody configured, as systemd does), each unit's MountHost (libmount
// inside the daemon where that does what mount(8) would, else mount(8) and umount(8) as control
// processes through the process supervisor, their output captured into the unit's log and its
// last error), and MountControl, the interface the .automount type uses to start and stop a
// mount unit and learn how it went.
import fs = require('node:fs');
import path = require('node:path');
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import type { Manager } from '../core/manager';
import type { UnitEngine } from '../core/unit-engine';
import type { ProcessSupervisor } from '../core/process-supervisor';
import type { NativeMounts } from '../native/mounts-addon';
import { loadNativeLibmount, type NativeLibmount } from '../native/libmount-addon';
import type { ExecCommand, ExecContext } from '../units/config-types';
import { defaultExecContext } from '../units/unit-keys';
import { unitNameFromPath } from '../units/unit-name';
import {
  MountUnit,
  type MountFailure,
  type MountHost,
  type MountResult,
  type MountState,
} from '../units/mount';
import type { JobResult } from '../core/job-types';
import type { MountEntry } from './mountinfo';
import { MountInfoMonitor, type MountTableUpdate } from './mountinfo-watch';
import { inProcessMounts, type InProcessMounts, type MountCall } from './in-process-mount';

/** How a start or stop of a mount unit ended, for the automount (and tests). */
export interface MountJobOutcome {
  /** The job's result: 'done', 'failed', 'timeout', 'canceled', ...; 'refused' when no job was queued. */
  job: JobResult | 'refused';
  /** The unit afterwards. */
  state: MountState | 'unknown';
  result: MountResult | undefined;
  /** Whether the kernel shows a mount at Where= now. */
  mounted: boolean;
  /** The last failure, with mount's own message; or why the job was refused. */
  error: MountFailure | undefined;
  reason?: string;
}

export interface MountChange {
  unit: string;
  from: MountState;
  to: MountState;
  result: MountResult;
}

/**
 * What the automount type needs from mount units: start/stop a mount unit through the job engine
 * and learn its outcome, hear its transitions (by name, across daemon-reload), and ask the
 * kernel's table.
 */
export interface MountControl {
  /** The mount unit of that name (with or without a unit file), if any. */
  unit(name: string): MountUnit | undefined;
  /** Enqueue a start job (mode replace); resolves when the job is over. */
  start(name: string): Promise<MountJobOutcome>;
  /** Enqueue a stop job (mode replace); resolves when the job is over. */
  stop(name: string): Promise<MountJobOutcome>;
  /** Transitions of the unit of that name; returns the unsubscribe. */
  watch(name: string, fn: (change: MountChange) => void): () => void;
  /** The top mount at `where` per the last read (`refresh`: read mountinfo first). */
  mountedAt(where: string, refresh?: boolean): MountEntry | undefined;
}

export interface MountSystemOptions {
  logger: Logger;
  manager: Manager;
  engine: () => UnitEngine;
  supervisor: ProcessSupervisor;
  runtimeDir: string;
  /** The addon; null: none (poll the table on a timer). Default: load it, or poll if it is missing. */
  native?: NativeMounts | null;
  loadNative?: () => NativeMounts;
  /**
   * Mounts and unmounts inside the daemon through libmount where that is what mount(8) would do
   * (default: the triggerd_libmount addon; TRIGGERD_LIBMOUNT=0 in the environment turns it off).
   */
  loadLibmount?: () => NativeLibmount;
  /** Passed to MountInfoMonitor. */
  minIntervalMs?: number;
  /** Dead mount units known only from the kernel are forgotten after this long (ms, default 30 s). */
  forgetAfterMs?: number;
  /** Every transition goes here (the unit system: the engine, and the automounts). */
  stateChanged(unit: MountUnit, from: string, to: string): void;
}

const BASE_ARGV0: Record<string, string> = { '/bin/mount': 'mount', '/bin/umount': 'umount' };

export class MountSystem implements MountControl {
  readonly monitor: MountInfoMonitor;
  private readonly units = new Map<string, MountUnit>();
  /** Mounts per mount point, by id (stacked mounts share a point). */
  private readonly byWhere = new Map<string, Map<number, MountEntry>>();
  private readonly listeners = new Map<string, Set<(c: MountChange) => void>>();
  /** Captured helper output files by pid. */
  private readonly outputs = new Map<number, { file: string; unit: string }>();
  private readonly deadSince = new Map<string, number>();
  private readonly problemLog = new RateLimitedLog(60_000, 5);
  private readonly logger: Logger;
  private readonly outputDir: string;
  private readonly inProcess: InProcessMounts;
  private gcTimer: NodeJS.Timeout | undefined;
  private helperSeq = 0;
  private started = false;

  constructor(private readonly options: MountSystemOptions) {
    this.logger = options.logger.child({ component: 'mounts' });
    this.outputDir = path.join(options.runtimeDir, 'mount-helpers');
    this.inProcess = inProcessMounts(this.logger, options.loadLibmount ?? loadNativeLibmount);
    let native: NativeMounts | undefined;
    if (options.native === null) native = undefined;
    else if (options.native !== undefined) native = options.native;
    else if (options.loadNative !== undefined) {
      try {
        native = options.loadNative();
      } catch (err) {
        this.logger.warn(
          { err },
          'the mounts addon is not available: mountinfo is polled once a second instead of watched',
        );
      }
    }
    this.monitor = new MountInfoMonitor({
      native,
      minIntervalMs: options.minIntervalMs,
      onUpdate: (u) => this.applyUpdate(u),
      onError: (err) => this.logger.error({ err }, 'mountinfo watch failed'),
    });
  }

  /** Read the kernel's table (now, and again once the watch is registered) and follow it. */
  startWatching(): void {
    if (this.started) return;
    this.started = true;
    fs.mkdirSync(this.outputDir, { recursive: true, mode: 0o700 });
    this.monitor.start();
    this.gcTimer = setInterval(() => this.collectGarbage(), 10_000);
    this.gcTimer.unref();
  }

  close(): void {
    if (this.gcTimer !== undefined) clearInterval(this.gcTimer);
    this.monitor.close();
  }

  // --- MountControl ---

  unit(name: string): MountUnit | undefined {
    const u = this.options.manager.getUnit(name);
    return u instanceof MountUnit ? u : undefined;
  }

  private runJob(name: string, type: 'start' | 'stop'): Promise<MountJobOutcome> {
    const engine = this.options.engine();
    const r = engine.enqueue(name, type, 'replace', false);
    if (!r.ok) return Promise.resolve(this.outcome(name, 'refused', r.error.message));
    const done = engine.queue.whenFinished(r.jobId);
    if (done === undefined) return Promise.resolve(this.outcome(name, 'done'));
    return done.then((job) => this.outcome(name, job));
  }

  start(name: string): Promise<MountJobOutcome> {
    return this.runJob(name, 'start');
  }

  stop(name: string): Promise<MountJobOutcome> {
    return this.runJob(name, 'stop');
  }

  watch(name: string, fn: (c: MountChange) => void): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.listeners.get(name) === set) this.listeners.delete(name);
    };
  }

  /** Whether `call` would run inside the daemon (libmount) rather than as mount(8)/umount(8). */
  runsInProcess(call: MountCall): boolean {
    return this.inProcess.refusal(call) === undefined;
  }

  mountedAt(where: string, refresh = false): MountEntry | undefined {
    if (refresh) this.monitor.refresh();
    return topOf(this.byWhere.get(where));
  }

  private outcome(name: string, job: JobResult | 'refused', reason?: string): MountJobOutcome {
    const u = this.unit(name);
    return {
      job,
      state: u?.state ?? 'unknown',
      result: u?.result,
      mounted: u?.kernel !== undefined,
      error: u?.lastFailure,
      ...(reason !== undefined ? { reason } : {}),
    };
  }

  // --- units ---

  /** A mount unit was built (from a file, or here from the kernel): give it the kernel's view. */
  created(unit: MountUnit): void {
    // A configured mount: have libmount ready before its first mount (an automount's first access).
    if (unit.file?.fragmentPath !== undefined) this.inProcess.preload();
    this.units.set(unit.name, unit);
    this.options.supervisor.registerOwner(unit.name, unit);
    unit.setKernel(topOf(this.byWhere.get(unit.where)));
  }

  /** The MountHost of one unit. */
  hostFor(name: string, unit: () => MountUnit | undefined): MountHost {
    const log = this.options.logger.child({ unit: name });
    const ctx: ExecContext = defaultExecContext();
    const control = this.options.supervisor.controlHostFor(name, () => ctx);
    return {
      runInProcess: (call, done) => {
        if (this.inProcess.run(call, done)) return true;
        log.debug(`${call.command} runs as a process: ${this.inProcess.refusal(call) ?? '?'}`);
        return false;
      },
      runsInProcess: (call) => this.runsInProcess(call),
      runHelper: (argv) => {
        const file = path.join(this.outputDir, `${name}.${process.pid}.${++this.helperSeq}`);
        // stdout and stderr of the helper into one file, read when it has exited.
        ctx.standardOutput = { kind: 'truncate', path: file };
        ctx.standardError = { kind: 'inherit-output' };
        const exe = argv[0] as string;
        const cmd: ExecCommand = {
          path: exe,
          argv: [BASE_ARGV0[exe] ?? exe, ...argv.slice(1)],
          ignoreFailure: false,
          noEnvExpand: true,
          fullPrivileges: true,
          noSetuidDrop: false,
          ambientFallback: false,
          source: { file: '<mount>', line: 0 },
        };
        const r = control.spawn(cmd);
        if (!r.ok) {
          rmQuietly(file);
          return {
            ok: false,
            message: `cannot run ${exe}: ${r.failure.step} ${r.failure.code}: ${r.failure.message}`,
          };
        }
        this.outputs.set(r.pid, { file, unit: name });
        return { ok: true, pid: r.pid };
      },
      takeOutput: (pid) => {
        const o = this.outputs.get(pid);
        if (o === undefined) return [];
        this.outputs.delete(pid);
        let text = '';
        try {
          text = fs.readFileSync(o.file, 'utf8').slice(0, 64 * 1024);
        } catch {
          // the helper never opened it
        }
        rmQuietly(o.file);
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        for (const l of lines) log.info({ stream: 'stderr', pid }, l);
        return lines;
      },
      signal: (pid, signal) => control.signal(pid, signal),
      prepareMountPoint: (where, mode) => prepareMountPoint(where, mode),
      refreshMounts: () => {
        this.monitor.refresh();
      },
      setTimer: (ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      jobFinished: (end) => this.options.engine().jobFinished(name, end),
      stateChanged: (from, to, result) => {
        const u = unit();
        if (u === undefined) return;
        if (to === 'dead' || to === 'failed') this.deadSince.set(name, Date.now());
        else this.deadSince.delete(name);
        this.options.stateChanged(u, from, to);
        const set = this.listeners.get(name);
        if (set !== undefined) {
          for (const fn of [...set]) {
            try {
              fn({ unit: name, from, to, result });
            } catch (err) {
              this.logger.error({ err, unit: name }, 'mount watcher failed');
            }
          }
        }
      },
      log,
    };
  }

  /** A unit for a mount nobody configured (made by hand, by another manager, ...). */
  private kernelUnit(name: string, where: string): MountUnit {
    const ref: { unit?: MountUnit } = {};
    const unit = new MountUnit(
      name,
      undefined,
      where,
      this.hostFor(name, () => ref.unit),
    );
    ref.unit = unit;
    this.options.manager.addUnit(unit);
    this.units.set(name, unit);
    this.options.supervisor.registerOwner(name, unit);
    return unit;
  }

  private applyUpdate(u: MountTableUpdate): void {
    for (const p of u.problems) {
      const suppressed = this.problemLog.admit();
      if (suppressed >= 0)
        this.logger.warn(
          { line: p.line, suppressed },
          `/proc/self/mountinfo:${p.line}: ${p.reason}, skipped: ${JSON.stringify(p.text)}`,
        );
    }
    const touched = new Set<string>();
    const remove = (e: MountEntry): void => {
      const m = this.byWhere.get(e.mountPoint);
      m?.delete(e.id);
      if (m !== undefined && m.size === 0) this.byWhere.delete(e.mountPoint);
      touched.add(e.mountPoint);
    };
    const add = (e: MountEntry): void => {
      let m = this.byWhere.get(e.mountPoint);
      if (m === undefined) this.byWhere.set(e.mountPoint, (m = new Map()));
      m.set(e.id, e);
      touched.add(e.mountPoint);
    };
    for (const e of u.diff.removed) remove(e);
    for (const c of u.diff.changed) {
      remove(c.before);
      add(c.after);
    }
    for (const e of u.diff.added) add(e);
    for (const where of touched) this.updateWhere(where);
  }

  private updateWhere(where: string): void {
    let name: string;
    try {
      name = unitNameFromPath(where, 'mount');
    } catch {
      return; // a path systemd cannot name ('..' components): no unit, as in systemd
    }
    const top = topOf(this.byWhere.get(where));
    const existing = this.options.manager.getUnit(name);
    if (existing !== undefined && !(existing instanceof MountUnit)) return;
    let unit = existing;
    if (unit === undefined) {
      if (top === undefined) return;
      unit = this.kernelUnit(name, where);
    }
    unit.setKernel(top);
  }

  /** Forget dead units that only the kernel knew of, once nothing refers to them. */
  collectGarbage(now = Date.now()): number {
    const forgetAfter = this.options.forgetAfterMs ?? 30_000;
    let n = 0;
    const engine = this.options.engine();
    for (const [name, since] of this.deadSince) {
      if (now - since < forgetAfter) continue;
      const u = this.units.get(name);
      this.deadSince.delete(name);
      if (u === undefined || u.file !== undefined || u.kernel !== undefined) continue;
      if (u.activeState() !== 'inactive' && u.activeState() !== 'failed') continue;
      if (engine.queue.jobFor(name) !== undefined || this.listeners.has(name)) continue;
      if (this.options.manager.getUnit(name) === u) this.options.manager.removeUnit(name);
      this.units.delete(name);
      engine.forgetUnit(name);
      n++;
    }
    return n;
  }
}

/**
 * The top of a stack of mounts at one point: the one no other mount there sits on. The autofs
 * trap of one of triggerd's .automount units (source `triggerd-<pid>`) is not a mount of the
 * .mount unit at that point: it belongs to the automount, and with only the trap there, nothing
 * is mounted (systemd's mount units stay dead under their automount's autofs mount too).
 */
export function topOf(stack: ReadonlyMap<number, MountEntry> | undefined): MountEntry | undefined {
  if (stack === undefined || stack.size === 0) return undefined;
  const mounts = [...stack.values()].filter((e) => !isAutomountTrap(e));
  for (const e of mounts) {
    if (!mounts.some((f) => f.parentId === e.id)) return e;
  }
  return undefined;
}

/** An autofs mount made by an .automount unit of triggerd (automount.ts names its source so). */
export function isAutomountTrap(e: MountEntry): boolean {
  return e.fsType === 'autofs' && /^triggerd-[0-9]+$/.test(e.source);
}

/** mkdir -p Where= (systemd's mkdir_p_label); refuses a symlink. The error message, or undefined. */
export function prepareMountPoint(where: string, mode: number): string | undefined {
  try {
    const st = fs.lstatSync(where);
    if (st.isSymbolicLink()) return `${where} is a symbolic link`;
    return undefined;
  } catch {
    // not there: create it
  }
  try {
    fs.mkdirSync(where, { recursive: true, mode });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function rmQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // gone
  }
}
