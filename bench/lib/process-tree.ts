// Memory of a process and all its descendants (a daemon's workers, and whatever those fork), and
// a sampler that keeps the peak of it at a fixed interval.
import * as fs from 'node:fs';
import { pssKiB, statusKiB } from './proc';

/** pid → parent pid for every process now (one pass over /proc). */
function parentMap(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      // comm may contain spaces and parentheses: the fields after the last ')' are fixed.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(name), Number(rest[1]));
    } catch {
      // gone between readdir and read
    }
  }
  return parents;
}

/** `pid` and every process below it. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const [p, parent] of parentMap()) {
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [p]);
    else list.push(p);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0 && out.length < 10_000) {
    const p = stack.pop() as number;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

export interface TreeSample {
  rssKiB: number;
  pssKiB: number;
  processes: number;
}

/** Sum of VmRSS (shared pages counted per process) and Pss over the process tree. */
export function treeSample(pid: number, withPss = false): TreeSample {
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const p of descendantsOf(pid)) {
    const r = statusKiB(p, 'VmRSS');
    if (r === undefined) continue;
    rss += r;
    if (withPss) pss += pssKiB(p) ?? 0;
    processes++;
  }
  return { rssKiB: rss, pssKiB: pss, processes };
}

/** Samples the tree every `intervalMs` until stopped; keeps the peaks. */
export class PeakSampler {
  peakRssKiB = 0;
  peakProcesses = 0;
  samples = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  sample(): void {
    const s = treeSample(this.pid);
    this.samples++;
    this.peakRssKiB = Math.max(this.peakRssKiB, s.rssKiB);
    this.peakProcesses = Math.max(this.peakProcesses, s.processes);
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }
}
