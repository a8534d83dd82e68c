// A fake NativeNetlink for pure tests of the pipeline: the test injects batches with
// `fake.deliver(items)`, and can see what was sent and how each socket was paused, resumed and
// closed. It keeps the real addon's observable rules (checked by test/unit/native-contract):
// argument TypeErrors, EBADF after close, one onBatch per wake-up of at most 4096 items,
// and delivery to another socket's port happening on a later turn of the event loop.
import type {
  NativeNetlink,
  NativeSystemError,
  NetlinkItem,
  NetlinkMessage,
  PeerCredentials,
  UeventSocket,
  UeventSocketOptions,
} from '../../src/native/types';

/** The real addon's bound on one batch. */
export const FAKE_MAX_BATCH_ITEMS = 4096;

const ERRNO: Record<string, number> = { EBADF: 9, ENOTSOCK: 88, ECONNREFUSED: 111, ENOBUFS: 105 };

/** A Node-style system error as the addon makes them (errno negative, as Node reports it). */
export function fakeSystemError(code: string, syscall: string): NativeSystemError {
  const error = new Error(`${code}: fake error, ${syscall}`) as NativeSystemError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  return error;
}

export interface FakeSend {
  from: FakeUeventSocket;
  buffer: Buffer;
  destPort: number;
  destGroups: number;
}

function argumentError(message: string): TypeError {
  const error = new TypeError(message);
  Object.assign(error, { code: 'ERR_INVALID_ARG_TYPE' });
  return error;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw argumentError(`The "${name}" argument must be an integer in ${min}..${max}`);
  }
  return value;
}

export class FakeUeventSocket implements UeventSocket {
  readonly portId: number;
  readonly receiveBufferBytes: number;
  readonly groups: number;
  paused = false;
  closed = false;
  referenced = true;
  pauseCount = 0;
  resumeCount = 0;
  closeCount = 0;
  /** What the socket has received but not yet handed to onBatch (the kernel's buffer). */
  readonly queue: NetlinkItem[] = [];
  private drainScheduled = false;

  constructor(
    private readonly owner: FakeNativeNetlink,
    options: UeventSocketOptions,
    portId: number,
    private onBatch: ((batch: NetlinkItem[]) => void) | undefined,
    private onError: ((error: NativeSystemError) => void) | undefined,
  ) {
    this.portId = portId;
    this.groups = options.groups;
    // The kernel doubles the requested size for its bookkeeping; mimic that.
    this.receiveBufferBytes = options.receiveBufferBytes * 2;
  }

  pause(): void {
    if (this.closed || this.paused) return;
    this.paused = true;
    this.pauseCount += 1;
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    this.resumeCount += 1;
    // Like uv_poll: what queued up while paused arrives on a later wake-up, not inside resume().
    if (this.queue.length > 0) this.scheduleDrain();
  }

  send(buffer: Buffer, destPort: number, destGroups: number): number {
    // Callers may be untyped JavaScript; check as the addon does.
    const value: unknown = buffer;
    if (!(value instanceof Uint8Array)) {
      throw argumentError('The "buffer" argument must be a Buffer or Uint8Array');
    }
    checkInteger(destPort, 'destPort', 0, 0xffffffff);
    checkInteger(destGroups, 'destGroups', 0, 0xffffffff);
    if (this.closed) throw fakeSystemError('EBADF', 'sendto');
    this.owner.route(this, Buffer.from(buffer), destPort, destGroups);
    this.owner.sent.push({ from: this, buffer: Buffer.from(buffer), destPort, destGroups });
    return buffer.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCount += 1;
    this.queue.length = 0;
    this.onBatch = undefined;
    this.onError = undefined;
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  /** Queues items and, unless paused or closed, hands them over now (one onBatch per ≤ 4096). */
  deliver(items: NetlinkItem[]): void {
    if (this.closed) throw new Error(`fake socket ${this.portId} is closed`);
    this.queue.push(...items);
    this.drain();
  }

  /** Reports a receive error through onError, as the addon does for a failed recvmsg. */
  fail(error: NativeSystemError = fakeSystemError('ENOBUFS', 'recvmsg')): void {
    if (this.closed) throw new Error(`fake socket ${this.portId} is closed`);
    this.onError?.(error);
  }

  /** Delivers what is queued now (what a uv_poll wake-up does). Exceptions from onBatch propagate. */
  drain(): void {
    while (!this.closed && !this.paused && this.queue.length > 0 && this.onBatch !== undefined) {
      this.onBatch(this.queue.splice(0, FAKE_MAX_BATCH_ITEMS));
    }
  }

  /** @internal Used by routing: arrival from another socket is asynchronous, as with the kernel. */
  enqueue(item: NetlinkItem): void {
    if (this.closed) return;
    this.queue.push(item);
    if (!this.paused) this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }
}

export class FakeNativeNetlink implements NativeNetlink {
  /** Every socket opened, in order (closed ones stay, with `closed` set). */
  readonly sockets: FakeUeventSocket[] = [];
  /** Every datagram sent by any socket. */
  readonly sent: FakeSend[] = [];
  /** fd → credentials for peerCredentials(); other fds fail with ENOTSOCK. */
  readonly peerCredentialsByFd = new Map<number, PeerCredentials>();
  /** When set, the next openUeventSocket throws it (then it is cleared). */
  nextOpenError: NativeSystemError | undefined;
  private nextPortId = 1000;

