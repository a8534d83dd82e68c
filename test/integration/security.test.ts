// `triggerctl security` against a running daemon with two services (one plain, one hardened, with
// settings triggerd parses but does not apply) and a timer: the list, one report, --json, the
// errors for a non-service and an unknown unit; and, as root, the hardened service's process
// checked against what the report calls enforced and not enforced.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, skipUnlessRoot, startDaemon, TRIGGERCTL, type RunningDaemon } from '../helpers/daemon';
import type { SecurityReportJson, SecurityRowJson } from '../../src/control/security-view';

// As an ordinary user the daemon runs services as itself: then nothing runs as root.
const asRoot = process.getuid?.() === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-security-'));
let d: RunningDaemon | undefined;

const HARDENED = `[Unit]
Description=Hardened sleeper
[Service]
ExecStart=/bin/sleep 600
User=nobody
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateNetwork=yes
CapabilityBoundingSet=
UMask=0077
SystemCallFilter=@system-service
ProtectKernelTunables=yes
`;

before(async () => {
  const units = path.join(work, 'units');
  fs.mkdirSync(units);
  fs.writeFileSync(path.join(units, 'plain.service'), '[Service]\nExecStart=/bin/sleep 600\n');
  fs.writeFileSync(path.join(units, 'hardened.service'), HARDENED);
  fs.writeFileSync(path.join(units, 'tick.timer'), '[Timer]\nOnActiveSec=1h\nUnit=plain.service\n');
  d = await startDaemon(['--unit-path', units]);
});

after(async () => {
  await d?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function ctl(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assert.ok(d !== undefined);
  return run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
}

test('security without a unit: one line per loaded service, most exposed first; --json rows', async () => {
  const r = await ctl('security');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^UNIT +EXPOSURE +PREDICATE +AS WRITTEN +NOT ENFORCED$/);
  assert.equal(lines.length, 3, r.stdout);
  assert.match(
    lines[1] ?? '',
    asRoot
      ? /^plain\.service +(9\.9|10\.0) +UNSAFE +\d+\.\d UNSAFE +0$/
      : /^plain\.service +\d\.\d +EXPOSED +\d\.\d EXPOSED +0$/,
  );
  assert.match(lines[2] ?? '', /^hardened\.service +\d\.\d +OK +\d\.\d OK +2$/);
  assert.ok(!r.stdout.includes('tick.timer'));

  const j = await ctl('--json', 'security');
  assert.equal(j.code, 0, j.stderr);
  const rows = JSON.parse(j.stdout) as SecurityRowJson[];
  assert.deepEqual(rows.map((x) => x.unit).sort(), ['hardened.service', 'plain.service']);
  const hardened = rows.find((x) => x.unit === 'hardened.service');
  assert.ok(hardened !== undefined);
  assert.equal(hardened.level, 'OK');
  assert.equal(hardened.notEnforced, 2);
  assert.ok(hardened.declaredExposure < hardened.exposure);
});

test('security UNIT: the per-setting table, the overall level and what is not enforced; --json', async () => {
  const r = await ctl('security', 'hardened.service');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ +NAME +SET +WEIGHT +EXPOSURE +DESCRIPTION$/m);
  assert.match(
    r.stdout,
    asRoot
      ? /^✓ +User=\/DynamicUser= +yes +20 +Service runs as user nobody$/m
      : /^✓ +User=\/DynamicUser= +yes +20 +Service runs as the daemon's own \(unprivileged\) user$/m,
  );
  assert.match(r.stdout, /^✓ +NoNewPrivileges= +yes +10 /m);
  assert.match(r.stdout, /^! +SystemCallFilter= +yes +10 +\d\.\d\d +Parsed, not enforced: /m);
  assert.match(r.stdout, /^! +ProtectKernelTunables= +yes +8 +\d\.\d\d +Parsed, not enforced: /m);
  assert.match(r.stdout, /^✗ +RestrictNamespaces= +no +8 /m);
  assert.match(r.stdout, /^→ Overall exposure level for hardened\.service: \d\.\d OK$/m);
  assert.match(
    r.stdout,
    /^ {2}! Parsed, not enforced by triggerd: SystemCallFilter= ProtectKernelTunables=$/m,
  );

  const j = await ctl('--json', 'security', 'hardened.service');
  assert.equal(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout) as SecurityReportJson;
  assert.equal(report.unit, 'hardened.service');
  assert.equal(report.level, 'OK');
  assert.deepEqual(report.notEnforced, ['SystemCallFilter', 'ProtectKernelTunables']);
  const filter = report.checks.find((c) => c.name === 'SystemCallFilter=');
  assert.deepEqual(
    filter && { set: filter.set, enforced: filter.enforced, state: filter.state, value: filter.value },
    { set: true, enforced: false, state: 'not-enforced', value: 'SystemCallFilter=@system-service' },
  );

  const plain = JSON.parse((await ctl('--json', 'security', 'plain.service')).stdout) as SecurityReportJson;
  assert.equal(plain.level, asRoot ? 'UNSAFE' : 'EXPOSED');
  assert.ok(plain.exposure > report.exposure);
});

test('security on a non-service fails with 1, on an unknown unit with 4', async () => {
  const timer = await ctl('security', 'tick.timer');
  assert.equal(timer.code, 1);
  assert.match(timer.stderr, /tick\.timer is not a service/);
  assert.equal(timer.stdout, '');
  const missing = await ctl('security', 'nope.service');
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /Unit nope\.service could not be found\./);
});

test(
  'what the report calls enforced is what the process gets; what it marks is not there',
  { skip: skipUnlessRoot() },
  async () => {
    const start = await ctl('start', 'hardened.service');
    assert.equal(start.code, 0, start.stderr);
    assert.ok(d !== undefined);
    const client = await d.client();
    let pid: number;
    try {
      const status = (await client.request('unit-status', { name: 'hardened.service' })) as {
        properties: { MainPID?: number };
      };
      pid = status.properties.MainPID ?? 0;
    } finally {
      client.close();
    }
    assert.ok(pid > 0);
    const proc = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(proc)?.[1] ?? '';
    assert.equal(field('Uid').split(/\s+/)[0], '65534', 'User=nobody');
    assert.equal(field('NoNewPrivs'), '1', 'NoNewPrivileges=yes');
    assert.equal(BigInt(`0x${field('CapBnd')}`), 0n, 'CapabilityBoundingSet=');
    assert.notEqual(
      fs.readlinkSync(`/proc/${pid}/ns/net`),
      fs.readlinkSync('/proc/self/ns/net'),
      'PrivateNetwork=yes',
    );
    assert.equal(field('Seccomp'), '0', 'SystemCallFilter= is marked not enforced, and there is no filter');
    await ctl('stop', 'hardened.service');
  },
);
