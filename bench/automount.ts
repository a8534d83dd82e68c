// bench/automount: access-to-listing latency of an automount, first access (nothing mounted: the
// trap fires, the image is loop-mounted, the waiter released) and re-access (mounted already), for
// triggerd's .automount and for Debian's autofs `automount` daemon serving the same ext4 image in
// the same run (a direct map, started by us in the foreground with a temporary master map, stopped
// by pid). Each access is `ls` in a session of its own, timed from spawn to exit; a plain directory
// listing is the baseline that both include. Between first accesses the ext4 mount is lazily
// unmounted by hand, so the next access triggers again. autofs is installed only when allowed (CI
// or TRIGGERD_BENCH_INSTALL=1), with policy-rc.d so its service never starts.
// Target: first access no slower than autofs (median).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { onCleanup } from './lib/cleanup';
import { aptInstall, installAllowed } from './lib/apt';
import { hostInfo, runBenchmark } from './lib/report';
import { median, percentile, round } from './lib/stats';
import { startTriggerd, REPO } from './lib/triggerd-daemon';
import { sleep, waitFor } from './lib/proc';
import { unitNameFromPath } from '../src/units/unit-name';

const FIRST_REPS = Number(process.env.TRIGGERD_BENCH_AUTOMOUNT_REPS ?? 15);
const RE_REPS = 40;

interface Series {
  firstMs: { median: number; p90: number; min: number };
  reaccessMs: { median: number; p90: number; min: number };
  failures: number;
}

function summary(values: number[]): { median: number; p90: number; min: number } {
  return {
    median: round(median(values), 2),
    p90: round(percentile(values, 90), 2),
    min: round(Math.min(...values), 2),
  };
}

/** `ls -1 dir` in its own session (never the trap's owner), from spawn to exit. */
function timedLs(dir: string, timeoutMs = 20_000): Promise<{ ms: number; ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn('ls', ['-1', dir], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - t0, ok: code === 0 && out.includes('hello.txt'), out });
    });
  });
}

function mountTypesAt(where: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'latin1')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4] === where)
    .map((f) => f[f.indexOf('-') + 1] ?? '');
}

/** Lazily unmount the file system on top of the autofs mount at `where` (the next access triggers). */
async function unmountTop(where: string): Promise<void> {
  if (mountTypesAt(where).some((t) => t !== 'autofs'))
    spawnSync('umount', ['-l', where], { stdio: 'ignore' });
  await waitFor(() => !mountTypesAt(where).some((t) => t !== 'autofs'), 5000);
}

function unmountAllUnder(dir: string): void {
  for (let i = 0; i < 32; i++) {
    const points = fs
      .readFileSync('/proc/self/mountinfo', 'latin1')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    spawnSync('umount', ['-l', points[0] as string], { stdio: 'ignore' });
  }
}

async function measure(where: string): Promise<Series> {
  const first: number[] = [];
  const again: number[] = [];
  let failures = 0;
  for (let i = 0; i < FIRST_REPS; i++) {
    await unmountTop(where);
    await sleep(50);
    const r = await timedLs(where);
    if (r.ok) first.push(r.ms);
    else failures++;
  }
  for (let i = 0; i < RE_REPS; i++) {
    const r = await timedLs(where);
    if (r.ok) again.push(r.ms);
    else failures++;
  }
  if (first.length === 0 || again.length === 0) throw new Error(`no successful access at ${where}`);
  return { firstMs: summary(first), reaccessMs: summary(again), failures };
}

async function ensureAutomount(): Promise<{ path?: string; skipped?: string }> {
  const find = (): string | undefined =>
    ['/usr/sbin/automount', '/sbin/automount'].find((p) => fs.existsSync(p));
  let found = find();
  if (found === undefined) {
    if (!installAllowed())
      return { skipped: 'autofs is not installed (set TRIGGERD_BENCH_INSTALL=1 or CI=true to install it)' };
    const err = await aptInstall(['autofs'], { noRecommends: true });
    if (err !== undefined) return { skipped: err };
    found = find();
    if (found === undefined) return { skipped: 'apt-get installed autofs but there is no automount binary' };
  }
  return { path: found };
}

