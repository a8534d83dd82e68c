// Finds a unit's files in the unit search path and turns them into a LoadedUnitFile, the way
// systemd.unit(5) describes it: earlier directories win; a symlink to another unit name in the
// search path is an alias, a symlink to /dev/null (or an empty file) masks, a symlink elsewhere is
// a linked unit file; foo@bar.service falls back to foo@.service; drop-ins come from NAME.d/,
// the template's, the dash prefixes' (a-b-c → a-b-, a-) and the type's (service.d/) *.conf, in
// every search directory, ordered by file name, a more specific or earlier file hiding a same-named
// one. NAME.wants/, .requires/ and .upholds/ add dependencies.
//
// Directory listings and file contents are read once per loader (call refresh() after the files
// change), so loading a whole tree costs one readdir per directory plus one read per file, and
// loading another instance of a template costs no I/O.
import fs = require('node:fs');
import nodePath = require('node:path');
import { parseAutomountConfig } from './automount-config';
import { addParentMountRequirements, parseMountConfig } from '../mounts/mount-config';
import type {
  Diagnostic,
  LoadedUnitFile,
  PathSection,
  SocketSection,
  SourceRef,
  TimerSection,
} from './config-types';
import { pathTriggerName } from './path-config';
import { timerTriggerName } from '../timers/timer-config';
import {
  defaultSpecifierHost,
  instanceName,
  parseUnitName,
  templateOf,
  type ManagerMode,
  type SpecifierHost,
  type UnitNameParts,
} from './specifiers';
import {
  applySection,
  createUnitConfig,
  defaultInstallSection,
  defaultUnitSection,
  finalizeUnitConfig,
  KEY_CODES,
  socketServiceName,
  socketTemplateName,
  TYPE_SECTIONS,
  type ApplyEnv,
} from './unit-keys';
import { parseUnitSyntax, type UnitSyntax } from './unit-syntax';

/** The unit search path: directories, highest precedence first. */
export type UnitPaths = readonly string[];

/** triggerd's own unit search path; earlier directories win. */
export const DEFAULT_UNIT_PATHS: UnitPaths = [
  '/etc/triggerd/units',
  '/run/triggerd/units',
  '/usr/lib/triggerd/units',
];

/** Stable diagnostic codes of the loader. */
export const LOADER_CODES = {
  notFound: 'ERR_UNIT_NOT_FOUND',
  name: 'ERR_UNIT_NAME',
  read: 'ERR_UNIT_READ',
  alias: 'ERR_UNIT_ALIAS',
} as const;

export type UnitFileState =
  'enabled' | 'disabled' | 'static' | 'indirect' | 'masked' | 'alias' | 'linked' | 'bad';

export interface UnitFileEntry {
  name: string;
  path: string;
  state: UnitFileState;
}

export interface UnitLoaderOptions {
  /** System or per-user manager: decides %t, %S, ... (default 'system'). */
  mode?: ManagerMode;
  /** Host facts for specifiers (tests pass a fixed one). */
  host?: SpecifierHost;
}

type EntryKind = 'file' | 'dir' | 'symlink' | 'other';

/** One pass's view of the unit directories. */
class DirCache {
  private readonly listings = new Map<string, Map<string, EntryKind> | null>();
  private readonly links = new Map<string, string | null>();
  private readonly reals = new Map<string, string>();
  /** Fragment and drop-in bytes, so template instances (Accept=yes: one per connection) cost no I/O. */
  private readonly contents = new Map<string, Buffer>();

  readFile(path: string): Buffer {
    let b = this.contents.get(path);
    if (b === undefined) {
      b = fs.readFileSync(path);
      this.contents.set(path, b);
    }
    return b;
  }

  list(dir: string): Map<string, EntryKind> | null {
    let l = this.listings.get(dir);
    if (l !== undefined) return l;
    try {
      l = new Map();
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        l.set(
          d.name,
          d.isSymbolicLink() ? 'symlink' : d.isDirectory() ? 'dir' : d.isFile() ? 'file' : 'other',
        );
      }
    } catch {
      l = null;
    }
    this.listings.set(dir, l);
    return l;
  }

  kind(dir: string, name: string): EntryKind | undefined {
    return this.list(dir)?.get(name);
  }

  /** Whether dir/name is a directory (following a symlink). */
  isDir(dir: string, name: string): boolean {
    const k = this.kind(dir, name);
    if (k === 'dir') return true;
    if (k !== 'symlink') return false;
    try {
      return fs.statSync(nodePath.join(dir, name)).isDirectory();
    } catch {
      return false;
    }
  }

  readlink(path: string): string | null {
    let t = this.links.get(path);
    if (t === undefined) {
      try {
        t = fs.readlinkSync(path);
      } catch {
        t = null;
      }
      this.links.set(path, t);
    }
    return t;
  }

  realpath(path: string): string {
    let r = this.reals.get(path);
    if (r === undefined) {
      try {
        r = fs.realpathSync(path);
      } catch {
        r = path;
      }
      this.reals.set(path, r);
    }
    return r;
  }
}

