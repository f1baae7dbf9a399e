// QueuePool (SQLAlchemy's semantics) over node-postgres, shaped as pg.Pool so that what takes a
// pg.Pool takes this one. `size` connections stay open once opened; up to `maxOverflow` more are
// opened under load and closed after `overflowIdle`; beyond that, callers wait in FIFO order in a
// bounded queue, and `timeout` bounds the whole checkout: the queue and the connect together.
// NullPool (kind 'null'): a new connection per checkout, closed on release.
//
// On the unhappy path it hands out only connections it can vouch for: one given back inside a
// transaction is rolled back first; one that broke makes the others suspect until they answer;
// idle ones are checked in the background; and nothing waits for ever on the network (a deadline
// on queries, on connects, on the pool's own statements, and TCP keepalive).
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { sendCancel, type CancelTarget } from './cancel.js';
import {
  awaitingReady,
  busy,
  endQuietly,
  kill,
  queryable,
  socketOf,
  transactionStatusOf,
  whenReady,
  type TransactionStatus,
} from './client-state.js';
import { guardQueries } from './deadline.js';
import { AbortedError, ConnectError, PoolEndedError, PoolQueueFullError, PoolTimeoutError } from './errors.js';
import { PoolLease, type Lease as LeaseOf, type Lender } from './lease.js';
import {
  clientOptions,
  settingsOf,
  type AbortSignalLike,
  type QueuePoolOptions,
  type Settings,
} from './options.js';
import { PlaceQueue } from './queue.js';
import {
  connectChannel,
  releaseChannel,
  removeChannel,
  traced,
  type ConnectContext,
  type ReleaseContext,
} from './tracing.js';

/** A checked-out connection: the client, how the checkout went, and the way to give it back. */
export type Lease<C extends PoolableClient = pg.Client> = LeaseOf<C>;

/** What the pool needs of a node-postgres Client (pg.Client, or pg-native's, or a test's). */
export interface PoolableClient {
  /** pg's: with a callback (as the pool calls it), or returning a promise. */
  connect(callback?: (err?: Error | null) => void): unknown;
  end(): Promise<unknown>;
  query(...args: any[]): any;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  release?: (err?: Error | boolean) => void;
}

export type ClientConstructor<C extends PoolableClient> = new (config?: any) => C;

export interface PoolOptions extends QueuePoolOptions, pg.ClientConfig {}

/** A query as pg takes it, with what pool.query() adds: an abort signal and a deadline of its own. */
export interface PoolQueryConfig<I = unknown[]> extends pg.QueryConfig<I> {
  /** Aborting cancels the query in PostgreSQL, or its wait for a connection (`ABORTED`). */
  signal?: AbortSignalLike;
  /** This query's deadline in ms, instead of the pool's `queryTimeout` (`QUERY_TIMEOUT` past it). */
  queryTimeout?: number;
}

/** pool.query()'s callback: the error, or the result. */
export type QueryCallback<R extends pg.QueryResultRow = any> = (
  err: Error | undefined,
  res?: pg.QueryResult<R>,
) => void;

export interface AcquireOptions {
  /**
   * Aborts the checkout: a caller still waiting leaves the queue at once (its place goes to the
   * next), a connect in progress is dropped. Once the connection is held, an abort cancels the
   * query running on it with a CancelRequest; the connection goes back to the pool only after
   * PostgreSQL has answered that query and closed the cancel's socket, so no late cancel can stop
   * the next caller's query. A query that has not ended `checkTimeout` after the cancel has its
   * connection destroyed.
   */
  signal?: AbortSignalLike;
  /**
   * The deadline of each query while this connection is held, in ms (Infinity: none); default: the pool's
   * `queryTimeout`.
   */
  queryTimeout?: number;
  /**
   * How long this connection may be held before it is reported as leaked, in ms; default: the pool's `leakDetectionMs`.
   */
  leakDetectionMs?: number;
  /** A name for this checkout in its leak report (a route, a job's name). */
  label?: string;
}

/** A connection held past its leak threshold: reported once then, and again when it is finally given back. */
export interface LeakReport<C = unknown> {
  client: C;
  /** How long it has been held, in ms: just past the threshold, or (released) in all. */
  heldMs: number;
  thresholdMs: number;
  /** The stack of the code that checked it out, the pool's own frames left out. */
  stack: string;
  /** False when it is reported held, true when it has been given back at last. */
  released: boolean;
  /** The checkout's `label`, if it had one. */
  label?: string;
}

/**
 * Why the pool closed a connection it could not trust. `broken`: it errored, or came back with a connection error;
 * `reset`: given back in a transaction, and the rollback failed or took too long (or resetOnReturn is 'close');
 * `busy`: given back with a query still running; `deadline`: a query outlived `queryTimeout`; `cancel`: an aborted
 * query did not end within `checkTimeout` of its cancel; `healthCheck`: an idle one failed its background check;
 * `invalidated`: a suspect, after another connection broke, failed its check; `prePing`: it failed its pre-ping.
 */
export type CloseCause =
  'broken' | 'reset' | 'busy' | 'deadline' | 'cancel' | 'healthCheck' | 'invalidated' | 'prePing';

const CLOSE_CAUSES: readonly CloseCause[] = [
  'broken',
  'reset',
  'busy',
  'deadline',
  'cancel',
  'healthCheck',
  'invalidated',
  'prePing',
];

