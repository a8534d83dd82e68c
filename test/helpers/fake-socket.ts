// A fake NativeSocket for pure tests of the .socket unit type: nothing touches the kernel.
//
//   const native = new FakeNativeSocket();
//   const fd = native.listen('stream', { family: 'inet', host: '127.0.0.1', port: 0 }, {});
//   native.watch(fd, onReadable);            // the unit under test watches it
//   native.connect(fd);                      // a client arrives: onReadable runs on a later tick
//   native.accept(fd);                       // → { fd, local, remote, peerPid, ... } or undefined
//   native.deliver(fd);                      // a datagram/FIFO write: readable until consume(fd)
//   native.failNext('listen', 'EADDRINUSE', 'bind');   // the next listen() throws that
//
// It keeps the real addon's observable rules (checked by the contract suite in
// test/integration/socket-native.test.ts): fds are numbers handed out once, port 0 gets an
// ephemeral port, a second bind of an address in use is EADDRINUSE (unless both set reusePort),
// accept returns undefined when nothing is pending, a closed fd is EBADF everywhere, one watch per
// fd (EEXIST), watches are level-triggered (onReadable again on the next tick while something is
// pending and the watch is not paused), close(fd) closes its watch, bad arguments are TypeErrors.
// Options are recorded (`files.get(fd).options`), not interpreted.
import type {
  AcceptedConnection,
  NativeSocket,
  NativeSystemError,
  ReadinessWatch,
  SocketAddress,
  SocketKind,
  SocketOptionError,
  SocketOptions,
} from '../../src/native/socket-addon';

const ERRNO: Record<string, number> = {
  EPERM: 1,
  ENOENT: 2,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  EINVAL: 22,
  EMFILE: 24,
  ENOTSOCK: 88,
  ENOTSUP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ECONNABORTED: 103,
};

/** A Node-style system error as the real addon throws it. */
export function fakeSocketError(
  code: string,
  syscall: string,
  extra: { path?: string; option?: string; address?: string; port?: number } = {},
): NativeSystemError {
  const error = new Error(`${code}: fake error, ${syscall}`) as NativeSystemError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  Object.assign(error, extra);
  return error;
}

function argumentError(message: string, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  const error = new TypeError(message);
  Object.assign(error, { code });
  return error;
}

function checkFd(value: unknown): number {
  if (typeof value !== 'number') throw argumentError('The "fd" argument must be an integer');
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff)
    throw argumentError('The "fd" argument must be an integer in 0..2147483647', 'ERR_INVALID_ARG_VALUE');
  return value;
}

