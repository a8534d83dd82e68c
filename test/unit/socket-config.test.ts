// [Socket] through the loader: defaults, every key of the scope, bad values with
// file:line, systemd's refusals (socket_verify) and triggerd's load-time check that Accept=yes has
// a template service to start.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoadedUnitFile } from '../../src/units/config-types';
import { parseUnitText, UnitLoader } from '../../src/units/unit-loader';
import { verifyFailed, verifyUnitFiles } from '../../src/units/verify';

function load(text: string, name = 'web.socket'): LoadedUnitFile {
  return parseUnitText(name, text, `/units/${name}`);
}

function diags(u: LoadedUnitFile): [string, string, number | undefined][] {
  return u.diagnostics.map((d) => [d.severity, d.code, d.source?.line]);
}

describe('[Socket] keys', () => {
  test("defaults are systemd's", () => {
    const u = load('[Socket]\nListenStream=80\n');
    assert.equal(u.loadState, 'loaded');
    const s = u.socket;
    assert.ok(s);
    assert.equal(s.accept, false);
    assert.equal(s.maxConnections, 64);
    assert.equal(s.maxConnectionsPerSource, 0);
    assert.equal(s.backlog, 4096);
    assert.equal(s.socketMode, 0o666);
    assert.equal(s.directoryMode, 0o755);
    assert.equal(s.bindIPv6Only, 'default');
    assert.equal(s.timeoutMs, 90_000);
    assert.equal(s.triggerLimitIntervalMs, undefined);
    assert.equal(s.pollLimitBurst, undefined);
    assert.equal(s.removeOnStop, false);
    assert.deepEqual(s.exec.standardOutput, { kind: 'journal' });
    assert.equal(s.kill.killMode, 'control-group');
    // Accept=no orders the socket before the service it starts.
    assert.deepEqual(u.unit.dependencies.Before, ['web.service']);
  });

  test('every key of the scope, in one file', () => {
    const u = load(
      [
        '[Socket]',
        'ListenStream=127.0.0.1:8080',
        'ListenDatagram=5353',
        'ListenSequentialPacket=@seq',
        'ListenFIFO=/run/web.fifo',
        'ListenSpecial=/dev/null',
        'ListenNetlink=kobject-uevent 1',
        'ListenMessageQueue=/webq',
        'BindIPv6Only=both',
        'Backlog=16',
        'BindToDevice=lo',
        'FreeBind=yes',
        'Transparent=yes',
        'ReusePort=yes',
        'KeepAlive=yes',
        'KeepAliveTimeSec=2min',
        'KeepAliveIntervalSec=30',
        'KeepAliveProbes=4',
        'NoDelay=yes',
        'DeferAcceptSec=1500ms',
        'Priority=6',
        'ReceiveBuffer=1M',
        'SendBuffer=64K',
        'IPTOS=low-delay',
        'IPTTL=64',
        'Mark=7',
        'PassCredentials=yes',
        'PassSecurity=yes',
        'SocketUser=nobody',
        'SocketGroup=nogroup',
        'SocketMode=0600',
        'DirectoryMode=0700',
        'RemoveOnStop=yes',
        'FileDescriptorName=web',
        'Service=other.service',
        'MaxConnections=10',
        'MaxConnectionsPerSource=2',
        'TriggerLimitIntervalSec=5s',
        'TriggerLimitBurst=7',
        'PollLimitIntervalSec=3s',
        'PollLimitBurst=9',
        'ExecStartPre=/bin/true pre',
        'ExecStartPost=/bin/true post',
        'ExecStopPre=/bin/true stoppre',
        'ExecStopPost=-/bin/false stoppost',
        'TimeoutSec=7s',
        'User=nobody',
        'Environment=A=1',
        'KillSignal=SIGINT',
      ].join('\n'),
    );
    assert.deepEqual(u.diagnostics, []);
    assert.equal(u.loadState, 'loaded');
    const s = u.socket;
    assert.ok(s);
    assert.deepEqual(
      s.listen.map((l) => [l.kind, l.text, l.source.line]),
      [
        ['stream', '127.0.0.1:8080', 2],
        ['dgram', '5353', 3],
        ['seqpacket', '@seq', 4],
        ['fifo', '/run/web.fifo', 5],
        ['special', '/dev/null', 6],
        ['netlink', 'kobject-uevent 1', 7],
        ['mqueue', '/webq', 8],
      ],
    );
    assert.equal(s.bindIPv6Only, 'both');
    assert.equal(s.backlog, 16);
    assert.equal(s.bindToDevice, 'lo');
    assert.equal(s.freeBind && s.transparent && s.reusePort && s.keepAlive && s.noDelay, true);
    assert.equal(s.keepAliveTimeSec, 120);
    assert.equal(s.keepAliveIntervalSec, 30);
    assert.equal(s.keepAliveProbes, 4);
    assert.equal(s.deferAcceptSec, 2);
    assert.equal(s.priority, 6);
    assert.equal(s.receiveBuffer, 1024 * 1024);
    assert.equal(s.sendBuffer, 64 * 1024);
    assert.equal(s.ipTos, 0x10);
    assert.equal(s.ipTtl, 64);
    assert.equal(s.mark, 7);
    assert.equal(s.passCredentials && s.passSecurity, true);
    assert.equal(s.socketUser, 'nobody');
    assert.equal(s.socketGroup, 'nogroup');
    assert.equal(s.socketMode, 0o600);
    assert.equal(s.directoryMode, 0o700);
    assert.equal(s.removeOnStop, true);
    assert.equal(s.fileDescriptorName, 'web');
    assert.equal(s.service, 'other.service');
    assert.equal(s.maxConnections, 10);
    assert.equal(s.maxConnectionsPerSource, 2);
    assert.equal(s.triggerLimitIntervalMs, 5000);
    assert.equal(s.triggerLimitBurst, 7);
    assert.equal(s.pollLimitIntervalMs, 3000);
    assert.equal(s.pollLimitBurst, 9);
    assert.deepEqual(
      [s.execStartPre, s.execStartPost, s.execStopPre, s.execStopPost].map((l) =>
        l.map((c) => c.argv.join(' ')),
      ),
      [['/bin/true pre'], ['/bin/true post'], ['/bin/true stoppre'], ['/bin/false stoppost']],
    );
    assert.equal(s.execStopPost[0]?.ignoreFailure, true);
    assert.equal(s.timeoutMs, 7000);
    assert.equal(s.exec.user, 'nobody');
    assert.deepEqual(s.exec.environment, [['A', '1']]);
    assert.equal(s.kill.killSignal, 2);
    assert.deepEqual(u.unit.dependencies.Before, ['other.service']);
  });

  test('an empty Listen*= resets the whole list; specifiers expand', () => {
    const u = load(
      '[Socket]\nListenStream=80\nListenFIFO=/run/x\nListenDatagram=\nListenStream=/run/%p.sock\n',
    );
    assert.deepEqual(
      u.socket?.listen.map((l) => l.text),
      ['/run/web.sock'],
    );
  });

  test('bad values: the unit refuses to load for a bad address, warns for a bad option; both name file:line', () => {
    const u = load('[Socket]\nListenStream=localhost:80\nBacklog=lots\nIPTOS=fast\nListenStream=81\n');
    assert.equal(u.loadState, 'bad-setting');
    assert.deepEqual(diags(u), [
      ['error', 'ERR_UNIT_BAD_SETTING', 2],
      ['warning', 'ERR_UNIT_BAD_VALUE', 3],
      ['warning', 'ERR_UNIT_BAD_VALUE', 4],
    ]);
    assert.match(
      u.diagnostics[0]?.message ?? '',
      /^\/units\/web\.socket:2: \[Socket\] ListenStream=localhost:80: .*host names are not resolved/,
    );
  });

  test('unknown and unsupported keys warn and do not stop the unit', () => {
    const u = load('[Socket]\nListenStream=80\nFrobnicate=1\nSmackLabel=x\nSystemCallFilter=@basic-io\n');
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(diags(u), [
      ['warning', 'ERR_UNIT_UNKNOWN_KEY', 3],
      ['warning', 'ERR_UNIT_UNSUPPORTED_KEY', 4],
      ['warning', 'ERR_UNIT_UNSUPPORTED_KEY', 5],
    ]);
  });
});