/** The pool's state and counters, one shape for /metrics, logs and dashboards. */
export interface PoolStats {
  kind: 'queue' | 'null';
  size: number;
  maxOverflow: number;
  /** Connections open or opening. */
  total: number;
  idle: number;
  /** Places taken: connections checked out, or being opened or checked for a caller. */
  inUse: number;
  /** Of those, beyond `size`. */
  overflowInUse: number;
  /** Callers in the queue. */
  waiting: number;
  /** Checked-out connections past `recycle`: they close when given back. */
  expired: number;
  /** Counters since the pool was made. */
  acquired: number;
  /** Checkouts that had to queue for a place. */
  queued: number;
  timeouts: number;
  /** Refused at once because `queueMax` waited (POOL_QUEUE_FULL). */
  rejected: number;
  /** Checkouts aborted by their signal before they had a connection. */
  aborted: number;
  connectErrors: number;
  /** CancelRequests sent: for queries whose lease's signal aborted, and for queries past their deadline. */
  cancels: number;
  /** Connections closed after `recycle` or after `maxUses`. */
  recycled: number;
  /** Connections given back inside a transaction and rolled back before reuse (resetOnReturn). */
  resets: number;
  /** Queries that outlived their deadline (`queryTimeout`): their callers got QUERY_TIMEOUT. */
  queryTimeouts: number;
  /**
   * Idle connections checked by the pool in the background: every `healthCheckPeriod`, and as suspects after one broke.
   */
  healthChecks: number;
  /** Connections closed because they could not be trusted, by cause. */
  closed: Record<CloseCause, number>;
  /** The refill's pause before its next try, after connects failed (0: not backing off). */
  refillBackoffMs: number;
  /** Time callers waited for their connections, in all (ms): with `acquired`, the mean wait over any window. */
  waitMsTotal: number;
  /** Time connections were held by callers, in all (ms), counted as each is given back. */
  useMsTotal: number;
  /** Leases reported held past their leak threshold (`leakDetectionMs`). */
  leaks: number;
}

interface Conn<C extends PoolableClient> {
  client: C;
  /** One of the first `size` (kept open), or overflow (closed after `overflowIdle` idle). */
  core: boolean;
  openedAt: number;
  /** When it is recycled: `recycle` after it opened, less its jitter. */
  expiresAt: number;
  /** When it last proved it answers: opened, passed a check, or came back clean after an invalidation. */
  checkedAt: number;
  /** The health check's round in which it was last lent or checked. */
  round: number;
  /** When its current lease began (on the pool's clock): the caller asked. */
  leasedAt: number;
  /** When the caller had it. */
  acquiredAt: number;
  /** Its current lease, while lent. */
  lease: PoolLease<C> | undefined;
  /** The leak watch: one timer, refreshed by each lease watched, checked against the lease it finds. */
  leakTimer?: NodeJS.Timeout;
  leakTimerMs: number;
  uses: number;
  expired: boolean;
  idle: boolean;
  closing: boolean;
  /** Never to be reused: closed when it comes back, for this cause. */
  doomed: CloseCause | undefined;
  /** Each query's deadline while it is lent, in ms (Infinity: none). */
  queryTimeout: number;
  /** The client's own query(), for the pool's statements: no caller's deadline on them. */
  rawQuery: (text: string) => Promise<unknown>;
  status: (() => TransactionStatus | null) | undefined;
  idleTimer?: NodeJS.Timeout;
  lifeTimer?: NodeJS.Timeout;
  onError: (err: Error) => void;
}

type Callback<C> = (err: Error | undefined, client?: C, done?: (err?: Error | boolean) => void) => void;

/**
 * The refill of `size` connections after one was discarded: first pause, doubled (with jitter) while PostgreSQL cannot
 * be reached.
 */
const REFILL_FIRST_MS = 100;
const REFILL_MAX_MS = 10_000;

const defaultClock = () => performance.now();

export class Pool<C extends PoolableClient = pg.Client> extends EventEmitter implements Lender<C> {
  readonly options: PoolOptions;
  readonly Client: ClientConstructor<C>;
  /** The `log` option, or nothing: pg-pool's name, which some consumers call. */
  readonly log: (message: string, ...details: unknown[]) => void;
  private readonly PromiseClass: PromiseConstructor | undefined;
  ending = false;
  ended = false;
  private readonly settings: Settings;
  private readonly places: PlaceQueue;
  // Idle core connections are handed out before idle overflow ones, so that the overflow ones idle out.
  private readonly idleCore: Conn<C>[] = [];
  private readonly idleOverflow: Conn<C>[] = [];
  /** Core connections open: the first `size`; the ones beyond are overflow, closed after `overflowIdle`. */
  private coreOpen = 0;
  private readonly conns = new Set<Conn<C>>();
  private readonly clientConfig: object;
  private readonly epochOf: (t: number) => number;
  private readonly counters = {
    acquired: 0,
    queued: 0,
    timeouts: 0,
    rejected: 0,
    aborted: 0,
    connectErrors: 0,
    cancels: 0,
    recycled: 0,
    resets: 0,
    queryTimeouts: 0,
    healthChecks: 0,
    waitMsTotal: 0,
    useMsTotal: 0,
    leaks: 0,
  };

  private readonly closedBy = Object.fromEntries(CLOSE_CAUSES.map((c) => [c, 0])) as Record<CloseCause, number>;
  /** Connections opened and still wanted back: one discarded is reopened while fewer than `size` are. */
  private filled = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private refillMs = REFILL_FIRST_MS;
  private refilling = false;
  /** After a connection broke: the ones that had not proved themselves since are suspect until they answer. */
  private invalidatedAt = -Infinity;
  private round = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private endWaiters: (() => void)[] = [];
  /** Connections being closed: end() resolves after them. */
  private readonly closing = new Set<Promise<void>>();

  constructor (options: PoolOptions = {}, Client?: ClientConstructor<C>) {
    super();
    this.settings = settingsOf(options);
    this.options = { ...options };
    // As pg-pool does: the password is not enumerable, so it shows in no log of the options.
    if ('password' in options) {
      Object.defineProperty(this.options, 'password', {
        enumerable: false,
        writable: true,
        configurable: true,
        value: options.password,
      });
    }
    // As pg-pool: the option first, then the constructor's argument, then pg's own Client.
    this.Client =
      (options.Client as ClientConstructor<C> | undefined) ??
      Client ??
      (pg.Client as unknown as ClientConstructor<C>);
    this.PromiseClass = options.Promise as PromiseConstructor | undefined;
    this.clientConfig = clientOptions(options);
    this.log = this.settings.log;
    this.epochOf =
      options.clock === undefined || options.clock === defaultClock
        ? (t) => performance.timeOrigin + t
        : () => Date.now();
    const { size, maxOverflow, timeout } = this.settings;
    this.places = new PlaceQueue({
      capacity: this.settings.kind === 'null' ? Infinity : size + maxOverflow,
      queueMax: this.settings.queueMax,
      now: this.settings.clock,
      timedOut: () => {
        this.counters.timeouts++;
        return new PoolTimeoutError(size, maxOverflow, timeout);
      },
      full: () => {
        this.counters.rejected++;
        return new PoolQueueFullError(this.settings.queueMax);
      },
      aborted: (reason) => {
        this.counters.aborted++;
        return new AbortedError(reason);
      },
      onChange: () => this.changed(),
    });
    // pg-pool's names for what the settings mean here, where the caller did not give them: consumers read them
    // (Vercel's attachDatabasePool recognises a pool by `'idleTimeoutMillis' in pool.options`, and keeps a function
    // alive that long after each release, for the idle connections to close). 0 is pg's "never".
    const named = {
      max: this.settings.kind === 'null' ? Infinity : size + maxOverflow,
      min: this.settings.kind === 'null' ? 0 : size,
      idleTimeoutMillis: Number.isFinite(this.longestIdle()) ? this.longestIdle() : 0,
      connectionTimeoutMillis: Number.isFinite(timeout) ? timeout : 0,
      maxUses: this.settings.maxUses,
      allowExitOnIdle: this.settings.allowExitOnIdle,
      maxLifetimeSeconds: Number.isFinite(this.settings.recycle) ? this.settings.recycle / 1000 : 0,
    };
    for (const [name, value] of Object.entries(named)) {
      if (!(name in this.options)) (this.options as Record<string, unknown>)[name] = value;
    }
  }

