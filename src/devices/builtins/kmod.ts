// IMPORT{builtin}="kmod load [MODULE|MODALIAS...]": load kernel modules for a device. udev uses
// libkmod in-process; triggerd runs `modprobe -b -q` (the blacklist honoured, quiet) through the
// host's program runner, one alias at a time so one bad alias cannot hide the others. Like udev,
// a module that fails to load is not a failure of the builtin; it imports no properties.
import { ERR_BUILTIN_ARGS, ERR_BUILTIN_UNAVAILABLE, fail, succeed } from './builtin-errors';
import type { Builtin, BuiltinResult } from './builtin-types';

export const kmod: Builtin = async (argv, device, host): Promise<BuiltinResult> => {
  if (argv[1] !== 'load') return fail(ERR_BUILTIN_ARGS, `${argv[0] ?? 'kmod'}: expected: load [module…]`);
  let modules = argv.slice(2);
  if (modules.length === 0) {
    // Newer udev loads the device's MODALIAS when no module is named; so do we.
    const modalias = device.properties.get('MODALIAS');
    if (modalias === undefined) return succeed(new Map());
    modules = [modalias];
  }
  if (host.runProgram === undefined) return fail(ERR_BUILTIN_UNAVAILABLE, 'kmod: no program runner');
  for (const module of modules) {
    // '--' keeps an alias that starts with '-' from being read as an option.
    await host.runProgram(['modprobe', '-b', '-q', '--', module]);
  }
  return succeed(new Map());
};
