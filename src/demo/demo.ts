// The `demo` command: the original README's three scenarios and its warning, run for
// real on PostgreSQL, with expected totals computed from the settings and checked.
import type { Config } from './config.ts';
import { runClient } from './client/client.ts';
import type { Burst } from './client/load.ts';
import { writeReport, type ReportSection } from './client/report.ts';
import { errorKind } from './client/summary.ts';
import { prepareDatabase } from './db/schema.ts';
import { openDatabase, type DatabaseSource } from './db/source.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export interface DemoOptions {
  seconds: number;
  n: number;
  report?: string;
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

interface Row {
  scenario: string;
  totals: (number | undefined)[];
  expected: string;
  verdict: string;
  ok: boolean;
}

const OVERFLOW_WAVE = 15; // the default pool: 5 + 10
const tolerance = (expected: number) => expected * 0.1 + 0.3;
const within = (measured: number, expected: number) => Math.abs(measured - expected) <= tolerance(expected);
const s = (x: number) => `${x.toFixed(2)}s`;

function scenarios({ seconds: S, n: N }: DemoOptions): Scenario[] {
  const warningN = 100;
  const waves = Math.ceil(warningN / OVERFLOW_WAVE);
  const warningTimeout = waves * S + S;
  return [
    {
      title: '1. Blocking server, blocking database',
      original: 'gunicorn server:app',
      env: { APP_MODE: 'blocking', DB_MODE: 'blocking' },
      n: N, seconds: S, routes: ['/sleep/node/', '/sleep/postgres/'], expected: [N * S, N * S],
    },
    {
      title: '2. Non-blocking server, blocking database',
      original: 'gunicorn server:app -k gevent',
      env: { APP_MODE: 'nonblocking', DB_MODE: 'blocking' },
      n: N, seconds: S, routes: ['/sleep/node/', '/sleep/postgres/'], expected: [S, N * S],
    },
    {
      title: '3. Non-blocking server, non-blocking database',
      original: 'PSYCOGREEN=true gunicorn server:app -k gevent',
      env: { APP_MODE: 'nonblocking', DB_MODE: 'nonblocking' },
      n: N, seconds: S, routes: ['/sleep/node/', '/sleep/postgres/'], expected: [S, S],
    },
    {
      title: `4. The warning: ${warningN} requests against a pool of 5 + 10`,
      original: 'PSYCOGREEN=true gunicorn server:app -k gevent; python ./client.py 100',
      env: { APP_MODE: 'nonblocking', DB_MODE: 'nonblocking', POOL_TIMEOUT: String(warningTimeout) },
      n: warningN, seconds: S, routes: ['/sleep/postgres/'], expected: [waves * S],
      expectedLabel: `ceil(${warningN}/15) x ${S}s = ${s(waves * S)}`,
      note: `Waves of 15 (pool size 5 + overflow 10), so ceil(${warningN} / 15) x ${S} s = ${waves * S} s. ` +
        `POOL_TIMEOUT is raised to ${warningTimeout} s here: the seventh wave starts at ${6 * S} s` +
        (6 * S >= 30 ? ', not before the default 30 s timeout, so it would time out.' : ', and the default is 30 s.'),
      check: (bursts) => checkWaves(bursts[0]!, S, OVERFLOW_WAVE),
    },
    {
      title: '5. Past POOL_TIMEOUT: waiting for a connection ends in 503',
      original: "SQLAlchemy's 'QueuePool limit of size 5 overflow 10 reached, connection timed out'",
      env: { APP_MODE: 'nonblocking', DB_MODE: 'nonblocking', POOL_TIMEOUT: '2' },
      n: 30, seconds: 3, routes: ['/sleep/postgres/'], expected: [3],
      expectedLabel: '15 x 200 @ 3s + 15 x 503 @ 2s',
      note: '30 requests of 3 s, pool 5 + 10, POOL_TIMEOUT=2: 15 are served after 3 s; the other 15 give up after 2 s with HTTP 503.',
      check: (bursts) => checkTimeouts(bursts[0]!),
    },
  ];
}

