// Abuse of triggerd_autofs.node: mountAutofs, unmountLazy, processGroup and the AutofsMount
// (ready, fail, setTimeout, expire, catatonic, askUmount, unmount), through the harness in
// test/helpers/abuse.ts. Mounting needs root (and /dev/autofs): those tests skip otherwise; the
// argument checks run for everyone. Every mount is made under a temp dir and unmounted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abuseCall,
  abuseHandle,
  assertNoFdLeak,
  assertProcessUsable,
  enumArg,
  expectRefused,
  exported,
  Findings,
  functionArg,
  HUGE_STRING,
  intArg,
  INT32_MAX,
  isRoot,
  loadRaw,
  objectArg,
  openFds,
  rootSkip,
  scratchDir,
  stringArg,
  UINT32_MAX,
  type Arg,
  type RawExports,
} from '../helpers/abuse';

const { exports: raw, skip } = loadRaw('triggerd_autofs.node');
const noAutofs = fs.existsSync('/dev/autofs') ? undefined : 'no /dev/autofs (modprobe autofs4)';
const mountSkip = skip ?? rootSkip ?? noAutofs;

interface Mount {
  close(): void;
  unmount(): number;
  readonly where: string;
}

const noop = (): void => undefined;

function optionString(name: string, valid: () => string): Arg {
  const arg = stringArg(name, valid, { nonEmpty: false, huge: false });
  return { ...arg, bad: () => [...arg.bad(), 'a,b', 'a\nb', 's'.repeat(256)] };
}

test('autofs: mountAutofs, unmountLazy and processGroup refuse wrong arguments', { skip }, async () => {
  const n = raw as RawExports;
  const before = openFds();
  const findings = new Findings();
  const dir = scratchDir('autofs');
  let count = 0;
  const fresh = (): string => {
    const where = path.join(dir, `m${count++}`);
    fs.mkdirSync(where);
    return where;
  };
  const release = (mount: unknown): void => {
    (mount as Mount).close();
    (mount as Mount).unmount();
  };
  try {
    await abuseCall(findings, {
      label: 'mountAutofs',
      call: exported(n, 'mountAutofs'),
      args: [
        objectArg(
          'options',
          () => ({
            where: fresh(),
            source: 'triggerd-abuse',
            kind: 'direct',
            strictExpire: false,
            timeoutSec: 0,
          }),
          [
            stringArg('where', fresh, { absolute: true }),
            optionString('source', () => 'triggerd-abuse'),
            enumArg('kind', ['direct', 'indirect'], () => 'direct'),
            intArg('timeoutSec', 0, INT32_MAX, () => 0),
          ],
        ),
        functionArg('onBatch'),
        functionArg('onError'),
      ],
      cleanup: release,
      noValidCall: mountSkip !== undefined,
    });
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    for (const where of [path.join(dir, 'missing'), path.join(dir, 'file'), '/' + 'w'.repeat(5000)]) {
      await expectRefused(
        findings,
        `mountAutofs(${where.slice(0, 40)})`,
        {
          call: () =>
            n.mountAutofs(
              { where, source: 's', kind: 'direct', strictExpire: false, timeoutSec: 0 },
              noop,
              noop,
            ),
          cleanup: release,
        },
        [],
      );
    }
    await abuseCall(findings, {
      label: 'unmountLazy',
      call: exported(n, 'unmountLazy'),
      // Nothing mounted there: false, not an error.
      args: [stringArg('path', () => dir, { absolute: true })],
      noValidCall: !isRoot,
    });
    await expectRefused(findings, 'unmountLazy(1 MiB path)', { call: () => n.unmountLazy(HUGE_STRING) }, []);
    await abuseCall(findings, { label: 'processGroup', call: exported(n, 'processGroup'), args: [] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  findings.assertNone();
  await assertNoFdLeak(before, 'autofs exports');
  await assertProcessUsable();
});

test(
  'autofs: AutofsMount methods, closed, on foreign receivers, constructed by hand',
  { skip: mountSkip },
  async () => {
    const n = raw as RawExports;
    const before = openFds();
    const findings = new Findings();
    const dir = scratchDir('autofs-mount');
    const mounts: Mount[] = [];
    const expired: unknown[] = [];
    const open = (): Mount => {
      const where = path.join(dir, `m${mounts.length}`);
      fs.mkdirSync(where);
      const mount = n.mountAutofs(
        { where, source: 'triggerd-abuse', kind: 'direct', strictExpire: true, timeoutSec: 0 },
        noop,
        noop,
      ) as Mount;
      mounts.push(mount);
      return mount;
    };
    try {
      await abuseHandle(findings, {
        label: 'AutofsMount',
        open,
        methods: {
          // No access waits on this mount: a token is never known (the kernel says EINVAL/ENXIO).
          ready: { args: [intArg('token', 1, UINT32_MAX, () => 1)], afterClose: 'throws', noValidCall: true },
          fail: {
            args: [intArg('token', 1, UINT32_MAX, () => 1), intArg('errno', 1, 4095, () => 2)],
            afterClose: 'throws',
            noValidCall: true,
          },
          setTimeout: { args: [intArg('seconds', 0, INT32_MAX, () => 60)], afterClose: 'throws' },
          expire: {
            args: [
              intArg('how', 0, 7, () => 0),
              functionArg('done', () => (error: unknown, count: unknown) => expired.push([error, count])),
            ],
            afterClose: 'throws',
          },
          catatonic: { args: [], afterClose: 'throws' },
          askUmount: { args: [], afterClose: 'throws' },
          // The mount stays after close(): unmount() still takes it down.
          unmount: { args: [], afterClose: 'quiet' },
          ref: { args: [], afterClose: 'quiet' },
          unref: { args: [], afterClose: 'quiet' },
        },
        getters: {
          closed: 'value',
          devId: 'value',
          where: 'value',
          pipeFd: 'value',
          strictExpire: 'value',
          protocol: 'value',
        },
      });
      // Expire runs on a thread of its own and answers later: wait for every one.
      const deadline = Date.now() + 5000;
      while (expired.length < 1 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(expired.length >= 1, 'the expire callbacks came');
      // A mount made catatonic, then used: every waiter is gone, commands still answer.
      const m = open() as Mount & Record<string, (...a: unknown[]) => unknown>;
      m.catatonic();
      for (const [what, call] of [
        ['ready(after catatonic)', () => m.ready(1)],
        ['fail(after catatonic)', () => m.fail(1, 2)],
      ] as const) {
        await expectRefused(findings, what, { call }, []);
      }
      m.close();
      assert.equal(m.unmount(), 1);
      assert.equal(m.unmount(), 0);
    } finally {
      for (const mount of mounts) {
        mount.close();
        mount.unmount();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    findings.assertNone();
    await assertNoFdLeak(before, 'AutofsMount');
    await assertProcessUsable();
  },
);
