// The other records the kernel (or udevd) hands over as bytes: autofs v5 packets, inotify and
// fanotify event records, udevd's database files. Each parser documents "never throws"; on top:
// autofs packets are accepted only with a non-zero token and a NUL-terminated name of at most
// 255 bytes; inotify/fanotify records plus the garbled tail account for every byte and the
// overflow flag is exactly "some record says so"; udev database links are under /dev/.
import * as fc from 'fast-check';
import { AUTOFS_PTYPE, encodeAutofsPacket, parseAutofsPacket } from '../../src/mounts/autofs-packets';
import { INOTIFY_HEADER_BYTES, parseInotifyRecords } from '../../src/events/inotify-events';
import { parseFanotifyRecords } from '../../src/events/fanotify-events';
import { parseUdevDbRecord } from '../../src/devices/udev-db';
import { FAN } from '../../src/native/fanotify-addon';
import { IN } from '../../src/native/inotify-addon';
import { encodeFanotifyRecords, fakeFileHandle, type FakeEvent } from '../../test/helpers/fake-fanotify';
import { encodeInotifyRecords } from '../../test/helpers/fake-inotify';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, randomBytesArbitrary, showBytes } from '../mutate';
import { nonEmpty, readFiles, repo, type CorpusOptions } from '../corpus';

type Kind = 'autofs' | 'inotify' | 'fanotify' | 'udev-db';
interface RecordInput {
  kind: Kind;
  bytes: Buffer;
}

const name = fc.oneof(
  fc.stringMatching(/^[a-z0-9._-]{0,20}$/),
  fc.constantFrom('', 'é', 'x'.repeat(255), 'x'.repeat(256)),
);

const autofsPacket: fc.Arbitrary<Buffer> = fc
  .record({
    type: fc.constantFrom(...(Object.keys(AUTOFS_PTYPE) as (keyof typeof AUTOFS_PTYPE)[])),
    token: fc.oneof(fc.nat(), fc.constant(0)),
    name,
    size: fc.constantFrom(304, 300, 299, 44, 0, 1024),
  })
  .map((r) => {
    const type = r.type as Parameters<typeof encodeAutofsPacket>[0]['type'];
    try {
      return encodeAutofsPacket(
        { type, token: r.token, dev: 7, ino: 42n, uid: 0, gid: 0, pid: 1, tgid: 1, name: r.name },
        Math.max(r.size, 300),
      ).subarray(0, r.size);
    } catch {
      return Buffer.alloc(r.size);
    }
  });

const inotifyRecords: fc.Arbitrary<Buffer> = fc
  .array(
    fc.record({
      wd: fc.oneof(fc.integer({ min: -1, max: 64 }), fc.constant(0x7fffffff)),
      mask: fc.oneof(
        fc.constantFrom(IN.CREATE, IN.DELETE, IN.CLOSE_WRITE, IN.Q_OVERFLOW, IN.IGNORED | IN.ISDIR),
        fc.nat(),
      ),
      cookie: fc.nat(),
      name,
    }),
    { maxLength: 6 },
  )
  .map((r) => encodeInotifyRecords(r));

const fanotifyRecords: fc.Arbitrary<Buffer> = fc
  .array(
    fc.record({
      mask: fc.constantFrom(FAN.OPEN, FAN.OPEN_PERM, FAN.CLOSE_WRITE, FAN.Q_OVERFLOW, FAN.ACCESS_PERM),
      fd: fc.integer({ min: -1, max: 1000 }),
      pid: fc.nat(),
      info: fc.array(
        fc.oneof(
          fc.record({
            type: fc.constantFrom(
              'fid' as const,
              'dfid' as const,
              'dfid_name' as const,
              'old_dfid_name' as const,
              'new_dfid_name' as const,
            ),
            handle: fc.nat(1000).map(fakeFileHandle),
            name: fc.option(name, { nil: undefined }),
          }),
          fc.record({ type: fc.constant('pidfd' as const), pidfd: fc.integer({ min: -1, max: 100 }) }),
          fc.record({ type: fc.constant('error' as const), error: fc.nat(200), count: fc.nat() }),
          fc.record({
            type: fc.constant('range' as const),
            offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            count: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          }),
          fc.record({
            type: fc.constant('raw' as const),
            infoType: fc.nat(255),
            body: fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
          }),
        ),
        { maxLength: 3 },
      ),
    }),
    { maxLength: 4 },
  )
  .map((events) => {
    try {
      return encodeFanotifyRecords(events as FakeEvent[]);
    } catch {
      return Buffer.alloc(0);
    }
  });

