// The state file of re-exec and crash recovery (src/core/daemon-state.ts): written atomically and
// read back; a corrupt file is refused as a whole, a malformed unit entry alone; and a service's
// serialize/deserialize pair on a fake host: a running service keeps its main pid when the
// process is adopted, and one whose main process ended meanwhile sees that exit in catchup()
// (Restart= acts on it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  STATE_FORMAT,
  STATE_VERSION,
  parseState,
  processStartTime,
  readStateFile,
  sameProcess,
  writeStateFile,
  writeStateFileAsync,
  type DaemonStateFile,
} from '../../src/core/daemon-state';
import { ServiceUnit, UNKNOWN_EXIT_STATUS, type ServiceHost } from '../../src/units/service';
import type { DeserializeContext, SerializeContext } from '../../src/units/unit-type';
import type { ServiceSection } from '../../src/units/config-types';
import { command, serviceFile } from '../helpers/unit-fixtures';
import { silentLogger } from '../helpers/logger';

function sample(): DaemonStateFile {
  return {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    kind: 'checkpoint',
    daemon: { pid: 4242, startTime: '99' },
    writtenAt: 1,
    fds: [],
    units: [{ name: 'a.service', active: 'active', sub: 'running', data: { state: 'running', mainPid: 7 } }],
  };
}

