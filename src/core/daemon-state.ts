// The daemon's state file: what a planned re-exec hands to the new image, and what a restart
// after a crash (kill -9) finds. One JSON file in the runtime dir, written to a temporary name
// and renamed over the old one, so a reader sees the old state or the new one, never half.
//
// Fds are carried only across a re-exec (same process: execve keeps fds without FD_CLOEXEC);
// a checkpoint lists none. Each unit's entry is its type's serialize() output; the reader
// checks the envelope here and leaves each entry's fields to the type's deserialize().
import fs = require('node:fs');
import path = require('node:path');
import type { SerializedUnit } from '../units/unit-type';
import type { SerializedJob } from './job-queue';
import type { FdHolderRecord } from './fd-holder';
import { COLLAPSED_JOB_TYPES, JOB_STATES } from './job-types';

export const STATE_FORMAT = 'triggerd-state';
export const STATE_VERSION = 1;
export const STATE_FILE = 'state.json';

export interface StateUnitEntry {
  name: string;
  /** Active state when written (types without serialize() are started again if it was active). */
  active: string;
  sub: string;
  data?: SerializedUnit;
  /** A service's output pipes (read ends, carried across a re-exec), by the pipe's inode. */
  outputs?: { fd: number; inode: string }[];
}

export interface DaemonStateFile {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  /** 'reexec': written right before execve (fds listed are open); 'checkpoint': kept current for a crash. */
  kind: 'reexec' | 'checkpoint';
  /** bootId: /proc/sys/kernel/random/boot_id; pids and start times mean nothing after a reboot. */
  daemon: { pid: number; startTime: string | undefined; bootId?: string };
  writtenAt: number;
  /** Fds kept open across the exec: the control socket and every unit's. */
  fds: number[];
  control?: { fd: number; path: string };
  /**
   * The event sockets carried across a re-exec (fds, also in `fds`): the kernel's uevent socket
   * and the sd_notify socket. The new image reads them on, with what was queued meanwhile.
   */
  sockets?: { uevent?: number; notify?: number };
  /** cgroups this image made and keeps (the next image removes the empty ones nobody uses). */
  cgroups?: string[];
  units: StateUnitEntry[];
  /** The job queue (JobQueue.serialize): taken back after the units, so no job is lost. */
  jobs?: SerializedJob[];
  /** The process that keeps a copy of the event sockets for the next daemon (fd-holder.ts). */
  holder?: FdHolderRecord;
}

export type ReadState =
  | { ok: true; state: DaemonStateFile; warnings: string[] }
  | { ok: false; reason: 'missing' }
  | { ok: false; reason: 'corrupt'; message: string };

export function statePath(runtimeDir: string): string {
  return path.join(runtimeDir, STATE_FILE);
}

/**
 * Atomically replace the state file (temporary name in the same directory, rename). No fsync:
 * the file serves a re-exec or a restart after the daemon died, and the page cache outlives
 * both; after the machine itself crashed no service it lists is running anyway. An fsync per
 * checkpoint on a disk-backed runtime dir blocked the event loop for milliseconds.
 */
