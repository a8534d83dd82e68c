// The hwdb builtin on small hwdb.bin files written by test/helpers/hwdb-writer: fnmatch as glibc
// does it, the trie lookup (exact, glob, precedence, both value entry formats, a page cache so
// small that every record straddles pages), udev's argument forms and parent walk, and corrupt
// files that must give an error naming the file, never a throw or a hang.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BuiltinDevice, BuiltinHost, BuiltinResult } from '../../src/devices/builtins/builtin-types';
import {
  createHwdbBuiltin,
  createHwdbDatabase,
  parseHwdbArgs,
  usbModalias,
  type HwdbArgs,
} from '../../src/devices/builtins/hwdb';
import {
  BufferSource,
  ERR_HWDB_CORRUPT,
  HwdbTrie,
  openHwdbFile,
  type HwdbError,
} from '../../src/devices/builtins/hwdb-file';
import { couldMatchWithPrefix, fnmatch } from '../../src/devices/builtins/hwdb-glob';
import { buildHwdb, type HwdbTestEntry } from '../helpers/hwdb-writer';
import { Prng } from '../helpers/prng';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-hwdb-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let fileCounter = 0;

function writeDb(bytes: Buffer): string {
  const file = path.join(tmp, `hwdb-${++fileCounter}.bin`);
  fs.writeFileSync(file, bytes);
  return file;
}

function trieOf(bytes: Buffer, name = 'test.bin'): HwdbTrie {
  const trie = HwdbTrie.open(new BufferSource(bytes), name);
  assert.ok(trie instanceof HwdbTrie, !(trie instanceof HwdbTrie) ? trie.message : '');
  return trie;
}

function entriesOf(result: Map<string, string> | HwdbError): [string, string][] {
  assert.ok(result instanceof Map, !(result instanceof Map) ? result.message : '');
  return [...result];
}

function props(result: BuiltinResult): Record<string, string> | string {
  return result.ok ? Object.fromEntries(result.properties) : `${result.code}: ${result.message}`;
}

