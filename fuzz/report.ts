// Printing of fuzz results: one line per target, and for a failure everything needed to replay it.
import * as fc from 'fast-check';
import type { TargetReport } from './target';

const MAX_SHOWN = 6000;

export function stringifyInput(input: unknown): string {
  const s = fc.stringify(input);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}… (${s.length} chars)` : s;
}

export function formatSummary(r: TargetReport): string {
  const rate = r.ms > 0 ? Math.round((r.runs * 1000) / r.ms) : 0;
  const top = Object.entries(r.outcomes)
    .slice(0, 4)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const status = r.failure === undefined ? 'ok' : `FAILED (${r.failure.kind})`;
  return (
    `${r.target.padEnd(18)} ${status.padEnd(18)} ${String(r.runs).padStart(9)} inputs ` +
    `${(r.ms / 1000).toFixed(1).padStart(6)} s ${String(rate).padStart(7)}/s  slowest ${r.slowestMs} ms` +
    (top === '' ? '' : `  [${top}${Object.keys(r.outcomes).length > 4 ? ', …' : ''}]`)
  );
}

/** The failure, with the command that replays it. */
export function formatFailure(r: TargetReport): string {
  const f = r.failure;
  if (f === undefined) return '';
  const replay = [`FUZZ_SEED=${r.seed}`, `FUZZ_TARGETS=${r.target}`];
  if (f.path !== undefined) replay.push(`FUZZ_PATH=${f.path}`);
  return [
    `--- ${r.target}: ${f.kind}`,
    f.message,
    `input (shrunk${f.kind === 'hang' ? ' where possible' : ''}): ${f.input}`,
    `replay: ${replay.join(' ')} npm run fuzz`,
  ].join('\n');
}
