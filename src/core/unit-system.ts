// Services and targets in the daemon: the unit loader, the engine (graph + job queue), the
// process supervisor (spawn, exits, output), and the sd_notify socket, wired together. Start-up:
// load every unit file, then start default.target (an implicit one when the unit path has none).
import fs = require('node:fs');
import path = require('node:path');
import type { Subscription } from 'rxjs';
import type { Logger } from '../util/logger';
import type { NativeSpawn } from '../native/spawn-addon';
import type { NativeNotify } from '../native/notify-addon';
import { loadNativeSocket, type AcceptedConnection, type NativeSocket } from '../native/socket-addon';
import { UnitLoader, parseUnitText } from '../units/unit-loader';
import type { LoadedUnitFile } from '../units/config-types';
import { createUnit } from '../units/registry';
import { ServiceUnit, type StoredFd } from '../units/service';
import type { SocketHost, SocketUnit } from '../units/socket';
import { remoteEnvironment } from '../units/socket-address';
import type { DeserializeContext, SerializeContext, UnitInstance } from '../units/unit-type';
import { socketTemplateName } from '../units/unit-keys';
import { ownPipeReadEnds, pipeInode, type DaemonStateFile, type StateUnitEntry } from './daemon-state';
import { outputLines } from '../exec/output-lines';
import { ProcessAdoption } from './process-adoption';
import { reclaimListening } from './reclaim-listening';
import { loadNativeReexec, type NativeReexec } from '../native/reexec-addon';
import { readUserDatabase, findGroup, findUser } from '../exec/user-database';
import { childExitEvents } from '../exec/child-exit-events';
import { openCgroupTree, type CgroupTree } from '../exec/cgroups';
import { notifyEvents } from '../events/notify-events';
import { NotifyRouter, type NotifyUnit } from './notify-router';
import { ProcessSupervisor } from './process-supervisor';
import { UnitEngine, type UnitSource } from './unit-engine';
import type { Manager } from './manager';
import { AutomountUnits } from './automount-units';
import { MountSystem } from '../mounts/mount-system';
import { loadNativeMounts, type NativeMounts } from '../native/mounts-addon';
import { PathUnits } from './path-units';
import { PathArmedStarts } from './path-armed-start';
import type { SerializedJob } from './job-queue';
import type { NativeInotify } from '../native/inotify-addon';
import { TimerUnits } from './timer-units';
import {
  AcceptFastPath,
  connectionPlanTemplate,
  fastPathEligibility,
  type FastAccept,
  type FastAcceptEvents,
} from './accept-fast-path';
import type { NativeTimerfd } from '../native/timerfd-addon';

export interface UnitSystemOptions {
  logger: Logger;
  manager: Manager;
  unitPaths: string[];
  runtimeDir: string;
  spawn: NativeSpawn;
  notify: NativeNotify;
  /** cgroup v2 base directory the daemon owns (default <hierarchy>/triggerd). */
  cgroupBase?: string;
  /** The socket layer (default: the triggerd_socket addon, loaded when a socket unit starts). */
  socket?: NativeSocket;
  /** inotify for path units (default: the triggerd_inotify addon, loaded when a path unit starts). */
  inotify?: NativeInotify;
  /** Where Persistent=yes timers keep their stamps (<stateDir>/timers; default defaultStateDir()). */
  stateDir?: string;
  /** The clock-change watch for timer units (default: the triggerd_timerfd addon). */
  timerfd?: NativeTimerfd;
  /** The mountinfo watch for mount units (default: the triggerd_mounts addon; null: poll). */
  mounts?: NativeMounts | null;
  /** pidfds for processes adopted after a re-exec or a crash (default: the triggerd_reexec addon). */
  reexec?: NativeReexec;
  /**
   * Start path-triggered jobs from the inotify wake-up where the outcome is known in advance
   * (src/core/path-armed-start.ts). Default: on, unless TRIGGERD_ARMED_PATH_STARTS=0.
   */
  armedPathStarts?: boolean;
  /**
   * Armed path starts park their job (cloned ahead, waiting to exec), so the change's wake-up is
   * one write. Default: on, unless TRIGGERD_ARMED_PARK=0.
   */
  parkArmedJobs?: boolean;
}

/** What start() restores instead of starting default.target (src/core/daemon-state.ts). */
export interface RestoreInput {
  kind: 'reexec' | 'crash';
  state: DaemonStateFile;
  /** Fds listed in the state and open in this process (the control socket's excluded). */
  fds: number[];
  /** The sd_notify socket carried across a re-exec (not in `fds`): read on instead of a new one. */
  notifyFd?: number;
}

/** Failed Accept=yes instances kept for `status` (the oldest goes first); dead ones go at once. */
const KEEP_FAILED_INSTANCES = 64;

/** Targets every setup has; made up when the unit path does not define them. */
const IMPLICIT_UNITS: Record<string, string> = {
  'default.target':
    '[Unit]\nDescription=Default target (implicit)\nWants=multi-user.target\nAfter=multi-user.target\n',
  'multi-user.target':
    '[Unit]\nDescription=Multi-user target (implicit)\nWants=sockets.target timers.target\nAfter=sockets.target timers.target\n',
  'sockets.target': '[Unit]\nDescription=Sockets (implicit)\n',
  // Debian's timers say WantedBy=timers.target.
  'timers.target': '[Unit]\nDescription=Timers (implicit)\n',
};

