// A fake NativeFanotify for pure tests: events are raw fanotify records delivered on a later tick,
// one onBatch per wake-up; file handles are 8-byte ids the fake maps back to paths; permission
// events wait (a promise per opener) until respond() or close(). It keeps the real addon's
// observable rules (checked by the contract suite in test/integration/fanotify-native.test.ts):
// TypeErrors for bad arguments, ENOENT for a missing path, EPERM for filesystem/mount marks and
// permission classes when `unprivileged`, EBADF for fds the handle did not read or once closed,
// ENOENT for answering an event that does not wait.
import {
  FAN,
  FAN_INIT,
  FAN_MARK,
  FAN_PERMISSION_EVENTS,
  type FanotifyHandle,
  type NativeFanotify,
  type NativeSystemError,
} from '../../src/native/fanotify-addon';
import { FAN_INFO } from '../../src/events/fanotify-events';

const ERRNO: Record<string, number> = { EPERM: 1, ENOENT: 2, EBADF: 9, EINVAL: 22, ESTALE: 116 };

export function fakeFanotifyError(code: string, syscall: string, path?: string): NativeSystemError {
  const error = new Error(
    `${code}: fake error, ${syscall}${path === undefined ? '' : ` '${path}'`}`,
  ) as NativeSystemError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  if (path !== undefined) error.path = path;
  return error;
}

function argumentError(message: string, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  const error = new TypeError(message);
  Object.assign(error, { code });
  return error;
}

function checkPath(value: unknown): string {
  if (typeof value !== 'string') throw argumentError('The "path" argument must be a string');
  if (value.length === 0 || value.includes('\0'))
    throw argumentError(
      'The "path" argument must be a non-empty path without NUL bytes',
      'ERR_INVALID_ARG_VALUE',
    );
  return value;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number')
    throw argumentError(`The "${name}" argument must be an integer in ${min}..${max}`);
  if (!Number.isInteger(value) || value < min || value > max)
    throw argumentError(
      `The "${name}" argument must be an integer in ${min}..${max}`,
      'ERR_INVALID_ARG_VALUE',
    );
  return value;
}

/** One info record to encode. */
export type FakeInfo =
  | {
      type: 'fid' | 'dfid' | 'dfid_name' | 'old_dfid_name' | 'new_dfid_name';
      fsid?: Buffer;
      handle: Buffer;
      name?: string;
    }
  | { type: 'pidfd'; pidfd: number }
  | { type: 'error'; error: number; count: number }
  | { type: 'range'; offset: bigint; count: bigint }
  | { type: 'raw'; infoType: number; body: Buffer };

export interface FakeEvent {
  mask: number;
  fd?: number;
  pid?: number;
  info?: FakeInfo[];
}

const FID_TYPE: Record<string, number> = {
  fid: FAN_INFO.FID,
  dfid: FAN_INFO.DFID,
  dfid_name: FAN_INFO.DFID_NAME,
  old_dfid_name: FAN_INFO.OLD_DFID_NAME,
  new_dfid_name: FAN_INFO.NEW_DFID_NAME,
};

function pad4(b: Buffer): Buffer {
  const len = Math.ceil(b.length / 4) * 4;
  return len === b.length ? b : Buffer.concat([b, Buffer.alloc(len - b.length)]);
}

function encodeInfo(info: FakeInfo): Buffer {
  let type: number;
  let body: Buffer;
  switch (info.type) {
    case 'pidfd':
      type = FAN_INFO.PIDFD;
      body = Buffer.alloc(4);
      body.writeInt32LE(info.pidfd, 0);
      break;
    case 'error':
      type = FAN_INFO.ERROR;
      body = Buffer.alloc(8);
      body.writeInt32LE(info.error, 0);
      body.writeUInt32LE(info.count, 4);
      break;
    case 'range':
      type = FAN_INFO.RANGE;
      body = Buffer.alloc(20);
      body.writeBigUInt64LE(info.offset, 4);
      body.writeBigUInt64LE(info.count, 12);
      break;
    case 'raw':
      type = info.infoType;
      body = info.body;
      break;
    default:
      type = FID_TYPE[info.type];
      body = Buffer.concat([
        info.fsid ?? Buffer.alloc(8, 0xaa),
        info.handle,
        info.name === undefined ? Buffer.alloc(0) : Buffer.from(info.name + '\0'),
      ]);
  }
  const out = pad4(Buffer.concat([Buffer.alloc(4), body]));
  out.writeUInt8(type, 0);
  out.writeUInt16LE(out.length, 2);
  return out;
}

/** fanotify_event_metadata records with their info records, as the kernel writes them. */
export function encodeFanotifyRecords(events: readonly FakeEvent[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of events) {
    const info = Buffer.concat((e.info ?? []).map(encodeInfo));
    const meta = Buffer.alloc(24);
    meta.writeUInt32LE(24 + info.length, 0);
    meta.writeUInt8(3, 4);
    meta.writeUInt16LE(24, 6);
    meta.writeUInt32LE(e.mask >>> 0, 8);
    meta.writeUInt32LE(Math.floor(e.mask / 0x1_0000_0000), 12);
    meta.writeInt32LE(e.fd ?? -1, 16);
    meta.writeInt32LE(e.pid ?? 0, 20);
    parts.push(meta, info);
  }
  return Buffer.concat(parts);
}