describe('fnmatch (glibc, C locale)', () => {
  const cases: [pattern: string, text: string, expected: boolean, noEscape?: boolean][] = [
    ['usb:v*', 'usb:v1D6Bp0002', true],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['*bc02sc00*', 'pci:v1bc02sc00i00', true],
    ['?', '', false],
    ['a?c', 'abc', true],
    ['[sS]erial', 'Serial', true],
    ['[sS]erial', 'xerial', false],
    ['[!a]x', 'ax', false],
    ['[!a]x', 'bx', true],
    ['[^a]x', 'bx', true],
    ['[a-c]', 'b', true],
    ['[a-c]', 'd', false],
    ['[c-a]', 'b', false],
    ['[]a]', ']', true],
    ['[!]a]', 'b', true],
    ['[a-]', '-', true],
    ['[[:digit:]]x', '5x', true],
    ['[[:alpha:]]', '5', false],
    ['[[:xdigit:]][[:upper:]]', 'fA', true],
    ['[[:nope:]]', 'a', false],
    ['[[=a=]]', 'a', true],
    ['[[.-.]]', '-', true],
    ['[.-.]', '-', false],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['a\\', 'a\\', false],
    ['[ab', '[ab', true],
    ['[ab', 'a', false],
    ['[\\]]', ']', true],
    ['*/x', 'a/b/x', true],
    ['.*', '.hidden', true],
    ['ID_\\*', 'ID_\\x', true, true],
    ['ID_\\*', 'ID_*', false, true],
    ['ID_MODEL*', 'ID_MODEL_FROM_DATABASE', true, true],
  ];
  for (const [pattern, text, expected, noEscape] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(text)}`, () => {
      assert.equal(fnmatch(pattern, text, noEscape ?? false), expected);
    });
  }

  it('never prunes a prefix of a pattern that matches (seeded fuzz)', () => {
    const seed = 0x4857_4442;
    const prng = new Prng(seed);
    const pieces = [
      'a',
      'b',
      '1',
      '*',
      '?',
      '[ab]',
      '[!b]',
      '[',
      ']',
      '-',
      '\\',
      '\\*',
      '[[:digit:]]',
      '[]a]',
    ];
    for (let n = 0; n < 3000; n++) {
      let pattern = '';
      for (let k = prng.int(7); k >= 0; k--) pattern += prng.pick(pieces);
      let text = '';
      for (let k = prng.int(6); k > 0; k--) text += prng.pick(['a', 'b', '1', '[', ']', '-', '*', '\\']);
      if (!fnmatch(pattern, text)) continue;
      for (let cut = 0; cut <= pattern.length; cut++) {
        assert.ok(
          couldMatchWithPrefix(pattern.slice(0, cut), text),
          `seed ${seed}: ${JSON.stringify(pattern)} matches ${JSON.stringify(text)}, prefix ${cut} pruned`,
        );
      }
    }
  });
});

const ENTRIES: HwdbTestEntry[] = [
  { match: 'usb:v1D6B*', props: [['ID_VENDOR_FROM_DATABASE', 'Linux Foundation']] },
  { match: 'usb:v1D6Bp0002*', props: [['ID_MODEL_FROM_DATABASE', '2.0 root hub']] },
  { match: 'usb:v1D6Bp0003', props: [['ID_MODEL_FROM_DATABASE', '3.0 root hub']] },
  { match: 'usb:v046DpC52B*', props: [['ID_VENDOR_FROM_DATABASE', 'Logitech, Inc.']] },
  { match: 'pci:v*d*sv*sd*bc02sc00*', props: [['ID_PCI_SUBCLASS_FROM_DATABASE', 'Ethernet controller']] },
  { match: 'input:b0003v?p*', props: [['ID_QUESTION', 'yes']] },
  { match: 'evdev:name:[sS]erial*', props: [['ID_SERIAL_MOUSE', '1']] },
  { match: 'id-input:modalias:input:b0003*', props: [['ID_INPUT_USB', '1']] },
  { match: 'dmi:bvn*:pnÜber*', props: [['ID_UNICODE', 'größe']] },
  // Precedence: higher file priority first, then the later line, whatever the specificity.
  { match: 'kbd:x*', props: [['KEYA', 'specific, low priority']], priority: 10, line: 5 },
  { match: 'kbd:*', props: [['KEYA', 'general, high priority']], priority: 20, line: 1 },
  { match: 'kbd:xy', props: [['KEYB', 'exact, later line']], priority: 10, line: 9 },
  { match: 'kbd:x*', props: [['KEYB', 'glob, earlier line']], priority: 10, line: 3 },
  // A glob node with children, for the cycle test.
  { match: 'cyc:*a1', props: [['C', '1']] },
  { match: 'cyc:*a2', props: [['C', '2']] },
];

describe('the hwdb trie', () => {
  const image = buildHwdb(ENTRIES);
  const viaBuffer = trieOf(image.bytes);
  // Pages of 16 bytes, two of them: every node and most strings straddle pages.
  const opened = openHwdbFile(writeDb(image.bytes), { pageSize: 16, pages: 2 });
  assert.ok('trie' in opened);
  after(() => opened.close());

  for (const [label, trie] of [
    ['in a Buffer', viaBuffer],
    ['through a tiny page cache', opened.trie],
  ] as const) {
    describe(label, () => {
      it('finds an exact match, after the globs along the way', () => {
        assert.deepEqual(entriesOf(trie.lookup('usb:v1D6Bp0003')), [
          ['ID_VENDOR_FROM_DATABASE', 'Linux Foundation'],
          ['ID_MODEL_FROM_DATABASE', '3.0 root hub'],
        ]);
      });

      it('matches globs in prefixes and as child characters', () => {
        assert.deepEqual(entriesOf(trie.lookup('usb:v1D6Bp0002d0510dc09dsc00dp01ic09isc00ip00in00')), [
          ['ID_VENDOR_FROM_DATABASE', 'Linux Foundation'],
          ['ID_MODEL_FROM_DATABASE', '2.0 root hub'],
        ]);
        assert.deepEqual(entriesOf(trie.lookup('usb:v046DpC52B')), [
          ['ID_VENDOR_FROM_DATABASE', 'Logitech, Inc.'],
        ]);
        assert.deepEqual(entriesOf(trie.lookup('pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00')), [
          ['ID_PCI_SUBCLASS_FROM_DATABASE', 'Ethernet controller'],
        ]);
        assert.deepEqual(entriesOf(trie.lookup('pci:v00001AF4d00001041sv00001AF4sd00001041bc01sc00i00')), []);
        assert.deepEqual(entriesOf(trie.lookup('input:b0003v1p77')), [['ID_QUESTION', 'yes']]);
        assert.deepEqual(entriesOf(trie.lookup('input:b0003v12p77')), []);
        assert.deepEqual(entriesOf(trie.lookup('evdev:name:serial mouse')), [['ID_SERIAL_MOUSE', '1']]);
        assert.deepEqual(entriesOf(trie.lookup('evdev:name:Serial')), [['ID_SERIAL_MOUSE', '1']]);
        assert.deepEqual(entriesOf(trie.lookup('evdev:name:xerial')), []);
      });

      it('matches UTF-8 bytes and returns UTF-8 values', () => {
        assert.deepEqual(entriesOf(trie.lookup('dmi:bvnACME:pnÜberbook:')), [['ID_UNICODE', 'größe']]);
      });

      it('finds nothing for unknown keys, prefixes of keys and the empty key', () => {
        assert.deepEqual(entriesOf(trie.lookup('usb:v0000p0000')), []);
        assert.deepEqual(entriesOf(trie.lookup('usb:v1D6')), []);
        assert.deepEqual(entriesOf(trie.lookup('')), []);
        assert.deepEqual(
          entriesOf(trie.lookup('usb:v1D6Bp0003\0extra')),
          entriesOf(trie.lookup('usb:v1D6Bp0003')),
        );
      });

      it('lets file priority, then line number decide between entries setting one key', () => {
        // A key keeps the place where it was first found ('kbd:*' is walked before 'kbd:x...').
        assert.deepEqual(entriesOf(trie.lookup('kbd:xy')), [
          ['KEYA', 'general, high priority'],
          ['KEYB', 'exact, later line'],
        ]);
        assert.deepEqual(entriesOf(trie.lookup('kbd:xz')), [
          ['KEYA', 'general, high priority'],
          ['KEYB', 'glob, earlier line'],
        ]);
      });
    });
  }

  it('in the old format (no priorities) lets the entry found last win: the exact one', () => {
    const old = trieOf(buildHwdb(ENTRIES, 1).bytes);
    assert.equal(old.header.valueEntrySize, 16);
    assert.deepEqual(entriesOf(old.lookup('kbd:xy')), [
      ['KEYA', 'specific, low priority'],
      ['KEYB', 'exact, later line'],
    ]);
  });

  it('skips keys that do not start with a space (reserved for extensions)', () => {
    const bytes = buildHwdb([{ match: 'a', props: [['K', 'v']] }]).bytes;
    const patched = Buffer.from(bytes.toString('latin1').replace(' K\0', '#K\0'), 'latin1');
    assert.deepEqual(entriesOf(trieOf(patched).lookup('a')), []);
  });
});

/** Devices by syspath; parents by path; attributes from a table. */
function memoryHost(
  devices: BuiltinDevice[],
  attrs: Record<string, Record<string, string>> = {},
): BuiltinHost {
  const bySyspath = new Map(devices.map((d) => [d.syspath, d]));
  return {
    readAttr: (syspath, name) => attrs[syspath]?.[name],
    readAttrBytes: () => undefined,
    parent(syspath) {
      for (let dir = path.dirname(syspath); dir !== '/'; dir = path.dirname(dir)) {
        const d = bySyspath.get(dir);
        if (d !== undefined) return d;
      }
      return undefined;
    },
    deviceBySubsystemSysname: (subsystem, sysname) =>
      devices.find((d) => d.subsystem === subsystem && d.sysname === sysname),
    childNames: () => undefined,
  };
}

function dev(syspath: string, subsystem: string, properties: Record<string, string> = {}): BuiltinDevice {
  const d: BuiltinDevice = {
    syspath,
    devpath: syspath.slice('/sys'.length),
    subsystem,
    sysname: path.basename(syspath),
    properties: new Map(Object.entries(properties)),
  };
  const devtype = properties['DEVTYPE'];
  if (devtype !== undefined) d.devtype = devtype;
  return d;
}

describe('the hwdb builtin', () => {
  const file = writeDb(buildHwdb(ENTRIES).bytes);
  const database = createHwdbDatabase({ paths: [path.join(tmp, 'absent.bin'), file] });
  after(() => database.close());
  const builtin = createHwdbBuiltin(database);

  const usbDevice = dev('/sys/devices/pci0/usb1', 'usb', { DEVTYPE: 'usb_device' });
  const usbIface = dev('/sys/devices/pci0/usb1/1-0:1.0', 'usb', {
    DEVTYPE: 'usb_interface',
    MODALIAS: 'usb:v1D6Bp0002d0510dc09dsc00dp01ic09isc00ip00in00',
  });
  const input = dev('/sys/devices/pci0/usb1/1-0:1.0/input/input3', 'input', { MODALIAS: 'input:b0003v1p77' });
  const event = dev('/sys/devices/pci0/usb1/1-0:1.0/input/input3/event3', 'input', {
    DEVNAME: '/dev/input/event3',
  });
  const pci = dev('/sys/devices/pci0', 'pci', { MODALIAS: 'pci:v1d2sv3sd4bc02sc00i00' });
  const host = memoryHost([pci, usbDevice, usbIface, input, event], {
    [usbDevice.syspath]: { idVendor: '1d6b', idProduct: '0003' },
  });
  const run = async (
    argv: string[],
    device: BuiltinDevice = event,
  ): Promise<Record<string, string> | string> => props(await builtin(argv, device, host));

  it('looks up an explicit key, with a filter and a lookup prefix', async () => {
    assert.deepEqual(await run(['hwdb', 'usb:v1D6Bp0002d0001']), {
      ID_VENDOR_FROM_DATABASE: 'Linux Foundation',
      ID_MODEL_FROM_DATABASE: '2.0 root hub',
    });
    assert.deepEqual(await run(['hwdb', '--filter=ID_MODEL*', 'usb:v1D6Bp0002d0001']), {
      ID_MODEL_FROM_DATABASE: '2.0 root hub',
    });
    assert.deepEqual(await run(['hwdb', '-f', 'ID_VENDOR*', 'usb:v1D6Bp0002d0001']), {
      ID_VENDOR_FROM_DATABASE: 'Linux Foundation',
    });
    assert.deepEqual(await run(['hwdb', '--lookup-prefix=evdev:', 'name:Serial mouse']), {
      ID_SERIAL_MOUSE: '1',
    });
  });

  it('fails with ENODATA when nothing (or nothing the filter lets through) matches', async () => {
    assert.match(String(await run(['hwdb', 'usb:v0000p0000'])), /^ENODATA/);
    assert.match(String(await run(['hwdb', '--filter=NOPE*', 'usb:v1D6Bp0002d0001'])), /^ENODATA/);
    assert.match(String(await run(['hwdb'], dev('/sys/devices/virtual/x', 'misc'))), /^ENODATA/);
  });

  it('without a key, walks up to the first device with a MODALIAS that has entries', async () => {
    // event3 has no MODALIAS; input3 has one with entries.
    assert.deepEqual(await run(['hwdb']), { ID_QUESTION: 'yes' });
    assert.deepEqual(await run(['hwdb', '--subsystem=input', '--lookup-prefix=id-input:modalias:']), {
      ID_INPUT_USB: '1',
    });
    // --subsystem=usb: the interface's MODALIAS comes first.
    assert.deepEqual(await run(['hwdb', '--subsystem=usb']), {
      ID_VENDOR_FROM_DATABASE: 'Linux Foundation',
      ID_MODEL_FROM_DATABASE: '2.0 root hub',
    });
    assert.deepEqual(await run(['hwdb', '--subsystem=pci']), {
      ID_PCI_SUBCLASS_FROM_DATABASE: 'Ethernet controller',
    });
  });

  it('composes usb:vVVVVpPPPP* for a USB device and never looks above it', async () => {
    assert.equal(usbModalias('1d6b', '0003'), 'usb:v1D6Bp0003*');
    assert.equal(usbModalias('0x46d', ' c52b'), 'usb:v046DpC52B*');
    assert.equal(usbModalias('12345', '0001'), undefined);
    assert.equal(usbModalias(undefined, '0001'), undefined);
    // 'usb:v1D6Bp0003*' is matched against the patterns: the exact 'usb:v1D6Bp0003' is not one.
    assert.deepEqual(await run(['hwdb', '--subsystem=usb'], usbDevice), {
      ID_VENDOR_FROM_DATABASE: 'Linux Foundation',
    });
    // A USB device without entries ends the walk: the PCI controller above is not asked.
    const lone = dev('/sys/devices/pci0/usb2', 'usb', { DEVTYPE: 'usb_device' });
    const loneHost = memoryHost([pci, lone], { [lone.syspath]: { idVendor: 'ffff', idProduct: 'ffff' } });
    assert.match(String(props(await builtin(['hwdb'], lone, loneHost))), /^ENODATA/);
    assert.deepEqual(props(await builtin(['hwdb'], dev('/sys/devices/pci0/x', 'misc'), loneHost)), {
      ID_PCI_SUBCLASS_FROM_DATABASE: 'Ethernet controller',
    });
  });

  it('reads another device with --device=+subsystem:sysname', async () => {
    assert.deepEqual(await run(['hwdb', '--device=+usb:usb1'], pci), {
      ID_VENDOR_FROM_DATABASE: 'Linux Foundation',
    });
    assert.match(String(await run(['hwdb', '--device=+usb:nope'])), /^ENODEV/);
    assert.match(String(await run(['hwdb', '--device=b8:0'])), /^ERR_BUILTIN_UNAVAILABLE/);
    assert.match(String(await run(['hwdb', '--device=/sys/x'])), /^EINVAL/);
  });

  it('parses arguments as getopt_long does', () => {
    const cases: [string[], HwdbArgs][] = [
      [['hwdb'], {}],
      [['hwdb', 'usb:v1'], { key: 'usb:v1' }],
      [['hwdb', ''], { key: '' }],
      [['hwdb', '--subsystem=usb', '--lookup-prefix=evdev:'], { subsystem: 'usb', lookupPrefix: 'evdev:' }],
      [
        ['hwdb', '--subsys', 'usb', '--look=p:', '-fID_*'],
        { subsystem: 'usb', lookupPrefix: 'p:', filter: 'ID_*' },
      ],
      [['hwdb', 'key', '-s', 'pci', 'second'], { key: 'key', subsystem: 'pci' }],
      [['hwdb', '-xs', 'pci', '--bogus', '--filter'], { subsystem: 'pci' }],
      [['hwdb', '-d+usb:1-1'], { device: '+usb:1-1' }],
      [['hwdb', '--', '--filter=x'], { key: '--filter=x' }],
    ];
    for (const [argv, expected] of cases) assert.deepEqual(parseHwdbArgs(argv), expected, argv.join(' '));
  });

  it('says plainly when there is no database', async () => {
    const none = createHwdbBuiltin(
      createHwdbDatabase({ paths: [path.join(tmp, 'nope-1'), path.join(tmp, 'nope-2')] }),
    );
    const result = await none(['hwdb', 'usb:v1D6Bp0002'], event, host);
    assert.equal(!result.ok && result.code, 'ERR_BUILTIN_UNAVAILABLE');
    assert.match(!result.ok ? result.message : '', /no hardware database .*nope-1, .*nope-2/);
  });

  it('reopens the database when the file is replaced, looking at most once a second', async () => {
    const live = path.join(tmp, 'live.bin');
    fs.writeFileSync(live, buildHwdb([{ match: 'k', props: [['V', 'old']] }]).bytes);
    let clock = 0;
    const db = createHwdbDatabase({ paths: [live], now: () => clock });
    const b = createHwdbBuiltin(db);
    const lookup = async (): Promise<Record<string, string> | string> =>
      props(await b(['hwdb', 'k'], event, host));
    assert.deepEqual(await lookup(), { V: 'old' });
    const first = db.current();
    clock += 5000;
    assert.equal(db.current(), first, 'an unchanged file is not reopened');
    fs.writeFileSync(`${live}.new`, buildHwdb([{ match: 'k', props: [['V', 'new']] }]).bytes);
    fs.renameSync(`${live}.new`, live);
    clock += 999;
    assert.deepEqual(await lookup(), { V: 'old' }, 'not looked at again within the second');
    clock += 1;
    assert.deepEqual(await lookup(), { V: 'new' });
    fs.rmSync(live);
    clock += 1000;
    assert.match(String(await lookup()), /^ERR_BUILTIN_UNAVAILABLE/);
    db.close();
  });
});

describe('corrupt databases', () => {
  const image = buildHwdb(ENTRIES);

  function openBytes(bytes: Buffer): { file: string; result: HwdbTrie | HwdbError } {
    const file = writeDb(bytes);
    const opened = openHwdbFile(file);
    if ('trie' in opened) {
      after(() => opened.close());
      return { file, result: opened.trie };
    }
    return { file, result: opened };
  }

  function assertCorrupt(result: unknown, file: string, what: RegExp): void {
    const error = result as HwdbError;
    assert.equal(error.ok, false, 'expected an error');
    assert.equal(error.code, ERR_HWDB_CORRUPT);
    assert.ok(error.message.includes(file), `${error.message} names ${file}`);
    assert.match(error.message, what);
  }

  it('rejects a bad signature, a short file and a truncated one', () => {
    const bad = Buffer.from(image.bytes);
    bad.write('XXXX', 0, 'latin1');
    let o = openBytes(bad);
    assertCorrupt(o.result, o.file, /signature/);
    o = openBytes(image.bytes.subarray(0, 40));
    assertCorrupt(o.result, o.file, /too short/);
    o = openBytes(image.bytes.subarray(0, image.bytes.length - 7));
    assertCorrupt(o.result, o.file, /truncated/);
    o = openBytes(Buffer.alloc(0));
    assertCorrupt(o.result, o.file, /too short/);
  });

  it('rejects impossible record sizes and a root outside the file', () => {
    const small = Buffer.from(image.bytes);
    small.writeBigUInt64LE(8n, 32); // node size
    let o = openBytes(small);
    assertCorrupt(o.result, o.file, /record sizes/);
    const root = Buffer.from(image.bytes);
    root.writeBigUInt64LE(BigInt(image.bytes.length + 100), 56);
    o = openBytes(root);
    assertCorrupt(o.result, o.file, /node offset .* out of range/);
    const huge = Buffer.from(image.bytes);
    huge.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 56);
    o = openBytes(huge);
    assertCorrupt(o.result, o.file, /out of range/);
  });

  /** The child entry for `c` of the node reached by `nodePath`. */
  function childEntry(nodePath: string, c: string): number {
    const node = image.nodes.get(nodePath);
    assert.ok(node !== undefined, `no node ${nodePath}: ${[...image.nodes.keys()].join(' | ')}`);
    const entry = node.children.find((e) => e.c === c);
    assert.ok(entry !== undefined, `no child ${c} below ${nodePath}`);
    return entry.entryOffset;
  }

  it('reports child offsets out of range when a lookup reaches them', () => {
    const bytes = Buffer.from(image.bytes);
    bytes.writeBigUInt64LE(BigInt(bytes.length - 4), childEntry('', 'u') + 8);
    const o = openBytes(bytes);
    assert.ok(o.result instanceof HwdbTrie);
    assertCorrupt(o.result.lookup('usb:v1D6Bp0002'), o.file, /node .* (out of range|past the end)/);
    // Other branches still answer.
    assert.deepEqual(entriesOf(o.result.lookup('kbd:xy')).length, 2);
  });

  it('stops on a cycle below a glob instead of looping', () => {
    // The node reached by 'c' has the prefix 'yc:*a' and children '1' and '2': point '1' back
    // at it, and look up a key that keeps every pattern on the cycle a possible match.
    assert.equal(image.nodes.get('cyc:*a')!.prefix, 'yc:*a');
    const bytes = Buffer.from(image.bytes);
    bytes.writeBigUInt64LE(BigInt(image.nodes.get('cyc:*a')!.offset), childEntry('cyc:*a', '1') + 8);
    const o = openBytes(bytes);
    assert.ok(o.result instanceof HwdbTrie);
    assertCorrupt(o.result.lookup(`cyc:${'a1yc:'.repeat(500)}`), o.file, /cyclic|longer than/);
    assert.deepEqual(entriesOf(o.result.lookup('cyc:xa2')), [['C', '2']]);
  });

  it('ends a walk whose exact path loops back to the root', () => {
    const bytes = Buffer.from(image.bytes);
    bytes.writeBigUInt64LE(BigInt(image.rootOffset), childEntry('', 'k') + 8);
    const trie = trieOf(bytes);
    const result = trie.lookup('kbd:xy'.repeat(50));
    assert.ok(result instanceof Map || result.code === ERR_HWDB_CORRUPT);
  });

  it('reports string offsets out of range and strings without an end', () => {
    const bytes = Buffer.from(image.bytes);
    bytes.writeBigUInt64LE(BigInt(bytes.length + 1), image.rootOffset);
    let o = openBytes(bytes);
    assert.ok(o.result instanceof HwdbTrie);
    assertCorrupt(o.result.lookup('usb:v1D6Bp0002'), o.file, /string offset/);
    const unterminated = Buffer.from(image.bytes);
    unterminated[unterminated.length - 1] = 0x41;
    o = openBytes(unterminated);
    assert.ok(o.result instanceof HwdbTrie);
    // The last string written is the last value's filename; the value before it still reads.
    const all = ['usb:v1D6Bp0003', 'kbd:xy', 'kbd:xz', 'dmi:bvnX:pnÜber'].map(
      (k) => o.result instanceof HwdbTrie && o.result.lookup(k),
    );
    assert.ok(all.every((r) => r instanceof Map || (r !== false && r.code === ERR_HWDB_CORRUPT)));
  });

  it('turns a corrupt file into a failed builtin, never a throw', async () => {
    const bad = Buffer.from(image.bytes);
    bad.writeBigUInt64LE(BigInt(bad.length - 4), childEntry('', 'u') + 8);
    const file = writeDb(bad);
    const db = createHwdbDatabase({ paths: [file] });
    after(() => db.close());
    const result = await createHwdbBuiltin(db)(
      ['hwdb', 'usb:v1D6Bp0002'],
      dev('/sys/devices/x', 'usb'),
      memoryHost([]),
    );
    assert.equal(!result.ok && result.code, ERR_HWDB_CORRUPT);
    assert.ok(!result.ok && result.message.includes(file));
    const sig = writeDb(Buffer.from('KSLPHHRX' + 'x'.repeat(100)));
    const db2 = createHwdbDatabase({ paths: [sig] });
    after(() => db2.close());
    const result2 = await createHwdbBuiltin(db2)(['hwdb', 'x'], dev('/sys/devices/x', 'usb'), memoryHost([]));
    assert.equal(!result2.ok && result2.code, ERR_HWDB_CORRUPT);
  });

  it('survives random corruption: every lookup returns a result or an error (seeded fuzz)', () => {
    const seed = 0x0bad_d0b;
    const prng = new Prng(seed);
    const keys = ['usb:v1D6Bp0002d1', 'usb:v1D6Bp0003', 'pci:v1d2bc02sc00', 'kbd:xy', 'input:b0003v1p7', ''];
    for (let n = 0; n < 400; n++) {
      const bytes = Buffer.from(image.bytes);
      for (let k = 1 + prng.int(4); k > 0; k--) {
        const at = 80 + prng.int(bytes.length - 80);
        bytes[at] = prng.int(4) === 0 ? 0 : prng.int(256);
      }
      const trie = HwdbTrie.open(new BufferSource(bytes), 'fuzz.bin');
      if (!(trie instanceof HwdbTrie)) {
        assert.equal(trie.code, ERR_HWDB_CORRUPT, `seed ${seed} run ${n}`);
        continue;
      }
      for (const key of keys) {
        const result = trie.lookup(key);
        assert.ok(
          result instanceof Map || result.code === ERR_HWDB_CORRUPT,
          `seed ${seed} run ${n} key ${key}`,
        );
      }
    }
  });
});
