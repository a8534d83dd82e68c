// Services on the real kernel through a private daemon: Type=notify with Debian's systemd-notify,
// a double-forking daemon tracked and killed with its children, restart policies with real exits,
// a sandboxed service, a service running as nobody, broken unit files that disturb nothing else.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { findCgroupHierarchy } from '../../src/exec/cgroups';

const hierarchy = findCgroupHierarchy();

const skip =
  skipUnlessRoot() ??
  (fs.existsSync('/usr/bin/systemd-notify') ? undefined : 'needs /usr/bin/systemd-notify (package systemd)');

interface Status {
  name: string;
  active: string;
  sub: string;
  properties: Record<string, unknown>;
  diagnostics: { severity: string; message: string }[];
  logs: { msg: string; pid?: number }[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('services on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-units-'));
  // Not below /tmp: PrivateTmp= hides /tmp from the sandboxed service, as in systemd.
  const scratch = fs.mkdtempSync('/run/triggerd-scratch-');
  let d: RunningDaemon;
  let client: ControlClient;
  const ctl = (...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
  const status = (name: string) => client.request('unit-status', { name, lines: 50 }) as Promise<Status>;
  const unit = (name: string, text: string): void => fs.writeFileSync(path.join(dir, name), text);

  before(async () => {
    fs.chmodSync(scratch, 0o777);
    unit(
      'notify.service',
      `[Service]\nType=notify\nExecStart=/bin/sh -c 'sleep 0.2; systemd-notify --ready --status="all set"; exec sleep 300'\nTimeoutStartSec=10s\n`,
    );
    unit(
      'forker.service',
      `[Service]\nType=forking\nPIDFile=${scratch}/forker.pid\n` +
        `ExecStart=/bin/sh -c '(sleep 301 & sleep 302 & echo $$! > /dev/null; exec sleep 303) & echo $$! > ${scratch}/forker.pid'\n`,
    );
    unit(
      'flaky.service',
      `[Unit]\nStartLimitIntervalSec=60s\nStartLimitBurst=3\n[Service]\nExecStart=/bin/sh -c 'echo failing; exit 3'\nRestart=on-failure\nRestartSec=100ms\n`,
    );
    unit(
      'clean-exit.service',
      `[Service]\nExecStart=/bin/sh -c 'exit 0'\nRestart=on-failure\nRestartSec=100ms\n`,
    );
    unit(
      'sandboxed.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nProtectSystem=strict\nReadWritePaths=${scratch}\nPrivateTmp=yes\n` +
        `ExecStart=/bin/sh -c 'touch /etc/triggerd-sandbox-test 2>/dev/null && echo etc-writable || echo etc-readonly; touch /usr/triggerd-sandbox-test 2>/dev/null && echo usr-writable || echo usr-readonly; touch ${scratch}/allowed && echo scratch-writable; ls /tmp | wc -l'\n`,
    );
    unit(
      'as-nobody.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nUser=nobody\nExecStart=/bin/sh -c 'echo uid=$$(id -u) gid=$$(id -g)'\n`,
    );
    unit(
      'partial-line.service',
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo first line; printf "no newline at the end"'\n`,
    );
    unit('broken-syntax.service', `[Service\nExecStart=/bin/true\n`);
    unit(
      'bad-values.service',
      `[Service]\nType=simple\nExecStart=/bin/sleep 300\nRestartSec=soon\nTimeoutStopSec=-5\nFrobnicate=yes\n`,
    );
    unit('missing-exe.service', `[Service]\nExecStart=/nonexistent/triggerd-daemon\n`);
    unit('unknown-user.service', `[Service]\nUser=no-such-user-triggerd\nExecStart=/bin/true\n`);
    unit(
      'chdir-fail.service',
      `[Service]\nWorkingDirectory=/nonexistent-dir-triggerd\nExecStart=/bin/true\n`,
    );
    unit(
      'needs-missing.service',
      `[Unit]\nRequires=does-not-exist.service\nAfter=does-not-exist.service\n[Service]\nExecStart=/bin/sleep 300\n`,
    );
    fs.writeFileSync(
      path.join(scratch, 'fdstore.py'),
      [
        'import os, socket, time',
        "addr = os.environ['NOTIFY_SOCKET']",
        "if os.environ.get('LISTEN_PID') == str(os.getpid()) and int(os.environ.get('LISTEN_FDS', '0')) >= 1:",
        "    print('restored:', os.read(3, 100).decode(), os.environ.get('LISTEN_FDNAMES'))",
        'else:',
        '    r, w = os.pipe()',
        "    os.write(w, b'hello from the first run')",
        '    os.close(w)',
        '    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        // Python 3.11's send_fds ignores its address argument: connect first.
        '    s.connect(addr)',
        "    socket.send_fds(s, [b'FDSTORE=1\\nFDNAME=state'], [r])",
        "    print('stored')",
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', addr)",
        'while True: time.sleep(60)',
        '',
      ].join('\n'),
    );
    unit(
      'fdstore.service',
      `[Service]\nType=notify\nFileDescriptorStoreMax=4\nExecStart=/usr/bin/python3 -u ${scratch}/fdstore.py\n`,
    );
    unit(
      'installable.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=installable-alias.service\n`,
    );
    unit(
      'watchdogged.service',
      `[Service]\nType=notify\nWatchdogSec=1s\nExecStart=/bin/sh -c 'systemd-notify --ready; exec sleep 300'\n`,
    );
    unit(
      'pinger.service',
      `[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'systemd-notify --ready; while :; do systemd-notify "STATUS=tick $$(date +%%s%%N)"; sleep 0.2; done'\n`,
    );
    unit(
      'limits.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo $$(ulimit -Sn) $$(ulimit -Hn) > ${scratch}/limits'\n`,
    );
    unit(
      'limits-set.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nLimitNOFILE=2048:4096\nExecStart=/bin/sh -c 'echo $$(ulimit -Sn) $$(ulimit -Hn) > ${scratch}/limits-set'\n`,
    );
    // Its first command leaves its cgroup and removes it; the second must run in a group made again.
    const root = hierarchy.ok ? hierarchy.root : '/sys/fs/cgroup';
    unit(
      'regroup.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\n` +
        `ExecStart=/bin/sh -c 'g=$$(sed -n "s/^0:://p" /proc/self/cgroup); echo "$$g" > ${scratch}/regroup; ` +
        `echo $$$$ > ${root}/cgroup.procs && rmdir "${root}$$g" && echo removed >> ${scratch}/regroup'\n` +
        `ExecStart=/bin/sh -c 'sed -n "s/^0:://p" /proc/self/cgroup >> ${scratch}/regroup'\n`,
    );
    d = await startDaemon(['--unit-path', dir, '--shutdown-timeout', '5']);
    client = await d.client();
  });
  after(async () => {
    client?.close();
    const code = await d?.stop();
    assert.equal(code, 0);
    for (const f of ['/etc/triggerd-sandbox-test', '/usr/triggerd-sandbox-test'])
      fs.rmSync(f, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('Type=notify with systemd-notify --ready: active only after READY=1, with its status text', async () => {
    const r = await ctl('start', 'notify.service');
    assert.equal(r.code, 0, r.stderr);
    const s = await status('notify.service');
    assert.equal(s.sub, 'running');
    assert.equal(s.properties.StatusText, 'all set');
    const shown = await ctl('show', 'notify.service', '--property', 'MainPID', '--value');
    assert.match(shown.stdout, /^\d+\n$/);
    assert.equal((await ctl('is-active', 'notify.service')).code, 0);
    assert.equal((await ctl('stop', 'notify.service')).code, 0);
    assert.equal((await ctl('is-active', 'notify.service')).code, 3);
  });

  test('a double-forking daemon: main pid from PIDFile, every process killed on stop', async () => {
    assert.equal((await ctl('start', 'forker.service')).code, 0);
    const s = await status('forker.service');
    assert.equal(s.sub, 'running');
    const procs = (s.properties.Processes as { pid: number; cmd: string }[]).map((p) => p.pid);
    assert.ok(procs.length >= 3, `tracked ${JSON.stringify(s.properties.Processes)}`);
    assert.ok(procs.includes(s.properties.MainPID as number));
    assert.equal((await ctl('stop', 'forker.service')).code, 0);
    await waitFor('all forker processes gone', () => (procs.every((p) => !alive(p)) ? true : undefined));
  });

  test('Restart=on-failure restarts real exits until the start limit, then fails', async () => {
    await ctl('start', 'flaky.service');
    const s = await waitFor('flaky.service failed', async () => {
      const st = await status('flaky.service');
      return st.active === 'failed' && st.properties.Result === 'start-limit-hit' ? st : undefined;
    });
    assert.ok((s.properties.NRestarts as number) >= 2, `NRestarts ${s.properties.NRestarts}`);
    assert.ok(s.logs.some((l) => l.msg === 'failing'));
    assert.equal((await ctl('is-failed', 'flaky.service')).code, 0);
    // A clean exit is not a failure: no restart.
    assert.equal((await ctl('start', 'clean-exit.service')).code, 0);
    const clean = await waitFor('clean-exit dead', async () => {
      const st = await status('clean-exit.service');
      return st.sub === 'dead' ? st : undefined;
    });
    assert.equal(clean.properties.NRestarts, 0);
  });

  test('ProtectSystem=strict with ReadWritePaths: only the allowed directory is writable; PrivateTmp is empty', async () => {
    assert.equal((await ctl('start', 'sandboxed.service')).code, 0);
    const s = await waitFor('sandbox output', async () => {
      const st = await status('sandboxed.service');
      return st.logs.some((l) => l.msg === 'scratch-writable') ? st : undefined;
    });
    const lines = s.logs.map((l) => l.msg);
    assert.ok(lines.includes('etc-readonly'), lines.join(' | '));
    assert.ok(lines.includes('usr-readonly'), lines.join(' | '));
    assert.ok(fs.existsSync(path.join(scratch, 'allowed')));
    assert.ok(!fs.existsSync('/etc/triggerd-sandbox-test'));
    assert.ok(lines.includes('0'), 'private /tmp starts empty');
  });

  test('User=nobody runs as nobody', async () => {
    assert.equal((await ctl('start', 'as-nobody.service')).code, 0);
    const s = await waitFor('nobody output', async () => {
      const st = await status('as-nobody.service');
      return st.logs.some((l) => l.msg.startsWith('uid=')) ? st : undefined;
    });
    assert.ok(
      s.logs.some((l) => l.msg.startsWith('uid=65534 ')),
      JSON.stringify(s.logs),
    );
  });

  test('broken unit files: each says why with file:line, and nothing else is disturbed', async () => {
    const broken = await status('broken-syntax.service').catch((e: Error) => e);
    // A file systemd would refuse loads as bad-setting/error, with its reason.
    if (!(broken instanceof Error)) {
      assert.notEqual(broken.active, 'active');
      assert.ok(
        broken.diagnostics.some((x) => /broken-syntax\.service:\d+/.test(x.message)),
        JSON.stringify(broken.diagnostics),
      );
    }
    const bad = await status('bad-values.service');
    assert.ok(
      bad.diagnostics.some((x) => /bad-values\.service:4/.test(x.message)),
      JSON.stringify(bad.diagnostics),
    );
    assert.equal(
      (await ctl('start', 'bad-values.service')).code,
      0,
      'bad values keep defaults; the unit still runs',
    );
    await ctl('stop', 'bad-values.service');

    const missing = await ctl('start', 'missing-exe.service');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Job for missing-exe\.service failed/);
    const ms = await status('missing-exe.service');
    assert.equal(ms.active, 'failed');
    assert.ok(
      ms.logs.some((l) => /failed at step EXEC: .*No such file or directory/.test(l.msg)),
      JSON.stringify(ms.logs),
    );

    assert.equal((await ctl('start', 'unknown-user.service')).code, 1);
    const uu = await status('unknown-user.service');
    assert.ok(
      uu.logs.some((l) => /no-such-user-triggerd/.test(l.msg)),
      JSON.stringify(uu.logs),
    );

    assert.equal((await ctl('start', 'chdir-fail.service')).code, 1);
    const cd = await status('chdir-fail.service');
    assert.ok(
      cd.logs.some((l) => /failed at step CHDIR: No such file or directory/.test(l.msg)),
      JSON.stringify(cd.logs),
    );

    const dep = await ctl('start', 'needs-missing.service');
    assert.equal(dep.code, 1);
    assert.match(dep.stderr, /does-not-exist\.service/);

    // Everything else still answers and runs.
    assert.equal((await ctl('start', 'notify.service')).code, 0);
    assert.equal((await status('notify.service')).sub, 'running');
    await ctl('stop', 'notify.service');
  });

  test('the fd store survives a restart: the fd comes back as LISTEN_FDS with its name', async () => {
    assert.equal((await ctl('start', 'fdstore.service')).code, 0);
    await waitFor('fd stored', async () =>
      (await status('fdstore.service')).logs.some((l) => l.msg === 'stored') ? true : undefined,
    );
    assert.deepEqual((await status('fdstore.service')).properties.FileDescriptorStore, ['state']);
    assert.equal((await ctl('restart', 'fdstore.service')).code, 0);
    const s = await waitFor('fd restored', async () => {
      const st = await status('fdstore.service');
      return st.logs.some((l) => l.msg.startsWith('restored:')) ? st : undefined;
    });
    assert.ok(
      s.logs.some((l) => l.msg === 'restored: hello from the first run state'),
      JSON.stringify(s.logs),
    );
    assert.equal((await ctl('stop', 'fdstore.service')).code, 0);
    assert.deepEqual(
      (await status('fdstore.service')).properties.FileDescriptorStore,
      [],
      'a real stop flushes the store',
    );
  });

  test("output: each run's lines are logged, a last line without a newline at its exit, runs never merged", async () => {
    for (let run = 1; run <= 2; run++) {
      await client.request('start', { names: ['partial-line.service'] });
      await waitFor(`run ${run}'s last line in the log`, async () => {
        const s = await status('partial-line.service');
        return s.logs.filter((l) => l.msg === 'no newline at the end').length === run ? true : undefined;
      });
    }
    const s = await status('partial-line.service');
    const lines = s.logs.map((l) => l.msg).filter((m) => /line|newline/.test(m));
    assert.deepEqual(
      lines.filter((m) => m === 'first line' || m === 'no newline at the end'),
      ['first line', 'no newline at the end', 'first line', 'no newline at the end'],
      JSON.stringify(lines),
    );
  });

  test("a oneshot's group removed between its commands is made again for the next one", async (t) => {
    if (!hierarchy.ok) {
      t.skip(`services run by session here, without cgroups: ${hierarchy.reason}`);
      return;
    }
    const r = await ctl('start', 'regroup.service');
    assert.equal(r.code, 0, `${r.stderr} ${JSON.stringify((await status('regroup.service')).logs)}`);
    const s = await status('regroup.service');
    assert.equal(s.active, 'active', JSON.stringify(s.logs));
    const [group, removed, second] = fs
      .readFileSync(path.join(scratch, 'regroup'), 'utf8')
      .trim()
      .split('\n');
    assert.match(group ?? '', /\/regroup\.service$/);
    assert.equal(removed, 'removed', 'the first command removed its group');
    assert.equal(second, group, 'the second command ran in the group made again');
  });

  test("open files: soft 1024 under the daemon's hard limit without LimitNOFILE= (as systemd), the unit's with it", async () => {
    for (const name of ['limits.service', 'limits-set.service']) {
      const r = await ctl('start', name);
      assert.equal(r.code, 0, r.stderr);
    }
    // The daemon runs under this process's hard limit (Node raised both soft limits to it).
    const hard = fs
      .readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
      ?.trim()
      .split(/\s+/)[4];
    const expected = hard === 'unlimited' ? 'unlimited' : String(hard);
    const soft = hard === 'unlimited' || Number(hard) >= 1024 ? '1024' : String(hard);
    assert.equal(fs.readFileSync(path.join(scratch, 'limits'), 'utf8').trim(), `${soft} ${expected}`);
    assert.equal(fs.readFileSync(path.join(scratch, 'limits-set'), 'utf8').trim(), '2048 4096');
  });

  test('status exit codes and unknown units', async () => {
    assert.equal((await ctl('status', 'no-such.service')).code, 4);
    assert.equal((await ctl('status', 'clean-exit.service')).code, 3);
    const cat = await ctl('cat', 'notify.service');
    assert.match(cat.stdout, /^# .*notify\.service\n\[Service\]/);
  });

  test('enable/disable make and remove the [Install] links; verify checks files without the daemon', async () => {
    const en = await ctl('enable', 'installable.service', '--now');
    assert.equal(en.code, 0, en.stderr);
    assert.match(en.stderr, /Created symlink .*multi-user\.target\.wants\/installable\.service/);
    assert.equal(
      fs.readlinkSync(path.join(dir, 'multi-user.target.wants', 'installable.service')),
      path.join(dir, 'installable.service'),
    );
    assert.equal((await status('installable.service')).sub, 'exited');
    const files = JSON.parse((await ctl('--json', 'list-unit-files')).stdout) as {
      name: string;
      state: string;
    }[];
    assert.equal(files.find((f) => f.name === 'installable.service')?.state, 'enabled');
    assert.equal(
      (await status('installable-alias.service')).name,
      'installable.service',
      'the alias resolves to the unit',
    );
    const dis = await ctl('disable', 'installable.service');
    assert.equal(dis.code, 0, dis.stderr);
    assert.ok(!fs.existsSync(path.join(dir, 'multi-user.target.wants', 'installable.service')));

    const good = await ctl('verify', path.join(dir, 'notify.service'));
    assert.equal(good.code, 0, good.stderr);
    const bad = await ctl('verify', path.join(dir, 'broken-syntax.service'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /broken-syntax\.service:1/);
  });

  test('WatchdogSec: a service that stops pinging is killed with SIGABRT and fails with Result=watchdog', async () => {
    assert.equal((await ctl('start', 'watchdogged.service')).code, 0);
    const s = await waitFor(
      'watchdog failure',
      async () => {
        const st = await status('watchdogged.service');
        return st.active === 'failed' ? st : undefined;
      },
      15_000,
    );
    assert.equal(s.properties.Result, 'watchdog');
    assert.ok(
      ['killed', 'dumped'].includes(s.properties.ExecMainCode as string),
      String(s.properties.ExecMainCode),
    );
    assert.equal(s.properties.ExecMainStatus, 6);
  });

  test('the notify socket survives 100,000 junk datagrams while a watched service keeps answering', async () => {
    assert.equal((await ctl('start', 'pinger.service')).code, 0);
    const sock = path.join(d.dir, 'notify');
    // Zero-length, oversized, binary junk, forged MAINPID, and fds that must be closed, in a bounded loop.
    const script = [
      'import os, socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.connect(sys.argv[1])',
      'junk = [b"", b"\\x00\\xff" * 100, b"A" * 65000, b"MAINPID=1", b"READY=1\\nMAINPID=999999", b"BARRIER=1", os.urandom(512)]',
      'r, w = os.pipe()',
      'for i in range(100000):',
      '    m = junk[i % len(junk)]',
      '    try:',
      '        if i % 1000 == 0: socket.send_fds(s, [b"FDSTORE=1"], [r, w])',
      '        else: s.send(m)',
      '    except OSError: pass',
      'print("sent")',
    ].join('\n');
    const fdsBefore = fs.readdirSync(`/proc/${d.pid}/fd`).length;
    const sent = await run('/usr/bin/python3', ['-c', script, sock]);
    assert.equal(sent.stdout.trim(), 'sent');
    const before = (await status('pinger.service')).properties.StatusText;
    const after = await waitFor('a fresh status from the service', async () => {
      const st = await status('pinger.service');
      return st.properties.StatusText !== before ? st : undefined;
    });
    assert.equal(after.sub, 'running');
    assert.equal(d.proc.exitCode, null, 'the daemon is still running');
    const fdsAfter = fs.readdirSync(`/proc/${d.pid}/fd`).length;
    assert.ok(fdsAfter <= fdsBefore + 8, `fds ${fdsBefore} → ${fdsAfter}: passed fds are closed, not leaked`);
    await ctl('stop', 'pinger.service');
  });
});
