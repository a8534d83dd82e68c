// Template instances load when something asks for them, as in systemd: `triggerctl start
// foo@x.service` with only foo@.service on disk, and Wants=foo@y.service from another unit.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TRIGGERCTL, run, skipUnlessRoot, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon';

describe('template instances on demand', { skip: skipUnlessRoot() }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-templates-'));
  const out = path.join(dir, 'out');
  let d: RunningDaemon | undefined;
  const ctl = (...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d?.socket ?? '', ...args], { allowFail: true });
  const written = (instance: string): string | undefined => {
    try {
      return fs.readFileSync(path.join(out, instance), 'utf8');
    } catch {
      return undefined;
    }
  };

  before(async () => {
    const units = path.join(dir, 'units');
    fs.mkdirSync(units);
    fs.mkdirSync(out);
    fs.writeFileSync(
      path.join(units, 'hello@.service'),
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo %i > ${out}/%i'\n`,
    );
    fs.writeFileSync(
      path.join(units, 'wanter.service'),
      `[Unit]\nWants=hello@fromdep.service\nAfter=hello@fromdep.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n`,
    );
    d = await startDaemon(['--unit-path', units, '--state-dir', path.join(dir, 'state')]);
  });

  after(async () => {
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('start foo@x.service runs the template with %i = x', async () => {
    const r = await ctl('start', 'hello@world.service');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await waitFor('hello@world wrote', () => written('world')), 'world\n');
  });

  test('Wants=foo@y.service from another unit loads and starts that instance', async () => {
    const r = await ctl('start', 'wanter.service');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await waitFor('hello@fromdep wrote', () => written('fromdep')), 'fromdep\n');
  });

  test('an instance of a template that does not exist is not found', async () => {
    const r = await ctl('start', 'nosuch@x.service');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not found/);
  });
});
