// The exec plan: everything the native layer needs to fork and exec one process, already
// resolved in TypeScript (absolute path, numeric ids, fd numbers, mount steps). The native side
// only applies it, in order, and reports the step that failed.

/** Child fd n is a dup of `parentFd`, or /dev/null when `parentFd` is -1. */
export interface FdMapping {
  childFd: number;
  parentFd: number;
  /**
   * Set (true) or clear (false) O_NONBLOCK in the child once the fds are in place; undefined
   * leaves it. The flag belongs to the open file description, so the parent's fd sees it too.
   */
  nonBlocking?: boolean;
}

/** One mount-namespace step, applied in order after unshare(CLONE_NEWNS) and making / private. */
export type MountStep =
  | { kind: 'bind'; source: string; target: string; readOnly: boolean; recursive: boolean; optional: boolean }
  /** Mounted nosuid,nodev; `options` are tmpfs's own (size=, nr_inodes=); `optional`: skip a missing target. */
  | { kind: 'tmpfs'; target: string; mode: number; options?: string; optional?: boolean }
  | { kind: 'remount-read-only'; target: string; recursive: boolean; optional: boolean }
  /** An empty, mode-000 mount over the path (InaccessiblePaths=). */
  | { kind: 'inaccessible'; target: string; optional: boolean };

export interface RlimitSetting {
  /** RLIMIT_* number for this platform. */
  resource: number;
  /** -1 for RLIM_INFINITY. */
  soft: number;
  hard: number;
}

export interface ExecPlan {
  /** Absolute path of the executable (PATH already searched). */
  path: string;
  argv: string[];
  /** KEY=VALUE strings, the whole environment. */
  env: string[];
  cwd?: string;
  /** WorkingDirectory=-…: a missing `cwd` is no error, the child starts in / instead. */
  cwdOptional?: boolean;
  /** Set with setresuid/setresgid/setgroups; undefined = keep. */
  uid?: number;
  gid?: number;
  groups?: number[];
  umask?: number;
  nice?: number;
  oomScoreAdjust?: number;
  rlimits: RlimitSetting[];
  /** Fds the child gets; everything else is closed. 0, 1, 2 must be present. */
  fds: FdMapping[];
  /** setsid() in the child (services get their own session). */
  newSession: boolean;
  noNewPrivileges: boolean;
  /** Capabilities kept in the bounding set (bitmask of CAP_* numbers); undefined = unchanged. */
  capabilityBoundingSet?: bigint;
  /** Ambient capabilities to raise (requires keeping them across setuid). */
  ambientCapabilities?: bigint;
  /** New network namespace with only loopback (PrivateNetwork=). */
  privateNetwork: boolean;
  /** Mount namespace steps; empty = share the daemon's mount namespace. */
  mounts: MountStep[];
  /** cgroup v2 directory the child joins before exec (absolute path); undefined = none. */
  cgroup?: string;
  /**
   * With `privateNetwork`: mount a new sysfs on /sys inside the new network namespace (sysfs
   * shows the devices of the namespace that mounted it, so /sys/class/net lists only `lo`), and
   * carry these mounts below /sys over onto it (the top ones: /sys/fs/cgroup, /sys/kernel/debug…).
   * Implies a mount namespace.
   */
  privateSysfs?: { submounts: string[] };
  /**
   * What 'inaccessible' mount steps bind over their target: an empty mode-000 directory and an
   * empty mode-000 file prepared by the caller. Without it a directory gets an empty read-only
   * mode-000 tmpfs and a non-directory cannot be made inaccessible (EOPNOTSUPP).
   */
  inaccessibleSources?: { directory: string; file: string };
  /** Set LISTEN_PID=<the child's pid> in its environment (socket activation), replacing any. */
  setListenPid?: boolean;
}

/** The step names the native layer reports a pre-exec failure at, as systemd's log names them. */
export const EXEC_STEPS = [
  'CGROUP',
  'MOUNT_NAMESPACE',
  'NETWORK',
  'FDS',
  'STDIN',
  'STDOUT',
  'STDERR',
  'LIMITS',
  'OOM_ADJUST',
  'NICE',
  'SETSID',
  'UMASK',
  'GROUP',
  'USER',
  'CHDIR',
  'CAPABILITIES',
  'NO_NEW_PRIVILEGES',
  'EXEC',
] as const;
export type ExecStep = (typeof EXEC_STEPS)[number];
