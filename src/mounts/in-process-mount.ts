// Mounting without mount(8): the mount units' mounts and unmounts through libmount inside the
// daemon (native/libmount, on the threadpool), where that is what mount(8) would do anyway. A
// mount(8) run is a fork, an exec and the dynamic loading of libmount, libblkid and libselinux
// before the same library calls run: ~5-7 ms of an automount's first access on a busy 2-CPU
// machine, where the mount itself takes ~2-4 ms.
//
// mount(8) stays the way for everything libmount cannot do the same inside the daemon:
// - a mount.<type> / umount.<type> helper exists (nfs, cifs, ntfs-3g, ...): mount(8) runs it;
// - no Type= (or "auto", or a list): mount(8) probes and may then pick a helper;
// - network and FUSE file systems, `_netdev`: a mount that can hang on the network must stay a
//   process that TimeoutSec= can kill (a call on the threadpool cannot be interrupted);
// - `helper=` in Options=, remounts, a daemon not running as root (mount(8) is setuid and applies
//   the user-mount rules of fstab), no libmount.so.1, or TRIGGERD_LIBMOUNT=0 in the environment;
// - until libmount.so.1 is loaded: that happens on the threadpool (tens of ms on a busy machine),
//   started when the first mount unit with a unit file appears (preload()), so a daemon without
//   configured mounts never maps the library.
// The messages read as mount(8) prints them ("mount: <where>: <libmount's words>."), so a unit's
// status and log say the same either way.
import fs = require('node:fs');
import type { Logger } from '../util/logger';
import type { LibmountOutcome, NativeLibmount } from '../native/libmount-addon';
import { hasMountOption } from './mount-config';

/** A mount or umount a mount unit wants done. */
export type MountCall =
  | {
      command: 'mount';
      what: string;
      where: string;
      /** Type=; '' when not given. */
      type: string;
      /** Options= as passed to mount(8) -o (x-systemd.*, nofail, ... already dropped). */
      options: string;
      sloppy: boolean;
      readWriteOnly: boolean;
    }
  | {
      command: 'umount';
      where: string;
      /** The file system type the kernel shows at Where= ('' when not known). */
      type: string;
      lazy: boolean;
      force: boolean;
    };

/** How a call ended, as mount(8) would have said it: its exit status and its stderr lines. */
export interface MountCallResult {
  status: number;
  lines: string[];
}

/** systemd's fstype_is_network(), plus FUSE: mounts that may wait on something outside. */
const NETWORK_TYPES = new Set([
  'afs',
  'ceph',
  'cifs',
  'smb3',
  'smbfs',
  'sshfs',
  'ncpfs',
  'ncp',
  'nfs',
  'nfs4',
  'gfs',
  'gfs2',
  'glusterfs',
  'pvfs2',
  'ocfs2',
  'lustre',
  'davfs',
  '9p',
  'virtiofs',
]);

/** Where libmount looks for mount.<type> helpers (util-linux's FS_SEARCH_PATH), and /usr/sbin. */
const HELPER_DIRS = ['/sbin', '/sbin/fs.d', '/sbin/fs', '/usr/sbin'];

export interface InProcessMountsOptions {
  /** The addon; undefined when it could not be loaded (then `unavailable` says why). */
  native: NativeLibmount | undefined;
  unavailable?: string;
  /** Default: process.geteuid() === 0. */
  root?: boolean;
  /** Default: fs.existsSync (tests pass a fake file system). */
  exists?: (path: string) => boolean;
  logger: Logger;
}

type LibraryState = 'unloaded' | 'loading' | 'ready' | 'unavailable';

export class InProcessMounts {
  private readonly exists: (path: string) => boolean;
  private readonly root: boolean;
  private library: LibraryState;
  private unavailable: string | undefined;

  constructor(private readonly options: InProcessMountsOptions) {
    this.exists = options.exists ?? fs.existsSync;
    this.root = options.root ?? process.geteuid?.() === 0;
    this.library = options.native === undefined ? 'unavailable' : 'unloaded';
    if (options.native === undefined) this.unavailable = options.unavailable ?? 'no libmount addon';
  }

  /** Whether libmount is loaded and mounts may run here. */
  get ready(): boolean {
    return this.library === 'ready';
  }

