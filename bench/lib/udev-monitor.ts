// Processed events as libudev consumers see them: netlink group 2, where udevd (and triggerd in
// standalone mode) rebroadcast each event after its rules ran. Counts what arrives after `mark()`.
import { parseNetlinkMessage } from '../../src/devices/uevent-parse';
import { readKernelSeqnum } from '../../src/devices/sysfs';
import type { NativeNetlink, UeventSocket } from '../../src/native/types';

const RECEIVE_BUFFER_BYTES = 64 * 1024 * 1024;

export class UdevMonitor {
  /** Processed events since `mark()` (seqnum above the kernel's at mark time). */
  counted = 0;
  /** Of those, events of the devpaths given to `mark()`. */
  workload = 0;
  byAction: Record<string, number> = {};
  overflows = 0;
  unparsable = 0;
  private minSeqnum = Number.MAX_SAFE_INTEGER;
  private devpaths: ReadonlySet<string> = new Set();
  private readonly socket: UeventSocket;

  constructor(native: NativeNetlink) {
    this.socket = native.openUeventSocket(
      { groups: 2, receiveBufferBytes: RECEIVE_BUFFER_BYTES },
      (batch) => {
        for (const item of batch) {
          if (item.kind === 'overflow') {
            this.overflows++;
            continue;
          }
          const parsed = parseNetlinkMessage(item, 'udev');
          if (!parsed.ok) {
            this.unparsable++;
            continue;
          }
          const e = parsed.event;
          if (e.seqnum <= this.minSeqnum) continue;
          this.counted++;
          this.byAction[e.action] = (this.byAction[e.action] ?? 0) + 1;
          if (this.devpaths.has(e.devpath)) this.workload++;
        }
      },
      () => {
        this.overflows++;
      },
    );
  }

  /** Count from now: events the kernel emits after this call. */
  mark(devpaths: ReadonlySet<string> = new Set()): void {
    this.minSeqnum = readKernelSeqnum();
    this.devpaths = devpaths;
    this.counted = 0;
    this.workload = 0;
    this.byAction = {};
    this.overflows = 0;
    this.unparsable = 0;
  }

  /** Kernel events emitted since `mark()` (all of them, whatever their subsystem). */
  kernelEventsSinceMark(): number {
    return readKernelSeqnum() - this.minSeqnum;
  }

  close(): void {
    this.socket.close();
  }
}
