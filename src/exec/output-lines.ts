// A job's stdout/stderr as log lines: the read end of a pipe from NativeSpawn.pipe() is handed to
// Node as a net.Socket (libuv reads it on the loop; no native reader needed) and split at '\n'.
// Bound: one line buffer of at most `maxLineBytes`; a longer line is emitted in pieces marked
// `truncated`, so a service that never writes a newline cannot grow our memory.
import net = require('node:net');
import { Observable } from '../util/rx';

export interface OutputLine {
  text: string;
  /** Cut at maxLineBytes (more of the same line follows), or the stream ended without '\n'. */
  truncated: boolean;
}

export interface OutputLinesOptions {
  /** Default 48 KiB, systemd-journald's LineMax default. */
  maxLineBytes?: number;
}

const NEWLINE = 0x0a;

/** Takes ownership of `fd` (closed when the stream ends or on unsubscribe). Completes at EOF. */
export function outputLines(fd: number, opts: OutputLinesOptions = {}): Observable<OutputLine> {
  return new Observable<OutputLine>((subscriber) => {
    let reader: LineReader;
    try {
      reader = new LineReader(fd, opts, {
        line: (l) => subscriber.next(l),
        end: () => subscriber.complete(),
        error: (err) => subscriber.error(err),
      });
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    return () => reader.close();
  });
}

export interface LineSink {
  line(line: OutputLine): void;
  end(): void;
  error(err: Error): void;
}

/**
 * Lines from a pipe's read end (owned: closed by close() or at EOF). flush() hands over a partial
 * line now, as if the stream had ended, for a pipe that several runs of a unit share: the last
 * line of a run that wrote no '\n' must not wait for the next run's output.
 */
export class LineReader {
  private readonly socket: net.Socket;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly maxLineBytes: number;

  constructor(
    fd: number,
    opts: OutputLinesOptions,
    private readonly sink: LineSink,
  ) {
    this.maxLineBytes = opts.maxLineBytes ?? 48 * 1024;
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => {
      this.flush();
      sink.end();
    });
    this.socket.on('error', (err) => sink.error(err));
  }

  flush(): void {
    if (this.pendingBytes > 0) this.emit(this.pending, true);
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): void {
    this.socket.destroy();
  }

  private emit(parts: Buffer[], truncated: boolean): void {
    this.sink.line({ text: Buffer.concat(parts).toString('utf8'), truncated });
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline < 0 ? chunk.length : newline;
      // Cut over-long lines into pieces of maxLineBytes.
      while (this.pendingBytes + (end - start) > this.maxLineBytes) {
        const take = this.maxLineBytes - this.pendingBytes;
        this.emit([...this.pending, chunk.subarray(start, start + take)], true);
        this.pending = [];
        this.pendingBytes = 0;
        start += take;
      }
      if (newline < 0) {
        if (start < chunk.length) {
          this.pending.push(chunk.subarray(start));
          this.pendingBytes += chunk.length - start;
        }
        return;
      }
      this.emit([...this.pending, chunk.subarray(start, newline)], false);
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
    }
  }
}
