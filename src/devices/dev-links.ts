// /dev symlinks with udev's link_priority arbitration. Several devices may claim one name; each
// claim lives in /run/udev/links/<escaped name>/<id> (UdevDbWriter), so the decision survives a
// restart and agrees with udevd's own. The rules, as udevd 252's link_update():
// - on add, the claiming device takes the link unless its current owner has a strictly higher
//   priority: on a tie the device processed last wins;
// - on release, a link that points at the releasing device goes to the remaining claimant with the
//   highest priority whose node exists (ties: the lowest device id; udevd takes readdir order,
//   which is not defined), or is removed with its empty parent directories.
// Links are relative ('../../loop0') and replaced atomically (symlink to a temp name + rename).
// The /dev side is done at once (devtmpfs is fast); the claim writes under the run dir are queued
// (UdevDbWriter's write-behind), and arbitration sees queued claims as if they were written.
import fs = require('node:fs');
import path = require('node:path');
import { randomBytes } from 'node:crypto';
import {
  normalizeLink,
  NO_WRITES,
  type LinkClaim,
  type RunDirWriteResult,
  type UdevDbWriter,
} from './udev-db-writer';

export const DEFAULT_DEV_ROOT = '/dev';

export interface DevLinksOptions {
  /** Claim state (its root stands in for /run/udev in tests). */
  db: UdevDbWriter;
  /** Default /dev; tests pass a temp dir. Claims always name nodes as /dev/..., like udevd's. */
  devRoot?: string;
}

/** The device whose links are applied. */
export interface LinkOwner {
  id: string;
  /** '/dev/loop0'. */
  devnode: string;
  /** OPTIONS+="link_priority=N". */
  priority: number;
}

export type LinkOutcome =
  | { link: string; action: 'created' | 'kept' | 'removed' | 'repointed'; target?: string }
  /** Something other than a symlink sits at the path; udevd leaves it alone too. */
  | { link: string; action: 'conflict'; target?: string }
  | { link: string; action: 'error'; error: Error };

/** What update() and remove() did: /dev at once, the run dir's claims once `written` settles. */
export interface LinkChanges {
  /** The /dev links, already as they will stay. */
  outcomes: LinkOutcome[];
  /** Settles (never rejects) when the claim writes are done: an 'error' outcome for each that failed. */
  written: Promise<LinkOutcome[]>;
}

const NO_CLAIM_WRITES: Promise<LinkOutcome[]> = Promise.resolve([]);

/** Collects the claim writes of one update() or remove(). */
class ClaimWrites {
  private readonly writes: Promise<LinkOutcome[]>[] = [];

  add(link: string, write: RunDirWriteResult): void {
    if (write === NO_WRITES) return;
    this.writes.push(write.then((errors) => errors.map((error) => ({ link, action: 'error', error }))));
  }

  all(): Promise<LinkOutcome[]> {
    // A change event that decided the same as before queued nothing: no promise to make.
    if (this.writes.length === 0) return NO_CLAIM_WRITES;
    return Promise.all(this.writes).then((lists) => lists.flat());
  }
}

export class DevLinks {
  private readonly db: UdevDbWriter;
  readonly devRoot: string;

  constructor(opts: DevLinksOptions) {
    this.db = opts.db;
    this.devRoot = opts.devRoot ?? DEFAULT_DEV_ROOT;
  }

  /**
   * After an add/change: releases the links the device had before but no longer has, claims its
   * current ones, and keeps /dev/{block,char}/MAJ:MIN pointing at the node (udev_node_update).
   */
  update(owner: LinkOwner, links: readonly string[], oldLinks: readonly string[] = []): LinkChanges {
    const current = new Set(links.map(normalizeLink));
    const outcomes: LinkOutcome[] = [];
    const writes = new ClaimWrites();
    for (const old of oldLinks) {
      const rel = normalizeLink(old);
      if (!current.has(rel)) outcomes.push(this.guard(rel, () => this.release(owner, rel, writes)));
    }
    for (const rel of current) outcomes.push(this.guard(rel, () => this.claim(owner, rel, writes)));
    const devnum = devnumLink(owner.id);
    if (devnum !== undefined) {
      outcomes.push(this.guard(devnum, () => this.pointAt(devnum, owner.devnode, 'created')));
    }
    return { outcomes, written: writes.all() };
  }

  /** On remove: releases every link of the device and its /dev/{block,char} link. */
  remove(owner: LinkOwner, links: readonly string[]): LinkChanges {
    const writes = new ClaimWrites();
    const outcomes = links.map((l) => {
      const rel = normalizeLink(l);
      return this.guard(rel, () => this.release(owner, rel, writes));
    });
    const devnum = devnumLink(owner.id);
    if (devnum !== undefined) {
      outcomes.push(
        this.guard(devnum, () => {
          this.removeLink(devnum);
          return { link: devnum, action: 'removed' };
        }),
      );
    }
    return { outcomes, written: writes.all() };
  }

  /**
   * Where the link at `rel` points now, as an absolute /dev path; undefined when there is none.
   * `expected`: the node it most likely points at (checked without resolving paths).
   */
  currentTarget(rel: string, expected?: string): string | undefined {
    let target: string;
    try {
      target = fs.readlinkSync(this.hostPath(rel));
    } catch {
      return undefined;
    }
    if (expected !== undefined && target === this.relativeTarget(rel, expected)) return expected;
    return path.posix.resolve('/dev', path.posix.dirname(rel), target);
  }

