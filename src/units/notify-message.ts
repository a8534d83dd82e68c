// sd_notify datagrams, read exactly as systemd reads them: the message checks of its notify
// receiver, its tag splitting (strv_split_newlines), and the per-field parsing of
// service_notify_message(). Pure: no I/O, nothing here throws on any input. The number and text
// rules below were checked against systemd 252 itself (test/fixtures/notify/systemd-252-oracle.json).
//
// Also here: who may send (authorizeNotify, systemd's NotifyAccess=) and what a BARRIER=1 message
// is (isBarrier). Reading /proc for the refusal messages is injected, so this file stays pure.
import type { NotifyAccess } from './config-types';

export type { NotifyAccess };

/** systemd's NOTIFY_BUFFER_MAX (PIPE_BUF): longer datagrams are dropped. */
export const NOTIFY_BUFFER_MAX = 4096;
/** systemd's NOTIFY_FD_MAX: the receiver has room for this many fds per datagram. */
export const NOTIFY_FD_MAX = 768;
/** FDNAME= (and LISTEN_FDNAMES) names are at most this long. */
export const FDNAME_MAX = 255;
/** How many ancestors a refusal message names before it stops ("…"). */
export const NOTIFY_PARENT_CHAIN_MAX = 8;

/** Why a whole datagram was dropped. Stable codes, for logs and counters. */
export type NotifyMessageErrorCode =
  /** More than NOTIFY_BUFFER_MAX bytes (systemd: "exceeded maximum size"). */
  | 'ERR_NOTIFY_TOO_LONG'
  /** A NUL byte before the last byte (systemd: "embedded NUL"). */
  | 'ERR_NOTIFY_EMBEDDED_NUL'
  /** Ends in an unpaired backslash: systemd's tag splitter fails on it and drops the message. */
  | 'ERR_NOTIFY_BAD_ESCAPE';

/** Why one tag was ignored while the rest of the message still counts (systemd logs and ignores it). */
export type NotifyFieldErrorCode =
  /** Not valid UTF-8 by systemd's rules (which also refuse surrogates and noncharacters). */
  | 'ERR_NOTIFY_FIELD_NOT_UTF8'
  /** A known key with a value systemd would not accept (MAINPID=abc, READY=0, FDNAME=a:b, …). */
  | 'ERR_NOTIFY_FIELD_VALUE'
  /** A tag without `=` or with an empty key: systemd ignores it. */
  | 'ERR_NOTIFY_TAG_MALFORMED';

export interface NotifyFieldError {
  /** The key, or the whole tag when it has no `=`. For logs: invalid UTF-8 shows as U+FFFD. */
  key: string;
  value: string;
  code: NotifyFieldErrorCode;
  message: string;
}

/**
 * The typed content of one notify message. Booleans are the `KEY=1` flags (set when any tag is
 * exactly that, as systemd's strv_contains); the other fields take the first tag with their key
 * (systemd's strv_find_startswith), valid or not: a later duplicate never overrides it.
 */
