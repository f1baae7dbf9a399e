// The Todo API through app.inject(), straight to PostgreSQL and through PgBouncer in transaction mode.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, DATABASE_PATHS, freshDatabase, json, sql, type Built } from '../helper.ts';

type Todo = { id: number; title: string; done: boolean; priority: number };

for (const path of DATABASE_PATHS) {
  describe(`Todo API, ${path.label}`, { skip: path.skip }, () => {
    const app = async (t: Parameters<typeof build>[0]): Promise<Built> => {
      const db = await freshDatabase({ seeded: true });
      const { url, settings } = await path.through(db);
      return build(t, { db, url, settings });
    };

    test('create: 201 with Location, the defaults filled in, and readable at once', async (t) => {
      const { app: a } = await app(t);
      const res = await a.inject({ method: 'POST', url: '/todos/', ...json({ title: 'write tests' }) });
      assert.equal(res.statusCode, 201);
      const todo = res.json<Todo>();
      assert.deepEqual({ ...todo, id: 0 }, { id: 0, title: 'write tests', done: false, priority: 0 });
      assert.ok(todo.id > 50);
      assert.equal(res.headers.location, `/todos/${todo.id}`);
      assert.deepEqual((await a.inject({ url: res.headers.location })).json(), todo);
    });

    test('read, update any subset, delete; 404 for an unknown id', async (t) => {
      const { app: a } = await app(t);
      const { id } = (
        await a.inject({ method: 'POST', url: '/todos', ...json({ title: 'a', done: true, priority: 4 }) })
      ).json<Todo>();
      const patch = async (body: unknown) =>
        (await a.inject({ method: 'PATCH', url: `/todos/${id}`, ...json(body) })).json();
      assert.deepEqual(await patch({ priority: 2 }), { id, title: 'a', done: true, priority: 2 });
      assert.deepEqual(await patch({ title: 'b', done: false }), { id, title: 'b', done: false, priority: 2 });
      assert.deepEqual(await patch({}), { id, title: 'b', done: false, priority: 2 });
      const del = await a.inject({ method: 'DELETE', url: `/todos/${id}` });
      assert.equal(del.statusCode, 204);
      assert.equal(del.body, '');
      for (const [method, extra] of [
        ['GET', {}],
        ['PATCH', json({ done: true })],
        ['DELETE', {}],
      ] as const) {
        const res = await a.inject({ method, url: `/todos/${id}`, ...extra });
        assert.equal(res.statusCode, 404, method);
        assert.deepEqual(res.json(), {
          statusCode: 404,
          error: 'Not Found',
          code: 'TODO_NOT_FOUND',
          message: `todo ${id} does not exist`,
        });
      }
    });

    test('list: ?done=, ?limit=, ?offset=, ordered by id', async (t) => {
      const { app: a } = await app(t);
      const list = async (q: string) => (await a.inject({ url: `/todos/${q}` })).json<{ todos: Todo[] }>().todos;
      const all = await list('?limit=500');
      const done = await list('?done=true');
      assert.equal(done.length, 25);
      assert.deepEqual(
        done.map((x) => x.id),
        all.filter((x) => x.done).map((x) => x.id)
      );
      assert.deepEqual(
        (await list('?done=false')).map((x) => x.id),
        all.filter((x) => !x.done).map((x) => x.id)
      );
      assert.deepEqual(
        (await list('?limit=3&offset=2')).map((x) => x.id),
        [3, 4, 5]
      );
      assert.deepEqual(await list('?offset=50'), []);
    });

    test('pages: 100 by default, 500 at most, a Link to the next; walked by its Links, each once', async (t) => {
      const { app: a, db } = await app(t);
      await sql(
        db,
        "INSERT INTO todo (title, done, priority) SELECT 'row ' || i, i % 3 = 0, 0 FROM generate_series(1, 250) i"
      );
      const page = async (url: string) => {
        const res = await a.inject({ url });
        assert.equal(res.statusCode, 200, res.body);
        const next = /^<([^>]+)>; rel="next"$/.exec(res.headers.link as string ?? '')?.[1];
        return { ids: res.json<{ todos: Todo[] }>().todos.map((x) => x.id), next, link: res.headers.link };
      };
      const first = await page('/todos/');
      assert.deepEqual(first.ids, Array.from({ length: 100 }, (_, i) => i + 1));
      assert.equal(first.link, '</todos/?after=100&limit=100>; rel="next"');
      // The original's routes answer the same first page, with the same Link.
      for (const route of ['/sleep/node/', '/sleep/postgres/']) {
        assert.deepEqual(await page(`${route}?seconds=0`), first, route);
      }
      assert.equal((await page('/todos/?limit=500')).ids.length, 300);
      assert.equal((await page('/todos/?limit=500')).link, undefined, 'the last page names no next');
      assert.equal((await page('/todos/?limit=300')).link, undefined, 'a page that ends the list exactly');
      assert.deepEqual((await page('/todos/?after=298')).ids, [299, 300]);
      assert.deepEqual((await page('/todos/?after=300')).ids, []);
      assert.deepEqual((await page('/todos/?after=10&offset=2&limit=2')).ids, [13, 14]);
      assert.equal(
        (await page('/todos/?done=true&limit=5&offset=1')).link,
        `</todos/?done=true&after=${(await page('/todos/?done=true&limit=6')).ids[5]}&limit=5>; rel="next"`,
        'the next page keeps the filter and the size, and the cursor replaces the offset'
      );

      // Walked while todos are added and deleted: every todo there throughout is seen once, in order.
      const before = (await sql<{ id: number }>(db, 'SELECT id FROM todo WHERE done ORDER BY id')).map((r) => r.id);
      const deleted = new Set<number>();
      const seen: number[] = [];
      let url: string | undefined = '/todos/?done=true&limit=17';
      for (let i = 0; url; i++) {
        const { ids, next } = await page(url);
        seen.push(...ids);
        // Behind the cursor and ahead of it: a delete and a new done todo each time.
        const ahead = before.find((id) => id > (ids.at(-1) ?? 0) && !deleted.has(id));
        if (ahead) {
          deleted.add(ahead);
          await a.inject({ method: 'DELETE', url: `/todos/${ahead}` });
        }
        await a.inject({ method: 'POST', url: '/todos/', ...json({ title: `added ${i}`, done: true }) });
        url = next;
        assert.ok(i < 50, 'the walk ends');
      }
      assert.deepEqual([...seen].sort((x, y) => x - y), seen, 'in id order, none twice');
      assert.equal(new Set(seen).size, seen.length);
      const kept = before.filter((id) => !deleted.has(id));
      assert.deepEqual(kept.filter((id) => !seen.includes(id)), [], 'every todo kept was seen');
      assert.ok(seen.every((id) => !deleted.has(id)), 'none deleted before its page was read');
    });

    test('SQL is parameterized: hostile titles are stored and read back unchanged', async (t) => {
      const { app: a, db } = await app(t);
      const titles = [
        "'); DROP TABLE todo; --",
        "Robert'); DELETE FROM todo WHERE ('1'='1",
        '$1 $2 \\ %s %%',
        '"; SELECT pg_sleep(10); --',
        'ünïcødé ✓ 🐘',
      ];
      for (const title of titles) {
        const created = await a.inject({ method: 'POST', url: '/todos/', ...json({ title }) });
        assert.equal(created.statusCode, 201, title);
        assert.equal((await a.inject({ url: `/todos/${created.json<Todo>().id}` })).json<Todo>().title, title);
      }
      const [row] = await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM todo');
      assert.equal(row!.n, 50 + titles.length);
    });

    test('concurrent writes stay consistent: 40 creates and 40 updates at once', async (t) => {
      const { app: a, db } = await app(t);
      const created = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          a.inject({ method: 'POST', url: '/todos/', ...json({ title: `c${i}` }) })
        )
      );
      assert.ok(created.every((r) => r.statusCode === 201));
      assert.equal(new Set(created.map((r) => r.json<Todo>().id)).size, 40);
      const updated = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          a.inject({ method: 'PATCH', url: `/todos/${i + 1}`, ...json({ priority: 3 }) })
        )
      );
      assert.ok(updated.every((r) => r.statusCode === 200));
      const [row] = await sql<{ n: number; p: number }>(
        db,
        'SELECT count(*)::int AS n, count(*) FILTER (WHERE priority = 3)::int AS p FROM todo'
      );
      assert.deepEqual(row, { n: 90, p: 40 + 10 - 8 }); // 10 seeded todos had priority 3, 8 of them among ids 1-40
    });
  });
}