export class UnitSystem {
  readonly engine: UnitEngine;
  readonly supervisor: ProcessSupervisor;
  readonly loader: UnitLoader;
  readonly cgroups: CgroupTree | undefined;
  readonly notifySocket: string;
  private readonly services = new Map<string, ServiceUnit>();
  private readonly sockets = new Map<string, SocketUnit>();
  /** Live Accept=yes instances: what to call when each is over. */
  private readonly connectionEnds = new Map<string, () => void>();
  /** Every Accept=yes instance still in memory (live, or kept failed). */
  private readonly instances = new Set<string>();
  private readonly failedInstances: string[] = [];
  private collectQueue: ServiceUnit[] = [];
  /** Accept=yes templates without specifiers, parsed once per (re)load and shared by their instances. */
  private readonly instanceFiles = new Map<string, LoadedUnitFile>();
  private readonly subscriptions: Subscription[] = [];
  private readonly logger: Logger;
  /** The environment every job starts from. */
  private readonly baseEnv: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
  /** Accept=yes instances started by the socket addon's accept threads. */
  private readonly fastPath: AcceptFastPath;

  constructor(private readonly options: UnitSystemOptions) {
    this.logger = options.logger;
    this.loader = new UnitLoader(options.unitPaths);
    this.notifySocket = path.join(options.runtimeDir, 'notify');
    const cg = openCgroupTree(options.cgroupBase === undefined ? {} : { base: options.cgroupBase });
    if (cg.ok) {
      this.cgroups = cg.tree;
    } else {
      this.logger.warn(
        `no writable cgroup v2 hierarchy (${cg.reason}); tracking service processes by session instead`,
      );
    }
    this.supervisor = new ProcessSupervisor({
      native: options.spawn,
      logger: options.logger,
      runtimeDir: options.runtimeDir,
      cgroups: this.cgroups,
      notifySocket: this.notifySocket,
      baseEnv: this.baseEnv,
    });
    this.fastPath = new AcceptFastPath({
      native: () => this.nativeSocket(),
      addUnit: (unit) => {
        // Its slot group: listed in the state file, so the next image removes it when spare.
        if (unit.cgroup !== undefined) this.fastSlots.add(unit.cgroup);
        this.options.manager.addUnit(unit);
      },
      removeUnit: (unit) => {
        if (this.options.manager.getUnit(unit.name) !== unit) return;
        this.options.manager.removeUnit(unit.name);
        this.engine.forgetUnit(unit.name);
      },
      instanceHost: {
        signalGroup: (dir, signal) => {
          try {
            this.cgroups?.kill(dir, signal);
          } catch (err) {
            this.logger.warn({ err }, `cannot signal ${dir}`);
          }
        },
        setTimer: (ms, fn) => {
          const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
          return () => clearTimeout(t);
        },
        stateChanged: (unit, from, to) => this.engine.unitStateChanged(unit, from, to),
        jobFinished: (unit, end) => this.engine.jobFinished(unit, end),
      },
      logger: this.logger,
    });
    // The spawn addon's reaper may get an instance's exit before its accept thread does.
    this.supervisor.otherOwners.push((exit) => this.fastPath.claimExit(exit));
    const loader = this.loader;
    const source: UnitSource = {
      unitNames: () => {
        loader.refresh();
        const names = new Set(loader.unitNames());
        for (const n of Object.keys(IMPLICIT_UNITS)) names.add(n);
        return [...names];
      },
      load: (name) => this.loadFile(name),
      installEdges: () => loader.installEdges(),
    };
    const callbacks = {
      jobFinished: (unit: string, end: Parameters<UnitEngine['jobFinished']>[1]) =>
        this.engine.jobFinished(unit, end),
      stateChanged: (unit: ServiceUnit, from: string, to: string) => this.unitChanged(unit, from, to),
      requestRestart: (unit: string) => {
        const r = this.engine.enqueue(unit, 'restart', 'replace', false);
        if (!r.ok) this.logger.error({ unit }, `automatic restart refused: ${r.error.message}`);
      },
      socketFds: (unit: string) => this.socketFdsFor(unit),
    };
    this.serviceCallbacks = callbacks;
    const armedStarts =
      (options.armedPathStarts ?? process.env.TRIGGERD_ARMED_PATH_STARTS !== '0')
        ? new PathArmedStarts({
            logger: options.logger.child({ component: 'path-armed-start' }),
            spawn: options.spawn,
            resolve: (name) => this.engine.resolve(name),
            service: (name) => this.services.get(name),
            trivialStartClosure: (name) => this.engine.queue.trivialStartClosure(name),
            armedPlan: (unit, cmd, env) => this.supervisor.armedPlan(unit, cmd, env),
            holdArmedChild: (unit, cmd, env, child, cgroup) =>
              this.supervisor.holdArmedChild(unit, cmd, env, child, cgroup),
            settleArmedChild: (unit) => this.supervisor.settleArmedChild(unit),
            park: options.parkArmedJobs ?? process.env.TRIGGERD_ARMED_PARK !== '0',
            holdParkedChild: (pid) => this.supervisor.holdParkedChild(pid),
          })
        : undefined;
    this.armedStarts = armedStarts;
    this.supervisor.onArmedPlanGone = (unit) => armedStarts?.planGone(unit);
    this.supervisor.onArmedChildExit = () => armedStarts?.flush();
    this.supervisor.onParkedChildExit = (pid) => armedStarts?.parkedChildExited(pid);
    this.paths = new PathUnits({
      logger: options.logger,
      manager: options.manager,
      engine: () => this.engine,
      inotify: options.inotify,
      unitOfPid: (pid) => this.supervisor.unitOfPid(pid),
      stateChanged: (unit, from, to) => this.unitChanged(unit, from, to),
      armedStarts,
    });
    this.mounts = new MountSystem({
      logger: options.logger,
      manager: options.manager,
      engine: () => this.engine,
      supervisor: this.supervisor,
      runtimeDir: options.runtimeDir,
      native: options.mounts,
      loadNative: loadNativeMounts,
      stateChanged: (unit, from, to) => this.unitChanged(unit, from, to),
    });
    this.automounts = new AutomountUnits({
      logger: options.logger,
      manager: options.manager,
      engine: () => this.engine,
      spawn: options.spawn,
      supervisor: this.supervisor,
      stateChanged: (unit, from, to) => this.unitChanged(unit, from, to),
    });
    this.timers = new TimerUnits({
      logger: options.logger,
      manager: options.manager,
      engine: () => this.engine,
      stateDir: options.stateDir,
      timerfd: options.timerfd,
      inotify: options.inotify,
      stateChanged: (unit, from, to) => this.unitChanged(unit, from, to),
    });
    this.engine = new UnitEngine({
      manager: options.manager,
      source,
      logger: options.logger,
      onChange: (unit) => {
        this.armedStarts?.changed(unit);
        this.onQueueChange?.();
      },
      create: (file) =>
        createUnit(file, {
          serviceHost: (name) => this.supervisor.hostFor(name, callbacks),
          serviceCreated: (unit) => {
            this.services.set(unit.name, unit);
            this.supervisor.register(unit);
          },
          socketHost: (name, unit) => this.socketHost(name, unit),
          socketCreated: (unit) => {
            const previous = this.sockets.get(unit.name);
            if (previous !== undefined && previous !== unit) unit.carryOver(previous);
            this.sockets.set(unit.name, unit);
            this.supervisor.registerOwner(unit.name, unit);
          },
          pathHost: (name, unit) => this.paths.host(name, unit),
          pathCreated: (unit) => this.paths.created(unit),
          timerHost: (name, unit) => this.timers.host(name, unit),
          timerCreated: (unit) => this.timers.created(unit),
          automountHost: (name, unit) => this.automounts.host(name, unit),
          automountCreated: (unit) => this.automounts.created(unit),
          mountHost: (name, unit) => this.mounts.hostFor(name, unit),
          mountCreated: (unit) => this.mounts.created(unit),
          stateChanged: (unit, from, to) => this.unitChanged(unit, from, to),
        }),
    });
    // A fired armed start's bookkeeping, if it waits, comes before any job request.
    if (this.armedStarts !== undefined) {
      const armed = this.armedStarts;
      this.engine.queue.beforeEnqueue = () => armed.flush();
    }
  }

