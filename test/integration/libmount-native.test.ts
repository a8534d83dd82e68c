// triggerd_libmount on the real kernel: an ext4 image mounted through a loop device by libmount
// on the threadpool (and the loop device gone again after the unmount: autoclear), and the
// failures mount(8) would report, in libmount's own words (unknown type, corrupt image, missing
// image, not mounted, busy); abuse (wrong arguments) throws TypeErrors before anything runs.
// Everything is made under a temp dir; every mount and loop device made here is undone in after().
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { addonCandidates } from '../../src/native/addon';
import { loadNativeLibmount, type NativeLibmount } from '../../src/native/libmount-addon';
import { resultOf } from '../../src/mounts/in-process-mount';
import { loopExt4Unavailable } from '../helpers/loop-ext4';

const built = addonCandidates('triggerd_libmount.node').some((f) => fs.existsSync(f));
const skip = built ? loopExt4Unavailable() : 'needs the triggerd_libmount addon (npm install builds it)';

function mountedAt(p: string): string | undefined {
  const line = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === p);
  return line?.split(' - ')[1]?.split(' ')[0];
}

/** Loop devices backed by `file` (losetup -j). */
function loopsOf(file: string): string[] {
  const r = spawnSync('losetup', ['-j', file], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(':')[0] ?? '');
}

describe('triggerd_libmount on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-libmount-'));
  const image = path.join(dir, 'fs.ext4');
  const garbage = path.join(dir, 'garbage.img');
  const mnt = path.join(dir, 'mnt');
  let native: NativeLibmount;
  const request = (over: Partial<Parameters<NativeLibmount['mount']>[0]> = {}) => ({
    source: image,
    target: mnt,
    fstype: 'ext4',
    options: 'loop',
    sloppy: false,
    readWriteOnly: false,
    ...over,
  });

  before(async () => {
    fs.mkdirSync(mnt);
    fs.mkdirSync(path.join(dir, 'content'));
    fs.writeFileSync(path.join(dir, 'content', 'hello.txt'), 'hello\n');
    const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-d', path.join(dir, 'content'), image, '8M'], {
      encoding: 'utf8',
    });
    assert.equal(mk.status, 0, mk.stderr);
    fs.writeFileSync(garbage, Buffer.alloc(1024 * 1024, 0x5a));
    native = loadNativeLibmount();
    const info = await native.load();
    assert.equal(info.available, true, info.error);
  });

  after(() => {
    for (let i = 0; i < 8 && mountedAt(mnt) !== undefined; i++) spawnSync('umount', ['-l', mnt]);
    for (const f of [image, garbage]) for (const l of loopsOf(f)) spawnSync('losetup', ['-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('load() and libraryInfo() name the library version', async () => {
    const info = await native.load();
    assert.match(info.version ?? '', /^2\.\d+/);
    assert.deepEqual(native.libraryInfo(), info);
  });

  test('an ext4 image: loop device set up, mounted read-write, listed; unmounted, loop device gone', async () => {
    const r = await native.mount(request());
    assert.deepEqual(r, { rc: 0, exitCode: 0, message: '', syscallCalled: true, syscallErrno: 0 });
    assert.equal(mountedAt(mnt), 'ext4');
    assert.ok(fs.readdirSync(mnt).includes('hello.txt'));
    assert.equal(loopsOf(image).length, 1);
    const u = await native.umount({ target: mnt, lazy: false, force: false });
    assert.equal(u.exitCode, 0, u.message);
    assert.equal(mountedAt(mnt), undefined);
    // libmount sets LO_FLAGS_AUTOCLEAR: the loop device goes with the last unmount.
    for (let i = 0; i < 50 && loopsOf(image).length > 0; i++) await new Promise((r2) => setTimeout(r2, 20));
    assert.deepEqual(loopsOf(image), []);
  });

  test('read-only, and the options mount(8) takes (ro,noexec)', async () => {
    const r = await native.mount(request({ options: 'loop,ro,noexec' }));
    assert.equal(r.exitCode, 0, r.message);
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === mnt);
    assert.match(line ?? '', / ro,noexec/);
    assert.equal((await native.umount({ target: mnt, lazy: true, force: false })).exitCode, 0);
  });

  test('unknown file system type: exit 32 and "unknown filesystem type", nothing mounted', async () => {
    const r = await native.mount(request({ fstype: 'nosuchfs' }));
    assert.equal(r.exitCode, 32);
    assert.match(r.message, /unknown filesystem type 'nosuchfs'/);
    assert.equal(mountedAt(mnt), undefined);
    // As mount(8) prints it.
    assert.deepEqual(resultOf('mount', mnt, r).lines, [
      `mount: ${mnt}: unknown filesystem type 'nosuchfs'.`,
      '       dmesg(1) may have more information after failed mount system call.',
    ]);
  });

  test('a corrupt image: "wrong fs type, bad option, bad superblock", the loop device released', async () => {
    const r = await native.mount(request({ source: garbage }));
    assert.equal(r.exitCode, 32);
    assert.match(r.message, /wrong fs type, bad option, bad superblock on \/dev\/loop\d+/);
    assert.equal(r.syscallCalled, true);
    assert.equal(r.syscallErrno, 22);
    assert.equal(mountedAt(mnt), undefined);
    for (let i = 0; i < 50 && loopsOf(garbage).length > 0; i++) await new Promise((r2) => setTimeout(r2, 20));
    assert.deepEqual(loopsOf(garbage), []);
  });

  test('a missing image: "failed to setup loop device", no mount syscall', async () => {
    const r = await native.mount(request({ source: path.join(dir, 'no-such.img') }));
    assert.equal(r.exitCode, 32);
    assert.match(r.message, /failed to setup loop device/);
    assert.equal(r.syscallCalled, false);
  });

  test('umount: "not mounted"; busy: "target is busy", and -l detaches it anyway', async () => {
    const n = await native.umount({ target: mnt, lazy: false, force: false });
    assert.equal(n.exitCode, 32);
    assert.equal(resultOf('umount', mnt, n).lines[0], `umount: ${mnt}: not mounted.`);
    assert.equal((await native.mount(request())).exitCode, 0);
    const holder = spawn('sleep', ['30'], { cwd: mnt, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const busy = await native.umount({ target: mnt, lazy: false, force: false });
      assert.equal(busy.exitCode, 32);
      assert.match(busy.message, /target is busy/);
      assert.equal(mountedAt(mnt), 'ext4');
      const lazy = await native.umount({ target: mnt, lazy: true, force: false });
      assert.equal(lazy.exitCode, 0, lazy.message);
      assert.equal(mountedAt(mnt), undefined);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('wrong arguments are TypeErrors, before anything runs', () => {
    const m = native.mount as (...a: unknown[]) => unknown;
    const u = native.umount as (...a: unknown[]) => unknown;
    assert.throws(() => m(), TypeError);
    assert.throws(() => m('x'), TypeError);
    assert.throws(() => m({ ...request(), source: 1 }), TypeError);
    assert.throws(() => m({ ...request(), source: '' }), TypeError);
    assert.throws(() => m({ ...request(), target: 'relative' }), TypeError);
    assert.throws(() => m({ ...request(), target: `${mnt}\0x` }), TypeError);
    assert.throws(() => m({ ...request(), options: 'a\0b' }), TypeError);
    assert.throws(() => m({ ...request(), sloppy: 'yes' }), TypeError);
    assert.throws(() => u({ target: mnt, lazy: false }), TypeError);
    assert.throws(() => u({ target: '', lazy: false, force: false }), TypeError);
    assert.equal(mountedAt(mnt), undefined);
  });
});