  // pg.Pool's counts -------------------------------------------------------------------------

  /** `size`: the connections kept open once opened. */
  get size (): number {
    return this.settings.kind === 'null' ? 0 : this.settings.size;
  }

  get totalCount (): number {
    return this.conns.size;
  }

  get idleCount (): number {
    return this.idleCore.length + this.idleOverflow.length;
  }

  get waitingCount (): number {
    return this.places.waiting;
  }

  /** Places taken (checked out, or being opened for a caller). */
  get inUseCount (): number {
    return this.places.active;
  }

  get expiredCount (): number {
    let n = 0;
    for (const c of this.conns) if (c.expired && !c.idle) n++;
    return n;
  }

  /**
   * What the pool met on the unhappy path so far, as one number that only grows: connections closed as untrustworthy,
   * rollbacks on return, queries past their deadline, failed connects. Cheap to read on every change (onStateChange),
   * to know when stats() has news.
   */
  get incidents (): number {
    let n = this.counters.resets + this.counters.queryTimeouts + this.counters.connectErrors;
    for (const cause of CLOSE_CAUSES) n += this.closedBy[cause];
    return n;
  }

  /** How long the pool waits for PostgreSQL on its own behalf (the `checkTimeout` option). */
  get checkTimeout (): number {
    return this.settings.checkTimeout;
  }

  stats (): PoolStats {
    const { kind, size, maxOverflow } = this.settings;
    const inUse = this.places.active;
    return {
      kind,
      size: kind === 'null' ? 0 : size,
      maxOverflow: kind === 'null' ? 0 : maxOverflow,
      total: this.conns.size,
      idle: this.idleCount,
      inUse,
      overflowInUse: kind === 'null' ? 0 : Math.max(0, inUse - size),
      waiting: this.places.waiting,
      expired: this.expiredCount,
      ...this.counters,
      closed: { ...this.closedBy },
      refillBackoffMs: this.refillMs === REFILL_FIRST_MS ? 0 : this.refillMs,
    };
  }

  // Checkout ---------------------------------------------------------------------------------

  /** Checks out a connection (the native API): resolves with a lease, or rejects with a PoolError. */
  acquire (options: AcquireOptions = {}): Promise<Lease<C>> {
    return this.checkout(options, true, asLease, this.siteOf(options, Pool.prototype.acquire));
  }

  /**
   * Where a checkout was asked for, when it will be watched for a leak: the caller's stack, the frames from `entry`
   * up left out. Formatted only if a leak is reported (V8 writes a captured stack out when it is first read).
   */
  private siteOf (options: AcquireOptions, entry: (...args: any[]) => unknown): { stack?: string } | undefined {
    if ((options.leakDetectionMs ?? this.settings.leakDetectionMs) === Infinity) return undefined;
    const site: { stack?: string } = {};
    Error.captureStackTrace(site, entry);
    return site;
  }

  /**
   * `counted`: a caller's checkout, in the counters and the hook; the pool's own (warm) is not.
   * `as` shapes what the caller gets (the lease, or pg.Pool's client with release()).
   * Written without async/await, and one promise per checkout: a caller that finds a place and an
   * idle connection has it in one step, and a waiter is handed the connection inside the
   * release that frees it, as pg-pool does.
   */
  private checkout<T>(
    options: AcquireOptions,
    counted: boolean,
    as: (lease: Lease<C>) => T,
    site?: object
  ): Promise<T> {
    if (!counted || !traced(connectChannel)) return this.take(options, counted, as, site);
    // Someone listens on pg:pool:connect: the checkout is traced, its result the lease (the timing record).
    const context: ConnectContext = { pool: this };
    const leased = connectChannel.tracePromise(() => this.take(options, counted, asLease, site), context);
    return as === asLease ? (leased as Promise<T>) : leased.then(as);
  }

  private take<T>(
    options: AcquireOptions,
    counted: boolean,
    as: (lease: Lease<C>) => T,
    site?: object
  ): Promise<T> {
    const { signal } = options;
    if (this.ending) return Promise.reject(new PoolEndedError());
    if (signal?.aborted) {
      this.counters.aborted++;
      return Promise.reject(new AbortedError(signal.reason));
    }
    const started = this.settings.clock();
    const deadline = started + this.settings.timeout;
    const queryTimeout = options.queryTimeout ?? this.settings.queryTimeout;
    if (this.places.free) {
      this.places.take();
      try {
        return Promise.resolve(this.lend(started, deadline, false, options, queryTimeout, counted, as, site));
      } catch (err) {
        return Promise.reject(err); // an onCheckout hook that threw: a rejection, as from a wait
      }
    }
    if (counted) this.counters.queued++;
    return this.places.wait(deadline, signal, () =>
      this.lend(started, deadline, true, options, queryTimeout, counted, as, site)
    );
  }

