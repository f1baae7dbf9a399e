// The tests' helpers, in the style of fastify/demo's test/helper.ts: build(t) puts the app in
// the test process against a real PostgreSQL (the one test/run.ts starts), closed after the test.
// What needs a process (signals, workers, the CLI, the embedded server's lifecycle) starts the
// built service with withService(), which stops it whatever happens.
import Fastify, { type FastifyInstance } from 'fastify';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { isConnectionError } from 'pg-queuepool';
import pino from 'pino';
import app, { serverOptions } from '../src/app/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { prepareDatabase } from '../src/db/tables.ts';
import {
  runCliToEnd,
  runToEnd,
  startServerProcess,
  type Finished,
  type ServerProcess,
} from '../src/harness/server-process.ts';
import { alive, stopProcess } from '../src/os/processes.ts';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { findPgBouncer, PgBouncer } from '../src/postgres/pgbouncer.ts';

export { alive };

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Why PgBouncer tests are skipped here, or false. CI installs it, so there they never are. */
export const noPgBouncer: string | false = (() => {
  try {
    findPgBouncer();
    return false;
  } catch {
    return process.env.CI ? false : 'pgbouncer is not installed (apt-get install pgbouncer); CI installs it';
  }
})();

// ---------------------------------------------------------------------------------------------
// Cleanup: one hook for the whole file, servers first, then databases, newest first.

const cleanups: (() => Promise<void>)[] = [];
const children = new Set<ChildProcess>();

after(async () => {
  await Promise.all([...children].map((c) => stopProcess(c, 'SIGKILL')));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Registers work for the file's final cleanup (runs even when tests fail). */
export function onCleanup (fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** A temporary folder the postgres OS user can traverse (mkdtemp makes it 0700), removed after the file. */
export function tempDir (prefix = 'anp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

let cluster: Promise<string> | undefined;

/**
 * The URL of a PostgreSQL cluster's maintenance database: the one test/run.ts started for the
 * whole run (TEST_DATABASE_URL), or one started for this file alone.
 */
export function testCluster (): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return Promise.resolve(process.env.TEST_DATABASE_URL);
  cluster ??= (async () => {
    const embedded = new EmbeddedPostgres({ dataDir: tempDir(), maxConnections: 300 });
    cleanups.push(() => embedded.stop());
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
  cleanups.push(async () => {
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

/**
 * Polls `check` until it holds; fails naming `what` after `timeoutMs`. For states the service reaches on its own time
 * (a pool refilling, backends ending).
 */
export async function until (
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How many of our database's backends run pg_sleep right now. */
export async function sleepingBackends (db: string): Promise<number> {
  const [row] = await sql<{ n: number }>(
    db,
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
    [new URL(db).pathname.slice(1)]
  );
  return row!.n;
}

/** A PostgreSQL of the test's own, to stop and start (outage tests); stopped after the file. */
export async function ownPostgres (): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void> }> {
  const embedded = new EmbeddedPostgres({ dataDir: tempDir(), maxConnections: 50 });
  await embedded.start();
  cleanups.push(() => embedded.stop());
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
    cleanups.push(() => b.stop());
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

// ---------------------------------------------------------------------------------------------
// The app in the test process

export interface BuildOptions {
  /** Settings as environment variables (POOL_SIZE: '2'); the rest are defaults. */
  settings?: Record<string, string>;
  /** The database to use (default: a fresh seeded one); `url` may be a PgBouncer in front of it. */
  db?: string;
  url?: string;
}

export interface Built {
  app: FastifyInstance;
  config: Config;
  db: string;
}

/** The app, ready, on an instance of its own, against a real PostgreSQL; closed after the test. */
export async function build (t: TestContext, options: BuildOptions = {}): Promise<Built> {
  const db = options.db ?? (await freshDatabase({ seeded: true }));
  const url = options.url ?? db;
  // The block detector pauses the process it watches: in the test process only where a test asks for it.
  const config = loadConfig(
    {},
    { DATABASE_URL: db, LOG_LEVEL: 'silent', BLOCK_DETECTOR: 'off', ...options.settings }
  );
  const instance = Fastify(serverOptions(pino({ level: config.logLevel }), config));
  await instance.register(app, { config, url, directUrl: db });
  t.after(() => instance.close());
  await instance.ready();
  return { app: instance, config, db };
}

/** The same, listening on a free port of 127.0.0.1: for what needs real sockets (a client that goes away). */
export async function buildListening (t: TestContext, options: BuildOptions = {}): Promise<Built & { url: string }> {
  const built = await build(t, options);
  const url = await built.app.listen({ host: '127.0.0.1', port: 0 });
  return { ...built, url };
}

/** A JSON body for app.inject() or request(). */
export const json = (body: unknown) => ({
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

// ---------------------------------------------------------------------------------------------
// Real HTTP

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
  ms: number;
}

/** One HTTP request on its own connection: the one HTTP helper of the tests that use sockets. */
export function request (
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}
): Promise<Response> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      { method, headers: opts.headers, agent: false, signal: opts.signal },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = body ? JSON.parse(body) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body,
            json: parsed,
            ms: performance.now() - t0,
          });
        });
      }
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const get = (base: string, path: string) => request(base, 'GET', path);

// ---------------------------------------------------------------------------------------------
// The built service as a process

export type Service = ServerProcess;

function track (child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Starts the built service (`node dist/cli.js serve`) on a free port; killed after the file at the latest. */
export function startService (env: Record<string, string | undefined>, args: string[] = []): Promise<Service> {
  return startServerProcess(env, { args, onSpawn: track });
}

/**
 * Starts the built service, runs `fn` against it, then stops it with SIGTERM. Unless `fn`
 * failed, the service must exit 0: every test also checks that the shutdown is clean.
 */
export async function withService<T> (
  env: Record<string, string | undefined>,
  fn: (service: Service) => Promise<T>
): Promise<T> {
  const service = await startService(env);
  let result: T;
  try {
    result = await fn(service);
  } catch (err) {
    await service.stop('SIGKILL');
    throw err;
  }
  const code = await service.stop('SIGTERM');
  if (code !== 0) throw new Error(`the service exited with code ${code} on SIGTERM:\n${service.output()}`);
  return result;
}

export type CliResult = Finished;

/** Runs the built CLI to its end. */
export function runCli (
  args: string[],
  env: Record<string, string | undefined> = {},
  cwd = ROOT
): Promise<CliResult> {
  return runCliToEnd(args, env, { cwd, onSpawn: track });
}

/** Runs a TypeScript script of the repository (node --import tsx) to its end. */
export function runScript (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(proc);
  return runToEnd(proc);
}

/** Prometheus text format: every sample line is `name{labels} value`. */
export function parseMetrics (text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // prom-client writes NaN as "Nan"; Prometheus reads it (case-insensitively), so do we.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/i.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}
