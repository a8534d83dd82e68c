// Re-exec and crash recovery on the real kernel, through a private daemon run as a child process
// (issue 9). A planned re-exec (`triggerctl daemon-reexec`) under a connection load on an
// Accept=no and an Accept=yes socket: no connection refused or reset, the running services keep
// their pids, the daemon keeps its pid and answers `status` after. A kill -9 and a restart on
// the same runtime dir: the running services are adopted (same pids), the Accept=no socket is
// taken back from its service (pidfd_getfd), both sockets serve, and a later exit of an adopted
// service is seen and acted on (Restart=always starts it again).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';
import { freePort } from '../helpers/loopback';

const skip =
  skipUnlessRoot() ??
  (['triggerd_socket.node', 'triggerd_reexec.node'].every((a) =>
    addonCandidates(a).some((f) => fs.existsSync(f)),
  )
    ? undefined
    : 'needs the triggerd_socket and triggerd_reexec addons (npm install builds them)') ??
  (fs.existsSync('/usr/bin/python3') ? undefined : 'needs /usr/bin/python3');

/** Connect and read to EOF. */
function fetchLine(port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      reject(new Error(`no answer from port ${port} within ${timeoutMs} ms`));
    });
  });
}

interface Load {
  ok: number;
  failures: string[];
  stop(): Promise<void>;
}

