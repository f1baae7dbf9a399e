// Real consumers of pg.Pool, from npm, given this Pool instead, as the packed tarball holds it:
// Kysely, drizzle-orm's node-postgres driver, @fastify/postgres (its `pg` option),
// connect-pg-simple (express-session's store), graphile-worker (a connection kept for LISTEN)
// and pg-boss (through its `db.executeSql`). Each runs queries and a transaction, or its job.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { pack } from '../packed.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

const { Pool } = (await import(pack().entry)) as typeof import('../../src/index.ts');

let url: string;
before(async () => {
  url = await postgresUrl();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(
    'DROP TABLE IF EXISTS pgqp_item; CREATE TABLE pgqp_item (id serial PRIMARY KEY, name text NOT NULL)'
  );
  await admin.end();
});

const newPool = () => {
  return endAfter(new Pool({ connectionString: url, size: 2, maxOverflow: 2 }));
};

describe('drop-in for pg.Pool', () => {
  test('Kysely (PostgresDialect): queries and a transaction that commits and one that rolls back', async () => {
    const { Kysely, PostgresDialect, sql } = await import('kysely');
    interface Db {
      pgqp_item: { id: number; name: string };
    }
    const pool = newPool();
    const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
    await db
      .insertInto('pgqp_item')
      .values({ name: 'kysely' } as never)
      .execute();
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('pgqp_item')
        .values({ name: 'kysely-trx' } as never)
        .execute();
    });
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('pgqp_item')
          .values({ name: 'kysely-rolled-back' } as never)
          .execute();
        throw new Error('roll back');
      })
    );
    const names = (
      await db.selectFrom('pgqp_item').select('name').where('name', 'like', 'kysely%').orderBy('id').execute()
    ).map((r) => r.name);
    assert.deepEqual(names, ['kysely', 'kysely-trx']);
    assert.equal((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows[0]!.one, 1);
    // Kysely's destroy() ends the pool it was given.
    await db.destroy();
    assert.equal(pool.ended, true);
    assert.equal(pool.stats().acquired >= 5, true);
  });

  test('drizzle-orm (node-postgres): queries and a transaction', async () => {
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { pgTable, serial, text } = await import('drizzle-orm/pg-core');
    const { like } = await import('drizzle-orm');
    const item = pgTable('pgqp_item', { id: serial('id').primaryKey(), name: text('name').notNull() });
    const pool = newPool();
    const db = drizzle({ client: pool as unknown as pg.Pool });
    await db.insert(item).values({ name: 'drizzle' });
    await db.transaction(async (tx) => {
      await tx.insert(item).values({ name: 'drizzle-trx' });
    });
    const rows = await db
      .select({ name: item.name })
      .from(item)
      .where(like(item.name, 'drizzle%'))
      .orderBy(item.id);
    assert.deepEqual(
      rows.map((r) => r.name),
      ['drizzle', 'drizzle-trx']
    );
    assert.ok(pool.stats().acquired >= 3);
    assert.equal(pool.inUseCount, 0);
  });

  test('@fastify/postgres with its pg option: fastify.pg.query and fastify.pg.transact', async () => {
    const { default: Fastify } = await import('fastify');
    const { default: fastifyPostgres } = await import('@fastify/postgres');
    const app = Fastify();
    after(() => app.close());
    await app.register(fastifyPostgres, {
      connectionString: url,
      pg: { ...pg, Pool: Pool as unknown as typeof pg.Pool },
    });
    await app.ready();
    assert.equal(app.pg.pool.constructor.name, 'Pool');
    assert.ok(app.pg.pool instanceof Pool);
    const { rows } = await app.pg.query<{ n: number }>('SELECT 2 AS n');
    assert.equal(rows[0]!.n, 2);
    const inserted = await app.pg.transact(
      async (client) =>
        (await client.query<{ id: number }>("INSERT INTO pgqp_item (name) VALUES ('fastify') RETURNING id"))
          .rows[0]!.id
    );
    assert.ok(inserted > 0);
  });

  test("connect-pg-simple (express-session's store): a session set, read back, destroyed", async () => {
    const { default: session } = await import('express-session');
    type SessionData = import('express-session').SessionData;
    const { default: connectPgSimple } = await import('connect-pg-simple');
    const PgStore = connectPgSimple(session);
    const pool = newPool();
    const store = new PgStore({
      pool: pool as unknown as pg.Pool,
      createTableIfMissing: true,
      tableName: 'pgqp_session',
    });
    const call = <T>(fn: (cb: (err?: unknown, v?: T | null) => void) => void) =>
      new Promise<T | null | undefined>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
    const data = { cookie: { maxAge: 60_000, originalMaxAge: 60_000 }, user: 'ada' } as unknown as SessionData;
    await call((cb) => store.set('sid-1', data, cb));
    const back = await call<SessionData>((cb) => store.get('sid-1', cb));
    assert.equal((back as unknown as { user: string }).user, 'ada');
    await call((cb) => store.destroy('sid-1', cb));
    assert.equal((await call((cb) => store.get('sid-1', cb))) ?? null, null);
    store.close();
  });

  test(
    'graphile-worker: its runner keeps a connection for ' +
      'LISTEN; a job added is run at once, not at the next poll',
    async () => {
      const { run, quickAddJob } = await import('graphile-worker');
      const pool = endAfter(new Pool({ connectionString: url, size: 3, maxOverflow: 2 }));
      // graphile-worker asks for one: an idle connection's error must not crash the process.
      pool.on('error', () => {});
      let ran!: (payload: unknown) => void;
      const done = new Promise<unknown>((resolve) => {
        ran = resolve;
      });
      const runner = await run({
        pgPool: pool as unknown as pg.Pool,
        concurrency: 1,
        // Far past the test: only the NOTIFY on the kept connection can wake the worker in time.
        pollInterval: 60_000,
        noHandleSignals: true,
        logger: quietGraphileLogger(await import('graphile-worker')),
        taskList: {
          hello: async (payload) => {
            ran(payload);
          },
        },
      });
      try {
        const asked = performance.now();
        await quickAddJob({ pgPool: pool as unknown as pg.Pool }, 'hello', { name: 'ada' });
        assert.deepEqual(await done, { name: 'ada' });
        assert.ok(performance.now() - asked < 10_000, 'woken by NOTIFY');
        assert.ok(pool.inUseCount >= 1, 'the LISTEN connection stays checked out');
      } finally {
        await runner.stop();
      }
      // Its stop() resolves before the LISTEN connection's UNLISTEN has come back (seen on Node 24).
      for (const deadline = performance.now() + 5000; pool.inUseCount > 0 && performance.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(pool.inUseCount, 0, 'every connection given back');
    }
  );

  test('pg-boss (db.executeSql): its schema made, a job sent, fetched and completed', async () => {
    const { default: PgBoss } = await import('pg-boss');
    const pool = endAfter(new Pool({ connectionString: url, size: 2, maxOverflow: 2 }));
    const boss = new PgBoss({
      db: { executeSql: (text: string, values: unknown[]) => pool.query(text, values) },
      schema: 'pgqp_boss',
      supervise: false,
      schedule: false,
    });
    boss.on('error', (err) => assert.fail(err));
    await boss.start();
    try {
      await boss.createQueue('pgqp-jobs');
      const id = await boss.send('pgqp-jobs', { n: 7 });
      assert.ok(id);
      const [job] = await boss.fetch<{ n: number }>('pgqp-jobs');
      assert.equal(job!.id, id);
      assert.deepEqual(job!.data, { n: 7 });
      await boss.complete('pgqp-jobs', job!.id);
      assert.equal((await boss.getJobById('pgqp-jobs', id!))!.state, 'completed');
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }
    assert.equal(pool.inUseCount, 0);
    assert.ok(pool.stats().acquired >= 5);
  });
});

/** graphile-worker logs each job at info: only its warnings and errors, to the test's output. */
function quietGraphileLogger ({ Logger }: typeof import('graphile-worker')) {
  return new Logger(() => (level: string, message: string) => {
    if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`);
  });
}
