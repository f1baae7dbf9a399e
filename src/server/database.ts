// Everything the service needs from PostgreSQL before it listens: a server (DATABASE_URL or the
// embedded one), the schema migrated and seeded, the max_connections budget checked, and the
// way the pools reach it: directly, through a PgBouncer we start, or through PGBOUNCER_URL.
import { maskSecrets } from 'pg-queuepool';
import type { Config } from '../config.ts';
import { checkBudget, readBudget, type Budget } from '../db/budget.ts';
import { prepareDatabase } from '../db/tables.ts';
import type { Logger } from '../log.ts';
import { serverGuards, sessionGuards, setStatements } from '../postgres/guards.ts';
import { findPgBouncer, PgBouncer } from '../postgres/pgbouncer.ts';
import { restarter } from '../postgres/restarter.ts';
import { openDatabase, openReplicas, type DatabaseSource } from '../postgres/source.ts';
import { dropUnusedSlots } from '../postgres/standby.ts';

export interface Database extends DatabaseSource {
  /** PostgreSQL itself: the monitor reads pg_stat_activity here, not through PgBouncer. */
  directUrl: string;
  budget: Budget;
  /** PostgreSQL's server_version_num: which guards its sessions get (src/postgres/guards.ts). */
  serverVersion: number;
  /** Standbys that serve reads (REPLICAS or DATABASE_REPLICA_URLS), named replica-1 ... */
  replicas: { name: string; url: string; label: string }[];
}

/**
 * Stops what it started before it throws. The servers it starts (the embedded PostgreSQL,
 * PgBouncer) are restarted when they die, a few times; past that, `giveUp` is called.
 */
export async function prepare (config: Config, log: Logger, giveUp: (reason: string) => void): Promise<Database> {
  // Before anything starts: a missing PgBouncer is a one-line error, not a half-started service.
  const pgbouncerBin = config.pgbouncer && !config.pgbouncerUrl ? findPgBouncer(config.pgbouncerBin) : undefined;
  const logger = { info: (m: string) => log.info(m), error: (m: string) => log.error(m) };
  let restartPostgres: ((why: string) => void) | undefined;
  const direct = await openDatabase(config, {
    log: logger.info,
    onUnexpectedExit: (why, start) =>
      (restartPostgres ??= restarter('the embedded PostgreSQL', start, logger, giveUp))(why),
  });
  try {
    const prepared = await prepareDatabase(direct.url, { connectTimeoutMs: config.connectTimeout * 1000 });
    if (prepared.migrations.length) log.info({ migrations: prepared.migrations }, 'migrated');
    if (prepared.seeded) log.info(`seeded ${prepared.seeded} todos`);
    const budget = await readBudget(direct.url, config);
    checkBudget(budget, config);
    const replicas = await startReplicas(config, direct, log, logger);
    const database: Database = {
      ...direct,
      directUrl: direct.url,
      budget,
      serverVersion: budget.versionNum,
      replicas: replicas.map((r, i) => ({ name: `replica-${i + 1}`, url: r.url, label: r.label })),
      stop: async () => {
        await Promise.all(replicas.map((r) => r.stop()));
        await direct.stop();
      },
      kill: () => {
        for (const r of replicas) r.kill();
        direct.kill();
      },
    };
    if (config.pgbouncerUrl) {
      return {
        ...database,
        url: config.pgbouncerUrl,
        label: `${direct.label}, through PgBouncer at ${maskSecrets(config.pgbouncerUrl)}`,
      };
    }
    if (!pgbouncerBin) return database;
    const bouncer = new PgBouncer({
      serverUrl: direct.url,
      bin: pgbouncerBin,
      dataDir: config.dataDir,
      poolSize: config.pgbouncerPoolSize,
      maxClients: config.pgbouncerMaxClients,
      waitTimeout: config.poolTimeout,
      // PgBouncer's server connections carry no startup options of ours: it sets the guards itself.
      connectQuery: setStatements(sessionGuards(config, budget.versionNum)),
      log: (m) => log.info(m),
    });
    await bouncer.start();
    return {
      ...database,
      url: bouncer.url,
      label:
        `${direct.label}, through PgBouncer at ${maskSecrets(bouncer.url)} (transaction ` +
        `mode, ${config.pgbouncerPoolSize} server connections)`,
      stop: async () => {
        await bouncer.stop();
        await direct.stop();
      },
      kill: () => {
        bouncer.kill();
        direct.kill();
      },
    };
  } catch (err) {
    await direct.stop();
    throw err;
  }
}

/**
 * The standbys reads go to: ours (REPLICAS, restarted when they die; one that cannot be kept up
 * is left out, and reads go to the others) or the user's (DATABASE_REPLICA_URLS). Each server's
 * max_connections is checked against the pools that will open on it.
 */
async function startReplicas (
  config: Config,
  primary: DatabaseSource,
  log: Logger,
  logger: { info(m: string): void; error(m: string): void }
): Promise<DatabaseSource[]> {
  if (!config.databaseUrl) {
    const dropped = await dropUnusedSlots(
      primary.url,
      Array.from({ length: config.replicas }, (_, i) => `replica-${i + 1}`)
    );
    if (dropped.length) log.info(`dropped the replication slots of standbys no longer run: ${dropped.join(', ')}`);
  }
  if (config.replicas === 0 && !config.databaseReplicaUrls) return [];
  const restarters = new Map<string, (why: string) => void>();
  const replicas = config.databaseReplicaUrls
    ? config.databaseReplicaUrls.map((url, i) => ({
      url,
      label: `replica-${i + 1} at ${maskSecrets(url)}`,
      stop: async () => {},
      kill: () => {},
    }))
    : await openReplicas(
      config.replicas,
      { url: primary.url, pgdata: primary.pgdata! },
      {
        dataDir: config.dataDir,
        maxConnections: config.pgMaxConnections,
        settings: serverGuards(config),
        log: logger.info,
        onUnexpectedExit: (name, why, start) => {
          if (!restarters.has(name)) {
            restarters.set(
              name,
              restarter(`the standby ${name}`, start, logger, (reason) =>
                log.error(`${reason}; reads go to the other servers`)
              )
            );
          }
          restarters.get(name)!(why);
        },
      }
    );
  try {
    for (const [i, replica] of replicas.entries()) {
      const budget = await readBudget(replica.url, config);
      try {
        checkBudget(budget, config);
      } catch (err) {
        (err as Error).message = `replica-${i + 1}: ${(err as Error).message}`;
        throw err;
      }
    }
  } catch (err) {
    await Promise.all(replicas.map((r) => r.stop()));
    throw err;
  }
  return replicas;
}
