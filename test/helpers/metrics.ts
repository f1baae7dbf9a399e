// The service's /metrics, read as Prometheus reads it.
import assert from 'node:assert/strict';

/** Prometheus text format: every sample line is `name{labels} value`. */
export function parseMetrics (text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // prom-client writes NaN as "Nan"; Prometheus reads it (case-insensitively), so do we.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/i.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}
