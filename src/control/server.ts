// The control socket: a unix stream socket speaking line-delimited JSON (./protocol.ts). Reads are
// open to everyone; requests that change anything need root or the control group, checked with
// SO_PEERCRED taken when the peer connects. Each connection is bounded: one request line, a
// queue of pending requests (reading pauses beyond it) and a cap on unsent stream output.
import fs = require('node:fs');
import net = require('node:net');
import path = require('node:path');
import type { Logger } from '../util/logger';
import type { NativeNetlink, PeerCredentials } from '../native/types';
import {
  LineDecoder,
  encodeResponse,
  isMutating,
  parseRequest,
  type ControlError,
  type ControlRequest,
  type ControlResponse,
  type ErrorCode,
  type MethodName,
} from './protocol';

/** An error a handler throws to send a specific error code back. */
export class ControlRequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestContext {
  peer: PeerCredentials;
  /** For streaming methods: send one item. Returns false when the item was dropped (slow reader). */
  emit(event: unknown): boolean;
  /** Called once when the connection goes away; streaming handlers release their subscriptions here. */
  onClose(teardown: () => void): void;
}

export type ControlHandler = (params: Record<string, unknown>, ctx: RequestContext) => unknown;
export type ControlHandlers = Record<MethodName, ControlHandler>;

export interface ControlServerOptions {
  socketPath: string;
  native: NativeNetlink;
  logger: Logger;
  /** Called before each request is handled (PathArmedStarts.flush: no request sees a half-recorded start). */
  beforeRequest?: () => void;
  handlers: ControlHandlers;
  /** gid allowed to make mutating requests besides root. */
  controlGid?: number;
  maxConnections?: number;
  /** Pending requests per connection before reading pauses. */
  maxPendingRequests?: number;
  /** Unsent output per connection before stream items are dropped. */
  maxBufferedOutput?: number;
}

export interface ControlServerStats {
  connections: number;
  requests: number;
  errors: Partial<Record<ErrorCode, number>>;
  droppedStreamItems: number;
}