/** What one name resolves to in the search path. */
type Lookup =
  | { kind: 'none' }
  | { kind: 'masked'; path: string }
  | { kind: 'alias'; path: string; target: string }
  | { kind: 'file'; path: string; linked: boolean };

interface FileContent {
  path: string;
  bytes: Buffer;
}

const MAX_ALIAS_HOPS = 16;

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function emptyResult(
  name: string,
  parts: UnitNameParts | undefined,
  loadState: LoadedUnitFile['loadState'],
): LoadedUnitFile {
  const suffix = parts?.suffix ?? '';
  return {
    name,
    aliases: [],
    loadState,
    dropInPaths: [],
    instance: parts?.instance ?? '',
    unit: defaultUnitSection(suffix),
    install: defaultInstallSection(),
    triggerd: {},
    raw: new Map(),
    diagnostics: [],
  };
}

/** The drop-in base names for one unit name: itself, its template, its dash prefixes. */
function dropInNames(parts: UnitNameParts, out: string[]): void {
  const add = (n: string): void => {
    if (!out.includes(n)) out.push(n);
  };
  add(parts.name);
  if (parts.kind === 'instance') {
    const t = parseUnitName(templateOf(parts));
    if (t !== undefined) dropInNames(t, out);
  }
  // "a-b-c.service" → "a-b-.service" → "a-.service" (systemd.unit(5)).
  let prefix = parts.prefix;
  for (;;) {
    const trimmed = prefix.endsWith('-') ? prefix.slice(0, -1) : prefix;
    const dash = trimmed.lastIndexOf('-');
    if (dash <= 0) break;
    prefix = trimmed.slice(0, dash + 1);
    add(`${prefix}.${parts.suffix}`);
  }
}

export class UnitLoader {
  readonly paths: readonly string[];
  private readonly host: SpecifierHost;
  private cache = new DirCache();
  private unitDirs: Set<string> | undefined;
  private aliasIndex: Map<string, string[]> | undefined;
  private wantedIndex: Set<string> | undefined;

  constructor(paths: UnitPaths = DEFAULT_UNIT_PATHS, options: UnitLoaderOptions = {}) {
    this.paths = paths.map((p) => nodePath.resolve(p));
    this.host = options.host ?? defaultSpecifierHost(options.mode ?? 'system');
  }

  /** Forget directory listings (after files were added, removed or relinked). */
  refresh(): void {
    this.cache = new DirCache();
    this.unitDirs = undefined;
    this.aliasIndex = undefined;
    this.wantedIndex = undefined;
  }

  /** Load one unit by name. Never throws; problems are in loadState and diagnostics. */
  load(name: string): LoadedUnitFile {
    const parts = parseUnitName(name);
    if (parts === undefined) {
      const r = emptyResult(name, undefined, 'error');
      r.diagnostics.push({
        severity: 'error',
        code: LOADER_CODES.name,
        message: `${JSON.stringify(name)} is not a valid unit name`,
      });
      return r;
    }
    const seen: string[] = [];
    let current = parts;
    for (let hop = 0; hop <= MAX_ALIAS_HOPS; hop++) {
      if (seen.includes(current.name)) break;
      seen.push(current.name);
      let found = this.lookup(current.name);
      let viaTemplate = false;
      if (found.kind === 'none' && current.kind === 'instance') {
        found = this.lookup(templateOf(current));
        viaTemplate = true;
      }
      if (found.kind === 'none') {
        const r = emptyResult(current.name, current, 'not-found');
        r.aliases = seen.filter((n) => n !== current.name);
        r.diagnostics.push({
          severity: 'error',
          code: LOADER_CODES.notFound,
          message: `unit ${current.name} not found in ${this.paths.join(':')}`,
        });
        return r;
      }
      if (found.kind === 'masked') {
        const r = emptyResult(current.name, current, 'masked');
        r.aliases = seen.filter((n) => n !== current.name);
        return r;
      }
      if (found.kind === 'alias') {
        const next = this.aliasTarget(
          viaTemplate ? parseUnitName(templateOf(current)) : current,
          current,
          found.target,
        );
        if (typeof next === 'string') {
          const r = emptyResult(current.name, current, 'error');
          r.diagnostics.push({
            severity: 'error',
            code: LOADER_CODES.alias,
            message: `${found.path}: ${next}`,
            source: { file: found.path, line: 1 },
          });
          return r;
        }
        current = next;
        continue;
      }
      const aliases = seen.filter((n) => n !== current.name);
      return this.build(current, found.path, aliases);
    }
    const r = emptyResult(name, parts, 'error');
    r.diagnostics.push({
      severity: 'error',
      code: LOADER_CODES.alias,
      message: `alias loop or chain too long: ${seen.join(' → ')}`,
    });
    return r;
  }

