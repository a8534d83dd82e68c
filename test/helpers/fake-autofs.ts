// A fake autofs layer with the interface of src/native/autofs-addon.ts: mounts are records, the
// test plays the kernel (deliver packets, answer expire runs) and reads back what the daemon
// answered (READY / FAIL with which errno), whether it went catatonic and was unmounted.
import type {
  AutofsMount,
  AutofsMountOptions,
  NativeAutofs,
  NativeSystemError,
} from '../../src/native/autofs-addon';
import { encodeAutofsPacket, type AutofsV5Packet } from '../../src/mounts/autofs-packets';

export interface FakeAnswer {
  token: number;
  /** 0 for READY, else the errno of FAIL. */
  errno: number;
}

function systemError(code: string, errno: number, syscall: string): NativeSystemError {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, errno: -errno, syscall });
}

export class FakeAutofsMount implements AutofsMount {
  readonly answers: FakeAnswer[] = [];
  readonly expireRuns: { how: number; done: (e: NativeSystemError | null, n: number) => void }[] = [];
  timeoutSec: number;
  isCatatonic = false;
  unmounted = false;
  closed = false;
  readonly strictExpire = true;
  readonly protocol = { version: 5, subVersion: 6 };
  readonly pipeFd = 99;
  private nextToken = 1;

  constructor(
    readonly options: AutofsMountOptions,
    readonly devId: number,
    private readonly onBatch: (packets: Buffer[]) => void,
    private readonly onError: (error: NativeSystemError) => void,
  ) {
    this.timeoutSec = options.timeoutSec;
  }

  get where(): string {
    return this.options.where;
  }

  /** The kernel: a process touched the trap (or an expire run found it idle). Returns the token. */
  deliver(type: AutofsV5Packet['type'], pid = 4242): number {
    const token = this.nextToken++;
    this.onBatch([
      encodeAutofsPacket({
        type,
        token,
        dev: this.devId,
        ino: 1n,
        uid: 0,
        gid: 0,
        pid,
        tgid: pid,
        name: 'x',
      }),
    ]);
    return token;
  }

  deliverRaw(bytes: Buffer): void {
    this.onBatch([bytes]);
  }

  /** The kernel closed its end of the pipe. */
  hangUp(): void {
    this.onError(systemError('EPIPE', 32, 'read'));
  }

  answerFor(token: number): FakeAnswer | undefined {
    return this.answers.find((a) => a.token === token);
  }

  ready(token: number): void {
    if (this.closed) throw systemError('EBADF', 9, 'ioctl');
    this.answers.push({ token, errno: 0 });
  }
  fail(token: number, errno: number): void {
    if (this.closed) throw systemError('EBADF', 9, 'ioctl');
    if (!(errno > 0)) throw new TypeError('errno must be positive');
    this.answers.push({ token, errno });
  }
  setTimeout(seconds: number): void {
    this.timeoutSec = seconds;
  }
  expire(how: number, done: (error: NativeSystemError | null, expired: number) => void): void {
    this.expireRuns.push({ how, done });
  }
  catatonic(): void {
    this.isCatatonic = true;
  }
  askUmount(): boolean {
    return true;
  }
  unmount(): number {
    this.unmounted = true;
    return 1;
  }
  close(): void {
    this.closed = true;
  }
  unref(): void {}
  ref(): void {}
}

export class FakeAutofs implements NativeAutofs {
  readonly mounts: FakeAutofsMount[] = [];
  /** Set to make the next mountAutofs() fail with this errno code. */
  failNext: { code: string; errno: number } | undefined;
  private nextDev = 40;

  mountAutofs(
    options: AutofsMountOptions,
    onBatch: (packets: Buffer[]) => void,
    onError: (error: NativeSystemError) => void,
  ): AutofsMount {
    if (this.failNext !== undefined) {
      const f = this.failNext;
      this.failNext = undefined;
      throw Object.assign(systemError(f.code, f.errno, 'mount'), { path: options.where });
    }
    const m = new FakeAutofsMount(options, this.nextDev++, onBatch, onError);
    this.mounts.push(m);
    return m;
  }
  unmountLazy(): boolean {
    return true;
  }
  processGroup(): number {
    return process.pid;
  }

  get last(): FakeAutofsMount {
    const m = this.mounts[this.mounts.length - 1];
    if (m === undefined) throw new Error('nothing mounted');
    return m;
  }
}
