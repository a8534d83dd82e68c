// The process side of services: builds exec plans, spawns through the native layer into the
// unit's cgroup (or its own session when no cgroup v2 is writable), turns output into log lines,
// signals by pidfd, and routes child exits back to the unit that owns them. One per daemon; each
// service gets a ServiceHost view of it.
import fs = require('node:fs');
import path = require('node:path');
import type { Logger } from '../util/logger';
import type { NativeSpawn, SpawnedChild, SpawnError } from '../native/spawn-addon';
import type { ChildExit } from '../native/spawn-addon';
import { ExecPlanError, needsUserDatabase, type BuiltExecPlan } from '../exec/exec-context-plan';
import type { ExecPlan } from '../exec/exec-plan';
import { ExecPlanCache } from '../exec/exec-plan-cache';
import { LineReader } from '../exec/output-lines';
import { removeUnitRuntime } from '../exec/sandbox-mounts';
import { readMountInfo } from '../exec/mount-info';
import { readUserDatabase, type UserDatabase } from '../exec/user-database';
import type { CgroupTree } from '../exec/cgroups';
import { conditionHolds } from '../units/conditions';
import type { ExecCommand, ExecContext, StandardOutput } from '../units/config-types';
import type { ProcessExit, ServiceHost, ServiceUnit, SpawnResult, StoredFd } from '../units/service';

export interface ProcessSupervisorOptions {
  native: NativeSpawn;
  logger: Logger;
  runtimeDir: string;
  /** undefined: no writable cgroup v2 hierarchy; processes are tracked by session instead. */
  cgroups: CgroupTree | undefined;
  /** $NOTIFY_SOCKET for services whose NotifyAccess is not none. */
  notifySocket?: string;
  /** The environment every job starts from (PATH, LANG, ...). */
  baseEnv: Record<string, string>;
}

/** One process to spawn for a unit (ProcessSupervisor.spawnWith). */
interface SpawnRequest {
  unit: string;
  ctx: ExecContext;
  /** $NOTIFY_SOCKET in its environment. */
  notify: boolean;
  /** An Accept=yes connection for the main process. */
  conn: { fd: number; env: Record<string, string> } | undefined;
  cmd: ExecCommand;
  role: 'main' | 'control';
  extraEnv: Record<string, string>;
  log: Logger;
  passFds: readonly StoredFd[];
  nonBlocking: boolean;
  /** Cloned off the event loop: the result goes here, on a later turn. */
  later?: (result: SpawnResult) => void;
  /** The unit's group was made again after this request failed once: no second time. */
  groupRemade?: boolean;
}

/** What the engine side offers each service's host. */
export interface ServiceCallbacks {
  jobFinished(unit: string, end: Parameters<ServiceHost['jobFinished']>[0]): void;
  stateChanged(unit: ServiceUnit, from: string, to: string): void;
  requestRestart(unit: string): void;
  /** The socket fds a service's main process gets (LISTEN_FDS), see ServiceHost.socketFds. */
  socketFds?(unit: string): StoredFd[];
}

interface Owner {
  unit: string;
  pidfd: number;
}

/** A unit other than a service that runs processes (a socket's ExecStartPre= & co.). */
export interface ProcessOwner {
  onExit(exit: ProcessExit): void;
}

/** The world as a unit with control processes (not a service) sees it. */
export interface ControlProcessHost {
  spawn(cmd: ExecCommand): SpawnResult;
  signal(pid: number, signal: number): void;
  signalGroup(signal: number, except: ReadonlySet<number>): number;
  groupPids(): number[];
}

export class ProcessSupervisor {
  private readonly owners = new Map<number, Owner>();
  private readonly services = new Map<string, ServiceUnit>();
  private readonly others = new Map<string, ProcessOwner>();
  /** Without cgroups: the session ids (pids of the processes we spawned with setsid) of each unit. */
  private readonly sessions = new Map<string, Set<number>>();

  constructor(private readonly options: ProcessSupervisorOptions) {
    const tree = options.cgroups;
    if (tree !== undefined) tree.onRemoved = (dir) => options.native.forgetCgroup(dir);
  }

  /**
   * /etc/passwd and /etc/group as of their last change (checked with two stats per spawn, so an
   * account added a moment ago is seen), and mountinfo: a spawn must not cost three file reads
   * and parses (Accept=yes instances, path-triggered jobs).
   */
  private users: { stamp: string; db: UserDatabase } | undefined;
  private mountInfo: { at: number; text: string } | undefined;
  /** Plans per command, prepared once and completed per run (a triggered job's every start). */
  private readonly plans = new ExecPlanCache();

  private planInputs(ctx: ExecContext, burst: boolean): { userDatabase: UserDatabase; mountInfo: string } {
    if (!needsUserDatabase(ctx) && !hasSandbox(ctx)) return { userDatabase: NO_USERS, mountInfo: '' };
    const stamp = fileStamp('/etc/passwd') + '|' + fileStamp('/etc/group');
    if (this.users === undefined || this.users.stamp !== stamp) {
      this.users = { stamp, db: readUserDatabase('/') };
    }
    // The mount table only matters to a sandbox: without one it is not even read (it can be
    // thousands of lines); with one it is read fresh, except that a burst of Accept=yes
    // instances shares one reading for 100 ms.
    if (!hasSandbox(ctx)) return { userDatabase: this.users.db, mountInfo: '' };
    const now = performance.now();
    if (!burst || this.mountInfo === undefined || now - this.mountInfo.at > 100) {
      this.mountInfo = { at: now, text: readMountInfo() };
    }
    return { userDatabase: this.users.db, mountInfo: this.mountInfo.text };
  }

