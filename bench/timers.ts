// bench/timers: 10,000 armed .timer units in one daemon (unit files generated in a temporary unit
// directory: OnCalendar= at spread times of day and weekdays, OnActiveSec= of 1-3 h), its RSS and
// start-up time, and wake-up accuracy: 300 more timers with OnCalendar= at exact seconds over the
// next ~25 s (AccuracySec=1us, so the figure is triggerd's own scheduling, not systemd's
// coalescing) start a oneshot that stamps CLOCK_REALTIME in ns; latency = stamp - elapse (it
// includes forking /bin/sh and date). RSS is compared with the same daemon on an empty unit path.
// Peer: systemd's timers cannot be measured here (systemd cannot run as PID 1 in this machine, and
// a --user manager needs a login session and bus), which the JSON says.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBenchmark, hostInfo } from './lib/report';
import { OWN_RULES, startTriggerd } from './lib/triggerd-daemon';
import { onCleanup } from './lib/cleanup';
import { percentile, round, median, kibToMb } from './lib/stats';
import { sleep, statusKiB } from './lib/proc';

const ARMED = Number(process.env.TRIGGERD_BENCH_TIMERS ?? 10_000);
const FIRING = Number(process.env.TRIGGERD_BENCH_TIMERS_FIRING ?? 300);
/** Firing timers elapse over this many seconds, starting LEAD_S after they are started. */
const SPREAD_S = 20;
const LEAD_S = 5;

const two = (n: number): string => String(n).padStart(2, '0');
const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function writeArmed(units: string, stampFile: string): void {
  const wants = path.join(units, 'timers.target.wants');
  fs.mkdirSync(wants, { recursive: true });
  // Plain services, not instances of a template: the engine loads only what the unit path lists.
  fs.writeFileSync(path.join(units, 'armed.service'), stampService('armed', stampFile));
  for (let i = 0; i < ARMED; i++) {
    const name = `armed-${i}.timer`;
    // Half calendar (a time of day, some on weekdays only), half monotonic (1-3 h from now).
    const value =
      i % 2 === 0
        ? `OnCalendar=${i % 4 === 0 ? `${WEEKDAYS[i % 7]} ` : ''}*-*-* ${two((i >> 1) % 24)}:${two((i >> 3) % 60)}:${two(i % 60)}`
        : `OnActiveSec=${3600 + (i % 7200)}s`;
    fs.writeFileSync(
      path.join(units, name),
      `[Unit]\nDescription=armed ${i}\n\n[Timer]\n${value}\nUnit=armed.service\n`,
    );
    fs.symlinkSync(path.join(units, name), path.join(wants, name));
  }
}

function stampService(who: string, stampFile: string): string {
  return `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ${who} $$(date +%%s%%N) >> ${stampFile}'\n`;
}

/** OnCalendar= at whole UTC seconds from `startSec`; returns each timer's elapse (µs). */
function writeFiring(units: string, startSec: number, stampFile: string): Map<string, number> {
  const elapses = new Map<string, number>();
  for (let i = 0; i < FIRING; i++) {
    const at = new Date((startSec + (i % SPREAD_S)) * 1000);
    const expr = `${at.getUTCFullYear()}-${two(at.getUTCMonth() + 1)}-${two(at.getUTCDate())} ${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())} UTC`;
    fs.writeFileSync(path.join(units, `fire-${i}.timer`), `[Timer]\nOnCalendar=${expr}\nAccuracySec=1us\n`);
    fs.writeFileSync(path.join(units, `fire-${i}.service`), stampService(`fire${i}`, stampFile));
    elapses.set(`fire${i}`, at.getTime() * 1000);
  }
  return elapses;
}

function readStamps(file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const [who, ns] = line.trim().split(' ');
    if (who !== undefined && ns !== undefined && /^\d+$/.test(ns) && !out.has(who)) out.set(who, BigInt(ns));
  }
  return out;
}

