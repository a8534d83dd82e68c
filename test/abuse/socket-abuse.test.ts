// Abuse of triggerd_socket.node: listen (every address family), openFifo, openSpecial,
// openMessageQueue, unlinkMessageQueue, accept, localAddress, watch, close, getsockoptInt and the
// ReadinessWatch, through the harness in test/helpers/abuse.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abuseCall,
  abuseHandle,
  type Arg,
  assertNoFdLeak,
  assertProcessUsable,
  boolArg,
  collectGarbage,
  enumArg,
  expectRefused,
  exported,
  fdArg,
  Findings,
  functionArg,
  HUGE_STRING,
  INT32_MAX,
  intArg,
  isContractError,
  loadRaw,
  notStrings,
  objectArg,
  openFds,
  scratchDir,
  stringArg,
  UINT32_MAX,
  unopenedFds,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_socket.node');

interface Watch {
  close(): void;
  pause(): void;
}

/** Every SocketOptions key, each with its kind; `{}` is the valid object. */
const OPTION_FIELDS: readonly Arg[] = [
  intArg('backlog', 0, INT32_MAX, () => 16, true),
  enumArg('bindIPv6Only', ['default', 'both', 'ipv6-only'], () => 'default', true),
  ...[
    'freeBind',
    'transparent',
    'reusePort',
    'keepAlive',
    'noDelay',
    'passCredentials',
    'passSecurity',
    'broadcast',
  ].map((name) => boolArg(name, () => false, true)),
  ...[
    'keepAliveTimeSec',
    'keepAliveIntervalSec',
    'keepAliveProbes',
    'deferAcceptSec',
    'priority',
    'receiveBuffer',
    'sendBuffer',
  ].map((name) => intArg(name, 0, INT32_MAX, () => 1, true)),
  intArg('ipTos', 0, 255, () => 0, true),
  intArg('ipTtl', 0, 255, () => 64, true),
  intArg('mark', 0, UINT32_MAX, () => 0, true),
  intArg('socketMode', 0, 0o7777, () => 0o666, true),
  intArg('directoryMode', 0, 0o7777, () => 0o755, true),
  intArg('uid', 0, UINT32_MAX - 1, () => 0, true),
  intArg('gid', 0, UINT32_MAX - 1, () => 0, true),
];

function options(valid: () => Record<string, unknown> = () => ({})): Arg {
  const arg = objectArg('options', valid, OPTION_FIELDS);
  // undefined means {}; an enum field that is absent is fine too.
  return { ...arg, optional: true, bad: () => [null, 1, 'options', true, 1n, Symbol('o'), [], () => ({})] };
}

function queueNameArg(name: string, valid: () => string): Arg {
  return {
    name,
    valid,
    bad: () => [...notStrings(), '', 'noslash', '/', '/a/b', '/a\0b', '/' + 'q'.repeat(256)],
  };
}

