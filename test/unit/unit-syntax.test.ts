// The unit-file syntax (systemd.syntax(7)) as a table of cases: input text → sections with
// entries and their line numbers, diagnostics (code and line) and whether systemd would refuse the
// file. Behaviour where the man page is silent (a blank line ends a continuation, an even number
// of trailing backslashes does not continue, "[Unit] junk" is fatal) was checked against
// systemd 252's `systemd-analyze verify`.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUnitSyntax, sectionEntries, type UnitSyntax } from '../../src/units/unit-syntax';
import { Prng } from '../helpers/prng';

interface Case {
  name: string;
  input: string | Buffer;
  /** [section, [key, value, line][]][] */
  sections: [string, [string, string, number][]][];
  /** [severity, code, line][] */
  diagnostics?: ['error' | 'warning', string, number][];
  fatal?: boolean;
  maxLineBytes?: number;
}

const CASES: Case[] = [
  {
    name: 'sections and keys',
    input: '[Unit]\nDescription=Hello\n[Service]\nExecStart=/bin/true\n',
    sections: [
      ['Unit', [['Description', 'Hello', 2]]],
      ['Service', [['ExecStart', '/bin/true', 4]]],
    ],
  },
  {
    name: 'whitespace around key, "=", value and header is trimmed',
    input: '  [Service]  \n  ExecStart  =   /bin/echo  a  b   \n\tType\t=\tsimple\t\n',
    sections: [
      [
        'Service',
        [
          ['ExecStart', '/bin/echo  a  b', 2],
          ['Type', 'simple', 3],
        ],
      ],
    ],
  },
  {
    name: '"#" and ";" comment only at line start (after blanks); inline ones are value text',
    input: '# c1\n; c2\n[Unit]\n   # c3\n\t; c4\nDescription=a # not a comment ; nor this\n',
    sections: [['Unit', [['Description', 'a # not a comment ; nor this', 6]]]],
  },
  {
    name: 'backslash continuation joins with a space; the entry has the first line number',
    input: '[Service]\nExecStart=/bin/echo a \\\n  b \\\nc\nType=oneshot\n',
    sections: [
      [
        'Service',
        [
          ['ExecStart', '/bin/echo a    b  c', 2],
          ['Type', 'oneshot', 5],
        ],
      ],
    ],
  },
  {
    name: 'comment lines inside a continuation are skipped',
    input:
      '[Section C]\nKeyThree=value 3\\\n# this line is ignored\n; this line is ignored too\n       value 3 continued\n',
    sections: [['Section C', [['KeyThree', 'value 3        value 3 continued', 2]]]],
  },
  {
    name: 'an indented comment inside a continuation is skipped too',
    input: '[S]\nK=a\\\n   # c\nb\n',
    sections: [['S', [['K', 'a b', 2]]]],
  },
  {
    name: 'a blank line ends a continuation',
    input: '[S]\nK=a\\\n\nL=b\n',
    sections: [
      [
        'S',
        [
          ['K', 'a', 2],
          ['L', 'b', 4],
        ],
      ],
    ],
  },
  {
    name: 'an even number of trailing backslashes is an escaped backslash, not a continuation',
    input: '[S]\nK=a\\\\\nL=b\n',
    sections: [
      [
        'S',
        [
          ['K', 'a\\\\', 2],
          ['L', 'b', 3],
        ],
      ],
    ],
  },
  {
    name: 'three trailing backslashes continue',
    input: '[S]\nK=a\\\\\\\nb\n',
    sections: [['S', [['K', 'a\\\\ b', 2]]]],
  },
  {
    name: 'a backslash followed by blanks does not continue',
    input: '[S]\nK=a\\  \nL=b\n',
    sections: [
      [
        'S',
        [
          ['K', 'a\\', 2],
          ['L', 'b', 3],
        ],
      ],
    ],
  },
  {
    name: 'a continuation at the end of the file still counts',
    input: '[S]\nK=a\\',
    sections: [['S', [['K', 'a', 2]]]],
  },
  {
    name: 'a continuation swallows what looks like the next key (as systemd does)',
    input: '[S]\nExecStart=/bin/echo\\\n#x\nExecStop=/bin/true\n',
    sections: [['S', [['ExecStart', '/bin/echo ExecStop=/bin/true', 2]]]],
  },
  {
    name: 'repeated keys stay in order, and an empty value is kept as ""',
    input: '[Service]\nExecStartPre=/bin/a\nExecStartPre=\nExecStartPre=/bin/b\nEnvironment=\n',
    sections: [
      [
        'Service',
        [
          ['ExecStartPre', '/bin/a', 2],
          ['ExecStartPre', '', 3],
          ['ExecStartPre', '/bin/b', 4],
          ['Environment', '', 5],
        ],
      ],
    ],
  },
  {
    name: 'only the first "=" splits key and value',
    input: '[Service]\nEnvironment=A=B C=D\n',
    sections: [['Service', [['Environment', 'A=B C=D', 2]]]],
  },
  {
    name: 'a section opened twice is two entries with the same name',
    input: '[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n',
    sections: [
      ['Unit', [['A', '1', 2]]],
      ['Service', [['B', '2', 4]]],
      ['Unit', [['C', '3', 6]]],
    ],
  },
  {
    name: 'an assignment before any section is an error with file:line, and ignored',
    input: 'Foo=bar\n[Unit]\nA=1\n',
    sections: [['Unit', [['A', '1', 3]]]],
    diagnostics: [['error', 'ERR_UNIT_SYNTAX', 1]],
  },
  {
    name: "a line without '=' and an empty key are warnings",
    input: '[Unit]\njunk\n=value\nA=1\n',
    sections: [['Unit', [['A', '1', 4]]]],
    diagnostics: [
      ['warning', 'ERR_UNIT_SYNTAX', 2],
      ['warning', 'ERR_UNIT_SYNTAX', 3],
    ],
  },
  {
    name: 'an unterminated section header is fatal',
    input: '[Service]\nA=1\n[Unit\nB=2\n',
    sections: [['Service', [['A', '1', 2]]]],
    diagnostics: [
      ['error', 'ERR_UNIT_SYNTAX', 3],
      ['error', 'ERR_UNIT_SYNTAX', 4],
    ],
    fatal: true,
  },
  {
    name: 'text after "]" is fatal',
    input: '[Unit] junk\nA=1\n',
    sections: [],
    diagnostics: [
      ['error', 'ERR_UNIT_SYNTAX', 1],
      ['error', 'ERR_UNIT_SYNTAX', 2],
    ],
    fatal: true,
  },
  {
    name: 'CRLF line endings',
    input: '[Unit]\r\nDescription=x\r\nA=b\\\r\nc\r\n',
    sections: [
      [
        'Unit',
        [
          ['Description', 'x', 2],
          ['A', 'b c', 3],
        ],
      ],
    ],
  },
  {
    name: 'a UTF-8 byte order mark is skipped',
    input: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[Unit]\nA=ü\n')]),
    sections: [['Unit', [['A', 'ü', 2]]]],
  },
  {
    name: 'a NUL byte is a fatal encoding error',
    input: Buffer.from('[Unit]\nA=x\0y\nB=1\n'),
    sections: [['Unit', [['B', '1', 3]]]],
    diagnostics: [['error', 'ERR_UNIT_ENCODING', 2]],
    fatal: true,
  },
  {
    name: 'bytes that are not UTF-8 are a fatal encoding error',
    input: Buffer.concat([
      Buffer.from('[Unit]\nDescription='),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\nB=1\n'),
    ]),
    sections: [['Unit', [['B', '1', 3]]]],
    diagnostics: [['error', 'ERR_UNIT_ENCODING', 2]],
    fatal: true,
  },
  {
    name: 'bad bytes in a comment line do not matter (as in systemd)',
    input: Buffer.concat([
      Buffer.from('# Autor: M'),
      Buffer.from([0xfc]),
      Buffer.from('ller\n[Unit]\nA=1\n'),
    ]),
    sections: [['Unit', [['A', '1', 3]]]],
  },
  {
    name: 'an overlong line is fatal',
    input: `[Unit]\nA=${'x'.repeat(100)}\nB=1\n`,
    maxLineBytes: 64,
    sections: [['Unit', [['B', '1', 3]]]],
    diagnostics: [['error', 'ERR_UNIT_LINE_TOO_LONG', 2]],
    fatal: true,
  },
  {
    name: 'an overlong continued line is fatal',
    input: `[Unit]\nA=${'x'.repeat(40)}\\\n${'y'.repeat(40)}\nB=1\n`,
    maxLineBytes: 64,
    sections: [['Unit', [['B', '1', 4]]]],
    diagnostics: [['error', 'ERR_UNIT_LINE_TOO_LONG', 3]],
    fatal: true,
  },
  {
    name: 'X- sections and keys are plain entries here (the key tables ignore them)',
    input: '[X-Foo]\nX-Bar=1\n',
    sections: [['X-Foo', [['X-Bar', '1', 2]]]],
  },
];

