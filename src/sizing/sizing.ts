// `npm run sizing`: how big should the pool be? A sweep of pool sizes at a fixed number of
// concurrent clients, for a workload that waits in PostgreSQL (pg_sleep) and one that works
// there (CPU), each a route of the service started with that pool; measured against Little's
// law, ending with a recommendation. Against DATABASE_URL (a staging server) or the embedded one.
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { ProgressLine } from '../client/progress.ts';
import { steady } from '../client/steady.ts';
import type { Config } from '../config.ts';
import { prepareDatabase } from '../db/tables.ts';
import { work } from '../db/queries.ts';
import { stopAllOnInterrupt, withServerProcess, type Stoppable } from '../harness/server-process.ts';
import { memoryOf, tree, treeCpuMs } from '../os/proc.ts';
import { backendsNow, serverFacts, type ServerFacts } from '../postgres/observe.ts';
import { availableTo } from '../postgres/limits.ts';
import { openDatabase, type DatabaseSource } from '../postgres/source.ts';
import {
  budgetPerProcess,
  predictedRps,
  recommend,
  ruleOfThumb,
  SHARE,
  type Point,
  type Recommendation,
  type Workload,
} from './model.ts';
import { writeSizingReport } from './report.ts';

export interface SizingOptions {
  sizes: number[];
  concurrency: number;
  /** The work route's query alone takes about this long. */
  workMs: number;
  /** The wait route's pg_sleep. */
  sleepMs: number;
  /** Measured time per point, after `warmupSeconds`. */
  seconds: number;
  warmupSeconds: number;
  /** For the budget beside the recommendation: processes per host, and hosts. */
  workers: number;
  hosts: number;
  report: string;
}

export const QUICK = { sizes: [1, 2, 4, 8, 16], seconds: 2, warmupSeconds: 0.5 };
export const FULL = { sizes: [1, 2, 4, 8, 16, 32, 64], seconds: 8, warmupSeconds: 2 };

export interface SizingResult {
  facts: ServerFacts;
  cores?: number;
  units: number;
  aloneMs: Record<Workload, number>;
  points: Record<Workload, Point[]>;
  recommendations: Recommendation[];
}

/** Connections the lab itself holds while it measures: its watcher, and one spare. */
const OWN_CONNECTIONS = 2;

/**
 * What a lab run stands on: the database (embedded or DATABASE_URL), a connection to watch it by, and what Ctrl-C
 * stops.
 */
export interface Lab {
  db: DatabaseSource;
  watcher: pg.Client;
  running: Set<Stoppable>;
}

/** Runs `fn` in a lab, and stops what it started (servers, then the database) however it ends, Ctrl-C included. */
export async function withLab<T> (
  config: Config,
  out: (line: string) => void,
  fn: (lab: Lab) => Promise<T>
): Promise<T> {
  const running = new Set<Stoppable>();
  const stopListening = stopAllOnInterrupt(running, out);
  let watcher: pg.Client | undefined;
  try {
    const db = await openDatabase(config, { log: out, reuseRunning: true });
    running.add(db);
    watcher = new pg.Client({ connectionString: db.url });
    return await fn({ db, watcher, running });
  } finally {
    await watcher?.end().catch(() => {});
    for (const r of [...running].reverse()) await r.stop();
    stopListening();
  }
}

export async function runSizing (
  config: Config,
  options: SizingOptions,
  print: (line: string) => void = console.log
): Promise<SizingResult> {
  // On a terminal: the point measured now, against the time the whole sweep should take.
  const perPoint = options.seconds + options.warmupSeconds;
  const progress = new ProgressLine(10 + options.sizes.length * (2 * perPoint + 3));
  progress.update('calibrating');
  try {
    return await lab(config, options, progress.printing(print), progress);
  } finally {
    progress.stop();
  }
}

