// Runs a CompiledRules program on one event and returns what the rules decided (RulesResult).
// The only way out is the RulesHost: sysfs reads, the parent chain, programs and builtins, files.
// Nothing here throws on bad input: problems go into result.diagnostics with their SourceRef.
import type { DeviceRecord, Uevent, UeventAction } from '../types';
import type { RulesResult } from './rules-result';
import { isParentToken, type CompiledRules, type ImportKind, type RuleToken } from './rules-compiler';
import type { RuleSourceRef } from './rules-lexer';
import { compilePattern } from './rules-pattern';
import {
  ALLOWED_CHARS_INPUT,
  replaceUnsafeChars,
  hasSubstitution,
  substitute,
  type SubstituteOptions,
  type SubstitutionContext,
} from './substitute';

/** One device of the chain the parent-walking keys look at. */
export interface RulesDeviceInfo {
  /** Path below /sys, starting with '/'. */
  devpath: string;
  /** Kernel name (sysname). */
  kernel: string;
  subsystem?: string;
  devtype?: string;
  driver?: string;
  /** Absolute device node, if any. */
  devname?: string;
  /** Tags from the device database (for TAGS==). */
  tags: ReadonlySet<string>;
}

/** What a builtin is told about the device (a snapshot at the time of the call). */
export interface BuiltinDevice {
  devpath: string;
  kernel: string;
  subsystem: string;
  devtype?: string;
  devname?: string;
  action: UeventAction;
  properties: ReadonlyMap<string, string>;
}

export interface ProgramOutcome {
  /** Exit status; anything but 0 (or a timeout) is a failure. */
  exitCode: number;
  stdout: string;
  timedOut?: boolean;
}

/**
 * Everything the executor may ask of the world. Reads are synchronous (sysfs and small files,
 * as udevd does them); programs and builtins are asynchronous. `devpath` is always a path below
 * /sys; absolute paths (TEST, IMPORT{file}) are real paths ('/sys/devices/...').
 */
export interface RulesHost {
  /** Sysfs attribute value as read (trailing newline included or not), undefined if absent. */
  readAttr(devpath: string, name: string): string | undefined;
  /** The parent device of `devpath`, undefined at the top. */
  parentOf(devpath: string): RulesDeviceInfo | undefined;
  /** Resolve `[subsystem/sysname]` to a devpath (for $attr{[dmi/id]modalias}). */
  deviceBySubsystemSysname(subsystem: string, sysname: string): string | undefined;
  runProgram(
    argv: readonly string[],
    env: ReadonlyMap<string, string>,
    timeoutMs: number,
    maxOutputBytes: number,
  ): Promise<ProgramOutcome>;
  /** Run a builtin; undefined means it failed (the IMPORT does not match). */
  runBuiltin(
    name: string,
    argv: readonly string[],
    device: BuiltinDevice,
  ): Promise<Map<string, string> | undefined>;
  readFile(path: string): string | undefined;
  /** /proc/cmdline contents. */
  cmdline(): string;
  /** Properties stored in the device database for `devpath` (IMPORT{db}, IMPORT{parent}). */
  dbProperties(devpath: string): ReadonlyMap<string, string> | undefined;
  /** Value of a sysctl ('net/ipv4/ip_forward' or 'net.ipv4.ip_forward'). */
  sysctl(key: string): string | undefined;
  /** Whether `path` exists; with `mode`, whether any of those permission bits are set. */
  testPath(path: string, mode?: number): boolean;
  /** CONST{arch} (e.g. 'x86-64') and CONST{virt} (e.g. 'kvm', 'none'). */
  constValue(name: 'arch' | 'virt'): string;
}

export interface RunRulesOptions {
  programTimeoutMs?: number;
  maxOutputBytes?: number;
}

/** Relative program names are looked up here, as udev does. */
export const UDEV_LIBEXEC_DIR = '/lib/udev';
export const DEFAULT_PROGRAM_TIMEOUT_MS = 180_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 16384;

/** Builtins udev runs at most once per event (their result is reused). */
const RUN_ONCE_BUILTINS = new Set(['blkid', 'input_id', 'net_id', 'net_setup_link', 'path_id', 'usb_id']);

/** Split a command line into argv as udev does: whitespace, '…' and "…" quoting, no shell. */
export function splitCommand(command: string): string[] {
  const argv: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) argv.push(cur);
  return argv;
}