export interface NotifyFields {
  /** Every tag, in order, after splitting (escapes applied). For logs; invalid UTF-8 as U+FFFD. */
  tags: string[];
  /** READY=1: start-up (or a reload) is complete. */
  ready: boolean;
  /** RELOADING=1: a reload began; systemd counts it for notify-reload only with MONOTONIC_USEC=. */
  reloading: boolean;
  /** STOPPING=1. When several come together: STOPPING > READY > RELOADING. */
  stopping: boolean;
  /** STATUS=: free text; '' clears the status. */
  status?: string;
  /** ERRNO=: a number 0..4095 or an errno name (EIO, any case); 0 clears. */
  errno?: number;
  /** BUSERROR=: a D-Bus error name (printable ASCII without quotes or backslash); '' clears. */
  busError?: string;
  /** VARLINKERROR=: as BUSERROR= for Varlink. */
  varlinkError?: string;
  /** EXIT_STATUS=: 0..255. Informational (systemd does not act on it from services either). */
  exitStatus?: number;
  /** MAINPID=: the new main pid (> 0). Honoured only from a trusted sender: see the router. */
  mainPid?: number;
  /** MAINPIDFD=1: the one fd sent along is a pidfd of the new main process. */
  mainPidFd: boolean;
  /** MAINPIDFDID=: the pidfd inode id MAINPID= must have (guards against pid reuse). */
  mainPidFdId?: bigint;
  /** WATCHDOG=1 ('ping': keep-alive) or WATCHDOG=trigger. */
  watchdog?: 'ping' | 'trigger';
  /**
   * WATCHDOG_USEC=, EXTEND_TIMEOUT_USEC=, MONOTONIC_USEC=: microseconds. systemd reads them as
   * uint64; values above 2^53 (≈ 285 years, no real deadline) become Infinity, which is what
   * systemd's USEC_INFINITY (2^64 − 1) means: no limit.
   */
  watchdogUsec?: number;
  extendTimeoutUsec?: number;
  monotonicUsec?: number;
  /** FDSTORE=1: keep the fds sent along in the fd store. */
  fdStore: boolean;
  /** FDSTOREREMOVE=1: drop the stored fds named FDNAME=. */
  fdStoreRemove: boolean;
  /** FDNAME=: ≤ 255 printable ASCII characters without ':' ('' is valid). */
  fdName?: string;
  /** false when FDPOLL=0: do not drop stored fds on POLLHUP/POLLERR. */
  fdPoll: boolean;
  /** BARRIER=1: see isBarrier(). A message with it is never anything else. */
  barrier: boolean;
  /** RESTART_RESET=1: reset the restart counter. */
  restartReset: boolean;
  /** NOTIFYACCESS=: change NotifyAccess= at runtime. */
  notifyAccess?: NotifyAccess;
  /**
   * Keys triggerd does not interpret, first value each (valid UTF-8 only). Consumers ignore them;
   * sd_notify(3) documents `X_` as the prefix for a service's own keys.
   */
  other: ReadonlyMap<string, string>;
  /** Tags that were ignored, each with the reason. The other fields are unaffected. */
  invalid: NotifyFieldError[];
}

export type NotifyParseResult =
  { ok: true; fields: NotifyFields } | { ok: false; code: NotifyMessageErrorCode; message: string };

