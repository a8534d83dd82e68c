// IMPORT{builtin}="blkid [--offset=N] [--hint=NAME=VALUE] [--noraid]": what libblkid finds on the
// device node (file system, partition table, partition entry), as udev's blkid builtin names it.
// The probe itself runs in the native addon on a threadpool thread; this module parses argv and
// maps the raw (name, bytes) pairs to properties.
import type { BlkidProbeOptions, BlkidRawValue } from '../../native/blkid-addon';
import {
  ERR_BLKID_AMBIVALENT,
  ERR_BUILTIN_ARGS,
  ERR_BUILTIN_UNAVAILABLE,
  fail,
  succeed,
} from './builtin-errors';
import type { Builtin, BuiltinResult } from './builtin-types';
import { cString, encodeString, safeString } from './udev-strings';

type ParsedArgs = { ok: true; options: BlkidProbeOptions } | { ok: false; message: string };

const LONG_OPTIONS = [
  { name: 'offset', short: 'o', hasArg: true },
  { name: 'hint', short: 'H', hasArg: true },
  { name: 'noraid', short: 'R', hasArg: false },
] as const;

/** safe_atoi64: optional leading whitespace and sign, decimal digits, nothing else. */
function parseInt64(text: string): bigint | undefined {
  const match = /^[ \t\n\r]*([+-]?\d+)$/.exec(text);
  if (match === null) return undefined;
  const value = BigInt(match[1]!);
  return value >= -(2n ** 63n) && value < 2n ** 63n ? value : undefined;
}

/**
 * getopt_long("o:H:R") as udev calls it: long options may be abbreviated, values come as
 * "--offset=N", "--offset N", "-oN" or "-o N"; unknown options are ignored (udev ignores what
 * getopt reports as '?'), and so are non-option words.
 */
export function parseBlkidArgs(argv: readonly string[]): ParsedArgs {
  const options: BlkidProbeOptions = { offset: 0, noraid: false };
  const apply = (option: 'offset' | 'hint' | 'noraid', value: string | undefined): string | undefined => {
    if (option === 'noraid') {
      options.noraid = true;
      return undefined;
    }
    if (value === undefined) return `option --${option} requires an argument`;
    if (option === 'hint') {
      options.hint = value;
      return undefined;
    }
    const offset = parseInt64(value);
    if (offset === undefined) return `failed to parse '${value}' as an integer`;
    if (offset < 0n) return `invalid offset ${offset}`;
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) return `offset ${offset} is too large`;
    options.offset = Number(offset);
    return undefined;
  };
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = word.slice(2, eq < 0 ? undefined : eq);
      const exact = LONG_OPTIONS.find((o) => o.name === name);
      const prefixed = LONG_OPTIONS.filter((o) => o.name.startsWith(name));
      const option = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      if (option === undefined || name === '') continue;
      let value: string | undefined;
      if (option.hasArg) value = eq >= 0 ? word.slice(eq + 1) : argv[++i];
      const error = apply(option.name, value);
      if (error !== undefined) return { ok: false, message: error };
    } else if (word.startsWith('-') && word.length > 1) {
      for (let k = 1; k < word.length; k++) {
        const option = LONG_OPTIONS.find((o) => o.short === word[k]);
        if (option === undefined) continue;
        let value: string | undefined;
        if (option.hasArg) value = k + 1 < word.length ? word.slice(k + 1) : argv[++i];
        const error = apply(option.name, value);
        if (error !== undefined) return { ok: false, message: error };
        if (option.hasArg) break;
      }
    }
  }
  return { ok: true, options };
}

/** libblkid names whose value udev passes through blkid_encode_string under ID_FS_<name>. */
const ENCODED_FS_IDS = new Set([
  'SYSTEM_ID',
  'PUBLISHER_ID',
  'APPLICATION_ID',
  'BOOT_SYSTEM_ID',
  'VOLUME_ID',
  'LOGICAL_VOLUME_ID',
  'VOLUME_SET_ID',
  'DATA_PREPARER_ID',
]);

/**
 * udev's print_property() for each raw value, in libblkid's order; values udev does not know
 * (BLOCK_SIZE, SEC_TYPE, PART_ENTRY_* are known, LABEL_RAW is not, ...) are dropped.
 * `autoRootUuid` is the device's inherited ID_PART_GPT_AUTO_ROOT_UUID, if any.
 */
