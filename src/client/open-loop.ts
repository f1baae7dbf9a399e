// Open-loop load: requests leave on a schedule (constant or Poisson arrivals) whether or not
// the earlier ones have come back, as users arrive in production. A closed loop (a burst, wrk,
// the sizing lab's clients) waits for answers, so when the server queues, the load slows down
// with it and the latency it measures hides the queue: coordinated omission. Here each request's
// latency counts from the moment it was meant to leave (as wrk2, k6's constant-arrival-rate and
// oha's --latency-correction do), and the time from when it really left is kept beside it.
import http from 'node:http';
import { getOnce, type ErrorKind } from './load.ts';
import { percentiles, type Percentiles } from './percentiles.ts';

export { percentiles, type Percentiles } from './percentiles.ts';

export type Arrivals = 'constant' | 'poisson';

export interface OpenLoopOptions {
  url: string;
  /** Requests per second. */
  rate: number;
  /** How long requests keep arriving. */
  seconds: number;
  arrivals?: Arrivals;
  /** Per request; a request that takes longer counts as a timeout error. */
  timeoutMs?: number;
  /**
   * Connections it may open (keep-alive). A request due while every one is busy waits for one,
   * and leaves late: the generator's own queue, which the corrected latency counts and the
   * report names.
   */
  connections?: number;
  /** Stops the arrivals (those in flight are still awaited, up to `timeoutMs`). */
  signal?: AbortSignal;
  /** The Poisson schedule's seed: the same seed, the same arrivals. */
  seed?: number;
  onResult?: (result: OpenResult) => void;
}

/** One request: milliseconds since the run started. */
export interface OpenResult {
  /** When the schedule meant it to leave. */
  intended: number;
  /** When it got its connection and left. */
  sent: number;
  /** When its answer had fully arrived. */
  end: number;
  status?: number;
  error?: ErrorKind;
  message?: string;
  /** The JSON error body's message for HTTP errors. */
  body?: string;
  /** The JSON error body's code for HTTP errors. */
  code?: string;
}

export interface OpenLoopRun {
  url: string;
  rate: number;
  seconds: number;
  arrivals: Arrivals;
  results: OpenResult[];
  /** Requests the schedule meant to send, and those that left. */
  scheduled: number;
  sent: number;
  /** Requests that left per second, over the span the schedule covered. */
  achievedRate: number;
  /** How late requests left, in ms (the generator's own lag, not the server's). */
  sendLag: Percentiles;
  /** Requests that left more than LATE_MS after their time. */
  late: number;
  /** The connections it could open, and the most requests in flight at once. */
  connections: number;
  peakInFlight: number;
  /** True when the generator sent at the rate asked for, on time; `why` says otherwise. */
  keptRate: boolean;
  why?: string;
  /** Latency in ms, of every answer: from the intended send (corrected) and from the actual one. */
  corrected: Percentiles;
  uncorrected: Percentiles;
  ok: number;
  errors: number;
  totalMs: number;
}

/** Enough for any queue this project builds (a 30 s POOL_TIMEOUT at 30/s), well under the open-file limit. */
export const DEFAULT_CONNECTIONS = 1000;

/** A request that leaves this much after its time was sent late. */
export const LATE_MS = 10;
/** The rate counts as kept within this share of the rate asked for. */
export const RATE_TOLERANCE = 0.02;

/** The intended send times (ms from the start): evenly spaced, or a Poisson process with exponential gaps. */
export function schedule (rate: number, seconds: number, arrivals: Arrivals = 'constant', seed = 1): number[] {
  const times: number[] = [];
  const span = seconds * 1000;
  const gap = 1000 / rate;
  if (arrivals === 'constant') {
    for (let t = 0; t < span - 1e-9; t = times.length * gap) times.push(t);
    return times;
  }
  const random = mulberry32(seed);
  for (let t = -Math.log(1 - random()) * gap; t < span; t += -Math.log(1 - random()) * gap) times.push(t);
  return times;
}

