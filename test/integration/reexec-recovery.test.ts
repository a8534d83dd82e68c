// What a re-exec or a crash of the daemon must not cost, beyond services and sockets
// (reexec.test.ts), through a private daemon run as a child process (issue 9):
// - a control process (ExecStartPre=) running across a re-exec or a kill -9 + restart is adopted,
//   and its exit continues the start at the next step (each step runs once);
// - a service writing to its stdout while no daemon runs (killed, not restarted yet) gets no
//   EPIPE/SIGPIPE, and its lines are logged again after the restart;
// - the cgroups an earlier image made (kept unit groups, Accept=yes pools' spare slots) are
//   removed by the next image when empty and unused; a group with a running process stays.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';
import { findCgroupHierarchy } from '../../src/exec/cgroups';
import { freePort } from '../helpers/loopback';
import { loadNativeSpawn } from '../../src/native/spawn-addon';
import { loadNativeReexec } from '../../src/native/reexec-addon';

const skip =
  skipUnlessRoot() ??
  (['triggerd_socket.node', 'triggerd_reexec.node'].every((a) =>
    addonCandidates(a).some((f) => fs.existsSync(f)),
  )
    ? undefined
    : 'needs the triggerd_socket and triggerd_reexec addons (npm install builds them)');

const hierarchy = findCgroupHierarchy();
const slice = hierarchy.ok ? path.join(hierarchy.root, 'triggerd', 'triggerd.slice') : undefined;
const skipCgroups = skip ?? (slice !== undefined ? undefined : 'needs a cgroup2 hierarchy');

const skipPython = fs.existsSync('/usr/bin/python3') ? undefined : 'needs /usr/bin/python3';

/** An unused loop device (size 0) to send synthetic uevents for. */
const loopDevice = ((): string | undefined => {
  const loops = safeReaddir('/sys/block')
    .filter((n) => /^loop\d+$/.test(n))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)));
  return loops.find((n) => {
    try {
      return fs.readFileSync(`/sys/block/${n}/size`, 'latin1').trim() === '0';
    } catch {
      return false;
    }
  });
})();
const skipLoop = loopDevice !== undefined ? undefined : 'needs an unused loop device';

const ctl = (d: RunningDaemon, ...args: string[]) =>
  run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
const prop = async (d: RunningDaemon, unit: string, name: string): Promise<string> =>
  (await ctl(d, 'show', unit, '--property', name, '--value')).stdout.trim();

