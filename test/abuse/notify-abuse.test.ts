// Abuse of triggerd_notify.node: openNotifySocket, sendDatagram, closeFd, pipe and the
// NotifySocket they return, through the harness in test/helpers/abuse.ts; then the receive path
// with the datagrams that broke supervisors before (empty, exactly at and past the 4096-byte
// bound, huge, the most fds the kernel passes) and sockets dropped without close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidfdGetPid, type NotifyDatagram } from '../../src/native/notify-addon';
import {
  abuseCall,
  abuseHandle,
  arrayArg,
  assertNoFdLeak,
  assertProcessUsable,
  bufferArg,
  closedFd,
  collectGarbage,
  expectRefused,
  exported,
  fdArg,
  Findings,
  functionArg,
  HUGE_STRING,
  INT32_MAX,
  intArg,
  loadRaw,
  openFds,
  scratchDir,
  stringArg,
  unopenedFds,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_notify.node');

interface Socket {
  close(): void;
  pause(): void;
}

/** Every fd a batch hands over is closed, so the leak check sees only the addon's own. */
function closeHandedOver(n: RawExports, batch: unknown): void {
  for (const item of batch as NotifyDatagram[]) {
    for (const fd of item.fds) n.closeFd(fd);
    if (item.pidfd >= 0) n.closeFd(item.pidfd);
  }
}

function openSocket(
  n: RawExports,
  where: string,
  onBatch: (batch: NotifyDatagram[]) => void = () => undefined,
): Socket {
  return n.openNotifySocket(
    where,
    (batch: unknown) => {
      onBatch(batch as NotifyDatagram[]);
      closeHandedOver(n, batch);
    },
    () => undefined,
  ) as Socket;
}

test('notify: every export refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('notify');
  let count = 0;
  const fresh = (): string => path.join(dir, `s${count++}`);
  const receiver = openSocket(n, path.join(dir, 'receiver'));
  const passed = fs.openSync('/dev/null', 'r');
  try {
    await abuseCall(findings, {
      label: 'openNotifySocket',
      call: exported(n, 'openNotifySocket'),
      args: [
        stringArg('path', fresh, { absolute: true, abstract: true }),
        functionArg('onBatch'),
        functionArg('onError'),
        // A socket carried across a re-exec, to take over instead of binding: a socket fd only.
        {
          name: 'fd',
          valid: () => undefined,
          optional: true,
          bad: () => [...intArg('fd', 0, INT32_MAX, () => 0, true).bad(), ...unopenedFds(), passed],
        },
      ],
      cleanup: (socket) => (socket as Socket).close(),
    });
    // Paths the kernel refuses: too long for sun_path, a missing directory, a file already there.
    for (const where of [
      '/' + 'x'.repeat(107),
      '@' + 'x'.repeat(108),
      path.join(dir, 'missing', 's'),
      path.join(dir, 'receiver'),
    ]) {
      await expectRefused(
        findings,
        `openNotifySocket(${where.slice(0, 40)})`,
        { call: () => openSocket(n, where), cleanup: (s) => (s as Socket).close() },
        [],
      );
    }
    await abuseCall(findings, {
      label: 'sendDatagram',
      call: exported(n, 'sendDatagram'),
      args: [
        stringArg('path', () => path.join(dir, 'receiver'), { absolute: true, abstract: true }),
        bufferArg('buffer', () => Buffer.from('READY=1')),
        arrayArg(
          'fds',
          () => [passed],
          fdArg('fds[]', () => passed),
          true,
        ),
      ],
    });
    const sendTo = (buffer: unknown, fds?: unknown): unknown =>
      n.sendDatagram(path.join(dir, 'receiver'), buffer, fds);
    await expectRefused(findings, 'sendDatagram(16 MiB)', { call: () => sendTo(Buffer.alloc(16 << 20)) }, []);
    await expectRefused(
      findings,
      'sendDatagram(4097 fds)',
      { call: () => sendTo(Buffer.from('x'), new Array<number>(4097).fill(passed)) },
      [],
    );
    await expectRefused(
      findings,
      'sendDatagram(300 fds)',
      { call: () => sendTo(Buffer.from('x'), new Array<number>(300).fill(passed)) },
      [],
    );
    for (const fd of unopenedFds()) {
      await expectRefused(
        findings,
        `sendDatagram(fds [${fd}])`,
        { call: () => sendTo(Buffer.from('x'), [fd]) },
        [],
      );
    }
    await expectRefused(
      findings,
      'sendDatagram(to nobody)',
      { call: () => n.sendDatagram(path.join(dir, 'nobody'), Buffer.from('x')) },
      [],
    );
    await expectRefused(
      findings,
      'sendDatagram(huge path)',
      { call: () => n.sendDatagram(HUGE_STRING, Buffer.from('x')) },
      [],
    );
    await abuseCall(findings, {
      label: 'closeFd',
      call: exported(n, 'closeFd'),
      args: [fdArg('fd', () => fs.openSync('/dev/null', 'r'))],
    });
    for (const fd of unopenedFds()) {
      await expectRefused(findings, `closeFd(${fd})`, { call: () => n.closeFd(fd) }, []);
    }
    await abuseCall(findings, {
      label: 'pipe',
      call: exported(n, 'pipe'),
      args: [],
      cleanup: (ends) => (ends as number[]).forEach((fd) => fs.closeSync(fd)),
    });
    // pidfdGetPid is TypeScript over /proc/self/fdinfo: the same contract.
    await abuseCall(findings, {
      label: 'pidfdGetPid',
      call: (...a) => Reflect.apply(pidfdGetPid, undefined, a),
      args: [fdArg('pidfd', () => -1)],
      noValidCall: true,
    });
    for (const fd of [...unopenedFds(), passed]) {
      await expectRefused(findings, `pidfdGetPid(${fd})`, { call: () => pidfdGetPid(fd) }, []);
    }
    // Let the receiver take what was sent (and close the fds that came with it).
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    receiver.close();
    fs.closeSync(passed);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'notify exports');
  await assertProcessUsable();
});

