// Event storm: 50 loop devices holding labelled ext4 images, then 20 rounds of
// `udevadm trigger --action=change --subsystem-match=block` (the same kernel events as
// `triggerctl trigger`), each followed by a settle. Measured for triggerd standalone with Debian's
// rules (the figure the target uses), triggerd with the project's own rules, and Debian's
// systemd-udevd standalone with Debian's rules, one after the other in the same run (never two at
// once: both write /dev links). Processed events are counted on netlink group 2 (what libudev
// consumers receive); events/s = processed events / Σ(trigger start → settled) over the rounds.
// Peak RSS = the daemon plus every process below it, sampled every 50 ms during the rounds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNative } from '../src/native/addon';
import type { NativeNetlink } from '../src/native/types';
import { onCleanup } from './lib/cleanup';
import { byUuidLink, createImages, LoopSet, type Attachment } from './lib/ext4-loops';
import { PeakSampler, treeSample } from './lib/process-tree';
import { runCommand, sleep, statusKiB } from './lib/proc';
import { hostInfo, runBenchmark } from './lib/report';
import { kibToMb, median, round } from './lib/stats';
import {
  debianRulesPath,
  OWN_RULES,
  startTriggerd,
  TRIGGERCTL,
  type DaemonStatus,
  type RunningTriggerd,
} from './lib/triggerd-daemon';
import { UdevMonitor } from './lib/udev-monitor';
import { ensureUdev, installAllowed, startUdevd, type UdevTools } from './lib/udevd';

const LOOP_DEVICES = 50;
const ROUNDS = 20;
const WARMUP_ROUNDS = 1;
/** Rounds through the real `triggerctl` CLI (Node start-up twice per round), reported apart. */
const CLI_ROUNDS = 5;
const SAMPLE_MS = 50;
const TARGET_RATIO = 2;
const TRIGGER_ARGS = ['trigger', '--action=change', '--subsystem-match=block'];

interface RoundsFigures {
  rounds: number;
  /** Devices `udevadm trigger` wrote `change` to per round (every block device, not only ours). */
  devicesPerRound: number;
  expectedEvents: number;
  /** Processed events seen on netlink group 2 during the rounds. */
  processedEvents: number;
  processedWhenSettled: number;
  /** Of those, events of the 50 loop devices holding our images. */
  loopImageEvents: number;
  byAction: Record<string, number>;
  /** Kernel uevents emitted during the rounds (all subsystems; other activity included). */
  kernelEvents: number;
  ms: number;
  eventsPerSec: number;
  roundMs: { median: number; min: number; max: number };
  failures: number;
  monitorOverflows: number;
}

async function countTriggerDevices(tools: UdevTools): Promise<number> {
  const r = await runCommand(tools.udevadm, [...TRIGGER_ARGS, '--dry-run', '--verbose'], {
    timeoutMs: 30_000,
  });
  return r.stdout.split('\n').filter((l) => l.startsWith('/sys/')).length;
}

async function triggerRounds(
  tools: UdevTools,
  rounds: number,
  perRound: number,
  monitor: UdevMonitor,
  loopDevpaths: ReadonlySet<string>,
  settle: () => Promise<boolean>,
  onRound?: () => void,
): Promise<RoundsFigures> {
  monitor.mark(loopDevpaths);
  const roundMs: number[] = [];
  let failures = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const trig = await runCommand(tools.udevadm, TRIGGER_ARGS, { timeoutMs: 30_000 });
    if (trig.code !== 0) failures++;
    if (!(await settle())) failures++;
    roundMs.push(performance.now() - t0);
    onRound?.();
  }
  // Seen by the time the last settle returned: below processedEvents means settle came back early.
  const processedWhenSettled = monitor.counted;
  await sleep(100); // the monitor socket drains into the counter (not timed)
  const ms = roundMs.reduce((a, b) => a + b, 0);
  return {
    rounds,
    devicesPerRound: perRound,
    expectedEvents: perRound * rounds,
    processedEvents: monitor.counted,
    processedWhenSettled,
    loopImageEvents: monitor.workload,
    byAction: { ...monitor.byAction },
    kernelEvents: monitor.kernelEventsSinceMark(),
    ms: round(ms),
    eventsPerSec: Math.round((monitor.counted / ms) * 1000),
    roundMs: {
      median: round(median(roundMs)),
      min: round(Math.min(...roundMs)),
      max: round(Math.max(...roundMs)),
    },
    failures,
    monitorOverflows: monitor.overflows,
  };
}