  register(service: ServiceUnit): void {
    this.services.set(service.name, service);
  }

  /**
   * An adopted process (after a re-exec or a crash) of an Accept=yes instance runs in a slot
   * group of an earlier daemon: the instance gets that group back (status, kill, release).
   */
  adoptGroup(unit: string, pid: number): void {
    const tree = this.options.cgroups;
    if (tree === undefined || this.slots.has(unit)) return;
    const dir = tree.cgroupOfPid(pid);
    if (dir === undefined || path.dirname(dir) !== tree.slice) return;
    const name = path.basename(dir);
    const at = name.lastIndexOf('.slot-');
    if (at <= 0 || name === unit) return;
    this.slots.set(unit, { pool: name.slice(0, at), dir });
    this.slotUnits.set(name, unit);
  }

  /** A non-service unit whose processes' exits come back to it (socket units). */
  registerOwner(name: string, owner: ProcessOwner): void {
    this.others.set(name, owner);
  }

  /** Forget a unit that is gone for good (a garbage-collected Accept=yes instance). */
  unregister(name: string, unit?: ServiceUnit): void {
    this.armedPlanGone(name);
    if (unit === undefined || this.services.get(name) === unit) this.services.delete(name);
    this.sessions.delete(name);
    this.emptyGroups.delete(name);
    this.closeLogPipes(name);
    this.removeGroup(name);
  }

  /** rmdir of a unit's own group (refused, and left, while processes remain). */
  private removeGroup(unit: string): void {
    const tree = this.options.cgroups;
    if (tree === undefined || !this.madeGroups.delete(unit)) return;
    const dir = tree.pathOf(unit);
    try {
      fs.rmdirSync(dir);
    } catch {
      // not there, or still populated
    }
    // The addon's fd of the group would keep a removed one alive; a busy one is opened again.
    this.options.native.forgetCgroup(dir);
  }

  /**
   * Every group this image made and keeps: units' own groups, slots lent to instances, the pools'
   * spares. Listed in the state file, so that the next image (after a re-exec or a crash) removes
   * the ones nobody uses any more instead of leaving them behind (reclaimGroups).
   */
  ownedGroups(): string[] {
    const tree = this.options.cgroups;
    if (tree === undefined) return [];
    const out = [...this.madeGroups].map((u) => tree.pathOf(u));
    for (const s of this.slots.values()) out.push(s.dir);
    out.push(...tree.spareSlots(), ...this.inheritedBusy);
    return out;
  }

  /**
   * Slot groups an earlier image left with processes in them (an instance adopted, or one not
   * restored): kept while busy, listed on for the next image, tried again at exit.
   */
  private readonly inheritedBusy = new Set<string>();

  /**
   * After a re-exec or a crash: the groups the earlier image listed (ownedGroups). One that
   * holds processes is kept (a unit's own group is ours again; a slot is taken back by
   * adoptGroup, or left while its processes run); an empty one that no unit of this image uses
   * is removed. Only listed groups are touched: another daemon may share the slice.
   */
  reclaimGroups(
    dirs: readonly string[],
    alsoInUse: ReadonlySet<string> = new Set(),
  ): { removed: number; kept: number } {
    const tree = this.options.cgroups;
    const counts = { removed: 0, kept: 0 };
    if (tree === undefined) return counts;
    const inUse = new Set([...this.ownedGroups(), ...alsoInUse]);
    for (const dir of new Set(dirs)) {
      if (path.dirname(dir) !== tree.slice || inUse.has(dir)) continue;
      const name = path.basename(dir);
      if (!tree.isEmpty(dir)) {
        counts.kept++;
        if (!name.includes('.slot-') && this.services.has(name)) this.madeGroups.add(name);
        else this.inheritedBusy.add(dir);
        continue;
      }
      try {
        if (tree.remove(dir)) counts.removed++;
        else counts.kept++;
      } catch (err) {
        this.options.logger.warn({ err, cgroup: dir }, 'cannot remove a group an earlier daemon left');
      }
    }
    return counts;
  }

  /** At exit: the groups kept between runs, and the pools' spare groups. */
  removeGroups(): void {
    for (const unit of [...this.madeGroups]) {
      this.armedPlanGone(unit);
      this.removeGroup(unit);
    }
    const tree = this.options.cgroups;
    for (const dir of this.inheritedBusy) {
      try {
        tree?.remove(dir);
      } catch {
        // still busy, or gone
      }
    }
    this.options.cgroups?.dropSpares();
  }

