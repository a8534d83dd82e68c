// The daemon: wires the event sources, the device pipeline, the manager and the control socket,
// and answers control requests. Start-up order matters: the uevent socket opens before coldplug
// so nothing that happens during the scan is lost; it is read only after the scan.
import fs = require('node:fs');
import path = require('node:path');
import type { Subscription } from 'rxjs';
import pino from 'pino';
import type { Logger } from '../util/logger';
import type { NativeNetlink } from '../native/types';
import type { NativeSpawn } from '../native/spawn-addon';
import type { NativeNotify } from '../native/notify-addon';
import { DevicePipeline } from '../devices/device-pipeline';
import { readKernelSeqnum, DEFAULT_SYS_ROOT } from '../devices/sysfs';
import { ueventEvents } from '../events/uevent-events';
import {
  DEFAULT_UDEV_DB_DIR,
  readUdevDbRecord,
  udevDeviceId,
  udevEventDecision,
  withUdevDb,
} from '../devices/udev-db';
import { Manager } from './manager';
import { isRoot } from '../util/paths';
import { RulesStage } from '../devices/rules-stage';
import { createRulesHost } from '../devices/rules-host';
import { loadRules, rulesFiles, type CompiledRules } from '../devices/rules/rules-compiler';
import { createSysfsHost } from '../devices/builtins/sysfs-host';
import { loadNativeBlkid } from '../native/blkid-addon';
import { loadNativeDevnode } from '../native/devnode-addon';
import { NativeProgramRunner } from '../devices/run-programs';
import { Rebroadcaster } from '../devices/rebroadcast';
import { UnitSystem } from './unit-system';
import { UnitLogRings } from './unit-log';
import { unitHandlers } from '../control/unit-handlers';
import { deviceHandlers } from '../control/device-handlers';
import { ControlServer, type ControlHandlers } from '../control/server';
import { DeviceWatch } from '../devices/device-watch';
import { loadInotifyNative } from '../native/inotify-addon';
import { runFstabGenerator } from '../mounts/fstab';
import {
  bootId,
  STATE_FORMAT,
  STATE_VERSION,
  processRunState,
  processStartTime,
  readStateFile,
  removeStateFile,
  ueventSocketFd,
  unixSocketFd,
  writeStateFile,
  writeStateFileAsync,
  type DaemonStateFile,
} from './daemon-state';
import type { RestoreInput } from './unit-system';
import { loadNativeReexec } from '../native/reexec-addon';
import { holderRuns, startFdHolder, takeBackFromHolder, type FdHolderRecord } from './fd-holder';
import type { SerializeContext } from '../units/unit-type';

export type DaemonMode = 'standalone' | 'companion' | 'auto';

export interface DaemonOptions {
  native: NativeNetlink;
  spawn: NativeSpawn;
  notify: NativeNotify;
  logger: Logger;
  /** Where per-unit log lines are kept for `triggerctl logs` (the logger feeds it). */
  rings?: UnitLogRings;
  /** cgroup v2 base directory the daemon owns. */
  cgroupBase?: string;
  /** How long SIGTERM waits for units to stop before killing them (ms). */
  shutdownTimeoutMs?: number;
  /** Rules' programs (PROGRAM, IMPORT{program}, RUN) are killed after this long (ms). */
  programTimeoutMs?: number;
  /** Device events processed at once in standalone mode (udevd's --children-max). */
  childrenMax?: number;
  unitPaths: string[];
  rulesPaths: string[];
  /** fstab read into mount units in <runtimeDir>/generator (last in the unit path); '' for none. */
  fstab?: string;
  runtimeDir: string;
  controlSocket: string;
  mode: DaemonMode;
  receiveBufferBytes: number;
  controlGid?: number;
  sysRoot?: string;
  /** udevd's database, read in companion mode (default /run/udev/data). */
  udevDbDir?: string;
  /** Where standalone mode writes the udev database libudev reads (default /run/udev). */
  udevRunDir?: string;
  /** Persistent state (timer stamps under <stateDir>/timers); default /var/lib/triggerd for root. */
  stateDir?: string;
}

export interface SettleResult {
  settled: boolean;
  /** Highest seqnum processed, and the kernel's when settle began. */
  seqnum: number;
  target: number;
  ms: number;
}

export const VERSION = '0.1.0';
/** How old the memory figures `status` shows may be. */
const MEMORY_SAMPLE_MS = 1000;

