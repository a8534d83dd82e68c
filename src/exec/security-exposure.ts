// How exposed a service is, judged from its sandbox settings, in the spirit of `systemd-analyze
// security`: one check per setting (or capability group), each with a weight and an exposure
// from 0 (protected) to 1 (open); the overall score is their weighted mean on a 0.0–10.0 scale.
//
// Two scores, because triggerd applies only part of systemd.exec(5): `exposure` counts what the
// exec layer really does (exec-context-plan.ts, sandbox-mounts.ts and the native spawn: User=,
// NoNewPrivileges=, the mount sandbox, PrivateNetwork=, the capability sets, UMask=), and
// `declaredExposure` counts everything the file asks for, as systemd would apply it. Where the
// file asks for more than triggerd gives (ProtectKernelTunables=, SystemCallFilter=, ...) the
// check says so. Pure: no I/O.
import type { ExecCommand, ExecContext } from '../units/config-types';
import { ALL_CAPABILITIES, CAPABILITIES, parseBoolean } from '../units/value-parsers';
import { PRIVATE_DEVICES_DROPPED_CAPS } from './sandbox-mounts';

export type SecurityLevel = 'OK' | 'MEDIUM' | 'EXPOSED' | 'UNSAFE';

/**
 * protected: what triggerd applies closes this; partial: narrowed, not closed; exposed: open;
 * not-enforced: the file sets a key here that triggerd parses but does not apply, and that would
 * close more of it (under systemd); info: shown for context, no weight.
 */
export type CheckState = 'protected' | 'partial' | 'exposed' | 'not-enforced' | 'info';

export interface SecurityCheck {
  /** The setting as systemd-analyze names it: 'ProtectSystem=', 'CapabilityBoundingSet=~CAP_SYS_ADMIN'. */
  name: string;
  /** Whether the unit file sets any of the keys this check reads. */
  set: boolean;
  /** What the file says for those keys ('Key=value; Key=value'), or null. */
  value: string | null;
  weight: number;
  /** 0 (protected) … 1 (open), counting only what triggerd applies. */
  exposure: number;
  /** 0 … 1 with every setting in the file applied, as under systemd. */
  declaredExposure: number;
  /** False when some key the file sets for this check is parsed but not applied by triggerd. */
  enforced: boolean;
  state: CheckState;
  /** One line: what the service can or cannot do, as triggerd runs it. */
  description: string;
}

export interface SecurityReport {
  /** 0.00 … 10.00 under triggerd (two decimals, so that a light setting still shows; printed with one). */
  exposure: number;
  level: SecurityLevel;
  /** 0.00 … 10.00 if every setting in the file were applied (as under systemd). */
  declaredExposure: number;
  declaredLevel: SecurityLevel;
  checks: SecurityCheck[];
  /** Keys the file sets that triggerd parses but does not apply, in first-seen order. */
  notEnforced: string[];
  /** Commands that escape part of the sandbox ('+' and '!' prefixes), and such remarks. */
  notes: string[];
}

export interface SecurityInput {
  exec: ExecContext;
  /**
   * Lines of the unit's own section (for a service, [Service]) whose keys triggerd knows but does
   * not apply, in file order (LoadedUnitFile.ignoredSettings).
   */
  ignored: readonly { key: string; value: string }[];
  /** The unit's command lines, to point out '+' and '!' ones. */
  commands?: readonly { setting: string; command: ExecCommand }[];
  /** The daemon runs as root; otherwise a service without User= runs as the daemon's own user. Default true. */
  managerIsRoot?: boolean;
}

/** Settings the security checks read that triggerd applies (the rest are in `ignored`). */
const ENFORCED_KEYS = new Set([
  'User',
  'NoNewPrivileges',
  'ProtectSystem',
  'ProtectHome',
  'PrivateTmp',
  'PrivateDevices',
  'PrivateNetwork',
  'CapabilityBoundingSet',
  'AmbientCapabilities',
  'UMask',
  'ReadOnlyPaths',
  'ReadWritePaths',
  'InaccessiblePaths',
]);

