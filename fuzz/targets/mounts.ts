// fstab and /proc/self/mountinfo (src/mounts/). Contract: neither parser throws; fstab problems
// carry the file and a line of the text, and every entry a line; the generator's units load
// without syntax errors and say what the fstab line said (What=, Where=, Options=); mountinfo
// problems name a line of the text; entries are well-formed, survive the kernel's escaping and
// a re-parse, and a parse that reuses the previous one's lines gives the same entries.
import * as fc from 'fast-check';
import { generateFstabUnits, parseFstab, resolveFstabSource } from '../../src/mounts/fstab';
import { escapeMountField, parseMountInfo, type MountEntry } from '../../src/mounts/mountinfo';
import { parseUnitText } from '../../src/units/unit-loader';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, randomTextArbitrary, showText, utf8Text } from '../mutate';
import { nonEmpty, readFile, readFiles, repo, type CorpusOptions } from '../corpus';

const FSTAB = '/fuzz/etc/fstab';

const pathPiece = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,12}$/) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      'with\\040space',
      'tab\\011x',
      'nl\\012x',
      'back\\134slash',
      '%i',
      'é',
      '\\',
    ),
  },
);
const mountPoint = fc.oneof(
  { weight: 8, arbitrary: fc.array(pathPiece, { minLength: 0, maxLength: 5 }).map((p) => '/' + p.join('/')) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'none',
      'relative/x',
      '//double//slash/',
      '/' + 'x'.repeat(300),
      '/' + 'a/'.repeat(150),
    ),
  },
);
const fsSpec = fc.oneof(
  fc.constantFrom(
    '/dev/sda1',
    '/dev/disk/by-id/x',
    'tmpfs',
    'proc',
    'none',
    'server:/export',
    '//host/share',
  ),
  fc
    .tuple(
      fc.constantFrom('UUID=', 'LABEL=', 'PARTUUID=', 'PARTLABEL='),
      fc.constantFrom('x', '"quoted label"', 'a/b', '0a34-07de', '', 'with\\040space', '%n'),
    )
    .map(([k, v]) => k + v),
);
const fsType = fc.constantFrom(
  'ext4',
  'tmpfs',
  'auto',
  'swap',
  'nfs',
  'vfat',
  'fuse.sshfs',
  'x y',
  '%t',
  'none',
);
const option = fc.oneof(
  fc.constantFrom(
    'defaults',
    'noauto',
    'nofail',
    'ro',
    'rw',
    'x-systemd.automount',
    'errors=remount-ro',
    'size=1g',
    'umask=0077',
    'x-systemd.makefs',
    '%h',
  ),
  fc
    .tuple(
      fc.constantFrom(
        'x-systemd.device-timeout',
        'x-systemd.mount-timeout',
        'x-systemd.idle-timeout',
        'x-systemd.requires',
        'x-systemd.requires-mounts-for',
        'x-systemd.before',
        'x-systemd.after',
        'x-systemd.wanted-by',
        'x-systemd.required-by',
      ),
      fc.constantFrom(
        '5s',
        '0',
        'infinity',
        'x',
        '',
        'a.service',
        '/mnt/x',
        'local-fs.target',
        '1min 30s',
        '%i.service',
      ),
    )
    .map(([k, v]) => `${k}=${v}`),
);
const fstabLine = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .record({
        spec: fsSpec,
        file: mountPoint,
        type: fsType,
        options: fc.array(option, { minLength: 1, maxLength: 5 }).map((o) => o.join(',')),
        freq: fc.constantFrom('0', '1', '', 'x'),
        passno: fc.constantFrom('0', '1', '2', '', '-1'),
        blank: fc.constantFrom(' ', '\t', '  \t '),
        fields: fc.nat(6),
      })
      .map((r) =>
        [r.spec, r.file, r.type, r.options, r.freq, r.passno].slice(0, Math.max(1, r.fields)).join(r.blank),
      ),
  },
  { weight: 1, arbitrary: fc.constantFrom('# comment', '', '   ', 'a b c d e f g', 'single', '\r') },
);
const fstabText = fc
  .tuple(fc.array(fstabLine, { maxLength: 8 }), fc.constantFrom('\n', '\r\n'))
  .map(([lines, eol]) => lines.join(eol) + eol);

function countLines(text: string): number {
  return text.split('\n').length;
}

