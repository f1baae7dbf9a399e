// Past the ceiling at a steady rate: the original's warning as production meets it. Users keep
// arriving whether or not the pool is full, so the client is an open loop (src/client/open-loop.ts).
// The pool of 5 + 10 serves 1 s database sleeps at about 15 a second. At 10 a second the latency
// stays at the sleep; at 20 a second the queue grows by about 5 a second, each arrival waits a
// third of a second longer than the one before it, until the wait reaches POOL_TIMEOUT and the
// pool sheds with 503. The verdicts check that shape against queueing arithmetic, and Little's
// law against the waiting count the service itself reports.
import { openLoop, type OpenLoopRun, type OpenResult } from '../client/open-loop.ts';
import { slope, type SweepResult } from '../client/sweep.ts';
import { withServerProcess, type Stoppable } from '../harness/server-process.ts';
import { ORIGINAL } from '../scenarios.ts';
import { runKneeSweep } from './knee.ts';
import type { Verdict } from './verdicts.ts';

const SLEEP_S = 1;
const CONNECTIONS = ORIGINAL.poolSize + ORIGINAL.poolMaxOverflow;
/** What the pool serves per second: every connection busy with one sleep after another. */
const CAPACITY = CONNECTIONS / SLEEP_S;
const UNDER = 10;
const OVER = 20;
const SAMPLE_MS = 100;

export const ARRIVALS_TITLE =
  `Past the ceiling at a steady rate: 1 s database sleeps arriving at ${UNDER}/s, ` +
  `then ${OVER}/s, against a pool of 5 + 10 (${CAPACITY}/s)`;

interface Timing {
  underSeconds: number;
  overSeconds: number;
  poolTimeout: number;
}

const QUICK: Timing = { underSeconds: 4, overSeconds: 10, poolTimeout: 2 };
const FULL: Timing = { underSeconds: 8, overSeconds: 16, poolTimeout: 3 };

interface Sample {
  t: number;
  waiting: number;
}

