// The one module that loads triggerd_socket.node (native/socket/) and declares its interface:
// the listening sockets, FIFOs, special files and message queues of .socket units, made with
// every option systemd.socket(5) offers (Node's `net` cannot set most of them, and a Node wrapper
// would read from an fd that belongs to the service), plus accept and readiness watching.
// Everything else takes a `NativeSocket`, so pure tests can pass test/helpers/fake-socket instead.
import { requireAddon } from './addon';
import type { NativeSystemError } from './types';

export type { NativeSystemError };

const ADDON_FILE = 'triggerd_socket.node';

export type SocketKind = 'stream' | 'dgram' | 'seqpacket';

/** Where a socket listens, already parsed from ListenStream= & co. (src/units/socket-address.ts). */
export type SocketAddress =
  | { family: 'inet'; host: string; port: number }
  | { family: 'inet6'; host: string; port: number; scopeId?: number }
  /** `path` absolute, or `@name` for the abstract namespace. */
  | { family: 'unix'; path: string }
  | { family: 'vsock'; cid: number; port: number }
  /** ListenNetlink=: protocol number and multicast group. */
  | { family: 'netlink'; protocol: number; group: number };

/** The [Socket] options that become setsockopt calls; unset means the kernel's default. */
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
}

export interface ReadinessWatch {
  /** Stop waking up (the service owns the socket now, or a trigger limit paused it). */
  pause(): void;
  resume(): void;
  /** Stop watching; the fd stays open (it belongs to the socket unit). Idempotent. */
  close(): void;
}

export interface NativeSocket {
  /**
   * socket(2) + the options + bind(2) + listen(2) (stream/seqpacket), non-blocking and
   * close-on-exec (the spawn layer clears close-on-exec on the fds it passes). Unix paths:
   * parent directories created with `directoryMode`, a stale socket file replaced, then chmod/
   * chown. Throws a NativeSystemError whose `syscall` names the failing step ('bind', ...).
   */
  listen(kind: SocketKind, address: SocketAddress, options: SocketOptions): number;
  /** ListenFIFO=: mkfifo (mode `socketMode`, parents with `directoryMode`), opened O_RDWR. */
  openFifo(path: string, options: SocketOptions): number;
  /** ListenSpecial=: an existing character device or file, opened O_RDWR (O_RDONLY if refused). */
  openSpecial(path: string): number;
  /** ListenMessageQueue=: mq_open(O_CREAT|O_RDWR) with MessageQueueMaxMessages=/MessageSize=. */
  openMessageQueue(name: string, mode: number, maxMessages?: number, messageSize?: number): number;
  /** accept4 on a listening fd; undefined when nothing is pending (EAGAIN). */
  accept(fd: number): AcceptedConnection | undefined;
  /** getsockname of any socket fd. */
  localAddress(fd: number): SocketAddress;
  /**
   * Calls `onReadable` (once per wake-up, on the calling environment's loop) while a connection
   * or datagram is pending on `fd`; nothing is read or accepted by the watch itself.
   */
  watch(fd: number, onReadable: () => void): ReadinessWatch;
  close(fd: number): void;
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