export function writeStateFile(runtimeDir: string, state: DaemonStateFile): void {
  const file = statePath(runtimeDir);
  const temp = path.join(runtimeDir, `.${STATE_FILE}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(state));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}

/**
 * writeStateFile with the file system calls on libuv's pool: the caller's thread only
 * serializes. For the checkpoints a running daemon keeps (open, write, close and rename were
 * ~0.7 ms of its event loop each, on the path of whatever event came meanwhile). The caller must
 * not start another write to the same directory before this one settles (the renames would
 * race): the daemon chains its checkpoints and waits for the last before a re-exec or a stop.
 */
export async function writeStateFileAsync(runtimeDir: string, state: DaemonStateFile): Promise<void> {
  const text = JSON.stringify(state);
  const temp = path.join(runtimeDir, `.${STATE_FILE}.${process.pid}.checkpoint.tmp`);
  await fs.promises.writeFile(temp, text, { mode: 0o600 });
  await fs.promises.rename(temp, statePath(runtimeDir));
}

export function removeStateFile(runtimeDir: string): void {
  fs.rmSync(statePath(runtimeDir), { force: true });
}

/**
 * Reads and checks the envelope. A file that does not parse or has the wrong format/version is
 * 'corrupt' (the caller starts fresh); a unit entry that is malformed is dropped with a warning.
 */
export function readStateFile(runtimeDir: string): ReadState {
  let text: string;
  try {
    text = fs.readFileSync(statePath(runtimeDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, reason: 'missing' };
    return { ok: false, reason: 'corrupt', message: (err as Error).message };
  }
  return parseState(text);
}

export function parseState(text: string): ReadState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'corrupt', message: `not JSON: ${(err as Error).message}` };
  }
  if (!isRecord(raw)) return { ok: false, reason: 'corrupt', message: 'not an object' };
  if (raw.format !== STATE_FORMAT)
    return { ok: false, reason: 'corrupt', message: 'not a triggerd state file' };
  if (raw.version !== STATE_VERSION)
    return {
      ok: false,
      reason: 'corrupt',
      message: `version ${String(raw.version)}, expected ${STATE_VERSION}`,
    };
  if (raw.kind !== 'reexec' && raw.kind !== 'checkpoint')
    return { ok: false, reason: 'corrupt', message: `unknown kind ${String(raw.kind)}` };
  const daemon = raw.daemon;
  if (!isRecord(daemon) || !isPid(daemon.pid))
    return { ok: false, reason: 'corrupt', message: 'no daemon pid' };
  if (!Array.isArray(raw.units)) return { ok: false, reason: 'corrupt', message: 'no unit list' };
  const warnings: string[] = [];
  const fds = Array.isArray(raw.fds) ? raw.fds.filter(isFd) : [];
  const units: StateUnitEntry[] = [];
  const seen = new Set<string>();
  for (const [i, u] of raw.units.entries()) {
    if (
      !isRecord(u) ||
      typeof u.name !== 'string' ||
      typeof u.active !== 'string' ||
      typeof u.sub !== 'string'
    ) {
      warnings.push(`unit entry ${i} is malformed; skipped`);
      continue;
    }
    if (seen.has(u.name)) {
      warnings.push(`${u.name} is listed twice; the second entry is skipped`);
      continue;
    }
    seen.add(u.name);
    if (u.data !== undefined && !isRecord(u.data)) {
      warnings.push(`${u.name}: its data is not an object; skipped`);
      continue;
    }
    const outputs = Array.isArray(u.outputs)
      ? u.outputs.filter(
          (o): o is { fd: number; inode: string } => isRecord(o) && isFd(o.fd) && typeof o.inode === 'string',
        )
      : undefined;
    units.push({ name: u.name, active: u.active, sub: u.sub, data: u.data, ...(outputs ? { outputs } : {}) });
  }
  const jobs: SerializedJob[] = [];
  if (Array.isArray(raw.jobs)) {
    for (const [i, j] of raw.jobs.entries()) {
      if (
        !isRecord(j) ||
        !Number.isSafeInteger(j.id) ||
        (j.id as number) < 1 ||
        typeof j.unit !== 'string' ||
        !isJobType(j.type) ||
        !isJobType(j.runType) ||
        !(JOB_STATES as readonly unknown[]).includes(j.state)
      ) {
        warnings.push(`job entry ${i} is malformed; skipped`);
        continue;
      }
      jobs.push({
        id: j.id as number,
        unit: j.unit,
        type: j.type,
        runType: j.runType,
        state: j.state as SerializedJob['state'],
        ...(j.ignoreOrder === true ? { ignoreOrder: true } : {}),
        ...(j.irreversible === true ? { irreversible: true } : {}),
        ...(j.rerun === true ? { rerun: true } : {}),
      });
    }
  }
  let holder: FdHolderRecord | undefined;
  if (isRecord(raw.holder)) {
    const h = raw.holder;
    const fds = isRecord(h.fds) ? h.fds : {};
    if (isPid(h.pid) && typeof h.startTime === 'string')
      holder = {
        pid: h.pid,
        startTime: h.startTime,
        fds: {
          ...(isFd(fds.notify) ? { notify: fds.notify } : {}),
          ...(isFd(fds.uevent) ? { uevent: fds.uevent } : {}),
        },
        ...(typeof h.mode === 'string' ? { mode: h.mode } : {}),
      };
    else warnings.push('the fd holder entry is malformed; ignored');
  }
  let control: DaemonStateFile['control'];
  if (isRecord(raw.control) && isFd(raw.control.fd) && typeof raw.control.path === 'string')
    control = { fd: raw.control.fd, path: raw.control.path };
  return {
    ok: true,
    warnings,
    state: {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      kind: raw.kind,
      daemon: {
        pid: daemon.pid,
        startTime: typeof daemon.startTime === 'string' ? daemon.startTime : undefined,
        ...(typeof daemon.bootId === 'string' ? { bootId: daemon.bootId } : {}),
      },
      writtenAt: typeof raw.writtenAt === 'number' ? raw.writtenAt : 0,
      fds,
      ...(control !== undefined ? { control } : {}),
      ...(isRecord(raw.sockets)
        ? {
            sockets: {
              ...(isFd(raw.sockets.uevent) ? { uevent: raw.sockets.uevent } : {}),
              ...(isFd(raw.sockets.notify) ? { notify: raw.sockets.notify } : {}),
            },
          }
        : {}),
      ...(Array.isArray(raw.cgroups)
        ? { cgroups: raw.cgroups.filter((c): c is string => typeof c === 'string' && c.startsWith('/')) }
        : {}),
      units,
      ...(jobs.length > 0 ? { jobs } : {}),
      ...(holder !== undefined ? { holder } : {}),
    },
  };
}

function isJobType(v: unknown): v is SerializedJob['type'] {
  return (COLLAPSED_JOB_TYPES as readonly unknown[]).includes(v);
}

/**
 * Field 22 of /proc/PID/stat (starttime, clock ticks since boot): with the pid, it names one
 * process for the whole uptime (a reused pid has a later start). undefined when there is no such process.
 */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Field 3 of /proc/PID/stat: 'Z' for a zombie, 'X' dead. */
export function processRunState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

/**
 * Field 52 (exit_code, as waitpid reports it) of a zombie we cannot reap (not our child): readable
 * until its parent reaps it. undefined when it is not there (reaped, or a kernel before 3.5).
 */
export function zombieExitCode(
  pid: number,
): { code: 'exited' | 'killed' | 'dumped'; status: number } | undefined {
  const f = statFields(pid);
  if (f === undefined || f[0] !== 'Z') return undefined;
  const raw = Number(f[49]);
  if (!Number.isInteger(raw)) return undefined;
  const sig = raw & 0x7f;
  if (sig === 0) return { code: 'exited', status: (raw >> 8) & 0xff };
  return { code: (raw & 0x80) !== 0 ? 'dumped' : 'killed', status: sig };
}

/** Whether pid is the process that had `startTime` (a zombie counts: its exit is still to be seen). */
export function sameProcess(pid: number, startTime: string | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

/** /proc/PID/stat from field 3 (state) on: the command name may hold spaces and parentheses. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat
      .slice(stat.lastIndexOf(')') + 2)
      .trim()
      .split(' ');
  } catch {
    return undefined;
  }
}

// ---- field readers for deserialize(): a wrong type reads as undefined ---------------------------

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isPid(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

export function isFd(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

export function stringField(data: Record<string, unknown>, key: string): string | undefined {
  const v = data[key];
  return typeof v === 'string' ? v : undefined;
}

export function numberField(data: Record<string, unknown>, key: string): number | undefined {
  const v = data[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function pidField(data: Record<string, unknown>, key: string): number | undefined {
  const v = data[key];
  return isPid(v) ? v : undefined;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T | undefined {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value)
    ? (value as T)
    : undefined;
}

/** 'pipe:[123]' → '123': the pipe an fd of `pid` (or 'self') is, if it is one. */
export function pipeInode(pid: number | 'self', fd: number): string | undefined {
  try {
    const m = /^pipe:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** Our own fds that are read ends of pipes, by pipe inode. */
export function ownPipeReadEnds(): Map<string, number> {
  const out = new Map<string, number>();
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const n of names) {
    const fd = Number(n);
    const inode = pipeInode('self', fd);
    if (inode === undefined) continue;
    try {
      const flags = /^flags:\s+([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
      if (flags !== null && (parseInt(flags[1] as string, 8) & 3) === 0) out.set(inode, fd);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** This boot's id (undefined where /proc does not say). */
export function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return undefined;
  }
}

/** Our own socket fds, by socket inode. */
function ownSocketFds(): Map<string, number> {
  const out = new Map<string, number>();
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${n}`));
      if (m !== null) out.set(m[1] as string, Number(n));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** NETLINK_KOBJECT_UEVENT in /proc/net/netlink's Eth column. */
