// SECLABEL{module}: which labels udevd would set and how (planNodeLabels), and the effect part
// with a fake xattr setter: failures are logged with the rule's file:line and the device, never
// thrown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SourceRef } from '../../src/units/config-types';
import {
  applyNodeLabels,
  labelDeviceNode,
  planNodeLabels,
  type LabelPlanInput,
} from '../../src/devices/node-labels';
import { recordingLogger, silentLogger } from '../helpers/logger';

const both = { selinux: true, smack: true };
const none = { selinux: false, smack: false };
const src: SourceRef = { file: '/etc/udev/rules.d/70-label.rules', line: 4 };

function input(over: Partial<LabelPlanInput>): LabelPlanInput {
  return { seclabels: new Map(), action: 'add', permissionsChanged: false, lsms: both, ...over };
}

describe('planNodeLabels', () => {
  it('selinux: security.selinux with a trailing NUL (setfilecon_raw); smack: SMACK64 without', () => {
    const steps = planNodeLabels(
      input({
        seclabels: new Map([
          ['selinux', 'system_u:object_r:removable_device_t:s0'],
          ['smack', 'System::Shared'],
        ]),
        sources: new Map([['selinux', src]]),
      }),
    );
    assert.deepEqual(steps, [
      {
        kind: 'set',
        module: 'selinux',
        label: 'system_u:object_r:removable_device_t:s0',
        attribute: 'security.selinux',
        value: Buffer.from('system_u:object_r:removable_device_t:s0\0'),
        source: src,
      },
      {
        kind: 'set',
        module: 'smack',
        label: 'System::Shared',
        attribute: 'security.SMACK64',
        value: Buffer.from('System::Shared'),
      },
    ]);
  });

  it('an LSM that is not enabled is a debug-level skip', () => {
    const steps = planNodeLabels(input({ seclabels: new Map([['selinux', 'x_t']]), lsms: none }));
    assert.deepEqual(steps, [
      { kind: 'skip', module: 'selinux', label: 'x_t', level: 'debug', reason: 'SELinux is not enabled' },
    ]);
    const smack = planNodeLabels(
      input({ seclabels: new Map([['smack', 'x']]), lsms: { selinux: true, smack: false } }),
    );
    assert.equal(smack[0]?.kind === 'skip' && smack[0].level, 'debug');
  });

  it('other modules are unsupported (an error line), empty labels too', () => {
    const steps = planNodeLabels(
      input({
        seclabels: new Map([
          ['apparmor', 'p'],
          ['selinux', ''],
        ]),
        sources: new Map([['apparmor', src]]),
      }),
    );
    assert.deepEqual(
      steps.map((s) => [s.kind, s.module, s.kind === 'skip' ? s.level : '', s.source?.line]),
      [
        ['skip', 'apparmor', 'error', 4],
        ['skip', 'selinux', 'error', undefined],
      ],
    );
  });

  it("only on 'add', or when the event changed owner, group or mode (udevd's apply_mac)", () => {
    const seclabels = new Map([['selinux', 'x_t']]);
    assert.equal(planNodeLabels(input({ seclabels, action: 'change' })).length, 0);
    assert.equal(planNodeLabels(input({ seclabels, action: 'change', permissionsChanged: true })).length, 1);
    assert.equal(planNodeLabels(input({ seclabels, action: 'bind', permissionsChanged: true })).length, 1);
    assert.equal(planNodeLabels(input({ seclabels, action: 'add' })).length, 1);
    assert.equal(planNodeLabels(input({ action: 'add' })).length, 0);
  });
});