export class Daemon {
  readonly pipeline: DevicePipeline;
  readonly manager: Manager;
  readonly units: UnitSystem;
  readonly rings: UnitLogRings;
  private control: ControlServer | undefined;
  private readonly subscriptions: Subscription[] = [];
  private gcTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** process.memoryUsage() as `status` shows it, and when it was read (performance.now()). */
  private memory: { usage: NodeJS.MemoryUsage; at: number } | undefined;
  private unitFiles: string[] = [];
  private ruleFiles: string[] = [];
  mode: 'standalone' | 'companion' = 'standalone';
  private coldplugged = false;

  constructor(private readonly options: DaemonOptions) {
    this.mode = options.mode === 'auto' ? (udevdRunning() ? 'companion' : 'standalone') : options.mode;
    const udevDbDir = options.udevDbDir ?? DEFAULT_UDEV_DB_DIR;
    // Companion: udevd has run its rules; take its tags and links, from its events and its database.
    this.pipeline = new DevicePipeline(
      this.mode === 'companion'
        ? {
            logger: options.logger,
            sysRoot: options.sysRoot,
            decide: udevEventDecision,
            enrichSynthetic: (e) => {
              const record = readUdevDbRecord(udevDeviceId(e), udevDbDir);
              return record === undefined ? e : withUdevDb(e, record);
            },
          }
        : {
            logger: options.logger,
            sysRoot: options.sysRoot,
            rules: this.createRulesStage(),
            childrenMax: options.childrenMax,
          },
    );
    this.manager = new Manager({
      logger: options.logger,
      onDevicePlugged: (u) => this.units.engine.devicePlugged(u),
      onDeviceStateChange: (u, from, to) => this.units.engine.unitStateChanged(u, from, to),
    });
    this.rings = options.rings ?? new UnitLogRings();
    this.generatorDir = path.join(options.runtimeDir, 'generator');
    this.runGenerators();
    this.units = new UnitSystem({
      logger: options.logger,
      manager: this.manager,
      unitPaths: options.fstab ? [...options.unitPaths, this.generatorDir] : options.unitPaths,
      runtimeDir: options.runtimeDir,
      spawn: options.spawn,
      notify: options.notify,
      cgroupBase: options.cgroupBase,
      stateDir: options.stateDir,
    });
  }

  /** fstab → units, as systemd's generators run before each load (and rebuilt on reload). */
  private readonly generatorDir: string;
  private runGenerators(): void {
    if (this.options.fstab) runFstabGenerator(this.options.fstab, this.generatorDir, this.options.logger);
  }

  /** Standalone mode with rule files: the udev-compatible device manager. */
  private rulesStage: RulesStage | undefined;
  private programRunner: NativeProgramRunner | undefined;

  private createRulesStage(): RulesStage | undefined {
    const files = rulesFiles(this.options.rulesPaths);
    if (files.length === 0) return undefined;
    const compiled = this.compileRules();
    if (!isRoot()) {
      this.options.logger.warn(
        'not root: the rules run and their results show in devices and units, but /dev links, node permissions, ' +
          'the udev database and the libudev rebroadcast need root and are skipped',
      );
    }
    const runner = new NativeProgramRunner(this.options.spawn);
    this.programRunner = runner;
    const builtins = createSysfsHost({
      sysRoot: this.options.sysRoot,
      probeBlkid: (devnode, opts) => loadNativeBlkid().probe(devnode, opts),
      readAbsInfo: (devnode, axis) => loadNativeDevnode().readAbsInfo(devnode, axis),
    });
    // The host reads the registry lazily: the pipeline that owns it is built with this stage.
    const host = createRulesHost({
      lookup: (devpath) => this.pipeline.registry.get(devpath),
      builtins,
      runner,
      logger: this.options.logger,
      sysRoot: this.options.sysRoot,
    });
    this.rulesStage = new RulesStage({
      rules: compiled,
      host,
      runner,
      logger: this.options.logger,
      udevRunDir: this.options.udevRunDir,
      applyEffects: isRoot(),
      deviceWatch: isRoot() ? this.openDeviceWatch() : undefined,
      programTimeoutMs: this.options.programTimeoutMs,
      rebroadcaster: new Rebroadcaster(
        (buf) => this.pipeline.sendToLibudev(buf),
        (code, err) => this.options.logger.warn({ code, err }, 'rebroadcast to libudev listeners failed'),
      ),
    });
    return this.rulesStage;
  }

