// uevents in both wire formats: the kernel's `ACTION@DEVPATH\0KEY=VALUE\0…` (netlink group 1) and
// libudev's 40-byte "libudev\0" header + properties (group 2), through parseNetlinkMessage with
// random sender credentials. Contract (src/devices/uevent-parse.ts): never throws; every buffer
// gives an event or an error with one of UEVENT_PARSE_ERROR_CODES; an event satisfies the Uevent
// invariants; a message not from the kernel (or, for udev, not from root) is always refused.
import * as fc from 'fast-check';
import * as os from 'node:os';
import {
  parseKernelUevent,
  parseLibudevMessage,
  parseNetlinkMessage,
  LIBUDEV_HEADER_BYTES,
  UEVENT_PARSE_ERROR_CODES,
  type UeventParseResult,
} from '../../src/devices/uevent-parse';
import { UEVENT_ACTIONS, type UeventSource } from '../../src/devices/types';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, randomBytesArbitrary, showBytes } from '../mutate';
import { nonEmpty, readFiles, repo, type CorpusOptions } from '../corpus';

const LIBUDEV_PREFIX = Buffer.from('libudev\0', 'latin1');
const LE = os.endianness() === 'LE';
const CODES: ReadonlySet<string> = new Set(UEVENT_PARSE_ERROR_CODES);
const ACTIONS: ReadonlySet<string> = new Set(UEVENT_ACTIONS);
const KEY_RE = /^[A-Za-z0-9_]+$/;
const UDEV_KEY_RE = /^[\x21-\x3c\x3e-\x7e]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

function recorded(options: CorpusOptions): { kernel: Buffer[]; udev: Buffer[] } {
  const isBin = (f: string): boolean => f.endsWith('.bin') || /\/msg\d+-(kernel|udev)(\.bin)?$/.test(f);
  const files = [
    ...readFiles(repo('test/fixtures/uevents'), isBin),
    ...(options.system ? readFiles('/work/shared/reference/udev', isBin) : []),
  ];
  const udev = files.filter((b) => b.subarray(0, 8).equals(LIBUDEV_PREFIX));
  const kernel = files.filter((b) => !b.subarray(0, 8).equals(LIBUDEV_PREFIX));
  return {
    kernel: nonEmpty(kernel, 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=s\0SEQNUM=1\0'),
    udev: nonEmpty(udev, 'libudev\0'),
  };
}

// ---- structure-aware generation: near-valid messages ---------------------------------------------

const KNOWN_KEYS = [
  'ACTION',
  'DEVPATH',
  'SUBSYSTEM',
  'SEQNUM',
  'MAJOR',
  'MINOR',
  'DEVNAME',
  'DEVTYPE',
  'DRIVER',
  'MODALIAS',
  'ID_FS_UUID',
  'ID_SERIAL',
  'USEC_INITIALIZED',
  'TAGS',
  'CURRENT_TAGS',
  'DEVLINKS',
  'SYSTEMD_WANTS',
] as const;

/** Keys: valid ones, or (dirty) also libudev-only spellings and junk. */
const keyArbitrary = (dirty: boolean): fc.Arbitrary<string> =>
  dirty
    ? fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...KNOWN_KEYS, 'net.ifnames', 'ID_NET_NAME:x') },
        { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 8 }) },
      )
    : fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...KNOWN_KEYS.slice(4)) },
        { weight: 1, arbitrary: fc.stringMatching(/^[A-Z_]{1,12}$/) },
      );

const CLEAN_VALUES = [
  'block',
  'disk',
  'partition',
  'loop0',
  'bus/usb/001/002',
  '/dev/loop0',
  '7',
  '0',
  ':systemd:',
  'ü€😀',
  'a b',
];
const DIRTY_VALUES = [
  '',
  '..',
  '/../x',
  'a/../b',
  '18446744073709551615',
  '9007199254740993',
  '01',
  '-1',
  '0x10',
];

