// What the routes need from the database, over the connection pool (the pg-queuepool package:
// QueuePool semantics, and a request's abort signal that leaves the queue or cancels its query).
import type pg from 'pg';
import { Pool, type AbortSignalLike, type LeakReport, type PoolKind, type PoolStats } from 'pg-queuepool';
import { APPLICATION_NAME } from './application.ts';
import { ClientGoneError, DatabaseUnavailableError, isConnectionError, isDeadline, translate } from './errors.ts';
import * as q from './queries.ts';
import type { ListFilter, Query, TodoInput, TodoPatch } from './queries.ts';
import type { Todo } from './tables.ts';

export type { ListFilter, TodoInput, TodoPatch } from './queries.ts';

/** A page of todos, as the response body PostgreSQL built: `{"todos":[...]}`. */
export interface TodoPage {
  body: string;
  /** The id to ask for todos `after`, when a todo past this page passes the filter. */
  next?: number;
}
export type { LeakReport, PoolStats } from 'pg-queuepool';

export { APPLICATION_NAME } from './application.ts';

/** The pool's settings, as the service's config gives them; createPool() makes them the package's PoolOptions. */
export interface PoolSettings {
  connectionString: string;
  kind: PoolKind;
  size: number;
  maxOverflow: number;
  timeoutMs: number;
  /** Most requests that may wait for a connection; beyond it they are refused at once. */
  queueMax?: number;
  /** One new connection, within timeoutMs (CONNECT_TIMEOUT). */
  connectTimeoutMs?: number;
  /** Each query's answer, on our side (QUERY_TIMEOUT); the sleep routes add their sleep. Unset: none. */
  queryTimeoutMs?: number;
  /** How often idle connections are checked (POOL_HEALTH_CHECK); 0 or unset: never. */
  healthCheckMs?: number;
  /** TCP keepalive: silence before the first probe (DB_KEEPALIVE); 0: off. */
  keepAliveMs?: number;
  /** PostgreSQL settings for each session as it starts (the guards), as libpq's `options`: `-c name=value ...`. */
  sessionOptions?: string;
  /**
   * A connection held longer is reported (LEAK_DETECTION), to `onLeak`; the sleep routes add their sleep. Unset: off.
   */
  leakDetectionMs?: number;
  onLeak?: (report: LeakReport) => void;
  /** PostgreSQL's statement_timeout for our connections, in ms (0 or unset: none). */
  statementTimeoutMs?: number;
  /** Do not send statement_timeout at connect time (PgBouncer: it is set per transaction). */
  perTransactionTimeout?: boolean;
  /** Called whenever the pool's counts change (a checkout, a release, a connection opened or closed, a waiter). */
  onChange?: (pool: Pool) => void;
  onError?: (err: Error) => void;
}

export interface StoreOptions extends PoolSettings {
  logSql?: boolean;
  /** Named (server-side prepared) statements: parsed once per connection. */
  prepare?: boolean;
  /** Run on the same connection after each write (the primary of replicas reads its WAL position here). */
  afterWrite?: (run: RunQuery, ctx: CallContext) => Promise<void>;
  /**
   * Behind PgBouncer in transaction mode no session state survives between transactions:
   * statements that belong together run in one transaction, and statement_timeout is set
   * per transaction (SET LOCAL) instead of per connection.
   */
  transactionMode?: boolean;
}

export type SqlLogger = (sql: string, params: readonly unknown[]) => void;

/** Runs a query on the connection a call holds, logged and prepared as the store's own are. */
export type RunQuery = <Row>(query: Query<Row>) => Promise<Row[]>;

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
  signal?: AbortSignalLike;
  /** The route served (`GET /todos/:id`): a leaked connection's report names it. */
  route?: string;
  lease?: LeaseTiming;
  /**
   * Run on the connection once it is held, before the call's own statements (the replicated
   * store waits there for a replica to replay a write the read must see).
   */
  onLeased?: (run: RunQuery) => Promise<void>;
}