const NETLINK_KOBJECT_UEVENT = 15;

/**
 * Our fd of the uevent socket with netlink port `portId` (/proc/net/netlink: sk Eth Pid Groups
 * Rmem Wmem Dump Locks Drops Inode), to carry it across a re-exec; undefined when not found.
 */
export function ueventSocketFd(portId: number): number | undefined {
  const inodes = new Set<string>();
  for (const line of readProcLines('/proc/net/netlink')) {
    const f = line.trim().split(/\s+/);
    if (Number(f[1]) === NETLINK_KOBJECT_UEVENT && Number(f[2]) === portId && f[9] !== undefined)
      inodes.add(f[9]);
  }
  return firstOwnFd(inodes);
}

/**
 * Our fd of the AF_UNIX socket bound to `socketPath` (/proc/net/unix: Num RefCount Protocol
 * Flags Type St Inode Path; an abstract name shows as @name); undefined when not found.
 */
export function unixSocketFd(socketPath: string): number | undefined {
  const inodes = new Set<string>();
  for (const line of readProcLines('/proc/net/unix')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f.slice(7).join(' ') === socketPath && f[6] !== undefined) inodes.add(f[6]);
  }
  return firstOwnFd(inodes);
}

function firstOwnFd(inodes: ReadonlySet<string>): number | undefined {
  if (inodes.size === 0) return undefined;
  for (const [inode, fd] of ownSocketFds()) if (inodes.has(inode)) return fd;
  return undefined;
}

function readProcLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'latin1').split('\n').slice(1);
  } catch {
    return [];
  }
}