export function mapBlkidValues(values: readonly BlkidRawValue[], autoRootUuid?: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const { name, value } of values) {
    const raw = cString(value);
    const text = raw.toString('utf8');
    if (name === 'TYPE') props.set('ID_FS_TYPE', text);
    else if (name === 'USAGE') props.set('ID_FS_USAGE', text);
    else if (name === 'VERSION') props.set('ID_FS_VERSION', text);
    else if (name === 'UUID' || name === 'UUID_SUB' || name === 'LABEL') {
      props.set(`ID_FS_${name}`, safeString(raw));
      props.set(`ID_FS_${name}_ENC`, encodeString(raw, 'blkid'));
    } else if (name === 'FSSIZE' || name === 'FSLASTBLOCK' || name === 'FSBLOCKSIZE') {
      props.set(`ID_FS_${name.slice(2)}`, text);
    } else if (name === 'PTTYPE') props.set('ID_PART_TABLE_TYPE', text);
    else if (name === 'PTUUID') props.set('ID_PART_TABLE_UUID', text);
    else if (name === 'PART_ENTRY_NAME' || name === 'PART_ENTRY_TYPE') {
      props.set(`ID_${name}`, encodeString(raw, 'blkid'));
    } else if (name.startsWith('PART_ENTRY_')) props.set(`ID_${name}`, text);
    else if (ENCODED_FS_IDS.has(name)) props.set(`ID_FS_${name}`, encodeString(raw, 'blkid'));

    if (autoRootUuid !== undefined && name === 'PART_ENTRY_UUID' && text === autoRootUuid) {
      props.set('ID_PART_GPT_AUTO_ROOT', '1');
    }
  }
  return props;
}

/** udev's ERRNO_IS_DEVICE_ABSENT: the node vanished; the builtin succeeds with nothing. */
const DEVICE_ABSENT = new Set(['ENODEV', 'ENXIO', 'ENOENT']);

function errorFields(error: unknown): { code: string; message: string; syscall?: string } {
  if (error instanceof Error) {
    const code = Reflect.get(error, 'code');
    const syscall = Reflect.get(error, 'syscall');
    return {
      code: typeof code === 'string' ? code : 'EIO',
      message: error.message,
      ...(typeof syscall === 'string' ? { syscall } : {}),
    };
  }
  return { code: 'EIO', message: String(error) };
}

export const blkid: Builtin = async (argv, device, host): Promise<BuiltinResult> => {
  const parsed = parseBlkidArgs(argv);
  if (!parsed.ok) return fail(ERR_BUILTIN_ARGS, `blkid: ${parsed.message}`);
  if (host.probeBlkid === undefined) {
    return fail(ERR_BUILTIN_UNAVAILABLE, 'blkid: no libblkid prober (the blkid addon is not loaded)');
  }
  if (device.devname === undefined) {
    return fail('ENOENT', `blkid: ${device.devpath} has no device node`);
  }
  const probe = host.probeBlkid.bind(host);
  let options = parsed.options;
  let result;
  try {
    try {
      result = await probe(device.devname, options);
    } catch (error: unknown) {
      const { code, syscall } = errorFields(error);
      // libblkid < 2.37 has no hints: udev then uses the hint's "=value" as the offset.
      if (code !== 'ENOSYS' || syscall !== 'blkid_probe_set_hint' || options.hint === undefined) throw error;
      const hint = options.hint;
      const eq = hint.indexOf('=');
      options = { offset: options.offset, noraid: options.noraid };
      if (eq >= 0) {
        const retry = parseBlkidArgs(['blkid', `--offset=${hint.slice(eq + 1)}`]);
        if (!retry.ok) return fail(ERR_BUILTIN_ARGS, `blkid: ${retry.message}`);
        options.offset = retry.options.offset;
      }
      result = await probe(device.devname, options);
    }
  } catch (error: unknown) {
    const { code, message } = errorFields(error);
    if (DEVICE_ABSENT.has(code)) return succeed(new Map());
    return fail(code, `blkid: ${device.devname}: ${message}`);
  }
  if (result.status === 'ambivalent') {
    return fail(ERR_BLKID_AMBIVALENT, `blkid: ${device.devname}: more than one superblock found`);
  }
  return succeed(mapBlkidValues(result.values, device.properties.get('ID_PART_GPT_AUTO_ROOT_UUID')));
};
