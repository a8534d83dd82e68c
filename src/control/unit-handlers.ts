// Control-socket methods for units and jobs: what `triggerctl start|stop|status|show|cat|logs|
// is-active|list-jobs|enable|disable|daemon-reload` ask. Jobs are enqueued and, unless noBlock,
// awaited, so a failed start exits non-zero the way `systemctl start` does.
import fs = require('node:fs');
import type { Manager } from '../core/manager';
import type { UnitEngine } from '../core/unit-engine';
import type { UnitLogRings, UnitLogRecord } from '../core/unit-log';
import type { JobType } from '../core/job-types';
import type { JobModeSetting } from '../units/config-types';
import { JOB_MODES } from '../units/unit-keys';
import { summarizeUnit, type UnitInstance } from '../units/unit-type';
import type { SecurityRowJson } from './security-view';

/**
 * The security report's tables, loaded at the first `security` request: they cost the idle
 * daemon ~0.7 MB of RSS for a command that is run now and then.
 */
function securityView(): typeof import('./security-view') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./security-view') as typeof import('./security-view');
}
import { ControlRequestError, STREAMING, type ControlHandlers } from './server';

export interface UnitHandlerDeps {
  manager: Manager;
  engine: UnitEngine;
  rings: UnitLogRings;
  /** `daemon-reload`. */
  reload: () => unknown;
  enable: (names: string[]) => { created: string[] };
  disable: (names: string[]) => { removed: string[] };
}

type UnitHandlerNames =
  | 'list-units'
  | 'list-jobs'
  | 'list-timers'
  | 'show'
  | 'unit-status'
  | 'cat'
  | 'security'
  | 'logs'
  | 'is-active'
  | 'is-failed'
  | 'start'
  | 'stop'
  | 'restart'
  | 'try-restart'
  | 'reload'
  | 'reset-failed'
  | 'enable'
  | 'disable'
  | 'daemon-reload';

/** One row of `list-timers`: wall-clock µs (0: none). */
export interface TimerRowJson {
  unit: string;
  activates: string;
  active: string;
  sub: string;
  next: number;
  last: number;
  why: string;
}

export interface JobOutcomeJson {
  unit: string;
  job: number | null;
  result: string;
}

