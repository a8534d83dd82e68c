// The socket addon (triggerd_socket.node): one contract suite run against test/helpers/fake-socket
// and the real addon (listen/accept/watch on loopback TCP, an abstract unix socket, a datagram
// socket; EADDRINUSE; closed fds; bad arguments), then what only the kernel does: IPv6 and
// dual-stack, every SocketOptions key read back with getsockopt, unix paths (parents, modes,
// owner, stale files), seqpacket, FIFO, special files, message queues, netlink, vsock, a
// privileged port as an ordinary user, watch abuse, a worker that ends with a watch open, and a
// flood of 2,000 connections accepted through watch + accept. Real sockets on loopback only.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  loadNativeSocket,
  type NativeSocket,
  type ReadinessWatch,
  type SocketAddress,
  type SocketOptionError,
} from '../../src/native/socket-addon';
import { addonCandidates } from '../../src/native/addon';
import { FakeNativeSocket } from '../helpers/fake-socket';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-socket-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const SOCKET_MODULE = path.resolve(__dirname, '..', '..', 'src', 'native', 'socket-addon.js');
const isRoot = process.getuid?.() === 0;
const LOOPBACK4: SocketAddress = { family: 'inet', host: '127.0.0.1', port: 0 };

// <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h> (x86-64 and arm64 alike).
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_KEEPALIVE = 9;
const SO_BROADCAST = 6;
const SO_PRIORITY = 12;
const SO_REUSEPORT = 15;
const SO_PASSCRED = 16;
const SO_ACCEPTCONN = 30;
const SO_PASSSEC = 34;
const SO_MARK = 36;
const SO_BINDTOIFINDEX = 62;
const SOCK_RAW = 3;
const IPPROTO_IP = 0;
const IP_TOS = 1;
const IP_TTL = 2;
const IP_FREEBIND = 15;
const IP_TRANSPARENT = 19;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_DEFER_ACCEPT = 9;
const IPPROTO_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_V6ONLY = 26;
const IPV6_TCLASS = 67;
const IPV6_FREEBIND = 78;

/** The real addon's test-only export: getsockopt(fd, level, name) of an int option. */
type WithGetsockopt = NativeSocket & { getsockoptInt(fd: number, level: number, name: number): number };

async function until(what: string, probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const tick = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback client of a real listening socket; resolves once connected. */
function connectReal(address: SocketAddress): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    if (address.family === 'unix') {
      const target = address.path.startsWith('@') ? `\0${address.path.slice(1)}` : address.path;
      socket = net.connect({ path: target });
    } else if (address.family === 'inet' || address.family === 'inet6') {
      socket = net.connect({ host: address.host, port: address.port });
    } else {
      throw new Error(`cannot connect to ${address.family}`);
    }
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends one UDP datagram to a real socket. */
async function sendUdp(address: SocketAddress, payload = 'x'): Promise<void> {
  if (address.family !== 'inet' && address.family !== 'inet6') throw new Error('not inet');
  const client = dgram.createSocket(address.family === 'inet' ? 'udp4' : 'udp6');
  await new Promise<void>((resolve, reject) =>
    client.send(Buffer.from(payload), address.port, address.host, (err) => (err ? reject(err) : resolve())),
  );
  client.close();
}

/** The fd's open flags from /proc/self/fdinfo (octal). */
function fdFlags(fd: number): number {
  const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const match = /^flags:\s+([0-7]+)$/m.exec(text);
  assert.ok(match, text);
  return parseInt(match[1] ?? '', 8);
}
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const hasPython = spawnSync('python3', ['-c', '']).status === 0;

/**
 * A python3 client of an abstract unix socket. Node's net cannot be one: it pads abstract names
 * to the whole sun_path (old libuv behaviour), while systemd, python and this addon bind exactly
 * the name's bytes. Resolves once connected; the client holds the connection until killed.
 */
function connectAbstract(name: string): Promise<{ hangUp: () => void; pid: number }> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect("\\0"+sys.argv[1])\nprint("ok",flush=True)\nsys.stdin.read()',
      name,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ hangUp: () => child.kill(), pid: child.pid ?? -1 }));
    child.once('exit', (code) => reject(new Error(`python3 client exited with ${code}`)));
  });
}

/** What a client does, real or fake: the contract suite's only difference between the two. */
interface Harness {
  native: NativeSocket;
  /** Connects a client; `pid` is the client process (what SO_PEERCRED reports). */
  connect(fd: number, address: SocketAddress): Promise<{ hangUp: () => void; pid: number }>;
  send(fd: number, address: SocketAddress): Promise<void>;
}

function realHarness(): Harness {
  return {
    native: loadNativeSocket(),
    async connect(_fd, address) {
      if (address.family === 'unix' && address.path.startsWith('@'))
        return connectAbstract(address.path.slice(1));
      const socket = await connectReal(address);
      socket.on('error', () => {});
      return { hangUp: () => socket.destroy(), pid: process.pid };
    },
    send: (_fd, address) => sendUdp(address),
  };
}

function fakeHarness(): Harness {
  const native = new FakeNativeSocket();
  return {
    native,
    connect(fd) {
      native.connect(fd);
      return Promise.resolve({ hangUp: () => {}, pid: process.pid });
    },
    send(fd) {
      native.deliver(fd);
      return Promise.resolve();
    },
  };
}

