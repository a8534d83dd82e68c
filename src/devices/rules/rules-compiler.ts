// Lexed rule lines → typed tokens (one union member per key), validated per key, sorted into
// udev's evaluation order, with GOTO resolved to a line index at load. The rule-file set is
// ordered and masked as udev does. A reload compiles everything from scratch.
import fs = require('node:fs');
import path = require('node:path');
import {
  lexRules,
  type RuleDiagnostic,
  type RuleErrorCode,
  type RuleLine,
  type RuleOperator,
  type RulePair,
  type RuleSourceRef,
} from './rules-lexer';
import { compilePattern, type RulePattern } from './rules-pattern';
import { checkFormat } from './substitute';

export const KNOWN_BUILTINS = [
  'blkid',
  'btrfs',
  'hwdb',
  'input_id',
  'keyboard',
  'kmod',
  'net_id',
  'net_setup_link',
  'path_id',
  'usb_id',
  'uaccess',
] as const;

/** Where udev looks for rules, highest priority first (a name in an earlier dir masks later ones). */
export const DEFAULT_RULES_DIRS = [
  '/etc/udev/rules.d',
  '/run/udev/rules.d',
  '/usr/local/lib/udev/rules.d',
  '/usr/lib/udev/rules.d',
  '/lib/udev/rules.d',
] as const;

export type ImportKind = 'program' | 'builtin' | 'file' | 'db' | 'cmdline' | 'parent';
export type RunKind = 'program' | 'builtin';
export type ScalarMatchKey =
  'ACTION' | 'DEVPATH' | 'KERNEL' | 'NAME' | 'SYMLINK' | 'SUBSYSTEM' | 'DRIVER' | 'TAG' | 'RESULT';
export type ParentMatchKey = 'KERNELS' | 'SUBSYSTEMS' | 'DRIVERS' | 'TAGS';

export type RuleOption =
  | { name: 'string_escape'; value: 'none' | 'replace' }
  | { name: 'db_persist' }
  | { name: 'watch' }
  | { name: 'nowatch' }
  | { name: 'link_priority'; value: number }
  | { name: 'log_level'; value: number | 'reset' }
  | { name: 'static_node'; value: string };

interface TokenBase {
  source: RuleSourceRef;
}
interface MatchBase extends TokenBase {
  negate: boolean;
}

export type RuleToken =
  | (MatchBase & { type: 'match'; key: ScalarMatchKey; pattern: RulePattern })
  | (MatchBase & { type: 'match-env'; name: string; pattern: RulePattern })
  | (MatchBase & { type: 'match-const'; name: 'arch' | 'virt'; pattern: RulePattern })
  | (MatchBase & { type: 'match-attr'; name: string; pattern: RulePattern; keepTrailingSpace: boolean })
  | (MatchBase & { type: 'match-sysctl'; name: string; pattern: RulePattern })
  | (MatchBase & { type: 'match-parent'; key: ParentMatchKey; pattern: RulePattern })
  | (MatchBase & {
      type: 'match-parent-attr';
      name: string;
      pattern: RulePattern;
      keepTrailingSpace: boolean;
    })
  | (MatchBase & { type: 'match-test'; path: string; mode?: number })
  | (MatchBase & { type: 'match-program'; command: string })
  | (MatchBase & { type: 'match-import'; kind: ImportKind; value: string })
  | (TokenBase & { type: 'assign-name'; final: boolean; value: string })
  | (TokenBase & { type: 'assign-symlink'; op: '=' | '+=' | '-=' | ':='; value: string })
  | (TokenBase & { type: 'assign-owner' | 'assign-group' | 'assign-mode'; final: boolean; value: string })
  | (TokenBase & { type: 'assign-seclabel'; name: string; value: string })
  | (TokenBase & { type: 'assign-attr'; name: string; value: string })
  | (TokenBase & { type: 'assign-sysctl'; name: string; value: string })
  | (TokenBase & { type: 'assign-env'; name: string; append: boolean; value: string })
  | (TokenBase & { type: 'assign-tag'; op: '=' | '+=' | '-='; value: string })
  | (TokenBase & { type: 'assign-run'; kind: RunKind; op: '=' | '+=' | ':='; value: string })
  | (TokenBase & { type: 'option'; option: RuleOption });

