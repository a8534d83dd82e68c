// parseNotifyMessage on the 33 datagrams Debian's systemd-notify and python3-systemd really sent
// (test/fixtures/notify/capture.json, from notify-capture.txt), on 11,000 vectors answered by
// systemd 252's own code (systemd-252-oracle.json), and on malformed messages; authorizeNotify
// and isBarrier as tables.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  authorizeNotify,
  barrierProblem,
  describeProcessChain,
  errnoNames,
  isBarrier,
  isSafeAscii,
  isValidFdName,
  isValidUtf8,
  NOTIFY_BUFFER_MAX,
  notifyAccessFromString,
  parseErrno,
  parseNotifyMessage,
  parsePid,
  parseProcStat,
  parseSafeAtoi,
  parseSafeAtou64,
  splitNotifyTags,
  type IntegerParse,
  type NotifyAccess,
  type NotifyFields,
  type NotifyParseResult,
  type ProcessParent,
} from '../../src/units/notify-message';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/notify');

interface CapturedDatagram {
  socket: 'path' | 'abstract';
  hex: string;
  text: string;
  credentials: { pid: number; uid: number; gid: number };
  credentialsOf: 'parent' | 'self' | 'sleeper' | 'shell';
  rights?: { count: number };
}
interface CapturedCase {
  name: string;
  argv: string[];
  exit: number;
  datagrams: CapturedDatagram[];
}
const capture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'capture.json'), 'utf8')) as {
  cases: CapturedCase[];
};

function fields(result: NotifyParseResult): NotifyFields {
  if (!result.ok) assert.fail(`expected ok, got ${result.code}: ${result.message}`);
  return result.fields;
}

function parse(text: string | Uint8Array): NotifyFields {
  return fields(parseNotifyMessage(typeof text === 'string' ? Buffer.from(text, 'utf8') : text));
}

/** The typed fields that are set, for compact expectations (defaults and tags left out). */
function typed(f: NotifyFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(f)) {
    if (key === 'tags' || key === 'other' || key === 'invalid' || value === undefined) continue;
    // Flags show when set; fdPoll, true by default, shows when FDPOLL=0 cleared it.
    if (key === 'fdPoll' ? value === true : value === false) continue;
    out[key] = value;
  }
  if (f.other.size > 0) out.other = Object.fromEntries(f.other);
  if (f.invalid.length > 0) out.invalid = f.invalid.map((e) => `${e.code} ${e.key}`);
  return out;
}

// What each distinct captured message means, written out by hand from sd_notify(3).
const EXPECTED: Record<string, Record<string, unknown>> = {
  'READY=1': { ready: true },
  'BARRIER=1': { barrier: true },
  'ERRNO=110': { errno: 110 },
  'ERRNO=22': { errno: 22 },
  'STATUS=Serving 3 clients': { status: 'Serving 3 clients' },
  'MAINPID=21340': { mainPid: 21340 },
  'MAINPID=21338': { mainPid: 21338 },
  'WATCHDOG=1': { watchdog: 'ping' },
  'READY=1\nSTATUS=all good\nMAINPID=21340\nWATCHDOG=1\nEXTEND_TIMEOUT_USEC=5000000': {
    ready: true,
    status: 'all good',
    mainPid: 21340,
    watchdog: 'ping',
    extendTimeoutUsec: 5_000_000,
  },
  'RELOADING=1\nSTOPPING=1\nERRNO=5': { reloading: true, stopping: true, errno: 5 },
  'READY=1\nSTATUS=up\nMAINPID=1': { ready: true, status: 'up', mainPid: 1 },
  'FDSTORE=1\nFDNAME=mypipe': { fdStore: true, fdName: 'mypipe' },
};

