// The key tables of [Unit], [Install] and [Service] (with the exec and kill settings of
// systemd.exec(5) and systemd.kill(5)), as rows of (section, key, parser, setter). Defaults are
// systemd's. A bad value leaves the setting at what it was (its default, or an earlier line) and
// becomes a diagnostic with file:line; values systemd refuses to load with (a broken Exec line, a
// relative WorkingDirectory=) mark the unit 'bad-setting'. Keys systemd knows but triggerd does
// not implement warn "not supported"; other keys warn "unknown key".
import type {
  CollectMode,
  ConditionSpec,
  DependencyKind,
  Diagnostic,
  ExecCommand,
  ExecContext,
  ExitStatusSet,
  InstallSection,
  JobModeSetting,
  KillContext,
  KillMode,
  NotifyAccess,
  ProtectHome,
  ProtectSystem,
  RestartPolicy,
  ListenEntry,
  PathSection,
  TimerSection,
  ServiceSection,
  ServiceType,
  Severity,
  SocketSection,
  SourceRef,
  StandardInput,
  StandardOutput,
  TriggerdSection,
  UnitSection,
} from './config-types';
import { DEPENDENCY_KINDS } from './config-types';
import { expandSpecifiers, INSTALL_SPECIFIERS, parseUnitName, type SpecifierContext } from './specifiers';
import type { SyntaxEntry } from './unit-syntax';
import type { SocketKind } from '../native/socket-addon';
import { addressPath, canAccept, parseNetlinkAddress, parseSocketAddress } from './socket-address';
import { readFileSync } from 'node:fs';
import { defaultPathSection, finalizePathConfig, pathRows } from './path-config';
import { defaultTimerSection, finalizeTimerConfig, timerRows } from '../timers/timer-config';
import {
  applyCapabilityAssignment,
  fail,
  ok,
  parseBoolean,
  parseBooleanOr,
  parseCapabilityList,
  parseEnum,
  parseEnvironmentLine,
  parseExecLine,
  parseExitStatusSet,
  parseInteger,
  parseMode,
  parsePathList,
  parseResourceLimit,
  parseSignal,
  parseSize,
  parseTimeSpan,
  parseTimeSpanUsec,
  parseUnsigned,
  parseWordList,
  RLIMIT_UNITS,
  splitWords,
  unescapeC,
  type ExpandWord,
  type ParseResult,
} from './value-parsers';

/** Stable diagnostic codes of the key tables. */
export const KEY_CODES = {
  badValue: 'ERR_UNIT_BAD_VALUE',
  badSetting: 'ERR_UNIT_BAD_SETTING',
  specifier: 'ERR_UNIT_SPECIFIER',
  unknownKey: 'ERR_UNIT_UNKNOWN_KEY',
  unsupportedKey: 'ERR_UNIT_UNSUPPORTED_KEY',
  unknownSection: 'ERR_UNIT_UNKNOWN_SECTION',
  legacySection: 'ERR_UNIT_LEGACY_SECTION',
  deprecatedKey: 'ERR_UNIT_DEPRECATED_KEY',
} as const;

/** Everything one unit's files say, while they are being read. */
export interface UnitConfig {
  suffix: string;
  unit: UnitSection;
  install: InstallSection;
  service: ServiceSection;
  socket: SocketSection;
  path: PathSection;
  timer: TimerSection;
  triggerd: TriggerdSection;
  /** Where each [X-Triggerd] key was set, for diagnostics about its value. */
  triggerdSources?: Record<string, SourceRef>;
  /** Every [X-Triggerd] line in file order (for keys that may repeat, such as PathAccessed=). */
  triggerdEntries?: { key: string; value: string; source: SourceRef }[];
  /** Lines of known systemd keys triggerd does not apply, in file order (LoadedUnitFile.ignoredSettings). */
  ignoredSettings?: { section: string; key: string; value: string; source: SourceRef }[];
  /** "Section.Key" of settings given explicitly (type-dependent defaults look at these). */
  explicit: Set<string>;
  /** Set by a value systemd refuses to load with. */
  badSetting: boolean;
  /** SuccessAction= (not implemented, but it decides whether a service without ExecStart= is valid). */
  successAction?: string;
  ttyPath?: string;
  stdinData: Buffer[];
  /** Where the [Service] header of the fragment is, for unit-level diagnostics. */
  serviceSource?: SourceRef;
}

export interface KeyContext {
  section: string;
  key: string;
  source: SourceRef;
  /** Expand specifiers in `text` (all of them, or only `allowed`). */
  expand(text: string, allowed?: ReadonlySet<string>): ParseResult<string>;
  report(severity: Severity, code: string, reason: string): void;
}

export interface LegacyInfo {
  /** The name and section systemd documents for this setting today. */
  canonical: string;
  /** The diagnostic to emit when this row is used, or undefined for silent aliases. */
  code?: string;
  note?: string;
}

export interface KeyRow {
  section: 'Unit' | 'Install' | 'Service' | 'Socket' | 'Path' | 'Timer';
  key: string;
  /** The value syntax, for documentation ("boolean", "timespan", "exec", ...). */
  type: string;
  legacy?: LegacyInfo;
  /** Read for its side effects on validation, but otherwise not implemented: warns like unknown ones. */
  unsupported?: boolean;
  apply(cfg: UnitConfig, value: string, ctx: KeyContext): void;
}

// ---------------------------------------------------------------------------------------------
// Defaults (systemd's)

const SEC = 1000;

const IGNORE_ON_ISOLATE_BY_DEFAULT = new Set(['slice', 'scope', 'device', 'swap', 'mount', 'automount']);

export function defaultUnitSection(suffix: string): UnitSection {
  const dependencies = {} as Record<DependencyKind, string[]>;
  for (const k of DEPENDENCY_KINDS) dependencies[k] = [];
  return {
    documentation: [],
    dependencies,
    requiresMountsFor: [],
    defaultDependencies: true,
    stopWhenUnneeded: false,
    refuseManualStart: false,
    refuseManualStop: false,
    allowIsolate: false,
    ignoreOnIsolate: IGNORE_ON_ISOLATE_BY_DEFAULT.has(suffix),
    onFailureJobMode: 'replace',
    jobTimeoutMs: Infinity,
    jobRunningTimeoutMs: Infinity,
    // DefaultStartLimitIntervalSec= and DefaultStartLimitBurst= of systemd-system.conf(5).
    startLimitIntervalMs: 10 * SEC,
    startLimitBurst: 5,
    startLimitAction: 'none',
    collectMode: 'inactive',
    conditions: [],
  };
}

export function defaultInstallSection(): InstallSection {
  return { wantedBy: [], requiredBy: [], upheldBy: [], alias: [], also: [] };
}

export function defaultExecContext(): ExecContext {
  return {
    supplementaryGroups: [],
    workingDirectoryOptional: false,
    umask: 0o022,
    environment: [],
    environmentFiles: [],
    unsetEnvironment: [],
    passEnvironment: [],
    limits: [],
    standardInput: { kind: 'null' },
    // DefaultStandardOutput=journal, DefaultStandardError=inherit.
    standardOutput: { kind: 'journal' },
    standardError: { kind: 'inherit-output' },
    noNewPrivileges: false,
    privateTmp: false,
    privateNetwork: false,
    privateDevices: false,
    protectSystem: 'no',
    protectHome: 'no',
    readOnlyPaths: [],
    readWritePaths: [],
    inaccessiblePaths: [],
    ambientCapabilities: 0n,
    runtimeDirectory: [],
    stateDirectory: [],
    cacheDirectory: [],
    logsDirectory: [],
    configurationDirectory: [],
    runtimeDirectoryMode: 0o755,
    runtimeDirectoryPreserve: 'no',
  };
}

export function defaultKillContext(): KillContext {
  return {
    killMode: 'control-group',
    killSignal: 15,
    finalKillSignal: 9,
    watchdogSignal: 6,
    sendSIGKILL: true,
    sendSIGHUP: false,
  };
}

const emptyStatusSet = (): ExitStatusSet => ({ codes: [], signals: [] });

export function defaultServiceSection(): ServiceSection {
  return {
    // Decided in finalizeUnitConfig() when Type= is not given.
    type: 'simple',
    remainAfterExit: false,
    guessMainPID: true,
    execCondition: [],
    execStartPre: [],
    execStart: [],
    execStartPost: [],
    execReload: [],
    execStop: [],
    execStopPost: [],
    restart: 'no',
    restartSecMs: 100,
    restartSteps: 0,
    restartMaxDelaySecMs: Infinity,
    // DefaultTimeoutStartSec= / DefaultTimeoutStopSec= of systemd-system.conf(5).
    timeoutStartMs: 90 * SEC,
    timeoutStopMs: 90 * SEC,
    runtimeMaxMs: Infinity,
    watchdogMs: 0,
    successExitStatus: emptyStatusSet(),
    restartPreventExitStatus: emptyStatusSet(),
    restartForceExitStatus: emptyStatusSet(),
    reloadSignal: 1,
    fileDescriptorStoreMax: 0,
    fileDescriptorStorePreserve: 'no',
    sockets: [],
    nonBlocking: false,
    exec: defaultExecContext(),
    kill: defaultKillContext(),
  };
}

export function defaultSocketSection(): SocketSection {
  return {
    listen: [],
    bindIPv6Only: 'default',
    // SOMAXCONN; the kernel caps it at net.core.somaxconn.
    backlog: 4096,
    freeBind: false,
    transparent: false,
    reusePort: false,
    broadcast: false,
    keepAlive: false,
    noDelay: false,
    passCredentials: false,
    passSecurity: false,
    socketMode: 0o666,
    directoryMode: 0o755,
    removeOnStop: false,
    symlinks: [],
    accept: false,
    maxConnections: 64,
    maxConnectionsPerSource: 0,
    execStartPre: [],
    execStartPost: [],
    execStopPre: [],
    execStopPost: [],
    timeoutMs: 90 * SEC,
    exec: defaultExecContext(),
    kill: defaultKillContext(),
  };
}

