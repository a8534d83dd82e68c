// File-system sandboxing (PrivateTmp=, PrivateDevices=, ProtectSystem=, ProtectHome=,
// ReadOnlyPaths=, ReadWritePaths=, InaccessiblePaths=, PrivateNetwork='s /sys) turned into
// explicit mount steps. The mount table is read here, in TypeScript, so the native side only
// applies simple steps in order: first the mounts that create something, then read-only
// remounts, one per existing mount (non-recursive where a writable exception lies below it).
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, symlinkSync } from 'node:fs';
import path = require('node:path');
import type { Diagnostic, ExecContext, SourceRef } from '../units/config-types';
import type { ExecPlan, MountStep } from './exec-plan';
import { isPathAtOrBelow, topMountsBelow, type MountInfoEntry } from './mount-info';

/** CAP_SYS_RAWIO and CAP_MKNOD: PrivateDevices=yes drops them from the bounding set, as systemd does. */
export const PRIVATE_DEVICES_DROPPED_CAPS = (1n << 17n) | (1n << 27n);

const HOME_PATHS = ['/home', '/root', '/run/user'];
const PRIVATE_DEVICE_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
const PRIVATE_DEVICE_DIRS = ['pts', 'shm'];
const PRIVATE_DEVICE_LINKS: [string, string][] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
];

export interface SandboxInput {
  ctx: ExecContext;
  unitName: string;
  runtimeDir: string;
  mounts: readonly MountInfoEntry[];
  source: SourceRef;
}

export interface Sandbox {
  steps: MountStep[];
  privateNetwork: boolean;
  privateSysfs?: ExecPlan['privateSysfs'];
  inaccessibleSources?: ExecPlan['inaccessibleSources'];
  /** Capabilities to remove from the bounding set on top of CapabilityBoundingSet=. */
  droppedCapabilities: bigint;
  diagnostics: Diagnostic[];
}

type Mode = 'ro' | 'rw';

interface PathRule {
  path: string;
  mode: Mode;
  optional: boolean;
}

/** Where a unit's private directories live below the runtime directory. */
export function unitRuntimePaths(
  runtimeDir: string,
  unitName: string,
): { privateTmp: string; privateDev: string } {
  return {
    privateTmp: path.join(runtimeDir, 'private-tmp', unitName),
    privateDev: path.join(runtimeDir, 'private-dev', unitName),
  };
}

/**
 * Removes a unit's private /tmp, /var/tmp and /dev stage. Only once none of its processes runs:
 * deleting a path another mount namespace has a mount on detaches that mount there.
 */
export function removeUnitRuntime(runtimeDir: string, unitName: string): void {
  const paths = unitRuntimePaths(runtimeDir, unitName);
  rmSync(paths.privateTmp, { recursive: true, force: true });
  rmSync(paths.privateDev, { recursive: true, force: true });
}

/** mkdir -p, then the exact mode (mkdir's mode is filtered by the umask). */
function ensureDir(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
}

function ensureFile(file: string, mode: number): void {
  if (!existsSync(file)) closeSync(openSync(file, 'a', mode));
  chmodSync(file, mode);
}

