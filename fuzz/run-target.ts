// Runs one pure target in a worker thread and watches it: a check that has not returned after
// `hangMs` is a hang, so the worker is terminated (which stops even a synchronous loop) and a
// second worker regenerates that input from the seed and its run index, to print it.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { TargetReport } from './target';
import type { WorkerMessage, WorkerParams } from './worker';

export type RunParams = Omit<WorkerParams, 'control' | 'capture'> & {
  /** A single check running longer than this is a hang. */
  hangMs: number;
};

const WORKER = path.join(__dirname, 'worker.js');
const POLL_MS = 100;

function startWorker(params: WorkerParams): { worker: Worker; result: Promise<WorkerMessage> } {
  const worker = new Worker(WORKER, { workerData: params });
  const result = new Promise<WorkerMessage>((resolve, reject) => {
    worker.once('message', (m: WorkerMessage) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`fuzz worker exited with ${code} before reporting`)));
  });
  return { worker, result };
}

/** Regenerate the input of run `index` (0-based) for a report. */
async function captureInput(params: RunParams, index: number): Promise<string> {
  const { worker, result } = startWorker({
    ...params,
    control: new SharedArrayBuffer(12),
    path: String(index),
    capture: true,
  });
  try {
    const m = await result;
    return m.kind === 'captured' ? m.input : '(not captured)';
  } catch (err) {
    return `(could not regenerate: ${String(err)})`;
  } finally {
    void worker.terminate();
  }
}

export async function runTarget(params: RunParams): Promise<TargetReport> {
  const control = new SharedArrayBuffer(12);
  const ctl = new Int32Array(control);
  const t0 = Date.now();
  const { worker, result } = startWorker({ ...params, control });
  let lastStarted = -1;
  let since = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ started: number; firstFailure: number }>((resolve) => {
    timer = setInterval(() => {
      const started = Atomics.load(ctl, 0);
      const busy = Atomics.load(ctl, 1) === 1;
      if (started !== lastStarted || !busy) {
        lastStarted = started;
        since = Date.now();
        return;
      }
      if (Date.now() - since > params.hangMs) resolve({ started, firstFailure: Atomics.load(ctl, 2) });
    }, POLL_MS);
  });
  try {
    const outcome = await Promise.race([result, hang]);
    if ('kind' in outcome) {
      if (outcome.kind === 'report') return outcome.report;
      throw new Error('fuzz worker answered a capture request');
    }
    await worker.terminate();
    // Before any failure, check n is fast-check's run n-1, so the input can be regenerated.
    // A hang while shrinking names the run that failed first instead.
    const shrinking = outcome.firstFailure > 0;
    const index = (shrinking ? outcome.firstFailure : outcome.started) - 1;
    const input = await captureInput(params, index);
    return {
      target: params.target,
      seed: params.seed,
      runs: outcome.started,
      shrinks: 0,
      ms: Date.now() - t0,
      slowestMs: params.hangMs,
      outcomes: {},
      failure: {
        kind: 'hang',
        message: shrinking
          ? `a check did not return within ${params.hangMs} ms while shrinking the failure of run ${index}; that run's input is shown`
          : `run ${index} did not return within ${params.hangMs} ms (worker stopped)`,
        path: String(index),
        input,
      },
    };
  } finally {
    clearInterval(timer);
    void worker.terminate();
  }
}
