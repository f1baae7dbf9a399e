// PostgreSQL seen from outside, for the demo's claims and the pool-sizing lab: its version and
// connection limits (any server), and, when it runs on this machine, its processes, so that its
// CPU time and its backends' memory can be read from /proc.
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { commandOf, parentOf } from '../os/proc.ts';
import { readLimits, type ServerLimits } from './limits.ts';

export interface ServerFacts extends ServerLimits {
  /** "PostgreSQL 17.10", as server_version says. */
  version: string;
  /** The postmaster, when the server runs here and its processes are visible. */
  postmasterPid?: number;
  /** Why its processes cannot be watched, when they cannot. */
  notLocal?: string;
}

/** Our side of a pg connection: the local TCP port (undefined over a Unix socket). */
const localPortOf = (client: pg.Client) =>
  (client as unknown as { connection: { stream: { localPort?: number } } }).connection.stream.localPort;

/**
 * Asks the server for its limits, and finds out whether it runs here: the backend that serves
 * this connection must be a local `postgres` process whose client port is ours. (A PID alone
 * proves nothing: a remote server's PIDs are someone else's here; PgBouncer's backends, too.)
 */
export async function serverFacts (url: string): Promise<ServerFacts> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const {
      rows: [r],
    } = await client.query<{ version: string; pid: number; port: number | null }>(
      "SELECT current_setting('server_version') AS version, pg_backend_pid() AS pid, inet_client_port() AS port"
    );
    const facts: ServerFacts = { version: `PostgreSQL ${r!.version.split(' ')[0]}`, ...(await readLimits(client)) };
    const ours = r!.port === null || r!.port === localPortOf(client);
    const postmaster = parentOf(r!.pid);
    if (ours && commandOf(r!.pid) === 'postgres' && postmaster && commandOf(postmaster) === 'postgres') {
      facts.postmasterPid = postmaster;
    } else {
      facts.notLocal =
        'the server does not run on this machine (or is behind a proxy), so its processes cannot be watched';
    }
    return facts;
  } finally {
    await client.end();
  }
}

/**
 * The server's own core count, where it can be read: its /proc/cpuinfo through pg_read_file
 * (a superuser or pg_read_server_files, on Linux). Undefined otherwise.
 */
export async function serverCores (client: pg.ClientBase): Promise<number | undefined> {
  try {
    const {
      rows: [r],
    } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM regexp_matches(pg_read_file('/proc/cpuinfo'), '^processor\\s*:', 'gn')"
    );
    return r && r.n > 0 ? r.n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sessions of this database that PostgreSQL counted (when they ended) since its statistics were reset (PostgreSQL 14+),
 * or undefined.
 */
export async function sessionsSoFar (client: pg.ClientBase): Promise<number | undefined> {
  try {
    const { rows } = await client.query<{ n: string | null }>(
      'SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()'
    );
    return rows[0]!.n === null ? undefined : Number(rows[0]!.n);
  } catch {
    return undefined; // before PostgreSQL 14: no sessions column
  }
}

/** Client backends of this database right now (not counting the asking connection), and how many run a query. */
export async function backendsNow (client: pg.ClientBase): Promise<{ total: number; active: number }> {
  const { rows } = await client.query<{ total: number; active: number }>(
    `SELECT count(*)::int AS total, (count(*) FILTER (WHERE state = 'active'))::int AS active
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()`
  );
  return rows[0]!;
}

export interface BackendPeaks {
  backends: number;
  sleeping: number;
}

/** Polls pg_stat_activity every `everyMs` and keeps the peaks: what PostgreSQL itself had to carry. */
export function watchBackends (url: string, everyMs = 100): { stop(): Promise<BackendPeaks> } {
  const seen: BackendPeaks = { backends: 0, sleeping: 0 };
  const client = new pg.Client({ connectionString: url });
  const watching = new AbortController();
  const loop = (async () => {
    await client.connect();
    while (!watching.signal.aborted) {
      const { rows } = await client.query<{ backends: string; sleeping: string }>(
        `SELECT count(*) AS backends,
                count(*) FILTER (WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%') AS sleeping
           FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`
      );
      seen.backends = Math.max(seen.backends, Number(rows[0]!.backends));
      seen.sleeping = Math.max(seen.sleeping, Number(rows[0]!.sleeping));
      await delay(everyMs);
    }
  })();
  return {
    async stop () {
      watching.abort();
      try {
        await loop;
      } finally {
        await client.end();
      }
      return seen;
    },
  };
}
