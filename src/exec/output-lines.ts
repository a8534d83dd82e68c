// A job's stdout/stderr as log lines: the read end of a pipe from NativeSpawn.pipe() is handed to
// Node as a net.Socket (libuv reads it on the loop; no native reader needed) and split at '\n'.
// Bound: one line buffer of at most `maxLineBytes`; a longer line is emitted in pieces marked
// `truncated`, so a service that never writes a newline cannot grow our memory.
import * as net from 'node:net';
import { Observable } from 'rxjs';

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
  const maxLineBytes = opts.maxLineBytes ?? 48 * 1024;
  return new Observable<OutputLine>((subscriber) => {
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: false });
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const emit = (parts: Buffer[], truncated: boolean): void => {
      subscriber.next({ text: Buffer.concat(parts).toString('utf8'), truncated });
    };
    socket.on('data', (chunk: Buffer) => {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, start);
        const end = newline < 0 ? chunk.length : newline;
        // Cut over-long lines into pieces of maxLineBytes.
        while (pendingBytes + (end - start) > maxLineBytes) {
          const take = maxLineBytes - pendingBytes;
          emit([...pending, chunk.subarray(start, start + take)], true);
          pending = [];
          pendingBytes = 0;
          start += take;
        }
        if (newline < 0) {
          if (start < chunk.length) {
            pending.push(chunk.subarray(start));
            pendingBytes += chunk.length - start;
          }
          return;
        }
        emit([...pending, chunk.subarray(start, newline)], false);
        pending = [];
        pendingBytes = 0;
        start = newline + 1;
      }
    });
    socket.on('end', () => {
      if (pendingBytes > 0) emit(pending, true);
      pending = [];
      subscriber.complete();
    });
    socket.on('error', (err) => subscriber.error(err));
    return () => socket.destroy();
  });
}