function checkKind(value: unknown): SocketKind {
  if (value === 'stream' || value === 'dgram' || value === 'seqpacket') return value;
  throw argumentError(
    "The \"kind\" argument must be 'stream', 'dgram' or 'seqpacket'",
    typeof value === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE',
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkAddress(value: unknown): SocketAddress {
  if (!isObject(value)) throw argumentError('The "address" argument must be a SocketAddress object');
  const integer = (name: string, max: number): number => {
    const v = value[name];
    if (typeof v !== 'number') throw argumentError(`The "address.${name}" property must be an integer`);
    if (!Number.isInteger(v) || v < 0 || v > max)
      throw argumentError(`The "address.${name}" property is out of range`, 'ERR_INVALID_ARG_VALUE');
    return v;
  };
  const string = (name: string): string => {
    const v = value[name];
    if (typeof v !== 'string') throw argumentError(`The "address.${name}" property must be a string`);
    return v;
  };
  const family = string('family');
  switch (family) {
    case 'inet':
    case 'inet6': {
      const host = string('host');
      const port = integer('port', 65535);
      const ok = family === 'inet' ? /^\d{1,3}(\.\d{1,3}){3}$/.test(host) : host.includes(':');
      if (!ok) throw argumentError(`The "address.host" property must be numeric`, 'ERR_INVALID_ARG_VALUE');
      return family === 'inet' ? { family, host, port } : { family, host, port };
    }
    case 'unix': {
      const path = string('path');
      if (path.length < 2 || (!path.startsWith('/') && !path.startsWith('@')) || path.includes('\0'))
        throw argumentError(
          'The "address.path" property must be an absolute path or @name',
          'ERR_INVALID_ARG_VALUE',
        );
      return { family, path };
    }
    case 'vsock':
      return { family, cid: integer('cid', 0xffffffff), port: integer('port', 0xffffffff) };
    case 'netlink':
      return { family, protocol: integer('protocol', 31), group: integer('group', 0xffffffff) };
    default:
      throw argumentError(`The "address.family" property is not known: ${family}`, 'ERR_INVALID_ARG_VALUE');
  }
}

const BOOLEAN_OPTIONS = new Set([
  'freeBind',
  'transparent',
  'reusePort',
  'keepAlive',
  'noDelay',
  'passCredentials',
  'passSecurity',
  'broadcast',
]);

const INTEGER_OPTIONS = new Set([
  'backlog',
  'keepAliveTimeSec',
  'keepAliveIntervalSec',
  'keepAliveProbes',
  'deferAcceptSec',
  'priority',
  'receiveBuffer',
  'sendBuffer',
  'ipTos',
  'ipTtl',
  'mark',
  'socketMode',
  'uid',
  'gid',
  'directoryMode',
]);

/** Types checked as the real addon does; unknown keys are ignored by both. */
function checkOptions(value: unknown): SocketOptions {
  if (value === undefined) return {};
  if (!isObject(value)) throw argumentError('The "options" argument must be a SocketOptions object');
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (key === 'bindIPv6Only') {
      if (v !== 'default' && v !== 'both' && v !== 'ipv6-only')
        throw argumentError('The "options.bindIPv6Only" property is not valid', 'ERR_INVALID_ARG_VALUE');
    } else if (key === 'bindToDevice') {
      if (typeof v !== 'string') throw argumentError('The "options.bindToDevice" property must be a string');
    } else if (BOOLEAN_OPTIONS.has(key)) {
      if (typeof v !== 'boolean') throw argumentError(`The "options.${key}" property must be a boolean`);
    } else if (INTEGER_OPTIONS.has(key) && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      throw argumentError(`The "options.${key}" property must be a non-negative integer`);
    }
  }
  return { ...value } as SocketOptions;
}

function checkPath(value: unknown, name = 'path'): string {
  if (typeof value !== 'string') throw argumentError(`The "${name}" argument must be a string`);
  if (value.length < 2 || !value.startsWith('/') || value.includes('\0'))
    throw argumentError(`The "${name}" argument must be an absolute path`, 'ERR_INVALID_ARG_VALUE');
  return value;
}

function addressKey(kind: SocketKind, a: SocketAddress): string {
  switch (a.family) {
    case 'inet':
    case 'inet6':
      return `${kind === 'stream' ? 'tcp' : kind === 'dgram' ? 'udp' : 'sctp'} ${a.family} ${a.host} ${a.port}`;
    case 'unix':
      return `unix ${a.path}`;
    case 'vsock':
      return `vsock ${kind} ${a.cid} ${a.port}`;
    case 'netlink':
      return `netlink ${a.protocol} ${a.group} ${Math.random()}`; // never conflicts
  }
}

/** A connection waiting in a fake listening socket's backlog. */
export interface FakePendingConnection {
  remote: SocketAddress;
  peerPid: number;
  peerUid: number;
  peerGid: number;
}

/** Everything the fake knows about one fd it handed out. */
export interface FakeFile {
  fd: number;
  type: 'socket' | 'connection' | 'fifo' | 'special' | 'mqueue';
  kind?: SocketKind;
  /** Sockets: the bound address (port 0 already replaced); connections: the local end. */
  address?: SocketAddress;
  /** Connections: the remote end. */
  remote?: SocketAddress;
  /** FIFO/special path or message queue name. */
  path?: string;
  /** Message queues: the arguments of openMessageQueue. */
  queue?: { mode: number; maxMessages?: number; messageSize?: number };
  options: SocketOptions;
  /** Connections in the backlog (stream/seqpacket sockets). */
  readonly pending: FakePendingConnection[];
  /** A datagram/FIFO write/message is waiting (set by deliver, cleared by consume). */
  readable: boolean;
  watch?: FakeReadinessWatch;
  addressKey?: string;
}

export class FakeReadinessWatch implements ReadinessWatch {
  paused = false;
  closed = false;
  referenced = true;
  /** How often onReadable ran. */
  wakeUps = 0;
  private scheduled = false;

  constructor(
    private readonly owner: FakeNativeSocket,
    readonly fd: number,
    private onReadable: (() => void) | undefined,
  ) {}

  pause(): void {
    if (!this.closed) this.paused = true;
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    this.poke();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onReadable = undefined;
    const file = this.owner.files.get(this.fd);
    if (file?.watch === this) file.watch = undefined;
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  /** Schedules a wake-up on a later tick if something is pending (level-triggered). */
  poke(): void {
    if (this.scheduled || this.closed || this.paused || !this.owner.isReady(this.fd)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed || this.paused || !this.owner.isReady(this.fd)) return;
      this.wakeUps++;
      // As with the real addon, an exception here is an uncaught exception.
      this.onReadable?.();
      this.poke();
    });
  }
}