  /** OPTIONS+="watch" (re-probe a block device when a writer closes it); without it, a warning. */
  private deviceWatch: DeviceWatch | undefined;
  private openDeviceWatch(): DeviceWatch | undefined {
    try {
      this.deviceWatch = new DeviceWatch({
        native: loadInotifyNative(),
        logger: this.options.logger,
        udevRunDir: this.options.udevRunDir,
        sysRoot: this.options.sysRoot,
      });
    } catch (err) {
      this.options.logger.warn(
        { err },
        'OPTIONS+="watch" is unavailable: devices are not re-probed when written',
      );
    }
    return this.deviceWatch;
  }

  private compileRules(): CompiledRules {
    const compiled = loadRules(this.options.rulesPaths);
    const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
    for (const d of compiled.diagnostics.slice(0, 50)) {
      this.options.logger[d.severity === 'error' ? 'error' : 'warn'](
        { code: d.code },
        `${d.source.file}:${d.source.line}:${d.source.column}: ${d.message}`,
      );
    }
    this.options.logger.info(
      { files: compiled.files.length, rules: compiled.lines.length, errors: errors.length },
      'rules compiled',
    );
    return compiled;
  }

  private get sysRoot(): string {
    return this.options.sysRoot ?? DEFAULT_SYS_ROOT;
  }

  async start(): Promise<void> {
    const { logger } = this.options;
    fs.mkdirSync(this.options.runtimeDir, { recursive: true });
    this.loadConfiguration();
    this.subscriptions.push(this.pipeline.changes$.subscribe((c) => this.manager.applyDeviceChange(c)));
    this.subscriptions.push(
      // Coldplug plugs every device at once: one summary line then, a line per change after.
      this.manager.unitChanges$.subscribe((c) =>
        logger[this.coldplugged && c.quiet !== true ? 'info' : 'debug'](
          { unit: c.unit, from: c.from, to: c.to },
          `${c.unit} ${c.to}`,
        ),
      ),
    );
    // After a re-exec or a crash, units take back their states from the state file; after a
    // re-exec the uevent socket is the one carried across it (what came meanwhile is queued there).
    const restore = this.restoreInput();
    const adoptFd = restore?.ueventFd;
    // Open first, read later: events during the scan wait in the socket buffer.
    this.subscriptions.push(
      ueventEvents(this.options.native, {
        expect: this.mode === 'companion' ? 'udev' : 'kernel',
        receiveBufferBytes: this.options.receiveBufferBytes,
        // A storm is handed on 8 events per turn of the loop, so control requests, notify
        // messages and child exits are answered in between: the shorter the turns, the sooner a
        // request is read. bench/load's status p99 with the machine loaded: 216-369 ms at 256
        // per turn, 145-180 ms at 64 (older daemons); 91-149 ms at 64 against 70-96 ms at 16
        // (7 paired runs); 61-102 ms at 16 against 56-80 ms at 8 (4 paired runs, notify at half
        // as much too), with the same events/s.
        maxPerTurn: 8,
        ...(adoptFd !== undefined ? { adoptFd } : {}),
      }).subscribe({
        next: (item) => {
          this.ueventItemAt = performance.now();
          if (item.kind === 'open') this.ueventSource = item.socket;
          this.pipeline.handle(item);
        },
        error: (err: Error) => logger.fatal({ err }, 'uevent source failed'),
      }),
    );
    this.units.supervisor.otherOwners.push((exit) => this.programRunner?.notifyExit(exit) === true);
    this.units.watchChildren();
    const cold =
      this.rulesStage !== undefined ? await this.pipeline.coldplugWithRules() : this.pipeline.coldplug();
    this.coldplugged = true;
    // Devices first, then units: a unit that needs a device finds it plugged.
    this.units.start(restore?.input);
    logger.info(
      {
        devices: cold.devices,
        units: this.manager.unitCount(),
        ms: Math.round(cold.ms * 10) / 10,
        mode: this.mode,
      },
      'coldplug done',
    );
    this.control = new ControlServer({
      socketPath: this.options.controlSocket,
      native: this.options.native,
      logger,
      handlers: this.handlers(),
      beforeRequest: () => this.units.armedStarts?.flush(),
      controlGid: this.options.controlGid,
    });
    if (restore?.controlFd !== undefined) {
      try {
        await this.control.adopt(restore.controlFd);
      } catch (err) {
        logger.warn(
          { err },
          'the control socket carried across the re-exec cannot be used; opening a new one',
        );
        await this.control.listen();
      }
    } else {
      await this.control.listen();
    }
    // Kept current from here on, so that a restart after a crash finds what runs.
    this.subscriptions.push(this.manager.unitChanges$.subscribe(() => this.scheduleCheckpoint()));
    // Jobs are in it too: one installed while no unit changes (a start waiting for another).
    this.units.onQueueChange = () => this.scheduleCheckpoint(false);
    this.ensureHolder();
    this.writeCheckpoint();
    this.gcTimer = setInterval(() => this.manager.collectGarbage(), 30_000);
    this.gcTimer.unref();
    logger.info(
      {
        socket: this.options.controlSocket,
        pid: process.pid,
        unitFiles: this.unitFiles.length,
        ruleFiles: this.ruleFiles.length,
      },
      'triggerd ready',
    );
  }

