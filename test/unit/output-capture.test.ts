import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { captureLines, type CapturedLine } from '../../src/exec/output-capture';

test('lines are split, CRs dropped, long lines cut at the limit, the tail flushed at EOF', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-capture-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
  const lines: CapturedLine[] = [];
  const ended = new Promise<void>((resolve) => captureLines(readFd, (l) => lines.push(l), resolve, 10));
  fs.writeSync(writeFd, 'one\ntwo\r\nabcdefghijklmnopq\npar');
  fs.writeSync(writeFd, 'tial');
  fs.closeSync(writeFd);
  await ended;
  assert.deepEqual(lines, [
    { line: 'one', truncated: false },
    { line: 'two', truncated: false },
    { line: 'abcdefghij', truncated: true },
    { line: 'klmnopq', truncated: false },
    { line: 'partial', truncated: false },
  ]);
});
