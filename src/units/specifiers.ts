// '%' specifiers of systemd.unit(5) "SPECIFIERS", and the unit-name anatomy they are made of
// (prefix, instance, suffix). Host facts (hostname, machine id, os-release, ...) are read once,
// on first use, so loading a thousand units does not read /etc/os-release a thousand times.
//
// Supported: %a %A %b %B %C %d %E %f %g %G %h %H %i %I %j %J %l %L %m %M %n %N %o %p %P %q %s
// %S %t %T %u %U %v %V %w %W %y %Y %%. Everything systemd.unit(5) lists for unit files is here.
// An unknown specifier (or a lone '%' at the end) is an error for the caller to report.
import fs = require('node:fs');
import os = require('node:os');
import nodePath = require('node:path');
import { unescapePath } from './unit-name';
import { fail, ok, type ParseResult } from './value-parsers';

export const UNIT_SUFFIXES = [
  'service',
  'socket',
  'device',
  'mount',
  'automount',
  'swap',
  'target',
  'path',
  'timer',
  'slice',
  'scope',
] as const;
export type UnitSuffix = (typeof UNIT_SUFFIXES)[number];

export interface UnitNameParts {
  name: string;
  /** Before '@', or the whole name without suffix. */
  prefix: string;
  /** Between '@' and the suffix; '' for templates; undefined for plain names. */
  instance?: string;
  suffix: UnitSuffix;
  kind: 'plain' | 'template' | 'instance';
}

const NAME_CHARS = /^[A-Za-z0-9:_.\\-]+$/;
const INSTANCE_CHARS = /^[A-Za-z0-9:_.\\@-]+$/;
const UNIT_NAME_MAX = 255;

/** Split a unit name into its parts, or undefined when it is not a valid unit name. */
export function parseUnitName(name: string): UnitNameParts | undefined {
  if (name.length === 0 || name.length > UNIT_NAME_MAX) return undefined;
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const suffix = name.slice(dot + 1) as UnitSuffix;
  if (!UNIT_SUFFIXES.includes(suffix)) return undefined;
  const stem = name.slice(0, dot);
  const at = stem.indexOf('@');
  if (at < 0) {
    return NAME_CHARS.test(stem) ? { name, prefix: stem, suffix, kind: 'plain' } : undefined;
  }
  const prefix = stem.slice(0, at);
  const instance = stem.slice(at + 1);
  if (prefix === '' || !NAME_CHARS.test(prefix)) return undefined;
  if (instance === '') return { name, prefix, instance: '', suffix, kind: 'template' };
  if (!INSTANCE_CHARS.test(instance)) return undefined;
  return { name, prefix, instance, suffix, kind: 'instance' };
}

export function isValidUnitName(
  name: string,
  kinds: readonly UnitNameParts['kind'][] = ['plain', 'instance'],
): boolean {
  const p = parseUnitName(name);
  return p !== undefined && kinds.includes(p.kind);
}

/** 'foo@bar.service' → 'foo@.service'; other names unchanged. */
export function templateOf(parts: UnitNameParts): string {
  return parts.kind === 'instance' ? `${parts.prefix}@.${parts.suffix}` : parts.name;
}

/** The instance of `template` (foo@.service) for `instance`. */
export function instanceName(template: UnitNameParts, instance: string): string {
  return `${template.prefix}@${instance}.${template.suffix}`;
}

/** systemd's plain unescape (unit_name_unescape): only \xNN, no '-' → '/'. */
export function unescapeUnitString(s: string): ParseResult<string> {
  if (!s.includes('\\')) return ok(s);
  const bytes: number[] = [];
  const src = Buffer.from(s, 'utf8');
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== 0x5c) {
      bytes.push(src[i]);
      continue;
    }
    const hex = src.subarray(i + 1, i + 4).toString('latin1');
    if (!/^x[0-9a-fA-F]{2}$/.test(hex) || hex === 'x00') return fail(`bad escape in ${JSON.stringify(s)}`);
    bytes.push(parseInt(hex.slice(1), 16));
    i += 3;
  }
  const buf = Buffer.from(bytes);
  const text = buf.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(buf)) return fail(`${JSON.stringify(s)} does not unescape to UTF-8`);
  return ok(text);
}

// ---------------------------------------------------------------------------------------------
// Host facts

export type ManagerMode = 'system' | 'user';

