// Connection pools with SQLAlchemy's semantics on top of node-postgres.
//
// QueuePool: `size` connections stay open, up to `maxOverflow` more are opened under
// load and closed again once idle; beyond size + overflow, callers wait in FIFO order
// for at most `timeoutMs`, then get PoolTimeoutError. pg.Pool has no overflow and an
// unbounded queue, so the waiting happens in a gate in front of it: pg.Pool is never
// asked for more clients than it may open, and so never queues.
//
// NullPool: a new connection for every checkout, closed on release.
import pg from 'pg';
import { now } from '../clock.ts';
import { ClientGoneError, DatabaseUnavailableError, PoolQueueFullError, PoolTimeoutError } from './errors.ts';
import { Gate } from './gate.ts';

export const APPLICATION_NAME = 'async-node-postgres';

/** How long an overflow connection may sit idle before it is closed. */
const OVERFLOW_IDLE_MS = 1000;

/** The pause before reopening a discarded core connection, doubled after each failure up to the maximum. */
const REFILL_FIRST_MS = 100;
const REFILL_MAX_MS = 10_000;

export interface PoolOptions {
  connectionString: string;
  kind: 'queue' | 'none';
  size: number;
  maxOverflow: number;
  timeoutMs: number;
  /** Most requests that may wait for a connection; beyond it they are refused at once. */
  queueMax?: number;
  /** PostgreSQL's statement_timeout for our connections, in ms (0 or unset: none). */
  statementTimeoutMs?: number;
  /** Do not send statement_timeout at connect time (PgBouncer: it is set per transaction). */
  perTransactionTimeout?: boolean;
  /** Called whenever the pool's state changes (a checkout, a release, a connection opened or closed). */
  onChange?: (stats: PoolStats) => void;
  onError?: (err: Error) => void;
}

export interface Lease {
  client: pg.ClientBase;
  /** When the caller started asking for a connection (epoch ms). */
  startedAt: number;
  /** Time spent waiting for this connection (queue + connect), in ms. */
  waitMs: number;
  /** True when this checkout got an overflow connection (one beyond the pool's core size). */
  overflow: boolean;
  /** Gives the connection back; with an error, the connection is discarded. */
  release(err?: Error): void;
}

export interface PoolStats {
  kind: 'queue' | 'none';
  size: number;
  maxOverflow: number;
  /** Connections open (idle + in use). */
  total: number;
  idle: number;
  inUse: number;
  overflowInUse: number;
  waiting: number;
  /** Counters since start. */
  acquired: number;
  timeouts: number;
  rejected: number;
  connectErrors: number;
}

export interface ConnectionPool {
  acquire(signal?: AbortSignal): Promise<Lease>;
  /** Opens the core connections now, so that the first burst does not pay for them. */
  warm(): Promise<void>;
  stats(): PoolStats;
  end(): Promise<void>;
}

export function createPool (options: PoolOptions): ConnectionPool {
  return options.kind === 'none' ? new NullPool(options) : new QueuePool(options);
}

function clientConfig (options: PoolOptions): pg.ClientConfig {
  return {
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.timeoutMs,
    // Lets the dashboard tell our backends from others in pg_stat_activity.
    application_name: APPLICATION_NAME,
    // Sent at connect time, so it holds for every statement on the connection.
    ...(options.statementTimeoutMs && !options.perTransactionTimeout ? { statement_timeout: options.statementTimeoutMs } : {}),
  };
}

class QueuePool implements ConnectionPool {
  private readonly pg: pg.Pool;
  private readonly gate: Gate;
  private counters = { acquired: 0, timeouts: 0, rejected: 0, connectErrors: 0 };
  // The first `size` connections opened are the core ones; the others are overflow.
  private readonly core = new Set<pg.PoolClient>();
  /** Every connection whose socket is still open. */
  private readonly open = new Set<pg.PoolClient>();
  private ending = false;
  private refilling = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private refillBackoffMs = REFILL_FIRST_MS;

  constructor (private readonly options: PoolOptions) {
    const onError = (err: Error) => {
      if (!this.ending) options.onError?.(err);
    };
    const { size, maxOverflow, timeoutMs, queueMax } = options;
    this.gate = new Gate({
      capacity: size + maxOverflow,
      timeoutMs,
      queueMax,
      timedOut: () => {
        this.counters.timeouts++;
        return new PoolTimeoutError(size, maxOverflow, timeoutMs / 1000);
      },
      full: () => {
        this.counters.rejected++;
        return new PoolQueueFullError(queueMax ?? Infinity);
      },
      onChange: () => this.publish(),
    });
    this.pg = new pg.Pool({
      ...clientConfig(options),
      max: options.size + options.maxOverflow,
      min: options.size,
      idleTimeoutMillis: OVERFLOW_IDLE_MS,
    });
    // An idle connection that breaks (server restarted) is reported here; without a
    // listener the process would crash. pg.Pool drops the client by itself.
    this.pg.on('error', onError);
    this.pg.on('connect', (client) => {
      // A checked-out client's errors are ours to handle (pg.Pool only listens while it is
      // idle): a connection reset mid-query must fail that query, not crash the process.
      client.on('error', onError);
      this.open.add(client);
      client.once('end', () => this.open.delete(client));
      if (this.core.size < options.size) this.core.add(client);
      this.publish();
    });
    this.pg.on('remove', (client) => {
      this.core.delete(client);
      this.publish();
      // pg.Pool does not replace a discarded connection (a cancelled query, a broken socket):
      // POOL_SIZE connections are to stay open, so open it again once the pool is quiet.
      this.refillSoon();
    });
  }

