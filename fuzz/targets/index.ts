// The registry of pure fuzz targets, by name. Each module exports factories taking the corpus
// options; the channel targets (a running daemon) are in ../channels.ts.
import type { AnyFuzzTarget } from '../target';
import type { CorpusOptions } from '../corpus';
import { ueventKernelTarget, ueventLibudevTarget } from './uevent';
import { rulesTarget } from './rules';
import { unitFileTarget } from './unit-file';
import { fstabTarget, mountinfoTarget } from './mounts';
import { calendarTarget, tzifTarget } from './calendar';
import { notifyTarget } from './notify';
import { controlTarget } from './control';
import { kernelRecordsTarget } from './kernel-records';
import { selftestTarget } from './selftest';

const FACTORIES: readonly ((options: CorpusOptions) => AnyFuzzTarget)[] = [
  ueventKernelTarget,
  ueventLibudevTarget,
  rulesTarget,
  unitFileTarget,
  fstabTarget,
  mountinfoTarget,
  calendarTarget,
  tzifTarget,
  notifyTarget,
  controlTarget,
  kernelRecordsTarget,
];

export function pureTargets(options: CorpusOptions): AnyFuzzTarget[] {
  const targets = FACTORIES.map((f) => f(options));
  if (process.env.FUZZ_SELFTEST !== undefined) targets.push(selftestTarget());
  return targets;
}

export function findTarget(name: string, options: CorpusOptions): AnyFuzzTarget {
  const t = pureTargets(options).find((x) => x.name === name);
  if (t === undefined) throw new Error(`no fuzz target named ${JSON.stringify(name)}`);
  return t;
}
