// The original README's last two claims, measured (npm run demo -- --claims):
// 7. "Each unique connection will cause Postgresql to use a non-trivial amount of RAM":
//    idle connections opened straight to PostgreSQL, their backends' private memory read from /proc;
// 8. "If you used the NullPool, you'd create a new TCP connection every time ... the TCP
//    handshake, etc.": GET /todos/ under the same load with POOL=null and with the pool, and
//    where a new connection's time goes.
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { PoolKind } from 'pg-queuepool';
import { steady, type SteadyResult } from '../client/steady.ts';
import { withServerProcess, type Stoppable } from '../harness/server-process.ts';
import { memoryOf } from '../os/proc.ts';
import { serverFacts, sessionsSoFar, type ServerFacts } from '../postgres/observe.ts';
import { availableTo } from '../postgres/limits.ts';
import type { Verdict } from './verdicts.ts';

export interface ClaimsOptions {
  quick: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

const mb = (x: number) => `${x.toFixed(1)} MB`;

export async function runClaims (url: string, { quick, running, out }: ClaimsOptions): Promise<Verdict[]> {
  const facts = await serverFacts(url);
  return [await memoryPerConnection(url, facts, quick, out), await nullPool(url, quick, running, out)];
}

/** Least squares y = a + b x, and how well it fits (R², 1 = a straight line). */
export function linearFit (xs: number[], ys: number[]): { intercept: number; slope: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxx ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx, r2: sxx && syy ? (sxy * sxy) / (sxx * syy) : 1 };
}

/** 1, 10, 25, 50, then every 25 up to `limit`, and `limit` itself. */
export function connectionSteps (limit: number): number[] {
  const steps = [1, 10, 25, 50];
  for (let n = 75; n < limit; n += 25) steps.push(n);
  return [...steps.filter((n) => n < limit), limit];
}

// A sort that needs memory: 200,000 integers, sorted in memory when work_mem allows it.
const SORT = 'SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) AS g ORDER BY g DESC) AS s';
const WORK_MEM = '32MB';

