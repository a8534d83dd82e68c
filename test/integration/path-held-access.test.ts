// PathAccessed= with HoldAccess=yes on the real kernel: `cat lazyfile` (a child) blocks in open()
// until the triggered job (another child, never held itself) has written the file, then prints
// the new content; HoldTimeoutSec= answers allow or deny as HoldOnTimeout= says; a failed job
// answers as HoldOnTimeout= says; entries that do not match, and the daemon's own (asynchronous)
// reads, are never held; and when the process holding the fanotify group is killed (SIGKILL),
// the kernel releases the reader.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadFanotifyNative } from '../../src/native/fanotify-addon';
import {
  HeldAccessWatches,
  componentMatcher,
  descendsFrom,
  type HeldAccessEvent,
  type HeldAccessSpec,
  type HeldSpecWatch,
} from '../../src/events/path-held-access';

const ROOT = process.getuid?.() === 0 ? undefined : `needs root (running as uid ${process.getuid?.()})`;
const work = fs.mkdtempSync('/dev/shm/triggerd-held-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; out: string; ms: number }>;
}

function run(cmd: string, args: string[]): Run {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<{ code: number | null; out: string; ms: number }>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out, ms: performance.now() - t0 });
    }),
  );
  return { child, done };
}

async function until(what: string, probe: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function lazyDir(tag: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(work, `${tag}-`));
  const file = path.join(dir, 'lazyfile');
  fs.writeFileSync(file, 'placeholder\n');
  return { dir, file };
}

describe('componentMatcher', () => {
  test('*, ?, [...], [!...], literal dots, hidden files', () => {
    const cases: Array<[string, string, boolean]> = [
      ['lazy*', 'lazyfile', true],
      ['lazy*', 'xlazy', false],
      ['*.gpg', 'a.gpg', true],
      ['*.gpg', 'agpg', false],
      ['*', '.hidden', false],
      ['.*', '.hidden', true],
      ['f?le', 'file', true],
      ['f[ai]le', 'fale', true],
      ['f[!ai]le', 'fale', false],
      ['f[!ai]le', 'fole', true],
      ['a+b(c)', 'a+b(c)', true],
    ];
    for (const [glob, name, want] of cases)
      assert.equal(componentMatcher(glob)(name), want, `${glob} ${name}`);
  });
});

