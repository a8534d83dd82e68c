// Writing udev's runtime state under /run/udev as systemd-udevd 252 does, so libudev clients and
// `udevadm info` see triggerd's devices: the database record data/<id>, the tag index
// tags/<tag>/<id>, and the symlink claim ("stack") directories links/<escaped link>/<id> that
// dev-links.ts arbitrates with. Never creates udevd's control socket.
//
// Formats checked against /work/shared/reference/udev (db-b7:0-attached.txt, links-loop0.txt,
// run-udev-layout.txt) and sd-device's device_update_db().
import fs = require('node:fs');
import path = require('node:path');
import { randomBytes } from 'node:crypto';
import type { RulesResult } from './rules/rules-result';
import type { Uevent } from './types';
import { parseUdevDbRecord, type UdevDbRecord } from './udev-db';
import { runDirFsFor, RunDirWrites, type RunDirFs } from './run-dir-writes';

export const DEFAULT_UDEV_RUN_DIR = '/run/udev';

/**
 * Properties the kernel or udevd itself owns (sd-device's device_property_can_set() refuses them):
 * never stored as `E:` lines, and never taken from the rules' result over the kernel's value.
 */
export const UDEV_READONLY_PROPERTIES: ReadonlySet<string> = new Set([
  'ACTION',
  'SEQNUM',
  'SYNTH_UUID',
  'DEVPATH',
  'DEVPATH_OLD',
  'SUBSYSTEM',
  'DEVTYPE',
  'DRIVER',
  'MODALIAS',
  'DEVNAME',
  'DEVMODE',
  'DEVUID',
  'DEVGID',
  'MAJOR',
  'MINOR',
  'DISKSEQ',
  'PARTN',
  'IFINDEX',
  'INTERFACE',
  'INTERFACE_OLD',
  'DEVLINKS',
  'TAGS',
  'CURRENT_TAGS',
  'USEC_INITIALIZED',
  'UDEV_DATABASE_VERSION',
]);

export function isReadonlyProperty(key: string): boolean {
  return UDEV_READONLY_PROPERTIES.has(key) || key.startsWith('SYNTH_ARG_');
}

/** udev(7): properties whose name starts with '.' are neither stored nor exported. */
export function isHiddenProperty(key: string): boolean {
  return key.startsWith('.');
}

export interface SplitProperties {
  /** The kernel's properties in the kernel's order, with values the rules changed. */
  kernel: [string, string][];
  /** What the rules added (not hidden, not read-only), in the rules' order. */
  added: [string, string][];
  /** What udevd keeps in the database (`E:`): changed kernel values and everything added. */
  db: [string, string][];
}

/**
 * Separates the kernel's properties from the ones the rules set. `result.properties` may hold the
 * whole set (kernel keys included: then a missing writable kernel key was unset by the rules) or
 * only what the rules added; either works.
 */
export function splitProperties(
  event: Pick<Uevent, 'properties'>,
  result: Pick<RulesResult, 'properties'>,
): SplitProperties {
  const full = result.properties.has('DEVPATH');
  const kernel: [string, string][] = [];
  const changed: [string, string][] = [];
  for (const [key, value] of event.properties) {
    if (isReadonlyProperty(key)) {
      kernel.push([key, value]);
      continue;
    }
    const ruled = result.properties.get(key);
    if (ruled === undefined) {
      if (!full) kernel.push([key, value]);
      continue;
    }
    kernel.push([key, ruled]);
    if (ruled !== value && !isHiddenProperty(key)) changed.push([key, ruled]);
  }
  const added: [string, string][] = [];
  for (const [key, value] of result.properties) {
    if (event.properties.has(key) || isHiddenProperty(key) || isReadonlyProperty(key)) continue;
    added.push([key, value]);
  }
  return { kernel, added, db: [...changed, ...added] };
}