/** KEY=VALUE lines (IMPORT{program}, IMPORT{file}): comments skipped, one level of quotes removed. */
export function parseKeyValueLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.substring(0, eq).trim();
    if (!/^[A-Za-z0-9_.]+$/.test(key)) continue;
    let value = line.substring(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0] as string)) {
      value = value.substring(1, value.length - 1);
    }
    out.push([key, value]);
  }
  return out;
}

function sysnameOf(devpath: string): string {
  const slash = devpath.lastIndexOf('/');
  return devpath.substring(slash + 1).replace(/!/g, '/');
}

const MAX_PARENTS = 64;

type Escape = 'unset' | 'none' | 'replace';

/** Mutable state of one event while the rules run on it. */
class EventRun {
  readonly devpath: string;
  readonly kernel: string;
  readonly major?: number;
  readonly minor?: number;
  readonly devnode?: string;
  readonly props = new Map<string, string>();
  readonly tags = new Set<string>();
  devlinks: string[] = [];
  esc: Escape = 'unset';
  programResult: string | undefined;
  matched: RulesDeviceInfo | undefined;
  private readonly chain: RulesDeviceInfo[];
  private chainDone = false;
  readonly builtinOnce = new Map<string, boolean>();
  finals = { name: false, devlink: false, owner: false, group: false, mode: false, run: false };
  readonly result: RulesResult = {
    properties: new Map(),
    tags: new Set(),
    devlinks: [],
    linkPriority: 0,
    seclabels: new Map(),
    attrWrites: [],
    sysctlWrites: [],
    run: [],
    options: new Set(),
    diagnostics: [],
  };

  constructor(
    readonly event: Uevent,
    readonly device: DeviceRecord | undefined,
    readonly host: RulesHost,
    readonly options: Required<RunRulesOptions>,
  ) {
    this.devpath = event.devpath;
    this.kernel = sysnameOf(event.devpath);
    if (event.major !== undefined) this.major = event.major;
    if (event.minor !== undefined) this.minor = event.minor;
    const devname = event.devname ?? device?.devname;
    if (devname !== undefined) this.devnode = devname;
    if (event.action === 'remove' && device !== undefined) {
      // On remove the rules see the device as the database knew it.
      for (const [k, v] of device.properties) this.props.set(k, v);
      for (const t of device.tags) this.tags.add(t);
    }
    for (const [k, v] of event.properties) this.props.set(k, v);
    if (this.devnode !== undefined) this.props.set('DEVNAME', this.devnode);
    const self: RulesDeviceInfo = {
      devpath: event.devpath,
      kernel: this.kernel,
      subsystem: event.subsystem,
      tags: this.tags,
    };
    if (event.devtype !== undefined) self.devtype = event.devtype;
    const driver = event.properties.get('DRIVER') ?? device?.driver;
    if (driver !== undefined) self.driver = driver;
    if (this.devnode !== undefined) self.devname = this.devnode;
    this.chain = [self];
  }

  get self(): RulesDeviceInfo {
    return this.chain[0] as RulesDeviceInfo;
  }

  /** The k-th device of the chain (0 = the event's device), fetched lazily from the host. */
  chainAt(k: number): RulesDeviceInfo | undefined {
    while (k >= this.chain.length && !this.chainDone) {
      if (this.chain.length > MAX_PARENTS) {
        this.chainDone = true;
        break;
      }
      const last = this.chain[this.chain.length - 1] as RulesDeviceInfo;
      const parent = this.guard(undefined, () => this.host.parentOf(last.devpath));
      if (parent === undefined || parent.devpath === last.devpath) this.chainDone = true;
      else this.chain.push(parent);
    }
    return this.chain[k];
  }

  diag(
    severity: 'error' | 'warning',
    code: string,
    message: string,
    source: RuleSourceRef | undefined,
  ): void {
    const d: RulesResult['diagnostics'][number] = { severity, message, code };
    if (source !== undefined) d.source = source;
    this.result.diagnostics.push(d);
  }

  /** Call the host; a throwing host becomes a diagnostic and `fallback`. */
  guard<T>(source: RuleSourceRef | undefined, f: () => T, fallback?: T): T | undefined {
    try {
      return f();
    } catch (e: unknown) {
      this.diag(
        'error',
        'ERR_RULE_HOST',
        `host call failed: ${e instanceof Error ? e.message : String(e)}`,
        source,
      );
      return fallback;
    }
  }