/** Levels by score, highest first: a score at or above `from` gets `level`. */
const LEVELS: readonly { from: number; level: SecurityLevel }[] = [
  { from: 9, level: 'UNSAFE' },
  { from: 7, level: 'EXPOSED' },
  { from: 5, level: 'MEDIUM' },
  { from: 0, level: 'OK' },
];

export function securityLevel(score: number): SecurityLevel {
  const shown = Math.round(score * 10) / 10;
  return (LEVELS.find((l) => shown >= l.from) ?? { level: 'OK' as const }).level;
}

function capMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const i = CAPABILITIES.indexOf(n);
    if (i >= 0) mask |= 1n << BigInt(i);
  }
  return mask;
}

/** Capability groups scored separately, the most dangerous first; the rest share one check. */
const CAPABILITY_GROUPS: readonly {
  label: string;
  caps: string[];
  weight: number;
  what: string;
  /** Settings that drop these capabilities too (PrivateDevices= here; the others under systemd). */
  alsoKeys?: string[];
}[] = [
  {
    label: 'CAP_SYS_ADMIN',
    caps: ['CAP_SYS_ADMIN'],
    weight: 10,
    what: 'administer the system (mount, namespaces, ...)',
  },
  {
    label: 'CAP_SET(UID|GID|PCAP)',
    caps: ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP'],
    weight: 5,
    what: 'change its user and group ids and capabilities',
  },
  { label: 'CAP_SYS_PTRACE', caps: ['CAP_SYS_PTRACE'], weight: 5, what: 'trace and read other processes' },
  {
    label: 'CAP_SYS_MODULE',
    caps: ['CAP_SYS_MODULE'],
    weight: 5,
    what: 'load kernel modules',
    alsoKeys: ['ProtectKernelModules'],
  },
  {
    label: 'CAP_NET_(ADMIN|RAW)',
    caps: ['CAP_NET_ADMIN', 'CAP_NET_RAW'],
    weight: 4,
    what: 'configure the network and open raw sockets',
  },
  {
    label: 'CAP_(DAC_*|FOWNER|IPC_OWNER)',
    caps: ['CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_IPC_OWNER'],
    weight: 4,
    what: 'bypass file and IPC permission checks',
  },
  {
    label: 'CAP_(CHOWN|FSETID|SETFCAP)',
    caps: ['CAP_CHOWN', 'CAP_FSETID', 'CAP_SETFCAP'],
    weight: 3,
    what: 'change file owners, set-id bits and file capabilities',
  },
  {
    label: 'CAP_(SYS_RAWIO|MKNOD)',
    caps: ['CAP_SYS_RAWIO', 'CAP_MKNOD'],
    weight: 3,
    what: 'do raw I/O and create device nodes',
    alsoKeys: ['PrivateDevices'],
  },
  {
    label: 'CAP_(SYS_TIME|WAKE_ALARM)',
    caps: ['CAP_SYS_TIME', 'CAP_WAKE_ALARM'],
    weight: 2,
    what: 'set the clock and wake-up alarms',
    alsoKeys: ['ProtectClock'],
  },
  {
    label: 'CAP_(SYS_BOOT|SYSLOG|BPF|PERFMON)',
    caps: ['CAP_SYS_BOOT', 'CAP_SYSLOG', 'CAP_BPF', 'CAP_PERFMON'],
    weight: 3,
    what: 'reboot, read the kernel log, load BPF programs and use perf',
    alsoKeys: ['ProtectKernelLogs'],
  },
];
const GROUPED_CAPS = capMask(CAPABILITY_GROUPS.flatMap((g) => g.caps));
const OTHER_CAPS = ALL_CAPABILITIES & ~GROUPED_CAPS;

function popcount(mask: bigint): number {
  let n = 0;
  for (let m = mask; m !== 0n; m &= m - 1n) n++;
  return n;
}

function capNames(mask: bigint): string[] {
  return CAPABILITIES.filter((_, i) => (mask & (1n << BigInt(i))) !== 0n);
}

/** The ignored lines of one key, read as systemd reads them: last value, or the list since the last reset. */
class IgnoredSettings {
  private readonly byKey = new Map<string, string[]>();
  readonly order: string[] = [];

