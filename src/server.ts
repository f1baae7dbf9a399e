// The server: database preparation, listening, workers (node:cluster) and shutdown.
import cluster, { type Worker } from 'node:cluster';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { connectionsPerProcess, type Config } from './config.ts';
import { BlockingTodoStore } from './db/blocking.ts';
import { checkBudget, readBudget, type Budget } from './db/budget.ts';
import { prepareDatabase } from './db/schema.ts';
import { findPgBouncer, PgBouncer } from './db/pgbouncer.ts';
import { BouncerStats } from './db/pgbouncer-stats.ts';
import { openDatabase, type DatabaseSource } from './db/source.ts';
import { AsyncTodoStore, type StoreOptions, type TodoStore } from './db/todos.ts';
import { createApp } from './http/app.ts';
import { createMetrics, serveClusterMetrics } from './http/metrics.ts';
import { LiveGauges } from './live/gauges.ts';
import { Monitor } from './live/monitor.ts';
import { redactUrl } from './net.ts';
import { createLogger, type Logger } from './log.ts';
import { appSleep } from './sleep.ts';

/**
 * Connections the kernel may queue before we accept them (gunicorn's default; Node's is 511).
 * A burst of thousands of connects otherwise overflows it, and the dropped SYNs are retried
 * only after 1 s, then 3 s: latency that no application code causes. Capped by somaxconn.
 */
const LISTEN_BACKLOG = 2048;

/** How long the pool may take to close after the grace period before we exit anyway. */
const POOL_CLOSE_MS = 5000;

export async function serve(config: Config): Promise<void> {
  if (cluster.isWorker) return serveWorker(config);
  const log = createLogger(config.logLevel, config.workers > 1 ? 'primary' : undefined);
  // Before anything starts: a missing PgBouncer is a one-line error, not a half-started service.
  const pgbouncerBin = config.pgbouncer && !config.pgbouncerUrl ? findPgBouncer(config.pgbouncerBin) : undefined;
  const direct = await openDatabase(config, (msg) => log.info(msg));
  let db: DatabaseSource = direct;
  let budget: Budget;
  try {
    const prepared = await prepareDatabase(direct.url);
    if (prepared.migrations.length) log.info({ migrations: prepared.migrations }, 'migrated');
    if (prepared.seeded) log.info(`seeded ${prepared.seeded} todos`);
    budget = await readBudget(direct.url, config);
    checkBudget(budget, config);
    db = await throughPgBouncer(direct, config, log, pgbouncerBin);
  } catch (err) {
    await direct.stop();
    throw err;
  }
  try {
    if (config.workers > 1) await servePrimary(config, db, budget, log);
    else await serveSingle(config, db, budget, log);
  } catch (err) {
    await db.stop();
    throw err;
  }
}

/** The pools' way to PostgreSQL: direct, through a PgBouncer we start, or through PGBOUNCER_URL. */
async function throughPgBouncer(direct: DatabaseSource, config: Config, log: Logger, bin?: string): Promise<DatabaseSource> {
  if (config.pgbouncerUrl) {
    return { ...direct, url: config.pgbouncerUrl, directUrl: direct.url, label: `${direct.label}, through PgBouncer at ${redactUrl(config.pgbouncerUrl)}` };
  }
  if (!bin) return direct;
  const bouncer = new PgBouncer({
    serverUrl: direct.url, bin, dataDir: config.dataDir, poolSize: config.pgbouncerPoolSize, maxClients: config.pgbouncerMaxClients,
    waitTimeout: config.poolTimeout, log: (m) => log.info(m),
  });
  await bouncer.start();
  return {
    ...direct,
    url: bouncer.url,
    directUrl: direct.url,
    label: `${direct.label}, through PgBouncer at ${redactUrl(bouncer.url)} (transaction mode, ${config.pgbouncerPoolSize} server connections)`,
    stop: async () => {
      await bouncer.stop();
      await direct.stop();
    },
    kill: () => {
      bouncer.kill();
      direct.kill?.();
    },
  };
}

