// `demo --hosts N`: past one machine, for real. N hosts (network namespaces, or loopback
// addresses), each running the service with WORKERS=2, behind HAProxy, over one PostgreSQL with a
// small max_connections, reached directly or through one central PgBouncer. Three scenarios:
// (a) every host fits alone, together they exceed max_connections, and PostgreSQL refuses;
// (b) through the central PgBouncer nothing is refused and the waves are PgBouncer's;
// (c) a rolling restart under load drops nothing; a host killed outright loses what it held.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { burst, errorMessage, type Burst } from '../client/load.ts';
import { steady, type SteadyResult } from '../client/steady.ts';
import { errorKind } from '../client/summary.ts';
import { SETTINGS, type Config } from '../config.ts';
import { prepareDatabase } from '../db/schema.ts';
import { CLI, runToEnd, untilOutput, type Stoppable } from '../harness/server-process.ts';
import { stopProcess, tiedToUs } from '../os/processes.ts';
import { EmbeddedPostgres } from '../postgres/embedded.ts';
import { findPgBouncer, PgBouncer } from '../postgres/pgbouncer.ts';
import { waveCount, wavesSeconds } from '../scenarios.ts';
import type { ClaimRow } from './claims.ts';
import { findHaproxy, HaProxy } from './haproxy.ts';
import { createNetwork, type Network } from './network.ts';
import { checkWaves, s, within } from './verdicts.ts';

const WORKERS = 2;
const POOL_SIZE = 5;
const POOL_MAX_OVERFLOW = 10;
/** Room for every host's core connections, not for their overflow: 40 - 3 reserved = 37. */
const MAX_CONNECTIONS = 40;
const BOUNCER_POOL = 15;
const PORT = 8000;
/** Long enough for HAProxy's check (every 250 ms, two failures) to take a host out. */
const SHUTDOWN_DELAY = 1.5;
const SLEEP = 1;

