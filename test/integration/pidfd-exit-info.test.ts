// pidfdExitInfo (the reexec addon's PIDFD_GET_INFO with PIDFD_INFO_EXIT) on the real kernel: the
// status of a process that someone else reaped, read through a pidfd opened while it ran, as the
// daemon does for a service's process reparented to init while it was down. Here this test
// process is the subreaper the orphan goes to, and the reaper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { loadNativeReexec } from '../../src/native/reexec-addon';
import { loadNativeSpawn } from '../../src/native/spawn-addon';

/** PIDFD_INFO_EXIT came in Linux 6.15. */
function kernelSkip(): string | undefined {
  const [major, minor] = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number);
  return major > 6 || (major === 6 && minor >= 15) ? undefined : 'PIDFD_INFO_EXIT needs Linux 6.15';
}

function state(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An orphan of ours (we are the subreaper): `sh -c BODY` started in the background by a shell that exits. */
function orphan(body: string): number {
  const r = spawnSync('/bin/sh', ['-c', `/bin/sh -c '${body}' >/dev/null 2>&1 & echo $!`], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

for (const [what, body, expected] of [
  ['an exit status', 'sleep 0.2; exit 7', { code: 'exited', status: 7 }],
  ['a signal', 'sleep 0.2; kill -TERM $$', { code: 'killed', status: 15 }],
] as const) {
  test(
    `pidfdExitInfo: ${what}, kept for a pidfd opened while it ran, after another process reaped it`,
    { skip: kernelSkip() },
    async () => {
      const reexec = loadNativeReexec();
      const spawn = loadNativeSpawn();
      const wasSubreaper = spawn.isSubreaper();
      spawn.setSubreaper(true);
      const fds: number[] = [];
      let pid = -1;
      try {
        pid = orphan(body);
        const watched = reexec.pidfdOpen(pid);
        fds.push(watched);
        assert.equal(reexec.pidfdExitInfo(watched), null, 'running: nothing kept yet');
        await until(`pid ${pid} to exit`, () => state(pid) === 'Z');
        assert.equal(reexec.pidfdExitInfo(watched), null, 'a zombie nobody reaped: nothing kept yet');
        // The reaper (init, after a daemon's crash; here this process, through a pidfd of its own).
        const reaper = reexec.pidfdOpen(pid);
        fds.push(reaper);
        assert.deepEqual(reexec.waitPidfd(reaper), { pid, ...expected });
        assert.equal(state(pid), undefined, 'reaped');
        assert.deepEqual(reexec.pidfdExitInfo(watched), expected);
      } finally {
        for (const fd of fds) reexec.closeFd(fd);
        if (pid > 0 && state(pid) !== undefined) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        spawn.setSubreaper(wasSubreaper);
      }
    },
  );
}

test('pidfdExitInfo: a file that is not a pidfd has nothing kept (null)', () => {
  const reexec = loadNativeReexec();
  const fd = fs.openSync('/dev/null', 'r');
  try {
    assert.equal(reexec.pidfdExitInfo(fd), null);
  } finally {
    fs.closeSync(fd);
  }
});
