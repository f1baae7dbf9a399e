// Through a real PgBouncer in transaction mode (Debian's package).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { setMaxListeners } from 'node:events';
import { burst } from '../src/client/load.ts';
import { alive, freshDatabase, request, sql, startServer, tempDir, waves } from './helpers.ts';

function hasPgBouncer(): boolean {
  for (const bin of ['pgbouncer', '/usr/sbin/pgbouncer']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
      return true;
    } catch { /* next */ }
  }
  return false;
}
const skip = hasPgBouncer() ? false : process.env.CI ? false : 'pgbouncer is not installed (apt-get install pgbouncer); CI installs it';
const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

describe('through PgBouncer', { skip }, () => {
  test('60 concurrent database sleeps with 10 server connections come back in 6 waves of 10', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '10', POOL_SIZE: '50', POOL_MAX_OVERFLOW: '10', DATA_DIR: tempDir() });
    try {
      assert.match(server.output(), /through PgBouncer at .* \(transaction mode, 10 server connections\)/);
      assert.match(server.output(), /the limit that applies is PgBouncer's 10 server connections/);
      const b = await burst(`${server.url}/sleep/postgres/?seconds=0.4`, 60);
      assert.ok(b.results.every((r) => r.status === 200), JSON.stringify(b.results.find((r) => r.status !== 200)));
      assert.deepEqual(waves(b.results.map((r) => r.end)).map((w) => w.length), [10, 10, 10, 10, 10, 10]);
    } finally {
      await server.stop();
    }
  });

  test('the Todo API and cancel on disconnect work in transaction mode', async () => {
    const db = await freshDatabase();
    const name = new URL(db).pathname.slice(1);
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '5', STATEMENT_TIMEOUT: '20', DATA_DIR: tempDir() });
    try {
      const created = await request(server.url, 'POST', '/todos/', json({ title: 'pooled twice', priority: 3 }));
      assert.equal(created.status, 201);
      const id = (created.json as { id: number }).id;
      assert.deepEqual((await request(server.url, 'PATCH', `/todos/${id}`, json({ done: true }))).json, { id, title: 'pooled twice', done: true, priority: 3 });
      assert.equal((await request(server.url, 'GET', `/todos/${id}`)).status, 200);
      assert.equal((await request(server.url, 'DELETE', `/todos/${id}`)).status, 204);
      assert.equal((await request(server.url, 'GET', `/todos/${id}`)).status, 404);


      // 12 clients, 5 server connections: 7 wait inside PgBouncer when the clients leave.
      const ac = new AbortController();
      setMaxListeners(50, ac.signal);
      const gone = Array.from({ length: 12 }, () => request(server.url, 'GET', '/sleep/postgres/?seconds=10', { signal: ac.signal }).catch((e: Error) => e));
      await delay(300);
      const [running] = await sql<{ n: string }>(db, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'", [name]);
      assert.equal(Number(running!.n), 5);
      ac.abort();
      await Promise.all(gone);
      await delay(1000);
      const [left] = await sql<{ n: string }>(db, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'", [name]);
      assert.equal(Number(left!.n), 0, 'the cancel went through PgBouncer');
      assert.equal(((await request(server.url, 'GET', '/pool')).json as { inUse: number }).inUse, 0);
      assert.equal((await request(server.url, 'GET', '/todos/')).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('STATEMENT_TIMEOUT is set per transaction and gives 504; the connection stays usable', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '2', STATEMENT_TIMEOUT: '0.5', DATA_DIR: tempDir() });
    try {
      const slow = await request(server.url, 'GET', '/sleep/postgres/?seconds=3');
      assert.equal(slow.status, 504, slow.body);
      assert.ok(slow.ms < 2000);
      assert.equal((await request(server.url, 'GET', '/sleep/postgres/?seconds=0.2')).status, 200);
      assert.equal((await request(server.url, 'GET', '/todos/')).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('PgBouncer stops with the service, also when the service is killed with SIGKILL', async () => {
    const dir = tempDir();
    const pidOf = () => Number(readFileSync(join(dir, 'pgbouncer', 'pgbouncer.pid'), 'utf8').trim());
    const first = await startServer({ DATA_DIR: dir, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '5' });
    const graceful = pidOf();
    assert.ok(alive(graceful));
    assert.equal(await first.stop('SIGTERM'), 0);
    assert.ok(!alive(graceful), 'stopped with the service');

    const second = await startServer({ DATA_DIR: dir, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '5' });
    const killed = pidOf();
    await second.stop('SIGKILL');
    for (let i = 0; i < 40 && alive(killed); i++) await delay(50);
    assert.ok(!alive(killed), 'no orphaned PgBouncer after SIGKILL');
    // The embedded PostgreSQL survives a SIGKILL by design; the next start stops it.
    const third = await startServer({ DATA_DIR: dir });
    assert.equal(await third.stop(), 0);
  });

  test('the budget check is made against PgBouncer pool size, not the client pools', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '10', WORKERS: '2', POOL_SIZE: '60', POOL_MAX_OVERFLOW: '0', DATA_DIR: tempDir() });
    assert.match(server.output(), /2 x 60 = 120 client connections to PgBouncer/);
    assert.equal(await server.stop(), 0);
  });
});