export interface HostsOptions {
  hosts: number;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

interface Host {
  name: string;
  address: string;
  proc: ChildProcess;
  output: () => string;
}

export async function runHosts (config: Config, { hosts: n, running, out }: HostsOptions): Promise<ClaimRow[]> {
  const haproxyBin = findHaproxy();
  const bouncerBin = findPgBouncer(config.pgbouncerBin);
  const perHost = WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
  const available = MAX_CONNECTIONS - 3;
  const net = createNetwork(n);
  const hosts: (Host | undefined)[] = [];
  let postgres: EmbeddedPostgres | undefined;
  let bouncer: PgBouncer | undefined;
  let haproxy: HaProxy | undefined;
  // Stopped in this order, on the way out or on Ctrl-C: the services before what they use.
  const cleanup: Stoppable = {
    stop: async () => {
      await stopHosts(hosts);
      await bouncer?.stop();
      await haproxy?.stop();
      await postgres?.stop();
      net.teardown();
    },
  };
  running.add(cleanup);
  try {
    return await scenarios();
  } finally {
    await cleanup.stop();
    running.delete(cleanup);
  }

  async function scenarios (): Promise<ClaimRow[]> {
    out(`=== Past one machine: ${n} hosts x ${WORKERS} workers behind HAProxy, one PostgreSQL with max_connections ${MAX_CONNECTIONS} ===`);
    out(net.mode === 'netns'
      ? `    hosts: network namespaces ${net.hosts.map((h) => `${h.name} (${h.address})`).join(', ')} on a bridge; PostgreSQL and PgBouncer at ${net.dbAddress}`
      : `    hosts: loopback addresses ${net.hosts.map((h) => h.address).join(', ')} (${net.reason}); PostgreSQL and PgBouncer at ${net.dbAddress}`);

    const dataDir = join(config.dataDir, 'hosts');
    const db = new EmbeddedPostgres({ dataDir, maxConnections: MAX_CONNECTIONS, network: net.mode === 'netns' ? { address: net.dbAddress, cidr: net.cidr } : undefined });
    postgres = db;
    await db.start();
    const localUrl = db.url;
    await prepareDatabase(localUrl);
    const dbUrl = withHost(localUrl, net.dbAddress);
    const pgbouncer = new PgBouncer({ serverUrl: localUrl, bin: bouncerBin, dataDir, poolSize: BOUNCER_POOL, maxClients: 1000, listen: net.dbAddress });
    const proxy = new HaProxy({ bin: haproxyBin, dir: join(dataDir, 'haproxy'), backends: net.hosts.map((h, i) => ({ name: `h${i + 1}`, address: h.address, port: PORT })) });
    haproxy = proxy;
    await proxy.start();
    const base = {
      DATABASE_URL: dbUrl,
      WORKERS: String(WORKERS),
      POOL_SIZE: String(POOL_SIZE),
      POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
      POOL_TIMEOUT: '20',
      PORT: String(PORT),
      SHUTDOWN_DELAY: String(SHUTDOWN_DELAY),
      LOG_LEVEL: 'warn',
    };
    const startAll = async (env: Record<string, string>) => {
      await Promise.all(net.hosts.map(async (_h, i) => { hosts[i] = await startHost(net, i, { ...base, ...env, DATA_DIR: join(dataDir, `h${i + 1}`) }); }));
      await Promise.all(net.hosts.map((_h, i) => proxy.until(`h${i + 1}`, 'UP')));
    };
    const rows: ClaimRow[] = [];

    // (a) Straight to PostgreSQL.
    out(`  a. Straight to PostgreSQL: each host checks WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${perHost} <= ${available}: it fits, so each starts.`);
    await startAll({});
    const total = n * perHost;
    const refusalsBefore = refusalsLogged(dataDir);
    const burstN = total;
    out(`     ${burstN} concurrent ${SLEEP} s database sleeps through HAProxy: together the pools want ${n} x ${perHost} = ${total} connections of ${available}.`);
    const a = await burst(`${proxy.url}/sleep/postgres/?seconds=${SLEEP}`, burstN, { timeoutMs: 60_000 });
    const refused = refusalsLogged(dataDir) - refusalsBefore;
    const failedA = a.results.filter((r) => r.status !== 200);
    out(`     ${a.results.length - failedA.length} x 200, ${failedA.length} failed (${kinds(a)}); PostgreSQL's log: ${refused} x "sorry, too many clients already"`);
    await stopHosts(hosts);
    const fleetLine = await refusedWithHosts(dbUrl, n, dataDir);
    out(`     With HOSTS=${n}, a host does the fleet's arithmetic and refuses to start:\n       ${fleetLine}`);
    const fleetOk = fleetLine.includes(`HOSTS x WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${n} x ${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${total}`);
    rows.push({
      claim: `a. ${n} hosts straight to PostgreSQL`,
      measured: `${failedA.length} of ${burstN} failed, ${refused} refused by PostgreSQL`,
      expected: `each host ${perHost} <= ${available}, the fleet ${total} > ${available}: refusals`,
      verdict: refused > 0 && failedA.length > 0 && fleetOk ? 'ok' : `MISMATCH: ${fleetOk ? 'no refusal under load' : 'HOSTS did not refuse the fleet'}`,
      ok: refused > 0 && failedA.length > 0 && fleetOk,
    });

    // (b) Through one central PgBouncer.
    bouncer = pgbouncer;
    await pgbouncer.start();
    const bouncerUrl = withHost(pgbouncer.url, net.dbAddress);
    const waves = waveCount(burstN, BOUNCER_POOL);
    out(`  b. Through one PgBouncer at ${net.dbAddress} (transaction mode, ${BOUNCER_POOL} server connections): HOSTS=${n} PGBOUNCER_URL=... on every host.`);
    out(`     ${burstN} concurrent ${SLEEP} s sleeps: ceil(${burstN} / ${BOUNCER_POOL}) = ${waves} waves, ${s(wavesSeconds(burstN, SLEEP, BOUNCER_POOL))}.`);
    await startAll({ HOSTS: String(n), PGBOUNCER_URL: bouncerUrl });
    const peak = peakBackends(localUrl);
    const b = await burst(`${proxy.url}/sleep/postgres/?seconds=${SLEEP}`, burstN, { timeoutMs: 60_000 });
    const most = await peak.stop();
    const totalB = Math.max(...b.results.map((r) => r.end)) / 1000;
    const wavesProblem = checkWaves(b, SLEEP, BOUNCER_POOL);
    const okB = !wavesProblem && within(totalB, wavesSeconds(burstN, SLEEP, BOUNCER_POOL)) && most <= BOUNCER_POOL;
    out(`     ${b.results.filter((r) => r.status === 200).length} x 200 in ${s(totalB)}; at most ${most} of our connections on PostgreSQL at once${wavesProblem ? `; ${wavesProblem}` : ''}`);
    rows.push({
      claim: `b. ${n} hosts through one PgBouncer`,
      measured: `${b.results.filter((r) => r.status === 200).length} of ${burstN} x 200 in ${s(totalB)}, <= ${most} on PostgreSQL`,
      expected: `${waves} waves of ${BOUNCER_POOL}, ${s(wavesSeconds(burstN, SLEEP, BOUNCER_POOL))}, <= ${BOUNCER_POOL} connections`,
      verdict: okB ? 'ok' : `MISMATCH: ${wavesProblem ?? `${s(totalB)}, ${most} connections`}`,
      ok: okB,
    });

    // (c) A rolling restart under load, then a host killed.
    const clients = 8 * n;
    out(`  c. A rolling restart: ${clients} clients send GET /todos/ through HAProxy without pause; each host in turn gets SIGTERM`);
    out(`     (/readyz fails at once, SHUTDOWN_DELAY=${SHUTDOWN_DELAY} s until it stops listening, then it drains), and is started again.`);
    const rolling = new AbortController();
    const load = steady({ url: `${proxy.url}/todos/`, concurrency: clients, seconds: 600, signal: rolling.signal, timeoutMs: 30_000 });
    await delay(1000);
    const restartTimes: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const h = hosts[i]!;
      h.proc.kill('SIGTERM');
      const outAt = await proxy.until(`h${i + 1}`, 'DOWN');
      const code = await exited(h.proc);
      hosts[i] = await startHost(net, i, { ...base, HOSTS: String(n), PGBOUNCER_URL: bouncerUrl, DATA_DIR: join(dataDir, `h${i + 1}`) });
      await proxy.until(`h${i + 1}`, 'UP');
      restartTimes.push((performance.now() - t0) / 1000);
      out(`     h${i + 1}: out of HAProxy ${(outAt / 1000).toFixed(2)} s after SIGTERM, exit code ${code}, back in after ${s(restartTimes.at(-1)!)}`);
    }
    await delay(1000);
    rolling.abort();
    const c1 = await load;
    const failedC1 = c1.requests - c1.ok;
    out(`     ${c1.ok} of ${c1.requests} requests answered 200 during the restarts (${failures(c1)})`);
    rows.push({
      claim: `c. rolling restart of ${n} hosts (SIGTERM)`,
      measured: `${failedC1} of ${c1.requests} failed`,
      expected: '0 failed',
      verdict: failedC1 === 0 ? 'ok' : `MISMATCH: ${failedC1} failed`,
      ok: failedC1 === 0,
    });

    const victim = n - 1;
    out(`     Then SIGKILL h${victim + 1} (its primary; its workers die with it) while the load runs:`);
    const killing = new AbortController();
    const load2 = steady({ url: `${proxy.url}/todos/`, concurrency: clients, seconds: 600, signal: killing.signal, timeoutMs: 30_000 });
    await delay(1000);
    const before = (await proxy.stats()).reduce((a, x) => a + x.retries + x.redispatches, 0);
    hosts[victim]!.proc.kill('SIGKILL');
    const downAfter = await proxy.until(`h${victim + 1}`, 'DOWN').catch(() => NaN);
    await exited(hosts[victim]!.proc);
    hosts[victim] = undefined;
    await delay(2000);
    const afterKill = new AbortController();
    const tail = steady({ url: `${proxy.url}/todos/`, concurrency: clients, seconds: 2, timeoutMs: 30_000, signal: afterKill.signal });
    killing.abort();
    const c2 = await load2;
    const c3 = await tail;
    const retried = (await proxy.stats()).reduce((a, x) => a + x.retries + x.redispatches, 0) - before;
    const failedC2 = c2.requests - c2.ok;
    out(`     out of HAProxy after ${(downAfter / 1000).toFixed(2)} s; ${failedC2} of ${c2.requests} requests failed (${failures(c2)}), ${retried} connection(s) retried on another host;`);
    out(`     the ${n - 1} left: ${c3.ok} of ${c3.requests} x 200 in the next 2 s`);
    const okC2 = Number.isFinite(downAfter) && c3.requests > 0 && c3.ok === c3.requests;
    rows.push({
      claim: `c. h${victim + 1} killed (SIGKILL)`,
      measured: `${failedC2} of ${c2.requests} failed; out in ${(downAfter / 1000).toFixed(2)} s; then ${c3.ok}/${c3.requests} ok`,
      expected: 'the requests it held fail; taken out; the rest serve',
      verdict: okC2 ? 'ok' : 'MISMATCH: not taken out, or the others failed',
      ok: okC2,
    });
    out('');
    out('  HAProxy\'s configuration, as the demo wrote it (docs/scaling.md):');
    for (const line of proxy.config.trim().split('\n')) out(`     ${line}`);
    return rows;
  }
}