  /** Spawning and signalling for a unit with control processes run with `ctx` (a socket unit). */
  controlHostFor(name: string, ctx: () => ExecContext): ControlProcessHost {
    const log = this.options.logger.child({ unit: name });
    return {
      spawn: (cmd) =>
        this.spawnWith({
          unit: name,
          ctx: ctx(),
          notify: false,
          conn: undefined,
          cmd,
          role: 'control',
          extraEnv: {},
          log,
          passFds: [],
          nonBlocking: false,
        }),
      signal: (pid, signal) => void this.signal(pid, signal),
      signalGroup: (signal, except) => {
        let n = 0;
        for (const pid of this.unitPids(name)) {
          if (except.has(pid) || pid === process.pid) continue;
          if (this.signal(pid, signal)) n++;
        }
        return n;
      },
      groupPids: () => this.unitPids(name),
    };
  }

  /** The unit a pid belongs to: one we spawned, or one in a unit's cgroup. */
  unitOfPid(pid: number): string | undefined {
    const owner = this.owners.get(pid);
    if (owner !== undefined) return owner.unit;
    const tree = this.options.cgroups;
    if (tree === undefined) return this.unitBySession(pid);
    try {
      const line = fs
        .readFileSync(`/proc/${pid}/cgroup`, 'latin1')
        .split('\n')
        .find((l) => l.startsWith('0::'));
      if (line === undefined) return undefined;
      const rel = line.slice(3);
      const slice = tree.slice.slice(tree.root.length);
      if (!rel.startsWith(slice + '/')) return undefined;
      const group = rel.slice(slice.length + 1).split('/')[0];
      return this.slotUnits.get(group) ?? group;
    } catch {
      return undefined;
    }
  }

  /**
   * Units whose cgroup was found empty since we last spawned into it. Only we put processes into
   * a unit's cgroup (CLONE_INTO_CGROUP), and an empty group has nobody left to fork, so it stays
   * empty until our next spawn: the stop path need not read cgroup.procs twice per instance.
   */
  private readonly emptyGroups = new Set<string>();

  /** Pids of a unit's processes: its cgroup, or its sessions. */
  unitPids(unit: string): number[] {
    const tree = this.options.cgroups;
    if (tree !== undefined) {
      if (this.emptyGroups.has(unit)) return [];
      const dir = this.groupOf(tree, unit);
      // cgroup.events first: one small read answers "nobody left" for the group and below.
      const pids = tree.isEmpty(dir) ? [] : tree.listPids(dir);
      if (pids.length === 0) this.emptyGroups.add(unit);
      return pids;
    }
    const sids = this.sessions.get(unit);
    if (sids === undefined || sids.size === 0) return [];
    return scanSessions(sids);
  }

  /** Accept=yes instances' groups, borrowed from their template's pool (CgroupTree.takeSlot). */
  private readonly slots = new Map<string, { pool: string; dir: string }>();
  /** Slot group name → the instance in it now (unitOfPid). */
  private readonly slotUnits = new Map<string, string>();

  /** A unit's cgroup: its slot, or `<slice>/<unit>`. */
  private groupOf(tree: CgroupTree, unit: string): string {
    return this.slots.get(unit)?.dir ?? tree.pathOf(unit);
  }

  /** Units whose own group we made (kept between runs, removed with the unit or at exit). */
  private readonly madeGroups = new Set<string>();
  /** Units that got a private /tmp or /dev stage (removed when they stop). */
  private readonly staged = new Set<string>();

  /** The group a spawn goes into; an Accept=yes instance borrows a slot of its template's pool. */
  private groupFor(tree: CgroupTree, unit: string, instance: boolean): string {
    if (!instance) {
      if (this.madeGroups.has(unit)) return tree.pathOf(unit);
      const dir = tree.createFresh(unit);
      this.madeGroups.add(unit);
      return dir;
    }
    const held = this.slots.get(unit);
    if (held !== undefined) return held.dir;
    const at = unit.indexOf('@');
    const dot = unit.lastIndexOf('.');
    const pool = at > 0 && dot > at ? unit.slice(0, at + 1) + unit.slice(dot) : unit;
    const dir = tree.takeSlot(pool);
    this.slots.set(unit, { pool, dir });
    this.slotUnits.set(path.basename(dir), unit);
    return dir;
  }

  /** Another owner of spawned children (the udev program runner): offered each exit first. */
  otherOwners: ((exit: ChildExit) => boolean)[] = [];

  /** Route a batch of reaped children. Orphans (double-forked daemons) go to whoever is waiting for its group to empty. */
  /**
   * An armed child held for a start not recorded yet exited: the start is recorded first
   * (PathArmedStarts.flush), so its exit goes to the unit that took it.
   */
  onArmedChildExit: (() => void) | undefined;

  onExits(exits: ChildExit[]): void {
    if (this.armedChildren.size > 0 && exits.some((e) => this.isHeldArmedChild(e.pid)))
      this.onArmedChildExit?.();
    for (const exit of exits) {
      if (!this.owners.has(exit.pid) && this.otherOwners.some((claim) => claim(exit))) continue;
      const owner = this.owners.get(exit.pid);
      if (owner !== undefined) this.owners.delete(exit.pid);
      const name = owner?.unit;
      if (name === ARMED_PARKED) {
        this.onParkedChildExit?.(exit.pid);
        continue;
      }
      const e: ProcessExit = { pid: exit.pid, code: exit.code, status: exit.status };
      // An adopted process reaped by someone else while no daemon ran (process-adoption.ts).
      if ((exit as { statusUnknown?: boolean }).statusUnknown === true) e.statusUnknown = true;
      if (name !== undefined) {
        this.flushLater(name);
        (this.services.get(name) ?? this.others.get(name))?.onExit(e);
        continue;
      }
      for (const s of this.services.values()) s.onExit(e);
      for (const o of this.others.values()) o.onExit(e);
    }
  }

