// PGBOUNCER=on: a real PgBouncer (Debian's) that the service starts, configures and stops; and
// PGBOUNCER_URL, an existing one. (The Todo API, cancel and metrics through PgBouncer: test/http/.)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { burst } from '../../src/client/load.ts';
import { waves } from '../../src/client/summary.ts';
import { findPgBouncer, PgBouncer } from '../../src/postgres/pgbouncer.ts';
import {
  alive,
  freshDatabase,
  get,
  json,
  noPgBouncer,
  onCleanup,
  request,
  runCli,
  tempDir,
  withService,
} from '../helper.ts';

/** The first Server-Sent Event of a stream, as text. */
function firstEvent (url: string): Promise<string> {
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

describe('PGBOUNCER=on', { skip: noPgBouncer }, () => {
  test(
    '30 concurrent 1 s database sleeps with 10 server connections come back in 3 waves of 10; the banner says ' +
      'which limit applies',
    async () => {
      const db = await freshDatabase();
      await withService(
        {
          DATABASE_URL: db,
          PGBOUNCER: 'on',
          PGBOUNCER_POOL_SIZE: '10',
          POOL_SIZE: '20',
          POOL_MAX_OVERFLOW: '10',
          DATA_DIR: tempDir(),
        },
        async (s) => {
          assert.match(s.output(), /through PgBouncer at .* \(transaction mode, 10 server connections\)/);
          assert.match(s.output(), /the limit that applies is PgBouncer's 10 server connections/);
          const b = await burst(`${s.url}/sleep/postgres/?seconds=1`, 30);
          assert.ok(b.results.every((r) => r.status === 200));
          assert.deepEqual(
            waves(
              b.results.map((r) => r.end),
              500
            ).map((w) => w.length),
            [10, 10, 10]
          );
        }
      );
    }
  );

  test(
    'a wait inside PgBouncer is bounded by POOL_TIMEOUT too (query_wait_timeout): 503 POOL_TIMEOUT, then it ' +
      'serves again',
    async () => {
      const db = await freshDatabase();
      await withService(
        { DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '1', POOL_TIMEOUT: '1', DATA_DIR: tempDir() },
        async (s) => {
          const answers = await Promise.all([0, 1, 2].map(() => get(s.url, '/sleep/postgres/?seconds=4')));
          answers.sort((x, y) => x.ms - y.ms);
          assert.deepEqual(
            answers.map((a) => a.status),
            [503, 503, 200],
            answers.map((a) => a.body).join('\n')
          );
          assert.ok(answers[1]!.ms < 3000, `the 503s came after ${Math.round(answers[1]!.ms)} ms`);
          assert.equal((answers[0]!.json as { code: string }).code, 'POOL_TIMEOUT');
          assert.match((answers[0]!.json as { message: string }).message, /query_wait_timeout/);
          assert.equal((await get(s.url, '/todos/')).status, 200);
        }
      );
    }
  );

  test(
    'DB_MODE=blocking: the blocking bridge works in transaction ' +
      'mode (SET LOCAL statement_timeout), and still blocks',
    async () => {
      const db = await freshDatabase();
      await withService(
        {
          DATABASE_URL: db,
          PGBOUNCER: 'on',
          PGBOUNCER_POOL_SIZE: '5',
          DB_MODE: 'blocking',
          STATEMENT_TIMEOUT: '0.5',
          DATA_DIR: tempDir(),
        },
        async (s) => {
          const created = await request(s.url, 'POST', '/todos/', json({ title: 'through the bridge' }));
          assert.equal(created.status, 201, created.body);
          const id = (created.json as { id: number }).id;
          assert.equal(((await get(s.url, `/todos/${id}`)).json as { title: string }).title, 'through the bridge');
          assert.equal((await request(s.url, 'DELETE', `/todos/${id}`)).status, 204);
          assert.equal((await get(s.url, '/sleep/postgres/?seconds=2')).status, 504);
          const b = await burst(`${s.url}/sleep/postgres/?seconds=0.3`, 5);
          assert.ok(b.results.every((r) => r.status === 200));
          assert.ok(
            b.totalMs >= 5 * 300 * 0.98,
            `5 blocking sleeps of 0.3 s took ${Math.round(b.totalMs)} ms, expected at least 1500`
          );
        }
      );
    }
  );

  test(
    "the budget is checked against PgBouncer's pool, not " +
      'the client pools; the PgBouncer stops with the service',
    async () => {
      const db = await freshDatabase();
      const dir = tempDir();
      let pid = 0;
      await withService(
        {
          DATABASE_URL: db,
          PGBOUNCER: 'on',
          PGBOUNCER_POOL_SIZE: '10',
          WORKERS: '2',
          POOL_SIZE: '60',
          POOL_MAX_OVERFLOW: '0',
          DATA_DIR: dir,
        },
        async (s) => {
          assert.match(s.output(), /2 x 60 = 120 client connections to PgBouncer/);
          pid = Number(readFileSync(join(dir, 'pgbouncer', 'pgbouncer.pid'), 'utf8').trim());
          assert.ok(alive(pid));
        }
      );
      assert.ok(!alive(pid), 'PgBouncer stopped with the service');
    }
  );
});

describe('PGBOUNCER_URL', { skip: noPgBouncer }, () => {
  test(
    'an existing PgBouncer is used as it is (its pool is ' +
      'the limit), its password shown nowhere, and left running',
    async () => {
      const db = await freshDatabase();
      const bouncer = new PgBouncer({
        serverUrl: db,
        bin: findPgBouncer(),
        dataDir: tempDir(),
        poolSize: 5,
        maxClients: 100,
      });
      await bouncer.start();
      onCleanup(() => bouncer.stop());
      await withService({ DATABASE_URL: db, PGBOUNCER_URL: bouncer.url }, async (s) => {
        assert.match(s.output(), /through PgBouncer at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\//);
        assert.match(s.output(), /client connections to the PgBouncer at PGBOUNCER_URL; its own limits apply/);
        const b = await burst(`${s.url}/sleep/postgres/?seconds=1`, 15);
        assert.ok(b.results.every((r) => r.status === 200));
        assert.deepEqual(
          waves(
            b.results.map((r) => r.end),
            500
          ).map((w) => w.length),
          [5, 5, 5],
          'its pool of 5 is the limit'
        );
        const password = new URL(db).password;
        assert.ok(password.length > 8);
        const page = (await get(s.url, '/')).body;
        const port = /name="live-port" content="(\d+)"/.exec(page)![1];
        const hello = await firstEvent(`http://127.0.0.1:${port}/live/1/events`);
        assert.match(hello, /^event: hello/);
        assert.ok(hello.includes('pgbouncerUrl'), hello.slice(0, 200));
        for (const text of [s.output(), page, hello]) assert.ok(!text.includes(password), 'password exposed');
      });
      assert.ok(alive(bouncer.pid!), 'not ours to stop');
    }
  );
});

describe('PgBouncer missing', () => {
  test('PGBOUNCER=on without the program: one line naming the package, exit 2, nothing started', async () => {
    const dir = tempDir();
    const res = await runCli(['serve', '--port', '0'], {
      PGBOUNCER: 'on',
      PGBOUNCER_BIN: join(dir, 'no-pgbouncer-here'),
      DATA_DIR: dir,
    });
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(
      res.stderr,
      /is not a runnable pgbouncer program: install the Debian package "pgbouncer" \(apt-get install pgbouncer\)/
    );
    assert.ok(!existsSync(join(dir, 'postgres')), 'PostgreSQL was not started');
  });

  test('demo --scale without the program: the same line before any scenario runs', async () => {
    const dir = tempDir();
    const res = await runCli(['demo', '--quick', '--scale'], {
      PGBOUNCER_BIN: join(dir, 'no-pgbouncer-here'),
      DATA_DIR: dir,
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /is not a runnable pgbouncer program: install the Debian package "pgbouncer"/);
    assert.equal(res.stdout, '');
  });
});
