// The sd_notify socket as an Observable: each native wake-up becomes one 'datagrams' item holding
// every datagram of that batch, parsed (parseNotifyMessage) and with its sender's credentials,
// pidfd and passed fds. Routing and authorization are the consumer's (src/core/notify-router).
//
// Bound: one native batch (≤ 128 datagrams of ≤ 4097 bytes, and reading stops once ~1024 fds
// were received) is all that is ever held in memory; nothing is queued between the socket and
// the subscriber. In front of it sits the kernel's queue (net.unix.max_dgram_qlen datagrams:
// the kernel default of 10 on this VM, 512 where systemd's sysctl.d/50-default.conf applies;
// plus the senders' socket buffers). Overflow policy: there is none to need: an AF_UNIX datagram socket never drops.
// When the queue is full, sd_notify() (a blocking send) waits and non-blocking senders get
// EAGAIN: backpressure lands on the sender, as with systemd. A consumer that falls behind can
// `pause()` the socket from the 'open' item; datagrams then wait in the kernel.
//
// Fds: every fd (passed fds and the pidfd) of an emitted datagram belongs to the subscriber,
// which must close each exactly once. Datagrams that arrive after unsubscribing are closed here.
// With `maxPerTurn`, a batch is emitted in slices, one per turn of the event loop, with the socket
// paused until the last one is out (src/events/turn-slices); datagrams still waiting in a slice
// when the subscription ends are closed here too.
import { lstatSync, unlinkSync } from 'node:fs';
import { Observable } from '../util/rx';
import type { NativeNotify, NativeSystemError, NotifyDatagram, NotifySocket } from '../native/notify-addon';
import { parseNotifyMessage, type NotifyParseResult } from '../units/notify-message';
import { TurnSlices } from './turn-slices';

/** Who sent a datagram, as the kernel vouches for it. uid/gid/pid are -1 when it attached none. */
export interface NotifySender {
  pid: number;
  uid: number;
  gid: number;
  /** A pidfd for `pid` (SO_PASSPIDFD), -1 when none; owned by the subscriber like `fds`. */
  pidfd: number;
}

/** One received datagram: credentials, passed fds, and the parsed message. */
export interface ReceivedNotify {
  sender: NotifySender;
  /** SCM_RIGHTS fds, owned by the subscriber (close or hand over each one exactly once). */
  fds: number[];
  /** The kernel cut the payload or the ancillary data: systemd drops such datagrams. */
  truncated: boolean;
  /** The datagram's size as sent. */
  length: number;
  message: NotifyParseResult;
}

export type NotifySourceItem =
  /** The socket is bound; `socket` allows pause/resume (backpressure) and unref. */
  | { kind: 'open'; socket: NotifySocket; path: string }
  /** Everything one wake-up read, in arrival order. */
  | { kind: 'datagrams'; datagrams: ReceivedNotify[] }
  /** recvmsg() failed with something other than EAGAIN/EINTR; the socket stays open. */
  | { kind: 'error'; error: NativeSystemError };

export interface NotifyEventsOptions {
  /**
   * Unlink a socket inode already at `path` before binding (a stale one from an earlier run:
   * /run survives restarts on hosts where it is not a tmpfs). Never unlinks anything that is not
   * a socket. Default true.
   */
  unlinkStale?: boolean;
  /**
   * At most this many datagrams parsed and emitted per turn of the event loop; default: a whole
   * native batch (up to 128) at once. The daemon sets it (16): a STATUS= flood then cannot hold
   * the loop for a whole batch. The socket in the 'open' item then pauses and
   * resumes through the slicer.
   */
  maxPerTurn?: number;
  /**
   * An open notify socket bound to `path` to take over instead of binding one (carried across
   * the daemon's re-exec, with the datagrams queued on it meanwhile). When it cannot be taken
   * over, it is closed, an 'error' item says why, and a new socket is bound as usual.
   */
  adoptFd?: number;
}

