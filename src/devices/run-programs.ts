// Programs the rules run: RUN{program} after an event is processed, and PROGRAM / IMPORT{program}
// while the rules execute. As udevd 252 does it (udev_event_spawn()):
// - the command is split into argv without a shell: whitespace separates, '...' and "..." quote
//   (unbalanced quotes run to the end), backslashes are kept as they are;
// - a relative program name is looked up in udev's program directory (/lib/udev, /usr/lib/udev);
// - the environment is the event's properties and nothing else (hidden '.' keys excluded);
// - a timeout (180 s by default, the event timeout) ends the program with SIGKILL;
// - PROGRAM output is capped (16 KiB, udev's UDEV_LINE_SIZE): the excess is dropped with a warning.
// A program that hangs, floods or fails never holds the caller past its timeout: the promise
// settles at the deadline even if the process or a grandchild holding the pipe lingers.
//
// Spawning goes through the `ProgramRunner` interface. The daemon must use NativeProgramRunner
// (native spawn; its exits are routed in by the daemon's child watcher, which reaps every child of
// the process, so node:child_process must not be used inside the daemon). childProcessRunner() is
// for tests and tools only.
import fs = require('node:fs');
import net = require('node:net');
import path = require('node:path');
import { constants as osConstants } from 'node:os';
import { spawn as nodeSpawn } from 'node:child_process';
import type { ExecPlan } from '../exec/exec-plan';
import type { RunProgram } from './rules/rules-result';

export interface ProgramExit {
  code: 'exited' | 'killed' | 'dumped';
  /** Exit status for 'exited', signal number otherwise. */
  status: number;
}

/** Callbacks a runner delivers a program's life through (never synchronously inside spawn()). */
export interface ProgramIo {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** EOF on one stream. */
  closed(stream: 'stdout' | 'stderr'): void;
  exited(exit: ProgramExit): void;
}

export interface SpawnedProgram {
  pid: number;
  /** Signal the program; a no-op once it is gone. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): void;
}

export interface ProgramRunner {
  /** Starts argv[0] (an absolute path) with exactly `env`. Throws when it cannot start (ENOENT...). */
  spawn(argv: readonly string[], env: Readonly<Record<string, string>>, io: ProgramIo): SpawnedProgram;
}

export const PROGRAM_ERROR_CODES = [
  'ERR_PROGRAM_EMPTY',
  'ERR_PROGRAM_SPAWN',
  'ERR_PROGRAM_TIMEOUT',
  'ERR_PROGRAM_FAILED',
  'ERR_PROGRAM_KILLED',
] as const;
export type ProgramErrorCode = (typeof PROGRAM_ERROR_CODES)[number];

export type ProgramWarningCode = 'WARN_PROGRAM_OUTPUT_TRUNCATED';

export interface ProgramResult {
  argv: string[];
  /** Exited with status 0 within the timeout. */
  ok: boolean;
  exit?: ProgramExit;
  timedOut: boolean;
  /** Captured stdout (PROGRAM / IMPORT{program}); '' when not captured. */
  stdout: string;
  /** Stdout was longer than the cap; the rest was dropped. */
  truncated: boolean;
  error?: { code: ProgramErrorCode; message: string };
}

export const DEFAULT_PROGRAM_TIMEOUT_MS = 180_000;
export const DEFAULT_PROGRAM_OUTPUT_BYTES = 16 * 1024;
export const DEFAULT_LIBEXEC_DIRS: readonly string[] = ['/lib/udev', '/usr/lib/udev'];

