// Idle memory of the daemon: start `triggerd` as a child, wait until its control socket exists and
// 2 s more, read VmRSS from /proc, stop it with SIGTERM (it must exit 0). Peers in the same run: an
// empty Node 20 event loop (the runtime's own floor) and systemd-udevd idle, when installed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onCleanup } from './lib/cleanup';
import { hostInfo, runBenchmark } from './lib/report';
import { kibToMb, median, round } from './lib/stats';
import { killPid, pssKiB, sleep, statusKiB, stopChild, waitFor } from './lib/proc';
import { ensureUdev, startUdevd } from './lib/udevd';

const RUNS = 3;
const SETTLE_MS = 2000;
const READY_TIMEOUT_MS = 20_000;
const TARGET_RSS_MB = 60;
/** This file runs as dist/bench/daemon-idle-rss.js; the repository is two levels up. */
const REPO = path.resolve(__dirname, '..', '..');
const DAEMON = path.join(REPO, 'dist', 'src', 'cli', 'triggerd.js');
/** The V8 flags the daemon's launchers use: a 1 MiB young generation keeps idle RSS down. */
const DAEMON_NODE_FLAGS = [
  '--max-semi-space-size=1',
  '--single-threaded-gc',
  '--no-sparkplug',
  '--bytecode-old-age=1',
];

interface Sample {
  rssKiB: number;
  hwmKiB: number;
  pssKiB: number;
}

function sample(pid: number): Sample | undefined {
  const rss = statusKiB(pid, 'VmRSS');
  if (rss === undefined) return undefined;
  return { rssKiB: rss, hwmKiB: statusKiB(pid, 'VmHWM') ?? 0, pssKiB: pssKiB(pid) ?? 0 };
}

interface ChildRun {
  sample: Sample;
  readyMs: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  forced: boolean;
  logLines: number;
}

/**
 * Spawn, wait until `ready()` (bounded), then `settleMs`, sample, SIGTERM. Output is kept bounded
 * and only for the error message.
 */
