// bench/mountinfo: following /proc/self/mountinfo with mount units, in-process with the real
// MountSystem (native POLLPRI watch, coalesced read + parse + diff, mount units created and
// updated in a real Manager; the job engine is a stub, as no job runs here).
// 1. One change with 1,000 tmpfs mounts present: the cost to process it (read + parse + diff +
//    apply to units) and the latency from the mount(8) exit to the unit being mounted.
// 2. A storm of 2,000 bind mounts made by one shell loop: time until the unit table is
//    consistent (every bind mount's unit mounted), reads done, and the worst event-loop lag
//    meanwhile (what notify and child-exit handling would have waited). Then the same for the
//    unmount storm.
// Peer, measured in the same run: util-linux `findmnt --poll` (libmount's monitor), its reaction
// time to one change and the time until it has reported the whole storm.
// Everything is made under a temporary directory and unmounted (lazily, deepest first) and
// removed at the end, also on failure or interruption.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostInfo, runBenchmark } from './lib/report';
import { onCleanup } from './lib/cleanup';
import { percentile } from './lib/stats';
import { Manager } from '../src/core/manager';
import { MountSystem } from '../src/mounts/mount-system';
import { loadNativeMounts } from '../src/native/mounts-addon';
import { MountUnit } from '../src/units/mount';
import { unitNameFromPath } from '../src/units/unit-name';
import pino from 'pino';

// TRIGGERD_BENCH_QUICK=1 shrinks both (for a smoke run).
const QUICK = process.env.TRIGGERD_BENCH_QUICK === '1';
const BASE_MOUNTS = QUICK ? 100 : 1000;
const STORM = QUICK ? 200 : 2000;
const SINGLE_REPS = 30;

