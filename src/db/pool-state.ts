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
}

const FIELDS = ['total', 'idle', 'inUse', 'overflowInUse', 'waiting'] as const;

export class SharedPoolState {
  private readonly ints: Int32Array;

  constructor (readonly buffer = new SharedArrayBuffer(FIELDS.length * 4)) {
    this.ints = new Int32Array(buffer);
  }

  /** Fits the store's onChange: called on every checkout and release, so it reads the pool's counts and allocates nothing. */
  readonly write = (pool: Pool): void => {
    const inUse = pool.inUseCount;
    Atomics.store(this.ints, 0, pool.totalCount);
    Atomics.store(this.ints, 1, pool.idleCount);
    Atomics.store(this.ints, 2, inUse);
    Atomics.store(this.ints, 3, Math.max(0, inUse - pool.size));
    Atomics.store(this.ints, 4, pool.waitingCount);
  };

  read (): PoolGauges {
    const out = {} as PoolGauges;
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i]!] = Atomics.load(this.ints, i);
    return out;
  }
}
