// Path units on the real kernel, on tmpfs (/dev/shm) and on a loop-mounted ext4: each condition
// triggers on a real change; parents created, deleted and renamed under the watch; a file replaced
// by a directory; a dangling symlink whose target appears; permission denied (the registry run as
// uid 65534 in a child); IN_Q_OVERFLOW forced with a lowered fs.inotify.max_queued_events
// (restored) and the final trigger still delivered; a change during a run latched and run once
// after; 1,000 path units on one directory sharing one inotify instance; 100,000 creations without
// a crash, a missed final trigger or unbounded memory. In-process (tests/helpers/path-harness.ts);
// the daemon-level test (examples/spool.path under triggerd) is in path-daemon.test.ts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadInotifyNative, type NativeInotify } from '../../src/native/inotify-addon';
import { PathHarness, sleep, until } from '../helpers/path-harness';
import { silentLogger } from '../helpers/logger';
import { addonCandidates } from '../../src/native/addon';

const MAX_QUEUED = '/proc/sys/fs/inotify/max_queued_events';
const hasAddon = addonCandidates('triggerd_inotify.node').some((f) => fs.existsSync(f));
const skipAll = hasAddon ? undefined : 'needs the triggerd_inotify addon (npm install builds it)';
const isRoot = process.getuid?.() === 0;
const hasProgram = (p: string): boolean => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;

interface FsUnderTest {
  name: string;
  /** A fresh directory on it. */
  dir(): string;
  skip?: string;
}

const tmpfsRoot = fs.mkdtempSync(path.join('/dev/shm', 'triggerd-paths-'));
const ext4 = {
  image: '',
  loop: '',
  mnt: '',
  error: undefined as string | undefined,
};

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function setUpExt4(): void {
  if (!isRoot) {
    ext4.error = `needs root for losetup and mount (running as uid ${process.getuid?.()})`;
    return;
  }
  if (!hasProgram('losetup') || !hasProgram('mkfs.ext4')) {
    ext4.error = 'needs losetup (util-linux) and mkfs.ext4 (e2fsprogs)';
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-paths-ext4-'));
  ext4.image = path.join(work, 'fs.ext4');
  ext4.mnt = path.join(work, 'mnt');
  fs.mkdirSync(ext4.mnt);
  fs.writeFileSync(ext4.image, '');
  fs.truncateSync(ext4.image, 64 * 1024 * 1024);
  try {
    sh('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', ext4.image]);
    ext4.loop = sh('losetup', ['--find', '--show', ext4.image]);
    sh('mount', ['-t', 'ext4', ext4.loop, ext4.mnt]);
  } catch (err) {
    ext4.error = (err as Error).message;
  }
}

function tearDownExt4(): void {
  if (ext4.mnt !== '') spawnSync('umount', [ext4.mnt]);
  if (ext4.loop !== '') spawnSync('losetup', ['-d', ext4.loop]);
  if (ext4.image !== '') fs.rmSync(path.dirname(ext4.image), { recursive: true, force: true });
}

let seq = 0;
const fileSystems: FsUnderTest[] = [
  {
    name: 'tmpfs',
    dir: () => fs.mkdtempSync(path.join(tmpfsRoot, `t${seq++}-`)),
  },
  {
    name: 'ext4 on a loop device',
    dir: () => fs.mkdtempSync(path.join(ext4.mnt, `t${seq++}-`)),
    get skip() {
      return ext4.error;
    },
  },
];

