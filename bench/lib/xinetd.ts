// The inetd peer: Debian's xinetd, run in the foreground (-dontfork) as our child on a
// configuration file in the benchmark's temporary directory, serving one service on 127.0.0.1.
// Installing it is opt-in (CI or TRIGGERD_BENCH_INSTALL=1) and never starts the packaged daemon
// (bench/lib/apt). Stopped by its pid; server processes it forked and left are killed by pid.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aptInstall } from './apt';
import { startListener, type RunningListener } from './listener-process';
import { runCommand } from './proc';

const XINETD_CANDIDATES = ['/usr/sbin/xinetd', '/usr/bin/xinetd', '/sbin/xinetd'];

export interface XinetdTool {
  path: string;
  version: string;
  /** 'preinstalled', or 'installed-now' when this run installed the package. */
  origin: 'preinstalled' | 'installed-now';
}

export type XinetdAvailability = { ok: true; tool: XinetdTool } | { ok: false; reason: string };

function findXinetd(): string | undefined {
  return XINETD_CANDIDATES.find((p) => fs.existsSync(p));
}

/** Find xinetd, installing Debian's `xinetd` package first when allowed. */
export async function ensureXinetd(allowInstall: boolean): Promise<XinetdAvailability> {
  let origin: XinetdTool['origin'] = 'preinstalled';
  let found = findXinetd();
  if (found === undefined) {
    if (!allowInstall) {
      return {
        ok: false,
        reason:
          'xinetd is not installed (package "xinetd"); set TRIGGERD_BENCH_INSTALL=1 (or CI=true) to let ' +
          'the benchmark install it',
      };
    }
    const failure = await aptInstall(['xinetd'], { noRecommends: true });
    if (failure !== undefined) return { ok: false, reason: failure };
    found = findXinetd();
    if (found === undefined)
      return { ok: false, reason: 'apt-get install xinetd succeeded but xinetd is missing' };
    origin = 'installed-now';
  }
  const v = await runCommand(found, ['-version'], { timeoutMs: 10_000 });
  const version = `${v.stdout} ${v.stderr}`.trim().split('\n')[0] ?? '';
  return { ok: true, tool: { path: found, version, origin } };
}

/**
 * One stream service, wait=no (a server per connection, the connection as its stdin/stdout),
 * without xinetd's default limits (50 connections/s then 10 s off, which a benchmark would hit at
 * once) and logging nothing per connection (failures to a file in `dir`).
 */
export function xinetdConfig(dir: string, port: number, server: string): string {
  return [
    'defaults',
    '{',
    '  instances = UNLIMITED',
    '  per_source = UNLIMITED',
    '  cps = 1000000 1',
    `  log_type = FILE ${path.join(dir, 'xinetd.log')}`,
    '  log_on_success =',
    '  log_on_failure = HOST',
    '}',
    '',
    'service bench-accept',
    '{',
    '  type = UNLISTED',
    '  socket_type = stream',
    '  protocol = tcp',
    '  wait = no',
    '  user = root',
    `  server = ${server}`,
    `  port = ${port}`,
    '  bind = 127.0.0.1',
    '  flags = IPv4 REUSE',
    '}',
    '',
  ].join('\n');
}

/** Start `xinetd -dontfork -stayalive -f <dir>/xinetd.conf` and wait until the port accepts. */
export function startXinetd(
  tool: XinetdTool,
  dir: string,
  port: number,
  server: string,
): Promise<RunningListener> {
  const conf = path.join(dir, 'xinetd.conf');
  fs.writeFileSync(conf, xinetdConfig(dir, port, server));
  return startListener('xinetd', tool.path, ['-dontfork', '-stayalive', '-f', conf], {
    port,
    ready: 'connect',
  });
}
