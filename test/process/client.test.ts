// `npm run client` (the built CLI) against the app, listening in the test process.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { waves } from '../../src/client/summary.ts';
import { spawnCli } from '../../src/harness/server-process.ts';
import { launchChromium, noBrowser } from '../browser.ts';
import { buildListening, runCli, tempDir } from '../helper.ts';

describe('the client', () => {
  test(
    "prints the original client.py's lines, then a summary; with a pool of 2 + 1, 9 sleeps of 1 s land in 3 waves " +
      'of 3',
    async (t) => {
      const { url } = await buildListening(t, { settings: { POOL_SIZE: '2', POOL_MAX_OVERFLOW: '1' } });
      const res = await runCli(['client', '9', '--url', url, '--route', '/sleep/postgres/', '--seconds', '1']);
      assert.equal(res.code, 0, res.stderr);
      const lines = res.stdout.trimEnd().split('\n');
      assert.equal(lines[0], `Sending 9 requests for ${url}/sleep/postgres/?seconds=1...`);
      const responses = lines.slice(1, 10);
      for (const l of responses) assert.match(l, /^\t@ [ \d]\d\.\d\ds got response \[200\]$/);
      assert.match(lines[10]!, /^\t= [ \d]\d\.\d\ds TOTAL$/);
      assert.equal(lines[11], '-'.repeat(42));
      assert.match(lines[12]!, /^SUM TOTAL = \d+\.\d\ds$/);
      assert.match(
        lines[13]!,
        /^\/sleep\/postgres\/: 9 ok, 0 errors; latency min \d\.\d\ds p50 \d\.\d\ds p90 \d\.\d\ds p99 \d\.\d\ds p99\.9 \d\.\d\ds max \d\.\d\ds \(n=9\)$/
      );
      const times = responses.map((l) => Number(/@\s+([\d.]+)s/.exec(l)![1]) * 1000);
      assert.deepEqual(
        waves(times, 500).map((w) => w.length),
        [3, 3, 3],
        `3 waves of 3: ${times}`
      );
    }
  );

  test(
    'the default routes, /sleep/node/ then /sleep/postgres/; --json prints every request of every route',
    async (t) => {
      const { url } = await buildListening(t);
      const res = await runCli(['client', '4', '--url', url, '--seconds', '0.1', '--json']);
      assert.equal(res.code, 0, res.stderr);
      const doc = JSON.parse(res.stdout) as {
        n: number;
        routes: { route: string; requests: { startMs: number; endMs: number; status: number; error: null }[] }[];
      };
      assert.equal(doc.n, 4);
      assert.deepEqual(
        doc.routes.map((r) => r.route),
        ['/sleep/node/', '/sleep/postgres/']
      );
      for (const r of doc.routes) {
        assert.equal(r.requests.length, 4);
        for (const q of r.requests) {
          assert.deepEqual([q.status, q.error], [200, null]);
          assert.ok(q.endMs - q.startMs >= 100);
        }
      }
    }
  );

  test("errors are counted by kind, with the server's message: 503 from the pool timeout", async (t) => {
    const { url } = await buildListening(t, {
      settings: { POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0', POOL_TIMEOUT: '0.5' },
    });
    const res = await runCli(['client', '3', '--url', url, '--route', '/sleep/postgres/', '--seconds', '2']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /1 ok, 2 errors/);
    assert.match(
      res.stdout,
      /\t2 x HTTP 503: QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0\.50/
    );
  });

  test('above 50 requests: the summary and the responses per second, not every line (unless --verbose)', async (t) => {
    const { url } = await buildListening(t);
    const res = await runCli(['client', '60', '--url', url, '--route', '/sleep/node/', '--seconds', '1']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, /got response/);
    assert.match(res.stdout, /\/sleep\/node\/: 60 ok, 0 errors/);
    assert.match(res.stdout, /responses per second: (1-2s:60|1-2s:\d+ {2}2-3s:\d+)$/m);
    const verbose = await runCli([
      'client',
      '60',
      '--url',
      url,
      '--route',
      '/sleep/node/',
      '--seconds',
      '0',
      '--verbose',
    ]);
    assert.equal(verbose.stdout.match(/got response \[200\]/g)?.length, 60);
  });

  test('N=1000: the client does not serialize: the service sees all 1000 in flight at once', async (t) => {
    const { app, url } = await buildListening(t);
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, app.live.gauges.inFlight()['/sleep/node/']);
    }, 20);
    const res = await runCli([
      'client',
      '1000',
      '--url',
      url,
      '--route',
      '/sleep/node/',
      '--seconds',
      '3',
      '--json',
    ]);
    clearInterval(sampler);
    assert.equal(res.code, 0, res.stderr);
    const route = (JSON.parse(res.stdout) as { routes: { requests: { status: number }[] }[] }).routes[0]!;
    assert.equal(route.requests.filter((r) => r.status === 200).length, 1000);
    assert.equal(most, 1000, 'the most requests the service had in flight at once');
  });

  test(
    'Ctrl-C: no more requests, those in flight get 2 s, then ' +
      'the summary and the report of what came back; exit 130',
    async (t) => {
      const { url } = await buildListening(t);
      const file = join(tempDir(), 'report.html');
      const child = spawnCli([
        'client',
        '10',
        '--url',
        url,
        '--route',
        '/sleep/node/',
        '--route',
        '/sleep/postgres/',
        '--seconds',
        '10',
        '--report',
        file,
      ]);
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
      });
      child.stderr!.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      while (!out.includes('Sending 10 requests')) await delay(50);
      await delay(500);
      const t0 = performance.now();
      child.kill('SIGINT');
      child.kill('SIGINT'); // npm's echo of the same Ctrl-C: not a second one
      assert.equal(await exited, 130, out);
      const ms = performance.now() - t0;
      assert.ok(ms >= 1900 && ms < 6000, `ended ${Math.round(ms)} ms after Ctrl-C`);
      assert.match(out, /Interrupted: no more requests are sent/);
      assert.doesNotMatch(out, /Sending 10 requests for .*\/sleep\/postgres\//, 'the second route was not started');
      assert.match(out, /\/sleep\/node\/: 0 ok, 10 errors/);
      assert.match(out, /\t10 x interrupted: abandoned after Ctrl-C, still in flight/);
      assert.match(out, /Report written to /);
      assert.ok(existsSync(file));
    }
  );

  test('a second Ctrl-C, after the first: exit at once', async (t) => {
    const { url } = await buildListening(t);
    const child = spawnCli(['client', '5', '--url', url, '--route', '/sleep/node/', '--seconds', '10']);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    while (!out.includes('Sending 5 requests')) await delay(50);
    child.kill('SIGINT');
    await delay(1200);
    const t0 = performance.now();
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    // At once, not when the 10 s sleeps end (with room for a busy machine's exit).
    assert.ok(
      performance.now() - t0 < 3000,
      `exited ${Math.round(performance.now() - t0)} ms after the second Ctrl-C`
    );
  });

  test('a service that is not running: one clear line, exit 1', async () => {
    const res = await runCli(['client', '5', '--url', 'http://127.0.0.1:1']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(
      res.stderr.trim(),
      'Cannot connect to http://127.0.0.1:1: connection refused. Is the service running? Start it with: npm start'
    );
  });

  test('bad arguments: one line naming the argument and what is accepted, exit 2', async () => {
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

    test('opens offline in Chromium and draws one bar per request', async (t) => {
      const { url } = await buildListening(t);
      const file = join(tempDir(), 'report.html');
      const res = await runCli(['client', '12', '--url', url, '--seconds', '0.2', '--report', file]);
      assert.equal(res.code, 0, res.stderr);
      const page = await browser.newPage();
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) external.push(r.url());
      });
      await page.goto(`file://${file}`);
      await page.waitForFunction(
        () => (window as unknown as { reportReady?: boolean }).reportReady === true,
        undefined,
        { timeout: 10_000 }
      );
      const bars = await page.evaluate(() =>
        [...document.querySelectorAll('canvas.timeline')].map((c) => {
          const chart = (
            window as unknown as {
              Chart: { getChart(c: Element): { getDatasetMeta(i: number): { data: unknown[] } } };
            }
          ).Chart.getChart(c);
          return chart.getDatasetMeta(0).data.length;
        })
      );
      assert.deepEqual(bars, [12, 12], 'one timeline per route, one bar per request');
      assert.deepEqual(external, [], 'the report loads nothing from the network');
      await page.close();
    });
  });
});
