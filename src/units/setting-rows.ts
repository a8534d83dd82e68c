// Table-driven parsing of one unit-file section, shared by [Mount] and [Automount]: a row per key
// says how to parse, set and reset its value. What systemd does with every such key is done here
// once: an empty value resets it, specifiers are expanded where the row asks, and a bad value or
// specifier is a warning with file:line that leaves the setting as it was.
import type { Diagnostic, SourceRef } from './config-types';
import { expandSpecifiers, type SpecifierContext } from './specifiers';
import type { ParseResult } from './value-parsers';

export type SettingRow<S> = {
  parse: (text: string) => ParseResult<unknown>;
  set: (s: S, value: never, source: SourceRef) => void;
  reset: (s: S) => void;
  expand?: boolean;
};

export interface SettingEntry {
  key: string;
  value: string;
  source: SourceRef;
}

export type Report = (
  severity: Diagnostic['severity'],
  code: string,
  message: string,
  source?: SourceRef,
) => void;

/** Diagnostics into `out`, their message prefixed with file:line. */
export function reporterInto(out: Diagnostic[]): Report {
  return (severity, code, message, source) => {
    const at = source !== undefined ? `${source.file}:${source.line}: ` : '';
    out.push({ severity, code, message: `${at}${message}`, source });
  };
}

/** The row of `key`: own keys only ('valueOf=' or '__proto__=' would find Object.prototype's members). */
export function rowOf<S>(
  rows: Readonly<Record<string, SettingRow<S>>>,
  key: string,
): SettingRow<S> | undefined {
  return Object.prototype.hasOwnProperty.call(rows, key) ? rows[key] : undefined;
}

/** Applies one `key=value` line of [`section`] to `s` through its row. */
export function applyRow<S>(
  section: string,
  s: S,
  row: SettingRow<S>,
  e: SettingEntry,
  specifiers: SpecifierContext,
  report: Report,
): void {
  if (e.value === '') {
    row.reset(s);
    return;
  }
  let text = e.value;
  if (row.expand === true) {
    const x = expandSpecifiers(text, specifiers);
    if (!x.ok) {
      report('warning', 'ERR_UNIT_SPECIFIER', `[${section}] ${e.key}=${e.value}: ${x.message}`, e.source);
      return;
    }
    text = x.value;
  }
  const r = row.parse(text);
  if (!r.ok) {
    report('warning', 'ERR_UNIT_BAD_VALUE', `[${section}] ${e.key}=${e.value}: ${r.message}`, e.source);
    return;
  }
  row.set(s, r.value as never, e.source);
}