export type RuleTokenType = RuleToken['type'];

export interface CompiledLine {
  source: RuleSourceRef;
  /** Tokens in evaluation order (udev sorts matches before assignments, parents together). */
  tokens: RuleToken[];
  label?: string;
  gotoLabel?: string;
  /** Index into CompiledRules.lines of the LABEL line GOTO jumps to (resolved at load). */
  gotoIndex?: number;
  hasParentTokens: boolean;
}

export interface CompiledRules {
  /** Files compiled, in execution order. */
  files: string[];
  /** One flat program: all lines of all files in order. */
  lines: CompiledLine[];
  diagnostics: RuleDiagnostic[];
  tokenCount: number;
}

export interface RuleSource {
  file: string;
  text: string;
}

export interface CompileOptions {
  /** Builtins the host provides; others draw a warning. Defaults to KNOWN_BUILTINS. */
  builtins?: readonly string[];
}

/** Evaluation rank per token (udev's token-type order: it sorts each line's tokens by it). */
function rankOf(t: RuleToken): number {
  switch (t.type) {
    case 'match':
      return {
        ACTION: 0,
        DEVPATH: 1,
        KERNEL: 2,
        SYMLINK: 3,
        NAME: 4,
        TAG: 7,
        SUBSYSTEM: 8,
        DRIVER: 9,
        RESULT: 26,
      }[t.key];
    case 'match-env':
      return 5;
    case 'match-const':
      return 6;
    case 'match-attr':
      return 10;
    case 'match-sysctl':
      return 11;
    case 'match-parent':
      return { KERNELS: 12, SUBSYSTEMS: 13, DRIVERS: 14, TAGS: 16 }[t.key];
    case 'match-parent-attr':
      return 15;
    case 'match-test':
      return 17;
    case 'match-program':
      return 18;
    case 'match-import':
      return { file: 19, program: 20, builtin: 21, db: 22, cmdline: 23, parent: 24 }[t.kind];
    case 'option':
      return t.option.name === 'static_node' ? 39 : 30;
    case 'assign-owner':
      return 35;
    case 'assign-group':
      return 36;
    case 'assign-mode':
      return 37;
    case 'assign-tag':
      return 38;
    case 'assign-seclabel':
      return 40;
    case 'assign-env':
      return 41;
    case 'assign-name':
      return 42;
    case 'assign-symlink':
      return 43;
    case 'assign-attr':
      return 44;
    case 'assign-sysctl':
      return 45;
    case 'assign-run':
      return t.kind === 'builtin' ? 46 : 47;
  }
}

export function isParentToken(t: RuleToken): boolean {
  return t.type === 'match-parent' || t.type === 'match-parent-attr';
}

/** Properties the rules may not set: the kernel or the device database owns them. */
const READONLY_ENV = new Set([
  'ACTION',
  'DEVLINKS',
  'DEVNAME',
  'DEVPATH',
  'DEVTYPE',
  'DRIVER',
  'IFINDEX',
  'MAJOR',
  'MINOR',
  'SEQNUM',
  'SUBSYSTEM',
  'TAGS',
  'CURRENT_TAGS',
]);

const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

/** Collects one line's diagnostics; any error drops the line. */
class LineDiagnostics {
  broken = false;
  constructor(private readonly out: RuleDiagnostic[]) {}
  error(code: RuleErrorCode, message: string, source: RuleSourceRef): undefined {
    this.broken = true;
    this.out.push({ severity: 'error', code, message, source });
    return undefined;
  }
  warning(code: RuleErrorCode, message: string, source: RuleSourceRef): void {
    this.out.push({ severity: 'warning', code, message, source });
  }
}

interface KeyContext {
  d: LineDiagnostics;
  builtins: ReadonlySet<string>;
}

type KeyCompiler = (p: RulePair, ctx: KeyContext) => RuleToken | undefined;

const isMatchOp = (op: RuleOperator): boolean => op === '==' || op === '!=';

function badOp(p: RulePair, ctx: KeyContext, allowed: string): undefined {
  return ctx.d.error('ERR_RULE_OPERATOR', `${p.key} does not take '${p.op}' (allowed: ${allowed})`, p.source);
}

