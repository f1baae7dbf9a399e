// The benchmark suites. Each returns its raw figures and prints a table; none asserts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { WATCHER_THREAD_NAME } from 'event-loop-block-detector';
import { burst, type Burst } from '../src/client/load.ts';
import { errorKind, waves } from '../src/client/summary.ts';
import type { ServerProcess } from '../src/harness/server-process.ts';
import { findProgram } from '../src/os/processes.ts';
import { findPgBouncer, PgBouncer } from '../src/postgres/pgbouncer.ts';
import type { Mode } from '../src/config.ts';
import { burstSeconds, COMBINATIONS, wavesSeconds } from '../src/scenarios.ts';
import {
  bare,
  cpuMs,
  original,
  ORIGINAL_PACKAGES,
  originalMissing,
  ours,
  plainFastify,
  ratio,
  rssSampler,
  sec,
  table,
  threadsCpuMs,
  mainThreadCpuMs,
  namedThreadsCpuMs,
  postmasterPid,
  using,
  median,
  spreadOf,
  us,
  whole,
} from './lib.ts';
import { peakRss, treeCpuMs } from '../src/os/proc.ts';
import { GC, LAYERS, layerTimes, mainProfile, PROGRAM } from './layers.ts';
import { load, loadTool } from './load.ts';
import { memorySuite } from './memory.ts';
import { rateSuite } from './rate.ts';
import { sqlSuite } from './sql.ts';
import { cpuRatios, sideBySide } from './side-by-side.ts';
import { featuresSuite } from './features.ts';
import { guardsSuite } from './guards.ts';

export interface SuiteContext {
  url: string;
  /** A folder the suite may use (PgBouncer's config); traversable by the postgres OS user. */
  dataDir: string;
  quick: boolean;
  smoke: boolean;
  maxConnections: number;
  print(text: string): void;
}

type Suite = (ctx: SuiteContext) => Promise<unknown>;

