// The unit-file syntax of systemd.syntax(7), as a pure function from bytes to sections of
// key/value entries that remember file:line. It knows nothing about keys: repeated keys stay
// repeated, in order, and an empty value stays '' (the key tables decide append, override or
// reset). It never throws; every problem becomes a diagnostic.
import type { Diagnostic, SourceRef } from './config-types';

export interface SyntaxEntry {
  key: string;
  value: string;
  source: SourceRef;
}

export interface SyntaxSection {
  /** The name between the brackets, as written. */
  name: string;
  /** Where the header is. */
  source: SourceRef;
  entries: SyntaxEntry[];
}

export interface UnitSyntax {
  /** Sections in file order; a header that repeats starts another entry with the same name. */
  sections: SyntaxSection[];
  diagnostics: Diagnostic[];
  /** True when systemd would refuse the whole file (bad header, overlong line, bad encoding). */
  fatal: boolean;
}

/** systemd's limit on one (joined) line: 1 MiB. */
export const MAX_LINE_BYTES = 1024 * 1024;

export interface SyntaxOptions {
  maxLineBytes?: number;
}

/** Stable codes of the diagnostics this module emits. */
export const SYNTAX_CODES = {
  syntax: 'ERR_UNIT_SYNTAX',
  encoding: 'ERR_UNIT_ENCODING',
  lineTooLong: 'ERR_UNIT_LINE_TOO_LONG',
} as const;

// systemd trims these around keys, values and lines (a CR from CRLF files goes with them).
const WS = ' \t\r\n';

function trim(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && WS.includes(s[a])) a++;
  while (b > a && WS.includes(s[b - 1])) b--;
  return s.slice(a, b);
}

function trimStart(s: string): string {
  let a = 0;
  while (a < s.length && WS.includes(s[a])) a++;
  return s.slice(a);
}

function isComment(trimmed: string): boolean {
  return trimmed.startsWith('#') || trimmed.startsWith(';');
}