/** What the host-level specifiers resolve to. Tests pass a fixed one. */
export interface SpecifierHost {
  architecture(): string;
  bootId(): string;
  hostname(): string;
  prettyHostname(): string;
  machineId(): string;
  kernelRelease(): string;
  osRelease(field: string): string;
  userName(): string;
  uid(): string;
  groupName(): string;
  gid(): string;
  home(): string;
  shell(): string;
  runtimeDir(): string;
  stateDir(): string;
  cacheDir(): string;
  logsDir(): string;
  configDir(): string;
  tmpDir(): string;
  varTmpDir(): string;
}

function readTrimmed(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** KEY=value lines with optional quotes (os-release(5), machine-info(5)). */
function readEnvFile(path: string): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m === null) continue;
    let v = m[2].trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.endsWith(v[0])) v = v.slice(1, -1);
    out.set(m[1], v.replace(/\\(["'\\$`])/g, '$1'));
  }
  return out;
}

const ARCH: Record<string, string> = {
  x64: 'x86-64',
  ia32: 'x86',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: os.endianness() === 'LE' ? 'ppc64-le' : 'ppc64',
  ppc: 'ppc',
  s390x: 's390x',
  s390: 's390',
  riscv64: 'riscv64',
  loong64: 'loongarch64',
  mips: 'mips',
  mipsel: 'mips-le',
};

/** The real host, each fact read once per process on first use. */
export function defaultSpecifierHost(mode: ManagerMode = 'system'): SpecifierHost {
  const cache = new Map<string, string>();
  const once = (key: string, compute: () => string): string => {
    let v = cache.get(key);
    if (v === undefined) {
      v = compute();
      cache.set(key, v);
    }
    return v;
  };
  let osRelease: Map<string, string> | undefined;
  const user = (): os.UserInfo<string> => os.userInfo();
  const env = process.env;
  const home = (): string => once('home', () => user().homedir);
  const xdgConfig = (): string => env.XDG_CONFIG_HOME ?? nodePath.join(home(), '.config');
  const tmp = (fallback: string): string => env.TMPDIR ?? env.TEMP ?? env.TMP ?? fallback;
  return {
    architecture: () => ARCH[process.arch] ?? process.arch,
    bootId: () => once('boot', () => readTrimmed('/proc/sys/kernel/random/boot_id').replace(/-/g, '')),
    hostname: () => os.hostname(),
    prettyHostname: () =>
      once(
        'pretty',
        () => readEnvFile('/etc/machine-info').get('PRETTY_HOSTNAME') ?? os.hostname().split('.')[0],
      ),
    machineId: () => once('machine', () => readTrimmed('/etc/machine-id')),
    kernelRelease: () => os.release(),
    osRelease: (field) => {
      if (osRelease === undefined) {
        osRelease = readEnvFile('/etc/os-release');
        if (osRelease.size === 0) osRelease = readEnvFile('/usr/lib/os-release');
      }
      return osRelease.get(field) ?? '';
    },
    userName: () => once('user', () => user().username),
    uid: () => String(user().uid),
    groupName: () => once('group', () => groupNameOf(user().gid)),
    gid: () => String(user().gid),
    home,
    shell: () => once('shell', () => user().shell ?? '/bin/sh'),
    runtimeDir: () => (mode === 'system' ? '/run' : (env.XDG_RUNTIME_DIR ?? `/run/user/${user().uid}`)),
    stateDir: () => (mode === 'system' ? '/var/lib' : xdgConfig()),
    cacheDir: () =>
      mode === 'system' ? '/var/cache' : (env.XDG_CACHE_HOME ?? nodePath.join(home(), '.cache')),
    logsDir: () => (mode === 'system' ? '/var/log' : nodePath.join(xdgConfig(), 'log')),
    configDir: () => (mode === 'system' ? '/etc' : xdgConfig()),
    tmpDir: () => tmp('/tmp'),
    varTmpDir: () => tmp('/var/tmp'),
  };
}

function groupNameOf(gid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && Number(f[2]) === gid) return f[0];
    }
  } catch {
    // No /etc/group: fall back to the number, as systemd does for unknown groups.
  }
  return String(gid);
}

// ---------------------------------------------------------------------------------------------
// Expansion

export interface SpecifierContext {
  /** The unit's own name (an instance name for instances). */
  unit: UnitNameParts;
  /** The fragment file, for %y / %Y. */
  fragmentPath?: string;
  host: SpecifierHost;
}

type Resolver = (ctx: SpecifierContext) => ParseResult<string>;

