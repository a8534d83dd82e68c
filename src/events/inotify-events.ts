// inotify as an Observable, and the parser for its records. The native handle hands over raw
// bytes, one Buffer per wake-up; parseInotifyRecords turns them into records here, in TypeScript.
//
// Bound: one native batch (≤ 1 MiB of records) is all that is held in memory; nothing is queued
// between the handle and the subscriber. In front of it sits the kernel's queue
// (fs.inotify.max_queued_events, 16384 by default). Overflow policy: when that queue overflows the
// kernel drops events and queues one IN_Q_OVERFLOW record (wd -1); it is emitted as an explicit
// 'overflow' item after the batch's other records, and the consumer must rescan what it watches.
//
// A full batch (a file burst: 16,384 records) parsed and handled in one go held the event loop
// for 50-70 ms in bench/load, and a control request waited behind it. So a batch is cut into
// pieces of at most `maxPerTurn` records (a walk over the record headers only) and handed on one
// piece per turn of the event loop (src/events/turn-slices), with the handle paused until the
// last one is out: still one native batch at most, in order.
import { endianness } from 'node:os';
import { Observable } from '../util/rx';
import { IN, type InotifyHandle, type NativeInotify, type NativeSystemError } from '../native/inotify-addon';
import { TurnSlices } from './turn-slices';

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
  const bytes = Buffer.isBuffer(buf) ? buf : undefined;
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
    // Events on a watched path itself carry no name. A Buffer (what the addon hands over) is
    // decoded in place: a view per name was an object per record of a burst, for the GC.
    const start = offset + INOTIFY_HEADER_BYTES;
    const name =
      nameEnd === start
        ? ''
        : bytes !== undefined
          ? bytes.toString('utf8', start, nameEnd)
          : Buffer.from(buf.buffer, buf.byteOffset + start, nameEnd - start).toString('utf8');
    records.push({ wd, mask, cookie, name });
    if ((mask & IN.Q_OVERFLOW) !== 0) overflow = true;
    offset = end;
  }
  return { records, overflow, garbledBytes: buf.byteLength - offset };
}

/**
 * Cuts concatenated records into views of at most `maxRecords` whole records each, reading only
 * the headers. Bytes after the last whole record stay at the end of the last piece (the parse
 * counts them as garbled there).
 */
export function splitInotifyRecords(buf: Uint8Array, maxRecords: number): Uint8Array[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const pieces: Uint8Array[] = [];
  let start = 0;
  let offset = 0;
  let count = 0;
  while (buf.byteLength - offset >= INOTIFY_HEADER_BYTES) {
    const end = offset + INOTIFY_HEADER_BYTES + view.getUint32(offset + 12, LITTLE);
    if (end > buf.byteLength) break;
    offset = end;
    if (++count === maxRecords && offset < buf.byteLength) {
      pieces.push(buf.subarray(start, offset));
      start = offset;
      count = 0;
    }
  }
  pieces.push(buf.subarray(start));
  return pieces;
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

export interface InotifyEventsOptions {
  /**
   * At most this many records parsed and emitted per turn of the event loop (default 1024); a
   * smaller batch is emitted at once, in the native callback.
   */
  maxPerTurn?: number;
}

/** ~1-2 ms of parsing and routing per turn. */
export const INOTIFY_RECORDS_PER_TURN = 1024;

/**
 * Cold: each subscription opens its own inotify instance and emits 'open' with its handle;
 * unsubscribing closes it (and with it every watch). Open failures (EMFILE, the per-user
 * max_user_instances) end the stream with the error.
 */
export function inotifyEvents(
  native: NativeInotify,
  options: InotifyEventsOptions = {},
): Observable<InotifySourceItem> {
  const maxPerTurn = options.maxPerTurn ?? INOTIFY_RECORDS_PER_TURN;
  return new Observable<InotifySourceItem>((subscriber) => {
    let handle: InotifyHandle;
    const emit = (pieces: Uint8Array[]): void => {
      for (const bytes of pieces) {
        if (subscriber.closed) return;
        const parsed = parseInotifyRecords(bytes);
        const records = parsed.overflow
          ? parsed.records.filter((r) => (r.mask & IN.Q_OVERFLOW) === 0)
          : parsed.records;
        if (records.length > 0 || parsed.garbledBytes > 0)
          subscriber.next({ kind: 'records', records, garbledBytes: parsed.garbledBytes });
        if (parsed.overflow) subscriber.next({ kind: 'overflow' });
      }
    };
    // One piece per turn: the slicer's unit is a piece of ≤ maxPerTurn records.
    const slices = new TurnSlices<Uint8Array>(1, emit);
    try {
      handle = native.openInotify(
        (bytes) => {
          if (subscriber.closed) return;
          // A record is at least a header: a batch this small cannot need cutting (the usual
          // wake-up of a path unit, one or a few records).
          slices.push(
            bytes.byteLength <= maxPerTurn * INOTIFY_HEADER_BYTES
              ? [bytes]
              : splitInotifyRecords(bytes, maxPerTurn),
          );
        },
        (error) => subscriber.next({ kind: 'error', error }),
      );
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    slices.attach(handle);
    subscriber.next({ kind: 'open', handle: throughSlices(handle, slices) });
    return () => {
      slices.cancel();
      handle.close();
    };
  });
}

/** The handle as the consumer sees it: pause/resume combined with the slicer's own pausing. */
function throughSlices(handle: InotifyHandle, slices: TurnSlices<Uint8Array>): InotifyHandle {
  return {
    addWatch: (path, mask) => handle.addWatch(path, mask),
    removeWatch: (wd) => handle.removeWatch(wd),
    armCall: (wd, mask, fn, prepared) => handle.armCall(wd, mask, fn, prepared),
    disarmCall: (id) => handle.disarmCall(id),
    pause: () => slices.pause(),
    resume: () => slices.resume(),
    close: () => handle.close(),
    unref: () => handle.unref(),
    ref: () => handle.ref(),
    get closed() {
      return handle.closed;
    },
  };
}
