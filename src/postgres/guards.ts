// PostgreSQL's own guards on our sessions, derived from the service's deadlines. The pool bounds
// what the service waits for; these bound what PostgreSQL keeps for a client it can no longer
// reach: a backend stuck in a transaction holds its locks and its slot of max_connections until
// the server notices, and after a partition it may never notice by itself.
import { MAX_SLEEP_SECONDS, type Config } from '../config.ts';

/** How often PostgreSQL checks, during a long query, that its client is still connected (ms). */
export const CONNECTION_CHECK_MS = 2000;
/** Node's TCP keepalive after its first probe: 10 probes, 1 s apart (libuv's); the server's end does the same. */
export const KEEPALIVE_PROBES = 10;
export const KEEPALIVE_INTERVAL_S = 1;

export type Guards = Record<string, number>;

/**
 * The settings for our sessions, those that `versionNum` (server_version_num) has; an unknown
 * version gets those of PostgreSQL 9.6 and later only. Times in ms, as PostgreSQL takes them
 * without a unit.
 */
export function sessionGuards (config: Pick<Config, 'queryTimeout' | 'dbKeepalive'>, versionNum?: number): Guards {
  const queryMs = Math.round(config.queryTimeout * 1000);
  const guards: Guards = {
    // The service never pauses inside a transaction: one idle for a query's deadline is abandoned
    // (its client was cut off, its query past QUERY_TIMEOUT): end it, and free its locks.
    idle_in_transaction_session_timeout: queryMs,
  };
  if (config.dbKeepalive > 0) {
    // The server's end of the keepalive: a client that vanished is found, and its backend ended.
    guards.tcp_keepalives_idle = Math.round(config.dbKeepalive);
    guards.tcp_keepalives_interval = KEEPALIVE_INTERVAL_S;
    guards.tcp_keepalives_count = KEEPALIVE_PROBES;
  }
  if ((versionNum ?? 0) >= 140000) guards.client_connection_check_interval = CONNECTION_CHECK_MS;
  // The longest a request may hold a transaction: its query's deadline plus the longest sleep it may ask for.
  if ((versionNum ?? 0) >= 170000) guards.transaction_timeout = queryMs + MAX_SLEEP_SECONDS * 1000;
  return guards;
}

/**
 * The guards that find a vanished client, for the embedded server's own configuration (PostgreSQL 17): they reach
 * every session, PgBouncer's too. The ones that end a session for being slow stay on our sessions: a person's psql in
 * a long transaction is not cut off.
 */
export function serverGuards (config: Pick<Config, 'dbKeepalive'>): Guards {
  const {
    idle_in_transaction_session_timeout: _session,
    transaction_timeout: _transaction,
    ...server
  } = sessionGuards({ queryTimeout: 0, dbKeepalive: config.dbKeepalive }, 140000);
  return server;
}

/** As libpq's `options` startup parameter: `-c name=value ...`, applied to the session as it starts. */
export function startupOptions (guards: Guards): string {
  return Object.entries(guards)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}

/** As one SQL statement, for a pooler's connect_query. */
export function setStatements (guards: Guards): string {
  return Object.entries(guards)
    .map(([name, value]) => `SET ${name} = ${value}`)
    .join('; ');
}