  /**
   * Loads libmount.so.1 on the threadpool, once; `then` runs when that is over (tests). Mounts
   * run as mount(8) until it is done.
   */
  preload(then?: () => void): void {
    const native = this.options.native;
    if (native === undefined || this.library !== 'unloaded') {
      then?.();
      return;
    }
    this.library = 'loading';
    const fail = (why: string): void => {
      this.library = 'unavailable';
      this.unavailable = `libmount is not available: ${why}`;
      this.options.logger.warn(`${this.unavailable}; mount units run mount(8) and umount(8)`);
    };
    native.load().then(
      (info) => {
        if (info.available) {
          this.library = 'ready';
          this.options.logger.info(`libmount ${info.version ?? '?'} loaded: mounts run inside the daemon`);
        } else fail(info.error ?? '?');
        then?.();
      },
      (err: Error) => {
        fail(err.message);
        then?.();
      },
    );
  }

  /** Why `call` must run as mount(8)/umount(8), or undefined when libmount does it here. */
  refusal(call: MountCall): string | undefined {
    if (this.library === 'unavailable') return this.unavailable ?? 'libmount is not available';
    if (this.library !== 'ready') return 'libmount is not loaded yet';
    if (!this.root) return 'the daemon is not root (mount(8) applies the user-mount rules)';
    const type = call.type;
    if (call.command === 'mount') {
      const bind = hasMountOption(call.options, 'bind') || hasMountOption(call.options, 'rbind');
      if (!bind && (type === '' || type === 'auto' || type.includes(',')))
        return 'no single Type= (mount(8) probes and may pick a helper)';
      if (hasMountOption(call.options, '_netdev')) return '_netdev';
      if (call.options.split(',').some((o) => o.startsWith('helper='))) return 'helper= in Options=';
    }
    if (type === '') return undefined;
    const base = type.split('.')[0] ?? type;
    if (NETWORK_TYPES.has(base) || base === 'fuse' || base === 'fuseblk')
      return `${type} is a network or FUSE file system (a mount(8) process TimeoutSec= can kill)`;
    const helper = this.helperFor(call.command, type);
    if (helper !== undefined) return `${helper} exists`;
    return undefined;
  }

  /** libmount's helper lookup: <cmd>.<type>, then <cmd>.<type without subtype>. */
  private helperFor(command: 'mount' | 'umount', type: string): string | undefined {
    const names = [`${command}.${type}`];
    const dot = type.indexOf('.');
    if (dot > 0) names.push(`${command}.${type.slice(0, dot)}`);
    for (const dir of HELPER_DIRS) {
      for (const n of names) {
        const p = `${dir}/${n}`;
        if (this.exists(p)) return p;
      }
    }
    return undefined;
  }

  /**
   * Starts `call` on the threadpool; `done` runs later (never inside this call) with mount(8)'s
   * exit status and words. False when it cannot run here (see refusal(); the caller runs the
   * helper; the first call starts loading the library if nothing has yet).
   */
  run(call: MountCall, done: (r: MountCallResult) => void): boolean {
    const native = this.options.native;
    if (this.library === 'unloaded') this.preload();
    if (native === undefined || this.refusal(call) !== undefined) return false;
    const p =
      call.command === 'mount'
        ? native.mount({
            source: call.what,
            target: call.where,
            fstype: call.type,
            options: call.options,
            sloppy: call.sloppy,
            readWriteOnly: call.readWriteOnly,
          })
        : native.umount({ target: call.where, lazy: call.lazy, force: call.force });
    p.then(
      (o) => done(resultOf(call.command, call.where, o)),
      (err: Error) => done({ status: 2, lines: [`${call.command}: ${call.where}: ${err.message}`] }),
    );
    return true;
  }
}

/** What mount(8)/umount(8) would print for this outcome (sys-utils/mount.c's mk_exit_code). */
export function resultOf(command: 'mount' | 'umount', where: string, o: LibmountOutcome): MountCallResult {
  const lines: string[] = [];
  if (o.message !== '') {
    lines.push(`${command}: ${where}: ${o.message}.`);
    if (command === 'mount' && o.exitCode !== 0 && o.syscallCalled && o.syscallErrno !== 0)
      lines.push('       dmesg(1) may have more information after failed mount system call.');
  }
  return { status: o.exitCode, lines };
}

/** The in-process mounter with the addon loaded, or one that always declines with the reason. */
export function inProcessMounts(
  logger: Logger,
  load: () => NativeLibmount,
  env: NodeJS.ProcessEnv = process.env,
): InProcessMounts {
  if (env.TRIGGERD_LIBMOUNT === '0')
    return new InProcessMounts({ native: undefined, unavailable: 'TRIGGERD_LIBMOUNT=0', logger });
  try {
    return new InProcessMounts({ native: load(), logger });
  } catch (err) {
    const why = `the libmount addon is not available: ${(err as Error).message}`;
    logger.warn(`${why}; mount units run mount(8) and umount(8)`);
    return new InProcessMounts({ native: undefined, unavailable: why, logger });
  }
}
