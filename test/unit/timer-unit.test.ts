// The .timer state machine on virtual time: a host whose two clocks follow a VirtualClock (the wall
// clock can also jump), a triggered unit that behaves like a oneshot service, seeded randomness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUnitText } from '../../src/units/unit-loader';
import { TimerUnit, type TimerHost, type TimerState, type TimerTargetView } from '../../src/units/timer';
import { loadTimeZone, UTC_ZONE, type TimeZone } from '../../src/timers/time-zone';
import {
  fixedDelayHash,
  siphash24,
  sleepBetween,
  perturbFromBootId,
  parseId128,
} from '../../src/timers/timer-random';
import { silentLogger } from '../helpers/logger';
import { VirtualClock } from '../helpers/virtual-clock';
import { mulberry32 } from '../helpers/prng';

const SEC = 1_000_000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const utc = (s: string): number => Date.parse(s) * 1000;
const iso = (usec: number): string => new Date(usec / 1000).toISOString();

const ticks = async (n = 4): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

interface RigOptions {
  name?: string;
  /** Wall clock at the start (µs). */
  realtime?: number;
  /** CLOCK_MONOTONIC at the start (µs); the daemon started then. */
  monotonic?: number;
  zone?: TimeZone;
  stamp?: number;
  /** How long the triggered oneshot runs (ms); undefined: it does not exist. */
  serviceMs?: number;
  missing?: boolean;
  perturb?: number;
  seed?: number;
  /** What the next start jobs answer (default 'done'). */
  jobResult?: string;
}

interface Rig {
  unit: TimerUnit;
  clock: VirtualClock;
  states: TimerState[];
  starts: number[];
  stamps: { timer: string; realtime: number }[];
  stamp: number | undefined;
  service: TimerTargetView;
  /** Move the wall clock (a clock set), then tell the timer. */
  jump(usec: number, cause?: 'clock-change' | 'resume'): void;
  now(): { realtime: number; monotonic: number };
  advance(usec: number): Promise<void>;
}

