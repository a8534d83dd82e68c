// Socket activation on the real kernel, through a private daemon, on loopback only: an inetd-style
// echo with plain `cat` (Accept=yes), a python3 daemon written for systemd (Debian's
// python3-systemd, `systemd.daemon.listen_fds()`) started by the first connection (Accept=no), a
// datagram socket, a FIFO, LISTEN_FDNAMES with two named sockets, MaxConnections refusals, a
// service restart that refuses nobody, daemon-reload keeping the fds, and units that cannot listen
// (port in use, a directory that cannot be made) failing alone with the errno in `status`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { ControlClient } from '../../src/control/client';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { findCgroupHierarchy } from '../../src/exec/cgroups';

/** Without a cgroup2 hierarchy instances are tracked by their session, not by a group. */
const noCgroup = findCgroupHierarchy().ok
  ? undefined
  : 'no cgroup2 hierarchy: instances are tracked by session';
import { addonCandidates } from '../../src/native/addon';
import { freePort, request } from '../helpers/loopback';

const pythonSystemd =
  spawnSync('/usr/bin/python3', ['-c', 'from systemd import daemon'], { stdio: 'ignore' }).status === 0;
const skip =
  skipUnlessRoot() ??
  (addonCandidates('triggerd_socket.node').some((f) => fs.existsSync(f))
    ? undefined
    : 'needs the triggerd_socket addon (npm install builds it)') ??
  (pythonSystemd
    ? undefined
    : 'needs /usr/bin/python3 with python3-systemd (Debian package python3-systemd)');

interface Status {
  name: string;
  active: string;
  sub: string;
  properties: Record<string, unknown>;
  statusLines: string[];
  diagnostics: { severity: string; message: string }[];
}

