// What the routes need from the database, over a connection pool.
import net from 'node:net';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { ClientGoneError, DatabaseUnavailableError, isConnectionError, translate } from './errors.ts';
import { createPool, type ConnectionPool, type PoolOptions, type PoolStats } from './pool.ts';
import * as q from './queries.ts';
import type { ListFilter, Query, TodoInput, TodoPatch } from './queries.ts';
import type { Todo } from './schema.ts';
import type { Abortable } from './abort.ts';

export type { ListFilter, TodoInput, TodoPatch } from './queries.ts';

export interface StoreOptions extends PoolOptions {
  logSql?: boolean;
  /** Named (server-side prepared) statements: parsed once per connection. */
  prepare?: boolean;
  /**
   * Behind PgBouncer in transaction mode no session state survives between transactions:
   * statements that belong together run in one transaction, and statement_timeout is set
   * per transaction (SET LOCAL) instead of per connection.
   */
  transactionMode?: boolean;
  /**
   * CancelRequests per aborted query: one now, then one every 200 ms while it still runs
   * (a cancel that reaches a backend before its query started is dropped).
   */
  cancelAttempts?: number;
}

export type SqlLogger = (sql: string, params: readonly unknown[]) => void;

/** How one request used the pool: filled in by the store, read by logs and metrics. */
export interface LeaseTiming {
  /** When the request started asking for a connection (epoch ms). */
  startedAt: number;
  waitMs: number;
  holdMs: number;
  overflow: boolean;
}

export interface CallContext {
  /** Aborted when the HTTP client goes away: leave the queue, cancel the query. */
  signal?: Abortable;
  lease?: LeaseTiming;
}

/** What the routes call. The blocking bridge implements the same interface. */
export interface TodoStore {
  listTodos(filter?: ListFilter, ctx?: CallContext): Promise<Todo[]>;
  /** The same list, as the JSON response body PostgreSQL built: `{"todos":[...]}`. */
  listTodosJson(filter?: ListFilter, ctx?: CallContext): Promise<string>;
  getTodo(id: number, ctx?: CallContext): Promise<Todo | undefined>;
  createTodo(input: TodoInput, ctx?: CallContext): Promise<Todo>;
  updateTodo(id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined>;
  deleteTodo(id: number, ctx?: CallContext): Promise<boolean>;
  /** pg_sleep, then the todo list, on one connection checkout. */
  sleepThenList(seconds: number, ctx?: CallContext): Promise<Todo[]>;
  /** A fixed amount of CPU work in PostgreSQL (`units` values counted), on one connection checkout. */
  work(units: number, ctx?: CallContext): Promise<number>;
  ping(ctx?: CallContext): Promise<void>;
  /** When a query last completed (performance.now()), or -Infinity: proof that the database path works, without queueing. */
  lastSuccessAt(): number;
  warm(): Promise<void>;
  stats(): PoolStats;
  close(): Promise<void>;
}

const ALL_TODOS = q.listTodos();
const ALL_TODOS_JSON = q.listTodosJson();

export class AsyncTodoStore implements TodoStore {
  private readonly pool: ConnectionPool;
  private readonly names = new Map<string, string>();
  private succeededAt = -Infinity;

  constructor (private readonly options: StoreOptions, private readonly logSql?: SqlLogger) {
    this.pool = createPool(options);
  }

  listTodos (filter: ListFilter = {}, ctx?: CallContext): Promise<Todo[]> {
    const query = Object.keys(filter).length ? q.listTodos(filter) : ALL_TODOS;
    return this.withConnection(ctx, (c) => this.run(c, query));
  }

  async listTodosJson (filter: ListFilter = {}, ctx?: CallContext): Promise<string> {
    const query = Object.keys(filter).length ? q.listTodosJson(filter) : ALL_TODOS_JSON;
    return (await this.withConnection(ctx, (c) => this.run(c, query)))[0]!.body;
  }

