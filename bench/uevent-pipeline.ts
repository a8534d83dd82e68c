// Uevent throughput, three ways:
// 1. synthetic: ≥ 50,000 kernel-format datagrams modelled on this machine's devices, pushed through
//    the real path (ueventEvents → DevicePipeline → Manager) by a stub NativeNetlink in batches of
//    256, so the figure is triggerd's own parse + registry + unit cost, with no kernel in between;
// 2. real kernel: `change` written to the loop devices' uevent files, read by the real addon;
// 3. the peer, systemd-udevd, on the same real workloads (udevadm trigger rounds + settle, and a
//    burst of writes + settle), with triggerd measured on exactly the same workloads just before.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import pino from 'pino';
import type { Subscription } from 'rxjs';
import type {
  NativeNetlink,
  NativeSystemError,
  NetlinkItem,
  NetlinkMessage,
  UeventSocket,
  UeventSocketOptions,
} from '../src/native/types';
import { loadNative } from '../src/native/addon';
import { ueventEvents } from '../src/events/uevent-events';
import { DevicePipeline } from '../src/devices/device-pipeline';
import { Manager } from '../src/core/manager';
import { encodeKernelUevent } from '../src/devices/uevent-encode';
import { parseNetlinkMessage } from '../src/devices/uevent-parse';
import { readKernelSeqnum, scanSysfs, type SysfsDevice } from '../src/devices/sysfs';
import { hostInfo, runBenchmark } from './lib/report';
import { bytesToMb, kibToMb, median, round } from './lib/stats';
import { runCommand, sleep } from './lib/proc';
import { existingLoopDevices, writeChangeBurst, type LoopDevices } from './lib/loop-devices';
import { WorkloadCounter } from './lib/event-counter';
import { ensureUdev, installAllowed, startUdevd, type UdevTools } from './lib/udevd';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (() => void) | undefined;

const BATCH_SIZE = 256;
const BATCHES = 200; // 51,200 datagrams
const NET_EVERY = 5; // one net add or remove after every 4 device changes: 20 % net churn
const LIVE_NET_DEVICES = 16; // a veth is removed once 16 newer ones exist
const WARMUP_RUNS = 1;
const TIMED_RUNS = 5;
const TARGET_EVENTS_PER_SEC = 100_000;
/** The daemon's default receive buffer (--receive-buffer). */
const RECEIVE_BUFFER_BYTES = 128 * 1024 * 1024;
const REAL_KERNEL_WRITES = 20_000;
const TRIGGER_ROUNDS = 20;
const BURST_WRITES = 2_000;

const silent = pino({ level: 'silent' });

// ---------------------------------------------------------------------------------------------
// 1. Synthetic stream through a stub NativeNetlink

interface Stream {
  batches: NetlinkMessage[][];
  datagrams: number;
  bytes: number;
  changes: number;
  netAdds: number;
  netRemoves: number;
  realDevices: number;
}

function kernelMessage(buffer: Buffer): NetlinkMessage {
  return { kind: 'message', buffer, senderPort: 0, senderGroups: 1, uid: 0, gid: 0, pid: 0 };
}

