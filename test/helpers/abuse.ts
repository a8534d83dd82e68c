// The abuse harness for the native addons (test/abuse/): every export and every method of the
// objects they return is called with wrong argument counts and types, out-of-range numbers,
// closed and foreign fds, on closed handles and on foreign receivers. The contract at the native
// boundary (DESIGN.md): a bad argument throws a TypeError, a refused system call an Error with a
// `code`, an exception thrown by the caller's own getter or proxy passes through unchanged;
// nothing crashes or aborts, no fd leaks, and the process stays usable.
//
// A crash kills the test process before any report: run a file with TRIGGERD_ABUSE_TRACE=1 to
// have every call's label written to stderr first, so the last line names the culprit.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { requireAddon } from '../../src/native/addon';

/** One argument (or object field, or array element) of an export, with what must be refused. */
export interface Arg {
  name: string;
  /** A fresh valid value (called once per call made). */
  valid: () => unknown;
  /** Values that must be refused; a fresh list per use (some hold fds or getters). */
  bad: () => unknown[];
  /** May be left out or undefined. */
  optional?: boolean;
  /** An object argument: each field is abused in turn inside an otherwise valid object. */
  fields?: readonly Arg[];
  /** An array argument: one element is abused in turn inside an otherwise valid array. */
  element?: Arg;
}

/** A function under test: an addon export, or a method bound to an open handle. */
export interface CallSpec {
  label: string;
  call: (...args: unknown[]) => unknown;
  args: readonly Arg[];
  /** Releases what a call that succeeded made (an fd, a handle, a mount). */
  cleanup?: (result: unknown) => void | Promise<void>;
  /** Skip the extra-arguments call (the valid call has a side effect the test cannot undo). */
  noValidCall?: boolean;
}

/** Thrown by the getters and proxies the harness plants: it must come out unchanged. */
export class PlantedError extends Error {
  constructor(where: string) {
    super(`planted by the abuse harness (${where})`);
  }
}

const trace = process.env.TRIGGERD_ABUSE_TRACE === '1';

