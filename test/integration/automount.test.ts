// Automount on access on the real kernel, through a private daemon: `ls` in a subprocess (its own
// session, so the kernel does not take it for the daemon) triggers the mount of an ext4 image and
// lists its files; after TimeoutIdleSec=2 it is unmounted; a corrupt image makes `ls` fail with an
// error instead of hanging, and at once during the back-off; daemon-reload keeps the autofs mount;
// SIGTERM leaves no autofs mount behind; a daemon killed with SIGKILL leaves nobody hanging. The
// mount unit mounts inside the daemon (libmount) and stays dead while only the autofs trap is
// there; the expire is its stop job, also inside the daemon.
// Cleanup lazily unmounts every mount under the test directory, even after a failure.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';
import { unitNameFromPath } from '../../src/units/unit-name';

const skip =
  skipUnlessRoot() ??
  (addonCandidates('triggerd_autofs.node').some((f) => fs.existsSync(f))
    ? undefined
    : 'needs the triggerd_autofs addon (npm install builds it)') ??
  (fs.existsSync('/dev/autofs') ? undefined : 'needs /dev/autofs (the autofs4 module)') ??
  (spawnSync('mkfs.ext4', ['-V'], { stdio: 'ignore' }).status === 0
    ? undefined
    : 'needs mkfs.ext4 (e2fsprogs)');

/** Mount points at or below `dir` in /proc/self/mountinfo, with their fs type. */
function mountsUnder(dir: string): { point: string; type: string }[] {
  const out: { point: string; type: string }[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'latin1').split('\n')) {
    const f = line.split(' ');
    const point = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) =>
      String.fromCharCode(parseInt(o, 8)),
    );
    const dash = f.indexOf('-');
    if (point === dir || point.startsWith(`${dir}/`)) out.push({ point, type: f[dash + 1] ?? '' });
  }
  return out;
}

/** Lazily unmount everything under `dir`, deepest first (autofs mounts never block an unmount). */
function unmountAllUnder(dir: string): void {
  for (let i = 0; i < 32; i++) {
    const m = mountsUnder(dir);
    if (m.length === 0) return;
    m.sort((a, b) => b.point.length - a.point.length);
    spawnSync('umount', ['-l', m[0]!.point], { stdio: 'ignore' });
  }
}

/** `ls` in its own session with a deadline: a hang is a failure, not a stuck test run. */
function lsAccess(
  dir: string,
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number; hung: boolean }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn('ls', ['-1', dir], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      hung = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0, hung });
    });
  });
}

