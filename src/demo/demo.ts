// The `demo` command: the original README's three scenarios and its warning, run for
// real on PostgreSQL, with expected totals computed from the settings and checked.
import type { Config } from '../config.ts';
import { runClient } from '../client/client.ts';
import { ProgressLine } from '../client/progress.ts';
import type { Burst } from '../client/load.ts';
import { writeReport, type ReportSection } from '../client/report.ts';
import { prepareDatabase } from '../db/tables.ts';
import { stopAllOnInterrupt, withServerProcess, type Stoppable } from '../harness/server-process.ts';
import { findPatroni } from '../postgres/patroni.ts';
import { findPgBouncer } from '../postgres/pgbouncer.ts';
import { openDatabase, type DatabaseSource } from '../postgres/source.ts';
import {
  burstSeconds,
  COMBINATIONS,
  modeOfRoute,
  ORIGINAL,
  waveAt,
  waveCount,
  wavesSeconds,
} from '../scenarios.ts';
import { runArrivalsScenario } from './arrivals.ts';
import { runBlockScenario } from './blocks.ts';
import { runThreadPoolScenario } from './threadpool.ts';
import { runFailover } from './failover.ts';
import { runFaults } from './faults.ts';
import { runClaims } from './claims.ts';
import { findHaproxy } from './haproxy.ts';
import { runHosts } from './hosts.ts';
import { runReplicas } from './replicas.ts';
import { runScaleScenario } from './scale.ts';
import {
  checkTimeouts,
  checkWaves,
  printVerdicts,
  row,
  s,
  SCENARIO_COLUMNS,
  SCENARIO_TOLERANCE,
  within,
  type Verdict,
} from './verdicts.ts';

export interface DemoOptions {
  seconds: number;
  n: number;
  report?: string;
  /** Add scenario 6: past max_connections with PgBouncer. */
  scale?: boolean;
  /** Add what blocks in Node.js: each /block/ route beside its /offload/ twin, and what the detector named. */
  blocking?: boolean;
  /** Add past the ceiling at a steady rate: an open loop under and over the pool's capacity. */
  steadyRate?: boolean;
  /** Add scenarios 7 and 8: the original's claims on memory per connection and on the NullPool. */
  claims?: boolean;
  /**
   * Add when the network or the database misbehaves: a partition, a restart, terminated backends, a bad return,
   * latency.
   */
  faults?: boolean;
  /** Shorter runs for scenarios 7 and 8 (with --quick). */
  quick?: boolean;
  /** Instead: N hosts behind HAProxy over one PostgreSQL (src/demo/hosts.ts). */
  hosts?: number;
  /** Instead: the embedded primary and N streaming standbys (src/demo/replicas.ts). */
  replicas?: number;
  /** Instead: a Patroni cluster whose leader is killed under load (src/demo/failover.ts). */
  failover?: boolean;
}

interface Scenario {
  title: string;
  original: string;
  env: Record<string, string>;
  n: number;
  seconds: number;
  routes: string[];
  note?: string;
  /** Expected total per route, in seconds. */
  expected: number[];
  /** What the table shows as expected, when not simply the sum. */
  expectedLabel?: string;
  /** Extra expectations on the responses themselves. */
  check?: (bursts: Burst[]) => string | undefined;
}

/** The original's pool: SQLAlchemy's default QueuePool, 5 + 10. */
const WAVE = ORIGINAL.poolSize + ORIGINAL.poolMaxOverflow;