describe('captured datagrams (Debian systemd-notify 252, python3-systemd 235)', () => {
  const datagrams = capture.cases.flatMap((c) => c.datagrams.map((d) => ({ name: c.name, ...d })));

  test('the fixture holds every captured datagram', () => {
    assert.equal(capture.cases.length, 27);
    assert.equal(datagrams.length, 33);
  });

  for (const d of datagrams) {
    test(`${d.name}: ${JSON.stringify(d.text)}`, () => {
      const bytes = Buffer.from(d.hex, 'hex');
      assert.equal(bytes.toString('utf8'), d.text);
      const expected = EXPECTED[d.text];
      assert.ok(expected !== undefined, `no expectation written for ${JSON.stringify(d.text)}`);
      const parsed = parse(bytes);
      assert.deepEqual(typed(parsed), expected);
      assert.deepEqual(parsed.tags, d.text.split('\n'));
      // BARRIER=1 came with exactly the one pipe fd every time: a well-formed barrier.
      if (parsed.barrier) {
        assert.equal(d.rights?.count, 1);
        assert.equal(isBarrier(parsed, d.rights?.count ?? 0), true);
      } else {
        assert.equal(isBarrier(parsed, d.rights?.count ?? 0), false);
      }
    });
  }

  test('systemd-notify joins fields with \\n, no trailing newline, READY, STATUS, MAINPID, then positional', () => {
    const combined = capture.cases.find((c) => c.name === 'sn combined');
    assert.ok(combined !== undefined);
    const first = combined.datagrams[0];
    assert.ok(first !== undefined);
    assert.deepEqual(parse(first.text).tags, [
      'READY=1',
      'STATUS=all good',
      'MAINPID=21340',
      'WATCHDOG=1',
      'EXTEND_TIMEOUT_USEC=5000000',
    ]);
  });
});

describe('systemd 252 oracle (libsystemd-shared-252.so answered each vector)', () => {
  interface OracleResult {
    op: string;
    in: string;
    r?: number;
    v?: number | string | boolean;
    tags?: string[];
  }
  const oracle = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'systemd-252-oracle.json'), 'utf8')) as {
    results: OracleResult[];
  };
  const errnoOf = (p: IntegerParse<unknown>): number => (p.ok ? 0 : p.error === 'EINVAL' ? -22 : -34);
  const ACCESS_INDEX: Record<number, NotifyAccess> = { 0: 'none', 1: 'all', 2: 'main', 3: 'exec' };

  const byOp = new Map<string, OracleResult[]>();
  for (const r of oracle.results) byOp.set(r.op, [...(byOp.get(r.op) ?? []), r]);

  const check: Record<string, (r: OracleResult, bytes: Buffer) => void> = {
    split: (r, bytes) => {
      const tags = splitNotifyTags(bytes);
      if ((r.r ?? 0) < 0) assert.equal(tags, undefined);
      else
        assert.deepEqual(
          tags?.map((t) => t.toString('hex')),
          r.tags,
        );
    },
    u64: (r, bytes) => {
      const p = parseSafeAtou64(bytes.toString('latin1'));
      assert.equal(errnoOf(p), Math.min(r.r ?? 0, 0));
      if (p.ok) assert.equal(p.value.toString(), r.v);
    },
    pid: (r, bytes) => {
      const p = parsePid(bytes.toString('latin1'));
      assert.equal(errnoOf(p), Math.min(r.r ?? 0, 0));
      if (p.ok) assert.equal(p.value, r.v);
    },
    atoi: (r, bytes) => {
      const p = parseSafeAtoi(bytes.toString('latin1'));
      assert.equal(errnoOf(p), Math.min(r.r ?? 0, 0));
      if (p.ok) assert.equal(p.value, r.v);
    },
    errno: (r, bytes) => {
      const p = parseErrno(bytes.toString('latin1'));
      if ((r.r ?? 0) < 0) assert.equal(errnoOf(p), r.r);
      else assert.deepEqual(p, { ok: true, value: r.r });
    },
    errname: (r, bytes) => {
      // parse_errno tries the name first: same answer through the public parser.
      const p = parseErrno(bytes.toString('latin1'));
      if ((r.r ?? 0) > 0) assert.deepEqual(p, { ok: true, value: r.r });
      else assert.equal(p.ok, false);
    },
    fdname: (r, bytes) => assert.equal(isValidUtf8(bytes) && isValidFdName(bytes.toString('utf8')), r.v),
    access: (r, bytes) =>
      assert.equal(notifyAccessFromString(bytes.toString('latin1')), ACCESS_INDEX[r.r ?? -1]),
    safe: (r, bytes) => assert.equal(isSafeAscii(bytes.toString('latin1')), r.v),
    utf8: (r, bytes) => assert.equal(isValidUtf8(bytes), r.v),
  };

  for (const [op, results] of byOp) {
    test(`${op}: all ${results.length} vectors agree`, () => {
      const run = check[op];
      assert.ok(run !== undefined, `no check for ${op}`);
      let mismatches = 0;
      for (const r of results) {
        const bytes = Buffer.from(r.in, 'hex');
        try {
          run(r, bytes);
        } catch (err) {
          mismatches++;
          if (mismatches <= 5) console.error(`${op} ${JSON.stringify(bytes.toString('latin1'))}:`, err);
        }
      }
      assert.equal(mismatches, 0);
    });
  }

  test('the oracle covers every parser', () => {
    assert.deepEqual([...byOp.keys()].sort(), Object.keys(check).sort());
    assert.ok(oracle.results.length > 10_000);
  });

  test('the errno table is exactly the names systemd knows', () => {
    const known = (byOp.get('errname') ?? [])
      .filter((r) => (r.r ?? 0) > 0)
      .map((r) => Buffer.from(r.in, 'hex').toString('latin1'))
      .filter((name) => name === name.toUpperCase());
    assert.deepEqual([...errnoNames().keys()].sort(), [...new Set(known)].sort());
  });
});

