import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { conditionHolds } from '../../src/units/conditions';
import type { ConditionSpec } from '../../src/units/config-types';

function cond(name: string, value: string): ConditionSpec {
  return {
    kind: 'condition',
    name,
    value,
    negate: false,
    trigger: false,
    source: { file: 'x.service', line: 2 },
  };
}

test('path conditions on a temporary tree', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-cond-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'dir'));
  fs.mkdirSync(path.join(root, 'empty'));
  fs.writeFileSync(path.join(root, 'dir', 'file.conf'), 'x');
  fs.writeFileSync(path.join(root, 'zero'), '');
  fs.writeFileSync(path.join(root, 'exe'), '#!/bin/sh\n', { mode: 0o755 });
  fs.symlinkSync('dir', path.join(root, 'link'));
  const cases: [string, string, boolean][] = [
    ['PathExists', '/dir', true],
    ['PathExists', '/nope', false],
    ['PathExistsGlob', '/dir/*.conf', true],
    ['PathExistsGlob', '/dir/*.txt', false],
    ['PathIsDirectory', '/dir', true],
    ['PathIsDirectory', '/zero', false],
    ['PathIsSymbolicLink', '/link', true],
    ['DirectoryNotEmpty', '/dir', true],
    ['DirectoryNotEmpty', '/empty', false],
    ['FileNotEmpty', '/dir/file.conf', true],
    ['FileNotEmpty', '/zero', false],
    ['FileIsExecutable', '/exe', true],
    ['FileIsExecutable', '/zero', false],
  ];
  for (const [name, value, expected] of cases) {
    assert.equal(conditionHolds(cond(name, value), { root }), expected, `${name}=${value}`);
  }
});

test('environment, user, unknown conditions', () => {
  process.env.TRIGGERD_COND_TEST = 'on';
  assert.equal(conditionHolds(cond('Environment', 'TRIGGERD_COND_TEST=on')), true);
  assert.equal(conditionHolds(cond('Environment', 'TRIGGERD_COND_TEST=off')), false);
  assert.equal(conditionHolds(cond('User', String(os.userInfo().uid))), true);
  const warnings: string[] = [];
  assert.equal(conditionHolds(cond('Frobnicate', 'yes'), { warn: (m) => warnings.push(m) }), true);
  assert.match(warnings[0] ?? '', /ConditionFrobnicate= is not supported.*x\.service:2/);
  assert.equal(conditionHolds(cond('Virtualization', 'yes')), !conditionHolds(cond('Virtualization', 'no')));
});