/** The service's own waiting count (GET /pool), every SAMPLE_MS until stopped: ms since `t0`. */
function sampleWaiting (base: string, t0: number, signal: AbortSignal): Promise<Sample[]> {
  const samples: Sample[] = [];
  return (async () => {
    while (!signal.aborted) {
      const asked = performance.now();
      try {
        const pool = (await (await fetch(`${base}/pool`)).json()) as { waiting: number };
        samples.push({ t: (asked + performance.now()) / 2 - t0, waiting: pool.waiting });
      } catch {
        /* the service is busy or gone: the next sample tells */
      }
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
    return samples;
  })();
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export interface ArrivalsResult {
  rows: Verdict[];
  runs: OpenLoopRun[];
  /** Latency against offered rate, across the knee. */
  sweep: SweepResult;
}

export async function runArrivalsScenario (
  databaseUrl: string,
  options: { quick: boolean; running: Set<Stoppable>; out: (line: string) => void }
): Promise<ArrivalsResult> {
  const { out } = options;
  const timing = options.quick ? QUICK : FULL;
  const T = timing.poolTimeout;
  out(`=== ${ARRIVALS_TITLE} ===`);
  out(
    '    the original: "the concurrency for Postgresql operations is always limited by" the pool; here, arrivals ' +
      'that do not wait for it'
  );
  out(`    here:         POOL_TIMEOUT=${T} npm start`);
  out(
    `                  npm run client -- --rate ${UNDER} --duration ${timing.underSeconds} --route /sleep/postgres/ ` +
      `--seconds ${SLEEP_S}, then --rate ${OVER} --duration ${timing.overSeconds}`
  );
  out(
    '    Latency counts from when each request was meant to leave (an open loop). Over capacity the queue grows ' +
      `by ${OVER} - ${CAPACITY} = ${OVER - CAPACITY} a second,`
  );
  out(
    `    each arrival waits ${((OVER - CAPACITY) / CAPACITY).toFixed(2)} s longer than the one a second before it, ` +
      `and the pool sheds once a wait would pass POOL_TIMEOUT (${T} s).`
  );
  return withServerProcess(
    { DATABASE_URL: databaseUrl, LOG_LEVEL: 'error', POOL_TIMEOUT: String(T) },
    async (server) => {
      const url = `${server.url}/sleep/postgres/?seconds=${SLEEP_S}`;
      // The overflow connections open on the first burst; a warm pool is what the arithmetic assumes.
      await Promise.all(
        Array.from({ length: CONNECTIONS }, () =>
          fetch(`${server.url}/sleep/postgres/?seconds=0`).then((r) => r.arrayBuffer())
        )
      );
      const under = await openLoop({ url, rate: UNDER, seconds: timing.underSeconds });
      out(
        `  at ${UNDER}/s: ${under.ok} ok, ${under.errors} errors; latency p50 ${sec(under.corrected.p50)}, ` +
          `p99 ${sec(under.corrected.p99)}${
            under.keptRate ? '' : '; the generator did not ' + `keep the rate: ${under.why}`
          }`
      );
      const stop = new AbortController();
      const t0 = performance.now();
      const sampling = sampleWaiting(server.url, t0, stop.signal);
      const over = await openLoop({ url, rate: OVER, seconds: timing.overSeconds });
      stop.abort();
      const samples = await sampling;
      out(
        `  at ${OVER}/s: ${over.ok} ok, ${over.errors} errors; latency p50 ${sec(over.corrected.p50)}, ` +
          `p99 ${sec(over.corrected.p99)}, max ${sec(over.corrected.max)}${
            over.keptRate ? '' : '; the generator did ' + `not keep the rate: ${over.why}`
          }`
      );
      const rows = verdicts(under, over, samples, T);
      for (const line of queueLines(over, samples)) out(line);
      const knee = await runKneeSweep(url, {
        quick: options.quick,
        connections: CONNECTIONS,
        sleepSeconds: SLEEP_S,
        out,
      });
      return { rows: [...rows, ...knee.rows], runs: [under, over], sweep: knee.sweep };
    },
    { running: options.running }
  );
}

/** The waiting count and the latency, second by second of arrival. */
function queueLines (over: OpenLoopRun, samples: Sample[]): string[] {
  const lines = ["    second  waiting (the service)  latency of that second's arrivals (median)  answers"];
  for (let s = 0; s < over.seconds; s++) {
    const inSecond = (t: number) => t >= s * 1000 && t < (s + 1) * 1000;
    const waiting = samples.filter((x) => inSecond(x.t)).map((x) => x.waiting);
    const arrivals = over.results.filter((r) => inSecond(r.intended));
    const statuses = [...new Set(arrivals.map((r) => r.status ?? r.error))].join(', ');
    const most = String(waiting.length ? Math.max(...waiting) : '-');
    const late = sec(median(arrivals.map((r) => r.end - r.intended)));
    lines.push(`    ${String(s).padStart(6)}  ${most.padStart(21)}  ${late.padStart(43)}  ${statuses}`);
  }
  return lines;
}

function verdicts (under: OpenLoopRun, over: OpenLoopRun, samples: Sample[], poolTimeout: number): Verdict[] {
  const rows: Verdict[] = [];
  const row = (claim: string, measured: string, expected: string, ok: boolean) =>
    rows.push({ claim, measured, expected, verdict: ok ? 'ok' : 'DEPARTS', ok });
  const generator = [under, over].every((r) => r.keptRate);

  // Under capacity, every request is served in about the sleep.
  row(
    `at ${UNDER}/s (under ${CAPACITY}/s): latency stays at the sleep`,
    `p99 ${sec(under.corrected.p99)}, ${under.errors} errors${
      generator ? '' : ' (the generator did not keep the rate)'
    }`,
    `p99 <= ${SLEEP_S}s + 0.3s, no error`,
    under.errors === 0 && under.corrected.p99 <= SLEEP_S * 1000 + 300
  );

  // Over capacity, until the pool sheds: the waiting count grows at lambda - mu.
  const firstShed = over.results.filter((r) => r.status === 503).sort((a, b) => a.intended - b.intended)[0];
  const growthEnd = firstShed ? firstShed.intended : over.seconds * 1000;
  const growing = samples
    .filter((x) => x.t >= 1000 && x.t <= growthEnd)
    .map((x): [number, number] => [x.t / 1000, x.waiting]);
  const growth = growing.length > 5 ? slope(growing) : NaN;
  row(
    `at ${OVER}/s: the waiting count grows at lambda - mu`,
    `${growth.toFixed(1)} a second (the service's GET /pool, ${growing.length} samples)`,
    `${OVER} - ${CAPACITY} = ${OVER - CAPACITY} a second, +-25 %`,
    Math.abs(growth - (OVER - CAPACITY)) <= 0.25 * (OVER - CAPACITY)
  );

  // Each arrival's latency: the sleep, plus the queue ahead of it over the pool's rate.
  const served = over.results.filter((r) => r.status === 200 && r.intended < growthEnd);
  const climb =
    served.length > 5
      ? slope(served.map((r): [number, number] => [r.intended / 1000, (r.end - r.intended) / 1000]))
      : NaN;
  const expectedClimb = (OVER - CAPACITY) / CAPACITY;
  row(
    `at ${OVER}/s: latency climbs linearly with the arrival time`,
    `${climb.toFixed(2)} s more per second of arrivals`,
    `(lambda - mu) / mu = ${expectedClimb.toFixed(2)}, +-25 %`,
    Math.abs(climb - expectedClimb) <= 0.25 * expectedClimb
  );

  // The first shed request waited POOL_TIMEOUT, and it came when the queue's wait reached it.
  const predictedAt = (poolTimeout * CAPACITY) / (OVER - CAPACITY);
  row(
    'the pool sheds with 503 once a wait reaches POOL_TIMEOUT',
    firstShed
      ? `the first 503 after ${sec(firstShed.end - firstShed.intended)}, for the request sent ` +
          `at ${sec(firstShed.intended)}`
      : 'no 503',
    `after ${poolTimeout}s (+-10 % + 0.3 s), for a request sent at about ${predictedAt.toFixed(1)} s (+-30 %)`,
    firstShed !== undefined &&
      Math.abs((firstShed.end - firstShed.intended) / 1000 - poolTimeout) <= 0.1 * poolTimeout + 0.3 &&
      Math.abs(firstShed.intended / 1000 - predictedAt) <= 0.3 * predictedAt
  );

  // Little's law over the whole run (every request waited and left inside it): the area under
  // the waiting count is the sum of the waits. A served request waited its latency less the
  // sleep (as served alone, under capacity); a shed one, its whole latency.
  const service = median(under.results.filter((r) => r.status === 200).map((r) => r.end - r.sent));
  const waits =
    over.results.reduce(
      (sum, r: OpenResult) =>
        sum + Math.max(0, r.status === 200 ? r.end - r.intended - service : r.end - r.intended),
      0
    ) / 1000;
  const area = samples
    .slice(1)
    .reduce((sum, x, i) => sum + (((x.t - samples[i]!.t) / 1000) * (x.waiting + samples[i]!.waiting)) / 2, 0);
  row(
    "Little's law: the waiting the service counted is the waiting the clients saw",
    `${area.toFixed(0)} request-seconds under the service's ` +
      `waiting count; ${waits.toFixed(0)} summed over the requests`,
    'equal, +-15 %',
    Math.abs(area - waits) <= 0.15 * waits
  );
  return rows;
}
