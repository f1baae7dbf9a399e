// What the pool reads of a node-postgres Client beyond its public API, in one place: pg 8's own fields (its public
// getters for some are deprecated, and pg 9 removes them), each read defensively so that another Client (pg-native,
// a test's) simply reads as idle and ready.

/**
 * The transaction state of a connection, from PostgreSQL's last ReadyForQuery: idle, in a transaction, in a failed one.
 */
export type TransactionStatus = 'I' | 'T' | 'E';

interface PgInternals {
  _getActiveQuery?: () => unknown;
  _queryQueue?: unknown[];
  /** Before pg 8.18, plain fields; since, deprecated getters (read only where the private ones are missing). */
  activeQuery?: unknown;
  queryQueue?: unknown[];
  _connected?: boolean;
  _queryable?: boolean;
  _ending?: boolean;
  readyForQuery?: boolean;
  getTransactionStatus?: () => string | null;
  connection?: {
    stream?: { ref?: () => void; unref?: () => void; destroy?: () => void };
    on?: (event: string, listener: (message: { status?: string }) => void) => unknown;
  };
  once?: (event: string, listener: () => void) => unknown;
  removeListener?: (event: string, listener: () => void) => unknown;
}

const pgOf = (client: object) => client as PgInternals;

/** A query runs, or waits to run, on this client. */
export function busy (client: object): boolean {
  const c = pgOf(client);
  if (typeof c._getActiveQuery === 'function') {
    return (c._getActiveQuery() ?? null) !== null || (c._queryQueue?.length ?? 0) > 0;
  }
  return (c.activeQuery ?? null) !== null || (c.queryQueue?.length ?? 0) > 0;
}

/**
 * The last query failed and its ReadyForQuery has not arrived yet: pg calls a query back on the ErrorResponse, and
 * the ReadyForQuery that carries the transaction's state may come in a later packet.
 */
export function awaitingReady (client: object): boolean {
  const c = pgOf(client);
  return c._connected === true && c.readyForQuery === false && !busy(client);
}

/** Resolves true once the client has had its ReadyForQuery with nothing queued behind it, false after `ms`. */
export function whenReady (client: object, ms: number): Promise<boolean> {
  const c = pgOf(client);
  if (!awaitingReady(client)) return Promise.resolve(!busy(client));
  if (!c.once || !c.removeListener) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      c.removeListener!('drain', onDrain);
      resolve(false);
    }, ms);
    timer.unref?.();
    c.once!('drain', onDrain); // pg emits it after a ReadyForQuery with no query queued behind
  });
}

/**
 * Where the client's own getter is missing (pg before 8.21), the pool follows ReadyForQuery itself: `track` is
 * called with each status. Returns the reader of the status, or undefined when the client offers neither.
 */
export function transactionStatusOf (client: object): (() => TransactionStatus | null) | undefined {
  const c = pgOf(client);
  if (typeof c.getTransactionStatus === 'function') {
    return () => c.getTransactionStatus!() as TransactionStatus | null;
  }
  if (typeof c.connection?.on !== 'function') return undefined;
  let status: TransactionStatus | null = null;
  c.connection.on('readyForQuery', (message) => {
    status = (message.status ?? null) as TransactionStatus | null;
  });
  return () => status;
}

/** The client can take a query: connected, not broken, not ending. */
export function queryable (client: object): boolean {
  const c = pgOf(client);
  return c._queryable !== false && !c._ending;
}

export function socketOf (
  client: object
): { ref?: () => void; unref?: () => void; destroy?: () => void } | undefined {
  return pgOf(client).connection?.stream;
}

/** client.end(), settled whatever it does: a Client without end(), or one whose end() throws, is no error here. */
export function endQuietly (client: { end?: () => unknown }): Promise<void> {
  return new Promise<unknown>((resolve) => resolve(client.end?.())).then(
    () => {},
    () => {}
  );
}

/** Stops a client at once: its socket destroyed (as pg-pool does for a connect in progress), or end(). */
export function kill (client: { end?: () => unknown }): void {
  const socket = socketOf(client);
  if (socket?.destroy) socket.destroy();
  else endQuietly(client).catch(() => {});
}
