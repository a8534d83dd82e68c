// npm run fuzz [SECONDS] [TARGET...] (npm run fuzz -- --list names them): every pure target (each in a worker thread) and then the
// channel targets against a running daemon, sharing SECONDS (default 300) equally. Prints the
// seed first, one line per target (inputs, time, slowest input, outcomes), and for a failure the
// shrunk input and the command that replays it. Exit status 1 when anything failed.
//
//   FUZZ_SECONDS   total time (an argument wins)        FUZZ_SEED     fast-check seed (default: random)
//   FUZZ_TARGETS   comma-separated names (or arguments)  FUZZ_PATH     replay one run (with FUZZ_SEED, one target)
//   FUZZ_JOBS      pure targets run at once (default 1)  FUZZ_RUNS     a fixed number of inputs per target instead of time
//   FUZZ_SYSTEM_CORPUS=0  only the repository's recorded inputs (default: also this machine's rules, units, fstab...)
//   FUZZ_INPUT_MS (1000) + FUZZ_US_PER_BYTE (10): the time one input may take; FUZZ_HANG_MS (60000): a hang
//   FUZZ_VERBOSE=1  every outcome count per target (error codes reached, replies, victim states)
import { pureTargets } from './targets';
import { runTarget } from './run-target';
import { CHANNEL_ABOUT, CHANNEL_TARGETS, channelSkipReason, runChannels, type ChannelName } from './channels';
import { formatFailure, formatSummary } from './report';
import type { TargetReport } from './target';

interface Options {
  seconds: number;
  seed: number;
  targets: string[];
  path?: string;
  jobs: number;
  runs?: number;
  system: boolean;
  inputMs: number;
  usPerUnit: number;
  hangMs: number;
  verbose: boolean;
}

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not a number`);
  return n;
}

function options(argv: string[]): Options {
  const all = [...pureTargets({ system: false }).map((t) => t.name), ...CHANNEL_TARGETS];
  let seconds = envNumber('FUZZ_SECONDS', 300);
  const named: string[] = [];
  for (const a of argv) {
    if (/^\d+(\.\d+)?$/.test(a)) seconds = Number(a);
    else named.push(...a.split(','));
  }
  if (named.length === 0 && process.env.FUZZ_TARGETS) named.push(...process.env.FUZZ_TARGETS.split(','));
  for (const n of named)
    if (!all.includes(n)) throw new Error(`unknown target ${n}; targets: ${all.join(', ')}`);
  const seed = envNumber('FUZZ_SEED', (Date.now() ^ (process.pid << 16)) >>> 0) | 0;
  const path = process.env.FUZZ_PATH || undefined;
  const targets = named.length > 0 ? named : all;
  if (path !== undefined && targets.length !== 1)
    throw new Error('FUZZ_PATH replays one target: set FUZZ_TARGETS too');
  const runs = process.env.FUZZ_RUNS ? envNumber('FUZZ_RUNS', 0) : undefined;
  return {
    seconds,
    seed,
    targets,
    path,
    jobs: Math.max(1, envNumber('FUZZ_JOBS', 1)),
    runs,
    system: process.env.FUZZ_SYSTEM_CORPUS !== '0',
    inputMs: envNumber('FUZZ_INPUT_MS', 1000),
    usPerUnit: envNumber('FUZZ_US_PER_BYTE', 10),
    hangMs: envNumber('FUZZ_HANG_MS', 60_000),
    verbose: process.env.FUZZ_VERBOSE === '1',
  };
}

async function main(): Promise<number> {
  if (process.argv.includes('--list')) {
    for (const t of pureTargets({ system: false })) process.stdout.write(`${t.name.padEnd(16)} ${t.about}\n`);
    for (const t of CHANNEL_TARGETS) process.stdout.write(`${t.padEnd(16)} ${CHANNEL_ABOUT[t]}\n`);
    return 0;
  }
  const o = options(process.argv.slice(2));
  const pure = o.targets.filter((t) => !(CHANNEL_TARGETS as readonly string[]).includes(t));
  const channels = o.targets.filter((t): t is ChannelName =>
    (CHANNEL_TARGETS as readonly string[]).includes(t),
  );
  const skip = channels.length > 0 ? channelSkipReason() : undefined;
  const share = (o.seconds * 1000) / (pure.length / o.jobs + (skip === undefined ? channels.length : 0) || 1);
  process.stdout.write(
    `fuzz: seed ${o.seed} (FUZZ_SEED=${o.seed} repeats this run), ` +
      (o.runs !== undefined
        ? `${o.runs} inputs per target`
        : `${o.seconds} s total, ~${(share / 1000).toFixed(0)} s per target`) +
      `, ${o.system ? 'repository and system' : 'repository'} corpus\n`,
  );
  const reports: TargetReport[] = [];
  const print = (r: TargetReport): void => {
    reports.push(r);
    process.stdout.write(formatSummary(r) + '\n');
    if (o.verbose) process.stdout.write(`  outcomes ${JSON.stringify(r.outcomes)}\n`);
    if (r.failure !== undefined) process.stdout.write(formatFailure(r) + '\n');
  };
  const queue = [...pure];
  const worker = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      print(
        await runTarget({
          target: name,
          seed: o.seed,
          path: o.path,
          numRuns: o.path !== undefined ? 1 : o.runs,
          timeLimitMs: o.runs === undefined && o.path === undefined ? share : undefined,
          inputMs: o.inputMs,
          usPerUnit: o.usPerUnit,
          shrinkMs: 60_000,
          system: o.system,
          hangMs: o.hangMs,
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, pure.length) }, worker));
  if (channels.length > 0) {
    if (skip !== undefined) process.stdout.write(`channel targets skipped: ${skip}\n`);
    else
      await runChannels(
        channels,
        {
          seed: o.seed,
          numRuns: o.runs,
          timeLimitMs: o.runs === undefined ? share : undefined,
          runMs: 10_000,
        },
        print,
      );
  }
  const failed = reports.filter((r) => r.failure !== undefined);
  const total = reports.reduce((n, r) => n + r.runs, 0);
  process.stdout.write(
    `fuzz: ${total} inputs over ${reports.length} targets, ${failed.length} failed` +
      (failed.length > 0 ? ` (${failed.map((r) => r.target).join(', ')}); seed ${o.seed}\n` : '\n'),
  );
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
