// Runs every benchmark as its own process, in sequence (they measure memory and share the machine's
// loop devices, so they must not overlap), and forwards each one's JSON line to stdout. A benchmark
// that crashes (non-zero exit, or no single JSON object on stdout) gets a JSON line saying so and
// makes the exit code 1; a missed target does not.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** In order: uevent-pipeline may install udev, which the later ones then use as their peer. */
const BENCHMARKS = [
  'uevent-pipeline',
  'coldplug',
  'daemon-idle-rss',
  'spawn',
  'load-units',
  'storm',
  'hotplug',
  // Socket activation: loopback only; accept may install xinetd as its peer.
  'accept',
  'cold-start',
  // Pure computation, no devices: next-elapse rate of calendar expressions.
  'calendar',
  // 10,000 armed timers in the daemon: RSS, start-up, wake-up accuracy of 300 that elapse.
  'timers',
  // Path units on tmpfs; may install inotify-tools as their peer.
  'path-latency',
  'path-burst',
  // Path units: a 100,000-directory tree on tmpfs watched with one fanotify mark vs inotify.
  'tree-watch',
  // Mount units: one change with 1,000 mounts present, a 2,000-bind-mount storm; findmnt --poll as the peer.
  'mountinfo',
  // Automount: first access and re-access of an ext4 image; may install autofs as its peer.
  'automount',
  // Issue 9: uevents, an Accept=yes flood, a notify flood and a path burst at once; control latency, RSS.
  'load',
  // Issue 9: daemon-reexec under a connection load (Accept=no and Accept=yes); a plain restart as the baseline.
  'reexec',
];
/** Generous bound per benchmark (the first may install a package); the child is killed after it. */
const TIMEOUT_MS = 15 * 60 * 1000;

/** Set when run-all was interrupted: the running benchmark cleans up and no further one starts. */
let interruptedBy: NodeJS.Signals | undefined;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  timedOut: boolean;
  ms: number;
}

function runOne(file: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    // stderr goes straight through: it is where a benchmark explains a failure.
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // Its own SIGTERM handler cleans up (udevd, rules mask, temp files) before it exits.
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    }, TIMEOUT_MS);
    const forward = (signal: NodeJS.Signals): void => {
      interruptedBy = signal;
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(chunks).toString('utf8'),
        timedOut,
        ms: performance.now() - t0,
      });
    });
  });
}

/** The one JSON object a benchmark printed, or undefined when its stdout is anything else. */
function singleJsonObject(stdout: string): object | undefined {
  const lines = stdout.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length !== 1) return undefined;
  try {
    const value: unknown = JSON.parse(lines[0]);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  let crashed = 0;
  for (const name of BENCHMARKS) {
    if (interruptedBy !== undefined) break;
    const outcome = await runOne(path.join(__dirname, `${name}.js`));
    const result = singleJsonObject(outcome.stdout);
    if (outcome.code === 0 && result !== undefined) {
      process.stdout.write(JSON.stringify(result) + '\n');
      continue;
    }
    crashed++;
    const line = {
      benchmark: name,
      crashed: true,
      exitCode: outcome.code,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      ms: Math.round(outcome.ms),
      stdout: outcome.stdout.slice(0, 2000),
    };
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  if (interruptedBy !== undefined) return interruptedBy === 'SIGINT' ? 130 : 143;
  return crashed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `run-all failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
