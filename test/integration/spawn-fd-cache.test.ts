// The fds spawn() keeps open between calls (native/spawn/spawn_fd_cache): its /dev/null never
// reaches a child beyond the fds the plan maps, survives being closed by number elsewhere, and a
// held cgroup fd never puts a child in a removed group, even one made again at the same path.
//
// No node:child_process here: the watcher reaps every child of the process.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import * as path from 'node:path';
import { openCgroupTree, type CgroupTree } from '../../src/exec/cgroups';
import { loadNativeSpawn, type ChildExit, type ChildWatcher } from '../../src/native/spawn-addon';
import { basicPlan, cgroupHierarchy, needsCgroup } from '../helpers/spawn-plan';

const SIGKILL = 9;

const native = loadNativeSpawn();
const exits = new Map<number, ChildExit>();
const waiters = new Map<number, (exit: ChildExit) => void>();
let watcher: ChildWatcher;

before(() => {
  watcher = native.watchChildren((batch) => {
    for (const exit of batch) {
      const waiter = waiters.get(exit.pid);
      if (waiter === undefined) exits.set(exit.pid, exit);
      else {
        waiters.delete(exit.pid);
        waiter(exit);
      }
    }
  });
});

after(() => watcher.close());

function waitExit(pid: number): Promise<ChildExit> {
  const known = exits.get(pid);
  if (known !== undefined) {
    exits.delete(pid);
    return Promise.resolve(known);
  }
  return new Promise((resolve) => waiters.set(pid, resolve));
}

function killLater(t: TestContext, pid: number): void {
  t.after(() => {
    try {
      native.kill(pid, SIGKILL);
    } catch {
      // gone
    }
  });
}

const plan = basicPlan;

/** Our fds that are /dev/null. */
function devNullFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === '/dev/null';
      } catch {
        return false;
      }
    });
}

