// Live signals: /metrics, readiness, the dashboard in a real browser, the API docs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { burst } from '../src/client/load.ts';
import { freshDatabase, noPgBouncer, ownPostgres, request, ROOT, startServer, tempDir } from './helpers.ts';
import { launchChromium, noBrowser } from './browser.ts';

const SHOTS = join(ROOT, 'test-results');

/** Prometheus text format: every sample line is `name{labels} value`. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

describe('/metrics', () => {
  test('parses as Prometheus text, and the pool gauges move during a load', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, POOL_SIZE: '3', POOL_MAX_OVERFLOW: '2' });
    try {
      const text = (await request(server.url, 'GET', '/metrics')).body;
      const idle = parseMetrics(text);
      assert.equal(idle.get('db_pool_connections{state="in_use"}'), 0);
      assert.equal(idle.get('db_pool_waiting'), 0);
      assert.equal(idle.get('db_pool_max_connections'), 5);
      for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_utilization']) {
        assert.ok(idle.has(name), name);
      }
      // A histogram has samples only once a collection happened: its declaration is always there.
      assert.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
      const load = burst(`${server.url}/sleep/postgres/?seconds=1`, 12);
      await delay(400);
      const busy = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(busy.get('db_pool_connections{state="in_use"}'), 5);
      assert.equal(busy.get('db_pool_connections{state="overflow_in_use"}'), 2);
      assert.equal(busy.get('db_pool_waiting'), 7);
      assert.equal(busy.get('http_requests_in_flight{route="/sleep/postgres/"}'), 12);
      await load;
      const done = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(done.get('db_pool_connections{state="in_use"}'), 0);
      assert.equal(done.get('http_request_duration_seconds_count{route="/sleep/postgres/",method="GET",status_code="200"}'), 12);
      assert.equal(done.get('db_pool_wait_seconds_count'), 12);
      assert.ok(done.get('db_pool_acquired_total')! >= 12);
    } finally {
      await server.stop();
    }
  });

  test('with WORKERS=2 the metrics are the sum over both workers', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, WORKERS: '2', POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1' });
    try {
      const before = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(before.get('db_pool_max_connections'), 6, 'two pools of 2 + 1');
      assert.equal(before.get('db_pool_connections{state="total"}'), 4, 'two warm pools of 2');
      await burst(`${server.url}/todos/`, 40);
      const after = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(after.get('http_request_duration_seconds_count{route="/todos/",method="GET",status_code="200"}'), 40, 'requests counted across workers');
    } finally {
      await server.stop();
    }
  });
});

describe('/metrics through PgBouncer', { skip: noPgBouncer }, () => {
  test("PgBouncer's own queue: servers active and clients waiting, once per host with WORKERS=2", async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '4', WORKERS: '2', POOL_SIZE: '5', POOL_MAX_OVERFLOW: '5', DATA_DIR: tempDir() });
    try {
      const idle = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(idle.get('pgbouncer_up'), 1);
      assert.equal(idle.get('pgbouncer_servers{state="active"}'), 0);
      assert.equal(idle.get('pgbouncer_servers{state="idle"}'), 4, 'the server connections are open before the service listens');
      const load = burst(`${server.url}/sleep/postgres/?seconds=1`, 12);
      await delay(500);
      const busy = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      // Not summed over the two workers: both read the same PgBouncer.
      assert.equal(busy.get('pgbouncer_servers{state="active"}'), 4);
      assert.equal(busy.get('pgbouncer_clients{state="waiting"}'), 8);
      assert.ok(busy.get('pgbouncer_max_wait_seconds')! >= 0.3, `max wait ${busy.get('pgbouncer_max_wait_seconds')}`);
      // Our pools hand out all 12: the waiting happens one level down.
      assert.equal(busy.get('db_pool_connections{state="in_use"}'), 12);
      assert.equal(busy.get('db_pool_waiting'), 0);
      assert.ok((await load).results.every((r) => r.status === 200));
      const done = parseMetrics((await request(server.url, 'GET', '/metrics')).body);
      assert.equal(done.get('pgbouncer_clients{state="waiting"}'), 0);
    } finally {
      await server.stop();
    }
  });
});

describe('/readyz', () => {
  test('flips to 503 when PostgreSQL stops and back to 200 when it starts', async () => {
    const pg = await ownPostgres();
    const server = await startServer({ DATABASE_URL: pg.url });
    try {
      assert.equal((await request(server.url, 'GET', '/readyz')).status, 200);
      await pg.stop();
      const down = await request(server.url, 'GET', '/readyz');
      assert.equal(down.status, 503);
      assert.ok(down.ms < 2000);
      assert.equal((await request(server.url, 'GET', '/healthz')).status, 200);
      await pg.start();
      assert.equal((await request(server.url, 'GET', '/readyz')).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('API docs', () => {
  test('/openapi.json is OpenAPI 3 generated from the route schemas', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db });
    try {
      const doc = (await request(server.url, 'GET', '/openapi.json')).json as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.match(doc.openapi, /^3\./);
      for (const path of ['/sleep/node/', '/sleep/postgres/', '/todos/', '/todos/{id}']) assert.ok(doc.paths[path], path);
      assert.ok(doc.paths['/todos/']!.post);
      assert.ok(!doc.paths['/metrics'] && !doc.paths['/'], 'internal routes are hidden');
      assert.equal((await request(server.url, 'GET', '/docs/')).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('the dashboard, in Chromium', { skip: noBrowser }, () => {
  let browser: Browser;
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium();
  });
  after(() => browser?.close());

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${m.text()} ${m.location().url}`); });
    page.on('request', (r) => { if (!new URL(r.url()).hostname.match(/^(127\.0\.0\.1|localhost)$/)) errors.push(`external request: ${r.url()}`); });
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { dashboard?: { frames: number } }).dashboard!.frames > 2, undefined, { timeout: 10_000 });
    return { page, errors };
  }

  test('30 database sleeps against a pool of 5 + 0: in use reaches 5, waiting 20+, 30 bars with waiting phases', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, POOL_SIZE: '5', POOL_MAX_OVERFLOW: '0' });
    try {
      const { page, errors } = await open(`${server.url}/`);
      // The figures on the page, sampled while the load runs.
      const seen = { inUse: 0, waiting: 0 };
      const sampler = setInterval(async () => {
        try {
          const [inUse, waiting] = await page.evaluate(() => [document.getElementById('in-use')!.textContent, document.getElementById('waiting')!.textContent]);
          seen.inUse = Math.max(seen.inUse, Number(inUse));
          seen.waiting = Math.max(seen.waiting, Number(waiting));
        } catch { /* page busy */ }
      }, 50);
      await delay(300);
      const b = await burst(`${server.url}/sleep/postgres/?seconds=0.6`, 30);
      assert.ok(b.results.every((r) => r.status === 200));
      await page.screenshot({ path: join(SHOTS, 'dashboard-pool-waves-during.png') });
      await delay(600);
      clearInterval(sampler);
      assert.equal(seen.inUse, 5, 'the in-use figure reached 5');
      assert.ok(seen.waiting >= 20, `the waiting figure reached ${seen.waiting}`);
      const bars = await page.evaluate(() => {
        const d = (window as unknown as { dashboard: { requests: { route: string; poolStart?: number; poolAcquired?: number }[] } }).dashboard;
        const chart = (window as unknown as { Chart: { getChart(id: string): { data: { datasets: { data: unknown[] }[] } } } }).Chart.getChart('chart-timeline');
        const waitBars = chart.data.datasets[1]!.data.filter((x) => Array.isArray(x) && x[1] - x[0] > 0.3).length;
        return { requests: d.requests.filter((r) => r.route === '/sleep/postgres/').length, bars: chart.data.datasets[0]!.data.length, waitBars };
      });
      assert.equal(bars.requests, 30);
      assert.equal(bars.bars, 30, 'one bar per request');
      assert.ok(bars.waitBars >= 24, `${bars.waitBars} bars show a wait of more than 0.3 s (25 of 30 waited 0.6 s or more)`);
      await page.screenshot({ path: join(SHOTS, 'dashboard-pool-waves.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await server.stop();
    }
  });

  test('a blocking app sleep: the lag figure passes 1 s while the 3 s sleep is still running', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, APP_MODE: 'blocking' });
    try {
      const { page, errors } = await open(`${server.url}/`);
      const t0 = performance.now();
      const sleeping = request(server.url, 'GET', '/sleep/node/?seconds=3');
      await page.waitForFunction(() => {
        const text = document.getElementById('lag')!.textContent!;
        return text.endsWith(' s') && Number.parseFloat(text) > 1;
      }, undefined, { timeout: 2900, polling: 50 });
      const seenAt = performance.now() - t0;
      const status = await page.evaluate(() => document.getElementById('status')!.textContent);
      await page.screenshot({ path: join(SHOTS, 'dashboard-blocked-loop.png'), fullPage: true });
      const res = await sleeping;
      const endedAt = performance.now() - t0;
      assert.ok(seenAt < endedAt, `lag > 1 s seen at ${seenAt.toFixed(0)} ms, before the sleep ended at ${endedAt.toFixed(0)} ms`);
      assert.equal(res.status, 200);
      assert.match(status!, /event loop is blocked/);
      assert.deepEqual(errors, []);
    } finally {
      await server.stop();
    }
  });

  test("through PgBouncer: its waiting clients and server connections are shown", { skip: noPgBouncer }, async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '3', DATA_DIR: tempDir() });
    try {
      const { page, errors } = await open(`${server.url}/`);
      await page.waitForSelector('#bouncer', { state: 'visible', timeout: 3000 });
      const load = burst(`${server.url}/sleep/postgres/?seconds=1`, 9);
      await page.waitForFunction(() => Number(document.getElementById('bouncer-waiting')!.textContent) >= 3, undefined, { timeout: 2500, polling: 50 });
      const servers = await page.evaluate(() => document.getElementById('bouncer-servers')!.textContent);
      assert.match(servers!, /^3 of 3 server connections active, longest wait \d+\.\d s$/);
      // PostgreSQL's view is read directly, so it does not queue behind the sleeps in PgBouncer.
      await page.waitForFunction(() => document.getElementById('db-sleeping')!.textContent === '3', undefined, { timeout: 1500, polling: 50 });
      await page.screenshot({ path: join(SHOTS, 'dashboard-pgbouncer.png'), fullPage: true });
      assert.ok((await load).results.every((r) => r.status === 200));
      assert.deepEqual(errors, []);
    } finally {
      await server.stop();
    }
  });

  test('the docs UI renders locally', async () => {
    const db = await freshDatabase();
    const server = await startServer({ DATABASE_URL: db });
    try {
      const page = await browser.newPage();
      const external: string[] = [];
      page.on('request', (r) => { if (!r.url().startsWith(server.url)) external.push(r.url()); });
      await page.goto(`${server.url}/docs/`);
      await page.waitForSelector('text=/todos/', { timeout: 10_000 });
      assert.deepEqual(external, []);
      await page.screenshot({ path: join(SHOTS, 'docs.png') });
    } finally {
      await server.stop();
    }
  });
});
