// OWNER/GROUP/MODE: resolution as udevd does it, application on a temp file standing in for the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyNodePermissions, resolveNodePermissions } from '../../src/devices/node-permissions';
import { parseGroup, parsePasswd } from '../../src/exec/user-database';

const users = {
  users: parsePasswd('root:x:0:0:root:/root:/bin/sh\nsvc:x:101:101::/:/bin/false\n'),
  groups: parseGroup('root:x:0:\ndisk:x:6:\nkvm:x:104:\n'),
};
const kernel = (props: [string, string][] = []) => ({ properties: new Map(props) });

test('names, numbers, the kernel defaults and the 0660 upgrade for a group', () => {
  assert.deepEqual(
    resolveNodePermissions(kernel(), { owner: 'svc', group: 'disk', mode: 0o640 }, { users }),
    {
      uid: 101,
      gid: 6,
      mode: 0o640,
    },
  );
  assert.deepEqual(resolveNodePermissions(kernel(), { owner: '4242', group: '77' }, { users }), {
    uid: 4242,
    gid: 77,
    mode: 0o660,
  });
  // Nothing set: nothing changed (devtmpfs made the node 0600 root:root already).
  assert.deepEqual(resolveNodePermissions(kernel(), {}, { users }), {});
  assert.deepEqual(resolveNodePermissions(kernel([['DEVMODE', '0666']]), {}, { users }), { mode: 0o666 });
  assert.deepEqual(resolveNodePermissions(kernel([['DEVMODE', '0666']]), { group: 'kvm' }, { users }), {
    gid: 104,
    mode: 0o666,
  });
});

test('an unknown name is an error naming the rule', () => {
  const source = { file: '/etc/udev/rules.d/50-x.rules', line: 7 };
  assert.throws(
    () => resolveNodePermissions(kernel(), { owner: 'nobody-here' }, { users, sources: { owner: source } }),
    {
      code: 'ERR_NODE_UNKNOWN_USER',
      message: "/etc/udev/rules.d/50-x.rules:7: unknown user 'nobody-here'",
    },
  );
  assert.throws(() => resolveNodePermissions(kernel(), { group: 'nogroup-here' }, { users }), {
    code: 'ERR_NODE_UNKNOWN_GROUP',
  });
});

test('apply: mode changed where it differs; a missing node is skipped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-perm-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'loop0'), '', { mode: 0o600 });
  const r = applyNodePermissions('/dev/loop0', { mode: 0o660 }, { devRoot: dir });
  assert.deepEqual(r, { missing: false, changedMode: true, changedOwner: false });
  assert.equal(fs.statSync(path.join(dir, 'loop0')).mode & 0o777, 0o660);
  assert.equal(applyNodePermissions('/dev/loop0', { mode: 0o660 }, { devRoot: dir }).changedMode, false);
  assert.equal(applyNodePermissions('/dev/gone', { mode: 0o660 }, { devRoot: dir }).missing, true);
});

test(
  'apply: owner and group (root only)',
  { skip: process.getuid?.() === 0 ? false : 'needs root (chown)' },
  (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-perm-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'sr0'), '');
    const r = applyNodePermissions('/dev/sr0', { uid: 101, gid: 6, mode: 0o660 }, { devRoot: dir });
    assert.equal(r.changedOwner, true);
    const st = fs.statSync(path.join(dir, 'sr0'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [101, 6, 0o660]);
  },
);