  constructor(entries: readonly { key: string; value: string }[]) {
    for (const e of entries) {
      const list = this.byKey.get(e.key);
      if (list === undefined) {
        this.byKey.set(e.key, [e.value]);
        this.order.push(e.key);
      } else list.push(e.value);
    }
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The value as written: every line, joined. */
  written(key: string): string | undefined {
    const list = this.byKey.get(key);
    return list === undefined ? undefined : list.map((v) => `${key}=${v}`).join('; ');
  }

  last(key: string): string | undefined {
    const list = this.byKey.get(key);
    return list?.[list.length - 1]?.trim();
  }

  bool(key: string): boolean {
    const v = this.last(key);
    if (v === undefined) return false;
    const b = parseBoolean(v);
    return b.ok && b.value;
  }

  /** The words since the last empty assignment; undefined when never set or reset at the end. */
  list(key: string): string[] | undefined {
    const list = this.byKey.get(key);
    if (list === undefined) return undefined;
    const words: string[] = [];
    for (const v of list) {
      if (v.trim() === '') words.length = 0;
      else words.push(...v.trim().split(/\s+/));
    }
    return words.length > 0 ? words : undefined;
  }
}

interface Outcome {
  exposure: number;
  declaredExposure: number;
  description: string;
}

interface CheckSpec {
  name: string;
  weight: number;
  /** The keys this check reads (for `set`, `value` and `enforced`). */
  keys: readonly string[];
  assess(a: Assessment): Outcome;
}

interface Assessment {
  ctx: ExecContext;
  ignored: IgnoredSettings;
  managerIsRoot: boolean;
  /** The service runs as root under triggerd; and would under systemd (DynamicUser= counted). */
  runsAsRoot: boolean;
  declaredRoot: boolean;
  /**
   * The bounding set triggerd applies, and the one the file describes (with the capabilities
   * systemd also drops for ProtectKernelModules=, ProtectKernelLogs= and ProtectClock=).
   */
  bounding: bigint;
  declaredBounding: bigint;
}

/** What a check says of a setting triggerd does not apply: the service can do `what` either way. */
function unenforced(declared: number, what: string): string {
  return declared < 1 ? `Parsed, not enforced: service ${what}` : `Service ${what}`;
}

/**
 * A setting triggerd does not apply that takes a boolean or words: `protects` says which words
 * (other than a boolean) close the hole under systemd.
 */
function ignoredWord(
  name: string,
  weight: number,
  what: string,
  protects: (v: string) => boolean,
): CheckSpec {
  return {
    name: `${name}=`,
    weight,
    keys: [name],
    assess: ({ ignored }) => {
      const v = ignored.last(name);
      const b = v === undefined ? undefined : parseBoolean(v);
      const on = v !== undefined && (b?.ok === true ? b.value : protects(v));
      const declared = on ? 0 : 1;
      return { exposure: 1, declaredExposure: declared, description: unenforced(declared, what) };
    },
  };
}

/** A boolean setting triggerd does not apply: open under triggerd whatever the file says. */
function ignoredBool(name: string, weight: number, what: string): CheckSpec {
  return {
    name: `${name}=`,
    weight,
    keys: [name],
    assess: ({ ignored }) => {
      const declared = ignored.bool(name) ? 0 : 1;
      return { exposure: 1, declaredExposure: declared, description: unenforced(declared, what) };
    },
  };
}

function capabilityDescription(mask: bigint, caps: bigint, what: string): string {
  return (mask & caps) === 0n
    ? `Service cannot ${what}`
    : `Service may ${what} (${capNames(mask & caps).join(', ')} in the bounding set)`;
}

const CHECKS: readonly CheckSpec[] = [
  {
    name: 'User=/DynamicUser=',
    weight: 20,
    keys: ['User', 'DynamicUser'],
    assess: ({ ctx, ignored, managerIsRoot, runsAsRoot, declaredRoot }) => {
      const dynamic = ignored.bool('DynamicUser');
      let description: string;
      if (!managerIsRoot) description = "Service runs as the daemon's own (unprivileged) user";
      else if (!runsAsRoot) description = `Service runs as user ${ctx.user ?? ''}`;
      else if (dynamic) description = 'Parsed, not enforced (DynamicUser=): service runs as root';
      else description = 'Service runs as root';
      return { exposure: runsAsRoot ? 1 : 0, declaredExposure: declaredRoot ? 1 : 0, description };
    },
  },
  {
    name: 'NoNewPrivileges=',
    weight: 10,
    keys: ['NoNewPrivileges'],
    assess: ({ ctx }) => ({
      exposure: ctx.noNewPrivileges ? 0 : 1,
      declaredExposure: ctx.noNewPrivileges ? 0 : 1,
      description: ctx.noNewPrivileges
        ? 'Service cannot gain privileges through set-id or file-capability programs'
        : 'Service may gain privileges through set-id or file-capability programs',
    }),
  },
  {
    name: 'ProtectSystem=',
    weight: 10,
    keys: ['ProtectSystem'],
    assess: ({ ctx }) => {
      const table = {
        no: [1, 'Service may modify the whole file system'],
        yes: [0.5, 'Service cannot modify /usr and /boot, but may modify /etc'],
        full: [0.2, 'Service cannot modify /usr, /boot and /etc'],
        strict: [0, 'Service cannot modify the file system outside its ReadWritePaths='],
      } as const;
      const [e, description] = table[ctx.protectSystem];
      return { exposure: e, declaredExposure: e, description };
    },
  },
  {
    name: 'ProtectHome=',
    weight: 8,
    keys: ['ProtectHome'],
    assess: ({ ctx }) => {
      const table = {
        no: [1, 'Service may read and modify home directories'],
        'read-only': [0.3, 'Service may read home directories, not modify them'],
        tmpfs: [0, 'Service sees empty home directories'],
        yes: [0, 'Service cannot see home directories'],
      } as const;
      const [e, description] = table[ctx.protectHome];
      return { exposure: e, declaredExposure: e, description };
    },
  },
  {
    name: 'PrivateTmp=',
    weight: 5,
    keys: ['PrivateTmp'],
    assess: ({ ctx }) => ({
      exposure: ctx.privateTmp ? 0 : 1,
      declaredExposure: ctx.privateTmp ? 0 : 1,
      description: ctx.privateTmp
        ? 'Service has its own /tmp and /var/tmp'
        : 'Service shares /tmp and /var/tmp with the rest of the system',
    }),
  },
  {
    name: 'PrivateDevices=',
    weight: 8,
    keys: ['PrivateDevices'],
    assess: ({ ctx }) => ({
      exposure: ctx.privateDevices ? 0 : 1,
      declaredExposure: ctx.privateDevices ? 0 : 1,
      description: ctx.privateDevices
        ? 'Service sees only pseudo devices (null, zero, random, tty, ...) in /dev'
        : 'Service may access every device node in /dev',
    }),
  },
  {
    name: 'DevicePolicy=/DeviceAllow=',
    weight: 4,
    keys: ['PrivateDevices', 'DevicePolicy', 'DeviceAllow'],
    assess: ({ ctx, ignored }) => {
      const policy = ignored.last('DevicePolicy');
      const allow = ignored.list('DeviceAllow');
      const declared =
        ctx.privateDevices || policy === 'closed' || policy === 'strict' || allow !== undefined ? 0 : 1;
      if (ctx.privateDevices)
        return {
          exposure: 0,
          declaredExposure: 0,
          description: 'Device access limited by PrivateDevices=yes',
        };
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(declared, 'may open every device node (no device policy)'),
      };
    },
  },
  {
    name: 'PrivateNetwork=',
    weight: 8,
    keys: ['PrivateNetwork'],
    assess: ({ ctx }) => ({
      exposure: ctx.privateNetwork ? 0 : 1,
      declaredExposure: ctx.privateNetwork ? 0 : 1,
      description: ctx.privateNetwork
        ? 'Service has its own network namespace with only loopback'
        : "Service has access to the host's network",
    }),
  },
  {
    name: 'IPAddressDeny=',
    weight: 4,
    keys: ['PrivateNetwork', 'IPAddressDeny', 'IPAddressAllow'],
    assess: ({ ctx, ignored }) => {
      if (ctx.privateNetwork)
        return { exposure: 0, declaredExposure: 0, description: 'No host network (PrivateNetwork=yes)' };
      const deny = ignored.list('IPAddressDeny');
      const declared = deny === undefined ? 1 : deny.includes('any') ? 0 : 0.5;
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(declared, 'may talk to every IP address'),
      };
    },
  },
  ...CAPABILITY_GROUPS.map((g): CheckSpec => ({
    name: `CapabilityBoundingSet=~${g.label}`,
    weight: g.weight,
    keys: ['CapabilityBoundingSet', ...(g.alsoKeys ?? [])],
    assess: ({ bounding, declaredBounding }) => {
      const caps = capMask(g.caps);
      return {
        exposure: (bounding & caps) === 0n ? 0 : 1,
        declaredExposure: (declaredBounding & caps) === 0n ? 0 : 1,
        description: capabilityDescription(bounding, caps, g.what),
      };
    },
  })),
  {
    name: 'CapabilityBoundingSet=~…',
    weight: 3,
    keys: ['CapabilityBoundingSet'],
    assess: ({ bounding, declaredBounding }) => {
      const total = popcount(OTHER_CAPS);
      const left = popcount(bounding & OTHER_CAPS);
      return {
        exposure: left / total,
        declaredExposure: popcount(declaredBounding & OTHER_CAPS) / total,
        description:
          left === 0
            ? 'Service keeps none of the other capabilities'
            : `Service may keep ${left} of ${total} other capabilities (CAP_KILL, CAP_NET_BIND_SERVICE, ...)`,
      };
    },
  },
  {
    name: 'AmbientCapabilities=',
    weight: 5,
    keys: ['AmbientCapabilities', 'User', 'DynamicUser'],
    assess: ({ ctx, runsAsRoot, declaredRoot }) => {
      const ambient = ctx.ambientCapabilities !== 0n;
      const open = (root: boolean): number => (root || ambient ? 1 : 0);
      return {
        exposure: open(runsAsRoot),
        declaredExposure: open(declaredRoot),
        description: runsAsRoot
          ? 'Service runs as root: every capability in the bounding set is in effect'
          : ambient
            ? `Service holds ${capNames(ctx.ambientCapabilities).join(', ')} without being root`
            : 'Service holds no capabilities',
      };
    },
  },
  {
    name: 'UMask=',
    weight: 2,
    keys: ['UMask'],
    assess: ({ ctx }) => {
      const open = (bit: number): boolean => (ctx.umask & bit) === 0;
      // Others writing counts most, then others reading, then the group.
      const e = round2(
        (open(0o002) ? 0.5 : 0) + (open(0o004) ? 0.3 : 0) + (open(0o020) ? 0.1 : 0) + (open(0o040) ? 0.1 : 0),
      );
      const description = open(0o002)
        ? 'Files the service creates are writable by everyone'
        : open(0o004)
          ? 'Files the service creates are readable by everyone'
          : open(0o060)
            ? "Files the service creates are open to the file's group"
            : 'Files the service creates are private to its user';
      return { exposure: e, declaredExposure: e, description };
    },
  },
  {
    name: 'ReadOnlyPaths=',
    weight: 2,
    keys: ['ReadOnlyPaths', 'ProtectSystem'],
    assess: ({ ctx }) => {
      const done = ctx.readOnlyPaths.length > 0 || ctx.protectSystem === 'strict';
      return {
        exposure: done ? 0 : 1,
        declaredExposure: done ? 0 : 1,
        description: done
          ? ctx.protectSystem === 'strict'
            ? 'The whole file system is read-only (ProtectSystem=strict)'
            : `Read-only: ${ctx.readOnlyPaths.join(' ')}`
          : 'No paths are made read-only',
      };
    },
  },
  {
    name: 'InaccessiblePaths=',
    weight: 2,
    keys: ['InaccessiblePaths'],
    assess: ({ ctx }) => {
      const done = ctx.inaccessiblePaths.length > 0;
      return {
        exposure: done ? 0 : 1,
        declaredExposure: done ? 0 : 1,
        description: done
          ? `Hidden: ${ctx.inaccessiblePaths.join(' ')}`
          : 'No paths are hidden from the service',
      };
    },
  },
  {
    name: 'ReadWritePaths=',
    weight: 0,
    keys: ['ReadWritePaths'],
    assess: ({ ctx }) => ({
      exposure: 0,
      declaredExposure: 0,
      description:
        ctx.readWritePaths.length > 0
          ? `Writable exceptions: ${ctx.readWritePaths.join(' ')}`
          : 'No writable exceptions to read-only paths',
    }),
  },
  ignoredBool('ProtectKernelTunables', 8, 'may change kernel tunables (/proc/sys, /sys)'),
  ignoredBool('ProtectKernelModules', 6, 'may load and unload kernel modules'),
  ignoredBool('ProtectKernelLogs', 4, 'may read and write the kernel log'),
  ignoredWord('ProtectControlGroups', 4, 'may modify the cgroup tree', (v) => v !== 'no'),
  ignoredBool('ProtectClock', 4, 'may set the system clock'),
  ignoredWord('ProtectHostname', 2, 'may change the hostname', (v) => v.startsWith('private')),
  {
    name: 'RestrictNamespaces=',
    weight: 8,
    keys: ['RestrictNamespaces'],
    assess: ({ ignored }) => {
      const words = ignored.list('RestrictNamespaces');
      let declared = 1;
      const b = words?.length === 1 && words[0] !== undefined ? parseBoolean(words[0]) : undefined;
      if (b?.ok === true) declared = b.value ? 0 : 1;
      else if (words !== undefined) {
        // An allow-list, or with '~' a deny-list; letting user namespaces through is the big hole.
        const deny = words[0]?.startsWith('~') === true;
        const names = words.map((w, i) => (i === 0 && deny ? w.slice(1) : w));
        declared = deny ? (names.includes('user') ? 0.5 : 0.8) : names.includes('user') ? 0.5 : 0.2;
      }
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(declared, 'may create namespaces of every kind (user, mount, net, ...)'),
      };
    },
  },
  {
    name: 'RestrictAddressFamilies=',
    weight: 8,
    keys: ['RestrictAddressFamilies'],
    assess: ({ ignored }) => {
      const words = ignored.list('RestrictAddressFamilies');
      let declared = 1;
      if (words !== undefined) {
        if (words[0] === 'none') declared = 0;
        else if (words[0]?.startsWith('~') === true) declared = 0.7;
        else {
          const inet = words.some((w) => w === 'AF_INET' || w === 'AF_INET6');
          const other = words.some((w) => !['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_LOCAL'].includes(w));
          declared = other ? 0.4 : inet ? 0.2 : 0;
        }
      }
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(declared, 'may open sockets of every address family (netlink, packet, ...)'),
      };
    },
  },
  ignoredBool('RestrictSUIDSGID', 4, 'may create set-user-id and set-group-id files'),
  ignoredBool('LockPersonality', 2, 'may change its execution domain (personality(2))'),
  ignoredBool('MemoryDenyWriteExecute', 4, 'may map memory both writable and executable'),
  ignoredBool('RestrictRealtime', 2, 'may take realtime scheduling and starve the machine'),
  {
    name: 'SystemCallFilter=',
    weight: 10,
    keys: ['SystemCallFilter'],
    assess: ({ ignored }) => {
      const words = ignored.list('SystemCallFilter');
      // An allow-list closes almost everything; a '~' deny-list only what it names.
      const declared = words === undefined ? 1 : words[0]?.startsWith('~') === true ? 0.5 : 0;
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(declared, 'may make every system call (no seccomp filter)'),
      };
    },
  },
  {
    name: 'SystemCallArchitectures=',
    weight: 3,
    keys: ['SystemCallArchitectures'],
    assess: ({ ignored }) => {
      const declared = ignored.list('SystemCallArchitectures') !== undefined ? 0 : 1;
      return {
        exposure: 1,
        declaredExposure: declared,
        description: unenforced(
          declared,
          'may make system calls of every ABI (32-bit ones on a 64-bit kernel)',
        ),
      };
    },
  },
  {
    name: 'KeyringMode=',
    weight: 2,
    keys: ['KeyringMode'],
    // systemd gives each system service a session keyring of its own by default (private);
    // triggerd does not touch keyrings, so a service shares the daemon's.
    assess: ({ ignored }) => {
      const declared = (ignored.last('KeyringMode') ?? 'private') === 'private' ? 0 : 1;
      return {
        exposure: 1,
        declaredExposure: declared,
        description: "Service shares the daemon's kernel session keyring (triggerd gives it none of its own)",
      };
    },
  },
  ignoredBool('RemoveIPC', 2, 'may leave System V and POSIX IPC objects behind'),
  ignoredWord('PrivateUsers', 5, "sees the host's users and ids (no user namespace)", (v) =>
    ['self', 'identity', 'full'].includes(v),
  ),
  ignoredWord('ProtectProc', 3, 'may see every process in /proc', (v) =>
    ['invisible', 'noaccess', 'ptraceable'].includes(v),
  ),
  ignoredWord('ProcSubset', 2, 'sees all of /proc (kernel and system information too)', (v) => v === 'pid'),
  ignoredBool('PrivateIPC', 2, 'shares System V IPC and POSIX message queues with the host'),
];

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** A score as printed, with one decimal; the level goes by this, so the two always agree. */
export function formatExposure(score: number): string {
  return (Math.round(score * 10) / 10).toFixed(1);
}

