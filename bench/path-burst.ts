// 100,000 file creations in a watched spool directory on tmpfs, as fast as one process can make
// them (the kernel's inotify queue overflows on the way): how many triggers triggerd delivered,
// whether a run started after the last creation (the final trigger must never be lost), how often
// the overflow re-check ran, and the daemon's RSS before, at peak (VmHWM) and after. Two path
// units watch the directory: PathChanged= (edge, latched during runs) and DirectoryNotEmpty=
// (level; its job deletes what is there, so its final trigger is a run whose find ended after
// the last creation, with nothing left in the spool). The peer is `inotifywait -m -e create`: how many of the
// 100,000 events it printed and whether the last one was among them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runBenchmark, hostInfo } from './lib/report';
import { OWN_RULES, startTriggerd } from './lib/triggerd-daemon';
import { installAllowed } from './lib/apt';
import { ensureInotifywait, startMonitor } from './lib/inotifywait';
import { onCleanup } from './lib/cleanup';
import { kibToMb, round } from './lib/stats';
import { sleep, statusKiB } from './lib/proc';

const N = Number(process.env.TRIGGERD_BENCH_PATH_BURST ?? 100_000);

/** Each run's stamp; `column` 1 is the level job's second stamp (after its find). */
function stampTimes(file: string, column = 0): bigint[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => BigInt(l.trim().split(' ')[column] ?? '0'));
  } catch {
    return [];
  }
}

const nowNs = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

async function create(dir: string, prefix: string): Promise<{ lastNs: bigint; ms: number }> {
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    for (let j = i; j < Math.min(N, i + 1000); j++) fs.writeFileSync(path.join(dir, `${prefix}${j}`), '');
    await new Promise((r) => setImmediate(r));
  }
  return { lastNs: nowNs(), ms: performance.now() - t0 };
}

runBenchmark(async () => {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'triggerd-path-burst-'));
  onCleanup('remove the burst directory', () => fs.rmSync(dir, { recursive: true, force: true }));
  const units = path.join(dir, 'units');
  const spool = path.join(dir, 'spool');
  const out = path.join(dir, 'out');
  fs.mkdirSync(path.join(units, 'multi-user.target.wants'), { recursive: true });
  fs.mkdirSync(spool);
  fs.mkdirSync(out);
  const unit = (name: string, text: string): void => fs.writeFileSync(path.join(units, name), text);
  unit('changed.path', `[Path]\nPathChanged=${spool}\n[Install]\nWantedBy=multi-user.target\n`);
  unit(
    'changed.service',
    `[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s%%N >> ${out}/changed'\n`,
  );
  unit('level.path', `[Path]\nDirectoryNotEmpty=${spool}\n[Install]\nWantedBy=multi-user.target\n`);
  unit(
    'level.service',
    `[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 't=$$(date +%%s%%N); find ${spool} -mindepth 1 -maxdepth 1 -name "f*" -delete; echo "$$t $$(date +%%s%%N)" >> ${out}/level'\n`,
  );
  for (const n of ['changed.path', 'level.path'])
    fs.symlinkSync(path.join(units, n), path.join(units, 'multi-user.target.wants', n));

  const daemon = await startTriggerd(OWN_RULES, { unitPath: units });
  let result: Record<string, unknown>;
  try {
    for (const n of ['changed.path', 'level.path']) {
      const deadline = Date.now() + 10_000;
      while (((await daemon.request('unit-status', { name: n })) as { sub: string }).sub !== 'waiting') {
        if (Date.now() > deadline) throw new Error(`${n} did not reach waiting`);
        await sleep(20);
      }
    }
    const rss0 = statusKiB(daemon.pid, 'VmRSS') ?? 0;
    const burst = await create(spool, 'f');
    const waitFinal = async (file: string, column = 0): Promise<number | null> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const after = stampTimes(file, column).filter((t) => t >= burst.lastNs);
        if (after.length > 0) return round(Number(after[0] - burst.lastNs) / 1e6, 1);
        if (Date.now() > deadline) return null;
        await sleep(20);
      }
    };
    const changedFinal = await waitFinal(path.join(out, 'changed'));
    // The level job's find takes whatever is there when it runs, so the last file may go with a
    // run that began just before the last creation (no later run is due then): its final trigger
    // is the first run whose find ended after the last creation, and lost only if files are left.
    const levelFinal = await waitFinal(path.join(out, 'level'), 1);
    const levelStartedAfter = stampTimes(path.join(out, 'level')).some((t) => t >= burst.lastNs);
    // Let the level unit drain the directory.
    const drained = Date.now() + 60_000;
    while (fs.readdirSync(spool).length > 0 && Date.now() < drained) await sleep(50);
    await sleep(500);
    const props = async (n: string): Promise<Record<string, unknown>> =>
      ((await daemon.request('unit-status', { name: n })) as { properties: Record<string, unknown> })
        .properties;
    const pc = await props('changed.path');
    const pl = await props('level.path');
    result = {
      creations: N,
      creationMs: round(burst.ms, 0),
      triggerd: {
        changed: {
          runs: stampTimes(path.join(out, 'changed')).length,
          finalTriggerAfterLastCreationMs: changedFinal,
          finalTriggerLost: changedFinal === null,
          overflowRechecks: pc.NOverflows,
          latchedEvents: pc.NLatched,
        },
        level: {
          runs: stampTimes(path.join(out, 'level')).length,
          lastRunEndedAfterLastCreationMs: levelFinal,
          aRunStartedAfterLastCreation: levelStartedAfter,
          finalTriggerLost: levelFinal === null || fs.readdirSync(spool).length > 0,
          overflowRechecks: pl.NOverflows,
          leftInSpool: fs.readdirSync(spool).length,
        },
        rssBeforeMB: round(kibToMb(rss0), 1),
        rssPeakMB: round(kibToMb(statusKiB(daemon.pid, 'VmHWM') ?? 0), 1),
        rssAfterMB: round(kibToMb(statusKiB(daemon.pid, 'VmRSS') ?? 0), 1),
      },
    };
  } finally {
    await daemon.stop();
  }

  const peer = await ensureInotifywait(installAllowed());
  let inotifywait: Record<string, unknown>;
  if (peer.ok) {
    const pdir = path.join(dir, 'peer');
    fs.mkdirSync(pdir);
    const log = path.join(dir, 'peer.log');
    const monitor = await startMonitor(`inotifywait -m -e create --format %f ${pdir} > ${log}`);
    try {
      await create(pdir, 'g');
      await sleep(2000);
      const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
      inotifywait = {
        eventsPrinted: lines.length,
        lost: N - lines.length,
        lastCreationSeen: lines.includes(`g${N - 1}`),
      };
    } finally {
      monitor.stop();
    }
  } else {
    inotifywait = { skipped: peer.reason };
  }
  const t = result.triggerd as {
    changed: { finalTriggerLost: boolean };
    level: { finalTriggerLost: boolean };
  };
  return {
    benchmark: 'path-burst',
    host: hostInfo(),
    fs: 'tmpfs',
    ...result,
    inotifywait,
    peerVersion: peer.ok ? `inotify-tools ${peer.version} (${peer.origin})` : null,
    target: 'zero lost final triggers',
    met: !t.changed.finalTriggerLost && !t.level.finalTriggerLost,
  };
});
