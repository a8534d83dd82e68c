// `triggerctl list-timers`: systemctl list-timers' layout (NEXT, LEFT, LAST, PASSED, UNIT,
// ACTIVATES; one space between columns; "n/a" where there is nothing; sorted by the next elapse),
// computed from the rows the daemon sends. Pure: the current time and the zone are parameters.
import { formatRelative, formatTimestamp } from './calendar-analyze';
import type { TimeZone } from './time-zone';

export interface TimerRow {
  unit: string;
  activates: string;
  /** Wall-clock µs; 0 when there is none. */
  next: number;
  last: number;
  why?: string;
}

export interface ListTimersOptions {
  nowUsec: number;
  zone: TimeZone;
  /** --all was given (no hint at the end). */
  all: boolean;
  /** Add a WHY column (triggerd's: why the next elapse is when it is). */
  why?: boolean;
}

export function formatListTimers(rows: readonly TimerRow[], o: ListTimersOptions): string {
  const sorted = [...rows].sort((a, b) => {
    const an = a.next > 0 ? a.next : Infinity;
    const bn = b.next > 0 ? b.next : Infinity;
    if (an !== bn) return an < bn ? -1 : 1;
    return a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0;
  });
  const headers = ['NEXT', 'LEFT', 'LAST', 'PASSED', 'UNIT', 'ACTIVATES'];
  if (o.why === true) headers.push('WHY');
  const cells = sorted.map((r) => {
    const row = [
      r.next > 0 ? formatTimestamp(r.next, o.zone) : 'n/a',
      r.next > 0 ? formatRelative(r.next, o.nowUsec) : 'n/a',
      r.last > 0 ? formatTimestamp(r.last, o.zone) : 'n/a',
      r.last > 0 ? formatRelative(r.last, o.nowUsec) : 'n/a',
      r.unit,
      r.activates,
    ];
    if (o.why === true) row.push(r.why !== undefined && r.why !== '' ? r.why : '-');
    return row;
  });
  let text = '';
  if (sorted.length > 0) {
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
    const line = (c: string[]): string =>
      c
        .map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i] ?? 0)))
        .join(' ')
        .trimEnd();
    text += [line(headers), ...cells.map(line)].join('\n') + '\n\n';
  }
  text += `${sorted.length} timers listed.\n`;
  if (!o.all) text += 'Pass --all to see loaded but inactive timers, too.\n';
  return text;
}
