// What the spawn addon's integration tests share: their preconditions (each a skip reason, or
// false when met) and the plan of a bare command (stdio on /dev/null, a session of its own).
import type { ExecPlan } from '../../src/exec/exec-plan';
import { findCgroupHierarchy } from '../../src/exec/cgroups';

const uid = process.getuid?.() ?? -1;
export const needsRoot: false | string = uid === 0 ? false : `needs root (running as uid ${uid})`;
export const cgroupHierarchy = findCgroupHierarchy();
export const needsCgroup: false | string =
  needsRoot !== false
    ? needsRoot
    : cgroupHierarchy.ok
      ? false
      : `no cgroup2 hierarchy: ${cgroupHierarchy.reason}`;

export const PATH_ENV = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';

export function basicPlan(argv: string[], overrides: Partial<ExecPlan> = {}): ExecPlan {
  return {
    path: argv[0],
    argv,
    env: [PATH_ENV],
    cwd: '/',
    rlimits: [],
    fds: [
      { childFd: 0, parentFd: -1 },
      { childFd: 1, parentFd: -1 },
      { childFd: 2, parentFd: -1 },
    ],
    newSession: true,
    noNewPrivileges: false,
    privateNetwork: false,
    mounts: [],
    ...overrides,
  };
}