function rig(text: string, o: RigOptions = {}): Rig {
  const name = o.name ?? 'job.timer';
  const clock = new VirtualClock();
  const rt0 = o.realtime ?? utc('2024-03-30T12:00:00Z');
  const mono0 = o.monotonic ?? 1000 * SEC;
  let jumped = 0;
  const random = mulberry32(o.seed ?? 1);
  const r: Omit<Rig, 'unit'> & { unit?: TimerUnit } = {
    clock,
    states: [],
    starts: [],
    stamps: [],
    stamp: o.stamp,
    service: { active: 'inactive', load: o.missing === true ? 'not-found' : 'loaded' },
    jump: (usec, cause = 'clock-change') => {
      jumped += usec;
      r.unit?.onClockChanged(cause);
    },
    now: () => ({ realtime: rt0 + jumped + clock.now() * 1000, monotonic: mono0 + clock.now() * 1000 }),
    advance: async (usec) => {
      // In steps, so that promise callbacks (job results) run between timers.
      let left = usec;
      do {
        const step = Math.min(left, SEC);
        clock.advance(step / 1000);
        left -= step;
        await ticks(2);
      } while (left > 0);
    },
  };
  const setService = (active: TimerTargetView['active']): void => {
    r.service = { ...r.service, active };
    r.unit?.onUnitChanged(name.replace(/\.timer$/, '.service'));
  };
  const host: TimerHost = {
    now: () => r.now(),
    startupMonotonic: () => mono0,
    bootMonotonic: () => 0,
    setTimer: clock.setTimer,
    localZone: () => o.zone ?? UTC_ZONE,
    mktimeState: { offset: 0 },
    unitStatus: (n) => (n === name.replace(/\.timer$/, '.service') ? r.service : undefined),
    startUnit: () => {
      r.starts.push(r.now().realtime);
      if (o.jobResult !== undefined && o.jobResult !== 'done')
        return { ok: true, done: Promise.resolve(o.jobResult) };
      clock.setTimer(0, () => setService('activating'));
      clock.setTimer(o.serviceMs ?? 0, () => setService('inactive'));
      return { ok: true, done: Promise.resolve('done') };
    },
    readStamp: () => r.stamp,
    touchStamp: (timer, realtime) => {
      const t = realtime ?? r.now().realtime;
      r.stamp = t;
      r.stamps.push({ timer, realtime: t });
    },
    randomU64: () =>
      BigInt(Math.floor(random() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(random() * 2 ** 32)),
    fixedDelayHash: (timer) => fixedDelayHash(Buffer.alloc(16, 7), true, 0, timer),
    perturbUsec: () => o.perturb ?? 0,
    stateChanged: (_from, to) => r.states.push(to),
    log: silentLogger(),
  };
  const file = parseUnitText(name, text, `/units/${name}`);
  assert.equal(file.loadState, 'loaded', JSON.stringify(file.diagnostics));
  r.unit = new TimerUnit(name, file, host);
  return r as Rig;
}

const timer = (body: string): string => `[Timer]\nAccuracySec=1us\n${body}\n`;

test('OnActiveSec= elapses once after activation; then elapsed (RemainAfterElapse=yes) or dead', async () => {
  const r = rig(timer('OnActiveSec=10s'));
  assert.equal(r.unit.start(), 'done');
  assert.equal(r.unit.state, 'waiting');
  const t0 = r.now().realtime;
  assert.equal(r.unit.nextElapseRealtime(), t0 + 10 * SEC);
  await r.advance(9 * SEC);
  assert.equal(r.starts.length, 0);
  await r.advance(1 * SEC);
  assert.deepEqual(r.starts, [t0 + 10 * SEC]);
  await r.advance(5 * SEC);
  assert.equal(r.unit.state, 'elapsed');
  assert.deepEqual(r.states, ['waiting', 'running', 'elapsed']);
  assert.equal(r.unit.activeState(), 'active');

  const d = rig(timer('OnActiveSec=10s\nRemainAfterElapse=no'));
  d.unit.start();
  await d.advance(20 * SEC);
  assert.equal(d.starts.length, 1);
  assert.equal(d.unit.state, 'dead');
  assert.equal(d.unit.activeState(), 'inactive');
  // Started again, it elapses again.
  d.unit.start();
  await d.advance(20 * SEC);
  assert.equal(d.starts.length, 2);
});

test('OnBootSec= counts from boot (monotonic 0): already past and never triggered, it elapses at once', async () => {
  const r = rig(timer('OnBootSec=30s'), { monotonic: 600 * SEC });
  r.unit.start();
  await r.advance(0);
  assert.equal(r.starts.length, 1);
  await r.advance(2 * SEC);
  assert.equal(r.unit.state, 'elapsed');
  const future = rig(timer('OnBootSec=30min'), { monotonic: 600 * SEC });
  future.unit.start();
  assert.equal(future.unit.nextElapseRealtime(), future.now().realtime + 20 * MIN);
});

test('OnStartupSec= counts from the daemon start', async () => {
  const r = rig(timer('OnStartupSec=1min'));
  await r.advance(20 * SEC);
  r.unit.start();
  assert.equal(r.unit.monotonicPlan?.computed, 1000 * SEC + MIN);
  await r.advance(39 * SEC);
  assert.equal(r.starts.length, 0);
  await r.advance(1 * SEC);
  assert.equal(r.starts.length, 1);
});

test('OnBootSec= + OnUnitActiveSec= repeat from each activation of the unit', async () => {
  const r = rig(timer('OnBootSec=1h\nOnUnitActiveSec=1min'), { monotonic: 10 * SEC, serviceMs: 3000 });
  r.unit.start();
  // No activation of the unit yet: OnUnitActiveSec= has no base, OnBootSec= decides.
  assert.equal(r.unit.monotonicPlan?.by, 'OnBootSec=1h');
  await r.advance(HOUR - 10 * SEC);
  assert.equal(r.starts.length, 1);
  await r.advance(3.5 * MIN);
  // 1h, 1h+1min, +2min, +3min: the base is the unit's activation (or the trigger), not its end.
  assert.equal(r.starts.length, 4);
  const gaps = r.starts.slice(1).map((t, i) => t - (r.starts[i] as number));
  assert.deepEqual(gaps, [MIN, MIN, MIN]);
  assert.equal(r.unit.state, 'waiting');
  assert.equal(r.unit.monotonicPlan?.by, 'OnUnitActiveSec=1min');
});

test("OnUnitInactiveSec= counts from the end of the unit's run", async () => {
  const r = rig(timer('OnActiveSec=1s\nOnUnitInactiveSec=30s'), { serviceMs: 10_000 });
  r.unit.start();
  await r.advance(1 * SEC);
  assert.equal(r.starts.length, 1);
  assert.equal(r.unit.state, 'running');
  await r.advance(10 * SEC);
  assert.equal(r.unit.state, 'waiting');
  await r.advance(29 * SEC);
  assert.equal(r.starts.length, 1);
  await r.advance(1 * SEC);
  assert.equal(r.starts.length, 2);
  assert.equal((r.starts[1] as number) - (r.starts[0] as number), 40 * SEC);
});

test('the earliest value wins; status explains which', () => {
  const r = rig(timer('OnCalendar=*-*-* 18:00:00\nOnActiveSec=2h'));
  r.unit.start();
  assert.equal(iso(r.unit.nextElapseRealtime() as number), '2024-03-30T14:00:00.000Z');
  assert.match(r.unit.explainNext() ?? '', /^OnActiveSec=2h/);
  const lines = r.unit.statusLines();
  assert.ok(
    lines.some((l) => /Trigger: Sat 2024-03-30 14:00:00 UTC; 2h 0min left/.test(l)),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /Triggers: job\.service/.test(l)));
});