async function runAutofsPeer(binary: string, dir: string, image: string): Promise<Series> {
  const where = path.join(dir, 'peer');
  fs.mkdirSync(where);
  const direct = path.join(dir, 'auto.direct');
  const master = path.join(dir, 'auto.master');
  fs.writeFileSync(direct, `${where} -fstype=ext4,loop,ro :${image}\n`);
  fs.writeFileSync(master, `/- file:${direct} --timeout=0\n`);
  const pidFile = path.join(dir, 'automount.pid');
  const child: ChildProcess = spawn(binary, ['-f', '-t', '0', '-p', pidFile, `file:${master}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const stop = (): void => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  };
  const undo = onCleanup('stop the autofs automount daemon', () => {
    stop();
    unmountAllUnder(where);
  });
  try {
    if (!(await waitFor(() => mountTypesAt(where).includes('autofs'), 10_000))) {
      throw new Error(`automount did not mount its direct map at ${where}: ${stderr.slice(-400)}`);
    }
    return await measure(where);
  } finally {
    stop();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    unmountAllUnder(where);
    undo();
  }
}

async function main(): Promise<object> {
  const base = { benchmark: 'automount', host: hostInfo() };
  if (process.getuid?.() !== 0)
    return { ...base, skipped: `needs root (running as uid ${process.getuid?.()})` };
  if (!fs.existsSync('/dev/autofs')) return { ...base, skipped: 'needs /dev/autofs' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-automount-'));
  onCleanup('remove the automount bench directory', () => {
    unmountAllUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const content = path.join(dir, 'content');
  fs.mkdirSync(content);
  fs.writeFileSync(path.join(content, 'hello.txt'), 'hello\n');
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(content, `file-${i}`), String(i));
  const image = path.join(dir, 'image.img');
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-d', content, image, '16M'], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`mkfs.ext4: ${mk.stderr}`);

  // Baseline: the same listing of a plain directory (spawn + exec + readdir, no trap).
  const plain: number[] = [];
  for (let i = 0; i < RE_REPS; i++) plain.push((await timedLs(content)).ms);

  // triggerd
  const units = path.join(dir, 'units');
  fs.mkdirSync(units);
  const where = path.join(dir, 'triggerd');
  fs.writeFileSync(
    path.join(units, unitNameFromPath(where, 'mount')),
    `[Mount]\nWhat=${image}\nWhere=${where}\nType=ext4\nOptions=loop,ro\n`,
  );
  fs.writeFileSync(path.join(units, unitNameFromPath(where, 'automount')), `[Automount]\nWhere=${where}\n`);
  const d = await startTriggerd(path.join(REPO, 'rules'), { unitPath: units });
  let triggerd: Series;
  try {
    await d.request('start', { names: [unitNameFromPath(where, 'automount')] });
    if (!(await waitFor(() => mountTypesAt(where).includes('autofs'), 10_000))) {
      throw new Error(`triggerd did not mount autofs at ${where}: ${d.logTail().join(' | ')}`);
    }
    triggerd = await measure(where);
  } finally {
    await d.stop();
    unmountAllUnder(where);
  }

  const peerBinary = await ensureAutomount();
  let autofs: Series | undefined;
  let peerSkipped = peerBinary.skipped;
  if (peerBinary.path !== undefined) {
    try {
      autofs = await runAutofsPeer(peerBinary.path, dir, image);
    } catch (err) {
      peerSkipped = (err as Error).message;
    }
  }
  const target =
    autofs === undefined
      ? { met: null, reason: peerSkipped }
      : {
          met: triggerd.firstMs.median <= autofs.firstMs.median,
          rule: 'triggerd first-access median <= autofs',
        };
  return {
    ...base,
    firstAccessReps: FIRST_REPS,
    reaccessReps: RE_REPS,
    plainListingMs: summary(plain),
    triggerd,
    autofs: autofs ?? { skipped: peerSkipped },
    target,
  };
}

runBenchmark(main);
