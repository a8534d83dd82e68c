#!/usr/bin/env node
// triggerctl: talk to a running triggerd. Tables for people, --json for scripts. Exit codes follow
// systemctl: 0 done; 1 the daemon refused or a job failed (its message is printed); 2 usage;
// 3 a unit is not active (status, is-active); 4 no such unit (status); 5 no daemon at the socket.
import { parseArgs } from 'node:util';
import { ControlClient, DaemonError, defaultSocketPath } from '../control/client';
import type { DeviceJson, UeventJson } from '../control/views';
import type { UnitSummary } from '../units/unit-type';
import type { UnitLogRecord } from '../core/unit-log';
import { formatVerifyResults, verifyFailed, verifyUnitFiles } from '../units/verify';
import { verifyRules } from '../devices/rules/verify-rules';
import { calendarCommand } from '../timers/calendar-command';
import { formatListTimers, type TimerRow } from '../timers/list-timers-view';
import { localTimeZone } from '../timers/time-zone';
import {
  formatSecurityList,
  formatSecurityReport,
  type SecurityReportJson,
  type SecurityRowJson,
} from '../control/security-view';

const USAGE = `usage: triggerctl [--socket PATH] [--json] COMMAND [ARGS]
units:
  list-units [--type T] [--state S]   list units
  list-unit-files                     unit files and whether they are enabled
  list-jobs                           queued and running jobs
  list-timers [--all] [--why]         timers: next and last elapse (like systemctl list-timers; --why: why then)
  status [UNIT]                       one unit's state, processes and last log lines (no UNIT: the daemon)
  show UNIT [--property P]... [--value]
  cat UNIT                            the unit file and its drop-ins
  security [UNIT]                     how exposed a service is, from its sandbox settings (like
                                      systemd-analyze security; no UNIT: one line per service)
  logs UNIT [-n N] [-f]               the unit's log lines (its processes' output included)
  start|stop|restart|try-restart|reload UNIT... [--no-block] [--job-mode M]
  is-active UNIT...  |  is-failed UNIT...
  enable UNIT... [--now]  |  disable UNIT... [--now]
  reset-failed [UNIT...]
  daemon-reload                       re-read unit files and rules (like SIGHUP)
  daemon-reexec                       re-execute the daemon, keeping sockets and running services (like SIGUSR1)
  verify FILE...                      check unit files (no daemon needed)
timers:
  calendar [--iterations=N] [--base-time=TIME] [--strict-systemd] EXPR...
                                      normalize calendar events and show their next elapses, in
                                      systemd-analyze calendar's layout (no daemon needed)
devices:
  monitor                             uevents as they are processed (like udevadm monitor --kernel --property)
  devices [--subsystem S]             every device the daemon knows
  device-info DEVNODE|SYSPATH         one device's properties, tags and links (like udevadm info)
  test-rules SYSPATH [--action A]     what the rules would do to a device, without doing it (like udevadm test)
  verify-rules [FILE...]              check rule files (no daemon needed; default: the rules path)
  why UNIT.device                     why a device unit is not plugged
  trigger [--subsystem-match S]... [--action A] [--dry-run] [--settle] [--verbose]
  settle [--timeout SECONDS]          wait until every queued uevent has been processed
  ping                                check the daemon answers`;

class UsageError extends Error {}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function out(text: string): void {
  process.stdout.write(text);
}

/** A list as JSON for scripts, or as a table with a count line for people. */
function printList<T>(
  json: boolean,
  items: T[],
  headers: string[],
  row: (item: T) => string[],
  noun: string,
): void {
  if (json) {
    out(JSON.stringify(items, null, 2) + '\n');
    return;
  }
  out(table(headers, items.map(row)));
  out(`\n${items.length} ${noun} listed.\n`);
}

function printEvent(e: UeventJson): void {
  const label = e.source === 'udev' ? 'UDEV' : e.source === 'synthetic' ? 'SYNTH' : 'KERNEL';
  let text = `${label}[${e.monotonic.toFixed(6)}] ${e.action.padEnd(8)} ${e.devpath} (${e.subsystem})\n`;
  for (const [k, v] of Object.entries(e.properties)) text += `${k}=${v}\n`;
  out(text + '\n');
}

