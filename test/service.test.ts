// The service's claims, measured on a real PostgreSQL over real sockets.
// Sleeps are short (0.2-0.4 s) and the margins wide: these check shapes, not speed.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { burst } from '../src/client/load.ts';
import { freshDatabase, sql, startServer, waves, type Server } from './helpers.ts';

let db: string;

before(async () => {
  db = await freshDatabase();
});

function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, ms: performance.now() - t0 }));
    }).on('error', reject);
  });
}

async function timed(server: Server, route: string, n: number) {
  const b = await burst(`${server.url}${route}`, n);
  const failed = b.results.filter((r) => r.status !== 200);
  assert.equal(failed.length, 0, `${failed.length} of ${n} requests to ${route} failed: ${JSON.stringify(failed[0])}`);
  return b;
}

describe('routes', () => {
  let server: Server;
  before(async () => {
    server = await startServer({ DATABASE_URL: db, SLEEP_SECONDS: '0.2' });
  });
  after(() => server.stop());

  test('every route returns the 50 seeded todos ordered by id', async () => {
    for (const route of ['/todos/', '/todos', '/sleep/node/', '/sleep/python/', '/sleep/postgres/', '/sleep/postgres?seconds=0']) {
      const res = await get(`${server.url}${route}`);
      assert.equal(res.status, 200, route);
      const { todos } = JSON.parse(res.body) as { todos: { id: number; title: string; done: boolean; priority: number }[] };
      assert.equal(todos.length, 50, route);
      assert.deepEqual(todos[0], { id: 1, title: 'Todo 0', done: true, priority: 0 });
      assert.deepEqual(todos[49], { id: 50, title: 'Todo 49', done: false, priority: 4 });
      assert.deepEqual(todos.map((t) => t.id), [...todos.map((t) => t.id)].sort((a, b) => a - b));
    }
  });

  test('the default wait is SLEEP_SECONDS and ?seconds= overrides it', async () => {
    assert.ok((await get(`${server.url}/sleep/node/`)).ms >= 190);
    assert.ok((await get(`${server.url}/sleep/postgres/`)).ms >= 190);
    const long = await get(`${server.url}/sleep/postgres/?seconds=0.5`);
    assert.ok(long.ms >= 490, `${long.ms} ms`);
  });

  test('?seconds= outside 0..60 or not a number is a 400 with a JSON error', async () => {
    for (const q of ['-1', '61', 'abc', '1e9', '']) {
      const res = await get(`${server.url}/sleep/node/?seconds=${q}`);
      if (q === '') continue; // an empty value means "use the default"
      assert.equal(res.status, 400, `seconds=${q}`);
      const body = JSON.parse(res.body) as { message: string; statusCode: number };
      assert.equal(body.statusCode, 400);
      assert.match(body.message, /seconds/);
    }
  });

  test('an unknown route is a 404 with a JSON body', async () => {
    const res = await get(`${server.url}/nope`);
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { statusCode: number }).statusCode, 404);
  });
});

describe('modes: what blocks and what does not (20 concurrent requests of 0.25 s)', () => {
  const N = 20;
  const S = 0.25;
  const combos = [
    { app: 'blocking', db: 'blocking' },
    { app: 'nonblocking', db: 'blocking' },
    { app: 'blocking', db: 'nonblocking' },
    { app: 'nonblocking', db: 'nonblocking' },
  ] as const;

  for (const combo of combos) {
    test(`APP_MODE=${combo.app} DB_MODE=${combo.db}`, async () => {
      // Pool 25 + 0, so that the pool is not what limits this test.
      const server = await startServer({ DATABASE_URL: db, APP_MODE: combo.app, DB_MODE: combo.db, POOL_SIZE: '25', POOL_MAX_OVERFLOW: '0' });
      try {
        for (const [route, mode] of [['/sleep/node/', combo.app], ['/sleep/postgres/', combo.db]] as const) {
          const { totalMs } = await timed(server, `${route}?seconds=${S}`, N);
          if (mode === 'blocking') {
            assert.ok(totalMs >= N * S * 1000 * 0.9, `${route} in blocking mode took ${totalMs} ms, expected about ${N * S * 1000}`);
          } else {
            assert.ok(totalMs < 1500, `${route} in nonblocking mode took ${totalMs} ms, expected about ${S * 1000}`);
          }
        }
      } finally {
        assert.equal(await server.stop(), 0);
      }
    });
  }

  for (const [variable, route] of [['APP_MODE', '/sleep/node/'], ['DB_MODE', '/sleep/postgres/']] as const) {
    test(`a /todos/ request sent during a blocking ${route} waits for it (${variable}=blocking)`, async () => {
      const server = await startServer({ DATABASE_URL: db, [variable]: 'blocking' });
      try {
        const slow = get(`${server.url}${route}?seconds=1`);
        await new Promise((r) => setTimeout(r, 150));
        const quick = await get(`${server.url}/todos/`);
        assert.equal((await slow).status, 200);
        assert.equal(quick.status, 200);
        assert.ok(quick.ms >= 700, `/todos/ answered in ${quick.ms} ms although the event loop should have been blocked`);
      } finally {
        await server.stop();
      }
    });
  }

  test('the same /todos/ request is not delayed in nonblocking modes', async () => {
    const server = await startServer({ DATABASE_URL: db });
    try {
      const slow = [get(`${server.url}/sleep/node/?seconds=1`), get(`${server.url}/sleep/postgres/?seconds=1`)];
      await new Promise((r) => setTimeout(r, 150));
      const quick = await get(`${server.url}/todos/`);
      assert.ok(quick.ms < 500, `/todos/ took ${quick.ms} ms`);
      await Promise.all(slow);
    } finally {
      await server.stop();
    }
  });
});