/** Values: printable ones, or (dirty) also edge cases, control bytes and bad UTF-8. */
const valueArbitrary = (dirty: boolean): fc.Arbitrary<Buffer> =>
  dirty
    ? fc.oneof(
        {
          weight: 4,
          arbitrary: fc.constantFrom(...CLEAN_VALUES, ...DIRTY_VALUES).map((s) => Buffer.from(s)),
        },
        { weight: 2, arbitrary: fc.nat().map((n) => Buffer.from(String(n))) },
        { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => Buffer.from(s)) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)) },
      )
    : fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...CLEAN_VALUES).map((s) => Buffer.from(s)) },
        { weight: 1, arbitrary: fc.nat(1 << 20).map((n) => Buffer.from(String(n))) },
        { weight: 1, arbitrary: fc.stringMatching(/^[ -~]{0,30}$/).map((s) => Buffer.from(s)) },
      );

const devpathArbitrary = (dirty: boolean): fc.Arbitrary<string> => {
  const valid = fc
    .array(fc.stringMatching(/^[a-z0-9:@.\-_]{1,10}$/), { minLength: 1, maxLength: 6 })
    .map((parts) => '/' + parts.join('/'));
  return dirty
    ? fc.oneof(valid, fc.constantFrom('/devices/soc@0/tty', '', 'devices/x', '/a/../b', '/..', '/a\nb'))
    : valid;
};

interface MessageShape {
  action: string;
  devpath: string;
  /** Required keys consistent with the header (each may be left out or made to disagree). */
  required: { key: string; value: Buffer; keep: boolean }[];
  extra: [string, Buffer][];
  /** libudev header fields: undefined means "correct". */
  headerSize?: number;
  propertiesOff?: number;
  propertiesLen?: number;
  noTrailingNul: boolean;
}

const HEADER_FIELD = fc.option(
  fc.oneof(fc.constantFrom(0, 1, 39, 40, 41, 0x7fffffff, 0x80000000, 0xffffffff), fc.nat(9000)),
  { freq: 5 },
);

/** A message's parts; clean shapes parse (mostly), dirty ones break one or more rules. */
const shapeArbitrary = (dirty: boolean): fc.Arbitrary<MessageShape> =>
  fc
    .record({
      action: dirty
        ? fc.oneof(
            { weight: 5, arbitrary: fc.constantFrom(...UEVENT_ACTIONS) },
            fc.constantFrom('', 'ADD', 'mov'),
          )
        : fc.constantFrom(...UEVENT_ACTIONS),
      devpath: devpathArbitrary(dirty),
      subsystem: valueArbitrary(dirty),
      seqnum: dirty ? valueArbitrary(true) : fc.nat().map((n) => Buffer.from(String(n))),
      drop: dirty ? fc.nat(5) : fc.constant(4),
      disagree: dirty ? fc.nat(4) : fc.constant(4),
      extra: dirty
        ? fc.array(fc.tuple(keyArbitrary(true), valueArbitrary(true)), { maxLength: 10 })
        : fc.uniqueArray(fc.tuple(keyArbitrary(false), valueArbitrary(false)), {
            maxLength: 10,
            selector: ([k]) => k,
          }),
      headerSize: dirty ? HEADER_FIELD : fc.constant(null),
      propertiesOff: dirty ? HEADER_FIELD : fc.constant(null),
      propertiesLen: dirty ? HEADER_FIELD : fc.constant(null),
    })
    .map((r) => {
      const required = [
        { key: 'ACTION', value: Buffer.from(r.disagree === 0 ? 'change' : r.action), keep: r.drop !== 0 },
        { key: 'DEVPATH', value: Buffer.from(r.disagree === 1 ? '/x' : r.devpath), keep: r.drop !== 1 },
        { key: 'SUBSYSTEM', value: r.subsystem, keep: r.drop !== 2 },
        { key: 'SEQNUM', value: r.seqnum, keep: r.drop !== 3 },
      ];
      return {
        action: r.action,
        devpath: r.devpath,
        required,
        // Required keys come first; an extra one of the same name is a duplicate (dirty only).
        extra: dirty
          ? r.extra
          : r.extra.filter(([k]) => !['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SEQNUM'].includes(k)),
        headerSize: r.headerSize ?? undefined,
        propertiesOff: r.propertiesOff ?? undefined,
        propertiesLen: r.propertiesLen ?? undefined,
        noTrailingNul: r.disagree === 2,
      };
    });