export class ControlServer {
  readonly stats: ControlServerStats = { connections: 0, requests: 0, errors: {}, droppedStreamItems: 0 };
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: ControlServerOptions) {}

  /**
   * The listening socket's fd (carried across a re-exec: connections that arrive meanwhile wait
   * in its backlog and are answered by the new image).
   */
  fd(): number | undefined {
    const handle: unknown = this.server === undefined ? undefined : Reflect.get(this.server, '_handle');
    const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Listen on a socket that is already bound and listening at socketPath (after a re-exec). */
  async adopt(fd: number): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = this.options.maxConnections ?? 256;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.options.logger.error({ err }, 'control socket error'));
    this.server = server;
  }

  async listen(): Promise<void> {
    const { socketPath } = this.options;
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    await removeStaleSocket(socketPath);
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = this.options.maxConnections ?? 256;
    // Bound and listening under a temporary name, then renamed into place: a client that sees the
    // path never meets a socket that refuses (bound, not yet listening) or has the wrong mode.
    const temp = path.join(path.dirname(socketPath), `.${path.basename(socketPath)}.${process.pid}`);
    fs.rmSync(temp, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Everyone may read; the peer-credential check guards the rest.
    fs.chmodSync(temp, 0o666);
    fs.renameSync(temp, socketPath);
    server.on('error', (err) => this.options.logger.error({ err }, 'control socket error'));
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      fs.unlinkSync(this.options.socketPath);
    } catch {
      // already gone
    }
  }

  private accept(socket: net.Socket): void {
    const peer = this.peerOf(socket);
    if (peer === undefined) {
      socket.destroy();
      return;
    }
    this.stats.connections++;
    this.sockets.add(socket);
    const decoder = new LineDecoder();
    const teardowns: (() => void)[] = [];
    const maxPending = this.options.maxPendingRequests ?? 64;
    const maxBuffered = this.options.maxBufferedOutput ?? 4 * 1024 * 1024;
    let pending = 0;
    let chain: Promise<void> = Promise.resolve();
    let closed = false;

    const send = (response: ControlResponse): void => {
      if (!closed) socket.write(encodeResponse(response));
    };
    const sendError = (id: ControlResponse['id'], error: ControlError): void => {
      this.stats.errors[error.code] = (this.stats.errors[error.code] ?? 0) + 1;
      send({ id, ok: false, error });
    };

    socket.on('data', (chunk: Buffer) => {
      for (const decoded of decoder.push(chunk)) {
        if (decoded.kind === 'too-long') {
          sendError(null, {
            code: 'ERR_LINE_TOO_LONG',
            message: `request line longer than the limit (${decoded.bytes} bytes so far); skipped up to its newline`,
          });
          continue;
        }
        const parsed = parseRequest(decoded.line);
        if (!parsed.ok) {
          sendError(parsed.id, parsed.error);
          continue;
        }
        pending++;
        if (pending >= maxPending) socket.pause();
        chain = chain.then(async () => {
          try {
            await this.run(parsed.request, peer, send, sendError, ctx);
          } finally {
            pending--;
            if (pending < maxPending && !closed) socket.resume();
          }
        });
      }
    });

    let droppedSinceLast = 0;
    const ctx = (id: ControlRequest['id']): RequestContext => ({
      peer,
      emit: (event) => {
        if (closed) return false;
        if (socket.writableLength > maxBuffered) {
          droppedSinceLast++;
          this.stats.droppedStreamItems++;
          return false;
        }
        if (droppedSinceLast > 0) {
          send({ id, event: { dropped: droppedSinceLast } });
          droppedSinceLast = 0;
        }
        send({ id, event });
        return true;
      },
      onClose: (teardown) => {
        if (closed) teardown();
        else teardowns.push(teardown);
      },
    });

    const cleanup = (): void => {
      if (closed) return;
      closed = true;
      this.sockets.delete(socket);
      for (const t of teardowns.splice(0)) t();
    };
    socket.on('close', cleanup);
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  }

  private async run(
    request: ControlRequest,
    peer: PeerCredentials,
    send: (r: ControlResponse) => void,
    sendError: (id: ControlResponse['id'], e: ControlError) => void,
    ctx: (id: ControlRequest['id']) => RequestContext,
  ): Promise<void> {
    this.stats.requests++;
    if (isMutating(request.method) && !this.mayChange(peer)) {
      sendError(request.id, {
        code: 'ERR_PERMISSION',
        message: `${request.method}: permission denied for uid ${peer.uid} (needs root or the control group)`,
      });
      return;
    }
    try {
      this.options.beforeRequest?.();
      const result = await this.options.handlers[request.method](request.params, ctx(request.id));
      if (result !== STREAMING) send({ id: request.id, ok: true, result: result ?? null });
    } catch (err) {
      if (err instanceof ControlRequestError) {
        sendError(request.id, { code: err.code, message: err.message });
      } else {
        this.options.logger.error({ err, method: request.method }, 'control request failed');
        sendError(request.id, {
          code: 'ERR_INTERNAL',
          message: `${request.method}: ${(err as Error).message}`,
        });
      }
    }
  }

  private mayChange(peer: PeerCredentials): boolean {
    if (peer.uid === 0) return true;
    const gid = this.options.controlGid;
    if (gid === undefined) return false;
    return peer.gid === gid || supplementaryGroups(peer.pid).includes(gid);
  }

  private peerOf(socket: net.Socket): PeerCredentials | undefined {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return undefined;
    try {
      return this.options.native.peerCredentials(fd);
    } catch (err) {
      this.options.logger.warn({ err }, 'control socket: cannot read peer credentials; closing');
      return undefined;
    }
  }
}

/** Marker a streaming handler returns: its replies go out through ctx.emit, not as a result. */
export const STREAMING = Symbol('streaming');

function supplementaryGroups(pid: number): number[] {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const line = status.split('\n').find((l) => l.startsWith('Groups:'));
    return line === undefined ? [] : line.slice(7).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A socket file left by a daemon that is gone is removed; one that answers means we are not alone. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another triggerd answers on ${socketPath}`);
  fs.unlinkSync(socketPath);
}
