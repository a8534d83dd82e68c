// `triggerctl why NAME.device`: the reason a device unit is not plugged, in words. A unit that a
// job waits for should never time out in silence (systemd#13775, #3446).
import type { DeviceRegistry } from '../devices/device-registry';
import type { DeviceRecord } from '../devices/types';
import { unescapePath } from '../units/unit-name';

export type WhyReason = 'plugged' | 'not-a-device-unit' | 'no-device' | 'not-tagged' | 'not-ready' | 'queued';

export interface WhyAnswer {
  unit: string;
  reason: WhyReason;
  message: string;
  devpath?: string;
  /** For 'queued': the first kernel seqnum not yet processed, and the kernel's latest. */
  seqnum?: number;
  kernelSeqnum?: number;
}

export interface WhyInput {
  name: string;
  registry: DeviceRegistry;
  /** Kernel seqnum (/sys/kernel/uevent_seqnum) and whether everything before it has been read. */
  kernelSeqnum: number;
  settled: boolean;
}

export function explainDeviceUnit(input: WhyInput): WhyAnswer {
  const { name, registry } = input;
  if (!name.endsWith('.device')) {
    return { unit: name, reason: 'not-a-device-unit', message: `${name} is not a .device unit` };
  }
  let target: string;
  try {
    target = unescapePath(name.slice(0, -'.device'.length));
  } catch (err) {
    return {
      unit: name,
      reason: 'not-a-device-unit',
      message: `${name} is not a valid device unit name: ${(err as Error).message}`,
    };
  }
  const record: DeviceRecord | undefined = target.startsWith('/sys/')
    ? registry.get(target.slice(4))
    : registry.findByNode(target);
  if (record !== undefined) {
    const base = { unit: name, devpath: record.devpath };
    if (!record.tags.has('systemd')) {
      return {
        ...base,
        reason: 'not-tagged',
        message: `device seen but not tagged systemd: ${record.devpath} (subsystem ${record.subsystem}); add TAG+="systemd" in a rule`,
      };
    }
    if (record.properties.get('SYSTEMD_READY') === '0') {
      return {
        ...base,
        reason: 'not-ready',
        message: `device ${record.devpath} has SYSTEMD_READY=0: present but not ready`,
      };
    }
    return { ...base, reason: 'plugged', message: `plugged: ${record.devpath}` };
  }
  if (!input.settled && input.kernelSeqnum > registry.lastSeqnum) {
    return {
      unit: name,
      reason: 'queued',
      seqnum: registry.lastSeqnum + 1,
      kernelSeqnum: input.kernelSeqnum,
      message: `event seqnum ${registry.lastSeqnum + 1} still queued (kernel is at ${input.kernelSeqnum}); the device may yet appear`,
    };
  }
  const what = target.startsWith('/sys/') ? 'no device at that sysfs path' : 'no device with that link';
  return { unit: name, reason: 'no-device', message: `${what}: ${target}` };
}
