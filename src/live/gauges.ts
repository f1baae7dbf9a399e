// Live figures in shared memory: written by whoever owns them (the request hooks, the pool,
// which in blocking mode lives in another thread), read at any time by the monitor thread,
// even while the event loop that writes them is blocked.
import type { PoolStats } from '../db/pool.ts';

export const ROUTES = ['/sleep/node/', '/sleep/python/', '/sleep/postgres/', '/todos/', 'other'] as const;
export type LiveRoute = (typeof ROUTES)[number];

const POOL_FIELDS = ['total', 'idle', 'inUse', 'overflowInUse', 'waiting'] as const;
type PoolField = (typeof POOL_FIELDS)[number];

const POOL_OFFSET = ROUTES.length;
const INTS = POOL_OFFSET + POOL_FIELDS.length;

export interface GaugeBuffers {
  ints: SharedArrayBuffer;
  /** [0]: the main loop's last heartbeat, epoch ms. */
  clock: SharedArrayBuffer;
}

export class LiveGauges {
  private readonly ints: Int32Array;
  private readonly clock: Float64Array;

  constructor(readonly buffers: GaugeBuffers = {
    ints: new SharedArrayBuffer(INTS * 4),
    clock: new SharedArrayBuffer(8),
  }) {
    this.ints = new Int32Array(buffers.ints);
    this.clock = new Float64Array(buffers.clock);
  }

  static routeOf(url: string | undefined): LiveRoute {
    const path = (url ?? '').replace(/\/?$/, '/');
    if (path.startsWith('/todos/')) return '/todos/';
    return (ROUTES as readonly string[]).includes(path) ? (path as LiveRoute) : 'other';
  }

  requestStarted(route: LiveRoute): void {
    Atomics.add(this.ints, ROUTES.indexOf(route), 1);
  }

  requestEnded(route: LiveRoute): void {
    Atomics.sub(this.ints, ROUTES.indexOf(route), 1);
  }

  inFlight(): Record<LiveRoute, number> {
    return Object.fromEntries(ROUTES.map((r, i) => [r, Atomics.load(this.ints, i)])) as Record<LiveRoute, number>;
  }

  setPool(stats: PoolStats): void {
    POOL_FIELDS.forEach((f, i) => Atomics.store(this.ints, POOL_OFFSET + i, stats[f]));
  }

  pool(): Record<PoolField, number> {
    return Object.fromEntries(POOL_FIELDS.map((f, i) => [f, Atomics.load(this.ints, POOL_OFFSET + i)])) as Record<PoolField, number>;
  }

  beat(): void {
    this.clock[0] = now();
  }

  lastBeat(): number {
    return this.clock[0]!;
  }
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
