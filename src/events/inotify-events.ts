// inotify as an Observable, and the parser for its records. The native handle hands over raw
// bytes, one Buffer per wake-up; parseInotifyRecords turns them into records here, in TypeScript.
//
// Bound: one native batch (≤ 1 MiB of records) is all that is held in memory; nothing is queued
// between the handle and the subscriber. In front of it sits the kernel's queue
// (fs.inotify.max_queued_events, 16384 by default). Overflow policy: when that queue overflows the
// kernel drops events and queues one IN_Q_OVERFLOW record (wd -1); it is emitted as an explicit
// 'overflow' item after the batch's other records, and the consumer must rescan what it watches.
import { endianness } from 'node:os';
import { Observable } from '../util/rx';
import { IN, type InotifyHandle, type NativeInotify, type NativeSystemError } from '../native/inotify-addon';

/** One struct inotify_event. */
export interface InotifyRecord {
  wd: number;
  mask: number;
  cookie: number;
  /** The entry's name inside a watched directory, without NUL padding; '' for the watched path itself. */
  name: string;
}

export interface ParsedInotifyRecords {
  /** Every whole record, IN_Q_OVERFLOW included, in order. */
  records: InotifyRecord[];
  /** An IN_Q_OVERFLOW record was among them: events were lost. */
  overflow: boolean;
  /** Bytes at the end that did not form a whole record (never from a sane kernel). */
  garbledBytes: number;
}

/** sizeof(struct inotify_event) without the name. */
export const INOTIFY_HEADER_BYTES = 16;
const LITTLE = endianness() === 'LE';

/**
 * Parses concatenated inotify_event records. Never throws: a short header, a name longer than
 * what is left, or any other garbage ends the parse, and the rest is counted in `garbledBytes`.
 */
export function parseInotifyRecords(buf: Uint8Array): ParsedInotifyRecords {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: InotifyRecord[] = [];
  let overflow = false;
  let offset = 0;
  while (buf.byteLength - offset >= INOTIFY_HEADER_BYTES) {
    const wd = view.getInt32(offset, LITTLE);
    const mask = view.getUint32(offset + 4, LITTLE);
    const cookie = view.getUint32(offset + 8, LITTLE);
    const len = view.getUint32(offset + 12, LITTLE);
    const end = offset + INOTIFY_HEADER_BYTES + len;
    if (end > buf.byteLength) break;
    let nameEnd = offset + INOTIFY_HEADER_BYTES;
    while (nameEnd < end && buf[nameEnd] !== 0) nameEnd++;
    const name = Buffer.from(
      buf.buffer,
      buf.byteOffset + offset + INOTIFY_HEADER_BYTES,
      nameEnd - offset - INOTIFY_HEADER_BYTES,
    ).toString('utf8');
    records.push({ wd, mask, cookie, name });
    if ((mask & IN.Q_OVERFLOW) !== 0) overflow = true;
    offset = end;
  }
  return { records, overflow, garbledBytes: buf.byteLength - offset };
}

export type InotifySourceItem =
  /** The instance is open: add and remove watches through `handle`. */
  | { kind: 'open'; handle: InotifyHandle }
  /** Everything one wake-up read, IN_Q_OVERFLOW records left out (see 'overflow'). */
  | { kind: 'records'; records: InotifyRecord[]; garbledBytes: number }
  /** The kernel's queue overflowed: events were lost; rescan everything watched. */
  | { kind: 'overflow' }
  /** read() failed with something other than EAGAIN/EINTR; the handle stays open. */
  | { kind: 'error'; error: NativeSystemError };

/**
 * Cold: each subscription opens its own inotify instance and emits 'open' with its handle;
 * unsubscribing closes it (and with it every watch). Open failures (EMFILE, the per-user
 * max_user_instances) end the stream with the error.
 */
export function inotifyEvents(native: NativeInotify): Observable<InotifySourceItem> {
  return new Observable<InotifySourceItem>((subscriber) => {
    let handle: InotifyHandle;
    try {
      handle = native.openInotify(
        (bytes) => {
          if (subscriber.closed) return;
          const parsed = parseInotifyRecords(bytes);
          const records = parsed.overflow
            ? parsed.records.filter((r) => (r.mask & IN.Q_OVERFLOW) === 0)
            : parsed.records;
          if (records.length > 0 || parsed.garbledBytes > 0)
            subscriber.next({ kind: 'records', records, garbledBytes: parsed.garbledBytes });
          if (parsed.overflow) subscriber.next({ kind: 'overflow' });
        },
        (error) => subscriber.next({ kind: 'error', error }),
      );
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    subscriber.next({ kind: 'open', handle });
    return () => handle.close();
  });
}
