// Everything the service needs from PostgreSQL before it listens: a server (DATABASE_URL or the
// embedded one), the schema migrated and seeded, the max_connections budget checked, and the
// way the pools reach it: directly, through a PgBouncer we start, or through PGBOUNCER_URL.
import type { Config } from '../config.ts';
import { checkBudget, readBudget, type Budget } from '../db/budget.ts';
import { prepareDatabase } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { maskSecrets } from '../config.ts';
import { findPgBouncer, PgBouncer } from '../postgres/pgbouncer.ts';
import { restarter } from '../postgres/restarter.ts';
import { openDatabase, type DatabaseSource } from '../postgres/source.ts';

export interface Database extends DatabaseSource {
  /** PostgreSQL itself: the monitor reads pg_stat_activity here, not through PgBouncer. */
  directUrl: string;
  budget: Budget;
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
    onUnexpectedExit: (why, start) => (restartPostgres ??= restarter('the embedded PostgreSQL', start, logger, giveUp))(why),
  });
  try {
    const prepared = await prepareDatabase(direct.url, { connectTimeoutMs: config.connectTimeout * 1000 });
    if (prepared.migrations.length) log.info({ migrations: prepared.migrations }, 'migrated');
    if (prepared.seeded) log.info(`seeded ${prepared.seeded} todos`);
    const budget = await readBudget(direct.url, config);
    checkBudget(budget, config);
    const database = { ...direct, directUrl: direct.url, budget };
    if (config.pgbouncerUrl) {
      return { ...database, url: config.pgbouncerUrl, label: `${direct.label}, through PgBouncer at ${maskSecrets(config.pgbouncerUrl)}` };
    }
    if (!pgbouncerBin) return database;
    const bouncer = new PgBouncer({
      serverUrl: direct.url,
      bin: pgbouncerBin,
      dataDir: config.dataDir,
      poolSize: config.pgbouncerPoolSize,
      maxClients: config.pgbouncerMaxClients,
      waitTimeout: config.poolTimeout,
      log: (m) => log.info(m),
    });
    await bouncer.start();
    return {
      ...database,
      url: bouncer.url,
      label: `${direct.label}, through PgBouncer at ${maskSecrets(bouncer.url)} (transaction mode, ${config.pgbouncerPoolSize} server connections)`,
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
