// The interface of the native addon, as TypeScript sees it. Only src/native/addon.ts loads the
// `.node` file; everything else takes a `NativeNetlink` so tests can pass a fake.

/** One datagram read from a netlink uevent socket, with the sender's address and credentials. */
export interface NetlinkMessage {
  kind: 'message';
  buffer: Buffer;
  /** nl_pid of the sender's address: 0 for the kernel. */
  senderPort: number;
  /** nl_groups of the sender's address (the multicast group it was sent to, 0 for unicast). */
  senderGroups: number;
  /** SCM_CREDENTIALS of the sender. */
  uid: number;
  gid: number;
  pid: number;
}

/** The kernel dropped messages (ENOBUFS) or one did not fit the read buffer (MSG_TRUNC). */
export interface NetlinkOverflow {
  kind: 'overflow';
  reason: 'ENOBUFS' | 'MSG_TRUNC';
}

export type NetlinkItem = NetlinkMessage | NetlinkOverflow;

/** Node-style system error as it crosses the native boundary. */
export interface NativeSystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export interface UeventSocketOptions {
  /** Multicast groups bitmask: 1 = kernel uevents, 2 = libudev (udevd's processed events). 0 = none (send-only). */
  groups: number;
  /** Receive buffer in bytes, set with SO_RCVBUFFORCE (falls back to SO_RCVBUF when not permitted). */
  receiveBufferBytes: number;
  /**
   * Take over this open uevent socket (carried across a re-exec, with what the kernel queued on
   * it) instead of opening one: it must be bound to `groups`; its buffer is left as it is. On
   * failure it stays open and the caller's; on success the returned socket owns it.
   */
  fd?: number;
}

export interface UeventSocket {
  /** The socket's own netlink port id (getsockname nl_pid). */
  readonly portId: number;
  /** The receive buffer the kernel actually granted (getsockopt SO_RCVBUF). */
  readonly receiveBufferBytes: number;
  /** Stop watching the fd (backpressure: the kernel's buffer queues meanwhile). */
  pause(): void;
  resume(): void;
  /** Send a datagram to a netlink port (0 = kernel) and/or multicast groups. Returns bytes sent. */
  send(buffer: Buffer, destPort: number, destGroups: number): number;
  /** Stop watching and close the fd. Idempotent. */
  close(): void;
  /** Let the process exit even while this socket is watched (uv_unref), like `server.unref()`. */
  unref(): void;
  /** Undo `unref()`: an open, unpaused socket keeps the process alive (the default). */
  ref(): void;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface NativeNetlink {
  /**
   * Open and bind a NETLINK_KOBJECT_UEVENT socket with SO_PASSCRED, watched with uv_poll on the
   * calling environment's loop. Each wake-up drains the socket to EAGAIN and calls `onBatch` once.
   * `onError` gets errors other than ENOBUFS/EAGAIN/EINTR; the socket stays open.
   */
  openUeventSocket(
    options: UeventSocketOptions,
    onBatch: (batch: NetlinkItem[]) => void,
    onError: (error: NativeSystemError) => void,
  ): UeventSocket;
  /** SO_PEERCRED of a connected unix stream socket fd. */
  peerCredentials(fd: number): PeerCredentials;
  /** Ask V8 to collect fully and return freed heap pages to the OS (after a start-up burst). */
  releaseMemory(): void;
}
