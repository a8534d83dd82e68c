// autofs v5 packet parser: golden bytes as the kernel writes them (x86-64, 304 bytes; i386, 300),
// every field at its offset, and fuzz: random and mutated packets never throw, and whatever
// carries a readable token reports it so the waiter can be answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUTOFS_V5_PACKET_BYTES,
  AUTOFS_V5_PACKET_SIZEOF,
  encodeAutofsPacket,
  parseAutofsBatch,
  parseAutofsPacket,
} from '../../src/mounts/autofs-packets';
import { Prng } from '../helpers/prng';

/** A missing_direct packet as captured from the kernel (6.18, x86-64): ls on a direct autofs mount. */
function goldenMissingDirect(): Buffer {
  const b = Buffer.alloc(304);
  b.writeInt32LE(5, 0); // proto_version
  b.writeInt32LE(5, 4); // autofs_ptype_missing_direct
  b.writeUInt32LE(1, 8); // wait_queue_token
  b.writeUInt32LE(39, 12); // dev
  b.writeBigUInt64LE(3183209n, 16); // ino
  b.writeUInt32LE(0, 24); // uid
  b.writeUInt32LE(0, 28); // gid
  b.writeUInt32LE(32329, 32); // pid
  b.writeUInt32LE(32329, 36); // tgid
  b.writeUInt32LE(16, 40); // len
  b.write('000000009bcf80a3', 44, 'latin1');
  return b;
}

test('golden: missing_direct, every field at its offset', () => {
  assert.deepEqual(parseAutofsPacket(goldenMissingDirect()), {
    kind: 'packet',
    type: 'missing-direct',
    request: 'missing',
    token: 1,
    dev: 39,
    ino: 3183209n,
    uid: 0,
    gid: 0,
    pid: 32329,
    tgid: 32329,
    name: '000000009bcf80a3',
  });
});

test('golden: expire_direct, indirect types, and the 300-byte i386 size', () => {
  const base = { token: 7, dev: 39, ino: 12n, uid: 1000, gid: 1000, pid: 1096, tgid: 42, name: 'x' };
  for (const type of ['expire-direct', 'missing-indirect', 'expire-indirect'] as const) {
    const p = parseAutofsPacket(encodeAutofsPacket({ ...base, type }));
    assert.equal(p.kind, 'packet');
    if (p.kind === 'packet') {
      assert.equal(p.type, type);
      assert.equal(p.request, type.startsWith('missing') ? 'missing' : 'expire');
      assert.equal(p.tgid, 42);
    }
  }
  const small = encodeAutofsPacket(
    { ...base, type: 'missing-indirect', name: 'share' },
    AUTOFS_V5_PACKET_BYTES,
  );
  assert.equal(small.length, 300);
  const p = parseAutofsPacket(small);
  assert.equal(p.kind === 'packet' && p.name, 'share');
  assert.equal(AUTOFS_V5_PACKET_SIZEOF, 304);
});

test('invalid: short, wrong version, v3/v4 types, token 0, bad length, missing NUL; the token is kept', () => {
  const g = goldenMissingDirect();
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['short', (b) => b.subarray(0, 100), /short packet/],
    ['version', (b) => (b.writeInt32LE(4, 0), b), /protocol version 4/],
    ['v4 expire_multi', (b) => (b.writeInt32LE(2, 4), b), /type 2 \(expire-multi\)/],
    ['unknown type', (b) => (b.writeInt32LE(99, 4), b), /type 99/],
    ['token 0', (b) => (b.writeUInt32LE(0, 8), b), /token 0/],
    ['len', (b) => (b.writeUInt32LE(300, 40), b), /name length/],
    ['no NUL', (b) => (b.writeUInt32LE(3, 40), b), /NUL-terminated/],
    ['NUL inside', (b) => (b.writeUInt8(0, 45), b), /NUL inside/],
  ];
  for (const [what, mutate, reason] of cases) {
    const p = parseAutofsPacket(mutate(Buffer.from(g)));
    assert.equal(p.kind, 'invalid', what);
    if (p.kind === 'invalid') {
      assert.match(p.reason, reason, what);
      if (what !== 'token 0') assert.equal(p.token, 1, `${what}: token kept`);
    }
  }
  assert.deepEqual(parseAutofsPacket(Buffer.alloc(0)), {
    kind: 'invalid',
    reason: 'short packet: 0 bytes, a v5 packet has 300',
    length: 0,
  });
});

test('fuzz: 20,000 random and mutated packets never throw', () => {
  const rng = new Prng(0x5eed);
  const g = goldenMissingDirect();
  let packets = 0;
  for (let i = 0; i < 20_000; i++) {
    let b: Buffer;
    if (i % 2 === 0) {
      b = rng.bytes(rng.int(521));
    } else {
      b = Buffer.from(g.subarray(0, i % 4 === 1 ? 304 : rng.int(305)));
      for (let k = 1 + rng.int(4); k > 0 && b.length > 0; k--) b[rng.int(b.length)] = rng.int(256);
    }
    const p = parseAutofsPacket(b);
    if (p.kind === 'packet') {
      packets++;
      assert.ok(p.token > 0);
      assert.ok(p.name.length <= 255);
    } else {
      assert.equal(p.length, b.length);
      if (p.token !== undefined) assert.ok(p.token > 0);
    }
  }
  assert.ok(packets > 0, 'some mutations stay valid');
  assert.equal(parseAutofsBatch([g, Buffer.alloc(3)]).length, 2);
});
