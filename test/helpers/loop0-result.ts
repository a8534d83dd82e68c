// What udevd's rules decided for the recorded loop0 attach (test/fixtures/uevents/raw-attach,
// test/fixtures/udev/db-b7:0), as a RulesResult: the effects tests rebuild udevd's bytes from it.
import type { RulesResult } from '../../src/devices/rules/rules-result';

export function loop0Result(): RulesResult {
  return {
    properties: new Map([
      ['ID_FS_LABEL', 'anchorfmt'],
      ['ID_FS_LABEL_ENC', 'anchorfmt'],
      ['ID_FS_UUID', '0a0b0c0d-1111-4222-8333-444455556666'],
      ['ID_FS_UUID_ENC', '0a0b0c0d-1111-4222-8333-444455556666'],
      ['ID_FS_VERSION', '1.0'],
      ['ID_FS_TYPE', 'ext4'],
      ['ID_FS_USAGE', 'filesystem'],
    ]),
    tags: new Set(['systemd']),
    devlinks: [
      'disk/by-diskseq/3167',
      'disk/by-uuid/0a0b0c0d-1111-4222-8333-444455556666',
      'disk/by-label/anchorfmt',
    ],
    linkPriority: 0,
    seclabels: new Map(),
    attrWrites: [],
    sysctlWrites: [],
    run: [],
    options: new Set(),
    diagnostics: [],
  };
}