function score(checks: readonly { weight: number; e: number }[]): number {
  const total = checks.reduce((s, c) => s + c.weight, 0);
  if (total === 0) return 0;
  return round2((10 * checks.reduce((s, c) => s + c.weight * c.e, 0)) / total);
}

function isRootUser(user: string | undefined): boolean {
  return user === undefined || user === '' || user === 'root' || user === '0';
}

/** The exposure report of one service (or any unit with an exec context). */
export function assessSecurity(input: SecurityInput): SecurityReport {
  const ctx = input.exec;
  const ignored = new IgnoredSettings(input.ignored);
  const managerIsRoot = input.managerIsRoot ?? true;
  const rootUser = isRootUser(ctx.user);
  const runsAsRoot = managerIsRoot && rootUser;
  const declaredRoot = managerIsRoot && rootUser && !ignored.bool('DynamicUser');

  const capOf = (name: string): bigint => capMask([name]);
  let dropped = ctx.privateDevices ? PRIVATE_DEVICES_DROPPED_CAPS : 0n;
  const bounding = (ctx.capabilityBoundingSet ?? ALL_CAPABILITIES) & ALL_CAPABILITIES & ~dropped;
  // Capabilities systemd drops for settings triggerd does not apply.
  if (ignored.bool('ProtectKernelModules')) dropped |= capOf('CAP_SYS_MODULE');
  if (ignored.bool('ProtectKernelLogs')) dropped |= capOf('CAP_SYSLOG');
  if (ignored.bool('ProtectClock')) dropped |= capOf('CAP_SYS_TIME') | capOf('CAP_WAKE_ALARM');
  const declaredBounding = (ctx.capabilityBoundingSet ?? ALL_CAPABILITIES) & ALL_CAPABILITIES & ~dropped;

  const a: Assessment = { ctx, ignored, managerIsRoot, runsAsRoot, declaredRoot, bounding, declaredBounding };
  const checks: SecurityCheck[] = CHECKS.map((spec) => {
    const o = spec.assess(a);
    const ignoredKeys = spec.keys.filter((k) => ignored.has(k));
    const writtenIgnored = ignoredKeys
      .map((k) => ignored.written(k))
      .filter((w): w is string => w !== undefined);
    const set = ignoredKeys.length > 0 || spec.keys.some((k) => ENFORCED_KEYS.has(k) && isSet(ctx, k));
    const enforced = ignoredKeys.length === 0;
    const declaredExposure = Math.min(o.declaredExposure, o.exposure);
    let state: CheckState;
    if (spec.weight === 0) state = 'info';
    else if (declaredExposure < o.exposure && !enforced) state = 'not-enforced';
    else if (o.exposure === 0) state = 'protected';
    else if (o.exposure < 1) state = 'partial';
    else state = 'exposed';
    const enforcedValue = spec.keys
      .filter((k) => ENFORCED_KEYS.has(k) && isSet(ctx, k))
      .map((k) => `${k}=${enforcedValueText(ctx, k)}`);
    const value = [...enforcedValue, ...writtenIgnored];
    return {
      name: spec.name,
      set,
      value: value.length > 0 ? value.join('; ') : null,
      weight: spec.weight,
      exposure: o.exposure,
      declaredExposure,
      enforced,
      state,
      description: o.description,
    };
  });

  const exposure = score(checks.map((c) => ({ weight: c.weight, e: c.exposure })));
  const declaredExposure = score(checks.map((c) => ({ weight: c.weight, e: c.declaredExposure })));
  const notes: string[] = [];
  for (const { setting, command } of input.commands ?? []) {
    const line = `${setting}=${command.fullPrivileges ? '+' : '!'}${command.argv.join(' ')}`;
    if (command.fullPrivileges)
      notes.push(`${line} runs with full privileges: none of these settings apply to it`);
    else if (command.noSetuidDrop && !rootUser)
      notes.push(`${line} runs as root: User= does not apply to it ('!' prefix)`);
  }
  if (!managerIsRoot)
    notes.push('The daemon does not run as root: services run as its user, and sandboxing needs root');
  return {
    exposure,
    level: securityLevel(exposure),
    declaredExposure,
    declaredLevel: securityLevel(declaredExposure),
    checks,
    notEnforced: ignored.order.filter((k) => RELEVANT_IGNORED.has(k)),
    notes,
  };
}