  // What the SubstitutionContext (contextOf) exposes.
  name(): string {
    if (this.result.name !== undefined) return this.result.name;
    if (this.devnode !== undefined)
      return this.devnode.startsWith('/dev/') ? this.devnode.substring(5) : this.devnode;
    return this.kernel;
  }
  links(): readonly string[] {
    return this.devlinks;
  }
  result_(): string | undefined {
    return this.programResult;
  }
  matchedKernel(): string | undefined {
    return this.matched?.kernel;
  }
  matchedDriver(): string | undefined {
    return this.matched?.driver;
  }
  parentNode(): string | undefined {
    const dn = this.chainAt(1)?.devname;
    return dn === undefined ? undefined : dn.startsWith('/dev/') ? dn.substring(5) : dn;
  }
  env(key: string): string | undefined {
    return this.props.get(key);
  }
  attr(name: string): string | undefined {
    const sub = this.resolveSubsysAttr(name);
    if (sub !== undefined)
      return sub.devpath === undefined ? undefined : this.host.readAttr(sub.devpath, sub.attr);
    const v = this.host.readAttr(this.devpath, name);
    if (v !== undefined || this.matched === undefined) return v;
    return this.host.readAttr(this.matched.devpath, name);
  }

  /** `[subsystem/sysname]attr` → that device's devpath and the attribute; undefined if not that form. */
  resolveSubsysAttr(name: string): { devpath: string | undefined; attr: string } | undefined {
    if (name.charCodeAt(0) !== 0x5b) return undefined; // not '['
    const m = /^\[([^/\]]+)\/([^\]]+)\]\/?(.*)$/.exec(name);
    if (m === null) return undefined;
    const devpath = this.host.deviceBySubsystemSysname(m[1] as string, m[2] as string);
    return { devpath, attr: m[3] as string };
  }

  programEnv(): Map<string, string> {
    const env = new Map<string, string>();
    for (const [k, v] of this.props) if (!k.startsWith('.')) env.set(k, v);
    return env;
  }

  builtinDevice(): BuiltinDevice {
    const d: BuiltinDevice = {
      devpath: this.devpath,
      kernel: this.kernel,
      subsystem: this.event.subsystem,
      action: this.event.action,
      properties: new Map(this.props),
    };
    if (this.event.devtype !== undefined) d.devtype = this.event.devtype;
    if (this.devnode !== undefined) d.devname = this.devnode;
    return d;
  }

  setProperty(key: string, value: string): void {
    if (value === '') this.props.delete(key);
    else this.props.set(key, value);
  }
}

/** The SubstitutionContext view of a run (its `result()` is the PROGRAM output). */
function contextOf(run: EventRun): SubstitutionContext {
  return {
    devpath: run.devpath,
    kernel: run.kernel,
    ...(run.major !== undefined ? { major: run.major } : {}),
    ...(run.minor !== undefined ? { minor: run.minor } : {}),
    ...(run.devnode !== undefined ? { devnode: run.devnode } : {}),
    name: () => run.name(),
    links: () => run.links(),
    result: () => run.result_(),
    matchedKernel: () => run.matchedKernel(),
    matchedDriver: () => run.matchedDriver(),
    parentNode: () => run.parentNode(),
    env: (k) => run.env(k),
    attr: (n) => run.attr(n),
  };
}

function formatWith(
  run: EventRun,
  ctx: SubstitutionContext,
  template: string,
  source: RuleSourceRef,
  opts?: SubstituteOptions,
): string {
  // Most rule values are literals: no substitution, no result object, no closure.
  return hasSubstitution(template) ? substituteWith(run, ctx, template, source, opts) : template;
}

function substituteWith(
  run: EventRun,
  ctx: SubstitutionContext,
  template: string,
  source: RuleSourceRef,
  opts?: SubstituteOptions,
): string {
  const r = run.guard(source, () => substitute(template, ctx, opts));
  if (r === undefined) return '';
  for (const p of r.problems) run.diag('warning', 'ERR_RULE_SUBSTITUTION', p.message, source);
  return r.value;
}

