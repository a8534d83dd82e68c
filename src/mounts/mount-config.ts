// [Mount] (systemd.mount(5)) as a small key table over the raw entries the loader keeps for the
// section, with systemd's defaults, its load-time checks (mount_verify) and the implicit
// dependencies it adds (mount_add_extras): on the backing device (BindsTo= + After= the .device
// unit, so the device going away unmounts) and on the mount points above Where= (After=, and
// Requires= where that parent has a unit file). The loader calls parseMountConfig() for .mount
// units, so the shared key tables of unit-keys.ts stay as they are.
import type { Diagnostic, SourceRef, UnitSection } from '../units/config-types';
import type { SpecifierContext } from '../units/specifiers';
import { applyRow, reporterInto, rowOf, type SettingRow } from '../units/setting-rows';
import { unescapePath, unitNameFromPath } from '../units/unit-name';
import { fail, ok, parseBoolean, parseMode, parseTimeSpan, type ParseResult } from '../units/value-parsers';

/** [Mount]; times in ms ('' where a string setting is unset). */
export interface MountSection {
  /** What=: the device, file or other source ('' when unset). */
  what: string;
  /** Absolute, normalized mount point. */
  where: string;
  whereSource?: SourceRef;
  /** Type= ('' lets mount(8) detect it). */
  type: string;
  /** Options=, comma-separated, as written. */
  options: string;
  sloppyOptions: boolean;
  lazyUnmount: boolean;
  forceUnmount: boolean;
  readWriteOnly: boolean;
  /** Mode of directories created for Where= (0755). */
  directoryMode: number;
  /** TimeoutSec= for mount/umount (90 s; Infinity for 0/infinity). */
  timeoutMs: number;
}

const BAD_SETTING = 'ERR_UNIT_BAD_SETTING';
const UNKNOWN_KEY = 'ERR_UNIT_UNKNOWN_KEY';
const UNSUPPORTED_KEY = 'ERR_UNIT_UNSUPPORTED_KEY';
const PATH_MAX = 4096;

export function defaultMountSection(): MountSection {
  return {
    what: '',
    where: '',
    type: '',
    options: '',
    sloppyOptions: false,
    lazyUnmount: false,
    forceUnmount: false,
    readWriteOnly: false,
    directoryMode: 0o755,
    timeoutMs: 90_000,
  };
}

/** An absolute path, simplified ('//' folded, trailing '/' dropped); no '.'/'..' components. */
export function parseMountWhere(text: string): ParseResult<string> {
  if (text.includes('\0')) return fail('path contains a NUL byte');
  if (!text.startsWith('/')) return fail(`path is not absolute: ${JSON.stringify(text)}`);
  const parts = text.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..')
      return fail(`path is not normalized (has a "${p}" component): ${JSON.stringify(text)}`);
  }
  const simplified = `/${parts.join('/')}`;
  if (simplified.length >= PATH_MAX) return fail(`path is longer than PATH_MAX (${PATH_MAX})`);
  return ok(simplified);
}

type Row = SettingRow<MountSection>;

const flag = (field: 'sloppyOptions' | 'lazyUnmount' | 'forceUnmount' | 'readWriteOnly'): Row => ({
  parse: parseBoolean,
  set: (s, v: boolean) => (s[field] = v),
  reset: (s) => (s[field] = false),
});

