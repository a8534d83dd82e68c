// The udev-compatible device manager on the real kernel: a loop device holding a labelled ext4
// image gets its /dev/disk links from the default rules, the real `udevadm info` reads what
// triggerd wrote, `udevadm monitor --udev` receives the rebroadcast, detach removes the links;
// a broken rule line costs only that line; a hanging or flooding PROGRAM cannot stall events.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  REPO_ROOT,
  TRIGGERCTL,
  run,
  skipUnlessRoot,
  startDaemon,
  waitFor,
  type RunningDaemon,
} from '../helpers/daemon';

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
  (fs.existsSync('/usr/bin/udevadm') || fs.existsSync('/bin/udevadm')
    ? undefined
    : 'needs udevadm (package udev; .ci/run installs it)') ??
  (udevdRunning() ? 'a udevd runs here; this test writes /run/udev as udevd would' : undefined);

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

describe('rules, links, database and rebroadcast on a real loop device', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-rules-'));
  const uuid = randomUUID();
  const label = `tdr${process.pid % 100000}`;
  const image = path.join(work, 'ext4.img');
  let backup: string | undefined;
  let d: RunningDaemon;
  let loop = '';
  let monitor: ChildProcess | undefined;
  let monitorOut = '';
  const ctl = (...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });

  before(async () => {
    // triggerd writes the database where libudev (udevadm) reads it; anything there is kept aside.
    if (fs.existsSync('/run/udev')) {
      backup = `/run/udev.triggerd-test-${process.pid}`;
      fs.renameSync('/run/udev', backup);
    }
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * 1024 * 1024);
    await run('mkfs.ext4', ['-q', '-F', '-L', label, '-U', uuid, image]);
    d = await startDaemon(['--udev-run-dir', '/run/udev', '--program-timeout', '1']);
    monitor = spawn('udevadm', ['monitor', '--udev', '--property', '--subsystem-match=block'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    monitor.stdout?.on('data', (c: Buffer) => (monitorOut += c.toString()));
    await waitFor('udevadm monitor started', () =>
      monitorOut.includes('UDEV - the event') ? true : undefined,
    );
  });

  after(async () => {
    if (monitor?.pid !== undefined) process.kill(monitor.pid, 'SIGTERM');
    if (loop !== '') await run('losetup', ['-d', loop], { allowFail: true });
    assert.equal(await d?.stop(), 0);
    fs.rmSync('/run/udev', { recursive: true, force: true });
    if (backup !== undefined) fs.renameSync(backup, '/run/udev');
    for (const l of [`/dev/disk/by-uuid/${uuid}`, `/dev/disk/by-label/${label}`]) {
      if (lstat(l)?.isSymbolicLink()) fs.unlinkSync(l);
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  test("attach: by-uuid and by-label links, udevadm info and monitor see triggerd's results", async () => {
    loop = (await run('losetup', ['--find', '--show', image])).stdout.trim();
    const name = path.basename(loop);
    assert.equal((await ctl('settle', '--timeout', '30')).code, 0);
    await waitFor('by-uuid link', () =>
      lstat(`/dev/disk/by-uuid/${uuid}`)?.isSymbolicLink() ? true : undefined,
    );
    assert.equal(fs.readlinkSync(`/dev/disk/by-uuid/${uuid}`), `../../${name}`);
    assert.equal(fs.readlinkSync(`/dev/disk/by-label/${label}`), `../../${name}`);

    const props = (await run('udevadm', ['info', '--query=property', `--name=${loop}`])).stdout;
    assert.match(props, new RegExp(`^ID_FS_UUID=${uuid}$`, 'm'));
    assert.match(props, new RegExp(`^ID_FS_LABEL=${label}$`, 'm'));
    assert.match(props, /^ID_FS_TYPE=ext4$/m);
    const links = (await run('udevadm', ['info', '--query=symlink', `--name=${loop}`])).stdout;
    assert.ok(links.includes(`disk/by-uuid/${uuid}`), links);
    assert.ok(links.includes(`disk/by-label/${label}`), links);

    await waitFor('udevadm monitor got the processed event', () =>
      monitorOut.includes(`/devices/virtual/block/${name} (block)`) &&
      monitorOut.includes(`ID_FS_UUID=${uuid}`)
        ? true
        : undefined,
    );

    const info = (await ctl('device-info', loop)).stdout;
    assert.ok(info.includes(`S: disk/by-uuid/${uuid}`), info);
    const units = JSON.parse((await ctl('--json', 'list-units')).stdout) as { name: string; sub: string }[];
    const unitName = `dev-disk-by\\x2duuid-${uuid.replace(/-/g, '\\x2d')}.device`;
    assert.equal(units.find((u) => u.name === unitName)?.sub, 'plugged', 'the link is a device unit alias');
  });

  test('detach: the links go', async () => {
    assert.notEqual(loop, '');
    await run('losetup', ['-d', loop]);
    loop = '';
    assert.equal((await ctl('settle', '--timeout', '30')).code, 0);
    await waitFor('links removed', () =>
      lstat(`/dev/disk/by-uuid/${uuid}`) === undefined && lstat(`/dev/disk/by-label/${label}`) === undefined
        ? true
        : undefined,
    );
  });
});

describe('bad rules and bad programs', { skip: skipUnlessRoot() }, () => {
  const rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-badrules-'));
  let d: RunningDaemon;

  before(async () => {
    for (const f of fs.readdirSync(path.join(REPO_ROOT, 'rules')))
      fs.copyFileSync(path.join(REPO_ROOT, 'rules', f), path.join(rulesDir, f));
    fs.writeFileSync(
      path.join(rulesDir, '70-broken.rules'),
      [
        'SUBSYSTEM=="mem", KERNEL=="null", ENV{TD_BEFORE}="1"',
        'SUBSYSTEM=="mem", NOSUCHKEY=="x", ENV{TD_BROKEN}="1"',
        'SUBSYSTEM=="mem", KERNEL=="null", ENV{TD_AFTER}="1"',
        // A program that hangs, one that floods its output, one that fails: none may stall events.
        'SUBSYSTEM=="mem", KERNEL=="zero", PROGRAM="/bin/sleep 60", RESULT=="never", ENV{TD_HUNG}="1"',
        `SUBSYSTEM=="mem", KERNEL=="zero", PROGRAM="/bin/sh -c 'head -c 10000000 /dev/zero | tr \\\\\\\\000 x'", ENV{TD_FLOOD}="$result"`,
        'SUBSYSTEM=="mem", KERNEL=="zero", PROGRAM="/bin/false", ENV{TD_FALSE}="1"',
        'SUBSYSTEM=="mem", KERNEL=="zero", ENV{TD_ZERO_DONE}="1"',
        '',
      ].join('\n'),
    );
    d = await startDaemon(['--rules-path', rulesDir, '--program-timeout', '1']);
  });
  after(async () => {
    assert.equal(await d?.stop(), 0);
    fs.rmSync(rulesDir, { recursive: true, force: true });
  });

  test('a broken line reports file:line:column and is dropped; the rest of the file applies', async () => {
    const logged = await d.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.includes('70-broken.rules:2:'),
    );
    assert.match(String(logged.msg), /70-broken\.rules:2:\d+: unknown key 'NOSUCHKEY'/);
    const info = (await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'device-info', '/dev/null']))
      .stdout;
    assert.match(info, /^E: TD_BEFORE=1$/m);
    assert.match(info, /^E: TD_AFTER=1$/m);
    assert.doesNotMatch(info, /TD_BROKEN/);
  });

  test('hanging, flooding and failing programs are cut off by the timeout and the cap', async (t) => {
    const t0 = Date.now();
    const r = await run(process.execPath, [
      TRIGGERCTL,
      '--socket',
      d.socket,
      '--json',
      'test-rules',
      '/sys/devices/virtual/mem/zero',
    ]);
    const elapsed = Date.now() - t0;
    const result = JSON.parse(r.stdout) as { properties: Record<string, string> };
    assert.equal(result.properties.TD_HUNG, undefined);
    assert.equal(result.properties.TD_FALSE, undefined);
    assert.equal(result.properties.TD_ZERO_DONE, '1');
    assert.ok((result.properties.TD_FLOOD ?? '').length <= 16 * 1024, 'PROGRAM output is capped');
    t.diagnostic(
      `test-rules with a hanging, a flooding and a failing PROGRAM took ${elapsed} ms (timeout 1 s)`,
    );
    // Events keep flowing meanwhile.
    assert.equal(
      (await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'settle', '--timeout', '30'])).code,
      0,
    );
  });

  test("verify-rules reports the broken line and fails; the project's rules verify clean", async () => {
    const bad = await run(
      process.execPath,
      [TRIGGERCTL, 'verify-rules', path.join(rulesDir, '70-broken.rules')],
      { allowFail: true },
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /70-broken\.rules:2:\d+: error: unknown key 'NOSUCHKEY'/);
    const files = fs.readdirSync(path.join(REPO_ROOT, 'rules')).map((f) => path.join(REPO_ROOT, 'rules', f));
    const good = await run(process.execPath, [TRIGGERCTL, 'verify-rules', ...files], { allowFail: true });
    assert.equal(good.code, 0, good.stderr);
  });
});

test(
  'programs the rules run during coldplug are reaped at once (no wait for their timeout)',
  { skip: skipUnlessRoot() },
  async (t) => {
    const rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-coldrules-'));
    fs.writeFileSync(
      path.join(rulesDir, '50-program.rules'),
      'SUBSYSTEM=="mem", KERNEL=="null", PROGRAM="/bin/echo hi", RESULT=="hi", ENV{TD_PROGRAM}="ran"\n',
    );
    // A 60 s program timeout: if exits went unreaped until then, the daemon would not be ready in
    // startDaemon's 15 s and this test fails.
    const d = await startDaemon(['--rules-path', rulesDir, '--program-timeout', '60']);
    t.after(async () => {
      assert.equal(await d.stop(), 0);
      fs.rmSync(rulesDir, { recursive: true, force: true });
    });
    const info = (await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'device-info', '/dev/null']))
      .stdout;
    assert.match(info, /^E: TD_PROGRAM=ran$/m);
  },
);
