// OPTIONS+="static_node=" on real character device nodes (mknod in a temp dev root, as root):
// owner, group and mode applied and the tag links made under a temp udev run dir, at load
// (RulesStage's constructor) and again at reload (setRules), as udevd does.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileRules } from '../../src/devices/rules/rules-compiler';
import { RulesStage } from '../../src/devices/rules-stage';
import type { ProgramRunner } from '../../src/devices/run-programs';
import { applyStaticNodePlans } from '../../src/devices/static-nodes';
import { FakeRulesHost } from '../helpers/fake-rules-host';
import { recordingLogger, silentLogger } from '../helpers/logger';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `triggerd-${name}-`));
  dirs.push(d);
  return d;
}

/** A character device node (1:3, like /dev/null) at dev/NODE, 0600 root:root like devtmpfs makes it. */
function mknod(dev: string, node: string): string {
  const p = path.join(dev, node);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  execFileSync('mknod', ['-m', '0600', p, 'c', '1', '3']);
  return p;
}

const noRunner: ProgramRunner = {
  spawn: () => {
    throw new Error('no programs in this test');
  },
};

describe('static_node on real device nodes', { skip: needsRoot }, () => {
  it('RulesStage applies owner, group, mode and tag links at load and at reload', () => {
    const dev = tmp('dev');
    const run = tmp('run');
    const kvm = mknod(dev, 'kvm');
    const seq = mknod(dev, 'snd/seq');
    const rules = compileRules([
      {
        file: '/lib/udev/rules.d/50-udev-default.rules',
        text: [
          'KERNEL=="kvm", OWNER="4343", GROUP="4242", MODE="0666", TAG+="uaccess", OPTIONS+="static_node=kvm"',
          'SUBSYSTEM=="sound", GROUP="4241", OPTIONS+="static_node=snd/seq", TAG+="uaccess", TAG+="seat"',
          'KERNEL=="fuse", MODE="0666", OPTIONS+="static_node=fuse"',
        ].join('\n'),
      },
    ]);
    const rec = recordingLogger();
    const stage = new RulesStage({
      rules,
      host: new FakeRulesHost([]),
      runner: noRunner,
      logger: rec.logger,
      devRoot: dev,
      udevRunDir: run,
    });

    const k = fs.statSync(kvm);
    assert.deepEqual([k.uid, k.gid, k.mode & 0o7777], [4343, 4242, 0o666]);
    const s = fs.statSync(seq);
    // GROUP without MODE: udevd's 0660 upgrade; OWNER untouched.
    assert.deepEqual([s.uid, s.gid, s.mode & 0o7777], [0, 4241, 0o660]);
    const tags = path.join(run, 'static_node-tags');
    assert.equal(fs.readlinkSync(path.join(tags, 'uaccess', 'kvm')), kvm);
    assert.equal(fs.readlinkSync(path.join(tags, 'uaccess', 'snd\\x2fseq')), seq);
    assert.equal(fs.readlinkSync(path.join(tags, 'seat', 'snd\\x2fseq')), seq);
    assert.equal(fs.statSync(path.join(tags, 'seat')).mode & 0o777, 0o755);
    // fuse is not there: skipped, no error logged.
    assert.equal(rec.lines.filter((l) => (l.level as number) >= 40).length, 0, JSON.stringify(rec.lines));

    // Reload with other rules: applied again from scratch; existing links are kept.
    fs.chmodSync(kvm, 0o600);
    stage.setRules(
      compileRules([
        {
          file: '/etc/udev/rules.d/99-local.rules',
          text: 'GROUP="4000", MODE="0640", TAG+="uaccess", OPTIONS+="static_node=kvm"',
        },
      ]),
    );
    const k2 = fs.statSync(kvm);
    assert.deepEqual([k2.uid, k2.gid, k2.mode & 0o7777], [4343, 4000, 0o640]);
    assert.equal(fs.readlinkSync(path.join(tags, 'uaccess', 'kvm')), kvm);
  });

  it('applyEffects: false leaves the nodes alone', () => {
    const dev = tmp('dev');
    const kvm = mknod(dev, 'kvm');
    new RulesStage({
      rules: compileRules([{ file: '/r.rules', text: 'MODE="0666", OPTIONS+="static_node=kvm"' }]),
      host: new FakeRulesHost([]),
      runner: noRunner,
      logger: silentLogger(),
      devRoot: dev,
      udevRunDir: tmp('run'),
      applyEffects: false,
    });
    assert.equal(fs.statSync(kvm).mode & 0o7777, 0o600);
  });

  it('a symlink in /dev stands for its target; unchanged nodes are reported unchanged', () => {
    const dev = tmp('dev');
    const target = mknod(dev, 'vfio/vfio');
    fs.symlinkSync('vfio/vfio', path.join(dev, 'vfio-link'));
    const source = { file: '/r.rules', line: 1 };
    const opts = { devRoot: dev, udevRunDir: tmp('run'), logger: silentLogger() };
    const first = applyStaticNodePlans([{ node: 'vfio-link', mode: 0o666, tags: [], source }], opts);
    assert.equal(first[0]?.status, 'applied');
    assert.equal(fs.statSync(target).mode & 0o7777, 0o666);
    const again = applyStaticNodePlans([{ node: 'vfio-link', mode: 0o666, tags: [], source }], opts);
    assert.equal(again[0]?.status, 'unchanged');
  });

  it('a tag link that cannot be made is logged with file:line; the mode still applies', () => {
    const dev = tmp('dev');
    const kvm = mknod(dev, 'kvm');
    const run = tmp('run');
    // static_node-tags is a file: no directory can be made below it.
    fs.writeFileSync(path.join(run, 'static_node-tags'), '');
    const rec = recordingLogger();
    const out = applyStaticNodePlans(
      [{ node: 'kvm', mode: 0o666, tags: ['uaccess'], source: { file: '/x.rules', line: 9 } }],
      { devRoot: dev, udevRunDir: run, logger: rec.logger },
    );
    assert.equal(out[0]?.status, 'failed');
    assert.equal(fs.statSync(kvm).mode & 0o7777, 0o666);
    const err = rec.lines.find((l) => l.level === 50);
    assert.match(String(err?.msg), /^\/x\.rules:9: static_node=kvm: tag link /);
    assert.equal(err?.code, 'ENOTDIR');
  });
});
