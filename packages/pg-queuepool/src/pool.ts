// QueuePool (SQLAlchemy's semantics) over node-postgres, shaped as pg.Pool so that what takes a
// pg.Pool takes this one. `size` connections stay open once opened; up to `maxOverflow` more are
// opened under load and closed after `overflowIdle`; beyond that, callers wait in FIFO order in a
// bounded queue, and `timeout` bounds the whole checkout: the queue and the connect together.
// NullPool (kind 'null'): a new connection per checkout, closed on release.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { sendCancel, type CancelTarget } from './cancel.js';
import { AbortedError, ConnectError, PoolEndedError, PoolQueueFullError, PoolTimeoutError } from './errors.js';
import { clientOptions, settingsOf, type AbortSignalLike, type CheckoutTiming, type QueuePoolOptions, type Settings } from './options.js';
import { PlaceQueue } from './queue.js';

/** What the pool needs of a node-postgres Client (pg.Client, or pg-native's, or a test's). */
export interface PoolableClient {
  connect(): Promise<unknown>;
  end(): Promise<unknown>;
  query(...args: any[]): any;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  release?: (err?: Error | boolean) => void;
}

export type ClientConstructor<C extends PoolableClient> = new (config?: any) => C;

export interface PoolOptions extends QueuePoolOptions, pg.ClientConfig {}

export interface AcquireOptions {
  /**
   * Aborts the checkout: a caller still waiting leaves the queue at once (its place goes to the
   * next), a connect in progress is dropped. Once the connection is held, an abort cancels the
   * query running on it with a CancelRequest; the connection goes back to the pool only after
   * PostgreSQL has answered that query and closed the cancel's socket, so no late cancel can stop
   * the next caller's query.
   */
  signal?: AbortSignalLike;
}

/** A checked-out connection: the client, how the checkout went, and the way to give it back. */
export interface Lease<C extends PoolableClient = pg.Client> extends CheckoutTiming {
  readonly client: C;
  /** Gives the connection back; with an error (or true), it is closed instead of reused. */
  release(err?: Error | boolean): void;
}

/** The pool's state and counters, one shape for /metrics, logs and dashboards. */
export interface PoolStats {
  kind: 'queue' | 'null';
  size: number;
  maxOverflow: number;
  /** Connections open or opening. */
  total: number;
  idle: number;
  /** Places taken: connections checked out, or being opened for a caller. */
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
  /** CancelRequests sent for queries whose lease's signal aborted. */
  cancels: number;
  /** Connections closed after `recycle`, after `maxUses`, or by a failed pre-ping. */
  recycled: number;
}

interface Conn<C extends PoolableClient> {
  client: C;
  /** One of the first `size` (kept open), or overflow (closed after `overflowIdle` idle). */
  core: boolean;
  openedAt: number;
  uses: number;
  expired: boolean;
  idle: boolean;
  closing: boolean;
  idleTimer?: NodeJS.Timeout;
  lifeTimer?: NodeJS.Timeout;
  onError: (err: Error) => void;
}

type Callback<C> = (err: Error | undefined, client?: C, done?: (err?: Error | boolean) => void) => void;

/** How often, and how many times, a cancel is sent again while the query still runs (one sent before the query reached the backend is dropped by it). */
const CANCEL_RETRY_MS = 200;
const CANCEL_TRIES = 25;
/** The refill of `size` connections after one was discarded: first pause, doubled while PostgreSQL cannot be reached. */
const REFILL_FIRST_MS = 100;
const REFILL_MAX_MS = 10_000;

const defaultClock = () => performance.now();

export class Pool<C extends PoolableClient = pg.Client> extends EventEmitter {
  readonly options: PoolOptions;
  readonly Client: ClientConstructor<C>;
  ending = false;
  ended = false;
  private readonly s: Settings;
  private readonly places: PlaceQueue;
  // Idle core connections are handed out before idle overflow ones, so that the overflow ones idle out.
  private readonly idleCore: Conn<C>[] = [];
  private readonly idleOverflow: Conn<C>[] = [];
  /** Core connections open: the first `size`; the ones beyond are overflow, closed after `overflowIdle`. */
  private coreOpen = 0;
  private readonly conns = new Set<Conn<C>>();
  private readonly clientConfig: object;
  private readonly epochOf: (t: number) => number;
  private readonly counters = { acquired: 0, queued: 0, timeouts: 0, rejected: 0, aborted: 0, connectErrors: 0, cancels: 0, recycled: 0 };
  /** Connections opened and still wanted back: one discarded is reopened while fewer than `size` are. */
  private filled = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private refillMs = REFILL_FIRST_MS;
  private refilling = false;
  private endWaiters: (() => void)[] = [];

