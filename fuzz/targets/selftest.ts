// A target that breaks on purpose, to test the harness itself (test/integration/fuzz.test.ts):
// with FUZZ_SELFTEST=throw every number over 100 makes it throw a TypeError (fast-check must
// shrink that to 101), with FUZZ_SELFTEST=hang it never returns (the watchdog must stop the
// worker and name the input). Registered only while FUZZ_SELFTEST is set.
import * as fc from 'fast-check';
import { defineTarget } from '../target';

export const selftestTarget = () =>
  defineTarget<number>({
    name: 'selftest',
    about: 'the harness itself: FUZZ_SELFTEST=throw or hang on numbers over 100',
    arbitrary: () => fc.nat(100_000),
    check: (n) => {
      if (n <= 100) return;
      if (process.env.FUZZ_SELFTEST === 'hang') for (;;);
      throw new TypeError(`selftest: ${n} is over 100`);
    },
    size: () => 1,
    show: (n) => `the number ${n}`,
  });
