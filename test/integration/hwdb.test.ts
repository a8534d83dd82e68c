// The hwdb builtin against this machine's real hwdb.bin, with systemd's own tools as the oracle:
// `systemd-hwdb query KEY` for lookups (this machine's modaliases, well-known hardware ids, and
// keys made from the match lines of the hwdb.d sources the database was compiled from), and
// `udevadm test-builtin` for the builtin on real devices. Prints the lookup time and the RSS
// cost of opening the database as diagnostics.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BuiltinDevice } from '../../src/devices/builtins/builtin-types';
import { createHwdbBuiltin, createHwdbDatabase, HWDB_PATHS } from '../../src/devices/builtins/hwdb';
import { HwdbTrie } from '../../src/devices/builtins/hwdb-file';
import { builtinDeviceAt, createSysfsHost } from '../../src/devices/builtins/sysfs-host';
import { Prng } from '../helpers/prng';

function hasProgram(name: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) => fs.existsSync(path.join(dir, name)));
}
const hwdbFile = HWDB_PATHS.find((file) => fs.existsSync(file));
const noOracle =
  hwdbFile === undefined
    ? `needs a hwdb.bin (none of ${HWDB_PATHS.join(', ')})`
    : hasProgram('systemd-hwdb')
      ? false
      : 'needs systemd-hwdb (Debian package systemd)';
const uid = process.getuid?.() ?? -1;
const noUdevadm =
  noOracle !== false
    ? noOracle
    : uid !== 0
      ? `needs root for udevadm test-builtin (running as uid ${uid})`
      : hasProgram('udevadm')
        ? false
        : 'needs udevadm (Debian package udev)';

/** Real hardware ids: some in the database, some not, some glob-heavy (PCI classes, evdev). */
const WELL_KNOWN = [
  'usb:v1D6Bp0001*',
  'usb:v1D6Bp0002*',
  'usb:v1D6Bp0003*',
  'usb:v046DpC52Bd1211dc00dsc00dp00ic03isc01ip01in00',
  'usb:v8087p0024d0000dc09dsc00dp01ic09isc00ip00in00',
  'usb:v0BDAp8153*',
  'usb:v05ACp12A8*',
  'usb:v1050p0407*',
  'usb:v0781p5581*',
  'pci:v00008086d00001533sv00008086sd00000000bc02sc00i00',
  'pci:v00008086d00009D2Fsv000017AAsd0000224Fbc0Csc03i30',
  'pci:v000010DEd00001C82sv00001458sd00003FBBbc03sc00i00',
  'pci:v00001002d000067DFsv00001DA2sd0000E366bc03sc00i00',
  'acpi:LEN0071:',
  'acpi:PNP0C0A:',
  'sdio:c00v02D0d4324',
  'bluetooth:v000F',
  'OUI:001B21',
  'dmi:bvnLENOVO:bvrN1CET54W:bd05/08/2017:svnLENOVO:pn20HRCTO1WW:pvrThinkPadX1Carbon5th:',
  'joystick:usb:v045ep028e:name:Microsoft X-Box 360 pad:',
  'touchpad:usb:v05acp0265:name:Apple Inc. Magic Trackpad 2:',
  'mouse:usb:v046dp4069:name:Logitech MX Master 2S:',
  'evdev:input:b0003v046DpC52Be0111-e0,1,2,4,k71,72,73,74,75,r0,1,6,8,a20,m4,lsfw',
  'evdev:atkbd:dmi:bvnLENOVO:bvrN1CET54W(1.21):bd05/08/2017:svnLENOVO:pn20HRCTO1WW:pvrThinkPadX1Carbon5th:',
  'ieee1394:node:ven0x00a0b0units0x00609e:0x010483',
  '',
];

/** The names in a directory; none when it cannot be read. */
function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function machineModaliases(): string[] {
  const found = new Set<string>();
  for (const bus of listDir('/sys/bus')) {
    for (const device of listDir(path.join('/sys/bus', bus, 'devices'))) {
      try {
        const modalias = fs
          .readFileSync(path.join('/sys/bus', bus, 'devices', device, 'modalias'), 'utf8')
          .trim();
        if (modalias !== '') found.add(modalias);
      } catch {
        // No modalias attribute.
      }
    }
  }
  return [...found].sort();
}