/** The fds a (sleeping, exec'd) child has, sorted. */
function childFds(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * Waits until the child sleeps in `sleep`: spawn() returns once the child's exec has replaced its
 * memory, a little before the kernel closes its close-on-exec fds.
 */
async function asleep(pid: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    if (/^\d+ \(sleep\) S /.test(stat)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`child ${pid} never slept in sleep`);
}

describe('spawn: the /dev/null fd it keeps', () => {
  it('is close-on-exec and reaches a child only as the fds the plan maps', async (t) => {
    const [r, w] = native.pipe();
    t.after(() => {
      native.closeFd(r);
      native.closeFd(w);
    });
    for (let round = 0; round < 2; round++) {
      const { pid } = native.spawn(
        plan(['/bin/sleep', '30'], {
          fds: [
            { childFd: 0, parentFd: -1 },
            { childFd: 1, parentFd: -1 },
            { childFd: 2, parentFd: -1 },
            { childFd: 5, parentFd: w },
          ],
        }),
      );
      killLater(t, pid);
      await asleep(pid);
      assert.deepEqual(childFds(pid), [0, 1, 2, 5], `round ${round}`);
      assert.equal(readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
      native.kill(pid, SIGKILL);
      assert.equal((await waitExit(pid)).status, SIGKILL);
    }
    const held = devNullFds();
    assert.ok(held.length > 0, 'spawn() holds a /dev/null');
    for (const fd of held) {
      const flags = /^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? '0';
      assert.ok((parseInt(flags, 8) & 0o2000000) !== 0, `fd ${fd} is O_CLOEXEC`);
    }
  });

  it('closed by number elsewhere and the number reused, the next spawn opens a new one', async (t) => {
    const { pid: first } = native.spawn(plan(['/bin/true']));
    await waitExit(first);
    const before = devNullFds();
    assert.ok(before.length > 0);
    // A bug elsewhere closes every /dev/null we hold, and the numbers go to other files.
    for (const fd of before) closeSync(fd);
    const squatters: number[] = [];
    for (let i = 0; i < before.length; i++) squatters.push(openSync('/proc/self/stat', 'r'));
    t.after(() => {
      for (const fd of squatters) closeSync(fd);
    });
    const { pid } = native.spawn(plan(['/bin/sleep', '30']));
    killLater(t, pid);
    await asleep(pid);
    assert.equal(readlinkSync(`/proc/${pid}/fd/0`), '/dev/null', 'not the file that took the number');
    assert.deepEqual(childFds(pid), [0, 1, 2]);
    native.kill(pid, SIGKILL);
    await waitExit(pid);
    for (const fd of squatters) assert.match(readlinkSync(`/proc/self/fd/${fd}`), /stat$/, 'left alone');
  });
});

describe('spawn: the cgroup fds it keeps', () => {
  let tree: CgroupTree;
  let base: string;

  before(() => {
    if (needsCgroup !== false || !cgroupHierarchy.ok) return;
    base = path.join(cgroupHierarchy.root, `triggerd-fdcache-${process.pid}`);
    const setup = openCgroupTree({ base });
    assert.ok(setup.ok, setup.ok ? '' : setup.reason);
    tree = setup.tree;
  });

  after(() => {
    if (tree === undefined) return;
    for (const pid of tree.listPids(base)) {
      try {
        native.kill(pid, SIGKILL);
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 50 && !tree.isEmpty(base); i++)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    tree.remove(base);
  });

  async function emptied(dir: string): Promise<void> {
    for (let i = 0; i < 200 && !tree.isEmpty(dir); i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(tree.isEmpty(dir), true);
  }

  /** Spawns a sleeper into `dir` and checks the group's own cgroup.procs lists it. */
  async function spawnInto(t: TestContext, dir: string): Promise<void> {
    const { pid } = native.spawn(plan(['/bin/sleep', '30'], { cgroup: dir }));
    killLater(t, pid);
    const procs = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
    assert.deepEqual(procs, [pid], 'in the group now at that path');
    assert.equal(tree.cgroupOfPid(pid), dir);
    native.kill(pid, SIGKILL);
    await waitExit(pid);
    await emptied(dir);
  }

  for (const method of ['auto', 'clone'] as const) {
    it(
      `a group removed and made again at the same path gets the next child (${method})`,
      { skip: needsCgroup },
      async (t) => {
        native.setCloneMethodForTesting(method);
        t.after(() => native.setCloneMethodForTesting('auto'));
        const dir = tree.create(`recreated-${method}.service`);
        t.after(() => tree.remove(dir));
        await spawnInto(t, dir);
        const oldInode = statSync(dir).ino;
        rmdirSync(dir);
        mkdirSync(dir);
        assert.notEqual(statSync(dir).ino, oldInode, 'a new group');
        await spawnInto(t, dir);
        // And the fd held for the new group serves the one after.
        await spawnInto(t, dir);
      },
    );
  }

  it(
    'a group removed and not made again fails at step CGROUP, naming the path',
    { skip: needsCgroup },
    async (t) => {
      const dir = tree.create('removed.service');
      await spawnInto(t, dir);
      rmdirSync(dir);
      assert.throws(
        () => native.spawn(plan(['/bin/true'], { cgroup: dir })),
        (err: unknown) => {
          const e = err as NodeJS.ErrnoException & { step?: string };
          assert.equal(e.step, 'CGROUP');
          assert.equal(e.code, 'ENOENT');
          assert.equal(e.syscall, 'open');
          assert.equal(e.path, dir);
          return true;
        },
      );
      assert.equal(native.forgetCgroup(dir), false, 'nothing held after the failure');
    },
  );

  it(
    "the tree's removal tells the addon (onRemoved, as the supervisor wires it): no fd left on a removed group",
    { skip: needsCgroup },
    async (t) => {
      const forgotten: string[] = [];
      tree.onRemoved = (dir) => {
        forgotten.push(dir);
        native.forgetCgroup(dir);
      };
      t.after(() => (tree.onRemoved = undefined));
      const dir = tree.create('removed-by-tree.service');
      await spawnInto(t, dir);
      assert.equal(tree.remove(dir), true);
      assert.deepEqual(forgotten, [dir]);
      assert.equal(native.forgetCgroup(dir), false, 'the held fd was closed by the removal');
    },
  );

  it(
    'forgetCgroup closes the held fd once; a spawn after it opens the path again',
    { skip: needsCgroup },
    async (t) => {
      const dir = tree.create('forget.service');
      t.after(() => tree.remove(dir));
      await spawnInto(t, dir);
      assert.equal(native.forgetCgroup(dir), true);
      assert.equal(native.forgetCgroup(dir), false);
      await spawnInto(t, dir);
      assert.equal(native.forgetCgroup(dir), true);
      assert.throws(() => native.forgetCgroup(1 as unknown as string), TypeError);
    },
  );
});
