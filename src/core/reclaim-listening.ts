// After a crash of the daemon: the listening socket of an Accept=no socket unit died with it, but
// the running service still holds its own copy (LISTEN_FDS), bound and with the connections the
// kernel queued on it. pidfd_getfd(2) gives us a copy of the service's fd back, so the socket
// unit carries on with the very same socket instead of failing to bind (EADDRINUSE) or, for a
// unix socket, binding a second one over the path and orphaning the queue.
//
// Which of the service's fds: every socket fd whose local address is the entry's, and, for
// stream and seqpacket sockets, that is listening (accepted connections share the local address),
// by inode in /proc/PID/net/{tcp,tcp6,unix}.
import fs = require('node:fs');
import type { NativeReexec } from '../native/reexec-addon';
import type { NativeSocket } from '../native/socket-addon';
import type { ListenEntry } from '../units/config-types';
import { formatSocketAddress } from '../units/socket-address';

export interface ReclaimTools {
  reexec: NativeReexec;
  socket: NativeSocket;
}

/** Our copy of the listening fd for `entry` held by one of `pids`; undefined when none holds it. */
export function reclaimListening(
  tools: ReclaimTools,
  pids: readonly number[],
  entry: ListenEntry,
): { fd: number; pid: number } | undefined {
  if ('path' in entry) return undefined;
  const want = formatSocketAddress(entry.address);
  const mustListen = entry.kind === 'stream' || entry.kind === 'seqpacket';
  for (const pid of new Set(pids)) {
    let pidfd: number;
    try {
      pidfd = tools.reexec.pidfdOpen(pid);
    } catch {
      continue;
    }
    try {
      const listening = mustListen ? listeningInodes(pid) : undefined;
      for (const [targetFd, inode] of socketFds(pid)) {
        if (listening !== undefined && !listening.has(inode)) continue;
        let fd: number;
        try {
          fd = tools.reexec.pidfdGetfd(pidfd, targetFd);
        } catch {
          continue;
        }
        let same = false;
        try {
          same = formatSocketAddress(tools.socket.localAddress(fd)) === want;
        } catch {
          // not a socket we can name
        }
        if (same) return { fd, pid };
        tools.reexec.closeFd(fd);
      }
    } finally {
      tools.reexec.closeFd(pidfd);
    }
  }
  return undefined;
}

/** The process's socket fds: fd number → socket inode. */
function socketFds(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${n}`));
      if (m !== null) out.set(Number(n), m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Inodes of listening sockets in the process's network namespace (TCP state 0A; unix __SO_ACCEPTCON). */
function listeningInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    for (const line of readLines(`/proc/${pid}/net/${file}`)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[9] !== undefined) out.add(f[9]);
    }
  }
  for (const line of readLines(`/proc/${pid}/net/unix`)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    if (f[3] !== undefined && (parseInt(f[3], 16) & 0x10000) !== 0 && f[6] !== undefined) out.add(f[6]);
  }
  return out;
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'latin1').split('\n').slice(1);
  } catch {
    return [];
  }
}
