// Connection pools with SQLAlchemy's semantics on top of node-postgres.
//
// QueuePool: `size` connections stay open, up to `maxOverflow` more are opened under
// load and closed again once idle; beyond size + overflow, callers wait in FIFO order
// for at most `timeoutMs`, then get PoolTimeoutError. pg.Pool has no overflow and an
// unbounded queue: the waiting happens in a gate (gate.ts), and the connections are
// node-postgres Clients kept here.
//
// NullPool: a new connection for every checkout, closed on release.
import pg from 'pg';
import { ClientGoneError, DatabaseUnavailableError, PoolQueueFullError, PoolTimeoutError } from './errors.ts';
import { Gate } from './gate.ts';
import type { Abortable } from './abort.ts';

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
  onChange?: (gauges: PoolGauges) => void;
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

/** The pool's state at a moment: what the live dashboard draws. One object, updated in place. */
export interface PoolGauges {
  /** Connections open (idle + in use). */
  total: number;
  idle: number;
  inUse: number;
  overflowInUse: number;
  waiting: number;
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
  acquire(signal?: Abortable): Promise<Lease>;
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

/** One connection of the QueuePool. */
interface Conn {
  client: pg.Client;
  /** One of the POOL_SIZE kept open; otherwise overflow, closed after OVERFLOW_IDLE_MS idle. */
  core: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

class QueueLease implements Lease {
  readonly client: pg.ClientBase;
  readonly overflow: boolean;
  private released = false;

  constructor (private readonly pool: QueuePool, private readonly conn: Conn, readonly startedAt: number, readonly waitMs: number) {
    this.client = conn.client;
    this.overflow = !conn.core;
  }

  release (err?: Error): void {
    if (this.released) return;
    this.released = true;
    this.pool.checkin(this.conn, err);
  }
}

/**
 * QueuePool, over node-postgres Clients kept in plain arrays (as pg-pool does), with the gate in
 * front: a caller gets a place first, then an idle connection (a core one before an overflow
 * one), or a new one. pg.Pool would add a queue and a timer per checkout of its own.
 */
class QueuePool implements ConnectionPool {
  private readonly gate: Gate;
  private counters = { acquired: 0, timeouts: 0, rejected: 0, connectErrors: 0 };
  private readonly idleCore: Conn[] = [];
  private readonly idleOverflow: Conn[] = [];
  /** Connections open or opening: idle, checked out, or connecting. */
  private open = 0;
  private coreOpen = 0;
  private ending = false;
  private ended: (() => void) | undefined;
  private refilling = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private refillBackoffMs = REFILL_FIRST_MS;
  private readonly gauges: PoolGauges = { total: 0, idle: 0, inUse: 0, overflowInUse: 0, waiting: 0 };

  constructor (private readonly options: PoolOptions) {
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
  }

  acquire (signal?: Abortable): Promise<Lease> {
    return this.checkout(signal, true);
  }

  /** `counted`: a request's checkout, in the counters; the pool's own (warming) is not. */
  private async checkout (signal: Abortable | undefined, counted: boolean): Promise<Lease> {
    const started = performance.now();
    // From the same reading: a second clock read could differ by a GC pause, and reorder leases.
    const startedAt = performance.timeOrigin + started;
    await this.gate.enter(signal);
    let conn = this.idleCore.pop() ?? this.idleOverflow.pop();
    if (conn) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    } else {
      try {
        conn = await this.connect();
      } catch (err) {
        if (counted) this.counters.connectErrors++;
        this.gate.leave();
        this.refillSoon();
        throw new DatabaseUnavailableError(err);
      }
      if (counted) this.reachable();
    }
    if (counted) this.counters.acquired++;
    return new QueueLease(this, conn, startedAt, performance.now() - started);
  }

  /** Opens one connection; it is core while fewer than POOL_SIZE are. */
  private async connect (): Promise<Conn> {
    const client = new pg.Client(clientConfig(this.options));
    const conn: Conn = { client, core: this.coreOpen < this.options.size, idleTimer: undefined };
    this.open++;
    if (conn.core) this.coreOpen++;
    // A connection that breaks (the server went away) reports here, idle or checked out; without
    // a listener the process would crash. An idle one is dropped at once.
    client.on('error', (err) => {
      if (!this.ending) this.options.onError?.(err);
      this.drop(conn);
    });
    try {
      await client.connect();
    } catch (err) {
      this.forget(conn);
      client.end().catch(() => {});
      throw err;
    }
    this.publish();
    return conn;
  }