/** What the unit loader makes of Where=/What=/Options= values the generator wrote. */
function checkFstab(text: string, tally: Tally): void {
  const lines = countLines(text);
  const parsed = parseFstab(text, FSTAB);
  for (const p of parsed.problems) {
    if (p.file !== FSTAB) violation(`problem names ${p.file}`);
    if (!Number.isInteger(p.line) || p.line < 1 || p.line > lines)
      violation(`problem at line ${p.line} of ${lines}`);
    if (p.severity !== 'error' && p.severity !== 'warning') violation(`severity ${String(p.severity)}`);
  }
  for (const e of parsed.entries) {
    if (!Number.isInteger(e.line) || e.line < 1 || e.line > lines)
      violation(`entry at line ${e.line} of ${lines}`);
    if (!(Number.isSafeInteger(e.freq) && e.freq >= 0 && Number.isSafeInteger(e.passno) && e.passno >= 0))
      violation(`freq ${e.freq} passno ${e.passno}`);
  }
  tally.add(`entries:${Math.min(parsed.entries.length, 3)}`);
  const units = generateFstabUnits(text, FSTAB);
  for (const p of units.problems)
    if (p.file !== FSTAB || p.line < 1 || p.line > lines)
      violation(`generator problem at ${p.file}:${p.line}`);
  const byName = new Map(parsed.entries.map((e) => [e.line, e]));
  for (const f of units.files) {
    if (f.path.includes('/') && !/^[^/]+\.d\/[^/]+\.conf$/.test(f.path))
      violation(`generated path ${f.path}`);
    const name = f.path.includes('/') ? (f.path.split('.d/')[0] as string) : f.path;
    const loaded = parseUnitText(name, f.text, `/fuzz/generator/${f.path}`);
    // A bad value is the fstab author's (systemd's generator copies it too); broken syntax or a
    // specifier the author did not write is the generator's.
    const errors = loaded.diagnostics.filter((d) =>
      ['ERR_UNIT_SYNTAX', 'ERR_UNIT_SPECIFIER', 'ERR_UNIT_ENCODING', 'ERR_UNIT_LINE_TOO_LONG'].includes(
        d.code,
      ),
    );
    if (loaded.loadState === 'error' || errors.length > 0)
      violation(`generated ${f.path} does not load: ${errors.map((d) => d.message).join('; ')}\n${f.text}`);
    tally.add(`generated:${loaded.loadState}`);
    const m = /from .*:(\d+)\n/.exec(f.text);
    const entry = m === null ? undefined : byName.get(Number(m[1]));
    if (loaded.mount !== undefined && entry !== undefined) {
      const what = resolveFstabSource(entry.spec);
      if (loaded.mount.what !== what)
        violation(`What=${JSON.stringify(loaded.mount.what)}, fstab says ${JSON.stringify(what)}`);
      const where =
        '/' +
        entry.where
          .split('/')
          .filter((x) => x !== '' && x !== '.')
          .join('/');
      if (loaded.mount.where !== where)
        violation(`Where=${JSON.stringify(loaded.mount.where)}, fstab says ${JSON.stringify(where)}`);
      const options = entry.options === 'defaults' ? '' : entry.options;
      if (loaded.mount.options !== options)
        violation(`Options=${JSON.stringify(loaded.mount.options)}, fstab says ${JSON.stringify(options)}`);
    }
  }
  const names = new Set(units.files.map((f) => f.path));
  for (const l of units.links)
    if (!names.has(l.unit)) violation(`link to ${l.unit}, which was not generated`);
}

// ---- mountinfo ---------------------------------------------------------------------------------

const mountinfoLine = fc
  .record({
    id: fc.oneof(fc.nat(5000), fc.constantFrom(0, 4294967295, 9999999999)),
    parent: fc.nat(5000),
    major: fc.nat(300),
    minor: fc.nat(1 << 20),
    root: fc.oneof(mountPoint, fc.constantFrom('none')),
    point: mountPoint,
    options: fc.constantFrom('rw,relatime', 'ro', 'rw,nosuid,nodev', ''),
    optional: fc.array(fc.constantFrom('shared:1', 'master:2', 'propagate_from:3', 'unbindable', ''), {
      maxLength: 3,
    }),
    type: fc.constantFrom('ext4', 'tmpfs', 'fuse.sshfs', 'proc', ''),
    source: fc.oneof(
      fc.constantFrom('/dev/vda', 'none', 'my\\040tmpfs', ''),
      fc.stringMatching(/^[ -~]{0,12}$/),
    ),
    superOptions: fc.option(fc.constantFrom('rw', 'rw,errors=continue', ''), { nil: undefined }),
    separator: fc.constantFrom('-', '-', '-', '--', ''),
  })
  .map((r) =>
    [
      r.id,
      r.parent,
      `${r.major}:${r.minor}`,
      r.root,
      r.point,
      r.options,
      ...r.optional,
      r.separator,
      r.type,
      r.source,
      ...(r.superOptions === undefined ? [] : [r.superOptions]),
    ].join(' '),
  );
