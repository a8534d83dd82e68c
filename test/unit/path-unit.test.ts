// The .path unit on the fakes of test/helpers/path-rig.ts: a fake watch source (tests deliver coalesced events by hand), checks
// answered from a table the test edits, a triggered unit whose state the test moves, and virtual
// time for the trigger limit. Config: [Path] parsed from text, with its load-time refusals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUnitText } from '../../src/units/unit-loader';
import type { PathCheck } from '../../src/units/path-checks';
import type { PathHost } from '../../src/units/path';
import { pathRig } from '../helpers/path-rig';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

const exists = (holds = true): PathCheck => ({ exists: holds, holds });
const file = (snapshot: string): PathCheck => ({ exists: snapshot !== '', holds: false, snapshot });

describe('[Path] configuration', () => {
  test('keys, defaults and the implied Before=', () => {
    const f = parseUnitText(
      'spool.path',
      '[Path]\nPathExists=/run/a\nPathExistsGlob=/run/b/*.job\nPathChanged=/etc//conf/\nPathModified=/var/log/x\n' +
        'DirectoryNotEmpty=/run/spool\nUnit=worker.service\nMakeDirectory=yes\nDirectoryMode=0700\n' +
        'TriggerLimitIntervalSec=5s\nTriggerLimitBurst=7\n[X-Triggerd]\nLatchWhileRunning=no\n',
      '/u/spool.path',
    );
    assert.equal(f.loadState, 'loaded', JSON.stringify(f.diagnostics));
    const p = f.path;
    assert.ok(p !== undefined);
    assert.deepEqual(
      p.specs.map((s) => `${s.kind}=${s.path}@${s.source.line}`),
      [
        'PathExists=/run/a@2',
        'PathExistsGlob=/run/b/*.job@3',
        'PathChanged=/etc/conf@4',
        'PathModified=/var/log/x@5',
        'DirectoryNotEmpty=/run/spool@6',
      ],
    );
    assert.equal(p.unit, 'worker.service');
    assert.equal(p.makeDirectory, true);
    assert.equal(p.directoryMode, 0o700);
    assert.equal(p.triggerLimitIntervalMs, 5000);
    assert.equal(p.triggerLimitBurst, 7);
    assert.equal(p.latchWhileRunning, false);
    assert.ok(f.unit.dependencies.Before.includes('worker.service'));
    const d = parseUnitText('x.path', '[Path]\nPathChanged=/a\n', '/u/x.path');
    assert.equal(d.path?.latchWhileRunning, true);
    assert.equal(d.path?.makeDirectory, false);
    assert.equal(d.path?.directoryMode, 0o755);
    assert.ok(d.unit.dependencies.Before.includes('x.service'));
  });

  test('an empty assignment resets the watch list', () => {
    const f = parseUnitText('x.path', '[Path]\nPathExists=/a\nPathChanged=\nPathModified=/b\n', '/u/x.path');
    assert.deepEqual(
      f.path?.specs.map((s) => s.path),
      ['/b'],
    );
  });

  const refusals: [string, string, RegExp][] = [
    ['relative path', '[Path]\nPathExists=run/a\n', /\/u\/x\.path:2: .*not absolute/],
    ['a .. component', '[Path]\nPathChanged=/run/../etc\n', /\/u\/x\.path:2: .*not normalized/],
    ['the root directory', '[Path]\nDirectoryNotEmpty=/\n', /\/u\/x\.path:2: .*root directory/],
    ['no path at all', '[Path]\nUnit=y.service\n', /\/u\/x\.path:1: path unit has no path setting/],
    [
      'Unit= naming itself',
      '[Path]\nPathExists=/a\nUnit=x.path\n',
      /\/u\/x\.path:3: .*cannot trigger another path unit/,
    ],
    ['Unit= a template', '[Path]\nPathExists=/a\nUnit=y@.service\n', /\/u\/x\.path:3: .*template/],
    [
      'a bad LatchWhileRunning=',
      '[Path]\nPathExists=/a\n[X-Triggerd]\nLatchWhileRunning=maybe\n',
      /\/u\/x\.path:4: .*LatchWhileRunning=maybe/,
    ],
  ];
  for (const [what, text, message] of refusals) {
    test(`refused at load with file:line: ${what}`, () => {
      const f = parseUnitText('x.path', text, '/u/x.path');
      assert.equal(f.loadState, 'bad-setting');
      const errors = f.diagnostics.filter((d) => d.severity === 'error');
      assert.ok(
        errors.some((d) => message.test(d.message)),
        JSON.stringify(errors.map((d) => d.message)),
      );
    });
  }

  test('glob characters in a literal path warn', () => {
    const f = parseUnitText('x.path', '[Path]\nPathExists=/run/*.x\n', '/u/x.path');
    assert.equal(f.loadState, 'loaded');
    assert.ok(f.diagnostics.some((d) => d.severity === 'warning' && /PathExistsGlob=/.test(d.message)));
  });

  test('[X-Triggerd] PathChangedRecursive= and PathAccessed= with the hold settings on the entry', () => {
    const f = parseUnitText(
      'lazy.path',
      '[Path]\nPathChanged=/etc/conf\n[X-Triggerd]\nPathChangedRecursive=/srv/tree/\nPathAccessed=/run/lazy/*.gpg\n' +
        'PathAccessed=/run/other/data\nHoldAccess=yes\nHoldTimeoutSec=10s\nHoldOnTimeout=deny\n',
      '/u/lazy.path',
    );
    assert.equal(f.loadState, 'loaded', JSON.stringify(f.diagnostics));
    assert.deepEqual(
      f.path?.specs.map((s) => `${s.kind}=${s.path}@${s.source.line}`),
      [
        'PathChanged=/etc/conf@2',
        'PathChangedRecursive=/srv/tree@4',
        'PathAccessed=/run/lazy/*.gpg@5',
        'PathAccessed=/run/other/data@6',
      ],
    );
    const accessed = f.path?.specs.filter((s) => s.kind === 'PathAccessed') ?? [];
    for (const s of accessed) {
      assert.equal(s.hold, true);
      assert.equal(s.holdTimeoutMs, 10_000);
      assert.equal(s.holdOnTimeout, 'deny');
    }
    assert.equal(f.path?.specs.find((s) => s.kind === 'PathChangedRecursive')?.hold, undefined);
    assert.equal(
      f.diagnostics.filter((d) => d.severity === 'error' || d.severity === 'warning').length,
      0,
      JSON.stringify(f.diagnostics),
    );
    // Defaults, an [X-Triggerd]-only unit, and an empty assignment dropping the lines before it.
    const g = parseUnitText(
      'g.path',
      '[X-Triggerd]\nPathAccessed=/run/a\nPathAccessed=\nPathAccessed=/run/b\nHoldTimeoutSec=infinity\n',
      '/u/g.path',
    );
    assert.equal(g.loadState, 'loaded', JSON.stringify(g.diagnostics));
    assert.deepEqual(
      g.path?.specs.map((s) => [s.path, s.hold, s.holdTimeoutMs, s.holdOnTimeout]),
      [['/run/b', false, 0, 'allow']],
    );
  });

  test('hold settings without PathAccessed= warn', () => {
    const f = parseUnitText('x.path', '[Path]\nPathExists=/a\n[X-Triggerd]\nHoldAccess=yes\n', '/u/x.path');
    assert.equal(f.loadState, 'loaded');
    assert.ok(
      f.diagnostics.some(
        (d) =>
          d.severity === 'warning' &&
          /\/u\/x\.path:4: .*HoldAccess= has no effect without PathAccessed=/.test(d.message),
      ),
      JSON.stringify(f.diagnostics),
    );
  });

  const triggerdRefusals: [string, string, RegExp][] = [
    [
      'a glob before the last component of PathAccessed=',
      '[X-Triggerd]\nPathAccessed=/run/*/data\n',
      /\/u\/x\.path:2: \[X-Triggerd\] PathAccessed=\/run\/\*\/data: only the last component may be a glob/,
    ],
    [
      'a relative PathAccessed=',
      '[Path]\nPathExists=/a\n[X-Triggerd]\nPathAccessed=run/data\n',
      /\/u\/x\.path:4: \[X-Triggerd\] PathAccessed=run\/data: path is not absolute/,
    ],
    [
      'an unnormalized PathChangedRecursive=',
      '[X-Triggerd]\nPathChangedRecursive=/srv/../etc\n',
      /\/u\/x\.path:2: \[X-Triggerd\] PathChangedRecursive=\/srv\/\.\.\/etc: path is not normalized/,
    ],
    [
      'a bad HoldAccess=',
      '[X-Triggerd]\nPathAccessed=/run/data\nHoldAccess=perhaps\n',
      /\/u\/x\.path:3: \[X-Triggerd\] HoldAccess=perhaps/,
    ],
    [
      'a bad HoldTimeoutSec=',
      '[X-Triggerd]\nPathAccessed=/run/data\n\nHoldTimeoutSec=ten\n',
      /\/u\/x\.path:4: \[X-Triggerd\] HoldTimeoutSec=ten/,
    ],
    [
      'a bad HoldOnTimeout=',
      '[X-Triggerd]\nPathAccessed=/run/data\nHoldOnTimeout=maybe\n',
      /\/u\/x\.path:3: \[X-Triggerd\] HoldOnTimeout=maybe: "maybe" is not one of allow, deny/,
    ],
  ];
  for (const [what, text, message] of triggerdRefusals) {
    test(`refused at load with file:line: ${what}`, () => {
      const f = parseUnitText('x.path', text, '/u/x.path');
      assert.equal(f.loadState, 'bad-setting');
      const errors = f.diagnostics.filter((d) => d.severity === 'error');
      assert.ok(
        errors.some((d) => message.test(d.message)),
        JSON.stringify(errors.map((d) => d.message)),
      );
    });
  }

  test('unknown [Path] keys warn, the unit loads', () => {
    const f = parseUnitText('x.path', '[Path]\nPathExists=/a\nBogus=1\n', '/u/x.path');
    assert.equal(f.loadState, 'loaded');
    assert.ok(f.diagnostics.some((d) => /unknown key Bogus/.test(d.message)));
  });
});