/** An odd number of trailing backslashes continues the line ("\\" at the end is an escaped backslash). */
function continues(line: string): boolean {
  let n = 0;
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

interface RawLine {
  /** The line; for one with bad bytes, a Latin-1 reading (enough to see whether it is a comment). */
  text: string;
  number: number;
  /** Set when the line could not be used as text. */
  problem?: { code: string; message: string };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Split bytes into lines, checking each for NUL bytes, UTF-8 and length. */
function splitLines(input: Buffer | string, maxLineBytes: number): RawLine[] {
  const lines: RawLine[] = [];
  if (typeof input === 'string') {
    const parts = input.split('\n');
    if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
    parts.forEach((text, i) => {
      const line: RawLine = { text, number: i + 1 };
      if (text.includes('\0')) {
        line.problem = { code: SYNTAX_CODES.encoding, message: 'line contains a NUL byte, ignored' };
      } else if (text.length * 3 > maxLineBytes && Buffer.byteLength(text, 'utf8') > maxLineBytes) {
        line.problem = {
          code: SYNTAX_CODES.lineTooLong,
          message: `line is longer than ${maxLineBytes} bytes`,
        };
      }
      lines.push(line);
    });
    return lines;
  }
  let start = 0;
  let number = 1;
  while (start < input.length) {
    let end = input.indexOf(0x0a, start);
    if (end < 0) end = input.length;
    const bytes = input.subarray(start, end);
    const line: RawLine = { text: '', number };
    if (bytes.length > maxLineBytes) {
      line.problem = { code: SYNTAX_CODES.lineTooLong, message: `line is longer than ${maxLineBytes} bytes` };
    } else if (bytes.includes(0)) {
      line.text = bytes.toString('latin1');
      line.problem = { code: SYNTAX_CODES.encoding, message: 'line contains a NUL byte, ignored' };
    } else {
      try {
        line.text = utf8.decode(bytes);
      } catch {
        line.text = bytes.toString('latin1');
        line.problem = { code: SYNTAX_CODES.encoding, message: 'line is not valid UTF-8, ignored' };
      }
    }
    lines.push(line);
    start = end + 1;
    number++;
  }
  return lines;
}

/**
 * Parse unit-file text. Rules (systemd.syntax(7)):
 * - '#' and ';' start a comment only as the first non-blank character of a line;
 * - a line ending in an odd number of backslashes continues on the next line, the backslash
 *   becoming a space; comment lines inside a continuation are skipped; a blank line ends it;
 * - "[Name]" starts a section; anything else after the ']' is a fatal error, as in systemd;
 * - "Key = value": blanks around the key and the value are trimmed;
 * - an assignment before the first section is an error and is ignored.
 * Entries of a continued line carry the number of the line where the key is.
 */
export function parseUnitSyntax(
  input: Buffer | string,
  file: string,
  options: SyntaxOptions = {},
): UnitSyntax {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const sections: SyntaxSection[] = [];
  const diagnostics: Diagnostic[] = [];
  let fatal = false;
  let current: SyntaxSection | undefined;
  /** A line being continued; `bytes` is its UTF-8 length, kept as it grows (measuring the whole text
   * on every piece made 75,000 continuation lines quadratic: seconds). */
  let continuation: { text: string; line: number; bytes: number } | undefined;

  const diag = (severity: 'error' | 'warning', code: string, message: string, line: number): void => {
    diagnostics.push({ severity, code, message: `${file}:${line}: ${message}`, source: { file, line } });
  };

  const handle = (text: string, line: number): void => {
    const l = trim(text);
    if (l === '' || isComment(l)) return;
    if (l.startsWith('[')) {
      const name = l.slice(1, -1);
      // eslint-disable-next-line no-control-regex
      if (!l.endsWith(']') || l.length < 3 || /[[\]\x00-\x1f\x7f]/.test(name)) {
        diag('error', SYNTAX_CODES.syntax, `invalid section header ${JSON.stringify(l)}`, line);
        fatal = true;
        current = undefined;
        return;
      }
      current = { name, source: { file, line }, entries: [] };
      sections.push(current);
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      diag('warning', SYNTAX_CODES.syntax, `missing '=', line ignored: ${JSON.stringify(l)}`, line);
      return;
    }
    const key = trim(l.slice(0, eq));
    const value = trim(l.slice(eq + 1));
    if (key === '') {
      diag('warning', SYNTAX_CODES.syntax, `missing key name before '=', line ignored`, line);
      return;
    }
    if (current === undefined) {
      diag('error', SYNTAX_CODES.syntax, `assignment ${key}= outside of any section, ignored`, line);
      return;
    }
    current.entries.push({ key, value, source: { file, line } });
  };

  const lines = splitLines(input, maxLineBytes);
  // A UTF-8 byte order mark at the start is not part of the first line.
  if (lines.length > 0 && lines[0].text.startsWith('\ufeff')) lines[0].text = lines[0].text.slice(1);

  for (const raw of lines) {
    // systemd only minds bad bytes in lines it uses: a Latin-1 comment is fine.
    if (raw.problem?.code === SYNTAX_CODES.encoding && isComment(trimStart(raw.text))) continue;
    if (raw.problem !== undefined) {
      diag('error', raw.problem.code, raw.problem.message, raw.number);
      fatal = true;
      // The broken line ends a continuation, so what was collected is not glued to later text.
      if (continuation !== undefined) {
        handle(continuation.text, continuation.line);
        continuation = undefined;
      }
      continue;
    }
    let text = raw.text;
    if (continuation !== undefined) {
      const t = trimStart(text);
      if (isComment(t)) continue;
      if (trim(t) === '') {
        // systemd ends a continuation at a blank line.
        handle(continuation.text, continuation.line);
        continuation = undefined;
        continue;
      }
    }
    // Trailing CR (CRLF files) must not hide a continuation backslash.
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (continues(text)) {
      const part = text.slice(0, -1) + ' ';
      const bytes = Buffer.byteLength(part, 'utf8');
      if (continuation === undefined) continuation = { text: part, line: raw.number, bytes };
      else {
        continuation.text += part;
        continuation.bytes += bytes;
      }
      if (continuation.bytes > maxLineBytes) {
        diag(
          'error',
          SYNTAX_CODES.lineTooLong,
          `continued line is longer than ${maxLineBytes} bytes`,
          raw.number,
        );
        fatal = true;
        continuation = undefined;
      }
      continue;
    }
    if (continuation !== undefined) {
      const joined = continuation.text + text;
      const line = continuation.line;
      const bytes = continuation.bytes + Buffer.byteLength(text, 'utf8');
      continuation = undefined;
      if (bytes > maxLineBytes) {
        diag(
          'error',
          SYNTAX_CODES.lineTooLong,
          `continued line is longer than ${maxLineBytes} bytes`,
          raw.number,
        );
        fatal = true;
        continue;
      }
      handle(joined, line);
      continue;
    }
    handle(text, raw.number);
  }
  // A backslash on the last line: what was collected still counts.
  if (continuation !== undefined) handle(continuation.text, continuation.line);
  return { sections, diagnostics, fatal };
}

/** All entries of the sections named `name`, in file order (a section may be opened twice). */
export function sectionEntries(syntax: UnitSyntax, name: string): SyntaxEntry[] {
  const out: SyntaxEntry[] = [];
  // Not out.push(...entries): a spread of 100,000+ entries overflows the stack.
  for (const s of syntax.sections) if (s.name === name) for (const e of s.entries) out.push(e);
  return out;
}
