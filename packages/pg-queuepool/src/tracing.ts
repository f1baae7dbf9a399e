// The pool's checkouts, returns and closes as diagnostics_channel TracingChannels, by the names node-postgres proposes
// for pg-pool (PR #3650): an APM tool subscribes to them instead of patching the pool. While nobody subscribes, the
// pool
// asks one property per event and publishes nothing.
import dc from 'node:diagnostics_channel';
import type { CloseCause } from './pool.js';

/** `pg:pool:connect`: one checkout, from asking to having the connection (or failing to). */
export interface ConnectContext {
  /** The pool asked. */
  pool: object;
  /**
   * Set when it settles: the lease, also the checkout's timing (`waitMs`, `queued`, `opened`, `overflow`, `client`).
   */
  result?: unknown;
  /** Set when it fails: a PoolError (POOL_TIMEOUT, ABORTED, ...). */
  error?: unknown;
}

/** `pg:pool:release`: a connection given back (synchronous; what follows, a rollback or a close, is the pool's). */
export interface ReleaseContext {
  pool: object;
  client: unknown;
  /** What the caller gave back with it, if anything: the connection is then closed. */
  error?: unknown;
  /** How long it was held, in ms. */
  heldMs: number;
}

/** `pg:pool:remove`: a connection closed, until its end() is done. */
export interface RemoveContext {
  pool: object;
  client: unknown;
  /** Why the pool could not trust it, if that is why it is closed (otherwise: idle, recycled, ending). */
  cause?: CloseCause;
}

export const connectChannel = dc.tracingChannel<ConnectContext, ConnectContext>('pg:pool:connect');
export const releaseChannel = dc.tracingChannel<ReleaseContext, ReleaseContext>('pg:pool:release');
export const removeChannel = dc.tracingChannel<RemoveContext, RemoveContext>('pg:pool:remove');

type Traced = { hasSubscribers?: boolean } & Record<
  'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error',
  { hasSubscribers: boolean }
>;

/**
 * Someone listens: TracingChannel's own hasSubscribers where Node has it (22+), otherwise each of its channels asked.
 */
export function traced (channel: object): boolean {
  const c = channel as Traced;
  if (c.hasSubscribers !== undefined) return c.hasSubscribers;
  return (
    c.start.hasSubscribers ||
    c.end.hasSubscribers ||
    c.asyncStart.hasSubscribers ||
    c.asyncEnd.hasSubscribers ||
    c.error.hasSubscribers
  );
}