/** Match a pattern against a device's attribute (trailing whitespace dropped unless the pattern has it). */
function matchAttrValue(
  value: string | undefined,
  token: { negate: boolean; keepTrailingSpace: boolean; pattern: { test(v: string | undefined): boolean } },
): boolean {
  // udev: a missing attribute fails the key whatever the operator.
  if (value === undefined) return false;
  const v = token.keepTrailingSpace || !/\s$/.test(value) ? value : value.replace(/\s+$/, '');
  return token.pattern.test(v) !== token.negate;
}

// The matchers below run for most tokens of every event; the ones that need a closure (guard)
// live in their own functions, so the common cases allocate no closure context per call.

function parentAttrMatches(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-parent-attr' }>,
  dev: RulesDeviceInfo,
): boolean {
  const name = formatWith(run, ctx, t.name, t.source);
  return matchAttrValue(
    run.guard(t.source, () => run.host.readAttr(dev.devpath, name)),
    t,
  );
}

function parentTokenMatches(
  run: EventRun,
  ctx: SubstitutionContext,
  t: RuleToken,
  dev: RulesDeviceInfo,
): boolean {
  if (t.type === 'match-parent-attr') return parentAttrMatches(run, ctx, t, dev);
  if (t.type !== 'match-parent') return false;
  switch (t.key) {
    case 'KERNELS':
      return t.pattern.test(dev.kernel) !== t.negate;
    case 'SUBSYSTEMS':
      return t.pattern.test(dev.subsystem) !== t.negate;
    case 'DRIVERS':
      return t.pattern.test(dev.driver) !== t.negate;
    case 'TAGS': {
      for (const tag of dev.tags) if (t.pattern.test(tag)) return !t.negate;
      return t.negate;
    }
  }
}

/**
 * All parent tokens (tokens[from, to)) must match on the same device: the event's device first,
 * then up.
 */
function walkParents(
  run: EventRun,
  ctx: SubstitutionContext,
  tokens: readonly RuleToken[],
  from: number,
  to: number,
): boolean {
  for (let k = 0; ; k++) {
    const dev = run.chainAt(k);
    if (dev === undefined) {
      run.matched = undefined;
      return false;
    }
    let all = true;
    for (let i = from; i < to && all; i++) all = parentTokenMatches(run, ctx, tokens[i]!, dev);
    if (all) {
      run.matched = dev;
      return true;
    }
  }
}

function attrPath(run: EventRun, name: string): string | undefined {
  const sub = run.resolveSubsysAttr(name);
  if (sub !== undefined) return sub.devpath === undefined ? undefined : `/sys${sub.devpath}/${sub.attr}`;
  return name.startsWith('/') ? name : `/sys${run.devpath}/${name}`;
}

async function runImport(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-import' }>,
): Promise<boolean> {
  const kind: ImportKind = t.kind;
  const value = formatWith(run, ctx, t.value, t.source);
  switch (kind) {
    case 'program': {
      const argv = splitCommand(value);
      if (argv.length === 0) return false;
      if (!(argv[0] as string).startsWith('/')) argv[0] = `${UDEV_LIBEXEC_DIR}/${argv[0] as string}`;
      const out = await runProgram(run, argv, t.source);
      if (out === undefined) return false;
      for (const [k, v] of parseKeyValueLines(out)) run.setProperty(k, v);
      return true;
    }
    case 'builtin': {
      const argv = splitCommand(value);
      const name = argv[0];
      if (name === undefined) return false;
      const once = RUN_ONCE_BUILTINS.has(name) ? run.builtinOnce.get(name) : undefined;
      if (once !== undefined) return once;
      let props: Map<string, string> | undefined;
      try {
        props = await run.host.runBuiltin(name, argv, run.builtinDevice());
      } catch (e: unknown) {
        run.diag(
          'error',
          'ERR_RULE_BUILTIN',
          `builtin ${name} failed: ${e instanceof Error ? e.message : String(e)}`,
          t.source,
        );
        props = undefined;
      }
      if (RUN_ONCE_BUILTINS.has(name)) run.builtinOnce.set(name, props !== undefined);
      if (props === undefined) return false;
      for (const [k, v] of props) run.setProperty(k, v);
      return true;
    }
    case 'file': {
      const text = run.guard(t.source, () => run.host.readFile(value));
      if (text === undefined) return false;
      for (const [k, v] of parseKeyValueLines(text)) run.setProperty(k, v);
      return true;
    }
    case 'db': {
      const db = run.device?.properties ?? run.guard(t.source, () => run.host.dbProperties(run.devpath));
      const v = db?.get(value);
      if (v === undefined) return false;
      run.setProperty(value, v);
      return true;
    }
    case 'cmdline': {
      const cmdline = run.guard(t.source, () => run.host.cmdline(), '') ?? '';
      let found: string | undefined;
      for (const word of splitCommand(cmdline)) {
        if (word === value) found = '1';
        else if (word.startsWith(value + '=')) found = word.substring(value.length + 1);
      }
      if (found === undefined) return false;
      run.setProperty(value, found);
      return true;
    }
    case 'parent': {
      const parent = run.chainAt(1);
      if (parent === undefined) return false;
      const db = run.guard(t.source, () => run.host.dbProperties(parent.devpath));
      if (db === undefined) return false;
      const pattern = compilePattern(value);
      for (const [k, v] of db) if (pattern.test(k)) run.setProperty(k, v);
      return true;
    }
  }
}

