// socket-address.ts: a golden table of systemd.socket(5) addresses (good and bad), netlink
// family names, printing, and systemd's Accept=yes instance names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SocketAddress, SocketKind } from '../../src/native/socket-addon';
import {
  connectionInstance,
  formatSocketAddress,
  parseNetlinkAddress,
  parseSocketAddress,
  remoteEnvironment,
  sourceKey,
} from '../../src/units/socket-address';

const interfaceIndex = (name: string): number | undefined => ({ lo: 1, eth0: 2 })[name];

const GOOD: [string, SocketKind, SocketAddress][] = [
  ['80', 'stream', { family: 'inet6', host: '::', port: 80 }],
  ['65535', 'dgram', { family: 'inet6', host: '::', port: 65535 }],
  ['1.2.3.4:80', 'stream', { family: 'inet', host: '1.2.3.4', port: 80 }],
  ['127.0.0.1:5353', 'dgram', { family: 'inet', host: '127.0.0.1', port: 5353 }],
  ['0.0.0.0:22', 'stream', { family: 'inet', host: '0.0.0.0', port: 22 }],
  ['[::1]:80', 'stream', { family: 'inet6', host: '::1', port: 80 }],
  ['[::]:8080', 'stream', { family: 'inet6', host: '::', port: 8080 }],
  ['[fe80::1%eth0]:80', 'stream', { family: 'inet6', host: 'fe80::1', port: 80, scopeId: 2 }],
  ['[fe80::1]:80%eth0', 'stream', { family: 'inet6', host: 'fe80::1', port: 80, scopeId: 2 }],
  ['[fe80::1%3]:80', 'stream', { family: 'inet6', host: 'fe80::1', port: 80, scopeId: 3 }],
  ['/run/foo.sock', 'stream', { family: 'unix', path: '/run/foo.sock' }],
  ['/run//foo/', 'seqpacket', { family: 'unix', path: '/run/foo' }],
  ['@foo', 'dgram', { family: 'unix', path: '@foo' }],
  ['@triggerd/abstract name', 'seqpacket', { family: 'unix', path: '@triggerd/abstract name' }],
  ['vsock:2:1234', 'stream', { family: 'vsock', cid: 2, port: 1234 }],
  ['vsock::1234', 'stream', { family: 'vsock', cid: 0xffffffff, port: 1234 }],
  ['  1.2.3.4:80  ', 'stream', { family: 'inet', host: '1.2.3.4', port: 80 }],
];

const BAD: [string, SocketKind, RegExp][] = [
  ['', 'stream', /empty address/],
  ['0', 'stream', /port out of range/],
  ['65536', 'stream', /port out of range/],
  ['1.2.3.4', 'stream', /has no port/],
  ['::1', 'stream', /has no port/],
  ['1.2.3.4:', 'stream', /not a port number/],
  ['1.2.3:80', 'stream', /not an IPv4 address/],
  ['localhost:80', 'stream', /host names are not resolved/],
  ['[::1]', 'stream', /not an IPv6 address and port/],
  ['[::g]:80', 'stream', /not an IPv6 address/],
  ['[fe80::1%wlan9]:80', 'stream', /no network interface named "wlan9"/],
  ['[fe80::1%eth0]:80%eth0', 'stream', /two interface scopes/],
  ['@', 'stream', /abstract socket name is empty/],
  [`/${'x'.repeat(107)}`, 'stream', /longer than 107 bytes/],
  [`@${'x'.repeat(108)}`, 'stream', /longer than 107 bytes/],
  ['/run/../etc/x', 'stream', /contains "\.\."/],
  ['vsock:2', 'stream', /not a vsock address/],
  ['vsock:x:1', 'stream', /not a vsock CID/],
  ['vsock:2:y', 'stream', /not a vsock port/],
  ['127.0.0.1:80', 'seqpacket', /ListenSequentialPacket= takes a unix socket path/],
  ['hello', 'stream', /not a socket address/],
];

test('addresses: the forms systemd.socket(5) documents', () => {
  for (const [text, kind, expected] of GOOD) {
    const r = parseSocketAddress(text, kind, { interfaceIndex });
    assert.ok(r.ok, `${text}: ${r.ok ? '' : r.message}`);
    assert.deepEqual(r.value, expected, text);
  }
});

test('addresses: what is refused, and why', () => {
  for (const [text, kind, why] of BAD) {
    const r = parseSocketAddress(text, kind, { interfaceIndex });
    assert.equal(r.ok, false, `${JSON.stringify(text)} should fail`);
    if (!r.ok) assert.match(r.message, why, text);
  }
});