export function createUnitConfig(suffix: string): UnitConfig {
  return {
    suffix,
    unit: defaultUnitSection(suffix),
    install: defaultInstallSection(),
    service: defaultServiceSection(),
    socket: defaultSocketSection(),
    path: defaultPathSection(),
    timer: defaultTimerSection(),
    triggerd: {},
    explicit: new Set(),
    badSetting: false,
    stdinData: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Row builders

type Section = KeyRow['section'];
type Parser<V> = (text: string, ctx: KeyContext, expandWord: ExpandWord) => ParseResult<V>;

interface RowOptions {
  /** Expand specifiers in the whole value before parsing (strings, paths). */
  expand?: boolean;
  /** [Install] allows fewer specifiers. */
  install?: boolean;
  /** A bad value makes the unit refuse to load. */
  fatal?: boolean;
  legacy?: LegacyInfo;
  /** What explicit-set marker to record (default "Section.Key"). */
  marks?: string[];
}

function row<V>(
  section: Section,
  key: string,
  type: string,
  parse: Parser<V>,
  set: (c: UnitConfig, v: V, ctx: KeyContext) => void,
  reset: (c: UnitConfig) => void,
  options: RowOptions = {},
): KeyRow {
  const marks = options.marks ?? [`${section}.${options.legacy?.canonical ?? key}`];
  return {
    section,
    key,
    type,
    legacy: options.legacy,
    apply(cfg, value, ctx) {
      const severity: Severity = options.fatal === true ? 'error' : 'warning';
      const refuse = (code: string, reason: string): void => {
        ctx.report(severity, options.fatal === true ? KEY_CODES.badSetting : code, reason);
        if (options.fatal === true) cfg.badSetting = true;
      };
      if (value === '') {
        reset(cfg);
        for (const m of marks) cfg.explicit.delete(m);
        return;
      }
      const allowed = options.install === true ? INSTALL_SPECIFIERS : undefined;
      let text = value;
      if (options.expand === true) {
        const e = ctx.expand(value, allowed);
        if (!e.ok) return refuse(KEY_CODES.specifier, e.message);
        text = e.value;
      }
      const expandWord: ExpandWord = (w) => ctx.expand(w, allowed);
      const r = parse(text, ctx, expandWord);
      if (!r.ok) return refuse(KEY_CODES.badValue, r.message);
      for (const w of r.warnings ?? []) ctx.report('warning', KEY_CODES.badValue, w);
      set(cfg, r.value, ctx);
      for (const m of marks) cfg.explicit.add(m);
    },
  };
}

const asString: Parser<string> = (t) => ok(t);
const asBool: Parser<boolean> = (t) => parseBoolean(t);
const asTime: Parser<number> = (t) => parseTimeSpan(t);
// Timeouts of 0 mean "no timeout" in systemd (its parse_sec_fix_0).
const asTimeout: Parser<number> = (t) => {
  const r = parseTimeSpan(t);
  return r.ok && r.value === 0 ? ok(Infinity) : r;
};
const asSignal: Parser<number> = (t) => parseSignal(t);
const asEnum =
  <T extends string>(allowed: readonly T[]): Parser<T> =>
  (t) =>
    parseEnum(allowed, t);

function absolutePath(t: string): ParseResult<string> {
  return t.startsWith('/') ? ok(t) : fail(`path is not absolute: ${JSON.stringify(t)}`);
}

/** Unit names separated by blanks; escapes stay as written (dev-disk-by\x2dlabel-x.device). */
function unitNameList(suffixes?: readonly string[]): Parser<string[]> {
  return (text, _ctx, expandWord) => {
    const words = splitWords(text, { unquote: false, escapes: 'retain' });
    if (!words.ok) return words;
    const out: string[] = [];
    const seen = new Set<string>();
    const warnings: string[] = [];
    for (const { value } of words.value) {
      const e = expandWord(value);
      if (!e.ok) {
        warnings.push(`${e.message}, dependency ignored`);
        continue;
      }
      const parts = parseUnitName(e.value);
      if (parts === undefined) warnings.push(`not a valid unit name, ignored: ${JSON.stringify(e.value)}`);
      else if (suffixes !== undefined && !suffixes.includes(parts.suffix)) {
        warnings.push(`${JSON.stringify(e.value)} is not a .${suffixes.join('/.')} unit, ignored`);
      } else if (!seen.has(e.value)) {
        seen.add(e.value);
        out.push(e.value);
      }
    }
    return ok(out, warnings);
  };
}

/** Members of the lists appendUnique grew, so a file of 60,000 Wants= lines is not quadratic
 * (list.includes took 83 s); rebuilt when the list changed length behind its back. */
const listMembers = new WeakMap<string[], Set<string>>();

function appendUnique(list: string[], items: string[]): void {
  let members = listMembers.get(list);
  if (members === undefined || members.size !== list.length) {
    members = new Set(list);
    listMembers.set(list, members);
  }
  for (const i of items) {
    if (members.has(i)) continue;
    members.add(i);
    list.push(i);
  }
}

/** list.push(...items) without the spread: 100,000+ arguments overflow the stack (one 1 MiB line has that many words). */
function appendAll<T>(list: T[], items: readonly T[]): void {
  for (const i of items) list.push(i);
}

const svc = (c: UnitConfig): ServiceSection => c.service;
// The exec and kill settings are shared by every unit that runs processes; a .socket unit keeps
// them in its [Socket] section.
const ex = (c: UnitConfig): ExecContext => (c.suffix === 'socket' ? c.socket.exec : c.service.exec);
const kl = (c: UnitConfig): KillContext => (c.suffix === 'socket' ? c.socket.kill : c.service.kill);
const sock = (c: UnitConfig): SocketSection => c.socket;

// ---------------------------------------------------------------------------------------------
// [Unit]

const CONDITION_NAMES = [
  'ACPower',
  'Architecture',
  'Capability',
  'ControlGroupController',
  'CPUFeature',
  'CPUPressure',
  'CPUs',
  'Credential',
  'DirectoryNotEmpty',
  'Environment',
  'FileIsExecutable',
  'FileNotEmpty',
  'Firmware',
  'FirstBoot',
  'Group',
  'Host',
  'IOPressure',
  'KernelCommandLine',
  'KernelModuleLoaded',
  'KernelVersion',
  'Memory',
  'MemoryPressure',
  'NeedsUpdate',
  'OSRelease',
  'PathExists',
  'PathExistsGlob',
  'PathIsDirectory',
  'PathIsEncrypted',
  'PathIsMountPoint',
  'PathIsReadWrite',
  'PathIsSymbolicLink',
  'Security',
  'User',
  'Version',
  'Virtualization',
] as const;

const PATH_CONDITIONS = new Set<string>([
  'PathExists',
  'PathExistsGlob',
  'PathIsDirectory',
  'PathIsEncrypted',
  'PathIsMountPoint',
  'PathIsReadWrite',
  'PathIsSymbolicLink',
  'DirectoryNotEmpty',
  'FileIsExecutable',
  'FileNotEmpty',
]);

function conditionRow(kind: 'condition' | 'assert', name: string): KeyRow {
  const key = `${kind === 'condition' ? 'Condition' : 'Assert'}${name}`;
  return row<ConditionSpec>(
    'Unit',
    key,
    'condition',
    (text, ctx) => {
      let s = text;
      const trigger = s.startsWith('|');
      if (trigger) s = s.slice(1).trimStart();
      const negate = s.startsWith('!');
      if (negate) s = s.slice(1).trimStart();
      const e = ctx.expand(s);
      if (!e.ok) return e;
      if (e.value === '') return fail('empty condition');
      if (PATH_CONDITIONS.has(name) && !e.value.startsWith('/')) {
        return fail(`path in condition is not absolute: ${JSON.stringify(e.value)}`);
      }
      return ok({ kind, name, negate, trigger, value: e.value, source: ctx.source });
    },
    (c, v) => c.unit.conditions.push(v),
    // An empty assignment drops every condition (or every assert) given so far.
    (c) => (c.unit.conditions = c.unit.conditions.filter((x) => x.kind !== kind)),
  );
}

export const JOB_MODES: readonly JobModeSetting[] = [
  'fail',
  'replace',
  'replace-irreversibly',
  'isolate',
  'flush',
  'ignore-dependencies',
  'ignore-requirements',
];
const COLLECT_MODES: readonly CollectMode[] = ['inactive', 'inactive-or-failed'];
export const EMERGENCY_ACTIONS = [
  'none',
  'reboot',
  'reboot-force',
  'reboot-immediate',
  'poweroff',
  'poweroff-force',
  'poweroff-immediate',
  'exit',
  'exit-force',
  'soft-reboot',
  'soft-reboot-force',
  'kexec',
  'kexec-force',
  'halt',
  'halt-force',
  'halt-immediate',
] as const;

const DOC_SCHEMES = ['http://', 'https://', 'file:', 'info:', 'man:'];

function startLimitRows(section: Section): KeyRow[] {
  // In [Service] these are systemd's legacy spellings; in [Unit] only StartLimitInterval= is.
  const legacy = (key: string, canonical: string, note?: string): LegacyInfo | undefined =>
    section === 'Service'
      ? { canonical, code: KEY_CODES.legacySection, note }
      : key !== canonical
        ? { canonical }
        : undefined;
  const interval = (key: string, note?: string): KeyRow =>
    row(
      section,
      key,
      'timespan',
      asTime,
      (c, v) => (c.unit.startLimitIntervalMs = v),
      (c) => (c.unit.startLimitIntervalMs = 10 * SEC),
      { legacy: legacy(key, 'StartLimitIntervalSec', note), marks: ['Unit.StartLimitIntervalSec'] },
    );
  return [
    interval(
      'StartLimitIntervalSec',
      section === 'Service'
        ? 'systemd itself ignores StartLimitIntervalSec= here; its legacy spelling is StartLimitInterval='
        : undefined,
    ),
    interval('StartLimitInterval'),
    row(
      section,
      'StartLimitBurst',
      'unsigned',
      (t) => parseUnsigned(t),
      (c, v) => (c.unit.startLimitBurst = v),
      (c) => (c.unit.startLimitBurst = 5),
      { legacy: legacy('StartLimitBurst', 'StartLimitBurst'), marks: ['Unit.StartLimitBurst'] },
    ),
    row(
      section,
      'StartLimitAction',
      'emergency-action',
      asEnum(EMERGENCY_ACTIONS),
      (c, v) => (c.unit.startLimitAction = v),
      (c) => (c.unit.startLimitAction = 'none'),
      { legacy: legacy('StartLimitAction', 'StartLimitAction'), marks: ['Unit.StartLimitAction'] },
    ),
  ];
}

function unitRows(): KeyRow[] {
  const rows: KeyRow[] = [
    row(
      'Unit',
      'Description',
      'string',
      asString,
      (c, v) => (c.unit.description = v),
      (c) => (c.unit.description = undefined),
      { expand: true },
    ),
    row(
      'Unit',
      'Documentation',
      'uri-list',
      (t, _ctx, expandWord) => {
        const words = parseWordList(t, expandWord);
        if (!words.ok) return words;
        const good = words.value.filter((w) => DOC_SCHEMES.some((s) => w.startsWith(s)));
        const bad = words.value
          .filter((w) => !good.includes(w))
          .map((w) => `not a documentation URI, ignored: ${w}`);
        return ok(good, bad);
      },
      (c, v) => appendUnique(c.unit.documentation, v),
      (c) => (c.unit.documentation = []),
    ),
    row(
      'Unit',
      'RequiresMountsFor',
      'path-list',
      (t, _c, e) => parsePathList(t, {}, e),
      (c, v) => appendUnique(c.unit.requiresMountsFor, v),
      (c) => (c.unit.requiresMountsFor = []),
    ),
    row(
      'Unit',
      'DefaultDependencies',
      'boolean',
      asBool,
      (c, v) => (c.unit.defaultDependencies = v),
      (c) => (c.unit.defaultDependencies = true),
    ),
    row(
      'Unit',
      'StopWhenUnneeded',
      'boolean',
      asBool,
      (c, v) => (c.unit.stopWhenUnneeded = v),
      (c) => (c.unit.stopWhenUnneeded = false),
    ),
    row(
      'Unit',
      'RefuseManualStart',
      'boolean',
      asBool,
      (c, v) => (c.unit.refuseManualStart = v),
      (c) => (c.unit.refuseManualStart = false),
    ),
    row(
      'Unit',
      'RefuseManualStop',
      'boolean',
      asBool,
      (c, v) => (c.unit.refuseManualStop = v),
      (c) => (c.unit.refuseManualStop = false),
    ),
    row(
      'Unit',
      'AllowIsolate',
      'boolean',
      asBool,
      (c, v) => (c.unit.allowIsolate = v),
      (c) => (c.unit.allowIsolate = false),
    ),
    row(
      'Unit',
      'IgnoreOnIsolate',
      'boolean',
      asBool,
      (c, v) => (c.unit.ignoreOnIsolate = v),
      (c) => (c.unit.ignoreOnIsolate = IGNORE_ON_ISOLATE_BY_DEFAULT.has(c.suffix)),
    ),
    row(
      'Unit',
      'OnFailureJobMode',
      'job-mode',
      asEnum(JOB_MODES),
      (c, v) => (c.unit.onFailureJobMode = v),
      (c) => (c.unit.onFailureJobMode = 'replace'),
    ),
    row(
      'Unit',
      'OnFailureIsolate',
      'boolean',
      asBool,
      (c, v) => (c.unit.onFailureJobMode = v ? 'isolate' : 'replace'),
      (c) => (c.unit.onFailureJobMode = 'replace'),
      {
        legacy: {
          canonical: 'OnFailureJobMode',
          code: KEY_CODES.deprecatedKey,
          note: 'use OnFailureJobMode=isolate',
        },
      },
    ),
    row(
      'Unit',
      'JobTimeoutSec',
      'timespan',
      asTimeout,
      (c, v) => (c.unit.jobTimeoutMs = v),
      (c) => (c.unit.jobTimeoutMs = Infinity),
    ),
    row(
      'Unit',
      'JobRunningTimeoutSec',
      'timespan',
      asTimeout,
      (c, v) => (c.unit.jobRunningTimeoutMs = v),
      (c) => (c.unit.jobRunningTimeoutMs = Infinity),
    ),
    ...startLimitRows('Unit'),
    row(
      'Unit',
      'CollectMode',
      'enum',
      asEnum(COLLECT_MODES),
      (c, v) => (c.unit.collectMode = v),
      (c) => (c.unit.collectMode = 'inactive'),
    ),
    row(
      'Unit',
      'SourcePath',
      'path',
      absolutePath,
      (c, v) => (c.unit.sourcePath = v),
      (c) => (c.unit.sourcePath = undefined),
      { expand: true },
    ),
  ];
  const depAliases: [string, DependencyKind, string | undefined][] = [
    ['BindTo', 'BindsTo', undefined],
    ['PropagateReloadTo', 'PropagatesReloadTo', undefined],
    ['PropagateReloadFrom', 'ReloadPropagatedFrom', undefined],
    ['RequiresOverridable', 'Requires', 'RequiresOverridable= is obsolete; treated as Requires='],
    ['RequisiteOverridable', 'Requisite', 'RequisiteOverridable= is obsolete; treated as Requisite='],
  ];
  const depRow = (key: string, kind: DependencyKind, legacy?: LegacyInfo): KeyRow =>
    row(
      'Unit',
      key,
      'unit-list',
      unitNameList(),
      (c, v) => appendUnique(c.unit.dependencies[kind], v),
      // systemd cannot drop dependencies: an empty assignment does nothing.
      () => undefined,
      { legacy },
    );
  for (const kind of DEPENDENCY_KINDS) rows.push(depRow(kind, kind));
  for (const [key, kind, note] of depAliases) {
    rows.push(
      depRow(key, kind, {
        canonical: kind,
        code: note === undefined ? undefined : KEY_CODES.deprecatedKey,
        note,
      }),
    );
  }
  for (const name of CONDITION_NAMES)
    rows.push(conditionRow('condition', name), conditionRow('assert', name));
  // Not implemented, but a SuccessAction= makes a service without ExecStart= valid in systemd.
  rows.push({
    section: 'Unit',
    key: 'SuccessAction',
    type: 'emergency-action',
    unsupported: true,
    apply(cfg, value) {
      cfg.successAction = value === '' || value === 'none' ? undefined : value;
    },
  });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// [Install]

function installRows(): KeyRow[] {
  const o: RowOptions = { install: true };
  return [
    row(
      'Install',
      'WantedBy',
      'unit-list',
      unitNameList(),
      (c, v) => appendUnique(c.install.wantedBy, v),
      (c) => (c.install.wantedBy = []),
      o,
    ),
    row(
      'Install',
      'RequiredBy',
      'unit-list',
      unitNameList(),
      (c, v) => appendUnique(c.install.requiredBy, v),
      (c) => (c.install.requiredBy = []),
      o,
    ),
    row(
      'Install',
      'UpheldBy',
      'unit-list',
      unitNameList(),
      (c, v) => appendUnique(c.install.upheldBy, v),
      (c) => (c.install.upheldBy = []),
      o,
    ),
    row(
      'Install',
      'Also',
      'unit-list',
      unitNameList(),
      (c, v) => appendUnique(c.install.also, v),
      (c) => (c.install.also = []),
      o,
    ),
    row(
      'Install',
      'Alias',
      'unit-list',
      unitNameList(),
      (c, v, ctx) => {
        // systemd.unit(5): an alias has the same type suffix as the unit.
        for (const name of v) {
          if (parseUnitName(name)?.suffix === c.suffix) appendUnique(c.install.alias, [name]);
          else
            ctx.report('warning', KEY_CODES.badValue, `alias ${name} does not end in .${c.suffix}, ignored`);
        }
      },
      (c) => (c.install.alias = []),
      o,
    ),
    row(
      'Install',
      'DefaultInstance',
      'string',
      (t) =>
        /^[A-Za-z0-9:_.\\@-]+$/.test(t) ? ok(t) : fail(`not a valid instance name: ${JSON.stringify(t)}`),
      (c, v) => (c.install.defaultInstance = v),
      (c) => (c.install.defaultInstance = undefined),
      { expand: true, install: true },
    ),
  ];
}

// ---------------------------------------------------------------------------------------------
// [Service]: exec, kill and service settings

const SERVICE_TYPES: readonly ServiceType[] = [
  'simple',
  'exec',
  'forking',
  'oneshot',
  'dbus',
  'notify',
  'notify-reload',
  'idle',
];
const RESTART_POLICIES: readonly RestartPolicy[] = [
  'no',
  'on-success',
  'on-failure',
  'on-abnormal',
  'on-watchdog',
  'on-abort',
  'always',
];
const NOTIFY_ACCESS: readonly NotifyAccess[] = ['none', 'main', 'exec', 'all'];
const KILL_MODES: readonly KillMode[] = ['control-group', 'mixed', 'process', 'none'];

const EXEC_KEYS = [
  ['ExecCondition', 'execCondition'],
  ['ExecStartPre', 'execStartPre'],
  ['ExecStart', 'execStart'],
  ['ExecStartPost', 'execStartPost'],
  ['ExecReload', 'execReload'],
  ['ExecStop', 'execStop'],
  ['ExecStopPost', 'execStopPost'],
] as const;

function execRows(): KeyRow[] {
  return EXEC_KEYS.map(([key, field]) =>
    row(
      'Service',
      key,
      'exec',
      (t, _ctx, expandWord) => parseExecLine(t, expandWord),
      (c, v, ctx) => {
        for (const cmd of v) c.service[field].push({ ...cmd, source: ctx.source } satisfies ExecCommand);
      },
      (c) => (c.service[field] = []),
      { fatal: true },
    ),
  );
}

function parseStandardInput(t: string): ParseResult<StandardInput> {
  switch (t) {
    case 'null':
      return ok({ kind: 'null' });
    case 'tty':
    case 'tty-force':
    case 'tty-fail':
      // The path comes from TTYPath= once the whole file is read.
      return ok({ kind: 'tty', path: '' });
    case 'socket':
      return ok({ kind: 'socket' });
    case 'data':
      return ok({ kind: 'data', data: Buffer.alloc(0) });
  }
  if (t.startsWith('file:')) {
    const p = absolutePath(t.slice(5));
    return p.ok ? ok({ kind: 'file', path: p.value }) : p;
  }
  if (t === 'fd' || t.startsWith('fd:')) return fail('fd:NAME is not supported by triggerd');
  return fail(`not a standard input setting: ${JSON.stringify(t)}`);
}

function parseStandardOutput(t: string): ParseResult<StandardOutput> {
  switch (t) {
    case 'inherit':
      return ok({ kind: 'inherit' });
    case 'null':
      return ok({ kind: 'null' });
    case 'tty':
      return ok({ kind: 'tty' });
    // "+console" copies are not modelled; "syslog" has meant the journal since systemd 246.
    case 'journal':
    case 'journal+console':
    case 'syslog':
    case 'syslog+console':
      return ok({ kind: 'journal' });
    case 'kmsg':
    case 'kmsg+console':
      return ok({ kind: 'kmsg' });
    case 'socket':
      return ok({ kind: 'socket' });
  }
  for (const kind of ['file', 'append', 'truncate'] as const) {
    if (t.startsWith(`${kind}:`)) {
      const p = absolutePath(t.slice(kind.length + 1));
      return p.ok ? ok({ kind, path: p.value }) : p;
    }
  }
  if (t === 'fd' || t.startsWith('fd:')) return fail('fd:NAME is not supported by triggerd');
  return fail(`not a standard output setting: ${JSON.stringify(t)}`);
}

/** User=/Group=: systemd accepts loose names but warns about ones that are not portable. */
function parseUserName(t: string): ParseResult<string> {
  if (/^[0-9]+$/.test(t)) return Number(t) < 2 ** 32 - 1 ? ok(t) : fail(`id out of range: ${t}`);
  // eslint-disable-next-line no-control-regex
  if (t.includes(':') || t.includes('/') || /[\x00-\x1f\x7f]/.test(t) || t.length > 256) {
    return fail(`not a valid user or group name: ${JSON.stringify(t)}`);
  }
  if (!/^[A-Za-z_][A-Za-z0-9_-]{0,30}$/.test(t)) {
    return ok(t, [`${JSON.stringify(t)} does not follow the portable user/group name rules`]);
  }
  return ok(t);
}

function execContextRows(): KeyRow[] {
  const pathListRow = (
    key: string,
    field: 'readOnlyPaths' | 'readWritePaths' | 'inaccessiblePaths',
    legacy?: LegacyInfo,
  ): KeyRow =>
    row(
      'Service',
      key,
      'path-list',
      (t, _c, e) => parsePathList(t, { prefixes: '-+' }, e),
      (c, v) => appendAll(ex(c)[field], v),
      (c) => (ex(c)[field] = []),
      { legacy },
    );
  const dirRow = (
    key: string,
    field:
      'runtimeDirectory' | 'stateDirectory' | 'cacheDirectory' | 'logsDirectory' | 'configurationDirectory',
  ): KeyRow =>
    row(
      'Service',
      key,
      'relative-path-list',
      (t, _c, e) => parsePathList(t, { relative: 'require' }, e),
      (c, v) => appendUnique(ex(c)[field], v),
      (c) => (ex(c)[field] = []),
    );
  const rows: KeyRow[] = [
    row(
      'Service',
      'User',
      'user',
      parseUserName,
      (c, v) => (ex(c).user = v),
      (c) => (ex(c).user = undefined),
      { expand: true },
    ),
    row(
      'Service',
      'Group',
      'group',
      parseUserName,
      (c, v) => (ex(c).group = v),
      (c) => (ex(c).group = undefined),
      { expand: true },
    ),
    row(
      'Service',
      'SupplementaryGroups',
      'group-list',
      (t, _c, e) => {
        const w = parseWordList(t, e);
        if (!w.ok) return w;
        const warnings: string[] = [];
        const good = w.value.filter((g) => {
          const r = parseUserName(g);
          if (!r.ok) warnings.push(`${r.message}, ignored`);
          return r.ok;
        });
        return ok(good, warnings);
      },
      (c, v) => appendUnique(ex(c).supplementaryGroups, v),
      (c) => (ex(c).supplementaryGroups = []),
    ),
    row(
      'Service',
      'WorkingDirectory',
      'path',
      (t) => {
        const optional = t.startsWith('-');
        const p = optional ? t.slice(1) : t;
        if (p !== '~' && !p.startsWith('/'))
          return fail(`WorkingDirectory= path is not absolute: ${JSON.stringify(p)}`);
        return ok({ path: p, optional });
      },
      (c, v) => {
        ex(c).workingDirectory = v.path;
        ex(c).workingDirectoryOptional = v.optional;
      },
      (c) => {
        ex(c).workingDirectory = undefined;
        ex(c).workingDirectoryOptional = false;
      },
      { expand: true, fatal: true },
    ),
    row(
      'Service',
      'RootDirectory',
      'path',
      absolutePath,
      (c, v) => (ex(c).rootDirectory = v),
      (c) => (ex(c).rootDirectory = undefined),
      { expand: true, fatal: true },
    ),
    row(
      'Service',
      'UMask',
      'mode',
      (t) => parseMode(t),
      (c, v) => (ex(c).umask = v),
      (c) => (ex(c).umask = 0o022),
    ),
    row(
      'Service',
      'Environment',
      'environment',
      (t, _c, e) => parseEnvironmentLine(t, e),
      (c, v) => appendAll(ex(c).environment, v),
      (c) => (ex(c).environment = []),
    ),
    row(
      'Service',
      'EnvironmentFile',
      'path',
      (t) => {
        const optional = t.startsWith('-');
        const p = absolutePath(optional ? t.slice(1) : t);
        return p.ok ? ok({ path: p.value, optional }) : p;
      },
      (c, v) => ex(c).environmentFiles.push(v),
      (c) => (ex(c).environmentFiles = []),
      { expand: true },
    ),
    row(
      'Service',
      'UnsetEnvironment',
      'word-list',
      (t, _c, e) => parseWordList(t, e),
      (c, v) => appendUnique(ex(c).unsetEnvironment, v),
      (c) => (ex(c).unsetEnvironment = []),
    ),
    row(
      'Service',
      'PassEnvironment',
      'word-list',
      (t, _c, e) => {
        const w = parseWordList(t, e);
        if (!w.ok) return w;
        const good = w.value.filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
        return ok(
          good,
          w.value.filter((n) => !good.includes(n)).map((n) => `not a valid variable name, ignored: ${n}`),
        );
      },
      (c, v) => appendUnique(ex(c).passEnvironment, v),
      (c) => (ex(c).passEnvironment = []),
    ),
    row(
      'Service',
      'StandardInput',
      'standard-input',
      parseStandardInput,
      (c, v) => (ex(c).standardInput = v),
      (c) => (ex(c).standardInput = { kind: 'null' }),
      { expand: true },
    ),
    row(
      'Service',
      'StandardOutput',
      'standard-output',
      parseStandardOutput,
      (c, v) => (ex(c).standardOutput = v),
      (c) => (ex(c).standardOutput = { kind: 'journal' }),
      { expand: true },
    ),
    row(
      'Service',
      'StandardError',
      'standard-output',
      parseStandardOutput,
      // For stderr, "inherit" means "whatever stdout is".
      (c, v) => (ex(c).standardError = v.kind === 'inherit' ? { kind: 'inherit-output' } : v),
      (c) => (ex(c).standardError = { kind: 'inherit-output' }),
      { expand: true },
    ),
    row(
      'Service',
      'StandardInputText',
      'string',
      (t) => unescapeC(t),
      (c, v) => c.stdinData.push(Buffer.from(`${v}\n`, 'utf8')),
      (c) => (c.stdinData = []),
      { expand: true, marks: ['Service.StandardInputData'] },
    ),
    row(
      'Service',
      'StandardInputData',
      'base64',
      (t) => {
        const compact = t.replace(/\s+/g, '');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0)
          return fail('not valid base64');
        return ok(Buffer.from(compact, 'base64'));
      },
      (c, v) => c.stdinData.push(v),
      (c) => (c.stdinData = []),
    ),
    row(
      'Service',
      'TTYPath',
      'path',
      absolutePath,
      (c, v) => (c.ttyPath = v),
      (c) => (c.ttyPath = undefined),
      { expand: true },
    ),
    row(
      'Service',
      'SyslogIdentifier',
      'string',
      asString,
      (c, v) => (ex(c).syslogIdentifier = v),
      (c) => (ex(c).syslogIdentifier = undefined),
      { expand: true },
    ),
    row(
      'Service',
      'Nice',
      'integer',
      (t) => parseInteger(t, -20, 19),
      (c, v) => (ex(c).nice = v),
      (c) => (ex(c).nice = undefined),
    ),
    row(
      'Service',
      'OOMScoreAdjust',
      'integer',
      (t) => parseInteger(t, -1000, 1000),
      (c, v) => (ex(c).oomScoreAdjust = v),
      (c) => (ex(c).oomScoreAdjust = undefined),
    ),
    row(
      'Service',
      'NoNewPrivileges',
      'boolean',
      asBool,
      (c, v) => (ex(c).noNewPrivileges = v),
      (c) => (ex(c).noNewPrivileges = false),
    ),
    row(
      'Service',
      'PrivateTmp',
      'boolean',
      asBool,
      (c, v) => (ex(c).privateTmp = v),
      (c) => (ex(c).privateTmp = false),
    ),
    row(
      'Service',
      'PrivateNetwork',
      'boolean',
      asBool,
      (c, v) => (ex(c).privateNetwork = v),
      (c) => (ex(c).privateNetwork = false),
    ),
    row(
      'Service',
      'PrivateDevices',
      'boolean',
      asBool,
      (c, v) => (ex(c).privateDevices = v),
      (c) => (ex(c).privateDevices = false),
    ),
    row(
      'Service',
      'ProtectSystem',
      'boolean-or',
      (t) => parseBooleanOr<ProtectSystem>(['full', 'strict'], 'yes', 'no', t),
      (c, v) => (ex(c).protectSystem = v),
      (c) => (ex(c).protectSystem = 'no'),
    ),
    row(
      'Service',
      'ProtectHome',
      'boolean-or',
      (t) => parseBooleanOr<ProtectHome>(['read-only', 'tmpfs'], 'yes', 'no', t),
      (c, v) => (ex(c).protectHome = v),
      (c) => (ex(c).protectHome = 'no'),
    ),
    pathListRow('ReadOnlyPaths', 'readOnlyPaths'),
    pathListRow('ReadWritePaths', 'readWritePaths'),
    pathListRow('InaccessiblePaths', 'inaccessiblePaths'),
    pathListRow('ReadOnlyDirectories', 'readOnlyPaths', {
      canonical: 'ReadOnlyPaths',
      code: KEY_CODES.deprecatedKey,
    }),
    pathListRow('ReadWriteDirectories', 'readWritePaths', {
      canonical: 'ReadWritePaths',
      code: KEY_CODES.deprecatedKey,
    }),
    pathListRow('InaccessibleDirectories', 'inaccessiblePaths', {
      canonical: 'InaccessiblePaths',
      code: KEY_CODES.deprecatedKey,
    }),
    row(
      'Service',
      'CapabilityBoundingSet',
      'capability-list',
      (t) => parseCapabilityList(t),
      (c, a) => (ex(c).capabilityBoundingSet = applyCapabilityAssignment(ex(c).capabilityBoundingSet, a)),
      // '' is "the empty set", not "back to the default" (systemd.exec(5)).
      (c) => (ex(c).capabilityBoundingSet = 0n),
    ),
    row(
      'Service',
      'AmbientCapabilities',
      'capability-list',
      (t) => parseCapabilityList(t),
      // An untouched ambient set (0) counts as "not configured", so "~X" means "all but X".
      (c, a) => {
        const cur = ex(c).ambientCapabilities;
        ex(c).ambientCapabilities = applyCapabilityAssignment(cur === 0n ? undefined : cur, a);
      },
      (c) => (ex(c).ambientCapabilities = 0n),
    ),
    dirRow('RuntimeDirectory', 'runtimeDirectory'),
    dirRow('StateDirectory', 'stateDirectory'),
    dirRow('CacheDirectory', 'cacheDirectory'),
    dirRow('LogsDirectory', 'logsDirectory'),
    dirRow('ConfigurationDirectory', 'configurationDirectory'),
    row(
      'Service',
      'RuntimeDirectoryMode',
      'mode',
      (t) => parseMode(t),
      (c, v) => (ex(c).runtimeDirectoryMode = v),
      (c) => (ex(c).runtimeDirectoryMode = 0o755),
    ),
    row(
      'Service',
      'RuntimeDirectoryPreserve',
      'boolean-or',
      (t) => parseBooleanOr(['restart'] as const, 'yes', 'no', t),
      (c, v) => (ex(c).runtimeDirectoryPreserve = v),
      (c) => (ex(c).runtimeDirectoryPreserve = 'no'),
    ),
    row(
      'Service',
      'TimerSlackNSec',
      'timespan-ns',
      (t) => {
        const r = parseTimeSpanUsec(t, { defaultUnit: 'ns', allowNs: true });
        return r.ok ? ok(Math.round(r.value * 1000)) : r;
      },
      (c, v) => (ex(c).timerSlackNsec = v),
      (c) => (ex(c).timerSlackNsec = undefined),
    ),
  ];
  for (const resource of Object.keys(RLIMIT_UNITS)) {
    rows.push(
      row(
        'Service',
        `Limit${resource.toUpperCase()}`,
        'rlimit',
        (t) => parseResourceLimit(resource, t),
        (c, v) => {
          const limits = ex(c).limits.filter((l) => l.resource !== resource);
          ex(c).limits = [...limits, v];
        },
        (c) => (ex(c).limits = ex(c).limits.filter((l) => l.resource !== resource)),
      ),
    );
  }
  return rows;
}

function killRows(): KeyRow[] {
  return [
    row(
      'Service',
      'KillMode',
      'enum',
      asEnum(KILL_MODES),
      (c, v) => (kl(c).killMode = v),
      (c) => (kl(c).killMode = 'control-group'),
    ),
    row(
      'Service',
      'KillSignal',
      'signal',
      asSignal,
      (c, v) => (kl(c).killSignal = v),
      (c) => (kl(c).killSignal = 15),
    ),
    row(
      'Service',
      'RestartKillSignal',
      'signal',
      asSignal,
      (c, v) => (kl(c).restartKillSignal = v),
      (c) => (kl(c).restartKillSignal = undefined),
    ),
    row(
      'Service',
      'FinalKillSignal',
      'signal',
      asSignal,
      (c, v) => (kl(c).finalKillSignal = v),
      (c) => (kl(c).finalKillSignal = 9),
    ),
    row(
      'Service',
      'WatchdogSignal',
      'signal',
      asSignal,
      (c, v) => (kl(c).watchdogSignal = v),
      (c) => (kl(c).watchdogSignal = 6),
    ),
    row(
      'Service',
      'SendSIGKILL',
      'boolean',
      asBool,
      (c, v) => (kl(c).sendSIGKILL = v),
      (c) => (kl(c).sendSIGKILL = true),
    ),
    row(
      'Service',
      'SendSIGHUP',
      'boolean',
      asBool,
      (c, v) => (kl(c).sendSIGHUP = v),
      (c) => (kl(c).sendSIGHUP = false),
    ),
  ];
}

function serviceRows(): KeyRow[] {
  const statusRow = (
    key: string,
    field: 'successExitStatus' | 'restartPreventExitStatus' | 'restartForceExitStatus',
  ): KeyRow =>
    row(
      'Service',
      key,
      'exit-status-list',
      (t) => parseExitStatusSet(t),
      (c, v) => {
        const cur = svc(c)[field];
        svc(c)[field] = {
          codes: [...new Set([...cur.codes, ...v.codes])],
          signals: [...new Set([...cur.signals, ...v.signals])],
        };
      },
      (c) => (svc(c)[field] = emptyStatusSet()),
    );
  return [
    row(
      'Service',
      'Type',
      'enum',
      asEnum(SERVICE_TYPES),
      (c, v) => (svc(c).type = v),
      (c) => (svc(c).type = 'simple'),
    ),
    row(
      'Service',
      'RemainAfterExit',
      'boolean',
      asBool,
      (c, v) => (svc(c).remainAfterExit = v),
      (c) => (svc(c).remainAfterExit = false),
    ),
    row(
      'Service',
      'GuessMainPID',
      'boolean',
      asBool,
      (c, v) => (svc(c).guessMainPID = v),
      (c) => (svc(c).guessMainPID = true),
    ),
    row(
      'Service',
      'PIDFile',
      'path',
      // systemd.service(5): a relative PIDFile= is taken relative to /run.
      (t) => ok(t.startsWith('/') ? t : `/run/${t}`),
      (c, v) => (svc(c).pidFile = v),
      (c) => (svc(c).pidFile = undefined),
      { expand: true },
    ),
    row(
      'Service',
      'BusName',
      'string',
      (t) => (/^[A-Za-z0-9_.:-]+$/.test(t) ? ok(t) : fail(`not a D-Bus name: ${JSON.stringify(t)}`)),
      (c, v) => (svc(c).busName = v),
      (c) => (svc(c).busName = undefined),
      { expand: true },
    ),
    ...execRows(),
    row(
      'Service',
      'Restart',
      'enum',
      asEnum(RESTART_POLICIES),
      (c, v) => (svc(c).restart = v),
      (c) => (svc(c).restart = 'no'),
    ),
    row(
      'Service',
      'RestartSec',
      'timespan',
      asTime,
      (c, v) => (svc(c).restartSecMs = v),
      (c) => (svc(c).restartSecMs = 100),
    ),
    row(
      'Service',
      'RestartSteps',
      'unsigned',
      (t) => parseUnsigned(t, 2000),
      (c, v) => (svc(c).restartSteps = v),
      (c) => (svc(c).restartSteps = 0),
    ),
    row(
      'Service',
      'RestartMaxDelaySec',
      'timespan',
      asTime,
      (c, v) => (svc(c).restartMaxDelaySecMs = v),
      (c) => (svc(c).restartMaxDelaySecMs = Infinity),
    ),
    row(
      'Service',
      'TimeoutStartSec',
      'timespan',
      asTimeout,
      (c, v) => (svc(c).timeoutStartMs = v),
      (c) => (svc(c).timeoutStartMs = 90 * SEC),
    ),
    row(
      'Service',
      'TimeoutStopSec',
      'timespan',
      asTimeout,
      (c, v) => (svc(c).timeoutStopMs = v),
      (c) => (svc(c).timeoutStopMs = 90 * SEC),
    ),
    row(
      'Service',
      'TimeoutSec',
      'timespan',
      asTimeout,
      (c, v) => {
        svc(c).timeoutStartMs = v;
        svc(c).timeoutStopMs = v;
      },
      (c) => {
        svc(c).timeoutStartMs = 90 * SEC;
        svc(c).timeoutStopMs = 90 * SEC;
      },
      { marks: ['Service.TimeoutStartSec', 'Service.TimeoutStopSec'] },
    ),
    row(
      'Service',
      'TimeoutAbortSec',
      'timespan',
      asTimeout,
      (c, v) => (svc(c).timeoutAbortMs = v),
      (c) => (svc(c).timeoutAbortMs = undefined),
    ),
    row(
      'Service',
      'RuntimeMaxSec',
      'timespan',
      asTimeout,
      (c, v) => (svc(c).runtimeMaxMs = v),
      (c) => (svc(c).runtimeMaxMs = Infinity),
    ),
    row(
      'Service',
      'WatchdogSec',
      'timespan',
      asTime,
      (c, v) => (svc(c).watchdogMs = v),
      (c) => (svc(c).watchdogMs = 0),
    ),
    statusRow('SuccessExitStatus', 'successExitStatus'),
    statusRow('RestartPreventExitStatus', 'restartPreventExitStatus'),
    statusRow('RestartForceExitStatus', 'restartForceExitStatus'),
    row(
      'Service',
      'NotifyAccess',
      'enum',
      asEnum(NOTIFY_ACCESS),
      (c, v) => (svc(c).notifyAccess = v),
      (c) => (svc(c).notifyAccess = undefined),
    ),
    row(
      'Service',
      'ReloadSignal',
      'signal',
      asSignal,
      (c, v) => (svc(c).reloadSignal = v),
      (c) => (svc(c).reloadSignal = 1),
    ),
    row(
      'Service',
      'FileDescriptorStoreMax',
      'unsigned',
      (t) => parseUnsigned(t),
      (c, v) => (svc(c).fileDescriptorStoreMax = v),
      (c) => (svc(c).fileDescriptorStoreMax = 0),
    ),
    row(
      'Service',
      'FileDescriptorStorePreserve',
      'boolean-or',
      (t) => parseBooleanOr(['restart'] as const, 'yes', 'no', t),
      (c, v) => (svc(c).fileDescriptorStorePreserve = v),
      (c) => (svc(c).fileDescriptorStorePreserve = 'no'),
    ),
    row(
      'Service',
      'Sockets',
      'unit-list',
      unitNameList(['socket']),
      (c, v) => appendUnique(svc(c).sockets, v),
      // systemd.service(5): clearing Sockets= is not supported.
      () => undefined,
    ),
    row(
      'Service',
      'NonBlocking',
      'boolean',
      asBool,
      (c, v) => (svc(c).nonBlocking = v),
      (c) => (svc(c).nonBlocking = false),
    ),
    // systemd's legacy aliases: rate limiting used to live in [Service].
    ...startLimitRows('Service'),
    ...execContextRows(),
    ...killRows(),
  ];
}

// ---------------------------------------------------------------------------------------------
// [Socket] (systemd.socket(5)); the exec and kill settings come from the [Service] rows above.

/** An interface name → index, for "[fe80::1]:80%eth0" (read only when a scope is named). */
function interfaceIndex(name: string): number | undefined {
  try {
    const n = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'latin1').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

const IPTOS_NAMES: Readonly<Record<string, number>> = {
  'low-delay': 0x10,
  throughput: 0x08,
  reliability: 0x04,
  'low-cost': 0x02,
};

const SOCKET_EXEC_KEYS = [
  ['ExecStartPre', 'execStartPre'],
  ['ExecStartPost', 'execStartPost'],
  ['ExecStopPre', 'execStopPre'],
  ['ExecStopPost', 'execStopPost'],
] as const;

/** The [Service] rows a [Socket] section shares: systemd.exec(5) and systemd.kill(5). */
export const SHARED_EXEC_KEYS: ReadonlySet<string> = new Set(
  [...execContextRows(), ...killRows()].map((r) => r.key),
);

function listenRow(
  key: string,
  kind: ListenEntry['kind'],
  parse: (t: string) => ParseResult<ListenEntry | Omit<ListenEntry, 'source'>>,
): KeyRow {
  return row<Omit<ListenEntry, 'source'>>(
    'Socket',
    key,
    kind === 'fifo' || kind === 'special' ? 'path' : kind === 'mqueue' ? 'mqueue-name' : 'socket-address',
    (t) => parse(t),
    (c, v, ctx) => sock(c).listen.push({ ...v, source: ctx.source } as ListenEntry),
    // systemd.socket(5): an empty assignment to any Listen*= resets the whole list.
    (c) => (sock(c).listen = []),
    { expand: true, fatal: true },
  );
}

function socketAddressRow(key: string, kind: SocketKind): KeyRow {
  return listenRow(key, kind, (t) => {
    const a = parseSocketAddress(t, kind, { interfaceIndex });
    return a.ok ? ok({ kind, address: a.value, text: t }) : a;
  });
}

function socketRows(): KeyRow[] {
  const flag = (
    key: string,
    field:
      | 'freeBind'
      | 'transparent'
      | 'reusePort'
      | 'broadcast'
      | 'keepAlive'
      | 'noDelay'
      | 'passCredentials'
      | 'passSecurity'
      | 'removeOnStop',
  ): KeyRow =>
    row(
      'Socket',
      key,
      'boolean',
      asBool,
      (c, v) => (sock(c)[field] = v),
      (c) => (sock(c)[field] = false),
    );
  const optionalNumber = (
    key: string,
    type: string,
    parse: Parser<number>,
    field:
      | 'keepAliveTimeSec'
      | 'keepAliveIntervalSec'
      | 'keepAliveProbes'
      | 'deferAcceptSec'
      | 'priority'
      | 'receiveBuffer'
      | 'sendBuffer'
      | 'ipTos'
      | 'ipTtl'
      | 'mark'
      | 'messageQueueMaxMessages'
      | 'messageQueueMessageSize'
      | 'triggerLimitIntervalMs'
      | 'triggerLimitBurst'
      | 'pollLimitIntervalMs'
      | 'pollLimitBurst',
  ): KeyRow =>
    row(
      'Socket',
      key,
      type,
      parse,
      (c, v) => (sock(c)[field] = v),
      (c) => (sock(c)[field] = undefined),
    );
  // Seconds for setsockopt, rounded up as systemd does (a non-zero span never becomes 0).
  const seconds: Parser<number> = (t) => {
    const r = parseTimeSpan(t);
    return r.ok ? ok(Math.ceil(r.value / SEC)) : r;
  };
  const rows: KeyRow[] = [
    socketAddressRow('ListenStream', 'stream'),
    socketAddressRow('ListenDatagram', 'dgram'),
    socketAddressRow('ListenSequentialPacket', 'seqpacket'),
    listenRow('ListenNetlink', 'netlink', (t) => {
      const a = parseNetlinkAddress(t);
      return a.ok ? ok({ kind: 'netlink', address: a.value, text: t }) : a;
    }),
    listenRow('ListenFIFO', 'fifo', (t) => {
      const p = absolutePath(t);
      return p.ok ? ok({ kind: 'fifo', path: p.value, text: t }) : p;
    }),
    listenRow('ListenSpecial', 'special', (t) => {
      const p = absolutePath(t);
      return p.ok ? ok({ kind: 'special', path: p.value, text: t }) : p;
    }),
    listenRow('ListenMessageQueue', 'mqueue', (t) =>
      /^\/[^/\0]{1,254}$/.test(t)
        ? ok({ kind: 'mqueue', path: t, text: t })
        : fail(`not a message queue name (one "/" followed by a name): ${JSON.stringify(t)}`),
    ),
    row(
      'Socket',
      'BindIPv6Only',
      'enum',
      asEnum(['default', 'both', 'ipv6-only'] as const),
      (c, v) => (sock(c).bindIPv6Only = v),
      (c) => (sock(c).bindIPv6Only = 'default'),
    ),
    row(
      'Socket',
      'Backlog',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      (c, v) => (sock(c).backlog = v),
      (c) => (sock(c).backlog = 4096),
    ),
    row(
      'Socket',
      'BindToDevice',
      'interface',
      (t) =>
        /^[A-Za-z0-9_.:-]{1,15}$/.test(t) && t !== '.' && t !== '..'
          ? ok(t)
          : fail(`not a network interface name: ${JSON.stringify(t)}`),
      (c, v) => (sock(c).bindToDevice = v),
      (c) => (sock(c).bindToDevice = undefined),
      { expand: true },
    ),
    flag('FreeBind', 'freeBind'),
    flag('Transparent', 'transparent'),
    flag('ReusePort', 'reusePort'),
    flag('Broadcast', 'broadcast'),
    flag('KeepAlive', 'keepAlive'),
    optionalNumber('KeepAliveTimeSec', 'timespan', seconds, 'keepAliveTimeSec'),
    optionalNumber('KeepAliveIntervalSec', 'timespan', seconds, 'keepAliveIntervalSec'),
    optionalNumber('KeepAliveProbes', 'unsigned', (t) => parseUnsigned(t, 0x7fffffff), 'keepAliveProbes'),
    flag('NoDelay', 'noDelay'),
    optionalNumber('DeferAcceptSec', 'timespan', seconds, 'deferAcceptSec'),
    optionalNumber('Priority', 'integer', (t) => parseInteger(t, 0, 0x7fffffff), 'priority'),
    optionalNumber('ReceiveBuffer', 'size', (t) => parseSize(t), 'receiveBuffer'),
    optionalNumber('SendBuffer', 'size', (t) => parseSize(t), 'sendBuffer'),
    optionalNumber(
      'IPTOS',
      'iptos',
      (t) =>
        Object.prototype.hasOwnProperty.call(IPTOS_NAMES, t)
          ? ok(IPTOS_NAMES[t] as number)
          : parseInteger(t, 0, 255),
      'ipTos',
    ),
    optionalNumber('IPTTL', 'integer', (t) => parseInteger(t, 1, 255), 'ipTtl'),
    optionalNumber('Mark', 'integer', (t) => parseInteger(t, 0, 0x7fffffff), 'mark'),
    flag('PassCredentials', 'passCredentials'),
    flag('PassSecurity', 'passSecurity'),
    row(
      'Socket',
      'SocketUser',
      'user',
      parseUserName,
      (c, v) => (sock(c).socketUser = v),
      (c) => (sock(c).socketUser = undefined),
      { expand: true },
    ),
    row(
      'Socket',
      'SocketGroup',
      'group',
      parseUserName,
      (c, v) => (sock(c).socketGroup = v),
      (c) => (sock(c).socketGroup = undefined),
      { expand: true },
    ),
    row(
      'Socket',
      'SocketMode',
      'mode',
      (t) => parseMode(t),
      (c, v) => (sock(c).socketMode = v),
      (c) => (sock(c).socketMode = 0o666),
    ),
    row(
      'Socket',
      'DirectoryMode',
      'mode',
      (t) => parseMode(t),
      (c, v) => (sock(c).directoryMode = v),
      (c) => (sock(c).directoryMode = 0o755),
    ),
    optionalNumber(
      'MessageQueueMaxMessages',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      'messageQueueMaxMessages',
    ),
    optionalNumber(
      'MessageQueueMessageSize',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      'messageQueueMessageSize',
    ),
    flag('RemoveOnStop', 'removeOnStop'),
    row(
      'Socket',
      'Symlinks',
      'path-list',
      (t, _c, e) => parsePathList(t, {}, e),
      (c, v) => appendUnique(sock(c).symlinks, v),
      (c) => (sock(c).symlinks = []),
    ),
    row(
      'Socket',
      'FileDescriptorName',
      'fdname',
      // fdname_is_valid(): at most 255 printable ASCII characters, no ':'.
      (t) =>
        /^[\x20-\x39\x3b-\x7e]{1,255}$/.test(t)
          ? ok(t)
          : fail(
              `not a valid file descriptor name (printable ASCII, no ":", at most 255): ${JSON.stringify(t)}`,
            ),
      (c, v) => (sock(c).fileDescriptorName = v),
      (c) => (sock(c).fileDescriptorName = undefined),
      { expand: true },
    ),
    row(
      'Socket',
      'Service',
      'unit',
      (t) => {
        const p = parseUnitName(t);
        if (p === undefined || p.suffix !== 'service')
          return fail(`not a .service unit name: ${JSON.stringify(t)}`);
        if (p.kind === 'template')
          return fail(`Service= cannot be a template (${t}): name an instance or use Accept=yes`);
        return ok(t);
      },
      (c, v) => (sock(c).service = v),
      (c) => (sock(c).service = undefined),
      { expand: true, fatal: true },
    ),
    row(
      'Socket',
      'Accept',
      'boolean',
      asBool,
      (c, v, ctx) => {
        sock(c).accept = v;
        sock(c).acceptSource = ctx.source;
      },
      (c) => {
        sock(c).accept = false;
        sock(c).acceptSource = undefined;
      },
    ),
    row(
      'Socket',
      'MaxConnections',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      (c, v) => (sock(c).maxConnections = v),
      (c) => (sock(c).maxConnections = 64),
    ),
    row(
      'Socket',
      'MaxConnectionsPerSource',
      'unsigned',
      (t) => parseUnsigned(t, 0x7fffffff),
      (c, v) => (sock(c).maxConnectionsPerSource = v),
      (c) => (sock(c).maxConnectionsPerSource = 0),
    ),
    optionalNumber('TriggerLimitIntervalSec', 'timespan', asTime, 'triggerLimitIntervalMs'),
    optionalNumber('TriggerLimitBurst', 'unsigned', (t) => parseUnsigned(t, 0x7fffffff), 'triggerLimitBurst'),
    optionalNumber('PollLimitIntervalSec', 'timespan', asTime, 'pollLimitIntervalMs'),
    optionalNumber('PollLimitBurst', 'unsigned', (t) => parseUnsigned(t, 0x7fffffff), 'pollLimitBurst'),
    row(
      'Socket',
      'TimeoutSec',
      'timespan',
      asTimeout,
      (c, v) => (sock(c).timeoutMs = v),
      (c) => (sock(c).timeoutMs = 90 * SEC),
    ),
  ];
  for (const [key, field] of SOCKET_EXEC_KEYS) {
    rows.push(
      row(
        'Socket',
        key,
        'exec',
        (t, _ctx, expandWord) => parseExecLine(t, expandWord),
        (c, v, ctx) => {
          for (const cmd of v) sock(c)[field].push({ ...cmd, source: ctx.source } satisfies ExecCommand);
        },
        (c) => (sock(c)[field] = []),
        { fatal: true },
      ),
    );
  }
  return rows;
}

/** [Socket] keys systemd has and triggerd ignores (with a warning), besides the exec/kill ones. */
export const UNSUPPORTED_SOCKET_KEYS: ReadonlySet<string> = new Set([
  'ListenUSBFunction',
  'SocketProtocol',
  'Writable',
  'FlushPending',
  'PassPacketInfo',
  'PassFileDescriptorsToExec',
  'PassPIDFD',
  'AcceptFileDescriptors',
  'Timestamping',
  'TCPCongestion',
  'PipeSize',
  'SmackLabel',
  'SmackLabelIPIn',
  'SmackLabelIPOut',
  'SELinuxContextFromNet',
  'DeferTrigger',
  'DeferTriggerMaxSec',
  'USBFunctionDescriptors',
  'USBFunctionStrings',
]);

// ---------------------------------------------------------------------------------------------
// Known but not implemented

/** [Unit] keys systemd has and triggerd ignores (with a warning). */
export const UNSUPPORTED_UNIT_KEYS: ReadonlySet<string> = new Set([
  'FailureAction',
  'FailureActionExitStatus',
  'SuccessActionExitStatus',
  'IgnoreOnSnapshot',
  'JobTimeoutAction',
  'JobTimeoutRebootArgument',
  'JoinsNamespaceOf',
  'OnSuccessJobMode',
  'PropagatesStopTo',
  'StopPropagatedFrom',
  'RebootArgument',
  'WantsMountsFor',
  'SurviveFinalKillSignal',
  'DebugInvocation',
]);

/** [Service] keys (service, exec, kill and resource-control settings) triggerd ignores. */
export const UNSUPPORTED_SERVICE_KEYS: ReadonlySet<string> = new Set([
  // systemd.service(5)
  'BusPolicy',
  'ExitType',
  'FailureAction',
  'OOMPolicy',
  'OpenFile',
  'PermissionsStartOnly',
  'RebootArgument',
  'RootDirectoryStartOnly',
  'RuntimeRandomizedExtraSec',
  'SysVStartPriority',
  'TimeoutCleanSec',
  'TimeoutStartFailureMode',
  'TimeoutStopFailureMode',
  'USBFunctionDescriptors',
  'USBFunctionStrings',
  'RefreshOnReload',
  // systemd.exec(5)
  'AppArmorProfile',
  'BindLogSockets',
  'BindPaths',
  'BindReadOnlyPaths',
  'CacheDirectoryMode',
  'Capabilities',
  'ConfigurationDirectoryMode',
  'CoredumpFilter',
  'CPUAffinity',
  'CPUSchedulingPolicy',
  'CPUSchedulingPriority',
  'CPUSchedulingResetOnFork',
  'DynamicUser',
  'ExecPaths',
  'ExecSearchPath',
  'ExtensionDirectories',
  'ExtensionImagePolicy',
  'ExtensionImages',
  'IgnoreSIGPIPE',
  'ImportCredential',
  'ImportCredentialEx',
  'IOSchedulingClass',
  'IOSchedulingPriority',
  'IPCNamespacePath',
  'KeyringMode',
  'LoadCredential',
  'LoadCredentialEncrypted',
  'LockPersonality',
  'LogExtraFields',
  'LogFilterPatterns',
  'LogLevelMax',
  'LogNamespace',
  'LogRateLimitBurst',
  'LogRateLimitIntervalSec',
  'LogsDirectoryMode',
  'MemoryDenyWriteExecute',
  'MemoryKSM',
  'MountAPIVFS',
  'MountFlags',
  'MountImagePolicy',
  'MountImages',
  'NetworkNamespacePath',
  'NoExecPaths',
  'NUMAMask',
  'NUMAPolicy',
  'PAMName',
  'Personality',
  'PrivateBPF',
  'PrivateIPC',
  'PrivateMounts',
  'PrivatePIDs',
  'PrivateUsers',
  'ProcSubset',
  'ProtectClock',
  'ProtectControlGroups',
  'ProtectHostname',
  'ProtectKernelLogs',
  'ProtectKernelModules',
  'ProtectKernelTunables',
  'ProtectProc',
  'RemoveIPC',
  'RestrictAddressFamilies',
  'RestrictFileSystems',
  'RestrictNamespaces',
  'RestrictNetworkInterfaces',
  'RestrictRealtime',
  'RestrictSUIDSGID',
  'RootEphemeral',
  'RootHash',
  'RootHashSignature',
  'RootImage',
  'RootImageOptions',
  'RootImagePolicy',
  'RootVerity',
  'SecureBits',
  'SELinuxContext',
  'SetCredential',
  'SetCredentialEncrypted',
  'SetLoginEnvironment',
  'SmackProcessLabel',
  'StateDirectoryMode',
  'SyslogFacility',
  'SyslogLevel',
  'SyslogLevelPrefix',
  'SystemCallArchitectures',
  'SystemCallErrorNumber',
  'SystemCallFilter',
  'SystemCallLog',
  'TemporaryFileSystem',
  'TTYColumns',
  'TTYReset',
  'TTYRows',
  'TTYVHangup',
  'TTYVTDisallocate',
  'UtmpIdentifier',
  'UtmpMode',
  'UserNamespacePath',
  'DelegateNamespaces',
  // systemd.kill(5)
  'SurviveFinalKillSignal',
  // systemd.resource-control(5)
  'AllowedCPUs',
  'AllowedMemoryNodes',
  'BlockIOAccounting',
  'BlockIODeviceWeight',
  'BlockIOReadBandwidth',
  'BlockIOWeight',
  'BlockIOWriteBandwidth',
  'BPFProgram',
  'CPUAccounting',
  'CPUQuota',
  'CPUQuotaPeriodSec',
  'CPUShares',
  'CPUWeight',
  'DefaultMemoryLow',
  'DefaultMemoryMin',
  'DefaultStartupMemoryLow',
  'Delegate',
  'DelegateSubgroup',
  'DeviceAllow',
  'DevicePolicy',
  'DisableControllers',
  'IOAccounting',
  'IODeviceLatencyTargetSec',
  'IODeviceWeight',
  'IOReadBandwidthMax',
  'IOReadIOPSMax',
  'IOWeight',
  'IOWriteBandwidthMax',
  'IOWriteIOPSMax',
  'IPAccounting',
  'IPAddressAllow',
  'IPAddressDeny',
  'IPEgressFilterPath',
  'IPIngressFilterPath',
  'ManagedOOMMemoryPressure',
  'ManagedOOMMemoryPressureDurationSec',
  'ManagedOOMMemoryPressureLimit',
  'ManagedOOMPreference',
  'ManagedOOMSwap',
  'MemoryAccounting',
  'MemoryHigh',
  'MemoryLimit',
  'MemoryLow',
  'MemoryMax',
  'MemoryMin',
  'MemoryPressureThresholdSec',
  'MemoryPressureWatch',
  'MemorySwapMax',
  'MemoryZSwapMax',
  'MemoryZSwapWriteback',
  'NetClass',
  'NFTSet',
  'Slice',
  'SocketBindAllow',
  'SocketBindDeny',
  'StartupAllowedCPUs',
  'StartupAllowedMemoryNodes',
  'StartupBlockIOWeight',
  'StartupCPUShares',
  'StartupCPUWeight',
  'StartupIOWeight',
  'StartupMemoryHigh',
  'StartupMemoryLow',
  'StartupMemoryMax',
  'StartupMemorySwapMax',
  'StartupMemoryZSwapMax',
  'TasksAccounting',
  'TasksMax',
]);

// ---------------------------------------------------------------------------------------------
// Lookup and application

export const KEY_TABLE: readonly KeyRow[] = [
  ...unitRows(),
  ...installRows(),
  ...serviceRows(),
  ...socketRows(),
  ...pathRows(),
  ...timerRows(),
];

const ROWS = new Map<string, KeyRow>(KEY_TABLE.map((r) => [`${r.section}.${r.key}`, r]));

export function findKeyRow(section: string, key: string): KeyRow | undefined {
  return ROWS.get(`${section}.${key}`);
}

/** Sections of other unit types; their content is kept raw for the types that come later. */
export const TYPE_SECTIONS: Readonly<Record<string, string | undefined>> = {
  service: 'Service',
  socket: 'Socket',
  mount: 'Mount',
  automount: 'Automount',
  swap: 'Swap',
  timer: 'Timer',
  path: 'Path',
  slice: 'Slice',
  scope: 'Scope',
  target: undefined,
  device: undefined,
};

export interface ApplyEnv {
  specifiers: SpecifierContext;
  diagnostics: Diagnostic[];
}

function shorten(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Apply the entries of one section to `cfg`, in order. Returns false for a section the tables do
 * not handle (the caller keeps it raw).
 */
export function applySection(
  cfg: UnitConfig,
  section: string,
  entries: SyntaxEntry[],
  env: ApplyEnv,
): boolean {
  if (section === 'X-Triggerd') {
    for (const e of entries) {
      cfg.triggerd[e.key] = e.value;
      (cfg.triggerdSources ??= {})[e.key] = e.source;
      (cfg.triggerdEntries ??= []).push({ key: e.key, value: e.value, source: e.source });
    }
    return true;
  }
  if (
    section !== 'Unit' &&
    section !== 'Install' &&
    !(section === 'Service' && cfg.suffix === 'service') &&
    !(section === 'Socket' && cfg.suffix === 'socket') &&
    !(section === 'Path' && cfg.suffix === 'path') &&
    !(section === 'Timer' && cfg.suffix === 'timer')
  )
    return false;
  for (const e of entries) {
    const report = (severity: Severity, code: string, reason: string): void => {
      env.diagnostics.push({
        severity,
        code,
        message: `${e.source.file}:${e.source.line}: [${section}] ${e.key}=${shorten(e.value)}: ${reason}`,
        source: e.source,
      });
    };
    // systemd.unit(5): keys prefixed "X-" are for applications and ignored.
    if (e.key.startsWith('X-')) continue;
    const r =
      findKeyRow(section, e.key) ??
      (section === 'Socket' && SHARED_EXEC_KEYS.has(e.key) ? findKeyRow('Service', e.key) : undefined);
    const unsupported =
      section === 'Unit'
        ? UNSUPPORTED_UNIT_KEYS
        : section === 'Service'
          ? UNSUPPORTED_SERVICE_KEYS
          : section === 'Socket'
            ? UNSUPPORTED_SOCKET_KEYS.has(e.key)
              ? UNSUPPORTED_SOCKET_KEYS
              : UNSUPPORTED_SERVICE_KEYS
            : undefined;
    if (r === undefined || r.unsupported === true) {
      if (r?.unsupported === true || unsupported?.has(e.key) === true) {
        (cfg.ignoredSettings ??= []).push({ section, key: e.key, value: e.value, source: e.source });
        env.diagnostics.push({
          severity: 'warning',
          code: KEY_CODES.unsupportedKey,
          message: `${e.source.file}:${e.source.line}: key ${e.key} is not supported by triggerd, ignored`,
          source: e.source,
        });
      } else {
        env.diagnostics.push({
          severity: 'warning',
          code: KEY_CODES.unknownKey,
          message: `${e.source.file}:${e.source.line}: unknown key ${e.key} in section [${section}], ignored`,
          source: e.source,
        });
      }
      r?.apply(cfg, e.value, {
        section,
        key: e.key,
        source: e.source,
        expand: (text, allowed) => expandSpecifiers(text, env.specifiers, allowed),
        report,
      });
      continue;
    }
    if (r.legacy?.code === KEY_CODES.legacySection) {
      report(
        'warning',
        KEY_CODES.legacySection,
        `${e.key}= belongs in [Unit], not [${section}]; accepted as systemd's legacy alias of [Unit] ${r.legacy.canonical}=` +
          (r.legacy.note !== undefined ? ` (${r.legacy.note})` : ''),
      );
    } else if (r.legacy?.code !== undefined) {
      report(
        'warning',
        r.legacy.code,
        `${e.key}= is deprecated, use ${r.legacy.canonical}=` +
          (r.legacy.note !== undefined ? ` (${r.legacy.note})` : ''),
      );
    }
    const ctx: KeyContext = {
      section,
      key: e.key,
      source: e.source,
      expand: (text, allowed) => expandSpecifiers(text, env.specifiers, allowed),
      report,
    };
    r.apply(cfg, e.value, ctx);
  }
  return true;
}

function unitDiag(cfg: UnitConfig, env: ApplyEnv, file: string | undefined, message: string): void {
  const source = cfg.serviceSource ?? (file !== undefined ? { file, line: 1 } : undefined);
  env.diagnostics.push({
    severity: 'error',
    code: KEY_CODES.badSetting,
    message: source !== undefined ? `${source.file}:${source.line}: ${message}` : message,
    source,
  });
}

/**
 * Type-dependent defaults and the checks systemd makes before it accepts a service
 * ("bad-setting" in systemd.service(5)). Returns whether the unit is usable.
 */
export function finalizeUnitConfig(cfg: UnitConfig, env: ApplyEnv, fragmentPath?: string): boolean {
  if (cfg.suffix === 'socket') return finalizeSocketConfig(cfg, env, fragmentPath);
  if (cfg.suffix === 'path') return finalizePathConfig(cfg, env, fragmentPath, cfg.triggerdSources);
  if (cfg.suffix === 'timer') return finalizeTimerConfig(cfg, env, fragmentPath, cfg.triggerdSources);
  if (cfg.suffix !== 'service') return !cfg.badSetting;
  const s = cfg.service;
  const e = s.exec;
  s.stdioDefaulted = {
    input: !cfg.explicit.has('Service.StandardInput') && cfg.stdinData.length === 0,
    output: !cfg.explicit.has('Service.StandardOutput'),
  };
  // systemd.service(5): Sockets= implies Wants= and After= on those sockets.
  for (const name of s.sockets) {
    appendUnique(cfg.unit.dependencies.Wants, [name]);
    appendUnique(cfg.unit.dependencies.After, [name]);
  }
  if (!cfg.explicit.has('Service.Type')) {
    // systemd.service(5): dbus if BusName= is set, simple with an ExecStart=, oneshot otherwise.
    s.type = s.busName !== undefined ? 'dbus' : s.execStart.length > 0 ? 'simple' : 'oneshot';
  }
  if (s.type === 'oneshot' && !cfg.explicit.has('Service.TimeoutStartSec')) s.timeoutStartMs = Infinity;
  if (cfg.stdinData.length > 0) {
    const data = Buffer.concat(cfg.stdinData);
    if (!cfg.explicit.has('Service.StandardInput')) e.standardInput = { kind: 'data', data };
    else if (e.standardInput.kind === 'data') e.standardInput = { kind: 'data', data };
  }
  if (e.standardInput.kind === 'tty') e.standardInput = { kind: 'tty', path: cfg.ttyPath ?? '/dev/console' };
  if (
    !cfg.explicit.has('Service.StandardOutput') &&
    (e.standardInput.kind === 'tty' || e.standardInput.kind === 'socket')
  ) {
    e.standardOutput = { kind: 'inherit' };
  }

  const refuse = (message: string): void => {
    unitDiag(cfg, env, fragmentPath, message);
    cfg.badSetting = true;
  };
  if (s.execStart.length === 0 && s.execStop.length === 0 && cfg.successAction === undefined) {
    refuse('service has no ExecStart=, ExecStop= or SuccessAction=, refusing');
  } else if (s.type !== 'oneshot' && s.execStart.length === 0) {
    refuse(`service has no ExecStart=, which only Type=oneshot services may omit (Type=${s.type}), refusing`);
  } else if (s.execStart.length === 0 && !s.remainAfterExit && cfg.successAction === undefined) {
    refuse('service has no ExecStart= and no SuccessAction= and does not set RemainAfterExit=yes, refusing');
  }
  if (s.type !== 'oneshot' && s.execStart.length > 1) {
    refuse(
      `service has more than one ExecStart= command, which only Type=oneshot services may have, refusing`,
    );
  }
  if (s.type === 'oneshot' && (s.restart === 'always' || s.restart === 'on-success')) {
    refuse(`Restart=${s.restart} is not allowed for Type=oneshot services, refusing`);
  }
  if (s.type === 'dbus' && s.busName === undefined) refuse('Type=dbus needs BusName=, refusing');
  return !cfg.badSetting;
}

/** The service an Accept=no socket unit starts: Service=, or the one of its own name. */
export function socketServiceName(socketName: string, section: SocketSection): string {
  if (section.service !== undefined) return section.service;
  return `${socketName.replace(/\.socket$/, '')}.service`;
}

/** The template an Accept=yes socket unit instantiates per connection: foo.socket → foo@.service. */
export function socketTemplateName(socketName: string): string {
  const stem = socketName.replace(/\.socket$/, '');
  const at = stem.indexOf('@');
  return `${at >= 0 ? stem.slice(0, at) : stem}@.service`;
}

function where(source: SourceRef): string {
  return `${source.file}:${source.line}`;
}

/** systemd's socket_verify() checks, with messages that say where and what to do instead. */
function finalizeSocketConfig(cfg: UnitConfig, env: ApplyEnv, fragmentPath?: string): boolean {
  const s = cfg.socket;
  const refuse = (message: string, source?: SourceRef): void => {
    if (source !== undefined) {
      env.diagnostics.push({
        severity: 'error',
        code: KEY_CODES.badSetting,
        message: `${where(source)}: ${message}`,
        source,
      });
    } else unitDiag(cfg, env, fragmentPath, message);
    cfg.badSetting = true;
  };
  if (s.listen.length === 0) {
    refuse(
      'socket unit has no Listen setting (ListenStream=, ListenDatagram=, ListenSequentialPacket=, ListenFIFO=, ' +
        'ListenSpecial=, ListenNetlink= or ListenMessageQueue=), refusing',
    );
  }
  if (s.accept) {
    for (const l of s.listen) {
      const accepting = (l.kind === 'stream' || l.kind === 'seqpacket') && canAccept(l.kind, l.address);
      if (!accepting) {
        refuse(
          `Accept=yes needs connection sockets (ListenStream= or ListenSequentialPacket=), but ${l.text} ` +
            `(${where(l.source)}) cannot accept connections; set Accept=no to hand it to one service`,
          s.acceptSource ?? l.source,
        );
        break;
      }
    }
    if (s.service !== undefined) {
      refuse(
        `Service= cannot be combined with Accept=yes: every connection starts an instance of ` +
          `${socketTemplateName(env.specifiers.unit.name)} (rename the service to that template, or set Accept=no)`,
        s.acceptSource,
      );
    }
    if (s.maxConnections === 0)
      refuse('MaxConnections=0 would refuse every connection, refusing', s.acceptSource);
  }
  if (s.symlinks.length > 0) {
    const nodes = s.listen.filter((l) =>
      'path' in l ? l.kind === 'fifo' : addressPath(l.address) !== undefined,
    );
    if (nodes.length !== 1) {
      refuse(
        `Symlinks= needs exactly one socket or FIFO in the file system to point to (this unit has ${nodes.length}), refusing`,
      );
    }
  }
  // The socket orders itself before what it starts, so one transaction opens it first.
  if (!s.accept) appendUnique(cfg.unit.dependencies.Before, [socketServiceName(env.specifiers.unit.name, s)]);
  return !cfg.badSetting;
}

/** Describe the table, for `triggerctl` and the docs: section, key, value type, legacy note. */
export function describeKeyTable(): { section: string; key: string; type: string; legacy?: string }[] {
  return KEY_TABLE.map((r) => ({
    section: r.section,
    key: r.key,
    type: r.type,
    legacy: r.legacy === undefined ? undefined : `alias of ${r.legacy.canonical}`,
  }));
}
