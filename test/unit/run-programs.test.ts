// RUN / PROGRAM runner: splitting, program lookup, environment, timeout kill, output cap, failures,
// against a fake runner whose programs the test scripts; plus one real run through child_process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  childProcessRunner,
  executeRunList,
  resolveProgram,
  runProgram,
  splitCommand,
  type ProgramIo,
  type ProgramRunner,
} from '../../src/devices/run-programs';

interface FakeProc {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  io: ProgramIo;
  signals: string[];
}

/** Each spawn calls `script` on a later tick; it drives the program through `io`. */
function fakeRunner(script: (p: FakeProc) => void): { runner: ProgramRunner; procs: FakeProc[] } {
  const procs: FakeProc[] = [];
  const runner: ProgramRunner = {
    spawn(argv, env, io) {
      if (argv[0]?.includes('missing'))
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      const p: FakeProc = { argv, env, io, signals: [] };
      procs.push(p);
      setImmediate(() => script(p));
      return {
        pid: 1000 + procs.length,
        kill: (signal) => {
          p.signals.push(signal);
        },
      };
    },
  };
  return { runner, procs };
}

const finish = (p: FakeProc, status = 0): void => {
  p.io.closed('stdout');
  p.io.closed('stderr');
  p.io.exited({ code: 'exited', status });
};

test('splitCommand: whitespace, quotes (unbalanced run to the end), backslashes kept', () => {
  const cases: [string, string[]][] = [
    ['prog a  b', ['prog', 'a', 'b']],
    ['  prog\t"a b" \'c d\'', ['prog', 'a b', 'c d']],
    ['prog a"b c"d', ['prog', 'ab cd']],
    ['prog "" x', ['prog', '', 'x']],
    ['prog "unterminated rest', ['prog', 'unterminated rest']],
    ['prog a\\ b \\"c', ['prog', 'a\\', 'b', '\\c']],
    ['', []],
    ['   ', []],
  ];
  for (const [input, expected] of cases) assert.deepEqual(splitCommand(input), expected, input);
});

test('resolveProgram: absolute as is, relative in /lib/udev then /usr/lib/udev', () => {
  assert.equal(resolveProgram('/bin/true'), '/bin/true');
  assert.equal(
    resolveProgram('cdrom_id', ['/lib/udev', '/usr/lib/udev'], (f) => f === '/usr/lib/udev/cdrom_id'),
    '/usr/lib/udev/cdrom_id',
  );
  assert.equal(
    resolveProgram('nope', ['/lib/udev', '/usr/lib/udev'], () => false),
    '/lib/udev/nope',
  );
});

test('PROGRAM: stdout captured, stderr to the log, properties as the environment (hidden dropped)', async () => {
  const { runner, procs } = fakeRunner((p) => {
    p.io.output('stdout', Buffer.from('ID_X=1\n'));
    p.io.output('stderr', Buffer.from('warn one\nwarn '));
    p.io.output('stderr', Buffer.from('two\n'));
    finish(p);
  });
  const lines: string[] = [];
  const result = await runProgram('helper --flag "a b"', {
    runner,
    env: [
      ['DEVNAME', '/dev/loop0'],
      ['.HIDDEN', 'x'],
    ],
    captureStdout: true,
    onOutput: (s, l) => lines.push(`${s}:${l}`),
    exists: () => true,
  });
  assert.equal(result.ok, true);
  assert.equal(result.stdout, 'ID_X=1\n');
  assert.deepEqual(procs[0]?.argv, ['/lib/udev/helper', '--flag', 'a b']);
  assert.deepEqual(procs[0]?.env, { DEVNAME: '/dev/loop0' });
  assert.deepEqual(lines, ['stderr:warn one', 'stderr:warn two']);
});

test('a hanging program is killed with SIGKILL at the timeout and the call returns', async () => {
  const { runner, procs } = fakeRunner(() => undefined); // never exits, never closes its pipes
  const t0 = Date.now();
  const result = await runProgram('/bin/hang', { runner, env: [], timeoutMs: 50 });
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(result.timedOut, true);
  assert.equal(result.ok, false);
  assert.equal(result.error?.code, 'ERR_PROGRAM_TIMEOUT');
  assert.deepEqual(procs[0]?.signals, ['SIGKILL']);
});