  /** Automount units: autofs mounts and the mount starter they share. */
  readonly automounts: AutomountUnits;

  /** Mount units, the mountinfo watch, and MountControl (start/stop a mount, learn its result). */
  readonly mounts: MountSystem;

  /** Timer units, their clock-change and time zone watches. */
  readonly timers: TimerUnits;

  /** Path units and their one shared inotify instance. */
  readonly paths: PathUnits;

  /**
   * A unit changed state or a job was installed, merged, run or finished: the daemon's
   * checkpoint follows (jobs are in the state file too).
   */
  onQueueChange: (() => void) | undefined;

  /** Path-triggered jobs cloned from the inotify wake-up (undefined when turned off). */
  readonly armedStarts: PathArmedStarts | undefined;

  private readonly serviceCallbacks: Parameters<ProcessSupervisor['hostFor']>[1];

  /** Every unit's transitions: to the engine, then to the sockets that trigger it. */
  private unitChanged(unit: UnitInstance, from: string, to: string): void {
    this.engine.unitStateChanged(unit, from, to);
    if (this.instances.has(unit.name)) {
      if (to === 'dead' || to === 'failed') this.instanceOver(unit as ServiceUnit, to);
      return;
    }
    for (const s of this.sockets.values()) if (s.serviceName() === unit.name) s.onUnitChanged(unit.name);
    this.automounts.unitChanged(unit.name, unit.activeState());
    this.paths.unitChanged(unit.name);
    this.timers.unitChanged(unit.name);
  }

  private socketLayer: NativeSocket | undefined;

  /** The native socket layer, loaded on first use (a build without it fails socket units, not the daemon). */
  private nativeSocket(): NativeSocket {
    if (this.socketLayer !== undefined) return this.socketLayer;
    if (this.options.socket !== undefined) return (this.socketLayer = this.options.socket);
    try {
      return (this.socketLayer = loadNativeSocket());
    } catch (err) {
      const message = (err as Error).message;
      const fail = (): never => {
        throw Object.assign(new Error(message), { code: 'ERR_NO_SOCKET_ADDON', syscall: 'dlopen' });
      };
      return {
        listen: fail,
        openFifo: fail,
        openSpecial: fail,
        openMessageQueue: fail,
        accept: fail,
        localAddress: fail,
        watch: fail,
        close: fail,
      };
    }
  }

