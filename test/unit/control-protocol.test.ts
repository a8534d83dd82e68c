import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LineDecoder,
  METHODS,
  parseRequest,
  MAX_REQUEST_BYTES,
  type ErrorCode,
} from '../../src/control/protocol';
import { Prng } from '../helpers/prng';

test('parseRequest: table of good and bad requests', () => {
  const cases: { line: string; ok?: true; code?: ErrorCode }[] = [
    { line: '{"id":1,"method":"ping"}', ok: true },
    { line: '{"id":"a","method":"devices","params":{"subsystem":"block"}}', ok: true },
    { line: '{"method":"trigger","params":{"subsystems":["block"],"action":"change"}}', ok: true },
    { line: 'not json', code: 'ERR_BAD_JSON' },
    { line: '{"id":1,', code: 'ERR_BAD_JSON' },
    { line: '[1,2]', code: 'ERR_BAD_REQUEST' },
    { line: '"ping"', code: 'ERR_BAD_REQUEST' },
    { line: 'null', code: 'ERR_BAD_REQUEST' },
    { line: '{"id":{},"method":"ping"}', code: 'ERR_BAD_REQUEST' },
    { line: '{"id":1}', code: 'ERR_BAD_REQUEST' },
    { line: '{"id":1,"method":42}', code: 'ERR_BAD_REQUEST' },
    { line: '{"id":1,"method":"format-disk"}', code: 'ERR_UNKNOWN_METHOD' },
    { line: '{"id":1,"method":"__proto__"}', code: 'ERR_UNKNOWN_METHOD' },
    { line: '{"id":1,"method":"toString"}', code: 'ERR_UNKNOWN_METHOD' },
    { line: '{"id":1,"method":"devices","params":[]}', code: 'ERR_BAD_PARAMS' },
    { line: '{"id":1,"method":"devices","params":{"subsystem":7}}', code: 'ERR_BAD_PARAMS' },
    { line: '{"id":1,"method":"devices","params":{"bogus":1}}', code: 'ERR_BAD_PARAMS' },
    { line: '{"id":1,"method":"show","params":{}}', code: 'ERR_BAD_PARAMS' },
    { line: '{"id":1,"method":"settle","params":{"timeoutMs":"soon"}}', code: 'ERR_BAD_PARAMS' },
    { line: '{"id":1,"method":"trigger","params":{"subsystems":["a",1]}}', code: 'ERR_BAD_PARAMS' },
  ];
  for (const c of cases) {
    const r = parseRequest(c.line);
    if (c.ok) assert.ok(r.ok, c.line);
    else {
      assert.equal(r.ok, false, c.line);
      if (!r.ok) assert.equal(r.error.code, c.code, c.line);
    }
  }
});

test('every method in the table is reachable and mutating ones are marked', () => {
  assert.deepEqual(
    Object.entries(METHODS)
      .filter(([, s]) => s.mutating)
      .map(([m]) => m)
      .sort(),
    [
      'daemon-reexec',
      'daemon-reload',
      'disable',
      'enable',
      'reload',
      'reset-failed',
      'restart',
      'start',
      'stop',
      'trigger',
      'try-restart',
    ],
  );
});

test('LineDecoder: lines split across chunks, several per chunk, blank lines ignored', () => {
  const d = new LineDecoder();
  assert.deepEqual(d.push(Buffer.from('{"a"')), []);
  assert.deepEqual(d.push(Buffer.from(':1}\n\n{"b":2}\n{"c"')), [
    { kind: 'line', line: '{"a":1}' },
    { kind: 'line', line: '{"b":2}' },
  ]);
  assert.equal(d.pending, 4);
});

test('LineDecoder: a 10 MB line is reported once, skipped, and the next line still works', () => {
  const d = new LineDecoder();
  const out = [];
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) out.push(...d.push(chunk));
  assert.equal(out.length, 1);
  assert.equal(out[0]?.kind, 'too-long');
  assert.ok(d.pending <= MAX_REQUEST_BYTES);
  assert.deepEqual(d.push(Buffer.from('tail\n{"id":1}\n')), [{ kind: 'line', line: '{"id":1}' }]);
});

test('fuzz: 100,000 generated inputs through LineDecoder and parseRequest never throw', () => {
  const seed = 0x7219;
  const rng = new Prng(seed);
  const valid = [
    '{"id":1,"method":"ping"}',
    '{"id":2,"method":"devices","params":{"subsystem":"block"}}',
    '{"id":3,"method":"why","params":{"name":"dev-loop0.device"}}',
    '{"id":4,"method":"trigger","params":{"subsystems":["net"],"dryRun":true}}',
  ];
  const decoder = new LineDecoder(4096);
  let lines = 0;
  let accepted = 0;
  for (let i = 0; i < 100_000; i++) {
    let input: string;
    const kind = rng.int(4);
    if (kind === 0) input = rng.bytes(rng.int(200)).toString('latin1');
    else {
      const base = rng.pick(valid);
      const chars = base.split('');
      const edits = 1 + rng.int(4);
      for (let k = 0; k < edits; k++) {
        const at = rng.int(chars.length + 1);
        const op = rng.int(3);
        const junk = rng.pick([
          '{',
          '}',
          '"',
          ':',
          ',',
          '[',
          ']',
          'null',
          '1e999',
          '\\u0000',
          '\n',
          'x',
          '-1',
          'true',
        ]);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, junk);
        else chars[at] = junk;
      }
      input = kind === 3 ? chars.join('').repeat(1 + rng.int(3)) : chars.join('');
    }
    const r = parseRequest(input);
    assert.equal(typeof r.ok, 'boolean', `seed ${seed} case ${i}`);
    if (r.ok) {
      accepted++;
      assert.ok(Object.prototype.hasOwnProperty.call(METHODS, r.request.method));
    } else assert.match(r.error.code, /^ERR_/);
    for (const d of decoder.push(Buffer.from(input + (rng.int(2) ? '\n' : ''), 'latin1'))) {
      lines++;
      if (d.kind === 'line') parseRequest(d.line);
    }
    assert.ok(decoder.pending <= 4096);
  }
  assert.ok(lines > 10_000, `decoder produced ${lines} lines`);
  assert.ok(accepted > 0, 'some mutated requests are still valid');
});