  async stop(): Promise<void> {
    if (this.gcTimer !== undefined) clearInterval(this.gcTimer);
    this.stopping = true;
    this.clearCheckpointTimer();
    await this.units.shutdown(this.options.shutdownTimeoutMs ?? 90_000);
    // A checkpoint still on its way would put the file back after its removal.
    await this.checkpointWrite;
    // A clean stop leaves nothing to recover: the next start is a fresh one.
    this.stopHolder();
    try {
      removeStateFile(this.options.runtimeDir);
    } catch (err) {
      this.options.logger.warn({ err }, 'cannot remove the state file');
    }
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.deviceWatch?.close();
    await this.control?.close();
    this.options.logger.info('triggerd stopped');
  }

  // ---- re-exec and crash recovery ---------------------------------------------------------------

  private stopping = false;
  private reexecing = false;
  /** The uevent socket (from its 'open' item), and when its stream last handed something on. */
  private ueventSource: { pause(): void; resume(): void } | undefined;
  private ueventItemAt = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointDue = 0;

  /** How long a transition may wait before the checkpoint is written (debounced), and at most. */
  private static readonly CHECKPOINT_QUIET_MS = 50;
  private static readonly CHECKPOINT_MAX_WAIT_MS = 500;

  /**
   * The state file as it is now, for a restart after a crash: written on transitions (service
   * start/exit, socket listen, ...), debounced (a quiet 50 ms, at most 500 ms late).
   */
  /** Unit transitions so far (the idle memory release watches it with the uevent batches). */
  transitions = 0;

  /** `transition`: a unit's (counted); a job's change only schedules. */
  private scheduleCheckpoint(transition = true): void {
    if (transition) this.transitions++;
    if (this.stopping || this.reexecing) return;
    const now = Date.now();
    this.lastTransition = now;
    // One timer per window, not one per transition (a burst of connections makes thousands).
    if (this.checkpointTimer !== undefined) return;
    this.checkpointDue = now + Daemon.CHECKPOINT_MAX_WAIT_MS;
    this.armCheckpoint(Daemon.CHECKPOINT_QUIET_MS);
  }

  private lastTransition = 0;

  /** Fires after a quiet CHECKPOINT_QUIET_MS since the last transition, or at checkpointDue. */
  private armCheckpoint(wait: number): void {
    this.checkpointTimer = setTimeout(() => {
      const now = Date.now();
      const quietAt = this.lastTransition + Daemon.CHECKPOINT_QUIET_MS;
      if (quietAt > now && this.checkpointDue > now) {
        this.armCheckpoint(Math.min(quietAt, this.checkpointDue) - now);
        return;
      }
      this.checkpointTimer = undefined;
      this.writeCheckpoint();
    }, wait);
  }

  private clearCheckpointTimer(): void {
    if (this.checkpointTimer !== undefined) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
  }

  /** The checkpoint being written (its file system calls run on libuv's pool), if any. */
  private checkpointWrite: Promise<void> | undefined;
  /** A checkpoint was due while one was being written: write again when it is done. */
  private checkpointAgain = false;