async function runProgram(run: EventRun, argv: string[], source: RuleSourceRef): Promise<string | undefined> {
  let out: ProgramOutcome;
  try {
    out = await run.host.runProgram(
      argv,
      run.programEnv(),
      run.options.programTimeoutMs,
      run.options.maxOutputBytes,
    );
  } catch (e: unknown) {
    run.diag(
      'error',
      'ERR_RULE_PROGRAM',
      `cannot run ${argv[0] ?? ''}: ${e instanceof Error ? e.message : String(e)}`,
      source,
    );
    return undefined;
  }
  if (out.timedOut === true) {
    run.diag(
      'error',
      'ERR_RULE_PROGRAM',
      `${argv[0] ?? ''} timed out after ${run.options.programTimeoutMs} ms`,
      source,
    );
    return undefined;
  }
  if (out.exitCode !== 0) return undefined;
  return out.stdout;
}

/** A match token other than the parent-walking ones, PROGRAM and IMPORT (those are async). */
function matchToken(run: EventRun, ctx: SubstitutionContext, t: RuleToken): boolean {
  switch (t.type) {
    case 'match': {
      switch (t.key) {
        case 'ACTION':
          return t.pattern.test(run.event.action) !== t.negate;
        case 'DEVPATH':
          return t.pattern.test(run.devpath) !== t.negate;
        case 'KERNEL':
          return t.pattern.test(run.kernel) !== t.negate;
        case 'NAME':
          return t.pattern.test(run.result.name) !== t.negate;
        case 'SUBSYSTEM':
          return t.pattern.test(run.event.subsystem) !== t.negate;
        case 'DRIVER':
          return t.pattern.test(run.self.driver) !== t.negate;
        case 'RESULT':
          return t.pattern.test(run.programResult) !== t.negate;
        case 'SYMLINK': {
          for (const l of run.devlinks) if (t.pattern.test(l)) return !t.negate;
          return t.negate;
        }
        case 'TAG': {
          for (const tag of run.tags) if (t.pattern.test(tag)) return !t.negate;
          return t.negate;
        }
      }
      return false;
    }
    case 'match-env':
      return t.pattern.test(run.props.get(t.name)) !== t.negate;
    case 'match-const':
      return matchConst(run, t);
    case 'match-attr':
      return matchAttr(run, ctx, t);
    case 'match-sysctl':
      return matchSysctl(run, ctx, t);
    case 'match-test':
      return matchTest(run, ctx, t);
    default:
      return true;
  }
}

function matchConst(run: EventRun, t: Extract<RuleToken, { type: 'match-const' }>): boolean {
  return t.pattern.test(run.guard(t.source, () => run.host.constValue(t.name))) !== t.negate;
}

function matchAttr(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-attr' }>,
): boolean {
  const name = formatWith(run, ctx, t.name, t.source);
  const sub = run.resolveSubsysAttr(name);
  const value = run.guard(t.source, () =>
    sub !== undefined
      ? sub.devpath === undefined
        ? undefined
        : run.host.readAttr(sub.devpath, sub.attr)
      : run.host.readAttr(run.devpath, name),
  );
  return matchAttrValue(value, t);
}

function matchSysctl(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-sysctl' }>,
): boolean {
  const key = formatWith(run, ctx, t.name, t.source);
  const value = run.guard(t.source, () => run.host.sysctl(key));
  if (value === undefined) return false;
  return t.pattern.test(value.replace(/\s+$/, '')) !== t.negate;
}

