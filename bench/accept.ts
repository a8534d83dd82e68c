// Accept=yes (inetd style): connections per second and connect → first line → EOF latency for a
// service that writes one line and exits (a tiny C program compiled in this run, the SAME binary
// for every peer), at concurrency 1 and 16, 2,000 connections each after a warm-up, on 127.0.0.1.
// Measured in the same run, each on its own port, interleaved round by round (the order rotates):
//   triggerd   bench-accept.socket (Accept=yes) + bench-accept@.service (StandardInput=socket)
//   xinetd     wait=no, its per-second and per-source limits lifted, no per-connection logging
//   systemd-socket-activate --accept --inetd (without --accept it would exec the program once on the listening socket)
//   a C fork-per-connection server (the ceiling: fork + exec and nothing else)
//   Node's child_process.spawn behind net.Server (what the daemon would do without its native spawn)
// The client is a C epoll loop (bench/lib/connect-load). Target: triggerd ≥ 1.2 × xinetd at both
// concurrencies with no failed connection. A peer that cannot run is reported as skipped, with why.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installAllowed } from './lib/apt';
import { onCleanup } from './lib/cleanup';
import {
  compileC,
  failuresOf,
  freePort,
  LOAD_CLIENT_SOURCE,
  runLoad,
  waitListening,
  type LoadResult,
} from './lib/connect-load';
import { startListener } from './lib/listener-process';
import { hostInfo, runBenchmark } from './lib/report';
import { FORK_SERVER_SOURCE, ONE_LINE_SOURCE } from './lib/socket-programs';
import { median, percentile, round } from './lib/stats';
import { startTriggerd } from './lib/triggerd-daemon';
import { ensureXinetd, startXinetd } from './lib/xinetd';

const CONNECTIONS = 2000;
const WARMUP = 200;
const CONCURRENCIES = [1, 16] as const;
const ROUNDS = 5;
const TARGET_RATIO = 1.2;
/** A peer with more failed connections than this share in one run is measured no further. */
const DROP_FAILURE_SHARE = 0.1;
const SOCKET_ACTIVATE_CANDIDATES = ['/usr/bin/systemd-socket-activate', '/bin/systemd-socket-activate'];

type PeerKey = 'triggerd' | 'xinetd' | 'systemdSocketActivate' | 'cForkServer' | 'nodeChildProcess';

interface Peer {
  key: PeerKey;
  name: string;
  port: number;
  /** The daemon's last warnings, reported when connections failed. */
  logTail?: () => string[];
  stop(): Promise<unknown>;
}

/** Node's child_process.spawn as an inetd: the connection's fd as the child's stdin and stdout. */
const NODE_SERVER_SOURCE = `
const net = require('node:net');
const { spawn } = require('node:child_process');
const [port, program] = process.argv.slice(2);
const server = net.createServer({ pauseOnConnect: true }, (socket) => {
  socket.on('error', () => undefined);
  try {
    const child = spawn(program, [], { stdio: [socket, socket, 'ignore'], env: {} });
    child.on('error', () => undefined);
  } finally {
    // The child has its own copy of the fd once spawn() returned: the client sees EOF when it exits.
    socket.destroy();
  }
});
server.listen(Number(port), '127.0.0.1', 4096, () => console.log('listening'));
`;

/** The unit files triggerd serves the program with; trigger and poll limits lifted as for xinetd. */
function writeTriggerdUnits(dir: string, port: number, program: string): void {
  fs.writeFileSync(
    path.join(dir, 'bench-accept.socket'),
    [
      '[Unit]',
      'Description=accept benchmark',
      '',
      '[Socket]',
      `ListenStream=127.0.0.1:${port}`,
      'Accept=yes',
      'Backlog=4096',
      // systemd's defaults (200 activations per 2 s for Accept=yes) would stop a benchmark at once;
      // xinetd's cps gets the same treatment.
      'TriggerLimitIntervalSec=0',
      'PollLimitIntervalSec=0',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'bench-accept@.service'),
    [
      '[Unit]',
      'Description=accept benchmark connection',
      '',
      '[Service]',
      `ExecStart=${program}`,
      'StandardInput=socket',
      '',
    ].join('\n'),
  );
}

