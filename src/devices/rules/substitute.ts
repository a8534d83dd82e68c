// udev string substitutions ($kernel, %k, $attr{file}, $env{KEY}, %c{N+}, ...). Pure: every fact
// about the device comes from the SubstitutionContext the caller supplies.

/** What a substitution may ask about the device being processed. */
export interface SubstitutionContext {
  /** Path below /sys ('/devices/virtual/block/loop0'). */
  readonly devpath: string;
  /** Kernel name ('loop0'; '!' in the sysfs name already turned into '/'). */
  readonly kernel: string;
  readonly major?: number;
  readonly minor?: number;
  /** Absolute device node ('/dev/loop0'). */
  readonly devnode?: string;
  /** $name: NAME= if a rule set it, else the node name relative to /dev, else the kernel name. */
  name(): string;
  /** $links: current symlinks, relative to /dev. */
  links(): readonly string[];
  /** $result: output of the last PROGRAM. */
  result(): string | undefined;
  /** $id / $driver: kernel name / driver of the device a KERNELS/SUBSYSTEMS/... walk matched. */
  matchedKernel(): string | undefined;
  matchedDriver(): string | undefined;
  /** $parent: node name (relative to /dev) of the parent device. */
  parentNode(): string | undefined;
  env(key: string): string | undefined;
  /** Sysfs attribute, value as read; supports the `[subsystem/sysname]attr` form. */
  attr(name: string): string | undefined;
}

export interface SubstitutionProblem {
  /** Offset (0-based) in the template where the substitution starts. */
  offset: number;
  message: string;
}

export interface SubstitutionResult {
  value: string;
  problems: SubstitutionProblem[];
}

export type SubstitutionKind =
  | 'devnode'
  | 'attr'
  | 'env'
  | 'kernel'
  | 'number'
  | 'driver'
  | 'devpath'
  | 'id'
  | 'major'
  | 'minor'
  | 'result'
  | 'parent'
  | 'name'
  | 'links'
  | 'root'
  | 'sys';

/** Long names in udev's lookup order (a prefix match: 'sysfs' before 'sys'). */
const LONG_NAMES: readonly [string, SubstitutionKind][] = [
  ['devnode', 'devnode'],
  ['attr', 'attr'],
  ['sysfs', 'attr'],
  ['env', 'env'],
  ['kernel', 'kernel'],
  ['number', 'number'],
  ['driver', 'driver'],
  ['devpath', 'devpath'],
  ['id', 'id'],
  ['major', 'major'],
  ['minor', 'minor'],
  ['result', 'result'],
  ['parent', 'parent'],
  ['name', 'name'],
  ['links', 'links'],
  ['root', 'root'],
  ['sys', 'sys'],
];

const SHORT_NAMES: Readonly<Record<string, SubstitutionKind>> = {
  N: 'devnode',
  s: 'attr',
  E: 'env',
  k: 'kernel',
  n: 'number',
  d: 'driver',
  p: 'devpath',
  b: 'id',
  M: 'major',
  m: 'minor',
  c: 'result',
  P: 'parent',
  D: 'name',
  r: 'root',
  S: 'sys',
};

export type FormatPart =
  { kind: 'text'; text: string } | { kind: 'subst'; subst: SubstitutionKind; arg?: string; offset: number };

interface ParsedFormat {
  parts: FormatPart[];
  problems: SubstitutionProblem[];
}

const NEEDS_ARG: ReadonlySet<SubstitutionKind> = new Set(['attr', 'env']);

function parseFormatUncached(template: string): ParsedFormat {
  const parts: FormatPart[] = [];
  const problems: SubstitutionProblem[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const c = template[i] as string;
    if (c !== '$' && c !== '%') {
      text += c;
      i++;
      continue;
    }
    const start = i;
    if (template[i + 1] === c) {
      text += c;
      i += 2;
      continue;
    }
    let kind: SubstitutionKind | undefined;
    let after = i + 1;
    if (c === '$') {
      for (const [name, k] of LONG_NAMES) {
        if (template.startsWith(name, i + 1)) {
          kind = k;
          after = i + 1 + name.length;
          break;
        }
      }
    } else {
      kind = SHORT_NAMES[template[i + 1] ?? ''];
      after = i + 2;
    }
    if (kind === undefined) {
      // Not a substitution (a shell '$VAR' or 'date +%d'): udev copies it as it stands.
      text += c;
      i++;
      continue;
    }
    let arg: string | undefined;
    if (template[after] === '{') {
      const close = template.indexOf('}', after + 1);
      if (close < 0) {
        problems.push({ offset: start, message: `unterminated '{' in substitution` });
        text += template.substring(start);
        i = template.length;
        continue;
      }
      arg = template.substring(after + 1, close);
      after = close + 1;
    }
    if (NEEDS_ARG.has(kind) && (arg === undefined || arg === '')) {
      problems.push({ offset: start, message: `substitution ${template.substring(start, after)} needs {…}` });
    }
    if (text !== '') parts.push({ kind: 'text', text });
    text = '';
    const part: FormatPart = { kind: 'subst', subst: kind, offset: start };
    if (arg !== undefined) part.arg = arg;
    parts.push(part);
    i = after;
  }
  if (text !== '') parts.push({ kind: 'text', text });
  return { parts, problems };
}

// Templates come from rule files, so the set is finite; the cap only guards odd callers (fuzzers).
const cache = new Map<string, ParsedFormat>();
const CACHE_MAX = 4096;

export function parseFormat(template: string): ParsedFormat {
  let parsed = cache.get(template);
  if (parsed === undefined) {
    parsed = parseFormatUncached(template);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(template, parsed);
  }
  return parsed;
}