const mountinfoText = fc.array(mountinfoLine, { maxLength: 12 }).map((l) => l.join('\n') + '\n');

function checkEntry(e: MountEntry): void {
  for (const n of [e.id, e.parentId, e.major, e.minor])
    if (!Number.isSafeInteger(n) || n < 0) violation(`number ${n} in entry ${e.id}`);
  if (!e.mountPoint.startsWith('/')) violation(`mount point ${JSON.stringify(e.mountPoint)}`);
  if (e.options === '' || e.fsType === '') violation(`entry ${e.id} without options or type`);
  if (e.optionalFields.includes('')) violation('empty optional field');
}

function checkMountInfo(text: string, tally: Tally): void {
  const lines = countLines(text);
  const first = parseMountInfo(text);
  tally.add(first.entries.length > 0 ? 'entries' : 'no entries');
  for (const p of first.problems) {
    tally.add('problem');
    if (!Number.isInteger(p.line) || p.line < 1 || p.line > lines)
      violation(`problem at line ${p.line} of ${lines}`);
    if (typeof p.reason !== 'string' || p.reason === '') violation('problem without a reason');
    if (p.text.length > 200) violation('problem text not cut to 200');
  }
  const ids = new Set<number>();
  for (const e of first.entries) {
    checkEntry(e);
    if (ids.has(e.id)) violation(`mount id ${e.id} twice`);
    ids.add(e.id);
  }
  // The same text again, reusing the first parse's lines: the same entries.
  const again = parseMountInfo(text, first.byLine);
  if (JSON.stringify(again.entries) !== JSON.stringify(first.entries))
    violation('reusing byLine changed the entries');
  // The kernel's escaping of the parsed fields reads back as the same entry.
  const rebuilt = first.entries
    .map((e) =>
      [
        e.id,
        e.parentId,
        `${e.major}:${e.minor}`,
        escapeMountField(e.root),
        escapeMountField(e.mountPoint),
        e.options,
        ...e.optionalFields,
        '-',
        escapeMountField(e.fsType),
        escapeMountField(e.source),
        ...(e.superOptions === '' ? [] : [e.superOptions]),
      ].join(' '),
    )
    .join('\n');
  const round = parseMountInfo(rebuilt);
  if (round.problems.length > 0) violation(`re-escaped entries do not parse: ${round.problems[0]?.reason}`);
  if (JSON.stringify(round.entries) !== JSON.stringify(first.entries))
    violation('entries change through escaping');
}

export const fstabTarget = (options: CorpusOptions) =>
  defineTarget<string>({
    name: 'fstab',
    about: 'parseFstab + generateFstabUnits, the generated units loaded back with parseUnitText',
    arbitrary: () => {
      const corpus = nonEmpty(
        [
          ...readFiles(repo('test/fixtures/mounts'), (f) => f.includes('fstab')),
          ...(options.system ? readFile('/etc/fstab') : []),
        ],
        'tmpfs /tmp tmpfs defaults 0 0\n',
      );
      return fc.oneof(
        { weight: 5, arbitrary: fstabText },
        { weight: 4, arbitrary: mutantArbitrary(corpus).map(utf8Text) },
        { weight: 1, arbitrary: randomTextArbitrary(256) },
      );
    },
    check: checkFstab,
    size: (text) => text.length,
    show: (text) => showText(text),
  });

export const mountinfoTarget = (options: CorpusOptions) =>
  defineTarget<string>({
    name: 'mountinfo',
    about: 'parseMountInfo (with and without the previous parse), entries re-escaped and parsed back',
    arbitrary: () => {
      const corpus = nonEmpty(
        [
          ...readFiles(repo('test/fixtures/mounts'), (f) => f.includes('mountinfo')),
          ...(options.system ? readFile('/proc/self/mountinfo') : []),
        ],
        '22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw\n',
      );
      return fc.oneof(
        { weight: 5, arbitrary: mountinfoText },
        { weight: 4, arbitrary: mutantArbitrary(corpus).map(utf8Text) },
        { weight: 1, arbitrary: randomTextArbitrary(256) },
      );
    },
    check: checkMountInfo,
    size: (text) => text.length,
    show: (text) => showText(text),
  });
