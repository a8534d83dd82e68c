// Debian's own udev rules: every file compiles with zero errors, and running the whole set on a
// recorded loop0 change event (with a fake host whose blkid returns what udevd's blkid found)
// yields the links, properties and tags udevd produced for it.
// Expected data: test/fixtures/udev/rules-loop0/ (copied from /work/shared/reference/udev/).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileRuleFiles, listRulesFiles, rulesFiles } from '../../src/devices/rules/rules-compiler';
import { formatRuleDiagnostic } from '../../src/devices/rules/verify-rules';
import { runRules } from '../../src/devices/rules/rules-executor';
import { parseKernelUevent } from '../../src/devices/uevent-parse';
import type { Uevent } from '../../src/devices/types';
import { FakeRulesHost } from '../helpers/fake-rules-host';

const RULE_DIRS = ['/lib/udev/rules.d', '/usr/lib/udev/rules.d'];
const SYSTEM_DIRS = ['/etc/udev/rules.d', '/run/udev/rules.d', '/usr/lib/udev/rules.d', '/lib/udev/rules.d'];
const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const LOOP0 = '/devices/virtual/block/loop0';

const present = RULE_DIRS.filter((d) => fs.existsSync(d));
const skip = present.length === 0 ? `no udev rules here (${RULE_DIRS.join(', ')} absent)` : false;

function fixture(rel: string): string {
  return fs.readFileSync(path.join(FIXTURES, rel), 'utf8');
}

/** `E: KEY=VALUE` / `S: link` lines of `udevadm info`. */
function parseUdevadmInfo(text: string): { props: Map<string, string>; links: string[] } {
  const props = new Map<string, string>();
  const links: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('E: ')) {
      const kv = line.substring(3);
      const eq = kv.indexOf('=');
      props.set(kv.substring(0, eq), kv.substring(eq + 1));
    } else if (line.startsWith('S: ')) links.push(line.substring(3));
  }
  return { props, links };
}

/** The `S:`, `E:` and `G:` records of the database file dump (`cat -A`: lines end in '$'). */
function parseDbDump(text: string): { links: string[]; props: Map<string, string>; tags: string[] } {
  const links: string[] = [];
  const props = new Map<string, string>();
  const tags: string[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.endsWith('$')) continue;
    const line = raw.substring(0, raw.length - 1);
    if (line.startsWith('S:')) links.push(line.substring(2));
    else if (line.startsWith('G:')) tags.push(line.substring(2));
    else if (line.startsWith('E:')) {
      const eq = line.indexOf('=');
      props.set(line.substring(2, eq), line.substring(eq + 1));
    }
  }
  return { links, props, tags };
}

function loop0Host(blkid: Map<string, string>): FakeRulesHost {
  const host = new FakeRulesHost([
    { devpath: '/devices/virtual/block', attrs: {} },
    {
      devpath: LOOP0,
      subsystem: 'block',
      devtype: 'disk',
      devname: '/dev/loop0',
      major: 7,
      minor: 0,
      attrs: {
        removable: '0\n',
        ro: '0\n',
        size: '20480\n',
        'loop/backing_file': '/root/IMAGE\n',
        'queue/rotational': '1\n',
      },
    },
  ]);
  host.builtins.set('blkid', () => new Map(blkid));
  return host;
}

function recordedEvent(): Uevent {
  const parsed = parseKernelUevent(
    fs.readFileSync(path.join(FIXTURES, 'uevents/raw-attach/msg00-kernel.bin')),
  );
  assert.ok(parsed.ok, 'recorded uevent parses');
  return parsed.event;
}