describe('message-level rules (§2.2)', () => {
  test('0 bytes: an empty message, accepted (the 2016 crash, CVE-2016-7795)', () => {
    const f = parse(Buffer.alloc(0));
    assert.deepEqual(f.tags, []);
    assert.deepEqual(typed(f), {});
  });

  test('a lone NUL, a lone newline, only separators: empty messages', () => {
    for (const input of [Buffer.from([0]), Buffer.from('\n'), Buffer.from('\r\n\n\r')]) {
      assert.deepEqual(parse(input).tags, []);
    }
  });

  test(`exactly ${NOTIFY_BUFFER_MAX} bytes is accepted, one more is not`, () => {
    const status = (n: number): Buffer => Buffer.from(`STATUS=${'x'.repeat(n - 7)}`);
    assert.equal(parse(status(NOTIFY_BUFFER_MAX)).status?.length, NOTIFY_BUFFER_MAX - 7);
    const over = parseNotifyMessage(status(NOTIFY_BUFFER_MAX + 1));
    assert.equal(over.ok, false);
    assert.equal(!over.ok && over.code, 'ERR_NOTIFY_TOO_LONG');
    assert.equal(parseNotifyMessage(Buffer.alloc(65536, 0x41)).ok, false);
  });

  test('one trailing NUL is allowed; an embedded NUL rejects the message', () => {
    assert.equal(parse(Buffer.from('READY=1\0')).ready, true);
    for (const input of ['READY=1\0\0', 'READY=1\0STATUS=x', '\0READY=1', 'STATUS=a\0b\n']) {
      const result = parseNotifyMessage(Buffer.from(input, 'latin1'));
      assert.equal(result.ok, false, JSON.stringify(input));
      assert.equal(!result.ok && result.code, 'ERR_NOTIFY_EMBEDDED_NUL');
    }
  });

  test("an unpaired backslash at the end rejects the message, as systemd's splitter does", () => {
    for (const input of ['READY=1\\', 'READY=1\nSTATUS=x\\', '\\', 'READY=1\\\0']) {
      const result = parseNotifyMessage(Buffer.from(input, 'latin1'));
      assert.equal(!result.ok && result.code, 'ERR_NOTIFY_BAD_ESCAPE', JSON.stringify(input));
    }
  });

  test('tags split on runs of \\n and \\r; a backslash takes the next byte literally', () => {
    assert.deepEqual(parse('READY=1\r\n\r\nSTATUS=a\n\n').tags, ['READY=1', 'STATUS=a']);
    assert.equal(parse('STATUS=C:\\\\dir').status, 'C:\\dir');
    assert.equal(parse('STATUS=a\\b').status, 'ab');
    assert.equal(parse('STATUS=two\\\nlines').status, 'two\nlines');
    assert.equal(parse('STA\\TUS=x').status, 'x');
    assert.equal(parse('  READY=1').ready, false, 'leading spaces are part of the key');
  });
});