const ROWS: Readonly<Record<string, Row>> = {
  What: {
    parse: (t) => ok(t),
    set: (s, v: string) => (s.what = v),
    reset: (s) => (s.what = ''),
    expand: true,
  },
  Where: {
    parse: parseMountWhere,
    set: (s, v: string, source) => {
      s.where = v;
      s.whereSource = source;
    },
    reset: (s) => {
      s.where = '';
      s.whereSource = undefined;
    },
    expand: true,
  },
  Type: {
    parse: (t) =>
      /^[A-Za-z0-9_.+-]+$/.test(t) ? ok(t) : fail(`not a file system type: ${JSON.stringify(t)}`),
    set: (s, v: string) => (s.type = v),
    reset: (s) => (s.type = ''),
    expand: true,
  },
  Options: {
    parse: (t) => ok(t),
    set: (s, v: string) => (s.options = v),
    reset: (s) => (s.options = ''),
    expand: true,
  },
  SloppyOptions: flag('sloppyOptions'),
  LazyUnmount: flag('lazyUnmount'),
  ForceUnmount: flag('forceUnmount'),
  ReadWriteOnly: flag('readWriteOnly'),
  DirectoryMode: {
    parse: parseMode,
    set: (s, v: number) => (s.directoryMode = v),
    reset: (s) => (s.directoryMode = 0o755),
  },
  TimeoutSec: {
    parse: (t) => {
      const r = parseTimeSpan(t);
      // systemd's parse_sec_fix_0: 0 is no timeout.
      return r.ok && r.value === 0 ? ok(Infinity) : r;
    },
    set: (s, v: number) => (s.timeoutMs = v),
    reset: (s) => (s.timeoutMs = 90_000),
  },
};

/** [Mount] keys of systemd.exec(5)/systemd.kill(5) that triggerd does not apply to mount helpers. */
const EXEC_KEY =
  /^(User|Group|Environment|EnvironmentFile|Nice|KillMode|KillSignal|SendSIGKILL|UMask|.*Directory|Protect.*|Private.*|Capability.*|Limit.*|Standard.*)$/;

export interface MountConfigInput {
  /** The unit's name: mnt-data.mount. */
  name: string;
  /** The [Mount] entries of the fragment and drop-ins, in order. */
  entries: readonly { key: string; value: string; source: SourceRef }[];
  specifiers: SpecifierContext;
  /** The unit's [Unit] section: implicit dependencies are added to it. */
  unit: UnitSection;
  fragmentPath?: string;
  diagnostics: Diagnostic[];
}

/** Whether the options list has `name` (exactly, or as name=value). */
export function hasMountOption(options: string, name: string): boolean {
  return options.split(',').some((o) => o === name || o.startsWith(`${name}=`));
}

/** The options mount(8) gets: without the fstab-only ones systemd filters (nofail, noauto, auto). */
export function mountHelperOptions(options: string): string {
  return options
    .split(',')
    .filter((o) => o !== '' && o !== 'nofail' && o !== 'noauto' && o !== 'auto')
    .join(',');
}

/** A What= that names a device node (systemd's is_device_path): /dev/... or /sys/... */
export function isDevicePath(what: string): boolean {
  return what.startsWith('/dev/') || what.startsWith('/sys/');
}

/** A bind mount: Type=none/bind or a bind/rbind option (its What= is a directory, not a device). */
export function isBindMount(s: Pick<MountSection, 'type' | 'options'>): boolean {
  return s.type === 'bind' || hasMountOption(s.options, 'bind') || hasMountOption(s.options, 'rbind');
}

/** The mount units above `where`, nearest last: /a/b/c → -.mount, a.mount, a-b.mount. */
export function parentMountUnits(where: string): string[] {
  const parts = where.split('/').filter((p) => p !== '');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = `/${parts.slice(0, i).join('/')}`;
    try {
      out.push(unitNameFromPath(p, 'mount'));
    } catch {
      // a path systemd cannot name has no unit
    }
  }
  return out;
}

function pushUnique(list: string[], name: string): void {
  if (!list.includes(name)) list.push(name);
}

