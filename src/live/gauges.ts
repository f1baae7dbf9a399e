// Live figures in shared memory: requests in flight per route and the event loop's heartbeat,
// written by the request hooks and read at any time by the monitor thread, even while the
// event loop that writes them is blocked.
import { now } from '../clock.ts';

export const ROUTES = [
  '/sleep/node/',
  '/sleep/python/',
  '/sleep/postgres/',
  '/todos/',
  '/work/postgres/',
  'other',
] as const;
export type LiveRoute = (typeof ROUTES)[number];

export interface GaugeBuffers {
  /** Requests in flight, one counter per route. */
  inFlight: SharedArrayBuffer;
  /** [0]: the main loop's last heartbeat, epoch ms. */
  clock: SharedArrayBuffer;
  /** libuv's thread pool: [0] the last probe's delay, ms; [1] when the probe in flight was sent (epoch ms), or 0. */
  threadPool: SharedArrayBuffer;
}

const slots = new Map<string | undefined, number>();

export class LiveGauges {
  private readonly ints: Int32Array;
  private readonly clock: Float64Array;
  private readonly probe: Float64Array;

  constructor (
    readonly buffers: GaugeBuffers = {
      inFlight: new SharedArrayBuffer(ROUTES.length * 4),
      clock: new SharedArrayBuffer(8),
      threadPool: new SharedArrayBuffer(16),
    }
  ) {
    this.ints = new Int32Array(buffers.inFlight);
    this.clock = new Float64Array(buffers.clock);
    this.probe = new Float64Array(buffers.threadPool);
  }

  /**
   * The index of a route pattern (Fastify's routeOptions.url) among ROUTES; the patterns are few, so each is worked out
   * once.
   */
  static slotOf (url: string | undefined): number {
    let slot = slots.get(url);
    if (slot === undefined) {
      const path = (url ?? '').replace(/\/?$/, '/');
      const i = (ROUTES as readonly string[]).indexOf(path.startsWith('/todos/') ? '/todos/' : path);
      slots.set(url, (slot = i < 0 ? ROUTES.length - 1 : i));
    }
    return slot;
  }

  requestStarted (slot: number): void {
    Atomics.add(this.ints, slot, 1);
  }

  requestEnded (slot: number): void {
    Atomics.sub(this.ints, slot, 1);
  }

  inFlight (): Record<LiveRoute, number> {
    return Object.fromEntries(ROUTES.map((r, i) => [r, Atomics.load(this.ints, i)])) as Record<LiveRoute, number>;
  }

  /** A probe task was handed to libuv's thread pool. */
  threadPoolProbeSent (at: number): void {
    this.probe[1] = at;
  }

  /** It came back after `ms`. */
  threadPoolProbeBack (ms: number): void {
    this.probe[0] = ms;
    this.probe[1] = 0;
  }

  /**
   * How long a task waits for libuv's thread pool now: the last probe's delay, or, while one is
   * still out, as long as it has been out if that is longer (a saturated pool shows as it fills).
   */
  threadPoolDelayMs (): number {
    const sent = this.probe[1]!;
    return sent > 0 ? Math.max(this.probe[0]!, now() - sent) : this.probe[0]!;
  }

  beat (): void {
    this.clock[0] = now();
  }

  lastBeat (): number {
    return this.clock[0]!;
  }
}
