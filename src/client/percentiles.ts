// Latency percentiles down the tail, and the percentile spectrum (HdrHistogram's percentile
// distribution): latency against the "nines", 90 %, 99 %, 99.9 %..., where a distribution shows
// where it breaks. A percentile says something only when the sample holds enough values past it:
// p99.99 needs 10,000; it is left out below that, and every figure carries its sample size.
import * as hdr from 'hdr-histogram-js';

export interface Percentiles {
  /** How many values the figures are of. */
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Only with at least 10,000 values. */
  p9999?: number;
  max: number;
}

/** The fewest values for which a percentile p (0-100) is more than the max: 1 / (1 - p). */
export const enoughFor = (p: number): number => Math.round(100 / (100 - p));

/** One point of a spectrum: `nines` = -log10(1 - p), 1 at p90, 2 at p99, 3 at p99.9; the value at p. */
export interface SpectrumPoint {
  nines: number;
  p: number;
  value: number;
}

/** HDR percentiles (3 significant digits) of millisecond values, each at most the exact max. */
export function percentiles (ms: readonly number[]): Percentiles {
  if (!ms.length) return { n: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  for (const v of ms) histogram.recordValue(Math.max(1, Math.round(v * 1000))); // µs
  const max = ms.reduce((a, b) => Math.max(a, b), 0);
  const at = (p: number) => Math.min(histogram.getValueAtPercentile(p) / 1000, max);
  const result: Percentiles = { n: ms.length, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max };
  if (ms.length >= enoughFor(99.99)) result.p9999 = at(99.99);
  histogram.destroy();
  return result;
}

/**
 * The spectrum of millisecond values: the value at each step of `step` nines, from about the median to as far
 * as the sample reaches (log10 of its size), then the max. Exact, from the sorted values (nearest rank).
 */
export function spectrum (ms: readonly number[], step = 0.05): SpectrumPoint[] {
  if (!ms.length) return [];
  const sorted = [...ms].sort((a, b) => a - b);
  const n = sorted.length;
  // Nearest rank, with room for the float error of 1 - 10^-nines (0.9 * 1000 must be rank 900, not 901).
  const rank = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n - 1e-6) - 1))]!;
  const points: SpectrumPoint[] = [];
  const last = Math.log10(n);
  // On multiples of the step from about the median (0.3 nines), so that p90, p99, ... are points of their own.
  for (let i = Math.round(0.3 / step); i * step < last - 1e-9; i++) {
    const nines = Math.round(i * step * 1e6) / 1e6;
    const p = 1 - 10 ** -nines;
    points.push({ nines: round(nines), p: 100 * p, value: rank(p) });
  }
  points.push({ nines: round(last), p: 100 * (1 - 1 / n), value: sorted[n - 1]! });
  return points;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

const s = (ms: number, digits: number) => `${(ms / 1000).toFixed(digits)}s`;

/** `p50 1.00s p90 ... p99.9 ... [p99.99 ...] max ... (n=...)`, in seconds with `digits` decimals. */
export function percentilesText (p: Percentiles, digits = 3): string {
  return (
    `p50 ${s(p.p50, digits)} p90 ${s(p.p90, digits)} p99 ${s(p.p99, digits)} p99.9 ${s(p.p999, digits)}` +
    `${p.p9999 === undefined ? '' : ` p99.99 ${s(p.p9999, digits)}`} max ${s(p.max, digits)} (n=${p.n})`
  );
}