/** A small seeded generator: the arrivals of a run can be replayed. */
function mulberry32 (seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Calls `fire` at each of `times` (ms after `t0`, on performance.now()), whether or not the
 * earlier calls have finished: everything due leaves at once, so a timer that fires late sends
 * its backlog together, and the lag shows in the calls' own send times. Stops early on `signal`;
 * resolves, once every call made has settled, with how many were made.
 */
export async function dispatch (
  times: number[],
  t0: number,
  fire: (intended: number) => Promise<void>,
  signal?: { aborted: boolean }
): Promise<number> {
  const calls: Promise<void>[] = [];
  let next = 0;
  while (next < times.length && !signal?.aborted) {
    for (const at = performance.now() - t0; next < times.length && times[next]! <= at; next++) {
      calls.push(fire(times[next]!));
    }
    if (next < times.length) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, times[next]! - (performance.now() - t0))));
    }
  }
  await Promise.all(calls);
  return next;
}

export async function openLoop (options: OpenLoopOptions): Promise<OpenLoopRun> {
  const {
    url,
    rate,
    seconds,
    arrivals = 'constant',
    timeoutMs = 60_000,
    signal,
    seed = 1,
    connections = DEFAULT_CONNECTIONS,
  } = options;
  const times = schedule(rate, seconds, arrivals, seed);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const results: OpenResult[] = [];
  // One request before the schedule starts, not counted: the first send of a process is its
  // slowest (node loads its HTTP client, opens the first connection), and would count as lag.
  await one(url, agent, 0, () => 0, timeoutMs);
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  let inFlightNow = 0;
  let peakInFlight = 0;
  await dispatch(
    times,
    t0,
    (intended) => {
      peakInFlight = Math.max(peakInFlight, ++inFlightNow);
      return one(url, agent, intended, now, timeoutMs).then((r) => {
        inFlightNow--;
        results.push(r);
        options.onResult?.(r);
      });
    },
    signal
  );
  agent.destroy();
  return summarizeOpenLoop(
    { url, rate, seconds, arrivals, connections, peakInFlight },
    times.length,
    results,
    now()
  );
}

async function one (
  url: string,
  agent: http.Agent,
  intended: number,
  now: () => number,
  timeoutMs: number
): Promise<OpenResult> {
  let sent = now();
  const outcome = await getOnce(url, { agent, timeout: timeoutMs }, () => {
    sent = now();
  });
  return { intended, sent, end: now(), ...outcome };
}

/** The figures of a run: whether the generator kept its rate, and both latencies' percentiles. */
export function summarizeOpenLoop (
  asked: Pick<OpenLoopRun, 'url' | 'rate' | 'seconds' | 'arrivals' | 'connections' | 'peakInFlight'>,
  scheduled: number,
  results: OpenResult[],
  totalMs: number
): OpenLoopRun {
  const lags = results.map((r) => r.sent - r.intended);
  const sendLag = percentiles(lags);
  const late = lags.filter((l) => l > LATE_MS).length;
  // The rate it sent at: n requests over the n - 1 gaps between the first and the last.
  const sentAt = results.map((r) => r.sent).sort((a, b) => a - b);
  const span = sentAt.length > 1 ? (sentAt[sentAt.length - 1]! - sentAt[0]!) / 1000 : 0;
  const achievedRate = span > 0 ? (sentAt.length - 1) / span : 0;
  const problems: string[] = [];
  if (results.length < scheduled) {
    problems.push(`${scheduled - results.length} of ${scheduled} requests were never sent (stopped early)`);
  }
  // Poisson arrivals vary by chance around their rate; the schedule itself is what is checked there.
  if (
    asked.arrivals === 'constant' &&
    scheduled > 1 &&
    Math.abs(achievedRate - asked.rate) > RATE_TOLERANCE * asked.rate
  ) {
    problems.push(`it sent ${achievedRate.toFixed(1)}/s, not ${asked.rate}/s`);
  }
  if (sendLag.p99 > LATE_MS) {
    const why =
      asked.peakInFlight > asked.connections
        ? `all ${asked.connections} connections were busy (--connections)`
        : 'this machine could not send them on time';
    problems.push(`1 % of the requests left more than ${Math.round(sendLag.p99)} ms late (${why})`);
  }
  const ok = results.filter((r) => !r.error).length;
  return {
    ...asked,
    results,
    scheduled,
    sent: results.length,
    achievedRate,
    sendLag,
    late,
    keptRate: problems.length === 0,
    why: problems.length ? problems.join('; ') : undefined,
    corrected: percentiles(results.map((r) => r.end - r.intended)),
    uncorrected: percentiles(results.map((r) => r.end - r.sent)),
    ok,
    errors: results.length - ok,
    totalMs,
  };
}
