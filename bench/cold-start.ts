// Accept=no cold start: connect() → first byte from a daemon that is not running yet and is
// started by that connection. The daemon is a small C program compiled in this run that does what
// sd_listen_fds(3) expects (LISTEN_PID = its pid, LISTEN_FDS ≥ 1), accepts on fd 3 and writes one
// byte per connection. Measured, interleaved repetition by repetition:
//   triggerd                 bench-cold.socket (ListenStream=127.0.0.1:<port>) + bench-cold.service;
//                            after each repetition the service is stopped through the control
//                            socket and the socket unit listens again
//   systemd-socket-activate  `-l 127.0.0.1:<port> <daemon>`, a fresh process each repetition (it
//                            waits for the first connection, then execs the daemon in place)
// The client is the C epoll client of bench/lib/connect-load in byte mode (one connection).
// Target: triggerd's median within 1 ms of systemd-socket-activate's, every repetition answered.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onCleanup } from './lib/cleanup';
import { compileC, freePort, LOAD_CLIENT_SOURCE, runLoad } from './lib/connect-load';
import { startListener } from './lib/listener-process';
import { hostInfo, runBenchmark } from './lib/report';
import { LISTEN_FDS_DAEMON_SOURCE } from './lib/socket-programs';
import { median, percentile, round } from './lib/stats';
import { startTriggerd, type RunningTriggerd } from './lib/triggerd-daemon';

const REPETITIONS = 30;
const WARMUP = 2;
const TARGET_DELTA_MS = 1;
const GIVE_UP_AFTER = 3;
const SOCKET = 'bench-cold.socket';
const SERVICE = 'bench-cold.service';
const SOCKET_ACTIVATE_CANDIDATES = ['/usr/bin/systemd-socket-activate', '/bin/systemd-socket-activate'];

interface Side {
  firstByteMs: number[];
  failures: number;
  failureReasons: string[];
}

function emptySide(): Side {
  return { firstByteMs: [], failures: 0, failureReasons: [] };
}

function fail(side: Side, reason: string): void {
  side.failures++;
  if (side.failureReasons.length < 5) side.failureReasons.push(reason);
}

async function activeState(daemon: RunningTriggerd, unit: string): Promise<string> {
  const answer = (await daemon.request('is-active', { names: [unit] })) as { state: string }[];
  return answer[0]?.state ?? 'unknown';
}

/** Poll the daemon until `unit` is in `state` (bounded); the last state seen otherwise. */
async function waitState(
  daemon: RunningTriggerd,
  unit: string,
  state: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let now = await activeState(daemon, unit);
  while (now !== state && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    now = await activeState(daemon, unit);
  }
  return now;
}

