// Small ext4 images with a known UUID and label, attached to loop devices with `losetup --find
// --show` (which creates /dev/loopN through /dev/loop-control when none is free) and detached by
// the device names this run attached, never by anything else. Whatever is still attached when the
// benchmark ends (failure, signal) is detached synchronously; by-uuid/by-label links naming our
// images, and by-diskseq links of our attachments that are out of date, left behind with no daemon
// to remove them, are swept.
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onCleanup } from './cleanup';
import { runCommand } from './proc';

const IMAGE_BYTES = 4 * 1024 * 1024;
const DISK = '/dev/disk';

export interface Ext4Image {
  file: string;
  uuid: string;
  label: string;
}

export interface Attachment {
  image: Ext4Image;
  /** '/dev/loopN' */
  device: string;
  /** The medium's sequence number when attached (its by-diskseq link), when the kernel has one. */
  diskseq: string | undefined;
}

/** What sweepStaleLinks found and removed. */
export interface SweepResult {
  removed: string[];
}

/** `count` sparse 4 MiB images in `dir`, formatted ext4 with fresh UUIDs and labels `<tag>-NN`. */
export async function createImages(dir: string, count: number, tag: string): Promise<Ext4Image[]> {
  const images: Ext4Image[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `img-${String(i).padStart(2, '0')}.ext4`);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, IMAGE_BYTES);
    images.push({ file, uuid: '', label: `${tag}-${String(i).padStart(2, '0')}` });
  }
  await reformat(images);
  return images;
}

/** mkfs.ext4 every image again with a new UUID (same label): each measurement gets unseen links. */
export async function reformat(images: Ext4Image[]): Promise<void> {
  for (const image of images) {
    const uuid = randomUUID();
    // No journal, no lazy init: the image is 4 MiB and formatting is not what is measured.
    const r = await runCommand(
      'mkfs.ext4',
      ['-q', '-F', '-O', '^has_journal', '-U', uuid, '-L', image.label, image.file],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0)
      throw new Error(`mkfs.ext4 ${image.file} failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    image.uuid = uuid;
  }
}

export function byUuidLink(image: Ext4Image): string {
  return `${DISK}/by-uuid/${image.uuid}`;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function readDiskseq(device: string): string | undefined {
  try {
    return fs.readFileSync(`/sys/block/${path.basename(device)}/diskseq`, 'latin1').trim();
  } catch {
    return undefined;
  }
}

/** Whether the loop device still has a backing file (detach is asynchronous while it is open). */
export function isAttached(device: string): boolean {
  return fs.existsSync(`/sys/block/${path.basename(device)}/loop/backing_file`);
}

/** Loop devices this run attached; detaches what is left on every path out. */
export class LoopSet {
  readonly attached = new Map<string, Attachment>();
  /** Every device name this run ever attached, for the link sweep. */
  private readonly everAttached = new Map<string, Set<string>>();
  private readonly images = new Map<string, Ext4Image>();
  private readonly dispose: () => void;

  constructor() {
    this.dispose = onCleanup('detach loop devices and sweep their stale links', () => {
      this.detachAllSync();
      this.sweepStaleLinks();
    });
  }

  /** losetup --find --show IMAGE; returns the attachment (throws when losetup fails). */
  async attach(image: Ext4Image): Promise<Attachment> {
    this.images.set(image.file, image);
    const r = await runCommand('losetup', ['--find', '--show', image.file], { timeoutMs: 30_000 });
    const device = r.stdout.trim();
    if (r.code !== 0 || !/^\/dev\/loop\d+$/.test(device)) {
      throw new Error(
        `losetup --find --show ${image.file} failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`,
      );
    }
    const attachment = { image, device, diskseq: readDiskseq(device) };
    this.attached.set(device, attachment);
    let seqs = this.everAttached.get(device);
    if (seqs === undefined) this.everAttached.set(device, (seqs = new Set()));
    if (attachment.diskseq !== undefined) seqs.add(attachment.diskseq);
    return attachment;
  }

  /** losetup -d DEVICE, for a device this set attached. */
  async detach(device: string): Promise<boolean> {
    if (!this.attached.has(device)) throw new Error(`${device} was not attached by this benchmark`);
    const r = await runCommand('losetup', ['-d', device], { timeoutMs: 30_000 });
    this.attached.delete(device);
    return r.code === 0;
  }

  /** Synchronous (usable in exit and signal handlers): detach every device still attached. */
  detachAllSync(): void {
    for (const device of [...this.attached.keys()]) {
      spawnSync('losetup', ['-d', device], { stdio: 'ignore', timeout: 10_000 });
      this.attached.delete(device);
    }
  }

  /**
   * Remove links that name our images (by-uuid, by-label) when no device holds the image, and
   * by-diskseq links of our attachments whose loop device has moved on to another diskseq.
   */
  sweepStaleLinks(): SweepResult {
    const removed: string[] = [];
    const attachedFiles = new Set([...this.attached.values()].map((a) => a.image.file));
    for (const image of this.images.values()) {
      if (attachedFiles.has(image.file)) continue;
      for (const link of [`${DISK}/by-uuid/${image.uuid}`, `${DISK}/by-label/${image.label}`]) {
        if (!isSymlink(link)) continue;
        fs.rmSync(link, { force: true });
        removed.push(link);
      }
    }
    for (const [device, seqs] of this.everAttached) {
      if (this.attached.has(device)) continue;
      // An empty loop device keeps the diskseq of its last medium, and its by-diskseq link is
      // legitimate: only links to a diskseq the device no longer has are stale.
      const current = readDiskseq(device);
      for (const seq of seqs) {
        if (seq === current) continue;
        const link = `${DISK}/by-diskseq/${seq}`;
        if (!isSymlink(link) || path.basename(fs.readlinkSync(link)) !== path.basename(device)) continue;
        fs.rmSync(link, { force: true });
        removed.push(link);
      }
    }
    return { removed };
  }

  /** Detach what is left and sweep now; the registered cleanup is done. */
  close(): SweepResult {
    this.detachAllSync();
    const sweep = this.sweepStaleLinks();
    this.dispose();
    return sweep;
  }
}
