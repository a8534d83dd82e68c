// Abuse of triggerd_fanotify.node: openFanotify and the FanotifyHandle (mark, respond,
// closeEventFd, openMount, closeMount, resolveFileHandle, ...), through the harness in
// test/helpers/abuse.ts. The group is a notification group (FAN_CLASS_NOTIF): no abuse may leave
// a permission mark that would hold the machine's opens. fanotify needs CAP_SYS_ADMIN: the handle
// tests run as root only; the argument checks of openFanotify run for everyone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FAN, FAN_MARK, FAN_RESPONSE } from '../../src/native/fanotify-addon';
import {
  abuseCall,
  abuseHandle,
  type Arg,
  assertNoFdLeak,
  assertProcessUsable,
  collectGarbage,
  expectRefused,
  exported,
  Findings,
  functionArg,
  HUGE_STRING,
  intArg,
  INT32_MAX,
  isRoot,
  loadRaw,
  openFds,
  rootSkip,
  scratchDir,
  stringArg,
  UINT32_MAX,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_fanotify.node');

interface Handle {
  openMount(path: string): number;
  close(): void;
  pause(): void;
  readonly closed: boolean;
  readonly ownedEventFds: number;
}

const noop = (): void => undefined;

/** A struct file_handle: handle_bytes, handle_type, then `bytes` of f_handle. */
function fileHandle(handleBytes: number, length = 8 + handleBytes): Uint8Array {
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, handleBytes >>> 0, true);
  view.setInt32(4, 1, true);
  for (let i = 8; i < length; i++) out[i] = i & 0xff;
  return out;
}

function handleArg(): Arg {
  return {
    name: 'handle',
    valid: () => fileHandle(8),
    bad: () => {
      const detached = new Uint8Array(new ArrayBuffer(16));
      structuredClone(detached.buffer, { transfer: [detached.buffer] });
      return [
        undefined,
        null,
        'handle',
        1,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        new ArrayBuffer(16),
        new Uint16Array(8),
        new Int8Array(16),
        new DataView(new ArrayBuffer(16)),
        new Uint8Array(7),
        detached,
        fileHandle(0),
        fileHandle(129),
        fileHandle(16, 20),
        fileHandle(0xffffffff, 1 << 20),
        fileHandle(0x80000000, 64),
      ];
    },
  };
}

test('fanotify: openFanotify refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  await abuseCall(findings, {
    label: 'openFanotify',
    call: exported(n, 'openFanotify'),
    args: [
      intArg('flags', 0, UINT32_MAX, () => 0),
      intArg('eventFlags', 0, UINT32_MAX, () => 0),
      functionArg('onBatch'),
      functionArg('onError'),
    ],
    cleanup: (handle) => (handle as Handle).close(),
    // Without CAP_SYS_ADMIN even a valid group is EPERM.
    noValidCall: !isRoot,
  });
  for (const [flags, eventFlags] of [
    [UINT32_MAX, 0],
    [0, UINT32_MAX],
    [0x8000000, 0],
  ]) {
    await expectRefused(
      findings,
      `openFanotify(${flags}, ${eventFlags})`,
      { call: () => n.openFanotify(flags, eventFlags, noop, noop), cleanup: (h) => (h as Handle).close() },
      [],
    );
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'openFanotify');
  await assertProcessUsable();
});