/** `workers` clients per port connecting one after the other until stopped; every failure kept. */
function connectionLoad(ports: { port: number; expect: RegExp }[], workers: number): Load {
  let running = true;
  const load: Load = { ok: 0, failures: [], stop: async () => undefined };
  const loops: Promise<void>[] = [];
  for (const { port, expect } of ports) {
    for (let i = 0; i < workers; i++) {
      loops.push(
        (async () => {
          while (running) {
            try {
              const line = await fetchLine(port);
              if (expect.test(line)) load.ok++;
              else load.failures.push(`${port}: unexpected answer ${JSON.stringify(line)}`);
            } catch (err) {
              load.failures.push(`${port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
            }
          }
        })(),
      );
    }
  }
  load.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return load;
}

/** The daemon's last log lines (debug and up), for a failure message. */
function logTail(d: RunningDaemon): string {
  return d.logs
    .slice(-40)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

const SERVER_PY = `
import os, socket
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept()
    c.sendall(("served by %d\\n" % os.getpid()).encode())
    c.close()
    print("served one", flush=True)
`;

describe('re-exec and crash recovery', { skip }, () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-reexec-'));
  const daemons: RunningDaemon[] = [];
  const loads: Load[] = [];

  after(async () => {
    for (const l of loads) await l.stop();
    // Stopped by pid; a daemon killed on purpose and not restarted leaves its services to us.
    for (const d of daemons) {
      if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
    }
    for (const file of fs.readdirSync(root, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.pid')) continue;
      const pid = Number(fs.readFileSync(path.join(root, file), 'utf8'));
      try {
        if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep\u00001000')) continue;
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function setup(name: string): Promise<{ units: string; ports: { ano: number; ayes: number } }> {
    const units = path.join(root, name, 'units');
    fs.mkdirSync(units, { recursive: true });
    const ports = { ano: await freePort(), ayes: await freePort() };
    const server = path.join(root, name, 'server.py');
    fs.writeFileSync(server, SERVER_PY);
    const unit = (n: string, text: string): void => fs.writeFileSync(path.join(units, n), text);
    unit('ano.socket', `[Socket]\nListenStream=127.0.0.1:${ports.ano}\n`);
    unit('ano.service', `[Service]\nExecStart=/usr/bin/python3 ${server}\n`);
    unit(
      'ayes.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.ayes}\nAccept=yes\nMaxConnections=1024\n` +
        'TriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n',
    );
    unit('ayes@.service', '[Service]\nExecStart=/bin/echo hi\n');
    // Writes its pid where the cleanup finds it, should the test fail half-way.
    unit(
      'keep.service',
      `[Service]\nExecStart=/bin/sh -c 'echo $$ > ${path.join(root, name)}/keep-$$.pid; exec sleep 1000'\n` +
        'Restart=always\nRestartSec=100ms\n',
    );
    unit('default.target', '[Unit]\nWants=ano.socket ayes.socket keep.service\n');
    return { units, ports };
  }

  const ctl = (d: RunningDaemon, ...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
  const mainPid = async (d: RunningDaemon, unit: string): Promise<number> =>
    Number((await ctl(d, 'show', unit, '--property', 'MainPID', '--value')).stdout.trim());
  const subState = async (d: RunningDaemon, unit: string): Promise<string> =>
    (await ctl(d, 'show', unit, '--property', 'SubState', '--value')).stdout.trim();

  test('daemon-reexec under a connection load: nothing refused or reset, pids kept, status answers', async (t) => {
    const { units, ports } = await setup('planned');
    const d = await startDaemon(['--unit-path', units, '--fstab', '']);
    daemons.push(d);
    await waitFor('the sockets listening', async () =>
      (await subState(d, 'ano.socket')) === 'listening' && (await subState(d, 'ayes.socket')) === 'listening'
        ? true
        : undefined,
    );
    const first = await fetchLine(ports.ano);
    assert.match(first, /^served by \d+/);
    const anoPid = await mainPid(d, 'ano.service');
    const keepPid = await waitFor('keep.service running', async () => {
      const pid = await mainPid(d, 'keep.service');
      return pid > 0 ? pid : undefined;
    });
    assert.equal(first.trim(), `served by ${anoPid}`);

    const load = connectionLoad(
      [
        { port: ports.ano, expect: new RegExp(`^served by ${anoPid}\\n$`) },
        { port: ports.ayes, expect: /^hi\n$/ },
      ],
      8,
    );
    loads.push(load);
    await new Promise((r) => setTimeout(r, 300));
    const before = load.ok;
    const reexec = await ctl(d, 'daemon-reexec');
    assert.equal(reexec.code, 0, reexec.stderr);
    const answer = JSON.parse(reexec.stdout) as { pid: number; ms: number };
    assert.equal(answer.pid, d.pid);
    await new Promise((r) => setTimeout(r, 500));
    await load.stop();
    assert.deepEqual(load.failures.slice(0, 10), [], `${load.failures.length} connections failed`);
    assert.ok(load.ok > before, 'connections were served after the re-exec');
    t.diagnostic(
      `${load.ok} connections served (${before} before the re-exec), re-exec answered in ${answer.ms} ms`,
    );

    await d.waitForLog((l) => l.msg === 'units restored from the state file');
    assert.equal(d.proc.exitCode, null, 'the daemon process is the same one');
    assert.equal(await mainPid(d, 'ano.service'), anoPid);
    assert.equal(await mainPid(d, 'keep.service'), keepPid);
    assert.equal(await subState(d, 'ano.service'), 'running');
    assert.equal(await subState(d, 'ano.socket'), 'running');
    assert.equal(await subState(d, 'ayes.socket'), 'listening');
    const status = await ctl(d, 'status');
    assert.equal(status.code, 0, status.stderr);
    // The service's stdout pipe came along: its lines still reach the log.
    const n = d.logs.filter((l) => l.unit === 'ano.service' && l.msg === 'served one').length;
    await fetchLine(ports.ano);
    await d.waitForLog(
      () => d.logs.filter((l) => l.unit === 'ano.service' && l.msg === 'served one').length > n,
      5000,
    );
    // An adopted service's exit is still ours: Restart=always starts it again.
    process.kill(keepPid, 'SIGKILL');
    const next = await waitFor('keep.service restarted', async () => {
      const pid = await mainPid(d, 'keep.service');
      return pid > 0 && pid !== keepPid ? pid : undefined;
    });
    assert.notEqual(next, keepPid);
    // SIGUSR1 does the same.
    process.kill(d.pid, 'SIGUSR1');
    await waitFor('a second re-exec', () =>
      d.logs.filter((l) => l.msg === 'units restored from the state file').length >= 2 ? true : undefined,
    );
    assert.equal((await ctl(d, 'status')).code, 0);
    assert.equal(await mainPid(d, 'ano.service'), anoPid);
    assert.equal(await mainPid(d, 'keep.service'), next);
    assert.equal(d.proc.exitCode, null);
    await d.stop();
  });

  test('kill -9 and a restart: services adopted with their pids, sockets serve, a later exit is acted on', async () => {
    const { units, ports } = await setup('crash');
    const dir = path.join(root, 'crash', 'run');
    fs.mkdirSync(dir, { recursive: true });
    const args = ['--unit-path', units, '--fstab', ''];
    const a = await startDaemon(args, { dir });
    daemons.push(a);
    await waitFor('the sockets listening', async () =>
      (await subState(a, 'ano.socket')) === 'listening' && (await subState(a, 'ayes.socket')) === 'listening'
        ? true
        : undefined,
    );
    assert.match(await fetchLine(ports.ano), /^served by \d+/);
    const anoPid = await mainPid(a, 'ano.service');
    const keepPid = await waitFor('keep.service running', async () => {
      const pid = await mainPid(a, 'keep.service');
      return pid > 0 ? pid : undefined;
    });
    // The checkpoint is written within 500 ms of the last transition.
    await waitFor('the checkpoint lists ano.service running', () => {
      try {
        return fs.readFileSync(path.join(dir, 'state.json'), 'utf8').includes(`"mainPid":${anoPid}`)
          ? true
          : undefined;
      } catch {
        return undefined;
      }
    });
    process.kill(a.pid, 'SIGKILL');
    await a.exited;

    const b = await startDaemon(args, { dir });
    daemons.push(b);
    await b.waitForLog((l) => l.msg === 'units restored from the state file');
    assert.ok(b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('took 127.0.0.1:')));
    assert.equal(await mainPid(b, 'ano.service'), anoPid);
    assert.equal(await mainPid(b, 'keep.service'), keepPid);
    assert.equal(await subState(b, 'keep.service'), 'running');
    assert.equal((await fetchLine(ports.ano)).trim(), `served by ${anoPid}`);
    assert.equal(await fetchLine(ports.ayes), 'hi\n');
    assert.equal((await ctl(b, 'status')).code, 0);

    process.kill(keepPid, 'SIGKILL');
    const next = await waitFor('keep.service restarted', async () => {
      const pid = await mainPid(b, 'keep.service');
      return pid > 0 && pid !== keepPid ? pid : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; log: ${logTail(b)}`);
    });
    assert.notEqual(next, keepPid);
    // The exit was seen through the pidfd (not our child): its status read from the zombie, or unknown.
    assert.ok(b.logs.some((l) => l.unit === 'keep.service' && l.pid === keepPid && l.role === 'main'));
    await b.stop();
  });

  test('a state file from an earlier boot: a warning and a fresh start', async () => {
    const { units } = await setup('stale');
    const dir = path.join(root, 'stale', 'run');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'state.json'),
      JSON.stringify({
        format: 'triggerd-state',
        version: 1,
        kind: 'checkpoint',
        daemon: { pid: 1, startTime: '1', bootId: 'an-earlier-boot' },
        writtenAt: 0,
        fds: [],
        units: [
          { name: 'keep.service', active: 'active', sub: 'running', data: { state: 'running', mainPid: 1 } },
        ],
      }),
    );
    const d = await startDaemon(['--unit-path', units, '--fstab', ''], { dir });
    daemons.push(d);
    assert.ok(d.logs.some((l) => l.code === 'ERR_STATE_STALE'));
    await waitFor('keep.service started fresh', async () => {
      const pid = await mainPid(d, 'keep.service');
      return pid > 1 ? true : undefined;
    });
    await d.stop();
  });

  test('a corrupt state file: a warning and a fresh start', async () => {
    const { units } = await setup('corrupt');
    const dir = path.join(root, 'corrupt', 'run');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'state.json'), '{"format":"triggerd-state","version":1,');
    const d = await startDaemon(['--unit-path', units, '--fstab', ''], { dir });
    daemons.push(d);
    assert.ok(d.logs.some((l) => l.code === 'ERR_STATE_CORRUPT'));
    await waitFor('keep.service started fresh', async () =>
      (await subState(d, 'keep.service')) === 'running' ? true : undefined,
    );
    await d.stop();
  });
});
