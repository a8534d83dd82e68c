// Mounting inside the daemon: which mounts libmount does here and which stay mount(8) (a table of
// cases), loading the library off the event loop, mount(8)'s words for libmount's outcome; the
// .mount state machine with an in-process call (no control pid; failures keep libmount's words;
// a timeout waits for the call it cannot kill and undoes a late mount; the helper when the host
// declines); and the autofs trap of an automount not counted as its mount unit's mount.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InProcessMounts,
  inProcessMounts,
  resultOf,
  type MountCall,
  type MountCallResult,
} from '../../src/mounts/in-process-mount';
import { topOf } from '../../src/mounts/mount-system';
import type {
  LibmountLibraryInfo,
  LibmountMountRequest,
  LibmountOutcome,
  LibmountUmountRequest,
  NativeLibmount,
} from '../../src/native/libmount-addon';
import type { MountEntry } from '../../src/mounts/mountinfo';
import { MountUnit, type MountHost } from '../../src/units/mount';
import type { JobEnd } from '../../src/units/unit-type';
import { parseUnitText } from '../../src/units/unit-loader';
import { silentLogger } from '../helpers/logger';

const OK: LibmountOutcome = { rc: 0, exitCode: 0, message: '', syscallCalled: true, syscallErrno: 0 };

/** A NativeLibmount that records requests and answers from a queue. */
function fakeLibmount(info: LibmountLibraryInfo = { available: true, version: '2.38.1' }) {
  const calls: (LibmountMountRequest | LibmountUmountRequest)[] = [];
  const answers: (LibmountOutcome | Error)[] = [];
  let loads = 0;
  const answer = (): Promise<LibmountOutcome> => {
    const a = answers.shift() ?? OK;
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  const native: NativeLibmount = {
    mount: (r) => {
      calls.push(r);
      return answer();
    },
    umount: (r) => {
      calls.push(r);
      return answer();
    },
    load: () => {
      loads++;
      return Promise.resolve(info);
    },
    libraryInfo: () => info,
  };
  return { native, calls, answers, loads: () => loads };
}

const mountCall = (over: Partial<Extract<MountCall, { command: 'mount' }>> = {}): MountCall => ({
  command: 'mount',
  what: '/srv/image.img',
  where: '/mnt/x',
  type: 'ext4',
  options: 'loop,ro',
  sloppy: false,
  readWriteOnly: false,
  ...over,
});

async function readyMounts(
  exists: (p: string) => boolean = () => false,
  root = true,
  fake = fakeLibmount(),
): Promise<InProcessMounts> {
  const m = new InProcessMounts({ native: fake.native, root, exists, logger: silentLogger() });
  await new Promise<void>((r) => m.preload(r));
  return m;
}

describe('InProcessMounts: what runs inside the daemon', () => {
  const helpers = new Set(['/sbin/mount.ntfs', '/usr/sbin/umount.udisks2', '/sbin/fs.d/mount.fuse']);
  const cases: [string, MountCall, string | RegExp | undefined][] = [
    ['ext4 image with loop', mountCall(), undefined],
    ['tmpfs', mountCall({ what: 'tmpfs', type: 'tmpfs', options: 'size=1m' }), undefined],
    ['a bind mount without Type=', mountCall({ what: '/srv', type: '', options: 'bind' }), undefined],
    ['no Type=: mount(8) probes', mountCall({ type: '' }), /no single Type=/],
    ['Type=auto', mountCall({ type: 'auto' }), /no single Type=/],
    ['a type list', mountCall({ type: 'ext4,xfs' }), /no single Type=/],
    ['a helper exists (mount.ntfs)', mountCall({ type: 'ntfs' }), '/sbin/mount.ntfs exists'],
    ['nfs', mountCall({ what: 'srv:/x', type: 'nfs', options: '' }), /network or FUSE/],
    ['cifs', mountCall({ what: '//srv/x', type: 'cifs', options: '' }), /network or FUSE/],
    ['fuse.sshfs', mountCall({ what: 'h:/', type: 'fuse.sshfs', options: '' }), /network or FUSE/],
    ['_netdev', mountCall({ options: 'loop,_netdev' }), '_netdev'],
    ['helper=', mountCall({ options: 'helper=udisks2' }), 'helper= in Options='],
    [
      'umount of ext4',
      { command: 'umount', where: '/mnt/x', type: 'ext4', lazy: true, force: false },
      undefined,
    ],
    [
      'umount with a helper (umount.udisks2)',
      { command: 'umount', where: '/mnt/x', type: 'udisks2', lazy: false, force: false },
      '/usr/sbin/umount.udisks2 exists',
    ],
    [
      'umount of an unknown type',
      { command: 'umount', where: '/mnt/x', type: '', lazy: false, force: false },
      undefined,
    ],
    [
      'umount of nfs4',
      { command: 'umount', where: '/mnt/x', type: 'nfs4', lazy: false, force: true },
      /network/,
    ],
  ];
  for (const [what, call, expected] of cases) {
    test(what, async () => {
      const m = await readyMounts((p) => helpers.has(p));
      const r = m.refusal(call);
      if (expected === undefined) assert.equal(r, undefined);
      else if (typeof expected === 'string') assert.equal(r, expected);
      else assert.match(r ?? '', expected);
    });
  }

  test('not root: mount(8), which applies the user-mount rules', async () => {
    const m = await readyMounts(() => false, false);
    assert.match(m.refusal(mountCall()) ?? '', /not root/);
  });

  test('the library loads once, on the threadpool; until then mount(8) runs', async () => {
    const fake = fakeLibmount();
    const m = new InProcessMounts({
      native: fake.native,
      root: true,
      exists: () => false,
      logger: silentLogger(),
    });
    assert.equal(m.refusal(mountCall()), 'libmount is not loaded yet');
    // The first run() starts the loading and declines.
    assert.equal(
      m.run(mountCall(), () => assert.fail('not run')),
      false,
    );
    await new Promise<void>((r) => m.preload(r));
    m.preload();
    assert.equal(fake.loads(), 1);
    assert.equal(m.ready, true);
    assert.equal(m.refusal(mountCall()), undefined);
  });

  test('no libmount.so.1: every call declines, with dlopen’s reason', async () => {
    const fake = fakeLibmount({ available: false, error: 'libmount.so.1: cannot open shared object file' });
    const m = await readyMounts(() => false, true, fake);
    assert.equal(m.ready, false);
    assert.match(m.refusal(mountCall()) ?? '', /libmount is not available: libmount\.so\.1: cannot open/);
    assert.equal(
      m.run(mountCall(), () => undefined),
      false,
    );
    assert.equal(fake.calls.length, 0);
  });

  test('TRIGGERD_LIBMOUNT=0, or an addon that does not load: declines with the reason', () => {
    const off = inProcessMounts(silentLogger(), () => fakeLibmount().native, { TRIGGERD_LIBMOUNT: '0' });
    assert.equal(off.refusal(mountCall()), 'TRIGGERD_LIBMOUNT=0');
    const missing = inProcessMounts(
      silentLogger(),
      () => {
        throw new Error('triggerd native addon triggerd_libmount.node is not built');
      },
      {},
    );
    assert.match(missing.refusal(mountCall()) ?? '', /addon is not available: .*not built/);
  });

  test('run(): the request as mount(8) gets it; the answer later, in mount(8)’s words', async () => {
    const fake = fakeLibmount();
    const m = await readyMounts(() => false, true, fake);
    fake.answers.push({
      rc: 19,
      exitCode: 32,
      message: "unknown filesystem type 'nosuchfs'",
      syscallCalled: true,
      syscallErrno: 19,
    });
    let got: MountCallResult | undefined;
    assert.equal(
      m.run(mountCall({ type: 'nosuchfs', sloppy: true, readWriteOnly: true }), (r) => (got = r)),
      true,
    );
    assert.equal(got, undefined, 'never inside run()');
    assert.deepEqual(fake.calls[0], {
      source: '/srv/image.img',
      target: '/mnt/x',
      fstype: 'nosuchfs',
      options: 'loop,ro',
      sloppy: true,
      readWriteOnly: true,
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, {
      status: 32,
      lines: [
        "mount: /mnt/x: unknown filesystem type 'nosuchfs'.",
        '       dmesg(1) may have more information after failed mount system call.',
      ],
    });
    // umount, and a rejected call (no context could be made): status 2 with the reason.
    fake.answers.push(Object.assign(new Error('ENOMEM: out of memory, mnt_new_context'), { code: 'ENOMEM' }));
    m.run({ command: 'umount', where: '/mnt/x', type: 'ext4', lazy: true, force: true }, (r) => (got = r));
    assert.deepEqual(fake.calls[1], { target: '/mnt/x', lazy: true, force: true });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, { status: 2, lines: ['umount: /mnt/x: ENOMEM: out of memory, mnt_new_context'] });
  });

  test('resultOf: success is silent; a warning on success is kept; failures without a syscall get no dmesg hint', () => {
    assert.deepEqual(resultOf('mount', '/m', OK), { status: 0, lines: [] });
    assert.deepEqual(
      resultOf('mount', '/m', { ...OK, message: 'WARNING: source write-protected, mounted read-only' }),
      { status: 0, lines: ['mount: /m: WARNING: source write-protected, mounted read-only.'] },
    );
    assert.deepEqual(
      resultOf('mount', '/m', {
        rc: -1,
        exitCode: 32,
        message: 'failed to setup loop device for /x.img',
        syscallCalled: false,
        syscallErrno: 0,
      }).lines,
      ['mount: /m: failed to setup loop device for /x.img.'],
    );
    assert.deepEqual(
      resultOf('umount', '/m', {
        rc: 16,
        exitCode: 32,
        message: 'target is busy',
        syscallCalled: true,
        syscallErrno: 16,
      }).lines,
      ['umount: /m: target is busy.'],
    );
  });
});

function entry(where: string, over: Partial<MountEntry> = {}): MountEntry {
  return {
    id: 100,
    parentId: 1,
    major: 0,
    minor: 50,
    root: '/',
    mountPoint: where,
    options: 'rw',
    optionalFields: [],
    fsType: 'ext4',
    source: '/dev/loop0',
    superOptions: 'rw',
    ...over,
  };
}

describe('topOf: an automount’s trap is not its mount unit’s mount', () => {
  const trap = entry('/mnt/x', { id: 42, fsType: 'autofs', source: 'triggerd-1234' });
  const ext4 = entry('/mnt/x', { id: 43, parentId: 42 });
  const stack = (...e: MountEntry[]) => new Map(e.map((x) => [x.id, x]));

  test('only the trap: nothing mounted', () => assert.equal(topOf(stack(trap)), undefined));
  test('a file system on the trap: that one', () => assert.equal(topOf(stack(trap, ext4)), ext4));
  test('someone else’s autofs mount (the autofs daemon, systemd-1) counts', () => {
    const other = entry('/mnt/x', { id: 44, fsType: 'autofs', source: '/etc/auto.misc' });
    assert.equal(topOf(stack(other)), other);
  });
  test('stacked mounts: the one nothing sits on', () => {
    const b = entry('/mnt/x', { id: 50, parentId: 43 });
    assert.equal(topOf(stack(b, trap, ext4)), b);
  });
});

describe('MountUnit with in-process mounts', () => {
  function rig(
    text = '[Mount]\nWhat=/srv/image.img\nWhere=/mnt/x\nType=ext4\nOptions=loop,ro,nofail\nLazyUnmount=yes\n',
  ) {
    const file = parseUnitText('mnt-x.mount', text, '/u/mnt-x.mount');
    const spawned: string[][] = [];
    const calls: MountCall[] = [];
    const pending: ((r: MountCallResult) => void)[] = [];
    const jobs: JobEnd[] = [];
    const timers: (() => void)[] = [];
    let kernel: MountEntry | undefined;
    let inProcess = true;
    let pid = 1000;
    const host: MountHost = {
      runHelper: (argv) => {
        spawned.push([...argv]);
        return { ok: true, pid: ++pid };
      },
      runInProcess: (call, done) => {
        if (!inProcess) return false;
        calls.push(call);
        pending.push(done);
        return true;
      },
      runsInProcess: () => inProcess,
      takeOutput: () => [],
      signal: () => undefined,
      prepareMountPoint: () => undefined,
      refreshMounts: () => unit.setKernel(kernel),
      setTimer: (_ms, fn) => {
        timers.push(fn);
        return () => {
          const i = timers.indexOf(fn);
          if (i >= 0) timers.splice(i, 1);
        };
      },
      jobFinished: (end) => jobs.push(end),
      stateChanged: () => undefined,
      log: silentLogger(),
    };
    const unit = new MountUnit('mnt-x.mount', file, '/mnt/x', host);
    return {
      unit,
      spawned,
      calls,
      jobs,
      timers,
      setKernel: (e: MountEntry | undefined) => (kernel = e),
      decline: () => (inProcess = false),
      finish: (r: MountCallResult) => pending.shift()?.(r),
      fireTimer: () => timers.shift()?.(),
    };
  }

  test('start: the mount runs in process (no control pid, no helper); done + kernel → mounted', () => {
    const r = rig();
    assert.equal(r.unit.mountsInProcess(), true);
    assert.equal(r.unit.start(), 'pending');
    assert.deepEqual(r.spawned, []);
    assert.deepEqual(r.calls[0], mountCall());
    assert.equal(r.unit.controlPid, undefined);
    assert.ok(r.unit.statusLines().some((l) => /Control: in process \(mount, libmount\)/.test(l)));
    r.setKernel(entry('/mnt/x'));
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'mounted');
    assert.deepEqual(r.jobs, ['done']);
    assert.equal(r.unit.controlInProcess, undefined);
  });

  test("a failure: failed, exit-code with libmount's words in status", () => {
    const r = rig();
    r.unit.start();
    r.finish({ status: 32, lines: ["mount: /mnt/x: unknown filesystem type 'nosuchfs'."] });
    assert.equal(r.unit.state, 'failed');
    assert.equal(r.unit.result, 'exit-code');
    assert.deepEqual(r.jobs, ['failed']);
    assert.equal(r.unit.lastFailure?.status, 32);
    assert.match(r.unit.lastFailure?.message ?? '', /unknown filesystem type 'nosuchfs'/);
    assert.ok(r.unit.statusLines().some((l) => /Error: mount exit-code \(status 32\).*nosuchfs/.test(l)));
    assert.equal(r.unit.properties().LastError, "mount: /mnt/x: unknown filesystem type 'nosuchfs'.");
  });

  test('stop: umount in process with LazyUnmount= and the kernel’s type', () => {
    const r = rig();
    r.setKernel(entry('/mnt/x'));
    r.unit.setKernel(entry('/mnt/x'));
    assert.equal(r.unit.unmountsInProcess(), true);
    assert.equal(r.unit.stop(), 'pending');
    assert.deepEqual(r.calls[0], {
      command: 'umount',
      where: '/mnt/x',
      type: 'ext4',
      lazy: true,
      force: false,
    });
    r.setKernel(undefined);
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'dead');
    assert.deepEqual(r.jobs, ['done']);
  });

  test('the host declines: mount(8) runs as before', () => {
    const r = rig();
    r.decline();
    assert.equal(r.unit.mountsInProcess(), false);
    r.unit.start();
    assert.deepEqual(r.spawned[0], ['/bin/mount', '/srv/image.img', '/mnt/x', '-t', 'ext4', '-o', 'loop,ro']);
    assert.equal(r.unit.controlPid, 1001);
  });

  test('a timeout cannot kill the call: it is waited for, and what it mounted late is unmounted', () => {
    const r = rig();
    r.unit.start();
    r.fireTimer(); // TimeoutSec= (90 s)
    assert.deepEqual(r.jobs, ['failed']); // the job fails; the unit's result says timeout
    assert.equal(r.unit.state, 'unmounting-sigterm');
    // The call comes back after all, having mounted: undone.
    r.setKernel(entry('/mnt/x'));
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'unmounting');
    assert.equal(r.calls[1]?.command, 'umount');
    r.setKernel(undefined);
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'failed');
    assert.equal(r.unit.result, 'timeout');
  });

  test('a call that never returns: after the kill timeouts the unit stops waiting; a late answer is ignored', () => {
    const r = rig();
    r.unit.start();
    r.fireTimer(); // TimeoutSec=
    r.fireTimer(); // "SIGTERM" period
    assert.equal(r.unit.state, 'unmounting-sigkill');
    r.fireTimer(); // "SIGKILL" period: give up
    assert.equal(r.unit.state, 'failed');
    assert.equal(r.unit.controlInProcess, undefined);
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'failed');
  });

  test('stop while the in-process mount runs: waits for it, then unmounts what it made', () => {
    const r = rig();
    r.unit.start();
    assert.equal(r.unit.stop(), 'pending');
    assert.equal(r.unit.state, 'unmounting-sigterm');
    r.setKernel(entry('/mnt/x'));
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'unmounting');
    r.setKernel(undefined);
    r.finish({ status: 0, lines: [] });
    assert.equal(r.unit.state, 'dead');
  });
});
