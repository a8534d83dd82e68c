// PathChangedRecursive=: a change deep in a tree made after the watch started triggers, on tmpfs
// and on a loop-mounted ext4, through one fanotify filesystem mark; changes beside the subtree on
// the same file system do not; a directory moved inside the tree keeps working (the handle cache
// is dropped); when fanotify is refused (EPERM, simulated with the fake, and for real as uid
// 65534) the inotify tree walk serves the spec and walks new directories; FAN_Q_OVERFLOW and
// IN_Q_OVERFLOW trigger every spec; a missing directory is waited for.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadFanotifyNative, FAN } from '../../src/native/fanotify-addon';
import { loadInotifyNative } from '../../src/native/inotify-addon';
import {
  RecursivePathWatches,
  type RecursiveWatchEvent,
  type RecursiveSpecWatch,
} from '../../src/events/path-recursive';
import { FakeNativeFanotify } from '../helpers/fake-fanotify';
import { FakeNativeInotify } from '../helpers/fake-inotify';
import { loopExt4Unavailable, mountLoopExt4 } from '../helpers/loop-ext4';

const ROOT = process.getuid?.() === 0 ? undefined : `needs root (running as uid ${process.getuid?.()})`;
const work = fs.mkdtempSync('/dev/shm/triggerd-recursive-');
fs.chmodSync(work, 0o755);
after(() => fs.rmSync(work, { recursive: true, force: true }));

async function until(what: string, probe: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));

interface Watched {
  watch: RecursiveSpecWatch;
  events: RecursiveWatchEvent[];
}

function watch(source: RecursivePathWatches, dir: string): Watched {
  const events: RecursiveWatchEvent[] = [];
  const w = source.watch({ kind: 'PathChangedRecursive', path: dir }, (e) => events.push(e));
  return { watch: w, events };
}

