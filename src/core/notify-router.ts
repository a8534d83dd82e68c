// Routes received sd_notify datagrams to units, with systemd's rules (manager.c's notify dispatch
// and service.c's authorization) and triggerd's own additions:
//
//   1. every received fd is closed exactly once unless a unit takes it (FDSTORE=1);
//   2. truncated datagrams, datagrams without valid credentials and malformed messages are
//      dropped (counted, warned about at a bounded rate);
//   3. BARRIER=1: the fd is closed at once and nothing else happens (sd_notify_barrier() waits
//      for exactly that); a malformed barrier is dropped too, with a warning, as systemd does;
//   4. an empty message (0 bytes: CVE-2016-7795) is accepted and ignored;
//   5. the sender's units come from `unitsForPid` (injected: cgroup membership, main/control
//      pids); each unit gets the message at most once, if its NotifyAccess= permits the sender.
//      Refusals are logged once per unit and reason per interval, naming the pid, its parent
//      chain and the NotifyAccess= value that would have accepted it;
//   6. MAINPID= (and MAINPIDFD=1) is honoured only from a trusted sender (uid 0, or the unit's
//      main pid) and only for a pid > 1 that is not triggerd itself, not the control pid, and
//      inside the unit's cgroup when the cgroup is known; otherwise the field is removed;
//   7. RELOADING=1 without MONOTONIC_USEC= is accepted, with one warning per unit.
//
// What comes out is a NotifyEvent per (datagram, unit), delivered synchronously, for the service
// state machine. Nothing here throws: a bad datagram costs at most a rate-limited log line.
import { readFileSync } from 'node:fs';
import type { NotifySender, ReceivedNotify } from '../events/notify-events';
import {
  authorizeNotify,
  barrierProblem,
  describeProcessChain,
  parseProcStat,
  type NotifyAccess,
  type NotifyFields,
  type NotifyRefusalReason,
  type NotifyUnitPids,
  type ProcessParent,
  type ReadProcessParent,
} from '../units/notify-message';
import { RateLimitedLog, type Logger } from '../util/logger';

/** What the router needs to know about a unit that may receive notify messages. */
export interface NotifyUnit extends NotifyUnitPids {
  readonly name: string;
  /** The NotifyAccess= in force now (unit file, type defaults, a NOTIFYACCESS= override). */
  notifyAccess(): NotifyAccess;
}

/** The fds that came with a datagram, shared by the units it is delivered to. */
export interface NotifyFdSet {
  /** How many are still untaken. */
  readonly count: number;
  /**
   * Takes every fd not taken yet: the caller owns them from now on (the fd store). A second call,
   * or another unit's, gets []. Whatever nobody takes is closed after delivery, with a warning.
   */
  take(): number[];
}

/** Sender details as the event carries them. */
export interface NotifyEventSender extends NotifySender {
  /**
   * The pidfd says the process is gone (it sent and exited): pid numbers alone may be reused.
   * Answered when read, so only during delivery (the router closes the pidfd afterwards).
   */
  exited: boolean;
}

/**
 * One notify message for one unit, already authorized. The service acts on `fields` (READY,
 * STATUS, WATCHDOG, …; the names match ServiceNotify in src/units/service.ts). `fields.mainPid`
 * is present only when the router honoured it (rule 6); with MAINPIDFD=1 it is the pid of the
 * passed pidfd, whose fd the router keeps and closes. `sender.pidfd` is valid only during
 * `deliver` (dup it to keep it). Usec fields may be Infinity: "no limit".
 */
export interface NotifyEvent {
  unit: NotifyUnit;
  fields: NotifyFields;
  sender: NotifyEventSender;
  fds: NotifyFdSet;
}

/** Why a datagram went nowhere. Stable codes, used as log `code` and counter names. */
export type NotifyDropCode =
  | 'ERR_NOTIFY_TRUNCATED'
  | 'ERR_NOTIFY_NO_CREDENTIALS'
  | 'ERR_NOTIFY_TOO_LONG'
  | 'ERR_NOTIFY_EMBEDDED_NUL'
  | 'ERR_NOTIFY_BAD_ESCAPE'
  | 'ERR_NOTIFY_BAD_BARRIER'
  | 'ERR_NOTIFY_NO_UNIT'
  | 'ERR_NOTIFY_LOOKUP_FAILED';

