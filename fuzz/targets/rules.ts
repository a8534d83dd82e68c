// udev rules text through the lexer and compiler (src/devices/rules/), then what the compiled
// program hands the executor: its patterns matched and its values substituted. Contract: never
// throws; every diagnostic has a code from RULE_ERROR_CODES and a file:line:column inside the
// text; GOTO resolves to a later LABEL of the same name in the same file; a compiled pattern
// answers in bounded time even for a long value built from its own characters (the executor
// matches rule patterns against sysfs attributes a device supplies); substitution never throws.
import * as fc from 'fast-check';
import { compileRules, type CompiledRules } from '../../src/devices/rules/rules-compiler';
import { RULE_ERROR_CODES, RULE_LINE_MAX } from '../../src/devices/rules/rules-lexer';
import { substitute } from '../../src/devices/rules/substitute';
import { defineTarget, violation, type Tally } from '../target';
import { mutantArbitrary, PROTO_NAMES, randomTextArbitrary, showText, utf8Text } from '../mutate';
import { nonEmpty, readFile, readFiles, repo, type CorpusOptions } from '../corpus';
import { RULE_ATTRS, RULE_KEYS, RULE_VALUES, SUBSTITUTION_CONTEXT } from '../fragments';

const CODES: ReadonlySet<string> = new Set(RULE_ERROR_CODES);

const OPS = ['==', '!=', '=', '+=', '-=', ':='];
const SEPARATORS = [', ', ',', ' ', '', ',\t', ', \\\n  ', ',,'];

/** One key-value pair, mostly well-formed. */
const pairArbitrary: fc.Arbitrary<string> = fc
  .record({
    key: fc.oneof(
      { weight: 18, arbitrary: fc.constantFrom(...RULE_KEYS) },
      { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z_]{0,8}$/) },
      { weight: 1, arbitrary: fc.constantFrom(...PROTO_NAMES) },
    ),
    attr: fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(...RULE_ATTRS) },
      { weight: 1, arbitrary: fc.constantFrom(...PROTO_NAMES).map((n) => `{${n}}`) },
    ),
    op: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...OPS) }, fc.constantFrom('', '~=', '===', ' = ')),
    value: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...RULE_VALUES) },
      {
        weight: 2,
        arbitrary: fc.array(fc.constantFrom(...RULE_VALUES), { maxLength: 4 }).map((v) => v.join('')),
      },
      { weight: 1, arbitrary: randomTextArbitrary(24) },
      { weight: 1, arbitrary: fc.constantFrom(...PROTO_NAMES) },
    ),
    quote: fc.oneof({ weight: 9, arbitrary: fc.constant('"') }, fc.constantFrom('e"', '', "'")),
  })
  .map(({ key, attr, op, value, quote }) => {
    const v = quote === 'e"' ? value : value.replace(/"/g, '\\"');
    return `${key}${attr}${op}${quote}${v}${quote === '' ? '' : '"'}`;
  });

const lineArbitrary: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .array(fc.tuple(pairArbitrary, fc.constantFrom(...SEPARATORS)), { minLength: 1, maxLength: 6 })
      .map((pairs) => pairs.map(([p, s], i) => (i === 0 ? p : s + p)).join('')),
  },
  { weight: 1, arbitrary: fc.constantFrom('# comment', '', '   ', '\\', 'LABEL="end"', 'GOTO="end"', '\r') },
);

const fileArbitrary: fc.Arbitrary<string> = fc
  .tuple(fc.array(lineArbitrary, { minLength: 1, maxLength: 12 }), fc.constantFrom('\n', '\r\n'))
  .map(([lines, eol]) => lines.join(eol) + eol);

/** Longest value a pattern is tried on: a USB string descriptor or a sysfs attribute line. */
const HOSTILE_VALUE_LENGTH = 512;

/** A value that makes backtracking matchers work hardest: the pattern's own characters, repeated. */
function hostileValue(pattern: string): string {
  const literal = pattern.replace(/[*?[\]|\\!]/g, '') || 'a';
  let v = '';
  while (v.length < HOSTILE_VALUE_LENGTH) v += literal;
  return v.slice(0, HOSTILE_VALUE_LENGTH) + '\u0001';
}

