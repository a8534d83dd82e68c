// Coldplug: enumerate /sys and fill the registry and the device units, as the daemon does at
// start-up (new DevicePipeline → coldplug(), with changes$ feeding a Manager). The peer is udev's
// own enumeration (`udevadm trigger --dry-run --verbose`) when udevadm exists, else a shell loop
// that lists the same entries and reads every `uevent` file: the floor of doing it from a script.
import * as fs from 'node:fs';
import pino from 'pino';
import { DevicePipeline } from '../src/devices/device-pipeline';
import { Manager } from '../src/core/manager';
import { hostInfo, runBenchmark } from './lib/report';
import { median, percentile, round } from './lib/stats';
import { runCommand } from './lib/proc';

const RUNS = 25;
const PEER_RUNS = 20;
const SHELL_PEER_RUNS = 10; // one `cat` per device: each run forks hundreds of processes
const TARGET_MS = 100;
const UDEVADM_CANDIDATES = ['/usr/bin/udevadm', '/bin/udevadm', '/sbin/udevadm', '/usr/sbin/udevadm'];
const SHELL_FLOOR =
  'for f in $(find /sys/bus/*/devices /sys/class/*/ -mindepth 1 -maxdepth 1); do cat $f/uevent; done';

const silent = pino({ level: 'silent' });

interface ColdplugRun {
  ms: number;
  /** The pipeline's own figure (scan + registry), without the manager's share. */
  pipelineMs: number;
  devices: number;
  units: number;
  errors: number;
}

function runColdplug(): ColdplugRun {
  const t0 = performance.now();
  const pipeline = new DevicePipeline({ logger: silent });
  const manager = new Manager({ logger: silent });
  const sub = pipeline.changes$.subscribe((c) => manager.applyDeviceChange(c));
  const result = pipeline.coldplug();
  const ms = performance.now() - t0;
  sub.unsubscribe();
  return {
    ms,
    pipelineMs: result.ms,
    devices: result.devices,
    units: manager.unitCount(),
    errors: result.errors,
  };
}

interface PeerFigures {
  name: string;
  command: string;
  runs: number;
  medianMs: number;
  p95Ms: number;
  /** Lines printed: devices for udevadm, uevent lines for the shell loop. */
  outputLines: number;
  failures: number;
  /** Median of spawning /bin/true the same way: the fixed cost inside every peer run. */
  spawnFloorMs: number;
  note: string;
}

async function timeCommand(
  command: string,
  args: string[],
  runs: number,
  checkExit = true,
): Promise<{ ms: number[]; lines: number; failures: number }> {
  const ms: number[] = [];
  let lines = 0;
  let failures = 0;
  for (let i = 0; i < runs; i++) {
    const r = await runCommand(command, args, { timeoutMs: 60_000 });
    if (r.timedOut || (checkExit && r.code !== 0)) failures++;
    ms.push(r.ms);
    lines = r.stdout.split('\n').filter((l) => l.length > 0).length;
  }
  return { ms, lines, failures };
}

async function measurePeer(): Promise<PeerFigures> {
  const spawnFloor = await timeCommand('/bin/true', [], 10);
  const udevadm = UDEVADM_CANDIDATES.find((p) => fs.existsSync(p));
  const figures = (
    name: string,
    command: string,
    t: { ms: number[]; lines: number; failures: number },
    note: string,
  ): PeerFigures => ({
    name,
    command,
    runs: t.ms.length,
    medianMs: round(median(t.ms), 2),
    p95Ms: round(percentile(t.ms, 95), 2),
    outputLines: t.lines,
    failures: t.failures,
    spawnFloorMs: round(median(spawnFloor.ms), 2),
    note,
  });
  if (udevadm !== undefined) {
    const version = (await runCommand(udevadm, ['--version'], { timeoutMs: 10_000 })).stdout.trim();
    const t = await timeCommand(udevadm, ['trigger', '--dry-run', '--verbose'], PEER_RUNS);
    return figures(
      `udevadm ${version} (enumeration only)`,
      `${udevadm} trigger --dry-run --verbose`,
      t,
      "udev's coldplug enumeration (what `udevadm trigger` walks before writing): lists and filters devices and " +
        'prints each syspath; fills no database; includes process start-up (see spawnFloorMs)',
    );
  }
  // The loop's status is the last cat's; entries without a `uevent` file are expected, so it is not checked.
  const t = await timeCommand('sh', ['-c', `${SHELL_FLOOR} 2>/dev/null`], SHELL_PEER_RUNS, false);
  return figures(
    'shell floor (udevadm not installed)',
    SHELL_FLOOR,
    t,
    'lists the bus/class entries and reads every uevent file with one cat per device; no registry',
  );
}

async function main(): Promise<object> {
  const first = runColdplug(); // cold caches and JIT: reported apart, not in the statistics
  const runs: ColdplugRun[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(runColdplug());
  const ms = runs.map((r) => r.ms);
  const med = median(ms);
  const last = runs[runs.length - 1];
  const peer = await measurePeer();
  return {
    benchmark: 'coldplug',
    host: hostInfo(),
    what: 'new DevicePipeline().coldplug() (list /sys/bus/*/devices and /sys/class/*, read each uevent, subsystem and driver links, fill the registry) + Manager fed by changes$ (device units), in-process',
    runs: RUNS,
    firstRunMs: round(first.ms, 2),
    medianMs: round(med, 2),
    p95Ms: round(percentile(ms, 95), 2),
    minMs: round(Math.min(...ms), 2),
    pipelineOnlyMedianMs: round(median(runs.map((r) => r.pipelineMs)), 2),
    devices: last.devices,
    deviceUnits: last.units,
    scanErrors: last.errors,
    target: { medianMs: TARGET_MS },
    meetsTarget: med < TARGET_MS,
    peer,
  };
}

runBenchmark(main);