const udevDb: fc.Arbitrary<Buffer> = fc
  .array(
    fc.tuple(
      fc.constantFrom('S:', 'E:', 'G:', 'Q:', 'I:', 'L:', 'W:', 'V:', 'X', ''),
      fc.constantFrom('disk/by-label/x', 'ID_FS_TYPE=ext4', '=x', 'x=', 'systemd', '1234', '', 'é'),
    ),
    { maxLength: 10 },
  )
  .map((lines) => Buffer.from(lines.map(([k, v]) => k + v).join('\n') + '\n'));

function checkRecords(input: RecordInput, tally: Tally): void {
  const b = input.bytes;
  switch (input.kind) {
    case 'autofs': {
      const p = parseAutofsPacket(b);
      tally.add(`autofs ${p.kind}`);
      if (p.kind === 'packet') {
        if (p.token === 0) violation('autofs packet with token 0');
        if (p.name.length > 255 || p.name.includes('\0')) violation(`autofs name ${JSON.stringify(p.name)}`);
      } else if (p.reason === '' || p.length !== b.length)
        violation(`autofs invalid: ${p.reason} ${p.length}`);
      return;
    }
    case 'inotify': {
      const r = parseInotifyRecords(b);
      tally.add(r.garbledBytes === 0 ? 'inotify whole' : 'inotify garbled');
      if (r.garbledBytes < 0 || r.garbledBytes > b.length) violation(`garbledBytes ${r.garbledBytes}`);
      if (r.records.length * INOTIFY_HEADER_BYTES > b.length - r.garbledBytes)
        violation('more records than bytes');
      if (r.overflow !== r.records.some((x) => (x.mask & IN.Q_OVERFLOW) !== 0)) violation('overflow flag');
      for (const x of r.records) if (x.name.includes('\0')) violation('NUL in an inotify name');
      return;
    }
    case 'fanotify': {
      const r = parseFanotifyRecords(b);
      tally.add(r.records.some((x) => x.garbled) ? 'fanotify garbled record' : 'fanotify clean');
      if (r.garbledBytes < 0 || r.garbledBytes > b.length) violation(`garbledBytes ${r.garbledBytes}`);
      if (r.overflow !== r.records.some((x) => x.overflow)) violation('overflow flag');
      for (const x of r.records) {
        if (!Number.isInteger(x.fd) || !(x.mask >= 0 && x.mask < 2 ** 64))
          violation(`fd ${x.fd} mask ${x.mask}`);
        for (const f of x.fids)
          if (!Buffer.isBuffer(f.handle) || !/^[0-9a-f]{16}$/.test(f.fsid)) violation(`fid ${f.fsid}`);
      }
      return;
    }
    case 'udev-db': {
      const r = parseUdevDbRecord(b.toString('utf8'));
      tally.add(`udev-db ${r.properties.size > 0 ? 'properties' : 'none'}`);
      for (const l of r.devlinks) if (!l.startsWith('/dev/')) violation(`devlink ${l}`);
      for (const k of r.properties.keys()) if (k === '') violation('empty property key');
    }
  }
}

export const kernelRecordsTarget = (options: CorpusOptions) =>
  defineTarget<RecordInput>({
    name: 'kernel-records',
    about:
      'parseAutofsPacket, parseInotifyRecords, parseFanotifyRecords and parseUdevDbRecord on built and mutated records',
    arbitrary: () => {
      const udevFiles = nonEmpty(
        [
          ...readFiles(repo('test/fixtures/udev'), (f) => /db-/.test(f)),
          ...(options.system ? readFiles('/run/udev/data', () => true, 200) : []),
        ],
        'S:disk/by-label/x\nE:ID_FS_TYPE=ext4\nG:systemd\n',
      );
      const of = (kind: Kind, built: fc.Arbitrary<Buffer>, corpus: Buffer[]): fc.Arbitrary<RecordInput> =>
        fc
          .oneof(
            { weight: 4, arbitrary: built },
            {
              weight: 4,
              arbitrary: built.chain((b) =>
                mutantArbitrary([b.length > 0 ? b : Buffer.alloc(1), ...corpus], {
                  hugeSizes: [4097, 65537],
                }),
              ),
            },
            { weight: 1, arbitrary: randomBytesArbitrary([4097]) },
          )
          .map((bytes) => ({ kind, bytes }));
      return fc.oneof(
        of('autofs', autofsPacket, []),
        of('inotify', inotifyRecords, []),
        of('fanotify', fanotifyRecords, []),
        of('udev-db', udevDb, udevFiles),
      );
    },
    check: checkRecords,
    size: (input) => input.bytes.length,
    show: (input) => `${input.kind} ${showBytes(input.bytes)}`,
  });
