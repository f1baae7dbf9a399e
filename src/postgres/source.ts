// Where PostgreSQL comes from: DATABASE_URL, or the embedded server.
import type { Config } from '../config.ts';
import { redactUrl } from '../os/net.ts';
import { EmbeddedPostgres, runningEmbeddedUrl } from './embedded.ts';

export interface DatabaseSource {
  /** PostgreSQL, with user and password. */
  url: string;
  /** For banners and logs: never contains the password. */
  label: string;
  /** Stops what we started (nothing for DATABASE_URL). */
  stop(): Promise<void>;
  /** On a forced exit: asks what we started to stop, without waiting. */
  kill(): void;
}

/**
 * `serve` owns the embedded server it starts. Tools (`db init`, the demo) reuse one that a
 * running `serve` owns, and otherwise start one for as long as they run.
 */
export async function openDatabase (config: Pick<Config, 'databaseUrl' | 'dataDir' | 'pgMaxConnections'>, log: (msg: string) => void, reuseRunning = false): Promise<DatabaseSource> {
  const nothing = { stop: async () => {}, kill: () => {} };
  if (config.databaseUrl) return { url: config.databaseUrl, label: redactUrl(config.databaseUrl), ...nothing };
  const running = reuseRunning ? runningEmbeddedUrl(config.dataDir) : undefined;
  if (running) return { url: running, label: `embedded PostgreSQL (running) ${redactUrl(running)}`, ...nothing };
  const embedded = new EmbeddedPostgres({ dataDir: config.dataDir, maxConnections: config.pgMaxConnections, log });
  await embedded.start();
  return {
    url: embedded.url,
    label: `embedded PostgreSQL in ${embedded.pgdata} at ${redactUrl(embedded.url)}`,
    stop: () => embedded.stop(),
    kill: () => embedded.kill(),
  };
}