function checkCompiled(compiled: CompiledRules, files: { file: string; text: string }[], tally: Tally): void {
  const lineCount = new Map(files.map((f) => [f.file, f.text.split('\n')]));
  for (const d of compiled.diagnostics) {
    tally.add(d.code);
    if (!CODES.has(d.code)) violation(`undocumented diagnostic code ${d.code}`);
    if (d.severity !== 'error' && d.severity !== 'warning') violation(`severity ${String(d.severity)}`);
    if (typeof d.message !== 'string' || d.message === '') violation('empty message');
    const lines = lineCount.get(d.source.file);
    if (lines === undefined) violation(`diagnostic names file ${d.source.file}`);
    const { line, column } = d.source;
    if (!Number.isInteger(line) || line < 1 || line > lines.length)
      violation(`diagnostic at line ${line} of a ${lines.length}-line file: ${d.message}`);
    const physical = lines[line - 1] as string;
    if (!Number.isInteger(column) || column < 1 || column > physical.length + 1)
      violation(`diagnostic at ${line}:${column}, the line has ${physical.length} characters: ${d.message}`);
  }
  if (compiled.lines.length > 0) tally.add('compiled');
  let tokens = 0;
  const fileOf = (i: number): string => (compiled.lines[i] as { source: { file: string } }).source.file;
  compiled.lines.forEach((line, i) => {
    tokens += line.tokens.length;
    if (line.source.line < 1 || line.source.column < 1) violation(`line ${i} has no position`);
    if (line.gotoIndex !== undefined) {
      const target = compiled.lines[line.gotoIndex];
      if (target === undefined || line.gotoIndex <= i || fileOf(line.gotoIndex) !== line.source.file)
        violation(`GOTO of line ${i} resolved to ${line.gotoIndex}`);
      if (target.label !== line.gotoLabel)
        violation(`GOTO="${line.gotoLabel}" jumps to LABEL="${target.label}"`);
    }
    for (const t of line.tokens) {
      if (t.source.line < 1 || t.source.column < 1) violation(`token ${t.type} without a position`);
      if ('pattern' in t) {
        const p = t.pattern;
        for (const v of [undefined, '', p.text, hostileValue(p.text)]) {
          if (typeof p.test(v) !== 'boolean')
            violation(`pattern ${JSON.stringify(p.text)} answered a non-boolean`);
        }
      }
      if ('value' in t && typeof t.value === 'string') {
        const r = substitute(t.value, SUBSTITUTION_CONTEXT, {
          replaceWhitespace: t.type === 'assign-symlink',
        });
        if (typeof r.value !== 'string') violation('substitution gave no string');
        for (const problem of r.problems)
          if (!(problem.offset >= 0 && problem.offset <= t.value.length))
            violation(`substitution problem at offset ${problem.offset} of ${t.value.length}`);
      }
    }
  });
  if (tokens !== compiled.tokenCount) violation(`tokenCount ${compiled.tokenCount}, counted ${tokens}`);
}

export const rulesTarget = (options: CorpusOptions) =>
  defineTarget<string[]>({
    name: 'rules',
    about: 'compileRules (lexer + compiler) on one or two files, then pattern matching and substitution',
    arbitrary: () => {
      const isRules = (f: string): boolean => f.endsWith('.rules');
      const corpus = nonEmpty(
        [
          ...readFiles(repo('rules'), isRules),
          ...readFiles(repo('test/fixtures'), isRules),
          ...(options.system
            ? [
                ...readFiles('/lib/udev/rules.d', isRules),
                ...readFiles('/etc/udev/rules.d', isRules),
                ...readFile('/work/shared/reference/udev/rules-corpus.md'),
              ]
            : []),
        ],
        'KERNEL=="loop*", SYMLINK+="x"\n',
      );
      const oneFile = fc.oneof(
        { weight: 4, arbitrary: fileArbitrary },
        { weight: 4, arbitrary: mutantArbitrary(corpus).map(utf8Text) },
        { weight: 1, arbitrary: fileArbitrary.map((t) => `${t.slice(0, -1)}${'x'.repeat(RULE_LINE_MAX)}\n`) },
        { weight: 1, arbitrary: randomTextArbitrary(512) },
      );
      return fc.array(oneFile, { minLength: 1, maxLength: 2 });
    },
    check: (texts, tally) => {
      const files = texts.map((text, i) => ({ file: `/fuzz/${i}.rules`, text }));
      checkCompiled(compileRules(files), files, tally);
    },
    size: (texts) => texts.reduce((n, t) => n + t.length, 0),
    show: (texts) => texts.map((t, i) => `file ${i}: ${showText(t)}`).join('\n'),
  });
