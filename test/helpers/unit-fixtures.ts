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

/** A command from a line split at blanks, or from its argv as given. */
export function command(line: string | string[], prefixes: Partial<ExecCommand> = {}): ExecCommand {
  const argv = typeof line === 'string' ? line.split(' ') : line;
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

/** systemd's defaults, with stdout and stderr inherited so a test sees the output. */
export function inheritingContext(over: Partial<ExecContext> = {}): ExecContext {
  return execContext({ standardOutput: { kind: 'inherit' }, standardError: { kind: 'inherit' }, ...over });
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
