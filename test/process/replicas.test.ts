// REPLICAS=N: streaming standbys of the embedded PostgreSQL that serve the reads, while the
// writes go to the primary; read-your-writes by WAL position; a replica that lags, is paused or
// killed leaves the rotation and comes back. One service for the file: making standbys costs a
// few seconds each.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { burst } from '../../src/client/load.ts';
import { APPLICATION_NAME } from '../../src/db/application.ts';
import { EmbeddedPostgres } from '../../src/postgres/embedded.ts';
import { openReplicas } from '../../src/postgres/source.ts';
import {
  alive,
  get,
  json,
  onCleanup,
  request,
  runCli,
  sql,
  startService,
  tempDir,
  until,
  withService,
  type Service,
} from '../helper.ts';

interface ServerInfo {
  name: string;
  role: string;
  pool: { acquired: number; inUse: number };
  replica?: { up: boolean; inRotation: boolean; reason?: string; lagBytes: number; lagSeconds: number };
}
interface Servers {
  servers: ServerInfo[];
  reads: {
    served: Record<string, number>;
    fallbacks: { noReplica: number; broken: number; behind: number };
    spilled: number;
    replayChecks: number;
    replayWaits: number;
    replayWaitMs: number;
  };
}

const dir = tempDir();
let s: Service;
const state = (name: string) =>
  JSON.parse(readFileSync(join(dir, name, 'postgres.json'), 'utf8')) as { port: number; postmasterPid: number };
const password = () => encodeURIComponent(readFileSync(join(dir, 'postgres.password'), 'utf8').trim());
/** A server of the service's, as the superuser: the primary (DATA_DIR) or a standby (DATA_DIR/replica-N). */
const url = (name: '.' | `replica-${number}`) =>
  `postgresql://postgres:${password()}@127.0.0.1:${state(name).port}/todos`;
const servers = async () => (await get(s.url, '/servers')).json as Servers;
const replica = async (name: string) => (await servers()).servers.find((x) => x.name === name)!.replica!;
const ours = `application_name = '${APPLICATION_NAME}'`;

