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
import {
  defaultExecContext,
  defaultKillContext,
  defaultServiceSection,
  defaultUnitSection,
} from '../../src/units/unit-keys';

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

// systemd's defaults, as the unit-file loader applies them, with the fields a test cares about.
export function execContext(over: Partial<ExecContext> = {}): ExecContext {
  return { ...defaultExecContext(), ...over };
}

export function killContext(over: Partial<KillContext> = {}): KillContext {
  return { ...defaultKillContext(), ...over };
}

export function serviceSection(over: Partial<ServiceSection> = {}): ServiceSection {
  return { ...defaultServiceSection(), execStart: [command('/bin/daemon')], ...over };
}

export function unitSection(over: Partial<UnitSection> = {}): UnitSection {
  return { ...defaultUnitSection('.service'), ...over };
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
