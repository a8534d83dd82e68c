// rules-lexer: golden table of rule text → pairs (with file:line:column) and of every error case.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lexRules, RULE_LINE_MAX, type RuleDiagnostic } from '../../src/devices/rules/rules-lexer';

type Pair = [key: string, attr: string | undefined, op: string, value: string, line: number, column: number];

interface LexCase {
  description: string;
  text: string;
  pairs: Pair[][];
  /** `line:column severity code` of each diagnostic. */
  diagnostics?: string[];
}

const CASES: LexCase[] = [
  { description: 'empty file', text: '', pairs: [] },
  { description: 'comments and blank lines', text: '# c\n\n   # indented\n\t\n', pairs: [] },
  {
    description: 'one rule, commas and spaces',
    text: 'KERNEL=="sda", SYMLINK+="disk"',
    pairs: [
      [
        ['KERNEL', undefined, '==', 'sda', 1, 1],
        ['SYMLINK', undefined, '+=', 'disk', 1, 16],
      ],
    ],
  },
  {
    description: 'all operators',
    text: 'A=="1" B!="2" C="3" D+="4" E-="5" F:="6"',
    pairs: [
      [
        ['A', undefined, '==', '1', 1, 1],
        ['B', undefined, '!=', '2', 1, 8],
        ['C', undefined, '=', '3', 1, 15],
        ['D', undefined, '+=', '4', 1, 21],
        ['E', undefined, '-=', '5', 1, 28],
        ['F', undefined, ':=', '6', 1, 35],
      ],
    ],
  },
  {
    description: 'KEY{attr} forms and spaces around the operator',
    text: 'ATTR{../idVendor} == "1d6b",ENV{.X}= "y", IMPORT{program}="x --y"',
    pairs: [
      [
        ['ATTR', '../idVendor', '==', '1d6b', 1, 1],
        ['ENV', '.X', '=', 'y', 1, 29],
        ['IMPORT', 'program', '=', 'x --y', 1, 43],
      ],
    ],
  },
  {
    description: 'backslash continuation keeps physical line and column of each pair',
    text: 'KERNEL=="a*", \\\n  SUBSYSTEM=="block", \\\n  TAG+="x"\nACTION=="add"',
    pairs: [
      [
        ['KERNEL', undefined, '==', 'a*', 1, 1],
        ['SUBSYSTEM', undefined, '==', 'block', 2, 3],
        ['TAG', undefined, '+=', 'x', 3, 3],
      ],
      [['ACTION', undefined, '==', 'add', 4, 1]],
    ],
  },
  {
    description: 'comment line inside a continuation is skipped',
    text: 'A=="1", \\\n# note\nB=="2"',
    pairs: [
      [
        ['A', undefined, '==', '1', 1, 1],
        ['B', undefined, '==', '2', 3, 1],
      ],
    ],
  },
  {
    description: 'an empty line ends a continuation',
    text: 'A=="1" \\\n\nB=="2"',
    pairs: [[['A', undefined, '==', '1', 1, 1]], [['B', undefined, '==', '2', 3, 1]]],
  },
  {
    description: 'CRLF line ends',
    text: 'A=="1"\r\nB=="2"\r\n',
    pairs: [[['A', undefined, '==', '1', 1, 1]], [['B', undefined, '==', '2', 2, 1]]],
  },
  {
    description: 'plain string: only \\" is an escape',
    text: 'PROGRAM="/bin/sh -c \\"echo\\" \\n $$x"',
    pairs: [[['PROGRAM', undefined, '=', '/bin/sh -c "echo" \\n $$x', 1, 1]]],
  },
  {
    description: 'e"…" strings decode C escapes',
    text: 'ENV{X}=e"a\\tb\\n\\x41\\\\\\"\\101"',
    pairs: [[['ENV', 'X', '=', 'a\tb\nA\\"A', 1, 1]]],
  },
  { description: 'empty value', text: 'ENV{X}==""', pairs: [[['ENV', 'X', '==', '', 1, 1]]] },
  { description: 'trailing comma', text: 'A=="1",', pairs: [[['A', undefined, '==', '1', 1, 1]]] },
  {
    description: 'missing separator between pairs is a warning, pair kept',
    text: 'A=="1"B=="2"',
    pairs: [
      [
        ['A', undefined, '==', '1', 1, 1],
        ['B', undefined, '==', '2', 1, 7],
      ],
    ],
    diagnostics: ['1:7 warning ERR_RULE_SYNTAX'],
  },
  {
    description: 'unterminated value drops the line, not the file',
    text: 'A=="1", B=="2\nC=="3"',
    pairs: [[['C', undefined, '==', '3', 2, 1]]],
    diagnostics: ['1:12 error ERR_RULE_SYNTAX'],
  },
  { description: 'unquoted value', text: 'A==1', pairs: [], diagnostics: ['1:4 error ERR_RULE_SYNTAX'] },
  {
    description: 'missing operator',
    text: 'KERNEL "x"',
    pairs: [],
    diagnostics: ['1:8 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'unknown operator ~=',
    text: 'A~="x"',
    pairs: [],
    diagnostics: ['1:2 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'garbage where a key should be',
    text: 'A=="1", @@',
    pairs: [],
    diagnostics: ['1:9 error ERR_RULE_SYNTAX'],
  },
  {
    description: "unterminated '{'",
    text: 'ATTR{x=="1"',
    pairs: [],
    diagnostics: ['1:5 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'bad escape in e"…"',
    text: 'B=="ok"\nENV{X}=e"\\q"',
    pairs: [[['B', undefined, '==', 'ok', 1, 1]]],
    diagnostics: ['2:10 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'error on a continued line points at the physical line',
    text: 'A=="1", \\\n   B=="2", \\\n   C=x',
    pairs: [],
    diagnostics: ['3:6 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'continuation at end of file',
    text: 'A=="1" \\',
    pairs: [],
    diagnostics: ['1:1 error ERR_RULE_SYNTAX'],
  },
  {
    description: 'over-long line',
    text: `A=="${'x'.repeat(RULE_LINE_MAX)}"\nB=="2"`,
    pairs: [[['B', undefined, '==', '2', 2, 1]]],
    diagnostics: ['1:1 error ERR_RULE_SYNTAX'],
  },
];

function describeDiag(d: RuleDiagnostic): string {
  return `${d.source.line}:${d.source.column} ${d.severity} ${d.code}`;
}

describe('rules-lexer golden table', () => {
  for (const c of CASES) {
    test(c.description, () => {
      const r = lexRules(c.text, 'test.rules');
      const got = r.lines.map((l) =>
        l.pairs.map((p): Pair => [p.key, p.attr, p.op, p.value, p.source.line, p.source.column]),
      );
      assert.deepEqual(got, c.pairs);
      assert.deepEqual(r.diagnostics.map(describeDiag), c.diagnostics ?? []);
      for (const d of r.diagnostics) assert.equal(d.source.file, 'test.rules');
      for (const l of r.lines) assert.deepEqual(l.source, l.pairs[0]?.source);
    });
  }
});