function noAttr(p: RulePair, ctx: KeyContext): boolean {
  if (p.attr === undefined) return true;
  ctx.d.error('ERR_RULE_ATTR', `${p.key} takes no {attribute}`, p.source);
  return false;
}

function needAttr(p: RulePair, ctx: KeyContext): string | undefined {
  const a = p.attr;
  if (a === undefined || a === '') {
    return ctx.d.error('ERR_RULE_ATTR', `${p.key} needs an {attribute}`, p.source);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(a)) {
    return ctx.d.error('ERR_RULE_ATTR', `invalid attribute name '${a}' for ${p.key}`, p.source);
  }
  if (a.startsWith('[') && !/^\[[^/\]]+\/[^\]]+\]/.test(a)) {
    return ctx.d.error('ERR_RULE_ATTR', `invalid [subsystem/sysname] form in '${a}'`, p.source);
  }
  return a;
}

/** Checks substitutions in a value that will be expanded at run time. */
function checkSubst(p: RulePair, ctx: KeyContext, text: string): void {
  for (const problem of checkFormat(text)) {
    ctx.d.warning('ERR_RULE_SUBSTITUTION', problem.message, p.source);
  }
}

/** '+=' / ':=' where udev only honours '=': warn and treat as '='. */
function plainAssign(p: RulePair, ctx: KeyContext, allowFinal: boolean): boolean {
  if (p.op === '+=' || (p.op === ':=' && !allowFinal)) {
    ctx.d.warning(
      'ERR_RULE_OPERATOR',
      `${p.key} takes '='${allowFinal ? " or ':='" : ''}; '${p.op}' treated as '='`,
      p.source,
    );
  }
  return true;
}

function scalarMatch(key: ScalarMatchKey): KeyCompiler {
  return (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (!isMatchOp(p.op)) return badOp(p, ctx, '== !=');
    return { type: 'match', key, negate: p.op === '!=', pattern: compilePattern(p.value), source: p.source };
  };
}

function parentMatch(key: ParentMatchKey): KeyCompiler {
  return (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (!isMatchOp(p.op)) return badOp(p, ctx, '== !=');
    return {
      type: 'match-parent',
      key,
      negate: p.op === '!=',
      pattern: compilePattern(p.value),
      source: p.source,
    };
  };
}

function ownership(type: 'assign-owner' | 'assign-group' | 'assign-mode'): KeyCompiler {
  return (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (isMatchOp(p.op) || p.op === '-=') return badOp(p, ctx, '= :=');
    plainAssign(p, ctx, true);
    if (
      type === 'assign-mode' &&
      !p.value.includes('$') &&
      !p.value.includes('%') &&
      !/^[0-7]+$/.test(p.value)
    ) {
      return ctx.d.error('ERR_RULE_VALUE', `invalid MODE '${p.value}': expected an octal number`, p.source);
    }
    if (p.value === '' && type !== 'assign-mode') {
      return ctx.d.error('ERR_RULE_VALUE', `${p.key} needs a value`, p.source);
    }
    checkSubst(p, ctx, p.value);
    return { type, final: p.op === ':=', value: p.value, source: p.source };
  };
}

function compileOption(p: RulePair, ctx: KeyContext): RuleToken | undefined {
  if (!noAttr(p, ctx)) return undefined;
  if (isMatchOp(p.op) || p.op === '-=') return badOp(p, ctx, '= += :=');
  const v = p.value;
  const token = (option: RuleOption): RuleToken => ({ type: 'option', option, source: p.source });
  if (v === 'string_escape=none') return token({ name: 'string_escape', value: 'none' });
  if (v === 'string_escape=replace') return token({ name: 'string_escape', value: 'replace' });
  if (v === 'db_persist') return token({ name: 'db_persist' });
  if (v === 'watch') return token({ name: 'watch' });
  if (v === 'nowatch') return token({ name: 'nowatch' });
  if (v.startsWith('static_node=')) {
    const node = v.substring('static_node='.length);
    if (node === '') return ctx.d.error('ERR_RULE_OPTION', 'static_node= needs a node name', p.source);
    return token({ name: 'static_node', value: node });
  }
  if (v.startsWith('link_priority=')) {
    const n = v.substring('link_priority='.length);
    if (!/^[-+]?\d{1,9}$/.test(n)) {
      return ctx.d.error('ERR_RULE_OPTION', `invalid link_priority '${n}': expected an integer`, p.source);
    }
    return token({ name: 'link_priority', value: Number(n) });
  }
  if (v.startsWith('log_level=')) {
    const n = v.substring('log_level='.length);
    if (n === 'reset') return token({ name: 'log_level', value: 'reset' });
    const idx = LOG_LEVELS.indexOf(n);
    if (idx >= 0) return token({ name: 'log_level', value: idx });
    if (/^[0-7]$/.test(n)) return token({ name: 'log_level', value: Number(n) });
    return ctx.d.error('ERR_RULE_OPTION', `invalid log_level '${n}'`, p.source);
  }
  ctx.d.warning('ERR_RULE_OPTION', `unknown OPTIONS value '${v}', ignored`, p.source);
  return undefined;
}

