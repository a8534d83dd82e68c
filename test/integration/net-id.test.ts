// net_id's properties equal what Debian's udevadm test-builtin net_id prints, for every interface here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createSysfsHost, builtinDeviceAt } from '../../src/devices/builtins/sysfs-host';
import { getBuiltin } from '../../src/devices/builtins/registry';
import { run } from '../helpers/daemon';

const udevadm = ['/usr/bin/udevadm', '/bin/udevadm'].find((p) => fs.existsSync(p));

test(
  'net_id equals udevadm test-builtin net_id on this machine',
  { skip: udevadm === undefined ? 'needs udevadm (package udev; .ci/run installs it)' : undefined },
  async () => {
    const host = createSysfsHost();
    const netId = getBuiltin('net_id');
    assert.ok(netId !== undefined);
    const names = fs.readdirSync('/sys/class/net');
    assert.ok(names.length > 0);
    for (const name of names) {
      const device = builtinDeviceAt(`/sys/class/net/${name}`);
      assert.ok(device !== undefined, name);
      const ours = await netId(['net_id'], device, host);
      assert.ok(ours.ok, name);
      const theirs = (
        await run(udevadm as string, ['test-builtin', 'net_id', `/sys/class/net/${name}`], {
          allowFail: true,
        })
      ).stdout
        .split('\n')
        .filter((l) => l.startsWith('ID_NET_'))
        .sort();
      const mine = [...ours.properties].map(([k, v]) => `${k}=${v}`).sort();
      assert.deepEqual(mine, theirs, name);
    }
  },
);
