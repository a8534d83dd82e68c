// udev's OPTIONS+="watch": after an event's rules ran with `watch`, the device node is watched for
// IN_CLOSE_WRITE; when a writer (mkfs, wipefs, dd, a partitioner) closes it, a 'change' uevent is
// synthesized by writing "change" to /sys<devpath>/uevent. The kernel's real uevent then flows
// through the normal pipeline, so the rules re-probe the device and the links follow its content.
//
// As udevd does: every event ends the watch while it is processed (a RUN program writing the node
// must not trigger itself), and afterwards the watch is on exactly when the event's result has
// `watch` (not `nowatch`), the action is not remove, and the device has a node. IN_IGNORED (the
// node was deleted) drops the watch. A whole disk is handled like udevd's synthesize_change:
// re-read its partition table when nobody holds it, else a change for the disk and each partition.
//
// Watches are recorded under <udevRunDir>/watch as udevd lays them out (v249+): `<id>` → `<wd>`
// and `<wd>` → `<id>`. They are meaningless once the inotify fd that made them is gone, so
// start-up clears them; coldplug runs every device through the rules and re-creates them.
//
// Overflow (IN_Q_OVERFLOW): some close-writes were lost, so every watched device gets a change.
// Changes are coalesced per wake-up: a device is synthesized at most once per batch.
import fs = require('node:fs');
import path = require('node:path');
import type { Subscription } from 'rxjs';
import type { Logger } from '../util/logger';
import { RateLimitedLog } from '../util/logger';
import { IN, type NativeInotify, type InotifyHandle } from '../native/inotify-addon';
import { inotifyEvents, type InotifyRecord, type InotifySourceItem } from '../events/inotify-events';
import type { RulesResult } from './rules/rules-result';
import type { Uevent } from './types';
import { udevDeviceId } from './udev-db';

/** What the rules stage calls: around each event it applies effects for. */
export interface DeviceWatchHook {
  /** The event's processing starts: close-writes of its node are ignored until `update`. */
  begin(event: Uevent): void;
  /** The event's effects are applied: watch or stop watching its node, as its result says. */
  update(event: Uevent, result: RulesResult): void;
}

export interface DeviceWatchOptions {
  native: NativeInotify;
  logger: Logger;
  /** Default /run/udev; the links go to <udevRunDir>/watch. */
  udevRunDir?: string;
  /** Default /sys. */
  sysRoot?: string;
}

/** One watched device: what synthesizing its change needs, kept from its last event. */
interface Watched {
  id: string;
  wd: number;
  devnode: string;
  devpath: string;
  subsystem: string;
  devtype?: string;
}

export interface DeviceWatchStats {
  watches: number;
  closeWrites: number;
  /** Close-writes ignored because the device's own event was being processed. */
  suppressed: number;
  overflows: number;
  /** 'change' written to a uevent file (or partition table re-read). */
  synthesized: number;
  errors: number;
}

export class DeviceWatch implements DeviceWatchHook {
  private readonly byId = new Map<string, Watched>();
  private readonly byWd = new Map<number, Watched>();
  /** Devices whose event is being processed (udevd has no watch on them meanwhile). */
  private readonly inFlight = new Set<string>();
  private readonly dir: string;
  private readonly sysRoot: string;
  private readonly logger: Logger;
  private readonly problemLog = new RateLimitedLog(10_000, 20);
  private handle: InotifyHandle | undefined;
  private readonly subscription: Subscription;
  readonly stats: DeviceWatchStats = {
    watches: 0,
    closeWrites: 0,
    suppressed: 0,
    overflows: 0,
    synthesized: 0,
    errors: 0,
  };

  /** Opens the inotify instance (throws if it cannot) and clears stale watch links. */
  constructor(private readonly options: DeviceWatchOptions) {
    this.logger = options.logger;
    this.dir = path.join(options.udevRunDir ?? '/run/udev', 'watch');
    this.sysRoot = options.sysRoot ?? '/sys';
    let failed: unknown;
    this.subscription = inotifyEvents(options.native).subscribe({
      next: (item) => this.handleItem(item),
      error: (err: unknown) => (failed = err),
    });
    if (failed !== undefined) throw failed;
    this.clearLinks();
  }

