// The uevent path: source items → validation counters → registry → device units. Coldplug fills the
// registry from /sys before events flow; an overflow resyncs by rescanning /sys and applying the
// difference as synthetic add/remove/change events, so no device is lost.
import os = require('node:os');
import { Subject } from '../util/rx';
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import type { DeviceRecord, Uevent } from './types';
import { DeviceRegistry, defaultDecision, type DeviceChange, type DeviceDecision } from './device-registry';
import { readKernelSeqnum, scanSysfs, syntheticUevent, DEFAULT_SYS_ROOT, type SysfsDevice } from './sysfs';
import type { UeventSourceItem, UeventRejection } from '../events/uevent-events';
import type { UeventSocket } from '../native/types';
import type { RulesStage } from './rules-stage';
import { DeviceEventQueue } from './event-queue';

export interface DevicePipelineStats {
  /** Events accepted from the socket. */
  received: number;
  /** Messages dropped by validation or sender checks, by error code. */
  rejected: Record<string, number>;
  overflows: number;
  resyncs: number;
  syntheticEvents: number;
  /** Per-device read errors during the last scan. */
  scanErrors: number;
  coldplugMs: number;
  lastSeqnum: number;
  /** The uevent socket's netlink port and granted receive buffer, once open. */
  port: number;
  receiveBufferBytes: number;
}

export interface DevicePipelineOptions {
  logger: Logger;
  sysRoot?: string;
  /**
   * The rules layer; until it exists, systemd's default tags. Gets the device's record before
   * the event, when there is one.
   */
  decide?: (event: Uevent, previous?: DeviceRecord) => DeviceDecision;
  /** Adds what sysfs cannot tell to events made from a scan (companion mode: udevd's database). */
  enrichSynthetic?: (event: Uevent) => Uevent;
  /** Standalone device manager: run the rules (and apply their effects) before the registry. */
  rules?: RulesStage;
  /** Events processed at once (udevd's children_max); default defaultChildrenMax(). */
  childrenMax?: number;
}

/**
 * udevd's default children_max: 8 + 2 per CPU. More events in flight do not go faster (blkid and
 * the rules share the same CPUs) but each holds its memory until done: 53 at once cost ~15 MB
 * of peak RSS in bench/storm.
 */
export function defaultChildrenMax(): number {
  return 8 + 2 * os.availableParallelism();
}

export interface ColdplugResult {
  devices: number;
  errors: number;
  ms: number;
}

export class DevicePipeline {
  readonly registry = new DeviceRegistry();
  /** Every event after it was applied (source and synthetic), for `monitor`. */
  readonly events$ = new Subject<Uevent>();
  readonly changes$ = new Subject<DeviceChange>();
  readonly stats: DevicePipelineStats = {
    received: 0,
    rejected: {},
    overflows: 0,
    resyncs: 0,
    syntheticEvents: 0,
    scanErrors: 0,
    coldplugMs: 0,
    lastSeqnum: 0,
    port: 0,
    receiveBufferBytes: 0,
  };
  /** Number of batches handled; `settle` watches it to know the socket has gone quiet. */
  batches = 0;
  private readonly logger: Logger;
  private readonly sysRoot: string;
  private readonly decide: (event: Uevent, previous?: DeviceRecord) => DeviceDecision;
  private readonly enrichSynthetic: (event: Uevent) => Uevent;
  private readonly rejectLog = new RateLimitedLog(10_000, 5);
  private readonly rules: RulesStage | undefined;
  /** With rules: events wait here in kernel order per device family; bounded, with backpressure. */
  private readonly queue: DeviceEventQueue<Uevent> | undefined;
  private socket: UeventSocket | undefined;

