// The .automount state machine on the fake autofs layer and virtual time: waiters released with
// READY when the mount is up and FAIL (never left hanging) when it is not; the back-off after a
// failure; expiry armed only with TimeoutIdleSec= > 0 and refused for RequiresMountsFor= users;
// stop answers everyone, goes catatonic and unmounts; garbled packets still get their token answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutomountUnit, type AutomountHost, type MountOutcome } from '../../src/units/automount';
import { parseUnitText } from '../../src/units/unit-loader';
import { encodeAutofsPacket } from '../../src/mounts/autofs-packets';
import { FakeAutofs } from '../helpers/fake-autofs';
import { VirtualClock } from '../helpers/virtual-clock';
import { silentLogger } from '../helpers/logger';

const WHERE = '/mnt/auto';
const NAME = 'mnt-auto.automount';

function setup(text = `[Automount]\nWhere=${WHERE}\nTimeoutIdleSec=6\n`) {
  const clock = new VirtualClock();
  const native = new FakeAutofs();
  let mountedDev: number | undefined;
  const pending: { what: 'start' | 'stop'; resolve: (o: MountOutcome) => void }[] = [];
  const requiring: string[] = [];
  const transitions: string[] = [];
  const host: AutomountHost = {
    native,
    mounts: {
      start: () => new Promise((resolve) => pending.push({ what: 'start', resolve })),
      stop: () => new Promise((resolve) => pending.push({ what: 'stop', resolve })),
    },
    makeDirectory: () => undefined,
    lstat: () => ({
      dev: mountedDev ?? native.mounts[native.mounts.length - 1]?.devId ?? 1,
      symlink: false,
      directory: true,
    }),
    processName: (pid) => (pid === 4242 ? 'ls' : undefined),
    unitsRequiringMount: () => [...requiring],
    setTimer: clock.setTimer,
    now: clock.now,
    jobFinished: () => undefined,
    stateChanged: (from, to) => transitions.push(`${from}->${to}`),
    log: silentLogger(),
  };
  const file = parseUnitText(NAME, text, `/units/${NAME}`);
  const unit = new AutomountUnit(NAME, file, host);
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return {
    clock,
    native,
    unit,
    pending,
    requiring,
    transitions,
    settle,
    setMounted: (on: boolean) => (mountedDev = on ? 7 : undefined),
  };
}

test('[Automount] parsing: Where= from the name, name mismatch refused, DirectoryMode, TimeoutIdleSec', () => {
  const ok = parseUnitText(NAME, '[Automount]\nDirectoryMode=0700\nTimeoutIdleSec=1min\n', `/u/${NAME}`);
  assert.equal(ok.loadState, 'loaded');
  assert.equal(ok.automount?.where, WHERE);
  assert.equal(ok.automount?.directoryMode, 0o700);
  assert.equal(ok.automount?.timeoutIdleMs, 60_000);
  assert.ok(ok.unit.dependencies.Before.includes('mnt-auto.mount'));
  const bad = parseUnitText(NAME, '[Automount]\nWhere=/elsewhere\n', `/u/${NAME}`);
  assert.equal(bad.loadState, 'bad-setting');
  assert.match(bad.diagnostics.map((d) => d.message).join('\n'), /does not match the unit name/);
  const extra = parseUnitText(NAME, '[Automount]\nExtraOptions=strictexpire,bogus\n', `/u/${NAME}`);
  assert.match(extra.diagnostics.map((d) => d.message).join('\n'), /bogus/);
});

test('first access: waiting → running, READY for every waiter once mounted, expire timer armed', async () => {
  const t = setup();
  assert.equal(t.unit.start(), 'done');
  assert.equal(t.unit.state, 'waiting');
  const m = t.native.last;
  assert.equal(m.options.kind, 'direct');
  assert.equal(m.options.timeoutSec, 6);
  assert.equal(m.options.strictExpire, true);
  const a = m.deliver('missing-direct');
  const b = m.deliver('missing-direct');
  assert.equal(t.pending.length, 1, 'one mount for two waiters');
  assert.equal(t.unit.state, 'running');
  assert.equal(t.unit.lastTrigger?.comm, 'ls');
  t.setMounted(true);
  t.pending[0]!.resolve({ ok: true });
  await t.settle();
  assert.deepEqual(m.answers, [
    { token: a, errno: 0 },
    { token: b, errno: 0 },
  ]);
  assert.ok(t.unit.expireTimerArmed());
  t.clock.advance(2000);
  assert.equal(m.expireRuns.length, 1, 'expire every TimeoutIdleSec/3');
});