/** A struct file_handle (handle_bytes 8, type 1) carrying `id`. */
export function fakeFileHandle(id: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(8, 0);
  b.writeInt32LE(1, 4);
  b.writeBigUInt64LE(BigInt(id), 8);
  return b;
}

export type FakeVerdict = 'allow' | 'deny' | 'closed';

interface Mark {
  flags: number;
  mask: number;
  path: string;
}

export class FakeFanotifyHandle implements FanotifyHandle {
  closed = false;
  paused = false;
  referenced = true;
  batches = 0;
  readonly marks: Mark[] = [];
  readonly responses: Array<{ fd: number; response: number }> = [];
  readonly queue: FakeEvent[] = [];
  /** Event fds handed over and not closed. */
  readonly eventFds = new Set<number>();
  private readonly waiting = new Map<number, (v: FakeVerdict) => void>();
  private readonly mounts = new Set<number>();
  private scheduled = false;

  constructor(
    private readonly owner: FakeNativeFanotify,
    readonly flags: number,
    private onBatch: ((bytes: Buffer) => void) | undefined,
    private onError: ((error: NativeSystemError) => void) | undefined,
  ) {}

  get ownedEventFds(): number {
    return this.eventFds.size;
  }

  get throttled(): boolean {
    return false;
  }

  mark(flags: unknown, mask: unknown, path: unknown): void {
    const f = checkInteger(flags, 'flags', 0, 0xffffffff);
    const m = checkInteger(mask, 'mask', 0, Number.MAX_SAFE_INTEGER);
    const p = checkPath(path);
    if (this.closed) throw fakeFanotifyError('EBADF', 'fanotify_mark', p);
    if (this.owner.missing.has(p)) throw fakeFanotifyError('ENOENT', 'fanotify_mark', p);
    if (this.owner.unprivileged && (f & (FAN_MARK.FILESYSTEM | FAN_MARK.MOUNT)) !== 0)
      throw fakeFanotifyError('EPERM', 'fanotify_mark', p);
    if ((f & FAN_MARK.REMOVE) !== 0) {
      const i = this.marks.findIndex((k) => k.path === p && (k.flags & 0x110) === (f & 0x110));
      if (i < 0) throw fakeFanotifyError('ENOENT', 'fanotify_mark', p);
      this.marks.splice(i, 1);
      return;
    }
    this.marks.push({ flags: f, mask: m, path: p });
  }

  respond(fd: unknown, response: unknown): void {
    const f = checkInteger(fd, 'fd', 0, 0x7fffffff);
    const r = checkInteger(response, 'response', 1, 0xffffffff);
    if (!this.eventFds.has(f) || this.closed) throw fakeFanotifyError('EBADF', 'write');
    const resolve = this.waiting.get(f);
    if (resolve === undefined) throw fakeFanotifyError('ENOENT', 'write');
    this.waiting.delete(f);
    this.responses.push({ fd: f, response: r });
    resolve((r & 0x2) !== 0 ? 'deny' : 'allow');
  }

  closeEventFd(fd: unknown): void {
    const f = checkInteger(fd, 'fd', 0, 0x7fffffff);
    if (!this.eventFds.has(f)) throw fakeFanotifyError('EBADF', 'close');
    this.eventFds.delete(f);
    this.owner.fdPaths.delete(f);
  }

  openMount(path: unknown): number {
    const p = checkPath(path);
    if (this.closed) throw fakeFanotifyError('EBADF', 'open', p);
    if (this.owner.missing.has(p)) throw fakeFanotifyError('ENOENT', 'open', p);
    const fd = this.owner.nextFd++;
    this.mounts.add(fd);
    return fd;
  }

  closeMount(mount: unknown): void {
    const m = checkInteger(mount, 'mount', 0, 0x7fffffff);
    if (!this.mounts.delete(m)) throw fakeFanotifyError('EBADF', 'close');
  }

  resolveFileHandle(mount: unknown, handle: unknown): string {
    const m = checkInteger(mount, 'mount', 0, 0x7fffffff);
    if (!(handle instanceof Uint8Array))
      throw argumentError('The "handle" argument must be a Buffer or Uint8Array');
    const b = Buffer.from(handle.buffer, handle.byteOffset, handle.byteLength);
    const bytes = b.length >= 8 ? b.readUInt32LE(0) : 0;
    if (b.length < 8 || bytes === 0 || bytes > 128 || bytes > b.length - 8)
      throw argumentError('The "handle" argument must be a struct file_handle', 'ERR_INVALID_ARG_VALUE');
    if (this.closed || !this.mounts.has(m)) throw fakeFanotifyError('EBADF', 'open_by_handle_at');
    this.owner.resolves++;
    const path = bytes === 8 ? this.owner.pathById.get(Number(b.readBigUInt64LE(8))) : undefined;
    if (path === undefined) throw fakeFanotifyError('ESTALE', 'open_by_handle_at');
    return path;
  }

