// sd_notify datagrams (src/units/notify-message.ts), as parsed bytes; the same bytes with real
// ancillary data go to a running daemon in channels.ts. Contract: never throws; a whole-message
// error is one of the three documented codes exactly when its condition holds (too long, an
// embedded NUL, an unpaired backslash at the end); otherwise every field is in its documented
// range, every ignored tag has one of the three field codes, and the KEY=1 flags mean "that tag
// is there".
import * as fc from 'fast-check';
import {
  isValidFdName,
  NOTIFY_BUFFER_MAX,
  parseNotifyMessage,
  splitNotifyTags,
  type NotifyParseResult,
} from '../../src/units/notify-message';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, randomBytesArbitrary, showBytes } from '../mutate';
import { nonEmpty, readFile, repo } from '../corpus';
import { NOTIFY_KEYS } from '../fragments';

const FIELD_CODES = new Set([
  'ERR_NOTIFY_FIELD_NOT_UTF8',
  'ERR_NOTIFY_FIELD_VALUE',
  'ERR_NOTIFY_TAG_MALFORMED',
]);
const ACCESS = new Set(['none', 'main', 'exec', 'all']);

const VALUES = [
  '1',
  '0',
  '',
  'trigger',
  '-1',
  '0x10',
  ' 5',
  '18446744073709551615',
  '18446744073709551616',
  '2147483647',
  '2147483648',
  '4242',
  'EIO',
  'all',
  'main',
  'stored',
  'a:b',
  'org.x.Error',
  'héllo',
  '\\',
  'a\\b',
  '=',
  'x'.repeat(300),
];
const RAW: Buffer[] = ['\n', '\r', '\\', '=', '\0', '\xff', '\xc0\x80', '\xed\xa0\x80', '\xef\xbf\xbe'].map(
  (s) => Buffer.from(s, 'latin1'),
);

/** Tags from the known keys and values, separated as clients do (and as they should not). */
export const notifyMessageArbitrary: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom(...NOTIFY_KEYS) },
          fc.constantFrom('', 'ready', 'READY ', '__proto__'),
        ),
        fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...VALUES).map((v) => Buffer.from(v)) },
          { weight: 1, arbitrary: fc.constantFrom(...RAW) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)) },
        ),
        fc.constantFrom('\n', '\n', '\n', '\r\n', '\n\n', '\\\n'),
      ),
      { maxLength: 8 },
    ),
    fc.boolean(),
  )
  .map(([tags, nul]) =>
    Buffer.concat([
      ...tags.flatMap(([k, v, sep]) => [Buffer.from(`${k}=`), v, Buffer.from(sep)]),
      nul ? Buffer.from([0]) : Buffer.alloc(0),
    ]),
  );

export function notifyCorpus(): Buffer[] {
  const captured = readFile(repo('test/fixtures/notify/capture.json')).flatMap((b) => {
    const json = JSON.parse(b.toString('utf8')) as { cases: { datagrams: { hex: string }[] }[] };
    return json.cases.flatMap((c) => c.datagrams.map((d) => Buffer.from(d.hex, 'hex')));
  });
  return nonEmpty(captured, 'READY=1\nSTATUS=x\n');
}

function checkNotify(input: Buffer, result: NotifyParseResult, tally: Tally): void {
  const text = input.length > 0 && input[input.length - 1] === 0 ? input.subarray(0, -1) : input;
  let expected: string | undefined;
  if (input.length > NOTIFY_BUFFER_MAX) expected = 'ERR_NOTIFY_TOO_LONG';
  else if (text.includes(0)) expected = 'ERR_NOTIFY_EMBEDDED_NUL';
  else if (splitNotifyTags(text) === undefined) expected = 'ERR_NOTIFY_BAD_ESCAPE';
  if (!result.ok) {
    tally.add(result.code);
    if (result.code !== expected) violation(`${result.code}, expected ${expected ?? 'a parse'}`);
    if (typeof result.message !== 'string' || result.message === '') violation('empty message');
    return;
  }
  if (expected !== undefined) violation(`parsed although ${expected}`);
  tally.add(result.fields.invalid.length > 0 ? 'ok with invalid tags' : 'ok');
  const f = result.fields;
  const tags = splitNotifyTags(text) ?? [];
  if (f.tags.length !== tags.length) violation(`${f.tags.length} tags, split gives ${tags.length}`);
  const inRange = (v: number | undefined, lo: number, hi: number): boolean =>
    v === undefined || (Number.isInteger(v) && v >= lo && v <= hi);
  if (!inRange(f.mainPid, 1, 0x7fffffff)) violation(`MAINPID ${f.mainPid}`);
  if (!inRange(f.errno, 0, 4095)) violation(`ERRNO ${f.errno}`);
  if (!inRange(f.exitStatus, 0, 255)) violation(`EXIT_STATUS ${f.exitStatus}`);
  for (const usec of [f.watchdogUsec, f.extendTimeoutUsec, f.monotonicUsec])
    if (usec !== undefined && usec !== Infinity && !(Number.isSafeInteger(usec) && usec >= 0))
      violation(`usec ${usec}`);
  if (f.mainPidFdId !== undefined && !(f.mainPidFdId >= 0n && f.mainPidFdId < 1n << 64n))
    violation('MAINPIDFDID');
  if (f.fdName !== undefined && !isValidFdName(f.fdName)) violation(`FDNAME ${JSON.stringify(f.fdName)}`);
  if (f.notifyAccess !== undefined && !ACCESS.has(f.notifyAccess))
    violation(`NOTIFYACCESS ${f.notifyAccess}`);
  if (f.watchdog !== undefined && f.watchdog !== 'ping' && f.watchdog !== 'trigger')
    violation(`WATCHDOG ${f.watchdog}`);
  for (const p of f.invalid) if (!FIELD_CODES.has(p.code)) violation(`field code ${p.code}`);
  for (const [k, v] of f.other)
    if (typeof k !== 'string' || typeof v !== 'string') violation('other field not a string');
  const present = new Set(tags.map((t) => t.toString('latin1')));
  if (f.ready !== present.has('READY=1')) violation('ready flag');
  if (f.barrier !== present.has('BARRIER=1')) violation('barrier flag');
  if (f.fdPoll !== !present.has('FDPOLL=0')) violation('fdPoll flag');
}

export const notifyTarget = () =>
  defineTarget<Buffer>({
    name: 'notify',
    about: 'parseNotifyMessage on structured, captured-and-mutated and random datagrams',
    arbitrary: () =>
      fc.oneof(
        { weight: 4, arbitrary: notifyMessageArbitrary },
        {
          weight: 4,
          arbitrary: mutantArbitrary(notifyCorpus(), {
            hugeSizes: [NOTIFY_BUFFER_MAX, NOTIFY_BUFFER_MAX + 1, 65536],
          }),
        },
        { weight: 2, arbitrary: randomBytesArbitrary([NOTIFY_BUFFER_MAX, NOTIFY_BUFFER_MAX + 1]) },
      ),
    check: (input, tally) => {
      const result = parseNotifyMessage(input);
      checkNotify(input, result, tally);
      if (
        JSON.stringify(parseNotifyMessage(input), (_, v: unknown) =>
          typeof v === 'bigint' ? String(v) : v,
        ) !== JSON.stringify(result, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))
      )
        violation('not deterministic');
    },
    size: (input) => input.length,
    show: (input) => showBytes(input),
  });
