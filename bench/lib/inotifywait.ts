// inotifywait (Debian's inotify-tools) as the path benchmarks' peer: found on the PATH, or
// installed when the run allows it (CI or TRIGGERD_BENCH_INSTALL=1, see apt.ts). A monitor runs as
// `sh -c 'inotifywait -m ... | while read ...; do JOB; done'` in its own process group, started
// once inotifywait says its watches are established, and stopped by that group's id.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { aptInstall } from './apt';
import { onCleanup } from './cleanup';

export type InotifywaitAvailability =
  { ok: true; version: string; origin: string } | { ok: false; reason: string };

function version(): string | undefined {
  const r = spawnSync('inotifywait', ['--help'], { encoding: 'utf8' });
  if (r.error !== undefined) return undefined;
  return /inotifywait ([0-9.]+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

export async function ensureInotifywait(allowInstall: boolean): Promise<InotifywaitAvailability> {
  const found = version();
  if (found !== undefined) return { ok: true, version: found, origin: 'preinstalled' };
  if (!allowInstall)
    return {
      ok: false,
      reason:
        'inotifywait is not installed (package "inotify-tools"); set TRIGGERD_BENCH_INSTALL=1 (or CI=true) to let the benchmark install it',
    };
  const failure = await aptInstall(['inotify-tools'], { noRecommends: true });
  if (failure !== undefined) return { ok: false, reason: failure };
  const v = version();
  return v === undefined
    ? { ok: false, reason: 'inotifywait still missing after apt-get install' }
    : { ok: true, version: v, origin: 'installed by this run' };
}

export interface Monitor {
  child: ChildProcess;
  stop(): void;
}

/** Run `script` (sh) in its own process group; resolves once inotifywait printed "Watches established". */
export function startMonitor(script: string): Promise<Monitor> {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid;
  const stop = (): void => {
    if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  };
  const remove = onCleanup('stop the inotifywait monitor', stop);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`inotifywait did not establish its watches: ${err}`));
    }, 10_000);
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('Watches established')) {
        clearTimeout(timer);
        resolve({
          child,
          stop: () => {
            stop();
            remove();
          },
        });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`inotifywait monitor exited ${code}: ${err}`));
    });
  });
}
