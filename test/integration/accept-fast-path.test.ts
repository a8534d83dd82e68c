// The Accept=yes fast path on the real kernel (src/core/accept-fast-path.ts, the socket addon's
// acceptSpawn): a private daemon serves loopback sockets whose templates qualify, so the accept
// thread starts the instances. An echo with plain cat, REMOTE_ADDR, `status` and `list-units` of a
// live instance, MaxConnections= refusals that keep at most N live, MaxConnections=64 at
// concurrency 64 refusing nobody (exits are reaped before a refusal), and a missing binary as a
// failed instance with its reason.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import { run, skipUnlessRoot, startDaemon, TRIGGERCTL, waitFor, type RunningDaemon } from '../helpers/daemon';
import { addonCandidates } from '../../src/native/addon';
import { freePort, request } from '../helpers/loopback';

const skip =
  skipUnlessRoot() ??
  (addonCandidates('triggerd_socket.node').some((f) => fs.existsSync(f))
    ? undefined
    : 'needs the triggerd_socket addon (npm install builds it)');

interface Status {
  name: string;
  active: string;
  sub: string;
  properties: Record<string, unknown>;
  statusLines: string[];
}

describe('Accept=yes fast path on the real kernel', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-fastpath-'));
  const units = path.join(dir, 'units');
  let d: RunningDaemon;
  let client: ControlClient;
  const ports: Record<string, number> = {};
  const unit = (name: string, text: string): void => fs.writeFileSync(path.join(units, name), text);
  const status = (name: string) => client.request('unit-status', { name, lines: 20 }) as Promise<Status>;
  const listUnits = async (prefix: string) =>
    ((await client.request('list-units', {})) as { name: string; active: string; sub: string }[]).filter(
      (u) => u.name.startsWith(prefix),
    );
  const noLimits = 'TriggerLimitIntervalSec=0\nPollLimitIntervalSec=0\n';

  before(async () => {
    fs.mkdirSync(units);
    for (const k of ['echo', 'env', 'hold', 'limited', 'many', 'manyjs', 'flood', 'missing', 'reload'])
      ports[k] = await freePort();
    unit('fecho.socket', `[Socket]\nListenStream=127.0.0.1:${ports.echo}\nAccept=yes\n`);
    unit('fecho@.service', '[Service]\nExecStart=/bin/cat\n');
    unit('fenv.socket', `[Socket]\nListenStream=127.0.0.1:${ports.env}\nAccept=yes\n`);
    unit('fenv@.service', '[Service]\nExecStart=/usr/bin/env\nEnvironment=GREETING=hi\n');
    unit('fhold.socket', `[Socket]\nListenStream=127.0.0.1:${ports.hold}\nAccept=yes\n`);
    unit('fhold@.service', "[Service]\nExecStart=/bin/sh -c 'read line; echo done'\n");
    unit(
      'flimited.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.limited}\nAccept=yes\nMaxConnections=3\n${noLimits}`,
    );
    unit('flimited@.service', "[Service]\nExecStart=/bin/sh -c 'read line; echo served'\n");
    unit(
      'fmany.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.many}\nAccept=yes\nMaxConnections=64\nBacklog=1024\n${noLimits}`,
    );
    unit('fmany@.service', '[Service]\nExecStart=/bin/cat\n');
    // The same on the JavaScript path (stderr to the journal does not qualify).
    unit(
      'jmany.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.manyjs}\nAccept=yes\nMaxConnections=64\nBacklog=1024\n${noLimits}`,
    );
    unit('jmany@.service', '[Service]\nExecStart=/bin/cat\nStandardError=journal\n');
    unit(
      'fflood.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.flood}\nAccept=yes\nMaxConnections=8\nBacklog=2048\n${noLimits}`,
    );
    unit('fflood@.service', "[Service]\nExecStart=/bin/sh -c 'sleep 0.05; echo ok'\n");
    unit('fmissing.socket', `[Socket]\nListenStream=127.0.0.1:${ports.missing}\nAccept=yes\n`);
    unit('fmissing@.service', '[Service]\nExecStart=/nonexistent/triggerd-no-such-binary\n');
    unit(
      'freload.socket',
      `[Socket]\nListenStream=127.0.0.1:${ports.reload}\nAccept=yes\nMaxConnections=2\n${noLimits}`,
    );
    unit('freload@.service', "[Service]\nExecStart=/bin/sh -c 'read line; echo before'\n");
    const wants = path.join(units, 'sockets.target.wants');
    fs.mkdirSync(wants);
    for (const s of ['fecho', 'fenv', 'fhold', 'flimited', 'fmany', 'jmany', 'fflood', 'fmissing', 'freload'])
      fs.symlinkSync(`../${s}.socket`, path.join(wants, `${s}.socket`));
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '5', '--log-level', 'debug']);
    client = await d.client();
    for (const s of ['fecho', 'fenv', 'fhold', 'flimited', 'fmany', 'jmany', 'fflood', 'fmissing', 'freload'])
      await waitFor(`${s}.socket listening`, async () =>
        (await status(`${s}.socket`)).sub === 'listening' ? true : undefined,
      );
  });

  after(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the qualifying sockets accept on the fast path', () => {
    const fast = d.logs
      .filter((l) => String(l.msg) === 'accepting on the fast path')
      .map((l) => String(l.unit));
    for (const s of ['fecho', 'fenv', 'fhold', 'flimited', 'fmany', 'fmissing'])
      assert.ok(fast.includes(`${s}.socket`), `${s}.socket: ${JSON.stringify(fast)}`);
  });

  test('daemon-reload: new connections start from the template as it is now, live ones go on', async () => {
    // A connection served by the thread started before the reload, still waiting for its line.
    const held = net.connect(ports.reload as number, '127.0.0.1');
    let heldOut = '';
    held.on('data', (b) => (heldOut += b.toString()));
    const heldClosed = new Promise<void>((r) => held.on('close', () => r()));
    await waitFor('the held instance is live', async () =>
      (await listUnits('freload@')).length === 1 ? true : undefined,
    );
    unit('freload@.service', "[Service]\nExecStart=/bin/sh -c 'read line; echo after'\n");
    await client.request('daemon-reload', {});
    // MaxConnections=2 with the held one still live: one more fits, a second is refused.
    const a = net.connect(ports.reload as number, '127.0.0.1');
    let aOut = '';
    a.on('data', (b) => (aOut += b.toString()));
    const aClosed = new Promise<void>((r) => a.on('close', () => r()));
    await waitFor('two live instances', async () =>
      (await listUnits('freload@')).length === 2 ? true : undefined,
    );
    // Nothing sent: closing a connection with unread data would be a reset, not an EOF.
    assert.equal(await request(ports.reload as number), '', 'the third connection is refused');
    a.end('go\n');
    await aClosed;
    assert.equal(aOut, 'after\n', 'a connection after the reload runs the new ExecStart=');
    held.end('go\n');
    await heldClosed;
    assert.equal(heldOut, 'before\n', 'the instance started before the reload finishes as it was');
    await waitFor('instances gone', async () =>
      (await listUnits('freload@')).length === 0 ? true : undefined,
    );
    assert.equal(await request(ports.reload as number, 'x\n'), 'after\n');
    // The client's EOF can come before the accept thread's exit record reached the daemon.
    const s = await waitFor('the last instance over', async () => {
      const now = await status('freload.socket');
      return now.properties.NConnections === 0 ? now : undefined;
    });
    assert.equal(s.properties.NRefused, 1);
    assert.equal(s.properties.NConnections, 0);
  });

  test('an echo with plain cat, one instance per connection, gone once over', async () => {
    assert.equal(await request(ports.echo as number, 'hello fast path\n'), 'hello fast path\n');
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => request(ports.echo as number, `line ${i}\n`)),
    );
    assert.deepEqual(
      answers,
      [1, 2, 3, 4, 5].map((i) => `line ${i}\n`),
    );
    await waitFor('instances gone', async () =>
      (await listUnits('fecho@')).length === 0 ? true : undefined,
    ).catch(async (e) => {
      throw new Error(JSON.stringify(await listUnits('fecho@')) + e);
    });
    const s = await status('fecho.socket');
    assert.equal(s.properties.NAccepted, 6);
    assert.equal(s.properties.NConnections, 0);
  });

  test('REMOTE_ADDR and REMOTE_PORT are the client, Environment= is there', async () => {
    let localPort = 0;
    const out = await new Promise<string>((resolve, reject) => {
      const c = net.connect(ports.env as number, '127.0.0.1');
      let text = '';
      c.on('connect', () => {
        localPort = c.localPort ?? 0;
        c.end();
      });
      c.on('data', (b) => (text += b.toString()));
      c.on('close', () => resolve(text));
      c.on('error', reject);
    });
    const env = new Map(
      out
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(env.get('REMOTE_ADDR'), '127.0.0.1');
    assert.equal(env.get('REMOTE_PORT'), String(localPort));
    assert.equal(env.get('GREETING'), 'hi');
  });

  test('status and list-units show a live instance; stop ends it', async () => {
    const c = net.connect(ports.hold as number, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    const inst = await waitFor('a live fhold@ instance', async () => {
      const u = await listUnits('fhold@');
      return u.length === 1 && u[0]?.active === 'active' ? u[0] : undefined;
    });
    assert.match(inst.name, /^fhold@0-127\.0\.0\.1:\d+-127\.0\.0\.1:\d+\.service$/);
    assert.equal(inst.sub, 'running');
    const s = await status(inst.name);
    assert.equal(s.active, 'active');
    const pid = s.properties.MainPID as number;
    assert.ok(pid > 0);
    assert.ok(fs.existsSync(`/proc/${pid}`));
    assert.ok(
      s.statusLines.some((l) => /Main PID: \d+ \(\/bin\/sh\)/.test(l)),
      s.statusLines.join('\n'),
    );
    assert.ok(
      s.statusLines.some((l) => /accept thread/.test(l)),
      s.statusLines.join('\n'),
    );
    assert.equal((await status('fhold.socket')).properties.NConnections, 1);
    const closed = new Promise((r) => c.once('close', r));
    c.on('error', () => undefined);
    await client.request('stop', { names: [inst.name] });
    await closed;
    await waitFor('fhold@ gone', async () => ((await listUnits('fhold@')).length === 0 ? true : undefined));
    assert.equal((await status('fhold.socket')).properties.NConnections, 0);
  });

  test('MaxConnections=3: the excess is refused (closed) with a log line, at most 3 live', async () => {
    const before = (await status('flimited.socket')).properties.NRefused as number;
    const sockets: net.Socket[] = [];
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 3; i++) {
      const c = net.connect(ports.limited as number, '127.0.0.1');
      c.on('error', () => undefined);
      sockets.push(c);
      answers.push(
        new Promise((resolve) => {
          let t = '';
          c.on('data', (b) => (t += b.toString()));
          c.on('close', () => resolve(t));
        }),
      );
    }
    await waitFor('3 live', async () => ((await listUnits('flimited@')).length === 3 ? true : undefined));
    const refused = await Promise.all([request(ports.limited as number), request(ports.limited as number)]);
    assert.deepEqual(refused, ['', '']);
    assert.ok((await listUnits('flimited@')).length <= 3);
    const s = await status('flimited.socket');
    assert.equal((s.properties.NRefused as number) - before, 2);
    // The log line comes on the daemon's stdout, a pipe of its own: it may follow the answer.
    await d.waitForLog((l) => /refusing connection .*MaxConnections=3/.test(String(l.msg)));
    for (const c of sockets) c.end('go\n');
    assert.deepEqual(await Promise.all(answers), ['served\n', 'served\n', 'served\n']);
  });

  for (const [label, key, socket] of [
    ['fast path', 'many', 'fmany.socket'],
    ['JavaScript path', 'manyjs', 'jmany.socket'],
  ] as const)
    test(`MaxConnections=64 at concurrency 64 refuses nobody (${label}: exits are taken before a refusal)`, async () => {
      const port = ports[key] as number;
      let served = 0;
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; i < 8; i++) {
          const text = `w${w} i${i}\n`;
          assert.equal(await request(port, text), text);
          served++;
        }
      };
      await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
      assert.equal(served, 512);
      // The last records may still be on their way to the event loop when the last client is served.
      const s = await waitFor('every connection counted', async () => {
        const st = await status(socket);
        return st.properties.NAccepted === 512 ? st : undefined;
      });
      assert.equal(s.properties.NRefused, 0);
    });

  test(
    'a live instance across daemon-reexec: adopted with its pid, still in status, collected when over',
    {
      skip: addonCandidates('triggerd_reexec.node').some((f) => fs.existsSync(f))
        ? undefined
        : 'needs the triggerd_reexec addon',
    },
    async () => {
      const c = net.connect(ports.hold as number, '127.0.0.1');
      c.on('error', () => undefined);
      let text = '';
      c.on('data', (b) => (text += b.toString()));
      const closed = new Promise((r) => c.once('close', r));
      await new Promise((r) => c.once('connect', r));
      const inst = await waitFor('a live fhold@ instance', async () => {
        const u = await listUnits('fhold@');
        return u.length === 1 && u[0]?.active === 'active' ? u[0] : undefined;
      });
      const pid = (await status(inst.name)).properties.MainPID as number;
      const reexec = await run(process.execPath, [TRIGGERCTL, '--socket', d.socket, 'daemon-reexec'], {
        allowFail: true,
      });
      assert.equal(reexec.code, 0, reexec.stderr);
      await d.waitForLog((l) => l.msg === 'units restored from the state file');
      client.close();
      client = await d.client();
      const after = await status(inst.name);
      assert.equal(after.active, 'active');
      assert.equal(after.properties.MainPID, pid);
      c.end('go\n');
      await closed;
      assert.equal(text, 'done\n');
      await waitFor('fhold@ collected', async () =>
        (await listUnits('fhold@')).length === 0 ? true : undefined,
      );
      // The socket serves on the fast path again.
      assert.equal(await request(ports.echo as number, 'after reexec\n'), 'after reexec\n');
    },
  );

  test('a flood of 1,000 connections with MaxConnections=8: at most 8 live, each served or refused, triggerctl answers', async () => {
    const port = ports.flood as number;
    let served = 0;
    let refused = 0;
    let maxLive = 0;
    let slowestAnswerMs = 0;
    let flooding = true;
    const sampler = (async () => {
      while (flooding) {
        const t0 = Date.now();
        const live = (await listUnits('fflood@')).filter((u) => u.active === 'active').length;
        slowestAnswerMs = Math.max(slowestAnswerMs, Date.now() - t0);
        maxLive = Math.max(maxLive, live);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        let text = '';
        c.on('data', (b) => (text += b.toString()));
        c.on('error', () => undefined);
        c.on('close', () => {
          if (text === 'ok\n') served++;
          else refused++;
          resolve();
        });
      });
    const queue = Array.from({ length: 1000 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        while (queue.pop() !== undefined) await one();
      }),
    );
    flooding = false;
    await sampler;
    assert.equal(served + refused, 1000);
    assert.ok(served > 0);
    assert.ok(maxLive <= 8, `${maxLive} live instances seen`);
    assert.ok(slowestAnswerMs < 2000, `list-units took ${slowestAnswerMs} ms`);
    const s = await waitFor('every connection counted', async () => {
      const st = await status('fflood.socket');
      return (st.properties.NAccepted as number) === served ? st : undefined;
    });
    assert.equal(s.properties.NRefused, refused, 'what the clients saw closed is what the socket refused');
  });

  test('a missing binary: a failed instance that says why, the socket goes on listening', async () => {
    assert.equal(await request(ports.missing as number), '');
    const failed = await waitFor('a failed fmissing@ instance', async () => {
      const u = await listUnits('fmissing@');
      return u.find((x) => x.active === 'failed');
    });
    const s = await status(failed.name);
    assert.equal(s.active, 'failed');
    assert.ok(
      s.statusLines.some((l) =>
        /failed at step EXEC: .*\(ENOENT\) \/nonexistent\/triggerd-no-such-binary/.test(l),
      ),
      s.statusLines.join('\n'),
    );
    assert.equal((await status('fmissing.socket')).sub, 'listening');
    await client.request('reset-failed', { names: [failed.name] });
    assert.deepEqual(await listUnits('fmissing@'), [], 'reset-failed lets it go');
  });
});
