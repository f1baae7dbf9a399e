// The original's routes and the operators' routes, through app.inject().
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, freshDatabase, until } from '../helper.ts';

type Todos = { todos: { id: number; title: string; done: boolean; priority: number }[] };

describe('the sleep routes and /todos/', () => {
  test('every route returns the 50 seeded todos, ordered by id, with or without the trailing slash', async (t) => {
    const { app } = await build(t, { settings: { SLEEP_SECONDS: '0' } });
    for (const url of [
      '/todos/',
      '/todos',
      '/sleep/node/',
      '/sleep/node',
      '/sleep/python/',
      '/sleep/postgres/',
      '/sleep/postgres?seconds=0',
    ]) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, /^application\/json/);
      const { todos } = res.json<Todos>();
      assert.equal(todos.length, 50, url);
      assert.deepEqual(todos[0], { id: 1, title: 'Todo 0', done: true, priority: 0 });
      assert.deepEqual(todos[49], { id: 50, title: 'Todo 49', done: false, priority: 4 });
      assert.deepEqual(
        todos.map((x) => x.id),
        Array.from({ length: 50 }, (_, i) => i + 1)
      );
    }
  });

  test('the wait is SLEEP_SECONDS (here 1 s, not the default 5), and ?seconds= overrides it', async (t) => {
    const { app } = await build(t, { settings: { SLEEP_SECONDS: '1' } });
    for (const url of ['/sleep/node/', '/sleep/postgres/']) {
      const t0 = performance.now();
      assert.equal((await app.inject({ url })).statusCode, 200);
      const ms = performance.now() - t0;
      assert.ok(ms >= 990 && ms < 4000, `${url} took ${Math.round(ms)} ms: SLEEP_SECONDS=1, not the default 5`);
      const t1 = performance.now();
      assert.equal((await app.inject({ url: `${url}?seconds=0` })).statusCode, 200);
      assert.ok(performance.now() - t1 < 900, `${url}?seconds=0 took ${Math.round(performance.now() - t1)} ms`);
    }
  });

  test(
    'the pool waits in the database, not in the app: /sleep/postgres/ holds a connection for the whole sleep',
    async (t) => {
      const { app } = await build(t, { settings: { SLEEP_SECONDS: '1' } });
      const sleeping = app.inject({ url: '/sleep/postgres/' });
      await until('the sleep holding a connection', () => app.store.stats().inUse === 1, 900);
      await sleeping;
      assert.equal(app.store.stats().inUse, 0);
    }
  );
});

describe("operators' routes", () => {
  test('/healthz, /readyz, /pool', async (t) => {
    const { app } = await build(t);
    assert.deepEqual((await app.inject({ url: '/healthz' })).json(), { status: 'ok' });
    assert.deepEqual((await app.inject({ url: '/readyz' })).json(), { status: 'ready' });
    const pool = (await app.inject({ url: '/pool' })).json();
    const closed = {
      broken: 0,
      reset: 0,
      busy: 0,
      deadline: 0,
      cancel: 0,
      healthCheck: 0,
      invalidated: 0,
      prePing: 0,
    };
    const counters = {
      acquired: pool.acquired,
      queued: 0,
      timeouts: 0,
      rejected: 0,
      aborted: 0,
      connectErrors: 0,
      cancels: 0,
      recycled: 0,
    };
    const recovery = { resets: 0, queryTimeouts: 0, healthChecks: 0, closed, refillBackoffMs: 0 };
    const gauges = {
      kind: 'queue',
      size: 5,
      maxOverflow: 10,
      total: 5,
      idle: 5,
      inUse: 0,
      overflowInUse: 0,
      waiting: 0,
      expired: 0,
    };
    const totals = { waitMsTotal: pool.waitMsTotal, useMsTotal: pool.useMsTotal };
    assert.deepEqual(pool, { ...gauges, ...counters, ...recovery, ...totals });
    assert.ok(pool.waitMsTotal >= 0 && pool.useMsTotal > 0, 'the readiness probe held a connection');
    assert.equal(pool.acquired, 1, "the readiness probe: the pool's own warming is not counted");
  });

  test('/readyz is 503 within a second when no connection is free', async (t) => {
    const db = await freshDatabase({ seeded: true });
    const { app } = await build(t, { db, settings: { POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0' } });
    // The sleep outlasts the probe's 1 s wait with room: a probe that waited for it would be 200.
    const busy = app.inject({ url: '/sleep/postgres/?seconds=4' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const t0 = performance.now();
    const ready = await app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), {
      status: 'not ready',
      reason: 'no database connection or answer within 1000 ms',
    });
    assert.ok(performance.now() - t0 < 3500, 'it gave up rather than wait for the connection');
    await busy;
  });
});