  private socketHost(name: string, unit: () => SocketUnit | undefined): SocketHost {
    const log = this.logger.child({ unit: name });
    const control = this.supervisor.controlHostFor(name, () => {
      const exec = unit()?.file.socket?.exec;
      if (exec === undefined) throw new Error(`${name}: no [Socket] configuration`);
      return exec;
    });
    const nativeSocket = (): NativeSocket => this.nativeSocket();
    return {
      get native() {
        return nativeSocket();
      },
      userId: (user) => {
        if (/^[0-9]+$/.test(user)) return Number(user);
        return findUser(readUserDatabase('/'), user)?.uid;
      },
      groupId: (group) => {
        if (/^[0-9]+$/.test(group)) return Number(group);
        return findGroup(readUserDatabase('/'), group)?.gid;
      },
      spawn: (cmd) => control.spawn(cmd),
      signal: (pid, signal) => control.signal(pid, signal),
      signalGroup: (signal, except) => control.signalGroup(signal, except),
      unitStatus: (n) => {
        const resolved = this.engine.resolve(n);
        const u = this.options.manager.getUnit(resolved);
        if (u === undefined) {
          const f = this.engine.file(resolved);
          if (f === undefined) return undefined;
          return { active: 'inactive', load: f.loadState, sub: 'dead', hasJob: false };
        }
        return {
          active: u.activeState(),
          load: u.load,
          sub: u.subState(),
          // A start or restart on its way; a stop job means the service is going away for good.
          hasJob: (this.engine.queue.jobFor(u.name)?.type ?? 'stop') !== 'stop',
          result: u instanceof ServiceUnit ? u.result : undefined,
        };
      },
      startService: (n) => {
        const r = this.engine.enqueue(n, 'start', 'replace', false);
        if (!r.ok) return { ok: false, reason: r.error.message };
        return { ok: true, done: this.engine.queue.whenFinished(r.jobId) ?? Promise.resolve('done') };
      },
      startConnection: (n, conn, ended) => this.startConnection(n, conn, ended),
      startFastAccept: (fd, events, max) => this.startFastAccept(name, fd, events, max),
      symlink: (target, link) => {
        fs.mkdirSync(path.dirname(link), { recursive: true });
        try {
          fs.unlinkSync(link);
        } catch {
          // not there
        }
        fs.symlinkSync(target, link);
      },
      unlink: (p) => fs.unlinkSync(p),
      setTimer: (ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      now: () => performance.now(),
      jobFinished: (end) => this.engine.jobFinished(name, end),
      stateChanged: (from, to) => {
        const u = unit();
        if (u !== undefined) this.unitChanged(u, from, to);
      },
      reclaimListening: (service, entry) => {
        const s = this.services.get(service);
        const pids = [...(s?.mainPid !== undefined ? [s.mainPid] : []), ...this.supervisor.unitPids(service)];
        const got = reclaimListening(
          { reexec: this.options.reexec ?? loadNativeReexec(), socket: this.nativeSocket() },
          pids,
          entry,
        );
        if (got !== undefined)
          log.info(
            { pid: got.pid },
            `took ${entry.text} back from ${service} (pidfd_getfd): its queue is kept`,
          );
        return got?.fd;
      },
      log,
    };
  }

  /** LISTEN_FDS for a service: an instance's connection, or the listening fds of its sockets. */
  private socketFdsFor(name: string): StoredFd[] {
    const service = this.services.get(name);
    const conn = service?.connection;
    if (conn !== undefined) return conn.fd >= 0 ? [{ fd: conn.fd, name: 'connection' }] : [];
    if (this.sockets.size === 0) return [];
    const out: StoredFd[] = [];
    const seen = new Set<string>();
    const add = (s: SocketUnit | undefined): void => {
      if (s === undefined || seen.has(s.name)) return;
      seen.add(s.name);
      out.push(...s.listenFds());
    };
    // Sockets= in its order, then the sockets whose Service= (or name) is this service.
    for (const n of service?.file.service?.sockets ?? []) add(this.sockets.get(n));
    const triggering = [...this.sockets.values()].filter((s) => s.serviceName() === name);
    triggering.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const s of triggering) add(s);
    return out;
  }

  /**
   * Accept=yes: one instance for one connection, built from the template (read once per reload)
   * and started directly, without a transaction: it has no dependencies of its own to resolve.
   */
  private startConnection(
    name: string,
    conn: AcceptedConnection,
    ended: () => void,
  ): { ok: true } | { ok: false; reason: string } {
    const close = (): void => {
      try {
        this.nativeSocket().close(conn.fd);
      } catch {
        // gone
      }
    };
    if (this.options.manager.getUnit(name) !== undefined) {
      close();
      return { ok: false, reason: `${name} exists already` };
    }
    const loaded = this.instanceFile(name);
    if (!loaded.ok) {
      close();
      return loaded;
    }
    const unit = this.addInstance(
      name,
      loaded.file,
      { fd: conn.fd, env: remoteEnvironment(conn.remote) },
      ended,
    );
    const outcome = unit.start();
    if (typeof outcome === 'object') {
      this.logger.warn({ unit: name }, `instance failed to start: ${outcome.reason}`);
      if (unit.activeState() === 'inactive' || unit.activeState() === 'failed')
        this.instanceOver(unit, unit.activeState() === 'failed' ? 'failed' : 'dead');
    }
    return { ok: true };
  }

  /**
   * Accept=yes: the accept thread for one listening fd of `socket`, when the socket and its
   * template qualify (fastPathEligibility); undefined keeps startConnection's path.
   */
  private startFastAccept(
    socket: string,
    fd: number,
    events: FastAcceptEvents,
    maxConnections: number,
  ): FastAccept | undefined {
    const config = this.sockets.get(socket)?.file.socket;
    const template = socketTemplateName(socket);
    const loaded = this.instanceFile(`${template.slice(0, -'@.service'.length)}@fast-path.service`);
    if (config === undefined || !loaded.ok) return undefined;
    const file = { ...loaded.file, name: template, instance: '' };
    const log = this.logger.child({ unit: socket });
    const verdict = fastPathEligibility(config, file, this.loader.mentionsSpecifiers(loaded.file));
    if (!verdict.ok) {
      log.debug({ reasons: verdict.reasons }, `instances start in JavaScript: ${verdict.reasons.join(', ')}`);
      return undefined;
    }
    let plan;
    try {
      const built = connectionPlanTemplate(file, this.baseEnv, this.options.runtimeDir);
      for (const d of built.diagnostics) log.warn({ code: d.code }, d.message);
      plan = built.plan;
    } catch (err) {
      log.debug({ err }, `instances start in JavaScript: ${(err as Error).message}`);
      return undefined;
    }
    return this.fastPath.start(
      socket,
      fd,
      file,
      plan,
      {
        maxConnections,
        connectionFds: verdict.connectionFds,
        remoteEnvironment: true,
        ...(this.cgroups !== undefined ? { cgroupPool: this.cgroups.pathOf(template) } : {}),
      },
      events,
    );
  }

