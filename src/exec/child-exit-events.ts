// Child exits as an Observable: one item per native wake-up, a batch of reaped children (own
// children through their pidfds, orphans reparented to us through SIGCHLD). Cold: subscribing
// starts the process's one watcher, unsubscribing stops it.
// Bound: at most 1024 exits per batch (ChildWatcher's limit); the rest wait as zombies in the
// kernel, which is the queue, and come in the next batch. No overflow is possible, so none is
// reported.
import { Observable } from '../util/rx';
import type { ChildExit, ChildWatcher, NativeSpawn } from '../native/spawn-addon';

export interface ChildExitEventsOptions {
  /** Let the process exit while subscribed (uv_unref), as a daemon's other sources decide. */
  unref?: boolean;
}

export function childExitEvents(
  native: NativeSpawn,
  opts: ChildExitEventsOptions = {},
): Observable<ChildExit[]> {
  return new Observable<ChildExit[]>((subscriber) => {
    let watcher: ChildWatcher;
    try {
      watcher = native.watchChildren((exits) => subscriber.next(exits));
    } catch (err) {
      // ERR_WATCHER_ACTIVE: another subscription (or another worker) already watches.
      subscriber.error(err);
      return undefined;
    }
    if (opts.unref === true) watcher.unref();
    return () => watcher.close();
  });
}