function properties(s: MessageShape): Buffer {
  const parts: Buffer[] = [];
  for (const r of s.required) if (r.keep) parts.push(Buffer.from(`${r.key}=`), r.value, Buffer.from([0]));
  for (const [k, v] of s.extra) parts.push(Buffer.from(`${k}=`), v, Buffer.from([0]));
  return Buffer.concat(parts);
}

function kernelMessage(s: MessageShape): Buffer {
  const b = Buffer.concat([Buffer.from(`${s.action}@${s.devpath}\0`), properties(s)]);
  return s.noTrailingNul ? b.subarray(0, -1) : b;
}

function writeU32(buf: Buffer, value: number, offset: number): void {
  if (LE) buf.writeUInt32LE(value >>> 0, offset);
  else buf.writeUInt32BE(value >>> 0, offset);
}

function libudevMessage(s: MessageShape): Buffer {
  const props = properties(s);
  const header = Buffer.alloc(LIBUDEV_HEADER_BYTES);
  LIBUDEV_PREFIX.copy(header, 0);
  header.writeUInt32BE(0xfeedcafe, 8);
  writeU32(header, s.headerSize ?? LIBUDEV_HEADER_BYTES, 12);
  writeU32(header, s.propertiesOff ?? LIBUDEV_HEADER_BYTES, 16);
  writeU32(header, s.propertiesLen ?? props.length, 20);
  const b = Buffer.concat([header, props]);
  return s.noTrailingNul ? b.subarray(0, -1) : b;
}

// ---- the contract ------------------------------------------------------------------------------

function checkResult(result: UeventParseResult, input: Buffer, source: UeventSource): void {
  if (typeof result !== 'object' || result === null) violation('result is not an object');
  if (!result.ok) {
    if (result.ok !== false) violation('ok is not a boolean');
    const e = result.error;
    if (!CODES.has(e.code)) violation(`undocumented error code ${String(e.code)}`);
    if (typeof e.message !== 'string' || e.message === '') violation(`${e.code}: empty message`);
    if (e.offset !== undefined && !(Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= input.length))
      violation(`${e.code}: offset ${e.offset} outside the ${input.length}-byte message`);
    return;
  }
  const e = result.event;
  const p = e.properties;
  if (e.source !== source) violation(`source ${e.source}, expected ${source}`);
  if (!ACTIONS.has(e.action) || p.get('ACTION') !== e.action) violation(`action ${JSON.stringify(e.action)}`);
  if (!e.devpath.startsWith('/') || e.devpath.split('/').includes('..')) violation(`devpath ${e.devpath}`);
  if (p.get('DEVPATH') !== e.devpath) violation('DEVPATH property differs from the field');
  if (e.subsystem === '' || p.get('SUBSYSTEM') !== e.subsystem) violation('subsystem');
  if (!Number.isSafeInteger(e.seqnum) || e.seqnum < 0 || Number(p.get('SEQNUM')) !== e.seqnum)
    violation('seqnum');
  for (const n of [e.major, e.minor])
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff))
      violation(`major/minor ${n}`);
  if (e.devname !== p.get('DEVNAME')) violation('DEVNAME property differs from the field');
  if (e.devname !== undefined && (!e.devname.startsWith('/') || e.devname.split('/').includes('..')))
    violation(`devname ${e.devname}`);
  if (e.devtype !== p.get('DEVTYPE')) violation('DEVTYPE property differs from the field');
  for (const [k, v] of p) {
    if (!(source === 'udev' ? UDEV_KEY_RE : KEY_RE).test(k)) violation(`key ${JSON.stringify(k)}`);
    if (CONTROL_RE.test(v)) violation(`control character in the value of ${k}`);
    if (v.includes('\ufffd') && !input.includes(Buffer.from('\ufffd')))
      violation(`${k}: invalid UTF-8 let through`);
  }
}