test(
  'notify: NotifySocket methods, closed, on foreign receivers, constructed by hand',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('notify-handle');
    let count = 0;
    const other = openSocket(n, path.join(dir, 'other'));
    try {
      await abuseHandle(
        findings,
        {
          label: 'NotifySocket',
          open: () => openSocket(n, path.join(dir, `s${count++}`)),
          methods: {
            pause: { args: [], afterClose: 'quiet' },
            resume: { args: [], afterClose: 'quiet' },
            ref: { args: [], afterClose: 'quiet' },
            unref: { args: [], afterClose: 'quiet' },
          },
          getters: { receiveBufferBytes: 'value', passPidfd: 'value' },
        },
        [Buffer.alloc(4), new Map(), Promise.resolve()],
      );
    } finally {
      other.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'NotifySocket');
    await assertProcessUsable();
  },
);

test(
  'notify: awkward datagrams arrive whole, flagged or cut at the bound, fds and all',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const dir = scratchDir('notify-data');
    const where = path.join(dir, 'receiver');
    const received: { length: number; bytes: number; truncated: boolean; fds: number }[] = [];
    const receiver = openSocket(n, where, (batch) => {
      for (const item of batch) {
        received.push({
          length: item.length,
          bytes: item.buffer.length,
          truncated: item.truncated,
          fds: item.fds.length,
        });
      }
    });
    const passed = fs.openSync('/dev/null', 'r');
    const sizes = [0, 1, 4096, 4097, 4098, 65536];
    try {
      for (const size of sizes) n.sendDatagram(where, Buffer.alloc(size, 0x41));
      n.sendDatagram(where, Buffer.from('FDSTORE=1'), new Array<number>(253).fill(passed));
      const deadline = Date.now() + 5000;
      while (received.length < sizes.length + 1 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(received, [
        ...sizes.map((size) => ({
          length: size,
          bytes: Math.min(size, 4097),
          truncated: size > 4097,
          fds: 0,
        })),
        { length: 9, bytes: 9, truncated: false, fds: 253 },
      ]);
    } finally {
      receiver.close();
      fs.closeSync(passed);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assertNoFdLeak(before, 'notify datagrams');
  },
);

test('notify: sockets dropped without close() are closed by the garbage collector', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const dir = scratchDir('notify-gc');
  for (let i = 0; i < 50; i++) openSocket(n, `@triggerd-abuse-${process.pid}-${i}`).pause();
  await collectGarbage();
  fs.rmSync(dir, { recursive: true, force: true });
  await assertNoFdLeak(before, 'dropped notify sockets');
  assert.ok(closedFd() >= 0);
  await assertProcessUsable();
});
