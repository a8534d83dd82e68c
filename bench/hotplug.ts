// Hotplug: 50 labelled ext4 images attached at once (`losetup --find --show`, one after the other
// as fast as the loop goes), then the time from the last attach until every
// /dev/disk/by-uuid/<uuid> link exists (polled every 1 ms, at most 30 s); then all detached
// (`losetup -d`) and the time from the last detach until every link is gone. For triggerd
// standalone with the project's own rules and with Debian's rules, and for Debian's systemd-udevd
// standalone with Debian's rules, one after the other in the same run (never two at once: both
// write /dev links). Each repetition formats the images with fresh UUIDs, so no link can be left
// over from the one before.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onCleanup } from './lib/cleanup';
import {
  byUuidLink,
  createImages,
  LoopSet,
  reformat,
  type Attachment,
  type Ext4Image,
} from './lib/ext4-loops';
import { runCommand, sleep } from './lib/proc';
import { hostInfo, runBenchmark } from './lib/report';
import { median, round } from './lib/stats';
import { debianRulesPath, OWN_RULES, startTriggerd } from './lib/triggerd-daemon';
import { ensureUdev, installAllowed, startUdevd, type UdevTools } from './lib/udevd';

const IMAGES = 50;
const REPS = 3;
const POLL_MS = 1;
const POLL_CAP_MS = 30_000;

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

interface PollResult {
  /** From `since` until the condition held for every link (0: it already held at the first check). */
  ms: number;
  /** Links still not in the wanted state when the cap ran out. */
  remaining: number;
  polls: number;
}

/** Poll every POLL_MS until every link exists (want=true) or is gone (want=false), at most POLL_CAP_MS. */
async function pollLinks(links: readonly string[], want: boolean, since: number): Promise<PollResult> {
  const pending = new Set(links);
  let polls = 0;
  let doneAt = since;
  for (;;) {
    polls++;
    for (const l of pending) if (exists(l) === want) pending.delete(l);
    const now = performance.now();
    if (pending.size === 0) {
      doneAt = now;
      break;
    }
    if (now - since >= POLL_CAP_MS) break;
    await sleep(POLL_MS);
  }
  return {
    ms: pending.size === 0 ? Math.max(0, doneAt - since) : Number.NaN,
    remaining: pending.size,
    polls,
  };
}

interface Rep {
  attachLoopMs: number;
  /** Last `losetup --find --show` returned → every by-uuid link exists. */
  linksMs: number;
  linksMissing: number;
  wrongTarget: number;
  detachLoopMs: number;
  /** Last `losetup -d` returned → every by-uuid link is gone. */
  goneMs: number;
  linksLeft: number;
  detachFailures: number;
}

async function oneRep(loops: LoopSet, images: Ext4Image[], settle: () => Promise<boolean>): Promise<Rep> {
  const links = images.map(byUuidLink);
  const stale = links.filter(exists);
  if (stale.length > 0)
    throw new Error(`by-uuid links exist before attaching fresh UUIDs: ${stale.slice(0, 3).join(', ')}`);

  const attachments: Attachment[] = [];
  const t0 = performance.now();
  for (const image of images) attachments.push(await loops.attach(image));
  const lastAttach = performance.now();
  const appear = await pollLinks(links, true, lastAttach);
  let wrongTarget = 0;
  for (const a of attachments) {
    try {
      if (path.basename(fs.readlinkSync(byUuidLink(a.image))) !== path.basename(a.device)) wrongTarget++;
    } catch {
      // missing: counted by the poll
    }
  }
  await settle(); // the daemon's follow-up work (udevd's watch-triggered change) is not measured

  let detachFailures = 0;
  const d0 = performance.now();
  for (const a of attachments) if (!(await loops.detach(a.device))) detachFailures++;
  const lastDetach = performance.now();
  const gone = await pollLinks(links, false, lastDetach);
  await settle();
  return {
    attachLoopMs: round(lastAttach - t0),
    linksMs: round(appear.ms, 2),
    linksMissing: appear.remaining,
    wrongTarget,
    detachLoopMs: round(lastDetach - d0),
    goneMs: round(gone.ms, 2),
    linksLeft: gone.remaining,
    detachFailures,
  };
}

function summarize(reps: Rep[]): Record<string, unknown> {
  const ok = (f: (r: Rep) => number): number[] => reps.map(f).filter((v) => Number.isFinite(v));
  return {
    linksAfterLastAttachMs: {
      median: round(median(ok((r) => r.linksMs)), 2),
      runs: reps.map((r) => r.linksMs),
    },
    goneAfterLastDetachMs: {
      median: round(median(ok((r) => r.goneMs)), 2),
      runs: reps.map((r) => r.goneMs),
    },
    attachLoopMs: reps.map((r) => r.attachLoopMs),
    detachLoopMs: reps.map((r) => r.detachLoopMs),
    linksMissingAfterCap: reps.map((r) => r.linksMissing),
    linksLeftAfterCap: reps.map((r) => r.linksLeft),
    wrongTarget: reps.map((r) => r.wrongTarget),
    detachFailures: reps.map((r) => r.detachFailures),
  };
}

async function runReps(loops: LoopSet, images: Ext4Image[], settle: () => Promise<boolean>): Promise<Rep[]> {
  const reps: Rep[] = [];
  for (let i = 0; i < REPS; i++) {
    await reformat(images); // fresh UUIDs: nothing from an earlier repetition can answer the poll
    reps.push(await oneRep(loops, images, settle));
  }
  return reps;
}

