// /etc/fstab into unit files, the way systemd-fstab-generator(8) makes them: one .mount unit per
// line (an .automount next to it with x-systemd.automount), linked into local-fs.target's
// .requires (.wants with nofail; nothing with noauto), UUID=/LABEL=/PARTUUID=/PARTLABEL= sources
// turned into the /dev/disk/by-* links the rules engine makes. Pure: text in, unit texts out; a
// line that cannot be used is reported with file:line and skipped. writeFstabUnits() puts the
// result in a generator directory for the unit loader.
import fs = require('node:fs');
import path = require('node:path');
import { unitNameFromPath } from '../units/unit-name';
import { parseTimeSpan } from '../units/value-parsers';
import { hasMountOption } from './mount-config';

export interface FstabEntry {
  /** fs_spec as written (unescaped): '/dev/sda1', 'UUID=…', 'tmpfs'. */
  spec: string;
  /** fs_file, simplified. */
  where: string;
  /** fs_vfstype ('auto' when the line has no third field). */
  type: string;
  /** fs_mntops ('defaults' when absent). */
  options: string;
  freq: number;
  passno: number;
  line: number;
}

export interface FstabProblem {
  file: string;
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

/** A file the generator writes, relative to the generator directory. */
export interface GeneratedFile {
  path: string;
  text: string;
}

/** A symlink the generator makes: `<target>.<kind>/<unit>` → the generated unit. */
export interface GeneratedLink {
  target: string;
  kind: 'wants' | 'requires';
  unit: string;
}

export interface FstabUnits {
  files: GeneratedFile[];
  links: GeneratedLink[];
  problems: FstabProblem[];
  /** The mount units made, in fstab order (for tests and logs). */
  mounts: string[];
}

/** fstab(5): fields are separated by blanks; \040, \011, \012, \134 escape them in a field. */
function unescapeField(field: string): string {
  return field.replace(/\\([0-3][0-7]{2})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse fstab text. Never throws; bad lines are problems with file:line. */
export function parseFstab(text: string, file: string): { entries: FstabEntry[]; problems: FstabProblem[] } {
  const entries: FstabEntry[] = [];
  const problems: FstabProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = (lines[i] as string).replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const bad = (message: string): void => {
      problems.push({ file, line: lineNo, severity: 'error', message: `${message}, line skipped` });
    };
    const fields = trimmed.split(/[ \t]+/);
    if (fields.length < 2) {
      bad(`only ${fields.length} field (fs_spec fs_file [type [options [freq [passno]]]] expected)`);
      continue;
    }
    if (fields.length > 6) {
      bad(`${fields.length} fields, at most 6 expected`);
      continue;
    }
    const [spec, file2, type, options, freq, passno] = fields.map(unescapeField) as [
      string,
      string,
      string | undefined,
      string | undefined,
      string | undefined,
      string | undefined,
    ];
    if ([...trimmed].some((ch) => (ch < ' ' && ch !== '\t') || ch === '\x7f')) {
      bad('control characters in the line');
      continue;
    }
    // '\012' and the like: a field goes into a unit file as a value, where a newline starts a new line.
    // eslint-disable-next-line no-control-regex
    if ([spec, file2, type, options].some((f) => f !== undefined && /[\x00-\x1f\x7f]/.test(f))) {
      bad('control characters in an escaped field');
      continue;
    }
    const num = (v: string | undefined, what: string): number | undefined => {
      if (v === undefined) return 0;
      if (!/^[0-9]+$/.test(v)) {
        bad(`${what} ${JSON.stringify(v)} is not a number`);
        return undefined;
      }
      return Number(v);
    };
    const f = num(freq, 'fs_freq');
    if (f === undefined) continue;
    const p = num(passno, 'fs_passno');
    if (p === undefined) continue;
    entries.push({
      spec,
      where: file2,
      type: type ?? 'auto',
      options: options ?? 'defaults',
      freq: f,
      passno: p,
      line: lineNo,
    });
  }
  return { entries, problems };
}

/** udev's escaping of a label or id in a by-* link name (udev_replace_chars + encode): '/' and blanks → \x2f, \x20. */
function escapeLinkName(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0) as number;
    if (ch === '/' || ch === '\\' || c <= 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/**
 * systemd's fstab_node_to_udev_node: UUID=, LABEL=, PARTUUID=, PARTLABEL= (quotes stripped) →
 * /dev/disk/by-uuid/…, by-label/…, by-partuuid/…, by-partlabel/…; anything else as it is.
 */
export function resolveFstabSource(spec: string): string {
  const m = /^(UUID|LABEL|PARTUUID|PARTLABEL)=(.*)$/.exec(spec);
  if (m === null) return spec;
  let value = m[2] as string;
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]))
    value = value.slice(1, -1);
  const dir = { UUID: 'by-uuid', LABEL: 'by-label', PARTUUID: 'by-partuuid', PARTLABEL: 'by-partlabel' }[
    m[1] as 'UUID' | 'LABEL' | 'PARTUUID' | 'PARTLABEL'
  ];
  // by-uuid and by-partuuid links are lower case for GPT/DOS ids as udev makes them.
  if (m[1] === 'PARTUUID') value = value.toLowerCase();
  return `/dev/disk/${dir}/${escapeLinkName(value)}`;
}

