// OWNER/GROUP/MODE on the device node, as udevd 252 applies them (update_devnode() and
// udev_node_apply_permissions()): the rules' values, else the kernel's DEVUID/DEVGID/DEVMODE;
// a group without a mode "upgrades" the mode to 0660. Nothing set anywhere means nothing is
// changed: devtmpfs already made the node 0600 root:root, udevd imposes no default of its own.
// The node is changed only where it differs; a node that is gone is skipped, not an error.
import fs = require('node:fs');
import path = require('node:path');
import type { SourceRef } from '../units/config-types';
import type { RulesResult } from './rules/rules-result';
import type { Uevent } from './types';
import { findGroup, findUser, parseId, readUserDatabase, type UserDatabase } from '../exec/user-database';

export type NodePermissionErrorCode =
  'ERR_NODE_UNKNOWN_USER' | 'ERR_NODE_UNKNOWN_GROUP' | 'ERR_NODE_BAD_MODE';

export class NodePermissionError extends Error {
  constructor(
    readonly code: NodePermissionErrorCode,
    message: string,
    readonly source?: SourceRef,
  ) {
    super(source === undefined ? message : `${source.file}:${source.line}: ${message}`);
    this.name = 'NodePermissionError';
  }
}

export interface NodePermissions {
  uid?: number;
  gid?: number;
  mode?: number;
}

/** Where OWNER=/GROUP=/MODE= were set; RulesResult does not carry it yet, so callers pass it. */
export interface PermissionSources {
  owner?: SourceRef;
  group?: SourceRef;
  mode?: SourceRef;
}

export interface ResolveOptions {
  /** Default: /etc/passwd and /etc/group of `root` (default '/'). */
  users?: UserDatabase;
  root?: string;
  sources?: PermissionSources;
}

function resolveUid(db: UserDatabase, text: string, source?: SourceRef): number {
  // udev: a number is taken as is (parse_uid), a name must exist.
  const id = parseId(text);
  if (id !== undefined) return id;
  const user = findUser(db, text);
  if (user === undefined)
    throw new NodePermissionError('ERR_NODE_UNKNOWN_USER', `unknown user '${text}'`, source);
  return user.uid;
}

function resolveGid(db: UserDatabase, text: string, source?: SourceRef): number {
  const id = parseId(text);
  if (id !== undefined) return id;
  const group = findGroup(db, text);
  if (group === undefined)
    throw new NodePermissionError('ERR_NODE_UNKNOWN_GROUP', `unknown group '${text}'`, source);
  return group.gid;
}

/** What to apply to the node of `event`. Throws NodePermissionError for an unknown name or a bad mode. */
export function resolveNodePermissions(
  event: Pick<Uevent, 'properties'>,
  result: Pick<RulesResult, 'owner' | 'group' | 'mode'>,
  opts: ResolveOptions = {},
): NodePermissions {
  let db = opts.users;
  const users = (): UserDatabase => (db ??= readUserDatabase(opts.root ?? '/'));
  const out: NodePermissions = {};
  const devuid = event.properties.get('DEVUID');
  const devgid = event.properties.get('DEVGID');
  const devmode = event.properties.get('DEVMODE');
  if (result.owner !== undefined) out.uid = resolveUid(users(), result.owner, opts.sources?.owner);
  else if (devuid !== undefined && parseId(devuid) !== undefined) out.uid = parseId(devuid);
  if (result.group !== undefined) out.gid = resolveGid(users(), result.group, opts.sources?.group);
  else if (devgid !== undefined && parseId(devgid) !== undefined) out.gid = parseId(devgid);
  if (result.mode !== undefined) {
    if (!Number.isInteger(result.mode) || result.mode < 0 || result.mode > 0o7777) {
      throw new NodePermissionError('ERR_NODE_BAD_MODE', `bad mode ${result.mode}`, opts.sources?.mode);
    }
    out.mode = result.mode;
  } else if (devmode !== undefined && /^[0-7]{1,4}$/.test(devmode)) {
    out.mode = parseInt(devmode, 8);
  }
  if (out.mode === undefined && out.gid !== undefined && out.gid > 0) out.mode = 0o660;
  return out;
}

export interface ApplyOptions {
  /** Default /dev; tests pass a temp dir standing in for it. */
  devRoot?: string;
}

export interface ApplyResult {
  /** The node was not there (removed meanwhile): not an error, as for udevd. */
  missing: boolean;
  changedMode: boolean;
  changedOwner: boolean;
}

/** chmod/chown the node where it differs; always touches its timestamps, as udevd does. */
export function applyNodePermissions(
  devnode: string,
  perms: NodePermissions,
  opts: ApplyOptions = {},
): ApplyResult {
  const devRoot = opts.devRoot ?? '/dev';
  const host = devnode.startsWith('/dev/') ? path.join(devRoot, devnode.slice(5)) : devnode;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(host);
  } catch {
    return { missing: true, changedMode: false, changedOwner: false };
  }
  const changedMode = perms.mode !== undefined && (st.mode & 0o777) !== (perms.mode & 0o777);
  const changedOwner =
    (perms.uid !== undefined && st.uid !== perms.uid) || (perms.gid !== undefined && st.gid !== perms.gid);
  try {
    // Owner first: chown clears setuid/setgid bits a mode may set.
    if (changedOwner) fs.lchownSync(host, perms.uid ?? st.uid, perms.gid ?? st.gid);
    if (changedMode && perms.mode !== undefined && !st.isSymbolicLink()) fs.chmodSync(host, perms.mode);
    const now = new Date();
    if (!st.isSymbolicLink()) fs.utimesSync(host, now, now);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { missing: true, changedMode: false, changedOwner: false };
    throw err;
  }
  return { missing: false, changedMode, changedOwner };
}