  private writeCheckpoint(): void {
    if (this.stopping || this.reexecing) return;
    if (this.checkpointWrite !== undefined) {
      this.checkpointAgain = true;
      return;
    }
    // A holder killed meanwhile (by hand, an OOM kill) is replaced: the state must not name it.
    if (this.holder !== undefined && !holderRuns(this.holder)) {
      this.options.logger.warn({ pid: this.holder.pid }, 'the fd holder is gone; starting another');
      this.holder = undefined;
      this.ensureHolder();
    }
    let state: DaemonStateFile;
    try {
      state = this.stateFile('checkpoint', []);
    } catch (err) {
      this.options.logger.warn({ err }, 'cannot write the state file');
      return;
    }
    this.checkpointWrite = writeStateFileAsync(this.options.runtimeDir, state)
      .catch((err: unknown) => this.options.logger.warn({ err }, 'cannot write the state file'))
      .finally(() => {
        this.checkpointWrite = undefined;
        if (!this.checkpointAgain) return;
        this.checkpointAgain = false;
        this.writeCheckpoint();
      });
  }

  private stateFile(kind: DaemonStateFile['kind'], fds: number[], controlFd?: number): DaemonStateFile {
    // An armed path start whose bookkeeping waits is in the state as started.
    this.units.armedStarts?.flush();
    const ctx: SerializeContext = {
      kind,
      carryFd: (fd) => {
        if (kind !== 'reexec') return -1;
        fds.push(fd);
        return fd;
      },
      startTimeOf: processStartTime,
    };
    const units = this.units.serializeUnits(ctx);
    // The event sockets go along, so nothing sent while the new image starts is lost.
    const sockets: NonNullable<DaemonStateFile['sockets']> = {};
    if (kind === 'reexec') {
      const uevent = this.pipeline.stats.port > 0 ? ueventSocketFd(this.pipeline.stats.port) : undefined;
      const notify = unixSocketFd(this.units.notifySocket);
      if (uevent !== undefined) fds.push((sockets.uevent = uevent));
      if (notify !== undefined) fds.push((sockets.notify = notify));
    }
    return {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      kind,
      daemon: { pid: process.pid, startTime: processStartTime(process.pid), bootId: bootId() },
      writtenAt: Date.now(),
      fds: controlFd === undefined ? fds : [...fds, controlFd],
      ...(controlFd !== undefined ? { control: { fd: controlFd, path: this.options.controlSocket } } : {}),
      ...(kind === 'reexec' ? { sockets } : {}),
      cgroups: this.units.ownedGroups(),
      units,
      jobs: this.units.serializeJobs(),
      ...(this.holder !== undefined ? { holder: this.holder } : {}),
    };
  }

  /**
   * What the state file says about the last daemon on this runtime dir: a re-exec of this very
   * process (same pid and start time: fds and children are still ours), or a daemon that died
   * (its services are adopted, its fds are gone). A corrupt file means a fresh start.
   */
  private restoreInput(): { input: RestoreInput; controlFd?: number; ueventFd?: number } | undefined {
    const { logger, runtimeDir } = this.options;
    const read = readStateFile(runtimeDir);
    if (!read.ok) {
      if (read.reason === 'corrupt') {
        logger.warn({ code: 'ERR_STATE_CORRUPT' }, `state file unusable (${read.message}); starting fresh`);
        removeStateFile(runtimeDir);
      }
      return undefined;
    }
    for (const w of read.warnings) logger.warn({ code: 'ERR_STATE_ENTRY' }, `state file: ${w}`);
    const { state } = read;
    const boot = bootId();
    if (state.daemon.bootId !== undefined && boot !== undefined && state.daemon.bootId !== boot) {
      logger.warn({ code: 'ERR_STATE_STALE' }, 'state file from an earlier boot; starting fresh');
      removeStateFile(runtimeDir);
      return undefined;
    }
    const me = state.daemon.pid === process.pid && state.daemon.startTime === processStartTime(process.pid);
    if (me && state.kind === 'reexec') {
      const open = state.fds.filter(isOpenFd);
      const controlFd =
        state.control !== undefined && open.includes(state.control.fd) ? state.control.fd : undefined;
      if (
        state.control !== undefined &&
        state.control.path !== this.options.controlSocket &&
        controlFd !== undefined
      ) {
        logger.warn('the control socket path changed across the re-exec; the carried socket is closed');
        closeQuietly(controlFd);
      }
      const useControl = controlFd !== undefined && state.control?.path === this.options.controlSocket;
      const carried = (fd: number | undefined): number | undefined =>
        fd !== undefined && open.includes(fd) ? fd : undefined;
      const ueventFd = carried(state.sockets?.uevent);
      const notifyFd = carried(state.sockets?.notify);
      logger.info(
        { units: state.units.length, fds: open.length, ueventFd, notifyFd },
        'continuing after re-exec',
      );
      // The holder outlives the exec and holds the very sockets carried across it.
      if (state.holder !== undefined && holderRuns(state.holder)) this.holder = state.holder;
      return {
        input: {
          kind: 'reexec',
          state,
          fds: open.filter((fd) => fd !== controlFd && fd !== ueventFd && fd !== notifyFd),
          ...(notifyFd !== undefined ? { notifyFd } : {}),
        },
        controlFd: useControl ? controlFd : undefined,
        ...(ueventFd !== undefined ? { ueventFd } : {}),
      };
    }
    // A zombie is a daemon that died and was not reaped yet: not running.
    const run = processRunState(state.daemon.pid);
    if (
      !me &&
      state.daemon.pid !== process.pid &&
      run !== undefined &&
      run !== 'Z' &&
      run !== 'X' &&
      processStartTime(state.daemon.pid) === state.daemon.startTime
    ) {
      throw Object.assign(new Error(`another triggerd (pid ${state.daemon.pid}) runs on ${runtimeDir}`), {
        code: 'ERR_DAEMON_RUNNING',
      });
    }
    logger.warn(
      { pid: state.daemon.pid, writtenAt: new Date(state.writtenAt).toISOString() },
      'the previous daemon did not stop cleanly: recovering its units from the state file',
    );
    // Its fd holder kept the event sockets: what was sent to them meanwhile is still queued.
    const held = state.holder !== undefined ? this.takeBackSockets(state.holder) : undefined;
    return {
      input: {
        kind: 'crash',
        state,
        fds: [],
        ...(held?.notify !== undefined ? { notifyFd: held.notify } : {}),
      },
      ...(held?.uevent !== undefined ? { ueventFd: held.uevent } : {}),
    };
  }

