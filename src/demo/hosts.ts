// `demo --hosts N`: past one machine, for real. N hosts (network namespaces, or loopback
// addresses), each running the service with WORKERS=2, behind HAProxy, over one PostgreSQL with a
// small max_connections, reached directly or through one central PgBouncer. Three scenarios:
// (a) every host fits alone, together they exceed max_connections, and PostgreSQL refuses;
// (b) through the central PgBouncer nothing is refused and the waves are PgBouncer's;
// (c) a rolling restart under load drops nothing; a host killed outright loses what it held.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { burst, errorMessage, type Burst } from '../client/load.ts';
import { steady, type SteadyResult } from '../client/steady.ts';
import { summarize } from '../client/summary.ts';
import type { Config } from '../config.ts';
import { prepareDatabase } from '../db/tables.ts';
import { CLI, cliEnv, runCliToEnd, untilOutput, type Stoppable } from '../harness/server-process.ts';
import { stopProcess, tiedToUs } from '../os/processes.ts';
import { EmbeddedPostgres } from '../postgres/embedded.ts';
import { availableTo, readLimits } from '../postgres/limits.ts';
import { watchBackends } from '../postgres/observe.ts';
import { findPgBouncer, PgBouncer } from '../postgres/pgbouncer.ts';
import { waveCount, wavesSeconds } from '../scenarios.ts';
import type { ClaimRow } from './claims.ts';
import { findHaproxy, HaProxy } from './haproxy.ts';
import { createNetwork, type Network } from './network.ts';
import { checkWaves, s, within } from './verdicts.ts';

const WORKERS = 2;
const POOL_SIZE = 5;
const POOL_MAX_OVERFLOW = 10;
/** Room for every host's core connections, not for their overflow (37 for ordinary roles, as the server reports). */
const MAX_CONNECTIONS = 40;
const BOUNCER_POOL = 15;
const PORT = 8000;
/** Long enough for HAProxy's check (every 250 ms, two failures) to take a host out. */
const SHUTDOWN_DELAY = 1.5;
const SLEEP = 1;
/** Each client's pause between requests in the rolling restart: about 100 requests a second per client. */
const THINK_MS = 10;

export interface HostsOptions {
  hosts: number;
  /** Shorter pauses around the restarts and the kill (--quick); the same scenarios and verdicts. */
  quick?: boolean;
  running: Set<Stoppable>;
  out: (line: string) => void;
}

interface Host {
  name: string;
  address: string;
  proc: ChildProcess;
  output: () => string;
}

/** Everything the scenarios run on: the hosts, HAProxy, PostgreSQL and the PgBouncer. */
class Fleet {
  readonly hosts: (Host | undefined)[] = [];
  readonly dataDir: string;
  readonly postgres: EmbeddedPostgres;
  readonly proxy: HaProxy;
  private bouncer?: PgBouncer;
  private readonly bouncerBin: string;
  /** Each host's settings, beyond the base ones: what the current scenario runs. */
  env: Record<string, string> = {};
  /** The connections PostgreSQL allows ordinary roles, read from it once it runs. */
  available = 0;

  constructor (
    config: Config,
    readonly net: Network
  ) {
    this.dataDir = join(config.dataDir, 'hosts');
    const network = net.mode === 'netns' ? { address: net.dbAddress, cidr: net.cidr } : undefined;
    this.postgres = new EmbeddedPostgres({ dataDir: this.dataDir, maxConnections: MAX_CONNECTIONS, network });
    this.bouncerBin = findPgBouncer(config.pgbouncerBin);
    this.proxy = new HaProxy({
      bin: findHaproxy(),
      dir: join(this.dataDir, 'haproxy'),
      backends: net.hosts.map((h, i) => ({ name: name(i), address: h.address, port: PORT })),
    });
  }

  /** PostgreSQL, as the hosts reach it. */
  get dbUrl (): string {
    return withHost(this.postgres.url, this.net.dbAddress);
  }

  async start (): Promise<void> {
    await this.postgres.start();
    await prepareDatabase(this.postgres.url);
    const client = new pg.Client({ connectionString: this.postgres.url });
    await client.connect();
    try {
      this.available = availableTo(await readLimits(client));
    } finally {
      await client.end();
    }
    await this.proxy.start();
  }

  /** Starts the central PgBouncer; returns its URL as the hosts reach it. */
  async startBouncer (): Promise<string> {
    this.bouncer = new PgBouncer({
      serverUrl: this.postgres.url,
      bin: this.bouncerBin,
      dataDir: this.dataDir,
      poolSize: BOUNCER_POOL,
      maxClients: 1000,
      listen: this.net.dbAddress,
    });
    await this.bouncer.start();
    return withHost(this.bouncer.url, this.net.dbAddress);
  }

