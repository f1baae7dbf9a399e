// What every answer carries: security headers, no CORS, JSON errors without internals.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, freshDatabase, sql } from '../helper.ts';

describe('answers', () => {
  test('security headers are set, CORS is off, the framework is not named', async (t) => {
    const { app } = await build(t);
    const res = await app.inject({ url: '/todos/', headers: { origin: 'https://evil.example' } });
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers['content-security-policy']);
    assert.ok(res.headers['x-frame-options']);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['x-powered-by'], undefined);
    const preflight = await app.inject({ method: 'OPTIONS', url: '/todos/', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  });

  test('an unknown route: 404 JSON naming it', async (t) => {
    const { app } = await build(t);
    const res = await app.inject({ url: '/nope?x=1' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { statusCode: 404, error: 'Not Found', code: 'NOT_FOUND', message: 'Route GET /nope not found' });
  });

  test('a failure the service did not expect (the table is gone): 500 with no detail; the detail goes to the log', async (t) => {
    const db = await freshDatabase({ seeded: true });
    const { app } = await build(t, { db });
    await sql(db, 'DROP TABLE todo');
    const res = await app.inject({ url: '/todos/' });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' });
  });
});

describe('the OpenAPI document', () => {
  test('/openapi.json is OpenAPI 3, generated from the route schemas; internal routes hidden; /docs served', async (t) => {
    const { app } = await build(t);
    const doc = (await app.inject({ url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    assert.match(doc.openapi, /^3\./);
    for (const path of ['/sleep/node/', '/sleep/python/', '/sleep/postgres/', '/todos/', '/todos/{id}', '/healthz', '/readyz', '/pool']) assert.ok(doc.paths[path], path);
    assert.deepEqual(Object.keys(doc.paths['/todos/']!).sort(), ['get', 'post']);
    assert.deepEqual(Object.keys(doc.paths['/todos/{id}']!).sort(), ['delete', 'get', 'patch']);
    for (const hidden of ['/metrics', '/', '/openapi.json']) assert.equal(doc.paths[hidden], undefined, hidden);
    const ui = await app.inject({ url: '/docs/' });
    assert.equal(ui.statusCode, 200);
    assert.match(ui.headers['content-type'] as string, /text\/html/);
  });
});