/** All values of option `name=` in an options list, in order. */
function optionValues(options: string, name: string): string[] {
  const out: string[] = [];
  for (const o of options.split(',')) if (o.startsWith(`${name}=`)) out.push(o.slice(name.length + 1));
  return out;
}

function lastValue(options: string, name: string): string | undefined {
  const v = optionValues(options, name);
  return v[v.length - 1];
}

/** systemd's specifier_escape: the loader expands '%' in these values, so the generator doubles it. */
function escapeSpecifiers(value: string): string {
  return value.replace(/%/g, '%%');
}

function simplify(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return `/${parts.join('/')}`;
}

/** Generate units from fstab text (systemd-fstab-generator's rules, non-initrd). */
export function generateFstabUnits(text: string, file: string): FstabUnits {
  const parsed = parseFstab(text, file);
  const out: FstabUnits = { files: [], links: [], problems: [...parsed.problems], mounts: [] };
  const seen = new Map<string, number>();
  for (const e of parsed.entries) {
    const warn = (message: string): void => {
      out.problems.push({ file, line: e.line, severity: 'warning', message });
    };
    const error = (message: string): void => {
      out.problems.push({ file, line: e.line, severity: 'error', message: `${message}, line skipped` });
    };
    if (e.type === 'swap') {
      warn(`swap ${e.spec}: swap units are not supported by triggerd, line skipped`);
      continue;
    }
    if (!e.where.startsWith('/')) {
      error(`mount point ${JSON.stringify(e.where)} is not an absolute path`);
      continue;
    }
    if (e.where.split('/').some((p) => p === '..')) {
      error(`mount point ${JSON.stringify(e.where)} has a '..' component`);
      continue;
    }
    const where = simplify(e.where);
    const what = resolveFstabSource(e.spec);
    // A unit file trims blanks around a value and continues a line that ends in an odd number of
    // backslashes, so such a value would not reach the mount unit as written.
    if ([what, where, e.type, e.options].some((v) => v !== v.trim() || /(^|[^\\])(\\\\)*\\$/.test(v))) {
      error('a field starts or ends with a blank, or ends with a backslash');
      continue;
    }
    let name: string;
    try {
      name = unitNameFromPath(where, 'mount');
    } catch (err) {
      error(`mount point ${JSON.stringify(e.where)}: ${(err as Error).message}`);
      continue;
    }
    const dup = seen.get(name);
    if (dup !== undefined) {
      error(`${where} is mounted by line ${dup} already (duplicate entry)`);
      continue;
    }
    seen.set(name, e.line);
    const o = e.options;
    const noauto = hasMountOption(o, 'noauto');
    const nofail = hasMountOption(o, 'nofail');
    const automount = hasMountOption(o, 'x-systemd.automount');
    const timeArg = (key: string): string | undefined => {
      const v = lastValue(o, key);
      if (v === undefined) return undefined;
      const r = parseTimeSpan(v);
      if (!r.ok) {
        warn(`${key}=${v}: ${r.message}, ignored`);
        return undefined;
      }
      return v;
    };
    const unit: string[] = [
      `# Automatically generated by triggerd from ${file}:${e.line}`,
      '',
      '[Unit]',
      'Documentation=man:fstab(5) man:systemd-fstab-generator(8)',
      `SourcePath=${file}`,
    ];
    if (!nofail && !automount) unit.push('Before=local-fs.target');
    for (const req of optionValues(o, 'x-systemd.requires')) {
      const r = escapeSpecifiers(req);
      if (req.startsWith('/')) unit.push(`RequiresMountsFor=${r}`);
      else unit.push(`After=${r}`, `Requires=${r}`);
    }
    for (const p of optionValues(o, 'x-systemd.requires-mounts-for'))
      unit.push(`RequiresMountsFor=${escapeSpecifiers(p)}`);
    for (const u of optionValues(o, 'x-systemd.before')) unit.push(`Before=${escapeSpecifiers(u)}`);
    for (const u of optionValues(o, 'x-systemd.after')) unit.push(`After=${escapeSpecifiers(u)}`);
    unit.push('', '[Mount]', `What=${escapeSpecifiers(what)}`, `Where=${escapeSpecifiers(where)}`);
    if (e.type !== 'auto' && e.type !== '') unit.push(`Type=${escapeSpecifiers(e.type)}`);
    if (o !== '' && o !== 'defaults') unit.push(`Options=${escapeSpecifiers(o)}`);
    const mountTimeout = timeArg('x-systemd.mount-timeout');
    if (mountTimeout !== undefined) unit.push(`TimeoutSec=${mountTimeout}`);
    out.files.push({ path: name, text: `${unit.join('\n')}\n` });
    out.mounts.push(name);

    // x-systemd.device-timeout: how long the start job waits for the device (a drop-in on it).
    const deviceTimeout = timeArg('x-systemd.device-timeout');
    if (deviceTimeout !== undefined && what.startsWith('/dev/')) {
      try {
        const dev = unitNameFromPath(what, 'device');
        out.files.push({
          path: `${dev}.d/50-device-timeout.conf`,
          text: `# Automatically generated by triggerd from ${file}:${e.line}\n\n[Unit]\nJobRunningTimeoutSec=${deviceTimeout}\n`,
        });
      } catch {
        warn(`x-systemd.device-timeout: ${what} has no device unit name, ignored`);
      }
    }

    const wantedBy = optionValues(o, 'x-systemd.wanted-by');
    const requiredBy = optionValues(o, 'x-systemd.required-by');
    if (automount) {
      const am = unitNameFromPath(where, 'automount');
      const a: string[] = [
        `# Automatically generated by triggerd from ${file}:${e.line}`,
        '',
        '[Unit]',
        'Documentation=man:fstab(5) man:systemd-fstab-generator(8)',
        `SourcePath=${file}`,
      ];
      if (!nofail) a.push('Before=local-fs.target');
      a.push('', '[Automount]', `Where=${escapeSpecifiers(where)}`);
      const idle = timeArg('x-systemd.idle-timeout');
      if (idle !== undefined) a.push(`TimeoutIdleSec=${idle}`);
      out.files.push({ path: am, text: `${a.join('\n')}\n` });
      if (!noauto)
        out.links.push({ target: 'local-fs.target', kind: nofail ? 'wants' : 'requires', unit: am });
    } else if (!noauto) {
      if (wantedBy.length === 0 && requiredBy.length === 0)
        out.links.push({ target: 'local-fs.target', kind: nofail ? 'wants' : 'requires', unit: name });
    }
    if (!automount) {
      for (const t of wantedBy) out.links.push({ target: t, kind: 'wants', unit: name });
      for (const t of requiredBy) out.links.push({ target: t, kind: 'requires', unit: name });
    }
  }
  return out;
}