test('AccuracySec= coalesces to the machine-wide spot of the minute (sd-event sleep_between)', () => {
  // The table: latest possible minute spot, else 10 s, 1 s, 250 ms spots, else the window's end.
  assert.equal(sleepBetween(100 * SEC, 100 * SEC + MIN, 17 * SEC), 137 * SEC);
  assert.equal(sleepBetween(100 * SEC, 100 * SEC + 20 * SEC, 17 * SEC), 117 * SEC);
  assert.equal(sleepBetween(100 * SEC, 100 * SEC + 2 * SEC, 17_300_000), 101_300_000);
  assert.equal(sleepBetween(100 * SEC, 100 * SEC + 1, 17 * SEC), 100 * SEC);
  assert.equal(sleepBetween(0, MIN, 5), 0);
  // The perturbation: (boot id qword 0 ^ qword 1) % 1 min.
  const id = parseId128('0123456789abcdef0123456789abcdee') as Buffer;
  assert.equal(perturbFromBootId(id), Number((id.readBigUInt64LE(0) ^ id.readBigUInt64LE(8)) % 60_000_000n));
  assert.equal(perturbFromBootId(undefined), 0);

  // A daily timer with the default AccuracySec=1min and a perturbation of 42 s elapses at 00:00:42.
  const r = rig('[Timer]\nOnCalendar=daily\n', { perturb: 42 * SEC });
  r.unit.start();
  assert.equal(iso(r.unit.realtimePlan?.next as number), '2024-03-31T00:00:00.000Z');
  assert.equal(iso(r.unit.realtimePlan?.wake as number), '2024-03-31T00:00:42.000Z');
  assert.match(r.unit.explainNext() ?? '', /\+42s coalesced by AccuracySec=1min/);
});

test("SipHash-2-4 matches the reference vector; FixedRandomDelay= is systemd's hash modulo the range", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const msg = Uint8Array.from({ length: 15 }, (_, i) => i);
  assert.equal(siphash24(msg, key), 0xa129ca6149be45e5n);
  assert.equal(siphash24(new Uint8Array(0), key), 0x726fdb47dd0e0e31n);
  assert.equal(
    siphash24(
      Uint8Array.from({ length: 8 }, (_, i) => i),
      key,
    ),
    0x93f5f5799a932462n,
  );
});

