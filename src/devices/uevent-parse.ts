// Parsers for the two netlink uevent wire formats: the kernel's (group 1) and libudev's (group 2).
//
// Everything here is pure and never throws: every Buffer gives either an event or an error with a
// stable code. A message is validated completely before any of it is used (s6/mdevd habit), so a
// consumer never sees a half-parsed event.
//
// This is the hot path (every uevent goes through it), so the property loop works on bytes with a
// lookup table, decodes the whole message once as latin1 (one byte = one char, so byte offsets
// are string offsets) and takes substrings; only values with bytes >= 0x80 are re-decoded as UTF-8.

import { isUtf8 } from 'node:buffer';
import { endianness } from 'node:os';
import { UEVENT_ACTIONS, type Uevent, type UeventAction, type UeventSource } from './types';
import type { NetlinkMessage } from '../native/types';

/**
 * Largest message accepted, in bytes. udevd and libudev read monitor messages into an 8192-byte
 * buffer and drop anything longer; the kernel's own limit is smaller (a 2048-byte environment
 * buffer plus the `ACTION@DEVPATH` header), so a longer message is not one we should act on.
 */
export const UEVENT_MAX_BYTES = 8192;

/** Size of libudev's `struct monitor_netlink_header`. */
export const LIBUDEV_HEADER_BYTES = 40;

/** `UDEV_MONITOR_MAGIC`, stored big-endian at offset 8. */
export const LIBUDEV_MAGIC = 0xfeedcafe;

export const UEVENT_PARSE_ERROR_CODES = [
  'ERR_UEVENT_EMPTY',
  'ERR_UEVENT_TOO_LARGE',
  'ERR_UEVENT_NOT_TERMINATED',
  'ERR_UEVENT_NO_HEADER',
  'ERR_UEVENT_BAD_ACTION',
  'ERR_UEVENT_BAD_DEVPATH',
  'ERR_UEVENT_BAD_PROPERTY',
  'ERR_UEVENT_BINARY',
  'ERR_UEVENT_MISSING_KEY',
  'ERR_UEVENT_HEADER_MISMATCH',
  'ERR_UEVENT_DUPLICATE_KEY',
  'ERR_UEVENT_BAD_NUMBER',
  'ERR_UEVENT_BAD_MAGIC',
  'ERR_UEVENT_BAD_OFFSETS',
  'ERR_UEVENT_UNTRUSTED_SENDER',
] as const;

/**
 * Why a message was rejected:
 * - EMPTY: zero bytes. TOO_LARGE: more than UEVENT_MAX_BYTES. NOT_TERMINATED: last byte is not NUL.
 * - NO_HEADER: kernel format without an `ACTION@DEVPATH` first string.
 * - BAD_ACTION: action not in UEVENT_ACTIONS. BAD_DEVPATH: DEVPATH not absolute or has a `..` part.
 * - BAD_PROPERTY: a field without '=', with an empty key or a key outside [A-Za-z0-9_] (libudev:
 *   printable ASCII but '='), a bad DEVNAME.
 * - BINARY: control bytes (< 0x20 other than the NUL separators, 0x7f) or invalid UTF-8.
 * - MISSING_KEY: ACTION, DEVPATH, SUBSYSTEM or SEQNUM absent. HEADER_MISMATCH: header disagrees
 *   with ACTION/DEVPATH. DUPLICATE_KEY: a key given twice. BAD_NUMBER: SEQNUM/MAJOR/MINOR not decimal.
 * - BAD_MAGIC: no "libudev\0" prefix or wrong magic. BAD_OFFSETS: libudev header sizes/offsets
 *   that do not describe the buffer exactly.
 * - UNTRUSTED_SENDER: not from the kernel (port 0, uid 0) or, for udev, not from root.
 */
export type UeventParseErrorCode = (typeof UEVENT_PARSE_ERROR_CODES)[number];

export interface UeventParseError {
  code: UeventParseErrorCode;
  /** Human-readable; never contains property values, only offsets and (validated) key names. */
  message: string;
  /** Byte offset in the buffer where the problem was found, when there is one. */
  offset?: number;
}

export type UeventParseResult = { ok: true; event: Uevent } | { ok: false; error: UeventParseError };

const ACTIONS: ReadonlySet<string> = new Set<string>(UEVENT_ACTIONS);

export function isUeventAction(value: string): value is UeventAction {
  return ACTIONS.has(value);
}

const NUL = 0x00;
const AT = 0x40;
const EQUALS = 0x3d;
const SLASH = 0x2f;

