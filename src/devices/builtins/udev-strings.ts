// The string sanitizers udev's builtins apply to identifiers read from hardware, byte for byte:
// libblkid's blkid_encode_string/blkid_safe_string (used by the blkid builtin) and systemd's
// encode_devnode_name/udev_replace_whitespace/udev_replace_chars (used by usb_id). They work on
// bytes, not JavaScript strings, because what they keep or escape depends on UTF-8 validity.

/** Which UTF-8 validator: libblkid's (accepts 5/6-byte forms, rejects U+xxFFFF) or systemd's. */
export type Utf8Flavour = 'blkid' | 'systemd';

function expectedLength(byte: number, flavour: Utf8Flavour): number {
  if (byte < 0x80) return 1;
  if ((byte & 0xe0) === 0xc0) return 2;
  if ((byte & 0xf0) === 0xe0) return 3;
  if ((byte & 0xf8) === 0xf0) return 4;
  if (flavour === 'blkid') {
    if ((byte & 0xfc) === 0xf8) return 5;
    if ((byte & 0xfe) === 0xfc) return 6;
  }
  return 0;
}

function encodedLength(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  if (codePoint < 0x200000) return 4;
  if (codePoint < 0x4000000) return 5;
  return 6;
}

function validRange(cp: number, flavour: Utf8Flavour): boolean {
  if (cp > 0x10ffff) return false;
  if ((cp & 0xfffff800) === 0xd800) return false;
  if (cp > 0xfdcf && cp < 0xfdf0) return false;
  return flavour === 'blkid' ? (cp & 0xffff) !== 0xffff : (cp & 0xfffe) !== 0xfffe;
}

/**
 * Length of the valid UTF-8 sequence starting at `bytes[at]` (1 for ASCII), or 0 when the bytes
 * there are not one (utf8_encoded_valid_unichar). A string ends at a NUL, as in C.
 */
export function utf8SequenceLength(bytes: Uint8Array, at: number, flavour: Utf8Flavour): number {
  const first = bytes[at] ?? 0;
  const len = expectedLength(first, flavour);
  if (len <= 1) return len;
  let cp = first & [0, 0, 0x1f, 0x0f, 0x07, 0x03, 0x01][len]!;
  for (let i = 1; i < len; i++) {
    const b = bytes[at + i] ?? 0;
    if ((b & 0xc0) !== 0x80) return 0;
    cp = cp * 64 + (b & 0x3f);
  }
  if (encodedLength(cp) !== len || !validRange(cp, flavour)) return 0;
  return len;
}

const PLAIN = /[0-9A-Za-z#+\-.:=@_]/;

function allowed(byte: number, extra: string): boolean {
  if (byte >= 0x80) return false;
  const c = String.fromCharCode(byte);
  return PLAIN.test(c) || extra.includes(c);
}

/** C isspace() in the C locale. */
function isSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/** The bytes of `input` up to its first NUL: what a C function taking `const char *` sees. */
export function cString(input: Uint8Array | string): Buffer {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

/**
 * blkid_encode_string / encode_devnode_name: valid multi-byte UTF-8 is kept, '\\' and every byte
 * outside [0-9A-Za-z#+-.:=@_] becomes "\\xNN". (Both C versions give up on output past their
 * 256-byte buffer; this one does not truncate.)
 */
export function encodeString(input: Uint8Array | string, flavour: Utf8Flavour): string {
  const bytes = cString(input);
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const len = utf8SequenceLength(bytes, i, flavour);
    if (len > 1) {
      out += bytes.subarray(i, i + len).toString('utf8');
      i += len;
      continue;
    }
    const b = bytes[i]!;
    out += b !== 0x5c && allowed(b, '') ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

/**
 * The characters-replacing pass shared by libblkid and systemd: allowed bytes, "\\x" escapes and
 * valid UTF-8 stay; whitespace becomes ' ' when `extra` allows a space; the rest becomes '_'.
 */
function replaceChars(bytes: Buffer, extra: string, flavour: Utf8Flavour): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length;) {
    const b = out[i]!;
    if (allowed(b, extra)) {
      i++;
      continue;
    }
    if (b === 0x5c && out[i + 1] === 0x78) {
      i += 2;
      continue;
    }
    const len = utf8SequenceLength(out, i, flavour);
    if (len > 1) {
      i += len;
      continue;
    }
    out[i] = isSpace(b) && extra.includes(' ') ? 0x20 : 0x5f;
    i++;
  }
  return out;
}

/** udev's allowed characters for values from outside ("/ $%?,"), as libblkid copies them. */
const UDEV_ALLOWED_CHARS_INPUT = '/ $%?,';

/**
 * blkid_safe_string: strip leading and trailing whitespace, turn each inner run of whitespace
 * into one '_', then replace what is not allowed (see replaceChars) with '_'. ID_FS_LABEL and
 * ID_FS_UUID are made this way.
 */
export function safeString(input: Uint8Array | string): string {
  const bytes = cString(input).subarray(0, 256);
  let end = bytes.length;
  while (end > 0 && isSpace(bytes[end - 1]!)) end--;
  let i = 0;
  while (i < end && isSpace(bytes[i]!)) i++;
  const squeezed: number[] = [];
  while (i < end) {
    if (isSpace(bytes[i]!)) {
      while (isSpace(bytes[i]!)) i++;
      squeezed.push(0x5f);
    }
    squeezed.push(bytes[i]!);
    i++;
  }
  return replaceChars(Buffer.from(squeezed), UDEV_ALLOWED_CHARS_INPUT, 'blkid').toString('utf8');
}

/**
 * systemd's udev_replace_whitespace(str, to, len) followed by udev_replace_chars(to, NULL): at
 * most `len` bytes of input are read, leading and trailing whitespace dropped, inner runs become
 * one '_', then every byte outside the allowed set (and not UTF-8 or "\\x") becomes '_'.
 */
export function replaceWhitespaceAndChars(input: Uint8Array | string, len: number): string {
  const bytes = cString(input);
  const out: number[] = [];
  let i = 0;
  // strspn(str, WHITESPACE): systemd's WHITESPACE is " \t\n\r", not all of isspace().
  while (i < bytes.length && [0x20, 0x09, 0x0a, 0x0d].includes(bytes[i]!)) i++;
  let pendingSpace = false;
  for (; out.length < len && i < len && i < bytes.length; i++) {
    const b = bytes[i]!;
    if (isSpace(b)) {
      pendingSpace = true;
      continue;
    }
    if (pendingSpace) {
      if (out.length + 1 >= len) break;
      out.push(0x5f);
      pendingSpace = false;
    }
    out.push(b);
  }
  return replaceChars(Buffer.from(out), '', 'systemd').toString('utf8');
}