export class FakeNativeSocket implements NativeSocket {
  /** Every fd handed out and not closed yet. */
  readonly files = new Map<number, FakeFile>();
  /** Message queue names that exist (openMessageQueue creates, unlinkMessageQueue removes). */
  readonly queues = new Set<string>();
  /** Every call, in order, for assertions: [method, first argument]. */
  readonly calls: Array<[string, unknown]> = [];
  nextFd = 100;
  nextPort = 40000;
  private nextRemotePort = 50000;
  private readonly failures = new Map<string, NativeSystemError[]>();

  /** The next call of `method` throws this error (queued: call again for the one after). */
  failNext(
    method: keyof NativeSocket,
    code: string,
    syscall: string,
    extra: { path?: string; option?: string } = {},
  ): void {
    const queue = this.failures.get(method) ?? [];
    queue.push(fakeSocketError(code, syscall, extra));
    this.failures.set(method, queue);
  }

  listen(
    kind: SocketKind,
    address: SocketAddress,
    options: SocketOptions,
    warnings?: SocketOptionError[],
  ): number {
    const k = checkKind(kind);
    const a = checkAddress(address);
    const o = checkOptions(options);
    if (warnings !== undefined && !Array.isArray(warnings))
      throw argumentError('The "warnings" argument must be an array');
    this.calls.push(['listen', a]);
    this.maybeFail('listen');
    const bound: SocketAddress =
      (a.family === 'inet' || a.family === 'inet6') && a.port === 0 ? { ...a, port: this.nextPort++ } : a;
    const key = addressKey(k, bound);
    for (const other of this.files.values()) {
      if (other.addressKey !== key) continue;
      if (o.reusePort === true && other.options.reusePort === true) continue;
      const extra =
        bound.family === 'unix'
          ? { path: bound.path }
          : bound.family === 'inet' || bound.family === 'inet6'
            ? { address: bound.host, port: bound.port }
            : {};
      throw fakeSocketError('EADDRINUSE', 'bind', extra);
    }
    return this.add({ type: 'socket', kind: k, address: bound, options: o, addressKey: key });
  }

  openFifo(path: string, options: SocketOptions): number {
    const p = checkPath(path);
    const o = checkOptions(options);
    this.calls.push(['openFifo', p]);
    this.maybeFail('openFifo');
    return this.add({ type: 'fifo', path: p, options: o });
  }

  openSpecial(path: string): number {
    const p = checkPath(path);
    this.calls.push(['openSpecial', p]);
    this.maybeFail('openSpecial');
    return this.add({ type: 'special', path: p, options: {} });
  }

  openMessageQueue(name: string, mode: number, maxMessages?: number, messageSize?: number): number {
    const n = checkPath(name, 'name');
    if (n.indexOf('/', 1) !== -1)
      throw argumentError('The "name" argument must be /name', 'ERR_INVALID_ARG_VALUE');
    if (typeof mode !== 'number') throw argumentError('The "mode" argument must be an integer');
    this.calls.push(['openMessageQueue', n]);
    this.maybeFail('openMessageQueue');
    this.queues.add(n);
    return this.add({ type: 'mqueue', path: n, options: {}, queue: { mode, maxMessages, messageSize } });
  }

  unlinkMessageQueue(name: string): void {
    const n = checkPath(name, 'name');
    this.calls.push(['unlinkMessageQueue', n]);
    this.maybeFail('unlinkMessageQueue');
    if (!this.queues.delete(n)) throw fakeSocketError('ENOENT', 'mq_unlink', { path: n });
  }

