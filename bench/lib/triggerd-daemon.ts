// triggerd as the benchmarks' child: standalone mode (it runs the rules, writes /dev links, its
// udev database under a temporary --udev-run-dir, and rebroadcasts on netlink group 2), an empty
// unit directory (or the caller's), a control socket in a temporary directory. Stopped by its pid; anything it forked
// and left is killed by pid too.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlClient } from '../../src/control/client';
import type { MethodName } from '../../src/control/protocol';
import { onCleanup } from './cleanup';
import { descendantsOf } from './process-tree';
import { commOf, isAlive, killPid, stopChild, waitFor, waitGoneSync, type StopResult } from './proc';

/** 'comm:state' of each process below `pid`, for an error message. */
function describeChildren(pid: number): string {
  return descendantsOf(pid)
    .filter((p) => p !== pid)
    .slice(0, 20)
    .map((p) => {
      let state = '?';
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'latin1');
        state = stat[stat.lastIndexOf(')') + 2];
      } catch {
        // gone
      }
      return `${commOf(p) ?? '?'}(${p}):${state}`;
    })
    .join(', ');
}

/** This file runs as dist/bench/lib/triggerd-daemon.js; the repository is three levels up. */
export const REPO = path.resolve(__dirname, '..', '..', '..');
export const DAEMON = path.join(REPO, 'dist', 'src', 'cli', 'triggerd.js');
export const TRIGGERCTL = path.join(REPO, 'dist', 'src', 'cli', 'triggerctl.js');
/** The V8 flags the daemon's launchers use. */
const DAEMON_NODE_FLAGS = [
  '--max-semi-space-size=1',
  '--single-threaded-gc',
  '--no-sparkplug',
  '--bytecode-old-age=1',
];
/** The environment the daemon's launchers set (src/cli/triggerd.ts's first line). */
export const DAEMON_ENV = { MALLOC_ARENA_MAX: '1' };
/**
 * Generous: with Debian's rules, coldplug runs RUN programs (99-systemd.rules: systemd-sysctl for
 * each network interface), and a daemon that does not see their exits waits for the 180 s program
 * timeout before its control socket opens. The wait is reported (readyMs), not hidden.
 */
const READY_TIMEOUT_MS = 240_000;
const SHUTDOWN_TIMEOUT_S = 5;

export interface SettleResult {
  settled: boolean;
  seqnum: number;
  target: number;
  ms: number;
}

export interface RunningTriggerd {
  pid: number;
  socket: string;
  args: string[];
  /** From spawn until the control socket answered and the start-up coldplug had settled. */
  readyMs: number;
  /** What `triggerctl settle` asks, on one persistent connection (no Node start-up per call). */
  settle(timeoutMs?: number): Promise<SettleResult>;
  /** What `triggerctl status --json` prints. */
  status(): Promise<DaemonStatus>;
  /** Any control request (start, stop, is-active, ...) on the same persistent connection. */
  request(method: MethodName, params?: Record<string, unknown>): Promise<unknown>;
  /** Log lines at --log-level warn so far (bounded), for the report. */
  logTail(): string[];
  logLines(): number;
  stop(): Promise<StopResult>;
}

export interface DaemonStatus {
  uevents: { received: number; overflows: number; resyncs: number; coldplugMs: number; [k: string]: unknown };
  devices: number;
  ruleFiles: string[];
  memory: { rss: number; heapUsed: number };
  [k: string]: unknown;
}

export interface StartOptions {
  /** --unit-path (':'-separated); default an empty directory in the daemon's temporary directory. */
  unitPath?: string;
  /** --mode; default standalone. Companion takes udevd's events (netlink group 2, libudev format). */
  mode?: 'standalone' | 'companion';
  /** More daemon arguments, after the defaults (e.g. --udev-db-dir for companion mode). */
  extraArgs?: string[];
  /**
   * Start the daemon in a session of its own (setsid), as init or start-stop-daemon would. With
   * the kernel's autogroup scheduling (CONFIG_SCHED_AUTOGROUP, sched_autogroup_enabled=1) a
   * session is one scheduling group: left in the benchmark's session, the daemon shares one
   * group's CPU share with the benchmark and every load generator it started, while each service
   * the daemon spawns (setsid) gets a whole group of its own. Default false (the old arrangement).
   */
  ownSession?: boolean;
}

