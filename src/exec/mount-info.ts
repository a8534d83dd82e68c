// /proc/self/mountinfo as data (proc(5)): what the sandbox needs to know about existing mounts
// (which paths are mount points, what lies below /sys) and where cgroup2 is mounted.
import { readFileSync } from 'node:fs';

export interface MountInfoEntry {
  id: number;
  parentId: number;
  /** Path inside the file system that is mounted here. */
  root: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** The kernel escapes space, tab, newline and backslash as three octal digits. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses mountinfo text; malformed lines are skipped (the kernel never writes one). */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const fields = line.split(' ');
    // Optional fields (shared:N, master:N, ...) end with a lone '-'.
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0 || separator + 3 > fields.length) continue;
    const id = Number(fields[0]);
    const parentId = Number(fields[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId)) continue;
    entries.push({
      id,
      parentId,
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      options: fields[5].split(','),
      fsType: fields[separator + 1],
      source: unescape(fields[separator + 2]),
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return entries;
}

export function readMountInfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Whether `path` is `parent` or lies below it (both normalized, absolute). */
export function isPathAtOrBelow(path: string, parent: string): boolean {
  if (parent === '/') return true;
  return path === parent || path.startsWith(parent + '/');
}

/** Mount points strictly below `parent` that no other such mount point contains (the top ones). */
export function topMountsBelow(entries: readonly MountInfoEntry[], parent: string): string[] {
  const below = [...new Set(entries.map((e) => e.mountPoint))].filter(
    (p) => p !== parent && isPathAtOrBelow(p, parent),
  );
  return below.filter((p) => !below.some((q) => q !== p && isPathAtOrBelow(p, q))).sort();
}
