// Loading 1,000 unit files and starting 200 services. A generated tree (800 services of mixed
// kinds, drop-ins, templates instantiated from .wants/, Wants=/After= between them, 200 targets;
// multi-user.target.wants/ links exactly 200 long-running services) is loaded two ways: in-process
// with `new UnitLoader([dir]).loadAll()` (pure load time and heap), and end to end by starting the
// daemon on it as a child (spawn → `unit files loaded` → all 200 `running`, the daemon's RSS, then
// SIGTERM: exit 0 and no `sleep` left behind). The peer is `systemd-analyze verify` on 20 of the
// same units: the only way to run systemd's unit loading here without it as PID 1. Targets use
// the end-to-end figures: load < 500 ms, daemon RSS < 100 MB.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { ControlClient } from '../src/control/client';
import { UnitLoader } from '../src/units/unit-loader';
import { onCleanup } from './lib/cleanup';
import {
  childPids,
  commOf,
  isAlive,
  killPid,
  pssKiB,
  runCommand,
  sleep,
  statusKiB,
  stopChild,
  waitFor,
  waitGoneSync,
} from './lib/proc';
import { hostInfo, runBenchmark } from './lib/report';
import { bytesToMb, kibToMb, median, round } from './lib/stats';

// The tree: 1,000 unit files in the top directory.
const STARTED = 200; // Type=simple, /bin/sleep 3600, linked from multi-user.target.wants/
const IDLE = 300; // Type=simple too, loaded but not started
const TEMPLATES = 10; // oneshot templates, instantiated from targets' .wants/ only
const ONESHOTS = 290; // Type=oneshot + RemainAfterExit=yes, loaded but not started
const TARGETS = 200;
const GROUP_TARGETS = 20; // the targets the started services want (started with them)
const UNIT_FILES = STARTED + IDLE + TEMPLATES + ONESHOTS + TARGETS;
/** What the loader's loadAll() returns: every file but the templates. */
const LOADABLE = UNIT_FILES - TEMPLATES;
/** What the daemon's `unit files loaded` says: those plus its implicit default.target and multi-user.target. */
const DAEMON_UNITS = LOADABLE + 2;

const WARM_RUNS = 15;
const DAEMON_RUNS = 3;
/** The daemon on an empty unit directory: its start-up floor (Node, addons, coldplug, control socket). */
const BASELINE_RUNS = 3;
const START_TIMEOUT_MS = 60_000;
const SHUTDOWN_TIMEOUT_S = 20;
/** stopChild's SIGKILL comes only after the daemon's own shutdown timeout has had its chance. */
const STOP_GRACE_MS = (SHUTDOWN_TIMEOUT_S + 10) * 1000;
/** RSS is read once all 200 run and again this long after (the figure the target uses). */
const SETTLE_MS = 1000;
const PEER_SAMPLE = 20;
const PEER_RUNS = 5;
const TARGET_LOAD_MS = 500;
const TARGET_RSS_MB = 100;
/** Where the daemon puts unit groups (openCgroupTree's default base, hybrid or unified layout). */
const CGROUP_SLICES = [
  '/sys/fs/cgroup/unified/triggerd/triggerd.slice',
  '/sys/fs/cgroup/triggerd/triggerd.slice',
];
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** --man=no: verify would otherwise run man(1) for every Documentation=man: link (ours have none installed). */
const PEER_ARGS = ['verify', '--man=no'];
/** A single pathological log line must not grow our memory without bound. */
const MAX_LINE = 1024 * 1024;
/** This file runs as dist/bench/load-units.js; the repository is two levels up. */
const REPO = path.resolve(__dirname, '..', '..');
const DAEMON = path.join(REPO, 'dist', 'src', 'cli', 'triggerd.js');
const TRIGGERCTL = path.join(REPO, 'dist', 'src', 'cli', 'triggerctl.js');

const pad = (n: number): string => String(n).padStart(3, '0');

// --------------------------------------------------------------------------------------------
// The unit tree

interface UnitTree {
  dir: string;
  /** Prefix of every unit name in the tree. */
  tag: string;
  /** The 200 services multi-user.target.wants/ links. */
  started: string[];
  /** Every service name (not templates): their cgroups are swept on cleanup. */
  services: string[];
  unitFiles: number;
  dropIns: number;
  wantsLinks: number;
  /** Paths of the peer's sample, copied with their drop-ins into `sampleDir`. */
  sampleDir: string;
  sampleFiles: string[];
}

