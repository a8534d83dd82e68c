// Rebroadcast of a processed event to libudev listeners (netlink group 2), in udevd's wire format
// and property order. The order, as udevd 252 sent it for the recorded loop0 event
// (test/fixtures/uevents/raw-attach/msg02-udev.bin):
//   UDEV_DATABASE_VERSION=1, the kernel's properties in the kernel's order with DEVNAME absolute
//   and MAJOR/MINOR moved behind them (sd-device sets the devnum after the other keys),
//   USEC_INITIALIZED, TAGS, the properties the rules added, DEVLINKS, CURRENT_TAGS.
// udevd's real order depends on the history of its in-memory device (msg03, the next event on the
// same device, has USEC_INITIALIZED before MAJOR); libudev does not care about the order.
import { encodeLibudevMessage } from './libudev-encode';
import type { RulesResult } from './rules/rules-result';
import type { Uevent } from './types';
import { splitProperties, type SplitProperties } from './udev-db-writer';

export interface ProcessedEvent {
  event: Uevent;
  result: RulesResult;
  /** USEC_INITIALIZED (CLOCK_MONOTONIC µs of the device's first initialization). */
  usecInitialized: bigint;
  /** All tags ever set (TAGS); defaults to the event's tags. CURRENT_TAGS is `result.tags`. */
  allTags?: Iterable<string>;
  /** splitProperties(event, result), when the caller has it already. */
  split?: SplitProperties;
}

function tagList(tags: Iterable<string>): string {
  return `:${[...tags].join(':')}:`;
}

/** The properties of the libudev message, in udevd's order. */
export function udevEventProperties(processed: ProcessedEvent): [string, string][] {
  const { event, result } = processed;
  const { kernel, added } = processed.split ?? splitProperties(event, result);
  const out: [string, string][] = [['UDEV_DATABASE_VERSION', '1']];
  const devnum: [string, string][] = [];
  for (const [key, value] of kernel) {
    if (key === 'MAJOR' || key === 'MINOR') devnum.push([key, value]);
    else if (key === 'DEVNAME') out.push([key, value.startsWith('/') ? value : `/dev/${value}`]);
    else out.push([key, value]);
  }
  out.push(...devnum);
  if (processed.usecInitialized > 0n) out.push(['USEC_INITIALIZED', String(processed.usecInitialized)]);
  const all = [...(processed.allTags ?? result.tags)];
  if (all.length > 0) out.push(['TAGS', tagList(all)]);
  out.push(...added);
  if (result.devlinks.length > 0) out.push(['DEVLINKS', result.devlinks.map((l) => `/dev/${l}`).join(' ')]);
  if (result.tags.size > 0) out.push(['CURRENT_TAGS', tagList(result.tags)]);
  return out;
}

/** The whole datagram: libudev header (subsystem/devtype hashes, tag bloom of all tags) + properties. */
export function encodeProcessedEvent(processed: ProcessedEvent): Buffer {
  const { event, result } = processed;
  return encodeLibudevMessage({
    subsystem: event.subsystem,
    devtype: event.devtype,
    tags: processed.allTags ?? result.tags,
    properties: udevEventProperties(processed),
  });
}

export type RebroadcastErrorCode = 'ERR_REBROADCAST_SEND';

export interface RebroadcastStats {
  sent: number;
  /** Sends that threw (ECONNREFUSED when nobody listens is not reported by netlink; ENOBUFS etc.). */
  failed: number;
  /** Synthetic events (seqnum 0) not sent. */
  skipped: number;
}

/**
 * Sends processed events to group 2 through `send` (the daemon passes
 * `(buf) => socket.send(buf, 0, 2)`). A failed send is counted and reported, never thrown:
 * one listener's trouble must not stop event processing.
 */
export class Rebroadcaster {
  readonly stats: RebroadcastStats = { sent: 0, failed: 0, skipped: 0 };

  constructor(
    private readonly send: (buffer: Buffer) => void,
    private readonly onError: (code: RebroadcastErrorCode, error: unknown) => void = () => undefined,
  ) {}

  /**
   * Sends one processed event; false when it failed or was not sent. Events of our own making
   * (the coldplug at start: seqnum 0) are not sent: udevd announces only the kernel's events,
   * and libudev drops a device without SEQNUM anyway.
   */
  rebroadcast(processed: ProcessedEvent): boolean {
    if (processed.event.seqnum === 0) {
      this.stats.skipped++;
      return false;
    }
    const buffer = encodeProcessedEvent(processed);
    try {
      this.send(buffer);
      this.stats.sent++;
      return true;
    } catch (err) {
      this.stats.failed++;
      this.onError('ERR_REBROADCAST_SEND', err);
      return false;
    }
  }
}