test('netlink: family names and numbers, group defaults to 0', () => {
  assert.deepEqual(parseNetlinkAddress('kobject-uevent 1'), {
    ok: true,
    value: { family: 'netlink', protocol: 15, group: 1 },
  });
  assert.deepEqual(parseNetlinkAddress('route'), {
    ok: true,
    value: { family: 'netlink', protocol: 0, group: 0 },
  });
  assert.deepEqual(parseNetlinkAddress('audit 1'), {
    ok: true,
    value: { family: 'netlink', protocol: 9, group: 1 },
  });
  assert.deepEqual(parseNetlinkAddress('16 3'), {
    ok: true,
    value: { family: 'netlink', protocol: 16, group: 3 },
  });
  for (const bad of ['', 'frobnicate 1', 'route x', 'route 1 2', '99']) {
    assert.equal(parseNetlinkAddress(bad).ok, false, bad);
  }
});

test('printing, as systemd prints listen addresses', () => {
  const table: [SocketAddress, string][] = [
    [{ family: 'inet6', host: '::', port: 80 }, '[::]:80'],
    [{ family: 'inet', host: '1.2.3.4', port: 80 }, '1.2.3.4:80'],
    [{ family: 'inet6', host: 'fe80::1', port: 80, scopeId: 2 }, '[fe80::1]:80%2'],
    [{ family: 'unix', path: '/run/x' }, '/run/x'],
    [{ family: 'unix', path: '@x' }, '@x'],
    [{ family: 'vsock', cid: 2, port: 9 }, 'vsock:2:9'],
    [{ family: 'netlink', protocol: 15, group: 1 }, 'kobject-uevent 1'],
  ];
  for (const [a, s] of table) assert.equal(formatSocketAddress(a), s);
});

test('instance names are those of systemd instance_from_socket()', () => {
  const v4 = (host: string, port: number): SocketAddress => ({ family: 'inet', host, port });
  const v6 = (host: string, port: number): SocketAddress => ({ family: 'inet6', host, port });
  const none = { pid: -1, uid: -1 };
  assert.equal(
    connectionInstance(0, v4('127.0.0.1', 22), v4('127.0.0.1', 50001), none),
    '0-127.0.0.1:22-127.0.0.1:50001',
  );
  // Both ends IPv4-mapped on a dual-stack socket: printed as IPv4.
  assert.equal(
    connectionInstance(7, v6('::ffff:127.0.0.1', 80), v6('::ffff:10.0.0.2', 4000), none),
    '7-127.0.0.1:80-10.0.0.2:4000',
  );
  assert.equal(connectionInstance(3, v6('::1', 80), v6('::1', 4000), none), '3-::1:80-::1:4000');
  assert.equal(
    connectionInstance(
      1,
      { family: 'unix', path: '/run/x' },
      { family: 'unix', path: '' },
      { pid: 4242, uid: 1000 },
    ),
    '1-4242-1000',
  );
  assert.equal(
    connectionInstance(2, { family: 'unix', path: '/run/x' }, { family: 'unix', path: '' }, none),
    '2-unknown',
  );
  assert.equal(
    connectionInstance(
      5,
      { family: 'vsock', cid: 2, port: 9 },
      { family: 'vsock', cid: 3, port: 1025 },
      none,
    ),
    '5-2:9-3:1025',
  );
});

test('REMOTE_ADDR/REMOTE_PORT and the per-source key', () => {
  assert.deepEqual(remoteEnvironment({ family: 'inet6', host: '::ffff:10.1.2.3', port: 999 }), {
    REMOTE_ADDR: '10.1.2.3',
    REMOTE_PORT: '999',
  });
  assert.deepEqual(remoteEnvironment({ family: 'inet6', host: '::1', port: 1 }), {
    REMOTE_ADDR: '::1',
    REMOTE_PORT: '1',
  });
  assert.deepEqual(remoteEnvironment({ family: 'unix', path: '' }), {});
  assert.equal(sourceKey({ family: 'inet6', host: '::ffff:10.1.2.3', port: 1 }, -1), '10.1.2.3');
  assert.equal(sourceKey({ family: 'inet', host: '10.1.2.3', port: 1 }, -1), '10.1.2.3');
  assert.equal(sourceKey({ family: 'unix', path: '' }, 1000), 'uid:1000');
  assert.equal(sourceKey({ family: 'unix', path: '' }, -1), undefined);
  assert.equal(sourceKey({ family: 'vsock', cid: 3, port: 1 }, -1), 'vsock:3');
});
