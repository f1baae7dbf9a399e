// Latency against offered load: the open loop at one rate after another, each reported as the
// open loop reports it, with the arithmetic of a pool beside it. A route that holds one of C
// connections for S seconds serves at most C / S a second (the knee). Below it a request waits
// only for its own work; past it the queue grows by (rate - capacity) a second for as long as
// the arrivals last, so a request arriving t seconds in waits t x (rate / capacity - 1) more.
import { setTimeout as delay } from 'node:timers/promises';
import { openLoop, schedule, type Arrivals, type OpenLoopRun } from './open-loop.ts';
import { percentiles } from './percentiles.ts';

/** What the rates of a sweep are: `FROM:TO:STEP`, each a positive number, FROM <= TO. */
export interface SweepSpec {
  from: number;
  to: number;
  step: number;
}

/** Most rates one sweep may run: a typo in STEP should not start an hour of load. */
export const MAX_SWEEP_POINTS = 50;

/** `5:20:5` -> [5, 10, 15, 20]; a message naming what is wrong otherwise. */
export function parseSweep (text: string): SweepSpec | string {
  const parts = text.split(':');
  const numbers = parts.map((p) => (/^\d+(\.\d+)?$/.test(p) ? Number(p) : NaN));
  if (parts.length !== 3 || numbers.some((x) => !(x > 0))) {
    return 'expected FROM:TO:STEP, three positive numbers of requests a second (for example 5:20:5)';
  }
  const [from, to, step] = numbers as [number, number, number];
  if (from > to) return `FROM (${from}) is above TO (${to})`;
  if (Math.floor((to - from) / step + 1e-9) + 1 > MAX_SWEEP_POINTS) {
    return `it makes more than ${MAX_SWEEP_POINTS} rates: raise STEP`;
  }
  return { from, to, step };
}

export function sweepRates ({ from, to, step }: SweepSpec): number[] {
  const rates: number[] = [];
  for (let i = 0; from + i * step <= to + 1e-9; i++) rates.push(Math.round((from + i * step) * 1000) / 1000);
  return rates;
}

/** A pool's capacity for a route that holds a connection for its whole service time. */
export interface Capacity {
  connections: number;
  /** Seconds a request holds its connection. */
  serviceSeconds: number;
  /** Requests a second: connections / serviceSeconds. */
  rate: number;
  /** Where the figures came from, for the report. */
  source: string;
}

export const capacityOf = (connections: number, serviceSeconds: number, source: string): Capacity => ({
  connections,
  serviceSeconds,
  rate: connections / serviceSeconds,
  source,
});

/** What queueing arithmetic expects at `rate` for arrivals lasting `seconds`: corrected latency in ms. */
export interface Prediction {
  p50: number;
  max: number;
}

/**
 * Constant arrivals and a fixed service time (what the demo's arrivals and sleeps are), first come first served on
 * `connections` servers, all free at the start: each request starts when it arrives or when the request `connections`
 * places ahead of it finishes, whichever is later. Flat at the service time up to the capacity; past it the wait
 * climbs by (rate / capacity - 1) per second of arrivals, in steps of one round of the connections. A pool's queue
 * timeout cuts this short (503s); the prediction does not.
 */
export function predict (capacity: Capacity, rate: number, seconds: number): Prediction {
  const service = capacity.serviceSeconds * 1000;
  const arrivals = schedule(rate, seconds);
  const starts: number[] = [];
  const latencies = arrivals.map((at, i) => {
    const start = Math.max(at, i >= capacity.connections ? starts[i - capacity.connections]! + service : 0);
    starts.push(start);
    return start - at + service;
  });
  const { p50, max } = percentiles(latencies);
  return { p50, max };
}

export interface SweepPoint {
  rate: number;
  run: OpenLoopRun;
  predicted?: Prediction;
}

/** A sweep's points, the capacity the pool's arithmetic predicts, and the one measured (requests a second). */
export interface SweepResult {
  points: SweepPoint[];
  capacity?: Capacity;
  measured?: number;
}

export interface SweepOptions {
  url: string;
  rates: number[];
  /** Seconds of arrivals at each rate. */
  seconds: number;
  /** Between rates, once the last answer is in: the server's queue and connections settle. */
  pauseMs?: number;
  arrivals?: Arrivals;
  timeoutMs?: number;
  connections?: number;
  capacity?: Capacity;
  signal?: AbortSignal;
  /** Before each rate: which one, of how many. */
  onRate?: (rate: number, index: number) => void;
  onPoint?: (point: SweepPoint) => void;
}

/** Runs the open loop at each rate in order; stops between rates on `signal`. */
export async function sweep (options: SweepOptions): Promise<SweepPoint[]> {
  const points: SweepPoint[] = [];
  for (const [i, rate] of options.rates.entries()) {
    if (options.signal?.aborted) break;
    if (i > 0) await delay(options.pauseMs ?? 2000);
    options.onRate?.(rate, i);
    const run = await openLoop({
      url: options.url,
      rate,
      seconds: options.seconds,
      arrivals: options.arrivals,
      timeoutMs: options.timeoutMs,
      connections: options.connections,
      signal: options.signal,
    });
    const point: SweepPoint = {
      rate,
      run,
      ...(options.capacity ? { predicted: predict(options.capacity, rate, options.seconds) } : {}),
    };
    points.push(point);
    options.onPoint?.(point);
  }
  return points;
}

/**
 * The capacity the measurements say: past the knee, the corrected latency of arrivals climbs by (rate / capacity - 1)
 * per second of arrival, so each point that climbs gives capacity = rate / (1 + climb) (from the answers served before
 * any was shed). The median over those points; undefined when none climbs.
 */
export function measuredCapacity (points: SweepPoint[], minClimb = 0.03): number | undefined {
  const estimates: number[] = [];
  for (const { rate, run } of points) {
    const firstShed = run.results.filter((r) => r.error).reduce((a, r) => Math.min(a, r.intended), Infinity);
    const served = run.results.filter((r) => !r.error && r.intended < firstShed);
    if (served.length < 5) continue;
    const climb = slope(served.map((r) => [r.intended / 1000, (r.end - r.intended) / 1000]));
    if (climb > minClimb) estimates.push(rate / (1 + climb));
  }
  if (!estimates.length) return undefined;
  const sorted = estimates.sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Least squares: the slope of y over x. */
export function slope (points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return sxy / sxx;
}
