// What a fuzz target is: an arbitrary (fast-check: generation plus shrinking) and a check that
// throws a FuzzViolation when the parser broke its contract. Targets are pure and synchronous;
// each runs in a worker thread (run-target.ts) so that an input that hangs can be stopped and
// named. The channel targets, which talk to a running daemon, live in channels.ts.
import type * as fc from 'fast-check';

/** A broken contract: the parser threw, returned something malformed, or took too long. */
export class FuzzViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzViolation';
  }
}

export function violation(message: string): never {
  throw new FuzzViolation(message);
}

/** Counts outcomes per target (accepted, each error code) so a report shows the fuzzer got past the framing. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort((a, b) => b[1] - a[1]));
  }
}

export interface FuzzTarget<T> {
  name: string;
  /** One line for the report: what goes in and what is checked. */
  about: string;
  /** Built inside the worker (loads the recorded corpus once). */
  arbitrary(): fc.Arbitrary<T>;
  /** Returns normally when the contract held; throws (FuzzViolation or anything else) when not. */
  check(input: T, tally: Tally): void;
  /** Bytes or characters of the input: the time limit grows with it (linear work is fine, more is a hang). */
  size(input: T): number;
  /** The input as a reader wants it in a failure report (hex for bytes); default fc.stringify. */
  show?(input: T): string;
}

/** Erases T so targets of different input types fit one registry. */
export type AnyFuzzTarget = FuzzTarget<never> & {
  arbitrary(): fc.Arbitrary<unknown>;
  check(input: unknown, tally: Tally): void;
  size(input: unknown): number;
  show?(input: unknown): string;
};

export function defineTarget<T>(target: FuzzTarget<T>): AnyFuzzTarget {
  return target as unknown as AnyFuzzTarget;
}

/** Per-target result, as the worker reports it and run.ts prints it. */
export interface TargetReport {
  target: string;
  seed: number;
  /** Inputs the check ran on (fast-check's numRuns, shrinking not counted). */
  runs: number;
  /** Checks run while shrinking a failure. */
  shrinks: number;
  ms: number;
  /** Slowest single input, in ms, and its size as shown. */
  slowestMs: number;
  outcomes: Record<string, number>;
  failure?: {
    kind: 'violation' | 'hang';
    message: string;
    /** fast-check's replay path: FUZZ_SEED + FUZZ_PATH reproduce the (shrunk) counterexample. */
    path?: string;
    /** The shrunk counterexample, as show() prints it (cut to a readable length). */
    input: string;
  };
}
