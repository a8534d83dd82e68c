// systemd's unit-name escaping for paths (unit_name_path_escape / unit_name_path_unescape /
// unit_name_from_path in src/basic/unit-name.c), byte for byte, so a device or mount gets the
// same unit name under triggerd as under systemd. Checked against /usr/bin/systemd-escape in
// test/unit/unit-name.test.ts.

/** systemd's UNIT_NAME_MAX: a unit name is at most 255 bytes. */
export const UNIT_NAME_MAX = 256;
const PATH_MAX = 4096;
const NAME_MAX = 255;

export type UnitNameErrorCode = 'ERR_UNIT_NAME_INVALID_PATH' | 'ERR_UNIT_NAME_INVALID_ESCAPE';

export class UnitNameError extends Error {
  readonly code: UnitNameErrorCode;
  constructor(code: UnitNameErrorCode, message: string) {
    super(message);
    this.name = 'UnitNameError';
    this.code = code;
  }
}

/**
 * `systemd-escape --path`: collapse '//' and drop '.' components, strip leading and trailing '/',
 * '/' → '-', bytes other than [A-Za-z0-9:_.] (and a leading '.') → `\xNN`; '' and '/' → '-'.
 * Throws UnitNameError where systemd refuses: a '..' component, a component over 255 bytes, a
 * simplified path of 4096 bytes or more, a relative path that simplifies to '.', or a NUL.
 */
export function escapePath(path: string): string {
  if (path.length === 0) return '-';
  if (path.includes('\0')) throw invalidPath(path, 'contains NUL');
  const absolute = path.charCodeAt(0) === 0x2f;
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) {
    if (absolute) return '-';
    throw invalidPath(path, 'is not a normalized path');
  }
  let bytes = absolute ? 1 : 0;
  for (const part of parts) {
    if (part === '..') throw invalidPath(path, "has a '..' component");
    const n = Buffer.byteLength(part, 'utf8');
    if (n > NAME_MAX) throw invalidPath(path, `has a component longer than ${NAME_MAX} bytes`);
    bytes += n + 1;
  }
  // systemd checks the simplified path against PATH_MAX (which counts the trailing NUL).
  if (bytes - 1 >= PATH_MAX) throw invalidPath(path, `is ${PATH_MAX} bytes or longer`);
  return escapeBytes(Buffer.from(parts.join('/'), 'utf8'));
}

/**
 * `systemd-escape --unescape --path`: '-' → '/', other names unescaped and given a leading '/';
 * the result must be a normalized absolute path. Stricter than systemd in two places, because a
 * JS string cannot carry what C would do there: `\x00` (C truncates) and bytes that are not UTF-8
 * throw.
 */
export function unescapePath(name: string): string {
  if (name.length === 0) throw invalidEscape(name, 'is empty');
  if (name === '-') return '/';
  const src = Buffer.from(name, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === 0x2d) {
      out[n++] = 0x2f;
    } else if (c === 0x5c) {
      // Past the end, src[i] is undefined and hexValue says -1.
      const hi = hexValue(src[i + 2]);
      const lo = hexValue(src[i + 3]);
      if (src[i + 1] !== 0x78 || hi < 0 || lo < 0) throw invalidEscape(name, "has a '\\' that is not \\xNN");
      const byte = (hi << 4) | lo;
      if (byte === 0) throw invalidEscape(name, 'has \\x00');
      out[n++] = byte;
      i += 3;
    } else {
      out[n++] = c;
    }
  }
  const raw = out.subarray(0, n);
  if (n === 0 || raw[0] === 0x2f || raw[n - 1] === 0x2f) {
    throw invalidEscape(name, "has a leading or trailing '-'");
  }
  if (!isUtf8Bytes(raw)) throw invalidEscape(name, 'does not unescape to UTF-8');
  const path = '/' + raw.toString('utf8');
  if (n + 1 >= PATH_MAX) throw invalidEscape(name, `unescapes to ${PATH_MAX} bytes or more`);
  for (const part of path.slice(1).split('/')) {
    if (part === '' || part === '.' || part === '..') throw invalidEscape(name, 'is not a normalized path');
    if (Buffer.byteLength(part, 'utf8') > NAME_MAX) {
      throw invalidEscape(name, `has a component longer than ${NAME_MAX} bytes`);
    }
  }
  return path;
}

