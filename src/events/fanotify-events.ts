// fanotify as an Observable, and the parser for its records. The native handle hands over raw
// bytes, one Buffer per wake-up; parseFanotifyRecords turns them into records here, in TypeScript.
//
// Bound: one native batch (≤ 1 MiB of events) is all that is held in memory; nothing is queued
// between the handle and the subscriber. In front of it sits the kernel's queue
// (fs.fanotify.max_queued_events, 16384 by default), and the addon stops reading while it holds
// 8192 event fds. Overflow policy: when the kernel's queue overflows it drops events and queues
// one FAN_Q_OVERFLOW record; it is emitted as an explicit 'overflow' item after the batch's other
// records, and the consumer must rescan what it watches. Permission events are never dropped by
// the kernel (they wait for an answer), so an overflow only ever loses notifications.
import { endianness } from 'node:os';
import { Observable } from '../util/rx';
import {
  FAN,
  FAN_PERMISSION_EVENTS,
  type FanotifyHandle,
  type NativeFanotify,
  type NativeSystemError,
} from '../native/fanotify-addon';

/** FAN_EVENT_INFO_TYPE_* */
export const FAN_INFO = {
  FID: 1,
  DFID_NAME: 2,
  DFID: 3,
  PIDFD: 4,
  ERROR: 5,
  RANGE: 6,
  MNT: 7,
  OLD_DFID_NAME: 10,
  NEW_DFID_NAME: 12,
} as const;

/** FANOTIFY_METADATA_VERSION */
export const FANOTIFY_METADATA_VERSION = 3;
/** sizeof(struct fanotify_event_metadata) */
export const FANOTIFY_METADATA_BYTES = 24;
/** FAN_NOFD */
export const FAN_NOFD = -1;

/** A file (or directory) handle from an FID/DFID/DFID_NAME info record. */
export interface FanotifyFid {
  infoType: number;
  /** __kernel_fsid_t as 16 hex digits: which file system the handle belongs to. */
  fsid: string;
  /** struct file_handle as the kernel wrote it (handle_bytes u32, handle_type s32, f_handle), copied. */
  handle: Buffer;
  /** fsid + handle in hex: a key for caches of resolved paths. */
  key: string;
  /** The entry's name for *_DFID_NAME records ('.' when the event is on the directory itself). */
  name?: string;
}

/** One struct fanotify_event_metadata with its info records. */
export interface FanotifyRecord {
  /** The event mask (the kernel's u64; every defined bit is below 2^32). */
  mask: number;
  /** The event fd (this process owns it: close it, and answer it first if it is a permission event), or FAN_NOFD. */
  fd: number;
  /** The process that caused the event (its thread id with FAN_REPORT_TID); 0 when unknown. */
  pid: number;
  /** FAN_Q_OVERFLOW: events were lost. */
  overflow: boolean;
  /** A permission event: it waits for respond(fd, ...). */
  permission: boolean;
  fids: FanotifyFid[];
  pidfd?: number;
  error?: { error: number; count: number };
  /** FAN_EVENT_INFO_TYPE_RANGE of a pre-content event. */
  range?: { offset: bigint; count: bigint };
  mntId?: bigint;
  /** Info record types this parser does not know (kept, not fatal). */
  unknownInfo: number[];
  /**
   * Something inside the record did not add up (wrong metadata version or length, an info record
   * running past the event): what could be read is here, `fd` included, so it can still be
   * answered and closed.
   */
  garbled: boolean;
}

export interface ParsedFanotifyRecords {
  /** Every record whose length was sane, FAN_Q_OVERFLOW included, in order. */
  records: FanotifyRecord[];
  /** A FAN_Q_OVERFLOW record was among them. */
  overflow: boolean;
  /** Bytes at the end that did not form a whole record (never from a sane kernel). */
  garbledBytes: number;
}

const LITTLE = endianness() === 'LE';
const FID_INFO_TYPES = new Set<number>([
  FAN_INFO.FID,
  FAN_INFO.DFID_NAME,
  FAN_INFO.DFID,
  FAN_INFO.OLD_DFID_NAME,
  FAN_INFO.NEW_DFID_NAME,
]);
const NAMED_INFO_TYPES = new Set<number>([
  FAN_INFO.DFID_NAME,
  FAN_INFO.OLD_DFID_NAME,
  FAN_INFO.NEW_DFID_NAME,
]);
/** MAX_HANDLE_SZ */
const MAX_HANDLE_BYTES = 128;