  /**
   * Whether any of a loaded unit's files contains a '%' (a specifier, or an escaped one). Without
   * one, every instance of a template parses to the same settings, and one parse can serve all.
   */
  mentionsSpecifiers(unit: LoadedUnitFile): boolean {
    const files = [...(unit.fragmentPath !== undefined ? [unit.fragmentPath] : []), ...unit.dropInPaths];
    return files.some((f) => {
      try {
        return this.cache.readFile(f).includes(0x25);
      } catch {
        return true;
      }
    });
  }

  /** Load every unit file in the path (not templates, not alias names). */
  loadAll(): LoadedUnitFile[] {
    const out: LoadedUnitFile[] = [];
    for (const { name, dir, symlink } of this.unitFileNames()) {
      if (parseUnitName(name)?.kind === 'template') continue;
      if (symlink && this.classifyLink(dir, name).kind === 'alias') continue;
      out.push(this.load(name));
    }
    return out;
  }

  /**
   * Every loadable unit name the path defines: unit files and alias symlinks, not templates. An
   * alias loads as its target (the result's `name` differs from the one asked for).
   */
  unitNames(): string[] {
    return this.unitFileNames()
      .map((f) => f.name)
      .filter((n) => parseUnitName(n)?.kind !== 'template');
  }

  /**
   * The edges `enable` made: NAME.wants/, .requires/ and .upholds/ entries in every directory of
   * the path. Entries of a template's directory apply per instance and come with load() instead.
   */
  installEdges(): { from: string; kind: 'Wants' | 'Requires' | 'Upholds'; to: string }[] {
    const out: { from: string; kind: 'Wants' | 'Requires' | 'Upholds'; to: string }[] = [];
    const kinds = { wants: 'Wants', requires: 'Requires', upholds: 'Upholds' } as const;
    for (const dir of this.paths) {
      const listing = this.cache.list(dir);
      if (listing === null) continue;
      for (const entry of [...listing.keys()].sort(byName)) {
        const m = /^(.+)\.(wants|requires|upholds)$/.exec(entry);
        if (m === null || !this.cache.isDir(dir, entry)) continue;
        const from = parseUnitName(m[1]);
        if (from === undefined || from.kind === 'template') continue;
        const kind = kinds[m[2] as keyof typeof kinds];
        for (const to of [...(this.cache.list(nodePath.join(dir, entry))?.keys() ?? [])].sort(byName)) {
          const t = parseUnitName(to);
          if (t === undefined) continue;
          // A template linked from an instance's directory gets that instance.
          const target =
            t.kind === 'template'
              ? from.kind === 'instance'
                ? instanceName(t, from.instance ?? '')
                : undefined
              : to;
          if (target === undefined) continue;
          if (!out.some((e) => e.from === from.name && e.kind === kind && e.to === target)) {
            out.push({ from: from.name, kind, to: target });
          }
        }
      }
    }
    return out;
  }

  /** Unit file names in the search path, first directory wins, sorted per directory. */
  private unitFileNames(): { name: string; dir: string; symlink: boolean }[] {
    const out: { name: string; dir: string; symlink: boolean }[] = [];
    const seen = new Set<string>();
    for (const dir of this.paths) {
      const listing = this.cache.list(dir);
      if (listing === null) continue;
      for (const name of [...listing.keys()].sort(byName)) {
        const kind = listing.get(name);
        if (seen.has(name) || kind === 'dir' || kind === 'other' || parseUnitName(name) === undefined)
          continue;
        seen.add(name);
        out.push({ name, dir, symlink: kind === 'symlink' });
      }
    }
    return out;
  }