async function measureTriggerd(
  loops: LoopSet,
  images: Ext4Image[],
  label: string,
  rulesPath: string,
): Promise<Record<string, unknown>> {
  const daemon = await startTriggerd(rulesPath);
  let exit: object | undefined;
  try {
    const reps = await runReps(loops, images, async () => (await daemon.settle(60_000)).settled);
    const stale = loops.sweepStaleLinks().removed;
    const status = await daemon.status();
    const stopped = await daemon.stop();
    exit = { code: stopped.exitCode, signal: stopped.signal, forced: stopped.forced };
    return {
      name: `triggerd (${label})`,
      rulesPath,
      ruleFiles: status.ruleFiles.length,
      readyMs: round(daemon.readyMs),
      ...summarize(reps),
      ...staleReport(stale),
      uevents: { received: status.uevents.received, overflows: status.uevents.overflows },
      exit,
      logLinesAtWarn: daemon.logLines(),
      logTail: daemon.logTail().slice(-3),
    };
  } finally {
    if (exit === undefined) await daemon.stop();
  }
}

async function measureUdevd(
  loops: LoopSet,
  images: Ext4Image[],
  tools: UdevTools,
): Promise<Record<string, unknown>> {
  const udevd = await startUdevd(tools);
  try {
    const reps = await runReps(
      loops,
      images,
      async () =>
        (await runCommand(tools.udevadm, ['settle', '--timeout=60'], { timeoutMs: 70_000 })).code === 0,
    );
    const stale = loops.sweepStaleLinks().removed;
    return {
      name: 'systemd-udevd',
      version: tools.version,
      package: tools.origin,
      rules: "Debian's, 80-net-setup-link.rules masked",
      ...summarize(reps),
      ...staleReport(stale),
    };
  } finally {
    const stopped = await udevd.stop();
    if (stopped.forced) process.stderr.write('systemd-udevd ignored SIGTERM for 5 s and was killed\n');
  }
}

/**
 * Links of our images or attachments (by-uuid, by-label, the attach-time by-diskseq) that the
 * daemon left after every device was detached and it had settled; swept before the next daemon.
 */
function staleReport(removed: readonly string[]): Record<string, unknown> {
  return { staleLinksAfterDetach: removed.length, staleLinkExamples: removed.slice(0, 3) };
}

function medianOf(report: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = (report?.[key] as { median?: number } | undefined)?.median;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

async function main(): Promise<object> {
  if (process.getuid?.() !== 0) throw new Error('needs root: loop devices and /dev links');
  const avail = await ensureUdev(installAllowed());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-bench-hotplug-'));
  onCleanup(`remove ${tmp}`, () => fs.rmSync(tmp, { recursive: true, force: true }));
  const tag = `hp${process.pid.toString(36).slice(-4)}`;
  const images = await createImages(tmp, IMAGES, tag);
  const loops = new LoopSet();

  const results: Record<string, Record<string, unknown>> = {};
  const errors: Record<string, string> = {};
  const attempt = async (key: string, run: () => Promise<Record<string, unknown>>): Promise<void> => {
    try {
      results[key] = await run();
    } catch (err) {
      errors[key] = err instanceof Error ? err.message : String(err);
      // A failed measurement must not leave devices attached for the next one.
      loops.detachAllSync();
      loops.sweepStaleLinks();
    }
  };
  await attempt('triggerdOwnRules', () => measureTriggerd(loops, images, 'own rules', OWN_RULES));
  await attempt('triggerdDebianRules', () =>
    measureTriggerd(loops, images, "Debian's rules", debianRulesPath(path.join(tmp, 'rules-mask'))),
  );
  if (avail.ok) await attempt('udevd', () => measureUdevd(loops, images, avail.tools));
  else errors.udevd = avail.reason;
  const sweep = loops.close();

  const peer = results.udevd;
  const compare = (key: string): Record<string, number | null> => {
    const u = medianOf(peer, key);
    const out: Record<string, number | null> = {};
    for (const t of ['triggerdOwnRules', 'triggerdDebianRules']) {
      const v = medianOf(results[t], key);
      out[`${t}OverUdevd`] = v === undefined || u === undefined || u === 0 ? null : round(v / u, 2);
    }
    return out;
  };
  const within = (t: string): boolean => {
    const keys = ['linksAfterLastAttachMs', 'goneAfterLastDetachMs'];
    return keys.every((k) => {
      const v = medianOf(results[t], k);
      const u = medianOf(peer, k);
      return v !== undefined && u !== undefined && v <= u;
    });
  };
  return {
    benchmark: 'hotplug',
    host: hostInfo(),
    workload:
      `${IMAGES} 4 MiB ext4 images (fresh UUID per repetition) attached with losetup --find --show one after the ` +
      `other, then all detached with losetup -d; ${REPS} repetitions per daemon; /dev/disk/by-uuid polled every ` +
      `${POLL_MS} ms, at most ${POLL_CAP_MS / 1000} s; times run from the moment the last losetup returned`,
    target: {
      linksAfterLastAttachMs: "≤ udevd's median in the same run",
      goneAfterLastDetachMs: "≤ udevd's median in the same run",
      appliesTo: "triggerd with Debian's rules (the same rule set as udevd)",
    },
    meetsTarget: within('triggerdDebianRules'),
    ratio: {
      linksAfterLastAttach: compare('linksAfterLastAttachMs'),
      goneAfterLastDetach: compare('goneAfterLastDetachMs'),
    },
    triggerdOwnRules: results.triggerdOwnRules ?? { failed: errors.triggerdOwnRules },
    triggerdDebianRules: results.triggerdDebianRules ?? { failed: errors.triggerdDebianRules },
    peer: peer ?? { name: 'systemd-udevd', skipped: `could not run: ${errors.udevd}` },
    staleLinksSwept: sweep.removed.length,
  };
}

runBenchmark(main);
