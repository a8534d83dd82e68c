// The .mount state machine on a fake host: mount(8)/umount(8) exits and the kernel's view arrive
// in either order; failures keep mount's own words; nothing is left half-mounted; a mount made
// or removed by hand moves the unit; [Mount] checks and implicit dependencies.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MountUnit, type MountHost } from '../../src/units/mount';
import type { MountEntry } from '../../src/mounts/mountinfo';
import type { JobEnd } from '../../src/units/unit-type';
import { parseUnitText } from '../../src/units/unit-loader';
import { silentLogger } from '../helpers/logger';

function entry(where: string, id = 100): MountEntry {
  return {
    id,
    parentId: 1,
    major: 0,
    minor: 50,
    root: '/',
    mountPoint: where,
    options: 'rw',
    optionalFields: [],
    fsType: 'tmpfs',
    source: 'tmpfs',
    superOptions: 'rw',
  };
}

function rig(text = '[Mount]\nWhat=tmpfs\nWhere=/mnt/x\nType=tmpfs\nOptions=size=1m,nofail\n') {
  const file = parseUnitText('mnt-x.mount', text, '/u/mnt-x.mount');
  const spawned: string[][] = [];
  const jobs: JobEnd[] = [];
  const states: string[] = [];
  const output = new Map<number, string[]>();
  let kernel: MountEntry | undefined;
  let pid = 1000;
  const host: MountHost = {
    runHelper: (argv) => {
      spawned.push([...argv]);
      return { ok: true, pid: ++pid };
    },
    takeOutput: (p) => output.get(p) ?? [],
    signal: () => undefined,
    prepareMountPoint: () => undefined,
    refreshMounts: () => unit.setKernel(kernel),
    setTimer: () => () => undefined,
    jobFinished: (end) => jobs.push(end),
    stateChanged: (_f, to) => states.push(to),
    log: silentLogger(),
  };
  const unit = new MountUnit('mnt-x.mount', file, '/mnt/x', host);
  return {
    unit,
    spawned,
    jobs,
    states,
    setKernel: (e: MountEntry | undefined) => (kernel = e),
    exit: (status: number, lines: string[] = []) => {
      output.set(pid, lines);
      unit.onExit({ pid, code: 'exited', status });
    },
  };
}

describe('MountUnit', () => {
  test('start: mount(8) with the options (nofail dropped), kernel entry, exit 0 → mounted', () => {
    const r = rig();
    assert.equal(r.unit.start(), 'pending');
    assert.deepEqual(r.spawned[0], ['/bin/mount', 'tmpfs', '/mnt/x', '-t', 'tmpfs', '-o', 'size=1m']);
    r.setKernel(entry('/mnt/x'));
    r.unit.setKernel(entry('/mnt/x'));
    assert.equal(r.unit.state, 'mounting-done');
    r.exit(0);
    assert.equal(r.unit.state, 'mounted');
    assert.deepEqual(r.jobs, ['done']);
  });

  test('the exit before mountinfo: the refresh on exit decides', () => {
    const r = rig();
    r.unit.start();
    r.setKernel(entry('/mnt/x'));
    r.exit(0);
    assert.equal(r.unit.state, 'mounted');
  });

  test("a failed mount: failed, with mount's words; the next success clears them", () => {
    const r = rig();
    r.unit.start();
    r.exit(32, ['mount: /mnt/x: unknown filesystem type.']);
    assert.equal(r.unit.state, 'failed');
    assert.equal(r.unit.result, 'exit-code');
    assert.match(r.unit.lastFailure?.message ?? '', /unknown filesystem type/);
    assert.deepEqual(r.jobs, ['failed']);
    assert.ok(r.unit.statusLines().some((l) => /Error: mount exit-code \(status 32\)/.test(l)));
    r.unit.start();
    r.setKernel(entry('/mnt/x'));
    r.exit(0);
    assert.equal(r.unit.state, 'mounted');
    assert.equal(r.unit.lastFailure, undefined);
  });

  test('a helper that fails but leaves a mount: the start fails and the mount is undone', () => {
    const r = rig();
    r.unit.start();
    r.setKernel(entry('/mnt/x'));
    r.exit(1, ['mount: something went half way']);
    assert.deepEqual(r.jobs, ['failed']);
    assert.equal(r.unit.state, 'unmounting');
    assert.equal(r.spawned[1]?.[0], '/bin/umount');
    r.setKernel(undefined);
    r.exit(0);
    assert.equal(r.unit.state, 'failed');
    assert.match(r.unit.lastFailure?.message ?? '', /half way/);
  });

  test("busy: the stop fails with umount's words and the unit stays mounted", () => {
    const r = rig();
    r.setKernel(entry('/mnt/x'));
    r.unit.setKernel(entry('/mnt/x'));
    assert.equal(r.unit.state, 'mounted');
    assert.equal(r.unit.stop(), 'pending');
    assert.deepEqual(r.spawned[0], ['/bin/umount', '/mnt/x', '-c']);
    r.exit(32, ['umount: /mnt/x: target is busy.']);
    assert.equal(r.unit.state, 'mounted');
    assert.deepEqual(r.jobs, ['failed']);
    assert.match(r.unit.lastFailure?.message ?? '', /busy/);
    r.unit.stop();
    r.setKernel(undefined);
    r.exit(0);
    assert.equal(r.unit.state, 'dead');
  });

  test('mounted and unmounted by hand: the unit follows the kernel', () => {
    const r = rig();
    r.unit.setKernel(entry('/mnt/x'));
    assert.equal(r.unit.state, 'mounted');
    r.unit.setKernel(undefined);
    assert.equal(r.unit.state, 'dead');
    assert.deepEqual(r.states, ['mounted', 'dead']);
  });

  test('LazyUnmount/ForceUnmount/SloppyOptions/ReadWriteOnly reach the helpers', () => {
    const r = rig(
      '[Mount]\nWhat=/dev/sdz1\nWhere=/mnt/x\nSloppyOptions=yes\nReadWriteOnly=yes\nLazyUnmount=yes\nForceUnmount=yes\n',
    );
    r.unit.start();
    assert.deepEqual(r.spawned[0], ['/bin/mount', '/dev/sdz1', '/mnt/x', '-s', '-w']);
    r.setKernel(entry('/mnt/x'));
    r.exit(0);
    r.unit.stop();
    assert.deepEqual(r.spawned[1], ['/bin/umount', '/mnt/x', '-c', '-l', '-f']);
  });
});