  constructor (options: PoolOptions = {}, Client?: ClientConstructor<C>) {
    super();
    this.s = settingsOf(options);
    this.options = { ...options };
    // As pg-pool does: the password is not enumerable, so it shows in no log of the options.
    if ('password' in options) Object.defineProperty(this.options, 'password', { enumerable: false, writable: true, configurable: true, value: options.password });
    this.Client = Client ?? (pg.Client as unknown as ClientConstructor<C>);
    this.clientConfig = clientOptions(options);
    this.epochOf = options.clock === undefined || options.clock === defaultClock ? (t) => performance.timeOrigin + t : () => Date.now();
    const { size, maxOverflow, timeout } = this.s;
    this.places = new PlaceQueue({
      capacity: this.s.kind === 'null' ? Infinity : size + maxOverflow,
      queueMax: this.s.queueMax,
      now: this.s.clock,
      timedOut: () => {
        this.counters.timeouts++;
        return new PoolTimeoutError(size, maxOverflow, timeout);
      },
      full: () => {
        this.counters.rejected++;
        return new PoolQueueFullError(this.s.queueMax);
      },
      aborted: (reason) => {
        this.counters.aborted++;
        return new AbortedError(reason);
      },
      onChange: () => this.changed(),
    });
  }

  // pg.Pool's counts -------------------------------------------------------------------------

  /** `size`: the connections kept open once opened. */
  get size (): number { return this.s.kind === 'null' ? 0 : this.s.size; }
  get totalCount (): number { return this.conns.size; }
  get idleCount (): number { return this.idleCore.length + this.idleOverflow.length; }
  get waitingCount (): number { return this.places.waiting; }
  /** Places taken (checked out, or being opened for a caller). */
  get inUseCount (): number { return this.places.active; }
  get expiredCount (): number {
    let n = 0;
    for (const c of this.conns) if (c.expired && !c.idle) n++;
    return n;
  }

