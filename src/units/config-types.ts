// What a unit file says, after parsing: plain data, no behaviour. The loader (unit-file.ts,
// unit-loader.ts, the key tables) produces these; the unit types, the job engine and the exec
// layer consume them. Times are milliseconds (`Infinity` for "infinity"), sizes bytes.
import type { SocketAddress } from '../native/socket-addon';
import type { AutomountSection } from './automount-config';
import type { MountSection } from '../mounts/mount-config';
import type { CalendarSpec } from '../timers/calendar-spec';

/** Where a setting came from, for diagnostics: "file:line". */
export interface SourceRef {
  file: string;
  line: number;
}

export type Severity = 'error' | 'warning';

/** A load-time diagnostic: names the file and line, and a stable code. */
export interface Diagnostic {
  severity: Severity;
  code: string;
  message: string;
  source?: SourceRef;
}

/** Dependency kinds of [Unit], as systemd names them. */
export const DEPENDENCY_KINDS = [
  'Wants',
  'Requires',
  'Requisite',
  'BindsTo',
  'PartOf',
  'Upholds',
  'Conflicts',
  'OnFailure',
  'OnSuccess',
  'After',
  'Before',
  'PropagatesReloadTo',
  'ReloadPropagatedFrom',
] as const;
export type DependencyKind = (typeof DEPENDENCY_KINDS)[number];

export type JobModeSetting =
  | 'fail'
  | 'replace'
  | 'replace-irreversibly'
  | 'isolate'
  | 'flush'
  | 'ignore-dependencies'
  | 'ignore-requirements';

export type CollectMode = 'inactive' | 'inactive-or-failed';

/** A Condition*=/Assert*= line: checked before start; a failed Condition skips, a failed Assert fails. */
export interface ConditionSpec {
  kind: 'condition' | 'assert';
  /** 'PathExists', 'PathIsDirectory', 'FileNotEmpty', 'Virtualization', ... */
  name: string;
  /** '!' prefix. */
  negate: boolean;
  /** '|' prefix: one of the triggering conditions must hold. */
  trigger: boolean;
  value: string;
  source: SourceRef;
}

/** [Unit] */
export interface UnitSection {
  description?: string;
  documentation: string[];
  /** Unit names per dependency kind, after specifier expansion. */
  dependencies: Record<DependencyKind, string[]>;
  /** RequiresMountsFor= paths. */
  requiresMountsFor: string[];
  defaultDependencies: boolean;
  stopWhenUnneeded: boolean;
  refuseManualStart: boolean;
  refuseManualStop: boolean;
  allowIsolate: boolean;
  ignoreOnIsolate: boolean;
  onFailureJobMode: JobModeSetting;
  jobTimeoutMs: number;
  jobRunningTimeoutMs: number;
  startLimitIntervalMs?: number;
  startLimitBurst?: number;
  startLimitAction?: string;
  collectMode: CollectMode;
  conditions: ConditionSpec[];
  sourcePath?: string;
}

/** [Install] */
export interface InstallSection {
  wantedBy: string[];
  requiredBy: string[];
  upheldBy: string[];
  alias: string[];
  also: string[];
  defaultInstance?: string;
}

/** One Exec*= command line with its prefixes. */
export interface ExecCommand {
  /** Executable as written after prefixes (absolute, or a bare name to search in PATH). */
  path: string;
  /** argv including argv[0] (with '@' the second word becomes argv[0]). */
  argv: string[];
  /** '-': a non-zero exit is recorded but not a failure. */
  ignoreFailure: boolean;
  /** ':': no environment variable substitution. */
  noEnvExpand: boolean;
  /** '+': full privileges, no sandboxing, user, group or capability changes. */
  fullPrivileges: boolean;
  /** '!': user/group changes but no other privilege drops (ambient capabilities kept). */
  noSetuidDrop: boolean;
  /** '!!': like '!' only where ambient capabilities are not supported. */
  ambientFallback: boolean;
  source: SourceRef;
}

export type StandardInput =
  | { kind: 'null' }
  | { kind: 'tty'; path: string }
  | { kind: 'socket' }
  | { kind: 'file'; path: string }
  | { kind: 'data'; data: Buffer };

