// A fake NativeNotify for pure tests: a simulated fd table (fd numbers are never reused, so a
// double close or a leak is always visible) and notify sockets keyed by path. Tests inject
// datagrams with `socket.deliver(...)` or send them with `sendDatagram` as a client would. It
// keeps the real addon's observable rules (checked by the contract suite in
// test/integration/notify-socket.test.ts): TypeErrors for bad arguments, EBADF for closing an fd
// that is not open, EADDRINUSE for a second socket on a path, EAGAIN when a socket's queue is
// full, one onBatch per wake-up of at most 128 datagrams, and arrival on a later tick.
import type {
  NativeNotify,
  NativeSystemError,
  NotifyDatagram,
  NotifyItem,
  NotifySocket,
} from '../../src/native/notify-addon';

/** The real addon's bound on one batch. */
export const FAKE_NOTIFY_MAX_BATCH = 128;
/** Like net.unix.max_dgram_qlen on this machine: sends beyond it get EAGAIN. */
export const FAKE_NOTIFY_QUEUE_MAX = 64;

const ERRNO: Record<string, number> = { EBADF: 9, EAGAIN: 11, EADDRINUSE: 98, ECONNREFUSED: 111, EINVAL: 22 };

export function fakeNotifyError(code: string, syscall: string): NativeSystemError {
  const error = new Error(`${code}: fake error, ${syscall}`) as NativeSystemError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  return error;
}

function argumentError(message: string, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  const error = new TypeError(message);
  Object.assign(error, { code });
  return error;
}

function checkFd(value: unknown, name = 'fd'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw argumentError(
      `The "${name}" argument must be an integer in 0..2147483647`,
      'ERR_INVALID_ARG_VALUE',
    );
  }
  return value;
}

function checkPath(value: unknown): string {
  if (typeof value !== 'string') throw argumentError('The "path" argument must be a string');
  if (value.length < 2 || value.includes('\0') || (value[0] !== '/' && value[0] !== '@')) {
    throw argumentError(
      'The "path" argument must be an absolute path or @name without NUL bytes',
      'ERR_INVALID_ARG_VALUE',
    );
  }
  if (Buffer.byteLength(value) > 107) {
    const error = fakeNotifyError('ENAMETOOLONG', 'bind');
    error.path = value;
    throw error;
  }
  return value;
}

export type FakeFdKind = 'pipe-read' | 'pipe-write' | 'pidfd' | 'passed';

export interface FakeFd {
  kind: FakeFdKind;
  /** For pidfds: the process; -1 once marked exited. */
  pid?: number;
  /** For pipe ends: the other end's fd. */
  peer?: number;
  /** What this fd was received for (tests label datagram fds to check ownership). */
  label?: string;
}

export class FakeNotifySocket implements NotifySocket {
  readonly receiveBufferBytes = 16 * 1024 * 1024;
  readonly passPidfd: boolean;
  paused = false;
  closed = false;
  referenced = true;
  batches = 0;
  /** Datagrams waiting for a wake-up (the kernel's queue). */
  readonly queue: NotifyItem[] = [];
  private scheduled = false;

  constructor(
    private readonly owner: FakeNativeNotify,
    readonly path: string,
    private onBatch: ((batch: NotifyItem[]) => void) | undefined,
    private onError: ((error: NativeSystemError) => void) | undefined,
  ) {
    this.passPidfd = owner.passPidfd;
  }

  pause(): void {
    if (this.closed || this.paused) return;
    this.paused = true;
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    if (this.queue.length > 0) this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The kernel closes the fds of datagrams still queued when the socket goes.
    for (const item of this.queue.splice(0)) this.owner.discard(item);
    this.onBatch = undefined;
    this.onError = undefined;
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  /** Queues datagrams (see FakeNativeNotify.datagram) and wakes up on a later tick. */
  deliver(items: NotifyItem[]): void {
    if (this.closed) throw new Error(`fake notify socket ${this.path} is closed`);
    this.queue.push(...items);
    if (!this.paused) this.schedule();
  }

  /** Hands over what is queued now (one wake-up's worth per batch). Exceptions from onBatch propagate. */
  drain(): void {
    while (!this.closed && !this.paused && this.queue.length > 0 && this.onBatch !== undefined) {
      this.batches++;
      this.onBatch(this.queue.splice(0, FAKE_NOTIFY_MAX_BATCH));
    }
  }

  /** Reports a receive error, as the addon does for a failed recvmsg. */
  fail(error: NativeSystemError = fakeNotifyError('EINVAL', 'recvmsg')): void {
    this.onError?.(error);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }
}

export interface FakeDatagramOptions {
  /** Payload; a string is UTF-8. */
  payload?: string | Uint8Array;
  pid?: number;
  uid?: number;
  gid?: number;
  /** Passed fds: a count (new fds are made) or existing fake fds to "dup". */
  fds?: number | readonly number[];
  /** Whether the datagram carries a pidfd (default: the owner's passPidfd); its pid is `pid`. */
  pidfd?: boolean;
  /** The sender exited before the datagram was read: its pidfd reports -1. */
  exited?: boolean;
  truncated?: boolean;
  label?: string;
}

export class FakeNativeNotify implements NativeNotify {
  /** Every fd the fake ever handed out, open or closed (numbers are never reused). */
  readonly fds = new Map<number, FakeFd>();
  /** fd → how many times closeFd succeeded on it (> 1 cannot happen: a second close throws). */
  readonly closeCounts = new Map<number, number>();
  /** closeFd calls on fds that were not open (double closes, never-issued numbers). */
  readonly badCloses: number[] = [];
  readonly sockets: FakeNotifySocket[] = [];
  /** Whether sockets report SO_PASSPIDFD (datagrams then carry a pidfd). */
  passPidfd = true;
  /** When set, the next openNotifySocket throws it. */
  nextOpenError: NativeSystemError | undefined;
  private nextFd = 1000;
  private readonly open = new Set<number>();

