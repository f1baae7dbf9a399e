// The database as the routes see it: a TodoStore over the connection pool, opened (and warmed)
// when the app loads and closed in onClose, after the last request has been answered.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { behindBouncer, type Config } from '../../config.ts';
import type { BlockingTodoStore } from '../../db/blocking.ts';
import { SharedPoolState } from '../../db/pool-state.ts';
import { ReplicatedTodoStore, type ReplicaOptions } from '../../db/replicated.ts';
import { AsyncTodoStore, type LeakReport, type StoreOptions, type TodoStore } from '../../db/todos.ts';
import { sessionGuards, startupOptions } from '../../postgres/guards.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: TodoStore;
    /** With replicas: the same store, with its servers and how reads were routed. */
    replicas: ReplicatedTodoStore | undefined;
    /** The pool's gauges in shared memory, readable while the event loop is blocked. */
    poolState: SharedPoolState;
    /** Calls `listener` with each of the pool's leak reports (LEAK_DETECTION): for the leaks plugin. */
    onPoolLeak(listener: (report: LeakReport) => void): void;
  }
}

/** How long closing the pool may take: a connection stuck in a dead server must not hold the exit. */
const CLOSE_MS = 5000;

/**
 * The settings in the pool's and the store's terms: with replicaOptions() below, the one place
 * where the service's names and seconds become the store's names and milliseconds.
 */
export function storeOptions (config: Config, url: string, serverVersion?: number): StoreOptions {
  const leakDetectionMs = leakWatchMs(config);
  const bouncer = behindBouncer(config);
  return {
    connectionString: url,
    kind: config.pool,
    size: config.poolSize,
    maxOverflow: config.poolMaxOverflow,
    timeoutMs: config.poolTimeout * 1000,
    queueMax: config.poolQueueMax,
    connectTimeoutMs: config.connectTimeout * 1000,
    queryTimeoutMs: config.queryTimeout * 1000,
    healthCheckMs: config.poolHealthCheck * 1000,
    ...(leakDetectionMs ? { leakDetectionMs } : {}),
    keepAliveMs: config.dbKeepalive * 1000,
    // PgBouncer 1.18 refuses a startup `options` parameter: there it sets the guards itself (connect_query).
    sessionOptions: bouncer ? undefined : startupOptions(sessionGuards(config, serverVersion)),
    statementTimeoutMs: config.statementTimeout * 1000,
    // PgBouncer 1.18 in transaction mode keeps no session state: no named statements.
    prepare: !bouncer,
    transactionMode: bouncer,
    perTransactionTimeout: bouncer,
    logSql: config.logSql,
  };
}

/**
 * How long a connection may be held before the pool reports it (LEAK_DETECTION), 0 for never. The blocking bridge's
 * pool lives in a thread a report could not come back from: no leak watch there.
 */
export function leakWatchMs (config: Pick<Config, 'dbMode' | 'leakDetection'>): number {
  return config.dbMode === 'blocking' ? 0 : config.leakDetection * 1000;
}

/** The replicated store's settings, in its terms. */
export function replicaOptions (config: Config, replicas: ReplicaOptions['replicas']): ReplicaOptions {
  return { replicas, maxLag: config.replicaMaxLag, readAfterTimeoutMs: config.readAfterTimeout * 1000 };
}

/** The blocking store, and synckit, load only in the mode that uses them. */
async function blockingStore (...args: ConstructorParameters<typeof BlockingTodoStore>): Promise<TodoStore> {
  const { BlockingTodoStore } = await import('../../db/blocking.ts');
  return new BlockingTodoStore(...args);
}

export default fp(
  async (fastify: FastifyInstance) => {
    const { config, database } = fastify;
    const { url, replicas, serverVersion } = database;
    const poolState = new SharedPoolState();
    const leakListeners: ((report: LeakReport) => void)[] = [];
    const options: StoreOptions = {
      ...storeOptions(config, url, serverVersion),
      onChange: poolState.write,
      onError: (err) =>
        fastify.log.warn({ err: err.message }, 'a database connection failed; it is dropped from the pool'),
      onLeak: (report) => {
        for (const listener of leakListeners) listener(report);
      },
    };
    const sqlLog = config.logSql
      ? (sql: string, params: readonly unknown[]) => fastify.log.info({ params }, sql)
      : undefined;
    const replicated = replicas.length
      ? new ReplicatedTodoStore(
        options,
        {
          ...replicaOptions(config, replicas),
          onChange: (message, replica) =>
            replica.usable ? fastify.log.info(message) : fastify.log.warn(message),
        },
        sqlLog
      )
      : undefined;
    const store: TodoStore =
      replicated ??
      (config.dbMode === 'blocking'
        ? await blockingStore(options, sqlLog, poolState)
        : new AsyncTodoStore(options, sqlLog));
    await store
      .warm()
      .catch((err: Error) => fastify.log.warn(`could not open the pool's connections yet: ${err.message}`));
    fastify.decorate('store', store);
    fastify.decorate('replicas', replicated);
    fastify.decorate('poolState', poolState);
    fastify.decorate('onPoolLeak', (listener: (report: LeakReport) => void) => {
      leakListeners.push(listener);
    });
    fastify.addHook('onClose', async () => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_MS);
      });
      await Promise.race([store.close(), late]);
      clearTimeout(timer);
    });
  },
  { name: 'store' }
);
