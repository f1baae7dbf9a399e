// The errors a checkout, or a query past its deadline, can end in. Each has a stable `code`, for a program to branch
// on, and a
// message for a person: the timeout's is SQLAlchemy's, which its users know. No message carries
// a password: a connection error's text is masked before it is kept.

export type PoolErrorCode =
  'POOL_TIMEOUT' | 'POOL_QUEUE_FULL' | 'POOL_ENDED' | 'CONNECT_FAILED' | 'ABORTED' | 'QUERY_TIMEOUT';

export class PoolError extends Error {
  readonly code: PoolErrorCode;
  constructor (code: PoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No connection within `timeout`: the time in the queue and the time to connect, together. */
export class PoolTimeoutError extends PoolError {
  constructor (size: number, maxOverflow: number, timeoutMs: number) {
    super(
      'POOL_TIMEOUT',
      `QueuePool limit of size ${size} overflow ${maxOverflow} reached, connection timed out, ` +
        `timeout ${(timeoutMs / 1000).toFixed(2)}`
    );
  }
}

/** `queueMax` callers wait already: refused at once, so that a flood is shed rather than queued. */
export class PoolQueueFullError extends PoolError {
  constructor (readonly queueMax: number) {
    super('POOL_QUEUE_FULL', `QueuePool queue limit of ${queueMax} waiting reached; retry later`);
  }
}

/** end() was called: the pool hands out nothing more. */
export class PoolEndedError extends PoolError {
  constructor () {
    super('POOL_ENDED', 'Cannot use a pool after calling end on the pool');
  }
}

/** A new connection could not be opened; `cause` is the driver's error. */
export class ConnectError extends PoolError {
  constructor (cause: unknown) {
    super('CONNECT_FAILED', `could not connect to PostgreSQL: ${maskSecrets(describe(cause))}`, { cause });
  }
}

/** The caller's signal aborted the checkout before it had a connection. Named like a DOM AbortError. */
export class AbortedError extends PoolError {
  constructor (reason?: unknown) {
    super(
      'ABORTED',
      'the checkout was aborted before it had a connection',
      reason === undefined ? undefined : { cause: reason }
    );
    this.name = 'AbortError';
  }
}

/**
 * A query on a checked-out connection had no answer within its deadline (`queryTimeout`). The caller has it at the
 * deadline; the query is cancelled and its connection destroyed behind it, so nothing else waits on that socket.
 */
export class QueryTimeoutError extends PoolError {
  constructor (readonly timeoutMs: number) {
    super(
      'QUERY_TIMEOUT',
      `the query had no answer within ${formatMs(timeoutMs)} (queryTimeout); it was cancelled and its connection closed`
    );
  }
}

function formatMs (ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(3))} s` : `${Number(ms.toFixed(1))} ms`;
}

export function describe (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return describe(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

/** A URL's user:password@, or a password=... pair, with the password replaced by ***. */
export function maskSecrets (text: string): string {
  return text
    .replace(/(\/\/[^:/@\s]*:)[^@/\s]*@/g, '$1***@')
    .replace(/(password\s*=\s*)('[^']*'|"[^"]*"|[^\s&]*)/gi, '$1***');
}