  /** Every unit file name in the search path (first directory wins), with its enablement state. */
  listUnitFiles(): UnitFileEntry[] {
    return this.unitFileNames().map(({ name, dir, symlink }) => {
      const path = nodePath.join(dir, name);
      return { name, path, state: this.fileState(name, path, symlink) };
    });
  }

  private fileState(name: string, path: string, symlink: boolean): UnitFileState {
    if (symlink) {
      const r = this.classifyLink(nodePath.dirname(path), name);
      if (r.kind === 'masked') return 'masked';
      if (r.kind === 'alias') return 'alias';
    }
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch {
      return 'bad';
    }
    if (bytes.length === 0) return 'masked';
    const syntax = parseUnitSyntax(bytes, path);
    if (syntax.fatal) return 'bad';
    const parts = parseUnitName(name);
    if (parts === undefined) return 'bad';
    const cfg = createUnitConfig(parts.suffix);
    const env: ApplyEnv = {
      specifiers: { unit: parts, fragmentPath: path, host: this.host },
      diagnostics: [],
    };
    for (const s of syntax.sections) if (s.name === 'Install') applySection(cfg, 'Install', s.entries, env);
    const i = cfg.install;
    const base = symlink ? 'linked' : undefined;
    if (i.wantedBy.length + i.requiredBy.length + i.upheldBy.length + i.alias.length === 0) {
      if (base !== undefined) return base;
      return i.also.length > 0 ? 'indirect' : 'static';
    }
    const wanted = this.wanted();
    const enabled =
      wanted.has(name) ||
      (parts.kind === 'template' &&
        [...wanted].some((w) => {
          const wp = parseUnitName(w);
          return (
            wp !== undefined &&
            wp.kind !== 'plain' &&
            wp.prefix === parts.prefix &&
            wp.suffix === parts.suffix
          );
        })) ||
      i.alias.some((a) => this.lookup(a).kind === 'alias');
    return enabled ? 'enabled' : (base ?? 'disabled');
  }

  // -------------------------------------------------------------------------------------------

  private isUnitDir(dir: string): boolean {
    if (this.unitDirs === undefined) {
      this.unitDirs = new Set();
      for (const p of this.paths) {
        this.unitDirs.add(p);
        this.unitDirs.add(this.cache.realpath(p));
      }
    }
    return this.unitDirs.has(dir) || this.unitDirs.has(this.cache.realpath(dir));
  }

  /** A symlink in a unit directory: masked, alias (to a unit name in the path) or linked file. */
  private classifyLink(dir: string, name: string): Lookup {
    const path = nodePath.join(dir, name);
    const target = this.cache.readlink(path);
    if (target === null) return { kind: 'file', path, linked: true };
    const resolved = nodePath.resolve(dir, target);
    if (resolved === '/dev/null') return { kind: 'masked', path };
    const base = nodePath.basename(resolved);
    // foo@x.service → foo@.service is the template providing this instance, not an alias.
    const parts = parseUnitName(name);
    const ownTemplate = parts?.kind === 'instance' && base === templateOf(parts);
    if (
      base !== name &&
      !ownTemplate &&
      parseUnitName(base) !== undefined &&
      this.isUnitDir(nodePath.dirname(resolved))
    ) {
      return { kind: 'alias', path, target: base };
    }
    return { kind: 'file', path, linked: true };
  }

  private lookup(name: string): Lookup {
    for (const dir of this.paths) {
      const kind = this.cache.kind(dir, name);
      if (kind === undefined || kind === 'dir') continue;
      if (kind === 'symlink') return this.classifyLink(dir, name);
      return { kind: 'file', path: nodePath.join(dir, name), linked: false };
    }
    return { kind: 'none' };
  }