const count = (b: Burst, pred: (r: Burst['results'][number]) => boolean) => b.results.filter(pred).length;
const errors = (b: Burst) => count(b, (r) => r.status !== 200);
const byKind = (b: Burst) => {
  const kinds: Record<string, number> = {};
  for (const r of b.results) {
    const k = r.status === 200 ? '200' : `${errorKind(r)}${r.body ? ` (${r.body.slice(0, 60)})` : ''}`;
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  return kinds;
};

function measured<T> (
  start: () => Promise<ServerProcess>,
  fn: (s: ServerProcess) => Promise<T>
): Promise<T & { peakRssMb: number }> {
  return using(start(), async (server) => {
    const rss = rssSampler(server.proc.pid!);
    const result = await fn(server);
    return { ...result, peakRssMb: Math.round(rss.stop()) };
  });
}

/** 1. Concurrency fidelity: N concurrent 2 s sleeps in the app, against the ideal 2 s + T0(N). */
const concurrency: Suite = async (ctx) => {
  const S = 2;
  const ns = ctx.quick ? [100, 1000] : [100, 1000, 10_000];
  const rows: {
    n: number;
    server: string;
    t0Ms: number;
    totalMs: number;
    errors: number;
    peakRssMb: number;
    fidelity: number;
  }[] = [];
  for (const n of ns) {
    // The queue bound is raised above N: the baseline has none, and shedding is suite 5's subject.
    const unbounded = { POOL_QUEUE_MAX: String(2 * n) };
    for (const [name, start] of [
      ['ours', () => ours(ctx.url, unbounded)],
      ['baseline (a)', () => bare(ctx.url)],
    ] as const) {
      const r = await measured(start, async (s) => {
        const t0 = await burst(`${s.url}/todos/`, n);
        const sleep = await burst(`${s.url}/sleep/node/?seconds=${S}`, n);
        return { t0Ms: t0.totalMs, totalMs: sleep.totalMs, errors: errors(t0) + errors(sleep) };
      });
      rows.push({ n, server: name, ...r, fidelity: r.totalMs / (S * 1000 + r.t0Ms) });
    }
  }
  ctx.print(
    table(
      `Suite 1: ${'/sleep/node/?seconds=2'}, N concurrent requests, each on its own connection`,
      [
        'N',
        'server',
        'T0(N) /todos/',
        'total',
        'total / (2 s + T0)',
        'peak RSS',
        'errors',
        'ours / baseline (total, RSS)',
      ],
      rows.map((r, i) => {
        const base = r.server === 'ours' ? rows[i + 1]! : undefined;
        return [
          r.n,
          r.server,
          sec(r.t0Ms),
          sec(r.totalMs),
          ratio(r.fidelity),
          `${r.peakRssMb} MB`,
          r.errors,
          base ? `${ratio(r.totalMs / base.totalMs)}, ${ratio(r.peakRssMb / base.peakRssMb)}` : '',
        ];
      })
    )
  );
  return rows;
};

/** 2. Pool fidelity: 100 database sleeps against pool 5 + 10 come back in waves of 15. */
const pool: Suite = async (ctx) => {
  const n = 100;
  const S = 1;
  const queue = await measured(
    () => ours(ctx.url),
    async (s) => {
      const b = await burst(`${s.url}/sleep/postgres/?seconds=${S}`, n);
      const w = waves(
        b.results.map((r) => r.end),
        300
      );
      return {
        totalMs: b.totalMs,
        errors: errors(b),
        waves: w.map((x) => ({ size: x.length, firstMs: x[0]!, lastMs: x.at(-1)! })),
      };
    }
  );
  const expectedMs = wavesSeconds(n, S, 15) * 1000;
  ctx.print(
    table(
      `Suite 2: ${n} x /sleep/postgres/?seconds=${S}, pool 5 + 10: ${queue.waves.length} waves, ` +
        `total ${sec(queue.totalMs)} vs ceil(${n}/15) x ${S} s ` +
        `= ${sec(expectedMs)} (${((queue.totalMs / expectedMs - 1) * 100).toFixed(1)} %)`,
      ['wave', 'responses', 'first at', 'last at'],
      queue.waves.map((w, i) => [i + 1, w.size, sec(w.firstMs), sec(w.lastMs)])
    )
  );

  const over = ctx.maxConnections + 50;
  const none = await measured(
    () => ours(ctx.url, { POOL: 'null' }),
    async (s) => {
      const b = await burst(`${s.url}/sleep/postgres/?seconds=${S}`, over);
      return { totalMs: b.totalMs, kinds: byKind(b) };
    }
  );
  ctx.print(
    table(
      `Suite 2b: POOL=null, ${over} x /sleep/postgres/?seconds=${S} against max_connections ${ctx.maxConnections}`,
      ['answer', 'count'],
      Object.entries(none.kinds).map(([k, v]) => [k, v])
    )
  );
  return { queue: { ...queue, expectedMs }, none: { ...none, n: over } };
};

interface Throughput {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUsPerRequest?: number;
}

async function cannon (
  url: string,
  seconds: number,
  warmup: number,
  pid?: number,
  otherPid?: number
): Promise<Throughput & { otherCpuUsPerRequest?: number }> {
  if (warmup > 0) await autocannon({ url, connections: 50, duration: warmup });
  const cpu0 = pid ? cpuMs(pid) : 0;
  const other0 = otherPid ? cpuMs(otherPid) : 0;
  const r = await autocannon({ url, connections: 50, duration: seconds });
  // The server's own CPU time per request: what the layers cost, whatever else shares the CPU.
  const per = (used: number) => (used * 1000) / Math.max(1, r.requests.total);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuUsPerRequest: pid ? per(cpuMs(pid) - cpu0) : undefined,
    otherCpuUsPerRequest: otherPid ? per(cpuMs(otherPid) - other0) : undefined,
  };
}

function pgbench (
  url: string,
  seconds: number,
  mode: 'prepared' | 'extended' = 'prepared'
): { tps: number } | { skipped: string } {
  if (!findProgram('pgbench', ['--version'])) {
    return { skipped: 'pgbench is not installed (Debian: postgresql-contrib)' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'pgbench-'));
  const script = join(dir, 'todos.sql');
  writeFileSync(script, 'SELECT id, title, done, priority FROM todo ORDER BY id;\n');
  const out = execFileSync(
    'pgbench',
    ['-n', '-c', '15', '-j', '2', '-M', mode, '-T', String(seconds), '-f', script, url],
    { encoding: 'utf8' }
  );
  return { tps: Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0) };
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  cpuUsPerRequest: number;
  pgUsPerRequest?: number;
  peakRssMb: number;
}

