// The combined load of issue 9, small and bounded (bench/load is the full-size measurement): at
// the same time, 10,000 libudev-format uevents into a companion-mode daemon's group-2 socket, 500
// connections on an Accept=yes socket, a Type=notify service sending 10,000 STATUS= datagrams and
// 10,000 file creations under a PathModified= unit, while `status` is asked every 20 ms on a
// control connection and every 2 s through the triggerctl binary. Correctness only, no timing:
// every status request answered (10 s each at most), no accepted connection lost, every event
// received and the fake devices gone again, the last STATUS= visible, a path trigger after the last
// creation, and the daemon alive with a sane RSS. Root: the daemon takes group-2 uevents from uid 0
// only and runs services.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  armLoadUnits,
  lostConnections,
  runCombinedLoad,
  writeLoadUnits,
  type CombinedLoadResult,
  type LoadDirs,
  type LoadPrograms,
  type LoadSizes,
} from '../../bench/lib/combined-load';
import { compileC, freePort, LOAD_CLIENT_SOURCE } from '../../bench/lib/connect-load';
import { FILE_BURST_SOURCE, NOTIFY_FLOOD_SOURCE } from '../../bench/lib/load-programs';
import { ONE_LINE_SOURCE } from '../../bench/lib/socket-programs';
import type { ControlClient } from '../../src/control/client';
import { skipUnlessRoot, startDaemon, TRIGGERCTL, type RunningDaemon } from '../helpers/daemon';

const SIZES: LoadSizes = {
  uevents: { count: 10_000, devices: 100 },
  connections: { count: 500, concurrency: 16, maxConnections: 64, timeoutMs: 20_000 },
  notify: { count: 10_000 },
  files: { count: 10_000 },
};
/** A generous bound on the daemon's RSS under this load (it idles at ~60 MB). */
const RSS_BOUND_KIB = 400 * 1024;

function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

describe(
  'combined load: uevents, an Accept=yes flood, a notify flood and a path burst at once',
  {
    skip: skipUnlessRoot(),
    timeout: 120_000,
  },
  () => {
    let tmp: string | undefined;
    let daemon: RunningDaemon | undefined;
    let client: ControlClient | undefined;
    let result: CombinedLoadResult;

    before(async () => {
      tmp = fs.mkdtempSync('/dev/shm/triggerd-test-load-');
      const dirs: LoadDirs = {
        units: path.join(tmp, 'units'),
        spool: path.join(tmp, 'spool'),
        out: path.join(tmp, 'out'),
      };
      for (const d of [dirs.units, dirs.spool, dirs.out, path.join(tmp, 'bin'), path.join(tmp, 'udevdb')])
        fs.mkdirSync(d);
      const bin = path.join(tmp, 'bin');
      const programs: LoadPrograms = {
        oneLine: await compileC(bin, 'one-line', ONE_LINE_SOURCE),
        client: await compileC(bin, 'load-client', LOAD_CLIENT_SOURCE),
        notifyFlood: await compileC(bin, 'notify-flood', NOTIFY_FLOOD_SOURCE),
        fileBurst: await compileC(bin, 'file-burst', FILE_BURST_SOURCE),
      };
      const port = await freePort();
      writeLoadUnits(dirs, port, programs, SIZES);
      // Later arguments win: companion mode on our units, an empty udev database, info (not debug) logs.
      daemon = await startDaemon([
        '--mode',
        'companion',
        '--unit-path',
        dirs.units,
        '--udev-db-dir',
        path.join(tmp, 'udevdb'),
        '--log-level',
        'info',
      ]);
      const c = await daemon.client();
      client = c;
      const request = (method: 'status' | 'unit-status' | 'start', params: Record<string, unknown> = {}) =>
        c.request(method, params);
      await armLoadUnits(request, 10_000);
      result = await runCombinedLoad({
        daemonPid: daemon.pid,
        socket: daemon.socket,
        triggerctl: TRIGGERCTL,
        request,
        port,
        programs,
        dirs,
        sizes: SIZES,
        probe: { intervalMs: 20, cliIntervalMs: 2000, timeoutMs: 10_000 },
        deadlineMs: 30_000,
      });
    });

    after(async () => {
      client?.close();
      await daemon?.stop();
      if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('every status request was answered, on the control connection and through triggerctl', () => {
      const failed = [...result.socketProbe, ...result.cliProbe].filter((s) => !s.ok);
      assert.deepEqual(failed, []);
      assert.ok(result.socketProbe.length >= 10, `${result.socketProbe.length} socket probes`);
      assert.ok(result.cliProbe.length >= 1, `${result.cliProbe.length} triggerctl probes`);
    });

    test('every uevent was received and the fake devices are gone again', () => {
      const u = result.uevents;
      assert.equal(u.error, undefined);
      assert.equal(u.sender?.sent, SIZES.uevents.count);
      assert.ok(u.receivedDelta >= SIZES.uevents.count, `received ${u.receivedDelta}`);
      assert.equal(u.devicesAfter, u.devicesBefore);
    });

    test('no accepted connection was lost: each got its line or was refused by MaxConnections=', () => {
      const c = result.connections;
      assert.equal(c.error, undefined);
      const client = c.client;
      assert.ok(client !== undefined);
      assert.equal(client.ok, c.accepted, 'every started instance served its connection');
      assert.equal(client.noLine, c.refused, 'every connection without a line was a refusal');
      assert.deepEqual([client.refused, client.reset, client.timedOut, client.other], [0, 0, 0, 0]);
      assert.equal(lostConnections(c), 0);
      assert.equal(client.ok + c.refused, SIZES.connections.count);
      assert.equal(c.socketSubAfter, 'listening');
    });

    test("the notify service's last STATUS= is what status shows", () => {
      const n = result.notify;
      assert.equal(n.error, undefined);
      assert.equal(n.result?.failed, 0);
      assert.equal(n.result?.sent, SIZES.notify.count + 1);
      assert.equal(n.statusText, `done ${SIZES.notify.count}`);
    });

    test('the path unit triggered after the last file creation', () => {
      const f = result.files;
      assert.equal(f.error, undefined);
      assert.equal(f.result?.created, SIZES.files.count);
      assert.equal(f.finalTrigger, true);
      assert.ok(f.runs >= 1);
    });

    test('the daemon is alive, answers, and its RSS stayed bounded', async () => {
      assert.ok(daemon !== undefined && client !== undefined);
      assert.equal(daemon.proc.exitCode, null);
      const status = (await client.request('status')) as { pid: number };
      assert.equal(status.pid, daemon.pid);
      assert.ok(result.rss.peakKiB < RSS_BOUND_KIB, `peak RSS ${result.rss.peakKiB} KiB`);
      const now = rssKiB(daemon.pid);
      assert.ok(now !== undefined && now < RSS_BOUND_KIB, `RSS ${now} KiB`);
    });
  },
);
