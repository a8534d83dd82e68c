// [Path] (systemd.path(5)) as key rows, its defaults and its load-time checks, plus triggerd's
// [X-Triggerd] keys of path units: LatchWhileRunning=, and the fanotify watch lines
// PathChangedRecursive=DIR and PathAccessed=PATTERN with HoldAccess=, HoldTimeoutSec= and
// HoldOnTimeout= (src/events/path-recursive.ts, path-held-access.ts). The watch lines may repeat
// and become spec entries after the [Path] ones; the hold settings go on every PathAccessed= entry.
// unit-keys.ts splices these rows into its table and calls finalizePathConfig() for .path units;
// this module imports nothing at run time from unit-keys.ts (which imports it), only types.
//
// Paths are checked harder than systemd does: systemd ignores a relative or unnormalized path with
// a warning and loads the unit without it; triggerd refuses the unit with file:line, because a
// path unit that silently watches less than it says loses triggers nobody notices.
import type { PathSection, PathSpecEntry, PathSpecKind, SourceRef } from './config-types';
import type { ApplyEnv, KeyContext, KeyRow, UnitConfig } from './unit-keys';
import { expandSpecifiers, parseUnitName } from './specifiers';
import {
  fail,
  ok,
  parseBoolean,
  parseEnum,
  parseMode,
  parseTimeSpan,
  parseUnsigned,
  type ParseResult,
} from './value-parsers';

/** The watch keys, in systemd.path(5)'s order. */
export const PATH_SPEC_KINDS: readonly PathSpecKind[] = [
  'PathExists',
  'PathExistsGlob',
  'PathChanged',
  'PathModified',
  'DirectoryNotEmpty',
];

/** The [X-Triggerd] watch keys (fanotify, with fallbacks described in their sources). */
export const TRIGGERD_PATH_SPEC_KINDS: readonly PathSpecKind[] = ['PathChangedRecursive', 'PathAccessed'];

/** The [X-Triggerd] hold settings of PathAccessed=. */
const HOLD_KEYS = ['HoldAccess', 'HoldTimeoutSec', 'HoldOnTimeout'] as const;
/** HoldAccess=no, HoldTimeoutSec=90s (systemd's default job timeout), HoldOnTimeout=allow. */
const HOLD_DEFAULTS = { hold: false, holdTimeoutMs: 90_000, holdOnTimeout: 'allow' } as const;

// The codes of unit-keys.ts's KEY_CODES (not imported: that module imports this one).
const BAD_VALUE = 'ERR_UNIT_BAD_VALUE';
const BAD_SETTING = 'ERR_UNIT_BAD_SETTING';
const SPECIFIER = 'ERR_UNIT_SPECIFIER';

const PATH_MAX = 4096;

export function defaultPathSection(): PathSection {
  return { specs: [], makeDirectory: false, directoryMode: 0o755, latchWhileRunning: true };
}

/** Characters that make a PathExistsGlob= component a pattern (glob(7)). */
export function hasGlobMagic(text: string): boolean {
  return /[*?[]/.test(text);
}

/**
 * An absolute, normalized path: '/' first, no '.' or '..' components, no NUL, at most PATH_MAX;
 * repeated and trailing slashes are folded as systemd's path_simplify() does.
 */
export function parseWatchPath(text: string): ParseResult<string> {
  if (text.includes('\0')) return fail('path contains a NUL byte');
  if (!text.startsWith('/')) return fail(`path is not absolute: ${JSON.stringify(text)}`);
  const parts = text.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..')
      return fail(`path is not normalized (has a "${p}" component): ${JSON.stringify(text)}`);
  }
  const simplified = `/${parts.join('/')}`;
  if (simplified.length >= PATH_MAX) return fail(`path is longer than PATH_MAX (${PATH_MAX})`);
  if (simplified === '/') return fail('the root directory cannot be watched as a path of its own');
  return ok(simplified);
}

function sourceText(s: SourceRef): string {
  return `${s.file}:${s.line}`;
}

/** A [Path] row: `parse` gets the specifier-expanded value. */
function pathRow<V>(
  key: string,
  type: string,
  parse: (text: string) => ParseResult<V>,
  set: (p: PathSection, v: V, ctx: KeyContext) => void,
  reset: (p: PathSection) => void,
  fatal: boolean,
): KeyRow {
  return {
    section: 'Path',
    key,
    type,
    apply(cfg: UnitConfig, value: string, ctx: KeyContext): void {
      const refuse = (code: string, reason: string): void => {
        ctx.report(fatal ? 'error' : 'warning', fatal ? BAD_SETTING : code, reason);
        if (fatal) cfg.badSetting = true;
      };
      if (value === '') {
        reset(cfg.path);
        cfg.explicit.delete(`Path.${key}`);
        return;
      }
      const e = ctx.expand(value);
      if (!e.ok) return refuse(SPECIFIER, e.message);
      const r = parse(e.value);
      if (!r.ok) return refuse(BAD_VALUE, r.message);
      set(cfg.path, r.value, ctx);
      cfg.explicit.add(`Path.${key}`);
    },
  };
}