  openUeventSocket(
    options: UeventSocketOptions,
    onBatch: (batch: NetlinkItem[]) => void,
    onError: (error: NativeSystemError) => void,
  ): FakeUeventSocket {
    if (typeof options !== 'object' || options === null) {
      throw argumentError('The "options" argument must be an object');
    }
    checkInteger(options.groups, 'options.groups', 0, 0xffffffff);
    checkInteger(options.receiveBufferBytes, 'options.receiveBufferBytes', 1, 0x7fffffff);
    if (typeof onBatch !== 'function') throw argumentError('The "onBatch" argument must be a function');
    if (typeof onError !== 'function') throw argumentError('The "onError" argument must be a function');
    if (this.nextOpenError !== undefined) {
      const error = this.nextOpenError;
      this.nextOpenError = undefined;
      throw error;
    }
    const socket = new FakeUeventSocket(this, options, this.nextPortId++, onBatch, onError);
    this.sockets.push(socket);
    return socket;
  }

  releaseCount = 0;

  releaseMemory(): void {
    this.releaseCount++;
  }

  peerCredentials(fd: number): PeerCredentials {
    checkInteger(fd, 'fd', 0, 0x7fffffff);
    const credentials = this.peerCredentialsByFd.get(fd);
    if (credentials === undefined) throw fakeSystemError('ENOTSOCK', 'getsockopt');
    return { ...credentials };
  }

  /** The most recently opened socket that is still open. */
  get current(): FakeUeventSocket {
    for (let i = this.sockets.length - 1; i >= 0; i--) {
      const socket = this.sockets[i];
      if (socket !== undefined && !socket.closed) return socket;
    }
    throw new Error('no open fake uevent socket');
  }

  /** Injects a batch into the current socket (see FakeUeventSocket.deliver). */
  deliver(items: NetlinkItem[]): void {
    this.current.deliver(items);
  }

  /** @internal Unicast to a port and multicast to groups, as the kernel routes a sendto. */
  route(from: FakeUeventSocket, buffer: Buffer, destPort: number, destGroups: number): void {
    // The kernel refuses unicast to a port nobody holds (0 is the kernel itself).
    if (destPort !== 0 && !this.sockets.some((socket) => !socket.closed && socket.portId === destPort)) {
      throw fakeSystemError('ECONNREFUSED', 'sendto');
    }
    for (const socket of this.sockets) {
      if (socket.closed || socket === from) continue;
      const unicast = destPort !== 0 && socket.portId === destPort;
      const multicast = (socket.groups & destGroups) !== 0;
      if (!unicast && !multicast) continue;
      socket.enqueue(
        fakeMessage(buffer, { senderPort: from.portId, senderGroups: unicast ? 0 : destGroups }),
      );
    }
  }
}

/** A message item with this process's credentials unless overridden (kernel: fakeKernelMessage). */
export function fakeMessage(
  buffer: Buffer,
  fields: Partial<Omit<NetlinkMessage, 'kind' | 'buffer'>> = {},
): NetlinkMessage {
  return {
    kind: 'message',
    buffer,
    senderPort: fields.senderPort ?? 0,
    senderGroups: fields.senderGroups ?? 0,
    uid: fields.uid ?? process.getuid?.() ?? 0,
    gid: fields.gid ?? process.getgid?.() ?? 0,
    pid: fields.pid ?? process.pid,
  };
}

/** A kernel uevent as the addon delivers it: `ACTION@DEVPATH\0KEY=VALUE\0...`, port 0, group 1. */
export function fakeKernelMessage(
  action: string,
  devpath: string,
  properties: Record<string, string> = {},
): NetlinkMessage {
  const fields = [`${action}@${devpath}`, `ACTION=${action}`, `DEVPATH=${devpath}`];
  for (const [key, value] of Object.entries(properties)) fields.push(`${key}=${value}`);
  const buffer = Buffer.from(fields.map((field) => `${field}\0`).join(''), 'latin1');
  return { kind: 'message', buffer, senderPort: 0, senderGroups: 1, uid: 0, gid: 0, pid: 0 };
}

/**
 * Collects what onBatch/onError receive, for tests of either implementation:
 * `const rec = recordBatches(); native.openUeventSocket(opts, rec.onBatch, rec.onError)`.
 */
export interface BatchRecorder {
  readonly batches: NetlinkItem[][];
  readonly errors: NativeSystemError[];
  onBatch: (batch: NetlinkItem[]) => void;
  onError: (error: NativeSystemError) => void;
  items(): NetlinkItem[];
  /** Resolves with the first item (so far or to come) that matches; rejects after `timeoutMs`. */
  waitFor<T extends NetlinkItem>(predicate: (item: NetlinkItem) => item is T, timeoutMs?: number): Promise<T>;
}

export function recordBatches(): BatchRecorder {
  const batches: NetlinkItem[][] = [];
  const errors: NativeSystemError[] = [];
  const items = (): NetlinkItem[] => batches.flat();
  return {
    batches,
    errors,
    onBatch: (batch) => {
      batches.push(batch);
    },
    onError: (error) => {
      errors.push(error);
    },
    items,
    async waitFor<T extends NetlinkItem>(
      predicate: (item: NetlinkItem) => item is T,
      timeoutMs = 3000,
    ): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = items().find(predicate);
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          throw new Error(`no matching item within ${timeoutMs} ms (${items().length} items received)`);
        }
        // Polling keeps this independent of how (sync or on a later tick) the implementation delivers.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
}

/** Type guard for `waitFor`: a message whose bytes start with `prefix`. */
export function messageStartingWith(prefix: string | Buffer): (item: NetlinkItem) => item is NetlinkMessage {
  const bytes = typeof prefix === 'string' ? Buffer.from(prefix, 'latin1') : prefix;
  return (item): item is NetlinkMessage =>
    item.kind === 'message' && item.buffer.subarray(0, bytes.length).equals(bytes);
}
