// Typed SQL, built with Kysely and executed by us on a connection we checked out:
// the pool (and its waiting, cancelling and accounting) stays in our hands.
import {
  DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql,
  type CompiledQuery,
} from 'kysely';
import type { Schema, Todo } from './schema.ts';

const builder = new Kysely<Schema>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

export interface Query<Row> {
  /** Set for fixed statements: pg prepares them once per connection. */
  name?: string;
  compiled: CompiledQuery<Row>;
}

const named = <Row>(name: string, compiled: CompiledQuery<Row>): Query<Row> => ({ name, compiled });

export const allTodos: Query<Todo> = named('all_todos',
  builder.selectFrom('todo').select(['id', 'title', 'done', 'priority']).orderBy('id').compile());

export const sleep = (seconds: number): Query<{ pg_sleep: string }> => ({
  compiled: sql<{ pg_sleep: string }>`SELECT pg_sleep(${seconds})`.compile(builder),
});

export const ping: Query<{ ok: number }> = named('ping', sql<{ ok: number }>`SELECT 1 AS ok`.compile(builder));