  begin(event: Uevent): void {
    this.inFlight.add(udevDeviceId(event));
  }

  update(event: Uevent, result: RulesResult): void {
    const id = udevDeviceId(event);
    this.inFlight.delete(id);
    const devnode = event.devname;
    if (event.action === 'remove' || devnode === undefined || !result.options.has('watch')) {
      this.end(id);
      return;
    }
    this.watch({
      id,
      wd: -1,
      devnode,
      devpath: event.devpath,
      subsystem: event.subsystem,
      devtype: event.devtype,
    });
  }

  /** The devices watched now, by id (for status and tests). */
  watched(): Map<string, { wd: number; devnode: string; devpath: string }> {
    return new Map(
      [...this.byId].map(([id, w]) => [id, { wd: w.wd, devnode: w.devnode, devpath: w.devpath }]),
    );
  }

  /** Stops watching everything and removes the links. */
  close(): void {
    for (const id of [...this.byId.keys()]) this.removeLinks(this.byId.get(id));
    this.byId.clear();
    this.byWd.clear();
    this.stats.watches = 0;
    this.subscription.unsubscribe();
    this.handle = undefined;
  }

  private handleItem(item: InotifySourceItem): void {
    switch (item.kind) {
      case 'open':
        this.handle = item.handle;
        // The daemon's other sources keep the process alive; this one alone must not.
        item.handle.unref();
        return;
      case 'records':
        this.onRecords(item.records);
        if (item.garbledBytes > 0)
          this.report(`inotify: ${item.garbledBytes} bytes that are not a whole record`);
        return;
      case 'overflow':
        this.stats.overflows++;
        this.logger.warn(
          { watches: this.byId.size },
          'inotify queue overflowed: synthesizing change for every watched device',
        );
        this.synthesizeAll([...this.byId.values()]);
        return;
      case 'error':
        this.report(`inotify read: ${item.error.message}`, item.error.code);
        return;
    }
  }

  private onRecords(records: readonly InotifyRecord[]): void {
    const dirty = new Map<string, Watched>();
    for (const r of records) {
      const w = this.byWd.get(r.wd);
      if (w === undefined) continue;
      if ((r.mask & IN.CLOSE_WRITE) !== 0) {
        this.stats.closeWrites++;
        if (this.inFlight.has(w.id)) this.stats.suppressed++;
        else dirty.set(w.id, w);
      }
      if ((r.mask & IN.IGNORED) !== 0) {
        // The kernel already dropped the watch (the node is gone): only our side is left.
        this.forget(w);
        dirty.delete(w.id);
      }
    }
    this.synthesizeAll([...dirty.values()]);
  }

  private watch(next: Watched): void {
    const handle = this.handle;
    if (handle === undefined) return;
    let wd: number;
    try {
      wd = handle.addWatch(next.devnode, IN.CLOSE_WRITE);
    } catch (err) {
      // The node may already be gone again (a quick remove); udevd ignores ENOENT too.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        this.report(`watch ${next.devnode}: ${(err as Error).message}`, code, next.devpath);
      this.end(next.id);
      return;
    }
    const old = this.byId.get(next.id);
    const w: Watched = { ...next, wd };
    if (old !== undefined && old.wd === wd) {
      // Same node, same watch: keep the links, take the event's view of the device.
      this.byId.set(w.id, w);
      this.byWd.set(wd, w);
      return;
    }
    if (old !== undefined) this.end(old.id);
    // A wd already held by another id means the node was reused (same inode): the newer wins.
    const other = this.byWd.get(wd);
    if (other !== undefined) this.forget(other);
    this.byId.set(w.id, w);
    this.byWd.set(wd, w);
    this.stats.watches = this.byId.size;
    this.writeLinks(w);
  }

  private end(id: string): void {
    const w = this.byId.get(id);
    if (w === undefined) return;
    this.forget(w);
    try {
      this.handle?.removeWatch(w.wd);
    } catch {
      // EINVAL: the kernel dropped it already (IN_IGNORED on its way) — nothing left to end.
    }
  }