  acquire (signal?: AbortSignal): Promise<Lease> {
    return this.checkout(signal, true);
  }

  /** `counted`: a request's checkout, in the counters; the pool's own (warming, refilling) is not. */
  private async checkout (signal: AbortSignal | undefined, counted: boolean): Promise<Lease> {
    const started = performance.now();
    const startedAt = now();
    await this.gate.enter(signal);
    let client: pg.PoolClient;
    try {
      client = await this.pg.connect();
    } catch (err) {
      if (counted) this.counters.connectErrors++;
      this.gate.leave();
      this.refillSoon();
      throw new DatabaseUnavailableError(err);
    }
    if (counted) this.counters.acquired++;
    let released = false;
    return {
      client,
      startedAt,
      waitMs: performance.now() - started,
      overflow: !this.core.has(client),
      release: (err?: Error) => {
        if (released) return;
        released = true;
        client.release(err ?? false);
        this.gate.leave();
        if (this.refillTimer === undefined && this.pg.totalCount < this.options.size) this.refillSoon();
      },
    };
  }

  private publish (): void {
    this.options.onChange?.(this.stats());
  }

  /** Opens the core connections: all `size` checked out at once, so that each is a new one where needed. */
  async warm (): Promise<void> {
    const leases = await Promise.all(Array.from({ length: this.options.size }, () => this.checkout(undefined, false)));
    for (const lease of leases) lease.release();
  }

  /**
   * Brings the open connections back to POOL_SIZE when the pool is quiet (nothing checked out),
   * retrying with a growing pause while PostgreSQL cannot be reached. When it is busy, the
   * requests open what they need, and the next quiet moment tops it up.
   */
  private refillSoon (): void {
    if (this.refillTimer !== undefined || this.ending) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.refilling || this.ending || this.pg.totalCount >= this.options.size || this.gate.active > 0) return;
      this.refilling = true;
      this.warm().then(() => {
        this.refillBackoffMs = REFILL_FIRST_MS;
      }, () => {
        this.refillBackoffMs = Math.min(this.refillBackoffMs * 2, REFILL_MAX_MS);
        this.refillSoon();
      }).finally(() => { this.refilling = false; });
    }, this.refillBackoffMs);
    this.refillTimer.unref();
  }

  stats (): PoolStats {
    const { size, maxOverflow } = this.options;
    const inUse = this.gate.active;
    return {
      kind: 'queue',
      size,
      maxOverflow,
      total: this.pg.totalCount,
      idle: this.pg.idleCount,
      inUse,
      overflowInUse: Math.max(0, inUse - size),
      waiting: this.gate.waiting,
      ...this.counters,
    };
  }

  /** Resolves once every connection is closed: pg.Pool.end() only asks them to close. */
  async end (): Promise<void> {
    this.ending = true;
    clearTimeout(this.refillTimer);
    const closed = [...this.open].map((client) => new Promise((resolve) => client.once('end', resolve)));
    await this.pg.end();
    await Promise.all(closed);
  }
}

class NullPool implements ConnectionPool {
  private open = 0;
  private counters = { acquired: 0, timeouts: 0, rejected: 0, connectErrors: 0 };

  constructor (private readonly options: PoolOptions) {}

  async acquire (signal?: AbortSignal): Promise<Lease> {
    if (signal?.aborted) throw new ClientGoneError();
    const started = performance.now();
    const startedAt = now();
    const client = new pg.Client(clientConfig(this.options));
    client.on('error', (err) => this.options.onError?.(err));
    this.open++;
    this.publish();
    try {
      await client.connect();
    } catch (err) {
      this.open--;
      this.publish();
      this.counters.connectErrors++;
      await client.end().catch(() => {});
      throw new DatabaseUnavailableError(err);
    }
    this.counters.acquired++;
    let released = false;
    return {
      client,
      startedAt,
      waitMs: performance.now() - started,
      overflow: false,
      release: () => {
        if (released) return;
        released = true;
        this.open--;
        this.publish();
        client.end().catch(() => {});
      },
    };
  }

  private publish (): void {
    this.options.onChange?.(this.stats());
  }

  async warm (): Promise<void> {}

  stats (): PoolStats {
    return {
      kind: 'none',
      size: 0,
      maxOverflow: 0,
      total: this.open,
      idle: 0,
      inUse: this.open,
      overflowInUse: 0,
      waiting: 0,
      ...this.counters,
    };
  }

  async end (): Promise<void> {}
}