async function lab (
  config: Config,
  options: SizingOptions,
  out: (line: string) => void,
  progress: ProgressLine
): Promise<SizingResult> {
  return withLab(config, out, async ({ db, watcher, running }) => {
    await prepareDatabase(db.url);
    const facts = await serverFacts(db.url);
    // A local server's cores are this machine's; a remote one's are not visible from here.
    const cores = facts.postmasterPid ? availableParallelism() : undefined;
    await watcher.connect();
    const available = availableTo(facts);
    out(
      `Database: ${db.label}: ${facts.version}, max_connections ${facts.maxConnections} (${available} for ordinary ` +
        'roles), ' +
        (cores ? `on this machine, ${cores} cores` : `${facts.notLocal}: its cores and CPU time are unknown here`)
    );

    const units = await calibrate(watcher, options.workMs);
    out(
      `Work route calibrated: /work/postgres/?units=${units} takes about ${options.workMs} ms of PostgreSQL CPU when ` +
        'it runs alone.'
    );
    const routes: Record<Workload, string> = {
      wait: `/sleep/postgres/?seconds=${options.sleepMs / 1000}`,
      work: `/work/postgres/?units=${units}`,
    };
    out(
      `${options.concurrency} concurrent clients; pool sizes ${options.sizes.join(', ')} (no ` +
        `overflow); ${options.seconds} s per point after ${options.warmupSeconds} s of warm-up.`
    );
    out(`  wait: GET ${routes.wait}   (pg_sleep: the connection is held, no CPU is used)`);
    out(`  work: GET ${routes.work}   (CPU in PostgreSQL)\n`);

    const aloneMs = await measureAlone(db.url, routes, running);
    out(
      `One request alone: wait ${aloneMs.wait.toFixed(1)} ms, work ${aloneMs.work.toFixed(1)} ms (the R of Little's ` +
        'law at low load).\n'
    );

    const points: Record<Workload, Point[]> = { wait: [], work: [] };
    for (const size of options.sizes) {
      if (size + OWN_CONNECTIONS > available) {
        const skipped =
          `${size} connections + ${OWN_CONNECTIONS} of the lab's own > ${available} that PostgreSQL ` + 'allows';
        for (const w of ['wait', 'work'] as const) {
          points[w].push({
            size,
            rps: 0,
            p50: NaN,
            p99: NaN,
            errors: 0,
            activeMean: 0,
            activeMax: 0,
            predicted: predictedRps(w, size, options.concurrency, aloneMs[w], cores),
            skipped,
          });
        }
        out(`pool ${size}: skipped, ${skipped}`);
        continue;
      }
      await withServerProcess(
        {
          DATABASE_URL: db.url,
          POOL: 'queue',
          POOL_SIZE: String(size),
          POOL_MAX_OVERFLOW: '0',
          POOL_TIMEOUT: '120',
          POOL_QUEUE_MAX: String(Math.max(1000, options.concurrency * 2)),
          LOG_LEVEL: 'error',
        },
        async (server) => {
          for (const w of ['wait', 'work'] as const) {
            progress.update(`pool size ${size} (${options.sizes.indexOf(size) + 1} of ${options.sizes.length}), ${w}`);
            const point = await measurePoint(`${server.url}${routes[w]}`, size, options, watcher, facts);
            point.predicted = predictedRps(w, size, options.concurrency, aloneMs[w], cores);
            points[w].push(point);
            out(
              `pool ${String(size).padStart(3)}, ${w}: ${Math.round(point.rps)} req/s ` +
                `(Little: ${Math.round(point.predicted)}), ` +
                `p50 ${point.p50.toFixed(0)} ms, p99 ${point.p99.toFixed(0)} ` +
                'ms, ' +
                `${point.activeMax} backends active at most${
                  point.pgCores === undefined ? '' : ', ' + `PostgreSQL ${point.pgCores.toFixed(2)} cores busy`
                }${point.errors ? `, ${point.errors} errors` : ''}`
            );
          }
        },
        { running }
      );
    }

    out('');
    for (const w of ['wait', 'work'] as const) printTable(w, points[w], out);
    const recommendations = (['wait', 'work'] as const)
      .map((w) => recommend(w, points[w]))
      .filter((r): r is Recommendation => Boolean(r));
    out('');
    printRecommendation(recommendations, { available, cores, options, facts, points }, out);
    const result: SizingResult = { facts, cores, units, aloneMs, points, recommendations };
    writeSizingReport(options.report, result, options);
    out(`\nReport written to ${options.report}`);
    return result;
  });
}

