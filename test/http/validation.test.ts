// Bad input: the right status, a JSON body naming the problem, no stack trace, nothing written.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { build, freshDatabase, sql } from '../helper.ts';

const body = (value: unknown, type = 'application/json') => ({
  headers: { 'content-type': type },
  payload: typeof value === 'string' ? value : JSON.stringify(value),
});
const big = 'x'.repeat(17 * 1024);

type Case = {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  url: string;
  opts?: { headers?: Record<string, string>; payload?: string | Buffer };
  status: number;
  field?: string;
};

const cases: Case[] = [
  { name: 'empty title', method: 'POST', url: '/todos/', opts: body({ title: '' }), status: 400, field: 'title' },
  {
    name: 'title of 61 characters',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'x'.repeat(61) }),
    status: 400,
    field: 'title',
  },
  {
    name: 'missing title',
    method: 'POST',
    url: '/todos/',
    opts: body({ done: true }),
    status: 400,
    field: 'title',
  },
  {
    name: 'title is a number',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 5 }),
    status: 400,
    field: 'title',
  },
  {
    name: 'title is null',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: null }),
    status: 400,
    field: 'title',
  },
  {
    name: 'title is an array',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: ['a'] }),
    status: 400,
    field: 'title',
  },
  {
    name: 'done is a string',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', done: 'true' }),
    status: 400,
    field: 'done',
  },
  {
    name: 'done is 1',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', done: 1 }),
    status: 400,
    field: 'done',
  },
  {
    name: 'priority 5',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', priority: 5 }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'priority -1',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', priority: -1 }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'priority 1.5',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', priority: 1.5 }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'priority as a string',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', priority: '3' }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'unknown field',
    method: 'POST',
    url: '/todos/',
    opts: body({ title: 'a', owner: 'me' }),
    status: 400,
    field: 'owner',
  },
  {
    name: 'id in the body',
    method: 'POST',
    url: '/todos/',
    opts: body({ id: 1, title: 'a' }),
    status: 400,
    field: 'id',
  },
  { name: 'body is an array', method: 'POST', url: '/todos/', opts: body([{ title: 'a' }]), status: 400 },
  { name: 'body is a string', method: 'POST', url: '/todos/', opts: body('"a"'), status: 400 },
  { name: 'malformed JSON', method: 'POST', url: '/todos/', opts: body('{"title": '), status: 400 },
  { name: 'empty JSON body', method: 'POST', url: '/todos/', opts: body(''), status: 400 },
  {
    name: 'prototype pollution',
    method: 'POST',
    url: '/todos/',
    opts: body('{"title":"a","__proto__":{"x":1}}'),
    status: 400,
  },
  { name: 'no content type, no body', method: 'POST', url: '/todos/', status: 400 },
  { name: 'text/plain body', method: 'POST', url: '/todos/', opts: body('title=a', 'text/plain'), status: 415 },
  {
    name: 'form body',
    method: 'POST',
    url: '/todos/',
    opts: body('title=a', 'application/x-www-form-urlencoded'),
    status: 415,
  },
  {
    name: 'XML body',
    method: 'POST',
    url: '/todos/',
    opts: body('<title>a</title>', 'application/xml'),
    status: 415,
  },
  { name: 'body over 16 KiB', method: 'POST', url: '/todos/', opts: body({ title: big }), status: 413 },
  {
    name: 'PATCH with a bad priority',
    method: 'PATCH',
    url: '/todos/1',
    opts: body({ priority: 9 }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'PATCH with an empty title',
    method: 'PATCH',
    url: '/todos/1',
    opts: body({ title: '' }),
    status: 400,
    field: 'title',
  },
  {
    name: 'PATCH with an unknown field',
    method: 'PATCH',
    url: '/todos/1',
    opts: body({ colour: 'red' }),
    status: 400,
    field: 'colour',
  },
  { name: 'id is not a number', method: 'GET', url: '/todos/abc', status: 400, field: 'id' },
  { name: 'id is zero', method: 'GET', url: '/todos/0', status: 400, field: 'id' },
  { name: 'id is negative', method: 'DELETE', url: '/todos/-4', status: 400, field: 'id' },
  { name: 'id beyond int4', method: 'GET', url: '/todos/99999999999', status: 400, field: 'id' },
  {
    name: 'id is a fraction',
    method: 'PATCH',
    url: '/todos/1.5',
    opts: body({ done: true }),
    status: 400,
    field: 'id',
  },
  { name: 'limit 0', method: 'GET', url: '/todos/?limit=0', status: 400, field: 'limit' },
  { name: 'limit 501', method: 'GET', url: '/todos/?limit=501', status: 400, field: 'limit' },
  { name: 'offset -1', method: 'GET', url: '/todos/?offset=-1', status: 400, field: 'offset' },
  { name: 'done=maybe', method: 'GET', url: '/todos/?done=maybe', status: 400, field: 'done' },
  { name: 'seconds=-1', method: 'GET', url: '/sleep/postgres/?seconds=-1', status: 400, field: 'seconds' },
  { name: 'seconds=61', method: 'GET', url: '/sleep/node/?seconds=61', status: 400, field: 'seconds' },
  { name: 'seconds=NaN', method: 'GET', url: '/sleep/node/?seconds=NaN', status: 400, field: 'seconds' },
  {
    name: 'seconds=Infinity',
    method: 'GET',
    url: '/sleep/postgres/?seconds=Infinity',
    status: 400,
    field: 'seconds',
  },
  { name: 'seconds=abc', method: 'GET', url: '/sleep/node/?seconds=abc', status: 400, field: 'seconds' },
  { name: 'seconds=1e9', method: 'GET', url: '/sleep/node/?seconds=1e9', status: 400, field: 'seconds' },
  { name: 'seconds= (empty)', method: 'GET', url: '/sleep/node/?seconds=', status: 400, field: 'seconds' },
  { name: 'unknown route', method: 'GET', url: '/nope', status: 404 },
  // Text that cannot be stored as it came is refused, never changed.
  {
    name: 'a NUL character in a title',
    method: 'POST',
    url: '/todos/',
    opts: body('{"title":"a\\u0000b"}'),
    status: 400,
    field: 'title',
  },
  {
    name: 'a NUL character in a PATCH',
    method: 'PATCH',
    url: '/todos/1',
    opts: body('{"title":"\\u0000"}'),
    status: 400,
    field: 'title',
  },
  {
    name: 'a lone surrogate in a title',
    method: 'POST',
    url: '/todos/',
    opts: body('{"title":"a\\ud800"}'),
    status: 400,
    field: 'title',
  },
  {
    name: 'a lone low surrogate',
    method: 'POST',
    url: '/todos/',
    opts: body('{"title":"\\udc00a"}'),
    status: 400,
    field: 'title',
  },
  { name: 'a NUL in a key', method: 'POST', url: '/todos/', opts: body('{"title":"a","x\\u0000":1}'), status: 400 },
  {
    name: 'invalid UTF-8 bytes',
    method: 'POST',
    url: '/todos/',
    opts: {
      headers: { 'content-type': 'application/json' },
      payload: Buffer.concat([Buffer.from('{"title":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    },
    status: 400,
  },
  {
    name: 'invalid UTF-8 in a PATCH',
    method: 'PATCH',
    url: '/todos/1',
    opts: {
      headers: { 'content-type': 'application/json' },
      payload: Buffer.from([0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d]),
    },
    status: 400,
  },
  // Numbers in the URL: plain decimal digits (and a plain fraction for seconds), nothing else.
  { name: 'seconds=0x10', method: 'GET', url: '/sleep/node/?seconds=0x10', status: 400, field: 'seconds' },
  { name: 'seconds=%20 (blank)', method: 'GET', url: '/sleep/node/?seconds=%20', status: 400, field: 'seconds' },
  { name: 'seconds=.5', method: 'GET', url: '/sleep/postgres/?seconds=.5', status: 400, field: 'seconds' },
  { name: 'seconds=1e0', method: 'GET', url: '/sleep/postgres/?seconds=1e0', status: 400, field: 'seconds' },
  {
    name: 'seconds twice',
    method: 'GET',
    url: '/sleep/postgres/?seconds=1&seconds=2',
    status: 400,
    field: 'seconds',
  },
  { name: 'id 0x47', method: 'GET', url: '/todos/0x47', status: 400, field: 'id' },
  { name: 'id 71e0', method: 'GET', url: '/todos/71e0', status: 400, field: 'id' },
  { name: 'id +71', method: 'GET', url: '/todos/+71', status: 400, field: 'id' },
  { name: 'id %2071', method: 'DELETE', url: '/todos/%2071', status: 400, field: 'id' },
  { name: 'limit=0x5', method: 'GET', url: '/todos/?limit=0x5', status: 400, field: 'limit' },
  { name: 'done=1', method: 'GET', url: '/todos/?done=1', status: 400, field: 'done' },
  { name: 'done=TRUE', method: 'GET', url: '/todos/?done=TRUE', status: 400, field: 'done' },
  // A known path with another method: 405, with the methods it has.
  { name: 'PUT on a todo', method: 'PUT', url: '/todos/1', opts: body({ title: 'a' }), status: 405 },
  { name: 'DELETE on the list', method: 'DELETE', url: '/todos/', status: 405 },
  { name: 'POST on a sleep route', method: 'POST', url: '/sleep/postgres/', opts: body({}), status: 405 },
];

describe('bad input', () => {
  let db: string;
  let rowsBefore: unknown;
  const rows = () => sql(db, 'SELECT id, title, done, priority FROM todo ORDER BY id');
  before(async () => {
    db = await freshDatabase({ seeded: true });
    rowsBefore = await rows();
  });

  test('405 names the methods the path has (Allow)', async (t) => {
    const { app } = await build(t, { db });
    for (const [method, url, allow] of [
      ['PUT', '/todos/7', 'GET, HEAD, PATCH, DELETE'],
      ['DELETE', '/todos', 'GET, HEAD, POST'],
      ['POST', '/sleep/node/', 'GET, HEAD'],
    ] as const) {
      const res = await app.inject({ method, url });
      assert.equal(res.statusCode, 405, `${method} ${url}`);
      assert.equal(res.headers.allow, allow);
      assert.equal(res.json<{ code: string }>().code, 'METHOD_NOT_ALLOWED');
    }
  });

  test("413 names the limit, 415 the type it takes, each with a code of the service's own", async (t) => {
    const { app } = await build(t, { db });
    const tooBig = await app.inject({ method: 'POST', url: '/todos/', ...body({ title: big }) });
    assert.deepEqual(tooBig.json(), {
      statusCode: 413,
      error: 'Payload Too Large',
      code: 'BODY_TOO_LARGE',
      message: 'the body is larger than the limit of 16 KiB (16384 bytes)',
    });
    const notJson = await app.inject({
      method: 'POST',
      url: '/todos/',
      ...body('title=a', 'application/x-www-form-urlencoded'),
    });
    assert.deepEqual(notJson.json(), {
      statusCode: 415,
      error: 'Unsupported Media Type',
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message:
        'the body must be JSON, sent with Content-Type: application/json; got "application/x-www-form-urlencoded"',
    });
  });

  test(
    `${cases.length} bad requests: each its status, a JSON body naming the field, no stack trace; the table is ` +
      'unchanged',
    async (t) => {
      const { app } = await build(t, { db });
      for (const c of cases) {
        const res = await app.inject({ method: c.method, url: c.url, ...c.opts });
        const what = `${c.name}: ${c.method} ${c.url.slice(0, 40)}`;
        assert.equal(res.statusCode, c.status, `${what}: ${res.body}`);
        assert.match(res.headers['content-type'] as string, /^application\/json/, what);
        const b = res.json<{ statusCode: number; error: string; message: string; field?: string }>();
        assert.equal(b.statusCode, c.status, what);
        assert.ok(b.message.length > 0, what);
        assert.equal(b.field, c.field, `${what}: ${b.message}`);
        assert.doesNotMatch(res.body, /\bat .*\.(ts|js):\d+|node_modules|\/src\//, `${what}: no stack trace`);
      }
      assert.deepEqual(await rows(), rowsBefore);
      assert.equal((await app.inject({ url: '/todos/' })).json<{ todos: unknown[] }>().todos.length, 50);
    }
  );
});
