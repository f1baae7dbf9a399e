// The pool's gauges in shared memory: written wherever the pool lives (the main thread, or the
// blocking bridge's worker thread) and readable from any thread at any time, even while the
// thread that writes them is blocked.
import type { PoolGauges } from './pool.ts';

const FIELDS = ['total', 'idle', 'inUse', 'overflowInUse', 'waiting'] as const;

export class SharedPoolState {
  private readonly ints: Int32Array;

  constructor (readonly buffer = new SharedArrayBuffer(FIELDS.length * 4)) {
    this.ints = new Int32Array(buffer);
  }

  /** Fits PoolOptions.onChange. */
  readonly write = (gauges: PoolGauges): void => {
    for (let i = 0; i < FIELDS.length; i++) Atomics.store(this.ints, i, gauges[FIELDS[i]!]);
  };

  read (): PoolGauges {
    const out = {} as PoolGauges;
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i]!] = Atomics.load(this.ints, i);
    return out;
  }
}
