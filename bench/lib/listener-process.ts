// A peer that listens on 127.0.0.1:PORT as our child (xinetd, systemd-socket-activate, a C or Node
// server): started, awaited until it is ready, stopped by its pid; processes it forked and left
// (per-connection servers) are killed by pid too, on every path out.
import { spawn, type ChildProcess } from 'node:child_process';
import { onCleanup } from './cleanup';
import { waitListening } from './connect-load';
import { descendantsOf } from './process-tree';
import { isAlive, killPid, stopChild, waitFor, waitGoneSync, type StopResult } from './proc';

export interface RunningListener {
  pid: number;
  /** SIGTERM (SIGKILL after the grace period), then leftovers below it by pid. */
  stop(): Promise<StopResult>;
}

export interface ListenerOptions {
  port: number;
  /**
   * 'connect': ready when the port accepts a connection (for inetd-style peers, where a probe
   * connection only runs the program once); a RegExp: ready when stderr or stdout matches it
   * (for Accept=no activators, where a probe would start the daemon).
   */
  ready: 'connect' | RegExp;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function startListener(
  label: string,
  command: string,
  args: readonly string[],
  options: ListenerOptions,
): Promise<RunningListener> {
  let child: ChildProcess | undefined;
  const seen = new Set<number>();
  const undo = (): void => {
    const victims: number[] = [];
    if (child?.pid !== undefined) {
      for (const p of descendantsOf(child.pid)) if (p !== child.pid) seen.add(p);
      if (child.exitCode === null && child.signalCode === null) victims.push(child.pid);
    }
    for (const p of seen) if (isAlive(p)) victims.push(p);
    for (const v of victims) killPid(v, 'SIGKILL');
    waitGoneSync(victims, 2000);
  };
  const dispose = onCleanup(`stop ${label}`, undo);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let output = '';
  try {
    child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const started = child;
    const exited = (): boolean => started.exitCode !== null || started.signalCode !== null;
    const ready = options.ready;
    const up =
      ready === 'connect'
        ? await waitListening(options.port, timeoutMs)
        : await waitFor(() => ready.test(output) || exited(), timeoutMs, 2);
    if (!up || exited()) {
      throw new Error(
        `${label} was not ready on 127.0.0.1:${options.port} within ${timeoutMs / 1000} s (exit ` +
          `${started.exitCode}, signal ${started.signalCode}): ${output.trim().slice(-400)}`,
      );
    }
  } catch (err) {
    dispose();
    throw err;
  }
  const running = child;
  const pid = running.pid as number;
  return {
    pid,
    stop: async () => {
      for (const p of descendantsOf(pid)) if (p !== pid) seen.add(p);
      const result = await stopChild(running, 5000);
      dispose();
      return result;
    },
  };
}
