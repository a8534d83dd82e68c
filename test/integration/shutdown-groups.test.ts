// The daemon's exit with a service still running past the shutdown timeout: the service is killed
// (cgroup.kill), and its group is removed once empty, never left behind. On Linux 6.18 a group
// cgroup.kill was written to kills at birth every child later cloned into it, so a group left
// there would cost the next daemon's starts of that unit a second clone each.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import { findCgroupHierarchy } from '../../src/exec/cgroups';
import {
  skipUnlessPathUnits,
  startDaemon,
  unitScratch,
  unitStatus,
  waitFor,
  type RunningDaemon,
} from '../helpers/daemon';

// Root and a writable cgroup2 hierarchy, as the path units' daemon tests need.
const skip = skipUnlessPathUnits();

describe('a service still running at the daemon exit', { skip }, () => {
  const { dir, units, unit } = unitScratch('triggerd-shutdown-groups-');
  let d: RunningDaemon;
  let client: ControlClient;

  before(async () => {
    // Ignores SIGTERM, and its stop may take longer than the daemon's shutdown waits.
    unit(
      'stubborn.service',
      '[Service]\nExecStart=/bin/sh -c \'trap "" TERM; while :; do sleep 0.1; done\'\nTimeoutStopSec=60\n' +
        '[Install]\nWantedBy=multi-user.target\n',
    );
    fs.mkdirSync(path.join(units, 'multi-user.target.wants'));
    fs.symlinkSync(
      path.join(units, 'stubborn.service'),
      path.join(units, 'multi-user.target.wants', 'stubborn.service'),
    );
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '1', '--log-level', 'info']);
    client = await d.client();
  });

  after(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('is killed, and its group removed rather than left behind', async () => {
    const pid = await waitFor('stubborn.service running', async () => {
      const s = await unitStatus(client, 'stubborn.service');
      return s.active === 'active' && typeof s.properties.MainPID === 'number'
        ? s.properties.MainPID
        : undefined;
    });
    const rel = /^0::(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'latin1'))?.[1];
    const hierarchy = findCgroupHierarchy();
    assert.ok(rel !== undefined && hierarchy.ok);
    const group = path.join(hierarchy.root, rel);
    assert.match(group, /\/stubborn\.service$/);
    client.close();
    await d.stop();
    assert.equal(d.logs.filter((l) => /still running at shutdown; killing/.test(String(l.msg))).length, 1);
    assert.equal(fs.existsSync(group), false, `${group} is left behind`);
  });
});
