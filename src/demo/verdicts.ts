// The demo's yardstick: what counts as "as expected", the checks on responses, and the one table
// every part of the demo prints its verdicts in (the scenarios, the claims, the faults, the hosts).
import type { Burst } from '../client/load.ts';
import { errorKind } from '../client/summary.ts';
import { waveAt } from '../scenarios.ts';

/** One line of a verdict table. */
export interface Verdict {
  /** What was put to the test: a scenario, a claim. */
  claim: string;
  /** What was measured: one cell, or one per measured column (the scenarios' totals). */
  measured: string | string[];
  expected: string;
  verdict: string;
  /** false: departed from the expected; undefined: could not be measured here (not a failure). */
  ok: boolean | undefined;
}

const tolerance = (expected: number) => expected * 0.1 + 0.3;
export const within = (measured: number, expected: number) => Math.abs(measured - expected) <= tolerance(expected);
export const s = (x: number) => `${x.toFixed(2)}s`;

/** A scenario's line: its app-sleep and database-sleep totals (undefined: it has none) and their sum, in seconds. */
export function row (
  scenario: string,
  totals: (number | undefined)[],
  expected: string,
  problems: string[]
): Verdict {
  const cell = (x: number | undefined) => (x === undefined ? '-' : s(x));
  return {
    claim: scenario,
    measured: [cell(totals[0]), cell(totals[1]), s(totals.reduce<number>((a, b) => a + (b ?? 0), 0))],
    expected,
    verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
    ok: problems.length === 0,
  };
}

/** The headings of the scenarios' table, and what its verdicts mean. */
export const SCENARIO_COLUMNS = ['scenario', 'app-sleep total', 'database-sleep total', 'sum'];
export const SCENARIO_TOLERANCE = '(verdict: each measured total within 10 % + 0.3 s of the expected one)';

/**
 * Responses of a pooled burst must land in waves of exactly `size`, each S after the one before.
 * The first wave is judged from the first response (its requests start as their connections
 * open, so a late or staggered start moves it, which the total's own verdict accounts for): all
 * of it comes before a second wave could, S after the first response. Each later response comes
 * S after the one `size` places before it, whose connection it took (S +- S/2): one response too
 * many in a wave breaks that rhythm, one too few lands a wave-1 answer a whole S late.
 */
export function checkWaves (b: Burst, seconds: number, size: number): string | undefined {
  const failed = b.results.find((r) => r.status !== 200);
  if (failed) return `a request failed: ${errorKind(failed)}`;
  const ends = b.results.map((r) => r.end / 1000).sort((a, c) => a - c);
  const first = ends[0]!;
  if (first < waveAt(1, seconds) * 0.95) {
    return `the first response came at ${s(first)}, before the ${s(seconds)} sleep could end`;
  }
  for (let i = 0; i < ends.length; i++) {
    const wave = Math.floor(i / size) + 1;
    if (wave === 1) {
      if (ends[i]! - first >= seconds * 0.9) {
        return `response ${i + 1} came at ${s(ends[i]!)}, expected in wave 1, before ${s(first + seconds * 0.9)}`;
      }
      continue;
    }
    const at = ends[i - size]! + seconds;
    if (Math.abs(ends[i]! - at) > seconds / 2) {
      return (
        `response ${i + 1} came at ${s(ends[i]!)}, expected in wave ${wave} at ${s(at)}, S after ` +
        `response ${i + 1 - size}`
      );
    }
  }
  return undefined;
}

/** 30 requests of 3 s against 15 connections and POOL_TIMEOUT=2: 15 served at 3 s, 15 refused at 2 s. */
export function checkTimeouts (b: Burst): string | undefined {
  const ok = b.results.filter((r) => r.status === 200);
  const timedOut = b.results.filter((r) => errorKind(r) === 'HTTP 503');
  if (ok.length !== 15 || timedOut.length !== 15) {
    return `${ok.length} x 200 and ${timedOut.length} x 503, expected 15 and 15`;
  }
  const late = ok.find((r) => !within(r.end / 1000, 3));
  if (late) return `a 200 came at ${s(late.end / 1000)}, expected about 3 s`;
  const off = timedOut.find((r) => !within(r.end / 1000, 2));
  if (off) return `a 503 came at ${s(off.end / 1000)}, expected about 2 s`;
  return undefined;
}

/** `columns`: the first column's heading, then the measured ones' (one, 'measured', unless a row has several). */
export function printVerdicts (
  rows: Verdict[],
  out: (line: string) => void,
  columns: string[] = ['claim', 'measured']
): void {
  const table = [
    [...columns, 'expected', 'verdict'],
    ...rows.map((r) => [r.claim, ...[r.measured].flat(), r.expected, r.verdict]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd();
  out(line(table[0]!));
  out(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of table.slice(1)) out(line(r));
}
