// Seeded fuzzing of the rules front end and the substitution engine: generated rule text (built
// from real fragments, then mutated) never makes the lexer/compiler throw, and every diagnostic
// points at a real file:line:column. A failure names its seed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/devices/rules/rules-compiler';
import { substitute } from '../../src/devices/rules/substitute';
import { compilePattern } from '../../src/devices/rules/rules-pattern';
import { Prng } from '../helpers/prng';
import { RULE_ATTRS, RULE_KEYS, RULE_VALUES, SUBSTITUTION_CONTEXT } from '../../fuzz/fragments';

const RULE_INPUTS = 70_000;
const SUBST_INPUTS = 40_000;

const OPS = ['==', '!=', '=', '+=', '-=', ':=', '', '~=', '=='];
const JUNK = ['"', ',', ' ', '\\\n', '\n', '#', '{', '}', '=', 'e"', '\t', '\r\n', '\\', '\u0000', '\uffff'];

function ruleText(rng: Prng): string {
  let out = '';
  const nLines = 1 + rng.int(4);
  for (let l = 0; l < nLines; l++) {
    const nPairs = rng.int(5);
    for (let p = 0; p < nPairs; p++) {
      if (p > 0) out += rng.pick([', ', ',', ' ', '', ', \\\n  ']);
      out += rng.pick(RULE_KEYS) + rng.pick(RULE_ATTRS) + rng.pick(OPS);
      const v = rng.pick(RULE_VALUES);
      out += rng.int(10) === 0 ? `e"${v}"` : rng.int(15) === 0 ? v : `"${v}"`;
    }
    if (rng.int(8) === 0) out += '# comment';
    out += '\n';
  }
  // Mutations: insert junk, delete or duplicate a slice.
  const mutations = rng.int(4);
  for (let m = 0; m < mutations; m++) {
    const at = rng.int(out.length + 1);
    switch (rng.int(3)) {
      case 0:
        out = out.substring(0, at) + rng.pick(JUNK) + out.substring(at);
        break;
      case 1:
        out = out.substring(0, at) + out.substring(at + 1 + rng.int(5));
        break;
      default:
        out = out.substring(0, at) + out.substring(at, at + rng.int(10)) + out.substring(at);
    }
  }
  return out;
}

const SUBST_PARTS = [
  '$',
  '%',
  '$$',
  '%%',
  '{',
  '}',
  '$kernel',
  '%k',
  '$number',
  '%n',
  '$devpath',
  '%p',
  '$id',
  '%b',
  '$driver',
  '$attr{',
  '$attr{size}',
  '%s{size}',
  '$env{X}',
  '%E{',
  '$major',
  '%M',
  '$minor',
  '%m',
  '$result',
  '%c{1}',
  '%c{2+}',
  '%c{0}',
  '%c{',
  '$parent',
  '%P',
  '$name',
  '$links',
  '$root',
  '$sys',
  '$devnode',
  '%N',
  'text',
  ' ',
  '$sysfs{size}',
  '$unknown',
  '%z',
  '\u00e9',
];

describe('rules fuzz', () => {
  test(`${RULE_INPUTS} generated rule files through lexer + compiler`, () => {
    let diagnostics = 0;
    for (let seed = 1; seed <= RULE_INPUTS; seed++) {
      const rng = new Prng(seed);
      const text = ruleText(rng);
      const file = `fuzz-${seed}.rules`;
      let compiled;
      try {
        compiled = compileRules([{ file, text }]);
      } catch (e: unknown) {
        assert.fail(`seed ${seed} threw ${String(e)} on ${JSON.stringify(text)}`);
      }
      const physicalLines = text.split('\n').length;
      for (const d of compiled.diagnostics) {
        diagnostics++;
        const s = d.source;
        const ok =
          s.file === file &&
          Number.isInteger(s.line) &&
          s.line >= 1 &&
          s.line <= physicalLines &&
          Number.isInteger(s.column) &&
          s.column >= 1 &&
          typeof d.code === 'string' &&
          d.code.startsWith('ERR_RULE_');
        if (!ok) assert.fail(`seed ${seed}: bad diagnostic ${JSON.stringify(d)} for ${JSON.stringify(text)}`);
      }
      for (const line of compiled.lines) {
        for (const t of line.tokens) {
          if (t.source.line < 1 || t.source.column < 1) assert.fail(`seed ${seed}: token without position`);
        }
        if (line.gotoIndex !== undefined && line.gotoIndex >= compiled.lines.length)
          assert.fail(`seed ${seed}: bad goto`);
      }
    }
    assert.ok(diagnostics > 0, 'the generator produces broken input too');
  });

  test(`${SUBST_INPUTS} generated templates through the substitution engine and patterns`, () => {
    for (let seed = 1; seed <= SUBST_INPUTS; seed++) {
      const rng = new Prng(seed * 7919);
      let template = '';
      const n = rng.int(8);
      for (let i = 0; i < n; i++) template += rng.pick(SUBST_PARTS);
      try {
        const r = substitute(template, SUBSTITUTION_CONTEXT, { replaceWhitespace: rng.int(2) === 0 });
        assert.equal(typeof r.value, 'string');
        for (const p of r.problems) {
          if (!(p.offset >= 0 && p.offset < template.length))
            assert.fail(`seed ${seed}: problem offset ${p.offset}`);
        }
        compilePattern(template).test(r.value);
      } catch (e: unknown) {
        assert.fail(`seed ${seed} threw ${String(e)} on ${JSON.stringify(template)}`);
      }
    }
  });
});
