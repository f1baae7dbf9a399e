// Real consumers of pg.Pool, from npm, given this Pool instead: Kysely (as this repository's
// service uses it), drizzle-orm's node-postgres driver, @fastify/postgres (its `pg` option) and
// connect-pg-simple (express-session's store). Each runs queries and a transaction, or its job.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Pool } from '../../src/index.ts';
import { endAfter, postgresUrl } from '../postgres.ts';

let url: string;
before(async () => {
  url = await postgresUrl();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS pgqp_item; CREATE TABLE pgqp_item (id serial PRIMARY KEY, name text NOT NULL)');
  await admin.end();
});

const newPool = () => {
  return endAfter(new Pool({ connectionString: url, size: 2, maxOverflow: 2 }));
};

describe('drop-in for pg.Pool', () => {
  test('Kysely (PostgresDialect): queries and a transaction that commits and one that rolls back', async () => {
    const { Kysely, PostgresDialect, sql } = await import('kysely');
    interface Db { pgqp_item: { id: number; name: string } }
    const pool = newPool();
    const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
    await db.insertInto('pgqp_item').values({ name: 'kysely' } as never).execute();
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('pgqp_item').values({ name: 'kysely-trx' } as never).execute();
    });
    await assert.rejects(db.transaction().execute(async (trx) => {
      await trx.insertInto('pgqp_item').values({ name: 'kysely-rolled-back' } as never).execute();
      throw new Error('roll back');
    }));
    const names = (await db.selectFrom('pgqp_item').select('name').where('name', 'like', 'kysely%').orderBy('id').execute()).map((r) => r.name);
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
    const rows = await db.select({ name: item.name }).from(item).where(like(item.name, 'drizzle%')).orderBy(item.id);
    assert.deepEqual(rows.map((r) => r.name), ['drizzle', 'drizzle-trx']);
    assert.ok(pool.stats().acquired >= 3);
    assert.equal(pool.inUseCount, 0);
  });

  test('@fastify/postgres with its pg option: fastify.pg.query and fastify.pg.transact', async () => {
    const { default: Fastify } = await import('fastify');
    const { default: fastifyPostgres } = await import('@fastify/postgres');
    const app = Fastify();
    after(() => app.close());
    await app.register(fastifyPostgres, { connectionString: url, pg: { ...pg, Pool: Pool as unknown as typeof pg.Pool } });
    await app.ready();
    assert.equal(app.pg.pool.constructor.name, 'Pool');
    assert.ok(app.pg.pool instanceof Pool);
    const { rows } = await app.pg.query<{ n: number }>('SELECT 2 AS n');
    assert.equal(rows[0]!.n, 2);
    const inserted = await app.pg.transact(async (client) => (await client.query<{ id: number }>("INSERT INTO pgqp_item (name) VALUES ('fastify') RETURNING id")).rows[0]!.id);
    assert.ok(inserted > 0);
  });

  test('connect-pg-simple (express-session\'s store): a session set, read back, destroyed', async () => {
    const { default: session } = await import('express-session');
    type SessionData = import('express-session').SessionData;
    const { default: connectPgSimple } = await import('connect-pg-simple');
    const PgStore = connectPgSimple(session);
    const pool = newPool();
    const store = new PgStore({ pool: pool as unknown as pg.Pool, createTableIfMissing: true, tableName: 'pgqp_session' });
    const call = <T>(fn: (cb: (err?: unknown, v?: T | null) => void) => void) => new Promise<T | null | undefined>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
    const data = { cookie: { maxAge: 60_000, originalMaxAge: 60_000 }, user: 'ada' } as unknown as SessionData;
    await call((cb) => store.set('sid-1', data, cb));
    const back = await call<SessionData>((cb) => store.get('sid-1', cb));
    assert.equal((back as unknown as { user: string }).user, 'ada');
    await call((cb) => store.destroy('sid-1', cb));
    assert.equal(await call((cb) => store.get('sid-1', cb)) ?? null, null);
    store.close();
  });
});