describe('automount on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-automount-'));
  const units = path.join(dir, 'units');
  const good = path.join(dir, 'auto');
  const bad = path.join(dir, 'bad');
  const goodImage = path.join(dir, 'good.img');
  const badImage = path.join(dir, 'bad.img');
  const goodUnit = unitNameFromPath(good, 'automount');
  const badUnit = unitNameFromPath(bad, 'automount');
  const goodMount = unitNameFromPath(good, 'mount');
  const logOf = (re: RegExp): Record<string, unknown> | undefined =>
    d.logs.find((l) => l.unit === goodMount && re.test(String(l.msg)));
  const daemons: RunningDaemon[] = [];
  let d: RunningDaemon;
  const ctl = (daemon: RunningDaemon, ...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', daemon.socket, ...args], { allowFail: true });

  const writeUnits = (where: string, image: string, idle: string): void => {
    fs.writeFileSync(
      path.join(units, unitNameFromPath(where, 'mount')),
      `[Unit]\nDescription=test image at ${where}\n[Mount]\nWhat=${image}\nWhere=${where}\nType=ext4\nOptions=loop,ro\n`,
    );
    fs.writeFileSync(
      path.join(units, unitNameFromPath(where, 'automount')),
      `[Unit]\nDescription=automount ${where}\n[Automount]\nWhere=${where}\nTimeoutIdleSec=${idle}\n[X-Triggerd]\nFailBackoffSec=3\n`,
    );
  };

  before(async () => {
    fs.mkdirSync(units);
    const content = path.join(dir, 'content');
    fs.mkdirSync(content);
    fs.writeFileSync(path.join(content, 'hello.txt'), 'hello from the image\n');
    fs.writeFileSync(path.join(content, 'second-file'), 'x');
    const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-d', content, goodImage, '8M'], { encoding: 'utf8' });
    assert.equal(mk.status, 0, mk.stderr);
    // A corrupt image: no file system at all.
    fs.writeFileSync(badImage, Buffer.alloc(4 * 1024 * 1024));
    writeUnits(good, goodImage, '2');
    writeUnits(bad, badImage, '0');
    d = await startDaemon(['--unit-path', units]);
    daemons.push(d);
    // Mounts run through libmount once it is loaded (on the threadpool, at start).
    await d.waitForLog((l) => /^libmount .* loaded/.test(String(l.msg)), 10_000);
  });

  after(async () => {
    for (const daemon of daemons) {
      try {
        await daemon.stop();
      } catch {
        // already gone
      }
    }
    unmountAllUnder(dir);
    // Loop devices of our images (autoclear detaches them once unmounted; this catches the rest).
    const loops = spawnSync('losetup', ['-j', goodImage], { encoding: 'utf8' }).stdout ?? '';
    for (const l of loops.split('\n')) {
      const dev = l.split(':')[0];
      if (dev !== undefined && dev.startsWith('/dev/loop'))
        spawnSync('losetup', ['-d', dev], { stdio: 'ignore' });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('starting the automount puts an autofs mount at Where=, nothing more', async () => {
    const r = await ctl(d, 'start', goodUnit);
    assert.equal(r.code, 0, r.stderr);
    const m = mountsUnder(good);
    assert.deepEqual(
      m.map((x) => x.type),
      ['autofs'],
    );
    // The trap is the automount's, not a mount of the mount unit.
    const st = await ctl(d, 'is-active', goodMount);
    assert.equal(st.stdout.trim(), 'inactive');
  });

  test('ls in a subprocess triggers the mount and lists the image files', async () => {
    const r = await lsAccess(good);
    assert.equal(r.hung, false, 'ls hung');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean).sort(), ['hello.txt', 'lost+found', 'second-file']);
    assert.deepEqual(
      mountsUnder(good).map((x) => x.type),
      ['autofs', 'ext4'],
    );
    // The log names who triggered it.
    await d.waitForLog((l) => typeof l.msg === 'string' && /pid \d+ \(ls\) accessed/.test(l.msg));
    // The mount unit's start job mounted it, inside the daemon.
    assert.ok(logOf(/^libmount in the daemon: mount /), 'mounted through libmount');
    assert.equal((await ctl(d, 'is-active', goodMount)).stdout.trim(), 'active');
    const again = await lsAccess(good);
    assert.equal(again.code, 0);
  });

  test('after TimeoutIdleSec=2 the mount is expired and unmounted; the next access mounts again', async () => {
    await waitFor(
      'the idle mount to expire',
      () => (mountsUnder(good).some((m) => m.type === 'ext4') ? undefined : true),
      15_000,
    );
    assert.deepEqual(
      mountsUnder(good).map((x) => x.type),
      ['autofs'],
    );
    // The mount unit's stop job unmounted it, inside the daemon (an umount(8) in a session of its
    // own would have waited on the expire that waits for it).
    assert.ok(logOf(/^libmount in the daemon: umount /), 'unmounted through libmount');
    assert.equal((await ctl(d, 'is-active', goodMount)).stdout.trim(), 'inactive');
    const r = await lsAccess(good);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello\.txt/);
  });

  test('a corrupt image: ls fails with an error instead of hanging, and at once during the back-off', async () => {
    const s = await ctl(d, 'start', badUnit);
    assert.equal(s.code, 0, s.stderr);
    const first = await lsAccess(bad);
    assert.equal(first.hung, false, 'ls hung on a failing mount');
    assert.notEqual(first.code, 0);
    assert.match(first.stderr, /No such device/);
    const second = await lsAccess(bad);
    assert.equal(second.hung, false);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /Host is down/);
    assert.ok(second.ms < 1000, `refused within the back-off, took ${second.ms} ms`);
    const st = await ctl(d, 'status', badUnit);
    assert.match(st.stdout, /Last failure: .*mount/);
    // In mount's own words.
    assert.match(st.stdout, /Last failure: .*wrong fs type, bad option, bad superblock/);
  });

  test('daemon-reload keeps the autofs mount and its pipe', async () => {
    const r = await ctl(d, 'daemon-reload');
    assert.equal(r.code, 0, r.stderr);
    const ls = await lsAccess(good);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /second-file/);
  });

  test('SIGTERM: the daemon leaves no autofs mount behind', async () => {
    await d.stop();
    assert.deepEqual(mountsUnder(good), []);
    assert.deepEqual(mountsUnder(bad), []);
    const r = await lsAccess(good, 5000);
    assert.equal(r.hung, false);
  });

  test('SIGKILL: accessors do not hang on the orphaned autofs mount', async () => {
    const k = await startDaemon(['--unit-path', units]);
    daemons.push(k);
    const r = await ctl(k, 'start', goodUnit);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      mountsUnder(good).map((x) => x.type),
      ['autofs'],
    );
    process.kill(k.pid, 'SIGKILL');
    await k.exited;
    const ls = await lsAccess(good, 5000);
    assert.equal(ls.hung, false, 'ls hung on the autofs mount of a dead daemon');
    assert.notEqual(ls.code, 0);
    unmountAllUnder(good);
  });
});