interface NetlinkInput {
  buffer: Buffer;
  senderPort: number;
  uid: number;
}

const sender = fc.record({
  senderPort: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.constantFrom(1, 4242, 0xffffffff)),
  uid: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.constantFrom(1000, 65534, 0xffffffff)),
});

function checkNetlink(input: NetlinkInput, expect: 'kernel' | 'udev', tally: Tally): void {
  const direct = expect === 'kernel' ? parseKernelUevent(input.buffer) : parseLibudevMessage(input.buffer);
  checkResult(direct, input.buffer, expect);
  tally.add(direct.ok ? 'ok' : direct.error.code);
  const viaNetlink = parseNetlinkMessage(
    {
      kind: 'message',
      buffer: input.buffer,
      senderPort: input.senderPort,
      senderGroups: 1,
      uid: input.uid,
      gid: 0,
      pid: 1,
    },
    expect,
  );
  checkResult(viaNetlink, input.buffer, expect);
  const trusted = input.uid === 0 && (expect === 'udev' || input.senderPort === 0);
  if (!trusted && (viaNetlink.ok || viaNetlink.error.code !== 'ERR_UEVENT_UNTRUSTED_SENDER'))
    violation(`message from port ${input.senderPort} uid ${input.uid} was not refused as untrusted`);
  if (trusted && viaNetlink.ok !== direct.ok)
    violation('parseNetlinkMessage disagrees with the direct parse');
  // Pure: the same bytes give the same answer.
  const again = expect === 'kernel' ? parseKernelUevent(input.buffer) : parseLibudevMessage(input.buffer);
  if (again.ok !== direct.ok || (!again.ok && !direct.ok && again.error.code !== direct.error.code))
    violation('not deterministic');
}

function messageArbitrary(options: CorpusOptions, format: 'kernel' | 'udev'): fc.Arbitrary<Buffer> {
  const { kernel, udev } = recorded(options);
  const encode = format === 'kernel' ? kernelMessage : libudevMessage;
  const otherFormat = shapeArbitrary(true).map(format === 'kernel' ? libudevMessage : kernelMessage);
  return fc.oneof(
    { weight: 3, arbitrary: shapeArbitrary(false).map(encode) },
    { weight: 3, arbitrary: shapeArbitrary(true).map(encode) },
    { weight: 4, arbitrary: mutantArbitrary(format === 'kernel' ? kernel : udev) },
    { weight: 2, arbitrary: mutantArbitrary([...kernel, ...udev]) },
    { weight: 1, arbitrary: otherFormat },
    { weight: 2, arbitrary: randomBytesArbitrary() },
  );
}

export const ueventKernelTarget = (options: CorpusOptions) =>
  defineTarget<NetlinkInput>({
    name: 'uevent-kernel',
    about: 'parseKernelUevent / parseNetlinkMessage(kernel): ACTION@DEVPATH messages, near-valid and mutated',
    arbitrary: () =>
      fc
        .tuple(messageArbitrary(options, 'kernel'), sender)
        .map(([buffer, s]) => ({ buffer, senderPort: s.senderPort, uid: s.uid })),
    check: (input, tally) => checkNetlink(input, 'kernel', tally),
    size: (input) => input.buffer.length,
    show: (input) => `port ${input.senderPort} uid ${input.uid} ${showBytes(input.buffer)}`,
  });

export const ueventLibudevTarget = (options: CorpusOptions) =>
  defineTarget<NetlinkInput>({
    name: 'uevent-libudev',
    about:
      'parseLibudevMessage / parseNetlinkMessage(udev): "libudev\\0" monitor messages with lying headers',
    arbitrary: () =>
      fc
        .tuple(messageArbitrary(options, 'udev'), sender)
        .map(([buffer, s]) => ({ buffer, senderPort: s.senderPort, uid: s.uid })),
    check: (input, tally) => checkNetlink(input, 'udev', tally),
    size: (input) => input.buffer.length,
    show: (input) => `port ${input.senderPort} uid ${input.uid} ${showBytes(input.buffer)}`,
  });