async function startTriggerdSide(
  tmp: string,
  daemonBinary: string,
): Promise<{ daemon: RunningTriggerd; port: number }> {
  const port = await freePort();
  const units = path.join(tmp, 'units');
  const rules = path.join(tmp, 'rules'); // no rules: the coldplug at start does next to nothing
  fs.mkdirSync(units);
  fs.mkdirSync(rules);
  fs.writeFileSync(
    path.join(units, SOCKET),
    [
      '[Unit]',
      'Description=cold start benchmark',
      '',
      '[Socket]',
      `ListenStream=127.0.0.1:${port}`,
      // 32 activations in a few seconds: systemd's defaults (20 per 2 s for Accept=no) would pause
      // the socket; systemd-socket-activate has no such limit.
      'TriggerLimitIntervalSec=0',
      'PollLimitIntervalSec=0',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(units, SERVICE),
    [
      '[Unit]',
      'Description=cold start benchmark daemon',
      // Started 32 times in a few seconds: systemd's default start limit (5 per 10 s) would stop it.
      'StartLimitIntervalSec=0',
      '',
      '[Service]',
      `ExecStart=${daemonBinary}`,
      '',
    ].join('\n'),
  );
  const daemon = await startTriggerd(rules, { unitPath: units });
  try {
    await daemon.request('start', { names: [SOCKET] });
    const state = await waitState(daemon, SOCKET, 'active', 10_000);
    if (state !== 'active') throw new Error(`${SOCKET} is ${state}, not active`);
  } catch (err) {
    const tail = daemon.logTail().slice(-5).join('\n');
    await daemon.stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}; daemon log: ${tail}`, {
      cause: err,
    });
  }
  return { daemon, port };
}

/** One triggerd repetition: the service is inactive, one connection starts it, then it is stopped. */
async function triggerdOnce(
  daemon: RunningTriggerd,
  client: string,
  port: number,
  side: Side,
): Promise<void> {
  const before = await activeState(daemon, SERVICE);
  if (before !== 'inactive') {
    fail(side, `${SERVICE} was ${before} before the connection`);
    return;
  }
  const result = await runLoad(client, port, 1, 1, { mode: 'byte' });
  if (result.ok === 1) side.firstByteMs.push(result.firstByteUs[0] / 1000);
  else
    fail(
      side,
      `connection failed: ${JSON.stringify({ ...result, eofUs: undefined, firstByteUs: undefined })}`,
    );
  await daemon.request('stop', { names: [SERVICE] });
  const after = await waitState(daemon, SERVICE, 'inactive', 10_000);
  if (after !== 'inactive') fail(side, `${SERVICE} still ${after} after stop`);
  const socketState = await waitState(daemon, SOCKET, 'active', 10_000);
  if (socketState !== 'active') fail(side, `${SOCKET} is ${socketState} after the service stopped`);
}

/** One systemd-socket-activate repetition: a fresh activator on a fresh port, one connection, stop. */
async function socketActivateOnce(
  binary: string,
  daemonBinary: string,
  client: string,
  side: Side,
): Promise<void> {
  const port = await freePort();
  const activator = await startListener(
    'systemd-socket-activate',
    binary,
    ['-l', `127.0.0.1:${port}`, daemonBinary],
    {
      port,
      ready: /Listening on/,
    },
  );
  try {
    const result = await runLoad(client, port, 1, 1, { mode: 'byte' });
    if (result.ok === 1) side.firstByteMs.push(result.firstByteUs[0] / 1000);
    else
      fail(
        side,
        `connection failed: ${JSON.stringify({ ...result, eofUs: undefined, firstByteUs: undefined })}`,
      );
  } finally {
    await activator.stop();
  }
}

function summarize(side: Side): object {
  return {
    firstByteMs: {
      median: round(median(side.firstByteMs), 2),
      p90: round(percentile(side.firstByteMs, 90), 2),
      min: round(Math.min(...side.firstByteMs), 2),
      max: round(Math.max(...side.firstByteMs), 2),
    },
    repetitions: side.firstByteMs.length,
    /** In order, to tell a one-off stall from drift. */
    runs: side.firstByteMs.map((v) => round(v, 2)),
    failures: side.failures,
    ...(side.failureReasons.length > 0 ? { failureReasons: side.failureReasons } : {}),
  };
}

async function main(): Promise<object> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-cold-start-'));
  const removeTmp = onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  let triggerd: { daemon: RunningTriggerd; port: number } | undefined;
  try {
    const daemonBinary = await compileC(tmp, 'listen-fds-daemon', LISTEN_FDS_DAEMON_SOURCE);
    const client = await compileC(tmp, 'load-client', LOAD_CLIENT_SOURCE);
    const ssa = SOCKET_ACTIVATE_CANDIDATES.find((p) => fs.existsSync(p));
    let triggerdSkipped: string | undefined;
    try {
      triggerd = await startTriggerdSide(tmp, daemonBinary);
    } catch (err) {
      triggerdSkipped = err instanceof Error ? err.message : String(err);
      process.stderr.write(`cold-start: triggerd skipped: ${triggerdSkipped}\n`);
    }
    const ssaSkipped =
      ssa === undefined ? 'systemd-socket-activate is not installed (package "systemd")' : undefined;

    const sides = { triggerd: emptySide(), systemdSocketActivate: emptySide() };
    const warm = { triggerd: emptySide(), systemdSocketActivate: emptySide() };
    let triggerdGaveUp: string | undefined;
    let inARow = 0;
    let logTail: string[] = [];
    for (let i = 0; i < WARMUP + REPETITIONS; i++) {
      const into = i < WARMUP ? warm : sides;
      // Alternate which goes first, so neither always runs right after the other's teardown.
      const steps: (() => Promise<void>)[] = [];
      if (triggerd !== undefined && triggerdGaveUp === undefined) {
        const t = triggerd;
        steps.push(async () => {
          const before = into.triggerd.failures;
          await triggerdOnce(t.daemon, client, t.port, into.triggerd);
          inARow = into.triggerd.failures > before ? inARow + 1 : 0;
          // Bounded: a triggerd that does not answer would otherwise cost 5 s per repetition.
          if (inARow >= GIVE_UP_AFTER) triggerdGaveUp = `gave up after ${inARow} failed repetitions in a row`;
        });
      }
      if (ssa !== undefined)
        steps.push(() => socketActivateOnce(ssa, daemonBinary, client, into.systemdSocketActivate));
      if (i % 2 === 1) steps.reverse();
      for (const step of steps) await step();
    }
    if (triggerd !== undefined) {
      logTail = triggerd.daemon.logTail().slice(-5);
      await triggerd.daemon.stop();
      triggerd = undefined;
    }

    const t = sides.triggerd.firstByteMs.length > 0 ? median(sides.triggerd.firstByteMs) : undefined;
    const s =
      sides.systemdSocketActivate.firstByteMs.length > 0
        ? median(sides.systemdSocketActivate.firstByteMs)
        : undefined;
    const deltaMs = t === undefined || s === undefined ? undefined : round(t - s, 2);
    const triggerdFailed =
      triggerdSkipped === undefined && (sides.triggerd.failures > 0 || warm.triggerd.failures > 0);
    // Not judged only when there is nothing to compare with; a triggerd that failed misses it.
    const meetsTarget = triggerdFailed ? false : deltaMs === undefined ? null : deltaMs <= TARGET_DELTA_MS;
    return {
      benchmark: 'cold-start',
      host: hostInfo(),
      what:
        `Accept=no: connect() → first byte from a C LISTEN_FDS daemon started by that connection, on ` +
        `127.0.0.1; ${REPETITIONS} repetitions after ${WARMUP} warm-up, interleaved; triggerd stops the ` +
        `service after each, systemd-socket-activate is a fresh process each time`,
      triggerd:
        triggerdSkipped !== undefined
          ? { skipped: triggerdSkipped }
          : {
              ...summarize(sides.triggerd),
              ...(triggerdGaveUp !== undefined ? { gaveUp: triggerdGaveUp } : {}),
              ...(triggerdFailed ? { logTail } : {}),
            },
      deltaToSystemdSocketActivateMs: deltaMs ?? null,
      target: { deltaMs: TARGET_DELTA_MS, failures: 0 },
      meetsTarget,
      ...(meetsTarget === null
        ? {
            targetNote: `not judged: ${t === undefined ? 'triggerd' : 'systemd-socket-activate'} was not measured`,
          }
        : {}),
      warmupFailures: {
        triggerd: warm.triggerd.failures,
        systemdSocketActivate: warm.systemdSocketActivate.failures,
      },
      peer: {
        name: `${ssa ?? 'systemd-socket-activate'} -l 127.0.0.1:<port> <daemon>`,
        ...(ssaSkipped !== undefined ? { skipped: ssaSkipped } : summarize(sides.systemdSocketActivate)),
      },
    };
  } finally {
    if (triggerd !== undefined) await triggerd.daemon.stop().catch(() => undefined);
    removeTmp();
  }
}

runBenchmark(main);
