// Process helpers for benchmarks: bounded command runs, /proc memory figures, and stopping a
// child we started by its pid (never by name).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { onCleanup } from './cleanup';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` every `intervalMs` until it is true or `timeoutMs` passed; returns the last answer. */
export async function waitFor(check: () => boolean, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Output kept per stream; a chatty command cannot grow the benchmark's memory without bound. */
const OUTPUT_LIMIT = 4 * 1024 * 1024;

/** Run a command to completion (killed by its pid after `timeoutMs`), capturing bounded output. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: {
    timeoutMs: number;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Kill it if the benchmark is interrupted (default); not for apt-get, which must not die midway. */
    killOnCleanup?: boolean;
    /** In a session of its own (setsid): with autogroup scheduling, a CPU-share group of its own. */
    ownSession?: boolean;
  },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: options.env,
        cwd: options.cwd,
        detached: options.ownSession === true,
      });
    } catch (err) {
      resolve({ code: null, signal: null, stdout: '', stderr: String(err), ms: 0, timedOut: false });
      return;
    }
    const dispose =
      options.killOnCleanup === false
        ? () => undefined
        : onCleanup(`kill ${command}`, () => {
            if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
              killPid(child.pid, 'SIGKILL');
            }
          });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (outBytes < OUTPUT_LIMIT) out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errBytes < OUTPUT_LIMIT) err.push(chunk);
      errBytes += chunk.length;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
    }, options.timeoutMs);
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      dispose();
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - t0,
        timedOut,
      });
    });
  });
}

/** kill(2) that tolerates a process that is already gone. */
export function killPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export interface StopResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough and SIGKILL was sent. */
  forced: boolean;
  ms: number;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<StopResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ exitCode: child.exitCode, signal: child.signalCode, forced: false, ms: 0 });
      return;
    }
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
    }, graceMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code, signal, forced, ms: performance.now() - t0 });
    });
    if (child.pid !== undefined) killPid(child.pid, 'SIGTERM');
  });
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...), in KiB; undefined when gone. */
export function statusKiB(pid: number, field: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** Proportional set size in KiB (shared pages split among their users); undefined when gone. */
export function pssKiB(pid: number): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    const match = /^Pss:\s+(\d+) kB/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** Whether a pid exists and has not exited (a zombie has exited: it only waits to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Block (no event loop: usable in exit handlers) until none of the pids is alive, at most `ms`. */
export function waitGoneSync(pids: readonly number[], ms: number): boolean {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + ms;
  for (;;) {
    if (pids.every((p) => !isAlive(p))) return true;
    if (performance.now() >= deadline) return false;
    Atomics.wait(cell, 0, 0, 10);
  }
}

/** The command name of a pid, or undefined when it is gone. */
export function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  } catch {
    return undefined;
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm may contain spaces and parentheses: the fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Direct children of `pid` (udevd's workers are its direct children). */
export function childPids(pid: number): number[] {
  return allPids().filter((p) => parentOf(p) === pid);
}

/** Live pids whose command name is one of `names` (to see whether a peer already runs; never to kill). */
export function pidsByComm(names: readonly string[]): number[] {
  return allPids().filter((p) => {
    const comm = commOf(p);
    return comm !== undefined && names.includes(comm) && isAlive(p);
  });
}

export interface TreeMemory {
  /** Sum of VmRSS over the process and its direct children, KiB (shared pages counted per process). */
  rssKiB: number;
  /** Sum of Pss over the same processes, KiB. */
  pssKiB: number;
  processes: number;
  children: number[];
}

/** Memory of a process plus its direct children, read from /proc. */
export function treeMemory(pid: number): TreeMemory {
  const children = childPids(pid);
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const p of [pid, ...children]) {
    const r = statusKiB(p, 'VmRSS');
    if (r === undefined) continue;
    rss += r;
    pss += pssKiB(p) ?? 0;
    processes++;
  }
  return { rssKiB: rss, pssKiB: pss, processes, children };
}