function formatLog(r: UnitLogRecord): string {
  const t = new Date(r.time);
  const stamp = `${t.toISOString().slice(0, 10)} ${t.toTimeString().slice(0, 8)}`;
  const who = r.pid !== undefined ? `${r.unit}[${r.pid}]` : r.unit;
  return `${stamp} ${who}: ${r.msg}\n`;
}

interface UnitStatusJson extends UnitSummary {
  since: number;
  fragmentPath: string | null;
  dropInPaths: string[];
  diagnostics: { severity: string; message: string }[];
  properties: Record<string, unknown>;
  /** Type-specific lines (a socket's listen addresses, counters, pause reason). */
  statusLines?: string[];
  job: { id: number; type: string; state: string } | null;
  logs: UnitLogRecord[];
}

function printStatus(s: UnitStatusJson): void {
  const dot = s.active === 'active' ? '●' : s.active === 'failed' ? '×' : '○';
  let text = `${dot} ${s.name} - ${s.description}\n`;
  text += `     Loaded: ${s.load}${s.fragmentPath ? ` (${s.fragmentPath})` : ''}\n`;
  if (s.dropInPaths.length > 0) text += `    Drop-In: ${s.dropInPaths.join(', ')}\n`;
  const result = s.properties.Result;
  text += `     Active: ${s.active} (${s.sub})${s.active === 'failed' && typeof result === 'string' ? ` (Result: ${result})` : ''} since ${new Date(s.since).toISOString()}\n`;
  if (s.job !== null) text += `        Job: ${s.job.id} ${s.job.type} (${s.job.state})\n`;
  for (const line of s.statusLines ?? []) text += `${line}\n`;
  const main = s.properties.MainPID;
  if (typeof main === 'number' && main > 0) text += `   Main PID: ${main}\n`;
  const status = s.properties.StatusText;
  if (typeof status === 'string' && status !== '') text += `     Status: "${status}"\n`;
  const pids = s.properties.Processes;
  if (Array.isArray(pids) && pids.length > 0) {
    const cg = s.properties.ControlGroup;
    text += `     CGroup: ${typeof cg === 'string' && cg !== '' ? cg : '(session)'}\n`;
    for (const p of pids as { pid: number; cmd: string }[]) text += `             └─${p.pid} ${p.cmd}\n`;
  }
  for (const d of s.diagnostics.filter((x) => x.severity === 'error')) text += `    Problem: ${d.message}\n`;
  if (s.logs.length > 0) {
    text += '\n';
    for (const r of s.logs) text += formatLog(r);
  }
  out(text);
}