/** Finds the units for which one work query, alone, takes about `ms` (median of 3 runs). */
async function calibrate (client: pg.Client, ms: number): Promise<number> {
  const time = async (units: number) => {
    const { sql, parameters } = work(units);
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await client.query(sql, parameters as unknown[]);
      runs.push(performance.now() - t0);
    }
    return runs.sort((a, b) => a - b)[1]!;
  };
  let units = 100_000;
  for (let i = 0; i < 4; i++) {
    const took = await time(units);
    const next = Math.max(1000, Math.min(100_000_000, Math.round((units * ms) / Math.max(0.05, took))));
    if (Math.abs(took - ms) < ms * 0.1) return units;
    units = next;
  }
  return units;
}

/** The latency of one request with nothing else running: the R of Little's law (median of 5). */
async function measureAlone (
  url: string,
  routes: Record<Workload, string>,
  running: Set<Stoppable>
): Promise<Record<Workload, number>> {
  return withServerProcess(
    { DATABASE_URL: url, LOG_LEVEL: 'error' },
    async (server) => {
      const alone = {} as Record<Workload, number>;
      for (const w of ['wait', 'work'] as const) {
        const times: number[] = [];
        for (let i = 0; i < 6; i++) {
          const t0 = performance.now();
          const res = await fetch(`${server.url}${routes[w]}`);
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`GET ${routes[w]} answered ${res.status}`);
          if (i > 0) times.push(performance.now() - t0); // the first warms the connection
        }
        alone[w] = times.sort((a, b) => a - b)[2]!;
      }
      return alone;
    },
    { running }
  );
}

async function measurePoint (
  url: string,
  size: number,
  options: SizingOptions,
  watcher: pg.Client,
  facts: ServerFacts
): Promise<Point> {
  const load = steady({
    url,
    concurrency: options.concurrency,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
  });
  await delay(options.warmupSeconds * 1000);
  const pgCpu0 = facts.postmasterPid ? treeCpuMs(facts.postmasterPid) : 0;
  const samples: number[] = [];
  const sampling = { on: true };
  const sampler = (async () => {
    while (sampling.on) {
      samples.push((await backendsNow(watcher)).active);
      await delay(200);
    }
  })();
  const r = await load;
  const pgCpuMs = facts.postmasterPid ? treeCpuMs(facts.postmasterPid) - pgCpu0 : undefined;
  const pgUssMb = facts.postmasterPid ? postgresUss(facts.postmasterPid) : undefined;
  sampling.on = false;
  await sampler;
  return {
    size,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.requests - r.ok,
    pgCores: pgCpuMs === undefined ? undefined : pgCpuMs / (r.seconds * 1000),
    activeMean: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0,
    activeMax: Math.max(0, ...samples),
    pgUssMb,
    predicted: 0,
  };
}

/** The private memory of every PostgreSQL process, MB (undefined when /proc cannot be read). */
function postgresUss (postmaster: number): number | undefined {
  let total = 0;
  for (const pid of tree(postmaster)) {
    try {
      total += memoryOf(pid).uss;
    } catch (err) {
      // A backend that exited meanwhile is skipped; a process we may not read makes the sum unknown.
      if ((err as NodeJS.ErrnoException).code === 'EACCES' || (err as NodeJS.ErrnoException).code === 'EPERM') {
        return undefined;
      }
    }
  }
  return total;
}