test('RandomizedDelaySec=: FixedRandomDelay=yes gives the same delay at every start; the random one comes from the host', () => {
  const text = timer('OnCalendar=daily\nRandomizedDelaySec=1h\nFixedRandomDelay=yes');
  const expected = Number(fixedDelayHash(Buffer.alloc(16, 7), true, 0, 'job.timer') % BigInt(HOUR));
  const a = rig(text);
  a.unit.start();
  assert.equal(a.unit.realtimePlan?.randomDelay, expected);
  a.unit.stop();
  a.unit.start();
  assert.equal(a.unit.realtimePlan?.randomDelay, expected);
  const b = rig(text, { name: 'other.timer' });
  b.unit.start();
  assert.notEqual(b.unit.realtimePlan?.randomDelay, expected, 'another timer gets another delay');
  // Without FixedRandomDelay=: the host's random numbers (seeded here: reproducible), within range.
  const c1 = rig(timer('OnCalendar=daily\nRandomizedDelaySec=1h'), { seed: 9 });
  const c2 = rig(timer('OnCalendar=daily\nRandomizedDelaySec=1h'), { seed: 9 });
  c1.unit.start();
  c2.unit.start();
  const d = c1.unit.realtimePlan?.randomDelay as number;
  assert.equal(d, c2.unit.realtimePlan?.randomDelay);
  assert.ok(d >= 0 && d < HOUR);
  assert.equal(c1.unit.realtimePlan?.next, utc('2024-03-31T00:00:00Z') + d);
});

test('Persistent=yes: a missed run from the stamp is caught up at start, then the stamp moves', async () => {
  const stamp = utc('2024-03-28T00:00:05Z');
  const r = rig(timer('OnCalendar=daily\nPersistent=yes'), { stamp });
  r.unit.start();
  assert.equal(r.unit.lastTrigger.realtime, stamp);
  const plan = r.unit.realtimePlan;
  assert.equal(plan?.catchUp?.missed, utc('2024-03-29T00:00:00Z'));
  assert.equal(plan?.catchUp?.cause, 'downtime');
  assert.match(
    r.unit.explainNext() ?? '',
    /catch-up of Fri 2024-03-29 00:00:00 UTC, missed while triggerd was not running \(Persistent=yes\)/,
  );
  await r.advance(0);
  assert.equal(r.starts.length, 1);
  assert.deepEqual(r.stamps, [{ timer: 'job.timer', realtime: r.starts[0] }]);
  await r.advance(SEC);
  // After the catch-up: the next regular elapse, counted from the catch-up.
  assert.equal(iso(r.unit.nextElapseRealtime() as number), '2024-03-31T00:00:00.000Z');

  // No stamp yet: one is created (now), nothing is caught up.
  const fresh = rig(timer('OnCalendar=daily\nPersistent=yes'));
  fresh.unit.start();
  assert.equal(fresh.stamps.length, 1);
  assert.equal(fresh.unit.realtimePlan?.catchUp, undefined);
  // A stamp in the future (the clock went back) is ignored.
  const future = rig(timer('OnCalendar=daily\nPersistent=yes'), { stamp: utc('2025-01-01T00:00:00Z') });
  future.unit.start();
  assert.equal(future.unit.lastTrigger.realtime, 0);
  assert.equal(iso(future.unit.nextElapseRealtime() as number), '2024-03-31T00:00:00.000Z');
  // Without Persistent=yes the stamp is neither read nor written.
  const plain = rig(timer('OnCalendar=daily'), { stamp });
  plain.unit.start();
  assert.equal(plain.unit.lastTrigger.realtime, 0);
  assert.equal(plain.stamps.length, 0);
});

