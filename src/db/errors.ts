// Errors the database layer turns into HTTP answers. Each carries its status and a
// stable code, so the HTTP layer needs no knowledge of pools or PostgreSQL. The pool's own
// errors (pg-queuepool's PoolTimeoutError, PoolQueueFullError, QueryTimeoutError, ...) come in;
// these, named for what the client is told, go out.
import {
  isConnectionError as isBrokenConnection,
  PoolError,
  type PoolQueueFullError,
  maskSecrets,
} from 'pg-queuepool';

export class ServiceError extends Error {
  constructor (
    message: string,
    readonly code: string,
    readonly statusCode: number,
    readonly retryAfter?: number
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No pooled connection became free in time: SQLAlchemy's QueuePool timeout, in the pool's words. */
export class PoolExhaustedError extends ServiceError {
  constructor (message: string) {
    super(message, 'POOL_TIMEOUT', 503, 1);
  }
}

/** The same wait, one level down: every PgBouncer server connection stayed busy (query_wait_timeout). */
export class BouncerWaitTimeoutError extends ServiceError {
  constructor () {
    super(
      'PgBouncer had no free server connection within query_wait_timeout (set to POOL_TIMEOUT); PGBOUNCER_POOL_SIZE ' +
        'reached',
      'POOL_TIMEOUT',
      503,
      1
    );
  }
}

/** More requests wait for a connection than POOL_QUEUE_MAX allows: shed load at once. */
export class LoadShedError extends ServiceError {
  constructor (queueMax: number) {
    super(
      `too many requests waiting for a database connection (POOL_QUEUE_MAX ${queueMax}); retry later`,
      'POOL_QUEUE_FULL',
      503,
      1
    );
  }
}

/** The HTTP client went away; nobody will read the answer (499, as nginx logs it). */
export class ClientGoneError extends ServiceError {
  constructor () {
    super('the client closed the connection; its database work was cancelled', 'CLIENT_GONE', 499);
  }
}

/**
 * PostgreSQL could not be reached or refused us. The client gets no detail (no address, no
 * user): `cause` says what happened, for the log.
 */
export class DatabaseUnavailableError extends ServiceError {
  readonly detail: string;
  constructor (cause: unknown) {
    super('the database is unavailable; retry later', 'DB_UNAVAILABLE', 503, 1);
    this.detail = describe(cause);
  }
}

/**
 * A write reached a server that takes none: a standby, or a member in the middle of a failover (promoted but not yet
 * out of recovery, or a leader being demoted). 25006 read_only_sql_transaction.
 */
export class DatabaseReadOnlyError extends ServiceError {
  constructor () {
    super('the database is read-only for now (a failover in progress?); retry later', 'DB_READ_ONLY', 503, 1);
  }
}

/** PostgreSQL refused a write because the server it reached is read-only (25006). */
export function isReadOnly (err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === '25006';
}

/** At start-up, or for a tool: PostgreSQL at `url` cannot be used. One line, for a person; the password masked. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
  constructor (url: string, cause: unknown, timeoutMs: number) {
    const why = describe(cause);
    const reason = /timeout/i.test(why)
      ? `no answer within ${timeoutMs / 1000} s`
      : /ECONNREFUSED/.test(why)
        ? 'connection refused (is it running? is the port right?)'
        : why;
    super(`Cannot connect to PostgreSQL at ${maskSecrets(url)}: ${reason}`);
  }
}

/**
 * A replica had not replayed a read's X-Read-After position within READ_AFTER_TIMEOUT: the read goes to the primary
 * instead, so no client sees it.
 */
export class ReplicaBehindError extends ServiceError {
  constructor (wanted: string, replayed: string, timeoutMs: number) {
    super(
      `the replica had replayed up to ${replayed}, not ${wanted}, after ${timeoutMs} ms`,
      'REPLICA_BEHIND',
      503,
      1
    );
  }
}

/**
 * No answer from PostgreSQL within QUERY_TIMEOUT, whatever the network did: the query was cancelled and its connection
 * closed.
 */
export class QueryDeadlineError extends ServiceError {
  constructor (timeoutMs: number) {
    super(
      `the database did not answer within ${timeoutMs / 1000} s (QUERY_TIMEOUT); the query was cancelled`,
      'QUERY_TIMEOUT',
      504
    );
  }
}

/** PostgreSQL cancelled the statement at STATEMENT_TIMEOUT (57014 while the client is still there). */
export class StatementTimeoutError extends ServiceError {
  constructor () {
    super('the database query took longer than STATEMENT_TIMEOUT and was cancelled', 'STATEMENT_TIMEOUT', 504);
  }
}

/** Recreates a ServiceError that crossed a thread boundary as plain data. */
export function reviveError (data: {
  message: string;
  code?: string;
  statusCode?: number;
  retryAfter?: number;
}): Error {
  if (data.code && data.statusCode) {
    return new ServiceError(data.message, data.code, data.statusCode, data.retryAfter);
  }
  return new Error(data.message);
}

export function serializeError (err: unknown): {
  message: string;
  code?: string;
  statusCode?: number;
  retryAfter?: number;
} {
  if (err instanceof ServiceError) {
    return { message: err.message, code: err.code, statusCode: err.statusCode, retryAfter: err.retryAfter };
  }
  return { message: describe(err) };
}

function describe (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return describe(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

/** A query past its deadline (the pool's QUERY_TIMEOUT): its connection is being destroyed. */
export function isDeadline (err: unknown): boolean {
  return err instanceof PoolError && err.code === 'QUERY_TIMEOUT';
}

/**
 * Errors after which a connection must not go back to the pool (the pool's rule; our own errors are never such). A
 * connection to a read-only server is one too: after a failover it may lead to the old leader, now a standby, and a
 * new connection goes where the address (a proxy, a DNS name) now leads.
 */
export function isConnectionError (err: unknown): boolean {
  return !(err instanceof ServiceError) && (isBrokenConnection(err) || isReadOnly(err));
}

/**
 * What a failed database call means for the client: a ServiceError with its HTTP status, or
 * the error itself (a bug: 500). `broken`: the connection failed; `signal`: the request's.
 */
export function translate (err: unknown, broken: boolean, signal?: { readonly aborted: boolean }): unknown {
  if (err instanceof ServiceError) return err;
  if (err instanceof PoolError) {
    switch (err.code) {
      case 'POOL_TIMEOUT':
        return new PoolExhaustedError(err.message);
      case 'POOL_QUEUE_FULL':
        return new LoadShedError((err as PoolQueueFullError).queueMax);
      case 'ABORTED':
        return new ClientGoneError();
      case 'CONNECT_FAILED':
        return new DatabaseUnavailableError(err.cause ?? err);
      case 'POOL_ENDED':
        return new DatabaseUnavailableError(err);
      case 'QUERY_TIMEOUT':
        return new QueryDeadlineError((err as PoolError & { timeoutMs: number }).timeoutMs);
    }
  }
  if ((err as { code?: string }).code === '57014') {
    // query_canceled: by us when the client left, otherwise by statement_timeout.
    return signal?.aborted ? new ClientGoneError() : new StatementTimeoutError();
  }
  if ((err as Error).message === 'query_wait_timeout') return new BouncerWaitTimeoutError();
  if (isReadOnly(err)) return new DatabaseReadOnlyError();
  if (broken) return new DatabaseUnavailableError(err);
  return err;
}
