// PostgreSQL for the tests: the cluster test/run.ts starts for the whole run (or one for the
// file), a fresh database per test (empty, or a copy of a seeded template), a kept connection per
// database for the tests' own statements, a server of the test's own, and PgBouncer in front.
import pg from 'pg';
import { isConnectionError } from 'pg-queuepool';
import { prepareDatabase } from '../../src/db/tables.ts';
import { EmbeddedPostgres } from '../../src/postgres/embedded.ts';
import { findPatroni } from '../../src/postgres/patroni.ts';
import { findPgBouncer, PgBouncer } from '../../src/postgres/pgbouncer.ts';
import { onCleanup, tempDir } from './cleanup.ts';

/** Why PgBouncer tests are skipped here, or false. CI installs it, so there they never are. */
export const noPgBouncer: string | false = (() => {
  try {
    findPgBouncer();
    return false;
  } catch {
    return process.env.CI ? false : 'pgbouncer is not installed (apt-get install pgbouncer); CI installs it';
  }
})();

let cluster: Promise<string> | undefined;

/**
 * The URL of a PostgreSQL cluster's maintenance database: the one test/run.ts started for the
 * whole run (TEST_DATABASE_URL), or one started for this file alone.
 */
export function testCluster (): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return Promise.resolve(process.env.TEST_DATABASE_URL);
  cluster ??= (async () => {
    const embedded = new EmbeddedPostgres({ dataDir: tempDir(), maxConnections: 300 });
    onCleanup(() => embedded.stop());
    await embedded.start();
    return withDatabase(embedded.url, 'postgres');
  })();
  return cluster;
}

let seededTemplate: Promise<string> | undefined;

/**
 * A new database in the test cluster, dropped after the file: empty, or migrated and seeded (50
 * todos). A seeded one is a copy of one migrated and seeded once per test process. FILE_COPY
 * copies the template's files (then a checkpoint): a third of the CPU of the default, which
 * writes the whole template to the WAL (PostgreSQL 15+; ~150 ms per database here, and a test
 * run makes a hundred).
 */
export async function freshDatabase (options: { seeded?: boolean } = {}): Promise<string> {
  const admin = await testCluster();
  const template = options.seeded
    ? await (seededTemplate ??= createDatabase(admin).then(async (url) => {
      await prepareDatabase(url);
      return url;
    }))
    : undefined;
  return createDatabase(admin, template && new URL(template).pathname.slice(1));
}

async function createDatabase (admin: string, template?: string): Promise<string> {
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await sql(admin, `CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''} STRATEGY FILE_COPY`);
  const url = withDatabase(admin, name);
  onCleanup(async () => {
    await closeClient(url);
    await sql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  return url;
}

export function withDatabase (url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * One connection per database URL, kept for the file: a new backend costs PostgreSQL about 25 ms
 * of CPU here (fork, authentication, caches), and polls ask every 50 ms. Queries on it run one
 * at a time; pg_backend_pid() is the same for all of them.
 */
const clients = new Map<string, Promise<pg.Client>>();

async function clientFor (url: string): Promise<pg.Client> {
  let client = clients.get(url);
  if (!client) {
    client = (async () => {
      const c = new pg.Client({ connectionString: url });
      // A server that goes (a test stops it, DROP DATABASE ... FORCE): the next query connects anew.
      c.on('error', () => {
        if (clients.get(url) === client) clients.delete(url);
      });
      c.on('end', () => {
        if (clients.get(url) === client) clients.delete(url);
      });
      await c.connect();
      return c;
    })();
    clients.set(url, client);
    client.catch(() => {
      if (clients.get(url) === client) clients.delete(url);
    });
  }
  return client;
}

async function closeClient (url: string): Promise<void> {
  const client = clients.get(url);
  clients.delete(url);
  await client
    ?.then(
      (c) => c.end(),
      () => {}
    )
    .catch(() => {});
}

onCleanup(async () => {
  await Promise.all([...clients.keys()].map(closeClient));
});

/**
 * Runs one statement on the database at `url`, on the file's connection to it. A kept connection
 * that the server closed (restarted, killed) is replaced once: as if each call connected anew.
 */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow> (
  url: string,
  text: string,
  values: unknown[] = []
): Promise<T[]> {
  const kept = clients.has(url);
  const client = await clientFor(url);
  const used = clients.get(url);
  try {
    return (await inTurn(client, () => client.query<T>(text, values))).rows;
  } catch (err) {
    if (!kept || !isConnectionError(err)) throw err;
    if (clients.get(url) === used) await closeClient(url);
    const fresh = await clientFor(url);
    return (await inTurn(fresh, () => fresh.query<T>(text, values))).rows;
  }
}

/** Each client's last query: the next waits for it (pg 8.19 deprecated its own queue of queries). */
const turns = new WeakMap<pg.Client, Promise<unknown>>();

function inTurn<R> (client: pg.Client, run: () => Promise<R>): Promise<R> {
  const mine = (turns.get(client) ?? Promise.resolve()).then(run, run);
  turns.set(
    client,
    mine.catch(() => {})
  );
  return mine;
}

/** How many of our database's backends run pg_sleep right now. */
export async function sleepingBackends (db: string): Promise<number> {
  const [row] = await sql<{ n: number }>(
    db,
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%' AND state " +
      "= 'active'",
    [new URL(db).pathname.slice(1)]
  );
  return row!.n;
}

/** A PostgreSQL of the test's own, to stop and start (outage tests); stopped after the file. */
export async function ownPostgres (): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void> }> {
  const embedded = new EmbeddedPostgres({ dataDir: tempDir(), maxConnections: 50 });
  await embedded.start();
  onCleanup(() => embedded.stop());
  await prepareDatabase(embedded.url);
  return { url: embedded.url, start: () => embedded.start(), stop: () => embedded.stop() };
}

let bouncer: Promise<PgBouncer> | undefined;

/** One PgBouncer (transaction mode) in front of the test cluster for the file, started on first use. */
export function testPgBouncer (): Promise<PgBouncer> {
  bouncer ??= (async () => {
    const b = new PgBouncer({
      serverUrl: await testCluster(),
      bin: findPgBouncer(),
      dataDir: tempDir(),
      poolSize: 20,
      maxClients: 500,
      waitTimeout: 30,
    });
    await b.start();
    onCleanup(() => b.stop());
    return b;
  })();
  return bouncer;
}

/** The two ways to PostgreSQL that the API and cancel tests run on: direct, and through PgBouncer. */
export const DATABASE_PATHS = [
  {
    label: 'direct to PostgreSQL',
    skip: false as string | false,
    through: async (db: string) => ({ url: db, settings: {} }),
  },
  {
    label: 'through PgBouncer (transaction mode)',
    skip: noPgBouncer,
    through: async (db: string) => {
      const u = new URL((await testPgBouncer()).url);
      u.pathname = new URL(db).pathname;
      return { url: u.toString(), settings: { PGBOUNCER_URL: u.toString() } };
    },
  },
];

/** Why Patroni tests are skipped here, or false. CI installs Patroni, etcd and PostgreSQL's tools. */
export const noPatroni: string | false = (() => {
  try {
    findPatroni();
    return false;
  } catch (err) {
    return process.env.CI ? false : `${(err as Error).message}; CI installs them`;
  }
})();