/** How many by-uuid links point at the device holding that image. */
function checkLinks(attachments: readonly Attachment[]): {
  ok: number;
  missing: number;
  wrongTarget: number;
} {
  let ok = 0;
  let missing = 0;
  let wrongTarget = 0;
  for (const a of attachments) {
    let target: string;
    try {
      target = fs.readlinkSync(byUuidLink(a.image));
    } catch {
      missing++;
      continue;
    }
    if (path.basename(target) === path.basename(a.device)) ok++;
    else wrongTarget++;
  }
  return { ok, missing, wrongTarget };
}

interface Context {
  tools: UdevTools;
  native: NativeNetlink;
  monitor: UdevMonitor;
  perRound: number;
  loopDevpaths: ReadonlySet<string>;
  attachments: Attachment[];
}

async function measureTriggerd(
  ctx: Context,
  label: string,
  rulesPath: string,
): Promise<Record<string, unknown>> {
  const daemon = await startTriggerd(rulesPath);
  let stopped: Awaited<ReturnType<RunningTriggerd['stop']>> | undefined;
  try {
    const settle = async (): Promise<boolean> => (await daemon.settle(60_000)).settled;
    const idle = treeSample(daemon.pid, true);
    const linksAfterColdplug = checkLinks(ctx.attachments);
    const warm = await triggerRounds(
      ctx.tools,
      WARMUP_ROUNDS,
      ctx.perRound,
      ctx.monitor,
      ctx.loopDevpaths,
      settle,
    );
    const before: DaemonStatus = await daemon.status();
    const sampler = new PeakSampler(daemon.pid, SAMPLE_MS).start();
    const rounds = await triggerRounds(
      ctx.tools,
      ROUNDS,
      ctx.perRound,
      ctx.monitor,
      ctx.loopDevpaths,
      settle,
      () => sampler.sample(),
    );
    sampler.stop();
    const after: DaemonStatus = await daemon.status();
    const hwmKiB = statusKiB(daemon.pid, 'VmHWM') ?? 0;
    const links = checkLinks(ctx.attachments);
    const cli = await cliRounds(daemon);
    stopped = await daemon.stop();
    return {
      name: `triggerd (${label})`,
      rulesPath,
      ruleFiles: after.ruleFiles.length,
      readyMs: round(daemon.readyMs),
      coldplugMs: round(after.uevents.coldplugMs),
      byUuidLinksAfterColdplug: linksAfterColdplug,
      idle: { rssMB: kibToMb(idle.rssKiB), pssMB: kibToMb(idle.pssKiB), processes: idle.processes },
      warmup: { rounds: warm.rounds, ms: warm.ms, processedEvents: warm.processedEvents },
      triggerRounds: {
        ...rounds,
        settle: 'control-socket request "settle" on one connection (what `triggerctl settle` sends)',
        daemonReceived: after.uevents.received - before.uevents.received,
        daemonOverflows: after.uevents.overflows - before.uevents.overflows,
        daemonResyncs: after.uevents.resyncs - before.uevents.resyncs,
      },
      peak: {
        rssMB: kibToMb(sampler.peakRssKiB),
        processes: sampler.peakProcesses,
        samples: sampler.samples,
        daemonVmHwmMB: kibToMb(hwmKiB),
        what: `triggerd + every descendant: sum of VmRSS, sampled every ${SAMPLE_MS} ms and after each round`,
      },
      byUuidLinksAfterRounds: links,
      viaTriggerctlCli: cli,
      exit: { code: stopped.exitCode, signal: stopped.signal, forced: stopped.forced },
      logLinesAtWarn: daemon.logLines(),
      logTail: daemon.logTail().slice(-3),
    };
  } finally {
    if (stopped === undefined) await daemon.stop();
  }
}