/**
 * Cold: each subscription binds its own socket at `path` (absolute, or `@name` for the abstract
 * namespace) and unsubscribing closes it and unlinks the path (only if it is still the inode this
 * subscription created). Binding failures (EADDRINUSE, EACCES, …) end the stream with the error.
 */
export function notifyEvents(
  native: NativeNotify,
  path: string,
  options: NotifyEventsOptions = {},
): Observable<NotifySourceItem> {
  return new Observable<NotifySourceItem>((subscriber) => {
    const abstract = path.startsWith('@');
    let socket: NotifySocket;
    let inode: { dev: number; ino: number } | undefined;
    const emit = (batch: NotifyDatagram[]): void => {
      if (subscriber.closed) {
        for (const item of batch) closeAll(native, item);
        return;
      }
      subscriber.next({ kind: 'datagrams', datagrams: batch.map(receive) });
    };
    const slices =
      options.maxPerTurn === undefined ? undefined : new TurnSlices<NotifyDatagram>(options.maxPerTurn, emit);
    const onBatch = (batch: NotifyDatagram[]): void => {
      if (slices === undefined || subscriber.closed) emit(batch);
      else slices.push(batch);
    };
    const onError = (error: NativeSystemError): void => subscriber.next({ kind: 'error', error });
    try {
      let adopted: NotifySocket | undefined;
      if (options.adoptFd !== undefined) {
        try {
          adopted = native.openNotifySocket(path, onBatch, onError, options.adoptFd);
        } catch (err) {
          try {
            native.closeFd(options.adoptFd);
          } catch {
            // not open
          }
          onError(err as NativeSystemError);
        }
      }
      if (adopted !== undefined) socket = adopted;
      else {
        if (!abstract && options.unlinkStale !== false) unlinkStaleSocket(path);
        socket = native.openNotifySocket(path, onBatch, onError);
      }
      if (!abstract) inode = inodeOf(path);
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    slices?.attach(socket);
    subscriber.next({
      kind: 'open',
      socket: slices === undefined ? socket : throughSlices(socket, slices),
      path,
    });
    return () => {
      for (const item of slices?.cancel() ?? []) closeAll(native, item);
      socket.close();
      if (inode !== undefined) unlinkIfSame(path, inode);
    };
  });
}

/** The socket as the consumer sees it: pause/resume combined with the slicer's own pausing. */
function throughSlices(socket: NotifySocket, slices: TurnSlices<NotifyDatagram>): NotifySocket {
  return {
    get receiveBufferBytes() {
      return socket.receiveBufferBytes;
    },
    get passPidfd() {
      return socket.passPidfd;
    },
    pause: () => slices.pause(),
    resume: () => slices.resume(),
    close: () => socket.close(),
    unref: () => socket.unref(),
    ref: () => socket.ref(),
  };
}

function receive(item: NotifyDatagram): ReceivedNotify {
  return {
    sender: { pid: item.pid, uid: item.uid, gid: item.gid, pidfd: item.pidfd },
    fds: item.fds,
    truncated: item.truncated,
    length: item.length,
    message: parseNotifyMessage(item.buffer),
  };
}

function closeAll(native: NativeNotify, item: NotifyDatagram): void {
  for (const fd of item.pidfd >= 0 ? [...item.fds, item.pidfd] : item.fds) {
    try {
      native.closeFd(fd);
    } catch {
      // Already closed: nothing left to leak.
    }
  }
}

/** The inode bind() just created, so teardown removes that one and no other; undefined if none. */
function inodeOf(path: string): { dev: number; ino: number } | undefined {
  try {
    const stat = lstatSync(path);
    return { dev: stat.dev, ino: stat.ino };
  } catch {
    return undefined;
  }
}

function unlinkStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

function unlinkIfSame(path: string, inode: { dev: number; ino: number }): void {
  try {
    const stat = lstatSync(path);
    // Someone else bound a new socket here meanwhile (a second daemon, a test): leave it alone.
    if (stat.dev === inode.dev && stat.ino === inode.ino) unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove: teardown must not throw.
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && Reflect.get(err, 'code') === code;
}