  /** Starts host i with the scenario's settings and waits until HAProxy has it in. */
  async startHost (i: number): Promise<void> {
    const env = {
      DATABASE_URL: this.dbUrl,
      WORKERS: String(WORKERS),
      POOL_SIZE: String(POOL_SIZE),
      POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
      POOL_TIMEOUT: '20',
      PORT: String(PORT),
      SHUTDOWN_DELAY: String(SHUTDOWN_DELAY),
      LOG_LEVEL: 'warn',
      DATA_DIR: join(this.dataDir, name(i)),
      ...this.env,
    };
    this.hosts[i] = await startService(this.net, i, env);
    await this.proxy.until(name(i), 'UP');
  }

  startAll (): Promise<unknown> {
    return Promise.all(this.net.hosts.map((_h, i) => this.startHost(i)));
  }

  async stopHosts (): Promise<void> {
    await Promise.all(
      this.hosts.map(async (h, i) => {
        if (h) await stopProcess(h.proc, 'SIGTERM', 20_000);
        this.hosts[i] = undefined;
      })
    );
  }

  /** The services before what they use. */
  async stop (): Promise<void> {
    await this.stopHosts();
    await this.bouncer?.stop();
    await this.proxy.stop();
    await this.postgres.stop();
    this.net.teardown();
  }
}

const name = (i: number) => `h${i + 1}`;

export async function runHosts (
  config: Config,
  { hosts: n, quick = false, running, out }: HostsOptions
): Promise<ClaimRow[]> {
  const net = createNetwork(n);
  const fleet = new Fleet(config, net);
  // Stopped on the way out, or by the demo on Ctrl-C.
  running.add(fleet);
  try {
    out(
      `=== Past one machine: ${n} hosts x ${WORKERS} workers behind HAProxy, one PostgreSQL with max_connections ${MAX_CONNECTIONS} ===`
    );
    out(
      net.mode === 'netns'
        ? `    hosts: network namespaces ${net.hosts.map((h) => `${h.name} (${h.address})`).join(', ')} on a bridge; PostgreSQL and PgBouncer at ${net.dbAddress}`
        : `    hosts: loopback addresses ${net.hosts.map((h) => h.address).join(', ')} (${net.reason}); PostgreSQL and PgBouncer at ${net.dbAddress}`
    );
    await fleet.start();
    const pause = (ms: number) => delay(quick ? ms / 2 : ms);
    return [
      await straightToPostgres(fleet, out),
      await throughOneBouncer(fleet, out),
      ...(await restarts(fleet, pause, quick, out)),
    ];
  } finally {
    await fleet.stop();
    running.delete(fleet);
  }
}

/** (a) Each host's own check passes; together they exceed max_connections, and PostgreSQL refuses. */
async function straightToPostgres (fleet: Fleet, out: (line: string) => void): Promise<ClaimRow> {
  const n = fleet.net.hosts.length;
  const perHost = WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
  const total = n * perHost;
  out(
    `  a. Straight to PostgreSQL: each host checks WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${perHost} <= ${fleet.available}: it fits, so each starts.`
  );
  await fleet.startAll();
  const refusalsBefore = refusalsLogged(fleet.dataDir);
  out(
    `     ${total} concurrent ${SLEEP} s database sleeps through HAProxy: together the pools want ${n} x ${perHost} = ${total} connections of ${fleet.available}.`
  );
  const a = await burst(`${fleet.proxy.url}/sleep/postgres/?seconds=${SLEEP}`, total, { timeoutMs: 60_000 });
  const refused = refusalsLogged(fleet.dataDir) - refusalsBefore;
  const failed = a.results.filter((r) => r.status !== 200).length;
  out(
    `     ${a.results.length - failed} x 200, ${failed} failed (${kinds(a)}); PostgreSQL's log: ${refused} x "sorry, too many clients already"`
  );
  await fleet.stopHosts();
  const fleetLine = await refusedWithHosts(fleet, n);
  out(`     With HOSTS=${n}, a host does the fleet's arithmetic and refuses to start:\n       ${fleetLine}`);
  const fleetOk = fleetLine.includes(
    `HOSTS x WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${n} x ${WORKERS} x (${POOL_SIZE} + ${POOL_MAX_OVERFLOW}) = ${total}`
  );
  const ok = refused > 0 && failed > 0 && fleetOk;
  return {
    claim: `a. ${n} hosts straight to PostgreSQL`,
    measured: `${failed} of ${total} failed, ${refused} refused by PostgreSQL`,
    expected: `each host ${perHost} <= ${fleet.available}, the fleet ${total} > ${fleet.available}: refusals`,
    verdict: ok ? 'ok' : `MISMATCH: ${fleetOk ? 'no refusal under load' : 'HOSTS did not refuse the fleet'}`,
    ok,
  };
}

