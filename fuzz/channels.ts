// Channel fuzzing against a real daemon (a child process, as test/helpers/daemon.ts starts it for
// the integration tests): garbage on its control socket, and garbage datagrams with real
// ancillary data (SCM_CREDENTIALS naming other processes and users, SCM_RIGHTS with up to 253
// fds) on its notify socket, sent by python3's socket.sendmsg. After every run the daemon must
// still answer `ping`; after each target `status` answers, the fuzz units have the states and
// main pids they had before, and the daemon holds no more fds than before (nothing leaked).
// Some datagrams claim the main pid of fuzz-victim.service, so garbage also reaches a unit's
// state machine; that unit may change state (and is started again when it stays failed), the
// others may not. Mutating control requests are never sent (as root they would legitimately
// change states): a stream with a line the daemon would read as one is replaced by a ping.
import * as fc from 'fast-check';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startDaemon, type RunningDaemon } from '../test/helpers/daemon';
import type { ControlClient } from '../src/control/client';
import {
  isMutating,
  LineDecoder,
  MAX_REQUEST_BYTES,
  parseRequest,
  type MethodName,
} from '../src/control/protocol';
import { NOTIFY_BUFFER_MAX } from '../src/units/notify-message';
import { FuzzViolation, Tally, violation, type TargetReport } from './target';
import { mutantArbitrary, randomBytesArbitrary, showBytes } from './mutate';
import { notifyCorpus, notifyMessageArbitrary } from './targets/notify';
import { requestArbitrary } from './targets/control';

export const CHANNEL_TARGETS = ['control-socket', 'notify-socket'] as const;
export type ChannelName = (typeof CHANNEL_TARGETS)[number];
export const CHANNEL_ABOUT: Record<ChannelName, string> = {
  'control-socket':
    "garbage streams on a running daemon's control socket; it keeps answering, units undisturbed",
  'notify-socket': 'datagrams with SCM_CREDENTIALS/SCM_RIGHTS from python3 on its notify socket; no fd leaks',
};

export interface ChannelParams {
  seed: number;
  numRuns?: number;
  timeLimitMs?: number;
  /** A run (one connection, or one batch of datagrams, and a ping) longer than this is a hang. */
  runMs: number;
}

/** Why channel fuzzing cannot run here, or undefined. */
export function channelSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return `needs root (running as uid ${process.getuid?.()})`;
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not installed`;
  return undefined;
}

const PYTHON = '/usr/bin/python3';

const UNITS: Record<string, string> = {
  'fuzz-sleeper.service':
    '[Unit]\nDescription=fuzz: a plain long-running service\n[Service]\nExecStart=/bin/sleep 1000000\n',
  'fuzz-notify.service':
    '[Unit]\nDescription=fuzz: a Type=notify service that became ready\n[Service]\nType=notify\nNotifyAccess=all\n' +
    `ExecStart=${PYTHON} -c "import os,socket,time; s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); ` +
    `s.sendto(b'READY=1\\\\nSTATUS=fuzz target', os.environ['NOTIFY_SOCKET']); time.sleep(1000000)"\n`,
  'fuzz-oneshot.service':
    '[Unit]\nDescription=fuzz: a oneshot that stays active\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
  // The one unit the notify fuzzer speaks for (its datagrams claim the victim's main pid): its
  // state may change, it restarts when it fails; the other units must not notice.
  'fuzz-victim.service':
    '[Unit]\nDescription=fuzz: the unit garbage is sent for\nStartLimitIntervalSec=0\n[Service]\nType=notify\n' +
    'NotifyAccess=all\nRestart=always\nRestartSec=50ms\nTimeoutStartSec=5s\nTimeoutStopSec=2s\n' +
    `ExecStart=${PYTHON} -c "import os,socket,time; s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); ` +
    `s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); time.sleep(1000000)"\n`,
  'fuzz.target':
    '[Unit]\nDescription=fuzz: a target\nWants=fuzz-sleeper.service fuzz-notify.service fuzz-oneshot.service fuzz-victim.service\n',
};

