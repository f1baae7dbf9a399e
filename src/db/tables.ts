// The schema, its versioned migrations and the seed data.
import {
  Kysely,
  Migrator,
  NO_MIGRATIONS,
  PostgresDialect,
  sql,
  type Generated,
  type Migration,
} from '../vendor/kysely.ts';
import pg from 'pg';
import { UnreachableError } from './errors.ts';
import * as createTodo from './migrations/0001_create_todo.ts';

export interface TodoTable {
  id: Generated<number>;
  title: string;
  done: boolean;
  priority: number;
}

export interface Schema {
  todo: TodoTable;
}

export interface Todo {
  id: number;
  title: string;
  done: boolean;
  priority: number;
}

/** Add new migrations here, in order; never edit one that has shipped. */
const migrations: Record<string, Migration> = {
  '0001_create_todo': createTodo,
};

export const SEED_COUNT = 50;

export function seedRows (): Omit<Todo, 'id'>[] {
  return Array.from({ length: SEED_COUNT }, (_, i) => ({
    title: `Todo ${i}`,
    done: i % 2 === 0,
    priority: i % 5,
  }));
}

/** Runs `fn` with a short-lived single-connection Kysely (migrations are not request traffic). */
async function withAdmin<T> (
  url: string,
  connectTimeoutMs: number,
  fn: (db: Kysely<Schema>) => Promise<T>
): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: connectTimeoutMs });
  // Reach the server first, so that an unreachable one is one clear error, not a Kysely one.
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw new UnreachableError(url, err, connectTimeoutMs);
  }
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

function migrator (db: Kysely<Schema>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

async function migrateTo (db: Kysely<Schema>, target?: typeof NO_MIGRATIONS): Promise<string[]> {
  const m = migrator(db);
  const { error, results = [] } = target ? await m.migrateTo(target) : await m.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return results
    .filter((r) => r.status === 'Success')
    .map((r) => `${r.direction.toLowerCase()} ${r.migrationName}`);
}

async function seedIfEmpty (db: Kysely<Schema>): Promise<number> {
  return db.transaction().execute(async (trx) => {
    // Serialize concurrent seeders (two `db init` at once) so neither double-seeds.
    await sql`LOCK TABLE todo IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    const { count } = await trx
      .selectFrom('todo')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .executeTakeFirstOrThrow();
    if (Number(count) > 0) return 0;
    await trx.insertInto('todo').values(seedRows()).execute();
    return SEED_COUNT;
  });
}

export interface PrepareResult {
  migrations: string[];
  seeded: number;
  rows: number;
}

/** Migrates to the latest version and seeds an empty table; with reset, drops everything first. */
export async function prepareDatabase (
  url: string,
  options: { reset?: boolean; connectTimeoutMs?: number } = {}
): Promise<PrepareResult> {
  return withAdmin(url, options.connectTimeoutMs ?? 10_000, async (db) => {
    const migrations = options.reset ? await migrateTo(db, NO_MIGRATIONS) : [];
    migrations.push(...(await migrateTo(db)));
    const seeded = await seedIfEmpty(db);
    const { count } = await db
      .selectFrom('todo')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .executeTakeFirstOrThrow();
    return { migrations, seeded, rows: Number(count) };
  });
}
