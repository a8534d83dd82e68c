// The udev builtins on this machine's real devices, with `udevadm test-builtin` (Debian's udev,
// installed but not running) as the oracle: blkid on loop devices backed by images made here,
// path_id and input_id on every device in /sys/class. Loop devices are detached in t.after.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { blkid } from '../../src/devices/builtins/blkid';
import type { BuiltinHost, BuiltinResult } from '../../src/devices/builtins/builtin-types';
import { inputId } from '../../src/devices/builtins/input-id';
import { pathId } from '../../src/devices/builtins/path-id';
import { builtinDeviceAt, createSysfsHost } from '../../src/devices/builtins/sysfs-host';
import { loadNativeBlkid, type NativeBlkid } from '../../src/native/blkid-addon';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;

function hasProgram(name: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) => fs.existsSync(path.join(dir, name)));
}
const noUdevadm = hasProgram('udevadm') ? false : 'needs udevadm (Debian package udev)';
const rootAndUdevadm = needsRoot !== false ? needsRoot : noUdevadm;
const needsLoop =
  rootAndUdevadm !== false
    ? rootAndUdevadm
    : hasProgram('losetup') && hasProgram('mkfs.ext4')
      ? false
      : 'needs losetup and mkfs.ext4';

let native: NativeBlkid | undefined;
function blkidHost(): BuiltinHost {
  native ??= loadNativeBlkid();
  const prober = native;
  return createSysfsHost({ probeBlkid: (devnode, options) => prober.probe(devnode, options) });
}

/** What `udevadm test-builtin NAME SYSPATH` prints on stdout, or undefined when it fails. */
function udevadm(builtin: string, syspath: string): Record<string, string> | undefined {
  let out: string;
  try {
    out = execFileSync('udevadm', ['test-builtin', builtin, syspath], {
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
    });
  } catch {
    return undefined;
  }
  const props: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return props;
}

function mine(result: BuiltinResult): Record<string, string> | undefined {
  return result.ok ? Object.fromEntries(result.properties) : undefined;
}

function tempImage(t: TestContext, megabytes: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-blkid-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, megabytes * 1024 * 1024);
  return file;
}

/** losetup --find --show; detached when the test ends, pass or fail. */
function attachLoop(t: TestContext, image: string, partitions = false): string {
  const args = ['--find', '--show', ...(partitions ? ['--partscan'] : []), image];
  const devnode = execFileSync('losetup', args, { encoding: 'utf8' }).trim();
  t.after(() => {
    try {
      execFileSync('losetup', ['-d', devnode]);
    } catch {
      // Already detached.
    }
  });
  return devnode;
}

function sysfsOf(devnode: string): string {
  return `/sys/class/block/${path.basename(devnode)}`;
}

/** Whether `file` exists within about a second (the kernel adds partition devices async). */
async function waitFor(file: string): Promise<boolean> {
  for (let i = 0; i < 50 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 20));
  return fs.existsSync(file);
}

async function assertBlkidMatchesUdevadm(syspath: string): Promise<Record<string, string>> {
  const device = builtinDeviceAt(syspath);
  assert.ok(device, syspath);
  const ours = mine(await blkid(['blkid'], device, blkidHost()));
  const theirs = udevadm('blkid', syspath);
  assert.ok(theirs, `udevadm test-builtin blkid ${syspath} failed`);
  assert.deepEqual(ours, theirs);
  return theirs;
}

