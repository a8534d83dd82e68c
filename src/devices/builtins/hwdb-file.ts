// systemd's compiled hardware database (hwdb.bin, signature "KSLPHHRH"), read in place: the
// 13 MB file is never loaded into the heap. A `ByteSource` hands out the few bytes each step
// needs (a page cache over pread for the real file, a Buffer in tests), and `HwdbTrie` walks the
// trie over it. Every offset is checked before use and every walk has a bound, so a corrupt or
// hostile file gives an error naming it, not a crash or an endless loop.
//
// Layout (all integers little-endian): a header (signature, tool version, file size, header size,
// node size, child entry size, value entry size, root node offset, nodes length, strings length:
// u64 each after the signature); nodes (prefix string offset u64, children count u8, 7 padding
// bytes, values count u64), each followed by its child entries (char u8, 7 padding, node offset
// u64) sorted by char and its value entries (key offset, value offset, and in newer files also
// filename offset u64, line number u32, file priority u16); NUL-terminated strings. Offsets are
// from the start of the file. The sizes in the header let newer files grow the records.
import fs = require('node:fs');
import { couldMatchWithPrefix, fnmatch } from './hwdb-glob';

export const HWDB_SIGNATURE = 'KSLPHHRH';
/** The database file exists but cannot be used: bad signature, offsets out of range, I/O error. */
export const ERR_HWDB_CORRUPT = 'ERR_HWDB_CORRUPT';

const HEADER_SIZE = 80;
const NODE_SIZE = 24;
const CHILD_SIZE = 16;
const VALUE_SIZE = 16;
/** Value entries this long carry filename, line number and file priority. */
const VALUE2_SIZE = 32;
/** systemd builds glob patterns in a LINE_MAX buffer; a longer one means a broken trie. */
const MAX_PATTERN = 2048;
/** Keys and values are short text; this only bounds the search for a missing NUL. */
const MAX_STRING = 64 * 1024;
/** Strings are read in aligned steps of this many bytes (a divisor of any sane page size). */
const STRING_STEP = 256;

/** Random access to a database file's bytes. */
export interface ByteSource {
  readonly size: number;
  /**
   * Makes `length` bytes at `offset` (inside the file: the caller checks) readable in `buffer`
   * and returns their position there. Valid until the next call.
   */
  at(offset: number, length: number): number;
  readonly buffer: Buffer;
}

/** A Buffer as a ByteSource (tests, and small files). */
export class BufferSource implements ByteSource {
  constructor(readonly buffer: Buffer) {}
  get size(): number {
    return this.buffer.length;
  }
  at(offset: number): number {
    return offset;
  }
}

export interface PageCacheOptions {
  /** Bytes per cached page; a power of two. */
  pageSize?: number;
  /** Pages kept; the cache never holds more than pageSize * pages bytes. */
  pages?: number;
}

/**
 * An open file read through a small page cache with pread (fs.readSync at a position). A page
 * buffer is allocated the first time its slot is used, so the cache costs memory only as it
 * fills. Pages are evicted with the clock algorithm: one reference bit per slot, no allocation
 * per access.
 */
export class PagedFile implements ByteSource {
  buffer: Buffer;
  private readonly pageSize: number;
  private readonly slots: Buffer[] = [];
  private readonly pageInSlot: Float64Array;
  private readonly referenced: Uint8Array;
  private readonly slotOfPage = new Map<number, number>();
  private scratch = Buffer.alloc(0);
  private hand = 0;
  /** Page reads from the file, for measurements. */
  reads = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    options: PageCacheOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 4096;
    const pages = Math.max(2, options.pages ?? 64);
    this.pageInSlot = new Float64Array(pages).fill(-1);
    this.referenced = new Uint8Array(pages);
    this.buffer = this.scratch;
  }

  at(offset: number, length: number): number {
    const page = Math.floor(offset / this.pageSize);
    const within = offset - page * this.pageSize;
    if (within + length <= this.pageSize) {
      this.buffer = this.slots[this.slotFor(page)]!;
      return within;
    }
    // A record across a page boundary: copy it together.
    if (this.scratch.length < length) this.scratch = Buffer.alloc(Math.max(length, 256));
    let done = 0;
    while (done < length) {
      const here = offset + done;
      const p = Math.floor(here / this.pageSize);
      const from = here - p * this.pageSize;
      const n = Math.min(length - done, this.pageSize - from);
      this.slots[this.slotFor(p)]!.copy(this.scratch, done, from, from + n);
      done += n;
    }
    this.buffer = this.scratch;
    return 0;
  }

  private slotFor(page: number): number {
    const cached = this.slotOfPage.get(page);
    if (cached !== undefined) {
      this.referenced[cached] = 1;
      return cached;
    }
    const count = this.referenced.length;
    while (this.referenced[this.hand] === 1) {
      this.referenced[this.hand] = 0;
      this.hand = (this.hand + 1) % count;
    }
    const slot = this.hand;
    this.hand = (this.hand + 1) % count;
    const old = this.pageInSlot[slot]!;
    if (old >= 0) this.slotOfPage.delete(old);
    this.pageInSlot[slot] = -1;
    const into = (this.slots[slot] ??= Buffer.allocUnsafeSlow(this.pageSize));
    const start = page * this.pageSize;
    const want = Math.min(this.pageSize, this.size - start);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(this.fd, into, got, want - got, start + got);
      if (n === 0)
        throw new HwdbCorruptError(`file ends at ${start + got}, before its stated size ${this.size}`);
      got += n;
    }
    this.reads++;
    this.pageInSlot[slot] = page;
    this.slotOfPage.set(page, slot);
    this.referenced[slot] = 1;
    return slot;
  }
}

