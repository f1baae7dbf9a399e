// pg-queuepool against pg-pool, side by side in one run, alternating rounds, medians with their
// spread. The pool's own costs are measured over a stand-in Client that connects and answers at
// once (no database: what is measured is the pool, not PostgreSQL); the time from an abort to a
// freed connection is measured on a real PostgreSQL (BENCH_DATABASE_URL), where pg-pool's way is
// Kysely's: pg_cancel_backend() from another pooled connection.
// The CPU a checkout costs is measured also with leak detection on (a stack captured per checkout)
// and with the pg:pool:* tracing channels subscribed (what an APM tool's subscription costs).
//   node --expose-gc --import tsx packages/pg-queuepool/bench/vs-pg-pool.ts [--quick]
import { execFileSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool } from '../src/index.ts';

const PgPool = createRequire(import.meta.url)('pg-pool') as new (
  options: object,
  Client?: unknown,
) => {
  connect(): Promise<{ release(err?: unknown): void; query(text: string): Promise<unknown> }>;
  query(text: string): Promise<unknown>;
  end(): Promise<void>;
};

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 5;

/** Connects and ends at once, by callback (pg-pool) or promise (pg-queuepool). */
class InstantClient extends EventEmitter {
  _queryable = true;
  _ending = false;
  connection = { stream: { ref () {}, unref () {}, destroy () {} } };
  connect (cb?: (err?: Error) => void): Promise<void> | void {
    if (!cb) return Promise.resolve();
    queueMicrotask(() => cb());
  }

  end (cb?: () => void): Promise<void> | void {
    this._ending = true;
    if (!cb) return Promise.resolve();
    queueMicrotask(cb);
  }

  query (): Promise<{ rows: [] }> {
    return Promise.resolve({ rows: [] });
  }

  ref () {}
  unref () {}
}

type Kind = 'pg-pool' | 'pg-queuepool';
const make = (kind: Kind, options: { max: number; timeoutMs: number }) =>
  kind === 'pg-pool'
    ? new PgPool(
      { max: options.max, connectionTimeoutMillis: options.timeoutMs, idleTimeoutMillis: 0 },
      InstantClient
    )
    : new Pool(
      { size: options.max, maxOverflow: 0, timeout: options.timeoutMs, queueMax: Infinity },
      InstantClient as never
    );

/** Checkouts per second at pool 10 with `waiters` more callers than connections, each looping checkout -> release. */
async function throughput (kind: Kind, waiters = 1000, perCaller = quick ? 50 : 200): Promise<number> {
  const pool = make(kind, { max: 10, timeoutMs: 600_000 });
  // A fixed amount of work, timed: checkout and release are all microtasks here (the Client
  // answers at once), so a timer to end the run would only fire once everything is done.
  const loop = async () => {
    for (let i = 0; i < perCaller; i++) {
      const c = await pool.connect();
      c.release();
    }
  };
  await Promise.all(Array.from({ length: 10 }, loop)); // warm up: the 10 connections open
  const t0 = performance.now();
  await Promise.all(Array.from({ length: waiters + 10 }, loop));
  const rate = ((waiters + 10) * perCaller) / ((performance.now() - t0) / 1000);
  await pool.end();
  return rate;
}

/** What runs beside our pool in a CPU measure: nothing, leak detection, or a subscriber on each tracing channel. */
type Variant = 'plain' | 'leak' | 'traced';
const CHANNELS = ['pg:pool:connect', 'pg:pool:release', 'pg:pool:remove'];

/**
 * CPU microseconds per checkout and release, pool 10, 1,000 callers more than connections (the
 * throughput loop, timed by process.cpuUsage: everything here is microtasks on this thread).
 */