test('exited but a grandchild holds the pipe: done after the drain time, not the timeout', async () => {
  const { runner } = fakeRunner((p) => p.io.exited({ code: 'exited', status: 0 }));
  const result = await runProgram('/bin/forks', { runner, env: [], timeoutMs: 10_000, drainMs: 20 });
  assert.equal(result.ok, true);
  assert.equal(result.timedOut, false);
});

test('output beyond the cap is dropped with one warning', async () => {
  const { runner } = fakeRunner((p) => {
    for (let i = 0; i < 10; i++) p.io.output('stdout', Buffer.alloc(4096, 0x61));
    finish(p);
  });
  const warnings: string[] = [];
  const result = await runProgram('/bin/flood', {
    runner,
    env: [],
    captureStdout: true,
    onWarning: (code) => warnings.push(code),
  });
  assert.equal(result.stdout.length, 16 * 1024);
  assert.equal(result.truncated, true);
  assert.deepEqual(warnings, ['WARN_PROGRAM_OUTPUT_TRUNCATED']);
});

test('non-zero exit, death by signal and failure to start are results, not exceptions', async () => {
  const failing = fakeRunner((p) => finish(p, 3));
  const r1 = await runProgram('/bin/false', { runner: failing.runner, env: [] });
  assert.equal(r1.ok, false);
  assert.equal(r1.error?.code, 'ERR_PROGRAM_FAILED');
  assert.deepEqual(r1.exit, { code: 'exited', status: 3 });

  const killed = fakeRunner((p) => {
    p.io.closed('stdout');
    p.io.closed('stderr');
    p.io.exited({ code: 'killed', status: 11 });
  });
  assert.equal(
    (await runProgram('/bin/crash', { runner: killed.runner, env: [] })).error?.code,
    'ERR_PROGRAM_KILLED',
  );

  const r3 = await runProgram('/bin/missing', { runner: failing.runner, env: [] });
  assert.equal(r3.error?.code, 'ERR_PROGRAM_SPAWN');
  assert.equal(
    (await runProgram('  ', { runner: failing.runner, env: [] })).error?.code,
    'ERR_PROGRAM_EMPTY',
  );
});

test('RUN list: programs in order, output logged, builtins handed to the host', async () => {
  const { runner, procs } = fakeRunner((p) => {
    p.io.output('stdout', Buffer.from(`ran ${p.argv[0]}\n`));
    finish(p);
  });
  const logged: string[] = [];
  const builtins: string[] = [];
  const source = { file: '/etc/udev/rules.d/99-x.rules', line: 3 };
  const results = await executeRunList(
    [
      { kind: 'program', command: '/bin/one', source },
      { kind: 'builtin', command: 'kmod load x', source },
      { kind: 'program', command: '/bin/two', source },
    ],
    { runner, env: [], onOutput: (_s, l) => logged.push(l), runBuiltin: (c) => void builtins.push(c) },
  );
  assert.deepEqual(
    procs.map((p) => p.argv[0]),
    ['/bin/one', '/bin/two'],
  );
  assert.deepEqual(logged, ['ran /bin/one', 'ran /bin/two']);
  assert.deepEqual(builtins, ['kmod load x']);
  assert.ok(results.every((r) => r.ok));
});

test('childProcessRunner (tests/tools only): a real program, its output and environment', async () => {
  const result = await runProgram('/bin/sh -c "echo $DEVNAME; exit 0"', {
    runner: childProcessRunner(),
    env: [['DEVNAME', '/dev/loop7']],
    captureStdout: true,
    timeoutMs: 5000,
  });
  assert.equal(result.ok, true);
  assert.equal(result.stdout, '/dev/loop7\n');
  const slow = await runProgram('/bin/sleep 5', { runner: childProcessRunner(), env: [], timeoutMs: 100 });
  assert.equal(slow.error?.code, 'ERR_PROGRAM_TIMEOUT');
});