function contract(name: string, make: () => Harness): void {
  describe(`socket contract: ${name}`, () => {
    test('TCP on 127.0.0.1 port 0: watch wakes up, accept returns the connection, then undefined', async () => {
      const { native, connect } = make();
      const fd = native.listen('stream', LOOPBACK4, {});
      const address = native.localAddress(fd);
      assert.equal(address.family, 'inet');
      assert.ok(address.family === 'inet' && address.host === '127.0.0.1' && address.port > 0);
      let wakeUps = 0;
      const accepted: ReturnType<NativeSocket['accept']>[] = [];
      const watch = native.watch(fd, () => {
        wakeUps++;
        for (let c = native.accept(fd); c !== undefined; c = native.accept(fd)) accepted.push(c);
      });
      const { hangUp } = await connect(fd, address);
      try {
        await until('accept', () => accepted.length === 1);
        const c = accepted[0];
        assert.ok(c !== undefined);
        assert.deepEqual(c.local, address);
        assert.equal(c.remote.family, 'inet');
        assert.ok(c.remote.family === 'inet' && c.remote.host === '127.0.0.1' && c.remote.port > 0);
        assert.equal(c.peerPid, -1);
        assert.equal(c.peerUid, -1);
        assert.ok(wakeUps >= 1);
        assert.equal(native.accept(fd), undefined, 'nothing pending');
        native.close(c.fd);
      } finally {
        hangUp();
        watch.close();
        native.close(fd);
      }
    });

    test('the same address twice is EADDRINUSE from bind; with reusePort on both it is allowed', () => {
      const { native } = make();
      const fd = native.listen('stream', LOOPBACK4, {});
      const address = native.localAddress(fd);
      try {
        assert.throws(() => native.listen('stream', address, {}), {
          code: 'EADDRINUSE',
          syscall: 'bind',
          address: '127.0.0.1',
          port: address.family === 'inet' ? address.port : -1,
        });
      } finally {
        native.close(fd);
      }
      const a = native.listen('stream', LOOPBACK4, { reusePort: true });
      const b = native.listen('stream', native.localAddress(a), { reusePort: true });
      native.close(a);
      native.close(b);
    });

    test(
      'an abstract unix socket: the name comes back exactly; the peer is unnamed with credentials',
      {
        skip:
          name === 'real' && !hasPython
            ? 'python3 is needed as the client (node:net pads abstract names)'
            : false,
      },
      async () => {
        const { native, connect } = make();
        const address: SocketAddress = { family: 'unix', path: `@triggerd-test-${process.pid}-${name}` };
        const fd = native.listen('stream', address, {});
        try {
          assert.deepEqual(native.localAddress(fd), address);
          const client = await connect(fd, address);
          let c: ReturnType<NativeSocket['accept']>;
          await until('accept', () => (c = native.accept(fd)) !== undefined);
          assert.ok(c !== undefined);
          assert.deepEqual(c.local, address);
          assert.deepEqual(c.remote, { family: 'unix', path: '' });
          assert.equal(c.peerPid, client.pid);
          assert.equal(c.peerUid, process.getuid?.());
          assert.equal(c.peerGid, process.getgid?.());
          native.close(c.fd);
          client.hangUp();
        } finally {
          native.close(fd);
        }
      },
    );

    test('a datagram socket: level-triggered wake-ups, pause/resume, close inside the callback', async () => {
      const { native, send } = make();
      const fd = native.listen('dgram', LOOPBACK4, {});
      const address = native.localAddress(fd);
      let calls = 0;
      const watch: ReadinessWatch = native.watch(fd, () => {
        calls++;
        // Nothing is read, so it stays readable: only pausing stops the wake-ups.
        if (calls === 1) watch.pause();
        if (calls === 2) watch.close();
      });
      try {
        await tick();
        assert.equal(calls, 0, 'nothing pending yet');
        await send(fd, address);
        await until('first wake-up', () => calls === 1);
        await tick();
        assert.equal(calls, 1, 'paused');
        watch.resume();
        await until('second wake-up', () => calls === 2);
        await tick();
        assert.equal(calls, 2, 'closed');
        watch.close();
        watch.pause();
        watch.resume();
        assert.deepEqual(native.localAddress(fd), address, 'the fd stays open');
        assert.throws(
          () => native.accept(fd),
          (err: NodeJS.ErrnoException) => err.syscall === 'accept4',
        );
      } finally {
        native.close(fd);
      }
    });

    test('one watch per fd; close(fd) closes its watch', async () => {
      const { native, connect } = make();
      const fd = native.listen('stream', LOOPBACK4, {});
      let calls = 0;
      const watch = native.watch(fd, () => calls++);
      assert.throws(() => native.watch(fd, () => {}), { code: 'EEXIST' });
      native.close(fd);
      assert.equal(watch.closed, true);
      watch.close();
      await tick();
      assert.equal(calls, 0);
      void connect; // nothing can connect to a closed socket
    });

    test('a closed fd is EBADF everywhere', () => {
      const { native } = make();
      const fd = native.listen('stream', LOOPBACK4, {});
      native.close(fd);
      assert.throws(() => native.accept(fd), { code: 'EBADF', syscall: 'accept4' });
      assert.throws(() => native.localAddress(fd), { code: 'EBADF', syscall: 'getsockname' });
      assert.throws(() => native.close(fd), { code: 'EBADF', syscall: 'close' });
      assert.throws(() => native.watch(fd, () => {}), { code: 'EBADF', syscall: 'uv_poll_init' });
    });

    test('bad arguments are TypeErrors', () => {
      const { native } = make();
      const call = (method: keyof NativeSocket, args: unknown[]): void => {
        const f = native[method] as ((...a: unknown[]) => unknown) | undefined;
        assert.ok(f);
        f.apply(native, args);
      };
      const cases: Array<[keyof NativeSocket, unknown[]]> = [
        ['listen', []],
        ['listen', ['stream']],
        ['listen', ['nope', LOOPBACK4, {}]],
        ['listen', [1, LOOPBACK4, {}]],
        ['listen', ['stream', null, {}]],
        ['listen', ['stream', 'tcp://127.0.0.1:80', {}]],
        ['listen', ['stream', { family: 'inet' }, {}]],
        ['listen', ['stream', { family: 'inet', host: 'localhost', port: 1 }, {}]],
        ['listen', ['stream', { family: 'inet', host: '127.0.0.1', port: 70000 }, {}]],
        ['listen', ['stream', { family: 'inet', host: '127.0.0.1', port: -1 }, {}]],
        ['listen', ['stream', { family: 'inet', host: '127.0.0.1', port: 1.5 }, {}]],
        ['listen', ['stream', { family: 'inet', host: '127.0.0.1', port: '80' }, {}]],
        ['listen', ['stream', { family: 'unix', path: 'relative.sock' }, {}]],
        ['listen', ['stream', { family: 'unix', path: '/a\0b' }, {}]],
        ['listen', ['stream', { family: 'bogus' }, {}]],
        ['listen', ['stream', LOOPBACK4, 'x']],
        ['listen', ['stream', LOOPBACK4, { bindIPv6Only: 'maybe' }]],
        ['listen', ['stream', LOOPBACK4, { noDelay: 'yes' }]],
        ['listen', ['stream', LOOPBACK4, { backlog: -1 }]],
        ['listen', ['stream', LOOPBACK4, { socketMode: '0666' }]],
        ['listen', ['stream', LOOPBACK4, {}, 'not an array']],
        ['accept', []],
        ['accept', ['3']],
        ['accept', [-1]],
        ['accept', [1.5]],
        ['localAddress', [NaN]],
        ['close', [2 ** 31]],
        ['watch', []],
        ['watch', [0]],
        ['watch', [0, 'callback']],
        ['watch', ['0', () => {}]],
        ['openFifo', []],
        ['openFifo', [1, {}]],
        ['openFifo', ['relative', {}]],
        ['openFifo', ['/tmp/x', 'options']],
        ['openSpecial', []],
        ['openSpecial', ['dev/null']],
        ['openMessageQueue', []],
        ['openMessageQueue', ['noslash', 0o600]],
        ['openMessageQueue', ['/a/b', 0o600]],
        ['openMessageQueue', ['/a', '0600']],
      ];
      for (const [method, args] of cases) {
        assert.throws(() => call(method, args), TypeError, `${method}(${JSON.stringify(args)})`);
      }
    });
  });
}