async function startTriggerdPeer(tmp: string, program: string): Promise<Peer> {
  const port = await freePort();
  const units = path.join(tmp, 'units');
  const rules = path.join(tmp, 'rules'); // no rules: the coldplug at start does next to nothing
  fs.mkdirSync(units);
  fs.mkdirSync(rules);
  writeTriggerdUnits(units, port, program);
  const daemon = await startTriggerd(rules, { unitPath: units });
  try {
    await daemon.request('start', { names: ['bench-accept.socket'] });
    if (!(await waitListening(port, 10_000)))
      throw new Error(`bench-accept.socket does not listen on ${port}`);
  } catch (err) {
    const tail = daemon.logTail().slice(-5).join('\n');
    await daemon.stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}; daemon log: ${tail}`, {
      cause: err,
    });
  }
  return {
    key: 'triggerd',
    name: `triggerd (pid ${daemon.pid}), bench-accept.socket Accept=yes + bench-accept@.service StandardInput=socket`,
    port,
    logTail: () => daemon.logTail().slice(-5),
    stop: () => daemon.stop(),
  };
}

async function startXinetdPeer(tmp: string, program: string): Promise<Peer> {
  const found = await ensureXinetd(installAllowed());
  if (!found.ok) throw new Error(found.reason);
  const port = await freePort();
  const dir = path.join(tmp, 'xinetd');
  fs.mkdirSync(dir);
  const running = await startXinetd(found.tool, dir, port, program);
  return {
    key: 'xinetd',
    name: `xinetd ${found.tool.version} (${found.tool.origin}), wait=no, cps/instances/per_source unlimited`,
    port,
    stop: () => running.stop(),
  };
}

async function startSocketActivatePeer(program: string): Promise<Peer> {
  const binary = SOCKET_ACTIVATE_CANDIDATES.find((p) => fs.existsSync(p));
  if (binary === undefined) throw new Error('systemd-socket-activate is not installed (package "systemd")');
  const port = await freePort();
  const running = await startListener(
    'systemd-socket-activate',
    binary,
    ['--accept', '--inetd', '-l', `127.0.0.1:${port}`, program],
    {
      port,
      ready: 'connect',
    },
  );
  return {
    key: 'systemdSocketActivate',
    name: `${binary} --accept --inetd`,
    port,
    stop: () => running.stop(),
  };
}

async function startForkServerPeer(tmp: string, program: string): Promise<Peer> {
  const binary = await compileC(tmp, 'fork-server', FORK_SERVER_SOURCE);
  const port = await freePort();
  const running = await startListener('C fork server', binary, [String(port), program], {
    port,
    ready: /listening/,
  });
  return {
    key: 'cForkServer',
    name: 'C accept + fork + exec per connection (cc -O2), compiled in this run',
    port,
    stop: () => running.stop(),
  };
}

async function startNodePeer(tmp: string, program: string): Promise<Peer> {
  const script = path.join(tmp, 'node-inetd.js');
  fs.writeFileSync(script, NODE_SERVER_SOURCE);
  const port = await freePort();
  const running = await startListener('Node inetd', process.execPath, [script, String(port), program], {
    port,
    ready: /listening/,
  });
  return {
    key: 'nodeChildProcess',
    name: `node ${process.version} net.Server + child_process.spawn (stdio: the connection)`,
    port,
    stop: () => running.stop(),
  };
}

interface Samples {
  rates: number[];
  eofUs: number[];
  failures: number;
  failureKinds: Record<string, number>;
}

function emptySamples(): Samples {
  return { rates: [], eofUs: [], failures: 0, failureKinds: {} };
}

function addRun(s: Samples, r: LoadResult): void {
  s.rates.push((r.ok / r.wallUs) * 1e6);
  for (const v of r.eofUs) s.eofUs.push(v);
  s.failures += failuresOf(r);
  for (const k of ['refused', 'reset', 'timedOut', 'noLine', 'other'] as const) {
    if (r[k] > 0) s.failureKinds[k] = (s.failureKinds[k] ?? 0) + r[k];
  }
}

function summarize(s: Samples): object {
  return {
    connectionsPerSecond: round(median(s.rates), 0),
    latencyMs: {
      p50: round(percentile(s.eofUs, 50) / 1000, 2),
      p99: round(percentile(s.eofUs, 99) / 1000, 2),
    },
    failures: s.failures,
    ...(s.failures > 0 ? { failureKinds: s.failureKinds } : {}),
    runs: s.rates.map((r) => round(r, 0)),
  };
}

async function main(): Promise<object> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-accept-'));
  const removeTmp = onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  const peers: Peer[] = [];
  try {
    const program = await compileC(tmp, 'one-line', ONE_LINE_SOURCE);
    const client = await compileC(tmp, 'load-client', LOAD_CLIENT_SOURCE);

    const skipped: Partial<Record<PeerKey, string>> = {};
    const names: Partial<Record<PeerKey, string>> = {};
    const starters: [PeerKey, () => Promise<Peer>][] = [
      ['triggerd', () => startTriggerdPeer(tmp, program)],
      ['xinetd', () => startXinetdPeer(tmp, program)],
      ['systemdSocketActivate', () => startSocketActivatePeer(program)],
      ['cForkServer', () => startForkServerPeer(tmp, program)],
      ['nodeChildProcess', () => startNodePeer(tmp, program)],
    ];
    for (const [key, start] of starters) {
      try {
        const peer = await start();
        peers.push(peer);
        names[key] = peer.name;
      } catch (err) {
        skipped[key] = err instanceof Error ? err.message : String(err);
        process.stderr.write(`accept: ${key} skipped: ${skipped[key]}\n`);
      }
    }

    const samples = new Map<PeerKey, Record<number, Samples>>();
    const warmupFailures: Partial<Record<PeerKey, number>> = {};
    const dropped: Partial<Record<PeerKey, string>> = {};
    // Bounded: a peer that fails connections (each waits out the client's timeout) is dropped.
    const check = (peer: Peer, result: LoadResult, what: string): void => {
      const failed = failuresOf(result);
      if (failed > result.connections * DROP_FAILURE_SHARE && dropped[peer.key] === undefined) {
        dropped[peer.key] = `dropped after ${what}: ${failed} of ${result.connections} connections failed`;
        process.stderr.write(`accept: ${peer.key} ${dropped[peer.key]}\n`);
      }
    };
    for (const peer of peers) {
      samples.set(peer.key, { 1: emptySamples(), 16: emptySamples() });
      const warm = await runLoad(client, peer.port, WARMUP, 16);
      warmupFailures[peer.key] = failuresOf(warm);
      check(peer, warm, 'the warm-up');
    }
    // Interleaved, the order rotating each round, so drift on the machine hits every peer alike.
    for (let r = 0; r < ROUNDS; r++) {
      const order = peers.map((_, i) => peers[(i + r) % peers.length]);
      for (const concurrency of CONCURRENCIES) {
        for (const peer of order) {
          if (dropped[peer.key] !== undefined) continue;
          const result = await runLoad(client, peer.port, CONNECTIONS, concurrency, {
            connectionTimeoutMs: 2000,
          });
          addRun((samples.get(peer.key) as Record<number, Samples>)[concurrency], result);
          check(peer, result, `round ${r + 1} at concurrency ${concurrency}`);
        }
      }
    }
    const logTails: Partial<Record<PeerKey, string[]>> = {};
    for (const peer of peers) if (peer.logTail !== undefined) logTails[peer.key] = peer.logTail();
    for (const peer of peers.splice(0).reverse()) await peer.stop();

    const figures = (key: PeerKey): object => {
      const s = samples.get(key);
      if (s === undefined) return { skipped: skipped[key] };
      const failed = s[1].failures + s[16].failures + (warmupFailures[key] ?? 0) > 0;
      return {
        name: names[key],
        sequential: summarize(s[1]),
        concurrent: summarize(s[16]),
        ...(dropped[key] !== undefined ? { dropped: dropped[key] } : {}),
        ...(failed && logTails[key] !== undefined ? { logTail: logTails[key] } : {}),
      };
    };
    const rate = (key: PeerKey, c: number): number | undefined => {
      const s = samples.get(key)?.[c];
      return s === undefined || s.rates.length === 0 ? undefined : median(s.rates);
    };
    const ratio = (c: number): number | undefined => {
      const t = rate('triggerd', c);
      const x = rate('xinetd', c);
      return t === undefined || x === undefined ? undefined : round(t / x, 2);
    };
    const ratios = { sequential: ratio(1), concurrent: ratio(16) };
    const triggerdFailures = CONCURRENCIES.reduce(
      (n, c) => n + (samples.get('triggerd')?.[c].failures ?? 0),
      0,
    );
    // A triggerd that could not serve misses the target; without xinetd there is nothing to judge by.
    const triggerdProblem =
      skipped.triggerd ??
      dropped.triggerd ??
      (triggerdFailures > 0 ? `${triggerdFailures} connections failed` : undefined);
    let meetsTarget: boolean | null;
    let targetNote: string | undefined;
    if (triggerdProblem !== undefined) {
      meetsTarget = false;
      targetNote = `triggerd: ${triggerdProblem}`;
    } else if (ratios.sequential === undefined || ratios.concurrent === undefined) {
      meetsTarget = null;
      targetNote = `not judged: xinetd was not measured (${skipped.xinetd ?? dropped.xinetd ?? 'no runs'})`;
    } else {
      meetsTarget = ratios.sequential >= TARGET_RATIO && ratios.concurrent >= TARGET_RATIO;
    }
    return {
      benchmark: 'accept',
      host: hostInfo(),
      what:
        `Accept=yes: a C program that writes one line and exits, per connection on 127.0.0.1; ` +
        `${CONNECTIONS} connections per run after ${WARMUP} warm-up, concurrency 1 (sequential) and 16 ` +
        `(concurrent), ${ROUNDS} rounds interleaved; connections/s = median over rounds, latency ` +
        `connect → line → EOF percentiles over all rounds' connections; client: C epoll loop`,
      triggerd: figures('triggerd'),
      ratioToXinetd: { sequential: ratios.sequential ?? null, concurrent: ratios.concurrent ?? null },
      target: { ratioToXinetd: TARGET_RATIO, failures: 0 },
      meetsTarget,
      ...(targetNote !== undefined ? { targetNote } : {}),
      warmupFailures,
      peers: {
        xinetd: figures('xinetd'),
        systemdSocketActivate: figures('systemdSocketActivate'),
        cForkServer: figures('cForkServer'),
        nodeChildProcess: figures('nodeChildProcess'),
      },
    };
  } finally {
    for (const peer of peers.reverse()) await peer.stop().catch(() => undefined);
    removeTmp();
  }
}

runBenchmark(main);