describe('path units on the real kernel', { skip: skipAll }, () => {
  let native: NativeInotify;
  let h: PathHarness;

  before(() => {
    native = loadInotifyNative();
    setUpExt4();
  });
  after(() => {
    tearDownExt4();
    fs.rmSync(tmpfsRoot, { recursive: true, force: true });
  });

  const fresh = (): PathHarness => {
    h?.close();
    h = new PathHarness(native, silentLogger());
    return h;
  };
  after(() => h?.close());

  for (const fsut of fileSystems) {
    describe(fsut.name, () => {
      test('each condition triggers on a real change', async (t) => {
        if (fsut.skip !== undefined) return t.skip(fsut.skip);
        const d = fsut.dir();
        const hh = fresh();
        fs.writeFileSync(path.join(d, 'changed'), 'a');
        fs.writeFileSync(path.join(d, 'modified'), 'a');
        fs.mkdirSync(path.join(d, 'spool'));
        // Level conditions start their unit again after each run while they hold: slow runs.
        hh.add('exists.path', `[Path]\nPathExists=${d}/flag\n`, { jobMs: 200 });
        hh.add('glob.path', `[Path]\nPathExistsGlob=${d}/in/*.job\n`, { jobMs: 200 });
        hh.add('changed.path', `[Path]\nPathChanged=${d}/changed\n`);
        hh.add('modified.path', `[Path]\nPathModified=${d}/modified\n`);
        hh.add('notempty.path', `[Path]\nDirectoryNotEmpty=${d}/spool\n`, {
          job: () => {
            for (const f of fs.readdirSync(path.join(d, 'spool'))) fs.rmSync(path.join(d, 'spool', f));
          },
        });
        await sleep(20);
        assert.equal(hh.runs.length, 0, 'nothing holds yet');
        fs.writeFileSync(path.join(d, 'flag'), '');
        await until('PathExists', () => hh.runsOf('exists.path').length >= 1);
        fs.mkdirSync(path.join(d, 'in'));
        fs.writeFileSync(path.join(d, 'in', 'not-a-match.txt'), '');
        await sleep(30);
        assert.equal(hh.runsOf('glob.path').length, 0);
        fs.writeFileSync(path.join(d, 'in', 'a.job'), '');
        await until('PathExistsGlob', () => hh.runsOf('glob.path').length >= 1);
        assert.equal(hh.runsOf('glob.path')[0]?.path, `${d}/in/a.job`);
        fs.writeFileSync(path.join(d, 'changed'), 'b');
        await until('PathChanged', () => hh.runsOf('changed.path').length === 1);
        // PathModified fires on a write before the writer closes the file; PathChanged would not.
        const fd = fs.openSync(path.join(d, 'modified'), 'a');
        try {
          fs.writeSync(fd, 'more');
          await until('PathModified', () => hh.runsOf('modified.path').length === 1);
        } finally {
          fs.closeSync(fd);
        }
        fs.writeFileSync(path.join(d, 'spool', 'job'), 'x');
        await until('DirectoryNotEmpty', () => hh.runsOf('notempty.path').length === 1);
        await sleep(30);
        assert.equal(hh.runsOf('notempty.path').length, 1, 'the job emptied it: no second run');
        fs.writeFileSync(path.join(d, 'spool', '.hidden'), 'x');
        fs.writeFileSync(path.join(d, 'spool', 'backup~'), 'x');
        await sleep(30);
        assert.equal(hh.runsOf('notempty.path').length, 1, 'hidden and backup files do not count');
      });

      test('parents created, deleted and renamed under the watch', async (t) => {
        if (fsut.skip !== undefined) return t.skip(fsut.skip);
        const d = fsut.dir();
        const hh = fresh();
        const unit = hh.add('deep.path', `[Path]\nPathExists=${d}/p/q/file\n`, { jobMs: 50 });
        fs.mkdirSync(path.join(d, 'p'));
        fs.mkdirSync(path.join(d, 'p', 'q'));
        await sleep(20);
        assert.match(unit.statusLines()[0] ?? '', /missing: watching .*\/p\/q for file/);
        fs.writeFileSync(path.join(d, 'p', 'q', 'file'), '');
        await until('the file under new parents', () => hh.runs.length === 1);
        await until('the run to end', () => unit.state === 'waiting' || hh.runs.length > 1);
        // Still there: level semantics start it again after each run; remove it to stop that.
        fs.rmSync(path.join(d, 'p'), { recursive: true });
        await sleep(50);
        const afterDelete = hh.runs.length;
        // Recreated from scratch: watches walk down again.
        fs.mkdirSync(path.join(d, 'p', 'q'), { recursive: true });
        fs.writeFileSync(path.join(d, 'p', 'q', 'file'), '');
        await until('the file after the parents were recreated', () => hh.runs.length > afterDelete);
        // Renamed away: no longer there; renamed back: there again.
        fs.renameSync(path.join(d, 'p'), path.join(d, 'p2'));
        await sleep(50);
        const afterRename = hh.runs.length;
        await sleep(50);
        assert.equal(hh.runs.length, afterRename, 'renamed away: nothing holds');
        assert.match(unit.statusLines()[0] ?? '', new RegExp(`missing: watching ${d} for p`));
        fs.renameSync(path.join(d, 'p2'), path.join(d, 'p'));
        await until('the file after the parent was renamed back', () => hh.runs.length > afterRename);
        fs.rmSync(path.join(d, 'p'), { recursive: true });
      });

      test('a file replaced by a directory, and a dangling symlink whose target appears', async (t) => {
        if (fsut.skip !== undefined) return t.skip(fsut.skip);
        const d = fsut.dir();
        const hh = fresh();
        fs.writeFileSync(path.join(d, 'x'), 'file');
        const changed = hh.add('x.path', `[Path]\nPathChanged=${d}/x\n`);
        fs.symlinkSync(path.join(d, 'later', 'target'), path.join(d, 'link'));
        hh.add('link.path', `[Path]\nPathExists=${d}/link\n`, { jobMs: 10_000 });
        await sleep(20);
        assert.equal(hh.runs.length, 0, 'a dangling link does not exist (access(F_OK))');
        fs.rmSync(path.join(d, 'x'));
        fs.mkdirSync(path.join(d, 'x'));
        await until('the replacement', () => hh.runsOf('x.path').length >= 1);
        await until('x.path waiting', () => changed.state === 'waiting');
        const n = hh.runsOf('x.path').length;
        fs.writeFileSync(path.join(d, 'x', 'inner'), '');
        await until('a change inside the new directory', () => hh.runsOf('x.path').length > n);
        fs.mkdirSync(path.join(d, 'later'));
        fs.writeFileSync(path.join(d, 'later', 'target'), '');
        await until('the link target', () => hh.runsOf('link.path').length === 1);
        assert.equal(hh.runsOf('link.path')[0]?.path, `${d}/link`);
        fs.rmSync(path.join(d, 'later'), { recursive: true });
      });

      test('a change during a run is latched and runs once after it', async (t) => {
        if (fsut.skip !== undefined) return t.skip(fsut.skip);
        const d = fsut.dir();
        const hh = fresh();
        fs.writeFileSync(path.join(d, 'conf'), '0');
        const unit = hh.add('conf.path', `[Path]\nPathChanged=${d}/conf\n`, { jobMs: 300 });
        fs.writeFileSync(path.join(d, 'conf'), '1');
        await until('the first run', () => hh.runs.length === 1);
        for (let i = 2; i < 6; i++) {
          fs.writeFileSync(path.join(d, 'conf'), String(i));
          await sleep(10);
        }
        await until('the latch', () => unit.pending !== undefined);
        assert.equal(hh.runs.length, 1, 'not while it runs');
        await until('the latched run', () => hh.runs.length === 2, 3000);
        assert.match(hh.runs[1]?.why ?? '', /latched while the unit ran/);
        await sleep(500);
        assert.equal(hh.runs.length, 2, 'exactly one more run for four changes');
        // The systemd behaviour when asked for: the change during the run is lost.
        const sd = hh.add('sd.path', `[Path]\nPathChanged=${d}/conf\n[X-Triggerd]\nLatchWhileRunning=no\n`, {
          jobMs: 200,
        });
        fs.writeFileSync(path.join(d, 'conf'), 'a');
        await until('sd first run', () => hh.runsOf('sd.path').length === 1);
        await sleep(20);
        fs.writeFileSync(path.join(d, 'conf'), 'b');
        await until('sd waiting', () => sd.state === 'waiting', 2000);
        await sleep(100);
        assert.equal(hh.runsOf('sd.path').length, 1);
      });
    });
  }

  test(
    'permission denied: as uid 65534 the watch waits, and completes when the mode allows it',
    {
      skip: isRoot
        ? undefined
        : `needs root to make a directory uid 65534 cannot read (uid ${process.getuid?.()})`,
    },
    async () => {
      fs.chmodSync(tmpfsRoot, 0o755);
      const d = fs.mkdtempSync(path.join(tmpfsRoot, 'perm-'));
      fs.chmodSync(d, 0o755);
      const priv = path.join(d, 'private');
      fs.mkdirSync(priv, { mode: 0o700 });
      fs.chmodSync(priv, 0o700);
      const script = path.join(d, 'child.js');
      const harness = path.resolve(__dirname, '..', 'helpers', 'path-harness.js');
      const addon = path.resolve(__dirname, '..', '..', 'src', 'native', 'inotify-addon.js');
      const pino = require.resolve('pino');
      fs.writeFileSync(
        script,
        `const { PathHarness, until } = require(${JSON.stringify(harness)});
const { loadInotifyNative } = require(${JSON.stringify(addon)});
const h = new PathHarness(loadInotifyNative(), require(${JSON.stringify(pino)})({ level: 'silent' }));
const u = h.add('p.path', '[Path]\\nPathExists=${priv}/file\\n');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
out({ phase: 'armed', status: u.statusLines()[0], runs: h.runs.length });
process.stdin.on('data', async () => {
  try {
    await until('the file', () => h.runs.length > 0, 5000);
    out({ phase: 'triggered', status: u.statusLines()[0], runs: h.runs.length });
  } catch (e) { out({ phase: 'timeout', status: u.statusLines()[0] }); }
  h.close(); process.exit(0);
});`,
      );
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, [script], {
        uid: 65534,
        gid: 65534,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines: Record<string, unknown>[] = [];
      let buf = '';
      child.stdout.on('data', (c: Buffer) => {
        buf += c.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
        }
      });
      try {
        await until('the child armed', () => lines.length === 1, 10_000);
        assert.equal(lines[0]?.runs, 0);
        assert.match(String(lines[0]?.status), /cannot watch .*private.*EACCES/);
        fs.writeFileSync(path.join(priv, 'file'), '');
        await sleep(50);
        fs.chmodSync(priv, 0o755);
        child.stdin.write('go\n');
        await until('the child done', () => lines.length === 2, 10_000);
        assert.equal(lines[1]?.phase, 'triggered', JSON.stringify(lines[1]));
      } finally {
        if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        fs.rmSync(d, { recursive: true, force: true });
      }
    },
  );

  const canLower = (() => {
    try {
      fs.accessSync(MAX_QUEUED, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  test(
    'IN_Q_OVERFLOW (max_queued_events lowered to 8, then restored): the lost change still triggers',
    { skip: canLower ? undefined : `cannot write ${MAX_QUEUED} (needs root in the initial user namespace)` },
    async () => {
      const d = fs.mkdtempSync(path.join(tmpfsRoot, 'overflow-'));
      fs.mkdirSync(path.join(d, 'noise'));
      fs.writeFileSync(path.join(d, 'conf'), '0');
      const saved = fs.readFileSync(MAX_QUEUED, 'utf8').trim();
      let hh: PathHarness;
      try {
        // The limit is taken when the instance is created: the registry opens it on the first watch.
        fs.writeFileSync(MAX_QUEUED, '8');
        hh = fresh();
        hh.add('noise.path', `[Path]\nPathChanged=${d}/noise\n`, { jobMs: 10 });
        hh.add('conf.path', `[Path]\nPathChanged=${d}/conf\n`);
      } finally {
        fs.writeFileSync(MAX_QUEUED, saved);
      }
      assert.equal(fs.readFileSync(MAX_QUEUED, 'utf8').trim(), saved);
      // Fill the queue (the loop does not read meanwhile), then change conf: its record is dropped.
      for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(d, 'noise', `f${i}`), '');
      fs.writeFileSync(path.join(d, 'conf'), '1');
      await until('the conf trigger', () => hh.runsOf('conf.path').length === 1);
      assert.ok(hh.watches.stats.overflows >= 1, 'the queue overflowed');
      assert.match(hh.runsOf('conf.path')[0]?.why ?? '', /overflow/);
      await until('the noise trigger', () => hh.runsOf('noise.path').length >= 1);
    },
  );

  test('1,000 path units on one directory share one inotify instance and a handful of watches', async () => {
    const d = fs.mkdtempSync(path.join(tmpfsRoot, 'many-'));
    const hh = fresh();
    // Runs that last: each unit starts its job once.
    const long = { jobMs: 60_000 };
    for (let i = 0; i < 500; i++) hh.add(`n${i}.path`, `[Path]\nDirectoryNotEmpty=${d}\n`, long);
    for (let i = 0; i < 500; i++) hh.add(`c${i}.path`, `[Path]\nPathChanged=${d}/file${i % 10}\n`, long);
    assert.equal(hh.watches.stats.instancesOpened, 1);
    const depth = d.split('/').length;
    assert.ok(hh.watches.wdCount() <= depth + 1, `wds: ${hh.watches.wdCount()}`);
    fs.writeFileSync(path.join(d, 'file3'), '');
    await until(
      'all 500 DirectoryNotEmpty units',
      () => new Set(hh.runs.filter((r) => r.unit.startsWith('n')).map((r) => r.unit)).size === 500,
    );
    await until(
      'the 50 PathChanged units on file3',
      () => hh.runs.filter((r) => r.unit.startsWith('c')).length === 50,
    );
    fs.rmSync(path.join(d, 'file3'));
    assert.ok(hh.watches.wdCount() <= depth + 2, `wds: ${hh.watches.wdCount()}`);
    hh.close();
    assert.equal(hh.watches.wdCount(), 0);
  });

  test('100,000 creations: no crash, the final trigger is not missed, memory bounded', async () => {
    const d = fs.mkdtempSync(path.join(tmpfsRoot, 'burst-'));
    const hh = fresh();
    fs.mkdirSync(path.join(d, 'spool'));
    hh.add('burst.path', `[Path]\nPathChanged=${d}/spool\n`, { jobMs: 5 });
    (global as { gc?: () => void }).gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const N = 100_000;
    let last = 0;
    for (let i = 0; i < N; i += 1000) {
      for (let j = i; j < i + 1000; j++) fs.writeFileSync(path.join(d, 'spool', `f${j}`), '');
      last = performance.now();
      peak = Math.max(peak, process.memoryUsage().rss);
      await new Promise((r) => setImmediate(r));
    }
    // The final trigger: a run that started after the last creation.
    await until(
      'a run after the last creation',
      () => hh.runsOf('burst.path').some((r) => r.at >= last),
      10_000,
    );
    peak = Math.max(peak, process.memoryUsage().rss);
    const growthMB = (peak - rss0) / 1024 / 1024;
    assert.ok(growthMB < 150, `RSS grew ${growthMB.toFixed(1)} MB`);
    fs.rmSync(path.join(d, 'spool'), { recursive: true });
  });
});
