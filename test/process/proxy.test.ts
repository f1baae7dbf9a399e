// The service behind Debian's nginx on one published port, configured as docs/operations.md
// says: probes, pages and API through it, and the dashboard's live stream too, which goes on
// while the event loop is blocked, with one worker and with two (the primary forwards then).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Browser } from 'playwright-core';
import { freePort } from '../../src/os/net.ts';
import { findProgram, stopProcess } from '../../src/os/processes.ts';
import { launchChromium, noBrowser } from '../browser.ts';
import { freshDatabase, get, onCleanup, ROOT, tempDir, until, withService, type Service } from '../helper.ts';

const NGINX = findProgram('nginx', ['-v']);
const noNginx = NGINX || process.env.CI ? false : 'nginx is not installed (apt-get install nginx); CI installs it';

/** The one ```nginx block of docs/operations.md: what the test runs is what an operator reads. */
function documented (): string {
  const doc = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const blocks = [...doc.matchAll(/```nginx\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, 'one nginx block in docs/operations.md');
  return blocks[0]!;
}

/**
 * nginx in the foreground with the documented server block, its ports swapped for the test's; stopped after the file.
 */
async function startNginx (ports: { listen: number; service: number; monitor: number }): Promise<string> {
  const block = documented();
  for (const needle of ['listen 80;', 'http://127.0.0.1:8000;', 'http://127.0.0.1:8001;']) {
    assert.ok(block.includes(needle), needle);
  }
  const server = block
    .replace('listen 80;', `listen 127.0.0.1:${ports.listen};`)
    .replace('http://127.0.0.1:8000;', `http://127.0.0.1:${ports.service};`)
    .replace('http://127.0.0.1:8001;', `http://127.0.0.1:${ports.monitor};`);
  const dir = tempDir('anp-nginx-');
  // Every path nginx writes is in the temporary folder; as root its workers run as nobody.
  const conf = `${process.getuid?.() === 0 ? 'user nobody nogroup;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${server}}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const nginx = spawn(
    NGINX ?? 'nginx',
    ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] }
  );
  let stderr = '';
  nginx.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  onCleanup(async () => {
    await stopProcess(nginx, 'SIGTERM', 5000);
  });
  const url = `http://127.0.0.1:${ports.listen}`;
  await until(
    `nginx listening (${stderr})`,
    async () => (await get(url, '/healthz').catch(() => undefined))?.status === 200,
    10_000
  );
  return url;
}

interface Frame {
  at: number;
  lagMs: number;
}

/** Reads a live stream's frames as they come (the hello first), until closed. */
function watch (url: string): { frames: Frame[]; hello: Promise<void>; close(): void } {
  const frames: Frame[] = [];
  let req: http.ClientRequest | undefined;
  const hello = new Promise<void>((resolve, reject) => {
    req = http.get(url, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode}`));
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          if (event.startsWith('event: hello')) resolve();
          if (event.startsWith('event: frame')) {
            frames.push({ at: Date.now(), lagMs: (JSON.parse(event.split('\ndata: ')[1]!) as Frame).lagMs });
          }
        }
      });
    });
    req.on('error', reject);
  });
  return { frames, hello, close: () => req?.destroy() };
}

/** A 2 s block of one worker's event loop, through the proxy; what each stream received meanwhile. */
async function blockWhileWatching (
  proxy: string,
  workers: number[]
): Promise<{ during: number[]; maxLag: number[] }> {
  const streams = workers.map((w) => watch(`${proxy}/live/${w}/events`));
  try {
    await Promise.all(streams.map((s) => s.hello));
    await delay(300);
    const sent = Date.now();
    const answer = get(proxy, '/block/cpu/?ms=2000');
    // From 0.3 s into the block to 0.3 s before its end.
    await delay(300);
    const from = Date.now();
    await delay(1400);
    const to = Date.now();
    const res = await answer;
    assert.equal(res.status, 200);
    assert.ok(Date.now() - sent >= 2000, 'the block lasted its 2 s');
    await delay(300);
    return {
      during: streams.map((s) => s.frames.filter((f) => f.at >= from && f.at <= to).length),
      maxLag: streams.map((s) => Math.max(0, ...s.frames.map((f) => f.lagMs))),
    };
  } finally {
    for (const s of streams) s.close();
  }
}

describe('behind nginx, on one published port (docs/operations.md)', { skip: noNginx }, () => {
  for (const workers of [1, 2]) {
    test(
      `WORKERS=${workers}: probes, the API and every worker's live stream through the proxy; the streams go on ` +
        'while an event loop is blocked',
      async () => {
        const db = await freshDatabase();
        const [port, monitor, listen] = [await freePort(), await freePort(), await freePort()];
        await withService(
          {
            DATABASE_URL: db,
            PORT: String(port),
            MONITOR_PORT: String(monitor),
            LIVE_STREAM: 'proxy',
            WORKERS: String(workers),
          },
          async (s: Service) => {
            const proxy = await startNginx({ listen, service: port, monitor });
            assert.equal((await get(proxy, '/readyz')).status, 200);
            assert.equal((await get(proxy, '/todos/?limit=2')).status, 200);
            const page = (await get(proxy, '/')).body;
            assert.ok(
              page.includes('<meta name="live-port" content="">'),
              'the page reads the stream on its own origin'
            );
            assert.ok(page.includes(`<meta name="live-workers" content="${workers === 1 ? '1' : '1,2'}">`));
            const ids = workers === 1 ? [1] : [1, 2];
            const { during, maxLag } = await blockWhileWatching(proxy, ids);
            // Frames come every 100 ms: about 14 in the 1.4 s watched, whatever the event loop does.
            for (const [i, n] of during.entries()) {
              assert.ok(n >= 5, `worker ${ids[i]}'s stream sent ${n} frames during the block`);
            }
            assert.ok(
              maxLag.some((lag) => lag >= 1000),
              `the stream showed the lag as it grew: ${maxLag.join(', ')} ms`
            );
            assert.ok(s.url);
          }
        );
      }
    );
  }

  describe('the dashboard, in Chromium, through the proxy', { skip: noBrowser }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    for (const workers of [1, 2]) {
      test(
        `WORKERS=${workers}: the page's frames keep coming ` +
          'while the event loop is blocked, and the block is named',
        async () => {
          const db = await freshDatabase();
          const [port, monitor, listen] = [await freePort(), await freePort(), await freePort()];
          await withService(
            {
              DATABASE_URL: db,
              PORT: String(port),
              MONITOR_PORT: String(monitor),
              LIVE_STREAM: 'proxy',
              WORKERS: String(workers),
            },
            async () => {
              const proxy = await startNginx({ listen, service: port, monitor });
              const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
              const errors: string[] = [];
              page.on('pageerror', (e) => errors.push(e.message));
              page.on('console', (m) => {
                if (m.type() === 'error') errors.push(m.text());
              });
              page.on('request', (r) => {
                if (!r.url().startsWith(proxy)) errors.push(`a request past the proxy: ${r.url()}`);
              });
              await page.goto(`${proxy}/`);
              type Seen = { dashboard: { frames: number; workers: Record<string, number> } };
              await page.waitForFunction(
                (n) => Object.keys((window as unknown as Seen).dashboard.workers).length === n,
                workers,
                { timeout: 10_000 }
              );
              await page.waitForFunction(
                () => !document.getElementById('blocks-note')!.textContent!.startsWith('Waiting'),
                undefined,
                { timeout: 10_000 }
              );
              const frames = () => page.evaluate(() => (window as unknown as Seen).dashboard.frames);
              const answer = get(proxy, '/block/cpu/?ms=2000');
              await delay(300);
              const before = await frames();
              await delay(1400);
              const during = (await frames()) - before;
              assert.equal((await answer).status, 200);
              assert.ok(during >= 5 * workers, `${during} frames reached the page during the block`);
              const named = async () =>
                (
                  await page.evaluate(() =>
                    [...document.querySelectorAll('#blocks tbody tr td:nth-child(4)')].map((td) => td.textContent)
                  )
                ).includes('GET /block/cpu/');
              await until('the block named on the page', named, 10_000);
              await page.close();
              assert.deepEqual(errors, []);
            }
          );
        }
      );
    }
  });
});
