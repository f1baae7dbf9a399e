// The unhappy path on a real PostgreSQL (TEST_DATABASE_URL, or one started for the file), and
// through a partition made by a proxy of the tests' own: a connection given back in a bad state, a
// query past its deadline, a partition, a terminated backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from '../../src/index.ts';
import { Partition } from '../partition.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

let url: string;
let admin: pg.Client;
before(async () => {
  url = await postgresUrl();
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  endAfter({ end: () => admin.end() });
});

const poolOf = (options: ConstructorParameters<typeof Pool>[0]) =>
  endAfter(new Pool({ connectionString: url, ...options }));

async function proxy (): Promise<Partition> {
  const target = new URL(url);
  const p = new Partition({ host: target.hostname, port: Number(target.port) });
  await p.start();
  after(() => p.close());
  return p;
}

async function until (
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 5000,
  state?: () => unknown
): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) {
      assert.fail(`not within ${ms} ms: ${what}${state ? `; ${JSON.stringify(state())}` : ''}`);
    }
    await delay(25);
  }
}

const pidOf = async (client: pg.ClientBase) =>
  (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

describe('reset on return, on PostgreSQL (size 1: the next caller gets the same backend)', () => {
  test(
    'a connection given back inside a transaction: the ' +
      'next caller is not in it, and the write was rolled back',
    async () => {
      const table = `pgqp_reset_${process.pid}`;
      await admin.query(`CREATE TABLE ${table} (n int)`);
      after(() => admin.query(`DROP TABLE IF EXISTS ${table}`));
      const pool = poolOf({ size: 1, maxOverflow: 0 });
      const c = await pool.connect();
      const pid = await pidOf(c);
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      c.release();
      const next = await pool.connect();
      assert.equal(await pidOf(next), pid, 'the same connection');
      assert.equal(next.getTransactionStatus(), 'I');
      await next.query(`INSERT INTO ${table} VALUES (2)`);
      next.release();
      const { rows } = await admin.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`);
      assert.deepEqual(
        rows.map((r) => r.n),
        [2],
        'the first write was rolled back; the second committed on its own'
      );
      assert.equal(pool.stats().resets, 1);
    }
  );

  test(
    "one failed BEGIN ... COMMIT through pool.query() does not poison the pool (25P02 'current transaction is " +
      "aborted')",
    async () => {
      const pool = poolOf({ size: 1, maxOverflow: 0 });
      await assert.rejects(pool.query('BEGIN; SELECT 1/0; COMMIT'), { code: '22012' });
      const { rows } = (await pool.query('SELECT 1 AS one')) as pg.QueryResult;
      assert.equal(rows[0].one, 1);
      assert.equal(
        pool.stats().closed.reset,
        1,
        'left in a failed transaction by a failed query: closed, as pg.Pool does'
      );
    }
  );

  test(
    'a caller that gives back a connection after a failed statement inside its own BEGIN, without ROLLBACK',
    async () => {
      const pool = poolOf({ size: 1, maxOverflow: 0 });
      const c = await pool.connect();
      const pid = await pidOf(c);
      await c.query('BEGIN');
      await assert.rejects(c.query('SELECT 1/0'), { code: '22012' });
      c.release();
      const next = await pool.connect();
      assert.equal(await pidOf(next), pid);
      assert.equal((await next.query('SELECT 2 AS two')).rows[0].two, 2);
      next.release();
    }
  );
});

describe("deadlines and faults, through a partition of the tests' own", () => {
  test(
    'queryTimeout on a running pg_sleep: QUERY_TIMEOUT at the deadline, the backend stops, the next caller gets a ' +
      'new connection',
    async () => {
      const app = `pgqp-deadline-${process.pid}`;
      const pool = poolOf({ size: 1, maxOverflow: 0, queryTimeout: 500, application_name: app });
      const c = await pool.connect();
      const pid = await pidOf(c);
      const t0 = performance.now();
      await assert.rejects(
        c.query('SELECT pg_sleep(30)'),
        (err: { code?: string }) => err.code === 'QUERY_TIMEOUT'
      );
      const took = performance.now() - t0;
      assert.ok(took >= 490 && took < 3000, `${took} ms`);
      c.release();
      await until(
        'the backend gone',
        async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0
      );
      const next = await pool.connect();
      assert.notEqual(await pidOf(next), pid);
      next.release();
      assert.deepEqual([pool.stats().queryTimeouts, pool.stats().closed.deadline], [1, 1]);
    }
  );

  test(
    'a partition: the query fails at its deadline, the abort within checkTimeout, no place is kept; after the ' +
      'heal the pool serves again',
    async () => {
      const p = await proxy();
      const pool = new Pool({
        connectionString: p.urlFor(url),
        size: 2,
        maxOverflow: 0,
        queryTimeout: 800,
        checkTimeout: 500,
        timeout: 3000,
        connectTimeout: 1000,
      });
      pool.on('error', () => {});
      after(() => pool.end());
      await pool.warm();
      const [a, b] = [await pool.acquire(), await pool.acquire()];
      p.drop();
      const t0 = performance.now();
      const late = a.client.query('SELECT 1').then(
        () => 'answered',
        (err: { code?: string }) => err.code
      );
      assert.equal(await late, 'QUERY_TIMEOUT');
      assert.ok(performance.now() - t0 < 2000);
      const abort = new AbortController();
      b.release();
      const c = await pool.acquire({ signal: abort.signal, queryTimeout: Infinity });
      const hanging = c.client.query('SELECT 2').then(
        () => 'answered',
        (err: Error) => err.message
      );
      const t1 = performance.now();
      abort.abort();
      assert.match(await hanging, /terminated/i);
      assert.ok(performance.now() - t1 < 2000, 'ended within checkTimeout of the cancel');
      a.release();
      c.release();
      assert.equal(pool.inUseCount, 0);
      // New connections during the partition: bounded by connectTimeout.
      await assert.rejects(
        pool.query('SELECT 3'),
        (err: { code?: string }) => err.code === 'CONNECT_FAILED' || err.code === 'POOL_TIMEOUT'
      );
      p.heal();
      await until(
        'served again',
        async () => (await pool.query('SELECT 4 AS four').catch(() => undefined))?.rows[0]?.four === 4
      );
      assert.equal(pool.inUseCount, 0);
    }
  );

  test('idle connections caught by a partition are found by the health check and replaced after the heal', async () => {
    const p = await proxy();
    // connectTimeout: a refill that starts during the partition connects into it, and must give up in time.
    const pool = new Pool({
      connectionString: p.urlFor(url),
      size: 3,
      maxOverflow: 0,
      healthCheckPeriod: 200,
      checkTimeout: 300,
      connectTimeout: 500,
    });
    pool.on('error', () => {});
    after(() => pool.end());
    await pool.warm();
    p.drop();
    await until(
      'the idle ones checked and closed',
      () => pool.stats().closed.healthCheck + pool.stats().closed.invalidated === 3,
      8000
    );
    p.heal();
    await until('refilled to size', () => pool.totalCount === 3 && pool.idleCount === 3, 8000);
    const { rows } = (await pool.query('SELECT 1 AS one')) as pg.QueryResult;
    assert.equal(rows[0].one, 1);
  });

  test('every backend terminated by an administrator while idle: the next queries all succeed', async () => {
    const app = `pgqp-terminate-${process.pid}`;
    const pool = poolOf({ size: 3, maxOverflow: 0, application_name: app });
    const errors: Error[] = [];
    pool.on('error', (err: Error) => errors.push(err));
    await pool.warm();
    const { rows } = (await admin.query(
      'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity ' +
        'WHERE application_name = $1',
      [app]
    )) as pg.QueryResult<{ n: number }>;
    const terminated = rows[0]!.n;
    assert.ok(terminated >= 1, 'connections to terminate');
    // Each idle one is told (an error event), or, checked as a suspect after the first, fails its check. As many as
    // were terminated: CI once saw 2 of 3 closed and the pool whole; the count says, next time, whether the third
    // was terminated at all (a pool that keeps a dead connection still fails here).
    await until(
      'each idle connection closed',
      () => pool.stats().closed.broken + pool.stats().closed.invalidated >= terminated,
      10_000,
      () => ({ terminated, stats: pool.stats(), errors: errors.map((e) => e.message) })
    );
    assert.ok(errors.length >= 1);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => pool.query('SELECT 1')));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(6).fill('fulfilled')
    );
  });
});