/** Thrown inside the trie walk only; `HwdbTrie` turns it into a returned error. */
class HwdbCorruptError extends Error {}

export interface HwdbError {
  ok: false;
  code: string;
  message: string;
}

export interface HwdbHeader {
  toolVersion: number;
  fileSize: number;
  headerSize: number;
  nodeSize: number;
  childEntrySize: number;
  valueEntrySize: number;
  rootOffset: number;
  nodesLength: number;
  stringsLength: number;
}

interface TrieNode {
  offset: number;
  prefixOffset: number;
  childCount: number;
  valueCount: number;
}

/** A property found so far, with what decides between two entries that set the same key. */
interface Found {
  value: string;
  priority: number;
  line: number;
}

function isGlobChar(c: number): boolean {
  return c === 0x2a || c === 0x3f || c === 0x5b; // '*', '?', '['
}

const GLOB_CHILDREN = [0x2a, 0x3f, 0x5b];

/** A u64 as a Number; anything past 2^53 is out of range for a file anyway. */
function readU64(buffer: Buffer, at: number): number {
  return buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * 0x1_0000_0000;
}

/** The header of a database of `size` bytes, or what is wrong with it. */
export function parseHwdbHeader(source: ByteSource): HwdbHeader | string {
  if (source.size < HEADER_SIZE) return `too short for a header (${source.size} bytes)`;
  const at = source.at(0, HEADER_SIZE);
  const b = source.buffer;
  if (b.toString('latin1', at, at + 8) !== HWDB_SIGNATURE) return `no ${HWDB_SIGNATURE} signature`;
  const field = (i: number): number => readU64(b, at + 8 + i * 8);
  const header: HwdbHeader = {
    toolVersion: field(0),
    fileSize: field(1),
    headerSize: field(2),
    nodeSize: field(3),
    childEntrySize: field(4),
    valueEntrySize: field(5),
    rootOffset: field(6),
    nodesLength: field(7),
    stringsLength: field(8),
  };
  if (header.fileSize !== source.size)
    return `header says ${header.fileSize} bytes, the file has ${source.size} (truncated or still being written?)`;
  if (header.headerSize < HEADER_SIZE || header.headerSize > source.size)
    return `bad header size ${header.headerSize}`;
  if (header.nodeSize < NODE_SIZE || header.childEntrySize < CHILD_SIZE || header.valueEntrySize < VALUE_SIZE)
    return `record sizes ${header.nodeSize}/${header.childEntrySize}/${header.valueEntrySize} are too small`;
  // Bounded so that record arithmetic stays exact.
  if (Math.max(header.nodeSize, header.childEntrySize, header.valueEntrySize) > 4096)
    return `record sizes ${header.nodeSize}/${header.childEntrySize}/${header.valueEntrySize} are implausible`;
  return header;
}

/**
 * A hwdb trie over a byte source. `lookup` is udev's sd_hwdb_seek: walk the trie along the
 * modalias; below a node whose child or prefix is a glob character, match every pattern of that
 * subtree with fnmatch. A key set by several matching entries takes the value of the entry from
 * the file of higher priority, then the later line (newer files); older files without that
 * information let the entry found last win.
 */
export class HwdbTrie {
  private budget = 0;