/** `triggerctl trigger --subsystem-match block --action change --settle`, end to end (reported apart). */
async function cliRounds(daemon: RunningTriggerd): Promise<object> {
  const ms: number[] = [];
  let failures = 0;
  for (let i = 0; i < CLI_ROUNDS; i++) {
    const r = await runCommand(
      process.execPath,
      [
        TRIGGERCTL,
        '--socket',
        daemon.socket,
        'trigger',
        '--subsystem-match',
        'block',
        '--action',
        'change',
        '--settle',
      ],
      { timeoutMs: 130_000 },
    );
    if (r.code !== 0) failures++;
    ms.push(r.ms);
  }
  return {
    rounds: CLI_ROUNDS,
    medianRoundMs: round(median(ms)),
    failures,
    note: 'node dist/src/cli/triggerctl.js trigger --subsystem-match block --action change --settle per round: includes Node start-up of the CLI',
  };
}

async function measureUdevd(ctx: Context): Promise<Record<string, unknown>> {
  const udevd = await startUdevd(ctx.tools);
  try {
    const settle = async (): Promise<boolean> =>
      (await runCommand(ctx.tools.udevadm, ['settle', '--timeout=60'], { timeoutMs: 70_000 })).code === 0;
    const idle = treeSample(udevd.pid, true);
    const warm = await triggerRounds(
      ctx.tools,
      WARMUP_ROUNDS,
      ctx.perRound,
      ctx.monitor,
      ctx.loopDevpaths,
      settle,
    );
    const sampler = new PeakSampler(udevd.pid, SAMPLE_MS).start();
    const rounds = await triggerRounds(
      ctx.tools,
      ROUNDS,
      ctx.perRound,
      ctx.monitor,
      ctx.loopDevpaths,
      settle,
      () => sampler.sample(),
    );
    sampler.stop();
    const links = checkLinks(ctx.attachments);
    return {
      name: 'systemd-udevd',
      version: ctx.tools.version,
      package: ctx.tools.origin,
      rules: "Debian's (/etc, /usr/local/lib, /lib udev/rules.d) with 80-net-setup-link.rules masked",
      idle: { rssMB: kibToMb(idle.rssKiB), pssMB: kibToMb(idle.pssKiB), processes: idle.processes },
      warmup: { rounds: warm.rounds, ms: warm.ms, processedEvents: warm.processedEvents },
      triggerRounds: { ...rounds, settle: 'udevadm settle --timeout=60' },
      peak: {
        rssMB: kibToMb(sampler.peakRssKiB),
        processes: sampler.peakProcesses,
        samples: sampler.samples,
        what: `udevd + its workers (every descendant): sum of VmRSS, sampled every ${SAMPLE_MS} ms and after each round`,
      },
      byUuidLinksAfterRounds: links,
    };
  } finally {
    const stopped = await udevd.stop();
    if (stopped.forced) process.stderr.write('systemd-udevd ignored SIGTERM for 5 s and was killed\n');
  }
}

function rate(report: Record<string, unknown> | undefined): number | undefined {
  const r = report?.triggerRounds as { eventsPerSec?: number; failures?: number } | undefined;
  return r?.eventsPerSec;
}

function peakRss(report: Record<string, unknown> | undefined): number | undefined {
  return (report?.peak as { rssMB?: number } | undefined)?.rssMB;
}