  pause(): void {
    if (!this.closed) this.paused = true;
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    if (this.queue.length > 0) this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    // The kernel allows every permission event still waiting when the group goes.
    for (const resolve of this.waiting.values()) resolve('closed');
    this.waiting.clear();
    this.eventFds.clear();
    this.mounts.clear();
    this.onBatch = undefined;
    this.onError = undefined;
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  /**
   * A directory-entry event on `dir/name` for an FID group: DFID_NAME (and FID of the entry when
   * `withFid`), with handles the fake resolves back to paths.
   */
  entry(mask: number, dir: string, name: string, pid = 4242): void {
    this.push([
      {
        mask,
        pid,
        info: [{ type: 'dfid_name', handle: fakeFileHandle(this.owner.idOf(dir)), name }],
      },
    ]);
  }

  /**
   * A process opens `path`: a permission event with a fresh event fd. Resolves when answered
   * ('allow'/'deny') or when the group closes ('closed', which the kernel treats as allow).
   */
  access(path: string, mask: number = FAN.OPEN_PERM, pid = 4242): Promise<FakeVerdict> {
    return new Promise<FakeVerdict>((resolve) => {
      if (this.closed) {
        resolve('closed');
        return;
      }
      const fd = this.owner.nextFd++;
      this.owner.fdPaths.set(fd, path);
      if ((mask & FAN_PERMISSION_EVENTS) !== 0) this.waiting.set(fd, resolve);
      else resolve('allow');
      this.push([{ mask, fd, pid }]);
    });
  }

  /** The kernel's queue overflowed. */
  overflow(): void {
    this.push([{ mask: FAN.Q_OVERFLOW, fd: -1 }]);
  }

  /** Queues raw events and wakes up on a later tick. */
  push(events: FakeEvent[]): void {
    if (this.closed) return;
    this.queue.push(...events);
    if (!this.paused) this.schedule();
  }

  /** Hands over what is queued now, as one batch. Exceptions from onBatch propagate. */
  drain(): void {
    if (this.closed || this.paused || this.queue.length === 0 || this.onBatch === undefined) return;
    this.batches++;
    const events = this.queue.splice(0);
    for (const e of events) if (e.fd !== undefined && e.fd >= 0) this.eventFds.add(e.fd);
    this.onBatch(encodeFanotifyRecords(events));
  }

  fail(error: NativeSystemError = fakeFanotifyError('EINVAL', 'read')): void {
    this.onError?.(error);
  }

  /** Permission events still waiting for an answer. */
  get waitingCount(): number {
    return this.waiting.size;
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

export class FakeNativeFanotify implements NativeFanotify {
  readonly handles: FakeFanotifyHandle[] = [];
  /** Paths mark/openMount report ENOENT for. */
  readonly missing = new Set<string>();
  /** Behave as an ordinary user: permission classes, filesystem and mount marks are EPERM. */
  unprivileged = false;
  /** File handle ids and the paths they resolve to (delete an entry: ESTALE). */
  readonly pathById = new Map<number, string>();
  /** What /proc/self/fd/N of a fake event fd would name. */
  readonly fdPaths = new Map<number, string>();
  resolves = 0;
  nextFd = 1000;
  private nextId = 1;
  private readonly idByPath = new Map<string, number>();

  openFanotify(flags: unknown, eventFlags: unknown, onBatch: unknown, onError: unknown): FakeFanotifyHandle {
    const f = checkInteger(flags, 'flags', 0, 0xffffffff);
    checkInteger(eventFlags, 'eventFlags', 0, 0xffffffff);
    if (typeof onBatch !== 'function') throw argumentError('The "onBatch" argument must be a function');
    if (typeof onError !== 'function') throw argumentError('The "onError" argument must be a function');
    if (this.unprivileged && (f & (FAN_INIT.CLASS_CONTENT | FAN_INIT.CLASS_PRE_CONTENT)) !== 0)
      throw fakeFanotifyError('EPERM', 'fanotify_init');
    const handle = new FakeFanotifyHandle(
      this,
      f,
      onBatch as (bytes: Buffer) => void,
      onError as (error: NativeSystemError) => void,
    );
    this.handles.push(handle);
    return handle;
  }

  /** The handle id of `path` (made on first use). */
  idOf(path: string): number {
    let id = this.idByPath.get(path);
    if (id === undefined) {
      id = this.nextId++;
      this.idByPath.set(path, id);
      this.pathById.set(id, path);
    }
    return id;
  }

  /** The directory moved: its handle now resolves to `to` (the kernel's handles survive a rename). */
  rename(from: string, to: string): void {
    const id = this.idByPath.get(from);
    if (id === undefined) return;
    this.idByPath.delete(from);
    this.idByPath.set(to, id);
    this.pathById.set(id, to);
  }

  /** The handle opened last. */
  get handle(): FakeFanotifyHandle {
    const h = this.handles[this.handles.length - 1];
    if (h === undefined) throw new Error('no fanotify handle opened');
    return h;
  }
}
