// Serverless: Vercel's attachDatabasePool (@vercel/functions, the real one) recognises the pool as
// a pg pool, keeps the function alive after each release for pool.options.idleTimeoutMillis, and
// with sizeIdle every connection is closed by then: a suspended function holds none.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { pack } from '../packed.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

const { Pool } = (await import(pack().entry)) as typeof import('../../src/index.ts');

let url: string;
/** What the function was kept alive for: Vercel's request context, as the platform installs it. */
const waits: Promise<unknown>[] = [];
const CONTEXT = Symbol.for('@vercel/request-context');

before(async () => {
  url = await postgresUrl();
  // attachDatabasePool acts only inside a Vercel function: these say it is one.
  process.env.VERCEL_URL = 'pgqp-test.vercel.app';
  process.env.VERCEL_REGION = 'iad1';
  (globalThis as Record<symbol, unknown>)[CONTEXT] = {
    get: () => ({ waitUntil: (p: Promise<unknown>) => waits.push(p) }),
  };
});
after(() => {
  delete process.env.VERCEL_URL;
  delete process.env.VERCEL_REGION;
  delete (globalThis as Record<symbol, unknown>)[CONTEXT];
});

/** Our backends still connected to PostgreSQL, by application_name. */
async function backends (name: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [name]
    );
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}

test(
  'with sizeIdle, a function kept alive by attachDatabasePool ' +
    'sees every connection closed before it is let go',
  async () => {
    const { attachDatabasePool } = await import('@vercel/functions');
    const name = `pgqp-vercel-${process.pid}`;
    const pool = endAfter(
      new Pool({
        connectionString: url,
        application_name: name,
        size: 2,
        maxOverflow: 2,
        sizeIdle: 300,
        overflowIdle: 200,
      })
    );
    assert.equal(pool.options.idleTimeoutMillis, 300);
    attachDatabasePool(pool as unknown as pg.Pool);
    waits.length = 0;
    // Each query outlasts the three connects, so that none is handed a connection another let go:
    // at 50 ms, a busy CI machine (Node 22) opened only two, the third caller taking the first freed.
    await Promise.all([1, 2, 3].map((n) => pool.query('SELECT pg_sleep(0.5), $1::int AS n', [n])));
    // The last release was just before its query settled: Vercel's wait starts there.
    const released = performance.now();
    assert.equal(await backends(name), 3);
    assert.ok(waits.length >= 1, 'each release kept the function alive');
    await waits.at(-1);
    const keptMs = performance.now() - released;
    assert.ok(keptMs >= 350, `kept alive ${Math.round(keptMs)} ms: idleTimeoutMillis + 100`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the Terminate's way to the server
    assert.equal(pool.totalCount, 0, 'nothing open in the pool');
    assert.equal(await backends(name), 0, 'nor on the server');
  }
);

test('without it, the size connections outlive the wait (the default: QueuePool keeps them)', async () => {
  const { attachDatabasePool } = await import('@vercel/functions');
  const name = `pgqp-vercel-kept-${process.pid}`;
  const pool = endAfter(
    new Pool({ connectionString: url, application_name: name, size: 2, maxOverflow: 2, overflowIdle: 200 })
  );
  assert.equal(pool.options.idleTimeoutMillis, 200);
  attachDatabasePool(pool as unknown as pg.Pool);
  waits.length = 0;
  await Promise.all([1, 2, 3].map((n) => pool.query('SELECT pg_sleep(0.05), $1::int AS n', [n])));
  await waits.at(-1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(pool.totalCount, 2);
  assert.equal(await backends(name), 2);
});