describe('Debian udev rules', { skip }, () => {
  for (const dir of present) {
    test(`every file in ${dir} compiles with zero errors`, (t) => {
      const files = rulesFiles([dir]);
      assert.ok(files.length > 0, `${dir} has rule files`);
      const compiled = compileRuleFiles(files);
      const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
      const warnings = compiled.diagnostics.length - errors.length;
      t.diagnostic(
        `${dir}: ${files.length} files, ${compiled.lines.length} rules, ${compiled.tokenCount} tokens, ` +
          `${errors.length} errors, ${warnings} warnings`,
      );
      for (const d of compiled.diagnostics) t.diagnostic(formatRuleDiagnostic(d));
      assert.deepEqual(errors.map(formatRuleDiagnostic), []);
    });
  }

  test('the loop0 change event gives the links, properties and tags udevd produced', async (t) => {
    const info = parseUdevadmInfo(fixture('udev/rules-loop0/udevadm-info-loop0.txt'));
    const db = parseDbDump(fixture('udev/rules-loop0/db-b7:0-attached.txt'));
    const linkDump = fixture('udev/rules-loop0/links-loop0.txt');
    const blkid = new Map([...info.props].filter(([k]) => k.startsWith('ID_FS_')));
    assert.ok(blkid.size > 0);

    const masked = listRulesFiles(SYSTEM_DIRS).filter((e) => e.masked);
    t.diagnostic(`masked here: ${masked.map((e) => e.path).join(', ') || 'none'}`);
    const compiled = compileRuleFiles(rulesFiles(SYSTEM_DIRS));
    const host = loop0Host(blkid);
    const event = recordedEvent();
    const result = await runRules(compiled, event, undefined, host);

    assert.deepEqual(result.diagnostics, []);
    // Links: same set as `udevadm info`, the database and the /dev/disk symlinks.
    const got = [...result.devlinks].sort();
    assert.deepEqual(got, [...info.links].sort());
    assert.deepEqual(got, [...db.links].sort());
    for (const l of got)
      assert.ok(linkDump.includes(`/dev/${l} -> ../../loop0`), `link ${l} in links-loop0.txt`);
    assert.deepEqual(
      (result.properties.get('DEVLINKS') ?? '').split(' ').sort(),
      (info.props.get('DEVLINKS') ?? '').split(' ').sort(),
    );
    // Properties: everything udevd reported, except what the database layer adds (and DEVLINKS,
    // whose order is udevd's hash order: compared as a set above).
    const skipKeys = new Set(['USEC_INITIALIZED', 'TAGS', 'CURRENT_TAGS', 'DEVLINKS']);
    for (const [k, v] of info.props) {
      if (skipKeys.has(k)) continue;
      assert.equal(result.properties.get(k), v, `property ${k}`);
    }
    // Nothing the rules added beyond what udevd had (the event's own keys aside).
    const eventKeys = new Set(event.properties.keys());
    for (const k of result.properties.keys()) {
      if (eventKeys.has(k)) continue;
      assert.ok(info.props.has(k), `unexpected property ${k}=${result.properties.get(k) ?? ''}`);
    }
    // Database E: records are the rule-set properties.
    for (const [k, v] of db.props) assert.equal(result.properties.get(k), v, `db property ${k}`);
    assert.deepEqual([...result.tags].sort(), db.tags.sort());
    assert.equal(result.linkPriority, 0);
    t.diagnostic(`links: ${result.devlinks.join(' ')}; tags: ${[...result.tags].join(',')}`);
    t.diagnostic(`host calls: ${host.calls.filter((c) => !c.startsWith('attr')).join('; ')}`);
  });

  test('throughput: Debian rule set on the loop0 event (measured, not asserted)', async (t) => {
    const compileStart = process.hrtime.bigint();
    const compiled = compileRuleFiles(rulesFiles(SYSTEM_DIRS));
    const compileMs = Number(process.hrtime.bigint() - compileStart) / 1e6;
    const info = parseUdevadmInfo(fixture('udev/rules-loop0/udevadm-info-loop0.txt'));
    const host = loop0Host(new Map([...info.props].filter(([k]) => k.startsWith('ID_FS_'))));
    const event = recordedEvent();
    for (let i = 0; i < 200; i++) await runRules(compiled, event, undefined, host);
    const events = 3000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < events; i++) await runRules(compiled, event, undefined, host);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rulesPerSec = (events * compiled.lines.length) / seconds;
    t.diagnostic(
      `compile ${compiled.lines.length} rules: ${compileMs.toFixed(1)} ms; ` +
        `${events} events in ${seconds.toFixed(3)} s = ${(events / seconds).toFixed(0)} events/s, ` +
        `${(rulesPerSec / 1e6).toFixed(2)} M rules/s`,
    );
    assert.ok(rulesPerSec > 0);
  });
});
