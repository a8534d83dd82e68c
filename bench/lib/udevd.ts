// The udev peer: Debian's systemd-udevd, run standalone as our child for the duration of one
// measurement. Installing it is opt-in (CI or TRIGGERD_BENCH_INSTALL=1) and never starts a
// service; running it masks the interface-renaming rules so no network interface changes name.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { aptInstall, installAllowed } from './apt';
import { onCleanup } from './cleanup';
import {
  childPids,
  commOf,
  isAlive,
  killPid,
  pidsByComm,
  runCommand,
  sleep,
  stopChild,
  treeMemory,
  waitFor,
  waitGoneSync,
  type StopResult,
  type TreeMemory,
} from './proc';

const UDEVD_CANDIDATES = ['/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'];
const UDEVADM_CANDIDATES = ['/usr/bin/udevadm', '/bin/udevadm', '/sbin/udevadm', '/usr/sbin/udevadm'];
const RULES_DIR = '/etc/udev/rules.d';
const NET_SETUP_LINK_MASK = `${RULES_DIR}/80-net-setup-link.rules`;
const SAVED_SUFFIX = '.triggerd-bench-saved';
const RUN_UDEV = '/run/udev';
const UDEVD_COMMS = ['systemd-udevd', 'udevd', '(udev-worker)'];

export interface UdevTools {
  udevd: string;
  udevadm: string;
  version: string;
  /** 'preinstalled', or 'installed-now' when this run installed the package. */
  origin: 'preinstalled' | 'installed-now';
}

export type UdevAvailability = { ok: true; tools: UdevTools } | { ok: false; reason: string };

/** Whether this run may install packages (bench/lib/apt; re-exported for udevd's users). */
export { installAllowed };

function firstExisting(paths: readonly string[]): string | undefined {
  return paths.find((p) => fs.existsSync(p));
}

function findTools(): { udevd: string; udevadm: string } | undefined {
  const udevd = firstExisting(UDEVD_CANDIDATES);
  const udevadm = firstExisting(UDEVADM_CANDIDATES);
  return udevd === undefined || udevadm === undefined ? undefined : { udevd, udevadm };
}

/** Find udevd and udevadm, installing Debian's `udev` package first when allowed. */
export async function ensureUdev(allowInstall: boolean): Promise<UdevAvailability> {
  let origin: UdevTools['origin'] = 'preinstalled';
  let found = findTools();
  if (found === undefined) {
    if (!allowInstall) {
      return {
        ok: false,
        reason:
          'systemd-udevd/udevadm are not installed (package "udev"); set TRIGGERD_BENCH_INSTALL=1 ' +
          '(or CI=true) to let the benchmark install it',
      };
    }
    const failure = await installUdev();
    if (failure !== undefined) return { ok: false, reason: failure };
    found = findTools();
    if (found === undefined)
      return { ok: false, reason: 'apt-get install udev succeeded but udevd/udevadm are missing' };
    origin = 'installed-now';
  }
  const v = await runCommand(found.udevadm, ['--version'], { timeoutMs: 10_000 });
  return { ok: true, tools: { ...found, version: v.stdout.trim(), origin } };
}

/** apt-get install udev (daemons never started: see aptInstall); returns an error text. */
function installUdev(): Promise<string | undefined> {
  return aptInstall(['udev']);
}

/** What the rules mask replaced, so it can be put back exactly. */
interface MaskUndo {
  restore(): void;
}

/** Point 80-net-setup-link.rules at /dev/null (udev's documented way to disable a rules file). */
function maskNetSetupLink(): MaskUndo {
  const createdDir = !fs.existsSync(RULES_DIR);
  if (createdDir) fs.mkdirSync(RULES_DIR, { recursive: true });
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(NET_SETUP_LINK_MASK);
  } catch {
    existing = undefined;
  }
  if (existing?.isSymbolicLink() === true && fs.readlinkSync(NET_SETUP_LINK_MASK) === '/dev/null') {
    return { restore: () => undefined }; // already masked by someone else: leave it alone
  }
  const saved = NET_SETUP_LINK_MASK + SAVED_SUFFIX;
  if (existing !== undefined) fs.renameSync(NET_SETUP_LINK_MASK, saved); // keeps content, mode, link
  fs.symlinkSync('/dev/null', NET_SETUP_LINK_MASK);
  return {
    restore: () => {
      fs.rmSync(NET_SETUP_LINK_MASK, { force: true });
      if (existing !== undefined) fs.renameSync(saved, NET_SETUP_LINK_MASK);
      if (createdDir && fs.readdirSync(RULES_DIR).length === 0) fs.rmdirSync(RULES_DIR);
    },
  };
}