function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 40 ? `'${value.slice(0, 20)}…' (${value.length} chars)` : JSON.stringify(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return 'function';
  if (Buffer.isBuffer(value)) return `Buffer(${value.length})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (value !== null && typeof value === 'object') return 'object';
  return String(value);
}

/** Whether `error` is what the contract allows a refused call to throw. */
export function isContractError(error: unknown): boolean {
  if (error instanceof PlantedError) return true;
  if (error instanceof TypeError) return true;
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string';
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.constructor.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return `non-Error ${describeValue(error)}`;
}

/** What went wrong across a run: a list of one-line findings, asserted empty at the end. */
export class Findings {
  readonly list: string[] = [];
  calls = 0;

  add(finding: string): void {
    this.list.push(finding);
  }

  assertNone(): void {
    assert.deepEqual(this.list, [], `${this.list.length} findings in ${this.calls} calls`);
  }
}

async function settle(result: unknown): Promise<{ threw: boolean; error?: unknown; value?: unknown }> {
  if (result instanceof Promise) {
    try {
      return { threw: false, value: await result };
    } catch (error) {
      return { threw: true, error };
    }
  }
  return { threw: false, value: result };
}

/** Calls `call(...args)`, which must be refused with a contract error (sync throw or rejection). */
export async function expectRefused(
  findings: Findings,
  label: string,
  spec: Pick<CallSpec, 'call' | 'cleanup'>,
  args: unknown[],
  expected?: (error: unknown) => boolean,
): Promise<void> {
  findings.calls++;
  if (trace) process.stderr.write(`abuse: ${label}\n`);
  let outcome: { threw: boolean; error?: unknown; value?: unknown };
  try {
    outcome = await settle(spec.call(...args));
  } catch (error) {
    outcome = { threw: true, error };
  }
  if (!outcome.threw) {
    findings.add(`${label}: accepted (returned ${describeValue(outcome.value)})`);
    if (spec.cleanup !== undefined) await spec.cleanup(outcome.value);
    return;
  }
  const ok = expected !== undefined ? expected(outcome.error) : isContractError(outcome.error);
  if (!ok) findings.add(`${label}: threw ${errorText(outcome.error)}`);
}

/** Calls `call(...args)`, which may succeed (cleaned up) or be refused with a contract error. */
export async function expectSettled(
  findings: Findings,
  label: string,
  spec: Pick<CallSpec, 'call' | 'cleanup'>,
  args: unknown[],
): Promise<void> {
  findings.calls++;
  if (trace) process.stderr.write(`abuse: ${label}\n`);
  let outcome: { threw: boolean; error?: unknown; value?: unknown };
  try {
    outcome = await settle(spec.call(...args));
  } catch (error) {
    outcome = { threw: true, error };
  }
  if (outcome.threw) {
    if (!isContractError(outcome.error)) findings.add(`${label}: threw ${errorText(outcome.error)}`);
  } else if (spec.cleanup !== undefined) {
    await spec.cleanup(outcome.value);
  }
}

/** Calls `call(...args)`, which must succeed; its result is cleaned up. */
export async function expectAccepted(
  findings: Findings,
  label: string,
  spec: Pick<CallSpec, 'call' | 'cleanup'>,
  args: unknown[],
): Promise<void> {
  findings.calls++;
  if (trace) process.stderr.write(`abuse: ${label}\n`);
  let value: unknown;
  try {
    const outcome = await settle(spec.call(...args));
    if (outcome.threw) throw outcome.error;
    value = outcome.value;
  } catch (error) {
    findings.add(`${label}: refused a valid call: ${errorText(error)}`);
    return;
  }
  if (spec.cleanup !== undefined) await spec.cleanup(value);
}

/** The valid arguments, with `replace` at index `at` (whose valid value is then never made). */
function validArgs(args: readonly Arg[], at = -1, replace?: unknown): unknown[] {
  return args.map((arg, i) => (i === at ? replace : arg.valid()));
}

/** An object whose `field` getter throws a PlantedError; the other fields are valid. */
function withThrowingGetter(arg: Arg, field: Arg): unknown {
  const object = arg.valid() as Record<string, unknown>;
  Object.defineProperty(object, field.name, {
    enumerable: true,
    get() {
      throw new PlantedError(`${arg.name}.${field.name} getter`);
    },
  });
  return object;
}

function throwingProxy(where: string): object {
  return new Proxy(
    {},
    {
      get() {
        throw new PlantedError(`${where} proxy get`);
      },
      has() {
        throw new PlantedError(`${where} proxy has`);
      },
      ownKeys() {
        throw new PlantedError(`${where} proxy ownKeys`);
      },
      getOwnPropertyDescriptor() {
        throw new PlantedError(`${where} proxy getOwnPropertyDescriptor`);
      },
    },
  );
}

/**
 * Every wrong call of one function: each argument (and each field of an object argument, each
 * element of an array argument) replaced by each of its bad values, throwing getters and proxies,
 * every too-short argument list; and one valid call with extra arguments, which must be ignored.
 */
export async function abuseCall(findings: Findings, spec: CallSpec): Promise<void> {
  const { args } = spec;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    for (const bad of arg.bad()) {
      const list = validArgs(args, i, bad);
      await expectRefused(findings, `${spec.label}: ${arg.name} = ${describeValue(bad)}`, spec, list);
    }
    for (const field of arg.fields ?? []) {
      for (const bad of field.bad()) {
        const list = validArgs(args);
        const object = list[i] as Record<string, unknown>;
        object[field.name] = bad;
        await expectRefused(
          findings,
          `${spec.label}: ${arg.name}.${field.name} = ${describeValue(bad)}`,
          spec,
          list,
        );
      }
      const list = validArgs(args, i, withThrowingGetter(arg, field));
      await expectRefused(
        findings,
        `${spec.label}: ${arg.name}.${field.name} getter throws`,
        spec,
        list,
        (error) => error instanceof PlantedError,
      );
    }
    if (arg.fields !== undefined && arg.fields.length > 0) {
      const list = validArgs(args, i, throwingProxy(arg.name));
      await expectRefused(
        findings,
        `${spec.label}: ${arg.name} is a throwing proxy`,
        spec,
        list,
        (error) => error instanceof PlantedError,
      );
    }
    if (arg.element !== undefined) {
      const element = arg.element;
      for (const bad of element.bad()) {
        const list = validArgs(args, i, [element.valid(), bad]);
        await expectRefused(findings, `${spec.label}: ${arg.name}[1] = ${describeValue(bad)}`, spec, list);
      }
      const getterArray: unknown[] = [element.valid()];
      Object.defineProperty(getterArray, 1, {
        enumerable: true,
        get() {
          throw new PlantedError(`${arg.name}[1] getter`);
        },
      });
      const list = validArgs(args, i, getterArray);
      await expectRefused(
        findings,
        `${spec.label}: ${arg.name}[1] getter throws`,
        spec,
        list,
        (error) => error instanceof PlantedError,
      );
    }
  }
  // Too few arguments: everything from the first missing required one on is left out.
  for (let count = 0; count < args.length; count++) {
    if (args.slice(count).every((arg) => arg.optional === true)) break;
    await expectRefused(
      findings,
      `${spec.label}: called with ${count} of ${args.length} arguments`,
      spec,
      validArgs(args.slice(0, count)),
    );
  }
  if (spec.noValidCall !== true) {
    await expectAccepted(findings, `${spec.label}: valid call with 3 extra arguments`, spec, [
      ...validArgs(args),
      1,
      'extra',
      {},
    ]);
  }
}

/** An addon's exports as the .node file has them (not through its typed wrapper). */
export type RawExports = Record<string, (...args: unknown[]) => unknown>;

/** Loads `fileName` (the same module object as the typed loader's) or says why it cannot. */
export function loadRaw(fileName: string): { exports?: RawExports; skip?: string } {
  try {
    const { loaded } = requireAddon(fileName);
    if (typeof loaded !== 'object' || loaded === null) return { skip: `${fileName} exports no object` };
    // The exports are checked function by function where they are called.
    return { exports: loaded as RawExports };
  } catch (error) {
    return { skip: `${fileName} is not built (${(error as Error).message})` };
  }
}

/** A CallSpec's call for export `name` of `exports`. */
export function exported(exports: RawExports, name: string): (...args: unknown[]) => unknown {
  const fn = exports[name];
  assert.equal(typeof fn, 'function', `${name} is exported`);
  return (...args: unknown[]) => Reflect.apply(fn, exports, args);
}

// ---- Bad values by kind ----

/** Values that are not a number at all. */
export function notNumbers(): unknown[] {
  return [
    undefined,
    null,
    true,
    '1',
    '',
    1n,
    Symbol('n'),
    {},
    [],
    [1],
    () => 1,
    new Number(1),
    { valueOf: () => 1 },
    Buffer.from([1]),
  ];
}

/** An integer argument in [min, max]: wrong types, fractions, NaN, infinities, one past each end. */
export function intArg(name: string, min: number, max: number, valid: () => number, optional = false): Arg {
  return {
    name,
    valid,
    optional,
    bad: () => [
      ...notNumbers().filter((v) => !(optional && v === undefined)),
      NaN,
      Infinity,
      -Infinity,
      min + 0.5,
      min - 1,
      max + 1,
      2 ** 53,
      -(2 ** 53),
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.MIN_VALUE,
    ],
  };
}

export const INT32_MAX = 2 ** 31 - 1;
export const UINT32_MAX = 2 ** 32 - 1;

/**
 * An fd number that is certainly not open: two are opened and closed, and the higher one is
 * returned (an open elsewhere in the process takes the lower one first).
 */
export function closedFd(): number {
  const a = fs.openSync('/dev/null', 'r');
  const b = fs.openSync('/dev/null', 'r');
  fs.closeSync(b);
  fs.closeSync(a);
  return Math.max(a, b);
}

/** Fd numbers in range that are not open: each must be refused with EBADF (or another code). */
export function unopenedFds(): number[] {
  return [closedFd(), INT32_MAX, 1 << 20];
}

/** An fd argument (0..INT32_MAX): wrong types and negative/huge numbers. */
export function fdArg(name: string, valid: () => number, max = INT32_MAX): Arg {
  return intArg(name, 0, max, valid);
}

/** Values that are not a string. */
export function notStrings(optional = false): unknown[] {
  const values: unknown[] = [
    undefined,
    null,
    1,
    true,
    1n,
    Symbol('s'),
    {},
    [],
    ['/a'],
    () => '/a',
    new String('/a'),
    Buffer.from('/a'),
  ];
  return optional ? values.filter((v) => v !== undefined) : values;
}

/** A long string: paths this long are refused by the kernel (ENAMETOOLONG) or the addon. */
export const HUGE_STRING = '/' + 'x'.repeat(1 << 20);

export interface StringRules {
  nonEmpty?: boolean;
  absolute?: boolean;
  /** With `absolute`: "@name" (the abstract socket namespace) is valid too. */
  abstract?: boolean;
  optional?: boolean;
  /** Also refuse a 1 MiB string (TypeError or a system error such as ENAMETOOLONG). */
  huge?: boolean;
}

export function stringArg(name: string, valid: () => string, rules: StringRules = {}): Arg {
  return {
    name,
    valid,
    optional: rules.optional,
    bad: () => {
      const values: unknown[] = [...notStrings(rules.optional), '/a\0b', '\0'];
      if (rules.nonEmpty !== false) values.push('');
      if (rules.absolute === true) values.push('relative/path', '.');
      if (rules.absolute === true && rules.abstract !== true) values.push('@abstract');
      if (rules.huge !== false) values.push(HUGE_STRING);
      return values;
    },
  };
}

export function functionArg(name: string, valid: () => unknown = () => () => undefined): Arg {
  return {
    name,
    valid,
    bad: () => [undefined, null, 1, 'f', true, 1n, Symbol('f'), {}, [], Promise.resolve()],
  };
}

export function boolArg(name: string, valid: () => boolean, optional = false): Arg {
  const values: unknown[] = [undefined, null, 0, 1, 'true', {}, [], Symbol('b'), 1n, new Boolean(true)];
  return {
    name,
    valid,
    optional,
    bad: () => (optional ? values.filter((v) => v !== undefined) : values),
  };
}

/** Values that are neither a Buffer nor any ArrayBufferView. */
export function bufferArg(name: string, valid: () => unknown = () => Buffer.from('x')): Arg {
  return {
    name,
    valid,
    bad: () => [
      undefined,
      null,
      'bytes',
      1,
      true,
      1n,
      Symbol('b'),
      {},
      [1, 2],
      { length: 4 },
      new ArrayBuffer(4),
    ],
  };
}

/** A plain-object argument with fields. */
export function objectArg(name: string, valid: () => Record<string, unknown>, fields: readonly Arg[]): Arg {
  return {
    name,
    valid,
    fields,
    bad: () => [undefined, null, 1, 'object', true, 1n, Symbol('o')],
  };
}

/** An array argument whose elements are `element`. */
export function arrayArg(name: string, valid: () => unknown[], element: Arg, optional = false): Arg {
  return {
    name,
    valid,
    element,
    optional,
    bad: () => {
      const values: unknown[] = [null, 1, 'array', true, {}, { length: 1, 0: element.valid() }];
      if (!optional) values.unshift(undefined);
      return values;
    },
  };
}

/** A string that must be one of `values`. */
export function enumArg(name: string, values: readonly string[], valid: () => string, optional = false): Arg {
  return {
    name,
    valid,
    optional,
    bad: () => [...notStrings(optional), '', 'nonsense', values[0].toUpperCase(), `${values[0]}\0`],
  };
}

// ---- Handles: methods on closed handles, foreign receivers, direct construction ----

export interface MethodSpec {
  args: readonly Arg[];
  /** After close(): 'quiet' returns without throwing, 'throws' throws a contract error. */
  afterClose: 'quiet' | 'throws';
  /** Do not abuse the arguments on the open handle (done elsewhere, or a side effect). */
  skipArgs?: boolean;
  /** The valid call is refused too (it needs a state the test cannot make): see CallSpec. */
  noValidCall?: boolean;
  cleanup?: (result: unknown) => void | Promise<void>;
}

export interface HandleSpec {
  label: string;
  /** Opens a fresh handle (an object made by the addon; `close()` is idempotent). */
  open: () => object;
  methods: Record<string, MethodSpec>;
  /** Accessors: after close(), 'value' reads without throwing, 'throws' throws a contract error. */
  getters: Record<string, 'value' | 'throws'>;
}

function method(handle: object, name: string): (...args: unknown[]) => unknown {
  const fn: unknown = Reflect.get(handle, name);
  assert.equal(typeof fn, 'function', `${name} is a method`);
  return (...args: unknown[]) => (fn as (...a: unknown[]) => unknown).apply(handle, args);
}

/**
 * The whole life of a handle abused: each method's arguments on an open handle, each method and
 * accessor on foreign receivers, close() twice, each method and accessor after close, and the
 * class constructor called directly.
 */
export async function abuseHandle(
  findings: Findings,
  spec: HandleSpec,
  extraForeign: readonly object[] = [],
): Promise<void> {
  const foreign = foreignHandles();
  try {
    await abuseOneHandle(findings, spec, [...foreign.objects, ...extraForeign]);
  } finally {
    foreign.close();
  }
}

/**
 * Objects other addons' classes wrapped (a ClockWatch, an InotifyHandle, a MountInfoWatch, as
 * far as they are built): the receivers a type confusion would need.
 */
export function foreignHandles(): { objects: object[]; close(): void } {
  const noop = (): void => undefined;
  const objects: object[] = [];
  const makers: [string, (n: RawExports) => unknown][] = [
    ['triggerd_timerfd.node', (n) => n.watchClockChanges(noop, noop)],
    ['triggerd_inotify.node', (n) => n.openInotify(noop, noop)],
    ['triggerd_mounts.node', (n) => n.watchMountInfo(noop, noop)],
  ];
  for (const [file, make] of makers) {
    const { exports } = loadRaw(file);
    if (exports !== undefined) objects.push(make(exports) as object);
  }
  return {
    objects,
    close: () => {
      for (const object of objects) (object as { close(): void }).close();
    },
  };
}

async function abuseOneHandle(
  findings: Findings,
  spec: HandleSpec,
  foreign: readonly object[],
): Promise<void> {
  const handle = spec.open();
  for (const [name, m] of Object.entries(spec.methods)) {
    if (m.skipArgs === true || m.args.length === 0) continue;
    await abuseCall(findings, {
      label: `${spec.label}.${name}`,
      call: method(handle, name),
      args: m.args,
      cleanup: m.cleanup,
      noValidCall: m.noValidCall,
    });
  }
  await abuseReceivers(findings, spec, handle, foreign);
  method(handle, 'close')();
  await expectAccepted(findings, `${spec.label}.close() twice`, { call: method(handle, 'close') }, []);
  for (const [name, m] of Object.entries(spec.methods)) {
    if (name === 'close') continue;
    const args = m.args.map((arg) => arg.valid());
    const call = { call: method(handle, name), cleanup: m.cleanup };
    if (m.afterClose === 'quiet') {
      await expectAccepted(findings, `${spec.label}.${name}() after close`, call, args);
    } else {
      await expectRefused(findings, `${spec.label}.${name}() after close`, call, args);
    }
  }
  for (const [name, afterClose] of Object.entries(spec.getters)) {
    const read = { call: () => Reflect.get(handle, name) };
    if (afterClose === 'value') {
      await expectAccepted(findings, `${spec.label}.${name} after close`, read, []);
    } else {
      await expectRefused(findings, `${spec.label}.${name} after close`, read, []);
    }
  }
  await abuseConstructor(findings, spec.label, handle);
}

/** Methods and accessors of the handle's prototype called on objects that are not handles. */
async function abuseReceivers(
  findings: Findings,
  spec: HandleSpec,
  handle: object,
  foreign: readonly object[],
): Promise<void> {
  const prototype: unknown = Object.getPrototypeOf(handle);
  assert.ok(prototype !== null && typeof prototype === 'object');
  const receivers: unknown[] = [
    {},
    Object.create(prototype as object),
    1,
    'string',
    null,
    undefined,
    // Only instances of other classes: another instance of this one is a valid receiver.
    ...foreign.filter((object) => Object.getPrototypeOf(object) !== prototype),
  ];
  for (const name of [...Object.keys(spec.methods), 'close']) {
    const fn: unknown = Reflect.get(prototype as object, name);
    if (typeof fn !== 'function') {
      findings.add(`${spec.label}.${name} is not on the prototype`);
      continue;
    }
    for (const receiver of receivers) {
      const args = (spec.methods[name]?.args ?? []).map((arg) => arg.valid());
      await expectRefused(
        findings,
        `${spec.label}.${name}.call(${describeValue(receiver)})`,
        { call: () => (fn as (...a: unknown[]) => unknown).apply(receiver, args) },
        [],
        (error) => error instanceof TypeError,
      );
    }
  }
  for (const name of Object.keys(spec.getters)) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype as object, name);
    const getter = descriptor?.get;
    if (getter === undefined) {
      findings.add(`${spec.label}.${name} is not an accessor on the prototype`);
      continue;
    }
    for (const receiver of receivers) {
      await expectRefused(
        findings,
        `${spec.label}.${name} getter on ${describeValue(receiver)}`,
        { call: () => getter.call(receiver) },
        [],
        (error) => error instanceof TypeError,
      );
    }
  }
}

/** The class behind a handle: new-ing it, calling it, subclassing it must all be refused. */
async function abuseConstructor(findings: Findings, label: string, handle: object): Promise<void> {
  const ctor: unknown = Reflect.get(handle, 'constructor');
  if (typeof ctor !== 'function') return;
  const Ctor = ctor as new (...args: unknown[]) => object;
  const f = (): void => undefined;
  const attempts: [string, () => unknown][] = [
    ['new C()', () => new Ctor()],
    ['new C(f, f)', () => new Ctor(f, f)],
    ['new C(f)', () => new Ctor(f)],
    ['new C(f, f, f, f)', () => new Ctor(f, f, f, f)],
    ['new C(1, 2)', () => new Ctor(1, 2)],
    ['C(f, f) without new', () => (ctor as (...a: unknown[]) => unknown)(f, f)],
    ['Reflect.construct(C, [f, f], Object)', () => Reflect.construct(Ctor, [f, f], Object)],
    [
      'new (class extends C)(f, f)',
      () => {
        class Sub extends Ctor {}
        return new Sub(f, f);
      },
    ],
  ];
  for (const [what, attempt] of attempts) {
    await expectRefused(
      findings,
      `${label}: ${what}`,
      { call: attempt },
      [],
      (error) => error instanceof TypeError,
    );
  }
}

// ---- The process after the abuse ----

/** The fds open in this process, by number, with what they point at. */
export function openFds(): Map<number, string> {
  const fds = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      fds.set(Number(name), fs.readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the fd readdir itself used, gone by now
    }
  }
  return fds;
}

let collect: (() => void) | undefined;

/** A full garbage collection (handles that were dropped without close() are finalized). */
export async function collectGarbage(): Promise<void> {
  if (collect === undefined) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Asserts that no fd was leaked since `before` (after a garbage collection and a few turns of the
 * loop, so handles closed in finalizers and uv_close callbacks are done).
 */
export async function assertNoFdLeak(before: Map<number, string>, what: string): Promise<void> {
  await collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const after = openFds();
  const leaked = [...after].filter(([fd, target]) => before.get(fd) !== target);
  assert.deepEqual(
    leaked.map(([fd, target]) => `${fd} -> ${target}`),
    [],
    `${what}: fds opened and not closed`,
  );
}

/** The process still works: it allocates, reads a file, runs a timer and a child-free promise. */
export async function assertProcessUsable(): Promise<void> {
  const text = fs.readFileSync('/proc/self/status', 'latin1');
  assert.match(text, /^Pid:\s+\d+/m);
  const big = Buffer.alloc(8 << 20, 1);
  assert.equal(big[big.length - 1], 1);
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(await Promise.resolve(42), 42);
}

/** A fresh directory under the OS temp dir, removed by the caller. */
export function scratchDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `triggerd-abuse-${label}-`));
}

export const isRoot = process.getuid?.() === 0;
export const rootSkip = isRoot ? undefined : `needs root (running as uid ${process.getuid?.() ?? '?'})`;