/** The [Path] rows of the key table. */
export function pathRows(): KeyRow[] {
  const specRow = (kind: PathSpecKind): KeyRow =>
    pathRow(
      kind,
      kind === 'PathExistsGlob' ? 'glob' : 'path',
      parseWatchPath,
      (p, path, ctx) => p.specs.push({ kind, path, source: ctx.source } satisfies PathSpecEntry),
      // systemd.path(5): an empty assignment to any of them resets the whole list.
      (p) => (p.specs = []),
      true,
    );
  return [
    ...PATH_SPEC_KINDS.map(specRow),
    pathRow(
      'Unit',
      'unit',
      (t) => {
        const parts = parseUnitName(t);
        if (parts === undefined) return fail(`not a valid unit name: ${JSON.stringify(t)}`);
        if (parts.kind === 'template') return fail(`${t} is a template; name an instance or a plain unit`);
        if (parts.suffix === 'path') return fail(`a path unit cannot trigger another path unit (${t})`);
        return ok(t);
      },
      (p, v, ctx) => {
        p.unit = v;
        p.unitSource = ctx.source;
      },
      (p) => {
        p.unit = undefined;
        p.unitSource = undefined;
      },
      true,
    ),
    pathRow(
      'MakeDirectory',
      'boolean',
      parseBoolean,
      (p, v) => (p.makeDirectory = v),
      (p) => (p.makeDirectory = false),
      false,
    ),
    pathRow(
      'DirectoryMode',
      'mode',
      parseMode,
      (p, v) => (p.directoryMode = v),
      (p) => (p.directoryMode = 0o755),
      false,
    ),
    pathRow(
      'TriggerLimitIntervalSec',
      'timespan',
      (t) => parseTimeSpan(t),
      (p, v) => (p.triggerLimitIntervalMs = v),
      (p) => (p.triggerLimitIntervalMs = undefined),
      false,
    ),
    pathRow(
      'TriggerLimitBurst',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      (p, v) => (p.triggerLimitBurst = v),
      (p) => (p.triggerLimitBurst = undefined),
      false,
    ),
  ];
}

/** PATTERN of PathAccessed=: a watch path whose last component only may be a glob. */
export function parseAccessPattern(text: string): ParseResult<string> {
  const r = parseWatchPath(text);
  if (!r.ok) return r;
  const dir = r.value.slice(0, r.value.lastIndexOf('/'));
  if (hasGlobMagic(dir))
    return fail(
      `only the last component may be a glob (the directory is marked, not searched): ${JSON.stringify(text)}`,
    );
  return r;
}

/** The directory MakeDirectory= creates for a spec: none for PathExists*, PATTERN's for PathAccessed. */
export function directoryToMake(spec: Pick<PathSpecEntry, 'kind' | 'path'>): string | undefined {
  if (spec.kind === 'PathExists' || spec.kind === 'PathExistsGlob') return undefined;
  if (spec.kind === 'PathAccessed') return spec.path.slice(0, spec.path.lastIndexOf('/')) || undefined;
  return spec.path;
}

/**
 * The [X-Triggerd] watch lines and hold settings, in file order: an empty PathChangedRecursive= or
 * PathAccessed= drops the lines of that key before it (as an empty [Path] key resets its list).
 * Bad values refuse the unit with file:line.
 */