/** (b) The same hosts through one central PgBouncer: no refusal, PgBouncer's waves. */
async function throughOneBouncer (fleet: Fleet, out: (line: string) => void): Promise<ClaimRow> {
  const n = fleet.net.hosts.length;
  const total = n * WORKERS * (POOL_SIZE + POOL_MAX_OVERFLOW);
  const bouncerUrl = await fleet.startBouncer();
  const waves = waveCount(total, BOUNCER_POOL);
  const expected = wavesSeconds(total, SLEEP, BOUNCER_POOL);
  out(
    `  b. Through one PgBouncer at ${fleet.net.dbAddress} (transaction mode, ${BOUNCER_POOL} server connections): HOSTS=${n} PGBOUNCER_URL=... on every host.`
  );
  out(
    `     ${total} concurrent ${SLEEP} s sleeps: ceil(${total} / ${BOUNCER_POOL}) = ${waves} waves, ${s(expected)}.`
  );
  fleet.env = { HOSTS: String(n), PGBOUNCER_URL: bouncerUrl };
  await fleet.startAll();
  const peak = watchBackends(fleet.postgres.url, 50);
  const b = await burst(`${fleet.proxy.url}/sleep/postgres/?seconds=${SLEEP}`, total, { timeoutMs: 60_000 });
  const most = (await peak.stop()).backends;
  const served = b.results.filter((r) => r.status === 200).length;
  const took = Math.max(...b.results.map((r) => r.end)) / 1000;
  const problem = checkWaves(b, SLEEP, BOUNCER_POOL);
  const ok = !problem && within(took, expected) && most <= BOUNCER_POOL;
  out(
    `     ${served} x 200 in ${s(took)}; at most ${most} of our connections on PostgreSQL at once${problem ? `; ${problem}` : ''}`
  );
  return {
    claim: `b. ${n} hosts through one PgBouncer`,
    measured: `${served} of ${total} x 200 in ${s(took)}, <= ${most} on PostgreSQL`,
    expected: `${waves} waves of ${BOUNCER_POOL}, ${s(expected)}, <= ${BOUNCER_POOL} connections`,
    verdict: ok ? 'ok' : `MISMATCH: ${problem ?? `${s(took)}, ${most} connections`}`,
    ok,
  };
}

/** (c) A rolling restart under load drops nothing; then a host killed outright. */
async function restarts (
  fleet: Fleet,
  pause: (ms: number) => Promise<unknown>,
  quick: boolean,
  out: (line: string) => void
): Promise<ClaimRow[]> {
  const { proxy, hosts } = fleet;
  const n = fleet.net.hosts.length;
  // Steady traffic, not a saturating loop: the hosts that restart need the CPU to start. --quick
  // sends a quarter of it: still thousands of requests across the restarts, for a fraction of the CPU.
  const clients = (quick ? 2 : 8) * n;
  const thinkMs = THINK_MS;
  const load = () => {
    const stop = new AbortController();
    const result = steady({
      url: `${proxy.url}/todos/`,
      concurrency: clients,
      seconds: 600,
      signal: stop.signal,
      timeoutMs: 30_000,
      thinkMs,
    });
    return { result, stop: () => stop.abort() };
  };
  out(
    `  c. A rolling restart: ${clients} clients send GET /todos/ through HAProxy, each every ${THINK_MS} ms after its last answer; each host in turn gets SIGTERM`
  );
  out(
    `     (/readyz fails at once, SHUTDOWN_DELAY=${SHUTDOWN_DELAY} s until it stops listening, then it drains), and is started again.`
  );
  const rolling = load();
  await pause(1000);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const h = hosts[i]!;
    h.proc.kill('SIGTERM');
    const outAt = await proxy.until(name(i), 'DOWN');
    const code = await exited(h.proc);
    await fleet.startHost(i);
    out(
      `     ${name(i)}: out of HAProxy ${(outAt / 1000).toFixed(2)} s after SIGTERM, exit code ${code}, back in after ${s((performance.now() - t0) / 1000)}`
    );
  }
  await pause(1000);
  rolling.stop();
  const c1 = await rolling.result;
  const failedC1 = c1.requests - c1.ok;
  out(`     ${c1.ok} of ${c1.requests} requests answered 200 during the restarts (${failures(c1)})`);

  const victim = n - 1;
  out(`     Then SIGKILL ${name(victim)} (its primary; its workers die with it) while the load runs:`);
  const killing = load();
  await pause(1000);
  const retriesSoFar = async () => (await proxy.stats()).reduce((a, x) => a + x.retries + x.redispatches, 0);
  const before = await retriesSoFar();
  hosts[victim]!.proc.kill('SIGKILL');
  const downAfter = await proxy.until(name(victim), 'DOWN').catch(() => NaN);
  await exited(hosts[victim]!.proc);
  hosts[victim] = undefined;
  await pause(2000);
  const seconds = quick ? 1 : 2;
  const after = steady({ url: `${proxy.url}/todos/`, concurrency: clients, seconds, timeoutMs: 30_000, thinkMs });
  killing.stop();
  const c2 = await killing.result;
  const c3 = await after;
  const retried = (await retriesSoFar()) - before;
  const failedC2 = c2.requests - c2.ok;
  out(
    `     out of HAProxy after ${(downAfter / 1000).toFixed(2)} s; ${failedC2} of ${c2.requests} requests failed (${failures(c2)}), ${retried} connection(s) retried on another host;`
  );
  out(`     the ${n - 1} left: ${c3.ok} of ${c3.requests} x 200 in the next ${seconds} s`);
  const okC2 = Number.isFinite(downAfter) && c3.requests > 0 && c3.ok === c3.requests;
  out('');
  out("  HAProxy's configuration, as the demo wrote it (docs/scaling.md):");
  for (const line of proxy.config.trim().split('\n')) out(`     ${line}`);
  return [
    {
      claim: `c. rolling restart of ${n} hosts (SIGTERM)`,
      measured: `${failedC1} of ${c1.requests} failed`,
      expected: '0 failed',
      verdict: failedC1 === 0 ? 'ok' : `MISMATCH: ${failedC1} failed`,
      ok: failedC1 === 0,
    },
    {
      claim: `c. ${name(victim)} killed (SIGKILL)`,
      measured: `${failedC2} of ${c2.requests} failed; out in ${(downAfter / 1000).toFixed(2)} s; then ${c3.ok}/${c3.requests} ok`,
      expected: 'the requests it held fail; taken out; the rest serve',
      verdict: okC2 ? 'ok' : 'MISMATCH: not taken out, or the others failed',
      ok: okC2,
    },
  ];
}