const str =
  (f: (ctx: SpecifierContext) => string): Resolver =>
  (ctx) =>
    ok(f(ctx));

function stem(u: UnitNameParts): string {
  return u.name.slice(0, u.name.length - u.suffix.length - 1);
}

function lastComponent(u: UnitNameParts): string {
  const dash = u.prefix.lastIndexOf('-');
  return dash < 0 ? u.prefix : u.prefix.slice(dash + 1);
}

const RESOLVERS: Record<string, Resolver> = {
  a: str((c) => c.host.architecture()),
  A: str((c) => c.host.osRelease('IMAGE_VERSION')),
  b: str((c) => c.host.bootId()),
  B: str((c) => c.host.osRelease('BUILD_ID')),
  C: str((c) => c.host.cacheDir()),
  d: str((c) => `${c.host.runtimeDir()}/credentials/${c.unit.name}`),
  E: str((c) => c.host.configDir()),
  f: (c) => {
    const source = c.unit.instance !== undefined && c.unit.instance !== '' ? c.unit.instance : c.unit.prefix;
    try {
      return ok(unescapePath(source));
    } catch (e) {
      return fail(`%f: ${(e as Error).message}`);
    }
  },
  g: str((c) => c.host.groupName()),
  G: str((c) => c.host.gid()),
  h: str((c) => c.host.home()),
  H: str((c) => c.host.hostname()),
  i: str((c) => c.unit.instance ?? ''),
  I: (c) => unescapeUnitString(c.unit.instance ?? ''),
  j: str((c) => lastComponent(c.unit)),
  J: (c) => unescapeUnitString(lastComponent(c.unit)),
  l: str((c) => c.host.hostname().split('.')[0]),
  L: str((c) => c.host.logsDir()),
  m: str((c) => c.host.machineId()),
  M: str((c) => c.host.osRelease('IMAGE_ID')),
  n: str((c) => c.unit.name),
  N: str((c) => stem(c.unit)),
  o: str((c) => c.host.osRelease('ID')),
  p: str((c) => c.unit.prefix),
  P: (c) => unescapeUnitString(c.unit.prefix),
  q: str((c) => c.host.prettyHostname()),
  s: str((c) => c.host.shell()),
  S: str((c) => c.host.stateDir()),
  t: str((c) => c.host.runtimeDir()),
  T: str((c) => c.host.tmpDir()),
  u: str((c) => c.host.userName()),
  U: str((c) => c.host.uid()),
  v: str((c) => c.host.kernelRelease()),
  V: str((c) => c.host.varTmpDir()),
  w: str((c) => c.host.osRelease('VERSION_ID')),
  W: str((c) => c.host.osRelease('VARIANT_ID')),
  y: (c) => (c.fragmentPath !== undefined ? ok(c.fragmentPath) : fail('%y: the unit has no fragment file')),
  Y: (c) =>
    c.fragmentPath !== undefined
      ? ok(nodePath.dirname(c.fragmentPath))
      : fail('%Y: the unit has no fragment file'),
};

/** Every specifier letter this module resolves ('%' itself included). */
export const SUPPORTED_SPECIFIERS: readonly string[] = [...Object.keys(RESOLVERS), '%'].sort();

/** The specifiers systemd.unit(5) allows in [Install]. */
export const INSTALL_SPECIFIERS: ReadonlySet<string> = new Set('abBgGHijlmnNopuUvwW%'.split(''));

/**
 * Replace %x specifiers in `text`. Fails on an unknown letter, a letter outside `allowed`, or a
 * lone '%' at the end; the caller turns that into a diagnostic.
 */
export function expandSpecifiers(
  text: string,
  ctx: SpecifierContext,
  allowed?: ReadonlySet<string>,
): ParseResult<string> {
  if (!text.includes('%')) return ok(text);
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '%') {
      out += c;
      continue;
    }
    const letter = text[i + 1];
    i++;
    if (letter === undefined) return fail(`lone '%' at the end of ${JSON.stringify(text)}`);
    if (letter === '%') {
      out += '%';
      continue;
    }
    const resolve = RESOLVERS[letter];
    if (resolve === undefined || (allowed !== undefined && !allowed.has(letter))) {
      return fail(`unknown specifier %${letter} in ${JSON.stringify(text)}`);
    }
    const r = resolve(ctx);
    if (!r.ok) return r;
    out += r.value;
  }
  return ok(out);
}
