// Change-to-job-start latency of a .path unit (PathChanged= on a file on tmpfs, a oneshot whose
// only command stamps CLOCK_REALTIME in ns), against `inotifywait -m -e close_write | while read;
// do <the same job>; done` in the same run. Each iteration writes the file (the time is taken just
// before the write) and waits for the job's stamp; both sides run the identical /bin/sh command.
// The two sides run at the same time and their iterations alternate (triggerd, inotifywait,
// triggerd, ...), so a shared, loaded machine slows both alike; the stamps are written outside
// the watched directories, so the job's own write wakes neither watcher.
// Prints one JSON object: p50/p99/max per side, their ratios, and whether triggerd's p50 and p99
// are no worse.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runBenchmark, hostInfo } from './lib/report';
import { OWN_RULES, startTriggerd } from './lib/triggerd-daemon';
import { installAllowed } from './lib/apt';
import { ensureInotifywait, startMonitor } from './lib/inotifywait';
import { onCleanup } from './lib/cleanup';
import { percentile, round, median } from './lib/stats';
import { sleep } from './lib/proc';

const N = Number(process.env.TRIGGERD_BENCH_PATH_ITERATIONS ?? 300);

function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The first whole stamp line written at or after byte `offset`, or undefined. */
function stampAfter(file: string, offset: number): bigint | undefined {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(64);
      text = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, offset)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const nl = text.indexOf('\n');
  return nl < 0 ? undefined : BigInt(text.slice(0, nl).trim());
}

interface Side {
  target: string;
  stampFile: string;
  out: number[];
}

/** Write the side's target once and wait for the job's stamp; the latency in ms. */
async function once(side: Side, i: number): Promise<number> {
  const base = sizeOf(side.stampFile);
  // The benchmark sleeps on an inotify watch of the stamp file while the job runs, woken by the
  // stamp itself: a poller (1 ms timer) woke beside the job about once per run and took the CPU
  // from it, and more often from a job in a new session (scheduling group) than from one in the
  // monitor's long-lived session. A 50 ms timer is the fallback for a missed wake-up.
  let wake: (() => void) | undefined;
  const watcher = fs.watch(side.stampFile, () => wake?.());
  try {
    const t0 = nowNs();
    fs.writeFileSync(side.target, String(i));
    const deadline = Date.now() + 5000;
    let got: bigint | undefined;
    while (
      (got = sizeOf(side.stampFile) > base ? stampAfter(side.stampFile, base) : undefined) === undefined
    ) {
      if (Date.now() > deadline) throw new Error(`no job start for change ${i} of ${side.target} within 5 s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    // Let the run end so the next change is a fresh trigger, not a latched one.
    await sleep(15);
    return Number(got - t0) / 1e6;
  } finally {
    watcher.close();
  }
}

/** `count` rounds; in each, every side once (in turn), so both see the same load. */
async function measure(sides: Side[], count: number, keep: boolean): Promise<void> {
  for (let i = 0; i < count; i++) {
    for (const side of sides) {
      const ms = await once(side, i);
      if (keep) side.out.push(ms);
    }
  }
}

function summary(ms: number[]): { p50Ms: number; p99Ms: number; maxMs: number; minMs: number } {
  return {
    p50Ms: round(median(ms), 2),
    p99Ms: round(percentile(ms, 99), 2),
    maxMs: round(Math.max(...ms), 2),
    minMs: round(Math.min(...ms), 2),
  };
}

runBenchmark(async () => {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'triggerd-path-latency-'));
  onCleanup('remove the latency directory', () => fs.rmSync(dir, { recursive: true, force: true }));
  const units = path.join(dir, 'units');
  fs.mkdirSync(path.join(units, 'multi-user.target.wants'), { recursive: true });
  const tdir = path.join(dir, 'triggerd');
  const idir = path.join(dir, 'inotifywait');
  const sdir = path.join(dir, 'stamps');
  fs.mkdirSync(tdir);
  fs.mkdirSync(idir);
  fs.mkdirSync(sdir);
  const job = (stampFile: string): string => `date +%s%N >> ${stampFile}`;
  fs.writeFileSync(
    path.join(units, 'lat.path'),
    `[Path]\nPathChanged=${tdir}/f\n[Install]\nWantedBy=multi-user.target\n`,
  );
  // '%' is a specifier in unit files: '%%' is one '%'.
  fs.writeFileSync(
    path.join(units, 'lat.service'),
    `[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c '${job(`${sdir}/triggerd`).replace(/%/g, '%%')}'\n`,
  );
  fs.symlinkSync(path.join(units, 'lat.path'), path.join(units, 'multi-user.target.wants', 'lat.path'));
  fs.writeFileSync(path.join(tdir, 'f'), '');
  fs.writeFileSync(path.join(idir, 'f'), '');
  // Made now: the benchmark watches them while it waits for a stamp.
  for (const stamps of ['triggerd', 'inotifywait']) fs.writeFileSync(path.join(sdir, stamps), '');

  const peer = await ensureInotifywait(installAllowed());
  const tside: Side = { target: path.join(tdir, 'f'), stampFile: path.join(sdir, 'triggerd'), out: [] };
  const iside: Side = { target: path.join(idir, 'f'), stampFile: path.join(sdir, 'inotifywait'), out: [] };
  const daemon = await startTriggerd(OWN_RULES, { unitPath: units });
  let monitor: { stop(): void } | undefined;
  try {
    const deadline = Date.now() + 10_000;
    while (
      ((await daemon.request('unit-status', { name: 'lat.path' })) as { sub: string }).sub !== 'waiting'
    ) {
      if (Date.now() > deadline) throw new Error('lat.path did not reach waiting');
      await sleep(20);
    }
    if (peer.ok)
      monitor = await startMonitor(
        `inotifywait -m -e close_write --format %f ${idir}/f | while read -r f; do /bin/sh -c '${job(iside.stampFile)}'; done`,
      );
    const sides = monitor !== undefined ? [tside, iside] : [tside];
    await measure(sides, 10, false); // warm-up
    await measure(sides, N, true);
  } finally {
    monitor?.stop();
    await daemon.stop();
  }

  const inotifywait: ReturnType<typeof summary> | { skipped: string } = peer.ok
    ? summary(iside.out)
    : { skipped: peer.reason };
  const t = summary(tside.out);
  const ratio =
    'p50Ms' in inotifywait
      ? { p50: round(t.p50Ms / inotifywait.p50Ms, 2), p99: round(t.p99Ms / inotifywait.p99Ms, 2) }
      : null;
  const met =
    'p50Ms' in inotifywait
      ? t.p50Ms <= inotifywait.p50Ms * 1.1 + 0.5 && t.p99Ms <= inotifywait.p99Ms * 1.1 + 1
      : null;
  return {
    benchmark: 'path-latency',
    host: hostInfo(),
    iterations: N,
    fs: 'tmpfs',
    job: "/bin/sh -c 'date +%s%N >> stamps' (oneshot; the same command for both)",
    interleaved: true,
    triggerd: t,
    inotifywait,
    ratio,
    peerVersion: peer.ok ? `inotify-tools ${peer.version} (${peer.origin})` : null,
    target: 'change-to-job-start p50 and p99 no worse than inotifywait -m (10% + 0.5/1 ms noise allowance)',
    met,
  };
});
