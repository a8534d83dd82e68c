// Runs a private triggerd as a child process for integration tests: its own runtime dir and
// control socket, JSON logs collected, stopped by pid (never by name) when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlClient } from '../../src/control/client';
import { addonCandidates } from '../../src/native/addon';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const TRIGGERD = path.join(REPO_ROOT, 'dist/src/cli/triggerd.js');
export const TRIGGERCTL = path.join(REPO_ROOT, 'dist/src/cli/triggerctl.js');

export interface RunningDaemon {
  proc: ChildProcess;
  pid: number;
  dir: string;
  socket: string;
  logs: Record<string, unknown>[];
  client(): Promise<ControlClient>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

export function skipUnlessRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : `needs root (running as uid ${process.getuid?.()})`;
}

/** Path units under the daemon need root and the inotify addon; says which is missing. */
export function skipUnlessPathUnits(): string | undefined {
  return (
    skipUnlessRoot() ??
    (addonCandidates('triggerd_inotify.node').some((f) => fs.existsSync(f))
      ? undefined
      : 'needs the triggerd_inotify addon (npm install builds it)')
  );
}

/** The fields of a `unit-status` answer that the tests read. */
export interface UnitStatus {
  active: string;
  sub: string;
  statusLines: string[];
  properties: Record<string, unknown>;
}

/** `dir`: run on an existing runtime dir (a restart after a crash finds the state file there). */
export async function startDaemon(
  extraArgs: string[] = [],
  opts: { dir?: string; env?: Record<string, string> } = {},
): Promise<RunningDaemon> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-test-'));
  fs.chmodSync(dir, 0o755);
  const socket = path.join(dir, 'control.sock');
  const proc = spawn(
    process.execPath,
    [
      TRIGGERD,
      '--unit-path',
      path.join(REPO_ROOT, 'examples'),
      '--rules-path',
      path.join(REPO_ROOT, 'rules'),
      '--runtime-dir',
      dir,
      '--control-socket',
      socket,
      '--mode',
      'standalone',
      '--log-format',
      'json',
      '--log-level',
      'debug',
      // The udev database goes to a private place; /dev links are real (the tests check them).
      '--udev-run-dir',
      path.join(dir, 'udev'),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } },
  );
  const logs: Record<string, unknown>[] = [];
  /** This daemon's fd holders (a restart's new daemon kills the one it takes the sockets from). */
  const mine = new Set<number>();
  const waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let buf = '';
  // TRIGGERD_TEST_LOG_DIR: every test daemon's log is kept there too (hunting a rare failure).
  const keepLog = process.env.TRIGGERD_TEST_LOG_DIR;
  const logFile =
    keepLog === undefined || keepLog === ''
      ? undefined
      : path.join(keepLog, `${path.basename(process.argv[1] ?? 'test')}.${path.basename(dir)}.log`);
  proc.stdout?.on('data', (chunk: Buffer) => {
    if (logFile !== undefined) fs.appendFileSync(logFile, chunk);
    buf += chunk.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { msg: line };
      }
      logs.push(parsed);
      if (parsed.msg === 'fd holder started' && typeof parsed.pid === 'number') {
        mine.add(parsed.pid);
        holders.add(parsed.pid);
      }
      for (const w of waiters.splice(0)) {
        if (w.match(parsed)) w.resolve(parsed);
        else waiters.push(w);
      }
    }
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const waitForLog = (
    match: (l: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs,
      );
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  };
  const pid = proc.pid;
  if (pid === undefined) throw new Error('daemon did not start');
  const d: RunningDaemon = {
    proc,
    pid,
    dir,
    socket,
    logs,
    exited,
    waitForLog,
    client: () => ControlClient.connect(socket),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => {
          if (proc.exitCode === null) process.kill(pid, 'SIGKILL');
        }, 5000);
        const code = await exited;
        clearTimeout(timer);
        killHolders(mine);
        fs.rmSync(dir, { recursive: true, force: true });
        return code;
      }
      killHolders(mine);
      fs.rmSync(dir, { recursive: true, force: true });
      return proc.exitCode;
    },
  };
  await Promise.race([
    waitForLog((l) => l.msg === 'triggerd ready', 15_000),
    exited.then((code) => {
      throw new Error(`triggerd exited with ${code} before it was ready: ${stderr}`);
    }),
  ]);
  return d;
}

/**
 * The fd holders the daemons of this file started (src/core/fd-holder.ts). A clean stop kills
 * its own; one of a daemon killed on purpose and not restarted outlives it, so the test kills
 * it: by pid, after checking that the pid is still a holder.
 */
const holders = new Set<number>();

function killHolders(which: Set<number> = holders): void {
  for (const pid of which) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('triggerd: fd holder'))
        process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    holders.delete(pid);
    which.delete(pid);
  }
}
process.once('exit', () => killHolders());

/** A temporary directory with `units/` (the daemon's unit path) and `work/`, and a unit writer. */
export function unitScratch(prefix: string): {
  dir: string;
  units: string;
  work: string;
  unit(name: string, text: string): void;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const units = path.join(dir, 'units');
  const work = path.join(dir, 'work');
  fs.mkdirSync(units);
  fs.mkdirSync(work);
  return { dir, units, work, unit: (name, text) => fs.writeFileSync(path.join(units, name), text) };
}

/** `unit-status` of one unit over a control connection. */
export function unitStatus(client: ControlClient, name: string): Promise<UnitStatus> {
  return client.request('unit-status', { name, lines: 20 }) as Promise<UnitStatus>;
}

/** A file's non-empty lines; none while it does not exist (what a job appends, run by run). */
export function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Run a command, resolve with its output; reject on non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { allowFail?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0 && !opts.allowFail)
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** Poll until `check` returns a value (not undefined), or fail after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