/** Everything one `data/<id>` record holds. */
export interface UdevDbEntry {
  /** `b7:0`, `c10:232`, `n3`, `+subsystem:sysname` (udevDeviceId). */
  id: string;
  /** Has a device number (major > 0): only then are S:/L:/W: written, as udevd does. */
  hasDevnum: boolean;
  /** Has an interface index (network devices keep a record even without info). */
  hasIfindex: boolean;
  /** Paths relative to /dev, in order. */
  devlinks: readonly string[];
  linkPriority: number;
  /** inotify watch handle; udevd 252 keeps it in /run/udev/watch instead and writes no W:. */
  watchHandle?: number;
  /** CLOCK_MONOTONIC µs of the first event that initialized the device; 0/undefined: none. */
  usecInitialized?: bigint;
  /** `E:` lines, in order. */
  properties: readonly (readonly [string, string])[];
  /** All tags ever set (`G:`). */
  tags: Iterable<string>;
  /** Tags the last event set (`Q:`). */
  currentTags: Iterable<string>;
  /** OPTIONS+="db_persist": mode 01644 (kept across the initrd → root switch). */
  dbPersist?: boolean;
}

function hasInfo(entry: UdevDbEntry): boolean {
  return (
    entry.devlinks.length > 0 ||
    entry.linkPriority !== 0 ||
    entry.properties.length > 0 ||
    [...entry.tags].length > 0 ||
    [...entry.currentTags].length > 0
  );
}

/** The record's bytes, in device_update_db()'s order. Empty when the device has no info. */
export function formatUdevDbRecord(entry: UdevDbEntry): string {
  if (!hasInfo(entry)) return '';
  let out = '';
  if (entry.hasDevnum) {
    for (const link of entry.devlinks) out += `S:${link}\n`;
    if (entry.linkPriority !== 0) out += `L:${entry.linkPriority}\n`;
    if (entry.watchHandle !== undefined && entry.watchHandle >= 0) out += `W:${entry.watchHandle}\n`;
  }
  if (entry.usecInitialized !== undefined && entry.usecInitialized > 0n)
    out += `I:${entry.usecInitialized}\n`;
  for (const [key, value] of entry.properties) out += `E:${key}=${value}\n`;
  for (const tag of entry.tags) out += `G:${tag}\n`;
  for (const tag of entry.currentTags) out += `Q:${tag}\n`;
  out += 'V:1\n';
  return out;
}

/** CLOCK_MONOTONIC in µs, the clock udevd stamps USEC_INITIALIZED with (Node's hrtime is monotonic). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

export interface UdevDbEntryOptions {
  id: string;
  /** The previous record of this device, if any: USEC_INITIALIZED and all-tags carry over. */
  previous?: UdevDbRecord;
  /** Defaults to the previous record's, else now. */
  usecInitialized?: bigint;
  watchHandle?: number;
  /** splitProperties(event, result), when the caller has it already (it also rebroadcasts). */
  split?: SplitProperties;
}

/** The record udevd would write after running the rules on `event`. */
export function udevDbEntryFor(event: Uevent, result: RulesResult, opts: UdevDbEntryOptions): UdevDbEntry {
  const previousUsec = opts.previous?.usecInitialized;
  const usec =
    opts.usecInitialized ??
    (previousUsec !== undefined && /^[0-9]+$/.test(previousUsec) ? BigInt(previousUsec) : monotonicUsec());
  const tags = new Set<string>(opts.previous?.tags ?? []);
  for (const tag of result.tags) tags.add(tag);
  return {
    id: opts.id,
    hasDevnum: (event.major ?? 0) > 0,
    hasIfindex: event.properties.has('IFINDEX'),
    devlinks: result.devlinks,
    linkPriority: result.linkPriority,
    watchHandle: opts.watchHandle,
    usecInitialized: usec,
    properties: (opts.split ?? splitProperties(event, result)).db,
    tags,
    currentTags: result.tags,
    dbPersist: result.options.has('db_persist'),
  };
}

/** A device's claim on a /dev symlink name, as udevd 252 stores it (symlink `<id> -> "<prio>:<devnode>"`). */
export interface LinkClaim {
  id: string;
  priority: number;
  /** Absolute device node ('/dev/loop0'). */
  devnode: string;
}

export type UdevDbErrorCode = 'ERR_UDEV_DB_BAD_ID' | 'ERR_UDEV_DB_BAD_LINK' | 'ERR_UDEV_DB_WRITE';

export class UdevDbError extends Error {
  constructor(
    readonly code: UdevDbErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UdevDbError';
  }
}

