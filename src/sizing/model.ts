// What the pool-sizing lab expects and concludes, apart from how it measures: Little's law for
// each workload, and the recommendation drawn from a sweep.

export type Workload = 'wait' | 'work';

export interface Point {
  size: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** PostgreSQL's CPU, in cores busy on average (undefined when the server is not local). */
  pgCores?: number;
  /** Backends running a query: mean and peak of the samples. */
  activeMean: number;
  activeMax: number;
  /** All of PostgreSQL's processes: private memory (USS) at the end of the run, MB. */
  pgUssMb?: number;
  /** Little's law: what this size should serve. */
  predicted: number;
  /** Why this size was not run (over the connection budget). */
  skipped?: string;
}

/**
 * Little's law, L = X x R: with `size` connections each held R seconds per request, at most
 * `size` requests are in service, so throughput X = min(size, clients) / R. A waiting query
 * (pg_sleep, a lock, a slow disk) holds its connection without using a core: every connection
 * added serves more. A working query needs a core: past PostgreSQL's cores, more connections
 * only share the same CPUs, and X stays at cores / R.
 */
export function predictedRps (
  workload: Workload,
  size: number,
  clients: number,
  aloneMs: number,
  cores?: number
): number {
  const inService = Math.min(size, clients, workload === 'work' && cores ? cores : Infinity);
  return inService / (aloneMs / 1000);
}

export interface Recommendation {
  workload: Workload;
  /** The smallest pool that reached SHARE of the best throughput measured. */
  size: number;
  rps: number;
  best: { size: number; rps: number };
}

/**
 * "As good as the best": within 15 %. Two runs of the same point differ by up to that much on a
 * shared 2-core machine (BENCHMARKS.md), so a tighter bar would pick a size for its noise.
 */
export const SHARE = 0.85;

/**
 * The smallest size whose throughput is at least `share` of the best of the sweep, judged on the
 * whole req/s the table prints, so that a reader can check the pick against the table.
 */
export function recommend (workload: Workload, points: Point[], share = SHARE): Recommendation | undefined {
  const run = points.filter((p) => !p.skipped && p.errors === 0);
  if (!run.length) return undefined;
  const shown = (p: Point) => Math.round(p.rps);
  const best = run.reduce((a, p) => (shown(p) > shown(a) ? p : a));
  const enough = [...run].sort((a, b) => a.size - b.size).find((p) => shown(p) >= share * shown(best))!;
  return { workload, size: enough.size, rps: enough.rps, best: { size: best.size, rps: best.rps } };
}

/** PostgreSQL's rule of thumb (its wiki, "Number Of Database Connections"): 2 x cores + effective spindles. */
export const ruleOfThumb = (cores: number, spindles = 0) => 2 * cores + spindles;

/**
 * The largest size + overflow each process may have when `workers` on each of `hosts` share `available` connections.
 */
export const budgetPerProcess = (available: number, workers: number, hosts: number) =>
  Math.floor(available / (workers * hosts));
