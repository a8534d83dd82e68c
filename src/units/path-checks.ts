// The file-system side of a path unit's conditions, as systemd's path.c evaluates them:
// PathExists= is access(F_OK) (a dangling symlink does not exist), PathExistsGlob= has a first
// match, DirectoryNotEmpty= is a directory with an entry that is neither hidden nor a backup file,
// and PathChanged=/PathModified= keep a stat snapshot (inode, size, mtime, ctime) so a change that
// happened while events were lost (IN_Q_OVERFLOW) can still be told apart from no change.
// Every check reads at most what it needs: a directory of 100,000 entries costs one opendir and
// the first readdir batch.
import fs = require('node:fs');
import nodePath = require('node:path');

export interface PathCheck {
  /** The path (or, for a glob, a match) exists. */
  exists: boolean;
  /** The level condition holds (always false for PathChanged/PathModified). */
  holds: boolean;
  /** PathExistsGlob: the first match (TRIGGER_PATH). */
  match?: string;
  /** PathChanged/PathModified: what the node looks like now ('' when it is not there). */
  snapshot?: string;
  /** Why the check could not look (EACCES, ...), for `status`. */
  problem?: string;
}

/** systemd's hidden_or_backup_file(): dot files and what package managers and editors leave. */
const BACKUP_SUFFIXES = [
  '~',
  '.rpmnew',
  '.rpmsave',
  '.rpmorig',
  '.dpkg-old',
  '.dpkg-new',
  '.dpkg-tmp',
  '.dpkg-dist',
  '.dpkg-bak',
  '.dpkg-backup',
  '.dpkg-remove',
  '.ucf-new',
  '.ucf-old',
  '.ucf-dist',
  '.swp',
  '.bak',
  '.old',
  '.new',
];

export function isHiddenOrBackup(name: string): boolean {
  return name.startsWith('.') || BACKUP_SUFFIXES.some((s) => name.endsWith(s));
}

/** A glob(7) component (*, ?, [...], [!...], backslash escapes) as a RegExp; '*' never matches a leading '.'. */
export function globComponent(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]);
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/\\/g, '\\\\').replace(/\^/g, '\\^')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  const leadingDot = pattern.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${leadingDot}${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The first path matching an absolute glob pattern, or undefined (directories read lazily). */
export function firstGlobMatch(pattern: string): string | undefined {
  const parts = pattern.split('/').filter((p) => p !== '');
  const visit = (dir: string, i: number): string | undefined => {
    if (i === parts.length) return fs.existsSync(dir) ? dir : undefined;
    const part = parts[i];
    if (!/[*?[\\]/.test(part)) return visit(nodePath.join(dir, part), i + 1);
    const re = globComponent(part);
    let d: fs.Dir;
    try {
      d = fs.opendirSync(dir);
    } catch {
      return undefined;
    }
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        if (!re.test(e.name)) continue;
        const hit = visit(nodePath.join(dir, e.name), i + 1);
        if (hit !== undefined) return hit;
      }
    } finally {
      d.closeSync();
    }
    return undefined;
  };
  return visit('/', 0);
}

/** A directory with at least one entry that is not hidden or a backup file. */
export function directoryNotEmpty(path: string): { holds: boolean; exists: boolean; problem?: string } {
  let d: fs.Dir;
  try {
    d = fs.opendirSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return { holds: false, exists: false };
    if (code === 'ENOTDIR') return { holds: false, exists: true };
    return { holds: false, exists: true, problem: `${path}: ${code}` };
  }
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      if (!isHiddenOrBackup(e.name)) return { holds: true, exists: true };
    }
  } finally {
    d.closeSync();
  }
  return { holds: false, exists: true };
}

function snapshotOf(path: string): string {
  try {
    // Numbers, not bigint: a BigInt Stats object cost ~4x as much, on every watched write; the
    // times as doubles still tell apart changes a fraction of a microsecond apart.
    const st = fs.statSync(path, { throwIfNoEntry: false });
    return st === undefined ? '' : `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return '';
  }
}

/** Evaluate one spec now. */
export function checkPathSpec(spec: { kind: string; path: string }): PathCheck {
  switch (spec.kind) {
    case 'PathExistsGlob': {
      const match = firstGlobMatch(spec.path);
      return {
        exists: match !== undefined,
        holds: match !== undefined,
        ...(match !== undefined ? { match } : {}),
      };
    }
    case 'DirectoryNotEmpty':
      return directoryNotEmpty(spec.path);
    case 'PathChanged':
    case 'PathModified': {
      const snapshot = snapshotOf(spec.path);
      return { exists: snapshot !== '', holds: false, snapshot };
    }
    default: {
      const exists = fs.existsSync(spec.path);
      return { exists, holds: exists };
    }
  }
}

/** MakeDirectory=: mkdir -p with DirectoryMode= for the directories created. */
export function makeWatchedDirectory(path: string, mode: number): void {
  fs.mkdirSync(path, { recursive: true, mode });
}
