// [Timer] as the loader reads it: values, defaults, and the load-time errors with file:line and,
// for OnCalendar=, the character where the expression goes wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseUnitText, UnitLoader } from '../../src/units/unit-loader';

const load = (text: string, name = 'a.timer') => parseUnitText(name, text, `/u/${name}`);
const errors = (f: ReturnType<typeof load>): string[] =>
  f.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);

test("[Timer] values, in file order, with systemd's defaults", () => {
  const f = load(
    '[Timer]\nOnCalendar=Mon..Fri 09:00\nOnCalendar=weekly\nOnBootSec=5min\nOnUnitActiveSec=1h 30min\n' +
      'RandomizedDelaySec=10min\nFixedRandomDelay=yes\nPersistent=true\nUnit=other.service\n',
  );
  assert.equal(f.loadState, 'loaded');
  const t = f.timer;
  assert.ok(t !== undefined);
  assert.deepEqual(
    t.calendar.map((c) => [c.text, c.source.line]),
    [
      ['Mon..Fri 09:00', 2],
      ['weekly', 3],
    ],
  );
  assert.deepEqual(
    t.monotonic.map((m) => [m.base, m.usec]),
    [
      ['OnBootSec', 300_000_000],
      ['OnUnitActiveSec', 5_400_000_000],
    ],
  );
  assert.equal(t.accuracyUsec, 60_000_000);
  assert.equal(t.randomizedDelayUsec, 600_000_000);
  assert.equal(t.fixedRandomDelay, true);
  assert.equal(t.persistent, true);
  assert.equal(t.remainAfterElapse, true);
  assert.equal(t.unit, 'other.service');
  assert.equal(t.strictSystemdCalendar, false);
  assert.ok(f.unit.dependencies.Before.includes('other.service'));
  const d = load('[Timer]\nOnActiveSec=1s\n');
  assert.ok(d.unit.dependencies.Before.includes('a.service'));
});

test('an empty On*= resets both kinds of values', () => {
  const f = load('[Timer]\nOnCalendar=daily\nOnBootSec=1min\nOnCalendar=\nOnActiveSec=2s\n');
  assert.deepEqual(f.timer?.calendar, []);
  assert.deepEqual(
    f.timer?.monotonic.map((m) => m.base),
    ['OnActiveSec'],
  );
});

test('an invalid OnCalendar= refuses the unit, naming file:line and the character', () => {
  const f = load('[Unit]\nDescription=x\n[Timer]\nOnCalendar=Mon 25:00\n');
  assert.equal(f.loadState, 'bad-setting');
  const [e] = errors(f);
  assert.match(
    e ?? '',
    /^\/u\/a\.timer:4: \[Timer\] OnCalendar=Mon 25:00: invalid calendar expression at character 5: hour out of range/,
  );
  assert.match(e ?? '', /\n {4}Mon 25:00\n {8}\^$/);
  const g = load('[Timer]\nOnCalendar=*-*-* 10:00 Mars/Olympus\n');
  assert.equal(g.loadState, 'bad-setting');
  assert.match(errors(g)[0] ?? '', /:2: .*at character \d+/);
});

test('load-time refusals: no value, Unit= naming itself or a timer, a bad time span, a bad StrictSystemdCalendar=', () => {
  assert.match(
    errors(load('[Timer]\nPersistent=yes\n'))[0] ?? '',
    /a\.timer:1: timer unit has no value setting/,
  );
  assert.match(
    errors(load('[Timer]\nOnActiveSec=1s\nUnit=a.timer\n'))[0] ?? '',
    /:3: .*cannot trigger another timer/,
  );
  assert.match(errors(load('[Timer]\nOnActiveSec=soon\n'))[0] ?? '', /:2: \[Timer\] OnActiveSec=soon/);
  assert.match(errors(load('[Timer]\nOnActiveSec=infinity\n'))[0] ?? '', /finite/);
  const s = load('[Timer]\nOnActiveSec=1s\n[X-Triggerd]\nStrictSystemdCalendar=perhaps\n');
  assert.equal(s.loadState, 'bad-setting');
  assert.match(errors(s)[0] ?? '', /:4: \[X-Triggerd\] StrictSystemdCalendar=perhaps/);
  const ok = load('[Timer]\nOnClockChange=yes\n[X-Triggerd]\nStrictSystemdCalendar=yes\n');
  assert.equal(ok.loadState, 'loaded');
  assert.equal(ok.timer?.strictSystemdCalendar, true);
});

test('warnings: WakeSystem=yes is not supported; a missing unit to trigger is named at load', () => {
  const w = load('[Timer]\nOnActiveSec=1s\nWakeSystem=yes\nAccuracySec=0\n');
  assert.equal(w.loadState, 'loaded');
  assert.ok(
    w.diagnostics.some(
      (d) => d.severity === 'warning' && /:3: .*WakeSystem=yes: not supported/.test(d.message),
    ),
  );
  assert.equal(w.timer?.accuracyUsec, 1);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-config-'));
  try {
    fs.writeFileSync(path.join(dir, 'lonely.timer'), '[Timer]\nOnActiveSec=1s\n');
    fs.writeFileSync(path.join(dir, 'paired.timer'), '[Timer]\nOnActiveSec=1s\n');
    fs.writeFileSync(path.join(dir, 'paired.service'), '[Service]\nType=oneshot\nExecStart=/bin/true\n');
    const loader = new UnitLoader([dir]);
    const lonely = loader.load('lonely.timer');
    assert.equal(lonely.loadState, 'loaded');
    const warn = lonely.diagnostics.find((d) =>
      /triggers lonely\.service, which does not exist/.test(d.message),
    );
    assert.ok(warn, JSON.stringify(lonely.diagnostics));
    assert.match(warn.message, /\(or set Unit=\)$/);
    assert.deepEqual(loader.load('paired.timer').diagnostics, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
