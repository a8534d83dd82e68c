// Plays udevd for the combined load: sends COUNT processed events in libudev's wire format (what
// udevd multicasts on netlink group 2) to one companion-mode triggerd's uevent socket, addressed to
// its netlink port (unicast: the same socket and parser as the group-2 multicast, but no other
// listener on this shared machine receives a fake device). Run as its own process, as root (the
// daemon takes group-2 messages only from uid 0):
//
//   node dist/bench/lib/uevent-sender.js PORT COUNT DEVICES FIRST_SEQNUM
//
// The events: DEVICES fake devices /devices/virtual/triggerd-load/ldK (tagged "systemd", so each
// becomes a .device unit) are added, changed round-robin until COUNT - DEVICES events were sent,
// and removed: the daemon's registry and unit table end where they began. Backpressure: a full
// receive buffer makes sendto fail with EAGAIN (unicast netlink does not drop); the sender waits
// 1 ms and retries the same event, so nothing is lost and the rate is the daemon's. Every message is
// encoded first; then it prints {"ready":true}, waits for a line on stdin ("go"), sends, and
// prints {sent, eagain, ms, firstSeqnum, lastSeqnum} (or {error} with exit code 1).
import { encodeLibudevMessage } from '../../src/devices/libudev-encode';
import { loadNative } from '../../src/native/addon';

export const LOAD_SUBSYSTEM = 'triggerd-load';
export const LOAD_DEVPATH_PREFIX = `/devices/virtual/${LOAD_SUBSYSTEM}/ld`;

export interface UeventSenderResult {
  sent: number;
  eagain: number;
  ms: number;
  firstSeqnum: number;
  lastSeqnum: number;
}

/** Action and device of the i-th event (0-based) of a run of `count` over `devices` devices. */
export function loadEvent(i: number, count: number, devices: number): { action: string; device: number } {
  if (i < devices) return { action: 'add', device: i };
  if (i >= count - devices) return { action: 'remove', device: i - (count - devices) };
  return { action: 'change', device: (i - devices) % devices };
}

function message(i: number, count: number, devices: number, seqnum: number): Buffer {
  const { action, device } = loadEvent(i, count, devices);
  return encodeLibudevMessage({
    subsystem: LOAD_SUBSYSTEM,
    tags: ['systemd'],
    properties: [
      ['UDEV_DATABASE_VERSION', '1'],
      ['ACTION', action],
      ['DEVPATH', `${LOAD_DEVPATH_PREFIX}${device}`],
      ['SUBSYSTEM', LOAD_SUBSYSTEM],
      ['SEQNUM', String(seqnum)],
      ['USEC_INITIALIZED', '1'],
      ['LOAD_EVENT', String(i)],
      ['TAGS', ':systemd:'],
      ['CURRENT_TAGS', ':systemd:'],
    ],
  });
}

/** Reads stdin until it has a line: the driver's "go". */
function waitForGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) {
        process.stdin.off('data', onData);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin closed before "go"')));
  });
}

async function main(): Promise<UeventSenderResult> {
  const [port, count, devices, firstSeqnum] = process.argv.slice(2).map(Number);
  if (
    ![port, count, devices, firstSeqnum].every((n) => Number.isInteger(n) && n >= 0) ||
    count < 2 * devices ||
    devices < 1
  ) {
    throw new Error('usage: uevent-sender PORT COUNT DEVICES FIRST_SEQNUM (COUNT ≥ 2 × DEVICES ≥ 2)');
  }
  // Encoded before the start, so the rate measured is the daemon's, not this encoder's.
  const messages: Buffer[] = [];
  for (let i = 0; i < count; i++) messages.push(message(i, count, devices, firstSeqnum + i));
  const socket = loadNative().openUeventSocket(
    { groups: 0, receiveBufferBytes: 65536 },
    () => undefined,
    () => undefined,
  );
  let eagain = 0;
  let sent = 0;
  try {
    process.stdout.write(JSON.stringify({ ready: true }) + '\n');
    await waitForGo();
    const t0 = performance.now();
    for (const buf of messages) {
      for (;;) {
        try {
          socket.send(buf, port, 0);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== 'EAGAIN') throw err;
          eagain++;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      sent++;
    }
    return {
      sent,
      eagain,
      ms: Math.round(performance.now() - t0),
      firstSeqnum,
      lastSeqnum: firstSeqnum + count - 1,
    };
  } catch (err) {
    throw new Error(`after ${sent} sent: ${(err as { code?: string }).code ?? ''} ${String(err)}`, {
      cause: err,
    });
  } finally {
    socket.close();
  }
}

if (require.main === module) {
  main().then(
    (result) => process.stdout.write(JSON.stringify(result) + '\n'),
    (err: unknown) => {
      const e = err as { code?: string; message?: string };
      process.stdout.write(
        JSON.stringify({ error: `${e.code ?? ''} ${e.message ?? String(err)}`.trim() }) + '\n',
      );
      process.exitCode = 1;
    },
  );
}
