// Leaked connections, named: a connection held past LEAK_DETECTION is reported by the pool with the
// stack of its checkout; the service names the route and the line, counts it in /metrics, and lets
// it go at close. /leak/ leaks on purpose; the sleep routes' asked-for wait is not a leak.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Leak } from '../../src/app/plugins/leaks.ts';
import { build, ROOT, until } from '../helper.ts';

/** The line of the route that checks the connection out: the one a report must name. */
const HOLD_LINE =
  readFileSync(`${ROOT}/src/app/routes/leak.ts`, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes('store.hold(')) + 1;

const inUse = async (app: Awaited<ReturnType<typeof build>>['app']) =>
  (await app.inject({ url: '/pool' })).json<{ inUse: number }>().inUse;

test(
  '/leak/ answers at once and keeps its connection; past LEAK_DETECTION it is reported by route and line, then ' +
    'again when given back',
  async (t) => {
    const { app } = await build(t, { settings: { LEAK_DETECTION: '0.3' } });
    const leaks: Leak[] = [];
    app.leaks.on((leak) => leaks.push(leak));

    const res = await app.inject({ url: '/leak/?seconds=1.2' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      { ...res.json<object>(), waitMs: 0 },
      { heldSeconds: 1.2, waitMs: 0, leakDetectionSeconds: 0.3 }
    );
    assert.equal(await inUse(app), 1, 'answered, and the connection is still checked out');

    await until('the leak is reported', () => leaks.length === 1);
    const [held] = leaks;
    assert.equal(held!.released, false);
    assert.equal(held!.route, 'GET /leak/');
    assert.equal(held!.thresholdMs, 300);
    assert.ok(held!.heldMs >= 300 && held!.heldMs < 1200, `reported after ${held!.heldMs} ms`);
    assert.deepEqual(
      [held!.culprit?.file, held!.culprit?.line],
      ['src/app/routes/leak.ts', HOLD_LINE],
      JSON.stringify(held!.frames)
    );
    assert.match(held!.culprit!.fn, /leakConnection/);
    assert.equal(
      held!.frames[0]!.file,
      'src/db/todos.ts',
      'the store, that checked out for the route, is in the stack too'
    );

    await until('it is given back, and reported once more', () => leaks.length === 2, 5000);
    const [, released] = leaks;
    assert.equal(released!.released, true);
    assert.equal(released!.id, held!.id, 'one checkout, one id');
    assert.ok(released!.heldMs >= 1150, `held ${released!.heldMs} ms in all`);
    assert.equal(await inUse(app), 0);

    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(
      metrics,
      /^db_pool_leaks_total\{route="GET \/leak\/"\} 1$/m,
      'counted once, when found, not again when given back'
    );
    assert.equal(app.store.stats().leaks, 1);
  }
);

test(
  'the wait a sleep route asks for is not a leak, nor is ' +
    'a quick route; with LEAK_DETECTION=0 nothing is watched',
  async (t) => {
    const watched = await build(t, { settings: { LEAK_DETECTION: '0.3' } });
    const leaks: Leak[] = [];
    watched.app.leaks.on((leak) => leaks.push(leak));
    const answers = await Promise.all([
      watched.app.inject({ url: '/sleep/postgres/?seconds=0.6' }),
      watched.app.inject({ url: '/todos/' }),
      watched.app.inject({ url: '/work/postgres/?units=1000' }),
    ]);
    for (const a of answers) assert.equal(a.statusCode, 200, a.body);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual(leaks, [], 'the sleep adds its seconds to the threshold');

    const off = await build(t, { settings: { LEAK_DETECTION: '0' } });
    assert.equal(off.app.hasDecorator('leaks'), false, 'the leaks plugin is not even registered');
    const res = await off.app.inject({ url: '/leak/?seconds=0.5' });
    assert.equal(res.json<{ leakDetectionSeconds: number }>().leakDetectionSeconds, 0);
    await until('given back', async () => (await inUse(off.app)) === 0);
    assert.equal(off.app.store.stats().leaks, 0);
  }
);

test('a connection held by /leak/ does not hold up shutdown: close gives it back', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ url: '/leak/?seconds=60' });
  assert.equal(res.statusCode, 200);
  assert.equal(await inUse(app), 1);
  const started = performance.now();
  await app.close();
  const ms = performance.now() - started;
  // The store's close waits at most 5 s for its connections: a held one would cost all of it.
  assert.ok(ms < 2500, `closed in ${Math.round(ms)} ms`);
});

test('?seconds= out of range is a 400 naming it', async (t) => {
  const { app } = await build(t);
  for (const [url, message] of [
    ['/leak/?seconds=61', /seconds.*<= 60/],
    ['/leak/?seconds=-1', /seconds.*>= 0/],
    ['/leak/?seconds=x', /seconds.*number/],
  ] as const) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 400, url);
    assert.match(res.json<{ message: string }>().message, message, url);
    assert.equal(res.json<{ field: string }>().field, 'seconds');
  }
});
