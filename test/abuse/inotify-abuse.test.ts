// Abuse of triggerd_inotify.node: openInotify, rereadPartitionTable and the InotifyHandle,
// through the harness in test/helpers/abuse.ts; then a record flood read to the end and handles
// dropped without close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN } from '../../src/native/inotify-addon';
import {
  abuseCall,
  abuseHandle,
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
  loadRaw,
  openFds,
  scratchDir,
  stringArg,
  UINT32_MAX,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_inotify.node');

interface Handle {
  addWatch(path: string, mask: number): number;
  close(): void;
  pause(): void;
  readonly closed: boolean;
}

const noop = (): void => undefined;

test('inotify: every export refuses wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('inotify');
  try {
    await abuseCall(findings, {
      label: 'openInotify',
      call: exported(n, 'openInotify'),
      args: [functionArg('onBatch'), functionArg('onError')],
      cleanup: (handle) => (handle as Handle).close(),
    });
    // No valid call: re-reading a real disk's partition table is not a test's business.
    await abuseCall(findings, {
      label: 'rereadPartitionTable',
      call: exported(n, 'rereadPartitionTable'),
      args: [stringArg('devnode', () => '/dev/null')],
      noValidCall: true,
    });
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    for (const devnode of [
      '/dev/null',
      '/dev/zero',
      dir,
      path.join(dir, 'file'),
      path.join(dir, 'missing'),
      HUGE_STRING,
    ]) {
      await expectRefused(
        findings,
        `rereadPartitionTable(${devnode.slice(0, 40)})`,
        { call: () => n.rereadPartitionTable(devnode) },
        [],
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'inotify exports');
  await assertProcessUsable();
});

test(
  'inotify: InotifyHandle methods, closed, on foreign receivers, constructed by hand',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('inotify-handle');
    let current: Handle | undefined;
    try {
      await abuseHandle(
        findings,
        {
          label: 'InotifyHandle',
          open: () => {
            current = n.openInotify(noop, noop) as Handle;
            return current;
          },
          methods: {
            addWatch: {
              args: [stringArg('path', () => dir), intArg('mask', 1, UINT32_MAX, () => IN.CREATE)],
              afterClose: 'throws',
            },
            removeWatch: {
              // A fresh watch each time (the same wd: the directory is already watched).
              args: [
                intArg('wd', 0, INT32_MAX, () =>
                  current !== undefined && !current.closed ? current.addWatch(dir, IN.CREATE) : 1,
                ),
              ],
              afterClose: 'throws',
            },
            armCall: {
              args: [
                intArg('wd', 1, INT32_MAX, () =>
                  current !== undefined && !current.closed ? current.addWatch(dir, IN.CREATE) : 1,
                ),
                intArg('mask', 1, UINT32_MAX, () => IN.CREATE),
                functionArg('fn'),
                {
                  // spawn's prepare() result; anything else, even an object shaped like one, is refused.
                  name: 'prepared',
                  optional: true,
                  valid: () => undefined,
                  bad: () => [null, 1, 'launch', true, 1n, Symbol('p'), {}, [], () => 0, { launcher: {} }],
                },
              ],
              afterClose: 'throws',
            },
            disarmCall: { args: [intArg('id', 1, UINT32_MAX, () => 1)], afterClose: 'quiet' },
            pause: { args: [], afterClose: 'quiet' },
            resume: { args: [], afterClose: 'quiet' },
            ref: { args: [], afterClose: 'quiet' },
            unref: { args: [], afterClose: 'quiet' },
          },
          getters: { closed: 'value' },
        },
        [Buffer.alloc(4)],
      );
      const h = n.openInotify(noop, noop) as Handle & { removeWatch(wd: number): void };
      try {
        for (const [what, call] of [
          ['addWatch(every mask bit)', () => h.addWatch(dir, UINT32_MAX)],
          ['addWatch(a missing path)', () => h.addWatch(path.join(dir, 'missing'), IN.CREATE)],
          ['addWatch(1 MiB path)', () => h.addWatch(HUGE_STRING, IN.CREATE)],
          ['addWatch(IN_ONLYDIR on a file)', () => h.addWatch('/dev/null', IN.CREATE | IN.ONLYDIR)],
          ['removeWatch(a wd never given)', () => h.removeWatch(INT32_MAX)],
        ] as const) {
          await expectRefused(findings, what, { call }, []);
        }
      } finally {
        h.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'InotifyHandle');
    await assertProcessUsable();
  },
);

test(
  'inotify: a record flood past the batch bound arrives whole; close inside onBatch',
  { skip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const dir = scratchDir('inotify-flood');
    let bytes = 0;
    let batches = 0;
    const h = n.openInotify((batch: unknown) => {
      bytes += (batch as Buffer).length;
      batches++;
    }, noop) as Handle;
    try {
      h.addWatch(dir, IN.CREATE | IN.DELETE | IN.ATTRIB);
      // Long names: 16 + 255 bytes and more per record, well past one 64 KiB read.
      for (let i = 0; i < 3000; i++) {
        const file = path.join(dir, `${i}`.padStart(200, 'n'));
        fs.writeFileSync(file, '');
        fs.unlinkSync(file);
      }
      const deadline = Date.now() + 5000;
      while (bytes < 3000 * 2 * 16 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(bytes >= 3000 * 2 * 16, `${bytes} bytes in ${batches} batches`);
    } finally {
      h.close();
    }
    // A handle that closes itself in its first batch, with more records waiting.
    const closing = n.openInotify(() => closing.close(), noop) as Handle;
    closing.addWatch(dir, IN.ATTRIB);
    for (let i = 0; i < 100; i++) fs.utimesSync(dir, i, i);
    const deadline = Date.now() + 2000;
    while (!closing.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(closing.closed, true);
    fs.rmSync(dir, { recursive: true, force: true });
    await assertNoFdLeak(before, 'inotify flood');
  },
);

test('inotify: handles dropped without close() are closed by the garbage collector', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  for (let i = 0; i < 50; i++) (n.openInotify(noop, noop) as Handle).pause();
  await collectGarbage();
  await assertNoFdLeak(before, 'dropped inotify handles');
  await assertProcessUsable();
});
