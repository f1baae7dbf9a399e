// `npm run sizing -- --query 'SQL'`: how big should the pool be for your own query, on your own
// database? The lab runs the query itself, through pg-queuepool with each pool size in turn (no
// service in between), from C concurrent clients or at an arrival rate (an open loop), and
// measures throughput, p50/p99 and the wait for a connection. It recommends the smallest pool
// that meets a p99 target, or that comes within 15 % of the best throughput, and puts PostgreSQL's
// rule of thumb beside it as a comparison, not as the answer.
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { Pool } from 'pg-queuepool';
import { dispatch, percentiles, schedule } from '../client/open-loop.ts';
import type { Config } from '../config.ts';
import { treeCpuMs } from '../os/proc.ts';
import { availableTo } from '../postgres/limits.ts';
import { backendsNow, serverCores, serverFacts } from '../postgres/observe.ts';
import { budgetPerProcess, recommend, ruleOfThumb, SHARE, type Point } from './model.ts';
import { writeCurvesReport } from './report.ts';
import { withLab } from './sizing.ts';

export interface QuerySizingOptions {
  query: string;
  params: unknown[];
  sizes: number[];
  /** Closed loop: this many clients, each sending the next query when the last has answered. */
  concurrency?: number;
  /** Open loop: this many queries a second, whatever the pool does. */
  rate?: number;
  seconds: number;
  warmupSeconds: number;
  /** Recommend the smallest pool whose p99 is within this many ms; else, within 15 % of the best throughput. */
  p99?: number;
  /** Run a statement that writes, each time in a transaction that is rolled back. */
  allowWrites: boolean;
  workers: number;
  hosts: number;
  report: string;
}

/** Bad input the lab finds only on the database (a statement that writes, one that fails): exit 2, one line. */
export class QueryRefused extends Error {}

export interface QueryPoint extends Point {
  /** The wait for a connection, p50 and p99, ms. */
  waitP50: number;
  waitP99: number;
  /** The lab's own CPU over the window, in cores: near 1, its one thread was the limit, not the server. */
  labCores: number;
}

export interface QuerySizingResult {
  points: QueryPoint[];
  aloneMs: number;
  cores?: number;
  chosen?: { size: number; rule: string };
}

const READ_ONLY = '-c default_transaction_read_only=on';
const APPLICATION = 'async-node-postgres-sizing';