  private readonly relativeTargets = new Map<string, string>();
  /** What a link at `rel` holds to point at `devnode` ('disk/by-uuid/x', '/dev/loop0' → '../../loop0'). */
  private relativeTarget(rel: string, devnode: string): string {
    const key = `${rel}\0${devnode}`;
    let target = this.relativeTargets.get(key);
    if (target === undefined) {
      target = path.posix.relative(path.posix.dirname(path.posix.join('/dev', rel)), devnode);
      // Every event of a device asks again for the same few links (a full map starts over).
      if (this.relativeTargets.size >= 4096) this.relativeTargets.clear();
      this.relativeTargets.set(key, target);
    }
    return target;
  }

  private guard(link: string, fn: () => LinkOutcome): LinkOutcome {
    try {
      return fn();
    } catch (err) {
      return { link, action: 'error', error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  private claim(owner: LinkOwner, rel: string, writes: ClaimWrites): LinkOutcome {
    const target = this.currentTarget(rel, owner.devnode);
    // Already ours with the same claim (a change event that decided the same): nothing to
    // arbitrate; other claimants' changes are arbitrated when they claim or release.
    if (
      target === owner.devnode &&
      this.db.hasLinkClaim(rel, { id: owner.id, priority: owner.priority, devnode: owner.devnode })
    ) {
      return { link: rel, action: 'kept', target };
    }
    const before = this.db.readLinkClaims(rel);
    writes.add(
      rel,
      this.db.writeLinkClaim(rel, { id: owner.id, priority: owner.priority, devnode: owner.devnode }),
    );
    const current =
      target === undefined || !this.nodeExists(target) ? undefined : before.find((c) => c.devnode === target);
    // No live owner (no link, a dangling one, or an unclaimed node): the best claimant takes it.
    if (current === undefined) return this.elect(rel, owner);
    if (current.id === owner.id) {
      // Ours already; a lowered priority may hand it to someone else.
      return current.priority <= owner.priority
        ? this.pointAt(rel, owner.devnode, 'created')
        : this.elect(rel, owner);
    }
    if (current.priority > owner.priority) return { link: rel, action: 'kept', target };
    return this.pointAt(rel, owner.devnode, 'repointed');
  }

  private release(owner: LinkOwner, rel: string, writes: ClaimWrites): LinkOutcome {
    writes.add(rel, this.db.removeLinkClaim(rel, owner.id));
    const target = this.currentTarget(rel);
    if (
      target !== undefined &&
      target !== owner.devnode &&
      target.startsWith('/dev/') &&
      this.isDeviceNode(target)
    ) {
      // Another device's link: not ours to touch.
      return { link: rel, action: 'kept', target };
    }
    return this.elect(rel, undefined);
  }

  /** Points the link at the best remaining claimant, or removes it. */
  private elect(rel: string, preferred: LinkOwner | undefined): LinkOutcome {
    let best: LinkClaim | undefined =
      preferred === undefined
        ? undefined
        : { id: preferred.id, priority: preferred.priority, devnode: preferred.devnode };
    for (const claim of this.db.readLinkClaims(rel)) {
      if (claim.id === preferred?.id || !this.nodeExists(claim.devnode)) continue;
      if (best === undefined || claim.priority > best.priority) best = claim;
    }
    if (best === undefined) {
      this.removeLink(rel);
      return { link: rel, action: 'removed' };
    }
    return this.pointAt(rel, best.devnode, 'repointed');
  }

  private pointAt(rel: string, devnode: string, action: 'created' | 'repointed'): LinkOutcome {
    const link = this.hostPath(rel);
    const before = this.currentTarget(rel, devnode);
    // A link that reads back as the node is a symlink already: nothing to check or do.
    if (before === devnode) return { link: rel, action: 'kept', target: devnode };
    try {
      if (!fs.lstatSync(link).isSymbolicLink()) return { link: rel, action: 'conflict', target: devnode };
    } catch {
      // absent
    }
    const dir = path.dirname(link);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const relTarget = this.relativeTarget(rel, devnode);
    const tmp = path.join(dir, `.#${path.basename(link)}${randomBytes(6).toString('hex')}`);
    fs.symlinkSync(relTarget, tmp);
    try {
      fs.renameSync(tmp, link);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return { link: rel, action: before === undefined ? 'created' : action, target: devnode };
  }

  private removeLink(rel: string): void {
    const link = this.hostPath(rel);
    try {
      if (!fs.lstatSync(link).isSymbolicLink()) return;
      fs.unlinkSync(link);
    } catch {
      return;
    }
    // Empty parents go too, up to (not including) /dev.
    let dir = path.dirname(link);
    while (dir.startsWith(this.devRoot + path.sep) && dir !== this.devRoot) {
      try {
        fs.rmdirSync(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  /** '/dev/loop0' → '<devRoot>/loop0'; 'disk/by-x/y' → '<devRoot>/disk/by-x/y'. */
  private hostPath(relOrDevnode: string): string {
    const rel = relOrDevnode.startsWith('/dev/') ? relOrDevnode.slice(5) : relOrDevnode;
    // Links and nodes are normalized already (normalizeLink, udev's devnode names).
    return this.devRoot + '/' + rel;
  }

  private nodeExists(devnode: string): boolean {
    return fs.existsSync(this.hostPath(devnode));
  }

  /** A block or char node; in a test tree (devRoot not /dev) any existing file stands in for one. */
  private isDeviceNode(devnode: string): boolean {
    try {
      const st = fs.statSync(this.hostPath(devnode));
      if (this.devRoot !== DEFAULT_DEV_ROOT) return true;
      return st.isBlockDevice() || st.isCharacterDevice();
    } catch {
      return false;
    }
  }
}

/** 'b7:0' → 'block/7:0', 'c10:232' → 'char/10:232'; other ids have no node. */
export function devnumLink(id: string): string | undefined {
  const m = /^([bc])(\d+):(\d+)$/.exec(id);
  if (m === null) return undefined;
  return `${m[1] === 'b' ? 'block' : 'char'}/${m[2]}:${m[3]}`;
}
