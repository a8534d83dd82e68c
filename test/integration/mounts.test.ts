// Mount units on the real kernel, through a private daemon: an ext4 image on a loop device
// mounted by a .mount unit and unmounted on stop; the device going away unmounts it (BindsTo=);
// a mount made by hand shows up as an active unit and `umount` makes it inactive; hotplug
// mounting through WantedBy= on a by-label device unit; and units that cannot mount (unknown
// file system type, missing device, corrupted image, a mount point that is a file) or unmount
// (busy) fail with mount's own words in `status`, nothing left half-mounted. Mounts and unmounts
// run inside the daemon through libmount where they can; a unit without Type= runs mount(8) (the
// fallback), and says which in its log. Every mount, loop device and directory made here is
// removed in after(), whatever happened.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { ControlClient } from '../../src/control/client';
import { skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';
import { unitNameFromPath } from '../../src/units/unit-name';

const has = (cmd: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const skip =
  skipUnlessRoot() ??
  (addonCandidates('triggerd_mounts.node').some((f) => fs.existsSync(f))
    ? undefined
    : 'needs the triggerd_mounts addon') ??
  (['losetup', 'mkfs.ext4', 'mount', 'umount'].every(has)
    ? undefined
    : 'needs losetup, mkfs.ext4, mount and umount');

interface Status {
  name: string;
  active: string;
  sub: string;
  properties: Record<string, unknown>;
  statusLines: string[];
}

function sh(cmd: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function mountedAt(p: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p.replace(/ /g, '\\040'));
}

describe('mount units on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-mounts-'));
  const units = path.join(dir, 'units');
  const loops: string[] = [];
  const label = `TRGM${process.pid % 100000}`;
  let d: RunningDaemon | undefined;
  let client: ControlClient;
  let holder: ChildProcess | undefined;
  const unit = (where: string, body: string, extra = ''): string => {
    const name = unitNameFromPath(where, 'mount');
    fs.writeFileSync(path.join(units, name), `${extra}[Mount]\nWhere=${where}\n${body}`);
    return name;
  };
  const status = (name: string) => client.request('unit-status', { name, lines: 20 }) as Promise<Status>;
  const job = async (type: 'start' | 'stop', name: string): Promise<string> => {
    try {
      await client.request(type, { names: [name] });
      return 'done';
    } catch (err) {
      return (err as Error).message;
    }
  };
  const image = (name: string, lbl: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 4 * 1024 * 1024);
    const r = sh('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-L', lbl, f]);
    assert.equal(r.code, 0, r.out);
    return f;
  };
  const attach = (file: string): string => {
    const r = sh('losetup', ['--find', '--show', file]);
    assert.equal(r.code, 0, r.out);
    const dev = r.out.trim();
    loops.push(dev);
    return dev;
  };
  const m = (n: string): string => path.join(dir, n);

  // Names filled in before(): the ext4 unit, the hotplug unit, the loop devices.
  let ext4Dev = '';
  let ext4Unit = '';
  let hotUnit = '';

  before(async () => {
    fs.mkdirSync(units);
    ext4Dev = attach(image('a.ext4', `${label}A`));
    fs.writeFileSync(path.join(dir, 'seen-a'), '');
    ext4Unit = unit(m('ext4'), `What=${ext4Dev}\nType=ext4\n`);
    // util-linux checks the source before the kernel sees the type: an existing file it is then.
    unit(m('badtype'), `What=${m('seen-a')}\nType=nosuchfs\n`);
    unit(m('missing'), `What=${m('no-such.img')}\nType=ext4\nOptions=loop\n`);
    fs.writeFileSync(m('garbage.img'), Buffer.alloc(1024 * 1024, 0x5a));
    unit(m('corrupt'), `What=${m('garbage.img')}\nType=ext4\nOptions=loop\n`);
    fs.writeFileSync(m('afile'), 'not a directory\n');
    unit(m('afile'), 'What=tmpfs\nType=tmpfs\n');
    unit(m('busy'), 'What=tmpfs\nType=tmpfs\nOptions=size=1m\n');
    // No Type=: mount(8) probes (the fallback path); an image and a garbage file.
    unit(m('probe'), `What=${image('p.ext4', `${label}P`)}\nOptions=loop\n`);
    unit(m('probebad'), `What=${m('garbage.img')}\nOptions=loop\n`);
    // Hotplug: mounted when the by-label device appears.
    const link = `/dev/disk/by-label/${label}H`;
    const dev = unitNameFromPath(link, 'device');
    hotUnit = unit(m('hot'), `What=${link}\nType=ext4\n`, `[Install]\nWantedBy=${dev}\n`);
    fs.mkdirSync(path.join(units, `${dev}.wants`));
    fs.symlinkSync(path.join(units, hotUnit), path.join(units, `${dev}.wants`, hotUnit));
    d = await startDaemon([
      '--unit-path',
      units,
      '--fstab',
      '',
      '--shutdown-timeout',
      '5',
      '--log-level',
      'info',
    ]);
    client = await d.client();
    // Mounts run as mount(8) until libmount is loaded (on the threadpool, at start).
    await d.waitForLog((l) => /^libmount .* loaded/.test(String(l.msg)), 10_000);
  });

  after(async () => {
    holder?.kill('SIGKILL');
    await d?.stop();
    // Whatever is still mounted below dir, deepest first; then our loop devices; then the files.
    const points = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p): p is string => p !== undefined && p.startsWith(dir))
      .sort((a, b) => b.length - a.length);
    for (const p of points) sh('umount', ['-l', p.replace(/\\040/g, ' ')]);
    for (const l of loops) sh('losetup', ['-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const logOf = (name: string, re: RegExp): Record<string, unknown> | undefined =>
    d?.logs.find((l) => l.unit === name && re.test(String(l.msg)));

  test('an ext4 image on a loop device: mounted by its unit, unmounted on stop', async () => {
    assert.equal(await job('start', ext4Unit), 'done');
    // Inside the daemon (libmount), not a mount(8) process.
    assert.ok(logOf(ext4Unit, /^libmount in the daemon: mount /), 'mounted through libmount');
    assert.ok(mountedAt(m('ext4')));
    const s = await status(ext4Unit);
    assert.equal(s.active, 'active');
    assert.equal(s.sub, 'mounted');
    assert.equal(s.properties.What, ext4Dev);
    assert.equal(s.properties.Type, 'ext4');
    assert.ok(fs.existsSync(path.join(m('ext4'), 'lost+found')));
    // The implicit dependency on the backing device.
    const list = (await client.request('list-units', {})) as { name: string }[];
    assert.ok(list.some((u) => u.name === ext4Unit));
    assert.equal(await job('stop', ext4Unit), 'done');
    assert.ok(!mountedAt(m('ext4')));
    assert.equal((await status(ext4Unit)).sub, 'dead');
    assert.ok(logOf(ext4Unit, /^libmount in the daemon: umount /), 'unmounted through libmount');
  });

  test('no Type=: mount(8) runs as the control process (the fallback); the umount runs in the daemon', async () => {
    const name = unitNameFromPath(m('probe'), 'mount');
    assert.equal(await job('start', name), 'done');
    assert.ok(mountedAt(m('probe')));
    const s = await status(name);
    assert.equal(s.sub, 'mounted');
    assert.match(String(s.properties.Options), /^rw/);
    const run = logOf(name, /^\/bin\/mount /);
    assert.ok(run !== undefined && typeof run.pid === 'number', 'mount(8) ran with a pid');
    assert.equal(logOf(name, /^libmount in the daemon: mount /), undefined);
    assert.equal(await job('stop', name), 'done');
    assert.ok(!mountedAt(m('probe')));
    // The kernel says ext4: nothing needs a helper to unmount it.
    assert.ok(logOf(name, /^libmount in the daemon: umount /));
  });

  test("no Type= and a corrupt image: mount(8)'s own words in status", async () => {
    const name = unitNameFromPath(m('probebad'), 'mount');
    assert.match(await job('start', name), /failed/);
    const s = await status(name);
    assert.equal(s.active, 'failed');
    assert.equal(s.properties.Result, 'exit-code');
    assert.match(String(s.properties.LastError), /wrong fs type|bad superblock|can't read superblock/);
    assert.ok(logOf(name, /^\/bin\/mount /));
    assert.ok(!mountedAt(m('probebad')));
  });

  test('the device going away unmounts it (BindsTo=)', async () => {
    assert.equal(await job('start', ext4Unit), 'done');
    assert.ok(mountedAt(m('ext4')));
    // The kernel keeps a mounted loop device until the last user goes (autoclear), so the
    // removal is announced as udev would see an unplug: a remove uevent for the device.
    fs.writeFileSync(`/sys/block/${path.basename(ext4Dev)}/uevent`, 'remove');
    await waitFor(
      'the unit to be unmounted',
      async () => ((await status(ext4Unit)).sub === 'dead' ? true : undefined),
      10_000,
    );
    assert.ok(!mountedAt(m('ext4')));
    fs.writeFileSync(`/sys/block/${path.basename(ext4Dev)}/uevent`, 'add');
  });

  test('a mount made by hand is an active unit; umount by hand makes it inactive', async () => {
    const p = m('hand');
    fs.mkdirSync(p);
    assert.equal(sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', p]).code, 0);
    const name = unitNameFromPath(p, 'mount');
    try {
      const s = await waitFor('the hand-made mount unit', async () => {
        try {
          const st = await status(name);
          return st.active === 'active' ? st : undefined;
        } catch {
          return undefined;
        }
      });
      assert.equal(s.sub, 'mounted');
      assert.equal(s.properties.Type, 'tmpfs');
      assert.equal(s.properties.FromFile, false);
    } finally {
      sh('umount', [p]);
    }
    await waitFor('inactive', async () => ((await status(name)).active === 'inactive' ? true : undefined));
  });

  test('hotplug: the by-label device appearing starts the unit that it wants', async () => {
    const dev = attach(image('h.ext4', `${label}H`));
    await waitFor(
      'the hotplug mount',
      async () => ((await status(hotUnit)).sub === 'mounted' ? true : undefined),
      15_000,
    );
    assert.ok(mountedAt(m('hot')));
    assert.equal(await job('stop', hotUnit), 'done');
    assert.equal(sh('losetup', ['-d', dev]).code, 0);
  });

  const failures: [string, string, RegExp][] = [
    ['unknown file system type', 'badtype', /unknown filesystem type|not a block device/],
    ['missing device', 'missing', /does not exist|No such file|failed to setup loop device/],
    ['corrupted image', 'corrupt', /wrong fs type|bad superblock|can't read superblock/],
    ['a mount point that is a file', 'afile', /not a directory/],
  ];
  for (const [what, dirName, reason] of failures) {
    test(`${what}: the unit fails with libmount's reason (as mount(8) words it), nothing mounted`, async () => {
      const name = unitNameFromPath(m(dirName), 'mount');
      const r = await job('start', name);
      assert.match(r, /failed/);
      const s = await status(name);
      assert.equal(s.active, 'failed');
      assert.equal(s.properties.Result, 'exit-code');
      assert.match(String(s.properties.LastError), reason);
      assert.ok(
        s.statusLines.some((l) => /Error: mount exit-code/.test(l)),
        s.statusLines.join('\n'),
      );
      assert.ok(!mountedAt(m(dirName)));
      assert.ok(logOf(name, /^libmount in the daemon: mount /));
      assert.match(String(s.properties.LastError), new RegExp(`^mount: ${m(dirName)}: `));
    });
  }

  test("busy unmount: the stop job fails with umount's words, the mount stays; then it goes", async () => {
    const name = unitNameFromPath(m('busy'), 'mount');
    assert.equal(await job('start', name), 'done');
    holder = spawn('sleep', ['60'], { cwd: m('busy'), stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    const r = await job('stop', name);
    assert.match(r, /failed/);
    const s = await status(name);
    assert.equal(s.sub, 'mounted');
    assert.match(String(s.properties.LastError), /busy/);
    assert.ok(mountedAt(m('busy')));
    holder.kill('SIGKILL');
    await new Promise((res) => holder?.once('exit', res));
    assert.equal(await job('stop', name), 'done');
    assert.ok(!mountedAt(m('busy')));
  });
});