export async function runQuerySizing (
  config: Config,
  options: QuerySizingOptions,
  out: (line: string) => void = console.log
): Promise<QuerySizingResult> {
  return withLab(config, out, async ({ db, watcher }) => {
    const facts = await serverFacts(db.url);
    const available = availableTo(facts);
    await watcher.connect();
    // This machine's cores when the server runs here; else its own /proc/cpuinfo, if it lets us read it.
    const remoteCores = facts.postmasterPid ? undefined : await serverCores(watcher);
    const cores = facts.postmasterPid ? availableParallelism() : remoteCores;
    out(
      `Database: ${db.label}: ${facts.version}, max_connections ${facts.maxConnections} (${available} for ordinary ` +
        'roles), ' +
        (facts.postmasterPid
          ? `on this machine, ${cores} cores`
          : remoteCores
            ? `remote, ${remoteCores} cores (its /proc/cpuinfo)`
            : `${facts.notLocal}: its cores are unknown here`)
    );
    await probe(db.url, options);
    const load = options.rate
      ? `${options.rate} queries a second (an open loop)`
      : `${options.concurrency} concurrent clients (a closed loop)`;
    const perPoint = options.rate ? options.rate * (options.seconds + options.warmupSeconds) : undefined;
    out(
      `Warning: the query runs many times${
        perPoint
          ? ` (about ${Math.round(perPoint)} per pool ` +
            `size, ${Math.round(perPoint * options.sizes.length)} in all)`
          : ' (as fast as the pool allows, for every pool size)'
      }` +
        `${options.allowWrites ? ', each in a transaction that is rolled back' : ', in read-only transactions'}. ` +
        'Point it at a staging server, not production.'
    );
    out(
      `The query: ${oneLine(options.query)}${options.params.length ? `  params ${JSON.stringify(options.params)}` : ''}`
    );
    const aloneMs = await alone(db.url, options);
    out(
      `Alone, it takes ${aloneMs.toFixed(2)} ms (median of 9). ${load}; pool sizes ${options.sizes.join(', ')} (no ` +
        `overflow); ${options.seconds} s per size after ${options.warmupSeconds} s of warm-up.\n`
    );

    const points: QueryPoint[] = [];
    for (const size of options.sizes) {
      const predicted = options.rate
        ? Math.min(options.rate, (size * 1000) / aloneMs)
        : (Math.min(size, options.concurrency!) * 1000) / aloneMs;
      if (size + 2 > available) {
        points.push({
          size,
          rps: 0,
          p50: NaN,
          p99: NaN,
          waitP50: NaN,
          waitP99: NaN,
          labCores: 0,
          errors: 0,
          activeMean: 0,
          activeMax: 0,
          predicted,
          skipped: `${size} connections + 2 of the lab's own > ${available} that PostgreSQL allows`,
        });
        out(`pool ${size}: skipped, over the connection budget`);
        continue;
      }
      const point = await measure(db.url, size, options, watcher, facts.postmasterPid);
      point.predicted = predicted;
      points.push(point);
      out(
        `pool ${String(size).padStart(3)}: ${Math.round(point.rps)} queries/s, p50 ${point.p50.toFixed(1)} ms, ` +
          `p99 ${point.p99.toFixed(1)} ms, waiting for a connection p99 ${point.waitP99.toFixed(1)} ms, ` +
          `${point.activeMax} backends active at most${
            point.pgCores === undefined ? '' : ', ' + `PostgreSQL ${point.pgCores.toFixed(2)} cores busy`
          }, the ` +
          `lab ${point.labCores.toFixed(2)}${point.errors ? `, ${point.errors} errors` : ''}`
      );
    }
    const chosen = choose(points, options);
    out('');
    const lines = explain(points, chosen, {
      cores,
      local: facts.postmasterPid !== undefined,
      aloneMs,
      available,
      options,
    });
    for (const line of lines) out(line);
    writeCurvesReport(options.report, {
      title: 'How big should the pool be for this query?',
      intro:
        `${facts.version}, max_connections ${facts.maxConnections}${
          cores ? `, ${cores} cores (local)` : ', remote (cores unknown)'
        }; ${load}; ${options.seconds} s per size. The query: ${oneLine(options.query)}. ` +
        `Alone: ${aloneMs.toFixed(2)} ms.`,
      findings: lines,
      sections: [{ title: 'your query', points, unit: 'queries' }],
    });
    out(`\nReport written to ${options.report}`);
    return { points, aloneMs, cores, chosen };
  });
}

const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 200);

/**
 * Runs the query once in a read-only transaction: PostgreSQL itself refuses a statement that
 * writes (SQLSTATE 25006), whatever its text looks like. Writes are run only with --allow-writes.
 */
