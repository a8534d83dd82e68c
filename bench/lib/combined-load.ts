// The combined load of issue 9, shared by bench/load (full size, figures) and its integration test
// (small, correctness only). Four loads start at the same moment against one companion-mode
// triggerd, each a bounded amount of work in its own process, while status probes ask the daemon
// over its control socket every few milliseconds:
//
//   uevents      COUNT libudev-format events from bench/lib/uevent-sender (udevd's group-2 wire
//                format, addressed to the daemon's uevent socket), over DEVICES fake devices
//   connections  the C epoll client of bench/lib/connect-load on an Accept=yes socket with
//                MaxConnections=, a one-line C service per connection
//   notify       a Type=notify service (bench/lib/load-programs' notify-flood) sending COUNT
//                STATUS= datagrams and a last `STATUS=done COUNT`
//   files        COUNT file creations (write + close each) in a directory a PathModified= unit
//                watches; its oneshot stamps CLOCK_REALTIME on every run
//
// The probes: `status` on one persistent control connection (what bench/lib/triggerd-daemon's
// `request` does) and the real `triggerctl status` binary (a Node start-up and a fresh connection
// each). Every wait has a deadline; the caller owns the daemon and the temporary directory.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ControlClient } from '../../src/control/client';
import { readKernelSeqnum } from '../../src/devices/sysfs';
import { failuresOf, runLoad, type LoadResult } from './connect-load';
import { onCleanup } from './cleanup';
import { killPid, runCommand, sleep, statusKiB } from './proc';
import type { UeventSenderResult } from './uevent-sender';

/** This file runs as dist/bench/lib/combined-load.js. */
const UEVENT_SENDER = path.join(__dirname, 'uevent-sender.js');

export const ACCEPT_SOCKET = 'load-accept.socket';
export const NOTIFY_SERVICE = 'load-notify.service';
export const BURST_PATH = 'load-burst.path';
export const BURST_SERVICE = 'load-burst.service';

export interface LoadSizes {
  uevents: { count: number; devices: number };
  connections: { count: number; concurrency: number; maxConnections: number; timeoutMs: number };
  notify: { count: number };
  files: { count: number };
}

/** The compiled programs (bench/lib/connect-load and bench/lib/load-programs sources). */
export interface LoadPrograms {
  oneLine: string;
  client: string;
  notifyFlood: string;
  fileBurst: string;
}

/** Where the load's files live: `spool` on tmpfs; `out` gets the results and stamps. */
export interface LoadDirs {
  units: string;
  spool: string;
  out: string;
}

export function notifyResultFile(dirs: LoadDirs): string {
  return path.join(dirs.out, 'notify.json');
}

export function burstStampsFile(dirs: LoadDirs): string {
  return path.join(dirs.out, 'burst-runs');
}