  private constructor(
    private readonly source: ByteSource,
    readonly name: string,
    readonly header: HwdbHeader,
    private readonly maxVisits: number,
  ) {}

  /** Checks the header and the root node. `name` (the file) appears in every error message. */
  static open(source: ByteSource, name: string): HwdbTrie | HwdbError {
    try {
      const header = parseHwdbHeader(source);
      if (typeof header === 'string') return corrupt(name, header);
      // A tree with N nodes visits each at most twice per lookup (once walking the modalias,
      // once enumerating a glob subtree); more means shared or cyclic children.
      const nodes = Math.floor((source.size - header.headerSize) / header.nodeSize) + 1;
      const trie = new HwdbTrie(source, name, header, 2 * nodes + 16);
      trie.budget = 1;
      trie.node(header.rootOffset);
      return trie;
    } catch (e: unknown) {
      return failure(name, e);
    }
  }

  /** The properties for `modalias` in the order udev would add them (empty map: no match). */
  lookup(modalias: string): Map<string, string> | HwdbError {
    // The C string ends at the first NUL; matching is on bytes.
    const nul = modalias.indexOf('\0');
    const search = Buffer.from(nul < 0 ? modalias : modalias.slice(0, nul), 'utf8').toString('latin1');
    const found = new Map<string, Found>();
    this.budget = this.maxVisits;
    try {
      this.search(search, found);
    } catch (e: unknown) {
      return failure(this.name, e);
    }
    const props = new Map<string, string>();
    for (const [key, entry] of found) props.set(key, entry.value);
    return props;
  }

  private search(search: string, found: Map<string, Found>): void {
    let node = this.node(this.header.rootOffset);
    let i = 0;
    for (;;) {
      const prefix = this.prefixOf(node);
      for (let p = 0; p < prefix.length; p++) {
        const c = prefix.charCodeAt(p);
        if (isGlobChar(c)) {
          this.enumerate(node, '', p, search.slice(i + p), found);
          return;
        }
        if (c !== search.charCodeAt(i + p)) return;
      }
      i += prefix.length;
      for (const glob of GLOB_CHILDREN) {
        const child = this.child(node, glob);
        if (child !== undefined) this.enumerate(child, String.fromCharCode(glob), 0, search.slice(i), found);
      }
      if (i === search.length) {
        this.addValues(node, found);
        return;
      }
      const next = this.child(node, search.charCodeAt(i));
      if (next === undefined) return;
      node = next;
      i++;
    }
  }

  /** Every pattern in the subtree at `node` (its prefix from `skip` on, after `pattern`). */
  private enumerate(
    node: TrieNode,
    pattern: string,
    skip: number,
    text: string,
    found: Map<string, Found>,
  ): void {
    const own = pattern + this.prefixOf(node).slice(skip);
    if (own.length >= MAX_PATTERN)
      throw new HwdbCorruptError(`pattern longer than ${MAX_PATTERN} bytes below node ${node.offset}`);
    // systemd matches every pattern of the subtree; skipping those that cannot match gives the
    // same result in a fraction of the time.
    if (!couldMatchWithPrefix(own, text)) return;
    for (let k = 0; k < node.childCount; k++) {
      const at = this.source.at(this.childEntry(node, k), CHILD_SIZE);
      const c = this.source.buffer[at]!;
      const offset = readU64(this.source.buffer, at + 8);
      this.enumerate(this.node(offset), own + String.fromCharCode(c), 0, text, found);
    }
    if (node.valueCount > 0 && fnmatch(own, text)) this.addValues(node, found);
  }

  private addValues(node: TrieNode, found: Map<string, Found>): void {
    const { valueEntrySize } = this.header;
    const base = this.childEntry(node, node.childCount);
    for (let k = 0; k < node.valueCount; k++) {
      const entry = base + k * valueEntrySize;
      const at = this.source.at(entry, valueEntrySize);
      const b = this.source.buffer;
      const keyOffset = readU64(b, at);
      const valueOffset = readU64(b, at + 8);
      const line = valueEntrySize >= VALUE2_SIZE ? b.readUInt32LE(at + 24) : 0;
      const priority = valueEntrySize >= VALUE2_SIZE ? b.readUInt16LE(at + 28) : 0;
      const key = this.text(keyOffset, 'utf8');
      // Keys start with a space; other prefixes are reserved for future use and skipped.
      if (key[0] !== ' ') continue;
      const name = key.slice(1);
      const old = found.get(name);
      if (
        old !== undefined &&
        valueEntrySize >= VALUE2_SIZE &&
        (old.priority > priority || (old.priority === priority && old.line > line))
      )
        continue;
      found.set(name, { value: this.text(valueOffset, 'utf8'), priority, line });
    }
  }

