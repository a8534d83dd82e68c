// autofs v5 packets (struct autofs_v5_packet, <linux/auto_fs.h>), parsed from the raw bytes the
// native layer reads off the packet pipe. Layout (x86-64 and every other ABI; 304 bytes with the
// padding of 64-bit ABIs, 300 of data): proto_version i32 @0, type i32 @4, wait_queue_token u32
// @8, dev u32 @12, ino u64 @16, uid u32 @24, gid u32 @28, pid u32 @32, tgid u32 @36, len u32 @40,
// name[256] @44. Host byte order (the kernel writes them; little-endian on every platform we
// build for). Never throws: garbled input becomes an 'invalid' item, with its token when one can
// be read, so the caller can still answer the waiter instead of leaving it hung.

/** Packet types of protocol v5 (and the v3/v4 ones, recognised to be refused by name). */
export const AUTOFS_PTYPE = {
  missing: 0,
  expire: 1,
  'expire-multi': 2,
  'missing-indirect': 3,
  'expire-indirect': 4,
  'missing-direct': 5,
  'expire-direct': 6,
} as const;

export type AutofsPacketType = keyof typeof AUTOFS_PTYPE;

const TYPE_NAMES = Object.keys(AUTOFS_PTYPE) as AutofsPacketType[];

/** Bytes of data in a v5 packet (sizeof is 304 where u64 aligns to 8, 300 on i386). */
export const AUTOFS_V5_PACKET_BYTES = 300;
export const AUTOFS_V5_PACKET_SIZEOF = 304;
const NAME_OFFSET = 44;
const NAME_MAX = 255;

export interface AutofsV5Packet {
  kind: 'packet';
  type: 'missing-indirect' | 'expire-indirect' | 'missing-direct' | 'expire-direct';
  /** Whether the kernel waits for a mount (missing) or an unmount (expire). */
  request: 'missing' | 'expire';
  /** wait_queue_token: what READY/FAIL answer; never 0. */
  token: number;
  /** new_encode_dev() of the autofs mount's device. */
  dev: number;
  ino: bigint;
  /** Credentials of the process that triggered it (pid and tgid in the daemon's pid namespace). */
  uid: number;
  gid: number;
  pid: number;
  tgid: number;
  /** The name looked up (indirect), or the kernel's name for the trap dentry (direct). */
  name: string;
}

export interface AutofsInvalidPacket {
  kind: 'invalid';
  reason: string;
  length: number;
  /** The wait-queue token, when the bytes that hold it are there and it is not 0. */
  token?: number;
  /** What the type field says, when it can be read and names a known type. */
  type?: AutofsPacketType;
}

export type AutofsPacketItem = AutofsV5Packet | AutofsInvalidPacket;

function invalid(bytes: Uint8Array, reason: string, view: DataView): AutofsInvalidPacket {
  const out: AutofsInvalidPacket = { kind: 'invalid', reason, length: bytes.length };
  if (bytes.length >= 8) {
    const t = view.getInt32(4, true);
    if (t >= 0 && t < TYPE_NAMES.length) out.type = TYPE_NAMES[t];
  }
  if (bytes.length >= 12) {
    const token = view.getUint32(8, true);
    if (token !== 0) out.token = token;
  }
  return out;
}

/** One packet as read from the pipe (one read() returns one packet). */
export function parseAutofsPacket(bytes: Uint8Array): AutofsPacketItem {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < AUTOFS_V5_PACKET_BYTES) {
    return invalid(
      bytes,
      `short packet: ${bytes.length} bytes, a v5 packet has ${AUTOFS_V5_PACKET_BYTES}`,
      view,
    );
  }
  const version = view.getInt32(0, true);
  if (version !== 5) return invalid(bytes, `protocol version ${version}, expected 5`, view);
  const typeCode = view.getInt32(4, true);
  if (typeCode < 3 || typeCode > 6) {
    const name = typeCode >= 0 && typeCode < TYPE_NAMES.length ? ` (${TYPE_NAMES[typeCode]})` : '';
    return invalid(bytes, `packet type ${typeCode}${name} is not a v5 request`, view);
  }
  const token = view.getUint32(8, true);
  if (token === 0) return invalid(bytes, 'wait-queue token 0', view);
  const len = view.getUint32(40, true);
  if (len > NAME_MAX) return invalid(bytes, `name length ${len} over ${NAME_MAX}`, view);
  const nameBytes = bytes.subarray(NAME_OFFSET, NAME_OFFSET + len);
  if (nameBytes.includes(0)) return invalid(bytes, 'NUL inside the name', view);
  if (bytes[NAME_OFFSET + len] !== 0) return invalid(bytes, 'name not NUL-terminated at len', view);
  const type = TYPE_NAMES[typeCode] as AutofsV5Packet['type'];
  return {
    kind: 'packet',
    type,
    request: type.startsWith('missing') ? 'missing' : 'expire',
    token,
    dev: view.getUint32(12, true),
    ino: view.getBigUint64(16, true),
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    pid: view.getUint32(32, true),
    tgid: view.getUint32(36, true),
    name: Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.byteLength).toString('latin1'),
  };
}

/** The packets of one wake-up. */
export function parseAutofsBatch(packets: readonly Uint8Array[]): AutofsPacketItem[] {
  return packets.map(parseAutofsPacket);
}

/** Test vectors and the fake kernel: a packet's bytes, laid out as the kernel writes them. */
export function encodeAutofsPacket(
  p: Omit<AutofsV5Packet, 'kind' | 'request'>,
  size = AUTOFS_V5_PACKET_SIZEOF,
): Buffer {
  const buf = Buffer.alloc(size);
  buf.writeInt32LE(5, 0);
  buf.writeInt32LE(AUTOFS_PTYPE[p.type], 4);
  buf.writeUInt32LE(p.token, 8);
  buf.writeUInt32LE(p.dev, 12);
  buf.writeBigUInt64LE(p.ino, 16);
  buf.writeUInt32LE(p.uid, 24);
  buf.writeUInt32LE(p.gid, 28);
  buf.writeUInt32LE(p.pid, 32);
  buf.writeUInt32LE(p.tgid, 36);
  const name = Buffer.from(p.name, 'latin1').subarray(0, NAME_MAX);
  buf.writeUInt32LE(name.length, 40);
  name.copy(buf, NAME_OFFSET);
  return buf;
}
