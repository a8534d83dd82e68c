// Standalone mode's device manager step for one event: run the rules, then apply what they
// decided — /dev symlinks (link_priority arbitration), node permissions, the udev database that
// libudev reads, the rebroadcast on netlink group 2, and RUN programs — and hand the event, with
// its new properties, tags and links, back to the registry.
import fs = require('node:fs');
import path = require('node:path');
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import type { DeviceDecision } from './device-registry';
import type { DeviceRecord, Uevent } from './types';
import type { CompiledRules } from './rules/rules-compiler';
import { runRules, type RulesHost } from './rules/rules-executor';
import type { RulesResult } from './rules/rules-result';
import { udevDeviceId } from './udev-db';
import {
  UdevDbWriter,
  monotonicUsec,
  splitProperties,
  udevDbEntryFor,
  type RunDirWriteResult,
} from './udev-db-writer';
import { DevLinks, type LinkOutcome } from './dev-links';
import type { RunDirFs } from './run-dir-writes';
import { applyNodePermissions, resolveNodePermissions } from './node-permissions';
import { labelDeviceNode } from './node-labels';
import { applyStaticNodes } from './static-nodes';
import { readUserDatabase, type UserDatabase } from '../exec/user-database';
import type { Rebroadcaster } from './rebroadcast';
import { executeRunList, type ProgramRunner } from './run-programs';
import type { DeviceWatchHook } from './device-watch';

export interface RulesStageOptions {
  rules: CompiledRules;
  host: RulesHost;
  runner: ProgramRunner;
  logger: Logger;
  /** Default /run/udev. */
  udevRunDir?: string;
  /** Default /dev. */
  devRoot?: string;
  rebroadcaster?: Pick<Rebroadcaster, 'rebroadcast'>;
  programTimeoutMs?: number;
  /**
   * false: run the rules and keep their result in the registry, but touch nothing outside
   * (an ordinary user cannot write /dev or /run/udev; `test-rules` shows without doing).
   */
  applyEffects?: boolean;
  /** OPTIONS+="watch": told when an event's processing starts and when its effects are applied. */
  deviceWatch?: DeviceWatchHook;
  /** The fs calls of the run-dir write-behind (default: runDirFsFor(udevRunDir)); tests slow them down. */
  runDirFs?: RunDirFs;
}

export interface ProcessedDeviceEvent {
  event: Uevent;
  decision: DeviceDecision;
  result: RulesResult;
}

export class RulesStage {
  private rules: CompiledRules;
  readonly db: UdevDbWriter;
  private readonly links: DevLinks;
  private readonly problemLog = new RateLimitedLog(10_000, 20);
  private readonly logger: Logger;

  constructor(private readonly options: RulesStageOptions) {
    this.rules = options.rules;
    this.logger = options.logger;
    this.db = new UdevDbWriter({ root: options.udevRunDir, fs: options.runDirFs });
    this.links = new DevLinks({ db: this.db, devRoot: options.devRoot });
    this.applyStaticNodes();
  }

  /** A reload compiles from scratch and swaps the result in (and re-reads users and groups). */
  setRules(rules: CompiledRules): void {
    this.rules = rules;
    this.userDb = undefined;
    this.applyStaticNodes();
  }

  /** OPTIONS+="static_node=": applied once per (re)load, as udevd does, not per event. */
  private applyStaticNodes(): void {
    if (this.options.applyEffects === false) return;
    const { devRoot, udevRunDir } = this.options;
    applyStaticNodes(this.rules, { users: this.users(), devRoot, udevRunDir, logger: this.logger });
  }

  /** /etc/passwd and /etc/group, read once per (re)load rather than once per event. */
  private userDb: UserDatabase | undefined;
  private users(): UserDatabase {
    this.userDb ??= readUserDatabase('/');
    return this.userDb;
  }

  get compiled(): CompiledRules {
    return this.rules;
  }

  async process(
    event: Uevent,
    previous: DeviceRecord | undefined,
    effects = true,
  ): Promise<ProcessedDeviceEvent> {
    const watch = effects && this.options.applyEffects !== false ? this.options.deviceWatch : undefined;
    watch?.begin(event);
    const result = await runRules(this.rules, event, previous, this.options.host, {
      programTimeoutMs: this.options.programTimeoutMs,
    });
    for (const d of result.diagnostics) this.report(d.message, event.devpath, d.source);
    const properties = new Map(event.properties);
    for (const [k, v] of result.properties) properties.set(k, v);
    const processed: Uevent = { ...event, properties };
    const decision: DeviceDecision = { tags: result.tags, devlinks: result.devlinks.map((l) => `/dev/${l}`) };
    // The effects get the kernel's event as it came: the database and the rebroadcast tell the
    // kernel's properties apart from what the rules added by comparing the two.
    if (effects && this.options.applyEffects !== false) await this.apply(event, previous, result);
    watch?.update(event, result);
    return { event: processed, decision, result };
  }

