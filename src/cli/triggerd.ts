#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --single-threaded-gc --no-sparkplug --bytecode-old-age=1
// The young generation is capped at 1 MiB: the daemon allocates in small steady amounts, and the
// default (16 MiB, grown at start-up and never given back) costs ~5 MB of idle RSS.
// --single-threaded-gc: on a small machine the GC's helper threads only compete with the
// blkid probes for the same CPUs (bench/storm: ~8% more events/s, slightly lower RSS).
// MALLOC_ARENA_MAX=1: glibc would give each allocating thread an arena of its own and keep its
// pages; the daemon's threads allocate little (~2 MB less idle RSS). Read by glibc before main,
// so it is set where the process starts (this line, npm start, the bench launchers).
// --no-sparkplug: the baseline compiler's code costs ~1 MB of idle RSS and bought nothing
// measurable here (bench/storm 1231-1250 events/s without it, 1241-1243 with it).
// --bytecode-old-age=1: the bytecode of functions that ran at start-up only (unit and rules
// parsing) is dropped at the first full collection they were not used in, instead of the fifth
// (daemon-idle-rss ~0.5 MB lower; a function that is used again is compiled again).
// triggerd: the daemon, in the foreground. SIGTERM/SIGINT stop it cleanly (exit 0), SIGHUP reloads,
// SIGUSR1 re-executes it (state kept: see src/core/daemon-state.ts).
import { parseArgs } from 'node:util';
import fs = require('node:fs');
import { createLogger } from '../util/logger';
import { loadNative } from '../native/addon';
import { loadNativeSpawn } from '../native/spawn-addon';
import { loadNotifyNative } from '../native/notify-addon';
import { UnitLogRings } from '../core/unit-log';
import { defaultRuntimeDir, isRoot } from '../util/paths';
import { Daemon, type DaemonMode } from '../core/daemon';
import { DEFAULT_CONTROL_SOCKET } from '../control/client';
import type { LevelWithSilent } from 'pino';
import { config as rxConfig } from '../util/rx';
import { applyAutogroupNice, parseAutogroupNice } from '../core/autogroup-nice';

const USAGE = `usage: triggerd [options]
  --unit-path DIRS        unit directories, ':'-separated
                          (default /etc/triggerd/units:/run/triggerd/units:/usr/lib/triggerd/units)
  --rules-path DIRS       rules directories, ':'-separated (default /etc/triggerd/rules.d)
  --runtime-dir DIR       runtime state (default /run/triggerd; for other users $XDG_RUNTIME_DIR/triggerd)
  --state-dir DIR         persistent state: Persistent=yes timer stamps in DIR/timers (default /var/lib/triggerd;
                          for other users $XDG_STATE_HOME/triggerd or ~/.local/state/triggerd)
  --fstab PATH            fstab read into .mount/.automount units ('' for none; default /etc/fstab)
  --control-socket PATH   control socket (default $TRIGGERD_SOCKET or ${DEFAULT_CONTROL_SOCKET})
  --control-group GROUP   group (name or gid) allowed to make changes besides root
  --mode MODE             standalone | companion | auto (default auto: companion when udevd runs)
  --udev-db-dir DIR       udevd's database, read in companion mode (default /run/udev/data)
  --udev-run-dir DIR      where standalone mode writes the database libudev reads (default /run/udev)
  --receive-buffer BYTES  uevent socket receive buffer (default 134217728)
  --program-timeout SEC   how long a rule's PROGRAM/IMPORT{program}/RUN may take before it is killed (default 180)
  --children-max N        device events processed at once in standalone mode (default 8 + 2 per CPU, as udevd)
  --shutdown-timeout SEC  how long SIGTERM waits for units to stop before killing them (default 90)
  --autogroup-nice=N      nice value (-20..19) of the daemon's own autogroup, the kernel's CPU-share group
                          of a session, when the daemon leads its session; services keep their own groups
                          and Nice= (see src/core/autogroup-nice.ts; default: left as it is)
  --log-level LEVEL       trace | debug | info | warn | error (default info)
  --log-format FORMAT     pretty | json (default: pretty on a terminal)`;

