// `client --sweep-rate FROM:TO:STEP`: the open loop at each rate, one table of latency against
// offered load, and the pool's predicted knee beside the one measured (src/client/sweep.ts).
import { checkFileLimit, probe, routeUrl, type OpenLoopClientOptions } from './client.ts';
import { DEFAULT_CONNECTIONS } from './open-loop.ts';
import { errorKind } from './summary.ts';
import { ProgressLine } from './progress.ts';
import { writeReport } from './report.ts';
import {
  capacityOf,
  measuredCapacity,
  predict,
  sweep,
  sweepRates,
  type Capacity,
  type SweepPoint,
  type SweepResult,
  type SweepSpec,
} from './sweep.ts';

/** The open loop's options (`duration` at each rate), one route, and the rates with the pause between them. */
export interface SweepClientOptions extends Omit<OpenLoopClientOptions, 'routes' | 'rate'> {
  route: string;
  spec: SweepSpec;
  pauseMs: number;
}

/** The pool's connections, as the service reports them (GET /pool); undefined when it does not answer. */
async function poolConnections (base: string): Promise<number | undefined> {
  try {
    const res = await fetch(new URL('/pool', base), { signal: AbortSignal.timeout(5000) });
    const pool = (await res.json()) as { size?: number; maxOverflow?: number };
    return typeof pool.size === 'number' ? pool.size + (pool.maxOverflow ?? 0) : undefined;
  } catch {
    return undefined;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

/**
 * The capacity the pool's arithmetic gives: its connections (GET /pool) over the time a request holds one, measured
 * as the median latency from the actual send at the lowest rate (no queue there, if that rate is below the knee).
 */
export function predictedCapacity (points: SweepPoint[], connections: number | undefined): Capacity | undefined {
  const first = points[0];
  const served = first?.run.results.filter((r) => !r.error).map((r) => r.end - r.sent) ?? [];
  if (connections === undefined || !served.length) return undefined;
  const service = median(served) / 1000;
  return capacityOf(
    connections,
    service,
    `${connections} connections (GET /pool) / ${service.toFixed(3)} s each (the median request at ${first!.rate}/s)`
  );
}

export async function runSweepClient (
  options: SweepClientOptions,
  out: (line: string) => void = console.log
): Promise<SweepResult> {
  checkFileLimit(options.connections ?? DEFAULT_CONNECTIONS);
  await probe(options.url);
  const url = routeUrl(options.url, options.route, options.seconds);
  const rates = sweepRates(options.spec);
  const expectedS = rates.length * (options.duration + 1) + (rates.length - 1) * (options.pauseMs / 1000);
  if (!options.json) {
    out(
      `Rate sweep: ${url}, ${options.duration} s of ${options.arrivals} arrivals at each of ${rates.join(', ')} ` +
        `requests/s, ${options.pauseMs / 1000} s between (about ${Math.ceil(expectedS)} s)`
    );
    out(SWEEP_HEADER);
  }
  const progress = new ProgressLine(expectedS);
  const connections = await poolConnections(options.url);
  // Known from the first rate on (its service time), so that each row carries its prediction.
  let capacity: Capacity | undefined;
  const points = await sweep({
    url,
    rates,
    seconds: options.duration,
    pauseMs: options.pauseMs,
    arrivals: options.arrivals,
    timeoutMs: options.timeoutMs,
    connections: options.connections,
    signal: options.interrupted,
    onRate: (rate, i) => progress.update(`rate ${i + 1} of ${rates.length}: ${rate}/s`),
    onPoint: (point) => {
      capacity ??= predictedCapacity([point], connections);
      if (capacity) point.predicted = predict(capacity, point.rate, options.duration);
      progress.clear();
      if (!options.json) out(row(point));
    },
  });
  progress.stop();
  const measured = measuredCapacity(points);
  const result: SweepResult = { points, capacity, measured };
  if (options.json) out(JSON.stringify(sweepJson(options, result), null, 2));
  else for (const line of kneeLines(result)) out(line);
  if (options.report) {
    writeReport(options.report, `client --sweep-rate against ${options.url}`, [
      {
        title: `Latency against offered load: ${url}`,
        note:
          `${options.duration} s of ${options.arrivals} arrivals at each rate. Latency counts from each request's ` +
          'intended send.',
        bursts: [],
        sweep: result,
      },
    ]);
    if (!options.json) out(`Report written to ${options.report}`);
  }
  return result;
}

export const SWEEP_HEADER =
  '  offered  sent/s     ok  errors                       p50      p99    p99.9      max  predicted p50  generator';

const s3 = (ms: number) => `${(ms / 1000).toFixed(3)}s`;

/** Errors by kind: "HTTP 503", "timeout", ... -> count. */
export function errorCounts (point: Pick<SweepPoint, 'run'>): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const r of point.run.results) {
    const kind = errorKind(r);
    if (kind) kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** "3 x HTTP 503, 1 x timeout", or "0". */
export function errorsText (point: Pick<SweepPoint, 'run'>): string {
  return (
    Object.entries(errorCounts(point))
      .map(([kind, n]) => `${n} x ${kind}`)
      .join(', ') || '0'
  );
}

export function row (point: SweepPoint): string {
  const { run } = point;
  const c = run.corrected;
  return [
    `${point.rate}/s`.padStart(9),
    run.achievedRate.toFixed(2).padStart(7),
    String(run.ok).padStart(6),
    errorsText(point).padStart(25),
    s3(c.p50).padStart(9),
    s3(c.p99).padStart(8),
    s3(c.p999).padStart(8),
    s3(c.max).padStart(8),
    (point.predicted ? s3(point.predicted.p50) : '-').padStart(14),
    `  ${run.keptRate ? 'kept the rate' : `did NOT keep the rate: ${run.why}`}`,
  ].join(' ');
}

export function kneeLines ({ points, capacity, measured }: SweepResult): string[] {
  const lines = ["  Latency from each request's intended send (corrected for coordinated omission)."];
  lines.push(
    capacity
      ? `  The knee predicted: ${capacity.rate.toFixed(1)}/s = ${capacity.source}. Past it the queue grows by ` +
          '(rate - capacity) a second, and the arrival at t waits t x (rate / capacity - 1) more.'
      : '  No prediction: the service did not say its pool (GET /pool) or no request was served at the lowest rate.'
  );
  lines.push(
    measured === undefined
      ? `  The knee measured: none; latency did not climb at any rate up to ${points.at(-1)?.rate ?? '-'}/s.`
      : `  The knee measured: ${measured.toFixed(1)}/s (from how fast latency climbs at the rates past it)` +
          (capacity ? `, ${((measured / capacity.rate) * 100).toFixed(0)} % of the predicted.` : '.')
  );
  return lines;
}

function sweepJson (options: SweepClientOptions, { points, capacity, measured }: SweepResult) {
  return {
    url: routeUrl(options.url, options.route, options.seconds),
    duration: options.duration,
    arrivals: options.arrivals,
    capacity: capacity ?? null,
    measuredCapacity: measured ?? null,
    points: points.map(({ rate, run, predicted }) => ({
      rate,
      achievedRate: run.achievedRate,
      scheduled: run.scheduled,
      sent: run.sent,
      ok: run.ok,
      errors: run.errors,
      errorKinds: errorCounts({ run }),
      corrected: run.corrected,
      uncorrected: run.uncorrected,
      sendLag: run.sendLag,
      keptRate: run.keptRate,
      why: run.why ?? null,
      predicted: predicted ?? null,
    })),
  };
}
