// The MountStarter an automount uses to bring up and take down its .mount unit. Two of them:
// - engineMountStarter: start and stop jobs for the .mount unit in the job engine (when the
//   registry runs .mount units): the mount unit does the mounting, its job result is the answer;
// - directMountStarter: until .mount units run, mount(8)/umount(8) run from the .mount unit
//   file's [Mount] What=/Type=/Options= (no unit state of its own), their stderr becomes the
//   failure reason and goes to the log of the mount unit (systemd#6776: never swallow it).
import type { Logger } from '../util/logger';
import type { ProgramRunner } from '../devices/run-programs';
import { runProgram } from '../devices/run-programs';
import type { LoadedUnitFile } from './config-types';
import type { MountOutcome, MountStarter } from './automount';

export interface EngineJobs {
  /** Enqueue a job; `done` resolves with the job's result ('done', 'failed', ...). */
  enqueue(
    unit: string,
    type: 'start' | 'stop',
  ): { ok: true; done: Promise<string> } | { ok: false; reason: string };
  /** Why the unit is where it is, for the failure reason ("exit-code", the helper's message). */
  explain(unit: string): string | undefined;
}

export function engineMountStarter(jobs: EngineJobs): MountStarter {
  const run = async (unit: string, type: 'start' | 'stop'): Promise<MountOutcome> => {
    const r = jobs.enqueue(unit, type);
    if (!r.ok) return { ok: false, reason: r.reason };
    const result = await r.done;
    if (result === 'done') return { ok: true };
    const why = jobs.explain(unit);
    return { ok: false, reason: `${type} job of ${unit} ${result}${why !== undefined ? `: ${why}` : ''}` };
  };
  return { start: (unit) => run(unit, 'start'), stop: (unit) => run(unit, 'stop') };
}

/** [Mount] as the direct starter reads it (the last assignment wins; '' resets). */
export interface RawMountSettings {
  what?: string;
  type?: string;
  options?: string;
  timeoutMs: number;
}

export function rawMountSettings(file: LoadedUnitFile): RawMountSettings {
  const out: RawMountSettings = { timeoutMs: 90_000 };
  for (const e of file.raw.get('Mount') ?? []) {
    const v = e.value === '' ? undefined : e.value;
    if (e.key === 'What') out.what = v;
    else if (e.key === 'Type') out.type = v;
    else if (e.key === 'Options') out.options = v;
    else if (e.key === 'TimeoutSec' && v !== undefined && /^[0-9]+$/.test(v) && Number(v) > 0)
      out.timeoutMs = Number(v) * 1000;
  }
  return out;
}

export interface DirectStarterOptions {
  runner: ProgramRunner;
  /** The loaded .mount unit file (undefined when there is none). */
  load(unit: string): LoadedUnitFile | undefined;
  log(unit: string): Logger;
  mountPath?: string;
  umountPath?: string;
}

/** splitCommand() quoting: single quotes keep spaces; a word with a quote of its own stays bare. */
function quote(word: string): string {
  return /[\s"]/.test(word) && !word.includes("'") ? `'${word}'` : word;
}

export function directMountStarter(o: DirectStarterOptions): MountStarter {
  const mountPath = o.mountPath ?? '/usr/bin/mount';
  const umountPath = o.umountPath ?? '/usr/bin/umount';
  const execute = async (unit: string, argv: string[], timeoutMs: number): Promise<MountOutcome> => {
    const log = o.log(unit);
    const lines: string[] = [];
    const result = await runProgram(argv.map(quote).join(' '), {
      runner: o.runner,
      env: [
        ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ['LANG', 'C.UTF-8'],
      ],
      timeoutMs,
      libexecDirs: [],
      onOutput: (_stream, line) => {
        if (lines.length < 20) lines.push(line);
        log.warn(`${argv[0]?.split('/').pop()}: ${line}`);
      },
    });
    if (result.ok) return { ok: true };
    const status = result.timedOut
      ? `timed out after ${timeoutMs / 1000} s`
      : result.exit !== undefined
        ? result.exit.code === 'exited'
          ? `exited with status ${result.exit.status}`
          : `killed by signal ${result.exit.status}`
        : (result.error?.message ?? 'failed');
    const said = lines.join('; ');
    return { ok: false, reason: `${argv.join(' ')} ${status}${said !== '' ? `: ${said}` : ''}` };
  };
  return {
    start: async (unit, where) => {
      const file = o.load(unit);
      if (file === undefined) return { ok: false, reason: `there is no ${unit} to mount ${where} with` };
      if (file.loadState !== 'loaded') return { ok: false, reason: `${unit} is ${file.loadState}` };
      const m = rawMountSettings(file);
      if (m.what === undefined) return { ok: false, reason: `${unit} has no What=` };
      const argv = [mountPath];
      if (m.type !== undefined) argv.push('-t', m.type);
      if (m.options !== undefined) argv.push('-o', m.options);
      argv.push(m.what, where);
      return execute(unit, argv, m.timeoutMs);
    },
    stop: async (unit, where) => {
      const file = o.load(unit);
      return execute(
        unit,
        [umountPath, where],
        file !== undefined ? rawMountSettings(file).timeoutMs : 90_000,
      );
    },
  };
}