describe('PathAccessed= HoldAccess=yes', { skip: ROOT }, () => {
  const setup = (
    spec: Omit<HeldAccessSpec, 'kind'>,
    onTrigger: (event: HeldAccessEvent, watch: HeldSpecWatch, jobPids: Set<number>) => void,
  ): { source: HeldAccessWatches; watch: HeldSpecWatch; events: HeldAccessEvent[] } => {
    const jobPids = new Set<number>();
    const source = new HeldAccessWatches({
      fanotify: loadFanotifyNative(),
      isJobProcess: (pid) => descendsFrom(pid, jobPids),
    });
    const events: HeldAccessEvent[] = [];
    const watch: HeldSpecWatch = source.watch({ kind: 'PathAccessed', ...spec }, (e) => {
      events.push(e);
      onTrigger(e, watch, jobPids);
    });
    return { source, watch, events };
  };

  test('`cat lazyfile` blocks until the job has written it, then prints the new content', async () => {
    const { file } = lazyDir('lazy');
    let job: Run | undefined;
    const { source, watch, events } = setup(
      { path: file.replace(/file$/, '*'), hold: true, holdTimeoutMs: 10_000 },
      (_e, w, jobPids) => {
        // The job: takes a while, then writes the file (its own open is never held).
        job = run('sh', ['-c', `sleep 0.3; echo fresh content > ${file}; cat ${file} >/dev/null`]);
        if (job.child.pid !== undefined) jobPids.add(job.child.pid);
        void job.done.then((r) => w.release(r.code === 0 ? 'success' : 'failure'));
      },
    );
    try {
      const reader = run('cat', [file]);
      const result = await reader.done;
      assert.equal(result.out, 'fresh content\n');
      assert.equal(result.code, 0);
      assert.ok(result.ms >= 250, `the reader waited for the job (${Math.round(result.ms)} ms)`);
      assert.equal(events.length, 1);
      assert.equal(events[0].where, file);
      assert.equal(events[0].pid, reader.child.pid);
      assert.equal((await (job as Run).done).code, 0, 'the job was not held by its own accesses');
      assert.ok(source.stats.jobAccesses >= 1);
      assert.equal(watch.state().held, 0);
    } finally {
      source.close();
    }
  });

  test('readers arriving while the job runs wait for the same run (one trigger)', async () => {
    const { file } = lazyDir('many');
    let triggers = 0;
    const { source } = setup({ path: file, hold: true, holdTimeoutMs: 10_000 }, (_e, w, jobPids) => {
      triggers++;
      const job = run('sh', ['-c', `sleep 0.3; echo made > ${file}`]);
      if (job.child.pid !== undefined) jobPids.add(job.child.pid);
      void job.done.then(() => w.release('success'));
    });
    try {
      const readers = [run('cat', [file]), run('cat', [file]), run('cat', [file])];
      for (const r of readers) assert.equal((await r.done).out, 'made\n');
      assert.equal(triggers, 1);
    } finally {
      source.close();
    }
  });

  for (const verdict of ['allow', 'deny'] as const) {
    test(`HoldTimeoutSec= passes: HoldOnTimeout=${verdict}`, async () => {
      const { file } = lazyDir(`timeout-${verdict}`);
      const { source, watch } = setup(
        { path: file, hold: true, holdTimeoutMs: 300, holdOnTimeout: verdict },
        () => {
          // A job that never completes.
        },
      );
      try {
        const result = await run('cat', [file]).done;
        assert.ok(result.ms >= 250, `${Math.round(result.ms)} ms`);
        if (verdict === 'allow') assert.deepEqual([result.code, result.out], [0, 'placeholder\n']);
        else {
          assert.equal(result.code, 1);
          assert.match(result.out, /Operation not permitted/);
        }
        const state = watch.state();
        assert.equal(verdict === 'allow' ? state.allowedOnTimeout : state.deniedOnTimeout, 1);
      } finally {
        source.close();
      }
    });
  }

  test('a failed job answers as HoldOnTimeout= says (deny)', async () => {
    const { file } = lazyDir('failed');
    const { source } = setup(
      { path: file, hold: true, holdTimeoutMs: 10_000, holdOnTimeout: 'deny' },
      (_e, w) => {
        setTimeout(() => w.release('failure'), 50);
      },
    );
    try {
      const result = await run('cat', [file]).done;
      assert.equal(result.code, 1);
      assert.match(result.out, /Operation not permitted/);
    } finally {
      source.close();
    }
  });

  test('other entries and the daemon’s own asynchronous reads are never held; close() allows the rest', async () => {
    const { dir, file } = lazyDir('others');
    fs.writeFileSync(path.join(dir, 'other'), 'other\n');
    const { source, watch, events } = setup({ path: file, hold: true, holdTimeoutMs: 0 }, () => {
      // never released by a job
    });
    try {
      assert.equal((await run('cat', [path.join(dir, 'other')]).done).out, 'other\n');
      assert.equal(await fs.promises.readFile(file, 'utf8'), 'placeholder\n');
      assert.equal(events.length, 0);
      const held = run('cat', [file]);
      await until('the held reader', () => watch.state().held === 1);
      source.close();
      assert.equal((await held.done).out, 'placeholder\n');
    } finally {
      source.close();
    }
  });

  test('the holder is killed (SIGKILL): the kernel releases the reader', async () => {
    const { file } = lazyDir('killed');
    const module = path.resolve(__dirname, '..', '..', 'src', 'events', 'path-held-access.js');
    const addon = path.resolve(__dirname, '..', '..', 'src', 'native', 'fanotify-addon.js');
    const script = `
      const { HeldAccessWatches } = require(${JSON.stringify(module)});
      const { loadFanotifyNative } = require(${JSON.stringify(addon)});
      const source = new HeldAccessWatches({ fanotify: loadFanotifyNative() });
      source.watch({ kind: 'PathAccessed', path: ${JSON.stringify(file)}, hold: true, holdTimeoutMs: 0 }, () => console.log('held'));
      console.log('ready');
    `;
    const holder = run(process.execPath, ['-e', script]);
    let out = '';
    holder.child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await until('the holder', () => out.includes('ready'), 5000);
    const reader = run('cat', [file]);
    await until('the reader held', () => out.includes('held'), 5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(reader.child.exitCode, null, 'still held');
    holder.child.kill('SIGKILL');
    const result = await reader.done;
    assert.deepEqual([result.code, result.out], [0, 'placeholder\n']);
    await holder.done;
  });
});