/** Starts the service on host i, as its own process (in the host's namespace), and waits until it listens. */
async function startService (net: Network, i: number, env: Record<string, string>): Promise<Host> {
  const [program, args] = tiedToUs(...net.command(i, process.execPath, [CLI, 'serve']), 'TERM');
  const proc = spawn(program, args, {
    env: cliEnv({ ...env, HOST: net.hosts[i]!.address }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { output } = await untilOutput(
    proc,
    /Listening on (http:\/\/[^\s"]+)/,
    `the service on ${net.hosts[i]!.name}`,
    60_000
  );
  return { name: net.hosts[i]!.name, address: net.hosts[i]!.address, proc, output };
}

function exited (proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/** A host started with HOSTS=n: its budget check counts the fleet. Returns its one line. */
async function refusedWithHosts (fleet: Fleet, n: number): Promise<string> {
  // From here, not a namespace: it stops before it listens, and PostgreSQL also listens on 127.0.0.1.
  const env = {
    DATABASE_URL: fleet.postgres.url,
    HOSTS: String(n),
    WORKERS: String(WORKERS),
    POOL_SIZE: String(POOL_SIZE),
    POOL_MAX_OVERFLOW: String(POOL_MAX_OVERFLOW),
    DATA_DIR: join(fleet.dataDir, 'refused'),
  };
  const r = await runCliToEnd(['serve'], { ...env, PORT: '0' }, { timeoutMs: 30_000 });
  return `exit code ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
}

/** Connection refusals PostgreSQL has logged so far ("sorry, too many clients already"). */
function refusalsLogged (dataDir: string): number {
  const log = join(dataDir, 'postgres.log');
  if (!existsSync(log)) return 0;
  return readFileSync(log, 'utf8').split('sorry, too many clients already').length - 1;
}

/** "3 x HTTP 503, 2 reset", or "no errors". */
function failures (r: SteadyResult): string {
  const http = Object.entries(r.statuses).map(
    ([status, count]) => `${count} x HTTP ${status}: ${errorMessage(r.samples[Number(status)] ?? '')}`
  );
  const other = Object.entries(r.errors)
    .filter(([k]) => k !== 'http')
    .map(([k, v]) => `${v} ${k}`);
  return [...http, ...other].join(', ') || 'no errors';
}

function kinds (b: Burst): string {
  const { errorKinds, errorMessages } = summarize(b);
  return (
    Object.entries(errorKinds)
      .map(([kind, n]) => `${n} x ${kind}${errorMessages[kind] ? `: ${errorMessages[kind]}` : ''}`)
      .join(', ') || 'none'
  );
}

function withHost (url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}