async function cpuPerCheckout (
  kind: Kind,
  variant: Variant = 'plain',
  waiters = 1000,
  perCaller = quick ? 50 : 200
): Promise<number> {
  const pool =
    kind === 'pg-pool' || variant !== 'leak'
      ? make(kind, { max: 10, timeoutMs: 600_000 })
      : new Pool(
        { size: 10, maxOverflow: 0, timeout: 600_000, queueMax: Infinity, leakDetectionMs: 60_000 },
        InstantClient as never
      );
  const seen = { events: 0 };
  const handlers = {
    start: () => {
      seen.events++;
    },
    end: () => {
      seen.events++;
    },
    asyncStart: () => {
      seen.events++;
    },
    asyncEnd: () => {
      seen.events++;
    },
    error: () => {
      seen.events++;
    },
  };
  if (variant === 'traced') for (const name of CHANNELS) dc.tracingChannel(name).subscribe(handlers);
  const loop = async () => {
    for (let i = 0; i < perCaller; i++) {
      const c = await pool.connect();
      c.release();
    }
  };
  try {
    await Promise.all(Array.from({ length: 10 }, loop));
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: waiters + 10 }, loop));
    const used = process.cpuUsage(before);
    if (variant === 'traced' && seen.events === 0) throw new Error('the tracing channels saw nothing');
    return (used.user + used.system) / ((waiters + 10) * perCaller);
  } finally {
    if (variant === 'traced') for (const name of CHANNELS) dc.tracingChannel(name).unsubscribe(handlers);
    await pool.end();
  }
}

/** Bytes of heap per caller waiting, with 10,000 waiting behind one held connection. */
async function memoryPerWaiter (kind: Kind, waiters = 10_000): Promise<number> {
  const g = globalThis as { gc?: () => void };
  if (!g.gc) throw new Error('run with node --expose-gc');
  const gc = () => g.gc!();
  const pool = make(kind, { max: 1, timeoutMs: 600_000 });
  const held = await pool.connect();
  gc();
  const before = process.memoryUsage().heapUsed;
  const pending = Array.from({ length: waiters }, () => pool.connect());
  gc();
  const after = process.memoryUsage().heapUsed;
  // Left as they are: this runs in a process of its own, which exits after printing the figure.
  for (const p of pending) p.catch(() => {});
  if (!held) throw new Error('no connection');
  return (after - before) / waiters;
}

/** How late a 100 ms timeout fires, for 1,000 waiters (median and max, ms). */
async function timeoutLateness (kind: Kind, waiters = 1000): Promise<{ median: number; max: number }> {
  const pool = make(kind, { max: 1, timeoutMs: 100 });
  const held = await pool.connect();
  const late: number[] = [];
  await Promise.all(
    Array.from({ length: waiters }, () => {
      const t0 = performance.now();
      return pool.connect().then(
        (c) => c.release(),
        () => {
          late.push(performance.now() - t0 - 100);
        }
      );
    })
  );
  held.release();
  await pool.end();
  late.sort((a, b) => a - b);
  return { median: late[Math.floor(late.length / 2)]!, max: late.at(-1)! };
}

/**
 * On PostgreSQL: a checked-out connection runs pg_sleep(30); abort; how long until the
 * connection serves the next caller. pg-queuepool: the lease's signal (a CancelRequest).
 * pg-pool: pg_cancel_backend(pid) from a second connection of the same pool (Kysely 0.29's way).
 */
async function abortToFree (kind: Kind, url: string): Promise<number> {
  if (kind === 'pg-queuepool') {
    const pool = new Pool({ connectionString: url, size: 1, maxOverflow: 1 });
    const ac = new AbortController();
    const lease = await pool.acquire({ signal: ac.signal });
    const q = lease.client.query('SELECT pg_sleep(30)').catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = performance.now();
    ac.abort();
    await q;
    lease.release();
    const next = await pool.acquire();
    const ms = performance.now() - t0;
    next.release();
    await pool.end();
    return ms;
  }
  const pool = new PgPool({ connectionString: url, max: 2 }, pg.Client);
  const client = (await pool.connect()) as unknown as pg.PoolClient;
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const q = client.query('SELECT pg_sleep(30)').catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 100));
  const t0 = performance.now();
  await pool.query(`SELECT pg_cancel_backend(${pid})`);
  await q;
  client.release();
  const next = await pool.connect();
  const ms = performance.now() - t0;
  next.release();
  await pool.end();
  return ms;
}

/** The memory measure runs in a process of its own, on a heap the other measures have not grown. */
function memoryInAFreshProcess (kind: Kind): number {
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--memory', kind],
    { encoding: 'utf8' }
  );
  return Number(out.trim());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[], digits = 0) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;

const memoryOnly = process.argv.indexOf('--memory');
if (memoryOnly > 0) {
  console.log(await memoryPerWaiter(process.argv[memoryOnly + 1] as Kind));
  process.exit(0);
}