/** 1 for bytes allowed in a property key: [A-Za-z0-9_]. */
const KEY_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
  KEY_BYTE[c] = ok ? 1 : 0;
}

/**
 * udev rules may set any property name (`IMPORT{cmdline}="net.ifnames"` stores one with a dot),
 * and udevd sends them all; rejecting such a key would drop udevd's whole event. So libudev
 * messages allow printable ASCII except '=' in keys.
 */
const UDEV_KEY_BYTE = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) UDEV_KEY_BYTE[c] = c === 0x3d ? 0 : 1;

const LIBUDEV_PREFIX = Buffer.from('libudev\0', 'latin1');
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

function fail(code: UeventParseErrorCode, message: string, offset?: number): UeventParseResult {
  const error: UeventParseError = offset === undefined ? { code, message } : { code, message, offset };
  return { ok: false, error };
}

/** Kernel format: `ACTION@DEVPATH\0KEY=VALUE\0...KEY=VALUE\0`. */
export function parseKernelUevent(input: Uint8Array): UeventParseResult {
  const buf = asBuffer(input);
  const len = buf.length;
  const framing = checkFraming(len, len === 0 ? NUL : buf[len - 1]);
  if (framing !== undefined) return framing;

  // Header: the first NUL-terminated string. The last byte is NUL, so there is one.
  const headerEnd = buf.indexOf(NUL);
  let at = -1;
  let headerHigh = false;
  for (let i = 0; i < headerEnd; i++) {
    const c = buf[i];
    if (c < 0x20 || c === 0x7f) return fail('ERR_UEVENT_BINARY', `control byte 0x${hex2(c)} in header`, i);
    if (c >= 0x80) headerHigh = true;
    // The first '@' splits: devpaths may contain '@' themselves (device-tree names like soc@0).
    else if (c === AT && at < 0) at = i;
  }
  if (at < 0) return fail('ERR_UEVENT_NO_HEADER', 'first string is not ACTION@DEVPATH', 0);

  const text = buf.toString('latin1', 0, len);
  const headerAction = text.substring(0, at);
  if (!isUeventAction(headerAction)) {
    return fail('ERR_UEVENT_BAD_ACTION', 'header action is not a uevent action', 0);
  }
  if (at + 1 >= headerEnd || buf[at + 1] !== SLASH) {
    return fail('ERR_UEVENT_BAD_DEVPATH', 'header devpath does not start with /', at + 1);
  }
  let headerDevpath: string;
  if (headerHigh) {
    const raw = buf.subarray(at + 1, headerEnd);
    if (!isUtf8(raw)) return fail('ERR_UEVENT_BINARY', 'header devpath is not valid UTF-8', at + 1);
    headerDevpath = raw.toString('utf8');
  } else {
    headerDevpath = text.substring(at + 1, headerEnd);
  }

  const properties = new Map<string, string>();
  const failed = parseProperties(buf, text, headerEnd + 1, len, properties, KEY_BYTE);
  if (failed !== undefined) return failed;

  const action = properties.get('ACTION');
  const devpath = properties.get('DEVPATH');
  if (action !== undefined && action !== headerAction) {
    return fail('ERR_UEVENT_HEADER_MISMATCH', 'ACTION property differs from the header');
  }
  if (devpath !== undefined && devpath !== headerDevpath) {
    return fail('ERR_UEVENT_HEADER_MISMATCH', 'DEVPATH property differs from the header');
  }
  return buildEvent(properties, 'kernel');
}

/**
 * libudev format (udevd's processed events on group 2): a 40-byte `monitor_netlink_header`
 * ("libudev\0", magic 0xfeedcafe big-endian, then header_size, properties_off, properties_len in
 * host byte order, then filter hashes we do not need), followed by `KEY=VALUE\0...`.
 */