function matchTest(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-test' }>,
): boolean {
  const p = attrPath(run, formatWith(run, ctx, t.path, t.source));
  const exists =
    p === undefined ? false : (run.guard(t.source, () => run.host.testPath(p, t.mode), false) ?? false);
  return exists !== t.negate;
}

/** PROGRAM: run it, keep its sanitised output as $result. */
async function matchProgram(
  run: EventRun,
  ctx: SubstitutionContext,
  t: Extract<RuleToken, { type: 'match-program' }>,
): Promise<boolean> {
  const command = formatWith(run, ctx, t.command, t.source);
  const argv = splitCommand(command);
  if (argv.length === 0) return t.negate;
  if (!(argv[0] as string).startsWith('/')) argv[0] = `${UDEV_LIBEXEC_DIR}/${argv[0] as string}`;
  const out = await runProgram(run, argv, t.source);
  if (out === undefined) return t.negate;
  let r = out.replace(/\n+$/, '');
  if (run.esc !== 'none') r = replaceUnsafeChars(r, ALLOWED_CHARS_INPUT);
  run.programResult = r;
  return !t.negate;
}

const TAG_CHARS = /^[A-Za-z0-9_-]+$/;

function addLinks(
  run: EventRun,
  t: Extract<RuleToken, { type: 'assign-symlink' }>,
  ctx: SubstitutionContext,
): void {
  if (run.finals.devlink) return;
  if (t.op === ':=') run.finals.devlink = true;
  if (t.op === '=' || t.op === ':=') run.devlinks = [];
  let v = formatWith(run, ctx, t.value, t.source, { replaceWhitespace: run.esc !== 'none' });
  // Unescaped, spaces separate several links; with string_escape=replace they are replaced too.
  if (run.esc === 'unset') v = replaceUnsafeChars(v, '/ ');
  else if (run.esc === 'replace') v = replaceUnsafeChars(v, '/');
  for (const link of v.split(/\s+/)) {
    if (link === '') continue;
    if (t.op === '-=') run.devlinks = run.devlinks.filter((l) => l !== link);
    else if (!run.devlinks.includes(link)) run.devlinks.push(link);
  }
}

