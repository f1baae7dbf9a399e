// Test helpers: a real PostgreSQL, real servers in child processes, real sockets.
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedPostgres } from '../src/postgres/embedded.ts';
import { findPgBouncer } from '../src/postgres/pgbouncer.ts';
import { spawn } from 'node:child_process';
import { runCliToEnd, runToEnd, startServerProcess, type Finished, type ServerProcess } from '../src/harness/server-process.ts';
import { alive, stopProcess } from '../src/os/processes.ts';
export { alive };
export { waves } from '../src/client/summary.ts';

/** Why PgBouncer tests are skipped here, or false. CI installs it, so there they never are. */
export const noPgBouncer: string | false = (() => {
  try {
    findPgBouncer();
    return false;
  } catch {
    return process.env.CI ? false : 'pgbouncer is not installed (apt-get install pgbouncer); CI installs it';
  }
})();

/** The two ways to PostgreSQL that the API and cancel tests run on. */
export const DATABASE_PATHS = [
  { label: 'direct to PostgreSQL', skip: false as string | false, env: (): Record<string, string> => ({}), banner: /max_connections is the limit/ },
  { label: 'through PgBouncer (transaction mode)', skip: noPgBouncer, env: (): Record<string, string> => ({ PGBOUNCER: 'on', DATA_DIR: tempDir() }), banner: /through PgBouncer at .*transaction mode/ },
];

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A temporary folder the postgres OS user can traverse (mkdtemp makes it 0700). */
export function tempDir(prefix = 'anp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Registers work for the file's final cleanup (runs even when tests fail). */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

let cluster: Promise<string> | undefined;
const cleanups: (() => Promise<void>)[] = [];
const children = new Set<ChildProcess>();

// One hook for the whole file: servers first, then databases and clusters, newest first.
after(async () => {
  await Promise.all([...children].map((c) => stopProcess(c, 'SIGKILL')));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/**
 * The URL of a PostgreSQL cluster's maintenance database: the one test/run.ts started
 * for the whole run (TEST_DATABASE_URL), or one started for this file alone.
 */
export function testCluster(): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return Promise.resolve(process.env.TEST_DATABASE_URL);
  cluster ??= (async () => {
    const dir = tempDir();
    const embedded = new EmbeddedPostgres({ dataDir: dir, maxConnections: 200 });
    cleanups.push(async () => {
      await embedded.stop();
    });
    await embedded.start();
    return withDatabase(embedded.url, 'postgres');
  })();
  return cluster;
}

/** A fresh, empty database in the test cluster, dropped after the file's tests. */
export async function freshDatabase(): Promise<string> {
  const admin = await testCluster();
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await sql(admin, `CREATE DATABASE ${name}`);
  cleanups.push(async () => {
    await sql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  return withDatabase(admin, name);
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export type Server = ServerProcess;

/** Starts `serve` on a free port and resolves once it prints its banner; killed after the file at the latest. */
export function startServer(env: Record<string, string | undefined>, args: string[] = []): Promise<Server> {
  return startServerProcess(env, { args, onSpawn: track });
}

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export type CliResult = Finished;

export function runCli(args: string[], env: Record<string, string | undefined> = {}, cwd = ROOT): Promise<CliResult> {
  return runCliToEnd(args, env, { cwd, onSpawn: track });
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
  ms: number;
}

/** One HTTP request on its own connection. */
export function request(
  base: string,
  method: string,
  path: string,
  opts: { 'content-type'?: string; body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts['content-type']) headers['content-type'] = opts['content-type'];
    const req = http.request(new URL(path, base), { method, headers, agent: false, signal: opts.signal }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        let json: unknown;
        try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode!, headers: res.headers, body, json, ms: performance.now() - t0 });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A PostgreSQL of the test's own, to stop and start (outage tests); stopped after the file. */
export async function ownPostgres(): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void> }> {
  const embedded = new EmbeddedPostgres({ dataDir: tempDir(), maxConnections: 50 });
  await embedded.start();
  cleanups.push(() => embedded.stop());
  const url = embedded.url;
  return { url, start: () => embedded.start(), stop: () => embedded.stop() };
}

/** Runs a TypeScript script of the repository (node --import tsx) and collects its output. */
export function runCommand(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  return runToEnd(proc);
}

