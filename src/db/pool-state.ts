// The pool's gauges in shared memory: written wherever the pool lives (the main thread, or the
// blocking bridge's worker thread) and readable from any thread at any time, even while the
// thread that writes them is blocked.
import type { Pool } from 'pg-queuepool';

/** The pool's state at a moment: what the live dashboard draws. */
export interface PoolGauges {
  /** Connections open (idle + in use). */
  total: number;
  idle: number;
  inUse: number;
  overflowInUse: number;
  waiting: number;
  /** The unhappy path so far: connections closed as untrustworthy, rollbacks on return, queries past QUERY_TIMEOUT. */
  closed: number;
  resets: number;
  queryTimeouts: number;
  /** The refill's pause after failed connects, in ms (0: not backing off). */
  refillBackoffMs: number;
}

const FIELDS = [
  'total',
  'idle',
  'inUse',
  'overflowInUse',
  'waiting',
  'closed',
  'resets',
  'queryTimeouts',
  'refillBackoffMs',
] as const;

export class SharedPoolState {
  private readonly ints: Int32Array;
  private incidents = 0;
  private backingOff = false;

  constructor (readonly buffer = new SharedArrayBuffer(FIELDS.length * 4)) {
    this.ints = new Int32Array(buffer);
  }

  /**
   * Fits the store's onChange: called on every checkout and release, so it reads the pool's counts and allocates
   * nothing; the unhappy path's figures (stats()) only when the pool says something happened there.
   */
  readonly write = (pool: Pool): void => {
    const inUse = pool.inUseCount;
    Atomics.store(this.ints, 0, pool.totalCount);
    Atomics.store(this.ints, 1, pool.idleCount);
    Atomics.store(this.ints, 2, inUse);
    Atomics.store(this.ints, 3, Math.max(0, inUse - pool.size));
    Atomics.store(this.ints, 4, pool.waitingCount);
    const incidents = pool.incidents;
    if (incidents === this.incidents && !this.backingOff) return;
    this.incidents = incidents;
    const s = pool.stats();
    let closed = 0;
    for (const n of Object.values(s.closed)) closed += n;
    Atomics.store(this.ints, 5, closed);
    Atomics.store(this.ints, 6, s.resets);
    Atomics.store(this.ints, 7, s.queryTimeouts);
    Atomics.store(this.ints, 8, s.refillBackoffMs);
    this.backingOff = s.refillBackoffMs > 0; // read again until it ends, which is no incident
  };

  read (): PoolGauges {
    const out = {} as PoolGauges;
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i]!] = Atomics.load(this.ints, i);
    return out;
  }
}
