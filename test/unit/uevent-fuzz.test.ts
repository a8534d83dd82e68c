// Deterministic fuzzing of the uevent parsers: random bytes and mutations of valid messages must
// never throw, and whatever parses must satisfy the Uevent invariants. Seeded, so a failure
// reproduces; the failing input is printed as hex.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  parseKernelUevent,
  parseLibudevMessage,
  UEVENT_MAX_BYTES,
  UEVENT_PARSE_ERROR_CODES,
  type UeventParseResult,
} from '../../src/devices/uevent-parse';
import { encodeKernelUevent } from '../../src/devices/uevent-encode';
import { UEVENT_ACTIONS, type UeventSource } from '../../src/devices/types';
import { mulberry32 } from '../helpers/prng';

const SEED = 0x7269_6767; // change to explore; failures print the seed and the input
const ITERATIONS = 100_000;
const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/uevents');

const prng = mulberry32;

const random = prng(SEED);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)];

const LE = os.endianness() === 'LE';
function writeU32(buf: Buffer, value: number, offset: number): void {
  if (LE) buf.writeUInt32LE(value >>> 0, offset);
  else buf.writeUInt32BE(value >>> 0, offset);
}

function libudev(props: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header.write('libudev\0', 0, 'latin1');
  header.writeUInt32BE(0xfeedcafe, 8);
  writeU32(header, 40, 12);
  writeU32(header, 40, 16);
  writeU32(header, props.length, 20);
  return Buffer.concat([header, props]);
}

// ---- valid messages: recorded, hand-made, and generated -----------------------------------------

const KEY_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789abcdefghijklmnopqrstuvwxyz';
const VALUE_PIECES = [
  'a',
  'Z',
  '0',
  '9',
  ' ',
  '=',
  '@',
  '/',
  ':',
  '-',
  '.',
  '..',
  'ü',
  '€',
  '😀',
  '\\',
  '%',
  '~',
];

