// /proc/self/mountinfo as data (proc_pid_mountinfo(5)), for mount units: a parser that never
// throws (a garbled line is reported with its line number and skipped) and a differ over mount
// ids. Both pure; the watcher (mountinfo-watch.ts) decides when to read.
//
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2)(3)   (4)   (5)      (6)     (7)    (8) (9)    (10)      (11)
//
// Fields 4, 5, 10 (and, from some file systems, 11) escape space, tab, newline and backslash as
// a backslash and three octal digits (the kernel's mangle()/seq_escape).

export interface MountEntry {
  /** Mount id (unique in the namespace until the mount goes; reused afterwards). */
  id: number;
  parentId: number;
  major: number;
  minor: number;
  /** The path inside the file system that is mounted here ('/' for a whole file system). */
  root: string;
  mountPoint: string;
  /** Per-mount options, as written: 'rw,nosuid,relatime'. */
  options: string;
  /** Optional fields: 'shared:1', 'master:2', 'propagate_from:3', 'unbindable'. */
  optionalFields: string[];
  /** File system type, with a subtype when there is one: 'fuse.sshfs'. */
  fsType: string;
  /** Mount source ('none' when the file system has none). */
  source: string;
  /** Per-superblock options: 'rw,errors=continue'. */
  superOptions: string;
}

/** One line that could not be read, with why. */
export interface MountInfoProblem {
  /** 1-based line number in the text. */
  line: number;
  reason: string;
  /** The line, cut to 200 characters. */
  text: string;
}

export interface ParsedMountInfo {
  /** Every well-formed line, in the kernel's order (parents before children). */
  entries: MountEntry[];
  problems: MountInfoProblem[];
  /** Each well-formed line's text → its entry: pass it to the next parse to reuse unchanged lines. */
  byLine: Map<string, MountEntry>;
}

/**
 * Undo the kernel's octal escapes (`\040` → ' ', `\134` → '\'). Other backslashes stay as they
 * are. Bytes are decoded as UTF-8 after unescaping, so an escaped byte sequence forms characters.
 */