describe('blkid against udevadm test-builtin blkid', () => {
  it('ext4 image with a label that needs encoding', { skip: needsLoop }, async (t) => {
    const image = tempImage(t, 16);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'my label ü', image]);
    const loop = attachLoop(t, image);
    const props = await assertBlkidMatchesUdevadm(sysfsOf(loop));
    assert.equal(props.ID_FS_TYPE, 'ext4');
    assert.equal(props.ID_FS_LABEL, 'my_label_ü');
    assert.equal(props.ID_FS_LABEL_ENC, 'my\\x20label\\x20ü');
    for (const key of ['ID_FS_UUID', 'ID_FS_UUID_ENC', 'ID_FS_VERSION', 'ID_FS_USAGE'])
      assert.ok(props[key], key);
  });

  it('DOS partition table and the ext4 partition on it', { skip: needsLoop }, async (t) => {
    const image = tempImage(t, 32);
    // A one-partition MBR, written by hand (sfdisk may not be installed): type 0x83 from sector
    // 2048 to the end, disk signature 0x1234abcd.
    const mbr = Buffer.alloc(512);
    mbr.writeUInt32LE(0x1234abcd, 0x1b8);
    mbr[0x1be + 4] = 0x83;
    mbr.writeUInt32LE(2048, 0x1be + 8);
    mbr.writeUInt32LE(32 * 2048 - 2048, 0x1be + 12);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const fd = fs.openSync(image, 'r+');
    fs.writeSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    const loop = attachLoop(t, image, true);
    const disk = await assertBlkidMatchesUdevadm(sysfsOf(loop));
    assert.equal(disk.ID_PART_TABLE_TYPE, 'dos');
    assert.equal(disk.ID_PART_TABLE_UUID, '1234abcd');
    const part = `${loop}p1`;
    const appeared = await waitFor(sysfsOf(part));
    await t.test(
      'the ext4 partition on it',
      { skip: !appeared && 'the kernel made no partition device for the loop device' },
      async () => {
        assert.ok(await waitFor(part), `${part} did not appear`);
        execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'part', part]);
        const entry = await assertBlkidMatchesUdevadm(sysfsOf(part));
        assert.equal(entry.ID_PART_ENTRY_SCHEME, 'dos');
        assert.equal(entry.ID_PART_ENTRY_TYPE, '0x83');
        assert.equal(entry.ID_FS_LABEL, 'part');
      },
    );
  });

  it(
    'swap signature',
    { skip: needsLoop !== false ? needsLoop : !hasProgram('mkswap') && 'needs mkswap' },
    async (t) => {
      const image = tempImage(t, 16);
      execFileSync('mkswap', ['-L', 'swap one', image], { stdio: 'ignore' });
      const loop = attachLoop(t, image);
      const props = await assertBlkidMatchesUdevadm(sysfsOf(loop));
      assert.equal(props.ID_FS_TYPE, 'swap');
    },
  );

  it(
    'vfat image',
    { skip: needsLoop !== false ? needsLoop : !hasProgram('mkfs.vfat') && 'needs mkfs.vfat (dosfstools)' },
    async (t) => {
      const image = tempImage(t, 16);
      execFileSync('mkfs.vfat', ['-n', 'VFAT LBL', image], { stdio: 'ignore' });
      const loop = attachLoop(t, image);
      const props = await assertBlkidMatchesUdevadm(sysfsOf(loop));
      assert.equal(props.ID_FS_TYPE, 'vfat');
    },
  );

  it('an empty loop device: nothing found, like udevadm', { skip: needsLoop }, async (t) => {
    const loop = attachLoop(t, tempImage(t, 4));
    const props = await assertBlkidMatchesUdevadm(sysfsOf(loop));
    assert.deepEqual(props, {});
  });

  it('/dev/vda (EPERM here even for root) fails quickly with a per-device error', async (t) => {
    const device = builtinDeviceAt('/sys/class/block/vda');
    if (device === undefined || device.devname === undefined) {
      t.skip('no /sys/class/block/vda on this machine');
      return;
    }
    const started = Date.now();
    const result = await blkid(['blkid'], device, blkidHost());
    const elapsed = Date.now() - started;
    if (result.ok) {
      t.skip('/dev/vda is readable on this machine');
      return;
    }
    assert.ok(['EPERM', 'EACCES'].includes(result.code), `${result.code}: ${result.message}`);
    assert.match(result.message, /\/dev\/vda/);
    t.diagnostic(`failed in ${elapsed} ms`);
  });
});

