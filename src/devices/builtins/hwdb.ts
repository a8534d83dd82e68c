// IMPORT{builtin}="hwdb ...": properties from the compiled hardware database, as udev's hwdb
// builtin (systemd 252) finds them: by an explicit key, or by the MODALIAS of the device or of
// its first ancestor that has one (for a USB device without one, udev composes
// "usb:vVVVVpPPPP*" from idVendor and idProduct). The database is opened on first use and kept
// open; a changed or replaced file (other inode, size or mtime) is reopened, the files being
// looked at again at most once a second (udev looks when it reloads).
import fs = require('node:fs');
import { ERR_BUILTIN_UNAVAILABLE, fail, succeed } from './builtin-errors';
import type { Builtin, BuiltinDevice, BuiltinHost, BuiltinResult } from './builtin-types';
import { fnmatch } from './hwdb-glob';
import { HwdbTrie, openHwdbFile, type HwdbError, type OpenHwdb, type PageCacheOptions } from './hwdb-file';

/**
 * Where systemd 252 looks for hwdb.bin, first found wins (Debian's libsystemd names these), with
 * /usr/lib/udev/hwdb.bin for systems where /lib is not a link to /usr/lib.
 */
export const HWDB_PATHS: readonly string[] = [
  '/etc/systemd/hwdb/hwdb.bin',
  '/etc/udev/hwdb.bin',
  '/usr/lib/systemd/hwdb/hwdb.bin',
  '/lib/systemd/hwdb/hwdb.bin',
  '/usr/lib/udev/hwdb.bin',
  '/lib/udev/hwdb.bin',
];

/** The database as the builtin uses it: the current trie, or why there is none. */
export interface HwdbDatabase {
  current(): HwdbTrie | HwdbError;
  close(): void;
}

export interface HwdbDatabaseOptions {
  paths?: readonly string[];
  cache?: PageCacheOptions;
  /**
   * How long a look at the files stays good (ms, default 1000): a burst of events (coldplug)
   * stats the paths once, and a rebuilt database is still picked up within a second.
   */
  recheckMs?: number;
  /** A monotonic clock in ms (tests pass a virtual one). */
  now?: () => number;
}

/** What identifies one version of the file: a rebuilt hwdb.bin is a new inode or a new mtime. */
function identify(file: string, st: fs.BigIntStats): string {
  return `${file}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeNs}`;
}

/** The first of `paths` that exists, with its stat; undefined when none does. */
function findDatabase(paths: readonly string[]): { file: string; st: fs.BigIntStats } | undefined {
  for (const file of paths) {
    let st: fs.BigIntStats | undefined;
    try {
      st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st !== undefined) return { file, st };
  }
  return undefined;
}

/** Opens the first database file that exists, and reopens it when it changes. */
export function createHwdbDatabase(options: HwdbDatabaseOptions = {}): HwdbDatabase {
  const paths = options.paths ?? HWDB_PATHS;
  const recheckMs = options.recheckMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  let identity: string | undefined;
  let checkedAt = -Infinity;
  let open: OpenHwdb | undefined;
  // Why there is no trie: no file, or one that failed to open (not retried until it changes).
  let failure: HwdbError | undefined;
  const close = (): void => {
    open?.close();
    open = undefined;
    failure = undefined;
    identity = undefined;
    checkedAt = -Infinity;
  };
  const refresh = (): void => {
    const found = findDatabase(paths);
    const id = found === undefined ? '' : identify(found.file, found.st);
    if (id === identity) return;
    close();
    identity = id;
    if (found === undefined) {
      failure = {
        ok: false,
        code: ERR_BUILTIN_UNAVAILABLE,
        message: `hwdb: no hardware database (none of ${paths.join(', ')} exists)`,
      };
      return;
    }
    const opened = openHwdbFile(found.file, options.cache);
    if ('trie' in opened) open = opened;
    else failure = opened;
  };
  return {
    current() {
      const t = now();
      if (t - checkedAt >= recheckMs) {
        refresh();
        checkedAt = t;
      }
      return open?.trie ?? failure!;
    },
    close,
  };
}

export interface HwdbArgs {
  filter?: string;
  device?: string;
  subsystem?: string;
  lookupPrefix?: string;
  /** The first non-option word: an explicit lookup key. */
  key?: string;
}

const LONG_OPTIONS = [
  { name: 'filter', short: 'f' },
  { name: 'device', short: 'd' },
  { name: 'subsystem', short: 's' },
  { name: 'lookup-prefix', short: 'p' },
] as const;
type OptionName = (typeof LONG_OPTIONS)[number]['name'];

/**
 * getopt_long("f:d:s:p:") as udev calls it: long options may be abbreviated, values come as
 * "--filter=X", "--filter X", "-fX" or "-f X"; options and words may be mixed (GNU getopt
 * permutes) and "--" ends the options. Unknown options and options missing their value are
 * ignored, as udev ignores getopt's '?'.
 */
