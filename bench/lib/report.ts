// How every benchmark ends: exactly one JSON object on stdout, or a message on stderr and a
// non-zero exit code when it crashed (run-all tells the two apart by the exit code).
import * as os from 'node:os';
import { runCleanups } from './cleanup';

/** What each report says about the machine, so figures from different hosts are not mixed up. */
export function hostInfo(): { cpus: number; kernel: string; node: string; memoryMB: number } {
  return {
    cpus: os.cpus().length,
    kernel: os.release(),
    node: process.version,
    memoryMB: Math.round(os.totalmem() / (1024 * 1024)),
  };
}

export function runBenchmark(main: () => Promise<object>): void {
  main().then(
    (result) => {
      runCleanups();
      process.stdout.write(JSON.stringify(result) + '\n');
    },
    (err: unknown) => {
      runCleanups();
      const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`benchmark failed: ${text}\n`);
      process.exitCode = 1;
    },
  );
}
