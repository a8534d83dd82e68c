// The fuzz harness (fuzz/) on a fixed seed and a small, fixed number of inputs per target, so CI
// is reproducible and this file stays within ~40 s on a 2-CPU machine: every parser target in a
// worker thread, then the control and notify sockets of a real daemon. `npm run fuzz` runs the
// same targets for minutes with a random seed; a failure here prints the shrunk input and the
// FUZZ_SEED/FUZZ_TARGETS/FUZZ_PATH that replay it.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runTarget } from '../../fuzz/run-target';
import { channelSkipReason, runChannels } from '../../fuzz/channels';
import { formatFailure, formatSummary } from '../../fuzz/report';
import type { TargetReport } from '../../fuzz/target';

const SEED = 0x66757a7a; // "fuzz"

/** Inputs per target: each target's share of the ~40 s, by its speed on this VM. */
const RUNS: Record<string, number> = {
  'uevent-kernel': 6000,
  'uevent-libudev': 6000,
  rules: 2000,
  'unit-file': 400,
  fstab: 2000,
  mountinfo: 3000,
  calendar: 6000,
  tzif: 6000,
  notify: 6000,
  control: 2500,
  'kernel-records': 6000,
};

function verdict(t: TestContext, r: TargetReport): void {
  t.diagnostic(formatSummary(r));
  if (r.failure !== undefined) assert.fail(formatFailure(r));
}

describe('fuzz: the harness itself', () => {
  const selftest = async (mode: string): Promise<TargetReport> => {
    process.env.FUZZ_SELFTEST = mode;
    try {
      return await runTarget({
        target: 'selftest',
        seed: SEED,
        numRuns: 1000,
        inputMs: 3000,
        usPerUnit: 0,
        shrinkMs: 10_000,
        system: false,
        hangMs: 1000,
      });
    } finally {
      delete process.env.FUZZ_SELFTEST;
    }
  };

  test('an exception is a failure, shrunk to the smallest input, with a replay path', async () => {
    const r = await selftest('throw');
    assert.equal(r.failure?.kind, 'violation');
    assert.match(r.failure?.message ?? '', /threw TypeError: selftest: 101 is over 100/);
    assert.equal(r.failure?.input, 'the number 101');
    assert.match(r.failure?.path ?? '', /^\d+(:\d+)*$/);
    assert.match(formatFailure(r), /replay: FUZZ_SEED=\d+ FUZZ_TARGETS=selftest FUZZ_PATH=/);
  });

  test('an input that never returns: the worker is stopped and the input named', async () => {
    const r = await selftest('hang');
    assert.equal(r.failure?.kind, 'hang');
    assert.match(r.failure?.message ?? '', /did not return within 1000 ms/);
    const n = Number(/^the number (\d+)$/.exec(r.failure?.input ?? '')?.[1]);
    assert.ok(n > 100, r.failure?.input);
  });
});

describe('fuzz: parsers (fixed seed)', { concurrency: 2 }, () => {
  for (const [target, numRuns] of Object.entries(RUNS)) {
    test(`${target}: ${numRuns} inputs`, async (t) => {
      const r = await runTarget({
        target,
        seed: SEED,
        numRuns,
        // Generous: CI machines are shared; a hang or a quadratic parser is far past these.
        inputMs: 3000,
        usPerUnit: 20,
        shrinkMs: 10_000,
        system: false,
        hangMs: 20_000,
      });
      assert.equal(r.runs, numRuns);
      verdict(t, r);
    });
  }
});

const skip = channelSkipReason();

test(
  'fuzz: control and notify sockets of a running daemon (fixed seed)',
  { skip: skip ?? false },
  async (t) => {
    const reports = await runChannels(['control-socket', 'notify-socket'], {
      seed: SEED,
      numRuns: 300,
      runMs: 10_000,
    });
    assert.equal(reports.length, 2);
    for (const r of reports) verdict(t, r);
  },
);
