// [Automount] (systemd.automount(5)) as a small key table over the raw entries the loader keeps
// for the section, its defaults and load-time checks, plus triggerd's [X-Triggerd] keys of an
// automount. The loader calls parseAutomountConfig() for .automount units (unit-loader.ts), so the
// shared key tables of unit-keys.ts stay as they are.
//
// Checked as systemd does: Where= defaults to the path the unit's name encodes, must be absolute
// and normalized, not '/', and must match the name ("Where= setting doesn't match unit name").
import type { Diagnostic, SourceRef, UnitSection } from './config-types';
import type { SpecifierContext } from './specifiers';
import { applyRow, reporterInto, rowOf, type SettingRow } from './setting-rows';
import { unescapePath, unitNameFromPath } from './unit-name';
import { fail, ok, parseMode, parseTimeSpan, type ParseResult } from './value-parsers';

/** [Automount] plus its [X-Triggerd] keys; times in ms. */
export interface AutomountSection {
  /** Absolute, normalized mount point ('' when the unit has none it could use). */
  where: string;
  whereSource?: SourceRef;
  /** ExtraOptions=: options of the autofs mount itself, as a comma-separated list. */
  extraOptions: string[];
  /** Mode of the directories created for Where= (0755). */
  directoryMode: number;
  /** TimeoutIdleSec=: 0 never expires (and never arms a timer). */
  timeoutIdleMs: number;
  /**
   * [X-Triggerd] FailBackoffSec=: after a failed mount, accesses fail at once (EHOSTDOWN) for this
   * long, doubling with each failure in a row up to 32 times; 0 retries every access (systemd).
   */
  failBackoffMs: number;
}

const BAD_VALUE = 'ERR_UNIT_BAD_VALUE';
const BAD_SETTING = 'ERR_UNIT_BAD_SETTING';
const UNKNOWN_KEY = 'ERR_UNIT_UNKNOWN_KEY';
const PATH_MAX = 4096;

/** Tokens of the kernel's autofs mount options that ExtraOptions= may add. */
const AUTOFS_EXTRA_OPTIONS = /^(strictexpire|ignore|uid=[0-9]+|gid=[0-9]+)$/;

export function defaultAutomountSection(): AutomountSection {
  return { where: '', extraOptions: [], directoryMode: 0o755, timeoutIdleMs: 0, failBackoffMs: 5000 };
}

/** The .mount unit an automount starts: the one named after its Where=. */
export function automountMountName(section: AutomountSection): string {
  return unitNameFromPath(section.where, 'mount');
}

/** An absolute, normalized directory: no '.'/'..', no NUL, folded slashes; not '/'. */
export function parseMountPoint(text: string): ParseResult<string> {
  if (text.includes('\0')) return fail('path contains a NUL byte');
  if (!text.startsWith('/')) return fail(`path is not absolute: ${JSON.stringify(text)}`);
  const parts = text.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..')
      return fail(`path is not normalized (has a "${p}" component): ${JSON.stringify(text)}`);
  }
  const simplified = `/${parts.join('/')}`;
  if (simplified.length >= PATH_MAX) return fail(`path is longer than PATH_MAX (${PATH_MAX})`);
  if (simplified === '/') return fail('the root directory cannot be an automount point');
  return ok(simplified);
}

function parseExtraOptions(text: string): ParseResult<string[]> {
  const out: string[] = [];
  for (const token of text.split(',').map((t) => t.trim())) {
    if (token === '') continue;
    if (!AUTOFS_EXTRA_OPTIONS.test(token)) {
      return fail(
        `${JSON.stringify(token)} is not an autofs mount option triggerd passes on (strictexpire, ignore, uid=, gid=)`,
      );
    }
    if (!out.includes(token)) out.push(token);
  }
  return ok(out);
}

type Row = SettingRow<AutomountSection>;