export function parseLibudevMessage(input: Uint8Array): UeventParseResult {
  const buf = asBuffer(input);
  const len = buf.length;
  const framing = checkFraming(len, len === 0 ? NUL : buf[len - 1]);
  if (framing !== undefined) return framing;
  if (len < LIBUDEV_HEADER_BYTES) {
    return fail('ERR_UEVENT_BAD_MAGIC', `shorter than the ${LIBUDEV_HEADER_BYTES}-byte libudev header`, 0);
  }
  if (buf.compare(LIBUDEV_PREFIX, 0, 8, 0, 8) !== 0) {
    return fail('ERR_UEVENT_BAD_MAGIC', 'no "libudev" prefix', 0);
  }
  if (buf.readUInt32BE(8) !== LIBUDEV_MAGIC) return fail('ERR_UEVENT_BAD_MAGIC', 'wrong libudev magic', 8);

  const headerSize = readHostU32(buf, 12);
  const propertiesOff = readHostU32(buf, 16);
  const propertiesLen = readHostU32(buf, 20);
  // udevd sends exactly header + properties, so anything else is a lie about the layout.
  // (JS numbers: off + len cannot overflow the way a u32 sum could in C.)
  if (headerSize < LIBUDEV_HEADER_BYTES || headerSize > propertiesOff) {
    return fail(
      'ERR_UEVENT_BAD_OFFSETS',
      `header_size ${headerSize} does not fit properties_off ${propertiesOff}`,
      12,
    );
  }
  if (propertiesLen === 0 || propertiesOff + propertiesLen !== len) {
    return fail(
      'ERR_UEVENT_BAD_OFFSETS',
      `properties_off ${propertiesOff} + properties_len ${propertiesLen} != message length ${len}`,
      16,
    );
  }

  const text = buf.toString('latin1', 0, len);
  const properties = new Map<string, string>();
  const failed = parseProperties(buf, text, propertiesOff, len, properties, UDEV_KEY_BYTE);
  if (failed !== undefined) return failed;
  return buildEvent(properties, 'udev');
}

/**
 * Sender trust first, then the format: kernel uevents only from the kernel itself (port 0, uid 0);
 * udevd's events only from root and only in libudev format.
 */
export function parseNetlinkMessage(msg: NetlinkMessage, expect: 'kernel' | 'udev'): UeventParseResult {
  if (expect === 'kernel') {
    if (msg.senderPort !== 0 || msg.uid !== 0) {
      return fail(
        'ERR_UEVENT_UNTRUSTED_SENDER',
        `kernel uevent from port ${msg.senderPort} uid ${msg.uid}; only the kernel (port 0, uid 0) is trusted`,
      );
    }
    return parseKernelUevent(msg.buffer);
  }
  if (msg.uid !== 0) {
    return fail(
      'ERR_UEVENT_UNTRUSTED_SENDER',
      `udev event from uid ${msg.uid} (pid ${msg.pid}); only root is trusted`,
    );
  }
  // A kernel-format message on group 2 fails the prefix check here (ERR_UEVENT_BAD_MAGIC).
  return parseLibudevMessage(msg.buffer);
}