describe('applyNodeLabels', () => {
  it('calls setxattr on the node below the dev root', () => {
    const calls: [string, string, string][] = [];
    const xattr = {
      setXattr: (p: string, n: string, v: Buffer) => void calls.push([p, n, v.toString('latin1')]),
    };
    const steps = planNodeLabels(input({ seclabels: new Map([['selinux', 'a_t']]) }));
    const out = applyNodeLabels('/dev/sdb', '/devices/x/block/sdb', steps, {
      logger: silentLogger(),
      devRoot: '/tmp/devroot',
      xattr,
    });
    assert.deepEqual(calls, [['/tmp/devroot/sdb', 'security.selinux', 'a_t\0']]);
    assert.deepEqual(out, [{ module: 'selinux', status: 'set' }]);
  });

  it('a refused setxattr is an error line with file:line and the device, not an exception', () => {
    const rec = recordingLogger();
    const xattr = {
      setXattr: () => {
        throw Object.assign(new Error('EOPNOTSUPP: operation not supported on socket, setxattr'), {
          code: 'EOPNOTSUPP',
          errno: -95,
          syscall: 'setxattr',
        });
      },
    };
    const steps = planNodeLabels(
      input({ seclabels: new Map([['smack', 'L']]), sources: new Map([['smack', src]]) }),
    );
    const out = applyNodeLabels('/dev/sdb', '/devices/x/block/sdb', steps, { logger: rec.logger, xattr });
    assert.deepEqual(out, [{ module: 'smack', status: 'failed', code: 'EOPNOTSUPP' }]);
    const line = rec.lines.find((l) => l.level === 50);
    assert.equal(line?.devpath, '/devices/x/block/sdb');
    assert.equal(line?.code, 'EOPNOTSUPP');
    assert.match(
      String(line?.msg),
      /^\/etc\/udev\/rules\.d\/70-label\.rules:4: SECLABEL\{smack\}="L" on \/dev\/sdb: EOPNOTSUPP/,
    );
  });

  it('a node gone meanwhile (ENOENT) is only a debug line', () => {
    const rec = recordingLogger();
    const xattr = {
      setXattr: () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT', errno: -2 });
      },
    };
    const steps = planNodeLabels(input({ seclabels: new Map([['selinux', 'a_t']]) }));
    applyNodeLabels('/dev/sdb', '/d', steps, { logger: rec.logger, xattr });
    assert.deepEqual(
      rec.lines.map((l) => l.level),
      [20],
    );
  });

  it('skips are logged at their level; unsupported modules at error', () => {
    const rec = recordingLogger();
    const steps = planNodeLabels(
      input({
        seclabels: new Map([
          ['selinux', 'a_t'],
          ['ima', 'x'],
        ]),
        lsms: none,
      }),
    );
    const out = applyNodeLabels('/dev/sdb', '/d', steps, {
      logger: rec.logger,
      xattr: { setXattr: () => {} },
    });
    assert.deepEqual(
      out.map((o) => o.status),
      ['skipped', 'skipped'],
    );
    assert.deepEqual(
      rec.lines.map((l) => l.level),
      [20, 50],
    );
  });
});

describe('labelDeviceNode', () => {
  const event = { devname: '/dev/sdb', devpath: '/devices/x/block/sdb', action: 'add' as const };
  const unchanged = { missing: false, changedMode: false, changedOwner: false };

  it('does nothing (not even an LSM probe) for events without SECLABEL', () => {
    const xattr = {
      setXattr: () => assert.fail('no call expected'),
    };
    assert.deepEqual(
      labelDeviceNode(event, { seclabels: new Map() }, unchanged, { logger: silentLogger(), xattr }),
      [],
    );
  });

  it('does nothing when the node is missing', () => {
    const r = labelDeviceNode(
      event,
      { seclabels: new Map([['selinux', 'a_t']]) },
      { ...unchanged, missing: true },
      { logger: silentLogger(), lsms: both, xattr: { setXattr: () => assert.fail('no call expected') } },
    );
    assert.deepEqual(r, []);
  });

  it('passes the executor-recorded sources through', () => {
    const rec = recordingLogger();
    labelDeviceNode(
      event,
      { seclabels: new Map([['tomoyo', 'x']]), seclabelSources: new Map([['tomoyo', src]]) },
      unchanged,
      { logger: rec.logger, lsms: both, xattr: { setXattr: () => {} } },
    );
    assert.match(String(rec.lines[0]?.msg), /^\/etc\/udev\/rules\.d\/70-label\.rules:4: SECLABEL\{tomoyo\}/);
  });
});