export interface NotifyRouterCounters {
  datagrams: number;
  /** Empty messages (0 bytes or only separators), accepted and ignored. */
  empty: number;
  barriers: number;
  /** Dropped datagrams by code. */
  dropped: Record<NotifyDropCode, number>;
  /** (datagram, unit) pairs refused by NotifyAccess=. */
  refused: number;
  /** Events delivered. */
  delivered: number;
  /** MAINPID= / MAINPIDFD=1 fields removed by rule 6. */
  mainPidIgnored: number;
  /** Fds (passed fds and pidfds) closed by the router. */
  fdsClosed: number;
  /** Passed fds nobody took (a subset of fdsClosed). */
  fdsUnused: number;
}

export interface NotifyRouterOptions {
  /** Candidate units for a sender: cgroup membership, watched main/control pids. Duplicates are fine. */
  unitsForPid(pid: number, pidfd: number): readonly NotifyUnit[];
  /** Called synchronously for every (datagram, authorized unit). Exceptions are logged, not thrown. */
  deliver(event: NotifyEvent): void;
  closeFd(fd: number): void;
  /** The pid behind a pidfd (-1: exited), e.g. NativeNotify.pidfdGetPid; omitted: not checked. */
  pidfdGetPid?(pidfd: number): number;
  /** A process's parent, for refusal messages. Default: /proc/<pid>/stat. */
  readParent?: ReadProcessParent;
  logger: Logger;
  /** triggerd's own pid (never a main pid). Default process.pid. */
  selfPid?: number;
  /** Milliseconds for the log rate limits. Default Date.now. */
  now?: () => number;
}

/** Refusal and field-problem lines: one per unit and reason per minute, then a count of the rest. */
const PER_UNIT_LOG_INTERVAL_MS = 60_000;
/** Drops that name no unit: five lines per 10 s per code. */
const DROP_LOG_INTERVAL_MS = 10_000;
const DROP_LOG_BURST = 5;
/** Bound on remembered (unit, reason) keys; past it the map starts over (at worst, a repeated line). */
const MAX_RATE_KEYS = 4096;

export class NotifyRouter {
  readonly counters: NotifyRouterCounters = {
    datagrams: 0,
    empty: 0,
    barriers: 0,
    dropped: {
      ERR_NOTIFY_TRUNCATED: 0,
      ERR_NOTIFY_NO_CREDENTIALS: 0,
      ERR_NOTIFY_TOO_LONG: 0,
      ERR_NOTIFY_EMBEDDED_NUL: 0,
      ERR_NOTIFY_BAD_ESCAPE: 0,
      ERR_NOTIFY_BAD_BARRIER: 0,
      ERR_NOTIFY_NO_UNIT: 0,
      ERR_NOTIFY_LOOKUP_FAILED: 0,
    },
    refused: 0,
    delivered: 0,
    mainPidIgnored: 0,
    fdsClosed: 0,
    fdsUnused: 0,
  };

  private readonly log: Logger;
  private readonly now: () => number;
  private readonly selfPid: number;
  private readonly readParent: ReadProcessParent;
  private readonly dropLimits = new Map<string, RateLimitedLog>();
  private readonly unitLimits = new Map<string, RateLimitedLog>();
  private readonly warnedNoMonotonic = new Set<string>();

  constructor(private readonly options: NotifyRouterOptions) {
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.selfPid = options.selfPid ?? process.pid;
    this.readParent = options.readParent ?? readParentFromProc;
  }

  /** Routes every datagram of one batch, in order. */
  routeBatch(datagrams: readonly ReceivedNotify[]): void {
    for (const datagram of datagrams) this.route(datagram);
  }

  /** Routes one datagram; afterwards every fd of it is closed or owned by a unit. */
  route(datagram: ReceivedNotify): void {
    this.counters.datagrams++;
    const fds = new FdSet(datagram.fds);
    try {
      this.dispatch(datagram, fds);
    } catch (err) {
      // A bug here must not stop the notify socket or leak the fds: log it and go on.
      this.log.error({ err, pid: datagram.sender.pid }, 'notify routing failed');
    } finally {
      this.closeRest(datagram, fds);
    }
  }

