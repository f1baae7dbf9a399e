// The dashboard and the docs UI in a real browser (Debian's Chromium), against the built service.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { burst } from '../../src/client/load.ts';
import { launchChromium, noBrowser } from '../browser.ts';
import { buildListening, freshDatabase, get, noPgBouncer, ROOT, tempDir, withService } from '../helper.ts';

const SHOTS = join(ROOT, 'test-results');

describe('the dashboard, in Chromium', { skip: noBrowser }, () => {
  let browser: Browser;
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium();
  });
  after(() => browser?.close());

  async function open (url: string): Promise<{ page: Page; errors: string[] }> {
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
    await withService({ DATABASE_URL: db, POOL_SIZE: '5', POOL_MAX_OVERFLOW: '0' }, async (server) => {
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
    });
  });

  test('a blocking app sleep: the lag figure passes 1 s while the 3 s sleep is still running', async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, APP_MODE: 'blocking' }, async (server) => {
      const { page, errors } = await open(`${server.url}/`);
      const t0 = performance.now();
      const sleeping = get(server.url, '/sleep/node/?seconds=3');
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
    });
  });

  test('through PgBouncer: its waiting clients and server connections are shown', { skip: noPgBouncer }, async () => {
    const db = await freshDatabase();
    await withService({ DATABASE_URL: db, PGBOUNCER: 'on', PGBOUNCER_POOL_SIZE: '3', DATA_DIR: tempDir() }, async (server) => {
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
    });
  });

  test('the docs UI renders locally', async (t) => {
    const { url } = await buildListening(t);
    const page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
    await page.goto(`${url}/docs/`);
    await page.waitForSelector('text=/todos/', { timeout: 10_000 });
    assert.deepEqual(external, []);
    await page.screenshot({ path: join(SHOTS, 'docs.png') });
    await page.close();
  });
});