async function deepChange(base: string, mechanism: RegExp, source: RecursivePathWatches): Promise<void> {
  const dir = path.join(base, 'watched');
  const beside = path.join(base, 'beside');
  fs.mkdirSync(dir);
  fs.mkdirSync(beside);
  const w = watch(source, dir);
  try {
    assert.match(w.watch.state().mechanism, mechanism);
    // Beside the subtree, on the same file system: nothing.
    fs.mkdirSync(path.join(beside, 'x', 'y'), { recursive: true });
    fs.writeFileSync(path.join(beside, 'x', 'y', 'f'), '1');
    await settle();
    assert.equal(w.events.length, 0);
    // A tree made after the watch started, changed at its bottom.
    const deep = path.join(dir, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
    fs.mkdirSync(deep, { recursive: true });
    await until('the mkdir', () => w.events.length > 0);
    await settle();
    w.events.length = 0;
    fs.writeFileSync(path.join(deep, 'leaf'), 'x');
    await until('the deep write', () => w.events.some((e) => e.where === path.join(deep, 'leaf')));
    assert.ok(w.events.every((e) => e.changed));
    // A directory moved inside the tree: changes below its new name still count.
    fs.renameSync(path.join(dir, 'a', 'b'), path.join(dir, 'moved'));
    await settle();
    w.events.length = 0;
    fs.writeFileSync(path.join(dir, 'moved', 'c', 'd', 'new'), 'y');
    await until('the write under the moved directory', () =>
      w.events.some((e) => e.where === path.join(dir, 'moved', 'c', 'd', 'new')),
    );
    // And the tree's directory itself going away is a change too.
    w.events.length = 0;
    fs.rmSync(dir, { recursive: true });
    await until('the removal', () => w.events.length > 0);
  } finally {
    w.watch.close();
  }
}

describe('PathChangedRecursive= with fanotify', { skip: ROOT }, () => {
  test('tmpfs: a deep change in a tree made after the watch; nothing from beside it', async () => {
    const source = new RecursivePathWatches({ fanotify: loadFanotifyNative(), inotify: loadInotifyNative() });
    try {
      await deepChange(fs.mkdtempSync(path.join(work, 'tmpfs-')), /^fanotify filesystem mark/, source);
      assert.ok(source.stats.cacheHits > 0, 'directory handles are resolved once and cached');
    } finally {
      source.close();
    }
  });

  test('loop-mounted ext4: the same', { skip: loopExt4Unavailable() }, async () => {
    const ext4 = mountLoopExt4('recursive');
    const source = new RecursivePathWatches({ fanotify: loadFanotifyNative(), inotify: loadInotifyNative() });
    try {
      await deepChange(ext4.dir, /^fanotify filesystem mark/, source);
    } finally {
      try {
        source.close();
      } finally {
        ext4.unmount();
      }
    }
  });

  test('two specs on one file system share the mark; each hears only its own subtree', async () => {
    const base = fs.mkdtempSync(path.join(work, 'two-'));
    fs.mkdirSync(path.join(base, 'one'));
    fs.mkdirSync(path.join(base, 'two'));
    const source = new RecursivePathWatches({ fanotify: loadFanotifyNative(), inotify: loadInotifyNative() });
    try {
      const a = watch(source, path.join(base, 'one'));
      const b = watch(source, path.join(base, 'two'));
      fs.writeFileSync(path.join(base, 'one', 'f'), '');
      await until('one', () => a.events.length > 0);
      await settle();
      assert.equal(b.events.length, 0);
      b.watch.close();
      fs.writeFileSync(path.join(base, 'two', 'g'), '');
      fs.writeFileSync(path.join(base, 'one', 'g'), '');
      await until('one again', () => a.events.length > 1);
      assert.equal(b.events.length, 0);
    } finally {
      source.close();
    }
  });
});

describe('PathChangedRecursive= falls back to an inotify tree walk', () => {
  test('fanotify refused (EPERM, simulated): inotify walks the tree and new directories', async () => {
    const fake = new FakeNativeFanotify();
    fake.unprivileged = true;
    const warnings: string[] = [];
    const source = new RecursivePathWatches({
      fanotify: fake,
      inotify: loadInotifyNative(),
      warn: (m, f) => warnings.push(`${m} ${String(f.code)}`),
    });
    try {
      await deepChange(
        fs.mkdtempSync(path.join(work, 'eperm-')),
        /^inotify tree walk \(fanotify fanotify_mark: EPERM\)/,
        source,
      );
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /EPERM/);
    } finally {
      source.close();
    }
  });

  test(
    'as uid 65534 for real: fanotify is refused and the tree walk triggers on a deep change',
    { skip: ROOT },
    async () => {
      const base = fs.mkdtempSync(path.join(work, 'nobody-'));
      fs.chmodSync(base, 0o755);
      fs.chownSync(base, 65534, 65534);
      const script = `
      const fs = require('node:fs');
      const { RecursivePathWatches } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'src', 'events', 'path-recursive.js'))});
      const { loadFanotifyNative } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'src', 'native', 'fanotify-addon.js'))});
      const { loadInotifyNative } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'src', 'native', 'inotify-addon.js'))});
      const base = ${JSON.stringify(base)};
      const source = new RecursivePathWatches({ fanotify: loadFanotifyNative(), inotify: loadInotifyNative() });
      const w = source.watch({ kind: 'PathChangedRecursive', path: base }, (e) => {
        if (e.where === base + '/p/q/r/leaf') {
          console.log(JSON.stringify({ mechanism: w.state().mechanism, where: e.where }));
          source.close();
        }
      });
      fs.mkdirSync(base + '/p/q/r', { recursive: true });
      setTimeout(() => fs.writeFileSync(base + '/p/q/r/leaf', 'x'), 100);
      setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000).unref();
    `;
      const child = spawn(process.execPath, ['-e', script], {
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, out);
      const result = JSON.parse(out.trim()) as { mechanism: string; where: string };
      assert.match(result.mechanism, /^inotify tree walk \(fanotify fanotify_(init|mark): EPERM\)/);
    },
  );

  test('a missing directory is waited for, then walked', async () => {
    const fake = new FakeNativeFanotify();
    fake.unprivileged = true;
    const source = new RecursivePathWatches({ fanotify: fake, inotify: loadInotifyNative() });
    const base = fs.mkdtempSync(path.join(work, 'missing-'));
    const dir = path.join(base, 'later', 'tree');
    const w = watch(source, dir);
    try {
      assert.equal(w.watch.state().waitingFor, dir);
      fs.mkdirSync(dir, { recursive: true });
      await until('the directory', () => w.events.some((e) => e.rewalked));
      assert.equal(w.watch.state().waitingFor, undefined);
      w.events.length = 0;
      fs.mkdirSync(path.join(dir, 'x', 'y'), { recursive: true });
      await settle();
      fs.writeFileSync(path.join(dir, 'x', 'y', 'z'), '');
      await until('the deep file', () => w.events.some((e) => e.where === path.join(dir, 'x', 'y', 'z')));
    } finally {
      source.close();
    }
  });
});

describe('PathChangedRecursive= overflow and filtering (fakes)', () => {
  test('FAN_Q_OVERFLOW triggers every spec; IN_Q_OVERFLOW rewalks and triggers', async () => {
    const fan = new FakeNativeFanotify();
    const ino = new FakeNativeInotify();
    const source = new RecursivePathWatches({ fanotify: fan, inotify: ino });
    const base = fs.mkdtempSync(path.join(work, 'overflow-'));
    fs.mkdirSync(path.join(base, 'a'));
    fs.mkdirSync(path.join(base, 'b'));
    try {
      const a = watch(source, path.join(base, 'a'));
      const b = watch(source, path.join(base, 'b'));
      fan.handle.overflow();
      await until('overflow', () => a.events.length > 0 && b.events.length > 0);
      assert.deepEqual(a.events[0], { changed: true, rewalked: false, overflow: true });
      // Records beside and inside, with directory handles: only the subtree's count.
      fan.handle.entry(FAN.CREATE, path.join(base, 'a'), 'x');
      fan.handle.entry(FAN.CREATE, base, 'c');
      fan.handle.entry(FAN.CREATE, path.join(base, 'a'), 'y');
      await until('the create', () => a.events.length > 1);
      await settle();
      assert.equal(a.events.length, 2, 'one call per batch');
      assert.equal(a.events[1].where, path.join(base, 'a', 'x'));
      assert.equal(b.events.length, 1);
      assert.equal(fan.resolves, 2, 'each directory resolved once');

      fan.unprivileged = true;
      const other = new RecursivePathWatches({ fanotify: fan, inotify: ino });
      const c = watch(other, path.join(base, 'b'));
      assert.match(c.watch.state().mechanism, /inotify/);
      ino.handle.overflow();
      await until('inotify overflow', () => c.events.length > 0);
      assert.deepEqual(c.events[0], { changed: true, rewalked: true, overflow: true });
      other.close();
    } finally {
      source.close();
    }
  });
});