describe('fields', () => {
  test('a bad value is reported and ignored; the other fields stay', () => {
    const f = parse('READY=1\nMAINPID=abc\nSTATUS=still here\nWATCHDOG=sometimes');
    assert.equal(f.ready, true);
    assert.equal(f.status, 'still here');
    assert.equal(f.mainPid, undefined);
    assert.equal(f.watchdog, undefined);
    assert.deepEqual(
      f.invalid.map((e) => [e.code, e.key, e.value]),
      [
        ['ERR_NOTIFY_FIELD_VALUE', 'MAINPID', 'abc'],
        ['ERR_NOTIFY_FIELD_VALUE', 'WATCHDOG', 'sometimes'],
      ],
    );
    assert.match(f.invalid[0]?.message ?? '', /MAINPID="abc"/);
  });

  test('invalid UTF-8 ignores that tag only (systemd: STATUS "not UTF-8 clean")', () => {
    const f = parse(
      Buffer.concat([Buffer.from('READY=1\nSTATUS='), Buffer.from([0xff, 0xfe]), Buffer.from('\nERRNO=5')]),
    );
    assert.equal(f.ready, true);
    assert.equal(f.errno, 5);
    assert.equal(f.status, undefined);
    assert.deepEqual(
      f.invalid.map((e) => [e.code, e.key]),
      [['ERR_NOTIFY_FIELD_NOT_UTF8', 'STATUS']],
    );
    // Noncharacters: valid for TextDecoder, not for systemd.
    assert.equal(parse(Buffer.from('STATUS=\uFFFE', 'utf8')).status, undefined);
    assert.equal(parse('STATUS=héllo \u{1F600}').status, 'héllo \u{1F600}');
  });

  test('the first tag with a key decides; flags count wherever they are', () => {
    const f = parse('MAINPID=abc\nMAINPID=42\nSTATUS=one\nSTATUS=two\nREADY=0\nREADY=1');
    assert.equal(f.mainPid, undefined, 'systemd takes the first MAINPID= (invalid) and ignores the rest');
    assert.equal(f.status, 'one');
    assert.equal(f.ready, true);
    assert.deepEqual(
      f.invalid.map((e) => e.key),
      ['MAINPID', 'READY'],
    );
  });

  test('unknown keys are kept in `other` (X_ is the documented prefix); tags without = are reported', () => {
    const f = parse('X_MYAPP_PHASE=warm\nX_MYAPP_PHASE=hot\nVENDOR=a=b\nno-equals\n=empty-key');
    assert.deepEqual(Object.fromEntries(f.other), { X_MYAPP_PHASE: 'warm', VENDOR: 'a=b' });
    assert.deepEqual(
      f.invalid.map((e) => [e.code, e.key]),
      [
        ['ERR_NOTIFY_TAG_MALFORMED', 'no-equals'],
        ['ERR_NOTIFY_TAG_MALFORMED', '=empty-key'],
      ],
    );
    // A key named like an Object.prototype member is just data.
    assert.equal(parse('__proto__=x').other.get('__proto__'), 'x');
  });

  const cases: [string, Record<string, unknown>][] = [
    ['READY=1', { ready: true }],
    ['RELOADING=1\nMONOTONIC_USEC=123456789', { reloading: true, monotonicUsec: 123456789 }],
    ['STOPPING=1', { stopping: true }],
    ['STATUS=', { status: '' }],
    ['ERRNO=EIO', { errno: 5 }],
    ['ERRNO=eagain', { errno: 11 }],
    ['ERRNO=0', { errno: 0 }],
    ['ERRNO=4096', { invalid: ['ERR_NOTIFY_FIELD_VALUE ERRNO'] }],
    ['BUSERROR=org.freedesktop.DBus.Error.Failed', { busError: 'org.freedesktop.DBus.Error.Failed' }],
    ['BUSERROR=', { busError: '' }],
    ['BUSERROR=a"b', { invalid: ['ERR_NOTIFY_FIELD_VALUE BUSERROR'] }],
    ['VARLINKERROR=io.systemd.Error', { varlinkError: 'io.systemd.Error' }],
    ['EXIT_STATUS=3', { exitStatus: 3 }],
    ['EXIT_STATUS=256', { invalid: ['ERR_NOTIFY_FIELD_VALUE EXIT_STATUS'] }],
    ['MAINPID=0x10', { mainPid: 16 }],
    ['MAINPID=0', { invalid: ['ERR_NOTIFY_FIELD_VALUE MAINPID'] }],
    ['MAINPID=2147483648', { invalid: ['ERR_NOTIFY_FIELD_VALUE MAINPID'] }],
    ['MAINPID=-5', { invalid: ['ERR_NOTIFY_FIELD_VALUE MAINPID'] }],
    ['MAINPIDFD=1', { mainPidFd: true }],
    ['MAINPID=7\nMAINPIDFDID=18446744073709551615', { mainPid: 7, mainPidFdId: 18446744073709551615n }],
    ['WATCHDOG=trigger', { watchdog: 'trigger' }],
    ['WATCHDOG=0', { invalid: ['ERR_NOTIFY_FIELD_VALUE WATCHDOG'] }],
    ['WATCHDOG_USEC=30000000', { watchdogUsec: 30_000_000 }],
    ['EXTEND_TIMEOUT_USEC=18446744073709551615', { extendTimeoutUsec: Infinity }],
    ['EXTEND_TIMEOUT_USEC=18446744073709551616', { invalid: ['ERR_NOTIFY_FIELD_VALUE EXTEND_TIMEOUT_USEC'] }],
    ['EXTEND_TIMEOUT_USEC=-1', { invalid: ['ERR_NOTIFY_FIELD_VALUE EXTEND_TIMEOUT_USEC'] }],
    ['MONOTONIC_USEC=0b101', { monotonicUsec: 5 }],
    ['FDSTORE=1\nFDNAME=', { fdStore: true, fdName: '' }],
    ['FDSTORE=1\nFDNAME=' + 'n'.repeat(255), { fdStore: true, fdName: 'n'.repeat(255) }],
    ['FDSTORE=1\nFDNAME=' + 'n'.repeat(256), { fdStore: true, invalid: ['ERR_NOTIFY_FIELD_VALUE FDNAME'] }],
    ['FDSTORE=1\nFDNAME=a:b', { fdStore: true, invalid: ['ERR_NOTIFY_FIELD_VALUE FDNAME'] }],
    ['FDSTORE=1\nFDNAME=tab\there', { fdStore: true, invalid: ['ERR_NOTIFY_FIELD_VALUE FDNAME'] }],
    ['FDSTORE=1\nFDPOLL=0', { fdStore: true, fdPoll: false }],
    ['FDSTORE=1\nFDPOLL=1', { fdStore: true }],
    ['FDSTORE=1\nFDPOLL=2', { fdStore: true, invalid: ['ERR_NOTIFY_FIELD_VALUE FDPOLL'] }],
    ['FDSTOREREMOVE=1\nFDNAME=old', { fdStoreRemove: true, fdName: 'old' }],
    ['BARRIER=1', { barrier: true }],
    ['RESTART_RESET=1', { restartReset: true }],
    ['NOTIFYACCESS=exec', { notifyAccess: 'exec' }],
    ['NOTIFYACCESS=ALL', { invalid: ['ERR_NOTIFY_FIELD_VALUE NOTIFYACCESS'] }],
    ['READY=yes', { invalid: ['ERR_NOTIFY_FIELD_VALUE READY'] }],
  ];
  for (const [input, expected] of cases) {
    test(JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input), () => {
      assert.deepEqual(typed(parse(input)), expected);
    });
  }
});