/**
 * Parses concatenated fanotify events. Never throws: an event length that is too short or runs
 * past the buffer ends the parse (the rest counted in `garbledBytes`); anything wrong inside an
 * event of sane length marks that record `garbled` and the parse goes on with the next one.
 */
export function parseFanotifyRecords(buf: Uint8Array): ParsedFanotifyRecords {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: FanotifyRecord[] = [];
  let overflow = false;
  let offset = 0;
  while (buf.byteLength - offset >= FANOTIFY_METADATA_BYTES) {
    const eventLen = view.getUint32(offset, LITTLE);
    if (eventLen < FANOTIFY_METADATA_BYTES || eventLen > buf.byteLength - offset) break;
    const record = parseOne(buf, view, offset, eventLen);
    if (record.overflow) overflow = true;
    records.push(record);
    offset += eventLen;
  }
  return { records, overflow, garbledBytes: buf.byteLength - offset };
}

function parseOne(buf: Uint8Array, view: DataView, start: number, eventLen: number): FanotifyRecord {
  const vers = view.getUint8(start + 4);
  const metadataLen = view.getUint16(start + 6, LITTLE);
  const lo = view.getUint32(start + 8, LITTLE);
  const hi = view.getUint32(start + 12, LITTLE);
  const mask = hi * 0x1_0000_0000 + lo;
  const fd = view.getInt32(start + 16, LITTLE);
  const pid = view.getInt32(start + 20, LITTLE);
  const record: FanotifyRecord = {
    mask,
    fd,
    pid,
    overflow: (lo & FAN.Q_OVERFLOW) !== 0,
    permission: (lo & FAN_PERMISSION_EVENTS) !== 0,
    fids: [],
    unknownInfo: [],
    garbled: false,
  };
  if (vers !== FANOTIFY_METADATA_VERSION || metadataLen < FANOTIFY_METADATA_BYTES || metadataLen > eventLen) {
    record.garbled = true;
    return record;
  }
  const end = start + eventLen;
  let off = start + metadataLen;
  while (off < end) {
    if (end - off < 4) {
      record.garbled = true;
      break;
    }
    const type = view.getUint8(off);
    const len = view.getUint16(off + 2, LITTLE);
    if (len < 4 || len > end - off) {
      record.garbled = true;
      break;
    }
    if (!parseInfo(buf, view, off, len, type, record)) record.garbled = true;
    off += len;
  }
  return record;
}

/** Parses one info record of `len` bytes at `off` into `record`; false when it does not add up. */
function parseInfo(
  buf: Uint8Array,
  view: DataView,
  off: number,
  len: number,
  type: number,
  record: FanotifyRecord,
): boolean {
  if (FID_INFO_TYPES.has(type)) {
    // hdr (4), fsid (8), file_handle header (8), f_handle, then for *_NAME a NUL-terminated name.
    if (len < 20) return false;
    const handleBytes = view.getUint32(off + 12, LITTLE);
    if (handleBytes > MAX_HANDLE_BYTES || 20 + handleBytes > len) return false;
    const fsid = Buffer.from(buf.buffer, buf.byteOffset + off + 4, 8).toString('hex');
    const handle = Buffer.from(Buffer.from(buf.buffer, buf.byteOffset + off + 12, 8 + handleBytes));
    const fid: FanotifyFid = { infoType: type, fsid, handle, key: fsid + handle.toString('hex') };
    if (NAMED_INFO_TYPES.has(type)) {
      const nameStart = off + 20 + handleBytes;
      let nameEnd = nameStart;
      while (nameEnd < off + len && buf[nameEnd] !== 0) nameEnd++;
      if (nameEnd === off + len) return false; // no terminating NUL
      fid.name = Buffer.from(buf.buffer, buf.byteOffset + nameStart, nameEnd - nameStart).toString('utf8');
    }
    record.fids.push(fid);
    return true;
  }
  switch (type) {
    case FAN_INFO.PIDFD:
      if (len < 8) return false;
      record.pidfd = view.getInt32(off + 4, LITTLE);
      return true;
    case FAN_INFO.ERROR:
      if (len < 12) return false;
      record.error = { error: view.getInt32(off + 4, LITTLE), count: view.getUint32(off + 8, LITTLE) };
      return true;
    case FAN_INFO.RANGE:
      if (len < 24) return false;
      record.range = {
        offset: view.getBigUint64(off + 8, LITTLE),
        count: view.getBigUint64(off + 16, LITTLE),
      };
      return true;
    case FAN_INFO.MNT:
      if (len < 12) return false;
      record.mntId = view.getBigUint64(off + 4, LITTLE);
      return true;
    default:
      record.unknownInfo.push(type);
      return true;
  }
}

