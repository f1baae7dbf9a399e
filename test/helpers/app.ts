// The app in the test process, in the style of fastify/demo's test/helper.ts: build(t) registers
// it on an instance of its own against a real PostgreSQL, closed after the test; app.inject() or,
// with buildListening(), real sockets.
import Fastify, { type FastifyInstance } from 'fastify';
import type { TestContext } from 'node:test';
import pino from 'pino';
import app, { serverOptions } from '../../src/app/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { freshDatabase } from './postgres.ts';

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
  await instance.register(app, { config, database: { url, directUrl: db, replicas: [] } });
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
