// ExecContext (what the unit file says) + one ExecCommand -> the ExecPlan the native layer
// applies: credentials from /etc/passwd and /etc/group, the environment, `$VAR` expansion, the
// PATH search, the working directory, limits and the sandbox, with systemd's semantics
// (systemd.exec(5), systemd.service(5) "Command lines").
import { accessSync, constants, readFileSync, readdirSync, statSync } from 'node:fs';
import path = require('node:path');
import type { Diagnostic, ExecCommand, ExecContext, SourceRef } from '../units/config-types';
import type { ExecPlan, ExecStep, FdMapping, RlimitSetting } from './exec-plan';
import { DEFAULT_PATH, expandArgv, isValidEnvName, parseEnvironmentFile } from './exec-environment';
import { parseMountInfo, readMountInfo } from './mount-info';
import { buildSandbox } from './sandbox-mounts';
import { defaultNofileSoft, parseOpenFilesLimit } from './nofile-limit';
import {
  findGroup,
  findUser,
  memberGroups,
  parseId,
  readUserDatabase,
  type PasswdEntry,
  type UserDatabase,
} from './user-database';

/** RLIMIT_* numbers on Linux (x86, arm, and every architecture but alpha, mips, sparc). */
export const RLIMIT_NUMBERS: Readonly<Record<string, number>> = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
};

const ALL_CAPABILITIES = (1n << 64n) - 1n;

export type ExecPlanErrorCode =
  | 'ERR_EXEC_USER'
  | 'ERR_EXEC_GROUP'
  | 'ERR_EXEC_ENVIRONMENT_FILE'
  | 'ERR_EXEC_NOT_FOUND'
  | 'ERR_EXEC_WORKING_DIRECTORY'
  | 'ERR_EXEC_INVALID'
  | 'ERR_EXEC_UNSUPPORTED';

/** Why no plan could be built; `step` is where systemd would report it. */
export class ExecPlanError extends Error {
  readonly code: ExecPlanErrorCode;
  readonly step: ExecStep | undefined;
  /** The user or group name, file or path concerned. */
  readonly subject: string;

  constructor(code: ExecPlanErrorCode, message: string, subject: string, step?: ExecStep) {
    super(message);
    this.name = 'ExecPlanError';
    this.code = code;
    this.subject = subject;
    this.step = step;
  }
}

export interface ExecEnvironmentInput {
  /** The manager's environment for every job (PATH, LANG, ...). PATH defaults to systemd's. */
  base: Readonly<Record<string, string>>;
  /** Set for this invocation (MAINPID, LISTEN_FDS, NOTIFY_SOCKET, TRIGGER_UNIT, ...). */
  extra?: Readonly<Record<string, string>>;
  /** Where PassEnvironment= takes values from; default process.env. */
  pass?: Readonly<Record<string, string | undefined>>;
}

export interface ExecPlanOptions {
  unitName: string;
  /** The daemon's runtime directory: private /tmp, the /dev stage, inaccessible nodes live below. */
  runtimeDir: string;
  /** cgroup v2 directory to start the process in. */
  cgroup?: string;
  /** Parent fds for the child's 0, 1 and 2; -1 for /dev/null. */
  stdio: { stdin: number; stdout: number; stderr: number };
  /** Parent fds the child gets as 3, 4, ... (LISTEN_FDS). */
  extraFds?: readonly number[];
  /**
   * O_NONBLOCK for parent fds among stdio and extraFds: set (true) or cleared (false) on the
   * shared file description in the child, before exec (NonBlocking=, socket stdio). Others keep theirs.
   */
  nonBlocking?: ReadonlyMap<number, boolean>;
  /** setsid() in the child; default true (services get their own session). */
  newSession?: boolean;
  /** LISTEN_PID=<child pid>, set in the child (socket activation). */
  setListenPid?: boolean;
  /** Root of /etc/passwd and /etc/group (tests); default '/'. Ignored when `userDatabase` is given. */
  userDatabaseRoot?: string;
  userDatabase?: UserDatabase;
  /** Where a bare executable name is searched; default systemd's PATH. */
  searchPath?: readonly string[];
  /** /proc/self/mountinfo text (tests); default: read it. */
  mountInfo?: string;
  /**
   * The daemon's hard RLIMIT_NOFILE (-1: unlimited), for the default open-files limit of a unit
   * without LimitNOFILE= (nofile-limit.ts); default: read from /proc/self/limits once.
   */
  nofileHardLimit?: number;
}

