// Every unit file the distribution ships must load: systemd files work unchanged under triggerd.
// Services and targets are parsed fully; other types load their [Unit]/[Install] parts and keep
// their own section raw. Warnings (keys triggerd does not implement) are fine; an error-severity
// diagnostic or a unit that does not load is a failure. .ci/run installs a few packages that ship
// units (see the report in the loader's pull request) so there is more than systemd's own set.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { parseUnitName, instanceName } from '../../src/units/specifiers';
import { UnitLoader } from '../../src/units/unit-loader';

const CANDIDATES = ['/lib/systemd/system', '/usr/lib/systemd/system'];

/** Existing directories, once each (on merged-/usr systems /lib is /usr/lib). */
function unitDirs(): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of CANDIDATES) {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(dir);
  }
  return out;
}

const dirs = unitDirs();

describe('distribution unit files load', () => {
  if (dirs.length === 0) {
    test(
      'unit directories',
      { skip: `none of ${CANDIDATES.join(', ')} exists on this machine` },
      () => undefined,
    );
    return;
  }
  for (const dir of dirs) {
    test(`every unit in ${dir}`, () => {
      const loader = new UnitLoader([dir]);
      const byType = new Map<string, number>();
      const byState = new Map<string, number>();
      const warnings = new Map<string, number>();
      const unsupported = new Map<string, number>();
      const failures: string[] = [];
      const files = loader.listUnitFiles();
      for (const f of files) {
        const parts = parseUnitName(f.name);
        if (parts === undefined) continue;
        let name = f.name;
        // Templates load as an instance: their DefaultInstance= or a placeholder.
        if (parts.kind === 'template') {
          const t = loader.load(name);
          name = instanceName(parts, t.install.defaultInstance ?? 'test_instance');
        }
        const u = loader.load(name);
        byType.set(parts.suffix, (byType.get(parts.suffix) ?? 0) + 1);
        byState.set(u.loadState, (byState.get(u.loadState) ?? 0) + 1);
        if (u.loadState !== 'loaded' && u.loadState !== 'masked')
          failures.push(`${name}: load state ${u.loadState}`);
        if ((parts.suffix === 'service') !== (u.service !== undefined) && u.loadState === 'loaded') {
          failures.push(`${name}: [Service] parsed for the wrong type`);
        }
        for (const d of u.diagnostics) {
          if (d.severity === 'error') failures.push(`${name}: ${d.message} [${d.code}]`);
          else warnings.set(d.code, (warnings.get(d.code) ?? 0) + 1);
          const m = /key (\w+) is not supported/.exec(d.message);
          if (m !== null) unsupported.set(m[1], (unsupported.get(m[1]) ?? 0) + 1);
        }
      }
      const fmt = (m: Map<string, number>): string =>
        [...m]
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
      console.log(`${dir}: ${files.length} unit files; by type: ${fmt(byType)}`);
      console.log(
        `load states: ${fmt(byState)}; errors: ${failures.length}; warnings: ${fmt(warnings) || 'none'}`,
      );
      console.log(
        `most used unsupported keys: ${fmt(new Map([...unsupported].sort((a, b) => b[1] - a[1]).slice(0, 12)))}`,
      );
      assert.ok(files.length > 0, `no unit files in ${dir}`);
      assert.deepEqual(failures, []);
    });
  }
});