/** What the routes call. The blocking bridge implements the same interface. */
export interface TodoStore {
  /** The todos the filter selects, in id order; unbounded without a `limit`. */
  listTodosJson(filter?: ListFilter, ctx?: CallContext): Promise<TodoPage>;
  getTodo(id: number, ctx?: CallContext): Promise<Todo | undefined>;
  createTodo(input: TodoInput, ctx?: CallContext): Promise<Todo>;
  updateTodo(id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined>;
  deleteTodo(id: number, ctx?: CallContext): Promise<boolean>;
  /** pg_sleep, then listTodosJson, on one connection checkout. */
  sleepThenList(seconds: number, filter: ListFilter, ctx?: CallContext): Promise<TodoPage>;
  /** A fixed amount of CPU work in PostgreSQL (`units` values counted), on one connection checkout. */
  work(units: number, ctx?: CallContext): Promise<number>;
  /**
   * The lab's leak: checks a connection out and keeps it `seconds` without a query, as code that forgot
   * to release it would, then gives it back (or at close). Resolves once the connection is held.
   */
  hold(seconds: number, ctx?: CallContext): Promise<void>;
  ping(ctx?: CallContext): Promise<void>;
  /**
   * When a query last completed (performance.now()), or -Infinity: proof that the database path works, without
   * queueing.
   */
  lastSuccessAt(): number;
  warm(): Promise<void>;
  stats(): PoolStats;
  close(): Promise<void>;
}

/** The page PostgreSQL wrote, with the cursor to the next one. */
const toPage = ({ body, last, more }: q.TodoPageRow): TodoPage =>
  more && last !== null ? { body, next: last } : { body };

/** The package's Pool for the service's settings. */
export function createPool (options: PoolSettings): Pool {
  const pool = new Pool({
    connectionString: options.connectionString,
    kind: options.kind,
    size: options.size,
    maxOverflow: options.maxOverflow,
    // One deadline for the wait in the queue and the connect together.
    timeout: options.timeoutMs,
    queueMax: options.queueMax ?? Infinity,
    ...(options.connectTimeoutMs ? { connectTimeout: options.connectTimeoutMs } : {}),
    ...(options.queryTimeoutMs ? { queryTimeout: options.queryTimeoutMs } : {}),
    healthCheckPeriod: options.healthCheckMs || Infinity,
    keepAlive: options.keepAliveMs !== 0,
    ...(options.keepAliveMs ? { keepAliveInitialDelayMillis: options.keepAliveMs } : {}),
    ...(options.sessionOptions ? { options: options.sessionOptions } : {}),
    ...(options.leakDetectionMs ? { leakDetectionMs: options.leakDetectionMs } : {}),
    application_name: APPLICATION_NAME,
    // Sent at connect time, so it holds for every statement on the connection.
    ...(options.statementTimeoutMs && !options.perTransactionTimeout
      ? { statement_timeout: options.statementTimeoutMs }
      : {}),
    ...(options.onChange ? { onStateChange: () => options.onChange!(pool) } : {}),
  });
  // A connection that breaks while idle: the pool drops it and says so; without a listener the process would crash.
  pool.on('error', (err: Error) => options.onError?.(err));
  if (options.onLeak) pool.on('leak', options.onLeak);
  return pool;
}

export class AsyncTodoStore implements TodoStore {
  private readonly pool: Pool;
  private readonly names = new Map<string, string>();
  /** The lab's held connections, given back at close at the latest. */
  private readonly held = new Set<() => void>();
  private succeededAt = -Infinity;

  constructor (
    private readonly options: StoreOptions,
    private readonly logSql?: SqlLogger
  ) {
    this.pool = createPool(options);
  }

  async listTodosJson (filter: ListFilter = {}, ctx?: CallContext): Promise<TodoPage> {
    return toPage((await this.withConnection(ctx, (c) => this.run(c, q.listTodosJson(filter))))[0]!);
  }

