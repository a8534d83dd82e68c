// Parsed unit configurations with systemd's defaults, for tests that do not go through the
// unit-file parser.
import type {
  ExecCommand,
  ExecContext,
  KillContext,
  LoadedUnitFile,
  ServiceSection,
  UnitSection,
} from '../../src/units/config-types';
import { DEPENDENCY_KINDS, type DependencyKind } from '../../src/units/config-types';

export function command(line: string, prefixes: Partial<ExecCommand> = {}): ExecCommand {
  const argv = line.split(' ');
  return {
    path: argv[0] as string,
    argv,
    ignoreFailure: false,
    noEnvExpand: false,
    fullPrivileges: false,
    noSetuidDrop: false,
    ambientFallback: false,
    source: { file: 'test.service', line: 1 },
    ...prefixes,
  };
}

export function execContext(over: Partial<ExecContext> = {}): ExecContext {
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
    ...over,
  };
}

export function killContext(over: Partial<KillContext> = {}): KillContext {
  return {
    killMode: 'control-group',
    killSignal: 15,
    finalKillSignal: 9,
    watchdogSignal: 6,
    sendSIGKILL: true,
    sendSIGHUP: false,
    ...over,
  };
}

export function serviceSection(over: Partial<ServiceSection> = {}): ServiceSection {
  return {
    type: 'simple',
    remainAfterExit: false,
    guessMainPID: true,
    execCondition: [],
    execStartPre: [],
    execStart: [command('/bin/daemon')],
    execStartPost: [],
    execReload: [],
    execStop: [],
    execStopPost: [],
    restart: 'no',
    restartSecMs: 100,
    restartSteps: 0,
    restartMaxDelaySecMs: Infinity,
    timeoutStartMs: 90_000,
    timeoutStopMs: 90_000,
    runtimeMaxMs: Infinity,
    watchdogMs: 0,
    successExitStatus: { codes: [], signals: [] },
    restartPreventExitStatus: { codes: [], signals: [] },
    restartForceExitStatus: { codes: [], signals: [] },
    reloadSignal: 1,
    fileDescriptorStoreMax: 0,
    fileDescriptorStorePreserve: 'no',
    sockets: [],
    nonBlocking: false,
    exec: execContext(),
    kill: killContext(),
    ...over,
  };
}

export function unitSection(over: Partial<UnitSection> = {}): UnitSection {
  const dependencies = Object.fromEntries(DEPENDENCY_KINDS.map((k) => [k, [] as string[]])) as Record<
    DependencyKind,
    string[]
  >;
  return {
    documentation: [],
    dependencies,
    requiresMountsFor: [],
    defaultDependencies: true,
    stopWhenUnneeded: false,
    refuseManualStart: false,
    refuseManualStop: false,
    allowIsolate: false,
    ignoreOnIsolate: false,
    onFailureJobMode: 'replace',
    jobTimeoutMs: Infinity,
    jobRunningTimeoutMs: Infinity,
    startLimitIntervalMs: 10_000,
    startLimitBurst: 5,
    collectMode: 'inactive',
    conditions: [],
    ...over,
  };
}

export function serviceFile(
  name: string,
  service: Partial<ServiceSection> = {},
  unit: Partial<UnitSection> = {},
): LoadedUnitFile {
  return {
    name,
    aliases: [],
    loadState: 'loaded',
    fragmentPath: `/test/${name}`,
    dropInPaths: [],
    instance: '',
    unit: unitSection(unit),
    install: { wantedBy: [], requiredBy: [], upheldBy: [], alias: [], also: [] },
    service: serviceSection(service),
    triggerd: {},
    raw: new Map(),
    diagnostics: [],
  };
}