export interface RunProgramOptions {
  runner: ProgramRunner;
  /** The event's properties; hidden ('.') keys are dropped. */
  env: Iterable<readonly [string, string]>;
  /** Default 180 s. */
  timeoutMs?: number;
  /** Keep stdout as the result (PROGRAM, IMPORT{program}); otherwise it is logged like stderr. */
  captureStdout?: boolean;
  /** Stdout cap in bytes (default 16 KiB); also the longest log line. */
  maxOutputBytes?: number;
  /** Lines of stderr (and of stdout when not captured), for the log. */
  onOutput?: (stream: 'stdout' | 'stderr', line: string) => void;
  onWarning?: (code: ProgramWarningCode, message: string) => void;
  /** After the program exited, how long to wait for its pipes to close (a grandchild may hold them). */
  drainMs?: number;
  libexecDirs?: readonly string[];
  /** For tests: whether a program file exists (default fs.existsSync). */
  exists?: (file: string) => boolean;
}

/** udev's strv_split_full(EXTRACT_UNQUOTE | EXTRACT_RELAX | EXTRACT_RETAIN_ESCAPE). */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (const c of command) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A relative program name → udev's program directory (the first that has it; else the first). */
export function resolveProgram(
  name: string,
  dirs: readonly string[] = DEFAULT_LIBEXEC_DIRS,
  exists: (file: string) => boolean = fs.existsSync,
): string {
  if (name.startsWith('/') || dirs.length === 0) return name;
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (exists(candidate)) return candidate;
  }
  return path.join(dirs[0] as string, name);
}

export function programEnvironment(properties: Iterable<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of properties) if (!key.startsWith('.') && key.length > 0) env[key] = value;
  return env;
}

/** Splits chunks into lines, none longer than `max` bytes (longer ones are cut). */
class LineSplitter {
  private pending = Buffer.alloc(0);

  constructor(
    private readonly max: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) break;
      this.emitCut(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    while (buf.length > this.max) {
      this.emit(buf.subarray(0, this.max).toString('utf8'));
      buf = buf.subarray(this.max);
    }
    this.pending = Buffer.from(buf);
  }

  end(): void {
    if (this.pending.length > 0) this.emitCut(this.pending);
    this.pending = Buffer.alloc(0);
  }

  private emitCut(line: Buffer): void {
    for (let i = 0; i < line.length || i === 0; i += this.max) {
      this.emit(line.subarray(i, i + this.max).toString('utf8'));
      if (line.length === 0) break;
    }
  }
}

