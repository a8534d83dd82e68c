// The daemon's own CPU share under the kernel's autogroup scheduling (CONFIG_SCHED_AUTOGROUP with
// kernel.sched_autogroup_enabled=1, sched(7) "The autogroup feature"): every session is one
// scheduling group, and between groups only the group's nice value counts, not a thread's. Each
// service triggerd starts calls setsid() and so gets a group of its own, as heavy as the daemon's
// whole group; under a storm of work (an Accept=yes flood, busy services, other sessions) the
// event loop then waits for a CPU about twice as long as it runs (bench/load).
//
// `--autogroup-nice N` sets the nice value of the daemon's own autogroup, and nothing else:
//   - only when the daemon leads its own session (started by init, start-stop-daemon or setsid):
//     otherwise the group is its caller's session (a login shell and everything in it) and is
//     left alone, with a warning;
//   - no thread's nice changes, so nothing the daemon forks inherits it: services are in their own
//     sessions, whose new groups start at nice 0, and get their unit's Nice= as before.
// Under systemd (services in cgroups with the cpu controller) autogroups do not apply; the
// daemon's own unit's CPUWeight= is the knob there. Negative values need CAP_SYS_NICE.
import fs = require('node:fs');

export const AUTOGROUP_FILE = '/proc/self/autogroup';

/** Parses the option's value: an integer nice value, -20..19. */
export function parseAutogroupNice(text: string): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isInteger(n) || n < -20 || n > 19)
    throw new RangeError(`--autogroup-nice must be an integer from -20 to 19, got '${text}'`);
  return n;
}

export type AutogroupDecision =
  { apply: true } | { apply: false; reason: 'no-autogroups' | 'not-session-leader' };

/** Whether to write the group's nice: only a session leader's group is the daemon's own. */
export function decideAutogroupNice(
  pid: number,
  sessionId: number,
  autogroupFileExists: boolean,
): AutogroupDecision {
  if (!autogroupFileExists) return { apply: false, reason: 'no-autogroups' };
  if (sessionId !== pid) return { apply: false, reason: 'not-session-leader' };
  return { apply: true };
}

/** The session id from /proc/PID/stat's text (field 6, after the parenthesized comm). */
export function sessionIdOf(statText: string): number {
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const sid = Number(rest[3]);
  if (!Number.isInteger(sid))
    throw new Error(`cannot read the session id from /proc/self/stat: '${statText.slice(0, 80)}'`);
  return sid;
}

export type AutogroupOutcome =
  { applied: true; group: string } | { applied: false; reason: 'no-autogroups' | 'not-session-leader' };

/** Applies `nice` to the daemon's autogroup when decideAutogroupNice says so; throws on a refused write. */
export function applyAutogroupNice(nice: number): AutogroupOutcome {
  const decision = decideAutogroupNice(
    process.pid,
    sessionIdOf(fs.readFileSync('/proc/self/stat', 'latin1')),
    fs.existsSync(AUTOGROUP_FILE),
  );
  if (!decision.apply) return { applied: false, reason: decision.reason };
  fs.writeFileSync(AUTOGROUP_FILE, String(nice));
  return { applied: true, group: fs.readFileSync(AUTOGROUP_FILE, 'utf8').trim() };
}