  accept(fd: number): AcceptedConnection | undefined {
    const f = checkFd(fd);
    this.calls.push(['accept', f]);
    this.maybeFail('accept');
    const file = this.open(f, 'accept4');
    if (file.type !== 'socket' || file.kind === 'dgram')
      throw fakeSocketError(file.type === 'socket' ? 'ENOTSUP' : 'EINVAL', 'accept4');
    const next = file.pending.shift();
    if (next === undefined || file.address === undefined) return undefined;
    const local = file.address;
    const connection = this.add({
      type: 'connection',
      kind: file.kind,
      address: local,
      remote: next.remote,
      options: {},
    });
    return {
      fd: connection,
      local,
      remote: next.remote,
      peerPid: next.peerPid,
      peerUid: next.peerUid,
      peerGid: next.peerGid,
    };
  }

  localAddress(fd: number): SocketAddress {
    const f = checkFd(fd);
    const file = this.open(f, 'getsockname');
    if (file.address === undefined) throw fakeSocketError('ENOTSOCK', 'getsockname');
    return file.address;
  }

  watch(fd: number, onReadable: () => void): FakeReadinessWatch {
    const f = checkFd(fd);
    if (typeof onReadable !== 'function') throw argumentError('The "onReadable" argument must be a function');
    const file = this.files.get(f);
    if (file === undefined) throw fakeSocketError('EBADF', 'uv_poll_init');
    if (file.watch !== undefined) throw fakeSocketError('EEXIST', 'uv_poll_init');
    const watch = new FakeReadinessWatch(this, f, onReadable);
    file.watch = watch;
    watch.poke();
    return watch;
  }

  close(fd: number): void {
    const f = checkFd(fd);
    this.calls.push(['close', f]);
    const file = this.open(f, 'close');
    file.watch?.close();
    this.files.delete(f);
  }

  // ---- what tests do to the fake ----

  /**
   * A client connects to listening socket `fd`: the connection waits in its backlog until
   * accepted, and a watch wakes up. Defaults: a loopback client of the same family, or for unix
   * an unnamed one with this process's credentials.
   */
  connect(fd: number, client: Partial<FakePendingConnection> = {}): void {
    const file = this.open(fd, 'connect');
    if (file.type !== 'socket' || file.kind === 'dgram') throw fakeSocketError('ENOTSUP', 'connect');
    const family = file.address?.family;
    const remote: SocketAddress =
      client.remote ??
      (family === 'inet6'
        ? { family: 'inet6', host: '::1', port: this.nextRemotePort++ }
        : family === 'unix'
          ? { family: 'unix', path: '' }
          : { family: 'inet', host: '127.0.0.1', port: this.nextRemotePort++ });
    const unix = family === 'unix';
    file.pending.push({
      remote,
      peerPid: client.peerPid ?? (unix ? process.pid : -1),
      peerUid: client.peerUid ?? (unix ? (process.getuid?.() ?? 0) : -1),
      peerGid: client.peerGid ?? (unix ? (process.getgid?.() ?? 0) : -1),
    });
    file.watch?.poke();
  }

  /** A datagram (FIFO write, message) arrives on `fd`: readable until consume(fd). */
  deliver(fd: number): void {
    const file = this.open(fd, 'deliver');
    file.readable = true;
    file.watch?.poke();
  }

  /** Whoever owns `fd` read what was waiting (the fake's stand-in for a service reading). */
  consume(fd: number): void {
    const file = this.files.get(fd);
    if (file !== undefined) file.readable = false;
  }

  /** Something is pending on `fd` (a watch would wake up). */
  isReady(fd: number): boolean {
    const file = this.files.get(fd);
    return file !== undefined && (file.readable || file.pending.length > 0);
  }

  isOpen(fd: number): boolean {
    return this.files.has(fd);
  }

  /** The fds of listening sockets, FIFOs, special files and queues still open. */
  openListeners(): FakeFile[] {
    return [...this.files.values()].filter((f) => f.type !== 'connection');
  }

  private add(init: Omit<FakeFile, 'fd' | 'pending' | 'readable'>): number {
    const fd = this.nextFd++;
    this.files.set(fd, { ...init, fd, pending: [], readable: false });
    return fd;
  }

  private open(fd: number, syscall: string): FakeFile {
    const file = this.files.get(fd);
    if (file === undefined) throw fakeSocketError('EBADF', syscall);
    return file;
  }

  private maybeFail(method: string): void {
    const error = this.failures.get(method)?.shift();
    if (error !== undefined) throw error;
  }
}
