// The HTTP service as one Fastify plugin: the plugins that shape every request first, then the
// resources (the store, metrics, the live view), then the routes. It does not listen: the server
// (src/server/) and the tests (test/helper.ts) register it on an instance of their own.
import { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import fp from 'fastify-plugin';
import { blocking, type Config } from '../config.ts';
import cancelOnDisconnect from './plugins/cancel-on-disconnect.ts';
import docs from './plugins/docs.ts';
import errors from './plugins/errors.ts';
import input, { BODY_LIMIT } from './plugins/input.ts';
import leaks from './plugins/leaks.ts';
import live, { type LiveStreamAddress } from './plugins/live.ts';
import metrics, { type ClusterMetrics } from './plugins/metrics.ts';
import blocks from './plugins/blocks.ts';
import threadPool from './plugins/threadpool.ts';
import type { DatabaseTopology } from '../db/topology.ts';
import readAfter from './plugins/read-after.ts';
import requestTracking from './plugins/request-tracking.ts';
import security from './plugins/security.ts';
import store, { leakWatchMs } from './plugins/store.ts';
import blockRoutes from './routes/block.ts';
import dashboardRoutes from './routes/dashboard.ts';
import leakRoutes from './routes/leak.ts';
import opsRoutes from './routes/ops.ts';
import threadPoolRoutes from './routes/threadpool.ts';
import sleepRoutes from './routes/sleep.ts';
import todoRoutes from './routes/todos.ts';
import workRoutes from './routes/work.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The settings, parsed once at the edge. */
    config: Config;
    /** Where the database is. */
    database: DatabaseTopology;
    /** With workers: this worker, and what the cluster shares; undefined without workers. */
    worker: WorkerSide | undefined;
    /** Set when shutdown begins: /readyz answers 503 from then on, so that a load balancer drains us. */
    lifecycle: { draining: boolean };
  }
}

/** A cluster's worker: its number, and what the primary serves for all of them (src/server/cluster.ts). */
export interface WorkerSide {
  /** This process's number among the cluster's workers. */
  id: number;
  /** Where the primary serves every worker's live stream, so that one dashboard shows them all. */
  clusterStream: () => Promise<LiveStreamAddress>;
  /** Given this process's metrics registry, what reads every worker's summed, for /metrics. */
  clusterMetrics: ClusterMetrics;
}

/**
 * What the app is given, once: its settings, where the database is, and with workers what the
 * cluster shares. Its plugins read them from the instance (`fastify.config`, `fastify.database`,
 * `fastify.worker`), never as options of their own.
 */
export interface AppOptions {
  config: Config;
  database: DatabaseTopology;
  worker?: WorkerSide;
}

/** What the app's start may take beyond the pool's warm() (POOL_TIMEOUT). */
const STARTUP_SECONDS = 30;

/** Fastify's own options that the app relies on, the client timeouts among them. */
export function serverOptions (
  logger: FastifyBaseLogger,
  config: Pick<
    Config,
    'requestTimeout' | 'headersTimeout' | 'keepAliveTimeout' | 'appMode' | 'dbMode' | 'poolTimeout'
  >
): FastifyHttpOptions<Server> & { loggerInstance: FastifyBaseLogger } {
  // A client that sends its request too slowly (one byte every few seconds, a "slowloris") is
  // cut. Node checks these deadlines every connectionsCheckingInterval (30 s by default). They
  // count wall-clock time from the connection, so in a blocking mode they would cut prompt
  // clients whose requests sat unread while the event loop was stalled: there they are off.
  const clientTimeouts = !blocking(config);
  return {
    loggerInstance: logger,
    // The service's logger itself as every request's log: Fastify would otherwise make a child
    // logger (bound to the request id) for each request, a cost on the hot path for a line we
    // write only at debug level (request-tracking.ts logs the id itself).
    childLoggerFactory: (parent) => parent,
    requestTimeout: clientTimeouts ? config.requestTimeout * 1000 : 0,
    http: { headersTimeout: clientTimeouts ? config.headersTimeout * 1000 : 0, connectionsCheckingInterval: 1000 },
    // Fastify's default of 72 s could hold a shutdown that long for an idle client.
    keepAliveTimeout: config.keepAliveTimeout * 1000,
    // No idle timeout on the socket: a response may rightly take a 60 s sleep plus the waits for
    // a connection (connectionTimeout stays 0).
    // Per-request lines only at debug level (request-tracking.ts): 10,000 requests would flood info.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: BODY_LIMIT,
    // Fastify's default of 10 s bounds the whole app's registration, and the pool's warm() is
    // part of it, waiting up to POOL_TIMEOUT for a database that is slow to answer: the start
    // failed with "Plugin did not start in time: 'store'" instead of the warning and a /readyz
    // that says not ready. The rest (the monitor thread, the docs) gets 30 s more, which a
    // loaded machine needs: a CI run once took over 10 s to start the monitor thread.
    pluginTimeout: (config.poolTimeout + STARTUP_SECONDS) * 1000,
  };
}

async function app (fastify: FastifyInstance, { config, database, worker }: AppOptions): Promise<void> {
  fastify.decorate('config', config);
  fastify.decorate('database', database);
  fastify.decorate('worker', worker);
  fastify.decorate('lifecycle', { draining: false });
  await fastify.register(errors);
  await fastify.register(input);
  await fastify.register(security);
  await fastify.register(docs);
  await fastify.register(cancelOnDisconnect);

  await fastify.register(store);
  await fastify.register(live);
  await fastify.register(metrics);
  await fastify.register(threadPool);
  await fastify.register(requestTracking);
  // The optional features plug in last, and only when on (the block detector before the routes).
  if (config.blockDetector) await fastify.register(blocks);
  if (leakWatchMs(config)) await fastify.register(leaks);
  if (database.replicas.length) await fastify.register(readAfter);

  await fastify.register(sleepRoutes);
  await fastify.register(todoRoutes);
  await fastify.register(workRoutes);
  await fastify.register(blockRoutes);
  await fastify.register(leakRoutes);
  await fastify.register(opsRoutes);
  await fastify.register(threadPoolRoutes);
  await fastify.register(dashboardRoutes);
}

// fastify-plugin: the error handlers and decorators apply to the instance the app is registered on.
export default fp(app, { name: 'app' });
