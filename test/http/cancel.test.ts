// Cancel on disconnect, over real sockets: clients that give up leave the queue, and their
// running queries are cancelled in PostgreSQL, directly and through PgBouncer.
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { describe, test } from 'node:test';
import { findPgBouncer, PgBouncer } from '../../src/postgres/pgbouncer.ts';
import {
  buildListening,
  DATABASE_PATHS,
  freshDatabase,
  onCleanup,
  request,
  sleepingBackends,
  sql,
  tempDir,
  until,
} from '../helper.ts';

/** `n` requests for a 10 s database sleep that can be given up all at once. */
function clients (url: string, n: number) {
  const ac = new AbortController();
  setMaxListeners(n + 10, ac.signal);
  const answers = Array.from({ length: n }, () =>
    request(url, 'GET', '/sleep/postgres/?seconds=10', { signal: ac.signal }).catch((err: Error) => err)
  );
  return { giveUp: () => ac.abort(), answers };
}

for (const path of DATABASE_PATHS) {
  describe(`cancel on disconnect, ${path.label}`, { skip: path.skip }, () => {
    test(
      '30 clients against pool 5 + 10 give up: the 15 queued leave the queue, the 15 pg_sleep are cancelled, the ' +
        'pool is whole again',
      async (t) => {
        const db = await freshDatabase({ seeded: true });
        const { url: dbUrl, settings } = await path.through(db);
        const { app, url } = await buildListening(t, { db, url: dbUrl, settings });
        const c = clients(url, 30);
        await until(
          '15 sleeping in PostgreSQL and 15 waiting in the pool',
          async () => (await sleepingBackends(db)) === 15 && app.store.stats().waiting === 15
        );
        c.giveUp();
        await Promise.all(c.answers);
        await until('no pg_sleep left running', async () => (await sleepingBackends(db)) === 0);
        await until('the pool empty', () => app.store.stats().inUse === 0 && app.store.stats().waiting === 0);
        const next = await request(url, 'GET', '/sleep/postgres/?seconds=0');
        assert.equal(next.status, 200);
      }
    );
  });
}

describe('after cancels', () => {
  test(
    'after cancelled queries POOL_SIZE connections stay open: reused once PostgreSQL has ended each query',
    async (t) => {
      const db = await freshDatabase({ seeded: true });
      const { app, url } = await buildListening(t, { db });
      const c = clients(url, 6);
      await until('6 sleeping in PostgreSQL', async () => (await sleepingBackends(db)) === 6);
      const sleeping = await backendPids(db);
      c.giveUp();
      await Promise.all(c.answers);
      await until(
        'the core connections idle again',
        () => app.store.stats().total === 5 && app.store.stats().idle === 5
      );
      assert.ok(app.store.stats().cancels >= 6, `${app.store.stats().cancels} CancelRequests sent`);
      // The overflow connection the pool closed leaves pg_stat_activity a moment after its socket
      // closes: PostgreSQL ends a backend asynchronously.
      await until('PostgreSQL sees the 5 connections', async () => (await backendPids(db)).length === 5);
      const kept = await backendPids(db);
      assert.ok(
        kept.every((pid) => sleeping.includes(pid)),
        `the 5 are the connections that were cancelled, not new ones: ${kept} of ${sleeping}`
      );
    }
  );
});

/** Our database's backends, other than the one asking. */
async function backendPids (db: string): Promise<number[]> {
  const rows = await sql<{ pid: number }>(
    db,
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [new URL(db).pathname.slice(1)]
  );
  return rows.map((r) => r.pid);
}

describe('cancel on disconnect, queued inside PgBouncer', { skip: DATABASE_PATHS[1]!.skip }, () => {
  test('clients that leave while PgBouncer itself queues them are cancelled there too', async (t) => {
    const db = await freshDatabase({ seeded: true });
    // A PgBouncer of 5 server connections: of 12 clients, our pool hands out all 12 and 7 wait inside PgBouncer.
    const bouncer = new PgBouncer({
      serverUrl: db,
      bin: findPgBouncer(),
      dataDir: tempDir(),
      poolSize: 5,
      maxClients: 100,
    });
    await bouncer.start();
    onCleanup(() => bouncer.stop());
    const { url } = await buildListening(t, { db, url: bouncer.url, settings: { PGBOUNCER_URL: bouncer.url } });
    const c = clients(url, 12);
    await until('5 sleeping in PostgreSQL', async () => (await sleepingBackends(db)) === 5);
    c.giveUp();
    await Promise.all(c.answers);
    await until('no pg_sleep left running', async () => (await sleepingBackends(db)) === 0);
    assert.equal((await request(url, 'GET', '/todos/')).status, 200);
  });
});
