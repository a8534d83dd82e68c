// Path units under a private triggerd: a spool directory (DirectoryNotEmpty= + MakeDirectory=,
// the shape of examples/spool.path) whose files a oneshot moves away; a PathChanged= whose change
// during the run is latched and runs once more; `triggerctl status` naming the watches and the
// last trigger; a path unit whose unit to trigger does not exist failing its start clearly; and
// daemon-reload keeping the watches of an unchanged unit.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ControlClient } from '../../src/control/client';
import {
  TRIGGERCTL,
  run,
  readLines,
  unitScratch,
  unitStatus,
  skipUnlessPathUnits,
  startDaemon,
  waitFor,
  type RunningDaemon,
  type UnitStatus,
} from '../helpers/daemon';

const skip = skipUnlessPathUnits();

describe('path units under triggerd', { skip }, () => {
  const { dir, units, work, unit } = unitScratch('triggerd-path-daemon-');
  let d: RunningDaemon;
  let client: ControlClient;
  const status = (name: string): Promise<UnitStatus> => unitStatus(client, name);
  const ctl = (...args: string[]) =>
    run(process.execPath, [TRIGGERCTL, '--socket', d.socket, ...args], { allowFail: true });
  const lines = readLines;

  before(async () => {
    unit(
      'spool.path',
      `[Path]\nDirectoryNotEmpty=${work}/spool\nMakeDirectory=yes\n[Install]\nWantedBy=multi-user.target\n`,
    );
    unit(
      'spool.service',
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'mkdir -p ${work}/done; for f in ${work}/spool/*; do [ -f "$$f" ] && echo "processed $$(basename $$f)" && mv "$$f" ${work}/done/; done; true'\n`,
    );
    fs.writeFileSync(path.join(work, 'conf'), '0');
    unit('conf.path', `[Path]\nPathChanged=${work}/conf\n[Install]\nWantedBy=multi-user.target\n`);
    unit(
      'conf.service',
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo "run $$TRIGGER_PATH" >> ${work}/conf-runs; sleep 0.6'\n`,
    );
    unit('orphan.path', '[Path]\nPathExists=/nonexistent-triggerd\nUnit=nope.service\n');
    fs.mkdirSync(path.join(units, 'multi-user.target.wants'));
    for (const n of ['spool.path', 'conf.path'])
      fs.symlinkSync(path.join(units, n), path.join(units, 'multi-user.target.wants', n));
    d = await startDaemon(['--unit-path', units, '--shutdown-timeout', '5', '--log-level', 'info']);
    client = await d.client();
  });

  after(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the spool: MakeDirectory= made it, new files are processed by the triggered oneshot', async () => {
    await waitFor('spool.path waiting', async () =>
      (await status('spool.path')).sub === 'waiting' ? true : undefined,
    );
    assert.ok(fs.statSync(path.join(work, 'spool')).isDirectory());
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(work, 'spool', `job${i}`), `payload ${i}`);
    await waitFor('all five processed', () =>
      fs.existsSync(path.join(work, 'done')) && fs.readdirSync(path.join(work, 'done')).length === 5
        ? true
        : undefined,
    );
    assert.deepEqual(fs.readdirSync(path.join(work, 'spool')), []);
    const s = await status('spool.path');
    const text = s.statusLines.join('\n');
    assert.match(
      text,
      new RegExp(`Watches: DirectoryNotEmpty=${work}/spool \\(waits for an entry; watching ${work}/spool\\)`),
    );
    assert.match(text, /Last: .*DirectoryNotEmpty=.*condition/);
    assert.match(text, /Triggers: spool\.service/);
    const out = await ctl('logs', 'spool.service', '-n', '50');
    assert.match(out.stdout, /processed job0/);
  });

  test('a change during the run is latched: exactly one more run, with TRIGGER_PATH', async () => {
    fs.writeFileSync(path.join(work, 'conf'), '1');
    try {
      await waitFor('the first run', () =>
        lines(path.join(work, 'conf-runs')).length === 1 ? true : undefined,
      );
    } catch (err) {
      // Once in a full suite this run never came (not reproduced alone): say what the daemon saw.
      const seen = d.logs
        .filter((l) => /conf\.|path-armed-start/.test(`${String(l.unit)} ${String(l.component)}`))
        .slice(-60)
        .map((l) => JSON.stringify(l));
      const s = (await status('conf.path')).statusLines.join('\n');
      throw new Error(`${(err as Error).message}\nconf.path:\n${s}\nlog:\n${seen.join('\n')}`, {
        cause: err,
      });
    }
    fs.writeFileSync(path.join(work, 'conf'), '2');
    fs.writeFileSync(path.join(work, 'conf'), '3');
    await waitFor('the latched run', () =>
      lines(path.join(work, 'conf-runs')).length === 2 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual(lines(path.join(work, 'conf-runs')), [`run ${work}/conf`, `run ${work}/conf`]);
  });

  test('a path unit whose unit to trigger is missing fails its start with the reason', async () => {
    const r = await ctl('start', 'orphan.path');
    assert.notEqual(r.code, 0);
    const s = await status('orphan.path');
    assert.equal(s.active, 'inactive');
    assert.ok(
      d.logs.some((l) =>
        /refusing to start, the unit to trigger nope\.service is not-found/.test(String(l.msg)),
      ),
    );
  });

  test('daemon-reload keeps the watches of an unchanged path unit', async () => {
    const r = await ctl('daemon-reload');
    assert.equal(r.code, 0, r.stderr);
    await d.waitForLog(
      (l) => l.unit === 'spool.path' && /daemon-reload: path watches kept/.test(String(l.msg)),
    );
    const kept = d.logs.find((l) => l.unit === 'spool.path' && /path watches kept/.test(String(l.msg)));
    assert.equal(kept?.kept, 1);
    assert.equal(kept?.added, 0);
    fs.writeFileSync(path.join(work, 'spool', 'after-reload'), 'x');
    await waitFor('processed after the reload', () =>
      fs.existsSync(path.join(work, 'done', 'after-reload')) ? true : undefined,
    );
  });
});
