// Services and targets in the daemon: the unit loader, the engine (graph + job queue), the
// process supervisor (spawn, exits, output), and the sd_notify socket, wired together. Start-up:
// load every unit file, then start default.target (an implicit one when the unit path has none).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Subscription } from 'rxjs';
import type { Logger } from '../util/logger';
import type { NativeSpawn } from '../native/spawn-addon';
import type { NativeNotify } from '../native/notify-addon';
import { UnitLoader, parseUnitText } from '../units/unit-loader';
import type { LoadedUnitFile } from '../units/config-types';
import { createUnit } from '../units/registry';
import type { ServiceUnit } from '../units/service';
import { childExitEvents } from '../exec/child-exit-events';
import { openCgroupTree, type CgroupTree } from '../exec/cgroups';
import { notifyEvents } from '../events/notify-events';
import { NotifyRouter, type NotifyUnit } from './notify-router';
import { ProcessSupervisor } from './process-supervisor';
import { UnitEngine, type UnitSource } from './unit-engine';
import type { Manager } from './manager';

export interface UnitSystemOptions {
  logger: Logger;
  manager: Manager;
  unitPaths: string[];
  runtimeDir: string;
  spawn: NativeSpawn;
  notify: NativeNotify;
  /** cgroup v2 base directory the daemon owns (default <hierarchy>/triggerd). */
  cgroupBase?: string;
}

/** Targets every setup has; made up when the unit path does not define them. */
const IMPLICIT_UNITS: Record<string, string> = {
  'default.target':
    '[Unit]\nDescription=Default target (implicit)\nWants=multi-user.target\nAfter=multi-user.target\n',
  'multi-user.target': '[Unit]\nDescription=Multi-user target (implicit)\n',
};

export class UnitSystem {
  readonly engine: UnitEngine;
  readonly supervisor: ProcessSupervisor;
  readonly loader: UnitLoader;
  readonly cgroups: CgroupTree | undefined;
  readonly notifySocket: string;
  private readonly services = new Map<string, ServiceUnit>();
  private readonly subscriptions: Subscription[] = [];
  private readonly logger: Logger;

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
      baseEnv: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: process.env.LANG ?? 'C.UTF-8',
      },
    });
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
      stateChanged: (unit: ServiceUnit, from: string, to: string) =>
        this.engine.unitStateChanged(unit, from, to),
      requestRestart: (unit: string) => {
        const r = this.engine.enqueue(unit, 'restart', 'replace', false);
        if (!r.ok) this.logger.error({ unit }, `automatic restart refused: ${r.error.message}`);
      },
    };
    this.engine = new UnitEngine({
      manager: options.manager,
      source,
      logger: options.logger,
      create: (file) =>
        createUnit(file, {
          serviceHost: (name) => this.supervisor.hostFor(name, callbacks),
          serviceCreated: (unit) => {
            this.services.set(unit.name, unit);
            this.supervisor.register(unit);
          },
          stateChanged: (unit, from, to) => this.engine.unitStateChanged(unit, from, to),
        }),
    });
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

  start(): void {
    const { notify, logger } = this.options;
    this.watchChildren();
    raiseDatagramQueue(logger);
    const router = new NotifyRouter({
      unitsForPid: (pid) => this.notifyUnitsFor(pid),
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
    this.subscriptions.push(
      notifyEvents(notify, this.notifySocket).subscribe({
        next: (item) => {
          if (item.kind === 'datagrams') router.routeBatch(item.datagrams);
          else if (item.kind === 'error')
            logger.error({ code: item.error.code }, `notify socket: ${item.error.message}`);
        },
        error: (err: Error) => logger.error({ err }, 'notify socket failed'),
      }),
    );
    const loaded = this.engine.loadAll();
    logger.info({ units: loaded.loaded, errors: loaded.errors }, 'unit files loaded');
    const r = this.engine.enqueue('default.target', 'start', 'replace', false);
    if (!r.ok) logger.error(`cannot start default.target: ${r.error.message}`);
  }

  /**
   * Stop every running unit (their stop jobs, ordered as dependencies say), wait at most
   * `timeoutMs`, then kill what is left in the units' cgroups, and stop watching. Like a
   * systemd --user manager on exit: a supervisor that goes away takes its services with it.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const unit of this.options.manager.allUnits()) {
      if (unit.file === undefined) continue;
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
    for (const s of this.services.values()) {
      const left = this.supervisor.unitPids(s.name);
      if (left.length > 0) {
        this.logger.warn({ unit: s.name, pids: left }, 'still running at shutdown; killing');
        this.supervisor.killUnit(s.name);
      }
    }
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
  }

  /** daemon-reload: re-read every unit file; running units keep running. */
  reload(): { loaded: number; errors: number } {
    return this.engine.loadAll();
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
