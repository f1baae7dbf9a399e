// pg-queuepool: SQLAlchemy's QueuePool for node-postgres, shaped as pg.Pool.
export { Pool, isConnectionError } from './pool.js';
export type {
  AcquireOptions,
  ClientConstructor,
  CloseCause,
  Lease,
  LeakReport,
  PoolableClient,
  PoolOptions,
  PoolQueryConfig,
  PoolStats,
  QueryCallback,
} from './pool.js';
export type { AbortSignalLike, CheckoutTiming, PoolKind, QueuePoolOptions, ResetOnReturn } from './options.js';
export { KEEPALIVE_DELAY_MS } from './options.js';
export {
  AbortedError,
  ConnectError,
  PoolEndedError,
  PoolError,
  PoolQueueFullError,
  PoolTimeoutError,
  QueryTimeoutError,
  maskSecrets,
} from './errors.js';
export type { PoolErrorCode } from './errors.js';
export type { ConnectContext, ReleaseContext, RemoveContext } from './tracing.js';
export { sendCancel } from './cancel.js';
export type { CancelTarget } from './cancel.js';
