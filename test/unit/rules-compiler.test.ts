// rules-compiler: golden tables of rule text → token types / diagnostics (file:line:column),
// GOTO resolution, token ordering, and the rule-file set (ordering across dirs, masks).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  compileRules,
  compileRuleFiles,
  listRulesFiles,
  loadRules,
  rulesFiles,
  type CompiledRules,
} from '../../src/devices/rules/rules-compiler';
import { verifyRules } from '../../src/devices/rules/verify-rules';

function compile(text: string): CompiledRules {
  return compileRules([{ file: 'a.rules', text }]);
}

function diags(r: CompiledRules): string[] {
  return r.diagnostics.map(
    (d) => `${d.source.file}:${d.source.line}:${d.source.column} ${d.severity} ${d.code}`,
  );
}

interface CompileCase {
  description: string;
  text: string;
  /** Token types per kept line, in evaluation order. */
  lines: string[][];
  diagnostics?: string[];
}

const CASES: CompileCase[] = [
  {
    description: 'match keys',
    text: 'ACTION=="add", DEVPATH=="/devices/*", KERNEL=="sd*", SUBSYSTEM=="block", DRIVER=="sd", RESULT=="x"',
    lines: [['match', 'match', 'match', 'match', 'match', 'match']],
  },
  {
    description: 'parent keys and ATTRS',
    text: 'KERNELS=="1-1", SUBSYSTEMS=="usb", DRIVERS=="usb", ATTRS{idVendor}=="1d6b", TAGS=="seat"',
    lines: [['match-parent', 'match-parent', 'match-parent', 'match-parent-attr', 'match-parent']],
  },
  {
    description: 'assignments',
    text:
      'NAME="eth0", SYMLINK+="a b", OWNER="root", GROUP:="disk", MODE="0660", SECLABEL{selinux}="x", ' +
      'ATTR{power/control}="auto", SYSCTL{net.x}="1", ENV{A}="1", TAG+="t", RUN+="/bin/x", RUN{builtin}+="kmod load", OPTIONS+="watch"',
    lines: [
      [
        'option',
        'assign-owner',
        'assign-group',
        'assign-mode',
        'assign-tag',
        'assign-seclabel',
        'assign-env',
        'assign-name',
        'assign-symlink',
        'assign-attr',
        'assign-sysctl',
        'assign-run',
        'assign-run',
      ],
    ],
  },
  {
    description: 'matches are sorted before assignments, parents together, PROGRAM before RESULT',
    text: 'ENV{X}="1", RESULT=="r", KERNELS=="a", PROGRAM=="p", KERNEL=="k", ATTRS{x}=="y", TEST=="f", ENV{Y}=="2"',
    lines: [
      [
        'match',
        'match-env',
        'match-parent',
        'match-parent-attr',
        'match-test',
        'match-program',
        'match',
        'assign-env',
      ],
    ],
  },
  {
    description: 'IMPORT kinds; IMPORT{program} of a builtin becomes a builtin',
    text: 'IMPORT{program}="path_id", IMPORT{program}="ata_id --export $devnode", IMPORT{db}="X", IMPORT{cmdline}="quiet", IMPORT{parent}="ID_*", IMPORT{file}="/x"',
    lines: [['match-import', 'match-import', 'match-import', 'match-import', 'match-import', 'match-import']],
  },
  {
    description: 'CONST',
    text: 'CONST{arch}=="x86-64", CONST{virt}!="none"',
    lines: [['match-const', 'match-const']],
  },
  { description: 'TEST with mode', text: 'TEST{0644}=="x"', lines: [['match-test']] },
  {
    description: 'SYMLINK and TAG match',
    text: 'SYMLINK=="disk/*", TAG=="systemd"',
    lines: [['match', 'match']],
  },
  {
    description: 'SYMLINK-=, TAG-=',
    text: 'SYMLINK-="x", TAG-="y"',
    lines: [['assign-tag', 'assign-symlink']],
  },
  { description: 'LABEL-only line is kept', text: 'LABEL="end"', lines: [[]] },
  {
    description: 'options of every kind',
    text: 'OPTIONS+="string_escape=replace", OPTIONS+="db_persist", OPTIONS="link_priority=-100", OPTIONS+="log_level=debug", OPTIONS+="static_node=kvm", OPTIONS+="nowatch"',
    lines: [['option', 'option', 'option', 'option', 'option', 'option']],
  },
  // Errors: the line goes, the file stays.
  {
    description: 'unknown key',
    text: 'FOO=="x"\nKERNEL=="a"',
    lines: [['match']],
    diagnostics: ['a.rules:1:1 error ERR_RULE_KEY'],
  },
  {
    description: 'assignment to a match-only key',
    text: 'KERNEL="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'match on an assign-only key',
    text: 'KERNEL=="1", OWNER=="x"',
    lines: [],
    diagnostics: ['a.rules:1:14 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'MODE -=',
    text: 'MODE-="0600"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'ENV -=',
    text: 'ENV{X}-="1"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'RUN ==',
    text: 'RUN=="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'ATTRS assignment',
    text: 'ATTRS{x}="1"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'GOTO ==',
    text: 'GOTO=="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'LABEL +=',
    text: 'LABEL+="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'OPTIONS ==',
    text: 'OPTIONS=="watch"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPERATOR'],
  },
  {
    description: 'attribute on KERNEL',
    text: 'KERNEL{x}=="a"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'ATTR without name',
    text: 'ATTR=="a"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'ENV with empty name',
    text: 'ENV{}=="a"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'bad [subsystem/sysname] form',
    text: 'ATTR{[dmi]x}=="a"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'read-only ENV',
    text: 'ENV{DEVNAME}="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'CONST{foo}',
    text: 'CONST{foo}=="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'IMPORT without type',
    text: 'IMPORT="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'IMPORT{bogus}',
    text: 'IMPORT{bogus}="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'RUN{shell}',
    text: 'RUN{shell}="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'TEST{rw}',
    text: 'TEST{rw}=="x"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_ATTR'],
  },
  {
    description: 'invalid MODE',
    text: 'MODE="rw"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_VALUE'],
  },
  {
    description: 'empty PROGRAM',
    text: 'PROGRAM=" "',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_VALUE'],
  },
  {
    description: 'bad link_priority',
    text: 'OPTIONS+="link_priority=high"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPTION'],
  },
  {
    description: 'bad log_level',
    text: 'OPTIONS+="log_level=loud"',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_OPTION'],
  },
  {
    description: 'empty GOTO',
    text: 'GOTO=""',
    lines: [],
    diagnostics: ['a.rules:1:1 error ERR_RULE_VALUE'],
  },
  {
    description: 'lexer error',
    text: 'KERNEL=="a',
    lines: [],
    diagnostics: ['a.rules:1:9 error ERR_RULE_SYNTAX'],
  },
  // Warnings: the line stays.
  {
    description: 'unknown builtin is a warning',
    text: 'IMPORT{builtin}="frobnicate x", RUN{builtin}+="zap"',
    lines: [['match-import', 'assign-run']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_BUILTIN', 'a.rules:1:33 warning ERR_RULE_BUILTIN'],
  },
  {
    description: 'unknown OPTIONS value',
    text: 'OPTIONS+="last_rule"',
    lines: [],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_OPTION'],
  },
  {
    description: 'MODE+= treated as =',
    text: 'MODE+="0600"',
    lines: [['assign-mode']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_OPERATOR'],
  },
  {
    description: 'ATTR:= treated as =',
    text: 'ATTR{x}:="1"',
    lines: [['assign-attr']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_OPERATOR'],
  },
  {
    description: 'TAG:= treated as =',
    text: 'TAG:="x"',
    lines: [['assign-tag']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_OPERATOR'],
  },
  {
    description: 'ENV:= treated as =',
    text: 'ENV{A}:="x"',
    lines: [['assign-env']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_OPERATOR'],
  },
  {
    description: 'NAME="" ignored',
    text: 'NAME=""',
    lines: [],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_VALUE'],
  },
  {
    description: 'substitution without argument',
    text: 'SYMLINK+="x$env"',
    lines: [['assign-symlink']],
    diagnostics: ['a.rules:1:1 warning ERR_RULE_SUBSTITUTION'],
  },
  {
    description: 'second GOTO ignored',
    text: 'GOTO="a", GOTO="b"\nLABEL="a"',
    lines: [[], []],
    diagnostics: ['a.rules:1:11 warning ERR_RULE_GOTO'],
  },
];

describe('rules-compiler golden table', () => {
  for (const c of CASES) {
    test(c.description, () => {
      const r = compile(c.text);
      assert.deepEqual(
        r.lines.map((l) => l.tokens.map((t) => t.type)),
        c.lines,
      );
      assert.deepEqual(diags(r), c.diagnostics ?? []);
    });
  }
});

describe('GOTO and LABEL', () => {
  test('GOTO resolves forward to the next LABEL in the same file', () => {
    const r = compileRules([
      { file: 'a.rules', text: 'LABEL="x"\nKERNEL=="a", GOTO="x"\nTAG+="skipped"\nLABEL="x"\nLABEL="x"' },
      { file: 'b.rules', text: 'GOTO="y"\nLABEL="y"' },
    ]);
    assert.deepEqual(diags(r), []);
    assert.equal(r.lines[1]?.gotoIndex, 3);
    assert.equal(r.lines[5]?.gotoIndex, 6);
    assert.deepEqual(r.files, ['a.rules', 'b.rules']);
  });
  test('GOTO to a missing label is an error on that line; GOTO only jumps forward', () => {
    const r = compileRules([
      { file: 'a.rules', text: 'LABEL="back"\nKERNEL=="a", GOTO="back"\n  GOTO="nowhere"' },
      { file: 'b.rules', text: 'LABEL="nowhere"' },
    ]);
    assert.deepEqual(diags(r), ['a.rules:2:14 error ERR_RULE_GOTO', 'a.rules:3:3 error ERR_RULE_GOTO']);
    assert.equal(r.lines[1]?.gotoIndex, undefined);
    assert.equal(r.lines[1]?.tokens.length, 1);
  });
  test('every token remembers file:line:column', () => {
    const r = compile('\n\nKERNEL=="a", \\\n   ENV{X}="1"');
    const t = r.lines[0]?.tokens ?? [];
    assert.deepEqual(
      t.map((x) => [x.source.file, x.source.line, x.source.column]),
      [
        ['a.rules', 3, 1],
        ['a.rules', 4, 4],
      ],
    );
  });
});

describe('rule-file set', () => {
  function tree(): { root: string; etc: string; run: string; lib: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-rules-'));
    const etc = path.join(root, 'etc');
    const run = path.join(root, 'run');
    const lib = path.join(root, 'lib');
    for (const d of [etc, run, lib]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(lib, '50-default.rules'), 'KERNEL=="lib50"\n');
    fs.writeFileSync(path.join(lib, '60-storage.rules'), 'KERNEL=="lib60"\n');
    fs.writeFileSync(path.join(lib, '70-masked.rules'), 'KERNEL=="lib70"\n');
    fs.writeFileSync(path.join(lib, '75-empty-masked.rules'), 'KERNEL=="lib75"\n');
    fs.writeFileSync(path.join(lib, '10-first.rules'), 'KERNEL=="lib10"\n');
    fs.writeFileSync(path.join(lib, 'README'), 'not a rules file');
    fs.writeFileSync(path.join(etc, '60-storage.rules'), 'KERNEL=="etc60"\n');
    fs.symlinkSync('/dev/null', path.join(etc, '70-masked.rules'));
    fs.writeFileSync(path.join(run, '75-empty-masked.rules'), '');
    fs.writeFileSync(path.join(run, '55-run.rules'), 'KERNEL=="run55"\n');
    fs.writeFileSync(path.join(run, '60-storage.rules'), 'KERNEL=="run60"\n');
    return { root, etc, run, lib };
  }

  test('sorted by name across dirs; earlier dirs mask later; /dev/null and empty files mask', () => {
    const t = tree();
    try {
      const dirs = [t.etc, t.run, t.lib, path.join(t.root, 'missing')];
      assert.deepEqual(
        listRulesFiles(dirs).map((e) => [e.name, path.relative(t.root, e.path), e.masked]),
        [
          ['10-first.rules', 'lib/10-first.rules', false],
          ['50-default.rules', 'lib/50-default.rules', false],
          ['55-run.rules', 'run/55-run.rules', false],
          ['60-storage.rules', 'etc/60-storage.rules', false],
          ['70-masked.rules', 'etc/70-masked.rules', true],
          ['75-empty-masked.rules', 'run/75-empty-masked.rules', true],
        ],
      );
      const files = rulesFiles(dirs).map((f) => path.relative(t.root, f));
      assert.deepEqual(files, [
        'lib/10-first.rules',
        'lib/50-default.rules',
        'run/55-run.rules',
        'etc/60-storage.rules',
      ]);
      const r = loadRules(dirs);
      const kernels = r.lines.map((l) => {
        const tok = l.tokens[0];
        return tok?.type === 'match' ? tok.pattern.text : '';
      });
      assert.deepEqual(kernels, ['lib10', 'lib50', 'run55', 'etc60']);
    } finally {
      fs.rmSync(t.root, { recursive: true, force: true });
    }
  });

  test('an unreadable file is a diagnostic; reload compiles from scratch', () => {
    const t = tree();
    try {
      const r = compileRuleFiles([path.join(t.lib, 'nope.rules'), path.join(t.lib, '10-first.rules')]);
      assert.equal(r.diagnostics[0]?.code, 'ERR_RULE_FILE');
      assert.equal(r.lines.length, 1);
      const a = loadRules([t.lib]);
      fs.writeFileSync(path.join(t.lib, '10-first.rules'), 'KERNEL=="changed"\nKERNEL=="again"\n');
      const b = loadRules([t.lib]);
      assert.equal(b.lines.length, a.lines.length + 1);
    } finally {
      fs.rmSync(t.root, { recursive: true, force: true });
    }
  });

  test('verifyRules prints file:line:column: severity: message and reports hasErrors', () => {
    const t = tree();
    try {
      const bad = path.join(t.root, 'bad.rules');
      fs.writeFileSync(bad, 'KERNEL=="a", GOTO="x"\nOPTIONS+="bogus"\n');
      const rep = verifyRules([bad]);
      assert.equal(rep.hasErrors, true);
      assert.equal(rep.errors, 1);
      assert.equal(rep.warnings, 1);
      assert.match(rep.lines[0] ?? '', /bad\.rules:1:14: error: GOTO="x" .* \[ERR_RULE_GOTO\]$/);
      assert.match(rep.lines[1] ?? '', /bad\.rules:2:1: warning: .*\[ERR_RULE_OPTION\]$/);
      const good = verifyRules([], [t.etc, t.run, t.lib]);
      assert.equal(good.hasErrors, false);
      assert.equal(good.files.length, 4);
    } finally {
      fs.rmSync(t.root, { recursive: true, force: true });
    }
  });
});

test('a rules file with 300,000 broken lines reports each instead of overflowing the stack (found by the fuzz harness)', () => {
  // diagnostics.push(...lexed.diagnostics) threw RangeError: Maximum call stack size exceeded.
  const r = compile('x\n'.repeat(300_000));
  assert.equal(r.diagnostics.length, 300_000);
  assert.equal(r.diagnostics[299_999]?.source.line, 300_000);
});

test("keys named like Object.prototype's members are unknown keys, not a crash (found by the fuzz harness)", () => {
  // KEY_TABLE[p.key] found Object.prototype.valueOf and called it: TypeError out of compileRules.
  for (const key of ['valueOf', '__proto__', 'hasOwnProperty', 'isPrototypeOf', 'constructor', 'toString']) {
    const r = compile(`${key}=="x", TAG+="t"\n`);
    assert.deepEqual(diags(r), ['a.rules:1:1 error ERR_RULE_KEY'], key);
    assert.equal(r.lines.length, 0, key);
  }
});
