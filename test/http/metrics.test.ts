// /metrics: Prometheus text that parses, and figures that follow the pool.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findPgBouncer, PgBouncer } from '../../src/postgres/pgbouncer.ts';
import { build, DATABASE_PATHS, freshDatabase, onCleanup, parseMetrics, tempDir, until } from '../helper.ts';

describe('/metrics', () => {
  test(
    'parses as Prometheus text; the pool figures follow a load; the states add up to the open connections',
    async (t) => {
      const { app } = await build(t, { settings: { POOL_SIZE: '3', POOL_MAX_OVERFLOW: '2' } });
      const scrape = async () => {
        const res = await app.inject({ url: '/metrics' });
        assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
        return { text: res.body, m: parseMetrics(res.body) };
      };
      const idle = await scrape();
      assert.equal(idle.m.get('db_pool_connections{state="in_use"}'), 0);
      assert.equal(idle.m.get('db_pool_connections{state="idle"}'), 3);
      assert.equal(idle.m.get('db_pool_waiting'), 0);
      assert.equal(idle.m.get('db_pool_max_connections'), 5);
      for (const name of [
        'process_resident_memory_bytes',
        'nodejs_eventloop_lag_seconds',
        'nodejs_eventloop_active_seconds_total',
        'nodejs_eventloop_idle_seconds_total',
      ]) {
        assert.ok(idle.m.has(name), name);
      }
      assert.match(idle.text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
      assert.match(idle.text, /^# TYPE nodejs_eventloop_active_seconds_total counter$/m);

      const load = Promise.all(Array.from({ length: 12 }, () => app.inject({ url: '/sleep/postgres/?seconds=1' })));
      await until('7 of 12 waiting for the 5 connections', () => app.store.stats().waiting === 7, 900);
      const busy = await scrape();
      // The states add up to the connections open.
      assert.equal(
        busy.m.get('db_pool_connections{state="in_use"}')! + busy.m.get('db_pool_connections{state="idle"}')!,
        app.store.stats().total
      );
      assert.equal(busy.m.get('db_pool_connections{state="in_use"}'), 5);
      assert.equal(busy.m.get('db_pool_connections{state="idle"}'), 0);
      assert.equal(busy.m.get('db_pool_overflow_connections_in_use'), 2);
      assert.equal(busy.m.get('db_pool_waiting'), 7);
      assert.equal(busy.m.get('http_requests_in_flight{route="/sleep/postgres/"}'), 12);
      assert.ok((await load).every((r) => r.statusCode === 200));

      const done = await scrape();
      assert.equal(done.m.get('db_pool_connections{state="in_use"}'), 0);
      assert.equal(
        done.m.get('http_request_duration_seconds_count{route="/sleep/postgres/",method="GET",status_code="200"}'),
        12
      );
      assert.equal(done.m.get('db_pool_wait_seconds_count'), 12);
      assert.ok(done.m.get('db_pool_acquired_total')! >= 12);
      assert.ok(
        done.m.get('nodejs_eventloop_active_seconds_total')! > idle.m.get('nodejs_eventloop_active_seconds_total')!,
        'the busy time only grows'
      );
    }
  );

  test("OpenTelemetry's names for the pool (db.client.connection.*), labelled by pool, beside db_pool_*", async (t) => {
    const { app, db } = await build(t, { settings: { POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1' } });
    const u = new URL(db);
    const pool = `db_client_connection_pool_name="${u.hostname}:${u.port}${u.pathname}"`;
    const load = Promise.all(Array.from({ length: 5 }, () => app.inject({ url: '/sleep/postgres/?seconds=0.6' })));
    await until('2 waiting for the 3 connections', () => app.store.stats().waiting === 2, 900);
    const busy = parseMetrics((await app.inject({ url: '/metrics' })).body);
    assert.equal(busy.get(`db_client_connection_count{${pool},db_client_connection_state="used"}`), 3);
    assert.equal(busy.get(`db_client_connection_count{${pool},db_client_connection_state="idle"}`), 0);
    assert.equal(busy.get(`db_client_connection_pending_requests{${pool}}`), 2);
    assert.deepEqual(
      [busy.get(`db_client_connection_max{${pool}}`), busy.get(`db_client_connection_idle_min{${pool}}`)],
      [3, 2]
    );
    await load;
    const done = parseMetrics((await app.inject({ url: '/metrics' })).body);
    assert.equal(done.get(`db_client_connection_wait_time_seconds_count{${pool}}`), 5);
    assert.equal(done.get(`db_client_connection_use_time_seconds_count{${pool}}`), 5);
    // Each held its connection for the sleep at least: 5 x 0.6 s.
    assert.ok(done.get(`db_client_connection_use_time_seconds_sum{${pool}}`)! >= 3);
    assert.ok(done.get(`db_client_connection_wait_time_seconds_sum{${pool}}`)! >= 1, 'two waited a whole sleep');
    assert.equal(done.get(`db_client_connection_timeouts_total{${pool}}`) ?? 0, 0);
  });
});

describe('/metrics through PgBouncer', { skip: DATABASE_PATHS[1]!.skip }, () => {
  test("PgBouncer's own queue: its server connections and the clients waiting inside it", async (t) => {
    const db = await freshDatabase({ seeded: true });
    const bouncer = new PgBouncer({
      serverUrl: db,
      bin: findPgBouncer(),
      dataDir: tempDir(),
      poolSize: 4,
      maxClients: 100,
    });
    await bouncer.start();
    onCleanup(() => bouncer.stop());
    const { app } = await build(t, {
      db,
      url: bouncer.url,
      settings: { PGBOUNCER_URL: bouncer.url, POOL_SIZE: '6', POOL_MAX_OVERFLOW: '6' },
    });
    const scrape = async () => parseMetrics((await app.inject({ url: '/metrics' })).body);
    const idle = await scrape();
    assert.equal(idle.get('pgbouncer_up'), 1);
    assert.equal(idle.get('pgbouncer_servers{state="active"}'), 0);
    assert.equal(idle.get('pgbouncer_servers{state="idle"}'), 4, 'its server connections are open before we serve');
    const load = Promise.all(Array.from({ length: 12 }, () => app.inject({ url: '/sleep/postgres/?seconds=2' })));
    // Waited for, not after a fixed delay: on a loaded machine the overflow connections to
    // PgBouncer take longer to open (a run saw 3 of the 8 waiting after 500 ms).
    let busy = await scrape();
    await until(
      '4 active and 8 waiting inside PgBouncer, waited 0.3 s',
      async () => {
        busy = await scrape();
        return (
          busy.get('pgbouncer_servers{state="active"}') === 4 &&
          busy.get('pgbouncer_clients{state="waiting"}') === 8 &&
          busy.get('pgbouncer_max_wait_seconds')! >= 0.3
        );
      },
      1900
    );
    assert.equal(busy.get('pgbouncer_servers{state="active"}'), 4);
    assert.equal(busy.get('pgbouncer_clients{state="waiting"}'), 8);
    assert.ok(busy.get('pgbouncer_max_wait_seconds')! >= 0.3, `max wait ${busy.get('pgbouncer_max_wait_seconds')}`);
    // Our pool hands out all 12: the waiting happens one level down.
    assert.equal(busy.get('db_pool_connections{state="in_use"}'), 12);
    assert.equal(busy.get('db_pool_waiting'), 0);
    assert.ok((await load).every((r) => r.statusCode === 200));
    assert.equal((await scrape()).get('pgbouncer_clients{state="waiting"}'), 0);
  });
});
