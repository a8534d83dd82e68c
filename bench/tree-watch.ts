// bench/tree-watch: the cost of watching a 100,000-directory tree recursively, in the same run,
// with triggerd's two mechanisms for [X-Triggerd] PathChangedRecursive=:
// - fanotify: ONE filesystem mark (FAN_REPORT_DFID_NAME), filtered to the subtree in TypeScript;
// - inotify: one watch per directory (the fallback when fanotify is refused; what incron-style
//   tools and a per-directory watcher do).
// Figures per mechanism: time to set up (to the first possible event), kernel memory (the
// difference in /proc/meminfo Slab while it is set up; approximate, other processes allocate too;
// inotify marks are not in a slab cache of their own here), the process's RSS growth, and the
// latency of a change at the bottom of the tree (write → listener), p50/p99 over 200 changes.
// The tree lives on tmpfs (/dev/shm) and is removed on every path out. Root only for fanotify
// (an ordinary user gets the inotify figures and `fanotify: { skipped }`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onCleanup } from './lib/cleanup';
import { hostInfo, runBenchmark } from './lib/report';
import { percentile, round } from './lib/stats';
import { statusKiB } from './lib/proc';
import { loadFanotifyNative } from '../src/native/fanotify-addon';
import { loadInotifyNative } from '../src/native/inotify-addon';
import { RecursivePathWatches, type RecursiveWatchEvent } from '../src/events/path-recursive';

/** 10 × 10 × 10 × 100 leaves = 100,000 directories at depth 4 (plus 1,110 above them). */
const FANOUT = [10, 10, 10, 100];
const CHANGES = 200;

function slabKiB(): number {
  const m = /^Slab:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'latin1'));
  return m === null ? Number.NaN : Number(m[1]);
}

function rssKiB(): number {
  return statusKiB(process.pid, 'VmRSS') ?? Number.NaN;
}

function makeTree(root: string): { dirs: number; leaves: string[] } {
  let level = [root];
  let dirs = 0;
  for (const fan of FANOUT) {
    const next: string[] = [];
    for (const parent of level) {
      for (let i = 0; i < fan; i++) {
        const d = path.join(parent, `d${i}`);
        fs.mkdirSync(d);
        next.push(d);
        dirs++;
      }
    }
    level = next;
  }
  return { dirs, leaves: level };
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200));
}

interface Figures {
  mechanism: string;
  setupMs: number;
  watches: number;
  kernelSlabDeltaMB: number;
  rssDeltaMB: number;
  changeLatencyMs: { p50: number; p99: number; max: number; samples: number };
}

async function measure(root: string, leaves: string[], source: RecursivePathWatches): Promise<Figures> {
  global.gc?.();
  await settle();
  const slab0 = slabKiB();
  const rss0 = rssKiB();
  let waiting: { file: string; resolve: () => void } | undefined;
  const t0 = performance.now();
  const watch = source.watch({ kind: 'PathChangedRecursive', path: root }, (e: RecursiveWatchEvent) => {
    if (waiting !== undefined && e.where === waiting.file) waiting.resolve();
  });
  const setupMs = performance.now() - t0;
  await settle();
  const slab1 = slabKiB();
  const rss1 = rssKiB();
  const state = watch.state();
  const latencies: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const leaf = leaves[(i * 7919) % leaves.length];
    const file = path.join(leaf, `change-${i}`);
    const seen = new Promise<void>((resolve) => (waiting = { file, resolve }));
    const timeout = new Promise<void>((_, reject) =>
      setTimeout(() => reject(new Error(`no event for ${file}`)), 5000).unref(),
    );
    const start = performance.now();
    fs.writeFileSync(file, 'x');
    await Promise.race([seen, timeout]);
    latencies.push(performance.now() - start);
  }
  watch.close();
  return {
    mechanism: state.mechanism,
    setupMs: round(setupMs),
    watches: state.watches,
    kernelSlabDeltaMB: round((slab1 - slab0) / 1024, 1),
    rssDeltaMB: round((rss1 - rss0) / 1024, 1),
    changeLatencyMs: {
      p50: round(percentile(latencies, 50), 3),
      p99: round(percentile(latencies, 99), 3),
      max: round(Math.max(...latencies), 3),
      samples: latencies.length,
    },
  };
}

async function main(): Promise<object> {
  const base = fs.mkdtempSync('/dev/shm/triggerd-bench-tree-');
  onCleanup('remove the tree', () => fs.rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'tree');
  fs.mkdirSync(root);
  const t0 = performance.now();
  const { dirs, leaves } = makeTree(root);
  const treeMs = performance.now() - t0;
  const maxWatches = Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'latin1').trim());

  let fanotify: Figures | { skipped: string };
  if (process.getuid?.() !== 0) fanotify = { skipped: `needs root (uid ${process.getuid?.()})` };
  else {
    const source = new RecursivePathWatches({ fanotify: loadFanotifyNative(), inotify: loadInotifyNative() });
    try {
      fanotify = await measure(root, leaves, source);
    } finally {
      source.close();
    }
  }
  let inotify: Figures | { skipped: string };
  if (maxWatches < dirs + 2000) inotify = { skipped: `fs.inotify.max_user_watches is ${maxWatches}` };
  else {
    const source = new RecursivePathWatches({ inotify: loadInotifyNative() });
    try {
      inotify = await measure(root, leaves, source);
    } finally {
      source.close();
    }
  }
  const ratio = (a: number, b: number): number => round(a / b, 1);
  return {
    benchmark: 'tree-watch',
    host: hostInfo(),
    tree: { directories: dirs + 1, depth: FANOUT.length, fs: 'tmpfs', createMs: round(treeMs) },
    fanotify,
    inotify,
    ...('setupMs' in fanotify && 'setupMs' in inotify
      ? {
          inotifyOverFanotify: {
            setup: ratio(inotify.setupMs, fanotify.setupMs),
            watches: inotify.watches,
            rss: ratio(inotify.rssDeltaMB, Math.max(fanotify.rssDeltaMB, 0.1)),
          },
        }
      : {}),
  };
}

runBenchmark(main);
