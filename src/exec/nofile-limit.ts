// The open-files limit services start with when their unit sets no LimitNOFILE=: systemd's
// DefaultLimitNOFILE= soft value, 1024, because select(2) cannot handle fds above 1023; the hard
// limit stays what the daemon has, so a service may raise its soft limit itself. Without this a
// service would inherit the daemon's soft limit, which Node raises to the hard one at start-up
// (often 1048576: a program that closes every fd up to the limit then makes a million calls).

/** systemd's DefaultLimitNOFILE= soft value. */
export const DEFAULT_NOFILE_SOFT = 1024;

export interface OpenFilesLimit {
  /** -1: unlimited. */
  soft: number;
  hard: number;
}

/** The "Max open files" line of a /proc/PID/limits text; undefined when it has none. */
export function parseOpenFilesLimit(text: string): OpenFilesLimit | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  if (line === undefined) return undefined;
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
  const value = (word: string | undefined): number | undefined =>
    word === 'unlimited' ? -1 : word !== undefined && /^\d+$/.test(word) ? Number(word) : undefined;
  const s = value(soft);
  const h = value(hard);
  return s === undefined || h === undefined ? undefined : { soft: s, hard: h };
}

/** The soft limit a service gets by default under the hard limit `hard` (-1: unlimited). */
export function defaultNofileSoft(hard: number): number {
  return hard === -1 ? DEFAULT_NOFILE_SOFT : Math.min(DEFAULT_NOFILE_SOFT, hard);
}
