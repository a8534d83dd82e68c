// /dev symlink arbitration by link_priority, on a temp dir standing in for /dev and one for /run/udev.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DevLinks, devnumLink, type LinkOwner } from '../../src/devices/dev-links';
import { UdevDbWriter } from '../../src/devices/udev-db-writer';

interface Env {
  dev: string;
  run: string;
  links: () => DevLinks;
}

function setup(t: { after(fn: () => void): void }): Env {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-devlinks-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const dev = path.join(base, 'dev');
  const run = path.join(base, 'run-udev');
  fs.mkdirSync(dev);
  // Regular files stand in for the device nodes.
  for (const n of ['loop0', 'loop1', 'loop2']) fs.writeFileSync(path.join(dev, n), '');
  return { dev, run, links: () => new DevLinks({ db: new UdevDbWriter({ root: run }), devRoot: dev }) };
}

const dev = (n: number, priority = 0): LinkOwner => ({ id: `b7:${n}`, devnode: `/dev/loop${n}`, priority });
const LINK = 'disk/by-label/shared';

function target(env: Env, link = LINK): string | undefined {
  try {
    return fs.readlinkSync(path.join(env.dev, link));
  } catch {
    return undefined;
  }
}

type Step = ['add' | 'remove', LinkOwner] | ['restart'];

const TABLE: { name: string; steps: Step[]; expected: string | undefined }[] = [
  { name: 'one claim: relative link to the node', steps: [['add', dev(0)]], expected: '../../loop0' },
  {
    name: 'a higher claim takes the link',
    steps: [
      ['add', dev(0)],
      ['add', dev(1, 10)],
    ],
    expected: '../../loop1',
  },
  {
    name: 'a lower claim does not',
    steps: [
      ['add', dev(0, 10)],
      ['add', dev(1)],
    ],
    expected: '../../loop0',
  },
  {
    name: 'tie: the device processed last wins',
    steps: [
      ['add', dev(0)],
      ['add', dev(1)],
    ],
    expected: '../../loop1',
  },
  {
    name: 'release of the owner re-points to the best remaining claimant',
    steps: [
      ['add', dev(0, 5)],
      ['add', dev(2, 1)],
      ['add', dev(1, 10)],
      ['remove', dev(1, 10)],
    ],
    expected: '../../loop0',
  },
  {
    name: 'release of a non-owner leaves the link alone',
    steps: [
      ['add', dev(0, 10)],
      ['add', dev(1)],
      ['remove', dev(1)],
    ],
    expected: '../../loop0',
  },
  {
    name: 'last release removes the link',
    steps: [
      ['add', dev(0)],
      ['remove', dev(0)],
    ],
    expected: undefined,
  },
  {
    name: 'restart: a new instance arbitrates from the claim state on disk',
    steps: [['add', dev(0, 10)], ['restart'], ['add', dev(1, 5)], ['restart'], ['remove', dev(0, 10)]],
    expected: '../../loop1',
  },
  {
    name: 'a lowered priority hands the link to a higher claimant',
    steps: [
      ['add', dev(0, 10)],
      ['add', dev(1, 5)],
      ['add', dev(0, 1)],
    ],
    expected: '../../loop1',
  },
];

for (const row of TABLE) {
  test(`arbitration: ${row.name}`, async (t) => {
    const env = setup(t);
    let links = env.links();
    for (const step of row.steps) {
      // A restart reads the claims from disk: the ones queued before must be written by then.
      if (step[0] === 'restart') links = env.links();
      else if (step[0] === 'add') await links.update(step[1], [LINK]).written;
      else await links.remove(step[1], [LINK]).written;
    }
    assert.equal(target(env), row.expected);
  });
}

test('empty parent directories and the claim directory go with the last link', async (t) => {
  const env = setup(t);
  const links = env.links();
  await links.update(dev(0), [LINK]).written;
  assert.equal(target(env, 'block/7:0'), '../loop0', '/dev/block/MAJ:MIN is kept too');
  await links.remove(dev(0), [LINK]).written;
  assert.equal(fs.existsSync(path.join(env.dev, 'disk')), false);
  assert.equal(fs.existsSync(path.join(env.dev, 'block')), false);
  assert.deepEqual(fs.readdirSync(path.join(env.run, 'links')), []);
});

test('a device that no longer has a link releases it on change', (t) => {
  const env = setup(t);
  const links = env.links();
  links.update(dev(0), [LINK, 'disk/by-uuid/u']);
  links.update(dev(0), ['disk/by-uuid/u'], [LINK, 'disk/by-uuid/u']);
  assert.equal(target(env), undefined);
  assert.equal(target(env, 'disk/by-uuid/u'), '../../loop0');
});

test('a claimant whose node is gone is skipped', (t) => {
  const env = setup(t);
  const links = env.links();
  links.update(dev(0, 1), [LINK]);
  links.update(dev(2, 0), [LINK]);
  links.update(dev(1, 10), [LINK]);
  fs.rmSync(path.join(env.dev, 'loop0'));
  links.remove(dev(1, 10), [LINK]);
  assert.equal(target(env), '../../loop2');
});

test('something other than a symlink at the path is not replaced', async (t) => {
  const env = setup(t);
  fs.mkdirSync(path.join(env.dev, 'disk', 'by-label'), { recursive: true });
  fs.writeFileSync(path.join(env.dev, LINK), 'mine');
  const out = env.links().update(dev(0), [LINK]);
  assert.equal(out.outcomes[0]?.action, 'conflict');
  assert.deepEqual(await out.written, []);
  assert.equal(fs.readFileSync(path.join(env.dev, LINK), 'utf8'), 'mine');
});

test('devnumLink', () => {
  assert.equal(devnumLink('b7:0'), 'block/7:0');
  assert.equal(devnumLink('c10:232'), 'char/10:232');
  assert.equal(devnumLink('n3'), undefined);
});
