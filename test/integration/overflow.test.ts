// Events lost in the kernel's socket buffer (ENOBUFS) must not lose devices: the daemon is frozen
// with SIGSTOP while a burst overflows its small buffer and a veth pair appears; after SIGCONT the
// resync must find the pair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UnitSummary } from '../../src/units/unit-type';
import { run, skipUnlessRoot, startDaemon, waitFor } from '../helpers/daemon';

interface Status {
  uevents: { overflows: number; resyncs: number; syntheticEvents: number };
}

test(
  'ENOBUFS resyncs from /sys and the device added meanwhile is found',
  { skip: skipUnlessRoot() },
  async (t) => {
    const d = await startDaemon(['--receive-buffer', '4096']);
    const a = `tdo${process.pid % 10000}a`;
    const b = `tdo${process.pid % 10000}b`;
    t.after(async () => {
      try {
        process.kill(d.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await run('ip', ['link', 'del', a], { allowFail: true });
      assert.equal(await d.stop(), 0);
    });
    const client = await d.client();
    t.after(() => client.close());

    process.kill(d.pid, 'SIGSTOP');
    // A bounded burst: far more than a 4 KiB buffer holds (each event is ~150 bytes plus overhead).
    await run('sh', [
      '-c',
      'i=0; while [ $i -lt 2000 ]; do echo change > /sys/devices/virtual/mem/null/uevent; i=$((i+1)); done',
    ]);
    await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    process.kill(d.pid, 'SIGCONT');

    const status = await waitFor('an overflow and a resync', async () => {
      const s = (await client.request('status')) as Status;
      return s.uevents.resyncs >= 1 ? s : undefined;
    });
    assert.ok(status.uevents.overflows >= 1);
    for (const n of [a, b]) {
      await waitFor(`${n} plugged after resync`, async () => {
        const units = (await client.request('list-units')) as UnitSummary[];
        return units.find((u) => u.name === `sys-devices-virtual-net-${n}.device`)?.sub === 'plugged'
          ? true
          : undefined;
      });
    }
    assert.ok(d.logs.some((l) => l.msg === 'uevents were lost; rescanning /sys' && l.level === 40));
  },
);
