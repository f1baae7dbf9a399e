// `serve`: prepare the database, then listen, in one process or as a cluster of workers; and
// shut everything down on SIGTERM or Ctrl-C.
import cluster from 'node:cluster';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { checkListenable } from '../os/net.ts';
import { announce } from './banner.ts';
import { runPrimary, runWorker } from './cluster.ts';
import { prepare } from './database.ts';
import { closeHttp, startHttp } from './http.ts';
import { handleShutdown } from './shutdown.ts';

/** Beyond SHUTDOWN_GRACE: time to close the pool, PgBouncer and PostgreSQL before the exit is forced. */
const CLOSE_MS = 30_000;

export async function serve (config: Config): Promise<void> {
  const tag = config.workers === 1 ? undefined : cluster.isWorker ? `worker ${cluster.worker!.id}` : 'primary';
  const log = await createLogger(config.logLevel, tag);
  // Installed first: a signal during start-up still stops whatever has started.
  const shutdown = handleShutdown(log, (config.shutdownDelay + config.shutdownGrace) * 1000 + CLOSE_MS);
  if (cluster.isWorker) return runWorker(config, log, shutdown);

  // A taken port is one line now, not after PostgreSQL has started (workers listen on the primary's).
  await checkListenable(config.host, config.port);
  if (config.monitorPort) await checkListenable(config.host, config.monitorPort, 'MONITOR_PORT');
  const database = await prepare(config, log, (reason) => shutdown.fail(reason));
  shutdown.add(
    () => database.stop(),
    () => database.kill()
  );
  if (config.workers > 1) return runPrimary(config, database, log, shutdown);

  const http = await startHttp(config, database, log);
  shutdown.add(() => closeHttp(http, config, log));
  announce(
    log,
    config,
    http.address,
    database.label,
    database.budget,
    database.replicas.map((r) => r.label)
  );
}
