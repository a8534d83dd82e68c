// Small parsers for unit-file values, one per value syntax of systemd.syntax(7), systemd.time(7),
// systemd.exec(5) and systemd.service(5). Each returns a result instead of throwing; a parser that
// accepts part of its input (a list with one bad item) says what it dropped in `warnings`. The key
// tables in unit-keys.ts turn those into diagnostics with file:line.
import { constants as osConstants } from 'node:os';
import type { ExitStatusSet, ResourceLimit } from './config-types';

export type ParseResult<T> = { ok: true; value: T; warnings?: string[] } | { ok: false; message: string };

export function ok<T>(value: T, warnings?: string[]): ParseResult<T> {
  return warnings !== undefined && warnings.length > 0 ? { ok: true, value, warnings } : { ok: true, value };
}

export function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

/** Specifier expansion of one word, supplied by the caller (the key tables); identity when absent. */
export type ExpandWord = (word: string) => ParseResult<string>;

const WHITESPACE = ' \t\n\r';

function isSpace(c: string | undefined): boolean {
  return c !== undefined && WHITESPACE.includes(c);
}

// ---------------------------------------------------------------------------------------------
// Booleans and numbers

const TRUE_WORDS = new Set(['1', 'yes', 'y', 'true', 't', 'on']);
const FALSE_WORDS = new Set(['0', 'no', 'n', 'false', 'f', 'off']);

/** systemd's boolean: 1/yes/true/on and 0/no/false/off (plus y/t/n/f), any case. */
export function parseBoolean(text: string): ParseResult<boolean> {
  const s = text.trim().toLowerCase();
  if (TRUE_WORDS.has(s)) return ok(true);
  if (FALSE_WORDS.has(s)) return ok(false);
  return fail(`not a boolean: ${JSON.stringify(text)}`);
}

