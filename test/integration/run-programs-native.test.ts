// NativeProgramRunner over the real spawn addon, with exits routed in from watchChildren as the
// daemon's child watcher would route them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeSpawn, type NativeSpawn } from '../../src/native/spawn-addon';
import { NativeProgramRunner, runProgram } from '../../src/devices/run-programs';

let native: NativeSpawn | undefined;
let loadError = '';
try {
  native = loadNativeSpawn();
} catch (err) {
  loadError = String(err);
}

test(
  'PROGRAM through native spawn: output, exit routed by the watcher, timeout kill',
  { skip: native === undefined ? `needs the spawn addon (${loadError})` : false },
  async (t) => {
    assert.ok(native);
    const runner = new NativeProgramRunner(native);
    const watcher = native.watchChildren((exits) => {
      for (const e of exits) runner.notifyExit(e);
    });
    t.after(() => watcher.close());

    const ok = await runProgram('/bin/sh -c "echo $DEVNAME; echo oops >&2; exit 2"', {
      runner,
      env: [['DEVNAME', '/dev/loop3']],
      captureStdout: true,
      timeoutMs: 5000,
      onOutput: (s, l) => assert.deepEqual([s, l], ['stderr', 'oops']),
    });
    assert.equal(ok.stdout, '/dev/loop3\n');
    assert.deepEqual(ok.exit, { code: 'exited', status: 2 });
    assert.equal(ok.error?.code, 'ERR_PROGRAM_FAILED');

    const t0 = Date.now();
    const hung = await runProgram('/bin/sleep 30', { runner, env: [], timeoutMs: 100 });
    assert.equal(hung.error?.code, 'ERR_PROGRAM_TIMEOUT');
    assert.ok(Date.now() - t0 < 2000);

    const missing = await runProgram('/nonexistent/prog', { runner, env: [], timeoutMs: 1000 });
    assert.equal(missing.error?.code, 'ERR_PROGRAM_SPAWN');
  },
);
