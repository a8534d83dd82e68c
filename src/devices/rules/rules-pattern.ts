// Match patterns of udev rules: '|'-separated alternatives, each a shell glob (fnmatch without
// FNM_PATHNAME: '*' crosses '/') with '*', '?', '[…]', '[!…]' and '\' quoting. Compiled once.

export interface RulePattern {
  readonly text: string;
  /** An unset value matches as the empty string, as in udev. */
  test(value: string | undefined): boolean;
}

function escapeRegExp(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? '\\' + c : c;
}

/** One run of a glob between '*'s: RegExp source for exactly `length` characters (no quantifiers). */
interface GlobSegment {
  source: string;
  length: number;
}

/** Split a glob at its '*'s (not those quoted or inside '[…]'); each piece matches a fixed length. */
function globSegments(glob: string): GlobSegment[] {
  const segments: GlobSegment[] = [];
  let out = '';
  let length = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    length++;
    if (c === '*') {
      segments.push({ source: out, length: length - 1 });
      out = '';
      length = 0;
    } else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\' && i + 1 < glob.length) out += escapeRegExp(glob[++i] as string);
    else if (c === '[') {
      let j = i + 1;
      let negate = false;
      if (glob[j] === '!' || glob[j] === '^') {
        negate = true;
        j++;
      }
      const first = j;
      // A ']' right after '[' or '[!' is a member, not the end.
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) {
        out += '\\[';
        continue;
      }
      const members = glob.substring(first, j);
      let cls = '';
      for (let k = 0; k < members.length; k++) {
        const m = members[k] as string;
        if (m === '-' && k > 0 && k < members.length - 1) cls += '-';
        else cls += escapeRegExp(m);
      }
      out += (negate ? '[^' : '[') + cls + ']';
      i = j;
    } else out += escapeRegExp(c);
  }
  segments.push({ source: out, length });
  return segments;
}

/** fnmatch(3) glob → anchored RegExp source. A '[' without its ']' is a literal '['. */
export function globToRegExpSource(glob: string): string {
  return globSegments(glob)
    .map((s) => s.source)
    .join('[\\s\\S]*');
}

const GLOB_CHARS = /[*?[]/;

/**
 * A glob with '*' is matched piece by piece, not as one RegExp: `*a*a*a*b` as a RegExp backtracks
 * exponentially (a 128-character attribute took minutes), while taking each piece at its leftmost
 * place after the previous one is exact for '*' (which crosses '/') and costs O(value × pattern).
 */
type Alternative =
  | { kind: 'exact'; text: string }
  | { kind: 'glob'; re: RegExp }
  | { kind: 'stars'; pieces: { re: RegExp; length: number }[] };

function compileAlternative(text: string): Alternative {
  if (!GLOB_CHARS.test(text)) return { kind: 'exact', text };
  try {
    const segments = globSegments(text);
    if (segments.length === 1) return { kind: 'glob', re: new RegExp('^(?:' + segments[0]?.source + ')$') };
    return {
      kind: 'stars',
      pieces: segments.map((s) => ({ re: new RegExp(s.source, 'y'), length: s.length })),
    };
  } catch {
    // A range like [z-a] is invalid as a RegExp; fnmatch matches nothing with it either.
    return { kind: 'glob', re: /(?!)/ };
  }
}

function pieceAt(piece: { re: RegExp; length: number }, value: string, at: number): boolean {
  if (piece.length === 0) return true;
  piece.re.lastIndex = at;
  return piece.re.test(value);
}

/** First piece at the start, last piece at the end, each one between at its leftmost place. */
function matchStars(pieces: readonly { re: RegExp; length: number }[], value: string): boolean {
  const first = pieces[0] as { re: RegExp; length: number };
  const last = pieces[pieces.length - 1] as { re: RegExp; length: number };
  const lastAt = value.length - last.length;
  if (lastAt < first.length || !pieceAt(first, value, 0)) return false;
  let at = first.length;
  for (let p = 1; p < pieces.length - 1; p++) {
    const piece = pieces[p] as { re: RegExp; length: number };
    while (at + piece.length <= lastAt && !pieceAt(piece, value, at)) at++;
    if (at + piece.length > lastAt) return false;
    at += piece.length;
  }
  return pieceAt(last, value, lastAt);
}

function matches(a: Alternative, value: string): boolean {
  if (a.kind === 'exact') return a.text === value;
  if (a.kind === 'glob') return a.re.test(value);
  return matchStars(a.pieces, value);
}

export function compilePattern(text: string): RulePattern {
  const alternatives = text.split('|').map(compileAlternative);
  if (alternatives.length === 1) {
    const only = alternatives[0] as Alternative;
    if (only.kind === 'exact') {
      const t = only.text;
      return { text, test: (v) => (v ?? '') === t };
    }
    if (only.kind === 'glob') {
      const re = only.re;
      return { text, test: (v) => re.test(v ?? '') };
    }
  }
  return {
    text,
    test: (v) => {
      const s = v ?? '';
      for (const a of alternatives) if (matches(a, s)) return true;
      return false;
    },
  };
}