const NAME_MAX = 255;
// UDEV_NODE_HASH_KEY of udev-node.c, for link names too long to escape into one file name.
const LINK_HASH_KEY = Buffer.from('b96af1ce4031441a9e19ec8baef3e32f', 'hex');
const URLSAFE_BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The claim directory name of a link (relative to /dev): '/' → `\x2f`, '\' → `\x5c`
 * (udev_node_escape_path). A name that would not fit NAME_MAX keeps its first 244 bytes and ends
 * in 11 characters of a SipHash-2-4 of the path, as udev does.
 */
export function escapeLinkName(link: string): string {
  const src = Buffer.from(link, 'utf8');
  const out: number[] = [];
  const limit = NAME_MAX + 1 - 12 + 1; // udev: j + n >= size - 12 + 1 is too long
  for (const byte of src) {
    const escaped = byte === 0x2f ? '\\x2f' : byte === 0x5c ? '\\x5c' : undefined;
    const add = escaped === undefined ? [byte] : [...Buffer.from(escaped, 'latin1')];
    if (out.length + add.length >= limit) return hashedLinkName(src, out);
    out.push(...add);
  }
  return Buffer.from(out).toString('utf8');
}

function hashedLinkName(src: Buffer, prefix: number[]): string {
  // udev leaves bytes between the escaped prefix and position 244 unset when an escape did not fit;
  // we pad with the escaped text's next bytes instead (only reachable with 241+ byte names).
  const dest = Buffer.alloc(NAME_MAX, 0x5f);
  Buffer.from(prefix.slice(0, NAME_MAX - 11)).copy(dest, 0);
  const h = siphash24(src, LINK_HASH_KEY);
  for (let k = 0; k <= 10; k++) {
    dest[NAME_MAX - k - 1] = URLSAFE_BASE64.charCodeAt(Number((h >> BigInt(k * 6)) & 63n));
  }
  return dest.toString('utf8'); // a multi-byte character cut at byte 244 cannot be kept exactly
}

const MASK64 = (1n << 64n) - 1n;
function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