export type StandardOutput =
  | { kind: 'inherit' }
  | { kind: 'null' }
  | { kind: 'journal' }
  | { kind: 'kmsg' }
  | { kind: 'tty' }
  | { kind: 'socket' }
  | { kind: 'file'; path: string }
  | { kind: 'append'; path: string }
  | { kind: 'truncate'; path: string };

export type ProtectSystem = 'no' | 'yes' | 'full' | 'strict';
export type ProtectHome = 'no' | 'yes' | 'read-only' | 'tmpfs';

export interface ResourceLimit {
  /** RLIMIT_* name without the prefix, lower case as in the key: 'nofile', 'core', ... */
  resource: string;
  /** Bytes / counts / seconds as the resource wants; Infinity for "infinity". */
  soft: number;
  hard: number;
}

/** The settings shared by every unit that runs processes (service, socket, mount, swap). */
export interface ExecContext {
  user?: string;
  group?: string;
  supplementaryGroups: string[];
  workingDirectory?: string;
  /** '~' means the user's home; a leading '-' is kept as `workingDirectoryOptional`. */
  workingDirectoryOptional: boolean;
  rootDirectory?: string;
  umask: number;
  /** KEY=VALUE assignments in order (later ones override). */
  environment: [string, string][];
  /** EnvironmentFile= paths; `optional` for a leading '-'. */
  environmentFiles: { path: string; optional: boolean }[];
  unsetEnvironment: string[];
  passEnvironment: string[];
  limits: ResourceLimit[];
  standardInput: StandardInput;
  standardOutput: StandardOutput;
  standardError: StandardOutput | { kind: 'inherit-output' };
  syslogIdentifier?: string;
  nice?: number;
  oomScoreAdjust?: number;
  noNewPrivileges: boolean;
  privateTmp: boolean;
  privateNetwork: boolean;
  privateDevices: boolean;
  protectSystem: ProtectSystem;
  protectHome: ProtectHome;
  readOnlyPaths: string[];
  readWritePaths: string[];
  inaccessiblePaths: string[];
  /** Bitmask of CAP_* numbers allowed in the bounding set; undefined = all. */
  capabilityBoundingSet?: bigint;
  ambientCapabilities: bigint;
  /** RuntimeDirectory=, StateDirectory=, ...: names below /run, /var/lib, ... */
  runtimeDirectory: string[];
  stateDirectory: string[];
  cacheDirectory: string[];
  logsDirectory: string[];
  configurationDirectory: string[];
  runtimeDirectoryMode: number;
  runtimeDirectoryPreserve: 'no' | 'yes' | 'restart';
  timerSlackNsec?: number;
}

export type ServiceType =
  'simple' | 'exec' | 'forking' | 'oneshot' | 'dbus' | 'notify' | 'notify-reload' | 'idle';

export type RestartPolicy =
  'no' | 'on-success' | 'on-failure' | 'on-abnormal' | 'on-watchdog' | 'on-abort' | 'always';

export type NotifyAccess = 'none' | 'main' | 'exec' | 'all';

export type KillMode = 'control-group' | 'mixed' | 'process' | 'none';

/** Exit statuses and signals named by SuccessExitStatus= and friends. */
export interface ExitStatusSet {
  codes: number[];
  /** Signal numbers. */
  signals: number[];
}

export interface KillContext {
  killMode: KillMode;
  /** Signal numbers. */
  killSignal: number;
  restartKillSignal?: number;
  finalKillSignal: number;
  watchdogSignal: number;
  sendSIGKILL: boolean;
  sendSIGHUP: boolean;
}