describe('socket activation on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-sockets-'));
  const units = path.join(dir, 'units');
  const scratch = path.join(dir, 'scratch');
  let d: RunningDaemon;
  let client: ControlClient;
  let holder: net.Server | undefined;
  const ports: Record<string, number> = {};
  const unit = (name: string, text: string): void => fs.writeFileSync(path.join(units, name), text);
  const status = (name: string) => client.request('unit-status', { name, lines: 20 }) as Promise<Status>;
  const ctl = (...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });

  before(async () => {
    fs.mkdirSync(units);
    fs.mkdirSync(scratch);
    for (const k of ['echo', 'pyd', 'dgram', 'limited', 'busy', 'hello', 'nbno', 'nbyes', 'nbstdio', 'nbfd3'])
      ports[k] = await freePort();
    // Accept=yes with plain cat: the connection is stdin and stdout.
    unit('echo.socket', `[Socket]\nListenStream=127.0.0.1:${ports.echo}\nAccept=yes\n`);
    unit('echo@.service', '[Service]\nExecStart=/bin/cat\n');
    unit(
      'hello.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.hello}\nAccept=yes\nTriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n`,
    );
    unit(
      'hello@.service',
      '[Service]\nExecStart=/bin/sh -c \'echo "hello $REMOTE_ADDR $LISTEN_FDS $LISTEN_FDNAMES"\'\n',
    );
    // Accept=no: a daemon written for systemd, started by the first connection.
    fs.writeFileSync(
      path.join(scratch, 'pyd.py'),
      [
        'import os, select, socket',
        'from systemd import daemon',
        'fds = daemon.listen_fds()',
        'socks = [socket.socket(fileno=fd) for fd in fds]',
        'for s in socks: s.setblocking(True)',
        'while True:',
        '    for s in select.select(socks, [], [])[0]:',
        '        c, _ = s.accept()',
        '        c.sendall(("fds=%s names=%s pid=%d\\n" % (fds, os.environ.get("LISTEN_FDNAMES"), os.getpid())).encode())',
        '        c.close()',
        '',
      ].join('\n'),
    );
    unit('pyd.socket', `[Socket]\nListenStream=127.0.0.1:${ports.pyd}\n`);
    unit('pyd.service', `[Service]\nExecStart=/usr/bin/python3 ${scratch}/pyd.py\n`);
    // Two named sockets for one service, in Sockets= order.
    fs.writeFileSync(
      path.join(scratch, 'named.py'),
      [
        'import os, socket',
        'from systemd import daemon',
        'fds = daemon.listen_fds()',
        'names = os.environ.get("LISTEN_FDNAMES", "")',
        `open("${scratch}/named.out", "w").write("%s %s %s\\n" % (fds, names, os.environ.get("LISTEN_PID") == str(os.getpid())))`,
        'import select',
        'socks = [socket.socket(fileno=fd) for fd in fds]',
        'for s in socks: s.setblocking(True)',
        'c, _ = select.select(socks, [], [])[0][0].accept()',
        'c.sendall(names.encode())',
        'c.close()',
        '',
      ].join('\n'),
    );
    unit(
      'alpha.socket',
      `[Socket]\nListenStream=${scratch}/alpha.sock\nFileDescriptorName=alpha\nService=named.service\n`,
    );
    unit(
      'beta.socket',
      `[Socket]\nListenStream=${scratch}/beta.sock\nFileDescriptorName=beta\nService=named.service\n`,
    );
    unit(
      'named.service',
      `[Service]\nSockets=alpha.socket beta.socket\nExecStart=/usr/bin/python3 ${scratch}/named.py\n`,
    );
    // A datagram socket and a FIFO: the service reads what woke it up.
    unit('dgram.socket', `[Socket]\nListenDatagram=127.0.0.1:${ports.dgram}\n`);
    unit(
      'dgram.service',
      `[Service]\nExecStart=/usr/bin/python3 -c 'import socket; s = socket.socket(fileno=3); s.setblocking(True); open("${scratch}/dgram.out", "wb").write(s.recv(100))'\n`,
    );
    unit('fifo.socket', `[Socket]\nListenFIFO=${scratch}/in.fifo\nSocketMode=0600\n`);
    unit('fifo.service', `[Service]\nExecStart=/bin/sh -c 'head -n1 <&3 > ${scratch}/fifo.out'\n`);
    // MaxConnections: two slow instances, the rest refused.
    unit(
      'limited.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.limited}\nAccept=yes\nMaxConnections=2\n`,
    );
    unit('limited@.service', "[Service]\nExecStart=/bin/sh -c 'sleep 1.5; echo served'\n");
    // NonBlocking=: O_NONBLOCK of the passed socket fds as the service sees them (os.get_blocking).
    fs.writeFileSync(
      path.join(scratch, 'blocking.py'),
      [
        'import os, socket',
        'blocking = os.get_blocking(3)',
        'c, _ = socket.socket(fileno=3).accept()',
        'c.setblocking(True)',
        'c.sendall(("blocking=%s\\n" % blocking).encode())',
        'c.close()',
        '',
      ].join('\n'),
    );
    unit('nbno.socket', `[Socket]\nListenStream=127.0.0.1:${ports.nbno}\n`);
    unit('nbno.service', `[Service]\nExecStart=/usr/bin/python3 ${scratch}/blocking.py\n`);
    unit('nbyes.socket', `[Socket]\nListenStream=127.0.0.1:${ports.nbyes}\n`);
    unit('nbyes.service', `[Service]\nNonBlocking=yes\nExecStart=/usr/bin/python3 ${scratch}/blocking.py\n`);
    unit('nbstdio.socket', `[Socket]\nListenStream=127.0.0.1:${ports.nbstdio}\nAccept=yes\n`);
    unit(
      'nbstdio@.service',
      `[Service]\nNonBlocking=yes\nExecStart=/usr/bin/python3 -c 'import os; os.write(1, b"stdin=%%d fd3=%%d" %% (os.get_blocking(0), os.get_blocking(3)))'\n`,
    );
    unit('nbfd3.socket', `[Socket]\nListenStream=127.0.0.1:${ports.nbfd3}\nAccept=yes\n`);
    unit(
      'nbfd3@.service',
      `[Service]\nNonBlocking=yes\nStandardInput=null\nStandardOutput=null\nExecStart=/usr/bin/python3 -c 'import os; os.write(3, b"fd3=%%d" %% os.get_blocking(3))'\n`,
    );
    // Units that cannot listen.
    unit('busy.socket', `[Socket]\nListenStream=127.0.0.1:${ports.busy}\n`);
    unit('busy.service', '[Service]\nExecStart=/bin/true\n');
    unit('nodir.socket', '[Socket]\nListenStream=/proc/triggerd-no-such-dir/x.sock\n');
    unit('nodir.service', '[Service]\nExecStart=/bin/true\n');
    const wants = path.join(units, 'sockets.target.wants');
    fs.mkdirSync(wants);
    for (const s of [
      'echo',
      'hello',
      'pyd',
      'alpha',
      'beta',
      'dgram',
      'fifo',
      'limited',
      'busy',
      'nodir',
      'nbno',
      'nbyes',
      'nbstdio',
      'nbfd3',
    ])
      fs.symlinkSync(`../${s}.socket`, path.join(wants, `${s}.socket`));
    // Someone else holds busy.socket's port.
    holder = net.createServer();
    await new Promise<void>((r) => holder?.listen(ports.busy, '127.0.0.1', r));
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '5', '--log-level', 'info']);
    client = await d.client();
    await waitFor('echo.socket listening', async () =>
      (await status('echo.socket')).sub === 'listening' ? true : undefined,
    );
  });

  after(async () => {
    client?.close();
    await d?.stop();
    await new Promise((r) => (holder !== undefined ? holder.close(r) : r(undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('Accept=yes: an echo service with plain cat, one instance per connection, collected afterwards', async () => {
    assert.equal(await request(ports.echo as number, 'hello socket\n'), 'hello socket\n');
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => request(ports.echo as number, `line ${i}\n`)),
    );
    assert.deepEqual(
      answers,
      [1, 2, 3, 4, 5].map((i) => `line ${i}\n`),
    );
    // Counted as the accept thread's records come in, which may be a moment after the answers.
    const s = await waitFor('six accepted', async () => {
      const now = await status('echo.socket');
      return now.properties.NAccepted === 6 ? now : undefined;
    }).catch(async (err: Error) => {
      throw new Error(
        `${err.message}: NAccepted ${String((await status('echo.socket')).properties.NAccepted)}`,
      );
    });
    assert.ok(
      s.statusLines.some((l) => /Listen: 127\.0\.0\.1:\d+ \(Stream\)/.test(l)),
      s.statusLines.join('\n'),
    );
    // Instances go away once they are over.
    await waitFor('instances collected', async () => {
      const units = (await client.request('list-units', {})) as { name: string }[];
      return units.some((u) => u.name.startsWith('echo@')) ? undefined : true;
    });
    assert.equal((await status('echo.socket')).properties.NConnections, 0);
  });

  test('Accept=yes: REMOTE_ADDR, and the connection as fd 3 named "connection"', async () => {
    assert.equal(await request(ports.hello as number), 'hello 127.0.0.1 1 connection\n');
  });

  test('Accept=yes: a client that disconnects at once is a normal end, not a failed instance', async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const c = net.connect(ports.echo as number, '127.0.0.1', () => {
          c.destroy();
          resolve();
        });
      });
    }
    await waitFor('aborted connections over', async () =>
      (await status('echo.socket')).properties.NConnections === 0 ? true : undefined,
    );
    const units = (await client.request('list-units', {})) as { name: string; active: string }[];
    assert.deepEqual(
      units.filter((u) => u.name.startsWith('echo@') && u.active === 'failed'),
      [],
    );
    assert.equal((await status('echo.socket')).active, 'active');
  });

  test('Accept=no: a python3 daemon using systemd.daemon.listen_fds() is started by the first connection', async () => {
    assert.equal((await status('pyd.service')).active, 'inactive');
    const first = await request(ports.pyd as number);
    assert.match(first, /^fds=\[3\] names=pyd\.socket pid=\d+\n$/);
    const s = await status('pyd.socket');
    assert.equal(s.sub, 'running');
    assert.equal((await status('pyd.service')).active, 'active');
    assert.equal(await request(ports.pyd as number), first, 'the same process answers again');
  });

  test('NonBlocking=: LISTEN_FDS sockets are blocking by default, non-blocking with NonBlocking=yes', async () => {
    assert.equal(await request(ports.nbno as number), 'blocking=True\n');
    assert.equal(await request(ports.nbyes as number), 'blocking=False\n');
    // The daemon's copy shares the description: the next service sees the same again.
    await waitFor('nbyes.service over', async () =>
      (await status('nbyes.service')).active === 'inactive' ? true : undefined,
    );
    assert.equal(await request(ports.nbyes as number), 'blocking=False\n');
  });

  test('NonBlocking=yes: a connection that is stdin/stdout stays blocking, one only on fd 3 is not', async () => {
    assert.equal(await request(ports.nbstdio as number), 'stdin=1 fd3=1');
    assert.equal(await request(ports.nbfd3 as number), 'fd3=0');
  });

  test('restarting the service keeps the socket, and no connection made during the restart is refused', async () => {
    const before = await request(ports.pyd as number);
    let stop = false;
    const answers: string[] = [];
    const errors: string[] = [];
    const loop = (async () => {
      while (!stop) {
        try {
          answers.push(await request(ports.pyd as number));
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const r = await ctl('restart', 'pyd.service');
    assert.equal(r.code, 0, r.stderr);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await loop;
    assert.deepEqual(errors, []);
    assert.ok(answers.length > 2);
    assert.notEqual(answers.at(-1), before, 'a new process answers after the restart');
    assert.equal((await status('pyd.socket')).active, 'active');
  });

  test('daemon-reload keeps the listening socket and its fds', async () => {
    const before = await request(ports.pyd as number);
    const r = await ctl('daemon-reload');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await status('pyd.socket')).sub, 'running');
    await ctl('stop', 'pyd.service');
    await waitFor('pyd.socket listening again', async () =>
      (await status('pyd.socket')).sub === 'listening' ? true : undefined,
    );
    const after = await request(ports.pyd as number);
    assert.match(after, /^fds=\[3\] names=pyd\.socket pid=\d+\n$/);
    assert.notEqual(after, before);
    assert.equal(await request(ports.echo as number, 'still here\n'), 'still here\n');
  });

  test('LISTEN_FDNAMES with two named sockets, in Sockets= order, and LISTEN_PID is the service', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const c = net.connect(path.join(scratch, 'beta.sock'));
      let out = '';
      c.on('data', (b) => (out += b.toString()));
      c.on('end', () => resolve(out));
      c.on('error', reject);
    });
    assert.equal(answer, 'alpha:beta');
    const out = await waitFor('named.out', () =>
      fs.existsSync(path.join(scratch, 'named.out'))
        ? fs.readFileSync(path.join(scratch, 'named.out'), 'utf8')
        : undefined,
    );
    assert.equal(out, '[3, 4] alpha:beta True\n');
  });

  test('a datagram socket starts its service, which reads the datagram from fd 3', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) =>
      sock.send('ping over udp', ports.dgram as number, '127.0.0.1', (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    sock.close();
    const out = await waitFor('dgram.out', () =>
      fs.existsSync(path.join(scratch, 'dgram.out'))
        ? fs.readFileSync(path.join(scratch, 'dgram.out'), 'utf8')
        : undefined,
    );
    assert.equal(out, 'ping over udp');
  });

  test('a FIFO starts its service, which reads the line from fd 3', async () => {
    const fifo = path.join(scratch, 'in.fifo');
    assert.equal(fs.statSync(fifo).mode & 0o7777, 0o600);
    assert.ok(fs.statSync(fifo).isFIFO());
    fs.writeFileSync(fifo, 'through the fifo\n');
    const out = await waitFor('fifo.out', () => {
      const f = path.join(scratch, 'fifo.out');
      return fs.existsSync(f) && fs.statSync(f).size > 0 ? fs.readFileSync(f, 'utf8') : undefined;
    });
    assert.equal(out, 'through the fifo\n');
  });

  test('MaxConnections=2: the third and fourth connection are refused (closed), the first two served', async () => {
    const before = (await status('limited.socket')).properties.NRefused as number;
    const started = Date.now();
    const results = await Promise.all(
      [0, 1, 2, 3].map(() => request(ports.limited as number).catch((e: Error) => e.message)),
    );
    const served = results.filter((r) => r === 'served\n');
    const refused = results.filter((r) => r !== 'served\n');
    assert.equal(served.length, 2, JSON.stringify(results));
    assert.equal(refused.length, 2);
    assert.ok(
      refused.every((r) => r === '' || /ECONNRESET/.test(r)),
      JSON.stringify(refused),
    );
    assert.ok(Date.now() - started >= 1400);
    const s = await status('limited.socket');
    assert.equal((s.properties.NRefused as number) - before, 2);
    assert.ok(d.logs.some((l) => /refusing connection .*MaxConnections=2/.test(String(l.msg))));
  });

  test(
    "Accept=yes: each live instance has a cgroup of its own, taken from the template's pool and reused",
    { skip: noCgroup },
    async () => {
      const noInstances = () =>
        waitFor('limited@ instances gone', async () => {
          const units = (await client.request('list-units', {})) as { name: string }[];
          return units.some((u) => u.name.startsWith('limited@')) ? undefined : true;
        });
      const groupOfRunning = async (): Promise<{ name: string; group: string; pid: number }> =>
        waitFor('a running limited@ instance', async () => {
          const units = (await client.request('list-units', {})) as { name: string; active: string }[];
          const inst = units.find((u) => u.name.startsWith('limited@') && u.active === 'active');
          if (inst === undefined) return undefined;
          // It may be over and collected between the two requests: look again then.
          const s = await status(inst.name).catch((err: { code?: string }) => {
            if (err.code === 'ERR_NO_SUCH_UNIT') return undefined;
            throw err;
          });
          const pid = s?.properties.MainPID as number | undefined;
          return s !== undefined && pid !== undefined && pid > 0
            ? { name: inst.name, group: String(s.properties.ControlGroup), pid }
            : undefined;
        });
      // The instances of the test before may still be finishing.
      await noInstances();
      const first = request(ports.limited as number);
      const a = await groupOfRunning();
      assert.match(a.group, /\/limited@\.service\.slot-f?\d+$/);
      const procCgroup = fs.readFileSync(`/proc/${a.pid}/cgroup`, 'utf8');
      assert.ok(
        a.group.endsWith(
          procCgroup
            .split('\n')
            .find((l) => l.startsWith('0::'))
            ?.slice(3) ?? '?',
        ),
      );
      assert.equal(await first, 'served\n');
      await noInstances();
      const second = request(ports.limited as number);
      const b = await groupOfRunning();
      assert.notEqual(b.name, a.name);
      assert.equal(b.group, a.group, 'the empty group of the first instance is reused');
      assert.equal(await second, 'served\n');
    },
  );

  test('a port in use and a directory that cannot be made: those units fail with the errno, others are unaffected', async () => {
    const busy = await status('busy.socket');
    assert.equal(busy.active, 'failed');
    assert.ok(
      busy.statusLines.some((l) => /Error: ListenStream=127\.0\.0\.1:\d+: bind: .*\(EADDRINUSE\)/.test(l)),
      busy.statusLines.join('\n'),
    );
    const nodir = await status('nodir.socket');
    assert.equal(nodir.active, 'failed');
    assert.ok(
      nodir.statusLines.some((l) =>
        /Error: ListenStream=\/proc\/triggerd-no-such-dir\/x\.sock: .*\(E[A-Z]+\)/.test(l),
      ),
      nodir.statusLines.join('\n'),
    );
    const text = await ctl('status', 'busy.socket');
    assert.match(text.stdout, /EADDRINUSE/);
    assert.equal((await status('echo.socket')).active, 'active');
    assert.equal(await request(ports.echo as number, 'unaffected\n'), 'unaffected\n');
  });

  test('list-units lists the sockets', async () => {
    const r = await ctl('list-units');
    assert.match(r.stdout, /echo\.socket\s+loaded\s+active\s+listening/);
    assert.match(r.stdout, /busy\.socket\s+loaded\s+failed\s+failed/);
  });
});