async function serveSingle(config: Config, db: DatabaseSource, budget: Budget, log: Logger): Promise<void> {
  const starting = startHttp(config, { pool: db.url, direct: db.directUrl ?? db.url }, log);
  // Handlers first: a signal during start-up must still stop the embedded PostgreSQL.
  onShutdownSignal(log, async () => {
    await starting.then((http) => closeHttp(http, config, log), () => {});
    await db.stop();
  }, () => db.kill?.());
  const http = await starting;
  console.log(banner(config, http.address, db, budget));
}

async function serveWorker(config: Config): Promise<void> {
  const log = createLogger(config.logLevel, `worker ${cluster.worker?.id}`);
  const pool = process.env.WORKER_DATABASE_URL ?? config.databaseUrl!;
  const starting = startHttp(config, { pool, direct: process.env.WORKER_DIRECT_DATABASE_URL ?? pool }, log);
  const shutdown = onShutdownSignal(log, () => starting.then((http) => closeHttp(http, config, log)), () => {});
  process.on('message', (msg) => {
    if (msg === 'shutdown') shutdown('SIGTERM');
  });
  const http = await starting;
  process.send!({ type: 'anp:ready', address: http.address });
}

async function servePrimary(config: Config, db: DatabaseSource, budget: Budget, log: Logger): Promise<void> {
  let stopping = false;
  const fork = (): Worker => cluster.fork({ WORKER_DATABASE_URL: db.url, WORKER_DIRECT_DATABASE_URL: db.directUrl ?? db.url });
  serveClusterMetrics();
  const ready = new Set<number>();
  let announced = false;
  cluster.on('message', (worker, msg: { type?: string; address?: string }) => {
    if (msg?.type !== 'anp:ready') return;
    ready.add(worker.id);
    if (!announced && ready.size === config.workers) {
      announced = true;
      console.log(banner(config, msg.address!, db, budget));
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id);
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, 'worker died; starting a new one');
    setTimeout(fork, 1000).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();

  onShutdownSignal(log, async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w));
    // A message, not a signal: on Ctrl-C the workers already got SIGINT from the
    // terminal, and a second signal would mean "force".
    const exited = workers.map((w) => new Promise((r) => w.once('exit', r)));
    for (const w of workers) w.send('shutdown');
    await Promise.all(exited);
    await db.stop();
  }, () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    db.kill?.();
  });
}

interface Http {
  app: FastifyInstance;
  store: TodoStore;
  monitor: Monitor;
  bouncer?: BouncerStats;
  address: string;
}

/** `urls.pool`: how the pool reaches PostgreSQL (maybe through PgBouncer); `urls.direct`: PostgreSQL itself. */
async function startHttp(config: Config, urls: { pool: string; direct: string }, log: Logger): Promise<Http> {
  const url = urls.pool;
  const gauges = new LiveGauges();
  const options: StoreOptions = {
    connectionString: url,
    kind: config.pool,
    size: config.poolSize,
    maxOverflow: config.poolMaxOverflow,
    timeoutMs: config.poolTimeout * 1000,
    queueMax: config.poolQueueMax,
    statementTimeoutMs: config.statementTimeout * 1000,
    // PgBouncer 1.18 in transaction mode keeps no session state: no named statements.
    prepare: !behindBouncer(config),
    transactionMode: behindBouncer(config),
    perTransactionTimeout: behindBouncer(config),
    logSql: config.logSql,
    gauges: gauges.buffers,
    onError: (err) => log.warn({ err: err.message }, 'a database connection failed; it is dropped from the pool'),
  };
  const sqlLog = config.logSql ? (sql: string, params: readonly unknown[]) => log.info({ params }, sql) : undefined;
  const store = config.dbMode === 'blocking' ? new BlockingTodoStore(options, sqlLog) : new AsyncTodoStore(options, sqlLog);
  await store.warm().catch((err: Error) => log.warn(`could not open the pool's connections yet: ${err.message}`));
  const bouncer = behindBouncer(config) ? new BouncerStats(url) : undefined;
  let monitor: Monitor | undefined;
  const app = createApp({
    store,
    sleep: appSleep(config.appMode),
    defaultSeconds: config.sleepSeconds,
    logger: log,
    metrics: createMetrics(() => store.stats(), bouncer),
    gauges,
    record: (r) => monitor?.record(r),
    monitorPort: () => monitor?.port,
  });
  const address = await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
  const port = new URL(address).port;
  monitor = await Monitor.start({
    host: config.host,
    port: config.monitorPort && cluster.isWorker ? config.monitorPort + (cluster.worker!.id - 1) : config.monitorPort,
    origins: [...new Set([config.host, '127.0.0.1', 'localhost', '[::1]'])].map((h) => `http://${h}:${port}`),
    // PostgreSQL's own view, read directly: through PgBouncer it would queue behind the requests.
    databaseUrl: urls.direct,
    bouncerUrl: behindBouncer(config) ? url : undefined,
    gauges,
    settings: {
      ...config, databaseUrl: undefined, pgbouncerUrl: config.pgbouncerUrl && redactUrl(config.pgbouncerUrl),
      database: redactUrl(url), worker: cluster.worker?.id ?? 1,
    },
  });
  return { app, store, monitor, bouncer, address };
}

