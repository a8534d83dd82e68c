// The timerfd addon on the real kernel, without ever setting the machine's clock: the watch arms
// a CLOCK_REALTIME timerfd at the end of time (centuries away), stays quiet while nothing
// happens, survives abuse, and closes; one contract suite runs against the fake and the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTimerfdNative, type NativeTimerfd } from '../../src/native/timerfd-addon';
import { FakeTimerfd } from '../helpers/fake-timerfd';

let real: NativeTimerfd | undefined;
let loadError: string | undefined;
try {
  real = loadTimerfdNative();
} catch (err) {
  loadError = `the triggerd_timerfd addon is not built (${(err as Error).message})`;
}

const YEAR = 365.25 * 86400;

for (const [label, make] of [
  ['fake', (): NativeTimerfd => new FakeTimerfd()],
  ['real', (): NativeTimerfd => real as NativeTimerfd],
] as const) {
  const skip = label === 'real' ? loadError : undefined;

  test(`${label}: clockNow reads the three clocks together`, { skip }, () => {
    const n = make();
    const a = n.clockNow();
    const b = n.clockNow();
    assert.ok(b.monotonic >= a.monotonic);
    assert.ok(a.boottime >= a.monotonic);
    if (label === 'real') assert.ok(Math.abs(a.realtime / 1000 - Date.now()) < 1000);
  });

  test(`${label}: the watch is armed centuries ahead, quiet, and closes`, { skip }, async () => {
    const n = make();
    let changes = 0;
    const errors: unknown[] = [];
    const w = n.watchClockChanges(
      () => changes++,
      (e) => errors.push(e),
    );
    assert.equal(w.closed, false);
    assert.ok(w.armedSeconds > 200 * YEAR, `armed ${w.armedSeconds / YEAR} years ahead`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(changes, 0);
    assert.equal(w.changes, 0);
    assert.deepEqual(errors, []);
    w.unref();
    w.ref();
    w.close();
    w.close();
    assert.equal(w.closed, true);
    assert.throws(() => w.armedSeconds, { code: 'EBADF' });
  });

  test(`${label}: wrong arguments are TypeErrors`, { skip }, () => {
    const n = make();
    assert.throws(() => n.watchClockChanges(undefined as unknown as () => void, () => undefined), TypeError);
  });
}

test('real: many watches open and close without leaking', { skip: loadError }, () => {
  const n = real as NativeTimerfd;
  const ws = Array.from({ length: 200 }, () =>
    n.watchClockChanges(
      () => undefined,
      () => undefined,
    ),
  );
  for (const w of ws) w.close();
  assert.ok(ws.every((w) => w.closed));
});

test(
  'real: a clock set cancels the timer (ECANCELED) and the watch reports it',
  {
    skip:
      "proving ECANCELED needs clock_settime(CLOCK_REALTIME), which changes the machine's clock, and " +
      'time namespaces (unshare --time) virtualize only CLOCK_MONOTONIC/BOOTTIME; the cancel path is ' +
      'covered by the fake (FakeTimerfd.setClock) in test/unit/timer-units.test',
  },
  () => undefined,
);

test('fake: a clock set and a suspend are reported on a later tick', async () => {
  const f = new FakeTimerfd();
  let changes = 0;
  const w = f.watchClockChanges(
    () => changes++,
    () => undefined,
  );
  f.setClock(3600e6);
  assert.equal(changes, 0);
  await new Promise((r) => setImmediate(r));
  assert.equal(changes, 1);
  f.suspend(60e6);
  await new Promise((r) => setImmediate(r));
  assert.equal(w.changes, 2);
});