  private async apply(event: Uevent, previous: DeviceRecord | undefined, result: RulesResult): Promise<void> {
    const id = udevDeviceId(event);
    const owner = { id, devnode: event.devname ?? '', priority: result.linkPriority };
    const oldLinks = (previous?.devlinks ?? []).map((l) => l.replace(/^\/dev\//, ''));
    let usecInitialized = monotonicUsec();
    const split = splitProperties(event, result);
    // The run-dir writes (claims, record, tags) run on the threadpool meanwhile; waited for below.
    let claimWrites: Promise<LinkOutcome[]> | undefined;
    let dbWrites: RunDirWriteResult | undefined;
    try {
      if (event.action === 'remove') {
        if (event.devname !== undefined) {
          const links = this.links.remove(owner, [...new Set([...oldLinks, ...result.devlinks])]);
          claimWrites = links.written.then(() => []); // releases were never reported; awaited all the same
        }
        dbWrites = this.db.removeDeviceDb(id, previous?.tags);
      } else {
        if (event.devname !== undefined) {
          const links = this.links.update(owner, result.devlinks, oldLinks);
          for (const o of links.outcomes) this.reportLink(o, event.devpath);
          claimWrites = links.written;
          try {
            const perms = resolveNodePermissions(event, result, { users: this.users() });
            const applied = applyNodePermissions(event.devname, perms, { devRoot: this.options.devRoot });
            labelDeviceNode(event, result, applied, { devRoot: this.options.devRoot, logger: this.logger });
          } catch (err) {
            this.report((err as Error).message, event.devpath);
          }
        }
        const entry = udevDbEntryFor(event, result, { id, previous: this.db.readRecord(id), split });
        usecInitialized = entry.usecInitialized ?? usecInitialized;
        dbWrites = this.db.writeDevice(entry);
        this.writeAttributes(event, result);
      }
    } catch (err) {
      this.report(`device database: ${(err as Error).message}`, event.devpath);
    }
    // As udevd: the claims and the record are on disk before libudev listeners hear of the event.
    for (const o of (await claimWrites) ?? []) this.reportLink(o, event.devpath);
    for (const err of (await dbWrites) ?? []) this.report(`device database: ${err.message}`, event.devpath);
    this.options.rebroadcaster?.rebroadcast({ event, result, usecInitialized, split });
    if (result.run.length > 0) {
      await executeRunList(result.run, {
        runner: this.options.runner,
        env: result.properties,
        timeoutMs: this.options.programTimeoutMs,
        // RUN programs see the properties as the rules left them.
        onOutput: (stream, line) => this.logger.info({ devpath: event.devpath, stream }, line),
        onResult: (entry, r) => {
          if (!r.ok)
            this.report(`RUN ${entry.command}: ${r.error?.message ?? 'failed'}`, event.devpath, entry.source);
        },
      });
    }
  }

  private reportLink(o: LinkOutcome, devpath: string): void {
    if (o.action === 'error') this.report(`symlink /dev/${o.link}: ${o.error.message}`, devpath);
    else if (o.action === 'conflict')
      this.report(`/dev/${o.link} exists and is not a symlink; left alone`, devpath);
  }

  /** ATTR{file}="value" and SYSCTL{key}="value", after the node and links are in place, as udevd does. */
  private writeAttributes(event: Uevent, result: RulesResult): void {
    for (const w of result.attrWrites) {
      try {
        fs.writeFileSync(w.path, w.value);
      } catch (err) {
        this.report(
          `ATTR write ${w.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          event.devpath,
          w.source,
        );
      }
    }
    for (const w of result.sysctlWrites) {
      const file = path.join('/proc/sys', w.key.replace(/\./g, '/'));
      try {
        fs.writeFileSync(file, w.value);
      } catch (err) {
        this.report(
          `SYSCTL write ${w.key}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          event.devpath,
          w.source,
        );
      }
    }
  }

  private report(message: string, devpath: string, source?: { file: string; line: number }): void {
    const suppressed = this.problemLog.admit();
    if (suppressed < 0) return;
    const where = source === undefined ? '' : `${source.file}:${source.line}: `;
    this.logger.warn({ devpath, suppressed }, `${where}${message}`);
  }
}
