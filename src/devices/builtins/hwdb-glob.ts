// fnmatch(3) as glibc does it in the C locale, without FNM_PATHNAME or FNM_PERIOD: the hwdb trie
// matches its patterns with flags 0, and the hwdb builtin's --filter with FNM_NOESCAPE. Patterns
// and text are byte strings (one char per byte, as Buffer's 'latin1' gives them), so character
// classes and ranges compare byte values. Matched directly, not through a RegExp: the trie walk
// calls this once per node with values, with a different pattern each time.

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const BANG = 0x21;
const CARET = 0x5e;
const DASH = 0x2d;
const COLON = 0x3a;

/** The C locale's classes (isalpha(3) and friends on one byte). */
const CLASSES: ReadonlyMap<string, (c: number) => boolean> = new Map([
  ['alnum', (c: number) => isDigit(c) || isUpper(c) || isLower(c)],
  ['alpha', (c: number) => isUpper(c) || isLower(c)],
  ['blank', (c: number) => c === 0x20 || c === 0x09],
  ['cntrl', (c: number) => c < 0x20 || c === 0x7f],
  ['digit', isDigit],
  ['graph', (c: number) => c > 0x20 && c < 0x7f],
  ['lower', isLower],
  ['print', (c: number) => c >= 0x20 && c < 0x7f],
  ['punct', (c: number) => c > 0x20 && c < 0x7f && !isDigit(c) && !isUpper(c) && !isLower(c)],
  ['space', (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d)],
  ['upper', isUpper],
  ['xdigit', (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)],
]);

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}
function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

/** Outcome of one bracket expression: where it ends, and whether `c` is in it. */
type Bracket = { end: number; matches: boolean } | 'unterminated' | 'invalid';

/** The bracket expression starting at `pattern[start] === '['`, tested against byte `c`. */
function matchBracket(pattern: string, start: number, c: number, noEscape: boolean): Bracket {
  let p = start + 1;
  const negate = pattern.charCodeAt(p) === BANG || pattern.charCodeAt(p) === CARET;
  if (negate) p++;
  let found = false;
  let first = true;
  for (;;) {
    if (p >= pattern.length) return 'unterminated';
    let lo = pattern.charCodeAt(p);
    if (lo === CLOSE && !first) return { end: p + 1, matches: found !== negate };
    first = false;
    if (lo === OPEN && pattern.charCodeAt(p + 1) === COLON) {
      const close = pattern.indexOf(':]', p + 2);
      if (close < 0) return 'unterminated';
      const test = CLASSES.get(pattern.slice(p + 2, close));
      // glibc: an unknown class name makes the whole pattern fail to match.
      if (test === undefined) return 'invalid';
      if (test(c)) found = true;
      p = close + 2;
      continue;
    }
    if (
      (lo === OPEN && pattern.charCodeAt(p + 1) === 0x3d) ||
      (lo === OPEN && pattern.charCodeAt(p + 1) === 0x2e)
    ) {
      // [=c=] and [.c.]: in the C locale both name the one byte c.
      const delim = pattern[p + 1]!;
      const close = pattern.indexOf(`${delim}]`, p + 2);
      if (close !== p + 3) return 'unterminated';
      lo = pattern.charCodeAt(p + 2);
      p = close + 2;
    } else {
      if (lo === BACKSLASH && !noEscape) {
        p++;
        if (p >= pattern.length) return 'unterminated';
        lo = pattern.charCodeAt(p);
      }
      p++;
    }
    let hi = lo;
    if (pattern.charCodeAt(p) === DASH && p + 1 < pattern.length && pattern.charCodeAt(p + 1) !== CLOSE) {
      p++;
      if (pattern.charCodeAt(p) === BACKSLASH && !noEscape) p++;
      if (p >= pattern.length) return 'unterminated';
      hi = pattern.charCodeAt(p);
      p++;
    }
    if (c >= lo && c <= hi) found = true;
  }
}

/**
 * fnmatch(pattern, text, noEscape ? FNM_NOESCAPE : 0) === 0. Greedy with one backtracking point
 * (the last '*'), which is exact for fnmatch without FNM_PATHNAME.
 */
export function fnmatch(pattern: string, text: string, noEscape = false): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length || p < pattern.length) {
    if (p < pattern.length) {
      const pc = pattern.charCodeAt(p);
      if (pc === STAR) {
        starP = ++p;
        starT = t;
        continue;
      }
      if (t < text.length) {
        const tc = text.charCodeAt(t);
        let next = -1;
        if (pc === QUESTION) next = p + 1;
        else if (pc === OPEN) {
          const bracket = matchBracket(pattern, p, tc, noEscape);
          if (bracket === 'invalid') return false;
          if (bracket === 'unterminated') next = tc === OPEN ? p + 1 : -1;
          else if (bracket.matches) next = bracket.end;
        } else if (pc === BACKSLASH && !noEscape) {
          // A trailing backslash matches nothing, as in glibc.
          if (p + 1 < pattern.length && pattern.charCodeAt(p + 1) === tc) next = p + 2;
        } else if (pc === tc) next = p + 1;
        if (next >= 0) {
          p = next;
          t++;
          continue;
        }
      }
    }
    // Mismatch: let the last '*' swallow one more byte, if there is one to swallow.
    if (starP < 0 || starT >= text.length) return false;
    p = starP;
    t = ++starT;
  }
  return true;
}

/**
 * Whether some pattern that starts with `prefix` could match `text` (flags 0). False only when
 * none can: `prefix` ends between two pattern elements (not inside '[…]' or after a lone '\')
 * and `prefix*` does not match. Lets the hwdb walk skip a subtree whose patterns all fail.
 */
export function couldMatchWithPrefix(prefix: string, text: string): boolean {
  for (let i = 0; i < prefix.length;) {
    const c = prefix.charCodeAt(i);
    if (c === BACKSLASH) {
      if (i + 1 >= prefix.length) return true;
      i += 2;
    } else if (c === OPEN) {
      const bracket = matchBracket(prefix, i, 0, false);
      if (bracket === 'unterminated') return true;
      // An unknown class fails every pattern that reaches it, whatever follows.
      if (bracket === 'invalid') return false;
      i = bracket.end;
    } else i++;
  }
  return fnmatch(prefix + '*', text);
}