async function main(): Promise<object> {
  if (process.getuid?.() !== 0) throw new Error('needs root: loop devices, uevent files, /dev links');
  const native = loadNative();
  const avail = await ensureUdev(installAllowed());
  if (!avail.ok) throw new Error(`udevadm is needed to trigger (and udevd is the peer): ${avail.reason}`);
  const tools = avail.tools;

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-storm-'));
  onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  const tag = `st${process.pid.toString(36).slice(-4)}`;
  const images = await createImages(tmp, LOOP_DEVICES, tag);
  const loops = new LoopSet();
  const attachments: Attachment[] = [];
  for (const image of images) attachments.push(await loops.attach(image));
  const loopDevpaths = new Set(attachments.map((a) => `/devices/virtual/block/${path.basename(a.device)}`));
  const perRound = await countTriggerDevices(tools);
  const monitor = new UdevMonitor(native);
  onCleanup('close the group-2 monitor', () => monitor.close());
  const ctx: Context = { tools, native, monitor, perRound, loopDevpaths, attachments };

  const results: Record<string, Record<string, unknown>> = {};
  const errors: Record<string, string> = {};
  // TRIGGERD_STORM_ONLY=triggerdDebianRules,udevd measures only those (for iterating on one).
  const only = process.env.TRIGGERD_STORM_ONLY?.split(',').filter((k) => k !== '');
  const attempt = async (key: string, run: () => Promise<Record<string, unknown>>): Promise<void> => {
    if (only !== undefined && only.length > 0 && !only.includes(key)) {
      errors[key] = 'not measured (TRIGGERD_STORM_ONLY)';
      return;
    }
    try {
      results[key] = await run();
    } catch (err) {
      errors[key] = err instanceof Error ? err.message : String(err);
    }
  };
  await attempt('triggerdDebianRules', () =>
    measureTriggerd(ctx, "Debian's rules", debianRulesPath(path.join(tmp, 'rules-mask'))),
  );
  await attempt('triggerdOwnRules', () => measureTriggerd(ctx, 'own rules', OWN_RULES));
  await attempt('udevd', () => measureUdevd(ctx));

  monitor.close();
  const sweep = loops.close();

  const debian = results.triggerdDebianRules;
  const peer = results.udevd;
  const tRate = rate(debian);
  const uRate = rate(peer);
  const tRss = peakRss(debian);
  const uRss = peakRss(peer);
  const ratio = tRate !== undefined && uRate !== undefined && uRate > 0 ? round(tRate / uRate, 2) : null;
  const ownRate = rate(results.triggerdOwnRules);
  return {
    benchmark: 'storm',
    host: hostInfo(),
    workload:
      `${LOOP_DEVICES} loop devices with 4 MiB labelled ext4 images; ${WARMUP_ROUNDS} warm-up round then ${ROUNDS} rounds of ` +
      `udevadm ${TRIGGER_ARGS.join(' ')} (every block device: ${perRound} per round) + settle; daemons one after the other`,
    loopDevices: `${attachments.length}: ${attachments[0]?.device ?? ''} … ${attachments[attachments.length - 1]?.device ?? ''}`,
    target: { ratioToUdevd: TARGET_RATIO, peakRss: "below udevd's" },
    meetsTarget:
      ratio !== null && ratio >= TARGET_RATIO && tRss !== undefined && uRss !== undefined && tRss < uRss,
    ratio: {
      debianRulesEventsPerSecOverUdevd: ratio,
      ownRulesEventsPerSecOverUdevd:
        ownRate !== undefined && uRate !== undefined && uRate > 0 ? round(ownRate / uRate, 2) : null,
      debianRulesPeakRssOverUdevd:
        tRss !== undefined && uRss !== undefined && uRss > 0 ? round(tRss / uRss, 2) : null,
    },
    triggerdDebianRules: debian ?? { failed: errors.triggerdDebianRules },
    triggerdOwnRules: results.triggerdOwnRules ?? { failed: errors.triggerdOwnRules },
    peer: peer ?? { name: 'systemd-udevd', skipped: `could not run: ${errors.udevd}` },
    staleLinksSwept: sweep.removed.length,
    staleLinksNote:
      'links of our images left after detaching with no daemon running (expected here), removed by the benchmark',
  };
}

runBenchmark(main);