test(
  'fanotify: FanotifyHandle methods, closed, on foreign receivers, constructed by hand',
  { skip: skip ?? rootSkip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('fanotify');
    let current: Handle | undefined;
    const live = (): boolean => current !== undefined && !current.closed;
    try {
      await abuseHandle(
        findings,
        {
          label: 'FanotifyHandle',
          open: () => {
            current = n.openFanotify(0, 0, noop, noop) as Handle;
            return current;
          },
          methods: {
            mark: {
              args: [
                intArg('flags', 0, UINT32_MAX, () => FAN_MARK.ADD),
                intArg('mask', 0, 2 ** 53 - 1, () => FAN.CLOSE_WRITE),
                stringArg('path', () => dir),
              ],
              afterClose: 'throws',
            },
            // No event waits for an answer in a notification group, and no event fd is owned
            // yet: the valid-looking calls are refused too (ENOENT, EBADF).
            respond: {
              args: [
                intArg('fd', 0, INT32_MAX, () => 3),
                intArg('response', 1, UINT32_MAX, () => FAN_RESPONSE.ALLOW),
              ],
              afterClose: 'throws',
              noValidCall: true,
            },
            closeEventFd: {
              args: [intArg('fd', 0, INT32_MAX, () => 3)],
              afterClose: 'throws',
              noValidCall: true,
            },
            openMount: { args: [stringArg('path', () => dir)], afterClose: 'throws' },
            closeMount: {
              args: [intArg('mount', 0, INT32_MAX, () => (live() ? (current as Handle).openMount(dir) : 3))],
              afterClose: 'throws',
            },
            // A made-up handle: ESTALE or EINVAL from open_by_handle_at.
            resolveFileHandle: {
              args: [
                intArg('mount', 0, INT32_MAX, () => (live() ? (current as Handle).openMount(dir) : 3)),
                handleArg(),
              ],
              afterClose: 'throws',
              noValidCall: true,
            },
            pause: { args: [], afterClose: 'quiet' },
            resume: { args: [], afterClose: 'quiet' },
            ref: { args: [], afterClose: 'quiet' },
            unref: { args: [], afterClose: 'quiet' },
          },
          getters: { closed: 'value', ownedEventFds: 'value', throttled: 'value' },
        },
        [Buffer.alloc(4)],
      );
      const h = n.openFanotify(0, 0, noop, noop) as Handle & Record<string, (...a: unknown[]) => unknown>;
      try {
        const refused: [string, () => unknown][] = [
          [
            'mark(a permission event in a notification group)',
            () => h.mark(FAN_MARK.ADD, FAN.OPEN_PERM, dir),
          ],
          ['mark(every flag)', () => h.mark(UINT32_MAX, FAN.CLOSE_WRITE, dir)],
          ['mark(every mask bit)', () => h.mark(FAN_MARK.ADD, 2 ** 53 - 1, dir)],
          ['mark(a missing path)', () => h.mark(FAN_MARK.ADD, FAN.CLOSE_WRITE, path.join(dir, 'missing'))],
          ['mark(1 MiB path)', () => h.mark(FAN_MARK.ADD, FAN.CLOSE_WRITE, HUGE_STRING)],
          ['openMount(a file)', () => h.openMount('/dev/null')],
          ['openMount(1 MiB path)', () => h.openMount(HUGE_STRING)],
          ['closeMount(a mount never opened)', () => h.closeMount(0)],
          ['resolveFileHandle(a mount never opened)', () => h.resolveFileHandle(0, fileHandle(8))],
          ['closeEventFd(stdin)', () => h.closeEventFd(0)],
          ['respond(stdout)', () => h.respond(1, FAN_RESPONSE.ALLOW)],
        ];
        const mount = h.openMount(dir) as number;
        for (const bytes of [1, 8, 64, 128]) {
          refused.push([
            `resolveFileHandle(${bytes} made-up bytes)`,
            () => h.resolveFileHandle(mount, fileHandle(bytes)),
          ]);
        }
        for (const [what, call] of refused) await expectRefused(findings, what, { call }, []);
        assert.ok(fs.fstatSync(0) !== undefined, 'stdin is still open');
      } finally {
        h.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'FanotifyHandle');
    await assertProcessUsable();
  },
);

test(
  'fanotify: event fds handed over, closed twice, and left to close()',
  { skip: skip ?? rootSkip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('fanotify-events');
    const eventFds: number[] = [];
    const h = n.openFanotify(
      0,
      0,
      (bytes: unknown) => {
        const buffer = bytes as Buffer;
        for (let offset = 0; offset + 24 <= buffer.length;) {
          const length = buffer.readUInt32LE(offset);
          const fd = buffer.readInt32LE(offset + 16);
          if (fd >= 0) eventFds.push(fd);
          if (length < 24) break;
          offset += length;
        }
      },
      noop,
    ) as Handle & Record<string, (...a: unknown[]) => unknown>;
    try {
      h.mark(FAN_MARK.ADD, FAN.CLOSE_WRITE | FAN.EVENT_ON_CHILD, dir);
      for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `f${i}`), 'x');
      const deadline = Date.now() + 5000;
      while (eventFds.length < 20 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(eventFds.length >= 20, `${eventFds.length} event fds`);
      assert.equal(h.ownedEventFds, eventFds.length);
      // Half closed by the caller (twice: the second is EBADF), half left for close().
      for (const fd of eventFds.slice(0, 10)) {
        h.closeEventFd(fd);
        await expectRefused(findings, `closeEventFd(${fd}) twice`, { call: () => h.closeEventFd(fd) }, []);
        await expectRefused(
          findings,
          `respond(${fd}) after closeEventFd`,
          { call: () => h.respond(fd, FAN_RESPONSE.ALLOW) },
          [],
        );
      }
      await expectRefused(
        findings,
        'respond(a notification)',
        { call: () => h.respond(eventFds[10], FAN_RESPONSE.ALLOW) },
        [],
      );
    } finally {
      h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'fanotify event fds');
  },
);

test(
  'fanotify: handles dropped without close() are closed by the garbage collector',
  { skip: skip ?? rootSkip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    for (let i = 0; i < 20; i++) (n.openFanotify(0, 0, noop, noop) as Handle).pause();
    await collectGarbage();
    await assertNoFdLeak(before, 'dropped fanotify handles');
    await assertProcessUsable();
  },
);
