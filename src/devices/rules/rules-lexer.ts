// udev rules text → logical lines of KEY[{attr}] OP "value" pairs. Each pair remembers the
// physical file:line:column where its key starts, so every later diagnostic can point at it.
// The lexer never throws: a malformed logical line is reported and dropped, the rest goes on.
import type { SourceRef } from '../../units/config-types';

export const RULE_OPERATORS = ['==', '!=', '=', '+=', '-=', ':='] as const;
export type RuleOperator = (typeof RULE_OPERATORS)[number];

/** Stable error codes of the rules engine (documented for `triggerctl verify-rules`). */
export const RULE_ERROR_CODES = [
  'ERR_RULE_SYNTAX',
  'ERR_RULE_KEY',
  'ERR_RULE_ATTR',
  'ERR_RULE_OPERATOR',
  'ERR_RULE_VALUE',
  'ERR_RULE_GOTO',
  'ERR_RULE_BUILTIN',
  'ERR_RULE_OPTION',
  'ERR_RULE_SUBSTITUTION',
  'ERR_RULE_FILE',
] as const;
export type RuleErrorCode = (typeof RULE_ERROR_CODES)[number];

/** A SourceRef that also names the column (1-based) where the offending text starts. */
export interface RuleSourceRef extends SourceRef {
  column: number;
}

export interface RuleDiagnostic {
  severity: 'error' | 'warning';
  code: RuleErrorCode;
  message: string;
  source: RuleSourceRef;
}

export interface RulePair {
  key: string;
  /** The text between `{` and `}`; absent when the key had no braces. */
  attr?: string;
  op: RuleOperator;
  /** The value with quoting removed and escapes applied. */
  value: string;
  source: RuleSourceRef;
}

export interface RuleLine {
  /** Where the logical line starts (its first key). */
  source: RuleSourceRef;
  pairs: RulePair[];
}

export interface LexResult {
  lines: RuleLine[];
  diagnostics: RuleDiagnostic[];
}

/** udev refuses logical lines this long (UDEV_LINE_SIZE). */
export const RULE_LINE_MAX = 16384;

/** One physical piece of a logical line: where it sits in the logical text and in the file. */
interface Segment {
  offset: number;
  line: number;
  column: number;
}

class LineText {
  constructor(
    readonly file: string,
    readonly text: string,
    private readonly segments: Segment[],
  ) {}

  /** Map an offset in the logical text back to file:line:column. */
  at(offset: number): RuleSourceRef {
    let seg = this.segments[0] as Segment;
    for (const s of this.segments) {
      if (s.offset > offset) break;
      seg = s;
    }
    return { file: this.file, line: seg.line, column: seg.column + (offset - seg.offset) };
  }
}

