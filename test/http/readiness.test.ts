// /readyz as a load balancer sees it: a busy pool is ready, a shutting-down service is not.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { build } from '../helper.ts';

test(
  'a saturated pool whose queries complete is ready at once; ' +
    'one whose only connection is stuck for over 1 s is not',
  async (t) => {
    const { app } = await build(t, { settings: { POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0' } });
    assert.equal((await app.inject({ url: '/todos/' })).statusCode, 200);
    // Long enough that the probe below, sent after a second and waiting up to another, still finds
    // the connection taken on a slow machine.
    const holding = app.inject({ url: '/sleep/postgres/?seconds=4' });
    await delay(200);
    // The pool's one connection is taken, yet a query completed within the last second: ready, and
    // the pool says it was not asked for a connection (none handed out, nobody waiting).
    const acquired = app.store.stats().acquired;
    const busy = await app.inject({ url: '/readyz' });
    assert.equal(busy.statusCode, 200, busy.body);
    assert.deepEqual(
      [app.store.stats().acquired, app.store.stats().waiting],
      [acquired, 0],
      'answered without a checkout'
    );
    // Nothing has completed for over a second: it asks the pool, and gives up after 1 s.
    await delay(1000);
    const stuck = await app.inject({ url: '/readyz' });
    assert.equal(stuck.statusCode, 503);
    assert.deepEqual(stuck.json(), {
      status: 'not ready',
      reason: 'no database connection or answer within 1000 ms',
    });
    assert.equal((await holding).statusCode, 200);
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
  }
);

test('once shutdown begins, /readyz is 503 "shutting down" while the other routes still answer', async (t) => {
  const { app } = await build(t);
  assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
  app.lifecycle.draining = true;
  const ready = await app.inject({ url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(ready.json(), { status: 'not ready', reason: 'shutting down' });
  assert.equal((await app.inject({ url: '/todos/' })).statusCode, 200);
});

test(
  'a database that takes connections but never answers: the app still starts once the warm-up gives up ' +
    "(POOL_TIMEOUT, past Fastify's 10 s default), and is not ready",
  async (t) => {
    const held: Socket[] = [];
    const silent = createServer((socket) => {
      held.push(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of held) socket.destroy();
      silent.close();
    });
    const { port } = silent.address() as { port: number };
    const started = Date.now();
    // Each connect is bounded by CONNECT_TIMEOUT too (10 s by default): both past Fastify's 10 s.
    const { app } = await build(t, {
      url: `postgresql://todos:unused@127.0.0.1:${port}/todos`,
      settings: { POOL_TIMEOUT: '11', CONNECT_TIMEOUT: '11' },
    });
    assert.ok(Date.now() - started >= 10_500, 'the warm-up waited for POOL_TIMEOUT and CONNECT_TIMEOUT');
    assert.ok(held.length > 0, 'the pool tried the silent server');
    const ready = await app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503, ready.body);
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  }
);