export interface FanotifyEventsOptions {
  /** fanotify_init flags (FAN_INIT.*). */
  flags: number;
  /** fanotify_init event_f_flags (O_RDONLY | O_LARGEFILE usually). */
  eventFlags: number;
  /**
   * Leave the fds of notification records open for the subscriber (default false: closed as soon
   * as `next` returns; copy what you need, e.g. readlink /proc/self/fd/N, inside it). Permission
   * records' fds are always the subscriber's: answer with respond(), then closeEventFd().
   */
  keepNotificationFds?: boolean;
}

export type FanotifySourceItem =
  /** The group is open: add marks and answer permission events through `handle`. */
  | { kind: 'open'; handle: FanotifyHandle }
  /** Everything one wake-up read, FAN_Q_OVERFLOW records left out (see 'overflow'). */
  | { kind: 'records'; records: FanotifyRecord[]; garbledBytes: number }
  /** The kernel's queue overflowed: notifications were lost; rescan everything watched. */
  | { kind: 'overflow' }
  /** read() failed with something other than EAGAIN/EINTR; the handle stays open. */
  | { kind: 'error'; error: NativeSystemError };

/** Closes a record's fd, ignoring EBADF (closed already by the subscriber). */
function closeQuietly(handle: FanotifyHandle, fd: number): void {
  if (fd < 0 || handle.closed) return;
  try {
    handle.closeEventFd(fd);
  } catch {
    // EBADF: the subscriber closed it already.
  }
}

/**
 * Cold: each subscription opens its own fanotify group and emits 'open' with its handle;
 * unsubscribing closes it (the kernel then allows every permission event still waiting, and
 * drops every mark). Open failures (EPERM, EINVAL, EMFILE) end the stream with the error.
 * Records arriving after the subscriber went away are allowed (permission) and closed.
 */
export function fanotifyEvents(
  native: NativeFanotify,
  options: FanotifyEventsOptions,
): Observable<FanotifySourceItem> {
  return new Observable<FanotifySourceItem>((subscriber) => {
    let handle: FanotifyHandle | undefined;
    const onBatch = (bytes: Buffer): void => {
      if (handle === undefined) return;
      const h = handle;
      const parsed = parseFanotifyRecords(bytes);
      const records = parsed.overflow ? parsed.records.filter((r) => !r.overflow) : parsed.records;
      if (subscriber.closed) {
        for (const r of records) releaseRecord(h, r);
        return;
      }
      try {
        if (records.length > 0 || parsed.garbledBytes > 0)
          subscriber.next({ kind: 'records', records, garbledBytes: parsed.garbledBytes });
        if (parsed.overflow) subscriber.next({ kind: 'overflow' });
      } finally {
        if (options.keepNotificationFds !== true)
          for (const r of records) if (!r.permission) closeQuietly(h, r.fd);
      }
    };
    try {
      handle = native.openFanotify(options.flags, options.eventFlags, onBatch, (error) =>
        subscriber.next({ kind: 'error', error }),
      );
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    subscriber.next({ kind: 'open', handle });
    const opened = handle;
    return () => opened.close();
  });
}

/** Allows a permission record (if it still waits) and closes its fd; for records nobody will handle. */
export function releaseRecord(handle: FanotifyHandle, record: FanotifyRecord, response = 0x1): void {
  if (record.fd < 0 || handle.closed) return;
  if (record.permission) {
    try {
      handle.respond(record.fd, response);
    } catch {
      // ENOENT: answered already; EBADF: closed already.
    }
  }
  closeQuietly(handle, record.fd);
}