  /** An Accept=yes instance's file: the template's, read once per (re)load and shared. */
  private instanceFile(name: string): { ok: true; file: LoadedUnitFile } | { ok: false; reason: string } {
    const at = name.indexOf('@');
    const template = `${name.slice(0, at)}@.service`;
    const instance = name.slice(at + 1, -'.service'.length);
    const shared = this.instanceFiles.get(template);
    if (shared !== undefined) return { ok: true, file: { ...shared, name, instance } };
    const file = this.loader.load(name);
    if (file.loadState !== 'loaded' || file.service === undefined) {
      const why = file.diagnostics.find((d) => d.severity === 'error')?.message ?? file.loadState;
      return { ok: false, reason: `${name} cannot be loaded: ${why}` };
    }
    const svc = file.service;
    // inetd style: the connection is stdin and stdout unless the unit says otherwise.
    if (svc.stdioDefaulted?.input !== false) svc.exec.standardInput = { kind: 'socket' };
    if (svc.stdioDefaulted?.output !== false && svc.exec.standardInput.kind === 'socket')
      svc.exec.standardOutput = { kind: 'inherit' };
    if (file.aliases.length === 0 && !this.loader.mentionsSpecifiers(file))
      this.instanceFiles.set(template, file);
    return { ok: true, file };
  }

  private addInstance(
    name: string,
    file: LoadedUnitFile,
    connection: NonNullable<ServiceUnit['connection']>,
    ended: () => void,
  ): ServiceUnit {
    const unit = new ServiceUnit(name, file, this.supervisor.hostFor(name, this.serviceCallbacks));
    unit.connection = connection;
    unit.logQuietly = true;
    this.services.set(name, unit);
    this.supervisor.register(unit);
    this.options.manager.addUnit(unit);
    this.connectionEnds.set(name, ended);
    this.instances.add(name);
    return unit;
  }

  /** An instance is over: release its connection slot now, forget it after this turn. */
  private instanceOver(unit: ServiceUnit, to: string): void {
    const ended = this.connectionEnds.get(unit.name);
    this.connectionEnds.delete(unit.name);
    ended?.();
    if (to === 'failed') {
      this.failedInstances.push(unit.name);
      while (this.failedInstances.length > KEEP_FAILED_INSTANCES) {
        const old = this.failedInstances.shift() as string;
        const u = this.services.get(old);
        if (u !== undefined && u.activeState() === 'failed') this.collectQueue.push(u);
      }
    } else {
      this.collectQueue.push(unit);
    }
    if (this.collectQueue.length === 1) setImmediate(() => this.collectInstances());
  }

  private collectInstances(): void {
    for (const unit of this.collectQueue.splice(0)) {
      const a = unit.activeState();
      if (a !== 'inactive' && a !== 'failed') continue;
      if (this.engine.queue.jobFor(unit.name) !== undefined) continue;
      if (this.options.manager.getUnit(unit.name) === unit) this.options.manager.removeUnit(unit.name);
      if (this.services.get(unit.name) === unit) this.services.delete(unit.name);
      this.supervisor.unregister(unit.name, unit);
      this.engine.forgetUnit(unit.name);
      this.instances.delete(unit.name);
    }
  }

  /**
   * Reap children from the first moment anything may spawn one: the rules' programs run during
   * coldplug, before any unit starts, and an exit nobody reaps would hold them until their timeout.
   */
  watchChildren(): void {
    if (this.watchingChildren) return;
    this.watchingChildren = true;
    const { spawn, logger } = this.options;
    spawn.setSubreaper(true);
    this.subscriptions.push(
      childExitEvents(spawn).subscribe({
        next: (exits) => this.supervisor.onExits(exits),
        error: (err: Error) => logger.error({ err }, 'child exit watcher failed'),
      }),
    );
  }

  private watchingChildren = false;

  start(restore?: RestoreInput): void {
    const { notify, logger } = this.options;
    this.watchChildren();
    raiseDatagramQueue(logger);
    const router = new NotifyRouter({
      unitsForPid: (pid) => {
        // A message from an armed start's job before its bookkeeping: recorded first.
        this.armedStarts?.flush();
        return this.notifyUnitsFor(pid);
      },
      deliver: (event) => {
        const service = this.services.get(event.unit.name);
        if (service === undefined) return;
        const f = event.fields;
        service.onNotify({
          senderPid: event.sender.pid,
          ready: f.ready || undefined,
          reloading: f.reloading || undefined,
          stopping: f.stopping || undefined,
          status: f.status,
          errno: f.errno,
          mainPid: f.mainPid,
          watchdog: f.watchdog,
          watchdogUsec: f.watchdogUsec,
          extendTimeoutUsec: f.extendTimeoutUsec,
          monotonicUsec: f.monotonicUsec,
          storeFds: f.fdStore && service.config.fileDescriptorStoreMax > 0 ? event.fds.take() : undefined,
          fdStoreRemove: f.fdStoreRemove || undefined,
          fdName: f.fdName,
        });
      },
      closeFd: (fd) => notify.closeFd(fd),
      pidfdGetPid: (fd) => notify.pidfdGetPid(fd),
      logger,
    });
    const adoptFd = restore?.notifyFd;
    this.subscriptions.push(
      // A flood of datagrams is routed 16 per turn of the loop (the rest wait, socket paused):
      // shorter turns, so a control request waits less (see the uevent slices in daemon.ts).
      notifyEvents(notify, this.notifySocket, {
        maxPerTurn: 16,
        ...(adoptFd !== undefined ? { adoptFd } : {}),
      }).subscribe({
        next: (item) => {
          this.notifyItemAt = performance.now();
          if (item.kind === 'open') this.notifySource = item.socket;
          if (item.kind === 'datagrams') router.routeBatch(item.datagrams);
          else if (item.kind === 'error')
            logger.error({ code: item.error.code }, `notify socket: ${item.error.message}`);
        },
        error: (err: Error) => logger.error({ err }, 'notify socket failed'),
      }),
    );
    // The kernel's mount table before the unit files: a mount unit that is mounted already
    // starts as 'mounted'.
    this.mounts.startWatching();
    const loaded = this.engine.loadAll();
    logger.info({ units: loaded.loaded, errors: loaded.errors }, 'unit files loaded');
    if (restore !== undefined) {
      // As systemd after daemon-reexec: units take back their states; default.target is not
      // started again (a unit stopped on purpose stays stopped).
      this.restoreUnits(restore);
      return;
    }
    const r = this.engine.enqueue('default.target', 'start', 'replace', false);
    if (!r.ok) logger.error(`cannot start default.target: ${r.error.message}`);
  }