  stats (): PoolStats {
    const { kind, size, maxOverflow } = this.s;
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
    };
  }

  // Checkout ---------------------------------------------------------------------------------

  /** Checks out a connection (the native API): resolves with a lease, or rejects with a PoolError. */
  acquire (options: AcquireOptions = {}): Promise<Lease<C>> {
    return this.checkout(options, true, asLease);
  }

  /**
   * `counted`: a caller's checkout, in the counters and the hook; the pool's own (warm) is not.
   * `as` shapes what the caller gets (the lease, or pg.Pool's client with release()).
   * Written without async/await, and one promise per checkout: a caller that finds a place and an
   * idle connection has it in one step, and a waiter is handed the connection inside the
   * release that frees it, as pg-pool does.
   */
  private checkout<T> (options: AcquireOptions, counted: boolean, as: (lease: Lease<C>) => T): Promise<T> {
    const { signal } = options;
    if (this.ending) return Promise.reject(new PoolEndedError());
    if (signal?.aborted) {
      this.counters.aborted++;
      return Promise.reject(new AbortedError(signal.reason));
    }
    const started = this.s.clock();
    const deadline = started + this.s.timeout;
    if (this.places.free) {
      this.places.take();
      try {
        return Promise.resolve(this.lend(started, deadline, false, signal, counted, as));
      } catch (err) {
        return Promise.reject(err); // an onCheckout hook that threw: a rejection, as from a wait
      }
    }
    if (counted) this.counters.queued++;
    return this.places.wait(deadline, signal, () => this.lend(started, deadline, true, signal, counted, as));
  }

  /** With a place taken: an idle connection now when one is ready, else obtain() one; the place is given back on failure. */
  private lend<T> (started: number, deadline: number, queued: boolean, signal: AbortSignalLike | undefined, counted: boolean, as: (lease: Lease<C>) => T): T | Promise<T> {
    if (this.ending) {
      this.places.leave();
      throw new PoolEndedError();
    }
    const ready = this.s.prePing ? undefined : this.takeReady();
    if (ready) return as(this.lease(ready, false, started, queued, signal, counted));
    return this.obtain(deadline, signal).then(
      ([conn, opened]) => as(this.lease(conn, opened, started, queued, signal, counted)),
      (err: unknown) => {
        this.places.leave();
        throw err;
      });
  }

  /** An idle connection that needs no check (pre-ping off): the recycled ones on the way are closed. */
  private takeReady (): Conn<C> | undefined {
    for (;;) {
      const conn = this.takeIdle(this.idleCore) ?? this.takeIdle(this.idleOverflow);
      if (!conn) return undefined;
      this.unidle(conn);
      if (!conn.expired && !this.tooOld(conn)) return conn;
      this.counters.recycled++;
      this.close(conn);
    }
  }

  private lease (conn: Conn<C>, opened: boolean, started: number, queued: boolean, signal: AbortSignalLike | undefined, counted: boolean): Lease<C> {
    if (counted) this.counters.acquired++;
    conn.uses++;
    // Not queued and not connecting, it waited for nothing: no second reading of the clock.
    const waitMs = queued || opened ? this.s.clock() - started : 0;
    const lease = new PoolLease(this, conn, this.epochOf(started), waitMs, queued, opened, this.s.kind === 'queue' && !conn.core, signal);
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

  /** pg.Pool's connect(): the client, with client.release(err?) to give it back; or with a callback (err, client, done). */
  connect (): Promise<C & { release: (err?: Error | boolean) => void }>;
  connect (callback: Callback<C>): void;
  connect (options: AcquireOptions): Promise<C & { release: (err?: Error | boolean) => void }>;
  connect (arg?: Callback<C> | AcquireOptions): Promise<C & { release: (err?: Error | boolean) => void }> | void {
    const checkedOut = this.checkout(typeof arg === 'function' ? {} : arg ?? {}, true, asClient);
    if (typeof arg !== 'function') return checkedOut;
    checkedOut.then((client) => arg(undefined, client, client.release), (err: Error) => arg(err, undefined, () => {}));
  }

  /**
   * pg.Pool's query(): a checkout, one query, the release. A config object may carry `signal`: an
   * abort cancels the query (CancelRequest) or its wait for a connection.
   */
  query (text: string | (pg.QueryConfig & { signal?: AbortSignalLike }), values?: unknown[] | ((err: Error | undefined, res?: pg.QueryResult) => void), callback?: (err: Error | undefined, res?: pg.QueryResult) => void): Promise<pg.QueryResult> | void {
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    const signal = typeof text === 'object' ? text.signal : undefined;
    const run = async () => {
      const lease = await this.acquire({ signal });
      try {
        const result = await (values === undefined ? lease.client.query(stripSignal(text)) : lease.client.query(stripSignal(text), values));
        lease.release();
        return result as pg.QueryResult;
      } catch (err) {
        lease.release(isConnectionError(err) ? err as Error : undefined);
        throw err;
      }
    };
    const result = run();
    if (!callback) return result;
    const cb = callback;
    result.then((res) => cb(undefined, res), (err: Error) => cb(err));
  }

  /** Opens the `size` connections now, so that the first burst does not pay for them; rejects with the first failure, giving back every one that opened. */
  async warm (): Promise<void> {
    if (this.s.kind === 'null') return;
    if (this.ending) throw new PoolEndedError();
    this.filled = true;
    // New connections, never idle ones: a checkout would hand back the idle ones and open
    // nothing, so a refill after some broke would stop short of `size`. Each takes a place, so
    // that size + maxOverflow still bounds what is open.
    const deadline = this.s.clock() + this.s.timeout;
    const opening: Promise<void>[] = [];
    for (let missing = this.s.size - this.coreOpen; missing > 0 && this.places.free; missing--) {
      this.places.take();
      opening.push(this.open(deadline).then((conn) => this.putBack(conn), (err: unknown) => {
        this.places.leave();
        throw err;
      }));
    }
    const failed = (await Promise.allSettled(opening)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Closes the idle connections now and the others as they come back; waiters get POOL_ENDED. Resolves once every connection is closed. */
  end (callback?: () => void): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.ended) return resolve();
      this.endWaiters.push(resolve);
    });
    if (!this.ending) {
      this.ending = true;
      clearTimeout(this.refillTimer);
      this.places.rejectAll(() => new PoolEndedError());
      for (const conn of [...this.idleCore, ...this.idleOverflow]) this.close(conn);
      this.checkEnded();
    }
    if (callback) done.then(callback, callback);
    return done;
  }

  // Inside -----------------------------------------------------------------------------------

  /** An idle connection (recycled ones closed, pre-pinged if asked), or a new one: within the checkout's deadline. */
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
      if (this.s.prePing && !(await this.ping(conn, deadline))) {
        this.counters.recycled++;
        this.close(conn);
        continue;
      }
      return [conn, false];
    }
  }

  /** Past `recycle`; the clock is read only when there is a `recycle` (it is a tenth of a checkout's cost). */
  private tooOld (conn: Conn<C>): boolean {
    return this.s.recycle !== Infinity && this.s.clock() - conn.openedAt >= this.s.recycle;
  }

  private takeIdle (list: Conn<C>[]): Conn<C> | undefined {
    return this.s.lifo ? list.pop() : list.shift();
  }

  private async ping (conn: Conn<C>, deadline: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - this.s.clock())); });
    try {
      return await Promise.race([Promise.resolve(conn.client.query('')).then(() => true, () => false), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async open (deadline: number, signal?: AbortSignalLike): Promise<Conn<C>> {
    const client = new this.Client(this.clientConfig);
    const core = this.s.kind === 'queue' && this.coreOpen < this.s.size;
    if (core) this.coreOpen++;
    const conn: Conn<C> = { client, core, openedAt: this.s.clock(), uses: 0, expired: false, idle: false, closing: false, onError: () => {} };
    // A connection that breaks reports here, idle or checked out; without a listener the process
    // would crash. An idle one is dropped and the error emitted, as pg.Pool does.
    conn.onError = (err: Error) => {
      if (conn.idle) {
        this.close(conn);
        if (!this.ending) this.emit('error', err, client);
      }
    };
    client.on('error', conn.onError);
    this.conns.add(conn);
    this.changed();
    let why: 'timeout' | 'aborted' | undefined;
    const stop = (reason: 'timeout' | 'aborted') => {
      why ??= reason;
      kill(client);
    };
    const remaining = deadline - this.s.clock();
    const timer = Number.isFinite(remaining) ? setTimeout(() => stop('timeout'), Math.max(0, remaining)) : undefined;
    const onAbort = () => stop('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
      if (why) throw new Error(why);
    } catch (err) {
      this.forget(conn);
      Promise.resolve(client.end()).catch(() => {});
      if (why === 'timeout') {
        this.counters.timeouts++;
        throw new PoolTimeoutError(this.s.size, this.s.maxOverflow, this.s.timeout);
      }
      if (why === 'aborted') {
        this.counters.aborted++;
        throw new AbortedError(signal?.reason);
      }
      this.counters.connectErrors++;
      throw new ConnectError(err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    if (Number.isFinite(this.s.recycle)) {
      conn.lifeTimer = setTimeout(() => {
        conn.expired = true;
        if (conn.idle) {
          this.counters.recycled++;
          this.close(conn);
        }
      }, this.s.recycle);
      conn.lifeTimer.unref?.();
    }
    this.reachable();
    this.emit('connect', client);
    return conn;
  }

  /** A lease comes back: to the idle connections, or closed (an error, ending, recycled, used up, NullPool). */
  checkin (conn: Conn<C>, err?: Error | boolean): void {
    this.emit('release', err instanceof Error ? err : undefined, conn.client);
    this.putBack(conn, err);
  }

  private putBack (conn: Conn<C>, err?: Error | boolean): void {
    const queryable = (conn.client as { _queryable?: boolean })._queryable !== false && !(conn.client as { _ending?: boolean })._ending;
    const usedUp = conn.uses >= this.s.maxUses;
    const old = conn.expired || this.tooOld(conn);
    if (err || this.ending || !queryable || this.s.kind === 'null' || usedUp || old) {
      if (!err && (usedUp || old)) this.counters.recycled++;
      this.close(conn);
    } else {
      conn.idle = true;
      if (!conn.core && Number.isFinite(this.s.overflowIdle)) {
        conn.idleTimer = setTimeout(() => {
          conn.idleTimer = undefined;
          if (conn.idle) this.close(conn);
        }, this.s.overflowIdle);
        conn.idleTimer.unref?.();
      }
      if (this.s.allowExitOnIdle) socketOf(conn.client)?.unref?.();
      (conn.core ? this.idleCore : this.idleOverflow).push(conn);
    }
    this.places.leave();
    this.checkEnded();
  }

  private unidle (conn: Conn<C>): void {
    conn.idle = false;
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    if (this.s.allowExitOnIdle) socketOf(conn.client)?.ref?.();
  }

  private close (conn: Conn<C>): void {
    if (conn.closing) return;
    conn.closing = true;
    for (const list of [this.idleCore, this.idleOverflow]) {
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
    }
    conn.idle = false;
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.lifeTimer);
    this.forget(conn);
    // Errors of a closing client (the server already gone) have nowhere to go.
    conn.client.on('error', () => {});
    Promise.resolve(conn.client.end()).catch(() => {}).finally(() => this.emit('remove', conn.client));
    if (conn.core) this.refillSoon();
  }

  private forget (conn: Conn<C>): void {
    if (!this.conns.delete(conn)) return;
    if (conn.core) this.coreOpen--;
    conn.client.removeListener('error', conn.onError);
    this.changed();
    this.checkEnded();
  }

  private checkEnded (): void {
    if (!this.ending || this.ended || this.conns.size > 0 || this.places.active > 0) return;
    this.ended = true;
    for (const resolve of this.endWaiters.splice(0)) resolve();
  }

  /**
   * After warm(), `size` connections are to stay open: one discarded (broken, cancelled,
   * recycled) is reopened when the pool is quiet, retrying with a growing pause while PostgreSQL
   * cannot be reached. While it is busy, callers open what they need.
   */
  private refillSoon (): void {
    if (!this.filled || this.ending || this.s.kind !== 'queue' || this.refillTimer !== undefined) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.refilling || this.ending || this.coreOpen >= this.s.size) return;
      if (this.places.active > 0 || this.places.waiting > 0) return this.refillSoon();
      this.refilling = true;
      this.warm().then(() => {
        this.refillMs = REFILL_FIRST_MS;
      }, () => {
        this.refillMs = Math.min(this.refillMs * 2, REFILL_MAX_MS);
      }).finally(() => {
        this.refilling = false;
        if (this.coreOpen < this.s.size) this.refillSoon();
      });
    }, this.refillMs);
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

  /** Sends a CancelRequest for the query on `client`; counted. */
  cancel (client: C): Promise<boolean> {
    this.counters.cancels++;
    return sendCancel(client as unknown as CancelTarget);
  }
}

/** A lease: watches its signal while held, and cancels the running query when it aborts. It is also the checkout's timing record. */
class PoolLease<C extends PoolableClient> implements Lease<C> {
  readonly client: C;
  private released = false;
  private cancels: Promise<boolean>[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onAbort: (() => void) | undefined;

  constructor (
    private readonly pool: Pool<C>,
    private readonly conn: Conn<C>,
    readonly startedAt: number,
    readonly waitMs: number,
    readonly queued: boolean,
    readonly opened: boolean,
    readonly overflow: boolean,
    private readonly signal?: AbortSignalLike
  ) {
    this.client = conn.client;
    if (signal) {
      this.onAbort = () => this.cancel(CANCEL_TRIES);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  release (err?: Error | boolean): void {
    if (this.released) throw new Error('Release called on client which has already been released to the pool.');
    this.released = true;
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
    if (this.timer) clearTimeout(this.timer);
    if (!this.cancels || err) return this.pool.checkin(this.conn, err);
    // A cancel was sent: reuse the connection only once the server has closed every cancel's
    // socket (it has signalled the backend) and nothing runs on it; otherwise close it.
    Promise.all(this.cancels).then((closed) => {
      const reusable = closed.every(Boolean) && !busy(this.client);
      this.pool.checkin(this.conn, reusable ? undefined : true);
    }, () => this.pool.checkin(this.conn, true));
  }

  private cancel (triesLeft: number): void {
    if (this.released) return;
    if (!busy(this.client) && this.cancels) return;
    (this.cancels ??= []).push(this.pool.cancel(this.client));
    if (triesLeft > 1) {
      this.timer = setTimeout(() => { if (busy(this.client)) this.cancel(triesLeft - 1); }, CANCEL_RETRY_MS);
      this.timer.unref?.();
    }
  }
}

const asLease = <C extends PoolableClient>(lease: Lease<C>): Lease<C> => lease;

/** pg.Pool's shape of a checkout: the client, with release() on it. */
function asClient<C extends PoolableClient> (lease: Lease<C>): C & { release: (err?: Error | boolean) => void } {
  const client = lease.client as C & { release: (err?: Error | boolean) => void };
  client.release = (err?: Error | boolean) => lease.release(err);
  return client;
}

/** A query runs, or waits to run, on this node-postgres client. */
function busy (client: PoolableClient): boolean {
  // pg 8's own fields (its public getters for them are deprecated): the query on the wire, and those queued behind it.
  const c = client as { _getActiveQuery?: () => unknown; _queryQueue?: unknown[] };
  return (c._getActiveQuery?.() ?? null) !== null || (c._queryQueue?.length ?? 0) > 0;
}

function socketOf (client: PoolableClient): { ref?: () => void; unref?: () => void; destroy?: () => void } | undefined {
  return (client as { connection?: { stream?: { ref?: () => void; unref?: () => void; destroy?: () => void } } }).connection?.stream;
}

/** Stops a client that is still connecting: its socket destroyed (as pg-pool does), or end(). */
function kill (client: PoolableClient): void {
  const socket = socketOf(client);
  if (socket?.destroy) socket.destroy();
  else Promise.resolve(client.end()).catch(() => {});
}

function stripSignal<T> (text: T): T {
  if (typeof text !== 'object' || text === null || !('signal' in text)) return text;
  const { signal: _signal, ...rest } = text as T & { signal?: unknown };
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
