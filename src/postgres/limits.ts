// What PostgreSQL allows: max_connections, less the slots kept for superusers and, from
// PostgreSQL 16, for roles with pg_use_reserved_connections. Read by the service's budget check
// and by the tools that measure the server (the claims, the sizing lab).
import type pg from 'pg';

export interface ServerLimits {
  maxConnections: number;
  superuserReserved: number;
  /** reserved_connections (PostgreSQL 16+), 0 before. */
  reserved: number;
  /** server_version_num: 170010 for 17.10. Which settings the server has depends on it. */
  versionNum: number;
}

export async function readLimits (client: pg.ClientBase): Promise<ServerLimits> {
  const { rows } = await client.query<{ max: string; su: string; reserved: string | null; version: string }>(
    `SELECT current_setting('max_connections') AS max,
            current_setting('superuser_reserved_connections') AS su,
            current_setting('reserved_connections', true) AS reserved,
            current_setting('server_version_num') AS version`
  );
  const row = rows[0]!;
  return {
    maxConnections: Number(row.max),
    superuserReserved: Number(row.su),
    reserved: Number(row.reserved ?? 0),
    versionNum: Number(row.version),
  };
}

/** The connections an ordinary role may open. */
export const availableTo = (limits: ServerLimits): number =>
  limits.maxConnections - limits.superuserReserved - limits.reserved;
