// Automount units in the daemon: the autofs layer (loaded on first use), an AutomountHost per
// unit, the MountStarter they share (the job engine once .mount units run, mount(8) from the
// .mount file until then), and routing of the mount units' transitions back to the automounts
// that triggered them. UnitSystem owns one of these.
import fs = require('node:fs');
import type { Logger } from '../util/logger';
import { loadAutofsNative, type NativeAutofs } from '../native/autofs-addon';
import type { NativeSpawn } from '../native/spawn-addon';
import { NativeProgramRunner } from '../devices/run-programs';
import {
  AutomountUnit,
  lstatMountPoint,
  type AutomountHost,
  type MountOutcome,
  type MountStarter,
} from '../units/automount';
import { directMountStarter, engineMountStarter } from '../units/automount-starter';
import { SUPPORTED_SUFFIXES } from '../units/registry';
import { MountUnit } from '../units/mount';
import type { UnitEngine } from './unit-engine';
import type { Manager } from './manager';
import type { ProcessSupervisor } from './process-supervisor';

export interface AutomountUnitsOptions {
  logger: Logger;
  manager: Manager;
  engine: () => UnitEngine;
  spawn: NativeSpawn;
  supervisor: ProcessSupervisor;
  /** The autofs layer (default: the triggerd_autofs addon, loaded when an automount starts). */
  autofs?: NativeAutofs;
  /** Override the MountStarter (tests). */
  mounts?: MountStarter;
  stateChanged(unit: AutomountUnit, from: string, to: string): void;
}

const ACTIVE_STATES = new Set(['active', 'activating', 'reloading', 'deactivating']);

export class AutomountUnits {
  private readonly units = new Map<string, AutomountUnit>();
  private layer: NativeAutofs | undefined;
  private starter: MountStarter | undefined;

  constructor(private readonly options: AutomountUnitsOptions) {}

  private native(): NativeAutofs {
    if (this.layer === undefined) this.layer = this.options.autofs ?? loadAutofsNative();
    return this.layer;
  }

  /** The starter every automount shares, chosen when the first one needs it. */
  private mountStarter(): MountStarter {
    if (this.starter !== undefined) return this.starter;
    if (this.options.mounts !== undefined) return (this.starter = this.options.mounts);
    const direct = this.directStarter();
    if (!SUPPORTED_SUFFIXES.includes('.mount')) return (this.starter = direct);
    const { manager, engine, logger } = this.options;
    const jobs = engineMountStarter({
      enqueue: (unit, type) => {
        const e = engine();
        const r = e.enqueue(unit, type, 'replace', false);
        if (!r.ok) return { ok: false, reason: r.error.message };
        return { ok: true, done: e.queue.whenFinished(r.jobId) ?? Promise.resolve('done') };
      },
      explain: (unit) => {
        const props = manager.getUnit(engine().resolve(unit))?.properties();
        const result = props?.Result;
        if (typeof result !== 'string' || result === 'success') return undefined;
        // The mount unit's last failure, in mount's own words (issue 7: never swallow them).
        const error = props?.LastError;
        return typeof error === 'string' && error !== '' ? `${result}: ${error.split('\n')[0]}` : result;
      },
    });
    // A mount unit that takes the autofs mount under it for its own mount says "mounted" with
    // nothing mounted: then mount(8) runs directly, and the log says why once.
    let warned = false;
    const check = async (what: 'start' | 'stop', unit: string, where: string): Promise<MountOutcome> => {
      // Once seen, go straight to mount(8): the job's answer would not be believed anyway.
      if (warned) return direct[what](unit, where);
      const r = await jobs[what](unit, where);
      const over = mountedOverAutofs(where);
      if (!r.ok || over === (what === 'start') || over === undefined) return r;
      if (!warned) {
        warned = true;
        logger.warn(
          { unit },
          `${unit}: the ${what} job finished but ${where} is ${over ? 'still' : 'not'} mounted over the autofs mount ` +
            '(the mount unit counts the autofs mount as its own); running mount(8)/umount(8) directly',
        );
      }
      return direct[what](unit, where);
    };
    const mountUnit = (unit: string): MountUnit | undefined => {
      const u = manager.getUnit(engine().resolve(unit));
      return u instanceof MountUnit ? u : undefined;
    };
    return (this.starter = {
      // mount(8) as the mount unit's control process runs in a session of its own: its look at
      // Where= would fire this very trap and wait for itself (systemd runs it in its own process
      // group for that reason). So the mount unit mounts only when it does so inside the daemon;
      // otherwise mount(8) runs from the daemon's group, and the unit follows from mountinfo.
      start: (unit, where) =>
        mountUnit(unit)?.mountsInProcess() === true ? check('start', unit, where) : direct.start(unit, where),
      // An expire holds every process outside the daemon's process group at the mount point until
      // it is answered, and the mount unit's umount(8) runs in a session of its own: it would wait
      // for the expire that waits for it. A mount unit that unmounts inside the daemon (libmount)
      // does not wait, so the expire is its stop job, as in systemd; otherwise umount(8) runs from
      // the daemon's group and the mount unit learns of the unmount from mountinfo.
      stop: (unit, where) =>
        mountUnit(unit)?.unmountsInProcess() === true ? check('stop', unit, where) : direct.stop(unit, where),
    });
  }

