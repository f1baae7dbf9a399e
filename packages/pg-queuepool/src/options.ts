// The pool's options: SQLAlchemy's names, pg-pool's where a drop-in passes them, checked once,
// at construction. Every other option goes to each Client, as pg.Pool does.

/** What the pool needs of an abort signal: an AbortSignal fits, and so does anything shaped like one. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export type PoolKind = 'queue' | 'null';

/** What a connection given back inside a transaction gets before anyone else has it (SQLAlchemy's reset_on_return). */
export type ResetOnReturn = 'rollback' | 'close' | 'off';

export interface QueuePoolOptions {
  /** 'queue' (QueuePool, the default) or 'null' (NullPool: a new connection per checkout, closed on release). */
  kind?: PoolKind;
  /** Connections kept open once opened (SQLAlchemy's pool_size). Default 5; pg's `min` maps here. */
  size?: number;
  /**
   * Connections opened beyond `size` under load, closed again after `overflowIdle` (max_overflow). Default 10; pg's
   * `max` is size + maxOverflow.
   */
  maxOverflow?: number;
  /**
   * Milliseconds a checkout may take, waiting in the queue and connecting together (pool_timeout, in ms). Default
   * 30000; Infinity waits for ever.
   */
  timeout?: number;
  /** Callers that may wait for a place; beyond it, POOL_QUEUE_FULL at once. Default 1000; Infinity for no bound. */
  queueMax?: number;
  /**
   * Milliseconds a connection may live; an older one is closed when it next comes back or sits idle (pool_recycle, in
   * ms). Default Infinity.
   */
  recycle?: number;
  /**
   * Test a reused connection with an empty query before handing it out; replace it if it fails (pool_pre_ping). Default
   * false.
   */
  prePing?: boolean;
  /**
   * Hand out the most recently returned idle connection first (use_lifo), so that the others can idle out. Default
   * true.
   */
  lifo?: boolean;
  /** Milliseconds an idle connection beyond `size` stays open. Default 1000; pg's `idleTimeoutMillis` maps here. */
  overflowIdle?: number;
  /**
   * Milliseconds an idle connection among the first `size` stays open. Default Infinity: they are kept (QueuePool).
   * Set it where an idle process should hold no connection (a serverless function between invocations): once idle
   * this long they close, are not reopened by the pool itself, and open again on demand.
   */
  sizeIdle?: number;
  /** Close a connection after it has been checked out this many times (pg's maxUses). Default Infinity. */
  maxUses?: number;
  /** Idle connections and timers do not keep the process alive (pg's allowExitOnIdle). Default false. */
  allowExitOnIdle?: boolean;
  /**
   * A connection given back inside a transaction (or a failed one): `'rollback'` (the default) rolls it back before
   * anyone else has it, and closes it if the rollback fails or takes longer than `checkTimeout`; `'close'` closes it;
   * `'off'` hands it on as it is (the next caller joins that transaction). SQLAlchemy's reset_on_return.
   */
  resetOnReturn?: ResetOnReturn;
  /**
   * Milliseconds each query on a checked-out connection may wait for its answer, on the client's side. Past it the
   * caller gets QUERY_TIMEOUT at once, a CancelRequest is sent, and the connection is destroyed (never reused) once
   * the cancel is answered or `checkTimeout` has passed. Default Infinity: no deadline (a pool cannot know your
   * longest query; set it). Per checkout: `acquire({ queryTimeout })`, `query({ text, queryTimeout })`.
   */
  queryTimeout?: number;
  /** Milliseconds one new connection may take, within the checkout's `timeout`. Default Infinity: only `timeout`. */
  connectTimeout?: number;
  /**
   * Milliseconds the pool waits for PostgreSQL on its own behalf: the rollback on return, a pre-ping or health check,
   * and a cancelled query's end before its connection is destroyed. Default 2000.
   */
  checkTimeout?: number;
  /**
   * Milliseconds between background checks of idle connections (pgx's HealthCheckPeriod): one idle for a whole
   * period is sent an empty query, and closed and replaced if it does not answer within `checkTimeout`.
   * Default 30000; Infinity for none.
   */
  healthCheckPeriod?: number;
  /**
   * Up to this many ms are taken off each connection's `recycle`, at random, so that they do not all close at once.
   * Default recycle / 10.
   */
  recycleJitter?: number;
  /**
   * A connection held longer than this many ms is reported as leaked: a `leak` event (and `onLeak`) with how long it
   * has been held and the stack of the code that checked it out, and another when it is given back at last.
   * HikariCP's leakDetectionThreshold. Default Infinity: off (capturing the stack costs each checkout a few µs).
   */
  leakDetectionMs?: number;
  /** Called with each leak report (the `leak` event's). */
  onLeak?: (report: any) => void;
  /** A monotonic clock in ms (default performance.now): tests inject one. */
  clock?: () => number;
  /**
   * Called after every change of the pool's counts (a checkout, a release, a connection opened or closed, a waiter).
   * Read the pool's getters there; it must be cheap.
   */
  onStateChange?: () => void;
  /**
   * Called with each successful checkout's timing, to feed a histogram or a trace: synchronously, before the caller has
   * the connection. The record is the lease itself: copy what you keep.
   */
  onCheckout?: (checkout: CheckoutTiming) => void;

