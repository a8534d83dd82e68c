// OPTIONS+="watch" on the real kernel: triggerd (standalone, the project's rules/) watches an
// attached loop device; `mkfs.ext4 -L B` on it replaces by-label/A with by-label/B with no
// trigger from anyone — the close of the writer makes triggerd synthesize the change. The time
// from mkfs exiting to the new link is reported as a diagnostic (not asserted). The loop device
// is detached, the daemon stopped by pid and the temp files removed whether the tests pass or not.
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, skipUnlessRoot, startDaemon, type RunningDaemon } from '../helpers/daemon';

function hasProgram(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function udevdRunning(): boolean {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
      if (comm === 'systemd-udevd' || comm === 'udevd') return true;
    } catch {
      // gone
    }
  }
  return false;
}

const skip =
  skipUnlessRoot() ??
  (hasProgram('losetup') && hasProgram('mkfs.ext4') ? undefined : 'needs losetup and mkfs.ext4') ??
  (udevdRunning() ? 'a udevd runs here and would make the /dev/disk links itself' : undefined);

function linkTarget(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** Polls every 2 ms (latency is measured with it) until `check` holds; false on timeout. */
async function pollUntil(check: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return true;
}

/** Runs mkfs.ext4 and resolves with the moment it exited (it closed the node just before). */
function mkfs(label: string, devnode: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('mkfs.ext4', ['-F', '-q', '-L', label, devnode], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const at = performance.now();
      if (code === 0) resolve(at);
      else reject(new Error(`mkfs.ext4 exited ${code}: ${stderr}`));
    });
  });
}

describe('OPTIONS+="watch": mkfs on a watched loop device re-probes it', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-watch-'));
  const image = path.join(work, 'ext4.img');
  const tag = `w${process.pid % 100000}`;
  const labels = ['A', 'B', 'C', 'D', 'E'].map((l) => `${tag}${l}`);
  const byLabel = (l: string) => `/dev/disk/by-label/${l}`;
  let d: RunningDaemon | undefined;
  let loop = '';

  before(async () => {
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * 1024 * 1024);
    await run('mkfs.ext4', ['-q', '-F', '-L', labels[0] ?? '', image]);
    d = await startDaemon();
    loop = (await run('losetup', ['--find', '--show', image])).stdout.trim();
  });

  after(async () => {
    if (loop !== '') await run('losetup', ['-d', loop], { allowFail: true });
    const code = await d?.stop();
    for (const l of labels) {
      try {
        if (fs.lstatSync(byLabel(l)).isSymbolicLink()) fs.unlinkSync(byLabel(l));
      } catch {
        // not there
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
    assert.equal(code, 0);
  });

  test('attached: by-label/A exists and the node is watched (both /run/udev/watch links)', async () => {
    const name = path.basename(loop);
    assert.ok(await pollUntil(() => linkTarget(byLabel(labels[0] ?? '')) === `../../${name}`), 'by-label/A');
    const minor = fs.statSync(loop).rdev & 0xff;
    const major = (fs.statSync(loop).rdev >> 8) & 0xfff;
    const id = `b${major}:${minor}`;
    const watchDir = path.join(d?.dir ?? '', 'udev', 'watch');
    assert.ok(await pollUntil(() => linkTarget(path.join(watchDir, id)) !== undefined), `watch/${id}`);
    const wd = linkTarget(path.join(watchDir, id)) ?? '';
    assert.match(wd, /^\d+$/);
    assert.equal(linkTarget(path.join(watchDir, wd)), id);
  });

  test('mkfs.ext4 -L B: by-label/B appears and A goes, with no trigger', async (t: TestContext) => {
    const name = path.basename(loop);
    const latencies: number[] = [];
    let rewrites = 0;
    for (let i = 1; i < labels.length; i++) {
      const [previous, next] = [labels[i - 1] ?? '', labels[i] ?? ''];
      const closedAt = await mkfs(next, loop);
      const appeared = (): boolean => linkTarget(byLabel(next)) === `../../${name}`;
      if (await pollUntil(appeared, 5_000)) latencies.push(performance.now() - closedAt);
      else {
        // A close that lands while an event of this device runs (another test file triggering
        // block devices) is ignored, as udevd ignores it: write the node once more.
        rewrites++;
        await mkfs(next, loop);
        assert.ok(await pollUntil(appeared), `by-label/${next} appeared`);
      }
      assert.ok(
        await pollUntil(() => linkTarget(byLabel(previous)) === undefined),
        `by-label/${previous} went`,
      );
    }
    t.diagnostic(`mkfs exit → new by-label link (ms): ${latencies.map((ms) => ms.toFixed(1)).join(', ')}`);
    if (rewrites > 0)
      t.diagnostic(`mkfs run again ${rewrites} time(s): its first close came during an event`);
    const synthesized = d?.logs.filter(
      (l) => l.msg === 'device node closed after writing: synthesized change',
    );
    // Other test files may trigger block devices meanwhile (node --test runs files at once), and a
    // close that lands while the device's own event runs is ignored, as udevd does: at least one
    // of the re-probes must have been triggerd's own.
    assert.ok((synthesized?.length ?? 0) >= 1, 'triggerd synthesized the change itself');
  });
});