/** A decimal integer in [min, max]; a leading '+' or '-' is accepted. */
export function parseInteger(text: string, min: number, max: number): ParseResult<number> {
  const s = text.trim();
  if (!/^[+-]?[0-9]+$/.test(s)) return fail(`not an integer: ${JSON.stringify(text)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return fail(`${s} is out of range ${min}…${max}`);
  }
  return ok(n);
}

/** An unsigned decimal integer. */
export function parseUnsigned(text: string, max = Number.MAX_SAFE_INTEGER): ParseResult<number> {
  const s = text.trim();
  if (!/^[0-9]+$/.test(s)) return fail(`not an unsigned integer: ${JSON.stringify(text)}`);
  return parseInteger(s, 0, max);
}

/** An access mode in octal (UMask=, RuntimeDirectoryMode=): at most 07777. */
export function parseMode(text: string): ParseResult<number> {
  const s = text.trim();
  if (!/^[0-7]+$/.test(s)) return fail(`not an octal mode: ${JSON.stringify(text)}`);
  const n = parseInt(s, 8);
  if (n > 0o7777) return fail(`mode ${s} is larger than 07777`);
  return ok(n);
}

// ---------------------------------------------------------------------------------------------
// Time spans (systemd.time(7))

const USEC_PER: Record<string, number> = {};
function unitNames(usec: number, ...names: string[]): void {
  for (const n of names) USEC_PER[n] = usec;
}
unitNames(0.001, 'nsec', 'ns');
unitNames(1, 'usec', 'us', 'µs', 'μs');
unitNames(1_000, 'msec', 'ms');
unitNames(1_000_000, 'seconds', 'second', 'sec', 's');
unitNames(60_000_000, 'minutes', 'minute', 'min', 'm');
unitNames(3_600_000_000, 'hours', 'hour', 'hr', 'h');
unitNames(86_400_000_000, 'days', 'day', 'd');
unitNames(604_800_000_000, 'weeks', 'week', 'w');
// systemd.time(7): a month is 30.44 days, a year 365.25 days.
unitNames(2_629_800_000_000, 'months', 'month', 'M');
unitNames(31_557_600_000_000, 'years', 'year', 'y');
// Longest first, so "min" wins over "m" and "msec" over "ms".
const UNIT_WORDS = Object.keys(USEC_PER).sort((a, b) => b.length - a.length);
const USEC_MAX = 2 ** 64 - 1;

export interface TimeSpanOptions {
  /** Unit of a bare number: 's' for most settings, 'us' for LimitRTTIME=, 'ns' for TimerSlackNSec=. */
  defaultUnit?: 's' | 'ms' | 'us' | 'ns';
  /** Whether "ns"/"nsec" are accepted (only where the granularity allows it). */
  allowNs?: boolean;
}

/**
 * A time span in microseconds (may be fractional only when ns are allowed): "1min 30s", "5",
 * "100ms", "2h", "1.5s", "infinity" (→ Infinity). Components add up; spaces between them and
 * between number and unit may be omitted. Units are case-sensitive ("M" is months, "m" minutes).
 */
export function parseTimeSpanUsec(text: string, options: TimeSpanOptions = {}): ParseResult<number> {
  const s = text.trim();
  if (s === 'infinity') return ok(Infinity);
  if (s === '') return fail('empty time span');
  const defaultUsec = USEC_PER[options.defaultUnit ?? 's'];
  let total = 0;
  let i = 0;
  while (i < s.length) {
    while (isSpace(s[i])) i++;
    if (i >= s.length) break;
    const m = /^\+?([0-9]*)(?:\.([0-9]+))?/.exec(s.slice(i));
    if (m === null || (m[1] === '' && m[2] === undefined))
      return fail(`bad time span: ${JSON.stringify(text)}`);
    i += m[0].length;
    // "5." and "1.s" are refused by systemd: a '.' needs digits after it.
    if (s[i] === '.') return fail(`bad time span: ${JSON.stringify(text)}`);
    while (isSpace(s[i])) i++;
    let unit = '';
    for (const w of UNIT_WORDS) {
      if (s.startsWith(w, i)) {
        unit = w;
        break;
      }
    }
    if (unit !== '') {
      const next = s[i + unit.length];
      // A unit must end the word: "1mo" is not "1m" followed by junk.
      if (next !== undefined && !isSpace(next) && !/[0-9.+]/.test(next)) {
        return fail(`unknown time unit in ${JSON.stringify(text)}`);
      }
      if ((unit === 'ns' || unit === 'nsec') && options.allowNs !== true) {
        return fail(`nanoseconds are not accepted here: ${JSON.stringify(text)}`);
      }
      i += unit.length;
    } else if (i < s.length && !/[0-9.+]/.test(s[i])) {
      return fail(`unknown time unit in ${JSON.stringify(text)}`);
    }
    const mult = unit === '' ? defaultUsec : USEC_PER[unit];
    const whole = m[1] === '' ? 0 : Number(m[1]);
    const frac = m[2] === undefined ? 0 : Number(`0.${m[2]}`);
    let part = whole * mult + frac * mult;
    // systemd keeps whole microseconds; only ns-granular settings keep the fraction.
    if (options.allowNs !== true) part = Math.floor(part);
    total += part;
    if (total > USEC_MAX) return fail(`time span out of range: ${JSON.stringify(text)}`);
  }
  return ok(total);
}

/** A time span in milliseconds (Infinity for "infinity"). Bare numbers are seconds by default. */
export function parseTimeSpan(text: string, options: TimeSpanOptions = {}): ParseResult<number> {
  const r = parseTimeSpanUsec(text, options);
  if (!r.ok) return r;
  return ok(r.value === Infinity ? Infinity : r.value / 1000);
}

// ---------------------------------------------------------------------------------------------
// Sizes

const SIZE_SUFFIX: Record<string, number> = {
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
  E: 1024 ** 6,
};

/** A size in bytes with optional K/M/G/T/P/E suffix (base 1024) and decimal fraction: "1.5G". */
export function parseSize(text: string): ParseResult<number> {
  const s = text.trim();
  const m = /^([0-9]+)(?:\.([0-9]+))?\s*([BKMGTPE]?)$/.exec(s);
  if (m === null) return fail(`not a size: ${JSON.stringify(text)}`);
  const mult = SIZE_SUFFIX[m[3] === '' ? 'B' : m[3]];
  const frac = m[2] === undefined ? 0 : Number(`0.${m[2]}`);
  const n = Math.floor(Number(m[1]) * mult + frac * mult);
  if (!Number.isFinite(n) || n > 2 ** 64 - 1) return fail(`size out of range: ${JSON.stringify(text)}`);
  return ok(n);
}

// ---------------------------------------------------------------------------------------------
// Signals and exit statuses

const SIGRTMIN = 34;
const SIGRTMAX = 64;
const SIGNALS = new Map<string, number>();
for (const [name, num] of Object.entries(osConstants.signals)) {
  if (typeof num === 'number') SIGNALS.set(name.slice(3), num);
}

/** A signal by name (SIGTERM, TERM), RTMIN+n / RTMAX-n, or number 1…64. */
export function parseSignal(text: string): ParseResult<number> {
  const s = text.trim();
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    return n >= 1 && n <= SIGRTMAX ? ok(n) : fail(`signal number out of range: ${s}`);
  }
  const bare = s.startsWith('SIG') ? s.slice(3) : s;
  const known = SIGNALS.get(bare);
  if (known !== undefined) return ok(known);
  const rt = /^RT(MIN|MAX)(?:([+-])([0-9]+))?$/.exec(bare);
  if (rt !== null) {
    const off = rt[3] === undefined ? 0 : Number(rt[3]);
    let n: number;
    if (rt[1] === 'MIN') n = rt[2] === '-' ? -1 : SIGRTMIN + off;
    else n = rt[2] === '+' ? -1 : SIGRTMAX - off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return ok(n);
  }
  return fail(`unknown signal: ${JSON.stringify(text)}`);
}

/** Exit status names, as `systemd-analyze exit-status` lists them (LSB, BSD sysexits, systemd's own). */
export const EXIT_STATUS_NAMES: Readonly<Record<string, number>> = {
  SUCCESS: 0,
  FAILURE: 1,
  INVALIDARGUMENT: 2,
  NOTIMPLEMENTED: 3,
  NOPERMISSION: 4,
  NOTINSTALLED: 5,
  NOTCONFIGURED: 6,
  NOTRUNNING: 7,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  NOHOST: 68,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  OSFILE: 72,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
  CHDIR: 200,
  NICE: 201,
  FDS: 202,
  EXEC: 203,
  MEMORY: 204,
  LIMITS: 205,
  OOM_ADJUST: 206,
  SIGNAL_MASK: 207,
  STDIN: 208,
  STDOUT: 209,
  CHROOT: 210,
  IOPRIO: 211,
  TIMERSLACK: 212,
  SECUREBITS: 213,
  SETSCHEDULER: 214,
  CPUAFFINITY: 215,
  GROUP: 216,
  USER: 217,
  CAPABILITIES: 218,
  CGROUP: 219,
  SETSID: 220,
  CONFIRM: 221,
  STDERR: 222,
  PAM: 224,
  NETWORK: 225,
  NAMESPACE: 226,
  NO_NEW_PRIVILEGES: 227,
  SECCOMP: 228,
  SELINUX_CONTEXT: 229,
  PERSONALITY: 230,
  APPARMOR: 231,
  ADDRESS_FAMILIES: 232,
  RUNTIME_DIRECTORY: 233,
  CHOWN: 235,
  SMACK_PROCESS_LABEL: 236,
  KEYRING: 237,
  STATE_DIRECTORY: 238,
  CACHE_DIRECTORY: 239,
  LOGS_DIRECTORY: 240,
  CONFIGURATION_DIRECTORY: 241,
  NUMA_POLICY: 242,
  CREDENTIALS: 243,
  BPF: 244,
  EXCEPTION: 255,
};

/**
 * SuccessExitStatus=-style lists: exit codes 0…255 or their names, and signal names. Bad items are
 * dropped with a warning; the rest is kept (as systemd does).
 */
export function parseExitStatusSet(text: string): ParseResult<ExitStatusSet> {
  const words = splitWords(text, { unquote: true, escapes: 'retain' });
  if (!words.ok) return words;
  const codes: number[] = [];
  const signals: number[] = [];
  const warnings: string[] = [];
  for (const { value: w } of words.value) {
    if (/^[0-9]+$/.test(w)) {
      const n = Number(w);
      if (n <= 255) codes.push(n);
      else warnings.push(`exit status out of range 0…255: ${w}`);
      continue;
    }
    const named = EXIT_STATUS_NAMES[w];
    if (named !== undefined) {
      codes.push(named);
      continue;
    }
    const sig = parseSignal(w);
    if (sig.ok) signals.push(sig.value);
    else warnings.push(`not an exit status or signal: ${w}`);
  }
  return ok({ codes: [...new Set(codes)], signals: [...new Set(signals)] }, warnings);
}

// ---------------------------------------------------------------------------------------------
// Quoting and C escapes (systemd.syntax(7) "QUOTING")

/**
 * How backslashes are treated while splitting words:
 * - 'c-strict': C escapes (\n \t \\ \" \x41 \101 \u00e9 ...); an unknown escape is an error;
 * - 'c-relax': C escapes; an unknown escape is kept as written, with a warning (Exec lines);
 * - 'retain': backslashes stay as they are (unit names such as dev-disk-by\x2dlabel.device).
 */
export type EscapeMode = 'c-strict' | 'c-relax' | 'retain';

export interface SplitOptions {
  /** Whether "…" and '…' group words (and are removed). */
  unquote: boolean;
  escapes: EscapeMode;
}

export interface Word {
  value: string;
  /** The word as written, quotes and escapes included (to tell a lone ';' from "\;" or ";"). */
  raw: string;
}

/** Decode one C escape starting after the backslash at s[i]; returns the text and its length. */
function cEscape(s: string, i: number): { text: string; length: number } | undefined {
  const c = s[i];
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
    s: ' ',
  };
  if (c === undefined) return undefined;
  if (simple[c] !== undefined) return { text: simple[c], length: 1 };
  let code: number | undefined;
  let length = 0;
  if (c === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
    code = parseInt(s.slice(i + 1, i + 3), 16);
    length = 3;
  } else if (c === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) {
    code = parseInt(s.slice(i + 1, i + 5), 16);
    length = 5;
  } else if (c === 'U' && /^[0-9a-fA-F]{8}$/.test(s.slice(i + 1, i + 9))) {
    code = parseInt(s.slice(i + 1, i + 9), 16);
    length = 9;
  } else if (/^[0-3][0-7]{2}$/.test(s.slice(i, i + 3))) {
    code = parseInt(s.slice(i, i + 3), 8);
    length = 3;
  }
  // NUL cannot be part of a value; surrogates and values past U+10FFFF are not characters.
  if (code === undefined || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
    return undefined;
  // \xNN and octal escapes name bytes; as in systemd, bytes ≥ 0x80 stand for the same code point.
  return { text: String.fromCodePoint(code), length };
}

/**
 * Split a value into words as systemd does: whitespace separates, quotes group (and may appear
 * inside a word, as in a shell: a"b c"d is one word), backslash escapes per `escapes`.
 * Fails on unbalanced quotes or, with 'c-strict', an unknown escape.
 */
export function splitWords(text: string, options: SplitOptions): ParseResult<Word[]> {
  const words: Word[] = [];
  const warnings: string[] = [];
  const s = text;
  let i = 0;
  while (i < s.length) {
    while (isSpace(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    let value = '';
    let quote: string | undefined;
    for (; i < s.length; i++) {
      const c = s[i];
      if (quote === undefined && isSpace(c)) break;
      if (options.unquote && (c === '"' || c === "'")) {
        if (quote === undefined) {
          quote = c;
          continue;
        }
        if (quote === c) {
          quote = undefined;
          continue;
        }
      }
      if (c === '\\' && options.escapes !== 'retain') {
        const e = cEscape(s, i + 1);
        if (e !== undefined) {
          value += e.text;
          i += e.length;
          continue;
        }
        const bad = s.slice(i, i + 2);
        if (options.escapes === 'c-strict') return fail(`unknown escape sequence ${JSON.stringify(bad)}`);
        warnings.push(`unknown escape sequence ${JSON.stringify(bad)} kept as written`);
        // Keep the backslash and the next character together, so "\ " does not split the word.
        value += bad;
        i += bad.length - 1;
        continue;
      }
      value += c;
    }
    if (quote !== undefined) return fail(`unbalanced quoting in ${JSON.stringify(text)}`);
    words.push({ value, raw: s.slice(start, i) });
  }
  return ok(words, warnings);
}

/** C-unescape a whole string (StandardInputText=). */
export function unescapeC(text: string): ParseResult<string> {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      out += text[i];
      continue;
    }
    const e = cEscape(text, i + 1);
    if (e === undefined) return fail(`unknown escape sequence ${JSON.stringify(text.slice(i, i + 2))}`);
    out += e.text;
    i += e.length;
  }
  return ok(out);
}

function expandAll(words: string[], expand: ExpandWord | undefined): ParseResult<string[]> {
  if (expand === undefined) return ok(words);
  const out: string[] = [];
  for (const w of words) {
    const r = expand(w);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out);
}

// ---------------------------------------------------------------------------------------------
// Exec lines (systemd.service(5) "COMMAND LINES")

export interface ParsedExecCommand {
  path: string;
  argv: string[];
  ignoreFailure: boolean;
  noEnvExpand: boolean;
  fullPrivileges: boolean;
  noSetuidDrop: boolean;
  ambientFallback: boolean;
}

/**
 * One ExecStart=-style value → the commands in it. A lone ';' word separates commands ("\;" is a
 * literal ';' argument). Prefixes '-', '@', ':' and one of '+', '!', '!!' in any order. The
 * executable must be absolute or a bare file name. Specifiers are expanded per word after
 * unquoting, so an instance name with spaces stays one argument. Errors here make the unit
 * refuse to load, as in systemd.
 */
export function parseExecLine(text: string, expand?: ExpandWord): ParseResult<ParsedExecCommand[]> {
  const split = splitWords(text, { unquote: true, escapes: 'c-relax' });
  if (!split.ok) return split;
  const warnings = [...(split.warnings ?? [])];
  const groups: string[][] = [[]];
  for (const w of split.value) {
    if (w.raw === ';') groups.push([]);
    else groups[groups.length - 1].push(w.raw === '\\;' ? ';' : w.value);
  }
  const commands: ParsedExecCommand[] = [];
  for (const group of groups) {
    if (group.length === 0) continue;
    const first = group[0];
    const flags = {
      ignoreFailure: false,
      separateArgv0: false,
      noEnvExpand: false,
      fullPrivileges: false,
      noSetuidDrop: false,
      ambientFallback: false,
    };
    let k = 0;
    for (; k < first.length; k++) {
      const c = first[k];
      const privileged = flags.fullPrivileges || flags.noSetuidDrop;
      if (c === '-' && !flags.ignoreFailure) flags.ignoreFailure = true;
      else if (c === '@' && !flags.separateArgv0) flags.separateArgv0 = true;
      else if (c === ':' && !flags.noEnvExpand) flags.noEnvExpand = true;
      else if (c === '+' && !privileged) flags.fullPrivileges = true;
      else if (c === '!' && !privileged) flags.noSetuidDrop = true;
      else if (c === '!' && flags.noSetuidDrop && !flags.ambientFallback) flags.ambientFallback = true;
      else break;
    }
    const expanded = expandAll([first.slice(k), ...group.slice(1)], expand);
    if (!expanded.ok) return expanded;
    const [path, ...rest] = expanded.value;
    if (path === '') {
      warnings.push(`empty executable path in ${JSON.stringify(text)}, command ignored`);
      continue;
    }
    if (!path.startsWith('/') && path.includes('/')) {
      return fail(`neither an absolute path nor a bare executable name: ${JSON.stringify(path)}`);
    }
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(path))
      return fail(`control character in executable path ${JSON.stringify(path)}`);
    if (flags.separateArgv0 && rest.length === 0) {
      return fail(`'@' needs a second word to use as argv[0]: ${JSON.stringify(text)}`);
    }
    const argv = flags.separateArgv0 ? rest : [path, ...rest];
    commands.push({
      path,
      argv,
      ignoreFailure: flags.ignoreFailure,
      noEnvExpand: flags.noEnvExpand,
      fullPrivileges: flags.fullPrivileges,
      noSetuidDrop: flags.noSetuidDrop && !flags.ambientFallback,
      ambientFallback: flags.ambientFallback,
    });
  }
  return ok(commands, warnings);
}

// ---------------------------------------------------------------------------------------------
// Environment=, path lists, names

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * Environment=: quoted KEY=VALUE words. A bad escape or unbalanced quote rejects the whole line;
 * a single bad word (no '=', bad name) is dropped with a warning.
 */
export function parseEnvironmentLine(text: string, expand?: ExpandWord): ParseResult<[string, string][]> {
  const split = splitWords(text, { unquote: true, escapes: 'c-strict' });
  if (!split.ok) return split;
  const out: [string, string][] = [];
  const warnings: string[] = [];
  for (const w of split.value) {
    let word = w.value;
    if (expand !== undefined) {
      const r = expand(word);
      if (!r.ok) {
        warnings.push(r.message);
        continue;
      }
      word = r.value;
    }
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? '' : word.slice(eq + 1);
    // eslint-disable-next-line no-control-regex
    if (eq < 0 || !isValidEnvName(name) || /[\x00-\x08\x0b-\x1f\x7f]/.test(value)) {
      warnings.push(`invalid environment assignment, ignored: ${JSON.stringify(word)}`);
      continue;
    }
    out.push([name, value]);
  }
  return ok(out, warnings);
}

export interface PathListOptions {
  /** Prefixes allowed before the path, in this order ("-" then "+" for ReadOnlyPaths=). Kept in the result. */
  prefixes?: string;
  /** Whether relative paths are fine (RuntimeDirectory= wants relative ones). */
  relative?: 'forbid' | 'require';
}

/**
 * A whitespace-separated, quotable list of paths. Bad items are dropped with a warning. Prefixes
 * such as '-' (ignore if missing) stay part of the returned string for the consumer to read.
 */
export function parsePathList(
  text: string,
  options: PathListOptions = {},
  expand?: ExpandWord,
): ParseResult<string[]> {
  const split = splitWords(text, { unquote: true, escapes: 'retain' });
  if (!split.ok) return split;
  const out: string[] = [];
  const warnings: string[] = [];
  for (const w of split.value) {
    let word = w.value;
    if (expand !== undefined) {
      const r = expand(word);
      if (!r.ok) {
        warnings.push(r.message);
        continue;
      }
      word = r.value;
    }
    let k = 0;
    for (const p of options.prefixes ?? '') if (word[k] === p) k++;
    const path = word.slice(k);
    const relative = options.relative ?? 'forbid';
    if (path === '') {
      warnings.push(`empty path, ignored: ${JSON.stringify(word)}`);
    } else if (relative === 'forbid' && !path.startsWith('/')) {
      warnings.push(`path is not absolute, ignored: ${JSON.stringify(word)}`);
    } else if (relative === 'require' && (path.startsWith('/') || path.split('/').includes('..'))) {
      warnings.push(`path must be relative and without "..", ignored: ${JSON.stringify(word)}`);
    } else {
      out.push(word);
    }
  }
  return ok(out, warnings);
}

/** A plain whitespace-separated word list with quotes removed (PassEnvironment=, Sockets=, ...). */
export function parseWordList(text: string, expand?: ExpandWord): ParseResult<string[]> {
  const split = splitWords(text, { unquote: true, escapes: 'c-strict' });
  if (!split.ok) return split;
  return expandAll(
    split.value.map((w) => w.value),
    expand,
  );
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/** Capability numbers, as `systemd-analyze capability` lists them (Linux 5.9+). */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];
const CAP_BY_NAME = new Map(CAPABILITIES.map((n, i) => [n, i]));
/** Every capability this table knows. */
export const ALL_CAPABILITIES: bigint = (1n << BigInt(CAPABILITIES.length)) - 1n;

/**
 * One CapabilityBoundingSet=/AmbientCapabilities= line: '' → the empty set ('reset'), '~' alone →
 * the full set, '~A B' → everything but A and B (merged with AND), 'A B' → A and B (merged with OR).
 * Names are case-insensitive; numbers are accepted; unknown names are dropped with a warning.
 */
export interface CapabilityAssignment {
  mode: 'set-empty' | 'set-full' | 'or' | 'and';
  mask: bigint;
}

export function parseCapabilityList(text: string): ParseResult<CapabilityAssignment> {
  let s = text.trim();
  if (s === '') return ok({ mode: 'set-empty', mask: 0n });
  const invert = s.startsWith('~');
  if (invert) s = s.slice(1).trim();
  if (invert && s === '') return ok({ mode: 'set-full', mask: ALL_CAPABILITIES });
  const split = splitWords(s, { unquote: true, escapes: 'retain' });
  if (!split.ok) return split;
  let mask = 0n;
  const warnings: string[] = [];
  for (const { value } of split.value) {
    const upper = value.toUpperCase();
    let bit = CAP_BY_NAME.get(upper.startsWith('CAP_') ? upper : `CAP_${upper}`);
    if (bit === undefined && /^[0-9]+$/.test(value) && Number(value) < 63) bit = Number(value);
    if (bit === undefined) warnings.push(`unknown capability, ignored: ${value}`);
    else mask |= 1n << BigInt(bit);
  }
  return invert
    ? ok({ mode: 'and', mask: ALL_CAPABILITIES & ~mask }, warnings)
    : ok({ mode: 'or', mask }, warnings);
}

/** Fold one assignment into the current set (undefined = not configured yet). */
export function applyCapabilityAssignment(current: bigint | undefined, a: CapabilityAssignment): bigint {
  if (a.mode === 'set-empty' || a.mode === 'set-full') return a.mask;
  if (current === undefined) return a.mask;
  return a.mode === 'and' ? current & a.mask : current | a.mask;
}

// ---------------------------------------------------------------------------------------------
// Resource limits (systemd.exec(5) "LimitCPU=, ...")

type LimitUnit = 'bytes' | 'count' | 'cpu-seconds' | 'rttime-usec' | 'nice';

/** Resource → how its value is written. Keys are the lower-case suffix of Limit*=. */
export const RLIMIT_UNITS: Readonly<Record<string, LimitUnit>> = {
  cpu: 'cpu-seconds',
  fsize: 'bytes',
  data: 'bytes',
  stack: 'bytes',
  core: 'bytes',
  rss: 'bytes',
  nofile: 'count',
  as: 'bytes',
  nproc: 'count',
  memlock: 'bytes',
  locks: 'count',
  sigpending: 'count',
  msgqueue: 'bytes',
  nice: 'nice',
  rtprio: 'count',
  rttime: 'rttime-usec',
};

function parseLimitValue(unit: LimitUnit, text: string): ParseResult<number> {
  const s = text.trim();
  if (s === 'infinity') return ok(Infinity);
  switch (unit) {
    case 'bytes':
      return parseSize(s);
    case 'count':
      return parseUnsigned(s);
    case 'cpu-seconds': {
      const r = parseTimeSpanUsec(s, { defaultUnit: 's' });
      // The kernel counts CPU time in whole seconds; systemd rounds up.
      return r.ok ? ok(Math.ceil(r.value / 1_000_000)) : r;
    }
    case 'rttime-usec':
      return parseTimeSpanUsec(s, { defaultUnit: 'us' });
    case 'nice': {
      // "+N"/"-N" is a nice value (-20…19); a bare number is the raw rlimit (0…40).
      if (s.startsWith('+') || s.startsWith('-')) {
        const n = parseInteger(s, -20, 19);
        return n.ok ? ok(20 - n.value) : n;
      }
      return parseInteger(s, 0, 40);
    }
  }
}

/** LimitX= value: one value for both limits or "soft:hard"; "infinity"; units as the resource wants. */
export function parseResourceLimit(resource: string, text: string): ParseResult<ResourceLimit> {
  const unit = RLIMIT_UNITS[resource];
  if (unit === undefined) return fail(`unknown resource limit ${resource}`);
  const parts = text.split(':');
  if (parts.length > 2) return fail(`bad resource limit: ${JSON.stringify(text)}`);
  const soft = parseLimitValue(unit, parts[0]);
  if (!soft.ok) return soft;
  const hard = parts.length === 2 ? parseLimitValue(unit, parts[1]) : soft;
  if (!hard.ok) return hard;
  if (soft.value > hard.value) return fail(`soft limit is above the hard limit: ${JSON.stringify(text)}`);
  return ok({ resource, soft: soft.value, hard: hard.value });
}

// ---------------------------------------------------------------------------------------------
// One-of-a-set values

/** One of a fixed set of words (Type=, Restart=, KillMode=, ...). */
export function parseEnum<T extends string>(allowed: readonly T[], text: string): ParseResult<T> {
  const s = text.trim();
  const found = allowed.find((a) => a === s);
  return found !== undefined ? ok(found) : fail(`${JSON.stringify(s)} is not one of ${allowed.join(', ')}`);
}

/** A boolean or one of some extra words (ProtectSystem=yes|full|strict → 'yes'|'no'|...). */
export function parseBooleanOr<T extends string>(
  extra: readonly T[],
  yes: T,
  no: T,
  text: string,
): ParseResult<T> {
  const b = parseBoolean(text);
  if (b.ok) return ok(b.value ? yes : no);
  return parseEnum(extra, text);
}