/** 'change' for the real devices round-robin, interleaved with add/remove of virtual net devices. */
function buildStream(devices: readonly SysfsDevice[], firstSeqnum: number): Stream {
  const total = BATCH_SIZE * BATCHES;
  const messages: NetlinkMessage[] = [];
  let seqnum = firstSeqnum;
  let bytes = 0;
  let changes = 0;
  let netAdds = 0;
  let netRemoves = 0;
  let nextVeth = 0;
  const live: number[] = [];
  const push = (buffer: Buffer): void => {
    messages.push(kernelMessage(buffer));
    bytes += buffer.length;
  };
  const netEvent = (action: 'add' | 'remove', n: number): Buffer => {
    const name = `bveth${n % 4096}`; // ≤ 15 chars (IFNAMSIZ); names recycle, as container veths do
    return encodeKernelUevent({
      action,
      devpath: `/devices/virtual/net/${name}`,
      subsystem: 'net',
      properties: [
        ['INTERFACE', name],
        ['IFINDEX', String(100 + n)],
      ],
      seqnum: seqnum++,
    });
  };
  for (let i = 0; messages.length < total; i++) {
    if (i % NET_EVERY === NET_EVERY - 1) {
      if (live.length >= LIVE_NET_DEVICES && (netAdds + netRemoves) % 2 === 1) {
        push(netEvent('remove', live.shift() as number));
        netRemoves++;
      } else {
        live.push(nextVeth);
        push(netEvent('add', nextVeth++));
        netAdds++;
      }
      continue;
    }
    const device = devices[changes % devices.length];
    push(
      encodeKernelUevent({
        action: 'change',
        devpath: device.devpath,
        subsystem: device.subsystem,
        properties: device.properties,
        seqnum: seqnum++,
      }),
    );
    changes++;
  }
  const batches: NetlinkMessage[][] = [];
  for (let i = 0; i < messages.length; i += BATCH_SIZE) batches.push(messages.slice(i, i + BATCH_SIZE));
  return {
    batches,
    datagrams: messages.length,
    bytes,
    changes,
    netAdds,
    netRemoves,
    realDevices: devices.length,
  };
}

/** The smallest NativeNetlink that lets the benchmark play the addon's role: one onBatch per wake-up. */
class StubNative implements NativeNetlink {
  releaseMemory(): void {}

  private onBatch: ((batch: NetlinkItem[]) => void) | undefined;

  openUeventSocket(
    options: UeventSocketOptions,
    onBatch: (batch: NetlinkItem[]) => void,
    _onError: (error: NativeSystemError) => void,
  ): UeventSocket {
    this.onBatch = onBatch;
    return {
      portId: 4242,
      receiveBufferBytes: options.receiveBufferBytes,
      pause: () => undefined,
      resume: () => undefined,
      send: (buffer: Buffer) => buffer.length,
      close: () => {
        this.onBatch = undefined;
      },
      unref: () => undefined,
      ref: () => undefined,
    };
  }

  /** What the addon does on one readiness wake-up. */
  deliver(batch: NetlinkItem[]): void {
    if (this.onBatch === undefined) throw new Error('stub socket is not open');
    this.onBatch(batch);
  }

  peerCredentials(): never {
    throw new Error('peerCredentials is not used by this benchmark');
  }
}

interface SyntheticRun {
  ms: number;
  eventsPerSec: number;
  received: number;
  rejected: number;
  devices: number;
  units: number;
}