/** True when the template contains anything to substitute (or `$$`/`%%` to unescape). */
export function hasSubstitution(template: string): boolean {
  return template.includes('$') || template.includes('%');
}

/** Problems the template has regardless of the device (checked at load). */
export function checkFormat(template: string): SubstitutionProblem[] {
  return hasSubstitution(template) ? parseFormat(template).problems : [];
}

const SAFE_PLAIN = /[A-Za-z0-9#+\-.:=@_]/;

/**
 * udev's character sanitiser: keeps alphanumerics, `#+-.:=@_`, `allow`, `\xHH` escapes and
 * valid UTF-8 (JS strings are already decoded); whitespace becomes ' ' when ' ' is allowed;
 * everything else becomes '_'.
 */
export function replaceUnsafeChars(value: string, allow: string): string {
  if (isAllSafe(value, allow)) return value;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    const code = c.charCodeAt(0);
    if (allow.includes(c) || SAFE_PLAIN.test(c) || code >= 0x80) {
      out += c;
    } else if (c === '\\' && value[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(value.substring(i + 2, i + 4))) {
      out += value.substring(i, i + 4);
      i += 3;
    } else if (/\s/.test(c) && allow.includes(' ')) {
      out += ' ';
    } else {
      out += '_';
    }
  }
  return out;
}

/** Every character kept as it is (the usual case: no new string needed). */
function isAllSafe(value: string, allow: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const plain =
      (code >= 0x30 && code <= 0x39) ||
      (code >= 0x41 && code <= 0x5a) ||
      (code >= 0x61 && code <= 0x7a) ||
      code >= 0x80 ||
      code === 0x23 || // #
      code === 0x2b || // +
      code === 0x2d || // -
      code === 0x2e || // .
      code === 0x3a || // :
      code === 0x3d || // =
      code === 0x40 || // @
      code === 0x5f; // _
    if (!plain && !allow.includes(value[i] as string)) return false;
  }
  return true;
}

/** Strip leading/trailing whitespace, squeeze inner runs to one '_' (udev_replace_whitespace). */
export function replaceWhitespace(value: string): string {
  return value.trim().replace(/\s+/g, '_');
}

/** Characters allowed in substituted attribute values and PROGRAM output. */
export const ALLOWED_CHARS_INPUT = '/ $%?,';

function resultWords(result: string, arg: string, offset: number, problems: SubstitutionProblem[]): string {
  const m = /^(\d+)(\+?)$/.exec(arg);
  if (m === null) {
    problems.push({ offset, message: `invalid %c{${arg}}: expected {N} or {N+}` });
    return '';
  }
  const n = Number(m[1]);
  if (n < 1) {
    problems.push({ offset, message: `invalid %c{${arg}}: words count from 1` });
    return '';
  }
  const words = result.split(/\s+/).filter((w) => w !== '');
  if (m[2] === '+') return words.slice(n - 1).join(' ');
  return words[n - 1] ?? '';
}

function expand(
  part: Extract<FormatPart, { kind: 'subst' }>,
  ctx: SubstitutionContext,
  problems: SubstitutionProblem[],
): string {
  switch (part.subst) {
    case 'devnode':
      return ctx.devnode ?? '';
    case 'attr': {
      if (part.arg === undefined || part.arg === '') return '';
      const v = ctx.attr(part.arg);
      if (v === undefined) return '';
      return replaceUnsafeChars(v.replace(/\s+$/, ''), ALLOWED_CHARS_INPUT);
    }
    case 'env':
      if (part.arg === undefined || part.arg === '') return '';
      return ctx.env(part.arg) ?? '';
    case 'kernel':
      return ctx.kernel;
    case 'number': {
      const m = /\d+$/.exec(ctx.kernel);
      return m === null ? '' : m[0];
    }
    case 'driver':
      return ctx.matchedDriver() ?? '';
    case 'devpath':
      return ctx.devpath;
    case 'id':
      return ctx.matchedKernel() ?? '';
    case 'major':
      return ctx.major === undefined ? '0' : String(ctx.major);
    case 'minor':
      return ctx.minor === undefined ? '0' : String(ctx.minor);
    case 'result': {
      const r = ctx.result() ?? '';
      return part.arg === undefined ? r : resultWords(r, part.arg, part.offset, problems);
    }
    case 'parent':
      return ctx.parentNode() ?? '';
    case 'name':
      return ctx.name();
    case 'links':
      return ctx.links().join(' ');
    case 'root':
      return '/dev';
    case 'sys':
      return '/sys';
  }
}

export interface SubstituteOptions {
  /** SYMLINK/NAME: whitespace inside substituted values becomes '_' (so it cannot split links). */
  replaceWhitespace?: boolean;
}

/** Expand every substitution in `template`. Never throws; problems are returned, not logged. */
export function substitute(
  template: string,
  ctx: SubstitutionContext,
  options: SubstituteOptions = {},
): SubstitutionResult {
  if (!hasSubstitution(template)) return { value: template, problems: [] };
  const parsed = parseFormat(template);
  const problems = parsed.problems.slice();
  let value = '';
  for (const part of parsed.parts) {
    if (part.kind === 'text') {
      value += part.text;
      continue;
    }
    let v: string;
    try {
      v = expand(part, ctx, problems);
    } catch (e: unknown) {
      problems.push({ offset: part.offset, message: `substitution failed: ${String(e)}` });
      v = '';
    }
    value += options.replaceWhitespace === true ? replaceWhitespace(v) : v;
  }
  return { value, problems };
}
