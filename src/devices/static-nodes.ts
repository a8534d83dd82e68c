// OPTIONS+="static_node=NODE": nodes the kernel creates in devtmpfs before any uevent (or
// without one, such as a module's on-demand node: kvm, fuse, snd/seq, loop-control) get their
// rule's permissions when the rules are (re)loaded, not per event, as udevd's
// udev_rules_apply_static_dev_perms() does: for each static_node token, the OWNER/GROUP/MODE
// and TAG tokens of that same line that udev orders before it (all of them: the compiler sorts
// them first), only those with constant values (udev resolves them at load), a group without a
// mode upgrading the mode to 0660; the line's matches are not looked at. Each tag becomes
// <udev run dir>/static_node-tags/TAG/ESCAPED-NODE → /dev/NODE, so logind's uaccess can find
// nodes that no device event names. planStaticNodes is pure; applyStaticNodePlans does the
// file system work, logs every failure with the rule's file:line and never throws.
import fs = require('node:fs');
import path = require('node:path');
import type { SourceRef } from '../units/config-types';
import type { Logger } from '../util/logger';
import { findGroup, findUser, parseId, type UserDatabase } from '../exec/user-database';
import type { CompiledRules } from './rules/rules-compiler';

export interface StaticNodePlan {
  /** Below /dev, as written in the rule ('snd/seq'). */
  node: string;
  uid?: number;
  gid?: number;
  mode?: number;
  /** TAG values of the line, in order, without duplicates. */
  tags: string[];
  /** The OPTIONS+="static_node=..." token. */
  source: SourceRef;
}

export type StaticNodeErrorCode =
  'ERR_STATIC_NODE_USER' | 'ERR_STATIC_NODE_GROUP' | 'ERR_STATIC_NODE_NAME' | 'ERR_STATIC_NODE_TAG';

export interface StaticNodeDiagnostic {
  severity: 'error' | 'warning';
  code: StaticNodeErrorCode;
  message: string;
  source: SourceRef;
}

export interface StaticNodePlans {
  plans: StaticNodePlan[];
  diagnostics: StaticNodeDiagnostic[];
}

/** Values with these are expanded per event: udev keeps them out of the static permissions. */
const SUBSTITUTION = /[$%]/;
/** As the executor accepts TAG values; a tag is also a directory name here. */
const TAG_CHARS = /^[A-Za-z0-9_-]+$/;

