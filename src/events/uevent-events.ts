// Kernel (group 1) or udevd (group 2) uevents as an Observable. Bound: the kernel's socket buffer
// (sized with SO_RCVBUFFORCE) plus one native batch (≤ 4096 messages); no queue in between. With
// `maxPerTurn`, a batch is emitted in slices, one per turn of the event loop, with the socket
// paused until the last one is out (src/events/turn-slices): still one native batch at most.
// Overflow policy: ENOBUFS / MSG_TRUNC become an explicit 'overflow' item, and the consumer
// resyncs by rescanning /sys. Messages that fail validation or come from an untrusted sender
// are returned as 'rejected' entries so the consumer can count them; they never become events.
import { closeSync } from 'node:fs';
import { Observable } from '../util/rx';
import type {
  NativeNetlink,
  NativeSystemError,
  NetlinkItem,
  NetlinkMessage,
  UeventSocket,
} from '../native/types';
import type { Uevent } from '../devices/types';
import { parseNetlinkMessage, type UeventParseError } from '../devices/uevent-parse';
import { TurnSlices } from './turn-slices';

export const UEVENT_GROUP_KERNEL = 1;
export const UEVENT_GROUP_UDEV = 2;

export interface UeventSourceOptions {
  /** 'kernel': group 1, only nl_pid 0 / uid 0. 'udev': group 2, only uid 0 in libudev format. */
  expect: 'kernel' | 'udev';
  receiveBufferBytes: number;
  /**
   * At most this many messages parsed and emitted per turn of the event loop; default: a whole
   * native batch at once. The daemon should set it (e.g. 256) so that a storm does not hold the
   * loop for tens of milliseconds at a time. The socket in the 'open' item then pauses and resumes
   * through the slicer (a consumer's pause holds across the end of a sliced batch).
   */
  maxPerTurn?: number;
  /**
   * An open uevent socket to take over instead of opening one (carried across the daemon's
   * re-exec, with what the kernel queued on it meanwhile). When it cannot be taken over, it is
   * closed, an 'error' item says why, and a new socket is opened.
   */
  adoptFd?: number;
}

export interface UeventRejection {
  error: UeventParseError;
  senderPort: number;
  uid: number;
  pid: number;
  length: number;
}

export type UeventSourceItem =
  | { kind: 'open'; socket: UeventSocket }
  | { kind: 'events'; events: Uevent[]; rejected: UeventRejection[] }
  | { kind: 'overflow'; reason: 'ENOBUFS' | 'MSG_TRUNC' }
  | { kind: 'error'; error: NativeSystemError };

export function ueventEvents(
  native: NativeNetlink,
  options: UeventSourceOptions,
): Observable<UeventSourceItem> {
  return new Observable<UeventSourceItem>((subscriber) => {
    const groups = options.expect === 'kernel' ? UEVENT_GROUP_KERNEL : UEVENT_GROUP_UDEV;
    let socket: UeventSocket;
    const handle = (batch: NetlinkItem[]): void => {
      const events: Uevent[] = [];
      const rejected: UeventRejection[] = [];
      for (const item of batch) {
        if (item.kind === 'overflow') {
          flush(events, rejected);
          subscriber.next({ kind: 'overflow', reason: item.reason });
          continue;
        }
        const result = parseNetlinkMessage(item, options.expect);
        if (result.ok) events.push(result.event);
        else rejected.push(rejection(item, result.error));
      }
      flush(events, rejected);
    };
    const slices =
      options.maxPerTurn === undefined ? undefined : new TurnSlices<NetlinkItem>(options.maxPerTurn, handle);
    const open = (fd: number | undefined): UeventSocket =>
      native.openUeventSocket(
        { groups, receiveBufferBytes: options.receiveBufferBytes, ...(fd !== undefined ? { fd } : {}) },
        (batch) => {
          if (subscriber.closed) return;
          if (slices === undefined) handle(batch);
          else slices.push(batch);
        },
        (error) => subscriber.next({ kind: 'error', error }),
      );
    try {
      if (options.adoptFd === undefined) socket = open(undefined);
      else {
        try {
          socket = open(options.adoptFd);
        } catch (err) {
          closeQuietly(options.adoptFd);
          subscriber.next({ kind: 'error', error: err as NativeSystemError });
          socket = open(undefined);
        }
      }
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    const flush = (events: Uevent[], rejected: UeventRejection[]): void => {
      if (events.length === 0 && rejected.length === 0) return;
      subscriber.next({ kind: 'events', events: events.splice(0), rejected: rejected.splice(0) });
    };
    slices?.attach(socket);
    subscriber.next({ kind: 'open', socket: slices === undefined ? socket : throughSlices(socket, slices) });
    return () => {
      slices?.cancel();
      socket.close();
    };
  });
}

/** The socket as the consumer sees it: pause/resume combined with the slicer's own pausing. */
function throughSlices(socket: UeventSocket, slices: TurnSlices<NetlinkItem>): UeventSocket {
  return {
    get portId() {
      return socket.portId;
    },
    get receiveBufferBytes() {
      return socket.receiveBufferBytes;
    },
    pause: () => slices.pause(),
    resume: () => slices.resume(),
    send: (buffer, destPort, destGroups) => socket.send(buffer, destPort, destGroups),
    close: () => socket.close(),
    unref: () => socket.unref(),
    ref: () => socket.ref(),
  };
}

function rejection(msg: NetlinkMessage, error: UeventParseError): UeventRejection {
  return { error, senderPort: msg.senderPort, uid: msg.uid, pid: msg.pid, length: msg.buffer.length };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // not open
  }
}