  // pg-pool's names, for a drop-in replacement of pg.Pool (see the README's mapping table).
  max?: number;
  /** pg-pool's older name of `max`. */
  poolSize?: number;
  min?: number;
  connectionTimeoutMillis?: number;
  idleTimeoutMillis?: number;
  maxLifetimeSeconds?: number;
  /**
   * The Client class to build (pg.native.Client, or your own); the constructor's second argument does the same. Default
   * pg.Client.
   */
  Client?: new (config?: any) => any;
  /** Called with a line about what the pool does (connecting, releasing, ending...), as pg-pool's `log`. */
  log?: (message: string, ...details: unknown[]) => void;
  /**
   * Run on each new connection before anyone has it (pg 8.20's hook): a failure, thrown or rejected, fails that
   * connect.
   */
  onConnect?: (client: any) => unknown;
  /**
   * pg-pool's `verify(client, done)`: called on each new connection before it is handed out; an error closes it and
   * fails the checkout.
   */
  verify?: (client: any, done: (err?: Error | null) => void) => void;
  /**
   * The Promise class of the promises the pool returns (pg-pool's option, for bluebird and the like). Default the
   * global one.
   */
  Promise?: PromiseConstructorLike;
}

export interface CheckoutTiming {
  /** When the caller asked (epoch ms). */
  startedAt: number;
  /** From asking to having the connection: the queue, then connecting (and the pre-ping) if it was new. */
  waitMs: number;
  /** Waited in the queue for a place. */
  queued: boolean;
  /** A new connection was opened for it. */
  opened: boolean;
  /** The connection is one beyond `size`. */
  overflow: boolean;
}

export interface Settings {
  kind: PoolKind;
  size: number;
  maxOverflow: number;
  timeout: number;
  queueMax: number;
  recycle: number;
  prePing: boolean;
  lifo: boolean;
  overflowIdle: number;
  sizeIdle: number;
  maxUses: number;
  allowExitOnIdle: boolean;
  resetOnReturn: ResetOnReturn;
  queryTimeout: number;
  connectTimeout: number;
  checkTimeout: number;
  healthCheckPeriod: number;
  recycleJitter: number;
  leakDetectionMs: number;
  log: (message: string, ...details: unknown[]) => void;
  onConnect: ((client: any) => unknown) | undefined;
  verify: ((client: any, done: (err?: Error | null) => void) => void) | undefined;
  clock: () => number;
}

