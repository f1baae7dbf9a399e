// Through a real PgBouncer in transaction mode (Debian's package).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { setMaxListeners } from 'node:events';
import { burst } from '../src/client/load.ts';
import { findPgBouncer, PgBouncer } from '../src/postgres/pgbouncer.ts';
import { alive, freshDatabase, noPgBouncer, onCleanup, request, runCli, sql, startServer, tempDir, waves } from './helpers.ts';

describe('through PgBouncer', { skip: noPgBouncer }, () => {
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

  // The Todo API and the cancel test of the 15 pooled clients also run through PgBouncer
  // (api.test.ts, resilience.test.ts). This one is about clients PgBouncer itself queues.
  test('clients that leave while queued inside PgBouncer are cancelled there too', async () => {
    const db = await freshDatabase();
    const name = new URL(db).pathname.slice(1);
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '5', DATA_DIR: tempDir() });
    try {
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

  test('waiting inside PgBouncer is bounded by POOL_TIMEOUT too: 503 POOL_TIMEOUT, then the pool serves again', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '1', POOL_TIMEOUT: '1', DATA_DIR: tempDir() });
    try {
      const answers = await Promise.all([0, 1, 2].map(() => request(server.url, 'GET', '/sleep/postgres/?seconds=3')));
      answers.sort((x, y) => x.ms - y.ms);
      assert.deepEqual(answers.map((a) => a.status), [503, 503, 200], answers.map((a) => a.body).join('\n'));
      assert.ok(answers[1]!.ms < 2500, `the 503s came after ${Math.round(answers[1]!.ms)} ms`);
      assert.equal((answers[0]!.json as { code: string }).code, 'POOL_TIMEOUT');
      assert.match((answers[0]!.json as { message: string }).message, /query_wait_timeout/);
      assert.equal((await request(server.url, 'GET', '/todos/')).status, 200);
      assert.equal(((await request(server.url, 'GET', '/pool')).json as { inUse: number }).inUse, 0);
    } finally {
      await server.stop();
    }
  });

  test('DB_MODE=blocking: the blocking bridge works in transaction mode, and still blocks', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '5', DB_MODE: 'blocking', STATEMENT_TIMEOUT: '0.5', DATA_DIR: tempDir() });
    try {
      const body = { 'content-type': 'application/json', body: JSON.stringify({ title: 'through the bridge' }) };
      const created = await request(server.url, 'POST', '/todos/', body);
      assert.equal(created.status, 201, created.body);
      const id = (created.json as { id: number }).id;
      assert.equal(((await request(server.url, 'GET', `/todos/${id}`)).json as { title: string }).title, 'through the bridge');
      assert.equal((await request(server.url, 'DELETE', `/todos/${id}`)).status, 204);
      assert.equal((await request(server.url, 'GET', '/sleep/postgres/?seconds=2')).status, 504, 'SET LOCAL statement_timeout');
      const b = await burst(`${server.url}/sleep/postgres/?seconds=0.3`, 5);
      assert.ok(b.results.every((r) => r.status === 200));
      assert.ok(b.totalMs >= 5 * 300 * 0.9, `5 blocking sleeps of 0.3 s took ${Math.round(b.totalMs)} ms, expected about 1500`);
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

  test('PGBOUNCER_URL: an existing PgBouncer is used as it is, and left running when the service stops', async () => {
    const db = await freshDatabase();
    const bouncer = new PgBouncer({ serverUrl: db, bin: findPgBouncer(), dataDir: tempDir(), poolSize: 5, maxClients: 100 });
    await bouncer.start();
    onCleanup(() => bouncer.stop());
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER_URL: bouncer.url });
    try {
      assert.match(server.output(), /through PgBouncer at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\//);
      assert.match(server.output(), /client connections to the PgBouncer at PGBOUNCER_URL; its own limits apply/);
      const b = await burst(`${server.url}/sleep/postgres/?seconds=0.4`, 15);
      assert.ok(b.results.every((r) => r.status === 200));
      assert.deepEqual(waves(b.results.map((r) => r.end)).map((w) => w.length), [5, 5, 5], 'its pool of 5 is the limit');
      // The password is in neither the banner nor the dashboard's live stream.
      const password = new URL(db).password;
      assert.ok(password.length > 8);
      const page = (await request(server.url, 'GET', '/')).body;
      const port = /name="monitor-port" content="(\d+)"/.exec(page)![1];
      const hello = await firstEvent(`http://127.0.0.1:${port}/events`);
      assert.match(hello, /^event: hello/);
      assert.ok(hello.includes('pgbouncerUrl'), hello.slice(0, 200));
      for (const text of [server.output(), page, hello]) assert.ok(!text.includes(password), 'password exposed');
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.ok(alive(bouncer.pid!), 'not ours to stop');
  });

  test('the budget check is made against PgBouncer pool size, not the client pools', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '10', WORKERS: '2', POOL_SIZE: '60', POOL_MAX_OVERFLOW: '0', DATA_DIR: tempDir() });
    assert.match(server.output(), /2 x 60 = 120 client connections to PgBouncer/);
    assert.equal(await server.stop(), 0);
  });
});

describe('PgBouncer missing', () => {
  test('PGBOUNCER=on without the program: one line naming the package, exit 2, nothing started', async () => {
    const dir = tempDir();
    const res = await runCli(['serve', '--port', '0'], { PGBOUNCER: 'on', PGBOUNCER_BIN: join(dir, 'no-pgbouncer-here'), DATA_DIR: dir });
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /is not a runnable pgbouncer program: install the Debian package "pgbouncer" \(apt-get install pgbouncer\)/);
    assert.ok(!existsSync(join(dir, 'postgres')), 'PostgreSQL was not started');
  });

  test('demo --scale without the program: the same line before any scenario runs', async () => {
    const dir = tempDir();
    const res = await runCli(['demo', '--quick', '--scale'], { PGBOUNCER_BIN: join(dir, 'no-pgbouncer-here'), DATA_DIR: dir });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /is not a runnable pgbouncer program: install the Debian package "pgbouncer"/);
    assert.equal(res.stdout, '');
  });
});

/** The first Server-Sent Event of a stream, as text. */
function firstEvent(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('\n\n')) {
          req.destroy();
          resolve(text.slice(0, text.indexOf('\n\n')));
        }
      });
    });
    req.on('error', reject);
  });
}
