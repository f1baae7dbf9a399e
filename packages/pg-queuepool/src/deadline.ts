// A deadline on each query of a checked-out connection. Nothing else bounds the wait on the client's side: a query
// sent into a network partition waits for TCP's retransmissions to give up (about 15 minutes on Linux), keepalive
// probes are not sent while data is unacknowledged, and statement_timeout is enforced by the very server that cannot
// be reached. The caller gets QueryTimeoutError at the deadline; what comes after (the cancel, the connection
// destroyed) is the pool's, through `late`.
import { QueryTimeoutError } from './errors.js';

type Callback = (err: Error | null | undefined, result?: unknown) => void;
type Query = (config: unknown, values?: unknown, callback?: unknown) => unknown;

/**
 * Replaces `client.query` with one that applies `timeoutOf()` (ms; Infinity: none) to each query, and returns the
 * original, for the pool's own statements. Submittables (pg-cursor, pg-query-stream) run without a deadline: their
 * reads span many round trips, each of the caller's own pace.
 */
export function guardQueries (client: { query: Query }, timeoutOf: () => number, late: (timeoutMs: number) => void): Query {
  const query = client.query;
  const raw: Query = (config, values, callback) => query.call(client, config, values, callback);
  client.query = function guardedQuery (config: unknown, values?: unknown, callback?: unknown) {
    const timeoutMs = timeoutOf();
    const plain = typeof config === 'string' || (typeof config === 'object' && config !== null &&
      typeof (config as { submit?: unknown }).submit !== 'function');
    if (timeoutMs === Infinity || !plain) {
      return query.call(client, config, values, callback);
    }
    let done = typeof values === 'function' ? values as Callback : callback as Callback | undefined;
    if (typeof values === 'function') values = undefined;
    let text = config;
    if (typeof config === 'object') {
      // A copy: pg writes the callback it is given onto the config object, which a caller may reuse.
      const { callback: own, ...rest } = config as { callback?: Callback };
      done ??= own;
      text = rest;
    }
    if (done) {
      run(query, client, text, values, timeoutMs, late, done);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      run(query, client, text, values, timeoutMs, late, (err, result) => (err ? reject(err) : resolve(result)));
    });
  } as Query;
  return raw;
}

function run (query: Query, client: object, text: unknown, values: unknown, timeoutMs: number,
  late: (timeoutMs: number) => void, done: Callback): void {
  let settled = false;
  const timer = setTimeout(() => {
    settled = true;
    late(timeoutMs);
    done(new QueryTimeoutError(timeoutMs));
  }, timeoutMs);
  query.call(client, text, values, (err: Error | null | undefined, result: unknown) => {
    if (settled) return; // answered after the deadline: the caller has its error already
    settled = true;
    clearTimeout(timer);
    done(err, result);
  });
}