  // ---- the fd holder (fd-holder.ts) -------------------------------------------------------------

  /** The process keeping a copy of the event sockets for the next daemon after a crash. */
  private holder: FdHolderRecord | undefined;

  private takeBackSockets(held: FdHolderRecord): { notify?: number; uevent?: number } | undefined {
    let got: { notify?: number; uevent?: number } | undefined;
    try {
      got = takeBackFromHolder(loadNativeReexec(), held, (pidfd) =>
        this.options.spawn.pidfdSendSignal(pidfd, 9),
      );
    } catch (err) {
      this.options.logger.warn({ err }, 'cannot take the event sockets back from the fd holder');
      return undefined;
    }
    if (got === undefined) {
      this.options.logger.warn(
        { pid: held.pid },
        'the fd holder is gone: what was sent to the event sockets meanwhile is lost',
      );
      return undefined;
    }
    if (got.uevent !== undefined && held.mode !== this.mode) {
      // Another --mode listens to another uevent group: a fresh socket.
      closeQuietly(got.uevent);
      delete got.uevent;
    }
    this.options.logger.info(
      { pid: held.pid, notifyFd: got.notify, ueventFd: got.uevent },
      'took the event sockets back from the fd holder (what was sent meanwhile is queued there)',
    );
    return got;
  }

  /** Once the sockets exist: a holder of this daemon's (a re-exec keeps the one it had). */
  private ensureHolder(): void {
    if (this.holder !== undefined && holderRuns(this.holder)) return;
    const port = this.pipeline.stats.port;
    const sockets = {
      notify: unixSocketFd(this.units.notifySocket),
      uevent: port > 0 ? ueventSocketFd(port) : undefined,
    };
    let started: ReturnType<typeof startFdHolder>;
    try {
      started = startFdHolder(this.options.spawn, sockets);
    } catch (err) {
      started = { error: (err as Error).message };
    }
    if ('error' in started) {
      this.holder = undefined;
      this.options.logger.warn(
        `no fd holder (${started.error}): after a crash, what is sent to the event sockets until the next start is lost`,
      );
      return;
    }
    this.holder = { ...started, mode: this.mode };
    this.options.logger.info({ pid: started.pid, fds: started.fds }, 'fd holder started');
  }

  /** A clean stop: nobody is to take the sockets back. */
  private stopHolder(): void {
    const held = this.holder;
    this.holder = undefined;
    if (held === undefined) return;
    try {
      const reexec = loadNativeReexec();
      const pidfd = reexec.pidfdOpen(held.pid);
      try {
        if (holderRuns(held)) this.options.spawn.pidfdSendSignal(pidfd, 9);
      } finally {
        reexec.closeFd(pidfd);
      }
    } catch {
      // gone already
    }
  }