/** Every ignored key some check reads. */
const RELEVANT_IGNORED: ReadonlySet<string> = new Set(
  CHECKS.flatMap((c) => c.keys).filter((k) => !ENFORCED_KEYS.has(k)),
);

/** Whether an applied key differs from its default in the exec context. */
function isSet(ctx: ExecContext, key: string): boolean {
  switch (key) {
    case 'User':
      return ctx.user !== undefined && ctx.user !== '';
    case 'NoNewPrivileges':
      return ctx.noNewPrivileges;
    case 'ProtectSystem':
      return ctx.protectSystem !== 'no';
    case 'ProtectHome':
      return ctx.protectHome !== 'no';
    case 'PrivateTmp':
      return ctx.privateTmp;
    case 'PrivateDevices':
      return ctx.privateDevices;
    case 'PrivateNetwork':
      return ctx.privateNetwork;
    case 'CapabilityBoundingSet':
      return ctx.capabilityBoundingSet !== undefined;
    case 'AmbientCapabilities':
      return ctx.ambientCapabilities !== 0n;
    case 'UMask':
      return ctx.umask !== 0o022;
    case 'ReadOnlyPaths':
      return ctx.readOnlyPaths.length > 0;
    case 'ReadWritePaths':
      return ctx.readWritePaths.length > 0;
    case 'InaccessiblePaths':
      return ctx.inaccessiblePaths.length > 0;
    default:
      return false;
  }
}

function enforcedValueText(ctx: ExecContext, key: string): string {
  switch (key) {
    case 'User':
      return ctx.user ?? '';
    case 'ProtectSystem':
      return ctx.protectSystem;
    case 'ProtectHome':
      return ctx.protectHome;
    case 'CapabilityBoundingSet': {
      const names = capNames(ctx.capabilityBoundingSet ?? 0n);
      return names.length > 8 ? `(${names.length} capabilities)` : names.join(' ');
    }
    case 'AmbientCapabilities':
      return capNames(ctx.ambientCapabilities).join(' ');
    case 'UMask':
      return ctx.umask.toString(8).padStart(4, '0');
    case 'ReadOnlyPaths':
      return ctx.readOnlyPaths.join(' ');
    case 'ReadWritePaths':
      return ctx.readWritePaths.join(' ');
    case 'InaccessiblePaths':
      return ctx.inaccessiblePaths.join(' ');
    default:
      return 'yes';
  }
}
