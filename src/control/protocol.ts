// The control protocol: one JSON object per line in each direction. Pure: framing with a hard line
// limit, and validation of requests against a table of methods, so the server only ever sees
// well-typed requests and every malformed line gets an error reply naming what was wrong.

/** Longest request line accepted; a longer one is discarded up to its newline and answered with an error. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export type ErrorCode =
  | 'ERR_BAD_JSON'
  | 'ERR_BAD_REQUEST'
  | 'ERR_UNKNOWN_METHOD'
  | 'ERR_BAD_PARAMS'
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_PERMISSION'
  | 'ERR_NO_SUCH_UNIT'
  | 'ERR_NO_SUCH_DEVICE'
  | 'ERR_TIMEOUT'
  | 'ERR_JOB_FAILED'
  | 'ERR_JOB_REFUSED'
  | 'ERR_INTERNAL';

export interface ControlError {
  code: ErrorCode;
  message: string;
}

type ParamKind = 'string' | 'string?' | 'number?' | 'boolean?' | 'string[]' | 'string[]?';

interface MethodSpec {
  /** Changes daemon or system state: root or the control group only. */
  mutating: boolean;
  params: Readonly<Record<string, ParamKind>>;
}

/** Every method the daemon answers, with its parameters. */
export const METHODS = {
  ping: { mutating: false, params: {} },
  status: { mutating: false, params: {} },
  devices: { mutating: false, params: { subsystem: 'string?' } },
  'device-info': { mutating: false, params: { name: 'string' } },
  'test-rules': { mutating: false, params: { name: 'string', action: 'string?' } },
  'list-units': { mutating: false, params: { type: 'string?', state: 'string?' } },
  'list-unit-files': { mutating: false, params: {} },
  'list-jobs': { mutating: false, params: {} },
  'list-timers': { mutating: false, params: { all: 'boolean?' } },
  show: { mutating: false, params: { name: 'string' } },
  'unit-status': { mutating: false, params: { name: 'string', lines: 'number?' } },
  cat: { mutating: false, params: { name: 'string' } },
  security: { mutating: false, params: { name: 'string?' } },
  logs: { mutating: false, params: { name: 'string', lines: 'number?', follow: 'boolean?' } },
  'is-active': { mutating: false, params: { names: 'string[]' } },
  'is-failed': { mutating: false, params: { names: 'string[]' } },
  why: { mutating: false, params: { name: 'string' } },
  monitor: { mutating: false, params: {} },
  settle: { mutating: false, params: { timeoutMs: 'number?' } },
  trigger: { mutating: true, params: { subsystems: 'string[]?', action: 'string?', dryRun: 'boolean?' } },
  start: { mutating: true, params: { names: 'string[]', mode: 'string?', noBlock: 'boolean?' } },
  stop: { mutating: true, params: { names: 'string[]', mode: 'string?', noBlock: 'boolean?' } },
  restart: { mutating: true, params: { names: 'string[]', mode: 'string?', noBlock: 'boolean?' } },
  'try-restart': { mutating: true, params: { names: 'string[]', mode: 'string?', noBlock: 'boolean?' } },
  reload: { mutating: true, params: { names: 'string[]', mode: 'string?', noBlock: 'boolean?' } },
  'reset-failed': { mutating: true, params: { names: 'string[]?' } },
  enable: { mutating: true, params: { names: 'string[]', now: 'boolean?' } },
  disable: { mutating: true, params: { names: 'string[]', now: 'boolean?' } },
  'daemon-reload': { mutating: true, params: {} },
  'daemon-reexec': { mutating: true, params: {} },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export type RequestId = number | string | null;

export interface ControlRequest {
  id: RequestId;
  method: MethodName;
  params: Record<string, unknown>;
}

export type ControlResponse =
  | { id: RequestId; ok: true; result: unknown }
  | { id: RequestId; ok: false; error: ControlError }
  /** One item of a streaming reply (monitor). */
  | { id: RequestId; event: unknown };

export type ParsedRequest =
  { ok: true; request: ControlRequest } | { ok: false; id: RequestId; error: ControlError };

export function isMutating(method: MethodName): boolean {
  return METHODS[method].mutating;
}

function fail(id: RequestId, code: ErrorCode, message: string): ParsedRequest {
  return { ok: false, id, error: { code, message } };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function matches(kind: ParamKind, v: unknown): boolean {
  if (v === undefined) return kind.endsWith('?');
  switch (kind) {
    case 'string':
    case 'string?':
      return typeof v === 'string';
    case 'number?':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean?':
      return typeof v === 'boolean';
    case 'string[]':
    case 'string[]?':
      return Array.isArray(v) && v.length <= 4096 && v.every((s) => typeof s === 'string');
  }
}

/** Validate one request line. Never throws. */
export function parseRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return fail(null, 'ERR_BAD_JSON', `request is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(value)) return fail(null, 'ERR_BAD_REQUEST', 'request must be a JSON object');
  const rawId = value.id;
  if (rawId !== undefined && rawId !== null && typeof rawId !== 'number' && typeof rawId !== 'string') {
    return fail(null, 'ERR_BAD_REQUEST', '"id" must be a number or a string');
  }
  const id: RequestId = rawId ?? null;
  const method = value.method;
  if (typeof method !== 'string') return fail(id, 'ERR_BAD_REQUEST', '"method" must be a string');
  if (!Object.prototype.hasOwnProperty.call(METHODS, method)) {
    return fail(id, 'ERR_UNKNOWN_METHOD', `unknown method ${JSON.stringify(method.slice(0, 64))}`);
  }
  const name = method as MethodName;
  const params = value.params ?? {};
  if (!isRecord(params)) return fail(id, 'ERR_BAD_PARAMS', '"params" must be an object');
  const spec: Readonly<Record<string, ParamKind>> = METHODS[name].params;
  for (const key of Object.keys(params)) {
    if (!Object.prototype.hasOwnProperty.call(spec, key)) {
      return fail(id, 'ERR_BAD_PARAMS', `${name}: unknown parameter ${JSON.stringify(key.slice(0, 64))}`);
    }
  }
  for (const [key, kind] of Object.entries(spec)) {
    if (!matches(kind, params[key])) {
      return fail(id, 'ERR_BAD_PARAMS', `${name}: parameter "${key}" must be ${kind.replace('?', '')}`);
    }
  }
  return { ok: true, request: { id, method: name, params } };
}

export function encodeResponse(response: ControlResponse): string {
  return JSON.stringify(response) + '\n';
}

export type DecodedLine = { kind: 'line'; line: string } | { kind: 'too-long'; bytes: number };

/**
 * Splits a byte stream into lines with a hard limit. A line over the limit is reported once, as
 * soon as it passes the limit (a peer that never sends the newline still gets an answer), and its
 * remaining bytes are skipped up to the next newline, so the connection stays usable. Memory held
 * is never more than the limit.
 */
export class LineDecoder {
  private parts: Buffer[] = [];
  private length = 0;
  private skipping = false;

  constructor(private readonly maxBytes = MAX_REQUEST_BYTES) {}

  push(chunk: Buffer): DecodedLine[] {
    const out: DecodedLine[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.skipping && this.length + piece.length > this.maxBytes) {
        out.push({ kind: 'too-long', bytes: this.length + piece.length });
        this.skipping = true;
        this.parts = [];
        this.length = 0;
      } else if (!this.skipping && piece.length > 0) {
        this.parts.push(piece);
        this.length += piece.length;
      }
      if (nl === -1) break;
      if (this.skipping) {
        this.skipping = false;
      } else {
        const line = Buffer.concat(this.parts, this.length).toString('utf8');
        this.parts = [];
        this.length = 0;
        if (line.trim().length > 0) out.push({ kind: 'line', line });
      }
      start = nl + 1;
    }
    return out;
  }

  /** Bytes of an incomplete line held (never more than the limit). */
  get pending(): number {
    return this.length;
  }
}
