// Figures for one burst: latency percentiles (HDR histogram), errors by kind, waves.
import type { Burst, RequestResult } from './load.ts';
import { percentiles, percentilesText, type Percentiles } from './percentiles.ts';

export interface Summary {
  ok: number;
  errors: number;
  /** "HTTP 503", "refused", "reset", "timeout", "other" -> count. */
  errorKinds: Record<string, number>;
  /** The first message seen for each error kind. */
  errorMessages: Record<string, string>;
  latency: Percentiles & { min: number };
  /** Responses that landed in each whole second since the burst started. */
  perSecond: number[];
}

export function summarize (burst: Burst): Summary {
  const errorKinds: Record<string, number> = {};
  const errorMessages: Record<string, string> = {};
  const perSecond: number[] = [];
  let ok = 0;
  for (const r of burst.results) {
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
  const times = burst.results.map((r) => r.end - r.start);
  const latency = { min: times.length ? times.reduce((a, b) => Math.min(a, b)) : 0, ...percentiles(times) };
  return { ok, errors: burst.results.length - ok, errorKinds, errorMessages, latency, perSecond };
}

export function errorKind (r: Pick<RequestResult, 'error' | 'status'>): string | undefined {
  if (r.error === 'http') return `HTTP ${r.status}`;
  return r.error;
}

export function latencyText (sum: Summary): string {
  return `min ${(sum.latency.min / 1000).toFixed(2)}s ${percentilesText(sum.latency, 2)}`;
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