describe('blkid addon', () => {
  it('rejects bad arguments with TypeErrors', () => {
    const addon = loadNativeBlkid();
    const call =
      (...args: unknown[]) =>
      () =>
        (addon.probe as (...a: unknown[]) => unknown)(...args);
    assert.throws(call(), TypeError);
    assert.throws(call(42, { offset: 0, noraid: false }), TypeError);
    assert.throws(call('', { offset: 0, noraid: false }), TypeError);
    assert.throws(call('/dev/null\0x', { offset: 0, noraid: false }), TypeError);
    assert.throws(call('/dev/null'), TypeError);
    assert.throws(call('/dev/null', { offset: -1, noraid: false }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(call('/dev/null', { offset: 1.5, noraid: false }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(call('/dev/null', { offset: 0 }), TypeError);
    assert.throws(call('/dev/null', { offset: 0, noraid: false, hint: 7 }), TypeError);
  });

  it('reports a missing node as a Node-style system error with the path', async () => {
    const addon = loadNativeBlkid();
    await assert.rejects(addon.probe('/nonexistent/triggerd-node', { offset: 0, noraid: false }), {
      code: 'ENOENT',
      syscall: 'open',
      path: '/nonexistent/triggerd-node',
    });
    assert.equal(addon.libraryInfo().available, true);
  });

  it('many probes of one file in parallel all complete', async (t) => {
    const addon = loadNativeBlkid();
    const file = tempImage(t, 1);
    const results = await Promise.all(
      Array.from({ length: 32 }, () => addon.probe(file, { offset: 0, noraid: true })),
    );
    for (const r of results) assert.deepEqual(r, { status: 'nothing', values: [] });
  });

  it('a device libblkid cannot size fails with the libblkid call named', async () => {
    const addon = loadNativeBlkid();
    await assert.rejects(addon.probe('/dev/null', { offset: 0, noraid: false }), {
      code: 'EINVAL',
      syscall: 'blkid_probe_set_device',
      path: '/dev/null',
    });
  });
});

/** Every device in /sys/class (one entry per device, symlinks resolved). */
function classDevices(...classes: string[]): string[] {
  const out: string[] = [];
  const names = classes.length > 0 ? classes : fs.readdirSync('/sys/class');
  for (const cls of names) {
    let entries: string[];
    try {
      entries = fs.readdirSync(`/sys/class/${cls}`);
    } catch {
      continue;
    }
    for (const name of entries) out.push(`/sys/class/${cls}/${name}`);
  }
  return out;
}

describe('path_id and input_id against udevadm test-builtin', () => {
  it('path_id on every device in /sys/class', { skip: noUdevadm }, () => {
    const host = createSysfsHost();
    let compared = 0;
    for (const syspath of classDevices()) {
      const device = builtinDeviceAt(syspath);
      if (device === undefined) continue;
      assert.deepEqual(mine(pathId(['path_id'], device, host)), udevadm('path_id', syspath), syspath);
      compared++;
    }
    assert.ok(compared > 0);
  });

  it('input_id on every input device', { skip: noUdevadm }, (t) => {
    const devices = classDevices('input');
    if (devices.length === 0) {
      t.skip('no input devices on this machine');
      return;
    }
    const host = createSysfsHost();
    for (const syspath of devices) {
      const device = builtinDeviceAt(syspath);
      if (device === undefined) continue;
      const theirs = udevadm('input_id', syspath);
      // ID_INPUT_WIDTH_MM/HEIGHT_MM come from an ioctl triggerd does not make (see input-id.ts).
      if (theirs !== undefined) {
        delete theirs.ID_INPUT_WIDTH_MM;
        delete theirs.ID_INPUT_HEIGHT_MM;
      }
      assert.deepEqual(mine(inputId(['input_id'], device, host)), theirs, syspath);
    }
  });
});
