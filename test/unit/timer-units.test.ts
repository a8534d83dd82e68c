// The daemon side of timers on the fake timerfd: one clock-change watch for every timer, a clock
// set and a resume told apart by CLOCK_BOOTTIME's lead, the stamp directory under --state-dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TimerUnits } from '../../src/core/timer-units';
import type { TimerUnit } from '../../src/units/timer';
import type { Manager } from '../../src/core/manager';
import type { UnitEngine } from '../../src/core/unit-engine';
import { FakeTimerfd } from '../helpers/fake-timerfd';
import { FakeNativeInotify } from '../helpers/fake-inotify';
import { silentLogger } from '../helpers/logger';

function fakeTimer(name: string, causes: string[]): TimerUnit {
  return {
    name,
    file: { timer: { onTimezoneChange: false, calendar: [] } },
    triggerName: () => name.replace(/\.timer$/, '.service'),
    onClockChanged: (cause: string) => causes.push(`${name}:${cause}`),
    onTimezoneChanged: () => causes.push(`${name}:tz`),
  } as unknown as TimerUnit;
}

test('one watch serves every timer; a clock set and a resume are told apart', async () => {
  const fake = new FakeTimerfd();
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-units-'));
  try {
    const units = new TimerUnits({
      logger: silentLogger(),
      manager: {} as Manager,
      engine: () => ({}) as UnitEngine,
      stateDir: state,
      timerfd: fake,
      inotify: new FakeNativeInotify(),
      stateChanged: () => undefined,
    });
    const causes: string[] = [];
    units.created(fakeTimer('a.timer', causes));
    units.created(fakeTimer('b.timer', causes));
    assert.equal(fake.watches.length, 1);
    fake.advance(5e6);
    fake.setClock(3600e6);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(causes, ['a.timer:clock-change', 'b.timer:clock-change']);
    fake.suspend(600e6);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(causes.slice(2), ['a.timer:resume', 'b.timer:resume']);
    // Stamps go to <stateDir>/timers/stamp-NAME.
    const host = units.host('a.timer', () => undefined);
    host.touchStamp('a.timer', 1_700_000_000_000_000);
    assert.equal(host.readStamp('a.timer'), 1_700_000_000_000_000);
    assert.ok(fs.existsSync(path.join(state, 'timers', 'stamp-a.timer')));
    assert.equal(host.readStamp('never.timer'), undefined);
    units.close();
    assert.equal(fake.watches[0]?.closed, true);
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