  private dispatch(datagram: ReceivedNotify, fds: FdSet): void {
    const { sender, message } = datagram;
    if (datagram.truncated) {
      return this.drop('ERR_NOTIFY_TRUNCATED', sender, {
        length: datagram.length,
        fds: datagram.fds.length,
        msg: `notify datagram of ${datagram.length} bytes with ${datagram.fds.length} fds was truncated (payload over 4096 bytes, or too many fds), ignoring`,
      });
    }
    if (!(sender.pid > 0) || sender.uid < 0 || sender.gid < 0) {
      return this.drop('ERR_NOTIFY_NO_CREDENTIALS', sender, {
        msg: 'notify datagram lacks valid credential information, ignoring',
      });
    }
    if (!message.ok) return this.drop(message.code, sender, { msg: `${message.message}, ignoring` });
    const fields = message.fields;

    if (fields.barrier) {
      // The sender is blocked until this fd closes: close it before anything else.
      this.counters.barriers++;
      const problem = barrierProblem(fields, fds.count);
      for (const fd of fds.take()) this.close(fd);
      if (problem !== undefined) this.drop('ERR_NOTIFY_BAD_BARRIER', sender, { msg: problem });
      return;
    }
    if (fields.tags.length === 0) {
      this.counters.empty++;
      return;
    }

    let units: readonly NotifyUnit[];
    try {
      units = this.options.unitsForPid(sender.pid, sender.pidfd);
    } catch (err) {
      return this.drop('ERR_NOTIFY_LOOKUP_FAILED', sender, {
        err,
        msg: 'looking up the units of a notify sender failed',
      });
    }
    if (units.length === 0) {
      // The parent chain costs a few /proc reads: only for lines that get written.
      return this.drop('ERR_NOTIFY_NO_UNIT', sender, {
        msg: () =>
          `cannot find unit for notify message of ${describeProcessChain(sender.pid, this.readParent)}, ignoring`,
      });
    }

    const eventSender = new EventSender(sender, this.options.pidfdGetPid);
    const newMain = this.resolveNewMainPid(fields, fds, sender);
    if (units.length === 1) this.deliverTo(units[0] as NotifyUnit, fields, eventSender, fds, newMain);
    else {
      // A Set only for a sender with several candidates (most datagrams have one).
      const seen = new Set<string>();
      for (const unit of units) {
        if (seen.has(unit.name)) continue; // systemd's notifygen: once per unit per message
        seen.add(unit.name);
        this.deliverTo(unit, fields, eventSender, fds, newMain);
      }
    }
    if (fds.count > 0) {
      this.counters.fdsUnused += fds.count;
      this.rateLimited(this.dropLimits, 'unused-fds', DROP_LOG_INTERVAL_MS, DROP_LOG_BURST, (suppressed) =>
        this.log.warn(
          { code: 'ERR_NOTIFY_UNUSED_FDS', pid: sender.pid, fds: fds.count, suppressed },
          'got extra auxiliary fds with notification message, closing them',
        ),
      );
    }
  }