async function measureChild(
  command: string,
  args: string[],
  ready: () => boolean,
  settleMs: number,
): Promise<ChildRun> {
  const t0 = performance.now();
  // The daemon's launchers set MALLOC_ARENA_MAX=1 (src/cli/triggerd.ts); the empty-loop peer
  // gets the same environment.
  const child = spawn(command, args, {
    cwd: REPO,
    env: { ...process.env, MALLOC_ARENA_MAX: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const dispose = onCleanup(`kill pid ${child.pid}`, () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      killPid(child.pid, 'SIGKILL');
  });
  const output: string[] = [];
  let logLines = 0;
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    logLines += text.split('\n').filter((l) => l.length > 0).length;
    if (output.length < 50) output.push(text);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  try {
    const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
    const ok = await waitFor(() => ready() || exited(), READY_TIMEOUT_MS, 10);
    if (!ok || exited()) {
      throw new Error(
        `${path.basename(args[0] ?? command)} did not become ready (exit ${child.exitCode}, signal ${child.signalCode}): ` +
          output.join('').trim().slice(-600),
      );
    }
    const readyMs = performance.now() - t0;
    await sleep(settleMs);
    const s = child.pid === undefined ? undefined : sample(child.pid);
    if (s === undefined)
      throw new Error(`process exited during the idle wait: ${output.join('').trim().slice(-600)}`);
    const stopped = await stopChild(child, 5000);
    return {
      sample: s,
      readyMs,
      exitCode: stopped.exitCode,
      signal: stopped.signal,
      forced: stopped.forced,
      logLines,
    };
  } finally {
    dispose();
  }
}

function summarize(runs: ChildRun[]): { rssMB: number; rssRunsMB: number[]; hwmMB: number; pssMB: number } {
  return {
    rssMB: kibToMb(median(runs.map((r) => r.sample.rssKiB))),
    rssRunsMB: runs.map((r) => kibToMb(r.sample.rssKiB)),
    hwmMB: kibToMb(median(runs.map((r) => r.sample.hwmKiB))),
    pssMB: kibToMb(median(runs.map((r) => r.sample.pssKiB))),
  };
}

async function measureDaemon(): Promise<ChildRun[]> {
  if (!fs.existsSync(DAEMON)) throw new Error(`${DAEMON} is missing; run npm run build first`);
  const runs: ChildRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-'));
    const removeTmp = onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
    try {
      const socket = path.join(tmp, 's.sock');
      const args = [
        // As `npm start` and the installed bin run it (see the shebang of src/cli/triggerd.ts).
        ...DAEMON_NODE_FLAGS,
        DAEMON,
        '--unit-path',
        'examples',
        '--rules-path',
        'rules',
        '--runtime-dir',
        path.join(tmp, 'run'),
        // The udev database of this run stays in its temp dir, never in the real /run/udev.
        '--udev-run-dir',
        path.join(tmp, 'udev'),
        '--control-socket',
        socket,
        '--mode',
        'standalone',
        '--log-format',
        'json',
        '--log-level',
        'warn',
      ];
      runs.push(await measureChild(process.execPath, args, () => fs.existsSync(socket), SETTLE_MS));
    } finally {
      removeTmp();
    }
  }
  return runs;
}

async function measureUdevdIdle(): Promise<object> {
  const avail = await ensureUdev(false); // installing is bench/uevent-pipeline's job
  if (!avail.ok) return { name: 'systemd-udevd', skipped: avail.reason };
  try {
    const udevd = await startUdevd(avail.tools);
    try {
      await sleep(SETTLE_MS);
      const m = udevd.memory();
      return {
        name: 'systemd-udevd',
        version: avail.tools.version,
        rssMB: kibToMb(m.rssKiB),
        pssMB: kibToMb(m.pssKiB),
        processes: m.processes,
        what: `udevd standalone with Debian's rules loaded, ${SETTLE_MS} ms after it answered a ping; workers (if any) included`,
      };
    } finally {
      await udevd.stop();
    }
  } catch (err) {
    return {
      name: 'systemd-udevd',
      skipped: `could not run: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

async function main(): Promise<object> {
  const daemonRuns = await measureDaemon();
  const daemon = summarize(daemonRuns);
  const readyMs = median(daemonRuns.map((r) => r.readyMs));
  // The empty loop is sampled as long after spawn as the daemon was: its start-up plus the idle wait.
  const nodeRuns: ChildRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    nodeRuns.push(
      await measureChild(
        process.execPath,
        ['-e', 'setInterval(()=>{},1000)'],
        () => true,
        readyMs + SETTLE_MS,
      ),
    );
  }
  const node = summarize(nodeRuns);
  const udevd = await measureUdevdIdle();
  const cleanExit = daemonRuns.every((r) => r.exitCode === 0 && !r.forced);
  return {
    benchmark: 'daemon-idle-rss',
    host: hostInfo(),
    command:
      'MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --single-threaded-gc --no-sparkplug --bytecode-old-age=1 dist/src/cli/triggerd.js --unit-path examples --rules-path rules --runtime-dir <tmp> ' +
      '--control-socket <tmp>/s.sock --mode standalone --log-format json --log-level warn',
    runs: RUNS,
    ...daemon,
    readyMs: round(readyMs),
    idleWaitMs: SETTLE_MS,
    exitCodes: daemonRuns.map((r) => r.exitCode),
    cleanExit,
    logLinesAtWarn: daemonRuns.map((r) => r.logLines),
    overEmptyNodeMB: round(daemon.rssMB - node.rssMB, 1),
    nodeExtraCaCerts: process.env.NODE_EXTRA_CA_CERTS !== undefined,
    target: { rssMB: TARGET_RSS_MB },
    meetsTarget: daemon.rssMB < TARGET_RSS_MB,
    peer: {
      name: 'empty Node 20 event loop; systemd-udevd idle',
      nodeEmptyLoop: {
        name: `node ${process.version} -e "setInterval(()=>{},1000)"`,
        ...node,
        sampledAfterMs: round(readyMs + SETTLE_MS),
        exits: nodeRuns.map((r) => r.exitCode ?? r.signal),
        note: 'same environment as the daemon (NODE_EXTRA_CA_CERTS included when set)',
      },
      udevd,
    },
  };
}

runBenchmark(main);
