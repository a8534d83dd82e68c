// The [X-Triggerd] path kinds under a private triggerd (fanotify, so root): `cat lazyfile` in a
// child blocks in open(2) until the oneshot that PathAccessed= HoldAccess=yes triggered has written
// the file, then prints the new content, while `triggerctl status` shows the mechanism and the
// held opener; PathChangedRecursive= fires on a change deep in a tree made after the unit started,
// with TRIGGER_PATH naming it; and examples/lazy.* as shipped (the README's `npm start`) work.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import { REPO_ROOT, TRIGGERCTL, run, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';

const skip =
  (process.getuid?.() === 0 ? undefined : `needs root (running as uid ${process.getuid?.()})`) ??
  (['triggerd_inotify.node', 'triggerd_fanotify.node'].every((a) =>
    addonCandidates(a).some((f) => fs.existsSync(f)),
  )
    ? undefined
    : 'needs the triggerd_inotify and triggerd_fanotify addons (npm install builds them)');

interface Status {
  active: string;
  sub: string;
  statusLines: string[];
}

const children = new Set<ChildProcess>();

/** A child that reads `file`; resolves with its output, exit code and how long it took. */
function reader(file: string): {
  child: ChildProcess;
  done: Promise<{ code: number | null; out: string; ms: number }>;
} {
  const t0 = performance.now();
  const child = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'pipe'] });
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

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('[X-Triggerd] path kinds under triggerd', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-path-fanotify-'));
  const units = path.join(dir, 'units');
  const work = path.join(dir, 'work');
  const lazy = path.join(work, 'lazy', 'data');
  let d: RunningDaemon;
  let client: ControlClient;
  const unit = (name: string, text: string): void => fs.writeFileSync(path.join(units, name), text);
  const status = (name: string) => client.request('unit-status', { name, lines: 20 }) as Promise<Status>;

  before(async () => {
    fs.mkdirSync(units);
    fs.mkdirSync(path.join(work, 'lazy'), { recursive: true });
    fs.writeFileSync(lazy, '');
    unit(
      'lazy.path',
      `[Path]\nMakeDirectory=yes\n[X-Triggerd]\nPathAccessed=${work}/lazy/d*\nHoldAccess=yes\nHoldTimeoutSec=10\n` +
        '[Install]\nWantedBy=multi-user.target\n',
    );
    // The job re-reads what it wrote: its own opens are never held.
    unit(
      'lazy.service',
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 0.4; echo "fresh for $$TRIGGER_PATH" > ${lazy}; cat ${lazy} >/dev/null'\n`,
    );
    unit(
      'tree.path',
      `[X-Triggerd]\nPathChangedRecursive=${work}/tree\n[Install]\nWantedBy=multi-user.target\n`,
    );
    unit(
      'tree.service',
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo "$$TRIGGER_PATH" >> ${work}/tree-runs'\n`,
    );
    fs.mkdirSync(path.join(units, 'multi-user.target.wants'));
    for (const n of ['lazy.path', 'tree.path'])
      fs.symlinkSync(path.join(units, n), path.join(units, 'multi-user.target.wants', n));
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '5', '--log-level', 'info']);
    client = await d.client();
  });

  after(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('`cat lazyfile` blocks until the triggered oneshot wrote it, then prints the new content', async () => {
    await waitFor('lazy.path waiting', async () =>
      (await status('lazy.path')).sub === 'waiting' ? true : undefined,
    );
    const idle = (await status('lazy.path')).statusLines.join('\n');
    assert.match(idle, new RegExp(`PathAccessed=${work}/lazy/d\\* \\(waits for an open, holds the opener`));
    assert.match(idle, /by fanotify FAN_OPEN_PERM on .*, held/);
    const r = reader(lazy);
    // While the job runs, status names the held opener.
    const held = await waitFor('the held opener in status', async () => {
      const text = (await status('lazy.path')).statusLines.join('\n');
      return /1 opener held/.test(text) ? text : undefined;
    });
    assert.match(held, new RegExp(`Last: .*PathAccessed=${lazy} opened by pid ${r.child.pid}`));
    const result = await r.done;
    assert.equal(result.code, 0, result.out);
    assert.equal(result.out, `fresh for ${lazy}\n`);
    assert.ok(result.ms >= 350, `the reader waited for the job (${Math.round(result.ms)} ms)`);
    const after = (await status('lazy.path')).statusLines.join('\n');
    assert.match(after, /0 openers held|by fanotify FAN_OPEN_PERM on [^;)]*, held\)/);
    assert.doesNotMatch(after, /[1-9] openers? held/);
  });

  test('PathChangedRecursive=: a change deep in a tree made after the unit started triggers', async () => {
    await waitFor('tree.path waiting', async () =>
      (await status('tree.path')).sub === 'waiting' ? true : undefined,
    );
    assert.match(
      (await status('tree.path')).statusLines.join('\n'),
      new RegExp(`PathChangedRecursive=${work}/tree \\(waits for a change anywhere below.*fanotify`),
    );
    // The tree does not exist yet: made now, in steps, and then a file deep inside it.
    const deep = path.join(work, 'tree', 'a', 'b', 'c', 'd');
    fs.mkdirSync(deep, { recursive: true });
    await waitFor('the runs the tree creation caused', async () =>
      (await status('tree.path')).sub === 'waiting' && fs.existsSync(path.join(work, 'tree-runs'))
        ? true
        : undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(path.join(work, 'tree-runs'), { force: true });
    fs.writeFileSync(path.join(deep, 'deep-file'), 'x');
    const runs = await waitFor('a run for the deep change', () => {
      try {
        const text = fs.readFileSync(path.join(work, 'tree-runs'), 'utf8');
        return text.length > 0 ? text : undefined;
      } catch {
        return undefined;
      }
    });
    assert.match(runs, new RegExp(`^${deep}(/deep-file)?\\n`));
  });
});