  /** Where an alias symlink leads, with systemd.unit(5)'s rules on aliases; a string is an error. */
  private aliasTarget(
    source: UnitNameParts | undefined,
    requested: UnitNameParts,
    target: string,
  ): UnitNameParts | string {
    const t = parseUnitName(target);
    if (source === undefined || t === undefined) return `alias target ${target} is not a unit name`;
    if (t.suffix !== source.suffix) return `alias ${source.name} → ${target} changes the unit type`;
    if (source.kind === 'template' && t.kind !== 'template') {
      return `alias ${source.name} → ${target}: a template can only alias a template`;
    }
    if (t.kind === 'template') {
      // foo@.service → bar@.service aliases every instance; foo@x.service → bar@.service is bar@x.
      if (requested.kind !== 'instance' && !(source.kind === 'template' && requested.kind === 'template')) {
        return `alias ${source.name} → ${target}: only templates and instances may point to a template`;
      }
      const inst = requested.instance ?? '';
      const name = inst === '' ? t.name : instanceName(t, inst);
      return parseUnitName(name) ?? `bad alias target ${name}`;
    }
    if (t.kind === 'instance') {
      if (source.kind === 'plain')
        return `alias ${source.name} → ${target}: a plain unit cannot alias an instance`;
      if (source.kind === 'instance' && source.instance !== t.instance) {
        return `alias ${source.name} → ${target} changes the instance`;
      }
      return t;
    }
    if (source.kind !== 'plain')
      return `alias ${source.name} → ${target}: an instance or template cannot alias a plain unit`;
    return t;
  }

  /** Symlink aliases in the path: target name → names that point at it. */
  private aliases(): Map<string, string[]> {
    if (this.aliasIndex !== undefined) return this.aliasIndex;
    const index = new Map<string, string[]>();
    const seen = new Set<string>();
    for (const dir of this.paths) {
      const listing = this.cache.list(dir);
      if (listing === null) continue;
      for (const [name, kind] of listing) {
        if (seen.has(name)) continue;
        seen.add(name);
        if (kind !== 'symlink' || parseUnitName(name) === undefined) continue;
        const l = this.classifyLink(dir, name);
        if (l.kind !== 'alias') continue;
        const list = index.get(l.target) ?? [];
        list.push(name);
        index.set(l.target, list);
      }
    }
    this.aliasIndex = index;
    return index;
  }

  /** Names listed in any .wants/, .requires/ or .upholds/ directory. */
  private wanted(): Set<string> {
    if (this.wantedIndex !== undefined) return this.wantedIndex;
    const out = new Set<string>();
    for (const dir of this.paths) {
      const listing = this.cache.list(dir);
      if (listing === null) continue;
      for (const name of listing.keys()) {
        if (!/\.(wants|requires|upholds)$/.test(name) || !this.cache.isDir(dir, name)) continue;
        for (const n of this.cache.list(nodePath.join(dir, name))?.keys() ?? []) out.add(n);
      }
    }
    this.wantedIndex = out;
    return out;
  }

  /** All other names of a unit: symlinks to it, and for instances the instances of template aliases. */
  private collectAliases(parts: UnitNameParts, seen: string[]): string[] {
    const out = [...seen];
    const index = this.aliases();
    const add = (n: string): void => {
      if (n !== parts.name && !out.includes(n)) out.push(n);
    };
    for (const a of index.get(parts.name) ?? []) add(a);
    if (parts.kind === 'instance') {
      for (const a of index.get(templateOf(parts)) ?? []) {
        const ap = parseUnitName(a);
        if (ap?.kind === 'template') add(instanceName(ap, parts.instance ?? ''));
      }
    }
    return out;
  }

  private dropInFiles(names: string[], suffix: string): string[] {
    // Directory order = precedence: more specific names first, then earlier search dirs.
    const dirs: string[] = [];
    for (const n of names) {
      for (const d of this.paths) if (this.cache.isDir(d, `${n}.d`)) dirs.push(nodePath.join(d, `${n}.d`));
    }
    for (const d of this.paths)
      if (this.cache.isDir(d, `${suffix}.d`)) dirs.push(nodePath.join(d, `${suffix}.d`));
    const chosen = new Map<string, string | null>();
    for (const dir of dirs) {
      const listing = this.cache.list(dir);
      if (listing === null) continue;
      for (const [file, kind] of listing) {
        if (!file.endsWith('.conf') || chosen.has(file)) continue;
        const path = nodePath.join(dir, file);
        // A drop-in linked to /dev/null hides the same-named ones of lower precedence.
        const masked =
          kind === 'symlink' && nodePath.resolve(dir, this.cache.readlink(path) ?? '') === '/dev/null';
        chosen.set(file, masked || kind === 'dir' ? null : path);
      }
    }
    return [...chosen.entries()]
      .filter((e): e is [string, string] => e[1] !== null)
      .sort((a, b) => byName(a[0], b[0]))
      .map((e) => e[1]);
  }

