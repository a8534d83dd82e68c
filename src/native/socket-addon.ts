// The one module that loads triggerd_socket.node (native/socket/) and declares its interface:
// the listening sockets, FIFOs, special files and message queues of .socket units, made with
// every option systemd.socket(5) offers (Node's `net` cannot set most of them, and a Node wrapper
// would read from an fd that belongs to the service), plus accept and readiness watching.
// Everything else takes a `NativeSocket`, so pure tests can pass test/helpers/fake-socket instead.
import type { ExecPlan } from '../exec/exec-plan';
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_socket.node';

export type SocketKind = 'stream' | 'dgram' | 'seqpacket';

/**
 * Where a socket listens, already parsed from ListenStream= & co. (src/units/socket-address.ts).
 * `host` is numeric (inet_pton/inet_ntop text). As reported by accept/localAddress, an IPv4 client
 * of a dual-stack socket is inet6 with host `::ffff:a.b.c.d`; systemd names the instance (and sets
 * REMOTE_ADDR) in dotted IPv4 form when both ends are IPv4-mapped, so that translation is the
 * caller's (see systemd's instance_from_socket).
 */
export type SocketAddress =
  | { family: 'inet'; host: string; port: number }
  /** `scopeId` is reported only when non-zero. */
  | { family: 'inet6'; host: string; port: number; scopeId?: number }
  /**
   * `path` absolute, or `@name` for the abstract namespace. Reported: `''` for an unnamed socket
   * (a client that never bound, the usual remote end).
   */
  | { family: 'unix'; path: string }
  | { family: 'vsock'; cid: number; port: number }
  /**
   * ListenNetlink=: protocol number and multicast group (bound as nl_groups, as systemd does).
   * Reported addresses add `portId` (nl_pid, assigned by the kernel).
   */
  | { family: 'netlink'; protocol: number; group: number; portId?: number };

/**
 * The [Socket] options that become setsockopt calls; unset (and `false`) means the kernel's
 * default. Options are applied as given, whatever the family: the kernel refuses what does not
 * fit (NoDelay= on a unix socket is EOPNOTSUPP), which is a warning or an error, see `listen`.
 * IPTOS=/IPTTL= on an inet6 socket set IPV6_TCLASS/IPV6_UNICAST_HOPS and, best effort, the IPv4
 * option for IPv4-mapped traffic. SO_REUSEADDR is always set on inet stream sockets.
 */
export interface SocketOptions {
  backlog?: number;
  /** BindIPv6Only=: 'both' clears IPV6_V6ONLY, 'ipv6-only' sets it, 'default' leaves the sysctl. */
  bindIPv6Only?: 'default' | 'both' | 'ipv6-only';
  bindToDevice?: string;
  freeBind?: boolean;
  transparent?: boolean;
  reusePort?: boolean;
  keepAlive?: boolean;
  keepAliveTimeSec?: number;
  keepAliveIntervalSec?: number;
  keepAliveProbes?: number;
  noDelay?: boolean;
  deferAcceptSec?: number;
  priority?: number;
  receiveBuffer?: number;
  sendBuffer?: number;
  ipTos?: number;
  ipTtl?: number;
  mark?: number;
  passCredentials?: boolean;
  passSecurity?: boolean;
  broadcast?: boolean;
  /** Unix sockets: the mode of the socket file (SocketMode=, default 0666). */
  socketMode?: number;
  /** Unix sockets: owner and group of the socket file (SocketUser=/SocketGroup=, resolved). */
  uid?: number;
  gid?: number;
  /** Unix sockets: the mode of parent directories created on the way (DirectoryMode=). */
  directoryMode?: number;
}

/** One accepted connection: the fd (blocking, close-on-exec) and both ends' addresses. */
export interface AcceptedConnection {
  fd: number;
  local: SocketAddress;
  remote: SocketAddress;
  /** Unix peers: SO_PEERCRED (-1 when unknown). */
  peerPid: number;
  peerUid: number;
  /** Unix peers: SO_PEERCRED's gid (-1 when unknown). Always set by the real addon. */
  peerGid?: number;
}

export interface ReadinessWatch {
  /** Stop waking up (the service owns the socket now, or a trigger limit paused it). */
  pause(): void;
  resume(): void;
  /** Stop watching; the fd stays open (it belongs to the socket unit). Idempotent. */
  close(): void;
  /** Let the process exit while this is watched (uv_unref), like `server.unref()`. */
  unref?(): void;
  /** Undo `unref()`: an active watch keeps the process alive (the default). */
  ref?(): void;
  /** True after close(), or once the fd was found closed behind the watch's back. */
  readonly closed?: boolean;
  readonly paused?: boolean;
}