export function parseHwdbArgs(argv: readonly string[]): HwdbArgs {
  const args: HwdbArgs = {};
  const words: string[] = [];
  const set = (name: OptionName, value: string): void => {
    if (name === 'filter') args.filter = value;
    else if (name === 'device') args.device = value;
    else if (name === 'subsystem') args.subsystem = value;
    else args.lookupPrefix = value;
  };
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = word.slice(2, eq < 0 ? undefined : eq);
      const exact = LONG_OPTIONS.find((o) => o.name === name);
      const prefixed = LONG_OPTIONS.filter((o) => o.name.startsWith(name));
      const option = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      if (option === undefined) continue;
      const value = eq >= 0 ? word.slice(eq + 1) : argv[++i];
      if (value !== undefined) set(option.name, value);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      for (let k = 1; k < word.length; k++) {
        const option = LONG_OPTIONS.find((o) => o.short === word[k]);
        if (option === undefined) continue;
        const value = k + 1 < word.length ? word.slice(k + 1) : argv[++i];
        if (value !== undefined) set(option.name, value);
        break;
      }
      continue;
    }
    words.push(word);
  }
  // An empty word is still a key (udev tests argv[optind] for NULL, not for "").
  if (words.length > 0) args.key = words[0]!;
  return args;
}

/** udev's modalias_usb: "usb:v%04Xp%04X*" from idVendor and idProduct (hex, strtoul-style). */
export function usbModalias(idVendor: string | undefined, idProduct: string | undefined): string | undefined {
  const parse = (text: string | undefined): number | undefined => {
    const m = /^[ \t\n\r]*\+?(?:0[xX])?([0-9a-fA-F]+)$/.exec(text ?? '');
    const n = m === null ? undefined : parseInt(m[1]!, 16);
    return n !== undefined && n <= 0xffff ? n : undefined;
  };
  const vendor = parse(idVendor);
  const product = parse(idProduct);
  if (vendor === undefined || product === undefined) return undefined;
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  return `usb:v${hex(vendor)}p${hex(product)}*`;
}

/** The properties for one key, filtered; a corrupt database fails the whole builtin. */
function lookupKey(
  trie: HwdbTrie,
  key: string,
  args: HwdbArgs,
  into: Map<string, string>,
): HwdbError | number {
  const found = trie.lookup((args.lookupPrefix ?? '') + key);
  if (!(found instanceof Map)) return found;
  let n = 0;
  for (const [name, value] of found) {
    if (args.filter !== undefined && !fnmatch(args.filter, name, true)) continue;
    into.set(name, value);
    n++;
  }
  return n;
}

/** sd_device_new_from_device_id, for the form a builtin host can resolve ("+subsystem:sysname"). */
function deviceById(id: string, host: BuiltinHost): BuiltinDevice | BuiltinResult {
  if (id.startsWith('+')) {
    const colon = id.indexOf(':');
    if (colon <= 1 || colon === id.length - 1) return fail('EINVAL', `hwdb: bad device id '${id}'`);
    const found = host.deviceBySubsystemSysname(id.slice(1, colon), id.slice(colon + 1));
    return found ?? fail('ENODEV', `hwdb: no device '${id}'`);
  }
  if (/^[bc]\d+:\d+$/.test(id) || /^n\d+$/.test(id))
    return fail(
      ERR_BUILTIN_UNAVAILABLE,
      `hwdb: device id '${id}' (by device number or ifindex) is not supported`,
    );
  return fail('EINVAL', `hwdb: bad device id '${id}'`);
}

/** udev_builtin_hwdb_search: the device and its ancestors, until one has entries. */
function searchDevices(
  trie: HwdbTrie,
  start: BuiltinDevice,
  args: HwdbArgs,
  host: BuiltinHost,
  into: Map<string, string>,
): HwdbError | number {
  for (let d: BuiltinDevice | undefined = start; d !== undefined; d = host.parent(d.syspath)) {
    if (d.subsystem === '') continue;
    if (args.subsystem !== undefined && d.subsystem !== args.subsystem) continue;
    let modalias = d.properties.get('MODALIAS');
    // Parents above a USB device are hubs: its own entries or nothing.
    const last = d.subsystem === 'usb' && d.devtype === 'usb_device';
    if (last && modalias === undefined)
      modalias = usbModalias(host.readAttr(d.syspath, 'idVendor'), host.readAttr(d.syspath, 'idProduct'));
    if (modalias === undefined) continue;
    const n = lookupKey(trie, modalias, args, into);
    if (typeof n !== 'number' || n > 0 || last) return n;
  }
  return 0;
}

/** The hwdb builtin over `database` (the system's hwdb.bin by default). */
export function createHwdbBuiltin(database: HwdbDatabase = createHwdbDatabase()): Builtin {
  return (argv, device, host) => {
    const trie = database.current();
    if (!(trie instanceof HwdbTrie)) return fail(trie.code, trie.message);
    const args = parseHwdbArgs(argv);
    const props = new Map<string, string>();
    let n: HwdbError | number;
    if (args.key !== undefined) {
      n = lookupKey(trie, args.key, args, props);
    } else {
      let start = device;
      if (args.device !== undefined) {
        const other = deviceById(args.device, host);
        if ('ok' in other) return other;
        start = other;
      }
      n = searchDevices(trie, start, args, host, props);
    }
    if (typeof n !== 'number') return fail(n.code, n.message);
    if (n === 0) return fail('ENODATA', `hwdb: no entry found for ${device.devpath}`);
    return succeed(props);
  };
}

export const hwdb: Builtin = createHwdbBuiltin();