  /** Dependencies from NAME.wants/, NAME.requires/, NAME.upholds/ directories. */
  private linkDependencies(
    names: string[],
    parts: UnitNameParts,
  ): { kind: 'Wants' | 'Requires' | 'Upholds'; name: string }[] {
    const out: { kind: 'Wants' | 'Requires' | 'Upholds'; name: string }[] = [];
    const kinds = [
      ['wants', 'Wants'],
      ['requires', 'Requires'],
      ['upholds', 'Upholds'],
    ] as const;
    for (const n of names) {
      for (const [dirSuffix, kind] of kinds) {
        for (const d of this.paths) {
          if (!this.cache.isDir(d, `${n}.${dirSuffix}`)) continue;
          const listing = this.cache.list(nodePath.join(d, `${n}.${dirSuffix}`));
          for (const entry of [...(listing?.keys() ?? [])].sort(byName)) {
            const e = parseUnitName(entry);
            if (e === undefined) continue;
            // A template in a template's .wants/ gets this unit's instance (systemd.unit(5)).
            let dep = entry;
            if (e.kind === 'template') {
              if (parts.kind !== 'instance') continue;
              dep = instanceName(e, parts.instance ?? '');
            }
            if (!out.some((o) => o.kind === kind && o.name === dep)) out.push({ kind, name: dep });
          }
        }
      }
    }
    return out;
  }

  private build(parts: UnitNameParts, fragmentPath: string, seen: string[]): LoadedUnitFile {
    const aliases = this.collectAliases(parts, seen);
    const names: string[] = [];
    dropInNames(parts, names);
    for (const a of aliases) {
      const ap = parseUnitName(a);
      if (ap !== undefined) dropInNames(ap, names);
    }
    const dropIns: FileContent[] = [];
    const diagnostics: Diagnostic[] = [];
    let readError = false;
    const read = (path: string): Buffer | undefined => {
      try {
        return this.cache.readFile(path);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        diagnostics.push({
          severity: 'error',
          code: LOADER_CODES.read,
          message: `${path}: cannot read: ${err.code ?? err.message}`,
          source: { file: path, line: 1 },
        });
        readError = true;
        return undefined;
      }
    };
    const fragment = read(fragmentPath);
    if (fragment !== undefined && fragment.length === 0) {
      const r = emptyResult(parts.name, parts, 'masked');
      r.aliases = aliases;
      return r;
    }
    for (const p of this.dropInFiles(names, parts.suffix)) {
      const bytes = read(p);
      if (bytes !== undefined) dropIns.push({ path: p, bytes });
    }
    const result = assemble(
      parts,
      fragment === undefined ? undefined : { path: fragmentPath, bytes: fragment },
      dropIns,
      this.host,
      diagnostics,
    );
    result.aliases = aliases;
    for (const dep of this.linkDependencies(
      [parts.name, ...aliases, ...(parts.kind === 'instance' ? [templateOf(parts)] : [])],
      parts,
    )) {
      const list = result.unit.dependencies[dep.kind];
      if (!list.includes(dep.name)) list.push(dep.name);
    }
    if (readError) result.loadState = 'error';
    if (result.socket !== undefined && result.loadState === 'loaded') this.checkSocketService(result);
    if (result.mount !== undefined && result.loadState === 'loaded')
      addParentMountRequirements(result.mount.where, result.unit, (n) => this.lookup(n).kind !== 'none');
    if (result.path !== undefined && result.loadState === 'loaded') this.checkPathTarget(result);
    if (result.timer !== undefined && result.loadState === 'loaded') this.checkTimerTarget(result);
    return result;
  }

  /** A path unit whose unit to trigger does not exist loads, but says so (its start fails). */
  private checkPathTarget(unit: LoadedUnitFile): void {
    const p = unit.path as PathSection;
    const target = pathTriggerName(unit.name, p);
    if (this.lookup(target).kind !== 'none') return;
    const parts = parseUnitName(target);
    if (parts !== undefined && parts.kind === 'instance' && this.lookup(templateOf(parts)).kind !== 'none')
      return;
    const source =
      p.unitSource ?? (unit.fragmentPath !== undefined ? { file: unit.fragmentPath, line: 1 } : undefined);
    unit.diagnostics.push({
      severity: 'warning',
      code: KEY_CODES.badSetting,
      message:
        `${source !== undefined ? `${source.file}:${source.line}: ` : ''}${unit.name} triggers ${target}, ` +
        `which does not exist in ${this.paths.join(':')}; starting ${unit.name} will fail until it does` +
        (p.unit === undefined ? ' (or set Unit=)' : ''),
      source,
    });
  }

