// [Timer] (systemd.timer(5)) as key rows, its defaults and its load-time checks, plus the one
// [X-Triggerd] key of timers (StrictSystemdCalendar=). unit-keys.ts splices these rows into its
// table and calls finalizeTimerConfig() for .timer units; this module imports only types from
// unit-keys.ts (which imports it), so the two load in either order.
//
// Where triggerd is stricter than systemd: systemd ignores an OnCalendar= it cannot parse with a
// warning (and loads a timer that may then never elapse); triggerd refuses the unit and names the
// file, the line and the character where the expression stops making sense.
import type { SourceRef, TimerBase, TimerSection } from '../units/config-types';
import type { ApplyEnv, KeyContext, KeyRow, UnitConfig } from '../units/unit-keys';
import { parseUnitName } from '../units/specifiers';
import { fail, ok, parseBoolean, parseTimeSpanUsec, type ParseResult } from '../units/value-parsers';
import { parseCalendarSpec } from './calendar-spec';

// The codes of unit-keys.ts's KEY_CODES (not imported: that module imports this one).
const BAD_VALUE = 'ERR_UNIT_BAD_VALUE';
const BAD_SETTING = 'ERR_UNIT_BAD_SETTING';
const SPECIFIER = 'ERR_UNIT_SPECIFIER';
const UNSUPPORTED = 'ERR_UNIT_UNSUPPORTED_KEY';

export const TIMER_BASES: readonly TimerBase[] = [
  'OnActiveSec',
  'OnBootSec',
  'OnStartupSec',
  'OnUnitActiveSec',
  'OnUnitInactiveSec',
];

const USEC_PER_MINUTE = 60_000_000;

/** systemd's defaults: AccuracySec=1min, RemainAfterElapse=yes, everything else off. */
export function defaultTimerSection(): TimerSection {
  return {
    calendar: [],
    monotonic: [],
    accuracyUsec: USEC_PER_MINUTE,
    randomizedDelayUsec: 0,
    fixedRandomDelay: false,
    persistent: false,
    wakeSystem: false,
    remainAfterElapse: true,
    onClockChange: false,
    onTimezoneChange: false,
    strictSystemdCalendar: false,
  };
}

function where(s: SourceRef): string {
  return `${s.file}:${s.line}`;
}

/** A finite time span in µs (systemd's parse_sec; "infinity" makes no sense for a timer). */
function timeSpan(t: string): ParseResult<number> {
  const r = parseTimeSpanUsec(t);
  if (r.ok && r.value === Infinity) return fail('a timer needs a finite time span, not infinity');
  return r;
}

/** A [Timer] row: `parse` gets the specifier-expanded value (systemd expands every timer key). */
function timerRow<V>(
  key: string,
  type: string,
  parse: (text: string) => ParseResult<V>,
  set: (t: TimerSection, v: V, ctx: KeyContext) => void,
  reset: (t: TimerSection) => void,
  fatal: boolean,
): KeyRow {
  return {
    section: 'Timer',
    key,
    type,
    apply(cfg: UnitConfig, value: string, ctx: KeyContext): void {
      const refuse = (code: string, reason: string): void => {
        ctx.report(fatal ? 'error' : 'warning', fatal ? BAD_SETTING : code, reason);
        if (fatal) cfg.badSetting = true;
      };
      if (value === '') {
        reset(cfg.timer);
        cfg.explicit.delete(`Timer.${key}`);
        return;
      }
      const e = ctx.expand(value);
      if (!e.ok) return refuse(SPECIFIER, e.message);
      const r = parse(e.value);
      if (!r.ok) return refuse(BAD_VALUE, r.message);
      set(cfg.timer, r.value, ctx);
      cfg.explicit.add(`Timer.${key}`);
    },
  };
}

/** "OnCalendar=Mon 25:00": what is wrong and where, with a caret under the character. */
export function describeCalendarError(text: string, position: number, message: string): string {
  return `invalid calendar expression at character ${position + 1}: ${message}\n    ${text}\n    ${' '.repeat(position)}^`;
}

function boolRow(key: string, set: (t: TimerSection, v: boolean) => void, dflt: boolean): KeyRow {
  return timerRow(
    key,
    'boolean',
    parseBoolean,
    (t, v) => set(t, v),
    (t) => set(t, dflt),
    false,
  );
}