/** [Service] */
export interface ServiceSection {
  type: ServiceType;
  /** Explicitly set, or undefined: the loader does not guess (Type=simple by default). */
  remainAfterExit: boolean;
  guessMainPID: boolean;
  pidFile?: string;
  busName?: string;
  execCondition: ExecCommand[];
  execStartPre: ExecCommand[];
  execStart: ExecCommand[];
  execStartPost: ExecCommand[];
  execReload: ExecCommand[];
  execStop: ExecCommand[];
  execStopPost: ExecCommand[];
  restart: RestartPolicy;
  restartSecMs: number;
  restartSteps: number;
  restartMaxDelaySecMs: number;
  timeoutStartMs: number;
  timeoutStopMs: number;
  timeoutAbortMs?: number;
  runtimeMaxMs: number;
  watchdogMs: number;
  successExitStatus: ExitStatusSet;
  restartPreventExitStatus: ExitStatusSet;
  restartForceExitStatus: ExitStatusSet;
  notifyAccess?: NotifyAccess;
  /** Signal sent by notify-reload. */
  reloadSignal: number;
  fileDescriptorStoreMax: number;
  fileDescriptorStorePreserve: 'no' | 'yes' | 'restart';
  sockets: string[];
  nonBlocking: boolean;
  /**
   * StandardInput=/StandardOutput= left at their defaults: an Accept=yes connection instance then
   * gets the connection as stdin and stdout (StandardInput=socket), as inetd services expect.
   */
  stdioDefaulted?: { input: boolean; output: boolean };
  /** StartLimit* accepted here as systemd's legacy aliases (with a diagnostic). */
  exec: ExecContext;
  kill: KillContext;
}

/** One Listen*= line of a .socket unit, parsed; `text` is the value as written, for `status`. */
export type ListenEntry =
  | {
      kind: 'stream' | 'dgram' | 'seqpacket';
      address: SocketAddress;
      text: string;
      source: SourceRef;
    }
  | { kind: 'netlink'; address: SocketAddress; text: string; source: SourceRef }
  | { kind: 'fifo' | 'special' | 'mqueue'; path: string; text: string; source: SourceRef };

export type BindIPv6Only = 'default' | 'both' | 'ipv6-only';

/** [Socket] (systemd.socket(5)); times in ms, sizes in bytes, unset options stay the kernel's. */
export interface SocketSection {
  /** Every Listen*= line in file order (the order of the fds the service gets). */
  listen: ListenEntry[];
  bindIPv6Only: BindIPv6Only;
  backlog: number;
  bindToDevice?: string;
  freeBind: boolean;
  transparent: boolean;
  reusePort: boolean;
  broadcast: boolean;
  keepAlive: boolean;
  keepAliveTimeSec?: number;
  keepAliveIntervalSec?: number;
  keepAliveProbes?: number;
  noDelay: boolean;
  deferAcceptSec?: number;
  priority?: number;
  receiveBuffer?: number;
  sendBuffer?: number;
  ipTos?: number;
  ipTtl?: number;
  mark?: number;
  passCredentials: boolean;
  passSecurity: boolean;
  socketUser?: string;
  socketGroup?: string;
  socketMode: number;
  directoryMode: number;
  messageQueueMaxMessages?: number;
  messageQueueMessageSize?: number;
  removeOnStop: boolean;
  symlinks: string[];
  fileDescriptorName?: string;
  /** Service= (Accept=no only); undefined: the service of the socket's own name. */
  service?: string;
  accept: boolean;
  /** Where Accept= was set, for load-time errors about it. */
  acceptSource?: SourceRef;
  maxConnections: number;
  /** 0: no per-source limit. */
  maxConnectionsPerSource: number;
  /** undefined: systemd's defaults (2 s; 20 activations, 200 with Accept=yes). 0 disables. */
  triggerLimitIntervalMs?: number;
  triggerLimitBurst?: number;
  /** undefined: systemd's defaults (2 s; 15 wake-ups, 150 with Accept=yes). 0 disables. */
  pollLimitIntervalMs?: number;
  pollLimitBurst?: number;
  execStartPre: ExecCommand[];
  execStartPost: ExecCommand[];
  execStopPre: ExecCommand[];
  execStopPost: ExecCommand[];
  timeoutMs: number;
  exec: ExecContext;
  kill: KillContext;
}

/**
 * The five watch kinds of [Path] (systemd.path(5)) and the two of [X-Triggerd] (fanotify:
 * PathChangedRecursive=, PathAccessed=), named as the keys are.
 */
export type PathSpecKind =
  | 'PathExists'
  | 'PathExistsGlob'
  | 'PathChanged'
  | 'PathModified'
  | 'DirectoryNotEmpty'
  | 'PathChangedRecursive'
  | 'PathAccessed';