  /** Drops our side of a watch: maps and links. */
  private forget(w: Watched): void {
    if (this.byId.get(w.id) === w) this.byId.delete(w.id);
    if (this.byWd.get(w.wd) === w) this.byWd.delete(w.wd);
    this.stats.watches = this.byId.size;
    this.removeLinks(w);
  }

  private synthesizeAll(devices: readonly Watched[]): void {
    for (const w of devices) this.synthesize(w);
  }

  /** udevd's synthesize_change. */
  private synthesize(w: Watched): void {
    const base = path.basename(w.devpath);
    if (w.subsystem !== 'block' || w.devtype !== 'disk' || base.startsWith('dm-')) {
      this.writeChange(w.devpath, w.devpath);
      return;
    }
    // Only when nobody holds the disk; the kernel then reports the new table itself. It returns
    // success also when it finds no table, and then sends nothing for the disk.
    let reread = false;
    try {
      this.options.native.rereadPartitionTable(w.devnode);
      reread = true;
    } catch {
      // EBUSY (a partition in use), EWOULDBLOCK (someone holds the lock), EINVAL (no partitions
      // possible, e.g. a loop device without partscan): change events instead.
    }
    const partitions = this.partitionsOf(w.devpath);
    if (reread && partitions.length > 0) {
      this.stats.synthesized++;
      return;
    }
    this.writeChange(w.devpath, w.devpath);
    for (const p of partitions) this.writeChange(p, w.devpath);
  }

  /** Partitions of a whole disk, from sysfs: its child directories that have a `partition` file. */
  private partitionsOf(devpath: string): string[] {
    const dir = path.join(this.sysRoot, devpath);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => fs.existsSync(path.join(dir, n, 'partition')))
      .sort()
      .map((n) => `${devpath}/${n}`);
  }

  private writeChange(devpath: string, watchedDevpath: string): void {
    const file = path.join(this.sysRoot, devpath, 'uevent');
    try {
      fs.writeFileSync(file, 'change');
      this.stats.synthesized++;
      this.logger.debug(
        { devpath, watched: watchedDevpath },
        'device node closed after writing: synthesized change',
      );
    } catch (err) {
      this.report(`write ${file}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code, devpath);
    }
  }

  private writeLinks(w: Watched): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      replaceSymlink(String(w.wd), path.join(this.dir, w.id));
      replaceSymlink(w.id, path.join(this.dir, String(w.wd)));
    } catch (err) {
      this.report(
        `watch links for ${w.id}: ${(err as Error).message}`,
        (err as NodeJS.ErrnoException).code,
        w.devpath,
      );
    }
  }

  private removeLinks(w: Watched | undefined): void {
    if (w === undefined) return;
    unlinkIfPointsTo(path.join(this.dir, w.id), String(w.wd));
    unlinkIfPointsTo(path.join(this.dir, String(w.wd)), w.id);
  }

  /** Links left by an earlier run (or a udevd before us) name watches of an fd that is gone. */
  private clearLinks(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      try {
        if (fs.lstatSync(path.join(this.dir, n)).isSymbolicLink()) fs.unlinkSync(path.join(this.dir, n));
      } catch {
        // gone meanwhile
      }
    }
  }

  private report(message: string, code?: string, devpath?: string): void {
    this.stats.errors++;
    const suppressed = this.problemLog.admit();
    if (suppressed < 0) return;
    this.logger.warn({ devpath, code, suppressed }, message);
  }
}

/** symlink(target, link) replacing whatever link is there, atomically (temporary name + rename). */
function replaceSymlink(target: string, link: string): void {
  const tmp = `${link}.tmp-${process.pid}`;
  try {
    fs.unlinkSync(tmp);
  } catch {
    // none left over
  }
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
}

/** Removes `link` only if it still points to `target` (another device may own that name now). */
function unlinkIfPointsTo(link: string, target: string): void {
  try {
    if (fs.readlinkSync(link) === target) fs.unlinkSync(link);
  } catch {
    // not there, or not a link
  }
}
