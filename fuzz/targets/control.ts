// The control protocol (src/control/protocol.ts): a byte stream cut into chunks at random places
// goes through LineDecoder, each line through parseRequest. Contract: neither throws; the
// decoder's lines are exactly the stream's non-blank newline-separated lines up to the limit,
// each longer line is reported once as too-long, and it never holds more than the limit; a
// request is accepted only when it is an object with a known method and parameters of the types
// the METHODS table gives, and anything else gets one of the protocol's error codes.
import * as fc from 'fast-check';
import { LineDecoder, METHODS, parseRequest, type MethodName } from '../../src/control/protocol';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, randomBytesArbitrary, showBytes } from '../mutate';

/** Small, so the fuzzer crosses it often; the daemon's is 64 KiB (its own test covers that). */
const LIMIT = 512;
const PARSE_CODES = new Set(['ERR_BAD_JSON', 'ERR_BAD_REQUEST', 'ERR_UNKNOWN_METHOD', 'ERR_BAD_PARAMS']);
const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

const paramValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
  fc.boolean(),
  fc.double(),
  fc.constantFrom(null, {}, [], 'x.service', ['a.service', 'b.target'], Infinity, -0),
);

/** Requests from the METHODS table: right and wrong parameter names and types, odd ids. */
export const requestArbitrary: fc.Arbitrary<string> = fc
  .record({
    id: fc.oneof(fc.nat(), fc.string({ maxLength: 6 }), fc.constantFrom(null, undefined, true, {}, 1.5)),
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...METHOD_NAMES) },
      fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'PING', 'x'.repeat(100)),
    ),
    params: fc.oneof(
      {
        weight: 6,
        arbitrary: fc.dictionary(
          fc.constantFrom('name', 'names', 'lines', 'follow', 'type', 'all', 'mode', 'x', '__proto__'),
          paramValue,
          { maxKeys: 3 },
        ),
      },
      fc.constantFrom(undefined, null, [], 'params', 0),
    ),
    extra: fc.option(fc.constantFrom('"x":1', '"id":2', '"method":"ping"'), { nil: undefined }),
  })
  .map(({ id, method, params, extra }) => {
    const body = JSON.stringify({ id, method, params });
    return extra === undefined || body === '{}' ? body : `${body.slice(0, -1)},${extra}}`;
  });

const lineArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: requestArbitrary },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '{',
      '}',
      '[]',
      'null',
      '"ping"',
      '{"method":"ping"',
      '\ufeff{"method":"ping"}',
      '[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]',
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: LIMIT - 2, max: LIMIT + 2 })
      .map((n) => `{"method":"ping","id":"${'x'.repeat(Math.max(0, n - 30))}"}`),
  },
);

interface StreamInput {
  bytes: Buffer;
  /** Where the stream is cut into chunks. */
  cuts: number[];
}

const streamArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.array(lineArbitrary, { minLength: 1, maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\n\n'))
      .map(([lines, eol]) => Buffer.from(lines.join(eol) + eol)),
  },
  {
    weight: 2,
    arbitrary: mutantArbitrary(
      [
        Buffer.from(
          '{"id":1,"method":"status"}\n{"id":2,"method":"list-units","params":{"type":"service"}}\n',
        ),
      ],
      { hugeSizes: [LIMIT + 1, 4 * LIMIT, 65537] },
    ),
  },
  { weight: 1, arbitrary: randomBytesArbitrary([LIMIT + 1, 2 * LIMIT + 3]) },
);

function reference(bytes: Buffer): { lines: string[]; tooLong: number } {
  const lines: string[] = [];
  let tooLong = 0;
  const parts = bytes.toString('latin1').split('\n');
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (Buffer.byteLength(p, 'latin1') > LIMIT) tooLong++;
    else if (!last) {
      const line = Buffer.from(p, 'latin1').toString('utf8');
      if (line.trim().length > 0) lines.push(line);
    }
  });
  return { lines, tooLong };
}

function checkStream(input: StreamInput, tally: Tally): void {
  const decoder = new LineDecoder(LIMIT);
  const got: string[] = [];
  let tooLong = 0;
  let at = 0;
  for (const cut of [
    ...input.cuts.map((c) => c % (input.bytes.length + 1)).sort((a, b) => a - b),
    input.bytes.length,
  ]) {
    for (const d of decoder.push(input.bytes.subarray(at, cut))) {
      if (d.kind === 'too-long') {
        tooLong++;
        if (d.bytes <= LIMIT) violation(`too-long reported at ${d.bytes} bytes`);
      } else got.push(d.line);
    }
    if (decoder.pending > LIMIT) violation(`decoder holds ${decoder.pending} bytes`);
    at = cut;
  }
  const want = reference(input.bytes);
  if (JSON.stringify(got) !== JSON.stringify(want.lines))
    violation(`lines ${JSON.stringify(got)}, expected ${JSON.stringify(want.lines)}`);
  if (tooLong !== want.tooLong) violation(`${tooLong} too-long reports, expected ${want.tooLong}`);
  for (const line of got) {
    const r = parseRequest(line);
    if (r.ok) {
      tally.add('request ok');
      const spec: Record<string, string> = METHODS[r.request.method].params;
      for (const key of Object.keys(r.request.params))
        if (!Object.prototype.hasOwnProperty.call(spec, key)) violation(`accepted unknown parameter ${key}`);
      for (const [key, kind] of Object.entries(spec)) {
        const v = r.request.params[key];
        if (v === undefined) {
          if (!kind.endsWith('?')) violation(`accepted without ${key}`);
          continue;
        }
        const ok = kind.startsWith('string[]')
          ? Array.isArray(v) && v.every((s) => typeof s === 'string')
          : kind.startsWith('string')
            ? typeof v === 'string'
            : kind.startsWith('number')
              ? typeof v === 'number' && Number.isFinite(v)
              : typeof v === 'boolean';
        if (!ok) violation(`accepted ${key}=${JSON.stringify(v)} for ${kind}`);
      }
      const id = r.request.id;
      if (id !== null && typeof id !== 'number' && typeof id !== 'string')
        violation(`id ${JSON.stringify(id)}`);
    } else {
      tally.add(r.error.code);
      if (!PARSE_CODES.has(r.error.code)) violation(`error code ${r.error.code}`);
      if (typeof r.error.message !== 'string' || r.error.message === '') violation('empty message');
    }
  }
}

export const controlTarget = () =>
  defineTarget<StreamInput>({
    name: 'control',
    about: 'LineDecoder over randomly cut streams, parseRequest on every line, against a reference split',
    arbitrary: () => fc.record({ bytes: streamArbitrary, cuts: fc.array(fc.nat(), { maxLength: 6 }) }),
    check: checkStream,
    size: (input) => input.bytes.length,
    show: (input) => `cuts ${input.cuts.join(',')} ${showBytes(input.bytes)}`,
  });