describe('examples/lazy.path as shipped', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-lazy-example-'));
  const units = path.join(dir, 'units');
  const data = '/run/triggerd-example/lazy/data';
  const madeExampleDir = !fs.existsSync('/run/triggerd-example');
  let d: RunningDaemon;

  before(async () => {
    fs.mkdirSync(path.join(units, 'multi-user.target.wants'), { recursive: true });
    for (const n of ['lazy.path', 'lazy.service', 'lazy-setup.service'])
      fs.copyFileSync(path.join(REPO_ROOT, 'examples', n), path.join(units, n));
    fs.symlinkSync('../lazy.path', path.join(units, 'multi-user.target.wants', 'lazy.path'));
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '5', '--log-level', 'info']);
  });

  after(async () => {
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.dirname(data), { recursive: true, force: true });
    if (madeExampleDir) fs.rmSync('/run/triggerd-example', { recursive: true, force: true });
  });

  test('the first `cat` waits for lazy.service and prints what it produced; the next one is quick', async () => {
    const ctl = (...args: string[]) =>
      run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
    await waitFor('lazy.path waiting', async () =>
      /Active: active \(waiting\)/.test((await ctl('status', 'lazy.path')).stdout) ? true : undefined,
    );
    const first = await reader(data).done;
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, new RegExp(`^produced at \\d\\d:\\d\\d:\\d\\d on first read of ${data}\\n$`));
    assert.ok(first.ms >= 900, `the reader waited for the job (${Math.round(first.ms)} ms)`);
    const second = await reader(data).done;
    assert.equal(second.out, first.out);
    assert.ok(second.ms < first.ms, `${Math.round(second.ms)} ms`);
    const s = await ctl('status', 'lazy.path');
    assert.match(s.stdout, /PathAccessed=\/run\/triggerd-example\/lazy\/data .*fanotify/);
  });
});
