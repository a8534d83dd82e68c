// OPTIONS+="static_node=": the plans udevd's udev_rules_apply_static_dev_perms() would make from
// compiled rule text (Debian-like lines), the tag file name escaping, and the effect part on a
// temp dev root where no root is needed (missing nodes, non-device files, logging).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileRules } from '../../src/devices/rules/rules-compiler';
import {
  applyStaticNodePlans,
  applyStaticNodes,
  escapeStaticNodeName,
  planStaticNodes,
  type StaticNodePlan,
} from '../../src/devices/static-nodes';
import { parseGroup, parsePasswd } from '../../src/exec/user-database';
import { recordingLogger, silentLogger } from '../helpers/logger';

const users = {
  users: parsePasswd('root:x:0:0:root:/root:/bin/sh\nsvc:x:101:101::/:/bin/false\n'),
  groups: parseGroup('root:x:0:\naudio:x:29:\nkvm:x:104:\ndisk:x:6:\n'),
};

function plan(text: string, file = '/lib/udev/rules.d/50-udev-default.rules') {
  const compiled = compileRules([{ file, text }]);
  return planStaticNodes(compiled, users);
}

/** The plans without their file names, for short expectations. */
function short(plans: StaticNodePlan[]) {
  return plans.map((p) => ({ ...p, source: p.source.line }));
}

describe('planStaticNodes', () => {
  const cases: {
    description: string;
    rules: string;
    expect: ReturnType<typeof short>;
    codes?: string[];
  }[] = [
    {
      description: "Debian's kvm line: group, mode, node",
      rules: 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"',
      expect: [{ node: 'kvm', gid: 104, mode: 0o666, tags: [], source: 1 }],
    },
    {
      description: 'a group without a mode upgrades the mode to 0660 (snd/seq, snd/timer)',
      rules: [
        '# sound',
        'SUBSYSTEM=="sound", GROUP="audio", \\',
        '  OPTIONS+="static_node=snd/seq", OPTIONS+="static_node=snd/timer"',
      ].join('\n'),
      expect: [
        // The OPTIONS token's own line, on the continuation.
        { node: 'snd/seq', gid: 29, mode: 0o660, tags: [], source: 3 },
        { node: 'snd/timer', gid: 29, mode: 0o660, tags: [], source: 3 },
      ],
    },
    {
      description: 'an owner alone does not upgrade the mode (udevd: only a group > 0 does)',
      rules: 'KERNEL=="fuse", OWNER="svc", OPTIONS+="static_node=fuse"',
      expect: [{ node: 'fuse', uid: 101, tags: [], source: 1 }],
    },
    {
      description: 'group root (gid 0) does not upgrade the mode either',
      rules: 'KERNEL=="loop-control", GROUP="root", OPTIONS+="static_node=loop-control"',
      expect: [{ node: 'loop-control', gid: 0, tags: [], source: 1 }],
    },
    {
      description: "MODE alone and the line's tags (uaccess on /dev/net/tun, vhost-net)",
      rules: [
        'KERNEL=="tun", MODE="0666", OPTIONS+="static_node=net/tun"',
        'KERNEL=="vhost-net", TAG+="uaccess", TAG+="seat", OPTIONS+="static_node=vhost-net"',
      ].join('\n'),
      expect: [
        { node: 'net/tun', mode: 0o666, tags: [], source: 1 },
        { node: 'vhost-net', tags: ['uaccess', 'seat'], source: 2 },
      ],
    },
    {
      description: 'tokens written after static_node count too: the compiler sorts them first, as udev',
      rules: 'OPTIONS+="static_node=kvm", MODE="0660", GROUP="kvm", TAG+="uaccess"',
      expect: [{ node: 'kvm', gid: 104, mode: 0o660, tags: ['uaccess'], source: 1 }],
    },
    {
      description: 'numbers are taken as they are, the last OWNER wins',
      rules: 'OWNER="1234", OWNER="4321", GROUP="77", MODE="0600", OPTIONS+="static_node=vfio/vfio"',
      expect: [{ node: 'vfio/vfio', uid: 4321, gid: 77, mode: 0o600, tags: [], source: 1 }],
    },
    {
      description: 'values with substitutions are per-event only: left out (here: nothing left, no plan)',
      rules: 'KERNEL=="kvm", GROUP="$env{G}", MODE="%c", OPTIONS+="static_node=kvm"',
      expect: [],
    },
    {
      description: 'the line matches are not looked at, other lines give nothing',
      rules: [
        'ACTION=="remove", GOTO="end"',
        'KERNEL=="never-matches", GROUP="disk", OPTIONS+="static_node=vhost-vsock"',
        'KERNEL=="sda", GROUP="disk"',
        'LABEL="end"',
      ].join('\n'),
      expect: [{ node: 'vhost-vsock', gid: 6, mode: 0o660, tags: [], source: 2 }],
    },
    {
      description: 'nothing to set and no tag: no plan (udevd returns early)',
      rules: 'KERNEL=="kvm", OPTIONS+="static_node=kvm"',
      expect: [],
    },
    {
      description: 'an unknown user drops the whole line, as udev fails to load it',
      rules:
        'OWNER="nobody-here", GROUP="kvm", OPTIONS+="static_node=kvm"\nGROUP="kvm", OPTIONS+="static_node=kvm"',
      expect: [{ node: 'kvm', gid: 104, mode: 0o660, tags: [], source: 2 }],
      codes: ['ERR_STATIC_NODE_USER'],
    },
    {
      description: 'an unknown group too',
      rules: 'GROUP="nogroup-here", OPTIONS+="static_node=kvm"',
      expect: [],
      codes: ['ERR_STATIC_NODE_GROUP'],
    },
    {
      description: 'node names leaving /dev are refused, bad tag names skipped',
      rules: [
        'MODE="0666", OPTIONS+="static_node=../etc/shadow"',
        'MODE="0666", OPTIONS+="static_node=a//b"',
        'MODE="0666", TAG+="up/../x", TAG+="ok", OPTIONS+="static_node=ok"',
      ].join('\n'),
      expect: [{ node: 'ok', mode: 0o666, tags: ['ok'], source: 3 }],
      codes: ['ERR_STATIC_NODE_NAME', 'ERR_STATIC_NODE_NAME', 'ERR_STATIC_NODE_TAG'],
    },
  ];
  for (const c of cases) {
    it(c.description, () => {
      const r = plan(c.rules);
      assert.deepEqual(short(r.plans), c.expect);
      assert.deepEqual(
        r.diagnostics.map((d) => d.code),
        c.codes ?? [],
      );
      for (const d of r.diagnostics) assert.equal(d.source.file, '/lib/udev/rules.d/50-udev-default.rules');
    });
  }

  it('keeps file:line of the OPTIONS token across files', () => {
    const compiled = compileRules([
      { file: '/etc/udev/rules.d/10-a.rules', text: '\n\nGROUP="kvm", OPTIONS+="static_node=kvm"' },
      { file: '/lib/udev/rules.d/50-b.rules', text: 'MODE="0666", OPTIONS+="static_node=fuse"' },
    ]);
    assert.deepEqual(
      planStaticNodes(compiled, users).plans.map((p) => p.source),
      [
        { file: '/etc/udev/rules.d/10-a.rules', line: 3 },
        { file: '/lib/udev/rules.d/50-b.rules', line: 1 },
      ],
    );
  });
});