/** A node name that stays below /dev (udev does not check; a rule file must not escape it). */
function isSafeNode(node: string): boolean {
  if (node.startsWith('/') || node.includes('\0')) return false;
  return node.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * systemd's xescape(name, "/."): '/', '.', '\', control bytes and bytes >= 0x7f of the UTF-8
 * text become \xNN (lower-case hex), so a node path is one file name.
 */
export function escapeStaticNodeName(node: string): string {
  let out = '';
  for (const byte of Buffer.from(node, 'utf8')) {
    const plain = byte >= 0x20 && byte < 0x7f && byte !== 0x5c && byte !== 0x2f && byte !== 0x2e;
    out += plain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The static_node plans of a compiled rule set. Pure: users and groups come from `users`. */
export function planStaticNodes(rules: Pick<CompiledRules, 'lines'>, users: UserDatabase): StaticNodePlans {
  const plans: StaticNodePlan[] = [];
  const diagnostics: StaticNodeDiagnostic[] = [];
  const diag = (
    code: StaticNodeErrorCode,
    message: string,
    source: SourceRef,
    severity: 'error' | 'warning',
  ): void => {
    diagnostics.push({ severity, code, message, source: { file: source.file, line: source.line } });
  };
  for (const line of rules.lines) {
    if (!line.tokens.some((t) => t.type === 'option' && t.option.name === 'static_node')) continue;
    let uid: number | undefined;
    let gid: number | undefined;
    let mode: number | undefined;
    const tags: string[] = [];
    const linePlans: StaticNodePlan[] = [];
    // udev fails to load a line whose user or group does not exist: none of its nodes is touched.
    let unresolved = false;
    for (const t of line.tokens) {
      if (t.type === 'assign-owner' && !SUBSTITUTION.test(t.value)) {
        uid = parseId(t.value) ?? findUser(users, t.value)?.uid;
        if (uid === undefined) {
          unresolved = true;
          diag('ERR_STATIC_NODE_USER', `unknown user '${t.value}'; static_node ignored`, t.source, 'error');
        }
      } else if (t.type === 'assign-group' && !SUBSTITUTION.test(t.value)) {
        gid = parseId(t.value) ?? findGroup(users, t.value)?.gid;
        if (gid === undefined) {
          unresolved = true;
          diag('ERR_STATIC_NODE_GROUP', `unknown group '${t.value}'; static_node ignored`, t.source, 'error');
        }
      } else if (t.type === 'assign-mode' && /^[0-7]+$/.test(t.value)) {
        const m = parseInt(t.value, 8);
        if (m <= 0o7777) mode = m;
      } else if (t.type === 'assign-tag') {
        // udev takes every TAG token's value here, whatever its operator.
        if (!TAG_CHARS.test(t.value)) {
          diag(
            'ERR_STATIC_NODE_TAG',
            `invalid tag name '${t.value}' for a static node, ignored`,
            t.source,
            'warning',
          );
        } else if (!tags.includes(t.value)) {
          tags.push(t.value);
        }
      } else if (t.type === 'option' && t.option.name === 'static_node') {
        const node = t.option.value;
        if (!isSafeNode(node)) {
          diag(
            'ERR_STATIC_NODE_NAME',
            `static_node=${node} does not name a node below /dev, ignored`,
            t.source,
            'error',
          );
          continue;
        }
        // udevd: "If group is set, but mode is not set, upgrade mode for the group."
        const effectiveMode = mode === undefined && gid !== undefined && gid > 0 ? 0o660 : mode;
        if (uid === undefined && gid === undefined && effectiveMode === undefined && tags.length === 0)
          continue;
        const plan: StaticNodePlan = {
          node,
          tags: tags.slice(),
          source: { file: t.source.file, line: t.source.line },
        };
        if (uid !== undefined) plan.uid = uid;
        if (gid !== undefined) plan.gid = gid;
        if (effectiveMode !== undefined) plan.mode = effectiveMode;
        linePlans.push(plan);
      }
    }
    if (!unresolved) plans.push(...linePlans);
  }
  return { plans, diagnostics };
}

export interface StaticNodeEffectOptions {
  logger: Logger;
  /** Default /dev; tests pass a temp dir standing in for it. */
  devRoot?: string;
  /** Default /run/udev. */
  udevRunDir?: string;
}

export type StaticNodeStatus = 'applied' | 'unchanged' | 'missing' | 'not-a-device' | 'failed';

export interface StaticNodeOutcome {
  node: string;
  status: StaticNodeStatus;
  /** Tag links that exist after the call (made now or already there). */
  tagLinks: string[];
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

function applyOne(plan: StaticNodePlan, opts: StaticNodeEffectOptions): StaticNodeOutcome {
  const devRoot = opts.devRoot ?? '/dev';
  const runDir = opts.udevRunDir ?? '/run/udev';
  const devnode = path.join(devRoot, plan.node);
  const where = `${plan.source.file}:${plan.source.line}: static_node=${plan.node}`;
  const outcome: StaticNodeOutcome = { node: plan.node, status: 'unchanged', tagLinks: [] };
  const fail = (what: string, err: unknown): StaticNodeOutcome => {
    opts.logger.error({ code: errCode(err), node: devnode }, `${where}: ${what}: ${(err as Error).message}`);
    outcome.status = 'failed';
    return outcome;
  };
  let st: fs.Stats;
  try {
    // Followed like udevd's open(O_PATH): a symlink in /dev stands for its target.
    st = fs.statSync(devnode);
  } catch (err) {
    // Not loaded (yet): nothing to do, as for udevd.
    if (errCode(err) === 'ENOENT') {
      opts.logger.debug({ node: devnode }, `${where}: no such node, skipped`);
      outcome.status = 'missing';
      return outcome;
    }
    return fail('stat', err);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) {
    opts.logger.warn(
      { node: devnode },
      `${where}: ${devnode} is neither a block nor a character device, ignored`,
    );
    outcome.status = 'not-a-device';
    return outcome;
  }
  const escaped = escapeStaticNodeName(plan.node);
  for (const tag of plan.tags) {
    const link = path.join(runDir, 'static_node-tags', tag, escaped);
    try {
      fs.mkdirSync(path.dirname(link), { recursive: true, mode: 0o755 });
      fs.symlinkSync(devnode, link);
    } catch (err) {
      // An existing link is kept as it is, as udevd keeps it; other tags and the mode still apply.
      if (errCode(err) !== 'EEXIST') {
        fail(`tag link ${link}`, err);
        continue;
      }
    }
    outcome.tagLinks.push(link);
  }
  const changeMode = plan.mode !== undefined && (st.mode & 0o777) !== (plan.mode & 0o777);
  const changeOwner =
    (plan.uid !== undefined && st.uid !== plan.uid) || (plan.gid !== undefined && st.gid !== plan.gid);
  try {
    // Owner first: chown clears setuid/setgid bits that a mode may set.
    if (changeOwner) fs.chownSync(devnode, plan.uid ?? st.uid, plan.gid ?? st.gid);
    if (changeMode && plan.mode !== undefined) fs.chmodSync(devnode, plan.mode);
  } catch (err) {
    return fail(changeOwner ? 'chown/chmod' : 'chmod', err);
  }
  if (changeMode || changeOwner) {
    if (outcome.status !== 'failed') outcome.status = 'applied';
    opts.logger.debug(
      { node: devnode, uid: plan.uid, gid: plan.gid, mode: plan.mode?.toString(8) },
      `${where}: permissions set`,
    );
  }
  return outcome;
}

/** Apply the plans under the dev root and the udev run dir. Never throws. */
export function applyStaticNodePlans(
  plans: readonly StaticNodePlan[],
  opts: StaticNodeEffectOptions,
): StaticNodeOutcome[] {
  return plans.map((plan) => {
    try {
      return applyOne(plan, opts);
    } catch (err) {
      // Belt and braces: one bad node must not stop the others or the (re)load.
      opts.logger.error({ code: errCode(err) }, `static_node=${plan.node}: ${(err as Error).message}`);
      return { node: plan.node, status: 'failed', tagLinks: [] };
    }
  });
}

/** At rules (re)load: plan from the compiled rules, log the plan's problems, apply. Never throws. */
export function applyStaticNodes(
  rules: Pick<CompiledRules, 'lines'>,
  opts: StaticNodeEffectOptions & { users: UserDatabase },
): StaticNodeOutcome[] {
  const { plans, diagnostics } = planStaticNodes(rules, opts.users);
  for (const d of diagnostics) {
    opts.logger[d.severity === 'error' ? 'error' : 'warn'](
      { code: d.code },
      `${d.source.file}:${d.source.line}: ${d.message}`,
    );
  }
  const outcomes = applyStaticNodePlans(plans, opts);
  const applied = outcomes.filter((o) => o.status === 'applied').length;
  if (plans.length > 0) opts.logger.debug({ nodes: plans.length, applied }, 'static nodes');
  return outcomes;
}
