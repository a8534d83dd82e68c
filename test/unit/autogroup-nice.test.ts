// --autogroup-nice: the option's value, the decision (only a session leader's own group), the
// session id from /proc/PID/stat; and for real, in child processes: a session leader's group gets
// the value, a process that shares its caller's session leaves the caller's group alone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AUTOGROUP_FILE,
  decideAutogroupNice,
  parseAutogroupNice,
  sessionIdOf,
} from '../../src/core/autogroup-nice';

describe('parseAutogroupNice', () => {
  test('integers from -20 to 19', () => {
    assert.equal(parseAutogroupNice('-5'), -5);
    assert.equal(parseAutogroupNice('0'), 0);
    assert.equal(parseAutogroupNice('19'), 19);
    assert.equal(parseAutogroupNice('-20'), -20);
  });

  for (const bad of ['', ' ', '-21', '20', '1.5', 'abc', '5x', '0x5', '1e1'])
    test(`'${bad}' is refused with the option's name`, () => {
      assert.throws(() => parseAutogroupNice(bad), /--autogroup-nice must be an integer from -20 to 19/);
    });
});

describe('decideAutogroupNice', () => {
  const cases: [string, number, number, boolean, ReturnType<typeof decideAutogroupNice>][] = [
    ['session leader with autogroups', 100, 100, true, { apply: true }],
    ["in its caller's session", 100, 42, true, { apply: false, reason: 'not-session-leader' }],
    ['no autogroups in this kernel', 100, 100, false, { apply: false, reason: 'no-autogroups' }],
  ];
  for (const [what, pid, sid, exists, want] of cases)
    test(what, () => assert.deepEqual(decideAutogroupNice(pid, sid, exists), want));
});

describe('sessionIdOf', () => {
  test('field 6, with a comm holding spaces and parentheses', () => {
    assert.equal(sessionIdOf('1234 (a b) c)) S 1 1234 4321 0 -1 4194560 0 0'), 4321);
    assert.equal(
      sessionIdOf(fs.readFileSync('/proc/self/stat', 'latin1')),
      Number(fs.readFileSync('/proc/self/stat', 'latin1').split(') ')[1].split(' ')[3]),
    );
  });
  test('garbage is an error, not NaN', () => {
    assert.throws(() => sessionIdOf('garbage'), /session id/);
  });
});

const MODULE = path.resolve(__dirname, '..', '..', 'src', 'core', 'autogroup-nice.js');
const CHILD = `
const m = require(${JSON.stringify(MODULE)});
const out = m.applyAutogroupNice(7);
process.stdout.write(JSON.stringify({ out, group: require('fs').readFileSync('/proc/self/autogroup', 'utf8').trim() }));
`;

describe(
  'applyAutogroupNice for real',
  { skip: fs.existsSync(AUTOGROUP_FILE) ? false : 'no /proc/self/autogroup (kernel without autogroups)' },
  () => {
    test("a session leader's own group gets the value", () => {
      // setsid(1) makes the child lead a new session (a new autogroup at nice 0).
      const r = spawnSync('setsid', ['-w', process.execPath, '-e', CHILD], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const { out, group } = JSON.parse(r.stdout) as {
        out: { applied: boolean; group: string };
        group: string;
      };
      assert.equal(out.applied, true);
      assert.match(group, /nice 7$/);
    });

    test("a process in its caller's session leaves the caller's group alone", () => {
      const before = fs.readFileSync(AUTOGROUP_FILE, 'utf8');
      const r = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const { out } = JSON.parse(r.stdout) as { out: { applied: boolean; reason: string } };
      assert.deepEqual(out, { applied: false, reason: 'not-session-leader' });
      assert.equal(fs.readFileSync(AUTOGROUP_FILE, 'utf8'), before);
    });
  },
);