test('the state file is written under a temporary name and renamed; it reads back as written', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-state-'));
  try {
    writeStateFile(dir, sample());
    assert.deepEqual(fs.readdirSync(dir), ['state.json']);
    const read = readStateFile(dir);
    assert.ok(read.ok);
    assert.deepEqual(read.state, sample());
    assert.deepEqual(read.warnings, []);
    fs.rmSync(path.join(dir, 'state.json'));
    assert.deepEqual(readStateFile(dir), { ok: false, reason: 'missing' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a checkpoint written off the event loop: the same file, renamed over the old one, no temporary left', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-state-'));
  try {
    writeStateFile(dir, { ...sample(), writtenAt: 0 });
    const pending = writeStateFileAsync(dir, sample());
    // Until it settles, a reader sees the old state whole.
    const before = readStateFile(dir);
    assert.ok(before.ok);
    assert.ok(before.state.writtenAt === 0 || before.state.writtenAt === 1);
    await pending;
    assert.deepEqual(fs.readdirSync(dir), ['state.json']);
    const read = readStateFile(dir);
    assert.ok(read.ok);
    assert.deepEqual(read.state, sample());
    assert.equal(fs.statSync(path.join(dir, 'state.json')).mode & 0o777, 0o600);
    // A directory that is gone: the promise rejects (the daemon logs it), nothing throws inline.
    await assert.rejects(writeStateFileAsync(path.join(dir, 'gone'), sample()), { code: 'ENOENT' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt state file is refused as a whole', () => {
  const cases: [string, string][] = [
    ['not JSON', '{"format":"triggerd-state",'],
    ['an array', '[]'],
    ['another format', JSON.stringify({ ...sample(), format: 'other' })],
    ['a newer version', JSON.stringify({ ...sample(), version: 2 })],
    ['an unknown kind', JSON.stringify({ ...sample(), kind: 'maybe' })],
    ['no daemon pid', JSON.stringify({ ...sample(), daemon: { pid: -1 } })],
    ['no unit list', JSON.stringify({ ...sample(), units: {} })],
  ];
  for (const [what, text] of cases) {
    const r = parseState(text);
    assert.equal(r.ok, false, what);
    assert.equal(!r.ok && r.reason, 'corrupt', what);
  }
});

test('malformed or repeated unit entries are skipped with a warning, the rest is kept', () => {
  const text = JSON.stringify({
    ...sample(),
    fds: [3, -1, 'x', 5],
    units: [
      { name: 'a.service', active: 'active', sub: 'running' },
      { name: 'a.service', active: 'inactive', sub: 'dead' },
      { active: 'active', sub: 'running' },
      { name: 'b.socket', active: 'active', sub: 'listening', data: [1, 2] },
      'c.timer',
      { name: 'd.target', active: 'active', sub: 'active', outputs: [{ fd: 9, inode: '1' }, { fd: 'x' }] },
    ],
  });
  const r = parseState(text);
  assert.ok(r.ok);
  assert.deepEqual(
    r.state.units.map((u) => u.name),
    ['a.service', 'd.target'],
  );
  assert.equal(r.state.units[0]?.active, 'active');
  assert.deepEqual(r.state.units[1]?.outputs, [{ fd: 9, inode: '1' }]);
  assert.deepEqual(r.state.fds, [3, 5]);
  assert.equal(r.warnings.length, 4);
});

test('the job list: well-formed jobs kept, malformed ones skipped with a warning', () => {
  const good = { id: 4, unit: 'a.service', type: 'start', state: 'running', runType: 'start' };
  const text = JSON.stringify({
    ...sample(),
    jobs: [
      good,
      { ...good, id: 5, unit: 'b.service', state: 'waiting', ignoreOrder: true, rerun: 'yes' },
      { ...good, id: 0 },
      { ...good, type: 'explode' },
      { ...good, state: 'sleeping' },
      { ...good, runType: undefined },
      'c.service',
    ],
  });
  const r = parseState(text);
  assert.ok(r.ok);
  assert.deepEqual(r.state.jobs, [
    good,
    { id: 5, unit: 'b.service', type: 'start', state: 'waiting', runType: 'start', ignoreOrder: true },
  ]);
  assert.equal(r.warnings.length, 5);
});

test('the fd holder entry: kept when well-formed, ignored with a warning when not', () => {
  const holder = { pid: 4242, startTime: '123', fds: { notify: 3, uevent: 4, other: 9 }, mode: 'standalone' };
  const ok = parseState(JSON.stringify({ ...sample(), holder }));
  assert.ok(ok.ok);
  assert.deepEqual(ok.state.holder, {
    pid: 4242,
    startTime: '123',
    fds: { notify: 3, uevent: 4 },
    mode: 'standalone',
  });
  for (const bad of [{ ...holder, pid: -1 }, { ...holder, startTime: 5 }, 'holder']) {
    const r = parseState(JSON.stringify({ ...sample(), holder: bad }));
    assert.ok(r.ok);
    assert.equal(r.state.holder, undefined);
    assert.equal(r.warnings.length, typeof bad === 'string' ? 0 : 1);
  }
});

test('a process is named by pid and start time', () => {
  const start = processStartTime(process.pid);
  assert.match(start ?? '', /^\d+$/);
  assert.ok(sameProcess(process.pid, start));
  assert.ok(!sameProcess(process.pid, `${start}0`));
  assert.equal(processStartTime(2 ** 22 + 1), undefined);
});

interface FakeService {
  unit: ServiceUnit;
  states: string[];
  restarts: number;
  timers: (() => void)[];
  /** Paths of the commands spawned, in order. */
  spawned: string[];
}

function fakeService(section: Partial<ServiceSection>): FakeService {
  const f: Omit<FakeService, 'unit'> & { unit?: ServiceUnit } = {
    states: [],
    restarts: 0,
    timers: [],
    spawned: [],
  };
  let next = 900;
  const host: ServiceHost = {
    spawn: (cmd) => {
      f.spawned.push(cmd.path);
      return { ok: true, pid: section.execStartPre !== undefined ? next++ : 900 };
    },
    closeFd: () => undefined,
    signal: () => undefined,
    signalGroup: () => 0,
    groupPids: () => [],
    controlGroup: () => undefined,
    readPidFile: () => undefined,
    conditionHolds: () => true,
    setTimer: (_ms, fn) => {
      f.timers.push(fn);
      return () => {
        const i = f.timers.indexOf(fn);
        if (i >= 0) f.timers.splice(i, 1);
      };
    },
    now: () => 0,
    jobFinished: () => undefined,
    stateChanged: (_from, to) => f.states.push(to),
    requestRestart: () => f.restarts++,
    log: silentLogger(),
  };
  f.unit = new ServiceUnit(
    'a.service',
    serviceFile('a.service', { execStart: [command('/bin/true')], ...section }),
    host,
  );
  return f as FakeService;
}

function serializeContext(): SerializeContext {
  return { kind: 'checkpoint', carryFd: () => -1, startTimeOf: () => '123' };
}

function deserializeContext(
  alive: boolean,
  warnings: string[] = [],
): DeserializeContext & { adopted: number[] } {
  const adopted: number[] = [];
  return {
    kind: 'crash',
    adopted,
    takeFd: () => undefined,
    adoptProcess: (pid) => {
      adopted.push(pid);
      return alive;
    },
    warn: (m) => warnings.push(m),
  };
}

test('a running service comes back running with its main pid adopted', () => {
  const before = fakeService({});
  before.unit.start();
  assert.equal(before.unit.state, 'running');
  const data = before.unit.serialize(serializeContext());
  assert.equal(data.mainPid, 900);
  assert.equal(data.mainStart, '123');

  const after = fakeService({});
  const ctx = deserializeContext(true);
  assert.ok(after.unit.deserialize(JSON.parse(JSON.stringify(data)) as typeof data, ctx));
  assert.deepEqual(ctx.adopted, [900]);
  assert.equal(after.unit.state, 'running');
  assert.equal(after.unit.mainPid, 900);
  after.unit.catchup();
  assert.equal(after.unit.state, 'running');
  // Its later exit is acted on as for a process we spawned.
  after.unit.onExit({ pid: 900, code: 'exited', status: 0 });
  assert.equal(after.unit.state, 'dead');
});

test('a main process that ended while no daemon watched: catchup() sees an unknown exit, Restart= acts', () => {
  const before = fakeService({ restart: 'on-failure' });
  before.unit.start();
  const data = before.unit.serialize(serializeContext());
  const after = fakeService({ restart: 'on-failure' });
  const warnings: string[] = [];
  assert.ok(after.unit.deserialize(data, deserializeContext(false, warnings)));
  assert.equal(after.unit.state, 'running');
  assert.match(warnings.join('\n'), /exit status is unknown/);
  after.unit.catchup();
  assert.equal(after.unit.mainExit?.status, UNKNOWN_EXIT_STATUS);
  assert.equal(after.unit.state, 'auto-restart');
  for (const t of after.timers.splice(0)) t();
  assert.equal(after.restarts, 1);
});

test('an unknown service state is not restored', () => {
  const s = fakeService({});
  const warnings: string[] = [];
  assert.equal(s.unit.deserialize({ state: 'flying' }, deserializeContext(true, warnings)), false);
  assert.equal(s.unit.state, 'dead');
  assert.match(warnings[0] ?? '', /unknown service state/);
});

test('a control process (ExecStartPre=) is serialized with its step; adopted, its exit goes on to the next step', () => {
  const section = {
    execStartPre: [command('/bin/first'), command('/bin/second')],
    execStart: [command('/bin/main')],
  };
  const before = fakeService(section);
  before.unit.start();
  assert.equal(before.unit.state, 'start-pre');
  before.unit.onExit({ pid: 900, code: 'exited', status: 0 });
  assert.equal(before.unit.controlPid, 901);
  const data = JSON.parse(JSON.stringify(before.unit.serialize(serializeContext()))) as Record<
    string,
    unknown
  >;
  assert.deepEqual(data.control, {
    pid: 901,
    start: '123',
    phase: 'start-pre',
    index: 1,
    command: '/bin/second',
  });

  const after = fakeService(section);
  const ctx = deserializeContext(true);
  assert.ok(after.unit.deserialize(data, ctx));
  assert.deepEqual(ctx.adopted, [901]);
  assert.equal(after.unit.state, 'start-pre');
  assert.equal(after.unit.controlPid, 901);
  after.unit.catchup();
  assert.deepEqual(after.spawned, [], 'nothing is run again');
  after.unit.onExit({ pid: 901, code: 'exited', status: 0 });
  assert.deepEqual(after.spawned, ['/bin/main']);
  assert.equal(after.unit.state, 'running');
});

test('a control process that ended while no daemon watched: its step counts as done (status unknown), with a warning', () => {
  const section = {
    execStartPre: [command('/bin/first'), command('/bin/second')],
    execStart: [command('/bin/main')],
  };
  const before = fakeService(section);
  before.unit.start();
  const data = before.unit.serialize(serializeContext());
  const after = fakeService(section);
  assert.ok(after.unit.deserialize(data, deserializeContext(false)));
  assert.equal(after.unit.state, 'start-pre');
  after.unit.catchup();
  assert.deepEqual(after.spawned, ['/bin/second']);
  after.unit.onExit({ pid: 900, code: 'exited', status: 0 });
  assert.deepEqual(after.spawned, ['/bin/second', '/bin/main']);
  assert.equal(after.unit.state, 'running');
  // A real failure of an adopted control process still fails the start.
  const failing = fakeService(section);
  assert.ok(failing.unit.deserialize(data, deserializeContext(true)));
  failing.unit.onExit({ pid: 900, code: 'exited', status: 3 });
  assert.notEqual(failing.unit.state, 'running');
  assert.equal(failing.unit.result, 'exit-code');
});

test('a control process whose command the unit file no longer has: a warning, the step is not resumed', () => {
  const before = fakeService({ execStartPre: [command('/bin/first')] });
  before.unit.start();
  const data = before.unit.serialize(serializeContext());
  const after = fakeService({ execStartPre: [command('/bin/other')] });
  const warnings: string[] = [];
  assert.ok(after.unit.deserialize(data, deserializeContext(true, warnings)));
  assert.match(warnings.join('\n'), /no longer has/);
  assert.equal(after.unit.controlPid, undefined);
});

test('the carried event sockets and the cgroup list are read back; bad entries are dropped', () => {
  const text = JSON.stringify({
    ...sample(),
    kind: 'reexec',
    sockets: { uevent: 7, notify: 'x' },
    cgroups: ['/sys/fs/cgroup/triggerd/triggerd.slice/a.service', 'relative', 3],
  });
  const read = parseState(text);
  assert.ok(read.ok);
  assert.deepEqual(read.state.sockets, { uevent: 7 });
  assert.deepEqual(read.state.cgroups, ['/sys/fs/cgroup/triggerd/triggerd.slice/a.service']);
});

test('an ExecStop= control process is adopted with the main process; its exit runs the next ExecStop=', () => {
  const section = {
    execStartPre: [],
    execStart: [command('/bin/main')],
    execStop: [command('/bin/stop1'), command('/bin/stop2')],
  };
  const before = fakeService(section);
  before.unit.start();
  assert.equal(before.unit.state, 'running');
  before.unit.stop();
  assert.equal(before.unit.state, 'stop');
  const data = JSON.parse(JSON.stringify(before.unit.serialize(serializeContext()))) as Record<
    string,
    unknown
  >;
  assert.deepEqual(data.control, { pid: 901, start: '123', phase: 'stop', index: 0, command: '/bin/stop1' });

  const after = fakeService(section);
  const ctx = deserializeContext(true);
  assert.ok(after.unit.deserialize(data, ctx));
  assert.deepEqual(ctx.adopted, [900, 901]);
  assert.equal(after.unit.state, 'stop');
  assert.equal(after.unit.mainPid, 900);
  after.unit.onExit({ pid: 901, code: 'exited', status: 0 });
  assert.deepEqual(after.spawned, ['/bin/stop2']);
  assert.equal(after.unit.state, 'stop');
});