/** A plain Uint8Array's toString() ignores encodings, so view it as a Buffer (no copy). */
function asBuffer(input: Uint8Array): Buffer {
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

function checkFraming(len: number, last: number): UeventParseResult | undefined {
  if (len === 0) return fail('ERR_UEVENT_EMPTY', 'empty message');
  if (len > UEVENT_MAX_BYTES) {
    return fail('ERR_UEVENT_TOO_LARGE', `message of ${len} bytes exceeds ${UEVENT_MAX_BYTES}`);
  }
  if (last !== NUL) return fail('ERR_UEVENT_NOT_TERMINATED', 'last byte is not NUL', len - 1);
  return undefined;
}

function readHostU32(buf: Buffer, offset: number): number {
  return HOST_LITTLE_ENDIAN ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}

/**
 * Reads `KEY=VALUE\0` fields from [start, end) into `out`. The caller has checked buf[end-1] is
 * NUL, so every inner loop stops inside the buffer without a bounds check.
 */
function parseProperties(
  buf: Buffer,
  text: string,
  start: number,
  end: number,
  out: Map<string, string>,
  keyBytes: Uint8Array,
): UeventParseResult | undefined {
  let p = start;
  while (p < end) {
    const keyStart = p;
    let c = buf[p];
    while (keyBytes[c] === 1) c = buf[++p];
    if (c !== EQUALS || p === keyStart) {
      if (c === NUL)
        return fail('ERR_UEVENT_BAD_PROPERTY', p === keyStart ? 'empty field' : "field without '='", p);
      if (c === EQUALS) return fail('ERR_UEVENT_BAD_PROPERTY', 'empty property key', p);
      if (c < 0x20 || c === 0x7f) return fail('ERR_UEVENT_BINARY', `control byte 0x${hex2(c)} in key`, p);
      return fail('ERR_UEVENT_BAD_PROPERTY', `byte 0x${hex2(c)} not allowed in a key`, p);
    }
    const eq = p;
    let high = false;
    c = buf[++p];
    while (c !== NUL) {
      if (c < 0x20 || c === 0x7f) return fail('ERR_UEVENT_BINARY', `control byte 0x${hex2(c)} in value`, p);
      if (c >= 0x80) high = true;
      c = buf[++p];
    }
    const key = text.substring(keyStart, eq);
    let value: string;
    if (high) {
      const raw = buf.subarray(eq + 1, p);
      if (!isUtf8(raw)) return fail('ERR_UEVENT_BINARY', `value of ${key} is not valid UTF-8`, eq + 1);
      value = raw.toString('utf8');
    } else {
      value = text.substring(eq + 1, p);
    }
    if (out.has(key)) return fail('ERR_UEVENT_DUPLICATE_KEY', `duplicate key ${truncate(key)}`, keyStart);
    out.set(key, value);
    p++; // the NUL
  }
  return undefined;
}

/** Checks the required and typed properties and builds the event. */
function buildEvent(properties: Map<string, string>, source: UeventSource): UeventParseResult {
  const action = properties.get('ACTION');
  const devpath = properties.get('DEVPATH');
  const subsystem = properties.get('SUBSYSTEM');
  const seqnumText = properties.get('SEQNUM');
  if (action === undefined) return fail('ERR_UEVENT_MISSING_KEY', 'no ACTION');
  if (devpath === undefined) return fail('ERR_UEVENT_MISSING_KEY', 'no DEVPATH');
  if (subsystem === undefined || subsystem.length === 0)
    return fail('ERR_UEVENT_MISSING_KEY', 'no SUBSYSTEM');
  if (seqnumText === undefined) return fail('ERR_UEVENT_MISSING_KEY', 'no SEQNUM');
  if (!isUeventAction(action)) return fail('ERR_UEVENT_BAD_ACTION', 'ACTION is not a uevent action');
  // devpath is joined to /sys later: it must be absolute and must not climb out.
  if (devpath.charCodeAt(0) !== SLASH || hasDotDot(devpath)) {
    return fail('ERR_UEVENT_BAD_DEVPATH', "DEVPATH must start with '/' and have no '..' component");
  }
  const seqnum = parseDecimal(seqnumText);
  if (seqnum < 0) return fail('ERR_UEVENT_BAD_NUMBER', 'SEQNUM is not a decimal integer');

  let major: number | undefined;
  let minor: number | undefined;
  const majorText = properties.get('MAJOR');
  if (majorText !== undefined) {
    major = parseDecimal(majorText);
    if (major < 0 || major > 0xffffffff)
      return fail('ERR_UEVENT_BAD_NUMBER', 'MAJOR is not a decimal integer');
  }
  const minorText = properties.get('MINOR');
  if (minorText !== undefined) {
    minor = parseDecimal(minorText);
    if (minor < 0 || minor > 0xffffffff)
      return fail('ERR_UEVENT_BAD_NUMBER', 'MINOR is not a decimal integer');
  }

  let devname = properties.get('DEVNAME');
  if (devname !== undefined) {
    // The kernel sends 'loop0' or 'bus/usb/001/002'; libudev sends '/dev/loop0'. Store the absolute
    // form in the field and in the properties, as sd-device does, so rules see one spelling.
    if (devname.length === 0 || hasDotDot(devname)) {
      return fail('ERR_UEVENT_BAD_PROPERTY', "DEVNAME is empty or has a '..' component");
    }
    if (devname.charCodeAt(0) !== SLASH) {
      devname = '/dev/' + devname;
      properties.set('DEVNAME', devname); // keeps the key's position
    }
  }

  // Every field is always present (undefined when absent) so all events share one object shape.
  const event: Uevent = {
    source,
    action,
    devpath,
    subsystem,
    devtype: properties.get('DEVTYPE'),
    devname,
    major,
    minor,
    seqnum,
    properties,
  };
  return { ok: true, event };
}

/** Non-negative safe integer from ASCII digits only, or -1. */
function parseDecimal(s: string): number {
  const n = s.length;
  if (n === 0 || n > 16) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return Number.isSafeInteger(v) ? v : -1;
}

/** True when a '/'-separated component is exactly '..'. */
function hasDotDot(s: string): boolean {
  let i = s.indexOf('..');
  while (i >= 0) {
    const before = i === 0 || s.charCodeAt(i - 1) === SLASH;
    const after = i + 2 === s.length || s.charCodeAt(i + 2) === SLASH;
    if (before && after) return true;
    i = s.indexOf('..', i + 1);
  }
  return false;
}

function hex2(c: number): string {
  return (c < 16 ? '0' : '') + c.toString(16);
}

function truncate(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + '...' : s;
}