function triggerdPathSpecs(
  cfg: UnitConfig,
  env: ApplyEnv,
  refuse: (message: string, source: SourceRef) => void,
): PathSpecEntry[] {
  let specs: PathSpecEntry[] = [];
  const hold: Required<Pick<PathSpecEntry, 'hold' | 'holdTimeoutMs' | 'holdOnTimeout'>> = {
    ...HOLD_DEFAULTS,
  };
  const holdSources: Partial<Record<(typeof HOLD_KEYS)[number], SourceRef>> = {};
  for (const e of cfg.triggerdEntries ?? []) {
    const kind = TRIGGERD_PATH_SPEC_KINDS.find((k) => k === e.key);
    const holdKey = HOLD_KEYS.find((k) => k === e.key);
    if (kind === undefined && holdKey === undefined) continue;
    const where = `[X-Triggerd] ${e.key}=${e.value}`;
    if (e.value === '') {
      if (kind !== undefined) specs = specs.filter((s) => s.kind !== kind);
      else if (holdKey === 'HoldAccess') hold.hold = HOLD_DEFAULTS.hold;
      else if (holdKey === 'HoldTimeoutSec') hold.holdTimeoutMs = HOLD_DEFAULTS.holdTimeoutMs;
      else hold.holdOnTimeout = HOLD_DEFAULTS.holdOnTimeout;
      continue;
    }
    const x = expandSpecifiers(e.value, env.specifiers);
    if (!x.ok) {
      refuse(`${where}: ${x.message}`, e.source);
      continue;
    }
    if (kind !== undefined) {
      const r = kind === 'PathAccessed' ? parseAccessPattern(x.value) : parseWatchPath(x.value);
      if (!r.ok) refuse(`${where}: ${r.message}`, e.source);
      else specs.push({ kind, path: r.value, source: e.source });
      continue;
    }
    holdSources[holdKey as (typeof HOLD_KEYS)[number]] = e.source;
    if (holdKey === 'HoldAccess') {
      const r = parseBoolean(x.value);
      if (r.ok) hold.hold = r.value;
      else refuse(`${where}: ${r.message}`, e.source);
    } else if (holdKey === 'HoldTimeoutSec') {
      const r = parseTimeSpan(x.value);
      // "infinity" and 0 both mean: held until the job completes.
      if (r.ok) hold.holdTimeoutMs = Number.isFinite(r.value) ? r.value : 0;
      else refuse(`${where}: ${r.message}`, e.source);
    } else {
      const r = parseEnum(['allow', 'deny'] as const, x.value);
      if (r.ok) hold.holdOnTimeout = r.value;
      else refuse(`${where}: ${r.message}`, e.source);
    }
  }
  const accessed = specs.filter((s) => s.kind === 'PathAccessed');
  for (const s of accessed) Object.assign(s, hold);
  if (accessed.length === 0) {
    for (const key of HOLD_KEYS) {
      const source = holdSources[key];
      if (source !== undefined)
        env.diagnostics.push({
          severity: 'warning',
          code: BAD_VALUE,
          message: `${sourceText(source)}: [X-Triggerd] ${key}= has no effect without PathAccessed=`,
          source,
        });
    }
  }
  return specs;
}

/** The unit a path unit starts: Unit=, or the .service of its own name. */
export function pathTriggerName(pathUnitName: string, section: Pick<PathSection, 'unit'>): string {
  return section.unit ?? `${pathUnitName.replace(/\.path$/, '')}.service`;
}

/** systemd's path_verify() and triggerd's [X-Triggerd] keys; false when the unit is unusable. */
export function finalizePathConfig(
  cfg: UnitConfig,
  env: ApplyEnv,
  fragmentPath: string | undefined,
  triggerdSources: Readonly<Record<string, SourceRef>> = {},
): boolean {
  const p = cfg.path;
  const name = env.specifiers.unit.name;
  const refuse = (message: string, source: SourceRef | undefined): void => {
    env.diagnostics.push({
      severity: 'error',
      code: BAD_SETTING,
      message: source !== undefined ? `${sourceText(source)}: ${message}` : message,
      source,
    });
    cfg.badSetting = true;
  };
  const header =
    cfg.serviceSource ?? (fragmentPath !== undefined ? { file: fragmentPath, line: 1 } : undefined);
  p.specs.push(...triggerdPathSpecs(cfg, env, refuse));
  if (p.specs.length === 0) {
    refuse(
      'path unit has no path setting (PathExists=, PathExistsGlob=, PathChanged=, PathModified=, ' +
        'DirectoryNotEmpty=, or [X-Triggerd] PathChangedRecursive=, PathAccessed=), refusing',
      header,
    );
  }
  for (const s of p.specs) {
    if (s.kind !== 'PathExistsGlob' && s.kind !== 'PathAccessed' && hasGlobMagic(s.path))
      env.diagnostics.push({
        severity: 'warning',
        code: BAD_VALUE,
        message: `${sourceText(s.source)}: ${s.kind}=${s.path} contains glob characters, which ${s.kind}= takes literally (PathExistsGlob= matches patterns)`,
        source: s.source,
      });
  }
  const target = pathTriggerName(name, p);
  if (target === name) refuse(`Unit=${target} names the path unit itself, refusing`, p.unitSource ?? header);
  const latch = cfg.triggerd.LatchWhileRunning;
  if (latch !== undefined) {
    const r = parseBoolean(latch);
    const source = triggerdSources.LatchWhileRunning ?? header;
    if (r.ok) p.latchWhileRunning = r.value;
    else refuse(`[X-Triggerd] LatchWhileRunning=${latch}: ${r.message}`, source);
  }
  // The path unit orders itself before what it starts (systemd adds the same edge).
  if (!cfg.unit.dependencies.Before.includes(target)) cfg.unit.dependencies.Before.push(target);
  return !cfg.badSetting;
}