/** SipHash-2-4 with a 16-byte key, 64-bit result. */
export function siphash24(data: Uint8Array, key: Uint8Array): bigint {
  const k = Buffer.from(key);
  const k0 = k.readBigUInt64LE(0);
  const k1 = k.readBigUInt64LE(8);
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const round = (): void => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const buf = Buffer.from(data);
  const whole = buf.length - (buf.length % 8);
  for (let i = 0; i < whole; i += 8) {
    const m = buf.readBigUInt64LE(i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  let last = BigInt(buf.length & 0xff) << 56n;
  for (let i = whole; i < buf.length; i++) last |= BigInt(buf[i] as number) << BigInt((i - whole) * 8);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK64;
}

export interface UdevDbWriterOptions {
  /** Default /run/udev. */
  root?: string;
  /** The fs calls of the write-behind (tests pass slow or failing ones). */
  fs?: RunDirFs;
}

/**
 * What one call's writes come to, once they have all run: the errors, empty when every write
 * succeeded. Never rejects, so a caller that does not wait cannot leave a rejection unhandled.
 */
export type RunDirWriteResult = Promise<Error[]>;

/** Nothing queued: shared, so callers can tell (and an unchanged event allocates no promises). */
export const NO_WRITES: RunDirWriteResult = Promise.resolve([]);

function checkId(id: string): void {
  if (
    id.length === 0 ||
    id.length > NAME_MAX ||
    id.includes('/') ||
    id === '.' ||
    id === '..' ||
    id.startsWith('.')
  ) {
    throw new UdevDbError('ERR_UDEV_DB_BAD_ID', `not a udev device id: ${JSON.stringify(id)}`);
  }
}

function isTag(tag: string): boolean {
  return tag.length > 0 && !tag.includes('/') && tag !== '.' && tag !== '..';
}

function checkTag(tag: string): void {
  if (!isTag(tag)) throw new UdevDbError('ERR_UDEV_DB_BAD_ID', `not a udev tag: ${JSON.stringify(tag)}`);
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

function tempName(dir: string, base: string): string {
  // udevd's fopen_temporary() names its temp files ".#<name><random>"; readers skip dot files.
  return path.join(dir, `.#${base}${randomBytes(6).toString('hex')}`);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** What data/<id> holds once the writes queued so far have run (or what was read there). */
interface KnownRecord {
  text: string;
  mode: number;
  record: UdevDbRecord | undefined;
  /** Its removal is queued: readers must not look at the file still on disk. */
  removed?: true;
}

/** One device's claim in a claim directory, as this writer knows it. */
export interface ClaimState {
  /** "<prio>:<devnode>"; undefined: being removed. */
  data: string | undefined;
  /** Queued and not written yet: the disk does not say this yet. */
  pending: boolean;
}

/** The `<prio>:<devnode>` text of a claim symlink, parsed; undefined for anything else. */
export function parseClaimData(id: string, data: string): LinkClaim | undefined {
  const colon = data.indexOf(':');
  if (colon <= 0) return undefined;
  const priority = Number(data.slice(0, colon));
  if (!Number.isInteger(priority)) return undefined;
  return { id, priority, devnode: data.slice(colon + 1) };
}

/**
 * The claims a directory holds once the queued writes have run: what is on disk, with the pending
 * writes laid over it (a pending claim added or replaced, a pending removal dropped). Sorted by id.
 */
export function overlayClaims(
  onDisk: readonly LinkClaim[],
  states: ReadonlyMap<string, ClaimState> | undefined,
): LinkClaim[] {
  if (states === undefined) return [...onDisk];
  const byId = new Map(onDisk.map((c) => [c.id, c]));
  for (const [id, state] of states) {
    if (!state.pending) continue;
    const claim = state.data === undefined ? undefined : parseClaimData(id, state.data);
    if (claim === undefined) byId.delete(id);
    else byId.set(id, claim);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Whether a claim directory may be empty: no claim known in it, written or queued. */
export function claimDirMayBeEmpty(states: ReadonlyMap<string, ClaimState> | undefined): boolean {
  if (states === undefined) return true;
  for (const state of states.values()) if (state.data !== undefined) return false;
  return true;
}

/**
 * The /run/udev side of the device database. All state lives on disk, so a restart loses nothing;
 * what this process wrote is also remembered, because a trigger storm rewrites the same records
 * and claims over and over (/run/udev is udevd's private state: nobody else edits it under us).
 *
 * Writes are write-behind (RunDirWrites): the in-memory knowledge says what the disk will hold once
 * the queued writes have run, so decisions made meanwhile see them. A write that fails drops the
 * knowledge of its path, so the next event looks at the disk again and retries.
 */
export class UdevDbWriter {
  readonly root: string;
  private readonly fs: RunDirFs;
  private readonly writes = new RunDirWrites();
  private readonly known = new Map<string, KnownRecord>();
  /** tag → ids whose tags/<tag>/<id> exists or is queued. */
  private readonly tagged = new Map<string, Set<string>>();
  /** claim dir → id → its claim, written or queued. */
  private readonly claims = new Map<string, Map<string, ClaimState>>();
  private readonly linkDirs = new Map<string, string>();
  /** Directories this writer made or saw exist, so a write into one costs no mkdir. */
  private readonly madeDirs = new Set<string>();

  constructor(opts: UdevDbWriterOptions = {}) {
    this.root = opts.root ?? DEFAULT_UDEV_RUN_DIR;
    this.fs = opts.fs ?? runDirFsFor(this.root);
  }

  dataPath(id: string): string {
    return path.join(this.root, 'data', id);
  }

  /** Writes queued and not finished yet. */
  get pendingWrites(): number {
    return this.writes.pending;
  }

  /** Settles once every write queued so far has run. */
  idle(): Promise<void> {
    return this.writes.idle();
  }

  readRecord(id: string): UdevDbRecord | undefined {
    checkId(id);
    const known = this.known.get(id);
    if (known !== undefined) return known.record;
    try {
      const file = this.dataPath(id);
      const text = fs.readFileSync(file, 'utf8');
      const record = parseUdevDbRecord(text);
      this.known.set(id, { text, mode: fs.statSync(file).mode & 0o7777, record });
      return record;
    } catch {
      return undefined;
    }
  }

  /** The record on disk (or queued) already says exactly this, with the same mode. */
  private unchanged(entry: UdevDbEntry, text: string): boolean {
    const mode = entry.dbPersist === true ? 0o1644 : 0o644;
    const known = this.known.get(entry.id);
    if (known !== undefined) return known.removed !== true && known.mode === mode && known.text === text;
    try {
      const file = this.dataPath(entry.id);
      return (fs.statSync(file).mode & 0o7777) === mode && fs.readFileSync(file, 'utf8') === text;
    } catch {
      return false;
    }
  }

  /**
   * Queues data/<id> (temp file + rename, mode 0644) and brings the tag index in line: a tag file
   * for every tag, stale ones (in the previous record, not in this one) removed. readRecord()
   * returns the new record at once.
   */
  writeDevice(entry: UdevDbEntry): RunDirWriteResult {
    checkId(entry.id);
    const previous = this.readRecord(entry.id);
    const tags = [...entry.tags];
    tags.forEach(checkTag);
    const writes: RunDirWriteResult[] = [];
    if (previous !== undefined) {
      for (const tag of previous.tags) if (!tags.includes(tag)) writes.push(this.untag(tag, entry.id));
    }
    const text = formatUdevDbRecord(entry);
    if (text === '' && !entry.hasDevnum && !entry.hasIfindex) {
      // Nothing worth keeping (udevd unlinks the record of such a device).
      writes.push(this.removeRecord(entry.id));
    } else if (this.unchanged(entry, text)) {
      // A change event that decides the same as before (a storm of triggers): no write, no rename.
    } else {
      writes.push(this.writeRecord(entry.id, text, entry.dbPersist === true ? 0o1644 : 0o644));
    }
    for (const tag of tags) writes.push(this.tag(tag, entry.id));
    return allErrors(writes);
  }

  /** On `remove`: the record and every tag file of the device (tags read from the record when not given). */
  removeDeviceDb(id: string, tags?: Iterable<string>): RunDirWriteResult {
    checkId(id);
    const all = new Set<string>(tags ?? []);
    for (const tag of this.readRecord(id)?.tags ?? []) all.add(tag);
    const writes = [...all].map((tag) => this.untag(tag, id));
    writes.push(this.removeRecord(id));
    return allErrors(writes);
  }

  private writeRecord(id: string, text: string, mode: number): RunDirWriteResult {
    const dir = path.join(this.root, 'data');
    const file = this.dataPath(id);
    const known: KnownRecord = { text, mode, record: parseUdevDbRecord(text) };
    this.known.set(id, known);
    const write = this.writes.entry(dir, file, async () => {
      await this.ensureDir(dir);
      const tmp = tempName(dir, id);
      try {
        await this.fs.createFile(tmp, text, mode);
        await this.fs.rename(tmp, file);
      } catch (err) {
        await this.unlinkQuiet(tmp).catch(() => undefined);
        throw err;
      }
    });
    return outcome(write, {
      onError: (err) => {
        this.madeDirs.delete(dir);
        if (this.known.get(id) === known) this.known.delete(id);
        return new UdevDbError('ERR_UDEV_DB_WRITE', `cannot write ${file}: ${String(err)}`);
      },
    });
  }

  private removeRecord(id: string): RunDirWriteResult {
    const removed: KnownRecord = { text: '', mode: 0, record: undefined, removed: true };
    this.known.set(id, removed);
    const file = this.dataPath(id);
    const write = this.writes.entry(path.join(this.root, 'data'), file, () => this.unlinkQuiet(file));
    // Done or failed, the disk is what to read next (unless a newer write is queued).
    const forget = (): void => {
      if (this.known.get(id) === removed) this.known.delete(id);
    };
    return outcome(write, { onDone: forget, onError: (err) => (forget(), asError(err)) });
  }

  private tag(tag: string, id: string): RunDirWriteResult {
    let ids = this.tagged.get(tag);
    if (ids?.has(id) === true) return NO_WRITES;
    if (ids === undefined) this.tagged.set(tag, (ids = new Set()));
    ids.add(id);
    const dir = path.join(this.root, 'tags', tag);
    const file = path.join(dir, id);
    const write = this.writes.entry(dir, file, async () => {
      await this.ensureDir(dir);
      try {
        await this.fs.createFile(file, '', 0o444);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    });
    return outcome(write, {
      onError: (err) => {
        this.madeDirs.delete(dir);
        this.tagged.get(tag)?.delete(id);
        return asError(err);
      },
    });
  }

  private untag(tag: string, id: string): RunDirWriteResult {
    if (!isTag(tag)) return NO_WRITES;
    const ids = this.tagged.get(tag);
    ids?.delete(id);
    const dir = path.join(this.root, 'tags', tag);
    const file = path.join(dir, id);
    const writes = [outcome(this.writes.entry(dir, file, () => this.unlinkQuiet(file)))];
    // Another device's tag file is known to be there: rmdir would fail anyway.
    if (ids === undefined || ids.size === 0) {
      this.tagged.delete(tag);
      writes.push(outcome(this.writes.dir(dir, () => this.rmdirQuiet(dir))));
    }
    return allErrors(writes);
  }

  linkDir(link: string): string {
    const known = this.linkDirs.get(link);
    if (known !== undefined) return known;
    const dir = path.join(this.root, 'links', escapeLinkName(normalizeLink(link)));
    // The same few names come back with every event of a device (a full map starts over).
    if (this.linkDirs.size >= 4096) this.linkDirs.clear();
    this.linkDirs.set(link, dir);
    return dir;
  }

  /** This exact claim is on disk, or queued to be. */
  hasLinkClaim(link: string, claim: LinkClaim): boolean {
    const data = `${claim.priority}:${claim.devnode}`;
    const dir = this.linkDir(link);
    const state = this.claims.get(dir)?.get(claim.id);
    if (state !== undefined) return state.data === data;
    try {
      if (fs.readlinkSync(path.join(dir, claim.id)) !== data) return false;
    } catch {
      return false;
    }
    this.setClaim(dir, claim.id, { data, pending: false });
    return true;
  }

  /**
   * Queues `id`'s claim on `link` (relative to /dev): a symlink to "<prio>:<devnode>". The next
   * readLinkClaims() includes it.
   */
  writeLinkClaim(link: string, claim: LinkClaim): RunDirWriteResult {
    checkId(claim.id);
    if (this.hasLinkClaim(link, claim)) return NO_WRITES;
    const dir = this.linkDir(link);
    const data = `${claim.priority}:${claim.devnode}`;
    const file = path.join(dir, claim.id);
    const state: ClaimState = { data, pending: true };
    this.setClaim(dir, claim.id, state);
    const write = this.writes.entry(dir, file, async () => {
      await this.ensureDir(dir);
      try {
        // A new claim (the common case) needs one symlink; udevd makes it in place too.
        await this.fs.symlink(data, file);
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      // Replacing one: never a moment without it.
      const tmp = tempName(dir, claim.id);
      await this.fs.symlink(data, tmp);
      try {
        await this.fs.rename(tmp, file);
      } catch (err) {
        await this.unlinkQuiet(tmp).catch(() => undefined);
        throw err;
      }
    });
    return outcome(write, {
      onDone: () => {
        if (this.claims.get(dir)?.get(claim.id) === state) state.pending = false;
      },
      onError: (err) => {
        this.madeDirs.delete(dir);
        if (this.claims.get(dir)?.get(claim.id) === state) this.dropClaim(dir, claim.id);
        return asError(err);
      },
    });
  }

  /** Queues the removal of `id`'s claim; the directory goes once no claim is left. */
  removeLinkClaim(link: string, id: string): RunDirWriteResult {
    checkId(id);
    const dir = this.linkDir(link);
    const file = path.join(dir, id);
    const state: ClaimState = { data: undefined, pending: true };
    this.setClaim(dir, id, state);
    // Done or failed, the disk is what to read next (unless a newer write is queued).
    const forget = (): void => {
      if (this.claims.get(dir)?.get(id) === state) this.dropClaim(dir, id);
    };
    const writes = [
      outcome(
        this.writes.entry(dir, file, () => this.unlinkQuiet(file)),
        { onDone: forget, onError: (err) => (forget(), asError(err)) },
      ),
    ];
    if (claimDirMayBeEmpty(this.claims.get(dir))) {
      writes.push(outcome(this.writes.dir(dir, () => this.removeLinkDirIfUnclaimed(dir))));
    }
    return allErrors(writes);
  }

  /**
   * Every claim on `link`, sorted by id (udevd reads them in readdir order), queued ones included
   * and ones being removed left out. Unreadable entries are skipped.
   */
  readLinkClaims(link: string): LinkClaim[] {
    const dir = this.linkDir(link);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      names = [];
    }
    const onDisk: LinkClaim[] = [];
    for (const id of names) {
      if (id.startsWith('.')) continue; // .lock, temp files
      let data: string;
      try {
        data = fs.readlinkSync(path.join(dir, id));
      } catch {
        continue; // the pre-v250 format (an empty file) needs the device's db; not supported
      }
      const claim = parseClaimData(id, data);
      if (claim !== undefined) onDisk.push(claim);
    }
    return overlayClaims(onDisk, this.claims.get(dir));
  }

  private setClaim(dir: string, id: string, state: ClaimState): void {
    let states = this.claims.get(dir);
    if (states === undefined) this.claims.set(dir, (states = new Map()));
    states.set(id, state);
  }

  private dropClaim(dir: string, id: string): void {
    const states = this.claims.get(dir);
    states?.delete(id);
    if (states?.size === 0) this.claims.delete(dir);
  }

  /** Runs with nothing else in flight in `dir` (RunDirWrites.dir), so the listing is the truth. */
  private async removeLinkDirIfUnclaimed(dir: string): Promise<void> {
    try {
      await this.fs.rmdir(dir);
      this.madeDirs.delete(dir);
      return;
    } catch (err) {
      if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) return; // gone already
    }
    let names: string[];
    try {
      names = await this.fs.readdir(dir);
    } catch {
      return;
    }
    if (names.some((n) => !n.startsWith('.')) || !names.includes('.lock')) return;
    // udevd 252's own empty .lock may be there; nothing holds it while we run (never beside udevd).
    await this.unlinkQuiet(path.join(dir, '.lock'));
    await this.rmdirQuiet(dir);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await this.fs.mkdir(dir);
    // One per claim directory ever seen: a full set starts over (a miss costs one mkdir).
    if (this.madeDirs.size >= 4096) this.madeDirs.clear();
    this.madeDirs.add(dir);
  }

  private async unlinkQuiet(file: string): Promise<void> {
    try {
      await this.fs.unlink(file);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  private async rmdirQuiet(dir: string): Promise<void> {
    try {
      await this.fs.rmdir(dir);
      this.madeDirs.delete(dir);
    } catch {
      // not empty or gone
    }
  }
}

/** One write's result: its error (after `onError` dropped the knowledge it invalidates) or none. */
function outcome(
  write: Promise<void>,
  handlers: { onDone?: () => void; onError?: (err: unknown) => Error } = {},
): RunDirWriteResult {
  return write.then(
    () => {
      handlers.onDone?.();
      return [];
    },
    (err: unknown) => [handlers.onError === undefined ? asError(err) : handlers.onError(err)],
  );
}

function allErrors(writes: readonly RunDirWriteResult[]): RunDirWriteResult {
  const queued = writes.filter((w) => w !== NO_WRITES);
  if (queued.length === 0) return NO_WRITES;
  if (queued.length === 1) return queued[0] as RunDirWriteResult;
  return Promise.all(queued).then((lists) => lists.flat());
}

const DOT_COMPONENT = /(^|\/)\.\.?(\/|$)/;

/** A link relative to /dev, normalized; '/dev/x' is accepted too. Throws for '..' or empty names. */
export function normalizeLink(link: string): string {
  // Links from the rules are normalized already: nothing to split and join again.
  if (
    link !== '' &&
    link.charCodeAt(0) !== 0x2f &&
    !link.endsWith('/') &&
    !link.includes('//') &&
    !DOT_COMPONENT.test(link)
  )
    return link;
  let rel = link.startsWith('/dev/') ? link.slice(5) : link;
  rel = rel
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
  if (rel === '' || rel.split('/').includes('..') || (link.startsWith('/') && !link.startsWith('/dev/'))) {
    throw new UdevDbError('ERR_UDEV_DB_BAD_LINK', `not a link below /dev: ${JSON.stringify(link)}`);
  }
  return rel;
}
