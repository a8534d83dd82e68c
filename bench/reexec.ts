// Re-exec (issue 9): how long from `daemon-reexec` to serving again, and how many connections fail
// on the way (target 0). triggerd runs an Accept=no socket (a small C LISTEN_FDS daemon, started
// by the first connection and kept running) and an Accept=yes socket (a C program per
// connection), under a connection load from this process on both ports the whole time.
// Per re-exec, from the request:
//   ackMs      the old image's answer
//   controlMs  the new image answers a ping (a new connection to the control socket, queued in
//              its backlog across the exec)
//   serveMs    an Accept=yes connection opened right after the answer is served (the daemon
//              itself must accept it: the new image does)
// and the load's failed connections and slowest connection during it.
// Baseline in the same run: a plain restart of triggerd (SIGTERM, start again on the same units),
// from the stop to control answering and an Accept=yes connection served, with the same load.
// systemd's `systemctl daemon-reexec` would be the natural peer, but it needs systemd as PID 1,
// which this machine does not run: said in the JSON.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlClient } from '../src/control/client';
import { onCleanup } from './lib/cleanup';
import { compileC, freePort, waitListening } from './lib/connect-load';
import { commOf } from './lib/proc';
import { hostInfo, runBenchmark } from './lib/report';
import { LISTEN_FDS_DAEMON_SOURCE, ONE_LINE_SOURCE } from './lib/socket-programs';
import { median, round } from './lib/stats';
import { OWN_RULES, startTriggerd, type RunningTriggerd } from './lib/triggerd-daemon';

const REEXECS = 8;
const RESTARTS = 3;
const WORKERS_PER_PORT = 4;
const TARGET_FAILED = 0;

interface LoadWindow {
  ok: number;
  failed: number;
  reasons: string[];
  slowestMs: number;
}

/** Connect, read to EOF; the text, or throws. */
function fetchOnce(port: number, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
  });
}

/** A connection load on both ports until stopped; counters read and reset per window. */
class ConnectionLoad {
  private running = true;
  private window: LoadWindow = { ok: 0, failed: 0, reasons: [], slowestMs: 0 };
  private readonly loops: Promise<void>[] = [];

  constructor(targets: { port: number; expect: RegExp }[], workers: number) {
    for (const t of targets) for (let i = 0; i < workers; i++) this.loops.push(this.loop(t.port, t.expect));
  }