class LineError {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

function isKeyChar(c: string): boolean {
  const x = c.charCodeAt(0);
  return (x >= 65 && x <= 90) || (x >= 97 && x <= 122) || (x >= 48 && x <= 57) || x === 95;
}

const C_ESCAPES: Record<string, string> = {
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
};

const HEX = /^[0-9a-fA-F]{2}$/;
const OCT = /^[0-7]{3}$/;

/** Parse one quoted value starting at `start` (the `"` or the `e` of `e"`). Returns value and end. */
function lexValue(text: string, start: number): { value: string; end: number } {
  const escaped = text[start] === 'e';
  let i = escaped ? start + 2 : start + 1;
  let out = '';
  for (;;) {
    if (i >= text.length) throw new LineError(start, 'unterminated quoted value');
    const c = text[i] as string;
    if (c === '"') return { value: out, end: i + 1 };
    if (c === '\\') {
      const n = text[i + 1];
      if (!escaped) {
        // Plain strings know one escape only, as udev does: \" is a quote, other backslashes stay.
        if (n === '"') {
          out += '"';
          i += 2;
        } else {
          out += c;
          i += 1;
        }
        continue;
      }
      if (n === undefined) throw new LineError(i, 'unterminated quoted value');
      const simple = C_ESCAPES[n];
      if (simple !== undefined) {
        out += simple;
        i += 2;
        continue;
      }
      if (n === 'x' && HEX.test(text.substring(i + 2, i + 4))) {
        out += String.fromCharCode(parseInt(text.substring(i + 2, i + 4), 16));
        i += 4;
        continue;
      }
      if (OCT.test(text.substring(i + 1, i + 4))) {
        const v = parseInt(text.substring(i + 1, i + 4), 8);
        if (v > 0 && v < 256) {
          out += String.fromCharCode(v);
          i += 4;
          continue;
        }
      }
      throw new LineError(i, `invalid escape sequence '\\${n}' in e"…" value`);
    }
    out += c;
    i += 1;
  }
}

function lexPairs(lt: LineText, diagnostics: RuleDiagnostic[]): RulePair[] {
  const text = lt.text;
  const pairs: RulePair[] = [];
  let i = 0;
  let needSeparator = false;
  for (;;) {
    let sawSeparator = false;
    while (i < text.length && (isSpace(text[i] as string) || text[i] === ',')) {
      i++;
      sawSeparator = true;
    }
    if (i >= text.length) break;
    if (needSeparator && !sawSeparator) {
      diagnostics.push({
        severity: 'warning',
        code: 'ERR_RULE_SYNTAX',
        message: "expected ',' or whitespace between key-value pairs",
        source: lt.at(i),
      });
    }
    const keyStart = i;
    while (i < text.length && isKeyChar(text[i] as string)) i++;
    if (i === keyStart) throw new LineError(i, `expected a key, found '${text[i]}'`);
    const key = text.substring(keyStart, i);
    let attr: string | undefined;
    if (text[i] === '{') {
      const close = text.indexOf('}', i + 1);
      if (close < 0) throw new LineError(i, `unterminated '{' after key ${key}`);
      attr = text.substring(i + 1, close);
      i = close + 1;
    }
    while (i < text.length && isSpace(text[i] as string)) i++;
    const two = text.substring(i, i + 2);
    let op: RuleOperator;
    if (two === '==' || two === '!=' || two === '+=' || two === '-=' || two === ':=') {
      op = two;
      i += 2;
    } else if (text[i] === '=') {
      op = '=';
      i += 1;
    } else {
      throw new LineError(i, `expected an operator (== != = += -= :=) after ${key}`);
    }
    while (i < text.length && isSpace(text[i] as string)) i++;
    if (text[i] !== '"' && !(text[i] === 'e' && text[i + 1] === '"')) {
      throw new LineError(i, `value of ${key} must be a double-quoted string`);
    }
    const v = lexValue(text, i);
    i = v.end;
    const pair: RulePair = { key, op, value: v.value, source: lt.at(keyStart) };
    if (attr !== undefined) pair.attr = attr;
    pairs.push(pair);
    needSeparator = true;
  }
  return pairs;
}

/** Split one file's text into logical lines of pairs. Never throws. */
export function lexRules(text: string, file: string): LexResult {
  const lines: RuleLine[] = [];
  const diagnostics: RuleDiagnostic[] = [];
  const physical = text.split('\n');
  let parts: string[] = [];
  let segments: Segment[] = [];
  let length = 0;

  const flush = (): void => {
    const lt = new LineText(file, parts.join(''), segments);
    parts = [];
    segments = [];
    length = 0;
    if (lt.text.trim() === '') return;
    if (lt.text.length > RULE_LINE_MAX) {
      diagnostics.push({
        severity: 'error',
        code: 'ERR_RULE_SYNTAX',
        message: `line longer than ${RULE_LINE_MAX} characters, ignored`,
        source: lt.at(0),
      });
      return;
    }
    const before = diagnostics.length;
    try {
      const pairs = lexPairs(lt, diagnostics);
      if (pairs.length > 0) lines.push({ source: (pairs[0] as RulePair).source, pairs });
    } catch (e: unknown) {
      if (!(e instanceof LineError)) throw e;
      // The whole logical line goes: half a rule could match what the author never meant.
      diagnostics.length = before;
      diagnostics.push({
        severity: 'error',
        code: 'ERR_RULE_SYNTAX',
        message: `${e.message}; line ignored`,
        source: lt.at(e.offset),
      });
    }
  };

  for (let n = 0; n < physical.length; n++) {
    let raw = physical[n] as string;
    if (raw.endsWith('\r')) raw = raw.substring(0, raw.length - 1);
    let lead = 0;
    while (lead < raw.length && isSpace(raw[lead] as string)) lead++;
    // Comment lines are skipped even inside a continuation, as udev does.
    if (raw[lead] === '#') continue;
    const continued = raw.endsWith('\\');
    const body = continued ? raw.substring(0, raw.length - 1) : raw;
    segments.push({ offset: length, line: n + 1, column: 1 });
    parts.push(body);
    length += body.length;
    if (continued) {
      // Guard against a pathological file of endless continuations.
      if (length > RULE_LINE_MAX * 4) flush();
      continue;
    }
    flush();
  }
  if (parts.length > 0) {
    const lt = new LineText(file, parts.join(''), segments);
    if (lt.text.trim() !== '') {
      diagnostics.push({
        severity: 'error',
        code: 'ERR_RULE_SYNTAX',
        message: 'line continuation at end of file; line ignored',
        source: lt.at(0),
      });
    }
  }
  return { lines, diagnostics };
}

/** `file:line:column` for messages. */
export function formatSource(source: RuleSourceRef): string {
  return `${source.file}:${source.line}:${source.column}`;
}
