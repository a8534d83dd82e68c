// triggerd_mounts on the real kernel: a mount and an unmount each wake the watch; abuse (wrong
// arguments, a path that is not there, close twice, close inside the callback) throws the
// documented errors and never crashes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { addonCandidates } from '../../src/native/addon';
import { loadNativeMounts, type NativeMounts } from '../../src/native/mounts-addon';
import { skipUnlessRoot } from '../helpers/daemon';

const built = addonCandidates('triggerd_mounts.node').some((f) => fs.existsSync(f));
const skip = built ? undefined : 'needs the triggerd_mounts addon (npm install builds it)';

describe('triggerd_mounts', { skip }, () => {
  const native = (): NativeMounts => loadNativeMounts();

  test('bad arguments are TypeErrors; a missing file is ENOENT with its path', () => {
    assert.throws(() => (native().watchMountInfo as (...a: unknown[]) => unknown)(1, () => 0), TypeError);
    assert.throws(() => (native().watchMountInfo as (...a: unknown[]) => unknown)(() => 0, 'x'), TypeError);
    assert.throws(
      () =>
        native().watchMountInfo(
          () => 0,
          () => 0,
          'a\0b',
        ),
      TypeError,
    );
    assert.throws(
      () =>
        native().watchMountInfo(
          () => 0,
          () => 0,
          '/nonexistent/mountinfo',
        ),
      (e: NodeJS.ErrnoException) =>
        e.code === 'ENOENT' && e.syscall === 'open' && e.path === '/nonexistent/mountinfo',
    );
  });

  test('close is idempotent; closed says so', () => {
    const w = native().watchMountInfo(
      () => 0,
      () => 0,
    );
    assert.equal(w.closed, false);
    w.unref();
    w.ref();
    w.close();
    w.close();
    assert.equal(w.closed, true);
  });

  test(
    'a mount and an unmount wake it (close inside the callback is safe)',
    { skip: skipUnlessRoot() },
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-mounts-native-'));
      try {
        let wakeups = 0;
        let resolve!: () => void;
        let next = new Promise<void>((r) => (resolve = r));
        const w = native().watchMountInfo(
          () => {
            wakeups++;
            resolve();
          },
          () => 0,
        );
        // The fd is registered on the loop's next turn.
        await new Promise((r) => setImmediate(r));
        assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', dir]).status, 0);
        await next;
        next = new Promise<void>((r) => (resolve = r));
        assert.equal(spawnSync('umount', [dir]).status, 0);
        await next;
        assert.ok(wakeups >= 2);
        assert.ok(w.wakeups >= 2);
        w.close();
      } finally {
        spawnSync('umount', ['-l', dir]);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
