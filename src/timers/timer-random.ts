// The two ways systemd moves a timer's elapse off its computed time, reproduced exactly so that a
// machine running both systemd and triggerd wakes up at the same moments:
//
// - AccuracySec= (sd-event's sleep_between()): the wake-up is chosen inside [next, next+accuracy],
//   at the same spot of every minute (else 10 s, 1 s, 250 ms) for every timer of the machine, that
//   spot being a per-boot "perturbation" derived from the boot id. Deterministic for a boot, so
//   timers of every process coalesce into one wake-up.
// - FixedRandomDelay=yes: siphash24 of (machine id, system/user manager, uid, unit name) with
//   systemd's key, modulo RandomizedDelaySec=: the same delay for a timer on a machine, every time.
import fs = require('node:fs');

const USEC_PER_MSEC = 1000;
const USEC_PER_SEC = 1_000_000;
const USEC_PER_MINUTE = 60 * USEC_PER_SEC;

/**
 * sd-event's sleep_between(a, b): a time in [a, b] to wake up at, preferring the machine-wide
 * spot `perturb` (µs into the minute) of the latest possible minute, then of 10 s, 1 s, 250 ms,
 * else b.
 */
export function sleepBetween(a: number, b: number, perturb: number): number {
  if (a <= 0) return 0;
  if (!Number.isFinite(a)) return a;
  if (b <= a + 1) return a;
  for (const step of [USEC_PER_MINUTE, 10 * USEC_PER_SEC, USEC_PER_SEC, 250 * USEC_PER_MSEC]) {
    let c = Math.floor(b / step) * step + (perturb % step);
    if (c >= b) {
      if (c < step) return b;
      c -= step;
    }
    if (c >= a) return c;
  }
  return b;
}

/** 16 bytes of a 128-bit id written as hex (with or without dashes), or undefined. */
export function parseId128(text: string): Buffer | undefined {
  const hex = text.trim().replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

/** sd-event's initialize_perturb(): (boot id qword 0 ^ qword 1) % 1 min; 0 without a boot id. */
export function perturbFromBootId(bootId: Buffer | undefined): number {
  if (bootId === undefined || bootId.length !== 16) return 0;
  const q = bootId.readBigUInt64LE(0) ^ bootId.readBigUInt64LE(8);
  return Number(q % BigInt(USEC_PER_MINUTE));
}

export function readBootId(file = '/proc/sys/kernel/random/boot_id'): Buffer | undefined {
  try {
    return parseId128(fs.readFileSync(file, 'latin1'));
  } catch {
    return undefined;
  }
}

export function readMachineId(file = '/etc/machine-id'): Buffer | undefined {
  try {
    return parseId128(fs.readFileSync(file, 'latin1'));
  } catch {
    return undefined;
  }
}

const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & MASK;

/** SipHash-2-4 of `data` with a 16-byte key, as systemd's siphash24(). */
export function siphash24(data: Uint8Array, key: Uint8Array): bigint {
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const k0 = k.readBigUInt64LE(0);
  const k1 = k.readBigUInt64LE(8);
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & MASK;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & MASK;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & MASK;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const len = data.length;
  const whole = len - (len % 8);
  const d = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < whole; i += 8) {
    const m = d.readBigUInt64LE(i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  let b = BigInt(len & 0xff) << 56n;
  for (let i = whole; i < len; i++) b |= BigInt(d[i] as number) << BigInt(8 * (i - whole));
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK;
}

/** The key of systemd's timer_get_fixed_delay_hash(). */
const FIXED_DELAY_KEY = Uint8Array.from([
  0x51, 0x0a, 0xdb, 0x76, 0x29, 0x51, 0x42, 0xc2, 0x80, 0x35, 0xea, 0xe6, 0x8e, 0x3a, 0x37, 0xbd,
]);

/**
 * systemd's timer_get_fixed_delay_hash(): siphash24 over the machine id (zeros when unknown), a
 * byte saying system (1) or user (0) manager, the uid (4 bytes, little-endian here) and the unit
 * name. FixedRandomDelay=yes delays by this modulo RandomizedDelaySec=.
 */
export function fixedDelayHash(
  machineId: Buffer | undefined,
  systemManager: boolean,
  uid: number,
  unitName: string,
): bigint {
  const name = Buffer.from(unitName, 'utf8');
  const buf = Buffer.alloc(16 + 1 + 4 + name.length);
  if (machineId !== undefined && machineId.length === 16) machineId.copy(buf, 0);
  buf[16] = systemManager ? 1 : 0;
  buf.writeUInt32LE(uid >>> 0, 17);
  name.copy(buf, 21);
  return siphash24(buf, FIXED_DELAY_KEY);
}