  /** A timer whose unit to trigger does not exist loads, but says so (its start fails). */
  private checkTimerTarget(unit: LoadedUnitFile): void {
    const t = unit.timer as TimerSection;
    const target = timerTriggerName(unit.name, t);
    if (this.lookup(target).kind !== 'none') return;
    const parts = parseUnitName(target);
    if (parts !== undefined && parts.kind === 'instance' && this.lookup(templateOf(parts)).kind !== 'none')
      return;
    const source =
      t.unitSource ?? (unit.fragmentPath !== undefined ? { file: unit.fragmentPath, line: 1 } : undefined);
    unit.diagnostics.push({
      severity: 'warning',
      code: KEY_CODES.badSetting,
      message:
        `${source !== undefined ? `${source.file}:${source.line}: ` : ''}${unit.name} triggers ${target}, ` +
        `which does not exist in ${this.paths.join(':')}; starting ${unit.name} will fail until it does` +
        (t.unit === undefined ? ' (or set Unit=)' : ''),
      source,
    });
  }

  /**
   * The service a socket unit starts must be loadable as what the socket needs: a template
   * foo@.service for Accept=yes (systemd only fails at the first connection, with a cryptic
   * error), a plain service for Accept=no.
   */
  private checkSocketService(unit: LoadedUnitFile): void {
    const s = unit.socket as SocketSection;
    const at = (source: SourceRef | undefined): string =>
      source !== undefined ? `${source.file}:${source.line}: ` : '';
    if (s.accept) {
      const template = socketTemplateName(unit.name);
      if (this.lookup(template).kind !== 'none') return;
      const plain = socketServiceName(unit.name, { ...s, service: undefined });
      const source =
        s.acceptSource ??
        (unit.fragmentPath !== undefined ? { file: unit.fragmentPath, line: 1 } : undefined);
      const found = this.lookup(plain).kind !== 'none';
      unit.diagnostics.push({
        severity: 'error',
        code: KEY_CODES.badSetting,
        message:
          `${at(source)}Accept=yes starts one instance of the template ${template} per connection, but ` +
          (found
            ? `${plain} is not a template: rename it to ${template} (and read the connection from stdin/stdout), or set Accept=no to hand the listening socket to ${plain}`
            : `there is no ${template} in ${this.paths.join(':')}: create it, or set Accept=no`),
        source,
      });
      unit.loadState = 'bad-setting';
      return;
    }
    const service = socketServiceName(unit.name, s);
    if (this.lookup(service).kind !== 'none') return;
    const parts = parseUnitName(service);
    if (parts !== undefined && parts.kind === 'instance' && this.lookup(templateOf(parts)).kind !== 'none')
      return;
    const template = socketTemplateName(unit.name);
    const hasTemplate = s.service === undefined && this.lookup(template).kind !== 'none';
    unit.diagnostics.push({
      severity: 'warning',
      code: KEY_CODES.badSetting,
      message:
        `${unit.fragmentPath ?? unit.name}: ${unit.name} hands its sockets to ${service}, which does not exist` +
        (hasTemplate
          ? ` (there is a template ${template}: set Accept=yes for one instance per connection)`
          : ''),
      source: unit.fragmentPath !== undefined ? { file: unit.fragmentPath, line: 1 } : undefined,
    });
  }
}

/**
 * Turn a fragment and its drop-ins (already chosen and ordered) into a LoadedUnitFile. Shared by
 * the loader and parseUnitText().
 */