const NUL = 0x00;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Parses one datagram. 0 bytes is a valid, empty message (the 2016 crash: systemd#4234); so is a
 * lone NUL. Whole-message errors drop it; a bad tag is reported in `invalid` and ignored.
 */
export function parseNotifyMessage(buf: Uint8Array): NotifyParseResult {
  const length = buf.length;
  if (length > NOTIFY_BUFFER_MAX) {
    return {
      ok: false,
      code: 'ERR_NOTIFY_TOO_LONG',
      message: `notify message of ${length} bytes exceeds the maximum of ${NOTIFY_BUFFER_MAX}`,
    };
  }
  // One trailing NUL is allowed (a C client may send its terminator), any other is not.
  const textEnd = length > 0 && buf[length - 1] === NUL ? length - 1 : length;
  const embedded = buf.subarray(0, textEnd).indexOf(NUL);
  if (embedded >= 0) {
    return {
      ok: false,
      code: 'ERR_NOTIFY_EMBEDDED_NUL',
      message: `notify message has an embedded NUL byte at offset ${embedded}`,
    };
  }
  const tags = splitNotifyTags(buf.subarray(0, textEnd));
  if (tags === undefined) {
    return {
      ok: false,
      code: 'ERR_NOTIFY_BAD_ESCAPE',
      message: 'notify message ends in an unpaired backslash (systemd cannot split it into tags)',
    };
  }
  return { ok: true, fields: readFields(tags) };
}

/**
 * systemd's strv_split_newlines(): tags are separated by runs of '\n' or '\r' (empty lines
 * vanish), and a backslash takes the next byte literally (so "a\\b" is "ab" and an escaped
 * newline stays in the tag). An unpaired backslash at the end is an error (undefined), on which
 * systemd drops the whole message. Works on bytes: NUL must already be excluded.
 */
export function splitNotifyTags(text: Uint8Array): Buffer[] | undefined {
  // Views into the datagram where a tag has no escapes (nearly always): no copy per tag.
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  const tags: Buffer[] = [];
  const n = bytes.length;
  let p = 0;
  for (;;) {
    while (p < n && (bytes[p] === NEWLINE || bytes[p] === CARRIAGE_RETURN)) p++;
    if (p >= n) return tags;
    const start = p;
    let escapes = 0;
    while (p < n) {
      const c = bytes[p] as number;
      if (c === BACKSLASH) {
        if (p + 1 >= n) return undefined;
        escapes++;
        p += 2;
        continue;
      }
      if (c === NEWLINE || c === CARRIAGE_RETURN) break;
      p++;
    }
    tags.push(escapes === 0 ? bytes.subarray(start, p) : unescapeTag(bytes, start, p, escapes));
  }
}

/** A tag's bytes with each backslash dropped and the byte after it taken as it is. */
function unescapeTag(bytes: Buffer, start: number, end: number, escapes: number): Buffer {
  const out = Buffer.allocUnsafe(end - start - escapes);
  let o = 0;
  for (let i = start; i < end; i++) {
    if (bytes[i] === BACKSLASH) i++;
    out[o++] = bytes[i] as number;
  }
  return out;
}

/** Keys read with strv_contains(tags, "KEY=<literal>"): present when any tag is exactly that. */
const FLAG_KEYS: ReadonlyMap<string, string> = new Map([
  ['READY', '1'],
  ['RELOADING', '1'],
  ['STOPPING', '1'],
  ['MAINPIDFD', '1'],
  ['FDSTORE', '1'],
  ['FDSTOREREMOVE', '1'],
  ['BARRIER', '1'],
  ['RESTART_RESET', '1'],
  // FDPOLL=0 is the one that matters; FDPOLL=1 says the default and is accepted silently.
  ['FDPOLL', '0'],
]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** `other` of a message without such keys (most): one shared empty map, not one per message. */
const NO_OTHER: ReadonlyMap<string, string> = new Map();
/** readValue's answer for a key triggerd does not interpret. */
const UNKNOWN_KEY = Symbol('unknown notify key');

function readFields(rawTags: Buffer[]): NotifyFields {
  let other: Map<string, string> | undefined;
  const fields: Mutable<NotifyFields> = {
    tags: rawTags.map((tag) => tag.toString('utf8')),
    ready: false,
    reloading: false,
    stopping: false,
    mainPidFd: false,
    fdStore: false,
    fdStoreRemove: false,
    fdPoll: true,
    barrier: false,
    restartReset: false,
    other: NO_OTHER,
    invalid: [],
  };
  // Keys seen so far: the first in a variable, a Set only from the second on (most messages
  // have one key, STATUS= or READY=1).
  let firstKey: string | undefined;
  let seen: Set<string> | undefined;
  for (const tag of rawTags) {
    const equals = tag.indexOf(EQUALS);
    if (equals <= 0) {
      fields.invalid.push(
        fieldError(tag.toString('utf8'), '', 'ERR_NOTIFY_TAG_MALFORMED', 'tag has no KEY='),
      );
      continue;
    }
    // Known keys are ASCII, so comparing latin1 text compares the bytes.
    const key = tag.toString('latin1', 0, equals);
    const flag = FLAG_KEYS.get(key);
    if (flag !== undefined) {
      readFlag(fields, key, flag, tag, equals);
      continue;
    }
    if (key === firstKey || seen?.has(key) === true) continue; // the first tag with a key decides
    if (firstKey === undefined) firstKey = key;
    else (seen ??= new Set<string>()).add(key);
    if (!isValidUtf8(tag)) {
      fields.invalid.push(
        fieldError(
          tag.toString('utf8', 0, equals),
          tag.toString('utf8', equals + 1),
          'ERR_NOTIFY_FIELD_NOT_UTF8',
          'not valid UTF-8',
        ),
      );
      continue;
    }
    const value = tag.toString('utf8', equals + 1);
    const problem = readValue(fields, key, value);
    if (problem === UNKNOWN_KEY) {
      other ??= new Map<string, string>();
      other.set(key, value);
      fields.other = other;
    } else if (problem !== undefined) {
      fields.invalid.push(fieldError(key, value, 'ERR_NOTIFY_FIELD_VALUE', problem));
    }
  }
  return fields;
}

function readFlag(
  fields: Mutable<NotifyFields>,
  key: string,
  literal: string,
  tag: Buffer,
  equals: number,
): void {
  const value = tag.toString('latin1', equals + 1);
  const expected = value === literal;
  if (key === 'FDPOLL') {
    if (expected) fields.fdPoll = false;
    else if (value !== '1') fields.invalid.push(flagError(key, tag, equals, 'must be 0 or 1'));
    return;
  }
  if (!expected) {
    fields.invalid.push(flagError(key, tag, equals, `only ${key}=${literal} means anything`));
    return;
  }
  switch (key) {
    case 'READY':
      fields.ready = true;
      break;
    case 'RELOADING':
      fields.reloading = true;
      break;
    case 'STOPPING':
      fields.stopping = true;
      break;
    case 'MAINPIDFD':
      fields.mainPidFd = true;
      break;
    case 'FDSTORE':
      fields.fdStore = true;
      break;
    case 'FDSTOREREMOVE':
      fields.fdStoreRemove = true;
      break;
    case 'BARRIER':
      fields.barrier = true;
      break;
    case 'RESTART_RESET':
      fields.restartReset = true;
      break;
  }
}

function flagError(key: string, tag: Buffer, equals: number, message: string): NotifyFieldError {
  return fieldError(key, tag.toString('utf8', equals + 1), 'ERR_NOTIFY_FIELD_VALUE', message);
}

/** Stores one key's value; returns why it is invalid, undefined, or UNKNOWN_KEY for `other`. */
function readValue(
  fields: Mutable<NotifyFields>,
  key: string,
  value: string,
): string | undefined | typeof UNKNOWN_KEY {
  switch (key) {
    case 'STATUS':
      fields.status = value;
      return undefined;
    case 'ERRNO': {
      const parsed = parseErrno(value);
      if (!parsed.ok) return `not an errno number (0..4095) or name (${parsed.error})`;
      fields.errno = parsed.value;
      return undefined;
    }
    case 'BUSERROR':
    case 'VARLINKERROR':
      if (value !== '' && !isSafeAscii(value)) return 'not printable ASCII without quotes and backslashes';
      if (key === 'BUSERROR') fields.busError = value;
      else fields.varlinkError = value;
      return undefined;
    case 'EXIT_STATUS': {
      const parsed = parseSafeAtoi(value);
      if (!parsed.ok || parsed.value < 0 || parsed.value > 255) return 'not an exit status 0..255';
      fields.exitStatus = parsed.value;
      return undefined;
    }
    case 'MAINPID': {
      const parsed = parsePid(value);
      if (!parsed.ok) return `not a pid (${parsed.error})`;
      fields.mainPid = parsed.value;
      return undefined;
    }
    case 'MAINPIDFDID': {
      const parsed = parseSafeAtou64(value);
      if (!parsed.ok) return `not an unsigned 64-bit number (${parsed.error})`;
      fields.mainPidFdId = parsed.value;
      return undefined;
    }
    case 'WATCHDOG':
      if (value === '1') fields.watchdog = 'ping';
      else if (value === 'trigger') fields.watchdog = 'trigger';
      else return 'must be 1 or trigger';
      return undefined;
    case 'WATCHDOG_USEC':
    case 'EXTEND_TIMEOUT_USEC':
    case 'MONOTONIC_USEC': {
      const parsed = parseSafeAtou64(value);
      if (!parsed.ok) return `not microseconds as an unsigned 64-bit number (${parsed.error})`;
      const usec = parsed.value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(parsed.value);
      if (key === 'WATCHDOG_USEC') fields.watchdogUsec = usec;
      else if (key === 'EXTEND_TIMEOUT_USEC') fields.extendTimeoutUsec = usec;
      else fields.monotonicUsec = usec;
      return undefined;
    }
    case 'FDNAME':
      if (!isValidFdName(value)) return `not ≤ ${FDNAME_MAX} printable ASCII characters without ':'`;
      fields.fdName = value;
      return undefined;
    case 'NOTIFYACCESS': {
      const access = notifyAccessFromString(value);
      if (access === undefined) return 'must be none, main, exec or all';
      fields.notifyAccess = access;
      return undefined;
    }
    default:
      return UNKNOWN_KEY;
  }
}

function fieldError(
  key: string,
  value: string,
  code: NotifyFieldErrorCode,
  problem: string,
): NotifyFieldError {
  // Bounded: a tag is at most 4 KiB, but log lines about it need not be.
  const shown = value.length > 120 ? `${value.slice(0, 120)}…` : value;
  const message =
    code === 'ERR_NOTIFY_TAG_MALFORMED'
      ? `ignoring notify tag ${JSON.stringify(key.length > 120 ? `${key.slice(0, 120)}…` : key)}: ${problem}`
      : `ignoring ${key}=${JSON.stringify(shown)}: ${problem}`;
  return { key, value, code, message };
}

// ---- the value parsers, each one systemd's -----------------------------------------------------

export type IntegerParse<T> = { ok: true; value: T } | { ok: false; error: 'EINVAL' | 'ERANGE' };

const UINT64_MAX = (1n << 64n) - 1n;
const LONG_MIN = -(1n << 63n);
const LONG_MAX = (1n << 63n) - 1n;
const INT_MIN = -(1n << 31n);
const INT_MAX = (1n << 31n) - 1n;
const ERRNO_MAX = 4095;

/** C's isspace() in the C locale. */
function isCSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/** systemd's WHITESPACE set, skipped with strspn() before anything else. */
function skipSystemdWhitespace(s: string): string {
  let i = 0;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  return s.slice(i);
}

/** systemd's mangle_base(): Python-style 0b/0o prefixes pick the base before strtoull sees it. */
function mangleBase(s: string): { s: string; base: number } {
  if (s.startsWith('0b') || s.startsWith('0B')) return { s: s.slice(2), base: 2 };
  if (s.startsWith('0o') || s.startsWith('0O')) return { s: s.slice(2), base: 8 };
  return { s, base: 0 };
}

interface CStrto {
  /** The magnitude read, sign not applied. */
  magnitude: bigint;
  negative: boolean;
  /** Whether any digit was read (else strto* set endptr to the start: "no conversion"). */
  converted: boolean;
  /** Whether text follows the number. */
  trailing: boolean;
}

/** glibc's strtoull/strtol scanning (C locale): whitespace, a sign, the base prefix, digits. */
function cStrto(s: string, base: number): CStrto {
  let i = 0;
  while (isCSpace(s[i])) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') {
    negative = s[i] === '-';
    i++;
  }
  const hexDigit = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);
  if (
    (base === 0 || base === 16) &&
    s[i] === '0' &&
    (s[i + 1] === 'x' || s[i + 1] === 'X') &&
    hexDigit(s[i + 2])
  ) {
    base = 16;
    i += 2;
  } else if (base === 0) {
    base = s[i] === '0' ? 8 : 10;
  }
  let magnitude = 0n;
  let converted = false;
  const bigBase = BigInt(base);
  for (; i < s.length; i++) {
    const digit = parseInt(s[i] as string, 36);
    if (Number.isNaN(digit) || digit >= base) break;
    // Kept exact (BigInt); the callers check the range as strto* would report ERANGE.
    magnitude = magnitude * bigBase + BigInt(digit);
    converted = true;
  }
  return { magnitude, negative, converted, trailing: i < s.length };
}