  /**
   * A request opened a connection: the database is back. A refill that was backing off (up to 10 s while
   * PostgreSQL was down) is brought forward, so that the core connections reopen now.
   */
  private reachable (): void {
    if (this.refillBackoffMs === REFILL_FIRST_MS) return;
    this.refillBackoffMs = REFILL_FIRST_MS;
    if (this.refillTimer === undefined) return;
    clearTimeout(this.refillTimer);
    this.refillTimer = undefined;
    this.refillSoon();
  }

  /** A checked-out connection comes back: to the idle ones, or, after an error or a cancel, closed. */
  checkin (conn: Conn, err?: Error): void {
    if (err || this.ending) {
      this.close(conn);
    } else if (conn.core) {
      this.idleCore.push(conn);
    } else {
      conn.idleTimer = setTimeout(() => this.drop(conn), OVERFLOW_IDLE_MS);
      conn.idleTimer.unref();
      this.idleOverflow.push(conn);
    }
    this.gate.leave();
    if (this.coreOpen < this.options.size) this.refillSoon();
  }

  /** Closes an idle connection (an overflow one idle too long, or one that broke). */
  private drop (conn: Conn): void {
    for (const idle of [this.idleCore, this.idleOverflow]) {
      const i = idle.indexOf(conn);
      if (i >= 0) {
        idle.splice(i, 1);
        this.close(conn);
        return;
      }
    }
  }

  private close (conn: Conn): void {
    clearTimeout(conn.idleTimer);
    this.forget(conn);
    conn.client.end().catch(() => {});
    this.publish();
    // A core connection discarded: POOL_SIZE are to stay open.
    if (conn.core) this.refillSoon();
  }

  /** Counts a connection as gone. */
  private forget (conn: Conn): void {
    this.open--;
    if (conn.core) this.coreOpen--;
    if (this.ending && this.open === 0) this.ended?.();
  }

  /** Called on every checkout and release: it must not allocate. */
  private publish (): void {
    if (!this.options.onChange) return;
    const g = this.gauges;
    g.total = this.open;
    g.idle = this.idleCore.length + this.idleOverflow.length;
    g.inUse = this.gate.active;
    g.overflowInUse = Math.max(0, g.inUse - this.options.size);
    g.waiting = this.gate.waiting;
    this.options.onChange(g);
  }

  /**
   * Opens the core connections: all `size` checked out at once, so that each is a new one where
   * needed. Every checkout that succeeded is given back, also when another failed (PostgreSQL
   * still starting, or at max_connections): a lease left out would hold its place for good.
   */
  async warm (): Promise<void> {
    const results = await Promise.allSettled(Array.from({ length: this.options.size }, () => this.checkout(undefined, false)));
    for (const r of results) if (r.status === 'fulfilled') r.value.release();
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Brings the core connections back to POOL_SIZE when the pool is quiet (nothing checked out),
   * retrying with a growing pause while PostgreSQL cannot be reached. When it is busy, the
   * requests open what they need, and the next quiet moment tops it up.
   */
  private refillSoon (): void {
    if (this.refillTimer !== undefined || this.ending) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.refilling || this.ending || this.coreOpen >= this.options.size) return;
      if (this.gate.active > 0) return this.refillSoon();
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
      total: this.open,
      idle: this.idleCore.length + this.idleOverflow.length,
      inUse,
      overflowInUse: Math.max(0, inUse - size),
      waiting: this.gate.waiting,
      ...this.counters,
    };
  }

  /** Closes the idle connections now and the others as they come back; resolves once all are closed. */
  async end (): Promise<void> {
    this.ending = true;
    clearTimeout(this.refillTimer);
    const done = new Promise<void>((resolve) => { this.ended = resolve; });
    for (const conn of [...this.idleCore, ...this.idleOverflow]) this.close(conn);
    this.idleCore.length = 0;
    this.idleOverflow.length = 0;
    if (this.open === 0) return;
    await done;
  }
}

class NullPool implements ConnectionPool {
  private open = 0;
  private counters = { acquired: 0, timeouts: 0, rejected: 0, connectErrors: 0 };

  constructor (private readonly options: PoolOptions) {}

  async acquire (signal?: Abortable): Promise<Lease> {
    if (signal?.aborted) throw new ClientGoneError();
    const started = performance.now();
    // From the same reading: a second clock read could differ by a GC pause, and reorder leases.
    const startedAt = performance.timeOrigin + started;
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
