import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRegistry, defaultDecision } from '../../src/devices/device-registry';
import { explainDeviceUnit } from '../../src/core/why';
import { uevent, LOOP0 } from '../helpers/events';

function registryWith(...events: ReturnType<typeof uevent>[]): DeviceRegistry {
  const reg = new DeviceRegistry();
  for (const e of events) reg.apply(e, defaultDecision(e));
  return reg;
}

test('why: a table of device-unit explanations', () => {
  const loop = uevent('add', ...LOOP0);
  const nul = uevent('add', '/devices/virtual/mem/null', 'mem', { DEVNAME: 'null' });
  const notReady = uevent('add', '/devices/virtual/block/loop1', 'block', {
    DEVNAME: 'loop1',
    SYSTEMD_READY: '0',
  });
  const reg = registryWith(loop, nul, notReady);
  const kernel = reg.lastSeqnum;
  const cases: { name: string; settled: boolean; kernelSeqnum: number; reason: string; says: RegExp }[] = [
    { name: 'dev-loop0.device', settled: true, kernelSeqnum: kernel, reason: 'plugged', says: /plugged/ },
    {
      name: 'sys-devices-virtual-block-loop0.device',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'plugged',
      says: /loop0/,
    },
    {
      name: 'dev-null.device',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'not-tagged',
      says: /not tagged systemd/,
    },
    {
      name: 'dev-loop1.device',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'not-ready',
      says: /SYSTEMD_READY=0/,
    },
    {
      name: 'dev-disk-by\\x2duuid-0a0b.device',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'no-device',
      says: /no device with that link: \/dev\/disk\/by-uuid\/0a0b/,
    },
    {
      name: 'dev-disk-by\\x2duuid-0a0b.device',
      settled: false,
      kernelSeqnum: kernel + 3,
      reason: 'queued',
      says: new RegExp(`event seqnum ${kernel + 1} still queued`),
    },
    {
      name: 'foo.service',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'not-a-device-unit',
      says: /not a .device unit/,
    },
    {
      name: 'bad\\xZZ.device',
      settled: true,
      kernelSeqnum: kernel,
      reason: 'not-a-device-unit',
      says: /not a valid/,
    },
  ];
  for (const c of cases) {
    const answer = explainDeviceUnit({
      name: c.name,
      registry: reg,
      kernelSeqnum: c.kernelSeqnum,
      settled: c.settled,
    });
    assert.equal(answer.reason, c.reason, c.name);
    assert.match(answer.message, c.says, c.name);
  }
});
