// Seeded fuzzing of the notify path: 100,000+ generated datagrams (random bytes, structured
// messages from valid and invalid tags, mutations of the captured ones) with random credentials,
// fds, pidfds and truncation, through parseNotifyMessage and NotifyRouter with fake units and the
// fake fd table. Nothing may throw, the invariants below must hold for every datagram, and every
// received fd must be closed exactly once. A failure prints the seed, the index and the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NotifyRouter, type NotifyEvent, type NotifyUnit } from '../../src/core/notify-router';
import type { ReceivedNotify } from '../../src/events/notify-events';
import {
  authorizeNotify,
  isValidFdName,
  NOTIFY_BUFFER_MAX,
  parseNotifyMessage,
  splitNotifyTags,
  type NotifyAccess,
  type NotifyFields,
  type NotifyParseResult,
} from '../../src/units/notify-message';
import { FakeNativeNotify } from '../helpers/fake-notify';
import { silentLogger } from '../helpers/logger';
import { Prng } from '../helpers/prng';
import { NOTIFY_KEYS } from '../../fuzz/fragments';

const SEED = 0x6e_6f_74_69; // change to explore; a failure prints it
const ITERATIONS = 100_000;
const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/notify');
const SELF = 4_000_000;

const prng = new Prng(SEED);

const captured: Buffer[] = (
  JSON.parse(fs.readFileSync(path.join(FIXTURES, 'capture.json'), 'utf8')) as {
    cases: { datagrams: { hex: string }[] }[];
  }
).cases.flatMap((c) => c.datagrams.map((d) => Buffer.from(d.hex, 'hex')));

const VALUES = [
  '1',
  '0',
  '',
  'trigger',
  'abc',
  '-1',
  '0x10',
  '0b11',
  '0o7',
  ' 5',
  '5 ',
  '18446744073709551615',
  '18446744073709551616',
  '2147483647',
  '2147483648',
  String(SELF),
  '4200',
  '4300',
  '4242',
  'EIO',
  'eio',
  'all',
  'main',
  'exec',
  'none',
  'ALL',
  'a:b',
  'stored',
  'org.x.Error',
  'a"b',
  'héllo',
  '\u{1F600}',
  'x'.repeat(300),
  '\\',
  'a\\b',
  '=',
  '==',
  'a=b',
];
const RAW_PIECES: Buffer[] = [
  Buffer.from('\n'),
  Buffer.from('\r'),
  Buffer.from('\\'),
  Buffer.from('='),
  Buffer.from([0]),
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xef, 0xbf, 0xbe]),
  Buffer.from('é'),
];