export function unescapeMountField(field: string): string {
  if (!field.includes('\\')) return field;
  const bytes: number[] = [];
  const raw = Buffer.from(field, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (
      c === 0x5c &&
      i + 3 < raw.length &&
      isOctal(raw[i + 1], 0x33) &&
      isOctal(raw[i + 2], 0x37) &&
      isOctal(raw[i + 3], 0x37)
    ) {
      bytes.push(
        ((raw[i + 1] as number) - 0x30) * 64 +
          ((raw[i + 2] as number) - 0x30) * 8 +
          (raw[i + 3] as number) -
          0x30,
      );
      i += 3;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isOctal(c: number | undefined, max: number): boolean {
  return c !== undefined && c >= 0x30 && c <= max;
}

/** The kernel's escaping, for tests and for writing fixtures: space, tab, newline, backslash. */
export function escapeMountField(value: string): string {
  return value.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

const DECIMAL = /^(0|[1-9][0-9]{0,9})$/;

function parseLine(line: string): MountEntry | string {
  const fields = line.split(' ');
  if (fields.length < 9) return `${fields.length} fields, at least 9 expected`;
  const separator = fields.indexOf('-', 6);
  if (separator < 0) return "no '-' separator after the optional fields";
  if (fields.length < separator + 3)
    return `only ${fields.length - separator - 1} fields after '-', 2 or 3 expected`;
  if (fields.length > separator + 4)
    return `${fields.length - separator - 1} fields after '-', at most 3 expected`;
  const [idText, parentText, devText, rootText, pointText, options] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!DECIMAL.test(idText)) return `mount id ${JSON.stringify(idText.slice(0, 20))} is not a number`;
  if (!DECIMAL.test(parentText))
    return `parent id ${JSON.stringify(parentText.slice(0, 20))} is not a number`;
  const colon = devText.indexOf(':');
  const major = devText.slice(0, colon);
  const minor = devText.slice(colon + 1);
  if (colon < 0 || !DECIMAL.test(major) || !DECIMAL.test(minor))
    return `device ${JSON.stringify(devText.slice(0, 20))} is not major:minor`;
  if (!rootText.startsWith('/') && rootText !== 'none')
    return `root ${JSON.stringify(rootText.slice(0, 40))} is not a path`;
  if (!pointText.startsWith('/'))
    return `mount point ${JSON.stringify(pointText.slice(0, 40))} is not absolute`;
  if (options === '') return 'no mount options';
  const fsType = fields[separator + 1] as string;
  if (fsType === '') return 'empty file system type';
  return {
    id: Number(idText),
    parentId: Number(parentText),
    major: Number(major),
    minor: Number(minor),
    root: unescapeMountField(rootText),
    mountPoint: unescapeMountField(pointText),
    options,
    optionalFields: fields.slice(6, separator).filter((f) => f !== ''),
    fsType: unescapeMountField(fsType),
    source: unescapeMountField(fields[separator + 2] as string),
    superOptions: fields[separator + 3] ?? '',
  };
}

/**
 * Parse the whole of mountinfo. Never throws; lines it cannot read are in `problems`. `previous`
 * (the last parse's byLine) lets an unchanged line keep its entry object without being parsed
 * again, so re-reading a table of thousands of mounts costs little more than splitting it.
 */
export function parseMountInfo(text: string, previous?: ReadonlyMap<string, MountEntry>): ParsedMountInfo {
  const entries: MountEntry[] = [];
  const problems: MountInfoProblem[] = [];
  const byLine = new Map<string, MountEntry>();
  const seen = new Set<number>();
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line.length === 0) continue;
    const parsed = previous?.get(line) ?? parseLine(line);
    if (typeof parsed === 'string') {
      problems.push({ line: lineNo, reason: parsed, text: line.slice(0, 200) });
    } else if (seen.has(parsed.id)) {
      problems.push({
        line: lineNo,
        reason: `mount id ${parsed.id} appears twice`,
        text: line.slice(0, 200),
      });
    } else {
      seen.add(parsed.id);
      entries.push(parsed);
      byLine.set(line, parsed);
    }
  }
  return { entries, problems, byLine };
}

/** A mount table keyed by mount id (insertion order = the kernel's order). */
export type MountTable = ReadonlyMap<number, MountEntry>;

export function mountTable(entries: readonly MountEntry[]): Map<number, MountEntry> {
  const table = new Map<number, MountEntry>();
  for (const e of entries) table.set(e.id, e);
  return table;
}

export interface MountTableDiff {
  added: MountEntry[];
  removed: MountEntry[];
  /** Same mount id, something else differs (options after a remount, the point after a move). */
  changed: { before: MountEntry; after: MountEntry }[];
}

export function sameMountEntry(a: MountEntry, b: MountEntry): boolean {
  return (
    a.parentId === b.parentId &&
    a.major === b.major &&
    a.minor === b.minor &&
    a.root === b.root &&
    a.mountPoint === b.mountPoint &&
    a.options === b.options &&
    a.fsType === b.fsType &&
    a.source === b.source &&
    a.superOptions === b.superOptions &&
    a.optionalFields.length === b.optionalFields.length &&
    a.optionalFields.every((f, i) => f === b.optionalFields[i])
  );
}

/** What changed from `before` to `after`, by mount id. O(n) in the size of both tables. */
export function diffMountTables(before: MountTable, after: MountTable): MountTableDiff {
  const diff: MountTableDiff = { added: [], removed: [], changed: [] };
  for (const [id, entry] of after) {
    const old = before.get(id);
    if (old === undefined) diff.added.push(entry);
    else if (old !== entry && !sameMountEntry(old, entry)) diff.changed.push({ before: old, after: entry });
  }
  for (const [id, entry] of before) if (!after.has(id)) diff.removed.push(entry);
  return diff;
}

export function isEmptyDiff(d: MountTableDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0;
}