async function memoryPerConnection (
  url: string,
  facts: ServerFacts,
  quick: boolean,
  out: (line: string) => void
): Promise<Verdict> {
  const title = '7. Memory per connection';
  out(`=== ${title} ===`);
  out(
    '    the original: "Each unique connection will cause Postgresql to use a non-trivial amount of RAM. Therefore, ' +
      'unless you have'
  );
  out('                  a ton of RAM, you should keep max_connections to some reasonable value."');
  // Ten of the connections ordinary roles may open are left free for anything else using the server.
  const limit = Math.max(10, Math.min(quick ? 50 : Infinity, availableTo(facts) - 10));
  out(
    `    here:         idle connections opened straight to ${facts.version} ` +
      `(max_connections ${facts.maxConnections}), ${connectionSteps(limit).join(', ')};`
  );
  out(
    "                  each backend's own memory (USS: its private pages, from /proc/PID/smaps_rollup; RSS would " +
      'count the'
  );
  out(
    `                  shared buffers again in every backend), idle, then after one sort each with work_mem ${WORK_MEM}`
  );
  const expected = 'grows linearly with the connections';
  if (!facts.postmasterPid) {
    out(`    skipped: ${facts.notLocal}`);
    return { claim: title, measured: '-', expected, verdict: `skipped: ${facts.notLocal}`, ok: undefined };
  }
  const clients: pg.Client[] = [];
  const uss = (list: pg.Client[]) => list.reduce((a, c) => a + memoryOf(pidOf(c)).uss, 0);
  try {
    const steps = connectionSteps(limit);
    const idle: number[] = [];
    out("    connections | backends' USS, idle | per connection");
    for (const n of steps) {
      while (clients.length < n) {
        const c = new pg.Client({ connectionString: url, application_name: 'demo-memory' });
        clients.push(c);
        await c.connect();
        await c.query('SELECT 1'); // a backend that has run a query, as a pooled one has
      }
      await delay(200);
      try {
        idle.push(uss(clients));
      } catch (err) {
        const why = `cannot read the backends' memory: ${(err as Error).message}`;
        out(`    skipped: ${why}`);
        return { claim: title, measured: '-', expected, verdict: `skipped: ${why}`, ok: undefined };
      }
      out(`    ${String(n).padStart(11)} | ${mb(idle.at(-1)!).padStart(20)} | ${mb(idle.at(-1)! / n)}`);
    }
    const fit = linearFit(steps, idle);

    // One sort, watched while it runs, for the peak of one backend; then one on every connection.
    const first = clients[0]!;
    await first.query(`SET work_mem = '${WORK_MEM}'`);
    let peak = 0;
    const watching = async () => {
      for (let done = false; !done;) {
        peak = Math.max(peak, memoryOf(pidOf(first)).uss);
        done = await Promise.race([sorting.then(() => true), delay(5).then(() => false)]);
      }
    };
    const sorting = first.query(SORT);
    await Promise.all([sorting, watching()]);
    for (const c of clients.slice(1)) {
      await c.query(`SET work_mem = '${WORK_MEM}'`);
      await c.query(SORT);
    }
    await delay(200);
    const after = uss(clients);
    const perIdle = fit.slope;
    const perAfter = after / clients.length;
    out(
      `    after one sort on each of the ${clients.length}: ${mb(after)}, ${mb(perAfter)} per connection (one ` +
        `backend peaked at ${mb(peak)} while sorting)`
    );
    out(
      `    line through the idle points: ${mb(fit.intercept)} + ${perIdle.toFixed(2)} MB x connections, ` +
        `R² ${fit.r2.toFixed(4)}`
    );
    out(
      `    at max_connections ${facts.maxConnections}: about ${Math.round(perIdle * facts.maxConnections)} MB ` +
        `idle, ${Math.round(perAfter * facts.maxConnections)} MB once each has sorted,`
    );
    out(
      `    and up to work_mem (${WORK_MEM} here) more per sort or hash while queries run: the memory max_connections ` +
        'reserves in effect.'
    );
    const problems: string[] = [];
    if (perIdle <= 0) problems.push('memory did not grow with the connections');
    if (fit.r2 < 0.95) problems.push(`not a straight line (R² ${fit.r2.toFixed(3)})`);
    return {
      claim: title,
      measured:
        `${perIdle.toFixed(2)} MB per idle connection (R² ${fit.r2.toFixed(3)}), ${perAfter.toFixed(2)} MB ` +
        `after a sort, ${Math.round(perIdle * facts.maxConnections)}-${Math.round(perAfter * facts.maxConnections)} ` +
        `MB at max_connections ${facts.maxConnections}`,
      expected,
      verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
      ok: problems.length === 0,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

interface Phases {
  tcp: number;
  /**
   * From the TCP connection to the server's first authentication message: the postmaster forks a backend, which reads
   * the startup packet.
   */
  start: number;
  /** The password exchange (SCRAM-SHA-256: thousands of hash iterations on each side). */
  auth: number;
  /** From authenticated to ready for a query: the backend initialises its session. */
  init: number;
  total: number;
}

/** Opens and closes `n` connections one after the other and times each phase of the handshake (medians, ms). */
async function connectPhases (url: string, n: number): Promise<Phases> {
  const samples: Phases[] = [];
  for (let i = 0; i < n; i++) {
    const client = new pg.Client({ connectionString: url });
    const con = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    const t: Record<string, number> = { begin: performance.now() };
    con.once('connect', () => {
      t.tcp = performance.now();
    });
    for (const first of [
      'authenticationSASL',
      'authenticationMD5Password',
      'authenticationCleartextPassword',
      'authenticationOk',
    ]) {
      con.once(first, () => {
        t.challenge ??= performance.now();
      });
    }
    con.once('authenticationOk', () => {
      t.authenticated = performance.now();
    });
    con.once('readyForQuery', () => {
      t.ready = performance.now();
    });
    await client.connect();
    await client.end();
    samples.push({
      tcp: t.tcp! - t.begin!,
      start: t.challenge! - t.tcp!,
      auth: t.authenticated! - t.challenge!,
      init: t.ready! - t.authenticated!,
      total: t.ready! - t.begin!,
    });
  }
  const median = (k: keyof Phases) => samples.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(n / 2)]!;
  return {
    tcp: median('tcp'),
    start: median('start'),
    auth: median('auth'),
    init: median('init'),
    total: median('total'),
  };
}

async function nullPool (
  url: string,
  quick: boolean,
  running: Set<Stoppable>,
  out: (line: string) => void
): Promise<Verdict> {
  const title = '8. NullPool: a new connection per request';
  const concurrency = 10;
  const seconds = quick ? 3 : 10;
  out(`=== ${title} ===`);
  out(
    '    the original: "If you used the NullPool, you\'d create a new TCP connection every time you use SQLAlchemy ' +
      'to talk to the'
  );
  out('                  database. Thus, you\'ll incur an overhead associated with the TCP handshake, etc."');
  out(
    '    here:         POOL=null npm start, then POOL=queue npm start (the default pool, 5 + 10), each ' +
      `under ${concurrency} clients`
  );
  out(
    `                  sending GET /todos/ one after the other for ${seconds} s; PostgreSQL counts the connections ` +
      'it accepted'
  );
  const watcher = new pg.Client({ connectionString: url });
  await watcher.connect();
  const measure = async (pool: PoolKind) =>
    withServerProcess(
      { DATABASE_URL: url, POOL: pool, LOG_LEVEL: 'error' },
      async (server) => {
        await steady({ url: `${server.url}/todos/`, concurrency, seconds: 1 }); // warm-up
        const before = await sessionsSoFar(watcher);
        const r = await steady({ url: `${server.url}/todos/`, concurrency, seconds });
        const after = await sessionsSoFar(watcher);
        // PostgreSQL counts a session when it ends: the connections still open at the end are not in
        // `after - before`, and those closed from the warm-up are; over seconds, these even out.
        return {
          ...r,
          connectionsPerSecond:
            before === undefined || after === undefined ? undefined : (after - before) / r.seconds,
        };
      },
      { running }
    );
  try {
    const none = await measure('null');
    const pooled = await measure('queue');
    const phases = await connectPhases(url, 30);
    const line = (name: string, r: SteadyResult & { connectionsPerSecond?: number }) =>
      `    ${name.padEnd(14)} | ${String(Math.round(r.rps)).padStart(5)} req/s | p50 ${r.p50.toFixed(1).padStart(6)} ` +
      `ms | p99 ${r.p99.toFixed(1).padStart(6)} ms | ` +
      `${r.connectionsPerSecond === undefined ? '?' : Math.round(r.connectionsPerSecond)} new connections/s ` +
      `| ${r.requests - r.ok} errors`;
    out(line('POOL=null', none));
    out(line('pool 5 + 10', pooled));
    out(
      `    one new connection, median of 30: ${phases.total.toFixed(2)} ms = TCP handshake ${phases.tcp.toFixed(2)} ` +
        `ms + backend start (fork, startup packet) ${phases.start.toFixed(2)} ms`
    );
    out(
      `                  + authentication ${phases.auth.toFixed(2)} ms + session set-up ${phases.init.toFixed(2)} ` +
        'ms; the query itself takes a fraction of a millisecond'
    );
    const ratio = pooled.rps / none.rps;
    const problems: string[] = [];
    if (ratio < 2) problems.push(`the pool served only ${ratio.toFixed(2)} x the requests of POOL=null`);
    if (none.requests !== none.ok || pooled.requests !== pooled.ok) problems.push('requests failed');
    const biggest = (['tcp', 'start', 'auth', 'init'] as const).reduce(
      (a, k) => (phases[k] > phases[a] ? k : a),
      'tcp'
    );
    const names = {
      tcp: 'the TCP handshake',
      start: 'starting the backend',
      auth: 'authentication',
      init: 'setting up the session',
    };
    return {
      claim: title,
      measured:
        `the pool ${ratio.toFixed(1)} x the throughput (${Math.round(pooled.rps)} vs ${Math.round(none.rps)} req/s), ` +
        `p50 ${pooled.p50.toFixed(1)} vs ${none.p50.toFixed(1)} ms; ` +
        `a connection costs ${phases.total.toFixed(1)} ms, most of ` +
        `it ${names[biggest]} (${phases[biggest].toFixed(1)} ms)`,
      expected: 'the pool faster by a large factor (>= 2 x)',
      verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
      ok: problems.length === 0,
    };
  } finally {
    await watcher.end();
  }
}