function scenarios ({ seconds: S, n: N }: DemoOptions): Scenario[] {
  const warningN = ORIGINAL.warningN;
  const waves = waveCount(warningN, WAVE);
  const warningTimeout = wavesSeconds(warningN, S, WAVE) + S;
  const routes = ['/sleep/node/', '/sleep/postgres/'];
  return [
    ...COMBINATIONS.slice(0, 3).map((c, i) => ({
      title: `${i + 1}. ${c.title}`,
      original: c.original,
      env: { APP_MODE: c.appMode, DB_MODE: c.dbMode },
      n: N,
      seconds: S,
      routes,
      expected: routes.map((r) => burstSeconds(N, S, modeOfRoute(r, c))),
    })),
    {
      title: `4. The warning: ${warningN} requests against a pool of 5 + 10`,
      original: 'PSYCOGREEN=true gunicorn server:app -k gevent; python ./client.py 100',
      env: { APP_MODE: 'nonblocking', DB_MODE: 'nonblocking', POOL_TIMEOUT: String(warningTimeout) },
      n: warningN,
      seconds: S,
      routes: ['/sleep/postgres/'],
      expected: [wavesSeconds(warningN, S, WAVE)],
      expectedLabel: `ceil(${warningN}/${WAVE}) x ${S}s = ${s(wavesSeconds(warningN, S, WAVE))}`,
      note:
        `Waves of ${WAVE} (pool size ${ORIGINAL.poolSize} + overflow ${ORIGINAL.poolMaxOverflow}), so ` +
        `ceil(${warningN} / ${WAVE}) x ${S} s = ${wavesSeconds(warningN, S, WAVE)} s. ` +
        `POOL_TIMEOUT is raised to ${warningTimeout} s here: the last wave starts at ${waveAt(waves - 1, S)} s` +
        (waveAt(waves - 1, S) >= ORIGINAL.poolTimeout
          ? `, not before the default ${ORIGINAL.poolTimeout} s timeout, so it would time out.`
          : `, and the default is ${ORIGINAL.poolTimeout} s.`),
      check: (bursts) => checkWaves(bursts[0]!, S, WAVE),
    },
    {
      title: '5. Past POOL_TIMEOUT: waiting for a connection ends in 503',
      original: "SQLAlchemy's 'QueuePool limit of size 5 overflow 10 reached, connection timed out'",
      env: { APP_MODE: 'nonblocking', DB_MODE: 'nonblocking', POOL_TIMEOUT: '2' },
      n: 30,
      seconds: 3,
      routes: ['/sleep/postgres/'],
      expected: [3],
      expectedLabel: '15 x 200 @ 3s + 15 x 503 @ 2s',
      note:
        '30 requests of 3 s, pool 5 + 10, POOL_TIMEOUT=2: 15 are served after 3 s; the other 15 give up after 2 ' +
        's with HTTP 503.',
      check: (bursts) => checkTimeouts(bursts[0]!),
    },
  ];
}

/** The demo's last line, and its exit code: 1 when any scenario departed from its expected figures. */
function conclude (failed: number, out: (line: string) => void): number {
  out(
    failed
      ? `\n${failed} scenario(s) departed from the expected figures.`
      : '\nEvery scenario matched its expected figures.'
  );
  return failed ? 1 : 0;
}

/** About how long a run takes here (seconds): the scenarios' predicted totals, and each part as measured. */
export function demoSeconds (options: DemoOptions): number {
  if (options.hosts) return 120;
  if (options.replicas) return 40;
  if (options.failover) return 70;
  const start = 3; // a service process started and stopped per scenario
  const five = scenarios(options).reduce((a, sc) => a + sc.expected.reduce((x, y) => x + y, 0) + start, 0);
  const quick = options.quick ?? false;
  return (
    five +
    (options.scale ? 30 : 0) +
    (options.steadyRate ? (quick ? 55 : 75) : 0) +
    (options.blocking ? 60 : 0) +
    (options.faults ? (quick ? 60 : 120) : 0) +
    (options.claims ? 40 : 0)
  );
}

export async function runDemo (
  config: Config,
  options: DemoOptions,
  print: (line: string) => void = console.log
): Promise<number> {
  // On a terminal, the scenario running and the time against the time expected, on one line kept below the output.
  const progress = new ProgressLine(demoSeconds(options));
  const above = progress.printing(print);
  const out = (line: string) => {
    above(line);
    const title = /^=== (.*) ===$/.exec(line)?.[1];
    if (title) progress.update(title);
  };
  try {
    return await demo(config, options, out);
  } finally {
    progress.stop();
  }
}

