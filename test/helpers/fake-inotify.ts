// A fake NativeInotify for pure tests: watches keyed by path (one wd per path, as the kernel gives
// one per inode), wd numbers never reused, records delivered as raw bytes on a later tick, one
// onBatch per wake-up. It keeps the real addon's observable rules (checked by the contract suite
// in test/integration/inotify-native.test.ts): TypeErrors for bad arguments, ENOENT for a missing
// path, EINVAL for removing an unknown wd, EBADF once closed, IN_IGNORED after removeWatch.
import {
  IN,
  type InotifyHandle,
  type NativeInotify,
  type NativeSystemError,
} from '../../src/native/inotify-addon';

const ERRNO: Record<string, number> = { EBADF: 9, ENOENT: 2, EINVAL: 22, EBUSY: 16, EWOULDBLOCK: 11 };

export function fakeInotifyError(code: string, syscall: string, path?: string): NativeSystemError {
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

export interface FakeRecord {
  wd: number;
  mask: number;
  cookie?: number;
  name?: string;
}

/** struct inotify_event records as the kernel writes them (names NUL-padded to 4 bytes). */
export function encodeInotifyRecords(records: readonly FakeRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const name = r.name === undefined || r.name === '' ? Buffer.alloc(0) : Buffer.from(r.name);
    const len = name.length === 0 ? 0 : Math.ceil((name.length + 1) / 4) * 4;
    const b = Buffer.alloc(16 + len);
    b.writeInt32LE(r.wd, 0);
    b.writeUInt32LE(r.mask >>> 0, 4);
    b.writeUInt32LE(r.cookie ?? 0, 8);
    b.writeUInt32LE(len, 12);
    name.copy(b, 16);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

export class FakeInotifyHandle implements InotifyHandle {
  closed = false;
  paused = false;
  referenced = true;
  batches = 0;
  /** path → wd and back, for the watches alive now. */
  readonly wdByPath = new Map<string, number>();
  readonly pathByWd = new Map<number, string>();
  readonly masks = new Map<number, number>();
  /** Records waiting for a wake-up (the kernel's queue). */
  readonly queue: FakeRecord[] = [];
  /** armCall's arms, as the addon keeps them. */
  readonly arms: { id: number; wd: number; mask: number; fn: () => void }[] = [];
  private nextArm = 1;
  private scheduled = false;

  constructor(
    private readonly owner: FakeNativeInotify,
    private onBatch: ((bytes: Buffer) => void) | undefined,
    private onError: ((error: NativeSystemError) => void) | undefined,
  ) {}

  addWatch(path: unknown, mask: unknown): number {
    const p = checkPath(path);
    const m = checkInteger(mask, 'mask', 1, 0xffffffff);
    if (this.closed) throw fakeInotifyError('EBADF', 'inotify_add_watch', p);
    if (this.owner.missing.has(p)) throw fakeInotifyError('ENOENT', 'inotify_add_watch', p);
    const known = this.wdByPath.get(p);
    if (known !== undefined) {
      this.masks.set(known, m);
      return known;
    }
    const wd = this.owner.nextWd++;
    this.wdByPath.set(p, wd);
    this.pathByWd.set(wd, p);
    this.masks.set(wd, m);
    return wd;
  }

  removeWatch(wd: unknown): void {
    const w = checkInteger(wd, 'wd', 0, 0x7fffffff);
    if (this.closed) throw fakeInotifyError('EBADF', 'inotify_rm_watch');
    if (!this.pathByWd.has(w)) throw fakeInotifyError('EINVAL', 'inotify_rm_watch');
    this.forget(w);
    this.push([{ wd: w, mask: IN.IGNORED }]);
  }

  armCall(wd: unknown, mask: unknown, fn: unknown): number {
    const w = checkInteger(wd, 'wd', 1, 0x7fffffff);
    const m = checkInteger(mask, 'mask', 1, 0xffffffff);
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    if (this.closed) throw fakeInotifyError('EBADF', 'armCall');
    const id = this.nextArm++;
    this.arms.push({ id, wd: w, mask: m, fn: fn as () => void });
    return id;
  }

  disarmCall(id: unknown): boolean {
    const i = this.arms.findIndex((a) => a.id === id);
    if (i < 0) return false;
    this.arms.splice(i, 1);
    return true;
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
    this.arms.length = 0;
    this.wdByPath.clear();
    this.pathByWd.clear();
    this.onBatch = undefined;
    this.onError = undefined;
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  /** A writer closed `path`: IN_CLOSE_WRITE if it is watched for it. */
  closeWrite(path: string): void {
    const wd = this.wdByPath.get(path);
    if (wd !== undefined && ((this.masks.get(wd) ?? 0) & IN.CLOSE_WRITE) !== 0)
      this.push([{ wd, mask: IN.CLOSE_WRITE }]);
  }

  /** The node was deleted (its inode freed): the kernel drops the watch with IN_IGNORED. */
  deleteNode(path: string): void {
    const wd = this.wdByPath.get(path);
    if (wd === undefined) return;
    this.forget(wd);
    this.push([{ wd, mask: IN.IGNORED }]);
  }

  /** The kernel's queue overflowed. */
  overflow(): void {
    this.push([{ wd: -1, mask: IN.Q_OVERFLOW }]);
  }

  /** Queues raw records and wakes up on a later tick. */
  push(records: FakeRecord[]): void {
    if (this.closed) return;
    this.queue.push(...records);
    if (!this.paused) this.schedule();
  }

  /** Hands over what is queued now, as one batch. Exceptions from onBatch propagate. */
  drain(): void {
    if (this.closed || this.paused || this.queue.length === 0 || this.onBatch === undefined) return;
    this.batches++;
    const records = this.queue.splice(0);
    // The addon's order: armed calls first (one-shot, looked up again after each call: a call
    // may disarm the others), then the batch.
    for (const r of records) {
      if ((r.name ?? '') !== '' || r.wd < 0) continue;
      for (;;) {
        const i = this.arms.findIndex((a) => a.wd === r.wd && (a.mask & r.mask) !== 0);
        if (i < 0) break;
        const [a] = this.arms.splice(i, 1);
        a?.fn();
        if (this.closed) return;
      }
    }
    if (this.closed || this.onBatch === undefined) return;
    this.onBatch(encodeInotifyRecords(records));
  }

  fail(error: NativeSystemError = fakeInotifyError('EINVAL', 'read')): void {
    this.onError?.(error);
  }

  private forget(wd: number): void {
    const p = this.pathByWd.get(wd);
    this.pathByWd.delete(wd);
    this.masks.delete(wd);
    if (p !== undefined) this.wdByPath.delete(p);
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

export class FakeNativeInotify implements NativeInotify {
  readonly handles: FakeInotifyHandle[] = [];
  /** Paths addWatch reports ENOENT for. */
  readonly missing = new Set<string>();
  /** What rereadPartitionTable answers per devnode: undefined = success, else the error code. */
  readonly reread = new Map<string, string>();
  readonly rereadCalls: string[] = [];
  nextWd = 1;

  openInotify(onBatch: unknown, onError: unknown): FakeInotifyHandle {
    if (typeof onBatch !== 'function') throw argumentError('The "onBatch" argument must be a function');
    if (typeof onError !== 'function') throw argumentError('The "onError" argument must be a function');
    const handle = new FakeInotifyHandle(
      this,
      onBatch as (bytes: Buffer) => void,
      onError as (error: NativeSystemError) => void,
    );
    this.handles.push(handle);
    return handle;
  }

  rereadPartitionTable(devnode: unknown): void {
    const p = checkPath(devnode);
    this.rereadCalls.push(p);
    const code = this.reread.get(p);
    if (code !== undefined) throw fakeInotifyError(code, code === 'EWOULDBLOCK' ? 'flock' : 'ioctl', p);
  }

  /** The handle opened last. */
  get handle(): FakeInotifyHandle {
    const h = this.handles[this.handles.length - 1];
    if (h === undefined) throw new Error('no inotify handle opened');
    return h;
  }
}
