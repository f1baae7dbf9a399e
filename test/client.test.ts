// The load client and the demo, against a real service on a real PostgreSQL.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { freshDatabase, noPgBouncer, runCli, startServer, tempDir, waves, type Server } from './helpers.ts';
import { launchChromium, noBrowser } from './browser.ts';


let db: string;
let server: Server;

before(async () => {
  db = await freshDatabase();
  server = await startServer({ DATABASE_URL: db, POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1', SLEEP_SECONDS: '0.3' });
});
after(() => server?.stop());

describe('client', () => {
  test('prints the original client.py output, then a summary; waves show the pool', async () => {
    const res = await runCli(['client', '9', '--url', server.url, '--route', '/sleep/postgres/', '--seconds', '0.4']);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^Sending 9 requests for http:\/\/127\.0\.0\.1:\d+\/sleep\/postgres\/\?seconds=0\.4\.\.\.$/);
    const responses = lines.slice(1, 10);
    for (const l of responses) assert.match(l, /^\t@ [ \d]\d\.\d\ds got response \[200\]$/);
    assert.match(lines[10]!, /^\t= [ \d]\d\.\d\ds TOTAL$/);
    assert.equal(lines[11], '-'.repeat(42));
    assert.match(lines[12]!, /^SUM TOTAL = \d+\.\d\ds$/);
    assert.match(lines[13]!, /^\/sleep\/postgres\/: 9 ok, 0 errors; latency min \d\.\d\ds p50 \d\.\d\ds p90 \d\.\d\ds p99 \d\.\d\ds max \d\.\d\ds$/);
    const times = responses.map((l) => Number(/@\s+([\d.]+)s/.exec(l)![1]) * 1000);
    assert.deepEqual(waves(times).map((w) => w.length), [3, 3, 3], `3 waves of 3 (pool 2 + 1): ${times}`);
  });

  test('default routes: /sleep/node/ then /sleep/postgres/', async () => {
    const res = await runCli(['client', '2', '--url', server.url, '--seconds', '0']);
    assert.equal(res.code, 0, res.stderr);
    const sending = res.stdout.split('\n').filter((l) => l.startsWith('Sending'));
    assert.deepEqual(sending.map((l) => new URL(l.split(' ')[4]!.replace(/\.\.\.$/, '')).pathname), ['/sleep/node/', '/sleep/postgres/']);
  });

  test('--json prints one document with every request of every route', async () => {
    const res = await runCli(['client', '4', '--url', server.url, '--seconds', '0.1', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { n: number; routes: { route: string; requests: { startMs: number; endMs: number; status: number; error: null }[] }[] };
    assert.equal(doc.n, 4);
    assert.equal(doc.routes.length, 2);
    for (const r of doc.routes) {
      assert.equal(r.requests.length, 4);
      for (const q of r.requests) {
        assert.equal(q.status, 200);
        assert.equal(q.error, null);
        assert.ok(q.endMs - q.startMs >= 100);
      }
    }
  });

  test('errors are counted by kind: 503 from the pool timeout, with its message', async () => {
    const tight = await startServer({ DATABASE_URL: db, POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0', POOL_TIMEOUT: '0.2' });
    try {
      const res = await runCli(['client', '3', '--url', tight.url, '--route', '/sleep/postgres/', '--seconds', '0.5']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /1 ok, 2 errors/);
      assert.match(res.stdout, /\t2 x HTTP 503: QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0\.20/);
    } finally {
      await tight.stop();
    }
  });

  test('above 50 requests: the summary and a per-second wave view, not every line', async () => {
    const res = await runCli(['client', '60', '--url', server.url, '--route', '/sleep/node/', '--seconds', '0.2']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, /got response/);
    assert.match(res.stdout, /\/sleep\/node\/: 60 ok, 0 errors/);
    assert.match(res.stdout, /responses per second: 0-1s:60/);
    const verbose = await runCli(['client', '60', '--url', server.url, '--route', '/sleep/node/', '--seconds', '0', '--verbose']);
    assert.equal(verbose.stdout.match(/got response \[200\]/g)?.length, 60);
  });

  test('N=1000 against /sleep/node/: the client does not serialize (all 1000 in about one sleep)', async () => {
    const res = await runCli(['client', '1000', '--url', server.url, '--route', '/sleep/node/', '--seconds', '1', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { routes: { totalMs: number; requests: { status: number }[] }[] };
    const route = doc.routes[0]!;
    assert.equal(route.requests.filter((r) => r.status === 200).length, 1000);
    assert.ok(route.totalMs < 3000, `1000 concurrent 1 s sleeps took ${route.totalMs} ms`);
  });

  test('a server that is not running: one clear line, exit 1', async () => {
    const res = await runCli(['client', '5', '--url', 'http://127.0.0.1:1']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr.trim(), 'Cannot connect to http://127.0.0.1:1: connection refused. Is the service running? Start it with: npm start');
  });

  test('bad arguments: one line naming the flag and what is accepted, exit 2', async () => {
    for (const [args, message] of [
      [['client', 'many'], 'Invalid N="many": expected an integer from 1 to 100000'],
      [['client', '5', '--seconds', 'x'], 'Invalid --seconds="x": expected a number from 0 to 60'],
      [['client', '5', '--route', 'sleep'], 'Invalid --route="sleep": expected a path starting with /'],
      [['client', '5', '--url', 'localhost'], 'Invalid --url="localhost": expected http://host:port'],
    ] as const) {
      const res = await runCli([...args]);
      assert.equal(res.code, 2, args.join(' '));
      assert.equal(res.stderr.trim(), message);
    }
  });

  describe('the HTML report', { skip: noBrowser }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    test('opens offline in Chromium and draws one bar per request', async () => {
      const file = join(tempDir(), 'report.html');
      const res = await runCli(['client', '12', '--url', server.url, '--seconds', '0.2', '--report', file]);
      assert.equal(res.code, 0, res.stderr);
      const page = await browser.newPage();
      const external: string[] = [];
      page.on('request', (r) => { if (!r.url().startsWith('file:')) external.push(r.url()); });
      await page.goto(`file://${file}`);
      await page.waitForFunction(() => (window as unknown as { reportReady?: boolean }).reportReady === true, undefined, { timeout: 10_000 });
      const bars = await page.evaluate(() => [...document.querySelectorAll('canvas.timeline')].map((c) => {
        const chart = (window as unknown as { Chart: { getChart(c: Element): { getDatasetMeta(i: number): { data: unknown[] } } } }).Chart.getChart(c);
        return chart.getDatasetMeta(0).data.length;
      }));
      assert.deepEqual(bars, [12, 12], 'one timeline per route, one bar per request');
      assert.deepEqual(external, [], 'the report loads nothing from the network');
      await page.close();
    });
  });
});

describe('demo', () => {
  // With PgBouncer (always in CI) the run includes scenario 6, beyond the ceiling.
  const scale = !noPgBouncer;
  test(`demo --quick${scale ? ' --scale' : ''} passes its own verdicts`, { timeout: 240_000 }, async () => {
    const demoDb = await freshDatabase();
    const res = await runCli(['demo', '--quick', ...(scale ? ['--scale'] : [])], { DATABASE_URL: demoDb, DATA_DIR: tempDir() });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    for (const title of ['1. Blocking server, blocking database', '2. Non-blocking server, blocking database',
      '3. Non-blocking server, non-blocking database', '4. The warning', '5. Past POOL_TIMEOUT', ...(scale ? ['6. Beyond the ceiling'] : [])]) {
      assert.ok(res.stdout.includes(`=== ${title}`), title);
    }
    assert.match(res.stdout, /responses per second: 1-2s:15 {2}2-3s:15 {2}3-4s:15 {2}4-5s:15 {2}5-6s:15 {2}6-7s:15 {2}7-8s:10/);
    assert.match(res.stdout, /15 x HTTP 503: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 2\.00/);
    if (scale) {
      assert.match(res.stdout, /exit code 2: Refusing to start: .* = 4 x \(5 \+ 10\) = 60 connections; PostgreSQL allows max_connections 20 - superuser_reserved_connections 3 = 17, and 60 > 17/);
      assert.match(res.stdout, /\/sleep\/postgres\/: 200 ok, 0 errors/);
      assert.match(res.stdout, /at most 15 running pg_sleep at once/);
    }
    assert.equal(res.stdout.match(/\| ok$/gm)?.length, scale ? 6 : 5, 'every verdict ok');
    assert.match(res.stdout, /Every scenario matched its expected figures\./);
  });
});
