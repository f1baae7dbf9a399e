// Steady load: C clients, each on its own keep-alive connection, sending one request after
// another for a fixed time (a closed loop, as wrk and autocannon do). What a pool-sizing sweep
// needs: throughput and latency at a fixed concurrency, not one burst.
import * as hdr from 'hdr-histogram-js';
import http from 'node:http';
import { classify, type ErrorKind } from './load.ts';

export interface SteadyOptions {
  url: string;
  concurrency: number;
  /** Measured time, after the warm-up. */
  seconds: number;
  /** Load before the measured window: what completes in it is not counted. */
  warmupSeconds?: number;
  /** Per request; a request that takes longer counts as a timeout error. */
  timeoutMs?: number;
  /** Ends the load early (the measured time is then up to the abort). */
  signal?: AbortSignal;
  /** Each client's pause between a response and its next request (0: a saturating closed loop). */
  thinkMs?: number;
}

export interface SteadyResult {
  requests: number;
  /** Responses with status 200-399. */
  ok: number;
  errors: Partial<Record<ErrorKind, number>>;
  /** The HTTP errors by status (what the `http` count is made of). */
  statuses: Record<number, number>;
  /** The first error body seen for each status. */
  samples: Record<number, string>;
  /** Requests completed in the measured window, per second (errors included). */
  rps: number;
  /** Latency of the successful responses, in ms. */
  p50: number;
  p99: number;
  mean: number;
  seconds: number;
}

/**
 * Runs the load for warm-up + seconds and counts the requests that complete in the measured
 * window. At its end the requests still in flight are abandoned, not awaited: with a long queue
 * (a pool of 1 and 100 clients) they could take many seconds to drain.
 */
export async function steady ({
  url,
  concurrency,
  seconds,
  warmupSeconds = 0,
  timeoutMs = 60_000,
  signal,
  thinkMs = 0,
}: SteadyOptions): Promise<SteadyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const errors: Partial<Record<ErrorKind, number>> = {};
  const statuses: Record<number, number> = {};
  const samples: Record<number, string> = {};
  let requests = 0;
  let ok = 0;
  const from = performance.now() + warmupSeconds * 1000;
  const until = from + seconds * 1000;
  const run = { over: false };
  const client = async () => {
    for (let first = true; !run.over; first = false) {
      if (thinkMs && !first) await new Promise((resolve) => setTimeout(resolve, thinkMs));
      if (run.over) break;
      const start = performance.now();
      const r = await once(url, agent, timeoutMs);
      const end = performance.now();
      if (run.over || end < from) continue;
      requests++;
      if (r.error) {
        errors[r.error] = (errors[r.error] ?? 0) + 1;
        if (r.status) {
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          samples[r.status] ??= r.body ?? '';
        }
        // A refused connection fails at once: pause, so that a dead server is not spun against.
        if (r.error === 'refused') await new Promise((resolve) => setTimeout(resolve, 50));
      } else {
        ok++;
        histogram.recordValue(Math.max(1, Math.round((end - start) * 1000))); // µs
      }
    }
  };
  const clients = Array.from({ length: concurrency }, client);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, until - performance.now()));
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true }
    );
  });
  run.over = true;
  const elapsed = (performance.now() - from) / 1000;
  agent.destroy(); // the requests in flight fail now, and are not counted
  await Promise.all(clients);
  const ms = (us: number) => us / 1000;
  const result: SteadyResult = {
    requests,
    ok,
    errors,
    statuses,
    samples,
    rps: requests / elapsed,
    p50: ok ? ms(histogram.getValueAtPercentile(50)) : NaN,
    p99: ok ? ms(histogram.getValueAtPercentile(99)) : NaN,
    mean: ok ? ms(histogram.mean) : NaN,
    seconds: elapsed,
  };
  histogram.destroy();
  return result;
}

function once (
  url: string,
  agent: http.Agent,
  timeoutMs: number
): Promise<{ error?: ErrorKind; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      const failed = (res.statusCode ?? 0) >= 400;
      let body = '';
      if (failed) {
        res.on('data', (c: Buffer) => {
          body += c;
        });
      } else res.resume();
      res.on('end', () =>
        resolve(failed ? { error: 'http', status: res.statusCode, body: body.slice(0, 200) } : {})
      );
      res.on('error', (err) => resolve({ error: classify(err).error }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve({ error: classify(err).error }));
  });
}