/** The [Timer] rows of the key table. */
export function timerRows(): KeyRow[] {
  // systemd.timer(5): an empty assignment to any On*= resets the whole list, both kinds.
  const resetAll = (t: TimerSection): void => {
    t.calendar = [];
    t.monotonic = [];
  };
  const monotonic = (base: TimerBase): KeyRow =>
    timerRow(
      base,
      'timespan',
      timeSpan,
      (t, usec, ctx) => t.monotonic.push({ base, usec, source: ctx.source }),
      resetAll,
      true,
    );
  return [
    timerRow(
      'OnCalendar',
      'calendar',
      (text) => {
        const r = parseCalendarSpec(text);
        if (!r.ok) return fail(describeCalendarError(text, r.error.position, r.error.message));
        return ok({ text, spec: r.spec });
      },
      (t, v, ctx) => t.calendar.push({ ...v, source: ctx.source }),
      resetAll,
      true,
    ),
    ...TIMER_BASES.map(monotonic),
    timerRow(
      'AccuracySec',
      'timespan',
      timeSpan,
      // sd-event takes 0 as "its default"; systemd documents 1us as the most accurate setting.
      (t, v) => (t.accuracyUsec = Math.max(1, v)),
      (t) => (t.accuracyUsec = USEC_PER_MINUTE),
      false,
    ),
    timerRow(
      'RandomizedDelaySec',
      'timespan',
      timeSpan,
      (t, v) => (t.randomizedDelayUsec = v),
      (t) => (t.randomizedDelayUsec = 0),
      false,
    ),
    boolRow('FixedRandomDelay', (t, v) => (t.fixedRandomDelay = v), false),
    boolRow('Persistent', (t, v) => (t.persistent = v), false),
    timerRow(
      'WakeSystem',
      'boolean',
      parseBoolean,
      (t, v, ctx) => {
        t.wakeSystem = v;
        if (v)
          ctx.report(
            'warning',
            UNSUPPORTED,
            'not supported by triggerd: the timer does not wake the system from suspend (it elapses at resume instead)',
          );
      },
      (t) => (t.wakeSystem = false),
      false,
    ),
    boolRow('RemainAfterElapse', (t, v) => (t.remainAfterElapse = v), true),
    boolRow('OnClockChange', (t, v) => (t.onClockChange = v), false),
    boolRow('OnTimezoneChange', (t, v) => (t.onTimezoneChange = v), false),
    timerRow(
      'Unit',
      'unit',
      (t) => {
        const parts = parseUnitName(t);
        if (parts === undefined) return fail(`not a valid unit name: ${JSON.stringify(t)}`);
        if (parts.kind === 'template') return fail(`${t} is a template; name an instance or a plain unit`);
        if (parts.suffix === 'timer') return fail(`a timer unit cannot trigger another timer unit (${t})`);
        return ok(t);
      },
      (t, v, ctx) => {
        t.unit = v;
        t.unitSource = ctx.source;
      },
      (t) => {
        t.unit = undefined;
        t.unitSource = undefined;
      },
      true,
    ),
  ];
}

/** The unit a timer starts: Unit=, or the .service of its own name (foo@x.timer → foo@x.service). */
export function timerTriggerName(timerName: string, section: Pick<TimerSection, 'unit'>): string {
  return section.unit ?? `${timerName.replace(/\.timer$/, '')}.service`;
}

/** systemd's timer_verify() and triggerd's [X-Triggerd] key; false when the unit is unusable. */
export function finalizeTimerConfig(
  cfg: UnitConfig,
  env: ApplyEnv,
  fragmentPath: string | undefined,
  triggerdSources: Readonly<Record<string, SourceRef>> = {},
): boolean {
  const t = cfg.timer;
  const name = env.specifiers.unit.name;
  const header =
    cfg.serviceSource ?? (fragmentPath !== undefined ? { file: fragmentPath, line: 1 } : undefined);
  const refuse = (message: string, source: SourceRef | undefined): void => {
    env.diagnostics.push({
      severity: 'error',
      code: BAD_SETTING,
      message: source !== undefined ? `${where(source)}: ${message}` : message,
      source,
    });
    cfg.badSetting = true;
  };
  if (t.calendar.length === 0 && t.monotonic.length === 0 && !t.onClockChange && !t.onTimezoneChange) {
    refuse(
      'timer unit has no value setting (OnCalendar=, OnActiveSec=, OnBootSec=, OnStartupSec=, ' +
        'OnUnitActiveSec=, OnUnitInactiveSec=, OnClockChange= or OnTimezoneChange=), refusing',
      header,
    );
  }
  const target = timerTriggerName(name, t);
  if (target === name) refuse(`Unit=${target} names the timer itself, refusing`, t.unitSource ?? header);
  const strict = cfg.triggerd.StrictSystemdCalendar;
  if (strict !== undefined) {
    const r = parseBoolean(strict);
    if (r.ok) t.strictSystemdCalendar = r.value;
    else
      refuse(
        `[X-Triggerd] StrictSystemdCalendar=${strict}: ${r.message}`,
        triggerdSources.StrictSystemdCalendar ?? header,
      );
  }
  // A timer orders itself before what it starts (systemd adds the same edge).
  if (!cfg.unit.dependencies.Before.includes(target)) cfg.unit.dependencies.Before.push(target);
  return !cfg.badSetting;
}