/** One measured run against a server already warm: the load, and what the server and PostgreSQL spent. */
async function measure (url: string, pid: number, seconds: number, pgPid?: number, connections = 50): Promise<Run> {
  const rss = peakRss(pid);
  const cpu0 = treeCpuMs(pid);
  const pg0 = pgPid ? treeCpuMs(pgPid) : 0;
  const r = await load(url, seconds, connections);
  const per = (ms: number) => (ms * 1000) / Math.max(1, r.requests);
  return {
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.errors,
    requests: r.requests,
    cpuUsPerRequest: per(treeCpuMs(pid) - cpu0),
    pgUsPerRequest: pgPid ? per(treeCpuMs(pgPid) - pg0) : undefined,
    peakRssMb: rss.stop(),
  };
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/**
 * 3. GET /todos/ side by side: this service with every feature on; two bare node:http + pg
 * servers, one that turns the rows into JSON itself and one that passes through the JSON
 * PostgreSQL builds (json_agg: the same technique as ours); plain Fastify + pg; and the original
 * (Flask + SQLAlchemy under gunicorn, gevent, psycogreen). All run at once against the same
 * PostgreSQL and are measured in turns, round after round, in an order rotated each round, so
 * that whatever else the machine does hits them alike; median, min and max of the rounds. Judged
 * on the server's CPU per request (from /proc), the steadier figure on this machine, before req/s.
 * The Node servers keep 15 connections open throughout (no backend starts or ends in a window),
 * so PostgreSQL's CPU per request (its process tree, from /proc) is the query's and nothing else.
 */
const throughput: Suite = async (ctx) => {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 3 : 10;
  const warmup = ctx.smoke ? 0.5 : ctx.quick ? 1 : 3;
  const rounds = ctx.smoke ? 1 : ctx.quick ? 3 : 5;
  const missing = originalMissing();
  const pinnedPool = { BASELINE_POOL: 'pinned' };
  const contenders: [string, () => Promise<ServerProcess>][] = [
    ['this service, 1 process, every feature on', () => ours(ctx.url, { POOL_SIZE: '15', POOL_MAX_OVERFLOW: '0' })],
    ['(a) bare node:http + pg, rows -> JSON.stringify', () => bare(ctx.url, pinnedPool)],
    [
      '(a2) bare node:http + pg, PostgreSQL builds the JSON (json_agg)',
      () => bare(ctx.url, { ...pinnedPool, BARE_BODY: 'json_agg' }),
    ],
    ['(c) plain Fastify + pg + response schema', () => plainFastify(ctx.url, pinnedPool)],
    ...(missing
      ? []
      : ([['(d) the original: Flask + SQLAlchemy, gunicorn -k gevent, psycogreen', () => original(ctx.url)]] as [
          string,
          () => Promise<ServerProcess>
        ][])),
  ];
  const servers = await Promise.all(contenders.map(([, start]) => start()));
  const pgPid = postmasterPid(ctx.url);
  const runs: Run[][] = contenders.map(() => []);
  try {
    for (const s of servers) await load(`${s.url}/todos/`, warmup);
    for (let round = 0; round < rounds; round++) {
      // Rotated: each server runs first, second, ... in turn, none always after the same one.
      for (let k = 0; k < servers.length; k++) {
        const i = (round + k) % servers.length;
        runs[i]!.push(await measure(`${servers[i]!.url}/todos/`, servers[i]!.proc.pid!, seconds, pgPid));
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const med = runs.map((rs) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    cpuUsPerRequest: median(rs.map((r) => r.cpuUsPerRequest)),
    pgUsPerRequest: pgPid ? median(rs.map((r) => r.pgUsPerRequest!)) : undefined,
    peakRssMb: Math.max(...rs.map((r) => r.peakRssMb)),
  }));
  ctx.print(
    table(
      `Suite 3: GET /todos/ (50 rows), ${loadTool}, 50 connections, ${rounds} round(s) of ${seconds} s in a rotated ` +
        `order after ${warmup} s warm-up; median (min-max) of the rounds; peak RSS of the process tree`,
      ['server', 'req/s', 'p99', 'errors', 'server CPU / req', 'PostgreSQL CPU / req', 'peak RSS'],
      runs.map((rs, i) => [
        contenders[i]![0],
        spreadOf(
          rs.map((r) => r.rps),
          whole
        ),
        spreadOf(
          rs.map((r) => r.p99),
          ms
        ),
        med[i]!.errors,
        spreadOf(
          rs.map((r) => r.cpuUsPerRequest),
          us
        ),
        pgPid
          ? spreadOf(
            rs.map((r) => r.pgUsPerRequest!),
            us
          )
          : '-',
        `${Math.round(med[i]!.peakRssMb)} MB`,
      ])
    )
  );
  // Ours against each baseline: the medians' ratio, and the rounds' ratios (round r of ours over round r of the
  // baseline).
  const against = [1, 2, 3, 4].filter((i) => i < contenders.length);
  const ratioCells = (pick: (r: Run) => number, i: number) => {
    const perRound = runs[0]!.map((r, k) => pick(r) / pick(runs[i]![k]!));
    const medians = median(runs[0]!.map(pick)) / median(runs[i]!.map(pick));
    return `${ratio(medians)} (${ratio(Math.min(...perRound))}-${ratio(Math.max(...perRound))})`;
  };
  ctx.print(
    table(
      "Suite 3: this service against each: the medians' ratio (the rounds' ratios, min-max)",
      ['against', 'server CPU / req (judged first)', 'req/s', 'p99', 'PostgreSQL CPU / req', 'peak RSS'],
      against.map((i) => [
        contenders[i]![0],
        ratioCells((r) => r.cpuUsPerRequest, i),
        ratioCells((r) => r.rps, i),
        ratioCells((r) => r.p99, i),
        pgPid ? ratioCells((r) => r.pgUsPerRequest!, i) : '-',
        ratio(med[0]!.peakRssMb / med[i]!.peakRssMb),
      ])
    )
  );
  if (missing) ctx.print(`(d) the original skipped: ${missing} (Debian: apt-get install ${ORIGINAL_PACKAGES})`);
  const pgb = pgbench(ctx.url, seconds);
  ctx.print(
    `(b) pgbench, the same SELECT straight to PostgreSQL, 15 clients: ${
      'tps' in pgb ? `${Math.round(pgb.tps)} ` + 'tps' : pgb.skipped
    }`
  );
  return {
    tool: loadTool,
    seconds,
    warmup,
    rounds,
    servers: contenders.map(([name], i) => ({ name, runs: runs[i], median: med[i] })),
    pgbench: pgb,
    original: missing ?? 'measured',
  };
};

/** 4. The original's three scenarios at a larger N than the demo. */
const blocking: Suite = async (ctx) => {
  const n = ctx.smoke ? 4 : ctx.quick ? 10 : 20;
  const S = ctx.smoke || ctx.quick ? 0.1 : 0.2;
  const scenarios = COMBINATIONS.slice(0, 3).map((c, i) => ({
    name: `${i + 1}. ${c.title.toLowerCase()}`,
    env: { APP_MODE: c.appMode, DB_MODE: c.dbMode },
  }));
  const rows = [];
  for (const sc of scenarios) {
    rows.push(
      await using(ours(ctx.url, { ...sc.env, POOL_SIZE: String(n), POOL_MAX_OVERFLOW: '0' }), async (s) => {
        const app = await burst(`${s.url}/sleep/node/?seconds=${S}`, n);
        const db = await burst(`${s.url}/sleep/postgres/?seconds=${S}`, n);
        const expect = (mode: Mode) => burstSeconds(n, S, mode) * 1000;
        return {
          scenario: sc.name,
          appMs: app.totalMs,
          appExpectedMs: expect(sc.env.APP_MODE),
          dbMs: db.totalMs,
          dbExpectedMs: expect(sc.env.DB_MODE),
          errors: errors(app) + errors(db),
        };
      })
    );
  }
  ctx.print(
    table(
      `Suite 4: the three scenarios, N = ${n}, S = ${S} s (expected: N x S when blocking, S when not)`,
      ['scenario', 'app sleep', 'expected', 'database sleep', 'expected', 'errors'],
      rows.map((r) => [r.scenario, sec(r.appMs), sec(r.appExpectedMs), sec(r.dbMs), sec(r.dbExpectedMs), r.errors])
    )
  );
  return rows;
};

/** 5. Memory under a flood of database requests, with the queue bounded and unbounded. */
const flood: Suite = async (ctx) => {
  const n = ctx.quick ? 1000 : 5000;
  const rows = [];
  const variants = [
    [`POOL_QUEUE_MAX ${n + 1000}`, String(n + 1000)],
    ['POOL_QUEUE_MAX 1000 (default)', '1000'],
  ] as const;
  for (const [label, queueMax] of ctx.quick ? variants.slice(1) : variants) {
    const r = await measured(
      () => ours(ctx.url, { POOL_QUEUE_MAX: queueMax, POOL_TIMEOUT: '5' }),
      async (s) => {
        const b = burst(`${s.url}/sleep/postgres/?seconds=2`, n);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const probe = await burst(`${s.url}/todos/`, 1);
        const done = await b;
        return {
          totalMs: done.totalMs,
          ok: count(done, (x) => x.status === 200),
          shed: count(done, (x) => x.status === 503),
          other: count(done, (x) => x.status !== 200 && x.status !== 503),
          probeMs: probe.totalMs,
          probeStatus: probe.results[0]!.status,
        };
      }
    );
    rows.push({ label, ...r });
  }
  ctx.print(
    table(
      `Suite 5: ${n} concurrent /sleep/postgres/?seconds=2, pool 5 + 10, POOL_TIMEOUT 5 s`,
      ['queue', 'peak RSS', '200', '503', 'other', '/todos/ probe during the flood', 'total'],
      rows.map((r) => [
        r.label,
        `${r.peakRssMb} MB`,
        r.ok,
        r.shed,
        r.other,
        `${r.probeStatus} in ${sec(r.probeMs)}`,
        sec(r.totalMs),
      ])
    )
  );
  return rows;
};

/** 6. The cost of the extra hop: direct versus through PgBouncer (transaction mode), same run. */
const pgbouncer: Suite = async (ctx) => {
  let bin: string;
  try {
    bin = findPgBouncer();
  } catch (err) {
    ctx.print(`\nSuite 6 skipped: ${(err as Error).message}`);
    return { skipped: (err as Error).message };
  }
  const seconds = ctx.quick ? 2 : 10;
  const warmup = ctx.quick ? 1 : 3;
  let runs = 0;
  const viaBouncer = (env: Record<string, string> = {}) => {
    const dir = join(ctx.dataDir, `pgbouncer-${++runs}`);
    mkdirSync(dir, { mode: 0o755 });
    return { PGBOUNCER: 'on', DATA_DIR: dir, ...env };
  };
  // /todos/ throughput, ours with 1 worker: each query crosses one more process.
  // Both servers run side by side and are measured in turns, so that drift on a shared
  // machine (CPU frequency, other load) hits both alike; the median round is reported.
  const rounds = ctx.quick ? 1 : 3;
  const direct: Throughput[] = [];
  const bounced: (Throughput & { otherCpuUsPerRequest?: number })[] = [];
  const bouncedEnv = viaBouncer();
  await using(ours(ctx.url), (a) =>
    using(ours(ctx.url, bouncedEnv), async (b) => {
      const pid = Number(readFileSync(join(bouncedEnv.DATA_DIR, 'pgbouncer', 'pgbouncer.pid'), 'utf8'));
      for (let i = 0; i < rounds; i++) {
        direct.push(await cannon(`${a.url}/todos/`, seconds, i === 0 ? warmup : 0, a.proc.pid));
        bounced.push(await cannon(`${b.url}/todos/`, seconds, i === 0 ? warmup : 0, b.proc.pid, pid));
      }
    })
  );
  const ratios = bounced.map((x, i) => x.rps / direct[i]!.rps);
  const median = [...ratios].sort((x, y) => x - y)[Math.floor(ratios.length / 2)]!;
  const mid = ratios.indexOf(median);

  // PgBouncer alone, without our service: pgbench's SELECT straight and through the same hop.
  const bouncer = new PgBouncer({
    serverUrl: ctx.url,
    bin,
    dataDir: viaBouncer().DATA_DIR,
    poolSize: 20,
    maxClients: 2000,
  });
  await bouncer.start();
  let hop;
  try {
    hop = { direct: pgbench(ctx.url, seconds, 'extended'), bounced: pgbench(bouncer.url, seconds, 'extended') };
  } finally {
    await bouncer.stop();
  }

  // /sleep/postgres/ fidelity: the same waves with and without the hop.
  const n = 100;
  const S = 1;
  const sleeps = (label: string, env: Record<string, string>, wave: number) =>
    using(ours(ctx.url, env), async (s) => {
      const b = await burst(`${s.url}/sleep/postgres/?seconds=${S}`, n);
      const w = waves(
        b.results.map((r) => r.end),
        300
      );
      const expectedMs = wavesSeconds(n, S, wave) * 1000;
      return { label, totalMs: b.totalMs, expectedMs, waves: w.map((x) => x.length), errors: errors(b) };
    });
  const fidelity = [
    await sleeps('direct, pool 5 + 10', {}, 15),
    await sleeps('PgBouncer 20, pool 5 + 10', viaBouncer(), 15),
    await sleeps('PgBouncer 10, pool 5 + 10', viaBouncer({ PGBOUNCER_POOL_SIZE: '10' }), 10),
  ];

  const us = (x?: number) => (x === undefined ? '-' : `${Math.round(x)} µs`);
  const tps = (r: { tps: number } | { skipped: string }) => ('tps' in r ? Math.round(r.tps) : r.skipped);
  ctx.print(
    table(
      `Suite 6a: GET /todos/, ours with 1 worker, autocannon 50 connections, ${rounds} round(s) of ${seconds} s ` +
        `each, in turns, after ${warmup} s warm-up`,
      [
        'round',
        'path to PostgreSQL',
        'req/s',
        'p50',
        'p99',
        'errors',
        'our CPU / request',
        'PgBouncer CPU / request',
        'vs direct',
      ],
      direct.flatMap((d, i) => [
        [
          i + 1,
          'direct',
          Math.round(d.rps),
          `${d.p50} ms`,
          `${d.p99} ms`,
          d.errors,
          us(d.cpuUsPerRequest),
          '-',
          ratio(1),
        ],
        [
          i + 1,
          'through PgBouncer',
          Math.round(bounced[i]!.rps),
          `${bounced[i]!.p50} ms`,
          `${bounced[i]!.p99} ms`,
          bounced[i]!.errors,
          us(bounced[i]!.cpuUsPerRequest),
          us(bounced[i]!.otherCpuUsPerRequest),
          ratio(ratios[i]!),
        ],
      ])
    )
  );
  ctx.print(`through PgBouncer / direct, median of ${rounds}: ${ratio(median)} (round ${mid + 1})`);
  ctx.print(
    table(
      `Suite 6b: the hop alone, pgbench -M extended, 15 clients, ${seconds} s, SELECT of the 50 todos`,
      ['path', 'tps', 'vs direct'],
      [
        ['direct', tps(hop.direct), ratio(1)],
        [
          'through PgBouncer',
          tps(hop.bounced),
          'tps' in hop.direct && 'tps' in hop.bounced ? ratio(hop.bounced.tps / hop.direct.tps) : '-',
        ],
      ]
    )
  );
  ctx.print(
    table(
      `Suite 6c: ${n} x /sleep/postgres/?seconds=${S}: waves and totals with and without the hop`,
      ['path', 'waves', 'total', 'expected', 'deviation', 'errors'],
      fidelity.map((f) => [
        f.label,
        f.waves.join(','),
        sec(f.totalMs),
        sec(f.expectedMs),
        `${((f.totalMs / f.expectedMs - 1) * 100).toFixed(1)} %`,
        f.errors,
      ])
    )
  );
  return { seconds, warmup, todos: { direct, bounced, ratios, median }, hop, fidelity };
};

/**
 * Suite 7: the pool package against pg-pool, side by side (packages/pg-queuepool/bench): checkouts
 * per second, CPU per checkout (also with leak detection on, and with the tracing channels
 * subscribed), memory per waiter, how late a timeout fires, abort to a freed connection.
 */
async function queuepool (ctx: SuiteContext): Promise<unknown> {
  const script = join(import.meta.dirname, '..', 'packages', 'pg-queuepool', 'bench', 'vs-pg-pool.ts');
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', script, ...(ctx.quick ? ['--quick'] : [])],
    { encoding: 'utf8', env: { ...process.env, BENCH_DATABASE_URL: ctx.url } }
  );
  ctx.print(out.trim());
  return { table: out.trim() };
}

/**
 * 8. The block detector's cost while nothing blocks: GET /todos/ against two services, one with
 * BLOCK_DETECTOR on (event-loop-block-detector: its watcher thread and its check, the main loop's
 * heartbeat, the route marked around each handler; no inspector session until a stall) and one
 * with it off. With it on, the request path is the same code; what
 * the detector adds is its timers, a fixed cost per second.
 *
 * Judged directly, side by side (bench/side-by-side.ts): both services take the same load at the
 * same time, so each round gives one ratio of their CPU per request (every thread's, from
 * schedstat); taken in turns, the rounds moved by far more than the 2 % judged. Beside it: the
 * watcher thread's own CPU under that load (it names itself block-detector), and both services idle.
 */
const detector: Suite = async (ctx) => {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 3 : 6;
  const warmup = ctx.smoke ? 0.5 : ctx.quick ? 1 : 3;
  const rounds = ctx.smoke ? 2 : ctx.quick ? 5 : 11;
  const idleSeconds = ctx.smoke ? 1 : ctx.quick ? 5 : 30;
  const connections = 25;
  const names = ['BLOCK_DETECTOR=on', 'BLOCK_DETECTOR=off'];
  const servers = await Promise.all([
    ours(ctx.url, { BLOCK_DETECTOR: 'on' }),
    ours(ctx.url, { BLOCK_DETECTOR: 'off' }),
  ]);
  const monitorMsPerSecond: number[] = [];
  let idleMsPerSecond: number[] = [];
  let measured: Awaited<ReturnType<typeof sideBySide>>;
  try {
    measured = await sideBySide(ctx.url, servers, '/todos/', {
      seconds,
      warmup,
      rounds,
      connections,
      settled: async (pids) => {
        const idle0 = pids.map(threadsCpuMs);
        await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
        idleMsPerSecond = pids.map((pid, i) => (threadsCpuMs(pid) - idle0[i]!) / idleSeconds);
      },
      round: (pids) => {
        const monitor0 = namedThreadsCpuMs(pids[0]!, WATCHER_THREAD_NAME);
        return () =>
          monitorMsPerSecond.push((namedThreadsCpuMs(pids[0]!, WATCHER_THREAD_NAME) - monitor0) / seconds);
      },
    });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const { runs, pinned } = measured;
  const ratios = cpuRatios(runs, 0, 1);
  const med = runs.map((rs) => ({
    cpu: median(rs.map((r) => r.cpuUsPerRequest)),
    msPerSecond: median(rs.map((r) => r.msPerSecond)),
    rps: median(rs.map((r) => r.rps)),
    p99: median(rs.map((r) => r.p99)),
    rss: Math.max(...rs.map((r) => r.peakRssMb)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
  }));
  const cpuRatio = median(ratios);
  const monitorShare = median(monitorMsPerSecond) / med[0]!.msPerSecond;
  const standingMs = idleMsPerSecond[0]! - idleMsPerSecond[1]!;
  ctx.print(
    table(
      `Suite 8: the block detector's cost, GET /todos/, ${loadTool} -c${connections} against each service at ` +
        `once, ${rounds} rounds of ${seconds} s after ${warmup} s warm-up; median (min-max) of the rounds; CPU of ` +
        'every thread of each process',
      ['service', `idle CPU (${idleSeconds} s)`, 'CPU loaded', 'CPU / req', 'req/s', 'p99', 'peak RSS', 'errors'],
      runs.map((rs, i) => [
        names[i]!,
        `${idleMsPerSecond[i]!.toFixed(2)} ms/s`,
        spreadOf(
          rs.map((r) => r.msPerSecond),
          (x) => `${Math.round(x)} ms/s`
        ),
        spreadOf(
          rs.map((r) => r.cpuUsPerRequest),
          us
        ),
        spreadOf(
          rs.map((r) => r.rps),
          whole
        ),
        `${med[i]!.p99.toFixed(1)} ms`,
        `${Math.round(med[i]!.rss)} MB`,
        med[i]!.errors,
      ])
    )
  );
  ctx.print(
    `Judged: CPU per request, on / off, ${ratio(cpuRatio)} (median of the rounds' ratios; ` +
      `min-max ${ratio(Math.min(...ratios))}-${ratio(Math.max(...ratios))}); the goal is at most 1.02`
  );
  ctx.print(
    "The watcher thread (the detector's check) under that " +
      `load: ${spreadOf(monitorMsPerSecond, (x) => `${x.toFixed(2)} ms/s`)}, ${(monitorShare * 100).toFixed(2)} % of ` +
      `the service's CPU; idle, on minus off: ${standingMs.toFixed(2)} ms/s (heartbeat and check, an idle thread's ` +
      'wakeups)'
  );
  ctx.print(
    pinned
      ? 'The two services ran on core 1; PostgreSQL, the load and the bench on core 0.'
      : 'Not pinned (taskset missing, or one core): the figures share the cores with the load.'
  );
  return {
    tool: loadTool,
    connections,
    seconds,
    warmup,
    rounds,
    pinned,
    idleSeconds,
    idleMsPerSecond,
    standingMs,
    monitorMsPerSecond,
    monitorShare,
    runs: names.map((name, i) => ({ name, runs: runs[i], median: med[i] })),
    cpuRatio,
    ratios,
  };
};

/**
 * 9. Where each server's CPU per request goes, layer by layer (bench/layers.ts): GET /todos/
 * against this service (every feature on), the bare json_agg server (the same technique) and
 * plain Fastify, one at a time, each with its main thread profiled (node --cpu-prof, a sample
 * every 100 µs) over the measured window. The profile gives the shares; the main thread's CPU
 * per request from schedstat gives the total they are shares of. The profiler itself costs some
 * CPU, alike for all three: compare layers, not these totals with suite 3's.
 */
const layers: Suite = async (ctx) => {
  const seconds = ctx.smoke ? 1 : ctx.quick ? 4 : 10;
  const warmup = ctx.smoke ? 0.5 : 2;
  const dir = mkdtempSync(join(tmpdir(), 'anp-bench-profiles-'));
  // Node 20 takes --cpu-prof on the command line only, not in NODE_OPTIONS.
  const profiled = ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500'];
  const pinnedPool = { BASELINE_POOL: 'pinned' };
  const contenders: [string, () => Promise<ServerProcess>][] = [
    ['this service', () => ours(ctx.url, { POOL_SIZE: '15', POOL_MAX_OVERFLOW: '0' }, profiled)],
    ['(a2) bare, json_agg', () => bare(ctx.url, { ...pinnedPool, BARE_BODY: 'json_agg' }, profiled)],
    ['(c) plain Fastify', () => plainFastify(ctx.url, pinnedPool, profiled)],
  ];
  const measured: {
    name: string;
    requests: number;
    rps: number;
    mainUsPerRequest: number;
    layers: Record<string, number>;
  }[] = [];
  try {
    for (const [name, start] of contenders) {
      const server = await start();
      const pid = server.proc.pid!;
      let window: { from: number; to: number; requests: number; rps: number; cpuMs: number };
      try {
        await load(`${server.url}/todos/`, warmup);
        const cpu0 = mainThreadCpuMs(pid);
        const from = Number(process.hrtime.bigint() / 1000n);
        const r = await load(`${server.url}/todos/`, seconds);
        const to = Number(process.hrtime.bigint() / 1000n);
        window = { from, to, requests: r.requests, rps: r.rps, cpuMs: mainThreadCpuMs(pid) - cpu0 };
      } finally {
        await server.stop(); // the profile is written as the process exits
      }
      const times = layerTimes(mainProfile(dir, pid), window.from, window.to);
      const sampled = [...times.values()].reduce((a, b) => a + b, 0);
      const mainUsPerRequest = (window.cpuMs * 1000) / Math.max(1, window.requests);
      // Shares from the profile, scaled to what the thread spent per request.
      measured.push({
        name,
        requests: window.requests,
        rps: window.rps,
        mainUsPerRequest,
        layers: Object.fromEntries(
          [...times].map(([layer, t]) => [layer, (t / Math.max(1, sampled)) * mainUsPerRequest])
        ),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const names = [...LAYERS.map(([layer]) => layer), 'other', GC, PROGRAM].filter((layer) =>
    measured.some((m) => (m.layers[layer] ?? 0) >= 0.05)
  );
  const cell = (x: number | undefined) => (x === undefined || x < 0.05 ? '-' : x.toFixed(1));
  ctx.print(
    table(
      `Suite 9: where the main thread's CPU per request goes, GET /todos/, ${loadTool} -c50, ${seconds} s each ` +
        `after ${warmup} s warm-up, profiled (node --cpu-prof, a sample every 500 µs); µs per request`,
      [
        'layer',
        ...measured.map((m) => m.name),
        ...(measured.length > 1 ? [`${measured[0]!.name} - ${measured[1]!.name}`] : []),
      ],
      [
        ...names.map((layer) => [
          layer,
          ...measured.map((m) => cell(m.layers[layer])),
          ...(measured.length > 1
            ? [((measured[0]!.layers[layer] ?? 0) - (measured[1]!.layers[layer] ?? 0)).toFixed(1)]
            : []),
        ]),
        [
          'main thread, all (schedstat)',
          ...measured.map((m) => m.mainUsPerRequest.toFixed(1)),
          ...(measured.length > 1
            ? [(measured[0]!.mainUsPerRequest - measured[1]!.mainUsPerRequest).toFixed(1)]
            : []),
        ],
        [
          'req/s (profiled)',
          ...measured.map((m) => String(Math.round(m.rps))),
          ...(measured.length > 1 ? [''] : []),
        ],
      ]
    )
  );
  return { tool: loadTool, seconds, warmup, intervalUs: 500, servers: measured };
};

export const SUITES: Record<string, Suite> = {
  concurrency,
  pool,
  throughput,
  blocking,
  flood,
  pgbouncer,
  queuepool,
  detector,
  layers,
  sql: sqlSuite,
  memory: memorySuite,
  rate: rateSuite,
  features: featuresSuite,
  guards: guardsSuite,
};