describe('isBarrier / barrierProblem', () => {
  const table: [string, number, boolean, RegExp | undefined][] = [
    ['BARRIER=1', 1, true, undefined],
    ['BARRIER=1\n', 1, true, undefined],
    ['BARRIER=1', 0, false, /0 fds/],
    ['BARRIER=1', 2, false, /2 fds/],
    ['BARRIER=1\nREADY=1', 1, false, /extra tags/],
    ['READY=1\nBARRIER=1', 1, false, /extra tags/],
    ['BARRIER=0', 1, false, undefined],
    ['READY=1', 1, false, undefined],
  ];
  for (const [text, fds, expected, problem] of table) {
    test(`${JSON.stringify(text)} with ${fds} fd(s)`, () => {
      const f = parse(text);
      assert.equal(isBarrier(f, fds), expected);
      assert.equal(
        isBarrier(
          f,
          Array.from({ length: fds }, (_, i) => i + 10),
        ),
        expected,
      );
      const found = barrierProblem(f, fds);
      if (problem === undefined) assert.equal(found, undefined);
      else assert.match(found ?? '', problem);
    });
  }
});

describe('authorizeNotify (NotifyAccess=)', () => {
  const MAIN = 4200;
  const CONTROL = 4300;
  const CHILD = 4242; // a child of the main process, in the cgroup
  const STRANGER = 9999; // not in the cgroup
  const WRAPPED = 4250; // systemd-notify run by the child, in the cgroup
  const cgroup = new Set([MAIN, CONTROL, CHILD, WRAPPED]);
  const unit = (
    known: boolean,
    pids: { main?: number; control?: number } = { main: MAIN, control: CONTROL },
  ) => ({
    mainPid: pids.main,
    controlPid: pids.control,
    cgroupPids: () => (known ? cgroup : undefined),
  });

  // [access, sender, cgroup known, expected: 'ok' | [reason, wouldAccept]]
  type Row = [NotifyAccess, number, boolean, 'ok' | [string, NotifyAccess | undefined]];
  const rows: Row[] = [
    ['none', MAIN, true, ['access-none', 'main']],
    ['none', CONTROL, true, ['access-none', 'exec']],
    ['none', CHILD, true, ['access-none', 'all']],
    ['none', STRANGER, true, ['access-none', undefined]],
    ['main', MAIN, true, 'ok'],
    ['main', CONTROL, true, ['not-main-pid', 'exec']],
    ['main', CHILD, true, ['not-main-pid', 'all']],
    ['main', STRANGER, true, ['not-main-pid', undefined]],
    ['exec', MAIN, true, 'ok'],
    ['exec', CONTROL, true, 'ok'],
    ['exec', CHILD, true, ['not-main-or-control-pid', 'all']],
    ['exec', STRANGER, true, ['not-main-or-control-pid', undefined]],
    ['all', MAIN, true, 'ok'],
    ['all', CONTROL, true, 'ok'],
    ['all', CHILD, true, 'ok'],
    ['all', STRANGER, true, ['not-in-cgroup', undefined]],
    // Cgroup unknown: membership is what the caller's lookup established.
    ['all', STRANGER, false, 'ok'],
    ['main', STRANGER, false, ['not-main-pid', 'all']],
    ['none', STRANGER, false, ['access-none', 'all']],
  ];
  for (const [access, pid, known, expected] of rows) {
    test(`${access}, sender ${pid}, cgroup ${known ? 'known' : 'unknown'}`, () => {
      const result = authorizeNotify(access, { pid }, unit(known));
      if (expected === 'ok') {
        assert.deepEqual(result, { ok: true });
        return;
      }
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.equal(result.reason, expected[0]);
      assert.equal(result.wouldAccept, expected[1]);
      assert.match(result.message, new RegExp(`^Got notification message from PID ${pid}`));
      assert.match(
        result.message,
        expected[1] === undefined
          ? /no NotifyAccess= value would accept it/
          : new RegExp(`NotifyAccess=${expected[1]} would accept it`),
      );
    });
  }

  test("an unknown main pid is said so (systemd's wording)", () => {
    const result = authorizeNotify('main', { pid: CHILD }, unit(true, {}));
    assert.ok(!result.ok);
    assert.match(result.message, /main PID, which is currently not known/);
    const exec = authorizeNotify('exec', { pid: CHILD }, unit(true, { control: CONTROL }));
    assert.ok(!exec.ok);
    assert.match(exec.message, /only permitted for the control PID 4300/);
  });

  test("an accepted main or control pid does not read the unit's cgroup (one read of cgroup.procs per datagram)", () => {
    let reads = 0;
    const counting = { mainPid: MAIN, controlPid: CONTROL, cgroupPids: () => (reads++, cgroup) };
    assert.equal(authorizeNotify('main', { pid: MAIN }, counting).ok, true);
    assert.equal(authorizeNotify('exec', { pid: CONTROL }, counting).ok, true);
    assert.equal(reads, 0);
    assert.equal(authorizeNotify('all', { pid: CHILD }, counting).ok, true);
    assert.equal(reads, 1);
    const refused = authorizeNotify('main', { pid: CHILD }, counting);
    assert.ok(!refused.ok && refused.wouldAccept === 'all');
    assert.equal(reads, 2);
  });

  test('a value that is not a NotifyAccess (untyped caller) refuses', () => {
    const access = 'everyone' as unknown as NotifyAccess;
    assert.equal(authorizeNotify(access, { pid: MAIN }, unit(true)).ok, false);
  });

  test('the refusal names the parent chain (the READY=1-from-a-wrapper case)', () => {
    const table: Record<number, ProcessParent> = {
      [WRAPPED]: { ppid: CHILD, comm: 'systemd-notify' },
      [CHILD]: { ppid: MAIN, comm: 'sh' },
      [MAIN]: { ppid: 1, comm: 'mydaemon' },
      1: { ppid: 0, comm: 'init' },
    };
    const result = authorizeNotify('main', { pid: WRAPPED }, unit(true), (pid) => table[pid]);
    assert.ok(!result.ok);
    assert.equal(
      result.message,
      'Got notification message from PID 4250 (systemd-notify) ← 4242 (sh) ← 4200 (mydaemon) ← 1 (init), ' +
        'but reception is only permitted for the main PID 4200 (NotifyAccess=main); NotifyAccess=all would accept it',
    );
  });

  test('the parent chain is bounded, survives cycles, vanished and throwing readers', () => {
    const deep = describeProcessChain(1000, (pid) => ({ ppid: pid + 1, comm: `p${pid}` }));
    assert.equal(deep.split('←').length, 1 + 8 + 1, deep);
    assert.match(deep, /← …$/);
    const cycle = describeProcessChain(10, (pid) => ({ ppid: pid === 10 ? 11 : 10, comm: '' }));
    assert.equal(cycle, 'PID 10 ← 11 ← …');
    assert.equal(
      describeProcessChain(10, () => undefined),
      'PID 10',
    );
    assert.equal(
      describeProcessChain(10, () => {
        throw new Error('ESRCH');
      }),
      'PID 10',
    );
    assert.equal(describeProcessChain(10), 'PID 10');
  });

  test('parseProcStat reads the parent after the last ")" (names may contain ") (")', () => {
    assert.deepEqual(parseProcStat('4242 (sh) S 4200 4242 4200 0 -1'), { ppid: 4200, comm: 'sh' });
    assert.deepEqual(parseProcStat('7 (a) b (c) ) R 3 7 7 0'), { ppid: 3, comm: 'a) b (c) ' });
    assert.equal(parseProcStat('garbage'), undefined);
    assert.equal(parseProcStat('1 (x) S notanumber'), undefined);
  });
});