export interface BuiltExecPlan {
  plan: ExecPlan;
  diagnostics: Diagnostic[];
}

interface ResolvedUser {
  name: string;
  uid: number;
  gid: number | undefined;
  entry: PasswdEntry | undefined;
}

interface Credentials {
  user?: ResolvedUser;
  uid?: number;
  gid?: number;
  groups?: number[];
}

/**
 * Whether building a plan for `ctx` looks anything up in /etc/passwd or /etc/group (User=, Group=,
 * SupplementaryGroups=, WorkingDirectory=~). Without those the database need not even be read.
 */
export function needsUserDatabase(ctx: ExecContext): boolean {
  return (
    (ctx.user !== undefined && ctx.user !== '') ||
    (ctx.group !== undefined && ctx.group !== '') ||
    ctx.supplementaryGroups.length > 0 ||
    ctx.workingDirectory === '~' ||
    ctx.workingDirectory === '-~'
  );
}

function resolveCredentials(
  ctx: ExecContext,
  db: UserDatabase,
  dbRoot: string,
  source: SourceRef,
  diagnostics: Diagnostic[],
): Credentials {
  let user: ResolvedUser | undefined;
  if (ctx.user !== undefined && ctx.user !== '') {
    const entry = findUser(db, ctx.user);
    if (entry !== undefined) {
      user = { name: entry.name, uid: entry.uid, gid: entry.gid, entry };
    } else {
      const uid = parseId(ctx.user);
      if (uid === undefined) {
        throw new ExecPlanError(
          'ERR_EXEC_USER',
          `User=${ctx.user}: no such user in ${path.join(dbRoot, 'etc', 'passwd')}`,
          ctx.user,
          'USER',
        );
      }
      user = { name: ctx.user, uid, gid: undefined, entry: undefined };
      diagnostics.push({
        severity: 'warning',
        code: 'EXEC_USER_NOT_IN_DATABASE',
        message: `User=${ctx.user} is not in the user database: no HOME or SHELL, group ${ctx.group ?? ctx.user}`,
        source,
      });
    }
  }

  const resolveGroup = (nameOrId: string, key: string): number => {
    const entry = findGroup(db, nameOrId);
    if (entry !== undefined) return entry.gid;
    const gid = parseId(nameOrId);
    if (gid !== undefined) return gid;
    throw new ExecPlanError(
      'ERR_EXEC_GROUP',
      `${key}=${nameOrId}: no such group in ${path.join(dbRoot, 'etc', 'group')}`,
      nameOrId,
      'GROUP',
    );
  };

  let gid: number | undefined;
  if (ctx.group !== undefined && ctx.group !== '') gid = resolveGroup(ctx.group, 'Group');
  else if (user !== undefined) gid = user.gid ?? user.uid;
  const supplementary = ctx.supplementaryGroups.map((g) => resolveGroup(g, 'SupplementaryGroups'));

  if (user === undefined && gid === undefined && supplementary.length === 0) return {};
  // As initgroups(3) (which systemd calls for User= unless the group is root): the primary group
  // plus the user's memberships from /etc/group, then SupplementaryGroups=. Whenever the user or
  // group changes the list is set, so the daemon's own groups never leak into a service.
  const groups: number[] = [];
  if (user !== undefined && gid !== undefined && gid !== 0) {
    groups.push(gid, ...memberGroups(db, user.name));
  }
  groups.push(...supplementary);
  return { user, uid: user?.uid, gid, groups: [...new Set(groups)] };
}

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) source += '\\[';
      else {
        const body = glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = close;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** EnvironmentFile= accepts a wildcard in the file name (glob(3)); matches are read in order. */
function expandEnvironmentFilePath(file: string): string[] {
  const base = path.basename(file);
  if (!/[*?[]/.test(base)) return [file];
  const dir = path.dirname(file);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const pattern = globToRegExp(base);
  return names
    .filter((n) => pattern.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(dir, n));
}

function loadEnvironmentFiles(
  ctx: ExecContext,
  set: (key: string, value: string) => void,
  source: SourceRef,
  diagnostics: Diagnostic[],
): void {
  for (const file of ctx.environmentFiles) {
    if (!path.isAbsolute(file.path)) {
      throw new ExecPlanError(
        'ERR_EXEC_ENVIRONMENT_FILE',
        `EnvironmentFile=${file.path}: not an absolute path`,
        file.path,
      );
    }
    const matches = expandEnvironmentFilePath(file.path);
    if (matches.length === 0 && !file.optional) {
      throw new ExecPlanError(
        'ERR_EXEC_ENVIRONMENT_FILE',
        `EnvironmentFile=${file.path}: no such file`,
        file.path,
      );
    }
    for (const match of matches) {
      let text: string;
      try {
        text = readFileSync(match, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // '-' only forgives a missing file, as in systemd.
        if (file.optional && code === 'ENOENT') continue;
        throw new ExecPlanError(
          'ERR_EXEC_ENVIRONMENT_FILE',
          `EnvironmentFile=${match}: ${code ?? String(err)}`,
          match,
        );
      }
      const parsed = parseEnvironmentFile(text);
      for (const bad of parsed.invalid) {
        diagnostics.push({
          severity: 'warning',
          code: 'EXEC_ENVIRONMENT_FILE_INVALID',
          message: `${match}:${bad.line}: "${bad.key}" is not a valid variable name, ignored`,
          source,
        });
      }
      for (const a of parsed.assignments) set(a.key, a.value);
    }
  }
}

/**
 * systemd's merge order for environment lists: a later one overrides an earlier one, and an
 * overridden variable takes the later position.
 */
function setLast(env: Map<string, string>, key: string, value: string): void {
  env.delete(key);
  env.set(key, value);
}

function buildEnvironment(
  ctx: ExecContext,
  input: ExecEnvironmentInput,
  user: ResolvedUser | undefined,
  source: SourceRef,
  diagnostics: Diagnostic[],
): Map<string, string> {
  const env = new Map<string, string>();
  const set = (key: string, value: string): void => setLast(env, key, value);
  for (const [k, v] of Object.entries(input.base)) set(k, v);
  if (!env.has('PATH')) set('PATH', DEFAULT_PATH);
  for (const [k, v] of Object.entries(input.extra ?? {})) set(k, v);
  if (user !== undefined) {
    if (user.entry !== undefined) set('HOME', user.entry.home);
    set('LOGNAME', user.name);
    set('USER', user.name);
    if (user.entry !== undefined) set('SHELL', user.entry.shell);
  }
  const pass = input.pass ?? process.env;
  for (const name of ctx.passEnvironment) {
    const value = pass[name];
    if (value !== undefined) set(name, value);
  }
  for (const [k, v] of ctx.environment) set(k, v);
  loadEnvironmentFiles(ctx, set, source, diagnostics);
  for (const item of ctx.unsetEnvironment) {
    const eq = item.indexOf('=');
    if (eq < 0) env.delete(item);
    else if (env.get(item.slice(0, eq)) === item.slice(eq + 1)) env.delete(item.slice(0, eq));
  }
  for (const key of [...env.keys()]) {
    if (!isValidEnvName(key)) {
      env.delete(key);
      diagnostics.push({
        severity: 'warning',
        code: 'EXEC_ENVIRONMENT_INVALID',
        message: `"${key}" is not a valid variable name, not passed`,
        source,
      });
    }
  }
  return env;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function resolveExecutable(cmd: ExecCommand, searchPath: readonly string[]): string {
  if (cmd.path.includes('/')) {
    if (!path.isAbsolute(cmd.path)) {
      throw new ExecPlanError(
        'ERR_EXEC_INVALID',
        `${cmd.path}: neither an absolute path nor a plain file name`,
        cmd.path,
        'EXEC',
      );
    }
    // Its existence is execve's to report (step EXEC, ENOENT), as in systemd.
    return path.posix.normalize(cmd.path);
  }
  for (const dir of searchPath) {
    const candidate = path.join(dir, cmd.path);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new ExecPlanError(
    'ERR_EXEC_NOT_FOUND',
    `${cmd.path}: not found in ${searchPath.join(':')}`,
    cmd.path,
    'EXEC',
  );
}

function resolveWorkingDirectory(
  ctx: ExecContext,
  user: ResolvedUser | undefined,
  db: UserDatabase,
): { cwd: string; optional: boolean } {
  let dir = ctx.workingDirectory;
  let optional = ctx.workingDirectoryOptional;
  if (dir?.startsWith('-')) {
    optional = true;
    dir = dir.slice(1);
  }
  if (dir === undefined || dir === '') return { cwd: '/', optional: false };
  if (dir === '~') {
    // The service user's home; without User= the service runs as root.
    const home = user !== undefined ? user.entry?.home : (findUser(db, 'root')?.home ?? '/root');
    if (home === undefined || !path.isAbsolute(home)) {
      throw new ExecPlanError(
        'ERR_EXEC_WORKING_DIRECTORY',
        `WorkingDirectory=~: user ${user?.name ?? 'root'} has no home directory`,
        '~',
        'CHDIR',
      );
    }
    return { cwd: home, optional };
  }
  if (!path.isAbsolute(dir)) {
    throw new ExecPlanError(
      'ERR_EXEC_WORKING_DIRECTORY',
      `WorkingDirectory=${dir}: not an absolute path`,
      dir,
      'CHDIR',
    );
  }
  return { cwd: path.posix.normalize(dir), optional };
}

function limitValue(value: number): number | undefined {
  if (value === Infinity) return -1;
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The daemon's own hard open-files limit, read once (undefined: unknown, no default then). */
let daemonNofileHard: number | null | undefined = null;
function readDaemonNofileHard(): number | undefined {
  if (daemonNofileHard === null) {
    try {
      daemonNofileHard = parseOpenFilesLimit(readFileSync('/proc/self/limits', 'latin1'))?.hard;
    } catch {
      daemonNofileHard = undefined;
    }
  }
  return daemonNofileHard;
}

function buildLimits(
  ctx: ExecContext,
  source: SourceRef,
  diagnostics: Diagnostic[],
  nofileHard: number | undefined,
): RlimitSetting[] {
  const limits: RlimitSetting[] = [];
  const hard = nofileHard ?? readDaemonNofileHard();
  if (hard !== undefined && !ctx.limits.some((l) => l.resource.toLowerCase() === 'nofile')) {
    limits.push({ resource: RLIMIT_NUMBERS.nofile as number, soft: defaultNofileSoft(hard), hard });
  }
  for (const limit of ctx.limits) {
    const resource = RLIMIT_NUMBERS[limit.resource.toLowerCase()];
    const soft = limitValue(limit.soft);
    const hard = limitValue(limit.hard);
    if (resource === undefined || soft === undefined || hard === undefined) {
      diagnostics.push({
        severity: 'warning',
        code: 'EXEC_LIMIT_INVALID',
        message: `Limit${limit.resource.toUpperCase()}=${limit.soft}:${limit.hard}: not applied`,
        source,
      });
      continue;
    }
    limits.push({ resource, soft, hard });
  }
  return limits;
}

function checkFd(fd: number, name: string): number {
  if (!Number.isInteger(fd) || fd < -1) {
    throw new ExecPlanError('ERR_EXEC_INVALID', `${name}: ${fd} is not a file descriptor`, name);
  }
  return fd;
}

/** The child's fds: stdio, then the extra ones as 3, 4, ...; O_NONBLOCK where asked. */
function fdMappings(opts: Pick<ExecPlanOptions, 'stdio' | 'extraFds' | 'nonBlocking'>): FdMapping[] {
  const fds: FdMapping[] = [
    { childFd: 0, parentFd: checkFd(opts.stdio.stdin, 'stdin') },
    { childFd: 1, parentFd: checkFd(opts.stdio.stdout, 'stdout') },
    { childFd: 2, parentFd: checkFd(opts.stdio.stderr, 'stderr') },
  ];
  (opts.extraFds ?? []).forEach((fd, i) =>
    fds.push({ childFd: 3 + i, parentFd: checkFd(fd, `fd ${3 + i}`) }),
  );
  if (opts.nonBlocking !== undefined && opts.nonBlocking.size > 0) {
    for (const fd of fds) {
      const flag = fd.parentFd >= 0 ? opts.nonBlocking.get(fd.parentFd) : undefined;
      if (flag !== undefined) fd.nonBlocking = flag;
    }
  }
  return fds;
}

/**
 * Builds the plan for one command of a unit. Throws ExecPlanError when the unit's settings
 * cannot be applied (unknown user, missing required EnvironmentFile=, executable not found, ...).
 * Creates the unit's private directories under `runtimeDir` as the sandbox needs them.
 */
export function buildExecPlan(
  ctx: ExecContext,
  cmd: ExecCommand,
  env: ExecEnvironmentInput,
  opts: ExecPlanOptions,
): BuiltExecPlan {
  const diagnostics: Diagnostic[] = [];
  const source = cmd.source;
  if (opts.unitName === '' || opts.unitName.includes('/')) {
    throw new ExecPlanError('ERR_EXEC_INVALID', `bad unit name "${opts.unitName}"`, opts.unitName);
  }
  if (ctx.rootDirectory !== undefined && ctx.rootDirectory !== '' && ctx.rootDirectory !== '/') {
    throw new ExecPlanError(
      'ERR_EXEC_UNSUPPORTED',
      `RootDirectory=${ctx.rootDirectory} is not supported`,
      ctx.rootDirectory,
    );
  }
  if (ctx.timerSlackNsec !== undefined) {
    diagnostics.push({
      severity: 'warning',
      code: 'EXEC_UNSUPPORTED_SETTING',
      message: 'TimerSlackNSec= is not supported, ignored',
      source,
    });
  }

  const dbRoot = opts.userDatabaseRoot ?? '/';
  const db = opts.userDatabase ?? readUserDatabase(dbRoot);
  const credentials = resolveCredentials(ctx, db, dbRoot, source, diagnostics);
  const environment = buildEnvironment(ctx, env, credentials.user, source, diagnostics);

  let argv = [...cmd.argv];
  if (!cmd.noEnvExpand) {
    const expanded = expandArgv(cmd.argv, environment);
    argv = expanded.argv;
    for (const name of expanded.unset) {
      diagnostics.push({
        severity: 'warning',
        code: 'EXEC_UNSET_VARIABLE',
        message: `command line references \${${name}}, which is not set: expanded to nothing`,
        source,
      });
    }
  }
  if (argv.length === 0) {
    throw new ExecPlanError('ERR_EXEC_INVALID', 'the command line expands to no words', cmd.path, 'EXEC');
  }

  const executable = resolveExecutable(cmd, opts.searchPath ?? DEFAULT_PATH.split(':'));
  const { cwd, optional: cwdOptional } = resolveWorkingDirectory(ctx, credentials.user, db);

  const fds = fdMappings(opts);

  const plan: ExecPlan = {
    path: executable,
    argv,
    env: [...environment].map(([k, v]) => `${k}=${v}`),
    cwd,
    rlimits: buildLimits(ctx, source, diagnostics, opts.nofileHardLimit),
    fds,
    newSession: opts.newSession ?? true,
    noNewPrivileges: false,
    privateNetwork: false,
    mounts: [],
    umask: ctx.umask,
  };
  if (cwdOptional) plan.cwdOptional = true;
  if (ctx.nice !== undefined) plan.nice = ctx.nice;
  if (ctx.oomScoreAdjust !== undefined) plan.oomScoreAdjust = ctx.oomScoreAdjust;
  if (opts.cgroup !== undefined) plan.cgroup = opts.cgroup;
  if (opts.setListenPid === true) plan.setListenPid = true;

  // '+': none of the privilege restrictions (user, sandbox, capabilities) for this command.
  // '!': no user/group change, the rest applies. '!!' only differs where ambient capabilities
  // are missing, which no kernel we run on lacks.
  if (!cmd.fullPrivileges && !cmd.noSetuidDrop) {
    if (credentials.uid !== undefined) plan.uid = credentials.uid;
    if (credentials.gid !== undefined) plan.gid = credentials.gid;
    if (credentials.groups !== undefined) plan.groups = credentials.groups;
  }
  if (!cmd.fullPrivileges) {
    const mountInfo = parseMountInfo(opts.mountInfo ?? readMountInfo());
    const sandbox = buildSandbox({
      ctx,
      unitName: opts.unitName,
      runtimeDir: opts.runtimeDir,
      mounts: mountInfo,
      source,
    });
    diagnostics.push(...sandbox.diagnostics);
    plan.mounts = sandbox.steps;
    plan.privateNetwork = sandbox.privateNetwork;
    if (sandbox.privateSysfs !== undefined) plan.privateSysfs = sandbox.privateSysfs;
    if (sandbox.inaccessibleSources !== undefined) plan.inaccessibleSources = sandbox.inaccessibleSources;
    plan.noNewPrivileges = ctx.noNewPrivileges;
    if (ctx.capabilityBoundingSet !== undefined || sandbox.droppedCapabilities !== 0n) {
      plan.capabilityBoundingSet =
        (ctx.capabilityBoundingSet ?? ALL_CAPABILITIES) & ~sandbox.droppedCapabilities;
    }
    if (ctx.ambientCapabilities !== 0n) plan.ambientCapabilities = ctx.ambientCapabilities;
  }
  return { plan, diagnostics };
}

// ---- the same plan, built in two halves -----------------------------------------------------
//
// A path- or timer-triggered job runs the same command many times: everything buildExecPlan
// derives from the unit's settings alone is worked out once (prepareExecPlan) and each run only
// adds what is its own (completeExecPlan): the invocation's variables, the fds, the cgroup.
// ExecPlanCache (exec-plan-cache.ts) keeps the prepared halves. The result is exactly what
// buildExecPlan returns; where it could differ, these give up (undefined) and the caller builds
// the whole plan instead.

/** What does not change from one run of a command to the next while its inputs stay the same. */
export interface PreparedExecPlan {
  /** Base variables the unit's own do not override, after UnsetEnvironment=, as KEY=VALUE. */
  head: readonly { key: string; text: string }[];
  /** The unit's variables (user, PassEnvironment=, Environment=), after UnsetEnvironment=. */
  tail: readonly string[];
  /** Names an invocation variable may not have for the halves to compose (the unit sets or unsets them). */
  reserved: ReadonlySet<string>;
  /** The command line, or undefined when it references variables (expanded per run). */
  argv: readonly string[] | undefined;
  /** undefined: a bare name, searched on the PATH per run (a program may appear meanwhile). */
  executable: string | undefined;
  searchPath: readonly string[];
  cmd: ExecCommand;
  /** The plan's fields that come from the unit's settings. */
  fixed: Omit<ExecPlan, 'path' | 'argv' | 'env' | 'fds' | 'cgroup' | 'setListenPid'>;
  /** Diagnostics before the command line's, and after it, in buildExecPlan's order. */
  diagnosticsBefore: readonly Diagnostic[];
  diagnosticsAfter: readonly Diagnostic[];
  /** PassEnvironment= names and the values they had (a change means preparing again). */
  passed: readonly [string, string | undefined][];
}

/**
 * The run-independent half of buildExecPlan(ctx, cmd, { base, pass }, opts). Undefined when the
 * command cannot be prepared ahead: EnvironmentFile= (read at every start, as systemd does), a
 * sandbox with mount steps (its directories and the mount table are looked at every start),
 * no user database or mount table given, or a setting buildExecPlan refuses (it reports that).
 */
export function prepareExecPlan(
  ctx: ExecContext,
  cmd: ExecCommand,
  env: Omit<ExecEnvironmentInput, 'extra'>,
  opts: Omit<ExecPlanOptions, 'stdio' | 'extraFds' | 'nonBlocking' | 'cgroup' | 'setListenPid'>,
): PreparedExecPlan | undefined {
  if (ctx.environmentFiles.length > 0 || opts.userDatabase === undefined || opts.mountInfo === undefined)
    return undefined;
  const before: Diagnostic[] = [];
  const after: Diagnostic[] = [];
  const source = cmd.source;
  let credentials: Credentials;
  let executable: string | undefined;
  let cwd: { cwd: string; optional: boolean };
  if (opts.unitName === '' || opts.unitName.includes('/')) return undefined;
  if (ctx.rootDirectory !== undefined && ctx.rootDirectory !== '' && ctx.rootDirectory !== '/')
    return undefined;
  if (ctx.timerSlackNsec !== undefined) {
    before.push({
      severity: 'warning',
      code: 'EXEC_UNSUPPORTED_SETTING',
      message: 'TimerSlackNSec= is not supported, ignored',
      source,
    });
  }
  const db = opts.userDatabase;
  try {
    credentials = resolveCredentials(ctx, db, opts.userDatabaseRoot ?? '/', source, before);
    executable = cmd.path.includes('/') ? resolveExecutable(cmd, []) : undefined;
    cwd = resolveWorkingDirectory(ctx, credentials.user, db);
  } catch {
    return undefined;
  }

  // The base, then the unit's own variables on top (buildEnvironment's order without the
  // invocation's, which go between the two halves per run).
  const headMap = new Map<string, string>();
  const setHead = (k: string, v: string): void => setLast(headMap, k, v);
  for (const [k, v] of Object.entries(env.base)) setHead(k, v);
  if (!headMap.has('PATH')) setHead('PATH', DEFAULT_PATH);
  const tailMap = new Map<string, string>();
  const setTail = (k: string, v: string): void => setLast(tailMap, k, v);
  const user = credentials.user;
  if (user !== undefined) {
    if (user.entry !== undefined) setTail('HOME', user.entry.home);
    setTail('LOGNAME', user.name);
    setTail('USER', user.name);
    if (user.entry !== undefined) setTail('SHELL', user.entry.shell);
  }
  const pass = env.pass ?? process.env;
  const passed: [string, string | undefined][] = [];
  for (const name of ctx.passEnvironment) {
    const value = pass[name];
    passed.push([name, value]);
    if (value !== undefined) setTail(name, value);
  }
  for (const [k, v] of ctx.environment) setTail(k, v);
  for (const k of tailMap.keys()) headMap.delete(k);
  const reserved = new Set(tailMap.keys());
  for (const item of ctx.unsetEnvironment) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    reserved.add(key);
    for (const m of [headMap, tailMap]) {
      if (eq < 0) m.delete(key);
      else if (m.get(key) === item.slice(eq + 1)) m.delete(key);
    }
  }
  const invalid = (m: Map<string, string>): void => {
    for (const key of [...m.keys()]) {
      if (isValidEnvName(key)) continue;
      m.delete(key);
      before.push({
        severity: 'warning',
        code: 'EXEC_ENVIRONMENT_INVALID',
        message: `"${key}" is not a valid variable name, not passed`,
        source,
      });
    }
  };
  invalid(headMap);
  invalid(tailMap);

  let argv: string[] | undefined;
  if (cmd.noEnvExpand || !cmd.argv.some((w) => w.includes('$'))) {
    argv = [...cmd.argv];
    if (argv.length === 0) return undefined;
  }

  const fixed: PreparedExecPlan['fixed'] = {
    cwd: cwd.cwd,
    rlimits: buildLimits(ctx, source, after, opts.nofileHardLimit),
    newSession: opts.newSession ?? true,
    noNewPrivileges: false,
    privateNetwork: false,
    mounts: [],
    umask: ctx.umask,
  };
  if (cwd.optional) fixed.cwdOptional = true;
  if (ctx.nice !== undefined) fixed.nice = ctx.nice;
  if (ctx.oomScoreAdjust !== undefined) fixed.oomScoreAdjust = ctx.oomScoreAdjust;
  if (!cmd.fullPrivileges && !cmd.noSetuidDrop) {
    if (credentials.uid !== undefined) fixed.uid = credentials.uid;
    if (credentials.gid !== undefined) fixed.gid = credentials.gid;
    if (credentials.groups !== undefined) fixed.groups = credentials.groups;
  }
  if (!cmd.fullPrivileges) {
    const sandbox = buildSandbox({
      ctx,
      unitName: opts.unitName,
      runtimeDir: opts.runtimeDir,
      mounts: parseMountInfo(opts.mountInfo),
      source,
    });
    // Mount steps mean directories and the mount table of the moment: built per run.
    if (
      sandbox.steps.length > 0 ||
      sandbox.privateSysfs !== undefined ||
      sandbox.inaccessibleSources !== undefined
    )
      return undefined;
    after.push(...sandbox.diagnostics);
    fixed.privateNetwork = sandbox.privateNetwork;
    fixed.noNewPrivileges = ctx.noNewPrivileges;
    if (ctx.capabilityBoundingSet !== undefined || sandbox.droppedCapabilities !== 0n) {
      fixed.capabilityBoundingSet =
        (ctx.capabilityBoundingSet ?? ALL_CAPABILITIES) & ~sandbox.droppedCapabilities;
    }
    if (ctx.ambientCapabilities !== 0n) fixed.ambientCapabilities = ctx.ambientCapabilities;
  }
  return {
    head: [...headMap].map(([key, v]) => ({ key, text: `${key}=${v}` })),
    tail: [...tailMap].map(([k, v]) => `${k}=${v}`),
    reserved,
    argv,
    executable,
    searchPath: opts.searchPath ?? DEFAULT_PATH.split(':'),
    cmd,
    fixed,
    diagnosticsBefore: before,
    diagnosticsAfter: after,
    passed,
  };
}

/**
 * The run's half: the invocation's variables between the base and the unit's own, the fds, the
 * cgroup. Undefined when an invocation variable is one the unit sets or unsets itself, or not a
 * valid name (buildExecPlan then decides, with its diagnostics). Throws what buildExecPlan would
 * for a command line that expands to nothing or a bare name not on the PATH.
 */
export function completeExecPlan(
  prepared: PreparedExecPlan,
  extra: Readonly<Record<string, string>>,
  opts: Pick<ExecPlanOptions, 'stdio' | 'extraFds' | 'nonBlocking' | 'cgroup' | 'setListenPid'>,
): BuiltExecPlan | undefined {
  const extraKeys = Object.keys(extra);
  for (const k of extraKeys) if (prepared.reserved.has(k) || !isValidEnvName(k)) return undefined;
  const env: string[] = [];
  for (const h of prepared.head) if (!(extraKeys.length > 0 && Object.hasOwn(extra, h.key))) env.push(h.text);
  for (const k of extraKeys) env.push(`${k}=${extra[k]}`);
  for (const t of prepared.tail) env.push(t);

  const diagnostics = [...prepared.diagnosticsBefore];
  let argv: string[];
  if (prepared.argv !== undefined) argv = [...prepared.argv];
  else {
    const vars = new Map<string, string>();
    for (const text of env) {
      const eq = text.indexOf('=');
      vars.set(text.slice(0, eq), text.slice(eq + 1));
    }
    const expanded = expandArgv(prepared.cmd.argv, vars);
    argv = expanded.argv;
    for (const name of expanded.unset) {
      diagnostics.push({
        severity: 'warning',
        code: 'EXEC_UNSET_VARIABLE',
        message: `command line references \${${name}}, which is not set: expanded to nothing`,
        source: prepared.cmd.source,
      });
    }
    if (argv.length === 0) {
      throw new ExecPlanError(
        'ERR_EXEC_INVALID',
        'the command line expands to no words',
        prepared.cmd.path,
        'EXEC',
      );
    }
  }
  const executable = prepared.executable ?? resolveExecutable(prepared.cmd, prepared.searchPath);
  diagnostics.push(...prepared.diagnosticsAfter);
  const { rlimits, mounts, groups, ...rest } = prepared.fixed;
  const plan: ExecPlan = {
    ...rest,
    path: executable,
    argv,
    env,
    rlimits: rlimits.map((l) => ({ ...l })),
    fds: fdMappings(opts),
    mounts: [...mounts],
  };
  if (groups !== undefined) plan.groups = [...groups];
  if (opts.cgroup !== undefined) plan.cgroup = opts.cgroup;
  if (opts.setListenPid === true) plan.setListenPid = true;
  return { plan, diagnostics };
}
