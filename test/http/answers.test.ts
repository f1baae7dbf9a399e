// What every answer carries: security headers, no CORS, JSON errors without internals.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, buildListening, request, freshDatabase, sql } from '../helper.ts';

describe('answers', () => {
  test(
    "security headers: the API's few on JSON, helmet's full " +
      'set on pages; CORS is off, the framework is not named',
    async (t) => {
      const { app } = await build(t);
      const res = await app.inject({ url: '/todos/', headers: { origin: 'https://evil.example' } });
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
      assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin');
      for (const url of ['/nope', '/todos/abc']) {
        assert.equal(
          (await app.inject({ url })).headers['content-security-policy'],
          "default-src 'none'; frame-ancestors 'none'",
          url
        );
      }
      for (const url of ['/', '/docs/', '/dashboard/dashboard.js']) {
        const page = await app.inject({ url });
        assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN', url);
        assert.equal(page.headers['x-content-type-options'], 'nosniff', url);
        assert.match(String(page.headers['content-security-policy']), /default-src 'self'/, url);
      }
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['x-powered-by'], undefined);
      const preflight = await app.inject({
        method: 'OPTIONS',
        url: '/todos/',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    }
  );

  test('an unknown route: 404 JSON naming it', async (t) => {
    const { app } = await build(t);
    const res = await app.inject({ url: '/nope?x=1' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), {
      statusCode: 404,
      error: 'Not Found',
      code: 'NOT_FOUND',
      message: 'Route GET /nope not found',
    });
  });

  test(
    'a failure the service did not expect (the table is gone): 500 with no detail; the detail goes to the log',
    async (t) => {
      const db = await freshDatabase({ seeded: true });
      const { app } = await build(t, { db });
      await sql(db, 'DROP TABLE todo');
      const res = await app.inject({ url: '/todos/' });
      assert.equal(res.statusCode, 500);
      assert.deepEqual(res.json(), {
        statusCode: 500,
        error: 'Internal Server Error',
        code: 'INTERNAL_ERROR',
        message: 'Internal Server Error',
      });
    }
  );
});

describe('the hosts the service answers to (no DNS rebinding)', () => {
  test(
    'a request for another host name gets 421 and changes nothing; the loopback names and HOST are answered',
    async (t) => {
      const { app, db } = await build(t);
      const post = (host: string) =>
        app.inject({
          method: 'POST',
          url: '/todos/',
          headers: { host, 'content-type': 'application/json' },
          payload: '{"title":"rebound"}',
        });
      const refused = await post('attacker.example');
      assert.equal(refused.statusCode, 421);
      assert.deepEqual(refused.json(), {
        statusCode: 421,
        error: 'Misdirected Request',
        code: 'HOST_NOT_ALLOWED',
        message:
          'this service does not answer to that host name; it answers to 127.0.0.1, localhost, [::1] (ALLOWED_HOSTS)',
      });
      assert.equal((await post('attacker.example:8000')).statusCode, 421);
      assert.equal((await post('127.0.0.1.attacker.example')).statusCode, 421);
      assert.deepEqual(await sql(db, "SELECT count(*)::int AS n FROM todo WHERE title = 'rebound'"), [{ n: 0 }]);
      for (const host of ['127.0.0.1:8000', 'localhost', 'LOCALHOST:1234', '[::1]:8000']) {
        assert.equal((await post(host)).statusCode, 201, host);
      }
      // Every page and API route, the dashboard and the docs too.
      for (const url of ['/', '/docs/', '/todos/', '/pool', '/openapi.json']) {
        assert.equal((await app.inject({ url, headers: { host: 'attacker.example' } })).statusCode, 421, url);
      }
    }
  );

  test(
    'the probes and the scrape answer whatever the Host: as a probe sends it, by IP, over a real socket',
    async (t) => {
      const { url } = await buildListening(t);
      const { port } = new URL(url);
      for (const host of [`10.244.1.7:${port}`, '10.244.1.7', `[fd00::7]:${port}`]) {
        for (const path of ['/healthz', '/readyz', '/metrics']) {
          const res = await request(url, 'GET', path, { headers: { host } });
          assert.equal(res.status, 200, `${path} with Host: ${host}: ${res.body.slice(0, 200)}`);
        }
        // Pages and the API keep the allow-list.
        for (const path of ['/', '/todos/', '/pool']) {
          assert.equal(
            (await request(url, 'GET', path, { headers: { host } })).status,
            421,
            `${path} with Host: ${host}`
          );
        }
      }
      // A missing file under the dashboard's folder is a 404, not a 405.
      const missing = await request(url, 'GET', '/dashboard/nothing.js');
      assert.equal(missing.status, 404, missing.body);
    }
  );

  test('ALLOWED_HOSTS names them instead; * answers any', async (t) => {
    const { app } = await build(t, { settings: { ALLOWED_HOSTS: 'todo.example, 10.0.0.7' } });
    assert.equal((await app.inject({ url: '/pool', headers: { host: 'todo.example:8000' } })).statusCode, 200);
    assert.equal((await app.inject({ url: '/pool', headers: { host: '10.0.0.7' } })).statusCode, 200);
    assert.equal((await app.inject({ url: '/pool', headers: { host: 'localhost' } })).statusCode, 421);
    const any = await build(t, { settings: { ALLOWED_HOSTS: '*' } });
    assert.equal((await any.app.inject({ url: '/pool', headers: { host: 'whatever.example' } })).statusCode, 200);
  });

  test(
    "the page's policy lets the browser load /docs over plain " +
      'HTTP under any host name: no upgrade-insecure-requests',
    async (t) => {
      const { app } = await build(t);
      for (const url of ['/docs/', '/', '/todos/']) {
        assert.doesNotMatch(
          String((await app.inject({ url })).headers['content-security-policy']),
          /upgrade-insecure-requests/,
          url
        );
      }
    }
  );
});