  async getTodo (id: number, ctx?: CallContext): Promise<Todo | undefined> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.getTodo(id))))[0];
  }

  async createTodo (input: TodoInput, ctx?: CallContext): Promise<Todo> {
    return (await this.withConnection(ctx, (c) => this.write(c, q.insertTodo(input), ctx)))[0]!;
  }

  async updateTodo (id: number, patch: TodoPatch, ctx?: CallContext): Promise<Todo | undefined> {
    if (Object.keys(patch).length === 0) return this.getTodo(id, ctx);
    return (await this.withConnection(ctx, (c) => this.write(c, q.updateTodo(id, patch), ctx)))[0];
  }

  async deleteTodo (id: number, ctx?: CallContext): Promise<boolean> {
    return (await this.withConnection(ctx, (c) => this.write(c, q.deleteTodo(id), ctx))).length > 0;
  }

  sleepThenList (seconds: number, filter: ListFilter, ctx?: CallContext): Promise<TodoPage> {
    return this.withConnection(
      ctx,
      async (c) => {
        await this.run(c, q.sleep(seconds));
        return toPage((await this.run(c, q.listTodosJson(filter)))[0]!);
      },
      true,
      seconds * 1000
    );
  }

  async work (units: number, ctx?: CallContext): Promise<number> {
    return (await this.withConnection(ctx, (c) => this.run(c, q.work(units))))[0]!.n;
  }

  async hold (seconds: number, ctx?: CallContext): Promise<void> {
    // Checked out here, so that the checkout's stack (what a leak report shows) starts at the caller.
    const lease = await this.pool.acquire({ signal: ctx?.signal, label: ctx?.route }).catch((err: unknown) => {
      throw translate(err, false, ctx?.signal);
    });
    if (ctx) ctx.lease = { startedAt: lease.startedAt, waitMs: lease.waitMs, holdMs: 0, overflow: lease.overflow };
    const giveBack = () => {
      clearTimeout(timer);
      this.held.delete(giveBack);
      lease.release();
    };
    const timer = setTimeout(giveBack, seconds * 1000);
    this.held.add(giveBack);
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

  /** A checkout now would get a connection at once (none waits, a place is free): for choosing among servers. */
  hasRoom (): boolean {
    return this.pool.waitingCount === 0 && this.pool.inUseCount < this.options.size + this.options.maxOverflow;
  }

  get waitingCount (): number {
    return this.pool.waitingCount;
  }

  close (): Promise<void> {
    for (const giveBack of [...this.held]) giveBack();
    return this.pool.end();
  }

  /** `sleepMs`: a wait the request asked for, added to each query's deadline. */
  private async withConnection<T>(
    ctx: CallContext | undefined,
    fn: (client: pg.ClientBase) => Promise<T>,
    together = false,
    sleepMs = 0
  ): Promise<T> {
    const signal = ctx?.signal;
    // While the lease is held its signal cancels the running query (a CancelRequest), and the
    // connection is reused only once PostgreSQL has ended that query.
    const { queryTimeoutMs, leakDetectionMs } = this.options;
    // A sleep the request asked for stretches its deadlines, and the time it may hold the connection.
    const lease = await this.pool
      .acquire({
        signal,
        label: ctx?.route,
        ...(sleepMs && queryTimeoutMs ? { queryTimeout: queryTimeoutMs + sleepMs } : {}),
        ...(sleepMs && leakDetectionMs ? { leakDetectionMs: leakDetectionMs + sleepMs } : {}),
      })
      .catch((err: unknown) => {
        const translated = translate(err, false, signal);
        if (translated instanceof DatabaseUnavailableError) this.succeededAt = -Infinity; // could not connect
        throw translated;
      });
    const acquired = performance.now();
    // Read before the release: the pool hands the connection to the next waiter inside it.
    let holdMs = 0;
    const giveBack = (err?: Error) => {
      holdMs = performance.now() - acquired;
      lease.release(err);
    };
    const { transactionMode, statementTimeoutMs } = this.options;
    const transaction = transactionMode && (together || Boolean(statementTimeoutMs));
    try {
      if (signal?.aborted) throw new ClientGoneError();
      if (ctx?.onLeased) {
        const client = lease.client as unknown as pg.ClientBase;
        await ctx.onLeased((query) => this.run(client, query));
      }
      if (transaction) {
        await lease.client.query('BEGIN');
        if (statementTimeoutMs) {
          await lease.client.query(`SET LOCAL statement_timeout = ${Math.round(statementTimeoutMs)}`);
        }
      }
      const result = await fn(lease.client as unknown as pg.ClientBase);
      if (transaction) await lease.client.query('COMMIT');
      this.succeededAt = performance.now();
      giveBack();
      return result;
    } catch (err) {
      // Past its deadline the connection is being destroyed: nothing more is sent on it.
      const broken = isConnectionError(err) || isDeadline(err);
      if (broken) this.succeededAt = -Infinity;
      if (transaction && !broken) await lease.client.query('ROLLBACK').catch(() => {});
      giveBack(broken ? (err as Error) : undefined);
      throw translate(err, broken, signal);
    } finally {
      if (ctx) ctx.lease = { startedAt: lease.startedAt, waitMs: lease.waitMs, holdMs, overflow: lease.overflow };
    }
  }

  /** A write, then the `afterWrite` hook on the same connection. */
  private async write<Row>(client: pg.ClientBase, query: Query<Row>, ctx: CallContext | undefined): Promise<Row[]> {
    const rows = await this.run(client, query);
    if (this.options.afterWrite && ctx) await this.options.afterWrite((query) => this.run(client, query), ctx);
    return rows;
  }

  private async run<Row>(client: pg.ClientBase, query: Query<Row>): Promise<Row[]> {
    const { sql, parameters } = query;
    this.logSql?.(sql, parameters);
    const result = await client.query<Row & pg.QueryResultRow>({
      name: this.statementName(sql),
      text: sql,
      values: parameters as unknown[],
    });
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