  private async loop(port: number, expect: RegExp): Promise<void> {
    while (this.running) {
      const t0 = performance.now();
      const w = this.window;
      try {
        const text = await fetchOnce(port);
        if (!expect.test(text)) throw new Error(`unexpected answer ${JSON.stringify(text.slice(0, 40))}`);
        w.ok++;
        w.slowestMs = Math.max(w.slowestMs, performance.now() - t0);
      } catch (err) {
        w.failed++;
        const why = `${port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
        if (w.reasons.length < 5 && !w.reasons.includes(why)) w.reasons.push(why);
      }
    }
  }

  take(): LoadWindow {
    const w = this.window;
    this.window = { ok: 0, failed: 0, reasons: [], slowestMs: 0 };
    return w;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

async function ping(socket: string): Promise<{ pid: number; startedAt?: number }> {
  const c = await ControlClient.connect(socket);
  try {
    return (await c.request('ping')) as { pid: number; startedAt?: number };
  } finally {
    c.close();
  }
}

/** Poll until the control socket answers with a startedAt other than `before`. */
async function untilNewImage(
  socket: string,
  before: number | undefined,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const p = await ping(socket);
      if (p.startedAt !== before) return true;
    } catch {
      // between images
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

interface Rep {
  ackMs: number;
  controlMs: number;
  serveMs: number;
  failed: number;
  served: number;
  slowestConnectionMs: number;
  reasons: string[];
}

function summarize(reps: Rep[]): Record<string, unknown> {
  const pick = (k: 'ackMs' | 'controlMs' | 'serveMs' | 'slowestConnectionMs'): number[] =>
    reps.map((r) => r[k]);
  return {
    repetitions: reps.length,
    medianControlMs: round(median(pick('controlMs'))),
    medianServeMs: round(median(pick('serveMs'))),
    maxServeMs: round(Math.max(...pick('serveMs'))),
    medianSlowestConnectionMs: round(median(pick('slowestConnectionMs'))),
    connectionsFailed: reps.reduce((n, r) => n + r.failed, 0),
    connectionsServed: reps.reduce((n, r) => n + r.served, 0),
    failureReasons: [...new Set(reps.flatMap((r) => r.reasons))].slice(0, 5),
    perRepetition: reps.map((r) => ({
      ackMs: round(r.ackMs),
      controlMs: round(r.controlMs),
      serveMs: round(r.serveMs),
      failed: r.failed,
      served: r.served,
      slowestConnectionMs: round(r.slowestConnectionMs),
    })),
  };
}

async function main(): Promise<object> {
  if (process.getuid?.() !== 0) throw new Error('needs root (cgroups, the daemon as root)');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-reexec-'));
  const removeTmp = onCleanup('remove the temporary directory', () =>
    fs.rmSync(tmp, { recursive: true, force: true }),
  );
  const daemonBin = await compileC(tmp, 'listen-fds-daemon', LISTEN_FDS_DAEMON_SOURCE);
  const lineBin = await compileC(tmp, 'one-line', ONE_LINE_SOURCE);
  const ports = { ano: await freePort(), ayes: await freePort() };
  const units = path.join(tmp, 'units');
  fs.mkdirSync(units);
  const unit = (n: string, text: string): void => fs.writeFileSync(path.join(units, n), text);
  unit('bench-ano.socket', `[Socket]\nListenStream=127.0.0.1:${ports.ano}\n`);
  unit('bench-ano.service', `[Service]\nExecStart=${daemonBin}\n`);
  unit(
    'bench-ayes.socket',
    `[Socket]\nListenStream=127.0.0.1:${ports.ayes}\nAccept=yes\nMaxConnections=4096\n` +
      'TriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n',
  );
  unit('bench-ayes@.service', `[Service]\nExecStart=${lineBin}\n`);
  unit('default.target', '[Unit]\nWants=bench-ano.socket bench-ayes.socket\n');
  const targets = [
    { port: ports.ano, expect: /^x$/ },
    { port: ports.ayes, expect: /^hello from the accept benchmark\n$/ },
  ];

  let daemon: RunningTriggerd = await startTriggerd(OWN_RULES, {
    unitPath: units,
    extraArgs: ['--fstab', ''],
  });
  const socket = daemon.socket;
  if (!(await waitListening(ports.ano, 10_000)) || !(await waitListening(ports.ayes, 10_000)))
    throw new Error(`the sockets do not listen: ${daemon.logTail().join('\n').slice(-800)}`);
  await fetchOnce(ports.ano); // bench-ano.service runs from here on
  const daemonPid = daemon.pid;
  const shown = (await daemon.request('show', { name: 'bench-ano.service' })) as { MainPID?: number };
  const anoPid = shown.MainPID ?? 0;

  const load = new ConnectionLoad(targets, WORKERS_PER_PORT);
  const stopLoad = onCleanup('stop the load', () => undefined);
  const reexecs: Rep[] = [];
  await new Promise((r) => setTimeout(r, 300));
  {
    for (let i = 0; i < REEXECS; i++) {
      load.take();
      const before = await ping(socket);
      const t0 = performance.now();
      const c = await ControlClient.connect(socket);
      await c.request('daemon-reexec');
      const ackMs = performance.now() - t0;
      c.close();
      const served = fetchOnce(ports.ayes).then(() => performance.now() - t0);
      const ok = await untilNewImage(socket, before.startedAt, 60_000);
      if (!ok)
        throw new Error(
          `no answer from the new image within 60 s: ${daemon.logTail().join('\n').slice(-800)}`,
        );
      const controlMs = performance.now() - t0;
      const serveMs = await served;
      // Let connections queued during the exec finish before closing the window.
      await new Promise((r) => setTimeout(r, 300));
      const w = load.take();
      reexecs.push({
        ackMs,
        controlMs,
        serveMs,
        failed: w.failed,
        served: w.ok,
        slowestConnectionMs: w.slowestMs,
        reasons: w.reasons,
      });
    }
  }
  const after = await ping(socket);
  const samePid = after.pid === daemonPid;
  const show = (await (async () => {
    const c = await ControlClient.connect(socket);
    try {
      return await c.request('show', { name: 'bench-ano.service' });
    } finally {
      c.close();
    }
  })()) as { MainPID?: number };
  const serviceKept = anoPid > 0 && show.MainPID === anoPid;

  // Baseline: a plain restart (stop, start on the same units) under the same load.
  const restarts: Rep[] = [];
  for (let i = 0; i < RESTARTS; i++) {
    load.take();
    const t0 = performance.now();
    await daemon.stop();
    daemon = await startTriggerd(OWN_RULES, { unitPath: units, extraArgs: ['--fstab', ''] });
    const controlMs = performance.now() - t0;
    let serveMs = Number.NaN;
    for (let tries = 0; tries < 500 && Number.isNaN(serveMs); tries++) {
      try {
        await fetchOnce(ports.ayes);
        serveMs = performance.now() - t0;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const w = load.take();
    restarts.push({
      ackMs: 0,
      controlMs,
      serveMs,
      failed: w.failed,
      served: w.ok,
      slowestConnectionMs: w.slowestMs,
      reasons: w.reasons,
    });
  }
  await load.stop();
  stopLoad();
  const tail = daemon.logTail();
  await daemon.stop();
  removeTmp();

  const summary = summarize(reexecs);
  const failed = reexecs.reduce((n, r) => n + r.failed, 0);
  const pid1 = commOf(1) ?? 'unknown';
  return {
    benchmark: 'reexec',
    host: hostInfo(),
    load: {
      workersPerPort: WORKERS_PER_PORT,
      ports: ['Accept=no (LISTEN_FDS daemon)', 'Accept=yes (one program per connection)'],
    },
    triggerd: {
      ...summary,
      daemonPidKept: samePid,
      servicePidKept: serviceKept,
    },
    baselinePlainRestart: {
      what: 'SIGTERM (units stopped, up to --shutdown-timeout 5) and a new triggerd on the same units; time to control answering and an Accept=yes connection served',
      ...summarize(restarts),
    },
    peer: {
      name: 'systemctl daemon-reexec',
      measured: false,
      reason: `needs systemd as PID 1; PID 1 here is ${pid1}`,
    },
    target: { connectionsFailed: TARGET_FAILED },
    meetsTarget: failed <= TARGET_FAILED && samePid && serviceKept,
    ...(failed > 0 ? { logTail: tail.slice(-10) } : {}),
  };
}

runBenchmark(main);