/** systemd's safe_atou64() (safe_atollu_full base 0): the *_USEC= and MAINPIDFDID= values. */
export function parseSafeAtou64(text: string): IntegerParse<bigint> {
  const { s, base } = mangleBase(skipSystemdWhitespace(text));
  const scan = cStrto(s, base);
  if (scan.magnitude > UINT64_MAX) return { ok: false, error: 'ERANGE' };
  if (!scan.converted || scan.trailing) return { ok: false, error: 'EINVAL' };
  // strtoull() negates "-5" silently; systemd refuses it unless the text starts with the sign.
  if (scan.magnitude !== 0n && s.startsWith('-')) return { ok: false, error: 'ERANGE' };
  const value = scan.negative ? (UINT64_MAX + 1n - scan.magnitude) & UINT64_MAX : scan.magnitude;
  return { ok: true, value };
}

/** systemd's safe_atoi(): EXIT_STATUS=, and the numeric form of ERRNO=. */
export function parseSafeAtoi(text: string): IntegerParse<number> {
  const { s, base } = mangleBase(skipSystemdWhitespace(text));
  const scan = cStrto(s, base);
  const value = scan.negative ? -scan.magnitude : scan.magnitude;
  if (value < LONG_MIN || value > LONG_MAX) return { ok: false, error: 'ERANGE' };
  if (!scan.converted || scan.trailing) return { ok: false, error: 'EINVAL' };
  if (value < INT_MIN || value > INT_MAX) return { ok: false, error: 'ERANGE' };
  return { ok: true, value: Number(value) };
}