contract('fake', fakeHarness);
contract('real', realHarness);

describe('socket addon on the real kernel', () => {
  const native = loadNativeSocket() as WithGetsockopt;

  /** Listens, connects a client, accepts; returns both ends and a cleanup. */
  async function acceptOne(
    address: SocketAddress,
    options = {},
    connectTo?: SocketAddress,
  ): Promise<{
    fd: number;
    local: SocketAddress;
    c: NonNullable<ReturnType<NativeSocket['accept']>>;
    client: net.Socket;
    done: () => void;
  }> {
    const fd = native.listen('stream', address, options);
    const local = native.localAddress(fd);
    const target = connectTo ?? local;
    const client = await connectReal(
      target.family === 'inet' || target.family === 'inet6'
        ? { ...target, port: local.family === 'inet' || local.family === 'inet6' ? local.port : 0 }
        : target,
    );
    client.on('error', () => {});
    let c: ReturnType<NativeSocket['accept']>;
    await until('accept', () => (c = native.accept(fd)) !== undefined);
    assert.ok(c !== undefined);
    const accepted = c;
    return {
      fd,
      local,
      c: accepted,
      client,
      done: () => {
        client.destroy();
        native.close(accepted.fd);
        native.close(fd);
      },
    };
  }

  test('accepted fds are blocking and close-on-exec; the remote port is the client’s', async () => {
    const { c, client, done } = await acceptOne(LOOPBACK4);
    try {
      assert.equal(fdFlags(c.fd) & O_NONBLOCK, 0, 'blocking');
      assert.equal(fdFlags(c.fd) & O_CLOEXEC, O_CLOEXEC, 'close-on-exec');
      assert.deepEqual(c.remote, { family: 'inet', host: '127.0.0.1', port: client.localPort });
      // The blocking fd works as a service's stdin/stdout would use it.
      client.write('ping');
      const buffer = Buffer.alloc(16);
      assert.equal(fs.readSync(c.fd, buffer, 0, 16, null), 4);
      assert.equal(buffer.subarray(0, 4).toString(), 'ping');
    } finally {
      done();
    }
  });

  test('listening fds are non-blocking and close-on-exec', () => {
    const fd = native.listen('stream', LOOPBACK4, {});
    try {
      assert.equal(fdFlags(fd) & O_NONBLOCK, O_NONBLOCK);
      assert.equal(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
    } finally {
      native.close(fd);
    }
  });

  test('TCP on ::1', async () => {
    const { c, local, client, done } = await acceptOne({ family: 'inet6', host: '::1', port: 0 });
    try {
      assert.equal(local.family, 'inet6');
      assert.deepEqual(c.local, local);
      assert.deepEqual(c.remote, { family: 'inet6', host: '::1', port: client.localPort });
    } finally {
      done();
    }
  });

  test('dual-stack [::] (BindIPv6Only=both): an IPv4 client is IPv4-mapped inet6', async () => {
    const { c, client, done } = await acceptOne(
      { family: 'inet6', host: '::', port: 0 },
      { bindIPv6Only: 'both' },
      { family: 'inet', host: '127.0.0.1', port: 0 },
    );
    try {
      assert.equal(native.getsockoptInt(c.fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
      assert.deepEqual(c.remote, { family: 'inet6', host: '::ffff:127.0.0.1', port: client.localPort });
      assert.equal(c.local.family === 'inet6' && c.local.host, '::ffff:127.0.0.1');
    } finally {
      done();
    }
  });

  test('BindIPv6Only=ipv6-only refuses an IPv4 client', async () => {
    const fd = native.listen(
      'stream',
      { family: 'inet6', host: '::', port: 0 },
      { bindIPv6Only: 'ipv6-only' },
    );
    try {
      assert.equal(native.getsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
      const local = native.localAddress(fd);
      const port = local.family === 'inet6' ? local.port : 0;
      await assert.rejects(connectReal({ family: 'inet', host: '127.0.0.1', port }), {
        code: 'ECONNREFUSED',
      });
    } finally {
      native.close(fd);
    }
  });

  test('every option reaches the socket (read back with getsockopt)', () => {
    const options = {
      backlog: 7,
      reusePort: true,
      freeBind: true,
      keepAlive: true,
      keepAliveTimeSec: 77,
      keepAliveIntervalSec: 11,
      keepAliveProbes: 5,
      noDelay: true,
      deferAcceptSec: 3,
      priority: 4,
      receiveBuffer: 65536,
      sendBuffer: 65536,
      ipTos: 0x10,
      ipTtl: 42,
      broadcast: true,
      bindToDevice: 'lo',
      ...(isRoot ? { mark: 1234, transparent: true } : {}),
    };
    const fd = native.listen('stream', LOOPBACK4, options);
    const get = (level: number, name: number): number => native.getsockoptInt(fd, level, name);
    try {
      assert.equal(get(SOL_SOCKET, SO_ACCEPTCONN), 1);
      assert.equal(get(SOL_SOCKET, SO_REUSEADDR), 1, 'SO_REUSEADDR on inet stream');
      assert.equal(get(SOL_SOCKET, SO_REUSEPORT), 1);
      assert.equal(get(IPPROTO_IP, IP_FREEBIND), 1);
      assert.equal(get(SOL_SOCKET, SO_KEEPALIVE), 1);
      assert.equal(get(IPPROTO_TCP, TCP_KEEPIDLE), 77);
      assert.equal(get(IPPROTO_TCP, TCP_KEEPINTVL), 11);
      assert.equal(get(IPPROTO_TCP, TCP_KEEPCNT), 5);
      assert.equal(get(IPPROTO_TCP, TCP_NODELAY), 1);
      // The kernel keeps TCP_DEFER_ACCEPT as a retransmission count and rounds up when asked.
      assert.ok(get(IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 3);
      assert.equal(get(SOL_SOCKET, SO_PRIORITY), 4, 'Priority= wins over what IPTOS= implies');
      // The kernel doubles what it is given (and FORCE lets root pass rmem_max).
      assert.ok(get(SOL_SOCKET, SO_RCVBUF) >= 65536);
      assert.ok(get(SOL_SOCKET, SO_SNDBUF) >= 65536);
      assert.equal(get(IPPROTO_IP, IP_TOS), 0x10);
      assert.equal(get(IPPROTO_IP, IP_TTL), 42);
      assert.equal(get(SOL_SOCKET, SO_BROADCAST), 1);
      assert.equal(get(SOL_SOCKET, SO_BINDTOIFINDEX), 1, 'bound to lo (ifindex 1)');
      if (isRoot) {
        assert.equal(get(SOL_SOCKET, SO_MARK), 1234);
        assert.equal(get(IPPROTO_IP, IP_TRANSPARENT), 1);
      }
      // Backlog: ss shows a listening socket's backlog as Send-Q.
      const local = native.localAddress(fd);
      const ss = spawnSync('ss', ['-Hltn', `sport = :${local.family === 'inet' ? local.port : 0}`], {
        encoding: 'utf8',
      });
      if (ss.status === 0) assert.match(ss.stdout, /^LISTEN\s+0\s+7\s/m);
    } finally {
      native.close(fd);
    }
  });

  test('inet6 options: IPV6_TCLASS, IPV6_UNICAST_HOPS, IPV6_FREEBIND', () => {
    const fd = native.listen(
      'dgram',
      { family: 'inet6', host: '::1', port: 0 },
      { ipTos: 0x20, ipTtl: 9, freeBind: true },
    );
    try {
      assert.equal(native.getsockoptInt(fd, IPPROTO_IPV6, IPV6_TCLASS), 0x20);
      assert.equal(native.getsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 9);
      assert.equal(native.getsockoptInt(fd, IPPROTO_IPV6, IPV6_FREEBIND), 1);
      assert.equal(native.getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR), 0, 'not for datagrams');
    } finally {
      native.close(fd);
    }
  });

  test('an option the kernel refuses: an error naming it, or a warning when warnings are collected', () => {
    const address: SocketAddress = { family: 'unix', path: path.join(work, 'nodelay.sock') };
    assert.throws(() => native.listen('stream', address, { noDelay: true }), {
      syscall: 'setsockopt',
      option: 'noDelay',
    });
    assert.equal(fs.existsSync(address.path), false, 'nothing bound');
    const warnings: SocketOptionError[] = [];
    const fd = native.listen(
      'stream',
      address,
      { noDelay: true, passCredentials: true, passSecurity: true },
      warnings,
    );
    try {
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.option, 'noDelay');
      assert.equal(warnings[0]?.syscall, 'setsockopt');
      assert.equal(typeof warnings[0]?.code, 'string');
      assert.equal(native.getsockoptInt(fd, SOL_SOCKET, SO_PASSCRED), 1, 'the other options still apply');
      assert.equal(native.getsockoptInt(fd, SOL_SOCKET, SO_PASSSEC), 1);
    } finally {
      native.close(fd);
    }
    // bindToDevice stays fatal, as in systemd.
    assert.throws(() => native.listen('stream', LOOPBACK4, { bindToDevice: 'nosuchdev0' }, []), {
      code: 'ENODEV',
      syscall: 'setsockopt',
      option: 'bindToDevice',
    });
  });

  test('a unix path in a missing directory: parents with DirectoryMode, SocketMode, owner', async () => {
    const dir = path.join(work, 'missing', 'deeper');
    const socketPath = path.join(dir, 'app.sock');
    const owner = isRoot ? { uid: 65534, gid: 65534 } : {};
    const fd = native.listen(
      'stream',
      { family: 'unix', path: socketPath },
      { directoryMode: 0o710, socketMode: 0o620, ...owner },
    );
    try {
      assert.equal(fs.statSync(path.join(work, 'missing')).mode & 0o7777, 0o710);
      assert.equal(fs.statSync(dir).mode & 0o7777, 0o710);
      const st = fs.lstatSync(socketPath);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o7777, 0o620);
      if (isRoot) assert.deepEqual([st.uid, st.gid], [65534, 65534]);
      assert.deepEqual(native.localAddress(fd), { family: 'unix', path: socketPath });
      const client = await connectReal({ family: 'unix', path: socketPath });
      let c: ReturnType<NativeSocket['accept']>;
      await until('accept', () => (c = native.accept(fd)) !== undefined);
      assert.ok(c !== undefined);
      assert.equal(c.peerPid, process.pid);
      native.close(c.fd);
      client.destroy();
    } finally {
      native.close(fd);
    }
  });

  test('defaults: SocketMode 0666, DirectoryMode 0755, whatever the umask', () => {
    const socketPath = path.join(work, 'defaults', 'd.sock');
    const saved = process.umask(0o077);
    let fd: number;
    try {
      fd = native.listen('stream', { family: 'unix', path: socketPath }, {});
    } finally {
      process.umask(saved);
    }
    try {
      assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o7777, 0o755);
      assert.equal(fs.statSync(socketPath).mode & 0o7777, 0o666);
    } finally {
      native.close(fd);
    }
  });

  test('a stale socket file is replaced; a regular file at the path is EADDRINUSE and kept', () => {
    const socketPath = path.join(work, 'stale.sock');
    const first = native.listen('stream', { family: 'unix', path: socketPath }, {});
    native.close(first);
    assert.ok(fs.lstatSync(socketPath).isSocket(), 'left behind');
    const second = native.listen('stream', { family: 'unix', path: socketPath }, {});
    native.close(second);

    const filePath = path.join(work, 'not-a-socket');
    fs.writeFileSync(filePath, 'keep me');
    assert.throws(() => native.listen('stream', { family: 'unix', path: filePath }, {}), {
      code: 'EADDRINUSE',
      syscall: 'bind',
      path: filePath,
    });
    assert.equal(fs.readFileSync(filePath, 'utf8'), 'keep me');
  });

  test('a parent that cannot be created is mkdir with the directory as path', () => {
    const blocker = path.join(work, 'blocker');
    fs.writeFileSync(blocker, '');
    assert.throws(
      () => native.listen('stream', { family: 'unix', path: path.join(blocker, 'sub', 'x.sock') }, {}),
      {
        code: 'ENOTDIR',
        syscall: 'mkdir',
        path: path.join(blocker, 'sub'),
      },
    );
  });

  test('a datagram socket receives (read from the fd it handed over)', async () => {
    const fd = native.listen('dgram', LOOPBACK4, {});
    const address = native.localAddress(fd);
    let woke = false;
    const watch = native.watch(fd, () => {
      woke = true;
      watch.pause();
    });
    try {
      await sendUdp(address, 'hello datagram');
      await until('readable', () => woke);
      const buffer = Buffer.alloc(64);
      const n = fs.readSync(fd, buffer, 0, 64, null);
      assert.equal(buffer.subarray(0, n).toString(), 'hello datagram');
    } finally {
      watch.close();
      native.close(fd);
    }
  });

  test(
    'a seqpacket unix socket accepts and keeps message boundaries',
    { skip: hasPython ? false : 'python3 is needed as the seqpacket client' },
    async () => {
      const socketPath = path.join(work, 'seq.sock');
      const fd = native.listen('seqpacket', { family: 'unix', path: socketPath }, {});
      const client = spawn('python3', [
        '-c',
        `import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\ns.connect(sys.argv[1])\ns.send(b"one")\ns.send(b"two")\ns.recv(1)`,
        socketPath,
      ]);
      try {
        let c: ReturnType<NativeSocket['accept']>;
        await until('accept', () => (c = native.accept(fd)) !== undefined);
        assert.ok(c !== undefined);
        assert.equal(c.remote.family, 'unix');
        const buffer = Buffer.alloc(64);
        assert.equal(fs.readSync(c.fd, buffer, 0, 64, null), 3, 'one message per read');
        assert.equal(fs.readSync(c.fd, buffer, 0, 64, null), 3);
        fs.writeSync(c.fd, 'k');
        native.close(c.fd);
        await new Promise((resolve) => client.once('exit', resolve));
      } finally {
        client.kill();
        native.close(fd);
      }
    },
  );

  test('ListenFIFO: created in a missing directory with the exact mode, readable when written', async () => {
    const fifo = path.join(work, 'fifo-dir', 'control');
    const fd = native.openFifo(fifo, { socketMode: 0o620, directoryMode: 0o700 });
    let woke = 0;
    const watch = native.watch(fd, () => {
      woke++;
      watch.pause();
    });
    try {
      const st = fs.statSync(fifo);
      assert.ok(st.isFIFO());
      assert.equal(st.mode & 0o7777, 0o620);
      assert.equal(fs.statSync(path.dirname(fifo)).mode & 0o7777, 0o700);
      assert.equal(fdFlags(fd) & O_NONBLOCK, O_NONBLOCK);
      fs.writeFileSync(fifo, 'fifo data');
      await until('readable', () => woke === 1);
      const buffer = Buffer.alloc(64);
      const n = fs.readSync(fd, buffer, 0, 64, null);
      assert.equal(buffer.subarray(0, n).toString(), 'fifo data');
      // Opening an existing FIFO again reuses it.
      const again = native.openFifo(fifo, { socketMode: 0o600 });
      assert.equal(fs.statSync(fifo).mode & 0o7777, 0o600);
      native.close(again);
      // Something else at the path is refused.
      const file = path.join(work, 'plain-file');
      fs.writeFileSync(file, '');
      assert.throws(() => native.openFifo(file, {}), { code: 'EEXIST', path: file });
    } finally {
      watch.close();
      native.close(fd);
    }
  });

  test('ListenSpecial: /dev/null read-write; a directory or a missing file is an error', () => {
    const fd = native.openSpecial('/dev/null');
    try {
      assert.ok(fs.fstatSync(fd).isCharacterDevice());
      assert.equal(fdFlags(fd) & 0o3, 2, 'O_RDWR');
      assert.equal(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
    } finally {
      native.close(fd);
    }
    const file = path.join(work, 'special-file');
    fs.writeFileSync(file, 'x');
    const regular = native.openSpecial(file);
    native.close(regular);
    assert.throws(() => native.openSpecial(work), { code: 'EISDIR', syscall: 'open', path: work });
    const fifo = path.join(work, 'special-fifo');
    native.close(native.openFifo(fifo, {}));
    assert.throws(() => native.openSpecial(fifo), { code: 'EINVAL', syscall: 'fstat', path: fifo });
    assert.throws(() => native.openSpecial(path.join(work, 'no-such-file')), {
      code: 'ENOENT',
      syscall: 'open',
    });
    if (!isRoot) return;
    // Read-only when read-write is refused (a file only its owner may write; we are someone else).
    const readOnly = path.join(work, 'read-only');
    fs.writeFileSync(readOnly, 'x', { mode: 0o444 });
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '-e',
        `
      const s = require(${JSON.stringify(addonFile())});
      const fd = s.openSpecial(${JSON.stringify(readOnly)});
      console.log(require('fs').readFileSync('/proc/self/fdinfo/' + fd, 'utf8').match(/flags:\\s+(\\d+)/)[1]);
    `,
      ],
      { encoding: 'utf8' },
    );
    if (r.status === 0) assert.equal(parseInt(r.stdout.trim(), 8) & 0o3, 0, 'O_RDONLY');
  });

  const mqName = `/triggerd-test-${process.pid}`;
  const mqProbe = (() => {
    try {
      const fd = native.openMessageQueue(`${mqName}-probe`, 0o600);
      native.close(fd);
      native.unlinkMessageQueue?.(`${mqName}-probe`);
      return false;
    } catch (err) {
      return `POSIX message queues unavailable: ${(err as Error).message}`;
    }
  })();
  test('ListenMessageQueue: created with the exact mode, unlinked again', { skip: mqProbe }, () => {
    const saved = process.umask(0o077);
    let fd: number;
    try {
      fd = native.openMessageQueue(mqName, 0o640, 4, 128);
    } finally {
      process.umask(saved);
    }
    try {
      assert.equal(fs.fstatSync(fd).mode & 0o7777, 0o640);
      // On Linux reading the descriptor gives its state line.
      assert.match(fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8'), /QSIZE:0/);
      const again = native.openMessageQueue(mqName, 0o640);
      native.close(again);
    } finally {
      native.close(fd);
      native.unlinkMessageQueue?.(mqName);
    }
    assert.throws(() => native.unlinkMessageQueue?.(mqName), {
      code: 'ENOENT',
      syscall: 'mq_unlink',
      path: mqName,
    });
    // More messages than msg_max (10 unprivileged) is refused by the kernel.
    if (!isRoot)
      assert.throws(() => native.openMessageQueue(`${mqName}-big`, 0o600, 100000, 128), {
        syscall: 'mq_open',
      });
  });

  test('ListenNetlink: kobject-uevent (15), group 0 and group 1', () => {
    const fd = native.listen('dgram', { family: 'netlink', protocol: 15, group: 0 }, {});
    try {
      const address = native.localAddress(fd);
      assert.equal(address.family, 'netlink');
      assert.ok(address.family === 'netlink');
      assert.equal(address.protocol, 15);
      assert.equal(address.group, 0);
      assert.ok((address.portId ?? 0) !== 0, 'the kernel assigned a port id');
      assert.equal(native.getsockoptInt(fd, SOL_SOCKET, SO_TYPE), SOCK_RAW);
    } finally {
      native.close(fd);
    }
    const grouped = native.listen(
      'dgram',
      { family: 'netlink', protocol: 15, group: 1 },
      { passCredentials: true },
    );
    try {
      const address = native.localAddress(grouped);
      assert.ok(address.family === 'netlink' && address.group === 1);
    } finally {
      native.close(grouped);
    }
  });

  const vsockProbe = (() => {
    try {
      native.close(native.listen('stream', { family: 'vsock', cid: 0xffffffff, port: 0xffffffff }, {}));
      return false;
    } catch (err) {
      return `AF_VSOCK unavailable: ${(err as Error).message}`;
    }
  })();
  test('vsock: VMADDR_CID_ANY with a kernel-chosen port', { skip: vsockProbe }, () => {
    const fd = native.listen('stream', { family: 'vsock', cid: 0xffffffff, port: 0xffffffff }, {});
    try {
      const address = native.localAddress(fd);
      assert.ok(address.family === 'vsock');
      assert.equal(address.cid, 0xffffffff);
      assert.ok(address.port !== 0xffffffff);
      assert.equal(native.accept(fd), undefined);
    } finally {
      native.close(fd);
    }
  });

  const portStart = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  const privilegedSkip =
    portStart <= 1
      ? `net.ipv4.ip_unprivileged_port_start is ${portStart}: no port is privileged here`
      : isRoot && spawnSync('setpriv', ['--version']).status !== 0
        ? 'running as root and setpriv is missing'
        : false;
  test('a privileged port as an ordinary user is EACCES from bind', { skip: privilegedSkip }, () => {
    if (!isRoot) {
      assert.throws(() => native.listen('stream', { family: 'inet', host: '127.0.0.1', port: 1 }, {}), {
        code: 'EACCES',
        syscall: 'bind',
      });
      return;
    }
    const code = `
      const s = require(${JSON.stringify(addonFile())});
      try { s.listen('stream', { family: 'inet', host: '127.0.0.1', port: 1 }, {}); console.log('{}'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, syscall: e.syscall, port: e.port, uid: process.getuid() })); }
    `;
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { code: 'EACCES', syscall: 'bind', port: 1, uid: 65534 });
  });

  test('watch abuse: a closed fd, a regular file, close(fd) inside the callback, a throwing callback', async () => {
    // A closed fd.
    const closed = native.listen('stream', LOOPBACK4, {});
    native.close(closed);
    assert.throws(() => native.watch(closed, () => {}), { code: 'EBADF', syscall: 'uv_poll_init' });
    // A regular file cannot be polled.
    const fileFd = fs.openSync(path.join(work, 'regular'), 'w');
    try {
      assert.throws(() => native.watch(fileFd, () => {}), { code: 'EPERM', syscall: 'uv_poll_init' });
    } finally {
      fs.closeSync(fileFd);
    }

    // close(fd) inside the callback: no more calls, and the number is free again.
    const fd = native.listen('stream', LOOPBACK4, {});
    const address = native.localAddress(fd);
    let calls = 0;
    const watch = native.watch(fd, () => {
      calls++;
      native.close(fd);
    });
    // Not awaited: the listener may close before the client sees its handshake complete.
    const client = net.connect({ host: '127.0.0.1', port: address.family === 'inet' ? address.port : 0 });
    client.on('error', () => {});
    await until('callback', () => calls === 1);
    await tick();
    assert.equal(calls, 1);
    assert.equal(watch.closed, true);
    client.destroy();

    // A throwing callback becomes an uncaught exception; the watch keeps working.
    const saved = process.listeners('uncaughtException');
    const uncaught: unknown[] = [];
    const listener = (err: unknown): void => {
      uncaught.push(err);
    };
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', listener);
    const fd2 = native.listen('stream', LOOPBACK4, {});
    let thrown = 0;
    const w2 = native.watch(fd2, () => {
      thrown++;
      const c = native.accept(fd2);
      if (c !== undefined) native.close(c.fd);
      throw new Error('boom');
    });
    try {
      const a2 = native.localAddress(fd2);
      const c1 = await connectReal(a2);
      await until('first', () => thrown === 1);
      const c2 = await connectReal(a2);
      await until('second', () => thrown === 2);
      assert.equal(uncaught.length, 2);
      c1.destroy();
      c2.destroy();
    } finally {
      w2.close();
      native.close(fd2);
      process.removeListener('uncaughtException', listener);
      for (const l of saved) process.on('uncaughtException', l);
    }
  });

  test('an fd closed behind the watch’s back: one last wake-up, then the watch closes itself', async () => {
    const fd = native.listen('dgram', LOOPBACK4, {});
    const address = native.localAddress(fd);
    let calls = 0;
    const watch = native.watch(fd, () => {
      calls++;
      fs.closeSync(fd); // not native.close: the watch must notice on its own
    });
    await sendUdp(address);
    await until('wake-up', () => calls === 1);
    await tick();
    assert.equal(calls, 1);
    assert.equal(watch.closed, true);
  });

  test('the ReadinessWatch constructor cannot be called from JavaScript', () => {
    const fd = native.listen('stream', LOOPBACK4, {});
    const watch = native.watch(fd, () => {});
    try {
      const ctor = watch.constructor as new (...a: unknown[]) => unknown;
      assert.throws(() => new ctor(() => {}), { code: 'ERR_ILLEGAL_CONSTRUCTOR' });
    } finally {
      native.close(fd);
    }
  });

  test('accept on a socket that does not listen throws with a code; EAGAIN is undefined', () => {
    const fd = native.listen('dgram', LOOPBACK4, {});
    try {
      // EOPNOTSUPP, which libuv (and so Node) calls ENOTSUP: the same number on Linux.
      assert.throws(() => native.accept(fd), { code: 'ENOTSUP', syscall: 'accept4' });
    } finally {
      native.close(fd);
    }
    const listening = native.listen('stream', LOOPBACK4, {});
    try {
      assert.equal(native.accept(listening), undefined);
    } finally {
      native.close(listening);
    }
  });

  test('a worker that ends with a watch open exits cleanly', async () => {
    const code = `
      const { loadNativeSocket } = require(${JSON.stringify(SOCKET_MODULE)});
      const s = loadNativeSocket();
      const fd = s.listen('stream', { family: 'inet', host: '127.0.0.1', port: 0 }, {});
      s.watch(fd, () => {});
      require('node:worker_threads').parentPort.postMessage('ready');
    `;
    const worker = new Worker(code, { eval: true });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    // The active watch keeps the worker alive; terminate must close it and not crash.
    assert.equal(await worker.terminate(), 1);
  });

  test('flood: 2,000 connections, accepted through watch + accept (at most 64 per wake-up), none lost', async () => {
    const total = 2000;
    const fd = native.listen('stream', LOOPBACK4, {});
    const address = native.localAddress(fd);
    let accepted = 0;
    let wakeUps = 0;
    const watch = native.watch(fd, () => {
      wakeUps++;
      for (let i = 0; i < 64; i++) {
        const c = native.accept(fd);
        if (c === undefined) break;
        accepted++;
        native.close(c.fd);
      }
    });
    let connected = 0;
    const failures: string[] = [];
    const clients: net.Socket[] = [];
    try {
      const started = Date.now();
      // In waves, so the test does not need 4,000 fds at once.
      for (let wave = 0; wave < total; wave += 250) {
        const batch: Promise<void>[] = [];
        for (let i = wave; i < Math.min(total, wave + 250); i++) {
          batch.push(
            connectReal(address).then(
              (s) => {
                connected++;
                s.on('error', () => {});
                clients.push(s);
              },
              (err: NodeJS.ErrnoException) => {
                failures.push(err.code ?? String(err));
              },
            ),
          );
        }
        await Promise.all(batch);
        for (const s of clients.splice(0)) s.destroy();
      }
      await until('all accepted', () => accepted === total, 20000);
      await tick(50);
      assert.deepEqual(failures, []);
      assert.equal(connected, total);
      assert.equal(accepted, total);
      assert.ok(wakeUps >= total / 64, `${wakeUps} wake-ups`);
      console.log(
        `# flood: ${total} connections accepted in ${Date.now() - started} ms, ${wakeUps} wake-ups`,
      );
    } finally {
      for (const s of clients) s.destroy();
      watch.close();
      native.close(fd);
    }
  });
});

/** The built addon file, for child processes that load it directly. */
function addonFile(): string {
  const found = addonCandidates('triggerd_socket.node').find((candidate) => fs.existsSync(candidate));
  assert.ok(found, 'triggerd_socket.node is built');
  return found;
}