/** Start triggerd standalone with `rulesPath` (':'-separated) and wait until it settled its coldplug. */
export async function startTriggerd(rulesPath: string, options: StartOptions = {}): Promise<RunningTriggerd> {
  if (!fs.existsSync(DAEMON)) throw new Error(`${DAEMON} is missing; build with npx tsc -p tsconfig.json`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-daemon-'));
  let units = options.unitPath;
  if (units === undefined) {
    units = path.join(tmp, 'units');
    fs.mkdirSync(units);
  }
  const socket = path.join(tmp, 's.sock');
  const args = [
    ...DAEMON_NODE_FLAGS,
    // Extra V8 flags for experiments (space-separated); the reported figures name them.
    ...(process.env.TRIGGERD_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''),
    DAEMON,
    '--unit-path',
    units,
    '--rules-path',
    rulesPath,
    '--runtime-dir',
    path.join(tmp, 'run'),
    '--control-socket',
    socket,
    '--udev-run-dir',
    path.join(tmp, 'udev'),
    '--mode',
    options.mode ?? 'standalone',
    ...(options.extraArgs ?? []),
    '--shutdown-timeout',
    String(SHUTDOWN_TIMEOUT_S),
    '--log-format',
    'json',
    '--log-level',
    'warn',
  ];
  let child: ChildProcess | undefined;
  let client: ControlClient | undefined;
  const seen = new Set<number>();
  const undo = (): void => {
    client?.close();
    const victims: number[] = [];
    if (child?.pid !== undefined) {
      for (const p of descendantsOf(child.pid)) seen.add(p);
      if (child.exitCode === null && child.signalCode === null) victims.push(child.pid);
    }
    for (const p of seen) if (p !== child?.pid && isAlive(p)) victims.push(p);
    for (const v of victims) killPid(v, 'SIGKILL');
    waitGoneSync(victims, 2000);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const dispose = onCleanup('stop triggerd and remove its temporary directory', undo);
  const tail: string[] = [];
  let lines = 0;
  // TRIGGERD_BENCH_DAEMON_LOG=FILE: the daemon's whole output appended there too (a diagnosis,
  // e.g. with TRIGGERD_BENCH_NODE_FLAGS=--trace-gc).
  const logFile = process.env.TRIGGERD_BENCH_DAEMON_LOG;
  const keep = (chunk: Buffer): void => {
    if (logFile !== undefined && logFile !== '') fs.appendFileSync(logFile, chunk);
    const text = chunk.toString('utf8');
    for (const l of text.split('\n')) {
      if (l.length === 0) continue;
      lines++;
      tail.push(l.slice(0, 1000));
      if (tail.length > 30) tail.shift();
    }
  };
  const t0 = performance.now();
  try {
    child = spawn(process.execPath, args, {
      cwd: REPO,
      env: { ...process.env, ...DAEMON_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownSession === true,
    });
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const started = child;
    const exited = (): boolean => started.exitCode !== null || started.signalCode !== null;
    const up = await waitFor(() => fs.existsSync(socket) || exited(), READY_TIMEOUT_MS, 10);
    if (!up || exited()) {
      throw new Error(
        `triggerd did not open its control socket within ${READY_TIMEOUT_MS / 1000} s (exit ${started.exitCode}, ` +
          `signal ${started.signalCode}; children: ${started.pid === undefined ? '' : describeChildren(started.pid) || 'none'}): ` +
          tail.join('\n').slice(-800),
      );
    }
    client = await ControlClient.connect(socket);
    await client.request('settle', { timeoutMs: READY_TIMEOUT_MS });
  } catch (err) {
    dispose();
    throw err;
  }
  const readyMs = performance.now() - t0;
  const running = child;
  const connected = client;
  const pid = running.pid as number;
  return {
    pid,
    socket,
    args,
    readyMs,
    settle: async (timeoutMs = 120_000) => (await connected.request('settle', { timeoutMs })) as SettleResult,
    status: async () => (await connected.request('status')) as DaemonStatus,
    request: (method, params = {}) => connected.request(method, params),
    logTail: () => [...tail],
    logLines: () => lines,
    stop: async () => {
      connected.close();
      for (const p of descendantsOf(pid)) seen.add(p);
      const result = await stopChild(running, (SHUTDOWN_TIMEOUT_S + 5) * 1000);
      dispose();
      return result;
    },
  };
}

/** Rules directories for "Debian's rules" as udevd reads them, with 80-net-setup-link masked as for udevd. */
export function debianRulesPath(maskDir: string): string {
  fs.mkdirSync(maskDir, { recursive: true });
  const mask = path.join(maskDir, '80-net-setup-link.rules');
  if (!fs.existsSync(mask)) fs.symlinkSync('/dev/null', mask);
  // udevd's order: /etc, /run, /usr/local/lib, /usr/lib (= /lib on Debian); only existing ones.
  const dirs = ['/etc/udev/rules.d', '/usr/local/lib/udev/rules.d', '/lib/udev/rules.d'].filter((d) =>
    fs.existsSync(d),
  );
  return [maskDir, ...dirs].join(':');
}

/** The project's own rules directory. */
export const OWN_RULES = path.join(REPO, 'rules');
