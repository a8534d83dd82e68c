// Installing a peer's Debian package from a benchmark: opt-in (CI or TRIGGERD_BENCH_INSTALL=1,
// see installAllowed), and never starting the daemon a package ships (a policy-rc.d that denies
// every start is put in place for the install when there is none, and removed afterwards).
import * as fs from 'node:fs';
import { onCleanup } from './cleanup';
import { runCommand } from './proc';

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/** Whether this run may install packages: only in CI or when asked explicitly. */
export function installAllowed(): boolean {
  return process.env.CI === 'true' || process.env.TRIGGERD_BENCH_INSTALL === '1';
}

/**
 * `apt-get install -y <packages>` with a policy-rc.d that forbids starting daemons; returns an
 * error text, or undefined when it worked. `noRecommends` adds --no-install-recommends.
 */
export async function aptInstall(
  packages: readonly string[],
  options: { noRecommends?: boolean } = {},
): Promise<string | undefined> {
  let removePolicy: (() => void) | undefined;
  if (!fs.existsSync(POLICY_RC_D)) {
    fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    fs.chmodSync(POLICY_RC_D, 0o755);
    removePolicy = onCleanup('remove policy-rc.d', () => fs.rmSync(POLICY_RC_D, { force: true }));
  }
  const args = [
    'install',
    '-y',
    ...(options.noRecommends === true ? ['--no-install-recommends'] : []),
    ...packages,
  ];
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const result = await runCommand('apt-get', args, { timeoutMs: 600_000, env, killOnCleanup: false });
    if (result.code !== 0) {
      const tail = result.stderr.trim().split('\n').slice(-3).join(' | ');
      return `apt-get ${args.join(' ')} failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}): ${tail}`;
    }
    return undefined;
  } finally {
    removePolicy?.();
  }
}