/** systemd's parse_pid(): MAINPID=. A pid is 1..2^31−1. */
export function parsePid(text: string): IntegerParse<number> {
  const parsed = parseSafeAtou64(text);
  if (!parsed.ok) return parsed;
  if (parsed.value === 0n || parsed.value > INT_MAX) return { ok: false, error: 'ERANGE' };
  return { ok: true, value: Number(parsed.value) };
}

/** systemd's parse_errno(): ERRNO=. An errno name (any case) or a number 0..4095. */
export function parseErrno(text: string): IntegerParse<number> {
  const named = ERRNO_BY_NAME.get(text.toUpperCase());
  if (named !== undefined && /^[A-Za-z0-9]+$/.test(text)) return { ok: true, value: named };
  const parsed = parseSafeAtoi(text);
  if (!parsed.ok) return parsed;
  if (parsed.value < 0 || parsed.value > ERRNO_MAX) return { ok: false, error: 'ERANGE' };
  return parsed;
}

/** systemd's fdname_is_valid(): FDNAME= and LISTEN_FDNAMES entries. */
export function isValidFdName(name: string): boolean {
  if (name.length > FDNAME_MAX) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x3a) return false;
  }
  return true;
}

/** systemd's string_is_safe_ascii(): BUSERROR=, VARLINKERROR=. */
export function isSafeAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x27 || c === 0x5c) return false;
  }
  return true;
}

