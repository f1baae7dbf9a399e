// The server: database preparation, listening, workers (node:cluster) and shutdown.
import cluster, { type Worker } from 'node:cluster';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { connectionsPerProcess, type Config } from './config.ts';
import { BlockingTodoStore } from './db/blocking.ts';
import { checkBudget, readBudget, type Budget } from './db/budget.ts';
import { prepareDatabase } from './db/schema.ts';
import { openDatabase, type DatabaseSource } from './db/source.ts';
import { AsyncTodoStore, type StoreOptions, type TodoStore } from './db/todos.ts';
import { createApp } from './http/app.ts';
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
  const db = await openDatabase(config, (msg) => log.info(msg));
  let budget: Budget;
  try {
    const prepared = await prepareDatabase(db.url);
    if (prepared.migrations.length) log.info({ migrations: prepared.migrations }, 'migrated');
    if (prepared.seeded) log.info(`seeded ${prepared.seeded} todos`);
    budget = await readBudget(db.url, config);
    checkBudget(budget, config);
  } catch (err) {
    await db.stop();
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

async function serveSingle(config: Config, db: DatabaseSource, budget: Budget, log: Logger): Promise<void> {
  const { app, store, address } = await startHttp(config, db.url, log);
  console.log(banner(config, address, db, budget));
  onShutdownSignal(log, async () => {
    await closeHttp(app, store, config, log);
    await db.stop();
  }, () => db.embedded?.kill());
}

async function serveWorker(config: Config): Promise<void> {
  const log = createLogger(config.logLevel, `worker ${cluster.worker?.id}`);
  const url = process.env.WORKER_DATABASE_URL ?? config.databaseUrl!;
  const { app, store } = await startHttp(config, url, log);
  const stop = () => closeHttp(app, store, config, log);
  onShutdownSignal(log, stop, () => {});
  process.on('message', (msg) => {
    if (msg === 'shutdown') process.emit('SIGTERM');
  });
}

async function servePrimary(config: Config, db: DatabaseSource, budget: Budget, log: Logger): Promise<void> {
  let stopping = false;
  const fork = (): Worker => cluster.fork({ WORKER_DATABASE_URL: db.url });
  const listening = new Set<number>();
  let announced = false;
  cluster.on('listening', (worker, address) => {
    listening.add(worker.id);
    if (!announced && listening.size === config.workers) {
      announced = true;
      console.log(banner(config, `http://${address.address}:${address.port}`, db, budget));
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
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
    db.embedded?.kill();
  });
}

interface Http {
  app: FastifyInstance;
  store: TodoStore;
  address: string;
}

async function startHttp(config: Config, url: string, log: Logger): Promise<Http> {
  const options: StoreOptions = {
    connectionString: url,
    kind: config.pool,
    size: config.poolSize,
    maxOverflow: config.poolMaxOverflow,
    timeoutMs: config.poolTimeout * 1000,
    queueMax: config.poolQueueMax,
    statementTimeoutMs: config.statementTimeout * 1000,
    prepare: true,
    logSql: config.logSql,
    onError: (err) => log.warn({ err: err.message }, 'idle database connection failed; dropped from the pool'),
  };
  const sqlLog = config.logSql ? (sql: string, params: readonly unknown[]) => log.info({ params }, sql) : undefined;
  const store = config.dbMode === 'blocking' ? new BlockingTodoStore(options, sqlLog) : new AsyncTodoStore(options, sqlLog);
  await store.warm().catch((err: Error) => log.warn(`could not open the pool's connections yet: ${err.message}`));
  const app = createApp({ store, sleep: appSleep(config.appMode), defaultSeconds: config.sleepSeconds, logger: log });
  const address = await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
  return { app, store, address };
}

/** Stop accepting, let in-flight requests finish within the grace period, then close the pool. */
async function closeHttp(app: FastifyInstance, store: TodoStore, config: Config, log: Logger): Promise<void> {
  const grace = setTimeout(() => {
    log.warn(`SHUTDOWN_GRACE (${config.shutdownGrace} s) is over: closing the remaining connections`);
    app.server.closeAllConnections();
  }, config.shutdownGrace * 1000);
  await app.close();
  clearTimeout(grace);
  await Promise.race([store.close(), delay(POOL_CLOSE_MS)]);
}

function onShutdownSignal(log: Logger, stop: () => Promise<void>, force: () => void): void {
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
}

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
  const budgetLine = config.pool === 'none'
    ? `max_connections ${budget.maxConnections} (${budget.available} available to us)`
    : `${config.workers} x ${per} = ${budget.needed} of ${budget.available} available connections`;
  return [
    `Listening on ${address}`,
    `  database : ${db.label}`,
    `  modes    : app sleep ${config.appMode}, database calls ${config.dbMode} (${SCENARIOS[`${config.appMode}/${config.dbMode}`]})`,
    `  pool     : ${pool}`,
    `  workers  : ${workers}; ${budgetLine}`,
    `  sleep    : ${config.sleepSeconds} s by default, ?seconds= to override (0-60)`,
    `  routes   : /sleep/node/ /sleep/python/ /sleep/postgres/ /todos/[:id] /healthz /readyz /pool`,
  ].join('\n');
}