/** Stop accepting, let in-flight requests finish within the grace period, then close the pool. */
async function closeHttp({ app, store, monitor, bouncer }: Http, config: Config, log: Logger): Promise<void> {
  const grace = setTimeout(() => {
    log.warn(`SHUTDOWN_GRACE (${config.shutdownGrace} s) is over: closing the remaining connections`);
    app.server.closeAllConnections();
  }, config.shutdownGrace * 1000);
  await app.close();
  clearTimeout(grace);
  await monitor.close();
  await bouncer?.close();
  await Promise.race([store.close(), delay(POOL_CLOSE_MS)]);
}

function onShutdownSignal(log: Logger, stop: () => Promise<void>, force: () => void): (signal: NodeJS.Signals) => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      force();
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down gracefully`);
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        force();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return handler;
}

const behindBouncer = (config: Config) => config.pgbouncer || Boolean(config.pgbouncerUrl);

const SCENARIOS: Record<string, string> = {
  'blocking/blocking': "the original's scenario 1: gunicorn server:app (sync worker)",
  'nonblocking/blocking': "the original's scenario 2: gunicorn -k gevent, psycopg2 blocking",
  'nonblocking/nonblocking': "the original's scenario 3: gunicorn -k gevent with psycogreen",
  'blocking/nonblocking': 'not in the original: blocking app sleep, non-blocking database',
};

function banner(config: Config, address: string, db: DatabaseSource, budget: Budget): string {
  const per = connectionsPerProcess(config);
  const pool = config.pool === 'none'
    ? 'NullPool: a new connection per request (no limit but max_connections)'
    : `QueuePool size ${config.poolSize} + overflow ${config.poolMaxOverflow} per process, timeout ${config.poolTimeout} s`;
  const workers = config.workers > 1 ? `${config.workers} workers (node:cluster)` : '1 process';
  const budgetLine = config.pgbouncer
    ? `${config.workers} x ${per} = ${budget.needed} client connections to PgBouncer (max ${config.pgbouncerMaxClients}); the limit that applies is PgBouncer's ${config.pgbouncerPoolSize} server connections of ${budget.available} available`
    : config.pgbouncerUrl
      ? `${config.workers} x ${per} = ${budget.needed} client connections to the PgBouncer at PGBOUNCER_URL; its own limits apply`
      : config.pool === 'none'
        ? `max_connections ${budget.maxConnections} (${budget.available} available to us)`
        : `${config.workers} x ${per} = ${budget.needed} of ${budget.available} available connections (max_connections is the limit)`;
  return [
    `Listening on ${address}`,
    `  database : ${db.label}`,
    `  modes    : app sleep ${config.appMode}, database calls ${config.dbMode} (${SCENARIOS[`${config.appMode}/${config.dbMode}`]})`,
    `  pool     : ${pool}`,
    `  workers  : ${workers}; ${budgetLine}`,
    `  sleep    : ${config.sleepSeconds} s by default, ?seconds= to override (0-60)`,
    `  routes   : /sleep/node/ /sleep/python/ /sleep/postgres/ /todos/[:id] /healthz /readyz /pool /metrics`,
    `  watch    : ${address}/ (live dashboard), ${address}/docs (API docs)`,
  ].join('\n');
}