function builtinName(value: string): string {
  return value.trim().split(/\s+/)[0] ?? '';
}

function checkBuiltin(p: RulePair, ctx: KeyContext): void {
  const name = builtinName(p.value);
  if (!ctx.builtins.has(name)) {
    ctx.d.warning('ERR_RULE_BUILTIN', `unknown builtin '${name}'`, p.source);
  }
}

function compileImport(p: RulePair, ctx: KeyContext): RuleToken | undefined {
  if (p.attr === undefined || p.attr === '') {
    return ctx.d.error('ERR_RULE_ATTR', 'IMPORT needs {program|builtin|file|db|cmdline|parent}', p.source);
  }
  if (p.op === '-=') return badOp(p, ctx, '== != =');
  // udev treats IMPORT as a condition: '=' behaves as '=='.
  const negate = p.op === '!=';
  let kind: ImportKind;
  switch (p.attr) {
    case 'program':
      kind = ctx.builtins.has(builtinName(p.value)) ? 'builtin' : 'program';
      break;
    case 'builtin':
      checkBuiltin(p, ctx);
      kind = 'builtin';
      break;
    case 'file':
    case 'db':
    case 'cmdline':
    case 'parent':
      kind = p.attr;
      break;
    default:
      return ctx.d.error('ERR_RULE_ATTR', `unknown IMPORT type '${p.attr}'`, p.source);
  }
  if (p.value === '') return ctx.d.error('ERR_RULE_VALUE', `IMPORT{${p.attr}} needs a value`, p.source);
  checkSubst(p, ctx, p.value);
  return { type: 'match-import', kind, value: p.value, negate, source: p.source };
}

