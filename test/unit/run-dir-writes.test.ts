// The run-dir write-behind: writes to one path keep their order, a directory is removed only with
// nothing in flight in it, decisions see queued writes, a failed write is reported and retried,
// and an event is done only once its files exist. The fs calls are held and released out of order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  isMemoryFs,
  nodeRunDirFs,
  runDirFsFor,
  RunDirWrites,
  syncRunDirFs,
  writePrerequisites,
  type RunDirFs,
} from '../../src/devices/run-dir-writes';
import {
  overlayClaims,
  UdevDbWriter,
  udevDbEntryFor,
  type ClaimState,
} from '../../src/devices/udev-db-writer';
import { DevLinks, type LinkOwner } from '../../src/devices/dev-links';
import { compileRules } from '../../src/devices/rules/rules-compiler';
import { RulesStage } from '../../src/devices/rules-stage';
import type { ProgramRunner } from '../../src/devices/run-programs';
import type { DeviceRecord, Uevent } from '../../src/devices/types';
import { FakeRulesHost } from '../helpers/fake-rules-host';
import { recordingLogger, silentLogger } from '../helpers/logger';
import { uevent } from '../helpers/events';
import { loop0Result } from '../helpers/loop0-result';

function tempBase(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-rundir-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Held {
  call: string;
  release: () => void;
  done: Promise<unknown>;
}

/**
 * The real fs calls, each held until the test releases it; `fail` may turn one into an error.
 * `log` lists the calls in the order they ran ("symlink links/x/b7:0"), relative to `root`.
 */
class HeldFs implements RunDirFs {
  readonly log: string[] = [];
  private readonly held: Held[] = [];
  fail: ((call: string) => Error | undefined) | undefined;

  constructor(private readonly root: string) {}

  get heldCount(): number {
    return this.held.length;
  }

  mkdir(dir: string): Promise<void> {
    return this.hold(`mkdir ${this.rel(dir)}`, () => nodeRunDirFs.mkdir(dir));
  }
  createFile(file: string, data: string, mode: number): Promise<void> {
    return this.hold(`create ${this.rel(file)}`, () => nodeRunDirFs.createFile(file, data, mode));
  }
  symlink(target: string, file: string): Promise<void> {
    return this.hold(`symlink ${this.rel(file)}`, () => nodeRunDirFs.symlink(target, file));
  }
  rename(from: string, to: string): Promise<void> {
    return this.hold(`rename ${this.rel(to)}`, () => nodeRunDirFs.rename(from, to));
  }
  unlink(file: string): Promise<void> {
    return this.hold(`unlink ${this.rel(file)}`, () => nodeRunDirFs.unlink(file));
  }
  rmdir(dir: string): Promise<void> {
    return this.hold(`rmdir ${this.rel(dir)}`, () => nodeRunDirFs.rmdir(dir));
  }
  readdir(dir: string): Promise<string[]> {
    return this.hold(`readdir ${this.rel(dir)}`, () => nodeRunDirFs.readdir(dir));
  }

  /**
   * Releases held calls one at a time, newest first by default (the fs finishing them out of
   * order), until `until` settles.
   */
  async drain(until: Promise<unknown>, order: 'newest' | 'oldest' = 'newest'): Promise<void> {
    let finished = false;
    void until.finally(() => (finished = true));
    for (;;) {
      await tick();
      if (finished) return;
      const next = order === 'newest' ? this.held.pop() : this.held.shift();
      if (next === undefined) continue;
      next.release();
      await next.done.catch(() => undefined);
    }
  }

  private hold<T>(call: string, run: () => Promise<T>): Promise<T> {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const done = gate.then(() => {
      const err = this.fail?.(call);
      this.log.push(err === undefined ? call : `${call} (failed)`);
      if (err !== undefined) throw err;
      return run();
    });
    this.held.push({ call, release, done });
    return done;
  }

  private rel(p: string): string {
    // Temp names are random: keep the directory and mark them.
    const rel = path.relative(this.root, p);
    return path.basename(rel).startsWith('.#') ? `${path.dirname(rel)}/.#tmp` : rel;
  }
}

function errnoError(code: string, call: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected, ${call}`), { code });
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

function deferred(): Deferred {
  let resolve = (): void => undefined;
  let reject = (_err: Error): void => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('writePrerequisites: an entry waits for its path and a dir removal; a removal for every entry', () => {
  const a = Promise.resolve();
  const b = Promise.resolve();
  const removal = Promise.resolve();
  assert.deepEqual(writePrerequisites('entry', undefined, new Set([a, b]), undefined), []);
  assert.deepEqual(writePrerequisites('entry', a, new Set([a, b]), removal), [removal, a]);
  assert.deepEqual(writePrerequisites('dir', a, new Set([a, b]), undefined), [a, b]);
  assert.deepEqual(writePrerequisites('dir', undefined, new Set([a]), removal), [removal, a]);
});

test('RunDirWrites: same path in order, other entries side by side, removal with nothing in flight', async () => {
  const writes = new RunDirWrites();
  const started: string[] = [];
  const gates = new Map<string, Deferred>();
  const op = (name: string) => () => {
    started.push(name);
    const d = deferred();
    gates.set(name, d);
    return d.promise;
  };
  const first = writes.entry('d', 'd/x', op('x1'));
  const second = writes.entry('d', 'd/x', op('x2'));
  const other = writes.entry('d', 'd/y', op('y'));
  const removal = writes.dir('d', op('rmdir'));
  const after = writes.entry('d', 'd/z', op('z'));
  await tick();
  assert.deepEqual(started, ['x1', 'y'], 'x2 waits for x1; y runs beside it');
  gates.get('x1')?.reject(new Error('x1 failed'));
  await assert.rejects(first, /x1 failed/);
  await tick();
  assert.deepEqual(started, ['x1', 'y', 'x2'], 'a failure does not stop the chain');
  gates.get('x2')?.resolve();
  await second;
  await tick();
  assert.deepEqual(started, ['x1', 'y', 'x2'], 'the removal still waits for y');
  gates.get('y')?.resolve();
  await other;
  await tick();
  assert.deepEqual(started, ['x1', 'y', 'x2', 'rmdir'], 'z waits for the removal');
  assert.equal(writes.pending, 2);
  gates.get('rmdir')?.resolve();
  await removal;
  await tick();
  assert.deepEqual(started, ['x1', 'y', 'x2', 'rmdir', 'z']);
  gates.get('z')?.resolve();
  await after;
  await writes.idle();
  assert.equal(writes.pending, 0);
});

test('overlayClaims: queued claims added or replaced, queued removals dropped, written ones as on disk', () => {
  const onDisk = [
    { id: 'b7:0', priority: 0, devnode: '/dev/loop0' },
    { id: 'b7:2', priority: 0, devnode: '/dev/loop2' },
  ];
  const states = new Map<string, ClaimState>([
    ['b7:0', { data: undefined, pending: true }],
    ['b7:1', { data: '5:/dev/loop1', pending: true }],
    ['b7:2', { data: '9:/dev/loop2', pending: false }],
  ]);
  assert.deepEqual(overlayClaims(onDisk, states), [
    { id: 'b7:1', priority: 5, devnode: '/dev/loop1' },
    { id: 'b7:2', priority: 0, devnode: '/dev/loop2' },
  ]);
  assert.deepEqual(overlayClaims(onDisk, undefined), onDisk);
});

const LINK = 'disk/by-label/shared';
const CLAIM_DIR = 'links/disk\\x2fby-label\\x2fshared';

function claimsOnDisk(run: string): Record<string, string> {
  const dir = path.join(run, CLAIM_DIR);
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(fs.readdirSync(dir).map((id) => [id, fs.readlinkSync(path.join(dir, id))]));
}

test('two devices claim and release one link at once: queued claims count, the disk ends right', async (t) => {
  const run = tempBase(t);
  const held = new HeldFs(run);
  const writer = new UdevDbWriter({ root: run, fs: held });
  const loop = (n: number, priority: number) => ({ id: `b7:${n}`, priority, devnode: `/dev/loop${n}` });

  const w0 = writer.writeLinkClaim(LINK, loop(0, 0));
  const w1 = writer.writeLinkClaim(LINK, loop(1, 5));
  assert.deepEqual(writer.readLinkClaims(LINK), [loop(0, 0), loop(1, 5)], 'both queued, both seen');
  assert.deepEqual(claimsOnDisk(run), {}, 'nothing written yet');
  assert.ok(writer.hasLinkClaim(LINK, loop(1, 5)));
  const r0 = writer.removeLinkClaim(LINK, 'b7:0');
  assert.deepEqual(writer.readLinkClaims(LINK), [loop(1, 5)], 'a queued removal is left out');
  await held.drain(Promise.all([w0, w1, r0]));
  assert.deepEqual([await w0, await w1, await r0], [[], [], []]);
  assert.deepEqual(claimsOnDisk(run), { 'b7:1': '5:/dev/loop1' });
  assert.ok(!held.log.some((c) => c.startsWith('rmdir')), 'b7:1 is known to stay: no removal tried');

  // The last claimant goes while another device claims again: the removal of the directory and
  // the new claim in it must not interleave, whatever order the fs finishes things in.
  held.log.length = 0;
  const r1 = writer.removeLinkClaim(LINK, 'b7:1');
  const again = writer.writeLinkClaim(LINK, loop(2, 0));
  assert.deepEqual(writer.readLinkClaims(LINK), [loop(2, 0)]);
  await held.drain(Promise.all([r1, again]));
  assert.deepEqual(claimsOnDisk(run), { 'b7:2': '0:/dev/loop2' });
  assert.deepEqual(held.log, [
    `unlink ${CLAIM_DIR}/b7:1`,
    `rmdir ${CLAIM_DIR}`,
    `mkdir ${CLAIM_DIR}`,
    `symlink ${CLAIM_DIR}/b7:2`,
  ]);
  assert.equal(writer.pendingWrites, 0);
});

test('rewrites of one record keep their order, however the fs finishes them', async (t) => {
  const run = tempBase(t);
  const held = new HeldFs(run);
  const writer = new UdevDbWriter({ root: run, fs: held });
  const event = uevent('add', '/devices/virtual/block/loop0', 'block', {
    DEVNAME: 'loop0',
    MAJOR: '7',
    MINOR: '0',
  });
  const results = [1n, 2n, 3n].map((usec) =>
    writer.writeDevice(udevDbEntryFor(event, loop0Result(), { id: 'b7:0', usecInitialized: usec })),
  );
  assert.equal(
    writer.readRecord('b7:0')?.usecInitialized,
    '3',
    'the last queued record is read back at once',
  );
  await held.drain(Promise.all(results));
  const text = fs.readFileSync(path.join(run, 'data', 'b7:0'), 'utf8');
  assert.match(text, /^I:3$/m);
  assert.deepEqual(fs.readdirSync(path.join(run, 'data')), ['b7:0'], 'no temp file left');
});

for (const [name, layer] of [
  ['threadpool', nodeRunDirFs],
  ['synchronous (tmpfs)', syncRunDirFs],
] as const) {
  test(`the ${name} fs layer: claims, a record and tags written, removed, and the directories gone`, async (t) => {
    const run = tempBase(t);
    const writer = new UdevDbWriter({ root: run, fs: layer });
    const claims = [0, 1, 2].map((n) =>
      writer.writeLinkClaim(LINK, { id: `b7:${n}`, priority: n, devnode: `/dev/loop${n}` }),
    );
    const event = uevent('add', '/devices/virtual/block/loop0', 'block', {
      DEVNAME: 'loop0',
      MAJOR: '7',
      MINOR: '0',
    });
    const record = writer.writeDevice(
      udevDbEntryFor(event, loop0Result(), { id: 'b7:0', usecInitialized: 1n }),
    );
    for (const w of [...claims, record]) assert.deepEqual(await w, []);
    assert.deepEqual(claimsOnDisk(run), {
      'b7:0': '0:/dev/loop0',
      'b7:1': '1:/dev/loop1',
      'b7:2': '2:/dev/loop2',
    });
    assert.equal(fs.statSync(path.join(run, 'data', 'b7:0')).mode & 0o7777, 0o644);
    assert.equal(fs.statSync(path.join(run, 'tags', 'systemd', 'b7:0')).mode & 0o7777, 0o444);
    const removals = [0, 1, 2].map((n) => writer.removeLinkClaim(LINK, `b7:${n}`));
    removals.push(writer.removeDeviceDb('b7:0'));
    for (const w of removals) assert.deepEqual(await w, []);
    await writer.idle();
    assert.deepEqual(fs.readdirSync(path.join(run, 'links')), []);
    assert.deepEqual(fs.readdirSync(path.join(run, 'tags')), []);
    assert.deepEqual(fs.readdirSync(path.join(run, 'data')), []);
  });
}

test('runDirFsFor: synchronous calls on a tmpfs or ramfs only', () => {
  assert.equal(isMemoryFs(0x01021994), true);
  assert.equal(isMemoryFs(0x858458f6), true);
  assert.equal(isMemoryFs(0xef53), false, 'ext4');
  // A run dir not made yet is judged by its nearest existing parent.
  const shm = '/dev/shm';
  if (fs.existsSync(shm) && isMemoryFs(fs.statfsSync(shm).type)) {
    assert.equal(runDirFsFor(path.join(shm, 'triggerd-not-there', 'udev')), syncRunDirFs);
  }
});

const dev = (n: number, priority = 0): LinkOwner => ({ id: `b7:${n}`, devnode: `/dev/loop${n}`, priority });

test('arbitration with the claim writes still queued decides as if they were written', async (t) => {
  const base = tempBase(t);
  const devRoot = path.join(base, 'dev');
  const run = path.join(base, 'run');
  fs.mkdirSync(devRoot);
  for (const n of ['loop0', 'loop1', 'loop2']) fs.writeFileSync(path.join(devRoot, n), '');
  const held = new HeldFs(run);
  const links = new DevLinks({ db: new UdevDbWriter({ root: run, fs: held }), devRoot });
  const target = (): string | undefined => {
    try {
      return fs.readlinkSync(path.join(devRoot, LINK));
    } catch {
      return undefined;
    }
  };
  const written = [
    links.update(dev(0, 5), [LINK]).written,
    links.update(dev(2, 1), [LINK]).written,
    links.update(dev(1, 10), [LINK]).written,
  ];
  assert.equal(target(), '../../loop1');
  assert.equal(held.heldCount > 0, true, 'the claims are not written yet');
  written.push(links.remove(dev(1, 10), [LINK]).written);
  assert.equal(target(), '../../loop0', 'the best remaining claimant, from queued claims');
  await held.drain(Promise.all(written));
  for (const w of written) assert.deepEqual(await w, []);
  assert.deepEqual(claimsOnDisk(run), { 'b7:0': '5:/dev/loop0', 'b7:2': '1:/dev/loop2' });
  // A new instance reads the same from disk.
  const fresh = new DevLinks({ db: new UdevDbWriter({ root: run }), devRoot });
  await fresh.remove(dev(0, 5), [LINK]).written;
  assert.equal(target(), '../../loop2');
});

test('a failed write is returned, its knowledge dropped, and the next call writes again', async (t) => {
  const run = tempBase(t);
  const held = new HeldFs(run);
  const writer = new UdevDbWriter({ root: run, fs: held });
  const claim = { id: 'b7:0', priority: 0, devnode: '/dev/loop0' };
  let failures = 1;
  held.fail = (call) =>
    call.startsWith('symlink') && failures-- > 0 ? errnoError('EACCES', call) : undefined;
  const first = writer.writeLinkClaim(LINK, claim);
  await held.drain(first);
  const errors = await first;
  assert.equal(errors.length, 1);
  assert.match(errors[0]?.message ?? '', /EACCES/);
  assert.equal(writer.hasLinkClaim(LINK, claim), false, 'not believed written');
  assert.deepEqual(writer.readLinkClaims(LINK), []);
  const retry = writer.writeLinkClaim(LINK, claim);
  await held.drain(retry);
  assert.deepEqual(await retry, []);
  assert.deepEqual(claimsOnDisk(run), { 'b7:0': '0:/dev/loop0' });

  // The record: an ERR_UDEV_DB_WRITE error, and readRecord goes back to what the disk says.
  const event = uevent('add', '/devices/virtual/block/loop0', 'block', {
    DEVNAME: 'loop0',
    MAJOR: '7',
    MINOR: '0',
  });
  failures = 1;
  held.fail = (call) =>
    call.startsWith('create data') && failures-- > 0 ? errnoError('ENOSPC', call) : undefined;
  const entry = udevDbEntryFor(event, loop0Result(), { id: 'b7:0', usecInitialized: 7n });
  const record = writer.writeDevice(entry);
  await held.drain(record);
  const recordErrors = await record;
  assert.equal(recordErrors.length, 1);
  assert.equal((recordErrors[0] as NodeJS.ErrnoException).code, 'ERR_UDEV_DB_WRITE');
  assert.match(recordErrors[0]?.message ?? '', /cannot write .*data\/b7:0: .*ENOSPC/);
  assert.equal(writer.readRecord('b7:0'), undefined, 'nothing on disk, nothing believed');
  assert.deepEqual(fs.readdirSync(path.join(run, 'data')), [], 'the temp file is gone');
  const rewrite = writer.writeDevice(entry);
  await held.drain(rewrite);
  assert.deepEqual(await rewrite, []);
  assert.match(fs.readFileSync(path.join(run, 'data', 'b7:0'), 'utf8'), /^I:7$/m);
});

const noRunner: ProgramRunner = {
  spawn: () => {
    throw new Error('no programs in this test');
  },
};

function loopStage(
  base: string,
  held: HeldFs,
  logger = silentLogger(),
): { stage: RulesStage; rebroadcasts: boolean[]; run: string } {
  const devRoot = path.join(base, 'dev');
  const run = path.join(base, 'run');
  fs.mkdirSync(devRoot);
  fs.writeFileSync(path.join(devRoot, 'loop0'), '');
  const rebroadcasts: boolean[] = [];
  const stage = new RulesStage({
    rules: compileRules([
      {
        file: '/r.rules',
        text: 'SUBSYSTEM=="block", SYMLINK+="disk/by-label/shared", ENV{ID_FS_LABEL}="shared", TAG+="systemd"',
      },
    ]),
    host: new FakeRulesHost([]),
    runner: noRunner,
    logger,
    devRoot,
    udevRunDir: run,
    runDirFs: held,
    // Records whether the record was on disk when libudev listeners were told.
    rebroadcaster: {
      rebroadcast: () => {
        rebroadcasts.push(fs.existsSync(path.join(run, 'data', 'b7:0')));
        return true;
      },
    },
  });
  return { stage, rebroadcasts, run };
}

function loop0Add(): Uevent {
  return uevent('add', '/devices/virtual/block/loop0', 'block', {
    DEVNAME: 'loop0',
    DEVTYPE: 'disk',
    MAJOR: '7',
    MINOR: '0',
  });
}

test('an event is done only once its run-dir writes are: settle and libudev see the files', async (t) => {
  const base = tempBase(t);
  const held = new HeldFs(path.join(base, 'run'));
  const { stage, rebroadcasts, run } = loopStage(base, held);
  let done = false;
  const processing = stage.process(loop0Add(), undefined).then((p) => {
    done = true;
    return p;
  });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(done, false, 'writes held: not done');
  assert.ok(held.heldCount > 0);
  assert.equal(
    fs.readlinkSync(path.join(base, 'dev', 'disk/by-label/shared')),
    '../../loop0',
    '/dev at once',
  );
  assert.deepEqual(rebroadcasts, [], 'not told before the record is written');
  await held.drain(processing, 'oldest');
  assert.deepEqual(rebroadcasts, [true]);
  assert.match(fs.readFileSync(path.join(run, 'data', 'b7:0'), 'utf8'), /^E:ID_FS_LABEL=shared$/m);
  assert.equal(fs.readlinkSync(path.join(run, CLAIM_DIR, 'b7:0')), '0:/dev/loop0');
  assert.ok(fs.existsSync(path.join(run, 'tags', 'systemd', 'b7:0')));
});

test('a failed run-dir write is logged as before and retried by the next event', async (t) => {
  const base = tempBase(t);
  const held = new HeldFs(path.join(base, 'run'));
  const rec = recordingLogger();
  const { stage, run } = loopStage(base, held, rec.logger);
  let failures = 2;
  held.fail = (call) =>
    (call.startsWith('symlink links') || call.startsWith('create data')) && failures-- > 0
      ? errnoError('EACCES', call)
      : undefined;
  const first = stage.process(loop0Add(), undefined);
  await held.drain(first);
  const warnings = rec.lines.map((l) => String(l.msg));
  assert.ok(
    warnings.some((m) => /^symlink \/dev\/disk\/by-label\/shared: EACCES/.test(m)),
    warnings.join('\n'),
  );
  assert.ok(
    warnings.some((m) => /^device database: cannot write .*b7:0: .*EACCES/.test(m)),
    warnings.join('\n'),
  );
  const processed = await first;
  const change: Uevent = { ...loop0Add(), action: 'change' };
  const previous: DeviceRecord = {
    devpath: change.devpath,
    subsystem: change.subsystem,
    properties: processed.event.properties,
    tags: new Set(processed.decision.tags),
    devlinks: processed.decision.devlinks,
    seqnum: processed.event.seqnum,
    action: 'add',
  };
  const second = stage.process(change, previous);
  await held.drain(second);
  await second;
  assert.equal(fs.readlinkSync(path.join(run, CLAIM_DIR, 'b7:0')), '0:/dev/loop0');
  assert.match(fs.readFileSync(path.join(run, 'data', 'b7:0'), 'utf8'), /^E:ID_FS_LABEL=shared$/m);
});