function sh(script: string): void {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sh -c ${script.slice(0, 80)}…: ${r.stderr}`);
}

function umountAllBelow(dir: string): void {
  const points = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  // One umount per mount, in batches, through one shell each.
  for (let i = 0; i < points.length; i += 500) {
    spawnSync('umount', ['-l', ...points.slice(i, i + 500)], { stdio: 'ignore' });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** findmnt --poll as a peer: resolves with the time each of `count` change lines arrived. */
function findmntPeer(): { lines: number[]; stop(): void; ready: Promise<void> } {
  const lines: number[] = [];
  const p = spawn('findmnt', ['--poll', '-n', '-o', 'ACTION,TARGET'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    const t = performance.now();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      buf = buf.slice(nl + 1);
      lines.push(t);
    }
  });
  const stop = onCleanup('findmnt --poll', () => p.kill('SIGKILL'));
  return { lines, stop, ready: sleep(300) };
}

async function main(): Promise<object> {
  if (process.getuid?.() !== 0)
    return { benchmark: 'mountinfo', skipped: 'needs root (mount/umount)', host: hostInfo() };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-mountinfo-'));
  const done = onCleanup('mounts below ' + dir, () => {
    umountAllBelow(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const logger = pino({ level: 'silent' });
  const manager = new Manager({ logger });
  let transitions = 0;
  const engineStub = {
    queue: { jobFor: () => undefined },
    forgetUnit: () => undefined,
    jobFinished: () => undefined,
  };
  const supervisorStub = { registerOwner: () => undefined, controlHostFor: () => ({}) };
  const mounts = new MountSystem({
    logger,
    manager,
    engine: () => engineStub as never,
    supervisor: supervisorStub as never,
    runtimeDir: path.join(dir, 'run'),
    loadNative: loadNativeMounts,
    stateChanged: () => void transitions++,
  });
  // Time spent applying each update (read + parse + diff are in the monitor's stats).
  const applyMs: number[] = [];
  const apply = (mounts as unknown as { applyUpdate(u: unknown): void }).applyUpdate.bind(mounts);
  (mounts as unknown as { applyUpdate(u: unknown): void }).applyUpdate = (u) => {
    const t = performance.now();
    apply(u);
    applyMs.push(performance.now() - t);
  };
  mounts.startWatching();
  const unitOf = (p: string): MountUnit | undefined => mounts.unit(unitNameFromPath(p, 'mount'));
  const waitUntil = async (check: () => boolean, timeoutMs: number): Promise<number> => {
    const t0 = performance.now();
    while (!check()) {
      if (performance.now() - t0 > timeoutMs) {
        const s = mounts.monitor.stats;
        throw new Error(
          `timed out after ${timeoutMs} ms (reads ${s.reads}, wakeups ${s.wakeups}, mounts ${s.mounts})`,
        );
      }
      await new Promise((r) => setImmediate(r));
    }
    return performance.now();
  };

  // --- 1,000 tmpfs mounts present ---
  const base = path.join(dir, 'base');
  fs.mkdirSync(base);
  sh(
    `cd ${base} && i=0; while [ $i -lt ${BASE_MOUNTS} ]; do mkdir d$i && mount -t tmpfs -o size=4k t d$i || exit 1; i=$((i+1)); done`,
  );
  await waitUntil(() => unitOf(path.join(base, `d${BASE_MOUNTS - 1}`))?.state === 'mounted', 30_000);
  const tableSize = mounts.monitor.current().size;

  // --- one change at a time ---
  const peer1 = findmntPeer();
  await peer1.ready;
  const one = path.join(dir, 'one');
  fs.mkdirSync(one);
  const latency: number[] = [];
  const cost: number[] = [];
  const peerLatency: number[] = [];
  for (let i = 0; i < SINGLE_REPS; i++) {
    const mounting = i % 2 === 0;
    const readsBefore = mounts.monitor.stats.totalReadMs;
    const appliesBefore = applyMs.length;
    const peerBefore = peer1.lines.length;
    spawnSync(mounting ? 'mount' : 'umount', mounting ? ['-t', 'tmpfs', '-o', 'size=4k', 't', one] : [one]);
    const tExit = performance.now();
    const tUnit = await waitUntil(() => (unitOf(one)?.state === 'mounted') === mounting, 5000);
    latency.push(tUnit - tExit);
    cost.push(
      mounts.monitor.stats.totalReadMs -
        readsBefore +
        applyMs.slice(appliesBefore).reduce((a, b) => a + b, 0),
    );
    const tPeer = await waitUntil(() => peer1.lines.length > peerBefore, 5000).catch(() => NaN);
    peerLatency.push((peer1.lines[peerBefore] ?? tPeer) - tExit);
    await sleep(20);
  }
  peer1.stop();

  // --- storm: 2,000 bind mounts by one shell loop, then their unmount ---
  const storm = path.join(dir, 'storm');
  const src = path.join(dir, 'src');
  fs.mkdirSync(storm);
  fs.mkdirSync(src);
  sh(`cd ${storm} && i=0; while [ $i -lt ${STORM} ]; do mkdir b$i; i=$((i+1)); done`);
  const peer2 = findmntPeer();
  await peer2.ready;
  const runStorm = async (mounting: boolean): Promise<Record<string, number>> => {
    const statsBefore = { ...mounts.monitor.stats };
    const peerBefore = peer2.lines.length;
    let maxLag = 0;
    let last = performance.now();
    const lagTimer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 1);
      last = now;
    }, 1);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const script = mounting
      ? `cd ${storm} && i=0; while [ $i -lt ${STORM} ]; do mount --bind ${src} b$i || exit 1; i=$((i+1)); done`
      : `cd ${storm} && i=0; while [ $i -lt ${STORM} ]; do umount b$i || exit 1; i=$((i+1)); done`;
    const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
    const exited = new Promise<number>((r) => child.once('exit', () => r(performance.now())));
    const lastName = path.join(storm, `b${STORM - 1}`);
    const consistent = await waitUntil(() => {
      if ((unitOf(lastName)?.state === 'mounted') !== mounting) return false;
      for (let i = 0; i < STORM; i += 97)
        if ((unitOf(path.join(storm, `b${i}`))?.state === 'mounted') !== mounting) return false;
      return true;
    }, 600_000);
    const tExit = await exited;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(lagTimer);
    const peerDone = await waitUntil(() => peer2.lines.length - peerBefore >= STORM, 30_000).catch(() => NaN);
    const s = mounts.monitor.stats;
    return {
      scriptMs: Math.round(tExit - t0),
      consistentMs: Math.round(consistent - t0),
      afterScriptExitMs: Math.round((consistent - tExit) * 10) / 10,
      reads: s.reads - statsBefore.reads,
      wakeups: s.wakeups - statsBefore.wakeups,
      readCpuMs: Math.round(s.totalReadMs - statsBefore.totalReadMs),
      maxReadMs: Math.round(s.maxReadMs * 10) / 10,
      daemonCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      maxLoopLagMs: Math.round(maxLag * 10) / 10,
      peerFindmntDoneMs: Number.isNaN(peerDone) ? -1 : Math.round(peerDone - t0),
      peerFindmntLines: peer2.lines.length - peerBefore,
    };
  };
  const stormMount = await runStorm(true);
  const stormUmount = await runStorm(false);
  peer2.stop();
  const unitCount = manager.unitCount();
  mounts.close();
  done();

  const r1 = (xs: number[], p: number): number => Math.round(percentile(xs, p) * 100) / 100;
  return {
    benchmark: 'mountinfo',
    host: hostInfo(),
    mountsPresent: tableSize,
    unitsAtEnd: unitCount,
    transitions,
    oneChange: {
      repetitions: SINGLE_REPS,
      processCostMs: { p50: r1(cost, 50), p99: r1(cost, 99) },
      latencyMountExitToUnitMs: { p50: r1(latency, 50), p99: r1(latency, 99) },
      peerFindmntPollMs: { p50: r1(peerLatency, 50), p99: r1(peerLatency, 99) },
    },
    storm: { bindMounts: STORM, mount: stormMount, umount: stormUmount },
    note: 'in-process MountSystem with a stub job engine; peer is util-linux findmnt --poll (libmount monitor) reading the same changes in the same run',
  };
}

runBenchmark(main);