/** Parse [Mount]; `usable` is false where systemd refuses to load the unit. */
export function parseMountConfig(input: MountConfigInput): { section: MountSection; usable: boolean } {
  const s = defaultMountSection();
  const report = reporterInto(input.diagnostics);
  for (const e of input.entries) {
    if (e.key.startsWith('X-')) continue;
    const row = rowOf(ROWS, e.key);
    if (row === undefined) {
      if (EXEC_KEY.test(e.key))
        report(
          'warning',
          UNSUPPORTED_KEY,
          `key ${e.key} is not supported in [Mount] by triggerd, ignored`,
          e.source,
        );
      else report('warning', UNKNOWN_KEY, `unknown key ${e.key} in section [Mount], ignored`, e.source);
      continue;
    }
    applyRow('Mount', s, row, e, input.specifiers, report);
  }

  const fileSource = input.fragmentPath !== undefined ? { file: input.fragmentPath, line: 1 } : undefined;
  // systemd: without Where=, the path the unit's name encodes.
  if (s.where === '') {
    try {
      const derived = parseMountWhere(unescapePath(input.name.replace(/\.mount$/, '')));
      if (derived.ok) s.where = derived.value;
    } catch {
      // not a path name: refused below
    }
  }
  if (s.where === '') {
    report(
      'error',
      BAD_SETTING,
      `${input.name} has no usable Where= and its name encodes no path, refusing`,
      fileSource,
    );
    return { section: s, usable: false };
  }
  let expected: string;
  try {
    expected = unitNameFromPath(s.where, 'mount');
  } catch (err) {
    report(
      'error',
      BAD_SETTING,
      `Where=${s.where}: ${(err as Error).message}, refusing`,
      s.whereSource ?? fileSource,
    );
    return { section: s, usable: false };
  }
  if (expected !== input.name) {
    report(
      'error',
      BAD_SETTING,
      `Where=${s.where} does not match the unit name ${input.name} (it would be ${expected}), refusing`,
      s.whereSource ?? fileSource,
    );
    return { section: s, usable: false };
  }
  if (s.what === '' && input.fragmentPath !== undefined) {
    report('error', BAD_SETTING, `${input.name}: What= setting is missing, refusing`, fileSource);
    return { section: s, usable: false };
  }
  addImplicitDependencies(s, input.unit);
  return { section: s, usable: true };
}

/** mount_add_device_dependencies and the After= half of mount_add_mount_dependencies. */
function addImplicitDependencies(s: MountSection, unit: UnitSection): void {
  const deps = unit.dependencies;
  if (isDevicePath(s.what) && !isBindMount(s)) {
    try {
      const device = unitNameFromPath(s.what, 'device');
      // BindsTo=: the device going away stops (unmounts) the mount; nofail mounts only Wants= it.
      pushUnique(hasMountOption(s.options, 'nofail') ? deps.Wants : deps.BindsTo, device);
      pushUnique(deps.After, device);
    } catch {
      // a device path systemd cannot name gets no dependency
    }
  }
  for (const parent of parentMountUnits(s.where)) pushUnique(deps.After, parent);
  // Not for a path past PATH_MAX (systemd's unit_require_mounts_for refuses it): naming every
  // prefix of a 64 KiB What= took 18 s.
  if (s.what.startsWith('/') && !isDevicePath(s.what) && s.what.length < PATH_MAX) {
    // A bind mount's source (or an image file) must be mounted too.
    for (const parent of [...parentMountUnits(s.what), safeName(s.what)]) {
      if (parent !== undefined) pushUnique(deps.After, parent);
    }
  }
}

function safeName(path: string): string | undefined {
  try {
    return unitNameFromPath(path, 'mount');
  } catch {
    return undefined;
  }
}

/**
 * The Requires= half: a parent mount point that has a unit file must be mounted first
 * (systemd adds Requires= only where the parent has a fragment). `hasUnitFile` asks the loader.
 */
export function addParentMountRequirements(
  where: string,
  unit: UnitSection,
  hasUnitFile: (name: string) => boolean,
): void {
  for (const parent of parentMountUnits(where)) {
    if (parent !== '-.mount' && hasUnitFile(parent)) pushUnique(unit.dependencies.Requires, parent);
  }
}
