#!/usr/bin/env node
// triggerctl: talk to a running triggerd. Tables for people, --json for scripts; a failed request
// exits 1 with the daemon's message, a usage error 2, no daemon 3.
import { parseArgs } from 'node:util';
import { ControlClient, DaemonError, defaultSocketPath } from '../control/client';
import type { DeviceJson, UeventJson } from '../control/views';
import type { UnitSummary } from '../units/unit-type';

const USAGE = `usage: triggerctl [--socket PATH] [--json] COMMAND [ARGS]
commands:
  monitor                         print uevents as they are processed (like udevadm monitor --kernel --property)
  devices [--subsystem S]         list every device the daemon knows
  list-units [--type T]           list units
  status [UNIT]                   daemon status, or one unit's
  show UNIT                       all properties of a unit
  why UNIT.device                 why a device unit is not plugged
  trigger [--subsystem-match S]... [--action A] [--dry-run] [--settle] [--verbose]
                                  make the kernel re-announce devices
  settle [--timeout SECONDS]      wait until every queued uevent has been processed
  reload                          re-read configuration (like SIGHUP)
  ping                            check the daemon answers`;

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

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      json: { type: 'boolean', default: false },
      subsystem: { type: 'string' },
      type: { type: 'string' },
      'subsystem-match': { type: 'string', multiple: true },
      action: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      settle: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
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
  const socketPath = values.socket ?? defaultSocketPath();
  let client: ControlClient;
  try {
    client = await ControlClient.connect(socketPath);
  } catch (err) {
    process.stderr.write(`triggerctl: cannot reach triggerd at ${socketPath}: ${(err as Error).message}\n`);
    return 3;
  }
  try {
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
      case 'list-units': {
        const units = (await client.request(
          'list-units',
          values.type ? { type: values.type } : {},
        )) as UnitSummary[];
        printList(
          json,
          units,
          ['UNIT', 'LOAD', 'ACTIVE', 'SUB', 'DESCRIPTION'],
          (u) => [u.name, u.load, u.active, u.sub, u.description],
          'units',
        );
        return 0;
      }
      case 'status': {
        const name = args[0];
        const result =
          name === undefined ? await client.request('status') : await client.request('show', { name });
        if (json || name === undefined) out(JSON.stringify(result, null, 2) + '\n');
        else {
          const u = result as UnitSummary & { since: number };
          out(
            `● ${u.name} - ${u.description}\n     Loaded: ${u.load}\n     Active: ${u.active} (${u.sub}) since ${new Date(u.since).toISOString()}\n`,
          );
        }
        return 0;
      }
      case 'show': {
        const name = args[0];
        if (name === undefined) throw new UsageError('show needs a unit name');
        const result = (await client.request('show', { name })) as Record<string, unknown>;
        if (json) out(JSON.stringify(result, null, 2) + '\n');
        else
          for (const [k, v] of Object.entries(result))
            out(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
        return 0;
      }
      case 'why': {
        const name = args[0];
        if (name === undefined) throw new UsageError('why needs a unit name');
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
        if (values.settle) await settle(client, 120_000, json);
        return result.errors.length > 0 ? 1 : 0;
      }
      case 'settle': {
        const seconds = values.timeout === undefined ? 120 : Number(values.timeout);
        if (!Number.isFinite(seconds) || seconds < 0)
          throw new UsageError('--timeout must be a number of seconds');
        await settle(client, seconds * 1000, json);
        return 0;
      }
      case 'reload':
        out(JSON.stringify(await client.request('reload')) + '\n');
        return 0;
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
