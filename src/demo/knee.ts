// Latency against offered load across the pool's capacity: the open loop at rates below, at and
// above 5 + 10 connections / 1 s sleeps = 15 a second, each for the same few seconds. Judged
// against the arithmetic (src/client/sweep.ts): flat at the sleep below the knee, climbing as the
// queue predicts above it, and the knee, measured from how fast latency climbs, where the pool puts it.
import { row, SWEEP_HEADER } from '../client/rate-sweep.ts';
import { capacityOf, measuredCapacity, sweep, type SweepResult } from '../client/sweep.ts';
import type { Verdict } from './verdicts.ts';

export const KNEE_RATES = [5, 10, 13, 15, 17, 20];

/** Arrivals at each rate: long enough for the queue above the knee to show, short of any POOL_TIMEOUT it uses. */
export const kneeSeconds = (quick: boolean) => (quick ? 3 : 5);

export interface KneeResult {
  rows: Verdict[];
  sweep: SweepResult;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function runKneeSweep (
  url: string,
  options: { quick: boolean; connections: number; sleepSeconds: number; out: (line: string) => void }
): Promise<KneeResult> {
  const { out } = options;
  const seconds = kneeSeconds(options.quick);
  const capacity = capacityOf(
    options.connections,
    options.sleepSeconds,
    `${options.connections} connections / ${options.sleepSeconds} s sleeps`
  );
  out(
    `  Across the knee: ${seconds} s at each of ${KNEE_RATES.join(', ')} a second (npm run client -- --sweep-rate ...)`
  );
  out(SWEEP_HEADER);
  const points = await sweep({
    url,
    rates: KNEE_RATES,
    seconds,
    pauseMs: 1000,
    capacity,
    onPoint: (point) => out(row(point)),
  });
  const result: SweepResult = { points, capacity, measured: measuredCapacity(points) };
  return { rows: kneeVerdicts(result, options.sleepSeconds), sweep: result };
}

export function kneeVerdicts ({ points, capacity, measured }: SweepResult, sleepSeconds: number): Verdict[] {
  const rows: Verdict[] = [];
  const row = (claim: string, measuredText: string, expected: string, ok: boolean) =>
    rows.push({ claim, measured: measuredText, expected, verdict: ok ? 'ok' : 'DEPARTS', ok });
  const knee = capacity!.rate;
  const sleep = sleepSeconds * 1000;
  const kept = points.every((p) => p.run.keptRate) ? '' : ' (the generator did not keep every rate)';

  const below = points.filter((p) => p.rate < 0.9 * knee);
  row(
    `below the knee (${below.map((p) => p.rate).join(', ')}/s): latency stays at the sleep`,
    below.map((p) => `${p.rate}/s p99 ${sec(p.run.corrected.p99)}`).join(', ') + kept,
    `p99 <= ${sleepSeconds} s + 0.3 s, no error`,
    below.length > 0 && below.every((p) => p.run.errors === 0 && p.run.corrected.p99 <= sleep + 300)
  );

  // Past the knee the median arrival waits (T / 2) x (rate / capacity - 1) on top of its sleep.
  const above = points.filter((p) => p.rate > 1.1 * knee);
  const extra = (ms: number) => ms - sleep;
  row(
    `above it (${above.map((p) => p.rate).join(', ')}/s): latency climbs as the queue predicts`,
    above
      .map((p) => `${p.rate}/s p50 +${sec(extra(p.run.corrected.p50))} (predicted +${sec(extra(p.predicted!.p50))})`)
      .join(', '),
    'the p50 beyond the sleep within 35 % + 0.1 s of the prediction',
    above.length > 0 &&
      above.every(
        (p) =>
          p.run.errors === 0 &&
          Math.abs(extra(p.run.corrected.p50) - extra(p.predicted!.p50)) <= 0.35 * extra(p.predicted!.p50) + 100
      )
  );

  row(
    'the knee is where the arithmetic puts it',
    measured === undefined ? 'latency climbed at no rate' : `${measured.toFixed(1)}/s (from the climb past it)`,
    `${knee}/s = ${capacity!.source}, +-15 %`,
    measured !== undefined && Math.abs(measured - knee) <= 0.15 * knee
  );
  return rows;
}
