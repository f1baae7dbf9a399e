// Typed SQL, built with Kysely and executed by us on a connection we checked out:
// the pool (its waiting, cancelling and accounting) stays in our hands.
// Every value is a bound parameter; nothing is spliced into SQL text.
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type CompiledQuery,
} from '../vendor/kysely.ts';
import type { Schema, Todo } from './tables.ts';

const builder = new Kysely<Schema>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

export type Query<Row> = CompiledQuery<Row>;

export interface ListFilter {
  done?: boolean;
  /** Only todos with a larger id: keyset paging, stable under inserts and deletes, no scan of what it skips. */
  after?: number;
  limit?: number;
  /** Rows skipped after `after`: PostgreSQL reads and drops each of them (the slow way, kept for old clients). */
  offset?: number;
}

/** A page as PostgreSQL wrote it: the response body, and whether a todo with a larger id passes the filter. */
export interface TodoPageRow {
  body: string;
  /** The page's largest id (null: the page is empty). */
  last: number | null;
  more: boolean;
}

export interface TodoInput {
  title: string;
  done: boolean;
  priority: number;
}

export type TodoPatch = Partial<TodoInput>;

const columns = ['id', 'title', 'done', 'priority'] as const;

function selectTodos (filter: ListFilter) {
  let q = builder.selectFrom('todo').select(columns).orderBy('id');
  if (filter.done !== undefined) q = q.where('done', '=', filter.done);
  if (filter.after !== undefined) q = q.where('id', '>', filter.after);
  if (filter.limit !== undefined) q = q.limit(filter.limit);
  if (filter.offset !== undefined) q = q.offset(filter.offset);
  return q;
}

/**
 * A page of the list as the whole response body, `{"todos":[...]}`, built by PostgreSQL: each row by
 * row_to_json (the bytes JSON.stringify would write), joined in id order. Node then parses no row
 * and serializes nothing; it passes one string through.
 *
 * The rows reach the aggregate already sorted by the subquery, as PostgREST relies on too:
 * PostgreSQL's manual ("Aggregate Expressions") says a sorted subquery feeds an aggregate in its
 * order when the outer query adds no join or grouping, as here. An ORDER BY inside string_agg
 * would sort the rows a second time: 20 % more of PostgreSQL's CPU for this query (pgbench).
 *
 * `more` asks the primary key for one todo past the page, under the same filter: `max(t.id)` in the
 * subquery belongs to the outer query (its only variables are the outer query's), so it is the page's
 * last id. Asking for limit + 1 rows instead would need a row counter inside the rows that row_to_json
 * writes.
 */
export function listTodosJson (filter: ListFilter = {}): Query<TodoPageRow> {
  // Compiled once per shape (which of the filter's fields are set): building the query costs more of the
  // service's CPU than the rest of the request (about 35 µs). Each field compiles to a parameter of its own,
  // told apart by a placeholder value no request can send.
  const key = FILTER_FIELDS.map((f) => (filter[f] === undefined ? '' : f)).join();
  let shape = pageQueries.get(key);
  if (!shape) pageQueries.set(key, (shape = compilePage(placeholders(filter))));
  const values = new Map<unknown, unknown>(FILTER_FIELDS.map((f) => [PLACEHOLDER[f], filter[f]]));
  return { ...shape, parameters: shape.parameters.map((p) => values.get(p)) };
}

const FILTER_FIELDS = ['done', 'after', 'limit', 'offset'] as const;
const PLACEHOLDER = { done: 'done', after: -1, limit: -2, offset: -3 } as const;
const pageQueries = new Map<string, Query<TodoPageRow>>();

const placeholders = (filter: ListFilter) =>
  Object.fromEntries(
    FILTER_FIELDS.filter((f) => filter[f] !== undefined).map((f) => [f, PLACEHOLDER[f]])
  ) as unknown as ListFilter;

function compilePage (filter: ListFilter): Query<TodoPageRow> {
  let next = builder
    .selectFrom('todo as n')
    .select(sql<number>`1`.as('one'))
    .where('n.id', '>', sql<number>`max(t.id)`);
  if (filter.done !== undefined) next = next.where('n.done', '=', filter.done);
  return builder
    .selectFrom(selectTodos(filter).as('t'))
    .select((eb) => [
      sql<string>`'{"todos":[' || coalesce(string_agg(row_to_json(t)::text, ','), '') || ']}'`.as('body'),
      sql<number | null>`max(t.id)`.as('last'),
      // Without a limit the page is the whole list.
      filter.limit === undefined ? sql<boolean>`false`.as('more') : eb.exists(next).as('more'),
    ])
    .compile();
}

export const getTodo = (id: number): Query<Todo> =>
  builder.selectFrom('todo').select(columns).where('id', '=', id).compile();

export const insertTodo = (input: TodoInput): Query<Todo> =>
  builder.insertInto('todo').values(input).returning(columns).compile();

export const updateTodo = (id: number, patch: TodoPatch): Query<Todo> =>
  builder.updateTable('todo').set(patch).where('id', '=', id).returning(columns).compile();

export const deleteTodo = (id: number): Query<{ id: number }> =>
  builder.deleteFrom('todo').where('id', '=', id).returning('id').compile();

export const sleep = (seconds: number): Query<{ pg_sleep: string }> =>
  sql<{ pg_sleep: string }>`SELECT pg_sleep(${seconds})`.compile(builder);

/**
 * CPU work in PostgreSQL and nothing else: counts `units` values of a set-returning function
 * in the select list, which streams them one by one (in FROM, it would first store them all,
 * in memory and then on disk). About 20 ms per million units on a 2 GHz core.
 */
export const work = (units: number): Query<{ n: number }> =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM (SELECT generate_series(1, ${units}::int)) AS s`.compile(
    builder
  );

export const ping = (): Query<{ ok: number }> => sql<{ ok: number }>`SELECT 1 AS ok`.compile(builder);

/** The primary's WAL position now: at or past the commit of every write this connection made. */
export const walPosition = (): Query<{ lsn: string }> =>
  sql<{ lsn: string }>`SELECT pg_current_wal_lsn()::text AS lsn`.compile(builder);

/** How far a standby has replayed the primary's WAL (null on a server that is not one). */
export const replayPosition = (): Query<{ lsn: string | null }> =>
  sql<{ lsn: string | null }>`SELECT pg_last_wal_replay_lsn()::text AS lsn`.compile(builder);
