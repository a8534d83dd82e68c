// SECLABEL{module}="label" on the device node, as udevd's udev_node_apply_permissions() applies
// it: 'selinux' sets the node's SELinux context (setfilecon_raw: xattr security.selinux, value
// NUL-terminated), 'smack' its SMACK64 label (xattr security.SMACK64, no NUL); any other module
// is an error in the log and nothing else. udevd labels on 'add', or on any event that changes the
// node's owner or mode. A module whose LSM is not active is skipped at debug level: the kernel
// would store the attribute as a plain xattr and it would mean nothing. planNodeLabels is pure;
// applyNodeLabels does the setxattr calls, logs failures with the rule's file:line and the
// device, and never throws: a label never fails the event.
// Not done (udevd does it through libselinux/libsmack): resetting a node without SECLABEL to the
// policy's default label (file_contexts lookup) or to SMACK's default.
import fs = require('node:fs');
import path = require('node:path');
import type { SourceRef } from '../units/config-types';
import type { Logger } from '../util/logger';
import { loadNativeDevnode, type NativeDevnode } from '../native/devnode-addon';
import type { RulesResult } from './rules/rules-result';
import type { Uevent, UeventAction } from './types';

/** Which labelling LSMs are active (udev: mac_selinux_use(), mac_smack_use()). */
export interface ActiveLsms {
  selinux: boolean;
  smack: boolean;
}

export type LabelStep =
  | {
      kind: 'set';
      module: 'selinux' | 'smack';
      label: string;
      attribute: 'security.selinux' | 'security.SMACK64';
      value: Buffer;
      source?: SourceRef;
    }
  | {
      kind: 'skip';
      module: string;
      label: string;
      level: 'debug' | 'error';
      reason: string;
      source?: SourceRef;
    };

export interface LabelPlanInput {
  seclabels: ReadonlyMap<string, string>;
  /** Where each module's SECLABEL was set, when the executor recorded it. */
  sources?: ReadonlyMap<string, SourceRef>;
  action: UeventAction;
  /** The event changed the node's owner, group or mode. */
  permissionsChanged: boolean;
  lsms: ActiveLsms;
}

/** What to do with the SECLABELs of one event. Pure. */
export function planNodeLabels(input: LabelPlanInput): LabelStep[] {
  if (input.seclabels.size === 0) return [];
  if (input.action !== 'add' && !input.permissionsChanged) return [];
  const steps: LabelStep[] = [];
  for (const [module, label] of input.seclabels) {
    const source = input.sources?.get(module);
    const withSource = <T extends object>(step: T): T => (source === undefined ? step : { ...step, source });
    if (module !== 'selinux' && module !== 'smack') {
      steps.push(
        withSource({
          kind: 'skip',
          module,
          label,
          level: 'error',
          reason: `unsupported SECLABEL module '${module}'`,
        }),
      );
      continue;
    }
    if (!input.lsms[module]) {
      const reason = module === 'selinux' ? 'SELinux is not enabled' : 'SMACK is not enabled';
      steps.push(withSource({ kind: 'skip', module, label, level: 'debug', reason }));
      continue;
    }
    if (label === '') {
      steps.push(withSource({ kind: 'skip', module, label, level: 'error', reason: 'empty label' }));
      continue;
    }
    steps.push(
      withSource(
        module === 'selinux'
          ? {
              kind: 'set',
              module,
              label,
              attribute: 'security.selinux',
              value: Buffer.from(`${label}\0`, 'utf8'),
            }
          : { kind: 'set', module, label, attribute: 'security.SMACK64', value: Buffer.from(label, 'utf8') },
      ),
    );
  }
  return steps;
}

/** /sys/fs/selinux/enforce exists when SELinux is enabled; /sys/fs/smackfs when SMACK is. */
export function detectLsms(sysRoot = '/sys'): ActiveLsms {
  return {
    selinux: fs.existsSync(path.join(sysRoot, 'fs', 'selinux', 'enforce')),
    smack: fs.existsSync(path.join(sysRoot, 'fs', 'smackfs')),
  };
}

export interface NodeLabelOptions {
  logger: Logger;
  /** Default /dev; tests pass a temp dir standing in for it. */
  devRoot?: string;
  /** Default: the triggerd_devnode addon, loaded on the first label to set. */
  xattr?: Pick<NativeDevnode, 'setXattr'>;
}

export interface LabelOutcome {
  module: string;
  status: 'set' | 'skipped' | 'failed';
  code?: string;
}

function where(source: SourceRef | undefined): string {
  return source === undefined ? '' : `${source.file}:${source.line}: `;
}

/** setxattr for each 'set' step on `devnode` ('/dev/...'); logs the rest. Never throws. */
export function applyNodeLabels(
  devnode: string,
  devpath: string,
  steps: readonly LabelStep[],
  opts: NodeLabelOptions,
): LabelOutcome[] {
  const devRoot = opts.devRoot ?? '/dev';
  const file = devnode.startsWith('/dev/') ? path.join(devRoot, devnode.slice(5)) : devnode;
  const outcomes: LabelOutcome[] = [];
  for (const step of steps) {
    const prefix = `${where(step.source)}SECLABEL{${step.module}}="${step.label}" on ${devnode}`;
    if (step.kind === 'skip') {
      opts.logger[step.level === 'error' ? 'error' : 'debug'](
        { devpath },
        `${prefix}: ${step.reason}, ignored`,
      );
      outcomes.push({ module: step.module, status: 'skipped' });
      continue;
    }
    try {
      const xattr = opts.xattr ?? loadNativeDevnode();
      xattr.setXattr(file, step.attribute, step.value);
      opts.logger.debug({ devpath }, `${prefix}: set`);
      outcomes.push({ module: step.module, status: 'set' });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const code = e.code ?? 'error';
      // A node removed meanwhile is not worth more than a debug line, as for udevd.
      opts.logger[code === 'ENOENT' ? 'debug' : 'error'](
        { devpath, code, errno: e.errno },
        `${prefix}: ${e.message}`,
      );
      outcomes.push({ module: step.module, status: 'failed', code });
    }
  }
  return outcomes;
}

export interface LabelDeviceNodeOptions extends NodeLabelOptions {
  /** Default: detectLsms() on /sys. */
  lsms?: ActiveLsms;
}

/**
 * The rules stage's call after the node's permissions: plan and apply the event's SECLABELs.
 * Costs nothing for the events without any (nearly all of them).
 */
export function labelDeviceNode(
  event: Pick<Uevent, 'devname' | 'devpath' | 'action'>,
  result: Pick<RulesResult, 'seclabels'> & { seclabelSources?: ReadonlyMap<string, SourceRef> },
  permissions: { missing: boolean; changedMode: boolean; changedOwner: boolean },
  opts: LabelDeviceNodeOptions,
): LabelOutcome[] {
  if (result.seclabels.size === 0 || event.devname === undefined || permissions.missing) return [];
  const input: LabelPlanInput = {
    seclabels: result.seclabels,
    action: event.action,
    permissionsChanged: permissions.changedMode || permissions.changedOwner,
    lsms: opts.lsms ?? detectLsms(),
  };
  if (result.seclabelSources !== undefined) input.sources = result.seclabelSources;
  return applyNodeLabels(event.devname, event.devpath, planNodeLabels(input), opts);
}