  openNotifySocket(
    path: string,
    onBatch: (batch: NotifyItem[]) => void,
    onError: (error: NativeSystemError) => void,
  ): FakeNotifySocket {
    checkPath(path);
    if (typeof onBatch !== 'function') throw argumentError('The "onBatch" argument must be a function');
    if (typeof onError !== 'function') throw argumentError('The "onError" argument must be a function');
    if (this.nextOpenError !== undefined) {
      const error = this.nextOpenError;
      this.nextOpenError = undefined;
      throw error;
    }
    if (this.socketAt(path) !== undefined) {
      const error = fakeNotifyError('EADDRINUSE', 'bind');
      error.path = path;
      throw error;
    }
    const socket = new FakeNotifySocket(this, path, onBatch, onError);
    this.sockets.push(socket);
    return socket;
  }

  closeFd(fd: number): void {
    checkFd(fd);
    if (!this.open.has(fd)) {
      this.badCloses.push(fd);
      throw fakeNotifyError('EBADF', 'close');
    }
    this.open.delete(fd);
    this.closeCounts.set(fd, (this.closeCounts.get(fd) ?? 0) + 1);
  }

  pidfdGetPid(pidfd: number): number {
    checkFd(pidfd, 'pidfd');
    const entry = this.fds.get(pidfd);
    if (!this.open.has(pidfd) || entry?.kind !== 'pidfd') throw fakeNotifyError('EBADF', 'pidfdGetPid');
    return entry.pid ?? -1;
  }

  sendDatagram(path: string, buffer: Uint8Array, fds: readonly number[] = []): number {
    checkPath(path);
    const value: unknown = buffer;
    if (!(value instanceof Uint8Array))
      throw argumentError('The "buffer" argument must be a Buffer or Uint8Array');
    if (!Array.isArray(fds)) throw argumentError('The "fds" argument must be an array of fds');
    for (const fd of fds) {
      checkFd(fd, 'fds[]');
      if (!this.open.has(fd)) throw fakeNotifyError('EBADF', 'sendmsg');
    }
    if (fds.length > 253) throw fakeNotifyError('EINVAL', 'sendmsg');
    const socket = this.socketAt(path);
    if (socket === undefined) throw fakeNotifyError('ECONNREFUSED', 'sendmsg');
    if (socket.queue.length >= FAKE_NOTIFY_QUEUE_MAX) throw fakeNotifyError('EAGAIN', 'sendmsg');
    socket.deliver([this.datagram({ payload: buffer, fds: [...fds] })]);
    return buffer.length;
  }

  pipe(): [number, number] {
    const read = this.allocate({ kind: 'pipe-read' });
    const write = this.allocate({ kind: 'pipe-write', peer: read });
    (this.fds.get(read) as FakeFd).peer = write;
    return [read, write];
  }

  /**
   * A datagram as the addon would deliver it: this process's credentials unless overridden,
   * fresh fds for every passed fd (the kernel installs new ones in the receiver) and a pidfd.
   */
  datagram(options: FakeDatagramOptions = {}): NotifyDatagram {
    const payload =
      typeof options.payload === 'string'
        ? Buffer.from(options.payload, 'utf8')
        : Buffer.from(options.payload ?? []);
    const pid = options.pid ?? process.pid;
    const passed = typeof options.fds === 'number' ? options.fds : (options.fds?.length ?? 0);
    const received: number[] = [];
    for (let i = 0; i < passed; i++) received.push(this.allocate({ kind: 'passed', label: options.label }));
    const withPidfd = options.pidfd ?? this.passPidfd;
    const pidfd =
      withPidfd && pid > 0
        ? this.allocate({ kind: 'pidfd', pid: options.exited === true ? -1 : pid, label: options.label })
        : -1;
    const length = payload.length;
    return {
      kind: 'datagram',
      buffer: payload.subarray(0, 4097),
      length,
      pid,
      uid: options.uid ?? process.getuid?.() ?? 0,
      gid: options.gid ?? process.getgid?.() ?? 0,
      pidfd,
      fds: received,
      truncated: options.truncated ?? length > 4097,
    };
  }

  /** A new open fd. */
  allocate(entry: FakeFd): number {
    const fd = this.nextFd++;
    this.fds.set(fd, entry);
    this.open.add(fd);
    return fd;
  }

  isOpen(fd: number): boolean {
    return this.open.has(fd);
  }

  /** Fds still open, optionally of one kind. */
  openFds(kind?: FakeFdKind): number[] {
    return [...this.open].filter((fd) => kind === undefined || this.fds.get(fd)?.kind === kind);
  }

  /** The socket bound at `path`, if one is open. */
  socketAt(path: string): FakeNotifySocket | undefined {
    return this.sockets.find((socket) => !socket.closed && socket.path === path);
  }

  /** @internal The kernel's side of closing a socket with datagrams queued: their fds go too. */
  discard(item: NotifyItem): void {
    for (const fd of item.pidfd >= 0 ? [...item.fds, item.pidfd] : item.fds) this.open.delete(fd);
  }
}
