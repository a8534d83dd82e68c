// libudev's netlink wire format (group 2): a 40-byte monitor header, then NUL-separated
// KEY=VALUE properties. The header carries hashes that libudev clients use to filter in the
// kernel with BPF, so they must match libudev's own: MurmurHash2 of subsystem and devtype, and a
// 64-bit bloom filter of the tags. Used to rebroadcast processed events, and by tests to act as udevd.

export const LIBUDEV_PREFIX = 'libudev\0';
export const LIBUDEV_MAGIC = 0xfeedcafe;
const HEADER_BYTES = 40;

/** MurmurHash2, 32-bit, seed 0, over the UTF-8 bytes: libudev's string hash. */
export function murmurHash2(text: string): number {
  // Every event hashes the same few subsystems, devtypes and tags again.
  let h = hashCache.get(text);
  if (h === undefined) {
    h = computeMurmurHash2(text);
    if (hashCache.size >= 1024) hashCache.clear();
    hashCache.set(text, h);
  }
  return h;
}

const hashCache = new Map<string, number>();

function computeMurmurHash2(text: string): number {
  const data = Buffer.from(text, 'utf8');
  const m = 0x5bd1e995;
  let len = data.length;
  let h = (0 ^ len) >>> 0;
  let i = 0;
  while (len >= 4) {
    let k = data.readUInt32LE(i);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
    i += 4;
    len -= 4;
  }
  // The tail bytes, highest first (MurmurHash2's fall-through switch).
  if (len >= 3) h ^= (data[i + 2] as number) << 16;
  if (len >= 2) h ^= (data[i + 1] as number) << 8;
  if (len >= 1) h = Math.imul(h ^ (data[i] as number), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

/** libudev's tag bloom filter: four bits per tag, from 6-bit slices of its hash. */
export function tagBloom64(tags: Iterable<string>): bigint {
  let bits = 0n;
  for (const tag of tags) {
    const h = murmurHash2(tag);
    for (const shift of [0, 6, 12, 18]) bits |= 1n << BigInt((h >>> shift) & 63);
  }
  return bits;
}

export interface LibudevMessageInput {
  subsystem: string;
  devtype?: string;
  tags: Iterable<string>;
  /** All properties in order, ACTION, DEVPATH, SUBSYSTEM, SEQNUM… included. */
  properties: Iterable<readonly [string, string]>;
}

export function encodeLibudevMessage(input: LibudevMessageInput): Buffer {
  let body = '';
  for (const [k, v] of input.properties) body += `${k}=${v}\0`;
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  const message = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes);
  message.write(body, HEADER_BYTES, 'utf8');
  const header = message.subarray(0, HEADER_BYTES);
  header.fill(0);
  header.write(LIBUDEV_PREFIX, 0, 'latin1');
  header.writeUInt32BE(LIBUDEV_MAGIC, 8);
  header.writeUInt32LE(HEADER_BYTES, 12);
  header.writeUInt32LE(HEADER_BYTES, 16);
  header.writeUInt32LE(bodyBytes, 20);
  header.writeUInt32BE(murmurHash2(input.subsystem), 24);
  header.writeUInt32BE(input.devtype === undefined ? 0 : murmurHash2(input.devtype), 28);
  const bloom = tagBloom64(input.tags);
  header.writeUInt32BE(Number(bloom >> 32n), 32);
  header.writeUInt32BE(Number(bloom & 0xffffffffn), 36);
  return message;
}