  async getTodo (id: number, ctx?: CallContext): Promise<Todo | undefined> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.getTodo(id))))[0];
  }

  async createTodo (input: TodoInput, ctx?: CallContext): Promise<Todo> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.insertTodo(input))))[0]!;
  }

  async updateTodo (id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined> {
    if (Object.keys(patch).length === 0) return this.getTodo(id, ctx);
    return (await this.withConnection(ctx, (c) => this.run(c, q.updateTodo(id, patch))))[0];
  }

  async deleteTodo (id: number, ctx?: CallContext): Promise<boolean> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.deleteTodo(id)))).length > 0;
  }

  sleepThenList (seconds: number, ctx?: CallContext): Promise<Todo[]> {
    return this.withConnection(ctx, async (c) => {
      await this.run(c, q.sleep(seconds));
      return this.run(c, ALL_TODOS);
    }, true);
  }

  async work (units: number, ctx?: CallContext): Promise<number> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.work(units))))[0]!.n;
  }

  async ping (ctx?: CallContext): Promise<void> {
    await this.withConnection(ctx, (c) => this.run(c, q.ping()));
  }

  lastSuccessAt (): number {
    return this.succeededAt;
  }

  warm (): Promise<void> {
    return this.pool.warm();
  }

  stats (): PoolStats {
    return this.pool.stats();
  }

  close (): Promise<void> {
    return this.pool.end();
  }

  private async withConnection<T>(ctx: CallContext | undefined, fn: (client: pg.ClientBase) => Promise<T>, together = false): Promise<T> {
    const signal = ctx?.signal;
    const lease = await this.pool.acquire(signal).catch((err: unknown) => {
      if (err instanceof DatabaseUnavailableError) this.succeededAt = -Infinity; // could not connect
      throw err;
    });
    const acquired = performance.now();
    const canceller = signal ? new Canceller(lease.client, signal, this.options.cancelAttempts ?? 25) : undefined;
    const { transactionMode, statementTimeoutMs } = this.options;
    const transaction = transactionMode && (together || Boolean(statementTimeoutMs));
    try {
      if (signal?.aborted) throw new ClientGoneError();
      if (transaction) {
        await lease.client.query('BEGIN');
        if (statementTimeoutMs) await lease.client.query(`SET LOCAL statement_timeout = ${Math.round(statementTimeoutMs)}`);
      }
      const result = await fn(lease.client);
      if (transaction) await lease.client.query('COMMIT');
      this.succeededAt = performance.now();
      lease.release(canceller?.used ? new Error('cancelled') : undefined);
      return result;
    } catch (err) {
      const broken = isConnectionError(err);
      if (broken) this.succeededAt = -Infinity;
      if (transaction && !broken) await lease.client.query('ROLLBACK').catch(() => {});
      // After a cancel, the connection is not reused: a CancelRequest that arrives late
      // would otherwise stop the next request's query on the same backend.
      lease.release(broken || canceller?.used ? (err as Error) : undefined);
      throw translate(err, broken, signal);
    } finally {
      canceller?.dispose();
      if (ctx) ctx.lease = { startedAt: lease.startedAt, waitMs: lease.waitMs, holdMs: performance.now() - acquired, overflow: lease.overflow };
    }
  }

  private async run<Row>(client: pg.ClientBase, query: Query<Row>): Promise<Row[]> {
    const { sql, parameters } = query;
    this.logSql?.(sql, parameters);
    const result = await client.query<Row & pg.QueryResultRow>({ name: this.statementName(sql), text: sql, values: parameters as unknown[] });
    return result.rows;
  }

  /** One name per distinct SQL text; the set of texts is small (queries vary by shape, not value). */
  private statementName (sql: string): string | undefined {
    if (!this.options.prepare) return undefined;
    let name = this.names.get(sql);
    if (!name) this.names.set(sql, (name = `s${this.names.size + 1}`));
    return name;
  }
}

/**
 * Cancels the running query when the signal aborts, and again every 200 ms while the query
 * still runs: a CancelRequest that arrives before the query started (at an idle backend, or
 * at a PgBouncer client still waiting for a server connection) is dropped.
 */
class Canceller {
  used = false;
  private timer?: NodeJS.Timeout;
  private readonly onAbort = () => this.cancel(this.attempts);

  constructor (private readonly client: pg.ClientBase, private readonly signal: Abortable, private readonly attempts: number) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  dispose (): void {
    this.signal.removeEventListener('abort', this.onAbort);
    clearTimeout(this.timer);
  }

  private cancel (triesLeft: number): void {
    this.used = true;
    cancelQuery(this.client);
    if (triesLeft > 1) this.timer = setTimeout(() => this.cancel(triesLeft - 1), 200);
  }
}

/**
 * Asks PostgreSQL to stop the query running on `client`: the protocol's CancelRequest,
 * sent on a separate short-lived socket (it needs no pool slot and no authentication).
 */
export function cancelQuery (client: pg.ClientBase): void {
  const { host, port, processID, secretKey } = client as unknown as { host: string; port: number; processID: number | null; secretKey: number | null };
  if (processID === null || secretKey === null) return;
  // Send, then let the server close the socket, as libpq does. Closing it ourselves first
  // crashes PgBouncer 1.18 ("disconnect_client(): bad client state: 0", fixed upstream later).
  const socket = net.connect(port, host, () => socket.write(serialize.cancel(processID, secretKey)));
  socket.setTimeout(5000, () => socket.destroy());
  socket.on('end', () => socket.destroy());
  socket.on('error', () => {}); // best effort: if the server is gone, so is the query
}