export function unitHandlers(deps: UnitHandlerDeps): Pick<ControlHandlers, UnitHandlerNames> {
  const { manager, engine, rings } = deps;

  const mustGet = (name: string): UnitInstance => {
    const unit = manager.getUnit(engine.resolve(name));
    if (unit === undefined)
      throw new ControlRequestError('ERR_NO_SUCH_UNIT', `Unit ${name} could not be found.`);
    return unit;
  };

  const runJobs = async (type: JobType, params: Record<string, unknown>): Promise<JobOutcomeJson[]> => {
    const names = params.names as string[];
    const mode = (params.mode as JobModeSetting | undefined) ?? 'replace';
    if (!JOB_MODES.includes(mode))
      throw new ControlRequestError('ERR_BAD_PARAMS', `unknown job mode ${JSON.stringify(mode)}`);
    if (names.length === 0) throw new ControlRequestError('ERR_BAD_PARAMS', `${type}: no unit named`);
    const waits: Promise<JobOutcomeJson>[] = [];
    for (const name of names) {
      const r = engine.enqueue(name, type, mode, true);
      if (!r.ok)
        throw new ControlRequestError('ERR_JOB_REFUSED', `Failed to ${type} ${name}: ${r.error.message}`);
      const finished = params.noBlock === true ? undefined : engine.queue.whenFinished(r.jobId);
      waits.push(
        finished === undefined
          ? Promise.resolve({ unit: name, job: r.jobId, result: params.noBlock === true ? 'queued' : 'done' })
          : finished.then((result) => ({ unit: name, job: r.jobId, result })),
      );
    }
    const results = await Promise.all(waits);
    const failed = results.filter(
      (r) => r.result !== 'done' && r.result !== 'queued' && r.result !== 'skipped',
    );
    if (failed.length > 0) {
      throw new ControlRequestError(
        'ERR_JOB_FAILED',
        failed
          .map(
            (f) =>
              `Job for ${f.unit} failed (result: ${f.result}). See "triggerctl status ${f.unit}" and "triggerctl logs ${f.unit}" for details.`,
          )
          .join('\n'),
      );
    }
    return results;
  };

  return {
    'list-units': (params) => {
      const type = params.type as string | undefined;
      const state = params.state as string | undefined;
      return manager
        .listUnits()
        .filter((r) => type === undefined || r.name.endsWith(`.${type}`))
        .filter((r) => state === undefined || r.active === state || r.sub === state || r.load === state);
    },
    'list-jobs': () => engine.queue.list(),
    // Timer units' own view (their properties), as `systemctl list-timers` shows them.
    'list-timers': (params) => {
      const rows: TimerRowJson[] = [];
      for (const r of manager.listUnits()) {
        if (!r.name.endsWith('.timer')) continue;
        if (params.all !== true && r.active !== 'active') continue;
        const p = manager.getUnit(r.name)?.properties() ?? {};
        const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
        rows.push({
          unit: r.name,
          activates: typeof p.Unit === 'string' ? p.Unit : '',
          active: r.active,
          sub: r.sub,
          next: num(p.NextElapseUSec),
          last: num(p.LastTriggerUSec),
          why: typeof p.NextElapseWhy === 'string' ? p.NextElapseWhy : '',
        });
      }
      return rows;
    },
    show: (params) => {
      const name = params.name as string;
      const unit = mustGet(name);
      const file = unit.file;
      return {
        Id: unit.name,
        Names: [unit.name, ...(file?.aliases ?? [])],
        Description: unit.description(),
        LoadState: unit.load,
        ActiveState: unit.activeState(),
        SubState: unit.subState(),
        StateChangeTimestamp: new Date(unit.since).toISOString(),
        FragmentPath: file?.fragmentPath ?? '',
        DropInPaths: file?.dropInPaths ?? [],
        CanReload: unit.canReload(),
        ...unit.properties(),
      };
    },
    'unit-status': (params) => {
      const name = params.name as string;
      const unit = mustGet(name);
      const lines = (params.lines as number | undefined) ?? 10;
      return {
        ...summarizeUnit(unit),
        since: unit.since,
        fragmentPath: unit.file?.fragmentPath ?? null,
        dropInPaths: unit.file?.dropInPaths ?? [],
        diagnostics: unit.file?.diagnostics ?? [],
        properties: unit.properties(),
        statusLines: unit.statusLines?.() ?? [],
        job: engine.queue.jobFor(unit.name) ?? null,
        logs: rings.tail(unit.name, Math.max(0, Math.min(lines, 1000))),
      };
    },
    cat: (params) => {
      const unit = mustGet(params.name as string);
      const file = unit.file;
      if (file?.fragmentPath === undefined)
        throw new ControlRequestError('ERR_NO_SUCH_UNIT', `No files found for ${unit.name}.`);
      const parts: { path: string; text: string }[] = [];
      for (const p of [file.fragmentPath, ...file.dropInPaths]) {
        try {
          parts.push({ path: p, text: fs.readFileSync(p, 'utf8') });
        } catch (err) {
          parts.push({ path: p, text: `# cannot read: ${(err as Error).message}\n` });
        }
      }
      return parts;
    },
    // The exposure report of one service's sandbox settings, or one row per loaded service.
    security: (params) => {
      const managerIsRoot = process.getuid?.() === 0;
      const name = params.name as string | undefined;
      if (name === undefined) {
        const rows: SecurityRowJson[] = [];
        for (const r of manager.listUnits()) {
          const file = manager.getUnit(r.name)?.file;
          if (r.load !== 'loaded' || file === undefined) continue;
          const view = securityView();
          const report = view.serviceSecurityJson(r.name, file, managerIsRoot);
          if (report !== undefined) rows.push(view.securityRow(report));
        }
        return rows;
      }
      const unit = mustGet(name);
      if (unit.load === 'not-found' || unit.file === undefined)
        throw new ControlRequestError('ERR_NO_SUCH_UNIT', `Unit ${name} could not be found.`);
      const report = securityView().serviceSecurityJson(unit.name, unit.file, managerIsRoot);
      if (report === undefined)
        throw new ControlRequestError(
          'ERR_BAD_PARAMS',
          `${unit.name} is not a service: security reports on the sandbox settings of .service units`,
        );
      return report;
    },
    logs: (params, ctx) => {
      const name = engine.resolve(params.name as string);
      const n = Math.max(0, Math.min((params.lines as number | undefined) ?? 50, 10_000));
      const tail = rings.tail(name, n);
      if (params.follow !== true) return tail;
      for (const r of tail) ctx.emit(r);
      const sub = rings.records$.subscribe((r: UnitLogRecord) => {
        if (r.unit === name) ctx.emit(r);
      });
      ctx.onClose(() => sub.unsubscribe());
      return STREAMING;
    },
    'is-active': (params) =>
      (params.names as string[]).map((n) => ({
        unit: n,
        state: manager.getUnit(engine.resolve(n))?.activeState() ?? 'inactive',
      })),
    'is-failed': (params) =>
      (params.names as string[]).map((n) => ({
        unit: n,
        state: manager.getUnit(engine.resolve(n))?.activeState() ?? 'inactive',
      })),
    start: (params) => runJobs('start', params),
    stop: (params) => runJobs('stop', params),
    restart: (params) => runJobs('restart', params),
    'try-restart': (params) => runJobs('try-restart', params),
    reload: (params) => runJobs('reload', params),
    'reset-failed': (params) => {
      const names =
        (params.names as string[] | undefined) ??
        manager
          .listUnits()
          .filter((u) => u.active === 'failed')
          .map((u) => u.name);
      for (const n of names) {
        const u = mustGet(n) as UnitInstance & { resetFailed?: () => void };
        u.resetFailed?.();
      }
      return { reset: names };
    },
    enable: (params) => deps.enable(params.names as string[]),
    disable: (params) => deps.disable(params.names as string[]),
    'daemon-reload': () => deps.reload(),
  };
}