/**
 * Unit names carry a per-run tag: the daemon's cgroup base (<root>/triggerd/triggerd.slice) is
 * shared with any other triggerd on the machine, and the tag keeps our groups apart from theirs.
 */
function writeUnitTree(root: string, tag: string): UnitTree {
  const dir = path.join(root, 'units');
  fs.mkdirSync(dir);
  let unitFiles = 0;
  let dropIns = 0;
  let wantsLinks = 0;
  const run = (i: number): string => `${tag}-run-${pad(i)}.service`;
  const idle = (i: number): string => `${tag}-idle-${pad(i)}.service`;
  const once = (i: number): string => `${tag}-once-${pad(i)}.service`;
  const gen = (k: number): string => `${tag}-gen${k}@.service`;
  const tgt = (i: number): string => `${tag}-tgt-${pad(i)}.target`;
  const unit = (name: string, text: string): void => {
    fs.writeFileSync(path.join(dir, name), text);
    unitFiles++;
  };
  const dropIn = (name: string, file: string, text: string): void => {
    fs.mkdirSync(path.join(dir, `${name}.d`), { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.d`, file), text);
    dropIns++;
  };
  const link = (owner: string, name: string, target: string): void => {
    fs.mkdirSync(path.join(dir, `${owner}.wants`), { recursive: true });
    fs.symlinkSync(`../${target}`, path.join(dir, `${owner}.wants`, name));
    wantsLinks++;
  };

  const started: string[] = [];
  for (let i = 0; i < STARTED; i++) {
    const name = run(i);
    started.push(name);
    const group = tgt(i % GROUP_TARGETS);
    // Chains of ten: ordering between services started in the same transaction.
    const after = i % 10 === 0 ? group : `${group} ${run(i - 1)}`;
    unit(
      name,
      `[Unit]\nDescription=load-units: long-running ${i}\nWants=${group}\nAfter=${after}\n\n` +
        `[Service]\nType=simple\nExecStart=/bin/sleep 3600\n\n[Install]\nWantedBy=multi-user.target\n`,
    );
    if (i % 4 === 0) dropIn(name, '10-env.conf', `[Service]\nEnvironment=LOAD_UNITS_INDEX=${i}\n`);
    if (i % 8 === 0) dropIn(name, '20-docs.conf', `[Unit]\nDocumentation=man:triggerd(8)\n`);
    link('multi-user.target', name, name);
  }
  for (let i = 0; i < IDLE; i++) {
    const wants = i % 5 === 0 ? once(i % ONESHOTS) : `${once(i % ONESHOTS)} ${idle(i - 1)}`;
    unit(
      idle(i),
      `[Unit]\nDescription=load-units: idle ${i}\nWants=${wants}\nAfter=${once(i % ONESHOTS)}\n\n` +
        `[Service]\nType=simple\nExecStart=/bin/sleep 3600\nRestart=no\n`,
    );
    if (i % 3 === 0) dropIn(idle(i), '10-restart.conf', `[Service]\nRestart=on-failure\nRestartSec=2\n`);
  }
  for (let i = 0; i < ONESHOTS; i++) {
    const after = i % 2 === 0 ? '' : `After=${once(i - 1)}\n`;
    unit(
      once(i),
      `[Unit]\nDescription=load-units: oneshot ${i}\n${after}\n` +
        `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n`,
    );
    if (i % 5 === 0) dropIn(once(i), '10-env.conf', `[Service]\nEnvironment=ONESHOT=${i} MODE=bench\n`);
  }
  for (let k = 0; k < TEMPLATES; k++) {
    unit(
      gen(k),
      `[Unit]\nDescription=load-units: template ${k} for %i\n\n` +
        `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo instance %i\n`,
    );
  }
  for (let i = 0; i < TARGETS; i++) {
    // Group targets start with the services; the others want services that are never started.
    const wants =
      i < GROUP_TARGETS
        ? ''
        : `Wants=${idle(i % IDLE)} ${once(i % ONESHOTS)}${i > GROUP_TARGETS ? ` ${tgt(i - 1)}` : ''}\n`;
    unit(tgt(i), `[Unit]\nDescription=load-units: target ${i}\n${wants}`);
    if (i >= 50 && i < 100) link(tgt(i), idle((i * 3) % IDLE), idle((i * 3) % IDLE));
    if (i >= 100) link(tgt(i), `${tag}-gen${i % TEMPLATES}@i${i}.service`, gen(i % TEMPLATES));
  }

  // The peer's sample: five of each kind, evenly spread, fragments with their drop-ins.
  const sampleDir = path.join(root, 'sample');
  fs.mkdirSync(sampleDir);
  const pick = (count: number, name: (i: number) => string): string[] =>
    Array.from({ length: PEER_SAMPLE / 4 }, (_, j) => name(Math.floor((j * count) / (PEER_SAMPLE / 4))));
  const sample = [...pick(STARTED, run), ...pick(IDLE, idle), ...pick(ONESHOTS, once), ...pick(TARGETS, tgt)];
  const sampleFiles: string[] = [];
  for (const name of sample) {
    fs.copyFileSync(path.join(dir, name), path.join(sampleDir, name));
    const d = path.join(dir, `${name}.d`);
    if (fs.existsSync(d)) fs.cpSync(d, path.join(sampleDir, `${name}.d`), { recursive: true });
    sampleFiles.push(path.join(sampleDir, name));
  }

  const services = [
    ...started,
    ...Array.from({ length: IDLE }, (_, i) => idle(i)),
    ...Array.from({ length: ONESHOTS }, (_, i) => once(i)),
    ...Array.from(
      { length: TARGETS - 100 },
      (_, j) => `${tag}-gen${(j + 100) % TEMPLATES}@i${j + 100}.service`,
    ),
  ];
  return { dir, tag, started, services, unitFiles, dropIns, wantsLinks, sampleDir, sampleFiles };
}

// --------------------------------------------------------------------------------------------
// In-process: the loader alone

/** V8's collector, exposed at run time so `node dist/bench/load-units.js` needs no flag. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

interface LoadRun {
  ms: number;
  units: number;
  loaded: number;
  errors: number;
  warnings: number;
}

function loadOnce(dir: string): { run: LoadRun; result: unknown[] } {
  const t0 = performance.now();
  const result = new UnitLoader([dir]).loadAll();
  const ms = performance.now() - t0;
  let errors = 0;
  let warnings = 0;
  for (const f of result) {
    for (const d of f.diagnostics) {
      if (d.severity === 'error') errors++;
      else warnings++;
    }
  }
  const loaded = result.filter((f) => f.loadState === 'loaded').length;
  return { run: { ms, units: result.length, loaded, errors, warnings }, result };
}

function measureInProcess(tree: UnitTree): object {
  const gc = exposeGc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const cold = loadOnce(tree.dir); // first load in this process: JIT and module caches cold
  const afterLoad = process.memoryUsage().heapUsed;
  gc();
  const retained = process.memoryUsage().heapUsed - before;
  if (cold.result.length === 0) throw new Error('loadAll() returned nothing'); // keeps it alive until here
  const warm: LoadRun[] = [];
  for (let i = 0; i < WARM_RUNS; i++) warm.push(loadOnce(tree.dir).run);
  const ms = warm.map((r) => r.ms);
  return {
    what: 'new UnitLoader([dir]).loadAll() in this process: list the directory, read every fragment and drop-in, parse, apply the key tables',
    coldMs: round(cold.run.ms, 1),
    warmMedianMs: round(median(ms), 1),
    warmRunsMs: ms.map((m) => round(m, 1)),
    warmRuns: WARM_RUNS,
    msPerUnit: round(median(ms) / cold.run.units, 3),
    units: cold.run.units,
    expectedUnits: LOADABLE,
    loadStateLoaded: cold.run.loaded,
    diagnostics: { errors: cold.run.errors, warnings: cold.run.warnings },
    heap: {
      allocatedDuringColdLoadMB: bytesToMb(afterLoad - before),
      retainedByResultMB: bytesToMb(retained),
      note: 'heapUsed after a forced GC, with and without the 1,000 loaded units held',
    },
    pageCache: 'warm (the files were just written); caches are not dropped, other work shares this machine',
  };
}

// --------------------------------------------------------------------------------------------
// End to end: the daemon

interface DaemonLog {
  /** Log-stamp ms after spawn (pino's `time` minus the wall clock at spawn). */
  loadedMs?: number;
  loadedReceivedMs?: number;
  units?: number;
  errors?: number;
  coldplugMs?: number;
  devices?: number;
  readyMs?: number;
  unitFilesSeen?: number;
  allRunningMs?: number;
  allRunningReceivedMs?: number;
  running: Set<string>;
  failed: Set<string>;
  warnings: number;
  errorLines: number;
  firstProblems: string[];
  stoppingUnits?: number;
  killedAtShutdown: number;
  nonJson: string[];
}

/** pid lists of the units' cgroups: what a service left behind, whatever the daemon thinks. */
function cgroupPids(units: readonly string[]): number[] {
  const out: number[] = [];
  for (const slice of CGROUP_SLICES) {
    for (const u of units) {
      let text: string;
      try {
        text = fs.readFileSync(path.join(slice, u, 'cgroup.procs'), 'latin1');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) if (line !== '') out.push(Number(line));
    }
  }
  return out;
}

/** Our units' groups that still exist; empty ones are removed (they are ours by their tagged names). */
function sweepCgroupDirs(units: readonly string[]): { left: number; removed: number } {
  let left = 0;
  let removed = 0;
  for (const slice of CGROUP_SLICES) {
    for (const u of units) {
      const dir = path.join(slice, u);
      if (!fs.existsSync(dir)) continue;
      left++;
      try {
        fs.rmdirSync(dir);
        removed++;
      } catch {
        // still populated: reported by the caller through its pids
      }
    }
  }
  return { left, removed };
}

function isOurSleep(pid: number): boolean {
  return isAlive(pid) && commOf(pid) === 'sleep';
}

/** Kill by pid whatever is in our units' groups, plus the sleeps we saw that are still alive. */
function killLeftovers(units: readonly string[], seen: Iterable<number>): number[] {
  const victims = new Set<number>(cgroupPids(units).filter((p) => isAlive(p)));
  for (const p of seen) if (isOurSleep(p)) victims.add(p);
  for (const p of victims) killPid(p, 'SIGKILL');
  waitGoneSync([...victims], 3000);
  return [...victims].sort((a, b) => a - b);
}

function parseLogLine(
  line: string,
  log: DaemonLog,
  started: ReadonlySet<string>,
  spawnWall: number,
  t0: number,
): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    if (log.nonJson.length < 10) log.nonJson.push(line.slice(0, 300));
    return;
  }
  const stamp = typeof rec.time === 'number' ? rec.time - spawnWall : Number.NaN;
  const received = performance.now() - t0;
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  if (level >= 40) {
    if (level >= 50) log.errorLines++;
    else log.warnings++;
    if (log.firstProblems.length < 8)
      log.firstProblems.push(`${level >= 50 ? 'error' : 'warn'}: ${msg.slice(0, 300)}`);
  }
  if (msg === 'unit files loaded') {
    log.loadedMs = stamp;
    log.loadedReceivedMs = received;
    log.units = rec.units as number;
    log.errors = rec.errors as number;
  } else if (msg === 'coldplug done') {
    log.coldplugMs = rec.ms as number;
    log.devices = rec.devices as number;
  } else if (msg === 'triggerd ready') {
    log.readyMs = stamp;
    log.unitFilesSeen = rec.unitFiles as number;
  } else if (msg === 'stopping units') {
    log.stoppingUnits = rec.units as number;
  } else if (msg === 'still running at shutdown; killing') {
    log.killedAtShutdown++;
  }
  const unit = rec.unit;
  if (typeof unit === 'string' && started.has(unit)) {
    if (rec.to === 'running' && !log.running.has(unit)) {
      log.running.add(unit);
      if (log.running.size === started.size) {
        log.allRunningMs = stamp;
        log.allRunningReceivedMs = received;
      }
    } else if (rec.to === 'failed') {
      log.failed.add(unit);
    }
  }
}

interface UnitStatus {
  sub: string;
  properties: { MainPID?: number; Processes?: { pid: number; cmd: string }[] };
}

/** The daemon's own view, as `triggerctl status UNIT --json` asks for it (one connection, 200 requests). */
async function statusPids(
  socket: string,
  units: readonly string[],
): Promise<{ pids: number[]; notRunning: number }> {
  const client = await ControlClient.connect(socket);
  try {
    const pids: number[] = [];
    let notRunning = 0;
    for (const name of units) {
      const s = (await client.request('unit-status', { name, lines: 0 })) as UnitStatus;
      if (s.sub !== 'running') notRunning++;
      for (const p of s.properties.Processes ?? []) pids.push(p.pid);
      if (typeof s.properties.MainPID === 'number' && s.properties.MainPID > 0)
        pids.push(s.properties.MainPID);
    }
    return { pids: [...new Set(pids)], notRunning };
  } finally {
    client.close();
  }
}

/** `triggerctl list-units --type service --json`: how many of ours run, and whether anything else started. */
async function listServices(
  socket: string,
  tree: UnitTree,
): Promise<{ running: number; otherActive: number; listed: number }> {
  const r = await runCommand(
    process.execPath,
    [TRIGGERCTL, '--socket', socket, 'list-units', '--type', 'service', '--json'],
    {
      timeoutMs: 30_000,
    },
  );
  if (r.code !== 0) throw new Error(`triggerctl list-units failed (${r.code}): ${r.stderr.slice(0, 500)}`);
  const rows = JSON.parse(r.stdout) as { name: string; active: string; sub: string }[];
  const started = new Set(tree.started);
  const ours = rows.filter((row) => row.name.startsWith(`${tree.tag}-`));
  return {
    running: ours.filter((row) => started.has(row.name) && row.sub === 'running').length,
    otherActive: ours.filter((row) => !started.has(row.name) && row.active !== 'inactive').length,
    listed: ours.length,
  };
}

interface DaemonRun {
  loadMs: number;
  loadReceivedMs: number;
  allRunningMs: number;
  allRunningReceivedMs: number;
  coldplugMs: number | undefined;
  devices: number | undefined;
  readyMs: number | undefined;
  unitsLoaded: number | undefined;
  loadErrors: number | undefined;
  unitFilesSeen: number | undefined;
  rssAtAllRunningKiB: number;
  rssKiB: number;
  hwmKiB: number;
  pssKiB: number;
  sleepRssKiB: number;
  runningPerTriggerctl: number;
  otherServicesActive: number;
  sleepPidsSeen: number;
  statusNotRunning: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  forced: boolean;
  stopMs: number;
  stoppingUnits: number | undefined;
  killedAtShutdown: number;
  leftoverProcesses: number[];
  leftoverCgroupDirs: number;
  failedUnits: number;
  warnings: number;
  errorLines: number;
  firstProblems: string[];
}

async function runDaemon(tree: UnitTree, index: string): Promise<DaemonRun> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `triggerd-bench-load-${index}-`));
  const removeTmp = onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  const socket = path.join(tmp, 's.sock');
  const args = [
    DAEMON,
    '--unit-path',
    tree.dir,
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
    'info',
    '--shutdown-timeout',
    String(SHUTDOWN_TIMEOUT_S),
  ];
  const started = new Set(tree.started);
  const seenPids = new Set<number>();
  const log: DaemonLog = {
    running: new Set(),
    failed: new Set(),
    warnings: 0,
    errorLines: 0,
    firstProblems: [],
    killedAtShutdown: 0,
    nonJson: [],
  };
  const stderrTail: string[] = [];
  let child: ChildProcess | undefined;
  const exited = (): boolean => child === undefined || child.exitCode !== null || child.signalCode !== null;
  // On any way out: the daemon by its pid, then whatever is left in our units' groups.
  const killAll = onCleanup(`kill triggerd and its services (run ${index})`, () => {
    if (child?.pid !== undefined && !exited()) {
      killPid(child.pid, 'SIGKILL');
      waitGoneSync([child.pid], 3000);
    }
    killLeftovers(tree.services, seenPids);
    sweepCgroupDirs(tree.services);
  });
  try {
    const spawnWall = Date.now();
    const t0 = performance.now();
    child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = child;
    let partial = '';
    daemon.stdout?.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > MAX_LINE) partial = '';
      for (const line of lines) if (line.length > 0) parseLogLine(line, log, started, spawnWall, t0);
    });
    daemon.stderr?.on('data', (chunk: Buffer) => {
      stderrTail.push(chunk.toString('utf8'));
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const why = (): string =>
      `exit ${daemon.exitCode}, signal ${daemon.signalCode}, running ${log.running.size}/${started.size}, failed ${log.failed.size}; ` +
      `stderr: ${stderrTail.join('').trim().slice(-400)}; problems: ${log.firstProblems.join(' | ')}`;

    // With services: until all of them run; on the empty tree (the baseline): until it is ready.
    const reached = (): boolean =>
      started.size === 0 ? log.readyMs !== undefined : log.allRunningMs !== undefined;
    const ok = await waitFor(() => reached() || exited(), START_TIMEOUT_MS, 5);
    if (!ok || !reached() || log.loadedMs === undefined || log.loadedReceivedMs === undefined)
      throw new Error(
        `daemon run ${index}: ${started.size} services did not all reach running within ${START_TIMEOUT_MS} ms (${why()})`,
      );
    const pid = daemon.pid as number;
    const rssAtAllRunning = statusKiB(pid, 'VmRSS') ?? 0;
    for (const p of childPids(pid)) seenPids.add(p);
    await sleep(SETTLE_MS);
    const rss = statusKiB(pid, 'VmRSS');
    const hwm = statusKiB(pid, 'VmHWM');
    const pss = pssKiB(pid);
    if (rss === undefined || hwm === undefined)
      throw new Error(`daemon run ${index}: exited while running (${why()})`);
    // Where the sleeps are, from all three sources; their memory is theirs, reported apart.
    for (const p of childPids(pid)) seenPids.add(p);
    for (const p of cgroupPids(tree.started)) seenPids.add(p);
    const status = await statusPids(socket, tree.started);
    for (const p of status.pids) seenPids.add(p);
    const sleeps = [...seenPids].filter(isOurSleep);
    const sleepRss = sleeps.reduce((sum, p) => sum + (statusKiB(p, 'VmRSS') ?? 0), 0);
    const listed = await listServices(socket, tree);

    const stopped = await stopChild(daemon, STOP_GRACE_MS);
    // The daemon waits for its stop jobs before it exits; give stragglers a moment to be reaped.
    await waitFor(
      () => [...seenPids].every((p) => !isOurSleep(p)) && cgroupPids(tree.services).length === 0,
      2000,
    );
    const leftovers = killLeftovers(tree.services, seenPids);
    const groups = sweepCgroupDirs(tree.services);
    return {
      loadMs: log.loadedMs,
      loadReceivedMs: log.loadedReceivedMs,
      allRunningMs: log.allRunningMs ?? Number.NaN,
      allRunningReceivedMs: log.allRunningReceivedMs ?? Number.NaN,
      coldplugMs: log.coldplugMs,
      devices: log.devices,
      readyMs: log.readyMs,
      unitsLoaded: log.units,
      loadErrors: log.errors,
      unitFilesSeen: log.unitFilesSeen,
      rssAtAllRunningKiB: rssAtAllRunning,
      rssKiB: rss,
      hwmKiB: hwm,
      pssKiB: pss ?? 0,
      sleepRssKiB: sleepRss,
      runningPerTriggerctl: listed.running,
      otherServicesActive: listed.otherActive,
      sleepPidsSeen: sleeps.length,
      statusNotRunning: status.notRunning,
      exitCode: stopped.exitCode,
      signal: stopped.signal,
      forced: stopped.forced,
      stopMs: stopped.ms,
      stoppingUnits: log.stoppingUnits,
      killedAtShutdown: log.killedAtShutdown,
      leftoverProcesses: leftovers,
      leftoverCgroupDirs: groups.left,
      failedUnits: log.failed.size,
      warnings: log.warnings,
      errorLines: log.errorLines,
      firstProblems: log.firstProblems,
    };
  } finally {
    killAll();
    removeTmp();
  }
}

function summarizeDaemon(runs: DaemonRun[], baseline: DaemonRun[]): object {
  const med = (f: (r: DaemonRun) => number): number => median(runs.map(f));
  const leftovers = runs.flatMap((r) => r.leftoverProcesses);
  const baseLoad = median(baseline.map((r) => r.loadMs));
  const baseRss = median(baseline.map((r) => r.rssKiB));
  return {
    what:
      `node dist/src/cli/triggerd.js --unit-path <tree> --rules-path rules --runtime-dir <tmp> --control-socket <tmp>/s.sock ` +
      `--mode standalone --log-format json --log-level info --shutdown-timeout ${SHUTDOWN_TIMEOUT_S}; ` +
      'times from spawn to the log stamp of the line (receivedMs: when this process read it)',
    runs: runs.length,
    loadMs: round(med((r) => r.loadMs)),
    loadRunsMs: runs.map((r) => round(r.loadMs)),
    loadReceivedMs: round(med((r) => r.loadReceivedMs)),
    coldplugMs: runs.map((r) => r.coldplugMs),
    devices: runs[0]?.devices,
    allRunningMs: round(med((r) => r.allRunningMs)),
    allRunningRunsMs: runs.map((r) => round(r.allRunningMs)),
    allRunningReceivedMs: round(med((r) => r.allRunningReceivedMs)),
    readyMs: runs.map((r) => r.readyMs),
    unitsLoaded: runs.map((r) => r.unitsLoaded),
    expectedUnitsLoaded: DAEMON_UNITS,
    loadErrors: runs.map((r) => r.loadErrors),
    unitFilesSeen: runs.map((r) => r.unitFilesSeen),
    rssMB: kibToMb(med((r) => r.rssKiB)),
    rssRunsMB: runs.map((r) => kibToMb(r.rssKiB)),
    rssAtAllRunningMB: kibToMb(med((r) => r.rssAtAllRunningKiB)),
    hwmMB: kibToMb(med((r) => r.hwmKiB)),
    pssMB: kibToMb(med((r) => r.pssKiB)),
    rssSampledAfterMs: SETTLE_MS,
    sleepProcesses: {
      seen: runs.map((r) => r.sleepPidsSeen),
      rssTotalMB: kibToMb(med((r) => r.sleepRssKiB)),
      note: 'separate processes: not in rssMB',
    },
    runningPerTriggerctl: runs.map((r) => r.runningPerTriggerctl),
    statusNotRunning: runs.map((r) => r.statusNotRunning),
    otherServicesActive: runs.map((r) => r.otherServicesActive),
    failedUnits: runs.map((r) => r.failedUnits),
    logWarnings: runs.map((r) => r.warnings),
    logErrors: runs.map((r) => r.errorLines),
    firstProblems: runs[0]?.firstProblems ?? [],
    stop: {
      exitCodes: runs.map((r) => r.exitCode ?? r.signal),
      forced: runs.map((r) => r.forced),
      stopMs: runs.map((r) => round(r.stopMs)),
      stopJobs: runs.map((r) => r.stoppingUnits),
      killedAtShutdown: runs.map((r) => r.killedAtShutdown),
    },
    cleanExit: runs.every((r) => r.exitCode === 0 && !r.forced),
    leftoverProcesses: leftovers.length,
    leftoverPids: leftovers.slice(0, 20),
    leftoverCgroupDirs: runs.map((r) => r.leftoverCgroupDirs),
    baseline: {
      what: 'the same command on an empty unit directory: Node start-up, addons, coldplug, implicit targets',
      runs: baseline.length,
      loadMs: round(baseLoad),
      loadRunsMs: baseline.map((r) => round(r.loadMs)),
      rssMB: kibToMb(baseRss),
      cleanExit: baseline.every((r) => r.exitCode === 0 && !r.forced),
    },
    loadOverBaselineMs: round(med((r) => r.loadMs) - baseLoad),
    rssOverBaselineMB: kibToMb(med((r) => r.rssKiB) - baseRss),
  };
}

// --------------------------------------------------------------------------------------------
// Peer: systemd-analyze verify on a sample of the same units

async function measurePeer(tree: UnitTree): Promise<object> {
  // Ours on exactly the same sample directory, for the per-unit comparison.
  const oursMs: number[] = [];
  for (let i = 0; i < PEER_RUNS * 2; i++) oursMs.push(loadOnce(tree.sampleDir).run.ms);
  const ours = {
    name: 'triggerd UnitLoader on the same 20 files (in-process)',
    medianMs: round(median(oursMs), 2),
    msPerUnit: round(median(oursMs) / PEER_SAMPLE, 3),
  };
  if (!fs.existsSync(SYSTEMD_ANALYZE))
    return { name: 'systemd-analyze verify', skipped: `${SYSTEMD_ANALYZE} is not installed`, ours };
  const version = (await runCommand(SYSTEMD_ANALYZE, ['--version'], { timeoutMs: 10_000 })).stdout.split(
    '\n',
  )[0];
  const major = /^systemd (\d+)/.exec(version)?.[1] ?? '?';
  const env = { ...process.env, SYSTEMD_LOG_TARGET: 'console', SYSTEMD_LOG_COLOR: '0' };
  const all: number[] = [];
  const one: number[] = [];
  const codes: (number | null)[] = [];
  let output = '';
  for (let i = 0; i < PEER_RUNS; i++) {
    // Interleaved, so drift on the machine hits both alike.
    const a = await runCommand(SYSTEMD_ANALYZE, [...PEER_ARGS, ...tree.sampleFiles], {
      timeoutMs: 60_000,
      env,
    });
    const b = await runCommand(SYSTEMD_ANALYZE, [...PEER_ARGS, tree.sampleFiles[0]], {
      timeoutMs: 60_000,
      env,
    });
    all.push(a.ms);
    one.push(b.ms);
    codes.push(a.code);
    output = (a.stdout + a.stderr).trim();
  }
  const lines = output === '' ? [] : output.split('\n');
  return {
    name: `systemd-analyze verify (${major})`,
    version,
    command: `${SYSTEMD_ANALYZE} ${PEER_ARGS.join(' ')} <20 unit files>`,
    units: PEER_SAMPLE,
    runs: PEER_RUNS,
    medianMs: round(median(all), 1),
    msPerUnit: round(median(all) / PEER_SAMPLE, 2),
    oneUnitMedianMs: round(median(one), 1),
    marginalMsPerUnit: round((median(all) - median(one)) / (PEER_SAMPLE - 1), 2),
    exitCodes: codes,
    outputLines: lines.length,
    firstOutput: lines.slice(0, 5),
    ours,
    note:
      'rough comparison only: a process per run (start-up, its own unit-path scan, an executor fork) and it also checks ' +
      'that ExecStart= binaries exist; marginalMsPerUnit removes the fixed cost. The sample is 5 started, 5 idle, 5 ' +
      'oneshot services and 5 targets with their drop-ins, copied to a directory of their own (dependencies not found there)',
  };
}

// --------------------------------------------------------------------------------------------

async function main(): Promise<object> {
  for (const f of [DAEMON, TRIGGERCTL])
    if (!fs.existsSync(f)) throw new Error(`${f} is missing; build first (npx tsc -p tsconfig.json)`);
  const loadBefore = os.loadavg()[0];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-units-'));
  const removeRoot = onCleanup(`remove ${root}`, () => fs.rmSync(root, { recursive: true, force: true }));
  try {
    const tag = `lu${process.pid.toString(36)}`;
    const tree = writeUnitTree(root, tag);
    if (tree.unitFiles !== UNIT_FILES)
      throw new Error(`wrote ${tree.unitFiles} unit files, meant ${UNIT_FILES}`);
    const inProcess = measureInProcess(tree);
    // The floor first: the same daemon on an empty unit directory.
    const empty = { ...tree, dir: path.join(root, 'empty'), started: [], services: [] };
    fs.mkdirSync(empty.dir);
    const baselineRuns: DaemonRun[] = [];
    for (let i = 0; i < BASELINE_RUNS; i++) baselineRuns.push(await runDaemon(empty, `empty-${i}`));
    const daemonRuns: DaemonRun[] = [];
    for (let i = 0; i < DAEMON_RUNS; i++) daemonRuns.push(await runDaemon(tree, String(i)));
    const daemon = summarizeDaemon(daemonRuns, baselineRuns);
    const peer = await measurePeer(tree);
    const loadMs = median(daemonRuns.map((r) => r.loadMs));
    const rssMB = kibToMb(median(daemonRuns.map((r) => r.rssKiB)));
    return {
      benchmark: 'load-units',
      host: hostInfo(),
      // Other work on the machine moves these figures a lot (2 CPUs): say how busy it was.
      loadAverage1m: { before: round(loadBefore, 2), after: round(os.loadavg()[0], 2) },
      tree: {
        unitFiles: tree.unitFiles,
        services: STARTED + IDLE + ONESHOTS + TEMPLATES,
        targets: TARGETS,
        kinds: {
          startedSimple: STARTED,
          idleSimple: IDLE,
          oneshotRemainAfterExit: ONESHOTS,
          templates: TEMPLATES,
        },
        dropIns: tree.dropIns,
        wantsLinks: tree.wantsLinks,
        templateInstancesViaWants: TARGETS - 100,
        enabledInMultiUserTarget: STARTED,
        unitNamePrefix: tag,
      },
      inProcess,
      endToEnd: daemon,
      loadMs: round(loadMs),
      allRunningMs: round(median(daemonRuns.map((r) => r.allRunningMs))),
      rssMB,
      cleanExit: daemonRuns.every((r) => r.exitCode === 0 && !r.forced),
      leftoverProcesses: daemonRuns.reduce((n, r) => n + r.leftoverProcesses.length, 0),
      target: { loadMs: TARGET_LOAD_MS, rssMB: TARGET_RSS_MB },
      meetsTarget: loadMs < TARGET_LOAD_MS && rssMB < TARGET_RSS_MB,
      peer,
    };
  } finally {
    removeRoot();
  }
}

runBenchmark(main);