function fail(message: string): never {
  process.stderr.write(`triggerd: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function groupId(spec: string): number {
  if (/^\d+$/.test(spec)) return Number(spec);
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === spec);
  if (line === undefined) fail(`--control-group: no group named ${spec}`);
  return Number(line.split(':')[2]);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'unit-path': {
          type: 'string',
          default: '/etc/triggerd/units:/run/triggerd/units:/usr/lib/triggerd/units',
        },
        'rules-path': { type: 'string', default: '/etc/triggerd/rules.d' },
        'runtime-dir': { type: 'string', default: defaultRuntimeDir() },
        'state-dir': { type: 'string' },
        'control-socket': { type: 'string' },
        fstab: { type: 'string', default: '/etc/fstab' },
        'control-group': { type: 'string' },
        mode: { type: 'string', default: 'auto' },
        'udev-db-dir': { type: 'string' },
        'udev-run-dir': { type: 'string' },
        'shutdown-timeout': { type: 'string', default: '90' },
        'program-timeout': { type: 'string', default: '180' },
        'children-max': { type: 'string' },
        'autogroup-nice': { type: 'string' },
        'receive-buffer': { type: 'string', default: String(128 * 1024 * 1024) },
        'log-level': { type: 'string', default: 'info' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help === true) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const mode = values.mode as DaemonMode;
  if (!['standalone', 'companion', 'auto'].includes(mode))
    fail(`--mode must be standalone, companion or auto`);
  const rcvbuf = Number(values['receive-buffer']);
  if (!Number.isInteger(rcvbuf) || rcvbuf < 4096) fail('--receive-buffer must be an integer ≥ 4096');
  const shutdownSeconds = Number(values['shutdown-timeout']);
  if (!Number.isFinite(shutdownSeconds) || shutdownSeconds < 0)
    fail('--shutdown-timeout must be a number of seconds');
  const programSeconds = Number(values['program-timeout']);
  if (!Number.isFinite(programSeconds) || programSeconds <= 0)
    fail('--program-timeout must be a positive number of seconds');
  const childrenMax = values['children-max'] === undefined ? undefined : Number(values['children-max']);
  if (childrenMax !== undefined && (!Number.isInteger(childrenMax) || childrenMax < 1))
    fail('--children-max must be a positive integer');
  let autogroupNice: number | undefined;
  try {
    autogroupNice =
      values['autogroup-nice'] === undefined ? undefined : parseAutogroupNice(values['autogroup-nice']);
  } catch (err) {
    fail((err as Error).message);
  }
  const level = values['log-level'] as LevelWithSilent;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level))
    fail('--log-level: unknown level');
  const format = values['log-format'];
  if (format !== undefined && format !== 'pretty' && format !== 'json')
    fail('--log-format must be pretty or json');
  const rings = new UnitLogRings();
  const logger = createLogger({
    level,
    pretty: format === undefined ? undefined : format === 'pretty',
    onUnitRecord: (r) =>
      rings.append({
        time: r.time,
        level: r.level,
        unit: r.unit,
        msg: r.msg,
        stream: typeof r.fields.stream === 'string' ? r.fields.stream : undefined,
        pid: typeof r.fields.pid === 'number' ? r.fields.pid : undefined,
      }),
  });
  // An exception in one subscriber is logged; it must not end a shared source or the daemon.
  rxConfig.onUnhandledError = (err: unknown) => logger.error({ err }, 'unhandled error in an event stream');
  if (autogroupNice !== undefined) {
    try {
      const outcome = applyAutogroupNice(autogroupNice);
      if (outcome.applied) logger.info({ nice: autogroupNice, group: outcome.group }, 'autogroup nice set');
      else
        logger.warn(
          { nice: autogroupNice, reason: outcome.reason },
          outcome.reason === 'not-session-leader'
            ? '--autogroup-nice: the daemon does not lead its session, whose group is shared with its caller; left alone'
            : '--autogroup-nice: this kernel has no autogroups (/proc/self/autogroup); nothing to set',
        );
    } catch (err) {
      logger.warn({ err, nice: autogroupNice }, `--autogroup-nice: ${(err as Error).message}`);
    }
  }
  const runtimeDir = values['runtime-dir'];
  const native = loadNative();
  const daemon = new Daemon({
    native,
    spawn: loadNativeSpawn(),
    notify: loadNotifyNative(),
    rings,
    logger,
    unitPaths: values['unit-path'].split(':').filter(Boolean),
    rulesPaths: values['rules-path'].split(':').filter(Boolean),
    fstab: values.fstab,
    runtimeDir,
    stateDir: values['state-dir'],
    controlSocket: values['control-socket'] ?? process.env.TRIGGERD_SOCKET ?? `${runtimeDir}/control.sock`,
    mode,
    receiveBufferBytes: rcvbuf,
    udevDbDir: values['udev-db-dir'],
    udevRunDir: values['udev-run-dir'],
    shutdownTimeoutMs: shutdownSeconds * 1000,
    programTimeoutMs: programSeconds * 1000,
    childrenMax,
    controlGid: values['control-group'] === undefined ? undefined : groupId(values['control-group']),
  });
  if (!isRoot()) {
    logger.warn(
      { uid: process.getuid?.() },
      'running as an ordinary user: cgroup v2 groups, User=/Group=, sandboxing (ProtectSystem=, PrivateTmp=, ...) ' +
        'and a forced uevent receive buffer need root and are skipped or fail per unit with the reason; ' +
        'services run as this user',
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    daemon.stop().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Re-execute keeping sockets, stored fds and running services (triggerctl daemon-reexec).
  process.on('SIGUSR1', () => {
    daemon.reexec().catch((err: unknown) => logger.error({ err }, 're-exec refused or failed'));
  });
  process.on('SIGHUP', () => {
    try {
      daemon.reload();
    } catch (err) {
      logger.error({ err }, 'reload failed; keeping the old configuration');
    }
  });
  try {
    await daemon.start();
    // Start-up (coldplug through the rules, loading units) is the daemon's allocation peak;
    // once it has settled, hand the heap pages it no longer needs back to the system. The full
    // collections this takes pause the loop, so it waits for a quiet second without uevents.
    // Later bursts (a storm, a flood of connections: over BURST uevent batches and unit
    // transitions) are given back the same way once a second has been quiet again.
    const BURST = 1000;
    const activity = (): number => daemon.pipeline.batches + daemon.transitions;
    let seenBatches = daemon.pipeline.batches;
    let releasedAt = activity();
    let seen = releasedAt;
    const afterBursts = (): void => {
      const now = activity();
      const quiet = now === seen && daemon.pipeline.pending() === 0;
      seen = now;
      if (quiet && now - releasedAt > BURST) {
        native.releaseMemory();
        releasedAt = now;
      }
      setTimeout(afterBursts, quiet ? 5000 : 1000).unref();
    };
    const releaseWhenQuiet = (): void => {
      const quiet = daemon.pipeline.batches === seenBatches && daemon.pipeline.pending() === 0;
      seenBatches = daemon.pipeline.batches;
      if (quiet) {
        native.releaseMemory();
        releasedAt = seen = activity();
        setTimeout(afterBursts, 5000).unref();
      } else setTimeout(releaseWhenQuiet, 1000).unref();
    };
    setTimeout(releaseWhenQuiet, 1000).unref();
  } catch (err) {
    logger.fatal({ err }, `cannot start: ${(err as Error).message}`);
    logger.flush();
    process.exitCode = 1;
    setImmediate(() => process.exit(1));
  }
}

void main();