  private directStarter(): MountStarter {
    const runner = new NativeProgramRunner(this.options.spawn);
    this.options.supervisor.otherOwners.push((exit) => runner.notifyExit(exit));
    return directMountStarter({
      runner,
      load: (unit) => this.options.engine().file(unit),
      log: (unit) => this.options.logger.child({ unit }),
    });
  }

  host(name: string, unit: () => AutomountUnit | undefined): AutomountHost {
    const log = this.options.logger.child({ unit: name });
    const { manager } = this.options;
    const native = (): NativeAutofs => this.native();
    const mounts = (): MountStarter => this.mountStarter();
    return {
      get native() {
        return native();
      },
      get mounts() {
        return mounts();
      },
      makeDirectory: (p, mode) => {
        fs.mkdirSync(p, { recursive: true, mode });
        fs.chmodSync(p, mode);
      },
      lstat: (p) => lstatMountPoint(p),
      processName: (pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
        } catch {
          return undefined;
        }
      },
      unitsRequiringMount: (where) => {
        const out: string[] = [];
        for (const u of manager.allUnits()) {
          if (!ACTIVE_STATES.has(u.activeState())) continue;
          const paths = u.file?.unit.requiresMountsFor ?? [];
          if (paths.some((p) => p === where || p.startsWith(`${where}/`))) out.push(u.name);
        }
        return out;
      },
      setTimer: (ms, fn) => {
        const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
        return () => clearTimeout(t);
      },
      now: () => performance.now(),
      jobFinished: (end) => this.options.engine().jobFinished(name, end),
      stateChanged: (from, to) => {
        const u = unit();
        if (u !== undefined) this.options.stateChanged(u, from, to);
      },
      log,
    };
  }

  created(unit: AutomountUnit): void {
    const previous = this.units.get(unit.name);
    if (previous !== undefined && previous !== unit) unit.carryOver(previous);
    this.units.set(unit.name, unit);
  }

  /** A unit changed state: a mount unit one of ours triggers tells it. */
  unitChanged(name: string, active: string): void {
    if (!name.endsWith('.mount')) return;
    for (const a of this.units.values()) {
      if (a.mountName() === name) a.onMountChanged(active === 'active');
    }
  }

  /** Daemon exit: units not stopped by their jobs still must not leave a trap behind. */
  close(): void {
    for (const a of this.units.values()) {
      if (a.activeState() === 'active') a.stop();
    }
  }
}

const AUTOFS_SUPER_MAGIC = 0x0187;

/**
 * Whether a file system other than autofs is on top at `where` (statfs; the daemon is in the
 * autofs mount's process group, so this never waits on the trap); undefined when it cannot tell.
 */
function mountedOverAutofs(where: string): boolean | undefined {
  try {
    return fs.statfsSync(where).type !== AUTOFS_SUPER_MAGIC;
  } catch {
    return undefined;
  }
}