describe('the pool', () => {
  test('POOL_SIZE=2 + POOL_MAX_OVERFLOW=1: 9 concurrent database sleeps come back in 3 waves of 3', async () => {
    const server = await startServer({ DATABASE_URL: db, POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1' });
    try {
      const { results, totalMs } = await timed(server, '/sleep/postgres/?seconds=0.4', 9);
      const w = waves(results.map((r) => r.end));
      assert.deepEqual(w.map((x) => x.length), [3, 3, 3], `waves: ${JSON.stringify(w)}`);
      w.forEach((wave, i) => {
        const at = wave[0]!;
        assert.ok(at >= 400 * (i + 1) - 20 && at < 400 * (i + 1) + 250, `wave ${i + 1} at ${at} ms`);
      });
      assert.ok(totalMs < 1650, `total ${totalMs}`);
    } finally {
      await server.stop();
    }
  });

  test('a request that waits longer than POOL_TIMEOUT gets 503 with Retry-After and the QueuePool message', async () => {
    const server = await startServer({ DATABASE_URL: db, POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0', POOL_TIMEOUT: '0.3' });
    try {
      const first = get(`${server.url}/sleep/postgres/?seconds=1`);
      await new Promise((r) => setTimeout(r, 100));
      const second = await get(`${server.url}/sleep/postgres/?seconds=1`);
      assert.equal(second.status, 503);
      assert.ok(second.headers['retry-after'], 'Retry-After header');
      assert.ok(second.ms >= 280 && second.ms < 800, `503 after ${second.ms} ms`);
      const body = JSON.parse(second.body) as { code: string; message: string };
      assert.equal(body.code, 'POOL_TIMEOUT');
      assert.equal(body.message, 'QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.30');
      assert.equal((await first).status, 200);
      // The pool is healthy afterwards.
      assert.equal((await get(`${server.url}/todos/`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('POOL=none opens a connection per request and closes it after', async () => {
    const server = await startServer({ DATABASE_URL: db, POOL: 'none' });
    try {
      const name = new URL(db).pathname.slice(1);
      const during = timed(server, '/sleep/postgres/?seconds=0.5', 20);
      await new Promise((r) => setTimeout(r, 300));
      const [busy] = await sql<{ n: string }>(db, `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%'`, [name]);
      assert.equal(Number(busy!.n), 20, 'all 20 requests sleep in PostgreSQL at once, on 20 connections');
      const { totalMs } = await during;
      assert.ok(totalMs < 1500, `total ${totalMs}`);
      await new Promise((r) => setTimeout(r, 300));
      const [left] = await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      assert.equal(Number(left!.n), 0, 'no connection is kept open');
    } finally {
      await server.stop();
    }
  });

  test('the default QueuePool keeps its connections: 5 stay open, overflow is closed when idle', async () => {
    const server = await startServer({ DATABASE_URL: db });
    try {
      const name = new URL(db).pathname.slice(1);
      await timed(server, '/sleep/postgres/?seconds=0.3', 15);
      const count = async () => Number((await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]))[0]!.n);
      assert.equal(await count(), 15, 'size + overflow connections right after the burst');
      await new Promise((r) => setTimeout(r, 1800));
      assert.equal(await count(), 5, 'overflow closed after idling, core kept');
    } finally {
      await server.stop();
    }
  });
});

describe('workers', () => {
  test('WORKERS=2 halves the serial time of blocking app sleeps', async () => {
    const server = await startServer({ DATABASE_URL: db, WORKERS: '2', APP_MODE: 'blocking' });
    try {
      const { totalMs } = await timed(server, '/sleep/node/?seconds=0.25', 20);
      // One process: 20 x 0.25 = 5 s. Two: about 2.5 s.
      assert.ok(totalMs >= 2250 && totalMs < 3750, `total ${totalMs} ms, expected about 2500`);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