describe('REPLICAS=2', () => {
  before(async () => {
    // A seconds-bound lag, short enough that a paused replica leaves within the test's patience,
    // long enough that one paused for a single read is still in rotation when that read comes.
    s = await startService({
      DATA_DIR: dir,
      REPLICAS: '2',
      REPLICA_MAX_LAG: '3s',
      READ_AFTER_TIMEOUT: '0.5',
      LOG_LEVEL: 'info',
      SLEEP_SECONDS: '0',
    });
  });
  after(async () => {
    await s?.stop('SIGKILL');
  });

  test('each standby is made from the primary and streams from it', async () => {
    const streaming = await sql<{ application_name: string; state: string }>(
      url('.'),
      'SELECT application_name, state FROM pg_stat_replication ORDER BY 1'
    );
    assert.deepEqual(streaming, [
      { application_name: 'replica-1', state: 'streaming' },
      { application_name: 'replica-2', state: 'streaming' },
    ]);
    for (const name of ['replica-1', 'replica-2'] as const) {
      assert.deepEqual(
        await sql(url(name), 'SELECT pg_is_in_recovery() AS standby, (SELECT count(*)::int FROM todo) AS todos'),
        [{ standby: true, todos: 50 }]
      );
    }
    assert.deepEqual(await sql(url('.'), 'SELECT pg_is_in_recovery() AS standby'), [{ standby: false }]);
    assert.match(s.output(), /replica-1 is in the reads' rotation/);
  });

  test('reads go to the replicas, writes to the primary (pg_stat_activity on each server)', async () => {
    const sleeping = async (name: '.' | 'replica-1' | 'replica-2') =>
      (
        await sql<{ n: number }>(
          url(name),
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${ours} AND query LIKE 'SELECT pg_sleep%' AND state ` +
            "= 'active'"
        )
      )[0]!.n;
    const reads = Array.from({ length: 4 }, () => get(s.url, '/sleep/postgres/?seconds=1.5'));
    await until(
      '4 sleeps running on the replicas',
      async () => (await sleeping('replica-1')) + (await sleeping('replica-2')) === 4
    );
    assert.equal(await sleeping('replica-1'), 2, 'round robin over the two');
    assert.equal(await sleeping('.'), 0, 'no read on the primary');
    for (const r of await Promise.all(reads)) {
      assert.equal(r.status, 200);
      assert.match(String(r.headers['x-served-by']), /^replica-[12]$/);
    }

    const writes = await Promise.all(
      Array.from({ length: 10 }, (_, i) => request(s.url, 'POST', '/todos/', json({ title: `write ${i}` })))
    );
    assert.ok(
      writes.every((w) => w.status === 201 && /^[0-9A-F]+\/[0-9A-F]+$/.test(String(w.headers['x-read-after'])))
    );
    // Only a write asks for the WAL position afterwards: its connection's last statement.
    const lastWrites = async (name: '.' | 'replica-1' | 'replica-2') =>
      (
        await sql<{ n: number }>(
          url(name),
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${ours} AND query LIKE '%pg_current_wal_lsn%'`
        )
      )[0]!.n;
    assert.ok((await lastWrites('.')) >= 1, 'the writes ran on the primary');
    assert.equal(
      (await lastWrites('replica-1')) + (await lastWrites('replica-2')),
      0,
      'no write reached a replica'
    );
    const view = await servers();
    assert.deepEqual(
      view.servers.map((x) => x.name),
      ['primary', 'replica-1', 'replica-2']
    );
  });

  test(
    "read-your-writes under concurrent load: every read that carries its write's X-Read-After (or the cookie) " +
      'sees it',
    async () => {
      const before = (await servers()).reads;
      const load = burst(`${s.url}/sleep/postgres/?seconds=0.05`, 200);
      const pair = async (i: number) => {
        const w = await request(s.url, 'POST', '/todos/', json({ title: `pair ${i}` }));
        assert.equal(w.status, 201, w.body);
        const id = (w.json as { id: number }).id;
        const headers: Record<string, string> =
          i % 2
            ? { 'X-Read-After': String(w.headers['x-read-after']) }
            : { cookie: String(w.headers['set-cookie']).split(';')[0]! };
        const r = await request(s.url, 'GET', `/todos/${id}`, { headers });
        assert.equal(
          r.status,
          200,
          `pair ${i}: the read after the write got ${r.status} from ${r.headers['x-served-by']}`
        );
        return String(r.headers['x-served-by']);
      };
      const served: string[] = [];
      for (let round = 0; round < 10; round++) {
        served.push(...(await Promise.all(Array.from({ length: 30 }, (_, i) => pair(round * 30 + i)))));
      }
      assert.ok((await load).results.every((r) => r.status === 200));
      const reads = (await servers()).reads;
      // The replicas serve them but while the load fills both their pools (then the primary does).
      assert.ok(
        served.filter((x) => x.startsWith('replica-')).length > 100,
        `reads on the replicas: ${JSON.stringify(reads)}`
      );
      assert.ok(reads.replayChecks > before.replayChecks, 'reads looked on the replica for their write');
      assert.equal(reads.fallbacks.broken, before.fallbacks.broken);
    }
  );

  test('a bad X-Read-After is a 400 naming it', async () => {
    const r = await request(s.url, 'GET', '/todos/', { headers: { 'X-Read-After': 'yesterday' } });
    assert.equal(r.status, 400);
    assert.deepEqual(
      [(r.json as { code: string }).code, (r.json as { field: string }).field],
      ['BAD_INPUT', 'X-Read-After']
    );
  });

  test(
    'a replica past REPLICA_MAX_LAG leaves the rotation and comes back once it catches up; with none left, reads ' +
      'fall back to the primary and /readyz says so',
    async () => {
      await sql(url('replica-2'), 'SELECT pg_wal_replay_pause()');
      try {
        // Writes it cannot replay while paused.
        const writeSome = () =>
          Promise.all(
            Array.from({ length: 5 }, (_, i) => request(s.url, 'POST', '/todos/', json({ title: `lag ${i}` })))
          );
        await until(
          'replica-2 out of the rotation',
          async () => {
            await writeSome();
            return !(await replica('replica-2')).inRotation;
          },
          15_000
        );
        const lagging = await replica('replica-2');
        assert.ok(lagging.lagBytes > 0 && lagging.lagSeconds > 3, JSON.stringify(lagging));
        assert.match(lagging.reason!, /past REPLICA_MAX_LAG 3s/);
        const reads = await Promise.all(Array.from({ length: 10 }, () => get(s.url, '/todos/')));
        assert.deepEqual([...new Set(reads.map((r) => r.headers['x-served-by']))], ['replica-1']);
        const metrics = (await get(s.url, '/metrics')).body;
        assert.match(metrics, /db_replica_in_rotation\{server="replica-2"\} 0/);
        assert.match(metrics, /db_replica_lag_bytes\{server="replica-2"\} [1-9]/);

        await sql(url('replica-1'), 'SELECT pg_wal_replay_pause()');
        await until(
          'both out of the rotation',
          async () => {
            await writeSome();
            return !(await replica('replica-1')).inRotation;
          },
          15_000
        );
        const ready = await get(s.url, '/readyz');
        assert.equal(ready.status, 200);
        assert.match(
          (ready.json as { reads: string }).reads,
          /no replica is in rotation .*reads go to the primary/
        );
        const onPrimary = await get(s.url, '/todos/');
        assert.equal(onPrimary.headers['x-served-by'], 'primary');
        assert.match(s.output(), /no replica is in rotation/);
      } finally {
        await sql(url('replica-1'), 'SELECT pg_wal_replay_resume()').catch(() => {});
        await sql(url('replica-2'), 'SELECT pg_wal_replay_resume()');
      }
      await until(
        'both back in the rotation',
        async () => (await replica('replica-1')).inRotation && (await replica('replica-2')).inRotation,
        10_000
      );
      assert.equal(((await get(s.url, '/readyz')).json as { reads?: string }).reads, undefined);
    }
  );

  test(
    'a read whose write the replicas have not replayed within READ_AFTER_TIMEOUT is served by the primary',
    async () => {
      await sql(url('replica-1'), 'SELECT pg_wal_replay_pause()');
      await sql(url('replica-2'), 'SELECT pg_wal_replay_pause()');
      try {
        const w = await request(s.url, 'POST', '/todos/', json({ title: 'not replayed' }));
        const before = (await servers()).reads.fallbacks.behind;
        const r = await request(s.url, 'GET', `/todos/${(w.json as { id: number }).id}`, {
          headers: { 'X-Read-After': String(w.headers['x-read-after']) },
        });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-served-by'], 'primary');
        assert.ok(r.ms >= 400, `it waited for the replica first (${Math.round(r.ms)} ms)`);
        assert.equal((await servers()).reads.fallbacks.behind, before + 1);
      } finally {
        await sql(url('replica-1'), 'SELECT pg_wal_replay_resume()').catch(() => {});
        await sql(url('replica-2'), 'SELECT pg_wal_replay_resume()');
      }
      await until(
        'both back in the rotation',
        async () => (await replica('replica-1')).inRotation && (await replica('replica-2')).inRotation,
        10_000
      );
    }
  );

  test('a replica killed (SIGKILL) under load: no read fails; it is restarted, catches up and comes back', async () => {
    const victim = state('replica-1').postmasterPid;
    const load = burst(`${s.url}/sleep/postgres/?seconds=1`, 60);
    const lists = Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        new Promise((resolve) => setTimeout(resolve, i * 50)).then(() => get(s.url, '/todos/'))
      )
    );
    await until(
      'sleeps on replica-1',
      async () =>
        (
          await sql<{ n: number }>(
            url('replica-1'),
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${ours} AND state = 'active'`
          )
        )[0]!.n > 0
    );
    process.kill(victim, 'SIGKILL');
    const results = [...(await load).results.map((r) => r.status), ...(await lists).map((r) => r.status)];
    assert.deepEqual(
      results.filter((x) => x !== 200),
      [],
      'every read answered 200'
    );
    assert.ok((await servers()).reads.fallbacks.broken > 0, 'the reads it was serving went to the primary');
    assert.match(s.output(), /the standby replica-1 exited with code null, signal SIGKILL: restarting it/);
    await until(
      'replica-1 restarted and back in the rotation',
      async () => (await replica('replica-1')).inRotation,
      30_000
    );
    assert.notEqual(state('replica-1').postmasterPid, victim);
    await request(s.url, 'POST', '/todos/', json({ title: 'after the restart' }));
    await until(
      'replica-1 streams again',
      async () =>
        (
          await sql(
            url('.'),
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica-1' AND state = 'streaming'"
          )
        ).length === 1,
      10_000
    );
  });

  test('shutdown stops every standby with the primary', async () => {
    const pids = [state('.').postmasterPid, state('replica-1').postmasterPid, state('replica-2').postmasterPid];
    assert.ok(pids.every(alive));
    assert.equal(await s.stop('SIGTERM'), 0);
    assert.deepEqual(pids.filter(alive), []);
  });
});

describe('DATABASE_REPLICA_URLS: standbys of your own', () => {
  test('reads go to the named standby and writes to DATABASE_URL; the position works the same', async () => {
    const root = tempDir();
    const primary = new EmbeddedPostgres({ dataDir: join(root, 'primary'), maxConnections: 60 });
    await primary.start();
    onCleanup(() => primary.stop());
    const [standby] = await openReplicas(
      1,
      { url: primary.url, pgdata: primary.pgdata },
      { dataDir: root, maxConnections: 60, log: () => {}, onUnexpectedExit: () => {} }
    );
    onCleanup(() => standby!.stop());
    await withService(
      { DATABASE_URL: primary.url, DATABASE_REPLICA_URLS: standby!.url, LOG_LEVEL: 'info' },
      async (own) => {
        assert.match(
          own.output(),
          /"replicas":"replica-1 at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/todos\. Reads go to them/
        );
        const w = await request(own.url, 'POST', '/todos/', json({ title: 'mine' }));
        assert.equal(w.status, 201);
        const r = await request(own.url, 'GET', `/todos/${(w.json as { id: number }).id}`, {
          headers: { 'X-Read-After': String(w.headers['x-read-after']) },
        });
        assert.deepEqual([r.status, r.headers['x-served-by']], [200, 'replica-1']);
        assert.deepEqual(
          await sql(standby!.url, 'SELECT title FROM todo WHERE id = $1', [(w.json as { id: number }).id]),
          [{ title: 'mine' }]
        );
      }
    );
  });
});

describe('REPLICAS, refused', () => {
  // Every message is unit-tested (test/unit/config.test.ts); here, that serve stops on them.
  test(
    'a bad value, or a combination it cannot serve, stops serve with one line naming the setting, exit 2',
    async () => {
      const cases: [Record<string, string>, string[], RegExp][] = [
        [{}, ['--replicas', '9'], /^Invalid --replicas="9": expected an integer from 0 to 8$/m],
        [
          { REPLICAS: '1', DATABASE_URL: 'postgresql://u:secret@127.0.0.1:1/x' },
          [],
          /^Invalid REPLICAS=1: it starts standbys of the embedded PostgreSQL, and DATABASE_URL is set/m,
        ],
      ];
      await Promise.all(
        cases.map(async ([env, args, message]) => {
          const r = await runCli(['serve', ...args], { DATA_DIR: tempDir(), ...env });
          assert.equal(r.code, 2, `${JSON.stringify(env)} ${args}: ${r.stderr}`);
          assert.match(r.stderr, message);
          assert.doesNotMatch(r.stderr, /secret/);
        })
      );
    }
  );
});
