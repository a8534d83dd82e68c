// DeviceWatch with the fake inotify handle and a fixture sysfs: which events start and end a
// watch, the /run/udev/watch links, and what a close-write, an overflow or a deleted node does.
import { describe, test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeviceWatch } from '../../src/devices/device-watch';
import type { RulesResult } from '../../src/devices/rules/rules-result';
import type { Uevent, UeventAction } from '../../src/devices/types';
import { IN } from '../../src/native/inotify-addon';
import { FakeNativeInotify } from '../helpers/fake-inotify';
import { silentLogger } from '../helpers/logger';
import { loop0Result } from '../helpers/loop0-result';

interface Dev {
  devpath: string;
  devname: string;
  major: number;
  minor: number;
  devtype: 'disk' | 'partition';
}

const LOOP3: Dev = {
  devpath: '/devices/virtual/block/loop3',
  devname: '/dev/loop3',
  major: 7,
  minor: 3,
  devtype: 'disk',
};
const LOOP4: Dev = {
  devpath: '/devices/virtual/block/loop4',
  devname: '/dev/loop4',
  major: 7,
  minor: 4,
  devtype: 'disk',
};
const SDA: Dev = {
  devpath: '/devices/pci0000:00/host0/block/sda',
  devname: '/dev/sda',
  major: 8,
  minor: 0,
  devtype: 'disk',
};

function uevent(dev: Dev, action: UeventAction): Uevent {
  return {
    source: 'kernel',
    action,
    devpath: dev.devpath,
    subsystem: 'block',
    devtype: dev.devtype,
    devname: dev.devname,
    major: dev.major,
    minor: dev.minor,
    seqnum: 1,
    properties: new Map([
      ['ACTION', action],
      ['DEVPATH', dev.devpath],
      ['SUBSYSTEM', 'block'],
    ]),
  };
}

function result(...options: string[]): RulesResult {
  return { ...loop0Result(), options: new Set(options) };
}