function printTable (workload: Workload, points: Point[], out: (line: string) => void): void {
  const title =
    workload === 'wait'
      ? 'wait: the query waits in PostgreSQL (pg_sleep)'
      : 'work: the query computes in PostgreSQL (CPU)';
  const rows = [
    [
      'pool',
      'req/s',
      "Little's law",
      'measured / law',
      'p50',
      'p99',
      'errors',
      'PostgreSQL CPU',
      'active backends (mean, max)',
      'PostgreSQL USS',
    ],
  ];
  for (const p of points) {
    if (p.skipped) {
      rows.push([
        String(p.size),
        '-',
        String(Math.round(p.predicted)),
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        'skipped: over the budget',
      ]);
      continue;
    }
    rows.push([
      String(p.size),
      String(Math.round(p.rps)),
      String(Math.round(p.predicted)),
      (p.rps / p.predicted).toFixed(2),
      `${p.p50.toFixed(0)} ms`,
      `${p.p99.toFixed(0)} ms`,
      String(p.errors),
      p.pgCores === undefined ? '?' : `${p.pgCores.toFixed(2)} cores`,
      `${p.activeMean.toFixed(1)}, ${p.activeMax}`,
      p.pgUssMb === undefined ? '?' : `${Math.round(p.pgUssMb)} MB`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  out(title);
  out(rows[0]!.map((c, i) => c.padEnd(widths[i]!)).join(' | '));
  out(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows.slice(1)) {
    out(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join(' | ')
        .trimEnd()
    );
  }
  out('');
}

function printRecommendation (
  recs: Recommendation[],
  {
    available,
    cores,
    options,
    facts,
    points,
  }: {
    available: number;
    cores?: number;
    options: SizingOptions;
    facts: ServerFacts;
    points: Record<Workload, Point[]>;
  },
  out: (line: string) => void
): void {
  out(
    `Recommendation (the smallest pool within ${Math.round((1 - SHARE) * 100)} % of the best throughput measured, ` +
      'the noise between two runs here):'
  );
  for (const r of recs) {
    const what = r.workload === 'wait' ? 'queries that wait' : 'queries that compute';
    out(
      `  ${what.padEnd(20)}: pool ${r.size} (${Math.round(r.rps)} req/s; the best, ${Math.round(r.best.rps)} req/s, ` +
        `at ${r.best.size})`
    );
  }
  const perProcess = budgetPerProcess(available - OWN_CONNECTIONS, options.workers, options.hosts);
  out('  beside them:');
  out(
    cores
      ? `    2 x cores + effective spindles (PostgreSQL's rule of thumb) = 2 x ${cores} + 0 = ${ruleOfThumb(cores)} ` +
          'connections in all, for CPU-bound queries'
      : "    2 x cores + effective spindles (PostgreSQL's rule of thumb): the server's cores are unknown from here"
  );
  out(
    `    the budget: ${facts.version} allows ${available} connections; ${options.hosts} host(s) x ${options.workers} ` +
      'worker(s) may have at most ' +
      `${perProcess} each (size + overflow)`
  );
  const work = recs.find((r) => r.workload === 'work');
  const wait = recs.find((r) => r.workload === 'wait');
  if (work && wait) {
    out('  What it teaches:');
    const wider = points.work
      .filter((p) => p.size > work.size && !p.skipped && p.errors === 0)
      .map((p) => Math.round(p.rps));
    out(
      `    work: throughput reaches ${Math.round(work.rps)} req/s at pool ${work.size}` +
        (cores ? `, about ${cores} cores' worth` : '') +
        (wider.length ? ` (the wider pools: ${Math.min(...wider)} to ${Math.max(...wider)} req/s)` : '') +
        '; a wider pool adds little or nothing, and its extra queries wait inside PostgreSQL for a core'
    );
    out(
      '      (see the active backends) instead of in the pool, where the wait is visible, bounded and cancellable.'
    );
    out(
      `    wait: throughput grows with the pool (Little's law: size / ${options.sleepMs} ` +
        `ms)${wait.size >= Math.max(...options.sizes) ? ' up to the largest size tried' : ` up to ${wait.size}`}; ` +
        `there the limit is the connection budget (${perProcess} per process here), and PostgreSQL's memory grows ` +
        'with each connection.'
    );
  }
}