const NOTIFY_ACCESS_VALUES: readonly NotifyAccess[] = ['none', 'main', 'exec', 'all'];

/** systemd's notify_access_from_string(): NOTIFYACCESS= (exact, lower case). */
export function notifyAccessFromString(text: string): NotifyAccess | undefined {
  return NOTIFY_ACCESS_VALUES.find((access) => access === text);
}

/**
 * systemd's utf8_is_valid(): well-formed UTF-8 of at most 4 bytes per character, and besides
 * surrogates it refuses the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF, which the WHATWG
 * decoder (TextDecoder) accepts. So this is its own loop.
 */
export function isValidUtf8(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    if (lead === 0) return false;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let code: number;
    if ((lead & 0xe0) === 0xc0) {
      length = 2;
      code = lead & 0x1f;
    } else if ((lead & 0xf0) === 0xe0) {
      length = 3;
      code = lead & 0x0f;
    } else if ((lead & 0xf8) === 0xf0) {
      length = 4;
      code = lead & 0x07;
    } else {
      // 5- and 6-byte forms encode values past U+10FFFF: never valid.
      return false;
    }
    if (i + length > bytes.length) return false;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k] as number;
      if ((next & 0xc0) !== 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    const shortest = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (shortest !== length) return false; // overlong
    if (code >= 0x110000) return false;
    if ((code & 0xfffff800) === 0xd800) return false; // UTF-16 surrogates
    if (code >= 0xfdd0 && code <= 0xfdef) return false;
    if ((code & 0xfffe) === 0xfffe) return false;
    i += length;
  }
  return true;
}

// systemd's errno names (errno_from_name): glibc's <errno.h> on Linux, aliases included.
const ERRNO_BY_NAME: ReadonlyMap<string, number> = new Map(
  (
    'E2BIG=7 EACCES=13 EADDRINUSE=98 EADDRNOTAVAIL=99 EADV=68 EAFNOSUPPORT=97 EAGAIN=11 EALREADY=114 ' +
    'EBADE=52 EBADF=9 EBADFD=77 EBADMSG=74 EBADR=53 EBADRQC=56 EBADSLT=57 EBFONT=59 EBUSY=16 ' +
    'ECANCELED=125 ECHILD=10 ECHRNG=44 ECOMM=70 ECONNABORTED=103 ECONNREFUSED=111 ECONNRESET=104 ' +
    'EDEADLK=35 EDEADLOCK=35 EDESTADDRREQ=89 EDOM=33 EDOTDOT=73 EDQUOT=122 EEXIST=17 EFAULT=14 ' +
    'EFBIG=27 EHOSTDOWN=112 EHOSTUNREACH=113 EHWPOISON=133 EIDRM=43 EILSEQ=84 EINPROGRESS=115 EINTR=4 ' +
    'EINVAL=22 EIO=5 EISCONN=106 EISDIR=21 EISNAM=120 EKEYEXPIRED=127 EKEYREJECTED=129 ' +
    'EKEYREVOKED=128 EL2HLT=51 EL2NSYNC=45 EL3HLT=46 EL3RST=47 ELIBACC=79 ELIBBAD=80 ELIBEXEC=83 ' +
    'ELIBMAX=82 ELIBSCN=81 ELNRNG=48 ELOOP=40 EMEDIUMTYPE=124 EMFILE=24 EMLINK=31 EMSGSIZE=90 ' +
    'EMULTIHOP=72 ENAMETOOLONG=36 ENAVAIL=119 ENETDOWN=100 ENETRESET=102 ENETUNREACH=101 ENFILE=23 ' +
    'ENOANO=55 ENOBUFS=105 ENOCSI=50 ENODATA=61 ENODEV=19 ENOENT=2 ENOEXEC=8 ENOKEY=126 ENOLCK=37 ' +
    'ENOLINK=67 ENOMEDIUM=123 ENOMEM=12 ENOMSG=42 ENONET=64 ENOPKG=65 ENOPROTOOPT=92 ENOSPC=28 ' +
    'ENOSR=63 ENOSTR=60 ENOSYS=38 ENOTBLK=15 ENOTCONN=107 ENOTDIR=20 ENOTEMPTY=39 ENOTNAM=118 ' +
    'ENOTRECOVERABLE=131 ENOTSOCK=88 ENOTSUP=95 ENOTTY=25 ENOTUNIQ=76 ENXIO=6 EOPNOTSUPP=95 ' +
    'EOVERFLOW=75 EOWNERDEAD=130 EPERM=1 EPFNOSUPPORT=96 EPIPE=32 EPROTO=71 EPROTONOSUPPORT=93 ' +
    'EPROTOTYPE=91 ERANGE=34 EREMCHG=78 EREMOTE=66 EREMOTEIO=121 ERESTART=85 ERFKILL=132 EROFS=30 ' +
    'ESHUTDOWN=108 ESOCKTNOSUPPORT=94 ESPIPE=29 ESRCH=3 ESRMNT=69 ESTALE=116 ESTRPIPE=86 ETIME=62 ' +
    'ETIMEDOUT=110 ETOOMANYREFS=109 ETXTBSY=26 EUCLEAN=117 EUNATCH=49 EUSERS=87 EWOULDBLOCK=11 ' +
    'EXDEV=18 EXFULL=54'
  )
    .split(' ')
    .map((entry): [string, number] => {
      const [name, value] = entry.split('=');
      return [name as string, Number(value)];
    }),
);