async function demo (config: Config, options: DemoOptions, out: (line: string) => void): Promise<number> {
  // a one-line error now, not after the other scenarios
  if (options.scale || options.hosts) findPgBouncer(config.pgbouncerBin);
  if (options.hosts) findHaproxy();
  if (options.failover) findPatroni();
  // What is running right now, to stop on Ctrl-C: servers first, then databases.
  const running = new Set<Stoppable>();
  const stopListening = stopAllOnInterrupt(running, out);

  if (options.hosts || options.replicas || options.failover) {
    try {
      const rows = options.hosts
        ? await runHosts(config, { hosts: options.hosts, quick: options.quick, running, out })
        : options.replicas
          ? await runReplicas({ replicas: options.replicas, quick: options.quick, running, out })
          : await runFailover({ quick: options.quick, running, out });
      out('');
      printVerdicts(rows, out);
      return conclude(rows.filter((r) => r.ok === false).length, out);
    } finally {
      for (const r of [...running].reverse()) await r.stop();
      stopListening();
    }
  }

  let db: DatabaseSource | undefined;
  try {
    db = await openDatabase(config, { log: out, reuseRunning: true });
    running.add(db);
    await prepareDatabase(db.url);
    out(`Database: ${db.label}`);
    out(
      `N = ${options.n} requests per route, sleeps of ${options.seconds} s. Each scenario starts the service in its ` +
        'own process.\n'
    );
    const rows: Verdict[] = [];
    const sections: ReportSection[] = [];
    for (const sc of scenarios(options)) {
      const bursts = await runScenario(sc, db.url, running, out);
      rows.push(verdict(sc, bursts));
      sections.push({ title: sc.title, note: sc.note, bursts });
      out('');
    }
    if (options.scale) {
      const scale = await runScaleScenario(config, running, out);
      rows.push(scale.row);
      sections.push(scale.section);
      out('');
    }
    const steady: Verdict[] = [];
    if (options.steadyRate) {
      const arrivals = await runArrivalsScenario(db.url, { quick: options.quick ?? false, running, out });
      steady.push(...arrivals.rows);
      sections.push({ title: 'Past the ceiling at a steady rate', bursts: [], openLoops: arrivals.runs });
      sections.push({ title: 'Latency against offered rate, across the knee', bursts: [], sweep: arrivals.sweep });
      out('');
    }
    const blocks: Verdict[] = [];
    if (options.blocking) {
      blocks.push(...(await runBlockScenario(db.url, running, out)));
      out('');
      blocks.push(...(await runThreadPoolScenario(db.url, running, out)));
      out('');
    }
    const faults: Verdict[] = [];
    if (options.faults) {
      faults.push(...(await runFaults({ dataDir: config.dataDir, quick: options.quick ?? false, running, out })));
      out('');
    }
    const claims: Verdict[] = options.claims
      ? await runClaims(db.url, { quick: options.quick ?? false, running, out })
      : [];
    if (claims.length) out('');
    printVerdicts(rows, out, SCENARIO_COLUMNS);
    out(SCENARIO_TOLERANCE);
    if (steady.length) {
      out('');
      printVerdicts(steady, out, ['at a steady rate', 'measured']);
    }
    if (blocks.length) {
      out('');
      printVerdicts(blocks, out, ['what blocks', 'measured']);
    }
    if (faults.length) {
      out('');
      printVerdicts(faults, out, ['when things fail', 'measured']);
    }
    if (claims.length) {
      out('');
      printVerdicts(claims, out);
    }
    if (options.report) {
      writeReport(options.report, `demo: N = ${options.n}, ${options.seconds} s sleeps`, sections);
      out(`\nReport written to ${options.report}`);
    }
    return conclude(
      [...rows, ...steady, ...blocks, ...faults, ...claims].filter((c) => c.ok === false).length,
      out
    );
  } finally {
    for (const r of [...running].reverse()) await r.stop();
    stopListening();
  }
}

async function runScenario (
  sc: Scenario,
  databaseUrl: string,
  running: Set<Stoppable>,
  out: (line: string) => void
): Promise<Burst[]> {
  out(`=== ${sc.title} ===`);
  out(`    the original: ${sc.original}`);
  out(
    `    here:         ${Object.entries(sc.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')} npm start`
  );
  out(
    `                  npm run client -- ${sc.n} --seconds ${sc.seconds}${
      sc.routes.length === 1 ? ' ' + `--route ${sc.routes[0]}` : ''
    }`
  );
  if (sc.note) out(`    ${sc.note}`);
  return withServerProcess(
    { ...sc.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error' },
    (server) =>
      runClient(
        { n: sc.n, url: server.url, routes: sc.routes, seconds: sc.seconds, json: false, verbose: false },
        out
      ),
    { running }
  );
}

function verdict (sc: Scenario, bursts: Burst[]): Verdict {
  const totals = bursts.map((b) => b.totalMs / 1000);
  const problems: string[] = [];
  sc.routes.forEach((route, i) => {
    if (!within(totals[i]!, sc.expected[i]!)) {
      problems.push(`${route} took ${s(totals[i]!)}, expected ${s(sc.expected[i]!)}`);
    }
  });
  const extra = sc.check?.(bursts);
  if (extra) problems.push(extra);
  // Scenarios 4 and 5 only use the database route.
  const cells = sc.routes.length === 2 ? totals : [undefined, totals[0]];
  return row(sc.title, cells, sc.expectedLabel ?? s(sc.expected.reduce((a, b) => a + b, 0)), problems);
}