/** Lets the fake's setImmediate delivery run. */
function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('DeviceWatch', () => {
  let root: string;
  let sysRoot: string;
  let runDir: string;
  let native: FakeNativeInotify;
  let watch: DeviceWatch;

  const ueventFile = (devpath: string) => path.join(sysRoot, devpath, 'uevent');
  const uevents = (devpath: string) => fs.readFileSync(ueventFile(devpath), 'utf8');
  const link = (name: string) => {
    try {
      return fs.readlinkSync(path.join(runDir, 'watch', name));
    } catch {
      return undefined;
    }
  };
  /** Processes an event the way RulesStage does: begin, (rules, effects), update. */
  const processEvent = (dev: Dev, action: UeventAction, r: RulesResult) => {
    const e = uevent(dev, action);
    watch.begin(e);
    watch.update(e, r);
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'device-watch-'));
    sysRoot = path.join(root, 'sys');
    runDir = path.join(root, 'udev');
    for (const dev of [LOOP3, LOOP4, SDA]) {
      fs.mkdirSync(path.join(sysRoot, dev.devpath), { recursive: true });
      fs.writeFileSync(ueventFile(dev.devpath), '');
    }
    for (const part of ['sda1', 'sda2']) {
      fs.mkdirSync(path.join(sysRoot, SDA.devpath, part), { recursive: true });
      fs.writeFileSync(path.join(sysRoot, SDA.devpath, part, 'partition'), part.slice(3));
      fs.writeFileSync(path.join(sysRoot, SDA.devpath, part, 'uevent'), '');
    }
    // Not a partition: no `partition` file.
    fs.mkdirSync(path.join(sysRoot, SDA.devpath, 'queue'));
    native = new FakeNativeInotify();
    watch = new DeviceWatch({ native, logger: silentLogger(), udevRunDir: runDir, sysRoot });
  });

  afterEach(() => {
    watch.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('an add whose rules say watch watches the node and writes both links', () => {
    processEvent(LOOP3, 'add', result('watch'));
    const wd = native.handle.wdByPath.get('/dev/loop3');
    assert.equal(typeof wd, 'number');
    assert.equal(native.handle.masks.get(wd ?? -1), IN.CLOSE_WRITE);
    assert.deepEqual(watch.watched().get('b7:3'), { wd, devnode: '/dev/loop3', devpath: LOOP3.devpath });
    assert.equal(link('b7:3'), String(wd));
    assert.equal(link(String(wd)), 'b7:3');
  });

  test('an event without watch leaves the node unwatched', () => {
    processEvent(LOOP3, 'add', result());
    assert.equal(native.handle.wdByPath.size, 0);
    assert.deepEqual(
      fs.existsSync(path.join(runDir, 'watch')) ? fs.readdirSync(path.join(runDir, 'watch')) : [],
      [],
    );
  });

  test('a later event with the same node keeps the same watch and links', () => {
    processEvent(LOOP3, 'add', result('watch'));
    const wd = native.handle.wdByPath.get('/dev/loop3');
    processEvent(LOOP3, 'change', result('watch'));
    assert.equal(native.handle.wdByPath.get('/dev/loop3'), wd);
    assert.equal(link('b7:3'), String(wd));
  });

  test('nowatch ends the watch and removes the links', () => {
    processEvent(LOOP3, 'add', result('watch'));
    const wd = native.handle.wdByPath.get('/dev/loop3');
    processEvent(LOOP3, 'change', result('nowatch'));
    assert.equal(native.handle.wdByPath.size, 0);
    assert.equal(watch.watched().size, 0);
    assert.equal(link('b7:3'), undefined);
    assert.equal(link(String(wd)), undefined);
  });

  test('remove ends the watch (even if its rules said watch)', () => {
    processEvent(LOOP3, 'add', result('watch'));
    processEvent(LOOP3, 'remove', result('watch'));
    assert.equal(native.handle.wdByPath.size, 0);
    assert.equal(link('b7:3'), undefined);
  });

  test('a writer closing the node writes change to its sysfs uevent file', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    native.handle.closeWrite('/dev/loop3');
    await tick();
    assert.equal(uevents(LOOP3.devpath), 'change');
    assert.equal(uevents(LOOP4.devpath), '');
    assert.equal(watch.stats.synthesized, 1);
  });

  test('several close-writes in one wake-up give one change', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    native.handle.closeWrite('/dev/loop3');
    native.handle.closeWrite('/dev/loop3');
    native.handle.closeWrite('/dev/loop3');
    await tick();
    assert.equal(native.handle.batches, 1);
    assert.equal(watch.stats.closeWrites, 3);
    assert.equal(watch.stats.synthesized, 1);
  });

  test('a close-write while the device’s own event is processed is ignored, as udevd does', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    const e = uevent(LOOP3, 'change');
    watch.begin(e);
    native.handle.closeWrite('/dev/loop3');
    await tick();
    watch.update(e, result('watch'));
    assert.equal(uevents(LOOP3.devpath), '');
    assert.equal(watch.stats.suppressed, 1);
    native.handle.closeWrite('/dev/loop3');
    await tick();
    assert.equal(uevents(LOOP3.devpath), 'change');
  });

  test('overflow synthesizes change for every watched device', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    processEvent(LOOP4, 'add', result('watch'));
    native.handle.overflow();
    await tick();
    assert.equal(uevents(LOOP3.devpath), 'change');
    assert.equal(uevents(LOOP4.devpath), 'change');
    assert.equal(watch.stats.overflows, 1);
  });

  test('IN_IGNORED (the node was deleted) drops the watch and its links', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    const wd = native.handle.wdByPath.get('/dev/loop3');
    native.handle.deleteNode('/dev/loop3');
    await tick();
    assert.equal(watch.watched().size, 0);
    assert.equal(link('b7:3'), undefined);
    assert.equal(link(String(wd)), undefined);
  });

  test('a node that is already gone (ENOENT) is not watched, silently', () => {
    native.missing.add('/dev/loop3');
    processEvent(LOOP3, 'add', result('watch'));
    assert.equal(watch.watched().size, 0);
    assert.equal(watch.stats.errors, 0);
  });

  test('a whole disk with partitions whose table is re-read gets no synthetic change', async () => {
    processEvent(SDA, 'add', result('watch'));
    native.handle.closeWrite('/dev/sda');
    await tick();
    assert.deepEqual(native.rereadCalls, ['/dev/sda']);
    assert.equal(uevents(SDA.devpath), '');
    assert.equal(fs.readFileSync(path.join(sysRoot, SDA.devpath, 'sda1', 'uevent'), 'utf8'), '');
  });

  test('a whole disk in use (BLKRRPART busy) gets change on the disk and each partition', async () => {
    native.reread.set('/dev/sda', 'EBUSY');
    processEvent(SDA, 'add', result('watch'));
    native.handle.closeWrite('/dev/sda');
    await tick();
    assert.equal(uevents(SDA.devpath), 'change');
    for (const part of ['sda1', 'sda2'])
      assert.equal(fs.readFileSync(path.join(sysRoot, SDA.devpath, part, 'uevent'), 'utf8'), 'change');
    assert.equal(fs.existsSync(path.join(sysRoot, SDA.devpath, 'queue', 'uevent')), false);
  });

  test('a whole disk without partitions gets a change even when the re-read succeeds', async () => {
    processEvent(LOOP3, 'add', result('watch'));
    native.handle.closeWrite('/dev/loop3');
    await tick();
    assert.deepEqual(native.rereadCalls, ['/dev/loop3']);
    assert.equal(uevents(LOOP3.devpath), 'change');
  });

  test('stale links from an earlier run are cleared at start', () => {
    watch.close();
    fs.mkdirSync(path.join(runDir, 'watch'), { recursive: true });
    fs.symlinkSync('b7:9', path.join(runDir, 'watch', '42'));
    fs.symlinkSync('42', path.join(runDir, 'watch', 'b7:9'));
    watch = new DeviceWatch({ native, logger: silentLogger(), udevRunDir: runDir, sysRoot });
    assert.deepEqual(fs.readdirSync(path.join(runDir, 'watch')), []);
  });

  test('close() ends every watch, removes the links and closes the handle', () => {
    processEvent(LOOP3, 'add', result('watch'));
    watch.close();
    assert.equal(native.handle.closed, true);
    assert.deepEqual(fs.readdirSync(path.join(runDir, 'watch')), []);
  });
});