describe('[Mount] configuration', () => {
  test('the name must match Where=', () => {
    const u = parseUnitText('mnt-y.mount', '[Mount]\nWhat=tmpfs\nWhere=/mnt/x\n', '/u/mnt-y.mount');
    assert.equal(u.loadState, 'bad-setting');
    assert.ok(
      u.diagnostics.some((d) =>
        /does not match the unit name mnt-y.mount \(it would be mnt-x.mount\)/.test(d.message),
      ),
    );
  });

  test('What= is required; Where= defaults to the name', () => {
    const u = parseUnitText('mnt-x.mount', '[Mount]\nType=tmpfs\n', '/u/mnt-x.mount');
    assert.equal(u.loadState, 'bad-setting');
    const v = parseUnitText('srv-a\\x2db.mount', '[Mount]\nWhat=tmpfs\n', '/u/x');
    assert.equal(v.mount?.where, '/srv/a-b');
  });

  test('implicit dependencies: BindsTo+After the device, After the parents', () => {
    const u = parseUnitText(
      'srv-data.mount',
      '[Mount]\nWhat=/dev/disk/by-label/BACKUP\nWhere=/srv/data\nTimeoutSec=0\n',
      '/u/srv-data.mount',
    );
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(u.unit.dependencies.BindsTo, ['dev-disk-by\\x2dlabel-BACKUP.device']);
    assert.deepEqual(u.unit.dependencies.After, [
      'dev-disk-by\\x2dlabel-BACKUP.device',
      '-.mount',
      'srv.mount',
    ]);
    assert.equal(u.mount?.timeoutMs, Infinity);
    const b = parseUnitText(
      'mnt-b.mount',
      '[Mount]\nWhat=/srv/x\nWhere=/mnt/b\nOptions=bind\n',
      '/u/mnt-b.mount',
    );
    assert.deepEqual(b.unit.dependencies.BindsTo, []);
    assert.ok(b.unit.dependencies.After.includes('srv-x.mount'));
  });
});

test('a What= path past PATH_MAX gets no implicit dependencies, at once (found by the fuzz harness)', () => {
  // Naming the mount unit of every prefix of a 64 KiB What= took 18 s (quadratic).
  const what = '/de'.repeat(20_000) + '/img';
  const t0 = performance.now();
  const file = parseUnitText('tmp.mount', `[Mount]\nWhat=${what}\nWhere=/tmp\nType=ext4\n`, '/u/tmp.mount');
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  assert.equal(file.mount?.what, what);
  assert.ok(!file.unit.dependencies.After.some((d) => d.startsWith('de-')));
  // Under PATH_MAX the mounts above an image file are still ordered first.
  const image = parseUnitText('tmp.mount', '[Mount]\nWhat=/srv/img/disk.img\nWhere=/tmp\n', '/u/tmp.mount');
  assert.ok(image.unit.dependencies.After.includes('srv-img.mount'));
});

test("[Mount] keys named like Object.prototype's members are unknown keys (found by the fuzz harness)", () => {
  // ROWS[e.key] found Object.prototype.valueOf: parseUnitText threw "row.parse is not a function".
  const file = parseUnitText(
    'x.mount',
    '[Mount]\nWhat=tmpfs\nWhere=/x\nvalueOf=1\n__proto__=2\nconstructor=3\n',
    '/u/x.mount',
  );
  assert.deepEqual(
    file.diagnostics.map((d) => [d.code, d.source?.line]),
    [
      ['ERR_UNIT_UNKNOWN_KEY', 4],
      ['ERR_UNIT_UNKNOWN_KEY', 5],
      ['ERR_UNIT_UNKNOWN_KEY', 6],
    ],
  );
  assert.equal(file.mount?.where, '/x');
});
