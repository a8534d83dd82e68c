// A service's stdout/stderr as log lines: the read end of a pipe the native layer made, read by
// Node (net.Socket over the fd), split into lines. Bound: a line longer than `maxLine` bytes is
// cut there (journald's LineMax default is 48 KiB) and the rest comes as the next line, so a
// process that never prints a newline cannot grow our memory.
import * as net from 'node:net';

export interface CapturedLine {
  line: string;
  /** The line was cut at maxLine. */
  truncated: boolean;
}

export interface Capture {
  /** Stop reading and close the fd. */
  close(): void;
}

export function captureLines(
  fd: number,
  onLine: (l: CapturedLine) => void,
  onEnd: () => void = () => undefined,
  maxLine = 48 * 1024,
): Capture {
  const socket = new net.Socket({ fd, readable: true, writable: false });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const emit = (buf: Buffer, truncated: boolean): void => {
    let text = buf.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    onLine({ line: text, truncated });
  };
  socket.on('data', (chunk: Buffer) => {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      let piece = chunk.subarray(start, end);
      while (pendingBytes + piece.length > maxLine) {
        const take = maxLine - pendingBytes;
        pending.push(piece.subarray(0, take));
        emit(Buffer.concat(pending), true);
        pending = [];
        pendingBytes = 0;
        piece = piece.subarray(take);
      }
      if (nl === -1) {
        if (piece.length > 0) {
          pending.push(piece);
          pendingBytes += piece.length;
        }
        break;
      }
      pending.push(piece);
      emit(Buffer.concat(pending), false);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
  });
  let ended = false;
  const finish = (): void => {
    if (ended) return;
    ended = true;
    if (pendingBytes > 0) emit(Buffer.concat(pending), false);
    pending = [];
    pendingBytes = 0;
    onEnd();
  };
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', () => socket.destroy());
  return { close: () => socket.destroy() };
}