function shape(s: UnitSyntax): Case['sections'] {
  return s.sections.map((sec) => [sec.name, sec.entries.map((e) => [e.key, e.value, e.source.line])]);
}

describe('parseUnitSyntax', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const r = parseUnitSyntax(c.input, '/u/x.service', { maxLineBytes: c.maxLineBytes });
      assert.deepEqual(shape(r), c.sections);
      assert.deepEqual(
        r.diagnostics.map((d) => [d.severity, d.code, d.source?.line]),
        c.diagnostics ?? [],
      );
      for (const d of r.diagnostics) {
        assert.equal(d.source?.file, '/u/x.service');
        assert.ok(d.message.startsWith(`/u/x.service:${d.source?.line}: `), d.message);
      }
      assert.equal(r.fatal, c.fatal ?? false);
      for (const s of r.sections) for (const e of s.entries) assert.equal(e.source.file, '/u/x.service');
    });
  }

  test('string and Buffer input parse the same', () => {
    const text = '[Unit]\nA=1\\\n# c\n  b\n[Service]\nB=ü\n';
    assert.deepEqual(shape(parseUnitSyntax(text, 'f')), shape(parseUnitSyntax(Buffer.from(text), 'f')));
  });

  test('sectionEntries concatenates a section opened twice', () => {
    const r = parseUnitSyntax('[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n', 'f');
    assert.deepEqual(
      sectionEntries(r, 'Unit').map((e) => e.key),
      ['A', 'C'],
    );
  });

  test('random bytes and mutated unit text never throw', () => {
    const seed = 0x756e6974;
    const prng = new Prng(seed);
    const base = Buffer.from('[Unit]\nDescription=x\\\n# c\n y\n[Service]\nExecStart=/bin/echo "a b"\n');
    const alphabet = Buffer.from('[]=\\\n\r#; \t"\'ab\0\xff');
    for (let i = 0; i < 5000; i++) {
      const input = i % 2 === 0 ? prng.bytes(prng.int(200)) : Buffer.from(base);
      if (i % 2 === 1) for (let k = 0; k < 4; k++) input[prng.int(input.length)] = prng.pick([...alphabet]);
      try {
        const r = parseUnitSyntax(input, 'fuzz', { maxLineBytes: 64 });
        for (const s of r.sections) for (const e of s.entries) assert.equal(typeof e.value, 'string');
      } catch (e) {
        assert.fail(`seed ${seed} iteration ${i} threw on ${input.toString('hex')}: ${String(e)}`);
      }
    }
  });

  test('sectionEntries of a section with 300,000 entries (found by the fuzz harness)', () => {
    // out.push(...entries) threw RangeError: Maximum call stack size exceeded.
    const syntax = parseUnitSyntax('[Unit]\n' + 'X=1\n'.repeat(300_000), 'big');
    assert.equal(sectionEntries(syntax, 'Unit').length, 300_000);
  });

  test('75,000 continuation lines join in linear time; past 1 MiB they are too long (found by the fuzz harness)', () => {
    // The joined text's UTF-8 length was measured again for every piece: quadratic, over 5 s.
    const t0 = performance.now();
    const joined = parseUnitSyntax('[Unit]\n' + 'Description=\\\n'.repeat(75_000) + 'end\n', 'cont');
    assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
    assert.equal(joined.fatal, false);
    assert.equal(sectionEntries(joined, 'Unit').length, 1);
    const long = parseUnitSyntax('[Unit]\nDescription=' + 'é\\\n'.repeat(400_000) + 'end\n', 'cont');
    assert.equal(long.fatal, true);
    assert.equal(long.diagnostics[0]?.code, 'ERR_UNIT_LINE_TOO_LONG');
  });
});