const ROWS: Readonly<Record<string, Row>> = {
  Where: {
    parse: parseMountPoint,
    set: (s, v: string, source) => {
      s.where = v;
      s.whereSource = source;
    },
    reset: (s) => {
      s.where = '';
      s.whereSource = undefined;
    },
    expand: true,
  },
  ExtraOptions: {
    parse: parseExtraOptions,
    // Repeated lines add up, as systemd's config_parse_string with a list does.
    set: (s, v: string[]) => {
      for (const o of v) if (!s.extraOptions.includes(o)) s.extraOptions.push(o);
    },
    reset: (s) => (s.extraOptions = []),
    expand: true,
  },
  DirectoryMode: {
    parse: parseMode,
    set: (s, v: number) => (s.directoryMode = v),
    reset: (s) => (s.directoryMode = 0o755),
  },
  TimeoutIdleSec: {
    parse: (t) => {
      const r = parseTimeSpan(t);
      // "infinity" is no timeout, like 0.
      return r.ok && r.value === Infinity ? ok(0) : r;
    },
    set: (s, v: number) => (s.timeoutIdleMs = v),
    reset: (s) => (s.timeoutIdleMs = 0),
  },
};

export interface AutomountConfigInput {
  /** The unit's name: foo-bar.automount. */
  name: string;
  /** The [Automount] entries of the fragment and drop-ins, in order. */
  entries: readonly { key: string; value: string; source: SourceRef }[];
  /** [X-Triggerd] as read (key → value), with where each was set. */
  triggerd: Readonly<Record<string, string>>;
  triggerdSources?: Readonly<Record<string, SourceRef>>;
  specifiers: SpecifierContext;
  /** The unit's [Unit] section: the automount orders itself Before= its mount unit. */
  unit: UnitSection;
  fragmentPath?: string;
  diagnostics: Diagnostic[];
}

/** Parse [Automount]; `usable` is false where systemd refuses to load the unit. */
export function parseAutomountConfig(input: AutomountConfigInput): {
  section: AutomountSection;
  usable: boolean;
} {
  const s = defaultAutomountSection();
  const report = reporterInto(input.diagnostics);
  for (const e of input.entries) {
    if (e.key.startsWith('X-')) continue;
    const row = rowOf(ROWS, e.key);
    if (row === undefined) {
      report('warning', UNKNOWN_KEY, `unknown key ${e.key} in section [Automount], ignored`, e.source);
      continue;
    }
    applyRow('Automount', s, row, e, input.specifiers, report);
  }
  const backoff = input.triggerd.FailBackoffSec;
  if (backoff !== undefined) {
    const r = parseTimeSpan(backoff);
    const source = input.triggerdSources?.FailBackoffSec;
    if (!r.ok || r.value === Infinity) {
      report(
        'warning',
        BAD_VALUE,
        `[X-Triggerd] FailBackoffSec=${backoff}: ${r.ok ? 'must be finite' : r.message}`,
        source,
      );
    } else {
      s.failBackoffMs = r.value;
    }
  }

  const fileSource = input.fragmentPath !== undefined ? { file: input.fragmentPath, line: 1 } : undefined;
  // systemd: without Where=, the path the unit's name encodes.
  if (s.where === '') {
    try {
      const derived = parseMountPoint(unescapePath(input.name.replace(/\.automount$/, '')));
      if (derived.ok) s.where = derived.value;
    } catch {
      // not a path name: refused below
    }
  }
  if (s.where === '') {
    report(
      'error',
      BAD_SETTING,
      `${input.name} has no usable Where= and its name encodes no mount point, refusing`,
      fileSource,
    );
    return { section: s, usable: false };
  }
  let expected: string;
  try {
    expected = unitNameFromPath(s.where, 'automount');
  } catch (err) {
    report(
      'error',
      BAD_SETTING,
      `Where=${s.where}: ${(err as Error).message}, refusing`,
      s.whereSource ?? fileSource,
    );
    return { section: s, usable: false };
  }
  if (expected !== input.name && !input.name.includes('@')) {
    report(
      'error',
      BAD_SETTING,
      `Where=${s.where} does not match the unit name ${input.name} (it would be ${expected}), refusing`,
      s.whereSource ?? fileSource,
    );
    return { section: s, usable: false };
  }
  // systemd's automount_add_trigger_dependencies: Before= (and Triggers=) the mount unit.
  const mount = automountMountName(s);
  if (!input.unit.dependencies.Before.includes(mount)) input.unit.dependencies.Before.push(mount);
  return { section: s, usable: true };
}