describe('path unit state machine', () => {
  test('PathExists: waits, triggers when the path appears, and again after the run while it holds', async () => {
    const r = pathRig('[Path]\nPathExists=/run/flag\n');
    assert.equal(r.unit.start(), 'done');
    assert.equal(r.unit.state, 'waiting');
    assert.equal(r.starts.length, 0);
    r.fs.set('/run/flag', exists());
    r.source.emit('/run/flag', { changed: true });
    assert.equal(r.unit.state, 'running');
    assert.deepEqual(r.starts, [
      { name: 'foo.service', env: { TRIGGER_UNIT: 'foo.path', TRIGGER_PATH: '/run/flag' } },
    ]);
    r.run();
    r.end();
    // Still there: systemd's level semantics start it again.
    assert.equal(r.starts.length, 2);
    r.run();
    r.fs.set('/run/flag', exists(false));
    r.end();
    assert.equal(r.unit.state, 'waiting');
    assert.equal(r.starts.length, 2);
    await flush();
    assert.match(
      r.unit.statusLines().join('\n'),
      /Last: .*PathExists=\/run\/flag condition still holds after the run → done \(2 triggers\)/,
    );
  });

  test('a level condition that holds at start triggers at once', () => {
    const r = pathRig('[Path]\nDirectoryNotEmpty=/spool\n');
    r.fs.set('/spool', exists());
    r.unit.start();
    assert.equal(r.starts.length, 1);
    assert.equal(r.unit.state, 'running');
  });

  test('PathChanged during a run is latched: one more run after it, however many changes', () => {
    const r = pathRig('[Path]\nPathChanged=/etc/conf\n');
    r.fs.set('/etc/conf', file('a'));
    r.unit.start();
    assert.equal(r.starts.length, 0, 'an existing file is not a change');
    r.fs.set('/etc/conf', file('b'));
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.starts.length, 1);
    r.run();
    for (const s of ['c', 'd', 'e']) {
      r.fs.set('/etc/conf', file(s));
      r.source.emit('/etc/conf', { changed: true });
    }
    assert.equal(r.starts.length, 1);
    assert.equal(r.unit.nLatched, 3);
    assert.match(
      r.unit.statusLines().join('\n'),
      /Latched: PathChanged=\/etc\/conf changed: starts foo\.service again/,
    );
    r.end();
    assert.equal(r.starts.length, 2);
    assert.match(r.unit.lastTrigger?.why ?? '', /latched while the unit ran/);
    r.run();
    r.end();
    assert.equal(r.starts.length, 2, 'nothing left latched');
    assert.equal(r.unit.state, 'waiting');
  });

  test('a write to an existing path starts the unit before the stat; the stat still updates what is known', () => {
    const r = pathRig('[Path]\nPathChanged=/etc/conf\n');
    r.fs.set('/etc/conf', file('a'));
    r.unit.start();
    const order: string[] = [];
    const unit = r.unit as unknown as { host: PathHost };
    const check = unit.host.check;
    const startUnit = unit.host.startUnit;
    unit.host.check = (spec) => {
      order.push('check');
      return check(spec);
    };
    unit.host.startUnit = (n, env) => {
      order.push('start');
      return startUnit(n, env);
    };
    r.fs.set('/etc/conf', file(''));
    r.source.emit('/etc/conf', { changed: true });
    assert.deepEqual(order, ['start', 'check']);
    assert.equal(r.unit.lastTrigger?.why, 'changed');
    // The stat after the trigger saw the file gone: its re-creation during the run is a change.
    r.run();
    r.fs.set('/etc/conf', file('b'));
    r.source.emit('/etc/conf', { rewalked: true });
    assert.equal(r.unit.nLatched, 1, 'the re-creation was latched');
    r.end();
    assert.equal(r.starts.length, 2);
    // A path that did not exist before takes the stat first, so the cause says 'created'.
    const fresh = pathRig('[Path]\nPathChanged=/run/new\n');
    fresh.unit.start();
    fresh.fs.set('/run/new', file('x'));
    fresh.source.emit('/run/new', { changed: true });
    assert.equal(fresh.unit.lastTrigger?.why, 'created');
  });

  test('LatchWhileRunning=no drops changes during a run (systemd), but an existence flip still fires', () => {
    const r = pathRig('[Path]\nPathChanged=/etc/conf\n[X-Triggerd]\nLatchWhileRunning=no\n');
    r.fs.set('/etc/conf', file('a'));
    r.unit.start();
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.starts.length, 1);
    r.run();
    r.fs.set('/etc/conf', file('b'));
    r.source.emit('/etc/conf', { changed: true });
    r.end();
    assert.equal(r.starts.length, 1, 'the change during the run is lost, as in systemd');
    r.source.emit('/etc/conf', { changed: true });
    assert.equal(r.starts.length, 2);
    r.run();
    r.fs.set('/etc/conf', file(''));
    r.source.emit('/etc/conf', { changed: true });
    r.end();
    assert.equal(r.starts.length, 3, 'removed during the run: the existence check after it fires');
    assert.match(r.unit.statusLines().join('\n'), /LatchWhileRunning=no/);
  });

  test('PathModified fires on every coalesced event, PathChanged on creation and removal', () => {
    const r = pathRig('[Path]\nPathModified=/var/log/x\nPathChanged=/run/y\n');
    r.unit.start();
    r.fs.set('/run/y', file('1'));
    r.source.emit('/run/y', { rewalked: true });
    assert.equal(r.unit.lastTrigger?.why, 'created');
    r.run();
    r.end();
    r.source.emit('/var/log/x', { changed: true });
    assert.equal(r.starts.length, 2);
    assert.equal(r.starts[1]?.env.TRIGGER_PATH, '/var/log/x');
  });

  test('IN_Q_OVERFLOW: a changed snapshot triggers, an unchanged one does not; level conditions re-check', () => {
    const r = pathRig('[Path]\nPathChanged=/a\nDirectoryNotEmpty=/d\n');
    r.fs.set('/a', file('1'));
    r.unit.start();
    r.source.emit('/a', { overflow: true, rewalked: true });
    r.source.emit('/d', { overflow: true, rewalked: true });
    assert.equal(r.starts.length, 0);
    r.fs.set('/a', file('2'));
    r.source.emit('/a', { overflow: true, rewalked: true });
    assert.equal(r.starts.length, 1);
    assert.match(r.unit.lastTrigger?.why ?? '', /overflow/);
    r.run();
    r.end();
    r.fs.set('/d', exists());
    r.source.emit('/d', { overflow: true, rewalked: true });
    assert.equal(r.starts.length, 2);
    assert.equal(r.unit.nOverflows, 4);
  });

  test('a hit trigger limit defers (keeps watching, status says until when) instead of failing', () => {
    const r = pathRig('[Path]\nPathChanged=/a\nTriggerLimitIntervalSec=1s\nTriggerLimitBurst=2\n');
    r.unit.start();
    const once = (): void => {
      r.source.emit('/a', { changed: true });
      r.run();
      r.end();
    };
    once();
    once();
    assert.equal(r.starts.length, 2);
    r.source.emit('/a', { changed: true });
    assert.equal(r.starts.length, 2);
    assert.equal(r.unit.state, 'waiting');
    assert.notEqual(r.unit.deferral, undefined);
    const status = r.unit.statusLines().join('\n');
    assert.match(status, /Deferred: until \d{4}-\d\d-\d\dT.* \(in .*\): trigger limit hit/);
    assert.match(status, /Latched: PathChanged=\/a changed: starts foo\.service when the deferral ends/);
    // More changes while deferred coalesce into the one pending trigger.
    r.source.emit('/a', { changed: true });
    r.clock.advance(999);
    assert.equal(r.starts.length, 2);
    r.clock.advance(2000);
    assert.equal(r.starts.length, 3);
    assert.equal(r.unit.deferral, undefined);
    assert.notEqual(r.unit.state, 'failed');
    assert.equal(r.unit.result, 'success');
  });

  test('a refused start defers with back-off and retries', () => {
    const r = pathRig('[Path]\nPathExists=/x\n');
    r.startAnswer = { ok: false, reason: 'transaction is destructive' };
    r.fs.set('/x', exists());
    r.unit.start();
    assert.equal(r.starts.length, 0);
    assert.match(r.unit.deferral?.reason ?? '', /refused: transaction is destructive/);
    r.startAnswer = { ok: true };
    r.clock.advance(60_000);
    assert.equal(r.starts.length, 1);
  });

  test('the triggered unit hitting its own start limit: the trigger waits and is retried, not lost', async () => {
    const r = pathRig('[Path]\nPathChanged=/a\n');
    r.unit.start();
    let answer = 'failed';
    const host = (r.unit as unknown as { host: PathHost }).host;
    const start = host.startUnit;
    host.startUnit = (n, env) => {
      const out = start(n, env);
      if (!out.ok) return out;
      const result = answer;
      if (result === 'failed')
        r.target = { active: 'failed', load: 'loaded', hasJob: false, result: 'start-limit-hit' };
      return { ok: true, done: Promise.resolve(result) };
    };
    r.source.emit('/a', { changed: true });
    await flush();
    assert.equal(r.starts.length, 1);
    assert.equal(r.unit.state, 'waiting');
    assert.match(r.unit.deferral?.reason ?? '', /foo\.service hit its start limit/);
    assert.equal(r.unit.pending?.path, '/a');
    answer = 'done';
    r.target = { active: 'failed', load: 'loaded', hasJob: false };
    r.clock.advance(5000);
    assert.equal(r.starts.length, 2, 'retried after the back-off');
  });

  test('the unit to trigger missing: the start fails clearly', () => {
    const r = pathRig('[Path]\nPathExists=/x\nUnit=gone.service\n');
    r.target = undefined;
    const out = r.unit.start();
    assert.ok(typeof out === 'object');
    assert.match(out.reason, /refusing to start, the unit to trigger gone\.service is not-found/);
    assert.equal(r.unit.state, 'dead');
    assert.equal(r.source.opened, 0);
  });

  test('no watch possible (EMFILE): failed with result resources', () => {
    const r = pathRig('[Path]\nPathExists=/x\n');
    r.source.failWith = Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    const out = r.unit.start();
    assert.ok(typeof out === 'object');
    assert.equal(r.unit.state, 'failed');
    assert.equal(r.unit.result, 'resources');
  });

  test('the triggered unit already running: the path unit starts in running', () => {
    const r = pathRig('[Path]\nPathExists=/x\n');
    r.fs.set('/x', exists());
    r.target = { active: 'active', load: 'loaded', hasJob: false };
    r.unit.start();
    assert.equal(r.unit.state, 'running');
    assert.equal(r.starts.length, 0);
    r.end();
    assert.equal(r.starts.length, 1);
  });

  test('a failed Condition skips the start: dead, nothing watched, status says why', () => {
    const r = pathRig('[Unit]\nConditionUser=nobody-here\n[Path]\nPathExists=/x\n');
    assert.equal(r.unit.start(), 'done');
    assert.equal(r.unit.state, 'dead');
    assert.equal(r.source.opened, 0);
    assert.match(
      r.unit.statusLines().join('\n'),
      /Error: not started: condition not met: ConditionUser=nobody-here/,
    );
  });

  test('PathAccessed=: held openers are released when the start job completes, with its result', async () => {
    const r = pathRig('[X-Triggerd]\nPathAccessed=/run/lazy/data\nHoldAccess=yes\n', 'lazy.path');
    const releases: string[] = [];
    const origWatch = r.source.watch.bind(r.source);
    r.source.watch = (spec, listener) => ({ ...origWatch(spec, listener), release: (o) => releases.push(o) });
    let finish: (result: string) => void = () => undefined;
    r.unit['host'].startUnit = (n, env) => {
      r.starts.push({ name: n, env });
      r.target = { active: 'activating', load: 'loaded', hasJob: true };
      return { ok: true, done: new Promise<string>((resolve) => (finish = resolve)) };
    };
    assert.equal(r.unit.start(), 'done');
    r.source.emit('/run/lazy/data', { changed: true, where: '/run/lazy/data', pid: 4242 });
    assert.equal(r.starts.length, 1);
    assert.equal(r.starts[0].env.TRIGGER_PATH, '/run/lazy/data');
    assert.match(r.unit.statusLines().join('\n'), /PathAccessed=\/run\/lazy\/data opened by pid 4242/);
    assert.deepEqual(releases, []);
    finish('failed');
    await flush();
    assert.deepEqual(releases, ['failure']);
    r.target = { active: 'inactive', load: 'loaded', hasJob: false };
    r.unit.onUnitChanged('lazy.service');
    assert.equal(r.unit.state, 'waiting');
  });

  test('PathAccessed=: an opener that fired during another run waits for the latched run', () => {
    const r = pathRig(
      '[Path]\nPathChanged=/etc/conf\n[X-Triggerd]\nPathAccessed=/run/lazy/data\nHoldAccess=yes\n',
    );
    const releases: string[] = [];
    const origWatch = r.source.watch.bind(r.source);
    r.source.watch = (spec, listener) => {
      const w = origWatch(spec, listener);
      return spec.kind === 'PathAccessed' ? { ...w, release: (o) => releases.push(o) } : w;
    };
    r.unit.start();
    r.source.emit('/etc/conf', { changed: true });
    r.run();
    r.source.emit('/run/lazy/data', { changed: true, pid: 7 });
    r.end();
    assert.deepEqual(releases, [], 'not released by the end of the PathChanged= run');
    assert.equal(r.starts.length, 2, 'the latched run started');
    r.run();
    r.end();
    assert.deepEqual(releases, ['success']);
  });

  test('MakeDirectory= creates the watched directories, not PathExists= ones', () => {
    const r = pathRig('[Path]\nPathExists=/e\nDirectoryNotEmpty=/d\nPathChanged=/c\nMakeDirectory=yes\n');
    r.unit.start();
    assert.deepEqual(r.made, ['/d', '/c']);
    const a = pathRig(
      '[X-Triggerd]\nPathAccessed=/run/lazy/*.gpg\nPathChangedRecursive=/srv/tree\n[Path]\nMakeDirectory=yes\n',
    );
    a.unit.start();
    assert.deepEqual(a.made, ['/run/lazy', '/srv/tree']);
  });

  test('stop closes every watch; a skipped start goes back to waiting', async () => {
    const r = pathRig('[Path]\nPathChanged=/a\nPathExists=/b\n');
    r.unit.start();
    assert.equal(r.source.opened, 2);
    r.source.emit('/a', { changed: true });
    r.target = { active: 'inactive', load: 'loaded', hasJob: false };
    await flush();
    assert.equal(r.unit.state, 'waiting');
    assert.equal(r.unit.stop(), 'done');
    assert.equal(r.source.closed, 2);
    assert.equal(r.unit.state, 'dead');
    r.source.emit('/a', { changed: true });
    assert.equal(r.starts.length, 1);
  });

  test('daemon-reload keeps the watches of unchanged specs and re-arms only what changed', () => {
    const r = pathRig('[Path]\nPathChanged=/a\nPathExists=/b\n');
    r.unit.start();
    assert.equal(r.source.opened, 2);
    r.unit.file = parseUnitText(
      'foo.path',
      '[Path]\nPathChanged=/a\nPathExists=/c\n',
      '/etc/triggerd/foo.path',
    );
    assert.equal(r.source.opened, 3, 'only /c is new');
    assert.equal(r.source.closed, 1, 'only /b went away');
    assert.deepEqual(
      r.unit.watches().map((w) => w.path),
      ['/a', '/c'],
    );
    r.source.emit('/a', { changed: true });
    assert.equal(r.starts.length, 1, 'the kept watch still delivers');
  });

  test('show and status name the watches, the last trigger and the limits', () => {
    const r = pathRig('[Path]\nDirectoryNotEmpty=/spool\nUnit=work.service\n');
    r.unit.start();
    r.fs.set('/spool', exists());
    r.source.emit('/spool', { changed: true });
    const lines = r.unit.statusLines().join('\n');
    assert.match(lines, /Watches: DirectoryNotEmpty=\/spool \(waits for an entry; watching \/spool\)/);
    assert.match(lines, /Triggers: work\.service/);
    assert.match(lines, /Limits: trigger 200\/2 s/);
    const p = r.unit.properties();
    assert.equal(p.Unit, 'work.service');
    assert.equal(p.NTriggers, 1);
    assert.equal((p.LastTrigger as { path: string }).path, '/spool');
  });
});
