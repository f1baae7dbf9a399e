// The OpenAPI document is the contract: a validator from npm passes it, its schemas are shared
// and its headers documented, every real answer of every operation matches what it says, and a
// client generated from it (openapi-typescript + openapi-fetch) compiles and runs the Todo CRUD.
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { KINDS } from '../../src/loop/catalog.ts';
import { ERROR_CODES } from '../../src/app/http-schemas.ts';
import { build, buildListening, ROOT, sql, tempDir, until } from '../helper.ts';

type Schema = Record<string, unknown>;
interface Answer {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: Schema }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, Answer>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, Schema>;
    headers: Record<string, unknown>;
    responses: Record<string, Answer>;
  };
}

const documentOf = async (app: FastifyInstance) => (await app.inject({ url: '/openapi.json' })).json<Document>();
const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ name: `${method} ${path}`, op }))
  );

describe('the OpenAPI document', () => {
  test(
    'a validator from npm passes it; every operation has its own operationId, a summary, a tag and a description ' +
      'of every answer',
    async (t) => {
      const { app } = await build(t);
      const doc = await documentOf(app);
      assert.match(doc.openapi, /^3\./);
      const result = await new Validator().validate(doc as never);
      assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1)?.slice(0, 2000));
      const ids = operations(doc).map(({ op }) => op.operationId);
      assert.ok(
        ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)),
        JSON.stringify(ids)
      );
      assert.equal(new Set(ids).size, ids.length, 'unique');
      for (const { name, op } of operations(doc)) {
        assert.ok(op.summary && op.summary.length > 10, `${name}: summary`);
        assert.ok(op.tags?.length, `${name}: tag`);
        for (const [status, answer] of Object.entries(op.responses)) {
          assert.ok(
            answer.description && answer.description !== 'Default Response',
            `${name} ${status}: description`
          );
        }
      }
      for (const hidden of ['/metrics', '/', '/openapi.json']) assert.equal(doc.paths[hidden], undefined, hidden);
      assert.equal((await app.inject({ url: '/docs/' })).statusCode, 200);
    }
  );

  test('shared schemas, one error schema with one family of codes, and the headers the answers carry', async (t) => {
    const { app } = await build(t);
    const doc = await documentOf(app);
    assert.deepEqual(Object.keys(doc.components.schemas).sort(), [
      'Error',
      'LeakResult',
      'PoolStats',
      'Servers',
      'Status',
      'ThreadPoolTimes',
      'Todo',
      'TodoCreate',
      'TodoList',
      'TodoPatch',
      'WorkDone',
      'WorkResult',
      'WorkSliced',
    ]);
    assert.deepEqual(
      (doc.components.schemas.Error!.properties as Record<string, Schema>).code!.enum,
      Object.keys(ERROR_CODES)
    );
    const expected: Record<string, string[]> = {
      'get /sleep/node/': ['200', '400', '421', '503', '504'],
      'get /sleep/postgres/': ['200', '400', '421', '503', '504'],
      'get /leak/': ['200', '400', '421', '503', '504'],
      'get /todos/': ['200', '400', '421', '503', '504'],
      'post /todos/': ['201', '400', '413', '415', '421', '503', '504'],
      'get /todos/{id}': ['200', '400', '404', '421', '503', '504'],
      'patch /todos/{id}': ['200', '400', '404', '413', '415', '421', '503', '504'],
      'delete /todos/{id}': ['204', '400', '404', '421', '503', '504'],
      'get /readyz': ['200', '421', '503'],
    };
    for (const { name, op } of operations(doc)) {
      if (expected[name]) assert.deepEqual(Object.keys(op.responses).sort(), expected[name], name);
      // Every JSON body, asked or answered, is a named schema.
      for (const content of [op.requestBody?.content, ...Object.values(op.responses).map((a) => a.content)]) {
        const schema = content?.['application/json']?.schema;
        if (schema) {
          assert.match(
            String(schema.$ref),
            /^#\/components\/schemas\/\w+$/,
            `${name}: ${JSON.stringify(schema).slice(0, 80)}`
          );
        }
      }
      for (const [status, answer] of Object.entries(op.responses)) {
        const ref = answer.content?.['application/json']?.schema.$ref;
        if (Number(status) >= 400 && name !== 'get /readyz') {
          assert.equal(ref, '#/components/schemas/Error', `${name} ${status}`);
        }
        if (status === '503' && name !== 'get /readyz') {
          assert.ok(answer.headers?.['Retry-After'], `${name} 503: Retry-After`);
        }
      }
    }
    assert.ok(doc.paths['/todos/']!.post!.responses['201']!.headers?.Location, '201: Location');
    assert.ok(doc.components.responses.MethodNotAllowed!.headers?.Allow, '405: Allow');
    // A body field is required only if the server requires it.
    assert.deepEqual(doc.components.schemas.TodoCreate!.required, ['title']);
    // docs/api.md lists every code, with its status.
    const documented = [
      ...readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8').matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm),
    ].map((m) => m[1]);
    assert.deepEqual(documented, Object.keys(ERROR_CODES));
  });

  test("every operation's real answers, success and error, match the schema and headers it documents", async (t) => {
    const { app, db } = await build(t);
    const tight = (await build(t, { db, settings: { STATEMENT_TIMEOUT: '0.2' } })).app;
    const busy = (await build(t, { db, settings: { POOL_SIZE: '1', POOL_MAX_OVERFLOW: '0', POOL_QUEUE_MAX: '0' } }))
      .app;
    const doc = await documentOf(app);
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addSchema({ components: doc.components }, 'doc');
    // The document's references, as Ajv finds them in the schema added as 'doc'.
    const compile = (schema: Schema) =>
      ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) as Schema);
    const answered = new Set<string>();

    const check = async (
      instance: FastifyInstance,
      name: string,
      request: { method?: string; url: string; payload?: unknown; headers?: Record<string, string> },
      status: number
    ) => {
      const [method, path] = name.split(' ') as [string, string];
      const res = await instance.inject({
        method: (request.method ?? method.toUpperCase()) as 'GET',
        url: request.url,
        payload: request.payload as string,
        headers: request.headers,
      });
      assert.equal(res.statusCode, status, `${name} ${request.url}: ${res.body.slice(0, 300)}`);
      const answer = doc.paths[path]![method]!.responses[String(status)];
      assert.ok(answer, `${name}: ${status} is documented`);
      const schema = answer.content?.['application/json']?.schema;
      if (schema) {
        const validate = compile(schema);
        assert.ok(
          validate(res.json()),
          `${name} ${status}: ${ajv.errorsText(validate.errors)}: ${res.body.slice(0, 300)}`
        );
      } else {
        assert.equal(res.body, '', `${name} ${status}: no body documented`);
      }
      // X-Read-After comes only with replicas (test/process/replicas.test.ts); this app has none. Link only
      // when there is a next page (test/http/todos.test.ts).
      const sometimes = ['X-Read-After', 'Link'];
      for (const header of Object.keys(answer.headers ?? {}).filter((h) => !sometimes.includes(h))) {
        assert.ok(res.headers[header.toLowerCase()] !== undefined, `${name} ${status}: ${header}`);
      }
      answered.add(`${name} ${status}`);
    };
    const json = (body: unknown) => ({
      payload: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });

    // Every operation's success.
    for (const route of ['/sleep/node/', '/sleep/python/', '/sleep/postgres/']) {
      await check(app, `get ${route}`, { url: `${route}?seconds=0` }, 200);
    }
    await check(app, 'get /todos/', { url: '/todos/?limit=3' }, 200);
    await check(app, 'get /todos/{id}', { url: '/todos/1' }, 200);
    await check(app, 'post /todos/', { url: '/todos/', ...json({ title: 'documented' }) }, 201);
    await check(app, 'patch /todos/{id}', { url: '/todos/1', ...json({ done: true }) }, 200);
    await check(app, 'delete /todos/{id}', { url: '/todos/2' }, 204);
    await check(app, 'get /work/postgres/', { url: '/work/postgres/?units=1000' }, 200);
    await check(app, 'get /leak/', { url: '/leak/?seconds=0' }, 200);
    for (const [kind, k] of Object.entries(KINDS)) {
      for (const way of ['block', 'offload']) {
        await check(app, `get /${way}/${kind}/`, { url: `/${way}/${kind}/?${k.param}=${k.min}` }, 200);
      }
    }
    await check(app, 'get /partition/cpu/', { url: '/partition/cpu/?ms=12&slice=5' }, 200);
    for (const route of ['/healthz', '/readyz', '/pool', '/servers', '/threadpool/']) {
      await check(app, `get ${route}`, { url: route }, 200);
    }
    const all = operations(doc)
      .map(({ name }) => name)
      .sort();
    assert.deepEqual(
      all.filter((name) => ![...answered].some((a) => a.startsWith(`${name} `))),
      [],
      'every operation was answered'
    );

    // Its errors, each with the error schema.
    await check(app, 'get /todos/{id}', { url: '/todos/abc' }, 400);
    await check(app, 'get /todos/{id}', { url: '/todos/999999' }, 404);
    await check(app, 'patch /todos/{id}', { url: '/todos/999999', ...json({ done: true }) }, 404);
    await check(app, 'delete /todos/{id}', { url: '/todos/999999' }, 404);
    await check(app, 'post /todos/', { url: '/todos/', ...json({ title: '' }) }, 400);
    await check(
      app,
      'post /todos/',
      { url: '/todos/', payload: '{"title":', headers: { 'content-type': 'application/json' } },
      400
    );
    await check(app, 'post /todos/', { url: '/todos/', ...json({ title: 'x'.repeat(20_000) }) }, 413);
    await check(
      app,
      'post /todos/',
      { url: '/todos/', payload: 'title=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      415
    );
    await check(app, 'get /todos/', { url: '/todos/', headers: { host: 'attacker.example' } }, 421);
    await check(app, 'get /block/cpu/', { url: '/block/cpu/?ms=0' }, 400);
    await check(app, 'get /leak/', { url: '/leak/?seconds=61' }, 400);
    await check(tight, 'get /sleep/postgres/', { url: '/sleep/postgres/?seconds=1' }, 504);
    // One request holds the only connection; the next is refused at once (POOL_QUEUE_MAX=0).
    const holding = busy.inject({ url: '/sleep/postgres/?seconds=2' });
    await until(
      'the only connection in use',
      async () => (await busy.inject({ url: '/pool' })).json<{ inUse: number }>().inUse === 1
    );
    await check(busy, 'get /todos/', { url: '/todos/' }, 503);
    assert.equal((await holding).statusCode, 200);

    // Answers of no operation: the error schema too; a 405 as components/responses says.
    const errorSchema = compile({ $ref: '#/components/schemas/Error' });
    const wrongMethod = await app.inject({ method: 'PUT', url: '/todos/' });
    assert.equal(wrongMethod.statusCode, 405);
    assert.ok(errorSchema(wrongMethod.json()) && wrongMethod.headers.allow === 'GET, HEAD, POST', wrongMethod.body);
    const noRoute = await app.inject({ url: '/nope' });
    assert.ok(noRoute.statusCode === 404 && errorSchema(noRoute.json()), noRoute.body);
    await sql(db, 'DROP TABLE todo');
    const failed = await app.inject({ url: '/todos/1' });
    assert.ok(failed.statusCode === 500 && errorSchema(failed.json()), failed.body);
  });

  test(
    'a client generated from it (openapi-typescript, openapi-fetch) compiles, refuses a wrong field, and runs the ' +
      'Todo CRUD',
    async (t: TestContext) => {
      const { app, url } = await buildListening(t);
      const dir = tempDir('anp-client-');
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      // defaultNonNullable: false, as docs/api.md says: by default openapi-typescript makes a field
      // with a default required, in request bodies too, and the server requires only the title.
      writeFileSync(
        join(dir, 'api.ts'),
        astToString(await openapiTS(JSON.stringify(await documentOf(app)), { defaultNonNullable: false }))
      );
      writeFileSync(join(dir, 'crud.ts'), CRUD);
      writeFileSync(join(dir, 'wrong.ts'), WRONG);
      const diagnostics = (file: string) => {
        const options = {
          strict: true,
          noEmit: true,
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.NodeNext,
          moduleResolution: ts.ModuleResolutionKind.NodeNext,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          types: [],
        };
        const program = ts.createProgram([join(dir, file)], options);
        return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      };
      const crudErrors = diagnostics('crud.ts');
      assert.deepEqual(
        crudErrors,
        [],
        `the CRUD program type-checks against the generated types:\n${crudErrors.join('\n')}`
      );
      const wrong = diagnostics('wrong.ts');
      assert.ok(
        wrong.some((m) => /titel/.test(m)),
        `a misspelled field is a type error: ${wrong.join('\n')}`
      );
      const { crud } = (await import(pathToFileURL(join(dir, 'crud.ts')).href)) as {
        crud(baseUrl: string): Promise<string[]>;
      };
      assert.deepEqual(await crud(url), [
        '201 done=false priority=0',
        '200 Todo from the generated client',
        '200 done=true',
        '200 listed 51 in 3 pages',
        '204',
        '404 TODO_NOT_FOUND',
      ]);
    }
  );
});