/**
 * The `.device` unit for a device node or sysfs path, as systemd names it
 * (unit_name_from_path): '/dev/loop0' → 'dev-loop0.device'. Names of 256 bytes or more are
 * shortened the way systemd does it: the first 231 bytes, '_', 16 hex digits of a keyed
 * siphash24 of the name, '.device'.
 */
export function deviceUnitName(path: string): string {
  const known = deviceNameCache.get(path);
  if (known !== undefined) return known;
  const name = unitNameFromPath(path, 'device');
  // Every uevent names the same few paths again (node, links), twice (before and after):
  // remember them rather than re-escape; a full cache starts over instead of tracking age.
  if (deviceNameCache.size >= DEVICE_NAME_CACHE_MAX) deviceNameCache.clear();
  deviceNameCache.set(path, name);
  return name;
}

const DEVICE_NAME_CACHE_MAX = 4096;
const deviceNameCache = new Map<string, string>();

/** unit_name_from_path for any suffix (without the dot): 'mount', 'device', 'automount', ... */
export function unitNameFromPath(path: string, suffix: string): string {
  const name = `${escapePath(path)}.${suffix}`;
  // Escaped names are pure ASCII, so string length is byte length.
  if (name.length < UNIT_NAME_MAX) return name;
  return hashLongUnitName(name, suffix);
}

// unit_name_hash_long: siphash24 with LONG_UNIT_NAME_HASH_KEY over the whole over-long name
// *including its NUL* (siphash24_string hashes strlen + 1 bytes), printed as little-endian hex.
const LONG_UNIT_NAME_HASH_KEY = Buffer.from('ecf237fb58324a32849f069b0d21eb9a', 'hex');

function hashLongUnitName(name: string, suffix: string): string {
  const hash = Buffer.alloc(8);
  hash.writeBigUInt64LE(siphash24(Buffer.from(name + '\0', 'latin1'), LONG_UNIT_NAME_HASH_KEY));
  const keep = UNIT_NAME_MAX - 1 - suffix.length - 16 - 2;
  return `${name.slice(0, keep)}_${hash.toString('hex')}.${suffix}`;
}

const VALID_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ok =
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x3a || // ':'
    c === 0x5f || // '_'
    c === 0x2e; // '.'
  VALID_BYTE[c] = ok ? 1 : 0;
}
const HEX = '0123456789abcdef';

/** unit_name_escape on a '/'-separated path without leading or trailing '/'. */
function escapeBytes(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x2f) out += '-';
    // A leading '.' would make a hidden-looking unit name ('/.dotdir' mount points).
    else if (VALID_BYTE[c] === 1 && !(i === 0 && c === 0x2e)) out += String.fromCharCode(c);
    else out += '\\x' + HEX[c >> 4] + HEX[c & 15];
  }
  return out;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function isUtf8Bytes(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

function invalidPath(path: string, why: string): UnitNameError {
  return new UnitNameError('ERR_UNIT_NAME_INVALID_PATH', `path ${JSON.stringify(path)} ${why}`);
}

function invalidEscape(name: string, why: string): UnitNameError {
  return new UnitNameError('ERR_UNIT_NAME_INVALID_ESCAPE', `unit name ${JSON.stringify(name)} ${why}`);
}

// SipHash-2-4, as systemd's siphash24(). BigInt is slow but this runs only for names over 255 bytes.
const MASK64 = (1n << 64n) - 1n;

function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

function siphash24(data: Buffer, key: Buffer): bigint {
  const k0 = key.readBigUInt64LE(0);
  const k1 = key.readBigUInt64LE(8);
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const full = data.length - (data.length % 8);
  for (let i = 0; i < full; i += 8) {
    const m = data.readBigUInt64LE(i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  let last = BigInt(data.length & 0xff) << 56n;
  for (let i = data.length - 1; i >= full; i--) last |= BigInt(data[i]) << BigInt((i - full) * 8);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}