  private deliverTo(
    unit: NotifyUnit,
    parsed: NotifyFields,
    sender: NotifyEventSender,
    fds: FdSet,
    newMain: NewMainPid,
  ): void {
    const access = unit.notifyAccess();
    // Decided without /proc; the parent chain is read only for a refusal line that is written.
    const authorization = authorizeNotify(access, sender, unit);
    if (!authorization.ok) {
      this.counters.refused++;
      this.perUnit(unit, `refused:${authorization.reason}`, (suppressed) => {
        const detailed = authorizeNotify(access, sender, unit, this.readParent);
        this.log.warn(
          {
            unit: unit.name,
            pid: sender.pid,
            code: refusalCode(authorization.reason),
            notifyAccess: access,
            wouldAccept: authorization.wouldAccept,
            suppressed,
          },
          detailed.ok ? authorization.message : detailed.message,
        );
      });
      return;
    }

    let fields = parsed;
    for (const problem of parsed.invalid) {
      this.perUnit(unit, `field:${problem.code}:${problem.key}`, (suppressed) =>
        this.log.warn({ unit: unit.name, pid: sender.pid, code: problem.code, suppressed }, problem.message),
      );
    }
    if (newMain.pid !== undefined || newMain.problem !== undefined) {
      const problem = newMain.problem ?? this.mainPidProblem(unit, sender, newMain.pid as number);
      if (problem === undefined) {
        fields = { ...fields, mainPid: newMain.pid };
      } else {
        this.counters.mainPidIgnored++;
        fields = { ...fields, mainPid: undefined, mainPidFdId: undefined };
        this.perUnit(unit, `mainpid:${problem.code}`, (suppressed) =>
          this.log.warn(
            { unit: unit.name, pid: sender.pid, code: problem.code, suppressed },
            problem.message,
          ),
        );
      }
    }
    if (fields.reloading && fields.monotonicUsec === undefined && !this.warnedNoMonotonic.has(unit.name)) {
      if (this.warnedNoMonotonic.size >= MAX_RATE_KEYS) this.warnedNoMonotonic.clear();
      this.warnedNoMonotonic.add(unit.name);
      this.log.warn(
        { unit: unit.name, pid: sender.pid, code: 'ERR_NOTIFY_RELOADING_NO_MONOTONIC' },
        'RELOADING=1 without MONOTONIC_USEC=: accepted, but the service should send MONOTONIC_USEC= ' +
          '(CLOCK_MONOTONIC in µs) with it, or a Type=notify-reload reload cannot be told from an ' +
          'earlier one (sd_notify(3)); warning once for this unit',
      );
    }

    this.counters.delivered++;
    try {
      this.options.deliver({ unit, fields, sender, fds });
    } catch (err) {
      this.log.error({ unit: unit.name, err }, 'handling a notify message failed');
    }
  }

  /** MAINPIDFD=1 takes precedence over MAINPID= (systemd); its fd is consumed either way. */
  private resolveNewMainPid(fields: NotifyFields, fds: FdSet, sender: NotifySender): NewMainPid {
    if (fields.mainPidFd) {
      if (fds.count !== 1) {
        return {
          problem: {
            code: 'ERR_NOTIFY_MAINPIDFD',
            message: `MAINPIDFD=1 from PID ${sender.pid} came with ${fds.count === 0 ? 'no' : 'more than one'} fd, ignoring`,
          },
        };
      }
      const [pidfd] = fds.take();
      let pid: number;
      try {
        pid = this.options.pidfdGetPid?.(pidfd as number) ?? -1;
      } catch {
        pid = -1;
      }
      this.close(pidfd as number);
      if (pid <= 0) {
        return {
          problem: {
            code: 'ERR_NOTIFY_MAINPIDFD',
            message: `MAINPIDFD=1 from PID ${sender.pid}: the fd is not a pidfd of a live process, ignoring`,
          },
        };
      }
      return { pid };
    }
    return { pid: fields.mainPid };
  }

  private mainPidProblem(
    unit: NotifyUnit,
    sender: NotifySender,
    pid: number,
  ): { code: string; message: string } | undefined {
    const refuse = (why: string): { code: string; message: string } => ({
      code: 'ERR_NOTIFY_MAINPID_REFUSED',
      message: `MAINPID=${pid} from PID ${sender.pid} (uid ${sender.uid}) ignored: ${why}`,
    });
    if (sender.uid !== 0 && sender.pid !== unit.mainPid) {
      return refuse(
        `only root or the main PID${unit.mainPid === undefined ? '' : ` ${unit.mainPid}`} may change the main PID`,
      );
    }
    if (pid <= 1) return refuse('not a valid main PID');
    if (pid === this.selfPid) return refuse('that is triggerd itself');
    if (unit.controlPid !== undefined && pid === unit.controlPid)
      return refuse("that is the unit's control process");
    const cgroup = unit.cgroupPids();
    if (cgroup !== undefined && !cgroup.has(pid)) return refuse("the process is not in the unit's cgroup");
    return undefined;
  }