function ensureSymlink(link: string, target: string): void {
  try {
    symlinkSync(target, link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** The path of a list entry without its '-' (optional) and '+' (relative to RootDirectory=) prefixes. */
function parsePathEntry(entry: string): { path: string; optional: boolean } | undefined {
  let rest = entry;
  let optional = false;
  while (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') optional = true;
    rest = rest.slice(1);
  }
  if (!rest.startsWith('/')) return undefined;
  const normalized = path.posix.normalize(rest);
  return { path: normalized.length > 1 ? normalized.replace(/\/+$/, '') : normalized, optional };
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

export function buildSandbox(input: SandboxInput): Sandbox {
  const { ctx, unitName, runtimeDir, source } = input;
  const diagnostics: Diagnostic[] = [];
  const creating: MountStep[] = [];
  const rules: PathRule[] = [];
  /** Targets the creating steps mount (they become mounts of their own). */
  const created: string[] = [];
  let droppedCapabilities = 0n;
  let inaccessibleSources: Sandbox['inaccessibleSources'];

  const pathList = (entries: readonly string[], key: string): { path: string; optional: boolean }[] => {
    const parsed: { path: string; optional: boolean }[] = [];
    for (const entry of entries) {
      const item = parsePathEntry(entry);
      if (item === undefined) {
        diagnostics.push({
          severity: 'warning',
          code: 'EXEC_PATH_NOT_ABSOLUTE',
          message: `${key}=${entry}: not an absolute path, ignored`,
          source,
        });
      } else {
        parsed.push(item);
      }
    }
    return parsed;
  };

  // PrivateDevices=: a stage directory under the runtime dir gets the host's device nodes bound
  // onto empty files (the targets a bind needs), then goes over /dev as a whole; its top is made
  // read-only below so the service cannot create files in it.
  if (ctx.privateDevices) {
    const stage = unitRuntimePaths(runtimeDir, unitName).privateDev;
    ensureDir(stage, 0o755);
    for (const node of PRIVATE_DEVICE_NODES) ensureFile(path.join(stage, node), 0o644);
    for (const dir of PRIVATE_DEVICE_DIRS) ensureDir(path.join(stage, dir), 0o755);
    for (const [link, target] of PRIVATE_DEVICE_LINKS) ensureSymlink(path.join(stage, link), target);
    for (const node of [...PRIVATE_DEVICE_NODES, ...PRIVATE_DEVICE_DIRS]) {
      creating.push({
        kind: 'bind',
        source: `/dev/${node}`,
        target: path.join(stage, node),
        readOnly: false,
        recursive: false,
        optional: true,
      });
    }
    creating.push({
      kind: 'bind',
      source: stage,
      target: '/dev',
      readOnly: false,
      recursive: true,
      optional: false,
    });
    created.push('/dev');
    rules.push({ path: '/dev', mode: 'rw', optional: true });
    droppedCapabilities |= PRIVATE_DEVICES_DROPPED_CAPS;
  }

  // InaccessiblePaths= and ProtectHome=yes: an empty mode-000 directory or file over the path.
  const inaccessible = pathList(ctx.inaccessiblePaths, 'InaccessiblePaths');
  const hidden: string[] = [];
  if (ctx.protectHome === 'yes') {
    for (const p of HOME_PATHS) inaccessible.push({ path: p, optional: true });
  }
  if (inaccessible.length > 0) {
    const dir = path.join(runtimeDir, 'inaccessible');
    ensureDir(dir, 0o755);
    ensureDir(path.join(dir, 'dir'), 0o000);
    ensureFile(path.join(dir, 'reg'), 0o000);
    inaccessibleSources = { directory: path.join(dir, 'dir'), file: path.join(dir, 'reg') };
    for (const item of inaccessible) {
      creating.push({ kind: 'inaccessible', target: item.path, optional: item.optional });
      created.push(item.path);
      hidden.push(item.path);
      rules.push({ path: item.path, mode: 'ro', optional: item.optional });
    }
  }

  // Read-only rules.
  const readOnly: { path: string; optional: boolean }[] = [];
  if (ctx.protectSystem === 'yes' || ctx.protectSystem === 'full') {
    readOnly.push(
      { path: '/usr', optional: false },
      { path: '/boot', optional: true },
      { path: '/efi', optional: true },
    );
    if (ctx.protectSystem === 'full') readOnly.push({ path: '/etc', optional: false });
  } else if (ctx.protectSystem === 'strict') {
    readOnly.push({ path: '/', optional: false });
    // The API file systems stay writable (ProtectKernelTunables= and friends would cover them).
    for (const p of ['/dev', '/proc', '/sys']) rules.push({ path: p, mode: 'rw', optional: true });
  }
  if (ctx.protectHome === 'read-only') {
    for (const p of HOME_PATHS) readOnly.push({ path: p, optional: true });
  }
  readOnly.push(...pathList(ctx.readOnlyPaths, 'ReadOnlyPaths'));
  for (const item of readOnly) rules.push({ path: item.path, mode: 'ro', optional: item.optional });

  // ReadWritePaths=: inside a read-only area, bind the path onto itself first, so it is a mount
  // of its own that keeps its flags when the area around it is made read-only.
  for (const item of pathList(ctx.readWritePaths, 'ReadWritePaths')) {
    rules.push({ path: item.path, mode: 'rw', optional: item.optional });
    const insideReadOnly = readOnly.some((r) => r.path !== item.path && isPathAtOrBelow(item.path, r.path));
    const isMount = input.mounts.some((m) => m.mountPoint === item.path);
    if (insideReadOnly && !isMount) {
      creating.push({
        kind: 'bind',
        source: item.path,
        target: item.path,
        readOnly: false,
        recursive: true,
        optional: item.optional,
      });
      created.push(item.path);
    }
  }

  // PrivateTmp=: a per-unit directory (kept across the unit's commands, removed when it stops)
  // bound over /tmp and /var/tmp.
  if (ctx.privateTmp) {
    const base = unitRuntimePaths(runtimeDir, unitName).privateTmp;
    ensureDir(base, 0o700);
    for (const [name, target, optional] of [
      ['tmp', '/tmp', false],
      ['var-tmp', '/var/tmp', true],
    ] as const) {
      const dir = path.join(base, name);
      ensureDir(dir, 0o1777);
      creating.push({ kind: 'bind', source: dir, target, readOnly: false, recursive: false, optional });
      created.push(target);
      rules.push({ path: target, mode: 'rw', optional: true });
    }
  }

  // ProtectHome=tmpfs: empty read-only tmpfs instead of the home directories.
  if (ctx.protectHome === 'tmpfs') {
    for (const p of HOME_PATHS) {
      creating.push({ kind: 'tmpfs', target: p, mode: 0o755, optional: true });
      created.push(p);
      rules.push({ path: p, mode: 'ro', optional: true });
    }
  }

  const steps = [...creating, ...readOnlySteps(rules, input.mounts, created, hidden)];
  if (ctx.privateDevices)
    steps.push({ kind: 'remount-read-only', target: '/dev', recursive: false, optional: false });

  let privateSysfs: Sandbox['privateSysfs'];
  if (ctx.privateNetwork) privateSysfs = { submounts: topMountsBelow(input.mounts, '/sys') };

  return {
    steps,
    privateNetwork: ctx.privateNetwork,
    privateSysfs,
    inaccessibleSources,
    droppedCapabilities,
    diagnostics,
  };
}

/**
 * One 'remount-read-only' per mount whose closest rule says read-only: recursive when no
 * writable rule lies below it (that covers mounts made later as well), otherwise just that
 * mount, and the mounts below it get their own steps. For one path, read-only beats writable,
 * as in systemd.
 */
function readOnlySteps(
  rules: PathRule[],
  mounts: readonly MountInfoEntry[],
  created: string[],
  hidden: string[],
): MountStep[] {
  const byPath = new Map<string, PathRule>();
  for (const rule of rules) {
    const seen = byPath.get(rule.path);
    if (seen === undefined || (seen.mode === 'rw' && rule.mode === 'ro')) byPath.set(rule.path, rule);
    else if (seen.mode === rule.mode && !rule.optional) seen.optional = false;
  }
  if (![...byPath.values()].some((r) => r.mode === 'ro')) return [];

  const modeOf = (p: string): PathRule | undefined => {
    let best: PathRule | undefined;
    for (const rule of byPath.values()) {
      if (isPathAtOrBelow(p, rule.path) && (best === undefined || depth(rule.path) > depth(best.path)))
        best = rule;
    }
    return best;
  };
  const writableBelow = (p: string): boolean =>
    [...byPath.values()].some((r) => r.mode === 'rw' && r.path !== p && isPathAtOrBelow(r.path, p));

  const candidates = [...new Set([...mounts.map((m) => m.mountPoint), ...created, ...byPath.keys()])].sort(
    // Byte order, not localeCompare: paths have no locale, and ICU's collation tables cost the
    // daemon 2.5 MB of RSS the first time a sandboxed unit starts.
    (a, b) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0),
  );
  const steps: MountStep[] = [];
  // Inaccessible paths are read-only mounts already, and hide whatever was below them.
  const covered: string[] = [...hidden];
  const createdSet = new Set(created);
  for (const p of candidates) {
    if (covered.some((c) => isPathAtOrBelow(p, c))) continue;
    const rule = modeOf(p);
    if (rule === undefined || rule.mode !== 'ro') continue;
    const recursive = !writableBelow(p);
    // A rule's own path must exist unless it was given with '-'; mounts found in the table or
    // made above may be gone (hidden by another step): those are optional.
    const optional = rule.path === p && !createdSet.has(p) ? rule.optional : true;
    steps.push({ kind: 'remount-read-only', target: p, recursive, optional });
    if (recursive) covered.push(p);
  }
  return steps;
}
