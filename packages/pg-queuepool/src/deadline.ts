// A deadline on each query of a checked-out connection. Nothing else bounds the wait on the client's side: a query
// sent into a network partition waits for TCP's retransmissions to give up (about 15 minutes on Linux), keepalive
// probes are not sent while data is unacknowledged, and statement_timeout is enforced by the very server that cannot
// be reached. The caller gets QueryTimeoutError at the deadline; what comes after (the cancel, the connection
// destroyed) is the pool's, through `late`.
//
// It sits on every query, so it is cheap: one timer per connection, refreshed rather than made anew (queries on a
// connection are answered in order, so only the oldest one pending can be the first past its deadline; when the timer
// fires it checks that one, and sets itself again for it if it is not due yet), and no copy of the query's config.
import { QueryTimeoutError } from './errors.js';

type Callback = (err: Error | null | undefined, result?: unknown) => void;
type Query = (config: unknown, values?: unknown, callback?: unknown) => unknown;

interface Pending {
  /** When its deadline passes, on the pool's clock. */
  due: number;
  timeoutMs: number;
  done: boolean;
  fail(err: Error): void;
}

/**
 * Replaces `client.query` with one that applies `timeoutOf()` (ms; Infinity: none) to each query, and returns the
 * original, for the pool's own statements. Submittables (pg-cursor, pg-query-stream) run without a deadline: their
 * reads span many round trips, each of the caller's own pace.
 */
export function guardQueries (
  client: { query: Query },
  timeoutOf: () => number,
  late: (timeoutMs: number) => void,
  clock: () => number = () => performance.now()
): Query {
  const query = client.query;
  const raw: Query = (config, values, callback) => query.call(client, config, values, callback);
  const pending: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let timerMs = 0;

  const arm = (ms: number) => {
    if (timer && timerMs === ms) {
      timer.refresh();
      return;
    }
    clearTimeout(timer);
    timerMs = ms;
    timer = setTimeout(check, ms);
    timer.unref?.();
  };
  const check = () => {
    while (pending.length && pending[0]!.done) pending.shift();
    const first = pending[0];
    if (!first) return; // nothing pending: the timer rests until the next query refreshes it
    const left = first.due - clock();
    if (left > 0) return arm(left);
    first.done = true;
    pending.shift();
    late(first.timeoutMs); // the connection is destroyed: the queries behind this one fail with it
    first.fail(new QueryTimeoutError(first.timeoutMs));
  };

  const run = (config: unknown, values: unknown, timeoutMs: number, done: Callback) => {
    const p: Pending = { due: clock() + timeoutMs, timeoutMs, done: false, fail: done };
    if (pending.length === 0) arm(timeoutMs); // otherwise it is set for an older one, due sooner
    pending.push(p);
    query.call(client, config, values, (err: Error | null | undefined, result: unknown) => {
      if (p.done) return; // answered after the deadline: the caller has its error already
      p.done = true;
      if (pending[0] === p) pending.shift();
      done(err, result);
    });
  };

  client.query = function guardedQuery (config: unknown, values?: unknown, callback?: unknown) {
    const timeoutMs = timeoutOf();
    const object = typeof config === 'object' && config !== null;
    if (
      timeoutMs === Infinity ||
      (!object && typeof config !== 'string') ||
      (object && typeof (config as { submit?: unknown }).submit === 'function')
    ) {
      return query.call(client, config, values, callback);
    }
    let done = typeof values === 'function' ? (values as Callback) : (callback as Callback | undefined);
    if (typeof values === 'function') values = undefined;
    const own = object ? (config as { callback?: Callback }).callback : undefined;
    done ??= own;
    // pg writes the callback it is given onto the config object, which a caller may reuse: put back what was there.
    const restore = () => {
      if (object) (config as { callback?: Callback }).callback = own;
    };
    if (done) {
      run(config, values, timeoutMs, done);
      restore();
      return undefined;
    }
    return new Promise((resolve, reject) => {
      run(config, values, timeoutMs, (err, result) => (err ? reject(err) : resolve(result)));
      restore();
    });
  } as Query;
  return raw;
}
