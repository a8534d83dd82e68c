// An in-memory RulesHost over a small fixture sysfs tree: devices with attributes, drivers,
// database properties and tags; scripted programs and builtins; files, cmdline, sysctls.
import type { Uevent, UeventAction } from '../../src/devices/types';
import type {
  BuiltinDevice,
  ProgramOutcome,
  RulesDeviceInfo,
  RulesHost,
} from '../../src/devices/rules/rules-executor';

export interface FixtureDevice {
  devpath: string;
  subsystem?: string;
  devtype?: string;
  driver?: string;
  devname?: string;
  major?: number;
  minor?: number;
  attrs?: Record<string, string>;
  /** Extra uevent properties (IFINDEX, ...). */
  uevent?: Record<string, string>;
  db?: Record<string, string>;
  tags?: string[];
}

export type ProgramScript = (argv: readonly string[], env: ReadonlyMap<string, string>) => ProgramOutcome;
export type BuiltinScript = (
  argv: readonly string[],
  device: BuiltinDevice,
) => Map<string, string> | undefined;

export class FakeRulesHost implements RulesHost {
  readonly devices = new Map<string, FixtureDevice>();
  readonly programs = new Map<string, ProgramScript>();
  readonly builtins = new Map<string, BuiltinScript>();
  readonly files = new Map<string, string>();
  readonly paths = new Map<string, number>();
  readonly sysctls = new Map<string, string>();
  readonly calls: string[] = [];
  cmdlineText = '';
  arch = 'x86-64';
  virt = 'kvm';

  constructor(devices: readonly FixtureDevice[]) {
    for (const d of devices) this.devices.set(d.devpath, d);
  }

  info(d: FixtureDevice): RulesDeviceInfo {
    const info: RulesDeviceInfo = {
      devpath: d.devpath,
      kernel: d.devpath.substring(d.devpath.lastIndexOf('/') + 1),
      tags: new Set(d.tags ?? []),
    };
    if (d.subsystem !== undefined) info.subsystem = d.subsystem;
    if (d.devtype !== undefined) info.devtype = d.devtype;
    if (d.driver !== undefined) info.driver = d.driver;
    if (d.devname !== undefined) info.devname = d.devname;
    return info;
  }

  readAttr(devpath: string, name: string): string | undefined {
    this.calls.push(`attr ${devpath} ${name}`);
    const d = this.devices.get(devpath);
    if (d === undefined) return undefined;
    if (name.startsWith('../')) {
      const up = devpath.substring(0, devpath.lastIndexOf('/'));
      return this.readAttr(up, name.substring(3));
    }
    return d.attrs?.[name];
  }

  parentOf(devpath: string): RulesDeviceInfo | undefined {
    let p = devpath;
    for (;;) {
      const slash = p.lastIndexOf('/');
      if (slash <= 0) return undefined;
      p = p.substring(0, slash);
      const d = this.devices.get(p);
      if (d !== undefined) return this.info(d);
    }
  }

  deviceBySubsystemSysname(subsystem: string, sysname: string): string | undefined {
    for (const d of this.devices.values()) {
      if (d.subsystem === subsystem && d.devpath.endsWith('/' + sysname)) return d.devpath;
    }
    return undefined;
  }

  async runProgram(argv: readonly string[], env: ReadonlyMap<string, string>): Promise<ProgramOutcome> {
    this.calls.push(`program ${argv.join(' ')}`);
    const script = this.programs.get(argv[0] ?? '');
    if (script === undefined) return { exitCode: 127, stdout: '' };
    return script(argv, env);
  }

  async runBuiltin(
    name: string,
    argv: readonly string[],
    device: BuiltinDevice,
  ): Promise<Map<string, string> | undefined> {
    this.calls.push(`builtin ${argv.join(' ')}`);
    const script = this.builtins.get(name);
    return script === undefined ? undefined : script(argv, device);
  }

  readFile(path: string): string | undefined {
    return this.files.get(path);
  }

  cmdline(): string {
    return this.cmdlineText;
  }

  dbProperties(devpath: string): ReadonlyMap<string, string> | undefined {
    const db = this.devices.get(devpath)?.db;
    return db === undefined ? undefined : new Map(Object.entries(db));
  }

  sysctl(key: string): string | undefined {
    return this.sysctls.get(key.replace(/\//g, '.'));
  }

  testPath(path: string, mode?: number): boolean {
    this.calls.push(`test ${path}`);
    let perm = this.paths.get(path);
    if (perm === undefined) {
      // Attributes of fixture devices exist as files under /sys.
      for (const d of this.devices.values()) {
        const prefix = `/sys${d.devpath}/`;
        if (path.startsWith(prefix) && d.attrs?.[path.substring(prefix.length)] !== undefined) perm = 0o644;
      }
    }
    if (perm === undefined) return false;
    return mode === undefined ? true : (perm & mode) !== 0;
  }

  constValue(name: 'arch' | 'virt'): string {
    return name === 'arch' ? this.arch : this.virt;
  }

  /** A uevent for one fixture device, as the kernel would send it. */
  event(devpath: string, action: UeventAction = 'add', extra: Record<string, string> = {}): Uevent {
    const d = this.devices.get(devpath);
    if (d === undefined) throw new Error(`no fixture device ${devpath}`);
    const props = new Map<string, string>([
      ['ACTION', action],
      ['DEVPATH', devpath],
      ['SUBSYSTEM', d.subsystem ?? ''],
    ]);
    if (d.major !== undefined) props.set('MAJOR', String(d.major));
    if (d.minor !== undefined) props.set('MINOR', String(d.minor));
    if (d.devname !== undefined) props.set('DEVNAME', d.devname);
    if (d.devtype !== undefined) props.set('DEVTYPE', d.devtype);
    for (const [k, v] of Object.entries(d.uevent ?? {})) props.set(k, v);
    for (const [k, v] of Object.entries(extra)) props.set(k, v);
    props.set('SEQNUM', '100');
    const ev: Uevent = {
      source: 'kernel',
      action,
      devpath,
      subsystem: d.subsystem ?? '',
      seqnum: 100,
      properties: props,
    };
    if (d.devtype !== undefined) ev.devtype = d.devtype;
    if (d.devname !== undefined) ev.devname = d.devname;
    if (d.major !== undefined) ev.major = d.major;
    if (d.minor !== undefined) ev.minor = d.minor;
    return ev;
  }
}
