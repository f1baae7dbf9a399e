// The pool against a real PostgreSQL (TEST_DATABASE_URL, or one started for the file): the
// QueuePool's limits and order as PostgreSQL sees them, cancel by AbortSignal, and a cancel that
// can never stop the next caller's query.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import pg from 'pg';
import { Pool, type Lease } from '../../src/index.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

let url: string;
before(async () => {
  url = await postgresUrl();
});

const poolOf = (options: ConstructorParameters<typeof Pool>[0]) => {
  return endAfter(new Pool({ connectionString: url, ...options }));
};

async function backendsSleeping (admin: pg.Client, app: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE " +
      "'SELECT pg_sleep%'",
    [app]
  );
  return rows[0]!.n;
}

describe('QueuePool on PostgreSQL', () => {
  test(
    'size 2 + overflow 1: 9 one-second sleeps run at most 3 at once, granted in arrival order, in 3 waves',
    async () => {
      const pool = poolOf({ size: 2, maxOverflow: 1 });
      await pool.warm(); // the 2 core connections open, as a service opens them before it listens
      const leases: Lease[] = [];
      await Promise.all(
        Array.from({ length: 9 }, async (_, i) => {
          const lease = await pool.acquire();
          leases[i] = lease;
          await lease.client.query('SELECT pg_sleep(1)');
          lease.release();
        })
      );
      const granted = leases.map((l) => l.startedAt + l.waitMs);
      for (let i = 1; i < 9; i++) {
        assert.ok(granted[i]! >= granted[i - 1]!, `call ${i} was granted before call ${i - 1}`);
      }
      assert.deepEqual(
        leases.map((l) => Math.floor(l.waitMs / 900)),
        [0, 0, 0, 1, 1, 1, 2, 2, 2],
        leases.map((l) => Math.round(l.waitMs)).join(', ')
      );
      assert.equal(leases.filter((l) => l.overflow).length, 3);
      assert.deepEqual([pool.stats().acquired, pool.stats().queued, pool.inUseCount], [9, 6, 0]);
    }
  );

  test(
    'an aborted signal cancels the running query at once ' +
      '(CancelRequest); the same connection serves the next query',
    async () => {
      const app = `pgqp-cancel-${process.pid}`;
      const pool = poolOf({ size: 1, maxOverflow: 0, application_name: app });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const ac = new AbortController();
        const lease = await pool.acquire({ signal: ac.signal });
        const pid = (await lease.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const t0 = performance.now();
        const sleeping = lease.client.query('SELECT pg_sleep(30)');
        while ((await backendsSleeping(admin, app)) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        ac.abort();
        await assert.rejects(sleeping, (err: { code?: string }) => err.code === '57014'); // query_canceled
        assert.ok(performance.now() - t0 < 10_000, 'stopped long before its 30 s');
        lease.release();
        assert.equal(await backendsSleeping(admin, app), 0);
        const next = await pool.acquire();
        assert.equal(
          (await next.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
          pid,
          'the same backend, reused'
        );
        next.release();
        assert.ok(pool.stats().cancels >= 1);
      } finally {
        await admin.end();
      }
    }
  );

  test(
    "a cancel never stops the next caller's query: 150 aborts racing the end of a short query, then a query on " +
      'the same connection',
    async () => {
      const pool = poolOf({ size: 1, maxOverflow: 0 });
      let cancelled = 0;
      for (let i = 0; i < 150; i++) {
        const ac = new AbortController();
        const lease = await pool.acquire({ signal: ac.signal });
        const q = lease.client.query('SELECT pg_sleep(0.002)').catch((err: { code?: string }) => {
          if (err.code !== '57014') throw err;
          cancelled++;
        });
        setTimeout(() => ac.abort(), i % 5);
        await q;
        await new Promise((resolve) => setTimeout(resolve, i % 5));
        lease.release();
        const next = await pool.acquire();
        await next.client.query('SELECT pg_sleep(0.01)'); // rejects with 57014 if a late cancel hit it
        next.release();
      }
      assert.ok(pool.stats().cancels >= 150, `${pool.stats().cancels} cancels sent`);
      assert.ok(cancelled >= 0);
    }
  );

  test('pool.query with a signal: a wait in the queue is left at once, a running query cancelled', async () => {
    const pool = poolOf({ size: 1, maxOverflow: 0 });
    const holding = pool.query('SELECT pg_sleep(1)');
    const ac = new AbortController();
    const waiting = pool.query({ text: 'SELECT 1', signal: ac.signal });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(pool.waitingCount, 1);
    ac.abort();
    await assert.rejects(waiting as Promise<unknown>, (err: { code?: string }) => err.code === 'ABORTED');
    assert.equal(pool.waitingCount, 0);
    await holding;
  });

  test('a connection that cannot be made is CONNECT_FAILED, and its message names no password', async () => {
    const u = new URL(url);
    u.password = 'not-the-password-s3cr3t';
    const pool = poolOf({ connectionString: u.toString(), size: 1, maxOverflow: 0, timeout: 5000 });
    const err = await pool.acquire().catch((e: Error & { code?: string }) => e);
    assert.equal((err as { code?: string }).code, 'CONNECT_FAILED');
    assert.match((err as Error).message, /password authentication failed/);
    assert.doesNotMatch((err as Error).message, /s3cr3t/);
    assert.equal(pool.stats().connectErrors, 1);
  });
});

describe("pg.Pool's end(), on PostgreSQL", () => {
  test("end() resolves after every query in flight has settled (pg-pool's suite: 20 of 20)", async () => {
    for (let run = 0; run < 5; run++) {
      // each query has its place: none waits, none is refused by end()
      const pool = new Pool({ connectionString: url, max: 20 });
      let settledCount = 0;
      const queries = Array.from({ length: 20 }, () =>
        pool.query('SELECT pg_sleep(0.01)').finally(() => {
          settledCount++;
        })
      );
      await pool.end();
      assert.equal(settledCount, 20, `run ${run}`);
      await Promise.all(queries);
    }
  });
});