const LOCAL_FS_TARGET = '[Unit]\nDescription=Local File Systems (fstab)\n';

/**
 * Write the generated units into `dir` (emptied first: a reload rebuilds from scratch), with the
 * .wants/.requires symlinks, and a local-fs.target that multi-user.target wants (the unit path's
 * own local-fs.target wins, as the generator directory comes last). Returns what was made.
 */
export function writeFstabUnits(fstabPath: string, dir: string): FstabUnits {
  fs.rmSync(dir, { recursive: true, force: true });
  let text = '';
  try {
    text = fs.readFileSync(fstabPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      return {
        files: [],
        links: [],
        mounts: [],
        problems: [
          { file: fstabPath, line: 0, severity: 'error', message: `cannot read: ${code ?? String(err)}` },
        ],
      };
    }
  }
  const units = generateFstabUnits(text, fstabPath);
  if (units.files.length === 0) return units;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const f of units.files) {
    const p = path.join(dir, f.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, f.text);
  }
  fs.writeFileSync(path.join(dir, 'local-fs.target'), LOCAL_FS_TARGET);
  const link = (target: string, kind: string, unit: string): void => {
    const d = path.join(dir, `${target}.${kind}`);
    fs.mkdirSync(d, { recursive: true });
    fs.symlinkSync(path.join(dir, unit), path.join(d, unit));
  };
  for (const l of units.links) link(l.target, l.kind, l.unit);
  link('multi-user.target', 'wants', 'local-fs.target');
  return units;
}

/** The generator as the daemon runs it (start and reload): write, then log every problem with file:line. */
export function runFstabGenerator(
  fstabPath: string,
  dir: string,
  log: {
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
    info(obj: object, msg: string): void;
  },
): FstabUnits {
  const units = writeFstabUnits(fstabPath, dir);
  for (const p of units.problems) {
    log[p.severity === 'error' ? 'error' : 'warn'](
      { code: 'ERR_FSTAB_LINE' },
      `${p.file}:${p.line}: ${p.message}`,
    );
  }
  if (units.mounts.length > 0)
    log.info({ fstab: fstabPath, mounts: units.mounts.length }, 'fstab read into mount units');
  return units;
}