  /**
   * With a place taken: an idle connection now when one is ready, else obtain() one; the place is given back on
   * failure.
   */
  private lend<T>(
    started: number,
    deadline: number,
    queued: boolean,
    options: AcquireOptions,
    queryTimeout: number,
    counted: boolean,
    as: (lease: Lease<C>) => T,
    site?: object
  ): T | Promise<T> {
    if (this.ending) {
      this.places.leave();
      throw new PoolEndedError();
    }
    const { signal } = options;
    const ready = this.settings.prePing ? undefined : this.takeReady();
    if (ready) return as(this.lease(ready, false, started, queued, options, queryTimeout, counted, site));
    return this.obtain(deadline, signal).then(
      ([conn, opened]) => as(this.lease(conn, opened, started, queued, options, queryTimeout, counted, site)),
      (err: unknown) => {
        this.places.leave();
        throw err;
      }
    );
  }

  /** An idle connection that needs no check (pre-ping off, not a suspect): the recycled ones on the way are closed. */
  private takeReady (): Conn<C> | undefined {
    for (;;) {
      const list = this.idleCore.length ? this.idleCore : this.idleOverflow;
      const next = this.settings.lifo ? list[list.length - 1] : list[0];
      if (!next || next.checkedAt < this.invalidatedAt) return undefined; // a suspect: obtain() checks it first
      const conn = this.takeIdle(list)!;
      this.unidle(conn);
      if (!conn.expired && !this.tooOld(conn)) return conn;
      this.counters.recycled++;
      this.close(conn);
    }
  }

  private lease (
    conn: Conn<C>,
    opened: boolean,
    started: number,
    queued: boolean,
    options: AcquireOptions,
    queryTimeout: number,
    counted: boolean,
    site?: object
  ): Lease<C> {
    const { signal } = options;
    if (counted) this.counters.acquired++;
    conn.uses++;
    conn.queryTimeout = queryTimeout;
    conn.leasedAt = started;
    conn.round = this.round;
    // Not queued and not connecting, it waited for nothing: no second reading of the clock.
    const waitMs = queued || opened ? this.settings.clock() - started : 0;
    conn.acquiredAt = started + waitMs;
    this.counters.waitMsTotal += waitMs;
    const overflow = this.settings.kind === 'queue' && !conn.core;
    const lease = new PoolLease<C>(this, conn, this.epochOf(started), waitMs, queued, opened, overflow, signal);
    conn.lease = lease;
    if (site) {
      this.watchLeak(conn, lease, options.leakDetectionMs ?? this.settings.leakDetectionMs, site, options.label);
    }
    this.emit('acquire', conn.client);
    if (counted && this.options.onCheckout) {
      try {
        this.options.onCheckout(lease);
      } catch (err) {
        lease.release(); // a hook that throws fails its checkout, and the connection is not lost with it
        throw err;
      }
    }
    return lease;
  }

  /**
   * pg.Pool's connect(): the client, with client.release(err?) to give it back; or with a callback (err, client, done).
   */
  connect (): Promise<C & { release: (err?: Error | boolean) => void }>;
  connect (callback: Callback<C>): void;
  connect (options: AcquireOptions): Promise<C & { release: (err?: Error | boolean) => void }>;
  connect (arg?: Callback<C> | AcquireOptions): Promise<C & { release: (err?: Error | boolean) => void }> | void {
    const options = typeof arg === 'function' ? {} : (arg ?? {});
    const checkedOut = this.checkout(options, true, asClient, this.siteOf(options, Pool.prototype.connect));
    if (typeof arg !== 'function') return this.promised(checkedOut);
    // The callback runs outside the promise, as pg-pool's does: what it throws is an uncaught exception, not a
    // rejection.
    checkedOut.then(
      (client) => process.nextTick(arg, undefined, client, client.release),
      (err: Error) => process.nextTick(arg, err, undefined, () => {})
    );
  }