/** The errno names parseErrno() knows, for tests. */
export function errnoNames(): ReadonlyMap<string, number> {
  return ERRNO_BY_NAME;
}

// ---- NotifyAccess= ------------------------------------------------------------------------------

/** The pids authorization looks at. Getters are fine: they are read once per call. */
export interface NotifyUnitPids {
  mainPid?: number | undefined;
  controlPid?: number | undefined;
  /** Pids in the unit's cgroup, or undefined when the cgroup is not known (no cgroup v2 delegation). */
  cgroupPids(): ReadonlySet<number> | undefined;
}

/** One process above the sender, for refusal messages. */
export interface ProcessParent {
  ppid: number;
  /** The command name (/proc/<pid>/stat field 2), '' when unknown. */
  comm: string;
}

/** Reads a process's parent (e.g. /proc/<pid>/stat); undefined when it is gone or unreadable. */
export type ReadProcessParent = (pid: number) => ProcessParent | undefined;

export type NotifyRefusalReason =
  /** NotifyAccess=none. */
  | 'access-none'
  /** NotifyAccess=main, the sender is not the main pid (or no main pid is known). */
  | 'not-main-pid'
  /** NotifyAccess=exec, the sender is neither the main nor the control pid. */
  | 'not-main-or-control-pid'
  /** NotifyAccess=all, the sender is not in the unit's cgroup. */
  | 'not-in-cgroup';

export type NotifyAuthorization =
  | { ok: true }
  | {
      ok: false;
      reason: NotifyRefusalReason;
      /** The narrowest NotifyAccess= that would have accepted this sender; undefined: none would. */
      wouldAccept: NotifyAccess | undefined;
      /** One line for the log: the pid, its parent chain, the rule, and what would accept it. */
      message: string;
    };

/**
 * systemd's service_notify_message_authorized(): none refuses everything; main accepts the main
 * pid; exec the main and the control pid; all any process in the unit's cgroup (when the cgroup
 * is unknown, any process the caller attributed to the unit). `readParent` (injected, bounded to
 * NOTIFY_PARENT_CHAIN_MAX steps) names the sender's ancestors in the refusal message, since the
 * usual cause is a READY=1 from a child or wrapper of the main process.
 */