describe('escapeStaticNodeName', () => {
  it("escapes '/', '.', '\\\\', control and 8-bit bytes as systemd's xescape(name, \"/.\")", () => {
    assert.equal(escapeStaticNodeName('kvm'), 'kvm');
    assert.equal(escapeStaticNodeName('snd/seq'), 'snd\\x2fseq');
    assert.equal(escapeStaticNodeName('net/tun'), 'net\\x2ftun');
    assert.equal(escapeStaticNodeName('a.b-c_d'), 'a\\x2eb-c_d');
    assert.equal(escapeStaticNodeName('x\\y\tz'), 'x\\x5cy\\x09z');
    assert.equal(escapeStaticNodeName('é'), '\\xc3\\xa9');
  });
});

describe('applyStaticNodePlans without root', () => {
  const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-static-'));
  const source = { file: '/x.rules', line: 7 };

  it('a missing node is skipped quietly, a regular file is not a device node', () => {
    const dev = tmp();
    const run = tmp();
    fs.writeFileSync(path.join(dev, 'fuse'), '');
    const rec = recordingLogger();
    const out = applyStaticNodePlans(
      [
        { node: 'kvm', mode: 0o666, tags: ['uaccess'], source },
        { node: 'fuse', mode: 0o666, tags: ['uaccess'], source },
      ],
      { devRoot: dev, udevRunDir: run, logger: rec.logger },
    );
    assert.deepEqual(
      out.map((o) => o.status),
      ['missing', 'not-a-device'],
    );
    // udevd checks the node type before it makes tag links: nothing was made.
    assert.equal(fs.existsSync(path.join(run, 'static_node-tags')), false);
    assert.equal(fs.statSync(path.join(dev, 'fuse')).mode & 0o777, 0o644 & ~process.umask());
    const warn = rec.lines.find((l) => l.level === 40);
    assert.match(
      String(warn?.msg),
      /^\/x\.rules:7: static_node=fuse: .* neither a block nor a character device/,
    );
  });

  it('never throws, even on a dev root that cannot be read', () => {
    const out = applyStaticNodePlans([{ node: 'kvm', mode: 0o666, tags: [], source }], {
      devRoot: '/proc/self/fd/does-not-exist',
      logger: silentLogger(),
    });
    assert.equal(out.length, 1);
  });

  it('applyStaticNodes logs the plan problems with file:line', () => {
    const rec = recordingLogger();
    const compiled = compileRules([{ file: '/r.rules', text: 'GROUP="nope", OPTIONS+="static_node=kvm"' }]);
    const out = applyStaticNodes(compiled, { users, devRoot: tmp(), udevRunDir: tmp(), logger: rec.logger });
    assert.deepEqual(out, []);
    const err = rec.lines.find((l) => l.level === 50);
    assert.equal(err?.code, 'ERR_STATIC_NODE_GROUP');
    assert.match(String(err?.msg), /^\/r\.rules:1: unknown group 'nope'/);
  });
});