const POOL_KEYS = new Set([
  'kind',
  'size',
  'maxOverflow',
  'timeout',
  'queueMax',
  'recycle',
  'prePing',
  'lifo',
  'overflowIdle',
  'sizeIdle',
  'maxUses',
  'allowExitOnIdle',
  'resetOnReturn',
  'queryTimeout',
  'connectTimeout',
  'checkTimeout',
  'healthCheckPeriod',
  'recycleJitter',
  'leakDetectionMs',
  'onLeak',
  'clock',
  'onStateChange',
  'onCheckout',
  'max',
  'poolSize',
  'min',
  'connectionTimeoutMillis',
  'idleTimeoutMillis',
  'maxLifetimeSeconds',
  'log',
  'Client',
  'Promise',
  'onConnect',
  'verify',
]);

function fail (name: string, value: unknown, accepts: string): never {
  throw new TypeError(
    `pg-queuepool: option ${name} must be ${accepts}; ` +
      `got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`
  );
}

function count (name: string, value: unknown, fallback: number, min = 0, infinite = false): number {
  if (value === undefined) return fallback;
  if (value === Infinity && infinite) return Infinity;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(name, value, `an integer of at least ${min}${infinite ? ' (or Infinity)' : ''}`);
  }
  return value;
}

function millis (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    fail(name, value, 'a number of milliseconds, 0 or more (Infinity for none)');
  }
  return value;
}

/** A positive number of milliseconds, or Infinity for none. */
function bound (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    fail(name, value, 'a number of milliseconds above 0 (Infinity for none)');
  }
  return value;
}

function flag (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(name, value, 'true or false');
  return value;
}

/**
 * The pool's settings from its options, SQLAlchemy's names first, then pg-pool's; throws a TypeError naming a bad one.
 */
