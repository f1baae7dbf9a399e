// /readyz as a load balancer sees it: a busy pool is ready, a shutting-down service is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { build } from '../helper.ts';

test('a saturated pool whose queries complete is ready at once; one whose only connection is stuck for over 1 s is not', async (t) => {
  const { app } = await build(t, { settings: { POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0' } });
  assert.equal((await app.inject({ url: '/todos/' })).statusCode, 200);
  const holding = app.inject({ url: '/sleep/postgres/?seconds=2.5' });
  await delay(200);
  // The pool's one connection is taken, yet a query completed within the last second.
  const t0 = performance.now();
  const busy = await app.inject({ url: '/readyz' });
  assert.equal(busy.statusCode, 200, busy.body);
  assert.ok(performance.now() - t0 < 200, `answered in ${(performance.now() - t0).toFixed(0)} ms, without queueing for the connection`);
  // Nothing has completed for over a second: it asks the pool, and gives up after 1 s.
  await delay(1000);
  const stuck = await app.inject({ url: '/readyz' });
  assert.equal(stuck.statusCode, 503);
  assert.deepEqual(stuck.json(), { status: 'not ready', reason: 'no database connection within 1000 ms' });
  assert.equal((await holding).statusCode, 200);
  assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
});

test('once shutdown begins, /readyz is 503 "shutting down" while the other routes still answer', async (t) => {
  const { app } = await build(t);
  assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
  app.lifecycle.draining = true;
  const ready = await app.inject({ url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(ready.json(), { status: 'not ready', reason: 'shutting down' });
  assert.equal((await app.inject({ url: '/todos/' })).statusCode, 200);
});
