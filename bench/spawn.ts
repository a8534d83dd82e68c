// Jobs started and reaped per second: /bin/true spawned through the native addon (vfork-style
// clone3 + exec, exits from the child-exit watcher), sequentially and 16 in flight, against a
// minimal C fork+exec+waitpid loop compiled and run in the same run, plus Node's
// child_process.spawn for reference. Target: the addon reaches 90 % of the C loop at both
// concurrencies. Each figure is the median of ROUNDS runs, C and native interleaved.
import { spawn as nodeSpawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ExecPlan } from '../src/exec/exec-plan';
import { loadNativeSpawn, type ChildExit, type NativeSpawn } from '../src/native/spawn-addon';
import { onCleanup } from './lib/cleanup';
import { killPid, runCommand } from './lib/proc';
import { hostInfo, runBenchmark } from './lib/report';
import { median, round } from './lib/stats';

const SPAWNS = 5000;
const NODE_SPAWNS = 1000;
const CONCURRENCY = 16;
const ROUNDS = 3;
const TARGET_RATIO = 0.9;
const TRUE = '/bin/true';

const C_SOURCE = String.raw`
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int total = atoi(argv[1]), concurrency = atoi(argv[2]);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  char *args[] = {"/bin/true", NULL};
  char *envp[] = {NULL};
  int started = 0, running = 0, reaped = 0, failures = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (reaped < total) {
    while (running < concurrency && started < total) {
      pid_t pid = fork();
      if (pid == 0) {
        dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2);
        execve(args[0], args, envp);
        _exit(127);
      }
      if (pid < 0) { perror("fork"); return 1; }
      started++; running++;
    }
    int status;
    if (waitpid(-1, &status, 0) > 0) {
      running--; reaped++;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures++;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("{\"spawns\":%d,\"concurrency\":%d,\"ms\":%.3f,\"failures\":%d}\n", total, concurrency, ms, failures);
  return 0;
}
`;

interface Measurement {
  ms: number;
  failures: number;
}

function perSecond(count: number, m: Measurement): number {
  return (count / m.ms) * 1000;
}

async function compileC(dir: string): Promise<string> {
  const source = path.join(dir, 'fork-exec.c');
  const binary = path.join(dir, 'fork-exec');
  writeFileSync(source, C_SOURCE);
  const result = await runCommand('cc', ['-O2', '-o', binary, source], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`cc failed (${result.code}): ${result.stderr.slice(0, 2000)}`);
  return binary;
}

async function runC(binary: string, concurrency: number): Promise<Measurement> {
  const result = await runCommand(binary, [String(SPAWNS), String(concurrency)], {
    timeoutMs: 120_000,
    env: {},
  });
  if (result.code !== 0) throw new Error(`C loop failed (${result.code}): ${result.stderr.slice(0, 2000)}`);
  const parsed = JSON.parse(result.stdout) as { ms: number; failures: number };
  return { ms: parsed.ms, failures: parsed.failures };
}

/** The whole spawn → exit path as the daemon uses it: plan in, exit batch out. */
async function runNative(native: NativeSpawn, concurrency: number): Promise<Measurement> {
  const plan: ExecPlan = {
    path: TRUE,
    argv: [TRUE],
    env: [],
    rlimits: [],
    fds: [
      { childFd: 0, parentFd: -1 },
      { childFd: 1, parentFd: -1 },
      { childFd: 2, parentFd: -1 },
    ],
    newSession: false,
    noNewPrivileges: false,
    privateNetwork: false,
    mounts: [],
  };
  const running = new Set<number>();
  const stop = onCleanup('kill native children', () => {
    for (const pid of running) killPid(pid, 'SIGKILL');
  });
  let failures = 0;
  let started = 0;
  let reaped = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const t0 = performance.now();
  const topUp = (): void => {
    while (running.size < concurrency && started < SPAWNS) {
      running.add(native.spawn(plan).pid);
      started++;
    }
  };
  const watcher = native.watchChildren((exits: ChildExit[]) => {
    for (const exit of exits) {
      if (!running.delete(exit.pid)) continue;
      reaped++;
      if (exit.code !== 'exited' || exit.status !== 0) failures++;
    }
    if (reaped === SPAWNS) finish();
    else topUp();
  });
  try {
    topUp();
    await done;
    return { ms: performance.now() - t0, failures };
  } finally {
    watcher.close();
    stop();
  }
}