function assemble(
  parts: UnitNameParts,
  fragment: FileContent | undefined,
  dropIns: FileContent[],
  host: SpecifierHost,
  diagnostics: Diagnostic[],
): LoadedUnitFile {
  const cfg = createUnitConfig(parts.suffix);
  const env: ApplyEnv = { specifiers: { unit: parts, fragmentPath: fragment?.path, host }, diagnostics };
  const raw: LoadedUnitFile['raw'] = new Map();
  const ownSection = TYPE_SECTIONS[parts.suffix];
  const knownSections = new Set(Object.values(TYPE_SECTIONS).filter((s): s is string => s !== undefined));
  let fatal = false;
  const files = fragment === undefined ? dropIns : [fragment, ...dropIns];
  for (const file of files) {
    const syntax: UnitSyntax = parseUnitSyntax(file.bytes, file.path);
    // Loops, not push(...): a spread of 100,000+ items overflows the stack (a large file can have that many).
    for (const d of syntax.diagnostics) diagnostics.push(d);
    fatal ||= syntax.fatal;
    for (const section of syntax.sections) {
      if (section.name === ownSection && cfg.serviceSource === undefined && file === fragment) {
        cfg.serviceSource = section.source;
      }
      if (applySection(cfg, section.name, section.entries, env)) continue;
      if (!section.name.startsWith('X-') && section.name !== ownSection) {
        diagnostics.push(
          sectionWarning(section.source, section.name, knownSections.has(section.name), parts.suffix),
        );
      }
      const list = raw.get(section.name) ?? [];
      for (const e of section.entries) list.push(e);
      raw.set(section.name, list);
    }
  }
  const usable = finalizeUnitConfig(cfg, env, fragment?.path);
  const automount =
    parts.suffix === 'automount'
      ? parseAutomountConfig({
          name: parts.name,
          entries: raw.get('Automount') ?? [],
          triggerd: cfg.triggerd,
          specifiers: env.specifiers,
          unit: cfg.unit,
          fragmentPath: fragment?.path,
          diagnostics,
        })
      : undefined;
  const mount =
    parts.suffix === 'mount'
      ? parseMountConfig({
          name: parts.name,
          entries: raw.get('Mount') ?? [],
          specifiers: env.specifiers,
          unit: cfg.unit,
          fragmentPath: fragment?.path,
          diagnostics,
        })
      : undefined;
  let loadState: LoadedUnitFile['loadState'] = 'loaded';
  if (fatal) loadState = 'error';
  else if (!usable || automount?.usable === false || mount?.usable === false) loadState = 'bad-setting';
  return {
    name: parts.name,
    aliases: [],
    loadState,
    fragmentPath: fragment?.path,
    dropInPaths: dropIns.map((d) => d.path),
    instance: parts.instance ?? '',
    unit: cfg.unit,
    install: cfg.install,
    service: parts.suffix === 'service' ? cfg.service : undefined,
    socket: parts.suffix === 'socket' ? cfg.socket : undefined,
    path: parts.suffix === 'path' ? cfg.path : undefined,
    timer: parts.suffix === 'timer' ? cfg.timer : undefined,
    automount: automount?.section,
    mount: mount?.section,
    triggerd: cfg.triggerd,
    ignoredSettings: cfg.ignoredSettings ?? [],
    raw,
    diagnostics,
  };
}

function sectionWarning(source: SourceRef, name: string, knownType: boolean, suffix: string): Diagnostic {
  const why = knownType
    ? `section [${name}] does not belong in a .${suffix} unit`
    : `unknown section [${name}]`;
  return {
    severity: 'warning',
    code: KEY_CODES.unknownSection,
    message: `${source.file}:${source.line}: ${why}, ignored`,
    source,
  };
}

export interface ParseUnitTextOptions {
  /** Drop-ins to apply after the text, in order. */
  dropIns?: { path: string; text: string | Buffer }[];
  host?: SpecifierHost;
  mode?: ManagerMode;
}

/**
 * Parse one unit's text as if it were its fragment file at `path` (no search path, no symlinks).
 * For tests and for `triggerctl verify` of a file outside the search path.
 */
export function parseUnitText(
  name: string,
  text: string | Buffer,
  path: string,
  options: ParseUnitTextOptions = {},
): LoadedUnitFile {
  const parts = parseUnitName(name);
  if (parts === undefined) {
    const r = emptyResult(name, undefined, 'error');
    r.diagnostics.push({
      severity: 'error',
      code: LOADER_CODES.name,
      message: `${JSON.stringify(name)} is not a valid unit name`,
    });
    return r;
  }
  const toBytes = (t: string | Buffer): Buffer => (typeof t === 'string' ? Buffer.from(t, 'utf8') : t);
  const host = options.host ?? defaultSpecifierHost(options.mode ?? 'system');
  const dropIns = (options.dropIns ?? []).map((d) => ({ path: d.path, bytes: toBytes(d.text) }));
  const bytes = toBytes(text);
  if (bytes.length === 0) return emptyResult(name, parts, 'masked');
  return assemble(parts, { path, bytes }, dropIns, host, []);
}