export async function runDemo(config: Config, options: DemoOptions, out: (line: string) => void = console.log): Promise<number> {
  let db: DatabaseSource | undefined;
  let server: ServerProcess | undefined;
  let interrupted = false;
  const onSignal = async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    out('\nInterrupted: stopping the service and PostgreSQL...');
    await server?.stop('SIGTERM');
    await db?.stop();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    db = await openDatabase(config, (msg) => out(msg), true);
    await prepareDatabase(db.url);
    out(`Database: ${db.label}`);
    out(`N = ${options.n} requests per route, sleeps of ${options.seconds} s. Each scenario starts the service in its own process.\n`);
    const rows: Row[] = [];
    const sections: ReportSection[] = [];
    for (const sc of scenarios(options)) {
      out(`=== ${sc.title} ===`);
      out(`    the original: ${sc.original}`);
      out(`    here:         ${Object.entries(sc.env).map(([k, v]) => `${k}=${v}`).join(' ')} npm start`);
      out(`                  npm run client -- ${sc.n} --seconds ${sc.seconds}${sc.routes.length === 1 ? ` --route ${sc.routes[0]}` : ''}`);
      if (sc.note) out(`    ${sc.note}`);
      server = await startServerProcess({ ...sc.env, DATABASE_URL: db.url, LOG_LEVEL: 'error' });
      const bursts = await runClient({ n: sc.n, url: server.url, routes: sc.routes, seconds: sc.seconds, json: false, verbose: false }, out);
      await server.stop();
      server = undefined;
      rows.push(verdict(sc, bursts));
      sections.push({ title: sc.title, note: sc.note, bursts });
      out('');
    }
    printTable(rows, out);
    if (options.report) {
      writeReport(options.report, `demo: N = ${options.n}, ${options.seconds} s sleeps`, sections);
      out(`\nReport written to ${options.report}`);
    }
    const failed = rows.filter((r) => !r.ok).length;
    out(failed ? `\n${failed} scenario(s) departed from the expected figures.` : '\nEvery scenario matched its expected figures.');
    return failed ? 1 : 0;
  } finally {
    await server?.stop('SIGTERM');
    await db?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function verdict(sc: Scenario, bursts: Burst[]): Row {
  const totals = bursts.map((b) => b.totalMs / 1000);
  const problems: string[] = [];
  sc.routes.forEach((route, i) => {
    if (!within(totals[i]!, sc.expected[i]!)) problems.push(`${route} took ${s(totals[i]!)}, expected ${s(sc.expected[i]!)}`);
  });
  const extra = sc.check?.(bursts);
  if (extra) problems.push(extra);
  return {
    scenario: sc.title,
    // Scenarios 4 and 5 only use the database route.
    totals: sc.routes.length === 2 ? totals : [undefined, totals[0]],
    expected: sc.expectedLabel ?? s(sc.expected.reduce((a, b) => a + b, 0)),
    verdict: problems.length ? `MISMATCH: ${problems.join('; ')}` : 'ok',
    ok: problems.length === 0,
  };
}

/** Responses of a pooled burst must land in waves of `size`, the k-th at about k x S. */
function checkWaves(b: Burst, seconds: number, size: number): string | undefined {
  const ends = b.results.map((r) => r.end / 1000).sort((a, c) => a - c);
  for (let i = 0; i < ends.length; i++) {
    const wave = Math.floor(i / size) + 1;
    if (!within(ends[i]!, wave * seconds)) return `response ${i + 1} came at ${s(ends[i]!)}, expected in wave ${wave} at ${s(wave * seconds)}`;
  }
  if (b.results.some((r) => r.status !== 200)) return 'some requests failed';
  return undefined;
}

function checkTimeouts(b: Burst): string | undefined {
  const ok = b.results.filter((r) => r.status === 200);
  const timedOut = b.results.filter((r) => errorKind(r) === 'HTTP 503');
  if (ok.length !== 15 || timedOut.length !== 15) return `${ok.length} x 200 and ${timedOut.length} x 503, expected 15 and 15`;
  const late = ok.find((r) => !within(r.end / 1000, 3));
  if (late) return `a 200 came at ${s(late.end / 1000)}, expected about 3 s`;
  const off = timedOut.find((r) => !within(r.end / 1000, 2));
  if (off) return `a 503 came at ${s(off.end / 1000)}, expected about 2 s`;
  return undefined;
}

function printTable(rows: Row[], out: (line: string) => void): void {
  const cell = (x: number | undefined) => (x === undefined ? '-' : s(x));
  const table = [
    ['scenario', 'app-sleep total', 'database-sleep total', 'sum', 'expected', 'verdict'],
    ...rows.map((r) => [
      r.scenario, cell(r.totals[0]), cell(r.totals[1]),
      s(r.totals.reduce<number>((a, b) => a + (b ?? 0), 0)), r.expected, r.verdict,
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join(' | ').trimEnd();
  out(line(table[0]!));
  out(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of table.slice(1)) out(line(row));
  out(`(verdict: each measured total within 10 % + 0.3 s of the expected one)`);
}