  /**
   * `triggerctl daemon-reexec` and SIGUSR1: execve the same program with the same arguments,
   * keeping listening sockets, stored fds, the control socket and running services. Traffic is
   * held (the kernel queues it) while spawns finish (at most 5 s) and jobs get a second; the
   * jobs still installed go into the state with the units, the state is
   * written, the fds to carry lose FD_CLOEXEC, and the image is replaced. If execve fails, the
   * daemon goes on as it was and the error is thrown.
   */
  async reexec(): Promise<void> {
    const { logger } = this.options;
    if (this.reexecing || this.stopping) throw new Error('a re-exec or a stop is already on its way');
    const native = loadNativeReexec();
    this.reexecing = true;
    this.clearCheckpointTimer();
    const t0 = performance.now();
    this.units.holdTraffic();
    // Spawns on their way must land (their pids go into the state); jobs get a second to end in
    // this image, and the rest is carried in the state file (JobQueue.serialize/restore).
    const deadline = Date.now() + 5000;
    const jobsBy = Date.now() + 1000;
    while ((this.units.spawning() || (this.units.busy() && Date.now() < jobsBy)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 2));
    if (this.units.spawning()) logger.warn('spawns still on their way after 5 s: re-executing anyway');
    // Then the event sockets stop being read (the new image reads them on); what was read
    // already is handed on and processed first (at most 1 s more).
    this.ueventSource?.pause();
    this.units.pauseNotify();
    const settled = Date.now() + 1000;
    const quiet = (): boolean =>
      performance.now() - Math.max(this.ueventItemAt, this.units.notifyItemAt) >= 20 &&
      this.pipeline.pending() === 0;
    while (!quiet() && Date.now() < settled) await new Promise((r) => setTimeout(r, 2));
    // A checkpoint still on its way must not rename itself over the state written below.
    await this.checkpointWrite;
    const fds: number[] = [];
    const controlFd = this.control?.fd();
    const state = this.stateFile('reexec', fds, controlFd);
    const cleared: number[] = [];
    try {
      writeStateFile(this.options.runtimeDir, state);
      for (const fd of state.fds) {
        native.setCloseOnExec(fd, false);
        cleared.push(fd);
      }
      // stdin, stdout, stderr stay what they are (something on the way set FD_CLOEXEC on them;
      // Node would reopen them on /dev/null).
      for (const fd of [0, 1, 2]) {
        try {
          if (native.closeOnExec(fd)) {
            native.setCloseOnExec(fd, false);
            cleared.push(fd);
          }
        } catch {
          // not open
        }
      }
      const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
      const env = Object.entries(process.env)
        .filter((e): e is [string, string] => e[1] !== undefined)
        .map(([k, v]) => `${k}=${v}`);
      logger.info(
        { fds: state.fds.length, units: state.units.length, ms: Math.round(performance.now() - t0) },
        're-executing',
      );
      flushLogSync(logger);
      native.execve(process.execPath, argv, env);
    } catch (err) {
      for (const fd of cleared) {
        try {
          native.setCloseOnExec(fd, true);
        } catch {
          // closed meanwhile
        }
      }
      this.reexecing = false;
      this.ueventSource?.resume();
      this.units.resumeNotify();
      this.units.releaseTraffic();
      this.writeCheckpoint();
      logger.error({ err }, 're-exec failed; going on as before');
      throw err;
    }
  }

  /** SIGHUP and `triggerctl reload`: re-read configuration from scratch and swap it in. */
  reload(): { unitFiles: number; ruleFiles: number } {
    this.loadConfiguration();
    this.runGenerators();
    // Unit files from scratch; running units (listening sockets with their fds) keep running.
    const units = this.units.reload();
    this.options.logger.info(units, 'unit files reloaded');
    this.options.logger.info(
      { unitFiles: this.unitFiles.length, ruleFiles: this.ruleFiles.length },
      'reloaded',
    );
    return { unitFiles: this.unitFiles.length, ruleFiles: this.ruleFiles.length };
  }