/** The Todo CRUD, written against the generated types as a user of the API would. */
const CRUD = `import createClient from 'openapi-fetch';
import type { components, paths } from './api.ts';

type Todo = components['schemas']['Todo'];
type ErrorCode = components['schemas']['Error']['code'];

export async function crud (baseUrl: string): Promise<string[]> {
  const client = createClient<paths>({ baseUrl });
  const seen: string[] = [];
  const created = await client.POST('/todos/', { body: { title: 'Todo from the generated client' } });
  if (!created.data) throw new Error('not created: ' + created.response.status);
  const todo: Todo = created.data;
  if (created.response.headers.get('location') !== '/todos/' + todo.id) throw new Error('no Location');
  seen.push(created.response.status + ' done=' + todo.done + ' priority=' + todo.priority);
  const path = { params: { path: { id: todo.id } } };
  const read = await client.GET('/todos/{id}', path);
  seen.push(read.response.status + ' ' + read.data?.title);
  const changed = await client.PATCH('/todos/{id}', { ...path, body: { done: true } });
  seen.push(changed.response.status + ' done=' + changed.data?.done);
  // Every page, each from the cursor the last one's Link header names.
  const listed: Todo[] = [];
  let pages = 0;
  for (let after: number | undefined; pages === 0 || after !== undefined; pages++) {
    const page = await client.GET('/todos/', { params: { query: { limit: 20, after } } });
    if (!page.data) throw new Error('no page: ' + page.response.status);
    listed.push(...page.data.todos);
    const next = /[?&]after=(\\d+)/.exec(page.response.headers.get('link') ?? '');
    after = next ? Number(next[1]) : undefined;
  }
  if (!listed.some((t) => t.id === todo.id && t.done)) throw new Error('not listed');
  seen.push('200 listed ' + listed.length + ' in ' + pages + ' pages');
  const deleted = await client.DELETE('/todos/{id}', path);
  seen.push(String(deleted.response.status));
  const gone = await client.GET('/todos/{id}', path);
  const code: ErrorCode | undefined = gone.error?.code;
  seen.push(gone.response.status + ' ' + code);
  return seen;
}
`;

/** A field the document does not have: the generated types must refuse it. */
const WRONG = `import createClient from 'openapi-fetch';
import type { paths } from './api.ts';

const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:1' });
export const wrong = client.POST('/todos/', { body: { titel: 'misspelled' } });
`;