  /** The node at `offset`, checked to lie with all its entries inside the file. */
  private node(offset: number): TrieNode {
    if (--this.budget < 0) throw new HwdbCorruptError('the trie has shared or cyclic nodes');
    const { headerSize, nodeSize, childEntrySize, valueEntrySize } = this.header;
    const size = this.source.size;
    if (offset < headerSize || offset + nodeSize > size)
      throw new HwdbCorruptError(`node offset ${offset} out of range`);
    const at = this.source.at(offset, NODE_SIZE);
    const b = this.source.buffer;
    const node: TrieNode = {
      offset,
      prefixOffset: readU64(b, at),
      childCount: b[at + 8]!,
      valueCount: readU64(b, at + 16),
    };
    const end = offset + nodeSize + node.childCount * childEntrySize + node.valueCount * valueEntrySize;
    if (end > size) throw new HwdbCorruptError(`node at ${offset} has entries past the end of the file`);
    return node;
  }

  private childEntry(node: TrieNode, k: number): number {
    return node.offset + this.header.nodeSize + k * this.header.childEntrySize;
  }

  /** The child for byte `c`: a binary search, the entries being sorted by their byte. */
  private child(node: TrieNode, c: number): TrieNode | undefined {
    let lo = 0;
    let hi = node.childCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.source.at(this.childEntry(node, mid), CHILD_SIZE);
      const here = this.source.buffer[at]!;
      if (here === c) return this.node(readU64(this.source.buffer, at + 8));
      if (here < c) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  private prefixOf(node: TrieNode): string {
    // Offset 0 is the header: systemd reads it as "no prefix".
    return node.prefixOffset === 0 ? '' : this.text(node.prefixOffset, 'latin1');
  }

  /** The NUL-terminated string at `offset`, without the NUL, decoded as `encoding`. */
  private text(offset: number, encoding: 'latin1' | 'utf8'): string {
    const size = this.source.size;
    if (offset < this.header.headerSize || offset >= size)
      throw new HwdbCorruptError(`string offset ${offset} out of range`);
    const chunks: Buffer[] = [];
    let length = 0;
    for (let here = offset; ;) {
      // Aligned steps of STRING_STEP bytes: a step never straddles a page of the cache.
      const n = Math.min(size - here, STRING_STEP - (here % STRING_STEP));
      const at = this.source.at(here, n);
      const piece = this.source.buffer.subarray(at, at + n);
      const nul = piece.indexOf(0);
      if (nul >= 0 && chunks.length === 0) return piece.toString(encoding, 0, nul);
      chunks.push(Buffer.from(nul >= 0 ? piece.subarray(0, nul) : piece));
      length += nul >= 0 ? nul : n;
      if (nul >= 0) return Buffer.concat(chunks, length).toString(encoding);
      here += n;
      if (here >= size || length > MAX_STRING)
        throw new HwdbCorruptError(`string at ${offset} is not terminated`);
    }
  }
}

function corrupt(name: string, what: string): HwdbError {
  return { ok: false, code: ERR_HWDB_CORRUPT, message: `hwdb: ${name}: ${what}` };
}

function failure(name: string, e: unknown): HwdbError {
  if (e instanceof HwdbCorruptError) return corrupt(name, e.message);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return corrupt(name, code !== undefined ? `read failed: ${message}` : `unexpected error: ${message}`);
}

/** An open database file: the trie and the descriptor behind it. */
export interface OpenHwdb {
  trie: HwdbTrie;
  close(): void;
}

/** Opens `file` (libuv sets O_CLOEXEC) and checks its header; the effects stay here and in PagedFile. */
export function openHwdbFile(file: string, cache: PageCacheOptions = {}): OpenHwdb | HwdbError {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY);
  } catch (e: unknown) {
    return corrupt(file, `cannot open: ${e instanceof Error ? e.message : String(e)}`);
  }
  const close = (): void => {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed.
    }
  };
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (e: unknown) {
    close();
    return failure(file, e);
  }
  const trie = HwdbTrie.open(new PagedFile(fd, size, cache), file);
  if (!(trie instanceof HwdbTrie)) {
    close();
    return trie;
  }
  return { trie, close };
}