function assignToken(run: EventRun, ctx: SubstitutionContext, t: RuleToken): void {
  const r = run.result;
  switch (t.type) {
    case 'option': {
      const o = t.option;
      switch (o.name) {
        case 'string_escape':
          run.esc = o.value;
          return;
        case 'db_persist':
          r.options.add('db_persist');
          return;
        case 'watch':
          r.options.delete('nowatch');
          r.options.add('watch');
          return;
        case 'nowatch':
          r.options.delete('watch');
          r.options.add('nowatch');
          return;
        case 'link_priority':
          r.linkPriority = o.value;
          return;
        case 'log_level':
          r.options.add(`log_level=${o.value}`);
          return;
        case 'static_node':
          // Applied when the rules are loaded (static /dev nodes), not per event: recorded only.
          r.options.add(`static_node=${o.value}`);
          return;
      }
      return;
    }
    case 'assign-owner':
    case 'assign-group': {
      const which = t.type === 'assign-owner' ? 'owner' : 'group';
      if (run.finals[which]) return;
      if (t.final) run.finals[which] = true;
      const v = formatWith(run, ctx, t.value, t.source);
      if (v === '')
        run.diag('warning', 'ERR_RULE_VALUE', `${which.toUpperCase()} expanded to an empty value`, t.source);
      else r[which] = v;
      return;
    }
    case 'assign-mode': {
      if (run.finals.mode) return;
      if (t.final) run.finals.mode = true;
      const v = formatWith(run, ctx, t.value, t.source);
      if (!/^[0-7]{1,4}$/.test(v)) {
        run.diag('error', 'ERR_RULE_VALUE', `invalid MODE "${v}", ignored`, t.source);
        return;
      }
      r.mode = parseInt(v, 8);
      return;
    }
    case 'assign-tag': {
      if (t.op === '=') run.tags.clear();
      const v = formatWith(run, ctx, t.value, t.source);
      if (!TAG_CHARS.test(v)) {
        run.diag('error', 'ERR_RULE_VALUE', `invalid tag name "${v}", ignored`, t.source);
        return;
      }
      if (t.op === '-=') run.tags.delete(v);
      else run.tags.add(v);
      return;
    }
    case 'assign-seclabel':
      r.seclabels.set(t.name, formatWith(run, ctx, t.value, t.source));
      (r.seclabelSources ??= new Map()).set(t.name, t.source);
      return;
    case 'assign-env': {
      if (t.value === '') {
        if (!t.append) run.props.delete(t.name);
        return;
      }
      let v = formatWith(run, ctx, t.value, t.source);
      if (run.esc === 'replace') v = replaceUnsafeChars(v, '');
      const old = run.props.get(t.name);
      if (t.append && old !== undefined && old !== '') v = `${old} ${v}`;
      run.setProperty(t.name, v);
      return;
    }
    case 'assign-name': {
      if (run.finals.name) return;
      if (t.final) run.finals.name = true;
      if (!run.props.has('IFINDEX')) {
        run.diag(
          'warning',
          'ERR_RULE_VALUE',
          'only network interfaces can be renamed, NAME= ignored',
          t.source,
        );
        return;
      }
      let v = formatWith(run, ctx, t.value, t.source, { replaceWhitespace: run.esc !== 'none' });
      if (run.esc !== 'none') v = replaceUnsafeChars(v, '/');
      if (v !== '') r.name = v;
      return;
    }
    case 'assign-symlink':
      addLinks(run, t, ctx);
      return;
    case 'assign-attr': {
      const name = formatWith(run, ctx, t.name, t.source);
      const p = attrPath(run, name);
      if (p === undefined) {
        run.diag('warning', 'ERR_RULE_VALUE', `ATTR{${name}}: no such device, ignored`, t.source);
        return;
      }
      r.attrWrites.push({ path: p, value: formatWith(run, ctx, t.value, t.source), source: t.source });
      return;
    }
    case 'assign-sysctl':
      r.sysctlWrites.push({
        key: formatWith(run, ctx, t.name, t.source),
        value: formatWith(run, ctx, t.value, t.source),
        source: t.source,
      });
      return;
    case 'assign-run': {
      if (run.finals.run) return;
      if (t.op === ':=') run.finals.run = true;
      if (t.op !== '+=') r.run = [];
      r.run.push({ kind: t.kind, command: formatWith(run, ctx, t.value, t.source), source: t.source });
      return;
    }
    default:
      return;
  }
}

function isMatchToken(t: RuleToken): boolean {
  return t.type.startsWith('match');
}

/** Run the rules on one event. `device` is the database record before the event, if any. */
export async function runRules(
  rules: CompiledRules,
  event: Uevent,
  device: DeviceRecord | undefined,
  host: RulesHost,
  options: RunRulesOptions = {},
): Promise<RulesResult> {
  const run = new EventRun(event, device, host, {
    programTimeoutMs: options.programTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
  });
  const ctx = contextOf(run);
  const lines = rules.lines;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const tokens = line.tokens;
    let ok = true;
    let k = 0;
    while (k < tokens.length) {
      const t = tokens[k]!;
      if (isParentToken(t)) {
        let end = k;
        while (end < tokens.length && isParentToken(tokens[end]!)) end++;
        if (!walkParents(run, ctx, tokens, k, end)) {
          ok = false;
          break;
        }
        k = end;
        continue;
      }
      if (isMatchToken(t)) {
        // Only PROGRAM and IMPORT wait on the host; the rest stays synchronous (no promise per token).
        const matched =
          t.type === 'match-program'
            ? await matchProgram(run, ctx, t)
            : t.type === 'match-import'
              ? (await runImport(run, ctx, t)) !== t.negate
              : matchToken(run, ctx, t);
        if (!matched) {
          ok = false;
          break;
        }
      } else {
        assignToken(run, ctx, t);
      }
      k++;
    }
    i = ok && line.gotoIndex !== undefined ? line.gotoIndex : i + 1;
  }
  return finish(run);
}

function finish(run: EventRun): RulesResult {
  const r = run.result;
  for (const [k, v] of run.props) if (!k.startsWith('.')) r.properties.set(k, v);
  r.devlinks = run.devlinks.slice();
  if (r.devlinks.length > 0) r.properties.set('DEVLINKS', r.devlinks.map((l) => `/dev/${l}`).join(' '));
  else r.properties.delete('DEVLINKS');
  for (const t of run.tags) r.tags.add(t);
  if (run.esc !== 'unset') r.options.add(`string_escape=${run.esc}`);
  return r;
}