test('Persistent=yes catch-up is spread by RandomizedDelaySec= and the computed time is shown', async () => {
  const stamp = utc('2024-03-28T00:00:05Z');
  const text = timer('OnCalendar=daily\nPersistent=yes\nRandomizedDelaySec=30min\nFixedRandomDelay=yes');
  const a = rig(text, { stamp, name: 'a.timer' });
  const b = rig(text, { stamp, name: 'b.timer' });
  a.unit.start();
  b.unit.start();
  const da = a.unit.realtimePlan?.randomDelay as number;
  const db = b.unit.realtimePlan?.randomDelay as number;
  assert.notEqual(da, db);
  assert.equal(a.unit.nextElapseRealtime(), a.now().realtime + da);
  assert.match(a.unit.explainNext() ?? '', /of RandomizedDelaySec=30min \(fixed\)/);
  // Virtual time has milliseconds: the wake-up comes in the millisecond of the elapse.
  await a.advance(da - 1000);
  assert.equal(a.starts.length, 0);
  await a.advance(2000);
  assert.equal(a.starts.length, 1);
  assert.ok((a.starts[0] as number) - (a.now().realtime - 2000 - (da - 1000)) >= da);
});

test('a clock jump forward: the missed elapses run once, rebased to the jump and spread', async () => {
  const text = (name: string): string =>
    timer(`OnCalendar=hourly\nRandomizedDelaySec=10min\nFixedRandomDelay=yes\n# ${name}`);
  const rigs = ['a.timer', 'b.timer', 'c.timer'].map((n) => rig(text(n), { name: n }));
  for (const r of rigs) r.unit.start();
  for (const r of rigs) r.jump(5 * HOUR);
  const nexts = rigs.map((r) => r.unit.nextElapseRealtime() as number);
  for (const [i, r] of rigs.entries()) {
    const now = r.now().realtime;
    assert.equal(r.unit.realtimePlan?.catchUp?.cause, 'clock-change');
    assert.ok((nexts[i] as number) >= now && (nexts[i] as number) < now + 10 * MIN);
    assert.match(r.unit.explainNext() ?? '', /skipped by a clock change/);
  }
  assert.equal(new Set(nexts).size, 3, 'not all at once');
  for (const r of rigs) await r.advance(10 * MIN);
  for (const r of rigs) assert.equal(r.starts.length, 1, 'once, not five times');

  // Without a random delay the catch-up runs right away; a resume is named as such.
  const plain = rig(timer('OnCalendar=hourly'));
  plain.unit.start();
  plain.jump(3 * HOUR, 'resume');
  assert.match(plain.unit.explainNext() ?? '', /missed during suspend/);
  await plain.advance(0);
  assert.equal(plain.starts.length, 1);
});

test('a clock jump back rewinds the last trigger; OnClockChange=yes triggers instead of recomputing', async () => {
  const r = rig(timer('OnCalendar=*:00/10'), { serviceMs: 0 });
  r.unit.start();
  await r.advance(10 * MIN);
  assert.equal(r.starts.length, 1);
  const last = r.unit.lastTrigger.realtime;
  r.jump(-HOUR);
  assert.equal(r.unit.lastTrigger.realtime, r.now().realtime);
  assert.ok(r.unit.lastTrigger.realtime < last);
  assert.equal(r.unit.nextElapseRealtime(), last - HOUR + 10 * MIN);

  const c = rig('[Timer]\nOnClockChange=yes\nOnTimezoneChange=yes\n');
  c.unit.start();
  assert.equal(c.unit.state, 'waiting');
  assert.equal(c.unit.nextElapseRealtime(), undefined);
  c.jump(SEC);
  assert.equal(c.starts.length, 1);
  await c.advance(SEC);
  assert.equal(c.unit.state, 'waiting');
  c.unit.onTimezoneChanged();
  assert.equal(c.starts.length, 2);
});