export function authorizeNotify(
  access: NotifyAccess,
  sender: { pid: number },
  unit: NotifyUnitPids,
  readParent?: ReadProcessParent,
): NotifyAuthorization {
  const pid = sender.pid;
  const mainPid = unit.mainPid;
  const controlPid = unit.controlPid;
  // The cgroup's pids cost reads of cgroup.procs and its child groups: asked only for
  // NotifyAccess=all and for a refusal's hint, not for every STATUS= of a main pid (bench/load:
  // a 100,000-datagram flood spent most of the daemon's time here).
  let inUnitKnown: boolean | undefined;
  const inUnit = (): boolean => {
    if (inUnitKnown === undefined) {
      const cgroup = unit.cgroupPids();
      inUnitKnown = cgroup === undefined || cgroup.has(pid);
    }
    return inUnitKnown;
  };
  const isMain = mainPid !== undefined && pid === mainPid;
  const isControl = controlPid !== undefined && pid === controlPid;
  switch (access) {
    case 'all':
      if (inUnit()) return { ok: true };
      return refuse('not-in-cgroup', "but it is not in the unit's cgroup");
    case 'main':
      if (isMain) return { ok: true };
      return refuse(
        'not-main-pid',
        mainPid === undefined
          ? 'but reception is only permitted for the main PID, which is currently not known (NotifyAccess=main)'
          : `but reception is only permitted for the main PID ${mainPid} (NotifyAccess=main)`,
      );
    case 'exec':
      if (isMain || isControl) return { ok: true };
      return refuse(
        'not-main-or-control-pid',
        `but reception is only permitted for ${execPids()} (NotifyAccess=exec)`,
      );
    case 'none':
    default:
      return refuse('access-none', 'but reception is disabled (NotifyAccess=none)');
  }

  function execPids(): string {
    if (mainPid !== undefined && controlPid !== undefined)
      return `the main PID ${mainPid} and the control PID ${controlPid}`;
    if (mainPid !== undefined) return `the main PID ${mainPid}`;
    if (controlPid !== undefined) return `the control PID ${controlPid}`;
    return 'the main and control PID, which are currently not known';
  }

  function refuse(reason: NotifyRefusalReason, rule: string): NotifyAuthorization {
    const wouldAccept: NotifyAccess | undefined = isMain
      ? 'main'
      : isControl
        ? 'exec'
        : inUnit()
          ? 'all'
          : undefined;
    const hint =
      wouldAccept === undefined
        ? 'no NotifyAccess= value would accept it (the process is not part of the unit)'
        : `NotifyAccess=${wouldAccept} would accept it`;
    const message = `Got notification message from ${describeProcessChain(pid, readParent)}, ${rule}; ${hint}`;
    return { ok: false, reason, wouldAccept, message };
  }
}

/** "PID 4242 (systemd-notify) ← 4200 (sh) ← 1 (init)", at most NOTIFY_PARENT_CHAIN_MAX parents. */
export function describeProcessChain(pid: number, readParent?: ReadProcessParent): string {
  if (readParent === undefined) return `PID ${pid}`;
  const seen = new Set<number>([pid]);
  const first = safeRead(readParent, pid);
  let text = first !== undefined && first.comm !== '' ? `PID ${pid} (${first.comm})` : `PID ${pid}`;
  let current = first;
  for (let depth = 0; current !== undefined && current.ppid > 0; depth++) {
    if (depth === NOTIFY_PARENT_CHAIN_MAX || seen.has(current.ppid)) {
      text += ' ← …';
      break;
    }
    const parentPid = current.ppid;
    seen.add(parentPid);
    const parent = safeRead(readParent, parentPid);
    text +=
      parent !== undefined && parent.comm !== '' ? ` ← ${parentPid} (${parent.comm})` : ` ← ${parentPid}`;
    current = parent;
  }
  return text;
}

function safeRead(readParent: ReadProcessParent, pid: number): ProcessParent | undefined {
  try {
    return readParent(pid);
  } catch {
    return undefined; // a process that vanished mid-walk ends the chain, nothing more
  }
}

/**
 * The text of /proc/<pid>/stat → its parent and command name. The name is in parentheses and may
 * itself contain ')' and spaces, so the fields after it are found from the last ')'.
 */
export function parseProcStat(text: string): ProcessParent | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  if (!Number.isInteger(ppid) || ppid < 0) return undefined;
  return { ppid, comm: text.slice(open + 1, close) };
}

// ---- BARRIER=1 ----------------------------------------------------------------------------------

/**
 * sd_notify_barrier(): BARRIER=1 as the only tag, with exactly one fd (the write end of the
 * sender's pipe). The receiver closes that fd at once; the sender sees POLLHUP and goes on.
 * systemd drops every message containing BARRIER=1 even when malformed (see barrierProblem).
 */
export function isBarrier(fields: NotifyFields, fds: readonly number[] | number): boolean {
  const count = typeof fds === 'number' ? fds : fds.length;
  return fields.barrier && fields.tags.length === 1 && count === 1;
}

/** Why a message with BARRIER=1 is not a proper barrier (for the warning), or undefined. */
export function barrierProblem(fields: NotifyFields, fds: readonly number[] | number): string | undefined {
  if (!fields.barrier) return undefined;
  const count = typeof fds === 'number' ? fds : fds.length;
  if (fields.tags.length !== 1) return 'extra tags sent with BARRIER=1: ignoring everything';
  if (count !== 1) return `BARRIER=1 came with ${count} fds instead of 1: closing them`;
  return undefined;
}
