// A control-socket client: one connection, requests answered in order, streaming items delivered
// to a callback. Used by triggerctl and by the tests.
import net = require('node:net');
import { defaultControlSocket } from '../util/paths';
import { LineDecoder, type ControlError, type ControlResponse, type MethodName } from './protocol';

export const DEFAULT_CONTROL_SOCKET = '/run/triggerd/control.sock';

/** $TRIGGERD_SOCKET, else the daemon's default for this user (root: /run/triggerd/control.sock). */
export function defaultSocketPath(): string {
  return process.env.TRIGGERD_SOCKET ?? defaultControlSocket();
}

/** The daemon answered with an error. */
export class DaemonError extends Error {
  constructor(readonly error: ControlError) {
    super(error.message);
  }
  get code(): string {
    return this.error.code;
  }
}

export class ControlClient {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: (e: unknown) => void }
  >();
  private readonly decoder = new LineDecoder(64 * 1024 * 1024);
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const d of this.decoder.push(chunk)) if (d.kind === 'line') this.dispatch(d.line);
    });
    socket.on('close', () => this.failAll(new Error('connection to triggerd closed')));
    socket.on('error', (err) => this.failAll(err));
  }

  static connect(socketPath = defaultSocketPath()): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new ControlClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Send a request; resolves with its result, rejects with DaemonError. */
  request(
    method: MethodName,
    params: Record<string, unknown> = {},
    onEvent?: (e: unknown) => void,
  ): Promise<unknown> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onEvent });
      this.socket.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private dispatch(line: string): void {
    let msg: ControlResponse;
    try {
      msg = JSON.parse(line) as ControlResponse;
    } catch {
      return;
    }
    if (typeof msg.id !== 'number') {
      // An error not tied to a request (line too long, bad JSON): fail the oldest waiter.
      if ('ok' in msg && !msg.ok) {
        const first = this.waiting.keys().next();
        if (!first.done) this.settleOne(first.value, msg);
      }
      return;
    }
    this.settleOne(msg.id, msg);
  }

  private settleOne(id: number, msg: ControlResponse): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    if ('event' in msg) {
      w.onEvent?.(msg.event);
      return;
    }
    this.waiting.delete(id);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new DaemonError(msg.error));
  }

  private failAll(err: Error): void {
    this.closedError ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