describe("systemd's refusals (socket_verify), with the fix in the message", () => {
  const refusals: [string, string, RegExp, number | undefined][] = [
    ['no Listen', '[Socket]\nAccept=no\n', /has no Listen setting/, 1],
    [
      'Accept=yes on a datagram socket',
      '[Socket]\nListenDatagram=53\nAccept=yes\n',
      /:3: Accept=yes needs connection sockets .* but 53 \(\/units\/web\.socket:2\) cannot accept connections; set Accept=no/,
      3,
    ],
    ['Accept=yes on a FIFO', '[Socket]\nListenFIFO=/run/f\nAccept=yes\n', /cannot accept connections/, 3],
    [
      'Accept=yes with Service=',
      '[Socket]\nListenStream=80\nService=x.service\nAccept=yes\n',
      /Service= cannot be combined with Accept=yes: every connection starts an instance of web@\.service/,
      4,
    ],
    ['MaxConnections=0', '[Socket]\nListenStream=80\nAccept=yes\nMaxConnections=0\n', /MaxConnections=0/, 3],
    [
      'Symlinks= with two nodes',
      '[Socket]\nListenStream=/run/a\nListenFIFO=/run/b\nSymlinks=/run/c\n',
      /Symlinks= needs exactly one socket or FIFO/,
      1,
    ],
    ['Service= a template', '[Socket]\nListenStream=80\nService=x@.service\n', /cannot be a template/, 3],
  ];
  for (const [what, text, message, line] of refusals) {
    test(what, () => {
      const u = load(text);
      assert.equal(u.loadState, 'bad-setting');
      const e = u.diagnostics.find((d) => d.severity === 'error');
      assert.ok(e, 'an error');
      assert.match(e.message, message);
      assert.equal(e.source?.line, line);
    });
  }
});