  /**
   * pg.Pool's query(): a checkout, one query, the release. A config object may carry `signal` (an abort cancels the
   * query, or its wait for a connection) and `queryTimeout`. After a failed query the connection is reused only if
   * it is idle and healthy: one left inside a transaction, failed or not, is closed.
   */
  query<R extends pg.QueryResultRow = any>(
    text: string | PoolQueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  query<R extends pg.QueryResultRow = any>(text: string | PoolQueryConfig, callback: QueryCallback<R>): void;
  query<R extends pg.QueryResultRow = any>(
    text: string | PoolQueryConfig,
    values: unknown[] | undefined,
    callback: QueryCallback<R>,
  ): void;

  query (
    text: string | PoolQueryConfig,
    values?: unknown[] | QueryCallback,
    callback?: QueryCallback
  ): Promise<pg.QueryResult> | void {
    if (typeof text === 'function') {
      // As pg-pool: a function in the query's place is called back with why, and nothing is sent.
      const cb = text as (err: Error) => void;
      setImmediate(() => cb(new Error('Passing a function as the first parameter to pool.query is not supported')));
      return;
    }
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    const { signal, queryTimeout } =
      typeof text === 'object' ? text : ({} as { signal?: undefined; queryTimeout?: undefined });
    const checkout: AcquireOptions = { signal, queryTimeout };
    const site = this.siteOf(checkout, Pool.prototype.query);
    const run = async () => {
      const lease = (await this.checkout(checkout, true, asLease, site)) as PoolLease<C>;
      const sql = ownOptionsOff(text);
      this.log('dispatching query');
      try {
        const result = await (values === undefined ? lease.client.query(sql) : lease.client.query(sql, values));
        this.log('query dispatched');
        lease.release();
        return result as pg.QueryResult;
      } catch (err) {
        lease.release(isConnectionError(err) ? (err as Error) : undefined, true);
        throw err;
      }
    };
    const result = run();
    if (!callback) return this.promised(result);
    const cb = callback;
    result.then(
      (res) => process.nextTick(cb, undefined, res),
      (err: Error) => process.nextTick(cb, err)
    );
  }

  /**
   * Opens the `size` connections now, so that the first burst does not pay for them; rejects with the first failure,
   * giving back every one that opened.
   */
  async warm (): Promise<void> {
    if (this.settings.kind === 'null') return;
    if (this.ending) throw new PoolEndedError();
    this.filled = true;
    // New connections, never idle ones: a checkout would hand back the idle ones and open
    // nothing, so a refill after some broke would stop short of `size`. Each takes a place, so
    // that size + maxOverflow still bounds what is open.
    const deadline = this.settings.clock() + this.settings.timeout;
    const opening: Promise<void>[] = [];
    for (let missing = this.settings.size - this.coreOpen; missing > 0 && this.places.free; missing--) {
      this.places.take();
      opening.push(
        this.open(deadline).then(
          (conn) => this.putBack(conn),
          (err: unknown) => {
            this.places.leave();
            throw err;
          }
        )
      );
    }
    const failed = (await Promise.allSettled(opening)).find(
      (r): r is PromiseRejectedResult => r.status === 'rejected'
    );
    if (failed) throw failed.reason;
  }

  /**
   * Closes the idle connections now and the others as they come back; waiters get POOL_ENDED. Resolves once every
   * connection is closed.
   */
  end (): Promise<void>;
  end (callback: () => void): void;
  end (callback?: () => void): Promise<void> | void {
    this.log('ending');
    const done = new Promise<void>((resolve) => {
      if (this.ended) return resolve();
      this.endWaiters.push(resolve);
    });
    if (!this.ending) {
      this.ending = true;
      clearTimeout(this.refillTimer);
      clearTimeout(this.healthTimer);
      this.places.rejectAll(() => new PoolEndedError());
      for (const conn of [...this.idleCore, ...this.idleOverflow]) this.close(conn);
      this.checkEnded();
    }
    if (!callback) return this.promised(done);
    done.then(() => process.nextTick(callback));
  }

  /** A promise of the `Promise` option's class, when one was given (pg-pool's option). */
  private promised<T>(p: Promise<T>): Promise<T> {
    const P = this.PromiseClass;
    return P === undefined || P === Promise
      ? p
      : new P<T>((resolve, reject) => {
        p.then(resolve, reject);
      });
  }

  // Inside -----------------------------------------------------------------------------------

  /**
   * An idle connection (recycled ones closed, checked if pre-ping is on or it is a suspect), or a new one: within the
   * checkout's deadline.
   */
  private async obtain (deadline: number, signal?: AbortSignalLike): Promise<[Conn<C>, boolean]> {
    for (;;) {
      const conn = this.takeIdle(this.idleCore) ?? this.takeIdle(this.idleOverflow);
      if (!conn) return [await this.open(deadline, signal), true];
      this.unidle(conn);
      if (conn.expired || this.tooOld(conn)) {
        this.counters.recycled++;
        this.close(conn);
        continue;
      }
      const suspect = conn.checkedAt < this.invalidatedAt;
      if (this.settings.prePing || suspect) {
        const sent = this.settings.clock();
        if (!(await this.ping(conn, Math.min(this.settings.checkTimeout, deadline - sent)))) {
          this.close(conn, suspect ? 'invalidated' : 'prePing');
          if (!suspect) this.invalidate(sent); // a suspect's failure belongs to the invalidation that made it one
          continue;
        }
        conn.checkedAt = this.settings.clock();
      }
      return [conn, false];
    }
  }

  /**
   * Past `recycle` (less its jitter); the clock is read only when there is a `recycle` (it is a tenth of a checkout's
   * cost).
   */
  private tooOld (conn: Conn<C>): boolean {
    return conn.expiresAt !== Infinity && this.settings.clock() >= conn.expiresAt;
  }

  private takeIdle (list: Conn<C>[]): Conn<C> | undefined {
    return this.settings.lifo ? list.pop() : list.shift();
  }

  /** An empty query, answered within `ms`. */
  private async ping (conn: Conn<C>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, ms));
    });
    try {
      return await Promise.race([
        conn.rawQuery('').then(
          () => true,
          () => false
        ),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async open (deadline: number, signal?: AbortSignalLike): Promise<Conn<C>> {
    const client = new this.Client(this.clientConfig);
    const core = this.settings.kind === 'queue' && this.coreOpen < this.settings.size;
    if (core) this.coreOpen++;
    const openedAt = this.settings.clock();
    const conn: Conn<C> = {
      client,
      core,
      openedAt,
      expiresAt: Infinity,
      checkedAt: openedAt,
      round: this.round,
      leasedAt: openedAt,
      acquiredAt: openedAt,
      lease: undefined,
      leakTimerMs: 0,
      uses: 0,
      expired: false,
      idle: false,
      closing: false,
      doomed: undefined,
      queryTimeout: Infinity,
      rawQuery: undefined as unknown as Conn<C>['rawQuery'],
      status: undefined,
      onError: () => {},
    };
    conn.rawQuery = guardQueries(
      client,
      () => conn.queryTimeout,
      () => this.late(conn),
      this.settings.clock
    ) as Conn<C>['rawQuery'];
    // A connection that breaks reports here, idle or checked out; without a listener the process
    // would crash. An idle one is dropped and the error emitted, as pg.Pool does; a lent one is
    // closed when it comes back. Either way the others become suspects.
    conn.onError = (err: Error) => {
      if (conn.closing) return;
      this.invalidate();
      if (conn.idle) {
        this.close(conn, 'broken');
        (err as Error & { client?: C }).client = client; // as pg-pool: the error says which client
        if (!this.ending) this.emit('error', err, client);
      } else {
        conn.doomed ??= 'broken';
      }
    };
    client.on('error', conn.onError);
    this.conns.add(conn);
    this.changed();
    let why: 'timeout' | 'connectTimeout' | 'aborted' | undefined;
    const stop = (reason: 'timeout' | 'connectTimeout' | 'aborted') => {
      why ??= reason;
      kill(client);
    };
    const remaining = deadline - openedAt;
    const own = this.settings.connectTimeout < remaining;
    const limit = Math.min(remaining, this.settings.connectTimeout);
    const timer = Number.isFinite(limit)
      ? setTimeout(() => stop(own ? 'connectTimeout' : 'timeout'), Math.max(0, limit))
      : undefined;
    const onAbort = () => stop('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.log('connecting new client');
    try {
      await connectOnce(client);
      if (why) throw new Error(why);
    } catch (err) {
      this.log('client failed to connect', err);
      this.forget(conn);
      endQuietly(client).catch(() => {});
      // A core connection that could not open leaves the pool short of `size`: the refill tries again.
      if (core) this.refillSoon();
      if (why === 'timeout') {
        this.counters.timeouts++;
        throw new PoolTimeoutError(this.settings.size, this.settings.maxOverflow, this.settings.timeout);
      }
      if (why === 'aborted') {
        this.counters.aborted++;
        throw new AbortedError(signal?.reason);
      }
      this.counters.connectErrors++;
      throw new ConnectError(
        why === 'connectTimeout'
          ? new Error(`no answer within ${this.settings.connectTimeout} ms (connectTimeout)`)
          : err
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    this.log('new client connected');
    const refused = await this.hooks(client);
    if (refused) {
      // As pg-pool: the hook's own error fails the connect, and the connection is closed.
      this.forget(conn);
      kill(client);
      endQuietly(client).catch(() => {});
      this.counters.connectErrors++;
      if (core) this.refillSoon();
      throw refused;
    }
    conn.status = transactionStatusOf(client);
    conn.checkedAt = this.settings.clock();
    if (Number.isFinite(this.settings.recycle)) {
      const life = this.settings.recycle - Math.random() * this.settings.recycleJitter;
      conn.expiresAt = openedAt + life;
      conn.lifeTimer = setTimeout(() => {
        conn.expired = true;
        if (conn.idle) {
          this.counters.recycled++;
          this.close(conn);
        }
      }, life);
      conn.lifeTimer.unref?.();
    }
    this.reachable();
    this.checkSoon(this.settings.healthCheckPeriod);
    this.emit('connect', client);
    return conn;
  }

  /**
   * Reports `lease` if it is still held `thresholdMs` after its connection was had: one timer per connection, refreshed
   * by each lease it watches, which checks the lease it finds when it fires.
   */
  private watchLeak (
    conn: Conn<C>,
    lease: PoolLease<C>,
    thresholdMs: number,
    site: { stack?: string },
    label?: string
  ): void {
    lease.leak = { thresholdMs, site, reported: false, label };
    this.armLeak(conn, thresholdMs);
  }

  /** The connection's one leak timer, refreshed when the delay is the same: nothing allocated per checkout. */
  private armLeak (conn: Conn<C>, ms: number): void {
    if (conn.leakTimer && conn.leakTimerMs === ms) {
      conn.leakTimer.refresh();
      return;
    }
    clearTimeout(conn.leakTimer);
    conn.leakTimerMs = ms;
    conn.leakTimer = setTimeout(this.checkLeak, ms, conn);
    conn.leakTimer.unref?.();
  }

  /** The timer fired: the lease it finds is reported if held past its threshold, or the timer is set for the rest. */
  private readonly checkLeak = (conn: Conn<C>): void => {
    const current = conn.lease;
    if (!current?.leak || current.leak.reported || conn.closing) return;
    const heldMs = this.settings.clock() - conn.acquiredAt;
    const left = current.leak.thresholdMs - heldMs;
    if (left > 0) return this.armLeak(conn, left);
    current.leak.reported = true;
    this.reportLeak(conn.client, heldMs, current.leak, false);
  };

  private reportLeak (client: C, heldMs: number, leak: NonNullable<PoolLease<C>['leak']>, released: boolean): void {
    const stack = (leak.site.stack ?? '').split('\n').slice(1).join('\n');
    const report: LeakReport<C> = {
      client,
      heldMs,
      thresholdMs: leak.thresholdMs,
      stack,
      released,
      ...(leak.label === undefined ? {} : { label: leak.label }),
    };
    if (!released) this.counters.leaks++;
    this.log(released ? 'leaked client released' : 'client held past leakDetectionMs');
    this.emit('leak', report);
    this.options.onLeak?.(report);
  }

  /**
   * The `onConnect` hook (pg 8.20's), then pg-pool's `verify`, on a new connection: the first failure, or undefined.
   */
  private async hooks (client: C): Promise<Error | undefined> {
    const { onConnect, verify } = this.settings;
    try {
      if (onConnect) await onConnect(client);
      if (verify) {
        const err = await new Promise<Error | null | undefined>((resolve) => verify(client, resolve));
        if (err) return err;
      }
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * A lease comes back (@internal, from the lease). It is reused only in a state the next caller can trust: idle,
   * or rolled back to idle first (resetOnReturn); otherwise closed. `strict` (a failed pool.query()): not rolled back,
   * closed, as pg.Pool closes a client after a failed query.
   */
  checkin (conn: Conn<C>, err?: Error | boolean, strict = false): void {
    const heldMs = this.settings.clock() - conn.acquiredAt;
    this.counters.useMsTotal += heldMs;
    const lease = conn.lease;
    conn.lease = undefined;
    if (lease?.leak?.reported) this.reportLeak(conn.client, heldMs, lease.leak, true);
    if (!traced(releaseChannel)) return this.giveBack(conn, err, strict);
    const context: ReleaseContext = {
      pool: this,
      client: conn.client,
      error: err instanceof Error ? err : undefined,
      heldMs,
    };
    releaseChannel.traceSync(() => this.giveBack(conn, err, strict), context);
  }

  private giveBack (conn: Conn<C>, err: Error | boolean | undefined, strict: boolean): void {
    this.log('client released');
    this.emit('release', err instanceof Error ? err : undefined, conn.client);
    conn.queryTimeout = Infinity;
    if (err instanceof Error && isConnectionError(err)) {
      conn.doomed ??= 'broken';
      this.invalidate();
    }
    if (err || conn.doomed || conn.closing || this.ending || this.settings.kind === 'null') {
      return this.putBack(conn, conn.doomed ?? Boolean(err));
    }
    if (busy(conn.client)) return this.putBack(conn, 'busy');
    // Lent after the last invalidation and given back clean: it answered since.
    if (conn.leasedAt > this.invalidatedAt && conn.checkedAt < this.invalidatedAt) {
      conn.checkedAt = this.invalidatedAt;
    }
    if (!awaitingReady(conn.client)) return this.reset(conn, strict);
    // Its last query failed, and the ReadyForQuery with the transaction's state has not come yet.
    whenReady(conn.client, this.settings.checkTimeout).then((ready) =>
      ready ? this.reset(conn, strict) : this.putBack(conn, 'busy')
    );
  }

  /** Idle: back to the pool. In a transaction: rolled back first, or closed (resetOnReturn, or `strict`). */
  private reset (conn: Conn<C>, strict: boolean): void {
    const status = conn.status?.() ?? 'I'; // a client that cannot say is taken as idle
    if (status === 'I' || (this.settings.resetOnReturn === 'off' && !strict)) return this.putBack(conn);
    if (strict || this.settings.resetOnReturn === 'close') return this.putBack(conn, 'reset');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.settings.checkTimeout);
    });
    const rolledBack = conn.rawQuery('ROLLBACK').then(
      () => conn.status?.() === 'I',
      () => false
    );
    Promise.race([rolledBack, late]).then((ok) => {
      clearTimeout(timer);
      if (ok) this.counters.resets++;
      this.putBack(conn, ok && !conn.doomed ? undefined : (conn.doomed ?? 'reset'));
    });
  }

  /**
   * To the idle connections, or closed: for `cause`, or because it may not be reused (ending, broken, recycled, used
   * up, NullPool).
   */
  private putBack (conn: Conn<C>, cause?: CloseCause | boolean): void {
    const usedUp = conn.uses >= this.settings.maxUses;
    const old = conn.expired || this.tooOld(conn);
    if (
      cause ||
      this.ending ||
      conn.closing ||
      !queryable(conn.client) ||
      this.settings.kind === 'null' ||
      usedUp ||
      old
    ) {
      if (!cause && !conn.closing && (usedUp || old)) {
        this.counters.recycled++;
        this.log(usedUp ? 'remove expended client' : 'remove expired client'); // pg-pool's words
      }
      this.close(conn, typeof cause === 'string' ? cause : undefined);
    } else {
      conn.idle = true;
      // Fewer than `size` core connections are open (some broke, or failed to open): this one stays as one of them.
      if (!conn.core && this.settings.kind === 'queue' && this.coreOpen < this.settings.size) {
        conn.core = true;
        this.coreOpen++;
      }
      const idleMs = conn.core ? this.settings.sizeIdle : this.settings.overflowIdle;
      if (Number.isFinite(idleMs)) {
        conn.idleTimer = setTimeout(() => {
          conn.idleTimer = undefined;
          if (!conn.idle) return;
          this.log('remove idle client');
          // One of `size` that idled out (sizeIdle) is meant to be closed: no refill.
          this.close(conn, undefined, false);
        }, idleMs);
        conn.idleTimer.unref?.();
      }
      if (this.settings.allowExitOnIdle) socketOf(conn.client)?.unref?.();
      (conn.core ? this.idleCore : this.idleOverflow).push(conn);
    }
    this.places.leave();
    this.checkEnded();
  }

  private unidle (conn: Conn<C>): void {
    conn.idle = false;
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    if (this.settings.allowExitOnIdle) socketOf(conn.client)?.ref?.();
  }

  /**
   * Closes a connection, idle or lent (a lent one keeps its place until it comes back). One closed for a `cause` other
   * than `broken` is not trusted to answer a Terminate: its socket is destroyed.
   */
  private close (conn: Conn<C>, cause?: CloseCause, refill = true): void {
    if (conn.closing) return;
    conn.closing = true;
    if (cause) this.closedBy[cause]++;
    for (const list of [this.idleCore, this.idleOverflow]) {
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
    }
    conn.idle = false;
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.lifeTimer);
    clearTimeout(conn.leakTimer);
    this.forget(conn);
    // Errors of a closing client (the server already gone) have nowhere to go.
    conn.client.on('error', () => {});
    this.log(cause ? `closing a client (${cause})` : 'closing a client');
    const ended = traced(removeChannel)
      ? removeChannel.tracePromise(() => endQuietly(conn.client), { pool: this, client: conn.client, cause })
      : endQuietly(conn.client);
    const closed: Promise<void> = ended.then(() => {
      this.closing.delete(closed);
      this.emit('remove', conn.client);
    });
    this.closing.add(closed);
    // A broken one has said so, and pg's end() destroys a dead socket itself; the others are in doubt (a query that
    // would not end, a check that went unanswered): their socket is destroyed at once.
    if (cause && cause !== 'broken') kill(conn.client);
    if (conn.core && refill) this.refillSoon();
  }

  /**
   * pg's idleTimeoutMillis, as pg-pool means it: how long an idle connection beyond `min` (size) stays open; with
   * `sizeIdle`, the `size` ones close too, and the longer of the two is how long until none is open.
   */
  private longestIdle (): number {
    const sized =
      this.settings.size > 0 && this.settings.kind === 'queue' && Number.isFinite(this.settings.sizeIdle);
    return sized ? Math.max(this.settings.sizeIdle, this.settings.overflowIdle) : this.settings.overflowIdle;
  }

  private forget (conn: Conn<C>): void {
    if (!this.conns.delete(conn)) return;
    if (conn.core) this.coreOpen--;
    conn.client.removeListener('error', conn.onError);
    this.changed();
    this.checkEnded();
  }

  /** Ended once nothing is open or lent; end() resolves once the last connections have closed (their end() done). */
  private checkEnded (): void {
    if (!this.ending || this.ended || this.conns.size > 0 || this.places.active > 0) return;
    this.ended = true;
    Promise.all(this.closing).then(() => {
      for (const resolve of this.endWaiters.splice(0)) resolve();
    });
  }

  // Recovery ---------------------------------------------------------------------------------

  /** A query outlived its deadline: the caller has QUERY_TIMEOUT; the query is cancelled, its connection destroyed. */
  private late (conn: Conn<C>): void {
    this.counters.queryTimeouts++;
    if (conn.closing || conn.doomed === 'deadline') return;
    conn.doomed = 'deadline';
    let done = false;
    const finish = (answered: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.abandon(conn, answered);
    };
    const timer = setTimeout(() => finish(false), this.settings.checkTimeout);
    timer.unref?.();
    this.cancel(conn.client).then(
      (closed) => {
        if (closed) finish(true);
      },
      () => {}
    );
  }

  /**
   * Destroys a connection whose query will not end (@internal, from a lease whose cancel went unanswered, or past a
   * deadline). Unless a cancel reached the server, the network is in doubt: the others become suspects.
   */
  abandon (conn: Conn<C>, answered: boolean): void {
    conn.doomed ??= 'cancel';
    if (!answered) this.invalidate();
    this.close(conn, conn.doomed);
  }

  /**
   * A connection broke (SQLAlchemy's pool-wide invalidation): every connection that has not proved itself since is a
   * suspect, checked before it is lent and in the background now. A restart of PostgreSQL then costs at most one
   * failed request, not one per idle connection. `since`: when the evidence began (a failed check: when it was sent).
   */
  private invalidate (since = this.settings.clock()): void {
    if (this.ending || this.settings.kind !== 'queue') return;
    this.invalidatedAt = Math.max(this.invalidatedAt, since);
    this.checkSoon(0);
  }

  private checkSoon (ms: number): void {
    if (this.ending || this.settings.kind !== 'queue' || !Number.isFinite(ms)) return;
    if (this.healthTimer !== undefined) {
      if (ms > 0) return;
      clearTimeout(this.healthTimer);
    }
    this.healthTimer = setTimeout(() => {
      this.healthTimer = undefined;
      if (ms > 0) this.round++;
      this.checkIdle().finally(() => this.checkSoon(this.settings.healthCheckPeriod));
    }, ms);
    this.healthTimer.unref?.();
  }

  /**
   * Checks idle connections, one at a time, each in a place of its own (so that size + maxOverflow still bounds what
   * is open, and a caller never gets one mid-check): the suspects, and those neither lent nor checked for a whole
   * period. Only while places are free: a busy pool proves its connections by using them.
   */
  private async checkIdle (): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (;;) {
        if (this.ending || !this.places.free) return;
        const conn = [...this.idleCore, ...this.idleOverflow].find(
          (c) => c.checkedAt < this.invalidatedAt || c.round < this.round - 1
        );
        if (!conn) return;
        this.places.take();
        const list = conn.core ? this.idleCore : this.idleOverflow;
        list.splice(list.indexOf(conn), 1);
        this.unidle(conn);
        this.counters.healthChecks++;
        const suspect = conn.checkedAt < this.invalidatedAt;
        const sent = this.settings.clock();
        const alive = await this.ping(conn, this.settings.checkTimeout);
        conn.round = this.round;
        if (alive) conn.checkedAt = this.settings.clock();
        // It may have broken after answering (its error came while it was out of the idle list): closed as broken.
        this.putBack(conn, conn.doomed ?? (alive ? undefined : suspect ? 'invalidated' : 'healthCheck'));
        if (!alive && !suspect) this.invalidate(sent);
      }
    } finally {
      this.checking = false;
    }
  }

  /**
   * After warm(), `size` connections are to stay open: one discarded (broken, cancelled,
   * recycled) is reopened when the pool is quiet, retrying with a growing pause, jittered so that
   * a fleet does not reconnect in waves, while PostgreSQL cannot be reached. While it is busy,
   * callers open what they need.
   */
  private refillSoon (): void {
    if (!this.filled || this.ending || this.settings.kind !== 'queue' || this.refillTimer !== undefined) return;
    this.refillTimer = setTimeout(
      () => {
        this.refillTimer = undefined;
        if (this.refilling || this.ending || this.coreOpen >= this.settings.size) return;
        if (this.places.active > 0 || this.places.waiting > 0) return this.refillSoon();
        this.refilling = true;
        this.warm()
          .then(
            () => {
              this.refillMs = REFILL_FIRST_MS;
            },
            () => {
              this.refillMs = Math.min(this.refillMs * 2, REFILL_MAX_MS);
            }
          )
          .finally(() => {
            this.refilling = false;
            if (this.coreOpen < this.settings.size) this.refillSoon();
          });
      },
      this.refillMs * (0.5 + Math.random() / 2)
    );
    this.refillTimer.unref?.();
  }

  /** A connection opened: PostgreSQL answers again. A refill that was backing off (up to 10 s) is brought forward. */
  private reachable (): void {
    if (this.refillMs === REFILL_FIRST_MS) return;
    this.refillMs = REFILL_FIRST_MS;
    if (this.refillTimer === undefined) return;
    clearTimeout(this.refillTimer);
    this.refillTimer = undefined;
    this.refillSoon();
  }

  private changed (): void {
    this.options.onStateChange?.();
  }

  /** Sends a CancelRequest for the query on `client`; counted. Resolves true once the server has closed its socket. */
  cancel (client: C): Promise<boolean> {
    this.counters.cancels++;
    return sendCancel(client as unknown as CancelTarget, this.settings.checkTimeout);
  }
}

const asLease = <C extends PoolableClient>(lease: Lease<C>): Lease<C> => lease;

/**
 * client.connect() with a callback, as pg-pool calls it (a Client whose connect takes only a callback works too), or
 * the promise it returns when it takes none.
 */
function connectOnce (client: PoolableClient): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error | null) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    const returned = (client.connect as (cb: (err?: Error | null) => void) => unknown)(done);
    if (returned && typeof (returned as Promise<unknown>).then === 'function') {
      (returned as Promise<unknown>).then(() => done(), done);
    }
  });
}