/** One run over a fresh, coldplugged pipeline and manager (coldplug is not timed). */
function runSynthetic(stream: Stream): SyntheticRun {
  const pipeline = new DevicePipeline({ logger: silent });
  const manager = new Manager({ logger: silent });
  const subs: Subscription[] = [pipeline.changes$.subscribe((c) => manager.applyDeviceChange(c))];
  pipeline.coldplug();
  const stub = new StubNative();
  subs.push(
    ueventEvents(stub, { expect: 'kernel', receiveBufferBytes: RECEIVE_BUFFER_BYTES }).subscribe((item) =>
      pipeline.handle(item),
    ),
  );
  const t0 = performance.now();
  for (const batch of stream.batches) stub.deliver(batch);
  const ms = performance.now() - t0;
  for (const s of subs) s.unsubscribe();
  const rejected = Object.values(pipeline.stats.rejected).reduce((a, b) => a + b, 0);
  return {
    ms: round(ms, 2),
    eventsPerSec: Math.round((pipeline.stats.received / ms) * 1000),
    received: pipeline.stats.received,
    rejected,
    devices: pipeline.registry.size,
    units: manager.unitCount(),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. triggerd on the real kernel socket

/** Wraps the real addon to sum the time spent in onBatch: parse + pipeline + manager, all of JS. */
class BusyTimedNative implements NativeNetlink {
  releaseMemory(): void {}

  busyMs = 0;

  constructor(private readonly inner: NativeNetlink) {}

  openUeventSocket(
    options: UeventSocketOptions,
    onBatch: (batch: NetlinkItem[]) => void,
    onError: (error: NativeSystemError) => void,
  ): UeventSocket {
    const timed = (batch: NetlinkItem[]): void => {
      const t0 = performance.now();
      try {
        onBatch(batch);
      } finally {
        this.busyMs += performance.now() - t0;
      }
    };
    return this.inner.openUeventSocket(options, timed, onError);
  }

  peerCredentials(fd: number): ReturnType<NativeNetlink['peerCredentials']> {
    return this.inner.peerCredentials(fd);
  }
}

/** The daemon's uevent path on the real addon, with a counter of one workload's events. */
class TriggerdListener {
  readonly counter: WorkloadCounter;
  readonly pipeline = new DevicePipeline({ logger: silent });
  private readonly manager = new Manager({ logger: silent });
  private readonly subs: Subscription[] = [];
  readonly native: BusyTimedNative;
  /** The source failed (socket could not open); reported instead of thrown from a callback. */
  sourceError: string | undefined;

  constructor(native: NativeNetlink, loops: LoopDevices) {
    this.counter = new WorkloadCounter(loops.devpaths);
    this.native = new BusyTimedNative(native);
    this.subs.push(this.pipeline.changes$.subscribe((c) => this.manager.applyDeviceChange(c)));
    this.subs.push(this.pipeline.events$.subscribe((e) => this.counter.observe(e)));
    // Open before coldplug, as the daemon does.
    this.subs.push(
      ueventEvents(this.native, { expect: 'kernel', receiveBufferBytes: RECEIVE_BUFFER_BYTES }).subscribe({
        next: (item) => this.pipeline.handle(item),
        error: (err: unknown) => {
          this.sourceError = err instanceof Error ? err.message : String(err);
        },
      }),
    );
    this.pipeline.coldplug();
  }

  close(): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }
}

interface BurstFigures {
  writes: number;
  writeErrors: number;
  received: number;
  lost: number;
  writeMs: number;
  /** First write → last event processed (triggerd) or `udevadm settle` returned (udevd). */
  ms: number;
  eventsPerSec: number;
  /** Kernel events during the measurement that were not the workload's (see WorkloadCounter). */
  foreignKernelEvents: number;
}

interface TriggerdBurstFigures extends BurstFigures {
  /** Time inside onBatch (parse + pipeline + manager) during the burst: triggerd's share of the CPU. */
  jsBusyMs: number;
  eventsPerJsBusySec: number;
}

async function triggerdBurst(
  listener: TriggerdListener,
  loops: LoopDevices,
  writes: number,
): Promise<TriggerdBurstFigures> {
  const { counter } = listener;
  counter.mark();
  const busy0 = listener.native.busyMs;
  const burst = await writeChangeBurst(loops.ueventFiles, writes);
  await counter.waitFor(writes - burst.errors, 3000, 60_000);
  const ms = counter.lastAt - burst.startedAt;
  const busyMs = listener.native.busyMs - busy0;
  return {
    writes,
    writeErrors: burst.errors,
    received: counter.counted,
    lost: writes - burst.errors - counter.counted,
    writeMs: round(burst.writeMs),
    ms: round(ms),
    eventsPerSec: Math.round((counter.counted / ms) * 1000),
    foreignKernelEvents: counter.foreignKernelEvents(),
    jsBusyMs: round(busyMs),
    eventsPerJsBusySec: Math.round((counter.counted / busyMs) * 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// 3. The same real workloads for triggerd and udevd

const TRIGGER_ARGS = ['trigger', '--action=change', '--subsystem-match=block', '--sysname-match=loop*'];

interface RoundsFigures {
  rounds: number;
  devicesPerRound: number;
  events: number;
  received: number;
  ms: number;
  eventsPerSec: number;
  failures: number;
  foreignKernelEvents: number;
}

/** How many devices one trigger round touches, by udevadm's own enumeration. */
async function devicesPerRound(tools: UdevTools): Promise<number> {
  const r = await runCommand(tools.udevadm, [...TRIGGER_ARGS, '--dry-run', '--verbose'], {
    timeoutMs: 30_000,
  });
  return r.stdout.split('\n').filter((l) => l.startsWith('/sys/')).length;
}

/**
 * `rounds` × (udevadm trigger, then wait): for udevd the wait is `udevadm settle`; for triggerd it
 * is the pipeline having processed that round's events (what `triggerctl settle` waits for).
 */
async function triggerRounds(
  tools: UdevTools,
  perRound: number,
  counter: WorkloadCounter,
  settle: 'udevadm' | 'counter',
  onRound?: () => void,
): Promise<RoundsFigures> {
  counter.mark();
  let failures = 0;
  const t0 = performance.now();
  for (let r = 0; r < TRIGGER_ROUNDS; r++) {
    const trig = await runCommand(tools.udevadm, TRIGGER_ARGS, { timeoutMs: 30_000 });
    if (trig.code !== 0) failures++;
    if (settle === 'udevadm') {
      const s = await runCommand(tools.udevadm, ['settle', '--timeout=60'], { timeoutMs: 70_000 });
      if (s.code !== 0) failures++;
    } else if (!(await counter.waitFor(perRound * (r + 1), 3000, 30_000))) {
      failures++;
    }
    onRound?.();
  }
  const ms = performance.now() - t0;
  const events = perRound * TRIGGER_ROUNDS;
  return {
    rounds: TRIGGER_ROUNDS,
    devicesPerRound: perRound,
    events,
    received: counter.counted,
    ms: round(ms),
    eventsPerSec: Math.round((events / ms) * 1000),
    failures,
    foreignKernelEvents: counter.foreignKernelEvents(),
  };
}

/** udevd's processed events as libudev consumers see them (netlink group 2), counted. */
function openUdevMonitor(
  native: NativeNetlink,
  counter: WorkloadCounter,
): { close(): void; overflows(): number } {
  let overflows = 0;
  const socket = native.openUeventSocket(
    { groups: 2, receiveBufferBytes: RECEIVE_BUFFER_BYTES },
    (batch) => {
      for (const item of batch) {
        if (item.kind === 'overflow') {
          overflows++;
          continue;
        }
        const parsed = parseNetlinkMessage(item, 'udev');
        if (parsed.ok) counter.observe(parsed.event);
      }
    },
    () => undefined,
  );
  return { close: () => socket.close(), overflows: () => overflows };
}

interface PeerReport {
  name: string;
  skipped?: string;
  [key: string]: unknown;
}

async function measureUdevd(
  tools: UdevTools,
  native: NativeNetlink,
  loops: LoopDevices,
  perRound: number,
): Promise<PeerReport> {
  const base = {
    name: 'systemd-udevd',
    version: tools.version,
    package: tools.origin,
    includes:
      "Debian's rules (80-net-setup-link masked) and builtins for every event, run in worker processes; " +
      'events are counted on netlink group 2 as libudev consumers receive them',
  };
  const tStart = performance.now();
  const udevd = await startUdevd(tools);
  const startMs = performance.now() - tStart;
  const counter = new WorkloadCounter(loops.devpaths);
  let monitor: ReturnType<typeof openUdevMonitor> | undefined;
  let peakRss = 0;
  let peakPss = 0;
  let peakProcesses = 0;
  const sample = (): void => {
    const m = udevd.memory();
    peakRss = Math.max(peakRss, m.rssKiB);
    peakPss = Math.max(peakPss, m.pssKiB);
    peakProcesses = Math.max(peakProcesses, m.processes);
  };
  try {
    monitor = openUdevMonitor(native, counter);
    await sleep(1000);
    const idle = udevd.memory();
    const rounds = await triggerRounds(tools, perRound, counter, 'udevadm', sample);
    await sleep(100); // let the monitor socket drain into the counter
    const roundsReceived = counter.counted;
    const roundsForeign = counter.foreignKernelEvents();
    counter.mark();
    const burstStart = performance.now();
    const burst = await writeChangeBurst(loops.ueventFiles, BURST_WRITES);
    sample();
    const settle = await runCommand(tools.udevadm, ['settle', '--timeout=120'], { timeoutMs: 130_000 });
    const burstMs = performance.now() - burstStart;
    sample();
    await sleep(100);
    const burstFigures: BurstFigures & { settleExit: number | null } = {
      writes: BURST_WRITES,
      writeErrors: burst.errors,
      received: counter.counted,
      lost: BURST_WRITES - burst.errors - counter.counted,
      writeMs: round(burst.writeMs),
      ms: round(burstMs),
      eventsPerSec: Math.round((counter.counted / burstMs) * 1000),
      foreignKernelEvents: counter.foreignKernelEvents(),
      settleExit: settle.code,
    };
    return {
      ...base,
      startMs: round(startMs),
      idle: { rssMB: kibToMb(idle.rssKiB), pssMB: kibToMb(idle.pssKiB), processes: idle.processes },
      triggerRounds: { ...rounds, received: roundsReceived, foreignKernelEvents: roundsForeign },
      burst: burstFigures,
      peak: {
        rssMB: kibToMb(peakRss),
        pssMB: kibToMb(peakPss),
        processes: peakProcesses,
        what: 'udevd + its worker processes: sum of VmRSS (shared pages counted per process) and of Pss',
      },
      monitorOverflows: monitor.overflows(),
    };
  } finally {
    monitor?.close();
    const stopped = await udevd.stop();
    if (stopped.forced) process.stderr.write('systemd-udevd ignored SIGTERM for 5 s and was killed\n');
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<object> {
  // 1. Synthetic
  const scan = scanSysfs();
  const devices = [...scan.devices.values()];
  if (devices.length === 0) throw new Error('scanSysfs() found no devices; cannot model a stream');
  const stream = buildStream(devices, readKernelSeqnum() + 1);
  gc?.();
  const rssWithStreamBytes = process.memoryUsage.rss();
  for (let i = 0; i < WARMUP_RUNS; i++) runSynthetic(stream);
  const runs: SyntheticRun[] = [];
  for (let i = 0; i < TIMED_RUNS; i++) runs.push(runSynthetic(stream));
  const rates = runs.map((r) => r.eventsPerSec);
  const medianRate = Math.round(median(rates));
  gc?.();
  const mem = process.memoryUsage();
  const peakRssAfterSyntheticKiB = process.resourceUsage().maxRSS;
  const last = runs[runs.length - 1];

  // 2. Real kernel path
  const loops = existingLoopDevices();
  let native: NativeNetlink | undefined;
  let nativeError: string | undefined;
  try {
    native = loadNative();
  } catch (err) {
    nativeError = err instanceof Error ? err.message : String(err);
  }
  let realKernel: object;
  let listener: TriggerdListener | undefined;
  if (native === undefined) realKernel = { skipped: `native addon not available: ${nativeError}` };
  else if (loops.names.length === 0)
    realKernel = { skipped: 'no loop block devices in /sys/devices/virtual/block' };
  else if (process.getuid?.() !== 0) realKernel = { skipped: 'writing uevent files needs root' };
  else {
    listener = new TriggerdListener(native, loops);
    if (listener.sourceError !== undefined) throw new Error(`uevent socket: ${listener.sourceError}`);
    const burst = await triggerdBurst(listener, loops, REAL_KERNEL_WRITES);
    realKernel = {
      loopDevices: loops.names.length,
      ...burst,
      overflows: listener.pipeline.stats.overflows,
      resyncs: listener.pipeline.stats.resyncs,
      receiveBufferBytes: listener.pipeline.stats.receiveBufferBytes,
      what:
        'change written to /sys/devices/virtual/block/loopN/uevent by this same process (chunks of 250, ' +
        'yielding between) → kernel → addon → ueventEvents → DevicePipeline → Manager; ms = first write → ' +
        'last event processed, so the writer (the kernel building each uevent) shares the CPU time; ' +
        'jsBusyMs = time in onBatch alone',
    };
  }

  // 3. Peer and the like-for-like comparison
  let peer: PeerReport = { name: 'systemd-udevd' };
  let comparison: object = { skipped: 'needs the native addon, root and loop devices' };
  if (native !== undefined && listener !== undefined) {
    const avail = await ensureUdev(installAllowed());
    const triggerd: Record<string, unknown> = {
      includes:
        'kernel socket → parse → registry → device units, in this process; no rules engine yet, so no ' +
        'builtins, no /run/udev database, no group-2 rebroadcast',
    };
    let perRound = 0;
    if (avail.ok) {
      perRound = await devicesPerRound(avail.tools);
      triggerd.triggerRounds = await triggerRounds(avail.tools, perRound, listener.counter, 'counter');
    } else {
      triggerd.triggerRounds = { skipped: 'udevadm is not installed' };
    }
    triggerd.burst = await triggerdBurst(listener, loops, BURST_WRITES);
    listener.close();
    listener = undefined;

    if (!avail.ok) peer = { name: 'systemd-udevd', skipped: avail.reason };
    else {
      try {
        peer = await measureUdevd(avail.tools, native, loops, perRound);
      } catch (err) {
        peer = {
          name: 'systemd-udevd',
          skipped: `could not run: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
    }
    comparison = {
      workloads: {
        triggerRounds: `${TRIGGER_ROUNDS} × (udevadm ${TRIGGER_ARGS.join(' ')}; then wait) over the existing loop devices; udevd waits with udevadm settle, triggerd until the pipeline processed the round`,
        burst: `${BURST_WRITES} change writes to the loop devices' uevent files, chunks of 250; udevd then udevadm settle; ms from first write to done`,
      },
      triggerd,
      ratio: ratios(triggerd, peer),
    };
  }
  listener?.close();

  return {
    benchmark: 'uevent-pipeline',
    host: hostInfo(),
    synthetic: {
      datagrams: stream.datagrams,
      megabytes: bytesToMb(stream.bytes),
      batchSize: BATCH_SIZE,
      composition: {
        change: stream.changes,
        netAdd: stream.netAdds,
        netRemove: stream.netRemoves,
        realDevicesModelled: stream.realDevices,
      },
      path: 'stub NativeNetlink.onBatch → ueventEvents (parse) → DevicePipeline.handle → changes$ → Manager.applyDeviceChange',
      warmupRuns: WARMUP_RUNS,
      eventsPerSec: { median: medianRate, min: Math.min(...rates), max: Math.max(...rates) },
      runsMs: runs.map((r) => r.ms),
      received: last.received,
      rejected: last.rejected,
      registryAfter: last.devices,
      unitsAfter: last.units,
      rssBeforeRunsMB: bytesToMb(rssWithStreamBytes),
      peakRssMB: kibToMb(peakRssAfterSyntheticKiB),
      peakRssNote:
        'whole process (maxRSS) after the synthetic runs: Node itself, the generated stream, 6 runs',
      heapUsedAfterMB: bytesToMb(mem.heapUsed),
      arrayBuffersAfterMB: bytesToMb(mem.arrayBuffers),
      heapNote: `after a forced GC${gc === undefined ? ' (unavailable: figure is without GC)' : ''}, with the stream (${bytesToMb(stream.bytes)} MB of Buffers) still held`,
    },
    target: { eventsPerSec: TARGET_EVENTS_PER_SEC },
    meetsTarget: medianRate >= TARGET_EVENTS_PER_SEC,
    realKernel,
    comparison,
    peer,
    peakRssMB: kibToMb(process.resourceUsage().maxRSS),
  };
}

/** triggerd's events/s over udevd's, per workload (> 1: triggerd is faster). */
function ratios(triggerd: Record<string, unknown>, peer: PeerReport): Record<string, number | null> {
  const rate = (o: unknown): number | undefined => {
    if (typeof o !== 'object' || o === null || !('eventsPerSec' in o)) return undefined;
    const v = (o as { eventsPerSec: unknown }).eventsPerSec;
    return typeof v === 'number' ? v : undefined;
  };
  const out: Record<string, number | null> = {};
  for (const key of ['triggerRounds', 'burst']) {
    const a = rate(triggerd[key]);
    const b = rate(peer[key]);
    out[`${key}TriggerdOverUdevd`] = a === undefined || b === undefined || b === 0 ? null : round(a / b, 2);
  }
  return out;
}

runBenchmark(main);
