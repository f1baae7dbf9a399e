// PostgreSQL's max_connections is the ceiling under every pool: check that our pools fit.
import pg from 'pg';
import { connectionsPerProcess, type Config } from '../config.ts';
import { UnreachableError } from './errors.ts';

export interface Budget {
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
  available: number;
  needed: number;
  /** The arithmetic, for the banner and the refusal. */
  summary: string;
}

export class BudgetError extends Error {
  override name = 'BudgetError';
}

/** What PostgreSQL allows: the right-hand side of the budget. */
export interface ServerLimits {
  maxConnections: number;
  superuserReserved: number;
  /** reserved_connections (PostgreSQL 16+), 0 before. */
  reserved: number;
}

export async function readBudget (url: string, config: Config): Promise<Budget> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: config.connectTimeout * 1000 });
  await client.connect().catch((err: unknown) => { throw new UnreachableError(url, err, config.connectTimeout * 1000); });
  try {
    const { rows } = await client.query<{ max: string; su: string; reserved: string | null }>(
      `SELECT current_setting('max_connections') AS max,
              current_setting('superuser_reserved_connections') AS su,
              current_setting('reserved_connections', true) AS reserved`
    );
    const row = rows[0]!;
    return budgetFor({ maxConnections: Number(row.max), superuserReserved: Number(row.su), reserved: Number(row.reserved ?? 0) }, config);
  } finally {
    await client.end();
  }
}

/** One host's arithmetic: WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) against what PostgreSQL allows. */
export function budgetFor ({ maxConnections, superuserReserved, reserved }: ServerLimits, config: Config): Budget {
  const available = maxConnections - superuserReserved - reserved;
  const perProcess = connectionsPerProcess(config);
  const needed = config.workers * perProcess;
  const summary =
    `WORKERS x (POOL_SIZE + POOL_MAX_OVERFLOW) = ${config.workers} x (${config.poolSize} + ${config.poolMaxOverflow}) = ${needed} connections; ` +
    `PostgreSQL allows max_connections ${maxConnections} - superuser_reserved_connections ${superuserReserved}` +
    (reserved ? ` - reserved_connections ${reserved}` : '') + ` = ${available}`;
  return { maxConnections, superuserReserved, reserved, available, needed, summary };
}

/** Refuses a configuration whose pools could open more connections than the server accepts. */
export function checkBudget (budget: Budget, config: Config): void {
  if (config.pgbouncerUrl) return; // an existing PgBouncer: its own limits apply
  if (config.pgbouncer) {
    // Through PgBouncer, only its server connections count against max_connections.
    if (config.pgbouncerPoolSize > budget.available) {
      throw new BudgetError(`Refusing to start: PGBOUNCER_POOL_SIZE ${config.pgbouncerPoolSize} server connections, but PostgreSQL allows ` +
        `max_connections ${budget.maxConnections} - superuser_reserved_connections ${budget.superuserReserved}` +
        (budget.reserved ? ` - reserved_connections ${budget.reserved}` : '') + ` = ${budget.available}. Lower PGBOUNCER_POOL_SIZE or raise max_connections.`);
    }
    if (config.pool !== 'none' && budget.needed > config.pgbouncerMaxClients) {
      throw new BudgetError(`Refusing to start: ${budget.summary.split(';')[0]}, more than PGBOUNCER_MAX_CLIENTS ${config.pgbouncerMaxClients}. Raise PGBOUNCER_MAX_CLIENTS or lower the pools.`);
    }
    return;
  }
  if (config.pool === 'none' || budget.needed <= budget.available) return;
  throw new BudgetError(
    `Refusing to start: ${budget.summary}, and ${budget.needed} > ${budget.available}. ` +
    'Lower WORKERS, POOL_SIZE or POOL_MAX_OVERFLOW, raise max_connections' +
    (config.databaseUrl ? '' : ' (PG_MAX_CONNECTIONS for the embedded server)') + ', or pool through PgBouncer (PGBOUNCER=on).'
  );
}
