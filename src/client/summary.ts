// Figures for one burst: latency percentiles (HDR histogram), errors by kind, waves.
import * as hdr from 'hdr-histogram-js';
import type { Burst, RequestResult } from './load.ts';

export interface Summary {
  ok: number;
  errors: number;
  /** "HTTP 503", "refused", "reset", "timeout", "other" -> count. */
  errorKinds: Record<string, number>;
  /** The first message seen for each error kind. */
  errorMessages: Record<string, string>;
  latency: { min: number; p50: number; p90: number; p99: number; max: number };
  /** Responses that landed in each whole second since the burst started. */
  perSecond: number[];
}

export function summarize (burst: Burst): Summary {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 4,
  });
  const errorKinds: Record<string, number> = {};
  const errorMessages: Record<string, string> = {};
  const perSecond: number[] = [];
  let ok = 0;
  for (const r of burst.results) {
    histogram.recordValue(Math.max(1, Math.round((r.end - r.start) * 1000))); // microseconds
    const second = Math.floor(r.end / 1000);
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]!++;
    const kind = errorKind(r);
    if (!kind) {
      ok++;
      continue;
    }
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    errorMessages[kind] ??= r.body ?? r.message ?? '';
  }
  // Percentiles are reported at the top of their bucket: never above the exact max.
  const max = histogram.maxValue;
  const at = (p: number) => Math.min(histogram.getValueAtPercentile(p), max) / 1000;
  const latency = burst.results.length
    ? { min: histogram.minNonZeroValue / 1000, p50: at(50), p90: at(90), p99: at(99), max: max / 1000 }
    : { min: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  histogram.destroy();
  return { ok, errors: burst.results.length - ok, errorKinds, errorMessages, latency, perSecond };
}

export function errorKind (r: Pick<RequestResult, 'error' | 'status'>): string | undefined {
  if (r.error === 'http') return `HTTP ${r.status}`;
  return r.error;
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

export function latencyText (sum: Summary): string {
  const { min, p50, p90, p99, max } = sum.latency;
  return `min ${s(min)} p50 ${s(p50)} p90 ${s(p90)} p99 ${s(p99)} max ${s(max)}`;
}

export function summaryLine (route: string, sum: Summary): string {
  return `${route}: ${sum.ok} ok, ${sum.errors} errors; latency ${latencyText(sum)}`;
}

export function errorLines (sum: Summary): string[] {
  return Object.entries(sum.errorKinds).map(([kind, n]) => {
    const message = sum.errorMessages[kind];
    return `\t${n} x ${kind}${message ? `: ${message}` : ''}`;
  });
}

/** "1s:15 2s:15 3s:15": how many responses landed in each second. */
export function waveLine (sum: Summary): string {
  return (
    '\tresponses per second: ' +
    sum.perSecond
      .map((n, i) => (n ? `${i}-${i + 1}s:${n}` : ''))
      .filter(Boolean)
      .join('  ')
  );
}

/** Groups response times (ms) into waves: a gap of more than `gapMs` starts a new wave. */
export function waves (endTimes: number[], gapMs = 150): number[][] {
  const sorted = [...endTimes].sort((a, b) => a - b);
  const out: number[][] = [];
  for (const t of sorted) {
    const last = out.at(-1);
    if (last && t - last.at(-1)! <= gapMs) last.push(t);
    else out.push([t]);
  }
  return out;
}
