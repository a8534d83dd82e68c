// Companion mode: where udevd runs, triggerd takes udevd's processed events (netlink group 2,
// libudev format, from root only) and its database, and runs no rules of its own. Here the test
// plays udevd: it writes database records and multicasts libudev messages as root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import type { UnitSummary } from '../../src/units/unit-type';
import { encodeLibudevMessage } from '../../src/devices/libudev-encode';
import { readKernelSeqnum } from '../../src/devices/sysfs';
import { REPO_ROOT, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';

const skip =
  skipUnlessRoot() ?? (fs.existsSync('/sys/devices/virtual/block/loop1') ? undefined : 'needs /dev/loop1');

async function unit(client: ControlClient, name: string): Promise<UnitSummary | undefined> {
  return ((await client.request('list-units')) as UnitSummary[]).find((u) => u.name === name);
}

function udevMessage(
  action: string,
  devpath: string,
  links: string[],
  seqnum: number,
  extra: [string, string][] = [],
): Buffer {
  const name = path.basename(devpath);
  return encodeLibudevMessage({
    subsystem: 'block',
    devtype: 'disk',
    tags: ['systemd'],
    properties: [
      ['UDEV_DATABASE_VERSION', '1'],
      ['ACTION', action],
      ['DEVPATH', devpath],
      ['SUBSYSTEM', 'block'],
      ['DEVNAME', `/dev/${name}`],
      ['DEVTYPE', 'disk'],
      ['SEQNUM', String(seqnum)],
      ['MAJOR', '7'],
      ['MINOR', name.replace('loop', '')],
      ['TAGS', ':systemd:'],
      ['DEVLINKS', links.join(' ')],
      ['CURRENT_TAGS', ':systemd:'],
      ...extra,
    ],
  });
}

describe('companion mode', { skip }, () => {
  let d: RunningDaemon;
  let client: ControlClient;
  const db = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-udevdb-'));
  const units = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-units-'));

  before(async () => {
    fs.writeFileSync(
      path.join(db, 'b7:0'),
      'S:disk/by-label/tdcompanion0\nE:ID_FS_TYPE=ext4\nG:systemd\nQ:systemd\nV:1\n',
    );
    fs.writeFileSync(
      path.join(units, 'tdwants.service'),
      '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
    );
    d = await startDaemon(['--mode', 'companion', '--udev-db-dir', db, '--unit-path', units]);
    client = await d.client();
  });
  after(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(db, { recursive: true, force: true });
    fs.rmSync(units, { recursive: true, force: true });
  });

  test("coldplug takes tags and links from udevd's database; untagged devices get no unit", async () => {
    const status = (await client.request('status')) as { mode: string };
    assert.equal(status.mode, 'companion');
    assert.equal((await unit(client, 'dev-disk-by\\x2dlabel-tdcompanion0.device'))?.sub, 'plugged');
    assert.equal((await unit(client, 'dev-loop0.device'))?.sub, 'plugged');
    // No database record, so no "systemd" tag: no default tagging in companion mode.
    assert.equal(await unit(client, 'dev-loop1.device'), undefined);
  });

  test("udevd's events from root are applied; the same message from a non-root sender is dropped", async () => {
    const status = (await client.request('status')) as { uevents: { port: number } };
    const msg = udevMessage(
      'change',
      '/devices/virtual/block/loop1',
      ['/dev/disk/by-label/tdcompanion1'],
      readKernelSeqnum() + 1,
    );
    const script = `
      const { loadNative } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/native/addon'))});
      const s = loadNative().openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => {}, () => {});
      try { s.send(Buffer.from(process.argv[1], 'base64'), Number(process.argv[2]), 0); console.log('sent'); }
      catch (e) { console.log(e.code); }
      s.close();`;
    const args = [process.execPath, '-e', script, msg.toString('base64'), String(status.uevents.port)];
    // A non-root sender with CAP_NET_ADMIN (enough to reach the socket): dropped, nothing changes.
    const forged = await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=+net_admin',
      '--ambient-caps=+net_admin',
      ...args,
    ]);
    assert.equal(forged.stdout.trim(), 'sent');
    await waitFor('rejection counted', async () => {
      const s = (await client.request('status')) as { uevents: { rejected: Record<string, number> } };
      return (s.uevents.rejected.ERR_UEVENT_UNTRUSTED_SENDER ?? 0) >= 1 ? true : undefined;
    });
    assert.equal(await unit(client, 'dev-disk-by\\x2dlabel-tdcompanion1.device'), undefined);
    // From root, as udevd sends it: applied.
    assert.equal((await run(args[0] as string, args.slice(1))).stdout.trim(), 'sent');
    await waitFor("unit from udevd's link", async () =>
      (await unit(client, 'dev-disk-by\\x2dlabel-tdcompanion1.device'))?.sub === 'plugged' ? true : undefined,
    );
    assert.equal((await unit(client, 'dev-loop1.device'))?.sub, 'plugged');
    const why = (await client.request('why', { name: 'dev-disk-by\\x2dlabel-tdcompanion1.device' })) as {
      reason: string;
    };
    assert.equal(why.reason, 'plugged');
  });

  test('a device with SYSTEMD_WANTS starts the unit it wants', async () => {
    if (!fs.existsSync('/sys/devices/virtual/block/loop2')) return;
    const status = (await client.request('status')) as { uevents: { port: number } };
    const msg = udevMessage(
      'change',
      '/devices/virtual/block/loop2',
      ['/dev/disk/by-label/tdcompanion2'],
      readKernelSeqnum() + 1,
      [['SYSTEMD_WANTS', 'tdwants.service']],
    );
    const script = `
      const { loadNative } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/native/addon'))});
      const s = loadNative().openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => {}, () => {});
      s.send(Buffer.from(process.argv[1], 'base64'), Number(process.argv[2]), 0);
      s.close();`;
    await run(process.execPath, ['-e', script, msg.toString('base64'), String(status.uevents.port)]);
    await waitFor('tdwants.service started by the device', async () =>
      (await unit(client, 'tdwants.service'))?.sub === 'exited' ? true : undefined,
    );
  });
});
