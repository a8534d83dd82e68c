// Mutation of recorded inputs as fast-check arbitraries: a mutant is (corpus entry, list of
// edits), so fast-check shrinks it by dropping edits and moving them towards the start, and a
// failure prints as a small recipe's result. The edits are the classic ones (bit flips, special
// bytes, truncation, splicing with another entry, duplication, line shuffles) plus "huge": one
// piece repeated until the input is far past every size limit the parsers have.
import * as fc from 'fast-check';

/** Byte sequences that parsers treat specially, or that are not UTF-8. */
export const SPECIAL_BYTES: readonly Buffer[] = [
  [0x00],
  [0x0a],
  [0x0d],
  [0x0d, 0x0a],
  [0x09],
  [0x20],
  [0x5c],
  [0x5c, 0x0a],
  [0x3d],
  [0x40],
  [0x2f],
  [0x22],
  [0x27],
  [0x23],
  [0x3b],
  [0x25],
  [0x24],
  [0x7b],
  [0x7d],
  [0x5b],
  [0x5d],
  [0x2a],
  [0x7c],
  [0x7f],
  [0x80],
  [0xff],
  [0xc3],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xef, 0xbb, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x80, 0xae],
].map((b) => Buffer.from(b));

/**
 * Names of Object.prototype's members: a table indexed by a name the input supplies finds them
 * unless it asks for own properties (the rules compiler, [Mount], calendar shorthands did not).
 */
export const PROTO_NAMES: readonly string[] = [
  '__proto__',
  'constructor',
  'valueOf',
  'toString',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
];

/**
 * Sizes just past the limits: notify 4096, uevent 8192, rules lines 16384 (continuations 65536),
 * control lines 64 KiB. Unit files (1 MiB lines) add their own; each target passes what it has.
 */
export const HUGE_SIZES: readonly number[] = [4097, 8193, 16385, 65537];

/** Hard cap on any mutant, so a run of "huge" edits cannot exhaust memory. */
export const MAX_MUTANT_BYTES = 4 * 1024 * 1024;

type Edit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'remove'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; length: number; times: number }
  | { kind: 'splice'; at: number; other: number; from: number }
  | { kind: 'line'; op: 'delete' | 'duplicate' | 'swap'; a: number; b: number }
  | { kind: 'huge'; at: number; length: number; size: number };

function editArbitrary(hugeSizes: readonly number[]): fc.Arbitrary<Edit> {
  const at = fc.nat();
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat(7) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('set' as const),
        at,
        byte: fc.oneof(fc.constantFrom(...SPECIAL_BYTES.map((b) => b[0] as number)), fc.nat(255)),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('insert' as const),
        at,
        bytes: fc.oneof(fc.constantFrom(...SPECIAL_BYTES), fc.uint8Array({ minLength: 1, maxLength: 16 })),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('remove' as const),
        at,
        length: fc.integer({ min: 1, max: 64 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('duplicate' as const),
        at,
        length: fc.integer({ min: 1, max: 256 }),
        times: fc.integer({ min: 1, max: 8 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('splice' as const), at, other: fc.nat(), from: fc.nat() }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('line' as const),
        op: fc.constantFrom('delete' as const, 'duplicate' as const, 'swap' as const),
        a: fc.nat(),
        b: fc.nat(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('huge' as const),
        at,
        length: fc.integer({ min: 1, max: 16 }),
        size: fc.constantFrom(...hugeSizes),
      }),
    },
  );
}

function lineSpans(b: Buffer): [number, number][] {
  const spans: [number, number][] = [];
  let start = 0;
  while (start < b.length) {
    let end = b.indexOf(0x0a, start);
    end = end < 0 ? b.length : end + 1;
    spans.push([start, end]);
    start = end;
  }
  return spans;
}