async function probe (url: string, options: QuerySizingOptions): Promise<void> {
  const client = new pg.Client({ connectionString: url, options: READ_ONLY, application_name: APPLICATION });
  await client.connect();
  try {
    await client.query(statement(options));
  } catch (err) {
    const e = err as { code?: string; message: string };
    if (e.code === '25006') {
      if (options.allowWrites) return;
      throw new QueryRefused(
        `Refusing --query: it writes (PostgreSQL: "${e.message}"), and the lab runs it thousands of times. Add ` +
          '--allow-writes to run each in a transaction that is rolled back.'
      );
    }
    throw new QueryRefused(
      `Invalid --query: PostgreSQL answered "${e.message}"${e.code ? ` (SQLSTATE ${e.code})` : ''}`
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The extended protocol, even without parameters: PostgreSQL then takes exactly one statement,
 * so that no second one can turn the transaction read-write.
 */
// (queryMode is pg's since 8.13; @types/pg does not list it yet.)
const statement = (options: QuerySizingOptions) =>
  ({ text: options.query, values: options.params, queryMode: 'extended' }) as pg.QueryConfig;

/** One execution, on a checked-out connection: as it is, or in a transaction rolled back (--allow-writes). */
async function execute (client: pg.ClientBase, options: QuerySizingOptions): Promise<void> {
  if (!options.allowWrites) {
    await client.query(statement(options));
    return;
  }
  await client.query('BEGIN');
  try {
    await client.query(statement(options));
  } finally {
    await client.query('ROLLBACK');
  }
}

const poolFor = (url: string, size: number, options: QuerySizingOptions, onWait?: (ms: number) => void) =>
  new Pool({
    connectionString: url,
    size,
    maxOverflow: 0,
    timeout: 120_000,
    queueMax: Infinity,
    application_name: APPLICATION,
    ...(options.allowWrites ? {} : { options: READ_ONLY }),
    ...(onWait ? { onCheckout: (c) => onWait(c.waitMs) } : {}),
  });

/** The R of Little's law: one query at a time on a warm connection (median of 9, after one to warm it). */
async function alone (url: string, options: QuerySizingOptions): Promise<number> {
  const pool = poolFor(url, 1, options);
  try {
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const client = await pool.connect();
      const t0 = performance.now();
      try {
        await execute(client, options);
      } finally {
        client.release();
      }
      if (i > 0) times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[4]!;
  } finally {
    await pool.end();
  }
}

async function measure (
  url: string,
  size: number,
  options: QuerySizingOptions,
  watcher: pg.Client,
  postmaster?: number
): Promise<QueryPoint> {
  const latencies: number[] = [];
  const waits: number[] = [];
  let errors = 0;
  let measuring = false;
  const pool = poolFor(url, size, options, (ms) => {
    if (measuring) waits.push(ms);
  });
  pool.on('error', () => {
    errors++;
  });
  await pool.warm?.();
  const t0 = performance.now();
  const from = t0 + options.warmupSeconds * 1000;
  const until = from + options.seconds * 1000;
  const once = async (start: number) => {
    try {
      const client = await pool.connect();
      try {
        await execute(client, options);
      } finally {
        client.release();
      }
      // What completes in the measured window counts, as in a steady state (src/client/steady.ts).
      const end = performance.now();
      if (end >= from && end <= until) latencies.push(end - start);
    } catch {
      const end = performance.now();
      if (end >= from && end <= until) errors++;
    }
  };
  const samples: number[] = [];
  let cpu0 = 0;
  let lab0 = process.cpuUsage();
  const warm = setTimeout(() => {
    measuring = true;
    cpu0 = postmaster ? treeCpuMs(postmaster) : 0;
    lab0 = process.cpuUsage();
  }, options.warmupSeconds * 1000);
  const sampler = setInterval(() => {
    if (measuring) {
      backendsNow(watcher).then(
        (b) => samples.push(b.active),
        () => {}
      );
    }
  }, 200);
  if (options.rate) {
    // Open loop: each query counts from when it was meant to start.
    await dispatch(schedule(options.rate, options.seconds + options.warmupSeconds), t0, (at) => once(t0 + at));
  } else {
    await Promise.all(
      Array.from({ length: options.concurrency! }, async () => {
        while (performance.now() < until) await once(performance.now());
      })
    );
  }
  const pgCpuMs = postmaster ? treeCpuMs(postmaster) - cpu0 : undefined;
  const lab = process.cpuUsage(lab0);
  measuring = false;
  clearTimeout(warm);
  clearInterval(sampler);
  await pool.end();
  const lat = percentiles(latencies);
  const wait = percentiles(waits);
  return {
    size,
    rps: latencies.length / options.seconds,
    p50: lat.p50,
    p99: lat.p99,
    waitP50: wait.p50,
    waitP99: wait.p99,
    errors,
    pgCores: pgCpuMs === undefined ? undefined : pgCpuMs / (options.seconds * 1000),
    activeMean: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0,
    activeMax: Math.max(0, ...samples),
    labCores: (lab.user + lab.system) / 1000 / (options.seconds * 1000),
    predicted: 0,
  };
}

/** The smallest pool that meets --p99, or, without a target, within 15 % of the best throughput. */
function choose (points: QueryPoint[], options: QuerySizingOptions): { size: number; rule: string } | undefined {
  const run = points.filter((p) => !p.skipped && p.errors === 0).sort((a, b) => a.size - b.size);
  if (options.p99 !== undefined) {
    const met = run.find((p) => p.p99 <= options.p99!);
    return (
      met && {
        size: met.size,
        rule: `the smallest pool whose p99 (${met.p99.toFixed(1)} ms) is within the target of ${options.p99} ms`,
      }
    );
  }
  const r = recommend('work', run);
  return (
    r && {
      size: r.size,
      rule:
        `the smallest pool within ${Math.round((1 - SHARE) * 100)} % of the best ` +
        `throughput (${Math.round(r.best.rps)} queries/s at ${r.best.size})`,
    }
  );
}

/** The recommendation, the knee explained, and the rule of thumb beside them. */
function explain (
  points: QueryPoint[],
  chosen: { size: number; rule: string } | undefined,
  ctx: { cores?: number; local: boolean; aloneMs: number; available: number; options: QuerySizingOptions }
): string[] {
  const { cores, options } = ctx;
  const lines: string[] = [];
  if (!chosen) {
    lines.push(
      options.p99 !== undefined
        ? `No pool size tried met a p99 of ${options.p99} ms without errors: the query alone ` +
            `takes ${ctx.aloneMs.toFixed(1)} ms; try larger sizes, or a lower load.`
        : 'No pool size ran without errors: see the lines above.'
    );
  } else {
    const p = points.find((x) => x.size === chosen.size)!;
    lines.push(
      `Recommendation: a pool of ${chosen.size}, by ${chosen.rule}: ${Math.round(p.rps)} queries/s, ` +
        `p99 ${p.p99.toFixed(1)} ms.`
    );
  }
  // The knee: where the active backends stop growing with the pool, or pass the cores.
  const run = points.filter((p) => !p.skipped);
  const best = run.reduce((a, p) => (p.rps > a.rps ? p : a), run[0]!);
  const busy = best?.pgCores;
  if (best && best.labCores > 0.85) {
    lines.push(
      `The knee is this lab's: at its best (${best.size} connections) its one thread was ` +
        `busy ${Math.round(best.labCores * 100)} % of the time${
          busy === undefined ? '' : ', ' + `PostgreSQL ${busy.toFixed(2)} cores`
        }, so the figures past it say how fast one Node.js process sends this ` +
        'query, not how much the server can serve; the pool it picks is still enough for that load.'
    );
  } else if (best && cores && busy !== undefined) {
    // On this machine the lab's CPU competes with PostgreSQL's for the same cores.
    const used = busy + (ctx.local ? best.labCores : 0);
    lines.push(
      used > 0.8 * cores
        ? `The knee is the CPU: at its best (${best.size} connections) ${used.toFixed(2)} of the ${cores} cores were ` +
            `busy (PostgreSQL ${busy.toFixed(2)}${
              ctx.local ? `, this lab ${best.labCores.toFixed(2)}, on the same ` + 'machine' : ''
            }); past that, more connections only wait for a core inside PostgreSQL, where the wait is ` +
            'neither visible nor bounded.'
        : `The knee: at its best (${best.size} connections) PostgreSQL used ${busy.toFixed(2)} of its ${cores} ` +
            'cores; the query mostly waits (I/O, locks, the network), so more connections serve more, up to the ' +
            'connection budget.'
    );
  }
  const perProcess = budgetPerProcess(ctx.available - 2, options.workers, options.hosts);
  if (cores) {
    const rule = ruleOfThumb(cores);
    const differs = chosen && chosen.size !== rule;
    lines.push(
      `Beside it, PostgreSQL's rule of thumb (2 x cores + effective spindles) = 2 x ${cores} + 0 = ${rule} ` +
        'connections in all: ' +
        (!chosen
          ? 'a comparison only.'
          : !differs
              ? 'the same.'
              : chosen.size < rule
                ? 'the measured pick is smaller: the load asked for no ' +
                `more (${options.rate ? `${options.rate}/s` : `${options.concurrency} clients`}), or the query's ` +
                'cost per call left the cores idle at fewer.'
                : 'the measured pick is larger: the query waits more than it computes, which the rule, written for ' +
                'queries that compute, does not see.')
    );
  } else {
    lines.push(
      "PostgreSQL's rule of thumb (2 x cores + effective spindles) needs the server's cores, which are unknown from " +
        'here.'
    );
  }
  lines.push(
    `The budget: ${ctx.available} connections for ordinary roles; ${options.hosts} host(s) x ${options.workers} ` +
      `worker(s) may have at most ${perProcess} each (size + overflow).`
  );
  return lines;
}
