// One real timer firing a real job in the daemon: OnActiveSec=1s starts a oneshot that writes a
// file; a Persistent=yes daily timer whose stamp is two days old catches up at start and moves its
// stamp; list-timers shows both.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDaemon, type RunningDaemon } from '../helpers/daemon';

const waitFor = async (check: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
};

let d: RunningDaemon | undefined;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-timers-'));
after(async () => {
  await d?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test('a timer starts its oneshot; a persistent timer catches up a missed run from its stamp', async () => {
  const units = path.join(work, 'units');
  const state = path.join(work, 'state');
  const out = path.join(work, 'out');
  fs.mkdirSync(path.join(units, 'timers.target.wants'), { recursive: true });
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(units, 'once.timer'), '[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n');
  fs.writeFileSync(
    path.join(units, 'once.service'),
    `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo fired > ${out}/once'\n`,
  );
  fs.writeFileSync(
    path.join(units, 'daily.timer'),
    '[Timer]\nOnCalendar=daily\nPersistent=yes\nAccuracySec=1ms\n',
  );
  fs.writeFileSync(
    path.join(units, 'daily.service'),
    `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo caught up > ${out}/daily'\n`,
  );
  for (const t of ['once.timer', 'daily.timer'])
    fs.symlinkSync(path.join(units, t), path.join(units, 'timers.target.wants', t));
  const stamp = path.join(state, 'timers', 'stamp-daily.timer');
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, '');
  const twoDaysAgo = Date.now() / 1000 - 2 * 86400;
  fs.utimesSync(stamp, twoDaysAgo, twoDaysAgo);

  const t0 = Date.now();
  d = await startDaemon(['--unit-path', units, '--state-dir', state]);
  assert.ok(
    await waitFor(() => fs.existsSync(path.join(out, 'daily')), 10_000),
    'the missed daily run caught up',
  );
  assert.ok(fs.statSync(stamp).mtimeMs > t0 - 1000, 'the stamp moved to the catch-up');
  assert.ok(await waitFor(() => fs.existsSync(path.join(out, 'once')), 10_000), 'OnActiveSec=1s fired');
  assert.equal(fs.readFileSync(path.join(out, 'once'), 'utf8'), 'fired\n');

  const client = await d.client();
  try {
    const rows = (await client.request('list-timers', { all: true })) as {
      unit: string;
      activates: string;
      sub: string;
      next: number;
      last: number;
    }[];
    const once = rows.find((r) => r.unit === 'once.timer');
    const daily = rows.find((r) => r.unit === 'daily.timer');
    assert.equal(once?.activates, 'once.service');
    assert.equal(once?.sub, 'elapsed');
    assert.ok((once?.last ?? 0) > t0 * 1000);
    assert.equal(daily?.sub, 'waiting');
    // The next midnight, local time: within a day.
    assert.ok(
      (daily?.next ?? 0) > Date.now() * 1000 && (daily?.next ?? 0) <= (Date.now() + 86_400_000) * 1000 + 60e6,
    );
  } finally {
    client.close();
  }
});