  constructor(options: DevicePipelineOptions) {
    this.logger = options.logger;
    this.sysRoot = options.sysRoot ?? DEFAULT_SYS_ROOT;
    this.decide = options.decide ?? defaultDecision;
    this.enrichSynthetic = options.enrichSynthetic ?? ((e) => e);
    this.rules = options.rules;
    if (this.rules !== undefined) {
      const rules = this.rules;
      this.queue = new DeviceEventQueue<Uevent>({
        maxRunning: options.childrenMax ?? defaultChildrenMax(),
        process: async (event) => {
          const processed = await rules.process(event, this.registry.get(event.devpath));
          this.commit(processed.event, processed.decision);
        },
        // A full queue stops reading the socket; the kernel's buffer (and ENOBUFS → resync) takes over.
        onPressure: (paused) => {
          if (paused) this.socket?.pause();
          else this.socket?.resume();
          this.logger.warn(
            { queued: this.queue?.queued },
            paused ? 'event queue full: reading paused' : 'reading resumed',
          );
        },
        onError: (event, err) =>
          this.logger.error(
            { err, devpath: event.devpath, seqnum: event.seqnum },
            'failed to process uevent',
          ),
      });
    }
  }

  /** Send a processed event to libudev listeners (netlink group 2) through the uevent socket. */
  sendToLibudev(buffer: Buffer): void {
    if (this.socket === undefined) throw new Error('uevent socket not open');
    this.socket.send(buffer, 0, 2);
  }

  /** Events received but not fully processed yet (rules still running), for settle. */
  pending(): number {
    return this.queue === undefined ? 0 : this.queue.queued + this.queue.active;
  }

  /** Resolves when every queued event has been processed. */
  idle(): Promise<void> {
    return this.queue?.idle() ?? Promise.resolve();
  }

  /**
   * Coldplug through the rules: every device as a synthetic 'add', processed like udevadm
   * trigger at boot (links, database, tags). Resolves when all are done.
   */
  async coldplugWithRules(): Promise<ColdplugResult> {
    const t0 = performance.now();
    const seqnum = readKernelSeqnum(this.sysRoot);
    const scan = scanSysfs(this.sysRoot);
    for (const device of scan.devices.values()) this.applyEvent(syntheticUevent(device, 'add'));
    await this.idle();
    if (seqnum > this.registry.lastSeqnum) this.registry.lastSeqnum = seqnum;
    this.stats.lastSeqnum = this.registry.lastSeqnum;
    this.reportScanErrors(scan.errors);
    const ms = performance.now() - t0;
    this.stats.coldplugMs = ms;
    return { devices: scan.devices.size, errors: scan.errors.length, ms };
  }

  /** Fill the registry from /sys. Call before subscribing to the source's events. */
  coldplug(): ColdplugResult {
    const t0 = performance.now();
    const seqnum = readKernelSeqnum(this.sysRoot);
    const scan = scanSysfs(this.sysRoot);
    for (const device of scan.devices.values()) this.applySynthetic(device, 'add', false);
    // Events up to here are reflected in the scan; later ones arrive on the socket.
    if (seqnum > this.registry.lastSeqnum) this.registry.lastSeqnum = seqnum;
    this.stats.lastSeqnum = this.registry.lastSeqnum;
    this.reportScanErrors(scan.errors);
    const ms = performance.now() - t0;
    this.stats.coldplugMs = ms;
    return { devices: scan.devices.size, errors: scan.errors.length, ms };
  }

  /** Consume one item of the uevent source. */
  handle(item: UeventSourceItem): void {
    switch (item.kind) {
      case 'open':
        this.socket = item.socket;
        this.stats.port = item.socket.portId;
        this.stats.receiveBufferBytes = item.socket.receiveBufferBytes;
        this.logger.info(
          { port: item.socket.portId, receiveBufferBytes: item.socket.receiveBufferBytes },
          'listening for uevents',
        );
        return;
      case 'events':
        this.batches++;
        for (const r of item.rejected) this.reject(r);
        for (const event of item.events) {
          // One event that trips a bug must not take the rest of the batch with it.
          try {
            this.applyEvent(event);
          } catch (err) {
            this.logger.error(
              { err, devpath: event.devpath, seqnum: event.seqnum },
              'failed to apply uevent',
            );
          }
        }
        this.stats.received += item.events.length;
        this.stats.lastSeqnum = this.registry.lastSeqnum;
        return;
      case 'overflow':
        this.batches++;
        this.stats.overflows++;
        this.logger.warn({ reason: item.reason }, 'uevents were lost; rescanning /sys');
        this.resync();
        return;
      case 'error':
        this.logger.error(
          { code: item.error.code, errno: item.error.errno },
          `uevent socket: ${item.error.message}`,
        );
        return;
    }
  }