const KEY_TABLE: Readonly<Record<string, KeyCompiler>> = {
  ACTION: scalarMatch('ACTION'),
  DEVPATH: scalarMatch('DEVPATH'),
  KERNEL: scalarMatch('KERNEL'),
  SUBSYSTEM: scalarMatch('SUBSYSTEM'),
  DRIVER: scalarMatch('DRIVER'),
  RESULT: scalarMatch('RESULT'),
  KERNELS: parentMatch('KERNELS'),
  SUBSYSTEMS: parentMatch('SUBSYSTEMS'),
  DRIVERS: parentMatch('DRIVERS'),
  TAGS: parentMatch('TAGS'),
  NAME: (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (isMatchOp(p.op)) return scalarMatch('NAME')(p, ctx);
    if (p.op === '-=') return badOp(p, ctx, '== != = :=');
    plainAssign(p, ctx, true);
    if (p.value === '') {
      ctx.d.warning(
        'ERR_RULE_VALUE',
        'NAME="" has no effect (interfaces are never deleted), ignored',
        p.source,
      );
      return undefined;
    }
    checkSubst(p, ctx, p.value);
    return { type: 'assign-name', final: p.op === ':=', value: p.value, source: p.source };
  },
  SYMLINK: (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (isMatchOp(p.op)) return scalarMatch('SYMLINK')(p, ctx);
    checkSubst(p, ctx, p.value);
    return { type: 'assign-symlink', op: p.op as '=' | '+=' | '-=' | ':=', value: p.value, source: p.source };
  },
  TAG: (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (isMatchOp(p.op)) return scalarMatch('TAG')(p, ctx);
    let op = p.op;
    if (op === ':=') {
      ctx.d.warning('ERR_RULE_OPERATOR', "TAG takes '=', '+=' or '-='; ':=' treated as '='", p.source);
      op = '=';
    }
    checkSubst(p, ctx, p.value);
    return { type: 'assign-tag', op: op as '=' | '+=' | '-=', value: p.value, source: p.source };
  },
  OWNER: ownership('assign-owner'),
  GROUP: ownership('assign-group'),
  MODE: ownership('assign-mode'),
  SECLABEL: (p, ctx) => {
    const name = needAttr(p, ctx);
    if (name === undefined) return undefined;
    if (isMatchOp(p.op) || p.op === '-=') return badOp(p, ctx, '= += :=');
    checkSubst(p, ctx, p.value);
    return { type: 'assign-seclabel', name, value: p.value, source: p.source };
  },
  ENV: (p, ctx) => {
    const name = needAttr(p, ctx);
    if (name === undefined) return undefined;
    if (isMatchOp(p.op)) {
      return {
        type: 'match-env',
        name,
        negate: p.op === '!=',
        pattern: compilePattern(p.value),
        source: p.source,
      };
    }
    if (p.op === '-=') return badOp(p, ctx, '== != = += :=');
    if (READONLY_ENV.has(name)) {
      return ctx.d.error('ERR_RULE_ATTR', `ENV{${name}} cannot be assigned`, p.source);
    }
    if (p.op === ':=') {
      ctx.d.warning('ERR_RULE_OPERATOR', "ENV takes '=' or '+='; ':=' treated as '='", p.source);
    }
    checkSubst(p, ctx, p.value);
    return { type: 'assign-env', name, append: p.op === '+=', value: p.value, source: p.source };
  },
  CONST: (p, ctx) => {
    if (p.attr !== 'arch' && p.attr !== 'virt') {
      return ctx.d.error('ERR_RULE_ATTR', `CONST needs {arch} or {virt}, not {${p.attr ?? ''}}`, p.source);
    }
    if (!isMatchOp(p.op)) return badOp(p, ctx, '== !=');
    return {
      type: 'match-const',
      name: p.attr,
      negate: p.op === '!=',
      pattern: compilePattern(p.value),
      source: p.source,
    };
  },
  ATTR: (p, ctx) => attrLike(p, ctx, 'attr'),
  SYSCTL: (p, ctx) => attrLike(p, ctx, 'sysctl'),
  ATTRS: (p, ctx) => {
    const name = needAttr(p, ctx);
    if (name === undefined) return undefined;
    if (!isMatchOp(p.op)) return badOp(p, ctx, '== !=');
    return {
      type: 'match-parent-attr',
      name,
      negate: p.op === '!=',
      pattern: compilePattern(p.value),
      keepTrailingSpace: /\s$/.test(p.value),
      source: p.source,
    };
  },
  TEST: (p, ctx) => {
    if (!isMatchOp(p.op)) return badOp(p, ctx, '== !=');
    let mode: number | undefined;
    if (p.attr !== undefined) {
      if (!/^[0-7]{1,6}$/.test(p.attr)) {
        return ctx.d.error('ERR_RULE_ATTR', `TEST{${p.attr}}: mode must be octal`, p.source);
      }
      mode = parseInt(p.attr, 8);
    }
    if (p.value === '') return ctx.d.error('ERR_RULE_VALUE', 'TEST needs a path', p.source);
    checkSubst(p, ctx, p.value);
    const token: RuleToken = { type: 'match-test', path: p.value, negate: p.op === '!=', source: p.source };
    if (mode !== undefined) token.mode = mode;
    return token;
  },
  PROGRAM: (p, ctx) => {
    if (!noAttr(p, ctx)) return undefined;
    if (p.op === '-=') return badOp(p, ctx, '== != =');
    if (p.value.trim() === '') return ctx.d.error('ERR_RULE_VALUE', 'PROGRAM needs a command', p.source);
    checkSubst(p, ctx, p.value);
    // udev treats PROGRAM as a condition: '=' behaves as '=='.
    return { type: 'match-program', command: p.value, negate: p.op === '!=', source: p.source };
  },
  IMPORT: compileImport,
  RUN: (p, ctx) => {
    const kind = p.attr ?? 'program';
    if (kind !== 'program' && kind !== 'builtin') {
      return ctx.d.error('ERR_RULE_ATTR', `RUN takes {program} or {builtin}, not {${kind}}`, p.source);
    }
    if (isMatchOp(p.op) || p.op === '-=') return badOp(p, ctx, '= += :=');
    if (kind === 'builtin') checkBuiltin(p, ctx);
    checkSubst(p, ctx, p.value);
    return { type: 'assign-run', kind, op: p.op as '=' | '+=' | ':=', value: p.value, source: p.source };
  },
  OPTIONS: compileOption,
};