export interface RunningUdevd {
  pid: number;
  tools: UdevTools;
  /** udevd plus its workers now. */
  memory(): TreeMemory;
  /** Stop by pid (SIGTERM, SIGKILL after 5 s), kill leftover workers by pid, restore the mask. */
  stop(): Promise<StopResult>;
}

/** Start udevd in the foreground as our child and wait until it answers `udevadm control --ping`. */
export async function startUdevd(tools: UdevTools): Promise<RunningUdevd> {
  const others = pidsByComm(UDEVD_COMMS);
  if (others.length > 0) throw new Error(`another udevd is already running (pids ${others.join(', ')})`);
  // udevd starts from a clean /run/udev and leaves nothing there: what was there is put aside
  // and brought back afterwards (a stale database would otherwise outlive the run).
  const aside = `${RUN_UDEV}.bench-${process.pid}`;
  const runUdevExisted = fs.existsSync(RUN_UDEV);
  if (runUdevExisted) fs.renameSync(RUN_UDEV, aside);
  const mask = maskNetSetupLink();
  const workersSeen = new Set<number>();
  let child: ChildProcess | undefined;

  // Everything below is undone by this one step, on every path out.
  const undo = (): void => {
    const victims: number[] = [];
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      victims.push(child.pid);
      for (const w of childPids(child.pid)) workersSeen.add(w); // workers not sampled yet
    }
    for (const w of workersSeen) if (isAlive(w) && UDEVD_COMMS.includes(commOf(w) ?? '')) victims.push(w);
    for (const v of victims) killPid(v, 'SIGKILL');
    // Synchronous: this also runs from exit and signal handlers, where no event loop turns.
    waitGoneSync(victims, 2000);
    mask.restore();
    // /run/udev is now this udevd's runtime state: remove it and bring back what was there.
    if (pidsByComm(UDEVD_COMMS).length === 0) {
      fs.rmSync(RUN_UDEV, { recursive: true, force: true });
      if (runUdevExisted && fs.existsSync(aside)) fs.renameSync(aside, RUN_UDEV);
    }
  };
  const dispose = onCleanup('stop udevd and restore the rules mask', undo);

  const stderrTail: string[] = [];
  try {
    child = spawn(tools.udevd, [], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail.push(chunk.toString('utf8'));
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const started = child;
    const exited = (): boolean => started.exitCode !== null || started.signalCode !== null;
    let answering = false;
    const deadline = performance.now() + 15_000;
    while (!answering && !exited() && performance.now() < deadline) {
      if (fs.existsSync(`${RUN_UDEV}/control`)) {
        const ping = await runCommand(tools.udevadm, ['control', '--ping', '--timeout=1'], {
          timeoutMs: 5000,
        });
        answering = ping.code === 0;
      }
      if (!answering) await sleep(50);
    }
    if (!answering) {
      throw new Error(
        `systemd-udevd did not answer a ping within 15 s (exit ${started.exitCode}, signal ${started.signalCode}): ` +
          stderrTail.join('').trim().slice(-400),
      );
    }
  } catch (err) {
    dispose();
    throw err;
  }
  const pid = child.pid as number;
  const running = child;
  return {
    pid,
    tools,
    memory: () => {
      const m = treeMemory(pid);
      for (const c of m.children) workersSeen.add(c);
      return m;
    },
    stop: async () => {
      for (const c of treeMemory(pid).children) workersSeen.add(c);
      const result = await stopChild(running, 5000);
      // Workers die with udevd (it kills them on exit; PDEATHSIG otherwise); give them a moment.
      await waitFor(
        () => [...workersSeen].every((w) => !isAlive(w) || !UDEVD_COMMS.includes(commOf(w) ?? '')),
        2000,
      );
      dispose();
      return result;
    },
  };
}
