// PgBouncer's own view of our pool (SHOW POOLS on its admin console). Clients that wait inside
// PgBouncer for a server connection are invisible to our pool, which counts them as in use,
// and to pg_stat_activity, which only sees the server connections.
import type pg from 'pg';

export interface BouncerView {
  /** Client connections linked to a server connection, or idle. */
  clientsActive: number;
  /** Client connections with a transaction waiting for a server connection. */
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  /** Server connections being checked, reset or logged in. */
  serversOther: number;
  /** How long the oldest waiting client has waited. */
  maxWaitMs: number;
}

interface PoolRow {
  database: string;
  user: string;
  cl_active: number;
  cl_waiting: number;
  sv_active: number;
  sv_idle: number;
  sv_used: number;
  sv_tested: number;
  sv_login: number;
  maxwait: number;
  maxwait_us: number;
}

export class BouncerStats {
  private client?: pg.Client;
  private readonly adminUrl: string;
  private readonly database: string;
  private readonly user: string;

  /** `url`: how the pool reaches PgBouncer; the admin console takes the same credentials. */
  constructor (url: string) {
    const u = new URL(url);
    this.database = decodeURIComponent(u.pathname.slice(1));
    this.user = decodeURIComponent(u.username);
    u.pathname = '/pgbouncer';
    this.adminUrl = u.toString();
  }

  /** Throws when the admin console cannot be reached (for example: not an admin user). */
  async read (): Promise<BouncerView> {
    try {
      this.client ??= await this.connect();
      const { rows } = await this.client.query<PoolRow>('SHOW POOLS');
      const row = rows.find((r) => r.database === this.database && r.user === this.user);
      if (!row) {
        return {
          clientsActive: 0,
          clientsWaiting: 0,
          serversActive: 0,
          serversIdle: 0,
          serversOther: 0,
          maxWaitMs: 0,
        };
      }
      return {
        clientsActive: Number(row.cl_active),
        clientsWaiting: Number(row.cl_waiting),
        serversActive: Number(row.sv_active),
        serversIdle: Number(row.sv_idle),
        serversOther: Number(row.sv_used) + Number(row.sv_tested) + Number(row.sv_login),
        maxWaitMs: Number(row.maxwait) * 1000 + Number(row.maxwait_us) / 1000,
      };
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close (): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect (): Promise<pg.Client> {
    // Loaded on first use: the monitor thread that reads these starts with every service.
    const {
      default: { Client },
    } = await import('pg');
    const client = new Client({ connectionString: this.adminUrl, connectionTimeoutMillis: 2000 });
    client.on('error', () => {
      this.client = undefined;
    });
    await client.connect();
    return client;
  }
}
