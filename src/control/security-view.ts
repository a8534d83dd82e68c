// `triggerctl security`: the JSON the daemon sends for one service (its exposure report) or for
// all of them (one row each), and the text triggerctl prints from it, in the spirit of
// `systemd-analyze security`. Pure: the scoring is src/exec/security-exposure.ts.
import type { LoadedUnitFile } from '../units/config-types';
import {
  assessSecurity,
  formatExposure,
  type CheckState,
  type SecurityCheck,
  type SecurityLevel,
  type SecurityReport,
} from '../exec/security-exposure';

export interface SecurityReportJson extends SecurityReport {
  unit: string;
}

/** One line of `triggerctl security` without a unit. */
export interface SecurityRowJson {
  unit: string;
  exposure: number;
  level: SecurityLevel;
  declaredExposure: number;
  declaredLevel: SecurityLevel;
  /** How many keys the file sets that triggerd parses but does not apply. */
  notEnforced: number;
}

const COMMAND_SETTINGS = [
  ['ExecCondition', 'execCondition'],
  ['ExecStartPre', 'execStartPre'],
  ['ExecStart', 'execStart'],
  ['ExecStartPost', 'execStartPost'],
  ['ExecReload', 'execReload'],
  ['ExecStop', 'execStop'],
  ['ExecStopPost', 'execStopPost'],
] as const;

/** The report of a loaded service's file; undefined when it has no [Service] settings. */
export function serviceSecurityJson(
  name: string,
  file: LoadedUnitFile,
  managerIsRoot: boolean,
): SecurityReportJson | undefined {
  const service = file.service;
  if (service === undefined) return undefined;
  const commands = COMMAND_SETTINGS.flatMap(([setting, field]) =>
    service[field].map((command) => ({ setting, command })),
  );
  const report = assessSecurity({
    exec: service.exec,
    ignored: (file.ignoredSettings ?? []).filter((e) => e.section === 'Service'),
    commands,
    managerIsRoot,
  });
  return { unit: name, ...report };
}

export function securityRow(r: SecurityReportJson): SecurityRowJson {
  return {
    unit: r.unit,
    exposure: r.exposure,
    level: r.level,
    declaredExposure: r.declaredExposure,
    declaredLevel: r.declaredLevel,
    notEnforced: r.notEnforced.length,
  };
}

const MARKS: Readonly<Record<CheckState, string>> = {
  protected: '✓',
  partial: '~',
  exposed: '✗',
  'not-enforced': '!',
  info: ' ',
};

function table(headers: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => {
        if (i === cells.length - 1) return c;
        const w = widths[i] ?? 0;
        return rightAligned.has(i) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** A check's share of the overall score (the column adds up to it, give or take rounding). */
function share(c: SecurityCheck, totalWeight: number): number {
  return totalWeight === 0 ? 0 : (10 * c.weight * c.exposure) / totalWeight;
}

/** The per-setting table, the overall score and the settings triggerd does not apply. */
export function formatSecurityReport(r: SecurityReportJson): string {
  const total = r.checks.reduce((s, c) => s + c.weight, 0);
  const sorted = [...r.checks].sort(
    (a, b) =>
      share(b, total) - share(a, total) ||
      Number(b.state === 'not-enforced') - Number(a.state === 'not-enforced') ||
      b.weight - a.weight ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const rows = sorted.map((c) => {
    const s = share(c, total);
    return [
      MARKS[c.state],
      c.name,
      c.set ? 'yes' : 'no',
      String(c.weight),
      s > 0 ? s.toFixed(2) : '',
      c.description,
    ];
  });
  const lines = table(['', 'NAME', 'SET', 'WEIGHT', 'EXPOSURE', 'DESCRIPTION'], rows, new Set([3, 4]));
  lines.push('');
  lines.push(`→ Overall exposure level for ${r.unit}: ${formatExposure(r.exposure)} ${r.level}`);
  lines.push(
    `  With every setting in the file applied, as under systemd: ${formatExposure(r.declaredExposure)} ${r.declaredLevel}`,
  );
  if (r.notEnforced.length > 0) {
    lines.push(`  ! Parsed, not enforced by triggerd: ${r.notEnforced.map((k) => `${k}=`).join(' ')}`);
  }
  for (const n of r.notes) lines.push(`  Note: ${n}`);
  return lines.join('\n') + '\n';
}

/** One line per service, most exposed first. */
export function formatSecurityList(rows: readonly SecurityRowJson[]): string {
  const sorted = [...rows].sort(
    (a, b) => b.exposure - a.exposure || (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0),
  );
  return (
    table(
      ['UNIT', 'EXPOSURE', 'PREDICATE', 'AS WRITTEN', 'NOT ENFORCED'],
      sorted.map((r) => [
        r.unit,
        formatExposure(r.exposure),
        r.level,
        `${formatExposure(r.declaredExposure)} ${r.declaredLevel}`,
        String(r.notEnforced),
      ]),
      new Set([1, 4]),
    ).join('\n') + '\n'
  );
}