function randomKey(): string {
  let s = '';
  for (let n = 1 + int(12); n > 0; n--) s += pick([...KEY_CHARS]);
  return s;
}
function randomValue(maxPieces: number): string {
  let s = '';
  for (let n = int(maxPieces); n > 0; n--) s += pick(VALUE_PIECES);
  return s;
}
function randomDevpath(): string {
  let s = '';
  for (let n = 1 + int(6); n > 0; n--)
    s += '/' + (randomValue(6).replace(/\//g, '') || 'd').replace(/^\.\.$/, 'dd');
  return s;
}

const RESERVED = new Set([
  'ACTION',
  'DEVPATH',
  'SUBSYSTEM',
  'SEQNUM',
  'MAJOR',
  'MINOR',
  'DEVNAME',
  'DEVTYPE',
]);

/** A random valid event as the encoder's input, plus its expected properties. */
function randomValidKernel(): Buffer {
  const props: Record<string, string> = {};
  for (let n = int(10); n > 0; n--) {
    const key = randomKey();
    if (!RESERVED.has(key)) props[key] = randomValue(20);
  }
  return encodeKernelUevent({
    action: pick(UEVENT_ACTIONS),
    devpath: randomDevpath(),
    subsystem: 's' + randomValue(5),
    seqnum: int(2 ** 31),
    major: random() < 0.5 ? int(4096) : undefined,
    minor: random() < 0.5 ? int(1 << 20) : undefined,
    devname: random() < 0.5 ? 'node' + int(100) : undefined,
    devtype: random() < 0.3 ? 'disk' : undefined,
    properties: props,
  });
}

function kernelToLibudev(kernel: Buffer): Buffer {
  return libudev(kernel.subarray(kernel.indexOf(0) + 1));
}

const recorded = (dir: string): Buffer[] =>
  fs
    .readdirSync(path.join(FIXTURES, dir))
    .filter((f) => f.endsWith('.bin'))
    .map((f) => fs.readFileSync(path.join(FIXTURES, dir, f)));
const SEEDS_ALL = [...recorded('raw-attach'), ...recorded('raw-detach'), ...recorded('handmade')];
const KERNEL_SEEDS = SEEDS_ALL.filter((b) => !b.subarray(0, 8).equals(Buffer.from('libudev\0')));
const UDEV_SEEDS = SEEDS_ALL.filter((b) => b.subarray(0, 8).equals(Buffer.from('libudev\0')));

function seed(): Buffer {
  const r = random();
  if (r < 0.3) return pick(KERNEL_SEEDS);
  if (r < 0.55) return pick(UDEV_SEEDS);
  if (r < 0.8) return randomValidKernel();
  return kernelToLibudev(random() < 0.5 ? pick(KERNEL_SEEDS) : randomValidKernel());
}

// ---- mutations ---------------------------------------------------------------------------------

const SPECIAL_BYTES = [0x00, 0x3d, 0x40, 0x2f, 0x0a, 0x7f, 0x80, 0xff, 0xc3, 0x2e, 0x20, 0x01];
const HUGE = [0xffffffff, 0x80000000, 0x7fffffff, 0, 1, 39, 40, 41, 8192, 65536];

function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

const mutations: ((b: Buffer) => Buffer)[] = [
  // bit flips
  (b) => {
    const out = Buffer.from(b);
    for (let n = 1 + int(8); n > 0 && out.length > 0; n--) out[int(out.length)] ^= 1 << int(8);
    return out;
  },
  // truncation
  (b) => b.subarray(0, int(b.length + 1)),
  // splice two messages
  (b) => {
    const other = seed();
    return Buffer.concat([b.subarray(0, int(b.length + 1)), other.subarray(int(other.length + 1))]);
  },
  // inserted NULs
  (b) => {
    let out = b;
    for (let n = 1 + int(3); n > 0; n--) {
      const at = int(out.length + 1);
      out = Buffer.concat([out.subarray(0, at), Buffer.from([0]), out.subarray(at)]);
    }
    return out;
  },
  // special bytes
  (b) => {
    const out = Buffer.from(b);
    for (let n = 1 + int(4); n > 0 && out.length > 0; n--) out[int(out.length)] = pick(SPECIAL_BYTES);
    return out;
  },
  // duplicated segment (duplicate keys, repeated headers)
  (b) => {
    const from = int(b.length + 1);
    const to = from + int(b.length - from + 1);
    return Buffer.concat([b.subarray(0, to), b.subarray(from, to), b.subarray(to)]);
  },
  // libudev header fields: huge or lying sizes and offsets
  (b) => {
    const out = Buffer.from(b.length >= 40 ? b : libudev(b));
    const field = pick([12, 16, 20]);
    const value = random() < 0.5 ? pick(HUGE) : out.length - 40 + int(5) - 2;
    writeU32(out, value, field);
    return out;
  },
  // wrap in a libudev header / strip one
  (b) => (b.length >= 40 && random() < 0.5 ? b.subarray(40) : libudev(b)),
  // random tail with the last byte NUL so framing passes
  (b) => {
    const out = Buffer.concat([b.subarray(0, int(b.length + 1)), randomBytes(int(64))]);
    if (out.length > 0) out[out.length - 1] = 0;
    return out;
  },
  // grow past the size limit
  (b) =>
    Buffer.concat([
      b,
      Buffer.alloc(Math.max(0, UEVENT_MAX_BYTES - b.length + int(3)), 0x41),
      Buffer.from([0]),
    ]),
];

function generate(): Buffer {
  const r = random();
  if (r < 0.1) return randomBytes(int(512));
  if (r < 0.15) {
    const b = randomBytes(1 + int(256));
    b[b.length - 1] = 0;
    return b;
  }
  if (r < 0.2) return seed(); // valid as is
  let b = seed();
  for (let n = 1 + int(3); n > 0; n--) b = pick(mutations)(b);
  return b;
}

// ---- invariants --------------------------------------------------------------------------------

const CODES: ReadonlySet<string> = new Set(UEVENT_PARSE_ERROR_CODES);
const ACTIONS: ReadonlySet<string> = new Set(UEVENT_ACTIONS);
const KEY_RE = /^[A-Za-z0-9_]+$/;
/** libudev keys: whatever a udev rule may name, printable ASCII but '='. */
const UDEV_KEY_RE = /^[\x21-\x3c\x3e-\x7e]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

function check(result: UeventParseResult, source: UeventSource): string | undefined {
  if (typeof result !== 'object' || result === null) return 'result is not an object';
  if (!result.ok) {
    if (result.ok !== false) return 'ok is not a boolean';
    if (!CODES.has(result.error.code)) return `unknown code ${String(result.error.code)}`;
    if (typeof result.error.message !== 'string' || result.error.message.length === 0) return 'empty message';
    return undefined;
  }
  const e = result.event;
  const p = e.properties;
  if (e.source !== source) return `source ${e.source}`;
  if (!ACTIONS.has(e.action) || p.get('ACTION') !== e.action) return `action ${e.action}`;
  if (!e.devpath.startsWith('/') || e.devpath.split('/').includes('..')) return `devpath ${e.devpath}`;
  if (p.get('DEVPATH') !== e.devpath) return 'DEVPATH property';
  if (typeof e.subsystem !== 'string' || p.get('SUBSYSTEM') !== e.subsystem) return 'subsystem';
  if (!Number.isSafeInteger(e.seqnum) || e.seqnum < 0 || Number(p.get('SEQNUM')) !== e.seqnum)
    return 'seqnum';
  for (const n of [e.major, e.minor]) {
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) return `major/minor ${n}`;
  }
  if (e.devname !== p.get('DEVNAME')) return 'DEVNAME property';
  if (e.devname !== undefined && !e.devname.startsWith('/')) return `devname ${e.devname}`;
  if (e.devtype !== p.get('DEVTYPE')) return 'DEVTYPE property';
  for (const [k, v] of p) {
    if (!(source === 'udev' ? UDEV_KEY_RE : KEY_RE).test(k)) return `key ${JSON.stringify(k)}`;
    if (CONTROL_RE.test(v)) return `control char in ${k}`;
  }
  return undefined;
}

test(`fuzz: ${ITERATIONS} generated inputs through both parsers (seed 0x${SEED.toString(16)})`, () => {
  const seen = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = generate();
    for (const [source, parse] of [
      ['kernel', parseKernelUevent],
      ['udev', parseLibudevMessage],
    ] as const) {
      let problem: string | undefined;
      try {
        const result = parse(input);
        problem = check(result, source);
        const key = result.ok ? 'ok' : result.error.code;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (result.ok) accepted++;
      } catch (err) {
        problem = `threw ${String(err)}`;
      }
      if (problem !== undefined) {
        assert.fail(
          `iteration ${i}, ${source} parser: ${problem}\ninput (${input.length} bytes): ${input.toString('hex')}`,
        );
      }
    }
  }
  // The fuzzer must reach past the framing checks, or it tests nothing.
  assert.ok(accepted > ITERATIONS / 40, `only ${accepted} inputs parsed`);
  const codes = [...seen.keys()].filter((k) => k !== 'ok');
  assert.ok(codes.length >= 12, `only reached ${codes.join(', ')}`);
});

test('random valid events round-trip through the encoder and both formats', () => {
  for (let i = 0; i < 5000; i++) {
    const kernel = randomValidKernel();
    const k = parseKernelUevent(kernel);
    if (!k.ok) assert.fail(`${k.error.code} for ${kernel.toString('hex')}`);
    assert.equal(check(k, 'kernel'), undefined);
    assert.deepEqual(encodeKernelUevent(k.event), kernel);
    const u = parseLibudevMessage(kernelToLibudev(kernel));
    if (!u.ok) assert.fail(`${u.error.code} for ${kernel.toString('hex')}`);
    assert.deepEqual([...u.event.properties], [...k.event.properties]);
  }
});