const JOB_COMMANDS = ['start', 'stop', 'restart', 'try-restart', 'reload'] as const;
type JobCommand = (typeof JOB_COMMANDS)[number];

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      json: { type: 'boolean', default: false },
      subsystem: { type: 'string' },
      type: { type: 'string', short: 't' },
      state: { type: 'string' },
      'subsystem-match': { type: 'string', multiple: true },
      action: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      settle: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      timeout: { type: 'string' },
      property: { type: 'string', short: 'p', multiple: true },
      value: { type: 'boolean', default: false },
      lines: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f', default: false },
      'no-block': { type: 'boolean', default: false },
      'job-mode': { type: 'string' },
      now: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      'rules-path': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      iterations: { type: 'string' },
      'base-time': { type: 'string' },
      'strict-systemd': { type: 'boolean', default: false },
      all: { type: 'boolean', short: 'a', default: false },
      why: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    out(USAGE + '\n');
    return command === undefined && !values.help ? 2 : 0;
  }
  const json = values.json;
  if (command === 'verify-rules') {
    const report = verifyRules(
      args,
      values['rules-path'] === undefined ? undefined : values['rules-path'].split(':'),
    );
    if (json) out(JSON.stringify(report.diagnostics, null, 2) + '\n');
    else for (const l of report.lines) process.stderr.write(l + '\n');
    return report.hasErrors ? 1 : 0;
  }
  if (command === 'calendar') {
    if (args.length === 0) throw new UsageError('calendar needs at least one expression');
    const result = calendarCommand(args, {
      iterations: values.iterations,
      baseTime: values['base-time'],
      strictSystemd: values['strict-systemd'],
      json,
    });
    out(result.stdout);
    process.stderr.write(result.stderr);
    return result.exitCode;
  }
  if (command === 'verify') {
    if (args.length === 0) throw new UsageError('verify needs unit files');
    const results = verifyUnitFiles(args);
    if (json) out(JSON.stringify(results, null, 2) + '\n');
    else {
      const text = formatVerifyResults(results);
      if (text !== '') process.stderr.write(text.endsWith('\n') ? text : text + '\n');
    }
    return verifyFailed(results) ? 1 : 0;
  }
  const socketPath = values.socket ?? defaultSocketPath();
  let client: ControlClient;
  try {
    client = await ControlClient.connect(socketPath);
  } catch (err) {
    process.stderr.write(`triggerctl: cannot reach triggerd at ${socketPath}: ${(err as Error).message}\n`);
    return 5;
  }
  const needUnits = (what: string): string[] => {
    if (args.length === 0) throw new UsageError(`${what} needs at least one unit name`);
    return args;
  };
  const needUnit = (what: string): string => {
    const name = args[0];
    if (name === undefined) throw new UsageError(`${what} needs a unit name`);
    return name;
  };
  try {
    if ((JOB_COMMANDS as readonly string[]).includes(command)) {
      const params: Record<string, unknown> = { names: needUnits(command), noBlock: values['no-block'] };
      if (values['job-mode'] !== undefined) params.mode = values['job-mode'];
      const result = await client.request(command as JobCommand, params);
      if (json) out(JSON.stringify(result, null, 2) + '\n');
      return 0;
    }
    switch (command) {
      case 'ping':
        out(JSON.stringify(await client.request('ping')) + '\n');
        return 0;
      case 'monitor': {
        if (!json) out('monitor will print the received events for:\nKERNEL - the kernel uevent\n\n');
        await client.request('monitor', {}, (e) => {
          if (json) out(JSON.stringify(e) + '\n');
          else if (typeof e === 'object' && e !== null && 'dropped' in e) {
            process.stderr.write(
              `triggerctl: ${(e as { dropped: number }).dropped} events dropped (reader too slow)\n`,
            );
          } else printEvent(e as UeventJson);
        });
        return 0;
      }
      case 'devices': {
        const devices = (await client.request(
          'devices',
          values.subsystem ? { subsystem: values.subsystem } : {},
        )) as DeviceJson[];
        printList(
          json,
          devices,
          ['DEVPATH', 'SUBSYSTEM', 'DEVNAME', 'DRIVER', 'TAGS'],
          (d) => [d.devpath, d.subsystem, d.devname ?? '-', d.driver ?? '-', d.tags.join(',') || '-'],
          'devices',
        );
        return 0;
      }
      case 'device-info': {
        const d = (await client.request('device-info', { name: needUnit('device-info') })) as DeviceJson;
        if (json) out(JSON.stringify(d, null, 2) + '\n');
        else {
          // udevadm info's layout: P: path, N: node, S: links, G: tags, E: properties.
          let text = `P: ${d.devpath}\n`;
          if (d.devname !== null) text += `N: ${d.devname.replace(/^\/dev\//, '')}\n`;
          for (const l of d.devlinks) text += `S: ${l.replace(/^\/dev\//, '')}\n`;
          for (const t of d.tags) text += `G: ${t}\n`;
          for (const [k, v] of Object.entries(d.properties)) text += `E: ${k}=${v}\n`;
          out(text);
        }
        return 0;
      }
      case 'test-rules': {
        const params: Record<string, unknown> = { name: needUnit('test-rules') };
        if (values.action !== undefined) params.action = values.action;
        const r = (await client.request('test-rules', params)) as {
          properties: Record<string, string>;
          tags: string[];
          devlinks: string[];
          owner: string | null;
          group: string | null;
          mode: string | null;
          run: { command: string; source: string }[];
          diagnostics: { message: string }[];
        };
        if (json) out(JSON.stringify(r, null, 2) + '\n');
        else {
          let text = '';
          for (const [k, v] of Object.entries(r.properties)) text += `${k}=${v}\n`;
          for (const t of r.tags) text += `TAG: ${t}\n`;
          for (const l of r.devlinks) text += `SYMLINK: ${l}\n`;
          if (r.owner !== null || r.group !== null || r.mode !== null)
            text += `NODE: owner=${r.owner ?? '-'} group=${r.group ?? '-'} mode=${r.mode ?? '-'}\n`;
          for (const x of r.run) text += `RUN: ${x.command} (${x.source})\n`;
          for (const d of r.diagnostics) text += `PROBLEM: ${d.message}\n`;
          out(text);
        }
        return 0;
      }
      case 'list-units': {
        const params: Record<string, unknown> = {};
        if (values.type !== undefined) params.type = values.type;
        if (values.state !== undefined) params.state = values.state;
        const units = (await client.request('list-units', params)) as UnitSummary[];
        printList(
          json,
          units,
          ['UNIT', 'LOAD', 'ACTIVE', 'SUB', 'DESCRIPTION'],
          (u) => [u.name, u.load, u.active, u.sub, u.description],
          'units',
        );
        return 0;
      }
      case 'list-unit-files': {
        const files = (await client.request('list-unit-files')) as {
          name: string;
          state: string;
          path: string;
        }[];
        printList(
          json,
          files,
          ['UNIT FILE', 'STATE', 'PATH'],
          (f) => [f.name, f.state, f.path],
          'unit files',
        );
        return 0;
      }
      case 'list-timers': {
        const rows = (await client.request('list-timers', { all: values.all })) as TimerRow[];
        if (json) out(JSON.stringify(rows, null, 2) + '\n');
        else
          out(
            formatListTimers(rows, {
              nowUsec: Date.now() * 1000,
              zone: localTimeZone(),
              all: values.all,
              why: values.why,
            }),
          );
        return 0;
      }
      case 'list-jobs': {
        const jobs = (await client.request('list-jobs')) as {
          id: number;
          unit: string;
          type: string;
          state: string;
        }[];
        printList(
          json,
          jobs,
          ['JOB', 'UNIT', 'TYPE', 'STATE'],
          (j) => [String(j.id), j.unit, j.type, j.state],
          'jobs',
        );
        return 0;
      }
      case 'status': {
        const name = args[0];
        if (name === undefined) {
          out(JSON.stringify(await client.request('status'), null, 2) + '\n');
          return 0;
        }
        const lines = values.lines === undefined ? 10 : Number(values.lines);
        let s: UnitStatusJson;
        try {
          s = (await client.request('unit-status', { name, lines })) as UnitStatusJson;
        } catch (err) {
          if (err instanceof DaemonError && err.code === 'ERR_NO_SUCH_UNIT') {
            process.stderr.write(`Unit ${name} could not be found.\n`);
            return 4;
          }
          throw err;
        }
        if (json) out(JSON.stringify(s, null, 2) + '\n');
        else printStatus(s);
        return s.active === 'active' || s.active === 'reloading' ? 0 : 3;
      }
      case 'show': {
        const result = (await client.request('show', { name: needUnit('show') })) as Record<string, unknown>;
        const wanted = values.property;
        const entries = Object.entries(result).filter(([k]) => wanted === undefined || wanted.includes(k));
        if (json) out(JSON.stringify(Object.fromEntries(entries), null, 2) + '\n');
        else {
          for (const [k, v] of entries) {
            const text = typeof v === 'string' ? v : Array.isArray(v) ? v.join(' ') : JSON.stringify(v);
            out(values.value ? `${text}\n` : `${k}=${text}\n`);
          }
        }
        return 0;
      }
      case 'cat': {
        const parts = (await client.request('cat', { name: needUnit('cat') })) as {
          path: string;
          text: string;
        }[];
        if (json) out(JSON.stringify(parts, null, 2) + '\n');
        else out(parts.map((p) => `# ${p.path}\n${p.text}${p.text.endsWith('\n') ? '' : '\n'}`).join('\n'));
        return 0;
      }
      case 'security': {
        const name = args[0];
        if (name === undefined) {
          const rows = (await client.request('security')) as SecurityRowJson[];
          out(json ? JSON.stringify(rows, null, 2) + '\n' : formatSecurityList(rows));
          return 0;
        }
        let report: SecurityReportJson;
        try {
          report = (await client.request('security', { name })) as SecurityReportJson;
        } catch (err) {
          if (err instanceof DaemonError && err.code === 'ERR_NO_SUCH_UNIT') {
            process.stderr.write(`Unit ${name} could not be found.\n`);
            return 4;
          }
          throw err;
        }
        out(json ? JSON.stringify(report, null, 2) + '\n' : formatSecurityReport(report));
        return 0;
      }
      case 'logs': {
        const name = needUnit('logs');
        const lines = values.lines === undefined ? 50 : Number(values.lines);
        if (!Number.isInteger(lines) || lines < 0) throw new UsageError('-n must be a number of lines');
        const print = (r: UnitLogRecord): void => out(json ? JSON.stringify(r) + '\n' : formatLog(r));
        const result = await client.request('logs', { name, lines, follow: values.follow }, (e) =>
          print(e as UnitLogRecord),
        );
        if (Array.isArray(result)) for (const r of result as UnitLogRecord[]) print(r);
        return 0;
      }
      case 'is-active':
      case 'is-failed': {
        const rows = (await client.request(command, { names: needUnits(command) })) as {
          unit: string;
          state: string;
        }[];
        if (!values.quiet) for (const r of rows) out(`${r.state}\n`);
        if (command === 'is-active')
          return rows.every((r) => r.state === 'active' || r.state === 'reloading') ? 0 : 3;
        return rows.some((r) => r.state === 'failed') ? 0 : 1;
      }
      case 'enable':
      case 'disable': {
        const names = needUnits(command);
        const result = (await client.request(command, { names })) as {
          created?: string[];
          removed?: string[];
        };
        if (json) out(JSON.stringify(result, null, 2) + '\n');
        else {
          for (const p of result.created ?? []) process.stderr.write(`Created symlink ${p}.\n`);
          for (const p of result.removed ?? []) process.stderr.write(`Removed ${p}.\n`);
        }
        if (values.now) await client.request(command === 'enable' ? 'start' : 'stop', { names });
        return 0;
      }
      case 'reset-failed':
        await client.request('reset-failed', args.length > 0 ? { names: args } : {});
        return 0;
      case 'daemon-reload':
        out(JSON.stringify(await client.request('daemon-reload')) + '\n');
        return 0;
      case 'daemon-reexec': {
        // Answered before the exec; then ping until the new image answers (the control socket
        // stays open across it: the ping waits in its backlog).
        const t0 = performance.now();
        const before = (await client.request('daemon-reexec')) as { pid: number; startedAt: number };
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (Date.now() > deadline)
            throw new Error('the daemon did not answer within 60 s after the re-exec');
          try {
            const c = await ControlClient.connect(socketPath);
            try {
              const p = (await c.request('ping')) as { pid: number; startedAt?: number };
              if (p.startedAt !== before.startedAt) {
                out(JSON.stringify({ pid: p.pid, ms: Math.round(performance.now() - t0) }) + '\n');
                return 0;
              }
            } finally {
              c.close();
            }
          } catch {
            // between images: connect refused or the answer cut short
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      case 'why': {
        const name = needUnit('why');
        const result = (await client.request('why', { name })) as { message: string };
        out(json ? JSON.stringify(result, null, 2) + '\n' : `${name}: ${result.message}\n`);
        return 0;
      }
      case 'trigger': {
        const params: Record<string, unknown> = { dryRun: values['dry-run'] };
        if (values['subsystem-match'] !== undefined) params.subsystems = values['subsystem-match'];
        if (values.action !== undefined) params.action = values.action;
        const result = (await client.request('trigger', params)) as {
          devices: string[];
          errors: { devpath: string; code: string }[];
        };
        if (json) out(JSON.stringify(result, null, 2) + '\n');
        else if (values.verbose || values['dry-run']) for (const d of result.devices) out(`/sys${d}\n`);
        for (const e of result.errors)
          process.stderr.write(`triggerctl: /sys${e.devpath}/uevent: ${e.code}\n`);
        if (values.settle) await settle(client, 120_000, false);
        return result.errors.length > 0 ? 1 : 0;
      }
      case 'settle': {
        const seconds = values.timeout === undefined ? 120 : Number(values.timeout);
        if (!Number.isFinite(seconds) || seconds < 0)
          throw new UsageError('--timeout must be a number of seconds');
        await settle(client, seconds * 1000, json);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } finally {
    client.close();
  }
}

async function settle(client: ControlClient, timeoutMs: number, json: boolean): Promise<void> {
  const tty = process.stderr.isTTY === true && !json;
  const result = await client.request('settle', { timeoutMs }, (e) => {
    const p = e as { seqnum: number; target: number };
    if (tty) process.stderr.write(`\rwaiting for uevents: at seqnum ${p.seqnum} of ${p.target}\x1b[K`);
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (json) out(JSON.stringify(result) + '\n');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`triggerctl: ${(err as Error).message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (err instanceof DaemonError) {
      process.stderr.write(`triggerctl: ${err.message} (${err.code})\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`triggerctl: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  },
);
