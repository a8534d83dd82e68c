// The daemon as a child process on the real kernel: loop devices, a veth pair, forged uevents,
// control-socket permissions and abuse, signals. Everything made here is removed in t.after.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { listSysfsDevicePaths } from '../../src/devices/sysfs';
import type { ControlClient } from '../../src/control/client';
import type { DeviceJson, UeventJson } from '../../src/control/views';
import type { UnitSummary } from '../../src/units/unit-type';
import {
  REPO_ROOT,
  TRIGGERCTL,
  run,
  skipUnlessRoot,
  startDaemon,
  waitFor,
  type RunningDaemon,
} from '../helpers/daemon';

const skip = skipUnlessRoot();

interface Status {
  uevents: { port: number; rejected: Record<string, number>; received: number };
}

async function units(client: ControlClient): Promise<Map<string, UnitSummary>> {
  const list = (await client.request('list-units')) as UnitSummary[];
  return new Map(list.map((u) => [u.name, u]));
}

/** Collect monitor events on a connection of its own. */
async function monitor(d: RunningDaemon): Promise<{ events: UeventJson[]; close: () => void }> {
  const client = await d.client();
  const events: UeventJson[] = [];
  void client.request('monitor', {}, (e) => events.push(e as UeventJson)).catch(() => undefined);
  await client.request('ping').catch(() => undefined);
  return { events, close: () => client.close() };
}

/** Send raw bytes on a fresh connection, read replies until `replies` lines or the peer closes. */
function rawExchange(
  socketPath: string,
  payloads: (string | Buffer)[],
  replies: number,
  hangUp = false,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let buf = '';
    const lines: string[] = [];
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`got ${lines.length} of ${replies} replies: ${JSON.stringify(lines)}`));
    }, 10_000);
    c.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (lines.length >= replies) {
        clearTimeout(timer);
        c.destroy();
        resolve(lines);
      }
    });
    c.on('error', () => undefined);
    c.on('connect', () => {
      for (const p of payloads) c.write(p);
      if (hangUp) {
        c.end();
        clearTimeout(timer);
        setTimeout(() => resolve(lines), 200);
      }
    });
  });
}