  // ---- re-exec and crash recovery ---------------------------------------------------------------

  private adoptionTable: ProcessAdoption | undefined;

  /** Processes found again after a re-exec or a crash, watched through pidfds. */
  private get adoption(): ProcessAdoption {
    if (this.adoptionTable === undefined) {
      const reexec = this.options.reexec ?? loadNativeReexec();
      this.adoptionTable = new ProcessAdoption({
        native: reexec,
        watch: (fd, onReadable) => this.nativeSocket().watch(fd, onReadable),
        exited: (exit) => this.supervisor.onExits([exit]),
        logger: this.logger,
      });
    }
    return this.adoptionTable;
  }

  /** Every unit with a file, for the state file (src/core/daemon-state.ts). */
  /** The job queue for the state file (taken back by restoreUnits). */
  serializeJobs(): SerializedJob[] {
    return this.engine.queue.serialize();
  }

  serializeUnits(ctx: SerializeContext): StateUnitEntry[] {
    const out: StateUnitEntry[] = [];
    let readEnds: Map<string, number> | undefined;
    for (const unit of this.options.manager.allUnits()) {
      if (unit.file === undefined) continue;
      const entry: StateUnitEntry = { name: unit.name, active: unit.activeState(), sub: unit.subState() };
      const data = unit.serialize?.(ctx);
      if (data !== undefined) entry.data = data;
      // The read ends of a running service's stdout/stderr pipes go along: without a reader
      // its next write would be EPIPE (SIGPIPE).
      if (ctx.kind === 'reexec' && unit instanceof ServiceUnit && unit.mainPid !== undefined) {
        readEnds ??= ownPipeReadEnds();
        const outputs: { fd: number; inode: string }[] = [];
        for (const n of [1, 2]) {
          const inode = pipeInode(unit.mainPid, n);
          const fd = inode === undefined ? undefined : readEnds.get(inode);
          if (inode !== undefined && fd !== undefined && !outputs.some((o) => o.inode === inode))
            outputs.push({ fd: ctx.carryFd(fd), inode });
        }
        if (outputs.length > 0) entry.outputs = outputs;
      }
      out.push(entry);
    }
    return out;
  }

