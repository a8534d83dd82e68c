// A silent logger for pure tests, and one that records lines for assertions.
import pino from 'pino';
import { Writable } from 'node:stream';
import type { Logger } from '../../src/util/logger';

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export interface RecordingLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
}

export function recordingLogger(): RecordingLogger {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}
