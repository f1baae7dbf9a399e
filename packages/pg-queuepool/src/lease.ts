// A checked-out connection: the caller's handle on it, and the checkout's timing record. While it is held it
// watches the checkout's signal: an abort cancels the running query, and a query that does not end within the
// pool's `checkTimeout` of its cancel has its connection destroyed, so that an abort ends the wait even when the
// server cannot be reached.
import { busy } from './client-state.js';
import type { AbortSignalLike, CheckoutTiming } from './options.js';

/** What a lease needs of the pool that lent it (the pool's internals, not its public API). */
export interface Lender<C> {
  readonly checkTimeout: number;
  /** Gives the connection back; `strict`: after a failed query, reused only if idle and healthy. */
  checkin(conn: Held<C>, err?: Error | boolean, strict?: boolean): void;
  cancel(client: C): Promise<boolean>;
  /** Destroys a connection whose query would not end; `answered`: a cancel reached the server. */
  abandon(conn: Held<C>, answered: boolean): void;
}

/** What a lease knows of its connection. */
export interface Held<C> {
  readonly client: C;
  /** Closed, or being closed: nothing more runs on it. */
  readonly closing: boolean;
}

/**
 * A checked-out connection: the client, how the checkout went, and the way to give it back. `await using lease = await
 * pool.acquire()` gives it back when the block ends (`Symbol.asyncDispose`, and `Symbol.dispose` for `using`), unless
 * it was released already.
 */
export interface Lease<C> extends CheckoutTiming {
  readonly client: C;
  /** Gives the connection back; with an error (or true), it is closed instead of reused. */
  release(err?: Error | boolean): void;
  [Symbol.asyncDispose](): Promise<void>;
  [Symbol.dispose](): void;
}

/**
 * How often, and how many times, a cancel is sent again while the query still runs (one sent before the query reached
 * the backend is dropped by it).
 */
const CANCEL_RETRY_MS = 200;
const CANCEL_TRIES = 25;

export class PoolLease<C extends object> implements Lease<C> {
  readonly client: C;
  /** Watched for a leak (leakDetectionMs): the threshold, where it was checked out, and whether it was reported. */
  leak: { thresholdMs: number; site: { stack?: string }; reported: boolean; label?: string } | undefined;
  private released = false;
  private cancels: Promise<boolean>[] | undefined;
  /** A cancel's socket was closed by the server: it reached the backend. */
  private answered = false;
  private timer: NodeJS.Timeout | undefined;
  private grace: NodeJS.Timeout | undefined;
  private onAbort: (() => void) | undefined;

  constructor (
    private readonly pool: Lender<C>,
    private readonly conn: Held<C>,
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

  release (err?: Error | boolean, strict = false): void {
    if (this.released) throw new Error('Release called on client which has already been released to the pool.');
    this.released = true;
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
    if (this.timer) clearTimeout(this.timer);
    if (!this.cancels || err || this.conn.closing) return this.checkin(err, strict);
    // A cancel was sent: reuse the connection only once the server has closed every cancel's
    // socket (it has signalled the backend) and nothing runs on it; otherwise close it.
    Promise.all(this.cancels).then(
      (closed) => {
        const reusable = closed.every(Boolean) && !busy(this.client);
        this.checkin(reusable ? undefined : true, strict);
      },
      () => this.checkin(true, strict)
    );
  }

  [Symbol.dispose] (): void {
    if (!this.released) this.release();
  }

  [Symbol.asyncDispose] (): Promise<void> {
    this[Symbol.dispose]();
    return Promise.resolve();
  }

  private checkin (err: Error | boolean | undefined, strict: boolean): void {
    clearTimeout(this.grace);
    this.pool.checkin(this.conn, err, strict);
  }

  private cancel (triesLeft: number): void {
    if (this.released || this.conn.closing) return;
    if (!busy(this.client) && this.cancels) return;
    const sent = this.pool.cancel(this.client);
    sent.then(
      (closed) => {
        if (closed) this.answered = true;
      },
      () => {}
    );
    (this.cancels ??= []).push(sent);
    // The query must end within checkTimeout of the first cancel; if the server cannot be reached, nothing else
    // would end it, so its connection is destroyed and the query fails with it.
    if (!this.grace) {
      this.grace = setTimeout(() => {
        if (!this.conn.closing && busy(this.client)) this.pool.abandon(this.conn, this.answered);
      }, this.pool.checkTimeout);
      this.grace.unref?.();
    }
    if (triesLeft > 1) {
      this.timer = setTimeout(() => {
        if (busy(this.client)) this.cancel(triesLeft - 1);
      }, CANCEL_RETRY_MS);
      this.timer.unref?.();
    }
  }
}
