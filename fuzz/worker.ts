// Worker thread that runs one pure target under fast-check. It tells the main thread, through a
// shared Int32Array, how many checks it has started and whether one is running, so the main
// thread can stop it when an input hangs (run-target.ts). An input slower than `inputMs` (but
// finishing) is a failure fast-check shrinks like any other. In capture mode it only regenerates
// the input at a replay path, to name the input that hung.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as fc from 'fast-check';
import { Tally, FuzzViolation, type TargetReport } from './target';
import { findTarget } from './targets';
import { stringifyInput } from './report';

export interface WorkerParams {
  target: string;
  seed: number;
  /** Fixed number of inputs (reproducible), or undefined to run until `timeLimitMs`. */
  numRuns?: number;
  timeLimitMs?: number;
  /** Replay: fast-check's path of one run (with its shrink steps). */
  path?: string;
  /** A single input slower than this plus `usPerUnit` per byte or character of it is a failure. */
  inputMs: number;
  usPerUnit: number;
  /** How long shrinking a failure may take before the smallest so far is reported. */
  shrinkMs: number;
  system: boolean;
  /** [0] checks started, [1] 1 while a check runs, [2] 1 + the run index of the first failure. */
  control: SharedArrayBuffer;
  capture?: boolean;
}

export type WorkerMessage = { kind: 'report'; report: TargetReport } | { kind: 'captured'; input: string };

const CTL_STARTED = 0;
const CTL_BUSY = 1;
const CTL_FIRST_FAILURE = 2;

function main(params: WorkerParams): WorkerMessage {
  const target = findTarget(params.target, { system: params.system });
  const ctl = new Int32Array(params.control);
  const arbitrary = target.arbitrary();
  const show = (input: unknown): string => (target.show ? target.show(input) : stringifyInput(input));

  if (params.capture === true) {
    let captured = '(not generated)';
    fc.check(
      fc.property(arbitrary, (input) => {
        captured = show(input);
      }),
      { seed: params.seed, path: params.path, numRuns: 1 },
    );
    return { kind: 'captured', input: captured };
  }

  const tally = new Tally();
  let slowestMs = 0;
  let checks = 0;
  let shrinkDeadline = Infinity;
  const property = fc.property(arbitrary, (input) => {
    // Past the shrink deadline every candidate "passes", which ends shrinking at the smallest
    // failing input found so far.
    if (performance.now() > shrinkDeadline) return;
    Atomics.store(ctl, CTL_STARTED, ++checks);
    Atomics.store(ctl, CTL_BUSY, 1);
    const t0 = performance.now();
    try {
      target.check(input, tally);
    } catch (err) {
      if (Atomics.load(ctl, CTL_FIRST_FAILURE) === 0) {
        Atomics.store(ctl, CTL_FIRST_FAILURE, checks);
        shrinkDeadline = performance.now() + params.shrinkMs;
      }
      throw err;
    } finally {
      Atomics.store(ctl, CTL_BUSY, 0);
    }
    const ms = performance.now() - t0;
    if (ms > slowestMs) slowestMs = ms;
    const limit = params.inputMs + (target.size(input) * params.usPerUnit) / 1000;
    if (ms > limit) {
      if (Atomics.load(ctl, CTL_FIRST_FAILURE) === 0) {
        Atomics.store(ctl, CTL_FIRST_FAILURE, checks);
        shrinkDeadline = performance.now() + params.shrinkMs;
      }
      throw new FuzzViolation(
        `one input took ${ms.toFixed(0)} ms (limit ${limit.toFixed(0)} ms for its size)`,
      );
    }
  });

  const t0 = performance.now();
  const details = fc.check(property, {
    seed: params.seed,
    path: params.path,
    numRuns: params.numRuns ?? 0x7fffffff,
    plugins: params.timeLimitMs === undefined ? [] : [fc.interruptAfterTimeLimit(params.timeLimitMs)],
  });
  const report: TargetReport = {
    target: target.name,
    seed: params.seed,
    runs: details.numRuns,
    shrinks: details.numShrinks,
    ms: Math.round(performance.now() - t0),
    slowestMs: Math.round(slowestMs * 10) / 10,
    outcomes: tally.toJSON(),
  };
  if (details.failed) {
    const err = details.errorInstance;
    const message =
      err instanceof FuzzViolation
        ? err.message
        : err instanceof Error
          ? `threw ${err.name}: ${err.message}\n${err.stack ?? ''}`
          : `threw ${String(err)}`;
    const example = details.counterexample as [unknown] | null;
    report.failure = {
      kind: 'violation',
      message,
      path: details.counterexamplePath ?? undefined,
      input: example === null ? '(none)' : show(example[0]),
    };
  }
  return { kind: 'report', report };
}

if (parentPort !== null) parentPort.postMessage(main(workerData as WorkerParams));