describe('triggerd on the real kernel', { skip }, () => {
  let d: RunningDaemon;
  let client: ControlClient;

  before(async () => {
    d = await startDaemon();
    client = await d.client();
  });
  after(async () => {
    client?.close();
    const code = await d?.stop();
    assert.equal(code, 0, 'SIGTERM exits 0');
  });

  test('triggerctl devices lists what /sys has', async () => {
    const { stdout } = await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'devices', '--json']);
    const devices = JSON.parse(stdout) as DeviceJson[];
    const listed = new Set(devices.map((x) => x.devpath));
    const sys = [...listSysfsDevicePaths().keys()];
    const missing = sys.filter((p) => !listed.has(p));
    assert.deepEqual(missing, [], 'every /sys device is listed');
    assert.ok(devices.length >= sys.length - 2, `${devices.length} listed, ${sys.length} in /sys`);
    const table = await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'devices']);
    assert.match(table.stdout, /^DEVPATH\s+SUBSYSTEM\s+DEVNAME/);
    assert.match(table.stdout, /\/devices\/virtual\/mem\/null\s+mem\s+\/dev\/null/);
    const info = await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'device-info', '/dev/null']);
    assert.match(info.stdout, /^P: \/devices\/virtual\/mem\/null\nN: null\n/);
    assert.match(info.stdout, /^E: SUBSYSTEM=mem$/m);
    const none = await run(
      process.execPath,
      [TRIGGERCTL, '--socket', d.socket, 'device-info', '/dev/nonexistent'],
      { allowFail: true },
    );
    assert.equal(none.code, 1);
    assert.match(none.stderr, /ERR_NO_SUCH_DEVICE/);
  });

  test('attaching a loop device: its change event arrives and dev-loopN.device is plugged', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-loop-'));
    const image = path.join(dir, 'img');
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 16 * 1024 * 1024);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'tdtest', image]);
    const mon = await monitor(d);
    let loopDev = '';
    t.after(async () => {
      mon.close();
      if (loopDev) await run('losetup', ['-d', loopDev], { allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    });
    loopDev = (await run('losetup', ['--find', '--show', image])).stdout.trim();
    const name = path.basename(loopDev);
    const event = await waitFor('change event for ' + name, () =>
      mon.events.find((e) => e.devpath === `/devices/virtual/block/${name}` && e.action === 'change'),
    );
    assert.equal(event.subsystem, 'block');
    assert.equal(event.source, 'kernel');
    assert.equal(event.properties.DEVNAME, loopDev);
    assert.ok(event.seqnum > 0);
    const unit = (await units(client)).get(`dev-${name}.device`);
    assert.equal(unit?.sub, 'plugged');
    assert.equal(unit?.active, 'active');
    assert.equal((await units(client)).get(`sys-devices-virtual-block-${name}.device`)?.sub, 'plugged');
  });

  test('a veth pair: units appear plugged, then go dead when it is deleted', async (t) => {
    const a = `tdv${process.pid % 10000}a`;
    const b = `tdv${process.pid % 10000}b`;
    t.after(() => run('ip', ['link', 'del', a], { allowFail: true }));
    await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    for (const n of [a, b]) {
      await waitFor(`${n} plugged`, async () =>
        (await units(client)).get(`sys-devices-virtual-net-${n}.device`)?.sub === 'plugged'
          ? true
          : undefined,
      );
    }
    await run('ip', ['link', 'del', a]);
    for (const n of [a, b]) {
      await waitFor(`${n} dead`, async () =>
        (await units(client)).get(`sys-devices-virtual-net-${n}.device`)?.sub === 'dead' ? true : undefined,
      );
    }
    const devices = (await client.request('devices', { subsystem: 'net' })) as DeviceJson[];
    assert.ok(!devices.some((x) => x.devpath.endsWith(`/${a}`)), 'the removed device left the registry');
  });

  test('a forged unicast uevent, from nobody or from root, changes nothing', async () => {
    const before = (await client.request('status')) as Status;
    assert.ok(before.uevents.port > 0);
    const devpath = '/devices/virtual/net/forged0';
    const payload = `add@${devpath}\0ACTION=add\0DEVPATH=${devpath}\0SUBSYSTEM=net\0INTERFACE=forged0\0SEQNUM=999999999\0`;
    const script = `
      const { loadNative } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/native/addon'))});
      const s = loadNative().openUeventSocket({ groups: 0, receiveBufferBytes: 65536 }, () => {}, () => {});
      try { s.send(Buffer.from(process.argv[1], 'base64'), Number(process.argv[2]), 0); console.log('sent'); }
      catch (e) { console.log(e.code); }
      s.close();`;
    const args = [
      process.execPath,
      '-e',
      script,
      Buffer.from(payload, 'latin1').toString('base64'),
      String(before.uevents.port),
    ];
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
    // Plain nobody: the kernel itself refuses a unicast on this protocol (EPERM); if it ever
    // let one through, the daemon must still drop it.
    const plain = (await run('setpriv', [...nobody, ...args])).stdout.trim();
    assert.ok(plain === 'EPERM' || plain === 'sent', plain);
    // nobody with CAP_NET_ADMIN gets it to the daemon, as does root from a port that is not the kernel's.
    assert.equal(
      (
        await run('setpriv', [...nobody, '--inh-caps=+net_admin', '--ambient-caps=+net_admin', ...args])
      ).stdout.trim(),
      'sent',
    );
    assert.equal((await run(args[0] as string, args.slice(1))).stdout.trim(), 'sent');
    const expected = (before.uevents.rejected.ERR_UEVENT_UNTRUSTED_SENDER ?? 0) + (plain === 'sent' ? 3 : 2);
    const after = await waitFor('rejections counted', async () => {
      const s = (await client.request('status')) as Status;
      return (s.uevents.rejected.ERR_UEVENT_UNTRUSTED_SENDER ?? 0) >= expected ? s : undefined;
    });
    assert.ok(after.uevents.received >= before.uevents.received);
    const devices = (await client.request('devices', { subsystem: 'net' })) as DeviceJson[];
    assert.ok(!devices.some((x) => x.devpath === devpath), 'forged device is not in the registry');
    assert.equal((await units(client)).has('sys-devices-virtual-net-forged0.device'), false);
    const warned = await d.waitForLog((l) => l.code === 'ERR_UEVENT_UNTRUSTED_SENDER' && l.uid === 65534);
    assert.equal(warned.level, 40, 'logged as a warning, naming the sender');
  });

  test('reads are open to everyone; a mutating request from nobody is refused', async () => {
    const asNobody = [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      TRIGGERCTL,
      '--socket',
      d.socket,
    ];
    const read = await run('setpriv', [...asNobody, 'list-units', '--json']);
    assert.ok(Array.isArray(JSON.parse(read.stdout)));
    const reload = await run('setpriv', [...asNobody, 'daemon-reload'], { allowFail: true });
    assert.equal(reload.code, 1);
    assert.match(reload.stderr, /daemon-reload: permission denied for uid 65534.*ERR_PERMISSION/);
    const trig = await run('setpriv', [...asNobody, 'trigger', '--subsystem-match', 'mem'], {
      allowFail: true,
    });
    assert.equal(trig.code, 1);
    assert.match(trig.stderr, /ERR_PERMISSION/);
    const asRoot = await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'daemon-reload']);
    assert.match(asRoot.stdout, /unitFiles/);
  });

  test('malformed control requests get error replies and the daemon keeps serving', async () => {
    const replies = await rawExchange(
      d.socket,
      [
        'this is not json\n',
        '{"id":1,"method":"rm -rf"}\n',
        '{"id":2,"method":"devices","params":{"subsystem":42}}\n',
        '{"id":3,"method":"show"}\n',
        '{"id":4,"method":"show","params":{"name":"nope.device"}}\n',
        '{"id":5,"method":"ping"}\n',
      ],
      6,
    );
    const codes = replies.map(
      (l) => (JSON.parse(l) as { ok: boolean; error?: { code: string } }).error?.code ?? 'ok',
    );
    assert.deepEqual(codes, [
      'ERR_BAD_JSON',
      'ERR_UNKNOWN_METHOD',
      'ERR_BAD_PARAMS',
      'ERR_BAD_PARAMS',
      'ERR_NO_SUCH_UNIT',
      'ok',
    ]);

    // A 10 MB line: one error, then the same connection still answers.
    const big = Buffer.alloc(10 * 1024 * 1024, 0x61);
    const afterBig = await rawExchange(d.socket, [big, '\n{"id":7,"method":"ping"}\n'], 2);
    assert.equal(
      (JSON.parse(afterBig[0] ?? '{}') as { error: { code: string } }).error.code,
      'ERR_LINE_TOO_LONG',
    );
    assert.equal((JSON.parse(afterBig[1] ?? '{}') as { id: number; ok: boolean }).ok, true);

    // Half a line, then hang up: nothing to answer, nothing held.
    await rawExchange(d.socket, ['{"id":8,"method":"pi'], 0, true);
    const status = (await client.request('status')) as { pid: number };
    assert.equal(status.pid, d.pid);
  });

  test('settle, trigger and why', async () => {
    const settle = await run(process.execPath, [
      TRIGGERCTL,
      '--socket',
      d.socket,
      'settle',
      '--timeout',
      '10',
      '--json',
    ]);
    assert.equal((JSON.parse(settle.stdout) as { settled: boolean }).settled, true);
    const mon = await monitor(d);
    try {
      const trig = await run(process.execPath, [
        TRIGGERCTL,
        '--socket',
        d.socket,
        '--json',
        'trigger',
        '--subsystem-match',
        'mem',
      ]);
      const result = JSON.parse(trig.stdout) as { devices: string[] };
      await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'settle']);
      assert.ok(result.devices.includes('/devices/virtual/mem/null'));
      await waitFor('triggered change for mem/null', () =>
        mon.events.find((e) => e.devpath === '/devices/virtual/mem/null' && e.action === 'change'),
      );
    } finally {
      mon.close();
    }
    const why = async (name: string): Promise<string> =>
      (await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'why', name])).stdout;
    assert.match(await why('dev-disk-by\\x2duuid-00000000\\x2d0000.device'), /no device with that link/);
    assert.match(await why('dev-null.device'), /not tagged systemd/);
    assert.match(await why('dev-loop0.device'), /plugged/);
  });

  test('SIGHUP reloads and the daemon keeps answering', async () => {
    const seen = d.logs.filter((l) => l.msg === 'reloaded').length;
    process.kill(d.pid, 'SIGHUP');
    await waitFor('reload log line', () =>
      d.logs.filter((l) => l.msg === 'reloaded').length > seen ? true : undefined,
    );
    assert.deepEqual(await client.request('ping').then((r) => (r as { pid: number }).pid), d.pid);
  });
});