  /** Wait until every uevent the kernel emitted before this call has been processed. */
  settle(timeoutMs: number, onProgress?: (seqnum: number, target: number) => void): Promise<SettleResult> {
    const t0 = Date.now();
    const target = readKernelSeqnum(this.sysRoot);
    return new Promise((resolve) => {
      let lastBatches = this.pipeline.batches;
      let finished = false;
      const done = (settled: boolean): void => {
        if (finished) return;
        finished = true;
        clearInterval(timer);
        progress.unsubscribe();
        resolve({ settled, seqnum: this.pipeline.registry.lastSeqnum, target, ms: Date.now() - t0 });
      };
      // Answer as soon as the last event older than the request is processed (checked on every
      // processed event), not on the next tick of a timer.
      const check = (): void => {
        if (this.pipeline.registry.lastSeqnum >= target && this.pipeline.pending() === 0) done(true);
      };
      const progress = this.pipeline.events$.subscribe(() => setImmediate(check));
      // Seqnums are global but events for other network namespaces never reach us: a socket that
      // stayed quiet for a whole interval, with nothing queued, holds nothing older than this request.
      const timer = setInterval(() => {
        const busy = this.pipeline.pending() > 0;
        if (this.pipeline.batches === lastBatches && !busy) return done(true);
        if (Date.now() - t0 >= timeoutMs) return done(false);
        lastBatches = this.pipeline.batches;
        onProgress?.(this.pipeline.registry.lastSeqnum, target);
      }, 10);
      setImmediate(check);
    });
  }

  private loadConfiguration(): void {
    this.unitFiles = listFiles(
      this.options.unitPaths,
      /\.(service|socket|path|timer|mount|automount|device|target)$/,
    );
    this.ruleFiles = listFiles(this.options.rulesPaths, /\.rules$/);
  }

  /**
   * At most a second old: its RSS comes from reading /proc/self/stat, which under load took
   * 35 µs at the median and up to 15 ms (bench/load), on the path of every `status` answer.
   */
  private memoryUsage(): NodeJS.MemoryUsage {
    const now = performance.now();
    if (this.memory === undefined || now - this.memory.at >= MEMORY_SAMPLE_MS) {
      this.memory = { usage: process.memoryUsage(), at: now };
    }
    return this.memory.usage;
  }

  private handlers(): ControlHandlers {
    const { pipeline, manager } = this;
    return {
      ping: () => ({ pid: process.pid, version: VERSION, mode: this.mode, startedAt: this.startedAt }),
      'daemon-reexec': () => {
        if (this.reexecing || this.stopping) throw new Error('a re-exec or a stop is already on its way');
        loadNativeReexec(); // a missing addon is refused here, not after the answer
        // Answered first; the exec follows on a later turn (the new image answers what comes next).
        setImmediate(() => {
          this.reexec().catch(() => undefined);
        });
        return { pid: process.pid, startedAt: this.startedAt };
      },
      status: () => ({
        pid: process.pid,
        version: VERSION,
        mode: this.mode,
        uptimeMs: Date.now() - this.startedAt,
        devices: pipeline.registry.size,
        units: manager.unitCount(),
        unitFiles: this.unitFiles,
        ruleFiles: this.ruleFiles,
        uevents: pipeline.stats,
        control: this.control?.stats,
        memory: this.memoryUsage(),
      }),
      ...deviceHandlers({
        pipeline,
        manager,
        sysRoot: this.sysRoot,
        rules: () => this.rulesStage,
        settle: (timeoutMs, onProgress) => this.settle(timeoutMs, onProgress),
      }),
      'list-unit-files': () => this.units.loader.listUnitFiles(),
      ...unitHandlers({
        manager,
        engine: this.units.engine,
        rings: this.rings,
        reload: () => this.reload(),
        enable: (names) => this.units.enable(names),
        disable: (names) => this.units.disable(names),
      }),
    };
  }
}

function listFiles(dirs: string[], pattern: RegExp): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (pattern.test(n)) out.push(path.join(dir, n));
  }
  return out;
}

/** Whether udevd already runs here (companion mode in 'auto'). */
export function udevdRunning(): boolean {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return false;
  }
  for (const pid of pids) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
      if (comm === 'systemd-udevd' || comm === 'udevd') return true;
    } catch {
      // process went away
    }
  }
  return false;
}

function isOpenFd(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // not open
  }
}

/** Whatever the log stream still buffers, written now: execve drops the process's memory. */
function flushLogSync(logger: Logger): void {
  const stream: unknown = Reflect.get(logger, pino.symbols.streamSym);
  if (typeof stream !== 'object' || stream === null) return;
  const flush: unknown = Reflect.get(stream, 'flushSync');
  if (typeof flush !== 'function') return;
  try {
    flush.call(stream);
  } catch {
    // nothing buffered, or the stream is not ready: lines may be lost, the exec goes on
  }
}
