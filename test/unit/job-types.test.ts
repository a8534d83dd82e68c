import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MERGE_TABLE,
  MERGEABLE_JOB_TYPES,
  collapseJobType,
  compareJobOrder,
  isConflicting,
  isRedundant,
  isSuperset,
  mergeAndCollapse,
  mergeJobTypes,
  type CollapsedJobType,
  type JobType,
  type MergeableJobType,
} from '../../src/core/job-types';
import type { ActiveState } from '../../src/units/unit-type';

const T = MERGEABLE_JOB_TYPES;
const STATES: ActiveState[] = ['inactive', 'activating', 'active', 'deactivating', 'reloading', 'failed'];

test('merge table: frozen, and defined for every pair', () => {
  assert.ok(Object.isFrozen(MERGE_TABLE));
  for (const a of T) {
    assert.ok(Object.isFrozen(MERGE_TABLE[a]), `row ${a} frozen`);
    for (const b of T) assert.notEqual(MERGE_TABLE[a][b], undefined, `${a}+${b} defined`);
  }
  assert.throws(() => {
    (MERGE_TABLE.start as Record<string, unknown>).stop = 'start';
  }, TypeError);
});

test('merge table laws', () => {
  for (const a of T) {
    assert.equal(mergeJobTypes(a, a), a, `idempotent: ${a}`);
    assert.equal(mergeJobTypes(a, 'nop'), a, `nop is the identity: ${a}`);
    for (const b of T) {
      assert.equal(mergeJobTypes(a, b), mergeJobTypes(b, a), `commutative: ${a},${b}`);
      assert.equal(isSuperset(a, b), mergeJobTypes(a, b) === a, `superset agrees with merge: ${a},${b}`);
      const m = mergeJobTypes(a, b);
      if (m !== null) {
        assert.ok(isSuperset(m, a) && isSuperset(m, b), `merge is an upper bound: ${a},${b}`);
      }
      for (const c of T) {
        // null (conflict) counts as a value here: a conflict on one side is a conflict on the other.
        const left = ((x) => (x === null ? null : mergeJobTypes(x, c)))(mergeJobTypes(a, b));
        const right = ((x) => (x === null ? null : mergeJobTypes(a, x)))(mergeJobTypes(b, c));
        assert.equal(left, right, `associative: ${a},${b},${c}`);
      }
    }
  }
});

test('stop conflicts with everything but stop and nop', () => {
  for (const t of T) {
    assert.equal(isConflicting('stop', t), t !== 'stop' && t !== 'nop', `stop vs ${t}`);
  }
  assert.ok(isConflicting('start', 'stop'));
  assert.ok(isConflicting('restart', 'stop'));
  // Only stop conflicts at all.
  for (const a of T)
    for (const b of T) if (a !== 'stop' && b !== 'stop') assert.ok(!isConflicting(a, b), `${a},${b}`);
});

test("merge table: systemd's entries", () => {
  const rows: [MergeableJobType, MergeableJobType, MergeableJobType | null][] = [
    ['start', 'verify-active', 'start'],
    ['start', 'stop', null],
    ['verify-active', 'stop', null],
    ['reload', 'start', 'reload-or-start'],
    ['reload', 'verify-active', 'reload'],
    ['reload', 'stop', null],
    ['restart', 'start', 'restart'],
    ['restart', 'verify-active', 'restart'],
    ['restart', 'stop', null],
    ['restart', 'reload', 'restart'],
  ];
  for (const [a, b, want] of rows) assert.equal(mergeJobTypes(a, b), want, `${a}+${b}`);
});

test('collapse against the unit state', () => {
  const rows: [JobType, ActiveState, CollapsedJobType][] = [
    ['try-restart', 'inactive', 'nop'],
    ['try-restart', 'failed', 'nop'],
    ['try-restart', 'active', 'restart'],
    ['try-restart', 'activating', 'restart'],
    ['try-restart', 'deactivating', 'restart'],
    ['try-reload', 'active', 'reload'],
    ['try-reload', 'reloading', 'reload'],
    ['try-reload', 'deactivating', 'nop'],
    ['try-reload', 'inactive', 'nop'],
    ['reload-or-start', 'inactive', 'start'],
    ['reload-or-start', 'deactivating', 'start'],
    ['reload-or-start', 'activating', 'reload'],
    ['reload-or-start', 'active', 'reload'],
    ['start', 'active', 'start'],
    ['stop', 'inactive', 'stop'],
  ];
  for (const [type, state, want] of rows)
    assert.equal(collapseJobType(type, state), want, `${type} on ${state}`);
});

test('collapsing commutes with merging', () => {
  for (const s of STATES) {
    for (const a of T) {
      for (const b of T) {
        const m = mergeJobTypes(a, b);
        const direct = m === null ? null : collapseJobType(m, s);
        const stepwise = mergeAndCollapse(collapseJobType(a, s), collapseJobType(b, s), s);
        assert.equal(stepwise, direct, `${a},${b} on ${s}`);
      }
    }
  }
});

test('redundant jobs', () => {
  const rows: [CollapsedJobType, ActiveState, boolean][] = [
    ['start', 'active', true],
    ['start', 'reloading', true],
    ['start', 'activating', false],
    ['start', 'inactive', false],
    ['verify-active', 'active', true],
    ['verify-active', 'inactive', false],
    ['stop', 'inactive', true],
    ['stop', 'failed', true],
    ['stop', 'deactivating', false],
    ['stop', 'active', false],
    ['reload', 'reloading', true],
    ['reload', 'active', false],
    ['restart', 'active', false],
    ['restart', 'inactive', false],
    ['nop', 'active', true],
  ];
  for (const [type, state, want] of rows) assert.equal(isRedundant(type, state), want, `${type} on ${state}`);
});

test('job order: start follows Before=, stops reverse it, stops go before starts', () => {
  const job = (type: CollapsedJobType, ignoreOrder = false) => ({ type, ignoreOrder });
  // a's unit is Before b's unit.
  const rows: [CollapsedJobType, CollapsedJobType, -1 | 0 | 1][] = [
    ['start', 'start', -1],
    ['stop', 'stop', 1],
    ['start', 'stop', 1],
    ['stop', 'start', -1],
    ['restart', 'restart', 1],
    ['reload', 'start', -1],
    ['verify-active', 'start', -1],
    ['nop', 'start', 0],
    ['start', 'nop', 0],
  ];
  for (const [a, b, want] of rows) {
    assert.equal(compareJobOrder(job(a), job(b), 'before'), want, `${a} before ${b}`);
    // The same pair seen from b's side: b's unit is After a's unit.
    assert.equal(compareJobOrder(job(b), job(a), 'after'), -want || 0, `${b} after ${a}`);
  }
  assert.equal(compareJobOrder(job('start', true), job('start'), 'before'), 0);
});