interface Snapshot {
  units: string[];
  fds: number;
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

async function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FuzzViolation(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The daemon under fuzz: started on a private unit directory with the fuzz units running. */
class FuzzedDaemon {
  private constructor(
    readonly daemon: RunningDaemon,
    readonly client: ControlClient,
    private readonly unitDir: string,
  ) {}

  static async start(): Promise<FuzzedDaemon> {
    const unitDir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-fuzz-units-'));
    const rulesDir = path.join(unitDir, 'no-rules');
    fs.mkdirSync(rulesDir);
    for (const [name, text] of Object.entries(UNITS)) fs.writeFileSync(path.join(unitDir, name), text);
    fs.mkdirSync(path.join(unitDir, 'multi-user.target.wants'));
    fs.symlinkSync('../fuzz.target', path.join(unitDir, 'multi-user.target.wants', 'fuzz.target'));
    const daemon = await startDaemon([
      '--unit-path',
      unitDir,
      '--rules-path',
      rulesDir,
      '--fstab',
      '',
      '--log-level',
      'info',
    ]);
    const client = await daemon.client();
    const fuzzed = new FuzzedDaemon(daemon, client, unitDir);
    // Wait until the fuzz units have settled (the notify service reported READY=1).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const units = await fuzzed.allUnitStates();
      if (units.length === Object.keys(UNITS).length && units.every((u) => u.includes(' active '))) break;
      if (Date.now() > deadline) throw new Error(`fuzz units did not start: ${units.join('; ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return fuzzed;
  }

  /** The fuzz units but the victim, as 'name load active sub main=PID' lines. */
  async unitStates(): Promise<string[]> {
    return (await this.allUnitStates()).filter((u) => !u.startsWith('fuzz-victim.service '));
  }

  async allUnitStates(): Promise<string[]> {
    const rows = (await this.client.request('list-units')) as {
      name: string;
      load: string;
      active: string;
      sub: string;
    }[];
    const out: string[] = [];
    for (const r of rows.filter((x) => x.name.startsWith('fuzz'))) {
      const show = (await this.client.request('show', { name: r.name })) as Record<string, unknown>;
      out.push(`${r.name} ${r.load} ${r.active} ${r.sub} main=${String(show.MainPID ?? '')}`);
    }
    return out;
  }

  async snapshot(): Promise<Snapshot> {
    await withTimeout('status', 5000, this.client.request('status'));
    return { units: await this.unitStates(), fds: fdCount(this.daemon.pid) };
  }

  async mainPid(name: string): Promise<number> {
    const show = (await this.client.request('show', { name })) as Record<string, unknown>;
    return typeof show.MainPID === 'number' ? show.MainPID : 0;
  }

  alive(): void {
    if (this.daemon.proc.exitCode !== null || this.daemon.proc.signalCode !== null)
      violation(
        `the daemon exited (code ${this.daemon.proc.exitCode}, signal ${this.daemon.proc.signalCode})`,
      );
  }

  async ping(ms: number): Promise<void> {
    this.alive();
    await withTimeout('ping after the run', ms, this.client.request('ping'));
  }

  /** Same units in the same states with the same main pids, and no fds gained (given time to close). */
  async compare(before: Snapshot): Promise<string | undefined> {
    this.alive();
    const deadline = Date.now() + 5000;
    let after = await this.snapshot();
    while (after.fds > before.fds + 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await this.snapshot();
    }
    if (JSON.stringify(after.units) !== JSON.stringify(before.units))
      return `unit states changed:\n  before ${before.units.join('\n         ')}\n  after  ${after.units.join('\n         ')}`;
    if (after.fds > before.fds + 2) return `the daemon holds ${after.fds} fds, ${before.fds} before: leaked`;
    return undefined;
  }

  async stop(): Promise<void> {
    this.client.close();
    await this.daemon.stop();
    fs.rmSync(this.unitDir, { recursive: true, force: true });
  }
}

// ---- control socket ----------------------------------------------------------------------------

/** Methods that may wait or stream, after which the sentinel ping would not be answered soon. */
const WAITING: ReadonlySet<string> = new Set([
  'monitor',
  'logs',
  'settle',
  'test-rules',
  'trigger',
  'device-info',
]);

interface ControlInput {
  bytes: Buffer;
  cuts: number[];
  ending: 'sentinel' | 'end' | 'destroy';
}

const CONTROL_CORPUS = [
  Buffer.from('{"id":1,"method":"status"}\n{"id":2,"method":"list-units","params":{"type":"service"}}\n'),
  Buffer.from(
    '{"id":"a","method":"show","params":{"name":"fuzz-sleeper.service"}}\n{"method":"cat","params":{"name":"fuzz.target"}}\n',
  ),
  Buffer.from(
    '{"id":3,"method":"unit-status","params":{"name":"fuzz-notify.service","lines":5}}\n{"id":4,"method":"why","params":{"name":"fuzz.target"}}\n',
  ),
];

const controlArbitrary: fc.Arbitrary<ControlInput> = fc.record({
  bytes: fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .tuple(
          fc.array(requestArbitrary, { minLength: 1, maxLength: 5 }),
          fc.constantFrom('\n', '\r\n', '\n\n', ''),
        )
        .map(([lines, eol]) => Buffer.from(lines.join(eol) + eol)),
    },
    {
      weight: 3,
      arbitrary: mutantArbitrary(CONTROL_CORPUS, {
        hugeSizes: [MAX_REQUEST_BYTES + 1, 3 * MAX_REQUEST_BYTES],
      }),
    },
    { weight: 2, arbitrary: randomBytesArbitrary([MAX_REQUEST_BYTES + 1]) },
  ),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  ending: fc.constantFrom('sentinel' as const, 'sentinel' as const, 'end' as const, 'destroy' as const),
});

/** The lines the daemon will read, so mutating requests can be kept out and waits foreseen. */
function linesOf(bytes: Buffer): string[] {
  const out: string[] = [];
  for (const d of new LineDecoder().push(Buffer.concat([bytes, Buffer.from('\n')])))
    if (d.kind === 'line') out.push(d.line);
  return out;
}

const SENTINEL = 'fuzz-sentinel';

async function runControl(d: FuzzedDaemon, input: ControlInput, runMs: number, tally: Tally): Promise<void> {
  let bytes = input.bytes;
  const methods = linesOf(bytes)
    .map((l) => parseRequest(l))
    .filter((r) => r.ok)
    .map((r) => (r.ok ? r.request.method : 'ping'));
  if (methods.some((m) => isMutating(m as MethodName))) {
    tally.add('neutralized mutating request');
    bytes = Buffer.from('{"method":"ping"}\n');
  }
  const waits = methods.some((m) => WAITING.has(m));
  const ending = input.ending === 'sentinel' && waits ? 'end' : input.ending;
  tally.add(`ending:${ending}`);
  const socket = net.connect(d.daemon.socket);
  const replies: string[] = [];
  let buffered = '';
  let sentinelSeen: () => void = () => undefined;
  const sentinel = new Promise<void>((resolve) => (sentinelSeen = resolve));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      replies.push(line);
      if (line.includes(`"${SENTINEL}"`)) sentinelSeen();
    }
  });
  await withTimeout(
    'connect',
    runMs,
    new Promise<void>((resolve) => socket.once('connect', () => resolve())),
  );
  let at = 0;
  for (const cut of [...input.cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    if (cut > at) socket.write(bytes.subarray(at, cut));
    at = cut;
    await new Promise((r) => setImmediate(r));
  }
  if (ending === 'sentinel') {
    socket.write(`\n{"id":"${SENTINEL}","method":"ping"}\n`);
    await withTimeout('the sentinel ping on the fuzzed connection', runMs, sentinel);
    socket.end();
  } else if (ending === 'end') socket.end();
  else socket.destroy();
  await withTimeout('the daemon closing the connection', runMs, closed);
  for (const line of replies) {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      violation(`reply is not JSON: ${line.slice(0, 200)}`);
    }
    if (typeof msg !== 'object' || msg === null || !('id' in msg) || !('ok' in msg || 'event' in msg))
      violation(`reply without id and ok/event: ${line.slice(0, 200)}`);
    const r = msg as { ok?: boolean; error?: { code?: string } };
    tally.add(r.ok === true ? 'reply ok' : r.ok === false ? `reply ${r.error?.code ?? '?'}` : 'reply event');
  }
}

// ---- notify socket -----------------------------------------------------------------------------

/** Sends what it reads on stdin (JSON lines) with sendmsg and real ancillary data; answers each line. */
const SENDER = `
import sys, os, socket, struct, array, json, errno
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
r, w = os.pipe()
pool = [os.open('/dev/null', os.O_RDONLY), r, w, os.open('/', os.O_RDONLY | os.O_DIRECTORY), socket.socket().detach()]
def answer(text):
    sys.stdout.write(text + '\\n')
    sys.stdout.flush()
answer('ready %d' % os.getpid())
for line in sys.stdin:
    m = json.loads(line)
    anc = []
    if m['cred'] is not None:
        anc.append((socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack('iII', *m['cred'])))
    if m['fds'] > 0:
        anc.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [pool[i % len(pool)] for i in range(m['fds'])])))
    try:
        s.sendmsg([bytes.fromhex(m['hex'])], anc, 0, m['path'])
        answer('ok')
    except OSError as e:
        answer('err ' + errno.errorcode.get(e.errno, str(e.errno)))
`;

class NotifySender {
  private readonly waiting: ((line: string) => void)[] = [];
  private buffered = '';
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly pid: number,
  ) {
    child.stdout.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  static async start(): Promise<NotifySender> {
    const child = spawn(PYTHON, ['-c', SENDER], { stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error('python3 sender did not start');
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const sender = new NotifySender(child, child.pid);
    const first = await withTimeout(
      'python3 sender start',
      10_000,
      new Promise<string>((resolve, reject) => {
        sender.waiting.push(resolve);
        child.once('exit', (code) => reject(new Error(`python3 sender exited ${code}: ${stderr}`)));
      }),
    );
    if (first !== `ready ${child.pid}`) throw new Error(`python3 sender: ${first} ${stderr}`);
    return sender;
  }

  send(message: {
    hex: string;
    cred: [number, number, number] | null;
    fds: number;
    path: string;
  }): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(JSON.stringify(message) + '\n');
    });
  }

  stop(): void {
    this.child.stdin.end();
    if (this.child.exitCode === null && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGTERM');
  }
}

/** Processes a datagram can claim to come from, or name in MAINPID=. */
type Who = 'sender' | 'daemon' | 'fuzzer' | 'init' | 'victim' | 'sleeper' | 'notify';

interface Datagram {
  payload: Buffer;
  /** Added to the payload: MAINPID= naming another process (the victim must not adopt it). */
  mainPidOf: Who | undefined;
  /** Whose credentials the datagram claims: the sender's own (kernel-filled), or another process's. */
  as: 'own' | Who;
  uid: number;
  gid: number;
  fds: number;
}

const datagramArbitrary: fc.Arbitrary<Datagram> = fc.record({
  payload: fc.oneof(
    { weight: 4, arbitrary: notifyMessageArbitrary },
    { weight: 3, arbitrary: mutantArbitrary(notifyCorpus(), { hugeSizes: [NOTIFY_BUFFER_MAX + 1, 65000] }) },
    { weight: 1, arbitrary: randomBytesArbitrary([NOTIFY_BUFFER_MAX, NOTIFY_BUFFER_MAX + 1, 65000]) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.alloc(0),
        Buffer.from([0]),
        Buffer.from('BARRIER=1'),
        Buffer.from('FDSTORE=1\nFDNAME=x'),
      ),
    },
  ),
  mainPidOf: fc.option(
    fc.constantFrom<Who>('sender', 'daemon', 'fuzzer', 'init', 'victim', 'sleeper', 'notify'),
    {
      nil: undefined,
      freq: 4,
    },
  ),
  // Never the other fuzz units' own pids: a datagram truly from their main process may change them.
  as: fc.constantFrom<'own' | Who>('own', 'sender', 'daemon', 'fuzzer', 'init', 'victim', 'victim'),
  uid: fc.constantFrom(0, 0, 65534, 1000),
  gid: fc.constantFrom(0, 65534),
  fds: fc.oneof({ weight: 6, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constantFrom(16, 252, 253) }),
});

let lastVictimPid = -1;

async function runNotify(
  d: FuzzedDaemon,
  sender: NotifySender,
  batch: Datagram[],
  tally: Tally,
): Promise<void> {
  const pids: Record<Who, number> = {
    sender: sender.pid,
    daemon: d.daemon.pid,
    fuzzer: process.pid,
    init: 1,
    victim: 0,
    sleeper: await d.mainPid('fuzz-sleeper.service'),
    notify: await d.mainPid('fuzz-notify.service'),
  };
  for (const g of batch) {
    if (g.as === 'victim' || g.mainPidOf === 'victim') {
      const now = await d.mainPid('fuzz-victim.service');
      if (now !== lastVictimPid) {
        const state = (await d.allUnitStates()).find((u) => u.startsWith('fuzz-victim.service ')) ?? '?';
        const [active, sub] = state.split(' ').slice(2, 4);
        tally.add(`victim ${active}/${sub}${now === 0 ? ' without a main pid' : ''}`);
        // STOPPING=1, ERRNO=, a watchdog timeout... can stop it for good: start it again, so the
        // garbage keeps reaching a running unit.
        if (active === 'failed' || active === 'inactive') {
          await d.client.request('start', { names: ['fuzz-victim.service'], noBlock: true });
          tally.add('victim started again');
        }
      }
      lastVictimPid = pids.victim = now;
    }
    // While the victim restarts it has no main pid; the datagram then claims the sender's.
    const claimed = g.as === 'own' ? undefined : pids[g.as] || sender.pid;
    const cred: [number, number, number] | null = claimed === undefined ? null : [claimed, g.uid, g.gid];
    const payload =
      g.mainPidOf === undefined
        ? g.payload
        : Buffer.concat([Buffer.from(`MAINPID=${pids[g.mainPidOf]}\n`), g.payload]);
    const answer = await sender.send({
      hex: payload.toString('hex'),
      cred,
      fds: g.fds,
      path: path.join(d.daemon.dir, 'notify'),
    });
    tally.add(`sendmsg ${answer}${g.as === 'victim' ? ' as victim' : ''}`);
    // ESRCH: the victim's main process exited between the lookup and the send.
    if (answer !== 'ok' && answer !== 'err EMSGSIZE' && !(answer === 'err ESRCH' && g.as === 'victim'))
      violation(`sendmsg failed: ${answer}`);
  }
}

// ---- running ------------------------------------------------------------------------------------

async function checkChannel<T>(
  name: ChannelName,
  d: FuzzedDaemon,
  params: ChannelParams,
  arbitrary: fc.Arbitrary<T>,
  run: (input: T, tally: Tally) => Promise<void>,
  show: (input: T) => string,
): Promise<TargetReport> {
  const tally = new Tally();
  const before = await d.snapshot();
  let slowestMs = 0;
  const t0 = performance.now();
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (input) => {
      const r0 = performance.now();
      await withTimeout(`${name} run`, params.runMs, run(input, tally));
      await d.ping(params.runMs);
      slowestMs = Math.max(slowestMs, performance.now() - r0);
    }),
    {
      seed: params.seed,
      numRuns: params.numRuns ?? 0x7fffffff,
      // A run that broke the daemon leaves nothing to shrink against: report it as generated.
      endOnFailure: true,
      plugins: params.timeLimitMs === undefined ? [] : [fc.interruptAfterTimeLimit(params.timeLimitMs)],
    },
  );
  const report: TargetReport = {
    target: name,
    seed: params.seed,
    runs: details.numRuns,
    shrinks: 0,
    ms: Math.round(performance.now() - t0),
    slowestMs: Math.round(slowestMs * 10) / 10,
    outcomes: tally.toJSON(),
  };
  if (details.failed) {
    const err = details.errorInstance;
    const example = details.counterexample as [T] | null;
    report.failure = {
      kind: err instanceof FuzzViolation && /no answer within/.test(err.message) ? 'hang' : 'violation',
      message: err instanceof Error ? err.message : String(err),
      path: details.counterexamplePath ?? undefined,
      input: example === null ? '(none)' : show(example[0]),
    };
    return report;
  }
  const disturbed = await d.compare(before);
  if (disturbed !== undefined)
    report.failure = { kind: 'violation', message: disturbed, input: `(after all ${details.numRuns} runs)` };
  return report;
}

/** Start a daemon, fuzz the named channels one after the other, stop it. */
export async function runChannels(
  names: readonly ChannelName[],
  params: ChannelParams,
  onReport: (r: TargetReport) => void = () => undefined,
): Promise<TargetReport[]> {
  const d = await FuzzedDaemon.start();
  const reports: TargetReport[] = [];
  const done = (r: TargetReport): void => {
    reports.push(r);
    onReport(r);
  };
  try {
    for (const name of names) {
      if (name === 'control-socket') {
        done(
          await checkChannel(
            name,
            d,
            params,
            controlArbitrary,
            (input, tally) => runControl(d, input, params.runMs, tally),
            (input) => `ending ${input.ending}, cuts ${input.cuts.join(',')}, ${showBytes(input.bytes)}`,
          ),
        );
      } else {
        const sender = await NotifySender.start();
        try {
          done(
            await checkChannel(
              name,
              d,
              params,
              fc.array(datagramArbitrary, { minLength: 1, maxLength: 8 }),
              (batch, tally) => runNotify(d, sender, batch, tally),
              (batch) =>
                batch
                  .map(
                    (g) =>
                      `as ${g.as} uid ${g.uid} gid ${g.gid} fds ${g.fds}` +
                      `${g.mainPidOf === undefined ? '' : ` MAINPID of ${g.mainPidOf}`} ${showBytes(g.payload, 600)}`,
                  )
                  .join('\n'),
            ),
          );
        } finally {
          sender.stop();
        }
      }
    }
  } finally {
    await d.stop();
  }
  return reports;
}