function structured(): Buffer {
  const parts: Buffer[] = [];
  const tags = prng.int(8);
  for (let i = 0; i < tags; i++) {
    const r = prng.next();
    if (r < 0.75) parts.push(Buffer.from(`${prng.pick(NOTIFY_KEYS)}=${prng.pick(VALUES)}`, 'utf8'));
    else if (r < 0.9)
      parts.push(Buffer.concat([Buffer.from(`${prng.pick(NOTIFY_KEYS)}=`), prng.pick(RAW_PIECES)]));
    else parts.push(prng.bytes(prng.int(12)));
    parts.push(Buffer.from(prng.pick(['\n', '\n', '\n', '\r\n', '\n\n', '\\\n'])));
  }
  if (prng.next() < 0.1) parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function mutate(input: Buffer): Buffer {
  const bytes = [...input];
  const edits = 1 + prng.int(4);
  for (let i = 0; i < edits; i++) {
    const at = prng.int(bytes.length + 1);
    const r = prng.next();
    if (r < 0.3 && bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = prng.int(256);
    else if (r < 0.6) bytes.splice(at, 0, ...prng.pick(RAW_PIECES));
    else if (r < 0.8) bytes.splice(at, 1);
    else bytes.splice(at, 0, ...Buffer.from(`\n${prng.pick(NOTIFY_KEYS)}=${prng.pick(VALUES)}`));
  }
  return Buffer.from(bytes);
}

function payload(): Buffer {
  const r = prng.next();
  if (r < 0.05) return Buffer.alloc(0);
  if (r < 0.1)
    return Buffer.alloc(
      prng.pick([NOTIFY_BUFFER_MAX - 1, NOTIFY_BUFFER_MAX, NOTIFY_BUFFER_MAX + 1, 65536]),
      0x41,
    );
  if (r < 0.3) return prng.bytes(prng.int(64));
  if (r < 0.35) return prng.bytes(prng.int(5000));
  if (r < 0.5) return mutate(prng.pick(captured));
  if (r < 0.55) return Buffer.from('BARRIER=1');
  return prng.next() < 0.3 ? mutate(structured()) : structured();
}

const ACCESS: readonly NotifyAccess[] = ['none', 'main', 'exec', 'all'];
const PIDS = [4200, 4300, 4242, 9999, SELF, 1];

function randomUnit(index: number): NotifyUnit {
  const access = prng.pick(ACCESS);
  const mainPid = prng.next() < 0.8 ? prng.pick(PIDS) : undefined;
  const controlPid = prng.next() < 0.4 ? prng.pick(PIDS) : undefined;
  const cgroup = prng.next() < 0.6 ? new Set(PIDS.filter(() => prng.next() < 0.5)) : undefined;
  return {
    name: `u${index}.service`,
    notifyAccess: () => access,
    mainPid,
    controlPid,
    cgroupPids: () => cgroup,
  };
}

/** Invariants of a parse result that hold for any input. */
function checkParse(input: Buffer, result: NotifyParseResult): void {
  if (input.length > NOTIFY_BUFFER_MAX) {
    assert.equal(!result.ok && result.code, 'ERR_NOTIFY_TOO_LONG');
    return;
  }
  const text = input.length > 0 && input[input.length - 1] === 0 ? input.subarray(0, -1) : input;
  if (text.includes(0)) {
    assert.equal(!result.ok && result.code, 'ERR_NOTIFY_EMBEDDED_NUL');
    return;
  }
  if (!result.ok) {
    assert.equal(result.code, 'ERR_NOTIFY_BAD_ESCAPE');
    assert.equal(splitNotifyTags(text), undefined);
    return;
  }
  const f: NotifyFields = result.fields;
  const tags = splitNotifyTags(text) ?? assert.fail('split must succeed when parsing did');
  assert.equal(f.tags.length, tags.length);
  // Escaping the tags again and splitting gives the same tags back.
  const escaped = Buffer.concat(
    tags.flatMap((tag, i) => {
      const out: number[] = [];
      for (const byte of tag) {
        if (byte === 0x5c || byte === 0x0a || byte === 0x0d) out.push(0x5c);
        out.push(byte);
      }
      return i === 0 ? [Buffer.from(out)] : [Buffer.from('\n'), Buffer.from(out)];
    }),
  );
  assert.deepEqual(splitNotifyTags(escaped), tags);
  for (const tag of f.tags) assert.equal(tag.includes('\0'), false);
  if (f.mainPid !== undefined)
    assert.ok(Number.isInteger(f.mainPid) && f.mainPid >= 1 && f.mainPid <= 0x7fffffff);
  if (f.errno !== undefined) assert.ok(Number.isInteger(f.errno) && f.errno >= 0 && f.errno <= 4095);
  if (f.exitStatus !== undefined)
    assert.ok(Number.isInteger(f.exitStatus) && f.exitStatus >= 0 && f.exitStatus <= 255);
  for (const usec of [f.watchdogUsec, f.extendTimeoutUsec, f.monotonicUsec]) {
    if (usec !== undefined) assert.ok(usec === Infinity || (Number.isSafeInteger(usec) && usec >= 0));
  }
  if (f.mainPidFdId !== undefined) assert.ok(f.mainPidFdId >= 0n && f.mainPidFdId < 1n << 64n);
  if (f.fdName !== undefined) assert.ok(isValidFdName(f.fdName));
  if (f.notifyAccess !== undefined) assert.ok(ACCESS.includes(f.notifyAccess));
  if (f.watchdog !== undefined) assert.ok(f.watchdog === 'ping' || f.watchdog === 'trigger');
  if (f.busError !== undefined) assert.ok(/^[\x20-\x7e]*$/.test(f.busError) && !/["'\\]/.test(f.busError));
  for (const [key, value] of f.other) {
    assert.equal(typeof key, 'string');
    assert.equal(typeof value, 'string');
  }
  for (const problem of f.invalid) {
    assert.ok(
      ['ERR_NOTIFY_FIELD_NOT_UTF8', 'ERR_NOTIFY_FIELD_VALUE', 'ERR_NOTIFY_TAG_MALFORMED'].includes(
        problem.code,
      ),
    );
    assert.equal(typeof problem.message, 'string');
  }
  // Flags are exactly "is there a tag KEY=1".
  const tagSet = new Set(tags.map((t) => t.toString('latin1')));
  assert.equal(f.ready, tagSet.has('READY=1'));
  assert.equal(f.barrier, tagSet.has('BARRIER=1'));
  assert.equal(f.fdPoll, !tagSet.has('FDPOLL=0'));
}

test(`${ITERATIONS} generated datagrams through parseNotifyMessage and NotifyRouter (seed ${SEED.toString(16)})`, () => {
  const fake = new FakeNativeNotify();
  let units: NotifyUnit[] = [];
  let current: ReceivedNotify | undefined;
  const delivered: NotifyEvent[] = [];
  /** Fds units took (the test closes them later, as the fd store would on removal). */
  const kept: number[] = [];
  const router = new NotifyRouter({
    unitsForPid: () => {
      if (prng.next() < 0.01) throw new Error('lookup failed');
      return units;
    },
    deliver: (event) => {
      delivered.push(event);
      if (event.fields.fdStore && prng.next() < 0.5) kept.push(...event.fds.take());
      if (prng.next() < 0.01) throw new Error('service bug');
    },
    closeFd: (fd) => fake.closeFd(fd),
    pidfdGetPid: (fd) => fake.pidfdGetPid(fd),
    readParent: (pid) => (pid > 1 ? { ppid: prng.next() < 0.5 ? pid - 1 : 1, comm: 'p' } : undefined),
    logger: silentLogger(),
    selfPid: SELF,
  });

  let received = 0;
  let parsedOk = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = payload();
    let result: NotifyParseResult | undefined;
    try {
      result = parseNotifyMessage(input);
      assert.deepEqual(parseNotifyMessage(input), result, 'deterministic');
      checkParse(input, result);
      if (result.ok) parsedOk++;

      units = Array.from({ length: prng.int(4) }, (_, k) => randomUnit(k % 3));
      const uid = prng.pick([0, 0, 1000, 65534, -1]);
      const pid = prng.pick([...PIDS, -1, 0]);
      const fdCount = prng.next() < 0.9 ? prng.int(3) : prng.int(40);
      const item = fake.datagram({
        payload: input,
        pid,
        uid,
        gid: uid,
        fds: fdCount,
        exited: prng.next() < 0.05,
        pidfd: prng.next() < 0.9,
        truncated: input.length > 4097 || prng.next() < 0.01,
      });
      received += item.fds.length + (item.pidfd >= 0 ? 1 : 0);
      current = {
        sender: { pid: item.pid, uid: item.uid, gid: item.gid, pidfd: item.pidfd },
        fds: item.fds,
        truncated: item.truncated,
        length: item.length,
        message: parseNotifyMessage(item.buffer),
      };
      delivered.length = 0;
      router.route(current);

      // Router invariants for this datagram.
      const droppable =
        current.truncated || !(pid > 0) || uid < 0 || !current.message.ok || current.message.fields.barrier;
      if (droppable || (current.message.ok && current.message.fields.tags.length === 0)) {
        assert.equal(delivered.length, 0, 'dropped datagrams reach no unit');
      }
      const names = delivered.map((e) => e.unit.name);
      assert.equal(new Set(names).size, names.length, 'each unit at most once');
      for (const event of delivered) {
        const sender = { pid: event.sender.pid };
        assert.equal(
          authorizeNotify(event.unit.notifyAccess(), sender, event.unit).ok,
          true,
          'only authorized units',
        );
        const main = event.fields.mainPid;
        if (main !== undefined) {
          assert.ok(
            event.sender.uid === 0 || event.sender.pid === event.unit.mainPid,
            'MAINPID from a trusted sender',
          );
          assert.ok(main > 1 && main !== SELF && main !== event.unit.controlPid, `MAINPID ${main} suitable`);
          const cgroup = event.unit.cgroupPids();
          assert.ok(cgroup === undefined || cgroup.has(main), 'MAINPID inside a known cgroup');
        }
      }
      // Every fd of this datagram is closed now, or held by a unit.
      for (const fd of [...item.fds, item.pidfd].filter((fd) => fd >= 0)) {
        assert.ok(!fake.isOpen(fd) || kept.includes(fd), `fd ${fd} leaked`);
      }
    } catch (err) {
      console.error(`seed ${SEED.toString(16)} iteration ${i} input ${input.toString('hex').slice(0, 400)}`);
      throw err;
    }
  }

  for (const fd of kept.splice(0)) fake.closeFd(fd);
  assert.deepEqual(fake.openFds(), [], 'no fd left open');
  assert.deepEqual(fake.badCloses, [], 'no fd closed twice');
  assert.equal(fake.closeCounts.size, received, 'every received fd closed');
  for (const [fd, count] of fake.closeCounts) assert.equal(count, 1, `fd ${fd} closed ${count} times`);
  assert.equal(router.counters.datagrams, ITERATIONS);
  assert.ok(parsedOk > ITERATIONS / 3, `a useful share parses (${parsedOk})`);
  assert.ok(router.counters.delivered > 1000, `a useful share is delivered (${router.counters.delivered})`);
  assert.ok(router.counters.barriers > 1000);
  console.log(
    `notify fuzz: ${ITERATIONS} datagrams, ${parsedOk} parsed, ${router.counters.delivered} events, ` +
      `${router.counters.refused} refused, ${router.counters.barriers} barriers, ${received} fds closed once each`,
  );
});
