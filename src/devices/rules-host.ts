// The rules executor's only way out (RulesHost): sysfs reads, the parent chain, the device
// database, programs through the daemon's native runner, and builtins through their registry.
import fs = require('node:fs');
import path = require('node:path');
import type {
  RulesDeviceInfo,
  RulesHost,
  ProgramOutcome,
  BuiltinDevice as RulesBuiltinDevice,
} from './rules/rules-executor';
import type { BuiltinHost } from './builtins/builtin-types';
import { getBuiltin } from './builtins/registry';
import type { DeviceRecord } from './types';
import { runProgram, type ProgramRunner } from './run-programs';
import type { Logger } from '../util/logger';

export interface DaemonRulesHostOptions {
  /** The device database as the registry holds it now. */
  lookup: (devpath: string) => DeviceRecord | undefined;
  builtins: BuiltinHost;
  runner: ProgramRunner;
  logger: Logger;
  sysRoot?: string;
}

function archName(): string {
  return process.arch === 'x64' ? 'x86-64' : process.arch === 'ia32' ? 'x86' : process.arch;
}

export function createRulesHost(options: DaemonRulesHostOptions): RulesHost {
  const sysRoot = options.sysRoot ?? '/sys';
  const { lookup, builtins, runner, logger } = options;
  const syspath = (devpath: string): string => sysRoot + devpath;
  return {
    readAttr: (devpath, name) => builtins.readAttr(syspath(devpath), name),
    parentOf(devpath): RulesDeviceInfo | undefined {
      const parent = builtins.parent(syspath(devpath));
      if (parent === undefined) return undefined;
      const info: RulesDeviceInfo = {
        devpath: parent.devpath,
        kernel: parent.sysname,
        tags: lookup(parent.devpath)?.tags ?? new Set<string>(),
      };
      if (parent.subsystem !== '') info.subsystem = parent.subsystem;
      if (parent.devtype !== undefined) info.devtype = parent.devtype;
      if (parent.devname !== undefined) info.devname = parent.devname;
      const driver = builtins.readAttr(parent.syspath, 'driver');
      if (driver !== undefined) info.driver = driver;
      return info;
    },
    deviceBySubsystemSysname: (subsystem, sysname) =>
      builtins.deviceBySubsystemSysname(subsystem, sysname)?.devpath,
    async runProgram(argv, env, timeoutMs, maxOutputBytes): Promise<ProgramOutcome> {
      const result = await runProgram(argv.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' '), {
        runner,
        env,
        timeoutMs,
        captureStdout: true,
        maxOutputBytes,
        onOutput: (stream, line) => logger.debug({ stream, program: argv[0] }, line),
      });
      return {
        exitCode: result.exit?.code === 'exited' ? result.exit.status : -1,
        stdout: result.stdout,
        timedOut: result.timedOut,
      };
    },
    async runBuiltin(name, argv, device: RulesBuiltinDevice) {
      const builtin = getBuiltin(name);
      if (builtin === undefined) return undefined;
      const result = await builtin(
        argv,
        {
          syspath: syspath(device.devpath),
          devpath: device.devpath,
          subsystem: device.subsystem,
          devtype: device.devtype,
          devname: device.devname,
          sysname: device.kernel,
          properties: device.properties,
        },
        builtins,
      );
      if (!result.ok) {
        logger.debug({ devpath: device.devpath, builtin: name, code: result.code }, result.message);
        return undefined;
      }
      return result.properties;
    },
    readFile(file) {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch {
        return undefined;
      }
    },
    cmdline() {
      try {
        return fs.readFileSync('/proc/cmdline', 'utf8');
      } catch {
        return '';
      }
    },
    dbProperties: (devpath) => lookup(devpath)?.properties,
    sysctl(key) {
      try {
        return fs.readFileSync(path.join('/proc/sys', key.replace(/\./g, '/')), 'utf8').trim();
      } catch {
        return undefined;
      }
    },
    testPath(p, mode) {
      // TEST{} mostly asks for files that are not there: answer without a thrown error.
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(p, { throwIfNoEntry: false });
      } catch {
        return false;
      }
      if (st === undefined) return false;
      return mode === undefined ? true : (st.mode & mode) !== 0;
    },
    constValue: (name) => (name === 'arch' ? archName() : 'none'),
  };
}