function attrLike(p: RulePair, ctx: KeyContext, which: 'attr' | 'sysctl'): RuleToken | undefined {
  const name = needAttr(p, ctx);
  if (name === undefined) return undefined;
  if (isMatchOp(p.op)) {
    const negate = p.op === '!=';
    const pattern = compilePattern(p.value);
    if (which === 'sysctl') return { type: 'match-sysctl', name, negate, pattern, source: p.source };
    return {
      type: 'match-attr',
      name,
      negate,
      pattern,
      keepTrailingSpace: /\s$/.test(p.value),
      source: p.source,
    };
  }
  if (p.op === '-=') return badOp(p, ctx, '== != =');
  plainAssign(p, ctx, false);
  checkSubst(p, ctx, p.value);
  if (which === 'sysctl') return { type: 'assign-sysctl', name, value: p.value, source: p.source };
  return { type: 'assign-attr', name, value: p.value, source: p.source };
}

interface LineDraft {
  line: CompiledLine;
  gotoSource?: RuleSourceRef;
}

function compileLine(rl: RuleLine, ctx: KeyContext): LineDraft | undefined {
  const tokens: RuleToken[] = [];
  let label: string | undefined;
  let gotoLabel: string | undefined;
  let gotoSource: RuleSourceRef | undefined;
  for (const p of rl.pairs) {
    if (p.key === 'LABEL' || p.key === 'GOTO') {
      if (!noAttr(p, ctx)) continue;
      if (p.op !== '=') {
        badOp(p, ctx, '=');
        continue;
      }
      if (p.value === '') {
        ctx.d.error('ERR_RULE_VALUE', `${p.key} needs a label name`, p.source);
        continue;
      }
      if (p.key === 'LABEL') {
        if (label !== undefined)
          ctx.d.warning('ERR_RULE_VALUE', `second LABEL="${p.value}" ignored`, p.source);
        else label = p.value;
      } else if (gotoLabel !== undefined) {
        ctx.d.warning('ERR_RULE_GOTO', `second GOTO="${p.value}" ignored`, p.source);
      } else {
        gotoLabel = p.value;
        gotoSource = p.source;
      }
      continue;
    }
    // Own keys only: 'valueOf' or '__proto__' would find Object.prototype's members.
    const compile = Object.prototype.hasOwnProperty.call(KEY_TABLE, p.key) ? KEY_TABLE[p.key] : undefined;
    if (compile === undefined) {
      ctx.d.error('ERR_RULE_KEY', `unknown key '${p.key}'`, p.source);
      continue;
    }
    const token = compile(p, ctx);
    if (token !== undefined) tokens.push(token);
  }
  if (ctx.d.broken) return undefined;
  if (tokens.length === 0 && label === undefined && gotoLabel === undefined) return undefined;
  // Stable sort: equal ranks keep their written order.
  const ranked = tokens.map((t, i) => ({ t, r: rankOf(t), i }));
  ranked.sort((a, b) => a.r - b.r || a.i - b.i);
  const line: CompiledLine = {
    source: rl.source,
    tokens: ranked.map((x) => x.t),
    hasParentTokens: tokens.some(isParentToken),
  };
  if (label !== undefined) line.label = label;
  if (gotoLabel !== undefined) line.gotoLabel = gotoLabel;
  const draft: LineDraft = { line };
  if (gotoSource !== undefined) draft.gotoSource = gotoSource;
  return draft;
}

