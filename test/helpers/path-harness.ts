// Path units on the real kernel without a daemon: the shared inotify registry, the real file-system
// checks, and a stand-in for the triggered unit (a "job" that runs for `jobMs`, optionally doing
// something to the file system, then goes inactive). Used by the integration tests and the
// benchmarks; each start is recorded with its monotonic time and TRIGGER_PATH.
import type { Logger } from '../../src/util/logger';
import type { NativeInotify } from '../../src/native/inotify-addon';
import { InotifyPathWatches } from '../../src/events/path-watches';
import { checkPathSpec, makeWatchedDirectory } from '../../src/units/path-checks';
import { conditionHolds } from '../../src/units/conditions';
import { parseUnitText } from '../../src/units/unit-loader';
import { PathUnit, type PathHost, type TriggeredUnitView } from '../../src/units/path';

export interface JobRun {
  unit: string;
  at: number;
  path: string;
  why: string;
}

export interface HarnessUnitOptions {
  /** How long each run of the triggered unit lasts (ms, default 0: ends on the next turn). */
  jobMs?: number;
  /** What the job does when it starts (e.g. empty the spool directory). */
  job?: () => void;
}

export class PathHarness {
  readonly watches: InotifyPathWatches;
  readonly runs: JobRun[] = [];
  readonly units: PathUnit[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    native: NativeInotify,
    private readonly logger: Logger,
  ) {
    this.watches = new InotifyPathWatches({ native, logger });
  }

  /** A path unit from `[Path]` text (and more sections), started. */
  add(name: string, text: string, options: HarnessUnitOptions = {}): PathUnit {
    const file = parseUnitText(name, text, `/harness/${name}`);
    if (file.loadState !== 'loaded')
      throw new Error(`${name}: ${file.diagnostics.map((d) => d.message).join('; ')}`);
    let target: TriggeredUnitView = { active: 'inactive', load: 'loaded', hasJob: false };
    const ref: { unit?: PathUnit } = {};
    const host: PathHost = {
      sourceFor: () => this.watches,
      check: (spec) => checkPathSpec(spec),
      conditionHolds: (c) => conditionHolds(c),
      makeDirectory: (p, mode) => makeWatchedDirectory(p, mode),
      unitStatus: () => target,
      startUnit: (n, env) => {
        const run: JobRun = { unit: name, at: performance.now(), path: env.TRIGGER_PATH ?? '', why: '' };
        this.runs.push(run);
        // The unit records why right after the start was accepted.
        queueMicrotask(() => (run.why = ref.unit?.lastTrigger?.why ?? ''));
        target = { active: 'activating', load: 'loaded', hasJob: true };
        const done = new Promise<string>((resolve) => {
          const t = setTimeout(() => {
            this.timers.delete(t);
            options.job?.();
            target = { active: 'inactive', load: 'loaded', hasJob: false };
            resolve('done');
            ref.unit?.onUnitChanged(n);
          }, options.jobMs ?? 0);
          this.timers.add(t);
        });
        return { ok: true, done };
      },
      setTimer: (ms, fn) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          fn();
        }, ms);
        this.timers.add(t);
        return () => {
          clearTimeout(t);
          this.timers.delete(t);
        };
      },
      now: () => performance.now(),
      stateChanged: () => undefined,
      log: this.logger.child({ unit: name }),
    };
    const unit = new PathUnit(name, file, host);
    ref.unit = unit;
    const out = unit.start();
    if (out !== 'done') throw new Error(`${name} did not start: ${JSON.stringify(out)}`);
    this.units.push(unit);
    return unit;
  }

  runsOf(name: string): JobRun[] {
    return this.runs.filter((r) => r.unit === name);
  }

  close(): void {
    for (const u of this.units) u.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.watches.close();
  }
}

export async function until(what: string, probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
