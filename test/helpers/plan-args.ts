// The exec plan in the abuse tables of the two addons that read one: the spawn addon, and the
// socket addon's acceptSpawn (which compiles in the same plan reader). A valid plan, and the
// fields both check alike.
import { arrayArg, INT32_MAX, intArg, objectArg, stringArg, UINT32_MAX, type Arg } from './abuse';

export function validPlan(): Record<string, unknown> {
  return {
    path: '/bin/true',
    argv: ['true'],
    env: ['TRIGGERD_ABUSE=1'],
    rlimits: [],
    fds: [0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 })),
    mounts: [],
  };
}

/** The highest uid or gid a plan may name ((uid_t)-1 means "none" to the kernel). */
export const ID_MAX = UINT32_MAX - 1;

/** path, argv, env, cwd, uid, gid and umask. */
export function commandFieldArgs(): Arg[] {
  return [
    stringArg('path', () => '/bin/true', { absolute: true }),
    arrayArg(
      'argv',
      () => ['true'],
      stringArg('argv[]', () => 'true', { nonEmpty: false, huge: false }),
    ),
    arrayArg(
      'env',
      () => ['A=1'],
      stringArg('env[]', () => 'A=1', { huge: false }),
    ),
    stringArg('cwd', () => '/', { absolute: true, optional: true }),
    intArg('uid', 0, ID_MAX, () => 0, true),
    intArg('gid', 0, ID_MAX, () => 0, true),
    intArg('umask', 0, 0o777, () => 0o22, true),
  ];
}

/** fds: each mapping's childFd and parentFd, plus `more` fields of a mapping. */
export function fdsArg(more: readonly Arg[] = []): Arg {
  return arrayArg(
    'fds',
    () => [0, 1, 2].map((childFd) => ({ childFd, parentFd: -1 })),
    // A fourth mapping, so a bad one never hides a missing 0, 1 or 2.
    objectArg('fds[]', () => ({ childFd: 3, parentFd: -1 }), [
      intArg('childFd', 3, 65535, () => 3),
      intArg('parentFd', -1, INT32_MAX, () => -1),
      ...more,
    ]),
  );
}
