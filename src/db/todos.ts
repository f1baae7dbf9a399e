// The data access the routes need, over a connection pool.
import type pg from 'pg';
import { DatabaseUnavailableError, ServiceError } from './errors.ts';
import { createPool, type ConnectionPool, type PoolOptions, type PoolStats } from './pool.ts';
import { allTodos, ping, sleep, type Query } from './queries.ts';
import type { Todo } from './schema.ts';

export interface StoreOptions extends PoolOptions {
  logSql?: boolean;
}

export type SqlLogger = (sql: string, params: readonly unknown[]) => void;

/** What the routes call. The blocking bridge implements the same interface. */
export interface TodoStore {
  listTodos(): Promise<Todo[]>;
  /** pg_sleep, then the todo query, on one connection checkout. */
  sleepThenList(seconds: number): Promise<Todo[]>;
  ping(): Promise<void>;
  stats(): PoolStats;
  close(): Promise<void>;
}

export class AsyncTodoStore implements TodoStore {
  private readonly pool: ConnectionPool;

  constructor(options: StoreOptions, private readonly logSql?: SqlLogger) {
    this.pool = createPool(options);
  }

  listTodos(): Promise<Todo[]> {
    return this.withConnection((c) => this.run(c, allTodos));
  }

  sleepThenList(seconds: number): Promise<Todo[]> {
    return this.withConnection(async (c) => {
      await this.run(c, sleep(seconds));
      return this.run(c, allTodos);
    });
  }

  async ping(): Promise<void> {
    await this.withConnection((c) => this.run(c, ping));
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async withConnection<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const lease = await this.pool.acquire();
    try {
      const result = await fn(lease.client);
      lease.release();
      return result;
    } catch (err) {
      const broken = isConnectionError(err);
      lease.release(broken ? (err as Error) : undefined);
      throw broken ? new DatabaseUnavailableError(err) : err;
    }
  }

  private async run<Row>(client: pg.ClientBase, query: Query<Row>): Promise<Row[]> {
    const { sql, parameters } = query.compiled;
    this.logSql?.(sql, parameters);
    const result = await client.query<Row & pg.QueryResultRow>({ name: query.name, text: sql, values: parameters as unknown[] });
    return result.rows;
  }
}

/** Errors after which a connection must not go back to the pool. */
function isConnectionError(err: unknown): boolean {
  if (err instanceof ServiceError) return false;
  const code = (err as { code?: string }).code ?? '';
  // SQLSTATE class 08 (connection exception), 57P01-03 (server shutting down / starting).
  if (code.startsWith('08') || /^57P0[123]$/.test(code)) return true;
  if (/^E(CONNRESET|CONNREFUSED|PIPE|TIMEDOUT)$/.test(code)) return true;
  return /Connection terminated|not queryable|ended/i.test((err as Error).message ?? '');
}
