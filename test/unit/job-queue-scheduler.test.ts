// The daemon's tick scheduler: a microtask right after the handler that asked for it, never
// inside schedule(); a tick that keeps scheduling the next one lets the event loop turn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicrotaskScheduler } from '../../src/core/job-queue';

test('scheduler: never runs inside schedule(), runs before the loop turns', async () => {
  const s = new MicrotaskScheduler();
  const order: string[] = [];
  setImmediate(() => order.push('immediate'));
  s.schedule(() => order.push('tick'));
  order.push('after schedule');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['after schedule', 'tick', 'immediate']);
});

test('scheduler: a tick that keeps scheduling ticks does not starve the loop', async () => {
  const s = new MicrotaskScheduler();
  let ticks = 0;
  let loopTurned = false;
  let ticksBeforeTurn = -1;
  setImmediate(() => {
    loopTurned = true;
    ticksBeforeTurn = ticks;
  });
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      ticks++;
      if (ticks < 100) s.schedule(tick);
      else resolve();
    };
    s.schedule(tick);
  });
  assert.ok(loopTurned, 'the loop turned while ticks kept coming');
  assert.ok(ticksBeforeTurn > 0 && ticksBeforeTurn < 100, `loop turned after ${ticksBeforeTurn} ticks`);
  // Once the loop has turned, the next tick is a microtask again.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const order: string[] = [];
  setImmediate(() => order.push('immediate'));
  s.schedule(() => order.push('tick'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['tick', 'immediate']);
});