function applyEdit(b: Buffer, e: Edit, corpus: readonly Buffer[]): Buffer {
  const pos = (n: number): number => n % (b.length + 1);
  switch (e.kind) {
    case 'flip': {
      if (b.length === 0) return b;
      const out = Buffer.from(b);
      const i = e.at % b.length;
      out[i] = (out[i] as number) ^ (1 << e.bit);
      return out;
    }
    case 'set': {
      if (b.length === 0) return Buffer.from([e.byte]);
      const out = Buffer.from(b);
      out[e.at % b.length] = e.byte;
      return out;
    }
    case 'insert': {
      const i = pos(e.at);
      return Buffer.concat([b.subarray(0, i), e.bytes, b.subarray(i)]);
    }
    case 'remove': {
      const i = pos(e.at);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + e.length)]);
    }
    case 'truncate':
      return b.subarray(0, pos(e.at));
    case 'duplicate': {
      const i = pos(e.at);
      const piece = b.subarray(i, i + e.length);
      return Buffer.concat([
        b.subarray(0, i),
        ...Array<Buffer>(e.times + 1).fill(piece),
        b.subarray(i + e.length),
      ]);
    }
    case 'splice': {
      const other = corpus[e.other % corpus.length] as Buffer;
      return Buffer.concat([b.subarray(0, pos(e.at)), other.subarray(e.from % (other.length + 1))]);
    }
    case 'line': {
      const spans = lineSpans(b);
      if (spans.length === 0) return b;
      const a = e.a % spans.length;
      const c = e.b % spans.length;
      const parts = spans.map(([s, t]) => b.subarray(s, t));
      if (e.op === 'delete') parts.splice(a, 1);
      else if (e.op === 'duplicate') parts.splice(c, 0, parts[a] as Buffer);
      else [parts[a], parts[c]] = [parts[c] as Buffer, parts[a] as Buffer];
      return Buffer.concat(parts);
    }
    case 'huge': {
      const i = pos(e.at);
      const piece = b.length > 0 ? b.subarray(Math.min(i, b.length - 1), i + e.length) : Buffer.from('A');
      const times = Math.ceil(e.size / piece.length);
      return Buffer.concat([b.subarray(0, i), Buffer.alloc(piece.length * times, piece), b.subarray(i)]);
    }
  }
}

export interface MutantOptions {
  /** Most edits on one input (default 6). */
  maxEdits?: number;
  /** Sizes the "huge" edit grows an input to (default HUGE_SIZES). */
  hugeSizes?: readonly number[];
}

/** Mutants of the corpus entries: 1 to `maxEdits` edits, each applied to the previous result. */
export function mutantArbitrary(
  corpus: readonly Buffer[],
  options: MutantOptions = {},
): fc.Arbitrary<Buffer> {
  if (corpus.length === 0) throw new Error('mutantArbitrary: empty corpus');
  return fc
    .record({
      base: fc.nat(corpus.length - 1),
      edits: fc.array(editArbitrary(options.hugeSizes ?? HUGE_SIZES), {
        minLength: 1,
        maxLength: options.maxEdits ?? 6,
      }),
    })
    .map(({ base, edits }) => {
      let b = corpus[base] as Buffer;
      for (const e of edits) {
        b = applyEdit(b, e, corpus);
        if (b.length > MAX_MUTANT_BYTES) b = b.subarray(0, MAX_MUTANT_BYTES);
      }
      return b;
    });
}

/** Random bytes: short, medium, or one of the huge sizes (filled with a repeated random piece). */
export function randomBytesArbitrary(hugeSizes: readonly number[] = HUGE_SIZES): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom(...hugeSizes))
        .map(([piece, size]) => Buffer.alloc(size, Buffer.from(piece))),
    },
  );
}

/** A string from arbitrary code points (lone surrogates included), for parsers that take text. */
export function randomTextArbitrary(maxLength = 256): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme-ascii', maxLength }),
    fc.string({
      unit: fc.constantFrom('\0', '\n', '\\', '"', '\ud800', '\udfff', '\ufffd', '\u202e', 'é'),
      maxLength,
    }),
  );
}

/** Bytes → text the way the daemon reads the file (utf8, bad sequences become U+FFFD). */
export const utf8Text = (b: Buffer): string => b.toString('utf8');

/** Repeated pieces (up to 32 characters, 8 times or more) shown as `<×N "piece">`, so huge inputs stay readable. */
function squeeze(s: string): string {
  return s.replace(
    /([\s\S]{1,32}?)\1{7,}/g,
    (run: string, c: string) => `<×${run.length / c.length} ${JSON.stringify(c)}>`,
  );
}

/** Bytes as a JSON string of their Latin-1 reading (one character per byte, runs squeezed), cut to `max`. */
export function showBytes(b: Uint8Array, max = 3000): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const shown = JSON.stringify(squeeze(buf.toString('latin1')));
  return `${b.length} bytes (latin1): ${shown.length > max ? shown.slice(0, max) + '…' : shown}`;
}

/** JSON string of the text (runs squeezed), cut to `max` characters, for reports. */
export function showText(s: string, max = 3000): string {
  const shown = JSON.stringify(squeeze(s));
  return `${s.length} chars: ${shown.length > max ? shown.slice(0, max) + '…' : shown}`;
}