/** pg.Pool's shape of a checkout: the client, with release() on it. */
function asClient<C extends PoolableClient> (lease: Lease<C>): C & { release: (err?: Error | boolean) => void } {
  const client = lease.client as C & { release: (err?: Error | boolean) => void };
  client.release = (err?: Error | boolean) => lease.release(err);
  return client;
}

/** The query config without the pool's own fields (`signal`, `queryTimeout`), which pg must not see. */
function ownOptionsOff<T> (text: T): T {
  if (typeof text !== 'object' || text === null || !('signal' in text || 'queryTimeout' in text)) return text;
  const {
    signal: _signal,
    queryTimeout: _queryTimeout,
    ...rest
  } = text as T & { signal?: unknown; queryTimeout?: unknown };
  return rest as T;
}

/** Errors after which a connection must not be reused: the server went away, or the socket broke. */
export function isConnectionError (err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  // SQLSTATE class 08 (connection exception), 57P01-03 (the server shutting down or starting).
  if (code.startsWith('08') || /^57P0[123]$/.test(code)) return true;
  if (/^E(CONNRESET|CONNREFUSED|PIPE|TIMEDOUT)$/.test(code)) return true;
  return /Connection terminated|not queryable|has been closed/i.test((err as Error | undefined)?.message ?? '');
}
