// A stand-in for pg.Client, for the unit tests: connects and answers queries after delays the
// test sets, on the (mocked) timers, and records what the pool did to it. No database. It keeps
// the fields of pg 8 the pool reads: the active query, readyForQuery, the transaction status
// of the last ReadyForQuery, and 'drain' after it.
import { EventEmitter } from 'node:events';

type Status = 'I' | 'T' | 'E';

export interface Behaviour {
  /** How long connect() takes. */
  connectMs: number;
  /** The n-th connect (from 1) fails with this error. */
  failConnect?: (n: number) => Error | undefined;
  /** The n-th connect (from 1) never answers. */
  hangConnect?: (n: number) => boolean;
  /** How long a query takes. */
  queryMs: number;
  /** A query fails with this error (the pre-ping's empty query too). */
  failQuery?: (text: string, client: FakeClient) => Error | undefined;
  /** A query is never answered (a partition): it ends only when the socket is destroyed. */
  hangQuery?: (text: string, client: FakeClient) => boolean;
  /** After a failed query, how much later its ReadyForQuery comes (pg calls the query back on the ErrorResponse). */
  readyLagMs?: number;
  /** As pg before 8.21: no getTransactionStatus(); the status is only in each ReadyForQuery message. */
  statusByMessage?: boolean;
}

type Callback = (err: Error | null, result?: { rows: unknown[] }) => void;

export function fakeClientClass (behaviour: Partial<Behaviour> = {}) {
  const b: Behaviour = { connectMs: 10, queryMs: 10, ...behaviour };
  const made: FakeClient[] = [];
  let connects = 0;

  class FakeClientImpl extends EventEmitter implements FakeClient {
    readonly id = made.length + 1;
    connected = false;
    ended = false;
    destroyed = false;
    queries: string[] = [];
    processID = 1000 + made.length;
    secretKey = 42;
    _queryable = true;
    _ending = false;
    _connected = false;
    readyForQuery = false;
    status: Status = 'I';
    private active: { sql: string; fail: (err: Error) => void } | null = null;
    private failConnectTimer: (() => void) | undefined;
    readonly connection = Object.assign(new EventEmitter(), {
      stream: { destroy: () => this.destroy(), ref () {}, unref () {} },
    });

    constructor (readonly config: Record<string, unknown> = {}) {
      super();
      made.push(this);
      if (b.statusByMessage) Object.defineProperty(this, 'getTransactionStatus', { value: undefined });
    }

    connect (): Promise<void> {
      const n = ++connects;
      return new Promise((resolve, reject) => {
        const timer = b.hangConnect?.(n)
          ? undefined
          : setTimeout(() => {
            const err = b.failConnect?.(n);
            if (err) return reject(err);
            this.connected = this._connected = this.readyForQuery = true;
            resolve();
          }, b.connectMs);
        this.failConnectTimer = () => {
          clearTimeout(timer);
          reject(new Error('Connection terminated unexpectedly'));
        };
      });
    }

    query (
      text: string | { text: string },
      values?: unknown,
      callback?: Callback
    ): Promise<{ rows: unknown[] }> | undefined {
      const cb = typeof values === 'function' ? (values as Callback) : callback;
      const sql = typeof text === 'string' ? text : text.text;
      this.queries.push(sql);
      const answer = new Promise<{ rows: unknown[] }>((resolve, reject) => {
        if (this.destroyed || !this._queryable) {
          return reject(new Error('Client has encountered a connection error and is not queryable'));
        }
        this.readyForQuery = false;
        const timer = b.hangQuery?.(sql, this)
          ? undefined
          : setTimeout(() => {
            this.active = null;
            const err = b.failQuery?.(sql, this);
            const next = statusAfter(this.status, sql, Boolean(err));
            const ready = () => {
              this.status = next;
              this.readyForQuery = true;
              this.connection.emit('readyForQuery', { status: next });
              this.emit('drain');
            };
            if (err) {
              reject(err);
              if (b.readyLagMs) setTimeout(ready, b.readyLagMs);
              else ready();
            } else {
              ready();
              resolve({ rows: [] });
            }
          }, b.queryMs);
        this.active = {
          sql,
          fail: (err) => {
            clearTimeout(timer);
            this.active = null;
            reject(err);
          },
        };
      });
      if (!cb) return answer;
      answer.then(
        (res) => cb(null, res),
        (err: Error) => cb(err)
      );
      return undefined;
    }

    getTransactionStatus (): Status | null {
      return this._connected ? this.status : null;
    }

    _getActiveQuery (): unknown {
      return this.active?.sql ?? null;
    }

    /** The socket closed under it: the running query fails, as pg's does. */
    destroy (): void {
      if (this.destroyed) return;
      this.destroyed = true;
      this._queryable = false;
      this.failConnectTimer?.();
      this.active?.fail(new Error(this._ending ? 'Connection terminated' : 'Connection terminated unexpectedly'));
    }

    end (): Promise<void> {
      this._ending = true;
      this.ended = true;
      return Promise.resolve();
    }
  }
  return { Client: FakeClientImpl, made };
}

/** The transaction status after `sql`: a plain SQL subset, enough for the tests. */
function statusAfter (status: Status, sql: string, failed: boolean): Status {
  const s = sql.trim().toUpperCase();
  if (/^(ROLLBACK|COMMIT|END|ABORT)\b/.test(s)) return 'I';
  // A failed statement inside a transaction fails it; so does one of a batch that opened one.
  if (failed) return status === 'I' && !/^(BEGIN|START TRANSACTION)\b/.test(s) ? 'I' : 'E';
  if (status === 'E') return 'E';
  if (/^(BEGIN|START TRANSACTION)\b/.test(s)) return 'T';
  return status;
}

export interface FakeClient extends EventEmitter {
  readonly id: number;
  readonly config: Record<string, unknown>;
  connected: boolean;
  ended: boolean;
  destroyed: boolean;
  queries: string[];
  processID: number;
  secretKey: number;
  _queryable: boolean;
  _ending: boolean;
  readyForQuery: boolean;
  status: Status;
  connect(): Promise<void>;
  query(
    text: string | { text: string },
    values?: unknown,
    callback?: Callback,
  ): Promise<{ rows: unknown[] }> | undefined;
  end(): Promise<void>;
  destroy(): void;
}