/**
 * Keys built from the database's sources: a match line with its globs filled in (or cut short),
 * so the lookups reach deep into the trie and its glob subtrees.
 */
function sourceKeys(seed: number, count: number): string[] {
  const dir = '/usr/lib/udev/hwdb.d';
  let lines: string[] = [];
  try {
    for (const file of fs.readdirSync(dir).sort()) {
      if (!file.endsWith('.hwdb')) continue;
      for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
        if (line !== '' && !line.startsWith(' ') && !line.startsWith('#')) lines.push(line);
      }
    }
  } catch {
    lines = [];
  }
  if (lines.length === 0) return [];
  const prng = new Prng(seed);
  const fills = ['', 'x', '0', ':', 'abc:1234', 'v046D', 'sS'];
  const keys: string[] = [];
  for (let n = 0; n < count; n++) {
    let key = prng
      .pick(lines)
      .replace(/\[([^\]]*)\]/g, (_, members: string) => members.replace(/^[!^]/, '')[0] ?? '')
      .replace(/\*/g, () => prng.pick(fills))
      .replace(/\?/g, 'Z');
    if (prng.int(5) === 0) key = key.slice(0, prng.int(key.length + 1));
    keys.push(key);
  }
  return keys;
}

function systemdHwdbQuery(key: string): string {
  return execFileSync('systemd-hwdb', ['query', key], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

function asQueryOutput(props: Map<string, string>): string {
  return [...props].map(([k, v]) => `${k}=${v}\n`).join('');
}

describe('hwdb against systemd-hwdb query', { skip: noOracle }, () => {
  it('returns what systemd-hwdb returns, in its order, for real and synthesized keys', (t) => {
    const database = createHwdbDatabase();
    t.after(() => database.close());
    const trie = database.current();
    assert.ok(trie instanceof HwdbTrie, !(trie instanceof HwdbTrie) ? trie.message : '');
    const machine = machineModaliases();
    const keys = [...machine, ...WELL_KNOWN, ...sourceKeys(0x6877_6462, 150)];
    let withEntries = 0;
    for (const key of keys) {
      const ours = trie.lookup(key);
      assert.ok(ours instanceof Map, !(ours instanceof Map) ? ours.message : '');
      const expected = systemdHwdbQuery(key);
      if (expected !== '') withEntries++;
      assert.equal(asQueryOutput(ours), expected, `lookup of ${JSON.stringify(key)}`);
    }
    t.diagnostic(
      `${trie.name}: ${keys.length} keys identical to systemd-hwdb (${machine.length} from this machine's ` +
        `/sys/bus/*/devices/*/modalias, ${WELL_KNOWN.length} well-known, the rest from hwdb.d); ` +
        `${withEntries} with entries`,
    );
    assert.ok(withEntries >= 20, `only ${withEntries} keys had entries`);
  });

  it('measures lookup time and the memory cost of opening the database', (t) => {
    // In a fresh process with --expose-gc (and the daemon's --max-semi-space-size=1), so the
    // figures are not this test runner's noise. RSS also counts V8 compiling the code and node's
    // own pages faulted in on first use; arrayBuffers is what the database holds (its pages).
    const script = `
      const { createHwdbDatabase } = require(${JSON.stringify(require.resolve('../../src/devices/builtins/hwdb'))});
      const keys = JSON.parse(process.argv[1]);
      const mem = () => { global.gc(); global.gc(); return process.memoryUsage(); };
      const before = mem();
      const db = createHwdbDatabase();
      const trie = db.current();
      const opened = mem();
      let t0 = process.hrtime.bigint();
      trie.lookup(keys[0]);
      const first = Number(process.hrtime.bigint() - t0) / 1e3;
      const times = [];
      for (let i = 0; i < 1000; i++) {
        const key = keys[i % keys.length];
        t0 = process.hrtime.bigint();
        trie.lookup(key);
        times.push(Number(process.hrtime.bigint() - t0) / 1e3);
      }
      times.sort((a, b) => a - b);
      const checks = [];
      for (let i = 0; i < 1000; i++) {
        t0 = process.hrtime.bigint();
        db.current();
        checks.push(Number(process.hrtime.bigint() - t0) / 1e3);
      }
      checks.sort((a, b) => a - b);
      const after = mem();
      const kib = (a, b, f) => (b[f] - a[f]) / 1024;
      console.log(JSON.stringify({ openRss: kib(before, opened, 'rss'), openBuffers: kib(before, opened, 'arrayBuffers'),
        lookupsRss: kib(opened, after, 'rss'), lookupsBuffers: kib(opened, after, 'arrayBuffers'),
        lookupsHeap: kib(opened, after, 'heapUsed'),
        firstUs: first, medianUs: times[500], p95Us: times[950], changeCheckUs: checks[500] }));`;
    const keys = [...machineModaliases(), ...WELL_KNOWN.filter((k) => k !== '')];
    const flags = ['--expose-gc', '--max-semi-space-size=1'];
    const out = execFileSync(process.execPath, [...flags, '-e', script, JSON.stringify(keys)], {
      encoding: 'utf8',
    });
    const m = JSON.parse(out) as Record<string, number>;
    const f = (n: number | undefined): string => (n ?? NaN).toFixed(1);
    t.diagnostic(
      `lookup over ${keys.length} keys x 1000: median ${f(m['medianUs'])} µs, p95 ${f(m['p95Us'])} µs, ` +
        `first (cold) ${f(m['firstUs'])} µs; changed-file check per call ${f(m['changeCheckUs'])} µs`,
    );
    t.diagnostic(
      `open: RSS +${f(m['openRss'])} KiB, buffers +${f(m['openBuffers'])} KiB; then 1000 lookups: ` +
        `RSS +${f(m['lookupsRss'])} KiB, buffers +${f(m['lookupsBuffers'])} KiB (the page cache), ` +
        `heap +${f(m['lookupsHeap'])} KiB; the file (${fs.statSync(hwdbFile!).size} bytes) is never read whole`,
    );
  });
});

describe('the hwdb builtin against udevadm test-builtin', { skip: noUdevadm }, () => {
  /** udevadm test-builtin's properties, or undefined when the builtin failed. */
  function udevadm(command: string, syspath: string): Record<string, string> | undefined {
    let out: string;
    try {
      out = execFileSync('udevadm', ['test-builtin', command, syspath], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      return undefined;
    }
    const props: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return props;
  }

  function devicesWithModalias(): BuiltinDevice[] {
    const found = new Map<string, BuiltinDevice>();
    for (const top of ['/sys/bus', '/sys/class']) {
      for (const group of listDir(top)) {
        const dir = top === '/sys/bus' ? path.join(top, group, 'devices') : path.join(top, group);
        for (const name of listDir(dir)) {
          const device = builtinDeviceAt(path.join(dir, name));
          if (device !== undefined && device.properties.has('MODALIAS')) found.set(device.syspath, device);
        }
      }
    }
    return [...found.values()];
  }

  it('imports the same properties for every device with a MODALIAS', async (t) => {
    const database = createHwdbDatabase();
    t.after(() => database.close());
    const builtin = createHwdbBuiltin(database);
    const host = createSysfsHost();
    const devices = devicesWithModalias();
    let compared = 0;
    for (const device of devices) {
      for (const command of ['hwdb', `hwdb --subsystem=${device.subsystem}`]) {
        const expected = udevadm(command, device.syspath);
        const result = await builtin(command.split(' '), device, host);
        const ours = result.ok ? Object.fromEntries(result.properties) : undefined;
        assert.deepEqual(ours, expected, `${command} on ${device.syspath}`);
        if (!result.ok) assert.equal(result.code, 'ENODATA', result.message);
        compared++;
      }
    }
    t.diagnostic(`${compared} builtin runs on ${devices.length} devices identical to udevadm test-builtin`);
  });
});
