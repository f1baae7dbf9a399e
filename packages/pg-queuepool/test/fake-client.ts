// A stand-in for pg.Client, for the unit tests: connects and answers queries after delays the
// test sets, on the (mocked) timers, and records what the pool did to it. No database.
import { EventEmitter } from 'node:events';

export interface Behaviour {
  /** How long connect() takes. */
  connectMs: number;
  /** The n-th connect (from 1) fails with this error. */
  failConnect?: (n: number) => Error | undefined;
  /** How long a query takes. */
  queryMs: number;
  /** A query fails with this error (the pre-ping's empty query too). */
  failQuery?: (text: string, client: FakeClient) => Error | undefined;
}

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
    private active: string | null = null;
    private failConnectTimer: (() => void) | undefined;
    readonly connection = { stream: { destroy: () => { this.destroyed = true; this.failConnectTimer?.(); }, ref () {}, unref () {} } };

    constructor (readonly config: Record<string, unknown> = {}) {
      super();
      made.push(this);
    }

    connect (): Promise<void> {
      const n = ++connects;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const err = b.failConnect?.(n);
          if (err) return reject(err);
          this.connected = true;
          resolve();
        }, b.connectMs);
        this.failConnectTimer = () => {
          clearTimeout(timer);
          reject(new Error('Connection terminated unexpectedly'));
        };
      });
    }

    query (text: string | { text: string }): Promise<{ rows: unknown[] }> {
      const sql = typeof text === 'string' ? text : text.text;
      this.queries.push(sql);
      this.active = sql;
      return new Promise((resolve, reject) => {
        setTimeout(() => {
          this.active = null;
          const err = b.failQuery?.(sql, this);
          if (err) reject(err);
          else resolve({ rows: [] });
        }, b.queryMs);
      });
    }

    _getActiveQuery (): unknown {
      return this.active;
    }

    end (): Promise<void> {
      this._ending = true;
      this.ended = true;
      return Promise.resolve();
    }
  }
  return { Client: FakeClientImpl, made };
}

export interface FakeClient extends EventEmitter {
  readonly id: number;
  connected: boolean;
  ended: boolean;
  destroyed: boolean;
  queries: string[];
  processID: number;
  secretKey: number;
  _queryable: boolean;
  _ending: boolean;
  connect(): Promise<void>;
  query(text: string | { text: string }): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}