export function settingsOf (options: QueuePoolOptions): Settings {
  // pg-pool's older name of max, when max is not given.
  const o =
    options.max === undefined && options.poolSize !== undefined ? { ...options, max: options.poolSize } : options;
  const maxName = options.max === undefined && options.poolSize !== undefined ? 'poolSize' : 'max';
  if (o.kind !== undefined && o.kind !== 'queue' && o.kind !== 'null') fail('kind', o.kind, '"queue" or "null"');
  if (o.max !== undefined && o.maxOverflow !== undefined) {
    throw new TypeError(
      `pg-queuepool: give maxOverflow (with size) or pg's ${maxName}, not both: ${maxName} is size + maxOverflow`
    );
  }
  if (o.min !== undefined && o.size !== undefined) {
    throw new TypeError("pg-queuepool: give size or pg's min, not both: they mean the same");
  }
  // Options in pg-pool's words only (max, min, idleTimeoutMillis, ...) mean what they mean to pg-pool, its defaults
  // for the rest included: none kept open beyond min, up to max (10) in all, idle ones closed after 10 s.
  const sizing = [o.size, o.maxOverflow, o.overflowIdle];
  const pgSizing = [o.max, o.min, o.idleTimeoutMillis, o.connectionTimeoutMillis, o.maxLifetimeSeconds];
  const pgStyle = sizing.every((x) => x === undefined) && pgSizing.some((x) => x !== undefined);
  const size = count(o.size !== undefined ? 'size' : 'min', o.size ?? o.min, pgStyle ? 0 : 5);
  let maxOverflow: number;
  if (o.max !== undefined || pgStyle) {
    const max = count(maxName, o.max, 10, 1);
    if (max < size) fail(maxName, o.max, `at least min (${size})`);
    maxOverflow = max - size;
  } else {
    maxOverflow = count('maxOverflow', o.maxOverflow, 10);
  }
  if (size + maxOverflow < 1 && (o.kind ?? 'queue') === 'queue') {
    fail('size + maxOverflow', size + maxOverflow, 'at least 1');
  }
  // pg's 0 means "no timeout" (wait for ever); its idle 0, "never close idle clients".
  const pgTimeout = o.connectionTimeoutMillis === 0 ? Infinity : o.connectionTimeoutMillis;
  const pgIdle = o.idleTimeoutMillis === 0 ? Infinity : o.idleTimeoutMillis;
  const pgLifetime =
    o.maxLifetimeSeconds === undefined || o.maxLifetimeSeconds === 0 ? undefined : o.maxLifetimeSeconds * 1000;
  if (o.clock !== undefined && typeof o.clock !== 'function') {
    fail('clock', o.clock, 'a function returning milliseconds');
  }
  const hooks = [
    ['onStateChange', o.onStateChange],
    ['onCheckout', o.onCheckout],
    ['log', o.log],
    ['onConnect', o.onConnect],
    ['verify', o.verify],
    ['Client', o.Client],
    ['Promise', o.Promise],
    ['onLeak', o.onLeak],
  ] as const;
  for (const [name, hook] of hooks) {
    if (hook !== undefined && typeof hook !== 'function') {
      fail(name, hook, name === 'Client' || name === 'Promise' ? 'a class' : 'a function');
    }
  }
  const resets = ['rollback', 'close', 'off'];
  if (o.resetOnReturn !== undefined && !resets.includes(o.resetOnReturn)) {
    fail('resetOnReturn', o.resetOnReturn, '"rollback", "close" or "off"');
  }
  const recycle = millis(
    o.recycle !== undefined ? 'recycle' : 'maxLifetimeSeconds',
    o.recycle ?? pgLifetime,
    Infinity
  );
  const recycleJitter = millis('recycleJitter', o.recycleJitter, Number.isFinite(recycle) ? recycle / 10 : 0);
  if (recycleJitter > recycle) fail('recycleJitter', o.recycleJitter, `at most recycle (${recycle})`);
  return {
    kind: o.kind ?? 'queue',
    size,
    maxOverflow,
    timeout: millis(
      o.timeout !== undefined ? 'timeout' : 'connectionTimeoutMillis',
      o.timeout ?? pgTimeout,
      30_000
    ),
    queueMax: count('queueMax', o.queueMax, 1000, 0, true),
    recycle,
    prePing: flag('prePing', o.prePing, false),
    lifo: flag('lifo', o.lifo, true),
    overflowIdle: millis(
      o.overflowIdle !== undefined ? 'overflowIdle' : 'idleTimeoutMillis',
      o.overflowIdle ?? pgIdle,
      pgStyle ? 10_000 : 1000
    ),
    sizeIdle: millis('sizeIdle', o.sizeIdle, Infinity),
    maxUses: count('maxUses', o.maxUses, Infinity, 1, true),
    allowExitOnIdle: flag('allowExitOnIdle', o.allowExitOnIdle, false),
    resetOnReturn: o.resetOnReturn ?? 'rollback',
    queryTimeout: bound('queryTimeout', o.queryTimeout, Infinity),
    connectTimeout: bound('connectTimeout', o.connectTimeout, Infinity),
    checkTimeout: bound('checkTimeout', o.checkTimeout, 2000),
    healthCheckPeriod: bound('healthCheckPeriod', o.healthCheckPeriod, 30_000),
    recycleJitter,
    leakDetectionMs: bound('leakDetectionMs', o.leakDetectionMs, Infinity),
    log: o.log ?? (() => {}),
    onConnect: o.onConnect,
    verify: o.verify,
    clock: o.clock ?? (() => performance.now()),
  };
}

/**
 * TCP keepalive, on for every connection unless the options say otherwise (pg's default is off): an idle connection
 * whose peer vanished is found after this many ms of silence plus the probes (Node sets 10 probes 1 s apart).
 */
export const KEEPALIVE_DELAY_MS = 10_000;

/** The options that are the Client's, not the pool's (connectionString, user, ssl, statement_timeout, ...). */
export function clientOptions<T extends object> (options: T): Partial<T> {
  const out: Record<string, unknown> = { keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS };
  for (const [k, v] of Object.entries(options)) if (!POOL_KEYS.has(k)) out[k] = v;
  return out as Partial<T>;
}