/** Node's child_process.spawn (plain fork() of the whole process), for reference. */
async function runNode(concurrency: number): Promise<Measurement> {
  let failures = 0;
  let started = 0;
  let reaped = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const topUp = (): void => {
      while (started - reaped < concurrency && started < NODE_SPAWNS) {
        started++;
        const child = nodeSpawn(TRUE, [], { stdio: 'ignore', env: {} });
        child.on('error', reject);
        child.on('exit', (code) => {
          reaped++;
          if (code !== 0) failures++;
          if (reaped === NODE_SPAWNS) resolve();
          else topUp();
        });
      }
    };
    topUp();
  });
  return { ms: performance.now() - t0, failures };
}

async function main(): Promise<object> {
  const native = loadNativeSpawn();
  const dir = mkdtempSync(path.join(tmpdir(), 'triggerd-bench-spawn-'));
  const removeDir = onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  try {
    const binary = await compileC(dir);
    const rates: Record<'c' | 'native', Record<'sequential' | 'concurrent', number[]>> = {
      c: { sequential: [], concurrent: [] },
      native: { sequential: [], concurrent: [] },
    };
    let failures = 0;
    // Interleaved, so drift on the machine hits both sides alike. The native watcher reaps every
    // child of this process, so nothing else spawns while it runs (the C loop runs in between).
    for (let round = 0; round < ROUNDS; round++) {
      for (const [key, concurrency] of [
        ['sequential', 1],
        ['concurrent', CONCURRENCY],
      ] as const) {
        const c = await runC(binary, concurrency);
        const n = await runNative(native, concurrency);
        failures += c.failures + n.failures;
        rates.c[key].push(perSecond(SPAWNS, c));
        rates.native[key].push(perSecond(SPAWNS, n));
      }
    }
    const nodeSequential = await runNode(1);
    const nodeConcurrent = await runNode(CONCURRENCY);
    failures += nodeSequential.failures + nodeConcurrent.failures;

    const summary = (values: number[]): number => round(median(values), 0);
    const ratio = (key: 'sequential' | 'concurrent'): number =>
      round(median(rates.native[key]) / median(rates.c[key]), 2);
    const ratios = { sequential: ratio('sequential'), concurrent: ratio('concurrent') };
    return {
      benchmark: 'spawn',
      host: hostInfo(),
      what: `${TRUE} started and reaped per second; ${SPAWNS} spawns per run, median of ${ROUNDS} runs; concurrency 1 and ${CONCURRENCY}`,
      jobsPerSecond: {
        sequential: summary(rates.native.sequential),
        concurrent: summary(rates.native.concurrent),
        runs: {
          sequential: rates.native.sequential.map((r) => round(r, 0)),
          concurrent: rates.native.concurrent.map((r) => round(r, 0)),
        },
      },
      ratioToC: ratios,
      failures,
      target: { ratioToC: TARGET_RATIO },
      meetsTarget: ratios.sequential >= TARGET_RATIO && ratios.concurrent >= TARGET_RATIO && failures === 0,
      peer: {
        name: 'minimal C fork+exec+waitpid loop (cc -O2), compiled in this run',
        jobsPerSecond: {
          sequential: summary(rates.c.sequential),
          concurrent: summary(rates.c.concurrent),
          runs: {
            sequential: rates.c.sequential.map((r) => round(r, 0)),
            concurrent: rates.c.concurrent.map((r) => round(r, 0)),
          },
        },
        nodeChildProcess: {
          name: `node ${process.version} child_process.spawn, ${NODE_SPAWNS} spawns, stdio ignore`,
          jobsPerSecond: {
            sequential: round(perSecond(NODE_SPAWNS, nodeSequential), 0),
            concurrent: round(perSecond(NODE_SPAWNS, nodeConcurrent), 0),
          },
        },
      },
    };
  } finally {
    removeDir();
  }
}

runBenchmark(main);