test('socket: every export refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('socket');
  let count = 0;
  const fresh = (): string => path.join(dir, `s${count++}`);
  const closeFd = (fd: unknown): void => n.close(fd) as void;
  const listening = n.listen('stream', { family: 'unix', path: fresh() }, {}) as number;
  const datagram = n.listen('dgram', { family: 'unix', path: fresh() }, {}) as number;
  const nullFd = fs.openSync('/dev/null', 'r');
  const queues: string[] = [];
  try {
    const families: [string, () => Record<string, unknown>, Arg[]][] = [
      [
        'unix',
        () => ({ family: 'unix', path: fresh() }),
        [stringArg('path', fresh, { absolute: true, abstract: true })],
      ],
      [
        'inet',
        () => ({ family: 'inet', host: '127.0.0.1', port: 0 }),
        [stringArg('host', () => '127.0.0.1'), intArg('port', 0, 65535, () => 0)],
      ],
      [
        'inet6',
        () => ({ family: 'inet6', host: '::1', port: 0, scopeId: 0 }),
        [
          stringArg('host', () => '::1'),
          intArg('port', 0, 65535, () => 0),
          intArg('scopeId', 0, UINT32_MAX, () => 0, true),
        ],
      ],
      [
        'netlink',
        () => ({ family: 'netlink', protocol: 15, group: 0 }),
        [intArg('protocol', 0, 31, () => 15), intArg('group', 0, UINT32_MAX, () => 0)],
      ],
    ];
    for (const [family, valid, fields] of families) {
      const address = objectArg('address', valid, [enumArg('family', [family], () => family), ...fields]);
      await abuseCall(findings, {
        label: `listen(${family})`,
        call: exported(n, 'listen'),
        args: [
          enumArg('kind', ['stream', 'dgram', 'seqpacket'], () =>
            family === 'netlink' ? 'dgram' : 'stream',
          ),
          address,
          options(),
          { name: 'warnings', valid: () => [], optional: true, bad: () => [null, 1, 'warnings', {}, true] },
        ],
        cleanup: closeFd,
      });
    }
    // Addresses the kernel refuses: a vsock nobody has, a port in use, a missing directory.
    const inet = n.listen('stream', { family: 'inet', host: '127.0.0.1', port: 0 }, {}) as number;
    try {
      const port = (n.localAddress(inet) as { port: number }).port;
      const refused: [string, unknown, unknown][] = [
        ['a port in use', { family: 'inet', host: '127.0.0.1', port }, {}],
        ['a vsock cid nobody has', { family: 'vsock', cid: 0x7fffffff, port: 1 }, {}],
        [
          'a device that does not exist',
          { family: 'inet', host: '127.0.0.1', port: 0 },
          { bindToDevice: 'nonexistent0' },
        ],
        ['a bound file that is not a socket', { family: 'unix', path: '/dev/null' }, {}],
        [
          'a receive buffer of INT32_MAX, bound in a file',
          { family: 'unix', path: path.join('/dev/null', 'x') },
          { receiveBuffer: INT32_MAX },
        ],
      ];
      for (const [what, address, opts] of refused) {
        await expectRefused(
          findings,
          `listen(${what})`,
          { call: () => n.listen('stream', address, opts), cleanup: closeFd },
          [],
        );
      }
    } finally {
      n.close(inet);
    }
    await abuseCall(findings, {
      label: 'openFifo',
      call: exported(n, 'openFifo'),
      args: [stringArg('path', fresh, { absolute: true }), options()],
      cleanup: closeFd,
    });
    await abuseCall(findings, {
      label: 'openSpecial',
      call: exported(n, 'openSpecial'),
      args: [stringArg('path', () => '/dev/null', { absolute: true })],
      cleanup: closeFd,
    });
    for (const where of [dir, path.join(dir, 'missing'), HUGE_STRING]) {
      await expectRefused(
        findings,
        `openSpecial(${where.slice(0, 40)})`,
        { call: () => n.openSpecial(where), cleanup: closeFd },
        [],
      );
    }
    const queue = (): string => {
      const name = `/triggerd-abuse-${process.pid}-${count++}`;
      queues.push(name);
      return name;
    };
    await abuseCall(findings, {
      label: 'openMessageQueue',
      call: exported(n, 'openMessageQueue'),
      args: [
        queueNameArg('name', queue),
        intArg('mode', 0, 0o7777, () => 0o600),
        intArg('maxMessages', 0, INT32_MAX, () => 1, true),
        intArg('messageSize', 0, INT32_MAX, () => 8, true),
      ],
      cleanup: (fd) => {
        closeFd(fd);
        try {
          n.unlinkMessageQueue(queues[queues.length - 1]);
        } catch {
          // unlinked in the finally below
        }
      },
    });
    await expectRefused(
      findings,
      'openMessageQueue(INT32_MAX messages of INT32_MAX bytes)',
      { call: () => n.openMessageQueue(queue(), 0o600, INT32_MAX, INT32_MAX), cleanup: closeFd },
      [],
    );
    await abuseCall(findings, {
      label: 'unlinkMessageQueue',
      call: exported(n, 'unlinkMessageQueue'),
      args: [
        queueNameArg('name', () => {
          const name = queue();
          n.close(n.openMessageQueue(name, 0o600, 1, 8));
          return name;
        }),
      ],
    });
    await expectRefused(
      findings,
      'unlinkMessageQueue(missing)',
      { call: () => n.unlinkMessageQueue(queue()) },
      [],
    );
    for (const name of ['accept', 'localAddress']) {
      await abuseCall(findings, {
        label: name,
        call: exported(n, name),
        args: [fdArg('fd', () => listening)],
      });
      for (const fd of [...unopenedFds(), nullFd]) {
        await expectRefused(findings, `${name}(${fd})`, { call: () => n[name](fd) }, []);
      }
    }
    await expectRefused(findings, 'accept(a datagram socket)', { call: () => n.accept(datagram) }, []);
    await abuseCall(findings, {
      label: 'watch',
      call: exported(n, 'watch'),
      args: [fdArg('fd', () => listening), functionArg('onReadable')],
      cleanup: (watch) => (watch as Watch).close(),
    });
    const regular = fs.openSync(path.join(dir, 'regular'), 'w');
    try {
      for (const fd of [...unopenedFds(), regular]) {
        await expectRefused(
          findings,
          `watch(${fd})`,
          { call: () => n.watch(fd, () => undefined), cleanup: (w) => (w as Watch).close() },
          [],
        );
      }
    } finally {
      fs.closeSync(regular);
    }
    const first = n.watch(listening, () => undefined) as Watch;
    await expectRefused(
      findings,
      'watch(the same fd twice)',
      { call: () => n.watch(listening, () => undefined), cleanup: (w) => (w as Watch).close() },
      [],
    );
    first.close();
    await abuseCall(findings, {
      label: 'close',
      call: exported(n, 'close'),
      args: [fdArg('fd', () => n.listen('dgram', { family: 'unix', path: fresh() }, {}) as number)],
    });
    for (const fd of unopenedFds()) {
      await expectRefused(findings, `close(${fd})`, { call: () => n.close(fd) }, []);
    }
    await abuseCall(findings, {
      label: 'getsockoptInt',
      call: exported(n, 'getsockoptInt'),
      args: [
        fdArg('fd', () => listening),
        intArg('level', 0, INT32_MAX, () => 1),
        intArg('name', 0, INT32_MAX, () => 3),
      ],
    });
    // Every option number at the levels a socket has: a value or a system error, nothing else.
    for (const level of [0, 1, 6, 41, 263, 270, INT32_MAX]) {
      for (let name = 0; name < 80; name++) {
        findings.calls++;
        try {
          const value = n.getsockoptInt(listening, level, name);
          assert.equal(typeof value, 'number');
          // SO_PEERPIDFD (77, Linux 6.5+) installs a new pidfd and returns its number.
          if (level === 1 && name === 77 && (value as number) > 2) fs.closeSync(value as number);
        } catch (error) {
          if (!isContractError(error))
            findings.add(`getsockoptInt(${level}, ${name}) threw ${String(error)}`);
        }
      }
    }
  } finally {
    n.close(listening);
    n.close(datagram);
    fs.closeSync(nullFd);
    for (const name of queues) {
      try {
        n.unlinkMessageQueue(name);
      } catch {
        // never made, or unlinked by the test
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'socket exports');
  await assertProcessUsable();
});

test(
  'socket: ReadinessWatch methods, closed, on foreign receivers, constructed by hand',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('socket-watch');
    const fds: number[] = [];
    try {
      await abuseHandle(
        findings,
        {
          label: 'ReadinessWatch',
          open: () => {
            const fd = n.listen(
              'stream',
              { family: 'unix', path: path.join(dir, `w${fds.length}`) },
              {},
            ) as number;
            fds.push(fd);
            return n.watch(fd, () => undefined) as Watch;
          },
          methods: {
            pause: { args: [], afterClose: 'quiet' },
            resume: { args: [], afterClose: 'quiet' },
            ref: { args: [], afterClose: 'quiet' },
            unref: { args: [], afterClose: 'quiet' },
          },
          getters: { fd: 'value', closed: 'value', paused: 'value' },
        },
        [Buffer.alloc(4), new Set()],
      );
      // close(fd) through the addon closes the watch first; the watch then reads as closed.
      const fd = n.listen('stream', { family: 'unix', path: path.join(dir, 'closing') }, {}) as number;
      const watch = n.watch(fd, () => undefined) as Watch & { closed: boolean };
      n.close(fd);
      assert.equal(watch.closed, true);
      watch.close();
      watch.pause();
    } finally {
      for (const fd of fds) n.close(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'ReadinessWatch');
    await assertProcessUsable();
  },
);

test(
  'socket: watches dropped without close() stop watching when collected; the fd stays',
  { skip },
  async () => {
    const n = raw as RawExports;
    const dir = scratchDir('socket-gc');
    const fd = n.listen('stream', { family: 'unix', path: path.join(dir, 'gc') }, {}) as number;
    try {
      for (let i = 0; i < 20; i++) {
        (n.watch(fd, () => undefined) as Watch).pause();
        await collectGarbage();
      }
      // Collected: the registry no longer has it, so a new watch on the fd is allowed.
      const watch = n.watch(fd, () => undefined) as Watch;
      watch.close();
      assert.ok(fs.fstatSync(fd).isSocket());
    } finally {
      n.close(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assertProcessUsable();
  },
);