/** One watch line of [Path]: what to wait for on which absolute path (a glob for PathExistsGlob). */
export interface PathSpecEntry {
  kind: PathSpecKind;
  path: string;
  source: SourceRef;
  /** PathAccessed= only, from [X-Triggerd] HoldAccess=, HoldTimeoutSec= (0: no timeout), HoldOnTimeout=. */
  hold?: boolean;
  holdTimeoutMs?: number;
  holdOnTimeout?: 'allow' | 'deny';
}

/** [Path] (systemd.path(5)) plus its [X-Triggerd] keys; times in ms. */
export interface PathSection {
  /** Every watch line, in file order. */
  specs: PathSpecEntry[];
  /** Unit=; undefined: the .service of the path unit's own name. */
  unit?: string;
  unitSource?: SourceRef;
  makeDirectory: boolean;
  directoryMode: number;
  /** undefined: systemd's defaults (2 s, 200). 0 disables. */
  triggerLimitIntervalMs?: number;
  triggerLimitBurst?: number;
  /**
   * [X-Triggerd] LatchWhileRunning=: keep watching while the triggered unit runs and start it once
   * more when it ends if PathChanged=/PathModified= fired meanwhile. Default yes; no = systemd's.
   */
  latchWhileRunning: boolean;
}

/** The monotonic settings of [Timer] (systemd.timer(5)), named as the keys are. */
export type TimerBase =
  'OnActiveSec' | 'OnBootSec' | 'OnStartupSec' | 'OnUnitActiveSec' | 'OnUnitInactiveSec';

/** [Timer] (systemd.timer(5)) plus [X-Triggerd] StrictSystemdCalendar=; times in µs as systemd keeps them. */
export interface TimerSection {
  /** OnCalendar= lines in file order, parsed (an invalid one refuses the unit at load). */
  calendar: { text: string; spec: CalendarSpec; source: SourceRef }[];
  /** OnActiveSec= & co. in file order. */
  monotonic: { base: TimerBase; usec: number; source: SourceRef }[];
  accuracyUsec: number;
  randomizedDelayUsec: number;
  fixedRandomDelay: boolean;
  persistent: boolean;
  wakeSystem: boolean;
  remainAfterElapse: boolean;
  onClockChange: boolean;
  onTimezoneChange: boolean;
  /** Unit=; undefined: the .service of the timer's own name. */
  unit?: string;
  unitSource?: SourceRef;
  /** [X-Triggerd] StrictSystemdCalendar=yes: systemd's DST behaviour instead of triggerd's. */
  strictSystemdCalendar: boolean;
}

/** [X-Triggerd]: triggerd's own extensions, which systemd ignores. */
export type TriggerdSection = Record<string, string>;

/** Everything the loader knows about one unit, whatever its type. */
export interface LoadedUnitFile {
  /** The unit's name as requested (an instance name for templates: foo@bar.service). */
  name: string;
  /** Other names: symlinks in the unit path and [Install] Alias= that are linked. */
  aliases: string[];
  /** 'loaded' | 'not-found' | 'bad-setting' | 'error' | 'masked'. */
  loadState: 'loaded' | 'not-found' | 'bad-setting' | 'error' | 'masked';
  /** The main file (the template for instances), undefined when not found or masked. */
  fragmentPath?: string;
  dropInPaths: string[];
  /** Template instance ('' for non-instances). */
  instance: string;
  unit: UnitSection;
  install: InstallSection;
  /** The type-specific section, parsed by that type's key table; undefined when absent. */
  service?: ServiceSection;
  socket?: SocketSection;
  /** [Automount], parsed by automount-config.ts. */
  automount?: AutomountSection;
  /** [Mount], parsed by src/mounts/mount-config.ts. */
  mount?: MountSection;
  timer?: TimerSection;
  path?: PathSection;
  triggerd: TriggerdSection;
  /**
   * Lines of systemd keys triggerd knows but does not apply (ProtectKernelTunables=,
   * SystemCallFilter=, ...; warned about at load), verbatim in file order, for `triggerctl security`.
   */
  ignoredSettings?: { section: string; key: string; value: string; source: SourceRef }[];
  /** Sections and keys of other types, kept verbatim for the types that come later (socket, path, ...). */
  raw: Map<string, { key: string; value: string; source: SourceRef }[]>;
  diagnostics: Diagnostic[];
}
