// Rule patterns (fnmatch globs with '|' alternatives): a pattern with several '*' answers in
// bounded time however long the value (found by the fuzz harness: `*a*a*a*a*a*a*b` against 128
// 'a's backtracked for minutes as one RegExp), and the piecewise matcher agrees with the plain
// anchored RegExp of globToRegExpSource on every small pattern and value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePattern, globToRegExpSource } from '../../src/devices/rules/rules-pattern';
import { compileRules } from '../../src/devices/rules/rules-compiler';

test('a pattern with many stars against a long value from its own characters answers at once', () => {
  const compiled = compileRules([{ file: 'a.rules', text: 'ATTRS{product}=="*a*a*a*a*a*a*b", TAG+="x"\n' }]);
  const token = compiled.lines[0]?.tokens.find((t) => t.type === 'match-parent-attr');
  assert.ok(token !== undefined && 'pattern' in token);
  const t0 = performance.now();
  assert.equal(token.pattern.test('a'.repeat(128)), false);
  assert.equal(token.pattern.test('a'.repeat(16384) + '\u0001'), false);
  assert.equal(token.pattern.test('a'.repeat(16384) + 'b'), true);
  assert.equal(compilePattern('x|*a*a*a*a*a*b').test('a'.repeat(4096)), false);
  assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
});

test('stars, classes, quoting and alternatives: the same answers as the anchored RegExp', () => {
  const pieces = ['a', 'b', '*', '?', '[ab]', '[!a]', '[]a]', '[a-b]', '[b-a]', '\\*', '\\', '[', '/'];
  const values = [''];
  for (let len = 1; len <= 4; len++)
    for (let i = 0; i < 4 ** len; i++) {
      let v = '';
      for (let k = 0, n = i; k < len; k++, n = Math.floor(n / 4)) v += 'ab*/'[n % 4];
      values.push(v);
    }
  let patterns = [''];
  for (let round = 0; round < 3; round++) patterns = patterns.flatMap((p) => pieces.map((q) => p + q));
  let compared = 0;
  // Without '*', '?' or '[' a pattern is compared as plain text, as udev does (no unquoting).
  for (const p of patterns.filter((x) => /[*?[]/.test(x))) {
    let re: RegExp;
    try {
      re = new RegExp('^(?:' + globToRegExpSource(p) + ')$');
    } catch {
      re = /(?!)/;
    }
    const pattern = compilePattern(p);
    for (const v of values) {
      if (pattern.test(v) !== re.test(v)) assert.fail(`${JSON.stringify(p)} on ${JSON.stringify(v)}`);
      compared++;
    }
  }
  assert.equal(compilePattern('sd*|loop[0-9]*').test('loop12'), true);
  assert.equal(compilePattern('sd*|loop[0-9]*').test('loopx'), false);
  assert.equal(compilePattern('*').test(undefined), true);
  assert.ok(compared > 500_000, `${compared} compared`);
});