test('DST, Europe/Berlin: a skipped 02:30 runs once at the jump by default, not that day in strict mode', () => {
  const zone = loadTimeZone('Europe/Berlin');
  assert.ok(zone !== undefined);
  const base = { zone, realtime: utc('2024-03-30T12:00:00Z') };
  const def = rig(timer('OnCalendar=*-*-* 02:30:00'), base);
  def.unit.start();
  assert.equal(iso(def.unit.nextElapseRealtime() as number), '2024-03-31T01:00:00.000Z');
  const strict = rig(timer('OnCalendar=*-*-* 02:30:00\n[X-Triggerd]\nStrictSystemdCalendar=yes'), base);
  strict.unit.start();
  assert.equal(iso(strict.unit.nextElapseRealtime() as number), '2024-04-01T00:30:00.000Z');
});

test('DST, Europe/Berlin: a repeated 02:30 runs once in both modes', async () => {
  const zone = loadTimeZone('Europe/Berlin');
  for (const extra of ['', '\n[X-Triggerd]\nStrictSystemdCalendar=yes']) {
    const r = rig(timer(`OnCalendar=*-*-* 02:30:00${extra}`), {
      zone,
      realtime: utc('2024-10-26T12:00:00Z'),
    });
    r.unit.start();
    assert.equal(iso(r.unit.nextElapseRealtime() as number), '2024-10-27T00:30:00.000Z');
    await r.advance(26 * HOUR);
    assert.deepEqual(r.starts.map(iso), ['2024-10-27T00:30:00.000Z'], extra);
    assert.equal(iso(r.unit.nextElapseRealtime() as number), '2024-10-28T01:30:00.000Z');
  }
});

test('a missing Unit= fails the start clearly; a unit that vanishes fails the timer with result resources', async () => {
  const r = rig(timer('OnActiveSec=1s'), { missing: true });
  const out = r.unit.start();
  assert.equal(typeof out, 'object');
  assert.match(
    (out as { reason: string }).reason,
    /job\.service, is not-found \(create it, or name another with Unit=\)/,
  );
  assert.equal(r.unit.state, 'failed');
  assert.equal(r.unit.result, 'resources');
  assert.ok(r.unit.statusLines().some((l) => /Problem: the unit to trigger/.test(l)));
  r.unit.resetFailed();
  assert.equal(r.unit.state, 'dead');

  const v = rig(timer('OnActiveSec=1s'));
  v.unit.start();
  v.service = { active: 'inactive', load: 'not-found' };
  await v.advance(SEC);
  assert.equal(v.unit.state, 'failed');
  assert.equal(v.unit.result, 'resources');
  assert.equal(v.starts.length, 0);
});

test('a start job that ends without the unit running (condition, dependency) puts the timer back to waiting', async () => {
  const r = rig(timer('OnActiveSec=1s\nOnUnitActiveSec=1min'), { jobResult: 'skipped' });
  r.unit.start();
  await r.advance(SEC);
  assert.equal(r.starts.length, 1);
  // OnUnitActiveSec= counts from the trigger when the unit never became active (systemd's MAX()).
  assert.equal(r.unit.state, 'waiting');
  assert.equal(r.unit.nextElapseRealtime(), (r.starts[0] as number) + MIN);
  const e = rig(timer('OnActiveSec=1s'), { jobResult: 'skipped' });
  e.unit.start();
  await e.advance(SEC);
  assert.equal(e.unit.state, 'elapsed', 'nothing left to wait for');
  const s = rig(timer('OnActiveSec=1s\nOnCalendar=hourly'), { jobResult: 'failed' });
  s.unit.start();
  await s.advance(SEC);
  assert.equal(s.unit.state, 'waiting');
});

test("stop disarms; properties carry systemd's names", async () => {
  const r = rig(timer('OnActiveSec=10s\nPersistent=yes'));
  r.unit.start();
  const p = r.unit.properties();
  assert.equal(p.Unit, 'job.service');
  assert.equal(p.Persistent, true);
  assert.equal(p.NextElapseUSecMonotonic, 1000 * SEC + 10 * SEC);
  assert.equal(p.AccuracyUSec, 1);
  r.unit.stop();
  assert.equal(r.unit.state, 'dead');
  await r.advance(20 * SEC);
  assert.equal(r.starts.length, 0);
  assert.equal(r.clock.pending, 0);
});
