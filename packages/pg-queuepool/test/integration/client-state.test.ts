// What the pool reads of a pg Client beyond its public API lives in src/client-state.ts alone: each of
// its readings checked on a real connection, with the newest pg 8 (what npm installs) and with pg 8.11,
// the peer range's floor (before getTransactionStatus(), so the pool follows ReadyForQuery itself).
// And the pool's own guarantees that rest on them, with 8.11's Client. Deprecations throw here.
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import pg from 'pg';
import { createRequire } from 'node:module';
import {
  awaitingReady,
  busy,
  endQuietly,
  kill,
  queryable,
  socketOf,
  transactionStatusOf,
  whenReady,
} from '../../src/client-state.ts';
import { Pool } from '../../src/index.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

let url: string;
before(async () => {
  url = await postgresUrl();
});

/** pg 8.11.0 (an alias in the package's devDependencies), typed as the pg it is an older version of. */
const pgFloor = createRequire(import.meta.url)('pg-8.11') as typeof pg;

const VERSIONS = [
  {
    name: `pg ${(await import('pg/package.json', { with: { type: 'json' } })).default.version}`,
    Client: pg.Client,
    ownStatus: true,
  },
  {
    name: `pg ${(await import('pg-8.11/package.json', { with: { type: 'json' } })).default.version}`,
    Client: pgFloor.Client,
    ownStatus: false,
  },
];

/** One of our backends, seen from another connection: still there, and what it runs. */
async function backend (pid: number): Promise<string | undefined> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [
      pid,
    ]);
    return rows[0]?.state;
  } finally {
    await admin.end();
  }
}

for (const { name, Client, ownStatus } of VERSIONS) {
  describe(`client-state, with ${name}`, () => {
    const connected = async () => {
      const client = new Client({ connectionString: url }) as pg.Client;
      client.on('error', () => {});
      await client.connect();
      return client;
    };

    test(`the transaction status through ReadyForQuery: I, T, E, I (${
      ownStatus ? "the Client's getter" : 'followed by the pool'
    })`, async () => {
      const client = new Client({ connectionString: url }) as pg.Client;
      assert.equal(
        typeof (client as { getTransactionStatus?: unknown }).getTransactionStatus === 'function',
        ownStatus
      );
      // Read before connecting, as the pool does: the first ReadyForQuery must not be missed.
      const status = transactionStatusOf(client)!;
      await client.connect();
      try {
        assert.equal(status(), 'I');
        await client.query('BEGIN');
        assert.equal(status(), 'T');
        await client.query('SELECT 1/0').catch(() => {});
        // The error's callback may come before the ReadyForQuery that says E: what whenReady() waits for.
        if (awaitingReady(client)) assert.equal(await whenReady(client, 2000), true);
        assert.equal(status(), 'E');
        await client.query('ROLLBACK');
        assert.equal(status(), 'I');
      } finally {
        await client.end();
      }
    });

    test('busy while a query runs; whenReady answers at once for an idle client, false for a busy one', async () => {
      const client = await connected();
      try {
        assert.equal(busy(client), false);
        assert.equal(await whenReady(client, 1000), true);
        const running = client.query('SELECT pg_sleep(0.2)');
        assert.equal(busy(client), true);
        assert.equal(awaitingReady(client), false, 'a running query is busy, not awaiting its ReadyForQuery');
        assert.equal(await whenReady(client, 1000), false);
        await running;
        assert.equal(busy(client), false);
      } finally {
        await client.end();
      }
    });

    test('queryable until end(); the socket is a net.Socket; kill() destroys it and the backend goes', async () => {
      const client = await connected();
      assert.equal(queryable(client), true);
      assert.ok(socketOf(client) instanceof net.Socket);
      const pid = (client as unknown as { processID: number }).processID;
      assert.equal(await backend(pid), 'idle');
      const ended = new Promise((resolve) => client.once('end', resolve));
      kill(client);
      await ended;
      assert.equal(queryable(client), false);
      for (let i = 0; i < 50 && (await backend(pid)) !== undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(await backend(pid), undefined, 'PostgreSQL saw the socket close');
      await endQuietly(client); // ended already: no error
      const other = await connected();
      await other.end();
      assert.equal(queryable(other), false, 'ended');
      await endQuietly({
        end: () => {
          throw new Error('no');
        },
      });
      await endQuietly({});
    });

    test('the pool with this Client: reset on return, a failed batch, a cancel by signal, the deadline', async () => {
      const pool = endAfter(
        new Pool<pg.Client>({ connectionString: url, size: 1, maxOverflow: 0, Client, queryTimeout: 1000 })
      );
      const first = await pool.connect();
      await first.query('BEGIN');
      first.release();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const next = await pool.connect();
      // Inside the first caller's transaction, now() would be when it began, not this statement's start.
      const { rows } = await next.query<{ outside: boolean }>('SELECT now() = statement_timestamp() AS outside');
      assert.equal(rows[0]!.outside, true, 'the reset rolled the transaction back');
      next.release();
      assert.equal(pool.stats().resets, 1);

      // Given back with its query still running: closed, not handed on (busy(), from the Client's fields).
      const running = await pool.connect();
      const unfinished = running.query('SELECT pg_sleep(0.3)').catch(() => {});
      running.release();
      await unfinished;
      assert.equal(pool.stats().closed.busy, 1);

      await pool.query('BEGIN; SELECT 1/0; COMMIT').catch(() => {});
      const one = await pool.query('SELECT 1 AS n');
      assert.deepEqual(one.rows, [{ n: 1 }], 'not poisoned');

      const gone = new AbortController();
      const sleeping = pool
        .query({ text: 'SELECT pg_sleep(5)', signal: gone.signal })
        .catch((e: { code?: string }) => e.code);
      setTimeout(() => gone.abort(), 100);
      assert.equal(await sleeping, '57014', 'cancelled in PostgreSQL (query_canceled)');
      const late = await pool.query('SELECT pg_sleep(3)').catch((e: { code?: string }) => e.code);
      assert.equal(late, 'QUERY_TIMEOUT');
      const two = await pool.query('SELECT 2 AS n');
      assert.deepEqual(two.rows, [{ n: 2 }]);
    });
  });
}