  private closeRest(datagram: ReceivedNotify, fds: FdSet): void {
    for (const fd of fds.take()) this.close(fd);
    if (datagram.sender.pidfd >= 0) this.close(datagram.sender.pidfd);
  }

  private close(fd: number): void {
    this.counters.fdsClosed++;
    try {
      this.options.closeFd(fd);
    } catch (err) {
      // EBADF here means something closed an fd it did not own: a bug worth a loud line.
      this.log.error({ err, fd }, 'closing a received fd failed');
    }
  }

  private drop(
    code: NotifyDropCode,
    sender: NotifySender,
    details: { msg: string | (() => string) } & Record<string, unknown>,
  ): void {
    this.counters.dropped[code]++;
    const { msg, ...rest } = details;
    this.rateLimited(this.dropLimits, code, DROP_LOG_INTERVAL_MS, DROP_LOG_BURST, (suppressed) =>
      this.log.warn(
        { code, pid: sender.pid, uid: sender.uid, ...rest, suppressed },
        typeof msg === 'function' ? msg() : msg,
      ),
    );
  }

  private perUnit(unit: NotifyUnit, reason: string, write: (suppressed: number) => void): void {
    this.rateLimited(this.unitLimits, `${unit.name}\0${reason}`, PER_UNIT_LOG_INTERVAL_MS, 1, write);
  }

  private rateLimited(
    limits: Map<string, RateLimitedLog>,
    key: string,
    intervalMs: number,
    burst: number,
    write: (suppressed: number) => void,
  ): void {
    let limit = limits.get(key);
    if (limit === undefined) {
      if (limits.size >= MAX_RATE_KEYS) limits.clear();
      limit = new RateLimitedLog(intervalMs, burst, this.now);
      limits.set(key, limit);
    }
    const suppressed = limit.admit();
    if (suppressed >= 0) write(suppressed);
  }
}

interface NewMainPid {
  pid?: number | undefined;
  problem?: { code: string; message: string };
}

/**
 * The sender as events carry it. `exited` is asked for lazily: pidfd_get_pid reads
 * /proc/self/fdinfo (~40 us), for every datagram of a flood, and nothing on the delivery path
 * needs it. A class, not an object literal with a getter: that made a getter function and an
 * accessor pair per datagram (with the rest, most of the router's time in a flood went to the GC).
 */
class EventSender implements NotifyEventSender {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pidfd: number;
  private answer: boolean | undefined;

  constructor(
    sender: NotifySender,
    private readonly pidfdGetPid: ((pidfd: number) => number) | undefined,
  ) {
    this.pid = sender.pid;
    this.uid = sender.uid;
    this.gid = sender.gid;
    this.pidfd = sender.pidfd;
  }

  get exited(): boolean {
    return (this.answer ??= this.ask());
  }

  private ask(): boolean {
    if (this.pidfd < 0 || this.pidfdGetPid === undefined) return false;
    try {
      return this.pidfdGetPid(this.pidfd) === -1;
    } catch {
      return false;
    }
  }
}

class FdSet implements NotifyFdSet {
  private fds: number[];

  constructor(fds: readonly number[]) {
    this.fds = [...fds];
  }

  get count(): number {
    return this.fds.length;
  }

  take(): number[] {
    const taken = this.fds;
    this.fds = [];
    return taken;
  }
}

const REFUSAL_CODES: Record<NotifyRefusalReason, string> = {
  'access-none': 'ERR_NOTIFY_ACCESS_NONE',
  'not-main-pid': 'ERR_NOTIFY_ACCESS_NOT_MAIN_PID',
  'not-main-or-control-pid': 'ERR_NOTIFY_ACCESS_NOT_MAIN_OR_CONTROL_PID',
  'not-in-cgroup': 'ERR_NOTIFY_ACCESS_NOT_IN_CGROUP',
};

function refusalCode(reason: NotifyRefusalReason): string {
  return REFUSAL_CODES[reason] ?? 'ERR_NOTIFY_ACCESS';
}

/** Reads a process's parent and name from /proc/<pid>/stat (undefined when it is gone). */
export function readParentFromProc(pid: number): ProcessParent | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}
