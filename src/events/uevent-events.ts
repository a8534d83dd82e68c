// Kernel (group 1) or udevd (group 2) uevents as an Observable. Bound: the kernel's socket buffer
// (sized with SO_RCVBUFFORCE) plus one native batch (≤ 4096 messages); no queue in between.
// Overflow policy: ENOBUFS / MSG_TRUNC become an explicit 'overflow' item, and the consumer
// resyncs by rescanning /sys. Messages that fail validation or come from an untrusted sender
// are returned as 'rejected' entries so the consumer can count them; they never become events.
import { Observable } from 'rxjs';
import type { NativeNetlink, NativeSystemError, NetlinkMessage, UeventSocket } from '../native/types';
import type { Uevent } from '../devices/types';
import { parseNetlinkMessage, type UeventParseError } from '../devices/uevent-parse';

export const UEVENT_GROUP_KERNEL = 1;
export const UEVENT_GROUP_UDEV = 2;

export interface UeventSourceOptions {
  /** 'kernel': group 1, only nl_pid 0 / uid 0. 'udev': group 2, only uid 0 in libudev format. */
  expect: 'kernel' | 'udev';
  receiveBufferBytes: number;
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
    try {
      socket = native.openUeventSocket(
        { groups, receiveBufferBytes: options.receiveBufferBytes },
        (batch) => {
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
        },
        (error) => subscriber.next({ kind: 'error', error }),
      );
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    const flush = (events: Uevent[], rejected: UeventRejection[]): void => {
      if (events.length === 0 && rejected.length === 0) return;
      subscriber.next({ kind: 'events', events: events.splice(0), rejected: rejected.splice(0) });
    };
    subscriber.next({ kind: 'open', socket });
    return () => socket.close();
  });
}

function rejection(msg: NetlinkMessage, error: UeventParseError): UeventRejection {
  return { error, senderPort: msg.senderPort, uid: msg.uid, pid: msg.pid, length: msg.buffer.length };
}