/** What acceptSpawn does per connection besides the plan. */
export interface AcceptSpawnOptions {
  /** Live children at which a new connection is refused (accepted and closed). */
  maxConnections: number;
  /** Child fds (0, 1, 2) that get the connection; the plan maps them (to anything). */
  connectionFds: number[];
  /** Add REMOTE_ADDR=/REMOTE_PORT= (IP peers; an IPv4-mapped address as IPv4). */
  remoteEnvironment?: boolean;
  /** Children go into `<cgroupPool>.slot-f<n>` groups (made as needed, reused once found empty). */
  cgroupPool?: string;
}

/** One thing the accept thread did; a batch per wake-up of the event loop, in order. */
export type AcceptRecord =
  | {
      kind: 'started';
      /** 1, 2, ...: connections this spawner accepted (refused ones included). */
      seq: number;
      /** Wall-clock ms of the accept. */
      at: number;
      pid: number;
      local?: SocketAddress;
      remote?: SocketAddress;
      peerPid: number;
      peerUid: number;
      cgroup?: string;
    }
  | {
      kind: 'failed';
      seq: number;
      at: number;
      local?: SocketAddress;
      remote?: SocketAddress;
      peerPid: number;
      peerUid: number;
      /** As spawn's SpawnError: `step` unless the clone itself failed. */
      error: NativeSystemError & { step?: string };
    }
  | {
      kind: 'refused';
      seq: number;
      at: number;
      local?: SocketAddress;
      remote?: SocketAddress;
      peerPid: number;
      peerUid: number;
      /** The live count that made it refuse. */
      live: number;
    }
  | {
      kind: 'exited';
      pid: number;
      code: 'exited' | 'killed' | 'dumped';
      status: number;
      cgroup?: string;
      /** The group still had processes: it is not reused (and left for the caller to remove). */
      cgroupBusy?: boolean;
      /** waitid failed (another reaper got there first): code and status are not known. */
      error?: NativeSystemError;
    }
  /** accept4 failed (EMFILE, ...): the spawner paused itself; resume() when it may go on. */
  | { kind: 'accept-error'; error: NativeSystemError };

/** The handle acceptSpawn returns. */
export interface AcceptSpawner {
  /** Stop accepting; when it returns no clone is under way and the records so far were delivered. */
  pause(): void;
  resume(): void;
  /**
   * Stop accepting for good; the listening fd is the caller's again. The live children's exits
   * still come as records, then the thread ends. Idempotent.
   */
  close(): void;
  /** pidfd_send_signal to a live child of this spawner; false once it has been reaped. */
  signal(pid: number, signal: number): boolean;
  /**
   * Signal every process in the cgroup pool slot of instance `pid` (SIGKILL by cgroup.kill),
   * while that slot is still the instance's: false when it has none (any more: a slot found
   * empty at the instance's exit may hold a later instance before its exit record is read);
   * null once the spawner is gone (no slot of it is reused then).
   */
  signalGroup(pid: number, signal: number): boolean | null;
  live(): number;
  /** A new limit for live children (0 refuses every connection); takes effect at the next accept. */
  setMaxConnections(max: number): void;
  /** Deliver what the thread queued now (synchronously). */
  flush(): void;
}

/** An option that could not be set (a setsockopt failure), as `listen` reports it. */
export interface SocketOptionError extends NativeSystemError {
  /** The SocketOptions key (`'noDelay'`, ...; `'reuseAddress'` for the implicit SO_REUSEADDR). */
  option: string;
}

