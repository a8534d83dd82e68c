// User= / Group= / SupplementaryGroups= resolution from /etc/passwd and /etc/group (files only:
// NSS modules such as LDAP or systemd's DynamicUser are not consulted).
import { readFileSync } from 'node:fs';
import path = require('node:path');

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface UserDatabase {
  users: PasswdEntry[];
  groups: GroupEntry[];
}

const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to setresuid

/** A decimal uid/gid as systemd's parse_uid accepts it, or undefined. */
export function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const users: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 7) continue;
    const uid = parseId(fields[2]);
    const gid = parseId(fields[3]);
    if (uid === undefined || gid === undefined || fields[0] === '') continue;
    users.push({ name: fields[0], uid, gid, home: fields[5], shell: fields[6] });
  }
  return users;
}

export function parseGroup(text: string): GroupEntry[] {
  const groups: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 4) continue;
    const gid = parseId(fields[2]);
    if (gid === undefined || fields[0] === '') continue;
    const members = fields[3].split(',').filter((m) => m.length > 0);
    groups.push({ name: fields[0], gid, members });
  }
  return groups;
}

function readOptional(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Reads `<root>/etc/passwd` and `<root>/etc/group`; a missing file is an empty database. */
export function readUserDatabase(root = '/'): UserDatabase {
  return {
    users: parsePasswd(readOptional(path.join(root, 'etc', 'passwd'))),
    groups: parseGroup(readOptional(path.join(root, 'etc', 'group'))),
  };
}

/** By name first, then (for a number) by uid, as systemd's get_user_creds does. */
export function findUser(db: UserDatabase, nameOrId: string): PasswdEntry | undefined {
  const byName = db.users.find((u) => u.name === nameOrId);
  if (byName !== undefined) return byName;
  const uid = parseId(nameOrId);
  return uid === undefined ? undefined : db.users.find((u) => u.uid === uid);
}

export function findGroup(db: UserDatabase, nameOrId: string): GroupEntry | undefined {
  const byName = db.groups.find((g) => g.name === nameOrId);
  if (byName !== undefined) return byName;
  const gid = parseId(nameOrId);
  return gid === undefined ? undefined : db.groups.find((g) => g.gid === gid);
}

/** The groups that list `user` as a member (what initgroups(3) adds from /etc/group). */
export function memberGroups(db: UserDatabase, user: string): number[] {
  return db.groups.filter((g) => g.members.includes(user)).map((g) => g.gid);
}
