// The timerfd addon on the real kernel: the watch arms a CLOCK_REALTIME timerfd at the end of time
// (centuries away), stays quiet while nothing happens, reports a clock set (the clock is set to
// the value it has, as root), survives abuse, and closes; one contract suite runs against the
// fake and the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
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
      loadError ??
      (process.getuid?.() !== 0
        ? `setting CLOCK_REALTIME needs root (running as uid ${process.getuid?.()})`
        : fs.existsSync('/usr/bin/python3')
          ? undefined
          : 'needs /usr/bin/python3 to call clock_settime'),
  },
  async () => {
    const n = real as NativeTimerfd;
    let changes = 0;
    const w = n.watchClockChanges(
      () => changes++,
      () => undefined,
    );
    try {
      // The wall clock is set to what it reads (a step of about a microsecond): any
      // clock_settime cancels a TFD_TIMER_CANCEL_ON_SET timer, whatever the value.
      execFileSync('/usr/bin/python3', [
        '-c',
        'import time; time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_REALTIME))',
      ]);
      for (let i = 0; i < 200 && changes === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(changes >= 1, 'the clock set was reported');
      assert.ok(w.armedSeconds > 200 * YEAR, 'armed again at the end of time');
    } finally {
      w.close();
    }
  },
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