export interface NativeSocket {
  /**
   * socket(2) + the options + bind(2) + listen(2) (stream/seqpacket), non-blocking and
   * close-on-exec (the spawn layer clears close-on-exec on the fds it passes). Unix paths:
   * parent directories created with `directoryMode`, a stale socket file replaced, then chmod/
   * chown. Throws a NativeSystemError whose `syscall` names the failing step ('socket',
   * 'setsockopt' (with `option`), 'mkdir'/'chmod' (with the directory's `path`), 'bind', 'chmod',
   * 'chown', 'listen'); unix errors carry `path`, inet ones `address` and `port` as Node's net.
   * `warnings`: when given, the options systemd only warns about (everything but bindIPv6Only,
   * bindToDevice and SO_REUSEADDR) do not fail the call; their errors are pushed here instead,
   * so a unit loads as it does under systemd. Without it every failing option throws.
   * Netlink sockets are SOCK_RAW whatever `kind` says (systemd's choice); datagram and netlink
   * sockets are not listen()ed.
   */
  listen(
    kind: SocketKind,
    address: SocketAddress,
    options: SocketOptions,
    warnings?: SocketOptionError[],
  ): number;
  /**
   * ListenFIFO=: mkfifo (mode `socketMode` exactly, parents with `directoryMode`; an existing FIFO
   * is reused), opened O_RDWR|O_NONBLOCK, chown uid/gid if set. Something else at the path is
   * EEXIST ('mkfifo').
   */
  openFifo(path: string, options: SocketOptions): number;
  /**
   * ListenSpecial=: an existing character device or file, opened O_RDWR (O_RDONLY if refused),
   * non-blocking, not following a final symlink. Anything else is EINVAL ('fstat').
   */
  openSpecial(path: string): number;
  /**
   * ListenMessageQueue=: mq_open(O_CREAT|O_RDWR|O_NONBLOCK) with MessageQueueMaxMessages=/
   * MessageSize= (used only when both are > 0, as systemd; else the kernel's defaults), then
   * fchmod `mode` exactly. `name` is `/name`. Errors carry the name as `path`.
   */
  openMessageQueue(name: string, mode: number, maxMessages?: number, messageSize?: number): number;
  /** RemoveOnStop= for ListenMessageQueue=: mq_unlink (Node cannot). ENOENT when gone. */
  unlinkMessageQueue?(name: string): void;
  /**
   * accept4 on a listening fd; undefined when nothing is pending (EAGAIN). Other errors
   * (ECONNABORTED, EMFILE, EBADF, EINVAL for a socket that does not listen, ...) throw with
   * syscall 'accept4'; the listening socket stays usable.
   */
  accept(fd: number): AcceptedConnection | undefined;
  /** getsockname of any socket fd. */
  localAddress(fd: number): SocketAddress;
  /**
   * Calls `onReadable` (once per wake-up, on the calling environment's loop) while a connection
   * or datagram is pending on `fd`; nothing is read or accepted by the watch itself.
   * Level-triggered: what the callback leaves pending wakes it again; pause() to stop that.
   * One watch per fd (a second is EEXIST); an fd that is not pollable (EBADF, EPERM for a
   * regular file) throws with syscall 'uv_poll_init'. A throwing callback becomes an uncaught
   * exception. Close the watch (or use `close(fd)` below) before anything else closes the fd.
   */
  watch(fd: number, onReadable: () => void): ReadinessWatch;
  /** Closes a watch on `fd` first (libuv must not poll a number that gets reused), then the fd. */
  close(fd: number): void;
  /**
   * The Accept=yes fast path: a thread of the addon's own accepts on the listening `fd`, clones
   * one child per connection from `plan` (built once; no cgroup, mounts, network namespace or
   * LISTEN_PID in it), the connection as `options.connectionFds`, and reaps the children itself
   * (they have no exit signal: the spawn addon's SIGCHLD reaper never sees them). MaxConnections
   * counts the live children, with exits reaped before any refusal. `onRecords` gets a batch per
   * wake-up of the loop. Throws a TypeError for a malformed plan or options, EEXIST when `fd` is
   * watched, EINVAL ('acceptSpawn') when it is not a listening socket, ENOTSOCK/EBADF
   * ('getsockopt') for a wrong or closed fd. Close the spawner before closing the fd.
   */
  acceptSpawn?(
    fd: number,
    plan: ExecPlan,
    options: AcceptSpawnOptions,
    onRecords: (records: AcceptRecord[]) => void,
  ): AcceptSpawner;
}

let cached: NativeSocket | undefined;

/** Loads the addon once per process. */
export function loadNativeSocket(): NativeSocket {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  const methods = [
    'listen',
    'openFifo',
    'openSpecial',
    'openMessageQueue',
    'accept',
    'localAddress',
    'watch',
    'close',
  ];
  if (
    typeof loaded !== 'object' ||
    loaded === null ||
    methods.some((m) => typeof Reflect.get(loaded, m) !== 'function')
  ) {
    throw new Error(`${file} does not have the triggerd_socket interface`);
  }
  cached = loaded as NativeSocket;
  return cached;
}
