// PostgreSQL's max_connections is the ceiling under every pool: check that our pools fit.
import pg from 'pg';
import { connectionsPerProcess, replicated, type Config } from '../config.ts';
import { availableTo, readLimits, type ServerLimits } from '../postgres/limits.ts';
import { UnreachableError } from './errors.ts';

export interface Budget extends ServerLimits {
  available: number;
  needed: number;
  /** The arithmetic, for the banner and the refusal. */
  summary: string;
}

export class BudgetError extends Error {
  override name = 'BudgetError';
}

export async function readBudget (url: string, config: Config): Promise<Budget> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: config.connectTimeout * 1000 });
  await client.connect().catch((err: unknown) => {
    throw new UnreachableError(url, err, config.connectTimeout * 1000);
  });
  try {
    return budgetFor(await readLimits(client), config);
  } finally {
    await client.end();
  }
}

/**
 * The fleet's arithmetic, HOSTS x WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW), against what
 * PostgreSQL allows: max_connections is one number for every process on every host, and each
 * host's pools looking fine is not enough.
 */
export function budgetFor (limits: ServerLimits, config: Config): Budget {
  const available = availableTo(limits);
  // With replicas, each process also keeps one connection to every server for the lag checks.
  const watch = replicated(config) ? 1 : 0;
  const needed = config.hosts * config.workers * (connectionsPerProcess(config) + watch);
  const [names, figures] =
    config.hosts > 1
      ? ['HOSTS x WORKERS', `${config.hosts} x ${config.workers}`]
      : ['WORKERS', `${config.workers}`];
  const summary =
    `${names} x (POOL_SIZE + POOL_MAX_OVERFLOW${watch ? ' + 1 lag check' : ''}) = ${figures} x (${config.poolSize} ` +
    `+ ${config.poolMaxOverflow}${watch ? ' + 1' : ''}) = ${needed} connections; ` +
    `PostgreSQL allows ${allows(limits)} = ${available}`;
  return { ...limits, available, needed, summary };
}

function allows ({ maxConnections, superuserReserved, reserved }: ServerLimits): string {
  return (
    `max_connections ${maxConnections} - superuser_reserved_connections ${superuserReserved}` +
    (reserved ? ` - reserved_connections ${reserved}` : '')
  );
}

/** Refuses a configuration whose pools could open more connections than the server accepts. */
export function checkBudget (budget: Budget, config: Config): void {
  if (config.pgbouncerUrl) return; // an existing PgBouncer: its own limits apply
  if (config.pgbouncer) {
    // Through PgBouncer, only its server connections count against max_connections.
    // One PgBouncer per host: each brings its own server connections.
    const servers = config.hosts * config.pgbouncerPoolSize;
    if (servers > budget.available) {
      const what =
        config.hosts > 1
          ? `HOSTS x PGBOUNCER_POOL_SIZE = ${config.hosts} x ${config.pgbouncerPoolSize} = ${servers} server ` +
            'connections'
          : `PGBOUNCER_POOL_SIZE ${config.pgbouncerPoolSize} server connections`;
      throw new BudgetError(
        `Refusing to start: ${what}, but PostgreSQL allows ${allows(budget)} = ${budget.available}. ` +
          `Lower PGBOUNCER_POOL_SIZE${config.hosts > 1 ? ', share one central PgBouncer (PGBOUNCER_URL)' : ''} or ` +
          'raise max_connections.'
      );
    }
    const clients = budget.needed / config.hosts; // one host's pools, against its own PgBouncer
    if (config.pool !== 'null' && clients > config.pgbouncerMaxClients) {
      throw new BudgetError(
        `Refusing to start: WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${config.workers} x (${config.poolSize} ` +
          `+ ${config.poolMaxOverflow}) = ${clients} connections, ` +
          `more than PGBOUNCER_MAX_CLIENTS ${config.pgbouncerMaxClients}. Raise PGBOUNCER_MAX_CLIENTS or lower the ` +
          'pools.'
      );
    }
    return;
  }
  if (config.pool === 'null' || budget.needed <= budget.available) return;
  throw new BudgetError(
    `Refusing to start: ${budget.summary}, and ${budget.needed} > ${budget.available}. ` +
      `Lower ${config.hosts > 1 ? 'HOSTS, ' : ''}WORKERS, POOL_SIZE or POOL_MAX_OVERFLOW, raise max_connections` +
      (config.databaseUrl ? '' : ' (PG_MAX_CONNECTIONS for the embedded server)') +
      ', or pool through PgBouncer (PGBOUNCER=on).'
  );
}
