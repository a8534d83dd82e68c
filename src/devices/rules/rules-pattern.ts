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

/** fnmatch(3) glob → anchored RegExp source. A '[' without its ']' is a literal '['. */
export function globToRegExpSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
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
  return out;
}

const GLOB_CHARS = /[*?[]/;

type Alternative = { kind: 'exact'; text: string } | { kind: 'glob'; re: RegExp };

function compileAlternative(text: string): Alternative {
  if (!GLOB_CHARS.test(text)) return { kind: 'exact', text };
  try {
    return { kind: 'glob', re: new RegExp('^(?:' + globToRegExpSource(text) + ')$') };
  } catch {
    // A range like [z-a] is invalid as a RegExp; fnmatch matches nothing with it either.
    return { kind: 'glob', re: /(?!)/ };
  }
}

export function compilePattern(text: string): RulePattern {
  const alternatives = text.split('|').map(compileAlternative);
  if (alternatives.length === 1) {
    const only = alternatives[0] as Alternative;
    if (only.kind === 'exact') {
      const t = only.text;
      return { text, test: (v) => (v ?? '') === t };
    }
    const re = only.re;
    return { text, test: (v) => re.test(v ?? '') };
  }
  return {
    text,
    test: (v) => {
      const s = v ?? '';
      for (const a of alternatives) {
        if (a.kind === 'exact' ? a.text === s : a.re.test(s)) return true;
      }
      return false;
    },
  };
}