  hostFor(name: string, callbacks: ServiceCallbacks): ServiceHost {
    const log = this.options.logger.child({ unit: name });
    return {
      spawn: (cmd, role, extraEnv, passFds) => this.spawn(name, cmd, role, extraEnv, log, passFds ?? []),
      spawnLater: (cmd, role, extraEnv, passFds, done) => {
        const r = this.spawn(name, cmd, role, extraEnv, log, passFds, done);
        // The plan could not be built: answered on a later turn all the same.
        if (!r.ok) {
          setImmediate(() => done(r));
          return undefined;
        }
        // pid 0: on its way (spawnAsync). A pid: the armed path start's child, taken now.
        return r.pid > 0 ? r : undefined;
      },
      socketFds: () => callbacks.socketFds?.(name) ?? [],
      closeFd: (fd) => {
        try {
          this.options.native.closeFd(fd);
        } catch {
          // already closed
        }
      },
      signal: (pid, signal) => this.signal(pid, signal),
      signalGroup: (signal, except) => {
        let n = 0;
        for (const pid of this.unitPids(name)) {
          if (except.has(pid) || pid === process.pid) continue;
          if (this.signal(pid, signal)) n++;
        }
        return n;
      },
      groupPids: () => this.unitPids(name),
      isParked: (pid) => this.owners.get(pid)?.unit === ARMED_PARKED,
      controlGroup: () => {
        const tree = this.options.cgroups;
        return tree === undefined ? undefined : this.groupOf(tree, name);
      },
      readPidFile: (path) => {
        try {
          const pid = Number(fs.readFileSync(path, 'latin1').trim());
          return Number.isInteger(pid) && pid > 1 ? pid : undefined;
        } catch {
          return undefined;
        }
      },
      conditionHolds: (c) => conditionHolds(c, { warn: (m) => log.warn(m) }),
      setTimer: (ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      now: () => performance.now(),
      jobFinished: (end) => callbacks.jobFinished(name, end),
      stateChanged: (from, to) => {
        const unit = this.services.get(name);
        if (unit !== undefined) callbacks.stateChanged(unit, from, to);
        if (to === 'dead' || to === 'failed') this.releaseGroup(name);
      },
      requestRestart: () => callbacks.requestRestart(name),
      log,
    };
  }

  private spawn(
    unit: string,
    cmd: ExecCommand,
    role: 'main' | 'control',
    extraEnv: Record<string, string>,
    log: Logger,
    passFds: readonly StoredFd[],
    later?: (result: SpawnResult) => void,
  ): SpawnResult {
    const service = this.services.get(unit);
    const ctx = service?.config.exec;
    if (service === undefined || ctx === undefined) {
      return { ok: false, failure: { step: 'PLAN', code: 'ERR_EXEC_INVALID', message: 'unknown service' } };
    }
    const armed = this.armedChildren.get(unit);
    if (armed !== undefined && role === 'main' && passFds.length === 0) {
      // The armed path start cloned this very process already (path-armed-start.ts). Taken now
      // even when asked for later: its exit may be reported from the next turn on.
      if (armed.cmd === cmd && sameEnvironment(armed.env, extraEnv)) {
        this.armedChildren.delete(unit);
        this.emptyGroups.delete(unit);
        return this.recordStarted(unit, armed.child, armed.cgroup, role, cmd, log);
      }
    }
    // An Accept=yes connection goes to the main process only, as in systemd.
    const conn =
      role === 'main' && service.connection !== undefined && service.connection.fd >= 0
        ? service.connection
        : undefined;
    return this.spawnWith({
      unit,
      ctx,
      notify: service.notifyAccess() !== 'none',
      conn,
      cmd,
      role,
      extraEnv,
      log,
      passFds,
      nonBlocking: service.config.nonBlocking,
      later,
    });
  }

  /**
   * Builds the plan and spawns. With `later`, the clone runs off the event loop (spawnAsync) and
   * `later` gets the result on a later turn; the return value then only says whether the plan
   * could be built ({ ok: true, pid: 0 } when the spawn is on its way).
   */
  private spawnWith(request: SpawnRequest): SpawnResult {
    const { unit, ctx, notify, conn, cmd, role, extraEnv, log, passFds, nonBlocking, later } = request;
    const { native } = this.options;
    const opened: number[] = [];
    const closeAll = (): void => {
      for (const fd of opened) native.closeFd(fd);
    };
    let cgroup: string | undefined;
    const started = (child: SpawnedChild): SpawnResult => {
      closeAll();
      return this.recordStarted(unit, child, cgroup, role, cmd, log);
    };
    const failed = (err: unknown): SpawnResult => {
      closeAll();
      return spawnFailure(err);
    };
    try {
      const prepared = this.preparePlan(
        unit,
        ctx,
        notify,
        conn,
        cmd,
        extraEnv,
        log,
        passFds,
        nonBlocking,
        opened,
      );
      cgroup = prepared.cgroup;
      const built = prepared.built;
      if (later === undefined) {
        try {
          return started(native.spawn(built.plan));
        } catch (err) {
          if (!this.remakeRemovedGroup(unit, err)) throw err;
          return started(native.spawn(built.plan));
        }
      }
      // The addon closes our copies of the child's fds (the connection, pipe write ends) on its
      // thread once the child has its own: the client's EOF need not wait for our next turn.
      // Once more with the plan made again (its files opened afresh) when the kept group was
      // removed behind our back; not for an Accept=yes connection, which went with the attempt.
      const retry = (err: unknown): SpawnResult | undefined =>
        conn === undefined && request.groupRemade !== true && this.remakeRemovedGroup(unit, err)
          ? this.spawnWith({ ...request, groupRemade: true })
          : undefined;
      const handOver = conn !== undefined ? [...opened, conn.fd] : [...opened];
      try {
        native.spawnAsync(
          built.plan,
          (err, child) => {
            if (err === null && child !== undefined) return later(started(child));
            const again = retry(err);
            if (again === undefined) later(failed(err));
            else if (!again.ok) later(again);
          },
          handOver,
        );
      } catch (err) {
        // Refused before the clone (the group's directory is opened here): nothing was handed over.
        closeAll();
        opened.length = 0;
        const again = retry(err);
        if (again === undefined) throw err;
        return again;
      }
      opened.length = 0;
      if (conn !== undefined) conn.fd = -1;
      return { ok: true, pid: 0 };
    } catch (err) {
      return failed(err);
    }
  }

  /** A spawn failed because the kept group was removed behind our back: it is made again. */
  private remakeRemovedGroup(unit: string, err: unknown): boolean {
    const e = err as Partial<SpawnError> | null;
    if (e?.step !== 'CGROUP' || e.code !== 'ENOENT' || !this.madeGroups.delete(unit)) return false;
    const tree = this.options.cgroups;
    if (tree !== undefined) tree.create(unit);
    this.madeGroups.add(unit);
    return true;
  }

  /**
   * The plan of one spawn: stdio (files it opens go to `opened`, for the caller to close), the
   * unit's cgroup (made on first use), the environment. Throws ExecPlanError.
   */
  private preparePlan(
    unit: string,
    ctx: ExecContext,
    notify: boolean,
    conn: { fd: number; env: Record<string, string> } | undefined,
    cmd: ExecCommand,
    extraEnv: Record<string, string>,
    log: Logger,
    passFds: readonly StoredFd[],
    nonBlocking: boolean,
    opened: number[],
  ): { built: BuiltExecPlan; cgroup: string | undefined } {
    const extra: Record<string, string> = conn !== undefined ? { ...conn.env, ...extraEnv } : { ...extraEnv };
    if (this.options.notifySocket !== undefined && notify) {
      extra.NOTIFY_SOCKET = this.options.notifySocket;
    }
    if (passFds.length > 0) {
      // The fd store comes back as LISTEN_FDS (sd_listen_fds(3)), after any socket fds.
      extra.LISTEN_FDS = String(passFds.length);
      extra.LISTEN_FDNAMES = passFds.map((f) => f.name).join(':');
    }
    // StandardInput=socket: the connection is stdin, and stdout/stderr that inherit or say
    // "socket" are the connection too (systemd.exec(5)).
    const socketIn = conn !== undefined && ctx.standardInput.kind === 'socket';
    const stdin = socketIn ? conn.fd : -1;
    const stdout =
      conn !== undefined &&
      (ctx.standardOutput.kind === 'socket' || (socketIn && ctx.standardOutput.kind === 'inherit'))
        ? conn.fd
        : this.outputFd(ctx.standardOutput, 'stdout', unit, log, opened);
    const stderr =
      ctx.standardError.kind === 'inherit-output' || ctx.standardError.kind === 'inherit'
        ? stdout
        : conn !== undefined && ctx.standardError.kind === 'socket'
          ? conn.fd
          : this.outputFd(ctx.standardError, 'stderr', unit, log, opened);
    this.emptyGroups.delete(unit);
    if (ctx.privateTmp || ctx.privateDevices) this.staged.add(unit);
    let cgroup: string | undefined;
    if (this.options.cgroups !== undefined) {
      const instance = this.services.get(unit)?.connection !== undefined;
      cgroup = this.groupFor(this.options.cgroups, unit, instance);
    }
    const built = this.plans.build(
      ctx,
      cmd,
      { base: this.options.baseEnv, extra },
      {
        unitName: unit,
        runtimeDir: this.options.runtimeDir,
        cgroup,
        stdio: { stdin, stdout, stderr },
        extraFds: passFds.map((f) => f.fd),
        nonBlocking: socketFlags(
          conn,
          passFds,
          nonBlocking,
          conn !== undefined && (stdin === conn.fd || stdout === conn.fd || stderr === conn.fd),
        ),
        setListenPid: passFds.length > 0,
        ...this.planInputs(ctx, conn !== undefined),
      },
    );
    for (const d of built.diagnostics) log.warn({ code: d.code }, d.message);
    return { built, cgroup };
  }

  /** A child now runs for `unit`: its pidfd for signals and its exit, its session without cgroups. */
  private recordStarted(
    unit: string,
    child: SpawnedChild,
    cgroup: string | undefined,
    role: 'main' | 'control',
    cmd: ExecCommand,
    log: Logger,
  ): SpawnResult {
    this.owners.set(child.pid, { unit, pidfd: child.pidfd });
    if (cgroup === undefined) {
      const set = this.sessions.get(unit) ?? new Set<number>();
      set.add(child.pid);
      this.sessions.set(unit, set);
    }
    if (log.isLevelEnabled('debug'))
      log.debug({ pid: child.pid, role, command: cmd.argv.join(' ') }, `started ${role} process`);
    return { ok: true, pid: child.pid };
  }

  // ---- armed path starts (src/core/path-armed-start.ts) ----------------------------------------

  /** Children an armed path start cloned, each waiting for its unit's start to take it (spawn()). */
  private readonly armedChildren = new Map<
    string,
    { cmd: ExecCommand; env: Record<string, string>; child: SpawnedChild; cgroup: string | undefined }
  >();
  /** Called when what an armed plan refers to (the unit's log pipes, its group) goes away. */
  onArmedPlanGone: ((unit: string) => void) | undefined;

  private armedPlanGone(unit: string): void {
    this.onArmedPlanGone?.(unit);
  }

  /**
   * The plan spawn() would build now for `unit`'s main process running `cmd` with `env`, for an
   * armed path start to clone from later; or why there is none. Only a plan that opens nothing
   * per run qualifies (its fds are the unit's kept log pipes, /dev/null, its kept group).
   */
  armedPlan(
    unit: string,
    cmd: ExecCommand,
    env: Record<string, string>,
  ): { ok: true; plan: ExecPlan; cgroup: string | undefined } | { ok: false; why: string } {
    const service = this.services.get(unit);
    const ctx = service?.config.exec;
    if (service === undefined || ctx === undefined) return { ok: false, why: 'not a service' };
    if (service.connection !== undefined) return { ok: false, why: 'an Accept=yes instance' };
    // Accounts are looked up per spawn (an account changed a moment ago counts): not ahead.
    if (needsUserDatabase(ctx)) return { ok: false, why: 'User=/Group= are looked up per run' };
    const opened: number[] = [];
    try {
      const { built, cgroup } = this.preparePlan(
        unit,
        ctx,
        service.notifyAccess() !== 'none',
        undefined,
        cmd,
        env,
        this.options.logger.child({ unit }),
        [],
        service.config.nonBlocking,
        opened,
      );
      if (opened.length > 0) return { ok: false, why: 'its output goes to a file opened per run' };
      const p = built.plan;
      if (p.mounts.length > 0 || p.privateNetwork || p.privateSysfs !== undefined)
        return { ok: false, why: 'a sandbox staged per run' };
      return { ok: true, plan: p, cgroup };
    } catch (err) {
      return { ok: false, why: (err as Error).message };
    } finally {
      for (const fd of opened) this.options.native.closeFd(fd);
    }
  }

  /** A child cloned from armedPlan(unit, cmd, env): the unit's next main spawn of `cmd` with `env` takes it. */
  holdArmedChild(
    unit: string,
    cmd: ExecCommand,
    env: Record<string, string>,
    child: SpawnedChild,
    cgroup: string | undefined,
  ): void {
    this.armedChildren.set(unit, { cmd, env, child, cgroup });
  }

  private isHeldArmedChild(pid: number): boolean {
    for (const a of this.armedChildren.values()) if (a.child.pid === pid) return true;
    return false;
  }

  /** Called when a parked armed child exits before a start took it (PathArmedStarts.parkedChildExited). */
  onParkedChildExit: ((pid: number) => void) | undefined;

  /**
   * A child an armed path start parked (spawned ahead, waiting in triggerd_park): until a start
   * takes it, it belongs to no unit, and its exit is the arm's alone.
   */
  holdParkedChild(pid: number): void {
    this.owners.set(pid, { unit: ARMED_PARKED, pidfd: -1 });
  }

  /** Whether a parked child's exit is still to come (the daemon's exit waits for them). */
  hasParkedChildren(): boolean {
    for (const owner of this.owners.values()) if (owner.unit === ARMED_PARKED) return true;
    return false;
  }

  /**
   * After the start an armed child was cloned for: true when spawn() took it. Otherwise the start
   * went another way (it should not: the arm is dropped on every change that could) and the
   * child, which nobody asked for, is killed.
   */
  settleArmedChild(unit: string): boolean {
    const armed = this.armedChildren.get(unit);
    if (armed === undefined) return true;
    this.armedChildren.delete(unit);
    this.owners.set(armed.child.pid, { unit: ARMED_LEFTOVER, pidfd: armed.child.pidfd });
    try {
      this.options.native.pidfdSendSignal(armed.child.pidfd, 9);
    } catch {
      // it is gone already
    }
    return false;
  }

  /**
   * Output pipes into the log, one per unit and stream, shared by its runs: a pipe and a reader
   * for every run of a path- or timer-triggered job cost more than the job's own start. The pid
   * is not known per line then (as with a journal stream a service forks into); the unit is.
   */
  private readonly logPipes = new Map<string, { writeFd: number; reader: LineReader }>();
  /** Units with an exit since the last flush of their pipes' partial lines. */
  private readonly toFlush = new Set<string>();

  private logPipe(unit: string, stream: 'stdout' | 'stderr', log: Logger): number {
    const key = `${unit}\n${stream}`;
    const held = this.logPipes.get(key);
    if (held !== undefined) return held.writeFd;
    const [readFd, pipeWriteFd] = this.options.native.pipe();
    let writeFd = pipeWriteFd;
    const readWrite = survivingWriteEnd(readFd);
    if (readWrite !== undefined) {
      this.options.native.closeFd(pipeWriteFd);
      writeFd = readWrite;
    }
    let reader: LineReader;
    try {
      reader = new LineReader(
        readFd,
        {},
        {
          line: (line) => log.info({ stream }, line.text),
          end: () => undefined,
          error: () => undefined,
        },
      );
    } catch (err) {
      this.options.native.closeFd(readFd);
      this.options.native.closeFd(writeFd);
      throw err;
    }
    this.logPipes.set(key, { writeFd, reader });
    return writeFd;
  }

  /** After a unit's process exits: the run's last line without '\n' is logged now. */
  private flushLater(unit: string): void {
    if (!this.logPipes.has(`${unit}\nstdout`) && !this.logPipes.has(`${unit}\nstderr`)) return;
    if (this.toFlush.size === 0) {
      // A later turn: the pipe's data (written before the exit) is read in this poll phase.
      setImmediate(() => {
        for (const u of this.toFlush) {
          this.logPipes.get(`${u}\nstdout`)?.reader.flush();
          this.logPipes.get(`${u}\nstderr`)?.reader.flush();
        }
        this.toFlush.clear();
      });
    }
    this.toFlush.add(unit);
  }

  /** Our write ends of a unit's pipes: the readers end at EOF, once its last process closed them. */
  private closeLogPipes(unit: string): void {
    for (const stream of ['stdout', 'stderr']) {
      const key = `${unit}\n${stream}`;
      const held = this.logPipes.get(key);
      if (held === undefined) continue;
      this.logPipes.delete(key);
      try {
        this.options.native.closeFd(held.writeFd);
      } catch {
        // already closed
      }
    }
  }

  /** The parent's fd the child gets as stdout/stderr; pipes are read into the log. */
  private outputFd(
    out: StandardOutput,
    stream: 'stdout' | 'stderr',
    unit: string,
    log: Logger,
    opened: number[],
  ): number {
    switch (out.kind) {
      case 'null':
        return -1;
      case 'file':
      case 'append':
      case 'truncate': {
        const flags =
          fs.constants.O_WRONLY |
          fs.constants.O_CREAT |
          (out.kind === 'append'
            ? fs.constants.O_APPEND
            : out.kind === 'truncate'
              ? fs.constants.O_TRUNC
              : 0);
        const fd = fs.openSync(out.path, flags, 0o644);
        opened.push(fd);
        return fd;
      }
      default: {
        // journal, inherit, kmsg, tty, socket: into the daemon's log.
        return this.logPipe(unit, stream, log);
      }
    }
  }

  /** pidfd_send_signal for processes we spawned, kill(2) for the rest. False when it is gone. */
  private signal(pid: number, signal: number): boolean {
    const owner = this.owners.get(pid);
    try {
      // A parked child's pidfd is the addon's until its launch (holdParkedChild).
      if (owner !== undefined && owner.pidfd >= 0) this.options.native.pidfdSendSignal(owner.pidfd, signal);
      else this.options.native.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGKILL everything of a unit (cgroup.kill where the kernel has it). */
  killUnit(unit: string): void {
    const tree = this.options.cgroups;
    if (tree !== undefined) {
      tree.kill(this.groupOf(tree, unit), 9, (pid, sig) => this.signal(pid, sig));
    } else {
      for (const pid of this.unitPids(unit)) if (pid !== process.pid) this.signal(pid, 9);
    }
  }

  private releaseGroup(unit: string): void {
    // The private /tmp and /dev of a stopped unit go with it (systemd's PrivateTmp= semantics).
    // An Accept=yes instance (its configuration cannot change) without them has nothing to remove.
    // Where it was made (or the configuration now asks for one: left by an earlier daemon).
    const ctx = this.services.get(unit)?.config.exec;
    if (this.staged.delete(unit) || ctx?.privateTmp === true || ctx?.privateDevices === true) {
      try {
        removeUnitRuntime(this.options.runtimeDir, unit);
      } catch (err) {
        this.options.logger.warn({ unit, err }, 'could not remove the unit runtime directory');
      }
    }
    const tree = this.options.cgroups;
    if (tree !== undefined) {
      const slot = this.slots.get(unit);
      if (slot !== undefined) {
        this.slots.delete(unit);
        this.slotUnits.delete(path.basename(slot.dir));
        // Back to the pool only when known empty; else rmdir (refused while busy) and forget it.
        if (this.emptyGroups.has(unit) || tree.isEmpty(slot.dir)) tree.returnSlot(slot.pool, slot.dir);
        else tree.remove(slot.dir);
        return;
      }
      // A unit's own group stays for its next run (removed with the unit or at exit): a mkdir
      // and rmdir per run of a path- or timer-triggered job cost as much as starting the job.
    } else {
      const sids = this.sessions.get(unit);
      if (sids !== undefined && scanSessions(sids).length === 0) this.sessions.delete(unit);
    }
  }

  private unitBySession(pid: number): string | undefined {
    const sid = sessionOf(pid);
    if (sid === undefined) return undefined;
    for (const [unit, sids] of this.sessions) if (sids.has(sid)) return unit;
    return undefined;
  }
}

/** The owner of a parked armed child no start took yet (holdParkedChild). */
const ARMED_PARKED = '(armed path start, parked)';

/** The owner of an armed child nobody took, killed (its exit concerns no unit). */
const ARMED_LEFTOVER = '(armed path start, not taken)';

function sameEnvironment(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => b[k] === a[k]);
}

/** A plan or spawn failure as the unit reports it ("failed at step CHDIR: ..."). */
function spawnFailure(err: unknown): SpawnResult {
  if (err instanceof ExecPlanError) {
    return { ok: false, failure: { step: err.step ?? 'PLAN', code: err.code, message: err.message } };
  }
  const e = err as SpawnError;
  return {
    ok: false,
    failure: {
      step: e.step ?? 'CLONE',
      code: e.code ?? 'EIO',
      message: (e.message ?? String(err)).replace(/^[A-Z]+: /, ''),
    },
  };
}

/**
 * O_NONBLOCK for the socket fds a process gets, as systemd's exec does: socket-activation fds
 * (LISTEN_FDS) follow NonBlocking=; a connection that is the process's stdio is always blocking
 * (then it wins over its LISTEN_FDS copy, which shares the description). The fd store is left alone.
 */
function socketFlags(
  conn: { fd: number } | undefined,
  passFds: readonly StoredFd[],
  nonBlocking: boolean,
  connIsStdio: boolean,
): Map<number, boolean> | undefined {
  if (conn === undefined && !passFds.some((f) => f.socket === true)) return undefined;
  const flags = new Map<number, boolean>();
  for (const f of passFds) if (f.socket === true || f.fd === conn?.fd) flags.set(f.fd, nonBlocking);
  if (conn !== undefined && connIsStdio) flags.set(conn.fd, false);
  return flags;
}

/**
 * The end of an output pipe a service writes to, opened read-write (/proc/self/fd/N of the pipe,
 * O_RDWR: Linux opens the pipe as a FIFO, and such a description counts as a reader and a writer).
 * The service itself then holds a reader, so while no daemon reads (killed, and not restarted yet)
 * its writes fill the pipe buffer and at worst block, instead of failing with EPIPE and SIGPIPE.
 * The restarted daemon reads the pipe again through /proc/PID/fd/1 and logs what waited there.
 * Chosen over a separate fd-holder process: nothing more to run or to keep in step, and nothing
 * is lost in between; the cost is that the service could read its own stdout back (nothing does).
 * undefined where /proc is not there (the plain write end is used then).
 */
function survivingWriteEnd(readFd: number): number | undefined {
  try {
    return fs.openSync(`/proc/self/fd/${readFd}`, fs.constants.O_RDWR);
  } catch {
    return undefined;
  }
}

/** The database a plan that looks nobody up is built with (needsUserDatabase() said so). */
const NO_USERS: UserDatabase = Object.freeze({ users: [], groups: [] }) as UserDatabase;

/** What tells a changed file from an unchanged one: inode, size, mtime ('' when unreadable). */
function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '';
  }
}

/** Whether the exec context asks for any mount-namespace step (sandbox-mounts.ts reads mountinfo for those). */
function hasSandbox(ctx: ExecContext): boolean {
  return (
    ctx.privateTmp ||
    ctx.privateDevices ||
    ctx.privateNetwork ||
    ctx.protectSystem !== 'no' ||
    ctx.protectHome !== 'no' ||
    ctx.readOnlyPaths.length > 0 ||
    ctx.readWritePaths.length > 0 ||
    ctx.inaccessiblePaths.length > 0 ||
    ctx.runtimeDirectory.length > 0 ||
    ctx.stateDirectory.length > 0 ||
    ctx.cacheDirectory.length > 0 ||
    ctx.logsDirectory.length > 0 ||
    ctx.configurationDirectory.length > 0
  );
}

function sessionOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[3]);
  } catch {
    return undefined;
  }
}

/** Pids whose session is one of `sids` (the fallback without cgroups; a daemon that calls setsid again escapes it). */
function scanSessions(sids: ReadonlySet<number>): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const sid = sessionOf(Number(e));
    if (sid !== undefined && sids.has(sid)) out.push(Number(e));
  }
  return out;
}