test('a failed mount: waiters get ENODEV, then EHOSTDOWN at once during a doubling back-off', async () => {
  const t = setup(`[Automount]\nWhere=${WHERE}\n[X-Triggerd]\nFailBackoffSec=2\n`);
  t.unit.start();
  const m = t.native.last;
  const a = m.deliver('missing-direct');
  t.pending[0]!.resolve({ ok: false, reason: 'mount: wrong fs type' });
  await t.settle();
  assert.deepEqual(m.answerFor(a), { token: a, errno: 19 });
  assert.equal(t.unit.state, 'waiting');
  const b = m.deliver('missing-direct');
  assert.deepEqual(m.answerFor(b), { token: b, errno: 112 });
  assert.equal(t.pending.length, 1, 'no new mount during the back-off');
  t.clock.advance(2001);
  m.deliver('missing-direct');
  assert.equal(t.pending.length, 2, 'retried after the back-off');
  t.pending[1]!.resolve({ ok: false, reason: 'again' });
  await t.settle();
  t.clock.advance(2001);
  const c = m.deliver('missing-direct');
  assert.deepEqual(m.answerFor(c), { token: c, errno: 112 }, 'second failure: 4 s');
  assert.ok(t.unit.statusLines().some((l) => l.startsWith('Last failure: again')));
});

test('TimeoutIdleSec=0 never arms a timer', async () => {
  const t = setup(`[Automount]\nWhere=${WHERE}\nTimeoutIdleSec=0\n`);
  t.unit.start();
  t.native.last.deliver('missing-direct');
  t.setMounted(true);
  t.pending[0]!.resolve({ ok: true });
  await t.settle();
  assert.equal(t.unit.expireTimerArmed(), false);
  assert.equal(t.clock.pending, 0);
});

test('expire: unmounts and answers READY; refused with EBUSY while a unit requires the mount', async () => {
  const t = setup();
  t.unit.start();
  const m = t.native.last;
  m.deliver('missing-direct');
  t.setMounted(true);
  t.pending[0]!.resolve({ ok: true });
  await t.settle();
  t.requiring.push('db.service');
  const refused = m.deliver('expire-direct');
  assert.deepEqual(m.answerFor(refused), { token: refused, errno: 16 });
  t.clock.advance(2000);
  assert.equal(m.expireRuns.length, 0, 'no expire run while required');
  t.requiring.length = 0;
  const e = m.deliver('expire-direct');
  assert.equal(t.pending[1]?.what, 'stop');
  t.setMounted(false);
  t.pending[1]!.resolve({ ok: true });
  await t.settle();
  assert.deepEqual(m.answerFor(e), { token: e, errno: 0 });
  assert.equal(t.unit.state, 'waiting');
  assert.equal(t.unit.expireTimerArmed(), false);
});

test('stop answers every waiter EHOSTDOWN, goes catatonic, unmounts; a mount finishing later changes nothing', async () => {
  const t = setup();
  t.unit.start();
  const m = t.native.last;
  const a = m.deliver('missing-direct');
  assert.equal(t.unit.stop(), 'done');
  assert.deepEqual(m.answerFor(a), { token: a, errno: 112 });
  assert.ok(m.isCatatonic && m.unmounted && m.closed);
  assert.equal(t.unit.state, 'dead');
  t.pending[0]!.resolve({ ok: true });
  await t.settle();
  assert.equal(m.answers.length, 1);
});

test('garbled packets: dropped, but a readable token is answered with EIO; a hang-up fails the unit', () => {
  const t = setup();
  t.unit.start();
  const m = t.native.last;
  const bytes = encodeAutofsPacket({
    type: 'missing-direct',
    token: 77,
    dev: 1,
    ino: 1n,
    uid: 0,
    gid: 0,
    pid: 1,
    tgid: 1,
    name: 'x',
  });
  bytes.writeInt32LE(3, 0);
  m.deliverRaw(bytes);
  assert.deepEqual(m.answerFor(77), { token: 77, errno: 5 });
  m.deliverRaw(Buffer.alloc(5));
  m.hangUp();
  assert.equal(t.unit.state, 'failed');
  assert.equal(t.unit.result, 'unmounted');
});

test('a mount that cannot be made fails the start with the errno', () => {
  const t = setup();
  t.native.failNext = { code: 'ENOTDIR', errno: 20 };
  const r = t.unit.start();
  assert.equal(typeof r === 'object' && r.failed, 'failed');
  assert.equal(t.unit.state, 'failed');
  assert.equal(t.unit.result, 'resources');
});

test("[Automount] keys named like Object.prototype's members are unknown keys (found by the fuzz harness)", () => {
  // ROWS[e.key] found Object.prototype.valueOf: parseUnitText threw "row.parse is not a function".
  const file = parseUnitText(NAME, `[Automount]\nWhere=${WHERE}\nvalueOf=1\n__proto__=2\n`, `/u/${NAME}`);
  assert.deepEqual(
    file.diagnostics.map((d) => [d.code, d.source?.line]),
    [
      ['ERR_UNIT_UNKNOWN_KEY', 3],
      ['ERR_UNIT_UNKNOWN_KEY', 4],
    ],
  );
});
