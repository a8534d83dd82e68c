// The daemon's logger: pino, structured JSON lines; pretty (pino-pretty as a plain stream, no
// worker thread) when stdout is a terminal so a person running it in the foreground can read it.
import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Force pretty or JSON output; defaults to pretty exactly when stdout is a TTY. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
  /** Called for every record that names a unit (a `unit` field or binding), e.g. to keep per-unit rings. */
  onUnitRecord?: (record: {
    time: number;
    level: number;
    unit: string;
    msg: string;
    fields: Record<string, unknown>;
  }) => void;
}

/** A child logger's `unit` binding: bindings() parses the child's JSON bindings at every call. */
const boundUnits = new WeakMap<Logger, unknown>();

function boundUnit(logger: Logger): unknown {
  if (boundUnits.has(logger)) return boundUnits.get(logger);
  const unit = (logger.bindings() as Record<string, unknown>).unit;
  boundUnits.set(logger, unit);
  return unit;
}

function unitHook(onUnitRecord: NonNullable<LoggerOptions['onUnitRecord']>): pino.LoggerOptions['hooks'] {
  return {
    logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void, level: number) {
      const first = args[0];
      const fields = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
      const unit = fields.unit ?? boundUnit(this);
      if (typeof unit === 'string') {
        const msg = typeof first === 'string' ? first : typeof args[1] === 'string' ? args[1] : '';
        onUnitRecord({ time: Date.now(), level, unit, msg, fields });
      }
      method.apply(this, args);
    },
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  // pino refuses `hooks: undefined`; leave the key out when there is no hook.
  const base: pino.LoggerOptions = { level, base: undefined };
  if (options.onUnitRecord !== undefined) base.hooks = unitHook(options.onUnitRecord);
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  if (usePretty) {
    // Loaded only for a terminal: it costs a few MB of RSS a JSON-logging daemon does not need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(
      base,
      pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }),
    );
  }
  return pino(base, options.destination ?? pino.destination({ fd: 1, sync: false }));
}

/**
 * Rate-limit a repeated warning: at most `burst` lines per `intervalMs`, then one summary of how
 * many were suppressed. Bad input from outside must never be able to flood the log.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns the number of suppressed messages to report with this one, or -1 to stay silent. */
  admit(): number {
    const t = this.now();
    if (t - this.windowStart >= this.intervalMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow < this.burst) {
      this.inWindow++;
      const s = this.suppressed;
      this.suppressed = 0;
      return s;
    }
    this.suppressed++;
    return -1;
  }
}
