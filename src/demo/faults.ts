// `npm run demo -- --faults`: when the network or the database misbehaves, under steady load, with
// verdicts. A PostgreSQL of its own (it is restarted), the service's pool reaching it through the
// fault proxy (src/faults/proxy.ts) where the network is what fails. Each scenario prints the
// timeline of the requests and of the pool's connections, as the service reports them.
import http from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from 'pg-queuepool';
import { burst, getOnce, type Burst, type Outcome } from '../client/load.ts';
import { dispatch, schedule } from '../client/open-loop.ts';
import { APPLICATION_NAME } from '../db/application.ts';
import { prepareDatabase } from '../db/tables.ts';
import { FaultProxy } from '../faults/proxy.ts';
import { leaksLogged, withServerProcess, type ServerProcess, type Stoppable } from '../harness/server-process.ts';
import { EmbeddedPostgres } from '../postgres/embedded.ts';
import { serverGuards } from '../postgres/guards.ts';
import type { Verdict } from './verdicts.ts';
import { checkWaves, within } from './verdicts.ts';

/** The steady load: what a small service sees all day. */
const TODOS_RATE = 20;
const SLEEP_RATE = 2;
const SLEEP_S = 0.5;
const SAMPLE_MS = 250;

interface Timing {
  /** Seconds of load before the fault, of the fault, and of load after it. */
  before: number;
  partition: number;
  after: number;
  /** The recovery bound after the heal, and the readiness bound after the partition's start. */
  recover: number;
  readyWithin: number;
  /** Seconds PostgreSQL stays down in the restart. */
  down: number;
  /** LEAK_DETECTION, and how long each of the leak scenario's requests keeps its connection. */
  leakDetection: number;
  leakHold: number;
  /** The deadlines the service runs with (the defaults, or shorter ones for --quick). */
  poolTimeout: number;
  queryTimeout: number;
  connectTimeout: number;
  /** Bucket of the printed timeline, in seconds. */
  bucket: number;
}

const FULL: Timing = {
  before: 5,
  partition: 20,
  after: 20,
  recover: 15,
  readyWithin: 10,
  down: 3,
  poolTimeout: 30,
  queryTimeout: 15,
  connectTimeout: 10,
  bucket: 2.5,
  leakDetection: 3,
  leakHold: 6,
};
const QUICK: Timing = {
  before: 2,
  partition: 8,
  after: 8,
  recover: 5,
  readyWithin: 5,
  down: 2,
  poolTimeout: 4,
  queryTimeout: 3,
  connectTimeout: 2,
  bucket: 1,
  leakDetection: 1,
  leakHold: 3,
};

export const FAULTS_TITLE = 'When the network or the database misbehaves';