describe('the service a socket starts, checked at load time', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-socket-config-'));
  const write = (name: string, text: string): void => fs.writeFileSync(path.join(dir, name), text);
  write('echo.socket', '[Socket]\nListenStream=7\nAccept=yes\n');
  write('echo@.service', '[Service]\nExecStart=/bin/cat\n');
  write('plain.socket', '[Unit]\nDescription=x\n[Socket]\nListenStream=8\nAccept=yes\n');
  write('plain.service', '[Service]\nExecStart=/bin/cat\n');
  write('nothing.socket', '[Socket]\nListenStream=9\nAccept=true\n');
  write('daemon.socket', '[Socket]\nListenStream=10\n');
  write('daemon.service', '[Service]\nExecStart=/bin/sleep 1\n');
  write('lost.socket', '[Socket]\nListenStream=11\n');
  write('lost@.service', '[Service]\nExecStart=/bin/cat\n');
  write('extra.service', '[Service]\nExecStart=/bin/sleep 1\nSockets=daemon.socket lost.socket\n');
  const loader = new UnitLoader([dir]);
  test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('Accept=yes with its template: fine', () => {
    const u = loader.load('echo.socket');
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(u.diagnostics, []);
  });
  test('Accept=yes with only a plain service: refused at the Accept= line, with the fix', () => {
    const u = loader.load('plain.socket');
    assert.equal(u.loadState, 'bad-setting');
    assert.equal(u.diagnostics.length, 1);
    const d = u.diagnostics[0];
    assert.equal(d?.source?.line, 5);
    assert.match(
      d?.message ?? '',
      /plain\.socket:5: Accept=yes starts one instance of the template plain@\.service per connection, but plain\.service is not a template: rename it to plain@\.service .*or set Accept=no/,
    );
  });
  test('Accept=yes with no service at all', () => {
    const u = loader.load('nothing.socket');
    assert.equal(u.loadState, 'bad-setting');
    assert.match(
      u.diagnostics[0]?.message ?? '',
      /there is no nothing@\.service in .*: create it, or set Accept=no/,
    );
  });
  test('Accept=no with its service: fine; with only a template: a warning that suggests Accept=yes', () => {
    assert.deepEqual(loader.load('daemon.socket').diagnostics, []);
    const u = loader.load('lost.socket');
    assert.equal(u.loadState, 'loaded');
    assert.deepEqual(
      diags(u).map((d) => d[0]),
      ['warning'],
    );
    assert.match(
      u.diagnostics[0]?.message ?? '',
      /lost\.service, which does not exist \(there is a template lost@\.service: set Accept=yes/,
    );
  });
  test("verify checks a socket's Exec*= commands and SocketUser=/SocketGroup= accounts", () => {
    write(
      'checked.socket',
      '[Socket]\nListenStream=12\nSocketUser=no-such-user-x\nExecStartPre=/nonexistent/pre\n',
    );
    write('checked.service', '[Service]\nExecStart=/bin/true\n');
    const results = verifyUnitFiles([path.join(dir, 'checked.socket')], { unitPaths: [], strict: true });
    assert.ok(verifyFailed(results));
    const messages = results[0]?.diagnostics.map((d) => d.message) ?? [];
    assert.ok(
      messages.some((m) => /checked\.socket:4: command \/nonexistent\/pre does not exist/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /checked\.socket:3: SocketUser=no-such-user-x: no such user/.test(m)),
      messages.join('\n'),
    );
  });
  test('Sockets= on a service wants and orders after its sockets', () => {
    const u = loader.load('extra.service');
    assert.deepEqual(u.service?.sockets, ['daemon.socket', 'lost.socket']);
    assert.deepEqual(u.unit.dependencies.Wants, ['daemon.socket', 'lost.socket']);
    assert.deepEqual(u.unit.dependencies.After, ['daemon.socket', 'lost.socket']);
  });
});

test("IPTOS= and ListenNetlink= names like Object.prototype's members are refused (found by the fuzz harness)", () => {
  // IPTOS_NAMES['valueOf'] / NETLINK_FAMILIES['valueOf'] found a function and accepted it silently.
  const u = load(
    '[Socket]\nListenStream=8080\nIPTOS=valueOf\nListenNetlink=constructor 0\nListenNetlink=kobject-uevent 1\n',
  );
  assert.deepEqual(
    diags(u).map(([, code, line]) => [code, line]),
    [
      ['ERR_UNIT_BAD_VALUE', 3],
      ['ERR_UNIT_BAD_SETTING', 4],
    ],
  );
});