  /**
   * A restored service's output, read into its log again: the read ends carried across the
   * re-exec, or (after a crash, whose read ends died with it) new ones opened on the pipes
   * through /proc/PID/fd (writes made in between failed with EPIPE).
   */
  private reattachOutputs(
    unit: ServiceUnit,
    entry: StateUnitEntry,
    takeFd: (fd: number) => number | undefined,
  ): void {
    const pid = unit.mainPid;
    const carried = new Map<string, number>();
    for (const o of entry.outputs ?? []) {
      const fd = takeFd(o.fd);
      if (fd !== undefined) carried.set(o.inode, fd);
    }
    if (pid === undefined) return;
    const log = this.logger.child({ unit: unit.name });
    const seen = new Set<string>();
    for (const [n, stream] of [
      [1, 'stdout'],
      [2, 'stderr'],
    ] as const) {
      const inode = pipeInode(pid, n);
      if (inode === undefined || seen.has(inode)) continue;
      seen.add(inode);
      let fd = carried.get(inode);
      carried.delete(inode);
      if (fd === undefined) {
        try {
          fd = fs.openSync(`/proc/${pid}/fd/${n}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
        } catch (err) {
          log.warn({ err }, `cannot read the ${stream} of process ${pid} again`);
          continue;
        }
      }
      outputLines(fd).subscribe({
        next: (line) => log.info({ stream, pid }, line.text),
        error: () => undefined,
      });
    }
    for (const fd of carried.values()) {
      try {
        fs.closeSync(fd);
      } catch {
        // not open
      }
    }
  }

  /**
   * Units take back what the state file says, in an order that lets each find what it needs:
   * services (their processes adopted), Accept=yes instances, sockets (their state follows
   * their service's), then the rest. Transitions made here are not news to the job queue. Then
   * every restored unit catches up (an exit that happened meanwhile is acted on), and units of
   * types that keep no state (timers, paths, automounts) are started again if they were active.
   * Fds listed but taken by nobody are closed.
   */
  private restoreUnits(restore: RestoreInput): void {
    const { manager } = this.options;
    const { state, kind } = restore;
    const carried = new Set(restore.fds);
    const counts = { restored: 0, restarted: 0, skipped: 0, adopted: 0 };
    const ctxFor = (name: string): DeserializeContext => ({
      kind,
      takeFd: (fd) => (carried.delete(fd) ? fd : undefined),
      adoptProcess: (pid, startTime) => {
        const ok = this.adoption.adopt(name, pid, startTime, kind === 'reexec');
        if (ok) {
          counts.adopted++;
          this.supervisor.adoptGroup(name, pid);
        }
        return ok;
      },
      warn: (message) => this.logger.warn({ unit: name }, message),
    });
    const rank = (e: StateUnitEntry): number => {
      const u = manager.getUnit(e.name);
      if (this.isInstanceName(e.name) && u === undefined) return 1;
      if (u instanceof ServiceUnit) return 0;
      if (u !== undefined && u.suffix === '.socket') return 2;
      return 3;
    };
    const entries = [...state.units].sort((a, b) => rank(a) - rank(b));
    const restored: UnitInstance[] = [];
    const startAgain: string[] = [];
    this.engine.restoring = true;
    try {
      for (const e of entries) {
        let unit = manager.getUnit(e.name);
        if (unit === undefined && this.isInstanceName(e.name) && e.data !== undefined) {
          if (this.restoreInstance(e, ctxFor(e.name))) counts.restored++;
          else counts.skipped++;
          continue;
        }
        if (unit === undefined) {
          this.logger.warn({ unit: e.name }, 'in the state file but not loaded now; skipped');
          counts.skipped++;
          continue;
        }
        if (unit.deserialize !== undefined && e.data !== undefined) {
          let ok = false;
          try {
            ok = unit.deserialize(e.data, ctxFor(e.name));
          } catch (err) {
            this.logger.warn({ unit: e.name, err }, 'its state could not be restored; skipped');
          }
          if (ok) {
            counts.restored++;
            restored.push(unit);
            if (unit instanceof ServiceUnit) this.reattachOutputs(unit, e, ctxFor(e.name).takeFd);
            continue;
          }
          unit = manager.getUnit(e.name);
        }
        if (unit === undefined) continue;
        // No state of its own to take back (or it was caught half-way): started again if it was
        // up, unless the kernel keeps it (mounts: mountinfo says what they are).
        const wasUp = e.active === 'active' || e.active === 'activating' || e.active === 'reloading';
        const a = unit.activeState();
        if (wasUp && unit.keepOnShutdown !== true && (a === 'inactive' || a === 'failed'))
          startAgain.push(e.name);
      }
    } finally {
      this.engine.restoring = false;
    }
    // Before the catch-up: a step that ends there reports to its job.
    const jobs = this.engine.queue.restore(state.jobs ?? [], (unit, type, id) =>
      this.engine.resumeJob(unit, type, id),
    );
    for (const fd of carried) {
      try {
        this.nativeSocket().close(fd);
      } catch {
        // not open
      }
    }
    for (const unit of restored) {
      try {
        unit.catchup?.();
      } catch (err) {
        this.logger.warn({ unit: unit.name, err }, 'catch-up failed');
      }
    }
    for (const name of startAgain) {
      const r = this.engine.enqueue(name, 'start', 'replace', false);
      if (r.ok) counts.restarted++;
      else this.logger.warn({ unit: name }, `cannot start again: ${r.error.message}`);
    }
    // Groups the earlier image made: the empty ones nobody uses now go (adopted ones stay).
    const groups = this.supervisor.reclaimGroups(state.cgroups ?? [], this.fastSlots);
    this.logger.info(
      {
        ...counts,
        kind,
        jobs: jobs.restored,
        jobsEnded: jobs.ended,
        leftFds: carried.size,
        groupsRemoved: groups.removed,
        groupsKept: groups.kept,
      },
      'units restored from the state file',
    );
  }

  private isInstanceName(name: string): boolean {
    return this.acceptSocketOf(name) !== undefined;
  }

  /** The Accept=yes socket whose instances are named like `name` (foo@….service ← foo.socket). */
  private acceptSocketOf(name: string): SocketUnit | undefined {
    const at = name.indexOf('@');
    if (at < 0 || !name.endsWith('.service') || name.endsWith('@.service')) return undefined;
    const template = `${name.slice(0, at)}@.service`;
    for (const s of this.sockets.values())
      if (s.file.socket?.accept === true && socketTemplateName(s.name) === template) return s;
    return undefined;
  }

  /** An Accept=yes instance that was serving a connection: rebuilt and adopted, or dropped. */
  private restoreInstance(e: StateUnitEntry, ctx: DeserializeContext): boolean {
    const socket = this.acceptSocketOf(e.name);
    const loaded = this.instanceFile(e.name);
    if (socket === undefined || !loaded.ok || e.data === undefined) {
      ctx.warn(`instance cannot be rebuilt${loaded.ok ? '' : `: ${loaded.reason}`}; skipped`);
      return false;
    }
    const unit = this.addInstance(e.name, loaded.file, { fd: -1, env: {} }, socket.adoptConnection());
    let ok = false;
    try {
      ok = unit.deserialize(e.data, ctx);
    } catch (err) {
      ctx.warn(`its state could not be restored: ${(err as Error).message}`);
    }
    const a = unit.activeState();
    if (!ok || a === 'inactive' || a === 'failed') {
      this.instanceOver(unit, a === 'failed' ? 'failed' : 'dead');
      return ok;
    }
    unit.catchup();
    return true;
  }

  /** Slot groups the accept threads (fast path) put instances into: spare or busy, they are ours. */
  private readonly fastSlots = new Set<string>();

  /** Every cgroup this image made and keeps, for the state file (ProcessSupervisor.reclaimGroups). */
  ownedGroups(): string[] {
    return [...this.supervisor.ownedGroups(), ...this.fastSlots];
  }

  /** The notify socket (from its 'open' item), and when its stream last handed something on. */
  private notifySource: { pause(): void; resume(): void } | undefined;
  notifyItemAt = 0;

  /** Right before a re-exec: datagrams wait in the socket, which the new image reads on. */
  pauseNotify(): void {
    this.notifySource?.pause();
  }

  resumeNotify(): void {
    this.notifySource?.resume();
  }

  /** Before a re-exec: stop taking traffic (queued by the kernel meanwhile). */
  holdTraffic(): void {
    for (const s of this.sockets.values()) s.holdTraffic();
  }

  releaseTraffic(): void {
    for (const s of this.sockets.values()) s.releaseTraffic();
  }

  /** Jobs installed, or an instance's main process on its way (a re-exec gives them a moment). */
  busy(): boolean {
    return this.engine.queue.size > 0 || this.spawning();
  }

  /** A main process is being cloned off the event loop (its pid is not known yet). */
  spawning(): boolean {
    for (const s of this.services.values()) if (s.spawnPending) return true;
    return false;
  }

  /**
   * Stop every running unit (their stop jobs, ordered as dependencies say), wait at most
   * `timeoutMs`, then kill what is left in the units' cgroups, and stop watching. Like a
   * systemd --user manager on exit: a supervisor that goes away takes its services with it.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    // Parked jobs are killed now (and their exits reaped), not found "still running" in their
    // units' groups below.
    this.armedStarts?.close();
    for (let i = 0; i < 100 && this.supervisor.hasParkedChildren(); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const waits: Promise<unknown>[] = [];
    for (const unit of this.options.manager.allUnits()) {
      if (unit.file === undefined || unit.keepOnShutdown === true) continue;
      const a = unit.activeState();
      if (a === 'inactive' || a === 'failed') continue;
      const r = this.engine.enqueue(unit.name, 'stop', 'replace', false);
      if (r.ok) {
        const done = this.engine.queue.whenFinished(r.jobId);
        if (done !== undefined) waits.push(done);
      }
    }
    if (waits.length > 0) {
      this.logger.info({ units: waits.length }, 'stopping units');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(waits),
        new Promise((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    const killed: string[] = [];
    for (const s of this.services.values()) {
      const left = this.supervisor.unitPids(s.name);
      if (left.length > 0) {
        this.logger.warn({ unit: s.name, pids: left }, 'still running at shutdown; killing');
        this.supervisor.killUnit(s.name);
        killed.push(s.name);
      }
    }
    // A group cgroup.kill was written to must not be left behind: Linux 6.18 kills every child
    // later cloned into it at birth (spawn_child.cc's KilledAtBirth). Its processes are gone in
    // a few ms; removeGroups() below removes it then.
    for (let i = 0; i < 100 && killed.some((u) => this.supervisor.unitPids(u).length > 0); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    this.fastPath.killRemaining();
    // The units' kept groups and the Accept=yes pools' spare groups go with the daemon (a busy
    // group stays, as it would at a unit's stop).
    this.supervisor.removeGroups();
    // So do the accept threads' slot groups (the sockets are stopped: none is taken again).
    for (const dir of this.fastSlots) {
      try {
        if (this.cgroups?.remove(dir) === true) this.fastSlots.delete(dir);
      } catch (err) {
        this.logger.warn({ err }, `cannot remove ${dir}`);
      }
    }
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.adoptionTable?.close();
    this.automounts.close();
    this.mounts.close();
    this.paths.close();
    this.timers.close();
  }

  /** daemon-reload: re-read every unit file; running units keep running. */
  reload(): { loaded: number; errors: number } {
    this.armedStarts?.flush();
    this.instanceFiles.clear();
    const loaded = this.engine.loadAll();
    // New Accept=yes connections start from the templates as they are now.
    for (const s of this.sockets.values()) s.templateReloaded();
    return loaded;
  }

  /** `enable`: the [Install] symlinks, in the first unit directory. */
  enable(names: string[]): { created: string[] } {
    const dir = this.options.unitPaths[0];
    if (dir === undefined) return { created: [] };
    const created: string[] = [];
    const seen = new Set<string>();
    const visit = (name: string): void => {
      if (seen.has(name)) return;
      seen.add(name);
      const file = this.loader.load(name);
      if (file.fragmentPath === undefined) throw new Error(`Unit ${name} could not be found.`);
      const link = (linkPath: string): void => {
        fs.mkdirSync(path.dirname(linkPath), { recursive: true });
        try {
          if (fs.readlinkSync(linkPath) === file.fragmentPath) return;
          fs.unlinkSync(linkPath);
        } catch {
          // not there yet
        }
        fs.symlinkSync(file.fragmentPath as string, linkPath);
        created.push(linkPath);
      };
      for (const t of file.install.wantedBy) link(path.join(dir, `${t}.wants`, name));
      for (const t of file.install.requiredBy) link(path.join(dir, `${t}.requires`, name));
      for (const t of file.install.upheldBy) link(path.join(dir, `${t}.upholds`, name));
      for (const a of file.install.alias) link(path.join(dir, a));
      for (const also of file.install.also) visit(also);
    };
    for (const n of names) visit(n);
    this.reload();
    return { created };
  }

  disable(names: string[]): { removed: string[] } {
    const removed: string[] = [];
    for (const dir of this.options.unitPaths) {
      let entries: string[];
      try {
        entries = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const e of entries) {
        const sub = path.join(dir, e);
        if (/\.(wants|requires|upholds)$/.test(e)) {
          for (const n of names) {
            const p = path.join(sub, n);
            if (isSymlink(p)) {
              fs.unlinkSync(p);
              removed.push(p);
            }
          }
        }
      }
      for (const n of names) {
        const file = this.loader.load(n);
        for (const a of file.install.alias) {
          const p = path.join(dir, a);
          if (isSymlink(p)) {
            fs.unlinkSync(p);
            removed.push(p);
          }
        }
      }
    }
    this.reload();
    return { removed };
  }

  private loadFile(name: string): LoadedUnitFile {
    const file = this.loader.load(name);
    const implicit = IMPLICIT_UNITS[name];
    if (file.loadState === 'not-found' && implicit !== undefined)
      return parseUnitText(name, implicit, '<implicit>');
    return file;
  }

  private notifyUnitsFor(pid: number): NotifyUnit[] {
    const name = this.supervisor.unitOfPid(pid);
    const out: NotifyUnit[] = [];
    if (name !== undefined) {
      const s = this.services.get(name);
      if (s !== undefined) out.push(s);
    }
    // A pid we spawned as main or control of another unit (e.g. after MAINPID=) counts too.
    for (const s of this.services.values()) {
      if ((s.mainPid === pid || s.controlPid === pid) && !out.includes(s)) out.push(s);
    }
    return out;
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * A notify client blocks once this many datagrams wait in our socket; Debian ships 10 (systemd
 * raises it to 512 at boot, so daemons written for systemd expect that). Raised here, logged.
 */
function raiseDatagramQueue(logger: Logger): void {
  const file = '/proc/sys/net/unix/max_dgram_qlen';
  try {
    const now = Number(fs.readFileSync(file, 'latin1').trim());
    if (now < 512) {
      fs.writeFileSync(file, '512');
      logger.info({ from: now, to: 512 }, 'raised net.unix.max_dgram_qlen for the notify socket');
    }
  } catch {
    // not root, or not writable: clients may block briefly under bursts
  }
}