export interface FaultsOptions {
  /** The demo's DATA_DIR: the scenario's PostgreSQL lives in DATA_DIR/faults. */
  dataDir: string;
  quick: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

interface Sent extends Outcome {
  route: string;
  /** When it was meant to leave, and when its answer had arrived: ms from the load's start. */
  intended: number;
  end: number;
}

interface PoolSample {
  t: number;
  inUse: number;
  total: number;
  idle: number;
  waiting: number;
  closed: number;
}

interface ReadySample {
  t: number;
  status: number;
  ms: number;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const failed = (r: Sent) => r.status !== 200;
const kind = (r: Sent) => r.code ?? (r.status ? `HTTP ${r.status}` : (r.error ?? 'no answer'));

export async function runFaults (options: FaultsOptions): Promise<Verdict[]> {
  const { out } = options;
  const timing = options.quick ? QUICK : FULL;
  const dataDir = join(options.dataDir, 'faults');
  const postgres = new EmbeddedPostgres({
    dataDir,
    maxConnections: 100,
    settings: serverGuards({ dbKeepalive: 10 }),
  });
  const target = { host: '127.0.0.1', port: 0 };
  out(`=== ${FAULTS_TITLE} ===`);
  out('    the original: nothing; its pool trusts the network and the server');
  out(
    `    here:         a PostgreSQL of its own (in ${join(dataDir, 'postgres')}), the service's pool reaching it ` +
      'through the fault proxy'
  );
  out(
    '                  (npm run cli -- faults), and steady load all along: ' +
      `${TODOS_RATE} GET /todos/ and ${SLEEP_RATE} GET /sleep/postgres/?seconds=${SLEEP_S} a second`
  );
  out(
    `    The budget: every answer within POOL_TIMEOUT ${timing.poolTimeout} s + QUERY_TIMEOUT ${timing.queryTimeout} ` +
      's (+ the sleep asked for);' +
      ` CONNECT_TIMEOUT ${timing.connectTimeout} s${
        options.quick ? ' (--quick: shorter than the defaults, 30, 15 and 10)' : ' (the defaults)'
      }.`
  );
  await postgres.start();
  const stopPostgres = { stop: () => postgres.stop() };
  options.running.add(stopPostgres);
  let proxy: FaultProxy | undefined;
  try {
    await prepareDatabase(postgres.url);
    target.port = Number(new URL(postgres.url).port);
    proxy = new FaultProxy({ target });
    await proxy.start();
    const env = {
      LOG_LEVEL: 'error',
      POOL_TIMEOUT: String(timing.poolTimeout),
      QUERY_TIMEOUT: String(timing.queryTimeout),
      CONNECT_TIMEOUT: String(timing.connectTimeout),
    };
    const ctx: Scenario = { postgres, proxy, env, timing, running: options.running, out };
    // The restart last: the proxy forwards to the port PostgreSQL had when it started.
    return [
      ...(await partition(ctx)),
      ...(await latency(ctx)),
      ...(await resetOnReturn(postgres.url, out)),
      ...(await leak(ctx)),
      ...(await terminate(ctx)),
      ...(await restart(ctx)),
    ];
  } finally {
    await proxy?.close();
    await postgres.stop();
    options.running.delete(stopPostgres);
  }
}

interface Scenario {
  postgres: EmbeddedPostgres;
  proxy: FaultProxy;
  env: Record<string, string>;
  timing: Timing;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

/** The steady load for `seconds`, from `t0`, and what the service says meanwhile (/pool, /readyz). */
async function underLoad (server: ServerProcess, seconds: number, t0: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
  const now = () => performance.now() - t0;
  const sent: Sent[] = [];
  const run = (route: string, rate: number) =>
    dispatch(schedule(rate, seconds), t0, async (intended) => {
      // A bound far past the budget: a request still unanswered then counts as unanswered.
      const outcome = await getOnce(`${server.url}${route}`, { agent, timeout: 120_000 });
      sent.push({ route, intended, end: now(), ...outcome });
    });
  const watching = new AbortController();
  const pool: PoolSample[] = [];
  const ready: ReadySample[] = [];
  const watchers = Promise.all([
    poll(watching.signal, async () => {
      const s = (await (await fetch(`${server.url}/pool`, { signal: AbortSignal.timeout(5000) })).json()) as {
        inUse: number;
        total: number;
        idle: number;
        waiting: number;
        closed: Record<string, number>;
      };
      const closed = Object.values(s.closed).reduce((a, b) => a + b, 0);
      pool.push({ t: now(), inUse: s.inUse, total: s.total, idle: s.idle, waiting: s.waiting, closed });
    }),
    poll(watching.signal, async () => {
      const asked = now();
      const res = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      ready.push({ t: asked, status: res.status, ms: now() - asked });
    }),
  ]);
  const load = Promise.all([run('/todos/', TODOS_RATE), run(`/sleep/postgres/?seconds=${SLEEP_S}`, SLEEP_RATE)]);
  return {
    /** Every request's answer, then the watchers stopped. */
    async done (): Promise<{ sent: Sent[]; pool: PoolSample[]; ready: ReadySample[] }> {
      await load;
      watching.abort();
      await watchers;
      agent.destroy();
      return { sent: sent.sort((a, b) => a.intended - b.intended), pool, ready };
    },
  };
}

async function poll (signal: AbortSignal, read: () => Promise<void>): Promise<void> {
  while (!signal.aborted) {
    await read().catch(() => {});
    await delay(SAMPLE_MS);
  }
}

/**
 * The timeline: per bucket, the requests sent in it and how they were answered, and the pool as the service reported
 * it.
 */
function timeline (
  sent: Sent[],
  pool: PoolSample[],
  ready: ReadySample[],
  bucket: number,
  marks: Record<string, number>
): string[] {
  const lines = [
    '        t  sent   200   503   504  other  latest answer | pool: in use  open  idle  waiting  closed | /readyz',
  ];
  const end = Math.max(...sent.map((r) => r.intended), 0);
  for (let from = 0; from <= end; from += bucket * 1000) {
    const to = from + bucket * 1000;
    const within = (t: number) => t >= from && t < to;
    const rs = sent.filter((r) => within(r.intended));
    const ps = pool.filter((p) => within(p.t));
    const ys = ready.filter((y) => within(y.t));
    const count = (f: (r: Sent) => boolean) => String(rs.filter(f).length).padStart(5);
    const slowest = rs.length ? sec(Math.max(...rs.map((r) => r.end - r.intended))) : '-';
    const max = (f: (p: PoolSample) => number) => (ps.length ? String(Math.max(...ps.map(f))) : '-');
    const mark = Object.entries(marks)
      .filter(([, t]) => within(t))
      .map(([what]) => `  <- ${what}`)
      .join('');
    const other = count((r) => !r.status || ![200, 503, 504].includes(r.status));
    const answers = [200, 503, 504].map((status) => count((r) => r.status === status)).join(' ');
    const poolCells = [
      max((p) => p.inUse).padStart(12),
      max((p) => p.total).padStart(5),
      max((p) => p.idle).padStart(5),
      max((p) => p.waiting).padStart(8),
      (ps.length ? String(ps.at(-1)!.closed) : '-').padStart(7),
    ].join(' ');
    const readiness = [...new Set(ys.map((y) => y.status))].join(', ') || '-';
    lines.push(
      `  ${sec(from).padStart(7)} ${String(rs.length).padStart(5)} ${answers} ${other.padStart(6)} ` +
        `${slowest.padStart(14)} | ${poolCells} | ${readiness}${mark}`
    );
  }
  lines.push(
    '    (each row: the requests sent in it, by how they were answered, and the slowest of them, from when it was ' +
      'meant to leave;'
  );
  lines.push(
    '     the pool: the most in use, open, idle and waiting the service reported (GET /pool), and the connections it ' +
      'closed so far as untrustworthy)'
  );
  return lines;
}

const codes = (rs: Sent[]) => {
  const counts = new Map<string, number>();
  for (const r of rs) {
    counts.set(r.status === 200 ? '200' : kind(r), (counts.get(r.status === 200 ? '200' : kind(r)) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
};

/** What the service holds once the load is over: its pool's places, and PostgreSQL's backends of it. */
async function held (
  server: ServerProcess,
  url: string
): Promise<{ inUse: number; waiting: number; total: number; backends: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let last = { inUse: -1, waiting: -1, total: -1, backends: -1 };
    for (let i = 0; i < 40; i++) {
      const s = (await (await fetch(`${server.url}/pool`)).json()) as {
        inUse: number;
        waiting: number;
        total: number;
      };
      const { rows } = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
        [APPLICATION_NAME]
      );
      last = { inUse: s.inUse, waiting: s.waiting, total: s.total, backends: rows[0]!.n };
      if (last.inUse === 0 && last.waiting === 0 && last.backends === last.total) break;
      await delay(250);
    }
    return last;
  } finally {
    await client.end();
  }
}

async function partition ({ proxy, postgres, env, timing: T, running, out }: Scenario): Promise<Verdict[]> {
  const budgetMs = (T.poolTimeout + T.queryTimeout + SLEEP_S) * 1000;
  out(
    `  A partition of ${T.partition} s: every byte dropped both ways, no FIN, no RST (the proxy's drop), then healed`
  );
  return withServerProcess(
    { ...env, DATABASE_URL: proxy.urlFor(postgres.url) },
    async (server) => {
      const t0 = performance.now();
      const seconds = T.before + T.partition + T.after;
      const load = await underLoad(server, seconds, t0);
      await delay(T.before * 1000 - (performance.now() - t0));
      proxy.drop();
      const droppedAt = performance.now() - t0;
      await delay(T.partition * 1000);
      proxy.heal();
      const healedAt = performance.now() - t0;
      const { sent, pool, ready } = await load.done();
      for (const line of timeline(sent, pool, ready, T.bucket, { partition: droppedAt, heal: healedAt })) out(line);
      const after = await held(server, postgres.url);
      const rows: Verdict[] = [];
      const row = (claim: string, measured: string, expected: string, ok: boolean) =>
        rows.push({ claim, measured, expected, verdict: ok ? 'ok' : 'DEPARTS', ok });

      const unanswered = sent.filter((r) => !r.status);
      const unnamed = sent.filter(
        (r) =>
          r.status &&
          r.status !== 200 &&
          !['POOL_TIMEOUT', 'DB_UNAVAILABLE', 'QUERY_TIMEOUT'].includes(r.code ?? '')
      );
      row(
        `a partition of ${T.partition} s under steady load: no request goes unanswered`,
        `${sent.length} sent: ${codes(sent)}`,
        'every one answered: 200, or a 503/504 whose code names the cause',
        unanswered.length === 0 && unnamed.length === 0
      );

      const slowest = sent.reduce((a, r) => Math.max(a, r.end - r.intended), 0);
      row(
        '... none takes longer than the budget',
        `the slowest answer ${sec(slowest)}`,
        `<= POOL_TIMEOUT + QUERY_TIMEOUT + the sleep = ${sec(budgetMs)} (+0.5 s for the machine)`,
        slowest <= budgetMs + 500
      );

      const firstNotReady = ready.find((y) => y.t >= droppedAt && y.status === 503);
      const slowestReady = ready.reduce((a, y) => Math.max(a, y.ms), 0);
      row(
        '... /readyz says 503 soon after it starts, and always answers within its 1 s budget',
        `the first 503 ${firstNotReady ? `${sec(firstNotReady.t - droppedAt)} after the partition began` : 'never'}; ` +
          `the slowest /readyz ${sec(slowestReady)}`,
        `503 within ${T.readyWithin} s; each answer within 1 s (+0.3 s for the machine)`,
        firstNotReady !== undefined && firstNotReady.t - droppedAt <= T.readyWithin * 1000 && slowestReady <= 1300
      );

      const late = sent.filter((r) => r.intended >= healedAt + T.recover * 1000);
      const lastFailure = sent.filter(failed).at(-1);
      row(
        `... within ${T.recover} s of the heal every request succeeds again`,
        'the last failure: a request ' +
          `sent ${
            !lastFailure
              ? 'never'
              : lastFailure.intended < healedAt
                ? `${sec(healedAt - lastFailure.intended)} ` + 'before the heal'
                : `${sec(lastFailure.intended - healedAt)} after it`
          }; of the ${late.length} sent ` +
          `from ${T.recover} s after the heal, ${late.filter(failed).length} failed`,
        `none fails from ${T.recover} s after the heal`,
        late.length > 0 && late.filter(failed).length === 0
      );

      row(
        '... and no connection is left held',
        `the pool: ${after.inUse} in use, ${after.waiting} waiting, ${after.total} open; ` +
          `PostgreSQL: ${after.backends} backends of the service`,
        "none in use or waiting; PostgreSQL holds only the pool's open connections",
        after.inUse === 0 && after.waiting === 0 && after.backends === after.total
      );
      return rows;
    },
    { running, timeoutMs: (T.before + T.partition + T.after) * 1000 + budgetMs + 60_000 }
  );
}

/**
 * The verdict of a fault at an instant (`from`) or over a span (`from`-`to`): failures only among what it could reach,
 * then at most one.
 */
function onlyWhileDown (sent: Sent[], from: number, to: number) {
  const failures = sent.filter(failed);
  // Reached by the fault: sent while it lasted, or sent before it and still unanswered when it began.
  const reached = (r: Sent) => (r.intended >= from && r.intended <= to) || (r.intended < from && r.end >= from);
  const outside = failures.filter((r) => !reached(r) && r.intended < from);
  const afterwards = failures.filter((r) => r.intended > to);
  return { failures, outside, afterwards, after: sent.filter((r) => r.intended > to) };
}

async function restart ({ postgres, env, timing: T, running, out }: Scenario): Promise<Verdict[]> {
  out(`  PostgreSQL restarted: a fast shutdown, ${T.down} s down, then started again (straight to it, no proxy)`);
  return withServerProcess(
    { ...env, DATABASE_URL: postgres.url },
    async (server) => {
      const t0 = performance.now();
      const load = await underLoad(server, T.before + T.down + T.after / 2, t0);
      await delay(T.before * 1000 - (performance.now() - t0));
      const stoppingAt = performance.now() - t0;
      await postgres.stop();
      await delay(T.down * 1000);
      await postgres.start();
      const upAt = performance.now() - t0;
      const { sent, pool, ready } = await load.done();
      for (const line of timeline(sent, pool, ready, T.bucket, { shutdown: stoppingAt, 'up again': upAt })) {
        out(line);
      }
      const { failures, outside, afterwards, after } = onlyWhileDown(sent, stoppingAt, upAt);
      const ok = outside.length === 0 && afterwards.length <= 1 && after.length > 0;
      return [
        {
          claim: 'PostgreSQL restarted: errors only while it is down; after, at most one failed request',
          measured:
            `${failures.length} failed (${codes(failures) || 'none'}), ${outside.length} of them before the ` +
            `shutdown; after the start ${afterwards.length} of ${after.length}`,
          expected: 'no failure before the shutdown; at most 1 after the start (one process)',
          verdict: ok ? 'ok' : 'DEPARTS',
          ok,
        },
      ];
    },
    { running }
  );
}

async function terminate ({ postgres, env, timing: T, running, out }: Scenario): Promise<Verdict[]> {
  out('  Every backend of the service terminated by an administrator (pg_terminate_backend)');
  return withServerProcess(
    { ...env, DATABASE_URL: postgres.url },
    async (server) => {
      const t0 = performance.now();
      const load = await underLoad(server, T.before + T.after / 2, t0);
      await delay(T.before * 1000 - (performance.now() - t0));
      const admin = new pg.Client({ connectionString: postgres.url });
      await admin.connect();
      const at = performance.now() - t0;
      const { rows } = await admin.query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND ' +
          'datname = current_database()',
        [APPLICATION_NAME]
      );
      await admin.end();
      const { sent, pool, ready } = await load.done();
      for (const line of timeline(sent, pool, ready, T.bucket, { [`${rows[0]!.n} terminated`]: at })) out(line);
      const { failures, outside, afterwards, after } = onlyWhileDown(sent, at, at);
      const ok = outside.length === 0 && afterwards.length <= 1 && after.length > 0 && rows[0]!.n > 0;
      return [
        {
          claim: 'every backend terminated (pg_terminate_backend): only what ran then fails; after, at most one',
          measured:
            `${rows[0]!.n} backends terminated; ${failures.length} failed (${codes(failures) || 'none'}), ` +
            `all in flight then: ${outside.length === 0 ? 'yes' : 'no'}; ` +
            `after, ${afterwards.length} of ${after.length}`,
          expected: 'failures only among the requests in flight; at most 1 after',
          verdict: ok ? 'ok' : 'DEPARTS',
          ok,
        },
      ];
    },
    { running }
  );
}

/**
 * Connections kept after their requests were answered, as a handler that forgot to release them
 * would (/leak/), under the steady load: the pool reports each past LEAK_DETECTION, naming the
 * route and the line that checked it out, and the load goes on meanwhile, on the connections left.
 */
async function leak ({ postgres, env, timing: T, running, out }: Scenario): Promise<Verdict[]> {
  const N = 3;
  out(
    `  Leaked connections: ${N} GET /leak/?seconds=${T.leakHold} (each answers, and keeps its ` +
      `connection ${T.leakHold} s),` +
      ` LEAK_DETECTION ${T.leakDetection} s`
  );
  // warn: the leak reports, and nothing of the steady load.
  const settings = {
    ...env,
    DATABASE_URL: postgres.url,
    LOG_LEVEL: 'warn',
    LEAK_DETECTION: String(T.leakDetection),
  };
  return withServerProcess(
    settings,
    async (server) => {
      const t0 = performance.now();
      const load = await underLoad(server, T.before + T.leakHold + 1, t0);
      await delay(T.before * 1000 - (performance.now() - t0));
      const at = performance.now() - t0;
      const leaked = await Promise.all(
        Array.from({ length: N }, () =>
          getOnce(`${server.url}/leak/?seconds=${T.leakHold}`, { agent: false, timeout: 10_000 })
        )
      );
      const { sent, pool, ready } = await load.done();
      const marks = { [`${N} leaked`]: at, 'given back': at + T.leakHold * 1000 };
      for (const line of timeline(sent, pool, ready, T.bucket, marks)) out(line);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const counted = Number(/^db_pool_leaks_total\{route="GET \/leak\/"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
      const reports = leaksLogged(server.output()).filter((l) => l.level === 40);
      const named = reports.filter(
        (l) => l.route === 'GET /leak/' && l.culprit?.includes('src/app/routes/leak.ts:')
      );
      const others = reports.filter((l) => l.route !== 'GET /leak/');
      const culprits = [
        ...new Set(reports.map((l) => `${l.culprit ?? '(no frame of ours)'}, serving ${l.route ?? 'nothing'}`)),
      ];
      out(
        `    reported: ${culprits.join('; ') || 'nothing'} (${reports.length} report${reports.length === 1 ? '' : 's'})`
      );
      const failures = sent.filter(failed);
      const answered = leaked.filter((r) => r.status === 200).length;
      const namedOk = answered === N && named.length === N && others.length === 0 && counted === N;
      const loadOk = failures.length === 0;
      return [
        {
          claim:
            'a connection kept after its request was answered is reported, naming its route and the line that took it',
          measured:
            `${named.length} of ${N} reported with GET /leak/ and src/app/routes/leak.ts:<line>; ` +
            `${others.length} other report${others.length === 1 ? '' : 's'}; db_pool_leaks_total ${counted}`,
          expected: `${N} of ${N}, no other; counted ${N}`,
          verdict: namedOk ? 'ok' : 'DEPARTS',
          ok: namedOk,
        },
        {
          claim:
            'meanwhile the steady load is served on the connections left, and the sleep routes are not taken for leaks',
          measured: `${failures.length} of ${sent.length} failed (${codes(failures) || 'none'})`,
          expected: '0 failed',
          verdict: loadOk ? 'ok' : 'DEPARTS',
          ok: loadOk,
        },
      ];
    },
    { running }
  );
}

/**
 * The reset on return, on the package itself with a pool of one connection, beside pg.Pool: the
 * next caller gets the same backend, and must find it clean.
 */
async function resetOnReturn (url: string, out: (line: string) => void): Promise<Verdict[]> {
  out(
    '  A connection given back in a bad state, with a pool of one connection: pg-queuepool beside pg.Pool (max 1)'
  );
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const table = `faults_reset_${process.pid}`;
  await admin.query(`CREATE TABLE IF NOT EXISTS ${table} (n int)`);
  const cases = {
    midTransaction: async (pool: pg.Pool | Pool) => {
      await admin.query(`TRUNCATE ${table}`);
      const c = await pool.connect();
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      c.release();
      // The next caller writes outside any transaction of its own, and expects it committed.
      const next = await pool.connect();
      const status = next.getTransactionStatus();
      await next.query(`INSERT INTO ${table} VALUES (2)`);
      next.release();
      const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE n = 2`);
      const committed = rows[0]!.n === 1;
      return {
        clean: status === 'I' && committed,
        seen: `the next caller in transaction status ${status}, its write ${
          committed ? 'committed' : 'never ' + "committed (it joined the first caller's transaction)"
        }`,
      };
    },
    failedBatch: async (pool: pg.Pool | Pool) => {
      const queries: Queries = pool;
      await queries.query('BEGIN; SELECT 1/0; COMMIT').catch(() => {});
      return nextQuery(pool);
    },
    failedInOwnTransaction: async (pool: pg.Pool | Pool) => {
      const c = await pool.connect();
      await c.query('BEGIN');
      await c.query('SELECT 1/0').catch(() => {});
      c.release();
      return nextQuery(pool);
    },
  };
  const rows: Verdict[] = [];
  try {
    const titles: Record<keyof typeof cases, string> = {
      midTransaction: 'a connection given back inside a transaction',
      failedBatch: 'a failed BEGIN; SELECT 1/0; COMMIT through pool.query()',
      failedInOwnTransaction: "a failed statement inside the caller's own BEGIN, given back without ROLLBACK",
    };
    for (const name of Object.keys(cases) as (keyof typeof cases)[]) {
      const ours = new Pool({ connectionString: url, size: 1, maxOverflow: 0, application_name: 'faults-demo' });
      const theirs = new pg.Pool({ connectionString: url, max: 1, application_name: 'faults-demo' });
      try {
        const a = await cases[name](ours);
        const b = await cases[name](theirs);
        out(`    ${titles[name]}: pg-queuepool: ${a.seen}; pg.Pool: ${b.seen}`);
        rows.push({
          claim: `${titles[name]} (pool of 1): the next caller gets a clean connection`,
          measured: `pg-queuepool: ${a.seen} (pg.Pool: ${b.seen})`,
          expected: 'pg-queuepool: a clean connection, in no transaction',
          verdict: a.clean ? 'ok' : 'DEPARTS',
          ok: a.clean,
        });
      } finally {
        await ours.end();
        await theirs.end();
      }
    }
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.end();
  }
  return rows;
}

/** What the two pools share: a query by its text (a union of their overloaded query() is not callable). */
interface Queries {
  query(text: string): Promise<unknown>;
}

async function nextQuery (pool: Queries): Promise<{ clean: boolean; seen: string }> {
  try {
    await pool.query('SELECT 1');
    return { clean: true, seen: 'the next query ok' };
  } catch (err) {
    return {
      clean: false,
      seen: `the next query failed: ${(err as { code?: string }).code} ${(err as Error).message}`,
    };
  }
}

async function latency ({ proxy, postgres, env, running, out }: Scenario): Promise<Verdict[]> {
  const N = 60;
  const WAVE = 15;
  const SLEEP = 0.2;
  const ONE_WAY_MS = 50;
  // Each request holds its connection for the sleep and two round trips (the sleep, then the list).
  const hold = SLEEP + (2 * 2 * ONE_WAY_MS) / 1000;
  const waves = Math.ceil(N / WAVE);
  out(
    `  Added latency: ${ONE_WAY_MS} ms each way (the proxy's delay), ${N} concurrent ${SLEEP} s database sleeps on ` +
      'the pool of 5 + 10'
  );
  out(
    `    each holds its connection ${SLEEP} s + 2 round trips = ${hold.toFixed(1)} s: ${waves} waves ` +
      `take ${(waves * hold).toFixed(1)} s, not ${(waves * SLEEP).toFixed(1)} s`
  );
  return withServerProcess(
    { ...env, DATABASE_URL: proxy.urlFor(postgres.url) },
    async (server) => {
      const url = `${server.url}/sleep/postgres/?seconds=${SLEEP}`;
      // The overflow connections open on a first burst (they idle out after 1 s): the arithmetic assumes a warm pool.
      const run = async (): Promise<Burst> => {
        await burst(`${server.url}/sleep/postgres/?seconds=0`, WAVE);
        return burst(url, N);
      };
      const direct = await run();
      proxy.delay(ONE_WAY_MS);
      const slowed = await run();
      proxy.heal();
      const [a, b] = [direct.totalMs / 1000, slowed.totalMs / 1000];
      const shape = checkWaves(slowed, hold, WAVE);
      out(`    without the delay: ${a.toFixed(2)} s; with it: ${b.toFixed(2)} s`);
      const ok = within(b, waves * hold) && within(a, waves * SLEEP) && shape === undefined;
      return [
        {
          claim: `${ONE_WAY_MS} ms added each way: the pool's waits grow as its arithmetic predicts`,
          measured: `${b.toFixed(2)} s for ${N} (${a.toFixed(2)} s without the delay)${
            shape ? `; ${shape}` : '; ' + `waves of ${WAVE}, ${hold.toFixed(1)} s apart`
          }`,
          expected:
            `ceil(${N}/${WAVE}) x (${SLEEP} s + 2 x ${(2 * ONE_WAY_MS) / 1000} s) ` +
            `= ${(waves * hold).toFixed(2)} s (${(waves * SLEEP).toFixed(2)} s without), within 10 % + 0.3 s`,
          verdict: ok ? 'ok' : 'DEPARTS',
          ok,
        },
      ];
    },
    { running }
  );
}