/** The five unit files of the load, written before the daemon starts. */
export function writeLoadUnits(dirs: LoadDirs, port: number, programs: LoadPrograms, sizes: LoadSizes): void {
  const write = (name: string, lines: string[]): void =>
    fs.writeFileSync(path.join(dirs.units, name), lines.join('\n') + '\n');
  write(ACCEPT_SOCKET, [
    '[Socket]',
    `ListenStream=127.0.0.1:${port}`,
    'Accept=yes',
    'Backlog=4096',
    `MaxConnections=${sizes.connections.maxConnections}`,
    // systemd's defaults would pause a flood at once (as in bench/accept).
    'TriggerLimitIntervalSec=0',
    'PollLimitIntervalSec=0',
  ]);
  write('load-accept@.service', ['[Service]', `ExecStart=${programs.oneLine}`, 'StandardInput=socket']);
  write(NOTIFY_SERVICE, [
    '[Service]',
    'Type=notify',
    `ExecStart=${programs.notifyFlood} ${sizes.notify.count} ${notifyResultFile(dirs)}`,
  ]);
  write(BURST_PATH, ['[Path]', `PathModified=${dirs.spool}`, `Unit=${BURST_SERVICE}`]);
  write(BURST_SERVICE, [
    '[Unit]',
    'StartLimitIntervalSec=0',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/bin/sh -c 'date +%%s%%N >> ${burstStampsFile(dirs)}'`,
  ]);
}

type Request = (
  method: 'status' | 'unit-status' | 'start',
  params?: Record<string, unknown>,
) => Promise<unknown>;

interface UnitStatus {
  active: string;
  sub: string;
  properties: Record<string, unknown>;
}

export async function unitStatus(request: Request, name: string): Promise<UnitStatus> {
  return (await request('unit-status', { name, lines: 0 })) as UnitStatus;
}

interface DaemonCounters {
  uevents: {
    received: number;
    port: number;
    overflows: number;
    resyncs: number;
    rejected: Record<string, number>;
  };
  devices: number;
  units: number;
}

/** Start the socket and path units and wait until both listen/wait; the idle baseline can follow. */
export async function armLoadUnits(request: Request, timeoutMs: number): Promise<void> {
  await request('start', { names: [ACCEPT_SOCKET, BURST_PATH] });
  const deadline = performance.now() + timeoutMs;
  for (const [name, sub] of [
    [ACCEPT_SOCKET, 'listening'],
    [BURST_PATH, 'waiting'],
  ] as const) {
    for (;;) {
      const s = await unitStatus(request, name);
      if (s.sub === sub) break;
      if (performance.now() > deadline) throw new Error(`${name} is ${s.active}/${s.sub}, not ${sub}`);
      await sleep(20);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export interface ProbeSample {
  /** When the request was sent, ms after the probe's zero. */
  at: number;
  ms: number;
  ok: boolean;
  error?: string;
}

/** Asks one question every `intervalMs` (never two at once) until stopped; every answer timed. */
export class StatusProbe {
  readonly samples: ProbeSample[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly ask: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly zero: number,
    private readonly onAnswer?: (answer: unknown, at: number) => void,
  ) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<ProbeSample[]> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    return this.samples;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const t0 = performance.now();
      const sample: ProbeSample = { at: t0 - this.zero, ms: 0, ok: true };
      try {
        const answer = await withTimeout(this.ask(), this.timeoutMs);
        this.onAnswer?.(answer, performance.now() - this.zero);
      } catch (err) {
        sample.ok = false;
        sample.error = err instanceof Error ? err.message : String(err);
      }
      const t1 = performance.now();
      sample.ms = t1 - t0;
      this.samples.push(sample);
      const wait = this.intervalMs - sample.ms;
      if (wait > 0 && !this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}

/** `node triggerctl.js --socket S status` as one probe question: rejects unless it exits 0. */
export function triggerctlStatus(
  triggerctl: string,
  socket: string,
  timeoutMs: number,
): () => Promise<unknown> {
  return async () => {
    const r = await runCommand(process.execPath, [triggerctl, '--socket', socket, 'status'], { timeoutMs });
    if (r.code !== 0)
      throw new Error(`triggerctl status exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 200)}`);
    return JSON.parse(r.stdout) as unknown;
  };
}

/** The daemon's VmRSS every `intervalMs`: peak, last, and the highest per second of the run. */
export class RssSampler {
  peakKiB = 0;
  lastKiB = 0;
  samples = 0;
  /** Highest VmRSS in each second since start, KiB. */
  readonly perSecondKiB: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  start(): this {
    this.t0 = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  private sample(): void {
    const kib = statusKiB(this.pid, 'VmRSS');
    if (kib === undefined) return;
    this.samples++;
    this.lastKiB = kib;
    this.peakKiB = Math.max(this.peakKiB, kib);
    const second = Math.floor((performance.now() - this.t0) / 1000);
    while (this.perSecondKiB.length <= second) this.perSecondKiB.push(0);
    this.perSecondKiB[second] = Math.max(this.perSecondKiB[second] ?? 0, kib);
  }
}

/** utime + stime of a process in seconds (USER_HZ 100), undefined when gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * The daemon's main thread (the event loop) from /proc/PID/schedstat: seconds on a CPU and seconds
 * runnable but waiting for one (other processes had it); undefined when gone.
 */
export function mainThreadSchedule(pid: number): { runS: number; waitS: number } | undefined {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(' ').map(Number);
    return { runS: run / 1e9, waitS: wait / 1e9 };
  } catch {
    return undefined;
  }
}

/** A load's window, ms after the common start, and its error if it broke. */
export interface LoadWindow {
  startMs: number;
  /** When its work was done (sent, served, created); undefined when it broke. */
  endMs?: number;
  error?: string;
}

export interface UeventOutcome extends LoadWindow {
  sender?: UeventSenderResult;
  /** Events the daemon counted as received during the load (others' group-2 traffic included). */
  receivedDelta: number;
  /** When the daemon had received `count` more events (from its status answers), ms after start. */
  allReceivedMs?: number;
  overflows: number;
  resyncs: number;
  /** Messages the daemon dropped, by code (others' group-2 traffic included). */
  rejected: Record<string, number>;
  /** Devices in the registry before and after (the load adds then removes its own). */
  devicesBefore: number;
  devicesAfter: number;
}

export interface ConnectionOutcome extends LoadWindow {
  client?: LoadResult;
  /** Deltas of the socket unit's counters over the load. */
  accepted: number;
  refused: number;
  socketSubAfter: string;
}

export interface NotifyOutcome extends LoadWindow {
  result?: { sent: number; failed: number; firstErrno: number; ms: number };
  /** The service's StatusText once the flood ended (`done COUNT` when the last datagram arrived). */
  statusText: string;
  /** When StatusText showed the last message, ms after start. */
  lastStatusSeenMs?: number;
}

export interface FilesOutcome extends LoadWindow {
  result?: { created: number; failed: number; ms: number };
  /** Runs of the path unit's service (stamps), and whether one started after the last creation. */
  runs: number;
  finalTrigger: boolean;
  /** Last creation → the first run stamped after it, ms. */
  finalTriggerAfterMs?: number;
  pathProperties: Record<string, unknown>;
}

export interface CombinedLoadResult {
  /** From the common start until every load's completion check ended, ms. */
  wallMs: number;
  uevents: UeventOutcome;
  connections: ConnectionOutcome;
  notify: NotifyOutcome;
  files: FilesOutcome;
  socketProbe: ProbeSample[];
  cliProbe: ProbeSample[];
  rss: RssSampler;
  daemonCpuSeconds?: number;
  /** The event loop's thread during the load: on a CPU, and runnable but waiting for one. */
  mainThread?: { runS: number; waitS: number };
}

export interface CombinedLoadOptions {
  daemonPid: number;
  socket: string;
  triggerctl: string;
  /** Control requests of the driver itself (start, unit-status): not the probe's connection. */
  request: Request;
  port: number;
  programs: LoadPrograms;
  dirs: LoadDirs;
  sizes: LoadSizes;
  probe: { intervalMs: number; cliIntervalMs: number; timeoutMs: number };
  /** Bound on each load's run and on each completion wait. */
  deadlineMs: number;
  /**
   * Each load generator in a session of its own, as udevd, network clients and a user's program
   * would be: with autogroup scheduling a session is one CPU-share group, and generators left in
   * the benchmark's session starve the probes' own process (its answers were read late). Default
   * false.
   */
  ownSessions?: boolean;
}

async function daemonCounters(request: Request): Promise<DaemonCounters> {
  return (await request('status')) as DaemonCounters;
}

/** Poll `check` every `ms` until it returns a value or `deadline` (performance.now()) passes. */
async function pollUntil<T>(
  deadline: number,
  ms: number,
  check: () => Promise<T | undefined>,
): Promise<T | undefined> {
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() >= deadline) return undefined;
    await sleep(ms);
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function readStamps(file: string): bigint[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^\d+$/.test(l.trim()))
      .map((l) => BigInt(l.trim()));
  } catch {
    return [];
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface PreparedSender {
  /** Start sending (writes the "go" line). */
  go(): void;
  /** The sender's result once it exited (or was killed after the deadline). */
  done: Promise<UeventSenderResult>;
}

/**
 * Start bench/lib/uevent-sender and wait until it encoded every message and said ready; killed by
 * its pid `deadlineMs` after the start, or when the benchmark is interrupted.
 */
async function prepareUeventSender(
  args: string[],
  deadlineMs: number,
  ownSession: boolean,
): Promise<PreparedSender> {
  const child = spawn(process.execPath, [UEVENT_SENDER, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: ownSession,
  });
  const kill = (): void => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      killPid(child.pid, 'SIGKILL');
  };
  const dispose = onCleanup('kill the uevent sender', kill);
  const timer = setTimeout(kill, deadlineMs);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString('utf8');
  });
  let onReady: (() => void) | undefined;
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
    if (stdout.includes('"ready"')) onReady?.();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const done = exited.then((code) => {
    clearTimeout(timer);
    dispose();
    const lines = stdout.split('\n').filter((l) => l.trim() !== '' && !l.includes('"ready"'));
    const parsed = readJsonText<UeventSenderResult & { error?: string }>(lines.join('\n'));
    if (code !== 0 || parsed === undefined || parsed.error !== undefined)
      throw new Error(`uevent sender exited ${code}: ${parsed?.error ?? stderr.slice(0, 500)}`);
    return parsed;
  });
  done.catch(() => undefined);
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      if (stdout.includes('"ready"')) resolve(true);
    }),
    exited.then(() => false),
  ]);
  if (!ready) {
    await done; // throws with the sender's error
    throw new Error('uevent sender exited before it was ready');
  }
  return {
    go: () => {
      child.stdin.end('go\n');
    },
    done,
  };
}

/** Run the four loads at once with the probes going; resolves when all are done or timed out. */
export async function runCombinedLoad(o: CombinedLoadOptions): Promise<CombinedLoadResult> {
  const { request, sizes, dirs } = o;
  const before = await daemonCounters(request);
  const socketBefore = (await unitStatus(request, ACCEPT_SOCKET)).properties;
  // Above the kernel's counter, as udevd's events would be after it (nothing checks the order).
  // A load with count 0 is left out (bench/load's TRIGGERD_BENCH_LOAD_ONLY, for attributing latency).
  const sender =
    sizes.uevents.count === 0
      ? undefined
      : await prepareUeventSender(
          [
            String(before.uevents.port),
            String(sizes.uevents.count),
            String(sizes.uevents.devices),
            String(readKernelSeqnum() + 1),
          ],
          o.deadlineMs,
          o.ownSessions === true,
        );
  const probeClient = await ControlClient.connect(o.socket);
  const rss = new RssSampler(o.daemonPid).start();
  const cpu0 = cpuSeconds(o.daemonPid);
  const sched0 = mainThreadSchedule(o.daemonPid);
  const zero = performance.now();
  const since = (): number => performance.now() - zero;
  let allReceivedMs: number | undefined;
  const target = before.uevents.received + sizes.uevents.count;
  const socketProbe = new StatusProbe(
    () => probeClient.request('status'),
    o.probe.intervalMs,
    o.probe.timeoutMs,
    zero,
    (answer, at) => {
      const received = (answer as DaemonCounters).uevents.received;
      if (allReceivedMs === undefined && received >= target) allReceivedMs = at;
    },
  ).start();
  const cliProbe = new StatusProbe(
    triggerctlStatus(o.triggerctl, o.socket, o.probe.timeoutMs),
    o.probe.cliIntervalMs,
    o.probe.timeoutMs,
    zero,
  ).start();

  const uevents = async (): Promise<UeventOutcome> => {
    const out: UeventOutcome = {
      startMs: since(),
      receivedDelta: 0,
      overflows: 0,
      resyncs: 0,
      rejected: {},
      devicesBefore: before.devices,
      devicesAfter: before.devices,
    };
    if (sender === undefined) {
      out.endMs = out.startMs;
      return out;
    }
    try {
      sender.go();
      out.sender = await sender.done;
      const deadline = performance.now() + o.deadlineMs;
      const done = await pollUntil(deadline, 20, async () => {
        const c = await daemonCounters(request);
        return c.uevents.received >= target ? c : undefined;
      });
      if (done === undefined) throw new Error(`the daemon did not receive all ${sizes.uevents.count} events`);
      out.endMs = allReceivedMs ?? since();
      allReceivedMs ??= out.endMs;
    } catch (err) {
      out.error = message(err);
    }
    out.allReceivedMs = allReceivedMs;
    return out;
  };

  const connections = async (): Promise<ConnectionOutcome> => {
    const out: ConnectionOutcome = { startMs: since(), accepted: 0, refused: 0, socketSubAfter: '' };
    if (sizes.connections.count === 0) {
      out.endMs = out.startMs;
      return out;
    }
    try {
      const c = sizes.connections;
      out.client = await runLoad(o.programs.client, o.port, c.count, c.concurrency, {
        connectionTimeoutMs: c.timeoutMs,
        ownSession: o.ownSessions,
      });
      out.endMs = since();
    } catch (err) {
      out.error = message(err);
    }
    return out;
  };

  const notify = async (): Promise<NotifyOutcome> => {
    const out: NotifyOutcome = { startMs: since(), statusText: '' };
    const resultFile = notifyResultFile(dirs);
    if (sizes.notify.count === 0) {
      out.endMs = out.startMs;
      return out;
    }
    try {
      await withTimeout(request('start', { names: [NOTIFY_SERVICE] }), o.deadlineMs);
      const deadline = performance.now() + o.deadlineMs;
      const result = await pollUntil(deadline, 20, async () =>
        readJson<NonNullable<NotifyOutcome['result']>>(resultFile),
      );
      if (result === undefined) throw new Error(`${NOTIFY_SERVICE} wrote no result within the deadline`);
      out.result = result;
      out.endMs = since();
      const want = `done ${sizes.notify.count}`;
      const seen = await pollUntil(deadline, 20, async () => {
        const text = String((await unitStatus(request, NOTIFY_SERVICE)).properties.StatusText ?? '');
        out.statusText = text;
        return text === want ? since() : undefined;
      });
      out.lastStatusSeenMs = seen;
      if (seen === undefined) throw new Error(`StatusText is "${out.statusText}", not "${want}"`);
    } catch (err) {
      out.error = message(err);
    }
    return out;
  };

  const files = async (): Promise<FilesOutcome> => {
    const out: FilesOutcome = { startMs: since(), runs: 0, finalTrigger: false, pathProperties: {} };
    const resultFile = path.join(dirs.out, 'burst.json');
    if (sizes.files.count === 0) {
      out.endMs = out.startMs;
      return out;
    }
    try {
      const r = await runCommand(o.programs.fileBurst, [dirs.spool, String(sizes.files.count), resultFile], {
        timeoutMs: o.deadlineMs,
        ownSession: o.ownSessions,
      });
      const result = readJson<NonNullable<FilesOutcome['result']> & { lastRealtimeNs: string }>(resultFile);
      if (r.code !== 0 || result === undefined)
        throw new Error(`file-burst exited ${r.code ?? r.signal}: ${r.stderr.slice(0, 500)}`);
      out.result = { created: result.created, failed: result.failed, ms: result.ms };
      out.endMs = since();
      const lastNs = BigInt(result.lastRealtimeNs);
      const after = await pollUntil(performance.now() + o.deadlineMs, 20, async () =>
        readStamps(burstStampsFile(dirs)).find((t) => t >= lastNs),
      );
      if (after !== undefined) {
        out.finalTrigger = true;
        out.finalTriggerAfterMs = Number(after - lastNs) / 1e6;
      }
    } catch (err) {
      out.error = message(err);
    }
    return out;
  };

  const [u, c, n, f] = await Promise.all([uevents(), connections(), notify(), files()]);
  const wallMs = since();
  await socketProbe.stop();
  await cliProbe.stop();
  rss.stop();
  probeClient.close();
  const cpu1 = cpuSeconds(o.daemonPid);
  const sched1 = mainThreadSchedule(o.daemonPid);

  // Counters after the loads (the driver's connection, not the probe's).
  try {
    const after = await daemonCounters(request);
    u.receivedDelta = after.uevents.received - before.uevents.received;
    u.overflows = after.uevents.overflows - before.uevents.overflows;
    u.resyncs = after.uevents.resyncs - before.uevents.resyncs;
    for (const [code, n] of Object.entries(after.uevents.rejected)) {
      const d = n - (before.uevents.rejected[code] ?? 0);
      if (d > 0) u.rejected[code] = d;
    }
    u.devicesAfter = after.devices;
    const socketAfter = await unitStatus(request, ACCEPT_SOCKET);
    c.accepted = Number(socketAfter.properties.NAccepted) - Number(socketBefore.NAccepted);
    c.refused = Number(socketAfter.properties.NRefused) - Number(socketBefore.NRefused);
    c.socketSubAfter = socketAfter.sub;
    f.pathProperties = (await unitStatus(request, BURST_PATH)).properties;
  } catch (err) {
    u.error ??= `counters after the load: ${message(err)}`;
  }
  f.runs = readStamps(burstStampsFile(dirs)).length;
  return {
    wallMs,
    uevents: u,
    connections: c,
    notify: n,
    files: f,
    socketProbe: socketProbe.samples,
    cliProbe: cliProbe.samples,
    rss,
    daemonCpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
    mainThread:
      sched0 !== undefined && sched1 !== undefined
        ? { runS: sched1.runS - sched0.runS, waitS: sched1.waitS - sched0.waitS }
        : undefined,
  };
}

function readJsonText<T>(text: string): T | undefined {
  try {
    return JSON.parse(text.trim().split('\n').pop() ?? '') as T;
  } catch {
    return undefined;
  }
}

/** Connections that neither got their line nor were refused by MaxConnections= (daemon-side). */
export function lostConnections(c: ConnectionOutcome): number | undefined {
  if (c.client === undefined) return undefined;
  return failuresOf(c.client) - c.refused;
}
