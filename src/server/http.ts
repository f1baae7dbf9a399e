// One process's HTTP side: a Fastify instance with the app registered on it, listening, and
// closed within the grace period.
import { setTimeout as delay } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import app, { serverOptions, type WorkerSide } from '../app/app.ts';
import type { DatabaseTopology } from '../db/topology.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { ListenError } from '../os/net.ts';

/**
 * Connections the kernel may queue before we accept them (gunicorn's default; Node's is 511).
 * A burst of thousands of connects otherwise overflows it, and the dropped SYNs are retried
 * only after 1 s, then 3 s: latency that no application code causes. Capped by somaxconn.
 */
const LISTEN_BACKLOG = 2048;

export interface Http {
  fastify: FastifyInstance;
  address: string;
}

export async function startHttp (
  config: Config,
  database: DatabaseTopology,
  log: Logger,
  worker?: WorkerSide
): Promise<Http> {
  const fastify = Fastify(serverOptions(log, config));
  // Only the topology's own fields: a caller's object (src/server/database.ts's) carries more.
  const { url, directUrl, replicas, serverVersion } = database;
  await fastify.register(app, { config, database: { url, directUrl, replicas, serverVersion }, worker });
  try {
    const address = await fastify.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
    return { fastify, address };
  } catch (err) {
    await fastify.close();
    throw (err as NodeJS.ErrnoException).syscall === 'listen'
      ? new ListenError(config.host, config.port, err as NodeJS.ErrnoException)
      : err;
  }
}

/**
 * Fails readiness (for SHUTDOWN_DELAY, still serving), then stops accepting, lets in-flight requests finish within
 * SHUTDOWN_GRACE, then closes the
 * connections still open (which aborts their database work) and the app's resources.
 */
export async function closeHttp ({ fastify }: Http, config: Config, log: Logger): Promise<void> {
  fastify.lifecycle.draining = true;
  if (config.shutdownDelay > 0) {
    // Still listening and serving: a load balancer whose health check now fails stops sending
    // us requests, so that none arrives after we stop accepting (a rolling restart drops nothing).
    log.info(
      `SHUTDOWN_DELAY: /readyz answers 503 for ${config.shutdownDelay} s before the service stops listening`
    );
    await delay(config.shutdownDelay * 1000);
  }
  const grace = setTimeout(() => {
    log.warn(`SHUTDOWN_GRACE (${config.shutdownGrace} s) is over: closing the remaining connections`);
    fastify.server.closeAllConnections();
  }, config.shutdownGrace * 1000);
  try {
    await fastify.close();
  } finally {
    clearTimeout(grace);
  }
}