/** Starts the service on host i, as its own process (in the host's namespace), and waits until it listens. */
async function startHost (net: Network, i: number, env: Record<string, string>): Promise<Host> {
  const clean = { ...process.env };
  for (const s of Object.values(SETTINGS)) delete clean[s.env];
  const [program, args] = tiedToUs(...net.command(i, process.execPath, [CLI, 'serve']), 'TERM');
  const proc = spawn(program, args, { env: { ...clean, ...env, HOST: net.hosts[i]!.address }, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output } = await untilOutput(proc, /Listening on (http:\/\/\S+)\n/, `the service on ${net.hosts[i]!.name}`, 60_000);
  return { name: net.hosts[i]!.name, address: net.hosts[i]!.address, proc, output };
}

async function stopHosts (hosts: (Host | undefined)[]): Promise<void> {
  await Promise.all(hosts.map(async (h, i) => {
    if (h) await stopProcess(h.proc, 'SIGTERM', 20_000);
    hosts[i] = undefined;
  }));
}

function exited (proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/** A host started with HOSTS=n: its budget check counts the fleet. Returns its one line. */
async function refusedWithHosts (dbUrl: string, n: number, dataDir: string): Promise<string> {
  const clean = { ...process.env };
  for (const s of Object.values(SETTINGS)) delete clean[s.env];
  // From here, not a namespace: it stops before it listens, and PostgreSQL also listens on 127.0.0.1.
  const env = { ...clean, DATABASE_URL: withHost(dbUrl, '127.0.0.1'), HOSTS: String(n), WORKERS: String(WORKERS), POOL_SIZE: String(POOL_SIZE), POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW), PORT: '0', DATA_DIR: join(dataDir, 'refused'), LOG_LEVEL: 'warn' };
  const proc = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await runToEnd(proc, 30_000);
  return `exit code ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
}

/** Connection refusals PostgreSQL has logged so far ("sorry, too many clients already"). */
function refusalsLogged (dataDir: string): number {
  const log = join(dataDir, 'postgres.log');
  try {
    statSync(log);
  } catch {
    return 0;
  }
  return readFileSync(log, 'utf8').split('sorry, too many clients already').length - 1;
}

/** Samples how many client connections PostgreSQL holds for the todos database, every 50 ms; stop() gives the most. */
function peakBackends (url: string): { stop(): Promise<number> } {
  const client = new pg.Client({ connectionString: url });
  let most = 0;
  const sampling = { on: true };
  const loop = (async () => {
    await client.connect();
    while (sampling.on) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()");
      most = Math.max(most, rows[0]!.n);
      await delay(50);
    }
    await client.end();
  })();
  return { stop: async () => { sampling.on = false; await loop; return most; } };
}

/** "3 x HTTP 503, 2 reset", or "no errors". */
function failures (r: SteadyResult): string {
  const http = Object.entries(r.statuses).map(([status, count]) => `${count} x HTTP ${status}: ${errorMessage(r.samples[Number(status)] ?? '')}`);
  const other = Object.entries(r.errors).filter(([k]) => k !== 'http').map(([k, v]) => `${v} ${k}`);
  return [...http, ...other].join(', ') || 'no errors';
}

function kinds (b: Burst): string {
  const counts = new Map<string, number>();
  for (const r of b.results) if (r.status !== 200) counts.set(errorKind(r) + (r.body ? `: ${r.body}` : ''), (counts.get(errorKind(r) + (r.body ? `: ${r.body}` : '')) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${v} x ${k}`).join(', ') || 'none';
}

function withHost (url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}