const kinds: Kind[] = ['pg-pool', 'pg-queuepool'];
type Results = {
  rate: number[];
  cpu: number[];
  bytes: number[];
  lateMedian: number[];
  lateMax: number[];
  abort: number[];
};
const results: Record<Kind, Results> = {
  'pg-pool': { rate: [], cpu: [], bytes: [], lateMedian: [], lateMax: [], abort: [] },
  'pg-queuepool': { rate: [], cpu: [], bytes: [], lateMedian: [], lateMax: [], abort: [] },
};
/** Our pool's CPU per checkout with leak detection on, and with the channels subscribed. */
const extra: Record<Exclude<Variant, 'plain'>, number[]> = { leak: [], traced: [] };
const url = process.env.BENCH_DATABASE_URL;
// Both pools unref their timers: with only waiters left, the process would exit before a timeout fired.
const keepAlive = setInterval(() => {}, 1000);
for (let round = 0; round < ROUNDS; round++) {
  // Alternating, in a rotated order: neither always runs first on a warmer or a busier machine.
  for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
    const r = results[kind];
    r.rate.push(await throughput(kind));
    r.cpu.push(await cpuPerCheckout(kind));
    if (kind === 'pg-queuepool') {
      extra.leak.push(await cpuPerCheckout(kind, 'leak'));
      extra.traced.push(await cpuPerCheckout(kind, 'traced'));
    }
    r.bytes.push(memoryInAFreshProcess(kind));
    const late = await timeoutLateness(kind);
    r.lateMedian.push(late.median);
    r.lateMax.push(late.max);
    if (url) r.abort.push(await abortToFree(kind, url));
  }
}

clearInterval(keepAlive);
const pgPoolVersion = (
  JSON.parse(
    readFileSync(join(dirname(createRequire(import.meta.url).resolve('pg-pool')), 'package.json'), 'utf8')
  ) as { version: string }
).version;
console.log(
  `pg-queuepool against pg-pool ${pgPoolVersion}, Node ${process.version}, ${ROUNDS} alternating rounds: median ` +
    '(min-max)'
);
console.log('');
console.log('| measure | pg-pool | pg-queuepool | ratio (ours / pg-pool) |');
console.log('|---|---|---|---|');
const row = (name: string, a: number[], b: number[], digits = 0) =>
  console.log(`| ${name} | ${spread(a, digits)} | ${spread(b, digits)} | ${(median(b) / median(a)).toFixed(2)} |`);
row('checkouts per second, pool 10, 1,000 waiting', results['pg-pool'].rate, results['pg-queuepool'].rate);
row(
  'CPU per checkout and release (µs), pool 10, 1,000 waiting',
  results['pg-pool'].cpu,
  results['pg-queuepool'].cpu,
  2
);
row('... ours with leakDetectionMs on (a stack per checkout)', results['pg-pool'].cpu, extra.leak, 2);
row('... ours with the pg:pool:* channels subscribed', results['pg-pool'].cpu, extra.traced, 2);
row('heap bytes per waiter, 10,000 waiting', results['pg-pool'].bytes, results['pg-queuepool'].bytes);
row(
  'a 100 ms timeout fires late by (ms, median of 1,000)',
  results['pg-pool'].lateMedian,
  results['pg-queuepool'].lateMedian,
  1
);
row('... and at most (ms)', results['pg-pool'].lateMax, results['pg-queuepool'].lateMax, 1);
if (url) {
  row(
    'abort of a running query to a freed connection (ms)',
    results['pg-pool'].abort,
    results['pg-queuepool'].abort,
    1
  );
} else console.log('(abort to a freed connection: set BENCH_DATABASE_URL to measure it on PostgreSQL)');
const ours = median(results['pg-queuepool'].cpu);
console.log('');
console.log(
  `Leak detection adds ${(median(extra.leak) - ours).toFixed(2)} µs of CPU per checkout ` +
    `(${((median(extra.leak) / ours - 1) * 100).toFixed(0)} %); subscribers on the three channels add ` +
    `${(median(extra.traced) - ours).toFixed(2)} µs (${((median(extra.traced) / ours - 1) * 100).toFixed(0)} %).`
);
