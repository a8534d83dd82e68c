// The real `udevadm info` must read what UdevDbWriter writes. udevadm (systemd 252) has no option
// or environment variable to read a database elsewhere than /run/udev, so this writes into the real
// /run/udev: only as root, only while no udevd runs (it owns /run/udev then), and it removes exactly
// what it created, also when an assertion fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { UdevDbWriter, DEFAULT_UDEV_RUN_DIR } from '../../src/devices/udev-db-writer';

const TAG = 'triggerd-test';

function udevdPid(): number | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'systemd-udevd' || comm === 'udevd') return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

function hasUdevadm(): boolean {
  try {
    execFileSync('udevadm', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** An existing loop device node with its sysfs entry, preferably one nobody has attached. */
function pickLoop(): { name: string; major: number; minor: number } | undefined {
  const nodes = fs
    .readdirSync('/dev')
    .filter((n) => /^loop\d+$/.test(n))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)));
  for (const name of nodes) {
    try {
      const [major, minor] = fs
        .readFileSync(`/sys/class/block/${name}/dev`, 'utf8')
        .trim()
        .split(':')
        .map(Number);
      const backing = fs.existsSync(`/sys/class/block/${name}/loop/backing_file`);
      if (!backing && major !== undefined && minor !== undefined) return { name, major, minor };
    } catch {
      // not a usable loop device
    }
  }
  return undefined;
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return `needs root (running as uid ${process.getuid?.()})`;
  const pid = udevdPid();
  if (pid !== undefined) return `systemd-udevd runs (pid ${pid}) and owns /run/udev`;
  if (!hasUdevadm()) return 'needs udevadm (Debian package udev)';
  if (pickLoop() === undefined) return 'needs an unattached loop device';
  return undefined;
}

const reason = skipReason();

test('udevadm info reads our record, links and tags from /run/udev', { skip: reason ?? false }, async (t) => {
  const loop = pickLoop();
  assert.ok(loop);
  const id = `b${loop.major}:${loop.minor}`;
  const root = DEFAULT_UDEV_RUN_DIR;
  const dataFile = path.join(root, 'data', id);
  // No udevd runs (see skipReason), so a record there is a stale one, e.g. from triggerd run by
  // `npm start` before this suite: it is put back as it was afterwards.
  const previous = fs.existsSync(dataFile)
    ? { text: fs.readFileSync(dataFile), mode: fs.statSync(dataFile).mode & 0o7777 }
    : undefined;

  // Everything this test may create, deepest last; removed in reverse, directories only if we made them.
  const candidates = [root, path.join(root, 'data'), path.join(root, 'tags'), path.join(root, 'tags', TAG)];
  const made = candidates.filter((d) => !fs.existsSync(d));
  t.after(() => {
    fs.rmSync(dataFile, { force: true });
    if (previous !== undefined) fs.writeFileSync(dataFile, previous.text, { mode: previous.mode });
    fs.rmSync(path.join(root, 'tags', TAG, id), { force: true });
    for (const dir of [...made].reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // not empty: someone else wrote there meanwhile; leave it
      }
    }
  });

  const writer = new UdevDbWriter({ root });
  const links = [`disk/by-label/triggerd-${loop.name}`, `disk/by-id/triggerd-test-${loop.name}`];
  const written = await writer.writeDevice({
    id,
    hasDevnum: true,
    hasIfindex: false,
    devlinks: links,
    linkPriority: 0,
    usecInitialized: 123456789n,
    properties: [
      ['ID_FS_TYPE', 'ext4'],
      ['TRIGGERD_TEST', 'yes'],
    ],
    tags: [TAG],
    currentTags: [TAG],
  });
  assert.deepEqual(written, [], 'the writes resolve once done, with no errors');

  const props = execFileSync('udevadm', ['info', '--query=property', `--name=/dev/${loop.name}`], {
    encoding: 'utf8',
  });
  assert.match(props, /^ID_FS_TYPE=ext4$/m);
  assert.match(props, /^TRIGGERD_TEST=yes$/m);
  assert.match(props, /^USEC_INITIALIZED=123456789$/m);
  assert.match(props, new RegExp(`^TAGS=:${TAG}:$`, 'm'));
  assert.match(props, new RegExp(`^CURRENT_TAGS=:${TAG}:$`, 'm'));

  const symlinks = execFileSync('udevadm', ['info', '--query=symlink', `--name=/dev/${loop.name}`], {
    encoding: 'utf8',
  });
  assert.deepEqual(symlinks.trim().split(/\s+/).sort(), [...links].sort());

  const all = execFileSync('udevadm', ['info', '--query=all', `--name=/dev/${loop.name}`], {
    encoding: 'utf8',
  });
  for (const l of links) assert.match(all, new RegExp(`^S: ${l}$`, 'm'));

  // remove: udevadm falls back to what the kernel says.
  assert.deepEqual(await writer.removeDeviceDb(id), []);
  assert.equal(fs.existsSync(path.join(root, 'tags', TAG, id)), false);
  const after = execFileSync('udevadm', ['info', '--query=property', `--name=/dev/${loop.name}`], {
    encoding: 'utf8',
  });
  assert.doesNotMatch(after, /TRIGGERD_TEST/);
});
