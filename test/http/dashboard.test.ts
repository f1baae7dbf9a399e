// The dashboard's page and its live stream, without a browser (test/process/browser.test.ts has one).
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { freePort } from '../../src/os/net.ts';
import { build } from '../helper.ts';

/** The first Server-Sent Event of a stream, with the response's headers. */
function firstEvent (
  url: string,
  headers: Record<string, string> = {}
): Promise<{ headers: http.IncomingHttpHeaders; event: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('\n\n')) {
          req.destroy();
          resolve({ headers: res.headers, event: text.slice(0, text.indexOf('\n\n')) });
        }
      });
    });
    req.on('error', reject);
  });
}

describe('the dashboard', () => {
  test("the page names the monitor's port, and its policy lets it connect there and nowhere else", async (t) => {
    const { app } = await build(t);
    const port = await app.live.monitorPort();
    const page = await app.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.ok(page.body.includes(`<meta name="live-port" content="${port}">`));
    assert.ok(page.body.includes('<meta name="live-workers" content="1">'));
    const csp = page.headers['content-security-policy'] as string;
    assert.match(csp, new RegExp(`connect-src 'self' http://\\*:${port};`));
    assert.match(csp, /script-src 'self';/);
    // The policy is the same whatever the request says about itself; a Host header that tries to
    // add to it is refused before anything is built.
    assert.equal(
      (await app.inject({ url: '/', headers: { host: '127.0.0.1:8000' } })).headers['content-security-policy'],
      csp
    );
    const injected = await app.inject({ url: '/', headers: { host: "x; script-src * 'unsafe-inline'" } });
    assert.equal(injected.statusCode, 421);
    assert.doesNotMatch(String(injected.headers['content-security-policy']), /script-src \*/);
  });

  test('its files and Chart.js are served locally', async (t) => {
    const { app } = await build(t);
    for (const url of ['/dashboard/dashboard.js', '/dashboard/dashboard.css', '/assets/chart.umd.min.js']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.ok(res.body.length > 500, url);
    }
    assert.match(
      (await app.inject({ url: '/assets/chart.umd.min.js' })).headers['cache-control'] as string,
      /max-age=3600/
    );
  });

  test(
    'the live stream: a hello with the settings (no password), then frames; readable by pages of the allowed ' +
      'hosts only',
    async (t) => {
      const { app, db } = await build(t);
      const stream = `http://127.0.0.1:${await app.live.monitorPort()}/live/1/events`;
      const mine = await firstEvent(stream, { origin: 'http://localhost:8000' });
      assert.equal(mine.headers['content-type'], 'text/event-stream');
      assert.equal(mine.headers['access-control-allow-origin'], 'http://localhost:8000');
      assert.match(mine.event, /^event: hello\ndata: /);
      const hello = JSON.parse(mine.event.split('\ndata: ')[1]!) as {
        settings: Record<string, unknown>;
        recent: unknown[];
      };
      assert.equal(hello.settings.poolSize, 5);
      assert.ok(!mine.event.includes(new URL(db).password), 'the password is not in the stream');
      const theirs = await firstEvent(stream, { origin: 'http://evil.example' });
      assert.equal(theirs.headers['access-control-allow-origin'], undefined);
    }
  );

  test('the monitor answers only to the allowed host names, as the service does', async (t) => {
    const { app } = await build(t);
    const port = await app.live.monitorPort();
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/live/1/events', headers: { host: 'attacker.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject);
    });
    assert.equal(status, 421);
  });

  test(
    'LIVE_STREAM=proxy: the page reads the stream on its ' +
      'own origin, and its policy lets it connect there only',
    async (t) => {
      const { app } = await build(t, {
        settings: { LIVE_STREAM: 'proxy', MONITOR_PORT: String(await freePort()) },
      });
      const page = await app.inject({ url: '/' });
      assert.ok(page.body.includes('<meta name="live-port" content="">'));
      assert.match(page.headers['content-security-policy'] as string, /connect-src 'self';/);
      // The monitor serves only its own worker's paths.
      const port = await app.live.monitorPort();
      const other = await fetch(`http://127.0.0.1:${port}/live/2/events`);
      assert.equal(other.status, 404);
      assert.match(((await other.json()) as { message: string }).message, /\/live\/1\/events/);
    }
  );
});