  /** Rescan /sys and apply the difference to the registry as synthetic events. */
  resync(): number {
    this.stats.resyncs++;
    const seqnum = readKernelSeqnum(this.sysRoot);
    const scan = scanSysfs(this.sysRoot);
    let n = 0;
    for (const devpath of [...this.registry.devpaths()]) {
      if (!scan.devices.has(devpath)) {
        const gone = this.registry.get(devpath);
        if (gone === undefined) continue;
        const event: Uevent = {
          source: 'synthetic',
          action: 'remove',
          devpath,
          subsystem: gone.subsystem,
          seqnum: 0,
          properties: new Map([
            ['ACTION', 'remove'],
            ['DEVPATH', devpath],
            ['SUBSYSTEM', gone.subsystem],
          ]),
        };
        this.applyEvent(event);
        n++;
      }
    }
    for (const device of scan.devices.values()) {
      const known = this.registry.get(device.devpath);
      if (known === undefined) {
        this.applySynthetic(device, 'add', true);
        n++;
      } else if (!sameProperties(known.properties, device)) {
        this.applySynthetic(device, 'change', true);
        n++;
      }
    }
    if (seqnum > this.registry.lastSeqnum) this.registry.lastSeqnum = seqnum;
    this.stats.lastSeqnum = this.registry.lastSeqnum;
    this.stats.syntheticEvents += n;
    this.reportScanErrors(scan.errors);
    this.logger.info({ synthetic: n, devices: this.registry.size }, 'resync done');
    return n;
  }

  private applySynthetic(device: SysfsDevice, action: 'add' | 'change', announce: boolean): void {
    const event = this.enrichSynthetic(syntheticUevent(device, action));
    if (this.queue !== undefined) {
      this.queue.push(event);
      return;
    }
    const change = this.registry.apply(event, this.decide(event, this.registry.get(event.devpath)));
    if (change !== undefined) this.changes$.next(change);
    if (announce) this.events$.next(event);
  }

  private applyEvent(event: Uevent): void {
    if (this.queue !== undefined) {
      this.queue.push(event);
      return;
    }
    this.commit(event, this.decide(event, this.registry.get(event.devpath)));
  }

  /** The event, as the rules (or the defaults) decided it, into the registry and out to listeners. */
  private commit(event: Uevent, decision: DeviceDecision): void {
    const change = this.registry.apply(event, decision);
    if (change !== undefined) this.changes$.next(change);
    this.events$.next(event);
  }

  private reject(r: UeventRejection): void {
    const code = r.error.code;
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    const suppressed = this.rejectLog.admit();
    if (suppressed >= 0) {
      this.logger.warn(
        { code, senderPort: r.senderPort, uid: r.uid, pid: r.pid, length: r.length, suppressed },
        `dropped netlink message: ${r.error.message}`,
      );
    }
  }

  private reportScanErrors(errors: { devpath: string; code: string; message: string }[]): void {
    this.stats.scanErrors = errors.length;
    for (const e of errors.slice(0, 10)) this.logger.warn({ devpath: e.devpath, code: e.code }, e.message);
  }
}

/** Whether the registry's properties match what sysfs shows now (sysfs has no ACTION/SEQNUM). */
function sameProperties(known: ReadonlyMap<string, string>, device: SysfsDevice): boolean {
  for (const [k, v] of device.properties) if (known.get(k) !== v) return false;
  return true;
}
