import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/util/logger';
import { UnitLogRings } from '../../src/core/unit-log';

test('records that name a unit land in its ring; the ring is bounded', () => {
  const rings = new UnitLogRings(3, 2);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const logger = createLogger({ pretty: false, destination: sink, onUnitRecord: (r) => rings.append(r) });
  logger.info({ unit: 'a.service' }, 'one');
  logger.child({ unit: 'a.service' }).warn('two');
  logger.info('no unit');
  for (let i = 0; i < 5; i++) logger.info({ unit: 'b.service', stream: 'stdout' }, `line ${i}`);
  assert.deepEqual(
    rings.tail('a.service', 10).map((r) => r.msg),
    ['one', 'two'],
  );
  assert.deepEqual(
    rings.tail('b.service', 10).map((r) => r.msg),
    ['line 2', 'line 3', 'line 4'],
  );
  assert.deepEqual(
    rings.tail('b.service', 1).map((r) => r.msg),
    ['line 4'],
  );
  logger.info({ unit: 'c.service' }, 'third unit evicts the least recently written');
  assert.deepEqual(rings.tail('a.service', 10), []);
});
