// Control-socket methods for devices: what `triggerctl devices|device-info|test-rules|why|monitor|
// settle|trigger` ask of the device side of the daemon.
import fs = require('node:fs');
import path = require('node:path');
import type { DevicePipeline } from '../devices/device-pipeline';
import type { RulesStage } from '../devices/rules-stage';
import { listSysfsDevicePaths, readKernelSeqnum, readSysfsDevice, syntheticUevent } from '../devices/sysfs';
import { UEVENT_ACTIONS, type UeventAction } from '../devices/types';
import type { Manager } from '../core/manager';
import { explainDeviceUnit } from '../core/why';
import { ControlRequestError, STREAMING, type ControlHandlers } from './server';
import { deviceJson, ueventJson } from './views';

export interface SettleOutcome {
  settled: boolean;
  seqnum: number;
  target: number;
  ms: number;
}

export interface DeviceHandlerDeps {
  pipeline: DevicePipeline;
  manager: Manager;
  sysRoot: string;
  /** The rules in force (standalone mode), undefined otherwise. */
  rules: () => RulesStage | undefined;
  settle: (
    timeoutMs: number,
    onProgress?: (seqnum: number, target: number) => void,
  ) => Promise<SettleOutcome>;
}

type DeviceHandlerNames = 'devices' | 'test-rules' | 'device-info' | 'why' | 'monitor' | 'settle' | 'trigger';

export function deviceHandlers(deps: DeviceHandlerDeps): Pick<ControlHandlers, DeviceHandlerNames> {
  const { pipeline, manager } = deps;
  return {
    devices: (params) => {
      const subsystem = params.subsystem as string | undefined;
      const out = [];
      for (const r of pipeline.registry.all())
        if (subsystem === undefined || r.subsystem === subsystem) out.push(deviceJson(r));
      out.sort((a, b) => (a.devpath < b.devpath ? -1 : 1));
      return out;
    },
    'test-rules': async (params) => {
      const name = params.name as string;
      const stage = deps.rules();
      if (stage === undefined)
        throw new ControlRequestError(
          'ERR_BAD_REQUEST',
          'no rules are loaded (companion mode, or no rule files)',
        );
      const devpath = name.startsWith('/sys/') ? name.slice(4) : name;
      let device;
      try {
        device = readSysfsDevice(devpath, deps.sysRoot);
      } catch {
        throw new ControlRequestError('ERR_NO_SUCH_DEVICE', `no device at /sys${devpath}`);
      }
      const action = (params.action as string | undefined) ?? 'add';
      if (!(UEVENT_ACTIONS as readonly string[]).includes(action)) {
        throw new ControlRequestError('ERR_BAD_PARAMS', `unknown action ${JSON.stringify(action)}`);
      }
      const event = syntheticUevent(device, action as 'add');
      const processed = await stage.process(event, pipeline.registry.get(devpath), false);
      const r = processed.result;
      return {
        devpath,
        action,
        properties: Object.fromEntries(r.properties),
        tags: [...r.tags],
        devlinks: r.devlinks.map((l) => `/dev/${l}`),
        linkPriority: r.linkPriority,
        owner: r.owner ?? null,
        group: r.group ?? null,
        mode: r.mode === undefined ? null : r.mode.toString(8).padStart(4, '0'),
        run: r.run.map((x) => ({
          kind: x.kind,
          command: x.command,
          source: `${x.source.file}:${x.source.line}`,
        })),
        attrWrites: r.attrWrites.map((w) => ({ path: w.path, value: w.value })),
        diagnostics: r.diagnostics,
      };
    },
    'device-info': (params) => {
      const name = params.name as string;
      const devpath = name.startsWith('/sys/')
        ? name.slice(4)
        : name.startsWith('/devices/')
          ? name
          : undefined;
      const record =
        devpath !== undefined
          ? pipeline.registry.get(devpath)
          : pipeline.registry.findByNode(name.startsWith('/') ? name : `/dev/${name}`);
      if (record === undefined) throw new ControlRequestError('ERR_NO_SUCH_DEVICE', `no device ${name}`);
      return deviceJson(record);
    },
    why: async (params) => {
      const name = params.name as string;
      const unit = manager.describeUnit(name);
      const settled = await deps.settle(200);
      const answer = explainDeviceUnit({
        name,
        registry: pipeline.registry,
        kernelSeqnum: settled.target,
        settled: settled.settled,
      });
      return { ...answer, state: unit?.sub ?? 'dead' };
    },
    monitor: (_params, ctx) => {
      const sub = pipeline.events$.subscribe((e) => ctx.emit(ueventJson(e, process.hrtime.bigint())));
      ctx.onClose(() => sub.unsubscribe());
      return STREAMING;
    },
    settle: async (params, ctx) => {
      const timeoutMs = (params.timeoutMs as number | undefined) ?? 120_000;
      const result = await deps.settle(timeoutMs, (seqnum, target) => ctx.emit({ seqnum, target }));
      if (!result.settled) {
        throw new ControlRequestError(
          'ERR_TIMEOUT',
          `settle timed out after ${timeoutMs} ms waiting for seqnum ${result.seqnum + 1}..${result.target}`,
        );
      }
      return result;
    },
    trigger: (params) =>
      triggerDevices(
        deps.sysRoot,
        params.subsystems as string[] | undefined,
        params.action as string | undefined,
        params.dryRun === true,
      ),
  };
}

/** Ask the kernel to re-announce devices by writing ACTION to their `uevent` files. */
function triggerDevices(
  sysRoot: string,
  subsystems: string[] | undefined,
  action: string | undefined,
  dryRun: boolean,
): unknown {
  const act = action ?? 'change';
  if (!(UEVENT_ACTIONS as readonly string[]).includes(act) || act === 'move') {
    throw new ControlRequestError(
      'ERR_BAD_PARAMS',
      `trigger: action must be one of add, remove, change, online, offline, bind, unbind (got ${JSON.stringify(act)})`,
    );
  }
  const wanted = subsystems === undefined || subsystems.length === 0 ? undefined : new Set(subsystems);
  const devpaths: string[] = [];
  for (const [devpath, subsystem] of listSysfsDevicePaths(sysRoot)) {
    if (wanted === undefined || wanted.has(subsystem)) devpaths.push(devpath);
  }
  devpaths.sort();
  const errors: { devpath: string; code: string }[] = [];
  if (!dryRun) {
    for (const devpath of devpaths) {
      try {
        fs.writeFileSync(path.join(sysRoot + devpath, 'uevent'), act as UeventAction);
      } catch (err) {
        errors.push({ devpath, code: (err as NodeJS.ErrnoException).code ?? 'EIO' });
      }
    }
  }
  return { action: act, devices: devpaths, errors, seqnum: readKernelSeqnum(sysRoot) };
}
