// The Todo API and its input handling, over real sockets on a real PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DATABASE_PATHS, freshDatabase, request, sql, startServer, type Server } from './helpers.ts';

const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

// Every test here runs twice: straight to PostgreSQL, and through PgBouncer in transaction mode.
for (const path of DATABASE_PATHS) describe(path.label, { skip: path.skip }, () => {
  let db: string;
  let server: Server;

  before(async () => {
    db = await freshDatabase();
    server = await startServer({ DATABASE_URL: db, ...path.env() });
  });
  after(() => server?.stop());

  describe('Todo API', () => {
    test('create: 201 with Location, defaults filled in', async () => {
      const res = await request(server.url, 'POST', '/todos/', json({ title: 'write tests' }));
      assert.equal(res.status, 201);
      const todo = res.json as { id: number; title: string; done: boolean; priority: number };
      assert.deepEqual({ ...todo, id: 0 }, { id: 0, title: 'write tests', done: false, priority: 0 });
      assert.equal(res.headers.location, `/todos/${todo.id}`);
      const again = await request(server.url, 'GET', res.headers.location as string);
      assert.deepEqual(again.json, todo);
    });

    test('read, update any subset, delete; 404 for an unknown id', async () => {
      const created = (await request(server.url, 'POST', '/todos', json({ title: 'a', done: true, priority: 4 }))).json as { id: number };
      const id = created.id;
      assert.deepEqual((await request(server.url, 'PATCH', `/todos/${id}`, json({ priority: 2 }))).json, { id, title: 'a', done: true, priority: 2 });
      assert.deepEqual((await request(server.url, 'PATCH', `/todos/${id}`, json({ title: 'b', done: false }))).json, { id, title: 'b', done: false, priority: 2 });
      assert.deepEqual((await request(server.url, 'PATCH', `/todos/${id}`, json({}))).json, { id, title: 'b', done: false, priority: 2 });
      const del = await request(server.url, 'DELETE', `/todos/${id}`);
      assert.equal(del.status, 204);
      assert.equal(del.body, '');
      for (const [method, extra] of [['GET', {}], ['PATCH', json({ done: true })], ['DELETE', {}]] as const) {
        const res = await request(server.url, method, `/todos/${id}`, extra);
        assert.equal(res.status, 404, method);
        assert.deepEqual(res.json, { statusCode: 404, error: 'Not Found', code: 'TODO_NOT_FOUND', message: `todo ${id} does not exist` });
      }
    });

    test('list: ?done=, ?limit=, ?offset=, ordered by id', async () => {
      const all = (await request(server.url, 'GET', '/todos/')).json as { todos: { id: number; done: boolean }[] };
      const done = (await request(server.url, 'GET', '/todos/?done=true')).json as { todos: { id: number; done: boolean }[] };
      assert.ok(done.todos.length > 0 && done.todos.every((t) => t.done));
      assert.deepEqual(done.todos.map((t) => t.id), all.todos.filter((t) => t.done).map((t) => t.id));
      const page = (await request(server.url, 'GET', '/todos/?limit=3&offset=2')).json as { todos: { id: number }[] };
      assert.deepEqual(page.todos.map((t) => t.id), all.todos.slice(2, 5).map((t) => t.id));
    });

    test("SQL is parameterized: hostile titles are stored and read back unchanged", async () => {
      const titles = ["'); DROP TABLE todo; --", "Robert'); DELETE FROM todo WHERE ('1'='1", '$1 $2 \\ %s %%', '"; SELECT pg_sleep(10); --', 'ünïcødé ✓ 🐘'];
      for (const title of titles) {
        const created = await request(server.url, 'POST', '/todos/', json({ title }));
        assert.equal(created.status, 201, title);
        const id = (created.json as { id: number }).id;
        assert.equal(((await request(server.url, 'GET', `/todos/${id}`)).json as { title: string }).title, title);
      }
      const [row] = await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM todo');
      assert.ok(Number(row!.n) >= 50 + titles.length);
    });
  });

  describe('bad input: the right status, a JSON body naming the problem, nothing lost', () => {
    const big = 'x'.repeat(17 * 1024);
    const cases: { name: string; method: string; path: string; opts?: { 'content-type'?: string; body?: string }; status: number; field?: string }[] = [
      { name: 'empty title', method: 'POST', path: '/todos/', opts: json({ title: '' }), status: 400, field: 'title' },
      { name: 'title of 61 characters', method: 'POST', path: '/todos/', opts: json({ title: 'x'.repeat(61) }), status: 400, field: 'title' },
      { name: 'missing title', method: 'POST', path: '/todos/', opts: json({ done: true }), status: 400, field: 'title' },
      { name: 'title is a number', method: 'POST', path: '/todos/', opts: json({ title: 5 }), status: 400, field: 'title' },
      { name: 'title is null', method: 'POST', path: '/todos/', opts: json({ title: null }), status: 400, field: 'title' },
      { name: 'title is an array', method: 'POST', path: '/todos/', opts: json({ title: ['a'] }), status: 400, field: 'title' },
      { name: 'done is a string', method: 'POST', path: '/todos/', opts: json({ title: 'a', done: 'true' }), status: 400, field: 'done' },
      { name: 'done is 1', method: 'POST', path: '/todos/', opts: json({ title: 'a', done: 1 }), status: 400, field: 'done' },
      { name: 'priority 5', method: 'POST', path: '/todos/', opts: json({ title: 'a', priority: 5 }), status: 400, field: 'priority' },
      { name: 'priority -1', method: 'POST', path: '/todos/', opts: json({ title: 'a', priority: -1 }), status: 400, field: 'priority' },
      { name: 'priority 1.5', method: 'POST', path: '/todos/', opts: json({ title: 'a', priority: 1.5 }), status: 400, field: 'priority' },
      { name: 'priority as a string', method: 'POST', path: '/todos/', opts: json({ title: 'a', priority: '3' }), status: 400, field: 'priority' },
      { name: 'unknown field', method: 'POST', path: '/todos/', opts: json({ title: 'a', owner: 'me' }), status: 400, field: 'owner' },
      { name: 'id in the body', method: 'POST', path: '/todos/', opts: json({ id: 1, title: 'a' }), status: 400, field: 'id' },
      { name: 'body is an array', method: 'POST', path: '/todos/', opts: json([{ title: 'a' }]), status: 400 },
      { name: 'body is a string', method: 'POST', path: '/todos/', opts: json('a'), status: 400 },
      { name: 'malformed JSON', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/json', body: '{"title": ' }, status: 400 },
      { name: 'empty JSON body', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/json', body: '' }, status: 400 },
      { name: 'prototype pollution', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/json', body: '{"title":"a","__proto__":{"x":1}}' }, status: 400 },
      { name: 'no content type, no body', method: 'POST', path: '/todos/', status: 400 },
      { name: 'text/plain body', method: 'POST', path: '/todos/', opts: { 'content-type': 'text/plain', body: 'title=a' }, status: 415 },
      { name: 'form body', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/x-www-form-urlencoded', body: 'title=a' }, status: 415 },
      { name: 'XML body', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/xml', body: '<title>a</title>' }, status: 415 },
      { name: 'body over 16 KiB', method: 'POST', path: '/todos/', opts: { 'content-type': 'application/json', body: JSON.stringify({ title: big }) }, status: 413 },
      { name: 'PATCH with a bad priority', method: 'PATCH', path: '/todos/1', opts: json({ priority: 9 }), status: 400, field: 'priority' },
      { name: 'PATCH with an empty title', method: 'PATCH', path: '/todos/1', opts: json({ title: '' }), status: 400, field: 'title' },
      { name: 'PATCH with an unknown field', method: 'PATCH', path: '/todos/1', opts: json({ colour: 'red' }), status: 400, field: 'colour' },
      { name: 'id is not a number', method: 'GET', path: '/todos/abc', status: 400, field: 'id' },
      { name: 'id is zero', method: 'GET', path: '/todos/0', status: 400, field: 'id' },
      { name: 'id is negative', method: 'DELETE', path: '/todos/-4', status: 400, field: 'id' },
      { name: 'id beyond int4', method: 'GET', path: '/todos/99999999999', status: 400, field: 'id' },
      { name: 'id is a fraction', method: 'PATCH', path: '/todos/1.5', opts: json({ done: true }), status: 400, field: 'id' },
      { name: 'limit 0', method: 'GET', path: '/todos/?limit=0', status: 400, field: 'limit' },
      { name: 'limit 501', method: 'GET', path: '/todos/?limit=501', status: 400, field: 'limit' },
      { name: 'offset -1', method: 'GET', path: '/todos/?offset=-1', status: 400, field: 'offset' },
      { name: 'done=maybe', method: 'GET', path: '/todos/?done=maybe', status: 400, field: 'done' },
      { name: 'seconds=-1', method: 'GET', path: '/sleep/postgres/?seconds=-1', status: 400, field: 'seconds' },
      { name: 'seconds=61', method: 'GET', path: '/sleep/node/?seconds=61', status: 400, field: 'seconds' },
      { name: 'seconds=NaN', method: 'GET', path: '/sleep/node/?seconds=NaN', status: 400, field: 'seconds' },
      { name: 'seconds=Infinity', method: 'GET', path: '/sleep/postgres/?seconds=Infinity', status: 400, field: 'seconds' },
      { name: 'unknown route', method: 'GET', path: '/nope', status: 404 },
      { name: 'unknown method on a route', method: 'PUT', path: '/todos/1', opts: json({ title: 'a' }), status: 404 },
    ];

    let countBefore: number;
    before(async () => {
      countBefore = Number((await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM todo'))[0]!.n);
    });

    for (const c of cases) {
      test(`${c.method} ${c.path.slice(0, 40)}: ${c.name} -> ${c.status}`, async () => {
        const res = await request(server.url, c.method, c.path, c.opts);
        assert.equal(res.status, c.status, res.body);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        const body = res.json as { statusCode: number; error: string; message: string; field?: string };
        assert.equal(body.statusCode, c.status);
        assert.equal(typeof body.message, 'string');
        assert.ok(body.message.length > 0);
        if (c.field) assert.equal(body.field, c.field, body.message);
        assert.doesNotMatch(res.body, /\bat .*\.(ts|js):\d+/, 'no stack trace');
      });
    }

    test(`after all ${cases.length} bad requests nothing changed and /todos/ still serves`, async () => {
      assert.ok(cases.length >= 30);
      const countAfter = Number((await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM todo'))[0]!.n);
      assert.equal(countAfter, countBefore);
      const res = await request(server.url, 'GET', '/todos/');
      assert.equal(res.status, 200);
      assert.equal((res.json as { todos: unknown[] }).todos.length, countBefore);
    });
  });

  describe('security basics', () => {
    test('security headers are set and CORS is off', async () => {
      const res = await request(server.url, 'GET', '/todos/', { headers: { origin: 'https://evil.example' } });
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.ok(res.headers['content-security-policy']);
      assert.ok(res.headers['strict-transport-security'] !== undefined || res.headers['x-frame-options'] !== undefined);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['x-powered-by'], undefined);
    });

    test('listens on 127.0.0.1 by default', () => {
      assert.match(server.output(), /Listening on http:\/\/127\.0\.0\.1:\d+/);
    });

    test('the banner names the way to PostgreSQL', () => {
      assert.match(server.output(), path.banner);
    });
  });
});
