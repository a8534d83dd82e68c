// IMPORT{builtin}="hwdb ...": lookups in the compiled hardware database. Reading hwdb.bin's trie
// is not implemented yet; the builtin says so plainly instead of importing nothing silently, and
// tells apart "there is no database" from "there is one we cannot read".
import * as fs from 'node:fs';
import { ERR_BUILTIN_UNAVAILABLE, fail } from './builtin-errors';
import type { Builtin } from './builtin-types';

export const HWDB_PATH = '/etc/udev/hwdb.bin';

/** The hwdb builtin, with the existence check injectable for tests. */
export function createHwdbBuiltin(exists: (file: string) => boolean = fs.existsSync): Builtin {
  return () =>
    exists(HWDB_PATH)
      ? fail(ERR_BUILTIN_UNAVAILABLE, `hwdb: reading ${HWDB_PATH} is not implemented`)
      : fail(ERR_BUILTIN_UNAVAILABLE, `hwdb: not available (${HWDB_PATH} does not exist)`);
}

export const hwdb: Builtin = createHwdbBuiltin();
