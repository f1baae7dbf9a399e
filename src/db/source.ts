// Where PostgreSQL comes from: DATABASE_URL, or the embedded server.
import type { Config } from '../config.ts';
import { redactUrl } from '../net.ts';
import { EmbeddedPostgres, runningEmbeddedUrl } from './embedded.ts';

export interface DatabaseSource {
  /** Where the pools connect: PostgreSQL, or a PgBouncer in front of it. */
  url: string;
  /** PostgreSQL itself, when `url` is a PgBouncer. */
  directUrl?: string;
  /** For banners: never contains the password. */
  label: string;
  embedded?: EmbeddedPostgres;
  stop(): Promise<void>;
  /** For a forced exit: stop what we started without waiting. */
  kill?(): void;
}

/**
 * `serve` owns the embedded server it starts. Tools (`db init`) reuse one that a
 * running `serve` owns, and otherwise start one for the duration of the command.
 */
export async function openDatabase(config: Config, log: (msg: string) => void, reuseRunning = false): Promise<DatabaseSource> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, label: redactUrl(config.databaseUrl), stop: async () => {} };
  }
  const running = reuseRunning ? runningEmbeddedUrl(config.dataDir) : undefined;
  if (running) {
    return { url: running, label: `embedded PostgreSQL (running) ${redactUrl(running)}`, stop: async () => {} };
  }
  const embedded = new EmbeddedPostgres({ dataDir: config.dataDir, maxConnections: config.pgMaxConnections, log });
  await embedded.start();
  return {
    url: embedded.url,
    label: `embedded PostgreSQL in ${embedded.pgdata} at ${redactUrl(embedded.url)}`,
    embedded,
    stop: () => embedded.stop(),
    kill: () => embedded.kill(),
  };
}