async function baselineRssMB(): Promise<number> {
  const d = await startTriggerd(OWN_RULES);
  try {
    await sleep(1500);
    return kibToMb(statusKiB(d.pid, 'VmRSS') ?? 0);
  } finally {
    await d.stop();
  }
}

async function main(): Promise<object> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-timers-'));
  onCleanup('remove the timer bench directory', () => fs.rmSync(work, { recursive: true, force: true }));
  const units = path.join(work, 'units');
  const stampFile = path.join(work, 'stamps');
  fs.mkdirSync(units);
  const tGen = performance.now();
  writeArmed(units, stampFile);
  const generateMs = performance.now() - tGen;

  const baseline = await baselineRssMB();
  const daemon = await startTriggerd(OWN_RULES, { unitPath: units });
  try {
    const list = (await daemon.request('list-timers', { all: true })) as {
      unit: string;
      sub: string;
      next: number;
    }[];
    const waiting = list.filter((r) => r.sub === 'waiting').length;
    await sleep(1000);
    const rssArmedMB = kibToMb(statusKiB(daemon.pid, 'VmRSS') ?? 0);

    // The firing timers: written now, loaded by daemon-reload, started in one request.
    const startSec = Math.ceil(Date.now() / 1000) + LEAD_S;
    const elapses = writeFiring(units, startSec, stampFile);
    const tReload = performance.now();
    await daemon.request('daemon-reload');
    const reloadMs = performance.now() - tReload;
    await daemon.request('start', {
      names: [...elapses.keys()].map((k) => `fire-${k.slice(4)}.timer`),
      noBlock: true,
    });
    const deadline = Date.now() + (LEAD_S + SPREAD_S + 15) * 1000;
    let stamps = readStamps(stampFile);
    while (Date.now() < deadline && [...elapses.keys()].some((k) => !stamps.has(k))) {
      await sleep(250);
      stamps = readStamps(stampFile);
    }
    const latencies: number[] = [];
    let early = 0;
    for (const [who, elapse] of elapses) {
      const ns = stamps.get(who);
      if (ns === undefined) continue;
      const ms = Number(ns / 1000n - BigInt(elapse)) / 1000;
      if (ms < 0) early++;
      latencies.push(ms);
    }
    const armedStarted = [...stamps.keys()].filter((k) => k.startsWith('armed')).length;
    const rssAfterMB = kibToMb(statusKiB(daemon.pid, 'VmRSS') ?? 0);
    const hwmMB = kibToMb(statusKiB(daemon.pid, 'VmHWM') ?? 0);
    return {
      benchmark: 'timers',
      host: hostInfo(),
      timers: { armed: ARMED, waitingAfterStart: waiting, firing: FIRING, firingSpreadS: SPREAD_S },
      startup: {
        generateUnitFilesMs: round(generateMs, 0),
        daemonReadyMs: round(daemon.readyMs, 0),
        daemonReloadMs: round(reloadMs, 0),
      },
      rss: {
        emptyUnitPathMB: round(baseline, 1),
        armedMB: round(rssArmedMB, 1),
        perTimerKB: round(((rssArmedMB - baseline) * 1024) / ARMED, 2),
        afterFiringMB: round(rssAfterMB, 1),
        peakMB: round(hwmMB, 1),
      },
      wakeUp: {
        what: 'OnCalendar= elapse (AccuracySec=1us) to the job stamping CLOCK_REALTIME (sh + date forked)',
        fired: latencies.length,
        missed: FIRING - latencies.length,
        early,
        p50Ms: latencies.length > 0 ? round(median(latencies), 2) : null,
        p99Ms: latencies.length > 0 ? round(percentile(latencies, 99), 2) : null,
        maxMs: latencies.length > 0 ? round(Math.max(...latencies), 2) : null,
        armedTimersThatFired: armedStarted,
      },
      peer: {
        name: 'systemd',
        measured: false,
        reason:
          'systemd cannot run as PID 1 in this machine and a systemd --user manager needs a login session ' +
          'and a user bus; no systemd timer figure was measured in this run',
      },
    };
  } finally {
    await daemon.stop();
  }
}

runBenchmark(main);