/** The state file once `check` holds for its text. */
function waitForState(dir: string, what: string, check: (text: string) => boolean): Promise<true> {
  return waitFor(what, () => {
    try {
      return check(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

/** Waits (15 s) until `unit`'s `name` property is `value`; the daemon's log tail on a timeout. */
async function waitForProp(d: RunningDaemon, unit: string, name: string, value: string): Promise<void> {
  await waitFor(
    `${unit} ${name}=${value}`,
    async () => ((await prop(d, unit, name)) === value ? true : undefined),
    15_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; log: ${logTail(d)}`);
  });
}

function restoredCount(d: RunningDaemon): number {
  return d.logs.filter((l) => l.msg === 'units restored from the state file').length;
}

function logTail(d: RunningDaemon): string {
  return d.logs
    .slice(-30)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

function connectOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (b) => (out += b.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.setTimeout(10_000, () => {
      c.destroy();
      reject(new Error('no answer'));
    });
  });
}

/** PIDFD_INFO_EXIT came in Linux 6.15. */
const skipPidfdExitInfo =
  skip ??
  ((): string | undefined => {
    const [major, minor] = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number);
    return major > 6 || (major === 6 && minor >= 15) ? undefined : 'PIDFD_INFO_EXIT needs Linux 6.15';
  })();

/** The parent pid from /proc/PID/stat (field 4), or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return false;
  }
}

/** Running (a zombie is not: PID 1 here may take its time to reap what it inherits). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

describe('re-exec and crash recovery: control processes, output, cgroups', { skip }, () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-recovery-'));
  const token = `t${process.pid.toString(36)}${Date.now().toString(36)}`;
  const daemons: RunningDaemon[] = [];

  after(async () => {
    for (const d of daemons) {
      if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
    }
    // Services of a daemon killed on purpose: by the pids they wrote.
    for (const file of fs.readdirSync(root, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.pid')) continue;
      const pid = Number(fs.readFileSync(path.join(root, file), 'utf8'));
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        if (cmd.startsWith('sleep\u00001000') || cmd.includes('line-') || cmd.includes('notifier.py'))
          process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // Groups this file's units left behind after a failure (empty ones only can go).
    if (slice !== undefined) {
      for (const name of safeReaddir(slice)) {
        if (!name.startsWith(token)) continue;
        try {
          fs.rmdirSync(path.join(slice, name));
        } catch {
          // busy or gone
        }
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  function unitDir(name: string, units: Record<string, string>): string {
    const dir = path.join(root, name, 'units');
    fs.mkdirSync(dir, { recursive: true });
    for (const [n, text] of Object.entries(units)) fs.writeFileSync(path.join(dir, n), text);
    return dir;
  }

  /**
   * A service with a slow first ExecStartPre=, and a socket with one; each step appends its name
   * to `marker` (the socket's steps to `marker`.socket).
   */
  function slowPreUnits(name: string, seconds: number, port: number): { units: string; marker: string } {
    const base = path.join(root, name);
    fs.mkdirSync(base, { recursive: true });
    const marker = path.join(base, 'steps');
    const units = unitDir(name, {
      'pre.service':
        `[Service]\nExecStartPre=/bin/sh -c 'echo first >> ${marker}; exec /bin/sleep ${seconds}'\n` +
        `ExecStartPre=/bin/sh -c 'echo second >> ${marker}'\n` +
        `ExecStart=/bin/sh -c 'echo $$ > ${base}/main-$$.pid; echo main >> ${marker}; exec sleep 1000'\n` +
        `ExecStartPost=/bin/sh -c 'echo post >> ${marker}'\n`,
      'slow.socket':
        `[Socket]\nListenStream=127.0.0.1:${port}\nAccept=yes\n` +
        `ExecStartPre=/bin/sh -c 'echo first >> ${marker}.socket; exec /bin/sleep ${seconds}'\n` +
        `ExecStartPost=/bin/sh -c 'echo post >> ${marker}.socket'\n`,
      'slow@.service': '[Service]\nExecStart=/bin/echo hi\n',
      'default.target': '[Unit]\nWants=pre.service slow.socket\n',
    });
    return { units, marker };
  }

  /** Each step once, in order; the main process and ExecStartPost= start together (Type=simple). */
  const assertSteps = (steps: string[]): void => {
    assert.deepEqual(steps.slice(0, 2), ['first', 'second']);
    assert.deepEqual(steps.slice(2).sort(), ['main', 'post']);
  };

  const readSteps = (marker: string): string[] => {
    try {
      return fs.readFileSync(marker, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };

  /**
   * A Type=notify service's program (python3): writes its pid to argv[3], sends `first`, waits
   * until the expression `until` holds (argv[1] is the file it looks at), sends `then` and writes
   * `sent` to argv[2]. A datagram nobody's socket takes is refused (ECONNREFUSED): the script
   * then dies without writing `sent`.
   */
  function writeNotifier(file: string, first: string, until: string, then: string): void {
    fs.writeFileSync(
      file,
      `import os, socket, sys, time
def notify(msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(os.environ["NOTIFY_SOCKET"])
    s.send(msg.encode())
    s.close()
def ready():
    try:
        return ${until}
    except OSError:
        return False
open(sys.argv[3], "w").write(str(os.getpid()))
notify("${first}")
while not ready():
    time.sleep(0.001)
notify("${then}")
open(sys.argv[2], "w").write("sent")
while True:
    time.sleep(1000)
`,
    );
  }

  test('an ExecStartPre= spanning a re-exec is adopted and the start goes on after it', async () => {
    // The re-exec gives running jobs a second; the sleep outlasts that.
    const port = await freePort();
    const { units, marker } = slowPreUnits('pre-reexec', 10, port);
    const d = await startDaemon(['--unit-path', units, '--fstab', '']);
    daemons.push(d);
    await waitFor('ExecStartPre running', () => (readSteps(marker).includes('first') ? true : undefined));
    const controlPid = Number(await prop(d, 'pre.service', 'ControlPID'));
    assert.ok(controlPid > 0, 'a control process runs');
    assert.equal(await prop(d, 'pre.service', 'SubState'), 'start-pre');
    const r = await ctl(d, 'daemon-reexec');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the re-exec', () => (restoredCount(d) >= 1 ? true : undefined), 15_000);
    assert.ok(alive(controlPid), 'the re-exec happened while ExecStartPre= ran');
    assert.equal(await prop(d, 'pre.service', 'ControlPID'), String(controlPid));
    assert.equal(await prop(d, 'pre.service', 'SubState'), 'start-pre');
    await waitForProp(d, 'pre.service', 'SubState', 'running');
    await waitFor('ExecStartPost= ran', () => (readSteps(marker).includes('post') ? true : undefined));
    assertSteps(readSteps(marker));
    assert.equal(await prop(d, 'pre.service', 'Result'), 'success');
    // The socket's ExecStartPre= spanned the re-exec as well.
    await waitFor('slow.socket listening', async () =>
      (await prop(d, 'slow.socket', 'SubState')) === 'listening' ? true : undefined,
    );
    assert.deepEqual(readSteps(`${marker}.socket`), ['first', 'post']);
    assert.equal(await connectOnce(port), 'hi\n');
    assert.equal(d.proc.exitCode, null);
    await d.stop();
  });

  /**
   * a.service in a slow ExecStartPre=, b.service (Requires= and After= it) waiting for it; then a
   * re-exec or a kill -9 and a restart: both jobs go on in the new image, b after a, once each.
   */
  async function jobsSurvive(kind: 'reexec' | 'crash'): Promise<void> {
    const base = path.join(root, `jobs-${kind}`);
    fs.mkdirSync(base, { recursive: true });
    const marker = path.join(base, 'steps');
    const units = unitDir(`jobs-${kind}`, {
      // A oneshot: b's start waits for a's to complete (a simple service's would end at exec).
      [`${token}a.service`]:
        `[Service]\nType=oneshot\nRemainAfterExit=yes\n` +
        `ExecStartPre=/bin/sh -c 'echo pre >> ${marker}; exec /bin/sleep 3'\n` +
        `ExecStart=/bin/sh -c 'echo a >> ${marker}'\n`,
      [`${token}b.service`]:
        `[Unit]\nRequires=${token}a.service\nAfter=${token}a.service\n` +
        `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo b >> ${marker}'\n`,
      'default.target': `[Unit]\nWants=${token}b.service\n`,
    });
    const dir = path.join(base, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const args = ['--unit-path', units, '--fstab', ''];
    let d = await startDaemon(args, { dir });
    daemons.push(d);
    await waitFor('a.service in ExecStartPre=', () => (readSteps(marker).includes('pre') ? true : undefined));
    const waiting = new RegExp(`${token}b\\.service\\s+start\\s+waiting`);
    assert.match((await ctl(d, 'list-jobs')).stdout, waiting);
    if (kind === 'reexec') {
      const r = await ctl(d, 'daemon-reexec');
      assert.equal(r.code, 0, r.stderr);
      await waitFor('the re-exec', () => (restoredCount(d) >= 1 ? true : undefined), 15_000);
    } else {
      await waitForState(dir, 'the checkpoint lists the jobs', (t) =>
        t.includes(`"unit":"${token}b.service"`),
      );
      process.kill(d.pid, 'SIGKILL');
      await d.exited;
      d = await startDaemon(args, { dir });
      daemons.push(d);
      await d.waitForLog((l) => l.msg === 'units restored from the state file');
    }
    const restored = d.logs.find((l) => l.msg === 'units restored from the state file');
    assert.ok(Number(restored?.jobs) >= 2, `jobs taken back: ${JSON.stringify(restored)}`);
    assert.deepEqual(readSteps(marker), ['pre'], `the ${kind} happened while ExecStartPre= ran`);
    const jobs = (await ctl(d, 'list-jobs')).stdout;
    assert.match(jobs, new RegExp(`${token}a\\.service\\s+start\\s+running`));
    assert.match(jobs, waiting);
    await waitFor(
      'b.service ran after a.service',
      () => (readSteps(marker).includes('b') ? true : undefined),
      15_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; log: ${logTail(d)}`);
    });
    assert.deepEqual(readSteps(marker), ['pre', 'a', 'b']);
    assert.equal(await prop(d, `${token}b.service`, 'ActiveState'), 'active');
    await waitFor('no jobs left', async () =>
      (await ctl(d, 'list-jobs')).stdout.includes(token) ? undefined : true,
    );
    await d.stop();
  }

  test('jobs across a re-exec: the running start and the job waiting for it go on in the new image', () =>
    jobsSurvive('reexec'));

  test('jobs across a kill -9 and a restart: taken back from the checkpoint, they go on', () =>
    jobsSurvive('crash'));

  /**
   * A daemon whose `unit` is in its first ExecStartPre= (it writes "first" to `marker`) killed
   * with SIGKILL once the checkpoint lists that control process, and a second one started on the
   * same state, the control process still running: the restarted daemon and the process's pid.
   */
  async function crashDuringPre(
    name: string,
    units: string,
    marker: string,
    unit: string,
  ): Promise<{ b: RunningDaemon; controlPid: number }> {
    const dir = path.join(root, name, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const args = ['--unit-path', units, '--fstab', ''];
    const a = await startDaemon(args, { dir });
    daemons.push(a);
    await waitFor('ExecStartPre running', () => (readSteps(marker).includes('first') ? true : undefined));
    const controlPid = Number(await prop(a, unit, 'ControlPID'));
    await waitForState(dir, 'the checkpoint lists the control process', (t) =>
      t.includes(`"control":{"pid":${controlPid}`),
    );
    process.kill(a.pid, 'SIGKILL');
    await a.exited;
    const b = await startDaemon(args, { dir });
    daemons.push(b);
    await b.waitForLog((l) => l.msg === 'units restored from the state file');
    assert.ok(alive(controlPid), 'the restart happened while ExecStartPre= ran');
    return { b, controlPid };
  }

  /** `unit` ends failed with exit-code, its ExecStartPre= having run and its ExecStart= not. */
  async function failsAtPre(b: RunningDaemon, unit: string, marker: string): Promise<void> {
    await waitForProp(b, unit, 'ActiveState', 'failed');
    assert.equal(await prop(b, unit, 'Result'), 'exit-code');
    assert.deepEqual(readSteps(marker), ['first'], 'ExecStart= never ran');
  }

  test('an ExecStartPre= running at a kill -9 is adopted by the restarted daemon', async () => {
    const port = await freePort();
    const { units, marker } = slowPreUnits('pre-crash', 5, port);
    const { b, controlPid } = await crashDuringPre('pre-crash', units, marker, 'pre.service');
    assert.ok(b.logs.some((l) => l.msg === `adopted process ${controlPid}`));
    await waitForProp(b, 'pre.service', 'SubState', 'running');
    await waitFor('ExecStartPost= ran', () => (readSteps(marker).includes('post') ? true : undefined));
    assertSteps(readSteps(marker));
    await waitFor('slow.socket listening', async () =>
      (await prop(b, 'slow.socket', 'SubState')) === 'listening' ? true : undefined,
    );
    assert.deepEqual(readSteps(`${marker}.socket`), ['first', 'post']);
    assert.equal(await connectOnce(port), 'hi\n');
    await b.stop();
  });

  test('an ExecStartPre= that fails after a kill -9 fails the start: its exit status is not lost', async () => {
    const base = path.join(root, 'pre-fails');
    fs.mkdirSync(base, { recursive: true });
    const marker = path.join(base, 'steps');
    const units = unitDir('pre-fails', {
      'fails.service':
        `[Service]\nExecStartPre=/bin/sh -c 'echo first >> ${marker}; sleep 2; exit 3'\n` +
        `ExecStart=/bin/sh -c 'echo main >> ${marker}; exec sleep 1000'\n`,
      'default.target': '[Unit]\nWants=fails.service\n',
    });
    const { b } = await crashDuringPre('pre-fails', units, marker, 'fails.service');
    // Reparented to init (or our subreaper) while no daemon ran: its status comes from the zombie's
    // /proc entry or, once reaped, from the kernel's PIDFD_INFO_EXIT; never taken as success.
    await failsAtPre(b, 'fails.service', marker);
    assert.ok(!b.logs.some((l) => /exit status unknown/.test(String(l.msg))));
    await b.stop();
  });

  test(
    'an ExecStartPre= reaped by its subreaper before the restarted daemon looks: its status from PIDFD_INFO_EXIT',
    { skip: skipPidfdExitInfo },
    async () => {
      // This test process is the subreaper the orphaned ExecStartPre= goes to at the kill -9, and
      // it reaps it while the restarted daemon is stopped (SIGSTOP): when the daemon looks, no
      // zombie is left, and only the kernel's PIDFD_INFO_EXIT for its pidfd has the status.
      const spawnAddon = loadNativeSpawn();
      const reexec = loadNativeReexec();
      const wasSubreaper = spawnAddon.isSubreaper();
      spawnAddon.setSubreaper(true);
      let stopped: number | undefined;
      try {
        const base = path.join(root, 'pre-reaped');
        fs.mkdirSync(base, { recursive: true });
        const marker = path.join(base, 'steps');
        const go = path.join(base, 'go');
        const units = unitDir('pre-reaped', {
          'reaped.service':
            `[Service]\nExecStartPre=/bin/sh -c 'echo first >> ${marker}; ` +
            `while [ ! -e ${go} ]; do sleep 0.05; done; exit 3'\n` +
            `ExecStart=/bin/sh -c 'echo main >> ${marker}; exec sleep 1000'\n`,
          'default.target': '[Unit]\nWants=reaped.service\n',
        });
        const { b, controlPid } = await crashDuringPre('pre-reaped', units, marker, 'reaped.service');
        await b.waitForLog((l) => l.msg === `adopted process ${controlPid}`);
        assert.equal(parentOf(controlPid), process.pid, 'the orphan went to this test process');
        process.kill(b.pid, 'SIGSTOP');
        stopped = b.pid;
        const pidfd = reexec.pidfdOpen(controlPid);
        try {
          fs.writeFileSync(go, '');
          await waitFor('ExecStartPre= exited', () => (zombie(controlPid) ? true : undefined));
          assert.deepEqual(reexec.waitPidfd(pidfd), { pid: controlPid, code: 'exited', status: 3 });
        } finally {
          reexec.closeFd(pidfd);
        }
        assert.ok(!fs.existsSync(`/proc/${controlPid}`), 'reaped before the daemon runs again');
        process.kill(b.pid, 'SIGCONT');
        stopped = undefined;
        await failsAtPre(b, 'reaped.service', marker);
        const ended = b.logs.find((l) => String(l.msg).startsWith(`adopted process ${controlPid} ended`));
        assert.match(String(ended?.msg), /its status from the kernel \(PIDFD_INFO_EXIT\)/);
        assert.equal(ended?.status, 3);
        await b.stop();
      } finally {
        if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
        spawnAddon.setSubreaper(wasSubreaper);
      }
    },
  );

  test('a mount helper (mount(8)) running at a kill -9 is adopted: the mount unit ends up mounted', async () => {
    const type = `trgd${token}`;
    const helper = `/sbin/mount.${type}`;
    const where = `/run/${type}`;
    const unitName = `run-${type}.mount`;
    const dir = path.join(root, 'mount', 'run');
    fs.mkdirSync(dir, { recursive: true });
    // mount(8) runs /sbin/mount.TYPE for a type with a helper: a slow one that mounts a tmpfs.
    fs.writeFileSync(helper, '#!/bin/sh\nsleep 6\nexec /bin/mount -t tmpfs -o size=1m tmpfs "$2"\n', {
      mode: 0o755,
    });
    const units = unitDir('mount', {
      [unitName]: `[Mount]\nWhat=none\nWhere=${where}\nType=${type}\n`,
      'default.target': `[Unit]\nWants=${unitName}\n`,
    });
    const args = ['--unit-path', units, '--fstab', ''];
    try {
      const a = await startDaemon(args, { dir });
      daemons.push(a);
      const helperPid = await waitFor('mount(8) running', async () => {
        const pid = Number(await prop(a, unitName, 'ControlPID'));
        return pid > 0 ? pid : undefined;
      });
      await waitForState(dir, 'the checkpoint lists the helper', (t) =>
        t.includes(`"control":{"pid":${helperPid}`),
      );
      process.kill(a.pid, 'SIGKILL');
      await a.exited;
      const b = await startDaemon(args, { dir });
      daemons.push(b);
      await b.waitForLog((l) => l.msg === 'units restored from the state file');
      assert.ok(alive(helperPid), 'the restart happened while mount(8) ran');
      assert.ok(b.logs.some((l) => l.msg === `adopted process ${helperPid}`));
      const shown = await prop(b, unitName, 'ControlPID');
      // Unless it has finished meanwhile (a loaded machine), the unit shows it as its own.
      if (alive(helperPid)) assert.equal(shown, String(helperPid));
      await waitForProp(b, unitName, 'SubState', 'mounted');
      assert.match(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(` ${where} `));
      const stopped = await ctl(b, 'stop', unitName);
      assert.equal(stopped.code, 0, stopped.stderr);
      await b.stop();
    } finally {
      if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${where} `))
        await run('/bin/umount', ['-l', where], { allowFail: true });
      fs.rmSync(helper, { force: true });
      try {
        fs.rmdirSync(where);
      } catch {
        // not there
      }
    }
  });

  test('a service writing through kill -9 + restart: no EPIPE, its lines logged again', async (t) => {
    const base = path.join(root, 'talk');
    fs.mkdirSync(base, { recursive: true });
    // No trap: SIGPIPE would kill the shell, EPIPE would end the loop with a line on stderr.
    const units = unitDir('talk', {
      'talk.service':
        `[Service]\nExecStart=/bin/sh -c 'echo $$ > ${base}/talk-$$.pid; i=0; ` +
        `while echo line-$i; do i=$((i+1)); sleep 0.05; done; echo write failed >&2; exit 7'\n`,
      'default.target': '[Unit]\nWants=talk.service\n',
    });
    const dir = path.join(base, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const args = ['--unit-path', units, '--fstab', ''];
    const a = await startDaemon(args, { dir });
    daemons.push(a);
    const numbers = (d: RunningDaemon): number[] =>
      d.logs
        .filter((l) => l.unit === 'talk.service' && typeof l.msg === 'string' && l.msg.startsWith('line-'))
        .map((l) => Number((l.msg as string).slice(5)));
    await waitFor('lines logged', () => (numbers(a).length >= 5 ? true : undefined));
    const pid = Number(await prop(a, 'talk.service', 'MainPID'));
    await waitForState(dir, 'the checkpoint lists talk.service', (t) => t.includes(`"mainPid":${pid}`));
    process.kill(a.pid, 'SIGKILL');
    await a.exited;
    const lastBefore = Math.max(...numbers(a));
    // ~20 lines written while no daemon runs.
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(alive(pid), 'the service survived writing with no daemon');
    const b = await startDaemon(args, { dir });
    daemons.push(b);
    await b.waitForLog((l) => l.msg === 'units restored from the state file');
    await waitFor('lines logged after the restart', () =>
      numbers(b).some((n) => n > lastBefore + 30) ? true : undefined,
    );
    assert.ok(alive(pid));
    assert.equal(await prop(b, 'talk.service', 'MainPID'), String(pid));
    assert.equal(await prop(b, 'talk.service', 'SubState'), 'running');
    assert.ok(!b.logs.some((l) => l.unit === 'talk.service' && l.msg === 'write failed'));
    // What was written while no daemon ran waited in the pipe: nothing after the kill is missing.
    const after = new Set(numbers(b));
    const first = Math.min(...after);
    const missing = [...Array(Math.max(...after) - first + 1).keys()].filter((i) => !after.has(first + i));
    assert.deepEqual(missing, []);
    // Lines the killed daemon had read but not yet logged die with it; none written after.
    t.diagnostic(`last line logged before the kill: ${lastBefore}; first after the restart: ${first}`);
    assert.ok(first <= lastBefore + 25, `lines ${lastBefore + 1}..${first - 1} were lost`);
    await b.stop();
  });

  test('sd_notify datagrams sent during a re-exec reach the new image', { skip: skipPython }, async () => {
    const base = path.join(root, 'notify');
    fs.mkdirSync(base, { recursive: true });
    const dir = path.join(base, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const script = path.join(base, 'notifier.py');
    const sent = path.join(base, 'sent');
    // Sends once the state file says a re-exec is under way: after the old image read its
    // socket for the last time, before the new one runs (a socket not carried across refuses it).
    writeNotifier(
      script,
      'READY=1\\nSTATUS=started',
      `'"kind":"reexec"' in open(sys.argv[1]).read()`,
      'READY=1\\nSTATUS=sent-in-the-window',
    );
    const units = unitDir('notify', {
      'talker.service': `[Service]\nType=notify\nExecStart=/usr/bin/python3 ${script} ${dir}/state.json ${sent} ${base}/talker.pid\n`,
      'default.target': '[Unit]\nWants=talker.service\n',
    });
    const d = await startDaemon(['--unit-path', units, '--fstab', ''], { dir });
    daemons.push(d);
    await waitFor('talker.service ready', async () =>
      (await prop(d, 'talker.service', 'StatusText')) === 'started' ? true : undefined,
    );
    process.kill(d.pid, 'SIGUSR1');
    await waitFor('the re-exec', () => (restoredCount(d) >= 1 ? true : undefined), 15_000);
    await waitFor('the datagram sent', () => (fs.existsSync(sent) ? true : undefined));
    await waitFor('the new image saw STATUS=', async () =>
      (await prop(d, 'talker.service', 'StatusText')) === 'sent-in-the-window' ? true : undefined,
    );
    assert.ok(
      d.logs.some((l) => l.msg === 'continuing after re-exec' && typeof l.notifyFd === 'number'),
      'the notify socket was carried',
    );
    assert.equal(await prop(d, 'talker.service', 'SubState'), 'running');
    await d.stop();
  });

  test(
    'sd_notify datagrams sent while no daemon runs (kill -9, later a restart) reach the restarted daemon',
    { skip: skipPython },
    async () => {
      const base = path.join(root, 'notify-crash');
      const dir = path.join(base, 'run');
      fs.mkdirSync(dir, { recursive: true });
      const script = path.join(base, 'notifier.py');
      const go = path.join(base, 'go');
      const sent = path.join(base, 'sent');
      // READY=1 only once `go` exists, which the test makes after the kill -9: with nobody
      // holding the socket the send would be refused.
      writeNotifier(
        script,
        'STATUS=waiting',
        'os.path.exists(sys.argv[1])',
        'READY=1\\nSTATUS=sent-while-down',
      );
      const units = unitDir('notify-crash', {
        'talker.service': `[Service]\nType=notify\nExecStart=/usr/bin/python3 ${script} ${go} ${sent} ${base}/talker.pid\n`,
        'default.target': '[Unit]\nWants=talker.service\n',
      });
      const args = ['--unit-path', units, '--fstab', ''];
      const a = await startDaemon(args, { dir });
      daemons.push(a);
      await waitFor('talker.service waiting for its go', async () =>
        (await prop(a, 'talker.service', 'StatusText')) === 'waiting' ? true : undefined,
      );
      assert.equal(await prop(a, 'talker.service', 'SubState'), 'start');
      const holder = Number((await a.waitForLog((l) => l.msg === 'fd holder started')).pid);
      await waitForState(dir, 'the checkpoint names the fd holder', (t) =>
        t.includes(`"holder":{"pid":${holder}`),
      );
      process.kill(a.pid, 'SIGKILL');
      await a.exited;
      fs.writeFileSync(go, '');
      await waitFor('the datagram sent while no daemon ran', () => (fs.existsSync(sent) ? true : undefined));
      const b = await startDaemon(args, { dir });
      daemons.push(b);
      await b.waitForLog((l) => l.msg === 'units restored from the state file');
      assert.ok(
        b.logs.some((l) => /took the event sockets back from the fd holder/.test(String(l.msg))),
        'the sockets came from the holder',
      );
      await waitFor('talker.service running', async () =>
        (await prop(b, 'talker.service', 'SubState')) === 'running' ? true : undefined,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; log: ${logTail(b)}`);
      });
      assert.equal(await prop(b, 'talker.service', 'StatusText'), 'sent-while-down');
      await waitFor('the old holder gone', () => (alive(holder) ? undefined : true));
      await b.stop();
    },
  );

  test('an fd holder killed while the daemon runs is replaced at the next checkpoint', async () => {
    const base = path.join(root, 'holder-replaced');
    const dir = path.join(base, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const units = unitDir('holder-replaced', {
      'blip.service': '[Service]\nType=oneshot\nExecStart=/bin/true\n',
    });
    const d = await startDaemon(['--unit-path', units, '--fstab', ''], { dir });
    daemons.push(d);
    const first = Number((await d.waitForLog((l) => l.msg === 'fd holder started')).pid);
    process.kill(first, 'SIGKILL');
    await waitFor('the holder gone', () => (alive(first) ? undefined : true));
    // A transition makes a checkpoint.
    assert.equal((await ctl(d, 'start', 'blip.service')).code, 0);
    await d.waitForLog((l) => l.msg === 'the fd holder is gone; starting another');
    const second = await waitFor('another holder', () => {
      const started = d.logs.filter((l) => l.msg === 'fd holder started').map((l) => Number(l.pid));
      return started.length >= 2 ? started[started.length - 1] : undefined;
    });
    assert.notEqual(second, first);
    assert.ok(alive(second));
    await waitForState(dir, 'the checkpoint names the new holder', (t) =>
      t.includes(`"holder":{"pid":${second}`),
    );
    await d.stop();
    await waitFor('the holder stopped with the daemon', () => (alive(second) ? undefined : true));
  });

  test('uevents generated during a re-exec are processed by the new image', { skip: skipLoop }, async (t) => {
    const base = path.join(root, 'uevent');
    const rules = path.join(base, 'rules');
    fs.mkdirSync(rules, { recursive: true });
    const dir = path.join(base, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const marker = path.join(base, 'seen');
    const tag = token.toUpperCase().replace(/[^A-Z0-9]/g, '');
    // Synthetic uevents (`change UUID KEY=value` written to a uevent file) carry SYNTH_ARG_KEY.
    fs.writeFileSync(
      path.join(rules, '50-test.rules'),
      `ACTION=="change", ENV{SYNTH_ARG_T${tag}}=="?*", RUN+="/bin/sh -c 'echo $env{SYNTH_ARG_T${tag}} >> ${marker}'"\n`,
    );
    const units = unitDir('uevent', { 'default.target': '[Unit]\n' });
    const d = await startDaemon(['--unit-path', units, '--fstab', '', '--rules-path', rules], { dir });
    daemons.push(d);
    const device = `/sys/block/${loopDevice}/uevent`;
    const sendChange = (n: number): void =>
      fs.writeFileSync(device, `change 6b1b4a2c-9d3e-4c5f-8a7b-${String(n).padStart(12, '0')} T${tag}=${n}`);
    sendChange(0);
    await waitFor('the rule ran', () => (fs.existsSync(marker) ? true : undefined));
    const readyBefore = d.logs.filter((l) => l.msg === 'triggerd ready').length;
    // SIGUSR1 (not triggerctl, whose own start-up outlasts the whole re-exec here). From the
    // moment the state file says a re-exec is under way until the new image is ready.
    process.kill(d.pid, 'SIGUSR1');
    const t0 = Date.now();
    for (;;) {
      let text = '';
      try {
        text = fs.readFileSync(path.join(dir, 'state.json'), 'utf8');
      } catch {
        // being replaced
      }
      if (text.includes('"kind":"reexec"')) break;
      assert.ok(Date.now() - t0 < 15_000, 'no re-exec state file within 15 s');
      await new Promise((res) => setImmediate(res));
    }
    let n = 0;
    let inWindow = 0;
    while (d.logs.filter((l) => l.msg === 'triggerd ready').length === readyBefore && n < 2000) {
      sendChange(++n);
      inWindow++;
      await new Promise((res) => setTimeout(res, 10));
    }
    for (let i = 0; i < 5; i++) sendChange(++n);
    assert.ok(inWindow > 0, 'events were sent while the re-exec ran');
    const want = [...Array(n + 1).keys()].map(String);
    await waitFor(
      'every event processed',
      () => {
        const seen = new Set(fs.readFileSync(marker, 'utf8').split('\n').filter(Boolean));
        return want.every((w) => seen.has(w)) ? true : undefined;
      },
      15_000,
    ).catch((err: Error) => {
      const seen = new Set(fs.readFileSync(marker, 'utf8').split('\n').filter(Boolean));
      throw new Error(`${err.message}: missing ${want.filter((w) => !seen.has(w)).join(' ')}`);
    });
    assert.ok(d.logs.some((l) => l.msg === 'continuing after re-exec' && typeof l.ueventFd === 'number'));
    t.diagnostic(
      `${inWindow} uevents sent between the re-exec's state file and the new image's 'ready', all processed`,
    );
    await d.stop();
  });

  test(
    'cgroups of earlier images: empty unused ones removed after re-exec and after a crash, busy ones kept',
    { skip: skipCgroups },
    async () => {
      const sliceDir = slice as string;
      const base = path.join(root, 'cg');
      fs.mkdirSync(base, { recursive: true });
      const port = await freePort();
      const units = unitDir('cg', {
        [`${token}-run.service`]: `[Service]\nExecStart=/bin/sh -c 'echo $$ > ${base}/run-$$.pid; exec sleep 1000'\n`,
        [`${token}-once.service`]: '[Service]\nType=oneshot\nExecStart=/bin/true\n',
        [`${token}.socket`]: `[Socket]\nListenStream=127.0.0.1:${port}\nAccept=yes\n`,
        [`${token}@.service`]: '[Service]\nExecStart=/bin/echo hi\n',
        'default.target': `[Unit]\nWants=${token}-run.service ${token}-once.service ${token}.socket\n`,
      });
      const dir = path.join(base, 'run');
      fs.mkdirSync(dir, { recursive: true });
      const args = ['--unit-path', units, '--fstab', ''];
      const groups = (): string[] =>
        safeReaddir(sliceDir)
          .filter((n) => n.startsWith(token))
          .sort();
      const runGroup = `${token}-run.service`;
      const onceGroup = `${token}-once.service`;
      const a = await startDaemon(args, { dir });
      daemons.push(a);
      const runPid = await waitFor('the run service', async () => {
        const pid = Number(await prop(a, runGroup, 'MainPID'));
        return pid > 0 ? pid : undefined;
      });
      const makeLeftovers = async (d: RunningDaemon): Promise<void> => {
        for (let i = 0; i < 4; i++) assert.equal(await connectOnce(port), 'hi\n');
        await Promise.all([connectOnce(port), connectOnce(port), connectOnce(port)]);
        const started = await ctl(d, 'start', onceGroup);
        assert.equal(started.code, 0, started.stderr);
        await waitFor('instances gone', async () =>
          (await ctl(d, 'list-units')).stdout.includes(`${token}@`) ? undefined : true,
        );
      };
      await makeLeftovers(a);
      const before = groups();
      assert.ok(before.includes(runGroup) && before.includes(onceGroup), before.join(' '));
      assert.ok(
        before.some((g) => g.includes('.slot-')),
        `spare slots: ${before.join(' ')}`,
      );

      const r = await ctl(a, 'daemon-reexec');
      assert.equal(r.code, 0, r.stderr);
      await waitFor('the re-exec', () => (restoredCount(a) >= 1 ? true : undefined), 15_000);
      assert.deepEqual(groups(), [runGroup], `left after the re-exec: ${groups().join(' ')}`);
      assert.ok(
        fs.readFileSync(path.join(sliceDir, runGroup, 'cgroup.procs'), 'utf8').includes(String(runPid)),
      );
      assert.equal(await prop(a, runGroup, 'MainPID'), String(runPid));

      // The new image's own leftovers, then a crash.
      await makeLeftovers(a);
      const made = groups();
      assert.ok(made.some((g) => g.includes('.slot-')) && made.includes(onceGroup), made.join(' '));
      await waitForState(dir, 'the checkpoint lists the groups', (t) =>
        made.every((g) => t.includes(JSON.stringify(path.join(sliceDir, g)))),
      );
      process.kill(a.pid, 'SIGKILL');
      await a.exited;
      const b = await startDaemon(args, { dir });
      daemons.push(b);
      await b.waitForLog((l) => l.msg === 'units restored from the state file');
      assert.deepEqual(groups(), [runGroup], `left after the restart: ${groups().join(' ')}`);
      assert.ok(
        fs.readFileSync(path.join(sliceDir, runGroup, 'cgroup.procs'), 'utf8').includes(String(runPid)),
      );
      assert.equal(await prop(b, runGroup, 'MainPID'), String(runPid));
      await b.stop();
      assert.ok(!alive(runPid));
    },
  );
});

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