/** Runs one command to completion (or its timeout). Never rejects. */
export function runProgram(command: string, opts: RunProgramOptions): Promise<ProgramResult> {
  const argv = splitCommand(command);
  const empty = (code: ProgramErrorCode, message: string): ProgramResult => ({
    argv,
    ok: false,
    timedOut: false,
    stdout: '',
    truncated: false,
    error: { code, message },
  });
  if (argv.length === 0) return Promise.resolve(empty('ERR_PROGRAM_EMPTY', 'empty command'));
  argv[0] = resolveProgram(argv[0] as string, opts.libexecDirs, opts.exists);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  const cap = opts.maxOutputBytes ?? DEFAULT_PROGRAM_OUTPUT_BYTES;
  const capture = opts.captureStdout === true;
  const onOutput = opts.onOutput ?? (() => undefined);
  const lines = {
    stdout: new LineSplitter(cap, (l) => onOutput('stdout', l)),
    stderr: new LineSplitter(cap, (l) => onOutput('stderr', l)),
  };

  return new Promise<ProgramResult>((resolve) => {
    const captured: Buffer[] = [];
    let capturedBytes = 0;
    let truncated = false;
    let exit: ProgramExit | undefined;
    const open = new Set<'stdout' | 'stderr'>(['stdout', 'stderr']);
    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;
    let child: SpawnedProgram | undefined;

    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      lines.stdout.end();
      lines.stderr.end();
      let error: ProgramResult['error'];
      if (timedOut)
        error = {
          code: 'ERR_PROGRAM_TIMEOUT',
          message: `'${argv.join(' ')}' timed out after ${timeoutMs} ms, killed`,
        };
      else if (exit !== undefined && exit.code !== 'exited') {
        error = { code: 'ERR_PROGRAM_KILLED', message: `'${argv[0]}' was killed by signal ${exit.status}` };
      } else if (exit !== undefined && exit.status !== 0) {
        error = { code: 'ERR_PROGRAM_FAILED', message: `'${argv[0]}' exited with status ${exit.status}` };
      }
      resolve({
        argv,
        ok: error === undefined,
        exit,
        timedOut,
        stdout: Buffer.concat(captured).toString('utf8'),
        truncated,
        error,
      });
    };

    const deadline = setTimeout(() => {
      // udev sends the timeout signal (SIGKILL) and gives up on the program.
      try {
        child?.kill('SIGKILL');
      } catch {
        // gone already
      }
      finish(exit === undefined);
    }, timeoutMs);

    const maybeDone = (): void => {
      if (exit === undefined) return;
      if (open.size === 0) finish(false);
      else if (drainTimer === undefined) drainTimer = setTimeout(() => finish(false), opts.drainMs ?? 1000);
    };

    const io: ProgramIo = {
      output(stream, chunk) {
        if (settled) return;
        if (stream === 'stdout' && capture) {
          const room = cap - capturedBytes;
          if (chunk.length > room) {
            if (!truncated) {
              truncated = true;
              opts.onWarning?.(
                'WARN_PROGRAM_OUTPUT_TRUNCATED',
                `truncating stdout of '${argv[0]}' to ${cap} bytes`,
              );
            }
            if (room > 0) captured.push(Buffer.from(chunk.subarray(0, room)));
            capturedBytes = cap;
          } else {
            captured.push(Buffer.from(chunk));
            capturedBytes += chunk.length;
          }
          return;
        }
        lines[stream].push(chunk);
      },
      closed(stream) {
        open.delete(stream);
        maybeDone();
      },
      exited(e) {
        exit = e;
        maybeDone();
      },
    };

    try {
      child = opts.runner.spawn(argv, programEnvironment(opts.env), io);
    } catch (err) {
      settled = true;
      clearTimeout(deadline);
      resolve(
        empty(
          'ERR_PROGRAM_SPAWN',
          `cannot run '${argv[0]}': ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
    }
  });
}

export interface RunListOptions extends Omit<RunProgramOptions, 'captureStdout'> {
  /** RUN{builtin}: handled by the rules host (its builtins table). */
  runBuiltin?: (command: string, entry: RunProgram) => Promise<void> | void;
  /** Each program's result, with the entry (file:line) that asked for it. */
  onResult?: (entry: RunProgram, result: ProgramResult) => void;
}

/** RUN entries of one event, one after another as udevd runs them; failures are reported, not thrown. */
export async function executeRunList(
  entries: readonly RunProgram[],
  opts: RunListOptions,
): Promise<ProgramResult[]> {
  const results: ProgramResult[] = [];
  for (const entry of entries) {
    if (entry.kind === 'builtin') {
      await opts.runBuiltin?.(entry.command, entry);
      continue;
    }
    const result = await runProgram(entry.command, { ...opts, captureStdout: false });
    opts.onResult?.(entry, result);
    results.push(result);
  }
  return results;
}

/**
 * node:child_process runner, FOR TESTS AND TOOLS ONLY: inside the daemon the native child watcher
 * reaps every child, which would break child_process's own bookkeeping. Use NativeProgramRunner there.
 */
export function childProcessRunner(): ProgramRunner {
  return {
    spawn(argv, env, io) {
      const child = nodeSpawn(argv[0] as string, argv.slice(1), {
        env: { ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let spawnError: Error | undefined;
      child.on('error', (err) => {
        spawnError = err;
      });
      if (child.pid === undefined) {
        // ENOENT/EACCES surface asynchronously; report them as a failure to start.
        throw new Error(
          `spawn ${argv[0]} failed${spawnError === undefined ? '' : `: ${spawnError.message}`}`,
        );
      }
      child.stdout.on('data', (chunk: Buffer) => io.output('stdout', chunk));
      child.stderr.on('data', (chunk: Buffer) => io.output('stderr', chunk));
      child.stdout.on('close', () => io.closed('stdout'));
      child.stderr.on('close', () => io.closed('stderr'));
      child.on('exit', (code, signal) => {
        if (signal !== null) io.exited({ code: 'killed', status: signalNumber(signal) });
        else io.exited({ code: 'exited', status: code ?? 0 });
      });
      return {
        pid: child.pid,
        kill: (signal) => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      };
    },
  };
}

function signalNumber(name: NodeJS.Signals): number {
  return (Reflect.get(osConstants.signals, name) as number | undefined) ?? 0;
}

/** What NativeProgramRunner needs of the native spawn addon (a subset of NativeSpawn). */
export interface NativeSpawnLike {
  spawn(plan: ExecPlan): { pid: number; pidfd: number };
  pipe(): [number, number];
  closeFd(fd: number): void;
  pidfdSendSignal(pidfd: number, signal: number): void;
}

const SIGNALS = { SIGTERM: 15, SIGKILL: 9 } as const;

/**
 * The daemon's runner: native spawn, pipes read by libuv (net.Socket on the read ends), exits
 * routed in by the daemon's child watcher through `notifyExit` (the watcher owns the reaping).
 */
export class NativeProgramRunner implements ProgramRunner {
  private readonly running = new Map<number, { pidfd: number; io: ProgramIo }>();

  constructor(private readonly native: NativeSpawnLike) {}

  spawn(argv: readonly string[], env: Readonly<Record<string, string>>, io: ProgramIo): SpawnedProgram {
    const [outRead, outWrite] = this.native.pipe();
    let errRead: number;
    let errWrite: number;
    try {
      [errRead, errWrite] = this.native.pipe();
    } catch (err) {
      this.native.closeFd(outRead);
      this.native.closeFd(outWrite);
      throw err;
    }
    const plan: ExecPlan = {
      path: argv[0] as string,
      argv: [...argv],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      rlimits: [],
      fds: [
        { childFd: 0, parentFd: -1 },
        { childFd: 1, parentFd: outWrite },
        { childFd: 2, parentFd: errWrite },
      ],
      newSession: false,
      noNewPrivileges: false,
      privateNetwork: false,
      mounts: [],
    };
    let child: { pid: number; pidfd: number };
    try {
      child = this.native.spawn(plan);
    } catch (err) {
      for (const fd of [outRead, errRead]) this.native.closeFd(fd);
      throw err;
    } finally {
      this.native.closeFd(outWrite);
      this.native.closeFd(errWrite);
    }
    this.running.set(child.pid, { pidfd: child.pidfd, io });
    readPipe(outRead, 'stdout', io);
    readPipe(errRead, 'stderr', io);
    return {
      pid: child.pid,
      kill: (signal) => {
        const entry = this.running.get(child.pid);
        if (entry === undefined) return;
        try {
          this.native.pidfdSendSignal(entry.pidfd, SIGNALS[signal]);
        } catch {
          // ESRCH: already exited
        }
      },
    };
  }

  /** From the daemon's child watcher: true when the pid was one of ours. */
  notifyExit(exit: { pid: number } & ProgramExit): boolean {
    const entry = this.running.get(exit.pid);
    if (entry === undefined) return false;
    this.running.delete(exit.pid);
    entry.io.exited({ code: exit.code, status: exit.status });
    return true;
  }
}

function readPipe(fd: number, stream: 'stdout' | 'stderr', io: ProgramIo): void {
  const socket = new net.Socket({ fd, readable: true, writable: false });
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    io.closed(stream);
  };
  socket.on('data', (chunk: Buffer) => io.output(stream, chunk));
  socket.on('end', close);
  socket.on('close', close);
  socket.on('error', () => socket.destroy());
}