/** Compile one file's text into lines (GOTO not yet resolved). */
function compileFile(
  source: RuleSource,
  builtins: ReadonlySet<string>,
  diagnostics: RuleDiagnostic[],
): LineDraft[] {
  const lexed = lexRules(source.text, source.file);
  // Not push(...): a spread of 100,000+ diagnostics (one per broken line) overflows the stack.
  for (const d of lexed.diagnostics) diagnostics.push(d);
  const drafts: LineDraft[] = [];
  for (const rl of lexed.lines) {
    const d = new LineDiagnostics(diagnostics);
    const draft = compileLine(rl, { d, builtins });
    if (draft !== undefined) drafts.push(draft);
  }
  // GOTO jumps forward to the next line with that LABEL in the same file, as udev does.
  for (let i = 0; i < drafts.length; i++) {
    const draft = drafts[i] as LineDraft;
    const target = draft.line.gotoLabel;
    if (target === undefined) continue;
    let found = -1;
    for (let j = i + 1; j < drafts.length; j++) {
      if ((drafts[j] as LineDraft).line.label === target) {
        found = j;
        break;
      }
    }
    if (found < 0) {
      diagnostics.push({
        severity: 'error',
        code: 'ERR_RULE_GOTO',
        message: `GOTO="${target}" has no matching LABEL later in this file; GOTO ignored`,
        source: draft.gotoSource ?? draft.line.source,
      });
      delete draft.line.gotoLabel;
    } else {
      // Relative for now; made absolute when the file's lines join the flat program.
      draft.line.gotoIndex = found;
    }
  }
  return drafts;
}

/** Compile rule sources (already in execution order) into one program. Never throws. */
export function compileRules(sources: readonly RuleSource[], options: CompileOptions = {}): CompiledRules {
  const builtins = new Set(options.builtins ?? KNOWN_BUILTINS);
  const diagnostics: RuleDiagnostic[] = [];
  const lines: CompiledLine[] = [];
  let tokenCount = 0;
  for (const source of sources) {
    const base = lines.length;
    for (const draft of compileFile(source, builtins, diagnostics)) {
      if (draft.line.gotoIndex !== undefined) draft.line.gotoIndex += base;
      tokenCount += draft.line.tokens.length;
      lines.push(draft.line);
    }
  }
  return { files: sources.map((s) => s.file), lines, diagnostics, tokenCount };
}

export interface RulesFileEntry {
  name: string;
  /** The file that wins for this name (the first directory that has it). */
  path: string;
  /** A /dev/null symlink or an empty file: the name is disabled. */
  masked: boolean;
}

/** Every *.rules name across `dirs`, sorted by name; earlier dirs mask later ones. */
export function listRulesFiles(dirs: readonly string[]): RulesFileEntry[] {
  const byName = new Map<string, RulesFileEntry>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.rules') || byName.has(name)) continue;
      const file = path.join(dir, name);
      let masked: boolean;
      try {
        const l = fs.lstatSync(file);
        if (l.isSymbolicLink() && fs.readlinkSync(file) === '/dev/null') masked = true;
        else {
          const st = fs.statSync(file);
          if (!st.isFile() && !st.isCharacterDevice()) continue;
          masked = st.isCharacterDevice() || st.size === 0;
        }
      } catch {
        continue;
      }
      byName.set(name, { name, path: file, masked });
    }
  }
  // udev sorts by plain byte order of the file name, not by locale.
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The rule files udev would read from `dirs`, in execution order, masked names left out. */
export function rulesFiles(dirs: readonly string[] = DEFAULT_RULES_DIRS): string[] {
  return listRulesFiles(dirs)
    .filter((e) => !e.masked)
    .map((e) => e.path);
}

/** Read and compile files; an unreadable file is a diagnostic, not an exception. */
export function compileRuleFiles(files: readonly string[], options: CompileOptions = {}): CompiledRules {
  const sources: RuleSource[] = [];
  const readErrors: RuleDiagnostic[] = [];
  for (const file of files) {
    try {
      sources.push({ file, text: fs.readFileSync(file, 'utf8') });
    } catch (e: unknown) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      readErrors.push({
        severity: 'error',
        code: 'ERR_RULE_FILE',
        message: `cannot read rules file (${code})`,
        source: { file, line: 1, column: 1 },
      });
    }
  }
  const compiled = compileRules(sources, options);
  compiled.diagnostics.unshift(...readErrors);
  return compiled;
}

/** Load the whole rule set from `dirs` (a reload calls this again and swaps the result in). */
export function loadRules(
  dirs: readonly string[] = DEFAULT_RULES_DIRS,
  options: CompileOptions = {},
): CompiledRules {
  return compileRuleFiles(rulesFiles(dirs), options);
}
